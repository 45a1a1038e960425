"""What xwvnet's stores cost against plain Zarr on the same storage: local disk and a moto S3 server, one run.

Run: ``python benchmarks/store.py [--n 2000] [--repeat 3] [--no-s3]``. Both sides write the same in-memory synthetic
imagettes (64 x 64, 64 per chunk) and read them back; the ratio is xwvnet / plain (1.0: no cost). A third side,
icechunk alone, writes and reads the same Dataset through a bare icechunk session (``to_zarr`` / ``open_zarr`` on
``session.store``, one commit per write, no xwvnet checks): xwvnet / icechunk is what xwvnet's own code costs, and
icechunk / plain what the transactional storage itself costs.

- ``write``: one ``xwvnet.to_store`` of every imagette (commits per batch of 64 chunks, crc32c on every chunk)
  against one ``Dataset.to_zarr`` with the same chunks.
- ``20 appends``: twenty ``to_store`` calls of n/20 imagettes (each reads the stored ids and commits) against twenty
  ``to_zarr(append_dim="imagette")``.
- ``open``: ``xwvnet.open_store`` against ``xr.open_zarr`` (metadata only).
- ``load``: ``open_store(...).load()`` (every chunk checked) against ``open_zarr(...).load()``.
- ``embed_store`` (the first 512 imagettes): ``xwvnet.embed_store`` (forks, merges, commits) against reading the plain
  store, embedding with the same encoder function (``embed_block``) and ``to_zarr``; a random ResNet-18 on 64 x 64
  images keeps the model cheap, so the figure shows the store's overhead, not the model's time.

The S3 side starts a moto server on 127.0.0.1 (moto[server] from the test extra); it is an in-process Python
server, so its absolute times are far above a real object store's, and the ratios are the figures to read.
"""

from __future__ import annotations

import argparse
import os
import socket
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import xarray as xr

import xwvnet
from xwvnet import schema as S
from xwvnet import synthetic
from xwvnet.io.storage import locate
from xwvnet.io.store import as_written, encoding

CHUNK = 64


def _moto() -> tuple[object, str]:
    from moto.server import ThreadedMotoServer

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    os.environ.update(AWS_ENDPOINT_URL=url, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
                      AWS_REGION="us-east-1", AWS_ALLOW_HTTP="true")
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    import boto3

    boto3.client("s3").create_bucket(Bucket="xwvnet-bench")
    return server, url


def _fresh(kind: str) -> str:
    if kind == "s3":
        return f"s3://xwvnet-bench/{uuid.uuid4().hex}/s.zarr"
    return str(Path(tempfile.mkdtemp(prefix="xwvnet-bench-")) / "s.zarr")


def _plain_encoding(ds: xr.Dataset) -> dict:
    """The store's chunks with zarr's default compressors (no crc32c): what a plain Zarr user would write."""
    return {k: {kk: vv for kk, vv in v.items() if kk != "compressors"} for k, v in encoding(ds, CHUNK).items()}


def _plain_write(ds: xr.Dataset, url: str, append: bool = False) -> None:
    store = locate(url).zarr_store(read_only=False)
    if append:
        ds.to_zarr(store, mode="a", append_dim=S.IMAGETTE, consolidated=False)
    else:
        ds.to_zarr(store, mode="w", consolidated=False, encoding=_plain_encoding(ds))


def _plain_open(url: str) -> xr.Dataset:
    return xr.open_zarr(locate(url).zarr_store(), consolidated=False)


def _ice_session(url: str, write: bool) -> object:
    import icechunk

    storage = locate(url).storage()
    exists = icechunk.Repository.exists(storage)
    repo = icechunk.Repository.open(storage) if exists else icechunk.Repository.create(storage)
    return repo.writable_session("main") if write else repo.readonly_session(branch="main")


def _ice_write(ds: xr.Dataset, url: str, append: bool = False) -> None:
    session = _ice_session(url, write=True)
    if append:
        ds.to_zarr(session.store, mode="a", append_dim=S.IMAGETTE, consolidated=False)
    else:
        ds.to_zarr(session.store, mode="w", consolidated=False, encoding=_plain_encoding(ds))
    session.commit("bench")


def _ice_open(url: str) -> xr.Dataset:
    return xr.open_zarr(_ice_session(url, write=False).store, consolidated=False)


def _best(fn: Callable[[str], object], kind: str, repeat: int, prepare: Callable[[str], object] | None = None) -> float:
    times = []
    for _ in range(repeat):
        url = _fresh(kind)
        if prepare is not None:
            prepare(url)
        start = time.perf_counter()
        fn(url)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-s3", action="store_true", help="local disk only")
    args = parser.parse_args()
    ds = as_written(synthetic.imagettes(args.n, seed=0, size=(64, 64))).load()
    few = ds.isel({S.IMAGETTE: slice(0, min(args.n, 512))})  # embed_store: the store's cost, not the model's
    parts = [ds.isel({S.IMAGETTE: slice(i, i + args.n // 20)}) for i in range(0, args.n, args.n // 20)]
    weights = Path(tempfile.mkdtemp()) / "r18.pt"
    import torch

    from xwvnet.inference import embed_block
    from xwvnet.models.resnet import resnet18

    torch.manual_seed(0)
    torch.save(resnet18().state_dict(), weights)

    def plain_embed(url: str) -> None:
        src = _plain_open(url + ".in")
        out = []
        for i in range(0, src.sizes[S.IMAGETTE], 256):
            part = src.isel({S.IMAGETTE: slice(i, i + 256)})
            out.append(embed_block(part[S.QUICKLOOK].values, part[S.VALID_LINES].values,
                                   part[S.VALID_SAMPLES].values, encoder=str(weights)))
        emb = xr.Dataset({S.EMBEDDING: ((S.IMAGETTE, S.FEATURE), np.concatenate(out))},
                         coords={S.IMAGETTE: src[S.IMAGETTE].values})
        emb.to_zarr(locate(url).zarr_store(read_only=False), mode="w", consolidated=False)

    kinds = ["local"] + ([] if args.no_s3 else ["s3"])
    server = None
    if "s3" in kinds:
        server, _ = _moto()
    rows = []
    try:
        for kind in kinds:
            cases = {
                "write": (lambda u: xwvnet.to_store(ds, u, chunk_size=CHUNK), lambda u: _plain_write(ds, u),
                          lambda u: _ice_write(ds, u), None, None, None),
                "20 appends": (lambda u: [xwvnet.to_store(p, u, chunk_size=CHUNK) for p in parts],
                               lambda u: [_plain_write(p, u, append=bool(i)) for i, p in enumerate(parts)],
                               lambda u: [_ice_write(p, u, append=bool(i)) for i, p in enumerate(parts)],
                               None, None, None),
                "open": (lambda u: xwvnet.open_store(u), _plain_open, _ice_open,
                         lambda u: xwvnet.to_store(ds, u, chunk_size=CHUNK), lambda u: _plain_write(ds, u),
                         lambda u: _ice_write(ds, u)),
                "load": (lambda u: xwvnet.open_store(u).load(), lambda u: _plain_open(u).load(),
                         lambda u: _ice_open(u).load(), lambda u: xwvnet.to_store(ds, u, chunk_size=CHUNK),
                         lambda u: _plain_write(ds, u), lambda u: _ice_write(ds, u)),
                "embed_store": (lambda u: xwvnet.embed_store(u + ".in", u, weights, progress=False, chunk_size=256),
                                plain_embed, None, lambda u: xwvnet.to_store(few, u + ".in", chunk_size=CHUNK),
                                lambda u: _plain_write(few, u + ".in"), None),
            }
            for name, (ours, plain, ice, prep_ours, prep_plain, prep_ice) in cases.items():
                a = _best(ours, kind, args.repeat, prep_ours)
                b = _best(plain, kind, args.repeat, prep_plain)
                c = None if ice is None else _best(ice, kind, args.repeat, prep_ice)
                rows.append((kind, name, a, b, c))
                alone = "" if c is None else f"   icechunk alone {c * 1e3:9.1f} ms   xwvnet / icechunk {a / c:5.2f}x"
                print(f"{kind:6s} {name:12s} xwvnet {a * 1e3:9.1f} ms   plain zarr {b * 1e3:9.1f} ms   "
                      f"ratio {a / b:5.2f}x{alone}", flush=True)
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
