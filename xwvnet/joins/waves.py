"""Integral wave parameters from directional wave spectra (WAVEWATCH III ``efth`` and alike).

Wave-model output often carries the spectrum E(f, theta) rather than the wave height, so it must be integrated
before it can be joined with imagettes. The spectral moments are m_n = sum_f sum_theta f^n E(f, theta) df dtheta,
and from them Hs = 4 sqrt(m0) (the spectral significant wave height), Tm01 = m0 / m1, Tm02 = sqrt(m0 / m2), the
peak period (of the direction-integrated spectrum) and the energy-weighted mean direction. Everything is written
with xarray operations, so dask-backed spectra stay lazy.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

FREQUENCY = "frequency"
DIRECTION = "direction"
SPECTRUM_STANDARD_NAME = "sea_surface_wave_directional_variance_spectral_density"
SPECTRUM_NAMES = ("efth", "Efth", "EFTH")


def frequency_widths(frequency: np.ndarray) -> np.ndarray:
    """Bin widths df of a frequency grid: centred differences, the ends extended like the grid itself.

    A geometric grid (WAVEWATCH III: f[i+1] = r f[i]) gets df = f (r - 1/r) / 2 for every bin, as in WW3's
    ``frequency_area``; any other increasing grid gets centred differences with arithmetic end bins.
    """
    f = np.asarray(frequency, dtype=float)
    if f.ndim != 1 or f.size < 2 or np.any(np.diff(f) <= 0):
        raise ValueError(f"expected an increasing 1-D frequency grid with at least 2 values, found {f!r}.")
    ratios = f[1:] / f[:-1] if np.all(f > 0) else np.array([np.nan])
    if np.allclose(ratios, ratios[0], rtol=1e-4):
        before, after = f[0] / ratios[0], f[-1] * ratios[0]
    else:
        before, after = 2 * f[0] - f[1], 2 * f[-1] - f[-2]
    padded = np.concatenate([[before], f, [after]])
    return (padded[2:] - padded[:-2]) / 2


def _per_degree(spectrum: xr.DataArray) -> bool:
    units = str(spectrum.attrs.get("units", "")).replace(" ", "").lower()
    return "deg" in units


def find_spectrum(ds: xr.Dataset) -> str | None:
    """The name of the directional spectrum variable in ``ds`` (by standard name or usual name), or ``None``."""
    for name, var in ds.data_vars.items():
        if var.attrs.get("standard_name") == SPECTRUM_STANDARD_NAME:
            return str(name)
    for name in SPECTRUM_NAMES:
        if name in ds.data_vars:
            return name
    return None


def _weights(
    spectrum: xr.DataArray, frequency: str, direction: str, df: xr.DataArray | np.ndarray | None
) -> tuple[xr.DataArray, xr.DataArray]:
    """(E df dtheta, direction in radians): the energy in each (f, theta) bin."""
    for dim in (frequency, direction):
        if dim not in spectrum.dims:
            raise ValueError(
                f"the spectrum needs dims {frequency!r} and {direction!r}, found {spectrum.dims}; pass frequency= "
                "and direction= with the names your file uses."
            )
    f = spectrum[frequency].values
    if df is None:
        order = np.argsort(f)
        widths = np.empty_like(f, dtype=float)
        widths[order] = frequency_widths(f[order])
    else:
        widths = np.asarray(df, dtype=float)
    dfa = xr.DataArray(widths, dims=(frequency,))
    theta = np.deg2rad(spectrum[direction].values.astype(float))
    dtheta = 2 * np.pi / theta.size
    if _per_degree(spectrum):
        dtheta = 360.0 / theta.size
    energy = spectrum * dfa * dtheta
    return energy, xr.DataArray(theta, dims=(direction,))


def moment(
    spectrum: xr.DataArray,
    n: int = 0,
    *,
    frequency: str = FREQUENCY,
    direction: str = DIRECTION,
    df: np.ndarray | None = None,
) -> xr.DataArray:
    """The spectral moment m_n = sum f^n E(f, theta) df dtheta (m^2 s^-n), over frequency and direction."""
    energy, _ = _weights(spectrum, frequency, direction, df)
    f = xr.DataArray(spectrum[frequency].values.astype(float), dims=(frequency,))
    return (energy * f**n).sum((frequency, direction), skipna=True)


def wave_parameters(
    spectrum: xr.DataArray,
    *,
    frequency: str = FREQUENCY,
    direction: str = DIRECTION,
    df: np.ndarray | None = None,
) -> xr.Dataset:
    """Hs, Tm01, Tm02, peak period and mean direction of a directional spectrum E(f, theta).

    ``spectrum`` is a variance density per Hz per radian (or per degree when its ``units`` say so), with any
    further dims (time, station) kept. ``df`` overrides the frequency bin widths (e.g. WW3's ``frequency_area``).
    The mean direction keeps the convention of the input (WW3 gives directions waves travel *to*).
    """
    energy, theta = _weights(spectrum, frequency, direction, df)
    f = xr.DataArray(spectrum[frequency].values.astype(float), dims=(frequency,))
    dims = (frequency, direction)
    m0 = energy.sum(dims)
    m1 = (energy * f).sum(dims)
    m2 = (energy * f**2).sum(dims)
    positive = m0 > 0
    hs = 4 * np.sqrt(m0)
    tm01 = (m0 / m1).where(positive)
    tm02 = np.sqrt(m0 / m2).where(positive)
    e_f = energy.sum(direction)
    peak = e_f.fillna(-np.inf).argmax(frequency)
    tp = (1.0 / f.isel({frequency: peak})).drop_vars(frequency, errors="ignore").where(positive)
    east = (energy * np.sin(theta)).sum(dims)
    north = (energy * np.cos(theta)).sum(dims)
    mean_dir = (np.rad2deg(np.arctan2(east, north)) % 360).where(positive)
    convention = spectrum[direction].attrs.get("standard_name", spectrum[direction].attrs.get("long_name", ""))
    out = xr.Dataset(
        {
            "hs": hs.assign_attrs(units="m", long_name="significant wave height (4 sqrt(m0))",
                                  standard_name="sea_surface_wave_significant_height"),
            "tm01": tm01.assign_attrs(units="s", long_name="mean period m0/m1"),
            "tm02": tm02.assign_attrs(units="s", long_name="mean period sqrt(m0/m2)"),
            "tp": tp.assign_attrs(units="s", long_name="peak period of the direction-integrated spectrum"),
            "mean_direction": mean_dir.assign_attrs(
                units="degree", long_name="energy-weighted mean direction", convention=str(convention)
            ),
        }
    )
    return out


def add_wave_parameters(ds: xr.Dataset, spectrum: str | None = None, *, drop_spectrum: bool = True) -> xr.Dataset:
    """A new Dataset with ``hs``, ``tm01``, ``tm02``, ``tp``, ``mean_direction`` computed from its spectrum.

    Uses the file's own frequency bin widths (a variable with standard name ``frequency_area``) when present.
    The spectrum (and its frequency/direction variables) is dropped unless ``drop_spectrum=False``.
    """
    name = spectrum or find_spectrum(ds)
    if name is None or name not in ds.data_vars:
        raise ValueError(
            f"no directional wave spectrum in the Dataset: expected a variable named one of {SPECTRUM_NAMES} or with "
            f"standard_name {SPECTRUM_STANDARD_NAME!r}; found {sorted(map(str, ds.data_vars))}."
        )
    spec = ds[name]
    df = None
    for var in ds.data_vars.values():
        if var.attrs.get("standard_name") == "frequency_area" and var.dims == (FREQUENCY,):
            df = var.values
    params = wave_parameters(spec, df=df)
    out = ds.assign(params.data_vars)
    if drop_spectrum:
        spectral = [v for v, var in out.data_vars.items() if set(var.dims) & {FREQUENCY, DIRECTION}]
        out = out.drop_vars(spectral).drop_dims([d for d in (FREQUENCY, DIRECTION) if d in out.dims])
    return out
