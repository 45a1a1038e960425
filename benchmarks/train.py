"""Benchmark: SimCLR training throughput of the full loop from a Zarr store against the bare training step.

Measured side by side in one run, same model, batch, image size, optimiser and device:

1. *in memory*: forward + NT-Xent + backward + clip + AdamW on two views already on the device (no reading, no
   augmentation) -- the ceiling;
2. *full loop*: ``xwvnet.train`` on a Zarr store (chunk-aware streaming loader with workers, device-side
   augmentations, the step, logging), timed from its per-step log after warm-up steps.

Images/s counts imagettes (each gives two views). Target ratio full/in-memory >= 0.9 on a GPU, where loading and
augmentation hide behind compute; on a shared 2-core CPU the augmentations compete with the model for the cores.

Precision: bfloat16 on a GPU, float32 on the CPU (``train``'s ``precision="auto"``), the same on both sides.

``--max-seconds S`` checks the time budget instead: ``xwvnet.train`` with ``max_seconds=S`` and every other setting
at its default (unless given here) on 1,024 synthetic imagettes of 256 x 256, as ``benchmarks/ssl_quality.py``
trains. It reports the wall time of the call (from its start, data set-up and outputs included) against the budget,
the steps estimated from the first timed steps and the steps run, and the learning rate of the last step relative
to the peak. The target: a run ends within 5% of ``S`` (570-630 s for 600) with its schedule complete.

Usage: ``python benchmarks/train.py [--quick] [--arch resnet50] [--image-size 160] [--batch-size 256] [--device auto]``,
``python benchmarks/train.py --max-seconds 600 [--bn-imagettes 512]``
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def _store(path: Path, n: int, size: tuple[int, int], chunk: int) -> Path:
    """A Zarr store of ``n`` synthetic quicklooks (16 unique ones tiled, to keep the setup short)."""
    import xarray as xr

    from xwvnet import schema as S
    from xwvnet.io.store import to_store
    from xwvnet.synthetic import imagettes

    unique = min(n, 16)
    base = imagettes(unique, seed=0, size=size, chunks=unique).compute()
    ds = base.isel({S.IMAGETTE: np.arange(n) % unique})
    ds = ds.assign_coords({S.IMAGETTE: np.array([f"bench-{i:07d}" for i in range(n)], dtype=object)})
    ds = xr.Dataset({k: ds[k] for k in (S.QUICKLOOK, S.VALID_LINES, S.VALID_SAMPLES)}, coords=ds.coords)
    to_store(ds.chunk({S.IMAGETTE: chunk}), path)
    return path


def _in_memory(arch: str, size: int, batch: int, steps: int, warmup: int, device: torch.device,
               precision: str) -> float:
    """Imagettes/s of the bare training step on ready-made tensors."""
    from xwvnet._runtime import torch_dtype
    from xwvnet.models import resnet
    from xwvnet.training.head import ProjectionHead, SimCLR, param_groups
    from xwvnet.training.loss import simclr_loss

    torch.manual_seed(0)
    backbone = resnet.ARCHITECTURES[arch]()
    model = SimCLR(backbone, ProjectionHead(backbone.num_features)).to(device).train()
    fmt = torch.channels_last if device.type == "cuda" else torch.contiguous_format
    model = model.to(memory_format=fmt)
    opt = torch.optim.AdamW(param_groups(model, 1e-4), lr=1e-3)
    v1 = torch.randn(batch, 3, size, size, device=device).contiguous(memory_format=fmt)
    v2 = torch.randn(batch, 3, size, size, device=device).contiguous(memory_format=fmt)
    autocast = (contextlib.nullcontext() if precision == "float32"
                else torch.autocast(device.type, dtype=torch_dtype(precision)))

    def step() -> float:
        with autocast:
            loss = simclr_loss(model, v1, v2, 0.1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return float(loss.detach())  # the loop reads the loss every step too

    for _ in range(warmup):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return batch * steps / (time.perf_counter() - start)


def _full_loop(store: Path, out: Path, arch: str, size: int, batch: int, steps: int, warmup: int, device: str,
               workers: int, precision: str) -> float:
    """Imagettes/s of ``xwvnet.train`` from the store, over the steps after ``warmup``."""
    from xwvnet.training import train

    train(store, out, arch=arch, image_size=size, batch_size=batch, steps=warmup + steps, device=device,
          num_workers=workers, checkpoint_every=10**9, progress=False, precision=precision)
    with (out / "loss.csv").open() as f:
        rates = [float(r["images_per_s"]) for r in csv.DictReader(f)][warmup:]
    return len(rates) * batch / sum(batch / r for r in rates)


def _budget_run(seconds: float, arch: str | None, size: int | None, batch: int | None, device: str,
                bn_imagettes: int | None) -> None:
    """``xwvnet.train`` under ``max_seconds=seconds``: wall time, steps estimated and run, final learning rate."""
    import json

    from xwvnet._runtime import cores
    from xwvnet.training import train

    given = {k: v for k, v in {"arch": arch, "image_size": size, "batch_size": batch,
                               "bn_imagettes": bn_imagettes}.items() if v is not None}
    with tempfile.TemporaryDirectory() as tmp:
        store = _store(Path(tmp) / "imagettes.zarr", 1024, (256, 256), chunk=64)  # not timed
        out = Path(tmp) / "run"
        began = time.perf_counter()
        train(store, out, max_seconds=seconds, device=device, progress=False, **given)
        wall = time.perf_counter() - began
        meta = json.loads((out / "encoder.json").read_text())
        with (out / "loss.csv").open() as f:
            last_lr = float(list(csv.DictReader(f))[-1]["lr"])
    config, record = meta["config"], meta["schedule"]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    where = config["device"] if config["device"] != "cpu" else f"cpu ({cores()} cores, load {load:.1f})"
    complete = meta["stopped"] == "finished" and meta["steps_done"] == config["steps"]
    print(f"\nxwvnet.train under max_seconds={seconds:g} on {where}: {config['arch']} at {config['image_size']} px, "
          f"batch {config['batch_size']}, {config['precision']}, bn_imagettes {config['bn_imagettes']}")
    print(f"{'wall time of the call':34}{wall:10.1f} s   ({wall / seconds:.3f} of the budget; target 0.95-1.05)")
    pace = ("not timed" if record["step_seconds"] is None else
            f"{record['step_seconds']:.3g} s per step at the last check")
    print(f"{'set-up and first step':34}{record['setup_seconds'] or float('nan'):10.1f} s")
    print(f"{'steps estimated (first fit)':34}{record['estimated_steps']!s:>10}     ({pace})")
    print(f"{'steps run':34}{meta['steps_done']:10d}     (schedule of {config['steps']} steps, warm-up "
          f"{config['warmup_steps']}, refitted {record['refits']} times; stopped: {meta['stopped']})")
    print(f"{'reserved for the end':34}{record['reserved_seconds']:10.1f} s   (checkpoint "
          f"{record['checkpoint_seconds']:.2f} s x 2, batch-norm statistics {record['batch_norm_seconds']:.1f} s)")
    print(f"{'final lr / peak':34}{last_lr / config['lr']:10.4f}     (the last step's; the schedule ends at 0)")
    if not record["fitted"]:
        print("the budget ran out before the first steps were timed: nothing was fitted (give more seconds)")
    print(f"{'schedule complete':34}{'yes' if complete else 'no':>10}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small CPU-sized run")
    parser.add_argument("--arch", default=None)
    parser.add_argument("--image-size", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--max-seconds", type=float, default=None,
                        help="check the time budget: train's defaults under max_seconds=S (see above)")
    parser.add_argument("--bn-imagettes", type=int, default=None,
                        help="with --max-seconds: train's bn_imagettes (default: train's)")
    args = parser.parse_args()
    if args.max_seconds is not None:
        _budget_run(args.max_seconds, args.arch, args.image_size, args.batch_size, args.device, args.bn_imagettes)
        return
    from xwvnet._runtime import LOCAL_THREADS, cores, run_context, torch_device

    device = torch_device(run_context(LOCAL_THREADS, args.device).device)
    gpu = device.type == "cuda"
    quick = args.quick
    arch = args.arch or ("resnet50" if gpu and not quick else "resnet18")
    size = args.image_size or (160 if gpu else 64 if quick else 96)  # the GPU recipe: 160-px windows of the field
    batch = args.batch_size or (256 if gpu else 32)
    steps = args.steps or (30 if gpu else 6 if quick else 20)
    warmup = 5 if gpu else 2
    workers = args.workers if args.workers is not None else (min(8, cores() - 1) if gpu else 1)
    precision = "bfloat16" if gpu else "float32"
    if not gpu:
        torch.set_num_threads(max(1, cores() - workers))
    image = (490, 560) if gpu else (192, 192)
    n = max(batch * (warmup + steps) // 2, 4 * batch)  # about two epochs' worth of reading
    with tempfile.TemporaryDirectory() as tmp:
        store = _store(Path(tmp) / "imagettes.zarr", n, image, chunk=64)
        full = _full_loop(store, Path(tmp) / "run", arch, size, batch, steps, warmup, str(device), workers, precision)
        bare = _in_memory(arch, size, batch, steps, warmup, device, precision)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    name = torch.cuda.get_device_name(device) if gpu else f"cpu ({cores()} cores, load {load:.1f})"
    print(f"\nSimCLR training throughput on {name}: {arch} at {size} px, batch {batch}, {precision}, "
          f"{steps} timed steps after {warmup} warm-up, store of {n} quicklooks {image[0]}x{image[1]}, "
          f"{workers} loader worker(s)")
    print(f"{'':34}{'imagettes/s':>12}")
    print(f"{'in-memory training step':34}{bare:12.1f}")
    print(f"{'full loop from Zarr (xwvnet.train)':34}{full:12.1f}")
    print(f"{'ratio full / in-memory':34}{full / bare:12.2f}   (target >= 0.9 on a GPU)")


if __name__ == "__main__":
    main()
