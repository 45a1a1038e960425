"""SAFE -> quicklook store: imagettes/s with 1 and 2 processes, against the floor pipeline, and where time goes.

Generates WV SLC products with tests/_safe_factory.py (full-size WV1 imagettes by default: 4923 x 5681 complex
int16, ~112 MB each, the size of a real WV1 annotation), then in the same run:

* the floor pipeline, per imagette in one process: read the measurement TIFF (tifffile), ``|DN|^2`` in float32,
  10 x 10 block mean, 1/99 percentile stretch to uint8;
* ``safe_to_imagettes`` computed in one process (threads off): SAFE -> sigma0 -> quicklook, and its ratio to the
  floor;
* ``xwvnet.ingest`` of ``--copies`` hard-linked copies of the product into an icechunk store: one process and
  one thread, one process with dask's threads, and a local cluster of 2 processes (``client=local_client(2)``);
* the peak memory added by one imagette (tracemalloc, numpy allocations) on the quicklook path;
* one imagette stage by stage.

    .venv/bin/python benchmarks/ingest.py [--imagettes 4] [--copies 10] [--lines 4923] [--samples 5681]

Tests never assert on wall time; figures depend on the machine (and on other work sharing it).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import dask
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests._safe_factory import make_wv_safe  # noqa: E402
from xwvnet.distributed import local_client  # noqa: E402
from xwvnet.ingestion import ingest  # noqa: E402
from xwvnet.io.safe import multilook_sigma0, safe_to_imagettes, scan_safe  # noqa: E402
from xwvnet.radiometry import DEFAULT_LOOKS, multilook, stretch  # noqa: E402


def floor(tiffs: list[Path]) -> float:
    """Seconds per imagette of the floor pipeline (TIFF read, |DN|^2 float32, 10 x 10 mean, stretch)."""
    import tifffile

    t = time.perf_counter()
    for path in tiffs:
        dn = tifffile.imread(path)
        power = np.square(dn.real, dtype=np.float32) + np.square(dn.imag, dtype=np.float32)
        stretch(multilook(power, 10))
    return (time.perf_counter() - t) / len(tiffs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--imagettes", type=int, default=4)
    parser.add_argument("--lines", type=int, default=4923)
    parser.add_argument("--samples", type=int, default=5681)
    parser.add_argument("--repeats", type=int, default=2, help="best of this many passes for the one-process ratio")
    parser.add_argument("--copies", type=int, default=10,
                        help="hard-linked copies of the product (other names) for the ingest scale figures")
    args = parser.parse_args()
    n = args.imagettes
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        safe, _ = make_wv_safe(Path(tmp), sizes=[(args.lines, args.samples)] * n, swaths=["wv1"] * n, log_std=0.25)
        print(f"generated {n} imagettes of {args.lines} x {args.samples} in {time.perf_counter() - t0:.1f} s "
              f"(cpu count {os.cpu_count()})")
        tiffs = sorted((safe / "measurement").glob("*.tiff"))
        floor(tiffs[:1])  # warm the page cache and imports
        best_floor, best_ours = np.inf, np.inf
        for _ in range(args.repeats):
            best_floor = min(best_floor, floor(tiffs))
            ds = safe_to_imagettes(safe)
            t = time.perf_counter()
            with dask.config.set(scheduler="synchronous"):
                ds.quicklook.values  # noqa: B018 (compute)
            best_ours = min(best_ours, (time.perf_counter() - t) / n)
        print(f"floor pipeline:         {1 / best_floor:.2f} imagettes/s ({best_floor:.3f} s each)")
        print(f"SAFE -> quicklook:      {1 / best_ours:.2f} imagettes/s ({best_ours:.3f} s each), "
              f"{best_floor / best_ours:.2f}x the floor's speed")

        products = [safe]
        for k in range(1, args.copies):  # same files, other product names (so other ids): many imagettes, cheaply
            copy = Path(tmp) / "copies" / safe.name.replace("_ABCD", f"_{k:04X}")
            for f in safe.rglob("*"):
                if f.is_file():
                    (copy / f.relative_to(safe)).parent.mkdir(parents=True, exist_ok=True)
                    os.link(f, copy / f.relative_to(safe))
            products.append(copy)
        rates = {}
        runs = {"1 process, 1 thread": ("synchronous", None), "1 process, dask threads": (None, None),
                "2 processes": (None, 2)}
        for label, (scheduler, workers) in runs.items():
            t = time.perf_counter()  # a local cluster's start-up counts: it is what a user pays
            with dask.config.set(scheduler=scheduler) if scheduler else dask.config.set({}), \
                    (local_client(workers, threads=1) if workers else contextlib.nullcontext()) as client:
                report = ingest(products, Path(tmp) / f"store-{len(rates)}", client=client)
            rates[label] = report.added / (time.perf_counter() - t)
            print(f"xwvnet ingest, {label}: {rates[label]:.2f} imagettes/s ({report.added} imagettes)")
        print(f"2 processes vs 1 process, 1 thread: {rates['2 processes'] / rates['1 process, 1 thread']:.2f}x")

        item = scan_safe(safe, [1])[0][0]
        factor = DEFAULT_LOOKS
        tracemalloc.start()
        ml, bound = multilook_sigma0(item, factor)
        stretch(ml)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"peak memory per imagette (quicklook path): {peak / 2**20:.1f} MiB "
              f"(measurement {item.lines * item.samples * 4 / 2**20:.0f} MiB); error bound {bound:.2e}")
        tracemalloc.start()
        item.sigma0()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"peak memory per imagette (full-resolution sigma0): {peak / 2**20:.1f} MiB")

        stages = {}
        t = time.perf_counter()
        for _ in item.power_blocks():
            pass
        stages["read + |DN|^2"] = time.perf_counter() - t
        t = time.perf_counter()
        ml, _ = multilook_sigma0(item, factor)
        stages["read, calibrate at multilook"] = time.perf_counter() - t
        t = time.perf_counter()
        q = stretch(ml)
        stages["stretch"] = time.perf_counter() - t
        t = time.perf_counter()
        exact = multilook(item.sigma0(), factor)
        stages["(exact full-res sigma0 + multilook)"] = time.perf_counter() - t
        print(f"one imagette -> {ml.shape} quicklook, mean {q.mean():.1f}, std {q.std():.1f}, max relative error "
              f"vs full-resolution calibration {np.max(np.abs(ml / exact - 1)):.1e}")
        for name, seconds in stages.items():
            print(f"  {name:36s} {seconds:6.3f} s")


if __name__ == "__main__":
    main()
