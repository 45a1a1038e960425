"""SimCLR training: the loss against a direct computation, a tiny run that learns, outputs that embed and load back,
exact resume (model, optimizer, scheduler, every RNG), refused checkpoints, the precision vocabulary, and DDP (gloo,
2 CPU processes) against one process on the same global batch."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import pickle
import random
import socket
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr

import xwvnet
from xwvnet import schema as S
from xwvnet.models.resnet import resnet18
from xwvnet.training import CheckpointError, load_checkpoint, nt_xent, train
from xwvnet.training.checkpoint import rng_state, set_rng_state
from xwvnet.training.head import ProjectionHead, SimCLR
from xwvnet.training.loss import simclr_loss
from xwvnet.training.simclr import WarmupCosine

torch.set_num_threads(1)
TINY = dict(image_size=32, batch_size=16, warmup_steps=1, lr=3e-3, progress=False)


@pytest.fixture(scope="module")
def waves():
    """64 synthetic imagettes with sea-state texture, in memory."""
    return xwvnet.synthetic.imagettes(64, seed=0, size=(96, 96), chunks=16).load()


def _losses(out: Path) -> list[float]:
    with (out / "loss.csv").open() as f:
        return [float(row["loss"]) for row in csv.DictReader(f)]


def _lrs(out: Path) -> list[str]:
    with (out / "loss.csv").open() as f:
        return [(row["step"], row["lr"]) for row in csv.DictReader(f)]


# --- the loss --------------------------------------------------------------------------------------------------------
def _direct_nt_xent(z1: np.ndarray, z2: np.ndarray, t: float) -> float:
    z = np.concatenate([z1, z2]).astype(np.float64)
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    n = len(z1)
    total = 0.0
    for i in range(2 * n):
        j = (i + n) % (2 * n)
        sims = [z[i] @ z[k] / t for k in range(2 * n) if k != i]
        total += -z[i] @ z[j] / t + math.log(sum(math.exp(s) for s in sims))
    return total / (2 * n)


@pytest.mark.parametrize("t", [0.1, 0.5])
def test_nt_xent_equals_a_direct_computation(t):
    rng = np.random.default_rng(0)
    z1, z2 = rng.normal(size=(5, 7)), rng.normal(size=(5, 7))
    got = nt_xent(torch.tensor(z1), torch.tensor(z2), temperature=t)
    assert float(got) == pytest.approx(_direct_nt_xent(z1, z2, t), rel=1e-9)


def test_nt_xent_is_low_for_matching_pairs_and_high_for_swapped_ones():
    z = torch.eye(8)
    assert float(nt_xent(z, z, 0.1)) < 0.01
    assert float(nt_xent(z, z.roll(1, 0), 0.1)) > 5


def lr_at(step: int, *, steps: int, lr: float, warmup_steps: int) -> float:
    """The schedule's formula, written out here: linear warm-up to ``lr``, then half a cosine down to 0."""
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    return lr * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup_steps) / max(1, steps - warmup_steps))))


def test_schedule_warms_up_then_decays_to_zero():
    assert [WarmupCosine(100, 10)(s) for s in range(101)] == pytest.approx(
        [lr_at(s, steps=100, lr=1.0, warmup_steps=10) for s in range(101)], rel=1e-12)
    lrs = [lr_at(s, steps=100, lr=1.0, warmup_steps=10) for s in range(101)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:])) and lrs[100] == pytest.approx(0.0)


def test_the_scheduler_follows_lr_at():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.5)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, WarmupCosine(steps=20, warmup_steps=4))
    got = []
    for _ in range(21):
        got.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    assert got == pytest.approx([lr_at(s, steps=20, lr=0.5, warmup_steps=4) for s in range(21)], rel=1e-12)
    assert sched.state_dict()["lr_lambdas"] == [{"steps": 20, "warmup_steps": 4}]  # saved with the checkpoint


# --- a tiny run ------------------------------------------------------------------------------------------------------
def test_tiny_run_learns_and_its_encoder_loads_and_embeds(waves, tmp_path):
    path = train(waves, tmp_path, steps=8, seed=0, **TINY)
    losses = _losses(tmp_path)
    assert len(losses) == 8 and all(map(math.isfinite, losses))
    assert np.mean(losses[-3:]) < np.mean(losses[:3])
    state = torch.load(path, weights_only=True)
    assert not any(k.startswith(("fc.", "head.")) for k in state)
    resnet18().load_state_dict(state, strict=True)
    meta = json.loads((tmp_path / "encoder.json").read_text())
    assert meta["arch"] == "resnet18" and meta["steps_done"] == 8 and meta["data"]["imagettes"] == 64
    assert meta["data"]["ids_sha256"] and meta["config"]["seed"] == 0
    # the sidecar's format record and what load_encoder reads back, beside the run's own keys
    assert meta["format"] == "xwvnet-encoder" and meta["version"] == 1 and meta["name"] == tmp_path.name
    assert meta["in_chans"] == 3 and meta["transform"] == "wvnet" and meta["embedding_size"] == 512
    assert meta["stopped"] == "finished" and meta["config"]["precision"] == "float32"  # auto on the CPU
    assert meta["provenance"]["imagettes"] == 64 and meta["provenance"]["steps_done"] == 8
    assert set(meta["versions"]) == {"xwvnet", "torch"}

    encoder = xwvnet.load_encoder(path)
    assert encoder.arch == "resnet18"
    assert encoder.name == tmp_path.name and encoder.transform == "wvnet"
    assert encoder.metadata["steps_done"] == 8
    embedded = xwvnet.embed(waves.isel({S.IMAGETTE: slice(0, 4)}), encoder=path)
    emb = embedded[S.EMBEDDING].values
    assert emb.shape == (4, 512) and np.isfinite(emb).all()


def test_interrupted_run_resumes_exactly(waves, tmp_path):
    straight = tmp_path / "straight"
    train(waves, straight, steps=4, seed=1, checkpoint_every=2, **TINY)
    broken = tmp_path / "broken"
    train(waves, broken, steps=4, seed=1, checkpoint_every=2, stop_at_step=3, **TINY)
    assert load_checkpoint(broken / "checkpoint.pt")["step"] == 3
    assert json.loads((broken / "encoder.json").read_text())["stopped"] == "stop_at_step"
    train(waves, broken, steps=4, seed=1, checkpoint_every=2, resume=True, **TINY)
    assert _losses(broken) == _losses(straight)  # same seed: same curve, across the interruption too
    assert load_checkpoint(broken / "checkpoint.pt")["step"] == 4
    a = torch.load(straight / "encoder.pt", weights_only=True)
    b = torch.load(broken / "encoder.pt", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)
    # the scheduler, the optimizer and every RNG came back: the same states as the uninterrupted run's at step 4
    assert _lrs(broken) == _lrs(straight)
    end_straight, end_broken = (load_checkpoint(p / "checkpoint.pt") for p in (straight, broken))
    assert end_broken["scheduler"] == end_straight["scheduler"]
    assert end_broken["scheduler"]["last_epoch"] == 4 and end_broken["scheduler"]["_last_lr"] == [
        lr_at(4, steps=4, lr=TINY["lr"], warmup_steps=1)] * 2
    _assert_same(end_broken["optimizer"], end_straight["optimizer"])
    _assert_same(end_broken["rng"], end_straight["rng"])


def _assert_same(a, b) -> None:
    """Nested dicts/lists of tensors and plain values, equal bit for bit."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _assert_same(x, y)
    else:
        assert a == b


def test_the_stopped_run_saves_the_scheduler_at_its_step(waves, tmp_path):
    train(waves, tmp_path, steps=6, seed=1, stop_at_step=3, **TINY)
    saved = load_checkpoint(tmp_path / "checkpoint.pt")
    assert saved["version"] == 2 and saved["scheduler"]["last_epoch"] == 3
    expected = lr_at(3, steps=6, lr=TINY["lr"], warmup_steps=1)
    assert saved["scheduler"]["_last_lr"] == [expected] * 2
    assert [g["lr"] for g in saved["optimizer"]["param_groups"]] == [expected] * 2


def _seeded_states(seed: int) -> dict:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    random.random(), np.random.rand(), torch.rand(1)  # not a freshly seeded state
    return rng_state()


def test_rng_states_round_trip_through_a_safe_file(tmp_path):
    state = _seeded_states(5)
    torch.save(state, tmp_path / "rng.pt")
    expected = (random.random(), float(np.random.rand()), torch.rand(3), np.random.normal())
    random.seed(0), np.random.seed(0), torch.manual_seed(0)
    set_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True))
    got = (random.random(), float(np.random.rand()), torch.rand(3), np.random.normal())
    assert got[:2] == expected[:2] and torch.equal(got[2], expected[2]) and got[3] == expected[3]


def test_resume_restores_every_rng(waves, tmp_path):
    train(waves, tmp_path, steps=4, seed=1, stop_at_step=2, **TINY)
    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    planted = _seeded_states(99)  # not what the run's seed gives: only a restore brings these back
    ckpt["rng"] = [planted]
    torch.save(ckpt, tmp_path / "checkpoint.pt")
    (tmp_path / "checkpoint.json").unlink()  # edited by hand: its recorded hash no longer holds (checked below)
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    train(waves, tmp_path, steps=4, seed=1, resume=True, **TINY)
    # nothing in the loop draws from the global generators, so they end as the checkpoint left them
    _assert_same(rng_state(), planted)
    _assert_same(load_checkpoint(tmp_path / "checkpoint.pt")["rng"], [planted])


def test_a_version_1_checkpoint_still_resumes_exactly(waves, tmp_path):
    straight = tmp_path / "straight"
    train(waves, straight, steps=4, seed=1, **TINY)
    old = tmp_path / "old"
    train(waves, old, steps=4, seed=1, stop_at_step=3, **TINY)
    ckpt = torch.load(old / "checkpoint.pt", weights_only=True)
    config = json.loads(ckpt["config"])
    config["precision"] = "fp32"  # the old spelling, as version 1 wrote it
    for group in ckpt["optimizer"]["param_groups"]:
        del group["initial_lr"]  # version 1 had no scheduler to add it
    ckpt.update(version=1, config=json.dumps(config), rng={"torch": ckpt["rng"][0]["torch"]},
                scheduler={"kind": "warmup-cosine", "step": 3, "steps": 4, "warmup_steps": 1, "lr": TINY["lr"]})
    del ckpt["scaler"]
    torch.save(ckpt, old / "checkpoint.pt")
    (old / "checkpoint.json").unlink()  # version 1 wrote no sidecar
    train(waves, old, steps=4, seed=1, resume=True, **TINY)
    assert _losses(old) == _losses(straight) and _lrs(old) == _lrs(straight)
    rebuilt, kept = (load_checkpoint(p / "checkpoint.pt")["scheduler"] for p in (old, straight))
    for key in ("last_epoch", "_last_lr", "base_lrs", "lr_lambdas"):  # not torch's call counter _step_count
        assert rebuilt[key] == kept[key], key


# --- precision and device ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("old,new", [("fp32", "float32"), ("bf16", "bfloat16")])
def test_old_precision_spellings_are_refused_naming_the_new_ones(waves, tmp_path, old, new):
    with pytest.raises(ValueError, match=f"old spelling: use '{new}'.*'auto', 'float32', 'bfloat16', 'float16'"):
        train(waves, tmp_path, steps=1, precision=old, **TINY)
    with pytest.raises(ValueError, match="precision must be one of"):
        train(waves, tmp_path, steps=1, precision="half", **TINY)
    assert not (tmp_path / "encoder.pt").exists()


@pytest.mark.parametrize("precision", ["bfloat16", "float16"])
def test_reduced_precision_trains_on_the_cpu(waves, tmp_path, precision):
    train(waves, tmp_path, steps=2, seed=0, precision=precision, device="cpu", **TINY)
    losses = _losses(tmp_path)
    assert len(losses) == 2 and all(map(math.isfinite, losses))
    meta = json.loads((tmp_path / "encoder.json").read_text())
    assert meta["config"]["precision"] == precision
    ckpt = load_checkpoint(tmp_path / "checkpoint.pt")
    assert (ckpt["scaler"] is not None) == (precision == "float16")  # float16 scales the loss, and saves the scale


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_without_a_gpu_is_a_clear_error(waves, tmp_path):
    with pytest.raises(ValueError, match="no visible CUDA GPU"):
        train(waves, tmp_path, steps=1, device="cuda", **TINY)


def test_a_bad_checkpoint_is_refused(waves, tmp_path):
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable"):
        train(waves, tmp_path, steps=2, resume=True, **TINY)

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo owned",))

    with (tmp_path / "checkpoint.pt").open("wb") as f:
        torch.save({"format": "xwvnet-simclr-checkpoint", "x": Evil()}, f, pickle_module=pickle)
    with pytest.raises(CheckpointError, match="not a readable"):
        load_checkpoint(tmp_path / "checkpoint.pt")
    torch.save({"some": torch.zeros(1)}, tmp_path / "checkpoint.pt")
    with pytest.raises(CheckpointError, match="not an xwvnet training checkpoint"):
        load_checkpoint(tmp_path / "checkpoint.pt")


def test_resume_with_other_settings_is_refused(waves, tmp_path):
    train(waves, tmp_path, steps=2, seed=0, **TINY)
    with pytest.raises(CheckpointError, match="configuration changed.*temperature"):
        train(waves, tmp_path, steps=2, seed=0, temperature=0.2, resume=True, **TINY)


def test_init_from_a_trained_encoder_and_arch_mismatch(waves, tmp_path):
    first = train(waves, tmp_path / "a", steps=1, **TINY)
    second = train(waves, tmp_path / "b", steps=1, init=first, **TINY)
    assert json.loads((tmp_path / "b" / "encoder.json").read_text())["config"]["init"] == str(first)
    assert torch.load(second, weights_only=True).keys() == torch.load(first, weights_only=True).keys()
    with pytest.raises(ValueError, match="arch='resnet50' but"):
        train(waves, tmp_path / "c", steps=1, init=first, arch="resnet50", **TINY)


# --- DDP -------------------------------------------------------------------------------------------------------------
def _global_views(n: int = 8, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(123)
    return torch.randn(n, 3, size, size, generator=g), torch.randn(n, 3, size, size, generator=g)


def _tiny_model() -> SimCLR:
    torch.manual_seed(0)
    backbone = resnet18()
    return SimCLR(backbone, ProjectionHead(backbone.num_features, 64, 32))


def _ddp_worker(rank: int, world: int, ports: tuple[int, int], out: str, store: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(ports[0]), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    model = _tiny_model()
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    v1, v2 = _global_views()
    part = slice(rank * 4, (rank + 1) * 4)
    simclr_loss(ddp, v1[part], v2[part], 0.1, gather=True).backward()
    if rank == 0:
        torch.save({k: p.grad for k, p in model.named_parameters()}, Path(out) / "ddp_grads.pt")
    dist.destroy_process_group()
    # the whole entry point, as under torchrun (it joins the group from the environment; a fresh port)
    os.environ["MASTER_PORT"] = str(ports[1])
    train(store, Path(out) / "run", steps=2, device="cpu", **TINY)


def _free_ports() -> tuple[int, int]:
    with socket.socket() as a, socket.socket() as b:
        a.bind(("127.0.0.1", 0))
        b.bind(("127.0.0.1", 0))
        return a.getsockname()[1], b.getsockname()[1]


def test_ddp_two_processes_match_one_process(waves, tmp_path):
    from xwvnet.io.store import to_store

    store = tmp_path / "s.zarr"
    to_store(waves.isel({S.IMAGETTE: slice(0, 48)}), store)
    context = torch.multiprocessing.start_processes(_ddp_worker, args=(2, _free_ports(), str(tmp_path), str(store)),
                                                    nprocs=2, start_method="spawn", join=False)
    deadline = time.monotonic() + 240  # a rank that dies leaves the other waiting in a collective: never hang CI
    while not context.join(timeout=5):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail("the two DDP ranks did not finish within 240 s (one is stuck in a collective)")
    ddp = torch.load(tmp_path / "ddp_grads.pt", weights_only=True)

    # one process, same global batch; batch norm normalises each rank's half (DDP on CPU has no SyncBatchNorm)
    model = _tiny_model()
    v1, v2 = _global_views()
    z = [model(torch.cat([v1[p], v2[p]])).chunk(2) for p in (slice(0, 4), slice(4, 8))]
    nt_xent(torch.cat([z[0][0], z[1][0]]), torch.cat([z[0][1], z[1][1]]), 0.1).backward()
    for name, p in model.named_parameters():  # float32 sums in another order: compare each tensor as a whole
        assert float((ddp[name] - p.grad).norm()) <= 1e-5 * float(p.grad.norm()) + 1e-12, name

    meta = json.loads((tmp_path / "run" / "encoder.json").read_text())
    assert meta["config"]["world_size"] == 2 and meta["steps_done"] == 2
    assert len(_losses(tmp_path / "run")) == 2
    resnet18().load_state_dict(torch.load(tmp_path / "run" / "encoder.pt", weights_only=True), strict=True)


def test_max_seconds_stops_in_time_and_says_so(waves, tmp_path):
    path = train(waves, tmp_path, steps=10_000, seed=0, max_seconds=0.5, **TINY)
    meta = json.loads((tmp_path / "encoder.json").read_text())
    assert meta["stopped"] == "max_seconds" and 1 <= meta["steps_done"] < 10_000
    assert meta["config"]["steps"] == 10_000  # the schedule still follows steps: resume=True finishes the curve
    resnet18().load_state_dict(torch.load(path, weights_only=True), strict=True)


def test_xwvnet_train_is_the_function_after_a_submodule_import():
    import xwvnet.training.loader  # noqa: F401

    assert callable(xwvnet.train)
    with pytest.raises(TypeError, match="expected an imagette Dataset"):
        xwvnet.train(42, "unused")


def test_the_transform_setting_is_recorded_and_refused_when_unknown(waves, tmp_path):
    path = train(waves, tmp_path / "r", steps=1, transform="wvnet-reflect", **TINY)
    assert xwvnet.load_encoder(path).transform == "wvnet-reflect"
    with pytest.raises(ValueError, match="transform='photo' is not allowed"):
        train(waves, tmp_path / "x", steps=1, transform="photo", **TINY)
    with pytest.raises(TypeError, match="did you mean 'temperature'"):
        train(waves, tmp_path / "y", steps=1, temprature=0.2, **TINY)


def test_a_view_setting_inside_augment_that_contradicts_the_run_is_refused(waves, tmp_path):
    from xwvnet.training.augment import AugmentConfig

    for augment in ({"flip": False}, AugmentConfig(flip=False), AugmentConfig(size=48)):
        with pytest.raises(ValueError, match="contradicts"):
            train(waves, tmp_path / "r", steps=1, augment=augment, **TINY)
    assert not (tmp_path / "r").exists()  # refused before anything is written


# --- TrainConfig: the one home of the settings ------------------------------------------------------------------------
def test_trainconfig_checks_every_field_when_made():
    from xwvnet.errors import InvalidArgumentError
    from xwvnet.training import TrainConfig

    for bad, message in [({"batch_size": 1}, "batch_size=1 is not allowed: batch_size must be an integer >= 2"),
                         ({"lr": 0.0}, "lr=0.0 is not allowed: lr must be None or a finite number > 0"),
                         ({"arch": "vit"}, "arch='vit' is not allowed: arch must be None or one of"),
                         ({"precision": "bf16"}, "precision='bf16' is the old spelling: use 'bfloat16'"),
                         ({"steps": 10, "warmup_steps": 11}, "from 0 to steps=10"),
                         ({"flip": "no"}, "flip='no' is not allowed: flip must be True or False"),
                         ({"world_size": 0}, "world_size=0 is not allowed"),
                         ({"augment": {"rotate90": False}}, "contradicts rotate90=True")]:
        with pytest.raises(InvalidArgumentError, match=message.replace("(", r"\(").replace("[", r"\[")):
            TrainConfig(**bad)
    config = TrainConfig(steps=10)
    with pytest.raises(InvalidArgumentError, match="steps=0"):
        dataclasses.replace(config, steps=0)  # a changed copy is checked too
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.steps = 0  # and none is changed in place, unchecked


def test_train_takes_its_settings_and_their_defaults_from_trainconfig():
    import inspect

    from xwvnet.training import TrainConfig
    from xwvnet.training.simclr import FREE, SETTINGS

    defaults = TrainConfig()
    parameters = inspect.signature(train).parameters
    for f in dataclasses.fields(TrainConfig):
        if f.name == "world_size":  # set by the run
            assert f.name not in parameters and f.name not in SETTINGS
            continue
        assert parameters[f.name].kind is inspect.Parameter.KEYWORD_ONLY
        assert parameters[f.name].default == getattr(defaults, f.name), f.name
    accessor = inspect.signature(xr.Dataset().wvnet.train).parameters  # ds.wvnet.train shows them too
    assert "settings" not in accessor and accessor["steps"].default == defaults.steps
    assert set(FREE) == {"checkpoint_every", "num_workers", "device", "compile", "bn_imagettes"}


def test_trainconfig_decides_what_it_leaves_to_the_run():
    from xwvnet.training import TrainConfig
    from xwvnet.training.augment import AugmentConfig
    from xwvnet.training.simclr import CONTINUE_LR, FRESH_LR, MAX_LOADER_WORKERS

    run = {"world": 2, "threads": 64, "arch": "resnet18", "transform": "wvnet", "var": S.QUICKLOOK,
           "augment": AugmentConfig(size=64)}
    cpu = TrainConfig(steps=400).resolved(device=torch.device("cpu"), **run)
    assert (cpu.lr, cpu.warmup_steps, cpu.precision, cpu.num_workers, cpu.world_size) == (FRESH_LR, 20, "float32", 0, 2)
    assert cpu.device == "cpu" and cpu.augment["size"] == 64 and cpu.transform == "wvnet"
    gpu = TrainConfig(init="w.pt", steps=10).resolved(device=torch.device("cuda:1"), **run)
    assert (gpu.lr, gpu.warmup_steps, gpu.precision, gpu.num_workers) == (CONTINUE_LR, 1, "bfloat16",
                                                                           MAX_LOADER_WORKERS)
    asked = TrainConfig(lr=5e-4, warmup_steps=0, precision="float16", num_workers=3, transform="wvnet-reflect")
    kept = asked.resolved(device=torch.device("cuda:0"), **run)
    assert (kept.lr, kept.warmup_steps, kept.precision, kept.num_workers, kept.transform) == (
        5e-4, 0, "float16", 3, "wvnet-reflect")
