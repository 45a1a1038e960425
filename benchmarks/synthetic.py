"""How fast synthetic imagettes are created (lazy) and rendered, side by side in one run.

Run: ``python benchmarks/synthetic.py [--quick]``. Prints creation time per size of Dataset (should stay ~linear in n
for the metadata and never render a pixel) and render time per imagette against a bare FFT pair of the same shape.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import dask
import numpy as np

from xwvnet import synthetic


def _best(fn: Callable[[], object], repeat: int) -> float:
    """Best wall time of ``repeat`` calls of ``fn``, in seconds (the least disturbed by other work)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    """Print creation and rendering figures; ``--quick`` for a small run."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small run")
    args = parser.parse_args()
    sizes = [1_000, 100_000] if args.quick else [1_000, 100_000, 1_000_000]
    shapes = [(64, 64), (128, 128), (256, 256)]
    batch = 16 if args.quick else 64
    repeat = 2 if args.quick else 3

    print("creation (lazy, no pixel rendered)")
    print(f"{'n':>10} {'seconds':>9} {'us/imagette':>12} {'chunks':>8}")
    for n in sizes:
        seconds = _best(lambda n=n: synthetic.imagettes(n, seed=0), repeat)
        chunks = synthetic.imagettes(n, seed=0).quicklook.data.npartitions
        print(f"{n:>10} {seconds:>9.3f} {seconds / n * 1e6:>12.2f} {chunks:>8}")

    print("\nrendering (single-threaded dask), per imagette")
    print(f"{'shape':>10} {'ms/imagette':>12} {'fft pair ms':>12} {'ratio':>7} {'imagettes/s':>12}")
    with dask.config.set(scheduler="synchronous"):
        for shape in shapes:
            ds = synthetic.imagettes(batch, seed=1, size=shape, chunks=batch)
            per = _best(lambda ds=ds: ds.quicklook.values, repeat) / batch
            image = np.random.default_rng(0).random(shape, dtype=np.float32)
            fft = _best(lambda a=image: [np.fft.irfft2(np.fft.rfft2(a), s=a.shape) for _ in range(50)], repeat)
            fft /= 50
            print(f"{str(shape):>10} {per * 1e3:>12.2f} {fft * 1e3:>12.3f} {per / fft:>7.1f} {1 / per:>12.0f}")


if __name__ == "__main__":
    main()
