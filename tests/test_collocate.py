"""Collocation with gridded (ERA5) and point (WW3, OCN) sources, checked against independent computations."""

from __future__ import annotations

import warnings

import dask
import dask.array as da
import numpy as np
import pytest
import xarray as xr
from scipy.interpolate import RegularGridInterpolator

import xwvnet  # noqa: F401  (registers ds.wvnet)
from tests._factories import make_imagettes
from xwvnet import schema as S
from xwvnet.io.sources import normalise_source
from xwvnet.joins.collocation import CollocationWarning, collocate
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
    from xwvnet.io.ocn import open_ocn

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


# --------------------------------------------------------------------------- grids on xarray's own indexing


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


# --------------------------------------------------------------------------- points on a BallTree


def brute_force(lat, lon, t, p_lat, p_lon, p_time, tolerance):
    """One imagette at a time: the nearest admissible point, ties to the nearest in time then the first."""
    best = np.full(lat.size, -1)
    for i in range(lat.size):
        d = haversine_km(lat[i], lon[i], p_lat, p_lon)
        dt = np.abs(p_time - t[i])
        ok = dt <= tolerance
        if ok.any():
            d = np.where(ok, d, np.inf)
            ties = np.flatnonzero(d == d.min())
            best[i] = ties[np.argmin(dt[ties])]
    return best


@pytest.mark.parametrize("hours", [1, 6, 48])
def test_balltree_matches_brute_force_within_the_time_tolerance(hours):
    from xwvnet.joins.points import nearest_points

    rng = np.random.default_rng(hours)
    m, n = 400, 150
    p_lat, p_lon = rng.uniform(-70, 70, m), rng.uniform(-180, 180, m)
    p_lat[10:20], p_lon[10:20] = 12.5, 45.0  # one place visited ten times: ties broken by time
    p_time = np.datetime64("2023-02-01", "ns") + rng.integers(0, 72 * 60, m).astype("timedelta64[m]")
    lat, lon = rng.uniform(-70, 70, n), rng.uniform(-180, 180, n)
    lat[:5], lon[:5] = 12.5, 45.0
    t = np.datetime64("2023-02-01", "ns") + rng.integers(0, 72 * 60, n).astype("timedelta64[m]")
    tolerance = np.timedelta64(hours, "h")
    index, km = nearest_points(lat, lon, p_lat, p_lon, time=t, point_time=p_time, time_tolerance=tolerance)
    expected = brute_force(lat, lon, t, p_lat, p_lon, p_time, tolerance)
    np.testing.assert_array_equal(index, expected)
    found = index >= 0
    np.testing.assert_allclose(km[found], haversine_km(lat[found], lon[found], p_lat[index[found]],
                                                       p_lon[index[found]]), rtol=1e-12)
    assert np.isnan(km[~found]).all()


def test_balltree_without_times_and_with_missing_positions():
    from xwvnet.joins.points import nearest_points

    index, km = nearest_points(np.array([0.0, np.nan, 89.0]), np.array([179.5, 0.0, 0.0]),
                               np.array([0.0, np.nan, 0.0, 88.0]), np.array([-179.5, 0.0, 170.0, 180.0]))
    assert index.tolist() == [0, -1, 3]
    assert km[0] == pytest.approx(haversine_km(0.0, 179.5, 0.0, -179.5)) and km[0] < 112
    with pytest.raises(ValueError, match="point_time needs the imagette times"):
        nearest_points(np.zeros(1), np.zeros(1), np.zeros(1), np.zeros(1), point_time=np.zeros(1, "datetime64[ns]"))


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


# --------------------------------------------------------------------------- sources and documentation


def test_ocn_product_path_opens_as_a_point_source(data_dir):
    from xwvnet.io.sources import open_source

    path = next((data_dir / "s1_wv").glob("s1a-wv2-ocn-*.nc"), None)
    if path is None:
        pytest.skip("no OCN product in the data mirror")
    assert S.IMAGETTE in open_source(path).dims  # through open_ocn, not the raw netCDF
    near = at(make_imagettes(1, 4, 4), [-56.0], [-4.2], np.datetime64("2026-01-12T05:00", "ns"))
    out = collocate(near, path, time_tolerance="10min", max_distance_km=10, variables=["wind_speed"])
    assert out.ocn_wind_speed.values[0] == pytest.approx(6.73, abs=0.01)


def test_grib_without_cfgrib_and_bad_sources_are_explained(tmp_path, monkeypatch):
    import sys

    from xwvnet.io.sources import normalise_source, open_source

    grib = tmp_path / "era5.grib"
    grib.write_bytes(b"GRIB")
    monkeypatch.setitem(sys.modules, "cfgrib", None)
    with pytest.raises(ImportError, match="needs cfgrib and eccodes"):
        open_source(grib)
    with pytest.raises(ValueError, match="no latitude/longitude"):
        normalise_source(xr.Dataset({"x": ("y", [1.0])}))


_JOIN_MODULES = ["xwvnet.joins.collocation", "xwvnet.joins.grid", "xwvnet.joins.points", "xwvnet.joins.waves",
                 "xwvnet.io.sources"]


@pytest.mark.parametrize("module_name", _JOIN_MODULES)
def test_join_modules_have_numpydoc_docstrings_and_their_examples_run(module_name):
    import doctest
    import importlib
    import inspect

    from tests._numpydoc import documented_params, public_names, sections

    for qualname, obj in public_names(module_name):
        doc = obj.__doc__ or ""
        assert inspect.cleandoc(doc).splitlines()[0].endswith("."), f"{qualname}: no one-line summary"
        if inspect.isfunction(obj):
            assert "Returns" in sections(doc), f"{qualname}: no Returns section"
            params = set(inspect.signature(obj).parameters)
            documented = documented_params(doc)
            assert params <= documented, f"{qualname}: {sorted(params - documented)} not in Parameters"
    result = doctest.testmod(importlib.import_module(module_name), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, result


# --------------------------------------------------------------------------- the one time rule


def test_nearest_step_exact_within_outside_ties_and_nat():
    from xwvnet.joins.grid import nearest_step

    steps = np.datetime64("2020-01-01T00", "ns") + np.array([6, 0, 12], dtype="timedelta64[h]")  # unsorted on purpose
    t = np.datetime64("2020-01-01T00", "ns") + np.array(
        [360, 400, 240, 180, 540, 900, 1000, -120], dtype="timedelta64[m]").astype("timedelta64[ns]")
    t = np.append(t, np.datetime64("NaT", "ns"))
    index, within = nearest_step(steps, t, np.timedelta64(2, "h"))
    # 06:00 exact; 06:40 -> 06:00; 04:00 -> 06:00, exactly 2 h (the tolerance: within); 03:00 is a tie of 00:00 and
    # 06:00 (the earlier), 3 h from both (outside); 09:00 tie of 06:00/12:00 -> 06:00, outside; 15:00 -> 12:00,
    # 3 h after the last (outside); 16:40 too; 22:00 the day before -> 00:00, exactly 2 h; NaT: never
    np.testing.assert_array_equal(steps[index[:8]], steps[[0, 0, 0, 1, 0, 2, 2, 1]])
    assert within.tolist() == [True, True, True, False, False, False, False, True, False]
    assert index[-1] == 0
    _, any_time = nearest_step(steps, t)
    assert any_time.tolist() == [True] * 8 + [False]
    # independent: brute force over every step, ties to the earlier step
    rng = np.random.default_rng(0)
    many = np.datetime64("2020-01-01", "ns") + rng.integers(-10, 60, 500).astype("timedelta64[h]")
    many = many + (rng.integers(0, 4, 500) * 30).astype("timedelta64[m]")
    gaps = np.abs(many[:, None] - np.sort(steps)[None, :]).astype(np.int64)
    brute = np.sort(steps)[gaps.argmin(1)]  # argmin takes the first (earlier) of equal gaps
    index, within = nearest_step(steps, many, np.timedelta64(90, "m"))
    np.testing.assert_array_equal(steps[index], brute)
    np.testing.assert_array_equal(within, gaps.min(1) <= np.timedelta64(90, "m").astype("timedelta64[ns]").astype(int))


@pytest.mark.parametrize("kind", ["grid", "station output"])
def test_both_joins_take_the_nearest_step_within_tolerance_the_same_way(kind):
    from xwvnet.joins.grid import sample_grid
    from xwvnet.joins.points import sample_points

    steps = np.datetime64("2020-01-01T00", "ns") + np.array([0, 6, 12], dtype="timedelta64[h]")
    values = np.array([1.0, 2.0, 3.0])  # the value tells which step was taken
    # exact, near, at the tolerance, a tie, then 08:59 and 09:01 (each 2 h 59 min from its nearest step)
    offsets = np.array([360, 400, 240, 180, 539, 541], dtype="timedelta64[m]")
    t = (steps[0] + offsets).astype("datetime64[ns]")
    lat, lon = np.zeros(t.size), np.zeros(t.size)
    reasons: dict[str, int] = {}
    with pytest.warns(CollocationWarning, match="outside the time range"):
        if kind == "grid":
            grid = xr.Dataset({"v": (("time", "latitude", "longitude"), np.broadcast_to(values[:, None, None],
                                                                                      (3, 2, 2)).copy())},
                              coords={"time": steps, "latitude": [-1.0, 1.0], "longitude": [-1.0, 1.0]})
            out = sample_grid(grid, ["v"], t, lat, lon, method="nearest", time_tolerance=np.timedelta64(2, "h"),
                              reasons=reasons)["v"].values
        else:
            stations = xr.Dataset({"v": (("time", "station"), values[:, None])},
                                  coords={"time": steps, "latitude": ("station", [0.0]),
                                          "longitude": ("station", [0.0])})
            out = sample_points(stations, ["v"], t, lat, lon, method="nearest", max_distance_km=10,
                                time_tolerance=np.timedelta64(2, "h"), reasons=reasons)["v"].values
    # 06:00 -> 2; 06:40 -> 2; 04:00 -> 2 (exactly 2 h: within); 03:00 a tie 3 h from both: NaN;
    # 08:59 -> 2 (2 h 59 min away: outside); 09:01 -> 3 (12:00, 2 h 59 min away: outside)
    np.testing.assert_array_equal(out, [2.0, 2.0, 2.0, np.nan, np.nan, np.nan])
    assert reasons["outside_time"] == 3
    # a tie within the tolerance takes the earlier step in both joins
    tie = np.array(["2020-01-01T03"], dtype="datetime64[ns]")
    if kind == "grid":
        got = sample_grid(grid, ["v"], tie, lat[:1], lon[:1], method="nearest",
                          time_tolerance=np.timedelta64(3, "h"))["v"].values
    else:
        got = sample_points(stations, ["v"], tie, lat[:1], lon[:1], method="nearest", max_distance_km=10,
                            time_tolerance=np.timedelta64(3, "h"))["v"].values
    assert got.tolist() == [1.0]


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
