"""Stores of xwvnet's first format (plain Zarr with chunk records) copied into icechunk stores, every chunk checked.

The first format kept, beside the arrays, text records (``integrity/records/*.tsv``, one ``key size crc32`` line
per chunk object, a file counting only once it ends with ``#commit``) and a commit counter in the root attributes.
:func:`migrate` reads those records once, checks every chunk object of the committed range against them (size and
CRC-32; a chunk without a record is damage too), and only then copies the committed imagettes (and, for embedding
stores, the rows their ``progress/done`` counts) into a new store in one run of commits.
"""

from __future__ import annotations

import math
import os
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
import zarr

from .. import schema as S
from . import store as zs
from .storage import locate

_COUNTER = {"imagettes": "committed", "embeddings": "imagettes"}


def _records(old: Path) -> dict[str, tuple[int, int]]:
    """The committed chunk records of a first-format store: key -> (size, crc32), later files winning."""
    records: dict[str, tuple[int, int]] = {}
    folder = old / "integrity" / "records"
    for file in sorted(folder.glob("*.tsv")) if folder.is_dir() else []:
        lines = file.read_text().splitlines()
        if not lines or lines[-1] != "#commit":
            continue  # a write that never committed
        for line in lines:
            parts = line.split(" ")
            if len(parts) == 3:
                records[parts[0]] = (int(parts[1]), int(parts[2]))
    return records


def _check_chunks(old: Path, group: zarr.Group, n: int, rows: dict[str, int]) -> int:
    """Check every chunk object of the committed range against its record; return how many were checked."""
    records = _records(old)
    if not records:
        raise ValueError(f"{old} has no chunk records: it cannot be checked, so it is not migrated. Re-create the "
                         "store from its sources (`xwvnet ingest` / `xwvnet embed`).")
    checked = 0
    for name, array in group.arrays():
        dims = array.metadata.dimension_names or ()
        if not dims or dims[0] != S.IMAGETTE:
            continue
        length = rows.get(name, n)
        grid = [math.ceil(length / array.chunks[0]), *(math.ceil(s / c) for s, c in zip(array.shape[1:],
                                                                                      array.chunks[1:]))]
        for index in np.ndindex(*grid):
            key = f"{name}/c/" + "/".join(map(str, index))
            size, crc = records.get(key, (None, None))
            path = old / key
            if size == -1 and not path.exists():
                continue  # absent by design (an image grown after this chunk was written)
            data = path.read_bytes() if path.exists() else None
            problem = ("missing" if data is None else "not recorded" if size is None else
                       "size differs from its record" if len(data) != size else
                       "checksum differs from its record" if zlib.crc32(data) & 0xFFFFFFFF != crc else None)
            if problem:
                lo = index[0] * array.chunks[0]
                hi = min(length, lo + array.chunks[0])
                raise zs.DamagedChunkError(
                    f"{old}: chunk {index} of {name!r} is {problem} (imagettes {lo}..{hi - 1}); nothing was migrated. "
                    "Repair the old store with the xwvnet that wrote it, or re-create it "
                    "from its sources.", name, index[0], lo, hi, None)
            checked += 1
    return checked


def migrate(old: str | os.PathLike, new: str | os.PathLike, *, storage_options: dict[str, Any] | None = None
            ) -> int:
    """Copy a store of xwvnet's first format into a new xwvnet store, checking every chunk on the way.

    Parameters
    ----------
    old : str or os.PathLike
        The first-format store (a local folder: that format only lived on local disks).
    new : str, os.PathLike or URL
        The new store (path or URL); it must not exist yet.
    storage_options : dict, optional
        For ``new`` (see :func:`xwvnet.open_store`).

    Returns
    -------
    int
        Chunks checked.

    Raises
    ------
    ValueError
        If ``old`` is not a first-format xwvnet store, or ``new`` already holds something.
    xwvnet.io.store.DamagedChunkError
        If a chunk of ``old`` is missing, unrecorded or differs from its record (nothing is written then).

    Examples
    --------
    >>> migrate("old-imagettes.zarr", "s3://bucket/imagettes.zarr")  # doctest: +SKIP
    """
    old = Path(old)
    try:
        group = zarr.open_group(str(old), mode="r")
    except (FileNotFoundError, zarr.errors.GroupNotFoundError, ValueError) as err:
        raise ValueError(f"{old} is not a Zarr store: nothing to migrate.") from err
    kind = zs.KINDS.get(str(group.attrs.get("format")))
    if kind is None or int(group.attrs.get("version", 0)) != 1:
        raise ValueError(f"{old} is not a store of xwvnet's first format (found {zs.describe(old)}).")
    loc = locate(new, storage_options)
    if zs.repository(loc) is not None or (loc.local and loc.path.exists() and any(loc.path.iterdir())):
        raise ValueError(f"{loc} already holds something ({zs.describe(loc)}); migrate into a new path.")
    n = int(group.attrs.get(_COUNTER[kind.kind], 0))
    done = np.asarray(group["progress/done"][:]) if kind is zs.EMBEDDINGS and "progress" in group else None
    chunk = int(group.attrs.get("chunk", 1))
    checked = _check_chunks(old, group, n, {})
    ds = xr.open_zarr(str(old), consolidated=False, chunks={}).isel({S.IMAGETTE: slice(0, n)})
    ds = ds.assign_coords({k: v.astype(object) for k, v in ds.coords.items() if v.dtype.kind in "TU"})
    record = {"format", "version", "kind", "committed", "imagettes"}
    ds.attrs = {k: v for k, v in ds.attrs.items() if k not in record}
    if kind is zs.IMAGETTES:
        zs.to_store(ds, loc, command=f"migrate from {old}")
        return checked
    attrs = {k: v for k, v in ds.attrs.items() if k != "chunk"}
    zs.extend_embedding_store(loc, ds, chunk_size=chunk, dim=ds.sizes[S.FEATURE], attrs=attrs,
                              embedding_attrs=dict(ds[S.EMBEDDING].attrs))
    writer = zs.EmbeddingWriter(loc, every=float("inf"))
    for k in range(math.ceil(n / chunk)):
        rows = int(done[k]) if done is not None and k < done.size else 0
        if rows:
            lo = k * chunk
            values = ds[S.EMBEDDING][lo : lo + rows].values
            writer.merge(zs.write_embedding_rows(writer.fork(), k, lo, lo, values), k)
    writer.commit()
    return checked
