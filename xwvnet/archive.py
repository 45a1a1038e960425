"""Embed a whole imagette store into an embedding store, chunk by chunk: resumable, crash-safe, appendable.

The output is a Zarr store holding ``embedding(imagette, feature)`` float32 plus the input's imagette coordinates,
in the input's order. One task embeds one output chunk (``chunk`` imagettes along ``imagette``) and writes it with
an aligned region write straight from the worker, so results never pass through (or pile up in) the client.

Crash safety is a per-chunk commit: ``progress/done[k]`` holds how many imagettes of chunk ``k`` are written, and a
task sets it only *after* its region write returned. Zarr writes each chunk object whole (a local store writes a
temporary file and renames it; object stores put whole objects), so a killed run leaves every chunk either as
committed or not counted, and a re-run recomputes exactly the uncounted ones. Coordinates are written by the client
before any task runs and count only once the root attribute ``imagettes`` says so (the commit-counter pattern of
:mod:`xwvnet.io.store`). When the input grew, a re-run extends the output (resizing, so the order follows the
input) and embeds only the new imagettes: ``done[k]`` of a partly filled last chunk says where to resume.

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
from typing import Any, Literal

import numpy as np
import xarray as xr
import zarr

from . import schema as S
from .io.store import committed, committed_chunk, imagette_arrays, open_store
from .io.store import open_group as _group

STORE_FORMAT = "xwvnet-embedding-store"
STORE_VERSION = 1
PROGRESS = "progress"  # subgroup with the per-chunk commit counts (hidden from xr.open_zarr of the root)
DONE = "done"
TASK_IMAGETTES = 256  # default imagettes per task: enough work to hide scheduling overhead, small enough to resume
COORD_BLOCK = 1 << 20  # imagettes of coordinates copied per step (bounded client memory)
COORD_CHUNK = 65536
_COMPAT = ("encoder_weights_hash", "encoder_arch", "encoder_transform", "image_variable", "precision")


class EmbedStoreError(RuntimeError):
    """Some chunks failed; the others are written. ``.report`` lists what is missing; re-run to complete."""

    def __init__(self, report: EmbedReport) -> None:
        super().__init__(report.summary())
        self.report = report


@dataclass
class ChunkFailure:
    """A chunk that could not be embedded, with the ids it holds and the error."""

    chunk: int
    start: int
    stop: int
    ids: list[str]
    error: str

    def describe(self) -> str:
        shown = ", ".join(self.ids[:3]) + (f", ..., {self.ids[-1]}" if len(self.ids) > 3 else "")
        return (
            f"chunk {self.chunk}: imagettes {self.start}..{self.stop - 1} ({len(self.ids)} ids: {shown}) "
            f"failed with {self.error}"
        )


@dataclass
class EmbedReport:
    """What a run did: chunks computed now, found done, failed; imagettes embedded; time taken."""

    path: Path
    input: Path
    total: int = 0  # imagettes in the output (= committed in the input)
    chunks: int = 0
    skipped: int = 0  # chunks already complete before this run
    computed: list[int] = field(default_factory=list)  # chunk indices written by this run
    embedded: int = 0  # imagettes embedded by this run
    failed: list[ChunkFailure] = field(default_factory=list)
    seconds: float = 0.0
    runner: str = ""

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
        """A short table for people (and the list of what is missing, if anything)."""
        lines = [
            f"output store      {self.path}",
            f"input store       {self.input}",
            f"runner            {self.runner}",
            f"imagettes         {self.total} in {self.chunks} chunks",
            f"already done      {self.skipped} chunks",
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
    """One unit of work: embed imagettes ``start:stop`` (inside output chunk ``chunk``) and commit them."""

    input: str
    output: str
    var: str
    chunk: int
    chunk_start: int
    start: int
    stop: int
    encoder: Any  # an Encoder: pickles to its spec, never to its weights
    batch_size: int
    device: str
    precision: str


def run_chunk(task: ChunkTask) -> tuple[int, int]:
    """Embed one chunk task (on a worker): read, embed, region-write, then commit; returns (chunk, imagettes)."""
    from .inference import embed_block

    source = zarr.open_group(task.input, mode="r")
    images = source[task.var][task.start : task.stop]
    valid_lines = source[S.VALID_LINES][task.start : task.stop]
    valid_samples = source[S.VALID_SAMPLES][task.start : task.stop]
    emb = embed_block(
        images, valid_lines, valid_samples, encoder=task.encoder, batch_size=task.batch_size,
        device=task.device, precision=task.precision, var=task.var,
    )
    target = zarr.open_group(task.output, mode="r+")
    target[S.EMBEDDING][task.start : task.stop] = emb
    target[f"{PROGRESS}/{DONE}"][task.chunk] = task.stop - task.chunk_start  # the commit: only after the data
    return task.chunk, task.stop - task.start


# ---- the output store: create, check, grow ------------------------------------------------------------------


def _ids(path: Path, start: int, stop: int) -> np.ndarray:
    values = np.asarray(zarr.open_array(str(path / S.IMAGETTE), mode="r")[start:stop]).tolist()
    return np.array([str(v) for v in values], dtype=object)


def _check_same_input(source: Path, output: Path, n: int) -> None:
    """The output's first ``n`` ids must be the input's: the input store only ever appends."""
    for start in range(0, n, COORD_BLOCK):
        stop = min(n, start + COORD_BLOCK)
        mine, theirs = _ids(output, start, stop), _ids(source, start, stop)
        bad = np.flatnonzero(mine != theirs)
        if bad.size:
            i = start + int(bad[0])
            raise ValueError(
                f"{output} was embedded from a different input: imagette {i} is {mine[bad[0]]!r} there but "
                f"{theirs[bad[0]]!r} in {source}. Embed into a new output store (or delete {output})."
            )


def _check_compatible(group: zarr.Group, attrs: dict, chunk: int | None, output: Path) -> None:
    stored = dict(group.attrs)
    diff = {k: (stored.get(k), attrs.get(k)) for k in _COMPAT if stored.get(k) != attrs.get(k)}
    if diff:
        detail = "; ".join(f"{k}: store has {a!r}, this run {b!r}" for k, (a, b) in diff.items())
        raise ValueError(
            f"{output} holds embeddings made differently ({detail}). Use the same encoder, variable and precision "
            "to resume, or write to a new output store."
        )
    if chunk is not None and int(stored["chunk"]) != chunk:
        raise ValueError(f"{output} has chunk={stored['chunk']} imagettes; resume with that chunk (or leave it out).")


def _coords(ds_in: xr.Dataset, start: int, stop: int) -> xr.Dataset:
    """The imagette coordinates of ``start:stop``, loaded, strings as Python objects."""
    names = [n for n, v in ds_in.coords.items() if v.dims == (S.IMAGETTE,)]
    out = xr.Dataset(coords={n: ds_in[n].variable for n in names}).isel({S.IMAGETTE: slice(start, stop)}).load()
    return out.assign_coords({n: v.astype(object) for n, v in out.coords.items() if v.dtype.kind in "UST"})


def _grow(ds_in: xr.Dataset, output: Path, n_out: int, n_in: int, chunk: int, dim: int, attrs: dict) -> None:
    """Extend the output to the input's ``n_in`` imagettes: coordinates written now, embeddings left to tasks."""
    import dask.array as da

    group = _group(output)
    if n_out == 0 or group is None:  # nothing committed yet: start afresh
        mode, group = "w", None
    else:  # drop coordinates of an extension that was killed before its commit
        mode = "a"
        for array in imagette_arrays(group):
            if array.shape[0] != n_out:
                array.resize((n_out, *array.shape[1:]))
    for start in range(n_out, n_in, COORD_BLOCK):
        stop = min(n_in, start + COORD_BLOCK)
        block = _coords(ds_in, start, stop)
        placeholder = da.empty((stop - start, dim), chunks=(chunk, dim), dtype=np.float32)
        block = block.assign({S.EMBEDDING: ((S.IMAGETTE, S.FEATURE), placeholder, attrs["embedding"])})
        if mode == "w":
            block.attrs = {"format": STORE_FORMAT, "version": STORE_VERSION, "imagettes": 0}
            encoding = {S.EMBEDDING: {"chunks": (chunk, dim)}}
            for name in block.coords:
                encoding[name] = {"chunks": (COORD_CHUNK,)}
            if S.TIME in block.coords:  # one fixed unit, so that later extensions never need another
                encoding[S.TIME].update(units="milliseconds since 1970-01-01", dtype="int64")
            block.to_zarr(output, mode="w", compute=False, consolidated=False, encoding=encoding)
            mode = "a"
        else:
            block.to_zarr(output, mode="a", append_dim=S.IMAGETTE, compute=False, consolidated=False,
                          safe_chunks=False)
    group = zarr.open_group(str(output), mode="r+")
    n_chunks = math.ceil(n_in / chunk)
    if f"{PROGRESS}/{DONE}" in group:
        group[f"{PROGRESS}/{DONE}"].resize((n_chunks,))
    else:
        group.require_group(PROGRESS).create_array(DONE, shape=(n_chunks,), chunks=(1,), dtype="int32", fill_value=0)
    meta = {k: v for k, v in attrs.items() if k != "embedding"}
    group.attrs.update({**meta, "format": STORE_FORMAT, "version": STORE_VERSION, "chunk": chunk, "imagettes": n_in})


def _prepare(
    source: Path, output: Path, encoder: Any, var: str | None, precision: str, chunk: int | None
) -> tuple[str, int, int, np.ndarray]:
    """Create or extend the output for the input's committed imagettes; return (var, n, chunk, done counts)."""
    from .inference import embedding_attrs as _embedding_attrs

    n_in = committed(source)
    if n_in == 0:
        raise ValueError(f"{source} holds no committed imagettes; ingest some first (`xwvnet ingest` or to_store).")
    ds_in = open_store(source)
    var = S.image_var(ds_in, var)
    S.require(ds_in, [S.VALID_LINES, S.VALID_SAMPLES], f"embedding {var!r}")
    if chunk is not None and chunk < 1:
        raise ValueError(f"chunk must be a positive number of imagettes, found {chunk}.")
    embedding_attrs = _embedding_attrs(encoder, var, precision)
    attrs = {**embedding_attrs, "input": str(source), "embedding": embedding_attrs}
    group = _group(output)
    n_out = 0
    if group is not None:
        if group.attrs.get("format") != STORE_FORMAT:
            raise ValueError(f"{output} is a Zarr store but not an xwvnet embedding store (format "
                             f"{group.attrs.get('format')!r}); refusing to overwrite it. Choose a new output path.")
        n_out = int(group.attrs.get("imagettes", 0))
    elif output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise ValueError(f"{output} exists and is not a Zarr store; refusing to overwrite it. Choose a new path.")
    if n_out:
        _check_compatible(group, attrs, chunk, output)
        chunk = int(group.attrs["chunk"])
        if n_out > n_in:
            raise ValueError(
                f"{output} holds {n_out} imagettes but {source} only {n_in} committed ones: the input shrank or "
                "was rewritten. Embed into a new output store."
            )
        _check_same_input(source, output, n_out)
    elif chunk is None:
        in_chunk = committed_chunk(source) or 1
        chunk = in_chunk * max(1, math.ceil(TASK_IMAGETTES / in_chunk))
    if n_in > n_out or group is None or f"{PROGRESS}/{DONE}" not in group:
        _grow(ds_in, output, n_out, n_in, chunk, encoder.embedding_size, attrs)
    done = np.asarray(zarr.open_array(str(output / PROGRESS / DONE), mode="r")[:])
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
def _completed(tasks: list[ChunkTask], client: Any, threads: int, resources: dict | None) -> Iterator[tuple]:
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
    encoder: Any = "wvnet-resnet50",
    *,
    client: Any = None,
    scheduler: str | None = None,
    workers: int | None = None,
    threads: int | None = None,
    chunk: int | None = None,
    var: str | None = None,
    batch_size: int = 64,
    device: str = "auto",
    precision: str = "float32",
    progress: bool = True,
    errors: Literal["raise", "report"] = "raise",
) -> EmbedReport:
    """Embed every committed imagette of ``input_store`` into ``output_store``, resuming where a run stopped.

    Where it runs: ``client`` (a ``distributed.Client``), else ``scheduler`` (an address or scheduler file;
    ``"threads"`` forces the local pool), else ``workers`` (a local cluster of that many processes, 1 thread each),
    else the client already active in this process, else a pool of ``threads`` threads here (default 2).
    ``chunk``: imagettes per task and per stored chunk (default: a multiple of the input's chunk near 256; fixed
    when the store is created). ``device="cuda"`` tasks each ask the cluster for one ``GPU`` resource. A re-run
    skips committed chunks and embeds new input imagettes only. Failed chunks are named with their ids; with
    ``errors="raise"`` an :class:`EmbedStoreError` is raised after every other chunk finished (``"report"``:
    returned in the report, as the CLI does).
    """
    from . import distributed as xd
    from .models.registry import load_encoder

    if errors not in ("raise", "report"):
        raise ValueError(f"errors must be 'raise' or 'report', found {errors!r}.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, found {batch_size}.")
    source, output = Path(input_store).expanduser().resolve(), Path(output_store).expanduser().resolve()
    enc = load_encoder(encoder)
    var, n, chunk, done = _prepare(source, output, enc, var, precision, chunk)
    todo, skipped = _plan(n, chunk, done)
    report = EmbedReport(path=output, input=source, total=n, chunks=math.ceil(n / chunk), skipped=skipped)
    tasks = [
        ChunkTask(str(source), str(output), var, k, lo, start, stop, enc, batch_size, device, precision)
        for k, lo, start, stop in todo
    ]
    began = time.perf_counter()
    with (xd.connect(scheduler, workers, device=device) if client is None else _given(client)) as active:
        if active is not None:
            xd.setup_client(active, device=device)
        resources = xd.task_resources(device, active)
        n_threads = max(1, threads or min(2, xd.cores()))
        report.runner = _describe(active, n_threads)
        _run(tasks, active, n_threads, resources, report, progress, output)
    report.seconds = time.perf_counter() - began
    report.computed.sort()
    if report.failed and errors == "raise":
        raise EmbedStoreError(report)
    return report


def _run(tasks: list, client: Any, threads: int, resources: dict | None, report: EmbedReport, progress: bool,
         output: Path) -> None:
    from tqdm.auto import tqdm

    total = sum(t.stop - t.start for t in tasks)
    with tqdm(total=total, desc="embed", unit="img", disable=not progress, smoothing=0.05) as bar:
        for task, result, error in _completed(tasks, client, threads, resources):
            if error is None:
                report.computed.append(task.chunk)
                report.embedded += int(result[1])
            else:
                ids = [str(i) for i in _ids(output, task.start, task.stop)]
                report.failed.append(ChunkFailure(task.chunk, task.start, task.stop, ids,
                                                  f"{type(error).__name__}: {error}"))
                bar.set_postfix(failed=len(report.failed))
            bar.update(task.stop - task.start)
    report.failed.sort(key=lambda f: f.chunk)


class _given:
    """A context manager that yields the caller's client and leaves it open."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def __enter__(self) -> Any:
        return self.client

    def __exit__(self, *exc: object) -> None:
        return None


def _describe(client: Any, threads: int) -> str:
    if client is None:
        return f"local thread pool ({threads} threads)"
    info = client.scheduler_info(n_workers=-1)
    workers = info.get("workers", {})
    n_threads = sum(int(w.get("nthreads", 1)) for w in workers.values())
    return f"dask.distributed {info.get('address', '?')} ({len(workers)} workers, {n_threads} threads)"


# ---- reading the result -------------------------------------------------------------------------------------
def open_embeddings(path: str | os.PathLike) -> xr.Dataset:
    """Open an embedding store lazily: ``embedding(imagette, feature)`` and the imagette coordinates.

    Chunks not yet written read as NaN; :func:`status` says how far a run got.
    """
    path = Path(path)
    group = _group(path, mode="r")
    if group is None or group.attrs.get("format") != STORE_FORMAT:
        raise ValueError(f"{path} is not an xwvnet embedding store; make one with xwvnet.embed_store or "
                         "`xwvnet embed INPUT OUTPUT`.")
    ds = xr.open_zarr(path, consolidated=False).isel({S.IMAGETTE: slice(0, int(group.attrs["imagettes"]))})
    strings = {n: v.astype(object) for n, v in ds.coords.items() if v.dtype.kind == "T"}
    ds = ds.assign_coords(strings)
    ds.attrs = {k: v for k, v in ds.attrs.items() if k not in ("format", "version", "imagettes")}
    return ds


def status(path: str | os.PathLike) -> dict[str, Any]:
    """How far an embedding store is: imagettes, chunks, chunks and imagettes done, indices of missing chunks."""
    path = Path(path)
    group = _group(path, mode="r")
    if group is None or group.attrs.get("format") != STORE_FORMAT:
        raise ValueError(f"{path} is not an xwvnet embedding store.")
    n, chunk = int(group.attrs.get("imagettes", 0)), int(group.attrs.get("chunk", 1))  # 0 while being created
    done = np.asarray(group[f"{PROGRESS}/{DONE}"][:]) if n else np.zeros(0, dtype=np.int32)
    todo, skipped = _plan(n, chunk, done)
    return {
        "imagettes": n,
        "chunk": chunk,
        "chunks": math.ceil(n / chunk),
        "chunks_done": skipped,
        "imagettes_done": int(np.minimum(done[: math.ceil(n / chunk)], chunk).sum()),
        "missing_chunks": [k for k, *_ in todo],
    }
