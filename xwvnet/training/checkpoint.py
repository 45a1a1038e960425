"""Training checkpoints: written atomically, read with ``weights_only=True``, checked before a run resumes from one.

Each checkpoint has a JSON sidecar (``checkpoint.json`` beside ``checkpoint.pt``) recording its SHA-256, checked
by :func:`load_checkpoint`: a checkpoint damaged on disk is refused instead of resuming with garbage. The sidecar is
written before the new checkpoint is renamed into place and also records the previous checkpoint's hash, so a run
killed between the two renames still resumes from the checkpoint it left. Checkpoints holding NaN or infinite
weights or optimizer states are refused too.

A checkpoint holds everything a resumed run needs to repeat exactly the steps an uninterrupted run would have made:
the backbone and head, the optimizer, the learning-rate scheduler, the gradient scaler (float16), and the state of
every random number generator of every rank (python ``random``, numpy's global generator, torch's CPU generator and
each CUDA device's). Everything in it is a tensor or a plain Python value, so that it loads without pickle.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import random
from pathlib import Path

import numpy as np
import pooch
import torch
from torch import nn

from .._files import local_path, replacing
from ..errors import ModelError, warn
from ..models.weights import nonfinite_tensors, read_sidecar, sidecar_path, write_sidecar

__all__ = ["CheckpointError", "CHECKPOINT_FORMAT", "CHECKPOINT_VERSION", "load_checkpoint", "save_checkpoint",
           "check_resumable", "rng_state", "set_rng_state", "cpu_state", "checkpoint_sidecar",
           "verify_checkpoint_file"]

CHECKPOINT_FORMAT = "xwvnet-simclr-checkpoint"
#: the ``format`` record of ``checkpoint.json``, the sidecar holding a checkpoint's SHA-256.
CHECKPOINT_SIDECAR_FORMAT = "xwvnet-simclr-checkpoint-sidecar"
#: 2: real scheduler state and every RNG (1: warm-up/cosine parameters and torch's RNGs only; still read).
CHECKPOINT_VERSION = 2
READABLE_VERSIONS = (1, 2)
_REQUIRED = {"step", "config", "backbone", "head", "optimizer", "data"}
#: precision names written by xwvnet before the one vocabulary; a checkpoint that has them still resumes.
OLD_PRECISIONS = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


class CheckpointError(ModelError, ValueError):
    """A checkpoint that cannot be used: unreadable, not ours, or from a different run configuration."""


def cpu_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """A detached CPU copy of a module's state dict (so that the saved file does not depend on the device).

    Parameters
    ----------
    module : torch.nn.Module
        The module.

    Returns
    -------
    dict of str to torch.Tensor
    """
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}


# --- random number generators ----------------------------------------------------------------------------------------
def rng_state() -> dict:
    """The state of every global random number generator of this process, in a form that loads without pickle.

    Returns
    -------
    dict
        ``"python"`` (``random``), ``"numpy"`` (numpy's legacy global generator), ``"torch"`` (torch's CPU
        generator) and, when CUDA is available, ``"cuda"`` (one state per visible device).

    Examples
    --------
    >>> state = rng_state()
    >>> a = torch.rand(1)
    >>> set_rng_state(state)
    >>> bool(torch.equal(a, torch.rand(1)))
    True
    """
    version, internal, gauss = random.getstate()
    np_state = np.random.get_state(legacy=False)
    out = {
        "python": {"version": int(version), "internal": torch.tensor(internal, dtype=torch.int64),
                   "gauss_next": gauss},
        "numpy": {"bit_generator": str(np_state["bit_generator"]),
                  "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
                  "pos": int(np_state["state"]["pos"]), "has_gauss": int(np_state["has_gauss"]),
                  "gauss": float(np_state["gauss"])},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def set_rng_state(state: dict) -> None:
    """Restore the generators saved by :func:`rng_state` (those it holds; a version-1 checkpoint has torch's only).

    Parameters
    ----------
    state : dict
        As returned by :func:`rng_state`.

    Returns
    -------
    None

    Warns
    -----
    UserWarning
        If the checkpoint saved CUDA generator states and this process sees a different number of devices (the
        common ones are restored).
    """
    if "python" in state:
        p = state["python"]
        random.setstate((int(p["version"]), tuple(int(v) for v in p["internal"].tolist()), p["gauss_next"]))
    if "numpy" in state:
        n = state["numpy"]
        np.random.set_state({"bit_generator": n["bit_generator"],
                             "state": {"key": n["key"].numpy().astype(np.uint32), "pos": int(n["pos"])},
                             "has_gauss": int(n["has_gauss"]), "gauss": float(n["gauss"])})
    if "torch" in state:
        torch.set_rng_state(state["torch"])
    saved_cuda = state.get("cuda") or []
    if saved_cuda and torch.cuda.is_available():
        here = torch.cuda.device_count()
        if here != len(saved_cuda):
            warn(f"the checkpoint holds the RNG states of {len(saved_cuda)} CUDA device(s), this process sees "
                 f"{here}; the first {min(here, len(saved_cuda))} are restored.")
        for device, s in enumerate(saved_cuda[:here]):
            torch.cuda.set_rng_state(s, device)


# --- files -----------------------------------------------------------------------------------------------------------
def save_checkpoint(
    path: Path,
    *,
    step: int,
    config: dict,
    data: dict,
    backbone: nn.Module,
    head: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler | None,
    rng: list[dict],
    schedule: dict | None = None,
) -> None:
    """Write a checkpoint atomically, with its SHA-256 in the sidecar ``checkpoint.json``.

    The checkpoint goes to a temporary file; the sidecar (its hash, size and step, and the previous checkpoint's
    hash) is written next; the file is then renamed into place. A crash at any point leaves a checkpoint that
    :func:`load_checkpoint` accepts.

    Parameters
    ----------
    path : pathlib.Path
        Destination file (``checkpoint.pt`` in the run folder).
    step : int
        Steps done.
    config : dict
        The run configuration (JSON-serialisable); a resumed run must match it.
    data : dict
        Provenance of the training data, with the ``layout`` fingerprint checked on resume.
    backbone, head : torch.nn.Module
        The encoder and the projection head (unwrapped from DDP).
    optimizer : torch.optim.Optimizer
        The optimizer.
    scheduler : torch.optim.lr_scheduler.LRScheduler
        The learning-rate scheduler (its lambdas must be callable objects, so their parameters are saved too).
    scaler : torch.amp.GradScaler or None
        The float16 gradient scaler, when enabled.
    rng : list of dict
        :func:`rng_state` of each rank, in rank order.
    schedule : dict, optional
        The record of a schedule fitted to a time budget (JSON-serialisable: the budget, the steps estimated and
        fitted, whether the fit was made yet), which a resumed run follows instead of fitting another.

    Returns
    -------
    None
    """
    path = local_path(path, "a checkpoint")
    with replacing(path) as tmp:
        _write_checkpoint(path, tmp, step, {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "step": int(step),
        "config": json.dumps(config),
        "data": json.dumps(data),
        "backbone": cpu_state(backbone),
        "head": cpu_state(head),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None and scaler.is_enabled() else None,
        "rng": rng,
        "schedule": json.dumps(schedule) if schedule else None,
    })


def _write_checkpoint(path: Path, tmp: Path, step: int, content: dict) -> None:
    """The checkpoint into ``tmp``, then the sidecar of ``path`` (hash of ``tmp``, and the previous one's)."""
    torch.save(content, tmp)
    previous = None
    if path.is_file():
        with contextlib.suppress(CheckpointError):  # a sidecar we cannot read describes nothing worth keeping
            old = _read_sidecar(path)
            if old is not None and old.get("sha256"):
                previous = {"sha256": old["sha256"], "step": old.get("step")}
    write_sidecar(path, {
        "format": CHECKPOINT_SIDECAR_FORMAT,
        "file": path.name,
        "sha256": pooch.file_hash(os.fspath(tmp), alg="sha256"),
        "size": tmp.stat().st_size,
        "step": int(step),
        "checkpoint_version": CHECKPOINT_VERSION,
        "previous": previous,
    })


def checkpoint_sidecar(path: str | os.PathLike) -> Path:
    """The JSON sidecar of a checkpoint file: ``checkpoint.pt`` -> ``checkpoint.json``.

    Parameters
    ----------
    path : str or os.PathLike
        The checkpoint file.

    Returns
    -------
    pathlib.Path
        The sidecar's path (it may not exist).
    """
    return sidecar_path(path)


def _read_sidecar(path: Path) -> dict | None:
    """The checkpoint's sidecar as a dict, ``None`` when absent; CheckpointError when unreadable or not ours."""
    try:
        meta = read_sidecar(path)
    except ValueError as err:
        raise CheckpointError(f"{err} It is the checkpoint's hash record: restore it, or delete it to load "
                              f"{path.name} unchecked.") from err
    if meta is not None and meta.get("format") != CHECKPOINT_SIDECAR_FORMAT:
        raise CheckpointError(f"{checkpoint_sidecar(path)} is not the sidecar of a training checkpoint (format "
                              f"{meta.get('format')!r}, expected {CHECKPOINT_SIDECAR_FORMAT!r}); move it away.")
    return meta


def verify_checkpoint_file(path: str | os.PathLike) -> str | None:
    """Check a checkpoint file against the SHA-256 its sidecar records (nothing to check without a sidecar).

    Parameters
    ----------
    path : str or os.PathLike
        The checkpoint file.

    Returns
    -------
    str or None
        The file's SHA-256 (hex) when a sidecar was there to check it, else ``None``.

    Raises
    ------
    CheckpointError
        If the file's hash is neither the one the sidecar records nor that of the checkpoint it replaced (a run
        killed between writing the sidecar and renaming the checkpoint), or the sidecar is unreadable.

    Examples
    --------
    >>> verify_checkpoint_file("run/checkpoint.pt")  # doctest: +SKIP
    '3b0c...'
    """
    path = Path(path)
    meta = _read_sidecar(path)
    if meta is None:
        return None
    found = pooch.file_hash(os.fspath(path), alg="sha256")
    expected = str(meta.get("sha256", "")).lower()
    previous = str((meta.get("previous") or {}).get("sha256", "")).lower()
    if found not in (expected, previous):
        raise CheckpointError(
            f"{path} does not match the SHA-256 recorded in {checkpoint_sidecar(path).name}: expected {expected}, "
            f"found {found}. The checkpoint is damaged or was changed after it was written: restore it, start the "
            f"run again (train(..., overwrite=True)), or delete {checkpoint_sidecar(path).name} only if you trust "
            "the file."
        )
    return found


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a training checkpoint safely (``weights_only=True``: no code runs while loading), checked.

    When the sidecar ``checkpoint.json`` is there, the file must match the SHA-256 it records.

    Parameters
    ----------
    path : str or os.PathLike
        The checkpoint file.

    Returns
    -------
    dict
        Its contents: ``step``, ``config`` and ``data`` (JSON strings), ``backbone``, ``head``, ``optimizer``,
        ``scheduler``, ``scaler``, ``rng`` (a list, one entry per rank), ``version`` and, for a run fitted to a time
        budget, ``schedule`` (a JSON string; ``None`` or absent otherwise).

    Raises
    ------
    CheckpointError
        If the file is missing, unreadable, not an xwvnet training checkpoint, of a version this xwvnet does not
        read, or incomplete; if it does not match the SHA-256 of its sidecar ``checkpoint.json`` (when there is
        one); or if its weights or optimizer state hold NaN or infinite values.

    Examples
    --------
    >>> load_checkpoint("run/checkpoint.pt")["step"]  # doctest: +SKIP
    500
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist; expected a checkpoint.pt written by xwvnet.train.")
    verify_checkpoint_file(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as err:
        raise CheckpointError(
            f"{path} is not a readable xwvnet training checkpoint ({type(err).__name__}: {str(err)[:200]}). "
            "It may be truncated or not a checkpoint; delete it to start again, or pass resume=False."
        ) from err
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not an xwvnet training checkpoint (expected format {CHECKPOINT_FORMAT!r}).")
    if ckpt.get("version") not in READABLE_VERSIONS:
        raise CheckpointError(f"{path} has checkpoint version {ckpt.get('version')}, this xwvnet reads versions "
                              f"{list(READABLE_VERSIONS)}; resume it with the xwvnet that wrote it, or start again.")
    missing = _REQUIRED | ({"scheduler", "rng"} if ckpt["version"] >= 2 else set())
    missing -= set(ckpt)
    if missing:
        raise CheckpointError(f"{path} lacks {sorted(missing)}; it is incomplete. Delete it to start again.")
    bad = nonfinite_tensors({"backbone": ckpt["backbone"], "head": ckpt["head"],
                             "optimizer": (ckpt["optimizer"] or {}).get("state", {})})
    if bad:
        shown = ", ".join(f"{k} ({n} values)" for k, n in list(bad.items())[:5])
        raise CheckpointError(f"{path} holds NaN or infinite values in {len(bad)} tensors ({shown}"
                              f"{', ...' if len(bad) > 5 else ''}); the run diverged or the file is damaged. Resume "
                              "from an earlier copy, or start again with a lower lr (train(..., overwrite=True)).")
    if isinstance(ckpt.get("rng"), dict):  # version 1: rank 0's torch generators only
        ckpt["rng"] = [ckpt["rng"]]
    return ckpt


def check_resumable(ckpt: dict, config: dict, data: dict, path: Path, free: set[str] | frozenset[str]) -> None:
    """Refuse to resume a run whose configuration or data differ from the checkpoint's.

    Parameters
    ----------
    ckpt : dict
        As returned by :func:`load_checkpoint`.
    config : dict
        The configuration of the run about to resume.
    data : dict
        The provenance of its training data (its ``layout`` fingerprint must match).
    path : pathlib.Path
        The checkpoint file, for the message.
    free : set of str
        Configuration keys allowed to differ (e.g. the number of loader workers).

    Returns
    -------
    None

    Raises
    ------
    CheckpointError
        Naming each setting that changed, or saying that the data changed.
    """
    saved = json.loads(ckpt["config"])
    if saved.get("precision") in OLD_PRECISIONS:
        saved["precision"] = OLD_PRECISIONS[saved["precision"]]
    diff = {k: (saved.get(k), v) for k, v in config.items() if k not in free and saved.get(k) != v}
    if diff:
        detail = ", ".join(f"{k}: checkpoint {a!r} vs now {b!r}" for k, (a, b) in diff.items())
        raise CheckpointError(f"cannot resume from {path}: the run configuration changed ({detail}). Use the same "
                              "settings, or another out_dir / resume=False to start a new run.")
    saved_data = json.loads(ckpt["data"])
    if saved_data.get("layout") != data.get("layout"):
        raise CheckpointError(f"cannot resume from {path}: the training data changed (it had "
                              f"{saved_data.get('imagettes')} imagettes, now {data.get('imagettes')}, or other "
                              "chunks). Resume on the same data, or start a new run.")
