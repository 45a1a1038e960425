"""One writer per store: a writer lease, a small file beside the store that names who writes it.

A writer (:func:`xwvnet.to_store`, :func:`xwvnet.io.store.ingest`, :func:`xwvnet.io.store.add_variables`, the
client of :func:`xwvnet.embed_store`) holds the lease of its store for the whole run and gives it back when it
ends, whatever the way it ends. A second writer is refused with a :class:`StoreBusyError` that names the holder
(host, process id, since when), or waits for it when asked to.

The lease is the file ``.<store name>.xwvnet-lease`` in the store's parent folder. It lies *beside* the store
rather than inside it because it must exist before the store does (two first writers race to create the store)
and because creating a store clears its folder. It is created atomically with a hard link from a fully written
temporary file (``link`` fails when the name exists, on local disks and on NFS alike), so nobody ever reads a
half-written lease. While held, a thread touches the file (its modification time is the heartbeat).

A lease left by a killed writer is *stale*: its process is gone (same host), or its heartbeat is older than
``stale_after`` seconds (any host, for writers on other machines of a shared file system). A stale lease is taken
over safely: it is renamed away (only one of several contenders can rename it), the renamed file is checked to be
the stale lease that was judged (not a fresh one that replaced it meanwhile, which would be put back), and the
new lease is then created as usual.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

HEARTBEAT = 10.0  # seconds between heartbeats of a held lease
STALE_AFTER = 120.0  # a lease whose heartbeat is older than this (seconds) is stale, whatever its host
POLL = 0.2  # seconds between tries while waiting
_HELD: dict[tuple[Path, int], WriterLease] = {}  # leases held by this process, per thread (nested writers reuse them)


class StoreBusyError(RuntimeError):
    """Another writer holds the store's lease (the message names it: host, process id, since when, command).

    Parameters
    ----------
    message : str
        The error message.
    holder : LeaseInfo or None
        The lease found.

    Attributes
    ----------
    holder : LeaseInfo or None
        As given.
    """

    def __init__(self, message: str, holder: LeaseInfo | None) -> None:
        super().__init__(message)
        self.holder = holder


class LeaseLostError(RuntimeError):
    """The lease of a running writer was taken over by another writer (this one was judged dead or stuck)."""


@dataclass(frozen=True)
class LeaseInfo:
    """What a lease file says about its holder.

    Parameters
    ----------
    host : str
        Host name of the writer.
    pid : int
        Its process id.
    started : float
        When it took the lease (seconds since 1970, UTC).
    token : str
        A random token that identifies this holding of the lease.
    command : str
        What the writer does, in words (e.g. ``"ingest"``).
    heartbeat : float, default 0.0
        The last heartbeat (the lease file's modification time), when read from a file.
    """

    host: str
    pid: int
    started: float
    token: str
    command: str
    heartbeat: float = 0.0

    def describe(self) -> str:
        """The holder in words: command, host, pid, since when, last heartbeat.

        Returns
        -------
        str
            E.g. ``"ingest by pid 4242 on host1 since 2026-11-24 10:02:03 UTC (heartbeat 3 s ago)"``.
        """
        since = datetime.fromtimestamp(self.started, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        beat = f", heartbeat {max(0.0, time.time() - self.heartbeat):.0f} s ago" if self.heartbeat else ""
        return f"{self.command or 'a writer'} by pid {self.pid} on {self.host} since {since}{beat}"


def lease_path(store: str | os.PathLike) -> Path:
    """The lease file of a store: ``.<name>.xwvnet-lease`` beside it.

    Parameters
    ----------
    store : str or os.PathLike
        The store (it need not exist yet).

    Returns
    -------
    pathlib.Path
        The lease file's path (absolute, symbolic links of the parent resolved).

    Examples
    --------
    >>> lease_path("/data/wv.zarr").name
    '.wv.zarr.xwvnet-lease'
    """
    store = Path(store).expanduser().absolute()
    parent = store.parent.resolve() if store.parent.exists() else store.parent
    return parent / f".{store.name}.xwvnet-lease"


def read_lease(store: str | os.PathLike) -> LeaseInfo | None:
    """The current holder of a store's lease, or ``None`` when nobody holds it.

    Parameters
    ----------
    store : str or os.PathLike
        The store.

    Returns
    -------
    LeaseInfo or None
        ``None`` also when the lease file cannot be parsed (it is then treated as stale by writers).
    """
    return _read(lease_path(store))


def _read(path: Path) -> LeaseInfo | None:
    try:
        text = path.read_text()
        beat = path.stat().st_mtime
        data = json.loads(text)
        return LeaseInfo(str(data["host"]), int(data["pid"]), float(data["started"]), str(data["token"]),
                         str(data.get("command", "")), beat)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    return True


def is_stale(info: LeaseInfo | None, stale_after: float = STALE_AFTER, path: Path | None = None) -> bool:
    """Whether a lease is left by a writer that is gone.

    Parameters
    ----------
    info : LeaseInfo or None
        The lease read (``None``: unreadable).
    stale_after : float, default STALE_AFTER
        Seconds without heartbeat after which a lease is stale, whatever its host.
    path : pathlib.Path, optional
        The lease file, to judge an unreadable one by its age.

    Returns
    -------
    bool
        True for a dead process on this host, a heartbeat older than ``stale_after``, or an unreadable lease file
        older than a few seconds (a writer is still filling a new one only for an instant).
    """
    now = time.time()
    if info is None:
        try:
            return path is not None and now - path.stat().st_mtime > 5.0
        except OSError:
            return False
    if now - info.heartbeat > stale_after:
        return True
    return info.host == socket.gethostname() and not _pid_alive(info.pid)


class WriterLease:
    """The writer lease of one store, as a context manager (see :func:`writer_lease`).

    Parameters
    ----------
    store : str or os.PathLike
        The store to write.
    command : str, default ""
        What the writer does, shown to a refused writer.
    wait : float, default 0.0
        Seconds to wait for a held lease before giving up (0: refuse at once).
    stale_after : float, default STALE_AFTER
        Seconds without heartbeat after which a lease is taken over.
    heartbeat : float, default HEARTBEAT
        Seconds between heartbeats while held.

    Attributes
    ----------
    path : pathlib.Path
        The lease file.
    info : LeaseInfo or None
        This writer's lease while held.
    """

    def __init__(self, store: str | os.PathLike, command: str = "", *, wait: float = 0.0,
                 stale_after: float = STALE_AFTER, heartbeat: float = HEARTBEAT) -> None:
        if wait is None or wait < 0:
            raise ValueError(f"wait must be a number of seconds >= 0, found {wait!r}.")
        self.store = Path(store)
        self.path = lease_path(store)
        self.command = command
        self.wait = float(wait)
        self.stale_after = float(stale_after)
        self.heartbeat = float(heartbeat)
        self.info: LeaseInfo | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- taking and giving back ----------------------------------------------------------------------------------
    def acquire(self) -> LeaseInfo:
        """Take the lease, waiting up to ``wait`` seconds for another holder, taking over a stale one.

        Returns
        -------
        LeaseInfo
            This writer's lease.

        Raises
        ------
        StoreBusyError
            If another live writer still holds it after ``wait`` seconds.
        """
        if self.info is not None:
            return self.info
        self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.wait
        while True:
            if self._try_create():
                break
            holder = _read(self.path)
            if is_stale(holder, self.stale_after, self.path):
                self._take_over(holder)
                continue
            if holder is None and not self.path.exists():
                continue  # released meanwhile
            if time.monotonic() >= deadline:
                who = holder.describe() if holder else "a writer that is creating its lease right now"
                waited = f" (waited {self.wait:g} s)" if self.wait else ""
                raise StoreBusyError(
                    f"{self.store} is being written by {who}{waited}; one writer at a time. Wait for it to finish "
                    f"(or pass wait=SECONDS / --wait SECONDS). If that process is gone, its lease {self.path} is "
                    f"taken over automatically once stale ({self.stale_after:g} s without heartbeat).", holder)
            time.sleep(POLL)
        self._thread = threading.Thread(target=self._beat, name="xwvnet-lease-heartbeat", daemon=True)
        self._thread.start()
        return self.info

    def _try_create(self) -> bool:
        info = LeaseInfo(socket.gethostname(), os.getpid(), time.time(), uuid.uuid4().hex, self.command)
        tmp = self.path.with_name(f"{self.path.name}.{info.token}.tmp")
        data = {k: v for k, v in asdict(info).items() if k != "heartbeat"}
        with open(tmp, "w") as f:
            json.dump(data, f)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, self.path)  # atomic; fails if the lease exists
        except FileExistsError:
            return False
        except OSError:  # a file system without hard links: exclusive create instead
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "w") as f:
                json.dump(data, f)
        finally:
            tmp.unlink(missing_ok=True)
        self.info = LeaseInfo(**{**data, "heartbeat": time.time()})
        return True

    def _take_over(self, judged: LeaseInfo | None) -> None:
        aside = self.path.with_name(f"{self.path.name}.stale-{uuid.uuid4().hex}")
        try:
            os.rename(self.path, aside)  # only one contender gets it
        except FileNotFoundError:
            return
        moved = _read(aside)
        if judged is not None and (moved is None or moved.token != judged.token):
            # a fresh lease replaced the stale one after it was judged: put it back unless yet another exists
            with contextlib.suppress(OSError):
                os.link(aside, self.path)
        aside.unlink(missing_ok=True)

    def release(self) -> None:
        """Give the lease back (only if this writer still holds it); stop the heartbeat."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.info is not None:
            current = _read(self.path)
            if current is not None and current.token == self.info.token:
                self.path.unlink(missing_ok=True)
        self.info = None

    def check(self) -> None:
        """Make sure this writer still holds its lease.

        Raises
        ------
        LeaseLostError
            If another writer took it over.
        """
        check_token(self.store, self.info.token if self.info else "")

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat):
            current = _read(self.path)
            if current is None or self.info is None or current.token != self.info.token:
                return  # lost: writes check the token and stop
            with contextlib.suppress(OSError):
                os.utime(self.path)

    def __enter__(self) -> WriterLease:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def check_token(store: str | os.PathLike, token: str) -> None:
    """Make sure the lease of ``store`` is still held with ``token`` (a worker's check before it writes).

    Parameters
    ----------
    store : str or os.PathLike
        The store.
    token : str
        The token of the run's lease (``""`` skips the check).

    Returns
    -------
    None

    Raises
    ------
    LeaseLostError
        If the lease is gone or held by another writer.
    """
    if not token:
        return
    current = read_lease(store)
    if current is None or current.token != token:
        who = current.describe() if current else "nobody"
        raise LeaseLostError(
            f"the writer lease of {store} was taken over (now held by {who}); this run stopped writing. "
            "Re-run the command once the other writer is done."
        )


@contextlib.contextmanager
def writer_lease(store: str | os.PathLike, command: str = "", *, wait: float = 0.0,
                 stale_after: float = STALE_AFTER) -> Iterator[WriterLease]:
    """Hold the writer lease of ``store`` for the duration of a ``with`` block.

    Parameters
    ----------
    store : str or os.PathLike
        The store to write (it need not exist yet).
    command : str, default ""
        What the writer does, shown to a writer that is refused.
    wait : float, default 0.0
        Seconds to wait for another writer to finish before giving up.
    stale_after : float, default STALE_AFTER
        Seconds without heartbeat after which a held lease is judged stale and taken over.

    Returns
    -------
    contextlib.AbstractContextManager of WriterLease
        Entering it gives the held lease; leaving it gives the lease back.

    Raises
    ------
    StoreBusyError
        If another live writer holds the lease (after ``wait`` seconds).

    Notes
    -----
    Nested use in one thread (``ingest`` calls ``to_store``) reuses the lease already held.

    Examples
    --------
    >>> with writer_lease("wv.zarr", "my script"):  # doctest: +SKIP
    ...     pass  # write the store
    """
    key = (lease_path(store), threading.get_ident())
    held = _HELD.get(key)
    if held is not None and held.info is not None:
        held.check()
        yield held
        return
    lease = WriterLease(store, command, wait=wait, stale_after=stale_after)
    lease.acquire()
    _HELD[key] = lease
    try:
        yield lease
    finally:
        _HELD.pop(key, None)
        lease.release()
