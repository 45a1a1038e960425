"""SimCLR training of imagette encoders: configuration, learning-rate schedule, the loop, and its outputs.

WV-Net was trained with SimCLR (Chen et al. 2020) on ~10 million imagettes; its training code was not published, so
this is ours. One entry point, :func:`train`, runs on a laptop CPU, one GPU, or many GPUs and nodes under
``torchrun`` (torch's own DDP: data sharded by rank, negatives gathered across ranks, global batch norm on GPUs).
The loss lives in :mod:`~xwvnet.training.loss`, the model in :mod:`~xwvnet.training.head`, checkpoints in
:mod:`~xwvnet.training.checkpoint`.

Reproducibility: the seed fixes the initialisation (python ``random``, numpy and torch are seeded), the data order
(a pure function of seed and step, see :mod:`xwvnet.training.loader`) and the augmentations (the generator of each
step is made from ``(seed, rank, step)``, so the loop keeps none across steps). A checkpoint holds the optimizer,
the scheduler, the float16 gradient scaler and every global RNG of every rank, so a resumed run repeats exactly the
steps an uninterrupted run would have made.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import difflib
import json
import math
import os
import random
import time
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import xarray as xr
from torch import nn

from .. import schema as S
from .._runtime import BATCH_SIZE, PRECISIONS, check_precision, cores, cpu_has_bf16, resolve_device, torch_dtype
from ..errors import warn
from ..models import resnet
from ..models.transforms import TRANSFORM_BORDERS
from .augment import AugmentConfig, view_pair
from .batchnorm import calibration_index, reestimate_batch_norm
from .checkpoint import (
    CHECKPOINT_FORMAT,
    OLD_PRECISIONS,
    check_resumable,
    cpu_state,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from .head import ProjectionHead, SimCLR, param_groups
from .loader import batches, chunk_starts, open_training_data, read_imagettes
from .loss import simclr_loss

__all__ = ["TrainConfig", "WarmupCosine", "train"]

ENCODER_FILE = "encoder.pt"
CHECKPOINT_FILE = "checkpoint.pt"
LOG_FILE = "loss.csv"
META_FILE = "encoder.json"
CHECKPOINT_META_FILE = "checkpoint.json"
#: what a run leaves in its folder; a new run refuses a folder holding any of them unless resume= or overwrite=.
OUTPUT_FILES = (ENCODER_FILE, META_FILE, CHECKPOINT_FILE, CHECKPOINT_META_FILE, LOG_FILE)
#: the log of a run replacing an earlier one, renamed to ``loss.csv`` at its first checkpoint.
NEW_LOG_FILE = LOG_FILE + ".new"
#: the smallest training view: ResNets divide the side by 32 before pooling.
MIN_IMAGE_SIZE = 32
TRAIN_PRECISIONS = ("auto", *PRECISIONS)
#: the embedding transform a freshly trained encoder records: the published WV-Net one, so that trained and WV-Net
#: encoders embed alike (measured: the trained encoder's probes are the same with ``"wvnet-reflect"``; docs/training.md)
FRESH_TRANSFORM = "wvnet"


# --- the schedule ----------------------------------------------------------------------------------------------------
class WarmupCosine:
    """Learning-rate factor: linear warm-up over ``warmup_steps``, then cosine decay to 0 at ``steps``.

    A callable object rather than a function, so that ``LambdaLR.state_dict()`` saves its parameters with the
    scheduler's state (torch saves the ``__dict__`` of callable objects, not of functions).

    Parameters
    ----------
    steps : int
        Length of the whole run, in optimizer steps.
    warmup_steps : int
        Steps of linear warm-up (0: none).

    Examples
    --------
    >>> f = WarmupCosine(steps=100, warmup_steps=10)
    >>> f(0), f(9), f(100)
    (0.1, 1.0, 0.0)
    """

    def __init__(self, steps: int, warmup_steps: int) -> None:
        self.steps, self.warmup_steps = int(steps), int(warmup_steps)

    def __call__(self, step: int) -> float:
        """The factor of the base learning rate at ``step`` (0-based).

        Parameters
        ----------
        step : int
            Optimizer steps done before this one.

        Returns
        -------
        float
            In [0, 1].
        """
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        progress = (step - self.warmup_steps) / max(1, self.steps - self.warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


# --- configuration ---------------------------------------------------------------------------------------------------
@dataclass
class TrainConfig:
    """Every setting of a training run, with its default: the one place the defaults of :func:`train` live.

    :func:`train` takes a ``TrainConfig`` (``config=``) and/or any of its fields as keywords (``arch="resnet50"``);
    fields left at ``None`` are resolved when the run starts (they depend on ``init``, the device or the number of
    ranks) and the resolved configuration is what the checkpoint and ``encoder.json`` (key ``config``) hold. A
    resumed run must match it, except the fields in ``FREE``.

    Parameters
    ----------
    arch : str, optional
        ``"resnet18"``, ``"resnet34"`` or ``"resnet50"``; default ``"resnet18"``, or the architecture of ``init``.
    init : str, optional
        ``None`` (random initialisation, seeded), a named encoder such as ``"wvnet-resnet50"``, or a weights or
        checkpoint file to continue from.
    image_size : int, default 64
        Side of the square views, in pixels. With the default ``crop="field"`` augmentation a view is a window of
        the 224 x 224 field that embedding feeds the encoder (the 450 x 450 field resized to 224), at the same
        pixel scale, so ``image_size`` is at most 224.
    batch_size : int, default 64
        The global batch (split over DDP ranks; must be divisible by their number). 64 fits a CPU; on GPUs use
        256 or more (see ``docs/gpus.md``).
    steps : int, default 300
        Optimizer steps of the whole run; the schedule decays to 0 at this step. The default fits a short CPU run
        (about 10 minutes of a ResNet-18 at batch 64 on two cores), whose learning rate is then annealed when it
        ends; a GPU run asks for thousands (``xwvnet.training.recipe``).
    lr : float, optional
        Peak learning rate of AdamW; default 1e-3 for a fresh encoder and 1e-4 when continuing from ``init``
        (a tenth: a short continued run adapts the weights to the new imagettes without erasing what they know).
    weight_decay : float, default 1e-4
        AdamW decay of weight matrices and kernels (none on biases and normalisation parameters).
    warmup_steps : int, optional
        Steps of linear warm-up; default ``max(1, steps // 20)``.
    temperature : float, default 0.1
        Temperature of the NT-Xent loss.
    projection_dim : int, default 128
        Width of the projection head's output.
    grad_clip : float or None, default 1.0
        Gradient norm clipping threshold; ``None`` or 0 to not clip.
    seed : int, default 0
        Fixes the initialisation, the data order and the augmentations.
    shuffle_size : int, optional
        Least number of imagettes shuffled together (default four local batches); see
        :func:`xwvnet.training.loader.batches`.
    precision : str, default "auto"
        ``"float32"``, ``"bfloat16"`` or ``"float16"`` (autocast; float16 with gradient scaling), or ``"auto"``:
        bfloat16 under CUDA, float32 on the CPU. The same names as :func:`xwvnet.embed`.
    var : str, optional
        The image variable; default ``quicklook``, else ``sigma0`` (stretched as embedding does).
    augment : dict or AugmentConfig, optional
        Augmentation parameters (:class:`~xwvnet.training.augment.AugmentConfig`) other than the view's ``size``,
        ``flip`` and ``rotate90``, which are ``image_size``, ``flip`` and ``rotate90`` here. The default views keep
        the pixel scale of the embedding and the radiometry (no blur, no contrast jitter); ``crop="resized"`` gives
        the photographic random resized crop instead, whose scale the embedding transform does not match.
    flip : bool, default True
        Random horizontal and vertical flips.
    rotate90 : bool, default True
        Random rotations by multiples of 90 degrees (turn both off to keep the wave direction).
    transform : str, optional
        The embedding transform the encoder is trained for and records in ``encoder.json``: ``"wvnet"`` (the
        published one) for a fresh encoder, the transform of ``init`` when continuing; ``"wvnet-reflect"`` fills
        the field's border with the imagette mirrored instead of zeros. The training views are windows of this
        transform's field.
    bn_imagettes : int, default 512
        Imagettes of the data (whole chunks, seeded) whose embedding inputs (this ``transform``) re-estimate the
        batch-norm statistics of the saved encoder, so that it normalises what it embeds with statistics of such
        inputs, not of the training views (:mod:`xwvnet.training.batchnorm`); the checkpoint keeps the training
        statistics. 0 saves those of the views. Free on resume.
    world_size : int, default 1
        Number of DDP ranks (set by the run).
    checkpoint_every : int, default 500
        Steps between checkpoints (one is also written at the end, and when stopped early). Free on resume.
    num_workers : int, optional
        Data loader workers per rank; default 0 on the CPU, up to 8 on a GPU. Free on resume.
    device : str, default "auto"
        ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``; under ``torchrun`` a bare
        ``"cuda"``/``"auto"`` means the GPU of the local rank. Free on resume.
    compile : bool, default False
        Run the model through ``torch.compile`` (worth it on GPUs for long runs; see ``docs/gpus.md``). Free on
        resume.

    Examples
    --------
    >>> TrainConfig(arch="resnet50", image_size=224).batch_size
    64
    """

    arch: str | None = None
    init: str | None = None
    image_size: int = 64
    batch_size: int = 64
    steps: int = 300
    lr: float | None = None
    weight_decay: float = 1e-4
    warmup_steps: int | None = None
    temperature: float = 0.1
    projection_dim: int = 128
    grad_clip: float | None = 1.0
    seed: int = 0
    shuffle_size: int | None = None
    precision: str = "auto"
    var: str | None = None
    augment: dict | AugmentConfig = field(default_factory=dict)
    flip: bool = True
    rotate90: bool = True
    transform: str | None = None
    bn_imagettes: int = 512
    world_size: int = 1
    # free to change between an interrupted run and its resumption
    checkpoint_every: int = 500
    num_workers: int | None = None
    device: str = "auto"
    compile: bool = False


SETTINGS = tuple(f.name for f in fields(TrainConfig) if f.name != "world_size")
FREE = frozenset({"checkpoint_every", "num_workers", "device", "compile", "bn_imagettes"})


def _training_precision(precision: str, dev: torch.device) -> str:
    """The precision name of a run: ``auto`` resolved, the old spellings refused with the new ones named."""
    if precision in OLD_PRECISIONS:
        raise ValueError(f"precision={precision!r} is the old spelling: use {OLD_PRECISIONS[precision]!r} (one of "
                         f"{list(TRAIN_PRECISIONS)}; the same names as embedding).")
    if precision == "auto":
        return "bfloat16" if dev.type == "cuda" else "float32"
    try:
        return check_precision(precision)
    except ValueError:
        raise ValueError(f"precision must be one of {list(TRAIN_PRECISIONS)}, found {precision!r}.") from None


def _seed_everything(seed: int) -> None:
    """Seed python ``random``, numpy's global generator and torch (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# --- arguments and the run folder ------------------------------------------------------------------------------------
def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_real(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)) and (
        math.isfinite(float(value)))


def _check_arguments(**kw: object) -> None:
    """Refuse bad training arguments before any work, each with its name, its value and the allowed range."""
    def need(ok: bool, name: str, allowed: str, why: str = "") -> None:
        if not ok:
            raise ValueError(f"{name}={kw[name]!r} is not allowed: {name} must be {allowed}{why}.")

    ints = {"image_size": (MIN_IMAGE_SIZE, f"an integer >= {MIN_IMAGE_SIZE}",
                           " (the ResNet divides the view's side by 32 before pooling)"),
            "batch_size": (2, "an integer >= 2", " (SimCLR contrasts each pair with the other pairs of the batch)"),
            "steps": (1, "an integer >= 1", ""), "projection_dim": (1, "an integer >= 1", ""),
            "checkpoint_every": (1, "an integer >= 1", ""), "seed": (0, "an integer >= 0", ""),
            "bn_imagettes": (0, "an integer >= 0", " (0 keeps the batch-norm statistics of the training views)")}
    for name, (low, allowed, why) in ints.items():
        need(_is_int(kw[name]) and kw[name] >= low, name, allowed, why)
    for name, low in (("num_workers", 0), ("shuffle_size", 1), ("stop_at_step", 1)):
        need(kw[name] is None or (_is_int(kw[name]) and kw[name] >= low), name, f"None or an integer >= {low}")
    need(kw["warmup_steps"] is None or (_is_int(kw["warmup_steps"]) and 0 <= kw["warmup_steps"] <= kw["steps"]),
         "warmup_steps", f"None or an integer from 0 to steps={kw['steps']}")
    need(_is_real(kw["lr"]) and kw["lr"] > 0, "lr", "a finite number > 0")
    need(_is_real(kw["temperature"]) and kw["temperature"] > 0, "temperature", "a finite number > 0")
    need(_is_real(kw["weight_decay"]) and kw["weight_decay"] >= 0, "weight_decay", "a finite number >= 0")
    need(kw["grad_clip"] is None or (_is_real(kw["grad_clip"]) and kw["grad_clip"] >= 0), "grad_clip",
         "None, 0 (no clipping) or a finite number > 0")
    need(kw["max_seconds"] is None or (_is_real(kw["max_seconds"]) and kw["max_seconds"] > 0), "max_seconds",
         "None or a finite number of seconds > 0")
    for name in ("resume", "overwrite", "flip", "rotate90", "progress", "compile"):
        need(isinstance(kw[name], (bool, np.bool_)), name, "True or False")
    if kw["resume"] and kw["overwrite"]:
        raise ValueError("resume=True and overwrite=True contradict each other: resume continues the run in out, "
                         "overwrite replaces it with a new one. Pass one of them.")


def _outputs(out_dir: Path) -> list[str]:
    """The output files of an earlier run present in ``out_dir``."""
    return [name for name in OUTPUT_FILES if (out_dir / name).exists()]


def _check_run_folder(out_dir: Path, resume: bool, overwrite: bool) -> bool:
    """Refuse to replace an earlier run by accident; return whether this run replaces one (``overwrite=True``)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"out={os.fspath(out_dir)!r} is a file; give a folder for the run's outputs.")
    found = _outputs(out_dir)
    if not found or overwrite:
        return bool(found)
    if not resume:
        raise FileExistsError(
            f"{out_dir} already holds the outputs of a training run ({', '.join(found)}); a new run would replace "
            "them. Pass resume=True (--resume) to continue that run, overwrite=True (--overwrite) to replace it, or "
            "another out."
        )
    if not (out_dir / CHECKPOINT_FILE).is_file() and (out_dir / ENCODER_FILE).exists():
        raise FileExistsError(
            f"resume=True but {out_dir} has no {CHECKPOINT_FILE} to resume from, while it holds the {ENCODER_FILE} "
            "of an earlier run that a new run would replace. Pass overwrite=True (--overwrite) instead of resume to "
            "replace it, or another out."
        )
    return False


# --- pieces of the run -----------------------------------------------------------------------------------------------
def _initial_backbone(arch: str | None, init: str | os.PathLike | None) -> tuple[resnet.ResNet, str, str]:
    """The backbone to start from (random, seeded by the caller; a registry name; a weights or checkpoint file),
    its architecture, and the embedding transform a run from it is for."""
    if init is None:
        arch = arch or "resnet18"
        if arch not in resnet.ARCHITECTURES:
            raise ValueError(f"unknown arch {arch!r}; expected one of {sorted(resnet.ARCHITECTURES)}.")
        return resnet.ARCHITECTURES[arch](), arch, FRESH_TRANSFORM
    from ..models.weights import infer_arch, load_strict
    from ..models.zoo import load_encoder

    state, transform = None, "wvnet"
    if Path(init).is_file():
        is_checkpoint = False
        with contextlib.suppress(Exception):  # not one of our checkpoints: load_encoder reads it below
            candidate = torch.load(Path(init), map_location="cpu", weights_only=True)
            is_checkpoint = isinstance(candidate, dict) and candidate.get("format") == CHECKPOINT_FORMAT
        if is_checkpoint:  # read again, checked: its sidecar's hash, finite values, completeness
            checkpoint = load_checkpoint(init)
            state = checkpoint["backbone"]
            transform = (checkpoint.get("config") or {}).get("transform") or "wvnet"
    if state is not None:
        found, in_chans = infer_arch(state)
        backbone = load_strict(resnet.ARCHITECTURES[found](in_chans=in_chans), state, os.fspath(init))
    else:
        encoder = load_encoder(init)
        found, backbone = encoder.arch, copy.deepcopy(encoder.module)
        transform = encoder.transform if isinstance(encoder.transform, str) else "wvnet"
    if arch is not None and arch != found:
        raise ValueError(f"arch={arch!r} but the initial weights {init!r} are a {found}; leave arch unset or match.")
    if backbone.in_chans != 3:
        raise ValueError(f"training feeds 3-channel input; the initial weights {init!r} take {backbone.in_chans}.")
    return backbone.train(), found, transform


def _distributed(dev: torch.device) -> tuple[int, int, bool]:
    """(rank, world, created): joins the torchrun process group when WORLD_SIZE > 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, False
    created = False
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
        created = True
    return dist.get_rank(), dist.get_world_size(), created


def _provenance(ds: xr.Dataset, source: xr.Dataset | str | os.PathLike, var: str) -> dict:
    """Where the training imagettes came from, and a fingerprint of their layout (checked on resume)."""
    import hashlib

    n = ds.sizes[S.IMAGETTE]
    starts = chunk_starts(ds, var)
    ids = ds[S.IMAGETTE].values
    out = {
        "source": os.fspath(source) if isinstance(source, (str, os.PathLike)) else str(ds.encoding.get("source",
                                                                                                      "in-memory")),
        "imagettes": int(n),
        "variable": var,
        "image_shape": [int(ds.sizes[S.LINE]), int(ds.sizes[S.SAMPLE])],
        "first_id": str(ids[0]) if n else None,
        "last_id": str(ids[-1]) if n else None,
        "layout": hashlib.sha256(starts.tobytes() + str(ds[var].shape).encode()).hexdigest()[:16],
    }
    if n <= 2_000_000:  # ids of larger stores are too many to hash on every start
        out["ids_sha256"] = hashlib.sha256("\n".join(map(str, ids)).encode()).hexdigest()
    if S.TIME in ds.coords and n:
        times = ds[S.TIME].values
        out["time_range"] = [str(np.nanmin(times)), str(np.nanmax(times))]
    if S.MISSION in ds.coords and n <= 2_000_000:
        out["missions"] = sorted(map(str, np.unique(ds[S.MISSION].values.astype(str))))
    return out


def _step_generator(device: torch.device, seed: int, rank: int, step: int) -> torch.Generator:
    """The augmentation generator of one step: a pure function of (seed, rank, step), so nothing to checkpoint."""
    g = torch.Generator(device=device)
    g.manual_seed(int(np.random.SeedSequence([seed, rank, step]).generate_state(1, dtype=np.uint64)[0] >> 1))
    return g


def _optimization(model: nn.Module, config: TrainConfig, dev: torch.device, ckpt: dict | None) -> tuple[
        torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR, torch.amp.GradScaler]:
    """AdamW, its warm-up/cosine scheduler and the gradient scaler, restored from ``ckpt`` when resuming."""
    optimizer = torch.optim.AdamW(param_groups(model, config.weight_decay), lr=config.lr)
    schedule = WarmupCosine(config.steps, config.warmup_steps)
    scaler = torch.amp.GradScaler(dev.type, enabled=config.precision == "float16")  # float16 needs loss scaling
    if ckpt is None:
        return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule), scaler
    if ckpt["version"] >= 2:
        # scheduler first (it writes initial_lr into the groups), then the saved states over both
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
    else:  # version 1 saved no scheduler state: rebuild it at the saved step (the schedule is a function of it)
        optimizer.load_state_dict(ckpt["optimizer"])
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", config.lr)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule, last_epoch=int(ckpt["step"]) - 1)
    if ckpt.get("scaler") and scaler.is_enabled():
        scaler.load_state_dict(ckpt["scaler"])
    return optimizer, scheduler, scaler


def _gather_rng(world: int) -> list[dict]:
    """Every rank's :func:`rng_state`, in rank order (a collective: every rank calls it)."""
    mine = rng_state()
    if world <= 1:
        return [mine]
    everyone: list[dict | None] = [None] * world
    dist.all_gather_object(everyone, mine)
    return [s for s in everyone if s is not None]


def _truncate_log(path: Path, step: int) -> None:
    """Drop the log rows past ``step`` (written after the checkpoint a resumed run starts from)."""
    if not path.is_file():
        return
    with path.open() as f:
        rows = list(csv.reader(f))
    keep = [rows[0]] + [r for r in rows[1:] if r and int(r[0]) <= step]
    with path.open("w", newline="") as f:
        csv.writer(f).writerows(keep)


def _embedding_statistics(backbone: resnet.ResNet, config: TrainConfig, ds: xr.Dataset, dev: torch.device) -> tuple[
        resnet.ResNet, dict]:
    """A CPU copy of ``backbone`` with batch-norm statistics of embedding inputs (``config.bn_imagettes`` of ``ds``,
    through ``config.transform``), and what its ``encoder.json`` says of them."""
    from ..models.transforms import get_transform

    with torch.random.fork_rng(devices=[]):  # building a ResNet draws its initial weights: the run's RNG stays
        module = resnet.ARCHITECTURES[config.arch](in_chans=int(backbone.in_chans))  # plain batch norms, not synced
    module.load_state_dict(cpu_state(backbone))
    if not config.bn_imagettes:
        return module.eval(), {"statistics": "training views", "imagettes": 0}
    index = calibration_index(chunk_starts(ds, config.var), config.bn_imagettes, config.seed)
    module.to(dev)
    transform = get_transform(config.transform)

    def inputs() -> Iterator[torch.Tensor]:
        for i in range(0, len(index), BATCH_SIZE):
            images, lines, samples = read_imagettes(ds, config.var, index[i:i + BATCH_SIZE])
            yield transform(images, lines, samples, device=dev, channels=int(backbone.in_chans))

    reestimate_batch_norm(module, inputs())
    return module.cpu(), {"statistics": f"embedding inputs (transform={config.transform!r})",
                          "imagettes": int(len(index))}


def _write_outputs(out_dir: Path, backbone: resnet.ResNet, config: TrainConfig, data: dict, step: int,
                   loss: float | None, stopped: str, ds: xr.Dataset, dev: torch.device) -> Path:
    """``encoder.pt`` and its ``encoder.json``, written by :meth:`Encoder.save` (the one home of that sidecar), with
    batch-norm statistics of embedding inputs (the checkpoint keeps those of training, to resume from)."""
    from .._version import __version__
    from ..models.encoder import Encoder

    field_views = AugmentConfig(**config.augment).crop == "field"
    module, batch_norm = _embedding_statistics(backbone, config, ds, dev)
    run = {
        "num_features": int(backbone.num_features),
        "trained_image_size": config.image_size,
        "trained_view": (f"windows of the embedding field (same pixel scale as transform={config.transform!r})"
                         if field_views else
                         f"random resized crops (pixel scale differs from transform={config.transform!r})"),
        "method": "SimCLR (xwvnet.train)",
        "steps_done": step,
        "stopped": stopped,
        "final_loss": loss,
        "batch_norm": batch_norm,
        "provenance": {"method": "SimCLR", "by": "xwvnet.train", "init": config.init, "source": data.get("source"),
                       "imagettes": data.get("imagettes"), "steps_done": step, "stopped": stopped},
        "config": asdict(config),
        "data": data,
        "versions": {"xwvnet": __version__, "torch": torch.__version__},
    }
    encoder = Encoder(out_dir.resolve().name, config.arch, transform=config.transform, module=module,
                      in_chans=int(backbone.in_chans), metadata=run)
    path = out_dir / ENCODER_FILE
    with torch.random.fork_rng(devices=[]):  # reading it back builds a ResNet: the run's RNG stays as it was
        encoder.save(path)
    return path


def train(
    data: xr.Dataset | str | os.PathLike,
    out: str | os.PathLike,
    config: TrainConfig | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
    max_seconds: float | None = None,
    stop_at_step: int | None = None,
    progress: bool = True,
    storage_options: dict[str, Any] | None = None,
    **settings: Any,
) -> Path:
    """Train (or continue training) an encoder with SimCLR on imagettes; return the path of its weights.

    What the run *is* (architecture, views, loss, schedule, seed...) is a :class:`TrainConfig`, given whole
    (``config=``) or field by field as keywords (``train(ds, "runs/r18", arch="resnet18", steps=5000)``), where
    keywords override ``config``; its defaults live there only. What this call *does* with the run (resume it,
    replace it, stop it early, show progress) are the other keywords. Under ``torchrun`` each rank runs this same
    call (data sharded by rank, negatives gathered across ranks).

    Parameters
    ----------
    data : xarray.Dataset or str or os.PathLike
        An imagette Dataset, or the path of a Zarr imagette store (streamed chunk by chunk, never loaded whole).
    out : str or os.PathLike
        Folder of the run; created if needed. Its name becomes the encoder's ``name``.
    config : TrainConfig, optional
        The run's settings; default ``TrainConfig()``.
    resume : bool, default False
        Continue from ``out/checkpoint.pt`` if it exists: model, optimizer, scheduler, gradient scaler and every
        RNG are restored, so the run continues exactly as if it had not stopped. Without a checkpoint a new run
        starts, unless ``out`` holds an ``encoder.pt`` (that needs ``overwrite=True``).
    overwrite : bool, default False
        Replace the run already in ``out``. Without ``resume`` or ``overwrite``, a folder holding a run's
        outputs (``encoder.pt``, ``encoder.json``, ``checkpoint.pt``, ``checkpoint.json``, ``loss.csv``) is refused.
        The old outputs stay until the new run writes its first checkpoint (its log goes to ``loss.csv.new`` until
        then), so a new run that fails early leaves the old one whole.
    max_seconds : float, optional
        Stop after this long, with a checkpoint (``resume=True`` continues it; the schedule still follows
        ``steps``).
    stop_at_step : int, optional
        Stop after this step, with a checkpoint (as ``max_seconds``).
    progress : bool, default True
        Show a tqdm progress bar (rank 0).
    storage_options : dict, optional
        Credentials and endpoint when ``data`` names a store in a bucket (as :func:`xwvnet.open_store` takes
        them); default the standard environment.
    **settings
        Fields of :class:`TrainConfig` (``arch``, ``init``, ``image_size``, ``batch_size``, ``steps``, ``lr``,
        ``weight_decay``, ``warmup_steps``, ``temperature``, ``projection_dim``, ``grad_clip``, ``seed``,
        ``shuffle_size``, ``precision``, ``var``, ``augment``, ``flip``, ``rotate90``, ``transform``,
        ``bn_imagettes``, ``checkpoint_every``, ``num_workers``, ``device``, ``compile``), described there.

    Returns
    -------
    pathlib.Path
        ``out/encoder.pt``. ``out`` also holds ``encoder.json`` (format record, name, arch, in_chans,
        transform, embedding size, configuration, data provenance, versions: what :func:`xwvnet.load_encoder`
        reads back; with ``weights_sha256``, the SHA-256 of ``encoder.pt`` checked on every load), ``loss.csv``
        (loss, learning rate and throughput per step), ``checkpoint.pt`` and its ``checkpoint.json`` (SHA-256).

    Raises
    ------
    ValueError
        Before any work: for an argument out of its range (``image_size`` < 32, ``batch_size`` < 2, ``steps`` < 1,
        ``lr`` or ``temperature`` <= 0, ...: the message names the argument, its value and the allowed range),
        ``resume`` with ``overwrite``, an unknown ``arch``, ``precision`` (the old ``"fp32"``/``"bf16"``
        included) or ``device``, CUDA asked for without a GPU, a batch not divisible by the ranks, or fewer
        imagettes than one batch.
    FileExistsError
        If ``out`` holds the outputs of a run and neither ``resume`` nor ``overwrite`` is given.
    TypeError
        If ``data`` is neither a Dataset nor a path, or a keyword is not a field of :class:`TrainConfig` (the message
        suggests the nearest one).
    xwvnet.training.CheckpointError
        If ``resume=True`` and the checkpoint is unreadable, does not match the SHA-256 of its ``checkpoint.json``,
        holds NaN or infinite values, or is from another configuration or data.
    xwvnet.models.weights.WeightsIntegrityError
        If ``init`` names weights that fail their hash or hold NaN or infinite values.
    FloatingPointError
        If the loss becomes NaN or infinite.

    Examples
    --------
    >>> ds = xwvnet.synthetic.imagettes(64, size=(96, 96))  # doctest: +SKIP
    >>> weights = xwvnet.train(ds, "run", image_size=64, batch_size=32, steps=50)  # doctest: +SKIP
    >>> xwvnet.embed(ds, encoder=weights)  # doctest: +SKIP
    """
    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown:
        hints = "; ".join(f"did you mean {close[0]!r}?" for name in unknown
                          if (close := difflib.get_close_matches(name, SETTINGS, n=1)))
        raise TypeError(f"train() got unknown settings {unknown}{' (' + hints + ')' if hints else ''}; the settings "
                        f"are the fields of TrainConfig: {list(SETTINGS)}.")
    if config is not None and not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, found {type(config).__name__}; pass settings as keywords, "
                        "or TrainConfig(**settings).")
    asked = replace(config or TrainConfig(), **settings)
    init = asked.init
    lr = (1e-3 if init is None else 1e-4) if asked.lr is None else asked.lr
    _check_arguments(image_size=asked.image_size, batch_size=asked.batch_size, steps=asked.steps, lr=lr,
                     weight_decay=asked.weight_decay, warmup_steps=asked.warmup_steps, temperature=asked.temperature,
                     projection_dim=asked.projection_dim, grad_clip=asked.grad_clip, seed=asked.seed, resume=resume,
                     overwrite=overwrite, checkpoint_every=asked.checkpoint_every, num_workers=asked.num_workers,
                     shuffle_size=asked.shuffle_size, flip=asked.flip, rotate90=asked.rotate90,
                     bn_imagettes=asked.bn_imagettes,
                     max_seconds=max_seconds, stop_at_step=stop_at_step, progress=progress, compile=asked.compile)
    if asked.transform is not None and asked.transform not in TRANSFORM_BORDERS:
        raise ValueError(f"transform={asked.transform!r} is not allowed: it must be one of "
                         f"{sorted(TRANSFORM_BORDERS)} (named transforms, so that encoder.json can record it).")
    out_dir = Path(out).expanduser()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(asked.device, local_rank)
    precision = _training_precision(asked.precision, dev)
    if precision == "bfloat16" and dev.type == "cpu" and not cpu_has_bf16():
        warn("precision='bfloat16' on a CPU without native bfloat16: it is emulated and slow; "
             "precision='float32' is faster here.")
    aug = _view_config(asked)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    rank, world, created_group = _distributed(dev)
    try:
        # every rank looks at out before rank 0 writes anything there, so all ranks decide alike
        replacing = _check_run_folder(out_dir, resume, overwrite)
        if world > 1:
            dist.barrier()
        if asked.batch_size % world:
            raise ValueError(f"batch_size={asked.batch_size} must be divisible by the number of ranks ({world}); use "
                             f"a multiple of {world}.")
        num_workers = asked.num_workers
        if num_workers is None:
            num_workers = min(8, max(0, cores() // world - 1)) if dev.type == "cuda" else 0

        ds, var = open_training_data(data, asked.var, storage_options=storage_options)
        if ds.sizes[S.IMAGETTE] < asked.batch_size:
            raise ValueError(f"batch_size={asked.batch_size} is more than the {ds.sizes[S.IMAGETTE]} imagettes of the "
                             "data; use a smaller batch_size or more imagettes.")
        provenance = _provenance(ds, data, var)
        _seed_everything(asked.seed)
        backbone, arch, init_transform = _initial_backbone(asked.arch, init)
        config = replace(
            asked, arch=arch, init=None if init is None else os.fspath(init), lr=lr,
            warmup_steps=max(1, asked.steps // 20) if asked.warmup_steps is None else asked.warmup_steps,
            world_size=world, precision=precision, var=var, augment=json.loads(json.dumps(aug.to_dict())),
            transform=asked.transform or init_transform, num_workers=num_workers, device=str(dev),
            compile=bool(asked.compile),
        )  # augment through JSON: tuples -> lists, as read back from a checkpoint
        model = SimCLR(backbone, ProjectionHead(backbone.num_features, out_features=config.projection_dim)).to(dev)
        ckpt_path = out_dir / CHECKPOINT_FILE
        ckpt = None
        if resume and ckpt_path.is_file():
            ckpt = load_checkpoint(ckpt_path)
            check_resumable(ckpt, asdict(config), provenance, ckpt_path, FREE)
            model.backbone.load_state_dict(ckpt["backbone"], strict=True)
            model.head.load_state_dict(ckpt["head"], strict=True)
        optimizer, scheduler, scaler = _optimization(model, config, dev, ckpt)
        step = int(ckpt["step"]) if ckpt else 0
        if ckpt:
            rngs = ckpt["rng"]
            set_rng_state(rngs[rank] if rank < len(rngs) else rngs[0])
        if dev.type == "cuda":
            model = model.to(memory_format=torch.channels_last)
        core = model
        if world > 1:
            if dev.type == "cuda":
                core = model = nn.SyncBatchNorm.convert_sync_batchnorm(model)  # global batch norm, as SimCLR has
            model = nn.parallel.DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)
        if config.compile:
            model = torch.compile(model)  # parameters are shared: checkpoints and weights come from ``core``
        log_path = out_dir / (NEW_LOG_FILE if replacing else LOG_FILE)
        if rank == 0:
            out_dir.mkdir(parents=True, exist_ok=True)
            if step == 0 and log_path.exists():
                log_path.unlink()
            _truncate_log(log_path, step)
        run = _Run(model=model, core=core, optimizer=optimizer, scheduler=scheduler, scaler=scaler, config=config,
                   aug=aug, border=TRANSFORM_BORDERS[config.transform], provenance=provenance, out_dir=out_dir,
                   dev=dev, rank=rank, world=world, log_path=log_path, replacing=replacing)
        return _loop(run, ds, step, max_seconds, stop_at_step, progress)
    finally:
        if created_group:
            dist.destroy_process_group()


def _view_config(config: TrainConfig) -> AugmentConfig:
    """The views' :class:`AugmentConfig`: ``config.augment`` with the view's size, flips and turns of ``config``."""
    given = config.augment.to_dict() if isinstance(config.augment, AugmentConfig) else dict(config.augment)
    top = {"size": config.image_size, "flip": config.flip, "rotate90": config.rotate90}
    names = {"size": "image_size", "flip": "flip", "rotate90": "rotate90"}
    # a dict asks for its keys; an AugmentConfig carries defaults, so it asks for the fields it moved from them
    asked = given if isinstance(config.augment, dict) else {
        k: v for k, v in given.items() if v != getattr(AugmentConfig(), k)}
    clash = [k for k in top if k in asked and asked[k] != top[k]]
    if clash:
        raise ValueError(f"augment={{{', '.join(f'{k!r}: {given[k]!r}' for k in clash)}}} contradicts "
                         f"{', '.join(f'{names[k]}={top[k]!r}' for k in clash)}; set the view's size, flips "
                         "and turns with image_size=, flip= and rotate90= only.")
    try:
        return AugmentConfig(**{**given, **top})
    except TypeError as err:
        raise ValueError(f"augment={given!r} is not allowed: {err}; its keys are the fields of "
                         "xwvnet.training.augment.AugmentConfig.") from None


@dataclass
class _Run:
    """What the loop works with (one place, instead of a dozen arguments)."""

    model: nn.Module
    core: SimCLR
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    config: TrainConfig
    aug: AugmentConfig
    border: str
    provenance: dict
    out_dir: Path
    dev: torch.device
    rank: int
    world: int
    log_path: Path
    replacing: bool = False


def _finish_replacing(run: _Run) -> None:
    """At the first checkpoint of a run that replaces another: its log becomes ``loss.csv``, the old encoder goes."""
    os.replace(run.log_path, run.out_dir / LOG_FILE)  # the open log follows the file on POSIX
    run.log_path = run.out_dir / LOG_FILE
    for name in (ENCODER_FILE, META_FILE):
        (run.out_dir / name).unlink(missing_ok=True)
    run.replacing = False


def _loop(run: _Run, ds: xr.Dataset, step: int, max_seconds: float | None, stop_at_step: int | None,
          progress: bool) -> Path:
    """The training steps from ``step`` on, with logging, stopping and checkpoints; returns the weights path."""
    config, dev, rank, world = run.config, run.dev, run.rank, run.world
    local = config.batch_size // world
    stream: Iterator = batches(ds, batch_size=local, seed=config.seed, rank=rank, world=world,
                               num_workers=config.num_workers, start_step=step, shuffle_size=config.shuffle_size,
                               var=config.var, pin_memory=dev.type == "cuda")
    autocast = (contextlib.nullcontext() if config.precision == "float32"
                else torch.autocast(dev.type, dtype=torch_dtype(config.precision)))
    bar = None
    if progress and rank == 0:
        from tqdm.auto import tqdm

        bar = tqdm(total=config.steps, initial=step, desc="SimCLR", unit="step")
    log = run.log_path.open("a", newline="") if rank == 0 else None
    writer = csv.writer(log) if log else None
    if writer and log.tell() == 0:
        writer.writerow(["step", "loss", "lr", "images_per_s"])
    start = last = time.perf_counter()
    loss_value: float | None = None
    stopped = "finished"
    run.model.train()
    try:
        while step < config.steps:
            batch = next(stream).to(dev, non_blocking=True)
            with torch.no_grad():
                v1, v2 = view_pair(batch.images, batch.valid_lines, batch.valid_samples, run.aug,
                                   _step_generator(dev, config.seed, rank, step), border=run.border)
            if dev.type == "cuda":
                v1, v2 = v1.contiguous(memory_format=torch.channels_last), v2.contiguous(
                    memory_format=torch.channels_last)
            lr = run.scheduler.get_last_lr()[0]
            with autocast:
                loss = simclr_loss(run.model, v1, v2, config.temperature, gather=world > 1)
            run.optimizer.zero_grad(set_to_none=True)
            run.scaler.scale(loss).backward()
            if config.grad_clip:
                run.scaler.unscale_(run.optimizer)
                torch.nn.utils.clip_grad_norm_(run.model.parameters(), config.grad_clip)
            run.scaler.step(run.optimizer)
            run.scaler.update()
            with warnings.catch_warnings():
                # float16: the scaler skips the optimizer step while it finds its scale; the schedule goes on
                warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step", category=UserWarning)
                run.scheduler.step()
            step += 1
            reported = loss.detach()
            if world > 1:
                dist.all_reduce(reported)
                reported /= world
            loss_value = float(reported)
            if not math.isfinite(loss_value):
                raise FloatingPointError(f"the loss became {loss_value} at step {step}; lower lr or use "
                                         "precision='float32'.")
            now = time.perf_counter()
            rate = config.batch_size / max(now - last, 1e-9)
            last = now
            if writer:
                writer.writerow([step, f"{loss_value:.6f}", f"{lr:.6g}", f"{rate:.1f}"])
                log.flush()
            if bar:
                bar.set_postfix(loss=f"{loss_value:.4f}", img_s=f"{rate:.0f}", refresh=False)
                bar.update(1)
            stop = (stop_at_step is not None and step >= stop_at_step) or (
                max_seconds is not None and now - start >= max_seconds)
            if world > 1 and max_seconds is not None:  # ranks must agree on when to stop
                flag = torch.tensor(float(stop), device=dev)
                dist.all_reduce(flag, op=dist.ReduceOp.MAX)
                stop = bool(flag.item())
            if step < config.steps and stop:
                stopped = "stop_at_step" if stop_at_step is not None and step >= stop_at_step else "max_seconds"
            if step == config.steps or stopped != "finished" or step % config.checkpoint_every == 0:
                rngs = _gather_rng(world)  # every rank takes part; rank 0 writes
                if rank == 0:
                    save_checkpoint(run.out_dir / CHECKPOINT_FILE, step=step, config=asdict(config),
                                    data=run.provenance, backbone=run.core.backbone, head=run.core.head,
                                    optimizer=run.optimizer, scheduler=run.scheduler, scaler=run.scaler, rng=rngs)
                    if run.replacing:
                        _finish_replacing(run)
            if stopped != "finished":
                break
    except BaseException:
        if run.replacing and log:  # failed before its first checkpoint: the run it was to replace stays whole
            log.close()
            run.log_path.unlink(missing_ok=True)
        raise
    finally:
        stream.close()
        if bar:
            bar.close()
        if log:
            log.close()
    path = run.out_dir / ENCODER_FILE
    if rank == 0:
        _write_outputs(run.out_dir, run.core.backbone, config, run.provenance, step, loss_value, stopped, ds, dev)
    if world > 1:
        dist.barrier()
    return path
