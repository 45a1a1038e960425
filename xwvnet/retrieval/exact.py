"""Exact nearest imagettes by cosine similarity of their embeddings, and retrieval scores against tags.

Search is exact and blocked: each task multiplies a block of queries by a block of the database (one float32
sgemm) and keeps only its top ``k``; the per-block candidates are then merged. The top ``k`` of a block is found
without sorting it: the k-th best of a sample of its columns bounds the answer from below, one comparison pass
keeps the few entries above it, and only those are ordered. Memory is bounded by the block sizes, never by N x N.
Dask-backed embeddings (e.g. a Zarr store) stay lazy and the block pairs run as dask tasks; numpy embeddings run
on a thread pool over views of the arrays (:func:`search_arrays`), through faiss's ``knn`` when it is installed.
A row that cannot be compared (a NaN or an infinity, or a zero norm: no direction) is never a neighbour and, as
a query, finds nothing; the index (:mod:`xwvnet.retrieval.index`) follows the same rule (``_rows``).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr

from .. import schema as S
from .._runtime import cores
from ..errors import InvalidArgumentError, InvalidDataError, MissingDependencyError
from ._rows import inverse_norms, unit
from .compact import decode_embeddings
from .index import RetrievalIndex, check_index, open_index

QUERY_BLOCK = 1024  # query rows per task
DATABASE_BLOCK = 8192  # database rows per task: a task holds QUERY_BLOCK x DATABASE_BLOCK similarities
SPLIT_EVERY = 8  # candidate blocks merged per reduction task
TOPK = np.dtype([("sim", "f4"), ("idx", "i8")])


SAMPLE_COLUMNS = 1024 # columns of each block whose k-th best bounds the block's k-th best from below
_FLOOR = np.float32(np.finfo(np.float32).min)  # any finite similarity passes it; -inf (excluded) does not


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
    sim, idx = np.take_along_axis(sim, order, axis=1), np.take_along_axis(idx, order, axis=1)
    out["sim"][:, :kk] = sim
    out["idx"][:, :kk] = np.where(sim > -np.inf, idx, -1)
    return out


def _topk_by_threshold(sim: np.ndarray, k: int, offset: int) -> np.ndarray:
    """Top ``k`` of each row of a similarity block (column ``j`` is database row ``offset + j``), as TOPK.

    A full partition of every row costs as much as a tenth of the matmul. Instead, the k-th best of the first
    :data:`SAMPLE_COLUMNS` columns is a lower bound of the row's k-th best, so only the entries at or above it can
    be among the top ``k``: one comparison pass finds them (typically a few times ``k`` per row), and only those
    are sorted, all rows at once. Ties are all kept, then broken by the lower index: the result is exact.
    """
    rows, width = sim.shape
    sample = min(width, max(SAMPLE_COLUMNS, 4 * k))
    if width <= sample or k >= sample:
        return _sorted_topk(sim, np.broadcast_to(np.arange(offset, offset + width)[None, :], sim.shape), k)
    bound = np.partition(sim[:, :sample], sample - k, axis=1)[:, sample - k]
    bound = np.maximum(np.nan_to_num(bound, nan=_FLOOR), _FLOOR)  # -inf rows: keep only finite entries
    flat = np.flatnonzero(sim >= bound[:, None])
    r, c = np.divmod(flat, width)
    values = sim.reshape(-1)[flat]
    bits = values.view(np.int32).astype(np.int64)
    ordered = bits ^ ((bits >> 31) & 0x7FFFFFFF)  # integers in the order of the floats (no NaN is left here)
    order = np.argsort((r << 32) | (0x7FFFFFFF - ordered), kind="stable")  # by row, best first, then lower index
    r, c, values = r[order], c[order], values[order]
    starts = np.searchsorted(r, np.arange(rows))
    rank = np.arange(r.size) - starts[r]
    keep = rank < k
    out = np.empty((rows, k), dtype=TOPK)
    out["sim"], out["idx"] = -np.inf, -1
    out["sim"][r[keep], rank[keep]] = values[keep]
    out["idx"][r[keep], rank[keep]] = c[keep] + offset
    return out


def _block_topk(q: np.ndarray, d: np.ndarray, didx: np.ndarray, qself: np.ndarray, k: int) -> np.ndarray:
    """Top ``k`` of one query block against one database block (global database indices in ``didx``).

    One float32 matmul (BLAS sgemm) of the unit queries by the raw database rows, one pass scaling the columns
    by 1/|row| (cheaper than a unit copy of the database block), then :func:`_topk_by_threshold`. A query row
    that cannot be compared (non-finite or zero norm) finds nothing (-inf, -1) and such a database row is never
    found.
    """
    if q.shape[0] == 0 or d.shape[0] == 0:
        return np.full((q.shape[0], k), (-np.inf, -1), dtype=TOPK)
    qu, qbad = unit(q)
    d = np.asarray(d, dtype=np.float32)
    inverse, dbad = inverse_norms(d)
    if dbad.any():  # NaN * 0 is NaN: zero those rows in a copy before the product
        d = d.copy()
        d[dbad] = 0.0
    sim = qu @ d.T
    sim *= inverse[None, :]
    if dbad.any():
        sim[:, dbad] = -np.inf
    if qbad.any():
        sim[qbad] = -np.inf
    start = int(didx[0])
    rows = np.flatnonzero((qself >= start) & (qself < start + d.shape[0]))
    sim[rows, qself[rows] - start] = -np.inf
    return _topk_by_threshold(sim, k, start)


FAISS_MAX_EXCLUDED = 64  # a block with more left-out rows than this takes the numpy path


def _faiss_module() -> Any:
    try:
        import faiss
    except ImportError:
        return None
    return faiss


def _block_topk_faiss(faiss: Any, q: np.ndarray, d: np.ndarray, start: int, qself: np.ndarray,
                      k: int) -> np.ndarray | None:
    """:func:`_block_topk` through faiss's ``knn`` (its sgemm and heaps); ``None`` when the numpy path must serve."""
    qu, qbad = unit(q)
    du, dbad = unit(d)
    own = (qself >= start) & (qself < start + d.shape[0])
    excluded = int(dbad.sum()) + int(own.any())
    if excluded > FAISS_MAX_EXCLUDED or k + excluded > d.shape[0]:
        return None
    sim, idx = faiss.knn(qu, du, k + excluded, metric=faiss.METRIC_INNER_PRODUCT)
    gone = (idx < 0) | dbad[np.maximum(idx, 0)] | (idx == (qself - start)[:, None])
    gone[qbad] = True
    sim = np.where(gone, -np.inf, sim).astype(np.float32)
    return _sorted_topk(sim, np.where(gone, -1, idx + start), k)


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


def check_k(k: object, name: str = "k") -> int:
    """``k`` as an int, or a clear error: a whole number >= 1 (``2.5``, ``True``, ``"3"`` or ``0`` are refused).

    Parameters
    ----------
    k : object
        The neighbour count given.
    name : str, default "k"
        Its name in the error message.

    Returns
    -------
    int
        ``k``.

    Raises
    ------
    ValueError
        If ``k`` is not a whole number >= 1.
    """
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InvalidArgumentError(f"{name} must be a whole number of neighbours >= 1, got {k!r}: e.g. {name}=10.")
    return int(k)


def _check_k_fits(k: int, n: int, self_excluded: bool) -> None:
    """Refuse ``k`` beyond what ``n`` imagettes offer, saying what they allow.

    Parameters
    ----------
    k : int
        Neighbours asked per query (already checked by :func:`check_k`).
    n : int
        Imagettes searched.
    self_excluded : bool
        Whether queries are imagettes of the Dataset and left out of their own neighbours.

    Raises
    ------
    ValueError
        If ``k`` is larger than the candidates per query.
    """
    allowed = n - (1 if self_excluded else 0)
    if k <= allowed:
        return
    held = f"the store holds {n} imagette{'' if n == 1 else 's'}"
    if allowed < 1 and self_excluded:
        raise InvalidArgumentError(
            f"k={k} neighbours asked, but {held}, so no imagette has another to be its neighbour: "
            "search a store of at least 2 imagettes (or query other imagettes with query=)."
        )
    if allowed < 1:
        raise InvalidArgumentError(f"k={k} neighbours asked, but {held}: embed imagettes into it before searching.")
    if self_excluded:
        raise InvalidArgumentError(
            f"k={k} neighbours asked, but {held} and a query is not its own neighbour: this store "
            f"allows k <= {allowed} (n - 1, its {n} imagettes less the query itself)."
        )
    raise InvalidArgumentError(f"k={k} neighbours asked, but {held}: this store allows k <= {allowed}.")


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
    memory is bounded by the blocks, never by queries x database. Ties go to the lower database index. When both
    inputs are numpy arrays the search runs now (:func:`search_arrays`, no copy of the database) and the results
    are wrapped as dask arrays.

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
        If queries and database differ in feature count, or ``k`` is not a whole number >= 1.

    Examples
    --------
    >>> sim, idx = search(np.eye(3, dtype="f4"), np.eye(3, dtype="f4"), 1)
    >>> idx.compute().ravel().tolist()
    [0, 1, 2]
    """
    if not isinstance(queries, da.Array) and not isinstance(database, da.Array):
        sim, idx = search_arrays(queries, database, k, self_index=self_index, query_block=query_block,
                                 database_block=database_block)
        return da.from_array(sim, chunks=(query_block, -1)), da.from_array(idx, chunks=(query_block, -1))
    q = queries if isinstance(queries, da.Array) else da.from_array(np.asarray(queries), chunks=(query_block, -1))
    d = database if isinstance(database, da.Array) else da.from_array(np.asarray(database), chunks=(database_block, -1))
    database_block = _balanced(q.shape[0], d.shape[0], query_block, database_block)
    q = q.rechunk({0: min(query_block, max(q.chunks[0], default=1)), 1: -1})
    d = d.rechunk({0: min(database_block, max(d.chunks[0], default=1)), 1: -1})
    k = check_k(k)
    if q.shape[1] != d.shape[1]:
        raise InvalidDataError(f"queries have {q.shape[1]} features but the database has {d.shape[1]}: embed both with "
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


def search_arrays(
    queries: np.ndarray,
    database: np.ndarray,
    k: int,
    *,
    self_index: np.ndarray | None = None,
    query_block: int = QUERY_BLOCK,
    database_block: int = DATABASE_BLOCK,
    threads: int | None = None,
    backend: str = "auto",
) -> tuple[np.ndarray, np.ndarray]:
    """Exact cosine top-``k`` of in-memory arrays, computed now on a thread pool: one BLAS thread per block pair.

    The database is read through views (dask's ``from_array`` would copy it chunk by chunk); memory beyond the
    inputs is one ``query_block`` x ``database_block`` float32 block per thread plus ``k`` candidates per block.
    With faiss installed each block pair runs through ``faiss.knn`` (its BLAS measured 5-10 % faster than
    numpy's on one core); otherwise numpy's sgemm and a threshold top-k. Both are exact; between exactly equal
    similarities at the k-th place faiss may keep another of the tied rows.

    Parameters
    ----------
    queries : numpy.ndarray
        (nq, d) query vectors.
    database : numpy.ndarray
        (n, d) database vectors.
    k : int
        Neighbours per query.
    self_index : numpy.ndarray, optional
        ``self_index[i]`` is the database row to leave out for query ``i`` (-1 for none).
    query_block, database_block : int, optional
        Block sizes.
    threads : int, optional
        Worker threads; default the cores.
    backend : {"auto", "faiss", "numpy"}, default "auto"
        ``auto``: faiss when installed.

    Returns
    -------
    similarity : numpy.ndarray
        float32 (nq, k), best first; -inf where there are fewer than ``k`` candidates (rows that are not finite
        or have a zero norm are none, and as queries find none).
    index : numpy.ndarray
        int64 (nq, k) database rows; -1 there.

    Raises
    ------
    ValueError
        If the feature counts differ, ``k`` is not a whole number >= 1, or ``backend`` is unknown.
    ImportError
        If ``backend="faiss"`` and faiss is not installed.

    Examples
    --------
    >>> sim, idx = search_arrays(np.eye(3, dtype="f4"), np.eye(3, dtype="f4"), 1)
    >>> idx.ravel().tolist()
    [0, 1, 2]
    """
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_limits

    k = check_k(k)
    q, d = np.asarray(queries), np.asarray(database)
    if q.ndim != 2 or d.ndim != 2 or q.shape[1] != d.shape[1]:
        raise InvalidDataError(
            f"queries {q.shape} and database {d.shape} must be 2-D with the same feature count: embed "
            "both with the same encoder."
        )
    nq, n = q.shape[0], d.shape[0]
    qself = np.full(nq, -1, dtype=np.int64) if self_index is None else np.asarray(self_index, np.int64)
    database_block = _balanced(nq, n, query_block, database_block)
    qstarts, dstarts = range(0, nq, query_block), range(0, n, database_block)
    workers = threads or cores()
    if backend not in ("auto", "faiss", "numpy"):
        raise InvalidArgumentError(f"backend must be 'auto', 'faiss' or 'numpy', got {backend!r}.")
    faiss = None if backend == "numpy" else _faiss_module()
    if backend == "faiss" and faiss is None:
        raise MissingDependencyError("backend='faiss' needs faiss: pip install xwvnet[faiss]")

    def one(pair: tuple[int, int]) -> np.ndarray:
        a, b = pair
        rows, cols = slice(a, a + query_block), slice(b, b + database_block)
        if faiss is not None:
            if single:
                faiss.omp_set_num_threads(1)  # OpenMP's thread count is per calling thread: set it in this worker
            found = _block_topk_faiss(faiss, q[rows], d[cols], b, qself[rows], k)
            if found is not None:
                return found
        return _block_topk(q[rows], d[cols], np.arange(b, min(n, b + database_block)), qself[rows], k)

    sim = np.full((nq, k), -np.inf, dtype=np.float32)
    idx = np.full((nq, k), -1, dtype=np.int64)
    if nq == 0 or n == 0:
        return sim, idx
    pairs = [(a, b) for a in qstarts for b in dstarts]
    single = len(pairs) >= workers  # one BLAS (and OpenMP) thread per worker, or the cores are oversubscribed
    with threadpool_limits(limits=1 if single else None, user_api="blas"), \
            ThreadPoolExecutor(max_workers=workers) as pool:
        for a in qstarts:  # merge query block by query block: candidates stay (block, blocks x k)
            parts = list(pool.map(one, [(a, b) for b in dstarts]))
            best = _sorted_topk(np.concatenate([p["sim"] for p in parts], axis=1),
                                np.concatenate([p["idx"] for p in parts], axis=1), k)
            sim[a:a + query_block], idx[a:a + query_block] = best["sim"], best["idx"]
    return sim, idx


def _balanced(n_queries: int, n_database: int, query_block: int, database_block: int) -> int:
    """A database block no larger than asked that splits a search of few blocks evenly over the cores.

    10,000 rows in blocks of 8192 would leave one core a block of 1808 while the other works; 2 x 5000 does not.
    """
    n_cores = cores()
    blocks = -(-n_database // max(1, database_block))
    if -(-n_queries // max(1, query_block)) * blocks < 4 * n_cores:
        blocks = -(-blocks // n_cores) * n_cores
    return max(1, -(-n_database // blocks))


def _query(ds: xr.Dataset, query: str | Sequence[str] | xr.Dataset | None,
           features: str) -> tuple[xr.Dataset, np.ndarray]:
    """The query Dataset and, for each query, its own row in ``ds`` (-1 when it is not one of them)."""
    ids = ds[S.IMAGETTE].values.astype(str)
    if query is None:
        return ds, np.arange(ds.sizes[S.IMAGETTE])
    if isinstance(query, xr.Dataset):
        if features not in query.data_vars:
            raise InvalidDataError(
                f"the query Dataset has no {features!r} variable: embed it with the same encoder first."
            )
        position = {v: i for i, v in enumerate(ids)}
        return query, np.array([position.get(v, -1) for v in query[S.IMAGETTE].values.astype(str)], dtype=np.int64)
    wanted = np.atleast_1d(np.asarray(query)).astype(str)
    missing = np.setdiff1d(wanted, ids)
    if missing.size:
        raise InvalidArgumentError(
            f"query id(s) not in the Dataset: {missing[:5].tolist()}; give ids from ds.{S.IMAGETTE}."
        )
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
    index: str | os.PathLike | RetrievalIndex | None = None,
    query_block: int = QUERY_BLOCK,
    database_block: int = DATABASE_BLOCK,
) -> xr.Dataset:
    """The ``k`` most cosine-similar imagettes of ``ds`` for each query, best first; self excluded.

    Without ``index`` the search is exact (:func:`search`): blocked so that memory never grows as queries x
    imagettes; lazy when the embeddings are dask-backed, otherwise computed here in parallel over blocks. With
    ``index`` (:func:`xwvnet.retrieval.build_index`) it is approximate and computed here, query block by query
    block. Compact embeddings (:func:`xwvnet.retrieval.compact_embeddings`) are decoded on the fly.

    Parameters
    ----------
    ds : xarray.Dataset
        The imagettes searched, with ``features`` (imagette, feature); with ``index``, the embedding store the
        index was built from, in store order.
    k : int, default 10
        Neighbours per query: a whole number >= 1.
    query : str, sequence of str or xarray.Dataset, optional
        ``None`` (every imagette of ``ds``), ids of ``ds``, or another embedded Dataset (one of its imagettes whose
        id is also in ``ds`` is not its own neighbour).
    features : str, default "embedding"
        The feature variable.
    exclude_self : bool, default True
        Leave each query out of its own neighbours.
    index : str, os.PathLike or RetrievalIndex, optional
        An approximate index of ``ds`` (a path is opened with :func:`xwvnet.retrieval.open_index`); it is checked
        against ``ds`` (encoder, imagette count, ids) and refused when it does not match.
    query_block : int, optional
        Query rows per task.
    database_block : int, optional
        Imagettes per task (exact search).

    Returns
    -------
    xarray.Dataset
        Dims (``imagette``, ``rank``): ``neighbor`` (ids; ``""`` where there are fewer than ``k`` candidates, and
        for every rank of a query whose embedding is not finite or has a zero norm) and ``similarity`` (cosine;
        NaN there), with the queries' coordinates along ``imagette``. Rows with non-finite or zero-norm
        embeddings (no direction to compare) are never neighbours.

    Raises
    ------
    ValueError
        If ``features`` is missing, ``k`` is not a whole number >= 1 or is larger than the candidates, or a query
        id is unknown.
    IndexMismatchError
        If ``index`` was built for other embeddings or is stale (run ``update_index``).

    Examples
    --------
    >>> found = xwvnet.neighbors(ds, k=5)  # doctest: +SKIP
    >>> found["neighbor"].sel(imagette=ds.imagette[0])  # doctest: +SKIP
    >>> found = xwvnet.neighbors(store_ds, k=10, query=new, index="embeddings.zarr.index")  # doctest: +SKIP
    """
    if features not in ds.data_vars:
        raise InvalidDataError(f"no {features!r} variable to search: found {sorted(map(str, ds.data_vars))}. Embed the "
                               "imagettes first (ds.wvnet.embed(...)).")
    k = check_k(k)
    ds = decode_embeddings(ds, features)
    qds, self_rows = _query(ds, query, features)
    qds = decode_embeddings(qds, features)
    _check_k_fits(k, ds.sizes[S.IMAGETTE], exclude_self and bool((self_rows >= 0).any()))
    db, qx = ds[features], qds[features]
    ids = np.asarray(ds[S.IMAGETTE].values).astype(object)
    lookup = np.append(ids, np.array([""], dtype=object))  # index -1 -> ""
    if index is not None:
        names, sim = _search_index(index, ds, qx, self_rows if exclude_self else None, k, query_block, lookup)
    else:
        lazy = isinstance(db.data, da.Array) or isinstance(qx.data, da.Array)
        self_index = self_rows if exclude_self else None
        if lazy:
            sim, idx = search(_as_dask(qx, query_block), _as_dask(db, database_block), k, self_index=self_index,
                              query_block=query_block, database_block=database_block)
            names = idx.map_blocks(lambda b: lookup[b], dtype=object, meta=np.empty((0, 0), dtype=object))
            sim = da.where(idx >= 0, sim, np.float32(np.nan))
        else:
            sim, idx = search_arrays(qx.values, db.values, k, self_index=self_index, query_block=query_block,
                                     database_block=database_block)
            names, sim = lookup[idx], np.where(idx >= 0, sim, np.float32(np.nan))
    qcoords = {name: c.variable for name, c in qds.coords.items() if c.dims == (S.IMAGETTE,)}
    attrs = {"k": k, "features": features, "encoder": str(db.attrs.get("encoder", "unknown")),
             "exclude_self": int(exclude_self), "search": "exact"}
    if index is not None:
        attrs["search"] = "approximate index"
    return xr.Dataset(
        {
            "neighbor": ((S.IMAGETTE, S.RANK), names, {"long_name": "id of the neighbouring imagette"}),
            "similarity": ((S.IMAGETTE, S.RANK), sim,
                           {"long_name": "cosine similarity of the embeddings", "units": "1"}),
        },
        coords={**qcoords, S.RANK: np.arange(1, k + 1)},
        attrs=attrs,
    )


def _search_index(index: str | os.PathLike | RetrievalIndex, ds: xr.Dataset, qx: xr.DataArray,
                  self_rows: np.ndarray | None, k: int, query_block: int,
                  lookup: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Approximate neighbours from an index, query block by query block: (ids, similarity with NaN for none)."""
    if not isinstance(index, RetrievalIndex):
        index = open_index(index)
    check_index(index, ds)
    extra = 0 if self_rows is None else 1
    nq = qx.sizes[S.IMAGETTE]
    names = np.empty((nq, k), dtype=object)
    sims = np.empty((nq, k), dtype=np.float32)
    for a in range(0, nq, query_block):
        b = min(nq, a + query_block)
        sim, idx = index.search(np.asarray(qx.isel({S.IMAGETTE: slice(a, b)}).values), k + extra)
        if extra:  # drop the query itself wherever it came back; else the last candidate
            own = idx == self_rows[a:b, None]
            drop = np.where(own.any(axis=1), own.argmax(axis=1), k)
            keep = np.arange(k + 1)[None, :] != drop[:, None]
            sim, idx = sim[keep].reshape(-1, k), idx[keep].reshape(-1, k)
        names[a:b] = lookup[idx]
        sims[a:b] = np.where(idx >= 0, sim, np.nan)
    return names, sims


# --- retrieval metrics -----------------------------------------------------------------------------------------------
def _tag_matrix(ds: xr.Dataset, labels: str) -> tuple[np.ndarray, np.ndarray]:
    """(tags as bool (n, tags), known rows as bool (n,)); a row with any unknown (-1) tag is not known."""
    if labels not in ds.data_vars:
        raise InvalidDataError(f"retrieval_scores needs tags in {labels!r} (dims ({S.IMAGETTE}, {S.LABEL})); found "
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
        raise InvalidArgumentError("retrieval_scores: some queries are not imagettes of ds; score against the Dataset "
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
