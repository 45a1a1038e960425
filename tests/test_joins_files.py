"""Joins with the files scientists hold (issue 13), each checked against an independent computation.

The files are built in their real layouts by :mod:`tests._source_files`; the references are scipy's
``RegularGridInterpolator``, closed-form Hs of analytic spectra, and brute-force nearest searches.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr
from scipy.interpolate import RegularGridInterpolator
from xarray.backends import netCDF4_

from tests import _source_files as F
from xwvnet import schema as S
from xwvnet.joins.collocation import SPACE_ONLY, CollocationWarning, collocate, collocate_to_file
from xwvnet.joins.points import haversine_km


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


def test_era5_spectra_agree_with_wavespectra(tmp_path):
    wavespectra = pytest.importorskip("wavespectra")
    from xwvnet.joins.waves import decode_era5_spectrum, wave_parameters

    path = tmp_path / "era5_2d_wave_spectra.nc"
    F.era5_spectra(path)
    ours = wave_parameters(decode_era5_spectrum(xr.open_dataset(path)).efth).hs.isel(latitude=slice(1, None))
    theirs = wavespectra.read_era5(str(path)).spec.hs(tail=False).isel(lat=slice(1, None))
    np.testing.assert_allclose(ours.values, theirs.values, rtol=0.01)


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
