"""Nearest imagettes by cosine similarity of their embeddings (exact), and retrieval scores against tags.

Search is exact and blocked: each task multiplies a block of queries by a block of the database and keeps only
its top ``k``; the per-block candidates are merged by a tree reduction. Memory is bounded by the block sizes, never
by N x N, and the query blocks run in parallel under dask. A million 2048-d embeddings need only the database
itself (which may stay lazy, e.g. in a Zarr store) plus a few hundred MB of working space per thread.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr

from . import schema as S

QUERY_BLOCK = 1024  # query rows per task
DATABASE_BLOCK = 8192  # database rows per task: a task holds QUERY_BLOCK x DATABASE_BLOCK similarities
SPLIT_EVERY = 8  # candidate blocks merged per reduction task
TOPK = np.dtype([("sim", "f4"), ("idx", "i8")])


def _norms(x: np.ndarray) -> np.ndarray:
    return np.sqrt(np.einsum("ij,ij->i", x, x, dtype=np.float64)).astype(np.float32)


def _unit(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero; NaN rows stay NaN and are never chosen)."""
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(_norms(x), np.float32(1e-30))[:, None]


def _sorted_topk(sim: np.ndarray, idx: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` best (highest similarity, then lowest index) of each row, sorted, as a TOPK array."""
    rows, width = sim.shape
    out = np.empty((rows, k), dtype=TOPK)
    out["sim"], out["idx"] = -np.inf, -1
    if rows == 0 or width == 0:
        return out
    kk = min(k, width)
    if width > kk:
        part = np.argpartition(sim, width - kk, axis=1)[:, width - kk:]  # the kk largest, unordered
        sim, idx = np.take_along_axis(sim, part, axis=1), np.take_along_axis(idx, part, axis=1)
    order = np.lexsort((idx, -sim), axis=-1)
    out["sim"][:, :kk] = np.take_along_axis(sim, order, axis=1)
    out["idx"][:, :kk] = np.take_along_axis(idx, order, axis=1)
    return out


def _block_topk(q: np.ndarray, d: np.ndarray, didx: np.ndarray, qself: np.ndarray, k: int) -> np.ndarray:
    """Top ``k`` of one query block against one database block (global database indices in ``didx``)."""
    if q.shape[0] == 0 or d.shape[0] == 0:
        return np.full((q.shape[0], k), (-np.inf, -1), dtype=TOPK)
    sim = _unit(q) @ np.asarray(d, dtype=np.float32).T
    sim *= 1.0 / np.maximum(_norms(d), np.float32(1e-30))[None, :]  # scale columns: cheaper than a unit copy of d
    np.nan_to_num(sim, copy=False, nan=-np.inf)
    start = int(didx[0])
    rows = np.flatnonzero((qself >= start) & (qself < start + d.shape[0]))
    sim[rows, qself[rows] - start] = -np.inf
    return _sorted_topk(sim, np.broadcast_to(didx[None, :], sim.shape), k)


def _merge(block: np.ndarray, axis: Any = None, keepdims: bool = True, k: int = 10) -> np.ndarray:
    """Merge candidate lists laid side by side along axis 1 into the top ``k`` (a chunk/combine/aggregate step)."""
    if isinstance(block, list):  # dask passes a list when it does not concatenate
        block = np.concatenate(block, axis=1)
    return _sorted_topk(block["sim"], block["idx"], k)


def partial_merge(k: int) -> Callable[..., np.ndarray]:
    """A dask reduction step that keeps the top ``k`` candidates of each query row.

    Parameters
    ----------
    k : int
        Candidates kept per row.

    Returns
    -------
    callable
        ``merge(block, axis=None, keepdims=True)``, the combine/aggregate signature of :func:`dask.array.reduction`;
        ``block`` is a TOPK array (or a list of them, laid side by side along axis 1).
    """

    def merge(block: np.ndarray, axis: Any = None, keepdims: bool = True) -> np.ndarray:
        return _merge(block, k=k)

    return merge


def _as_dask(x: xr.DataArray, rows: int) -> da.Array:
    data = x.data
    if isinstance(data, da.Array):
        return data.rechunk({0: min(rows, max(data.chunks[0])), 1: -1})
    return da.from_array(np.asarray(data), chunks=(rows, -1))


def search(
    queries: da.Array | np.ndarray,
    database: da.Array | np.ndarray,
    k: int,
    *,
    self_index: np.ndarray | None = None,
    query_block: int = QUERY_BLOCK,
    database_block: int = DATABASE_BLOCK,
) -> tuple[da.Array, da.Array]:
    """Exact cosine top-``k`` of each query among the database rows, as lazy dask arrays, best first.

    Each (query block, database block) task keeps only its own top ``k``; a tree reduction merges them, so
    memory is bounded by the blocks, never by queries x database. Ties go to the lower database index.

    Parameters
    ----------
    queries : dask.array.Array or numpy.ndarray
        Query vectors, shape (nq, d).
    database : dask.array.Array or numpy.ndarray
        Database vectors, shape (n, d); may stay lazy (e.g. a Zarr-backed embedding).
    k : int
        Neighbours per query.
    self_index : numpy.ndarray, optional
        ``self_index[i]`` is the database row to leave out for query ``i`` (-1 for none).
    query_block : int, optional
        Query rows per task.
    database_block : int, optional
        Database rows per task.

    Returns
    -------
    similarity : dask.array.Array
        float32, shape (nq, k); -inf where there are fewer than ``k`` candidates.
    index : dask.array.Array
        int64 database rows, shape (nq, k); -1 there.

    Raises
    ------
    ValueError
        If queries and database differ in feature count.

    Examples
    --------
    >>> sim, idx = search(np.eye(3, dtype="f4"), np.eye(3, dtype="f4"), 1)
    >>> idx.compute().ravel().tolist()
    [0, 1, 2]
    """
    q = queries if isinstance(queries, da.Array) else da.from_array(np.asarray(queries), chunks=(query_block, -1))
    d = database if isinstance(database, da.Array) else da.from_array(np.asarray(database), chunks=(database_block, -1))
    q = q.rechunk({0: min(query_block, max(q.chunks[0], default=1)), 1: -1})
    d = d.rechunk({0: min(database_block, max(d.chunks[0], default=1)), 1: -1})
    if q.shape[1] != d.shape[1]:
        raise ValueError(f"queries have {q.shape[1]} features but the database has {d.shape[1]}: embed both with "
                         "the same encoder.")
    self_index = np.full(q.shape[0], -1, dtype=np.int64) if self_index is None else np.asarray(self_index, np.int64)
    qself = da.from_array(self_index, chunks=(q.chunks[0],))
    didx = da.arange(d.shape[0], chunks=(d.chunks[0],), dtype=np.int64)
    with warnings.catch_warnings():  # one task per (query block, database block) is the point, not a problem
        warnings.simplefilter("ignore", da.PerformanceWarning)
        partial = da.blockwise(
            _block_topk, "ij", q, "if", d, "jf", didx, "j", qself, "i",
            k=k, dtype=TOPK, adjust_chunks={"j": k}, concatenate=True,
            meta=np.empty((0, 0), dtype=TOPK),
        )
    merge = partial_merge(k)
    best = da.reduction(
        partial, chunk=lambda b, axis=None, keepdims=True: b, combine=merge, aggregate=merge, axis=1, keepdims=True,
        dtype=TOPK,
        split_every={1: SPLIT_EVERY}, concatenate=True, output_size=k, meta=np.empty((0, 0), dtype=TOPK),
    )
    sim = best.map_blocks(lambda b: b["sim"], dtype=np.float32, meta=np.empty((0, 0), dtype=np.float32))
    idx = best.map_blocks(lambda b: b["idx"], dtype=np.int64, meta=np.empty((0, 0), dtype=np.int64))
    return sim, idx


def block_pairs(n_queries: int, n_database: int, query_block: int = QUERY_BLOCK,
                database_block: int = DATABASE_BLOCK) -> int:
    """How many (query block, database block) tasks a search makes: its available parallelism.

    Parameters
    ----------
    n_queries : int
        Query rows.
    n_database : int
        Database rows.
    query_block : int, optional
        Query rows per task.
    database_block : int, optional
        Database rows per task.

    Returns
    -------
    int
        The number of block pairs.
    """
    return -(-n_queries // max(1, query_block)) * -(-n_database // max(1, database_block))


def compute(*arrays: da.Array, tasks: int | None = None) -> tuple[np.ndarray, ...]:
    """Compute search results with one BLAS thread per dask thread (when there are ``tasks`` >= cores).

    Threaded dask already runs one matmul per core. Letting each matmul also start its own BLAS threads
    oversubscribes the cores, and on 2 cores that measured about 2x slower. A search of fewer blocks than cores
    keeps BLAS's own threads instead.

    Parameters
    ----------
    *arrays : dask.array.Array
        The lazy results (e.g. both outputs of :func:`search`).
    tasks : int, optional
        The search's block pairs (:func:`block_pairs`); unknown means many.

    Returns
    -------
    tuple of numpy.ndarray
        The computed arrays, in order.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return da.compute(*arrays)
    if tasks is not None and tasks < (os.cpu_count() or 1):
        return da.compute(*arrays)
    with threadpool_limits(limits=1, user_api="blas"):
        return da.compute(*arrays)


def _query(ds: xr.Dataset, query: str | Sequence[str] | xr.Dataset | None,
           features: str) -> tuple[xr.Dataset, np.ndarray]:
    """The query Dataset and, for each query, its own row in ``ds`` (-1 when it is not one of them)."""
    ids = ds[S.IMAGETTE].values.astype(str)
    if query is None:
        return ds, np.arange(ds.sizes[S.IMAGETTE])
    if isinstance(query, xr.Dataset):
        if features not in query.data_vars:
            raise ValueError(f"the query Dataset has no {features!r} variable: embed it with the same encoder first.")
        position = {v: i for i, v in enumerate(ids)}
        return query, np.array([position.get(v, -1) for v in query[S.IMAGETTE].values.astype(str)], dtype=np.int64)
    wanted = np.atleast_1d(np.asarray(query)).astype(str)
    missing = np.setdiff1d(wanted, ids)
    if missing.size:
        raise ValueError(f"query id(s) not in the Dataset: {missing[:5].tolist()}; give ids from ds.{S.IMAGETTE}.")
    order = {v: i for i, v in enumerate(ids)}
    rows = np.array([order[v] for v in wanted], dtype=np.int64)
    return ds.isel({S.IMAGETTE: rows}), rows


def neighbors(
    ds: xr.Dataset,
    k: int = 10,
    *,
    query: str | Sequence[str] | xr.Dataset | None = None,
    features: str = S.EMBEDDING,
    exclude_self: bool = True,
    query_block: int = QUERY_BLOCK,
    database_block: int = DATABASE_BLOCK,
) -> xr.Dataset:
    """The ``k`` most cosine-similar imagettes of ``ds`` for each query, best first; self excluded.

    The search is exact (:func:`search`): blocked so that memory never grows as queries x imagettes. Lazy when
    the embeddings are dask-backed; otherwise computed here, in parallel over query blocks.

    Parameters
    ----------
    ds : xarray.Dataset
        The imagettes searched, with ``features`` (imagette, feature).
    k : int, default 10
        Neighbours per query.
    query : str, sequence of str or xarray.Dataset, optional
        ``None`` (every imagette of ``ds``), ids of ``ds``, or another embedded Dataset (one of its imagettes whose
        id is also in ``ds`` is not its own neighbour).
    features : str, default "embedding"
        The feature variable.
    exclude_self : bool, default True
        Leave each query out of its own neighbours.
    query_block : int, optional
        Query rows per task.
    database_block : int, optional
        Imagettes per task.

    Returns
    -------
    xarray.Dataset
        Dims (``imagette``, ``rank``): ``neighbor`` (ids; ``""`` where there are fewer than ``k`` candidates) and
        ``similarity`` (cosine; NaN there), with the queries' coordinates along ``imagette``.

    Raises
    ------
    ValueError
        If ``features`` is missing, ``k`` < 1 or larger than the candidates, or a query id is unknown.

    Examples
    --------
    >>> found = xwvnet.neighbors(ds, k=5)  # doctest: +SKIP
    >>> found["neighbor"].sel(imagette=ds.imagette[0])  # doctest: +SKIP
    """
    if features not in ds.data_vars:
        raise ValueError(f"no {features!r} variable to search: found {sorted(map(str, ds.data_vars))}. Embed the "
                         "imagettes first (ds.wvnet.embed(...)).")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    qds, self_rows = _query(ds, query, features)
    n_candidates = ds.sizes[S.IMAGETTE] - (1 if exclude_self and (self_rows >= 0).any() else 0)
    if k > n_candidates:
        raise ValueError(f"k={k} neighbours asked, but the Dataset offers only {n_candidates} candidates per query: "
                         f"ask for k <= {n_candidates}.")
    db, qx = ds[features], qds[features]
    lazy = isinstance(db.data, da.Array) or isinstance(qx.data, da.Array)
    sim, idx = search(_as_dask(qx, query_block), _as_dask(db, database_block), k,
                      self_index=self_rows if exclude_self else None,
                      query_block=query_block, database_block=database_block)
    ids = np.asarray(ds[S.IMAGETTE].values).astype(object)
    lookup = np.append(ids, np.array([""], dtype=object))  # index -1 -> ""
    names = idx.map_blocks(lambda b: lookup[b], dtype=object, meta=np.empty((0, 0), dtype=object))
    sim = da.where(idx >= 0, sim, np.float32(np.nan))
    if not lazy:
        names, sim = compute(names, sim, tasks=block_pairs(qx.shape[0], db.shape[0], query_block, database_block))
    qcoords = {name: c.variable for name, c in qds.coords.items() if c.dims == (S.IMAGETTE,)}
    return xr.Dataset(
        {
            "neighbor": ((S.IMAGETTE, S.RANK), names, {"long_name": "id of the neighbouring imagette"}),
            "similarity": ((S.IMAGETTE, S.RANK), sim,
                           {"long_name": "cosine similarity of the embeddings", "units": "1"}),
        },
        coords={**qcoords, S.RANK: np.arange(1, k + 1)},
        attrs={"k": k, "features": features, "encoder": str(db.attrs.get("encoder", "unknown")),
               "exclude_self": int(exclude_self)},
    )


# --- retrieval metrics -----------------------------------------------------------------------------------------------
def _tag_matrix(ds: xr.Dataset, labels: str) -> tuple[np.ndarray, np.ndarray]:
    """(tags as bool (n, tags), known rows as bool (n,)); a row with any unknown (-1) tag is not known."""
    if labels not in ds.data_vars:
        raise ValueError(f"retrieval_scores needs tags in {labels!r} (dims ({S.IMAGETTE}, {S.LABEL})); found "
                         f"{sorted(map(str, ds.data_vars))}. Open the quicklooks with their tag CSV.")
    values = np.asarray(ds[labels].transpose(S.IMAGETTE, ...).values)
    return values == 1, ((values == 0) | (values == 1)).all(axis=1)


def _relevant_counts(tags: np.ndarray, known: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """For each query row, how many other known imagettes share a tag with it (via distinct tag patterns)."""
    patterns, inverse, counts = np.unique(tags[known], axis=0, return_inverse=True, return_counts=True)
    shares = (tags[rows].astype(np.int32) @ patterns.T.astype(np.int32)) > 0  # (queries, patterns)
    total = shares @ counts
    return total - (known[rows] & tags[rows].any(axis=1)).astype(int)  # not itself


def retrieval_scores(
    ds: xr.Dataset,
    result: xr.Dataset | None = None,
    *,
    k: int = 10,
    labels: str = S.LABELS,
    features: str = S.EMBEDDING,
) -> xr.Dataset:
    """Precision@k and average precision@k of a neighbour search against tags (relevant = shares a tag).

    Average precision@k = sum over ranks r <= k of precision@r at the relevant ranks, divided by
    min(k, number of relevant imagettes). Queries with no tag, an unknown tag or no relevant imagette at all are
    left out of the means (their per-query values are NaN), since no search can succeed or fail for them.

    Parameters
    ----------
    ds : xarray.Dataset
        The imagettes with their tags (and ``features`` when ``result`` is not given).
    result : xarray.Dataset, optional
        A :func:`neighbors` Dataset whose queries and neighbours are imagettes of ``ds``; by default every
        imagette is queried against the others.
    k : int, default 10
        Neighbours per query when ``result`` is not given (else its ``rank`` size).
    labels : str, default "labels"
        The tag variable (imagette, label): 1 set, 0 not set, -1 unknown.
    features : str, default "embedding"
        The feature variable, when ``result`` is not given.

    Returns
    -------
    xarray.Dataset
        ``precision_at_k`` and ``average_precision`` per query, ``mean_precision_at_k`` and
        ``mean_average_precision``; attrs ``k``, ``n_queries`` (scored) and ``n_left_out``.

    Raises
    ------
    ValueError
        If ``labels`` is missing or a query is not an imagette of ``ds``.

    Examples
    --------
    >>> scores = xwvnet.retrieval.retrieval_scores(ds, xwvnet.neighbors(ds, k=4))  # doctest: +SKIP
    >>> float(scores["mean_average_precision"])  # doctest: +SKIP
    """
    if result is None:
        result = neighbors(ds, k=k, features=features)
    k = result.sizes[S.RANK]
    tags, known = _tag_matrix(ds, labels)
    ids = ds[S.IMAGETTE].values.astype(str)
    position = {v: i for i, v in enumerate(ids)}
    qrows = np.array([position.get(v, -1) for v in result[S.IMAGETTE].values.astype(str)])
    if (qrows < 0).any():
        raise ValueError("retrieval_scores: some queries are not imagettes of ds; score against the Dataset "
                         "that holds their tags.")
    found = np.asarray(result["neighbor"].values).astype(str)
    nrows = np.array([[position.get(v, -1) for v in row] for row in found]).reshape(found.shape)
    ok_n = (nrows >= 0) & known[np.maximum(nrows, 0)]
    rel = ok_n & (tags[np.maximum(nrows, 0)] & tags[qrows][:, None, :]).any(axis=2)
    n_rel = _relevant_counts(tags, known, qrows)
    usable = known[qrows] & tags[qrows].any(axis=1) & (n_rel > 0)
    hits = np.cumsum(rel, axis=1)
    precision = hits[:, -1] / k
    ap = (rel * hits / np.arange(1, k + 1)).sum(axis=1) / np.maximum(np.minimum(n_rel, k), 1)
    precision = np.where(usable, precision, np.nan)
    ap = np.where(usable, ap, np.nan)
    coords = {S.IMAGETTE: result[S.IMAGETTE].values}
    return xr.Dataset(
        {
            "precision_at_k": (S.IMAGETTE, precision, {"long_name": f"precision@{k}"}),
            "average_precision": (S.IMAGETTE, ap, {"long_name": f"average precision@{k}"}),
            "mean_precision_at_k": ((), np.nanmean(precision) if usable.any() else np.nan),
            "mean_average_precision": ((), np.nanmean(ap) if usable.any() else np.nan),
        },
        coords=coords,
        attrs={"k": k, "n_queries": int(usable.sum()), "n_left_out": int((~usable).sum()),
               "relevance": "a neighbour is relevant when it shares at least one tag with the query",
               "encoder": result.attrs.get("encoder", "unknown")},
    )
