"""Joins and readers on the files other tools and agencies write (issue 20), each against an independent computation.

Real files from the mirror: one CMEMS In Situ TAC daily platform file and eight CMEMS L3 Sentinel-3B altimeter
files; the other families are built in their published layouts by :mod:`tests._source_files`. References: Hs by
direct integration of the spectrum (or its closed form), nearest samples by brute force over every sample.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from tests import _source_files as F
from xwvnet import schema as S
from xwvnet.datasets import fetch
from xwvnet.io.ocn import MAX_PARTITION_QUALITY, open_ocn
from xwvnet.joins.collocation import CollocationWarning, collocate, count_missing
from xwvnet.joins.points import haversine_km

INSITU = "insitu/AR_TS_MO_A-Sulafjorden_20230820.nc"
ALTIMETER = [f"altimeter/global_vavh_l3_rt_s3b_20220201T{a}_2022020{d}T{b}_20220630T{c}.nc" for a, d, b, c in [
    ("000000", "1", "030000", "215237"), ("030000", "1", "060000", "214527"), ("060000", "1", "090000", "214537"),
    ("090000", "1", "120000", "214910"), ("120000", "1", "150000", "215128"), ("150000", "1", "180000", "215045"),
    ("180000", "1", "210000", "215105"), ("210000", "2", "000000", "215305")]]
OCN = "s1_wv/s1a-wv2-ocn-vv-20260112t045817-20260112t045820-062729-07ddb1-036.nc"


def _imagettes(time, lat, lon) -> xr.Dataset:
    n = len(lat)
    time = np.broadcast_to(np.asarray(time, dtype="datetime64[ns]"), (n,))
    return xr.Dataset(coords={S.IMAGETTE: [f"i{i}" for i in range(n)], S.TIME: (S.IMAGETTE, time),
                              S.LATITUDE: (S.IMAGETTE, np.asarray(lat, float)),
                              S.LONGITUDE: (S.IMAGETTE, np.asarray(lon, float))})


def _quiet(*args, **kwargs) -> xr.Dataset:
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
    out = _quiet(ds, path, variables=["VGHS", "TEMP", "WSPD"], time_tolerance="30min", max_distance_km=20,
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
    kept = _quiet(ds, path, variables="WSPD", time_tolerance="30min", max_distance_km=20, quality_flags=(0, 1, 2))
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
    at20 = _quiet(ds, path, variables="TEMP", depth=20, time_tolerance="1min")
    assert at20.source_TEMP.values[0] == temp[ok & (np.abs(deph - 20) <= 1)][0]
    top = _quiet(ds, path, variables="TEMP", time_tolerance="1min")
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
    many = _quiet(ds2, folder, variables="TEMP", time_tolerance="1min", max_distance_km=5)
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
    out = _quiet(_imagettes(t, lat, lon), folder, variables="VAVH", time_tolerance="30min", max_distance_km=60)
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
    out = _quiet(_imagettes(t, [truth["lat"] + 0.1] * 2, [truth["lon"]] * 2), path, time_tolerance="1h",
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
    out = _quiet(_imagettes(t, [46.0] * 3, [-124.4] * 3), path, time_tolerance="1h", max_distance_km=50,
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
    out = _quiet(_imagettes(t, [44.4], [-1.6]), path, time_tolerance="1h", max_distance_km=50, prefix="wwm")
    assert out.wwm_HS.values[0] == pytest.approx(truth["hs"][1:3, 1].mean(), rel=1e-6)


# --- along-track: CCI Sea State, CFOSAT SWIM -------------------------------------------------------------------------
def test_cci_l2p_quality_flag_honoured_and_counted(tmp_path):
    path = tmp_path / "ESACCI-SEASTATE-L2P-SWH-Jason-3-20230201.nc"
    truth = F.cci_l2p(path)
    pick = np.array([20, 120, 300])  # 120 is flagged bad, its good neighbours are 30 samples (1.5 s) away
    ds = _imagettes(truth["time"][pick], truth["lat"][pick], truth["lon"][pick])
    out = _quiet(ds, path, variables="swh", time_tolerance="1s", max_distance_km=5, prefix="cci")
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
    out = _quiet(_imagettes(truth["time"][pick], lat, lon), path, time_tolerance="10min", max_distance_km=30)
    idx = _brute_nearest(lat, lon, truth["time"][pick], truth["lat"], truth["lon"], truth["time"],
                         np.timedelta64(10, "m"), np.ones(truth["lat"].size, bool))
    assert out.source_nadir_swh_1Hz.values.tolist() == truth["swh"][idx].tolist()


# --- L2 OCN of any IPF -----------------------------------------------------------------------------------------------
def test_ocn_before_total_hs_from_partitions_within_15_percent(tmp_path):
    real = fetch(OCN)
    path = F.ocn_without_total_hs(real, tmp_path / "old")
    ds = open_ocn(path)
    with xr.open_dataset(real) as r:
        parts = r.oswHs.values.ravel()
        quality = r.oswQualityFlagPartition.values.ravel()
        windsea = float(r.oswWindSeaHs.values.ravel()[0])
        total = float(r.oswTotalHs.values.ravel()[0])
    keep = np.isfinite(parts) & (quality <= MAX_PARTITION_QUALITY)
    expected = np.sqrt(np.sum(parts[keep] ** 2) + windsea**2)
    assert float(ds.hs[0]) == pytest.approx(expected, rel=1e-6)
    assert float(ds.hs[0]) == pytest.approx(total, rel=0.15)
    assert ds.hs_method.values.tolist() == ["partitions"] and "partitions" in ds.hs.attrs["hs_method"]
    assert str(ds.swath.values[0]) == "wv1"
    new = open_ocn(real)
    assert new.hs_method.values.tolist() == ["oswTotalHs"] and new.hs.attrs["source_name"] == "oswTotalHs"


def test_ocn_polar_spectrum_only_by_direct_integration(tmp_path):
    real = fetch(OCN)
    path = F.ocn_without_total_hs(real, tmp_path / "polar", drop_partitions=True)
    ds = open_ocn(path)
    with xr.open_dataset(real) as r:
        spec = r.oswPolSpec.values[0, 0].astype(float)  # (phi, k)
        k = r.oswK.values.astype(float)
    edges = np.sqrt(k[:-1] * k[1:])  # a log grid: bin edges at geometric midpoints, the ends extended alike
    edges = np.r_[k[0] ** 2 / edges[0], edges, k[-1] ** 2 / edges[-1]]
    m0 = np.nansum(spec * (k * np.diff(edges))[None, :]) * 2 * np.pi / spec.shape[0]
    assert ds.hs_method.values.tolist() == ["polar_spectrum"]
    assert float(ds.hs[0]) == pytest.approx(4 * np.sqrt(m0), rel=0.01)


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
    out = _quiet(ds, _grid(tmp_path, time=zoned), time_tolerance="3h")
    assert out.era5_t2m.values[0] == 1.0  # 01:00Z is within the record 22:00Z .. 01:00Z after conversion
    late = _imagettes([F.T0 + 4 * F.HOUR], [45.2], [-5.3])
    assert np.isnan(_quiet(late, _grid(tmp_path, time=zoned)).era5_t2m.values[0])


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
    out = _quiet(ds, g, method="nearest", prefix="era5")
    a = out.era5_t2m.attrs
    assert np.isnan(out.era5_t2m.values).sum() == 4
    assert (a["collocation_nan_missing_in_source"], a["collocation_nan_outside_coverage"],
            a["collocation_nan_outside_time"], a["collocation_nan_no_position"]) == (1, 1, 1, 1)
