"""GeoParquet, STAC and plain Zarr exports, read back with what users run (pyarrow, geopandas, pystac, xarray)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from xwvnet import schema as S

from .conftest import make_imagettes

pa = pytest.importorskip("pyarrow", reason="the export extra (pip install xwvnet[export])")
pq = pytest.importorskip("pyarrow.parquet")
gpd = pytest.importorskip("geopandas")
shapely = pytest.importorskip("shapely")
pystac = pytest.importorskip("pystac")

import xwvnet  # noqa: E402
from xwvnet.export import export_store, read_geoparquet, stac_collection, to_geoparquet, to_plain_zarr  # noqa: E402

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


@pytest.fixture
def emb() -> xr.Dataset:
    return embeddings()


def test_geoparquet_is_read_as_written_by_pyarrow_and_geopandas(emb, tmp_path):
    path = to_geoparquet(emb, tmp_path / "e.parquet", row_group_size=16)
    meta = pq.read_schema(path).metadata
    geo = json.loads(meta[b"geo"])
    assert geo["version"].startswith("1.") and geo["primary_column"] == "geometry"
    assert geo["columns"]["geometry"]["encoding"] == "WKB"
    assert geo["columns"]["geometry"]["crs"]["id"] == {"authority": "EPSG", "code": 4326}
    info = json.loads(meta[b"xwvnet"])
    assert info["provenance"]["encoder_weights_hash"] == "sha256:abc123"
    assert info["provenance"]["encoder_transform"] == "wvnet-quicklook-v1"
    assert pq.ParquetFile(path).metadata.num_row_groups == 3  # 40 rows in groups of 16

    table = pq.read_table(path)
    assert table.num_rows == 40
    assert table.schema.field("embedding").type == pa.list_(pa.float32(), DIM)
    np.testing.assert_array_equal(np.stack(table.column("embedding").to_pylist()), emb.embedding.values)
    assert table.column("id").to_pylist() == list(emb.imagette.values)
    assert str(table.schema.field("time").type) == "timestamp[ns, tz=UTC]"
    for name in ("swath", "polarization", "mission", "orbit", "incidence_angle", "heading", "hs_predicted",
                 "footprint", "product", "tags"):
        assert name in table.column_names, name

    frame = gpd.read_parquet(path)
    assert len(frame) == 40 and frame.crs.to_epsg() == 4326
    centres = gpd.points_from_xy(emb.longitude.values, emb.latitude.values, crs=4326)
    assert frame.geometry.contains(gpd.GeoSeries(centres, index=frame.index)).all()
    kinds = frame["footprint"].to_numpy()
    assert set(kinds[::2]) == {"square_20km_heading"} and set(kinds[1::2]) == {"square_20km_north"}
    # a 20 km square is about 0.18 degrees of latitude across
    lat_extent = frame.geometry.bounds.maxy - frame.geometry.bounds.miny
    assert ((lat_extent > 0.17) & (lat_extent < 0.26)).all()
    np.testing.assert_allclose(frame["hs_predicted"].to_numpy(), emb.hs_predicted.values)
    inside = gpd.read_parquet(path, bbox=(-90, -30, 90, 30))  # through the bbox covering column
    lat, lon = emb.latitude.values, emb.longitude.values
    assert set(inside["id"]) >= set(emb.imagette.values[(abs(lat) < 29) & (abs(lon) < 89)])
    assert set(inside["id"]) <= set(emb.imagette.values[(abs(lat) < 31) & (abs(lon) < 91)])


def test_read_geoparquet_gives_the_dataset_back(emb, tmp_path):
    back = read_geoparquet(to_geoparquet(emb, tmp_path / "e.parquet", row_group_size=7))
    xr.testing.assert_identical(back[S.EMBEDDING], emb[S.EMBEDDING])
    assert back[S.EMBEDDING].attrs == PROVENANCE and back.attrs == emb.attrs
    for name in (S.TIME, S.LATITUDE, S.LONGITUDE, S.SWATH, S.ORBIT, S.HEADING, S.LABEL):
        xr.testing.assert_identical(back[name], emb[name])
    xr.testing.assert_identical(back["hs_predicted"], emb["hs_predicted"])
    xr.testing.assert_identical(back[S.LABELS], emb[S.LABELS])
    assert back.wvnet.neighbors(k=3).neighbor.values.tolist() == emb.wvnet.neighbors(k=3).neighbor.values.tolist()
    probe = back.wvnet.fit_probe("hs_predicted")
    assert np.isfinite(back.wvnet.predict(probe)["hs_predicted_predicted"].values).all()


def test_the_accessor_and_the_package_name_the_same_function(emb, tmp_path):
    path = emb.wvnet.to_geoparquet(tmp_path / "a.parquet", dtype="float16")
    assert xwvnet.read_geoparquet is read_geoparquet and xwvnet.to_geoparquet is to_geoparquet
    back = xwvnet.read_geoparquet(path)
    np.testing.assert_allclose(back.embedding.values, emb.embedding.values, rtol=1e-3, atol=1e-3)


def test_int8_decodes_within_one_percent_and_keeps_top1_neighbours(tmp_path):
    emb = embeddings(400, seed=3, clusters=20)
    path = to_geoparquet(emb, tmp_path / "q.parquet", dtype="int8")
    table = pq.read_table(path)
    assert table.schema.field("embedding").type == pa.list_(pa.int8(), DIM)
    assert table.schema.field("embedding_scale").type == pa.float32()
    back = read_geoparquet(path)
    x, y = emb.embedding.values, back.embedding.values
    err = np.abs(x - y).max(axis=1) / np.abs(x).max(axis=1)
    assert err.max() <= 0.01
    top1 = emb.wvnet.neighbors(k=1).neighbor.values[:, 0]
    kept = np.mean(back.wvnet.neighbors(k=1).neighbor.values[:, 0] == top1)
    assert kept >= 0.95


def test_a_failed_write_leaves_the_previous_file_and_no_temporary(emb, tmp_path, monkeypatch):
    """The file is written beside its name and renamed when whole (xwvnet._files.replacing)."""
    from xwvnet.export import geoparquet

    path = to_geoparquet(emb, tmp_path / "e.parquet", row_group_size=16)
    before = path.read_bytes()
    calls = []
    table = geoparquet._table

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # the second row group: the first is already in the temporary file
            raise OSError("disk full")
        return table(*args, **kwargs)

    monkeypatch.setattr(geoparquet, "_table", failing)
    with pytest.raises(OSError, match="disk full"):
        to_geoparquet(emb.isel({S.IMAGETTE: slice(0, 30)}), path, row_group_size=16, overwrite=True)
    assert len(calls) == 2 and path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.parquet"]
    np.testing.assert_array_equal(read_geoparquet(path)[S.EMBEDDING].values, emb[S.EMBEDDING].values)


def test_non_finite_rows_are_null_and_read_back_as_nan(emb, tmp_path):
    x = emb.embedding.values.copy()
    x[5, 3] = np.nan
    emb = emb.assign(embedding=(emb.embedding.dims, x, emb.embedding.attrs))
    path = to_geoparquet(emb, tmp_path / "n.parquet", dtype="int8")
    assert pq.read_table(path).column("embedding").null_count == 1
    assert pq.ParquetFile(path).metadata.row_group(0).column(
        pq.ParquetFile(path).schema_arrow.get_field_index("embedding")).statistics is not None
    back = read_geoparquet(path)
    assert np.isnan(back.embedding.values[5]).all() and np.isfinite(np.delete(back.embedding.values, 5, 0)).all()


def test_footprints_from_the_manifest_and_across_the_antimeridian(tmp_path):
    emb = embeddings(4).drop_vars(S.HEADING)
    lat, lon = np.array([10.0, -30.0, 50.0, 0.0]), np.array([179.95, -179.95, 20.0, 0.0])
    emb = emb.assign_coords(latitude=(S.IMAGETTE, lat), longitude=(S.IMAGETTE, lon))
    corners_lat = lat[:, None] + np.array([-0.1, -0.1, 0.1, 0.1])
    corners_lon = lon[:, None] + np.array([-0.1, 0.1, 0.1, -0.1])
    corners_lat[:2] = np.nan  # the manifest footprint is known for the last two only
    emb = emb.assign_coords(footprint_latitude=((S.IMAGETTE, "corner"), corners_lat),
                            footprint_longitude=((S.IMAGETTE, "corner"), corners_lon))
    frame = gpd.read_parquet(to_geoparquet(emb, tmp_path / "f.parquet"))
    assert frame["footprint"].tolist() == ["square_20km_north"] * 2 + ["manifest"] * 2
    assert frame.geometry.iloc[0].geom_type == "MultiPolygon"  # split at 180 degrees, not wrapped round the world
    assert frame.geometry.bounds.minx.min() >= -180 and frame.geometry.bounds.maxx.max() <= 180
    assert frame.geometry.iloc[0].area < 0.1
    assert frame.geometry.iloc[2].equals(shapely.box(19.9, 49.9, 20.1, 50.1).normalize()) or \
        abs(frame.geometry.iloc[2].area - 0.04) < 1e-9
    centres = gpd.GeoSeries(gpd.points_from_xy(lon, lat, crs=4326), index=frame.index)
    assert frame.geometry.contains(centres).all()


def test_bad_inputs_are_refused_clearly(emb, tmp_path):
    with pytest.raises(ValueError, match="dtype must be one of"):
        to_geoparquet(emb, tmp_path / "x.parquet", dtype="int4")
    with pytest.raises(ValueError, match="no 'embedding' variable"):
        to_geoparquet(emb.drop_vars(S.EMBEDDING), tmp_path / "x.parquet")
    with pytest.raises(ValueError, match="time and a place"):
        to_geoparquet(emb.drop_vars(S.LATITUDE), tmp_path / "x.parquet")
    with pytest.raises(ValueError, match="row_group_size"):
        to_geoparquet(emb, tmp_path / "x.parquet", row_group_size=0)
    to_geoparquet(emb, tmp_path / "x.parquet")
    with pytest.raises(ValueError, match="exists"):
        to_geoparquet(emb, tmp_path / "x.parquet")
    pq.write_table(pa.table({"a": [1]}), tmp_path / "other.parquet")
    with pytest.raises(ValueError, match="not written by xwvnet"):
        read_geoparquet(tmp_path / "other.parquet")
    with pytest.raises(FileNotFoundError):
        read_geoparquet(tmp_path / "nothing.parquet")


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


def test_stac_collection_describes_the_encoder_and_the_shards(emb, tmp_path):
    export_store(emb, tmp_path / "out", dtype="int8", max_file_bytes=25 * (DIM + 256))
    collection = pystac.Collection.from_file(str(tmp_path / "out" / "collection.json"))
    assert any("mlm" in url for url in collection.stac_extensions)
    fields = collection.extra_fields
    assert fields["mlm:name"] == "toy-resnet" and fields["mlm:architecture"] == "resnet18"
    assert fields["mlm:output"][0]["result"]["shape"] == [-1, DIM]
    assert fields["mlm:input"][0]["pre_processing_function"]["expression"] == "wvnet-quicklook-v1"
    assert fields["emb:dimensions"] == DIM and fields["emb:quantization"] == "int8" and fields["emb:type"] == "chip"
    items = list(collection.get_items(recursive=True))
    assert len(items) == 2
    times = emb.time.values
    start = min(i.common_metadata.start_datetime for i in items).replace(tzinfo=None)
    end = max(i.common_metadata.end_datetime for i in items).replace(tzinfo=None)
    assert np.datetime64(start, "ns") == times.min() and np.datetime64(end, "ns") == times.max()
    for item in items:
        href = item.assets["data"].get_absolute_href()
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


def test_the_export_command_writes_shards_stac_and_zarr(emb, tmp_path, capsys):
    from xwvnet.cli import main

    url = write_embedding_store(str(tmp_path / "embeddings.zarr"), emb)
    assert main(["export", url, "--out", str(tmp_path / "gp"), "--dtype", "int8", "--max-file-mb", "0.005"]) == 0
    assert "GeoParquet shard(s)" in capsys.readouterr().out
    shards = sorted((tmp_path / "gp" / "parquet").glob("*.parquet"))
    assert len(shards) == 3  # about 5 KiB of int8 rows per shard: 16 rows each (64 + 256 bytes a row)
    collection = pystac.Collection.from_file(str(tmp_path / "gp" / "collection.json"))
    assert collection.extra_fields["mlm:name"] == "toy-resnet"
    assert len(list(collection.get_items(recursive=True))) == len(shards)
    assert main(["export", url, "--format", "zarr", "--out", str(tmp_path / "plain.zarr")]) == 0
    assert xr.open_zarr(tmp_path / "plain.zarr").sizes[S.IMAGETTE] == 40
    assert main(["export", url, "--out", str(tmp_path / "gp")]) == 1  # not empty, and said so
    assert "not empty" in capsys.readouterr().err


def test_the_export_command_takes_storage_options_for_s3_stores(emb, tmp_path, s3_endpoint, monkeypatch, capsys):
    """Both stores on S3, reached only through --storage-option (no endpoint in the environment)."""
    from xwvnet.cli import main
    from xwvnet.io.storage import locate

    from .conftest import new_bucket

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


def test_lazy_inputs_are_written_row_group_by_row_group(tmp_path):
    """20 000 x 128 dask-backed float32 (10 MB): the writer holds one row group of 1000 (0.5 MB) at a time."""
    import tracemalloc

    import dask.array as da
    import pandas as pd

    n = 20_000
    x = da.random.default_rng(0).standard_normal((n, 128), chunks=(1000, 128)).astype(np.float32)
    ds = xr.Dataset({S.EMBEDDING: ((S.IMAGETTE, S.FEATURE), x, dict(PROVENANCE))},
                    coords={S.IMAGETTE: np.array([f"im{i:06d}" for i in range(n)], dtype=object),
                            S.TIME: (S.IMAGETTE, pd.date_range("2021-01-01", periods=n, freq="min").values),
                            S.LATITUDE: (S.IMAGETTE, np.linspace(-60, 60, n)),
                            S.LONGITUDE: (S.IMAGETTE, np.linspace(-179, 179, n))})
    to_geoparquet(ds.isel({S.IMAGETTE: slice(0, 10)}), tmp_path / "warm.parquet")  # imports are not the writer's
    tracemalloc.start()
    try:
        path = to_geoparquet(ds, tmp_path / "big.parquet", row_group_size=1000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 6e6, f"peak {peak / 1e6:.1f} MB"  # pyarrow's buffers are not traced; numpy's are
    assert pq.ParquetFile(path).metadata.num_row_groups == 20
    np.testing.assert_array_equal(read_geoparquet(path).embedding.values[-1000:], x[-1000:].compute())


def test_collocate_runs_on_what_read_geoparquet_gives(emb, tmp_path, data_dir):
    era5 = data_dir / "era5" / "era5_2t_1.nc"
    if not era5.is_file():
        pytest.skip(f"{era5} is not in the mirror")
    emb = emb.assign_coords(time=(S.IMAGETTE, np.full(emb.sizes[S.IMAGETTE], np.datetime64("2021-03-01T12", "ns"))))
    back = read_geoparquet(to_geoparquet(emb, tmp_path / "e.parquet"))
    joined = back.wvnet.collocate(str(era5), variables="t2m", time_tolerance="1h")
    expected = emb.wvnet.collocate(str(era5), variables="t2m", time_tolerance="1h")
    np.testing.assert_allclose(joined["era5_t2m"].values, expected["era5_t2m"].values)
    assert np.isfinite(joined["era5_t2m"].values).any()
