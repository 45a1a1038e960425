"""Compact embeddings (float16, int8): the round trip, the neighbours they keep, and what is refused."""

from __future__ import annotations

import numpy as np
import pytest

from tests._embeddings import as_dataset, mixture, recall
from xwvnet import retrieval as R
from xwvnet import schema as S


@pytest.mark.parametrize("dtype", ["float16", "int8"])
def test_compact_embeddings_round_trip_and_keep_neighbours(dtype):
    x = mixture(1500, 48, seed=8)
    x[5] = np.nan
    ds = as_dataset(x)
    small = R.compact_embeddings(ds, dtype)
    assert small[S.EMBEDDING].dtype == np.dtype(dtype) and small[S.EMBEDDING].attrs["compact_dtype"] == dtype
    back = R.decode_embeddings(small)
    assert back[S.EMBEDDING].dtype == np.float32 and "compact_dtype" not in back[S.EMBEDDING].attrs
    assert np.isnan(back[S.EMBEDDING].values[5]).all()
    ok = np.isfinite(x).all(axis=1)
    tolerance = 1e-3 if dtype == "float16" else float(np.nanmax(np.abs(x), axis=0).max()) / 127 / 2 + 1e-7
    assert np.nanmax(np.abs(back[S.EMBEDDING].values[ok] - x[ok])) <= tolerance
    lazy = R.decode_embeddings(R.compact_embeddings(ds.chunk({S.IMAGETTE: 400}), dtype))
    np.testing.assert_array_equal(lazy[S.EMBEDDING].values, back[S.EMBEDDING].values)
    queries = [f"im{i:06d}" for i in range(0, 1500, 50)]
    agree = recall(R.neighbors(small, k=10, query=queries), R.neighbors(ds, k=10, query=queries))
    assert agree >= 0.9


def test_compact_errors():
    ds = as_dataset(mixture(20, 4))
    with pytest.raises(ValueError, match="dtype"):
        R.compact_embeddings(ds, "bfloat8")
    with pytest.raises(ValueError, match="already compact"):
        R.compact_embeddings(R.compact_embeddings(ds), "int8")
    with pytest.raises(ValueError, match="float16"):
        R.compact_embeddings(ds.assign({S.EMBEDDING: ds[S.EMBEDDING] * 1e6}), "float16")
    with pytest.raises(ValueError, match="scale"):
        R.decode_embeddings(R.compact_embeddings(ds, "int8").drop_vars("embedding_scale"))
    assert R.decode_embeddings(ds) is ds
