"""A plain Zarr v3 copy of a store (imagettes or embeddings), readable with ``xr.open_zarr`` alone.

For publishing outside xwvnet and icechunk: no transactions, no history, the committed data as it is now (an
incomplete embedding store gives its complete rows, as :func:`xwvnet.open_store` shows them). A copy of embeddings
carries the geo-embeddings Zarr convention (``geoemb:`` root attributes, with the encoder's ``mlm:`` description).
Written chunk by chunk from the lazy store; consolidated metadata so a reader opens it in one request.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import xarray as xr

from .. import schema as S
from ..conventions import geoemb_attrs, merge_geoemb
from ..errors import InvalidDataError, OutputExistsError, OutputLocationError


def to_plain_zarr(
    store: str | os.PathLike | xr.Dataset,
    out: str | os.PathLike,
    *,
    snapshot: str | None = None,
    storage_options: dict[str, Any] | None = None,
    out_storage_options: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> str:
    """Copy a store (or a Dataset) into a plain Zarr v3 store, chunk by chunk.

    Parameters
    ----------
    store : str, os.PathLike or xarray.Dataset
        An xwvnet store (path or ``s3://``/``gs://``/``az://`` URL), or a Dataset (e.g. from
        :func:`xwvnet.read_geoparquet`).
    out : str or os.PathLike
        The plain Zarr store written (path or URL).
    snapshot : str, optional
        Copy the store as of this commit.
    storage_options : dict, optional
        Credentials and endpoint of ``store``.
    out_storage_options : dict, optional
        Credentials and endpoint of ``out`` (default: those of ``store``).
    overwrite : bool, default False
        Replace what is at ``out``.

    Returns
    -------
    str
        Where the copy is.

    Raises
    ------
    ValueError
        If ``out`` is occupied and ``overwrite`` is False, or ``out`` is the store itself.

    Examples
    --------
    >>> xwvnet.export.to_plain_zarr("embeddings.zarr", "public/embeddings.zarr")  # doctest: +SKIP
    >>> xr.open_zarr("public/embeddings.zarr")  # doctest: +SKIP
    """
    from ..io.storage import locate
    from ..io.store import open_store

    target = locate(out, out_storage_options if out_storage_options is not None else storage_options)
    if isinstance(store, xr.Dataset):
        ds = store
    else:
        source = locate(store, storage_options)
        if str(source) == str(target):
            raise OutputLocationError(f"the copy would overwrite its own source {source}: give another out.")
        ds = open_store(source, snapshot=snapshot, storage_options=storage_options)
    if S.IMAGETTE not in ds.dims:
        raise InvalidDataError(f"expected a Dataset with an {S.IMAGETTE!r} dimension, found dims {dict(ds.sizes)}.")
    if target.exists() and not overwrite:
        raise OutputExistsError(f"{target} is not empty: pass overwrite=True (--overwrite) to replace it.")
    ds = ds.copy()
    for var in ds.variables.values():
        var.encoding = {}
    if S.EMBEDDING in ds.data_vars and S.FEATURE in ds[S.EMBEDDING].dims:  # the geo-embeddings Zarr convention
        emb = ds[S.EMBEDDING]
        ds.attrs = merge_geoemb(ds.attrs, geoemb_attrs({**ds.attrs, **emb.attrs}, dim=ds.sizes[S.FEATURE],
                                                       data_type=str(emb.dtype)))
    sizes = [v.chunks[v.dims.index(S.IMAGETTE)][0] for v in ds.data_vars.values()
             if v.chunks is not None and S.IMAGETTE in v.dims]
    if sizes:  # one regular chunking along imagette: one dask chunk is one zarr chunk
        ds = ds.chunk({S.IMAGETTE: max(sizes)})
    # strings (ids, mission, ...) are small: in memory, so their zarr type is known without a pass over them
    ds = ds.assign_coords({name: ds[name].load() for name in ds.coords if ds[name].dtype == object})
    with warnings.catch_warnings():  # consolidated metadata is zarr-python's convention for v3, read by xarray
        warnings.filterwarnings("ignore", message="Consolidated metadata is currently not part")
        ds.to_zarr(target.zarr_store(read_only=False), mode="w", zarr_format=3, consolidated=True)
    return str(target)
