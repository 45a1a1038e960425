"""Exact cosine top-k (neighbors, search, search_arrays): equal to brute-force numpy, lazy over dask, memory bounded,
non-finite and zero rows left out; retrieval metrics (precision@k, mAP@k) by hand."""

from __future__ import annotations

import tracemalloc

import dask
import dask.array as da
import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from xwvnet import retrieval as R
from xwvnet import schema as S
from xwvnet.retrieval import exact as E


def embedded(n: int, d: int = 24, seed: int = 0) -> xr.Dataset:
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    ids = np.array([f"q{seed}-{i:05d}" for i in range(n)], dtype=object)
    return xr.Dataset({S.EMBEDDING: ((S.IMAGETTE, S.FEATURE), x, {"encoder": "toy"})},
                      coords={S.IMAGETTE: ids, S.TIME: (S.IMAGETTE, np.arange(n).astype("datetime64[ns]"))})


def brute_force(q: np.ndarray, d: np.ndarray, k: int, self_rows: np.ndarray | None = None):
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    dn = d / np.linalg.norm(d, axis=1, keepdims=True)
    sim = qn.astype(np.float64) @ dn.T.astype(np.float64)
    if self_rows is not None:
        ok = self_rows >= 0
        sim[np.flatnonzero(ok), self_rows[ok]] = -np.inf
    order = np.argsort(-sim, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(sim, order, axis=1)


def rows_of(result: xr.Dataset) -> np.ndarray:
    return np.array([[int(v.split("-")[1]) for v in row] for row in result["neighbor"].values])


@pytest.mark.parametrize(("query_block", "database_block"), [(64, 50), (1000, 1000), (7, 333)])
def test_equals_brute_force_with_any_blocks(query_block, database_block):
    ds = embedded(400)
    x = ds[S.EMBEDDING].values
    got = R.neighbors(ds, k=9, query_block=query_block, database_block=database_block)
    order, sims = brute_force(x, x, 9, np.arange(400))
    np.testing.assert_array_equal(rows_of(got), order)
    np.testing.assert_allclose(got["similarity"].values, sims, atol=2e-6)
    assert got["neighbor"].dims == (S.IMAGETTE, S.RANK)
    assert list(got[S.RANK].values) == list(range(1, 10))
    np.testing.assert_array_equal(got[S.TIME].values, ds[S.TIME].values)  # query coords carried


def test_self_is_excluded_and_similarities_are_sorted():
    ds = embedded(120)
    got = R.neighbors(ds, k=119, database_block=17)
    ids = ds[S.IMAGETTE].values
    assert not (got["neighbor"].values == ids[:, None]).any()
    assert (np.diff(got["similarity"].values, axis=1) <= 0).all()
    assert all(len(set(row)) == 119 for row in got["neighbor"].values)


def test_dask_backed_embeddings_stay_lazy_and_agree():
    ds = embedded(300)
    eager = R.neighbors(ds, k=5)
    lazy = R.neighbors(ds.chunk({S.IMAGETTE: 70}), k=5, database_block=90)
    assert isinstance(lazy["similarity"].data, da.Array)
    assert isinstance(lazy["neighbor"].data, da.Array)
    np.testing.assert_array_equal(lazy["neighbor"].values, eager["neighbor"].values)
    np.testing.assert_allclose(lazy["similarity"].values, eager["similarity"].values, atol=1e-6)


def test_query_by_ids_and_by_another_dataset():
    ds = embedded(200)
    x = ds[S.EMBEDDING].values
    wanted = [str(ds[S.IMAGETTE].values[i]) for i in (5, 150, 42)]
    got = R.neighbors(ds, k=4, query=wanted)
    assert list(got[S.IMAGETTE].values) == wanted
    order, _ = brute_force(x[[5, 150, 42]], x, 4, np.array([5, 150, 42]))
    np.testing.assert_array_equal(rows_of(got), order)
    other = embedded(30, seed=7)
    got = R.neighbors(ds, k=4, query=other)
    order, sims = brute_force(other[S.EMBEDDING].values, x, 4)
    np.testing.assert_array_equal(rows_of(got), order)
    np.testing.assert_allclose(got["similarity"].values, sims, atol=2e-6)
    overlap = xr.concat([ds.isel({S.IMAGETTE: [3]}), other], dim=S.IMAGETTE)  # an imagette of ds itself
    got = R.neighbors(ds, k=4, query=overlap)
    assert ds[S.IMAGETTE].values[3] not in got["neighbor"].values[0]


def test_errors_are_clear():
    ds = embedded(10)
    with pytest.raises(ValueError, match="k <= 9"):
        R.neighbors(ds, k=10)
    with pytest.raises(ValueError, match=r"holds 10 imagettes and a query is not its own neighbour: this store "
                                         r"allows k <= 9 \(n - 1"):
        R.neighbors(ds, k=12)
    with pytest.raises(ValueError, match="holds 10 imagettes: this store allows k <= 10"):
        R.neighbors(ds, k=11, exclude_self=False)
    with pytest.raises(ValueError, match="the store holds 1 imagette, so no imagette has another to be its "
                                         "neighbour"):
        R.neighbors(embedded(1), k=1)
    assert R.neighbors(embedded(1), k=1, exclude_self=False)["neighbor"].values.tolist() == [["q0-00000"]]
    with pytest.raises(ValueError, match="not in the Dataset"):
        R.neighbors(ds, k=2, query=["nope"])
    with pytest.raises(ValueError, match="Embed the"):
        R.neighbors(ds.drop_vars(S.EMBEDDING), k=2)


def test_nan_embeddings_are_never_neighbours():
    ds = embedded(50)
    x = ds[S.EMBEDDING].values.copy()
    x[7] = np.nan
    got = R.neighbors(ds.assign({S.EMBEDDING: ((S.IMAGETTE, S.FEATURE), x)}), k=48)
    others = np.delete(got["neighbor"].values, 7, axis=0)
    assert not (others == ds[S.IMAGETTE].values[7]).any()


@settings(max_examples=20, deadline=None)
@given(n=st.integers(2, 50), d=st.integers(1, 12), k=st.integers(1, 8), qb=st.integers(3, 40),
       db=st.integers(3, 40), seed=st.integers(0, 1000))
def test_property_matches_brute_force(n, d, k, qb, db, seed):
    k = min(k, n - 1)
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    sim, idx = R.search(x, x, k, self_index=np.arange(n), query_block=qb, database_block=db)
    sim, idx = sim.compute(), idx.compute()
    _, ref = brute_force(x, x, k, np.arange(n))
    np.testing.assert_allclose(sim, ref, atol=3e-6)  # ids may differ only between tied similarities
    assert (idx != np.arange(n)[:, None]).all()


def test_memory_stays_bounded_by_the_blocks():
    """200 queries against 120 000 vectors: an unblocked search holds >= 96 MB of similarities; blocks ~10 MB."""
    d = np.random.default_rng(0).standard_normal((120_000, 4)).astype(np.float32)
    q = d[:200]
    with dask.config.set(scheduler="synchronous"):
        tracemalloc.start()
        try:
            sim, idx = R.search(q, d, 10, self_index=np.arange(200), query_block=256, database_block=4096)
            sim, idx = sim.compute(), idx.compute()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert peak < 40e6, f"peak {peak / 1e6:.0f} MB"
    order, _ = brute_force(q[:5], d, 10, np.arange(5))
    np.testing.assert_array_equal(idx[:5], order)


# --- metrics ---------------------------------------------------------------------------------------------------------
def tagged() -> xr.Dataset:
    """Five imagettes on a line; a, b share tag X; c, d share Y; e has no tag."""
    x = np.array([[1, 0.0], [0.9, 0.1], [0.1, 0.9], [0, 1.0], [0.7, 0.7]], dtype=np.float32)
    labels = np.array([[1, 0], [1, 0], [0, 1], [0, 1], [0, 0]], dtype=np.int8)
    return xr.Dataset(
        {S.EMBEDDING: ((S.IMAGETTE, S.FEATURE), x), S.LABELS: ((S.IMAGETTE, S.LABEL), labels)},
        coords={S.IMAGETTE: np.array(list("abcde"), dtype=object), S.LABEL: ["X", "Y"]},
    )


def test_precision_and_average_precision_by_hand():
    ds = tagged()
    scores = R.retrieval_scores(ds, k=2)
    # a: neighbours b (X, relevant), e (untagged) -> P@2 = 0.5, AP = 1/min(2, 1) * (1/1) = 1
    np.testing.assert_allclose(scores["precision_at_k"].sel({S.IMAGETTE: "a"}), 0.5)
    np.testing.assert_allclose(scores["average_precision"].sel({S.IMAGETTE: "a"}), 1.0)
    assert np.isnan(scores["precision_at_k"].sel({S.IMAGETTE: "e"}))  # no tag: left out
    assert scores.attrs["n_queries"] == 4
    np.testing.assert_allclose(float(scores["mean_precision_at_k"]), 0.5)
    np.testing.assert_allclose(float(scores["mean_average_precision"]), 1.0)


def test_average_precision_when_relevant_comes_late():
    ds = tagged()
    flipped = R.neighbors(ds, k=3)
    flipped = flipped.assign(neighbor=(flipped["neighbor"].dims, np.array(
        [["e", "c", "b"], ["e", "a", "c"], ["e", "d", "a"], ["c", "e", "a"], ["a", "b", "c"]], dtype=object)))
    scores = R.retrieval_scores(ds, flipped)
    # a: relevant b at rank 3 -> AP = (1/3) / min(3, 1)
    np.testing.assert_allclose(scores["average_precision"].sel({S.IMAGETTE: "a"}), 1 / 3)
    # b: relevant a at rank 2 -> AP = 1/2 ; P@3 = 1/3
    np.testing.assert_allclose(scores["average_precision"].sel({S.IMAGETTE: "b"}), 0.5)
    np.testing.assert_allclose(scores["precision_at_k"].sel({S.IMAGETTE: "b"}), 1 / 3)
    np.testing.assert_allclose(scores["average_precision"].sel({S.IMAGETTE: "d"}), 1.0)


def test_relevant_counts_match_a_direct_count():
    rng = np.random.default_rng(3)
    tags = rng.random((80, 5)) < 0.2
    known = rng.random(80) < 0.9
    rows = np.arange(80)
    direct = np.array([sum(1 for j in range(80) if j != i and known[j] and (tags[i] & tags[j]).any())
                       for i in rows])
    np.testing.assert_array_equal(E._relevant_counts(tags, known, rows)[known], direct[known])


# --- the fast top-k (threshold from a sample of columns) and non-finite rows ------------------------------------------
def test_threshold_topk_is_exact_on_wide_blocks_with_ties():
    """Blocks wider than the sampled columns take the threshold path; duplicated rows make (near) ties."""
    rng = np.random.default_rng(5)
    distinct = rng.standard_normal((60, 16)).astype(np.float32)
    which = rng.integers(0, 60, 5000)
    x = distinct[which]
    q = rng.standard_normal((70, 16)).astype(np.float32)
    for k in (1, 10, 37):
        sim, idx = dask.compute(*R.search(q, x, k, query_block=32, database_block=3000))
        order, sims = brute_force(q, x, k)
        # BLAS may round copies of one row differently by an ulp: the same vectors must be found, in order
        np.testing.assert_array_equal(which[idx], which[order])
        np.testing.assert_allclose(sim, sims, atol=2e-6)
    wide = dask.compute(*R.search(q, x[:1500], 10, database_block=1500))[1]
    np.testing.assert_array_equal(which[wide], which[brute_force(q, x[:1500], 10)[0]])


def test_threshold_topk_matches_a_full_sort_with_excluded_entries():
    rng = np.random.default_rng(2)
    sim = np.round(rng.standard_normal((40, 3000)), 1).astype(np.float32)  # exact ties everywhere
    sim[:, :1500:3] = -np.inf  # many excluded entries inside the sampled columns
    sim[7] = -np.inf  # a query that finds nothing
    got = E._topk_by_threshold(sim, 12, offset=100)
    order = np.argsort(-sim, axis=1, kind="stable")[:, :12]
    ok = np.arange(40) != 7
    np.testing.assert_array_equal(got["idx"][ok], order[ok] + 100)
    np.testing.assert_array_equal(got["sim"][ok], np.take_along_axis(sim, order, axis=1)[ok])
    assert (got["idx"][7] == -1).all() and np.isneginf(got["sim"][7]).all()


def test_non_finite_and_zero_norm_queries_find_nothing_and_such_rows_are_never_found():
    ds = embedded(60)
    x = ds[S.EMBEDDING].values.copy()
    x[3] = np.nan
    x[9, 4] = np.inf
    x[20] = 0  # a zero row has no direction: treated like a non-finite one (it used to get similarity 0)
    bad = ds.assign({S.EMBEDDING: ((S.IMAGETTE, S.FEATURE), x)})
    for data in (bad, bad.chunk({S.IMAGETTE: 25})):
        got = R.neighbors(data, k=59, database_block=2000).compute()  # k beyond the 56 usable candidates
        ids = ds[S.IMAGETTE].values
        for row in (3, 9, 20):
            assert (got["neighbor"].values[row] == "").all()
            assert np.isnan(got["similarity"].values[row]).all()
        others = np.delete(got["neighbor"].values, [3, 9, 20], axis=0)
        assert not np.isin(others, ids[[3, 9, 20]]).any()
        assert ((others == "").sum(axis=1) == 3).all()  # 59 asked, 56 usable candidates (57 less the query)
        assert np.isnan(np.delete(got["similarity"].values, [3, 9, 20], axis=0)[:, -3:]).all()
        assert np.isfinite(np.delete(got["similarity"].values, [3, 9, 20], axis=0)[:, :-3]).all()


@pytest.mark.parametrize("backend", ["numpy", "faiss"])
def test_zero_norm_rows_are_excluded_on_every_path(backend):
    """Arrays (numpy and faiss block paths) and dask: a zero row is never found and, as a query, finds nothing;
    a tiny but non-zero row (its float32 sum of squares underflows) keeps its direction."""
    if backend == "faiss":
        pytest.importorskip("faiss", reason="the faiss backend needs faiss-cpu (pip install xwvnet[faiss])")
    rng = np.random.default_rng(11)
    x = rng.standard_normal((500, 16)).astype(np.float32)
    x[[7, 300]] = 0.0
    x[42] = (x[41] + 0.05 * x[40]) * np.float32(1e-25)  # close to row 41's direction (no tie), norm ~1e-25
    sim, idx = E.search_arrays(x, x, 5, self_index=np.arange(500), database_block=128, backend=backend)
    for row in (7, 300):
        assert (idx[row] == -1).all() and np.isneginf(sim[row]).all()
    assert not np.isin(idx, [7, 300]).any()
    assert idx[41, 0] == 42 and idx[42, 0] == 41 and sim[41, 0] > 0.99
    good = np.setdiff1d(np.arange(500), [7, 300])
    xg = x[good].astype(np.float64)  # the reference in float64: the tiny row's norm underflows in float32
    order, sims = brute_force(xg, xg, 5, np.arange(good.size))
    np.testing.assert_array_equal(idx[good], good[order])
    np.testing.assert_allclose(sim[good], sims, atol=2e-5)
    lazy_sim, lazy_idx = dask.compute(*R.search(da.from_array(x, chunks=100), da.from_array(x, chunks=128), 5,
                                                self_index=np.arange(500)))
    np.testing.assert_array_equal(lazy_idx, idx)


@pytest.mark.parametrize("k", [2.5, 0, -1, True, "3", None, np.float64(2)])
def test_bad_k_is_refused_clearly(k):
    ds = embedded(10)
    with pytest.raises(ValueError, match="whole number"):
        R.neighbors(ds, k=k)
    with pytest.raises(ValueError, match="whole number"):
        R.search(ds[S.EMBEDDING].values, ds[S.EMBEDDING].values, k)


def test_numpy_integer_k_is_accepted():
    got = R.neighbors(embedded(10), k=np.int64(3))
    assert got.sizes[S.RANK] == 3


@pytest.mark.parametrize("backend", ["numpy", "faiss"])
def test_array_backends_equal_brute_force(backend):
    if backend == "faiss":
        pytest.importorskip("faiss", reason="the faiss backend needs faiss-cpu (pip install xwvnet[faiss])")
    rng = np.random.default_rng(9)
    x = rng.standard_normal((4000, 32)).astype(np.float32)
    x[17] = np.nan
    q = x[:300]
    sim, idx = E.search_arrays(q, x, 10, self_index=np.arange(300), query_block=128, database_block=1500,
                               backend=backend)
    ok = np.isfinite(x).all(axis=1)
    with np.errstate(invalid="ignore"):  # the zeroed row is NaN in the reference, and sorts last
        order, sims = brute_force(np.where(ok[:300, None], q, 1), np.where(ok[:, None], x, 0), 10, np.arange(300))
    good = np.arange(300) != 17
    np.testing.assert_array_equal(idx[good], order[good])
    np.testing.assert_allclose(sim[good], sims[good], atol=2e-6)
    assert (idx[17] == -1).all() and not (idx == 17).any()
    with pytest.raises(ValueError, match="backend"):
        E.search_arrays(q, x, 3, backend="gpu")


def test_unit_rows_are_searched_as_they_are_with_the_same_result():
    from xwvnet.retrieval.exact import search_arrays

    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 32)).astype(np.float32)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    s1, i1 = search_arrays(unit[:20], unit, 5, backend="numpy")
    s2, i2 = search_arrays(x[:20], x, 5, backend="numpy")
    np.testing.assert_array_equal(i1, i2)
    np.testing.assert_allclose(s1, s2, atol=1e-5)
    brute = np.argsort(-(unit[:20] @ unit.T), axis=1)[:, :5]
    np.testing.assert_array_equal(i1, brute)
