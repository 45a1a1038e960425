"""Compact embeddings: float16 (half the bytes) or int8 with a per-feature scale (a quarter), decoded on read.

12 million 2048-d float32 embeddings are 98 GB; float16 makes them 49 GB, int8 25 GB. Both keep neighbours and
probes close to float32 (the figures are in docs/retrieval.md). :func:`compact_embeddings` encodes,
:func:`decode_embeddings` gives float32 back (lazily for dask-backed data); :func:`xwvnet.neighbors` decodes by
itself. int8 stores ``round(x / scale)`` in -127..127 with ``scale = max |x| / 127`` per feature (a variable
``<features>_scale(feature)``), and -128 in every feature of a row that was not finite (decoded as NaN).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from .. import schema as S
from ..errors import InvalidArgumentError, InvalidDataError

DTYPES = ("float16", "int8")
COMPACT_ATTR = S.COMPACT_DTYPE
MISSING_INT8 = -128


def _scale_name(features: str) -> str:
    return f"{features}_scale"


def compact_embeddings(ds: xr.Dataset, dtype: str = "float16", *, features: str = S.EMBEDDING) -> xr.Dataset:
    """``ds`` with ``features`` stored compactly as float16, or int8 with a per-feature scale.

    Parameters
    ----------
    ds : xarray.Dataset
        With ``features`` (imagette, feature), float32.
    dtype : {"float16", "int8"}, default "float16"
        float16: 2 bytes per value, relative error about 5e-4. int8: 1 byte per value plus one float32 scale per
        feature; error up to half a step of ``max |x| / 127`` of each feature. For dask-backed data the int8
        scales need one pass over the embeddings (computed here); the encoding stays lazy.
    features : str, default "embedding"
        The variable encoded.

    Returns
    -------
    xarray.Dataset
        A new Dataset: ``features`` in ``dtype`` with attr ``compact_dtype``; for int8 also
        ``<features>_scale(feature)`` float32.

    Raises
    ------
    ValueError
        If ``features`` is missing or already compact, ``dtype`` is not one of the two, or a float16 encoding
        would overflow (values beyond 65504).

    Examples
    --------
    >>> small = xwvnet.retrieval.compact_embeddings(ds, "int8")  # doctest: +SKIP
    >>> back = xwvnet.retrieval.decode_embeddings(small)  # doctest: +SKIP
    """
    if dtype not in DTYPES:
        raise InvalidArgumentError(f"dtype must be one of {DTYPES}, got {dtype!r}.")
    if features not in ds.data_vars:
        raise InvalidDataError(f"no {features!r} variable to compact: found {sorted(map(str, ds.data_vars))}.")
    x = ds[features]
    if COMPACT_ATTR in x.attrs:
        raise InvalidDataError(f"{features!r} is already compact ({x.attrs[COMPACT_ATTR]}); decode_embeddings first.")
    x = x.transpose(S.IMAGETTE, S.FEATURE).astype(np.float32)
    finite_max = abs(x).where(np.isfinite(x)).max(S.IMAGETTE, skipna=True).fillna(0.0)
    attrs = {**x.attrs, COMPACT_ATTR: dtype}
    if dtype == "float16":
        top = float(finite_max.max())
        if top > float(np.finfo(np.float16).max):
            raise InvalidArgumentError(
                f"{features!r} holds values up to {top:.3g}, beyond float16's 65504: use dtype='int8'."
            )
        code = x.astype(np.float16)
        code.attrs = attrs
        return ds.assign({features: code})
    scale = np.asarray(finite_max.values, dtype=np.float32) / np.float32(127)
    scale = np.where(scale > 0, scale, np.float32(1)).astype(np.float32)
    rows_ok = np.isfinite(x).all(S.FEATURE)
    code = np.clip(np.rint(x / scale), -127, 127).where(rows_ok, MISSING_INT8)
    code = code.astype(np.int8)
    code.attrs = attrs
    return ds.assign({features: code, _scale_name(features): (S.FEATURE, scale,
                                                              {"long_name": f"int8 step of {features}"})})


def decode_embeddings(ds: xr.Dataset, features: str = S.EMBEDDING) -> xr.Dataset:
    """``ds`` with compact ``features`` (:func:`compact_embeddings`) decoded to float32; unchanged otherwise.

    Parameters
    ----------
    ds : xarray.Dataset
        Possibly with compact ``features``.
    features : str, default "embedding"
        The variable decoded.

    Returns
    -------
    xarray.Dataset
        ``features`` float32 (lazy when dask-backed; NaN rows where int8 held -128), without the scale variable.

    Raises
    ------
    ValueError
        If an int8 encoding has lost its ``<features>_scale`` variable.

    Examples
    --------
    >>> ds = xwvnet.retrieval.decode_embeddings(xwvnet.open_store("embeddings.zarr"))  # doctest: +SKIP
    """
    if features not in ds.data_vars or COMPACT_ATTR not in ds[features].attrs:
        return ds
    x = ds[features]
    kind = x.attrs[COMPACT_ATTR]
    attrs = {key: value for key, value in x.attrs.items() if key != COMPACT_ATTR}
    if kind == "float16":
        values = x.astype(np.float32)
        values.attrs = attrs
        return ds.assign({features: values})
    name = _scale_name(features)
    if name not in ds:
        raise InvalidDataError(f"{features!r} is int8 but {name!r} (its per-feature scale) is missing: keep it beside "
                               "the embeddings.")
    missing = (x == MISSING_INT8).any(S.FEATURE)
    values = (x.astype(np.float32) * ds[name].astype(np.float32)).where(~missing).astype(np.float32)
    values.attrs = attrs
    return ds.drop_vars(name).assign({features: values})
