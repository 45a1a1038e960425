"""dask.distributed: results equal threaded and single-process ones, weights never in the graph, the thread budget,
the local cluster's shape, its one clear start error and its quiet close."""
from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path

import numpy as np
import pytest

import xwvnet
from tests._factories import embed_whole_store, make_imagettes, save_random_resnet18
from xwvnet import _runtime
from xwvnet import distributed as xd
from xwvnet import schema as S
from xwvnet.errors import XWVNetError

torch = pytest.importorskip("torch")
distributed = pytest.importorskip("distributed")
cloudpickle = pytest.importorskip("cloudpickle")


N, SIZE, CHUNK = 12, 64, 3


@pytest.fixture(scope="module")
def r18_seed1(tmp_path_factory) -> Path:
    return save_random_resnet18(tmp_path_factory.mktemp("weights") / "resnet18.pt", seed=1)


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("input") / "in.zarr"
    xwvnet.to_store(make_imagettes(N, lines=SIZE, samples=SIZE, seed=5), path, chunk_size=CHUNK)
    return path


@pytest.fixture(scope="module")
def reference(source, r18_seed1) -> np.ndarray:
    return embed_whole_store(source, r18_seed1)


@pytest.fixture(scope="module")
def client():
    """One LocalCluster of 2 worker processes x 1 thread for the whole module (they are slow to start)."""
    with xd.local_cluster(2, threads_per_worker=1) as cluster, distributed.Client(cluster) as c:
        yield c


def test_local_cluster_budget_never_oversubscribes(client):
    env = client.run(lambda: os.environ.get(xd.THREADS_ENV))
    assert len(env) == 2
    expected = str(max(1, _runtime.cores() // 2))
    assert set(env.values()) == {expected}
    assert sum(xd.host_threads(client).values()) == 2
    xd.setup_client(client)  # the plugin keeps a budget that is already set
    assert set(client.run(lambda: os.environ.get(xd.THREADS_ENV)).values()) == {expected}
    from xwvnet.inference import torch_threads

    assert set(client.run(torch_threads).values()) == {int(expected)}  # what embed_block will use per task


def test_plugin_budget_from_host_map():
    class Worker:
        address = "tcp://10.0.0.7:4000"

        class state:  # noqa: N801  (mimics distributed's Worker.state)
            nthreads = 2
            total_resources: dict = {}

    saved = os.environ.pop(xd.THREADS_ENV, None)
    try:
        xd.WVNetWorker(threads_by_host={"10.0.0.7": _runtime.cores() * 8}).setup(Worker())
        assert os.environ[xd.THREADS_ENV] == "1"
        xd.WVNetWorker(torch_threads=3).setup(Worker())
        assert os.environ[xd.THREADS_ENV] == "3"
    finally:
        os.environ.pop(xd.THREADS_ENV, None)
        if saved is not None:
            os.environ[xd.THREADS_ENV] = saved


def test_gpu_resources_requested_only_where_declared(client):
    assert _runtime.run_context(client, "cpu").resources is None
    where = _runtime.run_context(client, "auto")
    assert where.resources is None and where.device == "auto"  # no worker declares a GPU: each worker decides
    with pytest.raises(ValueError, match="no worker declares a 'GPU' resource"):
        _runtime.run_context(client, "cuda")


def test_embed_store_on_cluster_equals_threaded_and_single_process(client, source, r18_seed1, reference, tmp_path):
    from xwvnet.archive import embed_store

    xd.setup_client(client, r18_seed1, device="cpu")  # every worker builds its model now, once
    on_cluster = embed_store(source, tmp_path / "c.zarr", r18_seed1, client=client, progress=False)
    assert on_cluster.complete and "2 workers" in on_cluster.runner
    threaded = embed_store(source, tmp_path / "t.zarr", r18_seed1, client="threads", progress=False)  # here, not there
    assert threaded.complete and "thread pool" in threaded.runner
    a = xwvnet.open_store(tmp_path / "c.zarr")[S.EMBEDDING].values
    b = xwvnet.open_store(tmp_path / "t.zarr")[S.EMBEDDING].values
    np.testing.assert_allclose(a, reference, atol=1e-5, rtol=0)
    np.testing.assert_allclose(b, reference, atol=1e-5, rtol=0)
    # the model was built once per worker process and reused for every later chunk
    models = client.run(lambda: len(__import__("xwvnet.inference", fromlist=["_MODELS"])._MODELS))
    assert list(models.values()) == [1, 1]


def test_embed_store_by_scheduler_address(client, source, r18_seed1, reference, tmp_path):
    from xwvnet.archive import embed_store

    report = embed_store(source, tmp_path / "s.zarr", r18_seed1, client=client.scheduler.address, chunk_size=6,
                         progress=False)
    assert report.complete and report.chunks == 2
    np.testing.assert_allclose(xwvnet.open_store(tmp_path / "s.zarr")[S.EMBEDDING].values, reference, atol=1e-5,
                               rtol=0)


def test_accessor_embed_under_client_and_small_graph(client, source, r18_seed1, reference):
    ds = xwvnet.open_store(source)
    lazy = ds.wvnet.embed(str(r18_seed1))
    graph = dict(lazy[S.EMBEDDING].data.__dask_graph__())
    size = len(cloudpickle.dumps(graph))
    assert size < r18_seed1.stat().st_size // 20  # the graph carries the encoder's spec, not its weights
    with _runtime.run_context() as where:  # the client of this module is the active one
        assert where.client is client and not where.owns_client
    result = lazy[S.EMBEDDING].compute()  # runs on the cluster: the default client
    np.testing.assert_allclose(result.values, reference, atol=1e-5, rtol=0)


def test_worker_malloc_is_relaxed_where_glibc_allows():
    from xwvnet.distributed import relax_malloc_trim

    assert relax_malloc_trim() is sys.platform.startswith("linux")  # CI runs on glibc Linux


# ---- the local cluster rule ---------------------------------------------------------------------------------------
def test_local_shape_rule():
    assert xd.local_shape() == (1, _runtime.cores())  # one process with threads, by measurement
    assert xd.local_shape(2) == (2, 1)
    assert xd.local_shape(None, 3) == (1, 3)
    assert xd.local_shape(2, 2) == (2, 2)
    with pytest.raises(ValueError, match="n_workers must be a positive number"):
        xd.local_shape(0)


def test_local_client_start_failure_is_one_clear_error(monkeypatch):
    seen = {}

    def refuse(**kwargs):
        seen.update(kwargs)
        raise RuntimeError("Nanny failed to start.")

    monkeypatch.setattr(xd, "LocalCluster", refuse)
    with pytest.raises(XWVNetError, match=r"could not start a local dask cluster of 2 worker process\(es\) x 1 "
                                          r"thread.*Nanny failed to start.*--threads") as info:
        xd.local_client(2)
    assert isinstance(info.value, RuntimeError) and "\n" not in str(info.value)
    assert seen["n_workers"] == 2 and seen["threads_per_worker"] == 1 and seen["processes"] is True
    with pytest.raises(xd.LocalClusterError):
        xd.local_client()
    assert seen["n_workers"] == 1 and seen["threads_per_worker"] == _runtime.cores()


# ---- closing a local cluster is quiet ---------------------------------------------------------------------------
# The nanny's "Worker process still alive after 4.0 seconds, killing" notice (one per worker whose process was slow
# to exit) is dropped while a cluster of ours closes, and only then.
NOTICE = "Worker process still alive after 4.0 seconds, killing"


class _FakeCluster:
    """Closes the way a LocalCluster whose workers are slow to exit does: its nanny logs the kill notice."""

    def __init__(self, **kwargs: object) -> None:
        self.kwargs = kwargs

    async def _close(self) -> None:
        logging.getLogger("distributed.nanny").warning(NOTICE)
        logging.getLogger("distributed.nanny").warning("something else")


def test_closing_a_local_cluster_drops_the_kill_notice_only(monkeypatch, caplog):
    monkeypatch.setattr(xd, "LocalCluster", _FakeCluster)
    cluster = xd.local_cluster(2)
    assert cluster.kwargs["n_workers"] == 2
    with caplog.at_level(logging.WARNING, logger="distributed.nanny"):
        asyncio.run(cluster._close())
        messages = [r.getMessage() for r in caplog.records]
        assert NOTICE not in messages and "something else" in messages
        caplog.clear()
        logging.getLogger("distributed.nanny").warning(NOTICE)  # outside a close of ours: left alone
        assert [r.getMessage() for r in caplog.records] == [NOTICE]


def test_worker_processes_from_piped_code_are_refused_in_one_line():
    """Code piped into ``python -`` has no script for spawned workers to re-run: say what to do, start nothing."""
    import subprocess

    code = "from xwvnet.distributed import local_client\nlocal_client(2)\n"
    done = subprocess.run([sys.executable, "-"], input=code, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("xwvnet.distributed.LocalClusterError: worker processes cannot start from code read from")
    assert 'client="threads"' in last and "BrokenProcessPool" not in done.stderr


# ---- plain process pools (ingest(workers=N)) -------------------------------------------------------------------------
def _worker_setup() -> tuple:
    import signal

    env = os.environ.get
    return os.getpid(), signal.getsignal(signal.SIGINT), env("OMP_NUM_THREADS"), env(xd.THREADS_ENV)


def _allocate(mib: int) -> int:
    """Touch ``mib`` MiB of fresh pages (an anonymous map: never memory the worker already holds)."""
    import mmap

    pages = mmap.mmap(-1, mib * 2**20)
    for i in range(0, len(pages), mmap.PAGESIZE):
        pages[i] = 1
    return len(pages)


def test_process_pool_workers_ignore_ctrl_c_run_one_thread_and_report_their_memory():
    import signal

    before = signal.getsignal(signal.SIGINT)
    with xd.process_pool(2) as pool:
        setups = [pool.submit(xd.in_worker, _worker_setup).result() for _ in range(4)]
        (total, memory) = pool.submit(xd.in_worker, _allocate, 64).result()
    assert signal.getsignal(signal.SIGINT) is before  # this process keeps its handler
    for (pid, sigint, omp, torch_threads), mem in setups:
        assert pid != os.getpid() and pid == mem.pid
        assert sigint == signal.SIG_IGN and omp == "1" and torch_threads == "1"
    assert total == 64 * 2**20 and memory.added >= 60 * 2**20 and memory.peak >= memory.start > 0
    for pid in {setup[0] for setup, _ in setups}:  # none outlives the block (each was reaped)
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_a_dead_pool_worker_is_one_line_saying_what_was_kept():
    from concurrent.futures.process import BrokenProcessPool

    with xd.process_pool(1) as pool, pytest.raises(BrokenProcessPool) as err:
        pool.submit(os._exit, 9).result()
    died = xd.worker_died(err.value, 1, "the 3 imagettes committed are kept")
    assert isinstance(died, XWVNetError) and isinstance(died, RuntimeError) and len(str(died).splitlines()) == 1
    assert "the 3 imagettes committed are kept" in str(died) and "fewer workers than 1" in str(died)
    with pytest.raises(ValueError, match="workers"), xd.process_pool(0):
        pass
