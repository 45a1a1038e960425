"""The library's front door: one vocabulary (no old names), checks at the edge, progress, local clusters."""

from __future__ import annotations

import numpy as np
import pytest

import xwvnet
from tests._factories import make_imagettes, save_random_resnet18
from tests._safe_factory import make_wv_safe
from xwvnet import _runtime
from xwvnet import distributed as xd
from xwvnet import schema as S
from xwvnet.archive import embed_store
from xwvnet.errors import XWVNetError
from xwvnet.io import store as zs
from xwvnet.io.storage import locate

torch = pytest.importorskip("torch")

N, SIZE, CHUNK = 8, 48, 4


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return save_random_resnet18(tmp_path_factory.mktemp("weights") / "resnet18.pt", seed=0)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    path = tmp_path_factory.mktemp("input") / "in.zarr"
    xwvnet.to_store(make_imagettes(N, lines=SIZE, samples=SIZE, seed=1), path, chunk_size=CHUNK)
    return path


# ---- one vocabulary, no old names ---------------------------------------------------------------------------------
def test_the_vocabulary_and_no_old_names(tmp_path, source, weights):
    from xwvnet.io.safe import open_safe

    ds = make_imagettes(6, lines=16, samples=16, seed=2)
    assert xwvnet.to_store(ds, out=tmp_path / "b.zarr", chunk_size=3).added == 6
    assert zs.opened(locate(tmp_path / "b.zarr")).group[S.QUICKLOOK].chunks[0] == 3
    product, _ = make_wv_safe(tmp_path / "safe", seed=3)
    assert max(open_safe(product, chunk_size=2).sigma0.data.chunks[0]) == 2
    for call in (lambda: xwvnet.to_store(ds, store=tmp_path / "a.zarr"),
                 lambda: xwvnet.to_store(ds, tmp_path / "a.zarr", chunk=3),
                 lambda: open_safe(product, chunks=2),
                 lambda: embed_store(input_store=source, output_store=tmp_path / "o.zarr", encoder=weights),
                 lambda: embed_store(source, tmp_path / "o.zarr", weights, workers=2),
                 lambda: embed_store(source, tmp_path / "o.zarr", weights, scheduler="threads"),
                 lambda: xwvnet.ingest([product], tmp_path / "p.zarr", workers=2),
                 lambda: xwvnet.ingest([product], store=tmp_path / "p.zarr")):
        with pytest.raises(TypeError, match="unexpected keyword argument"):
            call()
    assert not (tmp_path / "a.zarr").exists() and not (tmp_path / "o.zarr").exists()
    assert not (tmp_path / "p.zarr").exists()


def test_threads_here_while_a_client_is_active(source, weights, tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None):
        report = embed_store(source, tmp_path / "t.zarr", weights, client="threads", progress=False)
    assert report.complete and "thread pool" in report.runner


# ---- checks at the edge ------------------------------------------------------------------------------------------
def test_to_store_bad_chunk_size_writes_nothing(tmp_path):
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="chunk_size must be a positive number"):
            xwvnet.to_store(make_imagettes(2, lines=8, samples=8), tmp_path / "s.zarr", chunk_size=bad)
        assert not (tmp_path / "s.zarr").exists()


def test_embed_checks_once_at_the_edge(weights, monkeypatch):
    ds = make_imagettes(4, lines=SIZE, samples=SIZE, seed=5).chunk({S.IMAGETTE: 2})
    loads = []
    real = xwvnet.inference.load_encoder
    monkeypatch.setattr(xwvnet.inference, "load_encoder", lambda e: loads.append(e) or real(e))
    out = xwvnet.embed(ds, weights).compute(scheduler="synchronous")
    assert len(loads) == 1  # once for the call, not once per chunk
    assert np.isfinite(out[S.EMBEDDING].values).all()
    for bad, match in [({"batch_size": 0}, "batch_size"), ({"precision": "fp8"}, "precision"),
                       ({"device": "gpu0"}, "device must be")]:
        with pytest.raises(ValueError, match=match):
            xwvnet.embed(ds, weights, **bad)


def test_runtime_checks():
    assert _runtime.check_count(3, "batch_size") == 3
    assert _runtime.check_count(np.int64(2), "chunk_size") == 2
    for bad in (0, -1, 1.5, True, "4", None):
        with pytest.raises(ValueError, match="chunk_size must be a positive number of imagettes"):
            _runtime.check_count(bad, "chunk_size")


# ---- progress ----------------------------------------------------------------------------------------------------
class _Bars:
    """Records every tqdm bar's updates."""

    def __init__(self, monkeypatch):
        import tqdm.auto

        self.updates: list[list[int]] = []
        real, bars = tqdm.auto.tqdm, self

        class Recording(real):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                self.mine: list[int] = []
                bars.updates.append(self.mine)

            def update(self, n=1):
                if n:
                    self.mine.append(int(n))
                return super().update(n)

        monkeypatch.setattr(tqdm.auto, "tqdm", Recording)


def test_embed_store_bar_moves_per_batch(source, weights, tmp_path, monkeypatch):
    bars = _Bars(monkeypatch)
    embed_store(source, tmp_path / "p.zarr", weights, chunk_size=CHUNK, batch_size=2, progress=True)
    moves = [u for u in bars.updates if u]
    assert len(moves) == 1 and sum(moves[0]) == N
    assert max(moves[0]) <= 2  # per batch of 2 imagettes, not per chunk of 4


def test_embed_progress_eager_bar_and_lazy_warning(weights, monkeypatch):
    bars = _Bars(monkeypatch)
    ds = make_imagettes(5, lines=SIZE, samples=SIZE, seed=6)
    eager = xwvnet.embed(ds, weights, batch_size=2, progress=True)
    assert [u for u in bars.updates if u] == [[2, 2, 1]]
    with pytest.warns(xwvnet.errors.XWVNetWarning, match="ProgressBar"):
        lazy = xwvnet.embed(ds.chunk({S.IMAGETTE: 5}), weights, batch_size=2, progress=True)
    np.testing.assert_allclose(lazy[S.EMBEDDING].values, eager[S.EMBEDDING].values, atol=1e-6, rtol=0)
    quiet = _Bars(monkeypatch)
    xwvnet.embed(ds, weights)  # default off
    assert not any(quiet.updates)


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
