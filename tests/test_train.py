"""SimCLR training: the loss against a direct computation, a tiny run that learns, outputs that embed, exact resume,
refused checkpoints, and DDP (gloo, 2 CPU processes) against one process on the same global batch."""

from __future__ import annotations

import csv
import json
import math
import os
import pickle
import socket
from pathlib import Path

import numpy as np
import pytest
import torch

import xwvnet
from xwvnet import schema as S
from xwvnet.models.resnet import resnet18
from xwvnet.training import CheckpointError, load_checkpoint, nt_xent, train
from xwvnet.training.simclr import ProjectionHead, SimCLR, lr_at, simclr_loss

torch.set_num_threads(1)
TINY = dict(image_size=32, batch_size=16, warmup_steps=1, lr=3e-3, progress=False)


@pytest.fixture(scope="module")
def waves():
    """64 synthetic imagettes with sea-state texture, in memory."""
    return xwvnet.synthetic.imagettes(64, seed=0, size=(96, 96), chunks=16).load()


def _losses(out: Path) -> list[float]:
    with (out / "loss.csv").open() as f:
        return [float(row["loss"]) for row in csv.DictReader(f)]


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


def test_schedule_warms_up_then_decays_to_zero():
    lrs = [lr_at(s, steps=100, lr=1.0, warmup_steps=10) for s in range(101)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:])) and lrs[100] == pytest.approx(0.0)


# --- a tiny run ------------------------------------------------------------------------------------------------------
def test_tiny_run_learns_and_its_encoder_loads_and_embeds(waves, tmp_path):
    path = train(waves, out_dir=tmp_path, steps=8, seed=0, **TINY)
    losses = _losses(tmp_path)
    assert len(losses) == 8 and all(map(math.isfinite, losses))
    assert np.mean(losses[-3:]) < np.mean(losses[:3])
    state = torch.load(path, weights_only=True)
    assert not any(k.startswith(("fc.", "head.")) for k in state)
    resnet18().load_state_dict(state, strict=True)
    meta = json.loads((tmp_path / "encoder.json").read_text())
    assert meta["arch"] == "resnet18" and meta["steps_done"] == 8 and meta["data"]["imagettes"] == 64
    assert meta["data"]["ids_sha256"] and meta["config"]["seed"] == 0

    encoder = xwvnet.load_encoder(path)
    assert encoder.arch == "resnet18"
    embedded = xwvnet.embed(waves.isel({S.IMAGETTE: slice(0, 4)}), encoder=path)
    emb = embedded[S.EMBEDDING].values
    assert emb.shape == (4, 512) and np.isfinite(emb).all()


def test_interrupted_run_resumes_exactly(waves, tmp_path):
    straight = tmp_path / "straight"
    train(waves, out_dir=straight, steps=4, seed=1, checkpoint_every=2, **TINY)
    broken = tmp_path / "broken"
    train(waves, out_dir=broken, steps=4, seed=1, checkpoint_every=2, stop_at_step=3, **TINY)
    assert load_checkpoint(broken / "checkpoint.pt")["step"] == 3
    assert json.loads((broken / "encoder.json").read_text())["stopped"] == "stop_at_step"
    train(waves, out_dir=broken, steps=4, seed=1, checkpoint_every=2, resume=True, **TINY)
    assert _losses(broken) == _losses(straight)  # same seed: same curve, across the interruption too
    assert load_checkpoint(broken / "checkpoint.pt")["step"] == 4
    a = torch.load(straight / "encoder.pt", weights_only=True)
    b = torch.load(broken / "encoder.pt", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_bad_checkpoint_is_refused(waves, tmp_path):
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable"):
        train(waves, out_dir=tmp_path, steps=2, resume=True, **TINY)

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
    train(waves, out_dir=tmp_path, steps=2, seed=0, **TINY)
    with pytest.raises(CheckpointError, match="configuration changed.*temperature"):
        train(waves, out_dir=tmp_path, steps=2, seed=0, temperature=0.2, resume=True, **TINY)


def test_init_from_a_trained_encoder_and_arch_mismatch(waves, tmp_path):
    first = train(waves, out_dir=tmp_path / "a", steps=1, **TINY)
    second = train(waves, out_dir=tmp_path / "b", steps=1, init=first, **TINY)
    assert json.loads((tmp_path / "b" / "encoder.json").read_text())["config"]["init"] == str(first)
    assert torch.load(second, weights_only=True).keys() == torch.load(first, weights_only=True).keys()
    with pytest.raises(ValueError, match="arch='resnet50' but"):
        train(waves, out_dir=tmp_path / "c", steps=1, init=first, arch="resnet50", **TINY)


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
    train(store, out_dir=Path(out) / "run", steps=2, device="cpu", **TINY)


def _free_ports() -> tuple[int, int]:
    with socket.socket() as a, socket.socket() as b:
        a.bind(("127.0.0.1", 0))
        b.bind(("127.0.0.1", 0))
        return a.getsockname()[1], b.getsockname()[1]


def test_ddp_two_processes_match_one_process(waves, tmp_path):
    from xwvnet.io.store import to_store

    store = tmp_path / "s.zarr"
    to_store(waves.isel({S.IMAGETTE: slice(0, 48)}), store)
    torch.multiprocessing.start_processes(_ddp_worker, args=(2, _free_ports(), str(tmp_path), str(store)), nprocs=2,
                                          start_method="spawn")
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


def test_train_briefly_stops_in_time_and_says_so(waves, tmp_path):
    from xwvnet.training import train_briefly

    path = train_briefly(waves.isel({S.IMAGETTE: slice(0, 15)}), tmp_path, seconds=0.5, image_size=32,
                         progress=False)
    meta = json.loads((tmp_path / "encoder.json").read_text())
    assert meta["stopped"] == "max_seconds" and 1 <= meta["steps_done"] < 200
    assert meta["config"]["batch_size"] == 8  # the largest power of two the 15 imagettes allow
    resnet18().load_state_dict(torch.load(path, weights_only=True), strict=True)


def test_xwvnet_train_is_the_function_after_a_submodule_import():
    import xwvnet.training.loader  # noqa: F401

    assert callable(xwvnet.train)
    with pytest.raises(TypeError, match="expected an imagette Dataset"):
        xwvnet.train(42, out_dir="unused")
