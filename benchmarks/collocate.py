"""Collocation speed: grids against a per-imagette scipy loop and a plain ``interp``; points against a dense matrix.

Run: ``python benchmarks/collocate.py [--quick]``. The grid part uses the real ERA5 UK GRIB when cfgrib and the
sample data are there, else a synthetic hourly grid of the same shape. The point part matches imagettes with a
synthetic global track (one point a minute) by xwvnet's haversine BallTree and by the dense distance matrix (in
blocks of imagettes) xwvnet used before. All ratios are measured side by side in one run.
"""

from __future__ import annotations

import argparse
import functools
import time
import warnings

import numpy as np
import xarray as xr
from scipy.interpolate import RegularGridInterpolator  # noqa: E402

from xwvnet import schema as S  # noqa: E402
from xwvnet.io.sources import normalise_source  # noqa: E402
from xwvnet.joins.collocation import collocate  # noqa: E402
from xwvnet.joins.points import haversine_km, nearest_points  # noqa: E402


def _grid() -> tuple[xr.Dataset, str]:
    from xwvnet.datasets import DataUnavailableError, fetch

    try:
        import cfgrib  # noqa: F401

        path = fetch("era5/era5-2mt-2019-03-uk.grib")
        src = normalise_source(xr.open_dataset(path, engine="cfgrib", backend_kwargs={"indexpath": ""})).load()
        return src, "ERA5 UK GRIB (744 x 33 x 49)"
    except (ImportError, DataUnavailableError, FileNotFoundError):
        rng = np.random.default_rng(0)
        time_ = np.datetime64("2019-03-01", "ns") + np.arange(744) * np.timedelta64(1, "h")
        lat, lon = np.arange(58, 49.9, -0.25), np.arange(-10, 2.01, 0.25)
        t2m = 280 + rng.standard_normal((744, lat.size, lon.size)).astype(np.float32)
        return xr.Dataset({"t2m": (("time", "latitude", "longitude"), t2m)},
                          coords={"time": time_, "latitude": lat, "longitude": lon}), "synthetic grid (744 x 33 x 49)"


def _imagettes(n: int, seed: int = 0) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    t = np.datetime64("2019-03-01T01", "ns") + rng.integers(0, 29 * 86400, n).astype("timedelta64[s]")
    return xr.Dataset(coords={
        S.IMAGETTE: np.array([f"i{i}" for i in range(n)], dtype=object),
        S.TIME: (S.IMAGETTE, t.astype("datetime64[ns]")),
        S.LATITUDE: (S.IMAGETTE, rng.uniform(50.1, 57.9, n)),
        S.LONGITUDE: (S.IMAGETTE, rng.uniform(-9.9, 1.9, n)),
    })


def _best(fn, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), result


def _track(m: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A global synthetic track: ``m`` points one minute apart, sweeping latitudes and all longitudes."""
    rng = np.random.default_rng(seed)
    minutes = np.arange(m)
    lat = 80 * np.sin(2 * np.pi * minutes / 100.0) + rng.normal(0, 0.01, m)
    lon = np.mod(minutes * 0.25 + rng.normal(0, 0.01, m), 360.0) - 180.0
    time_ = np.datetime64("2023-02-01", "ns") + minutes.astype("timedelta64[m]")
    return lat, lon, time_.astype("datetime64[ns]")


def _dense(lat, lon, time_, p_lat, p_lon, p_time, tolerance, block: int = 512) -> np.ndarray:
    """The matcher xwvnet had before: a dense (block x m) haversine matrix, time mask, argmin (same speed per
    pair as its blocks of 2048, less memory)."""
    best = np.full(lat.size, -1, dtype=np.int64)
    for start in range(0, lat.size, block):
        sl = slice(start, start + block)
        d = haversine_km(lat[sl, None], lon[sl, None], p_lat[None, :], p_lon[None, :])
        dt = np.abs(p_time[None, :] - time_[sl, None])
        d = np.where(dt > tolerance, np.inf, d)
        j = np.argmin(d + dt.astype(np.int64) / 1e18, axis=1)
        best[sl] = np.where(np.isfinite(d[np.arange(j.size), j]), j, -1)
    return best


def points(sizes: list[int], repeat: int) -> None:
    """BallTree matching against the dense matrix, same imagettes and track, same answers checked."""
    tolerance = np.timedelta64(3, "h")
    print(f"\n{'points':>9} | {'imagettes':>9} | {'BallTree s':>10} | {'dense s':>9} {'ratio':>7} | same match")
    for m in sizes:
        p_lat, p_lon, p_time = _track(m)
        rng = np.random.default_rng(2)
        for n in (1000, 10000):
            lat, lon = rng.uniform(-80, 80, n), rng.uniform(-180, 180, n)
            t = p_time[0] + rng.integers(0, m, n).astype("timedelta64[m]").astype("timedelta64[ns]")
            tree = functools.partial(nearest_points, lat, lon, p_lat, p_lon, time=t, point_time=p_time,
                                     time_tolerance=tolerance)
            t_tree, (ours, _) = _best(tree, repeat)
            t_dense, ref = _best(functools.partial(_dense, lat, lon, t, p_lat, p_lon, p_time, tolerance), 1)
            print(f"{m:>9} | {n:>9} | {t_tree:>10.4f} | {t_dense:>9.4f} {t_dense / t_tree:>7.1f} | "
                  f"{np.mean(ours == ref):.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer imagettes and repeats")
    args = parser.parse_args()
    sizes = [100, 1000] if args.quick else [100, 1000, 10000]
    repeat = 2 if args.quick else 3
    src, label = _grid()
    lazy_src = src.chunk({"time": 24})
    grid = src.t2m.sortby("latitude")
    f = RegularGridInterpolator((grid.time.values.astype("int64").astype(float), grid.latitude.values,
                                 grid.longitude.values), grid.values.astype(float))
    print(f"source: {label}; times are the best of {repeat}; ratio = other / xwvnet (higher = xwvnet faster)")
    print(f"{'imagettes':>9} | {'xwvnet s':>9} | {'scipy loop s':>12} {'ratio':>7} | {'xr.interp s':>11} {'ratio':>7} "
          f"| {'dask src s':>10} {'ratio':>7} | max |diff| K")
    warnings.simplefilter("ignore")
    for n in sizes:
        ds = _imagettes(n)
        t_ours, ours = _best(lambda ds=ds: collocate(ds, src, prefix="era5").era5_t2m.values, repeat)
        pts = np.c_[ds.time.values.astype("int64").astype(float), ds.latitude.values, ds.longitude.values]
        loop_n = min(n, 1000)
        t_loop, ref = _best(lambda pts=pts[:loop_n]: np.array([f(p[None])[0] for p in pts]), 1)
        t_loop *= n / loop_n  # extrapolated above 1000 points
        idx = {k: xr.DataArray(ds[k].values, dims="p") for k in (S.TIME, S.LATITUDE, S.LONGITUDE)}
        t_interp, _ = _best(lambda idx=idx: src.t2m.interp(idx).values, repeat)
        t_lazy, lazy = _best(lambda ds=ds: collocate(ds, lazy_src, prefix="era5").era5_t2m.values, repeat)
        diff = max(np.abs(ours[:loop_n] - ref).max(), np.abs(lazy - ours).max())
        print(f"{n:>9} | {t_ours:>9.4f} | {t_loop:>12.4f} {t_loop / t_ours:>7.1f} | {t_interp:>11.4f} "
              f"{t_interp / t_ours:>7.1f} | {t_lazy:>10.4f} {t_lazy / t_ours:>7.1f} | {diff:.2e}")
    points([2_000] if args.quick else [2_000, 20_000], repeat)


if __name__ == "__main__":
    main()
