"""The Zarr imagette store: create, append without duplicates, survive a killed write, open lazily.

Crash safety comes from a commit counter: the root attribute ``committed`` says how many imagettes along the
``imagette`` dimension are complete. It is written only after an append finished, so a killed append leaves a
store whose first ``committed`` imagettes are intact; :func:`open_store` shows only those, and the next
:func:`to_store` trims the unfinished tail before it appends again.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr
import zarr
from tqdm.auto import tqdm

from .. import schema as S
from .quicklook import NoReadableImageError, QuicklookWarning, chunk_length, open_quicklooks, resolve_paths

STORE_FORMAT = "xwvnet-imagette-store"
STORE_VERSION = 1
COORD_CHUNK = 65536  # 1-D variables along `imagette` are small: keep their chunks large
_PAD_VALUE = {S.QUICKLOOK: 0, S.SIGMA0: np.nan}


@dataclass
class StoreReport:
    """What a write did: imagettes added, already present, and skipped with reasons."""

    path: Path
    added: int = 0
    present: int = 0
    skipped: list[str] = field(default_factory=list)
    total: int = 0

    def summary(self) -> str:
        """A short table for people."""
        lines = [
            f"store            {self.path}",
            f"added            {self.added}",
            f"already present  {self.present}",
            f"skipped          {len(self.skipped)}",
            f"total in store   {self.total}",
        ]
        lines += [f"  skipped: {reason}" for reason in self.skipped]
        return "\n".join(lines)


def open_group(path: str | os.PathLike, mode: str = "r+") -> zarr.Group | None:
    """The Zarr group at ``path``, or ``None`` when there is none."""
    try:
        return zarr.open_group(str(path), mode=mode)
    except (FileNotFoundError, zarr.errors.GroupNotFoundError, ValueError):
        return None



def imagette_arrays(group: zarr.Group) -> Iterator[zarr.Array]:
    """The arrays of ``group`` whose first dimension is ``imagette``."""
    for _, array in group.arrays():
        names = array.metadata.dimension_names or ()
        if names and names[0] == S.IMAGETTE:
            yield array


def committed(path: str | os.PathLike) -> int:
    """How many imagettes of the store at ``path`` are complete (0 when there is no store)."""
    group = open_group(path)
    if group is None:
        return 0
    return int(group.attrs.get("committed", 0)) if group.attrs.get("format") == STORE_FORMAT else 0


def open_store(path: str | os.PathLike, chunks: dict | str | None = "store") -> xr.Dataset:
    """Open an imagette store lazily (dask, one chunk per stored chunk), showing only committed imagettes."""
    path = Path(path)
    group = open_group(path)
    if group is None:
        raise ValueError(f"{path} is not a Zarr store; create one with xwvnet.to_store(ds, path) or `xwvnet ingest`.")
    if group.attrs.get("format") != STORE_FORMAT:
        raise ValueError(f"{path} is a Zarr store but not an xwvnet imagette store (no 'format' attribute).")
    ds = xr.open_zarr(path, consolidated=False, chunks={} if chunks == "store" else chunks)
    n = int(group.attrs.get("committed", 0))
    ds = ds.isel({S.IMAGETTE: slice(0, n)})
    strings = {name: var.astype(object) for name, var in ds.variables.items() if var.dtype.kind == "T"}
    ds = ds.assign_coords({k: v for k, v in strings.items() if k in ds.coords})
    for key in ("format", "version", "committed"):
        ds.attrs.pop(key, None)
    return ds


def _stored_ids(path: Path) -> np.ndarray:
    n = committed(path)
    if n == 0:
        return np.array([], dtype=object)
    return np.array([str(i) for i in np.asarray(zarr.open_array(str(path / S.IMAGETTE), mode="r")[:n]).tolist()],
                    dtype=object)


def _prepare(ds: xr.Dataset) -> xr.Dataset:
    """Strings as variable-length, and attrs that describe one read (not the store) dropped."""
    ds = ds.copy()
    for name, var in ds.variables.items():
        if var.dtype.kind in "US":
            ds[name] = var.astype(object)
    ds.attrs = {k: v for k, v in ds.attrs.items() if k != "skipped"}
    return ds


def _image_shape(group: zarr.Group) -> tuple[int, int]:
    for name in S.IMAGE_VARS:
        if name in group:
            return tuple(group[name].shape[1:])
    raise ValueError("the store holds no image variable")


def _fit_image_dims(ds: xr.Dataset, group: zarr.Group) -> xr.Dataset:
    """Pad the batch to the store's image size, or grow the store's image arrays when the batch is larger."""
    lines, samples = _image_shape(group)
    need = (max(lines, ds.sizes.get(S.LINE, 0)), max(samples, ds.sizes.get(S.SAMPLE, 0)))
    if need != (lines, samples):
        for name in S.IMAGE_VARS:
            if name in group:
                group[name].resize((group[name].shape[0], *need))
    pad = {S.LINE: (0, need[0] - ds.sizes[S.LINE]), S.SAMPLE: (0, need[1] - ds.sizes[S.SAMPLE])}
    padded = {
        name: ds[name].pad(pad, constant_values=_PAD_VALUE[name]).astype(ds[name].dtype)
        for name in S.IMAGE_VARS
        if name in ds
    }
    return ds.drop_vars(list(padded)).assign(padded)


def _trim(group: zarr.Group, n: int) -> None:
    """Cut every array along `imagette` back to the committed length (drops an unfinished append)."""
    for array in imagette_arrays(group):
        if array.shape[0] != n:
            array.resize((n, *array.shape[1:]))


def _encoding(ds: xr.Dataset, chunk: int) -> dict:
    enc = {}
    for name, var in ds.variables.items():
        if var.dims and var.dims[0] == S.IMAGETTE:
            first = chunk if var.ndim > 1 else max(chunk, COORD_CHUNK)
            enc[name] = {"chunks": (first, *var.shape[1:])}
    if S.TIME in ds.variables:  # one fixed unit, so that later appends never need another
        enc[S.TIME].update(units="milliseconds since 1970-01-01", dtype="int64")
    return enc


def _check_compatible(ds: xr.Dataset, group: zarr.Group) -> xr.Dataset:
    stored = {name for name, _ in group.arrays()}
    mine = set(map(str, ds.variables)) - {S.LINE, S.SAMPLE}
    if stored - mine or mine - stored:
        raise ValueError(
            f"the imagettes to append do not have the store's variables: missing {sorted(stored - mine)}, "
            f"extra {sorted(mine - stored)}. Make them match (add or drop variables) or write to a new store."
        )
    if S.LABEL in ds.dims:
        codes = [str(code) for code in np.asarray(group[S.LABEL][:]).tolist()]
        if {str(code) for code in ds[S.LABEL].values} != set(codes):
            raise ValueError(f"tag codes differ from the store's {codes}: found {list(ds[S.LABEL].values)}")
        ds = ds.sel({S.LABEL: np.array(codes, dtype=object)})
    return ds


def _write_batch(batch: xr.Dataset, path: Path, chunk: int) -> None:
    group = open_group(path)
    n = committed(path)
    if group is None or n == 0:
        batch.to_zarr(path, mode="w", consolidated=False, encoding=_encoding(batch, chunk))
        group = zarr.open_group(str(path), mode="r+")
    else:
        _trim(group, n)
        batch = _fit_image_dims(_check_compatible(batch, group), group)
        batch.attrs = dict(group.attrs)  # to_zarr rewrites the root attributes: keep the old commit until the new
        batch.drop_vars([S.LABEL], errors="ignore").to_zarr(
            path, mode="a", append_dim=S.IMAGETTE, consolidated=False
        )
    # the commit: only now do the new imagettes count
    group.attrs.update(format=STORE_FORMAT, version=STORE_VERSION, committed=n + batch.sizes[S.IMAGETTE])


def to_store(
    ds: xr.Dataset, path: str | os.PathLike, *, chunk: int | None = None, progress: bool = False
) -> StoreReport:
    """Write imagettes to a Zarr store, creating it or appending; ids already in the store are skipped.

    Works batch by batch (a few chunks at a time), so a lazy Dataset of any size is never loaded whole. ``chunk``
    is the number of imagettes per stored chunk (default: a few MB of pixels).
    """
    S.validate(ds)
    path = Path(path)
    stored = _stored_ids(path)
    ids = ds[S.IMAGETTE].values.astype(object)
    fresh = ~np.isin(ids, stored)
    report = StoreReport(path=path, present=int((~fresh).sum()), skipped=list(ds.attrs.get("skipped", [])))
    ds = _prepare(ds.isel({S.IMAGETTE: np.flatnonzero(fresh)}))
    n = ds.sizes[S.IMAGETTE]
    if n:
        image = S.image_var(ds)
        if chunk is None:
            per_imagette = ds[image].dtype.itemsize * ds.sizes[S.LINE] * ds.sizes[S.SAMPLE]
            chunk = committed_chunk(path) or chunk_length(per_imagette)
        step = chunk * max(1, 64 // chunk)
        for start in tqdm(range(0, n, step), desc="writing", unit="batch", disable=not progress):
            _write_batch(ds.isel({S.IMAGETTE: slice(start, start + step)}).load(), path, chunk)
            report.added += min(step, n - start)
    report.total = committed(path)
    return report


def committed_chunk(path: str | os.PathLike) -> int | None:
    """The chunk length along `imagette` of an existing store's image variable, or ``None``."""
    group = open_group(path)
    if group is None:
        return None
    for name in S.IMAGE_VARS:
        if name in group:
            return int(group[name].chunks[0])
    return None


def ingest(
    sources: str | os.PathLike | Iterable[str | os.PathLike],
    store: str | os.PathLike,
    *,
    labels: str | os.PathLike | None = None,
    batch: int = 256,
    progress: bool = False,
) -> StoreReport:
    """Read quicklooks into a store, batch by batch; files whose id is already stored are not even read.

    Re-running the same ingest after it was killed completes it: what was committed is skipped.
    """
    store = Path(store)
    files = resolve_paths(sources)
    stored = set(_stored_ids(store).tolist())
    todo = [f for f in files if f.name.split(".")[0] not in stored]
    report = StoreReport(path=store, present=len(files) - len(todo))
    for start in tqdm(range(0, len(todo), batch), desc="ingest", unit="batch", disable=not progress):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", QuicklookWarning)
            try:
                ds = open_quicklooks(todo[start : start + batch], labels=labels)
            except NoReadableImageError as err:  # a batch with no readable file at all
                report.skipped.extend(err.skipped)
                continue
        written = to_store(ds, store)
        report.added += written.added
        report.present += written.present
        report.skipped.extend(written.skipped)
    report.total = committed(store)
    return report


def add_variables(ds: xr.Dataset, path: str | os.PathLike, names: Iterable[str] | None = None) -> None:
    """Write new per-imagette variables (e.g. ``embedding``) into an existing store, beside its imagettes.

    ``ds`` must hold exactly the store's committed imagettes, in the store's order (as :func:`open_store` gives
    them); variables already in the store are overwritten whole.
    """
    path = Path(path)
    stored = _stored_ids(path)
    ids = ds[S.IMAGETTE].values.astype(object)
    if len(ids) != len(stored) or not (ids == stored).all():
        raise ValueError(
            f"the Dataset's imagettes ({len(ids)}) are not the store's committed imagettes ({len(stored)}) in the "
            "store's order; start from xwvnet.open_store(path) and keep every imagette."
        )
    names = list(names) if names is not None else [n for n in ds.data_vars if S.IMAGETTE in ds[n].dims]
    out = _prepare(ds[names].drop_vars([c for c in ds[names].coords if c != S.IMAGETTE]))
    out = out.drop_vars(S.IMAGETTE)
    group = zarr.open_group(str(path), mode="r+")
    n = committed(path)
    _trim(group, n)
    existing = [name for name in names if name in group]
    for name in existing:
        del group[name]
    chunk = committed_chunk(path) or n
    out.attrs = dict(group.attrs)  # to_zarr rewrites the root attributes: they must keep the commit counter
    out.to_zarr(path, mode="a", consolidated=False, encoding=_encoding(out, chunk))
