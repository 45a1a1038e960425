"""The GPU recipe: its arguments (learning rate scaled with the global batch, a tenth when continuing), and the
one command starting on a CPU at tiny size (``--tiny``), from a store, to an encoder that loads back."""

from __future__ import annotations

import json
import math

import pytest
import torch

import xwvnet
from xwvnet.training.recipe import gpu_recipe, main

torch.set_num_threads(1)


def test_the_recipe_scales_the_learning_rate_with_the_global_batch():
    one, eight = gpu_recipe(1), gpu_recipe(8)
    assert one["arch"] == "resnet50" and one["batch_size"] == 256 and one["lr"] == pytest.approx(1e-3)
    assert eight["batch_size"] == 2048 and eight["lr"] == pytest.approx(1e-3 * math.sqrt(8))
    assert one["image_size"] <= 224 and one["precision"] == "auto" and one["compile"]
    continued = gpu_recipe(4, init="wvnet-resnet50")
    assert continued["arch"] is None and continued["lr"] == pytest.approx(gpu_recipe(4)["lr"] / 10)
    with pytest.raises(ValueError, match="at least 1"):
        gpu_recipe(0)


def test_the_one_command_starts_on_a_cpu_at_tiny_size(tmp_path, capsys):
    ds = xwvnet.synthetic.imagettes(16, seed=0, size=(48, 48), chunks=8)
    xwvnet.to_store(ds, tmp_path / "wv.zarr")
    assert main([str(tmp_path / "wv.zarr"), "--out", str(tmp_path / "run"), "--tiny"]) == 0
    assert "encoder weights" in capsys.readouterr().out
    meta = json.loads((tmp_path / "run" / "encoder.json").read_text())
    assert meta["steps_done"] == 2 and meta["transform"] == "wvnet"  # a fresh encoder: the published transform
    assert xwvnet.load_encoder(str(tmp_path / "run" / "encoder.pt")).arch == "resnet18"
