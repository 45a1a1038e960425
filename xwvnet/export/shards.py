"""``xwvnet export``: a store as GeoParquet shards with STAC metadata, or as a plain Zarr copy."""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .. import schema as S
from .._files import local_path
from ..errors import (
    InvalidArgumentError,
    InvalidDataError,
    OutputExistsError,
    OutputLocationError,
    OutputNotFolderError,
)

FORMATS = ("geoparquet", "zarr")
MAX_FILE_BYTES = 512 * 2**20  # about 512 MiB of embeddings per shard (before compression)
_ROW_OVERHEAD = 256  # bytes per row besides the embedding (id, time, footprint WKB, coordinates)
_ITEMSIZE = {"float32": 4, "float16": 2, "int8": 1}


def shard_rows(dim: int, dtype: str, max_file_bytes: int) -> int:
    """Rows per shard so that a shard holds about ``max_file_bytes`` (uncompressed)."""
    return max(1, int(max_file_bytes) // (dim * _ITEMSIZE[dtype] + _ROW_OVERHEAD))


class ExportReport(list):
    """What :func:`export_store` wrote to GeoParquet: the shards then ``collection.json`` (a list of paths), and counts.

    Attributes
    ----------
    rows : int
        Imagettes exported (every one, with or without a position).
    without_position : int
        Of those, imagettes without a position: a null geometry and ``footprint = "unknown"``.
    """

    def __init__(self, paths: list[Path], rows: int, without_position: int) -> None:
        super().__init__(paths)
        self.rows = int(rows)
        self.without_position = int(without_position)

    @property
    def shards(self) -> list[Path]:
        """The GeoParquet files."""
        return list(self[:-1])

    @property
    def collection(self) -> Path:
        """The STAC Collection."""
        return self[-1]

    def summary(self) -> str:
        """One line: rows, shards, rows without a position, the Collection."""
        lost = (f", {self.without_position} without a position (null geometry, footprint 'unknown')"
                if self.without_position else "")
        return f"{self.rows} imagettes in {len(self.shards)} GeoParquet shard(s){lost}, and {self.collection.name}"


_EXPORT_ENTRIES = ("collection.json", "model.json", "parquet")  # and part-NNNNN/ Item folders


def _is_export_entry(path: Path) -> bool:
    name = path.name
    return name in _EXPORT_ENTRIES or (path.is_dir() and name.startswith("part-") and name[5:].isdigit())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # someone else's process: alive
        return True
    return True


def _clear_stale(out: Path, host: str) -> None:
    """Tidy what an export to ``out`` killed on this host left beside it: its half-written folder goes; where it
    died between its two renames (``out`` moved aside, the new export not yet in place), the previous export is
    put back."""
    for kind in ("new", "old"):
        for path in sorted(out.parent.glob(f".{out.name}.xwvnet-{kind}-{host}-*")):
            pid = path.name[len(f".{out.name}.xwvnet-{kind}-{host}-"):].split("-")[0]
            if not pid.isdigit() or _alive(int(pid)):
                continue
            if kind == "old" and not out.exists():
                os.replace(path, out)
            else:
                shutil.rmtree(path, ignore_errors=True)


@contextmanager
def _staged(out: Path, overwrite: bool) -> Iterator[Path]:
    """A new folder beside ``out`` to write into; on success it becomes ``out`` (renames only), else it is removed.

    A previous export at ``out`` stays whole until the new one is complete, and is then replaced; a folder that
    holds anything else than an export is never replaced. The hidden folders' names carry host and process id, so
    that the next export to ``out`` tidies what a killed one left.
    """
    host = socket.gethostname().replace("-", "_")
    _clear_stale(out, host)
    if out.exists() and not out.is_dir():
        raise OutputNotFolderError(f"{out} is a file: give a folder for the export.")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise OutputExistsError(f"{out} is not empty: pass overwrite=True (--overwrite) or another folder.")
        foreign = sorted(p.name for p in out.iterdir() if not _is_export_entry(p))
        if foreign:
            raise OutputExistsError(
                f"{out} holds files that are not an xwvnet export ({', '.join(foreign[:3])}"
                f"{', ...' if len(foreign) > 3 else ''}): export to an empty or new folder instead."
            )
    parent = out.parent
    made = [p for p in [parent, *parent.parents] if not p.exists()]
    parent.mkdir(parents=True, exist_ok=True)
    tag = f"{host}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    stage, old = parent / f".{out.name}.xwvnet-new-{tag}", parent / f".{out.name}.xwvnet-old-{tag}"
    try:
        stage.mkdir()
        yield stage
        if out.exists():
            os.replace(out, old)  # the previous export (or an empty folder), kept until the new one is in place
        try:
            os.replace(stage, out)
        except BaseException:
            if old.exists():
                os.replace(old, out)
            raise
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        for p in made:  # folders made here for the export, deepest first
            with suppress(OSError):
                p.rmdir()
        raise


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
    license: str = "other",
    source_data: Sequence[str] | None = None,
) -> ExportReport | str:
    """Export a store: GeoParquet shards plus STAC metadata in ``out``, or a plain Zarr v3 copy at ``out``.

    Every imagette is exported, those without a position too (a null geometry, ``footprint = "unknown"``, counted
    in the report); a store of 0 imagettes gives a valid, empty export. The GeoParquet export is written into a new
    folder beside ``out`` and renamed onto it when complete: a failure leaves no partial export, and a previous
    export at ``out`` as it was.

    Parameters
    ----------
    store : str, os.PathLike or xarray.Dataset
        An embedding store (path or URL; for ``format="zarr"`` an imagette store too), or a Dataset.
    out : str or os.PathLike
        GeoParquet: the local folder of ``collection.json``, ``model.json`` (the encoder's STAC MLM Item), the shards
        (``parquet/part-00000.parquet`` ...) and their STAC Items (one folder each).
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
        Replace existing output (GeoParquet: a previous export only, never a folder holding other files).
    license : str, default "other"
        GeoParquet: the licence of the embeddings in the STAC Collection.
    source_data : sequence of str, optional
        GeoParquet: the data embedded, for the STAC ``emb:source-data`` links (default: the imagette store the
        embeddings record).

    Returns
    -------
    ExportReport or str
        GeoParquet: the shards and ``collection.json`` (a list), with ``rows``, ``without_position`` and
        ``summary()``. Zarr: where the copy is.

    Raises
    ------
    ValueError
        If ``format`` is unknown, ``max_file_bytes`` is not positive, the store holds no embeddings or ``out`` is
        not a local folder (GeoParquet), or the output exists and ``overwrite`` is False.

    Examples
    --------
    >>> report = xwvnet.export.export_store("embeddings.zarr", "export/", dtype="int8")  # doctest: +SKIP
    >>> print(report.summary())  # doctest: +SKIP
    """
    from .geoparquet import DTYPES, ROW_GROUP, shard_metadata, to_geoparquet
    from .plain import to_plain_zarr
    from .stac import stac_collection

    if format not in FORMATS:
        raise InvalidArgumentError(f"format must be one of {FORMATS}, got {format!r}.")
    if format == "zarr":
        return to_plain_zarr(store, out, snapshot=snapshot, storage_options=storage_options, overwrite=overwrite)
    if dtype not in DTYPES:
        raise InvalidArgumentError(f"dtype must be one of {DTYPES}, got {dtype!r}.")
    from ..io.storage import locate

    if not locate(out).local:  # not Path(out): that would make a local folder called "s3:"
        raise OutputLocationError(
            f"GeoParquet shards are written to a local folder, not {out}: export there and upload the "
            "folder, or use --format zarr for a copy on object storage."
        )
    if isinstance(max_file_bytes, bool) or not isinstance(max_file_bytes, (int, np.integer)) or max_file_bytes < 1:
        raise InvalidArgumentError(f"max_file_bytes must be a positive integer, got {max_file_bytes!r}.")
    if isinstance(store, xr.Dataset):
        ds = store
    else:
        from ..io.store import open_store

        ds = open_store(store, snapshot=snapshot, storage_options=storage_options)
    if S.EMBEDDING not in ds.data_vars:
        raise InvalidDataError(f"{store if not isinstance(store, xr.Dataset) else 'the Dataset'} holds no embeddings "
                               "to export as GeoParquet: give an embedding store (xwvnet embed), or --format zarr.")
    from ..retrieval.compact import decode_embeddings

    ds = decode_embeddings(ds)  # a float16 store (embed --dtype float16): float32 values, lazily, then dtype=
    import pyarrow.parquet as pq

    out = local_path(out, "a GeoParquet export")
    n = ds.sizes[S.IMAGETTE]
    rows = shard_rows(ds.sizes[S.FEATURE], dtype, max_file_bytes)
    group = min(rows, row_group_size or ROW_GROUP)
    with _staged(out, overwrite) as stage:
        shards, unknown = [], 0
        for k, start in enumerate(range(0, max(n, 1), rows)):
            part = ds.isel({S.IMAGETTE: slice(start, start + rows)})
            shard = to_geoparquet(part, stage / "parquet" / f"part-{k:05d}.parquet", dtype=dtype,
                                  row_group_size=group)
            unknown += int(shard_metadata(pq, shard).get("without_position", 0))
            shards.append(shard)
        stac_collection(shards, stage, license=license, source_data=source_data)
    paths = [out / "parquet" / s.name for s in shards] + [out / "collection.json"]
    return ExportReport(paths, n, unknown)
