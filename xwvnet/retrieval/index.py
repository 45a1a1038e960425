"""A persistent approximate index of an embedding store, for nearest-imagette search at archive scale.

The default index is a faiss inverted file over 8-bit scalar-quantised unit-length embeddings whose candidates are
re-ranked on float16 copies (``IDMap,IVF<nlist>,SQ8,Refine(SQfp16)``), searched by inner product (= cosine); the
number of lists visited (``nprobe``, the :attr:`RetrievalIndex.effort`) is tuned at build time on queries held out of
the training sample. ``method="hnsw"`` gives a graph (``IDMap,HNSW32,SQ8``, re-ranked the same way) instead. On
200,000 clustered 2048-d vectors the graph was slower than exact search at the recall asked for, the inverted file
over 10x faster (the figures are in docs/retrieval.md); SQ8 codes alone lose some true neighbours at 2048-d, which
the float16 re-ranking of :data:`REFINE_FACTOR` x k candidates recovers.
It is built from an embedding store (:func:`xwvnet.embed_store`) chunk by chunk: the quantisers are trained on a
sample of whole store chunks, then the store is added block by block, so memory holds the index plus one block,
never the store. Row ``i`` of the store is id ``i`` in the index; rows that are not (yet) finite (chunks still
being embedded read as NaN) and zero-norm rows (no direction to compare) are left out and counted, as exact
search leaves them out.

The index is written beside the store (``<store>.index``, e.g. ``embeddings.zarr.index``) with a JSON sidecar
(``<store>.index.json``) recording its provenance: the store's format version, the encoder and its weights hash,
the imagette count and the first and last ids indexed, the faiss parameters and versions, and the SHA-256 of
the index file (written after it). :func:`open_index` refuses an index file whose bytes changed since (a changed
byte in faiss's codes would silently change the neighbours found) and an index that does not match its store;
:func:`update_index` adds the imagettes appended to the store since, without training again.

faiss is an optional dependency: ``pip install xwvnet[faiss]`` (``faiss-cpu``). Building or opening an index
without it raises :class:`ImportError` saying so; exact search (:func:`xwvnet.retrieval.search`) never needs it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import schema as S
from .._files import local_path, replacing
from .._version import __version__
from ..errors import (
    InputNotFoundError,
    InvalidArgumentError,
    InvalidDataError,
    MissingDependencyError,
    OutputExistsError,
    OutputLocationError,
    StoreError,
    XWVNetWarning,
    warn,
)
from ._rows import unit

FORMAT = "xwvnet-retrieval-index"
VERSION = 2  # 2: the sidecar records the index file's SHA-256 ("sha256")
SUFFIX = ".index"
TRAIN_SIZE = 65_536  # imagettes the quantisers are trained on (at 2048 float32 features: 512 MB)
ADD_BLOCK = 16_384  # imagettes read from the store and added per step (at 2048 features: 128 MB)
MAX_NLIST = 4096
NLIST_PER_ROOT = 2  # IVF: default nlist = NLIST_PER_ROOT * sqrt(n)
PROBE_SHARE = 1 / 16  # IVF: default nprobe = nlist * PROBE_SHARE (at least 16) when not tuned
EF_SEARCH = 128  # HNSW: default candidate list per query (recall@10 >= 0.95 on clustered data, see the tests)
HNSW_LINKS = 32
METHODS = ("ivf", "hnsw")
REFINE = "SQfp16"  # how the re-ranking copies are stored (faiss index-factory code)
REFINE_FACTOR = 4  # candidates re-ranked per neighbour asked for
TARGET_RECALL = 0.95  # recall@10 that build-time tuning aims for
TUNE_SAMPLE = 1000  # imagettes of the data used as tuning queries (held out of the training sample)
TUNE_K = 10
TUNE_Z = 2.0  # tuning asks for the target plus TUNE_Z standard errors of the sample's recall (at least TUNE_MARGIN)
TUNE_MARGIN = 0.005
MAX_EFFORT = 4096  # HNSW efSearch tuning stops here
_EXACT_GROUP = 128  # tuning queries compared with a block at a time
_PROVENANCE = ("encoder", "encoder_weights_hash", "encoder_arch", "encoder_transform")


class RecallWarning(XWVNetWarning):
    """Build-time tuning could not reach the target recall: the index is saved, with the recall it measured."""


class IndexMismatchError(StoreError, ValueError):
    """An index that does not belong to the embedding store it is used with (or is stale)."""


class IndexIntegrityError(IndexMismatchError):
    """An index file whose bytes are not those its sidecar records (changed, truncated, or saved without a hash)."""


def _faiss() -> Any:
    try:
        import faiss
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise MissingDependencyError(
            "an approximate retrieval index needs faiss: pip install xwvnet[faiss] (or faiss-cpu, or "
            "faiss-gpu from conda-forge). Exact search (xwvnet.neighbors without index=) does not."
        ) from error
    return faiss


def index_path(store: str | os.PathLike) -> Path:
    """Where the index of an embedding store lives by default: beside it, ``<store>.index``.

    Parameters
    ----------
    store : str or os.PathLike
        The embedding store.

    Returns
    -------
    pathlib.Path
        ``<store>.index``; its sidecar is ``<store>.index.json``.

    Examples
    --------
    >>> index_path("runs/embeddings.zarr").name
    'embeddings.zarr.index'
    """
    from ..io.storage import locate

    location = locate(store)
    if not location.local:
        raise InvalidArgumentError(f"{location} is on object storage, and an index is a local file: pass path= (e.g. "
                                   "path='embeddings.index') to build, open or update it.")
    return Path(str(location).rstrip("/\\") + SUFFIX)


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def default_nlist(n: int, train_size: int = TRAIN_SIZE) -> int:
    """Inverted lists for ``n`` imagettes: about 2 sqrt(n), at most :data:`MAX_NLIST` and ``train_size / 39``.

    Parameters
    ----------
    n : int
        Imagettes in the store.
    train_size : int, optional
        Imagettes the coarse quantiser is trained on (faiss wants at least 39 per list).

    Returns
    -------
    int
        At least 1.
    """
    return int(max(1, min(MAX_NLIST, train_size // 39, round(NLIST_PER_ROOT * math.sqrt(max(n, 1))))))


def _unit_rows(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float32 unit rows (C order, as faiss wants) and the mask of rows that can be compared (finite, non-zero norm;
    the others are zero here and never added), by the rule exact search uses."""
    out, bad = unit(x)
    return np.ascontiguousarray(out), ~bad


def _sha256(path: Path) -> str:
    """The hex SHA-256 of a file, read in 1 MiB blocks (``hashlib.file_digest`` needs Python 3.11)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class RetrievalIndex:
    """An approximate cosine index of an embedding store (faiss), with its provenance.

    Parameters
    ----------
    path : pathlib.Path
        The index file (its sidecar is ``path + ".json"``).
    info : dict
        The sidecar: provenance and parameters (``n`` imagettes covered, ``n_added``, ``n_skipped``, ``factory``,
        ``method``, ``effort``, ``first_id``, ``last_id``, encoder attributes, versions).
    faiss_index : object
        The faiss index (ids are store row positions).
    """

    path: Path
    info: dict[str, Any]
    faiss_index: Any = field(repr=False)

    @property
    def n(self) -> int:
        """Store imagettes the index covers (added, or skipped as non-finite or zero-norm)."""
        return int(self.info["n"])

    @property
    def effort(self) -> int:
        """Search effort: HNSW's candidate list (``efSearch``) or IVF's lists visited (``nprobe``); more is slower
        and finds more of the true neighbours."""
        inner = self._inner()
        return int(inner.hnsw.efSearch if hasattr(inner, "hnsw") else inner.nprobe)

    @effort.setter
    def effort(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise InvalidArgumentError(f"effort must be a positive integer, got {value!r}")
        inner = self._inner()
        if hasattr(inner, "hnsw"):
            inner.hnsw.efSearch = int(value)
        else:
            inner.nprobe = int(value)

    def _inner(self) -> Any:
        """The HNSW or IVF index inside the id map and the re-ranking wrapper."""
        faiss = _faiss()
        index = faiss.downcast_index(self.faiss_index)
        while hasattr(index, "id_map") or hasattr(index, "base_index"):  # IDMap, then Refine
            index = faiss.downcast_index(index.index if hasattr(index, "id_map") else index.base_index)
        return index if hasattr(index, "hnsw") else faiss.extract_index_ivf(index)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Approximate cosine top-``k`` of each query, best first.

        Parameters
        ----------
        queries : numpy.ndarray
            (nq, feature) query embeddings (any scale; non-finite and zero-norm rows find nothing).
        k : int
            Neighbours per query.

        Returns
        -------
        similarity : numpy.ndarray
            float32 (nq, k) cosine; -inf where fewer than ``k`` were found.
        index : numpy.ndarray
            int64 (nq, k) store row positions; -1 there.

        Raises
        ------
        ValueError
            If the queries' feature count differs from the index's.
        """
        q, finite = _unit_rows(np.atleast_2d(queries))
        if q.shape[1] != self.faiss_index.d:
            raise InvalidDataError(f"queries have {q.shape[1]} features but the index {self.path} has "
                                   f"{self.faiss_index.d}: embed them with the encoder the index was built for.")
        sim, idx = self.faiss_index.search(q, int(k))
        sim, idx = sim.astype(np.float32), idx.astype(np.int64)
        sim[~finite], idx[~finite] = -np.inf, -1
        sim[idx < 0] = -np.inf
        return sim, idx

    def save(self) -> None:
        """Write the index, then its sidecar with the index file's SHA-256 (the sidecar last: an index without one,
        or whose bytes differ from the hash, is refused), each file whole or not at all."""
        faiss = _faiss()
        self.info["effort"] = self.effort
        with replacing(self.path) as tmp:
            faiss.write_index(self.faiss_index, str(tmp))
            digest = _sha256(tmp)
        self.info["version"] = VERSION
        self.info["sha256"] = digest
        with replacing(_sidecar(self.path)) as tmp:
            tmp.write_text(json.dumps(self.info, indent=1, sort_keys=True))


def _store_facts(store: Any, features: str) -> tuple[Any, dict[str, Any]]:
    """The store opened lazily (or the Dataset given, compact embeddings decoded), and the facts an index records."""
    import xarray as xr

    from ..io import store as zs
    from .compact import decode_embeddings

    given = isinstance(store, xr.Dataset)
    ds = store if given else zs.open_store(store)
    if features not in ds.data_vars:
        what = "the Dataset" if given else str(store)
        raise InvalidDataError(f"{what} has no {features!r} variable to index: give an embedding store or Dataset "
                               "(xwvnet.embed_store / `xwvnet embed` / xwvnet.read_geoparquet).")
    if set(ds[features].dims) != {S.IMAGETTE, S.FEATURE}:
        raise InvalidDataError(f"{features!r} must have dims ({S.IMAGETTE}, {S.FEATURE}), found {ds[features].dims}.")
    ds = decode_embeddings(ds, features).transpose(S.IMAGETTE, S.FEATURE, ...)
    attrs = {**(ds.attrs if given else zs.root_attrs(store)), **ds[features].attrs}
    return ds, {"store_format": attrs.get("format"), "store_version": attrs.get("version"),
                **{key: str(attrs[key]) for key in _PROVENANCE if key in attrs}}


def _read(ds: Any, features: str, start: int, stop: int) -> np.ndarray:
    return np.asarray(ds[features].isel({S.IMAGETTE: slice(start, stop)}).values, dtype=np.float32)


class _ExactTop:
    """Exact top-``k`` of some queries (rows of the data), merged block by block while the data is added."""

    def __init__(self, rows: np.ndarray, k: int) -> None:
        self.rows, self.k = rows, k
        self.queries: np.ndarray | None = None
        self.sim = np.full((len(rows), k), -np.inf, np.float32)
        self.idx = np.full((len(rows), k), -1, np.int64)

    def update(self, x: np.ndarray, finite: np.ndarray, a: int) -> None:
        if self.queries is None or not len(x):
            return
        k = min(self.k, len(x))
        for q0 in range(0, len(self.rows), _EXACT_GROUP):  # bounded memory: a group of queries x the block
            q1 = min(len(self.rows), q0 + _EXACT_GROUP)
            sims = self.queries[q0:q1] @ x.T
            sims[:, ~finite] = -np.inf
            own = np.flatnonzero((self.rows[q0:q1] >= a) & (self.rows[q0:q1] < a + len(x)))
            sims[own, self.rows[q0:q1][own] - a] = -np.inf  # a query is not its own neighbour
            part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
            sim = np.concatenate([self.sim[q0:q1], np.take_along_axis(sims, part, 1)], axis=1)
            idx = np.concatenate([self.idx[q0:q1], part + a], axis=1)
            order = np.argsort(-sim, axis=1, kind="stable")[:, : self.k]
            self.sim[q0:q1], self.idx[q0:q1] = np.take_along_axis(sim, order, 1), np.take_along_axis(idx, order, 1)


def _add(index: Any, ds: Any, features: str, start: int, stop: int, block: int,
         exact: _ExactTop | None = None) -> tuple[int, int]:
    added = skipped = 0
    for a in range(start, stop, block):
        b = min(stop, a + block)
        x, finite = _unit_rows(_read(ds, features, a, b))
        ids = np.arange(a, b, dtype=np.int64)[finite]
        if ids.size:
            index.add_with_ids(x[finite], ids)
        if exact is not None:
            exact.update(x, finite, a)
        added, skipped = added + int(ids.size), skipped + int((~finite).sum())
    return added, skipped


def _sample_recall(out: RetrievalIndex, exact: _ExactTop, truth: list[set[int]], k: int,
                   effort: int) -> dict[str, Any]:
    """Recall@k of the index at ``effort`` on the tuning queries, its standard error, and queries per second."""
    assert exact.queries is not None
    out.effort = effort
    start = time.perf_counter()
    _, found = out.search(exact.queries, k + 1)
    seconds = max(time.perf_counter() - start, 1e-9)
    found = [[i for i in row if i >= 0 and i != q][:k] for row, q in zip(found.tolist(), exact.rows.tolist())]
    each = np.array([len(t & set(f)) / max(1, len(t)) for t, f in zip(truth, found)])
    se = float(each.std(ddof=1) / math.sqrt(len(each))) if len(each) > 1 else 0.0
    return {"effort": effort, "recall": round(float(each.mean()), 4), "se": round(se, 4),
            "queries_per_second": round(len(truth) / seconds, 1)}


def required_recall(target: float, se: float) -> float:
    """The sample recall tuning asks for: ``target`` plus a margin for the sample's noise, at most 1.

    Parameters
    ----------
    target : float
        The recall asked for on queries other than the tuning sample.
    se : float
        The standard error of the sample's mean recall.

    Returns
    -------
    float
        ``min(1, target + max(TUNE_MARGIN, TUNE_Z * se))``.
    """
    return min(1.0, target + max(TUNE_MARGIN, TUNE_Z * se))


def _tune(out: RetrievalIndex, exact: _ExactTop, target: float, k: int, max_effort: int) -> dict[str, Any]:
    """The least effort, from the current one up, whose recall@k on the sample reaches ``target`` with a margin
    (:func:`required_recall`): doubled until it does, then bisected between the last two; what was measured at
    each."""
    truth = [set(r[r >= 0].tolist()) for r in exact.idx]
    tried: list[dict[str, Any]] = []

    def meets(effort: int) -> bool:
        tried.append(_sample_recall(out, exact, truth, k, effort))
        return tried[-1]["recall"] >= required_recall(target, tried[-1]["se"])

    low, high = 0, min(out.effort, max_effort)
    while not meets(high) and high < max_effort:
        low, high = high, min(max_effort, high * 2)
    if low and tried[-1]["recall"] >= required_recall(target, tried[-1]["se"]):
        while high - low > max(1, high // 8):  # bisect to within an eighth, never below the effort tuning began at
            middle = (low + high) // 2
            low, high = (low, middle) if meets(middle) else (middle, high)
    best = next(t for t in tried if t["effort"] == high)
    out.effort = high
    required = required_recall(target, best["se"])
    return {"target_recall": target, "required_sample_recall": round(required, 4), "k": k, "sample": len(truth),
            "met": best["recall"] >= required, "recall": best["recall"], "se": best["se"], "effort": high,
            "queries_per_second": best["queries_per_second"], "tried": tried}


def _training_sample(ds: Any, features: str, n: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """About ``size`` finite unit rows from randomly chosen whole store chunks (no full pass over the store), and
    their row positions."""
    chunks = ds[features].chunks[0] if ds[features].chunks else tuple(
        min(ADD_BLOCK, n - a) for a in range(0, n, ADD_BLOCK))
    starts = np.cumsum((0,) + tuple(chunks))[:-1]
    order = np.random.default_rng(seed).permutation(len(chunks))
    parts, where, have = [], [], 0
    for i in order:
        if have >= size:
            break
        x, finite = _unit_rows(_read(ds, features, int(starts[i]), int(starts[i] + chunks[i])))
        rows = (int(starts[i]) + np.flatnonzero(finite))[: size - have]
        parts.append(x[finite][: size - have])
        where.append(rows)
        have += len(rows)
    if not parts:
        return np.empty((0, ds.sizes[S.FEATURE]), np.float32), np.empty(0, np.int64)
    return np.concatenate(parts), np.concatenate(where).astype(np.int64)


def _held_out(size: int, tune_sample: int, seed: int) -> tuple[np.ndarray, bool]:
    """Positions of the tuning queries in a sample of ``size`` rows (``tune_sample`` of them, sorted), and whether
    they are held out of training: they are unless that would leave less than half the sample to train on."""
    pick = np.sort(np.random.default_rng(seed + 1).choice(size, min(size, tune_sample), replace=False))
    return pick, 2 * len(pick) <= size


def _factory(method: str, quantizer: str, refine: str | None, nlist: int | None, effort: int | None, n: int,
             train: int, tuned: bool) -> tuple[str, int | None, int]:
    """The faiss factory string, the list count (IVF) and the starting effort of an index."""
    wrap = f",Refine({refine})" if refine is not None else ""
    if method == "ivf":
        nlist = max(1, min(default_nlist(n, train) if nlist is None else int(nlist), train))
        start = 1 if tuned else max(1, min(nlist, max(16, round(nlist * PROBE_SHARE))))
        return (f"IDMap,IVF{nlist},{quantizer}{wrap}" if wrap else f"IVF{nlist},{quantizer}", nlist,
                start if effort is None else effort)
    return f"IDMap,HNSW{HNSW_LINKS},{quantizer}{wrap}", None, EF_SEARCH if effort is None else effort


def _refine(index: Any) -> Any:
    """The re-ranking wrapper (IndexRefine) inside an index's id map."""
    faiss = _faiss()
    index = faiss.downcast_index(index)
    return faiss.downcast_index(index.index) if hasattr(index, "id_map") else index


def build_index(
    store: str | os.PathLike | Any,
    path: str | os.PathLike | None = None,
    *,
    features: str = S.EMBEDDING,
    method: str = "ivf",
    effort: int | None = None,
    target_recall: float | None = TARGET_RECALL,
    tune_sample: int = TUNE_SAMPLE,
    quantizer: str = "SQ8",
    refine: str | None = REFINE,
    nlist: int | None = None,
    train_size: int = TRAIN_SIZE,
    block: int = ADD_BLOCK,
    seed: int = 0,
    overwrite: bool = False,
) -> RetrievalIndex:
    """Build the approximate cosine index of an embedding store, with bounded memory, and save it beside the store.

    The quantisers are trained on ``train_size`` imagettes from randomly chosen whole store chunks (less the
    tuning queries); the store is then added ``block`` imagettes at a time. Peak memory is about the index (``n`` x
    (2048 + 4096 + 16) bytes with the default SQ8 codes, float16 re-ranking copies and ids at 2048 features) plus
    ``train_size`` (training) or ``block`` (adding) float32 rows.

    Parameters
    ----------
    store : str, os.PathLike or xarray.Dataset
        The embedding store, or an embedding Dataset (in memory or dask-backed, e.g. from
        :func:`xwvnet.read_geoparquet`; compact embeddings are decoded). Search it with
        ``xwvnet.neighbors(ds, index=...)`` on the same Dataset.
    path : str or os.PathLike, optional
        The index file; default :func:`index_path` (``<store>.index``); required for a Dataset.
    features : str, default "embedding"
        The variable indexed.
    method : {"ivf", "hnsw"}, default "ivf"
        ``ivf``: inverted lists (``IDMap,IVF<nlist>,<quantizer>,Refine(<refine>)``), a query visits ``effort``
        lists; ``hnsw``: a graph (``IDMap,HNSW32,<quantizer>,Refine(<refine>)``), slower to build and, on
        2048-d embeddings, slower to query at the same recall.
    effort : int, optional
        Search effort saved with the index (:attr:`RetrievalIndex.effort`): IVF ``nprobe`` or HNSW ``efSearch``;
        where tuning starts (default 1 for IVF, :data:`EF_SEARCH` for HNSW). Without tuning the default is
        ``max(16, nlist / 16)`` for IVF and :data:`EF_SEARCH` for HNSW.
    target_recall : float or None, default 0.95
        Tune at build time: ``tune_sample`` imagettes of the data, held out of the training sample, are searched
        against exact search (computed during the same pass over the data, a query never counting as its own
        neighbour); the effort is doubled until recall@10 on them reaches this target plus a margin for the
        sample's noise (:func:`required_recall`), then bisected between the last two to within an eighth (at most
        :data:`MAX_EFFORT` for HNSW, ``nlist`` for IVF). Measured recall, its standard error, the effort and the
        queries per second are recorded in the sidecar (``info["tuning"]``); a target not met warns
        (:class:`RecallWarning`). None: no tuning, ``effort`` as given.
    tune_sample : int, default 1000
        Imagettes of the data used as tuning queries.
    quantizer : {"SQ8", "Flat", "SQ4", "PQ<m>"}, default "SQ8"
        How vectors are stored for the first pass (faiss index-factory names): ``SQ8`` one byte per feature,
        ``Flat`` float32, ``SQ4``/``PQ<m>`` smaller and coarser.
    refine : str or None, default "SQfp16"
        How the copies that the best :data:`REFINE_FACTOR` x ``k`` candidates of a query are re-ranked on are
        stored (a faiss scalar-quantiser code: ``SQfp16`` two bytes per feature, ``SQ8``, ``Flat``); None: no
        re-ranking (``IVF<nlist>,<quantizer>`` or ``IDMap,HNSW32,<quantizer>``).
    nlist : int, optional
        IVF only: inverted lists (coarse clusters); default :func:`default_nlist`.
    train_size : int, optional
        Imagettes the quantisers are trained on.
    block : int, optional
        Imagettes added per step.
    seed : int, default 0
        Seed of the training sample and of k-means.
    overwrite : bool, default False
        Replace an existing index at ``path``.

    Returns
    -------
    RetrievalIndex
        The saved index.

    Raises
    ------
    ImportError
        If faiss is not installed (``pip install xwvnet[faiss]``).
    ValueError
        If the store holds no finite embedding, an index exists at ``path`` and ``overwrite`` is False, a Dataset
        is given without ``path``, or ``target_recall`` is not in (0, 1].

    Examples
    --------
    >>> index = xwvnet.retrieval.build_index("embeddings.zarr")  # doctest: +SKIP
    >>> found = xwvnet.neighbors(ds, k=10, index=index)  # doctest: +SKIP
    """
    import xarray as xr

    from ..io.storage import locate

    faiss = _faiss()
    given = isinstance(store, xr.Dataset)
    if given and path is None:
        raise OutputLocationError(
            "an index of a Dataset has no store to sit beside: pass path= (e.g. 'embeddings.index')."
        )
    store = store if given else os.fspath(store)
    path = index_path(store) if path is None else local_path(path, "an index")
    if target_recall is not None and not (isinstance(target_recall, (int, float)) and 0 < target_recall <= 1):
        raise InvalidArgumentError(f"target_recall must be in (0, 1] or None, got {target_recall!r}.")
    if path.exists() and not overwrite:
        raise OutputExistsError(f"an index already exists at {path}: add new imagettes with update_index, or pass "
                                "overwrite=True to build it again.")
    for name, value in (("train_size", train_size), ("block", block), ("tune_sample", tune_sample)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise InvalidArgumentError(f"{name} must be a positive integer, got {value!r}")
    start = time.perf_counter()
    ds, facts = _store_facts(store, features)
    n, dim = ds.sizes[S.IMAGETTE], ds.sizes[S.FEATURE]
    sample, sample_rows = _training_sample(ds, features, n, train_size + tune_sample, seed)
    if len(sample) == 0:
        raise InvalidDataError(
            f"{store} holds no finite {features!r} row to index: embed it first (xwvnet.embed_store)."
        )
    if method not in METHODS:
        raise InvalidArgumentError(f"method must be one of {METHODS}, got {method!r}.")
    exact = None
    if target_recall is not None:  # tuning queries: rows of the sample held out of training
        held, apart = _held_out(len(sample), tune_sample, seed)
        exact = _ExactTop(sample_rows[held], TUNE_K)
        exact.queries = np.ascontiguousarray(sample[held])
        if apart:
            sample = np.delete(sample, held, axis=0)
    sample = sample[:train_size]
    factory, nlist, effort = _factory(method, quantizer, refine, nlist, effort, n, len(sample),
                                      tuned=exact is not None)
    try:
        index = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as error:
        raise InvalidArgumentError(f"quantizer={quantizer!r} or refine={refine!r} is not a faiss index-factory code "
                                   f"(try 'SQ8', 'Flat', 'SQ4' or 'PQ64'; refine 'SQfp16', 'SQ8' or 'Flat'): "
                                   f"{error}") from error
    if method == "ivf":
        faiss.extract_index_ivf(index).cp.seed = seed
    if refine is not None:
        _refine(index).k_factor = float(REFINE_FACTOR)
    index.train(sample)
    del sample
    out = RetrievalIndex(path, {}, index)
    out.effort = effort
    added, skipped = _add(index, ds, features, 0, n, block, exact)
    tuning = None
    if exact is not None and len(exact.rows):
        tuning = _tune(out, exact, float(target_recall), TUNE_K, nlist if method == "ivf" else MAX_EFFORT)
        if not tuning["met"]:
            warn(f"the index reaches recall@{TUNE_K} {tuning['recall']} at effort {tuning['effort']} (the most "
                 f"tried), below the target {target_recall} (with its margin, {tuning['required_sample_recall']}): "
                 "use refine='Flat', more nlist, or a lower target.", RecallWarning)
    ids = ds[S.IMAGETTE].values
    name = str(ds.attrs.get("store", "<dataset>")) if given else locate(store).name
    info = {"format": FORMAT, "version": VERSION, "store": name, **facts, "features": features, "tuning": tuning,
            "dim": dim, "n": n, "n_added": added, "n_skipped": skipped,
            "first_id": str(ids[0]) if n else "", "last_id": str(ids[n - 1]) if n else "",
            "method": method, "factory": factory, "nlist": nlist, "effort": out.effort, "metric": "cosine",
            "refine_factor": REFINE_FACTOR if refine is not None else None,
            "train_size": train_size, "seed": seed, "faiss_version": faiss.__version__, "xwvnet_version": __version__,
            "build_seconds": round(time.perf_counter() - start, 3)}
    out.info = info
    out.save()
    return out


def _read_index(path: Path) -> RetrievalIndex:
    faiss = _faiss()
    side = _sidecar(path)
    if not path.is_file() or not side.is_file():
        raise InputNotFoundError(f"no retrieval index at {path} (or no sidecar {side.name}): build one with "
                                 "xwvnet.retrieval.build_index(store).")
    try:
        info = json.loads(side.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise IndexMismatchError(f"{side} is not a readable index sidecar ({error}): build the index again.") \
            from error
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise IndexMismatchError(f"{side} is not an xwvnet retrieval index sidecar: build the index again.")
    if int(info.get("version", 0)) > VERSION:
        raise IndexMismatchError(f"{path} was written by a newer xwvnet (index version {info.get('version')}); "
                                 "upgrade xwvnet.")
    _check_sha256(path, info)
    try:
        index = faiss.read_index(str(path))
    except RuntimeError as error:
        raise IndexMismatchError(f"{path} is not a readable faiss index ({error}): build it again.") from error
    out = RetrievalIndex(path, info, index)
    out.effort = int(info.get("effort", out.effort))
    return out


def _check_sha256(path: Path, info: dict[str, Any]) -> None:
    """Refuse an index file whose SHA-256 is not the one its sidecar records, or whose sidecar records none."""
    expected = info.get("sha256")
    rebuild = ("rebuild it with xwvnet.retrieval.build_index(store, overwrite=True) "
               "(or `xwvnet index STORE --overwrite`)")
    if not isinstance(expected, str) or not expected:
        raise IndexIntegrityError(f"{path} has no SHA-256 in its sidecar {_sidecar(path).name} (saved by an xwvnet "
                                  "older than index version 2, or the sidecar was edited), so a changed byte in it "
                                  f"could not be detected: {rebuild}.")
    found = _sha256(path)
    if found != expected:
        raise IndexIntegrityError(f"{path} is not the file its sidecar describes: its SHA-256 is {found}, the sidecar "
                                  f"records {expected} (the file was changed, truncated or replaced after it was "
                                  f"saved): {rebuild}.")


def check_index(index: RetrievalIndex, ds: Any, *, allow_more: bool = False) -> None:
    """Refuse an index that does not belong to the imagettes of ``ds`` (an embedding store, opened).

    Parameters
    ----------
    index : RetrievalIndex
        The index.
    ds : xarray.Dataset
        The imagettes searched, in store order (e.g. :func:`xwvnet.open_store` of the embedding store).
    allow_more : bool, default False
        Accept a ``ds`` with more imagettes than the index covers (used by :func:`update_index`).

    Raises
    ------
    IndexMismatchError
        If the encoder's weights hash differs, the imagette count differs (a stale index: run
        :func:`update_index`), or the first or last id indexed is not at its recorded position.
    """
    info = index.info
    features = info.get("features", S.EMBEDDING)
    n = ds.sizes[S.IMAGETTE]
    if features in ds.data_vars:
        attrs = ds[features].attrs
        for key in ("encoder_weights_hash", "encoder_arch"):
            if key in info and key in attrs and str(attrs[key]) != str(info[key]):
                raise IndexMismatchError(f"the index {index.path} was built from embeddings with {key}="
                                         f"{info[key]!r}, these have {attrs[key]!r}: build an index for this store.")
    if n < index.n or (n > index.n and not allow_more):
        what = "fewer" if n < index.n else "more"
        todo = ("run xwvnet.retrieval.update_index(store) to add the new ones" if n > index.n
                else "build the index again for this store")
        raise IndexMismatchError(f"the index {index.path} covers {index.n} imagettes but the store holds {n} "
                                 f"({what}): {todo}.")
    ids = ds[S.IMAGETTE]
    if index.n and (str(ids.values[0]) != info.get("first_id") or str(ids.values[index.n - 1]) != info.get("last_id")):
        raise IndexMismatchError(f"the index {index.path} was built for other imagettes (first/last ids "
                                 f"{info.get('first_id')!r}/{info.get('last_id')!r}, found {str(ids.values[0])!r}/"
                                 f"{str(ids.values[index.n - 1])!r}): build an index for this store.")


def open_index(path: str | os.PathLike, store: str | os.PathLike | None = None) -> RetrievalIndex:
    """Read a saved index, and check it against its embedding store when ``store`` is given.

    Parameters
    ----------
    path : str or os.PathLike
        The index file, or the embedding store (then its default :func:`index_path` is read).
    store : str or os.PathLike, optional
        The embedding store to check the index against (:func:`check_index`).

    Returns
    -------
    RetrievalIndex
        The index, with the search ``effort`` it was saved with.

    Raises
    ------
    ImportError
        If faiss is not installed.
    FileNotFoundError
        If there is no index (or no sidecar) at ``path``.
    IndexIntegrityError
        If the index file's SHA-256 differs from the one its sidecar records, or the sidecar records none (an
        index saved by an xwvnet before index version 2): rebuild it with :func:`build_index`.
    IndexMismatchError
        If the files are not an xwvnet index, or do not match ``store``.

    Examples
    --------
    >>> index = xwvnet.retrieval.open_index("embeddings.zarr.index", "embeddings.zarr")  # doctest: +SKIP
    """
    path = local_path(path, "an index")
    if not path.name.endswith(SUFFIX) and (path / "refs").is_dir():  # a store (icechunk repository) was given
        path = index_path(path)
    index = _read_index(path)
    if store is not None:
        ds, _ = _store_facts(os.fspath(store), index.info.get("features", S.EMBEDDING))
        check_index(index, ds)
    return index


def update_index(store: str | os.PathLike, path: str | os.PathLike | None = None, *,
                 block: int = ADD_BLOCK) -> RetrievalIndex:
    """Add the imagettes appended to an embedding store since its index was built (no retraining).

    Parameters
    ----------
    store : str or os.PathLike
        The embedding store.
    path : str or os.PathLike, optional
        The index file; default :func:`index_path`.
    block : int, optional
        Imagettes added per step.

    Returns
    -------
    RetrievalIndex
        The updated, saved index (unchanged when nothing was appended).

    Raises
    ------
    IndexIntegrityError
        If the index file's SHA-256 differs from its sidecar's, or the sidecar records none: rebuild it.
    IndexMismatchError
        If the index belongs to another store or encoder, or the store holds fewer imagettes than indexed.

    Examples
    --------
    >>> index = xwvnet.retrieval.update_index("embeddings.zarr")  # doctest: +SKIP
    """
    store = os.fspath(store)
    index = _read_index(index_path(store) if path is None else local_path(path, "an index"))
    ds, _ = _store_facts(store, index.info.get("features", S.EMBEDDING))
    check_index(index, ds, allow_more=True)
    n = ds.sizes[S.IMAGETTE]
    if n == index.n:
        return index
    added, skipped = _add(index.faiss_index, ds, index.info.get("features", S.EMBEDDING), index.n, n, block)
    index.info.update({"n": n, "n_added": index.info["n_added"] + added,
                       "n_skipped": index.info["n_skipped"] + skipped,
                       "first_id": str(ds[S.IMAGETTE].values[0]), "last_id": str(ds[S.IMAGETTE].values[n - 1]),
                       "xwvnet_version": __version__})
    index.save()
    return index
