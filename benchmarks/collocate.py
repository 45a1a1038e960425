"""Collocation speed: xwvnet's vectorised join against a per-imagette scipy loop and xarray's ``interp``.

Run: ``python benchmarks/collocate.py [--quick]``. Uses the real ERA5 UK GRIB when cfgrib and the sample data are
there, else a synthetic hourly grid of the same shape. All ratios are measured side by side in one run.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import xarray as xr
from scipy.interpolate import RegularGridInterpolator

from xwvnet import schema as S
from xwvnet.joins.collocation import collocate, normalise_source


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


if __name__ == "__main__":
    main()
