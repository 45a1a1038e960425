"""Weights files: their hashes verified, state dicts read (wrapped, with a classifier) and loaded strictly, NaN or
infinite weights refused, and sidecars written whole or not at all (xwvnet._files.replacing)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

import xwvnet
from tests._training import TINY_CPU, file_names
from xwvnet.datasets import git_blob_sha1
from xwvnet.models import weights
from xwvnet.models.resnet import resnet18
from xwvnet.models.weights import WeightsIntegrityError, check_finite, nonfinite_tensors, verify_weights_file
from xwvnet.models.zoo import load_encoder
from xwvnet.training import train

torch.set_num_threads(1)


def test_verify_accepts_good_and_refuses_bad(tmp_path):
    path = tmp_path / "w.bin"
    path.write_bytes(b"weights")
    full = hashlib.sha256(b"weights").hexdigest()
    assert verify_weights_file(path, f"sha256-prefix:{full[:8]}") == f"sha256:{full}"
    assert verify_weights_file(path, f"git-sha1:{git_blob_sha1(path)}").startswith("git-sha1:")
    with pytest.raises(WeightsIntegrityError, match="integrity"):
        verify_weights_file(path, "sha256-prefix:00000000")
    with pytest.raises(WeightsIntegrityError, match=str(path)):
        verify_weights_file(path, "git-sha1:" + "0" * 40)


def test_classifier_and_wrapped_state_dicts_load(tmp_path):
    torch.manual_seed(0)
    sd = resnet18(num_classes=10).state_dict()
    path = tmp_path / "wrapped.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in sd.items()}}, path)
    enc = load_encoder(path, transform="imagenet")
    assert enc.arch == "resnet18" and enc.transform == "imagenet"
    torch.testing.assert_close(enc.module.conv1.weight, sd["conv1.weight"])


def test_state_dicts_that_do_not_fit_are_refused(tmp_path):
    sd = resnet18().state_dict()
    del sd["layer2.0.bn1.running_var"]
    path = tmp_path / "missing.pt"
    torch.save(sd, path)
    with pytest.raises(WeightsIntegrityError, match="missing"):
        load_encoder(path)
    sd = resnet18().state_dict()
    sd["layer1.0.conv1.weight"] = torch.zeros(64, 64, 1, 1)
    torch.save(sd, path)
    with pytest.raises(WeightsIntegrityError, match="does not fit"):
        load_encoder(path)
    torch.save({"not": "a state dict"}, path)
    with pytest.raises(WeightsIntegrityError):
        load_encoder(path)
    with pytest.raises(ValueError, match="neither a known encoder"):
        load_encoder(tmp_path / "absent.pt")


def test_a_failed_sidecar_write_keeps_the_previous_sidecar_and_leaves_no_temporary(tmp_path, monkeypatch):
    target = weights.write_sidecar(tmp_path / "w.pt", {"weights_sha256": "aa"})
    assert target == tmp_path / "w.json" and json.loads(target.read_text()) == {"weights_sha256": "aa"}

    def full(self, *args, **kwargs):
        self.open("w").write("{\"weights_sha2")  # half written, then the disk is full
        raise OSError("No space left on device")

    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(OSError, match="No space"):
        weights.write_sidecar(tmp_path / "w.pt", {"weights_sha256": "bb"})
    monkeypatch.undo()
    assert json.loads(target.read_text()) == {"weights_sha256": "aa"}
    assert file_names(tmp_path) == ["w.json"]


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused_without_a_sidecar(few_waves, tmp_path, value):
    torch.manual_seed(0)
    state = {k: torch.full_like(v, value) if v.is_floating_point() else v for k, v in resnet18().state_dict().items()}
    torch.save(state, tmp_path / "bad.pt")
    assert not (tmp_path / "bad.json").exists()
    with pytest.raises(WeightsIntegrityError, match=r"bad\.pt holds non-finite weights .* in 100 of 120 tensors: "
                                                    r"conv1\.weight \(9408 values\)"):
        xwvnet.load_encoder(tmp_path / "bad.pt")
    with pytest.raises(WeightsIntegrityError, match="non-finite"):
        train(few_waves, tmp_path / "run", steps=1, init=tmp_path / "bad.pt", **TINY_CPU)
    assert not (tmp_path / "run").exists()


def test_nonfinite_tensors_walks_nested_states():
    tree = {"a": torch.ones(3), "opt": {0: {"exp_avg": torch.tensor([0.0, float("-inf")]), "step": torch.tensor(3)}},
            "l": [torch.tensor([float("nan")] * 2)], "x": 1.5, "ints": torch.arange(3)}
    assert nonfinite_tensors(tree) == {"opt.0.exp_avg": 1, "l.0": 2}
    check_finite({"w": torch.zeros(2)}, "ok.pt")
