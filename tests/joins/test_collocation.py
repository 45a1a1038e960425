"""collocate (xwvnet.joins.collocation) against independent computations: grids, points, files of every family."""

from __future__ import annotations

import doctest
import importlib
import warnings
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pytest
import xarray as xr
from scipy.interpolate import RegularGridInterpolator
from xarray.backends import netCDF4_

import xwvnet  # noqa: F401  (registers ds.wvnet)
from tests import _source_files as F
from tests._factories import make_imagettes
from tests._numpydoc import check_numpydoc
from xwvnet import schema as S
from xwvnet.datasets import fetch
from xwvnet.io.ocn import open_ocn
from xwvnet.io.sources import normalise_source
from xwvnet.joins.collocation import SPACE_ONLY, CollocationWarning, collocate, collocate_to_file, count_missing
from xwvnet.joins.points import haversine_km

ERA5_TIME = np.datetime64("2021-03-01T12:00", "ns")


def at(ds: xr.Dataset, lat, lon, time) -> xr.Dataset:
    n = ds.sizes[S.IMAGETTE]
    time = np.broadcast_to(np.asarray(time, dtype="datetime64[ns]"), (n,))
    return ds.assign_coords({S.LATITUDE: (S.IMAGETTE, np.asarray(lat, float)),
                             S.LONGITUDE: (S.IMAGETTE, np.asarray(lon, float)), S.TIME: (S.IMAGETTE, time)})


@pytest.fixture(scope="module")
def era5_small(data_dir):
    path = data_dir / "era5" / "era5_2t_1.nc"
    if not path.is_file():
        pytest.skip(f"{path} not in the data mirror")
    with xr.open_dataset(path) as src:
        return src.load()


def rgi_global(src: xr.DataArray, lat, lon, method):
    """scipy on the grid made ascending in latitude and closed at 360 degrees east: an independent reference."""
    grid = src.isel(time=0).sortby("latitude")
    values = np.concatenate([grid.values, grid.values[:, :1]], axis=1)
    lons = np.r_[grid.longitude.values.astype(float), 360.0]
    f = RegularGridInterpolator((grid.latitude.values.astype(float), lons), values, method=method)
    return f(np.c_[lat, np.mod(lon, 360.0)])


@pytest.mark.parametrize("method", ["linear", "nearest"])
def test_era5_netcdf_matches_scipy(era5_small, method):
    rng = np.random.default_rng(1)
    n = 64
    lat, lon = rng.uniform(-79.9, 79.9, n), rng.uniform(-180, 180, n)
    ds = at(make_imagettes(n, 4, 4), lat, lon, ERA5_TIME)
    out = collocate(ds, era5_small, method=method)
    expected = rgi_global(era5_small.t2m, lat, lon, method)
    np.testing.assert_allclose(out.era5_t2m.values, expected, rtol=1e-12)
    assert out.era5_t2m.attrs["units"] == "K"
    assert "era5_t2m" not in ds  # input untouched


def test_conventions_give_the_same_answer(era5_small):
    rng = np.random.default_rng(2)
    lat, lon = rng.uniform(-79, 79, 32), rng.uniform(-180, 180, 32)
    ds = at(make_imagettes(32, 4, 4), lat, lon, ERA5_TIME)
    ref = collocate(ds, era5_small).era5_t2m.values
    flipped = era5_small.assign_coords(longitude=(era5_small.longitude + 180) % 360 - 180).sortby("longitude")
    flipped = flipped.sortby("latitude")  # [-180, 180) and ascending latitudes
    np.testing.assert_allclose(collocate(ds, flipped).era5_t2m.values, ref, rtol=1e-12)
    east = at(ds, lat, np.mod(lon, 360), ERA5_TIME)  # imagette longitudes in [0, 360)
    np.testing.assert_allclose(collocate(east, era5_small).era5_t2m.values, ref, rtol=1e-12)
    renamed = era5_small.rename(latitude="lat", longitude="lon", time="valid_time")
    np.testing.assert_allclose(collocate(ds, renamed, prefix="era5").era5_t2m.values, ref, rtol=1e-12)


def test_antimeridian_wraps_between_340_and_360(era5_small):
    ds = at(make_imagettes(3, 4, 4), [0.0, 0.0, 0.0], [179.9 - 360 + 170, -10.0, 350.0], ERA5_TIME)
    out = collocate(ds, era5_small).era5_t2m.values
    row = era5_small.t2m.sel(latitude=0.0).isel(time=0)
    west, east = float(row.sel(longitude=340.0)), float(row.sel(longitude=0.0))
    np.testing.assert_allclose(out[1:], [west + 0.5 * (east - west)] * 2, rtol=1e-12)
    assert np.isfinite(out[0])


def test_out_of_coverage_gets_nan_and_a_count(era5_small):
    regional = era5_small.sel(longitude=slice(0, 100))
    ds = at(make_imagettes(5, 4, 4), [0, 10, 85, 0, np.nan], [50, 150, 50, 50, 50], ERA5_TIME)
    ds = ds.assign_coords({S.TIME: (S.IMAGETTE, np.array([ERA5_TIME] * 3 + [ERA5_TIME + np.timedelta64(1, "D"),
                                                                            ERA5_TIME]))})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = collocate(ds, regional)
    messages = " | ".join(str(w.message) for w in caught if issubclass(w.category, CollocationWarning))
    assert "2 of 5 imagettes are outside the latitude/longitude coverage" in messages
    assert "1 of 5 imagettes are outside the time range" in messages
    assert "1 of 5 imagettes have no position" in messages
    values = out.era5_t2m.values
    assert np.isfinite(values[0]) and np.isnan(values[1:]).all()
    # a tolerance admits the imagette one day after the only step
    with pytest.warns(CollocationWarning):
        tolerant = collocate(ds, regional, time_tolerance="2D").era5_t2m.values
    assert tolerant[3] == pytest.approx(values[0])


def analytic_grid(descending: bool = False) -> xr.Dataset:
    """A field linear in time, latitude and longitude, so that linear interpolation is exact."""
    time = np.datetime64("2020-01-01", "ns") + np.arange(4) * np.timedelta64(6, "h")
    lat, lon = np.arange(-10.0, 10.1, 2.5), np.arange(0.0, 20.1, 5.0)
    hours = (time - time[0]) / np.timedelta64(1, "h")
    field = 280 + 0.5 * hours[:, None, None] + 0.1 * lat[None, :, None] - 0.2 * lon[None, None, :]
    ds = xr.Dataset({"t2m": (("time", "latitude", "longitude"), field, {"units": "K"})},
                    coords={"time": time, "latitude": lat, "longitude": lon})
    return ds.isel(latitude=slice(None, None, -1)) if descending else ds


def test_linear_in_time_and_space_is_exact_on_a_linear_field():
    rng = np.random.default_rng(3)
    n = 20
    lat, lon = rng.uniform(-10, 10, n), rng.uniform(0, 20, n)
    hours = rng.uniform(0, 18, n)
    time = np.datetime64("2020-01-01", "ns") + (hours * 3.6e12).astype("timedelta64[ns]")
    ds = at(make_imagettes(n, 4, 4), lat, lon, time)
    expected = 280 + 0.5 * hours + 0.1 * lat - 0.2 * lon
    for descending in (False, True):
        out = collocate(ds, analytic_grid(descending), prefix="era5")
        np.testing.assert_allclose(out.era5_t2m.values, expected, rtol=1e-12)
    nearest = collocate(ds, analytic_grid(), method="nearest", prefix="era5").era5_t2m.values
    near_h = np.round(hours / 6) * 6
    expected_nearest = 280 + 0.5 * near_h + 0.1 * (np.round(lat / 2.5) * 2.5) - 0.2 * (np.round(lon / 5) * 5)
    np.testing.assert_allclose(nearest, expected_nearest, rtol=1e-12)


def test_real_grib_matches_scipy_in_time_and_space(data_dir):
    pytest.importorskip("cfgrib", reason="reading GRIB needs cfgrib + eccodes")
    path = data_dir / "era5" / "era5-2mt-2019-03-uk.grib"
    if not path.is_file():
        pytest.skip(f"{path} not in the data mirror")
    rng = np.random.default_rng(4)
    n = 40
    lat, lon = rng.uniform(50.0, 58.0, n), rng.uniform(-10.0, 2.0, n)
    time = np.datetime64("2019-03-02", "ns") + rng.integers(0, 28 * 86400, n).astype("timedelta64[s]")
    ds = at(make_imagettes(n, 4, 4), lat, lon, time)
    out = collocate(ds, path)  # a path: opened with cfgrib
    src = normalise_source(xr.open_dataset(path, engine="cfgrib", backend_kwargs={"indexpath": ""}))
    window = src.t2m.sel(time=slice(time.min() - np.timedelta64(1, "h"), time.max() + np.timedelta64(1, "h")))
    grid = window.sortby("latitude").astype(float)
    t = grid.time.values.astype("int64").astype(float)
    f = RegularGridInterpolator((t, grid.latitude.values, grid.longitude.values), grid.values)
    expected = f(np.c_[time.astype("datetime64[ns]").astype("int64").astype(float), lat, lon])
    np.testing.assert_allclose(out.era5_t2m.values, expected, rtol=1e-6)  # float32 source
    assert np.nanmin(out.era5_t2m.values) > 250 and np.nanmax(out.era5_t2m.values) < 300


def test_lazy_source_reads_only_the_chunks_it_needs():
    src = analytic_grid()
    touched: list[int] = []

    def block(i: int) -> np.ndarray:
        touched.append(i)
        return src.t2m.values[i : i + 1]

    blocks = [da.from_delayed(dask.delayed(block)(i), shape=(1, 9, 5), dtype=float) for i in range(4)]
    lazy = src.assign(t2m=(src.t2m.dims, da.concatenate(blocks), src.t2m.attrs))
    time = np.datetime64("2020-01-01T01:00", "ns")  # between steps 0 and 1
    ds = at(make_imagettes(3, 4, 4), [0, 1, 2], [5, 6, 7], time)
    out = collocate(ds, lazy, prefix="era5")
    assert out.era5_t2m.chunks is not None and touched == []
    values = out.era5_t2m.values
    assert sorted(set(touched)) == [0, 1]
    np.testing.assert_allclose(values, collocate(ds, src, prefix="era5").era5_t2m.values, rtol=1e-12)


def test_lazy_imagettes_give_a_lazy_result():
    ds = at(make_imagettes(6, 4, 4), np.zeros(6), np.arange(6.0), np.datetime64("2020-01-01T03:00", "ns"))
    lazy = ds.chunk({S.IMAGETTE: 2})
    out = collocate(lazy, analytic_grid(), prefix="era5")
    assert out.era5_t2m.chunks == ((2, 2, 2),)
    np.testing.assert_allclose(out.era5_t2m.values, collocate(ds, analytic_grid(), prefix="era5").era5_t2m.values)


@pytest.fixture(scope="module")
def ww3(data_dir):
    path = data_dir / "ww3" / "LOPS_WW3-GLOB-30M_202302_trck.nc"
    if not path.is_file():
        pytest.skip(f"{path} not in the data mirror")
    return path


def test_ww3_track_nearest_point_with_distance_and_offset(ww3):
    from xwvnet.joins.waves import add_wave_parameters

    rng = np.random.default_rng(5)
    n = 12
    lat, lon = rng.uniform(-40.5, -33.5, n), rng.uniform(173, 179, n)
    time = np.datetime64("2023-02-13T17:00", "ns")
    ds = at(make_imagettes(n, 4, 4), lat, lon, time)
    with pytest.warns(CollocationWarning, match="no max_distance_km given .* farthest match is .* km away"):
        out = collocate(ds, ww3, time_tolerance="1h")
    with xr.open_dataset(ww3) as raw:
        ref = add_wave_parameters(raw).load()
    p_lat, p_lon = ref.latitude.values.astype(float), ref.longitude.values.astype(float)
    for i in range(n):  # brute force, one imagette at a time
        d = [haversine_km(lat[i], lon[i], a, b) for a, b in zip(p_lat, p_lon)]
        j = int(np.argmin(d))
        assert out.ww3_hs.values[i] == pytest.approx(float(ref.hs[j]), rel=1e-12)
        assert out.ww3_wnd.values[i] == pytest.approx(float(ref.wnd[j]))
        assert out.ww3_distance_km.values[i] == pytest.approx(d[j], rel=1e-9)
    assert (out.ww3_time_offset.values == np.timedelta64(30, "m")).all()
    assert out.ww3_hs.attrs["units"] == "m"


def test_point_tolerances_give_nan_and_counts(ww3):
    ds = at(make_imagettes(3, 4, 4), [-34.0, -34.0, -20.0], [177.5, 177.5, 177.5],
            np.datetime64("2023-02-13T17:30", "ns"))
    ds = ds.assign_coords({S.TIME: (S.IMAGETTE, ds[S.TIME].values + np.array([0, 3, 0]) * np.timedelta64(1, "h"))})
    with pytest.warns(CollocationWarning) as caught:
        out = collocate(ds, ww3, time_tolerance="1h", max_distance_km=100)
    text = " | ".join(str(w.message) for w in caught)
    assert "1 of 3 imagettes have no point within time_tolerance" in text
    assert "1 of 3 imagettes are farther than 100 km" in text
    assert np.isfinite(out.ww3_hs.values[0]) and np.isnan(out.ww3_hs.values[1:]).all()
    assert out.ww3_distance_km.values[0] == pytest.approx(0.0, abs=1e-6)
    assert np.isnat(out.ww3_time_offset.values[1:]).all()


def test_ocn_joins_on_imagette_key_or_position(data_dir):

    path = next((data_dir / "s1_wv").glob("s1a-wv2-ocn-*.nc"), None)
    if path is None:
        pytest.skip("no OCN product in the data mirror")
    ocn = open_ocn(path)
    ds = make_imagettes(2, 4, 4).assign_coords(imagette_key=(S.IMAGETTE, [str(ocn.imagette_key.values[0]), "none"]))
    with pytest.warns(CollocationWarning, match="1 of 2 imagettes have no imagette_key match"):
        out = collocate(ds, ocn)
    assert out.ocn_hs.values[0] == pytest.approx(2.01, abs=1e-3) and np.isnan(out.ocn_hs.values[1])
    assert out.ocn_partition_hs.dims == (S.IMAGETTE, "partition")
    near = at(make_imagettes(1, 4, 4), [-56.0], [-4.2], np.datetime64("2026-01-12T05:00", "ns"))
    by_position = collocate(near, ocn, time_tolerance="10min", max_distance_km=10, variables=["hs", "wind_speed"])
    assert by_position.ocn_wind_speed.values[0] == pytest.approx(6.73, abs=0.01)
    assert by_position.ocn_distance_km.values[0] < 10


def test_manifest_imagettes_with_era5_and_the_accessor(data_dir, era5_small):
    from xwvnet.io.safe import imagettes_from_manifest

    safe = next((data_dir / "s1_wv").glob("*.SAFE"), None)
    if safe is None:
        pytest.skip("no WV SAFE manifest in the data mirror")
    imagettes = imagettes_from_manifest(safe)
    with pytest.warns(CollocationWarning, match="60 of 60 imagettes are outside the time range"):
        strict = imagettes.wvnet.collocate(era5_small)
    assert np.isnan(strict.era5_t2m.values).all()
    out = imagettes.wvnet.collocate(era5_small, time_tolerance="40D", method="nearest", prefix="")
    assert "t2m" in out and np.isfinite(out.t2m.values).all()


def test_bad_arguments_are_explained(era5_small):
    ds = at(make_imagettes(2, 4, 4), [0, 0], [0, 0], ERA5_TIME)
    with pytest.raises(ValueError, match="method must be"):
        collocate(ds, era5_small, method="cubic")
    with pytest.raises(ValueError, match="not in the source"):
        collocate(ds, era5_small, variables=["sst"])
    with pytest.raises(ValueError, match="time_tolerance"):
        collocate(ds, era5_small, time_tolerance="soon")
    with pytest.raises(FileNotFoundError):
        collocate(ds, "/nonexistent/era5.nc")
    with pytest.raises(ValueError, match="already exist"):
        collocate(collocate(ds, era5_small), era5_small)
    with pytest.raises(ValueError, match="s3://bucket/era5.nc: netCDF files .* are read from a local disk"):
        collocate(ds, "s3://bucket/era5.nc")  # a URL is never opened as a local path


def test_open_imagettes_reads_a_folder_of_safe_products_through_the_door(tmp_path):
    from tests._safe_factory import NAME, make_wv_safe
    from xwvnet.io.safe import imagettes_from_manifest
    from xwvnet.joins.collocation import open_imagettes

    first, _ = make_wv_safe(tmp_path / "wv", sizes=[(40, 30), (36, 30)], seed=1)
    other = NAME.replace("ABCD", "EF01").replace("T130655", "T140655")
    zipped, _ = make_wv_safe(tmp_path / "wv", name=other, sizes=[(40, 30)], seed=2, as_zip=True)
    ds = open_imagettes(tmp_path / "wv")
    assert ds.sizes[S.IMAGETTE] == 3 and np.isfinite(ds[S.LATITUDE].values).all()
    assert ds.identical(open_imagettes(str(tmp_path / "wv" / "*")))
    assert imagettes_from_manifest(first / "manifest.safe").identical(open_imagettes(first))
    with pytest.raises(ValueError, match="names 2 SAFE products; imagettes_from_manifest reads one"):
        imagettes_from_manifest(tmp_path / "wv")
    assert zipped.parent == tmp_path / "wv"


def test_cli_writes_a_table(data_dir, tmp_path):
    from xwvnet.cli import main

    safe = next((data_dir / "s1_wv").glob("*.SAFE"), None)
    nc = data_dir / "era5" / "era5_2t_1.nc"
    if safe is None or not nc.is_file():
        pytest.skip("manifest or ERA5 netCDF not in the data mirror")
    out = tmp_path / "wv.nc"
    assert main(["collocate", str(safe), str(nc), "--out", str(out), "--time-tolerance", "40D"]) == 0
    with xr.open_dataset(out) as table:
        assert table.sizes[S.IMAGETTE] == 60 and np.isfinite(table.era5_t2m.values).all()
        assert S.LATITUDE in table and "quicklook" not in table


def test_collocate_command_reads_imagettes_from_a_bucket(s3_endpoint, tmp_path, capsys):
    from tests._factories import new_bucket
    from xwvnet.cli import main

    url = f"s3://{new_bucket(s3_endpoint)}/im.zarr"
    ds = xwvnet.synthetic.imagettes(6, seed=0, size=(32, 32), time=("2021-03-01T11", "2021-03-01T13"))
    xwvnet.to_store(ds, url)
    era5 = xwvnet.datasets.fetch("era5/era5_2t_1.nc")
    assert main(["collocate", url, str(era5), "--out", str(tmp_path / "t.nc"), "--variables", "t2m",
                 "--time-tolerance", "1h"]) == 0
    table = xr.open_dataset(tmp_path / "t.nc")
    assert table.sizes[S.IMAGETTE] == 6 and np.isfinite(table["era5_t2m"]).all()


def test_station_output_nearest_station_then_linear_in_time():
    time = np.datetime64("2020-01-01", "ns") + np.arange(3) * np.timedelta64(1, "h")
    hs = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]])  # (time, station)
    stations = xr.Dataset(
        {"hs": (("time", "station"), hs, {"units": "m"})},
        coords={"time": time, "latitude": ("station", [0.0, 10.0]), "longitude": ("station", [0.0, 10.0])},
    )
    ds = at(make_imagettes(3, 4, 4), [1.0, 9.0, 9.0], [1.0, 9.0, 9.0],
            time[0] + np.array([30, 90, 180], dtype="timedelta64[m]"))
    with pytest.warns(CollocationWarning, match="1 of 3 imagettes are outside the time range"):
        out = collocate(ds, stations, prefix="ww3", max_distance_km=500)
    np.testing.assert_allclose(out.ww3_hs.values, [1.5, 25.0, np.nan])
    tolerant = collocate(ds, stations, prefix="ww3", time_tolerance="1h", max_distance_km=500)
    np.testing.assert_allclose(tolerant.ww3_hs.values, [1.5, 25.0, 30.0])


def global_grid(lon: np.ndarray) -> xr.Dataset:
    """A smooth global field of longitude (periodic) and latitude on the given longitudes, latitudes descending."""
    lat = np.arange(80.0, -80.1, -10.0)
    field = 280 + 10 * np.cos(np.deg2rad(lat))[:, None] + 5 * np.sin(np.deg2rad(lon))[None, :]
    return xr.Dataset({"t2m": (("latitude", "longitude"), field, {"units": "K"})},
                      coords={"latitude": lat, "longitude": lon})


def test_global_grid_in_any_longitude_order_wraps_across_the_antimeridian():
    lon = np.arange(-180.0, 180.0, 20.0)  # [-180, 160]: the gap is between 160 and 180 = -180
    ref = global_grid(lon)
    ds = at(make_imagettes(4, 4, 4), [0.0, 0.0, 35.0, -5.0], [170.0, -190.0, 165.0, 530.0], ERA5_TIME)
    out = collocate(ds, ref, prefix="era5").era5_t2m.values
    row0 = ref.t2m.sel(latitude=0.0)
    expected = 0.5 * (float(row0.sel(longitude=160.0)) + float(row0.sel(longitude=-180.0)))
    np.testing.assert_allclose(out[:2], [expected, expected], rtol=1e-12)  # 170 and -190 are the same place
    assert np.isfinite(out).all()
    # the same grid stored from 0 to 340 degrees east, and stored rolled (180..340, 0..160): same answers
    east = ref.assign_coords(longitude=np.mod(lon, 360.0)).sortby("longitude")
    rolled = ref.assign_coords(longitude=np.mod(lon, 360.0))
    for other in (east, rolled):
        np.testing.assert_allclose(collocate(ds, other, prefix="era5").era5_t2m.values, out, rtol=1e-12)


def test_regional_grid_across_greenwich_stored_in_0_360_order():
    lon = np.r_[np.arange(0.0, 10.1, 2.5), np.arange(350.0, 359.9, 2.5)]  # 0..10 then 350..357.5: one region
    grid = xr.Dataset({"v": (("latitude", "longitude"), np.tile(np.where(lon > 180, lon - 360, lon), (3, 1)))},
                      coords={"latitude": [40.0, 45.0, 50.0], "longitude": lon})
    ds = at(make_imagettes(4, 4, 4), [45.0, 45.0, 45.0, 45.0], [-8.75, 358.75, 1.0, 20.0], ERA5_TIME)
    with pytest.warns(CollocationWarning, match="1 of 4 imagettes are outside the latitude/longitude coverage"):
        out = collocate(ds, grid, prefix="g").g_v.values
    np.testing.assert_allclose(out[:3], [-8.75, -1.25, 1.0], rtol=1e-12)  # linear across 0 degrees
    assert np.isnan(out[3])


def test_lazy_source_reads_only_the_chunks_of_the_steps_needed_in_groups():
    time = np.datetime64("2020-01-01", "ns") + np.arange(8) * np.timedelta64(6, "h")
    hours = (time - time[0]) / np.timedelta64(1, "h")
    lat, lon = np.arange(-10.0, 10.1, 2.5), np.arange(0.0, 20.1, 5.0)
    field = 280 + 0.5 * hours[:, None, None] + 0.1 * lat[None, :, None] - 0.2 * lon[None, None, :]
    src = xr.Dataset({"t2m": (("time", "latitude", "longitude"), field)},
                     coords={"time": time, "latitude": lat, "longitude": lon})
    touched: list[int] = []

    def block(i: int) -> np.ndarray:
        touched.append(i)
        return field[i : i + 1]

    blocks = [da.from_delayed(dask.delayed(block)(i), shape=(1, 9, 5), dtype=float) for i in range(8)]
    lazy = src.assign(t2m=(src.t2m.dims, da.concatenate(blocks)))
    # imagettes between steps 0 and 1, and 5 and 6: steps 2, 3, 4 and 7 are needed by nobody
    offsets = np.array([1, 32, 2], dtype="timedelta64[h]")
    ds = at(make_imagettes(3, 4, 4), [0, 1, 2], [5, 6, 7], time[0] + offsets)
    expected = 280 + 0.5 * np.array([1, 32, 2]) + 0.1 * np.array([0, 1, 2]) - 0.2 * np.array([5, 6, 7])
    with dask.config.set({"array.chunk-size": "360B"}):  # one step (9 x 5 x 8 bytes) per group: two groups
        out = collocate(ds, lazy, prefix="era5")
    assert touched == []
    np.testing.assert_allclose(out.era5_t2m.values, expected, rtol=1e-12)
    assert sorted(set(touched)) == [0, 1, 5, 6]
    touched.clear()
    np.testing.assert_allclose(collocate(ds, lazy, prefix="era5").era5_t2m.values, expected, rtol=1e-12)
    assert sorted(set(touched)) == [0, 1, 5, 6]


def test_nearest_on_a_lazy_source_stays_lazy_and_agrees():
    src = analytic_grid()
    rng = np.random.default_rng(6)
    ds = at(make_imagettes(10, 4, 4), rng.uniform(-10, 10, 10), rng.uniform(0, 20, 10),
            np.datetime64("2020-01-01T07:00", "ns"))
    out = collocate(ds, src.chunk({"time": 1}), method="nearest", prefix="era5", time_tolerance="2h")
    assert out.era5_t2m.chunks is not None
    np.testing.assert_array_equal(out.era5_t2m.values,
                                  collocate(ds, src, method="nearest", prefix="era5", time_tolerance="2h").era5_t2m)
    with pytest.warns(CollocationWarning, match="10 of 10 imagettes are outside the time range"):
        far = collocate(ds, src, method="nearest", prefix="era5", time_tolerance="30min")  # 07:00 is 1 h from 06:00
    assert np.isnan(far.era5_t2m.values).all()


def test_extra_dimensions_of_the_source_are_kept():
    src = analytic_grid()
    levels = xr.concat([src.t2m, src.t2m + 10], dim=xr.DataArray([1000, 850], dims="level", name="level"))
    ds = at(make_imagettes(3, 4, 4), [0, 1, 2], [5, 6, 7], np.datetime64("2020-01-01T03:00", "ns"))
    out = collocate(ds, src.assign(t=levels), variables="t", prefix="era5")
    assert out.era5_t.dims == (S.IMAGETTE, "level") and list(out.level.values) == [1000, 850]
    np.testing.assert_allclose(out.era5_t.values[:, 1] - out.era5_t.values[:, 0], 10.0, rtol=1e-12)
    lazy = collocate(ds, src.assign(t=levels).chunk({"time": 1, "level": 1}), variables="t", prefix="era5")
    assert lazy.era5_t.dims == (S.IMAGETTE, "level") and lazy.era5_t.chunks is not None
    np.testing.assert_allclose(lazy.era5_t.values, out.era5_t.values, rtol=1e-12)


def test_lazy_track_gives_a_lazy_result(ww3):
    ds = at(make_imagettes(4, 4, 4), [-34.0, -36.0, -38.0, -40.0], [177.5, 177.0, 176.0, 175.0],
            np.datetime64("2023-02-13T17:30", "ns"))
    with xr.open_dataset(ww3) as raw:
        track = raw.load()
    eager = collocate(ds, track, time_tolerance="1h", max_distance_km=200)
    lazy = collocate(ds, track.chunk({"time": 10}), time_tolerance="1h", max_distance_km=200)
    assert lazy.ww3_hs.chunks is not None
    np.testing.assert_allclose(lazy.ww3_hs.values, eager.ww3_hs.values, rtol=1e-12)
    np.testing.assert_array_equal(lazy.ww3_time_offset.values, eager.ww3_time_offset.values)


def test_ocn_product_path_opens_as_a_point_source(data_dir):
    from xwvnet.io.sources import resolve
    from xwvnet.joins.collocation import _open

    path = next((data_dir / "s1_wv").glob("s1a-wv2-ocn-*.nc"), None)
    if path is None:
        pytest.skip("no OCN product in the data mirror")
    assert S.IMAGETTE in _open(resolve(path), None, None).dims  # through open_ocn, not the raw netCDF
    near = at(make_imagettes(1, 4, 4), [-56.0], [-4.2], np.datetime64("2026-01-12T05:00", "ns"))
    out = collocate(near, path, time_tolerance="10min", max_distance_km=10, variables=["wind_speed"])
    assert out.ocn_wind_speed.values[0] == pytest.approx(6.73, abs=0.01)


# --- imagettes without positions (the published quicklooks) ---------------------------------------------------------
def _unplaced(n: int = 4, placed: int = 0) -> xr.Dataset:
    """Quicklook-like imagettes: an imagette_key each, positions only for the first ``placed``."""
    lat = np.r_[np.zeros(placed), np.full(n - placed, np.nan)]
    ds = at(make_imagettes(n, 4, 4), lat, lat.copy(), analytic_grid().time.values[1])
    return ds.assign_coords(imagette_key=(S.IMAGETTE, np.array([f"s1a-wv1-vv-000001-00000a-{i:03d}"
                                                                for i in range(n)], dtype=object)))


def test_imagettes_without_any_position_are_refused_in_one_line_saying_how_to_add_them():
    from xwvnet.errors import XWVNetError
    from xwvnet.joins import MissingPositionError

    with pytest.raises(MissingPositionError) as refused:
        collocate(_unplaced(), analytic_grid())
    message = str(refused.value)
    assert isinstance(refused.value, XWVNetError) and isinstance(refused.value, ValueError)
    assert "\n" not in message and "none of the 4 imagettes" in message and "latitude/longitude are NaN" in message
    assert "add_positions" in message and "--positions" in message and "assign_coords" in message
    no_time = at(make_imagettes(3, 4, 4), [0, 1, 2], [0, 1, 2], np.datetime64("NaT"))
    with pytest.raises(MissingPositionError, match="time is NaT"):
        collocate(no_time, analytic_grid())
    static = analytic_grid().isel(time=0, drop=True)  # a source without time needs no imagette time
    assert np.isfinite(collocate(no_time, static, prefix="m").m_t2m.values).all()


def test_mixed_imagettes_join_those_with_a_position_and_count_the_rest():
    ds = _unplaced(5, placed=2)
    with pytest.warns(CollocationWarning, match="3 of 5 imagettes have no position"):
        out = collocate(ds, analytic_grid(), prefix="m")
    assert np.isfinite(out.m_t2m.values[:2]).all() and np.isnan(out.m_t2m.values[2:]).all()
    assert out.attrs["collocation_no_position"] == 3 and out.m_t2m.attrs["collocation_nan_no_position"] == 3
    assert "collocation_no_position" not in ds.attrs  # the input is not modified
    with warnings.catch_warnings():
        warnings.simplefilter("error", CollocationWarning)
        assert collocate(_unplaced(2, placed=2), analytic_grid()).attrs["collocation_no_position"] == 0


def test_a_join_on_imagette_key_needs_no_position():
    ds = _unplaced(3)
    products = xr.Dataset({"hs": (S.IMAGETTE, [1.0, 2.0, 3.0])},
                          coords={S.IMAGETTE: ["p0", "p1", "p2"], "imagette_key": (S.IMAGETTE, ds.imagette_key.values),
                                  S.LATITUDE: (S.IMAGETTE, [1.0, 2.0, 3.0]), S.LONGITUDE: (S.IMAGETTE, [4.0, 5, 6]),
                                  S.TIME: (S.IMAGETTE, ds.time.values)})
    out = collocate(ds, products, prefix="ocn", variables="hs")
    assert out.ocn_hs.values.tolist() == [1.0, 2.0, 3.0]


def test_add_positions_takes_them_from_products_of_the_same_acquisitions():
    from xwvnet.joins import add_positions

    ds = _unplaced(4, placed=1)
    keys = ds.imagette_key.values
    products = xr.Dataset(coords={S.IMAGETTE: ["a", "b", "c"], "imagette_key": (S.IMAGETTE, keys[[2, 0, 1]]),
                                  S.LATITUDE: (S.IMAGETTE, [2.0, 50.0, 1.0]),
                                  S.LONGITUDE: (S.IMAGETTE, [190.0, 50.0, 11.0])})
    out = add_positions(ds, products)
    np.testing.assert_array_equal(out.latitude.values, [0.0, 1.0, 2.0, np.nan])  # the first keeps its own
    np.testing.assert_array_equal(out.longitude.values, [0.0, 11.0, -170.0, np.nan])
    assert np.isnan(ds.latitude.values[1:]).all()  # the input is not modified
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert collocate(out, analytic_grid()).attrs["collocation_no_position"] == 1
    assert any("1 of 4 imagettes have no position" in str(w.message) for w in caught)
    other = products.assign_coords(imagette_key=(S.IMAGETTE, ["x", "y", "z"]))
    with pytest.raises(ValueError, match="none of the 3 imagettes without a position"):
        add_positions(ds, other)
    with pytest.raises(ValueError, match="imagette_key"):
        add_positions(ds.drop_vars("imagette_key"), products)


def test_cli_refuses_imagettes_without_positions_in_one_line_and_joins_with_positions(data_dir, tmp_path, capsys):
    from xwvnet.cli import main

    ocn = next(iter(sorted((data_dir / "s1_wv").glob("*-ocn-*.nc"))), None)
    era5 = data_dir / "era5" / "era5_2t_1.nc"
    if ocn is None or not era5.is_file():
        pytest.skip("no OCN product or ERA5 netCDF in the data mirror")
    key = str(xwvnet.open_ocn(ocn).imagette_key.values[0])
    ds = _unplaced(3).assign_coords(imagette_key=(S.IMAGETTE, np.array([key, "s1a-x-0", "s1a-x-1"], dtype=object)))
    store = tmp_path / "ql.zarr"
    xwvnet.to_store(ds, store)
    table = tmp_path / "t.nc"
    assert main(["collocate", str(store), str(era5), "--out", str(table), "--time-tolerance", "4000D"]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("xwvnet collocate: error: collocate needs")
    assert "Traceback" not in err and "sys.exit" not in err and not table.exists()
    assert main(["collocate", str(store), str(era5), "--out", str(table), "--time-tolerance", "4000D",
                 "--positions", str(ocn)]) == 0
    captured = capsys.readouterr()
    warned = [line for line in captured.err.splitlines() if line.strip()]
    assert warned and all(line.startswith("xwvnet collocate: warning:") for line in warned), captured.err
    assert "2 of 3 imagettes have no position" in captured.out
    with xr.open_dataset(table) as written:
        assert np.isfinite(written.era5_t2m.values[0]) and np.isnan(written.era5_t2m.values[1:]).all()
        assert written.attrs["collocation_no_position"] == 2


def test_join_modules_have_numpydoc_docstrings_and_their_examples_run():
    check_numpydoc("xwvnet.joins.collocation")
    module = importlib.import_module("xwvnet.joins.collocation")
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, result


# ======================================================================================================================
# Files in the layouts scientists hold (issue 13), built by tests._source_files; references: scipy's
# RegularGridInterpolator, closed-form Hs of analytic spectra, brute-force nearest searches.
# ======================================================================================================================
def _imagettes(time, lat, lon) -> xr.Dataset:
    n = len(lat)
    time = np.broadcast_to(np.asarray(time, dtype="datetime64[ns]"), (n,))
    return xr.Dataset(coords={S.IMAGETTE: [f"i{i}" for i in range(n)], S.TIME: (S.IMAGETTE, time),
                              S.LATITUDE: (S.IMAGETTE, np.asarray(lat, float)),
                              S.LONGITUDE: (S.IMAGETTE, np.asarray(lon, float))})


def _quiet(*args, **kwargs) -> xr.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CollocationWarning)
        return collocate(*args, **kwargs).compute()


def _scipy(values: np.ndarray, axes: list[np.ndarray], points: list[np.ndarray], method: str = "linear"):
    order = [np.argsort(a) for a in axes]
    v = values[np.ix_(*order)] if values.ndim == len(axes) else values
    f = RegularGridInterpolator([np.asarray(a, float)[o] for a, o in zip(axes, order)], v, method=method,
                                bounds_error=False)
    return f(np.column_stack([np.asarray(p, float) for p in points]))


def _hours(t) -> np.ndarray:
    return (np.asarray(t, dtype="datetime64[ns]") - F.T0) / np.timedelta64(1, "h")


# --- 1. WAVEWATCH III ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("station_dim", ["station", "site"])
def test_ww3_station_spectra_to_hs_nearest_station_then_linear_in_time(tmp_path, station_dim):
    path = tmp_path / "ww3.202302_spec.nc"
    truth = F.ww3_stations(path, station_dim=station_dim)
    # imagettes 20-60 km off stations, between output steps
    lat = truth["latitude"][0] + np.array([0.2, -0.3, 0.25, 0.4])
    lon = truth["longitude"][0] + np.array([0.1, 0.2, -0.3, 0.0])
    t = truth["time"][[1, 2, 3, 5]] + np.timedelta64(75, "m")
    out = _quiet(_imagettes(t, lat, lon), path, max_distance_km=100, time_tolerance="1h")
    assert {"ww3_hs", "ww3_tp", "ww3_tm01", "ww3_tm02", "ww3_mean_direction", "ww3_distance_km"} <= set(out)
    # brute-force nearest station
    d = haversine_km(lat[:, None], lon[:, None], truth["latitude"][0][None], truth["longitude"][0][None])
    nearest = d.argmin(1)
    np.testing.assert_array_equal(nearest, np.arange(4))
    np.testing.assert_allclose(out.ww3_distance_km, d.min(1), rtol=1e-6)
    # Hs: the analytic Hs at the two steps, linear in time (within 1 %)
    steps = _hours(truth["time"])
    hs_exact = F.analytic_hs(truth["a"], truth["sigma"])  # (time, station)
    expected = [np.interp(_hours(ti), steps, hs_exact[:, j]) for ti, j in zip(t, nearest)]
    np.testing.assert_allclose(out.ww3_hs, expected, rtol=0.01)
    np.testing.assert_allclose(out.ww3_mean_direction, truth["theta0"], atol=1.0)
    assert np.all(np.abs(1 / out.ww3_tp.values - truth["fp"]) < 0.06 * truth["fp"])  # one 10 % bin at most
    assert out.ww3_hs.attrs["units"] == "m" and out.ww3_hs.attrs["collocation_source"] == "ww3"


def test_ww3_moving_stations_each_time_and_position_is_a_point(tmp_path):
    path = tmp_path / "ww3_ship_spec.nc"
    truth = F.ww3_stations(path, moving=True)
    i, j = np.array([0, 3, 6]), np.array([1, 2, 0])
    out = _quiet(_imagettes(truth["time"][i], truth["latitude"][i, j], truth["longitude"][i, j]), path,
                 time_tolerance="30min", max_distance_km=5)
    np.testing.assert_allclose(out.ww3_hs, F.analytic_hs(truth["a"][i, j], truth["sigma"]), rtol=0.01)
    np.testing.assert_allclose(out.ww3_distance_km, 0, atol=1e-3)
    assert (out.ww3_time_offset.values == np.timedelta64(0, "ns")).all()


def test_ww3_gridded_hs_linear_and_nearest_to_float_precision(tmp_path):
    path = tmp_path / "ww3_gridded.nc"
    grid = F.ww3_grid(path)
    rng = np.random.default_rng(0)
    n = 50
    t = grid.time.values[0] + rng.integers(0, 21 * 3600, n).astype("timedelta64[s]")
    lat, lon = rng.uniform(-49.9, -33, n), rng.uniform(160.1, 185, n)
    lon_180 = np.where(lon > 180, lon - 360, lon)  # imagettes in [-180, 180), grid across 180 in 0..360
    for method in ("linear", "nearest"):
        out = _quiet(_imagettes(t, lat, lon_180), path, method=method)
        ref = _scipy(grid.hs.values.astype(float), [_hours(grid.time.values), grid.latitude.values,
                                                    grid.longitude.values], [_hours(t), lat, lon], method)
        np.testing.assert_allclose(out.ww3_hs, ref, rtol=1e-6, equal_nan=True)


# --- 2. ERA5 ---------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def era5_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("era5")
    truth = F.era5_single(folder / "era5_old.nc", layout="old", packed=True)
    F.era5_single(folder / "era5_new.nc", layout="new", packed=True)
    F.era5_single(folder / "era5_expver.nc", layout="expver-dim", packed=False)
    return folder, truth


def _era5_points(n: int = 40, seed: int = 1):
    rng = np.random.default_rng(seed)
    t = F.T0 + rng.integers(0, 11 * 3600, n).astype("timedelta64[s]")
    return t.astype("datetime64[ns]"), rng.uniform(40.1, 59.9, n), rng.uniform(-29.9, -0.3, n)


def test_era5_old_layout_packed_int16_matches_scipy(era5_files):
    folder, truth = era5_files
    with xr.open_dataset(folder / "era5_old.nc") as raw:
        assert raw.t2m.encoding["dtype"] == np.int16 and "scale_factor" in raw.t2m.encoding
    t, lat, lon = _era5_points()
    out = _quiet(_imagettes(t, lat, lon), folder / "era5_old.nc")
    ref = _scipy(truth.t2m.values.astype(float), [_hours(truth.time.values), truth.latitude.values,
                                                  truth.longitude.values - 360], [_hours(t), lat, lon])
    np.testing.assert_allclose(out.era5_t2m, ref, rtol=1e-6)
    assert out.era5_t2m.attrs["units"] == "K" and out.era5_t2m.attrs["long_name"] == "2 metre temperature"


def test_era5_new_cds_layout_and_expver_give_the_same_values_without_grib_attrs(era5_files):
    folder, _ = era5_files
    t, lat, lon = _era5_points()
    ds = _imagettes(t, lat, lon)
    old = _quiet(ds, folder / "era5_old.nc")
    new = _quiet(ds, folder / "era5_new.nc")
    merged = _quiet(ds, folder / "era5_expver.nc", variables="t2m")
    np.testing.assert_allclose(new.era5_t2m, old.era5_t2m, rtol=1e-6)
    np.testing.assert_allclose(merged.era5_t2m, old.era5_t2m, rtol=1e-4)  # unpacked there: within packing error
    assert not [k for k in new.era5_t2m.attrs if k.startswith("GRIB_")]
    assert new.era5_t2m.attrs["units"] == "K" and "number" not in new.coords and "expver" not in new.coords


def test_real_grib_attributes_dropped_units_kept(data_dir):
    pytest.importorskip("cfgrib")
    path = data_dir / "era5" / "era5-2mt-2019-03-uk.grib"
    ds = _imagettes(np.datetime64("2019-03-10T06:30", "ns"), [52.0, 55.0], [-3.0, 0.5])
    out = _quiet(ds, path)
    attrs = out.era5_t2m.attrs
    assert not [k for k in attrs if k.startswith("GRIB_")] and attrs["units"] == "K"
    assert "long_name" in attrs and np.isfinite(out.era5_t2m).all()


def test_era5_spectra_d2fd_to_hs_within_one_percent_land_nan(tmp_path):
    path = tmp_path / "era5_2d_wave_spectra.nc"
    truth = F.era5_spectra(path)
    ii = [(1, 0, 1), (2, 2, 3), (3, 1, 2), (0, 0, 0)]  # the last on the land cell
    t = truth["time"][[i for i, _, _ in ii]]
    lat = truth["latitude"][[j for _, j, _ in ii]]
    lon = truth["longitude"][[k for _, _, k in ii]] - 360
    out = _quiet(_imagettes(t, lat, lon), path, variables=["hs", "tm01", "mean_direction"])
    hs = F.analytic_hs(truth["a"], truth["sigma"])
    np.testing.assert_allclose(out.era5_hs[:3], [hs[i] for i in ii[:3]], rtol=0.01)
    np.testing.assert_allclose(out.era5_mean_direction[:3], 200.0, atol=1.0)
    assert np.isnan(out.era5_hs[3]) and np.isnan(out.era5_tm01[3])


@pytest.mark.parametrize("level_name", ["level", "pressure_level"])
def test_pressure_levels_kept_as_imagette_level(tmp_path, level_name):
    path = tmp_path / f"era5_pl_{level_name}.nc"
    truth = F.era5_pressure_levels(path, level_name=level_name)
    rng = np.random.default_rng(2)
    t = F.T0 + rng.integers(0, 5 * 3600, 10).astype("timedelta64[s]")
    lat, lon = rng.uniform(41, 59, 10), rng.uniform(-29, -1, 10)
    out = _quiet(_imagettes(t, lat, lon), path)
    assert out.era5_t.dims == (S.IMAGETTE, "level") and out.level.values.tolist() == [1000, 925, 850, 500]
    tname = "valid_time" if level_name == "pressure_level" else "time"
    for k in range(4):
        ref = _scipy(truth.t.isel({level_name: k}).values.astype(float),
                     [_hours(truth[tname].values), truth.latitude.values, truth.longitude.values],
                     [_hours(t), lat, lon])
        np.testing.assert_allclose(out.era5_t.isel(level=k), ref, rtol=1e-6)


# --- 3. no time ------------------------------------------------------------------------------------------------------
def test_climatology_and_mask_joined_in_space_only_codes_nearest(tmp_path):
    path = tmp_path / "climatology.nc"
    clim = F.climatology(path)
    lat, lon = np.array([10.2, -60.3, 45.7]), np.array([-170.4, 20.6, 179.9])
    out = _quiet(_imagettes(np.datetime64("2030-06-01", "ns"), lat, lon), path, prefix="clim")
    for name in ("clim_sst_clim", "clim_basin"):
        assert out[name].attrs["collocation_time"] == SPACE_ONLY
    assert out.clim_basin.attrs["collocation_method"] == "nearest"
    assert out.clim_basin.values.tolist() == [2.0, 10.0, 1.0]  # codes, never averaged
    ref = _scipy(clim.sst_clim.values.astype(float), [clim.lat.values, clim.lon.values],
                 [lat, np.mod(lon, 360)])
    np.testing.assert_allclose(out.clim_sst_clim[:2], ref[:2], rtol=1e-6)


def test_real_basin_mask_gives_integer_codes(data_dir):
    path = data_dir / "ocean_masks" / "basin_mask.nc"
    out = _quiet(_imagettes(np.datetime64("2021-01-01", "ns"), [0.3, -58.2, 12.0], [-30.2, 100.1, 65.3]), path,
                 prefix="mask")
    codes = out.mask_basin.isel(Z=0).values
    assert np.all(codes == np.round(codes)) and codes.tolist() == [1.0, 10.0, 3.0]
    assert out.mask_basin.attrs["collocation_time"] == SPACE_ONLY


# --- 4. observations as points ---------------------------------------------------------------------------------------
def test_altimeter_track_nearest_within_tolerances_matches_brute_force(tmp_path):
    path = tmp_path / "global_vavh_l3_rt_s3a.nc"
    track = F.altimeter_track(path)
    rng = np.random.default_rng(3)
    n = 30
    lat, lon = rng.uniform(-62, -22, n), rng.uniform(8, 24, n)
    t = F.T0 + rng.integers(-300, 900, n).astype("timedelta64[s]")
    out = _quiet(_imagettes(t, lat, lon), path, prefix="alt", time_tolerance="5min", max_distance_km=50)
    dt = np.abs(track.time.values[None] - t.astype("datetime64[ns]")[:, None])
    d = haversine_km(lat[:, None], lon[:, None], track.latitude.values[None], track.longitude.values[None])
    d = np.where(dt <= np.timedelta64(5, "m"), d, np.inf)
    best = d.argmin(1)
    ok = d.min(1) <= 50
    assert ok.any() and (~ok).any()
    np.testing.assert_array_equal(np.isnan(out.alt_VAVH.values), ~ok)
    np.testing.assert_array_equal(out.alt_VAVH.values[ok], track.VAVH.values[best[ok]])
    np.testing.assert_allclose(out.alt_distance_km.values[ok], d.min(1)[ok], rtol=1e-9)
    np.testing.assert_array_equal(out.alt_time_offset.values[ok], track.time.values[best[ok]] - t[ok])


def test_insitu_buoys_nearest_station_then_linear_in_time(tmp_path):
    path = tmp_path / "GL_TS_MO_multi.nc"
    buoys = F.insitu_buoys(path)
    lat, lon = np.array([47.0, 43.6, 36.3, 0.0]), np.array([-8.0, -2.2, -75.0, 0.0])
    t = F.T0 + np.array([65, 600, 1000, 100]) * np.timedelta64(1, "m")
    with pytest.warns(CollocationWarning, match="1 of 4 imagettes are farther than 100"):
        out = collocate(_imagettes(t, lat, lon), path, prefix="buoy", max_distance_km=100).compute()
    d = haversine_km(lat[:, None], lon[:, None], buoys.LATITUDE.values[None], buoys.LONGITUDE.values[None])
    station = d.argmin(1)
    steps = (buoys.TIME.values - F.T0) / np.timedelta64(1, "m")
    minutes = (t - F.T0) / np.timedelta64(1, "m")
    expected = [np.interp(m, steps, buoys.VHM0.values[s]) for m, s in zip(minutes[:3], station[:3])]
    np.testing.assert_allclose(out.buoy_VHM0.values[:3], expected, rtol=1e-6)
    assert np.isnan(out.buoy_VHM0.values[3]) and out.buoy_VHM0.attrs["units"] == "m"
    np.testing.assert_allclose(out.buoy_distance_km.values[:3], d.min(1)[:3], rtol=1e-9)


# --- 5. curvilinear --------------------------------------------------------------------------------------------------
def test_curvilinear_grid_nearest_cell_by_brute_force_outside_nan(tmp_path):
    path = tmp_path / "regional_ww3_curvilinear.nc"
    grid = F.curvilinear(path)
    rng = np.random.default_rng(4)
    y, x = rng.integers(2, 28, 12), rng.integers(2, 38, 12)
    lat = grid.latitude.values[y, x] + rng.uniform(-0.03, 0.03, 12)
    lon = grid.longitude.values[y, x] + rng.uniform(-0.03, 0.03, 12)
    lat, lon = np.append(lat, 10.0), np.append(lon, 10.0)  # far outside the grid
    it = rng.integers(0, 4, 13)
    with pytest.warns(CollocationWarning, match="1 of 13 imagettes are farther than"):
        out = collocate(_imagettes(grid.time.values[it], lat, lon), path, prefix="reg").compute()
    d = haversine_km(lat[:, None], lon[:, None], grid.latitude.values.ravel()[None],
                     grid.longitude.values.ravel()[None])
    cell = d.argmin(1)
    expected = grid.hs.values.reshape(4, -1)[it, cell]
    np.testing.assert_array_equal(out.reg_hs.values[:12], expected[:12])
    np.testing.assert_allclose(out.reg_distance_km.values[:12], d.min(1)[:12], rtol=1e-9)
    assert np.isnan(out.reg_hs.values[12])


def test_curvilinear_that_is_a_plain_grid_is_interpolated_linearly(tmp_path):
    lat, lon = np.arange(40.0, 50.1, 0.5), np.arange(-20.0, -9.9, 0.5)
    field = np.add.outer(np.sin(np.deg2rad(lat * 5)), np.cos(np.deg2rad(lon * 7)))
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    src = xr.Dataset({"v": (("y", "x"), field)}, coords={"lat": (("y", "x"), la), "lon": (("y", "x"), lo)})
    qlat, qlon = np.array([41.2, 47.77]), np.array([-19.1, -11.3])
    out = _quiet(_imagettes(np.datetime64("NaT", "ns"), qlat, qlon), src, prefix="g")
    np.testing.assert_allclose(out.g_v, _scipy(field, [lat, lon], [qlat, qlon]), rtol=1e-12)
    assert "g_distance_km" not in out


# --- 6. many files ---------------------------------------------------------------------------------------------------
@pytest.fixture()
def monthly(tmp_path):
    return tmp_path / "monthly", F.monthly_folder(tmp_path / "monthly")


def test_folder_and_glob_of_monthly_files_read_only_the_months_touched(monthly, monkeypatch):
    folder, paths = monthly
    reads = []
    original = netCDF4_.NetCDF4ArrayWrapper._getitem

    def spy(self, key):
        reads.append((self.datastore._filename.rsplit("/", 1)[-1], self.variable_name))
        return original(self, key)

    monkeypatch.setattr(netCDF4_.NetCDF4ArrayWrapper, "_getitem", spy)
    t = np.datetime64("2023-02-10T00", "ns") + np.arange(6) * np.timedelta64(7, "h")
    ds = _imagettes(t, np.linspace(41, 59, 6), np.linspace(-29, -1, 6))
    lazy = collocate(ds, folder, variables="t2m")
    assert lazy.era5_t2m.chunks is not None  # lazy: nothing read beyond coordinates
    reads.clear()
    out = lazy.compute()
    assert set(reads) == {("era5_t2m_2023-02.nc", "t2m")}  # only February's chunk, once
    whole = xr.concat([xr.open_dataset(p) for p in paths], dim="time").load()
    ref = _scipy(whole.t2m.values, [_hours(whole.time.values), whole.latitude.values, whole.longitude.values - 360],
                 [_hours(t), ds.latitude.values, ds.longitude.values])
    np.testing.assert_allclose(out.era5_t2m, ref, rtol=1e-6)
    globbed = _quiet(ds, str(folder / "era5_t2m_2023-0*.nc"), variables="t2m")
    np.testing.assert_allclose(globbed.era5_t2m, out.era5_t2m)


def test_collocate_to_file_takes_a_folder_of_sources(data_dir, tmp_path):
    manifest = data_dir / "s1_wv" / "S1B_WV_SLC__1SSV_20210403T083025_20210403T084452_026300_032390_D542.SAFE"
    if not manifest.exists():
        pytest.skip("the WV manifest sample is not in the mirror")
    folder = tmp_path / "era5_2021"
    F.monthly_folder(folder, months=4, year=2021, box=(-20.0, 40.0, 300.0, 340.0))
    table = collocate_to_file(manifest, folder, tmp_path / "table.csv", variables="t2m")
    assert table.sizes[S.IMAGETTE] == 60 and np.isfinite(table.era5_t2m.values).all()
    assert (tmp_path / "table.csv").read_text().count("\n") == 61


# --- arguments -------------------------------------------------------------------------------------------------------
def test_negative_tolerances_and_prefix_underscores(era5_files):
    folder, _ = era5_files
    t, lat, lon = _era5_points(3)
    ds = _imagettes(t, lat, lon)
    with pytest.raises(ValueError, match="time_tolerance must be a positive duration"):
        collocate(ds, folder / "era5_old.nc", time_tolerance="-3h")
    with pytest.raises(ValueError, match="max_distance_km must be a positive number"):
        collocate(ds, folder / "era5_old.nc", max_distance_km=-5)
    out = _quiet(ds, folder / "era5_old.nc", prefix="e5_")
    assert "e5_t2m" in out and not [k for k in out.data_vars if "__" in k]


# ======================================================================================================================
# Files other tools and agencies write (issue 20): a real CMEMS In Situ TAC file and CMEMS L3 altimeter files
# from the mirror, the other families built in their published layouts; references: Hs by direct integration of
# the spectrum (or its closed form), nearest samples by brute force over every sample.
# ======================================================================================================================
INSITU = "insitu/AR_TS_MO_A-Sulafjorden_20230820.nc"


ALTIMETER = [f"altimeter/global_vavh_l3_rt_s3b_20220201T{a}_2022020{d}T{b}_20220630T{c}.nc" for a, d, b, c in [
    ("000000", "1", "030000", "215237"), ("030000", "1", "060000", "214527"), ("060000", "1", "090000", "214537"),
    ("090000", "1", "120000", "214910"), ("120000", "1", "150000", "215128"), ("150000", "1", "180000", "215045"),
    ("180000", "1", "210000", "215105"), ("210000", "2", "000000", "215305")]]


def _counted(*args, **kwargs) -> xr.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CollocationWarning)
        return count_missing(collocate(*args, **kwargs).compute())


def _brute_nearest(lat, lon, t, p_lat, p_lon, p_t, tol, valid):
    """Index of the nearest valid sample within tol (by distance, then time), -1 if none: every sample looked at."""
    out = []
    for la, lo, ti in zip(lat, lon, t):
        ok = valid & (np.abs(p_t - ti) <= tol) & np.isfinite(p_lat)
        if not ok.any():
            out.append(-1)
            continue
        d = np.where(ok, haversine_km(la, lo, p_lat, p_lon), np.inf)
        ties = np.flatnonzero(d == d.min())
        out.append(int(ties[np.argmin(np.abs(p_t[ties] - ti))]))
    return np.array(out)


# --- real CMEMS In Situ TAC file -------------------------------------------------------------------------------------
def test_real_insitu_file_nearest_good_value_in_time_qc_counted():
    path = fetch(INSITU)
    raw = xr.open_dataset(path)
    lat0, lon0 = float(raw.LATITUDE[0]), float(raw.LONGITUDE[0])
    t = np.array(["2023-08-20T00:04", "2023-08-20T01:17", "2023-08-20T02:58", "2023-08-20T06:00"], "datetime64[ns]")
    ds = _imagettes(t, [lat0 + 0.05] * 4, [lon0 - 0.05] * 4)
    out = _counted(ds, path, variables=["VGHS", "TEMP", "WSPD"], time_tolerance="30min", max_distance_km=20,
                   prefix="buoy")
    # independent: VGHS at DEPTH 0 with flag 1 or 2, nearest in time among its valid times
    vghs, qc = raw.VGHS.values[:, 0], raw.VGHS_QC.values[:, 0]
    good = np.isfinite(vghs) & np.isin(qc, (1, 2))
    times = raw.TIME.values
    for i, ti in enumerate(t):
        near = np.abs(times - ti) <= np.timedelta64(30, "m")
        if not (near & good).any():
            assert np.isnan(out.buoy_VGHS.values[i])
            continue
        j = np.flatnonzero(good)[np.argmin(np.abs(times[good] - ti))]
        assert out.buoy_VGHS.values[i] == vghs[j]
    assert out.buoy_VGHS.attrs["collocation_nan_outside_time"] == 1  # 06:00 is 3 h past the last record
    # WSPD is there but its flag is 0 (no QC performed): dropped and counted, never a silent NaN
    assert np.isnan(out.buoy_WSPD.values).all()
    assert out.buoy_WSPD.attrs["collocation_nan_qc_flagged"] == 3
    assert out.buoy_WSPD.attrs["collocation_nan_outside_time"] == 1
    kept = _counted(ds, path, variables="WSPD", time_tolerance="30min", max_distance_km=20, quality_flags=(0, 1, 2))
    assert np.isfinite(kept.source_WSPD.values[:3]).all()
    assert "shallowest" in out.buoy_TEMP.attrs["depth_selection"]


def test_real_insitu_depth_choice_and_folder_of_daily_files(tmp_path):
    path = fetch(INSITU)
    raw = xr.open_dataset(path)
    ti = np.datetime64("2023-08-20T01:00", "ns")
    ds = _imagettes([ti], [float(raw.LATITUDE[0])], [float(raw.LONGITUDE[0])])
    k = int(np.flatnonzero(raw.TIME.values == ti)[0])
    deph, temp, qc = raw.DEPH.values[k], raw.TEMP.values[k], raw.TEMP_QC.values[k]
    ok = np.isfinite(temp) & np.isin(qc, (1, 2))
    at20 = _counted(ds, path, variables="TEMP", depth=20, time_tolerance="1min")
    assert at20.source_TEMP.values[0] == temp[ok & (np.abs(deph - 20) <= 1)][0]
    top = _counted(ds, path, variables="TEMP", time_tolerance="1min")
    assert top.source_TEMP.values[0] == temp[ok][np.argmin(deph[ok])]
    # a folder of daily files: the same day twice (repeated records kept once, counted) and a shifted copy
    folder = tmp_path / "daily"
    folder.mkdir()
    (folder / path.name).write_bytes(path.read_bytes())
    shifted = raw.assign_coords(TIME=raw.TIME + np.timedelta64(1, "D"))
    shifted.to_netcdf(folder / "AR_TS_MO_A-Sulafjorden_20230821.nc")
    raw.isel(TIME=slice(0, 10), LATITUDE=slice(0, 10), LONGITUDE=slice(0, 10), POSITION=slice(0, 10)).to_netcdf(
        folder / "AR_TS_MO_A-Sulafjorden_20230820_again.nc")
    ds2 = _imagettes([ti, ti + np.timedelta64(1, "D")], [float(raw.LATITUDE[0])] * 2, [float(raw.LONGITUDE[0])] * 2)
    many = _counted(ds2, folder, variables="TEMP", time_tolerance="1min", max_distance_km=5)
    assert many.source_TEMP.values.tolist() == [top.source_TEMP.values[0]] * 2
    from xwvnet.io.sources import open_source

    assert open_source(folder).attrs["duplicate_times_dropped"] == 10


# --- real CMEMS L3 altimeter files -----------------------------------------------------------------------------------
def test_real_altimeter_folder_nearest_sample_by_brute_force(tmp_path):
    files = [fetch(n) for n in ALTIMETER]
    folder = tmp_path / "l3"
    folder.mkdir()
    for f in files:
        (folder / f.name).symlink_to(f)
    allp = xr.open_mfdataset(files, combine="nested", concat_dim="time").load()
    p_t, p_lat, p_lon = allp.time.values, allp.latitude.values, allp.longitude.values
    rng = np.random.default_rng(0)
    pick = rng.choice(p_t.size, 6, replace=False)
    lat = p_lat[pick] + rng.uniform(-0.3, 0.3, 6)
    lon = p_lon[pick] + rng.uniform(-0.3, 0.3, 6)
    t = p_t[pick] + np.timedelta64(7, "m")
    out = _counted(_imagettes(t, lat, lon), folder, variables="VAVH", time_tolerance="30min", max_distance_km=60)
    idx = _brute_nearest(lat, lon, t, p_lat, p_lon, p_t, np.timedelta64(30, "m"), np.isfinite(allp.VAVH.values))
    got = out.source_VAVH.values
    assert (idx >= 0).all()
    np.testing.assert_array_equal(got, allp.VAVH.values[idx])
    assert out.source_VAVH.attrs["collocation_nan_missing_in_source"] == 0


# --- NDBC THREDDS ----------------------------------------------------------------------------------------------------
def test_ndbc_swden_one_by_one_grid_is_a_station_hs_from_the_frequency_spectrum(tmp_path):
    path = tmp_path / "46089w9999.nc"
    truth = F.ndbc_swden(path)
    t = truth["time"][[1, 4]] + np.timedelta64(30, "m")
    out = _counted(_imagettes(t, [truth["lat"] + 0.1] * 2, [truth["lon"]] * 2), path, time_tolerance="1h",
                   max_distance_km=50, method="nearest", prefix="ndbc")
    # independent: direct integration of the analytic spectrum (closed form), and the trapezoid rule on the file
    f = F.NDBC_FREQUENCY
    for i, k in enumerate([1, 4]):  # nearest step: 30 min after k is a tie, the earlier step wins
        exact = 4 * np.sqrt(truth["a"][k] * truth["sigma"] * np.sqrt(2 * np.pi))
        ef = truth["a"][k] * np.exp(-((f - truth["fp"]) ** 2) / (2 * truth["sigma"] ** 2))
        trapz = 4 * np.sqrt(np.trapezoid(ef, f))
        assert out.ndbc_hs.values[i] == pytest.approx(exact, rel=0.03)
        assert out.ndbc_hs.values[i] == pytest.approx(trapz, rel=0.01)
    assert out.ndbc_tp.values == pytest.approx(1 / truth["fp"], rel=1e-6)
    assert {"ndbc_tm01", "ndbc_tm02", "ndbc_distance_km"} <= set(out)
    assert "mean_wave_dir" not in "".join(out.data_vars)


def test_ndbc_stdmet_fill_values_are_counted_missing(tmp_path):
    path = tmp_path / "46089h9999.nc"
    truth = F.ndbc_stdmet(path)
    t = truth["time"][[1, 3, 5]]
    out = _counted(_imagettes(t, [46.0] * 3, [-124.4] * 3), path, time_tolerance="1h", max_distance_km=50,
                   method="nearest", prefix="ndbc")
    assert out.ndbc_wave_height.values[[0, 2]].tolist() == truth["hs"][[1, 5]].tolist()
    assert np.isnan(out.ndbc_wave_height.values[1])
    assert out.ndbc_wave_height.attrs["collocation_nan_missing_in_source"] == 1


# --- WW3 / wavespectra Zarr, WWM -------------------------------------------------------------------------------------
def test_ww3_station_zarr_as_wavespectra_writes_it_joins_lazily(tmp_path):
    path = tmp_path / "ww3_spec.zarr"
    truth = F.wavespectra_zarr(path)
    t = truth["time"][[2, 5]]
    ds = _imagettes(t, truth["lat"][[0, 2]] + 0.2, truth["lon"][[0, 2]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CollocationWarning)
        lazy = collocate(ds, path, time_tolerance="1h", max_distance_km=100, prefix="ww3")
    assert lazy.ww3_hs.chunks is not None  # nothing read yet
    assert "collocation_nan_note" in lazy.ww3_hs.attrs
    out = count_missing(lazy.compute())
    exact = 4 * np.sqrt(truth["a"][[2, 5], [0, 2]] * truth["sigma"] * np.sqrt(2 * np.pi))
    np.testing.assert_allclose(out.ww3_hs.values, exact, rtol=0.01)
    np.testing.assert_allclose(out.ww3_tp.values, 1 / F.WW3_FREQUENCY[np.argmin(np.abs(F.WW3_FREQUENCY - 0.1))])
    assert out.ww3_hs.attrs["collocation_nan_missing_in_source"] == 0


def test_wwm_station_output_ocean_time(tmp_path):
    path = tmp_path / "wwm_sta.nc"
    truth = F.wwm_stations(path)
    t = truth["time"][[1]] + np.timedelta64(30, "m")
    out = _counted(_imagettes(t, [44.4], [-1.6]), path, time_tolerance="1h", max_distance_km=50, prefix="wwm")
    assert out.wwm_HS.values[0] == pytest.approx(truth["hs"][1:3, 1].mean(), rel=1e-6)


# --- along-track: CCI Sea State, CFOSAT SWIM -------------------------------------------------------------------------
def test_cci_l2p_quality_flag_honoured_and_counted(tmp_path):
    path = tmp_path / "ESACCI-SEASTATE-L2P-SWH-Jason-3-20230201.nc"
    truth = F.cci_l2p(path)
    pick = np.array([20, 120, 300])  # 120 is flagged bad, its good neighbours are 30 samples (1.5 s) away
    ds = _imagettes(truth["time"][pick], truth["lat"][pick], truth["lon"][pick])
    out = _counted(ds, path, variables="swh", time_tolerance="1s", max_distance_km=5, prefix="cci")
    good = truth["quality"] == 3
    idx = _brute_nearest(truth["lat"][pick], truth["lon"][pick], truth["time"][pick], truth["lat"], truth["lon"],
                         truth["time"], np.timedelta64(1, "s"), good)
    assert idx[1] == -1 and np.isnan(out.cci_swh.values[1])
    assert out.cci_swh.values[[0, 2]].tolist() == truth["swh"][idx[[0, 2]]].tolist()
    assert out.cci_swh.attrs["collocation_nan_qc_flagged"] == 1


def test_cfosat_swim_nadir_coordinates_by_standard_name(tmp_path):
    path = tmp_path / "CFO_OPER_SWI_L2PBOX_F_20230201.nc"
    truth = F.cfosat_nadir(path)
    pick = np.array([10, 150, 299])
    lat, lon = truth["lat"][pick] + 0.02, truth["lon"][pick] - 0.02
    out = _counted(_imagettes(truth["time"][pick], lat, lon), path, time_tolerance="10min", max_distance_km=30)
    idx = _brute_nearest(lat, lon, truth["time"][pick], truth["lat"], truth["lon"], truth["time"],
                         np.timedelta64(10, "m"), np.ones(truth["lat"].size, bool))
    assert out.source_nadir_swh_1Hz.values.tolist() == truth["swh"][idx].tolist()


# --- refusals and coordinate hygiene ---------------------------------------------------------------------------------
def _grid(tmp_path: Path, **edit) -> Path:
    lat, lon = np.arange(40.0, 50.1, 1.0), np.arange(-10.0, 0.1, 1.0)
    t = F.hours(4)
    ds = xr.Dataset({"t2m": (("time", "latitude", "longitude"), np.ones((4, lat.size, lon.size)), {"units": "K"})},
                    coords={"time": t, "latitude": lat, "longitude": lon})
    for k, v in edit.items():
        ds = ds.assign_coords({k: v})
    path = tmp_path / "era5_edit.nc"
    ds.to_netcdf(path)
    return path


def test_coordinate_hygiene_errors_and_utc(tmp_path):
    ds = _imagettes([F.T0 + F.HOUR], [45.2], [-5.3])
    lat = np.arange(40.0, 50.1, 1.0)
    lat[3] = np.nan
    with pytest.raises(ValueError, match="latitude axis .* 1 missing or infinite .*index \\[3\\].*isel"):
        collocate(ds, _grid(tmp_path, latitude=lat))
    lon = np.arange(-10.0, 0.1, 1.0)
    lon[-1] = np.inf
    with pytest.raises(ValueError, match="longitude axis .* infinite"):
        collocate(ds, _grid(tmp_path, longitude=lon))
    t = F.hours(4)
    t[2] = t[1]
    with pytest.raises(ValueError, match="repeats 1 step.*drop_duplicates"):
        collocate(ds, _grid(tmp_path, time=t))
    with pytest.raises(ValueError, match="bare number 3 .*'3h'"):
        collocate(ds, _grid(tmp_path), time_tolerance=3)
    zoned = np.array([str(x)[:19] + "+02:00" for x in F.hours(4)], dtype=object)
    out = _counted(ds, _grid(tmp_path, time=zoned), time_tolerance="3h")
    assert out.era5_t2m.values[0] == 1.0  # 01:00Z is within the record 22:00Z .. 01:00Z after conversion
    late = _imagettes([F.T0 + 4 * F.HOUR], [45.2], [-5.3])
    assert np.isnan(_counted(late, _grid(tmp_path, time=zoned)).era5_t2m.values[0])


def test_uninterpretable_source_is_refused_naming_what_was_found():
    src = xr.Dataset({"flag": (("x",), np.array(["a", "b"]))},
                     coords={"latitude": ("x", [0.0, 1.0]), "longitude": ("x", [0.0, 1.0])})
    with pytest.raises(ValueError, match=r"found dims \{'x': 2\}.*coordinates \['latitude', 'longitude'\].*"
                                         r"flag\('x',\).*variables="):
        collocate(_imagettes([F.T0], [0.0], [0.0]), src)


def test_every_nan_has_a_counted_reason_on_a_grid(tmp_path):
    path = _grid(tmp_path)
    with xr.open_dataset(path) as g:
        g = g.load()
    g["t2m"][:, 2, 2] = np.nan  # 'land'
    ds = _imagettes(np.array([F.T0 + F.HOUR] * 3 + [F.T0 + 30 * F.HOUR] + ["NaT"], "datetime64[ns]"),
                    [42.0, 60.0, 45.0, 45.0, 45.0], [-8.0, -5.0, -5.0, -5.0, -5.0])
    out = _counted(ds, g, method="nearest", prefix="era5")
    a = out.era5_t2m.attrs
    assert np.isnan(out.era5_t2m.values).sum() == 4
    assert (a["collocation_nan_missing_in_source"], a["collocation_nan_outside_coverage"],
            a["collocation_nan_outside_time"], a["collocation_nan_no_position"]) == (1, 1, 1, 1)


def test_eopf_products_are_imagettes_and_sources_to_collocate(tmp_path):
    """EOPF WV products resolve to their readers: SLC -> the imagettes' positions, OCN -> per-product rows."""
    from tests._eopf_factory import make_eopf_ocn, make_eopf_slc
    from tests._safe_factory import NAME, make_wv_safe
    from xwvnet.io.safe import open_safe
    from xwvnet.joins.collocation import open_imagettes

    safe, images = make_wv_safe(tmp_path, sizes=[(64, 60), (60, 64)], seed=2)
    slc = make_eopf_slc(tmp_path, NAME, images)
    opened = open_imagettes(slc)
    direct = open_safe(safe)
    assert opened.sizes[S.IMAGETTE] == 2
    np.testing.assert_allclose(opened[S.LATITUDE].values, direct[S.LATITUDE].values, atol=1e-6)
    np.testing.assert_array_equal(opened[S.TIME].values, direct[S.TIME].values)
    ocn = make_eopf_ocn(tmp_path / "ocn", NAME, images[:1], hs=[2.5])
    rows = open_imagettes(ocn)
    assert rows.sizes[S.IMAGETTE] == 1 and float(rows["hs"].values[0]) == pytest.approx(2.5)
    with pytest.warns(CollocationWarning, match="1 of 2 imagettes have no imagette_key match"):
        joined = collocate(direct, ocn, variables=["hs"], time_tolerance="1h", max_distance_km=5.0)
    (name,) = [n for n in joined.data_vars if str(n).endswith("_hs")]
    assert float(joined[name].values[0]) == pytest.approx(2.5)


def test_a_real_nws_wave_grib_joins_its_nearest_points(tmp_path):
    """cfgrib's NWS GRIB2 wind-wave height (4.5 million points): each imagette gets the value of the point nearest
    to it, found here by brute force over every point of the file (haversine)."""
    pytest.importorskip("cfgrib")
    path = F.real_file("cfgrib/ds.waveh.5.grib")
    raw = xr.open_dataset(path, engine="cfgrib", backend_kwargs={"indexpath": ""})
    lat, lon, values = raw.latitude.values, (raw.longitude.values + 180) % 360 - 180, raw.shww.values
    rng = np.random.default_rng(3)
    near = rng.choice(np.flatnonzero(np.isfinite(values)), 3, replace=False)
    where_lat, where_lon = lat[near] + 0.01, lon[near] - 0.01  # a little off the points
    ds = make_imagettes(3).assign_coords({S.TIME: (S.IMAGETTE, np.full(3, raw.valid_time.values)),
                                          S.LATITUDE: (S.IMAGETTE, where_lat), S.LONGITUDE: (S.IMAGETTE, where_lon)})
    out = collocate(ds, path, method="nearest", time_tolerance="1h", max_distance_km=10.0)
    expected = [values[np.argmin(haversine_km(np.full(lat.size, a), np.full(lat.size, b), lat, lon))]
                for a, b in zip(where_lat, where_lon)]
    np.testing.assert_array_equal(out["source_shww"].values, np.asarray(expected, np.float32))
