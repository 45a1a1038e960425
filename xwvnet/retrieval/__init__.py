"""Nearest imagettes: exact blocked search, a persistent approximate index for archive scale, compact embeddings.

- :mod:`xwvnet.retrieval.exact`: :func:`neighbors` (exact, or through an index), :func:`search` (arrays),
  :func:`retrieval_scores` (precision@k and mAP@k against tags).
- :mod:`xwvnet.retrieval.index`: :func:`build_index`, :func:`open_index`, :func:`update_index` (faiss, optional:
  ``pip install xwvnet[faiss]``).
- :mod:`xwvnet.retrieval.compact`: :func:`compact_embeddings` (float16 / int8) and :func:`decode_embeddings`.
"""

from .compact import compact_embeddings, decode_embeddings
from .exact import (
    DATABASE_BLOCK,
    QUERY_BLOCK,
    SPLIT_EVERY,
    TOPK,
    block_pairs,
    check_k,
    compute,
    neighbors,
    partial_merge,
    retrieval_scores,
    search,
    search_arrays,
)
from .index import (
    IndexMismatchError,
    RecallWarning,
    RetrievalIndex,
    build_index,
    check_index,
    default_nlist,
    index_path,
    open_index,
    update_index,
)

__all__ = [
    "DATABASE_BLOCK", "QUERY_BLOCK", "SPLIT_EVERY", "TOPK", "IndexMismatchError", "RecallWarning", "RetrievalIndex",
    "block_pairs", "build_index", "check_index", "check_k", "compact_embeddings", "compute", "decode_embeddings",
    "default_nlist", "index_path", "neighbors", "open_index", "partial_merge", "retrieval_scores", "search",
    "search_arrays", "update_index",
]
