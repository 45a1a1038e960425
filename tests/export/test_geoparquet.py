"""GeoParquet (xwvnet.export.geoparquet): read back with pyarrow and geopandas as written, lazily, refusing repeats."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

pa = pytest.importorskip("pyarrow", reason="the export extra (pip install xwvnet[export])")
pq = pytest.importorskip("pyarrow.parquet")
gpd = pytest.importorskip("geopandas")
shapely = pytest.importorskip("shapely")
pytest.importorskip("pystac")

import xwvnet  # noqa: E402
from tests.export._helpers import DIM, PROVENANCE, embeddings  # noqa: E402
from xwvnet import schema as S  # noqa: E402
from xwvnet.export import DuplicateIdError, read_geoparquet, to_geoparquet  # noqa: E402


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


def test_a_url_is_refused_before_anything_is_written(emb, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="a GeoParquet file is read and written on a local file system"):
        to_geoparquet(emb, "s3://bucket/e.parquet")
    assert not any(tmp_path.iterdir())


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
