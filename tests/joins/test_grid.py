"""Grids and the one time rule (xwvnet.joins.grid): the nearest step within a tolerance, for grids and stations."""

from __future__ import annotations

import doctest
import importlib

import numpy as np
import pytest
import xarray as xr

from tests._numpydoc import check_numpydoc
from xwvnet.joins.collocation import CollocationWarning


def test_nearest_step_exact_within_outside_ties_and_nat():
    from xwvnet.joins.grid import nearest_step

    steps = np.datetime64("2020-01-01T00", "ns") + np.array([6, 0, 12], dtype="timedelta64[h]")  # unsorted on purpose
    t = np.datetime64("2020-01-01T00", "ns") + np.array(
        [360, 400, 240, 180, 540, 900, 1000, -120], dtype="timedelta64[m]").astype("timedelta64[ns]")
    t = np.append(t, np.datetime64("NaT", "ns"))
    index, within = nearest_step(steps, t, np.timedelta64(2, "h"))
    # 06:00 exact; 06:40 -> 06:00; 04:00 -> 06:00, exactly 2 h (the tolerance: within); 03:00 is a tie of 00:00 and
    # 06:00 (the earlier), 3 h from both (outside); 09:00 tie of 06:00/12:00 -> 06:00, outside; 15:00 -> 12:00,
    # 3 h after the last (outside); 16:40 too; 22:00 the day before -> 00:00, exactly 2 h; NaT: never
    np.testing.assert_array_equal(steps[index[:8]], steps[[0, 0, 0, 1, 0, 2, 2, 1]])
    assert within.tolist() == [True, True, True, False, False, False, False, True, False]
    assert index[-1] == 0
    _, any_time = nearest_step(steps, t)
    assert any_time.tolist() == [True] * 8 + [False]
    # independent: brute force over every step, ties to the earlier step
    rng = np.random.default_rng(0)
    many = np.datetime64("2020-01-01", "ns") + rng.integers(-10, 60, 500).astype("timedelta64[h]")
    many = many + (rng.integers(0, 4, 500) * 30).astype("timedelta64[m]")
    gaps = np.abs(many[:, None] - np.sort(steps)[None, :]).astype(np.int64)
    brute = np.sort(steps)[gaps.argmin(1)]  # argmin takes the first (earlier) of equal gaps
    index, within = nearest_step(steps, many, np.timedelta64(90, "m"))
    np.testing.assert_array_equal(steps[index], brute)
    np.testing.assert_array_equal(within, gaps.min(1) <= np.timedelta64(90, "m").astype("timedelta64[ns]").astype(int))


@pytest.mark.parametrize("kind", ["grid", "station output"])
def test_both_joins_take_the_nearest_step_within_tolerance_the_same_way(kind):
    from xwvnet.joins.grid import sample_grid
    from xwvnet.joins.points import sample_points

    steps = np.datetime64("2020-01-01T00", "ns") + np.array([0, 6, 12], dtype="timedelta64[h]")
    values = np.array([1.0, 2.0, 3.0])  # the value tells which step was taken
    # exact, near, at the tolerance, a tie, then 08:59 and 09:01 (each 2 h 59 min from its nearest step)
    offsets = np.array([360, 400, 240, 180, 539, 541], dtype="timedelta64[m]")
    t = (steps[0] + offsets).astype("datetime64[ns]")
    lat, lon = np.zeros(t.size), np.zeros(t.size)
    reasons: dict[str, int] = {}
    with pytest.warns(CollocationWarning, match="outside the time range"):
        if kind == "grid":
            grid = xr.Dataset({"v": (("time", "latitude", "longitude"), np.broadcast_to(values[:, None, None],
                                                                                      (3, 2, 2)).copy())},
                              coords={"time": steps, "latitude": [-1.0, 1.0], "longitude": [-1.0, 1.0]})
            out = sample_grid(grid, ["v"], t, lat, lon, method="nearest", time_tolerance=np.timedelta64(2, "h"),
                              reasons=reasons)["v"].values
        else:
            stations = xr.Dataset({"v": (("time", "station"), values[:, None])},
                                  coords={"time": steps, "latitude": ("station", [0.0]),
                                          "longitude": ("station", [0.0])})
            out = sample_points(stations, ["v"], t, lat, lon, method="nearest", max_distance_km=10,
                                time_tolerance=np.timedelta64(2, "h"), reasons=reasons)["v"].values
    # 06:00 -> 2; 06:40 -> 2; 04:00 -> 2 (exactly 2 h: within); 03:00 a tie 3 h from both: NaN;
    # 08:59 -> 2 (2 h 59 min away: outside); 09:01 -> 3 (12:00, 2 h 59 min away: outside)
    np.testing.assert_array_equal(out, [2.0, 2.0, 2.0, np.nan, np.nan, np.nan])
    assert reasons["outside_time"] == 3
    # a tie within the tolerance takes the earlier step in both joins
    tie = np.array(["2020-01-01T03"], dtype="datetime64[ns]")
    if kind == "grid":
        got = sample_grid(grid, ["v"], tie, lat[:1], lon[:1], method="nearest",
                          time_tolerance=np.timedelta64(3, "h"))["v"].values
    else:
        got = sample_points(stations, ["v"], tie, lat[:1], lon[:1], method="nearest", max_distance_km=10,
                            time_tolerance=np.timedelta64(3, "h"))["v"].values
    assert got.tolist() == [1.0]


def test_join_modules_have_numpydoc_docstrings_and_their_examples_run():
    check_numpydoc("xwvnet.joins.grid")
    module = importlib.import_module("xwvnet.joins.grid")
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, result
