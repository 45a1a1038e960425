"""Sentinel-1 WV Level-1 SLC SAFE products (folders or zips) to calibrated sigma0, lazily per imagette.

A WV SLC product holds one imagette per measurement file (complex int16 TIFF, slant range x azimuth), with one
annotation, one calibration and one noise XML each, all listed in ``manifest.safe``. This reader needs only
``tifffile`` (pure Python, no GDAL) and the standard library's ElementTree:

* every XML is read up front (they are small): ids, times, geolocation, calibration and noise LUTs, so a bad
  imagette is found, skipped and reported before any pixel is read;
* pixels are read by one dask task per imagette; ``sigma0 = |DN|^2 / sigmaNought^2`` (ESA's Level-1 calibration
  for SLC), the LUT interpolated bilinearly over lines and pixels (separable linear interpolation, held constant
  beyond the first and last vectors and pixels);
* thermal noise removal is off by default (``denoise=False``): ``(|DN|^2 - noise) / sigmaNought^2`` with the
  noise range LUT (``noiseRangeVector/noiseRangeLut``, or ``noiseVector/noiseLut`` before IPF 2.9), times the
  azimuth noise LUT where a product has one (WV products have none).

The xarray-safe-s1 reader (umr-lops) was evaluated as the alternative; see ``docs/safe.md`` for why this light
reader is used.
"""

from __future__ import annotations

import os
import warnings
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import xarray as xr

from .. import schema as S
from .names import imagette_key, parse_name
from .quicklook import NoReadableImageError

#: lines per block when calibrating (bounds the memory of the interpolated LUT)
BLOCK_LINES = 1024
PASS = "pass"
LINE_SPACING = "line_spacing"
SAMPLE_SPACING = "sample_spacing"
SAFE = "safe"


class SafeWarning(UserWarning):
    """Some imagettes (or whole products) of a SAFE batch were skipped; the rest were read.

    Their ids and reasons are in the warning and in ``ds.attrs["skipped"]``.
    """


class _Product:
    """Read files of one SAFE product, a folder or a zip holding ``<name>.SAFE/``, by path relative to its root."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path).expanduser()
        if self.path.is_dir():
            if self.path.name == "manifest.safe":
                self.path = self.path.parent
            self.zip_prefix: str | None = None
            folder = self.path.name
        elif self.path.is_file() and self.path.name == "manifest.safe":
            self.path = self.path.parent
            self.zip_prefix = None
            folder = self.path.name
        elif self.path.is_file() and zipfile.is_zipfile(self.path):
            with zipfile.ZipFile(self.path) as zf:
                manifests = [n for n in zf.namelist() if n.endswith("manifest.safe")]
            if not manifests:
                raise ValueError(f"{self.path} is a zip without a manifest.safe: expected a zipped SAFE product.")
            self.zip_prefix = manifests[0][: -len("manifest.safe")]
            folder = self.zip_prefix.rstrip("/").split("/")[-1] or self.path.stem
        else:
            raise FileNotFoundError(
                f"{self.path} is neither a SAFE folder, its manifest.safe, nor a zipped SAFE product; pass "
                "'...SAFE' folders or '...zip' files."
            )
        self.name = folder[: -len(".SAFE")] if folder.upper().endswith(".SAFE") else folder

    def _member(self, rel: str) -> str:
        return f"{self.zip_prefix}{rel.lstrip('./')}" if rel.startswith("./") else f"{self.zip_prefix}{rel}"

    def read(self, rel: str) -> bytes:
        rel = rel[2:] if rel.startswith("./") else rel
        if self.zip_prefix is None:
            return (self.path / rel).read_bytes()
        with zipfile.ZipFile(self.path) as zf:
            return zf.read(f"{self.zip_prefix}{rel}")

    def size(self, rel: str) -> int:
        rel = rel[2:] if rel.startswith("./") else rel
        if self.zip_prefix is None:
            return (self.path / rel).stat().st_size
        with zipfile.ZipFile(self.path) as zf:
            return zf.getinfo(f"{self.zip_prefix}{rel}").file_size

    def open(self, rel: str):  # noqa: ANN201 (a binary file object, closed by the caller)
        rel = rel[2:] if rel.startswith("./") else rel
        if self.zip_prefix is None:
            return open(self.path / rel, "rb")
        return _ZipMember(self.path, f"{self.zip_prefix}{rel}")


class _ZipMember:
    """A seekable binary file for one zip member (kept open with its archive until closed)."""

    def __init__(self, archive: Path, member: str) -> None:
        self._zf = zipfile.ZipFile(archive)
        self._fh = self._zf.open(member)

    def __getattr__(self, name: str) -> object:
        return getattr(self._fh, name)

    def __enter__(self) -> _ZipMember:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._fh.close()
        self._zf.close()


@dataclass
class Lut:
    """A Level-1 look-up table: values at (line, pixel) nodes, one vector per line, as annotated."""

    lines: np.ndarray  # (n,) int
    pixels: list[np.ndarray]  # n arrays
    values: list[np.ndarray]  # n arrays, same lengths as pixels

    def on(self, line0: int, line1: int, samples: int) -> np.ndarray:
        """Interpolate bilinearly onto image lines ``line0 <= l < line1`` and all samples (float64)."""
        rows = np.stack([np.interp(np.arange(samples), p, v) for p, v in zip(self.pixels, self.values)])
        if len(self.lines) == 1:
            return np.broadcast_to(rows[0], (line1 - line0, samples))
        lines = np.arange(line0, line1, dtype=np.float64)
        k = np.clip(np.searchsorted(self.lines, lines, side="right") - 1, 0, len(self.lines) - 2)
        w = np.clip((lines - self.lines[k]) / (self.lines[k + 1] - self.lines[k]), 0.0, 1.0)[:, None]
        return rows[k] * (1.0 - w) + rows[k + 1] * w


@dataclass
class SlcImagette:
    """One imagette of a WV SLC product: where its files are, and everything its annotations say.

    Made by :func:`scan_safe`; :meth:`sigma0` reads and calibrates its pixels.
    """

    product: _Product
    measurement: str
    id: str
    lines: int
    samples: int
    time: np.datetime64
    latitude: float
    longitude: float
    incidence: float
    heading: float
    pass_direction: str
    azimuth_spacing: float
    range_spacing: float
    info: dict = field(default_factory=dict)  # parse_name fields of the measurement file
    calibration: Lut | None = None
    noise: Lut | None = None
    noise_azimuth: tuple[np.ndarray, np.ndarray] | None = None
    incidence_profile: np.ndarray | None = None  # incidence (degrees) per sample at the centre line

    @property
    def ground_spacing(self) -> float:
        """Ground-range pixel spacing at the centre (slant spacing / sin(incidence)), metres."""
        return float(self.range_spacing / np.sin(np.deg2rad(self.incidence)))

    def sigma0(self, denoise: bool = False) -> np.ndarray:
        """Read the measurement and calibrate it: float32 ``(lines, samples)`` linear sigma0.

        Parameters
        ----------
        denoise : bool, default False
            Subtract the thermal noise LUT before calibrating (values may become negative).

        Returns
        -------
        numpy.ndarray
            float32 ``(lines, samples)``.

        Raises
        ------
        ValueError
            If ``denoise`` is asked and the imagette has no noise LUT, or the pixels are not what the annotation
            announces.
        """
        return calibrate(self.read_dn(), self, denoise=denoise)

    def read_dn(self) -> np.ndarray:
        """The measurement's complex DN, complex64 ``(lines, samples)``."""
        import tifffile

        with self.product.open(self.measurement) as fh:
            dn = tifffile.imread(fh)
        if dn.shape != (self.lines, self.samples):
            raise ValueError(f"{self.id}: measurement shape {dn.shape} differs from the annotation's "
                             f"({self.lines}, {self.samples}).")
        return dn


def calibrate(dn: np.ndarray, imagette: SlcImagette, denoise: bool = False) -> np.ndarray:
    """Complex DN -> linear sigma0 with the imagette's LUTs, by blocks of lines (float32 result).

    Parameters
    ----------
    dn : numpy.ndarray
        complex ``(lines, samples)`` as read from the measurement.
    imagette : SlcImagette
        Its annotations (calibration and noise LUTs).
    denoise : bool, default False
        Subtract the noise LUT (range vectors, times azimuth vectors where present) first.

    Returns
    -------
    numpy.ndarray
        float32 ``(lines, samples)``.

    Raises
    ------
    ValueError
        If ``denoise`` is asked but the imagette has no noise LUT.
    """
    if denoise and imagette.noise is None:
        raise ValueError(f"{imagette.id}: denoise=True but its noise XML has no noise vectors.")
    lines, samples = dn.shape
    out = np.empty((lines, samples), dtype=np.float32)
    for a in range(0, lines, BLOCK_LINES):
        b = min(lines, a + BLOCK_LINES)
        block = dn[a:b]
        power = np.square(block.real, dtype=np.float64) + np.square(block.imag, dtype=np.float64)
        if denoise:
            noise = imagette.noise.on(a, b, samples)
            if imagette.noise_azimuth is not None:
                noise = noise * np.interp(np.arange(a, b), *imagette.noise_azimuth)[:, None]
            power = power - noise
        out[a:b] = power / np.square(imagette.calibration.on(a, b, samples))
    return out


# --- XML ------------------------------------------------------------------------------------------------------------
def _text(root: ET.Element, path: str) -> str:
    value = root.findtext(path)
    if value is None or not value.strip():
        raise ValueError(f"missing <{path}>")
    return value.strip()


def _floats(text: str | None, what: str) -> np.ndarray:
    try:
        values = np.array((text or "").split(), dtype=np.float64)
    except ValueError as err:
        raise ValueError(f"{what} is not a list of numbers ({err})") from err
    return values


def _lut(root: ET.Element, vector: str, value: str, what: str) -> Lut | None:
    vectors = root.findall(f".//{vector}")
    if not vectors:
        return None
    lines, pixels, values = [], [], []
    for v in vectors:
        line = _floats(v.findtext("line"), f"{what} <line>")
        pixel = _floats(v.findtext("pixel"), f"{what} <pixel>")
        val = _floats(v.findtext(value), f"{what} <{value}>")
        if line.size != 1 or pixel.size == 0 or pixel.size != val.size:
            raise ValueError(f"{what}: a vector has {pixel.size} pixels but {val.size} <{value}> values")
        if not np.all(np.isfinite(val)) or not np.all(np.diff(pixel) > 0):
            raise ValueError(f"{what}: <{value}> holds non-finite values or pixels are not increasing")
        lines.append(line[0])
        pixels.append(pixel)
        values.append(val)
    order = np.argsort(lines)
    lines_arr = np.asarray(lines)[order]
    if np.any(np.diff(lines_arr) <= 0):
        raise ValueError(f"{what}: vector lines are not distinct")
    return Lut(lines_arr, [pixels[i] for i in order], [values[i] for i in order])


def _grid_centre(root: ET.Element, lines: int, samples: int) -> tuple[float, float, float, np.ndarray]:
    """Latitude, longitude, incidence at the image centre, and incidence per sample along the centre line."""
    from scipy.interpolate import RegularGridInterpolator

    points = root.findall(".//geolocationGrid/geolocationGridPointList/geolocationGridPoint")
    if len(points) < 4:
        raise ValueError(f"the geolocation grid has {len(points)} points (need at least 2 x 2)")
    table = np.array([[float(_text(p, k)) for k in ("line", "pixel", "latitude", "longitude", "incidenceAngle")]
                      for p in points])
    ul, up = np.unique(table[:, 0]), np.unique(table[:, 1])
    if ul.size * up.size != len(points) or ul.size < 2 or up.size < 2:
        raise ValueError("the geolocation grid is not a complete line x pixel grid")
    table = table[np.lexsort((table[:, 1], table[:, 0]))]
    lon = table[:, 3]
    lon = (lon - lon[0] + 180.0) % 360.0 - 180.0 + lon[0]  # continuous across the antimeridian
    centre = ((lines - 1) / 2.0, (samples - 1) / 2.0)
    out = []
    for values in (table[:, 2], lon, table[:, 4]):
        f = RegularGridInterpolator((ul, up), values.reshape(ul.size, up.size), bounds_error=False, fill_value=None)
        out.append(f)
    lat, lon_c, inc = (float(f([centre])[0]) for f in out)
    profile = out[2](np.column_stack([np.full(samples, centre[0]), np.arange(samples)]))
    return lat, (lon_c + 180.0) % 360.0 - 180.0, inc, profile


def _time(text: str) -> np.datetime64:
    return np.datetime64(text.strip().rstrip("Z"), "ns")


def _imagette(product: _Product, stem: str, files: dict[str, str]) -> SlcImagette:
    """Parse one imagette's XMLs and check its measurement header; raise ValueError/OSError naming the problem."""
    import tifffile

    info = parse_name(stem)
    for kind in ("annotation", "calibration", "measurement"):
        if kind not in files:
            raise ValueError(f"the manifest lists no {kind} file")
    try:
        annotation = ET.fromstring(product.read(files["annotation"]))
    except (OSError, KeyError) as err:
        raise ValueError(f"annotation {files['annotation']} cannot be read ({type(err).__name__}: {err})") from err
    except ET.ParseError as err:
        raise ValueError(f"annotation {files['annotation']} is not XML ({err})") from err
    lines = int(_text(annotation, "imageAnnotation/imageInformation/numberOfLines"))
    samples = int(_text(annotation, "imageAnnotation/imageInformation/numberOfSamples"))
    lat, lon, inc, profile = _grid_centre(annotation, lines, samples)
    try:
        cal_root = ET.fromstring(product.read(files["calibration"]))
    except (OSError, KeyError) as err:
        raise ValueError(f"calibration {files['calibration']} cannot be read ({type(err).__name__}: {err})") from err
    except ET.ParseError as err:
        raise ValueError(f"calibration {files['calibration']} is not XML ({err})") from err
    calibration = _lut(cal_root, "calibrationVectorList/calibrationVector", "sigmaNought", "calibration")
    if calibration is None:
        raise ValueError(f"calibration {files['calibration']} has no calibrationVector")
    if not all(np.all(v > 0) for v in calibration.values):
        raise ValueError(f"calibration {files['calibration']}: sigmaNought must be > 0")
    noise, noise_az = None, None
    if "noise" in files:
        try:
            noise_root = ET.fromstring(product.read(files["noise"]))
            noise = (_lut(noise_root, "noiseRangeVectorList/noiseRangeVector", "noiseRangeLut", "noise")
                     or _lut(noise_root, "noiseVectorList/noiseVector", "noiseLut", "noise"))
            az = noise_root.findall(".//noiseAzimuthVectorList/noiseAzimuthVector")
            if az:
                noise_az = (_floats(az[0].findtext("line"), "noise azimuth <line>"),
                            _floats(az[0].findtext("noiseAzimuthLut"), "noise azimuth LUT"))
        except (OSError, KeyError, ET.ParseError, ValueError):
            noise, noise_az = None, None  # only denoise needs it: calibrate() says so then
    with product.open(files["measurement"]) as fh:
        try:
            with tifffile.TiffFile(fh) as tif:
                page = tif.pages[0]
                shape, kind = page.shape, page.dtype
                end = max(int(o) + int(c) for o, c in zip(page.dataoffsets, page.databytecounts))
        except Exception as err:  # tifffile raises its own TiffFileError, struct.error, ValueError...
            raise ValueError(f"measurement {files['measurement']} is not a readable TIFF ({err})") from err
    if tuple(shape) != (lines, samples) or kind is None or np.dtype(kind).kind != "c":
        raise ValueError(f"measurement {files['measurement']} holds {kind} {tuple(shape)}, the annotation says "
                         f"complex ({lines}, {samples})")
    size = product.size(files["measurement"])
    if end > size:
        raise ValueError(f"measurement {files['measurement']} is truncated ({size} bytes, pixels need {end})")
    pass_direction = annotation.findtext("generalAnnotation/productInformation/pass", default="").strip().lower()
    return SlcImagette(
        product=product, measurement=files["measurement"], id=f"{product.name}:{info['imagette_number']:03d}",
        lines=lines, samples=samples,
        time=_time(_text(annotation, "imageAnnotation/imageInformation/productFirstLineUtcTime")),
        latitude=lat, longitude=lon, incidence=inc,
        heading=float(_text(annotation, "generalAnnotation/productInformation/platformHeading")),
        pass_direction=pass_direction,
        azimuth_spacing=float(_text(annotation, "imageAnnotation/imageInformation/azimuthPixelSpacing")),
        range_spacing=float(_text(annotation, "imageAnnotation/imageInformation/rangePixelSpacing")),
        info=dict(info), calibration=calibration, noise=noise, noise_azimuth=noise_az, incidence_profile=profile,
    )


def _listing(product: _Product) -> dict[str, dict[str, str]]:
    """Files of each imagette (by measurement stem) from the manifest's fileLocation hrefs."""
    try:
        root = ET.fromstring(product.read("manifest.safe"))
    except (OSError, KeyError) as err:
        raise ValueError(f"{product.path}: no readable manifest.safe ({err})") from err
    except ET.ParseError as err:
        raise ValueError(f"{product.path}: manifest.safe is not XML ({err})") from err
    out: dict[str, dict[str, str]] = {}
    for loc in root.iter("fileLocation"):
        href = loc.get("href", "")
        name = Path(href).name
        stem = name.split(".")[0]
        if "measurement/" in href:
            kind = "measurement"
        elif name.startswith("calibration-"):
            kind, stem = "calibration", stem[len("calibration-"):]
        elif name.startswith("noise-"):
            kind, stem = "noise", stem[len("noise-"):]
        elif "annotation/" in href and name.endswith(".xml"):
            kind = "annotation"
        else:
            continue
        if parse_name(stem) is not None:
            out.setdefault(stem, {})[kind] = href
    if not out:
        raise ValueError(f"{product.path}: the manifest lists no WV imagette files (s1?-wv?-slc-...-nnn).")
    return out


def _resolve(paths: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Path]:
    items = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    if not items:
        raise ValueError("no SAFE product given: pass a '...SAFE' folder, a '...zip', or a list of them.")
    return list(dict.fromkeys(Path(p).expanduser() for p in items))


def scan_safe(
    paths: str | os.PathLike | Iterable[str | os.PathLike],
    imagettes: Sequence[int | str] | None = None,
) -> tuple[list[SlcImagette], list[str]]:
    """Read the XML of SAFE products: the readable imagettes, and those skipped with the reason.

    Parameters
    ----------
    paths : str, os.PathLike or iterable of them
        SAFE folders, their ``manifest.safe``, or zipped SAFE products.
    imagettes : sequence of int or str, optional
        Keep only these imagettes: numbers (``1`` for ``...-001``) or ids (``<SAFE name>:<nnn>``).

    Returns
    -------
    tuple
        ``(imagettes, skipped)``: :class:`SlcImagette` in product then imagette-number order, and one
        ``"<id or product>: <reason>"`` string per imagette or product skipped.

    Raises
    ------
    ValueError
        If ``paths`` is empty.
    """
    found: list[SlcImagette] = []
    skipped: list[str] = []
    wanted = None if imagettes is None else {str(i) if isinstance(i, str) else int(i) for i in imagettes}
    for path in _resolve(paths):
        try:
            product = _Product(path)
            listing = _listing(product)
        except (OSError, ValueError, zipfile.BadZipFile) as err:
            skipped.append(f"{path}: {type(err).__name__}: {err}")
            continue
        for stem in sorted(listing, key=lambda s: parse_name(s)["imagette_number"]):
            number = parse_name(stem)["imagette_number"]
            ident = f"{product.name}:{number:03d}"
            if wanted is not None and number not in wanted and ident not in wanted:
                continue
            try:
                found.append(_imagette(product, stem, listing[stem]))
            except (OSError, ValueError, KeyError) as err:
                skipped.append(f"{ident}: {err}")
    return found, skipped


def coordinates(items: Sequence[SlcImagette]) -> dict[str, tuple[str, np.ndarray]]:
    """The data model's imagette coordinates for scanned imagettes (ids, time, position, swath...).

    Parameters
    ----------
    items : sequence of SlcImagette
        As :func:`scan_safe` returns them.

    Returns
    -------
    dict
        ``name -> (dim, values)`` for ``xarray.Dataset(coords=...)``.
    """
    def col(values: list, dtype: object) -> tuple[str, np.ndarray]:
        return (S.IMAGETTE, np.array(values, dtype=dtype))

    return {
        S.IMAGETTE: col([i.id for i in items], object),
        S.TIME: col([i.time for i in items], "datetime64[ns]"),
        S.LATITUDE: col([i.latitude for i in items], np.float64),
        S.LONGITUDE: col([i.longitude for i in items], np.float64),
        S.INCIDENCE_ANGLE: col([i.incidence for i in items], np.float64),
        S.HEADING: col([i.heading for i in items], np.float64),
        S.MISSION: col([i.info["mission"] for i in items], object),
        S.SWATH: col([i.info["swath"] for i in items], object),
        S.POLARIZATION: col([i.info["polarization"] for i in items], object),
        S.ORBIT: col([i.info["orbit"] for i in items], np.int64),
        S.DATATAKE: col([i.info["datatake"] for i in items], object),
        S.NUMBER: col([i.info["imagette_number"] for i in items], np.int64),
        "imagette_key": col([imagette_key(i.info) for i in items], object),  # type: ignore[arg-type]
        PASS: col([i.pass_direction for i in items], object),
        SAFE: col([i.product.name for i in items], object),
        S.SOURCE: col([Path(i.measurement).name for i in items], object),
    }


def report_skipped(skipped: list[str], stacklevel: int = 3) -> None:
    """Warn (:class:`SafeWarning`) about skipped imagettes, if any.

    Parameters
    ----------
    skipped : list of str
        The reasons, as :func:`scan_safe` gives them.
    stacklevel : int, default 3
        Passed to :func:`warnings.warn`.
    """
    if skipped:
        warnings.warn(f"skipped {len(skipped)} imagette(s) or product(s):\n  " + "\n  ".join(skipped),
                      SafeWarning, stacklevel=stacklevel)


def _sigma0_block(items: Sequence[SlcImagette], lines: int, samples: int, denoise: bool) -> np.ndarray:
    out = np.full((len(items), lines, samples), np.nan, dtype=np.float32)
    for k, item in enumerate(items):
        out[k, : item.lines, : item.samples] = item.sigma0(denoise)
    return out


def open_safe(
    paths: str | os.PathLike | Iterable[str | os.PathLike],
    imagettes: Sequence[int | str] | None = None,
    chunks: int = 1,
    *,
    denoise: bool = False,
) -> xr.Dataset:
    """Open Sentinel-1 WV L1 SLC SAFE products (folders or zips) as one imagette Dataset of calibrated sigma0.

    Users download WV products as SAFE folders or zips; this turns them into the imagette data model at native
    resolution, lazily: the XMLs are read now, each imagette's pixels by one dask task when computed. Imagettes
    whose files are missing, unreadable, truncated or inconsistent are skipped and listed in
    ``ds.attrs["skipped"]``; the others are read. To get WV-Net quicklooks at the published ~41 x 45 m spacing
    use :func:`xwvnet.preprocess.safe_to_imagettes`.

    Parameters
    ----------
    paths : str, os.PathLike or iterable of them
        SAFE folders, their ``manifest.safe``, or zipped SAFE products.
    imagettes : sequence of int or str, optional
        Only these imagettes: numbers (``1`` for file ``...-001.tiff``) or ids ``<SAFE name>:<nnn>``.
    chunks : int, default 1
        Imagettes per dask chunk.
    denoise : bool, default False
        Subtract the thermal noise LUT before calibrating. Off by default: the published quicklooks' recipe does
        not say, and at WV's -22 dB NESZ the noise is a small fraction of ocean NRCS.

    Returns
    -------
    xarray.Dataset
        ``sigma0(imagette, line, sample)`` float32 (linear, NaN outside each imagette), ``valid_lines``,
        ``valid_samples``; ids ``<SAFE name>:<nnn>`` (as :func:`xwvnet.io.safe.imagettes_from_manifest`);
        coordinates ``time`` (first line, UTC), ``latitude``/``longitude``/``incidence_angle`` (geolocation grid,
        interpolated at the image centre), ``heading`` (platformHeading), ``pass``, ``mission``, ``swath``,
        ``polarization``, ``orbit``, ``datatake``, ``imagette_number``, ``imagette_key``, ``safe``, ``source``,
        ``line_spacing`` (azimuth) and ``sample_spacing`` (ground range at the centre), metres.

    Raises
    ------
    ValueError
        If ``paths`` is empty or ``chunks`` < 1.
    NoReadableImageError
        If no imagette at all can be read (a ``ValueError``); ``.skipped`` lists why.

    Warns
    -----
    SafeWarning
        When imagettes or products are skipped.

    Examples
    --------
    >>> ds = open_safe("S1B_WV_SLC__1SSV_20210403T083025_20210403T084452_026300_032390_D542.SAFE")  # doctest: +SKIP
    >>> ds.sigma0.isel(imagette=0).mean().compute()  # doctest: +SKIP
    """
    if chunks < 1:
        raise ValueError(f"chunks must be >= 1 imagette, got {chunks}.")
    items, skipped = scan_safe(paths, imagettes)
    report_skipped(skipped)
    if not items:
        raise NoReadableImageError(
            f"no readable WV imagette in {paths!r}:\n  " + "\n  ".join(skipped or ["(none selected)"]), skipped)
    lines = max(i.lines for i in items)
    samples = max(i.samples for i in items)
    blocks = [
        da.from_delayed(dask.delayed(_sigma0_block)(items[k : k + chunks], lines, samples, denoise),
                        shape=(len(items[k : k + chunks]), lines, samples), dtype=np.float32)
        for k in range(0, len(items), chunks)
    ]
    coords = coordinates(items)
    coords[LINE_SPACING] = (S.IMAGETTE, np.array([i.azimuth_spacing for i in items]))
    coords[SAMPLE_SPACING] = (S.IMAGETTE, np.array([i.ground_spacing for i in items]))
    ds = xr.Dataset(
        {
            S.SIGMA0: ((S.IMAGETTE, S.LINE, S.SAMPLE), da.concatenate(blocks, axis=0),
                       {"long_name": "calibrated normalised radar cross section (linear)", "units": "1",
                        "standard_name": "surface_backwards_scattering_coefficient_of_radar_wave",
                        "thermal_noise_removed": int(denoise)}),
            S.VALID_LINES: (S.IMAGETTE, np.array([i.lines for i in items], dtype=np.int32)),
            S.VALID_SAMPLES: (S.IMAGETTE, np.array([i.samples for i in items], dtype=np.int32)),
        },
        coords=coords,
        attrs={"skipped": skipped, "title": "Sentinel-1 WV imagettes (L1 SLC, calibrated sigma0)"},
    )
    ds[LINE_SPACING].attrs.update(units="m", long_name="azimuth pixel spacing")
    ds[SAMPLE_SPACING].attrs.update(units="m", long_name="ground-range pixel spacing at the imagette centre")
    return S.with_cf_attrs(ds)
