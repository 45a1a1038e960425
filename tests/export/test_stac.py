"""STAC (xwvnet.export.stac): the Collection, Items and MLM model, field by field and against the JSON schemas."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pyarrow", reason="the export extra (pip install xwvnet[export])")
gpd = pytest.importorskip("geopandas")
pytest.importorskip("shapely")
pystac = pytest.importorskip("pystac")

from tests.export._helpers import DIM, check_stac, model_item, without_positions  # noqa: E402
from xwvnet.conventions import MLM_SCHEMA  # noqa: E402
from xwvnet.export import export_store, stac_collection, to_plain_zarr  # noqa: E402
from xwvnet.export.stac import EMB_SCHEMA  # noqa: E402


def test_stac_collection_describes_the_encoder_and_the_shards(emb, tmp_path):
    export_store(emb, tmp_path / "out", dtype="int8", max_file_bytes=25 * (DIM + 256))
    collection = pystac.Collection.from_file(str(tmp_path / "out" / "collection.json"))
    assert EMB_SCHEMA in collection.stac_extensions
    fields = collection.extra_fields
    assert fields["emb:dimensions"] == DIM and fields["emb:type"] == "chip" and fields["data_type"] == "int8"
    model = model_item(collection)
    assert MLM_SCHEMA in model.stac_extensions
    props = model.properties
    assert props["mlm:name"] == "toy-resnet" and props["mlm:architecture"] == "resnet18"
    assert props["mlm:output"][0]["result"]["shape"] == [-1, DIM]
    assert props["mlm:output"][0]["result"]["dim_order"] == ["batch", "embedding"]
    assert props["mlm:input"][0]["pre_processing_function"] == {"format": "python", "expression":
                                                                "wvnet-quicklook-v1"}
    assert props["xwvnet:weights_hash"] == "sha256:abc123"
    (weights,) = model.assets.values()
    assert "mlm:model" in weights.roles and weights.extra_fields["mlm:artifact_type"] == "torch.save"
    items = list(collection.get_items(recursive=True))
    assert len(items) == 2
    for item in items:
        assert item.properties["emb:quantization"] == {"method": "per_row_scale", "original_dtype": "float32",
                                                       "quantized_dtype": "int8"}
        assert set(item.assets) == {"embeddings"} and EMB_SCHEMA in item.stac_extensions
    times = emb.time.values
    start = min(i.common_metadata.start_datetime for i in items).replace(tzinfo=None)
    end = max(i.common_metadata.end_datetime for i in items).replace(tzinfo=None)
    assert np.datetime64(start, "ns") == times.min() and np.datetime64(end, "ns") == times.max()
    for item in items:
        href = item.assets["embeddings"].get_absolute_href()
        frame = gpd.read_parquet(href)
        west, south, east, north = item.bbox
        b = frame.total_bounds
        assert west <= b[0] and south <= b[1] and east >= b[2] and north >= b[3]


def test_a_failed_stac_save_leaves_the_previous_collection_whole(emb, tmp_path, monkeypatch):
    export_store(emb, tmp_path / "out", dtype="int8", max_file_bytes=25 * (DIM + 256))
    out = tmp_path / "out"
    before = {p: p.read_bytes() for p in out.rglob("*.json")}
    shards = sorted((out / "parquet").glob("*.parquet"))
    real = Path.write_text

    def disk_full(self, text, *args, **kwargs):
        real(self, text[: len(text) // 2], *args, **kwargs)  # half of the file, then the failure
        raise OSError("No space left on device")

    monkeypatch.setattr(Path, "write_text", disk_full)
    with pytest.raises(OSError, match="No space"):
        stac_collection(shards, out, description="another description")
    monkeypatch.undo()
    assert {p: p.read_bytes() for p in out.rglob("*.json")} == before
    assert not list(out.rglob("*.tmp"))
    assert pystac.Collection.from_file(str(out / "collection.json")).description != "another description"


def test_stac_export_has_every_field_the_specifications_require(emb, tmp_path):
    export_store(emb, tmp_path / "f32", max_file_bytes=25 * (DIM * 4 + 256))
    collection, items, model = check_stac(tmp_path / "f32", DIM, "float32")
    assert len(items) == 2 and all("emb:quantization" not in i["properties"] for i in items)  # stored as computed
    assert model["properties"]["mlm:name"] == "toy-resnet"
    export_store(emb, tmp_path / "i8", dtype="int8")
    _, items, _ = check_stac(tmp_path / "i8", DIM, "int8")
    assert items[0]["properties"]["emb:quantization"]["quantized_dtype"] == "int8"


def _schema_file(url: str) -> Path | None:
    """A JSON schema kept offline as ``schemas/<host>/<path>`` under the data mirror or the xwvnet cache."""
    from xwvnet.datasets import cache_dir, data_dir

    rel = url.split("://", 1)[-1].split("#")[0]
    for root in (data_dir(), cache_dir()):
        if root is not None and (root / "schemas" / rel).is_file():
            return root / "schemas" / rel
    return None


def _validate(document: dict, url: str) -> list[str]:
    """Validate against the schema at ``url`` (kept offline); referenced schemas not kept are taken as permissive.

    Returns the referenced schemas that were not available.
    """
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema validates the documents against the schemas")
    referencing = pytest.importorskip("referencing")
    from referencing.jsonschema import DRAFT7

    path = _schema_file(url)
    if path is None:
        pytest.skip(f"the JSON schema {url} is not kept offline: place it at <XWVNET_DATA_DIR or XWVNET_CACHE>/"
                    f"schemas/{url.split('://', 1)[-1]}")
    missing: list[str] = []

    class Anything(dict):
        """A schema that accepts everything, whatever JSON pointer is followed into it."""

        def __getitem__(self, key: object) -> Anything:
            return Anything()

        def __contains__(self, key: object) -> bool:
            return False

    def retrieve(uri: str) -> referencing.Resource:
        found = _schema_file(uri)
        if found is None:
            missing.append(uri)
            return referencing.Resource.from_contents(Anything(), default_specification=DRAFT7)
        return referencing.Resource.from_contents(json.loads(found.read_text()), default_specification=DRAFT7)

    schema = json.loads(path.read_text())
    validator = jsonschema.validators.validator_for(schema)(schema, registry=referencing.Registry(retrieve=retrieve))
    errors = sorted(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document))
    assert not errors, errors
    return missing


def test_the_documents_validate_against_the_json_schemas_offline(emb, tmp_path):
    from xwvnet.conventions import GEOEMB_SCHEMA

    export_store(without_positions(emb, slice(0, 5)), tmp_path / "out", dtype="int8",
                 max_file_bytes=25 * (DIM + 256))
    collection, items, model = check_stac(tmp_path / "out", DIM, "int8")
    _validate(collection, EMB_SCHEMA)
    for item in items:
        _validate(item, EMB_SCHEMA)
    _validate(model, MLM_SCHEMA)
    to_plain_zarr(emb, tmp_path / "plain.zarr")
    _validate(json.loads((tmp_path / "plain.zarr" / "zarr.json").read_text()), GEOEMB_SCHEMA)
    bad = dict(collection, links=[link for link in collection["links"] if link["rel"] != "emb:model"])
    with pytest.raises(AssertionError):  # the schema does see a missing required link
        _validate(bad, EMB_SCHEMA)
