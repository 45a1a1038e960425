"""The persistent approximate index (faiss): recall, bounded memory, provenance, integrity, refusal, update."""

from __future__ import annotations

import hashlib
import json
import tracemalloc

import numpy as np
import pytest

from tests._embeddings import as_dataset, mixture, recall
from xwvnet import retrieval as R
from xwvnet import schema as S
from xwvnet.errors import XWVNetError
from xwvnet.io import store as zs
from xwvnet.io.storage import locate
from xwvnet.retrieval.index import index_path, required_recall

try:
    import faiss
except ImportError:  # the tests that need it are skipped
    faiss = None


needs_faiss = pytest.mark.skipif(faiss is None, reason="the approximate index needs faiss-cpu (pip install "
                                 "xwvnet[faiss])")


def write_store(path, x: np.ndarray, chunk: int = 500, hash_: str = "abc"):
    """An embedding store holding ``x`` (as xwvnet.embed_store would leave it), or extended to hold it."""
    source = as_dataset(x, hash_=hash_).drop_vars(S.EMBEDDING)
    attrs = {"encoder": "toy", "encoder_weights_hash": hash_}
    loc = locate(path)
    _, done = zs.extend_embedding_store(loc, source, chunk_size=chunk, dim=x.shape[1], attrs=attrs,
                                        embedding_attrs=attrs)
    writer = zs.EmbeddingWriter(loc, every=float("inf"))
    for c in range(len(done)):
        a, b = c * chunk, min(len(x), (c + 1) * chunk)
        if done[c] < b - a:
            writer.merge(zs.write_embedding_rows(writer.fork(), c, a, a + int(done[c]), x[a + int(done[c]):b]), c)
    writer.commit()
    return path


@pytest.fixture(scope="module")
def clustered(tmp_path_factory):
    x = mixture(6000, 64)
    path = write_store(tmp_path_factory.mktemp("idx") / "emb.zarr", x)
    return path, x


@needs_faiss
def test_default_index_reaches_recall_on_clustered_embeddings(clustered):
    path, x = clustered
    index = R.build_index(path, overwrite=True)
    assert index.path == index_path(path) and index.path.name == "emb.zarr.index"
    ds = zs.open_store(path)
    queries = [str(v) for v in ds[S.IMAGETTE].values[::30]]
    exact = R.neighbors(ds, k=10, query=queries)
    approx = R.neighbors(ds, k=10, query=queries, index=index)
    assert approx["neighbor"].dims == exact["neighbor"].dims and approx.sizes == exact.sizes
    assert recall(approx, exact) >= 0.95
    assert not (approx["neighbor"].values == np.array(queries)[:, None]).any()  # self excluded
    assert (np.diff(approx["similarity"].values, axis=1) <= 1e-6).all()
    close = np.abs(approx["similarity"].values - exact["similarity"].values) < 0.02
    assert close.mean() > 0.9  # SQ8 similarities are close to the exact ones
    again = R.neighbors(ds, k=10, query=queries, index=index.path)  # a path works too
    np.testing.assert_array_equal(again["neighbor"].values, approx["neighbor"].values)


@needs_faiss
def test_provenance_is_recorded_and_a_mismatched_index_is_refused(clustered, tmp_path):
    path, x = clustered
    index = R.build_index(path, tmp_path / "a.index", method="ivf", nlist=16)
    info = json.loads((tmp_path / "a.index.json").read_text())
    assert info["format"] == "xwvnet-retrieval-index" and info["n"] == 6000 and info["n_added"] == 6000
    assert info["encoder_weights_hash"] == "abc" and info["store_format"] == "xwvnet-embedding-store"
    assert info["nlist"] == 16 and info["factory"] == "IDMap,IVF16,SQ8,Refine(SQfp16)" and info["faiss_version"]
    assert info["method"] == "ivf" and info["effort"] == info["tuning"]["effort"] and info["refine_factor"] == 4
    assert info["first_id"] == "im000000" and info["last_id"] == "im005999"
    reopened = R.open_index(tmp_path / "a.index", path)
    assert reopened.n == 6000 and reopened.effort == info["effort"]
    assert faiss.downcast_index(reopened.faiss_index.index).k_factor == 4  # the re-ranking depth is saved too
    ds = zs.open_store(path)
    other = ds.assign({S.EMBEDDING: ds[S.EMBEDDING].assign_attrs(encoder_weights_hash="zzz")})
    with pytest.raises(R.IndexMismatchError, match="encoder_weights_hash"):
        R.neighbors(other, k=3, query=["im000001"], index=index)
    with pytest.raises(R.IndexMismatchError, match="fewer"):
        R.neighbors(ds.isel({S.IMAGETTE: slice(0, 5000)}), k=3, query=["im000001"], index=index)
    renamed = ds.assign_coords({S.IMAGETTE: [f"x{i}" for i in range(6000)]})
    with pytest.raises(R.IndexMismatchError, match="other imagettes"):
        R.neighbors(renamed, k=3, query=["x1"], index=index)
    with pytest.raises(ValueError, match="already exists"):
        R.build_index(path, tmp_path / "a.index")
    (tmp_path / "a.index.json").write_text("[1, 2]")
    with pytest.raises(R.IndexMismatchError, match="not an xwvnet retrieval index"):
        R.open_index(tmp_path / "a.index")
    with pytest.raises(FileNotFoundError, match="build_index"):
        R.open_index(tmp_path / "none.index")


@needs_faiss
@pytest.mark.parametrize("method", ["hnsw", "ivf"])
def test_update_adds_appended_imagettes_without_rebuilding(tmp_path, method):
    x = mixture(5000, 32, seed=3)
    path = write_store(tmp_path / "emb.zarr", x[:3000])
    index = R.build_index(path, method=method, nlist=32)
    trained = faiss.extract_index_ivf(index.faiss_index).quantizer if method == "ivf" else index._inner().storage
    before = trained.reconstruct_n(0, 32)
    write_store(path, x)  # 2000 imagettes appended
    ds = zs.open_store(path)
    with pytest.raises(R.IndexMismatchError, match="update_index"):
        R.neighbors(ds, k=5, query=["im004500"], index=index)
    updated = R.update_index(path)
    assert updated.n == 5000 and updated.info["n_added"] == 5000 and updated.faiss_index.ntotal == 5000
    trained = faiss.extract_index_ivf(updated.faiss_index).quantizer if method == "ivf" else updated._inner().storage
    np.testing.assert_array_equal(trained.reconstruct_n(0, 32), before)  # the first ones are untouched
    found = R.neighbors(ds, k=5, query=["im004500", "im000007"], index=index_path(path))
    exact = R.neighbors(ds, k=5, query=["im004500", "im000007"])
    assert recall(found, exact) >= 0.8
    assert R.update_index(path).n == 5000  # nothing new: unchanged


@needs_faiss
def test_non_finite_rows_are_left_out_and_non_finite_queries_find_nothing(tmp_path):
    x = mixture(2000, 16, seed=4)
    x[100:120] = np.nan  # e.g. a chunk not yet embedded
    path = write_store(tmp_path / "emb.zarr", x)
    index = R.build_index(path)
    assert index.info["n_skipped"] == 20 and index.info["n_added"] == 1980
    ds = zs.open_store(path)
    found = R.neighbors(ds, k=10, query=["im000105", "im000001"], index=index)
    assert (found["neighbor"].values[0] == "").all() and np.isnan(found["similarity"].values[0]).all()
    assert not np.isin(found["neighbor"].values[1], [f"im{i:06d}" for i in range(100, 120)]).any()


@needs_faiss
def test_zero_norm_rows_are_left_out_and_zero_norm_queries_find_nothing(tmp_path):
    """A zero row has no direction: the index skips it and, as a query, it finds nothing, as in exact search."""
    x = mixture(2000, 16, seed=5)
    x[[30, 31, 900]] = 0.0
    ds = as_dataset(x)
    index = R.build_index(ds, tmp_path / "z.index", target_recall=None)
    assert index.info["n_skipped"] == 3 and index.info["n_added"] == 1997 and index.faiss_index.ntotal == 1997
    zero = ["im000030", "im000031", "im000900"]
    found = R.neighbors(ds, k=10, query=["im000030", "im000001"], index=index)
    assert (found["neighbor"].values[0] == "").all() and np.isnan(found["similarity"].values[0]).all()
    assert not np.isin(found["neighbor"].values[1], zero).any() and (found["neighbor"].values[1] != "").all()
    exact = R.neighbors(ds, k=10, query=["im000030", "im000001"])
    assert (exact["neighbor"].values[0] == "").all() and not np.isin(exact["neighbor"].values[1], zero).any()
    sim, idx = index.search(np.zeros((1, 16), np.float32), 5)
    assert (idx == -1).all() and np.isneginf(sim).all()


@needs_faiss
def test_a_changed_byte_in_the_index_file_is_refused(tmp_path):
    """faiss reads an index with a flipped byte in its codes and returns other neighbours: the sidecar's SHA-256
    of the index file (written after it) makes open_index refuse it, saying to rebuild."""
    x = mixture(3000, 32, seed=7)
    ds = as_dataset(x)
    index = R.build_index(ds, tmp_path / "f.index", quantizer="Flat", target_recall=None)
    info = json.loads((tmp_path / "f.index.json").read_text())
    assert info["version"] == 2 and info["sha256"] == hashlib.sha256(index.path.read_bytes()).hexdigest()
    assert R.open_index(index.path).n == 3000  # intact: accepted
    intact = index.path.read_bytes()
    at = intact.find(np.ascontiguousarray(x[1500], np.float32).tobytes())  # row 1500's Flat code
    assert at > 0
    for where, flip in ((at + 3, 0x40), (len(intact) // 2, 0xFF)):  # a code's exponent; the middle of the file
        data = bytearray(intact)
        data[where] ^= flip
        index.path.write_bytes(bytes(data))
        if where == at + 3:
            assert faiss.read_index(str(index.path)).ntotal == 3000  # faiss alone reads it, and searches it
        with pytest.raises(R.IndexIntegrityError,
                           match=r"SHA-256 is [0-9a-f]{64}, the sidecar records .*build_index"):
            R.open_index(index.path)
        with pytest.raises(R.IndexMismatchError):  # the integrity error is an index error, and a ValueError
            R.neighbors(ds, k=3, query=["im000001"], index=index.path)
    rebuilt = R.build_index(ds, tmp_path / "f.index", quantizer="Flat", target_recall=None, overwrite=True)
    assert R.open_index(rebuilt.path).n == 3000


@needs_faiss
def test_an_index_saved_without_a_sha256_is_refused_with_what_to_do(clustered, tmp_path):
    """An index of the previous version (sidecar version 1, no sha256) cannot be told intact: refused, rebuild.

    Accepting it with a warning would let anyone turn the check off by deleting one key of the sidecar."""
    path, _ = clustered
    index = R.build_index(path, tmp_path / "old.index", method="ivf", nlist=16, target_recall=None)
    side = tmp_path / "old.index.json"
    info = json.loads(side.read_text())
    del info["sha256"]
    info["version"] = 1
    side.write_text(json.dumps(info))
    for call in (lambda: R.open_index(index.path), lambda: R.update_index(path, index.path)):
        with pytest.raises(R.IndexIntegrityError, match=r"no SHA-256 .*older than index version 2.*rebuild it with "
                                                        r"xwvnet\.retrieval\.build_index\(store, overwrite=True\)"):
            call()
    assert issubclass(R.IndexIntegrityError, XWVNetError) and issubclass(R.IndexIntegrityError, ValueError)


@needs_faiss
def test_building_reads_the_store_in_bounded_blocks(tmp_path):
    """16 000 x 128 float32 (8 MB): the build holds one block of 1000 (0.5 MB) at a time, never the store; tuning
    adds its 1000 queries (0.5 MB) and their exact neighbours."""
    x = mixture(16_000, 128, seed=6)
    path = write_store(tmp_path / "emb.zarr", x, chunk=1000)
    for target, bound in ((None, 5e6), (0.95, 6e6)):
        tracemalloc.start()
        try:
            R.build_index(path, train_size=1000, block=1000, target_recall=target, overwrite=True)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < bound, f"peak {peak / 1e6:.1f} MB"  # faiss's own memory is not traced: Python's is bounded


@needs_faiss
def test_bad_parameters_are_refused(clustered, tmp_path):
    path, _ = clustered
    with pytest.raises(ValueError, match="quantizer"):
        R.build_index(path, tmp_path / "b.index", quantizer="nonsense")
    with pytest.raises(ValueError, match="block"):
        R.build_index(path, tmp_path / "b.index", block=0)
    with pytest.raises(ValueError, match="method"):
        R.build_index(path, tmp_path / "b.index", method="lsh")
    index = R.open_index(R.build_index(path, tmp_path / "c.index", effort=40).path)
    assert index.effort == 40 and index.info["factory"] == "IDMap,IVF128,SQ8,Refine(SQfp16)"  # 5000 // 39 lists
    assert index.info["tuning"]["tried"][0]["effort"] == 40  # met at once: tuning never lowers the effort given
    with pytest.raises(ValueError, match="effort"):
        index.effort = 0
    index.effort = 2
    assert index.effort == 2


@needs_faiss
def test_an_index_url_is_refused_never_taken_for_a_local_path(clustered, tmp_path, monkeypatch):
    path, _ = clustered
    monkeypatch.chdir(tmp_path)
    for call in (lambda: R.build_index(path, "s3://bucket/emb.index"), lambda: R.open_index("s3://bucket/emb.index"),
                 lambda: R.update_index(path, "gs://bucket/emb.index")):
        with pytest.raises(ValueError, match="an index is read and written on a local file system only; give a "
                           "local path"):
            call()
    assert not any(tmp_path.iterdir())  # nothing written to a folder named after the URL
    assert R.build_index(path, f"file://{tmp_path}/emb.index").path == tmp_path / "emb.index"


def test_without_faiss_building_says_how_to_install(monkeypatch, tmp_path):
    import builtins

    real_import = builtins.__import__

    def no_faiss(name, *args, **kwargs):
        if name == "faiss":
            raise ImportError("No module named 'faiss'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_faiss)
    with pytest.raises(ImportError, match=r"pip install xwvnet\[faiss\]"):
        R.build_index(tmp_path / "emb.zarr")


@needs_faiss
@pytest.mark.parametrize("lazy", [False, True], ids=["in-memory", "dask"])
def test_an_index_of_an_embedding_dataset(lazy, tmp_path):
    x = mixture(3000, 32, clusters=30, seed=8)
    ds = as_dataset(x)
    ds = ds.chunk({S.IMAGETTE: 700}) if lazy else ds
    with pytest.raises(ValueError, match="pass path="):
        R.build_index(ds)
    index = R.build_index(ds, tmp_path / "ds.index")
    assert index.n == 3000 and index.info["store"] == "<dataset>"
    assert index.info["encoder_weights_hash"] == "abc"
    queries = [str(v) for v in ds[S.IMAGETTE].values[::50]]
    exact = R.neighbors(ds, k=10, query=queries)
    approx = R.neighbors(ds, k=10, query=queries, index=tmp_path / "ds.index")
    assert recall(approx, exact) >= 0.95
    with pytest.raises(R.IndexMismatchError):
        R.neighbors(as_dataset(x[:2000]), k=3, index=index)  # another Dataset is refused


@needs_faiss
def test_build_time_tuning_raises_the_effort_to_the_target_recall(tmp_path):
    x = mixture(6000, 64, clusters=60, spread=1.5, seed=9)
    ds = as_dataset(x)
    untuned = R.build_index(ds, tmp_path / "a.index", effort=2, target_recall=None)
    assert untuned.info["tuning"] is None and untuned.effort == 2
    index = R.build_index(ds, tmp_path / "b.index", effort=2, target_recall=0.95, tune_sample=300)
    tuning = json.loads((tmp_path / "b.index.json").read_text())["tuning"]
    assert tuning["met"] and tuning["recall"] >= 0.95 and tuning["sample"] == 300 and tuning["k"] == 10
    assert tuning["effort"] == index.effort > 2 and tuning["queries_per_second"] > 0
    assert [t["effort"] for t in tuning["tried"]][:2] == [2, 4] and tuning["tried"][0]["recall"] < 0.95
    queries = [str(v) for v in ds[S.IMAGETTE].values[1::20]]  # other queries than the tuning sample's
    exact = R.neighbors(ds, k=10, query=queries)
    assert recall(R.neighbors(ds, k=10, query=queries, index=untuned), exact) < 0.95
    assert recall(R.neighbors(ds, k=10, query=queries, index=R.open_index(tmp_path / "b.index")), exact) >= 0.93
    with pytest.warns(R.RecallWarning, match="below the target"):
        coarse = R.build_index(ds, tmp_path / "c.index", quantizer="PQ4x4", refine=None, target_recall=0.999,
                               tune_sample=100)
    assert coarse.info["tuning"]["met"] is False and coarse.info["factory"] == "IVF151,PQ4x4"
    assert coarse.info["refine_factor"] is None  # 5900 // 39 lists, no id map without re-ranking
    with pytest.raises(ValueError, match="target_recall"):
        R.build_index(ds, tmp_path / "d.index", target_recall=1.5)


@needs_faiss
def test_tuning_picks_the_least_effort_whose_recall_holds_on_queries_it_never_saw(tmp_path):
    """Wide clusters need many lists visited. Tuning asks its held-out sample for the target plus a margin, stops at
    the least effort (within an eighth) that gives it, and the recall holds on new queries drawn like the data."""
    from xwvnet.retrieval.exact import search_arrays

    x = mixture(8500, 64, clusters=40, spread=3.0, seed=11)
    data, queries = x[:8000], x[8000:]  # queries not in the index, so not in its tuning sample either
    index = R.build_index(as_dataset(data), tmp_path / "t.index")
    tuning = index.info["tuning"]
    assert index.info["method"] == "ivf" and tuning["met"] and tuning["sample"] == 1000
    assert tuning["required_sample_recall"] == required_recall(0.95, tuning["se"]) > 0.95
    assert tuning["recall"] >= tuning["required_sample_recall"] and index.effort == tuning["effort"] > 8
    below = [t for t in tuning["tried"] if t["effort"] < index.effort]
    assert below and all(t["recall"] < required_recall(0.95, t["se"]) for t in below)
    assert max(t["effort"] for t in below) >= index.effort * 7 / 8  # bisected close to the least effort
    _, truth = search_arrays(queries, data, 10)
    _, found = R.open_index(index.path).search(queries, 10)
    held_out = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth, strict=True)])
    assert held_out >= 0.95
    index.effort = 1
    _, coarse = index.search(queries, 10)
    assert np.mean([len(set(a) & set(b)) / 10 for a, b in zip(coarse, truth, strict=True)]) < 0.5
