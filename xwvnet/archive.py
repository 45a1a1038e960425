"""Embed a whole imagette store into an embedding store, chunk by chunk: resumable, crash-safe, appendable.

This module plans and runs the tasks; every storage detail (the embedding store's layout, its commits, forks and
merges) lives in :mod:`xwvnet.io.store`.

One task embeds one output chunk (``chunk_size`` imagettes along ``imagette``) and writes it from the worker into a fork
of the run's icechunk session, rows and their count (``progress/done[k]``) together; the client merges the forks it
gets back and commits every ``commit_every`` seconds. So results never pass through the client, a killed run loses
at most the uncommitted tasks, and a re-run recomputes exactly the chunks no commit counts. When the input grew, a
re-run extends the output (its order follows the input) and embeds only the new imagettes.

Inputs are read at the snapshot the run was planned from, so an ingest running meanwhile changes nothing of what a
run embeds. A second run into the same output with another encoder is refused by the provenance check (also when
both start at once: the loser's first commit conflicts, it re-reads the store and is refused); input chunks that
are missing or damaged fail their task by name, and ``repair=True`` re-embeds damaged output chunks.

The same function runs on the local thread pool (no cluster), a ``LocalCluster`` or any scheduler address; the
stores may live on object storage, so workers need no shared file system. See ``docs/archive.md``.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import math
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from . import schema as S
from ._runtime import BATCH_SIZE, RunContext, check_count, check_precision, cores, run_context
from .errors import InvalidArgumentError, InvalidDataError, RunError, StoreMismatchError
from .io import store as zs
from .io.storage import Location, locate

if TYPE_CHECKING:
    from distributed import Client

    from .models.encoder import Encoder

TASK_IMAGETTES = 256  # default imagettes per task: enough work to hide scheduling overhead, small enough to resume
#: threads of the pool in this process when no cluster is used (each task's torch threads share the cores)
LOCAL_TASKS = 2
COORD_BLOCK = 1 << 20  # ids compared per step when checking that a resumed output matches its input
_COMPAT = ("encoder_weights_hash", "encoder_arch", "encoder_transform", "image_variable", "precision",
           "embedding_dtype")
_COMPAT_DEFAULTS = {"embedding_dtype": "float32"}  # stores written before the option existed
#: storage types of the embedding store: float32, or float16 (half the size; neighbours agree, see docs)
EMBEDDING_DTYPES = ("float32", "float16")


class EmbedStoreError(RunError, RuntimeError):
    """Some chunks failed; the others are written. ``.report`` lists what is missing; re-run to complete.

    Parameters
    ----------
    report : EmbedReport
        The run's report, with its failures.
    """

    def __init__(self, report: EmbedReport) -> None:
        super().__init__(report.summary())
        self.report = report


#: seconds a first Ctrl-C waits for the running chunk tasks to finish (then they are given up, and re-run later)
INTERRUPT_WAIT = 120.0
_POLL = 0.2  # seconds between looks at a Ctrl-C while tasks run


class EmbedInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped :func:`embed_store`; the chunks that finished are committed, a re-run embeds the rest.

    A ``KeyboardInterrupt`` (so ``except Exception`` does not catch it, and a notebook shows an interrupt), the
    one xwvnet exception that is not an :class:`~xwvnet.errors.XWVNetError`.

    Parameters
    ----------
    report : EmbedReport
        The run's report: ``computed`` lists the chunks finished and committed before the run stopped.
    abandoned : int, default 0
        Running chunks given up after waiting :data:`INTERRUPT_WAIT` seconds (embedded again by a re-run).
    aborted : bool, default False
        True after a second Ctrl-C: the run ended at once, without waiting for its running chunks.
    """

    def __init__(self, report: EmbedReport, abandoned: int = 0, aborted: bool = False) -> None:
        done = report.skipped + len(report.computed)
        how = "aborted by a second Ctrl-C" if aborted else "stopped by Ctrl-C"
        super().__init__(f"embed_store {how}: {len(report.computed)} chunks computed now and committed, {done} of "
                         f"{report.chunks} chunks done; re-run the same call to complete {report.path}.")
        self.report, self.abandoned, self.aborted = report, abandoned, aborted


class _Interrupts:
    """Ctrl-C during a run, as a context manager: the first sets ``stopping``, the second ``aborted`` and raises.

    The handler is installed only from the main thread and over a Python handler (Python's own, which raises
    ``KeyboardInterrupt``, or another): elsewhere (a thread, ``SIG_IGN``, ``SIG_DFL``) nothing changes. The
    previous handler comes back at the end.
    """

    def __init__(self) -> None:
        self.stopping = self.aborted = False
        self.abandoned = 0
        self._previous: Any = None

    def __enter__(self) -> _Interrupts:
        import signal

        previous = signal.getsignal(signal.SIGINT)
        if callable(previous):
            try:
                signal.signal(signal.SIGINT, self._handle)
            except ValueError:  # not the main thread: signals are not ours to change
                return self
            self._previous = previous
        return self

    def __exit__(self, *exc: object) -> None:
        import signal

        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def _handle(self, signum: int, frame: object) -> None:
        if self.stopping:
            self.aborted = True
            raise KeyboardInterrupt
        self.stopping = True

    def announce(self, running: int) -> None:
        """Say on stderr (above a progress bar) that the run stops after its ``running`` tasks."""
        import sys

        from tqdm.auto import tqdm

        what = f"after the {running} running chunks (up to {INTERRUPT_WAIT:.0f} s)" if running else "now"
        tqdm.write(f"xwvnet: stopping {what}; Ctrl-C again to abort", file=sys.stderr)


@dataclass
class ChunkFailure:
    """A chunk that could not be embedded, with the ids it holds and the error.

    Parameters
    ----------
    chunk_index : int
        Index of the output chunk.
    start, stop : int
        Imagette positions the failed task covered.
    ids : list of str
        Ids of those imagettes.
    error : str
        ``"<ExceptionType>: <message>"``.
    """

    chunk_index: int
    start: int
    stop: int
    ids: list[str]
    error: str

    def describe(self) -> str:
        """One line for people: chunk, imagette range, a few ids, the error.

        Returns
        -------
        str
            The line.
        """
        shown = ", ".join(self.ids[:3]) + (f", ..., {self.ids[-1]}" if len(self.ids) > 3 else "")
        return (
            f"chunk {self.chunk_index}: imagettes {self.start}..{self.stop - 1} ({len(self.ids)} ids: {shown}) "
            f"failed with {self.error}"
        )


@dataclass
class EmbedReport:
    """What a run of :func:`embed_store` did: chunks computed now, found done, failed; imagettes embedded; time.

    Parameters
    ----------
    path : str
        The output (embedding) store.
    input : str
        The input (imagette) store.
    total : int, default 0
        Imagettes in the output (the input's committed imagettes).
    chunks : int, default 0
        Chunks of the output.
    skipped : int, default 0
        Chunks already complete before this run.
    computed : list of int
        Chunk indices written by this run, sorted.
    embedded : int, default 0
        Imagettes embedded by this run.
    failed : list of ChunkFailure
        Chunks that failed, sorted by index.
    seconds : float, default 0.0
        Wall time of the run.
    runner : str, default ""
        Where it ran, in words.
    damaged : list of int
        Chunks found damaged in the output at the start of this run (with ``repair=True``; embedded again).
    commits : int, default 0
        Commits made by this run.
    """

    path: str
    input: str
    total: int = 0
    chunks: int = 0
    skipped: int = 0
    computed: list[int] = field(default_factory=list)
    embedded: int = 0
    failed: list[ChunkFailure] = field(default_factory=list)
    seconds: float = 0.0
    runner: str = ""
    damaged: list[int] = field(default_factory=list)
    commits: int = 0

    @property
    def complete(self) -> bool:
        """True when every chunk of the output is written."""
        return not self.failed and self.skipped + len(self.computed) == self.chunks

    @property
    def rate(self) -> float:
        """Imagettes per second over this run."""
        return self.embedded / self.seconds if self.seconds > 0 else 0.0

    @property
    def missing_ids(self) -> list[str]:
        """Ids of every imagette whose chunk failed."""
        return [i for f in self.failed for i in f.ids]

    def summary(self) -> str:
        """A short table for people (and the list of what is missing, if anything).

        Returns
        -------
        str
            One line per figure, then one line per failed chunk.
        """
        lines = [
            f"output store      {self.path}",
            f"input store       {self.input}",
            f"runner            {self.runner}",
            f"imagettes         {self.total} in {self.chunks} chunks",
            f"already done      {self.skipped} chunks",
            *([f"damaged, redone   {len(self.damaged)} chunks {self.damaged[:10]}"] if self.damaged else []),
            f"computed now      {len(self.computed)} chunks, {self.embedded} imagettes",
            f"failed            {len(self.failed)} chunks",
            f"commits           {self.commits}",
            f"time              {self.seconds:.1f} s ({self.rate:.1f} imagettes/s)",
            f"complete          {'yes' if self.complete else 'NO'}",
        ]
        if self.failed:
            lines.append("missing (fix the input, then re-run the same command to complete):")
            lines += [f"  {f.describe()}" for f in self.failed]
        return "\n".join(lines)


@dataclass(frozen=True)
class ChunkTask:
    """One unit of work: embed imagettes ``start:stop`` (inside output chunk ``chunk_index``) into a fork of the run.

    Every field is resolved and checked by :func:`embed_store` before any task exists; the task only turns the
    device name into a ``torch.device`` where it runs.

    Small to pickle: the encoder travels as its spec, never as its weights; the fork holds no data yet.

    Parameters
    ----------
    input : Location
        The imagette store.
    snapshot : str
        The input snapshot the run was planned from.
    var : str
        The image variable to embed.
    chunk_index : int
        Index of the output chunk.
    chunk_start : int
        Position of the chunk's first imagette.
    start, stop : int
        Imagettes to embed (``start > chunk_start`` when a partly filled chunk resumes).
    encoder : Encoder
        The encoder (loaded).
    batch_size : int
        Imagettes per forward pass (checked).
    device : str
        The run's device (:attr:`xwvnet._runtime.RunContext.device`).
    precision : str
        ``"float32"``, ``"bfloat16"`` or ``"float16"``.
    fork : icechunk.session.ForkSession
        A fork of the run's writable session on the output.
    """

    input: Location
    snapshot: str
    var: str
    chunk_index: int
    chunk_start: int
    start: int
    stop: int
    encoder: Encoder
    batch_size: int
    device: str
    precision: str
    fork: Any


def run_chunk(task: ChunkTask, on_batch: Callable[[int], None] | None = None) -> tuple[int, int, Any]:
    """Embed one chunk task (on a worker): read, embed, write rows and count into the task's fork.

    Parameters
    ----------
    task : ChunkTask
        What to embed.
    on_batch : callable, optional
        Called with the imagettes of each embedded batch (the local pool's progress bar).

    Returns
    -------
    tuple
        ``(chunk index, imagettes embedded, fork with the writes)``; the client merges and commits the fork.
    """
    from .inference import CHANNELS_LAST, embed_resolved

    images, valid_lines, valid_samples = zs.read_images(task.input, task.snapshot, task.var, task.start, task.stop)
    emb = embed_resolved(
        images, valid_lines, valid_samples, encoder=task.encoder, batch_size=task.batch_size,
        device=task.device, precision=task.precision, var=task.var, channels_last=CHANNELS_LAST, on_batch=on_batch,
    )
    fork = zs.write_embedding_rows(task.fork, task.chunk_index, task.chunk_start, task.start, emb)
    return task.chunk_index, task.stop - task.start, fork


# ---- planning ---------------------------------------------------------------------------------------------------


def _check_same_input(source: zs.Snapshot, output: zs.Snapshot, n: int, where: Location) -> None:
    """The output's first ``n`` ids must be the input's: the input store only ever appends."""
    for start in range(0, n, COORD_BLOCK):
        stop = min(n, start + COORD_BLOCK)
        mine, theirs = output.ids(start, stop), source.ids(start, stop)
        bad = np.flatnonzero(mine != theirs)
        if bad.size:
            i = start + int(bad[0])
            raise StoreMismatchError(
                f"{where} was embedded from a different input: imagette {i} is {mine[bad[0]]!r} there but "
                f"{theirs[bad[0]]!r} in the input. Embed into a new output store."
            )


def _check_compatible(stored: dict[str, object], attrs: dict[str, object], chunk_size: int | None,
                      output: Location) -> None:
    stored = {**_COMPAT_DEFAULTS, **stored}
    diff = {k: (stored.get(k), attrs.get(k)) for k in _COMPAT if stored.get(k) != attrs.get(k)}
    if diff:
        detail = "; ".join(f"{k}: store has {a!r}, this run {b!r}" for k, (a, b) in diff.items())
        raise StoreMismatchError(
            f"{output} holds embeddings made differently ({detail}). Use the same encoder, variable, precision "
            "and dtype to resume, or write to a new output store."
        )
    if chunk_size is not None and int(stored["chunk"]) != chunk_size:
        raise StoreMismatchError(f"{output} has {stored['chunk']} imagettes per chunk; resume with "
                                 f"chunk_size={stored['chunk']} (or leave it out).")


def _prepare(
    source: Location, output: Location, encoder: Encoder, var: str | None, precision: str, chunk_size: int | None,
    dtype: str = "float32",
) -> tuple[str, str, int, int, np.ndarray]:
    """Create or extend the output for the input's imagettes; return (var, input snapshot, n, chunk size, done)."""
    from .conventions import geoemb_attrs
    from .inference import embedding_attrs as _embedding_attrs

    snap_in = zs.opened(source) if zs.store_kind(source) is not None else None
    if snap_in is None or snap_in.kind is not zs.IMAGETTES or not snap_in.size:
        raise InvalidDataError(
            f"{source} holds no imagettes (found {zs.describe(source)}); ingest some first "
            "(`xwvnet ingest` or xwvnet.to_store)."
        )
    ds_in = zs.dataset(snap_in)  # the snapshot opened above, not opened again
    n_in = ds_in.sizes[S.IMAGETTE]
    var = S.image_var(ds_in, var)
    S.require(ds_in, [S.VALID_LINES, S.VALID_SAMPLES], f"embedding {var!r}")
    row_bytes = max(encoder.embedding_size * 4, ds_in[var].dtype.itemsize * ds_in.sizes[S.LINE] * ds_in.sizes[S.SAMPLE])
    if chunk_size is not None:
        check_count(chunk_size, "chunk_size", row_bytes=row_bytes)  # a task reads its chunk's images at once
    embedding_attrs = _embedding_attrs(encoder, var, precision)
    if dtype == "float16":
        embedding_attrs[S.COMPACT_DTYPE] = "float16"
    attrs = {**embedding_attrs, "input": str(source), "embedding_dtype": dtype}
    # the geo-embeddings Zarr convention (geoemb:) and the encoder's MLM description, on the store's root
    attrs.update(geoemb_attrs(embedding_attrs, dim=encoder.embedding_size, data_type=dtype, source_data=[str(source)],
                              in_chans=encoder.in_chans))

    def check(out: zs.Snapshot | None) -> int:
        if out is None or not out.size:
            in_chunk = next((snap_in.arrays[v].chunks[0] for v in S.IMAGE_VARS if v in snap_in.arrays), 1)
            return chunk_size or in_chunk * max(1, math.ceil(TASK_IMAGETTES / in_chunk))
        _check_compatible(dict(out.group.attrs), attrs, chunk_size, output)
        if out.size > n_in:
            raise StoreMismatchError(
                f"{output} holds {out.size} imagettes but {source} only {n_in}: the input shrank or was "
                "rewritten. Embed into a new output store."
            )
        _check_same_input(snap_in, out, out.size, output)
        return int(out.group.attrs["chunk"])

    zs.check_target(output, zs.EMBEDDINGS)
    chunk_size, done = zs.extend_embedding_store(output, ds_in, chunk_size=chunk_size or 1,
                                                 dim=encoder.embedding_size, attrs=attrs,
                                                 embedding_attrs=embedding_attrs, check=check)
    return var, snap_in.id, n_in, chunk_size, done


def _repair(output: Location) -> list[int]:
    """Mark the output's damaged embedding chunks as not done (one commit); return their indices."""
    if zs.store_kind(output) != zs.EMBEDDINGS.kind:
        return []
    repaired, _ = zs.repair(output)
    return sorted({d.chunk_index for d in repaired})


def _plan(n: int, chunk_size: int, done: np.ndarray) -> tuple[list[tuple[int, int, int, int]], int]:
    """(chunk_index, chunk_start, start, stop) of every chunk not yet complete, and how many are complete."""
    todo, skipped = [], 0
    for k in range(math.ceil(n / chunk_size)):
        lo, hi = k * chunk_size, min(n, (k + 1) * chunk_size)
        written = int(done[k]) if k < done.size else 0
        if written >= hi - lo:
            skipped += 1
        else:
            todo.append((k, lo, lo + max(0, written), hi))
    return todo, skipped


# ---- running the tasks --------------------------------------------------------------------------------------
def _completed(
    tasks: Iterator[ChunkTask], where: RunContext,
    on_batch: Callable[[ChunkTask], Callable[[int], None]] | None = None, stop: _Interrupts | None = None,
) -> Iterator[tuple[ChunkTask, tuple[int, int, Any] | None, BaseException | None]]:
    """Yield ``(task, result, error)`` as tasks finish, where the run context says: a cluster or a local thread pool.

    Tasks are drawn from ``tasks`` as slots free up (a few per worker in flight), so each takes its fork from the
    session current at submission and a long run never holds every task in memory. On the local pool,
    ``on_batch(task)`` gives each task its per-batch progress callback.

    Once ``stop.stopping`` (a first Ctrl-C), no task is submitted any more, the queued ones are cancelled and the
    running ones are waited for :data:`INTERRUPT_WAIT` seconds at most (``stop.abandoned`` counts those given up).
    A ``KeyboardInterrupt`` (a second Ctrl-C) leaves at once: the pool is shut down without waiting, its queue
    cancelled, and the cluster's futures are cancelled.
    """
    stop = _Interrupts() if stop is None else stop  # not entered: never stops
    runner = _PoolTasks(where.threads, on_batch) if where.client is None else _ClusterTasks(where)
    running: dict[Any, ChunkTask] = {}

    def fill() -> None:
        while not stop.stopping and len(running) < runner.slots:
            following = next(tasks, None)
            if following is None:
                return
            running[runner.submit(following)] = following

    deadline = None
    try:
        fill()
        while running:
            if stop.stopping and deadline is None:
                deadline = time.monotonic() + INTERRUPT_WAIT
                for future in runner.cancel_queued(running):
                    running.pop(future)
                stop.announce(len(running))
            for future in runner.finished(running, _POLL):
                task = running.pop(future)
                yield task, *runner.outcome(future)
            fill()
            if deadline is not None and running and time.monotonic() >= deadline:
                stop.abandoned = len(running)
                break
    except BaseException:  # a second Ctrl-C, or the caller failed: leave at once
        runner.close(running, wait=False)
        raise
    runner.close(running, wait=not running)


class _PoolTasks:
    """Chunk tasks on a thread pool in this process (``2 * threads`` in flight)."""

    def __init__(self, threads: int, on_batch: Callable[[ChunkTask], Callable[[int], None]] | None) -> None:
        # embed_block counts the tasks running at once and divides the cores among them (inference.torch_threads)
        self.pool = cf.ThreadPoolExecutor(threads, thread_name_prefix="xwvnet")
        self.on_batch, self.slots = on_batch, 2 * threads

    def submit(self, task: ChunkTask) -> cf.Future:
        return self.pool.submit(run_chunk, task, None if self.on_batch is None else self.on_batch(task))

    def finished(self, futures: dict[cf.Future, ChunkTask], timeout: float) -> set[cf.Future]:
        return cf.wait(futures, timeout=timeout, return_when=cf.FIRST_COMPLETED)[0]

    def outcome(self, future: cf.Future) -> tuple[tuple[int, int, Any] | None, BaseException | None]:
        error = future.exception()
        return (None if error else future.result()), error

    def cancel_queued(self, futures: dict[cf.Future, ChunkTask]) -> list[cf.Future]:
        return [f for f in list(futures) if f.cancel()]  # only a task not started yet can be cancelled

    def close(self, futures: dict[cf.Future, ChunkTask], wait: bool) -> None:
        self.pool.shutdown(wait=wait, cancel_futures=True)


def _executing_keys(dask_worker: Any) -> list[str]:
    """The keys of the tasks a dask worker is running now (for ``client.run``)."""
    state = dask_worker.state
    return [str(ts.key) for ts in (*state.executing, *state.long_running)]


class _ClusterTasks:
    """Chunk tasks on a dask.distributed cluster (two per worker thread in flight)."""

    def __init__(self, where: RunContext) -> None:
        from distributed import as_completed

        self.client, self.resources, self.run = where.client, where.resources, uuid.uuid4().hex[:8]
        self.slots = max(2, 2 * where.threads)
        self.pending = as_completed()

    def submit(self, task: ChunkTask) -> Any:
        future = self.client.submit(run_chunk, task, key=f"xwvnet-embed-{self.run}-{task.chunk_index}",
                                    resources=self.resources, pure=False)
        self.pending.add(future)
        return future

    def finished(self, futures: dict[Any, ChunkTask], timeout: float) -> list[Any]:
        until = time.monotonic() + timeout
        while True:  # as_completed's own pace (it looks every 0.1 s), with a time limit
            batch = [f for f in self.pending.next_batch(block=False) if f in futures]  # not the cancelled ones
            if batch or time.monotonic() >= until:
                return batch
            time.sleep(0.05)

    def outcome(self, future: Any) -> tuple[tuple[int, int, Any] | None, BaseException | None]:
        try:
            return (future.result(), None) if future.status == "finished" else (None, future.exception())
        finally:
            future.release()

    def cancel_queued(self, futures: dict[Any, ChunkTask]) -> list[Any]:
        try:
            running = {k for keys in self.client.run(_executing_keys).values() for k in keys}
        except Exception:  # noqa: BLE001 - workers that cannot say: wait for every task in flight
            return []
        queued = [f for f in futures if str(f.key) not in running and not f.done()]
        if queued:
            self.client.cancel(queued)
        return queued

    def close(self, futures: dict[Any, ChunkTask], wait: bool) -> None:
        if futures:
            self.client.cancel(list(futures))


def embed_store(
    store: str | os.PathLike | Location,
    out: str | os.PathLike | Location,
    encoder: str | os.PathLike | Encoder = "wvnet-resnet50",
    *,
    client: Client | str | None = None,
    chunk_size: int | None = None,
    var: str | None = None,
    batch_size: int = BATCH_SIZE,
    device: str = "auto",
    precision: str = "float32",
    dtype: str = "float32",
    progress: bool = False,
    errors: Literal["raise", "report"] = "raise",
    repair: bool = False,
    commit_every: float = 30.0,
    storage_options: dict[str, Any] | None = None,
) -> EmbedReport:
    """Embed every imagette of an imagette store into an embedding store, resuming where a run stopped.

    A re-run skips committed chunks and embeds new input imagettes only, so the same call completes a killed run
    or extends the output after the input grew. Failed chunks (an input chunk missing or damaged is one) are named
    with their ids, and every other chunk still completes. Workers write into forks of the run's icechunk session;
    the client merges them and commits every ``commit_every`` seconds, so both stores may live on object storage
    and a killed run loses at most the uncommitted work. Open the result with :func:`xwvnet.open_store` (or join
    it with its input through :func:`xwvnet.io.store.open_stores`). Every argument is checked, and the encoder and
    the cluster's GPUs resolved, before anything is written.

    Parameters
    ----------
    store : str, os.PathLike or Location
        The imagette store to read (path or URL), read at its newest commit when the run starts.
    out : str, os.PathLike or Location
        The embedding store to create, resume or extend (path or URL). Anything else there is never overwritten.
    encoder : str, os.PathLike or Encoder, default "wvnet-resnet50"
        A registry name, a weights file, or an :class:`xwvnet.Encoder`.
    client : distributed.Client or str, optional
        Where to run: a ``distributed.Client`` (left open), or a scheduler address (``"tcp://host:8786"``) or
        scheduler file to connect to (closed at the end). Default: the dask.distributed client active in this
        process, else a thread pool here (``min(2, cores)`` threads, each task's torch threads sharing the cores).
        ``"threads"``: that thread pool even when a client is active. For a cluster on this machine, pass
        ``client=xwvnet.distributed.local_client()``. Decided once, with the device, by
        :func:`xwvnet._runtime.run_context`.
    chunk_size : int, optional
        Imagettes per task and per stored chunk; default a multiple of the input's chunk near 256. Fixed when the
        output is created (a resume with another value is refused).
    var : str, optional
        The image variable (``quicklook`` or ``sigma0``); default the one the input has.
    batch_size : int, default :data:`xwvnet._runtime.BATCH_SIZE` (64)
        Imagettes per forward pass.
    device : str, default "auto"
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``: on the thread pool, a GPU of this machine (``"auto"``:
        when it has one); on a cluster, each task asks for one ``GPU`` resource (``"auto"``: when some worker
        declares one).
    precision : str, default "float32"
        ``"float32"``, ``"bfloat16"`` or ``"float16"``.
    dtype : {"float32", "float16"}, default "float32"
        How the embeddings are stored: float16 halves the store (relative error about 5e-4; top-10 neighbours
        agreed fully with float32 in ``docs/retrieval.md``). Fixed when the store is created.
    progress : bool, default False
        Show a tqdm bar of imagettes (moving per batch on the local thread pool, per task on a cluster).
    errors : {"raise", "report"}, default "raise"
        On failed chunks, raise :class:`EmbedStoreError` after every other chunk finished, or return them in the
        report (as the CLI does).
    repair : bool, default False
        First read every output chunk (:func:`xwvnet.verify`) and embed the damaged ones again.
    commit_every : float, default 30.0
        Seconds between commits of finished chunks.
    storage_options : dict, optional
        Credentials and endpoint for both stores (see :func:`xwvnet.open_store`).
    Returns
    -------
    EmbedReport
        Chunks computed, skipped and failed, imagettes embedded, commits, time and where it ran.

    Raises
    ------
    ValueError
        If an argument is invalid (checked before anything is written: batch size, chunk size, precision, dtype,
        device, and CUDA without a GPU where the tasks would run), the input holds no imagettes, the output holds
        something other than an embedding store, or a resume would mix encoders, variables, precisions, chunk
        sizes or inputs.
    EmbedStoreError
        If some chunks failed and ``errors="raise"``.
    xwvnet.io.store.WriteConflictError
        If another run wrote the same chunks meanwhile (what was committed is kept; re-run to complete).
    EmbedInterrupted
        After a Ctrl-C (a ``KeyboardInterrupt``; see Notes): ``.report`` says what was computed and committed.

    Notes
    -----
    Ctrl-C (SIGINT) during the run: the first stops submitting tasks, lets the running ones finish (for
    :data:`INTERRUPT_WAIT` seconds at most, 120; one line on stderr says so), commits every finished chunk (whatever
    ``commit_every``) and raises :class:`EmbedInterrupted`, so a re-run embeds only the chunks still missing. A
    second Ctrl-C ends the call at once: the running tasks are given up (the thread pool is shut down without
    waiting, a cluster's tasks are cancelled), the chunks merged before are committed, and
    :class:`EmbedInterrupted` is raised with ``aborted=True``. This holds where the call runs in the main thread
    under a Python SIGINT handler (a script, a notebook); elsewhere Ctrl-C is left as it was. The previous handler
    is restored at the end.

    Examples
    --------
    >>> report = xwvnet.embed_store("s3://bucket/wv.zarr", "s3://bucket/wv-emb.zarr",
    ...                             client="tcp://scheduler:8786")  # doctest: +SKIP
    >>> print(report.summary())  # doctest: +SKIP
    """
    from . import distributed as xd
    from .models.zoo import load_encoder

    # ---- the edge: every argument checked, the encoder loaded, the device resolved, before anything is written
    if errors not in ("raise", "report"):
        raise InvalidArgumentError(f"errors must be 'raise' or 'report', found {errors!r}.")
    if dtype not in EMBEDDING_DTYPES:
        raise InvalidArgumentError(f"dtype must be one of {list(EMBEDDING_DTYPES)}, found {dtype!r}.")
    batch_size = check_count(batch_size, "batch_size")
    chunk_size = None if chunk_size is None else check_count(chunk_size, "chunk_size")
    precision = check_precision(precision)
    # where the tasks run and on which device (CUDA without a GPU there is refused before any output)
    with run_context(client, device, threads=min(LOCAL_TASKS, cores())) as where:
        source, output = locate(store, storage_options), locate(out, storage_options)
        enc = load_encoder(encoder)
        if where.client is not None:
            xd.setup_client(where.client, device=where.device)
        # ---- the run, on resolved values
        began = time.perf_counter()
        damaged = _repair(output) if repair else []
        var, snapshot, n, chunk_size, done = _prepare(source, output, enc, var, precision, chunk_size, dtype)
        todo, skipped = _plan(n, chunk_size, done)
        report = EmbedReport(path=str(output), input=str(source), total=n, chunks=math.ceil(n / chunk_size),
                             skipped=skipped, damaged=damaged)
        writer = zs.EmbeddingWriter(output, every=commit_every)
        tasks = (ChunkTask(source, snapshot, var, k, lo, start, stop, enc, batch_size, where.device, precision,
                           writer.fork()) for k, lo, start, stop in todo)
        report.runner = where.describe()
        with _Interrupts() as ctrl_c:  # installed here: after a local cluster started (it ignores Ctrl-C meanwhile)
            try:
                try:
                    _run(tasks, sum(t[3] - t[2] for t in todo), where, report, progress, writer, ctrl_c)
                finally:
                    writer.commit()  # the finished chunks, also after a Ctrl-C or an error
                    report.commits = writer.commits
            except KeyboardInterrupt:
                if not ctrl_c.aborted:  # not from our handler (none installed): as it came
                    raise
        if ctrl_c.stopping and report.skipped + len(report.computed) + len(report.failed) < report.chunks:
            report.seconds = time.perf_counter() - began
            report.computed.sort()
            raise EmbedInterrupted(report, abandoned=ctrl_c.abandoned, aborted=ctrl_c.aborted)
    report.seconds = time.perf_counter() - began
    report.computed.sort()
    if report.failed and errors == "raise":
        raise EmbedStoreError(report)
    return report


def _run(tasks: Iterator[ChunkTask], total: int, where: RunContext, report: EmbedReport, progress: bool,
         writer: zs.EmbeddingWriter, stop: _Interrupts | None = None) -> None:
    """Run the tasks, merging each finished one into ``writer`` and counting it in ``report``.

    After a first Ctrl-C (``stop.stopping``) it returns once the running tasks are merged; a second one raises
    ``KeyboardInterrupt`` (what was merged stays in ``writer``, for the caller to commit).
    """
    from tqdm.auto import tqdm

    output = zs.opened(writer.location, strict=False)
    moved: dict[int, int] = {}  # imagettes each running task has moved the bar by, batch by batch

    with tqdm(total=total, desc="embed", unit="img", disable=not progress, smoothing=0.05) as bar:
        def mover(task: ChunkTask) -> Callable[[int], None]:
            moved[task.chunk_index] = 0

            def on_batch(n: int) -> None:
                moved[task.chunk_index] += n
                bar.update(n)

            return on_batch

        results = contextlib.closing(_completed(tasks, where, mover if progress else None, stop))
        with results as finished:  # closed at once on any exception: the pool or cluster stops its tasks
            for task, result, error in finished:
                if error is None:
                    writer.merge(result[2], task.chunk_index)
                    report.computed.append(task.chunk_index)
                    report.embedded += int(result[1])
                else:
                    try:
                        ids = [str(i) for i in output.ids(task.start, task.stop)]
                    except (OSError, ValueError):  # the output's ids are damaged too: the positions say which
                        ids = []
                    report.failed.append(ChunkFailure(task.chunk_index, task.start, task.stop, ids,
                                                      f"{type(error).__name__}: {error}"))
                    bar.set_postfix(failed=len(report.failed))
                bar.update(task.stop - task.start - moved.pop(task.chunk_index, 0))
    report.failed.sort(key=lambda f: f.chunk_index)
