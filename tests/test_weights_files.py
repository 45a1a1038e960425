"""Weights, their sidecars and saved encoders are written whole or not at all (xwvnet._files.replacing)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from xwvnet.models import weights
from xwvnet.models.encoder import Encoder
from xwvnet.models.resnet import resnet18


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


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
    assert _files(tmp_path) == ["w.json"]


def test_a_failed_encoder_save_leaves_the_previous_weights_and_no_temporary(tmp_path, monkeypatch):
    first = Encoder.from_module(resnet18(), name="first").save(tmp_path / "enc.pt")
    before = (tmp_path / "enc.pt").read_bytes(), (tmp_path / "enc.json").read_text()
    assert _files(tmp_path) == ["enc.json", "enc.pt"]
    from xwvnet.models import encoder as E

    def failing(path, meta):
        raise OSError("sidecar not writable")

    monkeypatch.setattr(E, "write_sidecar", failing)
    other = Encoder.from_module(resnet18(), name="second")
    with pytest.raises(OSError, match="sidecar not writable"):
        other.save(tmp_path / "enc.pt")
    assert ((tmp_path / "enc.pt").read_bytes(), (tmp_path / "enc.json").read_text()) == before
    assert _files(tmp_path) == ["enc.json", "enc.pt"]  # the weights' temporary file is gone
    monkeypatch.undo()
    again = Encoder.from_file(tmp_path / "enc.pt")
    assert again.hash == first.hash
    torch.testing.assert_close(again.module.conv1.weight, first.module.conv1.weight)
    saved = other.save(tmp_path / "enc.pt")
    assert saved.hash != first.hash and _files(tmp_path) == ["enc.json", "enc.pt"]
