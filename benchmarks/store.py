"""What the writer lease and the chunk records cost: the store before and after issue 11, side by side in one run.

Run: ``python benchmarks/store.py [--n 2000] [--repeat 3]``. The *before* is ``xwvnet/io/store.py`` as it was at
commit ``c24a58d`` (read with ``git show``, so it needs the git history; without it only *after* is timed). Both
write the same in-memory synthetic imagettes (64 x 64) to a fresh store and read them back; the ratio is
after / before (1.0: no cost).

- ``write``: one ``to_store`` of every imagette (default chunking: few large chunks).
- ``write, 64/chunk``: the same with 64 imagettes per chunk (many chunks and batches: the per-chunk cost).
- ``20 appends``: twenty ``to_store`` calls of n/20 imagettes each (the per-call cost: lease, settle, compaction).
- ``read``: ``open_store(path).load()`` of the 64/chunk store (the checksum of every chunk read).
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import xarray as xr

from xwvnet import synthetic
from xwvnet.io import store as after

REPO = Path(__file__).resolve().parent.parent
BASELINE = "c24a58d"  # the last commit before issue 11


def _baseline() -> ModuleType | None:
    """The store module of the baseline commit, imported under another name (None without git history)."""
    try:
        source = subprocess.run(["git", "-C", str(REPO), "show", f"{BASELINE}:xwvnet/io/store.py"],
                                capture_output=True, check=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    spec = importlib.util.spec_from_loader("xwvnet.io._store_before", loader=None)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "xwvnet.io"
    sys.modules[spec.name] = module  # dataclasses look their module up there
    exec(compile(source, f"{BASELINE}:xwvnet/io/store.py", "exec"), module.__dict__)
    return module


def _best(fn: Callable[[Path], object], repeat: int, prepare: Callable[[Path], object] | None = None) -> float:
    """Best wall time of ``repeat`` calls of ``fn(path)``, each on a fresh path (after ``prepare(path)``)."""
    times = []
    for _ in range(repeat):
        folder = Path(tempfile.mkdtemp(prefix="xwvnet-bench-"))
        path = folder / "s.zarr"
        try:
            if prepare is not None:
                prepare(path)
            start = time.perf_counter()
            fn(path)
            times.append(time.perf_counter() - start)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return min(times)


def _cases(module: ModuleType, ds: xr.Dataset, n: int) -> dict[str, tuple[Callable, Callable | None]]:
    step = max(1, n // 20)
    return {
        "write": (lambda p: module.to_store(ds, p), None),
        "write, 64/chunk": (lambda p: module.to_store(ds, p, chunk=64), None),
        "20 appends": (lambda p: [module.to_store(ds.isel(imagette=slice(i, i + step)), p, chunk=64)
                                  for i in range(0, n, step)], None),
        "read": (lambda p: module.open_store(p).load(), lambda p: module.to_store(ds, p, chunk=64)),
    }


def main() -> None:
    """Print the seconds of each case before and after, and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=2000, help="imagettes")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case (the best is kept)")
    args = parser.parse_args()
    ds = synthetic.imagettes(args.n, seed=0, size=(64, 64)).load()
    before = _baseline()
    if before is None:
        print(f"(no git history: the baseline {BASELINE} cannot be read; timing 'after' only)")
    print(f"{args.n} synthetic imagettes of 64 x 64, best of {args.repeat}")
    print(f"{'case':>16} {'before s':>9} {'after s':>9} {'after/before':>13}")
    new = _cases(after, ds, args.n)
    old = _cases(before, ds, args.n) if before is not None else {}
    for name, (fn, prepare) in new.items():
        t_after = _best(fn, args.repeat, prepare)
        if name in old:
            t_before = _best(old[name][0], args.repeat, old[name][1])
            print(f"{name:>16} {t_before:>9.3f} {t_after:>9.3f} {t_after / t_before:>13.2f}")
        else:
            print(f"{name:>16} {'':>9} {t_after:>9.3f}")


if __name__ == "__main__":
    main()
