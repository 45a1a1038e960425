"""The run context: where a call's tasks run and on which device, decided by one function at the public edges; the
device refused in one line where there is no GPU (every machine, by making torch see none) and used where there is
one; the thread budget and the count checks."""

from __future__ import annotations

import ast
import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import xwvnet
from tests._training import TINY_CPU
from xwvnet import _runtime
from xwvnet import schema as S
from xwvnet._runtime import GPU, LOCAL_THREADS, RunContext, run_context, torch_device
from xwvnet.errors import DeviceUnavailableError, InvalidArgumentError, InvalidTypeError
from xwvnet.training import train

distributed = pytest.importorskip("distributed")
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture(scope="module")
def cpu_client():
    """An in-process cluster whose one worker declares no GPU (made the active client while the module runs)."""
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None) as client:
        yield client


@pytest.fixture
def gpu_client():
    """An in-process cluster whose one worker declares a GPU resource (as ``dask worker --resources GPU=1``)."""
    cluster = distributed.LocalCluster(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=":0",
                                       resources={GPU: 1})
    with cluster, distributed.Client(cluster, set_as_default=False) as client:
        yield client


# ---- a pool here ------------------------------------------------------------------------------------------------
def test_a_pool_here_resolves_the_device_against_this_machine():
    where = run_context(LOCAL_THREADS, " CPU ", threads=3)
    assert where == RunContext("cpu", None, 3, False) and where.resources is None
    assert where.describe() == "local thread pool (3 threads)"
    assert run_context(LOCAL_THREADS).threads == _runtime.cores()  # default: every core
    expected = "cuda:0" if torch.cuda.is_available() else "cpu"
    assert run_context(LOCAL_THREADS, "auto").device == expected  # never "auto" here
    assert run_context(LOCAL_THREADS, torch.device("cpu")).device == "cpu"
    with pytest.raises(dataclasses.FrozenInstanceError):
        where.device = "cuda:0"  # frozen: resolved once, carried as it is


@pytest.mark.parametrize("device", ["cuda", "cuda:0", "CUDA:1"])
def test_cuda_without_a_gpu_here_is_refused_in_one_line(device, no_gpu):
    with pytest.raises(DeviceUnavailableError, match=f"device={device!r} but this machine has no visible CUDA GPU.*"
                                                     "use device='cpu' or 'auto'"):
        run_context(LOCAL_THREADS, device)
    assert issubclass(DeviceUnavailableError, ValueError)


@pytest.mark.parametrize("bad", ["gpu0", "", "cuda:x"])
def test_a_bad_device_name_is_refused(bad):
    with pytest.raises(InvalidArgumentError, match="device must be 'auto', 'cpu', 'cuda' or 'cuda:N'"):
        run_context(LOCAL_THREADS, bad)


def test_bad_threads_and_clients_are_refused():
    with pytest.raises(InvalidArgumentError, match="threads must be a positive number"):
        run_context(LOCAL_THREADS, "cpu", threads=0)
    with pytest.raises(InvalidTypeError, match="client must be a distributed.Client.*found int"):
        run_context(3, "cpu")


def test_torch_device_turns_a_resolved_name_into_a_torch_device():
    assert torch_device("cpu") == torch.device("cpu")
    assert torch_device("auto") == torch.device("cuda:0" if torch.cuda.is_available() else "cpu")


# ---- the device at the edges, the thread budget, the count checks ------------------------------------------------
@CUDA
@pytest.mark.parametrize("device", ["cuda", "cuda:0", " CUDA:0 "])
def test_cuda_with_a_gpu_here_is_that_gpu(device):
    where = run_context(LOCAL_THREADS, device)
    assert where == RunContext("cuda:0", None, _runtime.cores(), False) and where.resources is None
    assert torch_device(where.device) == torch.device("cuda:0")
    assert run_context(LOCAL_THREADS, "auto").device == "cuda:0"


def test_cuda_without_a_gpu_is_a_clear_error_for_embed_and_train(few_waves, tmp_path, no_gpu):
    for device in ("cuda", "cuda:0"):
        with pytest.raises(ValueError, match=f"device='{device}' but this machine has no visible CUDA GPU"):
            run_context(LOCAL_THREADS, device)
        with pytest.raises(ValueError, match="no visible CUDA GPU.*use device='cpu'"):
            xwvnet.embed(few_waves, encoder="random-resnet50", device=device)
        with pytest.raises(ValueError, match="no visible CUDA GPU"):
            train(few_waves, tmp_path / "run", steps=1, **{**TINY_CPU, "device": device})
    assert not (tmp_path / "run").exists()


@CUDA
def test_cuda_with_a_gpu_embeds_and_trains_there(few_waves, weights, tmp_path, monkeypatch):
    """The edges of the test above where there is a GPU: embed there equals the CPU's, and a run trains there."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)  # float32 convolutions, as on the CPU
    small = few_waves.isel({S.IMAGETTE: slice(0, 4)})
    cpu = xwvnet.embed(small, encoder=weights, device="cpu")[S.EMBEDDING].values
    for device in ("cuda", "cuda:0"):
        assert run_context(LOCAL_THREADS, device).device == "cuda:0"
        gpu = xwvnet.embed(small, encoder=weights, device=device)[S.EMBEDDING].values
        assert gpu.shape == cpu.shape == (4, 512) and np.isfinite(gpu).all()
        np.testing.assert_allclose(gpu, cpu, rtol=1e-3, atol=1e-3 * float(np.abs(cpu).max()))
    path = train(few_waves, tmp_path / "run", steps=1, **{**TINY_CPU, "device": "cuda"})
    meta = json.loads((tmp_path / "run" / "encoder.json").read_text())
    assert meta["config"]["device"] == "cuda:0" and meta["steps_done"] == 1
    assert xwvnet.load_encoder(path).arch == "resnet18"


def test_thread_budget_helpers():
    assert _runtime.threads_per_task(16, 4) == 4
    assert _runtime.threads_per_task(2, 4) == 1  # never 0
    with pytest.raises(ValueError):
        _runtime.threads_per_task(0, 1)
    assert _runtime.cores() >= 1


def test_runtime_checks():
    assert _runtime.check_count(3, "batch_size") == 3
    assert _runtime.check_count(np.int64(2), "chunk_size") == 2
    for bad in (0, -1, 1.5, True, "4", None):
        with pytest.raises(ValueError, match="chunk_size must be a positive number of imagettes"):
            _runtime.check_count(bad, "chunk_size")


# ---- a cluster --------------------------------------------------------------------------------------------------
def test_the_active_client_is_the_default_and_threads_means_here_while_it_is_active(cpu_client):
    with run_context() as where:
        assert where.client is cpu_client and not where.owns_client
        assert where.threads == 2 and "1 workers, 2 threads" in where.describe()
    assert cpu_client.status == "running"  # a client found active is left open
    here = run_context(LOCAL_THREADS, "auto", threads=1)
    assert here.client is None and here.device in ("cpu", "cuda:0")


def test_an_address_is_connected_and_closed_with_the_context(cpu_client):
    with run_context(cpu_client.scheduler.address, "cpu") as where:
        assert where.owns_client and where.client is not cpu_client
        assert where.client.status == "running"
    assert where.client.status == "closed" and cpu_client.status == "running"


def test_gpu_resources_follow_the_workers_declarations(cpu_client, gpu_client):
    auto = run_context(gpu_client, "auto")
    assert auto.gpu and auto.resources == {GPU: 1} and auto.device == "auto"  # each GPU worker: its own GPU
    cuda = run_context(gpu_client, "cuda")
    assert cuda.gpu and cuda.device == "cuda:0"  # a GPU worker sees its own GPU first
    assert run_context(gpu_client, "cpu").resources is None
    plain = run_context(cpu_client, "auto")
    assert not plain.gpu and plain.device == "auto"  # no GPU declared: each worker uses its GPU if any, else CPU
    with pytest.raises(DeviceUnavailableError, match="no worker declares a 'GPU' resource"):
        run_context(cpu_client, "cuda")


def test_a_refused_device_closes_the_client_connected_for_it(cpu_client, monkeypatch):
    made = []
    real = distributed.Client

    def spy(*args, **kwargs):
        made.append(real(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(distributed, "Client", spy)
    with pytest.raises(DeviceUnavailableError):
        run_context(cpu_client.scheduler.address, "cuda")
    assert len(made) == 1 and made[0].status == "closed"


# ---- one place, called at the edges -----------------------------------------------------------------------------
#: the public functions that decide where their tasks run (each calls run_context once)
EDGES = {
    "inference.py": {"embed", "embed_block", "get_model"},
    "archive.py": {"embed_store"},
    "ingestion.py": {"ingest"},
    "training/simclr.py": {"train"},
    "distributed.py": {"local_cluster", "local_client"},
}


def _callers(path: Path, name: str) -> list[str]:
    """The top-level functions of ``path`` whose bodies call ``name``, once per call."""
    found = []
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            found += [node.name for call in ast.walk(node) if isinstance(call, ast.Call)
                      and getattr(call.func, "id", getattr(call.func, "attr", None)) == name]
    return found


def test_device_and_place_are_resolved_by_one_function_called_at_the_public_edges():
    package = Path(xwvnet.__file__).parent
    calls = {}
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package).as_posix()
        source = path.read_text()
        gone = re.findall(r"\b(resolve_device|device_name|check_device|task_resources|gpu_workers)\b", source)
        assert not gone, f"{relative} still has {gone}"
        if relative != "_runtime.py":
            callers = _callers(path, "run_context")
            if callers:
                calls[relative] = callers
            # only the run context asks torch which GPUs there are (checkpoints save every GPU's RNG state)
            if relative != "training/checkpoint.py":
                assert "cuda.is_available" not in source, relative
    assert {k: set(v) for k, v in calls.items()} == EDGES
    assert all(len(v) == len(set(v)) for v in calls.values()), calls  # once per edge
