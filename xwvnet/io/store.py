"""The one Zarr layer of xwvnet: imagette stores and embedding stores are written and read here, nowhere else.

Two kinds of store, told apart by the *format record* in their root attributes (``format``, ``version``,
``kind``), which is written when the store is created:

- the **imagette store** (``kind="imagettes"``), written by :func:`to_store` and :func:`ingest`: image variables,
  ``valid_lines``/``valid_samples``, tags and the imagette coordinates. Its commit record is the root attribute
  ``committed``: how many imagettes along ``imagette`` are complete. It is written only after an append finished,
  so a killed append leaves a store whose first ``committed`` imagettes are intact; :func:`open_store` shows only
  those, and the next write trims the unfinished tail before it appends again.
- the **embedding store** (``kind="embeddings"``), written for :func:`xwvnet.archive.embed_store`:
  ``embedding(imagette, feature)`` plus the input's imagette coordinates, in the input's order. Its commit records
  are the root attribute ``imagettes`` (coordinates written for that many imagettes, set after they landed) and the
  array ``progress/done``: ``done[k]`` imagettes of chunk ``k`` hold their embeddings, set only after the region
  write of that chunk returned (:func:`write_embedding_chunk`).

Both kinds share one coordinate chunking and time encoding (:func:`encoding`), one trimming of unfinished appends
(:func:`trim`), one string decoding on read, one id reader (:func:`ids`) and one opener (:func:`open_store`, or
:func:`open_stores` for several stores joined on imagette ids).

Writers never corrupt:

- **one writer per store**: every writer holds the store's writer lease (:mod:`xwvnet.io.lease`) for its whole run;
  a second writer is refused with the holder's name, or waits (``wait=`` seconds); a killed writer's lease is taken
  over once stale. The tasks of one :func:`xwvnet.embed_store` run write in parallel under their client's lease.
- **every chunk accounted for**: every chunk object written is recorded (key, size, CRC-32) with its commit
  (:mod:`xwvnet.io.integrity`); every read checks it, so a missing or damaged chunk is an error that names the
  variable, the chunk and its imagettes, never a silent fill value. :func:`xwvnet.io.integrity.verify` checks a
  whole store. A store written before chunk records existed is adopted by its next writer (its chunks are
  recorded as found).
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr
import zarr
from tqdm.auto import tqdm

from .. import schema as S
from . import integrity as I
from .lease import check_token, writer_lease
from .quicklook import NoReadableImageError, QuicklookWarning, chunk_length, open_quicklooks, resolve_paths

COORD_CHUNK = 65536  # 1-D variables along `imagette` are small: keep their chunks large
COORD_BLOCK = 1 << 20  # imagettes of coordinates copied per step into an embedding store (bounded memory)
TIME_UNITS = "milliseconds since 1970-01-01"  # one fixed unit, so that later appends never need another
PROGRESS = "progress"  # subgroup of an embedding store with the per-chunk commit counts (hidden from xr.open_zarr)
DONE = "done"
_PAD_VALUE = {S.QUICKLOOK: 0, S.SIGMA0: np.nan}


@dataclass(frozen=True)
class StoreKind:
    """One kind of xwvnet store: its format record and the root attribute that counts its committed imagettes.

    Parameters
    ----------
    kind : str
        Short name written as the ``kind`` root attribute (``"imagettes"`` or ``"embeddings"``).
    format : str
        The ``format`` root attribute that identifies the kind (also in stores written before ``kind`` existed).
    version : int
        Layout version written as ``version``; a store of a newer version is refused rather than misread.
    counter : str
        Root attribute holding the number of committed imagettes.
    label : str
        The kind in words, for error messages.
    """

    kind: str
    format: str
    version: int
    counter: str
    label: str

    def record(self, n: int) -> dict[str, str | int]:
        """The root attributes that say "this is a store of this kind with ``n`` committed imagettes".

        Parameters
        ----------
        n : int
            Committed imagettes.

        Returns
        -------
        dict
            ``format``, ``version``, ``kind`` and the counter attribute.
        """
        return {"format": self.format, "version": self.version, "kind": self.kind, self.counter: int(n)}


IMAGETTES = StoreKind("imagettes", "xwvnet-imagette-store", 1, "committed", "imagette store")
EMBEDDINGS = StoreKind("embeddings", "xwvnet-embedding-store", 1, "imagettes", "embedding store")
KINDS: dict[str, StoreKind] = {k.format: k for k in (IMAGETTES, EMBEDDINGS)}


@dataclass
class StoreReport:
    """What a write did: imagettes added, already present, and skipped with reasons.

    Parameters
    ----------
    path : Path
        The store written.
    added : int, default 0
        Imagettes appended by this write.
    present : int, default 0
        Imagettes whose id was already in the store (not written again).
    skipped : list of str
        Inputs that could not be read, each with its reason.
    total : int, default 0
        Committed imagettes in the store after the write.
    repaired : int, default 0
        Damaged chunks rewritten from their source files (by :func:`ingest`).
    damaged : list of str
        Damaged chunks that could not be rewritten, each with its reason and what to do.
    warnings : list of str
        The warnings of the run, summarised (one line per kind, see :func:`xwvnet.io.quicklook.summarize_warnings`).
    """

    path: Path
    added: int = 0
    present: int = 0
    skipped: list[str] = field(default_factory=list)
    total: int = 0
    repaired: int = 0
    damaged: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """A short table for people.

        Returns
        -------
        str
            One line per count, then one line per skipped input.
        """
        lines = [
            f"store            {self.path}",
            f"added            {self.added}",
            f"already present  {self.present}",
            f"skipped          {len(self.skipped)}",
            f"total in store   {self.total}",
        ]
        if self.repaired or self.damaged:
            lines += [f"repaired chunks  {self.repaired}", f"damaged chunks   {len(self.damaged)} left"]
        lines += [f"  skipped: {reason}" for reason in self.skipped]
        lines += [f"  damaged: {reason}" for reason in self.damaged]
        if self.warnings:
            lines.append("warnings:")
            lines += [f"  {line}" for line in self.warnings]
        return "\n".join(lines)


# ---- what is at a path ---------------------------------------------------------------------------------------


def open_group(path: str | os.PathLike, mode: str = "r+") -> zarr.Group | None:
    """The Zarr group at ``path``, or ``None`` when there is none.

    Parameters
    ----------
    path : str or os.PathLike
        Where the store would be.
    mode : str, default "r+"
        Zarr open mode (``"r"`` to read only, ``"r+"`` to write into an existing group).

    Returns
    -------
    zarr.Group or None
        ``None`` for a missing path, a file, or a folder without Zarr group metadata.
    """
    try:
        return zarr.open_group(str(path), mode=mode)
    except (FileNotFoundError, NotADirectoryError, zarr.errors.GroupNotFoundError, ValueError):
        return None


def _kind_of(group: zarr.Group) -> StoreKind | None:
    return KINDS.get(str(group.attrs.get("format")))


def store_kind(path: str | os.PathLike) -> str | None:
    """The kind of xwvnet store at ``path``, read from its format record.

    Parameters
    ----------
    path : str or os.PathLike
        Any path.

    Returns
    -------
    str or None
        ``"imagettes"``, ``"embeddings"``, or ``None`` when ``path`` holds no xwvnet store.

    Examples
    --------
    >>> store_kind("does-not-exist.zarr") is None
    True
    """
    group = open_group(path, mode="r")
    kind = None if group is None else _kind_of(group)
    return None if kind is None else kind.kind


def describe(path: str | os.PathLike) -> str:
    """What ``path`` holds, in words, for error messages that say what was found.

    Parameters
    ----------
    path : str or os.PathLike
        Any path.

    Returns
    -------
    str
        E.g. ``"nothing (the path does not exist)"``, ``"a Zarr group without an xwvnet format record"``,
        ``"an xwvnet embedding store"``.
    """
    path = Path(path)
    group = open_group(path, mode="r")
    if group is None:
        if not path.exists():
            return "nothing (the path does not exist)"
        if path.is_dir():
            return "a folder that is not a Zarr store" if any(path.iterdir()) else "an empty folder"
        return "a file that is not a Zarr store"
    kind = _kind_of(group)
    if kind is not None:
        return f"an xwvnet {kind.label} (format version {group.attrs.get('version')})"
    members = sorted(name for name, _ in group.members())
    shown = ", ".join(members[:5]) + (", ..." if len(members) > 5 else "")
    return f"a Zarr group without an xwvnet format record (format={group.attrs.get('format')!r}, members: [{shown}])"


def _check_version(group: zarr.Group, kind: StoreKind, path: Path) -> None:
    version = int(group.attrs.get("version", 0))
    if version > kind.version:
        raise ValueError(
            f"{path} is an xwvnet {kind.label} of format version {version}, newer than this xwvnet reads "
            f"({kind.version}). Upgrade xwvnet to read or extend it."
        )


def check_target(path: str | os.PathLike, kind: StoreKind) -> int:
    """Make sure a writer of ``kind`` may write at ``path``; return how many imagettes are committed there.

    A writer never overwrites what it did not write: a path that holds anything other than a store of ``kind``
    (another kind of xwvnet store, a foreign Zarr group, a folder with files, a file) is refused. Missing paths,
    empty folders and empty Zarr groups are fine (0 committed).

    Parameters
    ----------
    path : str or os.PathLike
        The output path.
    kind : StoreKind
        :data:`IMAGETTES` or :data:`EMBEDDINGS`.

    Returns
    -------
    int
        Committed imagettes of the existing store, 0 when there is none yet.

    Raises
    ------
    ValueError
        If ``path`` holds something else, or a store of a newer format version.
    """
    path = Path(path)
    group = open_group(path, mode="r")
    if group is None:
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise ValueError(
                f"{path} exists and is not a Zarr store ({describe(path)}); refusing to overwrite it. "
                "Choose a new path."
            )
        return 0
    found = _kind_of(group)
    if found is None and not dict(group.attrs) and not any(True for _ in group.members()):
        return 0  # an empty group: nothing to lose
    if found is not kind:
        raise ValueError(
            f"{path} is a Zarr store but not an xwvnet {kind.label} (found {describe(path)}); refusing to "
            "overwrite it. Choose a new path."
        )
    _check_version(group, kind, path)
    return int(group.attrs.get(kind.counter, 0))


def committed(path: str | os.PathLike) -> int:
    """How many imagettes of the xwvnet store at ``path`` are committed (0 when there is no store).

    Parameters
    ----------
    path : str or os.PathLike
        An imagette store or an embedding store.

    Returns
    -------
    int
        The store's commit counter (``committed`` or ``imagettes``), 0 for anything that is not an xwvnet store.
    """
    group = open_group(path, mode="r")
    kind = None if group is None else _kind_of(group)
    return 0 if kind is None else int(group.attrs.get(kind.counter, 0))


def committed_chunk(path: str | os.PathLike) -> int | None:
    """The chunk length along ``imagette`` of an existing store, or ``None``.

    Parameters
    ----------
    path : str or os.PathLike
        An imagette store (chunk of its image variable) or an embedding store (its ``chunk`` attribute).

    Returns
    -------
    int or None
        ``None`` when there is no store or it holds no image variable yet.
    """
    group = open_group(path, mode="r")
    if group is None:
        return None
    if _kind_of(group) is EMBEDDINGS and "chunk" in group.attrs:
        return int(group.attrs["chunk"])
    for name in S.IMAGE_VARS:
        if name in group:
            return int(group[name].chunks[0])
    return None


def root_attrs(path: str | os.PathLike) -> dict[str, object]:
    """The root attributes of the store at ``path`` (format record included); empty when there is no store.

    Parameters
    ----------
    path : str or os.PathLike
        Any path.

    Returns
    -------
    dict
        A copy: changing it does not change the store.
    """
    group = open_group(path, mode="r")
    return {} if group is None else dict(group.attrs)


def ids(path: str | os.PathLike, start: int = 0, stop: int | None = None) -> np.ndarray:
    """Imagette ids ``start:stop`` of a store as stored (committed or not), as Python strings.

    Parameters
    ----------
    path : str or os.PathLike
        An imagette store or an embedding store.
    start : int, default 0
        First position along ``imagette``.
    stop : int, optional
        End position (exclusive); default the end of the stored array.

    Returns
    -------
    numpy.ndarray
        Object array of ``str``.
    """
    group = checked_group(path)
    values = np.asarray(group[S.IMAGETTE][start:stop]).tolist()
    return np.array([str(v) for v in values], dtype=object)


def checked_store(path: str | os.PathLike) -> I.Checker:
    """A read-only Zarr store of ``path`` that refuses missing and damaged chunks (see :mod:`xwvnet.io.integrity`).

    Parameters
    ----------
    path : str or os.PathLike
        An xwvnet store.

    Returns
    -------
    xwvnet.io.integrity.Checker
        For ``xarray.open_zarr`` or ``zarr.open_group``; a bad chunk raises
        :class:`~xwvnet.io.integrity.DamagedChunkError` naming it and its imagettes.
    """
    group = zarr.open_group(str(path), mode="r")
    return I.checking(path, I.geometry(group, (_kind_of(group) or IMAGETTES).kind))


def checked_group(path: str | os.PathLike) -> zarr.Group:
    """The root group of ``path`` read through :func:`checked_store`.

    Parameters
    ----------
    path : str or os.PathLike
        An xwvnet store.

    Returns
    -------
    zarr.Group
        Read-only.
    """
    return zarr.open_group(store=checked_store(path), mode="r")


def _committed_ids(path: Path) -> np.ndarray:
    n = committed(path)
    return ids(path, 0, n) if n else np.array([], dtype=object)


# ---- shared pieces: encoding, trimming, strings --------------------------------------------------------------


def imagette_arrays(group: zarr.Group) -> Iterator[zarr.Array]:
    """The arrays of ``group`` whose first dimension is ``imagette`` (those that grow with each append).

    Parameters
    ----------
    group : zarr.Group
        A store's root group.

    Returns
    -------
    Iterator of zarr.Array
        Each array along ``imagette``, in turn.
    """
    for _, array in group.arrays():
        names = array.metadata.dimension_names or ()
        if names and names[0] == S.IMAGETTE:
            yield array


def trim(group: zarr.Group, n: int) -> None:
    """Cut every array along ``imagette`` back to ``n`` (drops what an unfinished append left behind).

    Parameters
    ----------
    group : zarr.Group
        A store's root group, opened for writing.
    n : int
        The committed length.

    Returns
    -------
    None
    """
    for array in imagette_arrays(group):
        if array.shape[0] != n:
            array.resize((n, *array.shape[1:]))


def encoding(ds: xr.Dataset, chunk: int) -> dict[str, dict[str, object]]:
    """Zarr encoding of a new store: ``chunk`` imagettes per chunk of an N-d variable, large 1-D chunks, fixed time.

    Parameters
    ----------
    ds : xarray.Dataset
        What is written first.
    chunk : int
        Imagettes per stored chunk of the image (or embedding) variables.

    Returns
    -------
    dict
        ``{name: {"chunks": ..., ...}}`` for ``Dataset.to_zarr(encoding=...)``; ``time`` is stored as int64
        milliseconds since 1970, so that every later append uses the same unit.
    """
    enc: dict[str, dict[str, object]] = {}
    for name, var in ds.variables.items():
        if var.dims and var.dims[0] == S.IMAGETTE:
            first = chunk if var.ndim > 1 else max(chunk, COORD_CHUNK)
            enc[str(name)] = {"chunks": (first, *var.shape[1:])}
    if S.TIME in ds.variables:
        enc.setdefault(S.TIME, {}).update(units=TIME_UNITS, dtype="int64")
    return enc


def _decode_strings(ds: xr.Dataset) -> xr.Dataset:
    """Zarr v3 variable-length strings (numpy ``StringDType``, kind "T") as object arrays, as xwvnet expects."""
    strings = {name: var.astype(object) for name, var in ds.variables.items() if var.dtype.kind == "T"}
    return ds.assign_coords({k: v for k, v in strings.items() if k in ds.coords}).assign(
        {k: v for k, v in strings.items() if k not in ds.coords}
    )


def _as_written(ds: xr.Dataset) -> xr.Dataset:
    """Strings as variable-length, and attrs that describe one read (not the store) dropped."""
    ds = ds.copy()
    for name, var in ds.variables.items():
        if var.dtype.kind in "US":
            ds[name] = var.astype(object)
    ds.attrs = {k: v for k, v in ds.attrs.items() if k != "skipped"}
    if S.TIME in ds.variables and ds[S.TIME].dtype.kind == "M":
        # stored times are whole milliseconds (TIME_UNITS): floor finer times here, or an append would write
        # microsecond counts under a millisecond unit
        ds = ds.assign_coords({S.TIME: ds[S.TIME].dt.floor("ms").assign_attrs(ds[S.TIME].attrs)})
    return ds


# ---- opening ---------------------------------------------------------------------------------------------------


def _open_committed(path: Path, group: zarr.Group, n: int, chunks: dict[str, int] | str | None,
                    store: I.Checker) -> xr.Dataset:
    """The store cut to its first ``n`` imagettes, without writing to it.

    An append killed half-way can leave the arrays along ``imagette`` at different lengths (some grown, some not),
    which one ``xr.open_zarr`` refuses; then the arrays of each length are opened apart, cut, and joined.
    """
    cut = {S.IMAGETTE: slice(0, n)}
    try:
        return xr.open_zarr(store, consolidated=False, chunks=chunks).isel(cut)
    except ValueError:
        if len({a.shape[0] for a in imagette_arrays(group)}) <= 1:
            raise  # not a ragged store: some other problem, for xarray to tell
    by_length: dict[int | None, list[str]] = {}
    coords = set(str(group.attrs.get("coordinates", "")).split())
    for name, array in group.arrays():
        dims = array.metadata.dimension_names or ()
        by_length.setdefault(array.shape[0] if dims and dims[0] == S.IMAGETTE else None, []).append(name)
        coords.update(str(array.attrs.get("coordinates", "")).split())
    lengths = [length for length in by_length if length is not None]
    every = {name for names in by_length.values() for name in names}
    parts = []
    for i, length in enumerate(lengths):
        keep = set(by_length[length]) | set(by_length.get(None, []) if i == 0 else [])
        part = xr.open_zarr(store, consolidated=False, chunks=chunks, drop_variables=sorted(every - keep))
        parts.append(part.isel(cut))
    ds = xr.merge(parts, compat="override", join="exact", combine_attrs="override")
    return ds.set_coords([name for name in coords if name in ds.data_vars])


def open_store(path: str | os.PathLike, chunks: dict[str, int] | str | None = "store") -> xr.Dataset:
    """Open an xwvnet store of either kind lazily, showing only its committed imagettes.

    The kind (imagette store of :func:`to_store` / ``xwvnet ingest``, or embedding store of
    :func:`xwvnet.embed_store` / ``xwvnet embed``) is read from the store's format record. Imagettes appended by
    a write that was killed before its commit are not shown. In an embedding store, chunks not yet embedded read
    as NaN (:func:`xwvnet.archive.status` says how far a run got).

    Parameters
    ----------
    path : str or os.PathLike
        The store.
    chunks : dict, str or None, default "store"
        ``"store"``: one dask chunk per stored chunk; anything else is passed to :func:`xarray.open_zarr`
        (``None`` loads numpy arrays on access).

    Returns
    -------
    xarray.Dataset
        The store's variables along ``imagette`` (strings as Python objects); the root attributes other than the
        format record are in ``attrs``.

    Raises
    ------
    ValueError
        If ``path`` is not a Zarr store, is a Zarr store that is not an xwvnet store (the message says what was
        found), or was written by a newer xwvnet.
    xwvnet.io.integrity.DamagedChunkError
        When a chunk read (at once, or later when the lazy arrays are computed) is missing or damaged: the error
        names the variable, the chunk and its imagettes, and says to run ``xwvnet verify`` and re-ingest/re-embed.

    Examples
    --------
    >>> import xwvnet
    >>> ds = xwvnet.open_store("imagettes.zarr")  # doctest: +SKIP
    >>> emb = xwvnet.open_store("embeddings.zarr")  # doctest: +SKIP
    """
    path = Path(path)
    group = open_group(path, mode="r")
    if group is None:
        raise ValueError(
            f"{path} is not a Zarr store (found {describe(path)}); create one with xwvnet.to_store(ds, path) or "
            "`xwvnet ingest`."
        )
    kind = _kind_of(group)
    if kind is None:
        raise ValueError(
            f"{path} is a Zarr store but not an xwvnet imagette store or embedding store (found {describe(path)}). "
            "Open it with xarray.open_zarr, or write an xwvnet store with xwvnet.to_store or `xwvnet ingest`."
        )
    _check_version(group, kind, path)
    n = int(group.attrs.get(kind.counter, 0))
    store = I.checking(path, I.geometry(group, kind.kind))
    ds = _decode_strings(_open_committed(path, group, n, {} if chunks == "store" else chunks, store))
    record = kind.record(0)
    ds.attrs = {k: v for k, v in ds.attrs.items() if k not in record}
    return ds


def open_stores(
    paths: str | os.PathLike | Sequence[str | os.PathLike], chunks: dict[str, int] | str | None = "store"
) -> xr.Dataset:
    """Open several xwvnet stores joined on imagette ids.

    E.g. embeddings with the imagettes and targets they came from (what ``xwvnet evaluate`` reads). Only imagettes
    present in every store are kept, in the first store's order; a variable (or coordinate) in several stores is
    taken from the first store that has it, and so are the attributes.

    Parameters
    ----------
    paths : str, os.PathLike or sequence of them
        Imagette stores and/or embedding stores.
    chunks : dict, str or None, default "store"
        As for :func:`open_store`.

    Returns
    -------
    xarray.Dataset
        The joined stores, lazy.

    Raises
    ------
    ValueError
        If no path is given, a path is not an xwvnet store (see :func:`open_store`), or the stores share no
        imagette id.

    Examples
    --------
    >>> ds = open_stores(["imagettes.zarr", "embeddings.zarr"])  # doctest: +SKIP
    >>> ds["embedding"], ds["quicklook"]  # doctest: +SKIP
    """
    paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not paths:
        raise ValueError("give at least one store to open.")
    opened = [open_store(p, chunks) for p in paths]
    joined = xr.merge(opened, join="inner", compat="override", combine_attrs="override")
    first = opened[0].indexes[S.IMAGETTE]
    order = first[first.isin(joined.indexes[S.IMAGETTE])]
    if len(order) == 0 and any(d.sizes[S.IMAGETTE] for d in opened):
        sizes = ", ".join(f"{p} ({d.sizes[S.IMAGETTE]})" for p, d in zip(paths, opened))
        raise ValueError(f"the stores share no imagette id: {sizes}. Join stores made from the same imagettes.")
    return joined.sel({S.IMAGETTE: order})


# ---- the imagette store: write ---------------------------------------------------------------------------------


def _image_shape(group: zarr.Group) -> tuple[int, int]:
    for name in S.IMAGE_VARS:
        if name in group:
            return tuple(group[name].shape[1:])
    raise ValueError("the store holds no image variable")


def _fit_image_dims(ds: xr.Dataset, group: zarr.Group, log: I.RecordLog | None = None, n: int = 0) -> xr.Dataset:
    """Pad the batch to the store's image size, or grow the store's image arrays when the batch is larger.

    When the arrays grow, the new chunks beside the first ``n`` imagettes are never written (they read as the pad
    value): ``log`` records them as absent by design.
    """
    lines, samples = _image_shape(group)
    need = (max(lines, ds.sizes.get(S.LINE, 0)), max(samples, ds.sizes.get(S.SAMPLE, 0)))
    if need != (lines, samples):
        for name in S.IMAGE_VARS:
            if name in group:
                array = group[name]
                c, cl, cs = array.chunks
                old = (math.ceil(lines / cl), math.ceil(samples / cs))
                new = (math.ceil(need[0] / cl), math.ceil(need[1] / cs))
                for i in range(math.ceil(n / c)) if log is not None else ():
                    for bl in range(new[0]):
                        for bs in range(new[1]):
                            if bl >= old[0] or bs >= old[1]:
                                log.add(f"{name}/c/{i}/{bl}/{bs}", I.ABSENT, 0)
                array.resize((array.shape[0], *need))
    pad = {S.LINE: (0, need[0] - ds.sizes[S.LINE]), S.SAMPLE: (0, need[1] - ds.sizes[S.SAMPLE])}
    padded = {
        name: ds[name].pad(pad, constant_values=_PAD_VALUE[name]).astype(ds[name].dtype)
        for name in S.IMAGE_VARS
        if name in ds
    }
    return ds.drop_vars(list(padded)).assign(padded)


def _check_batch(ds: xr.Dataset, group: zarr.Group) -> xr.Dataset:
    """The batch must have the store's variables and tag codes (tags reordered to the store's order)."""
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
    """Append one loaded batch (creating the store for the first), record its chunks, then commit it."""
    n = committed(path)
    log = I.RecordLog(path)
    target = I.recording(path, log)
    try:
        if n == 0:  # the format record goes in with the group, so a killed first batch leaves a recognisable store
            batch.attrs = {**batch.attrs, **IMAGETTES.record(0)}
            batch.to_zarr(target, mode="w", consolidated=False, encoding=encoding(batch, chunk),
                          write_empty_chunks=True)
            group = zarr.open_group(str(path), mode="r+")
        else:
            group = zarr.open_group(str(path), mode="r+")
            trim(group, n)
            batch = _fit_image_dims(_check_batch(batch, group), group, log, n)
            batch.attrs = dict(group.attrs)  # to_zarr rewrites the root attributes: keep the old commit until the new
            batch.drop_vars([S.LABEL], errors="ignore").to_zarr(
                target, mode="a", append_dim=S.IMAGETTE, consolidated=False, write_empty_chunks=True
            )
        log.commit()  # the chunk records first ...
    finally:
        log.close()
    # ... then the commit: only now do the new imagettes count
    group.attrs.update(IMAGETTES.record(n + batch.sizes[S.IMAGETTE]))


def begin_write(path: str | os.PathLike, kind: StoreKind) -> None:
    """Prepare a store for a writer that holds its lease: settle the records of killed writes, adopt version 1.

    Parameters
    ----------
    path : str or os.PathLike
        The store (nothing is done when it holds no store of ``kind`` yet).
    kind : StoreKind
        :data:`IMAGETTES` or :data:`EMBEDDINGS`.

    Returns
    -------
    None
    """
    path = Path(path)
    group = open_group(path, mode="r")
    if group is None or _kind_of(group) is not kind:
        return
    I.settle(path)
    if int(group.attrs.get(kind.counter, 0)) and not I.load_manifest(path):  # written before chunk records
        done = done_counts(path) if kind is EMBEDDINGS else None
        expected = I.expected_keys(group, I.geometry(group, kind.kind), done)
        I.record_existing(path, [key for keys in expected.values() for key in keys])


def end_write(path: str | os.PathLike) -> None:
    """Finish a write under the lease: merge the chunk records into one file, dropping those beyond the commit.

    Parameters
    ----------
    path : str or os.PathLike
        The store.

    Returns
    -------
    None
    """
    path = Path(path)
    group = open_group(path, mode="r")
    if group is None:
        return
    geo = I.geometry(group)

    def keep(key: str) -> bool:
        parsed = I.chunk_key(key)
        return parsed is None or parsed[0] not in geo.chunks or parsed[1][0] * geo.chunks[parsed[0]] < geo.n

    I.compact(path, keep)


def damaged_chunks(path: str | os.PathLike) -> list[I.Damage]:
    """Chunks of the committed range that are missing or whose size differs from their record (cheap: no read).

    Parameters
    ----------
    path : str or os.PathLike
        An xwvnet store.

    Returns
    -------
    list of xwvnet.io.integrity.Damage
        Ids are not filled in (``None``); :func:`xwvnet.io.integrity.verify` reads and checksums everything.
    """
    group = open_group(path, mode="r")
    kind = None if group is None else _kind_of(group)
    if kind is None:
        return []
    geo = I.geometry(group, kind.kind)
    done = done_counts(path) if kind is EMBEDDINGS else None
    keys = [key for keys in I.expected_keys(group, geo, done).values() for key in keys]
    out = []
    for key, problem in I.quick_check(path, keys):
        name, index = I.chunk_key(key)
        start, stop = geo.span(name, index[0])
        out.append(I.Damage(name, index, key, problem, start, stop, None))
    return out


def to_store(
    ds: xr.Dataset, path: str | os.PathLike, *, chunk: int | None = None, progress: bool = False, wait: float = 0.0
) -> StoreReport:
    """Write imagettes to a Zarr imagette store, creating it or appending; ids already in the store are skipped.

    Works batch by batch (a few chunks at a time), so a lazy Dataset of any size is never loaded whole. Each batch
    is committed after it landed: a write killed at any moment leaves the store as it was after the last commit,
    and the same call again completes it.

    Parameters
    ----------
    ds : xarray.Dataset
        Imagettes following the xwvnet data model (:func:`xwvnet.validate` must pass).
    path : str or os.PathLike
        The store. A path holding anything else (an embedding store, a foreign Zarr group, files) is refused.
    chunk : int, optional
        Imagettes per stored chunk; default: the existing store's, else a few MB of pixels per chunk.
    progress : bool, default False
        Show a tqdm bar of batches.
    wait : float, default 0.0
        Seconds to wait for another writer of the store to finish (0: refuse at once).

    Returns
    -------
    StoreReport
        Imagettes added, already present, skipped (from ``ds.attrs["skipped"]``) and the store's total.

    Raises
    ------
    ValueError
        If ``ds`` is not a valid imagette Dataset, does not have the store's variables or tag codes, or ``path``
        holds something other than an imagette store.
    xwvnet.io.lease.StoreBusyError
        If another writer holds the store (after ``wait`` seconds); the message names it.
    xwvnet.io.integrity.DamagedChunkError
        If the store's ids cannot be read (a missing or damaged id chunk).

    Examples
    --------
    >>> import xwvnet
    >>> ds = xwvnet.synthetic.imagettes(8, seed=0)  # doctest: +SKIP
    >>> xwvnet.to_store(ds, "imagettes.zarr").total  # doctest: +SKIP
    8
    """
    S.validate(ds)
    path = Path(path)
    with writer_lease(path, "to_store", wait=wait):
        check_target(path, IMAGETTES)
        begin_write(path, IMAGETTES)
        stored = _committed_ids(path)
        all_ids = ds[S.IMAGETTE].values.astype(object)
        fresh = ~np.isin(all_ids, stored)
        report = StoreReport(path=path, present=int((~fresh).sum()), skipped=list(ds.attrs.get("skipped", [])))
        ds = _as_written(ds.isel({S.IMAGETTE: np.flatnonzero(fresh)}))
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
            end_write(path)
        report.total = committed(path)
    return report


def ingest(
    sources: str | os.PathLike | Iterable[str | os.PathLike],
    store: str | os.PathLike,
    *,
    labels: str | os.PathLike | None = None,
    batch: int = 256,
    progress: bool = False,
    wait: float = 0.0,
) -> StoreReport:
    """Read quicklook files into an imagette store, batch by batch; files whose id is stored are not even read.

    Re-running the same ingest after it was killed completes it: what was committed is skipped. It holds the
    store's writer lease for the whole run, so a second writer is refused (or waits, with ``wait=``). Files that
    share a name (the same imagette id) in several folders are kept once: the first, in the order of
    :func:`xwvnet.io.quicklook.resolve_paths`; the others are reported as skipped, whatever ``batch`` is.

    A re-run also repairs: a stored chunk that is missing or whose size differs from its record (see
    :func:`damaged_chunks`) is rewritten from the source files of its imagettes when they are among ``sources``
    (``report.repaired``); damage it cannot rewrite is listed in ``report.damaged``. A damaged chunk of the ids
    themselves cannot be rewritten: the run stops with a :class:`~xwvnet.io.integrity.DamagedChunkError`.

    Parameters
    ----------
    sources : str, os.PathLike or iterable of them
        Files, folders or glob patterns of WV quicklook PNGs (as :func:`xwvnet.open_quicklooks` takes them).
    store : str or os.PathLike
        The imagette store to create or extend.
    labels : str or os.PathLike, optional
        A tag CSV (as published with WV-Net) to attach as ``labels``.
    batch : int, default 256
        Files read and written per step (bounds memory).
    progress : bool, default False
        Show a tqdm bar of batches.
    wait : float, default 0.0
        Seconds to wait for another writer of the store to finish (0: refuse at once).

    Returns
    -------
    StoreReport
        Imagettes added, already present, unreadable or repeated files with their reasons, chunks repaired, damage
        left, the warnings of the run (summarised) and the store's total.

    Raises
    ------
    ValueError
        If ``store`` holds something other than an imagette store, a batch does not match the store, or ``batch``
        is not a positive integer.
    FileNotFoundError
        If ``sources`` names no file.
    xwvnet.io.lease.StoreBusyError
        If another writer holds the store (after ``wait`` seconds).
    xwvnet.io.integrity.DamagedChunkError
        If the store's ids cannot be read.

    Examples
    --------
    >>> report = ingest("quicklooks/", "wv.zarr", labels="tags.csv")  # doctest: +SKIP
    >>> print(report.summary())  # doctest: +SKIP
    """
    from .quicklook import SkippedFilesWarning, summarize_warnings

    if isinstance(batch, bool) or not isinstance(batch, int | np.integer) or batch < 1:
        raise ValueError(f"batch must be a positive number of files, found {batch!r}.")
    store = Path(store)
    check_target(store, IMAGETTES)  # refuse a wrong path before looking at the sources (checked again when leased)
    files = resolve_paths(sources)
    first: dict[str, Path] = {}
    repeated: list[str] = []
    for f in files:  # one file per id, decided before batching: the same whatever the batch size
        stem = f.name.split(".")[0]
        if stem in first:
            repeated.append(f"{f}: DuplicateId: same imagette id {stem!r} as {first[stem]}; rename one to keep both")
        else:
            first[stem] = f
    with writer_lease(store, "ingest", wait=wait):
        check_target(store, IMAGETTES)
        begin_write(store, IMAGETTES)
        report = StoreReport(path=store, skipped=repeated)
        stored_ids = _committed_ids(store)  # read through the checks: a damaged id chunk stops here, named
        stored = set(stored_ids.tolist())
        seen = set(stored)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", QuicklookWarning)
            if len(stored_ids):
                _repair(store, stored_ids, first, labels, report)
            todo = [f for stem, f in first.items() if stem not in stored]
            report.present = len(first) - len(todo)
            for start in tqdm(range(0, len(todo), batch), desc="ingest", unit="batch", disable=not progress):
                try:
                    ds = open_quicklooks(todo[start : start + batch], labels=labels, duplicates="skip", lazy=False)
                except NoReadableImageError as err:  # a batch with no readable file at all
                    report.skipped.extend(err.skipped)
                    continue
                seen.update(str(i) for i in ds[S.IMAGETTE].values)
                written = to_store(ds, store)
                report.added += written.added
                report.present += written.present
                report.skipped.extend(written.skipped)
        kept = [w for w in caught if not issubclass(w.category, SkippedFilesWarning)]  # skipped: listed already
        report.warnings = summarize_warnings(kept, known_ids=seen)
        end_write(store)
        report.total = committed(store)
    return report


def _repair(store: Path, stored_ids: np.ndarray, files: dict[str, Path], labels: str | os.PathLike | None,
            report: StoreReport) -> None:
    """Rewrite the damaged chunks of an imagette store from the source files of their imagettes, when given."""
    damage = [d for d in damaged_chunks(store) if d.variable != S.IMAGETTE]
    spans: dict[tuple[int, int], list[I.Damage]] = {}
    for d in damage:
        spans.setdefault((d.start, d.stop), []).append(d)
    for (start, stop), found in sorted(spans.items()):
        ids = [str(i) for i in stored_ids[start:stop]]
        names = sorted({d.variable for d in found})
        where = "; ".join(f"{d.variable} chunk {d.chunk} {d.problem}" for d in found)
        lost = [i for i in ids if i not in files]
        if lost:
            report.damaged.append(
                f"{where}: imagettes {start}..{stop - 1} not rewritten, {len(lost)} of their source files were not "
                f"given (e.g. {lost[:3]}); ingest them again with these files, or rebuild the store")
            continue
        try:
            fresh = open_quicklooks([files[i] for i in ids], labels=labels, duplicates="skip", lazy=False)
            if [str(i) for i in fresh[S.IMAGETTE].values] != ids:
                raise ValueError("some of their source files are no longer readable: "
                                 + "; ".join(fresh.attrs.get("skipped", [])[:3]))
            group = zarr.open_group(str(store), mode="r+")
            fresh = _fit_image_dims(_check_batch(_as_written(fresh), group), group)
            region = xr.Dataset({name: fresh[name].variable for name in names}, attrs=dict(group.attrs))
            log = I.RecordLog(store)
            try:
                region.to_zarr(I.recording(store, log), region={S.IMAGETTE: slice(start, stop)}, mode="r+",
                               consolidated=False, write_empty_chunks=True)
                log.commit()
            finally:
                log.close()
        except ValueError as err:
            report.damaged.append(f"{where}: imagettes {start}..{stop - 1} not rewritten: {err}")
            continue
        report.repaired += len(found)


def add_labels(path: str | os.PathLike, labels: str | os.PathLike, *, wait: float = 0.0) -> StoreReport:
    """Add or update the tags of imagettes already in a store, from a tag CSV (as published with WV-Net).

    Rows of the CSV are matched to stored imagettes by file stem; a stored imagette without a row keeps the tags
    it had (or -1, unknown, when it had none). The tag codes must be the store's when it has tags already.

    Parameters
    ----------
    path : str or os.PathLike
        The imagette store.
    labels : str or os.PathLike
        The tag CSV: a ``filename`` column and one 0/1 column per tag.
    wait : float, default 0.0
        Seconds to wait for another writer of the store.

    Returns
    -------
    StoreReport
        ``added`` counts the imagettes whose tags were set from the CSV; ``total`` the store's imagettes.

    Raises
    ------
    ValueError
        If the CSV's tag codes differ from the store's, or no row of the CSV matches a stored imagette.
    xwvnet.io.quicklook.LabelsFileError
        If the CSV is unreadable or malformed.
    """
    from .quicklook import read_labels

    path = Path(path)
    ds = open_store(path)
    ids = [str(i) for i in ds[S.IMAGETTE].values]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rows for files not in this store are expected here
        new = read_labels(labels, ids)
    matched = (new.values != -1).any(axis=1)
    if not matched.any():
        raise ValueError(f"no row of {labels} names an imagette of {path}; check the 'filename' column.")
    if S.LABELS in ds:
        codes = [str(c) for c in ds[S.LABEL].values]
        if sorted(codes) != sorted(str(c) for c in new[S.LABEL].values):
            raise ValueError(f"the tag codes of {labels} ({list(new[S.LABEL].values)}) differ from the store's "
                             f"({codes}); use a CSV with the store's tags or a new store.")
        old = ds[S.LABELS].load()
        merged = xr.where(new.sel({S.LABEL: old[S.LABEL].values}).values != -1, new.sel(
            {S.LABEL: old[S.LABEL].values}).values, old.values)
        out = old.copy(data=merged.astype(np.int8))
    else:
        out = new.assign_coords({S.IMAGETTE: ds[S.IMAGETTE].values})
    add_variables(xr.Dataset({S.LABELS: out}), path, [S.LABELS], wait=wait)
    return StoreReport(path=path, added=int(matched.sum()), present=len(ids) - int(matched.sum()), total=len(ids))


def add_variables(ds: xr.Dataset, path: str | os.PathLike, names: Iterable[str] | None = None, *,
                  wait: float = 0.0) -> None:
    """Write new per-imagette variables (e.g. ``embedding``, probe outputs) into an existing store.

    They go beside the imagettes, so one store carries the images and what was derived from them. Variables
    already in the store are overwritten whole; they take the store's chunking along ``imagette``.

    Parameters
    ----------
    ds : xarray.Dataset
        Exactly the store's committed imagettes in the store's order, as :func:`open_store` gives them.
    path : str or os.PathLike
        The store.
    names : iterable of str, optional
        Variables to write; default every data variable along ``imagette``.
    wait : float, default 0.0
        Seconds to wait for another writer of the store to finish (0: refuse at once).

    Returns
    -------
    None

    Raises
    ------
    ValueError
        If ``ds`` does not hold the store's committed imagettes in the store's order, or ``path`` is not an
        imagette store.
    xwvnet.io.lease.StoreBusyError
        If another writer holds the store (after ``wait`` seconds).
    """
    path = Path(path)
    with writer_lease(path, "add_variables", wait=wait):
        if check_target(path, IMAGETTES) == 0:
            raise ValueError(f"{path} holds no committed imagettes (found {describe(path)}); write them first "
                             "with xwvnet.to_store.")
        begin_write(path, IMAGETTES)
        stored = _committed_ids(path)
        given = ds[S.IMAGETTE].values.astype(object)
        if len(given) != len(stored) or not (given == stored).all():
            raise ValueError(
                f"the Dataset's imagettes ({len(given)}) are not the store's committed imagettes ({len(stored)}) in "
                "the store's order; start from xwvnet.open_store(path) and keep every imagette."
            )
        names = list(names) if names is not None else [n for n in ds.data_vars if S.IMAGETTE in ds[n].dims]
        # coordinates along the imagette dim are the store's own; others (e.g. tag codes `label`) travel along
        theirs = [c for c in ds[names].coords if c != S.IMAGETTE and S.IMAGETTE in ds[c].dims]
        out = _as_written(ds[names].drop_vars(theirs))
        out = out.drop_vars(S.IMAGETTE)
        group = zarr.open_group(str(path), mode="r+")
        n = committed(path)
        trim(group, n)
        for name in names:
            if name in group:
                del group[name]
        chunk = committed_chunk(path) or n
        out.attrs = dict(group.attrs)  # to_zarr rewrites the root attributes: they must keep the commit counter
        log = I.RecordLog(path)
        try:
            out.to_zarr(I.recording(path, log), mode="a", consolidated=False, encoding=encoding(out, chunk),
                        write_empty_chunks=True)
            log.commit()
        finally:
            log.close()
        end_write(path)


# ---- the embedding store: create, extend, write chunks -----------------------------------------------------------


def reset_damaged_embeddings(path: str | os.PathLike) -> list[I.Damage]:
    """Mark the embedding chunks that are missing or damaged (size) as not done, so that a run re-embeds them.

    Run by the writer that holds the lease, before it plans its tasks.

    Parameters
    ----------
    path : str or os.PathLike
        The embedding store (nothing happens when there is none).

    Returns
    -------
    list of xwvnet.io.integrity.Damage
        The damaged ``embedding`` chunks found (now marked not done).
    """
    if store_kind(path) != EMBEDDINGS.kind:
        return []
    damage = [d for d in damaged_chunks(path) if d.variable == S.EMBEDDING]
    if damage:
        done = zarr.open_group(str(path), mode="r+")[f"{PROGRESS}/{DONE}"]
        for d in damage:
            done[d.chunk[0]] = 0
    return damage


def read_images(
    path: str | os.PathLike, var: str, start: int, stop: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read imagettes ``start:stop`` of an imagette store straight from Zarr (a worker's read, no xarray).

    Parameters
    ----------
    path : str or os.PathLike
        The imagette store.
    var : str
        The image variable (``quicklook`` or ``sigma0``).
    start, stop : int
        Positions along ``imagette``.

    Returns
    -------
    tuple of numpy.ndarray
        ``(images, valid_lines, valid_samples)``.

    Raises
    ------
    xwvnet.io.integrity.DamagedChunkError
        If a chunk read is missing or damaged (the message names it and its imagettes).
    """
    group = checked_group(path)
    return group[var][start:stop], group[S.VALID_LINES][start:stop], group[S.VALID_SAMPLES][start:stop]


def _coords(source: xr.Dataset, start: int, stop: int) -> xr.Dataset:
    """The imagette coordinates of ``start:stop``, loaded, strings as Python objects."""
    names = [n for n, v in source.coords.items() if v.dims == (S.IMAGETTE,)]
    out = xr.Dataset(coords={n: source[n].variable for n in names}).isel({S.IMAGETTE: slice(start, stop)}).load()
    return out.assign_coords({n: v.astype(object) for n, v in out.coords.items() if v.dtype.kind in "UST"})


def extend_embedding_store(
    path: str | os.PathLike,
    source: xr.Dataset,
    *,
    chunk: int,
    dim: int,
    attrs: dict[str, object],
    embedding_attrs: dict[str, object],
) -> None:
    """Create the embedding store at ``path``, or extend it, to hold ``source``'s imagettes.

    The coordinates are copied now (by blocks of :data:`COORD_BLOCK`, so memory stays bounded); the ``embedding``
    array only grows, its chunks are written later by :func:`write_embedding_chunk`. Coordinates of an extension
    that was killed before its commit are trimmed first. The commit (root attribute ``imagettes``, with ``attrs``
    and ``chunk``) comes last, after ``progress/done`` covers every chunk.

    Parameters
    ----------
    path : str or os.PathLike
        The embedding store (checked with :func:`check_target` by the caller).
    source : xarray.Dataset
        The input imagettes (as :func:`open_store` gives them); its first imagettes must be those already stored.
    chunk : int
        Imagettes per stored chunk of ``embedding`` (fixed when the store is created).
    dim : int
        Embedding size (the ``feature`` dimension).
    attrs : dict
        Root attributes to record (encoder provenance, input path); they are compared on resume.
    embedding_attrs : dict
        Attributes of the ``embedding`` variable.

    Returns
    -------
    None
    """
    path = Path(path)
    n_out, n_in = committed(path), source.sizes[S.IMAGETTE]
    mode = "w" if n_out == 0 else "a"
    if mode == "a":  # drop coordinates of an extension that was killed before its commit
        trim(zarr.open_group(str(path), mode="r+"), n_out)
    log = I.RecordLog(path)
    target = I.recording(path, log)
    try:
        _extend(target, source, n_out, n_in, mode, chunk, dim, embedding_attrs)
        log.commit()
    finally:
        log.close()
    group = zarr.open_group(str(path), mode="r+")
    n_chunks = math.ceil(n_in / chunk)
    if f"{PROGRESS}/{DONE}" in group:
        group[f"{PROGRESS}/{DONE}"].resize((n_chunks,))
    else:
        group.require_group(PROGRESS).create_array(DONE, shape=(n_chunks,), chunks=(1,), dtype="int32", fill_value=0)
    group.attrs.update({**attrs, "chunk": chunk, **EMBEDDINGS.record(n_in)})


def _extend(target: I.Recorder, source: xr.Dataset, n_out: int, n_in: int, mode: str, chunk: int, dim: int,
            embedding_attrs: dict[str, object]) -> None:
    """Copy the coordinates of imagettes ``n_out:n_in`` into an embedding store (creating it with ``mode="w"``)."""
    import dask.array as da

    for start in range(n_out, n_in, COORD_BLOCK):
        stop = min(n_in, start + COORD_BLOCK)
        block = _coords(source, start, stop)
        stored_as = np.float16 if embedding_attrs.get(S.COMPACT_DTYPE) == "float16" else np.float32
        placeholder = da.empty((stop - start, dim), chunks=(chunk, dim), dtype=stored_as)
        block = block.assign({S.EMBEDDING: ((S.IMAGETTE, S.FEATURE), placeholder, embedding_attrs)})
        if mode == "w":
            block.attrs = EMBEDDINGS.record(0)
            block.to_zarr(target, mode="w", compute=False, consolidated=False, encoding=encoding(block, chunk),
                          write_empty_chunks=True)
            mode = "a"
        else:
            block.to_zarr(target, mode="a", append_dim=S.IMAGETTE, compute=False, consolidated=False,
                          safe_chunks=False, write_empty_chunks=True)


def done_counts(path: str | os.PathLike) -> np.ndarray | None:
    """The per-chunk commit record of an embedding store: ``done[k]`` imagettes of chunk ``k`` are written.

    Parameters
    ----------
    path : str or os.PathLike
        The embedding store.

    Returns
    -------
    numpy.ndarray or None
        int32 counts, or ``None`` when the store (or its progress record) does not exist yet.
    """
    group = open_group(path, mode="r")
    if group is None or f"{PROGRESS}/{DONE}" not in group:
        return None
    return np.asarray(group[f"{PROGRESS}/{DONE}"][:])


def write_embedding_chunk(path: str | os.PathLike, chunk: int, chunk_start: int, start: int,
                          values: np.ndarray, token: str = "") -> None:
    """Write embeddings of imagettes ``start:start + len(values)`` (inside chunk ``chunk``), then commit them.

    One function does both so that the order can never be swapped: the region write returns first (Zarr writes
    each chunk object whole), only then ``done[chunk]`` is set. A run killed in between leaves the chunk
    uncounted, and a re-run writes it again.

    Parameters
    ----------
    path : str or os.PathLike
        The embedding store.
    chunk : int
        Index of the stored chunk.
    chunk_start : int
        Position of the chunk's first imagette.
    start : int
        Position of the first imagette written (after ``chunk_start`` when resuming a partly filled chunk).
    values : numpy.ndarray
        ``(n, feature)`` float32 embeddings.
    token : str, default ""
        The token of the run's writer lease: the write is refused when another writer took the lease over.

    Returns
    -------
    None

    Raises
    ------
    xwvnet.io.lease.LeaseLostError
        If ``token`` is given and no longer holds the store's lease.
    """
    check_token(path, token)
    stop = start + len(values)
    log = I.RecordLog(path)
    try:
        array = zarr.open_array(store=I.recording(path, log), path=S.EMBEDDING, mode="r+",
                                config={"write_empty_chunks": True})
        array[start:stop] = values
        log.commit()  # the record, then ...
    finally:
        log.close()
    target = zarr.open_group(str(path), mode="r+")
    target[f"{PROGRESS}/{DONE}"][chunk] = stop - chunk_start  # ... the commit: only after the data
