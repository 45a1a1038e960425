"""Batch-norm statistics of saved encoders: re-estimated on embedding inputs, checked against their formula."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

import xwvnet
from xwvnet.models.transforms import get_transform
from xwvnet.training import load_checkpoint
from xwvnet.training.batchnorm import calibration_index, reestimate_batch_norm

torch.set_num_threads(1)


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 2, 3), nn.BatchNorm2d(2))


def test_statistics_are_the_average_of_the_batch_statistics():
    net = _net()
    batches = [torch.randn(5, 3, 8, 8) * 3 + 1, torch.randn(7, 3, 8, 8) - 2]
    reestimate_batch_norm(net, batches)
    assert not net.training and net[1].momentum == pytest.approx(0.1)  # momentum given back
    conv = net[0]
    with torch.no_grad():
        outs = [conv(b) for b in batches]
    # torch's cumulative average: the mean over batches of each batch's mean and unbiased variance
    mean = torch.stack([o.mean((0, 2, 3)) for o in outs]).mean(0)
    var = torch.stack([o.transpose(0, 1).reshape(4, -1).var(1, unbiased=True) for o in outs]).mean(0)
    torch.testing.assert_close(net[1].running_mean, mean)
    torch.testing.assert_close(net[1].running_var, var)
    assert int(net[1].num_batches_tracked) == 2
    weights = [p.clone() for p in net.parameters()]
    reestimate_batch_norm(net, batches)  # again: the same statistics, no weight touched
    torch.testing.assert_close(net[1].running_mean, mean)
    assert all(torch.equal(a, b) for a, b in zip(weights, net.parameters(), strict=True))


def test_no_batch_is_refused_and_changes_nothing():
    net = _net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with pytest.raises(ValueError, match="no input batch"):
        reestimate_batch_norm(net, [])
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_calibration_imagettes_are_whole_chunks_in_a_seeded_order():
    starts = np.array([0, 10, 20, 30, 40, 45])
    index = calibration_index(starts, 15, seed=1)
    assert index.size == 15 and np.all(np.diff(index) > 0)
    np.testing.assert_array_equal(index, calibration_index(starts, 15, seed=1))
    chunks = np.searchsorted(starts, index, side="right") - 1
    assert len(set(chunks)) == 2  # two chunks are read, the second one in part
    np.testing.assert_array_equal(calibration_index(starts, 99, seed=1), np.arange(45))
    assert not np.array_equal(calibration_index(starts, 15, seed=1), calibration_index(starts, 15, seed=2))


@pytest.fixture(scope="module")
def data():
    return xwvnet.synthetic.imagettes(32, seed=0, size=(96, 96), chunks=16).load()


RUN = dict(arch="resnet18", image_size=32, batch_size=16, steps=2, warmup_steps=1, progress=False, seed=0)


def _norms(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v for k, v in module.state_dict().items() if k.endswith(("running_mean", "running_var"))}


def test_the_saved_encoder_normalises_with_statistics_of_embedding_inputs(tmp_path, data):
    path = xwvnet.train(data, tmp_path / "run", bn_imagettes=1000, **RUN)
    saved = xwvnet.load_encoder(str(path))
    meta = json.loads((tmp_path / "run" / "encoder.json").read_text())
    assert meta["batch_norm"] == {"statistics": "embedding inputs (transform='wvnet')", "imagettes": 32}

    # the same statistics, measured here from the checkpoint's backbone (training statistics) and the data
    checkpoint = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    trained = xwvnet.models.resnet.ARCHITECTURES["resnet18"]()
    trained.load_state_dict(checkpoint["backbone"])
    inputs = get_transform("wvnet")(data.quicklook.values, data.valid_lines.values, data.valid_samples.values,
                                    channels=3)
    expected = reestimate_batch_norm(trained, [inputs])  # one batch: the 32 imagettes are fewer than 64
    for name, value in _norms(expected).items():
        torch.testing.assert_close(_norms(saved.module)[name], value, rtol=1e-4, atol=1e-5)
        assert not torch.allclose(checkpoint["backbone"][name], value)  # the checkpoint keeps the views'
    # weights are the trained ones
    torch.testing.assert_close(saved.module.state_dict()["conv1.weight"], checkpoint["backbone"]["conv1.weight"])


def test_bn_imagettes_0_saves_the_statistics_of_training(tmp_path, data):
    path = xwvnet.train(data, tmp_path / "run", bn_imagettes=0, **RUN)
    meta = json.loads((tmp_path / "run" / "encoder.json").read_text())
    assert meta["batch_norm"] == {"statistics": "training views", "imagettes": 0}
    checkpoint = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    for name, value in _norms(xwvnet.load_encoder(str(path)).module).items():
        torch.testing.assert_close(value, checkpoint["backbone"][name])
    with pytest.raises(ValueError, match="bn_imagettes=-1 is not allowed"):
        xwvnet.train(data, tmp_path / "bad", bn_imagettes=-1, **RUN)
    assert not (tmp_path / "bad").exists()
