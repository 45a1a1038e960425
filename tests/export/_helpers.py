"""Helpers of the export tests: clustered embeddings, embedding stores, checks against the specifications."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

import xwvnet
from tests._factories import make_imagettes
from xwvnet import schema as S
from xwvnet.conventions import GEOEMB_UUID, MLM_SCHEMA
from xwvnet.export.stac import EMB_SCHEMA

if TYPE_CHECKING:
    import pystac


DIM = 64


PROVENANCE = {"encoder": "toy-resnet", "encoder_weights_hash": "sha256:abc123", "encoder_arch": "resnet18",
              "encoder_transform": "wvnet-quicklook-v1", "xwvnet_version": xwvnet.__version__}


def embeddings(n: int = 40, seed: int = 0, clusters: int = 8) -> xr.Dataset:
    """``n`` imagettes' clustered embeddings with the imagette coordinates, tags, a probe output, some headings."""
    rng = np.random.default_rng(seed)
    ds = make_imagettes(n, seed=seed).drop_vars([S.QUICKLOOK, S.VALID_LINES, S.VALID_SAMPLES])
    centres = rng.standard_normal((clusters, DIM)).astype(np.float32)
    x = centres[rng.integers(0, clusters, n)] + 0.5 * rng.standard_normal((n, DIM)).astype(np.float32)
    heading = np.where(np.arange(n) % 2 == 0, rng.uniform(0, 360, n), np.nan)
    ds = ds.assign_coords({S.HEADING: (S.IMAGETTE, heading, {"units": "degree"}),
                           S.INCIDENCE_ANGLE: (S.IMAGETTE, rng.uniform(20, 40, n), {"units": "degree"})})
    ds[S.LATITUDE].attrs = {"units": "degrees_north", "standard_name": "latitude"}
    ds = ds.assign({
        S.EMBEDDING: ((S.IMAGETTE, S.FEATURE), x.astype(np.float32), dict(PROVENANCE)),
        "hs_predicted": (S.IMAGETTE, rng.uniform(0.5, 8, n).astype(np.float32), {"units": "m"}),
        S.LABELS: ((S.IMAGETTE, S.LABEL), rng.integers(-1, 2, (n, 3)).astype(np.int8)),
    }).assign_coords({S.LABEL: np.array(["WS", "MC", "RC"], dtype=object)})
    ds.attrs = {"encoder": PROVENANCE["encoder"], "kind": "embeddings"}
    return ds


def write_embedding_store(url: str, emb: xr.Dataset, chunk: int = 16) -> str:
    """An embedding store holding ``emb`` (as xwvnet.embed_store leaves it), on a disk or S3."""
    from xwvnet.io import store as zs
    from xwvnet.io.storage import locate

    x = emb.embedding.values
    source = emb.drop_vars([S.EMBEDDING, "hs_predicted", S.LABELS, S.LABEL])
    loc = locate(url)
    zs.extend_embedding_store(loc, source, chunk_size=chunk, dim=x.shape[1], attrs=dict(PROVENANCE),
                              embedding_attrs=dict(PROVENANCE))
    writer = zs.EmbeddingWriter(loc, every=float("inf"))
    for c in range(-(-len(x) // chunk)):
        a, b = c * chunk, min(len(x), (c + 1) * chunk)
        writer.merge(zs.write_embedding_rows(writer.fork(), c, a, a, x[a:b]), c)
    writer.commit()
    return url


def model_item(collection) -> pystac.Item:
    """The STAC MLM Item the Collection's ``emb:model`` link points at."""
    import pystac

    (link,) = [link for link in collection.links if link.rel == "emb:model"]
    return pystac.Item.from_file(link.get_absolute_href())


def without_positions(emb: xr.Dataset, rows: slice) -> xr.Dataset:
    """``emb`` with latitude and longitude NaN on ``rows`` (as quicklooks have them: the file names carry no place)."""
    lat, lon = emb.latitude.values.copy(), emb.longitude.values.copy()
    lat[rows], lon[rows] = np.nan, np.nan
    return emb.assign_coords(latitude=(S.IMAGETTE, lat, emb.latitude.attrs), longitude=(S.IMAGETTE, lon))


#: fields each specification marks REQUIRED (read from the specifications' README and JSON schema)
EMB_COLLECTION_REQUIRED = ("emb:type", "emb:dimensions", "data_type")


EMB_COLLECTION_LINKS = ("emb:model", "emb:source-data")


EMB_ITEM_ASSET = "embeddings"


EMB_COLLECTION_FIELDS = {"emb:type", "emb:dimensions", "emb:chip_layout", "emb:temporal_resolution",
                         "emb:fit_for_use", "emb:uncertainty"}  # the only emb: fields a Collection may hold


EMB_ITEM_FIELDS = {"emb:runtime_parameters", "emb:preprocessing", "emb:postprocessing", "emb:fit_for_use",
                   "emb:spatial_coverage", "emb:uncertainty", "emb:quantization", "emb:energy"}


EMB_QUANTIZATION_REQUIRED = ("method", "original_dtype")


EMB_CHIP_LAYOUTS = {"regular_grid", "variable_grid", "named_grid"}


MLM_ITEM_REQUIRED = ("mlm:name", "mlm:architecture", "mlm:tasks", "mlm:input", "mlm:output")


MLM_INPUT_REQUIRED = ("name", "input")


MLM_OUTPUT_REQUIRED = ("name", "tasks", "result")


MLM_STRUCTURE_REQUIRED = ("shape", "dim_order", "data_type")


MLM_EXPRESSION_REQUIRED = ("format", "expression")


GEOEMB_REQUIRED = ("zarr_conventions", "geoemb:type", "geoemb:dimensions", "geoemb:model", "geoemb:source_data",
                   "geoemb:data_type")


GEOEMB_CHIP_LAYOUTS = {"regular_grid", "irregular"}


def check_stac(out: Path, dim: int, data_type: str) -> tuple[dict, list[dict], dict]:
    """Check the export at ``out`` field by field against the specifications; return the three kinds of document."""
    collection = json.loads((out / "collection.json").read_text())
    assert EMB_SCHEMA in collection["stac_extensions"]
    for field in EMB_COLLECTION_REQUIRED:
        assert field in collection, field
    assert collection["emb:type"] == "chip" and collection["emb:dimensions"] == dim
    assert collection["data_type"] == data_type
    assert {k for k in collection if k.startswith("emb:")} <= EMB_COLLECTION_FIELDS
    assert collection["emb:chip_layout"]["layout_type"] in EMB_CHIP_LAYOUTS
    assert len(collection["emb:chip_layout"]["chip_size"]) == 2
    rels = [link["rel"] for link in collection["links"]]
    for rel in EMB_COLLECTION_LINKS:
        assert rel in rels, rel
    assert EMB_ITEM_ASSET in collection["item_assets"]
    items = []
    for link in collection["links"]:
        if link["rel"] == "item":
            item = json.loads((out / link["href"]).read_text())
            assert EMB_SCHEMA in item["stac_extensions"] and EMB_ITEM_ASSET in item["assets"]
            assert {k for k in item["properties"] if k.startswith("emb:")} <= EMB_ITEM_FIELDS
            for field in EMB_QUANTIZATION_REQUIRED:
                assert "emb:quantization" not in item["properties"] or field in item["properties"]["emb:quantization"]
            assert (out / link["href"]).parent.joinpath(item["assets"][EMB_ITEM_ASSET]["href"]).resolve().is_file()
            items.append(item)
    (model_link,) = [link for link in collection["links"] if link["rel"] == "emb:model"]
    model = json.loads((out / model_link["href"]).read_text())
    assert model["type"] == "Feature" and MLM_SCHEMA in model["stac_extensions"]
    props = model["properties"]
    for field in MLM_ITEM_REQUIRED:
        assert field in props, field
    for entry in props["mlm:input"]:
        assert all(f in entry for f in MLM_INPUT_REQUIRED) and all(f in entry["input"] for f in MLM_STRUCTURE_REQUIRED)
        assert all(f in entry["pre_processing_function"] for f in MLM_EXPRESSION_REQUIRED)
    for entry in props["mlm:output"]:
        assert all(f in entry for f in MLM_OUTPUT_REQUIRED)
        assert all(f in entry["result"] for f in MLM_STRUCTURE_REQUIRED)
        assert entry["result"]["dim_order"] == ["batch", "embedding"] and entry["result"]["shape"] == [-1, dim]
    assert props["xwvnet:weights_hash"]
    assert "license" in props
    models = [a for a in model["assets"].values() if "mlm:model" in a["roles"]]
    assert len(models) == 1 and models[0]["mlm:artifact_type"] and models[0]["href"]
    return collection, items, model


def check_geoemb(attrs: dict, dim: int, data_type: str) -> None:
    for field in GEOEMB_REQUIRED:
        assert field in attrs, field
    assert any(c.get("uuid") == GEOEMB_UUID and c.get("name") == "geoemb:" for c in attrs["zarr_conventions"])
    assert attrs["geoemb:type"] == "chip" and attrs["geoemb:dimensions"] == dim
    assert attrs["geoemb:data_type"] == data_type and attrs["geoemb:source_data"]
    assert attrs["geoemb:chip_layout"]["layout_type"] in GEOEMB_CHIP_LAYOUTS  # required for chips
    assert len(attrs["geoemb:chip_layout"]["chip_size"]) == 2
    assert attrs["mlm:output"][0]["result"]["dim_order"] == ["batch", "embedding"]
