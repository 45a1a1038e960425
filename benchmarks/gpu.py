"""What one GPU does for xwvnet, in one command: embedding a store end to end, the bare forward, SimCLR training.

Run: ``python benchmarks/gpu.py --out DIR`` (``--quick`` for a shorter run). On whatever CUDA device torch sees it
measures, side by side in one process:

- ``store -> embeddings``: ``xwvnet.embed_store`` of an imagette store of full-size WV1 synthetic quicklooks
  (reading, decoding, the WV-Net transform on the GPU, the model, commits), images/s, in float32 and bfloat16
  (channels-last memory format, as ``embed_store`` runs);
- ``bare forward``: the same model on ready-made input tensors on the GPU, images/s, in float32 and bfloat16, with
  and without channels-last, and bfloat16 channels-last through ``torch.compile``; ``store / bare`` says how much
  of the model's speed reaches a user;
- ``SimCLR training``: ``xwvnet.train`` (ResNet-50, 160-px views, batch 256, bfloat16), images/s over the steps
  after the first (start-up, data set-up and compilation excluded by differencing two runs), with and without
  ``torch.compile``.

It writes ``DIR/gpu.json`` (every figure, the device, versions) and ``DIR/gpu.md`` (a Markdown table), and
finishes in a few minutes on one H100-class GPU. On a machine without a GPU it runs a tiny version (ResNet-18,
a few imagettes, float32, no compile, CPU) that checks the path and says so in both files: its figures are not GPU
figures.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _store(path: Path, n: int, size: tuple[int, int], chunk: int) -> Path:
    """An imagette store of ``n`` synthetic quicklooks: 16 generated, tiled (setup stays short), unique ids."""
    import xarray as xr

    import xwvnet
    from xwvnet import schema as S

    base = xwvnet.synthetic.imagettes(min(n, 16), seed=0, size=size, chunks=16).compute()
    ds = xr.concat([base] * -(-n // base.sizes[S.IMAGETTE]), dim=S.IMAGETTE).isel({S.IMAGETTE: slice(0, n)})
    ds = ds.assign_coords({S.IMAGETTE: np.array([f"gpu-bench-{i:07d}" for i in range(n)], dtype=object)})
    xwvnet.to_store(ds, path, chunk_size=chunk)
    return path


def _timed(fn: Callable[[], object], device) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def _bare(encoder, device, precision: str, channels_last: bool, compiled: bool, batch: int, batches: int,
          side: int) -> float:
    """images/s of the model alone on a ready input tensor on ``device``."""
    import torch

    from xwvnet._runtime import torch_dtype
    from xwvnet.inference import get_model

    model = get_model(encoder, device, precision, channels_last)
    if compiled:
        model = torch.compile(model)
    x = torch.randn(batch, encoder.in_chans, side, side, device=device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    autocast = precision != "float32"
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch_dtype(precision), enabled=autocast):
        for _ in range(3 if compiled else 1):  # warm-up (compilation, cuDNN's choice of kernels)
            model(x)
        seconds = _timed(lambda: [model(x) for _ in range(batches)], device)
    return batches * batch / seconds


def _embed_store(store: Path, work: Path, encoder, device, precision: str, chunk: int, batch: int, n: int) -> float:
    """images/s of ``embed_store`` from the store to a new embedding store (one warm-up run on a copy first)."""
    import xwvnet

    def run(out: Path) -> None:
        xwvnet.embed_store(store, out, encoder, client="threads", device=str(device), precision=precision,
                           chunk_size=chunk, batch_size=batch, progress=False)

    run(work / f"warm-{precision}.zarr")  # the model built and its kernels chosen once, as on a worker
    return n / _timed(lambda: run(work / f"emb-{precision}.zarr"), device)


def _train(data: Path, work: Path, device, arch: str, steps: tuple[int, int], batch: int, side: int,
           precision: str, compiled: bool) -> float:
    """images/s of SimCLR training: two runs of different lengths, differenced (start-up costs cancel)."""
    import xwvnet

    seconds = []
    for k in steps:
        out = work / f"train-{arch}-{precision}-{compiled}-{k}"
        seconds.append(_timed(lambda k=k, out=out: xwvnet.train(
            str(data), out, arch=arch, steps=k, batch_size=batch, image_size=side, device=str(device),
            precision=precision, compile=compiled, progress=False), device))
    return (steps[1] - steps[0]) * batch / max(1e-9, seconds[1] - seconds[0])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("gpu-benchmark"), help="folder for gpu.json and gpu.md")
    parser.add_argument("--quick", action="store_true", help="fewer imagettes and steps")
    args = parser.parse_args(argv)
    import torch

    import xwvnet
    from xwvnet.models.encoder import Encoder

    gpu = torch.cuda.is_available()
    device = torch.device("cuda" if gpu else "cpu")
    if gpu:
        n, size, chunk, batch, batches = (2048 if args.quick else 8192), (490, 560), 1024, 256, 40
        encoder, arch, train_batch, train_side = Encoder("random ResNet-50", "resnet50", seed=0), "resnet50", 256, 160
        steps, precisions, compile_options = ((10, 30) if args.quick else (20, 120)), ("float32", "bfloat16"), \
            (False, True)
        name = torch.cuda.get_device_name(device)
    else:
        n, size, chunk, batch, batches = 16, (64, 64), 8, 8, 2
        encoder, arch, train_batch, train_side = Encoder("random ResNet-18", "resnet18", seed=0), "resnet18", 8, 32
        steps, precisions, compile_options = (1, 3), ("float32",), (False,)
        name = f"CPU ({platform.processor() or platform.machine()}), tiny version: not GPU figures"
    rows: list[dict] = []

    def record(case: str, setting: str, value: float) -> None:
        rows.append({"case": case, "setting": setting, "images_per_s": round(value, 1)})
        print(f"{case:22s} {setting:38s} {value:10.1f} images/s", flush=True)

    print(f"device: {name}", flush=True)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="xwvnet-gpu-") as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the slow-bfloat16 notice and the like: the table says what ran
        work = Path(tmp)
        store = _store(work / "imagettes.zarr", n, size, chunk)
        train_data = _store(work / "train.zarr", min(n, 2048), (256, 256) if gpu else (64, 64), 256)
        for precision in precisions:
            record("store -> embeddings", f"{precision}, channels-last", _embed_store(
                store, work, encoder, device, precision, chunk, batch, n))
        for precision in precisions:
            for channels_last in (False, True):
                record("bare forward", f"{precision}{', channels-last' if channels_last else ''}",
                       _bare(encoder, device, precision, channels_last, False, batch, batches, 224))
        if gpu:
            record("bare forward", "bfloat16, channels-last, torch.compile",
                   _bare(encoder, device, "bfloat16", True, True, batch, batches, 224))
        for compiled in compile_options:
            precision = "bfloat16" if gpu else "float32"
            record("SimCLR training", f"{arch}, {train_side}-px views, batch {train_batch}, {precision}"
                   f"{', torch.compile' if compiled else ''}",
                   _train(train_data, work, device, arch, steps, train_batch, train_side, precision, compiled))
    total = time.perf_counter() - start
    bare = {r["setting"]: r["images_per_s"] for r in rows if r["case"] == "bare forward"}
    ratios = {r["setting"]: round(r["images_per_s"] / bare[r["setting"]], 3) for r in rows
              if r["case"] == "store -> embeddings" and r["setting"] in bare}
    result = {"device": name, "gpu": gpu, "seconds": round(total, 1), "imagettes": n, "imagette_size": size,
              "chunk_size": chunk, "batch_size": batch, "rows": rows, "store_over_bare": ratios,
              "versions": {"xwvnet": xwvnet.__version__, "torch": torch.__version__, "python": sys.version.split()[0],
                           "cuda": torch.version.cuda}}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu.json").write_text(json.dumps(result, indent=2))
    lines = [f"# xwvnet on {name}", "", f"{n} imagettes of {size[0]} x {size[1]} px, chunks of {chunk}, batches of "
             f"{batch}; {total:.0f} s in all; torch {torch.__version__}.", "",
             "| case | setting | images/s |", "|---|---|---|"]
    lines += [f"| {r['case']} | {r['setting']} | {r['images_per_s']:,.1f} |" for r in rows]
    lines += ["", "store -> embeddings over the bare forward (same precision and memory format): "
              + ", ".join(f"{k}: {v:.2f}" for k, v in ratios.items())]
    if not gpu:
        lines += ["", "No CUDA device: this is the tiny CPU version (it checks the path); its figures are not GPU "
                  "figures."]
    (args.out / "gpu.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out / 'gpu.json'} and {args.out / 'gpu.md'} in {total:.0f} s", flush=True)


if __name__ == "__main__":
    main()
