"""Helpers shared by the tests: small imagette Datasets, seeded encoders and chunk-object surgery on stores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from xwvnet import schema as S

REPO = Path(__file__).resolve().parent.parent  # the repository root, wherever a test file sits below tests/


def make_imagettes(n: int = 8, lines: int = 32, samples: int = 40, seed: int = 0) -> xr.Dataset:
    """A tiny valid imagette Dataset with random pixels, for tests that need no physics."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"test-{seed}-{i:04d}" for i in range(n)], dtype=object)
    return xr.Dataset(
        {
            S.QUICKLOOK: ((S.IMAGETTE, S.LINE, S.SAMPLE), rng.integers(0, 256, (n, lines, samples), dtype=np.uint8)),
            S.VALID_LINES: (S.IMAGETTE, np.full(n, lines, dtype=np.int32)),
            S.VALID_SAMPLES: (S.IMAGETTE, np.full(n, samples, dtype=np.int32)),
        },
        coords={
            S.IMAGETTE: ids,
            S.TIME: (S.IMAGETTE, np.datetime64("2020-01-01", "ns") + np.arange(n).astype("timedelta64[h]")),
            S.LATITUDE: (S.IMAGETTE, rng.uniform(-60, 60, n)),
            S.LONGITUDE: (S.IMAGETTE, rng.uniform(-180, 180, n)),
            S.MISSION: (S.IMAGETTE, np.array(["s1a"] * n, dtype=object)),
            S.SWATH: (S.IMAGETTE, np.array(["wv1", "wv2"] * (n // 2) + ["wv1"] * (n % 2), dtype=object)),
            S.POLARIZATION: (S.IMAGETTE, np.array(["vv"] * n, dtype=object)),
            S.ORBIT: (S.IMAGETTE, np.arange(n, dtype=np.int64) + 1000),
        },
    )


def save_random_resnet18(path: Path, seed: int) -> Path:
    """A seeded random ResNet-18 state dict in torchvision format: a small, offline encoder for tests."""
    import torch

    from xwvnet.models.resnet import resnet18

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.save(resnet18().state_dict(), path)
    return path


def embed_whole_store(store: Path | str, weights: Path) -> np.ndarray:
    """Single-process embeddings of a whole store in one block: the reference that other runs must equal."""
    import xwvnet
    from xwvnet.inference import embed_block

    ds = xwvnet.open_store(store).load()
    return embed_block(ds[S.QUICKLOOK].values, ds[S.VALID_LINES].values, ds[S.VALID_SAMPLES].values,
                       encoder=str(weights))


def new_bucket(endpoint: str) -> str:
    """A new, empty bucket on the moto server."""
    import uuid

    import boto3

    name = f"xwvnet-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=name)
    return name


def chunk_objects(url: str) -> dict[str, int]:
    """The chunk objects of a store (local path or s3:// URL): key or path -> size."""
    if url.startswith("s3://"):
        import boto3

        bucket, _, prefix = url[5:].partition("/")
        s3 = boto3.client("s3")
        listing = s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/chunks/").get("Contents", [])
        return {f"s3://{bucket}/{item['Key']}": item["Size"] for item in listing}
    folder = Path(url) / "chunks"
    return {str(p): p.stat().st_size for p in folder.iterdir()} if folder.is_dir() else {}


def flip_byte(key: str) -> None:
    """Flip one bit in the middle of a chunk object (local path or s3:// key)."""
    if key.startswith("s3://"):
        import boto3

        bucket, _, name = key[5:].partition("/")
        s3 = boto3.client("s3")
        data = bytearray(s3.get_object(Bucket=bucket, Key=name)["Body"].read())
        data[len(data) // 2] ^= 1
        s3.put_object(Bucket=bucket, Key=name, Body=bytes(data))
        return
    data = bytearray(Path(key).read_bytes())
    data[len(data) // 2] ^= 1
    Path(key).write_bytes(bytes(data))


def delete_object(key: str) -> None:
    """Delete a chunk object (local path or s3:// key)."""
    if key.startswith("s3://"):
        import boto3

        bucket, _, name = key[5:].partition("/")
        boto3.client("s3").delete_object(Bucket=bucket, Key=name)
        return
    Path(key).unlink()


def forget_chunk(url: str, key: str) -> None:
    """Drop one chunk from the branch tip's manifests through an icechunk session, and commit: a hole in the grid."""
    import asyncio

    from xwvnet.io import store as zs
    from xwvnet.io.storage import locate

    repo = zs.repository(locate(url))
    session = repo.writable_session(zs.BRANCH)
    asyncio.run(session.store.delete(key))
    session.commit(f"deleted {key}")


def embedded_imagettes(n: int = 8) -> xr.Dataset:
    """``n`` small imagettes with a toy 6-feature embedding (encoder "toy") and two tags A and B, for figures."""
    ds = make_imagettes(n, lines=24, samples=30)
    x = np.random.default_rng(1).standard_normal((n, 6)).astype(np.float32)
    labels = (np.arange(n)[:, None] % np.array([2, 3]) == 0).astype(np.int8)
    return ds.assign({S.EMBEDDING: ((S.IMAGETTE, S.FEATURE), x, {"encoder": "toy"}),
                      S.LABELS: ((S.IMAGETTE, S.LABEL), labels)}).assign_coords({S.LABEL: ["A", "B"]})


# ---- quicklook PNG files: small valid ones, and crafted headers (bombs, truncated pixel data) ----------------------

S1_NAME = "s1a-wv1-QL-vv-20190213t130655-20190213t130658-025911-02e29d-{:03d}.png"


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    import struct
    import zlib

    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def crafted_png(path: Path, width: int, height: int, *, full: bool = False) -> Path:
    """A greyscale PNG whose header claims ``width`` x ``height``; its data is a few zero bytes (``full=False``)
    or a complete zlib stream of zeros (``full=True``: decodes to a black image, yet only ~100 kB on disk)."""
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    if full:
        deflate, row, parts = zlib.compressobj(9), bytes(width + 1), []
        for _ in range(height):
            parts.append(deflate.compress(row))
        data = b"".join(parts) + deflate.flush()
    else:
        data = zlib.compress(bytes(100))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", data)
                     + _png_chunk(b"IEND", b""))
    return path


def small_pngs(folder: Path, n: int = 3, shape: tuple[int, int] = (20, 30)) -> list[Path]:
    """``n`` random greyscale PNGs named like Sentinel-1 WV quicklooks (numbers 001, 002, ...) in ``folder``."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        path = folder / S1_NAME.format(i + 1)
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


# ---- real processes ---------------------------------------------------------------------------------------------


def spawn(args: list[str]):
    """``python *args`` in a process of its own (one torch thread), from the repository root, output piped."""
    import os
    import subprocess
    import sys

    return subprocess.Popen([sys.executable, *args], cwd=REPO, env={**os.environ, "XWVNET_TORCH_THREADS": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def kill_when(proc, ready, timeout: float = 120) -> None:
    """SIGKILL ``proc`` as soon as ``ready()`` is true (it must still run then), and reap it."""
    import os
    import signal
    import time

    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and proc.poll() is None and not ready():
            time.sleep(0.05)
        assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read()[-2000:]}"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()


class RecordingBars:
    """Records every tqdm bar's updates (``updates``: one list of increments per bar made while patched)."""

    def __init__(self, monkeypatch):
        import tqdm.auto

        self.updates: list[list[int]] = []
        real, bars = tqdm.auto.tqdm, self

        class Recording(real):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                self.mine: list[int] = []
                bars.updates.append(self.mine)

            def update(self, n=1):
                if n:
                    self.mine.append(int(n))
                return super().update(n)

        monkeypatch.setattr(tqdm.auto, "tqdm", Recording)
