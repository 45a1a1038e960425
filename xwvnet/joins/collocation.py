"""Join imagettes with reanalysis grids (ERA5) and point/track output (WAVEWATCH III, L2 OCN): one call.

``collocate(ds, source)`` samples the source's variables at each imagette's ``time``, ``latitude`` and ``longitude``
and returns a new Dataset with them added, prefixed by the source's name (``era5_t2m``), units and attributes kept.

- Gridded sources (1-D ``latitude``/``longitude`` dimensions, optional ``time``): linear or nearest interpolation,
  vectorised over imagettes; longitudes in [0, 360) or [-180, 180), either latitude order, wrap-around across the
  antimeridian for global grids.
- Point/track sources (latitude/longitude along one "point" dimension, e.g. a WW3 track or OCN products): the
  nearest point in distance among those within ``time_tolerance``; the distance and time offset are kept. When both
  sides carry ``imagette_key`` (quicklooks and OCN products of one acquisition), they are joined on that key.

Imagettes outside the coverage or tolerance get NaN and are counted in a :class:`CollocationWarning`. The positions
(3 numbers per imagette) are always read; the source's values are gathered with vectorised indexing, so a
dask-backed side gives a lazy result that reads only the source chunks it touches.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .. import schema as S

EARTH_RADIUS_KM = 6371.0088
KEY = "imagette_key"
_CORNER = "_corner"
_POINT = "_point"
_LAT_NAMES = ("latitude", "lat", "nav_lat", "y_lat")
_LON_NAMES = ("longitude", "lon", "nav_lon", "x_lon")
_PREFIXES = (("era5", "era5"), ("erai", "erai"), ("era-interim", "erai"), ("ww3", "ww3"), ("wavewatch", "ww3"),
             ("-ocn-", "ocn"), ("ocn product", "ocn"), ("ocn", "ocn"))
_SOURCE_CHUNK_BYTES = 8 * 2**20


class CollocationWarning(UserWarning):
    """Some imagettes got NaN in a collocation: outside the source's coverage or tolerance, or without position."""


# --- opening and normalising the source ----------------------------------------------------------------------------
def open_source(path: str | os.PathLike) -> xr.Dataset:
    """Open a netCDF, GRIB or Zarr source lazily (values are read only when sampled)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"collocation source {path} does not exist; pass a Dataset or an existing file.")
    suffix = path.suffix.lower()
    if suffix in (".grib", ".grb", ".grib2", ".grb2"):
        try:
            import cfgrib  # noqa: F401
        except ImportError as err:
            raise ImportError(
                f"{path.name} is a GRIB file: reading it needs cfgrib and eccodes (pip install cfgrib eccodes), "
                "or convert it to netCDF first."
            ) from err
        return xr.open_dataset(path, engine="cfgrib", backend_kwargs={"indexpath": ""})
    if suffix == ".zarr" or (path / ".zgroup").exists() or (path / "zarr.json").exists():
        return xr.open_zarr(path)
    if suffix == ".safe" or path.name == "manifest.safe":
        from ..io.safe import imagettes_from_manifest

        return imagettes_from_manifest(path)
    return xr.open_dataset(path)


def _guess_prefix(source: xr.Dataset, path: Path | None) -> str:
    origin = path.name if path else Path(str(source.encoding.get("source", ""))).name
    text = " ".join([origin] + [str(source.attrs.get(k, "")) for k in ("title", "source", "history", "product_name")])
    text = text.lower()
    for token, prefix in _PREFIXES:
        if token in text:
            return prefix
    if S.IMAGETTE in source.dims and KEY in source.variables:
        return "ocn"
    return "source"


def _find(ds: xr.Dataset, names: Sequence[str], standard_name: str) -> str | None:
    for name in names:
        if name in ds.variables:
            return name
    for name, var in ds.variables.items():
        if var.attrs.get("standard_name") == standard_name:
            return str(name)
    return None


def normalise_source(source: xr.Dataset) -> xr.Dataset:
    """The source with ``latitude``/``longitude``/``time`` spelled so, a ``valid_time`` axis used as ``time``.

    ERA5 netCDF from the new CDS names the time axis ``valid_time``; cfgrib gives ``time`` (analysis time) and a
    ``valid_time`` coordinate (time + step), which is the time the field is valid at and so the one to match.
    """
    out = source
    renames: dict[str, str] = {}
    lat = _find(out, _LAT_NAMES, "latitude")
    lon = _find(out, _LON_NAMES, "longitude")
    if lat is None or lon is None:
        raise ValueError(
            f"the collocation source has no latitude/longitude: expected variables named {_LAT_NAMES} / {_LON_NAMES} "
            f"(or with those standard names); found {sorted(map(str, out.variables))}."
        )
    renames.update({k: v for k, v in ((lat, S.LATITUDE), (lon, S.LONGITUDE)) if k != v})
    if renames:
        out = out.rename(renames)
    if "valid_time" in out.variables:
        vt = out["valid_time"]
        if "valid_time" in out.dims:
            out = out.drop_vars([S.TIME], errors="ignore").rename({"valid_time": S.TIME})
        elif vt.ndim == 1 and S.TIME in out.dims and vt.dims == (S.TIME,):
            out = out.drop_vars("valid_time").assign_coords({S.TIME: vt.values})
        elif vt.ndim == 0 and S.TIME not in out.dims:
            out = out.drop_vars("valid_time")
        elif vt.ndim > 1:
            raise ValueError(
                f"the source's valid_time has dims {vt.dims}: select one forecast step (source.isel(step=0)) or "
                "stack time and step into one valid time first."
            )
    if S.TIME in out.variables and out[S.TIME].ndim == 0:
        out = out.drop_vars(S.TIME)
    return out


def _prepare(source: xr.Dataset | str | os.PathLike) -> tuple[xr.Dataset, Path | None]:
    path = None
    if not isinstance(source, xr.Dataset):
        if isinstance(source, xr.DataArray):
            source = source.to_dataset(name=source.name or "value")
        else:
            path = Path(source)
            source = open_source(path)
    source = normalise_source(source)
    from .waves import add_wave_parameters, find_spectrum

    spectrum = find_spectrum(source)
    if spectrum is not None and {"frequency", "direction"} <= set(source[spectrum].dims):
        source = add_wave_parameters(source, spectrum)
    return source, path


# --- positions and helpers -----------------------------------------------------------------------------------------
def _positions(ds: xr.Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Imagette time (int64 ns, NaT as the minimum int), latitude and longitude as numpy arrays (small)."""
    S.require(ds, [S.TIME, S.LATITUDE, S.LONGITUDE], "collocate")
    if S.IMAGETTE not in ds.dims:
        raise ValueError(
            f"collocate expects an imagette Dataset with dimension {S.IMAGETTE!r}; found {dict(ds.sizes)}."
        )
    time = np.asarray(ds[S.TIME].values).astype("datetime64[ns]")
    lat = np.asarray(ds[S.LATITUDE].values, dtype=float)
    lon = np.asarray(ds[S.LONGITUDE].values, dtype=float)
    return time, lat, lon


def _timedelta(value: Any) -> np.timedelta64 | None:
    if value is None:
        return None
    try:
        return pd.Timedelta(value).to_timedelta64().astype("timedelta64[ns]")
    except (ValueError, TypeError) as err:
        raise ValueError(f"time_tolerance must be a duration such as '3h' or np.timedelta64; found {value!r}.") from err


def _is_lazy(obj: xr.Dataset) -> bool:
    return any(v.chunks is not None for v in obj.variables.values())


def haversine_km(lat1: Any, lon1: Any, lat2: Any, lon2: Any) -> np.ndarray:
    """Great-circle distance (km) on a sphere of the mean Earth radius; broadcasts."""
    p1, p2 = np.deg2rad(lat1), np.deg2rad(lat2)
    dlat = p2 - p1
    dlon = np.deg2rad(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin(dlat / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0, 1)))


def _warn(count: int, total: int, what: str, name: str) -> None:
    if count:
        warnings.warn(
            f"{count} of {total} imagettes {what} of source {name!r} and got NaN.", CollocationWarning, stacklevel=3
        )


# --- gridded sources -----------------------------------------------------------------------------------------------
def _axis(coord: np.ndarray, target: np.ndarray, method: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices (n, c) into ``coord`` (any order), weights (n, c) and an in-range mask for 1-D interpolation."""
    coord = np.asarray(coord, dtype=float)
    order = np.argsort(coord, kind="stable")
    c = coord[order]
    n = c.size
    inside = np.isfinite(target) & (target >= c[0]) & (target <= c[-1])
    t = np.where(inside, target, c[0])
    if n == 1:
        idx = np.zeros((t.size, 1), dtype=np.int64)
        return order[idx], np.ones((t.size, 1)), inside
    hi = np.clip(np.searchsorted(c, t, side="right"), 1, n - 1)
    lo = hi - 1
    frac = (t - c[lo]) / (c[hi] - c[lo])
    if method == "nearest":
        pick = np.where(frac > 0.5, hi, lo)
        return order[pick][:, None], np.ones((t.size, 1)), inside
    return order[np.stack([lo, hi], 1)], np.stack([1 - frac, frac], 1), inside


def _lon_axis(coord: np.ndarray, target: np.ndarray, method: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Like :func:`_axis` for longitudes: any convention, and periodic when the grid goes all the way round."""
    lon = np.mod(np.asarray(coord, dtype=float), 360.0)
    order = np.argsort(lon, kind="stable")
    s = lon[order]
    n = s.size
    gaps = np.diff(np.concatenate([s, [s[0] + 360.0]]))
    if n == 1:
        start, step = 0, np.inf
    else:
        start = (int(np.argmax(gaps)) + 1) % n  # the grid starts after its largest gap
        step = np.median(np.diff(s)) if n > 2 else gaps.min()
    lon0 = s[start]
    rolled = np.roll(order, -start)
    unwrapped = lon0 + np.mod(lon[rolled] - lon0, 360.0)  # increasing from lon0
    periodic = n > 2 and gaps.max() <= 1.5 * step
    t = lon0 + np.mod(np.asarray(target, dtype=float) - lon0, 360.0)
    t = np.where(np.isfinite(target), t, np.nan)
    if periodic:
        # append the first column again at lon0 + 360 so that the last cell closes the circle
        ext = np.concatenate([unwrapped, [unwrapped[0] + 360.0]])
        idx, w, inside = _axis(ext, t, method)
        positions = np.concatenate([rolled, [rolled[0]]])
        return positions[idx], w, inside
    idx, w, inside = _axis(unwrapped, t, method)
    return rolled[idx], w, inside


def _time_axis(
    grid: np.ndarray, time: np.ndarray, method: str, tolerance: np.timedelta64 | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_axis` for time: NaT is outside; with a tolerance, times just outside the record are clamped to its
    first/last step, and a nearest step must lie within the tolerance."""
    grid_t = np.asarray(grid).astype("datetime64[ns]")
    t = np.asarray(time).astype("datetime64[ns]")
    t_ns = np.where(np.isnat(t), np.nan, t.astype(np.int64).astype(float))
    if tolerance is not None:
        lo, hi = grid_t.min(), grid_t.max()
        ok = ~np.isnat(t) & (t >= lo - tolerance) & (t <= hi + tolerance)
        t_ns = np.where(ok, np.clip(t_ns, float(lo.astype(np.int64)), float(hi.astype(np.int64))), np.nan)
    idx, w, inside = _axis(grid_t.astype(np.int64).astype(float), t_ns, method)
    if tolerance is not None and method == "nearest":
        inside &= np.abs(grid_t[idx[:, 0]] - t) <= tolerance
    return idx, w, inside


def _combine(axes: list[tuple[str, np.ndarray, np.ndarray]]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Outer product of per-axis corners: indexers (n, C) per dim, and weights (n, C)."""
    n = axes[0][1].shape[0]
    indexers: dict[str, np.ndarray] = {}
    weights = np.ones((n, 1))
    for dim, idx, w in axes:
        c_prev, c = weights.shape[1], idx.shape[1]
        weights = (weights[:, :, None] * w[:, None, :]).reshape(n, c_prev * c)
        for key in indexers:
            indexers[key] = np.repeat(indexers[key], c, axis=1)
        indexers[dim] = np.tile(idx, (1, c_prev))
    return indexers, weights


def _gather(
    source: xr.Dataset, names: list[str], indexers: dict[str, np.ndarray], weights: np.ndarray, valid: np.ndarray
) -> dict[str, xr.DataArray]:
    """Weighted sum over corners of vectorised picks; lazy when the source is dask-backed."""
    ix = {dim: xr.DataArray(idx, dims=(S.IMAGETTE, _CORNER)) for dim, idx in indexers.items()}
    w = xr.DataArray(weights, dims=(S.IMAGETTE, _CORNER))
    mask = xr.DataArray(valid, dims=(S.IMAGETTE,))
    out = {}
    for name in names:
        var = source[name]
        picked = var.isel({d: i for d, i in ix.items() if d in var.dims})
        picked = picked.drop_vars([c for c in picked.coords if _CORNER in picked[c].dims or c in indexers])
        if weights.shape[1] == 1:
            value = picked.isel({_CORNER: 0})
        else:
            value = (picked.astype(np.result_type(var.dtype, np.float32)) * w).sum(_CORNER, skipna=False)
        if value.dtype.kind in "iub":
            value = value.astype(np.float64)
        value = value.where(mask)
        out[name] = value.transpose(S.IMAGETTE, ...).assign_attrs(var.attrs)
    return out


def _collocate_grid(
    source: xr.Dataset, names: list[str], pos: tuple, method: str, tolerance: np.timedelta64 | None, label: str
) -> dict[str, xr.DataArray]:
    time, lat, lon = pos
    has_pos = np.isfinite(lat) & np.isfinite(lon)
    lat_idx, lat_w, lat_in = _axis(source[S.LATITUDE].values, lat, method)
    lon_idx, lon_w, lon_in = _lon_axis(source[S.LONGITUDE].values, lon, method)
    axes = [(S.LATITUDE, lat_idx, lat_w), (S.LONGITUDE, lon_idx, lon_w)]
    valid = lat_in & lon_in
    if S.TIME in source.dims:
        has_pos &= ~np.isnat(time)
        t_idx, t_w, t_in = _time_axis(source[S.TIME].values, time, method, tolerance)
        axes.insert(0, (S.TIME, t_idx, t_w))
        valid &= t_in
        outside_time = has_pos & lat_in & lon_in & ~t_in
        _warn(int(outside_time.sum()), lat.size, "are outside the time range (or time_tolerance)", label)
    _warn(int((~has_pos).sum()), lat.size, "have no position or time", label)
    _warn(int((has_pos & ~(lat_in & lon_in)).sum()), lat.size, "are outside the latitude/longitude coverage", label)
    indexers, weights = _combine(axes)
    return _gather(source, names, indexers, weights, valid)


# --- point / track sources -----------------------------------------------------------------------------------------
def _nearest_points(
    pos: tuple, p_lat: np.ndarray, p_lon: np.ndarray, p_time: np.ndarray | None, tolerance: np.timedelta64 | None,
    block: int = 2048,
) -> tuple[np.ndarray, np.ndarray]:
    """For each imagette, the index of the nearest point (within the time tolerance) and its distance (km)."""
    time, lat, lon = pos
    n = lat.size
    best = np.full(n, -1, dtype=np.int64)
    dist = np.full(n, np.inf)
    p_ok = np.isfinite(p_lat) & np.isfinite(p_lon)
    for start in range(0, n, block):
        sl = slice(start, start + block)
        d = haversine_km(lat[sl, None], lon[sl, None], p_lat[None, :], p_lon[None, :])
        d = np.where(p_ok[None, :] & np.isfinite(d), d, np.inf)
        if p_time is not None:
            dt = np.abs(p_time[None, :] - time[sl, None])
            bad_t = np.isnat(dt) | (dt > tolerance) if tolerance is not None else np.isnat(dt)
            d = np.where(bad_t, np.inf, d)
            # among equally near points, prefer the nearest in time
            d_key = d + np.where(np.isnat(dt), 0, dt.astype(np.int64) / 1e18)
        else:
            d_key = d
        j = np.argmin(d_key, axis=1)
        rows = np.arange(j.size)
        best[sl] = j
        dist[sl] = d[rows, j]
    best = np.where(np.isfinite(dist), best, -1)
    return best, np.where(best >= 0, dist, np.nan)


def _warn_unbounded(dist: np.ndarray, offset: np.ndarray | None, tolerance: Any, max_km: Any, label: str) -> None:
    """Without limits, every imagette gets the nearest point however far: say how far the worst match is."""
    parts = []
    if max_km is None:
        parts.append(f"{np.nanmax(dist):.1f} km")
    if tolerance is None and offset is not None:
        parts.append(f"{pd.Timedelta(np.abs(offset).max())}")
    if parts:
        warnings.warn(
            f"no {' or '.join(n for n, v in (('max_distance_km', max_km), ('time_tolerance', tolerance)) if v is None)}"
            f" given for point source {label!r}: the "
            f"farthest match is {' and '.join(parts)} away; pass time_tolerance= and max_distance_km= to bound them.",
            CollocationWarning, stacklevel=4,
        )


def _point_time(source: xr.Dataset, point_dim: str) -> np.ndarray | None:
    if S.TIME in source.variables and source[S.TIME].dims == (point_dim,):
        return source[S.TIME].values.astype("datetime64[ns]")
    return None


def _collocate_points(
    source: xr.Dataset, names: list[str], pos: tuple, method: str, tolerance: np.timedelta64 | None,
    max_km: float | None, label: str, ds: xr.Dataset, prefix: str,
) -> dict[str, xr.DataArray]:
    time, lat, lon = pos
    point_dim = source[S.LATITUDE].dims[0]
    p_lat = np.asarray(source[S.LATITUDE].values, dtype=float)
    p_lon = np.asarray(source[S.LONGITUDE].values, dtype=float)
    p_time = _point_time(source, point_dim)
    n = lat.size
    keyed = KEY in ds.variables and KEY in source.variables and source[KEY].dims == (point_dim,)
    if keyed:
        lookup = {str(k): i for i, k in enumerate(source[KEY].values) if str(k)}
        best = np.array([lookup.get(str(k), -1) for k in ds[KEY].values], dtype=np.int64)
        dist = np.where(best >= 0, haversine_km(lat, lon, p_lat[best], p_lon[best]), np.nan)
        _warn(int((best < 0).sum()), n, f"have no {KEY} match in the products", label)
    else:
        has_pos = np.isfinite(lat) & np.isfinite(lon) & (~np.isnat(time) if p_time is not None else True)
        best, dist = _nearest_points(pos, p_lat, p_lon, p_time, tolerance)
        best = np.where(has_pos, best, -1)
        _warn(int((~has_pos).sum()), n, "have no position or time", label)
        _warn(int((has_pos & (best < 0)).sum()), n, "have no point within time_tolerance", label)
        if max_km is not None:
            far = (best >= 0) & (dist > max_km)
            _warn(int(far.sum()), n, f"are farther than {max_km} km from every point", label)
            best = np.where(far, -1, best)
    valid = best >= 0
    dist = np.where(valid, dist, np.nan)
    if not keyed and (tolerance is None or max_km is None) and valid.any():
        _warn_unbounded(dist[valid], (p_time[best[valid]] - time[valid]) if p_time is not None else None,
                        tolerance, max_km, label)
    axes = [(point_dim, np.where(valid, best, 0)[:, None], np.ones((n, 1)))]
    if S.TIME in source.dims and point_dim != S.TIME:  # station output: (time, station)
        t_idx, t_w, t_in = _time_axis(source[S.TIME].values, time, method, tolerance)
        _warn(int((valid & ~t_in).sum()), n, "are outside the time range of the station output", label)
        valid &= t_in
        axes.insert(0, (S.TIME, t_idx, t_w))
    indexers, weights = _combine(axes)
    out = _gather(source, names, indexers, weights, valid)
    src = np.where(valid, best, 0)
    out[f"{prefix}distance_km"] = xr.DataArray(
        np.where(valid, dist, np.nan), dims=(S.IMAGETTE,),
        attrs={"units": "km", "long_name": f"great-circle distance to the matched {label} point"},
    )
    if p_time is not None:
        offset = np.where(valid, p_time[src] - time, np.timedelta64("NaT", "ns"))
        out[f"{prefix}time_offset"] = xr.DataArray(
            offset, dims=(S.IMAGETTE,), attrs={"long_name": f"time of the matched {label} point minus imagette time"}
        )
    return out


# --- the public function -------------------------------------------------------------------------------------------
def _is_gridded(source: xr.Dataset) -> bool:
    lat, lon = source[S.LATITUDE], source[S.LONGITUDE]
    return lat.dims == (S.LATITUDE,) and lon.dims == (S.LONGITUDE,)


def _select(source: xr.Dataset, variables: Sequence[str] | str | None, required_dims: set[str]) -> list[str]:
    skip = {S.LATITUDE, S.LONGITUDE, S.TIME, KEY}
    if variables is None:
        names = [
            str(n) for n, v in source.data_vars.items()
            if n not in skip and required_dims <= set(v.dims) and v.dtype.kind in "fiub"
        ]
        if not names:
            raise ValueError(
                f"the source has no numeric variable on dims {sorted(required_dims)}; its variables are "
                f"{sorted(map(str, source.data_vars))}."
            )
        return names
    names = [variables] if isinstance(variables, str) else list(variables)
    missing = [n for n in names if n not in source.variables]
    if missing:
        raise ValueError(
            f"variables {missing} are not in the source; it has {sorted(map(str, source.data_vars))} "
            "(wave spectra are turned into hs, tm01, tm02, tp, mean_direction)."
        )
    wrong = [n for n in names if not required_dims <= set(source[n].dims)]
    if wrong:
        raise ValueError(f"variables {wrong} do not vary along {sorted(required_dims)}, so cannot be collocated.")
    return names


def collocate(
    ds: xr.Dataset,
    source: xr.Dataset | str | os.PathLike,
    *,
    variables: Sequence[str] | str | None = None,
    method: str = "linear",
    time_tolerance: Any = None,
    max_distance_km: float | None = None,
    prefix: str | None = None,
) -> xr.Dataset:
    """A new Dataset: ``ds`` plus the source's variables at each imagette's time and position, named ``<prefix>_<var>``.

    ``source`` is a Dataset or a path (netCDF, GRIB with cfgrib, Zarr). ``method`` is ``"linear"`` or ``"nearest"``
    for gridded sources; point sources always take the nearest point. ``time_tolerance`` (e.g. ``"3h"``): for grids,
    how far outside the time record an imagette may lie (clamped to the first/last step) and, with ``nearest``, the
    largest offset to the chosen step; for points, which points are candidates. ``max_distance_km`` bounds point
    matches. ``prefix`` defaults to the source's name (``era5``, ``ww3``, ``ocn``, else ``source``); ``""`` for none.
    Imagettes that cannot be matched get NaN and are counted in a :class:`CollocationWarning`.
    """
    if method not in ("linear", "nearest"):
        raise ValueError(f"method must be 'linear' or 'nearest', found {method!r}.")
    if max_distance_km is not None and not max_distance_km > 0:
        raise ValueError(f"max_distance_km must be a positive number of km, found {max_distance_km!r}.")
    tolerance = _timedelta(time_tolerance)
    src, path = _prepare(source)
    name = _guess_prefix(src, path) if prefix is None else prefix
    sep = f"{name}_" if name else ""
    label = name or (path.name if path else "source")
    pos = _positions(ds)
    lazy = _is_lazy(ds) or _is_lazy(src)
    if lazy and not _is_lazy(src):
        src = src.chunk(_source_chunks(src))
    if _is_gridded(src):
        names = _select(src, variables, {S.LATITUDE, S.LONGITUDE})
        new = _collocate_grid(src, names, pos, method, tolerance, label)
    else:
        if src[S.LATITUDE].ndim != 1 or src[S.LATITUDE].dims != src[S.LONGITUDE].dims:
            raise ValueError(
                "the source is neither a grid (1-D latitude and longitude dimensions) nor points (latitude and "
                f"longitude along one dimension): latitude has dims {src[S.LATITUDE].dims}, longitude "
                f"{src[S.LONGITUDE].dims}. Regrid curvilinear sources first."
            )
        point_dim = src[S.LATITUDE].dims[0]
        if point_dim == S.IMAGETTE:
            src = src.rename({S.IMAGETTE: _POINT})
            point_dim = _POINT
        names = _select(src, variables, {point_dim})
        new = _collocate_points(src, names, pos, method, tolerance, max_distance_km, label, ds, sep)
    renamed = {}
    for key, value in new.items():
        out_name = key if key.startswith(sep) and key not in names else f"{sep}{key}"
        value = value.drop_vars([c for c in value.coords if c not in value.dims or c == S.IMAGETTE], errors="ignore")
        value.attrs = {**value.attrs, "collocation_source": label, "collocation_method": method}
        value.encoding = {}
        renamed[out_name] = value
    clash = [k for k in renamed if k in ds.variables]
    if clash:
        raise ValueError(f"collocated variables {clash} already exist in the Dataset; pass another prefix=.")
    result = ds.assign(renamed)
    if lazy:
        result = result.assign({k: v.chunk({S.IMAGETTE: _imagette_chunks(ds)}) for k, v in renamed.items()})
    return result


def _source_chunks(src: xr.Dataset) -> dict[str, int]:
    """Chunks for a numpy source made lazy: a few MB each, along time (or the point dim) only."""
    dims = dict(src.sizes)
    lead = S.TIME if S.TIME in dims else next(iter(dims), None)
    if lead is None:
        return {}
    per_step = max(1, int(np.prod([s for d, s in dims.items() if d != lead])) * 8)
    return {lead: max(1, min(dims[lead], _SOURCE_CHUNK_BYTES // per_step))}


def _imagette_chunks(ds: xr.Dataset) -> Any:
    """The imagette chunks of the first chunked variable that has them (variables may disagree), else one chunk."""
    for var in ds.variables.values():
        if var.chunks is not None and S.IMAGETTE in var.dims:
            return var.chunks[var.dims.index(S.IMAGETTE)]
    return -1


# --- files in, file out (the CLI's `xwvnet collocate`) --------------------------------------------------------------
def open_imagettes(path: str | os.PathLike) -> xr.Dataset:
    """Imagettes from a Zarr store, a WV SAFE folder / manifest (positions only) or L2 OCN products."""
    path = Path(path)
    if path.name == "manifest.safe" or path.suffix.upper() == ".SAFE":
        from ..io.safe import imagettes_from_manifest

        return imagettes_from_manifest(path)
    if path.suffix == ".nc" or (path.is_dir() and any(path.glob("*-ocn-*.nc"))):
        from ..io.ocn import open_ocn

        return open_ocn(path)
    from ..io.store import open_store

    return open_store(path)


def collocate_to_file(
    imagettes: str | os.PathLike, source: str | os.PathLike, out: str | os.PathLike, **kwargs: Any
) -> xr.Dataset:
    """Collocate the imagettes at ``imagettes`` with ``source`` and write the per-imagette table (no pixels) to
    ``out`` (``.nc`` or ``.csv``); returns that table."""
    ds = open_imagettes(imagettes)
    joined = collocate(ds, source, **kwargs)
    new = [v for v in joined.data_vars if v not in ds.data_vars]
    keep = [c for c in (S.TIME, S.LATITUDE, S.LONGITUDE, KEY) if c in joined.variables]
    dims = {d for v in new for d in joined[v].dims}
    table = xr.Dataset(
        {name: joined[name].variable for name in (*keep, *new)},
        coords={d: joined[d].variable for d in dims if d in joined.coords},
    ).compute()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".csv":
        table.to_dataframe().to_csv(out)
    else:
        table.to_netcdf(out)
    return table
