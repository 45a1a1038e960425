"""ESA's EOPF Zarr layout of Sentinel-1 WV products: ``S01SWVSLC`` (L1 SLC) and ``S01SWVOCN`` (L2 OCN).

The Earth Observation Processing Framework re-formats Sentinel-1 products as Zarr. A WV SLC product holds one group
per vignette (imagette), named ``S01SWVSLC_<start>_<duration>_<unit><rel. orbit>_<id>_<datatake>_<POL>_<WV1|2>_<nnn>``,
with ``measurements/slc`` (complex64 on ``azimuth_time`` x ``slant_range_time``, coordinates ``line`` and ``pixel``),
``quality/calibration/sigma_nought`` and ``quality/noise_range/noise_range_lut`` (one row per annotated vector, at
the vector's ``line`` and ``pixel``), ``conditions/gcp/{latitude,longitude,incidence_angle}`` (the geolocation grid)
and the annotation as ``stac_discovery``/``other_metadata`` attributes. An OCN product holds ``osw``, ``owi`` and
``rvl`` groups, each with one group per vignette.

This module knows that layout and nothing else: it opens a product (a folder, a zip, on local disk or on object
storage, through :class:`~xwvnet.io.storage.Location`), lists and checks its vignettes (:func:`scan_slc`,
:func:`ocn_vignettes`) and streams the pixels of one vignette (:func:`power_blocks`). The SAFE reader
(:mod:`xwvnet.io.safe`) and the OCN reader (:mod:`xwvnet.io.ocn`) turn them into imagette Datasets, with the same
calibration and quicklook recipe as SAFE products. A missing variable or an unknown layout is one
:class:`~xwvnet.errors.InvalidFileError` naming what is missing.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

import numpy as np
import xarray as xr

from ..errors import InvalidFileError, UnsafeInputError
from .names import MISSIONS, NameInfo
from .sources import EOPF_NAME
from .storage import Location

#: the EOPF product type of WV L1 SLC products
SLC = "S01SWVSLC"
#: the EOPF product type of WV L2 OCN products
OCN = "S01SWVOCN"
#: the WV product types read here
PRODUCT_TYPES = (SLC, OCN)
#: Sentinel-1 units: the ``platform`` of EOPF attributes (``sentinel-1a``...) -> the data model's ``mission``
PLATFORMS = {f"sentinel-{m[1:]}": m for m in MISSIONS}
#: largest uncompressed / compressed size ratio of a zip member (as for SAFE zips)
MAX_ZIP_RATIO = 200
#: largest member of a zipped product (a chunk or a metadata file)
MAX_MEMBER_BYTES = 2 * 2**30
_VIGNETTE = re.compile(
    r"^S01SWV(?:SLC|OCN)_\d{8}T\d{6}_\d{4}_(?P<unit>[A-D])\d{3}_[0-9A-Z]*_(?P<datatake>[0-9A-F]{6})_"
    r"(?P<polarization>HH|VV|HV|VH)_(?P<swath>WV[12])_(?P<number>\d{3})$",
    re.IGNORECASE,
)
_SUFFIXES = (".zarr.zip", ".zarr", ".zip")
#: the variables of a SLC vignette the reader needs (the noise LUT is optional: Sentinel-1C products lack it)
SLC_VARIABLES = (
    "measurements/slc",
    "quality/calibration/sigma_nought",
    "conditions/gcp/latitude",
    "conditions/gcp/longitude",
    "conditions/gcp/incidence_angle",
)
NOISE = "quality/noise_range/noise_range_lut"


def product_type(name: str) -> str | None:
    """The EOPF WV product type a file or folder name announces, if any.

    Parameters
    ----------
    name : str
        A file or folder name (``S01SWVSLC_...zarr``, ``...zarr.zip``), or a path or URL ending with one.

    Returns
    -------
    str or None
        ``"S01SWVSLC"`` or ``"S01SWVOCN"``; None for any other name.

    Examples
    --------
    >>> product_type("s3://bucket/S01SWVSLC_20240926T013055_0252_A319_6129_06D28D.zarr")
    'S01SWVSLC'
    >>> product_type("S1A_WV_SLC__1SSV_20190213T130655_20190213T131155_025911_02E29D_ABCD.SAFE") is None
    True
    """
    match = EOPF_NAME.match(PurePosixPath(str(name).rstrip("/")).name)
    return match["type"].upper() if match else None


def product_name(location: Location) -> str:
    """The product's name: its folder or zip name without ``.zarr``/``.zip``.

    Parameters
    ----------
    location : Location
        Where the product is.

    Returns
    -------
    str
        E.g. ``S01SWVSLC_20240926T013055_0252_A319_6129_06D28D``.
    """
    name = location.name
    for suffix in _SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


class ObjectFile(io.RawIOBase):
    """A seekable binary file over an obstore reader (which returns obstore ``Bytes``, not ``bytes``).

    Parameters
    ----------
    reader : obstore.ReadableFile
        As ``obstore.open_reader`` returns it.
    """

    def __init__(self, reader: object) -> None:
        super().__init__()
        self._reader = reader

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        return bytes(self._reader.read() if size is None or size < 0 else self._reader.read(size))

    def readall(self) -> bytes:
        return self.read()

    def readinto(self, buffer: bytearray | memoryview) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._reader.seek(offset, whence)

    def tell(self) -> int:
        return self._reader.tell()

    def close(self) -> None:
        if not self.closed:
            self._reader.close()
        super().close()


def object_file(location: Location, buffer_size: int = 1 << 20) -> io.RawIOBase:
    """A seekable binary file of one object on object storage (range reads through obstore).

    Parameters
    ----------
    location : Location
        An object-storage location naming one object (e.g. a zip).
    buffer_size : int, default 1 MiB
        Bytes read ahead.

    Returns
    -------
    io.RawIOBase
        Close it when done.
    """
    import obstore

    parent = Location(
        location.scheme, location.bucket, location.prefix.rstrip("/").rpartition("/")[0], location.options
    )
    return ObjectFile(obstore.open_reader(parent.object_store(), location.name, buffer_size=buffer_size))


def _zip_store(fh: io.IOBase, what: str) -> tuple[Any, str]:
    """A read-only zarr store over a zip (any seekable file), checked for bombs, and the product's path in it."""
    from zarr.storage import ZipStore

    archive = zipfile.ZipFile(fh)
    roots = []
    for info in archive.infolist():
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > MAX_MEMBER_BYTES or (info.compress_type != zipfile.ZIP_STORED and ratio > MAX_ZIP_RATIO):
            raise UnsafeInputError(
                f"{what}: {info.filename} inflates to {info.file_size:,} bytes from "
                f"{info.compress_size:,} (limits {MAX_MEMBER_BYTES:,} bytes, ratio "
                f"{MAX_ZIP_RATIO}): refused as a zip bomb"
            )
        name = PurePosixPath(info.filename)
        if name.name in (".zgroup", "zarr.json"):
            roots.append(name.parent.as_posix())
    if not roots:
        raise InvalidFileError(f"{what} is a zip holding no Zarr group (.zgroup or zarr.json): not an EOPF product.")
    root = min(roots, key=lambda r: (r.count("/"), r))

    class _Opened(ZipStore):
        def _sync_open(self) -> None:  # the zip is open already (a local file or a range reader); reopened if closed
            import threading

            self._lock = threading.RLock()
            self._zf = archive if archive.fp is not None else zipfile.ZipFile(fh)
            self._is_open = True

        def close(self) -> None:
            super().close()
            fh.close()

    return _Opened(what, mode="r"), "" if root == "." else root


@dataclass(frozen=True)
class Product:
    """One EOPF product, where it is and what it is; picklable (the store is reopened where it is read).

    Parameters
    ----------
    location : Location
        The product's folder or zip, local or on object storage.
    name : str
        Its name (:func:`product_name`).
    kind : str
        One of :data:`PRODUCT_TYPES`.
    """

    location: Location
    name: str
    kind: str

    def __str__(self) -> str:
        return str(self.location)

    def close(self) -> None:
        """Nothing to close (each read opens the store it needs); for symmetry with SAFE products."""

    def open(self) -> tuple[Any, str]:
        """The zarr store of the product, and the path of the product's root group in it.

        Returns
        -------
        tuple
            ``(store, root)``.
        """
        return open_product(self.location)


def open_product(location: Location) -> tuple[Any, str]:
    """Open an EOPF product read-only: a folder or a zip, on local disk or on object storage.

    Parameters
    ----------
    location : Location
        The product's folder (``...zarr``) or zip (``...zarr.zip``, ``...zip``).

    Returns
    -------
    tuple
        ``(store, root)``: a zarr store and the path of the product's root group in it (``""`` but in zips that
        hold the product's folder).

    Raises
    ------
    xwvnet.errors.UnsafeInputError
        For a zip member whose size or compression ratio is out of bounds (a zip bomb).
    xwvnet.errors.InvalidFileError
        For a zip without a Zarr group.
    """
    is_zip = location.name.lower().endswith(".zip")
    if location.local:
        path = location.path
        if path.is_file() and zipfile.is_zipfile(path):
            return _zip_store(open(path, "rb"), str(path))  # noqa: SIM115 (the store keeps it open)
        return location.zarr_store(read_only=True), ""
    if is_zip:
        return _zip_store(object_file(location), str(location))
    return location.zarr_store(read_only=True), ""


def _join(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


def root_attributes(location: Location) -> dict:
    """The attributes of a product's root group (``stac_discovery``, ``other_metadata``).

    Parameters
    ----------
    location : Location
        The product.

    Returns
    -------
    dict
        Empty when the group has none.
    """
    import zarr

    store, root = open_product(location)
    try:
        return dict(zarr.open_group(store, path=root or None, mode="r").attrs)
    finally:
        store.close()


def product_kind(location: Location) -> str:
    """The EOPF product type of a product, from its name or else from its root attributes.

    Parameters
    ----------
    location : Location
        The product.

    Returns
    -------
    str
        One of :data:`PRODUCT_TYPES`.

    Raises
    ------
    xwvnet.errors.InvalidFileError
        When it is another EOPF product type (e.g. IW, GRD), or not an EOPF product at all.
    """
    kind = product_type(location.name)
    if kind is None:
        try:
            attrs = root_attributes(location)
        except Exception as err:  # noqa: BLE001 (zarr, obstore and zip errors alike: one line)
            raise InvalidFileError(f"{location}: not a readable Zarr product ({type(err).__name__}: {err})") from err
        kind = (
            str(
                attrs.get("stac_discovery", {}).get("properties", {}).get("product:type", "")
                or attrs.get("other_metadata", {}).get("title", "")
            ).upper()
            or None
        )
    if kind not in PRODUCT_TYPES:
        raise InvalidFileError(
            f"{location}: an EOPF product of type {kind or 'unknown'}; WV products are {' or '.join(PRODUCT_TYPES)}."
        )
    return kind


@dataclass
class Vignette:
    """What one SLC vignette says, read from its group: enough to calibrate and place it.

    Parameters
    ----------
    product : Product
        The product holding it.
    group : str
        Its group name (the vignette name).
    lines, samples : int
        Its size.
    time, stop_time : numpy.datetime64
        First and last line times (UTC).
    heading : float
        Platform heading, degrees.
    pass_direction : str
        ``ascending`` or ``descending``.
    azimuth_spacing, range_spacing : float
        Pixel spacings (azimuth, slant range), metres.
    info : NameInfo
        Mission, swath, polarization, orbit, datatake, imagette number (as :func:`xwvnet.io.names.parse_name`).
    calibration : tuple of numpy.ndarray
        ``(lines, pixels, values)`` of ``sigma_nought``: ``(n,)``, ``(m,)``, ``(n, m)``.
    grid : numpy.ndarray
        ``(k, 5)`` geolocation grid points: line, pixel, latitude, longitude, incidence angle.
    noise : tuple of numpy.ndarray, optional
        ``(lines, pixels, values)`` of ``noise_range_lut``; None when the product has none.
    notes : list of str
        What was missing and how it was handled.
    """

    product: Product
    group: str
    lines: int
    samples: int
    time: np.datetime64
    stop_time: np.datetime64
    heading: float
    pass_direction: str
    azimuth_spacing: float
    range_spacing: float
    info: NameInfo
    calibration: tuple[np.ndarray, np.ndarray, np.ndarray]
    grid: np.ndarray
    noise: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    notes: list[str] = field(default_factory=list)


def _properties(attrs: dict) -> dict:
    return attrs.get("stac_discovery", {}).get("properties", {}) or {}


def _number(value: object, what: str) -> float:
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as err:
        raise InvalidFileError(f"{what} is {value!r}, not a number") from err
    if not np.isfinite(out):
        raise InvalidFileError(f"{what} is {value!r}, not a finite number")
    return out


def _mission(props: dict, unit: str) -> str:
    platform = str(props.get("platform", "")).lower()
    mission = PLATFORMS.get(platform)
    if mission is None and platform:
        raise InvalidFileError(f"platform {platform!r} is not a Sentinel-1 unit ({', '.join(PLATFORMS)})")
    return mission or f"s1{unit.lower()}"


def _lut(ds: xr.Dataset, name: str, what: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(lines, pixels, values)`` of an annotation LUT as EOPF stores it, checked and sorted by line."""
    var = ds[name]
    if var.ndim != 2 or "line" not in ds.coords or "pixel" not in ds.coords:
        raise InvalidFileError(
            f"{what} has dims {var.dims} and coordinates {sorted(map(str, ds.coords))}; expected "
            "(azimuth_time, slant_range_time) with line and pixel"
        )
    lines = np.asarray(ds["line"].values, dtype=np.float64).ravel()
    pixels = np.asarray(ds["pixel"].values, dtype=np.float64).ravel()
    values = np.asarray(var.transpose(*ds["line"].dims, *ds["pixel"].dims).values, dtype=np.float64)
    if values.shape != (lines.size, pixels.size) or lines.size == 0:
        raise InvalidFileError(f"{what}: {values.shape} values for {lines.size} lines and {pixels.size} pixels")
    if not np.all(np.isfinite(values)) or not np.all(np.diff(pixels) > 0):
        raise InvalidFileError(f"{what} holds non-finite values or its pixels are not increasing")
    order = np.argsort(lines)
    if np.any(np.diff(lines[order]) <= 0):
        raise InvalidFileError(f"{what}: vector lines are not distinct")
    return lines[order], pixels, values[order]


def _open(store: Any, path: str, what: str) -> xr.Dataset:
    try:
        return xr.open_dataset(store, engine="zarr", group=path, chunks=None, consolidated=False)
    except (FileNotFoundError, KeyError, OSError) as err:
        raise InvalidFileError(f"no {what} group ({type(err).__name__}: {err})") from err


def _group_names(group: Any) -> list[str]:
    return sorted(str(k) for k in group.group_keys())


def vignette(product: Product, store: Any, root: str, name: str) -> Vignette:
    """Read and check one SLC vignette's metadata (no pixels).

    Parameters
    ----------
    product : Product
        The product.
    store : zarr store
        Its store, as :func:`open_product` gives it.
    root : str
        The product's root group in the store.
    name : str
        The vignette's group name.

    Returns
    -------
    Vignette

    Raises
    ------
    xwvnet.errors.InvalidFileError
        When a variable the reader needs (:data:`SLC_VARIABLES`) or an attribute (spacings, orbit) is missing or
        inconsistent; the message names it.
    """
    import zarr

    match = _VIGNETTE.match(name)
    if match is None:
        raise InvalidFileError(
            "the group name is not an EOPF WV vignette name "
            "(S01SWVSLC_<start>_<duration>_<unit><orbit>_<id>_<datatake>_<POL>_<WV1|WV2>_<nnn>)"
        )
    group = zarr.open_group(store, path=_join(root, name), mode="r")
    missing = [v for v in SLC_VARIABLES if v not in group]
    if missing:
        raise InvalidFileError(f"missing {', '.join(missing)} (an EOPF S01SWVSLC vignette has them all)")
    attrs = dict(group.attrs)
    props = _properties(attrs)
    other = attrs.get("other_metadata", {}) or {}
    slc = group["measurements/slc"]
    if len(slc.shape) != 2 or np.dtype(slc.dtype).kind != "c":
        raise InvalidFileError(f"measurements/slc is {slc.dtype} {tuple(slc.shape)}; expected complex (lines, samples)")
    lines, samples = (int(n) for n in slc.shape)
    measurements = _open(store, _join(root, name, "measurements"), "measurements")
    times = np.asarray(measurements["azimuth_time"].values) if "azimuth_time" in measurements.coords else None
    if times is None or times.dtype.kind != "M" or times.size != lines:
        raise InvalidFileError("measurements/azimuth_time is missing, not times, or not one per line")
    calibration = _lut(
        _open(store, _join(root, name, "quality/calibration"), "quality/calibration"),
        "sigma_nought",
        "quality/calibration/sigma_nought",
    )
    if not np.all(calibration[2] > 0):
        raise InvalidFileError("quality/calibration/sigma_nought must be > 0")
    notes = []
    noise = None
    if NOISE in group:
        noise = _lut(
            _open(store, _join(root, name, "quality/noise_range"), "quality/noise_range"), "noise_range_lut", NOISE
        )
    else:
        notes.append(f"no {NOISE}: no thermal noise LUT (denoise impossible)")
    gcp = _open(store, _join(root, name, "conditions/gcp"), "conditions/gcp")
    if "line" not in gcp.coords or "pixel" not in gcp.coords:
        raise InvalidFileError("conditions/gcp has no line and pixel coordinates")
    gl, gp = np.meshgrid(
        np.asarray(gcp["line"].values, dtype=np.float64),
        np.asarray(gcp["pixel"].values, dtype=np.float64),
        indexing="ij",
    )
    cols = [
        np.asarray(gcp[v].transpose(*gcp["line"].dims, *gcp["pixel"].dims).values, dtype=np.float64)
        for v in ("latitude", "longitude", "incidence_angle")
    ]
    grid = np.column_stack([a.ravel() for a in (gl, gp, *cols)])
    if not np.all(np.isfinite(grid)):
        raise InvalidFileError("conditions/gcp holds non-finite latitudes, longitudes or incidence angles")
    azimuth = _number(props.get("sar:pixel_spacing_azimuth"), "stac_discovery sar:pixel_spacing_azimuth")
    slant = _number(props.get("sar:pixel_spacing_range"), "stac_discovery sar:pixel_spacing_range")
    orbit = int(_number(props.get("sat:absolute_orbit"), "stac_discovery sat:absolute_orbit"))
    heading = other.get(
        "platform_heading", other.get("general_annotation", {}).get("product_information", {}).get("platform_heading")
    )
    info = NameInfo(
        mission=_mission(props, match["unit"]),
        swath=match["swath"].lower(),
        product="slc",
        polarization=match["polarization"].lower(),
        time=np.datetime64(times[0], "ns"),
        stop_time=np.datetime64(times[-1], "ns"),
        orbit=orbit,
        datatake=match["datatake"].lower(),
        imagette_number=int(match["number"]),
    )
    return Vignette(
        product=product,
        group=name,
        lines=lines,
        samples=samples,
        time=info["time"],
        stop_time=info["stop_time"],
        heading=_number(heading, "other_metadata platform_heading"),
        pass_direction=str(props.get("sat:orbit_state", "")).lower(),
        azimuth_spacing=azimuth,
        range_spacing=slant,
        info=info,
        calibration=calibration,
        grid=grid,
        noise=noise,
        notes=notes,
    )


def _each_vignette(store: Any, names: list[str], product: str, read: Callable[[str], Any]) -> tuple[list, list[str]]:
    """``read`` each vignette group in number order: (what was read, ``"<product>:<nnn>: why"`` per one skipped).

    The product's store is closed at the end.
    """
    found, skipped = [], []
    try:
        for group in sorted(names, key=lambda n: int(n[-3:])):
            try:
                found.append(read(group))
            except (OSError, ValueError, KeyError, TypeError) as err:
                skipped.append(f"{product}:{group[-3:]}: {err}")
    finally:
        store.close()
    return found, skipped


def scan_slc(location: Location) -> tuple[list[Vignette], list[str]]:
    """The readable vignettes of an EOPF WV SLC product, and those skipped with the reason.

    Parameters
    ----------
    location : Location
        The product's folder or zip.

    Returns
    -------
    tuple
        ``(vignettes, skipped)``: :class:`Vignette` in imagette-number order, and one
        ``"<product>:<nnn>: <reason>"`` string per vignette skipped.

    Raises
    ------
    xwvnet.errors.InvalidFileError
        When the product is not an EOPF WV SLC product, or holds no vignette.
    """
    import zarr

    kind = product_kind(location)
    if kind != SLC:
        raise InvalidFileError(
            f"{location}: an EOPF {kind} product, not a WV L1 SLC ({SLC}); open L2 OCN products with xwvnet.open_ocn."
        )
    product = Product(location, product_name(location), kind)
    store, root = open_product(location)
    names = [n for n in _group_names(zarr.open_group(store, path=root or None, mode="r")) if _VIGNETTE.match(n)]
    if not names:
        raise InvalidFileError(f"{location}: an {SLC} product without vignette groups ({SLC}_..._<WV1|WV2>_<nnn>).")
    return _each_vignette(store, names, product.name, lambda name: vignette(product, store, root, name))


def power_blocks(product: Product, group: str, block_lines: int) -> Iterator[tuple[int, int, np.ndarray]]:
    """Stream ``|DN|^2`` of one vignette by blocks of lines: ``(line0, line1, float32 (line1 - line0, samples))``.

    Lines are read a chunk row at a time (EOPF chunks are 2048 lines), so each chunk is decoded about once.

    Parameters
    ----------
    product : Product
        The product.
    group : str
        The vignette's group name.
    block_lines : int
        Lines per block.

    Returns
    -------
    iterator of tuple
        ``(line0, line1, power)`` per block, in line order.
    """
    import zarr

    store, root = product.open()
    try:
        slc = zarr.open_array(store, path=_join(root, group, "measurements/slc"), mode="r")
        lines = int(slc.shape[0])
        span_start, span = 0, None
        step = max(int(block_lines), int(slc.chunks[0]))
        for a in range(0, lines, block_lines):
            b = min(lines, a + block_lines)
            if span is None or b > span_start + span.shape[0]:
                span_start, span = a, np.asarray(slc[a : min(lines, a + step)])
            block = span[a - span_start : b - span_start]
            yield a, b, np.square(block.real, dtype=np.float32) + np.square(block.imag, dtype=np.float32)
    finally:
        store.close()


def read_slc(product: Product, group: str) -> np.ndarray:
    """The complex DN of one vignette, complex64 ``(lines, samples)``.

    Parameters
    ----------
    product : Product
        The product.
    group : str
        The vignette's group name.

    Returns
    -------
    numpy.ndarray
    """
    import zarr

    store, root = product.open()
    try:
        slc = zarr.open_array(store, path=_join(root, group, "measurements/slc"), mode="r")
        return np.asarray(slc[:], dtype=np.complex64)
    finally:
        store.close()


#: OCN ``osw`` variables (EOPF path in a vignette group) -> the netCDF names of IPF's L2 OCN products
OSW_NAMES = {
    "measurements/total_hs": "oswTotalHs",
    "measurements/total_hs_standard_deviation": "oswTotalHsStdev",
    "measurements/wind_sea_hs": "oswWindSeaHs",
    "measurements/wave_age": "oswWaveAge",
    "measurements/hs": "oswHs",
    "measurements/wave_length": "oswWl",
    "measurements/wave_direction": "oswDirmet",
    "quality/partition_quality_flag": "oswQualityFlagPartition",
    "conditions/wind_speed": "oswWindSpeed",
    "conditions/wind_direction": "oswWindDirection",
    "conditions/auxiliary_wind_speed": "oswEcmwfWindSpeed",
    "conditions/auxiliary_wind_direction": "oswEcmwfWindDirection",
    "conditions/nrcs": "oswNrcs",
    "conditions/nrcs_denoised": "oswNrcsNeszCorr",
    "conditions/normalised_variance": "oswNv",
    "conditions/skewness": "oswSkew",
    "conditions/kurtosis": "oswKurt",
    "conditions/intensity": "oswInten",
    "conditions/azimuth_cutoff": "oswAzCutoff",
    "conditions/range_cutoff": "oswRaCutoff",
    "quality/snr": "oswSnr",
    "conditions/depth": "oswDepth",
    "conditions/land_flag": "oswLandFlag",
    "conditions/incidence_angle": "oswIncidenceAngle",
    "conditions/heading": "oswHeading",
    "conditions/polar_spectrum": "oswPolSpec",
    "latitude": "oswLat",
    "longitude": "oswLon",
    "k": "oswK",
}
#: OCN ``osw`` dimensions -> the netCDF ones
OSW_DIMS = {
    "azimuth": "oswAzSize",
    "range": "oswRaSize",
    "partition": "oswPartitions",
    "angular_binsize": "oswAngularBinSize",
    "wavenumber_binsize": "oswWavenumberBinSize",
}


def ocn_vignettes(location: Location) -> tuple[list[dict], list[str]]:
    """The ocean-swell (``osw``) part of each vignette of an EOPF WV OCN product, in the netCDF product's names.

    Each vignette's ``osw`` variables are renamed to IPF's netCDF names (:data:`OSW_NAMES`, :data:`OSW_DIMS`), so
    the OCN reader treats both formats alike; the acquisition time is the first zero-Doppler time of the
    vignette's ``rvl`` cells.

    Parameters
    ----------
    location : Location
        The product's folder or zip.

    Returns
    -------
    tuple
        ``(rows, skipped)``: per vignette a dict with ``name`` (group name), ``dataset`` (the renamed osw
        Dataset, loaded), ``info`` (:class:`~xwvnet.io.names.NameInfo`), ``source_product`` (empty: EOPF vignettes
        do not name it) and ``ipf`` (the processing software's version); and one
        ``"<product>:<nnn>: <reason>"`` string per vignette skipped.

    Raises
    ------
    xwvnet.errors.InvalidFileError
        When the product is not an EOPF WV OCN product, or has no ``osw`` vignettes.
    """
    import zarr

    kind = product_kind(location)
    if kind != OCN:
        raise InvalidFileError(f"{location}: an EOPF {kind} product, not a WV L2 OCN ({OCN}).")
    name = product_name(location)
    store, root = open_product(location)
    top = zarr.open_group(store, path=root or None, mode="r")
    if "osw" not in top:
        raise InvalidFileError(f"{location}: an {OCN} product without an osw group (ocean swell).")
    names = [n for n in _group_names(top["osw"]) if _VIGNETTE.match(n)]
    if not names:
        raise InvalidFileError(f"{location}: its osw group holds no vignette ({OCN}_..._<WV1|WV2>_<nnn>).")
    return _each_vignette(store, names, name, lambda group: _ocn_row(store, root, top, group))


def _ocn_row(store: Any, root: str, top: Any, group: str) -> dict:
    match = _VIGNETTE.match(group)
    parts, coords = [], xr.Dataset()
    for sub in ("measurements", "conditions", "quality"):
        if sub in top["osw"][group]:
            ds = _open(store, _join(root, "osw", group, sub), f"osw/{sub}")
            coords = coords.merge(
                ds.coords.to_dataset().reset_coords()[[c for c in ("latitude", "longitude", "k") if c in ds.coords]],
                compat="override",
            )
            parts.append(ds.reset_coords(drop=True).rename({v: f"{sub}/{v}" for v in ds.data_vars}))
    if not parts:
        raise InvalidFileError("osw vignette without measurements, conditions or quality groups")
    merged = xr.merge([*parts, coords], compat="override", join="outer")
    if "latitude" not in merged or "longitude" not in merged:
        raise InvalidFileError("osw has no latitude/longitude coordinates")
    keep = {k: v for k, v in OSW_NAMES.items() if k in merged.variables}
    ds = merged[list(keep)].rename(keep)
    ds = ds.rename_dims({d: n for d, n in OSW_DIMS.items() if d in ds.dims}).load()
    zdt = None
    if "rvl" in top and group in top["rvl"] and "conditions" in top["rvl"][group]:
        rvl = _open(store, _join(root, "rvl", group, "conditions"), "rvl/conditions")
        if "zero_doppler_time" in rvl and rvl["zero_doppler_time"].dtype.kind == "M":
            values = np.asarray(rvl["zero_doppler_time"].values).ravel()
            values = values[~np.isnat(values)]
            zdt = values.min() if values.size else None
    if zdt is None:
        raise InvalidFileError("no rvl/<vignette>/conditions/zero_doppler_time: its acquisition time is unknown")
    props = _properties(dict(top["osw"][group].attrs))
    orbit = int(_number(props.get("sat:absolute_orbit"), "stac_discovery sat:absolute_orbit"))
    time = np.datetime64(zdt, "ns")
    info = NameInfo(
        mission=_mission(props, match["unit"]),
        swath=match["swath"].lower(),
        product="ocn",
        polarization=match["polarization"].lower(),
        time=time,
        stop_time=time,
        orbit=orbit,
        datatake=match["datatake"].lower(),
        imagette_number=int(match["number"]),
    )
    software = props.get("processing:software", {})
    ipf = next(iter(software.values()), "") if isinstance(software, dict) and software else ""
    return {"name": group, "dataset": ds, "info": info, "source_product": "", "ipf": str(ipf)}
