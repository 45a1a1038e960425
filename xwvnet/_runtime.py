"""Cores, torch threads, devices and precision names: asked once here, so every room answers the same way.

torch is imported only inside the functions that need it, so that ``import xwvnet`` stays light on dask workers.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

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
        raise ValueError(f"expected positive cores and tasks, found cores={n_cores}, tasks={concurrent_tasks}.")
    return max(1, n_cores // concurrent_tasks)


def forced_threads() -> int | None:
    """The thread count forced by ``XWVNET_TORCH_THREADS`` (set by the dask worker plugin), or ``None``."""
    value = os.environ.get(THREADS_ENV, "").strip()
    return max(1, int(value)) if value else None


def cuda_device_count() -> int:
    """Visible CUDA GPUs (0 without torch's CUDA build or without a GPU)."""
    import torch

    return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0


def device_name(device: str | torch.device) -> str:
    """The normalised name of a device, checked as a name only (the GPUs of this machine are not asked).

    Use it where the tasks run elsewhere (on dask workers, whose GPUs count); :func:`resolve_device` where they
    run here.

    Parameters
    ----------
    device : str or torch.device
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` (any name ``torch.device`` accepts).

    Returns
    -------
    str
        The name, stripped and lower-case (``"auto"`` stays ``"auto"``).

    Raises
    ------
    ValueError
        If the name is not a device.

    Examples
    --------
    >>> device_name(" CPU ")
    'cpu'
    """
    name = str(device).strip().lower()
    if name == "auto":
        return name
    import torch

    try:
        torch.device(name)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', found {device!r}.") from err
    return name


def resolve_device(device: str | torch.device = "auto", local_rank: int = 0) -> torch.device:
    """The ``torch.device`` meant by ``device`` on this machine.

    Parameters
    ----------
    device : str or torch.device, default "auto"
        ``"auto"`` (CUDA when present, else the CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    local_rank : int, default 0
        The GPU a bare ``"cuda"``/``"auto"`` means under ``torchrun`` (one GPU per local rank).

    Returns
    -------
    torch.device

    Raises
    ------
    ValueError
        If CUDA is asked for on a machine without a visible GPU, or the name is not a device.
    """
    import torch

    if isinstance(device, torch.device):
        device = str(device)
    name = device_name(device)
    if name == "auto":
        return torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} but this machine has no visible CUDA GPU (torch {torch.__version__}); "
            "use device='cpu' or 'auto'."
        )
    if name == "cuda":
        return torch.device(f"cuda:{local_rank}")
    return torch.device(name)


def check_precision(precision: str) -> str:
    """Return ``precision`` if it is one of :data:`PRECISIONS`, else raise a ``ValueError`` naming them."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {list(PRECISIONS)}, found {precision!r}.")
    return precision


def check_count(value: object, name: str, what: str = "imagettes") -> int:
    """Return ``value`` if it is a positive integer (not a bool), else raise a ``ValueError`` naming ``name``.

    The one check of batch sizes and chunk sizes at every public entry point.

    Parameters
    ----------
    value : object
        The value given.
    name : str
        The argument's name, for the message (``"batch_size"``, ``"chunk_size"`` ...).
    what : str, default "imagettes"
        What it counts, for the message.

    Returns
    -------
    int

    Raises
    ------
    ValueError
        If ``value`` is not an integer of at least 1.

    Examples
    --------
    >>> check_count(64, "batch_size")
    64
    """
    import numbers

    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive number of {what}, found {value!r}.")
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
