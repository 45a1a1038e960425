"""THE input door, and the sources imagettes are joined with (reanalysis, wave-model, altimeter, buoy, L2 OCN).

:func:`resolve` turns what a user names (paths, ``file://``, ``s3://``, ``gs://``, ``az://`` URLs, folders, glob
patterns, zips, ``manifest.safe``) into typed :class:`Source` objects, once: a kind (:data:`KINDS`) and a
:class:`~xwvnet.io.storage.Location` (URLs read by :func:`xwvnet.io.storage.locate`, the one URL parser, with its
checked ``storage_options``). Every reader that takes paths (:func:`xwvnet.ingest`, :func:`xwvnet.open_safe`,
:func:`xwvnet.open_quicklooks`, :func:`open_source`, :func:`xwvnet.joins.open_imagettes`, the ``xwvnet`` command)
starts with it, so a folder, a glob and a list mean the same everywhere, and a URL is never taken for a local path.

Reanalysis and wave-model files come as netCDF, GRIB or Zarr, one file or a folder of monthly files, and spell
their coordinates in many ways (``lat``, ``nav_lon``, CMEMS's ``TIME``/``LATITUDE``, ERA5's ``valid_time``,
``pressure_level``). :func:`open_source` opens any of them without reading values (many files through
:func:`xarray.open_mfdataset`, one dask chunk per file at least), and :func:`normalise_source` renames the
coordinates to the data model's ``latitude`` / ``longitude`` / ``time`` / ``level``, merges ERA5T into ERA5
(``expver``), drops GRIB housekeeping attributes and squeezes one-member dimensions, so that the joins
(:mod:`xwvnet.joins`) deal with one spelling only.
"""

from __future__ import annotations

import glob
import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd
import xarray as xr

from .. import schema as S
from ..errors import (
    InputNotFoundError,
    InvalidArgumentError,
    InvalidDataError,
    InvalidFileError,
    InvalidTypeError,
    MissingDependencyError,
)
from .storage import Location, locate
from .text import TEXT_SUFFIXES, open_text, text_family

#: coordinate names read as latitude / longitude (else a variable with that ``standard_name``)
LATITUDE_NAMES = ("latitude", "lat", "nav_lat", "y_lat", "LATITUDE", "LAT", "Latitude")
LONGITUDE_NAMES = ("longitude", "lon", "nav_lon", "x_lon", "LONGITUDE", "LON", "Longitude")
#: time axes read as ``time``, in order (ERA5 from the new CDS: ``valid_time``; CMEMS in situ: ``TIME``)
TIME_NAMES = ("time", "TIME", "Time", "ocean_time")
#: vertical axes renamed ``level`` (ERA5 old and new CDS netCDF, cfgrib)
LEVEL_NAMES = ("level", "pressure_level", "isobaricInhPa", "isobaric_level")
#: dimensions squeezed away when they hold one member (ensemble number, ERA5/ERA5T version, buoy depth, step)
SQUEEZED_NAMES = ("number", "expver", "step", "DEPTH", "depth", "surface", "heightAboveGround")
#: spectral axes renamed ``frequency`` / ``direction`` (wavespectra's Zarr and netCDF, SWAN)
SPECTRAL_NAMES = {"freq": "frequency", "dir": "direction"}
#: CMEMS In Situ TAC / OceanSITES quality flags kept by default: 1 good data, 2 probably good data
GOOD_FLAGS = (1, 2)
#: attribute marking a source converted from the CMEMS In Situ TAC layout
INSITU_LAYOUT = "xwvnet_layout"
#: suffix of the per-variable boolean "a value was there but its quality flag was not good"
QC_FLAGGED = "__qc_flagged"
GRIB_SUFFIXES = (".grib", ".grb", ".grib2", ".grb2")
NETCDF_SUFFIXES = (".nc", ".nc4", ".netcdf", ".cdf")
#: image file endings read as quicklooks
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
_UNITS = {"latitude": ("degrees_north", "degree_north", "degree_n", "degrees_n"),
          "longitude": ("degrees_east", "degree_east", "degree_e", "degrees_e")}

# --- the input door ---------------------------------------------------------------------------------------------------
#: a Sentinel-1 SAFE product: a folder holding ``manifest.safe`` (or named ``*.SAFE``), that file, or a zip
SAFE = "safe"
#: an image file (:data:`IMAGE_SUFFIXES`)
QUICKLOOK = "quicklook"
#: a Sentinel-1 L2 OCN product (``s1?-wv?-ocn-...nc``)
OCN = "ocn"
#: a Zarr store (a folder ``*.zarr`` or holding ``zarr.json``/``.zgroup``; a URL that names no file)
ZARR = "zarr"
#: an EOPF Sentinel-1 WV L1 SLC product (Zarr: ``S01SWVSLC_...zarr``, zipped or not, or a Zarr folder saying so)
EOPF_SLC = "eopf_slc"
#: an EOPF Sentinel-1 WV L2 OCN product (Zarr: ``S01SWVOCN_...zarr``, zipped or not, or a Zarr folder saying so)
EOPF_OCN = "eopf_ocn"
#: a netCDF file (:data:`NETCDF_SUFFIXES`)
NETCDF = "netcdf"
#: a GRIB file (:data:`GRIB_SUFFIXES`)
GRIB = "grib"
#: a text file of buoy or model output: NDBC text, WAVEWATCH III and SWAN ASCII spectra (:mod:`xwvnet.io.text`),
#: told by its name (:data:`xwvnet.io.text.TEXT_SUFFIXES`, also gzip-compressed) or, for a local file of no
#: known ending (``41010h2019.txt``), by its first line
TEXT = "text"
#: any other file, named explicitly: its reader says what is wrong with it (a text file of a known family is
#: recognised by its first line)
FILE = "file"
#: the kinds :func:`resolve` tells apart
KINDS = (SAFE, QUICKLOOK, OCN, ZARR, NETCDF, GRIB, TEXT, FILE, EOPF_SLC, EOPF_OCN)
#: the kinds read from object storage; the others are read from a local disk
REMOTE_KINDS = (SAFE, ZARR, EOPF_SLC, EOPF_OCN)
#: EOPF's name of a WV product: ``<type>_<start>_<duration>_<unit><relative orbit>_...`` (then ``.zarr``, ``.zip``)
EOPF_NAME = re.compile(r"^(?P<type>S01SWV(?:SLC|OCN))_(?P<start>\d{8}T\d{6})_\d{4}_(?P<unit>[A-D])\d{3}_",
                       re.IGNORECASE)
#: the EOPF product types -> their kinds
EOPF_KINDS = {"S01SWVSLC": EOPF_SLC, "S01SWVOCN": EOPF_OCN}
_WHAT = {SAFE: "SAFE products (folders holding a manifest.safe, or zips)",
         QUICKLOOK: f"quicklook files ({' '.join(IMAGE_SUFFIXES)})", OCN: "L2 OCN products (*-ocn-*.nc)",
         ZARR: "Zarr stores", NETCDF: f"netCDF files ({' '.join(NETCDF_SUFFIXES)})",
         GRIB: f"GRIB files ({' '.join(GRIB_SUFFIXES)})",
         TEXT: f"text files of buoys and wave models ({' '.join(TEXT_SUFFIXES)}, NDBC .txt)",
         FILE: "files", EOPF_SLC: "EOPF WV L1 SLC products (S01SWVSLC_*.zarr, zipped or not)",
         EOPF_OCN: "EOPF WV L2 OCN products (S01SWVOCN_*.zarr, zipped or not)"}


@dataclass(frozen=True)
class Source:
    """One input, resolved once: what it is and where it is.

    Parameters
    ----------
    kind : str
        One of :data:`KINDS`.
    location : Location
        Where it is: a local path (absolute) or an object-store URL with its storage options. A SAFE product is
        named by its folder or zip, never by its ``manifest.safe``.
    """

    kind: str
    location: Location

    @property
    def path(self) -> Path:
        """The local path (a ``ValueError`` for a source on object storage)."""
        return self.location.path

    def __str__(self) -> str:
        return str(self.location)


def _kind_by_name(name: str) -> str:
    eopf = EOPF_NAME.match(name)
    if eopf is not None:
        return EOPF_KINDS[eopf["type"].upper()]
    low = name.lower()
    suffix = PurePosixPath(low).suffix
    if low == "manifest.safe" or suffix in (".safe", ".zip"):
        return SAFE
    if suffix == ".zarr":
        return ZARR
    if suffix in IMAGE_SUFFIXES:
        return QUICKLOOK
    if suffix == ".nc" and "-ocn-" in low:
        return OCN
    if suffix in TEXT_SUFFIXES or (suffix == ".gz" and PurePosixPath(low[:-3]).suffix in TEXT_SUFFIXES):
        return TEXT
    return NETCDF if suffix in NETCDF_SUFFIXES else GRIB if suffix in GRIB_SUFFIXES else FILE


def _folder_kind(path: Path) -> str | None:
    """SAFE or ZARR for a folder that is a product or a store; None for a plain folder (expanded into its files)."""
    if (path / "manifest.safe").is_file() or path.suffix.lower() == ".safe":
        return SAFE
    eopf = EOPF_NAME.match(path.name)
    if eopf is not None:
        return EOPF_KINDS[eopf["type"].upper()]
    if path.suffix.lower() == ".zarr" or (path / "zarr.json").exists() or (path / ".zgroup").exists():
        return _eopf_attributes_kind(path) or ZARR
    return None


def _eopf_attributes_kind(path: Path) -> str | None:
    """The kind of an EOPF WV product renamed by its user: its root attributes name the product type."""
    for file, key in (("zarr.json", "attributes"), (".zattrs", None)):
        try:
            attrs = json.loads((path / file).read_text()) if (path / file).stat().st_size < 2**24 else {}
        except (OSError, ValueError):
            continue
        attrs = (attrs.get(key) or {}) if key and isinstance(attrs, dict) else attrs
        stac = attrs.get("stac_discovery") if isinstance(attrs, dict) else None
        kind = stac.get("properties", {}).get("product:type") if isinstance(stac, dict) else None
        if isinstance(kind, str) and kind.upper() in EOPF_KINDS:
            return EOPF_KINDS[kind.upper()]
    return None


def source_kind(where: str | os.PathLike | Location) -> str | None:
    """What a source is: from its name, and for a local folder from what it holds.

    Parameters
    ----------
    where : str, os.PathLike or Location
        A path or URL.

    Returns
    -------
    str or None
        One of :data:`KINDS`; None for a local folder that is neither a SAFE product nor a Zarr store (a folder
        of files, which :func:`resolve` expands).

    Examples
    --------
    >>> source_kind("S1A_WV_SLC__1SSV_20190213T130655_20190213T131155_025911_02E29D_ABCD.SAFE")
    'safe'
    >>> source_kind("s3://bucket/era5/2019-01.nc"), source_kind("s1a-wv1-QL-vv-20190213t130655-x-095.png")
    ('netcdf', 'quicklook')
    """
    loc = locate(where)
    if loc.local and loc.path.is_dir():
        return _folder_kind(loc.path)
    kind = _kind_by_name(loc.name)
    if kind == FILE and loc.local and loc.path.is_file() and text_family(loc.path):
        return TEXT  # a text file of a known family, told by its first line
    return kind


def _product(kind: str, loc: Location) -> Source:
    """A source, a SAFE product named by its folder (not its manifest.safe)."""
    if kind == SAFE and loc.name.lower() == "manifest.safe":
        loc = Location(loc.scheme, loc.bucket, loc.prefix.rstrip("/").rpartition("/")[0], loc.options)
    return Source(kind, loc)


def _remote(loc: Location, kinds: Sequence[str] | None) -> Source:
    if glob.has_magic(loc.prefix):
        raise InvalidArgumentError(f"{loc}: glob patterns are expanded on a local disk only; name each product or "
                                   "store on object storage.")
    kind = _kind_by_name(loc.name)
    if kind == FILE:  # a URL that names no file: a folder (a SAFE product without .SAFE) or a store
        kind = next((k for k in kinds or () if k in REMOTE_KINDS), ZARR)
    if kind not in REMOTE_KINDS:
        raise InvalidArgumentError(f"{loc}: {_WHAT[kind]} are read from a local disk; copy it there first (SAFE "
                                   "products and Zarr stores are read from object storage).")
    if kinds is not None and kind not in kinds:
        wanted = " or ".join(_WHAT[k] for k in kinds)
        raise InvalidArgumentError(f"{loc} names one of the {_WHAT[kind]}; give {wanted}.")
    return _product(kind, loc)


def _local(loc: Location, wanted: Sequence[str], kinds: Sequence[str] | None) -> tuple[list[Source], str]:
    """The sources a local path names, and why it names none."""
    path = loc.path
    if path.is_dir():
        kind = _folder_kind(path)
        if kind is not None:
            return [Source(kind, loc)], ""
        found = [(k, p) for p in sorted(path.iterdir()) if (k := source_kind(p)) in wanted]
        return [_product(k, locate(p)) for k, p in found], f"the folder {path} holds none"
    if glob.has_magic(str(path)) and not path.exists():
        found = [(k, p) for p in sorted(glob.glob(str(path), recursive=True)) if (k := source_kind(p)) in wanted]
        return [_product(k, locate(p)) for k, p in found], f"no file matches the pattern {path}"
    kind = source_kind(loc) if path.is_file() else _kind_by_name(path.name)  # absent: its reader reports it
    return [_product(kinds[0] if kind == FILE and kinds else kind, loc)], ""


def resolve(
    items: str | os.PathLike | Location | Iterable[str | os.PathLike | Location],
    storage_options: dict | None = None,
    *,
    kinds: Sequence[str] | None = None,
) -> list[Source]:
    """Turn what a user names into typed sources, once: the input door of every reader.

    A local folder that is a SAFE product or a Zarr store is one source; any other folder stands for its files and
    products (sorted by name, not recursive), a glob pattern (``**`` recurses) for its matches; of these, only
    the ``kinds`` wanted are kept. A file named explicitly is kept whatever it is (or whether it exists): its reader
    reports what is wrong with it, so one bad file never stops a batch. URLs are read by
    :func:`xwvnet.io.storage.locate` (never taken for local paths) and name one SAFE product, EOPF product or Zarr
    store each (nothing else is read from object storage). EOPF WV products (``S01SWVSLC``/``S01SWVOCN``) are told by
    their names, or, renamed, by the ``product:type`` of their root attributes.

    Parameters
    ----------
    items : str, os.PathLike, Location or iterable of them
        Paths, ``file://``, ``s3://``, ``gs://``, ``az://`` URLs, folders, glob patterns, zips, ``manifest.safe``.
    storage_options : dict, optional
        Credentials and endpoint of the URLs among ``items`` (the names of
        :data:`xwvnet.io.storage.OPTIONS`, checked for each URL's scheme); local paths take none. Default: the
        standard environment.
    kinds : sequence of str, optional
        The kinds wanted (:data:`KINDS`): only these are taken from folders and patterns, a local file whose name
        says nothing is taken as the first, a URL whose name says nothing as the first read from object storage
        (:data:`REMOTE_KINDS`; else a Zarr store), and a URL of another kind is refused. Default: every kind but
        ``"file"``.

    Returns
    -------
    list of Source
        In the order given, each once (the first time).

    Raises
    ------
    xwvnet.errors.InputNotFoundError
        When only folders and patterns without a source of the kinds wanted are given; the message says what each
        item held. A ``FileNotFoundError``.
    xwvnet.errors.InvalidArgumentError
        For an empty list, a URL of a kind read from a local disk only (quicklooks, netCDF, GRIB, OCN) or with a
        glob pattern, or an unknown kind. A ``ValueError``.
    xwvnet.errors.InvalidTypeError
        For an item that is neither a path nor a URL.
    ValueError
        From :func:`xwvnet.io.storage.locate`: an unknown scheme, a URL without a bucket, storage options the
        scheme does not take.

    Examples
    --------
    >>> [(s.kind, str(s)) for s in resolve(["s3://bucket/wv/S1A_WV_SLC__1SSV_x.SAFE/manifest.safe",
    ...                                     "s3://bucket/wv/imagettes.zarr"])]
    [('safe', 's3://bucket/wv/S1A_WV_SLC__1SSV_x.SAFE'), ('zarr', 's3://bucket/wv/imagettes.zarr')]
    >>> resolve("/nonexistent/*.png", kinds=[QUICKLOOK])
    Traceback (most recent call last):
    ...
    xwvnet.errors.InputNotFoundError: no quicklook files (.png .jpg .jpeg .tif .tiff) found: no file matches the
    pattern /nonexistent/*.png. Give files, folders holding them, or glob patterns such as 'data/*.png' (quoted on a
    command line).
    """
    wanted = tuple(kinds) if kinds is not None else tuple(k for k in KINDS if k != FILE)
    unknown = sorted(set(wanted) - set(KINDS))
    if unknown:
        raise InvalidArgumentError(f"unknown source kind(s) {unknown}; known: {list(KINDS)}.")
    given = [items] if isinstance(items, str | os.PathLike | Location) else list(items)
    what = " or ".join(_WHAT[k] for k in wanted)
    hint = "Give files, folders holding them, or glob patterns such as 'data/*.png' (quoted on a command line)."
    if not given:
        raise InvalidArgumentError(f"no {what} given (an empty list). {hint}")
    found: list[Source] = []
    notes: list[str] = []
    for item in given:
        if not isinstance(item, str | os.PathLike | Location):
            raise InvalidTypeError(f"{item!r} is not a path or a URL: give file, folder or glob paths, or s3://, "
                                   "gs://, az:// URLs.")
        loc = locate(item)
        if loc.local:
            sources, note = _local(loc, wanted, kinds)
        else:
            sources, note = [_remote(locate(loc, storage_options) if storage_options else loc, kinds)], ""
        found += sources
        if not sources:
            notes.append(note)
    if not found:
        raise InputNotFoundError(f"no {what} found: {'; '.join(notes)}. {hint}")
    return list(dict.fromkeys(found))


def _open_grib(path: Path | list[Path]) -> xr.Dataset:
    try:
        import cfgrib
    except ImportError as err:
        name = path[0].name if isinstance(path, list) else path.name
        raise MissingDependencyError(
            f"{name} is a GRIB file: reading it needs cfgrib and eccodes (pip install cfgrib eccodes), "
            "or convert it to netCDF first."
        ) from err
    kwargs = {"engine": "cfgrib", "backend_kwargs": {"indexpath": ""}}
    combine = {"data_vars": "minimal", "coords": "minimal", "compat": "override", "combine_attrs": "drop_conflicts"}
    if isinstance(path, list):  # each file as one (several hypercubes merged), then all combined, lazily
        parts = [_valid_time_axis(_open_grib(p)) for p in path]
        _refuse_repeated_fields(path, parts)
        return xr.combine_by_coords([part.chunk() for part in parts], **combine)
    try:
        return xr.open_dataset(path, **kwargs)
    except cfgrib.dataset.DatasetBuildError:  # several hypercubes: GFS-Wave's surface fields and swell partitions
        return _grib_hypercubes(path)


def _valid_time_axis(ds: xr.Dataset) -> xr.Dataset:
    """A GRIB file of one valid time along a ``valid_time`` axis (so that files of one cycle's steps combine)."""
    if "valid_time" not in ds.coords or ds["valid_time"].ndim:
        return ds
    return ds.drop_vars([n for n in ("time", "step") if n in ds.coords and ds[n].ndim == 0]).expand_dims("valid_time")


def _refuse_repeated_fields(paths: list[Path], parts: list[xr.Dataset]) -> None:
    """Refuse GRIB files that hold the same variable at the same valid time (a second run of a cycle, a forecast
    step beside an analysis): combined, one of them would be taken without a word."""
    seen: dict[tuple[str, np.datetime64], Path] = {}
    for path, part in zip(paths, parts, strict=True):
        times = np.atleast_1d(part["valid_time"].values) if "valid_time" in part.coords else [None]
        for name in part.data_vars:
            for t in times:
                first = seen.setdefault((str(name), t), path)
                if first != path:
                    raise InvalidFileError(
                        f"GRIB files {first.name} and {path.name} both hold {name} valid at {t}: give one of them "
                        "(e.g. one forecast run per valid time)."
                    )


#: cfgrib's coordinates that only say which hypercube a field came from (dropped before merging hypercubes)
_GRIB_LEVEL_COORDS = ("surface", "heightAboveGround", "meanSea", "depthBelowSea", "step", "number")


def _grib_hypercubes(path: Path) -> xr.Dataset:
    """A GRIB file whose fields form several hypercubes, each opened by cfgrib (lazily) and merged on the grid.

    NOAA GFS-Wave (WAVEWATCH III) GRIB2 holds ``HTSGW``/``WVHGT`` (cfgrib's ``swh``/``shww``) on the surface and
    the swell partitions on ``orderedSequenceData`` levels, which cfgrib opens as separate Datasets; they share
    the grid and the time, so they are merged, each level kind kept as its own dimension.
    """
    import cfgrib

    try:
        parts = cfgrib.open_datasets(str(path), backend_kwargs={"indexpath": ""})
    except Exception as err:  # eccodes and cfgrib raise many types for damaged files
        raise InvalidFileError(f"GRIB file {path}: cfgrib cannot read it ({type(err).__name__}: {err}).") from err
    cleaned = []
    for part in parts:
        scalar = [str(n) for n in part.coords if part[n].ndim == 0 and str(n) in _GRIB_LEVEL_COORDS]
        cleaned.append(part.drop_vars(scalar))
    try:
        return xr.merge(cleaned, compat="override", join="outer", combine_attrs="drop_conflicts")
    except (ValueError, TypeError) as err:
        raise InvalidFileError(
            f"GRIB file {path} holds {len(parts)} kinds of fields that cannot be put on one grid ({err}); open them "
            "with cfgrib.open_datasets and pass the Dataset you need."
        ) from err


def is_text(source: Source) -> bool:
    """Tell whether a source is a text file of buoy or model output, by its kind or its first line.

    A file named explicitly whose name says nothing (``station.out``) may have been given another kind by
    :func:`resolve`; its first line tells.

    Parameters
    ----------
    source : Source
        A source :func:`resolve` found.

    Returns
    -------
    bool
        True for the ``"text"`` kind, and for a local file whose name is of no known kind and whose first line is
        that of a family :func:`xwvnet.io.text.text_family` knows.
    """
    if source.kind == TEXT:
        return True
    local = source.location.local
    return local and _kind_by_name(source.location.name) == FILE and source.path.is_file() and bool(
        text_family(source.path))


def open_source(
    path: str | os.PathLike | Sequence[Source], *, depth: float | None = None,
    quality_flags: Sequence[int] | None = None, position: tuple[float, float] | None = None,
) -> xr.Dataset:
    """Open a source lazily, one file or many: values are read only when the join samples them.

    The kind is told by :func:`resolve`: several netCDF/GRIB files of a folder or a glob pattern (monthly ERA5,
    daily altimeter tracks) through :func:`xarray.open_mfdataset`, combined along their coordinates, dask-backed
    with one chunk per file at least so that a join reads only the files (and chunks) its imagettes touch; GRIB
    (``.grib``, ``.grb``, ``.grib2``) through cfgrib; Zarr stores; text files of buoys and wave models (NDBC,
    WAVEWATCH III and SWAN ASCII spectra, by their name or, for a file named explicitly, their first line) through
    :func:`xwvnet.io.text.open_text`, read eagerly (they are small), a damaged one of many skipped with a warning;
    and anything else through :func:`xarray.open_dataset` (netCDF; packed ``scale_factor``/``add_offset`` values
    are unpacked). No values of netCDF, GRIB or Zarr are loaded, so a year of global hourly reanalysis opens in a
    moment. Sentinel-1 products are not opened here:
    :func:`xwvnet.collocate` reads L2 OCN products with :func:`xwvnet.open_ocn` and SAFE products with
    :func:`xwvnet.io.safe.imagettes_from_manifest`.

    Parameters
    ----------
    path : str, os.PathLike or sequence of Source
        The file, folder or glob pattern to open, or a Zarr store on object storage (URL; credentials from the
        environment); or the sources :func:`resolve` found for one.
    depth, quality_flags
        For CMEMS In Situ TAC platform files only, as in :func:`insitu_points` (each file is converted before the
        files are put end to end in time, because their ``LATITUDE``/``DEPTH`` axes differ from file to file).
    position : tuple of float, optional
        For text files without a position (NDBC): the station's (latitude, longitude), required for them.

    Returns
    -------
    xarray.Dataset
        The source as stored (coordinates not yet renamed: see :func:`normalise_source`); In Situ TAC files
        already as points along ``time``.

    Raises
    ------
    xwvnet.errors.InputNotFoundError
        When ``path`` does not exist, a glob matches nothing, or a folder holds no netCDF/GRIB file (a
        ``FileNotFoundError``).
    xwvnet.errors.InvalidArgumentError
        For a URL of a file read from a local disk only, a folder or glob naming several stores, or a SAFE
        product.
    ImportError
        For a GRIB file when cfgrib (and eccodes) is not installed.
    ValueError
        When the files of a many-file source cannot be combined (from :func:`xarray.open_mfdataset`, with the
        files named); for a damaged text file (:class:`xwvnet.io.text.TextFileError`, naming the file and line),
        or an NDBC text file without ``position``.

    Examples
    --------
    >>> from xwvnet.io.sources import open_source
    >>> open_source("/nonexistent/era5.nc")
    Traceback (most recent call last):
    ...
    xwvnet.errors.InputNotFoundError: collocation source /nonexistent/era5.nc does not exist; pass a Dataset or an
    existing file.
    """
    if isinstance(path, str | os.PathLike):
        text, found = os.fspath(path), resolve(path, kinds=(NETCDF, GRIB, ZARR, TEXT))
    else:
        text, found = ", ".join(map(str, path)), list(path)
    missing = [s for s in found if s.location.local and not s.path.exists()]
    if missing:
        raise InputNotFoundError(f"collocation source {missing[0]} does not exist; pass a Dataset or an existing "
                                 "file.")
    kinds = {s.kind for s in found}
    if SAFE in kinds:
        raise InvalidArgumentError(f"source {text} is a SAFE product: pass it to xwvnet.collocate, or open its "
                                   "imagettes with xwvnet.open_safe.")
    if ZARR in kinds:
        if len(found) > 1:
            raise InvalidArgumentError(f"source {text} names {len(found)} Zarr stores or files; a source is one "
                                       "store, or netCDF/GRIB files of one product and grid.")
        one = found[0].location
        return xr.open_zarr(one.path if one.local else one.zarr_store())
    found = [Source(TEXT, s.location) if is_text(s) else s for s in found]
    kinds = {s.kind for s in found}
    if TEXT in kinds:
        if kinds != {TEXT}:
            raise InvalidArgumentError(f"source {text} mixes text files with {sorted(kinds - {TEXT})} files; give "
                                       "files of one kind.")
        return open_text([s.path for s in found], position=position)
    if len(found) == 1:  # one file, named as such or the only match
        file = found[0].path
        if found[0].kind == GRIB:
            return _open_grib(file)
        opened = xr.open_dataset(file)
        return insitu_points(opened, depth=depth, quality_flags=quality_flags) if is_insitu(opened) else opened
    files = [s.path for s in found]  # many files: one dask chunk each at least
    if kinds == {GRIB}:
        return _open_grib(files)
    first = xr.open_dataset(files[0], chunks={})
    if is_insitu(first):
        parts = [insitu_points(first, depth=depth, quality_flags=quality_flags)]
        parts += [insitu_points(xr.open_dataset(f, chunks={}), depth=depth, quality_flags=quality_flags)
                  for f in files[1:]]
        return _end_to_end(parts, text)
    try:
        return xr.open_mfdataset(files, combine="by_coords", chunks={}, data_vars="minimal", coords="minimal",
                                 compat="override", combine_attrs="drop_conflicts")
    except (ValueError, TypeError) as err:
        raise InvalidFileError(
            f"the {len(files)} files of source {text} ({files[0].name} ... {files[-1].name}) cannot be combined "
            f"along their coordinates: {err}. Pass files of one product and grid."
        ) from err


def find_coordinate(ds: xr.Dataset, names: Sequence[str], standard_name: str) -> str | None:
    """Find the variable that holds a coordinate: by its usual names, then its CF standard name, then its units.

    Parameters
    ----------
    ds : xarray.Dataset
        The Dataset to look in (coordinates and data variables alike).
    names : sequence of str
        Usual names, tried in order (e.g. :data:`LATITUDE_NAMES`).
    standard_name : str
        The CF ``standard_name`` to look for when no usual name is present (e.g. ``"latitude"``).

    Returns
    -------
    str or None
        The variable's name, or ``None`` when there is none.

    Examples
    --------
    >>> import xarray as xr
    >>> ds = xr.Dataset(coords={"y": ("y", [0.0, 1.0], {"standard_name": "latitude"})})
    >>> find_coordinate(ds, LATITUDE_NAMES, "latitude")
    'y'
    """
    for name in names:
        if name in ds.variables:
            return name
    for name, var in ds.variables.items():
        if var.attrs.get("standard_name") == standard_name:
            return str(name)
    units = _UNITS.get(standard_name, ())
    for name, var in ds.coords.items():
        if str(var.attrs.get("units", "")).lower() in units:
            return str(name)
    return None


def _scalar_xy(ds: xr.Dataset) -> bool:
    """Whether the position is two scalar coordinates ``x`` (longitude) and ``y`` (latitude), in degrees."""
    if "x" not in ds.coords or "y" not in ds.coords or ds["x"].ndim or ds["y"].ndim:
        return False
    try:
        x, y = float(ds["x"].values), float(ds["y"].values)
    except (TypeError, ValueError):
        return False
    return -90 <= y <= 90 and -360 <= x <= 360


#: the dimension of a source that is one point with a scalar position
ONE_STATION = "station"


def _one_station(ds: xr.Dataset) -> xr.Dataset:
    """A source at one fixed position (scalar latitude/longitude: a point series) as one station."""
    lat, lon = ds[S.LATITUDE], ds[S.LONGITUDE]
    attrs = {S.LATITUDE: {"units": "degrees_north", "standard_name": "latitude", **lat.attrs},
             S.LONGITUDE: {"units": "degrees_east", "standard_name": "longitude", **lon.attrs}}
    out = ds.drop_vars([S.LATITUDE, S.LONGITUDE]).expand_dims(ONE_STATION)
    out = out.transpose(*[d for d in ds.dims], ONE_STATION)
    return out.assign_coords({S.LATITUDE: (ONE_STATION, [float(lat.values)], attrs[S.LATITUDE]),
                              S.LONGITUDE: (ONE_STATION, [float(lon.values)], attrs[S.LONGITUDE])})


def _merge_expver(ds: xr.Dataset) -> xr.Dataset:
    """ERA5 with ERA5T: the final release (first ``expver``) where it has values, the preliminary one elsewhere."""
    parts = [ds.isel(expver=i, drop=True) for i in range(ds.sizes["expver"])]
    merged = parts[0]
    for part in parts[1:]:
        merged = merged.fillna(part)
    return merged.assign_attrs(ds.attrs)


def _without_grib_attrs(ds: xr.Dataset) -> xr.Dataset:
    """Drop cfgrib's ``GRIB_*`` housekeeping attributes (units, long names and CF attributes are kept)."""
    def clean(attrs: dict) -> dict:
        return {k: v for k, v in attrs.items() if not str(k).startswith("GRIB_")}

    if not any(str(k).startswith("GRIB_") for var in (ds, *ds.variables.values()) for k in var.attrs):
        return ds
    out = ds.copy()
    for name in out.variables:
        out[name].attrs = clean(out[name].attrs)
    out.attrs = clean(out.attrs)
    return out


def normalise_source(
    source: xr.Dataset, *, depth: float | None = None, quality_flags: Sequence[int] | None = None
) -> xr.Dataset:
    """Spell a source as the data model does: ``latitude``, ``longitude``, ``time`` and ``level``.

    ERA5 netCDF from the new CDS names its time axis ``valid_time`` and its levels ``pressure_level``; cfgrib
    gives ``time`` (the analysis time) and a ``valid_time`` coordinate (time + step), which is the time the field
    is valid at and so the one to match imagettes with, and ``isobaricInhPa``; CMEMS in situ files spell
    ``TIME``/``LATITUDE``/``LONGITUDE``. An ``expver`` dimension (ERA5 with ERA5T) is merged, final values first;
    one-member dimensions (``number``, ``expver``, ``step``, ``DEPTH`` ...) and scalar leftovers are dropped, and
    so is a scalar ``time`` (one field), so that the source does not look time-dependent. cfgrib's ``GRIB_*``
    attributes are dropped. A source at one position (scalar ``latitude``/``longitude``, or scalar ``x``/``y`` in
    degrees as DHI's tools write point series) becomes one station (a ``station`` dimension of one). Nothing is
    loaded.

    Parameters
    ----------
    source : xarray.Dataset
        The source as opened (see :func:`open_source`).
    depth, quality_flags
        For a CMEMS In Situ TAC file not yet converted, as in :func:`insitu_points`.

    Returns
    -------
    xarray.Dataset
        A new Dataset with the coordinates renamed (wavespectra's ``freq``/``dir`` too, and a time axis known only
        by its ``standard_name``), times given as ISO strings with a zone converted to naive UTC; the input is not
        modified.

    Raises
    ------
    ValueError
        When no latitude/longitude can be found, or ``valid_time`` spans more than one dimension (forecast
        steps): select one step first.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ds = xr.Dataset({"t2m": (("valid_time", "lat", "lon"), np.zeros((1, 2, 3)))},
    ...                 coords={"valid_time": [np.datetime64("2021-03-01T12", "ns")], "lat": [0.0, 1.0],
    ...                         "lon": [0.0, 1.0, 2.0]})
    >>> sorted(normalise_source(ds).t2m.dims)
    ['latitude', 'longitude', 'time']
    """
    out = insitu_points(source, depth=depth, quality_flags=quality_flags) if is_insitu(source) else source
    out = apply_quality_flags(out, quality_flags)
    lat = find_coordinate(out, LATITUDE_NAMES, "latitude")
    lon = find_coordinate(out, LONGITUDE_NAMES, "longitude")
    if lat is None and lon is None and _scalar_xy(out):  # DHI / modelskill point series: scalar x (lon), y (lat)
        lat, lon = "y", "x"
    if lat is None or lon is None:
        raise InvalidDataError(
            f"the collocation source has no latitude/longitude: expected variables named {LATITUDE_NAMES} / "
            f"{LONGITUDE_NAMES} (or with those standard names or units); found {sorted(map(str, out.variables))}."
        )
    renames = {k: v for k, v in ((lat, S.LATITUDE), (lon, S.LONGITUDE)) if k != v}
    spelled = next((n for n in TIME_NAMES if n in out.variables), None)
    if spelled is None and "valid_time" not in out.variables:
        spelled = next((str(n) for n, v in out.variables.items()
                        if v.attrs.get("standard_name") == "time" and v.ndim == 1), None)
    renames.update({k: v for k, v in SPECTRAL_NAMES.items() if k in out.dims and v not in out.variables})
    if spelled is not None and spelled != S.TIME:
        renames[spelled] = S.TIME
    level = next((n for n in LEVEL_NAMES if n in out.dims), None)
    if level is not None and level != "level" and "level" not in out.variables:
        renames[level] = "level"
    if renames:
        out = out.rename(renames)
    if out[S.LATITUDE].ndim == 0 and out[S.LONGITUDE].ndim == 0:
        out = _one_station(out)
    if "valid_time" in out.variables:
        vt = out["valid_time"]
        if "valid_time" in out.dims:
            out = out.drop_vars([S.TIME], errors="ignore").rename({"valid_time": S.TIME})
        elif vt.ndim == 1 and S.TIME in out.dims and vt.dims == (S.TIME,):
            out = out.drop_vars("valid_time").assign_coords({S.TIME: vt.values})
        elif vt.ndim == 0 and S.TIME not in out.dims:
            out = out.drop_vars("valid_time")
        elif vt.ndim > 1:
            raise InvalidDataError(
                f"the source's valid_time has dims {vt.dims}: select one forecast step (source.isel(step=0)) or "
                "stack time and step into one valid time first."
            )
    if "expver" in out.dims and out.sizes["expver"] > 1:
        out = _merge_expver(out)
    squeeze = [d for d in SQUEEZED_NAMES if d in out.dims and out.sizes[d] == 1]
    if squeeze:
        out = out.isel({d: 0 for d in squeeze})
    scalar = [n for n in out.coords if out[n].ndim == 0 and n in (S.TIME, *SQUEEZED_NAMES)]
    scalar += [n for n in ("expver",) if n in out.coords and n not in out.dims]  # ERA5T flags along time
    if scalar:
        out = out.drop_vars(scalar)
    if S.TIME in out.variables and out[S.TIME].dtype.kind in "OUS":
        out = out.assign_coords({S.TIME: (out[S.TIME].dims, utc_times(out[S.TIME].values, "the source's time"),
                                          {**out[S.TIME].attrs, "comment": "converted to UTC"})})
    return _without_grib_attrs(out)


# --- CMEMS In Situ TAC platform files ---------------------------------------------------------------------------------
def is_insitu(ds: xr.Dataset) -> bool:
    """Tell a CMEMS In Situ TAC (OceanSITES-style) platform file: ``TIME``, ``DEPTH``/``POSITION``, ``<VAR>_QC``.

    Parameters
    ----------
    ds : xarray.Dataset
        A file as opened.

    Returns
    -------
    bool
        Whether :func:`insitu_points` applies (already converted files are not matched again).

    Examples
    --------
    >>> is_insitu(xr.Dataset({"VAVH": ("TIME", [1.0]), "VAVH_QC": ("TIME", [1])}, coords={"TIME": [0]}))
    False
    """
    if ds.attrs.get(INSITU_LAYOUT) == "cmems_insitu" or "TIME" not in ds.dims:
        return False
    has_qc = any(str(n).endswith("_QC") for n in ds.data_vars)
    return has_qc and bool({"DEPTH", "POSITION"} & set(ds.dims)) and "LATITUDE" in ds.variables


def _flag_ok(flags: xr.DataArray, good: Sequence[int]) -> xr.DataArray:
    return flags.isin(list(good))


def insitu_points(
    ds: xr.Dataset, *, depth: float | None = None, quality_flags: Sequence[int] | None = None
) -> xr.Dataset:
    """A CMEMS In Situ TAC platform file as points along ``time``: one value per time and variable, QC applied.

    The format (Copernicus In Situ TAC / OceanSITES) stores ``VAR(TIME, DEPTH)`` with its flags ``VAR_QC`` and the
    depth of each level per time in ``DEPH(TIME, DEPTH)`` (levels are not the same depths from time to time), the
    position per time on dims ``LATITUDE``/``LONGITUDE``/``POSITION`` as long as ``TIME`` (or of length 1 for a
    fixed platform), ``TIME_QC`` and ``POSITION_QC``. Here:

    - values whose own flag, ``TIME_QC`` or ``POSITION_QC`` is not in ``quality_flags`` are dropped (NaN), and
      ``VAR__qc_flagged(time)`` records where a value was there but none was good, so that the joins can count it;
    - of the depth levels, the **shallowest valid one at each time** is kept (smallest ``DEPH``; wave and wind
      sensors sit at one level, temperatures at several), or with ``depth=`` the valid level nearest that depth,
      within 1 m (``DEPH`` negative upwards, as the format has it);
    - positions become ``latitude(time)``, ``longitude(time)``.

    Lazy: the values stay dask arrays where the input is; only positions and times are read.

    Parameters
    ----------
    ds : xarray.Dataset
        One platform file as opened (e.g. ``AR_TS_MO_<platform>_<day>.nc``).
    depth : float, optional
        The depth (m, positive down) to take values at; default the shallowest valid level per time.
    quality_flags : sequence of int, optional
        The flags kept; default :data:`GOOD_FLAGS` (1 good, 2 probably good).

    Returns
    -------
    xarray.Dataset
        Variables on ``time`` only, coordinates ``time``, ``latitude``, ``longitude``; attribute ``xwvnet_layout``
        and per variable ``depth_selection`` and ``quality_flags_kept``.

    Raises
    ------
    ValueError
        When the positions are neither one per time nor one for the file.
    """
    good = tuple(GOOD_FLAGS if quality_flags is None else quality_flags)
    n = ds.sizes["TIME"]
    times = ds["TIME"]
    lat = np.asarray(ds["LATITUDE"].values, dtype=float).ravel()
    lon = np.asarray(ds["LONGITUDE"].values, dtype=float).ravel()
    if lat.size == 1 and lon.size == 1:
        lat, lon = np.repeat(lat, n), np.repeat(lon, n)
    if lat.size != n or lon.size != n:
        raise InvalidFileError(
            f"In Situ TAC file {ds.encoding.get('source', '')}: LATITUDE has {lat.size} values and LONGITUDE "
            f"{lon.size} for {n} times; expected one position per time or one for the file."
        )
    keep = np.ones(n, dtype=bool)
    if "TIME_QC" in ds.variables:
        keep &= np.isin(np.asarray(ds["TIME_QC"].values).ravel(), good)
    if "POSITION_QC" in ds.variables and ds["POSITION_QC"].size == n:
        keep &= np.isin(np.asarray(ds["POSITION_QC"].values).ravel(), good)
    elif "POSITION_QC" in ds.variables and ds["POSITION_QC"].size == 1:
        keep &= bool(np.isin(np.asarray(ds["POSITION_QC"].values).ravel(), good)[0])
    keep_t = xr.DataArray(keep, dims=("TIME",))
    skip = {"TIME", "LATITUDE", "LONGITUDE", "DEPH", "TIME_QC", "POSITION_QC", "DEPH_QC"}
    out: dict[str, xr.DataArray] = {}
    for name, var in ds.data_vars.items():
        name = str(name)
        if name in skip or name.endswith("_QC") or "TIME" not in var.dims or var.dtype.kind not in "fiu":
            continue
        if set(var.dims) - {"TIME", "DEPTH"}:
            continue
        present = var.notnull()
        ok = present & keep_t
        if f"{name}_QC" in ds.variables:
            ok &= _flag_ok(ds[f"{name}_QC"], good)
        values = var.where(ok)
        how = "the only level"
        if "DEPTH" in var.dims:
            level = ds["DEPH"] if "DEPH" in ds.variables else xr.DataArray(np.arange(ds.sizes["DEPTH"]),
                                                                            dims=("DEPTH",))
            level = level.where(ok)
            if depth is None:
                chosen = level == level.min("DEPTH")
                how = "the shallowest valid level at each time (smallest DEPH)"
            else:
                gap = abs(level - float(depth))
                chosen = (gap == gap.min("DEPTH")) & (gap <= 1.0)
                how = f"the valid level nearest {float(depth)} m at each time, within 1 m"
            values = values.where(chosen).max("DEPTH")
            flagged = present.any("DEPTH") & ~ok.any("DEPTH")
        else:
            flagged = present & ~ok
        attrs = {k: v for k, v in var.attrs.items() if k not in ("ancillary_variables",)}
        out[name] = values.assign_attrs(attrs, depth_selection=how, quality_flags_kept=list(good))
        out[name + QC_FLAGGED] = flagged.rename(name + QC_FLAGGED)
    coords = {"time": ("time", np.asarray(times.values), times.attrs),
              "latitude": ("time", lat, {"units": "degrees_north", "standard_name": "latitude"}),
              "longitude": ("time", lon, {"units": "degrees_east", "standard_name": "longitude"})}
    result = xr.Dataset({k: v.rename({"TIME": "time"}).reset_coords(drop=True).drop_vars("TIME", errors="ignore")
                         for k, v in out.items()}, coords=coords)
    return result.assign_attrs({**{k: v for k, v in ds.attrs.items() if k in ("title", "platform_code", "id")},
                                INSITU_LAYOUT: "cmems_insitu"})


#: flag meanings kept by default where a variable names its quality flag (``ancillary_variables``)
GOOD_MEANINGS = ("good", "good_data", "probably_good", "probably_good_data", "very_good", "acceptable")


def apply_quality_flags(ds: xr.Dataset, quality_flags: Sequence[int] | None = None) -> xr.Dataset:
    """Drop values whose quality flag is not good, for variables that name their flag in ``ancillary_variables``.

    ESA CCI Sea State (``swh_quality``: 0 undefined, 1 bad, 2 acceptable, 3 good) and other CF files name the
    flag of a variable in its ``ancillary_variables``; the flag's ``flag_values``/``flag_meanings`` say which values
    are good (:data:`GOOD_MEANINGS`), unless ``quality_flags`` lists them. Values with another flag become NaN and
    ``VAR__qc_flagged`` records where, so that the joins count them. Lazy.

    Parameters
    ----------
    ds : xarray.Dataset
        The source.
    quality_flags : sequence of int, optional
        The flag values kept; default those whose meaning is good or acceptable.

    Returns
    -------
    xarray.Dataset
        A new Dataset (the same one when no variable names a flag with meanings), flag variables dropped.

    Examples
    --------
    >>> ds = xr.Dataset({"swh": ("time", [1.0, 2.0], {"ancillary_variables": "swh_quality"}),
    ...                  "swh_quality": ("time", [3, 1], {"flag_values": [0, 1, 2, 3],
    ...                                                   "flag_meanings": "undefined bad acceptable good"})})
    >>> apply_quality_flags(ds).swh.values.tolist()
    [1.0, nan]
    """
    out, used = ds, set()
    for name, var in ds.data_vars.items():
        for flag in str(var.attrs.get("ancillary_variables", "")).split():
            if flag not in ds.variables or ds[flag].dims != var.dims:
                continue
            attrs = ds[flag].attrs
            if quality_flags is not None:
                good = list(quality_flags)
            elif "flag_values" in attrs and "flag_meanings" in attrs:
                meanings = str(attrs["flag_meanings"]).split()
                good = [v for v, m in zip(np.ravel(attrs["flag_values"]).tolist(), meanings) if m in GOOD_MEANINGS]
            else:
                continue
            ok = ds[flag].isin(good)
            out = out.assign({str(name): out[name].where(ok).assign_attrs(var.attrs, quality_flags_kept=good),
                              f"{name}{QC_FLAGGED}": var.notnull() & ~ok})
            used.add(flag)
    return out.drop_vars(sorted(used)) if used else out


def _end_to_end(parts: list[xr.Dataset], text: str) -> xr.Dataset:
    """Converted In Situ TAC files put end to end along ``time``, sorted; repeated times (the same record in two
    daily files) are kept once and counted in the attribute ``duplicate_times_dropped``."""
    joined = xr.concat(parts, dim="time", data_vars="all", coords="minimal", compat="override",
                       combine_attrs="drop_conflicts")
    t = np.asarray(joined["time"].values)
    order = np.argsort(t, kind="stable")
    first = np.ones(t.size, dtype=bool)
    first[1:] = t[order][1:] != t[order][:-1]
    joined = joined.isel(time=order[first])
    return joined.assign_attrs(duplicate_times_dropped=int((~first).sum()), source_files=len(parts),
                               source_pattern=text, **{INSITU_LAYOUT: "cmems_insitu"})


def utc_times(values: np.ndarray, what: str) -> np.ndarray:
    """Times as naive UTC datetime64[ns]: datetime64 as they are, ISO strings with a zone converted to UTC.

    Parameters
    ----------
    values : numpy.ndarray
        datetime64, or strings / objects such as ``"2021-03-01T12:00:00+02:00"``.
    what : str
        What the times are, for the error message.

    Returns
    -------
    numpy.ndarray
        datetime64[ns], NaT where missing.

    Raises
    ------
    ValueError
        When the values are numbers (times not decoded) or strings that are not times.

    Examples
    --------
    >>> str(utc_times(np.array(["2021-03-01T12:00:00+02:00"], dtype=object), "time")[0])
    '2021-03-01T10:00:00.000000000'
    """
    v = np.asarray(values)
    if v.dtype.kind == "M":
        return v.astype("datetime64[ns]")
    if v.dtype.kind in "OUS":
        try:
            parsed = pd.to_datetime(pd.Series(v.ravel()).astype(str).replace({"": None, "NaT": None, "nan": None}),
                                    utc=True, format="ISO8601")
        except (ValueError, TypeError) as err:
            raise InvalidDataError(
                f"{what} holds strings that are not ISO times (first {v.ravel()[:2].tolist()}): {err}"
            ) from err
        return parsed.dt.tz_localize(None).to_numpy().astype("datetime64[ns]").reshape(v.shape)
    raise InvalidDataError(
        f"{what} holds {v.dtype} numbers, not times (first {v.ravel()[:2].tolist()}): give it CF units "
        "('hours since 2021-01-01') or pass datetime64 values."
    )
