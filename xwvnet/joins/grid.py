"""Sample gridded sources (ERA5 and alike) at imagette positions and times with xarray's own indexing.

A grid has 1-D ``latitude`` and ``longitude`` dimensions and, optionally, ``time``. Every imagette is one point,
so the targets are vectorised indexers along ``imagette``: linear sampling is one :meth:`xarray.Dataset.interp`
call, nearest sampling one :meth:`xarray.Dataset.sel` with ``method="nearest"``. Before that the grid is made
ascending along every axis (a reversed *view*, no copy, for ERA5's descending latitudes), the imagette longitudes
are expressed in the grid's own convention ([0, 360) or [-180, 180)), and a global grid gets its first longitude
column appended after its last, 360 degrees on, only when some imagette lies between the two, so that those
interpolate across the antimeridian.

Dask-backed grids stay lazy, and only the time steps the imagettes need (and the latitude/longitude box they
cover) are read: ``interp`` would otherwise gather the whole grid into one block. Imagettes outside the coverage
get NaN and are counted in a :class:`CollocationWarning`.
"""

from __future__ import annotations

from collections.abc import Sequence

import dask
import dask.array as da
import numpy as np
import xarray as xr
from dask.utils import parse_bytes

from .. import schema as S
from ..errors import InvalidArgumentError, XWVNetWarning, warn

METHODS = ("linear", "nearest")


class CollocationWarning(XWVNetWarning):
    """Some imagettes got NaN in a collocation: outside the source's coverage or tolerance, or without position.

    Examples
    --------
    >>> import warnings
    >>> warnings.simplefilter("ignore", CollocationWarning)  # once the counts are known and accepted
    """


def warn_count(
    count: int, total: int, what: str, name: str, *, reasons: dict[str, int] | None = None,
    key: str = "",
) -> None:
    """Warn with a :class:`CollocationWarning` that ``count`` of ``total`` imagettes ``what`` and got NaN.

    Counting instead of warning per imagette keeps a join of a million imagettes readable; nothing is said
    when ``count`` is zero.

    Parameters
    ----------
    count : int
        How many imagettes are concerned.
    total : int
        How many imagettes were joined.
    what : str
        What happened to them, as a predicate (``"are outside the time range"``).
    name : str
        The source's name, quoted in the message.
    reasons : dict, optional
        Where the count is also added, under ``key`` (the joins put these counts in the result's attributes).
    key : str, optional
        The reason's short name (``"outside_time"``).

    Returns
    -------
    None
    """
    if reasons is not None and key:
        reasons[key] = reasons.get(key, 0) + int(count)
    if count:
        warn(f"{count} of {total} imagettes {what} of source {name!r} and got NaN.", CollocationWarning)


def time_targets(
    grid_time: np.ndarray, time: np.ndarray, tolerance: np.timedelta64 | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The times to sample a time axis at, and which imagettes are inside its record.

    Without a tolerance an imagette must lie within the first and last step. With one, an imagette up to
    ``tolerance`` outside the record is clamped to the first or last step (a field valid at 12Z still tells the
    weather at 12:20 when nothing later is there). NaT is always outside.

    Parameters
    ----------
    grid_time : numpy.ndarray
        The source's time steps (datetime64, any order).
    time : numpy.ndarray
        The imagette times (datetime64, NaT where unknown).
    tolerance : numpy.timedelta64 or None, optional
        How far outside the record an imagette may lie.

    Returns
    -------
    targets : numpy.ndarray
        datetime64[ns] times inside the record: clamped where within the tolerance, the first step where outside
        (a placeholder, to be masked).
    inside : numpy.ndarray
        Boolean, True where the imagette is inside the record (or within the tolerance of it).

    Examples
    --------
    >>> import numpy as np
    >>> steps = np.array(["2020-01-01T00", "2020-01-01T06"], dtype="datetime64[ns]")
    >>> t = np.array(["2020-01-01T03", "2020-01-01T07", "NaT"], dtype="datetime64[ns]")
    >>> time_targets(steps, t)[1]
    array([ True, False, False])
    >>> time_targets(steps, t, np.timedelta64(2, "h"))[0][1]
    np.datetime64('2020-01-01T06:00:00.000000000')
    """
    grid_t = np.asarray(grid_time).astype("datetime64[ns]")
    t = np.asarray(time).astype("datetime64[ns]")
    first, last = grid_t.min(), grid_t.max()
    if tolerance is None:
        inside = ~np.isnat(t) & (t >= first) & (t <= last)
        targets = t
    else:
        inside = ~np.isnat(t) & (t >= first - tolerance) & (t <= last + tolerance)
        targets = np.clip(t, first, last)
    return np.where(inside, targets, first), inside


def nearest_step(
    steps: np.ndarray, time: np.ndarray, tolerance: np.timedelta64 | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The nearest time step to each time, and whether it is within the tolerance: the joins' one time rule.

    Every join that takes "the nearest time step within tolerance" (gridded sources with ``method="nearest"``,
    station output with ``method="nearest"``) asks here. A time halfway between two steps takes the earlier one.
    A step exactly ``tolerance`` away is within it. NaT is never within.

    Parameters
    ----------
    steps : numpy.ndarray
        The source's time steps (datetime64, any order, at least one).
    time : numpy.ndarray
        The imagette times (datetime64, NaT where unknown).
    tolerance : numpy.timedelta64 or None, optional
        The largest ``|step - time|`` accepted; ``None`` accepts any (only NaT is refused).

    Returns
    -------
    index : numpy.ndarray
        int64 position in ``steps`` (as given, not sorted) of the nearest step; 0 where ``time`` is NaT.
    within : numpy.ndarray
        Boolean, True where ``time`` is not NaT and its nearest step is at most ``tolerance`` away.

    Examples
    --------
    >>> import numpy as np
    >>> steps = np.array(["2020-01-01T00", "2020-01-01T06"], dtype="datetime64[ns]")
    >>> t = np.array(["2020-01-01T03", "2020-01-01T05", "2020-01-01T09", "NaT"], dtype="datetime64[ns]")
    >>> index, within = nearest_step(steps, t, np.timedelta64(2, "h"))
    >>> index.tolist(), within.tolist()  # 03:00 is a tie (the earlier step), 3 h from either: outside
    ([0, 1, 1, 0], [False, True, False, False])
    """
    grid_t = np.asarray(steps).astype("datetime64[ns]")
    t = np.asarray(time).astype("datetime64[ns]")
    order = np.argsort(grid_t, kind="stable")
    ordered = grid_t[order]
    known = ~np.isnat(t)
    after = np.clip(np.searchsorted(ordered, np.where(known, t, ordered[0]), side="left"), 0, ordered.size - 1)
    before = np.maximum(after - 1, 0)
    gap_before = np.abs(np.where(known, t, ordered[0]) - ordered[before])
    gap_after = np.abs(np.where(known, t, ordered[0]) - ordered[after])
    position = np.where(gap_before <= gap_after, before, after)  # a tie goes to the earlier step
    offset = np.minimum(gap_before, gap_after)
    within = known if tolerance is None else known & (offset <= tolerance)
    return np.where(known, order[position], 0).astype(np.int64), within


def _ascending(grid: xr.Dataset, dim: str) -> xr.Dataset:
    """``grid`` with ``dim`` ascending: a reversed view when it is descending, a sorted copy when unordered."""
    index = grid.indexes[dim]
    if index.is_monotonic_increasing:
        return grid
    if index.is_monotonic_decreasing:
        return grid.isel({dim: slice(None, None, -1)})
    return grid.sortby(dim)


def _longitude_axis(grid: xr.Dataset, lon: np.ndarray) -> tuple[xr.Dataset, np.ndarray, np.ndarray]:
    """The grid with increasing longitudes from its western edge, the targets in that convention, and coverage.

    Longitudes are unwrapped from the grid's western edge (the value after its largest gap), so [0, 360),
    [-180, 180) and regional grids across 0 or 180 degrees all become increasing without moving data (a copy
    only when the stored order is not already circular). A global grid (no gap larger than 1.5 steps) is
    closed by its first column at +360 degrees when some target lies past its last column.
    """
    raw = np.asarray(grid.indexes[S.LONGITUDE], dtype=float)
    stored = np.mod(raw, 360.0)
    n = stored.size
    order = np.argsort(stored, kind="stable")
    ring = stored[order]
    gaps = np.diff(np.concatenate([ring, [ring[0] + 360.0]]))
    start = (int(np.argmax(gaps)) + 1) % n if n > 1 else 0  # the grid starts after its largest gap
    step = (np.median(np.diff(ring)) if n > 2 else gaps.min()) if n > 1 else np.inf
    positions = np.roll(order, -start)
    west = raw[positions[0]]  # in the grid's own convention, so that its coordinate usually stays as it is
    unwrapped = west + np.mod(raw[positions] - west, 360.0)
    if not np.array_equal(positions, np.arange(n)):
        grid = grid.isel({S.LONGITUDE: positions})
    attrs = grid.variables[S.LONGITUDE].attrs
    if not np.array_equal(unwrapped, raw[positions]):
        grid = grid.assign_coords({S.LONGITUDE: (S.LONGITUDE, unwrapped, attrs)})
    targets = west + np.mod(np.asarray(lon, dtype=float) - west, 360.0)
    east = unwrapped[-1]
    if n > 2 and gaps.max() <= 1.5 * step and np.any(targets > east):
        closing = grid.isel({S.LONGITUDE: [0]}).assign_coords({S.LONGITUDE: (S.LONGITUDE, [west + 360.0], attrs)})
        grid = xr.concat([grid, closing], dim=S.LONGITUDE, data_vars="minimal", coords="minimal",
                         compat="override", join="exact")
        east = west + 360.0
    inside = np.isfinite(targets) & (targets >= west) & (targets <= east)
    return grid, np.where(inside, targets, west), inside


def _is_lazy(obj: xr.Dataset) -> bool:
    return any(var.chunks is not None for var in obj.variables.values())


def _lower(coord: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Index of the grid step at or below each target (targets inside an ascending ``coord`` of 2 or more)."""
    return np.clip(np.searchsorted(coord, targets, side="right") - 1, 0, coord.size - 2)


def _as_number(values: np.ndarray) -> np.ndarray:
    return values.astype("datetime64[ns]").astype(np.int64) if values.dtype.kind == "M" else values.astype(float)


def _time_chunks(grid: xr.Dataset) -> tuple[int, ...]:
    """The chunks along ``time`` of the first variable chunked along it (one chunk when none is)."""
    for var in grid.data_vars.values():
        if var.chunks is not None and S.TIME in var.dims:
            return var.chunks[var.dims.index(S.TIME)]
    return (grid.sizes[S.TIME],)


def _runs(steps: np.ndarray, chunks: tuple[int, ...]) -> list[slice]:
    """Slices covering ``steps`` (sorted) that touch only the chunks holding them: one per run of adjacent chunks.

    Slices keep the dask graph small (a fancy index over many chunks becomes a shuffle of hundreds of tasks),
    and splitting at chunks no imagette needs keeps those chunks unread.
    """
    bounds = np.cumsum((0, *chunks))
    chunk = np.searchsorted(bounds, steps, side="right") - 1
    cuts = np.flatnonzero(np.diff(chunk) > 1) + 1
    return [slice(int(run[0]), int(run[-1]) + 1) for run in np.split(steps, cuts)]


def _interp_numpy(grid: xr.Dataset, targets: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Linear :meth:`~xarray.Dataset.interp` of an in-memory grid at points, ``imagette`` first in every result."""
    indexers = {dim: xr.DataArray(t, dims=(S.IMAGETTE,)) for dim, t in targets.items()}
    out = grid.interp(indexers, method="linear", assume_sorted=True)
    return {str(name): out[name].transpose(S.IMAGETTE, ...).values for name in grid.data_vars}


def _interp_lazy(grid: xr.Dataset, targets: dict[str, np.ndarray]) -> xr.Dataset:
    """:meth:`~xarray.Dataset.interp` of a dask-backed grid, reading only the steps and the box the targets need.

    ``interp`` of dask arrays gathers every interpolated axis into one block, so the grid is first cut to the
    latitude/longitude box of the targets and to the time chunks that hold the steps bracketing them, and the
    cut is interpolated in one task (in memory there, so it is the same ``interp`` as for numpy grids, and the
    graph stays small). When the cut would hold more than dask's ``array.chunk-size`` per variable, the imagettes
    are taken in groups of consecutive steps, one task each.
    """
    lower = {dim: _lower(_as_number(np.asarray(grid.indexes[dim])), _as_number(t)) for dim, t in targets.items()}
    n = next(iter(targets.values())).size
    if S.TIME in targets:
        item = max(var.dtype.itemsize * int(np.prod([s for d, s in var.sizes.items() if d != S.TIME]))
                   for var in grid.data_vars.values())
        steps_per_group = max(2, parse_bytes(dask.config.get("array.chunk-size")) // max(item, 1))
        firsts = np.unique(lower[S.TIME])
        bounds = firsts[:: max(1, steps_per_group // 2)]
        group = np.searchsorted(bounds, lower[S.TIME], side="right") - 1
        chunks = _time_chunks(grid)
    else:
        group = np.zeros(n, dtype=np.int64)
    parts, members = [], []
    for g in np.unique(group):
        rows = np.flatnonzero(group == g)
        box = {dim: slice(int(low[rows].min()), int(low[rows].max()) + 2) for dim, low in lower.items()
               if dim != S.TIME}
        if S.TIME in targets:
            steps = np.unique(np.concatenate([lower[S.TIME][rows], lower[S.TIME][rows] + 1]))
            pieces = [grid.isel({**box, S.TIME: run}) for run in _runs(steps, chunks)]
            cut = pieces[0] if len(pieces) == 1 else xr.concat(
                pieces, dim=S.TIME, data_vars="minimal", coords="minimal", compat="override", join="exact")
        else:
            cut = grid.isel(box)
        task = dask.delayed(_interp_numpy, pure=True)(cut, {dim: t[rows] for dim, t in targets.items()})
        values = {}
        for name, var in cut.data_vars.items():
            other = [d for d in var.dims if d not in targets]
            shape = (rows.size, *(var.sizes[d] for d in other))
            data = da.from_delayed(task[str(name)], shape, dtype=np.result_type(var.dtype, np.float64))
            values[name] = ((S.IMAGETTE, *other), data)
        parts.append(xr.Dataset(values, coords={d: cut[d] for d in cut.dims if d not in targets and d in cut.coords}))
        members.append(rows)
    if len(parts) == 1:
        return parts[0]
    order = np.concatenate(members)
    joined = xr.concat(parts, dim=S.IMAGETTE, data_vars="all", coords="minimal", compat="override", join="exact")
    return joined.isel({S.IMAGETTE: np.argsort(order, kind="stable")})


def sample_grid(
    source: xr.Dataset,
    names: Sequence[str],
    time: np.ndarray,
    latitude: np.ndarray,
    longitude: np.ndarray,
    *,
    method: str = "linear",
    time_tolerance: np.timedelta64 | None = None,
    label: str = "source",
    reasons: dict[str, int] | None = None,
) -> dict[str, xr.DataArray]:
    """Sample variables of a grid at points: linear with ``Dataset.interp``, nearest with ``Dataset.sel``.

    This is the gridded half of :func:`xwvnet.collocate`, which opens and normalises the source, picks the
    variables and names the results; call it directly to sample a grid at any points.

    Parameters
    ----------
    source : xarray.Dataset
        The grid: 1-D ``latitude`` and ``longitude`` dimensions (either order, any longitude convention), and
        optionally ``time``. Further dimensions (e.g. ``level``) are kept. numpy, lazily opened or dask-backed.
    names : sequence of str
        The variables to sample (each along ``latitude`` and ``longitude``).
    time : numpy.ndarray
        Times of the points (datetime64, NaT where unknown); used when the grid has a ``time`` dimension.
    latitude : numpy.ndarray
        Latitudes of the points (degrees north, NaN where unknown).
    longitude : numpy.ndarray
        Longitudes of the points (degrees east, any convention, NaN where unknown).
    method : {"linear", "nearest"}, optional
        Linear interpolation in time, latitude and longitude, or the nearest grid value.
    time_tolerance : numpy.timedelta64 or None, optional
        How far outside the time record a point may lie (it is clamped to the first or last step), and with
        ``"nearest"`` the largest offset to the chosen step (:func:`nearest_step`: ties take the earlier step).
    label : str, optional
        The source's name in warnings.
    reasons : dict, optional
        Filled with the number of points that got NaN for each reason: ``no_position``, ``outside_coverage``,
        ``outside_time``.

    Returns
    -------
    dict of str to xarray.DataArray
        One array per name, dimension ``imagette`` first (then the source's other dimensions), the source's
        attributes kept, NaN where a point is outside the coverage. Lazy when the source is dask-backed.

    Raises
    ------
    ValueError
        When ``method`` is not one of ``"linear"``, ``"nearest"``.

    Warns
    -----
    CollocationWarning
        With the number of points outside the time range, without position, or outside the coverage.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> grid = xr.Dataset({"t": (("latitude", "longitude"), [[0.0, 10.0], [20.0, 30.0]])},
    ...                   coords={"latitude": [10.0, 0.0], "longitude": [0.0, 1.0]})
    >>> nat = np.array(["NaT"], dtype="datetime64[ns]")
    >>> float(sample_grid(grid, ["t"], nat, np.array([5.0]), np.array([0.5]))["t"][0])
    15.0
    """
    if method not in METHODS:
        raise InvalidArgumentError(f"method must be 'linear' or 'nearest', found {method!r}.")
    lat = np.asarray(latitude, dtype=float)
    n = lat.size
    grid = source[list(names)].reset_coords(drop=True)
    grid, lon_target, lon_in = _longitude_axis(grid, longitude)
    grid = _ascending(grid, S.LATITUDE)
    lats = np.asarray(grid.indexes[S.LATITUDE], dtype=float)
    lat_in = np.isfinite(lat) & (lat >= lats.min()) & (lat <= lats.max())
    targets = {S.LATITUDE: np.where(lat_in, lat, lats[0]), S.LONGITUDE: lon_target}
    has_pos = np.isfinite(lat) & np.isfinite(np.asarray(longitude, dtype=float))
    valid = lat_in & lon_in
    t_in = np.ones(n, dtype=bool)
    if S.TIME in grid.dims:
        grid = _ascending(grid, S.TIME)
        has_pos &= ~np.isnat(np.asarray(time).astype("datetime64[ns]"))
        targets[S.TIME], t_in = time_targets(np.asarray(grid.indexes[S.TIME]), time, time_tolerance)
    single = [dim for dim in targets if grid.sizes[dim] == 1]  # one step: nothing to interpolate along
    grid = grid.isel({dim: 0 for dim in single}, drop=True)
    if method == "linear" and S.TIME in targets and S.TIME not in single:
        # time as float ns since the first step, exactly as interp converts it, but once rather than in every call
        origin = grid.indexes[S.TIME][0].to_datetime64()
        grid = grid.assign_coords({S.TIME: (np.asarray(grid.indexes[S.TIME]) - origin) / np.timedelta64(1, "ns")})
        targets[S.TIME] = (targets[S.TIME] - origin) / np.timedelta64(1, "ns")
    indexers = {dim: xr.DataArray(t, dims=(S.IMAGETTE,)) for dim, t in targets.items() if dim not in single}
    if method == "nearest" or not indexers:
        positions = {dim: grid.indexes[dim].get_indexer(np.asarray(t.values), method="nearest")
                     for dim, t in indexers.items() if dim != S.TIME}  # what sel(method="nearest") does
        if S.TIME in indexers:  # the joins' one time rule (ties to the earlier step)
            positions[S.TIME], within = nearest_step(np.asarray(grid.indexes[S.TIME]), time, time_tolerance)
            if time_tolerance is not None:
                t_in &= within
        sampled = (grid.isel({dim: xr.DataArray(i, dims=(S.IMAGETTE,)) for dim, i in positions.items()})
                   if positions else grid.expand_dims({S.IMAGETTE: n}))
    elif _is_lazy(grid):
        sampled = _interp_lazy(grid, {dim: t for dim, t in targets.items() if dim not in single})
    else:
        sampled = grid.interp(indexers, method="linear", assume_sorted=True)
    valid &= t_in
    if S.TIME in targets:
        warn_count(int((has_pos & lat_in & lon_in & ~t_in).sum()), n, "are outside the time range (or time_tolerance)",
                   label, reasons=reasons, key="outside_time")
    warn_count(int((~has_pos).sum()), n, "have no position or time", label, reasons=reasons, key="no_position")
    warn_count(int((has_pos & ~(lat_in & lon_in)).sum()), n, "are outside the latitude/longitude coverage", label,
               reasons=reasons, key="outside_coverage")
    mask = xr.DataArray(valid, dims=(S.IMAGETTE,))
    out = {}
    for name in names:
        value = sampled[name].reset_coords(drop=True)
        if value.dtype.kind in "iub":
            value = value.astype(np.float64)
        if not valid.all():
            value = value.where(mask)
        if value.dims[0] != S.IMAGETTE:
            value = value.transpose(S.IMAGETTE, ...)
        out[name] = value.assign_attrs(source[name].attrs)
    return out
