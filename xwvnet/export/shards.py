"""``xwvnet export``: a store as GeoParquet shards with a STAC Collection, or as a plain Zarr copy."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .. import schema as S

FORMATS = ("geoparquet", "zarr")
MAX_FILE_BYTES = 512 * 2**20  # about 512 MiB of embeddings per shard (before compression)
_ROW_OVERHEAD = 256  # bytes per row besides the embedding (id, time, footprint WKB, coordinates)
_ITEMSIZE = {"float32": 4, "float16": 2, "int8": 1}


def shard_rows(dim: int, dtype: str, max_file_bytes: int) -> int:
    """Rows per shard so that a shard holds about ``max_file_bytes`` (uncompressed)."""
    return max(1, int(max_file_bytes) // (dim * _ITEMSIZE[dtype] + _ROW_OVERHEAD))


def export_store(
    store: str | os.PathLike | xr.Dataset,
    out: str | os.PathLike,
    *,
    format: str = "geoparquet",
    dtype: str = "float32",
    max_file_bytes: int = MAX_FILE_BYTES,
    row_group_size: int | None = None,
    snapshot: str | None = None,
    storage_options: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> list[Path] | str:
    """Export a store: GeoParquet shards plus a STAC Collection in ``out``, or a plain Zarr v3 copy at ``out``.

    Parameters
    ----------
    store : str, os.PathLike or xarray.Dataset
        An embedding store (path or URL; for ``format="zarr"`` an imagette store too), or a Dataset.
    out : str or os.PathLike
        GeoParquet: the local folder of ``collection.json``, the shards (``parquet/part-00000.parquet`` ...) and
        their STAC Items (one folder each).
        Zarr: the plain store written (path or URL).
    format : {"geoparquet", "zarr"}, default "geoparquet"
        What to write.
    dtype : {"float32", "float16", "int8"}, default "float32"
        GeoParquet: the embedding column's type (see :func:`xwvnet.to_geoparquet`).
    max_file_bytes : int, optional
        GeoParquet: about this many bytes of rows per shard (before compression).
    row_group_size : int, optional
        GeoParquet: rows per row group (default: that of :func:`xwvnet.to_geoparquet`, at most a shard).
    snapshot : str, optional
        Export the store as of this commit.
    storage_options : dict, optional
        Credentials and endpoint of the store (and of a Zarr ``out`` on object storage).
    overwrite : bool, default False
        Replace existing output.

    Returns
    -------
    list of pathlib.Path or str
        The shards and ``collection.json`` (GeoParquet), or where the Zarr copy is.

    Raises
    ------
    ValueError
        If ``format`` is unknown, ``max_file_bytes`` is not positive, the store holds no embeddings or ``out`` is
        not a local folder (GeoParquet), or the output exists and ``overwrite`` is False.

    Examples
    --------
    >>> xwvnet.export.export_store("embeddings.zarr", "export/", dtype="int8")  # doctest: +SKIP
    """
    from .geoparquet import DTYPES, ROW_GROUP, to_geoparquet
    from .plain import to_plain_zarr
    from .stac import stac_collection

    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {format!r}.")
    if format == "zarr":
        return to_plain_zarr(store, out, snapshot=snapshot, storage_options=storage_options, overwrite=overwrite)
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}.")
    from ..io.storage import locate

    if not locate(out).local:  # not Path(out): that would make a local folder called "s3:"
        raise ValueError(f"GeoParquet shards are written to a local folder, not {out}: export there and upload the "
                         "folder, or use --format zarr for a copy on object storage.")
    if isinstance(max_file_bytes, bool) or not isinstance(max_file_bytes, (int, np.integer)) or max_file_bytes < 1:
        raise ValueError(f"max_file_bytes must be a positive integer, got {max_file_bytes!r}.")
    if isinstance(store, xr.Dataset):
        ds = store
    else:
        from ..io.store import open_store

        ds = open_store(store, snapshot=snapshot, storage_options=storage_options)
    if S.EMBEDDING not in ds.data_vars:
        raise ValueError(f"{store if not isinstance(store, xr.Dataset) else 'the Dataset'} holds no embeddings "
                         "to export as GeoParquet: give an embedding store (xwvnet embed), or --format zarr.")
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise ValueError(f"{out} is not empty: pass overwrite=True (--overwrite) or another folder.")
    out.mkdir(parents=True, exist_ok=True)
    n = ds.sizes[S.IMAGETTE]
    rows = shard_rows(ds.sizes[S.FEATURE], dtype, max_file_bytes)
    group = min(rows, row_group_size or ROW_GROUP)
    shards = []
    for k, start in enumerate(range(0, max(n, 1), rows)):
        part = ds.isel({S.IMAGETTE: slice(start, start + rows)})
        shards.append(to_geoparquet(part, out / "parquet" / f"part-{k:05d}.parquet", dtype=dtype, row_group_size=group,
                                    overwrite=overwrite))
    return [*shards, stac_collection(shards, out)]
