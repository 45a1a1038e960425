"""Embeddings for tools outside xwvnet: GeoParquet files, STAC catalogues, plain Zarr copies.

- :mod:`xwvnet.export.geoparquet`: :func:`to_geoparquet`, :func:`read_geoparquet` (one row per imagette).
- :mod:`xwvnet.export.stac`: :func:`stac_collection` (MLM extension for the encoder, ``emb:`` fields for the
  embeddings, one Item per shard).
- :mod:`xwvnet.export.shards`: :func:`export_store` (what ``xwvnet export`` runs: shards with a size limit plus
  STAC, or a plain Zarr copy via :func:`to_plain_zarr`).

All need the ``export`` extra (``pip install xwvnet[export]``), imported only when used.
"""

from .geoparquet import read_geoparquet, square_corners, to_geoparquet
from .plain import to_plain_zarr
from .shards import FORMATS, export_store
from .stac import stac_collection

__all__ = ["FORMATS", "export_store", "read_geoparquet", "square_corners", "stac_collection", "to_geoparquet",
           "to_plain_zarr"]
