"""GeoParquet, STAC and plain Zarr exports, read back with what users run (pyarrow, geopandas, pystac, xarray)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from tests._factories import make_imagettes
from xwvnet import schema as S

pa = pytest.importorskip("pyarrow", reason="the export extra (pip install xwvnet[export])")
pq = pytest.importorskip("pyarrow.parquet")
gpd = pytest.importorskip("geopandas")
shapely = pytest.importorskip("shapely")
pystac = pytest.importorskip("pystac")

import xwvnet  # noqa: E402
from xwvnet.conventions import GEOEMB_UUID, MLM_SCHEMA  # noqa: E402
from xwvnet.export import (  # noqa: E402
    DuplicateIdError,
    export_store,
    read_geoparquet,
    stac_collection,
    to_geoparquet,
    to_plain_zarr,
)
from xwvnet.export.stac import EMB_SCHEMA  # noqa: E402

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


def _own(attrs: dict) -> dict:
    """Attributes without those of the conventions (geoemb:, mlm:, zarr_conventions) that exports add."""
    return {k: v for k, v in attrs.items() if not k.startswith(("geoemb:", "mlm:")) and k != "zarr_conventions"}


def test_read_geoparquet_gives_the_dataset_back(emb, tmp_path):
    back = read_geoparquet(to_geoparquet(emb, tmp_path / "e.parquet", row_group_size=7))
    xr.testing.assert_identical(back[S.EMBEDDING].compute(), emb[S.EMBEDDING])
    assert back[S.EMBEDDING].attrs == PROVENANCE and _own(back.attrs) == emb.attrs
    assert back.attrs["geoemb:dimensions"] == DIM and back.attrs["geoemb:data_type"] == "float32"
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


def _model(collection) -> pystac.Item:
    """The STAC MLM Item the Collection's ``emb:model`` link points at."""
    (link,) = [link for link in collection.links if link.rel == "emb:model"]
    return pystac.Item.from_file(link.get_absolute_href())


def test_stac_collection_describes_the_encoder_and_the_shards(emb, tmp_path):
    export_store(emb, tmp_path / "out", dtype="int8", max_file_bytes=25 * (DIM + 256))
    collection = pystac.Collection.from_file(str(tmp_path / "out" / "collection.json"))
    assert EMB_SCHEMA in collection.stac_extensions
    fields = collection.extra_fields
    assert fields["emb:dimensions"] == DIM and fields["emb:type"] == "chip" and fields["data_type"] == "int8"
    model = _model(collection)
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
    assert _model(collection).properties["mlm:name"] == "toy-resnet"
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


# ---- rows without a position, failures, empty exports, repeated ids, lazy reads ------------------------------------


def _without_positions(emb: xr.Dataset, rows: slice) -> xr.Dataset:
    """``emb`` with latitude and longitude NaN on ``rows`` (as quicklooks have them: the file names carry no place)."""
    lat, lon = emb.latitude.values.copy(), emb.longitude.values.copy()
    lat[rows], lon[rows] = np.nan, np.nan
    return emb.assign_coords(latitude=(S.IMAGETTE, lat, emb.latitude.attrs), longitude=(S.IMAGETTE, lon))


def test_rows_without_a_position_get_a_null_geometry_and_are_counted(emb, tmp_path):
    emb = _without_positions(emb, slice(0, 25))  # the whole first shard, and 5 rows of the second
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
    assert collection.extra_fields["emb:dimensions"] == DIM and _model(collection).properties["mlm:name"]
    assert read_geoparquet(to_geoparquet(empty, tmp_path / "e.parquet")).sizes[S.IMAGETTE] == 0


def test_repeated_ids_are_refused_in_one_line(emb, tmp_path):
    twice = xr.concat([emb.isel({S.IMAGETTE: slice(0, 5)}), emb.isel({S.IMAGETTE: slice(3, 8)})], dim=S.IMAGETTE)
    path = to_geoparquet(twice, tmp_path / "twice.parquet")
    with pytest.raises(DuplicateIdError, match=r"2 imagette id\(s\) appear more than once") as caught:
        read_geoparquet(path)
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, xwvnet.errors.XWVNetError)
    assert "\n" not in str(caught.value)
    folder = tmp_path / "shards"
    folder.mkdir()
    to_geoparquet(emb.isel({S.IMAGETTE: slice(0, 10)}), folder / "a.parquet")
    to_geoparquet(emb.isel({S.IMAGETTE: slice(9, 20)}), folder / "b.parquet")  # one id in both shards
    with pytest.raises(DuplicateIdError, match=str(emb.imagette.values[9])):
        read_geoparquet(folder)


def test_read_geoparquet_is_lazy_one_chunk_per_row_group(tmp_path):
    """A file larger than what read_geoparquet holds: the embeddings stay on disk until a chunk is computed."""
    import tracemalloc

    import dask.array as da
    import pandas as pd

    n, dim = 20_000, 128
    x = da.random.default_rng(1).standard_normal((n, dim), chunks=(1000, dim)).astype(np.float32)
    ds = xr.Dataset({S.EMBEDDING: ((S.IMAGETTE, S.FEATURE), x, dict(PROVENANCE))},
                    coords={S.IMAGETTE: np.array([f"im{i:06d}" for i in range(n)], dtype=object),
                            S.TIME: (S.IMAGETTE, pd.date_range("2021-01-01", periods=n, freq="min").values),
                            S.LATITUDE: (S.IMAGETTE, np.linspace(-60, 60, n)),
                            S.LONGITUDE: (S.IMAGETTE, np.linspace(-179, 179, n))})
    path = to_geoparquet(ds, tmp_path / "big.parquet", row_group_size=2500)
    read_geoparquet(to_geoparquet(ds.isel({S.IMAGETTE: slice(0, 10)}), tmp_path / "warm.parquet"))  # imports
    tracemalloc.start()
    try:
        back = read_geoparquet(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(back.embedding.data, da.Array)
    assert back.embedding.data.chunks[0] == (2500,) * 8
    assert peak < 0.5 * n * dim * 4, f"peak {peak / 1e6:.1f} MB"  # the embeddings (10 MB) were not read
    np.testing.assert_array_equal(back.embedding[7500:10000].values, x[7500:10000].compute())
    near = back.isel({S.IMAGETTE: slice(0, 3000)}).wvnet.neighbors(k=2)  # searched as any dask-backed Dataset
    assert near.neighbor.shape == (3000, 2)


# ---- the published conventions: STAC embeddings extension v0.0.1, STAC MLM v1.5, geo-embeddings Zarr v1 -----------

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


def _check_stac(out: Path, dim: int, data_type: str) -> tuple[dict, list[dict], dict]:
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


def _check_geoemb(attrs: dict, dim: int, data_type: str) -> None:
    for field in GEOEMB_REQUIRED:
        assert field in attrs, field
    assert any(c.get("uuid") == GEOEMB_UUID and c.get("name") == "geoemb:" for c in attrs["zarr_conventions"])
    assert attrs["geoemb:type"] == "chip" and attrs["geoemb:dimensions"] == dim
    assert attrs["geoemb:data_type"] == data_type and attrs["geoemb:source_data"]
    assert attrs["geoemb:chip_layout"]["layout_type"] in GEOEMB_CHIP_LAYOUTS  # required for chips
    assert len(attrs["geoemb:chip_layout"]["chip_size"]) == 2
    assert attrs["mlm:output"][0]["result"]["dim_order"] == ["batch", "embedding"]


def test_stac_export_has_every_field_the_specifications_require(emb, tmp_path):
    export_store(emb, tmp_path / "f32", max_file_bytes=25 * (DIM * 4 + 256))
    collection, items, model = _check_stac(tmp_path / "f32", DIM, "float32")
    assert len(items) == 2 and all("emb:quantization" not in i["properties"] for i in items)  # stored as computed
    assert model["properties"]["mlm:name"] == "toy-resnet"
    export_store(emb, tmp_path / "i8", dtype="int8")
    _, items, _ = _check_stac(tmp_path / "i8", DIM, "int8")
    assert items[0]["properties"]["emb:quantization"]["quantized_dtype"] == "int8"


def test_the_field_the_conventions_name_is_the_one_the_transforms_read():
    pytest.importorskip("torch")
    from xwvnet import conventions
    from xwvnet.models import transforms

    assert (conventions.FIELD, conventions.SIZE) == (transforms.CROP, transforms.SIZE)
    assert set(conventions._TRANSFORM_ENTRY) == set(transforms.TRANSFORMS)
    for name, entry in conventions._TRANSFORM_ENTRY.items():
        assert getattr(transforms, entry.split(":")[1]) is transforms.TRANSFORMS[name]


# ---- the 15 published quicklooks, embedded: what a new user exports first ------------------------------------------


@pytest.fixture(scope="module")
def quicklook_embeddings(tmp_path_factory, wvnet_samples) -> Path:
    """An embedding store of the 15 published WV-Net quicklooks (no positions), by a small random ResNet-18."""
    pytest.importorskip("torch")
    from tests._factories import save_random_resnet18

    folder = tmp_path_factory.mktemp("quicklooks")
    files = sorted(wvnet_samples.glob("*.png"))
    assert len(files) == 15
    xwvnet.ingest([str(f) for f in files], out=folder / "imagettes.zarr")
    weights = save_random_resnet18(folder / "resnet18.pt", seed=0)
    report = xwvnet.embed_store(folder / "imagettes.zarr", folder / "embeddings.zarr", weights, progress=False)
    assert report.complete
    return folder / "embeddings.zarr"


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
    _check_geoemb(back.attrs, emb.sizes[S.FEATURE], "float32")
    _check_stac(out, emb.sizes[S.FEATURE], "float32")
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


def test_geoemb_attributes_on_an_embedding_store_and_a_plain_zarr_copy(quicklook_embeddings, tmp_path):
    from xwvnet.io.store import root_attrs

    dim = xwvnet.open_store(quicklook_embeddings).sizes[S.FEATURE]
    stored = root_attrs(str(quicklook_embeddings))
    _check_geoemb(stored, dim, "float32")
    assert stored["geoemb:source_data"] == [(quicklook_embeddings.parent / "imagettes.zarr").resolve().as_uri()]
    assert stored["mlm:architecture"] == "resnet18" and stored["mlm:input"][0]["input"]["shape"] == [-1, 3, 224, 224]
    opened = xwvnet.open_store(quicklook_embeddings)
    _check_geoemb(opened.attrs, dim, "float32")  # open_store gives them back
    plain = tmp_path / "plain.zarr"
    export_store(str(quicklook_embeddings), plain, format="zarr")
    group = json.loads((plain / "zarr.json").read_text())
    _check_geoemb(group["attributes"], dim, "float32")
    _check_geoemb(xr.open_zarr(plain).attrs, dim, "float32")
    assert group["attributes"]["geoemb:model"] == stored["geoemb:model"]


def test_a_plain_zarr_copy_of_older_embeddings_gets_the_convention(where, emb, tmp_path):
    """Stores embedded before the convention: the copy describes them from the embedding's provenance."""
    url = write_embedding_store(where("old.zarr"), emb)
    assert "geoemb:type" not in xwvnet.open_store(url).attrs
    to_plain_zarr(url, tmp_path / "plain.zarr")
    attrs = json.loads((tmp_path / "plain.zarr" / "zarr.json").read_text())["attributes"]
    _check_geoemb(attrs, DIM, "float32")
    assert attrs["geoemb:model"] == "urn:xwvnet:encoder:toy-resnet:sha256:abc123"


# ---- the JSON schemas, where they can be had offline -----------------------------------------------------------------


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

    export_store(_without_positions(emb, slice(0, 5)), tmp_path / "out", dtype="int8",
                 max_file_bytes=25 * (DIM + 256))
    collection, items, model = _check_stac(tmp_path / "out", DIM, "int8")
    _validate(collection, EMB_SCHEMA)
    for item in items:
        _validate(item, EMB_SCHEMA)
    _validate(model, MLM_SCHEMA)
    to_plain_zarr(emb, tmp_path / "plain.zarr")
    _validate(json.loads((tmp_path / "plain.zarr" / "zarr.json").read_text()), GEOEMB_SCHEMA)
    bad = dict(collection, links=[link for link in collection["links"] if link["rel"] != "emb:model"])
    with pytest.raises(AssertionError):  # the schema does see a missing required link
        _validate(bad, EMB_SCHEMA)


def test_a_float16_embedding_store_exports_and_says_how_it_is_stored(tmp_path):
    """``embed --dtype float16`` stores: geoemb: names the storage type; GeoParquet gets the float32 values back."""
    pytest.importorskip("torch")
    from tests._factories import save_random_resnet18

    xwvnet.to_store(make_imagettes(6, seed=4), tmp_path / "in.zarr")
    weights = save_random_resnet18(tmp_path / "r18.pt", seed=1)
    xwvnet.embed_store(tmp_path / "in.zarr", tmp_path / "f16.zarr", weights, dtype="float16", progress=False)
    stored = xwvnet.open_store(tmp_path / "f16.zarr")
    _check_geoemb(stored.attrs, 512, "float16")
    assert stored.attrs["geoemb:quantization"] == {"method": "float16_cast", "original_dtype": "float32",
                                                   "quantized_dtype": "float16"}
    report = export_store(str(tmp_path / "f16.zarr"), tmp_path / "out")
    assert report.rows == 6 and report.without_position == 0
    back = read_geoparquet(tmp_path / "out")
    np.testing.assert_array_equal(back.embedding.values, stored.embedding.values.astype(np.float32))
    _check_geoemb(back.attrs, 512, "float32")
    assert "geoemb:quantization" not in back.attrs
