"""Cores, torch threads, the run context (where tasks run, on which device) and precision names: asked once here.

torch is imported only inside the functions that need it, so that ``import xwvnet`` stays light on dask workers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .errors import DeviceUnavailableError, InvalidArgumentError, InvalidTypeError

if TYPE_CHECKING:
    import torch
    from distributed import Client

THREADS_ENV = "XWVNET_TORCH_THREADS"
#: The one precision vocabulary of inference and training.
PRECISIONS: tuple[str, ...] = ("float32", "bfloat16", "float16")
#: Imagettes per forward pass when embedding (inference, whole-store runs, probes, evaluation); results do not
#: depend on it. Training batches are another thing (:mod:`xwvnet.training`).
BATCH_SIZE = 64


def cores() -> int:
    """CPU cores usable by this process (cgroup and affinity limits included, as dask counts them).

    Returns
    -------
    int
        At least 1.
    """
    from dask.system import CPU_COUNT

    return max(1, int(CPU_COUNT))


def threads_per_task(n_cores: int, concurrent_tasks: int) -> int:
    """Intra-op threads for each of ``concurrent_tasks`` sharing ``n_cores``: at least 1, never oversubscribed.

    Parameters
    ----------
    n_cores : int
        Cores available to the tasks.
    concurrent_tasks : int
        Tasks that run at the same time.

    Returns
    -------
    int
        ``max(1, n_cores // concurrent_tasks)``.

    Raises
    ------
    ValueError
        If either number is below 1.
    """
    if n_cores < 1 or concurrent_tasks < 1:
        raise InvalidArgumentError(
            f"expected positive cores and tasks, found cores={n_cores}, tasks={concurrent_tasks}."
        )
    return max(1, n_cores // concurrent_tasks)


def forced_threads() -> int | None:
    """The thread count forced by ``XWVNET_TORCH_THREADS`` (set by the dask worker plugin), or ``None``."""
    value = os.environ.get(THREADS_ENV, "").strip()
    return max(1, int(value)) if value else None


def cuda_device_count() -> int:
    """Visible CUDA GPUs (0 without torch's CUDA build or without a GPU)."""
    import torch

    return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0


#: The ``client=`` that means a thread pool in this process, even while a dask.distributed client is active.
LOCAL_THREADS = "threads"
#: The dask.distributed resource a GPU worker declares (``dask worker --resources GPU=1``) and a GPU task asks for.
GPU = "GPU"


@dataclass(frozen=True)
class RunContext:
    """Where a call's tasks run and on which device, resolved once at the public edge by :func:`run_context`.

    Inner functions take it as it is and check nothing again; a task only turns :attr:`device` into a
    ``torch.device`` where it runs. Used as a context manager, it closes at the end the client :func:`run_context`
    connected to from an address (a client given, or active in the session, is left open).

    Parameters
    ----------
    device : str, default "cpu"
        The tasks' device, resolved: ``"cpu"`` or ``"cuda:N"`` (or another name ``torch.device`` takes). On a
        cluster, ``"auto"`` stays: only a worker knows whether it has a GPU, so each task's :func:`torch_device`
        makes it that worker's first GPU, else its CPU (with ``gpu``, the tasks run on GPU workers only).
    client : distributed.Client, optional
        The cluster the tasks go to; ``None``: a pool of ``threads`` threads in this process.
    threads : int, default 1
        Tasks that run at once: the local pool's threads, or the task threads of the cluster's workers.
    gpu : bool, default False
        Whether each task asks the cluster for one :data:`GPU` resource, so a GPU never runs two tasks at once.
    owns_client : bool, default False
        Whether ``client`` was connected by :func:`run_context` (from an address), and closes with the context.

    Examples
    --------
    >>> with run_context(LOCAL_THREADS, "cpu", threads=2) as where:
    ...     where.describe()
    'local thread pool (2 threads)'
    """

    device: str = "cpu"
    client: Client | None = None
    threads: int = 1
    gpu: bool = False
    owns_client: bool = field(default=False, repr=False)

    @property
    def resources(self) -> dict[str, float] | None:
        """What each task asks the cluster for: ``{"GPU": 1}`` for GPU tasks, else ``None``."""
        return {GPU: 1} if self.gpu else None

    def describe(self) -> str:
        """Where the tasks run, in words (for reports).

        Returns
        -------
        str
            ``"local thread pool (N threads)"``, or the scheduler's address with its workers and threads.
        """
        if self.client is None:
            return f"local thread pool ({self.threads} threads)"
        info = self.client.scheduler_info(n_workers=-1)
        workers = info.get("workers", {})
        n_threads = sum(int(w.get("nthreads", 1)) for w in workers.values())
        return f"dask.distributed {info.get('address', '?')} ({len(workers)} workers, {n_threads} threads)"

    def __enter__(self) -> RunContext:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.owns_client and self.client is not None:
            self.client.close()


def run_context(
    client: Client | str | os.PathLike | None = None,
    device: str | torch.device = "auto",
    *,
    threads: int | None = None,
    local_rank: int = 0,
) -> RunContext:
    """Where a call's tasks run and on which device: the one place this is decided, called at each public edge.

    Parameters
    ----------
    client : distributed.Client, str or os.PathLike, optional
        A ``distributed.Client`` (used, left open); a scheduler address (``"tcp://host:8786"``) or scheduler file
        (connected here, closed when the returned context ends); or ``"threads"`` (:data:`LOCAL_THREADS`): a thread
        pool in this process even while a client is active. Default: the dask.distributed client active in this
        process, else a thread pool here.
    device : str or torch.device, default "auto"
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``. For a pool here it is resolved against this machine:
        ``"auto"`` is its GPU when it has one, else the CPU, and CUDA without a GPU is refused. For a cluster it is
        checked against the ``GPU`` resources its workers declare: ``"auto"`` asks for a GPU when some worker
        declares one (each task then uses its worker's GPU, else its CPU), and CUDA when none does is refused (GPU
        tasks would wait for ever).
    threads : int, optional
        Threads of the pool here (default: every core).
    local_rank : int, default 0
        The GPU of this machine a bare ``"cuda"`` or ``"auto"`` means (under ``torchrun``, the rank's).

    Returns
    -------
    RunContext
        Use it in a ``with`` block, so that a client connected from an address is closed at the end.

    Raises
    ------
    xwvnet.errors.InvalidArgumentError
        If ``device`` is not a device name, or ``threads`` not a positive integer.
    xwvnet.errors.InvalidTypeError
        If ``client`` is none of the above.
    xwvnet.errors.DeviceUnavailableError
        If CUDA is asked for where no GPU can run the tasks.

    Examples
    --------
    >>> run_context("threads", " CPU ", threads=2)
    RunContext(device='cpu', client=None, threads=2, gpu=False)
    """
    import torch

    name = str(device).strip().lower()
    if name != "auto":
        try:
            torch.device(name)
        except (RuntimeError, TypeError) as err:
            raise InvalidArgumentError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', found {device!r}.") from err
    n_threads = cores() if threads is None else check_count(threads, "threads", "threads")
    active, owned = _client(client)
    if active is None:  # the tasks run in this process: this machine's GPUs are the ones that count
        has_gpu = torch.cuda.is_available()
        if name.startswith("cuda") and not has_gpu:
            raise DeviceUnavailableError(f"device={device!r} but this machine has no visible CUDA GPU (torch "
                                         f"{torch.__version__}); use device='cpu' or 'auto'.")
        if name in ("auto", "cuda"):
            name = f"cuda:{int(local_rank)}" if has_gpu else "cpu"
        return RunContext(name, None, n_threads)
    try:
        workers = active.scheduler_info(n_workers=-1).get("workers", {}).values()
        n_gpu = sum(1 for info in workers if float(info.get("resources", {}).get(GPU, 0)) >= 1)
        gpu = name.startswith("cuda") or (name == "auto" and n_gpu > 0)
        if gpu and n_gpu == 0:
            raise DeviceUnavailableError(
                f"device={device!r} but no worker declares a {GPU!r} resource, so GPU tasks would wait forever. "
                f"Start GPU workers with `dask worker ADDRESS --nthreads 1 --resources {GPU}=1` (one per GPU), use "
                "xwvnet.distributed.local_cluster(device='cuda'), or embed with device='cpu'.")
        if name == "cuda":  # a GPU worker sees its own GPU first (CUDA_VISIBLE_DEVICES)
            name = "cuda:0"
        total = sum(int(info.get("nthreads", 1)) for info in workers)
        return RunContext(name, active, max(1, total), gpu, owned)
    except BaseException:
        if owned:
            active.close()
        raise


def torch_device(name: str) -> torch.device:
    """The ``torch.device`` of a :attr:`RunContext.device`, where a task runs; nothing is checked again.

    Parameters
    ----------
    name : str
        A device resolved by :func:`run_context`. ``"auto"``, which it leaves to a cluster's workers, is this
        process's first GPU when it sees one, else its CPU.

    Returns
    -------
    torch.device

    Examples
    --------
    >>> torch_device("cpu")
    device(type='cpu')
    """
    import torch

    if name == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _client(client: object) -> tuple[Client | None, bool]:
    """The cluster a ``client=`` names (``None``: a pool here), and whether it was connected here."""
    if isinstance(client, str) and client == LOCAL_THREADS:
        return None, False
    from distributed import Client, default_client

    if client is None:
        try:
            return default_client(), False
        except ValueError:  # no client in this process
            return None, False
    if isinstance(client, (str, os.PathLike)):
        address = os.fspath(client)
        return (Client(scheduler_file=address) if os.path.isfile(address) else Client(address)), True
    if isinstance(client, Client):
        return client, False
    raise InvalidTypeError(f"client must be a distributed.Client, a scheduler address or file, or "
                           f"{LOCAL_THREADS!r}; found {type(client).__name__}.")


def check_precision(precision: str) -> str:
    """Return ``precision`` if it is one of :data:`PRECISIONS`, else raise a ``ValueError`` naming them."""
    if precision not in PRECISIONS:
        raise InvalidArgumentError(f"precision must be one of {list(PRECISIONS)}, found {precision!r}.")
    return precision


#: the largest stored chunk (and task read) accepted: 1 GiB
MAX_CHUNK_BYTES = 2**30


def check_count(value: object, name: str, what: str = "imagettes", *, row_bytes: int = 0) -> int:
    """Return ``value`` if it is a positive integer (not a bool), else raise a ``ValueError`` naming ``name``.

    The one check of batch sizes and chunk sizes at every public entry point; with ``row_bytes`` (bytes per
    imagette of a chunk), ``value`` imagettes must stay within :data:`MAX_CHUNK_BYTES`.

    Parameters
    ----------
    value : object
        The value given.
    name : str
        The argument's name, for the message (``"batch_size"``, ``"chunk_size"`` ...).
    what : str, default "imagettes"
        What it counts, for the message.
    row_bytes : int, default 0
        Bytes per imagette of a stored chunk (0: no ceiling).

    Returns
    -------
    int

    Raises
    ------
    ValueError
        If ``value`` is not an integer of at least 1, or makes chunks larger than :data:`MAX_CHUNK_BYTES`.

    Examples
    --------
    >>> check_count(64, "batch_size")
    64
    """
    import numbers

    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise InvalidArgumentError(f"{name} must be a positive number of {what}, found {value!r}.")
    if row_bytes and value > (limit := max(1, MAX_CHUNK_BYTES // row_bytes)):
        raise InvalidArgumentError(f"{name}={value} makes chunks of {value * row_bytes / 2**30:.3g} GiB; the limit is "
                                   f"{MAX_CHUNK_BYTES / 2**30:g} GiB per chunk, here {name} <= {limit}.")
    return int(value)


def torch_dtype(precision: str) -> torch.dtype:
    """The ``torch.dtype`` of a precision name (``"float32"``, ``"bfloat16"``, ``"float16"``)."""
    import torch

    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[check_precision(precision)]


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX); otherwise it is emulated and slow."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # an older or unusual build: do not guess
        return True
