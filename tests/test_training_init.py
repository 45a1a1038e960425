"""Continuing training from weights (``init=``): the default learning rate keeps what the weights know.

The published WV-Net weights are not needed: a random-init ResNet-18 whose batch-norm statistics were measured on
imagettes (as published weights carry the statistics of their data), saved as a weights file with its sidecar,
stands in for them. A short continued run from it must change the embeddings of held-out imagettes less than a
fresh run (the same seed's random init, the defaults of a fresh run) does. Both save batch-norm statistics of
embedding inputs (``bn_imagettes``), as the stand-in's are.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import xwvnet
from xwvnet.models.encoder import Encoder

torch.set_num_threads(1)
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
