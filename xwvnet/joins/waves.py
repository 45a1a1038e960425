"""Integral wave parameters from directional wave spectra (WAVEWATCH III ``efth`` and alike).

Wave-model output often carries the spectrum E(f, theta) rather than the wave height, so it must be integrated
before it can be joined with imagettes. The spectral moments are m_n = sum_f sum_theta f^n E(f, theta) df dtheta,
and from them Hs = 4 sqrt(m0) (the spectral significant wave height), Tm01 = m0 / m1, Tm02 = sqrt(m0 / m2), the
peak period (of the direction-integrated spectrum) and the energy-weighted mean direction. Everything is written
with xarray operations, so dask-backed spectra stay lazy. ERA5's 2-D spectra (``d2fd``: log10 of the density, on
frequency and direction *numbers*) are turned into a density on the ERA5 frequency and direction tables first
(:func:`decode_era5_spectrum`).

The integration is done here rather than with wavespectra: its readers reopen the files themselves (one file),
set land spectra to zero (Hs 0 instead of NaN) and rotate directions, where the joins need the already opened,
lazily combined files as they are; the sums are a few lines, tested against analytic spectra.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..errors import InvalidDataError
from ..spectral import frequency_widths

FREQUENCY = "frequency"
DIRECTION = "direction"
SPECTRUM_STANDARD_NAME = "sea_surface_wave_directional_variance_spectral_density"
SPECTRUM_NAMES = ("efth", "Efth", "EFTH")
#: frequency (1-D) spectra E(f) in m^2 Hz^-1: NDBC THREDDS ``swden`` files, buoy and model point output
FREQUENCY_SPECTRUM_STANDARD_NAME = "sea_surface_wave_variance_spectral_density"
FREQUENCY_SPECTRUM_NAMES = ("spectral_wave_density", "ef", "Ef", "EF", "VSPEC", "vspec")
#: ERA5 2-D wave spectra: log10 of the variance density (cfgrib and MARS netCDF name it ``d2fd``)
ERA5_SPECTRUM_NAMES = ("d2fd", "2dfd")
#: the ERA5 wave model's frequency table: f_n = 0.03453 * 1.1 ** (n - 1) Hz, n = 1 .. 30
ERA5_FIRST_FREQUENCY = 0.03453
ERA5_FREQUENCY_RATIO = 1.1
_ERA5_DIMS = {"frequencyNumber": FREQUENCY, "directionNumber": DIRECTION}


def era5_frequencies(n: int = 30) -> np.ndarray:
    """The ERA5 wave model's frequencies (Hz): 0.03453 * 1.1 ** (k - 1) for k = 1 .. n.

    Parameters
    ----------
    n : int, optional
        How many (ERA5 has 30).

    Returns
    -------
    numpy.ndarray
        The frequencies, increasing.

    Examples
    --------
    >>> era5_frequencies()[[0, -1]].round(4).tolist()
    [0.0345, 0.5478]
    """
    return ERA5_FIRST_FREQUENCY * ERA5_FREQUENCY_RATIO ** np.arange(n)


def era5_directions(n: int = 24) -> np.ndarray:
    """The ERA5 wave model's directions (degrees clockwise from north): bin centres 7.5 + 15 (k - 1) for 24 bins.

    Parameters
    ----------
    n : int, optional
        How many bins cover the circle (ERA5 has 24).

    Returns
    -------
    numpy.ndarray
        The bin centres, increasing.

    Examples
    --------
    >>> era5_directions()[[0, 1, -1]].tolist()
    [7.5, 22.5, 352.5]
    """
    step = 360.0 / n
    return step / 2 + step * np.arange(n)


def _is_index(values: np.ndarray) -> bool:
    """True for 1, 2, ..., n (spectral bin numbers rather than physical values)."""
    v = np.asarray(values)
    return v.dtype.kind in "iuf" and v.size > 0 and np.array_equal(v, np.arange(1, v.size + 1))


def decode_era5_spectrum(ds: xr.Dataset, name: str | None = None) -> xr.Dataset:
    """Turn ERA5's ``d2fd`` (log10 of the density, on bin numbers) into ``efth(frequency, direction)``.

    ERA5 2-D wave spectra are stored as log10 of E(f, theta) in m^2 s rad^-1, with frequency and direction given
    as bin numbers 1..30 and 1..24 in MARS netCDF output (``frequencyNumber``/``directionNumber`` from cfgrib).
    This gives them the ERA5 tables (:func:`era5_frequencies`, :func:`era5_directions`) and undoes the log;
    missing values (land, sea ice) stay NaN. Frequencies and directions already in Hz and degrees are kept.

    Parameters
    ----------
    ds : xarray.Dataset
        An ERA5 spectra file as opened.
    name : str, optional
        The spectrum variable; default the first of :data:`ERA5_SPECTRUM_NAMES` present.

    Returns
    -------
    xarray.Dataset
        A new Dataset whose spectrum is ``efth`` (m^2 s rad^-1) on ``frequency`` (Hz) and ``direction`` (degrees,
        the direction waves travel to, as in the ECMWF wave model), lazy when the input is.

    Raises
    ------
    ValueError
        When there is no ERA5 spectrum, or its frequency/direction bins are not the ERA5 tables' numbers.

    Examples
    --------
    >>> d2fd = xr.DataArray(np.zeros((30, 24)), dims=("frequency", "direction"),
    ...                     coords={"frequency": np.arange(1, 31), "direction": np.arange(1, 25)})
    >>> out = decode_era5_spectrum(xr.Dataset({"d2fd": d2fd}))
    >>> float(out.efth.max()), float(out.direction[0])
    (1.0, 7.5)
    """
    name = name or next((n for n in ERA5_SPECTRUM_NAMES if n in ds.data_vars), None)
    if name is None or name not in ds.data_vars:
        raise InvalidDataError(f"no ERA5 spectrum in the Dataset: expected one of {ERA5_SPECTRUM_NAMES}, found "
                               f"{sorted(map(str, ds.data_vars))}.")
    out = ds.rename({k: v for k, v in _ERA5_DIMS.items() if k in ds.dims})
    spec = out[name]
    if FREQUENCY not in spec.dims or DIRECTION not in spec.dims:
        raise InvalidDataError(f"the ERA5 spectrum {name!r} needs frequency and direction dims, found {spec.dims}.")
    coords = {}
    for dim, table in ((FREQUENCY, era5_frequencies), (DIRECTION, era5_directions)):
        values = out[dim].values if dim in out.coords else np.arange(1, out.sizes[dim] + 1)
        if _is_index(values):
            units = "Hz" if dim == FREQUENCY else "degree"
            coords[dim] = (dim, table(out.sizes[dim]), {"units": units, "long_name": f"ERA5 wave model {dim}"})
        elif dim == FREQUENCY and np.nanmax(values) > 1.0:
            raise InvalidDataError(f"ERA5 frequencies must be bin numbers 1..n or Hz, found {values[:3]} ...")
    out = out.assign_coords(coords)
    spec = out[name]
    out[DIRECTION].attrs["convention"] = "direction waves travel to, clockwise from north (ECMWF wave model)"
    attrs = {k: v for k, v in spec.attrs.items() if k not in ("units", "long_name", "standard_name")}
    efth = (10.0 ** spec).assign_attrs(
        attrs, units="m2 s rad-1", standard_name=SPECTRUM_STANDARD_NAME,
        long_name="directional wave variance spectral density (10 ** d2fd)")
    return out.drop_vars(name).assign(efth=efth)


def _per_degree(spectrum: xr.DataArray) -> bool:
    units = str(spectrum.attrs.get("units", "")).replace(" ", "").lower()
    return "deg" in units


def find_spectrum(ds: xr.Dataset) -> str | None:
    """Find the directional wave spectrum in a Dataset, by its CF standard name or its usual names.

    Parameters
    ----------
    ds : xarray.Dataset
        A wave-model output (e.g. a WAVEWATCH III track or station file).

    Returns
    -------
    str or None
        The spectrum variable's name (standard name
        ``sea_surface_wave_directional_variance_spectral_density`` first, then ``efth``), or ``None``.

    Examples
    --------
    >>> find_spectrum(xr.Dataset({"efth": (("frequency", "direction"), np.ones((2, 3)))}))
    'efth'
    """
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
            raise InvalidDataError(
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
    """Compute the spectral moment m_n = sum f^n E(f, theta) df dtheta (m^2 s^-n), over frequency and direction.

    Parameters
    ----------
    spectrum : xarray.DataArray
        Variance density E(f, theta) per Hz per radian (per degree when its ``units`` say so); other dims kept.
    n : int, optional
        The order of the moment.
    frequency, direction : str, optional
        The names of the frequency (Hz) and direction (degrees) dimensions.
    df : numpy.ndarray, optional
        Frequency bin widths; default :func:`frequency_widths` of the grid.

    Returns
    -------
    xarray.DataArray
        m_n, over the spectrum's other dims (lazy when it is dask-backed).

    Raises
    ------
    ValueError
        When the spectrum lacks the frequency or direction dimension.
    """
    energy, _ = _weights(spectrum, frequency, direction, df)
    f = xr.DataArray(spectrum[frequency].values.astype(float), dims=(frequency,))
    return (energy * f**n).sum((frequency, direction), skipna=True)


def _peak_period(e_f: xr.DataArray, f: xr.DataArray, frequency: str) -> xr.DataArray:
    """1 / the frequency of the largest E(f) df (the lowest such frequency on ties), lazy-safe.

    A mask of the maximum rather than ``argmax`` + ``isel``: indexing with a dask array of positions is refused by
    xarray ("Cannot index with a chunked array indexer"), which is what spectra opened from Zarr give.
    """
    top = e_f.max(frequency, skipna=True)
    at_peak = f.broadcast_like(e_f).where(e_f == top)
    return (1.0 / at_peak.min(frequency, skipna=True)).drop_vars(frequency, errors="ignore")


def frequency_parameters(
    spectrum: xr.DataArray, *, frequency: str = FREQUENCY, df: np.ndarray | None = None
) -> xr.Dataset:
    """Compute Hs, Tm01, Tm02 and the peak period of a frequency spectrum E(f) (m^2 Hz^-1), no direction.

    Buoys (NDBC ``swden``: ``spectral_wave_density``) and many model point outputs give the direction-integrated
    spectrum. The moments are m_n = sum_f f^n E(f) df, with df the file's bin widths when given, else
    :func:`frequency_widths` of the grid; Hs = 4 sqrt(m0), Tm01 = m0 / m1, Tm02 = sqrt(m0 / m2), Tp = 1 / f at
    the largest E(f).

    Parameters
    ----------
    spectrum : xarray.DataArray
        E(f) per Hz, along ``frequency`` (Hz); further dims (time, station) kept; NaN bins are skipped, a spectrum
        that is NaN everywhere gives NaN.
    frequency : str, optional
        The frequency dimension's name.
    df : numpy.ndarray, optional
        Frequency bin widths (Hz); default :func:`frequency_widths`.

    Returns
    -------
    xarray.Dataset
        ``hs`` (m), ``tm01``, ``tm02`` and ``tp`` (s), lazy when the spectrum is dask-backed.

    Raises
    ------
    ValueError
        When the spectrum has no ``frequency`` dimension.

    Examples
    --------
    >>> f = 0.05 + 0.01 * np.arange(20)
    >>> e = xr.DataArray(np.ones(20), dims=("frequency",), coords={"frequency": f})
    >>> round(float(frequency_parameters(e).hs), 3)  # m0 = 20 bins x 0.01 Hz
    1.789
    """
    if frequency not in spectrum.dims:
        raise InvalidDataError(
            f"the frequency spectrum needs a {frequency!r} dim, found {spectrum.dims}; pass frequency=."
        )
    fv = np.asarray(spectrum[frequency].values, dtype=float)
    if df is None:
        order = np.argsort(fv)
        widths = np.empty_like(fv)
        widths[order] = frequency_widths(fv[order])
    else:
        widths = np.asarray(df, dtype=float)
    f = xr.DataArray(fv, dims=(frequency,))
    energy = spectrum * xr.DataArray(widths, dims=(frequency,))
    m0 = energy.sum(frequency, min_count=1)
    m1 = (energy * f).sum(frequency)
    m2 = (energy * f**2).sum(frequency)
    positive = m0 > 0
    return xr.Dataset({
        "hs": (4 * np.sqrt(m0)).assign_attrs(units="m", long_name="significant wave height (4 sqrt(m0))",
                                             standard_name="sea_surface_wave_significant_height"),
        "tm01": (m0 / m1).where(positive).assign_attrs(units="s", long_name="mean period m0/m1"),
        "tm02": np.sqrt(m0 / m2).where(positive).assign_attrs(units="s", long_name="mean period sqrt(m0/m2)"),
        "tp": _peak_period(spectrum, f, frequency).where(positive).assign_attrs(
            units="s", long_name="peak period of the frequency spectrum"),
    })


def find_frequency_spectrum(ds: xr.Dataset) -> str | None:
    """Find a frequency (1-D) spectrum E(f): by the CF standard name, then the usual names (NDBC, model points).

    Parameters
    ----------
    ds : xarray.Dataset
        A buoy or model point file.

    Returns
    -------
    str or None
        The variable's name, or ``None`` (also when the candidate has a ``direction`` dimension).

    Examples
    --------
    >>> find_frequency_spectrum(xr.Dataset({"spectral_wave_density": (("time", "frequency"), np.ones((1, 3)))}))
    'spectral_wave_density'
    """
    for name, var in ds.data_vars.items():
        if var.attrs.get("standard_name") == FREQUENCY_SPECTRUM_STANDARD_NAME and FREQUENCY in var.dims:
            return str(name)
    for name in FREQUENCY_SPECTRUM_NAMES:
        if name in ds.data_vars and FREQUENCY in ds[name].dims and DIRECTION not in ds[name].dims:
            return name
    return None


def wave_parameters(
    spectrum: xr.DataArray,
    *,
    frequency: str = FREQUENCY,
    direction: str = DIRECTION,
    df: np.ndarray | None = None,
) -> xr.Dataset:
    """Compute Hs, Tm01, Tm02, peak period and mean direction of a directional spectrum E(f, theta).

    Wave-model output often carries the spectrum rather than the wave height, and imagettes are compared with
    these integral parameters. The mean direction keeps the convention of the input (WW3 gives directions waves
    travel *to*).

    Parameters
    ----------
    spectrum : xarray.DataArray
        Variance density per Hz per radian (or per degree when its ``units`` say so), with any further dims
        (time, station) kept.
    frequency, direction : str, optional
        The names of the frequency (Hz) and direction (degrees) dimensions.
    df : numpy.ndarray, optional
        Frequency bin widths (e.g. WW3's ``frequency_area``); default :func:`frequency_widths` of the grid.

    Returns
    -------
    xarray.Dataset
        ``hs`` (m, 4 sqrt(m0)), ``tm01`` and ``tm02`` (s), ``tp`` (s, of the direction-integrated spectrum) and
        ``mean_direction`` (degrees, energy-weighted), with units; NaN where the spectrum has no energy. Lazy when
        the spectrum is dask-backed.

    Raises
    ------
    ValueError
        When the spectrum lacks the frequency or direction dimension.

    Examples
    --------
    >>> f, theta = 0.05 + 0.01 * np.arange(20), np.arange(0.0, 360.0, 15.0)
    >>> e = xr.DataArray(np.ones((20, 24)), dims=("frequency", "direction"),
    ...                  coords={"frequency": f, "direction": theta})
    >>> round(float(wave_parameters(e).hs), 3)  # m0 = 20 bins x 0.01 Hz x 2 pi
    4.484
    """
    energy, theta = _weights(spectrum, frequency, direction, df)
    f = xr.DataArray(spectrum[frequency].values.astype(float), dims=(frequency,))
    dims = (frequency, direction)
    m0 = energy.sum(dims, min_count=1)  # NaN where the whole spectrum is (land), 0 for a calm sea
    m1 = (energy * f).sum(dims)
    m2 = (energy * f**2).sum(dims)
    positive = m0 > 0
    hs = 4 * np.sqrt(m0)
    tm01 = (m0 / m1).where(positive)
    tm02 = np.sqrt(m0 / m2).where(positive)
    tp = _peak_period(spectrum.sum(direction, min_count=1), f, frequency).where(positive)  # the peak of E(f)
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
    """Add ``hs``, ``tm01``, ``tm02``, ``tp`` and ``mean_direction``, computed from the Dataset's spectrum.

    This is what :func:`xwvnet.collocate` does to a wave-model source before joining it. The file's own
    frequency bin widths (a variable with standard name ``frequency_area``) are used when present.

    Parameters
    ----------
    ds : xarray.Dataset
        A wave-model output holding a directional spectrum.
    spectrum : str, optional
        The spectrum's name; default :func:`find_spectrum`.
    drop_spectrum : bool, optional
        Drop the spectrum and every variable on frequency or direction (they are large and not per imagette).

    Returns
    -------
    xarray.Dataset
        A new Dataset with the five parameters added.

    Raises
    ------
    ValueError
        When there is no directional spectrum.
    """
    name = spectrum or find_spectrum(ds)
    one_d = name is None and find_frequency_spectrum(ds)
    if one_d:
        params = frequency_parameters(ds[one_d], df=_file_widths(ds))
        out = ds.assign(params.data_vars)
        out["hs"].attrs["derived_from"] = f"{one_d}: 4 sqrt(sum E(f) df)"
        if drop_spectrum:
            out = out.drop_vars([v for v, var in out.data_vars.items() if FREQUENCY in var.dims])
            out = out.drop_dims([FREQUENCY] if FREQUENCY in out.dims else [])
        return out
    if name is None or name not in ds.data_vars:
        raise InvalidDataError(
            f"no directional wave spectrum in the Dataset: expected a variable named one of {SPECTRUM_NAMES} or with "
            f"standard_name {SPECTRUM_STANDARD_NAME!r}; found {sorted(map(str, ds.data_vars))}."
        )
    params = wave_parameters(ds[name], df=_file_widths(ds))
    out = ds.assign(params.data_vars)
    out["hs"].attrs["derived_from"] = f"{name}: 4 sqrt(sum E(f, theta) df dtheta)"
    if drop_spectrum:
        spectral = [v for v, var in out.data_vars.items() if set(var.dims) & {FREQUENCY, DIRECTION}]
        out = out.drop_vars(spectral).drop_dims([d for d in (FREQUENCY, DIRECTION) if d in out.dims])
    return out


def _file_widths(ds: xr.Dataset) -> np.ndarray | None:
    """The file's own frequency bin widths (standard name ``frequency_area`` or NDBC's ``bandwidth``), if any."""
    for name, var in ds.variables.items():
        if var.dims == (FREQUENCY,) and (var.attrs.get("standard_name") == "frequency_area" or name == "bandwidth"):
            return np.asarray(var.values, dtype=float)
    return None
