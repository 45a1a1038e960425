"""Benchmark: ``ds.wvnet.embed()`` from a Zarr store against the bare model, in float32 and bfloat16.

Prints, measured side by side in one run (same batch size, torch threads budget and device):

1. images/s of the bare model forward on ready-made tensors, and of ``embed()`` reading synthetic quicklooks from
   a Zarr store (decode + transform + model + dask), with their ratio (target >= 0.95), for each precision and
   for dask's threaded scheduler (``cores`` tasks x 1 torch thread) and the synchronous one (1 task x ``cores``);
2. the published per-image float32 procedure (PIL geometry, one image per forward) as the reference speed, the
   bfloat16 speed-up over it (target >= 2.5x) and the cosine similarity of bfloat16 to float32 embeddings;
3. peak resident memory when embedding N and 4N imagettes (each in a fresh process; target: no growth with N).

Usage: ``python benchmarks/embed.py [--quick] [--n N] [--batch-size B] [--device auto]``. The encoder defaults to
``random-resnet50`` (speed does not depend on the weights). Timings are best-of-``--repeat`` to damp noise from
other processes; the host load is printed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _store(path: Path, n: int, chunk: int, seed: int = 0) -> Path:
    """A Zarr store of ``n`` WV1-sized synthetic quicklooks (a few unique ones, tiled, to keep setup short)."""
    import xarray as xr

    from xwvnet import schema as S

    unique = min(n, 16)
    try:
        from xwvnet.synthetic import imagettes

        base = imagettes(unique, seed=seed, size=(490, 560), chunks=unique, ragged=True).compute()
    except ImportError:  # synthetic imagettes not available: random pixels with WV1 extents
        rng = np.random.default_rng(seed)
        base = xr.Dataset(
            {S.QUICKLOOK: ((S.IMAGETTE, S.LINE, S.SAMPLE), rng.integers(0, 256, (unique, 490, 560), np.uint8)),
             S.VALID_LINES: (S.IMAGETTE, np.full(unique, 490, np.int32)),
             S.VALID_SAMPLES: (S.IMAGETTE, np.full(unique, 560, np.int32))},
            coords={S.IMAGETTE: np.array([f"b{i}" for i in range(unique)], dtype=object)},
        )
    keep = [S.QUICKLOOK, S.VALID_LINES, S.VALID_SAMPLES]
    base = base[keep].reset_coords(drop=True)
    reps = -(-n // unique)
    ds = xr.concat([base] * reps, dim=S.IMAGETTE).isel({S.IMAGETTE: slice(0, n)})
    ds = ds.assign_coords({S.IMAGETTE: np.array([f"bench-{i:06d}" for i in range(n)], dtype=object)})
    ds.chunk({S.IMAGETTE: chunk}).to_zarr(path, mode="w", consolidated=False)
    return path


def _open(path: Path, n: int, chunk: int):
    import xarray as xr

    from xwvnet import schema as S

    chunks = {} if chunk is None else {S.IMAGETTE: chunk}  # {}: the stored chunks
    return xr.open_zarr(path, consolidated=False, chunks=chunks).isel({S.IMAGETTE: slice(0, n)})


def _bare(encoder, n: int, batch: int, device, precision: str) -> float:
    """images/s of the model alone on ready-made input tensors (same threads, device, precision, format)."""
    import torch

    from xwvnet._runtime import torch_dtype
    from xwvnet.inference import get_model

    torch.set_num_threads(_cores())
    model = get_model(encoder, device, precision, True)
    x = torch.randn(batch, 3, 224, 224, device=device).contiguous(memory_format=torch.channels_last)
    steps = -(-n // batch)
    autocast = precision != "float32"
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch_dtype(precision), enabled=autocast):
        model(x)  # warm-up at the timed batch size (oneDNN builds its kernels per shape)
        _sync(device)
        start, cpu = time.perf_counter(), time.process_time()
        for _ in range(steps):
            model(x).float().cpu()
        _sync(device)
    return steps * batch / (time.perf_counter() - start), steps * batch / (time.process_time() - cpu)


def _embed(encoder, path: Path, n: int, batch: int, chunk: int, device, precision: str, scheduler: str) -> float:
    import warnings

    from xwvnet.inference import embed

    ds = _open(path, n, chunk)
    start, cpu = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the slow-bfloat16 notice; reported in the table instead
        embed(ds, encoder, batch_size=batch, device=str(device), precision=precision)["embedding"].compute(
            scheduler=scheduler
        )
    _sync(device)
    return n / (time.perf_counter() - start), n / (time.process_time() - cpu)


def _published_per_image(encoder, path: Path, n: int, device) -> float:
    """The published procedure: per image, PIL pad/crop, float scale, resize, normalise; one forward each, fp32."""
    import torch
    import torch.nn.functional as F
    from PIL import Image

    from xwvnet.models.resnet import ARCHITECTURES

    torch.set_num_threads(_cores())
    model = ARCHITECTURES[encoder.arch]().eval().to(device)
    model.load_state_dict(encoder.module.state_dict())
    ds = _open(path, n, None).load()
    mean, std = 103.4862417561056 / 255.0, 56.745013435601074 / 255.0
    start = time.perf_counter()
    with torch.inference_mode():
        for k in range(n):
            h, w = int(ds.valid_lines[k]), int(ds.valid_samples[k])
            img = Image.fromarray(ds.quicklook.values[k, :h, :w])
            top, bottom = max(0, 450 - w), max(0, 450 - h)
            canvas = Image.new("L", (max(w, 450), max(h + top + bottom, 450)), 0)
            canvas.paste(img, ((450 - w) // 2 if w < 450 else 0, top))
            cw, ch = canvas.size
            left, upper = int(round((cw - 450) / 2.0)), int(round((ch - 450) / 2.0))
            field = np.asarray(canvas.crop((left, upper, left + 450, upper + 450)))
            x = torch.from_numpy(field.copy()).to(device).float() / 255.0
            x = F.interpolate(x[None, None], size=(224, 224), mode="bilinear", align_corners=True)
            model(((x - mean) / std).repeat(1, 3, 1, 1)).cpu()
    _sync(device)
    return n / (time.perf_counter() - start)


def _cosine(encoder, path: Path, n: int, batch: int, device) -> float:
    import warnings

    from xwvnet.inference import embed_block

    ds = _open(path, n, None).load()
    args = (ds.quicklook.values, ds.valid_lines.values, ds.valid_samples.values)
    fp32 = embed_block(*args, encoder=encoder, batch_size=batch, device=device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        bf16 = embed_block(*args, encoder=encoder, batch_size=batch, device=device, precision="bfloat16")
    cos = (fp32 * bf16).sum(1) / (np.linalg.norm(fp32, axis=1) * np.linalg.norm(bf16, axis=1))
    return float(cos.min())


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_memory(encoder_name: str, path: Path, n: int, batch: int, chunk: int, device: str) -> tuple[float, float]:
    """(resident MiB after loading the model, peak resident MiB while embedding n imagettes), in a fresh process.

    The peak is sampled every 5 ms from /proc (ru_maxrss would be dominated by the model load itself).
    """
    code = (
        "import threading, time, benchmarks.embed as b\n"
        "from xwvnet.models.zoo import load_encoder\n"
        "from xwvnet.inference import embed, get_model\n"
        f"enc = load_encoder({encoder_name!r}); get_model(enc, {device!r}, 'float32', True)\n"
        "import gc; gc.collect(); base = b._rss_mib(); peak = [base]; done = []\n"
        "def watch():\n"
        "    while not done:\n"
        "        peak.append(b._rss_mib()); time.sleep(0.005)\n"
        "t = threading.Thread(target=watch); t.start()\n"
        f"ds = b._open(b.Path({str(path)!r}), {n}, {chunk})\n"
        f"embed(ds, enc, batch_size={batch}, device={device!r}).to_zarr(b.Path({str(path)!r}).parent / 'out-{n}.zarr',"
        " mode='w', consolidated=False)\n"
        "done.append(1); t.join(); print(base, max(peak))\n"
    )
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, check=True)
    base, peak = map(float, out.stdout.split()[-2:])
    return base, peak


def _sync(device) -> None:
    if device.type == "cuda":
        import torch

        torch.cuda.synchronize()


def _cores() -> int:
    from xwvnet._runtime import cores

    return cores()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small run (a minute or so)")
    parser.add_argument("--n", type=int, default=None, help="imagettes per timing (default 32; quick 8)")
    parser.add_argument("--batch-size", type=int, default=None, help="model batch (default 16; quick 4)")
    parser.add_argument("--chunk", type=int, default=None, help="imagettes per Zarr/dask chunk (default: batch)")
    parser.add_argument("--repeat", type=int, default=None, help="best of this many timings (default 3; quick 1)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--encoder", default="random-resnet50")
    args = parser.parse_args(argv)
    n = args.n or (8 if args.quick else 32)
    batch = args.batch_size or (4 if args.quick else 16)
    chunk = args.chunk or batch
    repeat = args.repeat or (1 if args.quick else 3)

    import torch

    from xwvnet._runtime import LOCAL_THREADS, cpu_has_bf16, run_context, torch_device
    from xwvnet.models.zoo import load_encoder

    device = torch_device(run_context(LOCAL_THREADS, args.device).device)
    encoder = load_encoder(args.encoder)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {_cores()} cores"
    print(f"device: {name}; torch {torch.__version__}; encoder {encoder.name}; batch {batch}; chunk {chunk}; "
          f"load average {os.getloadavg()[0]:.2f} (other processes share the cores: numbers are noisy)")
    native_bf16 = device.type == "cuda" or cpu_has_bf16()

    with tempfile.TemporaryDirectory() as tmp:
        path = _store(Path(tmp) / "imagettes.zarr", 4 * n, chunk)
        rows = []
        for precision in ("float32", "bfloat16"):
            m = n if (precision == "float32" or native_bf16) else max(batch, n // 8)  # emulated bf16 is slow
            bare, threads, sync = [], [], []
            for _ in range(repeat):  # interleaved so that load changes hit all three alike
                bare.append(_bare(encoder, m, batch, device, precision))
                threads.append(_embed(encoder, path, m, batch, chunk, device, precision, "threads"))
                sync.append(_embed(encoder, path, m, batch, chunk, device, precision, "synchronous"))
            rows.append((precision, m, bare, threads, sync))

        print(f"\n1. embed() from Zarr vs bare model (best of {repeat}; wall images/s, and images per CPU-second,"
              " which other processes on the host disturb less)")
        print(f"{'precision':<10} {'n':>4} {'bare':>7} {'threads':>8} {'ratio':>6} {'sync':>7} {'ratio':>6} | "
              f"{'bare/cpu-s':>10} {'threads':>8} {'ratio':>6} {'sync':>7} {'ratio':>6}")
        for precision, m, bare, threads, sync in rows:
            wall = [max(r[0] for r in col) for col in (bare, threads, sync)]
            cpu = [max(r[1] for r in col) for col in (bare, threads, sync)]
            print(f"{precision:<10} {m:>4} {wall[0]:>7.2f} {wall[1]:>8.2f} {wall[1] / wall[0]:>6.2f} {wall[2]:>7.2f} "
                  f"{wall[2] / wall[0]:>6.2f} | {cpu[0]:>10.2f} {cpu[1]:>8.2f} {cpu[1] / cpu[0]:>6.2f} "
                  f"{cpu[2]:>7.2f} {cpu[2] / cpu[0]:>6.2f}")

        k = max(2, min(n, 8))
        per_image = _published_per_image(encoder, path, k, device)
        best_bf16 = max(r[0] for r in rows[1][3] + rows[1][4])
        best_fp32 = max(r[0] for r in rows[0][3] + rows[0][4])
        cos = _cosine(encoder, path, min(n, 8), batch, device)
        print("\n2. against the published per-image float32 procedure")
        print(f"{'procedure':<34} {'images/s':>9} {'x published':>12}")
        print(f"{'published, per image, fp32':<34} {per_image:>9.2f} {1.0:>12.2f}")
        print(f"{'embed(), float32':<34} {best_fp32:>9.2f} {best_fp32 / per_image:>12.2f}")
        print(f"{'embed(), bfloat16':<34} {best_bf16:>9.2f} {best_bf16 / per_image:>12.2f}")
        print(f"cosine similarity bfloat16 vs float32 (min over {min(n, 8)} imagettes): {cos:.6f}")
        if not native_bf16:
            print("note: this CPU has no native bfloat16 (AVX512-BF16/AMX); bfloat16 is emulated, hence slow.")

        print("\n3. peak memory, float32, each run in a fresh process (MiB)")
        print(f"{'imagettes':>9} {'after model load':>17} {'peak':>8} {'peak - load':>12}")
        grow = []
        for m in (n, 4 * n):
            base, peak = _peak_memory(args.encoder, path, m, batch, chunk, str(device))
            grow.append(peak - base)
            print(f"{m:>9} {base:>17.0f} {peak:>8.0f} {peak - base:>12.0f}")
        print(f"growth of (peak - load) from N to 4N: {grow[1] / max(grow[0], 1):.2f}x")


if __name__ == "__main__":
    main()
