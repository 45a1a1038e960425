"""SimCLR training (xwvnet.train): the schedule, a tiny run that learns, outputs that embed and load back, exact
resume (model, optimizer, scheduler, every RNG), runs that never overwrite, arguments refused before any work,
continuing from weights, TrainConfig, precision and device (CUDA without a GPU, and on a GPU), and DDP (gloo, 2 CPU
processes) against one process on the same global batch."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import random
import socket
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr

import xwvnet
from tests._training import TINY, TINY_CPU, copy_run, digest, seeded_rng_states
from xwvnet import schema as S
from xwvnet.models.encoder import Encoder
from xwvnet.models.resnet import resnet18
from xwvnet.training import CheckpointError, load_checkpoint, nt_xent, train
from xwvnet.training.checkpoint import rng_state
from xwvnet.training.head import ProjectionHead, SimCLR
from xwvnet.training.loss import simclr_loss
from xwvnet.training.simclr import WarmupCosine

torch.set_num_threads(1)


def _losses(out: Path) -> list[float]:
    with (out / "loss.csv").open() as f:
        return [float(row["loss"]) for row in csv.DictReader(f)]


def _lrs(out: Path) -> list[str]:
    with (out / "loss.csv").open() as f:
        return [(row["step"], row["lr"]) for row in csv.DictReader(f)]


# --- the schedule ----------------------------------------------------------------------------------------------
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
    assert sched.state_dict()["lr_lambdas"] == [{"steps": 20, "warmup_steps": 4, "start": 0,
                                                 "start_progress": 0.0}]  # saved with the checkpoint


def test_a_refitted_schedule_goes_on_without_a_jump_and_ends_at_zero():
    f = WarmupCosine(steps=100, warmup_steps=10)
    before = [f(s) for s in range(61)]
    f.refit(60, 150)  # the run turned out faster: it now ends at step 150
    assert f(60) == pytest.approx(before[60], rel=1e-12)  # no jump where it was refitted
    after = [f(s) for s in range(60, 151)]
    assert all(a > b for a, b in zip(after, after[1:])) and after[-1] == 0.0 and f(200) == 0.0
    f.refit(140, 141)  # slower: one step left, which is the schedule's last
    assert f(140) == pytest.approx(after[80], rel=1e-12) and f(141) == 0.0
    g = WarmupCosine(steps=100, warmup_steps=10)
    g.refit(5, 50)  # during the warm-up: the warm-up stays, the cosine is the plain one of 50 steps
    assert [g(s) for s in range(51)] == pytest.approx([lr_at(s, steps=50, lr=1.0, warmup_steps=10) for s in range(51)])


# --- a tiny run, and exact resume --------------------------------------------------------------------------------
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


def test_resume_restores_every_rng(waves, tmp_path):
    train(waves, tmp_path, steps=4, seed=1, stop_at_step=2, **TINY)
    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    planted = seeded_rng_states(99)  # not what the run's seed gives: only a restore brings these back
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


def test_a_budget_too_short_to_fit_a_schedule_stops_in_time_and_says_so(waves, tmp_path):
    # less than the first steps, timed to fit the schedule, take
    path = train(waves, tmp_path, steps=10_000, seed=0, max_seconds=0.5, bn_imagettes=0, **TINY)
    meta = json.loads((tmp_path / "encoder.json").read_text())
    assert meta["stopped"] == "max_seconds" and 1 <= meta["steps_done"] < 10_000
    assert meta["schedule"]["fitted"] is False and meta["config"]["steps"] == 10_000  # the cap, nothing fitted yet
    assert json.loads(load_checkpoint(tmp_path / "checkpoint.pt")["schedule"])["fitted"] is False
    resnet18().load_state_dict(torch.load(path, weights_only=True), strict=True)


# --- a schedule fitted to max_seconds --------------------------------------------------------------------------------
def _schedule_of(out: Path) -> WarmupCosine:
    """The schedule the run's checkpoint recorded, rebuilt."""
    return WarmupCosine(**load_checkpoint(out / "checkpoint.pt")["scheduler"]["lr_lambdas"][0])


def _assert_annealed(out: Path, peak: float) -> int:
    """The run ended at the end of its recorded schedule, its last step at the schedule's last learning rate."""
    meta = json.loads((out / "encoder.json").read_text())
    ckpt = load_checkpoint(out / "checkpoint.pt")
    schedule, n = _schedule_of(out), meta["steps_done"]
    assert meta["stopped"] == "finished" and meta["schedule"]["fitted"] is True
    assert n == schedule.steps == meta["schedule"]["steps"] == meta["config"]["steps"]
    assert json.loads(ckpt["config"])["steps"] == n and json.loads(ckpt["schedule"])["steps"] == n
    assert ckpt["step"] == n and ckpt["scheduler"]["last_epoch"] == n and ckpt["scheduler"]["_last_lr"] == [0.0] * 2
    logged = _lrs(out)
    assert [int(k) for k, _ in logged] == list(range(1, n + 1))
    assert float(logged[-1][1]) == pytest.approx(peak * schedule(n - 1), rel=1e-5)  # the schedule's last value
    assert float(logged[-1][1]) < float(logged[-2][1]) and schedule(n) == 0.0  # on its way down, to 0 at its end
    return n


class _Clock:
    """A stand-in for ``time`` in the training module: each reading advances it by ``tick`` seconds, so the pace
    (one reading per step) and the fitted schedule are the same on every machine."""

    def __init__(self, tick: float) -> None:
        self.now, self.tick = 1000.0, tick

    def perf_counter(self) -> float:
        self.now += self.tick
        return self.now


def test_max_seconds_fits_the_schedule_and_the_run_ends_in_time_annealed(waves, tmp_path):
    """On the real clock: the schedule is fitted to the budget and completed. How close the run ends to the budget
    is a speed figure, measured by benchmarks/train.py, not here (the steady-clock test below checks the logic)."""
    budget = 10.0
    train(waves, tmp_path, seed=0, max_seconds=budget, bn_imagettes=8, **TINY)
    meta = json.loads((tmp_path / "encoder.json").read_text())
    record = meta["schedule"]
    if not record["fitted"] or meta["stopped"] != "finished":
        pytest.skip(f"the machine is too busy to keep a {budget:g}-s budget (set-up and first step took "
                    f"{record['setup_seconds']:.1f} s; the run {meta['stopped']})")
    n = _assert_annealed(tmp_path, TINY["lr"])
    assert n >= 1 and record["estimated_steps"] >= 1 and record["max_seconds"] == budget
    assert record["step_seconds"] > 0 and record["reserved_seconds"] > record["batch_norm_seconds"] > 0


def test_a_fitted_schedule_is_recorded_and_a_resumed_run_follows_it(waves, tmp_path, monkeypatch):
    from xwvnet.training import simclr

    settings = dict(seed=2, max_seconds=1.0, bn_imagettes=0, checkpoint_every=1000, **TINY)
    clock = _Clock(0.05)
    monkeypatch.setattr(simclr, "time", clock)
    straight = tmp_path / "straight"
    train(waves, straight, **settings)
    n = _assert_annealed(straight, TINY["lr"])
    record = json.loads((straight / "encoder.json").read_text())["schedule"]
    assert 8 < n < 25 and record["refits"] == 0 and record["step_seconds"] == pytest.approx(0.05)
    # on this clock the steps and the final checkpoint end within the budget and what it reserved for the outputs
    assert 1.0 - 0.1 <= clock.now - 1000.0 <= 1.0 + record["reserved_seconds"]
    monkeypatch.setattr(simclr, "time", _Clock(0.05))
    broken = tmp_path / "broken"
    train(waves, broken, stop_at_step=7, **settings)
    saved = load_checkpoint(broken / "checkpoint.pt")
    assert saved["step"] == 7 and json.loads(saved["config"])["steps"] == n
    assert json.loads(saved["schedule"])["fitted"] is True and _schedule_of(broken).steps == n
    # resumed at another pace, a new fit would give another length: the run follows the recorded one instead
    monkeypatch.setattr(simclr, "time", _Clock(0.001))
    train(waves, broken, resume=True, **settings)
    assert _assert_annealed(broken, TINY["lr"]) == n
    assert _lrs(broken) == _lrs(straight) and _losses(broken) == _losses(straight)
    # asking again for the cap it had (none) and its warm-up is the same run; another length is refused
    with pytest.raises(CheckpointError, match="steps"):
        train(waves, broken, resume=True, **{**settings, "steps": n + 5})


def test_steps_that_fit_in_max_seconds_win_and_make_the_plain_schedule(waves, tmp_path):
    train(waves, tmp_path / "plain", steps=6, seed=1, bn_imagettes=0, **TINY)
    train(waves, tmp_path / "capped", steps=6, seed=1, max_seconds=600, bn_imagettes=0, **TINY)  # the fewer: 6
    assert _assert_annealed(tmp_path / "capped", TINY["lr"]) == 6
    assert _lrs(tmp_path / "capped") == _lrs(tmp_path / "plain")
    record = json.loads((tmp_path / "capped" / "encoder.json").read_text())["schedule"]
    assert record["asked_steps"] == 6 and record["estimated_steps"] == 6
    assert json.loads((tmp_path / "plain" / "encoder.json").read_text())["schedule"] is None


# --- runs that never overwrite -------------------------------------------------------------------------------------
def test_a_finished_run_is_not_overwritten_without_resume_or_overwrite(few_waves, finished_run, tmp_path):
    run = copy_run(finished_run, tmp_path / "run")
    before = {f.name: digest(f) for f in run.iterdir()}
    with pytest.raises(FileExistsError, match=r"already holds the outputs.*encoder\.pt.*resume=True.*overwrite=True"):
        train(few_waves, run, steps=2, seed=1, **TINY_CPU)
    assert {f.name: digest(f) for f in run.iterdir()} == before  # nothing touched
    for name in ("encoder.pt", "checkpoint.pt", "loss.csv"):  # any one of them is a run's output
        alone = tmp_path / f"only-{name}"
        alone.mkdir()
        (alone / name).write_bytes((run / name).read_bytes())
        with pytest.raises(FileExistsError, match=name.replace(".", r"\.")):
            train(few_waves, alone, steps=1, **TINY_CPU)


def test_overwrite_replaces_the_run_and_the_new_outputs_are_consistent(few_waves, finished_run, tmp_path):
    run = copy_run(finished_run, tmp_path / "run")
    old_weights = digest(run / "encoder.pt")
    train(few_waves, run, steps=3, seed=1, overwrite=True, **TINY_CPU)
    meta = json.loads((run / "encoder.json").read_text())
    assert meta["config"]["seed"] == 1 and meta["steps_done"] == 3
    assert meta["weights_sha256"] == digest(run / "encoder.pt") != old_weights
    assert json.loads((run / "checkpoint.json").read_text())["sha256"] == digest(run / "checkpoint.pt")
    assert len((run / "loss.csv").read_text().splitlines()) == 1 + 3 and not (run / "loss.csv.new").exists()
    assert load_checkpoint(run / "checkpoint.pt")["step"] == 3


def test_an_overwrite_that_fails_before_its_first_checkpoint_leaves_the_old_run_whole(few_waves, finished_run, tmp_path,
                                                                                    monkeypatch):
    from xwvnet.training import simclr

    run = copy_run(finished_run, tmp_path / "run")
    before = {f.name: digest(f) for f in run.iterdir()}
    calls = []
    real = simclr.simclr_loss

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("killed at step 2")
        return real(*args, **kwargs)

    monkeypatch.setattr(simclr, "simclr_loss", failing)
    with pytest.raises(RuntimeError, match="killed at step 2"):
        train(few_waves, run, steps=4, seed=1, overwrite=True, checkpoint_every=3, **TINY_CPU)
    assert {f.name: digest(f) for f in run.iterdir()} == before  # the partial log is gone, the old run intact


def test_resume_and_overwrite_together_and_resume_with_nothing_to_resume_are_refused(few_waves, finished_run, tmp_path):
    with pytest.raises(ValueError, match="resume=True and overwrite=True contradict"):
        train(few_waves, tmp_path / "new", steps=1, resume=True, overwrite=True, **TINY_CPU)
    run = copy_run(finished_run, tmp_path / "run")
    (run / "checkpoint.pt").unlink()
    (run / "checkpoint.json").unlink()
    with pytest.raises(FileExistsError, match=r"no checkpoint\.pt to resume from.*overwrite=True"):
        train(few_waves, run, steps=2, resume=True, **TINY_CPU)
    fresh = train(few_waves, tmp_path / "fresh", steps=1, resume=True, **TINY_CPU)  # nothing there: a new run
    assert fresh.is_file()


# --- bad arguments, refused before any work -----------------------------------------------------------------------
BAD = [
    ("batch_size", 0, ">= 2"), ("batch_size", 1, ">= 2"), ("batch_size", 2.5, ">= 2"), ("image_size", 0, ">= 32"),
    ("image_size", 16, ">= 32"), ("steps", 0, ">= 1"), ("lr", 0.0, "> 0"), ("lr", -1e-3, "> 0"),
    ("lr", float("nan"), "finite"), ("temperature", 0, "> 0"), ("weight_decay", -1.0, ">= 0"),
    ("projection_dim", 0, ">= 1"), ("checkpoint_every", 0, ">= 1"), ("seed", -1, ">= 0"),
    ("warmup_steps", 5, "from 0 to steps=2"), ("warmup_steps", -1, "from 0"), ("grad_clip", -1.0, "None, 0"),
    ("num_workers", -1, ">= 0"), ("shuffle_size", 0, ">= 1"), ("max_seconds", 0, "> 0"),
    ("stop_at_step", 0, ">= 1"), ("resume", "yes", "True or False"),
]


@pytest.mark.parametrize("name,value,allowed", BAD, ids=[f"{n}={v!r}" for n, v, _ in BAD])
def test_bad_training_arguments_are_refused_before_any_work(few_waves, tmp_path, name, value, allowed):
    kwargs = {**TINY_CPU, "steps": 2, name: value}
    with pytest.raises(ValueError, match=rf"^{name}={value!r}".replace("(", r"\(").replace(")", r"\)")) as err:
        train(few_waves, tmp_path / "run", **kwargs)
    assert allowed in str(err.value)
    assert not (tmp_path / "run").exists()


def test_a_batch_larger_than_the_data_is_refused_before_any_work(few_waves, tmp_path):
    with pytest.raises(ValueError, match="batch_size=32 is more than the 16 imagettes"):
        train(few_waves, tmp_path / "run", steps=1, **{**TINY_CPU, "batch_size": 32})
    assert not (tmp_path / "run").exists()


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

    for augment in ({"flip": True}, AugmentConfig(flip=True), AugmentConfig(size=48)):
        with pytest.raises(ValueError, match="contradicts"):
            train(waves, tmp_path / "r", steps=1, augment=augment, **TINY)
    assert not (tmp_path / "r").exists()  # refused before anything is written


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


def test_cuda_without_a_gpu_is_a_clear_error(waves, tmp_path, no_gpu):
    with pytest.raises(ValueError, match="no visible CUDA GPU"):
        train(waves, tmp_path, steps=1, device="cuda", **TINY)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_tiny_run_on_cuda_trains_and_its_encoder_loads_on_the_cpu(waves, tmp_path):
    """device='cuda': the same loop on the GPU (float32), finite losses, the run's device recorded, and weights saved
    for the CPU that load strictly and embed there."""
    path = train(waves, tmp_path, steps=2, seed=0, device="cuda", precision="float32", **TINY)
    losses = _losses(tmp_path)
    assert len(losses) == 2 and all(map(math.isfinite, losses))
    meta = json.loads((tmp_path / "encoder.json").read_text())
    assert meta["config"]["device"] == "cuda:0" and meta["config"]["precision"] == "float32"
    assert meta["steps_done"] == 2 and meta["stopped"] == "finished"
    state = torch.load(path, weights_only=True)
    assert {t.device.type for t in state.values()} == {"cpu"}
    resnet18().load_state_dict(state, strict=True)
    emb = xwvnet.embed(waves.isel({S.IMAGETTE: slice(0, 4)}), encoder=path, device="cpu")[S.EMBEDDING].values
    assert emb.shape == (4, 512) and np.isfinite(emb).all()


# --- continuing training from weights (init=) ----------------------------------------------------------------------
def test_init_from_a_trained_encoder_and_arch_mismatch(waves, tmp_path):
    first = train(waves, tmp_path / "a", steps=1, **TINY)
    second = train(waves, tmp_path / "b", steps=1, init=first, **TINY)
    assert json.loads((tmp_path / "b" / "encoder.json").read_text())["config"]["init"] == str(first)
    assert torch.load(second, weights_only=True).keys() == torch.load(first, weights_only=True).keys()
    with pytest.raises(ValueError, match="arch='resnet50' but"):
        train(waves, tmp_path / "c", steps=1, init=first, arch="resnet50", **TINY)


# The default learning rate keeps what the weights know. The published WV-Net weights are not needed: a random-init
# ResNet-18 whose batch-norm statistics were measured on imagettes (as published weights carry the statistics of their
# data), saved as a weights file with its sidecar, stands in for them. A short continued run from it must change the
# embeddings of held-out imagettes less than a fresh run (the same seed's random init, the defaults of a fresh run)
# does. Both save batch-norm statistics of embedding inputs (``bn_imagettes``), as the stand-in's are.
SHORT = dict(image_size=32, batch_size=16, steps=6, warmup_steps=1, progress=False, seed=3)


@pytest.fixture(scope="module")
def data():
    return (xwvnet.synthetic.imagettes(48, seed=0, size=(96, 96), chunks=16).load(),
            xwvnet.synthetic.imagettes(12, seed=1, size=(96, 96)).load())


def _standin(ds, path) -> Encoder:
    """Seed 3's random init with batch-norm statistics measured on ``ds``, saved as ``path`` (+ its sidecar)."""
    module = Encoder("random", "resnet18", seed=3).build()
    for layer in module.modules():
        if isinstance(layer, torch.nn.BatchNorm2d):
            layer.reset_running_stats()
            layer.momentum = None  # a plain average over the batches below
    module.train()
    with torch.no_grad():
        module(Encoder.from_module(module).preprocess(ds.quicklook.values, ds.valid_lines.values,
                                                      ds.valid_samples.values))
    for layer in module.modules():
        if isinstance(layer, torch.nn.BatchNorm2d):
            layer.momentum = 0.1
    return Encoder.from_module(module.eval(), name="stand-in").save(path)


def _embedding(ds, encoder) -> np.ndarray:
    return xwvnet.embed(ds, encoder=encoder, batch_size=12).embedding.values.astype(np.float64)


def _change(a: np.ndarray, b: np.ndarray) -> float:
    """Relative change of the embeddings, in the units of their spread across imagettes."""
    return float(np.linalg.norm(a - b) / np.linalg.norm(a - a.mean(0)))


def test_continued_training_changes_held_out_embeddings_less_than_a_fresh_run(tmp_path, data):
    unlabelled, held_out = data
    # the stand-in for published weights: the kernels a fresh run with seed=3 starts from, with measured statistics
    standin = _standin(unlabelled, tmp_path / "standin.pt")
    continued = xwvnet.train(unlabelled, tmp_path / "continued", init=str(standin.path), **SHORT)
    # the same embedding transform as the stand-in's, so that only the weights differ
    fresh = xwvnet.train(unlabelled, tmp_path / "fresh", arch="resnet18", transform="wvnet", **SHORT)

    meta = json.loads((tmp_path / "continued" / "encoder.json").read_text())
    assert meta["config"]["init"] == str(standin.path) and meta["config"]["arch"] == "resnet18"
    assert meta["config"]["lr"] == pytest.approx(1e-4)  # a tenth of a fresh run's default
    assert json.loads((tmp_path / "fresh" / "encoder.json").read_text())["config"]["lr"] == pytest.approx(1e-3)

    before = _embedding(held_out, standin)
    kept, moved = _change(before, _embedding(held_out, str(continued))), _change(before, _embedding(held_out,
                                                                                                  str(fresh)))
    # it did train, and stayed nearer to what it started from (measured on seeds 0-3: 0.38-0.47 against 1.15-1.29;
    # with the training views' batch-norm statistics saved instead, both moved 11 to 47 spreads: statistics)
    assert 0 < kept < moved / 2


def test_init_weights_set_the_architecture_and_an_explicit_lr_wins(tmp_path, data):
    unlabelled, _ = data
    standin = Encoder("stand-in", "resnet18", seed=0).save(tmp_path / "standin.pt")
    xwvnet.train(unlabelled, tmp_path / "run", init=str(standin.path), lr=5e-4,
                 **{**SHORT, "steps": 1})
    config = json.loads((tmp_path / "run" / "encoder.json").read_text())["config"]
    assert config["arch"] == "resnet18" and config["lr"] == pytest.approx(5e-4)
    with pytest.raises(ValueError, match="resnet34"):
        xwvnet.train(unlabelled, tmp_path / "other", init=str(standin.path), arch="resnet34", **SHORT)


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
                         ({"augment": {"rotate90": True}}, "contradicts rotate90=False")]:
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
