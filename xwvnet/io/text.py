"""Text files wave scientists exchange: NDBC buoy text, WAVEWATCH III and SWAN ASCII point spectra.

One reader per family, each returning an :class:`xarray.Dataset` in the data model's spelling (``time``,
``latitude``, ``longitude``, ``frequency``, ``direction``) that :func:`xwvnet.collocate` joins like the netCDF
files of the same instruments and models:

========================= ================================================ ==========================================
family                    recognised by (name, else first line)            read as
========================= ================================================ ==========================================
NDBC standard meteorology ``#YY  MM DD hh mm WDIR WSPD GST  WVHT ...``     :func:`read_ndbc_stdmet`: ``hs`` (WVHT),
(``*h2019.txt``, realtime  (also ``YY``/``YYYY`` without minutes, ``WD``,   ``tp`` (DPD), ``tm02`` (APD),
``.txt``/``.spec``)        ``BAR``; ``MM`` or 99/999/9999 are missing)      ``mean_direction`` (MWD), winds, pressure,
                                                                            temperatures, along ``time``
NDBC spectral density     ``#YY MM DD hh mm  .0200 .0325 ...`` (numbers    :func:`read_ndbc_spectrum`:
(``*w2019.txt``,          after the time columns), or ``.data_spec`` rows   ``spectral_wave_density(time, station,
``.data_spec``)           ``value (frequency) ...``                        frequency)`` (m^2/Hz; 999 is missing)
WAVEWATCH III point       ``'WAVEWATCH III SPECTRA'  nf  nd  np``           :func:`read_ww3_spectra`:
spectra (``ww3.*.spec``)                                                    ``efth(time, station, frequency,
                                                                            direction)`` (m^2 s rad^-1), depth, wind
SWAN spectra (``.spec``)  ``SWAN   1``                                      :func:`read_swan_spectra`:
                                                                            ``efth(time, station, frequency,
                                                                            direction)`` (m^2 Hz^-1 degree^-1)
========================= ================================================ ==========================================

Spectra are returned as spectra: the join reduces them to Hs, periods and direction with
:mod:`xwvnet.joins.waves` (the one place where moments are computed, for netCDF and text alike). NDBC text files
hold no position, so the station's ``position=(latitude, longitude)`` must be given; WAVEWATCH III and SWAN files
carry theirs. Files compressed with gzip (``41010w2019.txt.gz``) are read as they are.

Text files are small (a year of hourly buoy records is a few MB), so they are parsed eagerly with numpy and wrapped
in xarray: nothing here is lazy, unlike the netCDF, GRIB and Zarr readers of :mod:`xwvnet.io.sources`. A damaged or
truncated file is one :class:`TextFileError` that names the file and the line.
"""

from __future__ import annotations

import gzip
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import InputNotFoundError, InvalidArgumentError, InvalidFileError, warn

__all__ = [
    "TextFileError",
    "text_family",
    "open_text",
    "read_ndbc_stdmet",
    "read_ndbc_spectrum",
    "read_ww3_spectra",
    "read_swan_spectra",
    "TEXT_SUFFIXES",
    "FAMILIES",
]

#: file endings always read as text sources (a further ``.gz`` is allowed); other files (``.txt``, ``.out`` ...)
#: are text sources when their first line is that of a family (:func:`text_family`)
TEXT_SUFFIXES = (".spec", ".data_spec")
NDBC_STDMET = "ndbc-stdmet"
NDBC_SPECTRUM = "ndbc-spectrum"
WW3_SPECTRA = "ww3-spectra"
SWAN_SPECTRA = "swan-spectra"
#: the families told apart by :func:`text_family`
FAMILIES = (NDBC_STDMET, NDBC_SPECTRUM, WW3_SPECTRA, SWAN_SPECTRA)
#: density of sea water and gravity SWAN uses to turn energy density (J) into variance density (m^2)
SWAN_RHO_G = 1025.0 * 9.81
#: position of the spectra's station dimension (as in the netCDF station files the joins already read)
STATION = "station"
_FREQUENCY_SPECTRUM = "sea_surface_wave_variance_spectral_density"
_DIRECTIONAL_SPECTRUM = "sea_surface_wave_directional_variance_spectral_density"
_TO_NORTH = "direction waves travel to, clockwise from north"
_FROM_NORTH = "direction waves come from, clockwise from north (nautical)"

#: NDBC standard meteorological columns: file name -> (our name, units, long name, missing code)
NDBC_COLUMNS: dict[str, tuple[str, str, str, float | None]] = {
    "WDIR": ("wind_direction", "degree", "wind direction (coming from, clockwise from true north)", 999.0),
    "WSPD": ("wind_speed", "m s-1", "wind speed (averaged over 8 minutes)", 99.0),
    "GST": ("wind_gust", "m s-1", "peak 5 or 8 second gust speed", 99.0),
    "WVHT": ("hs", "m", "significant wave height (NDBC WVHT, 4 sqrt(m0) of the buoy spectrum)", 99.0),
    "DPD": ("tp", "s", "dominant (peak) wave period (NDBC DPD)", 99.0),
    "APD": ("tm02", "s", "average wave period (NDBC APD)", 99.0),
    "MWD": ("mean_direction", "degree", "direction waves come from at the dominant period (NDBC MWD)", 999.0),
    "PRES": ("air_pressure", "hPa", "sea level pressure", 9999.0),
    "ATMP": ("air_temperature", "degC", "air temperature", 999.0),
    "WTMP": ("sea_surface_temperature", "degC", "sea surface temperature", 999.0),
    "DEWP": ("dew_point_temperature", "degC", "dew point temperature", 999.0),
    "VIS": ("visibility", "nmi", "station visibility", 99.0),
    "PTDY": ("pressure_tendency", "hPa", "pressure tendency", 99.0),
    "TIDE": ("tide", "ft", "water level above or below mean lower low water", 99.0),
    "SwH": ("swell_hs", "m", "swell height (NDBC SwH)", 99.0),
    "SwP": ("swell_period", "s", "swell period (NDBC SwP)", 99.0),
    "WWH": ("wind_wave_hs", "m", "wind wave height (NDBC WWH)", 99.0),
    "WWP": ("wind_wave_period", "s", "wind wave period (NDBC WWP)", 99.0),
}
#: older spellings of the same columns (files before 2007)
NDBC_ALIASES = {"WD": "WDIR", "BAR": "PRES", "DIR": "WDIR", "SPD": "WSPD"}
#: NDBC columns holding words (realtime spectral summaries: compass points, steepness classes), left out
NDBC_TEXT_COLUMNS = ("SwD", "WWD", "STEEPNESS")
_MISSING = (99.0, 999.0, 9999.0)
_STANDARD_NAMES = {
    "hs": "sea_surface_wave_significant_height",
    "wind_speed": "wind_speed",
    "wind_direction": "wind_from_direction",
    "air_temperature": "air_temperature",
    "sea_surface_temperature": "sea_surface_temperature",
    "air_pressure": "air_pressure_at_sea_level",
    "tp": "sea_surface_wave_period_at_variance_spectral_density_maximum",
    "mean_direction": "sea_surface_wave_from_direction",
}
_TIME_COLUMNS = ("YY", "YYYY", "#YY", "#YYYY", "YEAR")


class TextFileError(InvalidFileError):
    """A text file of a known family that is damaged or truncated: the message names the file and the line.

    A ``ValueError`` (an :class:`~xwvnet.errors.InvalidFileError`); ``path`` and ``line`` say where.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    line : int or None
        The line (1-based) where the damage was found, or None for the whole file.
    what : str
        What is wrong there, and what was expected.
    """

    def __init__(self, path: str | os.PathLike, line: int | None, what: str) -> None:
        where = f"{path}, line {line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {what}")
        self.path, self.line = str(path), line


# ---- reading lines ----------------------------------------------------------------------------------------------
def _read_lines(path: Path) -> list[str]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError as err:
        raise InputNotFoundError(f"{path} does not exist; give an existing text file.") from err
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise TextFileError(path, None, f"a damaged or truncated gzip file ({err}).") from err
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
        if "\x00" in text:
            raise TextFileError(path, None, "binary content where text was expected (NUL bytes).") from None
    return text.splitlines()


def _first_line(path: Path) -> str:
    try:
        with path.open("rb") as f:
            head = f.read(4096)
        if head[:2] == b"\x1f\x8b":
            with gzip.open(path, "rb") as f:
                head = f.read(4096)
    except (OSError, EOFError):
        return ""
    return head.decode("latin-1").splitlines()[0] if head.strip() else ""


def text_family(path: str | os.PathLike) -> str | None:
    """Tell the family of a text file from its first line (one of :data:`FAMILIES`), or None.

    Parameters
    ----------
    path : str or os.PathLike
        A local file (gzip-compressed or not).

    Returns
    -------
    str or None
        ``"ndbc-stdmet"``, ``"ndbc-spectrum"``, ``"ww3-spectra"``, ``"swan-spectra"``, or None when the first
        line is none of theirs (or the file cannot be read).

    Examples
    --------
    >>> from pathlib import Path
    >>> _ = Path("/tmp/ww3.spec").write_text("'WAVEWATCH III SPECTRA'     2     4     1 'x'\\n")
    >>> text_family("/tmp/ww3.spec")
    'ww3-spectra'
    """
    line = _first_line(Path(path)).strip()
    if line.startswith("'WAVEWATCH III SPECTRA'"):
        return WW3_SPECTRA
    if re.match(r"SWAN\s+\d", line):
        return SWAN_SPECTRA
    tokens = line.split()
    if not tokens or tokens[0] not in _TIME_COLUMNS:
        return None
    rest = [t for t in tokens[1:] if t not in ("MM", "mo", "DD", "dy", "hh", "hr", "mm", "mn")]
    if "Sep_Freq" in rest or any(_is_number(t) for t in rest):
        return NDBC_SPECTRUM
    return NDBC_STDMET


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _floats(tokens: Sequence[str], path: Path, line: int, what: str) -> list[float]:
    out = []
    for token in tokens:
        try:
            out.append(float(token))
        except ValueError:
            fixed = re.sub(r"(\d)([+-]\d{2,3})$", r"\1E\2", token)  # Fortran drops the E of 3-digit exponents
            try:
                out.append(float(fixed))
            except ValueError:
                raise TextFileError(path, line, f"{token!r} is not a number ({what}).") from None
    return out


def _position(position: tuple[float, float] | None, path: Path, family: str) -> tuple[float, float]:
    if position is None:
        raise InvalidArgumentError(
            f"{path.name} is an NDBC {family} text file, which holds no position: pass the station's "
            "position=(latitude, longitude) (from the NDBC station page)."
        )
    try:
        lat, lon = (float(v) for v in position)
    except (TypeError, ValueError) as err:
        raise InvalidArgumentError(f"position must be (latitude, longitude) in degrees, found {position!r}.") from err
    if not (-90 <= lat <= 90 and -360 <= lon <= 360):
        raise InvalidArgumentError(f"position must be (latitude, longitude) in degrees, found {position!r}.")
    return lat, lon


def _station_coords(lat: float, lon: float, name: str) -> dict:
    return {
        STATION: (STATION, [name]),
        "latitude": (STATION, [lat], {"units": "degrees_north", "standard_name": "latitude"}),
        "longitude": (STATION, [lon], {"units": "degrees_east", "standard_name": "longitude"}),
    }


# ---- NDBC -------------------------------------------------------------------------------------------------------
def _ndbc_rows(path: Path, lines: list[str]) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header tokens and the data rows (line number, tokens) of an NDBC text file."""
    if not lines:
        raise TextFileError(path, None, "the file is empty.")
    header = lines[0].split()
    if not header or header[0] not in _TIME_COLUMNS:
        raise TextFileError(path, 1, f"expected an NDBC header starting with #YY or YYYY, found {lines[0][:40]!r}.")
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):  # the units line, repeated headers
            continue
        rows.append((number, stripped.split()))
    if not rows:
        raise TextFileError(path, None, "the file holds a header but no records.")
    return header, rows


def _ndbc_time(tokens: list[str], has_minute: bool, path: Path, number: int) -> np.datetime64:
    n = 5 if has_minute else 4
    values = _floats(tokens[:n], path, number, "the time columns YY MM DD hh mm")
    if len(values) < n or any(v != int(v) for v in values):
        raise TextFileError(path, number, f"expected {n} integer time columns, found {tokens[:n]}.")
    year, month, day, hour = (int(v) for v in values[:4])
    minute = int(values[4]) if has_minute else 0
    if year < 100:
        year += 1900  # NDBC wrote 2-digit years until 1998
    try:
        return np.datetime64(pd.Timestamp(year, month, day, hour, minute), "ns")
    except ValueError as err:
        raise TextFileError(path, number, f"not a valid time {tokens[:n]} ({err}).") from None


def _has_minute(header: list[str]) -> bool:
    return len(header) > 4 and header[4] in ("mm", "mn")


def read_ndbc_stdmet(path: str | os.PathLike, *, position: tuple[float, float] | None = None) -> xr.Dataset:
    """Read an NDBC standard meteorological text file (historical ``*h2019.txt`` or realtime) into ``time`` series.

    The header names the columns (``#YY  MM DD hh mm WDIR WSPD GST  WVHT   DPD   APD MWD   PRES ...``, a units line
    ``#yr  mo dy hr mn ...`` after it; files before 2007 have ``YYYY`` or a 2-digit ``YY``, no minute, ``WD`` and
    ``BAR``). Known columns are renamed (:data:`NDBC_COLUMNS`: ``WVHT`` -> ``hs``, ``DPD`` -> ``tp``, ``APD`` ->
    ``tm02``, ``MWD`` -> ``mean_direction``, ``WSPD`` -> ``wind_speed`` ...) and keep their NDBC name in the
    attribute ``ndbc_name``; other numeric columns keep theirs, lower-cased; the word columns of realtime spectral
    summaries (:data:`NDBC_TEXT_COLUMNS`: ``SwD``, ``WWD``, ``STEEPNESS``) are left out. The missing codes (99,
    999, 9999 as NDBC documents them per column, ``MM`` in realtime files)
    become NaN. Records are sorted in time (realtime files run backwards). Read eagerly (a text file is small).

    Parameters
    ----------
    path : str or os.PathLike
        The file (gzip-compressed or not).
    position : tuple of float
        The station's (latitude, longitude) in degrees: the file holds none.

    Returns
    -------
    xarray.Dataset
        Variables along ``time`` and a one-member ``station`` dimension, with ``latitude(station)`` and
        ``longitude(station)``; units and long names from NDBC's documentation.

    Raises
    ------
    xwvnet.errors.InvalidArgumentError
        When ``position`` is missing or not (latitude, longitude).
    TextFileError
        For a damaged or truncated file: a record with too few columns, a value that is not a number, an invalid
        time; the message names the file and the line.

    Examples
    --------
    >>> from pathlib import Path
    >>> _ = Path("/tmp/41010h2019.txt").write_text(
    ...     "#YY  MM DD hh mm WDIR WSPD GST  WVHT   DPD   APD MWD\\n"
    ...     "#yr  mo dy hr mn degT m/s  m/s     m   sec   sec degT\\n"
    ...     "2019 01 01 00 50 120  5.1  6.2  1.20  8.00  5.10 999\\n")
    >>> ds = read_ndbc_stdmet("/tmp/41010h2019.txt", position=(28.9, -78.5))
    >>> float(ds.hs[0, 0]), bool(np.isnan(ds.mean_direction[0, 0]))
    (1.2, True)
    """
    path = Path(path)
    lat, lon = _position(position, path, "standard meteorological")
    header, rows = _ndbc_rows(path, _read_lines(path))
    minute = _has_minute(header)
    first = 5 if minute else 4
    names = [NDBC_ALIASES.get(h, h) for h in header[first:]]
    times = np.empty(len(rows), dtype="datetime64[ns]")
    values = np.full((len(rows), len(names)), np.nan)
    text = np.isin(names, NDBC_TEXT_COLUMNS)
    for i, (number, tokens) in enumerate(rows):
        if len(tokens) != len(header):
            raise TextFileError(
                path,
                number,
                f"expected {len(header)} columns ({' '.join(header)}), found "
                f"{len(tokens)}: a truncated or damaged record.",
            )
        times[i] = _ndbc_time(tokens, minute, path, number)
        for j, token in enumerate(tokens[first:]):
            if token == "MM" or text[j]:
                continue
            try:
                values[i, j] = float(token)
            except ValueError:
                raise TextFileError(path, number, f"{token!r} in column {header[first + j]} is not a number.") from None
    order = np.argsort(times, kind="stable")
    data = {}
    for j, name in enumerate(names):
        if text[j]:
            continue
        column = values[order, j]
        ours, units, long_name, code = NDBC_COLUMNS.get(name, (name.lower(), "", name, None))
        missing = np.isin(column, [code] if code is not None else _MISSING)
        attrs = {"units": units, "long_name": long_name, "ndbc_name": name}
        if ours in _STANDARD_NAMES:
            attrs["standard_name"] = _STANDARD_NAMES[ours]
        data[ours] = (("time", STATION), np.where(missing, np.nan, column)[:, None], attrs)
    return xr.Dataset(
        data,
        coords={"time": times[order], **_station_coords(lat, lon, _station_name(path))},
        attrs={
            "title": "NDBC standard meteorological data",
            "source_file": path.name,
            "comment": "read from NDBC text by xwvnet.io.text.read_ndbc_stdmet",
        },
    )


def _station_name(path: Path) -> str:
    stem = path.name.split(".")[0]
    return re.sub(r"[hwdijkc]\d{4}.*$", "", stem) or stem


def read_ndbc_spectrum(path: str | os.PathLike, *, position: tuple[float, float] | None = None) -> xr.Dataset:
    """Read an NDBC spectral wave density text file (``*w2019.txt``, realtime ``.data_spec``): E(f) along time.

    Historical files name the frequencies in the header (``#YY MM DD hh mm  .0200 .0325 ...``, or ``YYYY MM DD hh
    .030 ...`` before 2005) and give E(f) in m^2/Hz on each row; realtime ``.data_spec`` rows read
    ``YY MM DD hh mm Sep_Freq value (frequency) value (frequency) ...``. The missing code 999.00 becomes NaN. The
    spectrum is returned as such (``spectral_wave_density``, standard name
    ``sea_surface_wave_variance_spectral_density``), so that :func:`xwvnet.collocate` reduces it with
    :func:`xwvnet.joins.waves.frequency_parameters` (Hs = 4 sqrt(m0), Tm01, Tm02, Tp), as it does NDBC's netCDF
    ``swden`` files. Read eagerly (a text file is small).

    Parameters
    ----------
    path : str or os.PathLike
        The file (gzip-compressed or not).
    position : tuple of float
        The station's (latitude, longitude) in degrees: the file holds none.

    Returns
    -------
    xarray.Dataset
        ``spectral_wave_density(time, station, frequency)`` (m^2 Hz^-1) with a one-member ``station``,
        ``latitude(station)``, ``longitude(station)``; ``separation_frequency(time, station)`` for ``.data_spec``.

    Raises
    ------
    xwvnet.errors.InvalidArgumentError
        When ``position`` is missing or not (latitude, longitude).
    TextFileError
        For a damaged or truncated file (a record with too few values, a value that is not a number, frequencies
        that change from row to row); the message names the file and the line.

    Examples
    --------
    >>> from pathlib import Path
    >>> _ = Path("/tmp/41010w2019.txt").write_text("#YY  MM DD hh mm   .0200  .0325\\n"
    ...                                             "2019 02 06 00 40   0.50  999.00\\n")
    >>> read_ndbc_spectrum("/tmp/41010w2019.txt", position=(28.9, -78.5)).spectral_wave_density.values.ravel()
    array([0.5, nan])
    """
    path = Path(path)
    lat, lon = _position(position, path, "spectral")
    header, rows = _ndbc_rows(path, _read_lines(path))
    minute = _has_minute(header)
    first = 5 if minute else 4
    pairs = "Sep_Freq" in header
    if pairs:
        tokens = rows[0][1][first + 1 :]
        freqs = _floats([t.strip("()") for t in tokens[1::2]], path, rows[0][0], "a frequency in parentheses")
    else:
        freqs = _floats(header[first:], path, 1, "a frequency of the header")
    f = np.asarray(freqs)
    if f.size < 2 or np.any(np.diff(f) <= 0):
        raise TextFileError(
            path, 1 if not pairs else rows[0][0], f"the frequencies {freqs[:4]} ... are not increasing."
        )
    times = np.empty(len(rows), dtype="datetime64[ns]")
    values = np.full((len(rows), f.size), np.nan)
    separation = np.full(len(rows), np.nan)
    for i, (number, tokens) in enumerate(rows):
        times[i] = _ndbc_time(tokens, minute, path, number)
        rest = tokens[first:]
        if pairs:
            expected = 1 + 2 * f.size
            if len(rest) != expected:
                raise TextFileError(
                    path,
                    number,
                    f"expected Sep_Freq and {f.size} (value, frequency) pairs, found "
                    f"{len(rest)} values: a truncated or damaged record.",
                )
            separation[i] = _floats(rest[:1], path, number, "Sep_Freq")[0]
            row_f = _floats([t.strip("()") for t in rest[2::2]], path, number, "a frequency in parentheses")
            if not np.allclose(row_f, f):
                raise TextFileError(path, number, "the frequencies differ from those of the first record.")
            row = _floats(rest[1::2], path, number, "a spectral density")
        else:
            if len(rest) != f.size:
                raise TextFileError(
                    path,
                    number,
                    f"expected {f.size} spectral densities after the time, found "
                    f"{len(rest)}: a truncated or damaged record.",
                )
            row = _floats(rest, path, number, "a spectral density")
        values[i] = row
    values[np.isin(values, (999.0, 9999.0))] = np.nan
    order = np.argsort(times, kind="stable")
    data = {
        "spectral_wave_density": (
            ("time", STATION, "frequency"),
            values[order][:, None, :],
            {"units": "m2 Hz-1", "standard_name": _FREQUENCY_SPECTRUM, "long_name": "spectral wave density E(f)"},
        )
    }
    if pairs:
        data["separation_frequency"] = (
            ("time", STATION),
            separation[order][:, None],
            {"units": "Hz", "long_name": "NDBC wind-sea/swell separation frequency"},
        )
    coords = {
        "time": times[order],
        "frequency": ("frequency", f, {"units": "Hz"}),
        **_station_coords(lat, lon, _station_name(path)),
    }
    return xr.Dataset(
        data,
        coords=coords,
        attrs={
            "title": "NDBC spectral wave density",
            "source_file": path.name,
            "comment": "read from NDBC text by xwvnet.io.text.read_ndbc_spectrum",
        },
    )


# ---- WAVEWATCH III and SWAN ASCII spectra ------------------------------------------------------------------------
class _Cursor:
    """Lines of a file read in order, with the line number at hand for error messages."""

    def __init__(self, path: Path, lines: list[str]) -> None:
        self.path, self.lines, self.i = path, lines, 0

    @property
    def number(self) -> int:
        return self.i  # 1-based number of the line last read

    def done(self) -> bool:
        while self.i < len(self.lines) and not self.lines[self.i].strip():
            self.i += 1
        return self.i >= len(self.lines)

    def peek(self) -> str:
        return "" if self.done() else self.lines[self.i]

    def line(self, what: str) -> str:
        if self.done():
            raise TextFileError(self.path, len(self.lines), f"the file ends where {what} was expected: truncated.")
        self.i += 1
        return self.lines[self.i - 1]

    def floats(self, n: int, what: str) -> np.ndarray:
        out: list[float] = []
        while len(out) < n:
            tokens = self.line(f"{what} ({len(out)} of {n} read)").split()
            out += _floats(tokens, self.path, self.number, what)
        if len(out) != n:
            raise TextFileError(self.path, self.number, f"{len(out)} values where {n} {what} were expected.")
        return np.asarray(out)

    def count(self, what: str) -> int:
        token = self.line(f"the number of {what}").split()[0]
        if not token.isdigit():
            raise TextFileError(self.path, self.number, f"expected the number of {what}, found {token!r}.")
        return int(token)


def read_ww3_spectra(path: str | os.PathLike) -> xr.Dataset:
    """Read WAVEWATCH III ASCII point spectra (``ww3.*.spec``, written by ``ww3_outp``) into ``efth``.

    The file starts with ``'WAVEWATCH III SPECTRA'  nf  nd  np``, the nf frequencies (Hz) and nd directions
    (radians, the direction waves travel to, clockwise from north), then for each time a ``yyyymmdd hhmmss`` line
    and for each point a line ``'name' latitude longitude depth wind_speed wind_direction current_speed
    current_direction`` followed by the nf x nd densities (m^2 s rad^-1, frequency varying fastest). Positions are
    kept per (time, station), so that moving points stay right (the joins treat fixed ones as stations). The
    spectrum is returned as such: :func:`xwvnet.collocate` reduces it with :mod:`xwvnet.joins.waves`. Read
    eagerly (a text file is small).

    Parameters
    ----------
    path : str or os.PathLike
        The file (gzip-compressed or not).

    Returns
    -------
    xarray.Dataset
        ``efth(time, station, frequency, direction)``, ``depth``, ``wind_speed``, ``wind_direction``,
        ``current_speed``, ``current_direction`` on ``(time, station)``; coordinates ``latitude(time, station)``,
        ``longitude(time, station)``, ``station`` (the point names), ``frequency`` (Hz), ``direction`` (degrees).

    Raises
    ------
    TextFileError
        For a damaged or truncated file: a header without nf nd np, a value that is not a number, a spectrum
        cut short, a point line without its eight fields; the message names the file and the line.
    """
    path = Path(path)
    cur = _Cursor(path, _read_lines(path))
    head = cur.line("the header")
    match = re.match(r"\s*'WAVEWATCH III SPECTRA'\s+(\d+)\s+(\d+)\s+(\d+)", head)
    if match is None:
        raise TextFileError(path, 1, "expected \"'WAVEWATCH III SPECTRA'  nf  nd  np\" on the first line.")
    nf, nd, npoints = (int(g) for g in match.groups())
    freqs = cur.floats(nf, "frequencies")
    dirs = np.rad2deg(cur.floats(nd, "directions")) % 360.0
    times, names, blocks, fields, lats, lons = [], [], [], [], [], []
    while not cur.done():
        stamp = cur.line("a time").split()
        try:
            times.append(np.datetime64(pd.Timestamp(f"{stamp[0]}T{stamp[1]}"), "ns"))
        except (IndexError, ValueError):
            raise TextFileError(path, cur.number, f"expected a time 'yyyymmdd hhmmss', found {stamp}.") from None
        step_names, step_specs, step_fields, step_lat, step_lon = [], [], [], [], []
        for _ in range(npoints):
            line = cur.line(f"point {len(step_names) + 1} of {npoints} at {stamp[0]} {stamp[1]}")
            quoted = re.match(r"\s*'([^']*)'(.*)", line)
            parts = quoted.group(2).split() if quoted else []
            if quoted is None or len(parts) < 7:
                raise TextFileError(
                    path,
                    cur.number,
                    "expected a point line \"'name' latitude longitude depth "
                    f'wind_speed wind_direction current_speed current_direction", found {line[:60]!r}.',
                )
            values = _floats(parts[:7], path, cur.number, "a point's position, depth, wind or current")
            step_names.append(quoted.group(1).strip())
            step_lat.append(values[0])
            step_lon.append(values[1])
            step_fields.append(values[2:7])
            spec = cur.floats(nf * nd, f"spectral densities of point {quoted.group(1).strip()!r}")
            step_specs.append(spec.reshape(nd, nf).T)
        if names and step_names != names:
            raise TextFileError(
                path, cur.number, f"the points {step_names} differ from those of the first time {names}."
            )
        names = step_names
        blocks.append(step_specs)
        fields.append(step_fields)
        lats.append(step_lat)
        lons.append(step_lon)
    if not times:
        raise TextFileError(path, cur.number, "the file holds a header but no spectra: truncated.")
    order = np.argsort(dirs, kind="stable")
    efth = np.asarray(blocks)[..., order]
    field = np.asarray(fields)
    dims = ("time", STATION)
    extra = {
        name: (dims, field[..., k], {"units": units, "long_name": long_name})
        for k, (name, units, long_name) in enumerate(
            [
                ("depth", "m", "water depth"),
                ("wind_speed", "m s-1", "wind speed"),
                ("wind_direction", "degree", "wind direction as written by ww3_outp"),
                ("current_speed", "m s-1", "current speed"),
                ("current_direction", "degree", "current direction as written by ww3_outp"),
            ]
        )
    }
    return xr.Dataset(
        {
            "efth": (
                ("time", STATION, "frequency", "direction"),
                efth,
                {
                    "units": "m2 s rad-1",
                    "standard_name": _DIRECTIONAL_SPECTRUM,
                    "long_name": "directional wave variance spectral density",
                },
            ),
            **extra,
        },
        coords={
            "time": np.asarray(times),
            STATION: (STATION, names),
            "frequency": ("frequency", freqs, {"units": "Hz"}),
            "direction": ("direction", dirs[order], {"units": "degree", "long_name": _TO_NORTH}),
            "latitude": (dims, np.asarray(lats), {"units": "degrees_north", "standard_name": "latitude"}),
            "longitude": (dims, np.asarray(lons), {"units": "degrees_east", "standard_name": "longitude"}),
        },
        attrs={
            "title": "WAVEWATCH III point spectra",
            "source_file": path.name,
            "comment": "read from ww3_outp ASCII by xwvnet.io.text.read_ww3_spectra",
        },
    )


def _swan_keyword(cur: _Cursor) -> str:
    """The next SWAN keyword line, skipping ``$`` comments."""
    while True:
        line = cur.line("a SWAN keyword")
        if not line.lstrip().startswith("$"):
            return line


def read_swan_spectra(path: str | os.PathLike) -> xr.Dataset:
    """Read a SWAN ASCII spectral file (``SPECOUT ... SPEC2D``, ``.spec``) into ``efth``.

    The header has ``SWAN 1``, ``$`` comments, ``TIME`` (with a time coding option; a file without it is one
    field without time), ``LONLAT`` and the locations (longitude latitude), ``AFREQ`` or ``RFREQ`` and the
    frequencies (Hz), ``NDIR`` (nautical: waves come from, clockwise from north) or ``CDIR`` (Cartesian: waves
    travel to, counter-clockwise from east; turned here into the direction waves travel to, clockwise from north)
    and the directions, ``QUANT`` with ``VaDens`` (m^2/Hz/degr) or ``EnDens`` (J/m^2/Hz/degr, divided by
    :data:`SWAN_RHO_G`), its unit and exception value. Then for each time a ``yyyymmdd.hhmmss`` line and for each
    location ``FACTOR`` with the factor and nf rows of nd integers, ``NODATA`` (NaN) or ``ZERO``. The exception
    value becomes NaN. ``LOCATIONS`` (Cartesian x, y in metres) cannot be placed on the sphere and is refused.
    Read eagerly (a text file is small); :func:`xwvnet.collocate` reduces the spectrum with
    :mod:`xwvnet.joins.waves`.

    Parameters
    ----------
    path : str or os.PathLike
        The file (gzip-compressed or not).

    Returns
    -------
    xarray.Dataset
        ``efth(time, station, frequency, direction)`` in m^2 Hz^-1 degree^-1 (no ``time`` for a file without
        ``TIME``), coordinates ``latitude(time, station)``, ``longitude(time, station)``, ``frequency`` (Hz),
        ``direction`` (degrees, sorted).

    Raises
    ------
    TextFileError
        For a damaged or truncated file (a missing keyword, a count that is not a number, a row cut short, a
        value that is not a number), or Cartesian ``LOCATIONS``; the message names the file and the line.
    """
    path = Path(path)
    cur = _Cursor(path, _read_lines(path))
    if not re.match(r"\s*SWAN\s+\d", cur.line("the header")):
        raise TextFileError(path, 1, "expected 'SWAN   1' on the first line.")
    key = _swan_keyword(cur).split()[0]
    timed = key == "TIME"
    if timed:
        cur.count("time coding option")
        key = _swan_keyword(cur).split()[0]
    if key == "LOCATIONS":
        raise TextFileError(
            path,
            cur.number,
            "LOCATIONS are Cartesian (x, y in metres) and cannot be placed on "
            "the sphere: write the spectra with SPECOUT in spherical coordinates (LONLAT).",
        )
    if key != "LONLAT":
        raise TextFileError(path, cur.number, f"expected LONLAT, found {key!r}.")
    n = cur.count("locations")
    xy = np.asarray([_floats(cur.line("a location").split()[:2], path, cur.number, "a location") for _ in range(n)])
    if xy.shape != (n, 2):
        raise TextFileError(path, cur.number, "each location needs a longitude and a latitude.")
    key = _swan_keyword(cur).split()[0]
    if key not in ("AFREQ", "RFREQ"):
        raise TextFileError(path, cur.number, f"expected AFREQ or RFREQ, found {key!r}.")
    nf = cur.count("frequencies")
    freqs = np.asarray(
        [_floats(cur.line("a frequency").split()[:1], path, cur.number, "a frequency")[0] for _ in range(nf)]
    )
    key = _swan_keyword(cur).split()[0]
    if key not in ("NDIR", "CDIR"):
        raise TextFileError(
            path, cur.number, f"expected NDIR or CDIR (2-D spectra), found {key!r}; 1-D SWAN spectra are not read."
        )
    nautical = key == "NDIR"
    nd = cur.count("directions")
    dirs = np.asarray(
        [_floats(cur.line("a direction").split()[:1], path, cur.number, "a direction")[0] for _ in range(nd)]
    )
    if _swan_keyword(cur).split()[0] != "QUANT":
        raise TextFileError(path, cur.number, "expected QUANT.")
    if cur.count("quantities") != 1:
        raise TextFileError(path, cur.number, "expected one quantity (VaDens or EnDens).")
    quantity = cur.line("the quantity").split()[0]
    if quantity not in ("VaDens", "EnDens"):
        raise TextFileError(path, cur.number, f"expected VaDens or EnDens, found {quantity!r}.")
    cur.line("the unit")
    exception = _floats(cur.line("the exception value").split()[:1], path, cur.number, "the exception value")[0]
    scale = 1.0 / SWAN_RHO_G if quantity == "EnDens" else 1.0
    times, blocks = [], []
    while not cur.done():
        if timed:
            stamp = cur.line("a time").split()[0]
            try:
                times.append(np.datetime64(pd.to_datetime(stamp, format="%Y%m%d.%H%M%S"), "ns"))
            except ValueError:
                raise TextFileError(path, cur.number, f"expected a time yyyymmdd.hhmmss, found {stamp!r}.") from None
        step = []
        for k in range(n):
            word = cur.line(f"FACTOR, NODATA or ZERO of location {k + 1}").split()[0]
            if word == "NODATA":
                step.append(np.full((nf, nd), np.nan))
            elif word == "ZERO":
                step.append(np.zeros((nf, nd)))
            elif word == "FACTOR":
                factor = cur.floats(1, "the factor")[0]
                raw = cur.floats(nf * nd, f"densities of location {k + 1}").reshape(nf, nd)
                step.append(np.where(raw == exception, np.nan, raw * factor * scale))
            else:
                raise TextFileError(path, cur.number, f"expected FACTOR, NODATA or ZERO, found {word!r}.")
        blocks.append(step)
        if not timed:
            break
    if not blocks:
        raise TextFileError(path, cur.number, "the file holds a header but no spectra: truncated.")
    if not timed and not cur.done():
        raise TextFileError(path, cur.number + 1, "more spectra after the first in a file without TIME.")
    if nautical:
        long_name = _FROM_NORTH
    else:
        dirs, long_name = (90.0 - dirs) % 360.0, _TO_NORTH
    order = np.argsort(dirs % 360.0, kind="stable")
    efth = np.asarray(blocks)[..., order]
    lon = np.broadcast_to(xy[:, 0], (len(blocks), n))
    lat = np.broadcast_to(xy[:, 1], (len(blocks), n))
    dims = ("time", STATION)
    coords = {
        STATION: (STATION, np.arange(1, n + 1)),
        "frequency": ("frequency", freqs, {"units": "Hz"}),
        "direction": ("direction", dirs[order] % 360.0, {"units": "degree", "long_name": long_name}),
        "latitude": (dims, lat, {"units": "degrees_north", "standard_name": "latitude"}),
        "longitude": (dims, lon, {"units": "degrees_east", "standard_name": "longitude"}),
    }
    if timed:
        coords["time"] = np.asarray(times)
    out = xr.Dataset(
        {
            "efth": (
                ("time", STATION, "frequency", "direction"),
                efth,
                {
                    "units": "m2 Hz-1 degree-1",
                    "standard_name": _DIRECTIONAL_SPECTRUM,
                    "long_name": f"directional wave variance spectral density (SWAN {quantity})",
                },
            )
        },
        coords=coords,
        attrs={
            "title": "SWAN spectra",
            "source_file": path.name,
            "comment": "read from SWAN ASCII by xwvnet.io.text.read_swan_spectra",
        },
    )
    if not timed:
        out = out.isel(time=0).assign_coords(
            latitude=(STATION, xy[:, 1], out.latitude.attrs), longitude=(STATION, xy[:, 0], out.longitude.attrs)
        )
    return out


# ---- any of them, one file or many ---------------------------------------------------------------------------
_READERS = {
    NDBC_STDMET: read_ndbc_stdmet,
    NDBC_SPECTRUM: read_ndbc_spectrum,
    WW3_SPECTRA: read_ww3_spectra,
    SWAN_SPECTRA: read_swan_spectra,
}


def _open_one(path: Path, position: tuple[float, float] | None) -> xr.Dataset:
    family = text_family(path)
    if family is None:
        raise TextFileError(
            path,
            1,
            "not a text file xwvnet reads: the first line is none of NDBC's header "
            "(#YY MM DD hh ...), 'WAVEWATCH III SPECTRA' or 'SWAN   1'.",
        )
    if family in (NDBC_STDMET, NDBC_SPECTRUM):
        return _READERS[family](path, position=position)
    if position is not None:
        raise InvalidArgumentError(f"{path.name} holds the positions of its points: do not pass position=.")
    return _READERS[family](path)


def _end_to_end(parts: list[xr.Dataset]) -> xr.Dataset:
    """Files of one family put end to end along ``time``, sorted, repeated records (same time) kept once."""
    if len(parts) == 1:
        return parts[0]
    joined = xr.concat(
        parts,
        dim="time",
        data_vars="all",
        coords="different",
        compat="equals",
        join="outer",
        combine_attrs="drop_conflicts",
    )
    t = np.asarray(joined["time"].values)
    order = np.argsort(t, kind="stable")
    first = np.ones(t.size, dtype=bool)
    first[1:] = t[order][1:] != t[order][:-1]
    return joined.isel(time=order[first]).assign_attrs(
        duplicate_times_dropped=int((~first).sum()), source_files=len(parts)
    )


def open_text(
    paths: str | os.PathLike | Sequence[str | os.PathLike], *, position: tuple[float, float] | None = None
) -> xr.Dataset:
    """Open text files of one family (told by :func:`text_family`), one or many, as one Dataset along ``time``.

    Each file is read by its family's reader; many files (a folder of yearly NDBC files, daily WW3 spectra) are
    put end to end in time, sorted, a record repeated in two files kept once. In a many-file source a damaged file
    is skipped with a warning that names it and the line, and the others are read; a single damaged file is an
    error. Read eagerly (text files are small).

    Parameters
    ----------
    paths : str, os.PathLike or sequence of them
        The files (not folders or patterns: :func:`xwvnet.io.sources.resolve` expands those).
    position : tuple of float, optional
        The station's (latitude, longitude) for NDBC files, which hold none (required for them); refused for
        files that carry their positions.

    Returns
    -------
    xarray.Dataset
        As the family's reader returns it (:func:`read_ndbc_stdmet`, :func:`read_ndbc_spectrum`,
        :func:`read_ww3_spectra`, :func:`read_swan_spectra`), several files concatenated along ``time``.

    Raises
    ------
    TextFileError
        For one file that is damaged or not of a known family, every file of many being damaged, or files of
        different families; the message names the file and the line.
    xwvnet.errors.InvalidArgumentError
        For NDBC files without ``position``, or ``position`` with files that hold their own.

    Warns
    -----
    xwvnet.errors.XWVNetWarning
        For each damaged file skipped in a many-file source.
    """
    files = [Path(paths)] if isinstance(paths, str | os.PathLike) else [Path(p) for p in paths]
    if not files:
        raise InvalidArgumentError("open_text needs at least one file.")
    if len(files) == 1:
        return _open_one(files[0], position)
    parts, families, skipped = [], set(), []
    for file in files:
        try:
            parts.append(_open_one(file, position))
        except TextFileError as err:
            skipped.append(str(err))
            warn(f"skipped a damaged file of a many-file source, the others are read: {err}")
            continue
        families.add(text_family(file))
    if not parts:
        raise TextFileError(files[0], None, f"none of the {len(files)} files could be read: {'; '.join(skipped)}")
    if families & {NDBC_STDMET, NDBC_SPECTRUM}:  # one position given: one station, whatever the file names
        parts = [part.assign_coords({STATION: parts[0][STATION].values}) for part in parts]
    if len(families) > 1:
        raise TextFileError(
            files[0],
            None,
            f"the files are of different families ({sorted(families)}); give "
            "files of one family (one station's NDBC files, one model run's spectra).",
        )
    try:
        return _end_to_end(parts)
    except (ValueError, KeyError) as err:
        raise TextFileError(
            files[0],
            None,
            f"the {len(parts)} files cannot be put end to end in time ({err}); "
            "give files of one station or one set of points.",
        ) from err
