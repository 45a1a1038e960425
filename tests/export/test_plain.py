"""Plain Zarr copies (xwvnet.export.plain): read with xarray alone, carrying the geo-embeddings convention."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

pytest.importorskip("pyarrow", reason="the export extra (pip install xwvnet[export])")
pytest.importorskip("geopandas")
pytest.importorskip("shapely")
pytest.importorskip("pystac")

import xwvnet  # noqa: E402
from tests.export._helpers import DIM, PROVENANCE, check_geoemb, write_embedding_store  # noqa: E402
from xwvnet import schema as S  # noqa: E402
from xwvnet.export import export_store, to_plain_zarr  # noqa: E402


def test_plain_zarr_copy_reads_with_xarray_alone(where, emb, tmp_path):
    url = write_embedding_store(where("embeddings.zarr"), emb)
    out = tmp_path / "plain.zarr"
    export_store(url, out, format="zarr")
    plain = xr.open_zarr(out)
    assert (out / "zarr.json").is_file() and json.loads((out / "zarr.json").read_text())["zarr_format"] == 3
    np.testing.assert_array_equal(plain.embedding.values, emb.embedding.values)
    assert list(plain.imagette.values) == list(emb.imagette.values)
    assert plain.embedding.attrs["encoder_weights_hash"] == PROVENANCE["encoder_weights_hash"]
    with pytest.raises(ValueError, match="not empty"):
        to_plain_zarr(url, out)


def test_geoemb_attributes_on_an_embedding_store_and_a_plain_zarr_copy(quicklook_embeddings, tmp_path):
    from xwvnet.io.store import root_attrs

    dim = xwvnet.open_store(quicklook_embeddings).sizes[S.FEATURE]
    stored = root_attrs(str(quicklook_embeddings))
    check_geoemb(stored, dim, "float32")
    assert stored["geoemb:source_data"] == [(quicklook_embeddings.parent / "imagettes.zarr").resolve().as_uri()]
    assert stored["mlm:architecture"] == "resnet18" and stored["mlm:input"][0]["input"]["shape"] == [-1, 3, 224, 224]
    opened = xwvnet.open_store(quicklook_embeddings)
    check_geoemb(opened.attrs, dim, "float32")  # open_store gives them back
    plain = tmp_path / "plain.zarr"
    export_store(str(quicklook_embeddings), plain, format="zarr")
    group = json.loads((plain / "zarr.json").read_text())
    check_geoemb(group["attributes"], dim, "float32")
    check_geoemb(xr.open_zarr(plain).attrs, dim, "float32")
    assert group["attributes"]["geoemb:model"] == stored["geoemb:model"]


def test_a_plain_zarr_copy_of_older_embeddings_gets_the_convention(where, emb, tmp_path):
    """Stores embedded before the convention: the copy describes them from the embedding's provenance."""
    url = write_embedding_store(where("old.zarr"), emb)
    assert "geoemb:type" not in xwvnet.open_store(url).attrs
    to_plain_zarr(url, tmp_path / "plain.zarr")
    attrs = json.loads((tmp_path / "plain.zarr" / "zarr.json").read_text())["attributes"]
    check_geoemb(attrs, DIM, "float32")
    assert attrs["geoemb:model"] == "urn:xwvnet:encoder:toy-resnet:sha256:abc123"
