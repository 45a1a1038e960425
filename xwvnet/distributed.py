"""dask.distributed done right for embedding: a model once per worker, a thread budget, GPUs as resources.

Why each piece exists:

- **Model once per worker.** Tasks carry an :class:`~xwvnet.Encoder` *spec* (it pickles without its weights); each
  worker process builds the model on first use and keeps it in :func:`xwvnet.inference.get_model`'s cache. The
  :class:`WVNetWorker` plugin can build it at worker start-up, so a missing weights file fails once, loudly, instead
  of in every task.
- **Threads.** A worker runs ``nthreads`` tasks at once and torch starts its own intra-op threads in each: the
  product must not exceed the cores, or throughput collapses. :func:`xwvnet.inference.embed_block` divides the
  cores it sees by the worker's ``nthreads``; but several worker processes often share one host (a LocalCluster,
  a jobqueue job with ``processes > 1``), so the plugin (and :func:`local_cluster`) set ``XWVNET_TORCH_THREADS`` to
  ``host cores // worker threads on that host``.
- **GPUs.** A GPU worker declares ``resources={"GPU": 1}`` (``dask worker --resources GPU=1``) and embedding tasks
  ask for it (:attr:`xwvnet._runtime.RunContext.resources`, decided by :func:`xwvnet._runtime.run_context` from the
  workers' declarations), so a GPU never runs two embedding tasks at once.

Where a call runs (a client, an address, the active client, or threads here) is decided by
:func:`xwvnet._runtime.run_context` at the call's edge; this module builds local clusters and sets workers up.

For work that needs no scheduler (each task independent, results back to the caller), :func:`process_pool` starts
plain worker processes on this machine in milliseconds (forked on Linux): ``xwvnet.ingest(workers=N)`` computes
SAFE imagettes there.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from distributed import Client, LocalCluster, SpecCluster, Worker
from distributed.diagnostics.plugin import WorkerPlugin

from ._runtime import (
    GPU,
    LOCAL_THREADS,
    THREADS_ENV,
    check_count,
    cores,
    cuda_device_count,
    run_context,
    threads_per_task,
)
from .errors import RunError, UnavailableError, XWVNetError

if TYPE_CHECKING:
    from .models.encoder import Encoder

__all__ = [
    "GPU",
    "THREADS_ENV",
    "LocalClusterError",
    "WVNetWorker",
    "WorkerDiedError",
    "WorkerMemory",
    "host_threads",
    "local_client",
    "local_cluster",
    "local_shape",
    "process_pool",
    "relax_malloc_trim",
    "setup_client",
]

PLUGIN_NAME = "xwvnet"
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters, from glibc's malloc.h


# ---- thread budget ------------------------------------------------------------------------------------------
def host_threads(client: Client) -> dict[str, int]:
    """Worker threads per host, summed over every worker process on that host (from the scheduler's view).

    Several worker processes often share a host; their torch threads must share its cores.

    Parameters
    ----------
    client : distributed.Client
        A connected client.

    Returns
    -------
    dict of str to int
        Host address -> task threads of all its workers.
    """
    out: dict[str, int] = {}
    for info in client.scheduler_info(n_workers=-1)["workers"].values():
        host = str(info.get("host", ""))
        out[host] = out.get(host, 0) + int(info.get("nthreads", 1))
    return out


def relax_malloc_trim(threshold: int = 2**30) -> bool:
    """Undo, inside this process, the ``MALLOC_TRIM_THRESHOLD_=65536`` that dask's nanny sets for its workers.

    With that variable glibc stops adapting its mmap threshold, so every large torch activation is mmap-ed and
    page-faulted afresh: ResNet inference ran 1.7x slower in a nanny worker than in the parent here. ``mallopt``
    restores large thresholds at run time.

    Parameters
    ----------
    threshold : int, default 2**30
        The mmap and trim thresholds to set, in bytes.

    Returns
    -------
    bool
        True when glibc accepted both; False where glibc is not the allocator (macOS, musl).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, threshold)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, threshold))
    except (OSError, AttributeError):
        return False


class WVNetWorker(WorkerPlugin):
    """Sets each worker's torch thread budget and, given an encoder, builds its model once at start-up.

    ``torch_threads`` forces the budget; otherwise it is ``host cores // worker threads on the host`` using
    ``threads_by_host`` (the cluster as the client saw it), falling back to ``cores // this worker's threads`` for
    workers that joined later. A ``XWVNET_TORCH_THREADS`` already in the worker's environment is kept.

    Parameters
    ----------
    encoder : str, os.PathLike or Encoder, optional
        The encoder to build at start-up (only its spec travels), so a missing weights file fails once, loudly.
    device : str, default "auto"
        The device string the embedding tasks get (so the start-up build fills the same cache entry).
    torch_threads : int, optional
        Forces every worker's torch thread budget.
    threads_by_host : dict of str to int, optional
        Worker threads per host, as :func:`host_threads` saw the cluster.
    """

    name = PLUGIN_NAME

    def __init__(
        self,
        encoder: str | os.PathLike | Encoder | None = None,
        *,
        device: str = "auto",
        torch_threads: int | None = None,
        threads_by_host: dict[str, int] | None = None,
    ) -> None:
        self.encoder = encoder
        self.device = device
        self.torch_threads = torch_threads
        self.threads_by_host = dict(threads_by_host or {})

    def setup(self, worker: Worker) -> None:
        """Set this worker's torch thread budget, relax its malloc trimming, and build the model if asked.

        Parameters
        ----------
        worker : distributed.Worker
            The worker starting up (dask calls this).
        """
        from distributed.comm import get_address_host

        relax_malloc_trim()
        if self.torch_threads is not None:
            os.environ[THREADS_ENV] = str(int(self.torch_threads))
        elif not os.environ.get(THREADS_ENV, "").strip():
            nthreads = int(worker.state.nthreads)
            on_host = self.threads_by_host.get(get_address_host(worker.address), nthreads)
            os.environ[THREADS_ENV] = str(threads_per_task(cores(), max(on_host, nthreads)))
        if self.encoder is not None:  # one tiny block through the tasks' own path builds (and caches) the model
            import numpy as np

            from .inference import embed_block

            one = np.ones(1, dtype=np.int64)
            embed_block(np.zeros((1, 1, 1), dtype=np.uint8), one, one, encoder=self.encoder, batch_size=1,
                        device=self.device)  # the device string the tasks get, so the same cache entry


def setup_client(
    client: Client,
    encoder: str | os.PathLike | Encoder | None = None,
    *,
    device: str = "auto",
    torch_threads: int | None = None,
) -> None:
    """Register :class:`WVNetWorker` on every current and future worker of ``client`` (replacing an older one).

    Parameters
    ----------
    client : distributed.Client
        The cluster's client.
    encoder : str, os.PathLike or Encoder, optional
        With it, each worker builds the model now (only the spec travels), so a worker that cannot find the
        weights fails here with the registry's message rather than in every task.
    device : str, default "auto"
        The device the embedding tasks will ask for.
    torch_threads : int, optional
        Forces every worker's torch thread budget (default: host cores // worker threads on the host).

    Returns
    -------
    None

    Raises
    ------
    WeightsUnavailableError
        If the encoder's weights cannot be found here (before anything is sent to the workers).
    """
    if encoder is not None:
        from .models.zoo import load_encoder

        encoder = load_encoder(encoder)
    plugin = WVNetWorker(encoder, device=device, torch_threads=torch_threads, threads_by_host=host_threads(client))
    client.register_plugin(plugin, name=PLUGIN_NAME)


# ---- clusters -----------------------------------------------------------------------------------------------
class LocalClusterError(UnavailableError, RuntimeError):
    """A local dask cluster could not start (e.g. "Nanny failed to start" under a memory limit)."""


def local_shape(n_workers: int | None = None, threads: int | None = None) -> tuple[int, int]:
    """Worker processes and threads per worker of a local CPU cluster: the one rule.

    The default is **one process with a thread per core**: every extra worker process imports the libraries and
    builds its own model, and the results of all of them go through one serial commit, while torch and the
    readers release the GIL for the heavy work (``benchmarks/cluster.py`` measures both shapes on a machine).
    Processes are used only when asked for, with one thread each unless ``threads`` says otherwise (their torch
    threads then share the cores through ``XWVNET_TORCH_THREADS``).

    Parameters
    ----------
    n_workers : int, optional
        Worker processes (default 1).
    threads : int, optional
        Task threads per worker (default: every core with one process, 1 with several).

    Returns
    -------
    tuple of (int, int)
        ``(n_workers, threads_per_worker)``.

    Raises
    ------
    ValueError
        If a count is not a positive integer.

    Examples
    --------
    >>> local_shape(2)
    (2, 1)
    >>> local_shape(threads=3)
    (1, 3)
    """
    n = 1 if n_workers is None else check_count(n_workers, "n_workers", "worker processes")
    if threads is not None:
        return n, check_count(threads, "threads", "threads per worker")
    return n, (cores() if n_workers is None else 1)


def _check_main_importable() -> None:
    """Worker processes start by re-running the main script: refuse code that has no script file (``python -``)."""
    main = getattr(sys.modules.get("__main__"), "__file__", None)
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is None and main is not None and not os.path.isfile(main):
        raise LocalClusterError(
            f"worker processes cannot start from code read from {main} (each re-runs the main script, and there is "
            "none): save the code to a file with an `if __name__ == \"__main__\":` guard and run that, or use "
            "threads in this process (client=\"threads\", or --threads N).")


def local_cluster(
    n_workers: int | None = None,
    *,
    threads_per_worker: int | None = None,
    device: str = "cpu",
    dashboard_address: str | None = ":0",
    **kwargs: object,
) -> LocalCluster | SpecCluster:
    """A cluster of workers on this machine with a torch thread budget (and one worker per GPU).

    Its shape follows :func:`local_shape`: by default one worker process with a thread per core; ``n_workers``
    processes when asked for. The budget keeps worker threads x torch threads within the cores. Closing it is
    quiet: a worker process that has not exited within the close timeout is stopped without the nanny's "still
    alive, killing" notice. :func:`local_client` gives a client on one, with a clear error when it cannot start.

    Parameters
    ----------
    n_workers : int, optional
        CPU: worker processes (default 1); CUDA: at most one per GPU (default one per GPU).
    threads_per_worker : int, optional
        Task threads per worker (CPU; default :func:`local_shape`'s); each task gets
        ``cores // (n_workers * threads_per_worker)`` torch threads.
    device : str, default "cpu"
        ``"cuda"``: one single-threaded worker per visible GPU, each seeing only its GPU
        (``CUDA_VISIBLE_DEVICES``) and declaring ``GPU=1``; ``"auto"``: so when this machine has a GPU, else CPU
        workers.
    dashboard_address : str or None, default ":0"
        Where the dashboard listens (``":0"``: any free port; ``None``: no dashboard).
    **kwargs
        Passed to :class:`distributed.LocalCluster` (CPU) or to each GPU worker's nanny.

    Returns
    -------
    distributed.LocalCluster or distributed.SpecCluster
        Use it as a context manager with a :class:`distributed.Client`.

    Raises
    ------
    ValueError
        On a non-positive count, or ``device="cuda"`` without a visible GPU.
    """
    _check_main_importable()
    if run_context(LOCAL_THREADS, device).device.startswith("cuda"):  # the workers run on this machine
        return _gpu_cluster(n_workers, dashboard_address=dashboard_address, **kwargs)
    n_workers, threads_per_worker = local_shape(n_workers, threads_per_worker)
    per_task = threads_per_task(cores(), n_workers * threads_per_worker)
    env = {THREADS_ENV: str(per_task), **kwargs.pop("env", {})}
    return _closes_quietly(LocalCluster(
        n_workers=n_workers,
        threads_per_worker=threads_per_worker,
        processes=True,
        dashboard_address=dashboard_address,
        env=env,
        **kwargs,
    ))


class _KillNotice(logging.Filter):
    """Drops the nanny's notice that it stopped a worker process which had not exited within the close timeout.

    Closing a local cluster whose workers are slow to exit (a loaded machine, torch threads winding down) ends
    that way, by design; the notice (one per worker) says nothing a user can act on.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Worker process still alive after")


@contextlib.contextmanager
def _quiet_close() -> Iterator[None]:
    """The nanny's kill notice is dropped while a cluster of ours closes (its nannies run in this process)."""
    logger, notice = logging.getLogger("distributed.nanny"), _KillNotice()
    logger.addFilter(notice)
    try:
        yield
    finally:
        logger.removeFilter(notice)


def _closes_quietly(cluster: LocalCluster | SpecCluster) -> LocalCluster | SpecCluster:
    """``cluster``, whose close (``close()``, a ``with`` block, or at exit) drops the nanny's kill notice."""
    close = cluster._close

    async def _close() -> None:
        with _quiet_close():
            await close()

    cluster._close = _close  # type: ignore[method-assign]
    return cluster


class _OwningClient(Client):
    """A client that closes the local cluster it was made for when it closes."""

    def close(self, *args: object, **kwargs: object) -> object:
        cluster = self.cluster
        try:
            return super().close(*args, **kwargs)
        finally:
            if cluster is not None:
                cluster.close()


def local_client(
    n_workers: int | None = None,
    threads: int | None = None,
    *,
    device: str = "cpu",
    dashboard_address: str | None = None,
    **kwargs: object,
) -> Client:
    """A client on a new :func:`local_cluster` (shaped by :func:`local_shape`), closing the cluster when closed.

    The way to a local cluster (the ``xwvnet`` command's ``--workers`` and ``--threads`` come here), so a cluster
    that cannot start fails with one line that says what to do.

    Parameters
    ----------
    n_workers : int, optional
        Worker processes (default 1; CUDA: one per GPU).
    threads : int, optional
        Task threads per worker (default: every core with one process, 1 with several).
    device : str, default "cpu"
        ``"cuda"``: one worker per visible GPU; ``"auto"``: so when this machine has a GPU (see
        :func:`local_cluster`).
    dashboard_address : str or None, default None
        Where the dashboard listens (``":0"``: any free port; ``None``: no dashboard).
    **kwargs
        Passed to :func:`local_cluster`.

    Returns
    -------
    distributed.Client
        Use it as a context manager (or close it): the cluster closes with it.

    Raises
    ------
    ValueError
        On a non-positive count, or CUDA without a visible GPU.
    LocalClusterError
        If the cluster cannot start (e.g. "Nanny failed to start" under a memory limit).

    Examples
    --------
    >>> with local_client(threads=2) as client:  # doctest: +SKIP
    ...     xwvnet.embed_store("wv.zarr", "wv-emb.zarr", client=client)
    """
    device = run_context(LOCAL_THREADS, device).device  # "cpu" or "cuda:0": CPU workers, or one per GPU
    shape = local_shape(n_workers, threads) if not device.startswith("cuda") else (n_workers, 1)
    try:
        cluster = local_cluster(n_workers, threads_per_worker=threads, device=device,
                                dashboard_address=dashboard_address, **kwargs)
    except (ValueError, XWVNetError):
        raise
    except Exception as err:  # noqa: BLE001 - whatever stopped it, the user gets one line saying what to do
        n, t = shape
        what = f"{n or 'one per GPU'} worker process(es) x {t} thread(s)"
        raise LocalClusterError(
            f"could not start a local dask cluster of {what}: {type(err).__name__}: {str(err).rstrip('.')}. Start "
            "fewer worker processes (e.g. --workers 1, or none: threads in one process) or use threads (--threads "
            "N), or raise the memory limit."
        ) from err
    try:
        return _OwningClient(cluster)
    except BaseException:
        cluster.close()
        raise


def _gpu_cluster(n_workers: int | None, *, dashboard_address: str | None, **kwargs: object) -> SpecCluster:
    from distributed import Nanny, Scheduler

    n_gpu = cuda_device_count()  # at least 1: the device was resolved to a GPU of this machine
    n_workers = min(n_workers or n_gpu, n_gpu)
    per_task = threads_per_task(cores(), n_workers)
    workers = {
        f"gpu-{i}": {
            "cls": Nanny,
            "options": {
                "nthreads": 1,
                "resources": {GPU: 1},
                "env": {"CUDA_VISIBLE_DEVICES": str(i), THREADS_ENV: str(per_task)},
                **kwargs,
            },
        }
        for i in range(n_workers)
    }
    scheduler = {"cls": Scheduler, "options": {"dashboard_address": dashboard_address}}
    return _closes_quietly(SpecCluster(workers=workers, scheduler=scheduler))


# ---- process pools ------------------------------------------------------------------------------------------
class WorkerDiedError(RunError, RuntimeError):
    """A worker process of a :func:`process_pool` died while it worked (killed for memory, or crashed).

    A ``RuntimeError``. What was committed before is kept; re-run with fewer workers or more memory.
    """


#: Variables that size the thread pools of numerical libraries; each pool worker sets them to 1.
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
                     "BLOSC_NTHREADS", THREADS_ENV)
_STARTED: dict[str, int] = {}  # in a pool worker: its resident memory high-water mark when it started


@dataclass(frozen=True)
class WorkerMemory:
    """The resident memory of one pool worker process, in bytes.

    Parameters
    ----------
    pid : int
        The worker's process id.
    start : int
        Its high-water mark when it started. A forked worker shares the pages of the process that started it
        (copy on write): they count here without being copied.
    peak : int
        Its high-water mark after its latest task.
    """

    pid: int
    start: int
    peak: int

    @property
    def added(self) -> int:
        """Bytes the worker's high-water mark rose by since it started: what its tasks cost."""
        return max(0, self.peak - self.start)


def _peak_rss() -> int:
    """This process's resident memory high-water mark in bytes (0 where ``resource`` is missing)."""
    try:
        import resource
    except ImportError:  # Windows
        return 0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024  # bytes on macOS, KiB on Linux


def _start_worker() -> None:
    """Set up one pool worker: Ctrl-C left to the parent, one thread per numerical library, large blocks of memory
    reused rather than mapped and faulted in afresh for every task (:func:`relax_malloc_trim`), memory noted."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C reaches the whole group: the parent decides
    relax_malloc_trim()
    os.environ.update(dict.fromkeys(_THREAD_VARIABLES, "1"))
    with contextlib.suppress(ImportError):  # libraries loaded already (forked workers) read no variable again
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    with contextlib.suppress(ImportError):
        import dask

        dask.config.set(scheduler="synchronous")  # a task's own dask graph runs in this thread
    _STARTED["rss"] = _peak_rss()


def in_worker(func: Callable[..., Any], *args: Any) -> tuple[Any, WorkerMemory]:
    """Run ``func(*args)`` in a pool worker; return its result with the worker's memory (for :func:`process_pool`).

    Parameters
    ----------
    func : callable
        A function importable by name (``module.function``), as every pool task must be.
    *args
        Its arguments (pickled to the worker).

    Returns
    -------
    tuple of (object, WorkerMemory)
        The result, and this worker's memory after computing it.
    """
    out = func(*args)
    return out, WorkerMemory(os.getpid(), _STARTED.get("rss", 0), _peak_rss())


def start_method() -> str:
    """How :func:`process_pool` starts worker processes: ``"fork"`` on Linux, ``"spawn"`` elsewhere.

    A forked worker starts in milliseconds with everything already imported, where a spawned one re-imports
    xwvnet, xarray and dask (seconds): the difference between a pool worth starting for a few imagettes and one
    that is not. Forking is left to Linux, where it is the long-standing default; macOS and Windows spawn.

    Returns
    -------
    str
        A :mod:`multiprocessing` start method.
    """
    return "fork" if sys.platform.startswith("linux") else "spawn"


@contextlib.contextmanager
def process_pool(n_workers: int) -> Iterator[ProcessPoolExecutor]:
    """A pool of ``n_workers`` plain worker processes on this machine, for independent tasks; closed on exit.

    Each worker ignores Ctrl-C (the process that started the pool stops it and decides what is kept), runs its
    numerical libraries on one thread (the workers share the cores) and dask graphs in its own thread, and keeps
    the memory it frees for its next task (:func:`relax_malloc_trim`: no page faults on every large array); submit
    :func:`in_worker` to learn a task's worker memory. On leaving the block (normally, on an error or on Ctrl-C)
    queued tasks are cancelled and the running ones waited for, so no worker outlives the block.

    Parameters
    ----------
    n_workers : int
        Worker processes.

    Returns
    -------
    context manager of concurrent.futures.ProcessPoolExecutor
        Use it in a ``with`` block; its tasks' functions must be importable by name. A worker that dies makes the
        futures raise ``BrokenProcessPool``; :func:`worker_died` turns that into a :class:`WorkerDiedError`.

    Raises
    ------
    ValueError
        If ``n_workers`` is not a positive integer.
    LocalClusterError
        Where workers are spawned and the main script cannot be re-run (code piped into ``python -``).

    Examples
    --------
    >>> with process_pool(2) as pool:  # doctest: +SKIP
    ...     value, memory = pool.submit(in_worker, sum, [1, 2]).result()
    """
    n_workers = check_count(n_workers, "workers", "worker processes")
    method = start_method()
    if method != "fork":
        _check_main_importable()
    pool = ProcessPoolExecutor(n_workers, mp_context=multiprocessing.get_context(method), initializer=_start_worker)
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def worker_died(err: BaseException, n_workers: int, kept: str) -> WorkerDiedError:
    """The one-line error for a pool whose worker died (``BrokenProcessPool``), saying what was kept and what to do.

    Parameters
    ----------
    err : BaseException
        What the future raised.
    n_workers : int
        The pool's size.
    kept : str
        What the call keeps, e.g. ``"the 40 imagettes committed are kept"``.

    Returns
    -------
    WorkerDiedError
        To raise ``from err``.
    """
    return WorkerDiedError(
        f"a worker process died ({type(err).__name__}: {str(err).rstrip('.') or 'no reason given'}; often: killed "
        f"for memory); {kept}. Re-run with fewer workers than {n_workers} (or more memory) to complete it.")
