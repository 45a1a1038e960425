"""Runs that never overwrite, and weights and checkpoints checked on load (issue 11, items 4, 5 and part of 9).

A finished run is not replaced without ``resume``/``overwrite``; ``checkpoint.json`` and ``encoder.json`` carry the
SHA-256 of the file beside them and a damaged file is refused; NaN or infinite weights are refused with or without
a sidecar; bad training arguments and CUDA without a GPU are clear errors before any work.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

import xwvnet
from xwvnet import schema as S
from xwvnet.models.encoder import Encoder
from xwvnet.models.resnet import resnet18
from xwvnet.models.weights import WeightsIntegrityError, check_finite, nonfinite_tensors
from xwvnet.training import CheckpointError, load_checkpoint, train
from xwvnet.training.checkpoint import verify_checkpoint_file

torch.set_num_threads(1)
TINY = dict(image_size=32, batch_size=8, warmup_steps=1, lr=3e-3, progress=False, device="cpu")


@pytest.fixture(scope="module")
def waves():
    """16 synthetic imagettes, in memory."""
    return xwvnet.synthetic.imagettes(16, seed=0, size=(48, 48), chunks=8).load()


@pytest.fixture(scope="module")
def finished(waves, tmp_path_factory) -> Path:
    """A finished 2-step run (do not modify: copy what a test damages)."""
    out = tmp_path_factory.mktemp("finished")
    train(waves, out, steps=2, seed=0, **TINY)
    return out


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _copy_run(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


# --- runs that never overwrite -------------------------------------------------------------------------------------
def test_a_finished_run_is_not_overwritten_without_resume_or_overwrite(waves, finished, tmp_path):
    run = _copy_run(finished, tmp_path / "run")
    before = {f.name: _digest(f) for f in run.iterdir()}
    with pytest.raises(FileExistsError, match=r"already holds the outputs.*encoder\.pt.*resume=True.*overwrite=True"):
        train(waves, run, steps=2, seed=1, **TINY)
    assert {f.name: _digest(f) for f in run.iterdir()} == before  # nothing touched
    for name in ("encoder.pt", "checkpoint.pt", "loss.csv"):  # any one of them is a run's output
        alone = tmp_path / f"only-{name}"
        alone.mkdir()
        (alone / name).write_bytes((run / name).read_bytes())
        with pytest.raises(FileExistsError, match=name.replace(".", r"\.")):
            train(waves, alone, steps=1, **TINY)


def test_overwrite_replaces_the_run_and_the_new_outputs_are_consistent(waves, finished, tmp_path):
    run = _copy_run(finished, tmp_path / "run")
    old_weights = _digest(run / "encoder.pt")
    train(waves, run, steps=3, seed=1, overwrite=True, **TINY)
    meta = json.loads((run / "encoder.json").read_text())
    assert meta["config"]["seed"] == 1 and meta["steps_done"] == 3
    assert meta["weights_sha256"] == _digest(run / "encoder.pt") != old_weights
    assert json.loads((run / "checkpoint.json").read_text())["sha256"] == _digest(run / "checkpoint.pt")
    assert len((run / "loss.csv").read_text().splitlines()) == 1 + 3 and not (run / "loss.csv.new").exists()
    assert load_checkpoint(run / "checkpoint.pt")["step"] == 3


def test_an_overwrite_that_fails_before_its_first_checkpoint_leaves_the_old_run_whole(waves, finished, tmp_path,
                                                                                    monkeypatch):
    from xwvnet.training import simclr

    run = _copy_run(finished, tmp_path / "run")
    before = {f.name: _digest(f) for f in run.iterdir()}
    calls = []
    real = simclr.simclr_loss

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("killed at step 2")
        return real(*args, **kwargs)

    monkeypatch.setattr(simclr, "simclr_loss", failing)
    with pytest.raises(RuntimeError, match="killed at step 2"):
        train(waves, run, steps=4, seed=1, overwrite=True, checkpoint_every=3, **TINY)
    assert {f.name: _digest(f) for f in run.iterdir()} == before  # the partial log is gone, the old run intact


def test_resume_and_overwrite_together_and_resume_with_nothing_to_resume_are_refused(waves, finished, tmp_path):
    with pytest.raises(ValueError, match="resume=True and overwrite=True contradict"):
        train(waves, tmp_path / "new", steps=1, resume=True, overwrite=True, **TINY)
    run = _copy_run(finished, tmp_path / "run")
    (run / "checkpoint.pt").unlink()
    (run / "checkpoint.json").unlink()
    with pytest.raises(FileExistsError, match=r"no checkpoint\.pt to resume from.*overwrite=True"):
        train(waves, run, steps=2, resume=True, **TINY)
    fresh = train(waves, tmp_path / "fresh", steps=1, resume=True, **TINY)  # nothing there: a new run
    assert fresh.is_file()


# --- checkpoints checked on load -----------------------------------------------------------------------------------
def test_a_checkpoint_with_random_bytes_inside_its_tensors_is_refused(waves, finished, tmp_path):
    run = _copy_run(finished, tmp_path / "run")
    path = run / "checkpoint.pt"
    raw = bytearray(path.read_bytes())
    ckpt = torch.load(path, weights_only=True)
    # the bytes of one stored tensor (uncompressed in torch's zip): overwrite the middle of conv1's kernel
    kernel = ckpt["backbone"]["conv1.weight"].numpy().tobytes()
    at = bytes(raw).find(kernel[:64])
    assert at > 0
    raw[at + 100: at + 400] = np.random.default_rng(0).integers(0, 256, 300, dtype=np.uint8).tobytes()
    path.write_bytes(raw)
    torch.load(path, weights_only=True)  # torch itself reads it without a word: only the hash can tell
    with pytest.raises(CheckpointError, match=r"does not match the SHA-256 recorded in checkpoint\.json: "
                                              r"expected [0-9a-f]{64}, found [0-9a-f]{64}.*restore it"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="does not match the SHA-256"):
        train(waves, run, steps=2, seed=0, resume=True, **TINY)
    with pytest.raises(CheckpointError, match="does not match the SHA-256"):  # as init of another run too
        train(waves, tmp_path / "other", steps=1, init=path, **TINY)


def test_the_previous_checkpoint_is_accepted_after_a_crash_between_the_two_renames(waves, tmp_path):
    run = tmp_path / "run"
    train(waves, run, steps=2, seed=0, checkpoint_every=1, stop_at_step=1, **TINY)
    first = (run / "checkpoint.pt").read_bytes()
    train(waves, run, steps=2, seed=0, resume=True, **TINY)
    sidecar = json.loads((run / "checkpoint.json").read_text())
    assert sidecar["step"] == 2 and sidecar["previous"]["step"] == 1
    assert sidecar["previous"]["sha256"] == hashlib.sha256(first).hexdigest()
    (run / "checkpoint.pt").write_bytes(first)  # the new sidecar is written, the new file not yet renamed
    assert verify_checkpoint_file(run / "checkpoint.pt") == sidecar["previous"]["sha256"]
    assert load_checkpoint(run / "checkpoint.pt")["step"] == 1


def test_a_checkpoint_with_non_finite_values_is_refused(finished, tmp_path):
    ckpt = torch.load(finished / "checkpoint.pt", weights_only=True)
    ckpt["head"][next(iter(ckpt["head"]))][0] = float("inf")
    torch.save(ckpt, tmp_path / "checkpoint.pt")  # no sidecar: the finiteness check still holds
    with pytest.raises(CheckpointError, match=r"NaN or infinite values in 1 tensors \(head\..*lower lr"):
        load_checkpoint(tmp_path / "checkpoint.pt")


def test_a_missing_checkpoint_or_a_foreign_sidecar_is_a_clear_error(finished, tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "checkpoint.pt")
    run = _copy_run(finished, tmp_path / "run")
    (run / "checkpoint.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(CheckpointError, match="not the sidecar of a training checkpoint"):
        load_checkpoint(run / "checkpoint.pt")
    (run / "checkpoint.json").write_text("{truncated")
    with pytest.raises(CheckpointError, match=r"checkpoint\.json.*not readable JSON"):
        load_checkpoint(run / "checkpoint.pt")


# --- weights checked on load -----------------------------------------------------------------------------------------
def test_one_flipped_byte_in_trained_weights_is_refused_by_load_encoder(waves, finished, tmp_path):
    run = _copy_run(finished, tmp_path / "run")
    path = run / "encoder.pt"
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    path.write_bytes(raw)
    assert set(torch.load(path, weights_only=True)) == set(resnet18().state_dict())  # torch reads it
    with pytest.raises(WeightsIntegrityError, match=r"encoder\.pt does not match the SHA-256.*expected sha256:"
                                                    r"[0-9a-f]{64}, found sha256:[0-9a-f]{64}.*restore it"):
        xwvnet.load_encoder(path)
    with pytest.raises(WeightsIntegrityError, match="does not match the SHA-256"):
        xwvnet.embed(waves.isel({S.IMAGETTE: slice(0, 2)}), encoder=path)


def test_saved_weights_get_a_sidecar_with_their_hash_and_are_checked(tmp_path):
    enc = Encoder("r18", "resnet18", seed=3).save(tmp_path / "w.pt")
    meta = json.loads((tmp_path / "w.json").read_text())
    assert meta["format"] == "xwvnet-encoder" and meta["arch"] == "resnet18" and meta["in_chans"] == 3
    assert meta["weights_sha256"] == _digest(tmp_path / "w.pt") and enc.hash == f"sha256:{meta['weights_sha256']}"
    assert meta["name"] == "r18" and meta["transform"] == "wvnet"
    assert xwvnet.load_encoder(tmp_path / "w.pt").name == "r18"
    raw = bytearray((tmp_path / "w.pt").read_bytes())
    raw[-5000] ^= 0x80
    (tmp_path / "w.pt").write_bytes(raw)
    with pytest.raises(WeightsIntegrityError, match="does not match the SHA-256"):
        xwvnet.load_encoder(tmp_path / "w.pt")
    (tmp_path / "x.json").write_text('{"mine": 1}')  # a user's file is never overwritten by a sidecar
    with pytest.raises(FileExistsError, match="not an xwvnet encoder sidecar"):
        enc.save(tmp_path / "x.pt")
    assert json.loads((tmp_path / "x.json").read_text()) == {"mine": 1} and not (tmp_path / "x.pt").exists()


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused_without_a_sidecar(waves, tmp_path, value):
    torch.manual_seed(0)
    state = {k: torch.full_like(v, value) if v.is_floating_point() else v for k, v in resnet18().state_dict().items()}
    torch.save(state, tmp_path / "bad.pt")
    assert not (tmp_path / "bad.json").exists()
    with pytest.raises(WeightsIntegrityError, match=r"bad\.pt holds non-finite weights .* in 100 of 120 tensors: "
                                                    r"conv1\.weight \(9408 values\)"):
        xwvnet.load_encoder(tmp_path / "bad.pt")
    with pytest.raises(WeightsIntegrityError, match="non-finite"):
        train(waves, tmp_path / "run", steps=1, init=tmp_path / "bad.pt", **TINY)
    assert not (tmp_path / "run").exists()


def test_an_in_memory_model_with_nan_weights_does_not_embed(waves):
    torch.manual_seed(0)
    module = resnet18()
    with torch.no_grad():
        module.layer4[1].conv2.weight[0, 0, 0, 0] = float("nan")
    enc = Encoder.from_module(module, name="diverged")
    with pytest.raises(WeightsIntegrityError, match=r"'diverged' holds non-finite.*layer4\.1\.conv2\.weight "
                                                    r"\(1 values\)"):
        xwvnet.embed(waves.isel({S.IMAGETTE: slice(0, 2)}), encoder=enc).compute(scheduler="synchronous")


def test_nonfinite_tensors_walks_nested_states():
    tree = {"a": torch.ones(3), "opt": {0: {"exp_avg": torch.tensor([0.0, float("-inf")]), "step": torch.tensor(3)}},
            "l": [torch.tensor([float("nan")] * 2)], "x": 1.5, "ints": torch.arange(3)}
    assert nonfinite_tensors(tree) == {"opt.0.exp_avg": 1, "l.0": 2}
    check_finite({"w": torch.zeros(2)}, "ok.pt")


# --- bad arguments and devices -------------------------------------------------------------------------------------
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
def test_bad_training_arguments_are_refused_before_any_work(waves, tmp_path, name, value, allowed):
    kwargs = {**TINY, "steps": 2, name: value}
    with pytest.raises(ValueError, match=rf"^{name}={value!r}".replace("(", r"\(").replace(")", r"\)")) as err:
        train(waves, tmp_path / "run", **kwargs)
    assert allowed in str(err.value)
    assert not (tmp_path / "run").exists()


def test_a_batch_larger_than_the_data_is_refused_before_any_work(waves, tmp_path):
    with pytest.raises(ValueError, match="batch_size=32 is more than the 16 imagettes"):
        train(waves, tmp_path / "run", steps=1, **{**TINY, "batch_size": 32})
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("flag,value,name", [("--batch-size", "0", "batch_size"), ("--image-size", "0", "image_size"),
                                             ("--lr", "-1", "lr"), ("--steps", "0", "steps")])
def test_the_cli_says_which_training_argument_is_bad_in_one_line(waves, tmp_path, capsys, flag, value, name):
    from xwvnet.cli import main
    from xwvnet.io.store import to_store

    to_store(waves, tmp_path / "s.zarr")
    assert main(["train", str(tmp_path / "s.zarr"), "--out", str(tmp_path / "run"), flag, value]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"xwvnet train: error: {name}=") and "must be" in err and "\n" not in err
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_without_a_gpu_is_a_clear_error_for_embed_and_train(waves, tmp_path):
    from xwvnet._runtime import LOCAL_THREADS, run_context

    for device in ("cuda", "cuda:0"):
        with pytest.raises(ValueError, match=f"device='{device}' but this machine has no visible CUDA GPU"):
            run_context(LOCAL_THREADS, device)
        with pytest.raises(ValueError, match="no visible CUDA GPU.*use device='cpu'"):
            xwvnet.embed(waves, encoder="random-resnet50", device=device)
        with pytest.raises(ValueError, match="no visible CUDA GPU"):
            train(waves, tmp_path / "run", steps=1, **{**TINY, "device": device})
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_without_a_gpu_is_a_clear_error_for_embed_store_before_any_output(waves, tmp_path):
    from xwvnet.io.store import to_store

    to_store(waves, tmp_path / "s.zarr")
    with pytest.raises(ValueError, match="no visible CUDA GPU"):
        xwvnet.embed_store(tmp_path / "s.zarr", tmp_path / "e.zarr", "random-resnet50", device="cuda",
                           progress=False)
    assert not (tmp_path / "e.zarr").exists()
    assert [p for p in os.listdir(tmp_path) if not p.endswith(".commit-lock")] == ["s.zarr"]
