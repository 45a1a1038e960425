"""Every chunk accounted for: chunk records written with each commit, checked on every read, and :func:`verify`.

Each write of an xwvnet store (an imagette append, :func:`xwvnet.io.store.add_variables`, one embedded chunk of
:func:`xwvnet.embed_store`) goes through a :class:`Recorder`, a Zarr store wrapper that notes, for every chunk
object written, its key, its size and its CRC-32 in a *record file* of the store (``integrity/records/*.tsv``,
one line ``key size crc`` per chunk). A record line is written *before* its chunk object, and the file ends with
a ``#commit`` line once every object landed; a file without it is *pending* (a write in progress, or killed). A
chunk is valid when it matches its latest committed record, or one of the pending ones (so a store can be read
while it is appended to, and after an append was killed). The next writer settles pending files (:func:`settle`)
and merges the records into one base file (:func:`compact`), so a store of 50k chunks per variable reads one file.

Reads go through a :class:`Checker`: a chunk that is missing, or whose size or checksum differs from its record,
raises :class:`DamagedChunkError` naming the variable, the chunk, the imagettes it holds (ids, or the index range
when the ids themselves are unreadable) and what to do. In an imagette store, a chunk of the committed range that
is absent *and* unrecorded is an error too (writers record every chunk, empty ones included).

The records are plain files in a Zarr subgroup (``integrity``), so ``xarray.open_zarr(path)`` still reads the store.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import threading
import time
import uuid
import zlib
from collections.abc import AsyncGenerator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from zarr.abc.store import ByteRequest, Store
from zarr.core.buffer import Buffer, BufferPrototype
from zarr.storage import LocalStore, WrapperStore

GROUP = "integrity"  # Zarr subgroup holding the records (hidden from xarray.open_zarr, like ``progress``)
RECORDS = f"{GROUP}/records"
BASE = "0" * 20 + "-base.tsv"  # the compacted records; sorts before every other file
COMMIT = "#commit"
ABSENT = -1  # size recorded for a chunk that is absent by design (reads as the fill value)
_CHUNK_KEY = re.compile(r"^([^/]+)/c((?:/\d+)+)$")  # chunk objects of the root arrays (default v3 key encoding)
_COUNTERS = {"xwvnet-imagette-store": "committed", "xwvnet-embedding-store": "imagettes"}
_IMAGETTE = "imagette"


class DamagedChunkError(OSError):
    """A chunk of an xwvnet store is missing or damaged; the message names it, its imagettes and what to do.

    Parameters
    ----------
    message : str
        The error message.
    variable : str
        The variable (Zarr array) the chunk belongs to.
    chunk : tuple of int
        The chunk's index in the array's chunk grid.
    start, stop : int
        The imagette positions it holds.
    ids : list of str or None
        Their ids, ``None`` when unreadable.
    """

    def __init__(self, message: str, variable: str, chunk: tuple[int, ...], start: int, stop: int,
                 ids: list[str] | None) -> None:
        super().__init__(message)
        self.variable, self.chunk, self.start, self.stop, self.ids = variable, chunk, start, stop, ids


def chunk_key(key: str) -> tuple[str, tuple[int, ...]] | None:
    """The variable and chunk index of a Zarr chunk key of a root array, or ``None`` for any other key.

    Parameters
    ----------
    key : str
        A store key such as ``"quicklook/c/3/0/0"``.

    Returns
    -------
    tuple or None
        ``(variable, chunk index)``.

    Examples
    --------
    >>> chunk_key("quicklook/c/3/0/0")
    ('quicklook', (3, 0, 0))
    >>> chunk_key("quicklook/zarr.json") is None
    True
    """
    match = _CHUNK_KEY.match(key)
    if match is None:
        return None
    return match.group(1), tuple(int(i) for i in match.group(2)[1:].split("/"))


def _crc(data: Any) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


# ---- writing records ------------------------------------------------------------------------------------------


class RecordLog:
    """One record file: the chunks one write (one commit) wrote, each line written before its chunk object.

    Parameters
    ----------
    root : str or os.PathLike
        The store.
    name : str, optional
        The file name (default: a new, time-ordered one).
    """

    def __init__(self, root: str | os.PathLike, name: str | None = None) -> None:
        self.root = Path(root)
        self.name = name or f"{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:8]}.tsv"
        self.path = self.root / RECORDS / self.name
        self._file: Any = None
        self._lock = threading.Lock()
        self.count = 0

    def add(self, key: str, size: int, crc: int) -> None:
        """Note one chunk object (before it is written).

        Parameters
        ----------
        key : str
            Its key.
        size : int
            Its size in bytes (:data:`ABSENT` for a chunk absent by design).
        crc : int
            Its CRC-32.
        """
        with self._lock:
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = open(self.path, "a")  # noqa: SIM115 (kept open across adds, closed by commit/close)
            self._file.write(f"{key} {size} {crc}\n")
            self._file.flush()
            self.count += 1

    def commit(self) -> None:
        """Close the file with its commit line (after every object landed), durably."""
        with self._lock:
            if self._file is None:
                return
            self._file.write(COMMIT + "\n")
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None
        ensure_group(self.root)

    def close(self) -> None:
        """Close without committing (the file stays pending)."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


def ensure_group(root: str | os.PathLike) -> None:
    """Make the ``integrity`` folder a Zarr group, so that Zarr and xarray list it as a subgroup, not junk.

    Parameters
    ----------
    root : str or os.PathLike
        The store.

    Returns
    -------
    None
    """
    meta = Path(root) / GROUP / "zarr.json"
    if not meta.exists():
        meta.parent.mkdir(parents=True, exist_ok=True)
        tmp = meta.with_name(f"zarr.json.{uuid.uuid4().hex}.tmp")
        tmp.write_text(json.dumps({"zarr_format": 3, "node_type": "group", "attributes": {}}))
        os.replace(tmp, meta)


class Recorder(WrapperStore[Store]):
    """A Zarr store wrapper that records every chunk object written (key, size, CRC-32) in a :class:`RecordLog`.

    Parameters
    ----------
    store : zarr.abc.store.Store
        The store written.
    log : RecordLog
        Where the records go.
    """

    def __init__(self, store: Store, log: RecordLog) -> None:
        super().__init__(store)
        self.log = log

    def _with_store(self, store: Store) -> Recorder:
        return type(self)(store, self.log)

    async def set(self, key: str, value: Buffer) -> None:
        """Record, then write, one object."""
        if chunk_key(key) is not None:
            data = value.as_numpy_array()
            self.log.add(key, int(data.nbytes), _crc(data))
        await self._store.set(key, value)

    async def _set_many(self, values: Iterable[tuple[str, Buffer]]) -> None:
        for key, value in values:
            await self.set(key, value)

    async def delete(self, key: str) -> None:
        """Record, then delete, one object (a deleted chunk reads as the fill value by design)."""
        if chunk_key(key) is not None:
            self.log.add(key, ABSENT, 0)
        await self._store.delete(key)


def local_store(root: str | os.PathLike, read_only: bool = False) -> LocalStore:
    """The plain Zarr store of a local (or shared file system) path.

    Parameters
    ----------
    root : str or os.PathLike
        The store's folder.
    read_only : bool, default False
        Open read-only.

    Returns
    -------
    zarr.storage.LocalStore
        The store.
    """
    return LocalStore(str(root), read_only=read_only)


def recording(root: str | os.PathLike, log: RecordLog) -> Recorder:
    """A writable store of ``root`` whose chunk writes are recorded in ``log``.

    Parameters
    ----------
    root : str or os.PathLike
        The store's folder.
    log : RecordLog
        The record file of this write.

    Returns
    -------
    Recorder
        Pass it to ``Dataset.to_zarr`` or ``zarr.open_group``.
    """
    return Recorder(local_store(root), log)


# ---- reading records ------------------------------------------------------------------------------------------


@dataclass
class Manifest:
    """The chunk records of a store: the latest committed record of each key, and pending records.

    Parameters
    ----------
    committed : dict
        ``key -> (size, crc)`` of the latest committed record.
    pending : dict
        ``key -> set of (size, crc)`` of records in files without a commit line.
    files : list of str
        The record files read, in order.
    """

    committed: dict[str, tuple[int, int]] = field(default_factory=dict)
    pending: dict[str, set[tuple[int, int]]] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.committed or self.pending)

    def problem(self, key: str, data: Any | None) -> str | None:
        """What is wrong with the object ``data`` (bytes, or ``None`` when absent) stored at ``key``.

        Parameters
        ----------
        key : str
            A chunk key.
        data : bytes-like or None
            The object, ``None`` when absent.

        Returns
        -------
        str or None
            ``None`` when it matches a valid record (or ``key`` is not recorded); else the problem in words.
        """
        valid = set(self.pending.get(key, ()))
        if key in self.committed:
            valid.add(self.committed[key])
        if not valid:
            return None
        if data is None:
            return None if any(size == ABSENT for size, _ in valid) else "missing (its file is gone)"
        size, crc = int(memoryview(data).nbytes), _crc(data)
        if (size, crc) in valid:
            return None
        sizes = sorted({s for s, _ in valid if s != ABSENT})
        if sizes and size not in sizes:
            return f"damaged ({size} bytes, recorded {sizes[-1]})"
        return "damaged (its checksum differs from the one recorded when it was written)"


_CACHE: dict[str, tuple[tuple[tuple[str, int, int], ...], Manifest]] = {}
_CACHE_LOCK = threading.Lock()


def _listing(root: Path) -> tuple[tuple[str, int, int], ...]:
    folder = root / RECORDS
    out = []
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(folder):
            if entry.name.endswith(".tsv"):
                with contextlib.suppress(FileNotFoundError):
                    st = entry.stat()
                    out.append((entry.name, st.st_size, st.st_mtime_ns))
    return tuple(sorted(out))


def load_manifest(root: str | os.PathLike) -> Manifest:
    """Read the chunk records of a store (cached per process while the record files are unchanged).

    Parameters
    ----------
    root : str or os.PathLike
        The store.

    Returns
    -------
    Manifest
        Empty for a store without records (written by an xwvnet before chunk records, or not by xwvnet).
    """
    root = Path(root).absolute()
    for _ in range(5):  # a compaction may remove files while they are listed: list again
        listing = _listing(root)
        with _CACHE_LOCK:
            cached = _CACHE.get(str(root))
        if cached is not None and cached[0] == listing:
            return cached[1]
        try:
            manifest = _parse(root, [name for name, _, _ in listing])
        except FileNotFoundError:
            continue
        with _CACHE_LOCK:
            _CACHE[str(root)] = (listing, manifest)
        return manifest
    return _parse(root, [name for name, _, _ in _listing(root)])


def _parse(root: Path, names: list[str]) -> Manifest:
    manifest = Manifest(files=list(names))
    for name in names:
        lines = (root / RECORDS / name).read_text().splitlines()
        done = bool(lines) and lines[-1] == COMMIT
        for line in lines:
            parts = line.split(" ")
            if len(parts) != 3:
                continue
            record = (int(parts[1]), int(parts[2]))
            if done:
                manifest.committed[parts[0]] = record
            else:
                manifest.pending.setdefault(parts[0], set()).add(record)
    return manifest


def _read_object(root: Path, key: str) -> bytes | None:
    try:
        return (root / key).read_bytes()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None


def settle(root: str | os.PathLike) -> int:
    """Turn the pending record files of killed writes into committed records of what is really stored.

    Run by a writer that holds the lease, before it writes: for each key of a pending file, the object now stored
    is recorded when it matches one of its valid records (the old or the new version); an object that matches
    none is left for :func:`verify` to report. The pending files are then removed.

    Parameters
    ----------
    root : str or os.PathLike
        The store.

    Returns
    -------
    int
        Pending files settled.
    """
    root = Path(root)
    manifest = load_manifest(root)
    folder = root / RECORDS
    pending_files = [n for n in manifest.files if n != BASE and not _is_committed(folder / n)]
    if not pending_files:
        return 0
    log = RecordLog(root)
    for key in sorted(manifest.pending):
        data = _read_object(root, key)
        if manifest.problem(key, data) is None:
            log.add(key, ABSENT if data is None else len(data), 0 if data is None else _crc(data))
    log.commit()
    for name in pending_files:
        (folder / name).unlink(missing_ok=True)
    return len(pending_files)


def _is_committed(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, path.stat().st_size - len(COMMIT) - 1))
            return f.read().decode(errors="replace").splitlines()[-1:] == [COMMIT]
    except (OSError, IndexError):
        return False


def compact(root: str | os.PathLike, keep: Any = None) -> None:
    """Merge the committed record files of a store into its one base file (run by the lease holder).

    Parameters
    ----------
    root : str or os.PathLike
        The store.
    keep : callable, optional
        ``keep(key) -> bool``: records to keep (e.g. those inside the committed range); default all.

    Returns
    -------
    None
    """
    root = Path(root)
    folder = root / RECORDS
    names = [n for n, _, _ in _listing(root) if _is_committed(folder / n) or n == BASE]
    if not names or names == [BASE]:
        return
    merged = _parse(root, names).committed
    tmp = folder / f"{BASE}.{uuid.uuid4().hex}.tmp"
    with open(tmp, "w") as f:
        f.writelines(f"{k} {s} {c}\n" for k, (s, c) in merged.items() if keep is None or keep(k))
        f.write(COMMIT + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, folder / BASE)
    for name in names:
        if name != BASE:
            (folder / name).unlink(missing_ok=True)


def record_existing(root: str | os.PathLike, keys: Iterable[str]) -> int:
    """Record the chunk objects now stored at ``keys`` as they are (adopting a store written without records).

    Parameters
    ----------
    root : str or os.PathLike
        The store.
    keys : iterable of str
        Chunk keys; absent objects are recorded as absent by design.

    Returns
    -------
    int
        Keys recorded.
    """
    root = Path(root)
    log = RecordLog(root)
    for key in keys:
        data = _read_object(root, key)
        log.add(key, ABSENT if data is None else len(data), 0 if data is None else _crc(data))
    log.commit()
    return log.count


# ---- checking reads -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Geometry:
    """What a reader needs to name the imagettes of a chunk: committed imagettes and chunk lengths along them.

    Parameters
    ----------
    n : int
        Committed imagettes.
    chunks : dict
        ``variable -> imagettes per chunk`` for the arrays along ``imagette``.
    strict : frozenset of str
        Variables whose every chunk of the committed range must exist (all of an imagette store's).
    kind : str
        ``"imagettes"`` or ``"embeddings"`` (for the advice in messages).
    """

    n: int
    chunks: dict[str, int]
    strict: frozenset[str]
    kind: str

    def span(self, variable: str, index: int) -> tuple[int, int]:
        """The imagette positions of chunk ``index`` along ``imagette`` of ``variable``.

        Parameters
        ----------
        variable : str
            The variable.
        index : int
            Chunk index along ``imagette``.

        Returns
        -------
        tuple of int
            ``(start, stop)``.
        """
        c = self.chunks.get(variable, 1)
        return index * c, min(self.n, (index + 1) * c)


def geometry(group: Any, kind: str | None = None) -> Geometry:
    """The :class:`Geometry` of an opened store group.

    Parameters
    ----------
    group : zarr.Group
        The store's root group.
    kind : str, optional
        ``"imagettes"`` or ``"embeddings"``; default read from the format record.

    Returns
    -------
    Geometry
        For the arrays whose first dimension is ``imagette``.
    """
    attrs = dict(group.attrs)
    counter = _COUNTERS.get(str(attrs.get("format")), "committed")
    kind = kind or str(attrs.get("kind", "imagettes"))
    chunks = {}
    for name, array in group.arrays():
        dims = array.metadata.dimension_names or ()
        if dims and dims[0] == _IMAGETTE:
            chunks[name] = int(array.chunks[0])
    strict = frozenset(chunks) if kind == "imagettes" else frozenset(n for n in chunks if n != "embedding")
    return Geometry(int(attrs.get(counter, 0)), chunks, strict, kind)


def advice(root: str | os.PathLike, kind: str) -> str:
    """What to do about damage, in words.

    Parameters
    ----------
    root : str or os.PathLike
        The store.
    kind : str
        ``"imagettes"`` or ``"embeddings"``.

    Returns
    -------
    str
        One sentence.
    """
    redo = ("re-run the same ingest (`xwvnet ingest ...`, it rewrites damaged chunks from the source files) or "
            "re-create the store" if kind == "imagettes" else
            "re-run the same `xwvnet embed` (xwvnet.embed_store), which re-embeds damaged chunks")
    return f"Run `xwvnet verify {root}` to list all damage, then {redo}."


def describe_ids(ids: list[str] | None, start: int, stop: int) -> str:
    """Imagettes ``start:stop`` in words, with a few ids when known.

    Parameters
    ----------
    ids : list of str or None
        Their ids.
    start, stop : int
        Their positions.

    Returns
    -------
    str
        E.g. ``"imagettes 4..7 (ids a, b, c, d)"``.
    """
    span = f"imagettes {start}..{stop - 1}" if stop > start else f"imagette positions from {start}"
    if ids is None:
        return f"{span} (their ids are unreadable too)"
    shown = ", ".join(ids[:4]) + (f", ..., {ids[-1]}" if len(ids) > 4 else "")
    return f"{span} (ids {shown})"


class Checker(WrapperStore[Store]):
    """A read-only Zarr store wrapper that refuses missing and damaged chunks with a :class:`DamagedChunkError`.

    Parameters
    ----------
    store : zarr.abc.store.Store
        The store read (a ``LocalStore``).
    root : str
        Its folder (where the records are).
    geometry : Geometry
        Committed imagettes and chunk lengths, to name the imagettes of a damaged chunk.
    """

    def __init__(self, store: Store, root: str, geometry: Geometry) -> None:
        super().__init__(store)
        self.root = str(root)
        self.geometry = geometry
        self._manifest: Manifest | None = None

    def _with_store(self, store: Store) -> Checker:
        return type(self)(store, self.root, self.geometry)

    def __getstate__(self) -> dict[str, Any]:
        return {"_store": self._store, "root": self.root, "geometry": self.geometry, "_manifest": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def _problem(self, key: str, data: Any | None) -> str | None:
        if self._manifest is None:
            self._manifest = load_manifest(self.root)
        problem = self._manifest.problem(key, data)
        if problem is not None:  # the records may have grown since they were read (a writer is appending)
            self._manifest = load_manifest(self.root)
            problem = self._manifest.problem(key, data)
        if problem is None and data is None and key not in self._manifest.committed and self._manifest:
            parsed = chunk_key(key)
            if parsed and parsed[0] in self.geometry.strict and parsed[1][0] * self.geometry.chunks.get(
                    parsed[0], 1) < self.geometry.n and key not in self._manifest.pending:
                problem = "missing (its file is gone and no record of it was kept)"
        return problem

    async def get(self, key: str, prototype: BufferPrototype, byte_range: ByteRequest | None = None) -> Buffer | None:
        """Read one object; a chunk key is checked against its record."""
        buffer = await self._store.get(key, prototype, byte_range)
        parsed = chunk_key(key)
        if parsed is None or (buffer is not None and byte_range is not None):
            return buffer
        data = None if buffer is None else buffer.as_numpy_array()
        problem = self._problem(key, data)
        if problem is not None:
            raise await self._error(parsed[0], parsed[1], key, problem)
        return buffer

    async def _get_many(
        self, requests: Iterable[tuple[str, BufferPrototype, ByteRequest | None]]
    ) -> AsyncGenerator[tuple[str, Buffer | None], None]:
        for key, prototype, byte_range in requests:
            yield key, await self.get(key, prototype, byte_range)

    async def get_partial_values(
        self, prototype: BufferPrototype, key_ranges: Iterable[tuple[str, ByteRequest | None]]
    ) -> list[Buffer | None]:
        """Read parts of objects, each through :meth:`get`."""
        return [await self.get(key, prototype, byte_range) for key, byte_range in key_ranges]

    async def _ids(self, start: int, stop: int) -> list[str] | None:
        import zarr.api.asynchronous as za

        try:
            array = await za.open_array(store=Checker(self._store, self.root, self.geometry), path=_IMAGETTE,
                                        mode="r")
            values = await array.getitem(slice(start, stop))
            return [str(v) for v in np.asarray(values).tolist()]
        except Exception:  # the ids are damaged too, or absent: say the range only
            return None

    async def _error(self, variable: str, chunk: tuple[int, ...], key: str, problem: str) -> DamagedChunkError:
        start, stop = self.geometry.span(variable, chunk[0])
        ids = await self._ids(start, stop) if variable != _IMAGETTE else None
        message = (f"chunk {chunk} of {variable!r} in {self.root} is {problem} (object {key}); it holds "
                   f"{describe_ids(ids, start, stop)}. {advice(self.root, self.geometry.kind)}")
        return DamagedChunkError(message, variable, chunk, start, stop, ids)


def checking(root: str | os.PathLike, geometry: Geometry) -> Checker:
    """A read-only store of ``root`` that refuses missing and damaged chunks.

    Parameters
    ----------
    root : str or os.PathLike
        The store's folder.
    geometry : Geometry
        See :func:`geometry`.

    Returns
    -------
    Checker
        Pass it to ``xarray.open_zarr`` or ``zarr.open_group``.
    """
    return Checker(local_store(root, read_only=True), str(Path(root)), geometry)


# ---- verify -----------------------------------------------------------------------------------------------------


@dataclass
class Damage:
    """One missing or damaged chunk found by :func:`verify`.

    Parameters
    ----------
    variable : str
        The variable.
    chunk : tuple of int
        Its chunk index.
    key : str
        The store key of the chunk object.
    problem : str
        What is wrong.
    start, stop : int
        The imagette positions it holds.
    ids : list of str or None
        Their ids (``None``: unreadable).
    """

    variable: str
    chunk: tuple[int, ...]
    key: str
    problem: str
    start: int
    stop: int
    ids: list[str] | None

    def describe(self) -> str:
        """One line for people.

        Returns
        -------
        str
            Variable, chunk, problem and imagettes.
        """
        return f"{self.variable} chunk {self.chunk}: {self.problem}; {describe_ids(self.ids, self.start, self.stop)}"


@dataclass
class VerifyReport:
    """What :func:`verify` found.

    Parameters
    ----------
    path : Path
        The store.
    kind : str
        ``"imagettes"`` or ``"embeddings"``.
    imagettes : int, default 0
        Committed imagettes.
    checked : int, default 0
        Chunk objects checked.
    recorded : bool, default True
        False for a store written without chunk records (only existence could be checked).
    damage : list of Damage
        Missing or damaged chunks.
    """

    path: Path
    kind: str
    imagettes: int = 0
    checked: int = 0
    recorded: bool = True
    damage: list[Damage] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no damage was found."""
        return not self.damage

    @property
    def damaged_ids(self) -> list[str]:
        """Ids of every imagette held by a damaged chunk (when readable)."""
        return list(dict.fromkeys(i for d in self.damage for i in (d.ids or [])))

    def summary(self) -> str:
        """A short table for people, then one line per damaged chunk and what to do.

        Returns
        -------
        str
            The summary.
        """
        lines = [
            f"store            {self.path}",
            f"kind             {self.kind}",
            f"imagettes        {self.imagettes}",
            f"chunks checked   {self.checked}" + ("" if self.recorded else " (no chunk records: existence only)"),
            f"damaged chunks   {len(self.damage)}",
            f"status           {'OK' if self.ok else 'DAMAGED'}",
        ]
        if self.damage:
            lines += [f"  {d.describe()}" for d in self.damage]
            lines.append(advice(self.path, self.kind))
        return "\n".join(lines)


def expected_keys(group: Any, geo: Geometry, done: np.ndarray | None = None) -> dict[str, list[str]]:
    """The chunk keys a store must hold for its committed imagettes, per variable.

    Parameters
    ----------
    group : zarr.Group
        The store's root group.
    geo : Geometry
        Its geometry.
    done : numpy.ndarray, optional
        The per-chunk counts of an embedding store: only chunks with ``done > 0`` of ``embedding`` are expected.

    Returns
    -------
    dict
        ``variable -> keys`` (default v3 chunk key encoding).
    """
    out: dict[str, list[str]] = {}
    for name, array in group.arrays():
        if name not in geo.chunks:
            continue
        c = geo.chunks[name]
        grid = [math.ceil(geo.n / c)] + [math.ceil(s / k) for s, k in zip(array.shape[1:], array.chunks[1:])]
        keys = []
        for index in np.ndindex(*grid):
            if name == "embedding" and done is not None and (index[0] >= done.size or done[index[0]] <= 0):
                continue
            keys.append(f"{name}/c/" + "/".join(map(str, index)))
        out[name] = keys
    return out


def verify(path: str | os.PathLike) -> VerifyReport:
    """Check every chunk of an xwvnet store against its records: present, right size, right checksum.

    Every chunk of the committed range is expected (in an embedding store, the ``embedding`` chunks marked done);
    each is read and compared with its record. Damage is listed with the variable, the chunk and the imagettes it
    holds (ids, or their positions when the ids are unreadable).

    Parameters
    ----------
    path : str or os.PathLike
        An imagette store or an embedding store.

    Returns
    -------
    VerifyReport
        ``.ok``, ``.damage``, ``.summary()``.

    Raises
    ------
    ValueError
        If ``path`` is not an xwvnet store.

    Examples
    --------
    >>> report = verify("wv.zarr")  # doctest: +SKIP
    >>> print(report.summary())  # doctest: +SKIP
    """
    import zarr

    root = Path(path)
    try:
        group = zarr.open_group(str(root), mode="r")
    except (FileNotFoundError, NotADirectoryError, zarr.errors.GroupNotFoundError, ValueError):
        group = None
    if group is None or str(group.attrs.get("format")) not in _COUNTERS:
        raise ValueError(f"{root} is not an xwvnet store (an imagette store or an embedding store); nothing to "
                         "verify. Give the path of a store written by `xwvnet ingest` or `xwvnet embed`.")
    geo = geometry(group)
    done = None
    if geo.kind == "embeddings":
        done = np.asarray(group["progress/done"][:]) if "progress/done" in group else np.zeros(0, np.int32)
    manifest = load_manifest(root)
    report = VerifyReport(path=root, kind=geo.kind, imagettes=geo.n, recorded=bool(manifest))
    found: list[tuple[str, tuple[int, ...], str, str]] = []
    for name, keys in expected_keys(group, geo, done).items():
        for key in keys:
            data = _read_object(root, key)
            report.checked += 1
            if manifest:
                problem = manifest.problem(key, data)
                if problem is None and data is None and key not in manifest.committed and key not in manifest.pending:
                    problem = "missing (its file is gone and no record of it was kept)"
                elif problem is None and data is not None and key not in manifest.committed and (
                        key not in manifest.pending):
                    problem = "not recorded (written outside xwvnet, or its record was lost)"
            else:
                problem = None if data is not None else "absent (no record tells whether it was ever written)"
            if problem is not None:
                parsed = chunk_key(key)
                assert parsed is not None
                found.append((name, parsed[1], key, problem))
    bad_id_chunks = {index[0] for name, index, _, _ in found if name == _IMAGETTE}
    ids_array = group.get(_IMAGETTE, None)
    for name, index, key, problem in found:
        start, stop = geo.span(name, index[0])
        ids = None
        id_chunk = geo.chunks.get(_IMAGETTE, 1)
        if ids_array is not None and not any(k * id_chunk < stop and start < (k + 1) * id_chunk
                                             for k in bad_id_chunks):
            try:
                ids = [str(v) for v in np.asarray(ids_array[start:stop]).tolist()]
            except Exception:
                ids = None
        report.damage.append(Damage(name, index, key, problem, start, stop, ids))
    return report


def quick_check(root: str | os.PathLike, keys: Iterable[str]) -> list[tuple[str, str]]:
    """Check that chunk objects exist with their recorded sizes, without reading them (cheap: one ``stat`` each).

    A writer runs this before it writes, to find chunks to rewrite; :func:`verify` reads and checksums them all.

    Parameters
    ----------
    root : str or os.PathLike
        The store.
    keys : iterable of str
        The chunk keys expected.

    Returns
    -------
    list of tuple of str
        ``(key, problem)`` for each missing chunk, or chunk whose size differs from every valid record.
    """
    root = Path(root)
    manifest = load_manifest(root)
    if not manifest:
        return []
    out = []
    for key in keys:
        valid = set(manifest.pending.get(key, ()))
        if key in manifest.committed:
            valid.add(manifest.committed[key])
        try:
            size = (root / key).stat().st_size
        except (FileNotFoundError, NotADirectoryError):
            size = None
        sizes = {s for s, _ in valid}
        if size is None:
            if not sizes or ABSENT not in sizes:
                out.append((key, "missing (its file is gone)"))
        elif sizes and size not in sizes:
            out.append((key, f"damaged ({size} bytes, recorded {max(sizes)})"))
    return out
