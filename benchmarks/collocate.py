"""Collocation speed: grids against a per-imagette scipy loop and a plain ``interp``; points against a dense matrix.

Run: ``python benchmarks/collocate.py [--quick]``. The grid part uses the real ERA5 UK GRIB when cfgrib and the
sample data are there, else a synthetic hourly grid of the same shape. The point part matches imagettes with a
synthetic global track (one point a minute) by xwvnet's haversine BallTree and by the dense distance matrix (in
blocks of imagettes) xwvnet used before. The on-disk part joins 100k imagettes with a month of hourly ERA5-like
t2m (packed int16 netCDF, 0.25 degree, 744 x 161 x 241) written to a temporary folder, given as one file, as a
folder of weekly files (``open_mfdataset``), and loaded in memory. All ratios are measured side by side in one run.
"""

from __future__ import annotations

import argparse
import functools
import tempfile
import time
import warnings
from pathlib import Path

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


def on_disk(n: int, repeat: int) -> None:
    """``n`` imagettes against a month of hourly ERA5-like t2m on disk: one file, a folder of weekly files, memory."""
    rng = np.random.default_rng(5)
    time_ = np.datetime64("2023-01-01", "ns") + np.arange(744) * np.timedelta64(1, "h")
    lat, lon = np.arange(70.0, 29.9, -0.25), np.arange(300.0, 360.1, 0.25)
    t2m = (280 + 10 * np.sin(np.deg2rad(lat))[None, :, None] * np.cos(np.deg2rad(lon))[None, None, :]
           + rng.standard_normal((744, lat.size, lon.size))).astype(np.float32)
    src = xr.Dataset({"t2m": (("time", "latitude", "longitude"), t2m, {"units": "K"})},
                     coords={"time": time_, "latitude": lat, "longitude": lon})
    enc = {"t2m": {"dtype": "int16", "scale_factor": 0.002, "add_offset": 280.0, "_FillValue": np.int16(-32767)}}
    ds = _imagettes(n)
    ds = ds.assign_coords({S.TIME: (S.IMAGETTE, np.datetime64("2023-01-01T00", "ns") + (
        ds[S.TIME].values - np.datetime64("2019-03-01T00", "ns"))),
        S.LATITUDE: (S.IMAGETTE, rng.uniform(30.1, 69.9, n)), S.LONGITUDE: (S.IMAGETTE, rng.uniform(-59.9, -0.1, n))})
    with tempfile.TemporaryDirectory() as tmp:
        one = Path(tmp) / "era5_t2m_2023-01.nc"
        src.to_netcdf(one, encoding=enc)
        weekly = Path(tmp) / "weekly"
        weekly.mkdir()
        for w, start in enumerate(range(0, 744, 168)):
            src.isel(time=slice(start, start + 168)).to_netcdf(weekly / f"era5_t2m_2023-01_w{w}.nc", encoding=enc)
        with xr.open_dataset(one) as f:
            memory = f.load()
        t_mem, ref = _best(lambda: collocate(ds, memory, prefix="era5").era5_t2m.values, repeat)
        t_one, a = _best(lambda: collocate(ds, one, prefix="era5").era5_t2m.values, repeat)
        t_many, b = _best(lambda: collocate(ds, weekly, prefix="era5").era5_t2m.values, repeat)
        idx = {k: xr.DataArray(ds[k].values % 360 if k == S.LONGITUDE else ds[k].values, dims="p")
               for k in (S.TIME, S.LATITUDE, S.LONGITUDE)}
        t_interp, _ = _best(lambda: memory.t2m.interp(idx).values, repeat)
        diff = max(np.nanmax(np.abs(a - ref)), np.nanmax(np.abs(b - ref)))
    print(f"\n{n} imagettes x a month of hourly ERA5 on disk (744 x {lat.size} x {lon.size}, packed int16); "
          "ratio = time / in-memory xwvnet")
    print(f"{'in memory s':>11} | {'one file s':>10} {'ratio':>6} | {'4+1 weekly files s':>18} {'ratio':>6} | "
          f"{'xr.interp (memory) s':>20} {'ratio':>6} | max |diff| K")
    print(f"{t_mem:>11.3f} | {t_one:>10.3f} {t_one / t_mem:>6.2f} | {t_many:>18.3f} {t_many / t_mem:>6.2f} | "
          f"{t_interp:>20.3f} {t_interp / t_mem:>6.2f} | {diff:.1e}")


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
    on_disk(20_000 if args.quick else 100_000, repeat)


if __name__ == "__main__":
    main()
