"""Training checkpoints: RNG states through a safe file, and checkpoints that are unreadable, foreign, damaged (their
SHA-256 in checkpoint.json), non-finite or of another configuration refused with a clear error."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import random

import numpy as np
import pytest
import torch

from tests._training import TINY, TINY_CPU, copy_run, seeded_rng_states
from xwvnet.training import CheckpointError, load_checkpoint, train
from xwvnet.training.checkpoint import set_rng_state, verify_checkpoint_file

torch.set_num_threads(1)


def test_rng_states_round_trip_through_a_safe_file(tmp_path):
    state = seeded_rng_states(5)
    torch.save(state, tmp_path / "rng.pt")
    expected = (random.random(), float(np.random.rand()), torch.rand(3), np.random.normal())
    random.seed(0), np.random.seed(0), torch.manual_seed(0)
    set_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True))
    got = (random.random(), float(np.random.rand()), torch.rand(3), np.random.normal())
    assert got[:2] == expected[:2] and torch.equal(got[2], expected[2]) and got[3] == expected[3]


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


# --- checkpoints checked on load -----------------------------------------------------------------------------------
def test_a_checkpoint_with_random_bytes_inside_its_tensors_is_refused(few_waves, finished_run, tmp_path):
    run = copy_run(finished_run, tmp_path / "run")
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
        train(few_waves, run, steps=2, seed=0, resume=True, **TINY_CPU)
    with pytest.raises(CheckpointError, match="does not match the SHA-256"):  # as init of another run too
        train(few_waves, tmp_path / "other", steps=1, init=path, **TINY_CPU)


def test_the_previous_checkpoint_is_accepted_after_a_crash_between_the_two_renames(few_waves, tmp_path):
    run = tmp_path / "run"
    train(few_waves, run, steps=2, seed=0, checkpoint_every=1, stop_at_step=1, **TINY_CPU)
    first = (run / "checkpoint.pt").read_bytes()
    train(few_waves, run, steps=2, seed=0, resume=True, **TINY_CPU)
    sidecar = json.loads((run / "checkpoint.json").read_text())
    assert sidecar["step"] == 2 and sidecar["previous"]["step"] == 1
    assert sidecar["previous"]["sha256"] == hashlib.sha256(first).hexdigest()
    (run / "checkpoint.pt").write_bytes(first)  # the new sidecar is written, the new file not yet renamed
    assert verify_checkpoint_file(run / "checkpoint.pt") == sidecar["previous"]["sha256"]
    assert load_checkpoint(run / "checkpoint.pt")["step"] == 1


def test_a_checkpoint_with_non_finite_values_is_refused(finished_run, tmp_path):
    ckpt = torch.load(finished_run / "checkpoint.pt", weights_only=True)
    ckpt["head"][next(iter(ckpt["head"]))][0] = float("inf")
    torch.save(ckpt, tmp_path / "checkpoint.pt")  # no sidecar: the finiteness check still holds
    with pytest.raises(CheckpointError, match=r"NaN or infinite values in 1 tensors \(head\..*lower lr"):
        load_checkpoint(tmp_path / "checkpoint.pt")


def test_a_missing_checkpoint_or_a_foreign_sidecar_is_a_clear_error(finished_run, tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "checkpoint.pt")
    run = copy_run(finished_run, tmp_path / "run")
    (run / "checkpoint.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(CheckpointError, match="not the sidecar of a training checkpoint"):
        load_checkpoint(run / "checkpoint.pt")
    (run / "checkpoint.json").write_text("{truncated")
    with pytest.raises(CheckpointError, match=r"checkpoint\.json.*not readable JSON"):
        load_checkpoint(run / "checkpoint.pt")
