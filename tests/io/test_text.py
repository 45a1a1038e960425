"""Text and GRIB files wave scientists exchange (xwvnet.io.text and the input door), each joined through collocate.

Synthetic files are written here in each format and checked against independent computations (the spectrum
written here integrated with the trapezoid rule, brute-force nearest stations); real files from the test suites of
wavespectra and modelskill (through xwvnet.datasets.fetch; skipped when not available) are checked against values
read from the file itself with a parser written here.
"""

from __future__ import annotations

import gzip
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from scipy.interpolate import RegularGridInterpolator

import xwvnet  # noqa: F401  (registers ds.wvnet)
from tests._factories import make_imagettes
from tests._numpydoc import check_numpydoc
from tests._source_files import real_file
from xwvnet import schema as S
from xwvnet.errors import InvalidArgumentError, InvalidFileError, XWVNetError, XWVNetWarning
from xwvnet.io import text as T
from xwvnet.io.sources import TEXT, resolve
from xwvnet.joins.collocation import collocate
from xwvnet.joins.points import haversine_km

STATION = (28.9, -78.5)


def _imagettes(times, lat, lon) -> xr.Dataset:
    times = np.asarray(times, dtype="datetime64[ns]")
    n = times.size
    ds = make_imagettes(n, lines=4, samples=4)
    return ds.assign_coords(
        {
            S.TIME: (S.IMAGETTE, times),
            S.LATITUDE: (S.IMAGETTE, np.broadcast_to(np.asarray(lat, float), (n,)).copy()),
            S.LONGITUDE: (S.IMAGETTE, np.broadcast_to(np.asarray(lon, float), (n,)).copy()),
        }
    )


def _quiet(func, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return func(*args, **kwargs)


def _trapz_hs(e: np.ndarray, f: np.ndarray) -> float:
    """The independent reference: Hs = 4 sqrt(integral of E(f) df), trapezoid rule."""
    return 4 * np.sqrt(np.trapezoid(e, f))


def _gauss(f: np.ndarray, fp: float, hs: float, width: float = 0.02) -> np.ndarray:
    """E(f) in m^2/Hz: a Gaussian peak at fp holding hs^2/16."""
    shape = np.exp(-0.5 * ((f - fp) / width) ** 2)
    return shape / np.trapezoid(shape, f) * hs**2 / 16


def _one_line(err: pytest.ExceptionInfo, *parts: str) -> None:
    message = str(err.value)
    assert "\n" not in message, message
    for part in parts:
        assert part in message, (part, message)


# ---- NDBC standard meteorological --------------------------------------------------------------------------------
STDMET_HEADER = (
    "#YY  MM DD hh mm WDIR WSPD GST  WVHT   DPD   APD MWD   PRES  ATMP  WTMP  DEWP  VIS  TIDE\n"
    "#yr  mo dy hr mn degT m/s  m/s     m   sec   sec degT   hPa  degC  degC  degC  nmi    ft\n"
)


def _stdmet(path: Path, year: int = 2019, hs=(1.2, 99.0, 2.5), wdir=(120, 999, 200)) -> Path:
    rows = []
    for k, (h, d) in enumerate(zip(hs, wdir)):
        rows.append(
            f"{year} 01 01 {k:02d} 50 {d:3d}  5.{k}  6.2 {h:5.2f}  8.00  5.10 999 1013.{k} 20.1 999.0 "
            "999.0 99.0 99.00\n"
        )
    path.write_text(STDMET_HEADER + "".join(rows))
    return path


def test_ndbc_stdmet_values_units_and_missing_codes(tmp_path):
    ds = T.read_ndbc_stdmet(_stdmet(tmp_path / "41010h2019.txt"), position=STATION)
    assert ds.hs.values.ravel()[[0, 2]].tolist() == [1.2, 2.5] and np.isnan(ds.hs.values.ravel()[1])  # 99.00
    assert np.isnan(ds.wind_direction.values.ravel()[1]) and np.isnan(ds.mean_direction).all()  # 999
    assert np.isnan(ds.sea_surface_temperature).all() and np.isnan(ds.tide).all()
    assert ds.air_pressure.values.ravel()[0] == 1013.0 and ds.air_pressure.attrs["units"] == "hPa"
    assert ds.hs.attrs["ndbc_name"] == "WVHT" and ds.tp.attrs["units"] == "s" and ds.tm02.attrs["ndbc_name"] == "APD"
    assert str(ds.time.values[0]) == "2019-01-01T00:50:00.000000000"
    assert float(ds.latitude[0]) == STATION[0] and str(ds.station.values[0]) == "41010"


def test_ndbc_stdmet_old_layout_two_digit_year_no_minute(tmp_path):
    path = tmp_path / "41001h1995.txt"
    path.write_text(
        "YY MM DD hh  WD WSPD  GST  WVHT  DPD  APD MWD  BAR    ATMP  WTMP  DEWP  VIS\n"
        "95 01 01 00 999 99.0 99.0  1.50 10.00  6.20 999 1012.5  15.0  20.0 999.0 99.0\n"
        "95 01 01 01 270  7.0  9.0 99.00 99.00 99.00 999 9999.0  15.1  20.0 999.0 99.0\n"
    )
    ds = T.read_ndbc_stdmet(path, position=STATION)
    assert str(ds.time.values[1]) == "1995-01-01T01:00:00.000000000"
    assert ds.hs.values.ravel()[0] == 1.5 and np.isnan(ds.hs.values.ravel()[1])
    assert ds.air_pressure.values.ravel()[0] == 1012.5 and np.isnan(ds.air_pressure.values.ravel()[1])  # BAR, 9999
    assert np.isnan(ds.wind_direction.values.ravel()[0]) and ds.wind_direction.values.ravel()[1] == 270


def test_ndbc_stdmet_collocates_with_the_given_position(tmp_path):
    path = _stdmet(tmp_path / "41010h2019.txt")
    t = np.array(["2019-01-01T00:50", "2019-01-01T02:50", "2019-01-01T01:50"], "datetime64[ns]")
    out = _quiet(collocate, _imagettes(t, 29.0, -78.4), path, position=STATION, method="nearest")
    assert out.ndbc_hs.values[:2].tolist() == [1.2, 2.5] and np.isnan(out.ndbc_hs.values[2])
    assert out.ndbc_hs.attrs["units"] == "m" and out.ndbc_wind_speed.values[0] == 5.0
    expected = haversine_km(np.array([29.0]), np.array([-78.4]), np.array([STATION[0]]), np.array([STATION[1]]))
    assert np.allclose(out.ndbc_distance_km.values, expected)


def test_ndbc_file_without_position_is_refused_in_one_line(tmp_path):
    path = _stdmet(tmp_path / "41010h2019.txt")
    with pytest.raises(InvalidArgumentError) as err:
        collocate(_imagettes(["2019-01-01T00:50"], 29.0, -78.4), path)
    _one_line(err, "41010h2019.txt", "position=(latitude, longitude)")


# ---- NDBC spectral density ---------------------------------------------------------------------------------------
NDBC_F = np.r_[0.02, np.arange(0.0325, 0.0975, 0.005), np.arange(0.10, 0.35, 0.01), np.arange(0.35, 0.49, 0.02)]


def _swden(path: Path, spectra: list[np.ndarray], hours=(0, 1), old: bool = False) -> Path:
    if old:
        head = "YYYY MM DD hh" + "".join(f" {f:6.3f}".replace("0.", " .") for f in NDBC_F) + "\n"
        rows = [f"2000 01 01 {h:02d}" + "".join(f" {v:6.2f}" for v in e) + "\n" for h, e in zip(hours, spectra)]
    else:
        head = "#YY  MM DD hh mm" + "".join(f" {f:.4f}".replace("0.", " .") for f in NDBC_F) + "\n"
        rows = [f"2019 02 06 {h:02d} 40" + "".join(f" {v:6.2f}" for v in e) + "\n" for h, e in zip(hours, spectra)]
    path.write_text(head + "".join(rows))
    return path


@pytest.mark.parametrize("old", [False, True])
def test_ndbc_spectrum_hs_periods_against_the_trapezoid_rule(tmp_path, old):
    e1, e2 = _gauss(NDBC_F, 0.1, 2.0), _gauss(NDBC_F, 0.08, 3.5, width=0.015)
    e2[-3:] = 999.0  # missing bins
    path = _swden(tmp_path / "41010w2019.txt", [e1, e2], old=old)
    written = [np.loadtxt(path, skiprows=1, ndmin=2)[k, (4 if old else 5) :] for k in range(2)]
    f = np.array(path.read_text().splitlines()[0].split()[(4 if old else 5) :], dtype=float)  # as written
    day = "2000-01-01" if old else "2019-02-06"
    t = np.array([f"{day}T00:{'00' if old else '40'}", f"{day}T01:{'00' if old else '40'}"], "datetime64[ns]")
    out = _quiet(collocate, _imagettes(t, *STATION), path, position=STATION)
    for k, e in enumerate(written):
        ok = e != 999.0
        assert out.ndbc_hs.values[k] == pytest.approx(_trapz_hs(e[ok], f[ok]), rel=0.03)
        m0, m1 = np.trapezoid(e[ok], f[ok]), np.trapezoid(e[ok] * f[ok], f[ok])
        m2 = np.trapezoid(e[ok] * f[ok] ** 2, f[ok])
        assert out.ndbc_tm01.values[k] == pytest.approx(m0 / m1, rel=0.03)
        assert out.ndbc_tm02.values[k] == pytest.approx(np.sqrt(m0 / m2), rel=0.03)
        assert out.ndbc_tp.values[k] == pytest.approx(1 / f[np.argmax(np.where(ok, e, -1))])
    assert out.ndbc_hs.attrs["units"] == "m"
    spec = T.read_ndbc_spectrum(path, position=STATION).spectral_wave_density
    assert np.isnan(spec.values[1, 0, -3:]).all() and not np.isnan(spec.values[0]).any()  # 999 -> NaN


# ---- WAVEWATCH III ASCII -------------------------------------------------------------------------------------------
WW3_F = 0.035 * 1.1 ** np.arange(25)
WW3_D = np.arange(0.0, 360.0, 15.0)


def _e(v: float) -> str:
    """WW3's Fortran E10.3 layout: 0.123E+01."""
    if v == 0:
        return "  0.000E+00"
    exp = int(np.floor(np.log10(abs(v)))) + 1
    return f" {v / 10**exp:6.3f}E{exp:+03d}".replace(" 0.", "  0.")


def _chunks(values, n):
    return ["".join(values[i : i + n]) + "\n" for i in range(0, len(values), n)]


def _ww3_spectrum(hs: float, fp: float, mean_to: float) -> np.ndarray:
    """E(f, theta) per Hz per radian, shape (nf, nd), directions waves travel to (nautical)."""
    spread = np.cos(np.deg2rad(WW3_D - mean_to) / 2) ** 8
    spread /= spread.sum() * np.deg2rad(15.0)
    return _gauss(WW3_F, fp, hs)[:, None] * spread[None, :]


def _ww3(path: Path, points, times, spectra) -> Path:
    lines = [f"'WAVEWATCH III SPECTRA'     {WW3_F.size}    {WW3_D.size}     {len(points)} 'spectral resolution'\n"]
    lines += _chunks([f"{f:10.3E}" for f in WW3_F], 8)
    lines += _chunks([f"{np.deg2rad(d):11.3E}" for d in WW3_D], 7)
    for k, stamp in enumerate(times):
        lines.append(f"{stamp} 000000\n")
        for j, (name, lat, lon) in enumerate(points):
            lines.append(f"'{name:<10s}' {lat:6.2f} {lon:7.2f}      46.6   1.45 225.6   0.18  94.1\n")
            spec = spectra[k][j]
            lines += _chunks([_e(v) for v in spec.T.ravel()], 7)  # frequency varies fastest
    path.write_text("".join(lines))
    return path


def _ww3_written(path: Path) -> list[np.ndarray]:
    """Independent parse: every number after the direction block, in groups of (8 header fields + nf*nd)."""
    text = path.read_text().splitlines()
    nf, nd = (int(v) for v in re.findall(r"\d+", text[0])[:2])
    numbers = [float(v) for line in text[1:] for v in re.findall(r"-?\d*\.\d+E[+-]\d+", line)]
    body = numbers[nf + nd :]
    spectra, size = [], nf * nd
    i = 0
    while i < len(body):
        spectra.append(np.asarray(body[i : i + size]).reshape(nd, nf).T)
        i += size
    return spectra


def test_ww3_ascii_hs_against_the_trapezoid_rule_nearest_station(tmp_path):
    points = [("BUOY-A", 40.0, -70.0), ("BUOY-B", 42.0, -66.0)]
    spectra = [
        [_ww3_spectrum(2.0, 0.1, 90.0), _ww3_spectrum(4.0, 0.07, 200.0)],
        [_ww3_spectrum(2.4, 0.1, 90.0), _ww3_spectrum(3.0, 0.07, 200.0)],
    ]
    path = _ww3(tmp_path / "ww3.2022.spec", points, ["20220912", "20220913"], spectra)
    written = _ww3_written(path)
    t = np.array(["2022-09-12", "2022-09-12", "2022-09-13"], "datetime64[ns]")
    lat, lon = np.array([40.1, 41.9, 41.9]), np.array([-70.2, -66.1, -66.1])
    out = _quiet(collocate, _imagettes(t, lat, lon), path)
    for i in range(3):  # brute-force nearest station, then the spectrum of that time
        d = [haversine_km(lat[i : i + 1], lon[i : i + 1], np.array([p[1]]), np.array([p[2]]))[0] for p in points]
        j, k = int(np.argmin(d)), [0, 0, 1][i]
        e_f = written[2 * k + j].sum(axis=1) * np.deg2rad(15.0)
        assert out.ww3_hs.values[i] == pytest.approx(_trapz_hs(e_f, WW3_F), rel=0.03)
        assert out.ww3_distance_km.values[i] == pytest.approx(min(d))
    assert out.ww3_mean_direction.values[0] == pytest.approx(90.0, abs=1)  # travelling to, clockwise from north
    assert out.ww3_mean_direction.values[1] == pytest.approx(200.0, abs=1)
    assert out.ww3_tp.values[1] == pytest.approx(1 / WW3_F[np.argmax(written[1].sum(axis=1))], rel=1e-3)
    assert out.ww3_wind_speed.values[0] == 1.45


# ---- SWAN ASCII ----------------------------------------------------------------------------------------------------
def _swan(path: Path, locations, times, spectra, quantity="VaDens", cartesian=False) -> Path:
    dirs = (90.0 - WW3_D) % 360 if cartesian else WW3_D
    out = [
        "SWAN   1                                Swan standard spectral file\n",
        "$   written by a test\n",
        "TIME                                    time-dependent data\n",
        "     1\n",
        "LONLAT                                  locations in spherical coordinates\n",
        f"{len(locations):6d}\n",
    ]
    out += [f"  {lon:.6f}  {lat:.6f}\n" for lat, lon in locations]
    out += ["AFREQ                                   absolute frequencies in Hz\n", f"{WW3_F.size:6d}\n"]
    out += [f"{f:11.5f}\n" for f in WW3_F]
    out += [f"{'CDIR' if cartesian else 'NDIR'}\n", f"{WW3_D.size:6d}\n"] + [f"{d:11.4f}\n" for d in dirs]
    unit = "J/m2/Hz/degr" if quantity == "EnDens" else "m2/Hz/degr"
    out += [
        "QUANT\n",
        "     1\n",
        f"{quantity}\n",
        f"{unit}\n",
        "   -99                                  exception value\n",
    ]
    for k, stamp in enumerate(times):
        out.append(f"{stamp}                         date and time\n")
        for spec in spectra[k]:
            if spec is None:
                out.append("NODATA\n")
            elif not spec.any():
                out.append("ZERO\n")
            else:
                per_degree = spec * np.deg2rad(1.0) * (1025 * 9.81 if quantity == "EnDens" else 1.0)
                factor = per_degree.max() / 9998
                out += ["FACTOR\n", f"    {factor:.8E}\n"]
                out += ["".join(f"{v:5.0f}" for v in row) + "\n" for row in per_degree / factor]
    path.write_text("".join(out))
    return path


@pytest.mark.parametrize(("quantity", "cartesian"), [("VaDens", False), ("EnDens", True)])
def test_swan_ascii_hs_against_the_trapezoid_rule_nodata_zero(tmp_path, quantity, cartesian):
    locations = [(-38.0, 174.0), (-39.0, 175.0), (-40.0, 176.0)]
    spectra = [[_ww3_spectrum(2.0, 0.1, 45.0), np.zeros((WW3_F.size, WW3_D.size)), None]]
    path = _swan(tmp_path / "swan.spec", locations, ["20161011.000000"], spectra, quantity, cartesian)
    lines = path.read_text().splitlines()
    start = lines.index("FACTOR")
    factor = float(lines[start + 1])
    raw = np.loadtxt(lines[start + 2 : start + 2 + WW3_F.size]) * factor
    if quantity == "EnDens":
        raw /= 1025 * 9.81
    reference = _trapz_hs(raw.sum(axis=1) * 15.0, WW3_F)  # per degree, 15-degree bins
    t = np.array(["2016-10-11"] * 3, "datetime64[ns]")
    out = _quiet(collocate, _imagettes(t, [-38.0, -39.0, -40.0], [174.0, 175.0, 176.0]), path)
    assert out.swan_hs.values[0] == pytest.approx(reference, rel=0.03)
    assert out.swan_hs.values[1] == 0.0 and np.isnan(out.swan_hs.values[2])  # ZERO, NODATA
    ds = T.read_swan_spectra(path)
    assert ds.efth.attrs["units"] == "m2 Hz-1 degree-1"
    if cartesian:  # CDIR turned into "travelling to, clockwise from north": the same spectrum as written
        assert "travel to" in ds.direction.attrs["long_name"]


# ---- damaged files: one error naming the file and line; many files: the rest still joins -------------------------
def _truncated(path: Path, keep: int) -> Path:
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:keep]))
    return path


def _garbled(path: Path, line: int, old: str, new: str) -> Path:
    lines = path.read_text().splitlines(keepends=True)
    assert old in lines[line - 1]
    lines[line - 1] = lines[line - 1].replace(old, new, 1)
    path.write_text("".join(lines))
    return path


def _ww3_two(tmp_path: Path, name: str = "ww3.spec") -> Path:
    return _ww3(
        tmp_path / name,
        [("A", 40.0, -70.0)],
        ["20220912", "20220913"],
        [[_ww3_spectrum(2.0, 0.1, 90.0)], [_ww3_spectrum(2.5, 0.1, 90.0)]],
    )


def _swan_two(tmp_path: Path, name: str = "swan.spec") -> Path:
    return _swan(
        tmp_path / name,
        [(-38.0, 174.0)],
        ["20161011.000000", "20161012.000000"],
        [[_ww3_spectrum(2.0, 0.1, 45.0)], [_ww3_spectrum(2.2, 0.1, 45.0)]],
    )


@pytest.mark.parametrize("family", ["stdmet", "swden", "ww3", "swan"])
def test_damaged_files_are_one_error_naming_file_and_line(tmp_path, family):
    def make(name):
        if family == "stdmet":
            return _stdmet(tmp_path / name)
        if family == "swden":
            return _swden(tmp_path / name, [_gauss(NDBC_F, 0.1, 2.0)] * 2)
        return _ww3_two(tmp_path, name) if family == "ww3" else _swan_two(tmp_path, name)

    position = STATION if family in ("stdmet", "swden") else None
    read = {"stdmet": T.read_ndbc_stdmet, "swden": T.read_ndbc_spectrum}.get(family)
    truncated = make("cut.txt" if position else "cut.spec")
    n = len(truncated.read_text().splitlines())
    _truncated(truncated, n - 1)
    text = truncated.read_text()
    truncated.write_text(text[: len(text) - 12])  # cut inside the last record
    garbled = make("bad.txt" if position else "bad.spec")
    lines = garbled.read_text().splitlines()
    target = len(lines) - 1
    token = lines[target - 1].split()[-1]
    _garbled(garbled, target, token, "x#?")
    for path, line in ((truncated, None), (garbled, target)):
        with pytest.raises(T.TextFileError) as err:
            if read is not None:
                read(path, position=position)
            else:
                T.open_text(path)
        assert isinstance(err.value, ValueError) and isinstance(err.value, XWVNetError)
        _one_line(err, path.name, "line ")
        if line is not None:
            assert f"line {line}" in str(err.value)
        assert err.value.path == str(path)


def test_gzip_truncated_is_one_error(tmp_path):
    path = tmp_path / "41010w2019.txt.gz"
    path.write_bytes(gzip.compress(_swden(tmp_path / "x.txt", [_gauss(NDBC_F, 0.1, 2.0)]).read_bytes())[:-20])
    with pytest.raises(T.TextFileError) as err:
        T.read_ndbc_spectrum(path, position=STATION)
    _one_line(err, path.name, "gzip")


def test_many_files_one_damaged_the_rest_join_with_a_warning(tmp_path):
    folder = tmp_path / "buoy"
    folder.mkdir()
    _stdmet(folder / "41010h2017.txt", 2017, hs=(1.0, 1.1, 1.2))
    _garbled(_stdmet(folder / "41010h2018.txt", 2018), 4, "1013.1", "10x3.1")
    _stdmet(folder / "41010h2019.txt", 2019, hs=(2.0, 2.1, 2.2), wdir=(1, 2, 3))
    assert [s.kind for s in resolve(folder)] == [TEXT] * 3
    t = np.array(["2017-01-01T01:50", "2018-01-01T00:50", "2019-01-01T02:50"], "datetime64[ns]")
    with pytest.warns(XWVNetWarning, match=r"41010h2018\.txt, line 4"):
        out = _quiet_keep_warnings(
            collocate, _imagettes(t, *STATION), folder, position=STATION, method="nearest", time_tolerance="1h"
        )
    assert out.ndbc_hs.values[0] == 1.1 and out.ndbc_hs.values[2] == 2.2
    assert np.isnan(out.ndbc_hs.values[1])  # the damaged year is not there
    with pytest.warns(XWVNetWarning, match="41010h2018"):
        pattern = _quiet_keep_warnings(
            collocate, _imagettes(t[:1], *STATION), str(folder / "*.txt"), position=STATION, method="nearest"
        )
    assert pattern.ndbc_hs.values[0] == 1.1


def test_ndbc_years_of_two_layouts_are_one_station(tmp_path):
    old = tmp_path / "42001h2006.txt"
    old.write_text(
        "YYYY MM DD hh mm  WD  WSPD GST  WVHT  DPD   APD MWD  BAR    ATMP  WTMP  DEWP  VIS\n"
        "2006 12 31 23 50 120  5.1  6.2  1.30  8.00  5.10 999 1013.0 20.1 999.0 999.0 99.0\n"
    )
    new = _stdmet(tmp_path / "42001h2007.txt", 2007)
    ds = T.open_text([new, old], position=STATION)
    assert ds.sizes == {"time": 4, "station": 1} and str(ds.station.values[0]) == "42001"
    assert ds.hs.values.ravel()[0] == 1.3 and np.isnan(ds.tide.values).all()  # TIDE only in 2007, missing there
    assert ds.air_pressure.values.ravel()[0] == 1013.0  # BAR is PRES


def _quiet_keep_warnings(func, *args, **kwargs):
    """Run ``func``, ignoring the join's own CollocationWarnings but not the skipped-file warning."""
    from xwvnet.joins.grid import CollocationWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CollocationWarning)
        return func(*args, **kwargs)


def test_a_file_named_explicitly_is_told_by_its_first_line(tmp_path):
    path = _ww3_two(tmp_path, "points.out")  # no known ending
    assert T.text_family(path) == "ww3-spectra" and T.text_family(tmp_path) is None
    out = _quiet(collocate, _imagettes(["2022-09-12"], 40.0, -70.0), path)
    assert out.ww3_hs.values[0] == pytest.approx(2.0, rel=0.03)
    with pytest.raises(InvalidArgumentError, match="holds the positions"):
        collocate(_imagettes(["2022-09-12"], 40.0, -70.0), path, position=STATION)


# ---- point series with scalar x/y, and position= for a Dataset without one ----------------------------------------
def test_point_series_with_scalar_x_y_is_one_station(tmp_path):
    t = np.arange("2017-10-26", "2017-10-27", np.timedelta64(1, "h"), dtype="datetime64[ns]")
    series = xr.Dataset(
        {"Hm0": ("time", np.linspace(1, 2, t.size), {"units": "m"})}, coords={"time": t, "x": 4.242, "y": 52.6887}
    )
    path = tmp_path / "HKNA_Hm0.nc"
    series.to_netcdf(path)
    ti = np.array(["2017-10-26T05:30"], "datetime64[ns]")
    out = _quiet(collocate, _imagettes(ti, 52.7, 4.25), path, prefix="hkna")
    assert out.hkna_Hm0.values[0] == pytest.approx(np.interp(5.5, np.arange(t.size), series.Hm0.values))
    assert out.hkna_distance_km.values[0] == pytest.approx(
        haversine_km(np.array([52.7]), np.array([4.25]), np.array([52.6887]), np.array([4.242]))[0]
    )
    bare = series.drop_vars(["x", "y"])
    out = _quiet(collocate, _imagettes(ti, 52.7, 4.25), bare, position=(52.6887, 4.242), prefix="hkna")
    assert np.isfinite(out.hkna_Hm0.values[0])
    with pytest.raises(InvalidArgumentError, match="has latitude/longitude of its own|without a position"):
        collocate(_imagettes(ti, 52.7, 4.25), series, position=(52.0, 4.0))


# ---- GRIB wave fields: ERA5 (GRIB1 swh, mwp, pp1d, mwd) and NOAA GFS-Wave (GRIB2 HTSGW, WVHGT, swell) ------------
LATS, LONS = np.arange(56.0, 49.9, -0.5), np.arange(-2.0, 9.1, 0.5)


def _field(t: int, k: int) -> np.ndarray:
    la, lo = np.meshgrid(LATS, LONS, indexing="ij")
    return 1.0 + 0.1 * k + 0.05 * la + 0.02 * lo + 0.3 * t


def _grib_message(sample: str, keys: dict, values: np.ndarray, when: str) -> bytes:
    eccodes = pytest.importorskip("eccodes")
    h = eccodes.codes_grib_new_from_samples(sample)
    try:
        day, hour = when.split("T")
        grid = {
            "Ni": LONS.size,
            "Nj": LATS.size,
            "latitudeOfFirstGridPointInDegrees": LATS[0],
            "latitudeOfLastGridPointInDegrees": LATS[-1],
            "longitudeOfFirstGridPointInDegrees": LONS[0],
            "longitudeOfLastGridPointInDegrees": LONS[-1],
            "iDirectionIncrementInDegrees": 0.5,
            "jDirectionIncrementInDegrees": 0.5,
            "dataDate": int(day.replace("-", "")),
            "dataTime": int(hour) * 100,
        }
        for key, value in {**grid, **keys}.items():
            eccodes.codes_set(h, key, value)
        eccodes.codes_set_values(h, values.ravel())
        return eccodes.codes_get_message(h)
    finally:
        eccodes.codes_release(h)


def test_era5_wave_grib_swh_mwp_pp1d_mwd(tmp_path):
    pytest.importorskip("cfgrib")
    params = {"swh": 140229, "mwp": 140232, "pp1d": 140231, "mwd": 140230}
    path = tmp_path / "era5-waves.grib"
    with path.open("wb") as f:
        for t, when in enumerate(["2017-10-28T00", "2017-10-28T06"]):
            for k, param in enumerate(params.values()):
                values = _field(t, k) * (90.0 if param == 140230 else 1.0)
                f.write(_grib_message("regular_ll_sfc_grib1", {"centre": "ecmf", "paramId": param}, values, when))
    lat, lon = np.array([52.3, 54.1]), np.array([3.3, 6.8])
    ti = np.array(["2017-10-28T03", "2017-10-28T03"], "datetime64[ns]")
    out = _quiet(collocate, _imagettes(ti, lat, lon), path, prefix="era5")
    assert {"era5_swh", "era5_mwp", "era5_pp1d", "era5_mwd"} <= set(out.data_vars)
    expected = 0.5 * (_interp(_field(0, 0), lat, lon) + _interp(_field(1, 0), lat, lon))
    assert np.allclose(out.era5_swh.values, expected, rtol=1e-3)
    assert out.era5_swh.attrs["units"] == "m" and out.era5_mwd.attrs["collocation_method"] == "nearest"


def _interp(field: np.ndarray, lat, lon) -> np.ndarray:
    f = RegularGridInterpolator((LATS[::-1], LONS), field[::-1])
    return f(np.c_[lat, lon])


def test_gfs_wave_grib2_htsgw_wvhgt_and_swell_partitions(tmp_path):
    pytest.importorskip("cfgrib")
    path = tmp_path / "gfswave.t00z.global.0p25.f000.grib2"
    surface = {"discipline": 10, "parameterCategory": 0, "typeOfFirstFixedSurface": 1}
    with path.open("wb") as f:
        for number, k in ((3, 0), (5, 1)):  # HTSGW, WVHGT
            f.write(
                _grib_message(
                    "regular_ll_sfc_grib2", {**surface, "parameterNumber": number}, _field(0, k), "2017-10-28T00"
                )
            )
        for level in (1, 2):  # swell partitions on ordered sequence levels (SWELL: parameter 8)
            f.write(
                _grib_message(
                    "regular_ll_sfc_grib2",
                    {
                        "discipline": 10,
                        "parameterCategory": 0,
                        "parameterNumber": 8,
                        "typeOfFirstFixedSurface": 241,
                        "scaledValueOfFirstFixedSurface": level,
                    },
                    _field(0, 1 + level),
                    "2017-10-28T00",
                )
            )
    lat, lon = np.array([52.3]), np.array([3.3])
    out = _quiet(collocate, _imagettes(["2017-10-28T00"], lat, lon), path, prefix="gfs")
    names = set(out.data_vars)
    assert "gfs_swh" in names and "gfs_shww" in names, names
    assert out.gfs_swh.values[0] == pytest.approx(_interp(_field(0, 0), lat, lon)[0], rel=1e-3)
    assert out.gfs_shww.values[0] == pytest.approx(_interp(_field(0, 1), lat, lon)[0], rel=1e-3)
    swell = [n for n in names if n.startswith("gfs_") and n not in ("gfs_swh", "gfs_shww")]
    assert swell, names
    values = np.sort(np.ravel(out[swell[0]].values))
    assert np.allclose(
        values, np.sort([_interp(_field(0, 2), lat, lon)[0], _interp(_field(0, 3), lat, lon)[0]]), rtol=1e-3
    )



def _gfs_wave_file(path: Path, t: int, when: str) -> Path:
    """A GFS-Wave-like GRIB2 file of several hypercubes: HTSGW and WVHGT on the surface, two swell partitions."""
    surface = {"discipline": 10, "parameterCategory": 0, "typeOfFirstFixedSurface": 1}
    swell = {"discipline": 10, "parameterCategory": 0, "parameterNumber": 8, "typeOfFirstFixedSurface": 241}
    with path.open("wb") as f:
        for number, k in ((3, 0), (5, 1)):
            f.write(_grib_message("regular_ll_sfc_grib2", {**surface, "parameterNumber": number}, _field(t, k), when))
        for level in (1, 2):
            f.write(_grib_message("regular_ll_sfc_grib2", {**swell, "scaledValueOfFirstFixedSurface": level},
                                  _field(t, 1 + level), when))
    return path


def _gfs_folder(tmp_path: Path, files: dict[str, tuple[int, str]]) -> Path:
    """A folder of GFS-Wave-like files: name -> (field index, valid time)."""
    pytest.importorskip("cfgrib")
    folder = tmp_path / "gfswave"
    folder.mkdir()
    for name, (t, when) in files.items():
        _gfs_wave_file(folder / name, t, when)
    return folder


def test_many_gfs_wave_files_of_several_hypercubes_join_along_time(tmp_path):
    """A folder of GFS-Wave files (each several hypercubes) is one source: values interpolated between its times."""
    folder = _gfs_folder(tmp_path, {"gfswave.t00z.f000.grib2": (0, "2017-10-28T00"),
                                    "gfswave.t06z.f000.grib2": (1, "2017-10-28T06")})
    lat, lon = np.array([52.3]), np.array([3.3])
    out = _quiet(collocate, _imagettes(["2017-10-28T03"], lat, lon), folder, prefix="gfs")
    halfway = (_interp(_field(0, 0), lat, lon)[0] + _interp(_field(1, 0), lat, lon)[0]) / 2
    assert out.gfs_swh.values[0] == pytest.approx(halfway, rel=1e-3)
    wind_sea = (_interp(_field(0, 1), lat, lon)[0] + _interp(_field(1, 1), lat, lon)[0]) / 2
    assert out.gfs_shww.values[0] == pytest.approx(wind_sea, rel=1e-3)


def test_grib_files_repeating_a_field_at_one_valid_time_are_refused(tmp_path):
    """Two runs giving the same valid time are ambiguous: refused naming both files, never one taken silently."""
    folder = _gfs_folder(tmp_path, {"gfswave.t00z.f006.grib2": (0, "2017-10-28T06"),
                                    "gfswave.t06z.f000.grib2": (1, "2017-10-28T06")})
    with pytest.raises(InvalidFileError, match=r"gfswave.t00z.f006.grib2 and gfswave.t06z.f000.grib2 both hold"):
        _quiet(collocate, _imagettes(["2017-10-28T06"], [52.3], [3.3]), folder, prefix="gfs")


# ---- CMEMS MFWAM (synthetic layout): names, units, partitions, directions ------------------------------------------
def test_mfwam_fields_keep_names_units_and_directions_are_not_averaged(tmp_path):
    t = np.array(["2017-10-28T00", "2017-10-28T03"], "datetime64[ns]")
    la, lo = np.array([52.0, 52.2]), np.array([3.0, 3.2])
    base = np.array([[[1.0, 2.0], [3.0, 4.0]], [[2.0, 3.0], [4.0, 5.0]]])
    mdir = np.array([[[350.0, 10.0], [350.0, 10.0]]] * 2)
    ds = xr.Dataset(
        {
            "VHM0": (
                ("time", "latitude", "longitude"),
                base,
                {"units": "m", "standard_name": "sea_surface_wave_significant_height"},
            ),
            "VHM0_WW": (("time", "latitude", "longitude"), base / 2, {"units": "m"}),
            "VHM0_SW1": (("time", "latitude", "longitude"), base / 3, {"units": "m"}),
            "VTPK": (("time", "latitude", "longitude"), base + 5, {"units": "s"}),
            "VMDR": (
                ("time", "latitude", "longitude"),
                mdir,
                {"units": "degree", "long_name": "Mean wave direction from"},
            ),
        },
        coords={"time": t, "latitude": la, "longitude": lo},
        attrs={"title": "Global wave model MFWAM"},
    )
    path = tmp_path / "mfwam.nc"
    ds.to_netcdf(path)
    out = _quiet(collocate, _imagettes(["2017-10-28T01:30"], 52.1, 3.09), path)
    assert out.mfwam_VHM0.values[0] == pytest.approx(2.95)  # halfway in time, bilinear at (0.5, 0.45) of the cell
    assert out.mfwam_VHM0.attrs["units"] == "m" and out.mfwam_VTPK.attrs["units"] == "s"
    assert out.mfwam_VHM0_SW1.values[0] == pytest.approx(out.mfwam_VHM0.values[0] / 3)
    assert out.mfwam_VMDR.values[0] in (350.0, 10.0)  # never 180 (the average across north)
    assert out.mfwam_VMDR.attrs["collocation_method"] == "nearest"


# ---- real files ---------------------------------------------------------------------------------------------------
def _ndbc_rows(path: Path) -> tuple[list[str], np.ndarray]:
    raw = path.read_bytes()
    text = (gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).decode()
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[0].split(), np.array(
        [[float(v) for v in line.split()] for line in lines[1:] if not line.startswith("#")]
    )


@pytest.mark.parametrize("key", ["wavespectra/ndbc/41010w2019part.txt.gz", "wavespectra/ndbc/44004w2000.txt"])
def test_real_ndbc_spectral_text_hs_against_the_trapezoid_rule(key):
    path = real_file(key)
    header, rows = _ndbc_rows(path)
    first = 5 if header[4] == "mm" else 4
    f = np.array([float(h) for h in header[first:]])
    k = min(3, rows.shape[0] - 1)
    e = rows[k, first:]
    minute = int(rows[k, 4]) if first == 5 else 0
    ti = np.datetime64(
        f"{int(rows[k, 0]):04d}-{int(rows[k, 1]):02d}-{int(rows[k, 2]):02d}T{int(rows[k, 3]):02d}:{minute:02d}", "ns"
    )
    out = _quiet(collocate, _imagettes([ti], *STATION), path, position=STATION)
    ok = e < 999
    assert out.ndbc_hs.values[0] == pytest.approx(_trapz_hs(e[ok], f[ok]), rel=0.03)
    assert out.ndbc_tp.values[0] == pytest.approx(1 / f[np.argmax(np.where(ok, e, -1))])


def test_real_ndbc_data_spec_and_spectral_summary():
    path = real_file("wavespectra/ndbc/41010.data_spec")
    line = path.read_text().splitlines()[1]
    values = [float(v) for v in re.findall(r"(\d+\.\d+) \(", line)]
    freqs = [float(v) for v in re.findall(r"\((\d+\.\d+)\)", line)]
    tokens = line.split()
    ti = np.datetime64(f"{tokens[0]}-{tokens[1]}-{tokens[2]}T{tokens[3]}:{tokens[4]}", "ns")
    out = _quiet(collocate, _imagettes([ti], *STATION), path, position=STATION)
    assert out.ndbc_hs.values[0] == pytest.approx(_trapz_hs(np.array(values), np.array(freqs)), rel=0.03)
    assert out.ndbc_separation_frequency.values[0] == float(tokens[5])
    summary = T.read_ndbc_stdmet(real_file("wavespectra/ndbc/41010.spec"), position=STATION)
    rows = [line.split() for line in real_file("wavespectra/ndbc/41010.spec").read_text().splitlines()[2:]]
    wvht = {np.datetime64(f"{r[0]}-{r[1]}-{r[2]}T{r[3]}:{r[4]}", "ns"): float(r[5]) for r in rows}
    got = dict(zip(summary.time.values, summary.hs.values[:, 0]))
    assert got == pytest.approx(wvht) and "SwD" not in summary and "steepness" not in summary
    # NDBC computes WVHT from the same spectra: within 10 % of 4 sqrt(m0) of the record ten minutes later
    hour = ti - np.timedelta64(10, "m")
    assert wvht[hour] == pytest.approx(out.ndbc_hs.values[0], rel=0.1)


def test_real_ww3_ascii_station_spectra():
    path = real_file("wavespectra/ww3station.spec")
    text = path.read_text().splitlines()
    nf, nd = (int(v) for v in re.findall(r"\d+", text[0])[:2])
    numbers = [float(v) for line in text[1:] for v in re.findall(r"-?\d*\.\d+E[+-]\d+", line)]
    f = np.asarray(numbers[:nf])
    spec = np.asarray(numbers[nf + nd : nf + nd + nf * nd]).reshape(nd, nf).T
    point = next(line for line in text[1:] if line.startswith("'"))
    lat, lon = (float(v) for v in point.split("'")[2].split()[:2])
    stamp = text[next(i for i, line in enumerate(text) if i and line.startswith("'")) - 1].split()
    ti = np.datetime64(f"{stamp[0][:4]}-{stamp[0][4:6]}-{stamp[0][6:]}T{stamp[1][:2]}:{stamp[1][2:4]}", "ns")
    out = _quiet(collocate, _imagettes([ti], lat + 0.1, lon), path)
    reference = _trapz_hs(spec.sum(axis=1) * 2 * np.pi / nd, f)
    assert out.ww3_hs.values[0] == pytest.approx(reference, rel=0.03)
    assert out.ww3_depth.values[0] == float(point.split("'")[2].split()[2])


def test_real_swan_ascii_spectra():
    path = real_file("wavespectra/swanfile.spec")
    lines = path.read_text().splitlines()
    nf = int(lines[lines.index(next(x for x in lines if x.startswith("AFREQ"))) + 1].split()[0])
    a = lines.index(next(x for x in lines if x.startswith("AFREQ")))
    f = np.array([float(x) for x in lines[a + 2 : a + 2 + nf]])
    d = lines.index(next(x for x in lines if x.startswith("NDIR")))
    nd = int(lines[d + 1].split()[0])
    lon, lat = (float(v) for v in lines[lines.index(next(x for x in lines if x.startswith("LONLAT"))) + 2].split())
    start = lines.index("FACTOR")
    raw = np.loadtxt(lines[start + 2 : start + 2 + nf]) * float(lines[start + 1])
    assert raw.shape == (nf, nd)
    stamp = lines[start - 1].split()[0]
    ti = np.datetime64(f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}", "ns")
    out = _quiet(collocate, _imagettes([ti], lat, lon), path)
    assert out.swan_hs.values[0] == pytest.approx(_trapz_hs(raw.sum(axis=1) * 360.0 / nd, f), rel=0.03)


def test_real_point_series_with_scalar_x_y():
    path = real_file("modelskill/SW/HKNA_Hm0.nc")
    raw = xr.open_dataset(path)
    k = 100
    ti = raw.time.values[k]
    out = _quiet(collocate, _imagettes([ti], float(raw.y) + 0.01, float(raw.x)), path, prefix="hkna")
    assert out.hkna_Hm0.values[0] == pytest.approx(float(raw.Hm0.values[k]))
    assert out.hkna_Hm0.attrs["units"] == "m"


def test_real_mfwam_two_daily_files_and_era5_waves():
    files = [real_file(f"modelskill/SW/CMEMS_DutchCoast_2017-10-{d}.nc") for d in (28, 29)]
    folder = files[0].parent
    lat, lon = np.array([53.5, 54.3]), np.array([3.1, 5.5])
    ti = np.array(["2017-10-28T04:30", "2017-10-29T10:30"], "datetime64[ns]")
    out = _quiet(collocate, _imagettes(ti, lat, lon), str(folder / "CMEMS_DutchCoast_2017-10-*.nc"))
    raw = xr.concat([xr.open_dataset(p) for p in files], "time")
    for i in range(2):
        step = raw.VHM0.interp(time=ti[i])
        f = RegularGridInterpolator((step.latitude.values, step.longitude.values), step.values)
        assert out.mfwam_VHM0.values[i] == pytest.approx(f([[lat[i], lon[i]]])[0], rel=1e-5)
    for name in ("VHM0", "VTPK", "VMDR", "VHM0_WW", "VHM0_SW1", "VHM0_SW2"):
        assert out[f"mfwam_{name}"].attrs["units"] == raw[name].attrs["units"]
    assert out.mfwam_VMDR.attrs["collocation_method"] == "nearest"
    era5 = real_file("modelskill/SW/ERA5_DutchCoast.nc")
    out = _quiet(collocate, _imagettes(ti, lat, lon), era5)
    raw = xr.open_dataset(era5)
    step = raw.swh.interp(time=ti[0]).sortby("latitude")
    f = RegularGridInterpolator((step.latitude.values, step.longitude.values), step.values)
    assert out.era5_swh.values[0] == pytest.approx(f([[lat[0], lon[0]]])[0], rel=1e-5)
    assert {"era5_mwp", "era5_pp1d", "era5_mwd"} <= set(out.data_vars)


def test_public_functions_have_numpydoc_docstrings():
    check_numpydoc("xwvnet.io.text")
