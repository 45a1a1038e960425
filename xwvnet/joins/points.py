"""Match imagettes with point sources (WAVEWATCH III tracks, stations, buoys, L2 OCN products) by great-circle distance.

Points lie along one dimension (``latitude`` and ``longitude`` both on it). Each imagette takes the nearest point
among those within the time tolerance, found with :class:`sklearn.neighbors.BallTree` on the sphere (haversine
metric): O(n log m) for n imagettes and m points, where a dense distance matrix is O(n m) in time and memory. The
great-circle distance and the time offset of the match are kept. Station output with its own ``time`` axis
(``hs(time, station)``) takes the nearest station, then its values at the imagette time (linear or nearest).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import pandas as pd
import xarray as xr

from .. import schema as S
from ..errors import InvalidArgumentError, warn
from .grid import CollocationWarning, nearest_step, time_targets, warn_count

if TYPE_CHECKING:
    from sklearn.neighbors import BallTree

EARTH_RADIUS_KM = 6371.0088  # the mean Earth radius (IUGG), as in the haversine distances
KEY = "imagette_key"
_FIRST_K = 4  # neighbours asked first; more only where none of them is within the time tolerance


def haversine_km(
    lat1: npt.ArrayLike, lon1: npt.ArrayLike, lat2: npt.ArrayLike, lon2: npt.ArrayLike
) -> np.ndarray:
    """Great-circle distance in km on a sphere of the mean Earth radius; broadcasts like numpy.

    Parameters
    ----------
    lat1, lon1 : array_like
        Latitude and longitude of the first points (degrees).
    lat2, lon2 : array_like
        Latitude and longitude of the second points (degrees).

    Returns
    -------
    numpy.ndarray
        Distances in km (NaN where a position is NaN).

    Examples
    --------
    >>> round(float(haversine_km(0.0, 0.0, 0.0, 1.0)), 3)  # one degree along the equator
    111.195
    """
    p1, p2 = np.deg2rad(lat1), np.deg2rad(lat2)
    dlat = p2 - p1
    dlon = np.deg2rad(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin(dlat / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0, 1)))


def _radians(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """(n, 2) [latitude, longitude] in radians, the layout BallTree's haversine metric expects."""
    return np.deg2rad(np.column_stack([lat, lon]))


def _query(
    tree: BallTree, candidates: np.ndarray, where: np.ndarray, rows: np.ndarray, time: np.ndarray | None,
    p_time: np.ndarray | None, tolerance: np.timedelta64 | None, best: np.ndarray,
) -> None:
    """Fill ``best[rows]`` with the nearest admissible candidate, asking the tree for more neighbours as needed.

    Admissible: within ``tolerance`` of the imagette time (any time without a tolerance). Among points at the
    same distance the nearest in time wins. An imagette is settled once an admissible neighbour was found and a
    farther one was returned after it (no tie is left beyond), or once every candidate was returned.
    """
    k = min(_FIRST_K, candidates.size)
    limit = None if tolerance is None else int(np.timedelta64(tolerance, "ns").astype(np.int64))
    todo = rows
    while todo.size:
        dist, idx = tree.query(where[todo], k=k)  # sorted by distance
        pts = candidates[idx]
        dt = np.zeros(pts.shape, dtype=np.int64)
        if p_time is not None:
            dt = np.abs(p_time[pts] - time[todo, None]).astype("timedelta64[ns]").astype(np.int64)
        ok = np.ones(pts.shape, dtype=bool) if tolerance is None else dt <= limit
        nearest = np.where(ok, dist, np.inf).min(axis=1)
        tied = ok & (dist == nearest[:, None])  # equally near: the nearest in time, then the first point
        soonest = np.where(tied, dt, np.iinfo(np.int64).max).min(axis=1)
        choice = np.where(tied & (dt == soonest[:, None]), pts, np.iinfo(np.int64).max).min(axis=1)
        found = np.isfinite(nearest)
        settled = (k == candidates.size) | (found & (dist[:, -1] > nearest))
        best[todo[settled & found]] = choice[settled & found]
        todo = todo[~settled]
        k = min(4 * k, candidates.size)


def nearest_points(
    latitude: np.ndarray,
    longitude: np.ndarray,
    point_latitude: np.ndarray,
    point_longitude: np.ndarray,
    *,
    time: np.ndarray | None = None,
    point_time: np.ndarray | None = None,
    time_tolerance: np.timedelta64 | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """For each imagette, the nearest point on the sphere (within the time tolerance) and its distance.

    A :class:`~sklearn.neighbors.BallTree` with the haversine metric answers each imagette in O(log m). With a
    time tolerance, the points are first cut to the time window of each group of imagettes (a quarter tolerance wide,
    wider where the imagettes are sparse in time),
    so that points near in space but far in time do not crowd out the admissible ones.

    Parameters
    ----------
    latitude, longitude : numpy.ndarray
        Imagette positions (degrees; NaN where unknown: no match).
    point_latitude, point_longitude : numpy.ndarray
        Point positions (degrees; NaN points are never matched).
    time : numpy.ndarray or None, optional
        Imagette times (datetime64); needed with ``point_time``. NaT: no match.
    point_time : numpy.ndarray or None, optional
        Point times (datetime64). With them, among points at the same distance the nearest in time wins.
    time_tolerance : numpy.timedelta64 or None, optional
        The largest ``|point time - imagette time|`` of a match; ``None`` for any.

    Returns
    -------
    index : numpy.ndarray
        int64 index of the matched point per imagette, -1 where none.
    distance_km : numpy.ndarray
        Great-circle distance to it (km), NaN where none.

    Raises
    ------
    ValueError
        When ``point_time`` is given without ``time``.

    Examples
    --------
    >>> import numpy as np
    >>> index, km = nearest_points(np.array([0.0, 50.0]), np.array([179.9, 0.0]),
    ...                            np.array([0.0, 0.0, 50.0]), np.array([-179.9, 10.0, 1.0]))
    >>> index.tolist(), np.round(km, 1).tolist()  # across the antimeridian, 22 km
    ([0, 2], [22.2, 71.5])
    """
    lat = np.asarray(latitude, dtype=float)
    lon = np.asarray(longitude, dtype=float)
    p_lat = np.asarray(point_latitude, dtype=float)
    p_lon = np.asarray(point_longitude, dtype=float)
    if point_time is not None and time is None:
        raise InvalidArgumentError("point_time needs the imagette times too: pass time=.")
    n = lat.size
    best = np.full(n, -1, dtype=np.int64)
    p_ok = np.isfinite(p_lat) & np.isfinite(p_lon)
    q_ok = np.isfinite(lat) & np.isfinite(lon)
    t = p_t = None
    if point_time is not None:
        t = np.asarray(time).astype("datetime64[ns]")
        p_t = np.asarray(point_time).astype("datetime64[ns]")
        p_ok &= ~np.isnat(p_t)
        q_ok &= ~np.isnat(t)
    where = _radians(lat, lon)
    if p_t is None or time_tolerance is None:
        groups = [(np.flatnonzero(q_ok), np.flatnonzero(p_ok))]
    else:
        # one group per quarter-tolerance window of imagette times, its candidates the points within reach of any
        # of them: at least 2 / 2.25 of those are admissible for each imagette, so few neighbours need asking
        rows = np.flatnonzero(q_ok)
        ns = t[rows].astype(np.int64)
        span = int(ns.max() - ns.min()) if rows.size else 0
        # (wider when the imagettes are sparse in time: 32 a window on average, or few would build many trees)
        quarter = int(time_tolerance.astype("timedelta64[ns]").astype(np.int64)) // 4
        width = max(quarter, span * 32 // max(rows.size, 1), 1)
        window = (ns - ns.min()) // width if rows.size else ns
        rows = rows[np.argsort(window, kind="stable")]
        window = np.sort(window, kind="stable")
        by_time = np.flatnonzero(p_ok)[np.argsort(p_t[p_ok], kind="stable")]
        p_sorted = p_t[by_time]
        groups = []
        for members in np.split(rows, np.flatnonzero(np.diff(window)) + 1):
            lo = np.searchsorted(p_sorted, t[members].min() - time_tolerance, side="left")
            hi = np.searchsorted(p_sorted, t[members].max() + time_tolerance, side="right")
            groups.append((members, np.sort(by_time[lo:hi])))
    from sklearn.neighbors import BallTree  # only point sources need scikit-learn

    for members, candidates in groups:
        if members.size and candidates.size:
            tree = BallTree(_radians(p_lat[candidates], p_lon[candidates]), metric="haversine")
            _query(tree, candidates, where, members, t, p_t, time_tolerance, best)
    found = best >= 0
    distance = np.full(n, np.nan)
    distance[found] = haversine_km(lat[found], lon[found], p_lat[best[found]], p_lon[best[found]])
    return best, distance


def _warn_unbounded(
    dist: np.ndarray, offset: np.ndarray | None, tolerance: np.timedelta64 | None, max_km: float | None, label: str
) -> None:
    """Without limits, every imagette gets the nearest point however far: say how far the worst match is."""
    parts = []
    if max_km is None:
        parts.append(f"{np.nanmax(dist):.1f} km")
    if tolerance is None and offset is not None:
        parts.append(f"{pd.Timedelta(np.abs(offset).max())}")
    if parts:
        missing = " or ".join(n for n, v in (("max_distance_km", max_km), ("time_tolerance", tolerance)) if v is None)
        warn(
            f"no {missing} given for point source {label!r}: the farthest match is {' and '.join(parts)} away; "
            "pass time_tolerance= and max_distance_km= to bound them.",
            CollocationWarning,
        )


def _along_time(
    var: xr.DataArray, at_point: dict[str, xr.DataArray], grid_time: np.ndarray, targets: np.ndarray,
    step: np.ndarray | None = None,
) -> xr.DataArray:
    """Values of ``var(time, point, ...)`` at each imagette's point and time, by pointwise indexing.

    With ``step`` (positions along ``time``, from :func:`~xwvnet.joins.grid.nearest_step`) those steps are
    picked; without, the steps before and after each target are picked with one pointwise ``isel`` each and
    weighted: lazy, reading only the chunks touched, where ``interp`` along an axis every imagette has its own
    value on would loop over the imagettes.
    """
    if step is not None:
        return var.isel({S.TIME: xr.DataArray(step, dims=(S.IMAGETTE,)), **at_point})
    order = np.argsort(grid_time, kind="stable")
    t = grid_time[order].astype("datetime64[ns]").astype(np.int64).astype(float)
    x = targets.astype("datetime64[ns]").astype(np.int64).astype(float)

    def pick(steps: np.ndarray) -> xr.DataArray:
        return var.isel({S.TIME: xr.DataArray(order[steps], dims=(S.IMAGETTE,)), **at_point})

    if t.size == 1:
        return pick(np.zeros(x.size, dtype=np.int64))
    lo = np.clip(np.searchsorted(t, x, side="right") - 1, 0, t.size - 2)
    frac = (x - t[lo]) / (t[lo + 1] - t[lo])
    w = xr.DataArray(frac, dims=(S.IMAGETTE,))
    before = pick(lo).astype(np.result_type(var.dtype, np.float32))
    return before * (1 - w) + pick(lo + 1) * w


def sample_points(
    source: xr.Dataset,
    names: Sequence[str],
    time: np.ndarray,
    latitude: np.ndarray,
    longitude: np.ndarray,
    *,
    method: str = "linear",
    time_tolerance: np.timedelta64 | None = None,
    max_distance_km: float | None = None,
    keys: np.ndarray | None = None,
    label: str = "source",
    prefix: str = "",
    reasons: dict[str, int] | None = None,
) -> dict[str, xr.DataArray]:
    """Values of a point source at imagettes: the nearest point within the tolerances, or the one with the same key.

    This is the point half of :func:`xwvnet.collocate`, which opens and normalises the source, picks the
    variables and names the results. Points lie along one dimension (a WW3 track, stations, OCN products);
    station output with its own ``time`` axis is sampled at the nearest station, then in time (linear or nearest).

    Parameters
    ----------
    source : xarray.Dataset
        The points: ``latitude`` and ``longitude`` along one dimension, a ``time`` along it too (tracks) or a
        separate ``time`` dimension (station output), and ``imagette_key`` along it for OCN products.
    names : sequence of str
        The variables to sample (each along the point dimension).
    time : numpy.ndarray
        Imagette times (datetime64, NaT where unknown).
    latitude, longitude : numpy.ndarray
        Imagette positions (degrees, NaN where unknown).
    method : {"linear", "nearest"}, optional
        How station output is sampled in time; the point itself is always the nearest.
    time_tolerance : numpy.timedelta64 or None, optional
        Which points are candidates (``|point time - imagette time|`` at most this); for station output, how far
        outside the time record an imagette may lie.
    max_distance_km : float or None, optional
        Matches farther than this get NaN.
    keys : numpy.ndarray or None, optional
        The imagettes' ``imagette_key``; when the source has one too, imagettes are joined on it instead of by
        distance (a quicklook and the OCN product of the same acquisition).
    label : str, optional
        The source's name in warnings and attributes.
    prefix : str, optional
        Prefix of the two extra outputs, ``<prefix>distance_km`` and ``<prefix>time_offset``.
    reasons : dict, optional
        Filled with the number of imagettes that got NaN for each reason: ``no_key_match``, ``no_position``,
        ``outside_time`` (no point within ``time_tolerance``, or outside the station output's record),
        ``beyond_max_distance``.

    Returns
    -------
    dict of str to xarray.DataArray
        One array per name (dimension ``imagette`` first, the source's other dimensions kept, its attributes
        kept, NaN where no match), plus ``<prefix>distance_km`` and, when points have times,
        ``<prefix>time_offset`` (point time minus imagette time).

    Warns
    -----
    CollocationWarning
        With the number of imagettes without a match, and the farthest match when a limit is missing.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> buoys = xr.Dataset({"hs": ("station", [1.0, 2.0])},
    ...                    coords={"latitude": ("station", [0.0, 10.0]), "longitude": ("station", [0.0, 10.0])})
    >>> nat = np.array(["NaT"], dtype="datetime64[ns]")
    >>> out = sample_points(buoys, ["hs"], nat, np.array([9.0]), np.array([9.5]), max_distance_km=500)
    >>> float(out["hs"][0]), round(float(out["distance_km"][0]), 1)
    (2.0, 124.0)
    """
    lat = np.asarray(latitude, dtype=float)
    lon = np.asarray(longitude, dtype=float)
    t = np.asarray(time).astype("datetime64[ns]")
    point_dim = source[S.LATITUDE].dims[0]
    p_lat = np.asarray(source[S.LATITUDE].values, dtype=float)
    p_lon = np.asarray(source[S.LONGITUDE].values, dtype=float)
    p_time = None
    if S.TIME in source.variables and source[S.TIME].dims == (point_dim,):
        p_time = source[S.TIME].values.astype("datetime64[ns]")
    n = lat.size
    keyed = keys is not None and KEY in source.variables and source[KEY].dims == (point_dim,)
    if keyed:
        lookup = {str(k): i for i, k in enumerate(source[KEY].values) if str(k)}
        best = np.array([lookup.get(str(k), -1) for k in np.asarray(keys)], dtype=np.int64)
        found = best >= 0
        dist = np.full(n, np.nan)
        dist[found] = haversine_km(lat[found], lon[found], p_lat[best[found]], p_lon[best[found]])
        warn_count(int((~found).sum()), n, f"have no {KEY} match in the products", label, reasons=reasons,
                   key="no_key_match")
    else:
        has_pos = np.isfinite(lat) & np.isfinite(lon) & (~np.isnat(t) if p_time is not None else True)
        best, dist = nearest_points(lat, lon, p_lat, p_lon, time=t if p_time is not None else None,
                                    point_time=p_time, time_tolerance=time_tolerance)
        best = np.where(has_pos, best, -1)
        warn_count(int((~has_pos).sum()), n, "have no position or time", label, reasons=reasons, key="no_position")
        warn_count(int((has_pos & (best < 0)).sum()), n, "have no point within time_tolerance", label,
                   reasons=reasons, key="outside_time")
        if max_distance_km is not None:
            far = (best >= 0) & (dist > max_distance_km)
            warn_count(int(far.sum()), n, f"are farther than {max_distance_km} km from every point", label,
                       reasons=reasons, key="beyond_max_distance")
            best = np.where(far, -1, best)
    valid = best >= 0
    dist = np.where(valid, dist, np.nan)
    if not keyed and (time_tolerance is None or max_distance_km is None) and valid.any():
        offset = (p_time[best[valid]] - t[valid]) if p_time is not None else None
        _warn_unbounded(dist[valid], offset, time_tolerance, max_distance_km, label)
    at_point = {point_dim: xr.DataArray(np.where(valid, best, 0), dims=(S.IMAGETTE,))}
    station_output = S.TIME in source.dims and point_dim != S.TIME
    if station_output:
        grid_time = source[S.TIME].values
        targets, t_in = time_targets(grid_time, t, time_tolerance)
        step = None
        if method == "nearest":  # the joins' one time rule (ties to the earlier step)
            step, within = nearest_step(grid_time, t, time_tolerance)
            if time_tolerance is not None:
                t_in &= within
        warn_count(int((valid & ~t_in).sum()), n, "are outside the time range of the station output", label,
                   reasons=reasons, key="outside_time")
        valid &= t_in
    mask = xr.DataArray(valid, dims=(S.IMAGETTE,))
    out = {}
    for name in names:
        var = source[name].reset_coords(drop=True)
        if station_output and S.TIME in var.dims:
            value = _along_time(var, at_point, source[S.TIME].values, targets, step)
        else:
            value = var.isel(at_point)
        value = value.reset_coords(drop=True)
        if value.dtype.kind in "iub":
            value = value.astype(np.float64)
        out[name] = value.where(mask).transpose(S.IMAGETTE, ...).assign_attrs(source[name].attrs)
    out[f"{prefix}distance_km"] = xr.DataArray(
        np.where(valid, dist, np.nan), dims=(S.IMAGETTE,),
        attrs={"units": "km", "long_name": f"great-circle distance to the matched {label} point"},
    )
    if p_time is not None:
        offset = np.where(valid, p_time[np.where(valid, best, 0)] - t, np.timedelta64("NaT", "ns"))
        out[f"{prefix}time_offset"] = xr.DataArray(
            offset, dims=(S.IMAGETTE,), attrs={"long_name": f"time of the matched {label} point minus imagette time"}
        )
    return out
