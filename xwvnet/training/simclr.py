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
steps an uninterrupted run would have made. Under a time budget (``max_seconds``) the schedule is fitted to the
budget from the pace of the first steps (and refitted if the pace drifts); the checkpoint records the fitted
schedule, which a resumed run follows.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import difflib
import inspect
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
from .._files import local_path
from .._runtime import (
    BATCH_SIZE,
    LOCAL_THREADS,
    PRECISIONS,
    cpu_has_bf16,
    run_context,
    torch_device,
    torch_dtype,
)
from ..errors import (
    InvalidArgumentError,
    InvalidTypeError,
    ModelMismatchError,
    OutputExistsError,
    OutputNotFolderError,
    TrainingDivergedError,
    warn,
)
from ..models import backbones, resnet
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
    scheduler's state (torch saves the ``__dict__`` of callable objects, not of functions). A run fitted to a time
    budget may :meth:`refit` its length while it runs: the cosine then goes on from where it is (``start``, at
    ``start_progress`` of the way down) to 0 at the new ``steps``, so the learning rate never jumps.

    Parameters
    ----------
    steps : int
        Length of the whole run, in optimizer steps.
    warmup_steps : int
        Steps of linear warm-up (0: none).
    start : int, default 0
        The step of the last :meth:`refit` (0: none).
    start_progress : float, default 0.0
        How far down the cosine the schedule was at ``start`` (0 at its top, 1 at its end).

    Examples
    --------
    >>> f = WarmupCosine(steps=100, warmup_steps=10)
    >>> f(0), f(9), f(100)
    (0.1, 1.0, 0.0)
    >>> f.refit(55, 200)  # half-way down at step 55, and the run now ends at step 200
    >>> f(55), f(200)
    (0.5, 0.0)
    """

    def __init__(self, steps: int, warmup_steps: int, start: int = 0, start_progress: float = 0.0) -> None:
        self.steps, self.warmup_steps = int(steps), int(warmup_steps)
        self.start, self.start_progress = int(start), float(start_progress)

    def progress(self, step: int) -> float:
        """How far down the cosine ``step`` is: 0 until the warm-up ends, 1 at ``steps`` and after.

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
            return 0.0
        if self.start > self.warmup_steps and step >= self.start:
            p0 = self.start_progress
            return min(1.0, p0 + (1 - p0) * (step - self.start) / max(1, self.steps - self.start))
        return min(1.0, (step - self.warmup_steps) / max(1, self.steps - self.warmup_steps))

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
        return 0.5 * (1 + math.cos(math.pi * self.progress(step)))

    def refit(self, step: int, steps: int) -> None:
        """End the schedule at ``steps`` instead, going on from ``step`` without a jump of the learning rate.

        Parameters
        ----------
        step : int
            The next step to take (the scheduler's ``last_epoch``).
        steps : int
            The new length of the run (more than ``step``).

        Returns
        -------
        None
        """
        if step > self.warmup_steps:
            self.start, self.start_progress = int(step), self.progress(step)
        self.steps = int(steps)


# --- configuration ---------------------------------------------------------------------------------------------------
#: the architecture of a fresh encoder (``arch=None`` without ``init``)
FRESH_ARCH = "resnet18"
#: the peak learning rate ``lr=None`` means for a fresh encoder ...
FRESH_LR = 1e-3
#: ... and when continuing from ``init``: a tenth, so that a short continued run adapts the weights to new imagettes
#: without erasing what they know
CONTINUE_LR = 1e-4
#: ``steps=None`` means this many optimizer steps without ``max_seconds`` (with it: as many as fit)
DEFAULT_STEPS = 300
#: ``warmup_steps=None`` means ``steps // WARMUP_DIVISOR`` (5% of the run), at least 1
WARMUP_DIVISOR = 20
#: under ``max_seconds``: the steps timed to fit the schedule to the budget, after the first step of the call (whose
#: one-off costs, first batch, allocations, compilation, are not timed)
TIMED_STEPS = 3
#: ... the pace is checked against the budget this many times over the run, and the schedule refitted when the
#: predicted end misses the budget by more than ``DRIFT`` of it
PACE_CHECKS = 20
DRIFT = 0.01
#: ... and a fitted run is stopped early (unannealed, with a checkpoint) only if it would overrun by more than this
OVERRUN = 0.04
#: ``num_workers=None`` means none on the CPU, and on a GPU up to this many loader workers per rank
MAX_LOADER_WORKERS = 8


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_real(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)) and (
        math.isfinite(float(value)))


@dataclass(frozen=True)
class _Allowed:
    """What a setting may be: the one rule its check and its message come from.

    ``kind`` is ``"int"``, ``"real"``, ``"bool"`` or ``"choice"``; numbers are at least ``low`` (more than it with
    ``above``) and at most the setting named ``up_to``; ``optional`` allows ``None`` (decided when the run starts);
    ``renamed`` maps old spellings to the new ones; ``text`` says in words what is allowed where the rule's own
    words would not; ``why`` is added to the message.
    """

    kind: str
    low: float | None = None
    above: bool = False
    up_to: str | None = None
    optional: bool = False
    choices: tuple = ()
    renamed: dict | None = None
    text: str | None = None
    why: str = ""

    def describe(self, values: dict[str, object]) -> str:
        """What is allowed, in words (``values``: the other settings, for ``up_to``)."""
        if self.text is not None:
            return self.text + self.why
        if self.kind == "bool":
            words = "True or False"
        elif self.kind == "choice":
            words = f"one of {list(self.choices)}"
        else:
            bounded = self.up_to is not None and values[self.up_to] is not None
            bound = (f" from {self.low:g} to {self.up_to}={values[self.up_to]!r}" if bounded else
                     f" {'>' if self.above else '>='} {self.low:g}")
            words = ("an integer" if self.kind == "int" else "a finite number") + bound
        return ("None or " if self.optional else "") + words + self.why

    def allows(self, value: object, values: dict[str, object]) -> bool:
        """Whether ``value`` is allowed (``values``: the other settings, for ``up_to``)."""
        if value is None:
            return self.optional
        if self.kind == "bool":
            return isinstance(value, (bool, np.bool_))
        if self.kind == "choice":
            return isinstance(value, str) and value in self.choices
        if not (_is_int(value) if self.kind == "int" else _is_real(value)):
            return False
        low_ok = self.low is None or (value > self.low if self.above else value >= self.low)
        return low_ok and (self.up_to is None or values[self.up_to] is None or value <= values[self.up_to])

    def check(self, name: str, value: object, values: dict[str, object]) -> None:
        """Raise an :class:`~xwvnet.errors.InvalidArgumentError` naming ``name``, ``value`` and what is allowed."""
        if self.renamed and isinstance(value, str) and value in self.renamed:
            raise InvalidArgumentError(f"{name}={value!r} is the old spelling: use {self.renamed[value]!r} (one of "
                                       f"{list(self.choices)}; the same names as embedding).")
        if not self.allows(value, values):
            raise InvalidArgumentError(f"{name}={value!r} is not allowed: {name} must be {self.describe(values)}.")


def _setting(default: object = None, allowed: _Allowed | None = None, *, means: str | None = None,
             free: bool = False, by_run: bool = False, factory: Any = None) -> Any:
    """A field of :class:`TrainConfig`: its default, its rule, what ``None`` ``means`` (said in ``--help``),
    whether it is ``free`` to change on resume, and whether it is set ``by_run`` rather than asked for."""
    metadata = {"allowed": allowed, "means": means, "free": free, "by_run": by_run}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


_INT_1 = _Allowed("int", 1)


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of a training run, with its default and what it may be: the one home of :func:`train`'s settings.

    :func:`train` takes a ``TrainConfig`` (``config=``) and/or any of its fields as keywords (``arch="resnet50"``);
    fields left at ``None`` (and ``precision="auto"``) are decided when the run starts (they depend on ``init``, the
    device or the number of ranks: :meth:`resolved`) and the resolved configuration is what the checkpoint and
    ``encoder.json`` (key ``config``) hold. A resumed run must match it, except the fields free on resume.
    Every field is checked when the configuration is made (here, or by :func:`train`'s keywords), before any
    work; ``device`` is checked with the GPUs of the machine when the run starts.

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
    steps : int, optional
        Optimizer steps of the whole run; the schedule decays to 0 at this step. Default 300 (about 10 minutes of a
        ResNet-18 at batch 64 on two cores); a GPU run asks for thousands (``xwvnet.training.recipe``). Under
        :func:`train`'s ``max_seconds`` the schedule is fitted to the time budget instead: the run times its first
        steps and sets ``steps`` (and the default warm-up) so that it ends, annealed, within the budget; a
        ``steps`` given too is the most it may be (the fewer wins: ``steps`` when they fit in the budget, else as
        many as fit). The fitted length is what the checkpoint and ``encoder.json`` record, and a resumed run
        follows it.
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
    flip : bool, default False
        Random horizontal and vertical flips. Off by default, as ``rotate90``: SAR imagettes are not isotropic (the
        azimuth smearing that grows with Hs is always along the lines, and a flip reverses the wave direction), and
        hs probes of encoders trained with flips and turns were worse (``docs/training.md``).
    rotate90 : bool, default False
        Random rotations by multiples of 90 degrees (a turn swaps azimuth and range).
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

    Raises
    ------
    xwvnet.errors.InvalidArgumentError
        If a field is out of its range or not one of its choices (the message names the field, its value and what
        is allowed; an old precision spelling names the new one), or ``augment`` contradicts ``image_size``,
        ``flip`` or ``rotate90``.

    Examples
    --------
    >>> TrainConfig(arch="resnet50", image_size=224).batch_size
    64
    >>> TrainConfig.default_of("lr")
    '0.001, or 0.0001 when continuing from init'
    """

    arch: str | None = _setting(None, _Allowed("choice", optional=True, choices=tuple(backbones.ARCHITECTURES)),
                                means=f"{FRESH_ARCH}, or the architecture of init")
    init: str | None = _setting(None, means="random initialisation")
    image_size: int = _setting(64, _Allowed("int", MIN_IMAGE_SIZE,
                                            why=" (the ResNet divides the view's side by 32 before pooling)"))
    batch_size: int = _setting(64, _Allowed("int", 2,
                                            why=" (SimCLR contrasts each pair with the other pairs of the batch)"))
    steps: int | None = _setting(None, _Allowed("int", 1, optional=True),
                                 means=f"{DEFAULT_STEPS}; with max_seconds, as many as fit in it (at most steps when "
                                       "given: the fewer wins)")
    lr: float | None = _setting(None, _Allowed("real", 0, above=True, optional=True),
                                means=f"{FRESH_LR:g}, or {CONTINUE_LR:g} when continuing from init")
    weight_decay: float = _setting(1e-4, _Allowed("real", 0))
    warmup_steps: int | None = _setting(None, _Allowed("int", 0, up_to="steps", optional=True),
                                        means=f"steps // {WARMUP_DIVISOR}, at least 1")
    temperature: float = _setting(0.1, _Allowed("real", 0, above=True))
    projection_dim: int = _setting(128, _INT_1)
    grad_clip: float | None = _setting(1.0, _Allowed("real", 0, optional=True,
                                                     text="None, 0 (no clipping) or a finite number > 0"))
    seed: int = _setting(0, _Allowed("int", 0))
    shuffle_size: int | None = _setting(None, _Allowed("int", 1, optional=True), means="four local batches")
    precision: str = _setting("auto", _Allowed("choice", choices=TRAIN_PRECISIONS, renamed=OLD_PRECISIONS),
                              means="auto: bfloat16 on a GPU, float32 on the CPU")
    var: str | None = _setting(None, means="quicklook, else sigma0")
    augment: dict | AugmentConfig = _setting(factory=dict)  # checked with the view settings, in __post_init__
    flip: bool = _setting(False, _Allowed("bool"))
    rotate90: bool = _setting(False, _Allowed("bool"))
    transform: str | None = _setting(None, _Allowed("choice", optional=True, choices=tuple(TRANSFORM_BORDERS),
                                                    why=" (named transforms, so that encoder.json can record it)"),
                                     means=f"{FRESH_TRANSFORM}, or the transform of init")
    bn_imagettes: int = _setting(512, _Allowed("int", 0, why=" (0 keeps the batch-norm statistics of the training "
                                                              "views)"), free=True)
    world_size: int = _setting(1, _INT_1, by_run=True)
    checkpoint_every: int = _setting(500, _INT_1, free=True)
    num_workers: int | None = _setting(None, _Allowed("int", 0, optional=True), free=True,
                                       means=f"0 on the CPU, up to {MAX_LOADER_WORKERS} per rank on a GPU")
    device: str = _setting("auto", free=True)  # checked, with this machine's GPUs, when the run starts
    compile: bool = _setting(False, _Allowed("bool"), free=True)

    def __post_init__(self) -> None:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        for f in fields(self):
            if f.metadata["allowed"] is not None:
                f.metadata["allowed"].check(f.name, values[f.name], values)
        _view_config(self)  # augment's keys, and none contradicting image_size, flip or rotate90

    @classmethod
    def default_of(cls, name: str) -> str:
        """The default of the field ``name`` in words: its value, or what ``None`` means when the run starts.

        Parameters
        ----------
        name : str
            A field of :class:`TrainConfig`.

        Returns
        -------
        str
            What ``--help`` of ``xwvnet train`` shows as the option's default.
        """
        found = {f.name: f for f in fields(cls)}[name]
        return found.metadata["means"] or str(found.default)

    def resolved(self, *, device: torch.device, world: int, threads: int, arch: str, transform: str, var: str,
                 augment: AugmentConfig, fitting: bool = False) -> TrainConfig:
        """This configuration with every field left to the run decided: what the checkpoint and ``encoder.json`` hold.

        Parameters
        ----------
        device : torch.device
            The run's device (each rank's).
        world : int
            The number of ranks.
        threads : int
            The cores of this rank's machine (for the loader workers).
        arch, transform : str
            The architecture and the embedding transform of the initial weights (or of a fresh encoder).
        var : str
            The image variable the data holds.
        augment : AugmentConfig
            The views' parameters.
        fitting : bool, default False
            Whether the run fits its schedule to a time budget (``max_seconds``): ``steps`` and ``warmup_steps``
            are then left as asked, for the run to set once it has timed its first steps.

        Returns
        -------
        TrainConfig
            With ``arch``, ``lr``, ``steps`` and ``warmup_steps`` (unless ``fitting``), ``precision``,
            ``transform``, ``num_workers``, ``device``, ``var``, ``augment`` and ``world_size`` decided.
        """
        cuda = device.type == "cuda"
        lr = (FRESH_LR if self.init is None else CONTINUE_LR) if self.lr is None else self.lr
        steps = self.steps if fitting or self.steps is not None else DEFAULT_STEPS
        warmup = self.warmup_steps
        if warmup is None and not fitting:
            warmup = max(1, steps // WARMUP_DIVISOR)
        precision = ("bfloat16" if cuda else "float32") if self.precision == "auto" else self.precision
        workers = self.num_workers
        if workers is None:
            workers = min(MAX_LOADER_WORKERS, max(0, threads // world - 1)) if cuda else 0
        return replace(self, arch=arch, init=None if self.init is None else os.fspath(self.init), lr=lr,
                       steps=steps, warmup_steps=warmup, world_size=world, precision=precision, var=var,
                       augment=json.loads(json.dumps(augment.to_dict())),  # tuples -> lists, as a checkpoint has them
                       transform=self.transform or transform, num_workers=workers, device=str(device),
                       compile=bool(self.compile))


#: the fields :func:`train` takes as keywords (``world_size`` is set by the run)
SETTINGS = tuple(f.name for f in fields(TrainConfig) if not f.metadata["by_run"])
#: the fields a resumed run may change
FREE = frozenset(f.name for f in fields(TrainConfig) if f.metadata["free"])
#: the rules of :func:`train`'s own keywords: what the call does with the run (its settings are a TrainConfig)
_CALL = {"resume": _Allowed("bool"), "overwrite": _Allowed("bool"), "progress": _Allowed("bool"),
         "max_seconds": _Allowed("real", 0, above=True, optional=True, text="None or a finite number of seconds > 0"),
         "stop_at_step": _Allowed("int", 1, optional=True)}


def _seed_everything(seed: int) -> None:
    """Seed python ``random``, numpy's global generator and torch (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# --- the run folder -------------------------------------------------------------------------------------------------
def _outputs(out_dir: Path) -> list[str]:
    """The output files of an earlier run present in ``out_dir``."""
    return [name for name in OUTPUT_FILES if (out_dir / name).exists()]


def _check_run_folder(out_dir: Path, resume: bool, overwrite: bool) -> bool:
    """Refuse to replace an earlier run by accident; return whether this run replaces one (``overwrite=True``)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputNotFolderError(f"out={os.fspath(out_dir)!r} is a file; give a folder for the run's outputs.")
    found = _outputs(out_dir)
    if not found or overwrite:
        return bool(found)
    if not resume:
        raise OutputExistsError(
            f"{out_dir} already holds the outputs of a training run ({', '.join(found)}); a new run would replace "
            "them. Pass resume=True (--resume) to continue that run, overwrite=True (--overwrite) to replace it, or "
            "another out."
        )
    if not (out_dir / CHECKPOINT_FILE).is_file() and (out_dir / ENCODER_FILE).exists():
        raise OutputExistsError(
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
        arch = arch or FRESH_ARCH  # a name TrainConfig checked
        return backbones.build_backbone(arch), arch, FRESH_TRANSFORM
    from ..models.weights import build_for
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
        backbone = build_for(state, os.fspath(init))
        found = backbones.backbone_arch(backbone)
    else:
        encoder = load_encoder(init)
        found, backbone = encoder.arch, copy.deepcopy(encoder.module)
        transform = encoder.transform if isinstance(encoder.transform, str) else "wvnet"
    if arch is not None and arch != found:
        raise ModelMismatchError(
            f"arch={arch!r} but the initial weights {init!r} are a {found}; leave arch unset or match."
        )
    if backbone.in_chans != 3:
        raise ModelMismatchError(
            f"training feeds 3-channel input; the initial weights {init!r} take {backbone.in_chans}."
        )
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
    # a run fitting its schedule to a time budget starts on that of steps (or the default), until it has timed steps
    steps = config.steps or DEFAULT_STEPS
    schedule = WarmupCosine(steps, max(1, steps // WARMUP_DIVISOR) if config.warmup_steps is None
                            else config.warmup_steps)
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


def _recorded_schedule(asked: TrainConfig, ckpt: dict | None) -> tuple[TrainConfig, dict | None]:
    """The settings of a resumed run with the schedule its checkpoint recorded, and that record.

    A checkpoint written once the schedule was fixed (asked for, or fitted to ``max_seconds``) records its length and
    warm-up: ``steps`` and ``warmup_steps`` left unset, or set as the interrupted run asked, take those values, so the
    resumed run follows the same schedule and never fits another. The record is ``None`` when there is nothing to
    follow (no checkpoint, or one written before the run had fitted its schedule), ``{}`` for a run without a budget.
    """
    if ckpt is None:
        return asked, None
    saved = json.loads(ckpt["config"])
    record = json.loads(ckpt["schedule"]) if ckpt.get("schedule") else {}
    if saved.get("steps") is None or (record and not record.get("fitted")):
        return asked, None
    asked_steps = record.get("asked_steps", saved["steps"])
    asked_warmup = record.get("asked_warmup_steps", saved.get("warmup_steps"))
    recorded = {}
    if asked.steps is None or asked.steps == asked_steps:
        recorded["steps"] = saved["steps"]
    if asked.warmup_steps is None or asked.warmup_steps == asked_warmup:
        recorded["warmup_steps"] = saved.get("warmup_steps")
    with contextlib.suppress(InvalidArgumentError):  # a contradiction is check_resumable's to name
        asked = replace(asked, **recorded)
    return asked, record


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

    with torch.random.fork_rng(devices=[]):  # building a backbone draws its initial weights: the run's RNG stays
        module = backbones.build_like(backbone, init_weights=False)  # plain batch norms, not synced
    module.load_state_dict(cpu_state(backbone))
    if not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules()):  # a ViT: layer norms only
        return module.eval(), {"statistics": "none (no batch norm)", "imagettes": 0}
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
                   loss: float | None, stopped: str, ds: xr.Dataset, dev: torch.device,
                   schedule: dict | None = None) -> Path:
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
        "schedule": schedule,
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
        A time budget, counted from the start of the call (data set-up, steps, checkpoints and outputs included):
        the run times its first steps and fits the schedule to the budget (``steps`` and the default warm-up), so
        that it ends within it with its learning rate annealed; the pace is checked again as it runs and the
        remaining steps refitted if it drifts. With ``steps`` given too, the fewer wins (``steps`` is the most).
        The fitted schedule is recorded in the checkpoint and ``encoder.json`` (key ``schedule``), and
        ``resume=True`` follows it; a resumed run, or one whose budget runs out before its first steps are timed,
        stops once ``max_seconds`` have passed, with a checkpoint. See ``docs/training.md``.
    stop_at_step : int, optional
        Stop after this step, with a checkpoint (as ``max_seconds``).
    progress : bool, default True
        Show a tqdm progress bar (rank 0).
    storage_options : dict, optional
        Credentials and endpoint when ``data`` names a store in a bucket (as :func:`xwvnet.open_store` takes
        them); default the standard environment.
    **settings
        Any field of :class:`TrainConfig` but ``world_size`` (the signature lists them with their defaults),
        described there with what each may be.

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
        Before any work: for a setting out of what :class:`TrainConfig` allows (``image_size`` < 32, ``batch_size``
        < 2, an unknown ``arch``, ``precision`` (the old ``"fp32"``/``"bf16"`` included) ...: the message names the
        argument, its value and what is allowed), a keyword of this call out of its range, ``resume`` with
        ``overwrite``, a bad ``device`` or CUDA asked for without a GPU, a batch not divisible by the ranks, or
        fewer imagettes than one batch.
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
    start = time.perf_counter()  # max_seconds counts from here: data set-up, the steps and the outputs
    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown:
        hints = "; ".join(f"did you mean {close[0]!r}?" for name in unknown
                          if (close := difflib.get_close_matches(name, SETTINGS, n=1)))
        raise InvalidTypeError(
            f"train() got unknown settings {unknown}{' (' + hints + ')' if hints else ''}; the settings "
            f"are the fields of TrainConfig: {list(SETTINGS)}."
        )
    if config is not None and not isinstance(config, TrainConfig):
        raise InvalidTypeError(
            f"config must be a TrainConfig, found {type(config).__name__}; pass settings as keywords, "
            "or TrainConfig(**settings)."
        )
    asked = replace(config or TrainConfig(), **settings)  # every setting checked (TrainConfig.__post_init__)
    call = {"resume": resume, "overwrite": overwrite, "progress": progress, "max_seconds": max_seconds,
            "stop_at_step": stop_at_step}
    for name, allowed in _CALL.items():
        allowed.check(name, call[name], call)
    if resume and overwrite:
        raise InvalidArgumentError(
            "resume=True and overwrite=True contradict each other: resume continues the run in out, "
            "overwrite replaces it with a new one. Pass one of them."
        )
    out_dir = local_path(out, "a training run")
    # each rank runs here, on its own GPU under torchrun: CUDA without a GPU is refused before any work
    here = run_context(LOCAL_THREADS, asked.device, local_rank=int(os.environ.get("LOCAL_RANK", "0")))
    dev = torch_device(here.device)
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
            raise InvalidArgumentError(
                f"batch_size={asked.batch_size} must be divisible by the number of ranks ({world}); use "
                f"a multiple of {world}."
            )
        ds, var = open_training_data(data, asked.var, storage_options=storage_options)
        if ds.sizes[S.IMAGETTE] < asked.batch_size:
            raise InvalidArgumentError(
                f"batch_size={asked.batch_size} is more than the {ds.sizes[S.IMAGETTE]} imagettes of the "
                "data; use a smaller batch_size or more imagettes."
            )
        provenance = _provenance(ds, data, var)
        _seed_everything(asked.seed)
        backbone, arch, init_transform = _initial_backbone(asked.arch, asked.init)
        patch = getattr(backbone, "patch", 1)  # a ViT takes views whose side is a multiple of its patch
        if asked.image_size % patch:
            raise InvalidArgumentError(
                f"image_size={asked.image_size} is not a multiple of the {patch}-pixel patches of the {arch}; use "
                f"{asked.image_size // patch * patch or patch} or {(asked.image_size // patch + 1) * patch}."
            )
        ckpt_path = out_dir / CHECKPOINT_FILE
        ckpt = load_checkpoint(ckpt_path) if resume and ckpt_path.is_file() else None
        asked, record = _recorded_schedule(asked, ckpt)
        fitting = max_seconds is not None and record is None  # else the run follows the recorded schedule
        config = asked.resolved(device=dev, world=world, threads=here.threads, arch=arch, transform=init_transform,
                                var=var, augment=aug, fitting=fitting)
        if config.precision == "bfloat16" and dev.type == "cpu" and not cpu_has_bf16():
            warn("precision='bfloat16' on a CPU without native bfloat16: it is emulated and slow; "
                 "precision='float32' is faster here.")
        model = SimCLR(backbone, ProjectionHead(backbone.num_features, out_features=config.projection_dim)).to(dev)
        if ckpt:
            # a schedule not yet fitted when the checkpoint was written is fitted (or resolved) by this run
            check_resumable(ckpt, asdict(config), provenance, ckpt_path,
                            FREE if record is not None else FREE | {"steps", "warmup_steps"})
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
        budget = _Budget(seconds=float(max_seconds), start=start, cap=asked.steps,
                         warmup=asked.warmup_steps) if fitting else None
        run = _Run(model=model, core=core, optimizer=optimizer, scheduler=scheduler, scaler=scaler, config=config,
                   aug=aug, border=TRANSFORM_BORDERS[config.transform], provenance=provenance, out_dir=out_dir,
                   dev=dev, rank=rank, world=world, log_path=log_path, replacing=replacing,
                   schedule=scheduler.lr_lambdas[0], start=start, max_seconds=max_seconds, budget=budget,
                   record=record if record else None)
        return _loop(run, ds, step, stop_at_step, progress)
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
        raise InvalidArgumentError(f"augment={{{', '.join(f'{k!r}: {given[k]!r}' for k in clash)}}} contradicts "
                                   f"{', '.join(f'{names[k]}={top[k]!r}' for k in clash)}; set the view's size, flips "
                                   "and turns with image_size=, flip= and rotate90= only.")
    try:
        return AugmentConfig(**{**given, **top})
    except TypeError as err:
        raise InvalidArgumentError(f"augment={given!r} is not allowed: {err}; its keys are the fields of "
                                   "xwvnet.training.augment.AugmentConfig.") from None


def _train_signature() -> inspect.Signature:
    """:func:`train`'s signature with each field of :class:`TrainConfig` as a keyword and its default, read from there
    (what ``help(xwvnet.train)`` and Shift-Tab in Jupyter show)."""
    own = [p for p in inspect.signature(train).parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    defaults = TrainConfig()
    settings = [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=getattr(defaults, f.name),
                                  annotation=f.type) for f in fields(TrainConfig) if f.name in SETTINGS]
    return inspect.signature(train).replace(parameters=[*own, *settings])


train.__signature__ = _train_signature()  # type: ignore[attr-defined]


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
    schedule: WarmupCosine | None = None
    start: float = 0.0
    max_seconds: float | None = None
    budget: _Budget | None = None
    record: dict | None = None


@dataclass
class _Budget:
    """The schedule fitted to a time budget: what was timed, and what the run decided from it.

    The first step of the call is not timed (first batch, allocations, compilation); the next ``TIMED_STEPS`` are, and
    give the pace. The costs still to come at the end (the final checkpoint, the encoder's file, the batch-norm
    statistics of ``bn_imagettes`` embedding inputs) are measured then (a checkpoint serialised in memory, a few
    imagettes through the embedding transform and the backbone) and reserved, with the checkpoints due on the way.
    Time spent in checkpoints and in these measurements is not counted in the pace.
    """

    seconds: float
    start: float
    cap: int | None
    warmup: int | None
    timed_from: int | None = None
    paused: float = 0.0
    mark: tuple[int, float] = (0, 0.0)
    step_seconds: float | None = None
    checkpoint_seconds: float = 0.0
    embedding_seconds: float = 0.0
    fitted_at: int = 0
    next_check: int = 0
    estimated: int | None = None
    refits: int = 0
    setup_seconds: float | None = None

    def end_seconds(self) -> float:
        """Seconds reserved after the last step: the final checkpoint, the encoder, its batch-norm statistics."""
        return 2 * self.checkpoint_seconds + self.embedding_seconds

    def fit(self, step: int, now: float, checkpoint_every: int) -> int:
        """The number of steps that end the run within the budget, from ``step`` at ``now`` (at most ``cap``)."""
        per_step = self.step_seconds + self.checkpoint_seconds / checkpoint_every
        left = self.start + self.seconds - now - self.end_seconds()
        steps = step + max(1, int(left // per_step))
        return min(steps, self.cap) if self.cap else steps

    def record(self, schedule: WarmupCosine) -> dict:
        """What the checkpoint and ``encoder.json`` keep of the budget and of the schedule fitted to it."""
        return {"max_seconds": self.seconds, "asked_steps": self.cap, "asked_warmup_steps": self.warmup,
                "fitted": self.step_seconds is not None, "setup_seconds": self.setup_seconds, "steps": schedule.steps,
                "warmup_steps": schedule.warmup_steps, "estimated_steps": self.estimated, "refits": self.refits,
                "step_seconds": self.step_seconds, "checkpoint_seconds": self.checkpoint_seconds,
                "batch_norm_seconds": self.embedding_seconds, "reserved_seconds": self.end_seconds()}


def _finish_replacing(run: _Run) -> None:
    """At the first checkpoint of a run that replaces another: its log becomes ``loss.csv``, the old encoder goes."""
    os.replace(run.log_path, run.out_dir / LOG_FILE)  # the open log follows the file on POSIX
    run.log_path = run.out_dir / LOG_FILE
    for name in (ENCODER_FILE, META_FILE):
        (run.out_dir / name).unlink(missing_ok=True)
    run.replacing = False


def _out_of_time(run: _Run, step: int, now: float) -> bool:
    """Whether ``max_seconds`` stops the run after ``step`` (early, with a checkpoint).

    A run whose schedule is fitted to the budget ends with it, and stops early only if, after the step that fitted
    it, it would overrun the budget by more than ``OVERRUN`` (its outputs included): its pace collapsed between two
    checks. Any other run stops once ``max_seconds`` have passed.
    """
    if run.max_seconds is None:
        return False
    elapsed = now - run.start
    budget = run.budget
    if budget is not None and budget.step_seconds is not None:
        return step > budget.fitted_at and elapsed + budget.end_seconds() > run.max_seconds * (1 + OVERRUN)
    return elapsed >= run.max_seconds


def _agree(run: _Run, steps: int) -> int:
    """Rank 0's number of steps, on every rank (a collective: every rank calls it at the same step)."""
    if run.world <= 1:
        return steps
    value = torch.tensor([steps], dtype=torch.int64, device=run.dev)
    dist.broadcast(value, 0)
    return int(value.item())


def _set_schedule(run: _Run, steps: int, warmup_steps: int | None = None, *, refit_at: int | None = None) -> None:
    """Give the schedule its (new) length, record it in the configuration, and set the learning rate of the next
    step from it (the scheduler computed that one with the schedule as it was)."""
    schedule, scheduler = run.schedule, run.scheduler
    if refit_at is None:
        schedule.steps, schedule.warmup_steps = int(steps), int(warmup_steps)
    else:
        schedule.refit(refit_at, steps)
    run.config = replace(run.config, steps=schedule.steps, warmup_steps=schedule.warmup_steps)
    for group, base, factor in zip(run.optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas, strict=True):
        group["lr"] = base * factor(scheduler.last_epoch)
    scheduler._last_lr = [group["lr"] for group in run.optimizer.param_groups]


def _fit_to_budget(run: _Run, ds: xr.Dataset, step: int, now: float) -> None:
    """Time the first steps and fit the schedule to ``max_seconds`` from them; later, check the pace and refit the
    remaining steps when the predicted end drifts from the budget (the cosine goes on without a jump)."""
    budget, schedule = run.budget, run.schedule
    clock = now - budget.paused  # the time of the steps alone, without checkpoints and measurements
    if budget.timed_from is None:  # the first step of the call: its one-off costs are not timed
        budget.timed_from, budget.mark, budget.setup_seconds = step, (step, clock), now - budget.start
        return
    if budget.step_seconds is None:
        if step - budget.timed_from < TIMED_STEPS:
            return
        budget.step_seconds = (clock - budget.mark[1]) / (step - budget.mark[0])
        budget.mark = (step, clock)
        if run.rank == 0:
            budget.checkpoint_seconds = _checkpoint_seconds(run)
            budget.embedding_seconds = _embedding_seconds(run, ds)
        measured = time.perf_counter()
        budget.paused += measured - now
        steps = _agree(run, budget.fit(step, measured, run.config.checkpoint_every))
        if run.rank == 0 and steps == step + 1 and budget.cap != steps:
            spent = measured - budget.start
            warn(f"max_seconds={budget.seconds:g} leaves no time for more steps: {spent:.0f} s went to setting up and "
                 f"{step} steps of {budget.step_seconds:.2g} s, and about "
                 f"{budget.end_seconds():.0f} s are needed at the end (checkpoint, encoder, batch-norm statistics of "
                 "bn_imagettes embedding inputs); give more seconds, or fewer bn_imagettes.")
        warmup = max(1, steps // WARMUP_DIVISOR) if budget.warmup is None else budget.warmup
        if warmup >= steps and run.rank == 0:
            warn(f"warmup_steps={warmup} is not less than the {steps} steps that fit in max_seconds="
                 f"{budget.seconds:g}; the warm-up is cut to {steps // 2} so that the learning rate is annealed.")
        warmup = steps // 2 if warmup >= steps else warmup
        budget.estimated, budget.fitted_at = steps, step
        budget.next_check = step + max(1, (steps - step) // PACE_CHECKS)
        _set_schedule(run, steps, warmup)
        return
    if step < budget.next_check or step >= schedule.steps:
        return
    budget.next_check = step + max(1, (schedule.steps - budget.fitted_at) // PACE_CHECKS)
    budget.step_seconds = (clock - budget.mark[1]) / (step - budget.mark[0])  # the pace since the last check
    budget.mark = (step, clock)
    every = run.config.checkpoint_every
    predicted = now + (schedule.steps - step) * (budget.step_seconds + budget.checkpoint_seconds / every) + (
        budget.end_seconds())
    steps = schedule.steps
    if abs(predicted - (budget.start + budget.seconds)) > max(DRIFT * budget.seconds, budget.step_seconds):
        steps = max(budget.fit(step, now, every), schedule.warmup_steps + 1)
    steps = _agree(run, steps)
    if steps != schedule.steps:
        budget.refits += 1
        _set_schedule(run, steps, refit_at=step)


def _checkpoint_seconds(run: _Run) -> float:
    """About how long writing a checkpoint takes: one serialised and hashed in memory, and half as long to disk."""
    import hashlib
    import io

    began = time.perf_counter()
    buffer = io.BytesIO()
    torch.save({"backbone": cpu_state(run.core.backbone), "head": cpu_state(run.core.head),
                "optimizer": run.optimizer.state_dict()}, buffer)
    hashlib.sha256(buffer.getbuffer()).hexdigest()
    return 1.5 * (time.perf_counter() - began)


def _embedding_seconds(run: _Run, ds: xr.Dataset) -> float:
    """About how long re-estimating the saved encoder's batch-norm statistics takes.

    A copy of the backbone takes one imagette of the ``bn_imagettes`` (untimed: its one-off costs are paid once by
    the real pass too), then 4 and 16 (read, embedding transform, forward): a cost per batch and a cost per imagette,
    scaled to the real pass over all of them in batches of ``BATCH_SIZE``.
    """
    from ..models.transforms import get_transform

    config, dev = run.config, run.dev
    backbone = run.core.backbone
    if not config.bn_imagettes or not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in backbone.modules()):
        return 0.0
    index = calibration_index(chunk_starts(ds, config.var), config.bn_imagettes, config.seed)
    transform = get_transform(config.transform)

    def seconds(part: np.ndarray) -> float:
        began = time.perf_counter()
        images, lines, samples = read_imagettes(ds, config.var, part)
        module(transform(images, lines, samples, device=dev, channels=int(backbone.in_chans)))
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        return time.perf_counter() - began

    began = time.perf_counter()
    module = copy.deepcopy(backbone).eval()
    with torch.no_grad():
        seconds(index[:1])
        once = time.perf_counter() - began
        small, large = min(4, len(index)), min(16, len(index))
        t_small, t_large = seconds(index[:small]), seconds(index[:large])
    per_imagette = (t_large - t_small) / (large - small) if large > small else t_large / large
    per_imagette = per_imagette if per_imagette > 0 else t_large / large
    per_batch = max(0.0, t_large - large * per_imagette)
    return once + per_batch * math.ceil(len(index) / BATCH_SIZE) + per_imagette * len(index)


def _loop(run: _Run, ds: xr.Dataset, step: int, stop_at_step: int | None, progress: bool) -> Path:
    """The training steps from ``step`` on, with logging, stopping and checkpoints; returns the weights path."""
    config, dev, rank, world, schedule = run.config, run.dev, run.rank, run.world, run.schedule
    local = config.batch_size // world
    stream: Iterator = batches(ds, batch_size=local, seed=config.seed, rank=rank, world=world,
                               num_workers=config.num_workers, start_step=step, shuffle_size=config.shuffle_size,
                               var=config.var, pin_memory=dev.type == "cuda")
    autocast = (contextlib.nullcontext() if config.precision == "float32"
                else torch.autocast(dev.type, dtype=torch_dtype(config.precision)))
    bar = None
    if progress and rank == 0:
        from tqdm.auto import tqdm

        bar = tqdm(total=schedule.steps, initial=step, desc="SimCLR", unit="step")
    log = run.log_path.open("a", newline="") if rank == 0 else None
    writer = csv.writer(log) if log else None
    if writer and log.tell() == 0:
        writer.writerow(["step", "loss", "lr", "images_per_s"])
    last = time.perf_counter()
    loss_value: float | None = None
    stopped = "finished"
    run.model.train()
    try:
        while step < schedule.steps:
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
                raise TrainingDivergedError(f"the loss became {loss_value} at step {step}; lower lr or use "
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
            if run.budget is not None:
                _fit_to_budget(run, ds, step, now)
                config = run.config
                if bar:
                    bar.total = schedule.steps
            stop = (stop_at_step is not None and step >= stop_at_step) or _out_of_time(run, step, now)
            if world > 1 and run.max_seconds is not None:  # ranks must agree on when to stop
                flag = torch.tensor(float(stop), device=dev)
                dist.all_reduce(flag, op=dist.ReduceOp.MAX)
                stop = bool(flag.item())
            if step < schedule.steps and stop:
                stopped = "stop_at_step" if stop_at_step is not None and step >= stop_at_step else "max_seconds"
            if step == schedule.steps or stopped != "finished" or step % config.checkpoint_every == 0:
                began = time.perf_counter()
                rngs = _gather_rng(world)  # every rank takes part; rank 0 writes
                if rank == 0:
                    record = run.budget.record(schedule) if run.budget is not None else run.record
                    save_checkpoint(run.out_dir / CHECKPOINT_FILE, step=step, config=asdict(config),
                                    data=run.provenance, backbone=run.core.backbone, head=run.core.head,
                                    optimizer=run.optimizer, scheduler=run.scheduler, scaler=run.scaler, rng=rngs,
                                    schedule=record)
                    if run.replacing:
                        _finish_replacing(run)
                if run.budget is not None:
                    run.budget.paused += time.perf_counter() - began
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
        record = run.budget.record(schedule) if run.budget is not None else run.record
        _write_outputs(run.out_dir, run.core.backbone, config, run.provenance, step, loss_value, stopped, ds, dev,
                       record)
    if world > 1:
        dist.barrier()
    return path
