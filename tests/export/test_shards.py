"""`xwvnet export` (xwvnet.export.shards): shards with STAC from stores on disk or S3, positionless rows, failures."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

pa = pytest.importorskip("pyarrow", reason="the export extra (pip install xwvnet[export])")
pq = pytest.importorskip("pyarrow.parquet")
gpd = pytest.importorskip("geopandas")
pytest.importorskip("shapely")
pystac = pytest.importorskip("pystac")

import xwvnet  # noqa: E402
from tests._factories import make_imagettes  # noqa: E402
from tests.export._helpers import (  # noqa: E402
    DIM,
    PROVENANCE,
    check_geoemb,
    check_stac,
    model_item,
    without_positions,
    write_embedding_store,
)
from xwvnet import schema as S  # noqa: E402
from xwvnet.export import export_store, read_geoparquet, to_geoparquet  # noqa: E402


def test_export_from_a_store_on_disk_or_s3_in_row_groups(where, emb, tmp_path):
    url = write_embedding_store(where("embeddings.zarr"), emb)
    lazy = xwvnet.open_store(url)
    assert lazy.embedding.chunks is not None  # dask-backed: written block by block
    shards = export_store(url, tmp_path / "out", max_file_bytes=20 * (DIM * 4 + 256), row_group_size=8)
    parquet = [p for p in shards if p.suffix == ".parquet"]
    assert len(parquet) == 2 and shards[-1].name == "collection.json"  # 40 rows, 20 per shard
    assert [pq.ParquetFile(p).metadata.num_row_groups for p in parquet] == [3, 3]
    back = read_geoparquet(tmp_path / "out")
    np.testing.assert_array_equal(back.embedding.values, emb.embedding.values)
    assert list(back.imagette.values) == list(emb.imagette.values)
    assert back.embedding.attrs["encoder_weights_hash"] == PROVENANCE["encoder_weights_hash"]
    frame = gpd.read_parquet(tmp_path / "out" / "parquet")  # the folder of shards, as one table
    assert len(frame) == 40 and frame.crs.to_epsg() == 4326


def test_the_export_command_writes_shards_stac_and_zarr(emb, tmp_path, capsys):
    from xwvnet.cli import main

    url = write_embedding_store(str(tmp_path / "embeddings.zarr"), emb)
    assert main(["export", url, "--out", str(tmp_path / "gp"), "--dtype", "int8", "--max-file-mb", "0.005"]) == 0
    assert "GeoParquet shard(s)" in capsys.readouterr().out
    shards = sorted((tmp_path / "gp" / "parquet").glob("*.parquet"))
    assert len(shards) == 3  # about 5 KiB of int8 rows per shard: 16 rows each (64 + 256 bytes a row)
    collection = pystac.Collection.from_file(str(tmp_path / "gp" / "collection.json"))
    assert model_item(collection).properties["mlm:name"] == "toy-resnet"
    assert len(list(collection.get_items(recursive=True))) == len(shards)
    assert main(["export", url, "--format", "zarr", "--out", str(tmp_path / "plain.zarr")]) == 0
    assert xr.open_zarr(tmp_path / "plain.zarr").sizes[S.IMAGETTE] == 40
    assert main(["export", url, "--out", str(tmp_path / "gp")]) == 1  # not empty, and said so
    assert "not empty" in capsys.readouterr().err


def test_the_export_command_takes_storage_options_for_s3_stores(emb, tmp_path, s3_endpoint, monkeypatch, capsys):
    """Both stores on S3, reached only through --storage-option (no endpoint in the environment)."""
    from tests._factories import new_bucket
    from xwvnet.cli import main
    from xwvnet.io.storage import locate

    bucket = new_bucket(s3_endpoint)
    url = write_embedding_store(f"s3://{bucket}/embeddings.zarr", emb)
    for key in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ALLOW_HTTP"):
        monkeypatch.delenv(key, raising=False)
    options = ["--storage-option", f"endpoint_url={s3_endpoint}", "--storage-option", "allow_http=true"]
    out = f"s3://{bucket}/public/plain.zarr"
    assert main(["export", url, "--format", "zarr", "--out", out, *options]) == 0, capsys.readouterr().err
    assert "plain Zarr v3 copy" in capsys.readouterr().out
    plain = xr.open_zarr(locate(out, {"endpoint_url": s3_endpoint, "allow_http": True}).zarr_store(), consolidated=True)
    np.testing.assert_array_equal(plain.embedding.values, emb.embedding.values)
    assert list(plain.imagette.values) == list(emb.imagette.values)
    assert main(["export", url, "--out", str(tmp_path / "gp"), *options]) == 0, capsys.readouterr().err
    np.testing.assert_array_equal(read_geoparquet(tmp_path / "gp").embedding.values, emb.embedding.values)
    assert main(["export", url, "--out", f"s3://{bucket}/gp", *options]) == 1  # shards go to a local folder
    assert "local folder" in capsys.readouterr().err


def test_rows_without_a_position_get_a_null_geometry_and_are_counted(emb, tmp_path):
    emb = without_positions(emb, slice(0, 25))  # the whole first shard, and 5 rows of the second
    report = export_store(emb, tmp_path / "out", max_file_bytes=20 * (DIM * 4 + 256), row_group_size=8)
    assert report.rows == 40 and report.without_position == 25
    assert "25 without a position" in report.summary()
    frame = gpd.read_parquet(tmp_path / "out" / "parquet")
    assert len(frame) == 40 and frame["id"].tolist() == list(emb.imagette.values)
    unknown = frame["footprint"] == "unknown"
    assert unknown.tolist() == [True] * 25 + [False] * 15
    assert frame.geometry[unknown].isna().all() and frame.geometry[~unknown].notna().all()
    table = pq.read_table(tmp_path / "out" / "parquet" / "part-00000.parquet")
    assert table.column("geometry").null_count == 20 and table.column("bbox").null_count == 20
    assert "bbox" not in json.loads(pq.read_schema(tmp_path / "out" / "parquet" / "part-00000.parquet")
                                    .metadata[b"geo"])["columns"]["geometry"]
    inside = gpd.read_parquet(tmp_path / "out" / "parquet", bbox=(-180, -90, 180, 90))  # null boxes fall outside
    assert set(inside["id"]) == set(emb.imagette.values[25:])
    collection = pystac.Collection.from_file(str(tmp_path / "out" / "collection.json"))
    items = {i.id: i for i in collection.get_items(recursive=True)}
    assert items["part-00000"].geometry is None and items["part-00000"].bbox is None
    assert items["part-00000"].properties["xwvnet:without_position"] == 20
    assert items["part-00001"].geometry is not None
    back = read_geoparquet(tmp_path / "out")
    assert np.isnan(back.latitude.values[:25]).all()
    np.testing.assert_array_equal(back.embedding.values, emb.embedding.values)


def test_a_failed_export_leaves_no_folder_and_the_previous_export_whole(emb, tmp_path, monkeypatch):
    from xwvnet.export import shards as shards_module

    def broken(*args, **kwargs):
        raise OSError("disk full")

    out = tmp_path / "new" / "deeper" / "out"
    monkeypatch.setattr("xwvnet.export.stac.stac_collection", broken)
    with pytest.raises(OSError, match="disk full"):
        shards_module.export_store(emb, out)
    assert not (tmp_path / "new").exists()  # no empty parquet/ folder, nor the folders made for it
    monkeypatch.undo()
    export_store(emb, tmp_path / "out", dtype="int8")
    before = {p: p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()}
    monkeypatch.setattr("xwvnet.export.geoparquet._table", broken)
    with pytest.raises(OSError, match="disk full"):
        export_store(emb, tmp_path / "out", overwrite=True)
    monkeypatch.undo()
    assert {p: p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # nothing staged beside it is left
    export_store(emb, tmp_path / "out", overwrite=True)  # a whole new export replaces the previous one
    assert pq.read_schema(tmp_path / "out" / "parquet" / "part-00000.parquet").field("embedding").type == \
        pa.list_(pa.float32(), DIM)
    (tmp_path / "out" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not an xwvnet export"):
        export_store(emb, tmp_path / "out", overwrite=True)
    assert (tmp_path / "out" / "notes.txt").read_text() == "mine"


def test_zero_rows_is_a_valid_empty_export(emb, tmp_path):
    empty = emb.isel({S.IMAGETTE: slice(0, 0)})
    report = export_store(empty, tmp_path / "out")
    assert report.rows == 0 and report.without_position == 0 and len(report.shards) == 1
    assert pq.read_table(report.shards[0]).num_rows == 0
    assert len(gpd.read_parquet(report.shards[0])) == 0
    back = read_geoparquet(tmp_path / "out")
    assert back.embedding.shape == (0, DIM) and back.embedding.dtype == np.float32
    collection = pystac.Collection.from_file(str(tmp_path / "out" / "collection.json"))
    assert list(collection.get_items(recursive=True)) == []
    assert collection.extra_fields["emb:dimensions"] == DIM and model_item(collection).properties["mlm:name"]
    assert read_geoparquet(to_geoparquet(empty, tmp_path / "e.parquet")).sizes[S.IMAGETTE] == 0


def test_export_of_the_published_quicklooks_embedded(quicklook_embeddings, tmp_path, capsys):
    from xwvnet.cli import main

    emb = xwvnet.open_store(quicklook_embeddings)
    assert np.isnan(emb.latitude.values).all() and np.isnan(emb.longitude.values).all()
    out = tmp_path / "export"
    assert main(["export", str(quicklook_embeddings), "--format", "geoparquet", "--out", str(out)]) == 0, \
        capsys.readouterr().err
    frame = gpd.read_parquet(out / "parquet")
    assert len(frame) == 15 and sorted(frame["id"]) == sorted(emb.imagette.values)
    assert frame.geometry.isna().all() and (frame["footprint"] == "unknown").all()
    assert frame.crs.to_epsg() == 4326
    back = read_geoparquet(out)
    np.testing.assert_allclose(back.embedding.values, emb.embedding.values)
    check_geoemb(back.attrs, emb.sizes[S.FEATURE], "float32")
    check_stac(out, emb.sizes[S.FEATURE], "float32")
    collection = pystac.Collection.from_file(str(out / "collection.json"))
    (item,) = collection.get_items(recursive=True)
    assert item.geometry is None and item.properties["xwvnet:without_position"] == 15
    sources = [link.href for link in collection.links if link.rel == "emb:source-data"]
    assert sources == [(quicklook_embeddings.parent / "imagettes.zarr").resolve().as_uri()]
    try:
        import duckdb
    except ImportError:
        return  # DuckDB is not a dependency of xwvnet: checked where it is installed
    con = duckdb.connect()
    rows = con.execute(f"SELECT count(*), count(geometry), count(embedding) FROM '{out}/parquet/*.parquet'").fetchone()
    assert rows == (15, 0, 15)


def test_a_float16_embedding_store_exports_and_says_how_it_is_stored(tmp_path):
    """``embed --dtype float16`` stores: geoemb: names the storage type; GeoParquet gets the float32 values back."""
    pytest.importorskip("torch")
    from tests._factories import save_random_resnet18

    xwvnet.to_store(make_imagettes(6, seed=4), tmp_path / "in.zarr")
    weights = save_random_resnet18(tmp_path / "r18.pt", seed=1)
    xwvnet.embed_store(tmp_path / "in.zarr", tmp_path / "f16.zarr", weights, dtype="float16", progress=False)
    stored = xwvnet.open_store(tmp_path / "f16.zarr")
    check_geoemb(stored.attrs, 512, "float16")
    assert stored.attrs["geoemb:quantization"] == {"method": "float16_cast", "original_dtype": "float32",
                                                   "quantized_dtype": "float16"}
    report = export_store(str(tmp_path / "f16.zarr"), tmp_path / "out")
    assert report.rows == 6 and report.without_position == 0
    back = read_geoparquet(tmp_path / "out")
    np.testing.assert_array_equal(back.embedding.values, stored.embedding.values.astype(np.float32))
    check_geoemb(back.attrs, 512, "float32")
    assert "geoemb:quantization" not in back.attrs


def test_what_a_killed_export_left_is_tidied_by_the_next(emb, tmp_path):
    """A SIGKILLed export leaves hidden folders beside ``out``; the next export removes them, and where the kill came
    between the two renames (``out`` moved aside), puts the previous export back first."""
    import os
    import socket
    import subprocess
    import sys

    export_store(emb, tmp_path / "out", dtype="int8")
    before = {p.relative_to(tmp_path / "out"): p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()}
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = socket.gethostname().replace("-", "_")
    (tmp_path / f".out.xwvnet-new-{host}-{dead.pid}-0000").mkdir()  # a half-written export
    os.replace(tmp_path / "out", tmp_path / f".out.xwvnet-old-{host}-{dead.pid}-0000")  # killed between renames
    alive = tmp_path / f".out.xwvnet-new-{host}-{os.getpid()}-1111"  # a running export's stage is left alone
    alive.mkdir()
    with pytest.raises(ValueError, match="is not empty"):  # the previous export is back, so overwrite is needed
        export_store(emb, tmp_path / "out", dtype="int8")
    after = {p.relative_to(tmp_path / "out"): p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()}
    assert after == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["out", alive.name])
