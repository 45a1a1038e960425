"""Join imagettes with reanalysis grids (ERA5), wave-model output (WAVEWATCH III) and L2 OCN products: one call.

``collocate(ds, source)`` samples the source's variables at each imagette's ``time``, ``latitude`` and ``longitude``
and returns a new Dataset with them added, prefixed by the source's name (``era5_t2m``), units and attributes kept.
This module only dispatches: it opens the source (:mod:`xwvnet.io.sources`), turns wave spectra into integral
parameters (:mod:`.waves`), tells grids from points, and names the results. The sampling itself is done by
:func:`.grid.sample_grid` (``Dataset.interp`` / ``Dataset.sel``) and :func:`.points.sample_points`
(``BallTree`` on the sphere).

Imagettes outside the coverage or tolerance get NaN and are counted in a :class:`CollocationWarning`. Imagettes
without a position are never an error when some have one (they get NaN and are counted); when none has one (the
published quicklooks), :class:`MissingPositionError` says how to add them (:func:`add_positions`). The positions
(3 numbers per imagette) are always read; a dask-backed side gives a lazy result that reads only the source chunks
it touches.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from .. import schema as S
from .._files import local_path
from ..errors import InvalidArgumentError, InvalidDataError, warn
from ..io.ocn import open_ocn
from ..io.safe import imagettes_from_manifest, open_safe
from ..io.sources import (
    EOPF_OCN,
    EOPF_SLC,
    GRIB,
    LATITUDE_NAMES,
    LONGITUDE_NAMES,
    NETCDF,
    OCN,
    QC_FLAGGED,
    SAFE,
    TEXT,
    ZARR,
    Source,
    find_coordinate,
    is_text,
    normalise_source,
    open_source,
    resolve,
    utc_times,
)
from ..io.storage import locate
from .grid import METHODS, CollocationWarning, sample_grid
from .points import KEY, haversine_km, sample_points
from .waves import (
    DIRECTION,
    ERA5_SPECTRUM_NAMES,
    FREQUENCY,
    add_wave_parameters,
    decode_era5_spectrum,
    find_frequency_spectrum,
    find_spectrum,
)

__all__ = ["collocate", "collocate_to_file", "open_imagettes", "add_positions", "count_missing", "CollocationWarning",
           "MissingPositionError", "NAN_REASONS"]

_POINT = "_point"
_CELL = "_cell"  # the cells of a curvilinear grid, as points
_OBS = "_observation"  # (time, station) positions of moving stations, as points
_STATION = "station"  # a 1 x 1 "grid" (NDBC THREDDS files) is one station
#: why a joined value can be NaN: the attribute ``collocation_nan_<key>`` of each joined variable counts imagettes
NAN_REASONS = {
    "no_position": "the imagette has no position or time",
    "outside_coverage": "outside the source's latitude/longitude coverage",
    "outside_time": "outside the source's time record or time_tolerance",
    "beyond_max_distance": "no source point within max_distance_km",
    "no_key_match": "no product with the same imagette_key",
    "qc_flagged": "the source's values there have a quality flag that is not good",
    "missing_in_source": "the source has no value there (land, sea ice, fill value, gap)",
}
_LAZY_NOTE = ("values missing in the source (land, fill values) are not counted in a lazy result: compute it and "
              "call xwvnet.joins.collocation.count_missing, or use collocate_to_file (xwvnet collocate), which does")
SPACE_ONLY = "none: the source has no time axis, joined in space only"
_PREFIXES = (("era5", "era5"), ("erai", "erai"), ("era-interim", "erai"), ("ww3", "ww3"), ("wavewatch", "ww3"),
             ("-ocn-", "ocn"), ("ocn product", "ocn"), ("ocn", "ocn"), ("ndbc", "ndbc"), ("mfwam", "mfwam"),
             ("swan", "swan"))
_SOURCE_CHUNK_BYTES = 8 * 2**20

#: what ``time_tolerance`` accepts: anything :class:`pandas.Timedelta` reads
Duration = str | np.timedelta64 | pd.Timedelta | None
#: the result's attribute counting the imagettes that had no position (or no time) and got NaN
NO_POSITION_ATTR = "collocation_no_position"
_ADD_POSITIONS = (
    "take them from the L2 OCN products or the SAFE manifest footprints of the same acquisitions, matched on "
    "imagette_key (xwvnet.joins.add_positions(ds, 'ocn/'); xwvnet collocate --positions PATH), or pass coordinates "
    "(ds.assign_coords(latitude=('imagette', lat), longitude=('imagette', lon)))"
)


class MissingPositionError(InvalidDataError):
    """No imagette has the position (or time) a join needs, so nothing could be joined.

    The message says what is missing and how to add it (:func:`add_positions`, ``ds.assign_coords``).
    """


def _refuse_without_positions(time: np.ndarray, lat: np.ndarray, lon: np.ndarray, needs_time: bool) -> int:
    """The number of imagettes without a position (or, when the source has times, a time); refused when that is all.

    Raises
    ------
    MissingPositionError
        When no imagette has both (one line: what is missing, and how to add it).
    """
    no_place = ~(np.isfinite(lat) & np.isfinite(lon))
    no_time = np.isnat(time) if needs_time else np.zeros(lat.size, dtype=bool)
    missing = no_place | no_time
    if lat.size == 0 or not missing.all():
        return int(missing.sum())
    n = lat.size
    if no_place.any():
        found = f"latitude/longitude are NaN for {int(no_place.sum())}" + (
            f" and time is NaT for {int(no_time.sum())}" if no_time.any() else "")
        raise MissingPositionError(
            f"collocate needs each imagette's latitude and longitude{' and time' if needs_time else ''}, and none of "
            f"the {n} imagettes has them ({found}; quicklook file names hold no position), so nothing can be "
            f"joined. Add positions: {_ADD_POSITIONS}."
        )
    raise MissingPositionError(
        f"collocate needs each imagette's time to join a source with a time axis, and none of the {n} imagettes "
        "has one (time is NaT: the file names are not Sentinel-1 WV names), so nothing can be joined. Add times: "
        "ds.assign_coords(time=('imagette', times)), or join a source without time."
    )


def _open(found: list[Source], depth: float | None, quality_flags: Sequence[int] | None,
          position: tuple[float, float] | None = None) -> xr.Dataset:
    """A resolved source opened by its reader: L2 OCN products, one SAFE product's imagettes, or files and stores."""
    kinds = {source.kind for source in found}
    if OCN in kinds or EOPF_OCN in kinds:  # the other files are skipped and named by open_ocn
        return open_ocn([source.path for source in found])
    if kinds == {SAFE} and len(found) == 1:
        return imagettes_from_manifest(found[0].location)
    if kinds == {EOPF_SLC}:  # positions and times from the products' metadata; pixels stay unread
        return open_safe([source.location for source in found])
    return open_source(found, depth=depth, quality_flags=quality_flags, position=position)


def _placed(source: xr.Dataset, position: tuple[float, float] | None) -> xr.Dataset:
    """A source without a position of its own placed at ``position`` (refused when it has one)."""
    if position is None:
        return source
    has = (find_coordinate(source, LATITUDE_NAMES, "latitude") is not None
           or find_coordinate(source, LONGITUDE_NAMES, "longitude") is not None)
    if has or ("x" in source.coords and "y" in source.coords):
        raise InvalidArgumentError("position= is for sources without a position (NDBC text files, point series); "
                                   "this source has latitude/longitude of its own.")
    try:
        lat, lon = (float(v) for v in position)
    except (TypeError, ValueError) as err:
        raise InvalidArgumentError(f"position must be (latitude, longitude) in degrees, found {position!r}.") from err
    return source.assign_coords({S.LATITUDE: lat, S.LONGITUDE: lon})


def _prepare(
    source: xr.Dataset | xr.DataArray | str | os.PathLike, depth: float | None = None,
    quality_flags: Sequence[int] | None = None, position: tuple[float, float] | None = None,
) -> tuple[xr.Dataset, str | None]:
    name = None
    if isinstance(source, xr.DataArray):
        source = _placed(source.to_dataset(name=source.name or "value"), position)
    elif isinstance(source, xr.Dataset):
        source = _placed(source, position)
    else:
        found = resolve(source, kinds=(NETCDF, GRIB, OCN, ZARR, SAFE, TEXT, EOPF_SLC, EOPF_OCN))
        # the source's own name (a file, folder or pattern; never a URL taken for a path) and its first file's
        name = " ".join([locate(source).name, found[0].location.name])
        text = all(is_text(s) for s in found)
        source = _open(found, depth, quality_flags, position if text else None)
        if not text:
            source = _placed(source, position)
    source = normalise_source(source, depth=depth, quality_flags=quality_flags)
    if any(name in source.data_vars for name in ERA5_SPECTRUM_NAMES):
        source = decode_era5_spectrum(source)
    spectrum = find_spectrum(source)
    if spectrum is not None and {FREQUENCY, DIRECTION} <= set(source[spectrum].dims):
        source = add_wave_parameters(source, spectrum)
    elif spectrum is None and find_frequency_spectrum(source):
        source = add_wave_parameters(source)
    return source, name


def _single_cell(src: xr.Dataset) -> xr.Dataset:
    """A 1 x 1 "grid" (NDBC THREDDS ``swden``/``stdmet``: values on latitude = longitude = 1) is one station."""
    if not (_is_gridded(src) and src.sizes[S.LATITUDE] == 1 and src.sizes[S.LONGITUDE] == 1):
        return src
    lat = src[S.LATITUDE].values.astype(float)
    lon = src[S.LONGITUDE].values.astype(float)
    attrs = {k: src[k].attrs for k in (S.LATITUDE, S.LONGITUDE)}
    cell = src.isel({S.LATITUDE: 0, S.LONGITUDE: 0}, drop=True)
    names = [n for n, v in cell.data_vars.items()]
    station = cell.assign({n: cell[n].expand_dims(_STATION) for n in names})
    return station.assign_coords({S.LATITUDE: (_STATION, lat, attrs[S.LATITUDE]),
                                  S.LONGITUDE: (_STATION, lon, attrs[S.LONGITUDE])})


def _bad_axis(values: np.ndarray, what: str, label: str, fix: str) -> None:
    bad = ~np.isfinite(values) if values.dtype.kind != "M" else np.isnat(values)
    if bad.any():
        where = np.flatnonzero(bad)[:5].tolist()
        raise InvalidDataError(
            f"the {what} of source {label!r} holds {int(bad.sum())} missing or infinite value(s) among {values.size} "
            f"(at index {where}); joined values would be wrong. Repair the file, or drop them first: {fix}."
        )


def _check_axes(src: xr.Dataset, label: str) -> None:
    """Coordinate hygiene: a grid axis with NaN/inf, a time axis with NaT or repeated steps is refused."""
    if _is_gridded(src):
        for dim in (S.LATITUDE, S.LONGITUDE):
            _bad_axis(np.asarray(src[dim].values, dtype=float), f"{dim} axis", label,
                      f"source.isel({dim}=np.isfinite(source.{dim}))")
    if S.TIME in src.dims and S.TIME in src.variables and src[S.TIME].dims == (S.TIME,):
        t = np.asarray(src[S.TIME].values)
        if t.dtype.kind != "M":
            return
        if S.TIME in src[S.LATITUDE].dims:  # a track: points along time, NaT points are never matched, repeats fine
            return
        _bad_axis(t, "time axis", label, "source.isel(time=~np.isnat(source.time))")
        unique, counts = np.unique(t, return_counts=True)
        if (counts > 1).any():
            first = np.datetime_as_string(unique[counts > 1][0], unit="s")
            raise InvalidDataError(
                f"the time axis of source {label!r} repeats {int((counts - 1).sum())} step(s) (first {first}), so "
                "the value at those times is ambiguous; keep one of each first: source.drop_duplicates('time')."
            )


def _guess_prefix(source: xr.Dataset, name: str | None) -> str:
    first = Path(str(source.encoding.get("source", ""))).name  # the (first) file opened: a folder's or glob's too
    origin = " ".join(part for part in (name, first) if part)
    text = " ".join([origin] + [str(source.attrs.get(k, "")) for k in ("title", "source", "history", "product_name")])
    text = text.lower()
    for token, prefix in _PREFIXES:
        if token in text:
            return prefix
    if S.IMAGETTE in source.dims and KEY in source.variables:
        return "ocn"
    return "source"


def _positions(ds: xr.Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Imagette time (datetime64[ns]), latitude and longitude as numpy arrays (small)."""
    S.require(ds, [S.TIME, S.LATITUDE, S.LONGITUDE], "collocate")
    if S.IMAGETTE not in ds.dims:
        raise InvalidDataError(
            f"collocate expects an imagette Dataset with dimension {S.IMAGETTE!r}; found {dict(ds.sizes)}."
        )
    time = utc_times(np.asarray(ds[S.TIME].values), "the imagettes' time")
    lat = np.asarray(ds[S.LATITUDE].values, dtype=float)
    lon = np.asarray(ds[S.LONGITUDE].values, dtype=float)
    return time, lat, lon


def _timedelta(value: Duration) -> np.timedelta64 | None:
    if value is None:
        return None
    bare = isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
    if bare or (isinstance(value, str) and value.strip().lstrip("+-").replace(".", "", 1).isdigit()):
        raise InvalidArgumentError(
            f"time_tolerance must be a duration with a unit, such as '3h' or '30min'; found the bare number {value!r} "
            f"(which pandas would read as nanoseconds): write '{value}h' for hours."
        )
    try:
        delta = pd.Timedelta(value)
    except (ValueError, TypeError) as err:
        raise InvalidArgumentError(
            f"time_tolerance must be a duration such as '3h' or np.timedelta64; found {value!r}."
        ) from err
    if pd.isna(delta) or delta < pd.Timedelta(0):
        raise InvalidArgumentError(
            f"time_tolerance must be a positive duration such as '3h' (the largest |source time - imagette time|); "
            f"found {value!r}."
        )
    return delta.to_timedelta64().astype("timedelta64[ns]")


def _is_lazy(obj: xr.Dataset) -> bool:
    return any(v.chunks is not None for v in obj.variables.values())


def _is_gridded(source: xr.Dataset) -> bool:
    lat, lon = source[S.LATITUDE], source[S.LONGITUDE]
    return lat.dims == (S.LATITUDE,) and lon.dims == (S.LONGITUDE,)


def _constant_along(values: np.ndarray, axis: int) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        low, high = np.nanmin(values, axis=axis), np.nanmax(values, axis=axis)
    return bool(np.allclose(low, high, rtol=0, atol=1e-9, equal_nan=True))


def _station_positions(src: xr.Dataset) -> xr.Dataset:
    """Positions given per (time, station) (WAVEWATCH III point output): per station when they do not move, else
    every (time, station) becomes one point with its own time (drifting buoys, ships)."""
    lat, lon = src[S.LATITUDE], src[S.LONGITUDE]
    if lat.ndim != 2 or S.TIME not in lat.dims or set(lat.dims) != set(lon.dims):
        return src
    other = next(d for d in lat.dims if d != S.TIME)
    lat_v = np.asarray(lat.transpose(S.TIME, other).values, dtype=float)
    lon_v = np.asarray(lon.transpose(S.TIME, other).values, dtype=float)
    if _constant_along(lat_v, 0) and _constant_along(lon_v, 0):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            fixed = {S.LATITUDE: np.nanmax(lat_v, axis=0), S.LONGITUDE: np.nanmax(lon_v, axis=0)}
        return src.assign_coords({k: ((other,), v, src[k].attrs) for k, v in fixed.items()})
    stacked = src.stack({_OBS: (S.TIME, other)}, create_index=False)
    return stacked.drop_vars([other], errors="ignore").set_coords([S.LATITUDE, S.LONGITUDE])


def _curvilinear(src: xr.Dataset) -> tuple[xr.Dataset, float | None]:
    """A grid with 2-D latitude/longitude: a plain grid when it is one (linear interpolation is possible), else
    its cells as points (nearest on the sphere) with the default ``max_distance_km``: one median cell diagonal."""
    lat, lon = src[S.LATITUDE], src[S.LONGITUDE]
    if lat.ndim != 2 or set(lat.dims) != set(lon.dims) or S.TIME in lat.dims:
        return src, None
    ydim, xdim = lat.dims
    la = np.asarray(lat.values, dtype=float)
    lo = np.asarray(lon.transpose(ydim, xdim).values, dtype=float)
    if (_constant_along(la, 1) and _constant_along(lo, 0) and np.isfinite(la[:, 0]).all()
            and np.isfinite(lo[0]).all()):
        attrs = {k: src[k].attrs for k in (S.LATITUDE, S.LONGITUDE)}
        grid = src.drop_vars([S.LATITUDE, S.LONGITUDE, ydim, xdim], errors="ignore")
        grid = grid.rename_dims({ydim: S.LATITUDE, xdim: S.LONGITUDE})
        return grid.assign_coords({S.LATITUDE: (S.LATITUDE, la[:, 0], attrs[S.LATITUDE]),
                                   S.LONGITUDE: (S.LONGITUDE, lo[0], attrs[S.LONGITUDE])}), None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        along_x = np.nanmedian(haversine_km(la[:, :-1], lo[:, :-1], la[:, 1:], lo[:, 1:])) if la.shape[1] > 1 else 0
        along_y = np.nanmedian(haversine_km(la[:-1], lo[:-1], la[1:], lo[1:])) if la.shape[0] > 1 else 0
    diagonal = float(np.hypot(along_x, along_y))
    cells = src.stack({_CELL: (ydim, xdim)}, create_index=False)
    cells = cells.drop_vars([ydim, xdim], errors="ignore").set_coords([S.LATITUDE, S.LONGITUDE])
    return cells, (diagonal if diagonal > 0 else None)


def _categorical(var: xr.DataArray) -> bool:
    """Codes rather than quantities (basin masks, flags): integers as stored, not packed, or CF flag attributes."""
    if "flag_values" in var.attrs or "flag_meanings" in var.attrs:
        return True
    stored = np.dtype(var.encoding.get("dtype", var.dtype))
    packed = "scale_factor" in var.encoding or "add_offset" in var.encoding
    return stored.kind in "iu" and not packed


_DEGREES = ("degree", "degrees", "deg", "degree true", "degrees true", "degree_true", "degrees_true", "degt")


def _angular(name: str, var: xr.DataArray) -> bool:
    """A direction in degrees (``mwd``, ``VMDR``, ``wind_direction``): never averaged across north."""
    if str(var.attrs.get("units", "")).strip().lower() not in _DEGREES:
        return False
    text = " ".join(str(var.attrs.get(k, "")) for k in ("standard_name", "long_name")).lower()
    return "direction" in text or "dir" in name.lower()


def _describe(source: xr.Dataset) -> str:
    coords = sorted(map(str, source.coords))
    found = {str(n): v.dims for n, v in source.data_vars.items() if not str(n).endswith(QC_FLAGGED)}
    shown = "; ".join(f"{n}{tuple(d)}" for n, d in list(found.items())[:12])
    return f"dims {dict(source.sizes)}, coordinates {coords}, variables {shown or 'none'}"


def _select(source: xr.Dataset, variables: Sequence[str] | str | None, required_dims: set[str]) -> list[str]:
    skip = {S.LATITUDE, S.LONGITUDE, S.TIME, KEY}
    if variables is None:
        names = [
            str(n) for n, v in source.data_vars.items()
            if n not in skip and required_dims <= set(v.dims) and v.dtype.kind in "fiub"
            and not str(n).endswith((QC_FLAGGED, "_QC"))
        ]
        if not names:
            raise InvalidDataError(
                f"the source has no numeric variable on dims {sorted(required_dims)}: found {_describe(source)}. "
                "Name the variables to join with variables=, or give the source a time/latitude/longitude it can "
                "be joined on (rename them, e.g. source.rename(my_lat='latitude'))."
            )
        return names
    names = [variables] if isinstance(variables, str) else list(variables)
    missing = [n for n in names if n not in source.variables]
    if missing:
        raise InvalidDataError(
            f"variables {missing} are not in the source; it has {sorted(map(str, source.data_vars))} "
            "(wave spectra are turned into hs, tm01, tm02, tp, mean_direction)."
        )
    wrong = [n for n in names if not required_dims <= set(source[n].dims)]
    if wrong:
        raise InvalidDataError(f"variables {wrong} do not vary along {sorted(required_dims)}, so cannot be collocated; "
                               f"found {_describe(source)}.")
    return names


def _source_chunks(src: xr.Dataset) -> dict[str, int]:
    """Chunks for a numpy source made lazy: a few MB each, along time (or the point dim) only."""
    dims = dict(src.sizes)
    lead = S.TIME if S.TIME in dims else next(iter(dims), None)
    if lead is None:
        return {}
    per_step = max(1, int(np.prod([s for d, s in dims.items() if d != lead])) * 8)
    return {lead: max(1, min(dims[lead], _SOURCE_CHUNK_BYTES // per_step))}


def _imagette_chunks(ds: xr.Dataset) -> tuple[int, ...] | int:
    """The imagette chunks of the first chunked variable that has them (variables may disagree), else one chunk."""
    for var in ds.variables.values():
        if var.chunks is not None and S.IMAGETTE in var.dims:
            return var.chunks[var.dims.index(S.IMAGETTE)]
    return -1


def collocate(
    ds: xr.Dataset,
    source: xr.Dataset | xr.DataArray | str | os.PathLike,
    *,
    variables: Sequence[str] | str | None = None,
    method: str = "linear",
    time_tolerance: Duration = None,
    max_distance_km: float | None = None,
    prefix: str | None = None,
    depth: float | None = None,
    quality_flags: Sequence[int] | None = None,
    position: tuple[float, float] | None = None,
) -> xr.Dataset:
    """Add a source's values at each imagette's time and position, as new variables named ``<prefix>_<variable>``.

    Reanalysis, wave-model and observation values are what SAR imagettes are compared with (wind, air
    temperature, wave height), so this joins them as they come, in one call, lazily: the source is opened without
    reading it (a folder or glob of monthly files through ``open_mfdataset``), and only the chunks the imagettes
    touch are read.

    - **Grids** (1-D ``latitude``/``longitude``: ERA5 old and new CDS netCDF, packed int16, GRIB, WW3 gridded
      ``hs``) are interpolated in time, latitude and longitude with ``Dataset.interp`` (``Dataset.sel`` for
      ``"nearest"``), in any longitude convention and latitude order, across the antimeridian for global grids.
      Extra dims are kept (``level`` from ERA5 ``pressure_level``: output ``(imagette, level)``). Integer codes
      and CF flags (basin masks) are always taken from the nearest cell, never averaged.
    - **Curvilinear grids** (2-D latitude/longitude): linear as a plain grid when they are one, else the
      nearest cell on the sphere (haversine ``BallTree``), ``max_distance_km`` defaulting to one cell diagonal.
    - **Points** (a WW3 track, altimeter along-track ``VAVH``, buoys ``VHM0(station, TIME)``, WW3 station output
      with positions per station or per (time, station), OCN products) give each imagette the nearest point on
      the sphere within the tolerances, keeping ``<prefix>_distance_km`` and ``<prefix>_time_offset``; station
      output is then sampled in time; imagettes and OCN products that both carry ``imagette_key`` are joined on it.
    - **Wave spectra** (WW3 ``efth``, ERA5 ``d2fd``, SWAN and WW3 ASCII spectra, NDBC spectral density) are turned
      into ``hs``, ``tm01``, ``tm02``, ``tp`` (and ``mean_direction`` for directional spectra) first.
    - **Directions** (variables in degrees whose name says direction: ``mwd``, ``VMDR``, ``wind_direction``) are
      taken from the nearest cell or step, never averaged across north.
    - **Sources without time** (climatologies, masks) are joined in space only, and say so in the attribute
      ``collocation_time`` of every joined variable.

    Parameters
    ----------
    ds : xarray.Dataset
        Imagettes with ``time``, ``latitude`` and ``longitude`` along ``imagette`` (numpy or dask-backed); it is
        not modified.
    source : xarray.Dataset, xarray.DataArray, str or os.PathLike
        The values to join: a Dataset, or a path to netCDF, GRIB (needs cfgrib), Zarr, L2 OCN products or a WV
        SAFE manifest, text files of buoys and wave models (NDBC standard meteorological and spectral text,
        WAVEWATCH III and SWAN ASCII spectra: :mod:`xwvnet.io.text`), or a folder or glob pattern of such files
        (combined along their coordinates; a damaged text file among many is skipped with a warning).
        Coordinates may be spelled ``lat``/``lon``/``valid_time``/``TIME``/``LATITUDE`` and alike; a point series
        may give its position as scalar ``x`` (longitude) and ``y`` (latitude), as DHI's tools write it.
    variables : str or sequence of str, optional
        The source variables to join; default: every numeric variable on the source's grid or points.
    method : {"linear", "nearest"}, optional
        For gridded sources and station output in time: linear interpolation or the nearest value. Point
        matches are always the nearest point.
    time_tolerance : str, numpy.timedelta64 or pandas.Timedelta, optional
        A duration such as ``"3h"``. For grids: how far outside the time record an imagette may lie (clamped to
        the first or last step) and, with ``"nearest"``, the largest offset to the chosen step. For points: the
        largest ``|point time - imagette time|`` of a candidate. Default: no tolerance (grids) / any time (points,
        with a warning giving the worst offset). Must not be negative.
    max_distance_km : float, optional
        For point sources and curvilinear grids: matches farther than this get NaN. Default: no limit for points
        (with a warning giving the farthest match), one median cell diagonal for curvilinear grids.
    prefix : str, optional
        Name prefix of the new variables; default the source's name (``era5``, ``ww3``, ``ocn``, else
        ``source``), from the file name or its attributes. ``""`` for none; trailing underscores are dropped
        (``"era5_"`` gives ``era5_t2m``).
    depth : float, optional
        For CMEMS In Situ TAC files: the depth (m, positive down) to take values at, the valid level nearest it
        within 1 m; default the shallowest valid level at each time.
    quality_flags : sequence of int, optional
        For CMEMS In Situ TAC files: the ``<VAR>_QC`` (and ``TIME_QC``, ``POSITION_QC``) flags kept; default
        ``(1, 2)`` (good, probably good). Dropped values are counted in ``collocation_nan_qc_flagged``.
    position : tuple of float, optional
        ``(latitude, longitude)`` in degrees of a source that has no position of its own: NDBC text files (required
        for them), or a Dataset of series at one point. Refused for a source that has its own.

    Returns
    -------
    xarray.Dataset
        A new Dataset: ``ds`` plus ``<prefix>_<variable>`` for every joined variable (dimension ``imagette``
        first, the source's other dimensions kept, its units, long name and CF attributes kept, cfgrib's
        ``GRIB_*`` ones dropped, plus ``collocation_source``, ``collocation_method`` and, for a source without
        time, ``collocation_time``), and for point sources and curvilinear grids ``<prefix>_distance_km`` and
        (points with times) ``<prefix>_time_offset``. Every joined variable counts the imagettes that got NaN,
        by reason, in integer attributes ``collocation_nan_<reason>`` (:data:`NAN_REASONS`: ``no_position``,
        ``outside_coverage``, ``outside_time``, ``beyond_max_distance``, ``no_key_match``, ``qc_flagged``,
        ``missing_in_source``); a lazy result counts ``missing_in_source`` only once computed
        (:func:`count_missing`). Observations with their own times whose variables are valid at different points
        (a buoy's waves every 10 minutes, its temperature every minute) are matched per variable, the others
        getting ``<prefix>_<variable>_distance_km`` and ``_time_offset``.
        Lazy when ``ds`` or the source is dask-backed, chunked like ``ds`` along ``imagette``. The Dataset's
        attribute ``collocation_no_position`` counts the imagettes that had no position (or, for a source with a
        time axis, no time) and got NaN.

    Raises
    ------
    MissingPositionError
        When no imagette has a position (latitude and longitude NaN, as for the published quicklooks) or, for a
        source with a time axis, a time, unless the source is joined on ``imagette_key``: the message says how to
        add them (:func:`add_positions`, ``ds.assign_coords``). A ``ValueError``.
    ValueError
        For a ``method`` other than ``"linear"``/``"nearest"``, a non-positive ``max_distance_km``, a
        ``time_tolerance`` that is not a duration with a unit (a bare number) or is negative, variables missing
        from the source or not on its grid, a source that is neither a grid nor points (the message lists its
        dims, coordinates and variables), a grid axis with NaN or infinite values, a time axis with NaT or
        repeated steps, times that are neither datetimes nor ISO strings, or new names that already exist in
        ``ds`` (pass another ``prefix``). Times given as ISO strings with a zone are converted to UTC.
    FileNotFoundError
        When ``source`` is a path that does not exist, a glob that matches nothing or a folder without source files.
    ImportError
        For a GRIB file without cfgrib.

    Warns
    -----
    CollocationWarning
        With the number of imagettes that got NaN (outside the coverage or tolerances, or without position),
        and the worst match of a point source when no limit was given.

    See Also
    --------
    xwvnet.joins.grid.sample_grid, xwvnet.joins.points.sample_points, xwvnet.joins.waves.wave_parameters

    Examples
    --------
    >>> import numpy as np, xarray as xr, xwvnet
    >>> ds = xwvnet.synthetic.imagettes(2, seed=0, size=(32, 32)).assign_coords(
    ...     latitude=("imagette", [0.5, 1.0]), longitude=("imagette", [315.0, -45.0]),
    ...     time=("imagette", np.array(["2021-03-01T12", "2021-03-01T12"], dtype="datetime64[ns]")))
    >>> era5 = xr.Dataset(  # a global grid, latitudes descending as in ERA5
    ...     {"t2m": (("latitude", "longitude"), [[280.0, 282, 284, 286], [290, 292, 294, 296]], {"units": "K"})},
    ...     coords={"latitude": [1.0, 0.0], "longitude": [0.0, 90.0, 180.0, 270.0]})
    >>> out = xwvnet.collocate(ds, era5)  # between 270 and 360 degrees east: across the antimeridian
    >>> out.source_t2m.values.tolist(), out.source_t2m.attrs["units"]
    ([288.0, 283.0], 'K')
    """
    if method not in METHODS:
        raise InvalidArgumentError(f"method must be 'linear' or 'nearest', found {method!r}.")
    if max_distance_km is not None and not max_distance_km > 0:
        raise InvalidArgumentError(f"max_distance_km must be a positive number of km, found {max_distance_km!r}.")
    tolerance = _timedelta(time_tolerance)
    src, given = _prepare(source, depth, quality_flags, position)
    name = _guess_prefix(src, given) if prefix is None else str(prefix).rstrip("_")
    sep = f"{name}_" if name else ""
    label = name or given or "source"
    time, lat, lon = _positions(ds)
    src = _single_cell(src)
    _check_axes(src, label)
    lazy = _is_lazy(ds) or _is_lazy(src)
    if lazy and not _is_lazy(src):
        src = src.chunk(_source_chunks(src))
    methods: dict[str, str] = {}
    reasons: dict[str, dict[str, int]] = {}
    counted: set[str] = set()  # variables whose missing_in_source is already counted
    if not _is_gridded(src):
        src, cell_km = _curvilinear(_station_positions(src))
        if cell_km is not None and max_distance_km is None:
            max_distance_km = cell_km
    space_only = S.TIME not in src.variables or (S.TIME in src.dims and src.sizes[S.TIME] == 1)
    keyed = (not _is_gridded(src) and KEY in ds.variables and KEY in src.variables
             and src[KEY].dims == src[S.LATITUDE].dims)  # joined on imagette_key: positions are not needed
    unplaced = 0 if keyed else _refuse_without_positions(time, lat, lon, needs_time=not space_only)
    if _is_gridded(src):
        names = _select(src, variables, {S.LATITUDE, S.LONGITUDE})
        codes = [n for n in names if method == "linear" and (_categorical(src[n]) or _angular(n, src[n]))]
        new = {}
        shared: dict[str, int] = {}
        if len(codes) < len(names):
            new.update(sample_grid(src, [n for n in names if n not in codes], time, lat, lon, method=method,
                                   time_tolerance=tolerance, label=label, reasons=shared))
        codes_reasons: dict[str, int] = {}
        if codes:  # codes are never averaged: the nearest cell's code
            with warnings.catch_warnings():
                if len(codes) < len(names):  # the same imagettes were counted and warned about just above
                    warnings.simplefilter("ignore", CollocationWarning)
                new.update(sample_grid(src, codes, time, lat, lon, method="nearest", time_tolerance=tolerance,
                                       label=label, reasons=codes_reasons))
            methods.update(dict.fromkeys(codes, "nearest"))
        new = {n: new[n] for n in names}
        reasons = {n: dict(codes_reasons if n in codes else shared) for n in names}
    else:
        if src[S.LATITUDE].ndim != 1 or src[S.LATITUDE].dims != src[S.LONGITUDE].dims:
            raise InvalidDataError(
                "the source is neither a grid (latitude and longitude, 1-D or 2-D) nor points (latitude and "
                f"longitude along one dimension, or along time and station): latitude has dims "
                f"{src[S.LATITUDE].dims}, longitude {src[S.LONGITUDE].dims}; found {_describe(src)}. Select or "
                "rename the coordinates so that they are one of these."
            )
        point_dim = src[S.LATITUDE].dims[0]
        if point_dim == S.IMAGETTE:
            src = src.rename({S.IMAGETTE: _POINT})
            point_dim = _POINT
        names = _select(src, variables, {point_dim})
        keys = ds[KEY].values if KEY in ds.variables else None
        new, reasons, counted = _sample_point_source(
            src, names, point_dim, time, lat, lon, method=method, time_tolerance=tolerance,
            max_distance_km=max_distance_km, keys=keys, label=label, sep=sep)
    renamed = {}
    for key, value in new.items():
        out_name = key if key.startswith(sep) and key not in names else f"{sep}{key}"
        value = value.drop_vars([c for c in value.coords if c not in value.dims or c == S.IMAGETTE], errors="ignore")
        value.attrs = {**value.attrs, "collocation_source": label, "collocation_method": methods.get(key, method)}
        if key in names:
            value.attrs.update({f"collocation_nan_{r}": int(c) for r, c in reasons.get(key, {}).items()})
            if key not in counted:
                value.attrs["collocation_nan_note"] = _LAZY_NOTE
            for attr in ("depth_selection", "quality_flags_kept"):
                if attr in src[key].attrs:
                    value.attrs[attr] = src[key].attrs[attr]
        if space_only and key in names:
            value.attrs["collocation_time"] = SPACE_ONLY if S.TIME not in src.variables else (
                f"one step ({np.datetime_as_string(src[S.TIME].values.ravel()[0], unit='s')}): joined in space only")
        value.encoding = {}
        renamed[out_name] = value
    clash = [k for k in renamed if k in ds.variables]
    if clash:
        raise InvalidArgumentError(f"collocated variables {clash} already exist in the Dataset; pass another prefix=.")
    result = ds.assign(renamed)
    result.attrs = {**ds.attrs, NO_POSITION_ATTR: unplaced}
    if lazy:
        result = result.assign({k: v.chunk({S.IMAGETTE: _imagette_chunks(ds)}) for k, v in renamed.items()})
    else:
        result = count_missing(result)
    return result


def _validity(src: xr.Dataset, name: str, point_dim: str) -> np.ndarray:
    """Where a point source has a value of ``name`` (any along its other dims): read, 1-D along the points."""
    var = src[name]
    other = [d for d in var.dims if d != point_dim]
    ok = var.notnull().any(other) if other else var.notnull()
    return np.asarray(ok.values, dtype=bool)


def _sample_point_source(
    src: xr.Dataset, names: list[str], point_dim: str, time: np.ndarray, lat: np.ndarray, lon: np.ndarray, *,
    method: str, time_tolerance: np.timedelta64 | None, max_distance_km: float | None, keys: np.ndarray | None,
    label: str, sep: str,
) -> tuple[dict[str, xr.DataArray], dict[str, dict[str, int]], set[str]]:
    """Points: one match for all variables, or, for observations with their own time (tracks, buoys), one match
    per set of variables valid at the same points, so that a gap (a NaN sample, a QC-flagged value) is never the
    match when a valid sample is within the tolerances.

    Returns the joined arrays, the NaN reasons per variable and the variables whose ``missing_in_source`` and
    ``qc_flagged`` are counted already.
    """
    kwargs = dict(method=method, time_tolerance=time_tolerance, max_distance_km=max_distance_km, keys=keys,
                  label=label)
    own_time = S.TIME in src.variables and src[S.TIME].dims == (point_dim,)
    keyed = keys is not None and KEY in src.variables
    shared: dict[str, int] = {}
    if not own_time or keyed:
        new = sample_points(src, names, time, lat, lon, prefix=sep, reasons=shared, **kwargs)
        return new, {n: dict(shared) for n in names}, set()
    valid = {n: _validity(src, n, point_dim) for n in names}
    base = sample_points(src, [], time, lat, lon, prefix=sep, reasons=shared, **kwargs)
    matched = np.isfinite(base[f"{sep}distance_km"].values)
    new: dict[str, xr.DataArray] = {}
    reasons: dict[str, dict[str, int]] = {}
    groups: dict[bytes, list[str]] = {}
    for n in names:
        groups.setdefault(np.packbits(valid[n]).tobytes() + bytes([valid[n].size % 8]), []).append(n)
    for g, (_, members) in enumerate(groups.items()):
        mask = valid[members[0]]
        extra = sep if g == 0 else f"{sep}{members[0]}_"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CollocationWarning)
            if mask.all() or not mask.any():  # (no valid point at all: shapes from every point, then all NaN)
                part = sample_points(src, members, time, lat, lon, prefix=extra, **kwargs)
                if not mask.any():
                    none = xr.DataArray(np.zeros(lat.size, dtype=bool), dims=(S.IMAGETTE,))
                    part = {k: v.where(none) for k, v in part.items()}
            else:
                part = sample_points(src.isel({point_dim: np.flatnonzero(mask)}), members, time, lat, lon,
                                     prefix=extra, **kwargs)
        got = np.isfinite(part[f"{extra}distance_km"].values)
        lost = matched & ~got  # a point within the limits, but none with a value of these variables
        flagged = np.zeros(src.sizes[point_dim], dtype=bool)
        for n in members:
            if n + QC_FLAGGED in src.variables:
                flagged |= np.asarray(src[n + QC_FLAGGED].values, dtype=bool)
        qc = np.zeros_like(lost)
        if lost.any() and flagged.any():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", CollocationWarning)
                either = src.isel({point_dim: np.flatnonzero(mask | flagged)})
                qc = lost & np.isfinite(sample_points(either, [], time, lat, lon, **kwargs)["distance_km"].values)
        n_lost = int(lost.sum())
        if n_lost:
            warn(
                f"{n_lost} of {lat.size} imagettes have source points within the limits but no value of "
                f"{members} there ({int(qc.sum())} quality-flagged, {n_lost - int(qc.sum())} missing) in source "
                f"{label!r} and got NaN.", CollocationWarning)
        for n in members:
            reasons[n] = {**shared, "qc_flagged": int(qc.sum()), "missing_in_source": int((lost & ~qc).sum())}
        if g == 0:
            part = {k: v for k, v in part.items() if k in members or k.startswith(sep)}
        new.update(part)
    new.update({k: v for k, v in base.items() if k not in new})
    return new, reasons, set(names)


def count_missing(result: xr.Dataset) -> xr.Dataset:
    """Count, in a computed collocation result, the imagettes whose joined value is NaN for no other counted reason.

    :func:`collocate` gives each joined variable ``collocation_nan_<reason>`` counts; the values the source
    itself lacks (land, sea ice, fill values) are only known once the values are read, so a lazy result counts
    them here, after ``compute()`` (``collocate_to_file`` does it for the ``xwvnet collocate`` table).

    Parameters
    ----------
    result : xarray.Dataset
        The output of :func:`collocate`, in memory (it is computed here otherwise).

    Returns
    -------
    xarray.Dataset
        The same Dataset with ``collocation_nan_missing_in_source`` set on each joined variable that lacked it.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> out = xr.Dataset({"era5_t2m": ("imagette", [1.0, np.nan], {"collocation_source": "era5",
    ...                   "collocation_nan_outside_time": 0})})
    >>> count_missing(out).era5_t2m.attrs["collocation_nan_missing_in_source"]
    1
    """
    out = result.copy()
    for name, var in result.data_vars.items():
        attrs = var.attrs
        if "collocation_source" not in attrs or "collocation_nan_missing_in_source" in attrs:
            continue
        if not any(str(k).startswith("collocation_nan_") for k in attrs):
            continue
        other = [d for d in var.dims if d != S.IMAGETTE]
        empty = var.isnull().all(other) if other else var.isnull()
        known = sum(int(v) for k, v in attrs.items()
                    if str(k).startswith("collocation_nan_") and not isinstance(v, str))
        new_attrs = {k: v for k, v in attrs.items() if k != "collocation_nan_note"}
        new_attrs["collocation_nan_missing_in_source"] = max(int(empty.sum()) - known, 0)
        out[name] = var.copy(deep=False)
        out[name].attrs = new_attrs
    return out


# --- files in, file out (the CLI's `xwvnet collocate`) --------------------------------------------------------------
def open_imagettes(path: str | os.PathLike, *, storage_options: dict | None = None) -> xr.Dataset:
    """Open imagettes to collocate from files: a Zarr store, WV SAFE products or manifests, or L2 OCN products.

    Collocation needs only the imagettes' times and positions, so SAFE manifests (no pixels read) or the OCN
    products of an acquisition serve as well as a store. ``path`` goes through the input door
    (:func:`xwvnet.io.sources.resolve`): a folder of SAFE or OCN products stands for them.

    Parameters
    ----------
    path : str or os.PathLike
        An xwvnet imagette store, ``.SAFE`` folders or zips (or their ``manifest.safe``), OCN ``.nc`` products, a
        folder or glob of either; a store or SAFE product may be an ``s3://``, ``gs://``, ``az://`` URL.
    storage_options : dict, optional
        Credentials and endpoint of a store or product in a bucket (as :func:`xwvnet.open_store` takes them).

    Returns
    -------
    xarray.Dataset
        The imagettes (lazy for a store; several SAFE products put end to end along ``imagette``).

    Raises
    ------
    xwvnet.errors.InputNotFoundError
        When ``path`` names nothing (a folder or pattern without a store or product).
    xwvnet.errors.InvalidArgumentError
        When it names a mix of stores and products, or several stores.
    ValueError
        When a product or store cannot be read (from the opener that was tried).
    """
    found = resolve(path, storage_options, kinds=(ZARR, SAFE, OCN, EOPF_SLC, EOPF_OCN))
    kinds = {s.kind for s in found}
    if kinds <= {OCN, NETCDF, EOPF_OCN}:
        return open_ocn([s.path for s in found])
    if kinds == {EOPF_SLC}:
        return open_safe([s.location for s in found], storage_options=storage_options)
    if kinds == {SAFE}:
        parts = [imagettes_from_manifest(s.location) for s in found]
        return parts[0] if len(parts) == 1 else xr.concat(parts, S.IMAGETTE, combine_attrs="drop_conflicts")
    if len(found) > 1:
        raise InvalidArgumentError(f"{os.fspath(path)} names {len(found)} stores or products of several kinds; "
                                   "open one store, or SAFE products, or OCN products at a time.")
    from ..io.store import open_store

    return open_store(found[0].location)


def _key_positions(products: xr.Dataset | str | os.PathLike | Sequence[str | os.PathLike],
                   storage_options: dict | None) -> tuple[pd.DataFrame, str]:
    """``imagette_key`` -> (latitude, longitude) of the products that have a position, and what they were."""
    if isinstance(products, xr.Dataset):
        found, label = [products], "the products given"
    else:
        paths = [products] if isinstance(products, (str, os.PathLike)) else list(products)
        found = [open_imagettes(p, storage_options=storage_options) for p in paths]
        label = ", ".join(map(os.fspath, paths))
    frames = []
    for part in found:
        missing = [n for n in (KEY, S.LATITUDE, S.LONGITUDE) if n not in part.variables]
        if missing:
            raise InvalidDataError(
                f"add_positions takes the positions of L2 OCN products or SAFE manifests, which carry {KEY}, "
                f"{S.LATITUDE} and {S.LONGITUDE}; {label} lack {missing}."
            )
        frames.append(pd.DataFrame({S.LATITUDE: np.asarray(part[S.LATITUDE].values, dtype=float),
                                    S.LONGITUDE: np.asarray(part[S.LONGITUDE].values, dtype=float)},
                                   index=pd.Index(np.asarray(part[KEY].values).astype(str), name=KEY)))
    table = pd.concat(frames).dropna()
    return table[~table.index.duplicated(keep="first")], label


def add_positions(
    ds: xr.Dataset,
    products: xr.Dataset | str | os.PathLike | Sequence[str | os.PathLike],
    *,
    storage_options: dict | None = None,
) -> xr.Dataset:
    """Give imagettes without a position the position of the L2 OCN product or SAFE manifest of the same acquisition.

    Quicklook file names hold the mission, swath, orbit, datatake and imagette number but no position, so the
    published quicklooks have NaN ``latitude`` and ``longitude`` and cannot be joined with a grid or with points.
    The OCN products (``xwvnet.open_ocn``: the imagette centre) and the SAFE manifest (footprint centres, no pixels
    read) of the same acquisition carry it, under the same ``imagette_key``; this copies it over. Positions the
    imagettes already have are kept.

    Parameters
    ----------
    ds : xarray.Dataset
        Imagettes with ``imagette_key`` (quicklooks, SLC imagettes, a store of either); it is not modified.
    products : xarray.Dataset, str, os.PathLike or sequence of them
        OCN products or SAFE imagettes as a Dataset, or paths that :func:`open_imagettes` opens: OCN ``.nc``
        products or folders of them, ``.SAFE`` folders or ``manifest.safe`` files.
    storage_options : dict, optional
        Credentials and endpoint when ``products`` names a store in a bucket.

    Returns
    -------
    xarray.Dataset
        ``ds`` with ``latitude`` and ``longitude`` (degrees, longitudes in [-180, 180)) filled in where an
        ``imagette_key`` matched; imagettes without a match keep NaN (:func:`collocate` counts them).

    Raises
    ------
    ValueError
        When ``ds`` has no ``imagette_key``, the products lack ``imagette_key``, ``latitude`` or ``longitude``, or
        no imagette without a position matches a product with one (the message shows a key of each side).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ql = xr.Dataset(coords={"imagette": ["a", "b"], "imagette_key": ("imagette", ["k1", "k2"]),
    ...                         "latitude": ("imagette", [np.nan, np.nan]), "longitude": ("imagette", [np.nan, 5.0])})
    >>> ocn = xr.Dataset(coords={"imagette_key": ("imagette", ["k2", "k1"]), "latitude": ("imagette", [-10.0, 20.0]),
    ...                          "longitude": ("imagette", [190.0, 30.0])})
    >>> out = add_positions(ql, ocn)  # "b" had a longitude but no latitude: it takes its product's position
    >>> out.latitude.values.tolist(), out.longitude.values.tolist()
    ([20.0, -10.0], [30.0, -170.0])
    """
    if KEY not in ds.variables:
        raise InvalidDataError(
            f"add_positions matches imagettes and products on {KEY!r}, which the imagettes lack (quicklooks, SAFE "
            f"and OCN readers give it); assign positions yourself: ds.assign_coords(latitude=('imagette', lat), "
            "longitude=('imagette', lon))."
        )
    table, label = _key_positions(products, storage_options)
    keys = np.asarray(ds[KEY].values).astype(str)
    lat = np.asarray(ds[S.LATITUDE].values, dtype=float) if S.LATITUDE in ds.variables else np.full(keys.size, np.nan)
    lon = np.asarray(ds[S.LONGITUDE].values, dtype=float) if S.LONGITUDE in ds.variables else np.full(keys.size,
                                                                                                     np.nan)
    looked_up = table.reindex(keys)
    need = ~(np.isfinite(lat) & np.isfinite(lon))
    found = need & looked_up[S.LATITUDE].notna().to_numpy()
    if need.any() and not found.any():
        raise InvalidDataError(
            f"none of the {int(need.sum())} imagettes without a position has its {KEY} among the {len(table)} "
            f"positioned products of {label} (an imagette's: {keys[need][0]!r}; a product's: "
            f"{table.index[0] if len(table) else 'none'!r}); give the OCN products or SAFE products of the same "
            "acquisitions."
        )
    lat = np.where(found, looked_up[S.LATITUDE].to_numpy(), lat)
    lon = np.where(found, (looked_up[S.LONGITUDE].to_numpy() + 180.0) % 360.0 - 180.0, lon)
    attrs = {name: dict(ds[name].attrs) if name in ds.variables else {} for name in (S.LATITUDE, S.LONGITUDE)}
    attrs[S.LATITUDE].setdefault("units", "degrees_north")
    attrs[S.LONGITUDE].setdefault("units", "degrees_east")
    return ds.assign_coords({S.LATITUDE: (S.IMAGETTE, lat, attrs[S.LATITUDE]),
                             S.LONGITUDE: (S.IMAGETTE, lon, attrs[S.LONGITUDE])})


def collocate_to_file(
    imagettes: str | os.PathLike,
    source: str | os.PathLike,
    out: str | os.PathLike,
    *,
    variables: Sequence[str] | str | None = None,
    method: str = "linear",
    time_tolerance: Duration = None,
    max_distance_km: float | None = None,
    prefix: str | None = None,
    depth: float | None = None,
    quality_flags: Sequence[int] | None = None,
    positions: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    storage_options: dict | None = None,
    position: tuple[float, float] | None = None,
) -> xr.Dataset:
    """Collocate imagettes stored in files with a source file and write the per-imagette table (no pixels).

    This is the ``xwvnet collocate`` command: the table (time, position, ``imagette_key`` and the joined
    variables, one row per imagette) is what a comparison with reanalysis needs, small enough for netCDF or CSV.

    Parameters
    ----------
    imagettes : str or os.PathLike
        The imagettes, opened with :func:`open_imagettes`.
    source : str or os.PathLike
        The source file (see :func:`collocate`).
    out : str or os.PathLike
        The table to write: ``.csv`` for CSV, anything else for netCDF. Its folder is created.
    variables, method, time_tolerance, max_distance_km, prefix, depth, quality_flags, position
        As in :func:`collocate`.
    positions : str, os.PathLike or sequence of them, optional
        OCN products or SAFE products of the same acquisitions, whose positions imagettes without one take first
        (:func:`add_positions`).
    storage_options : dict, optional
        Credentials and endpoint when ``imagettes`` (or ``positions``) is a store in a bucket.

    Returns
    -------
    xarray.Dataset
        The table written, computed; its attribute ``collocation_no_position`` counts the imagettes left without
        a position.

    Raises
    ------
    MissingPositionError
        When no imagette has a position (see :func:`collocate`); nothing is written.
    ValueError, FileNotFoundError, ImportError
        As :func:`collocate`, :func:`open_imagettes` and :func:`add_positions` do.
    """
    ds = open_imagettes(imagettes, storage_options=storage_options)
    if positions is not None:
        ds = add_positions(ds, positions, storage_options=storage_options)
    joined = collocate(ds, source, variables=variables, method=method, time_tolerance=time_tolerance,
                       max_distance_km=max_distance_km, prefix=prefix, depth=depth, quality_flags=quality_flags,
                       position=position)
    new = [v for v in joined.data_vars if v not in ds.data_vars]
    keep = [c for c in (S.TIME, S.LATITUDE, S.LONGITUDE, KEY) if c in joined.variables]
    dims = {d for v in new for d in joined[v].dims}
    table = xr.Dataset(
        {name: joined[name].variable for name in (*keep, *new)},
        coords={d: joined[d].variable for d in dims if d in joined.coords},
        attrs={NO_POSITION_ATTR: joined.attrs[NO_POSITION_ATTR]},
    ).compute()
    table = count_missing(table)
    out = local_path(out, "a collocation table")
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".csv":
        table.to_dataframe().to_csv(out)
    else:
        table.to_netcdf(out)
    return table
