"""Integral wave parameters from spectra (xwvnet.joins.waves): an analytic spectrum, a real WW3 file, wavespectra."""

from __future__ import annotations

import doctest
import importlib

import numpy as np
import pytest
import xarray as xr

from tests import _source_files as F
from tests._numpydoc import check_numpydoc
from xwvnet.joins.waves import add_wave_parameters, find_spectrum, moment, wave_parameters

FP, SIGMA, M0, THETA0 = 0.1, 0.008, 0.5625, 60.0  # m0 = 0.5625 m2 -> Hs = 3 m


def gaussian_spectrum(per_degree: bool = False, n_dir: int = 72) -> xr.DataArray:
    """E(f, theta) = m0 G(f; fp, sigma) D(theta): a Gaussian in frequency, cos^2 spreading, known moments."""
    f = 0.03 * 1.01 ** np.arange(300)  # geometric grid as in WW3, fine enough for 1e-4 accuracy
    theta = np.arange(n_dir) * 360.0 / n_dir
    g = np.exp(-0.5 * ((f - FP) / SIGMA) ** 2) / (SIGMA * np.sqrt(2 * np.pi))
    spread = np.cos(np.deg2rad(theta - THETA0) / 2) ** 4  # = ((1 + cos)/2)^2, integral over 2 pi = 3 pi / 4
    spread = spread / (3 * np.pi / 4)
    e = M0 * g[:, None] * spread[None, :]
    units = "m2 s rad-1"
    if per_degree:
        e, units = e * np.pi / 180.0, "m2 s deg-1"
    return xr.DataArray(e, dims=("frequency", "direction"), coords={"frequency": f, "direction": theta},
                        attrs={"units": units})


def test_hs_periods_and_direction_of_an_analytic_spectrum():
    out = wave_parameters(gaussian_spectrum())
    assert float(out.hs) == pytest.approx(4 * np.sqrt(M0), rel=1e-4)  # 3 m
    assert float(out.tm01) == pytest.approx(1 / FP, rel=1e-4)
    assert float(out.tm02) == pytest.approx(1 / np.sqrt(FP**2 + SIGMA**2), rel=1e-4)
    assert float(out.mean_direction) == pytest.approx(THETA0, abs=1e-6)
    assert float(out.tp) == pytest.approx(1 / FP, rel=0.01)
    assert float(moment(gaussian_spectrum(), 0)) == pytest.approx(M0, rel=1e-4)


def test_per_degree_units_and_direction_order_do_not_change_hs():
    base = float(wave_parameters(gaussian_spectrum()).hs)
    assert float(wave_parameters(gaussian_spectrum(per_degree=True)).hs) == pytest.approx(base, rel=1e-12)
    rng = np.random.default_rng(0)
    shuffled = gaussian_spectrum().isel(direction=rng.permutation(72), frequency=rng.permutation(300))
    out = wave_parameters(shuffled)
    assert float(out.hs) == pytest.approx(base, rel=1e-12)
    assert float(out.mean_direction) == pytest.approx(THETA0, abs=1e-6)


def test_extra_dims_kept_and_dask_stays_lazy():
    spec = xr.concat([gaussian_spectrum() * s for s in (1.0, 4.0)], dim="time").chunk({"time": 1})
    out = wave_parameters(spec)
    assert out.hs.chunks is not None
    hs = out.hs.values
    assert hs[1] == pytest.approx(2 * hs[0], rel=1e-12)  # 4x energy -> 2x height


def test_real_ww3_track_against_direct_sum(data_dir):
    path = data_dir / "ww3" / "LOPS_WW3-GLOB-30M_202302_trck.nc"
    if not path.is_file():
        pytest.skip(f"{path} not in the data mirror")
    with xr.open_dataset(path) as ww3:
        assert find_spectrum(ww3) == "efth"
        out = add_wave_parameters(ww3)
        e = ww3.efth.values.astype(float)
        df = ww3.frequency_area.values.astype(float)
        expected = 4 * np.sqrt((e * df[None, :, None]).sum((1, 2)) * 2 * np.pi / ww3.sizes["direction"])
        # our own widths (no frequency_area) agree with the file's to float32 precision
        own = wave_parameters(ww3.efth).hs.values
    assert "efth" not in out and "frequency" not in out.dims
    assert np.allclose(out.hs.values, expected, rtol=1e-6)
    assert np.allclose(own, expected, rtol=1e-5)
    assert expected.min() > 1.5 and expected.max() < 8.0
    assert out.hs.attrs["units"] == "m"


def test_missing_spectrum_is_explained():
    with pytest.raises(ValueError, match="no directional wave spectrum"):
        add_wave_parameters(xr.Dataset({"hs": ("time", [1.0])}))


def test_era5_spectra_agree_with_wavespectra(tmp_path):
    wavespectra = pytest.importorskip("wavespectra")
    from xwvnet.joins.waves import decode_era5_spectrum, wave_parameters

    path = tmp_path / "era5_2d_wave_spectra.nc"
    F.era5_spectra(path)
    ours = wave_parameters(decode_era5_spectrum(xr.open_dataset(path)).efth).hs.isel(latitude=slice(1, None))
    theirs = wavespectra.read_era5(str(path)).spec.hs(tail=False).isel(lat=slice(1, None))
    np.testing.assert_allclose(ours.values, theirs.values, rtol=0.01)


def test_join_modules_have_numpydoc_docstrings_and_their_examples_run():
    check_numpydoc("xwvnet.joins.waves")
    module = importlib.import_module("xwvnet.joins.waves")
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, result
