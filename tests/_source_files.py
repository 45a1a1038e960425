"""Small source files in the layouts scientists hold, written for the join tests, and the real public files of
those layouts (registered in :mod:`xwvnet.datasets`) where they can be had.

Each writer builds a file (or folder) in the real layout, with values known in closed form where a test compares
with an independent computation: analytic wave spectra (Hs = 4 sqrt(a sigma sqrt(2 pi))), smooth fields for
scipy's ``RegularGridInterpolator``, stations and tracks for a brute-force nearest search.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from xwvnet.datasets import DataUnavailableError, fetch


def real_file(key: str) -> Path:
    """The registered real file ``key`` (from the data mirror, the cache or the internet), or a skip saying why not."""
    try:
        return fetch(key)
    except DataUnavailableError as err:
        pytest.skip(f"real file {key} not available here: {str(err).splitlines()[0][:160]}")


T0 = np.datetime64("2023-02-01T00", "ns")
HOUR = np.timedelta64(1, "h")


def hours(n: int, start: np.datetime64 = T0, step: int = 1) -> np.ndarray:
    """``n`` datetime64[ns] steps of ``step`` hours from ``start``."""
    return (start + np.arange(n) * step * HOUR).astype("datetime64[ns]")


# --- analytic spectra -----------------------------------------------------------------------------------------------
def analytic_spectrum(f: np.ndarray, theta_deg: np.ndarray, a: float, fp: float, sigma: float,
                      theta0: float) -> np.ndarray:
    """E(f, theta) = a exp(-(f - fp)^2 / 2 sigma^2) cos^2((theta - theta0) / 2) / pi, per Hz per radian.

    The directional part integrates to 1 over the circle, so m0 = a sigma sqrt(2 pi) when the peak is inside the
    frequency range, and Hs = 4 sqrt(m0); the mean direction is theta0, the peak period about 1 / fp.
    """
    s_f = a * np.exp(-((f[:, None] - fp) ** 2) / (2 * sigma**2))
    d = np.cos(np.deg2rad(theta_deg[None, :] - theta0) / 2) ** 2 / np.pi
    return s_f * d


def analytic_hs(a: float, sigma: float) -> float:
    """The exact Hs of :func:`analytic_spectrum`."""
    return 4 * np.sqrt(a * sigma * np.sqrt(2 * np.pi))


WW3_FREQUENCY = 0.0418 * 1.1 ** np.arange(36)
WW3_DIRECTION = np.mod(90.0 - 15.0 * np.arange(24), 360.0)  # WW3 stores directions in its own (unordered) order


def ww3_stations(path: Path, *, moving: bool = False, station_dim: str = "station") -> dict:
    """WAVEWATCH III spectral point output: ``efth(time, station, frequency, direction)``, ``latitude(time, station)``.

    Returns the truth: station positions (per time when ``moving``), times and the analytic parameters.
    """
    t = hours(7, step=3)
    lat0 = np.array([-40.0, -35.0, 10.0, 55.0])
    lon0 = np.array([175.0, -179.5, 150.0, -20.0])
    ns = lat0.size
    lat = np.repeat(lat0[None], t.size, 0) + (0.5 * np.arange(t.size)[:, None] if moving else 0.0)
    lon = np.repeat(lon0[None], t.size, 0)
    a = 1.0 + 0.25 * np.arange(ns)[None, :] + 0.1 * np.arange(t.size)[:, None]
    fp = np.array([0.08, 0.1, 0.12, 0.09])
    theta0 = np.array([30.0, 120.0, 250.0, 330.0])
    efth = np.empty((t.size, ns, WW3_FREQUENCY.size, WW3_DIRECTION.size), dtype=np.float32)
    for i in range(t.size):
        for j in range(ns):
            efth[i, j] = analytic_spectrum(WW3_FREQUENCY, WW3_DIRECTION, a[i, j], fp[j], 0.015, theta0[j])
    ds = xr.Dataset(
        {
            "efth": (("time", station_dim, "frequency", "direction"), efth,
                     {"long_name": "sea surface wave directional variance spectral density", "units": "m2 s rad-1",
                      "standard_name": "sea_surface_wave_directional_variance_spectral_density"}),
            "latitude": (("time", station_dim), lat.astype(np.float32), {"units": "degree_north"}),
            "longitude": (("time", station_dim), lon.astype(np.float32), {"units": "degree_east"}),
            "station_name": ((station_dim, "string16"), np.full((ns, 16), b" ", dtype="S1")),
            "dpt": (("time", station_dim), np.full((t.size, ns), 3000.0, np.float32), {"units": "m"}),
        },
        coords={"time": t, station_dim: np.arange(ns),
                "frequency": ("frequency", WW3_FREQUENCY.astype(np.float32), {"units": "s-1"}),
                "direction": ("direction", WW3_DIRECTION.astype(np.float32),
                              {"units": "degree", "standard_name": "sea_surface_wave_to_direction"})},
        attrs={"product_name": "ww3.202302_spec.nc", "title": "WAVEWATCH III SPECTRA"},
    )
    ds.to_netcdf(path, encoding={"efth": {"_FillValue": np.float32(9.96921e36)}})
    return {"time": t, "latitude": lat, "longitude": lon, "a": a, "sigma": 0.015, "fp": fp, "theta0": theta0}


def smooth_field(t: np.ndarray, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """A smooth (non-linear) field on a (time, lat, lon) grid, for interpolation tests."""
    h = (t - t[0]) / HOUR
    return (280 + 5 * np.sin(np.deg2rad(lat))[None, :, None] * np.cos(np.deg2rad(2 * lon))[None, None, :]
            + 0.3 * h[:, None, None] + 0.01 * lat[None, :, None] * lon[None, None, :] / 10)


def ww3_grid(path: Path) -> xr.Dataset:
    """WAVEWATCH III gridded output: ``hs(time, latitude, longitude)``, 0.5 degree, regional, NaN on 'land'."""
    t = hours(8, step=3)
    lat = np.arange(-50.0, -29.9, 0.5)
    lon = np.arange(160.0, 190.1, 0.5)
    hs = (2 + 0.1 * (smooth_field(t, lat, lon) - 280)).astype(np.float32)
    hs[:, -3:, -3:] = np.nan
    ds = xr.Dataset({"hs": (("time", "latitude", "longitude"), hs,
                            {"units": "m", "long_name": "significant height of wind and swell waves",
                             "standard_name": "sea_surface_wave_significant_height"})},
                    coords={"time": t, "latitude": ("latitude", lat, {"units": "degree_north"}),
                            "longitude": ("longitude", lon, {"units": "degree_east"})},
                    attrs={"title": "WAVEWATCH III GRIDDED OUTPUT"})
    ds.to_netcdf(path, encoding={"hs": {"_FillValue": np.float32(-999.0)}})
    return ds


def _packed(values: np.ndarray) -> dict:
    low, high = float(np.nanmin(values)), float(np.nanmax(values))
    scale = (high - low) / (2**16 - 2)
    return {"dtype": "int16", "scale_factor": scale, "add_offset": (high + low) / 2, "_FillValue": np.int16(-32767)}


def era5_single(path: Path, *, layout: str = "old", packed: bool = True, ntime: int = 12,
                start: np.datetime64 = T0, resolution: float = 0.25,
                box: tuple[float, float, float, float] = (40.0, 60.0, 330.0, 360.0)) -> xr.Dataset:
    """ERA5 single-level netCDF: ``t2m`` and ``u10`` on a descending-latitude, 0..360 grid.

    ``layout="old"``: ``time`` and packed int16 (the old CDS); ``"new"``: ``valid_time``, ``expver`` (strings
    along time, ERA5T at the end) and ``number`` (the new CDS); ``"expver-dim"``: an ``expver`` dimension of 2,
    final release then ERA5T, each NaN where the other has values. Returns the decoded truth (the values as read).
    """
    t = hours(ntime, start=start)
    lat = np.arange(box[1], box[0] - resolution / 10, -resolution)
    lon = np.arange(box[2], box[3] - resolution / 10, resolution)
    t2m = smooth_field(t, lat, lon).astype(np.float32)
    u10 = (np.cos(np.deg2rad(lat))[None, :, None] * 10 + np.zeros((t.size, 1, lon.size))).astype(np.float32)
    attrs = {"t2m": {"units": "K", "long_name": "2 metre temperature"},
             "u10": {"units": "m s**-1", "long_name": "10 metre U wind component"}}
    coords = {"latitude": ("latitude", lat, {"units": "degrees_north", "long_name": "latitude"}),
              "longitude": ("longitude", lon, {"units": "degrees_east", "long_name": "longitude"})}
    if layout == "old":
        ds = xr.Dataset({k: (("time", "latitude", "longitude"), v, attrs[k]) for k, v in (("t2m", t2m), ("u10", u10))},
                        coords={"time": t, **coords}, attrs={"Conventions": "CF-1.6"})
    elif layout == "new":
        expver = np.array(["0001"] * (t.size - 2) + ["0005"] * 2)
        ds = xr.Dataset({k: (("valid_time", "latitude", "longitude"), v, attrs[k])
                         for k, v in (("t2m", t2m), ("u10", u10))},
                        coords={"valid_time": t, "number": 0, "expver": ("valid_time", expver), **coords},
                        attrs={"GRIB_centre": "ecmf", "Conventions": "CF-1.7", "institution": "ECMWF"})
        for k in ds.data_vars:
            ds[k].attrs.update({"GRIB_paramId": 167, "GRIB_shortName": "2t", "GRIB_units": "K"})
    elif layout == "expver-dim":
        final = np.where((np.arange(t.size) < t.size - 2)[:, None, None], t2m, np.nan)
        prelim = np.where((np.arange(t.size) >= t.size - 2)[:, None, None], t2m, np.nan)
        ds = xr.Dataset({"t2m": (("time", "expver", "latitude", "longitude"), np.stack([final, prelim], 1),
                                 attrs["t2m"])}, coords={"time": t, "expver": [1, 5], **coords})
    else:
        raise ValueError(layout)
    encoding = {k: _packed(ds[k].values) for k in ds.data_vars} if packed else {}
    ds.to_netcdf(path, encoding=encoding)
    with xr.open_dataset(path) as back:
        return back.load()


def era5_spectra(path: Path) -> dict:
    """ERA5 2-D wave spectra as MARS netCDF writes them: ``d2fd(time, latitude, longitude, frequency, direction)``,
    log10 of the density, frequency 1..30 and direction 1..24 as bin numbers; one land cell (NaN)."""
    t = hours(4, step=6)
    lat = np.array([45.0, 44.5, 44.0])
    lon = np.array([350.0, 350.5, 351.0, 351.5])
    f = 0.03453 * 1.1 ** np.arange(30)
    theta = 7.5 + 15.0 * np.arange(24)
    a = 0.5 + 0.2 * np.arange(t.size)[:, None, None] + 0.1 * np.arange(lat.size)[None, :, None] + 0.05 * np.arange(
        lon.size)[None, None, :]
    e = np.empty((t.size, lat.size, lon.size, 30, 24))
    for idx in np.ndindex(a.shape):
        e[idx] = analytic_spectrum(f, theta, a[idx], 0.1, 0.012, 200.0)
    d2fd = np.log10(np.maximum(e, 1e-30))
    d2fd[:, 0, 0] = np.nan
    ds = xr.Dataset({"d2fd": (("time", "latitude", "longitude", "frequency", "direction"), d2fd.astype(np.float32),
                              {"units": "m**2 s radian**-1", "long_name": "2D wave spectra (single)"})},
                    coords={"time": t, "latitude": lat, "longitude": lon,
                            "frequency": ("frequency", np.arange(1, 31, dtype=np.int32)),
                            "direction": ("direction", np.arange(1, 25, dtype=np.int32))})
    ds.to_netcdf(path)
    return {"time": t, "latitude": lat, "longitude": lon, "a": a, "sigma": 0.012, "land": (0, 0)}


def era5_pressure_levels(path: Path, *, level_name: str = "level") -> xr.Dataset:
    """ERA5 pressure-level netCDF: ``t(time, level, latitude, longitude)`` (``pressure_level`` in the new CDS)."""
    t = hours(6)
    levels = np.array([1000, 925, 850, 500], dtype=np.int32)
    lat = np.arange(60.0, 39.9, -0.5)
    lon = np.arange(-30.0, 0.1, 0.5)
    base = smooth_field(t, lat, lon)
    temp = (base[:, None] - 0.0065 * (1000 - levels)[None, :, None, None] * 10).astype(np.float32)
    time_name = "valid_time" if level_name == "pressure_level" else "time"
    ds = xr.Dataset({"t": ((time_name, level_name, "latitude", "longitude"), temp,
                           {"units": "K", "long_name": "Temperature", "standard_name": "air_temperature"})},
                    coords={time_name: t, level_name: (level_name, levels, {"units": "millibars"}),
                            "latitude": lat, "longitude": lon})
    ds.to_netcdf(path)
    with xr.open_dataset(path) as back:
        return back.load()


def climatology(path: Path) -> xr.Dataset:
    """A climatology and a mask without time: ``sst_clim(lat, lon)`` and ``basin(lat, lon)`` int8 codes."""
    lat = np.arange(-89.5, 90.0, 1.0)
    lon = np.arange(0.5, 360.0, 1.0)
    sst = (300 - 30 * np.abs(np.sin(np.deg2rad(lat))))[:, None] + 0.01 * lon[None, :]
    basin = np.where(lon[None, :] < 180, 1, 2) + np.where(lat[:, None] < -50, 9, 0)
    ds = xr.Dataset({"sst_clim": (("lat", "lon"), sst.astype(np.float32), {"units": "K"}),
                     "basin": (("lat", "lon"), basin.astype(np.int8), {"long_name": "basin code"})},
                    coords={"lat": ("lat", lat, {"units": "degrees_north"}),
                            "lon": ("lon", lon, {"units": "degrees_east"})})
    ds.to_netcdf(path)
    return ds


def altimeter_track(path: Path) -> xr.Dataset:
    """A CMEMS L3 along-track altimeter file: ``time`` dimension, ``latitude(time)``, ``longitude(time)``, ``VAVH``."""
    n = 600
    t = (T0 + np.arange(n) * np.timedelta64(1, "s")).astype("datetime64[ns]")
    lat = -60 + 0.06 * np.arange(n)
    lon = 10 + 0.02 * np.arange(n)
    ds = xr.Dataset({"VAVH": ("time", (2 + np.sin(np.arange(n) / 50)).astype(np.float32),
                              {"units": "m", "long_name": "Significant wave height Ku band",
                               "standard_name": "sea_surface_wave_significant_height"}),
                     "WIND_SPEED": ("time", np.full(n, 7.0, np.float32), {"units": "m s-1"})},
                    coords={"time": t, "latitude": ("time", lat, {"units": "degrees_north"}),
                            "longitude": ("time", lon, {"units": "degrees_east"})},
                    attrs={"title": "Global Ocean Along track Significant Wave Height L3"})
    ds.to_netcdf(path)
    return ds


def insitu_buoys(path: Path) -> xr.Dataset:
    """CMEMS INSITU / NDBC style buoys: ``VHM0(STATION, TIME)`` with ``LATITUDE(STATION)``, ``LONGITUDE(STATION)``."""
    t = (T0 + np.arange(48) * np.timedelta64(30, "m")).astype("datetime64[ns]")
    lat = np.array([47.3, 48.7, 43.5, 36.1, 60.0])
    lon = np.array([-8.5, -5.0, -2.0, -74.8, 2.0])
    vhm0 = 1.0 + 0.1 * np.arange(lat.size)[:, None] + 0.02 * np.arange(t.size)[None, :]
    ds = xr.Dataset({"VHM0": (("STATION", "TIME"), vhm0.astype(np.float32),
                              {"units": "m", "long_name": "Spectral significant wave height (Hm0)",
                               "standard_name": "sea_surface_wave_significant_height"})},
                    coords={"TIME": ("TIME", t, {"standard_name": "time"}),
                            "LATITUDE": ("STATION", lat, {"units": "degrees_north"}),
                            "LONGITUDE": ("STATION", lon, {"units": "degrees_east"}),
                            "STATION": ("STATION", np.array(["62001", "62163", "6200024", "41025", "LF5U"]))})
    ds.to_netcdf(path)
    return ds


def curvilinear(path: Path) -> xr.Dataset:
    """A regional wave model on a rotated grid: ``hs(time, y, x)`` with ``latitude(y, x)``, ``longitude(y, x)``."""
    t = hours(4, step=3)
    y, x = np.arange(30), np.arange(40)
    yy, xx = np.meshgrid(y, x, indexing="ij")
    angle = np.deg2rad(30.0)
    lat = 40 + 0.1 * (yy * np.cos(angle) + xx * np.sin(angle))
    lon = -10 + 0.1 * (xx * np.cos(angle) - yy * np.sin(angle)) / np.cos(np.deg2rad(lat))
    hs = (1 + 0.01 * np.arange(t.size)[:, None, None] + 0.02 * yy[None] + 0.03 * xx[None]).astype(np.float32)
    ds = xr.Dataset({"hs": (("time", "y", "x"), hs, {"units": "m", "long_name": "significant wave height"})},
                    coords={"time": t, "latitude": (("y", "x"), lat, {"units": "degrees_north"}),
                            "longitude": (("y", "x"), lon, {"units": "degrees_east"})})
    ds.to_netcdf(path)
    return ds


def monthly_folder(folder: Path, months: int = 3, year: int = 2023,
                   box: tuple[float, float, float, float] = (40.0, 60.0, 330.0, 360.0)) -> list[Path]:
    """A folder of monthly hourly ERA5 files (old layout), ``era5_t2m_<year>-<month>.nc``, 2-degree grid."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for m in range(months):
        start = np.datetime64(f"{year}-{m + 1:02d}-01T00", "ns")
        end = np.datetime64(f"{year}-{m + 2:02d}-01T00", "ns") if m < 11 else np.datetime64(f"{year + 1}-01-01T00",
                                                                                               "ns")
        n = int((end - start) / HOUR)
        path = folder / f"era5_t2m_{year}-{m + 1:02d}.nc"
        era5_single(path, layout="old", packed=False, ntime=n, start=start, resolution=2.0, box=box)
        paths.append(path)
    return paths


# --- issue 20: layouts written by other tools (from their public format descriptions) -------------------------------
NDBC_FREQUENCY = np.round(np.r_[0.02, np.arange(0.0325, 0.0999, 0.005), np.arange(0.10, 0.3499, 0.01),
                                np.arange(0.365, 0.4851, 0.02)], 4)


def ndbc_swden(path: Path, *, lat: float = 46.1, lon: float = -124.5) -> dict:
    """NDBC THREDDS ``<id>w9999.nc``: ``spectral_wave_density(time, frequency, latitude, longitude)`` on a 1 x 1
    grid at the buoy (m2/Hz, hourly), with the direction moments on the same dims, as the NDBC DODS files give."""
    t = hours(6)
    a = 1.0 + 0.2 * np.arange(t.size)
    fp, sigma = 0.1, 0.02
    ef = a[:, None] * np.exp(-((NDBC_FREQUENCY[None, :] - fp) ** 2) / (2 * sigma**2))
    ef = ef[:, :, None, None].astype(np.float32)
    fill = np.float32(999.0)
    ds = xr.Dataset(
        {"spectral_wave_density": (("time", "frequency", "latitude", "longitude"), ef,
                                   {"long_name": "Spectral Wave Density", "units": "(meter * meter)/Hz"}),
         "mean_wave_dir": (("time", "frequency", "latitude", "longitude"), np.full(ef.shape, 270.0, np.float32),
                           {"units": "degrees_true"}),
         "wave_spectrum_r1": (("time", "frequency", "latitude", "longitude"), np.full(ef.shape, 0.5, np.float32))},
        coords={"time": ("time", t, {"long_name": "Epoch Time"}),
                "frequency": ("frequency", NDBC_FREQUENCY.astype(np.float32), {"units": "Hz"}),
                "latitude": ("latitude", np.array([lat], np.float32), {"units": "degree_north"}),
                "longitude": ("longitude", np.array([lon], np.float32), {"units": "degree_east"})},
        attrs={"institution": "NOAA National Data Buoy Center", "station": "46089"},
    )
    ds.to_netcdf(path, encoding={v: {"_FillValue": fill} for v in ds.data_vars})
    return {"time": t, "a": a, "sigma": sigma, "fp": fp, "lat": lat, "lon": lon}


def ndbc_stdmet(path: Path, *, lat: float = 46.1, lon: float = -124.5) -> dict:
    """NDBC THREDDS ``<id>h9999.nc``: ``wave_height(time, latitude, longitude)`` and alike on a 1 x 1 grid, with
    NDBC's fill value (99.0) where the buoy reported nothing."""
    t = hours(6)
    hs = (1.5 + 0.1 * np.arange(t.size)).astype(np.float32)
    hs[3] = 99.0
    ds = xr.Dataset(
        {"wave_height": (("time", "latitude", "longitude"), hs[:, None, None],
                         {"long_name": "Significant Wave Height", "units": "m"}),
         "wind_spd": (("time", "latitude", "longitude"), np.full((t.size, 1, 1), 7.5, np.float32), {"units": "m/s"})},
        coords={"time": t, "latitude": ("latitude", np.array([lat], np.float32)),
                "longitude": ("longitude", np.array([lon], np.float32))},
    )
    ds.to_netcdf(path, encoding={"wave_height": {"_FillValue": np.float32(99.0)},
                                 "wind_spd": {"_FillValue": np.float32(99.0)}})
    return {"time": t, "hs": hs}


def wavespectra_zarr(path: Path) -> dict:
    """WW3 station spectra as wavespectra writes them to Zarr: ``efth(time, site, freq, dir)`` per degree,
    ``lat(site)``, ``lon(site)``, chunked by time."""
    t = hours(8, step=3)
    lat = np.array([-40.0, 10.0, 55.0])
    lon = np.array([175.0, 150.0, -20.0])
    a = 1.0 + 0.3 * np.arange(lat.size)[None, :] + 0.05 * np.arange(t.size)[:, None]
    theta = np.arange(0.0, 360.0, 15.0)
    efth = np.empty((t.size, lat.size, WW3_FREQUENCY.size, theta.size), np.float32)
    for i in range(t.size):
        for j in range(lat.size):
            efth[i, j] = analytic_spectrum(WW3_FREQUENCY, theta, a[i, j], 0.1, 0.015, 90.0) * np.pi / 180
    attrs = {"units": "m2 s deg-1", "standard_name": "sea_surface_wave_directional_variance_spectral_density"}
    ds = xr.Dataset({"efth": (("time", "site", "freq", "dir"), efth, attrs),
                     "lat": ("site", lat, {"units": "degrees_north", "standard_name": "latitude"}),
                     "lon": ("site", lon, {"units": "degrees_east", "standard_name": "longitude"})},
                    coords={"time": t, "site": np.arange(lat.size), "freq": WW3_FREQUENCY, "dir": theta})
    ds.chunk({"time": 2}).to_zarr(path, mode="w", consolidated=False)
    return {"time": t, "lat": lat, "lon": lon, "a": a, "sigma": 0.015}


def wwm_stations(path: Path) -> dict:
    """WWM-III station output: ``HS(ocean_time, nbstation)``, ``lon(nbstation)``, ``lat(nbstation)``."""
    t = hours(5)
    lat, lon = np.array([43.0, 44.5, 45.2]), np.array([-2.0, -1.5, -3.1])
    hs = 1.0 + 0.1 * np.arange(t.size)[:, None] + 0.5 * np.arange(lat.size)[None, :]
    ds = xr.Dataset({"HS": (("ocean_time", "nbstation"), hs.astype(np.float32), {"units": "m"}),
                     "lon": ("nbstation", lon, {"units": "degrees_east"}),
                     "lat": ("nbstation", lat, {"units": "degrees_north"})},
                    coords={"ocean_time": t}, attrs={"title": "WWM station output"})
    ds.to_netcdf(path)
    return {"time": t, "lat": lat, "lon": lon, "hs": hs}


def cci_l2p(path: Path, start: np.datetime64 = T0) -> dict:
    """ESA CCI Sea State L2P along-track (1 Hz or 20 Hz): ``swh(time)`` with ``swh_quality`` (0 undefined, 1 bad,
    2 acceptable, 3 good) named in ``ancillary_variables``, ``lat(time)``, ``lon(time)``."""
    n = 400
    t = (start + np.arange(n) * np.timedelta64(50, "ms")).astype("datetime64[ns]")  # 20 Hz
    lat, lon = 30 + 0.0003 * np.arange(n), -40 + 0.0001 * np.arange(n)
    swh = (2 + 0.001 * np.arange(n)).astype(np.float32)
    quality = np.full(n, 3, np.int8)
    quality[100:150] = 1
    ds = xr.Dataset({"swh": ("time", swh, {"units": "m", "standard_name": "sea_surface_wave_significant_height",
                                            "ancillary_variables": "swh_quality"}),
                     "swh_quality": ("time", quality, {"flag_values": np.array([0, 1, 2, 3], np.int8),
                                                        "flag_meanings": "undefined bad acceptable good"})},
                    coords={"time": t, "lat": ("time", lat, {"standard_name": "latitude"}),
                            "lon": ("time", lon, {"standard_name": "longitude"})},
                    attrs={"title": "ESA CCI Sea State L2P"})
    ds.to_netcdf(path)
    return {"time": t, "lat": lat, "lon": lon, "swh": swh, "quality": quality}


def cfosat_nadir(path: Path) -> dict:
    """CFOSAT SWIM L2P nadir Hs: samples along ``n_nadir`` with ``time_nadir_l2``, ``lat_nadir_l2``,
    ``lon_nadir_l2`` (CF standard names) and ``nadir_swh_1Hz``."""
    n = 300
    t = (T0 + np.arange(n) * np.timedelta64(1, "s")).astype("datetime64[ns]")
    lat, lon = -20 + 0.06 * np.arange(n), 60 + 0.01 * np.arange(n)
    swh = (3 + np.cos(np.arange(n) / 30)).astype(np.float32)
    ds = xr.Dataset({"nadir_swh_1Hz": ("n_nadir", swh, {"units": "m"}),
                     "time_nadir_l2": ("n_nadir", t, {"standard_name": "time"}),
                     "lat_nadir_l2": ("n_nadir", lat, {"standard_name": "latitude", "units": "degrees_north"}),
                     "lon_nadir_l2": ("n_nadir", lon, {"standard_name": "longitude", "units": "degrees_east"})},
                    attrs={"title": "CFOSAT SWIM L2P nadir"})
    ds.to_netcdf(path)
    return {"time": t, "lat": lat, "lon": lon, "swh": swh}


def ocn_without_total_hs(real: Path, folder: Path, *, drop_partitions: bool = False) -> Path:
    """An L2 OCN WV1 product as IPF 3.31 and earlier wrote them: the real product without ``oswTotalHs``
    (and, with ``drop_partitions``, without ``oswHs``/``oswWindSeaHs``: the polar spectrum only)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "s1b-wv1-ocn-vv-20210403t083025-20210403t083028-026300-032390-001.nc"
    with xr.open_dataset(real, decode_times=False) as ds:
        drop = ["oswTotalHs", "oswTotalHsStdev"] + (["oswHs", "oswWindSeaHs"] if drop_partitions else [])
        ds.drop_vars(drop).assign_attrs(IPFversion="003.31").to_netcdf(path)
    return path
