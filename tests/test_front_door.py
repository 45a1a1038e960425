"""The library's front door (issue 21): one vocabulary, old names for one release, checks at the edge, progress.

Each renamed argument group has one test: the old call still works, and its FutureWarning names the new name.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import xwvnet
from xwvnet import _runtime
from xwvnet import distributed as xd
from xwvnet import schema as S
from xwvnet.archive import embed_store
from xwvnet.errors import XWVNetError
from xwvnet.io import store as zs
from xwvnet.io.storage import locate

from ._safe_factory import make_wv_safe
from .conftest import make_imagettes, save_random_resnet18

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


def _renamed(record, old: str, new: str) -> None:
    messages = [str(w.message) for w in record if issubclass(w.category, FutureWarning)]
    assert any(f"{old}=" in m and f"{new}=" in m for m in messages), messages


# ---- renamed arguments: the old call works and names the new name ----------------------------------------------
def test_to_store_store_and_chunk_are_out_and_chunk_size(tmp_path):
    ds = make_imagettes(6, lines=16, samples=16, seed=2)
    with pytest.warns(FutureWarning) as record:
        report = xwvnet.to_store(ds, store=tmp_path / "a.zarr", chunk=3)
    _renamed(record, "store", "out")
    _renamed(record, "chunk", "chunk_size")
    assert report.added == 6
    new = xwvnet.to_store(ds, out=tmp_path / "b.zarr", chunk_size=3)
    assert new.added == 6
    for name in ("a.zarr", "b.zarr"):
        assert zs.opened(locate(tmp_path / name)).group[S.QUICKLOOK].chunks[0] == 3
    with pytest.raises(TypeError, match="both chunk= and its new name chunk_size="):
        xwvnet.to_store(ds, tmp_path / "c.zarr", chunk=3, chunk_size=3)


def test_add_variables_store_is_out(tmp_path):
    path = tmp_path / "s.zarr"
    xwvnet.to_store(make_imagettes(4, lines=8, samples=8, seed=4), path)
    ds = xwvnet.open_store(path)
    with pytest.warns(FutureWarning) as record:
        zs.add_variables(ds.assign(score=(S.IMAGETTE, np.arange(4.0))), store=path, names=["score"])
    _renamed(record, "store", "out")
    np.testing.assert_array_equal(xwvnet.open_store(path)["score"].values, np.arange(4.0))


def test_embed_store_old_names_still_run(source, weights, tmp_path):
    with pytest.warns(FutureWarning) as record:
        report = embed_store(input_store=source, output_store=tmp_path / "o.zarr", encoder=weights, chunk=CHUNK,
                             progress=False)
    for old, new in (("input_store", "store"), ("output_store", "out"), ("chunk", "chunk_size")):
        _renamed(record, old, new)
    assert report.complete and report.chunks == N // CHUNK
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # the new names warn nothing
        again = embed_store(store=source, out=tmp_path / "n.zarr", encoder=weights, chunk_size=CHUNK,
                            progress=False)
    np.testing.assert_array_equal(xwvnet.open_store(tmp_path / "o.zarr")[S.EMBEDDING].values,
                                  xwvnet.open_store(tmp_path / "n.zarr")[S.EMBEDDING].values)
    assert again.chunks == report.chunks


def test_embed_store_deprecated_workers_goes_through_local_client(source, weights, tmp_path, monkeypatch):
    """``workers=`` still builds a local cluster (here one that fails to start): warned, then one clear error."""
    def refuse(*args, **kwargs):
        raise RuntimeError("Nanny failed to start.")

    monkeypatch.setattr(xd, "LocalCluster", refuse)
    out = tmp_path / "w.zarr"
    with pytest.warns(FutureWarning, match=r"client=xwvnet\.distributed\.local_client"), \
            pytest.raises(xd.LocalClusterError, match="Nanny failed to start.*fewer worker processes"):
        embed_store(source, out, weights, workers=2, device="cpu", progress=False)
    assert not out.exists()
    with pytest.raises(ValueError, match="client= only"), pytest.warns(FutureWarning):
        embed_store(source, out, weights, client="tcp://127.0.0.1:1", workers=2, progress=False)


def test_ingest_store_and_scheduler_are_out_and_client(tmp_path, wvnet_samples):
    files = sorted(wvnet_samples.glob("*.png"))[:3]
    # quicklooks are read here whatever the client: the address is never dialled, only the names are at stake
    with pytest.warns(FutureWarning) as record:
        report = xwvnet.ingest([str(f) for f in files], store=tmp_path / "q.zarr", scheduler="tcp://127.0.0.1:1")
    _renamed(record, "store", "out")
    _renamed(record, "scheduler", "client")
    assert report.added == 3
    assert xwvnet.ingest([str(f) for f in files], out=tmp_path / "q.zarr").present == 3
    with pytest.raises(TypeError, match="both scheduler= and its new name client="), pytest.warns(FutureWarning):
        xwvnet.ingest([str(f) for f in files], tmp_path / "q.zarr", scheduler="tcp://a:1", client="tcp://b:1")


def test_ingest_workers_is_deprecated_and_still_runs(tmp_path):
    product, _ = make_wv_safe(tmp_path / "safe", seed=2)
    with pytest.warns(FutureWarning, match=r"ingest\(client=") as record:
        report = xwvnet.ingest([product], tmp_path / "p.zarr", workers=1)
    assert any("workers=" in str(w.message) for w in record)
    assert report.added >= 1 and report.total == report.added
    with pytest.raises(ValueError, match="workers must be a positive number"), pytest.warns(FutureWarning):
        xwvnet.ingest([product], tmp_path / "x.zarr", workers=0)
    assert not (tmp_path / "x.zarr").exists()


def test_open_safe_chunks_is_chunk_size(tmp_path):
    from xwvnet.io.safe import open_safe

    product, _ = make_wv_safe(tmp_path, seed=3)
    with pytest.warns(FutureWarning) as record:
        old = open_safe(product, chunks=2)
    _renamed(record, "chunks", "chunk_size")
    new = open_safe(product, chunk_size=2)
    assert old.sigma0.data.chunks[0] == new.sigma0.data.chunks[0]
    assert max(new.sigma0.data.chunks[0]) == min(2, new.sizes[S.IMAGETTE])
    with pytest.raises(ValueError, match="chunk_size must be a positive number"):
        open_safe(product, chunk_size=0)


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
    assert _runtime.device_name(" CUDA:1 ") == "cuda:1"
    with pytest.raises(ValueError, match="device must be"):
        _runtime.device_name("gpu0")


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
