"""SimCLR on imagettes: NT-Xent loss, projection head, the training loop, checkpoints and DDP.

WV-Net was trained with SimCLR (Chen et al. 2020) on ~10 million imagettes; its training code was not published, so
this is ours. One entry point, :func:`train`, runs on a laptop CPU, one GPU, or many GPUs and nodes under
``torchrun`` (torch's own DDP: data sharded by rank, negatives gathered across ranks, global batch norm on GPUs).

Reproducibility: the seed fixes the initialisation, the data order (a pure function of seed and step, see
:mod:`xwvnet.training.loader`) and the augmentations (the generator is re-seeded from ``(seed, rank, step)`` at every
step), so a resumed run repeats exactly the steps an uninterrupted run would have made.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import hashlib
import json
import math
import os
import pickle
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
import xarray as xr
from torch import nn

from .. import schema as S
from ..models import resnet
from .augment import AugmentConfig, view_pair
from .loader import batches, chunk_starts, open_training_data

__all__ = ["ProjectionHead", "SimCLR", "TrainConfig", "CheckpointError", "nt_xent", "simclr_loss", "train",
           "load_checkpoint", "lr_at", "train_briefly"]

CHECKPOINT_FORMAT = "xwvnet-simclr-checkpoint"
CHECKPOINT_VERSION = 1
ENCODER_FILE = "encoder.pt"
CHECKPOINT_FILE = "checkpoint.pt"
LOG_FILE = "loss.csv"
META_FILE = "encoder.json"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: unreadable, not ours, or from a different run configuration."""


# --- the loss and the model ------------------------------------------------------------------------------------------
def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.1, *, gather: bool = False) -> torch.Tensor:
    """Normalised-temperature cross-entropy (SimCLR) of paired projections ``z1[i] <-> z2[i]``.

    Each of the 2N rows is classified against the other 2N - 1 rows (cosine similarity / ``temperature``), its
    positive being its pair; the loss is the mean over rows. With ``gather=True`` inside an initialised process
    group, the candidates are every rank's rows (gathered with gradient), so negatives come from the global batch
    and the mean over ranks equals the single-process loss on the concatenated batch.
    """
    if z1.shape != z2.shape or z1.ndim != 2:
        raise ValueError(f"expected two (n, d) tensors of the same shape, got {tuple(z1.shape)} and {tuple(z2.shape)}")
    z1, z2 = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    n, offset = z1.shape[0], 0
    all1, all2 = z1, z2
    if gather and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        all1, all2 = _GatherWithGrad.apply(z1), _GatherWithGrad.apply(z2)
        offset = dist.get_rank() * n
    total = all1.shape[0]
    queries = torch.cat([z1, z2])  # (2n, d)
    logits = queries @ torch.cat([all1, all2]).T / temperature  # (2n, 2N)
    rows = torch.arange(n, device=z1.device) + offset
    own = torch.cat([rows, rows + total])
    positive = torch.cat([rows + total, rows])
    self_mask = torch.zeros_like(logits, dtype=torch.bool)
    self_mask[torch.arange(2 * n, device=z1.device), own] = True
    return F.cross_entropy(logits.masked_fill(self_mask, float("-inf")), positive)


class _GatherWithGrad(torch.autograd.Function):
    """Concatenate every rank's rows; the backward pass returns to each rank the summed gradient of its rows."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        ctx.rows = x.shape[0]
        return torch.cat(parts)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous()
        dist.all_reduce(grad)  # every rank's loss depends on these rows
        start = dist.get_rank() * ctx.rows
        return grad[start : start + ctx.rows]


class ProjectionHead(nn.Module):
    """Linear -> BatchNorm -> ReLU -> Linear (SimCLR v2 style); discarded after training."""

    def __init__(self, in_features: int, hidden: int | None = None, out_features: int = 128) -> None:
        super().__init__()
        hidden = hidden or in_features
        self.net = nn.Sequential(
            nn.Linear(in_features, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, out_features),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class SimCLR(nn.Module):
    """Backbone (pooled features) + projection head."""

    def __init__(self, backbone: resnet.ResNet, head: ProjectionHead) -> None:
        super().__init__()
        self.backbone, self.head = backbone, head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


def simclr_loss(model: nn.Module, v1: torch.Tensor, v2: torch.Tensor, temperature: float,
                gather: bool = False) -> torch.Tensor:
    """NT-Xent of one step: both views go through the model in one pass (batch norm sees both)."""
    z1, z2 = model(torch.cat([v1, v2])).float().chunk(2)
    return nt_xent(z1, z2, temperature, gather=gather)


def lr_at(step: int, *, steps: int, lr: float, warmup_steps: int) -> float:
    """Linear warm-up over ``warmup_steps``, then cosine decay to 0 at ``steps`` (a pure function of the step)."""
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, steps - warmup_steps)
    return lr * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


# --- configuration ---------------------------------------------------------------------------------------------------
@dataclass
class TrainConfig:
    """What defines a run; a resumed run must match it (except the fields in ``_FREE``)."""

    arch: str = "resnet18"
    init: str | None = None
    image_size: int = 224
    batch_size: int = 256
    steps: int = 1000
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 50
    temperature: float = 0.1
    projection_dim: int = 128
    grad_clip: float | None = 1.0
    seed: int = 0
    shuffle_size: int | None = None
    world_size: int = 1
    precision: str = "fp32"
    var: str = S.QUICKLOOK
    augment: dict = field(default_factory=dict)
    # free to change between an interrupted run and its resumption
    checkpoint_every: int = 500
    num_workers: int = 0
    device: str = "cpu"


_FREE = {"checkpoint_every", "num_workers", "device"}


# --- checkpoints -----------------------------------------------------------------------------------------------------
def _atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _cpu_state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a training checkpoint safely (``weights_only=True``); raise :class:`CheckpointError` if it is not one."""
    path = Path(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as err:
        raise CheckpointError(
            f"{path} is not a readable xwvnet training checkpoint ({type(err).__name__}: {str(err)[:200]}). "
            "It may be truncated or not a checkpoint; delete it to start again, or pass resume=False."
        ) from err
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not an xwvnet training checkpoint (expected format {CHECKPOINT_FORMAT!r}).")
    if ckpt.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"{path} has checkpoint version {ckpt.get('version')}, this xwvnet reads "
                              f"{CHECKPOINT_VERSION}.")
    missing = {"step", "config", "backbone", "head", "optimizer", "data"} - set(ckpt)
    if missing:
        raise CheckpointError(f"{path} lacks {sorted(missing)}; it is incomplete. Delete it to start again.")
    return ckpt


def _check_resumable(ckpt: dict, config: TrainConfig, data: dict, path: Path) -> None:
    saved = json.loads(ckpt["config"])
    mine = asdict(config)
    diff = {k: (saved.get(k), v) for k, v in mine.items() if k not in _FREE and saved.get(k) != v}
    if diff:
        detail = ", ".join(f"{k}: checkpoint {a!r} vs now {b!r}" for k, (a, b) in diff.items())
        raise CheckpointError(f"cannot resume from {path}: the run configuration changed ({detail}). Use the same "
                              "settings, or another out_dir / resume=False to start a new run.")
    saved_data = json.loads(ckpt["data"])
    if saved_data.get("layout") != data.get("layout"):
        raise CheckpointError(f"cannot resume from {path}: the training data changed (it had "
                              f"{saved_data.get('imagettes')} imagettes, now {data.get('imagettes')}, or other "
                              "chunks). Resume on the same data, or start a new run.")


# --- pieces of the loop ----------------------------------------------------------------------------------------------
def _initial_backbone(arch: str | None, init: str | os.PathLike | None) -> tuple[resnet.ResNet, str]:
    """The backbone to start from: random (seeded by the caller), a registry name, a weights or checkpoint file."""
    if init is None:
        arch = arch or "resnet18"
        if arch not in resnet.ARCHITECTURES:
            raise ValueError(f"unknown arch {arch!r}; expected one of {sorted(resnet.ARCHITECTURES)}.")
        return resnet.ARCHITECTURES[arch](), arch
    from ..models.registry import infer_arch, load_encoder, load_strict

    state = None
    if Path(init).is_file():
        with contextlib.suppress(Exception):  # not one of our checkpoints: load_encoder reads it below
            candidate = torch.load(Path(init), map_location="cpu", weights_only=True)
            if isinstance(candidate, dict) and candidate.get("format") == CHECKPOINT_FORMAT:
                state = candidate["backbone"]
    if state is not None:
        found, in_chans = infer_arch(state)
        backbone = load_strict(resnet.ARCHITECTURES[found](in_chans=in_chans), state, os.fspath(init))
    else:
        encoder = load_encoder(init)
        found, backbone = encoder.arch, copy.deepcopy(encoder.module)
    if arch is not None and arch != found:
        raise ValueError(f"arch={arch!r} but the initial weights {init!r} are a {found}; leave arch unset or match.")
    if backbone.in_chans != 3:
        raise ValueError(f"training feeds 3-channel input; the initial weights {init!r} take {backbone.in_chans}.")
    return backbone.train(), found


def _distributed(device: str) -> tuple[int, int, int, bool]:
    """(rank, world, local_rank, created): joins the torchrun process group when WORLD_SIZE > 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, 0, False
    created = False
    if not dist.is_initialized():
        use_cuda = torch.cuda.is_available() and device in ("auto", "cuda")
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
        created = True
    return dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")), created


def _device(device: str, local_rank: int) -> torch.device:
    if device == "auto":
        return torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    if device == "cuda":
        return torch.device(f"cuda:{local_rank}")
    return torch.device(device)


def _provenance(ds: xr.Dataset, source: Any, var: str) -> dict:
    """Where the training imagettes came from, and a fingerprint of their layout (checked on resume)."""
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
    g = torch.Generator(device=device)
    g.manual_seed(int(np.random.SeedSequence([seed, rank, step]).generate_state(1, dtype=np.uint64)[0] >> 1))
    return g


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """No weight decay on biases and normalisation parameters (1-D tensors)."""
    decay = [p for p in model.parameters() if p.ndim > 1]
    plain = [p for p in model.parameters() if p.ndim <= 1]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": plain, "weight_decay": 0.0}]


def _truncate_log(path: Path, step: int) -> None:
    if not path.is_file():
        return
    with path.open() as f:
        rows = list(csv.reader(f))
    keep = [rows[0]] + [r for r in rows[1:] if r and int(r[0]) <= step]
    with path.open("w", newline="") as f:
        csv.writer(f).writerows(keep)


def _write_outputs(out_dir: Path, backbone: nn.Module, config: TrainConfig, data: dict, step: int,
                   loss: float | None, stopped: str) -> Path:
    path = out_dir / ENCODER_FILE
    _atomic_save(_cpu_state(backbone), path)
    from .._version import __version__

    meta = {
        "format": "xwvnet-encoder",
        "weights": ENCODER_FILE,
        "arch": config.arch,
        "num_features": int(backbone.num_features),
        "transform": "wvnet",
        "trained_image_size": config.image_size,
        "method": "SimCLR (xwvnet.train)",
        "steps_done": step,
        "stopped": stopped,
        "final_loss": loss,
        "weights_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "config": asdict(config),
        "data": data,
        "versions": {"xwvnet": __version__, "torch": torch.__version__},
    }
    (out_dir / META_FILE).write_text(json.dumps(meta, indent=2, default=str))
    return path


# --- the loop --------------------------------------------------------------------------------------------------------
def train(
    data: xr.Dataset | str | os.PathLike,
    *,
    out_dir: str | os.PathLike,
    arch: str | None = None,
    init: str | os.PathLike | None = None,
    image_size: int = 224,
    batch_size: int = 256,
    steps: int = 1000,
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    warmup_steps: int | None = None,
    temperature: float = 0.1,
    projection_dim: int = 128,
    grad_clip: float | None = 1.0,
    seed: int = 0,
    resume: bool = False,
    checkpoint_every: int = 500,
    num_workers: int | None = None,
    shuffle_size: int | None = None,
    device: str = "auto",
    precision: str = "auto",
    augment: AugmentConfig | dict | None = None,
    flip: bool = True,
    rotate90: bool = True,
    max_seconds: float | None = None,
    stop_at_step: int | None = None,
    var: str | None = None,
    progress: bool = True,
) -> Path:
    """Train (or continue training) an encoder with SimCLR on imagettes; return the path of its weights.

    ``data``: an imagette Dataset or the path of a Zarr store (streamed, never loaded whole). ``init``: ``None``
    (random, seeded), a registry name such as ``"wvnet-resnet50"``, or a weights/checkpoint file; ``arch`` follows
    ``init`` when given. ``batch_size`` is the global batch (split over DDP ranks). ``flip``/``rotate90`` switch the
    orientation augmentations (keep wave direction by turning them off). ``max_seconds`` and ``stop_at_step`` end a
    run early with a checkpoint (``resume=True`` continues it exactly; the schedule still follows ``steps``).

    Writes into ``out_dir``: ``encoder.pt`` (torchvision-format backbone state dict, no head: ``load_encoder`` and
    ``embed`` take it), ``encoder.json`` (configuration, data provenance, versions), ``loss.csv`` (loss per step)
    and ``checkpoint.pt`` (everything needed to resume). Under ``torchrun`` each rank runs this same call.
    """
    out_dir = Path(out_dir)
    rank, world, local_rank, created_group = _distributed(device)
    dev = _device(device, local_rank)
    try:
        if batch_size % world:
            raise ValueError(f"batch_size={batch_size} must be divisible by the number of ranks ({world}).")
        if precision == "auto":
            precision = "bf16" if dev.type == "cuda" else "fp32"
        if precision not in ("fp32", "bf16"):
            raise ValueError(f"precision must be 'auto', 'fp32' or 'bf16', got {precision!r}.")
        if isinstance(augment, dict):
            augment = AugmentConfig(**augment)
        aug = augment or AugmentConfig()
        aug = AugmentConfig(**{**aug.to_dict(), "size": image_size, "flip": flip, "rotate90": rotate90})
        if num_workers is None:
            num_workers = min(8, max(0, (os.cpu_count() or 1) // world - 1)) if dev.type == "cuda" else 0

        ds, var = open_training_data(data, var)
        provenance = _provenance(ds, data, var)
        torch.manual_seed(seed)
        backbone, arch = _initial_backbone(arch, init)
        config = TrainConfig(
            arch=arch, init=None if init is None else os.fspath(init), image_size=image_size, batch_size=batch_size,
            steps=steps, lr=lr, weight_decay=weight_decay,
            warmup_steps=max(1, steps // 20) if warmup_steps is None else warmup_steps, temperature=temperature,
            projection_dim=projection_dim, grad_clip=grad_clip, seed=seed, shuffle_size=shuffle_size,
            world_size=world, precision=precision, var=var, augment=aug.to_dict(),
            checkpoint_every=checkpoint_every, num_workers=num_workers, device=str(dev),
        )
        config.augment = json.loads(json.dumps(config.augment))  # tuples -> lists, as read back from JSON
        model = SimCLR(backbone, ProjectionHead(backbone.num_features, out_features=projection_dim)).to(dev)
        optimizer = torch.optim.AdamW(_param_groups(model, weight_decay), lr=lr)
        step = 0
        ckpt_path = out_dir / CHECKPOINT_FILE
        if resume and ckpt_path.is_file():
            ckpt = load_checkpoint(ckpt_path)
            _check_resumable(ckpt, config, provenance, ckpt_path)
            model.backbone.load_state_dict(ckpt["backbone"], strict=True)
            model.head.load_state_dict(ckpt["head"], strict=True)
            optimizer.load_state_dict(ckpt["optimizer"])
            step = int(ckpt["step"])
            torch.set_rng_state(ckpt["rng"]["torch"])
        if dev.type == "cuda":
            model = model.to(memory_format=torch.channels_last)
        core = model
        if world > 1:
            if dev.type == "cuda":
                core = model = nn.SyncBatchNorm.convert_sync_batchnorm(model)  # global batch norm, as SimCLR has
            model = nn.parallel.DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)
        if rank == 0:
            out_dir.mkdir(parents=True, exist_ok=True)
            if step == 0 and (out_dir / LOG_FILE).exists():
                (out_dir / LOG_FILE).unlink()
            _truncate_log(out_dir / LOG_FILE, step)
        return _loop(model, core, optimizer, ds, config, aug, provenance, out_dir, dev, rank, world, step,
                     max_seconds, stop_at_step, progress)
    finally:
        if created_group:
            dist.destroy_process_group()


def _loop(model: nn.Module, core: SimCLR, optimizer: torch.optim.Optimizer, ds: xr.Dataset, config: TrainConfig,
          aug: AugmentConfig, provenance: dict, out_dir: Path, dev: torch.device, rank: int, world: int, step: int,
          max_seconds: float | None, stop_at_step: int | None, progress: bool) -> Path:
    local = config.batch_size // world
    stream: Iterator = batches(ds, batch_size=local, seed=config.seed, rank=rank, world=world,
                               num_workers=config.num_workers, start_step=step, shuffle_size=config.shuffle_size,
                               var=config.var, pin_memory=dev.type == "cuda")
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if config.precision == "bf16"
                else contextlib.nullcontext())
    bar = None
    if progress and rank == 0:
        from tqdm.auto import tqdm

        bar = tqdm(total=config.steps, initial=step, desc="SimCLR", unit="step")
    log = (out_dir / LOG_FILE).open("a", newline="") if rank == 0 else None
    writer = csv.writer(log) if log else None
    if writer and log.tell() == 0:
        writer.writerow(["step", "loss", "lr", "images_per_s"])
    start = last = time.perf_counter()
    loss_value: float | None = None
    stopped = "finished"
    model.train()
    try:
        while step < config.steps:
            batch = next(stream).to(dev, non_blocking=True)
            with torch.no_grad():
                v1, v2 = view_pair(batch.images, batch.valid_lines, batch.valid_samples, aug,
                                   _step_generator(dev, config.seed, rank, step))
            if dev.type == "cuda":
                v1, v2 = v1.contiguous(memory_format=torch.channels_last), v2.contiguous(
                    memory_format=torch.channels_last)
            lr = lr_at(step, steps=config.steps, lr=config.lr, warmup_steps=config.warmup_steps)
            for group in optimizer.param_groups:
                group["lr"] = lr
            with autocast:
                loss = simclr_loss(model, v1, v2, config.temperature, gather=world > 1)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            step += 1
            reported = loss.detach()
            if world > 1:
                dist.all_reduce(reported)
                reported /= world
            loss_value = float(reported)
            if not math.isfinite(loss_value):
                raise FloatingPointError(f"the loss became {loss_value} at step {step}; lower lr or use fp32.")
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
            if rank == 0 and (step == config.steps or stopped != "finished" or step % config.checkpoint_every == 0):
                _save_checkpoint(out_dir / CHECKPOINT_FILE, core, optimizer, config, provenance, step)
            if stopped != "finished":
                break
    finally:
        stream.close()
        if bar:
            bar.close()
        if log:
            log.close()
    path = out_dir / ENCODER_FILE
    if rank == 0:
        _write_outputs(out_dir, core.backbone, config, provenance, step, loss_value, stopped)
    if world > 1:
        dist.barrier()
    return path


def _save_checkpoint(path: Path, core: SimCLR, optimizer: torch.optim.Optimizer, config: TrainConfig, data: dict,
                     step: int) -> None:
    rng = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    _atomic_save({
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "step": step,
        "config": json.dumps(asdict(config)),
        "data": json.dumps(data),
        "backbone": _cpu_state(core.backbone),
        "head": _cpu_state(core.head),
        "optimizer": optimizer.state_dict(),
        "scheduler": {"kind": "warmup-cosine", "step": step, "steps": config.steps,
                      "warmup_steps": config.warmup_steps, "lr": config.lr},
        "rng": rng,
    }, path)


def train_briefly(
    data: xr.Dataset | str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    seconds: float = 60,
    seed: int = 0,
    arch: str = "resnet18",
    image_size: int = 96,
    progress: bool = True,
) -> Path:
    """A small encoder trained with SimCLR for at most ``seconds`` on the data at hand; returns its weights path.

    For when no pretrained weights are available (the demo): a ResNet-18 at 96 px, batch of up to 64, 200 steps at
    most. Far from WV-Net, but an encoder of *these* imagettes that ``embed`` can use, and says what it is in
    ``encoder.json``.
    """
    ds, _ = open_training_data(data)
    n = ds.sizes[S.IMAGETTE]
    if n < 4:
        raise ValueError(f"training an encoder needs at least 4 imagettes, the data has {n}.")
    batch = min(64, 2 ** int(math.log2(n)))
    return train(ds, out_dir=out_dir, arch=arch, image_size=image_size, batch_size=batch, steps=200,
                 warmup_steps=10, lr=2e-3, seed=seed, max_seconds=seconds, checkpoint_every=10**9,
                 progress=progress)
