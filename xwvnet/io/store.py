"""The one door to xwvnet's stores: every icechunk session is opened here, every write is one transaction.

A store is an icechunk repository (a path or URL, :mod:`xwvnet.io.storage`) holding a Zarr v3 hierarchy whose root
attributes carry a format record (``format``, ``version``, ``kind``): an **imagette store** (:func:`to_store`) or an
**embedding store** (:func:`xwvnet.embed_store`: ``embedding(imagette, feature)`` beside the input's coordinates, and
``progress/done[k]``, the rows of chunk ``k`` written, committed with them). Every write is a commit whose message says
what it wrote (:func:`history`). Every read is checked (``crc32c`` on every chunk, and the **whole grid**: every chunk
is written, so one the manifests do not list is damage, never fill values): a :class:`DamagedChunkError` names the
variable, chunk and imagettes. A storage failure is one :class:`StoreAccessError` line.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import os
import shlex
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import icechunk
import numpy as np
import xarray as xr
import zarr
from tqdm.auto import tqdm
from zarr.core.sync import sync

from .. import schema as S
from .._runtime import check_count
from ..errors import (
    DamagedChunkError,
    ForeignStoreWarning,
    IncompleteStoreWarning,
    NotAStoreError,
    StoreAccessError,
    StoreMismatchError,
    WriteConflictError,
    XWVNetError,
    warn,
)
from .storage import Location, commit_lock, locate

if TYPE_CHECKING:
    import pandas as pd

# icechunk's and the cloud SDKs' logs stay quiet (every failure reaches the user as one line) unless asked for
icechunk.set_logs_filter(os.environ.get("ICECHUNK_LOG") or os.environ.get("RUST_LOG") or "off")
BRANCH = "main"
VERSION = 2  # layout version of the format record
COORD_CHUNK = 65536  # 1-D variables along `imagette` are small: keep their chunks large
TIME_UNITS = "milliseconds since 1970-01-01"  # one fixed unit, so that later appends never need another
DONE = "progress/done"  # per-chunk row counts of an embedding store (a subgroup: hidden from xr.open_zarr)
BATCH_BYTES = 128 * 2**20  # pixels loaded and committed per step of to_store (bounds memory, amortises commits)
RETRIES = 20  # transactions whose commit met another writer's: re-run on the new tip up to this many times
_PAD_VALUE = {S.QUICKLOOK: 0, S.SIGMA0: np.nan}
#: what a read of a missing or damaged chunk raises (zarr's checksum codec, icechunk's missing object)
_READ_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, RuntimeError, KeyError, icechunk.IcechunkError)


@dataclass(frozen=True)
class StoreKind:
    """One kind of xwvnet store: ``kind`` (root attribute), ``format`` (the attribute naming it), ``label``."""

    kind: str
    format: str
    label: str

    def record(self) -> dict[str, str | int]:
        """The root attributes that say "this is a store of this kind": format, version and kind."""
        return {"format": self.format, "version": VERSION, "kind": self.kind}


IMAGETTES = StoreKind("imagettes", "xwvnet-imagette-store", "imagette store")
EMBEDDINGS = StoreKind("embeddings", "xwvnet-embedding-store", "embedding store")
KINDS: dict[str, StoreKind] = {k.format: k for k in (IMAGETTES, EMBEDDINGS)}


@dataclass
class StoreReport:
    """What a write did: imagettes ``added``, already ``present``, ``skipped`` (with reasons), the store's ``total``.

    Also chunks ``repaired`` and ``damaged`` (left, with what to do), the run's ``warnings`` and its ``commits``.
    """

    path: str
    added: int = 0
    present: int = 0
    skipped: list[str] = field(default_factory=list)
    total: int = 0
    repaired: int = 0
    damaged: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    commits: int = 0

    def summary(self) -> str:
        """A short table for people: one line per count, then one per skipped input, damage and warning."""
        counts = [("store", self.path), ("added", self.added), ("already present", self.present),
                  ("skipped", len(self.skipped)), ("total in store", self.total), ("commits", self.commits)]
        if self.repaired or self.damaged:
            counts += [("repaired chunks", self.repaired), ("damaged chunks", f"{len(self.damaged)} left")]
        lines = [f"{k:<17}{v}" for k, v in counts] + [f"  skipped: {r}" for r in self.skipped]
        lines += [f"  damaged: {r}" for r in self.damaged]
        return "\n".join(lines + (["warnings:", *(f"  {w}" for w in self.warnings)] if self.warnings else []))


# ---- the door: storage failures as one line ---------------------------------------------------------------------
_CREDENTIALS = {"s3": "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), or --storage-option "
                      "access_key_id=... secret_access_key=... (storage_options= in Python)",
                "gs": "GOOGLE_APPLICATION_CREDENTIALS, or --storage-option service_account_file=...",
                "az": "AZURE_STORAGE_ACCOUNT_KEY (or a SAS token), or --storage-option access_key=... / sas_token=..."}
#: (what the storage says, what the user is told): the first match wins
_FAILURES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("NoSuchBucket", "ContainerNotFound", "bucket does not exist"),
     "the bucket {bucket!r} does not exist; create it first, or check the URL and the endpoint"),
    (("credential provider was not enabled", "no credentials", "CredentialsNotLoaded", "failed to load credentials",
      "credentials not found", "Ec2InstanceMetadata", "imds"),
     "no credentials were found for {scheme}:// stores; set {credentials}"),
    (("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "Forbidden", "403", "AuthorizationFailure"),
     "access denied; check the credentials and their permissions on this bucket and prefix"),
    (("No space left", "os error 28", "QuotaExceeded"), "the disk is full; free space or write elsewhere"),
    (("Read-only file system", "os error 30"), "the location is read-only; write to a writable location"),
    (("Permission denied", "os error 13"), "permission denied; write to a location you may write to"),
    (("Not a directory", "os error 20", "File exists", "os error 17"),
     "a file is in the way (the store, or a folder above it, is a file); choose another path"),
)


def _failure(loc: Location, err: BaseException) -> XWVNetError:
    """The one-line error of a storage failure (icechunk's chain, an OSError, or a Rust panic)."""
    text = str(err)
    if "ref json" in text or "fetch_branch" in text and "serializ" in text:
        return StoreAccessError(f"{loc}: the store's branch pointer (refs/branch.main) is damaged, so it cannot be "
                                f"opened; {_readable_snapshots(loc)}")
    if "manifest" in text.lower() and not isinstance(err, OSError):
        return DamagedChunkError(f"{loc}: a manifest of the store is damaged ({_first_line(text)}); run `xwvnet "
                                 "verify STORE`, or open an earlier snapshot.", "", -1, 0, 0, None)
    for needles, told in _FAILURES:
        if any(n.lower() in text.lower() for n in needles):
            what = told.format(bucket=loc.bucket, scheme=loc.scheme, credentials=_CREDENTIALS.get(loc.scheme, ""))
            return StoreAccessError(f"{loc}: {what}.")
    return StoreAccessError(f"{loc}: the storage failed ({_first_line(text)}); ICECHUNK_LOG=debug shows more.")


def _first_line(text: str) -> str:
    lines = [ln.strip(" |x`->") for ln in text.splitlines()]
    return next((ln for ln in lines if ln), "no message")[:200]


def _readable_snapshots(loc: Location) -> str:
    """The snapshots a store with a damaged branch pointer still holds, and how to point the branch at one."""
    async def names() -> list[str]:
        return [key.rsplit("/", 1)[-1] async for key in loc.zarr_store().list_prefix("snapshots/")]

    try:
        held = sorted(set(sync(names())) - {"1CECHNKREP0F1RSTCMT0"})  # icechunk's fixed id of the empty first commit
    except Exception:  # an unlistable store: said below
        held = []
    if not held:
        return "no snapshot is left to read: restore the store from a copy or bucket versioning."
    return (f"it still holds snapshots {', '.join(held[:6])}{' ...' if len(held) > 6 else ''}; to read one, copy the "
            'store, then write {"snapshot":"ID"} into refs/branch.main/ref.json of the copy and open it.')


def _is_storage_failure(err: BaseException, loc: Location) -> bool:
    """icechunk's errors and panics, and OSErrors on the store's own files (not, e.g., on a vanished source file)."""
    if isinstance(err, XWVNetError):
        return False
    if isinstance(err, icechunk.IcechunkError) or type(err).__name__ == "PanicException":
        return True
    name = getattr(err, "filename", None)
    if not (isinstance(err, OSError) and loc.local and name is not None):
        return False
    path = os.path.abspath(name)
    return path == loc.prefix or path.startswith(loc.prefix + os.sep) or \
        os.path.basename(path) == f".{loc.name}.commit-lock"


def door(func: Callable) -> Callable:
    """Turn every storage failure inside ``func`` (icechunk, cloud SDK, file system, Rust panic) into one line."""
    @functools.wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except BaseException as err:
            loc = None
            for value in (*args, *kwargs.values()):  # the store: the first argument that names a location
                value = value.location if isinstance(value, Snapshot) else value
                if loc is None and isinstance(value, (str, os.PathLike, Location)):
                    with contextlib.suppress(ValueError):
                        loc = locate(value)
            if loc is None or not _is_storage_failure(err, loc):
                raise
            raise _failure(loc, err) from err
    return guarded


# ---- repositories, sessions, transactions ------------------------------------------------------------------------
def _check_local(location: Location, write: bool = False) -> None:
    """A local store path must be a folder or nothing, below folders, writable to write (icechunk panics else)."""
    for above in (location.path, *location.path.parents):
        if above.exists():
            if not above.is_dir():
                raise StoreAccessError(f"{location}: {'it' if above == location.path else above} is a file, not a "
                                       "folder; choose another path for the store.")
            if write and not os.access(above, os.W_OK):
                raise StoreAccessError(f"{location}: the location is read-only ({above} is not writable); write to "
                                       "a writable location.")
            return


def repository(location: Location, *, create: bool = False) -> icechunk.Repository | None:
    """The icechunk repository at ``location``, or None (``create=True``: a new one, never over anything else)."""
    if location.local:
        _check_local(location, write=create)
        if not create and not location.path.exists():
            return None  # icechunk's local storage makes the folder: a question must not leave one behind
    storage = location.storage()
    if icechunk.Repository.exists(storage):
        return icechunk.Repository.open(storage)
    if not create:
        return None
    with commit_lock(location):
        if icechunk.Repository.exists(storage):
            return icechunk.Repository.open(storage)
        if _occupied(location):  # objects but no repository: another process may be creating it
            if (repo := _being_created(location)) is None:
                raise NotAStoreError(f"{location} holds something that is not an xwvnet store ({describe(location)}); "
                                     "refusing to overwrite it. Choose a new path.")
            return repo
        try:
            return icechunk.Repository.create(storage)
        except icechunk.IcechunkError:  # another process is creating it (object stores: conditional writes)
            if (repo := _being_created(location)) is None:
                raise
            return repo


def _being_created(location: Location) -> icechunk.Repository | None:
    """On object storage another process may be creating the repository (objects, no ref yet): wait up to 30 s."""
    for _ in range(0 if location.local else 300):  # local creation is serialised by commit_lock
        time.sleep(0.1)
        if icechunk.Repository.exists(location.storage()):
            return icechunk.Repository.open(location.storage())
    return None


def _occupied(location: Location) -> bool:
    if location.local:
        return location.path.exists() and (not location.path.is_dir() or any(location.path.iterdir()))
    return location.exists()


def read_session(repo: icechunk.Repository, snapshot: str | None = None) -> icechunk.Session:
    """A read-only session at the branch tip, a tag or a snapshot id (unknown: a one-line error naming the fix)."""
    if snapshot is None:
        return repo.readonly_session(branch=BRANCH)
    if snapshot in repo.list_tags():
        return repo.readonly_session(tag=snapshot)
    try:
        return repo.readonly_session(snapshot_id=snapshot)
    except (icechunk.IcechunkError, ValueError) as err:
        raise NotAStoreError(f"snapshot {snapshot!r} is neither a tag nor a snapshot id of this store; "
                             "`xwvnet history STORE` lists them.") from err


def root(store: Any) -> zarr.Group | None:
    """The root group of a session's store, or None when nothing was written yet."""
    try:
        return zarr.open_group(store, mode="r" if store.read_only else "r+", zarr_format=3, use_consolidated=False)
    except (FileNotFoundError, zarr.errors.GroupNotFoundError):
        return None


def _tip(location: Location) -> zarr.Group | None:
    """The root group at the branch tip of the repository at ``location`` (None: no repository, or empty)."""
    repo = repository(location)
    return None if repo is None else root(read_session(repo).store)


def kind_of(group: zarr.Group | None, where: object = "") -> StoreKind | None:
    """The kind of store ``group`` is the root of (None: empty or foreign); a newer format version is refused."""
    kind = None if group is None else KINDS.get(str(group.attrs.get("format")))
    if kind is not None and int(group.attrs.get("version", 0)) > VERSION:
        raise NotAStoreError(f"{where} is an xwvnet {kind.label} of format version {group.attrs['version']}, newer "
                             f"than this xwvnet reads ({VERSION}). Upgrade xwvnet to read or extend it.")
    return kind


def _commit(location: Location, repo: icechunk.Repository, session: icechunk.Session, message: str,
            rebase: bool) -> str:
    """Commit under the local-disk lock; ``rebase``: over disjoint commits (icechunk's ConflictDetector)."""
    with commit_lock(location):
        try:
            return session.commit(message, rebase_with=icechunk.ConflictDetector() if rebase else None)
        except (icechunk.ConflictError, icechunk.RebaseFailedError) as err:
            tip = repo.lookup_snapshot(repo.lookup_branch(BRANCH))
            raise WriteConflictError(
                f"{location}: another writer committed {tip.id} ({tip.message!r}, {tip.written_at:%Y-%m-%d %H:%M:%S}"
                f" UTC) while this write ({message!r}) ran, and the two overlap; nothing of this write was "
                "committed. Re-run it: ingest and embed skip what is stored.") from err


def transact(location: Location, body: Callable[[Any], str | None], *, create: bool = False,
             repo: icechunk.Repository | None = None) -> str | None:
    """The one write path: ``body(store)`` writes into a fresh writable session and returns the commit message.

    Returns the new snapshot id; None from ``body`` commits nothing. When another writer committed first, ``body``
    runs again on the new tip (re-reading what it depends on), up to :data:`RETRIES` times; then WriteConflictError.
    ``repo``: the repository, when already open.
    """
    repo = repository(location, create=create) if repo is None else repo
    if repo is None:
        raise NotAStoreError(f"{location} is not an xwvnet store (found {describe(location)}).")
    for attempt in range(RETRIES):
        session = repo.writable_session(BRANCH)
        message = body(session.store)
        if message is None:
            return None
        try:
            return _commit(location, repo, session, message, rebase=False)
        except WriteConflictError:
            if attempt == RETRIES - 1:
                raise
            time.sleep(min(2.0, 0.05 * 2 ** attempt) * (1 + np.random.default_rng().random()))


# ---- the whole grid: every chunk written, so a chunk the manifests do not list is a hole ---------------------------
_LISTED: dict[tuple[Location, str, str], list[int]] = {}  # (store, snapshot, array) -> its holes: they never change
_LISTING = threading.Lock()
_REMEMBERED = 4096  # grids remembered, over all stores and snapshots: the oldest of other snapshots go first


def _listed_holes(location: Location, session: icechunk.Session, arrays: dict[str, zarr.Array],
                  names: Iterable[str] | None = None) -> dict[str, list[int]]:
    """Chunks along the first dimension that hold a hole, per array of ``names`` (default all) that has one.

    Arrays not listed yet in this snapshot are listed concurrently and remembered: the ids, tag codes and counts
    (read at open) on their own, else every array not listed yet at once. Embedding chunks whose ``done`` count is 0
    are not holes.
    """
    names = sorted(arrays) if names is None else sorted(n for n in set(names) if n in arrays)
    names = sorted({*names, DONE}) if S.EMBEDDING in names and DONE in arrays else names  # the counts decide
    with _LISTING:  # dask's threads reading one array: it is listed once, and never forgotten while read here
        todo = [n for n in names if (location, session.snapshot_id, n) not in _LISTED]
        if any(n != S.IMAGETTE and _along(arrays[n]) for n in todo):  # a read of the data: list the rest too
            todo = [n for n in arrays if (location, session.snapshot_id, n) not in _LISTED]
        if todo:
            _list(location, session, arrays, todo)
        found = {n: _LISTED[location, session.snapshot_id, n] for n in names}
    return {n: chunks for n, chunks in found.items() if chunks}


def _along(array: zarr.Array) -> bool:
    return (array.metadata.dimension_names or ("",))[0] == S.IMAGETTE


def _list(location: Location, session: icechunk.Session, arrays: dict[str, zarr.Array], todo: list[str]) -> None:
    async def every() -> list[frozenset[tuple[int, ...]]]:
        async def one(name: str) -> frozenset[tuple[int, ...]]:
            return frozenset([tuple(c) async for c in session.chunk_coordinates(f"/{name}")])
        return await asyncio.gather(*(one(n) for n in todo))

    try:
        listed = dict(zip(todo, sync(every())))
    except _READ_ERRORS as err:
        raise DamagedChunkError(f"{location}: the manifests of snapshot {session.snapshot_id} are damaged ("
                                f"{_first_line(str(err))}); open an earlier snapshot (`xwvnet history STORE`), or "
                                "restore the store.", "", -1, 0, 0, None) from err
    for name, coords in sorted(listed.items(), key=lambda kv: kv[0] != DONE):  # `done` first: embeddings use it
        array = arrays[name]
        grid = [math.ceil(s / c) for s, c in zip(array.shape, array.chunks)] if array.ndim else []
        missing = [] if len(coords) >= math.prod(grid) else sorted(
            {index[0] if index else 0 for index in np.ndindex(*grid) if index not in coords})
        if name == S.EMBEDDING and missing and DONE in arrays and not _LISTED[location, session.snapshot_id, DONE]:
            done = np.asarray(arrays[DONE][:])
            missing = [k for k in missing if k < done.size and done[k] > 0]
        here = (location, session.snapshot_id)
        while len(_LISTED) >= _REMEMBERED and (old := next((k for k in _LISTED if k[:2] != here), None)) is not None:
            del _LISTED[old]  # the oldest of other snapshots: this one's are read right after
        _LISTED[location, session.snapshot_id, name] = missing


# ---- what is at a location ---------------------------------------------------------------------------------------
@door
def describe(where: str | os.PathLike | Location, storage_options: dict[str, Any] | None = None) -> str:
    """What a location holds, in words, for messages that say what was found."""
    loc = locate(where, storage_options)
    if (repo := repository(loc)) is not None:
        group = root(read_session(repo).store)
        kind = KINDS.get(str(group.attrs.get("format"))) if group is not None else None
        return f"an xwvnet {kind.label} (format version {group.attrs.get('version')})" if kind else \
            "an icechunk repository without an xwvnet store"
    if not _occupied(loc):
        return "nothing (the path does not exist)" if loc.local and not loc.path.exists() else "nothing"
    try:
        members = sorted(name for name, _ in zarr.open_group(loc.zarr_store(), mode="r").members())
    except (FileNotFoundError, zarr.errors.GroupNotFoundError, ValueError):
        return "a folder or file that is not a Zarr store"
    return f"a plain Zarr group (members: [{', '.join(members[:5]) + (', ...' if len(members) > 5 else '')}])"


@door
def store_kind(where: str | os.PathLike | Location, storage_options: dict[str, Any] | None = None) -> str | None:
    """The kind of xwvnet store at a path or URL: ``"imagettes"``, ``"embeddings"`` or None.

    >>> store_kind("does-not-exist.zarr") is None
    True
    """
    loc = locate(where, storage_options)
    kind = kind_of(_tip(loc), loc)
    return None if kind is None else kind.kind


@door
def root_attrs(store: str | os.PathLike | Location, *, storage_options: dict[str, Any] | None = None) -> dict:
    """The root attributes of the xwvnet store at ``store`` (format record included); empty when there is none."""
    group = _tip(locate(store, storage_options))
    return {} if group is None else dict(group.attrs)


@door
def check_target(location: Location, kind: StoreKind) -> tuple[icechunk.Repository | None, zarr.Group | None]:
    """Refuse to write a store of ``kind`` over anything else; nothing, or an empty repository, is fine.

    Returns the repository there and its root group at the tip (None: nothing yet), for the write to use.
    """
    if location.local:
        _check_local(location, write=True)
    repo = repository(location)
    occupied = repo is None and _occupied(location)  # looked at once: a creator may start right after
    repo = _being_created(location) if occupied else repo
    group = None if repo is None else root(read_session(repo).store)
    found = kind_of(group, location)
    if occupied if repo is None else group is not None and found is not kind and (
            found is not None or any(True for _ in group.members())):
        raise NotAStoreError(f"{location} holds something that is not an xwvnet {kind.label} (found "
                             f"{describe(location)}); refusing to overwrite it. Choose a new path.")
    return repo, group


@dataclass(frozen=True)
class Snapshot:
    """One committed snapshot of an xwvnet store, read-only: its ``group``, ``kind``, ``id``, message and holes."""

    location: Location
    id: str
    repo: icechunk.Repository
    group: zarr.Group
    kind: StoreKind
    store: Any = None  # the read-only session's store
    arrays: dict[str, zarr.Array] = field(default_factory=dict)  # the root's arrays (and DONE), listed once
    source: Any = None  # xarray's view of the root group, over the same listing

    @property
    def message(self) -> str:
        """The commit message of this snapshot (looked up when asked: opening does not need it)."""
        return self.repo.lookup_snapshot(self.id).message

    def holes(self, names: Iterable[str] | None = None) -> dict[str, list[int]]:
        """The chunks (along ``imagette``) the manifests do not list, per array of ``names`` (default all) with any.

        Each array's grid is listed once per snapshot, when first asked for (all asked for at once, concurrently).
        """
        return _listed_holes(self.location, self.store.session, self.arrays, names)

    def rows(self, name: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Rows of a stored array; a hole, missing chunk or failed checksum is a DamagedChunkError naming it."""
        array = self.arrays[name]
        stop = array.shape[0] if stop is None else stop
        step, chunks = (array.chunks[0] if array.ndim else 1), self.check(name, start, stop)
        try:
            return np.asarray(array[start:stop])
        except _READ_ERRORS as err:
            for k in chunks:
                try:
                    array[k * step : (k + 1) * step]
                except _READ_ERRORS as inner:
                    raise self.damaged(name, k, inner) from err
            raise

    def check(self, name: str, start: int, stop: int) -> range:
        """The chunks rows ``start:stop`` of ``name`` span; a hole among them is a DamagedChunkError naming it."""
        step = self.arrays[name].chunks[0] if self.arrays[name].ndim else 1
        chunks = range(start // step, max(start // step + 1, math.ceil(stop / step)))
        for k in self.holes([name]).get(name, ()):
            if k in chunks:
                raise self.damaged(name, k)
        return chunks

    def damaged(self, name: str, k: int, err: BaseException | None = None) -> DamagedChunkError:
        """The error naming chunk ``k`` of ``name``, its imagettes and what to do (``err`` None: a hole)."""
        array = self.arrays[name]
        step, size = (array.chunks[0], array.shape[0]) if array.ndim else (1, 1)
        lo, hi, names = k * step, min(size, (k + 1) * step), None
        if name != S.IMAGETTE and S.IMAGETTE in self.arrays:
            with contextlib.suppress(*_READ_ERRORS):
                names = [str(v) for v in np.asarray(self.arrays[S.IMAGETTE][lo:hi]).tolist()]
        problem = ("missing: not listed in the snapshot's manifests" if err is None else "checksum mismatch"
                   if "checksum" in str(err) else f"unreadable ({_first_line(str(err))})")
        shown = "their ids are unreadable too" if names is None else "ids " + ", ".join(names[:4]) + (
            f", ..., {names[-1]}" if len(names) > 4 else "")
        return DamagedChunkError(
            f"chunk {k} of {name!r} is damaged ({problem}): imagettes {lo}..{hi - 1} ({shown}). Run `xwvnet verify "
            "STORE` to list all damage; `xwvnet ingest --repair` (imagettes) or `xwvnet embed --repair` (embeddings) "
            "rewrites it, or open an earlier snapshot.", name, k, lo, hi, names)

    def ids(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Imagette ids ``start:stop`` as Python strings."""
        if S.IMAGETTE not in self.arrays:
            return np.array([], dtype=object)
        return np.array([str(v) for v in self.rows(S.IMAGETTE, start, stop).tolist()], dtype=object)

    @property
    def size(self) -> int:
        """Imagettes in the store."""
        return self.arrays[S.IMAGETTE].shape[0] if S.IMAGETTE in self.arrays else 0

    @property
    def done(self) -> np.ndarray:
        """Per-chunk row counts of an embedding store (``done[k]`` rows of chunk ``k`` written; empty if none)."""
        return self.rows(DONE) if DONE in self.arrays else np.zeros(0, np.int32)


@door
def opened(location: Location, snapshot: str | None = None, *, strict: bool = True,
           repo: icechunk.Repository | None = None) -> Snapshot:
    """The xwvnet store at ``location`` as one committed snapshot, its grid listed (no store: NotAStoreError).

    ``strict``: a hole in what is read at once (ids, tag codes, ``done``) is a :class:`DamagedChunkError` now;
    else it is only listed in ``holes`` (for verify and status). ``repo``: the repository, when already open.
    """
    from xarray.backends import ZarrStore

    repo = repository(location) if repo is None else repo
    session = None if repo is None else read_session(repo, snapshot)
    group = None if session is None else root(session.store)
    if group is None and session is not None and snapshot is not None:
        raise NotAStoreError(f"snapshot {snapshot} of {location} is the store's empty first commit ('Repository "
                             "initialized'): it holds no imagettes; `xwvnet history STORE` lists the others.")
    kind = kind_of(group, location)
    if kind is None:
        raise NotAStoreError(f"{location} is not an xwvnet store (found {describe(location)}); create one with "
                             "xwvnet.to_store(ds, path) or `xwvnet ingest`.")
    source = ZarrStore(group, mode="r", use_zarr_fill_value_as_mask=False)  # lists the root's members, once
    arrays = dict(source.arrays())
    if DONE.split("/")[0] in source.members:
        arrays[DONE] = group[DONE]
    snap = Snapshot(location, session.snapshot_id, repo, group, kind, session.store, arrays, source)
    eager = sorted(snap.holes(name for name, array in arrays.items() if name == S.IMAGETTE or not _along(array)))
    if eager and strict:  # ids, tag codes and done counts are read at once: their holes are errors now
        snap.rows(eager[0])  # raises the named error of its first hole
    return snap


def intact(snap: Snapshot, write: str, reads: Iterable[tuple[str, int, int]] = ()) -> None:
    """Refuse ``write`` into a snapshot with holes, or whose rows ``reads`` (``(name, start, stop)``) do not read back.

    zarr reads the stored rows of a chunk that a write completes: a hole there would be written back as blanks.
    """
    try:
        if found := snap.holes():
            name, chunks = min(found.items())
            raise snap.damaged(name, chunks[0])
        for name, start, stop in reads:
            snap.rows(name, start, stop)
    except DamagedChunkError as err:
        raise DamagedChunkError(f"{snap.location}: {write} refused, nothing written: {err}", err.variable,
                                err.chunk_index, err.start, err.stop, err.ids) from None


# ---- reading -----------------------------------------------------------------------------------------------------
class _Guarded:
    """A lazy stored variable as a dask source: holes, missing or damaged chunks raise named errors."""

    def __init__(self, variable: xr.Variable, name: str, snap: Snapshot) -> None:
        self.variable, self.name, self.snap = variable, name, snap
        self.shape, self.ndim = variable.shape, variable.ndim
        self.dtype = np.dtype(object) if variable.dtype.kind == "T" else variable.dtype

    def __getitem__(self, key: tuple[slice, ...]) -> np.ndarray:
        first = key[0] if isinstance(key, tuple) else key
        if isinstance(first, slice):
            start, stop, _ = first.indices(self.shape[0])
        else:  # an integer or an array of positions (outer indexing)
            rows = np.atleast_1d(np.arange(self.shape[0])[first])
            start, stop = (int(rows.min()), int(rows.max()) + 1) if rows.size else (0, 0)
        self.snap.check(self.name, start, stop)  # the grid is listed at the first read
        try:
            return np.asarray(self.variable[key].values, dtype=self.dtype)
        except _READ_ERRORS:
            self.snap.rows(self.name, start, stop)  # raises the named error
            raise


def _imagette_chunks(chunks: int | dict[str, int] | str) -> int | None:
    return chunks if isinstance(chunks, int) else (chunks.get(S.IMAGETTE) if isinstance(chunks, dict) else None)


@door
def dataset(snap: Snapshot, chunks: int | dict[str, int] | str = "store") -> xr.Dataset:
    """The Dataset of a snapshot, built over its listing: every variable along ``imagette`` read through _Guarded."""
    import dask.array as da

    try:
        ds = xr.open_dataset(snap.store, engine="zarr", store=snap.source, chunks=None)
    except _READ_ERRORS:
        snap.ids()  # a damaged id chunk: raises the named error
        raise
    out = {}
    for name, var in ds.variables.items():
        if name != S.IMAGETTE and var.dims[:1] == (S.IMAGETTE,):
            source = _Guarded(var, str(name), snap)
            blocks = (_imagette_chunks(chunks) or snap.arrays[str(name)].chunks[0], *snap.arrays[str(name)].chunks[1:])
            var = xr.Variable(var.dims, da.from_array(source, chunks=blocks, name=f"open_store-{name}-{snap.id}-"
                              f"{blocks}", asarray=False, meta=np.empty((0,) * var.ndim, source.dtype)),
                              var.attrs, var.encoding)
        elif name in ds.xindexes:  # ids and tag codes, read once for their index: kept, not read again
            var = xr.IndexVariable(var.dims, ds.indexes[name].to_numpy(dtype=object), var.attrs, var.encoding)
        out[name] = var.astype(object) if var.dtype.kind == "T" else var
    attrs = {k: v for k, v in ds.attrs.items() if k not in IMAGETTES.record()}
    return xr.Dataset({k: v for k, v in out.items() if k not in ds.coords},
                      {k: v for k, v in out.items() if k in ds.coords}, attrs)


@door
def open_store(
    store: str | os.PathLike | Location,
    *,
    snapshot: str | None = None,
    chunks: int | dict[str, int] | str = "store",
    storage_options: dict[str, Any] | None = None,
) -> xr.Dataset:
    """Open an xwvnet store of either kind lazily, as it is now or as it was at an earlier commit.

    Every read is checked (manifests list every chunk, every chunk passes its checksum). An embedding store whose run
    did not finish shows only its complete rows, with an :class:`IncompleteStoreWarning` naming the command that
    completes them. A plain Zarr store that follows the data model opens read-only, with a
    :class:`ForeignStoreWarning`.

    Parameters
    ----------
    store : str, os.PathLike or Location
        A path, or a ``file://``, ``s3://``, ``gs://`` or ``az://`` URL.
    snapshot : str, optional
        A snapshot id or tag (see :func:`history`): open the store as it was then. Default: the newest commit.
    chunks : int, dict or "store", default "store"
        Imagettes per dask chunk (an int, or ``{"imagette": n}``); ``"store"``: one dask chunk per stored chunk.
    storage_options : dict, optional
        Credentials and endpoint (see :func:`xwvnet.io.storage.locate`); default the standard environment.

    Returns
    -------
    xarray.Dataset
        The store's variables along ``imagette`` (strings as Python objects), dask-backed; root attributes other
        than the format record in ``attrs``.

    Raises
    ------
    NotAStoreError
        If no store is there (the message says what was found), or ``snapshot`` is unknown or the empty first commit.
    DamagedChunkError
        When a chunk is missing or damaged: at open for ids, else when that chunk is computed.
    StoreAccessError
        When the storage fails (no bucket, no credentials, denied, a file in the way ...), in one line.
    """
    loc = locate(store, storage_options)
    repo = repository(loc)
    if repo is None:
        if snapshot is not None:
            raise NotAStoreError(f"{loc} is not an xwvnet store (found {describe(loc)}): it has no snapshots.")
        return _open_foreign(loc, chunks)
    snap = opened(loc, snapshot, repo=repo)
    ds = dataset(snap, chunks)
    if snap.kind is EMBEDDINGS:
        keep = complete_rows(ds.sizes[S.IMAGETTE], int(ds.attrs.get("chunk", 1)), snap.done)
        if not keep.all():
            warn(f"{loc}: the embedding run is incomplete: {int((~keep).sum())} of {keep.size} imagettes are not "
                 f"embedded yet and are left out; complete them with `{completing_command(loc, ds.attrs)}` "
                 "(`xwvnet status STORE` says more).", IncompleteStoreWarning)
            ds = ds.isel({S.IMAGETTE: np.flatnonzero(keep)})
    return ds


def complete_rows(n: int, chunk_size: int, done: np.ndarray) -> np.ndarray:
    """Which of ``n`` rows of an embedding store are written, from its per-chunk counts ``done``."""
    position = np.arange(n)
    k = position // max(1, chunk_size)
    counts = np.zeros(math.ceil(n / max(1, chunk_size)), dtype=np.int64)
    counts[: min(counts.size, done.size)] = done[: counts.size]
    return (position - k * chunk_size) < counts[k]


def completing_command(location: object, attrs: dict[str, Any], repair: bool = False) -> str:
    """The command that completes (``repair``: repairs) a store, from its root attributes."""
    if attrs.get("kind") == IMAGETTES.kind or (repair and "encoder" not in attrs):
        return f"xwvnet ingest SOURCES --out {location} --repair"
    command = ["xwvnet", "embed", str(attrs.get("input", "INPUT")), str(location), "--encoder",
               str(attrs.get("encoder", "ENCODER"))]
    for flag, key in (("--precision", "precision"), ("--dtype", "embedding_dtype")):
        if attrs.get(key, "float32") != "float32":  # a resume with other values is refused
            command += [flag, str(attrs[key])]
    return shlex.join(command + (["--repair"] if repair else []))


def _open_foreign(loc: Location, chunks: int | dict[str, int] | str) -> xr.Dataset:
    found = describe(loc)
    if not found.startswith("a plain Zarr group"):
        raise NotAStoreError(f"{loc} is not an xwvnet store (found {found}). Create one with xwvnet.to_store(ds, "
                             "path) or `xwvnet ingest`.")
    size = _imagette_chunks(chunks)
    ds = xr.open_zarr(loc.zarr_store(), consolidated=None, chunks={} if size is None else {S.IMAGETTE: size})
    if S.IMAGETTE not in ds.dims:
        raise NotAStoreError(f"{loc} is a plain Zarr store without an {S.IMAGETTE!r} dimension (dims "
                             f"{dict(ds.sizes)}); it does not follow the xwvnet data model (docs/data-model.md). "
                             "Open it with xarray.")
    warn(f"{loc} is a plain Zarr store written outside xwvnet: opened read-only, with no integrity "
         "guarantees (no checksums, no transactions). Copy it into an xwvnet store with xwvnet.to_store.",
         ForeignStoreWarning)
    strings = {name: var.astype(object) for name, var in ds.variables.items() if var.dtype.kind in "TU"}
    return ds.assign_coords({k: v for k, v in strings.items() if k in ds.coords}).assign(
        {k: v for k, v in strings.items() if k not in ds.coords})


@door
def open_stores(
    stores: str | os.PathLike | Sequence[str | os.PathLike],
    chunks: int | dict[str, int] | str = "store",
    *,
    storage_options: dict[str, Any] | None = None,
) -> xr.Dataset:
    """Open several xwvnet stores joined on imagette ids (e.g. embeddings with the imagettes they came from).

    Only imagettes present in every store are kept, in the first store's order; a variable (or coordinate) in
    several stores, and the attributes, are taken from the first store that has them.

    Parameters
    ----------
    stores : str, os.PathLike or sequence of them
        Imagette stores and/or embedding stores (paths or URLs).
    chunks : int, dict or "store", default "store"
        As for :func:`open_store`.
    storage_options : dict, optional
        As for :func:`open_store` (the same for every store).

    Returns
    -------
    xarray.Dataset
        The joined stores, lazy.

    Raises
    ------
    StoreMismatchError
        If no store is given or they share no imagette id (a ``ValueError``); see :func:`open_store` for the rest.
    """
    stores = [stores] if isinstance(stores, (str, os.PathLike)) else list(stores)
    if not stores:
        raise StoreMismatchError("give at least one store to open.")
    each = [open_store(p, chunks=chunks, storage_options=storage_options) for p in stores]
    joined = xr.merge(each, join="inner", compat="override", combine_attrs="override")
    first = each[0].indexes[S.IMAGETTE]
    order = first[first.isin(joined.indexes[S.IMAGETTE])]
    if len(order) == 0 and any(d.sizes[S.IMAGETTE] for d in each):
        sizes = ", ".join(f"{p} ({d.sizes[S.IMAGETTE]})" for p, d in zip(stores, each))
        raise StoreMismatchError(f"the stores share no imagette id: {sizes}. Join stores made from the same "
                                 "imagettes.")
    return joined.sel({S.IMAGETTE: order})


@door
def history(store: str | os.PathLike | Location, *, storage_options: dict[str, Any] | None = None) -> pd.DataFrame:
    """The commits of a store, newest first.

    Parameters
    ----------
    store : str, os.PathLike or Location
        The store (path or URL).
    storage_options : dict, optional
        See :func:`open_store`.

    Returns
    -------
    pandas.DataFrame
        Columns ``snapshot`` (for ``open_store(store, snapshot=...)``), ``time`` (UTC) and ``message``.

    Raises
    ------
    NotAStoreError
        If no xwvnet store is there.
    """
    import pandas as pd

    snap = opened(locate(store, storage_options), strict=False)
    rows = [(s.id, pd.Timestamp(s.written_at).tz_convert("UTC"), s.message) for s in snap.repo.ancestry(branch=BRANCH)]
    return pd.DataFrame(rows, columns=["snapshot", "time", "message"])


# ---- writing imagettes -------------------------------------------------------------------------------------------
def encoding(ds: xr.Dataset, chunk_size: int) -> dict[str, dict[str, object]]:
    """Zarr encoding of a new store: ``chunk_size`` rows per N-d chunk, big 1-D chunks, int64 ms times, crc32c."""
    enc: dict[str, dict[str, object]] = {}
    for name, var in ds.variables.items():
        enc[str(name)] = {"compressors": [zarr.codecs.ZstdCodec(), zarr.codecs.Crc32cCodec()]}
        if var.dims and var.dims[0] == S.IMAGETTE:
            enc[str(name)]["chunks"] = (chunk_size if var.ndim > 1 else max(chunk_size, COORD_CHUNK), *var.shape[1:])
    if S.TIME in ds.variables:
        enc[S.TIME].update(units=TIME_UNITS, dtype="int64")
    return enc


def as_written(ds: xr.Dataset) -> xr.Dataset:
    """A copy of ``ds`` as a store holds it: variable-length strings, times floored to ms, no per-read attrs."""
    ds = ds.copy()
    for name, var in ds.variables.items():
        if var.dtype.kind in "UST":
            ds[name] = var.astype(object)
    ds.attrs = {k: v for k, v in ds.attrs.items() if k != "skipped"}
    if S.TIME in ds.variables and ds[S.TIME].dtype.kind == "M":
        ds = ds.assign_coords({S.TIME: ds[S.TIME].dt.floor("ms").assign_attrs(ds[S.TIME].attrs)})
    return ds


def fit_to_store(ds: xr.Dataset, group: zarr.Group, arrays: dict[str, zarr.Array] | None = None) -> xr.Dataset:
    """A loaded batch made to fit a store: tags in its order (-1 when it has tags and the batch none), images padded.

    The store's image arrays grow when the batch is larger; variables or tag codes that differ are refused.
    ``arrays``: the store's arrays at the snapshot ``group`` starts from, when already listed.
    """
    arrays = dict(group.arrays()) if arrays is None else arrays
    stored = set(arrays) - {DONE}
    codes = [str(c) for c in np.asarray(arrays[S.LABEL][:]).tolist()] if S.LABEL in arrays else []
    if S.LABELS in stored and S.LABELS not in ds:  # tags were added to the store (e.g. during an ingest): unknown
        ds = ds.assign_coords({S.LABEL: np.array(codes, dtype=object)}).assign(
            {S.LABELS: ((S.IMAGETTE, S.LABEL), np.full((ds.sizes[S.IMAGETTE], len(codes)), -1, np.int8))})
    mine = set(map(str, ds.variables)) - {S.LINE, S.SAMPLE}
    if stored - mine or mine - stored:
        raise StoreMismatchError(
            f"the imagettes to append do not have the store's variables: missing {sorted(stored - mine)}, "
            f"extra {sorted(mine - stored)}. Make them match (add or drop variables) or write to a new store.")
    if S.LABEL in ds.dims:
        if {str(code) for code in ds[S.LABEL].values} != set(codes):
            raise StoreMismatchError(f"tag codes differ from the store's {codes}: found {list(ds[S.LABEL].values)}")
        ds = ds.sel({S.LABEL: np.array(codes, dtype=object)})
    shape = next(tuple(arrays[n].shape[1:]) for n in S.IMAGE_VARS if n in arrays)
    need = (max(shape[0], ds.sizes.get(S.LINE, 0)), max(shape[1], ds.sizes.get(S.SAMPLE, 0)))
    for name in S.IMAGE_VARS if need != shape else ():
        if name in group:  # grown: the padding of the stored rows is written too (a chunk never written is a hole)
            array = group[name].with_config({"write_empty_chunks": True})
            array.resize((array.shape[0], *need))
            for lo in range(0, array.shape[0], array.chunks[0] * 16):
                rows = slice(lo, lo + array.chunks[0] * 16)
                array[rows, shape[0]:, :] = _PAD_VALUE[name]
                array[rows, : shape[0], shape[1]:] = _PAD_VALUE[name]
    pad = {S.LINE: (0, need[0] - ds.sizes[S.LINE]), S.SAMPLE: (0, need[1] - ds.sizes[S.SAMPLE])}
    padded = {name: ds[name].pad(pad, constant_values=_PAD_VALUE[name]).astype(ds[name].dtype)
              for name in S.IMAGE_VARS if name in ds}
    return ds.drop_vars(list(padded)).assign(padded)


def append_rows(store: Any, ds: xr.Dataset, n: int) -> None:
    """Write ``ds``'s imagettes as rows ``n:`` of the store's arrays along ``imagette``, every array at once.

    What ``to_zarr(append_dim="imagette")`` does for a store of this layout, in one concurrent round of zarr's async
    API instead of one array after another: values are CF-encoded by xarray against each stored array's units and
    dtype (a value that does not fit the stored dtype is refused), every touched chunk is written.
    """
    import zarr.api.asynchronous as za

    names = [str(name) for name, var in ds.variables.items() if var.dims[:1] == (S.IMAGETTE,)]

    async def write() -> None:
        arrays = await asyncio.gather(*(za.open_array(store=store, path=name, zarr_format=3) for name in names))
        values = []
        for name, array in zip(names, arrays):
            var = ds[name].variable
            if var.dtype.kind == "M":  # times in the stored units, by xarray's own encoder
                enc = {"units": array.attrs["units"], "calendar": array.attrs.get("calendar", "proleptic_gregorian"),
                       "dtype": array.dtype}
                var = xr.conventions.encode_cf_variable(xr.Variable(var.dims, var.values, encoding=enc), name=name)
            data = np.asarray(var.values)
            if array.dtype.kind not in "OT" and not np.can_cast(data.dtype, array.dtype, "same_kind"):
                raise StoreMismatchError(f"{name!r} is {data.dtype} in the imagettes to append, {array.dtype} in the "
                                         "store; convert it to the store's dtype or write to a new store.")
            values.append(data)
        await asyncio.gather(*(array.resize((n + len(data), *array.shape[1:])) for array, data in zip(arrays, values)))
        await asyncio.gather(*(array.with_config({"write_empty_chunks": True}).setitem(slice(n, n + len(data)), data)
                               for array, data in zip(arrays, values)))

    sync(write())


def _append(loc: Location, batch: xr.Dataset, chunk_size: int, command: str, seen: list[Any]) -> tuple[int, int]:
    """Append one batch in one transaction; return (added, total).

    ``seen``: [the snapshot the batch was filtered at, the repository, to_store's listing and its snapshot], kept
    across batches. Ids stored by a writer that committed since ``seen[0]`` are left out too; ``seen[0]`` becomes the
    new snapshot.
    """
    counts = [0, 0]

    def body(store: Any) -> str | None:
        group = root(store)
        kind = kind_of(group, loc)
        if group is not None and kind is not IMAGETTES and (kind is not None or any(True for _ in group.members())):
            raise NotAStoreError(f"{loc} is not an imagette store (found {describe(loc)}); refusing to write into it.")
        n = group[S.IMAGETTE].shape[0] if kind is IMAGETTES and S.IMAGETTE in group else 0
        moved = n and store.session.snapshot_id != seen[0]
        stored = np.asarray(group[S.IMAGETTE][:]).astype(object) if moved else np.array([], dtype=object)
        part = batch.isel({S.IMAGETTE: ~np.isin(batch[S.IMAGETTE].values.astype(object), stored)})
        counts[:] = part.sizes[S.IMAGETTE], n + part.sizes[S.IMAGETTE]
        if counts[0] == 0:
            return None
        if n == 0:
            part.assign_attrs(IMAGETTES.record()).to_zarr(store, mode="w", consolidated=False,
                                                          encoding=encoding(part, chunk_size), write_empty_chunks=True)
        else:
            listed = seen[2] if store.session.snapshot_id == seen[3] else None  # the listing of to_store's open
            try:
                append_rows(store, fit_to_store(part, group, listed), n)
            except _READ_ERRORS as err:  # a partial last chunk that does not read back (a checksum): name it
                if not isinstance(err, XWVNetError):
                    snap = opened(loc, store.session.snapshot_id, strict=False)
                    intact(snap, "appending", [(k, n - n % a.chunks[0], n) for k, a in snap.arrays.items()
                                               if _along(a)])
                raise
        first, last = str(part[S.IMAGETTE].values[0]), str(part[S.IMAGETTE].values[-1])
        return f"{command}: {counts[0]} imagettes appended ({first} .. {last}); {counts[1]} in store"

    seen[0] = transact(loc, body, create=seen[1] is None, repo=seen[1]) or seen[0]
    seen[1] = seen[1] or repository(loc)
    return counts[0], counts[1]


@door
def to_store(
    ds: xr.Dataset,
    out: str | os.PathLike | Location,
    *,
    chunk_size: int | None = None,
    progress: bool = False,
    storage_options: dict[str, Any] | None = None,
    command: str = "to_store",
) -> StoreReport:
    """Write imagettes to an imagette store, creating it or appending; ids already in the store are skipped.

    Works batch by batch (whole chunks, about 128 MB of pixels, one commit each): a lazy Dataset of any size is never
    loaded whole, and a write killed at any moment leaves the store as of its last commit (the same call completes
    it). A batch whose commit meets another writer's is written again without the ids stored meanwhile.

    Parameters
    ----------
    ds : xarray.Dataset
        Imagettes following the xwvnet data model (:func:`xwvnet.validate` must pass).
    out : str, os.PathLike or Location
        The store (path or URL); anything else already there (an embedding store, plain Zarr, files) is refused.
    chunk_size : int, optional
        Imagettes per stored chunk (at most 1 GiB of pixels); default the existing store's, else a few MB of pixels.
    progress : bool, default False
        Show a tqdm bar of imagettes, moving as each batch is written.
    storage_options : dict, optional
        Credentials and endpoint (see :func:`xwvnet.io.storage.locate`); default the standard environment.
    command : str, default "to_store"
        What writes, the first word of each commit message.

    Returns
    -------
    StoreReport
        Imagettes added, already present, skipped (from ``ds.attrs["skipped"]``), commits, and the store's total.

    Raises
    ------
    ValueError
        Checked before anything is written: ``ds`` is not a valid imagette Dataset, ``chunk_size`` is not a
        positive integer or over the limit, ``ds`` does not fit the store (:class:`StoreMismatchError`), or the
        location holds something other than an imagette store (:class:`NotAStoreError`).
    WriteConflictError
        If other writers kept committing over this one (after several retries).
    DamagedChunkError
        If the store's ids cannot be read.
    StoreAccessError
        When the storage fails (no bucket, no credentials, denied, full, read-only ...), in one line.
    """
    from .quicklook import chunk_length

    S.validate(ds)
    row_bytes = ds[S.image_var(ds)].dtype.itemsize * ds.sizes[S.LINE] * ds.sizes[S.SAMPLE]
    chunk_size = None if chunk_size is None else check_count(chunk_size, "chunk_size", row_bytes=row_bytes)
    loc = locate(out, storage_options)
    repo, group = check_target(loc, IMAGETTES)
    snap = opened(loc, repo=repo) if group is not None else None
    stored = snap.ids() if snap is not None else np.array([], dtype=object)
    seen = [snap.id if snap is not None else "", repo, snap and snap.arrays, snap and snap.id]
    fresh = ~np.isin(ds[S.IMAGETTE].values.astype(object), stored)
    report = StoreReport(path=str(loc), present=int((~fresh).sum()), skipped=list(ds.attrs.get("skipped", [])),
                         total=len(stored))
    ds = as_written(ds.isel({S.IMAGETTE: np.flatnonzero(fresh)}))
    n = ds.sizes[S.IMAGETTE]
    if snap is not None and n:
        intact(snap, "appending")
    if chunk_size is None:
        existing = [snap.arrays[v].chunks[0] for v in S.IMAGE_VARS if snap is not None and v in snap.arrays]
        chunk_size = existing[0] if existing else chunk_length(row_bytes)
    step = chunk_size * max(1, BATCH_BYTES // max(1, chunk_size * row_bytes))  # whole chunks, ~BATCH_BYTES
    with tqdm(total=n, desc="writing", unit="img", disable=not progress or not n) as bar:
        for start in range(0, n, step):
            added, report.total = _append(loc, ds.isel({S.IMAGETTE: slice(start, start + step)}).load(),
                                          chunk_size, command, seen)
            report.added += added
            report.present += min(step, n - start) - added
            report.commits += 1
            bar.update(min(step, n - start))
    return report


@door
def add_variables(
    ds: xr.Dataset,
    out: str | os.PathLike | Location,
    names: Iterable[str] | None = None,
    *,
    storage_options: dict[str, Any] | None = None,
    command: str = "add_variables",
) -> str:
    """Write per-imagette variables (e.g. ``labels``, probe outputs) into an existing imagette store, in one commit.

    Variables already in the store are replaced whole. ``ds`` must hold exactly the store's imagettes in the
    store's order: if another writer appended meanwhile, the write is refused (never applied to the wrong rows).

    Parameters
    ----------
    ds : xarray.Dataset
        The store's imagettes in the store's order, as :func:`open_store` gives them.
    out : str, os.PathLike or Location
        The imagette store to write into.
    names : iterable of str, optional
        Variables to write; default every data variable along ``imagette``.
    storage_options : dict, optional
        See :func:`to_store`.
    command : str, default "add_variables"
        What writes, the first word of the commit message.

    Returns
    -------
    str
        The snapshot id of the commit.

    Raises
    ------
    StoreMismatchError
        If ``ds`` does not hold the store's imagettes in the store's order (a ``ValueError``).
    NotAStoreError
        If no imagette store is there (a ``ValueError``).
    WriteConflictError
        If another writer committed while this one wrote.
    """
    loc = locate(out, storage_options)
    snap = opened(loc)
    if snap.kind is not IMAGETTES or S.IMAGETTE not in snap.arrays:
        raise NotAStoreError(f"{loc} holds no imagettes (found {describe(loc)}); write them first with "
                             "xwvnet.to_store.")
    names = list(names) if names is not None else [n for n in ds.data_vars if S.IMAGETTE in ds[n].dims]
    theirs = [c for c in ds[names].coords if c != S.IMAGETTE and S.IMAGETTE in ds[c].dims]
    written = as_written(ds[names].drop_vars(theirs)).drop_vars(S.IMAGETTE)
    given = ds[S.IMAGETTE].values.astype(object)

    def body(store: Any) -> str:
        group = root(store)
        stored = np.asarray(group[S.IMAGETTE][:]).astype(object)
        if len(given) != len(stored) or not (given == stored).all():
            raise StoreMismatchError(f"the Dataset's imagettes ({len(given)}) are not the store's ({len(stored)}) in "
                                     "the store's order (did another writer append since you opened it?); start "
                                     "from xwvnet.open_store(path) again and keep every imagette.")
        for name in names:
            if name in group:
                del group[name]
        chunk_size = next((group[v].chunks[0] for v in S.IMAGE_VARS if v in group), len(stored))
        enc = {k: v for k, v in encoding(written, chunk_size).items() if k not in group}  # stored tag codes stay
        written.assign_attrs(dict(group.attrs)).to_zarr(store, mode="a", consolidated=False, encoding=enc,
                                                        write_empty_chunks=True)
        return f"{command}: {', '.join(names)} for {len(stored)} imagettes"

    return transact(loc, body)


# ---- the embedding store ----------------------------------------------------------------------------------------
@door
def extend_embedding_store(
    location: Location, source: xr.Dataset, *, chunk_size: int, dim: int, attrs: dict[str, Any],
    embedding_attrs: dict[str, Any], check: Callable[[Snapshot | None], int] | None = None,
) -> tuple[int, np.ndarray]:
    """Create the embedding store, or extend it to all of ``source``'s imagettes, in one transaction.

    ``check(snapshot)`` (the output as stored, None when new; run again after another run's commit) may refuse, and
    returns the chunk size. Coordinates are copied by blocks; ``embedding`` only grows (rows come through
    :func:`write_embedding_rows`); every ``progress/done`` count is written, zeros included, so a missing one is
    damage. Returns ``(chunk size, done counts)``.
    """
    import dask.array as da

    n_in = source.sizes[S.IMAGETTE]
    stored_as = np.float16 if embedding_attrs.get(S.COMPACT_DTYPE) == "float16" else np.float32
    result: list[Any] = [chunk_size, np.zeros(0, np.int32)]

    def body(store: Any) -> str | None:
        snap = opened(location, store.session.snapshot_id) if kind_of(root(store), location) is EMBEDDINGS else None
        if snap is not None:
            intact(snap, "embedding into it")
        size = check(snap) if check is not None else chunk_size
        if snap is not None:  # the rows done in chunks a run completes are read back by zarr
            intact(snap, "embedding into it", [(S.EMBEDDING, k * size, k * size + int(c)) for k, c in
                                               enumerate(snap.done) if 0 < c < min(size, n_in - k * size)])
        n_out = 0 if snap is None else snap.size
        result[:] = size, (np.zeros(0, np.int32) if snap is None else snap.done)
        if n_out == n_in:
            return None
        block_size = max(size, COORD_CHUNK) * 16
        names = [n for n, v in source.coords.items() if v.dims == (S.IMAGETTE,)]
        for start in range(n_out, n_in, block_size):
            stop = min(n_in, start + block_size)
            block = as_written(xr.Dataset(coords={n: source[n].variable for n in names}).isel(
                {S.IMAGETTE: slice(start, stop)}).load())
            empty = da.full((stop - start, dim), np.nan, chunks=(size, dim), dtype=stored_as)
            block = block.assign({S.EMBEDDING: ((S.IMAGETTE, S.FEATURE), empty, embedding_attrs)})
            block.attrs = {**attrs, "chunk": size, **EMBEDDINGS.record()}
            where = {"mode": "w", "encoding": encoding(block, size)} if start == 0 else \
                {"mode": "a", "append_dim": S.IMAGETTE, "safe_chunks": False}
            block.to_zarr(store, compute=False, consolidated=False, write_empty_chunks=True, **where)
        group = root(store)
        group.attrs.update({**attrs, "chunk": size, **EMBEDDINGS.record()})
        n_chunks = math.ceil(n_in / size)
        if DONE in group:
            done, old = group[DONE], group[DONE].shape[0]
            done.resize((n_chunks,))
        else:
            old, done = 0, group.require_group(DONE.split("/")[0]).create_array(
                DONE.split("/")[1], shape=(n_chunks,), chunks=(1,), dtype="int32", fill_value=-1,
                compressors=[zarr.codecs.Crc32cCodec()])  # -1: never a count, so every count is written
        done[old:] = 0
        result[1] = np.concatenate([result[1], np.zeros(n_chunks - result[1].size, np.int32)])
        return (f"embed_store: {'created' if n_out == 0 else 'extended'} for {n_in} imagettes ({n_in - n_out} new) "
                f"with encoder {attrs.get('encoder', '?')}; embeddings follow")

    transact(location, body, create=True)
    return result[0], result[1]


_input = functools.lru_cache(maxsize=8)(opened)  # a store at one snapshot, opened once per worker process


@door
def read_images(location: Location, snapshot: str, var: str, start: int, stop: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(images, valid_lines, valid_samples)`` of imagettes ``start:stop`` at one snapshot (a worker's read)."""
    snap = _input(location, snapshot)
    return tuple(snap.rows(name, start, stop) for name in (var, S.VALID_LINES, S.VALID_SAMPLES))


def write_embedding_rows(fork: Any, chunk_index: int, chunk_start: int, start: int, values: np.ndarray) -> Any:
    """Write embedding rows ``start:start + len(values)`` of chunk ``chunk_index`` and their count into ``fork``.

    Runs on a worker; the client merges the fork returned (:class:`EmbeddingWriter`): rows and count commit together.
    """
    group = zarr.open_group(fork.store, mode="r+")
    group[S.EMBEDDING][start : start + len(values)] = values
    group[DONE][chunk_index] = start + len(values) - chunk_start
    return fork


class EmbeddingWriter:
    """A run's writes, client side: forks for tasks, their results merged, a commit every ``every`` seconds.

    A killed run loses at most the work since the last commit, plus the tasks in flight.
    """

    def __init__(self, location: Location, every: float = 30.0) -> None:
        self.location, self.every = location, every
        self.repo = repository(location)
        self.commits = 0
        self._begin()

    def _begin(self) -> None:
        # icechunk forks only a session without changes: one clean session to fork, another to merge into
        self.base = self.repo.writable_session(BRANCH)
        self.session = self.repo.writable_session(BRANCH)
        self.pending: list[int] = []
        self._last = time.monotonic()

    def fork(self) -> Any:
        """A fork of the run's clean session for one task (it pickles to any worker)."""
        return self.base.fork()

    def merge(self, fork: Any, chunk_index: int) -> None:
        """Merge a finished task's fork; commit when the last commit is older than ``every`` seconds."""
        self.session.merge(fork)
        self.pending.append(chunk_index)
        if time.monotonic() - self._last >= self.every:
            self.commit()

    def commit(self) -> None:
        """Commit what was merged (if anything); :class:`WriteConflictError` if another run wrote the same chunks."""
        if self.pending:
            chunks = sorted(self.pending)
            _commit(self.location, self.repo, self.session,
                    f"embed_store: {len(chunks)} chunks embedded ({chunks[0]} .. {chunks[-1]})", rebase=True)
            self.commits += 1
            self._begin()
        self._last = time.monotonic()


# ---- damage: found and repaired ---------------------------------------------------------------------------------
def damage(snap: Snapshot) -> tuple[int, list[DamagedChunkError]]:
    """Read every chunk of a snapshot: (chunks checked, one error per damaged or missing chunk, holes included)."""
    checked, found = 0, []
    snap.holes()  # every array's grid listed at once
    for name, array in sorted(snap.arrays.items()):
        step, length = (array.chunks[0], array.shape[0]) if array.ndim else (1, 1)
        for k in range(math.ceil(length / step)):
            checked += math.prod(math.ceil(s / c) for s, c in zip(array.shape[1:], array.chunks[1:]))
            try:
                snap.rows(name, k * step, min(length, (k + 1) * step))
            except DamagedChunkError as err:
                found.append(err)
    return checked, found


@door
def repair(location: Location, fresh: Callable[[list[str]], xr.Dataset | list[xr.Dataset] | str] | None = None
           ) -> tuple[list[DamagedChunkError], list[str]]:
    """Repair a store's damaged chunks in one commit each; return (repaired, what was left and why).

    Damaged ``embedding`` chunks are marked not done (the run embeds them again); an imagette store's are rewritten
    from ``fresh(ids)``: those imagettes again (one Dataset, or parts from several sources), or why not. Damaged ids
    match nothing: that damage is raised.
    """
    snap = opened(location, strict=False)
    found = damage(snap)[1]
    if snap.kind is EMBEDDINGS:
        chunks = sorted({d.chunk_index for d in found if d.variable == S.EMBEDDING})

        def reset(store: Any) -> str:
            done = root(store)[DONE]
            for k in chunks:
                done[k] = 0
            return f"embed_store: {len(chunks)} damaged chunks marked for re-embedding"

        if chunks:
            transact(location, reset)
        return [d for d in found if d.variable == S.EMBEDDING], [f"{d}" for d in found if d.variable != S.EMBEDDING]
    if any(d.variable == S.IMAGETTE for d in found):
        raise next(d for d in found if d.variable == S.IMAGETTE)  # ids unreadable: nothing to match files to
    spans: dict[tuple[int, int], list[DamagedChunkError]] = {}
    for d in found:
        spans.setdefault((d.start, d.stop), []).append(d)
    repaired, left = [], []
    for (start, stop), here in sorted(spans.items()):
        where = "; ".join(f"{d.variable} chunk {d.chunk_index}" for d in here)
        ids = list(here[0].ids or [])

        def rewrite(store: Any, parts: list[xr.Dataset], here: list = here, span: slice = slice(start, stop),
                    where: str = where, ids: list[str] = ids) -> str:
            group = root(store)
            fitted = [fit_to_store(as_written(p), group) for p in parts]  # a larger part grows the frame: fit again
            region = xr.concat([fit_to_store(p, group) for p in fitted], S.IMAGETTE, data_vars="minimal",
                               coords="minimal", compat="override").sel({S.IMAGETTE: ids})
            names = sorted({d.variable for d in here} & set(map(str, region.variables)))
            xr.Dataset({n: region[n].variable for n in names}, attrs=dict(group.attrs)).to_zarr(
                store, region={S.IMAGETTE: span}, mode="r+", consolidated=False, write_empty_chunks=True)
            return f"ingest: repaired {where} from {len(ids)} source files"

        try:
            rows = fresh(ids) if fresh is not None else "no source files were given"
            if isinstance(rows, str):
                raise StoreMismatchError(rows)
            transact(location, functools.partial(rewrite, parts=[rows] if isinstance(rows, xr.Dataset) else rows))
            repaired += here
        except ValueError as err:
            left.append(f"{where}: imagettes {start}..{stop - 1} not rewritten: {err}")
    return repaired, left
