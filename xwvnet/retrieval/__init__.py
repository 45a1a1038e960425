"""Nearest imagettes: exact blocked search, a persistent approximate index for archive scale, compact embeddings.

- :mod:`xwvnet.retrieval.exact`: :func:`neighbors` (exact, or through an index), :func:`search` (arrays),
  :func:`retrieval_scores` (precision@k and mAP@k against tags).
- :mod:`xwvnet.retrieval.index`: :func:`build_index`, :func:`open_index`, :func:`update_index` (faiss, optional:
  ``pip install xwvnet[faiss]``), the :class:`RetrievalIndex` they return.
- :mod:`xwvnet.retrieval.compact`: :func:`compact_embeddings` (float16 / int8) and :func:`decode_embeddings`.

Only the API is named here; block sizes, the in-memory search (``exact.search_arrays``), ``index.index_path``
and the other helpers stay in their submodules.
"""

from .compact import compact_embeddings, decode_embeddings
from .exact import neighbors, retrieval_scores, search
from .index import (
    IndexIntegrityError,
    IndexMismatchError,
    RecallWarning,
    RetrievalIndex,
    build_index,
    open_index,
    update_index,
)

__all__ = [
    "IndexIntegrityError", "IndexMismatchError", "RecallWarning", "RetrievalIndex", "build_index",
    "compact_embeddings", "decode_embeddings", "neighbors", "open_index", "retrieval_scores", "search",
    "update_index",
]
