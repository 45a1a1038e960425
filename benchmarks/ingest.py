"""SAFE -> quicklook store: imagettes/s with 1 and 2 processes, and where the time goes.

Generates WV SLC products with tests/_safe_factory.py (full-size imagettes by default: 4900 x 5650 complex int16,
~111 MB each, as WV1), then times ``safe_to_imagettes(...).to_zarr(...)`` under dask's process scheduler with 1
and 2 workers, and one imagette stage by stage (TIFF read, calibration, multilook, stretch, Zarr write).

    .venv/bin/python benchmarks/ingest.py [--imagettes 6] [--lines 4900] [--samples 5650]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import dask
import xarray as xr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests._safe_factory import make_wv_safe  # noqa: E402
from xwvnet.io.slc import calibrate, scan_safe  # noqa: E402
from xwvnet.preprocess import multilook, multilook_factor, safe_to_imagettes, stretch  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--imagettes", type=int, default=6)
    parser.add_argument("--lines", type=int, default=4900)
    parser.add_argument("--samples", type=int, default=5650)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        safe, _ = make_wv_safe(Path(tmp), sizes=[(args.lines, args.samples)] * args.imagettes,
                               swaths=["wv1"] * args.imagettes, log_std=0.25)
        print(f"generated {args.imagettes} imagettes of {args.lines} x {args.samples} in "
              f"{time.perf_counter() - t0:.1f} s (cpu count {os.cpu_count()})")
        rates = {}
        for workers in (1, 2):
            out = Path(tmp) / f"store{workers}.zarr"
            ds = safe_to_imagettes(safe)
            t = time.perf_counter()
            with dask.config.set(scheduler="processes", num_workers=workers):
                ds.to_zarr(out, mode="w", consolidated=False)
            rates[workers] = args.imagettes / (time.perf_counter() - t)
            print(f"{workers} process(es): {rates[workers]:.2f} imagettes/s")
        print(f"speed-up 2 vs 1 processes: {rates[2] / rates[1]:.2f}x")

        item = scan_safe(safe, [1])[0][0]
        stages = {}
        t = time.perf_counter()
        dn = item.read_dn()
        stages["TIFF read"] = time.perf_counter() - t
        t = time.perf_counter()
        s0 = calibrate(dn, item)
        stages["calibration"] = time.perf_counter() - t
        t = time.perf_counter()
        ml = multilook(s0, multilook_factor(item.azimuth_spacing, item.ground_spacing))
        stages["multilook"] = time.perf_counter() - t
        t = time.perf_counter()
        q = stretch(ml)
        stages["stretch"] = time.perf_counter() - t
        t = time.perf_counter()
        xr.Dataset({"quicklook": (("imagette", "line", "sample"), q[None])}).to_zarr(
            Path(tmp) / "one.zarr", mode="w", consolidated=False)
        stages["Zarr write"] = time.perf_counter() - t
        total = sum(stages.values())
        print(f"one imagette, {total:.2f} s in all -> {ml.shape} quicklook, mean {q.mean():.1f}, std {q.std():.1f}")
        for name, seconds in stages.items():
            print(f"  {name:12s} {seconds:6.3f} s  {100 * seconds / total:5.1f} %")
        del dn, s0


if __name__ == "__main__":
    main()
