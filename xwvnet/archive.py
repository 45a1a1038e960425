"""Embed a whole imagette store into an embedding store, chunk by chunk: resumable, crash-safe, appendable.

This module plans and runs the tasks; every Zarr detail (the embedding store's layout, its commit records,
creating and extending it, region writes) lives in :mod:`xwvnet.io.store`.

One task embeds one output chunk (``chunk`` imagettes along ``imagette``) and writes it with an aligned region write
straight from the worker, so results never pass through (or pile up in) the client. A task commits its chunk
(``progress/done[k]``) only after the region write returned, so a killed run leaves every chunk either committed or
not counted, and a re-run recomputes exactly the uncounted ones. When the input grew, a re-run extends the output
(its order follows the input) and embeds only the new imagettes; the count of a partly filled last chunk says where
to resume.

The run holds the output's writer lease (:mod:`xwvnet.io.lease`): a second run into the same output is refused while
it runs, and a later run with another encoder is refused by the provenance check. Every chunk written is recorded
with its checksum; an input chunk that is missing or damaged fails its task by name, and an output chunk found
missing or damaged at the start of a run is embedded again.

The same function runs on the local thread pool (no cluster), a ``LocalCluster`` or any scheduler address; the
output path must be reachable from every worker (a shared file system). See ``docs/archive.md``.
"""

from __future__ import annotations

import concurrent.futures as cf
import math
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from . import schema as S
from ._runtime import cores, resolve_device
from .io import store as zs
from .io.lease import writer_lease

if TYPE_CHECKING:
    from distributed import Client

    from .models.encoder import Encoder

TASK_IMAGETTES = 256  # default imagettes per task: enough work to hide scheduling overhead, small enough to resume
COORD_BLOCK = 1 << 20  # ids compared per step when checking that a resumed output matches its input
_COMPAT = ("encoder_weights_hash", "encoder_arch", "encoder_transform", "image_variable", "precision",
           "embedding_dtype")
_COMPAT_DEFAULTS = {"embedding_dtype": "float32"}  # stores written before the option existed
#: storage types of the embedding store: float32, or float16 (half the size; neighbours agree, see docs)
EMBEDDING_DTYPES = ("float32", "float16")


class EmbedStoreError(RuntimeError):
    """Some chunks failed; the others are written. ``.report`` lists what is missing; re-run to complete.

    Parameters
    ----------
    report : EmbedReport
        The run's report, with its failures.
    """

    def __init__(self, report: EmbedReport) -> None:
        super().__init__(report.summary())
        self.report = report


@dataclass
class ChunkFailure:
    """A chunk that could not be embedded, with the ids it holds and the error.

    Parameters
    ----------
    chunk : int
        Index of the output chunk.
    start, stop : int
        Imagette positions the failed task covered.
    ids : list of str
        Ids of those imagettes.
    error : str
        ``"<ExceptionType>: <message>"``.
    """

    chunk: int
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
            f"chunk {self.chunk}: imagettes {self.start}..{self.stop - 1} ({len(self.ids)} ids: {shown}) "
            f"failed with {self.error}"
        )


@dataclass
class EmbedReport:
    """What a run of :func:`embed_store` did: chunks computed now, found done, failed; imagettes embedded; time.

    Parameters
    ----------
    path : Path
        The output (embedding) store.
    input : Path
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
        Chunks found missing or damaged in the output at the start of this run (embedded again).
    """

    path: Path
    input: Path
    total: int = 0
    chunks: int = 0
    skipped: int = 0
    computed: list[int] = field(default_factory=list)
    embedded: int = 0
    failed: list[ChunkFailure] = field(default_factory=list)
    seconds: float = 0.0
    runner: str = ""
    damaged: list[int] = field(default_factory=list)

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
            f"time              {self.seconds:.1f} s ({self.rate:.1f} imagettes/s)",
            f"complete          {'yes' if self.complete else 'NO'}",
        ]
        if self.failed:
            lines.append("missing (fix the input, then re-run the same command to complete):")
            lines += [f"  {f.describe()}" for f in self.failed]
        return "\n".join(lines)


@dataclass(frozen=True)
class ChunkTask:
    """One unit of work: embed imagettes ``start:stop`` (inside output chunk ``chunk``) and commit them.

    Small to pickle: the encoder travels as its spec, never as its weights.

    Parameters
    ----------
    input : str
        The imagette store.
    output : str
        The embedding store.
    var : str
        The image variable to embed.
    chunk : int
        Index of the output chunk.
    chunk_start : int
        Position of the chunk's first imagette.
    start, stop : int
        Imagettes to embed (``start > chunk_start`` when a partly filled chunk resumes).
    encoder : Encoder
        The encoder.
    batch_size : int
        Imagettes per forward pass.
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    precision : str
        ``"float32"``, ``"bfloat16"`` or ``"float16"``.
    token : str, default ""
        The token of the run's writer lease on the output: a task whose run lost the lease does not write.
    """

    input: str
    output: str
    var: str
    chunk: int
    chunk_start: int
    start: int
    stop: int
    encoder: Encoder
    batch_size: int
    device: str
    precision: str
    token: str = ""


def run_chunk(task: ChunkTask) -> tuple[int, int]:
    """Embed one chunk task (on a worker): read, embed, region-write, then commit.

    Parameters
    ----------
    task : ChunkTask
        What to embed.

    Returns
    -------
    tuple of int
        ``(chunk index, imagettes embedded)``.
    """
    from .inference import embed_block

    images, valid_lines, valid_samples = zs.read_images(task.input, task.var, task.start, task.stop)
    emb = embed_block(
        images, valid_lines, valid_samples, encoder=task.encoder, batch_size=task.batch_size,
        device=task.device, precision=task.precision, var=task.var,
    )
    zs.write_embedding_chunk(task.output, task.chunk, task.chunk_start, task.start, emb, token=task.token)
    return task.chunk, task.stop - task.start


# ---- planning ---------------------------------------------------------------------------------------------------


def _check_same_input(source: Path, output: Path, n: int) -> None:
    """The output's first ``n`` ids must be the input's: the input store only ever appends."""
    for start in range(0, n, COORD_BLOCK):
        stop = min(n, start + COORD_BLOCK)
        mine, theirs = zs.ids(output, start, stop), zs.ids(source, start, stop)
        bad = np.flatnonzero(mine != theirs)
        if bad.size:
            i = start + int(bad[0])
            raise ValueError(
                f"{output} was embedded from a different input: imagette {i} is {mine[bad[0]]!r} there but "
                f"{theirs[bad[0]]!r} in {source}. Embed into a new output store (or delete {output})."
            )


def _check_compatible(stored: dict[str, object], attrs: dict[str, object], chunk: int | None, output: Path) -> None:
    stored = {**_COMPAT_DEFAULTS, **stored}
    diff = {k: (stored.get(k), attrs.get(k)) for k in _COMPAT if stored.get(k) != attrs.get(k)}
    if diff:
        detail = "; ".join(f"{k}: store has {a!r}, this run {b!r}" for k, (a, b) in diff.items())
        raise ValueError(
            f"{output} holds embeddings made differently ({detail}). Use the same encoder, variable, precision "
            "and dtype to resume, or write to a new output store."
        )
    if chunk is not None and int(stored["chunk"]) != chunk:
        raise ValueError(f"{output} has chunk={stored['chunk']} imagettes; resume with that chunk (or leave it out).")


def _prepare(
    source: Path, output: Path, encoder: Encoder, var: str | None, precision: str, chunk: int | None,
    dtype: str = "float32",
) -> tuple[str, int, int, np.ndarray]:
    """Create or extend the output for the input's committed imagettes; return (var, n, chunk, done counts)."""
    from .inference import embedding_attrs as _embedding_attrs

    n_in = zs.committed(source) if zs.store_kind(source) == zs.IMAGETTES.kind else 0
    if n_in == 0:
        raise ValueError(
            f"{source} holds no committed imagettes (found {zs.describe(source)}); ingest some first "
            "(`xwvnet ingest` or xwvnet.to_store)."
        )
    ds_in = zs.open_store(source)
    var = S.image_var(ds_in, var)
    S.require(ds_in, [S.VALID_LINES, S.VALID_SAMPLES], f"embedding {var!r}")
    if chunk is not None and chunk < 1:
        raise ValueError(f"chunk must be a positive number of imagettes, found {chunk}.")
    embedding_attrs = _embedding_attrs(encoder, var, precision)
    if dtype == "float16":
        embedding_attrs[S.COMPACT_DTYPE] = "float16"
    attrs = {**embedding_attrs, "input": str(source), "embedding_dtype": dtype}
    n_out = zs.check_target(output, zs.EMBEDDINGS)
    if n_out:
        _check_compatible(zs.root_attrs(output), attrs, chunk, output)
        chunk = zs.committed_chunk(output)
        if n_out > n_in:
            raise ValueError(
                f"{output} holds {n_out} imagettes but {source} only {n_in} committed ones: the input shrank or "
                "was rewritten. Embed into a new output store."
            )
        _check_same_input(source, output, n_out)
    elif chunk is None:
        in_chunk = zs.committed_chunk(source) or 1
        chunk = in_chunk * max(1, math.ceil(TASK_IMAGETTES / in_chunk))
    done = zs.done_counts(output)
    if n_in > n_out or done is None:
        zs.extend_embedding_store(output, ds_in, chunk=chunk, dim=encoder.embedding_size, attrs=attrs,
                                  embedding_attrs=embedding_attrs)
        done = zs.done_counts(output)
    return var, n_in, chunk, done


def _plan(n: int, chunk: int, done: np.ndarray) -> tuple[list[tuple[int, int, int, int]], int]:
    """(chunk, chunk_start, start, stop) of every chunk not yet complete, and how many are complete."""
    todo, skipped = [], 0
    for k in range(math.ceil(n / chunk)):
        lo, hi = k * chunk, min(n, (k + 1) * chunk)
        written = int(done[k]) if k < done.size else 0
        if written >= hi - lo:
            skipped += 1
        else:
            todo.append((k, lo, lo + max(0, written), hi))
    return todo, skipped


# ---- running the tasks --------------------------------------------------------------------------------------
def _completed(
    tasks: list[ChunkTask], client: Client | None, threads: int, resources: dict[str, float] | None
) -> Iterator[tuple[ChunkTask, tuple[int, int] | None, BaseException | None]]:
    """Yield ``(task, result, error)`` as tasks finish, on the cluster or on a local thread pool."""
    if client is not None:
        from distributed import as_completed

        run = uuid.uuid4().hex[:8]
        futures = {
            client.submit(run_chunk, t, key=f"xwvnet-embed-{run}-{t.chunk}", resources=resources, pure=False): t
            for t in tasks
        }
        try:
            for future in as_completed(list(futures)):
                task = futures.pop(future)
                if future.status == "finished":
                    yield task, future.result(), None
                else:
                    yield task, None, future.exception()
                future.release()
        finally:
            client.cancel(list(futures))
        return
    import dask

    # embed_block divides the cores by dask's num_workers in pool threads: tell it how many tasks share them
    with dask.config.set(num_workers=threads), cf.ThreadPoolExecutor(threads, thread_name_prefix="xwvnet") as pool:
        futures = {pool.submit(run_chunk, t): t for t in tasks}
        try:
            for future in cf.as_completed(futures):
                task = futures.pop(future)
                error = future.exception()
                yield task, (None if error else future.result()), error
        finally:
            for future in futures:
                future.cancel()


def embed_store(
    input_store: str | os.PathLike,
    output_store: str | os.PathLike,
    encoder: str | os.PathLike | Encoder = "wvnet-resnet50",
    *,
    client: Client | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    threads: int | None = None,
    chunk: int | None = None,
    var: str | None = None,
    batch_size: int = 64,
    device: str = "auto",
    precision: str = "float32",
    dtype: str = "float32",
    progress: bool = True,
    errors: Literal["raise", "report"] = "raise",
    wait: float = 0.0,
) -> EmbedReport:
    """Embed every committed imagette of an imagette store into an embedding store, resuming where a run stopped.

    A re-run skips committed chunks and embeds new input imagettes only, so the same call completes a killed run
    or extends the output after the input grew; output chunks found missing or damaged are embedded again. Failed
    chunks (an input chunk missing or damaged is one) are named with their ids, and every other chunk still
    completes. The run holds the output's writer lease (its tasks write in parallel under it): a second run into
    the same output is refused, or waits with ``wait=``.
    Open the result with :func:`xwvnet.open_store` (or join it with its input through
    :func:`xwvnet.io.store.open_stores`).

    Parameters
    ----------
    input_store : str or os.PathLike
        The imagette store (of :func:`xwvnet.to_store` or ``xwvnet ingest``).
    output_store : str or os.PathLike
        The embedding store to create, resume or extend. Anything else at that path is never overwritten.
    encoder : str, os.PathLike or Encoder, default "wvnet-resnet50"
        A registry name, a weights file, or an :class:`xwvnet.Encoder`.
    client : distributed.Client, optional
        Run on this cluster (left open).
    scheduler : str, optional
        A scheduler address or scheduler file to connect to; ``"threads"`` forces the local thread pool.
    workers : int, optional
        Start a local cluster of that many processes (1 thread each) for this run.
    threads : int, optional
        Threads of the local pool, when no cluster is used (default ``min(2, cores)``).
    chunk : int, optional
        Imagettes per task and per stored chunk; default a multiple of the input's chunk near 256. Fixed when the
        output is created (a resume with another value is refused).
    var : str, optional
        The image variable (``quicklook`` or ``sigma0``); default the one the input has.
    batch_size : int, default 64
        Imagettes per forward pass.
    device : str, default "auto"
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``; with CUDA on a cluster each task asks for one ``GPU``
        resource.
    precision : str, default "float32"
        ``"float32"``, ``"bfloat16"`` or ``"float16"``.
    dtype : {"float32", "float16"}, default "float32"
        How the embeddings are stored: float16 halves the store (2 bytes per value, relative error about 5e-4;
        top-10 neighbours agreed fully with float32 in ``docs/retrieval.md``); :func:`xwvnet.neighbors` decodes it.
        Fixed when the store is created. (int8 needs per-feature scales known in advance: use
        :func:`xwvnet.retrieval.compact_embeddings` on computed embeddings.)
    progress : bool, default True
        Show a tqdm bar of imagettes.
    errors : {"raise", "report"}, default "raise"
        On failed chunks, raise :class:`EmbedStoreError` after every other chunk finished, or return them in the
        report (as the CLI does).
    wait : float, default 0.0
        Seconds to wait for another writer of the output to finish (0: refuse at once).

    Returns
    -------
    EmbedReport
        Chunks computed, skipped and failed, imagettes embedded, time and where it ran.

    Raises
    ------
    ValueError
        If the input holds no committed imagettes, the output path holds something other than an embedding store,
        or a resume would mix encoders, variables, precisions, chunk sizes or inputs.
    EmbedStoreError
        If some chunks failed and ``errors="raise"``.
    xwvnet.io.lease.StoreBusyError
        If another run writes the output (after ``wait`` seconds); the message names it.

    Examples
    --------
    >>> import xwvnet
    >>> report = xwvnet.embed_store("wv.zarr", "wv-emb.zarr", "wvnet-resnet50", workers=8)  # doctest: +SKIP
    >>> print(report.summary())  # doctest: +SKIP
    """
    from . import distributed as xd
    from .models.zoo import load_encoder

    if errors not in ("raise", "report"):
        raise ValueError(f"errors must be 'raise' or 'report', found {errors!r}.")
    if dtype not in EMBEDDING_DTYPES:
        raise ValueError(f"dtype must be one of {list(EMBEDDING_DTYPES)}, found {dtype!r}.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, found {batch_size}.")
    if client is None and (scheduler == "threads" or workers is not None):
        resolve_device(device)  # tasks run on this machine: CUDA without a GPU is refused before any output
    elif client is None and scheduler is None:
        from .inference import check_device

        check_device(device)  # this process's thread pool, or the dask client active in it
    source, output = Path(input_store).expanduser().resolve(), Path(output_store).expanduser().resolve()
    enc = load_encoder(encoder)
    began = time.perf_counter()
    with writer_lease(output, "embed_store", wait=wait) as lease:
        zs.begin_write(output, zs.EMBEDDINGS)
        damaged = zs.reset_damaged_embeddings(output)
        var, n, chunk, done = _prepare(source, output, enc, var, precision, chunk, dtype)
        todo, skipped = _plan(n, chunk, done)
        report = EmbedReport(path=output, input=source, total=n, chunks=math.ceil(n / chunk), skipped=skipped,
                             damaged=sorted(d.chunk[0] for d in damaged))
        token = lease.info.token if lease.info else ""
        tasks = [
            ChunkTask(str(source), str(output), var, k, lo, start, stop, enc, batch_size, device, precision, token)
            for k, lo, start, stop in todo
        ]
        with (xd.connect(scheduler, workers, device=device) if client is None else _given(client)) as active:
            if active is not None:
                xd.setup_client(active, device=device)
            resources = xd.task_resources(device, active)
            n_threads = max(1, threads or min(2, cores()))
            report.runner = _describe(active, n_threads)
            _run(tasks, active, n_threads, resources, report, progress, output)
        zs.end_write(output)
    report.seconds = time.perf_counter() - began
    report.computed.sort()
    if report.failed and errors == "raise":
        raise EmbedStoreError(report)
    return report


def _run(tasks: list[ChunkTask], client: Client | None, threads: int, resources: dict[str, float] | None,
         report: EmbedReport, progress: bool, output: Path) -> None:
    from tqdm.auto import tqdm

    total = sum(t.stop - t.start for t in tasks)
    with tqdm(total=total, desc="embed", unit="img", disable=not progress, smoothing=0.05) as bar:
        for task, result, error in _completed(tasks, client, threads, resources):
            if error is None:
                report.computed.append(task.chunk)
                report.embedded += int(result[1])
            else:
                try:
                    ids = [str(i) for i in zs.ids(output, task.start, task.stop)]
                except OSError:  # the output's ids are damaged too: the positions say which
                    ids = []
                report.failed.append(ChunkFailure(task.chunk, task.start, task.stop, ids,
                                                  f"{type(error).__name__}: {error}"))
                bar.set_postfix(failed=len(report.failed))
            bar.update(task.stop - task.start)
    report.failed.sort(key=lambda f: f.chunk)


class _given:
    """A context manager that yields the caller's client and leaves it open."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def __enter__(self) -> Client:
        return self.client

    def __exit__(self, *exc: object) -> None:
        return None


def _describe(client: Client | None, threads: int) -> str:
    if client is None:
        return f"local thread pool ({threads} threads)"
    info = client.scheduler_info(n_workers=-1)
    workers = info.get("workers", {})
    n_threads = sum(int(w.get("nthreads", 1)) for w in workers.values())
    return f"dask.distributed {info.get('address', '?')} ({len(workers)} workers, {n_threads} threads)"


# ---- how far a run got ----------------------------------------------------------------------------------------
def status(path: str | os.PathLike) -> dict[str, int | list[int]]:
    """How far an embedding store is, from its commit records (cheap: reads no embedding).

    Parameters
    ----------
    path : str or os.PathLike
        The embedding store.

    Returns
    -------
    dict
        ``imagettes``, ``chunk``, ``chunks``, ``chunks_done``, ``imagettes_done`` (ints) and ``missing_chunks``
        (list of chunk indices still to embed).

    Raises
    ------
    ValueError
        If ``path`` is not an xwvnet embedding store (the message says what was found).

    Examples
    --------
    >>> status("wv-emb.zarr")["missing_chunks"]  # doctest: +SKIP
    []
    """
    if zs.store_kind(path) != zs.EMBEDDINGS.kind:
        raise ValueError(f"{path} is not an xwvnet embedding store (found {zs.describe(path)}).")
    n = zs.committed(path)  # 0 while being created
    chunk = zs.committed_chunk(path) or 1
    done = zs.done_counts(path) if n else None
    done = np.zeros(0, dtype=np.int32) if done is None else done
    todo, skipped = _plan(n, chunk, done)
    return {
        "imagettes": n,
        "chunk": chunk,
        "chunks": math.ceil(n / chunk),
        "chunks_done": skipped,
        "imagettes_done": int(np.minimum(done[: math.ceil(n / chunk)], chunk).sum()),
        "missing_chunks": [k for k, *_ in todo],
    }

