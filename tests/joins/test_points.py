"""Nearest points on the sphere (xwvnet.joins.points): the BallTree against a brute-force search."""

from __future__ import annotations

import doctest
import importlib

import numpy as np
import pytest

from tests._numpydoc import check_numpydoc
from xwvnet.joins.points import haversine_km


def brute_force(lat, lon, t, p_lat, p_lon, p_time, tolerance):
    """One imagette at a time: the nearest admissible point, ties to the nearest in time then the first."""
    best = np.full(lat.size, -1)
    for i in range(lat.size):
        d = haversine_km(lat[i], lon[i], p_lat, p_lon)
        dt = np.abs(p_time - t[i])
        ok = dt <= tolerance
        if ok.any():
            d = np.where(ok, d, np.inf)
            ties = np.flatnonzero(d == d.min())
            best[i] = ties[np.argmin(dt[ties])]
    return best


@pytest.mark.parametrize("hours", [1, 6, 48])
def test_balltree_matches_brute_force_within_the_time_tolerance(hours):
    from xwvnet.joins.points import nearest_points

    rng = np.random.default_rng(hours)
    m, n = 400, 150
    p_lat, p_lon = rng.uniform(-70, 70, m), rng.uniform(-180, 180, m)
    p_lat[10:20], p_lon[10:20] = 12.5, 45.0  # one place visited ten times: ties broken by time
    p_time = np.datetime64("2023-02-01", "ns") + rng.integers(0, 72 * 60, m).astype("timedelta64[m]")
    lat, lon = rng.uniform(-70, 70, n), rng.uniform(-180, 180, n)
    lat[:5], lon[:5] = 12.5, 45.0
    t = np.datetime64("2023-02-01", "ns") + rng.integers(0, 72 * 60, n).astype("timedelta64[m]")
    tolerance = np.timedelta64(hours, "h")
    index, km = nearest_points(lat, lon, p_lat, p_lon, time=t, point_time=p_time, time_tolerance=tolerance)
    expected = brute_force(lat, lon, t, p_lat, p_lon, p_time, tolerance)
    np.testing.assert_array_equal(index, expected)
    found = index >= 0
    np.testing.assert_allclose(km[found], haversine_km(lat[found], lon[found], p_lat[index[found]],
                                                       p_lon[index[found]]), rtol=1e-12)
    assert np.isnan(km[~found]).all()


def test_balltree_without_times_and_with_missing_positions():
    from xwvnet.joins.points import nearest_points

    index, km = nearest_points(np.array([0.0, np.nan, 89.0]), np.array([179.5, 0.0, 0.0]),
                               np.array([0.0, np.nan, 0.0, 88.0]), np.array([-179.5, 0.0, 170.0, 180.0]))
    assert index.tolist() == [0, -1, 3]
    assert km[0] == pytest.approx(haversine_km(0.0, 179.5, 0.0, -179.5)) and km[0] < 112
    with pytest.raises(ValueError, match="point_time needs the imagette times"):
        nearest_points(np.zeros(1), np.zeros(1), np.zeros(1), np.zeros(1), point_time=np.zeros(1, "datetime64[ns]"))


def test_join_modules_have_numpydoc_docstrings_and_their_examples_run():
    check_numpydoc("xwvnet.joins.points")
    module = importlib.import_module("xwvnet.joins.points")
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, result
