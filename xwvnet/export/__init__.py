"""Embeddings for tools outside xwvnet: GeoParquet files, STAC catalogues, plain Zarr copies.

- :mod:`xwvnet.export.geoparquet`: :func:`to_geoparquet`, :func:`read_geoparquet` (one row per imagette).
- :mod:`xwvnet.export.stac`: :func:`stac_collection` (the STAC embeddings extension v0.0.1 for the Collection and
  its Items, one per shard; the encoder as a STAC MLM v1.5 Item).
- :mod:`xwvnet.export.shards`: :func:`export_store` (what ``xwvnet export`` runs: shards with a size limit plus
  STAC, written beside the output and renamed onto it when complete, or a plain Zarr copy via
  :func:`to_plain_zarr`, which carries the geo-embeddings Zarr convention's ``geoemb:`` attributes).

All need the ``export`` extra (``pip install xwvnet[export]``), imported only when used.
"""

from .geoparquet import DuplicateIdError, read_geoparquet, square_corners, to_geoparquet
from .plain import to_plain_zarr
from .shards import FORMATS, ExportReport, export_store
from .stac import model_item, stac_collection

__all__ = ["FORMATS", "DuplicateIdError", "ExportReport", "export_store", "model_item", "read_geoparquet",
           "square_corners", "stac_collection", "to_geoparquet", "to_plain_zarr"]
