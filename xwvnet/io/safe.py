"""Sentinel-1 WV Level-1 SLC SAFE products: THE reader (folders, ``manifest.safe``, zips; local or on object storage).

A WV SLC product holds one imagette per measurement file (complex int16 TIFF, azimuth lines x slant-range samples),
with one annotation, one calibration and one noise XML each, all listed in ``manifest.safe``. The manifest is parsed
once (:func:`read_manifest`) for both uses:

* :func:`imagettes_from_manifest`: ids, times and footprints of every imagette, before any pixel is read;
* :func:`scan_safe` / :func:`open_safe`: every imagette's XML is read up front (they are small), so a bad imagette is
  found, skipped and reported before any pixel is read; pixels are read by one dask task per imagette;
  ``sigma0 = |DN|^2 / sigmaNought^2`` (ESA's Level-1 calibration for SLC), the LUT interpolated bilinearly over
  lines and pixels (held constant beyond the first and last vectors and pixels, which also extends noise vectors
  that stop short of the last line, as ESA's tools do);
* thermal noise removal is off by default (``denoise=False``): ``(|DN|^2 - noise) / sigmaNought^2``.

Products are folders, their ``manifest.safe``, or zips holding ``<name>.SAFE/``, on local disk or on object storage
(``s3://``, ``gs://``, ``az://`` URLs, read with obstore; credentials from the environment or
``storage_options``). Hostile products are refused piece by piece: XML with entity declarations (billion laughs,
external entities), manifest ``href`` that resolve outside the product, zip members whose announced size or
compression ratio is out of bounds (zip bombs). Zip members are read in memory, never extracted.

ESA's EOPF Zarr products (``S01SWVSLC``: one group per vignette, :mod:`xwvnet.io.eopf`) are the second layout of the
same reader: their vignettes become :class:`SlcImagette` with the same LUTs, geolocation and pixels, so
:func:`open_safe` and :func:`safe_to_imagettes` give the same Dataset (same sigma0, quicklooks, coordinates) from
either; only the ids (``<product name>:<nnn>``) and ``safe``/``source`` differ.

``xr.open_dataset(path, engine="wvnet")`` gives :func:`open_safe`'s Dataset (:class:`WVNetBackendEntrypoint`).
The xarray-safe-s1 reader (umr-lops) was evaluated as the alternative; see ``docs/safe.md``.
"""

from __future__ import annotations

import io
import os
import posixpath
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import dask
import dask.array as da
import numpy as np
import numpy.typing as npt
import xarray as xr
from xarray.backends import BackendEntrypoint

from .. import radiometry as rad
from .. import schema as S
from .._runtime import check_count
from ..errors import (
    InputNotFoundError,
    InvalidArgumentError,
    InvalidFileError,
    InvalidTypeError,
    UnsafeInputError,
    XWVNetWarning,
    warn,
)
from . import eopf, sources
from .eopf import MAX_ZIP_RATIO
from .eopf import ObjectFile as _ObjectFile
from .names import imagette_key, parse_name
from .quicklook import NoReadableImageError
from .storage import Location

#: lines per block when reading and calibrating (bounds the memory per imagette: ~25 MB for a WV1 imagette)
BLOCK_LINES = 500
#: largest XML member read (annotation, calibration, noise, manifest); real ones are 0.1-2 MB
MAX_XML_BYTES = 64 * 2**20
#: largest measurement file (a real WV imagette is ~110 MB)
MAX_MEASUREMENT_BYTES = 2 * 2**30
PASS = "pass"
LINE_SPACING = "line_spacing"
SAMPLE_SPACING = "sample_spacing"
SAFE = "safe"
KEY = "imagette_key"
#: coordinate: whether an imagette's product has a thermal noise LUT (``attrs["no_noise_lut"]`` lists those without)
NOISE_LUT = "noise_lut"
CORNER = "corner"
_NS = {"xfdu": "urn:ccsds:schema:xfdu:1", "safe": "http://www.esa.int/safe/sentinel-1.0",
       "gml": "http://www.opengis.net/gml", "s1": "http://www.esa.int/safe/sentinel-1.0/sentinel-1"}


class SafeWarning(XWVNetWarning):
    """Some imagettes (or whole products) of a SAFE batch were skipped; the rest were read.

    Their ids and reasons are in the warning and in ``ds.attrs["skipped"]``.
    """


def _xml(data: bytes, what: str) -> ET.Element:
    """Parse XML with defusedxml, refusing any DTD or entity anywhere, in any encoding: SAFE XML never has one."""
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import fromstring

    try:
        return fromstring(data, forbid_dtd=True)
    except DefusedXmlException as err:
        raise UnsafeInputError(f"{what} declares a DTD or XML entities, which SAFE products never do: refused") from err
    except ET.ParseError as err:
        raise InvalidFileError(f"{what} is not a readable XML file ({err})") from err


def _relative(href: str) -> str:
    """A manifest ``href`` as a path inside the product; ValueError if it leaves the product."""
    rel = posixpath.normpath(href.replace("\\", "/"))
    if rel.startswith(("/", "../")) or rel == ".." or ":" in rel.split("/")[0]:
        raise UnsafeInputError(f"href {href!r} resolves outside the product: refused")
    return rel


class _Product:
    """Read the files of one SAFE product, a folder or a zip holding ``<name>.SAFE/``, local or remote.

    Files are named by their path relative to the product root (as the manifest's hrefs). Picklable: the open
    zip or object store is dropped on pickling and reopened where it is used (a dask worker).
    """

    def __init__(self, location: Location) -> None:
        self.location = location  # the product's folder or zip (from the input door, sources.resolve)
        self.remote = not location.local
        self._zip: zipfile.ZipFile | None = None
        self._store = None
        if self.remote:
            self.url = str(location)
            self.path = PurePosixPath(location.bucket, location.prefix)
            self.is_zip = location.name.lower().endswith(".zip")
        else:
            self.url = None
            self.path = location.path
            if self.path.is_dir():
                self.is_zip = False
            elif self.path.is_file() and zipfile.is_zipfile(self.path):
                self.is_zip = True
            else:
                raise InputNotFoundError(
                    f"{self.path} is neither a SAFE folder, its manifest.safe, nor a zipped SAFE product; pass "
                    "'...SAFE' folders or '...zip' files (or s3://... URLs of them)."
                )
        self.zip_prefix = ""
        folder = self.path.name
        if self.is_zip:
            manifests = [n for n in self.zipfile().namelist() if n.endswith("manifest.safe")]
            if not manifests:
                raise InvalidFileError(f"{self.path} is a zip without a manifest.safe: expected a zipped SAFE product.")
            self.zip_prefix = manifests[0][: -len("manifest.safe")]
            folder = self.zip_prefix.rstrip("/").split("/")[-1] or self.path.stem
        self.name = folder[: -len(".SAFE")] if folder.upper().endswith(".SAFE") else folder

    def __str__(self) -> str:
        return self.url or str(self.path)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_zip": None, "_store": None}

    def close(self) -> None:
        """Close the zip, if open (it is reopened when next needed): scanning thousands of zips keeps no file open."""
        if self._zip is not None:
            fh = self._zip.fp
            self._zip.close()
            if fh is not None and not fh.closed:
                fh.close()
            self._zip = None

    # --- object storage ---------------------------------------------------------------------------------------
    def store(self):  # noqa: ANN201 (an obstore ObjectStore rooted at the product, or its folder for a zip)
        if self._store is None:
            root = self.location
            if self.is_zip:
                root = Location(root.scheme, root.bucket, root.prefix.rpartition("/")[0], root.options)
            self._store = root.object_store()
        return self._store

    def _remote_key(self, rel: str) -> str:
        return self.location.name if self.is_zip else rel

    # --- zips -------------------------------------------------------------------------------------------------
    def zipfile(self) -> zipfile.ZipFile:
        if self._zip is None:
            if self.remote:
                import obstore

                fh = _ObjectFile(obstore.open_reader(self.store(), self._remote_key(""), buffer_size=1 << 20))
            else:
                fh = open(self.path, "rb")  # noqa: SIM115 (kept open with the ZipFile, closed by close())
            self._zip = zipfile.ZipFile(fh)
        return self._zip

    def _info(self, rel: str, limit: int) -> zipfile.ZipInfo:
        try:
            info = self.zipfile().getinfo(self.zip_prefix + rel)
        except KeyError as err:
            raise InputNotFoundError(f"{rel} is not in the zip {self.path.name}") from err
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > limit or (info.compress_type != zipfile.ZIP_STORED and ratio > MAX_ZIP_RATIO):
            raise UnsafeInputError(f"{rel} inflates to {info.file_size:,} bytes from {info.compress_size:,} in the zip "
                                   f"(limits {limit:,} bytes, ratio {MAX_ZIP_RATIO}): refused as a zip bomb")
        return info

    # --- any product ------------------------------------------------------------------------------------------
    def size(self, rel: str) -> int:
        """Size in bytes of a file of the product."""
        rel = _relative(rel)
        if self.is_zip:
            return self.zipfile().getinfo(self.zip_prefix + rel).file_size
        if self.remote:
            import obstore

            return int(obstore.head(self.store(), rel)["size"])
        return self._local(rel).stat().st_size

    def _local(self, rel: str) -> Path:
        """The local file of ``rel``; ValueError when a symbolic link takes it outside the product."""
        path = self.path / rel
        if not path.resolve().is_relative_to(self.path.resolve()):
            raise UnsafeInputError(f"{rel} is a link that leaves the product ({path.resolve()}): refused")
        return path

    def read(self, rel: str, limit: int = MAX_XML_BYTES) -> bytes:
        """The bytes of a file of the product, refused (ValueError) when larger than ``limit``."""
        rel = _relative(rel)
        if self.is_zip:
            self._info(rel, limit)
            return self.zipfile().read(self.zip_prefix + rel)
        size = self.size(rel)
        if size > limit:
            raise UnsafeInputError(f"{rel} is {size:,} bytes, more than the {limit:,} a SAFE file may hold: refused")
        if self.remote:
            import obstore

            return bytes(obstore.get(self.store(), rel).bytes())
        return self._local(rel).read_bytes()

    def open(self, rel: str, limit: int = MAX_MEASUREMENT_BYTES) -> io.RawIOBase:
        """A seekable binary file of the product (close it, or use it as a context manager)."""
        rel = _relative(rel)
        if self.is_zip:
            self._info(rel, limit)
            return self.zipfile().open(self.zip_prefix + rel)
        if self.remote:
            import obstore

            return _ObjectFile(obstore.open_reader(self.store(), rel, buffer_size=8 << 20))
        return open(self._local(rel), "rb")  # noqa: SIM115

    def local_file(self, rel: str) -> tuple[Path, int] | None:
        """``(file, byte offset)`` where the file's bytes lie uncompressed on local disk (for a memory map), or None."""
        rel = _relative(rel)
        if self.remote:
            return None
        if not self.is_zip:
            return self._local(rel), 0
        info = self._info(rel, MAX_MEASUREMENT_BYTES)
        if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
            return None
        with open(self.path, "rb") as fh:  # the local header: 30 bytes, then name and extra field
            fh.seek(info.header_offset)
            head = fh.read(30)
        if head[:4] != b"PK\x03\x04":
            return None
        n, m = int.from_bytes(head[26:28], "little"), int.from_bytes(head[28:30], "little")
        return self.path, info.header_offset + 30 + n + m


def read_manifest(product: _Product) -> ET.Element:
    """The parsed ``manifest.safe`` of a product (the one place it is parsed).

    Parameters
    ----------
    product : _Product
        An opened product.

    Returns
    -------
    xml.etree.ElementTree.Element
        Its root.

    Raises
    ------
    ValueError
        If it is missing, too large, declares entities or is not XML.
    """
    try:
        data = product.read("manifest.safe")
    except (OSError, KeyError) as err:
        raise InvalidFileError(f"{product}: no readable manifest.safe ({type(err).__name__}: {err})") from err
    return _xml(data, f"{product}: manifest.safe")


@dataclass
class Lut:
    """A Level-1 look-up table: values at (line, pixel) nodes, one vector per line, as annotated.

    Parameters
    ----------
    lines : numpy.ndarray
        ``(n,)`` the line of each vector, increasing.
    pixels : list of numpy.ndarray
        The pixels of each vector, increasing.
    values : list of numpy.ndarray
        The values of each vector, one per pixel.
    """

    lines: np.ndarray  # (n,) int
    pixels: list[np.ndarray]  # n arrays
    values: list[np.ndarray]  # n arrays, same lengths as pixels
    _rows: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def rows(self, samples: int) -> np.ndarray:
        """Every vector interpolated linearly onto all ``samples`` (float64 ``(n_vectors, samples)``), cached."""
        if samples not in self._rows:
            grid = np.arange(samples, dtype=np.float64)
            self._rows[samples] = np.stack([np.interp(grid, p, v) for p, v in zip(self.pixels, self.values)])
        return self._rows[samples]

    def at(self, lines: np.ndarray, samples: int) -> np.ndarray:
        """Interpolate bilinearly onto (fractional) ``lines`` and all samples: float64 ``(len(lines), samples)``.

        Linear between vector lines, held constant before the first and after the last vector.
        """
        rows = self.rows(samples)
        lines = np.asarray(lines, dtype=np.float64)
        if len(self.lines) == 1:
            return np.broadcast_to(rows[0], (lines.size, samples))
        k = np.clip(np.searchsorted(self.lines, lines, side="right") - 1, 0, len(self.lines) - 2)
        w = np.clip((lines - self.lines[k]) / (self.lines[k + 1] - self.lines[k]), 0.0, 1.0)[:, None]
        return rows[k] * (1.0 - w) + rows[k + 1] * w

    def on(self, line0: int, line1: int, samples: int) -> np.ndarray:
        """Interpolate bilinearly onto image lines ``line0 <= l < line1`` and all samples (float64)."""
        return self.at(np.arange(line0, line1), samples)


@dataclass
class SlcImagette:
    """One imagette of a WV SLC product: where its files are, and everything its annotations say.

    Made by :func:`scan_safe`; :meth:`sigma0` reads and calibrates its pixels, :meth:`power_blocks` streams them.

    Parameters
    ----------
    product : _Product or xwvnet.io.eopf.Product
        The product holding it (a SAFE product, or an EOPF one).
    measurement : str
        Its measurement file, relative to the product root (for an EOPF product: its vignette group).
    id : str
        ``<SAFE name>:<nnn>``.
    lines, samples : int
        Its size (annotation).
    time : numpy.datetime64
        First line time (UTC).
    latitude, longitude, incidence : float
        At the image centre (geolocation grid), degrees.
    heading : float
        Platform heading, degrees.
    pass_direction : str
        ``ascending`` or ``descending``.
    azimuth_spacing, range_spacing : float
        Pixel spacings (azimuth, slant range), metres.
    info : dict
        :func:`xwvnet.io.names.parse_name` fields of the measurement file.
    calibration, noise : Lut, optional
        sigmaNought and thermal noise range LUTs.
    noise_azimuth : tuple of numpy.ndarray, optional
        ``(lines, values)`` of the azimuth noise vector, where a product has one.
    incidence_profile : numpy.ndarray, optional
        Incidence (degrees) per sample along the centre line.
    pixels : tuple of (int, str), optional
        ``(byte offset, dtype)`` of the pixels in the TIFF when they are one uncompressed run.
    """

    product: _Product | eopf.Product
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
    pixels: tuple[int, str] | None = None  # (byte offset, numpy dtype) of contiguous uncompressed pixels

    @property
    def ground_spacing(self) -> float:
        """Ground-range pixel spacing at the centre (slant spacing / sin(incidence)), metres."""
        return float(self.range_spacing / np.sin(np.deg2rad(self.incidence)))

    def sigma0(self, denoise: bool = False) -> np.ndarray:
        """Read the measurement and calibrate it: float32 ``(lines, samples)`` linear sigma0, exact.

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
        if denoise and self.noise is None:
            raise InvalidFileError(f"{self.id}: denoise=True but its noise XML has no noise vectors.")
        out = np.empty((self.lines, self.samples), dtype=np.float32)
        for a, b, power in self.power_blocks():
            out[a:b] = _calibrated(power, a, b, self, denoise)
        return out

    def power_blocks(self, block_lines: int = BLOCK_LINES) -> Iterator[tuple[int, int, np.ndarray]]:
        """Stream ``|DN|^2`` by blocks of lines: ``(line0, line1, float32 (line1 - line0, samples))``.

        Uncompressed measurements (ESA writes them so) are read block by block: memory-mapped on local disk
        (folders and stored zips), by range reads on object storage; others are decoded whole by tifffile.

        Parameters
        ----------
        block_lines : int, default BLOCK_LINES
            Lines per block.

        Yields
        ------
        tuple
            ``(line0, line1, power)``.
        """
        if self.pixels is None:
            dn = self.read_dn()
            for a in range(0, self.lines, block_lines):
                block = dn[a : a + block_lines]
                yield a, a + block.shape[0], np.square(block.real) + np.square(block.imag)
            return
        if isinstance(self.product, eopf.Product):
            yield from eopf.power_blocks(self.product, self.measurement, block_lines)
            return
        offset, dtype = self.pixels
        row = self.samples * 2 * np.dtype(dtype).itemsize
        local = self.product.local_file(self.measurement)
        if local is not None:
            raw = np.memmap(local[0], dtype=dtype, mode="r", offset=local[1] + offset,
                            shape=(self.lines, self.samples, 2))
            for a in range(0, self.lines, block_lines):
                yield a, min(a + block_lines, self.lines), _power(raw[a : a + block_lines])
            del raw
            return
        with self.product.open(self.measurement) as fh:
            for a in range(0, self.lines, block_lines):
                n = min(block_lines, self.lines - a)
                fh.seek(offset + a * row)
                data = fh.read(n * row)
                if len(data) != n * row:
                    raise InvalidFileError(f"{self.id}: measurement ends after {a} lines ({self.lines} announced).")
                yield a, a + n, _power(np.frombuffer(data, dtype=dtype).reshape(n, self.samples, 2))

    def read_dn(self) -> np.ndarray:
        """The measurement's complex DN, complex64 ``(lines, samples)``."""
        import tifffile

        if isinstance(self.product, eopf.Product):
            return eopf.read_slc(self.product, self.measurement)
        with self.product.open(self.measurement) as fh:
            dn = tifffile.imread(fh)
        if dn.shape != (self.lines, self.samples):
            raise InvalidFileError(f"{self.id}: measurement shape {dn.shape} differs from the annotation's "
                                   f"({self.lines}, {self.samples}).")
        return dn


def _power(raw: np.ndarray) -> np.ndarray:
    """``I^2 + Q^2`` in float32 of integer ``(lines, samples, 2)`` pixels, without float64 temporaries."""
    f = raw.astype(np.float32)
    np.square(f, out=f)
    return np.add(f[..., 0], f[..., 1])


def _calibrated(power: np.ndarray, a: int, b: int, imagette: SlcImagette, denoise: bool) -> np.ndarray:
    samples = power.shape[1]
    if denoise:
        noise = imagette.noise.on(a, b, samples)
        if imagette.noise_azimuth is not None:
            noise = noise * np.interp(np.arange(a, b), *imagette.noise_azimuth)[:, None]
        power = power.astype(np.float64) - noise
    weight = (1.0 / np.square(imagette.calibration.on(a, b, samples))).astype(np.float32)
    return np.multiply(power, weight, dtype=np.float32)


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
        raise InvalidFileError(f"{imagette.id}: denoise=True but its noise XML has no noise vectors.")
    lines, samples = dn.shape
    out = np.empty((lines, samples), dtype=np.float32)
    for a in range(0, lines, BLOCK_LINES):
        b = min(lines, a + BLOCK_LINES)
        block = dn[a:b]
        power = np.square(block.real, dtype=np.float32) + np.square(block.imag, dtype=np.float32)
        out[a:b] = _calibrated(power, a, b, imagette, denoise)
    return out



# --- XML ------------------------------------------------------------------------------------------------------------
def _text(root: ET.Element, path: str) -> str:
    value = root.findtext(path)
    if value is None or not value.strip():
        raise InvalidFileError(f"missing <{path}>")
    return value.strip()


def _floats(text: str | None, what: str) -> np.ndarray:
    try:
        values = np.array((text or "").split(), dtype=np.float64)
    except ValueError as err:
        raise InvalidFileError(f"{what} is not a list of numbers ({err})") from err
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
            raise InvalidFileError(f"{what}: a vector has {pixel.size} pixels but {val.size} <{value}> values")
        if not np.all(np.isfinite(val)) or not np.all(np.diff(pixel) > 0):
            raise InvalidFileError(f"{what}: <{value}> holds non-finite values or pixels are not increasing")
        lines.append(line[0])
        pixels.append(pixel)
        values.append(val)
    order = np.argsort(lines)
    lines_arr = np.asarray(lines)[order]
    if np.any(np.diff(lines_arr) <= 0):
        raise InvalidFileError(f"{what}: vector lines are not distinct")
    return Lut(lines_arr, [pixels[i] for i in order], [values[i] for i in order])


def _grid_centre(root: ET.Element, lines: int, samples: int) -> tuple[float, float, float, np.ndarray]:
    """Latitude, longitude, incidence at the image centre, and incidence per sample along the centre line."""
    points = root.findall(".//geolocationGrid/geolocationGridPointList/geolocationGridPoint")
    table = np.array([[float(_text(p, k)) for k in ("line", "pixel", "latitude", "longitude", "incidenceAngle")]
                      for p in points]).reshape(-1, 5)
    return _grid_table_centre(table, lines, samples)


def _grid_table_centre(table: np.ndarray, lines: int, samples: int) -> tuple[float, float, float, np.ndarray]:
    """As :func:`_grid_centre`, from the ``(n, 5)`` points: line, pixel, latitude, longitude, incidence angle."""
    from scipy.interpolate import RegularGridInterpolator

    if len(table) < 4:
        raise InvalidFileError(f"the geolocation grid has {len(table)} points (need at least 2 x 2)")
    ul, up = np.unique(table[:, 0]), np.unique(table[:, 1])
    if ul.size * up.size != len(table) or ul.size < 2 or up.size < 2:
        raise InvalidFileError("the geolocation grid is not a complete line x pixel grid")
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
    if "refused" in files:
        raise UnsafeInputError(files["refused"])
    for kind in ("annotation", "calibration", "measurement"):
        if kind not in files:
            raise InvalidFileError(f"the manifest lists no {kind} file")
    try:
        annotation = _xml(product.read(files["annotation"]), f"annotation {files['annotation']}")
    except (OSError, KeyError) as err:
        raise InvalidFileError(
            f"annotation {files['annotation']} cannot be read ({type(err).__name__}: {err})"
        ) from err
    lines = int(_text(annotation, "imageAnnotation/imageInformation/numberOfLines"))
    samples = int(_text(annotation, "imageAnnotation/imageInformation/numberOfSamples"))
    lat, lon, inc, profile = _grid_centre(annotation, lines, samples)
    try:
        cal_root = _xml(product.read(files["calibration"]), f"calibration {files['calibration']}")
    except (OSError, KeyError) as err:
        raise InvalidFileError(
            f"calibration {files['calibration']} cannot be read ({type(err).__name__}: {err})"
        ) from err
    calibration = _lut(cal_root, "calibrationVectorList/calibrationVector", "sigmaNought", "calibration")
    if calibration is None:
        raise InvalidFileError(f"calibration {files['calibration']} has no calibrationVector")
    if not all(np.all(v > 0) for v in calibration.values):
        raise InvalidFileError(f"calibration {files['calibration']}: sigmaNought must be > 0")
    noise, noise_az = None, None
    if "noise" in files:
        try:
            noise_root = _xml(product.read(files["noise"]), "noise")
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
                pixels = _contiguous(page)
        except Exception as err:  # tifffile raises its own TiffFileError, struct.error, ValueError...
            raise InvalidFileError(f"measurement {files['measurement']} is not a readable TIFF ({err})") from err
    if tuple(shape) != (lines, samples) or kind is None or np.dtype(kind).kind != "c":
        raise InvalidFileError(f"measurement {files['measurement']} holds {kind} {tuple(shape)}, the annotation says "
                               f"complex ({lines}, {samples})")
    size = product.size(files["measurement"])
    if end > size:
        raise InvalidFileError(f"measurement {files['measurement']} is truncated ({size} bytes, pixels need {end})")
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
        pixels=pixels,
    )


def _from_vignette(v: eopf.Vignette) -> SlcImagette:
    """An EOPF vignette as an imagette: the same LUTs, geolocation and pixels as its SAFE counterpart."""
    def lut(table: tuple[np.ndarray, np.ndarray, np.ndarray]) -> Lut:
        lines, pixels, values = table
        return Lut(lines, [pixels] * len(lines), list(values))

    lat, lon, inc, profile = _grid_table_centre(v.grid, v.lines, v.samples)
    return SlcImagette(
        product=v.product, measurement=v.group, id=f"{v.product.name}:{v.info['imagette_number']:03d}",
        lines=v.lines, samples=v.samples, time=v.time, latitude=lat, longitude=lon, incidence=inc,
        heading=v.heading, pass_direction=v.pass_direction, azimuth_spacing=v.azimuth_spacing,
        range_spacing=v.range_spacing, info=dict(v.info), calibration=lut(v.calibration),
        noise=None if v.noise is None else lut(v.noise), incidence_profile=profile)


def _contiguous(page: object) -> tuple[int, str] | None:
    """``(offset, dtype)`` of a page's pixels when they are one uncompressed run of complex integer pairs."""
    try:
        offsets, counts = list(page.dataoffsets), list(page.databytecounts)
        if page.compression != 1 or page.bitspersample not in (32, 64) or page.samplesperpixel != 1:
            return None
        if any(o != offsets[0] + sum(counts[:k]) for k, o in enumerate(offsets)):
            return None
        order = "<" if page.parent.byteorder == "<" else ">"
        dtype = f"{order}i{page.bitspersample // 16}"
        if int(page.sampleformat) != 5 or sum(counts) != page.shape[0] * page.shape[1] * page.bitspersample // 8:
            return None
        return int(offsets[0]), dtype
    except (AttributeError, TypeError, ValueError):
        return None


def _listing(product: _Product) -> dict[str, dict[str, str]]:
    """Files of each imagette (by measurement stem) from the manifest's fileLocation hrefs."""
    root = read_manifest(product)
    out: dict[str, dict[str, str]] = {}
    for loc in root.iter("fileLocation"):
        href = loc.get("href", "")
        name = posixpath.basename(href)
        stem = name.split(".")[0]
        try:
            _relative(href)
        except ValueError as err:  # refused whatever it claims to be; its imagette is skipped with the reason
            stem = stem.removeprefix("calibration-").removeprefix("noise-")
            if parse_name(stem) is not None:
                out.setdefault(stem, {}).setdefault("refused", str(err))
            continue
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
            out.setdefault(stem, {})[kind] = _relative(href)
    if not out:
        raise InvalidFileError(f"{product.path}: the manifest lists no WV imagette files (s1?-wv?-slc-...-nnn).")
    return out


def scan_safe(
    paths: str | os.PathLike | Iterable[str | os.PathLike],
    imagettes: Sequence[int | str] | None = None,
    storage_options: dict | None = None,
) -> tuple[list[SlcImagette], list[str]]:
    """Read the XML of SAFE products (the metadata of EOPF products): the readable imagettes, and those skipped.

    Parameters
    ----------
    paths : str, os.PathLike or iterable of them
        SAFE folders, their ``manifest.safe``, or zipped SAFE products; EOPF WV SLC products (``S01SWVSLC_*.zarr``,
        zipped or not: :mod:`xwvnet.io.eopf`); folders holding them, glob patterns
        (:func:`xwvnet.io.sources.resolve`).
    imagettes : sequence of int or str, optional
        Keep only these imagettes: numbers (``1`` for ``...-001``) or ids (``<SAFE name>:<nnn>``).
    storage_options : dict, optional
        Credentials and endpoint of products given as ``s3://``, ``gs://``, ``az://`` URLs (the names of
        :data:`xwvnet.io.storage.OPTIONS`, checked as :func:`xwvnet.io.storage.locate` does; default: the standard
        environment).

    Returns
    -------
    tuple
        ``(imagettes, skipped)``: :class:`SlcImagette` in product then imagette-number order, and one
        ``"<id or product>: <reason>"`` string per imagette or product skipped.

    Raises
    ------
    xwvnet.errors.InputNotFoundError
        If ``paths`` names no SAFE product (a ``FileNotFoundError``).
    ValueError
        For a URL that is not a product's, or storage options its scheme does not take
        (:func:`xwvnet.io.sources.resolve`).
    """
    found: list[SlcImagette] = []
    skipped: list[str] = []
    wanted = None if imagettes is None else {str(i) if isinstance(i, str) else int(i) for i in imagettes}
    for source in sources.resolve(paths, storage_options, kinds=(sources.SAFE, sources.EOPF_SLC)):
        if source.kind == sources.EOPF_SLC:
            try:
                vignettes, bad = eopf.scan_slc(source.location)
            except Exception as err:  # noqa: BLE001 (zarr, obstore, zip errors: skip the product, report)
                skipped.append(f"{source}: {type(err).__name__}: {err}")
                continue
            skipped += bad
            for v in vignettes:
                item = _from_vignette(v)
                if wanted is None or v.info["imagette_number"] in wanted or item.id in wanted:
                    found.append(item)
            continue
        if source.kind == sources.EOPF_OCN:
            skipped.append(f"{source}: an EOPF WV L2 OCN product (S01SWVOCN), not a WV L1 SLC: open it with "
                           "xwvnet.open_ocn")
            continue
        if source.kind != sources.SAFE:
            skipped.append(f"{source}: not a SAFE product (a folder holding a manifest.safe, or a zip of one) nor "
                           "an EOPF WV SLC product (S01SWVSLC_*.zarr)")
            continue
        try:
            product = _Product(source.location)
            listing = _listing(product)
        except Exception as err:  # noqa: BLE001 (OSError, ValueError, BadZipFile, obstore's errors: skip, report)
            skipped.append(f"{source}: {type(err).__name__}: {err}")
            continue
        for stem in sorted(listing, key=lambda s: parse_name(s)["imagette_number"]):
            number = parse_name(stem)["imagette_number"]
            ident = f"{product.name}:{number:03d}"
            if wanted is not None and number not in wanted and ident not in wanted:
                continue
            try:
                found.append(_imagette(product, stem, listing[stem]))
            except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as err:
                skipped.append(f"{ident}: {err}")
        product.close()
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


def report_skipped(skipped: list[str]) -> None:
    """Warn (:class:`SafeWarning`) about skipped imagettes, if any.

    Parameters
    ----------
    skipped : list of str
        The reasons, as :func:`scan_safe` gives them.

    Returns
    -------
    None
    """
    if skipped:
        warn(f"skipped {len(skipped)} imagette(s) or product(s):\n  " + "\n  ".join(skipped), SafeWarning)


def multilook_sigma0(
    imagette: SlcImagette,
    factor: tuple[int, int],
    denoise: bool = False,
    tolerance: float = rad.CALIBRATION_TOLERANCE,
) -> tuple[np.ndarray, float]:
    """Multilooked calibrated sigma0 of one imagette, calibrated at the multilooked resolution when exact enough.

    The measurement is streamed by blocks of lines; ``|DN|^2`` (float32) is summed over each block's
    ``factor[0]`` lines, multiplied by ``1 / sigmaNought^2`` of every range sample at the block's centre line, and
    summed over ``factor[1]`` samples: no full-resolution LUT, no float64 image. When
    :func:`xwvnet.radiometry.calibration_error_bound` exceeds ``tolerance``, or with ``denoise`` (a difference of
    powers has no relative bound), every pixel is calibrated first (:meth:`SlcImagette.sigma0`), then averaged.

    Parameters
    ----------
    imagette : xwvnet.io.safe.SlcImagette
        As :func:`scan_safe` gives it.
    factor : (int, int)
        Lines and samples per block.
    denoise : bool, default False
        Subtract the thermal noise LUT (exact path).
    tolerance : float, default xwvnet.radiometry.CALIBRATION_TOLERANCE
        Largest relative error allowed against full-resolution calibration.

    Returns
    -------
    tuple
        ``(sigma0, bound)``: float32 ``(lines // fl, samples // fs)``, and the bound on its relative error (0.0 on
        the exact path).

    Raises
    ------
    ValueError
        If a factor is < 1, or the measurement is not what its annotation announces.
    """
    fl, fs = int(factor[0]), int(factor[1])
    if fl < 1 or fs < 1:
        raise InvalidArgumentError(f"multilook factors must be >= 1, got {factor!r}.")
    lines, samples = imagette.lines, imagette.samples
    nl, ns = lines // fl, samples // fs
    bound = 0.0 if denoise else rad.calibration_error_bound(imagette.calibration, lines, samples, fl)
    if denoise or bound > tolerance:
        return rad.multilook(imagette.sigma0(denoise), (fl, fs)), 0.0
    out = np.empty((nl, ns), dtype=np.float32)
    block = max(1, BLOCK_LINES // fl) * fl
    for a, b, power in imagette.power_blocks(block):
        rows = (b - a) // fl
        if rows == 0:
            continue
        j = a // fl
        centre = np.arange(j, j + rows) * fl + (fl - 1) / 2.0
        weight = (1.0 / np.square(imagette.calibration.at(centre, samples)[:, : ns * fs])).astype(np.float32)
        weight *= np.float32(1.0 / (fl * fs))
        summed = power[: rows * fl, : ns * fs].reshape(rows, fl, ns * fs).sum(axis=1)
        summed *= weight
        out[j : j + rows] = summed.reshape(rows, ns, fs).sum(axis=2)
    return out, bound


def _sigma0_block(items: Sequence[SlcImagette], factors: Sequence[tuple[int, int]], lines: int, samples: int,
                  denoise: bool) -> np.ndarray:
    out = np.full((len(items), lines, samples), np.nan, dtype=np.float32)
    for k, (item, factor) in enumerate(zip(items, factors)):
        image = item.sigma0(denoise) if factor == (1, 1) else multilook_sigma0(item, factor, denoise)[0]
        out[k, : image.shape[0], : image.shape[1]] = image
    return out


def open_safe(
    paths: str | os.PathLike | Iterable[str | os.PathLike],
    imagettes: Sequence[int | str] | None = None,
    chunk_size: int = 1,
    *,
    looks: tuple[int, int] | None = None,
    spacing: float | tuple[float, float] | None = None,
    denoise: bool = False,
    storage_options: dict | None = None,
) -> xr.Dataset:
    """Open Sentinel-1 WV L1 SLC SAFE products (folders or zips) as one imagette Dataset of calibrated sigma0.

    Users download WV products as SAFE folders or zips; this turns them into the imagette data model, lazily: the
    XMLs are read now, each imagette's pixels by one dask task when computed (at native resolution, or averaged in
    intensity over ``looks`` or to ``spacing``, calibrated at that resolution: :func:`multilook_sigma0`). Imagettes
    whose files are missing, unreadable, truncated or inconsistent are skipped and listed in
    ``ds.attrs["skipped"]``; the others are read. WV-Net quicklooks at the published spacing:
    :func:`safe_to_imagettes`.

    Parameters
    ----------
    paths : str, os.PathLike or iterable of them
        SAFE folders, their ``manifest.safe``, or zipped SAFE products; EOPF ``S01SWVSLC`` products (``.zarr``
        folders or zips); folders holding them, glob patterns.
    imagettes : sequence of int or str, optional
        Only these imagettes: numbers (``1`` for file ``...-001.tiff``) or ids ``<SAFE name>:<nnn>``.
    chunk_size : int, default 1
        Imagettes per dask chunk.
    looks : (int, int), optional
        Average ``looks[0]`` lines x ``looks[1]`` samples into one pixel (e.g. :data:`xwvnet.radiometry.
        DEFAULT_LOOKS`). Default: native resolution.
    spacing : float or (float, float), optional
        Average to this spacing in metres (azimuth, ground range), the looks rounded per imagette
        (:func:`xwvnet.radiometry.multilook_factor`). Give ``looks`` or ``spacing``, not both.
    denoise : bool, default False
        Subtract the thermal noise LUT before calibrating. Off by default: the published quicklooks' recipe does
        not say, and at WV's -22 dB NESZ the noise is a small fraction of ocean NRCS.
    storage_options : dict, optional
        Credentials and endpoint of products given as ``s3://``, ``gs://``, ``az://`` URLs (the names of
        :data:`xwvnet.io.storage.OPTIONS`, checked as :func:`xwvnet.io.storage.locate` does; default: the standard
        environment).

    Returns
    -------
    xarray.Dataset
        ``sigma0(imagette, line, sample)`` float32 (linear, NaN outside each imagette), ``valid_lines``,
        ``valid_samples``; ids ``<SAFE name>:<nnn>`` (as :func:`imagettes_from_manifest`);
        coordinates ``time`` (first line, UTC), ``latitude``/``longitude``/``incidence_angle`` (geolocation grid,
        interpolated at the image centre), ``heading`` (platformHeading), ``pass``, ``mission``, ``swath``,
        ``polarization``, ``orbit``, ``datatake``, ``imagette_number``, ``imagette_key``, ``safe``, ``source``,
        ``line_spacing`` (azimuth) and ``sample_spacing`` (ground range at the centre), metres, of the pixels given,
        and ``noise_lut`` (whether the product has a thermal noise LUT; ``attrs["no_noise_lut"]`` lists the ids of
        those without, e.g. Sentinel-1C products whose noise annotation is empty).
        Averaged: also ``multilook_lines``/``multilook_samples`` (the looks) and ``sample_incidence(imagette,
        sample)``, the incidence angle of each averaged range sample at the centre line.

    Raises
    ------
    ValueError
        If ``paths`` is empty, ``chunk_size`` or a look is not a positive integer, ``spacing`` is not positive, or
        both ``looks`` and ``spacing`` are given. With ``denoise=True``, imagettes without a noise LUT are skipped
        (named in ``attrs["skipped"]``), never calibrated without it.
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
    chunk_size = check_count(chunk_size, "chunk_size")
    if looks is not None and spacing is not None:
        raise InvalidArgumentError("give looks (pixels) or spacing (metres), not both.")
    if looks is not None:
        looks = (check_count(looks[0], "looks[0]", "lines"), check_count(looks[1], "looks[1]", "samples"))
    items, skipped = scan_safe(paths, imagettes, storage_options)
    if denoise:  # found now, not when a task computes: the imagette is skipped with its reason
        skipped += [f"{i.id}: denoise=True but the product has no thermal noise LUT" for i in items if i.noise is None]
        items = [i for i in items if i.noise is not None]
    report_skipped(skipped)
    if not items:
        raise NoReadableImageError(
            f"no readable WV imagette in {paths!r}:\n  " + "\n  ".join(skipped or ["(none selected)"]), skipped)
    factors = [looks or (1, 1) if spacing is None else rad.multilook_factor(i.azimuth_spacing, i.ground_spacing,
                                                                             spacing) for i in items]
    vl = np.array([i.lines // f[0] for i, f in zip(items, factors)], dtype=np.int32)
    vs = np.array([i.samples // f[1] for i, f in zip(items, factors)], dtype=np.int32)
    lines, samples = int(vl.max()), int(vs.max())
    blocks = [
        da.from_delayed(dask.delayed(_sigma0_block)(items[k : k + chunk_size], factors[k : k + chunk_size], lines,
                                                    samples, denoise),
                        shape=(len(items[k : k + chunk_size]), lines, samples), dtype=np.float32)
        for k in range(0, len(items), chunk_size)
    ]
    averaged = looks is not None or spacing is not None
    coords = coordinates(items)
    coords[LINE_SPACING] = (S.IMAGETTE, np.array([i.azimuth_spacing * f[0] for i, f in zip(items, factors)]))
    coords[SAMPLE_SPACING] = (S.IMAGETTE, np.array([i.ground_spacing * f[1] for i, f in zip(items, factors)]))
    data = {
        S.SIGMA0: ((S.IMAGETTE, S.LINE, S.SAMPLE), da.concatenate(blocks, axis=0),
                   {"long_name": "calibrated normalised radar cross section (linear)" + (
                       ", multilooked" if averaged else ""), "units": "1",
                    "standard_name": "surface_backwards_scattering_coefficient_of_radar_wave",
                    "thermal_noise_removed": int(denoise)}),
        S.VALID_LINES: (S.IMAGETTE, vl),
        S.VALID_SAMPLES: (S.IMAGETTE, vs),
    }
    if averaged:
        coords["multilook_lines"] = (S.IMAGETTE, np.array([f[0] for f in factors], dtype=np.int32))
        coords["multilook_samples"] = (S.IMAGETTE, np.array([f[1] for f in factors], dtype=np.int32))
        profiles = np.full((len(items), samples), np.nan, dtype=np.float32)
        for k, (item, f) in enumerate(zip(items, factors)):
            if item.incidence_profile is not None:
                profiles[k, : vs[k]] = rad.multilook(item.incidence_profile[None, :], (1, f[1]))[0]
        data["sample_incidence"] = ((S.IMAGETTE, S.SAMPLE), profiles,
                                    {"long_name": "incidence angle of each range sample at the centre line",
                                     "units": "degree"})
    no_noise = [i.id for i in items if i.noise is None]
    ds = xr.Dataset(data, coords=coords,
                    attrs={"skipped": skipped, "title": "Sentinel-1 WV imagettes (L1 SLC, calibrated sigma0)",
                           "no_noise_lut": no_noise})
    ds.coords[NOISE_LUT] = (S.IMAGETTE, np.array([i.noise is not None for i in items]),
                            {"long_name": "whether the product carries a thermal noise LUT (Sentinel-1C products "
                                          "may not: they cannot be denoised)"})
    ds[LINE_SPACING].attrs.update(units="m", long_name="azimuth pixel spacing")
    ds[SAMPLE_SPACING].attrs.update(units="m", long_name="ground-range pixel spacing at the imagette centre")
    return S.with_cf_attrs(ds)


def _quicklooks(sigma0: np.ndarray, valid_lines: np.ndarray, valid_samples: np.ndarray, incidence: np.ndarray,
                detrended: bool) -> np.ndarray:
    """A block of averaged sigma0 -> uint8 quicklooks (numpy: detrend each imagette, then the stretch)."""
    if detrended:
        sigma0 = np.stack([rad.detrend(s, inc) for s, inc in zip(sigma0, incidence)]) if len(sigma0) else sigma0
    return rad.sigma0_to_quicklook(sigma0, valid_lines, valid_samples)


def safe_to_imagettes(
    paths: str | os.PathLike | Iterable[str | os.PathLike],
    spacing: float | tuple[float, float] | None = None,
    keep_sigma0: bool = False,
    *,
    imagettes: Sequence[int | str] | None = None,
    denoise: bool = False,
    detrended: bool = False,
    chunk_size: int = 1,
    storage_options: dict | None = None,
) -> xr.Dataset:
    """WV L1 SLC SAFE products -> WV-Net-ready quicklooks (and optionally the multilooked sigma0), lazily.

    :func:`open_safe` averaged to the quicklook spacing, then the numpy steps of :mod:`xwvnet.radiometry` on each
    block: the recipe of the published quicklooks as far as it is known (docs/safe.md): calibrated sigma0
    (optionally denoised), averaged in intensity over 10 x 10 SLC pixels (which gives the published sizes) or to
    ``spacing``, optionally detrended with incidence, then stretched per imagette between its 1st and 99th
    percentiles to 8 bits.

    Parameters
    ----------
    paths : str, os.PathLike or iterable of them
        SAFE folders, their manifests, or zipped SAFE products; EOPF ``S01SWVSLC`` products (as :func:`open_safe`).
    spacing : float or (float, float), optional
        Output spacing in metres (azimuth, ground range); the factor is rounded per imagette. Default:
        :data:`xwvnet.radiometry.DEFAULT_LOOKS` (10 x 10 SLC pixels, the published quicklooks: ~41 m x 37 m for
        WV1, 41 m x 45 m for WV2).
    keep_sigma0 : bool, default False
        Also return ``sigma0`` at that spacing (float32, NaN outside each imagette).
    imagettes : sequence of int or str, optional
        Only these imagettes (numbers or ids), as in :func:`open_safe`.
    denoise : bool, default False
        Subtract the thermal noise LUT before calibrating.
    detrended : bool, default False
        Divide by the mean NRCS fall with incidence (:func:`xwvnet.radiometry.detrend`) before stretching.
    chunk_size : int, default 1
        Imagettes per dask chunk.
    storage_options : dict, optional
        Credentials and endpoint of products given as ``s3://``, ``gs://``, ``az://`` URLs (the names of
        :data:`xwvnet.io.storage.OPTIONS`, checked as :func:`xwvnet.io.storage.locate` does; default: the standard
        environment).

    Returns
    -------
    xarray.Dataset
        ``quicklook`` (uint8, 0 outside each imagette), ``sigma0`` when asked, ``valid_lines``/``valid_samples``
        of the multilooked images, the coordinates of :func:`open_safe` (``line_spacing`` and ``sample_spacing``
        those of the output) and ``multilook_lines``/``multilook_samples`` (the factors);
        ``attrs["skipped"]`` lists the imagettes and products skipped, and why.

    Raises
    ------
    ValueError
        If ``paths`` is empty, ``spacing`` is not positive, or ``chunk_size`` < 1.
    NoReadableImageError
        If no imagette can be read (a ``ValueError``).

    Warns
    -----
    SafeWarning
        When imagettes or products are skipped.

    Examples
    --------
    >>> ds = safe_to_imagettes(["S1A_WV_SLC__1SSV_...SAFE", "S1B_WV_SLC__1SSV_...zip"])  # doctest: +SKIP
    >>> xwvnet.to_store(ds, "wv.zarr")  # doctest: +SKIP
    """
    ds = open_safe(paths, imagettes, chunk_size, looks=rad.DEFAULT_LOOKS if spacing is None else None,
                   spacing=spacing, denoise=denoise, storage_options=storage_options)
    quicklook = xr.apply_ufunc(
        _quicklooks, ds[S.SIGMA0], ds[S.VALID_LINES], ds[S.VALID_SAMPLES], ds["sample_incidence"],
        kwargs={"detrended": detrended}, input_core_dims=[[S.LINE, S.SAMPLE], [], [], [S.SAMPLE]],
        output_core_dims=[[S.LINE, S.SAMPLE]], dask="parallelized", output_dtypes=[np.uint8])
    averaged = (f"over {rad.DEFAULT_LOOKS[0]} x {rad.DEFAULT_LOOKS[1]} pixels" if spacing is None
                else f"to ~{spacing} m")
    quicklook.attrs = {"long_name": "8-bit stretched SAR intensity (quicklook)", "valid_range": [0, 255],
                       "comment": f"sigma0 averaged {averaged}, {rad.STRETCH_PERCENTILES} percentile stretch"
                                  + (", detrended with incidence" if detrended else "")}
    out = ds.drop_vars(["sample_incidence", *([] if keep_sigma0 else [S.SIGMA0])]).assign({S.QUICKLOOK: quicklook})
    out.attrs["title"] = "Sentinel-1 WV imagettes (quicklooks from L1 SLC)"
    return S.with_cf_attrs(out[[S.QUICKLOOK, *([S.SIGMA0] if keep_sigma0 else []), S.VALID_LINES,
                                S.VALID_SAMPLES]])


def _footprints(root: ET.Element) -> list[np.ndarray]:
    out = []
    for frame in root.iterfind(".//safe:frameSet/safe:frame", _NS):
        text = frame.findtext("safe:footPrint/gml:coordinates", default="", namespaces=_NS)
        pairs = [p.split(",") for p in text.split()]
        out.append(np.array([[float(a), float(b)] for a, b in pairs]) if pairs else np.full((4, 2), np.nan))
    return out


def footprint_centre(lat: np.ndarray, lon: np.ndarray) -> tuple[float, float]:
    """Find the centre of a footprint from its corners, right across the antimeridian and near the poles.

    A plain mean of longitudes puts a footprint straddling 180 degrees on the wrong side of the Earth; the mean
    of the corners' unit vectors, projected back to the sphere, does not.

    Parameters
    ----------
    lat : numpy.ndarray
        Corner latitudes, degrees north.
    lon : numpy.ndarray
        Corner longitudes, degrees east, any range.

    Returns
    -------
    tuple of float
        ``(latitude, longitude)`` of the centre, longitude in [-180, 180).

    Examples
    --------
    >>> import numpy as np
    >>> lat, lon = footprint_centre(np.array([10.0, 10.0, 11.0, 11.0]), np.array([179.5, -179.5, 179.5, -179.5]))
    >>> round(lat, 3), round(lon, 3)
    (10.5, -180.0)
    """
    la, lo = np.deg2rad(lat), np.deg2rad(lon)
    x, y, z = (np.cos(la) * np.cos(lo)).mean(), (np.cos(la) * np.sin(lo)).mean(), np.sin(la).mean()
    lon_c = np.rad2deg(np.arctan2(y, x))
    lat_c = np.rad2deg(np.arctan2(z, np.hypot(x, y)))
    return float(lat_c), float((lon_c + 180.0) % 360.0 - 180.0)


def imagettes_from_manifest(path: str | os.PathLike | Location, storage_options: dict | None = None) -> xr.Dataset:
    """List the imagettes of a WV L1 SAFE product from its manifest: ids, times, footprints and centres; no pixels.

    Knowing where and when each imagette was taken before reading a single pixel lets a user collocate a whole
    archive with reanalysis or pick the imagettes worth reading. The manifest names one measurement file per
    imagette and gives one 4-corner footprint per imagette in the same order; the two are paired by that order
    and checked to be imagettes 1..n.

    Parameters
    ----------
    path : str, os.PathLike or Location
        The SAFE folder (``...SAFE/``), its ``manifest.safe`` file, or a zipped product; local or a URL.
    storage_options : dict, optional
        Credentials and endpoint of products given as ``s3://``, ``gs://``, ``az://`` URLs (the names of
        :data:`xwvnet.io.storage.OPTIONS`, checked as :func:`xwvnet.io.storage.locate` does; default: the standard
        environment).

    Returns
    -------
    xarray.Dataset
        One row per imagette, no image variable (``validate(ds, require_image=False)`` passes). Ids are
        ``<SAFE name>:<nnn>`` (nnn = imagette number); ``time`` and ``stop_time`` come from the measurement file
        names, with ``mission``, ``swath``, ``polarization``, ``orbit``, ``datatake``, ``imagette_number``,
        ``imagette_key`` and ``source`` (measurement file name); ``latitude``/``longitude`` are the footprint
        centres (see :func:`footprint_centre`) and ``footprint_latitude``/``footprint_longitude``
        ``(imagette, corner)`` the 4 corners. Attributes: ``safe`` (product name), ``pass`` (ASCENDING or
        DESCENDING), ``manifest`` (its path).

    Raises
    ------
    FileNotFoundError
        If there is no ``manifest.safe`` at ``path`` (:class:`xwvnet.errors.InputNotFoundError` when ``path`` is
        a folder holding no product).
    xwvnet.errors.InvalidArgumentError
        If ``path`` names several products.
    ValueError
        If the manifest is not readable XML, lists no WV measurement files, or its measurement files and
        footprints cannot be paired (different counts, or numbers other than 1..n).

    Examples
    --------
    >>> from xwvnet import datasets
    >>> manifest = datasets.fetch(
    ...     "s1_wv/S1B_WV_SLC__1SSV_20210403T083025_20210403T084452_026300_032390_D542.SAFE/manifest.safe")
    >>> ds = imagettes_from_manifest(manifest)
    >>> dict(ds.sizes)
    {'imagette': 60, 'corner': 4}
    >>> str(ds.imagette.values[0])
    'S1B_WV_SLC__1SSV_20210403T083025_20210403T084452_026300_032390_D542:001'
    >>> str(ds.time.values[0]), str(ds.swath.values[0])
    ('2021-04-03T08:30:25.000000000', 'wv1')
    """
    found = sources.resolve(path, storage_options, kinds=(sources.SAFE,))
    if len(found) > 1:
        raise InvalidArgumentError(f"{path} names {len(found)} SAFE products; imagettes_from_manifest reads one "
                                   "(xwvnet.joins.open_imagettes reads several).")
    product = _Product(found[0].location)
    manifest = f"{product}/manifest.safe" if not product.is_zip else f"{product}!manifest.safe"
    if not product.is_zip and not product.remote and not (product.path / "manifest.safe").is_file():
        raise InputNotFoundError(f"no manifest at {manifest}: pass a SAFE folder (…SAFE/) or its manifest.safe file.")
    root = read_manifest(product)
    hrefs = [loc.get("href", "") for loc in root.iter("fileLocation")]
    measurements = sorted(
        {posixpath.basename(h) for h in hrefs if "measurement/" in h and parse_name(h) is not None},
        key=lambda n: parse_name(n)["imagette_number"],
    )
    if not measurements:
        raise InvalidFileError(f"{manifest} lists no WV measurement files (./measurement/s1?-wv?-...-nnn.tiff).")
    frames = _footprints(root)
    infos = [parse_name(m) for m in measurements]
    numbers = [i["imagette_number"] for i in infos]
    if len(frames) != len(measurements) or numbers != list(range(1, len(numbers) + 1)):
        raise InvalidFileError(
            f"{manifest} lists {len(measurements)} measurement files (numbers {numbers[:3]}…) but {len(frames)} "
            "footprints; they are paired by order, so they must be imagettes 1..n with one footprint each."
        )
    corners = np.stack([f[:4] if f.shape[0] >= 4 else np.full((4, 2), np.nan) for f in frames])
    centres = np.array([footprint_centre(c[:, 0], c[:, 1]) for c in corners])
    name = product.name
    pass_direction = root.findtext(".//s1:pass", default="", namespaces=_NS)
    ids = np.array([f"{name}:{n:03d}" for n in numbers], dtype=object)

    def column(key: str, dtype: npt.DTypeLike) -> tuple[str, np.ndarray]:
        return (S.IMAGETTE, np.array([i[key] for i in infos], dtype=dtype))

    coords = {
        S.IMAGETTE: (S.IMAGETTE, ids),
        S.TIME: column("time", "datetime64[ns]"),
        "stop_time": column("stop_time", "datetime64[ns]"),
        S.LATITUDE: (S.IMAGETTE, centres[:, 0]),
        S.LONGITUDE: (S.IMAGETTE, centres[:, 1]),
        S.MISSION: column("mission", object),
        S.SWATH: column("swath", object),
        S.POLARIZATION: column("polarization", object),
        S.ORBIT: column("orbit", np.int64),
        S.DATATAKE: column("datatake", object),
        S.NUMBER: column("imagette_number", np.int64),
        KEY: (S.IMAGETTE, np.array([imagette_key(i) for i in infos], dtype=object)),
        S.SOURCE: (S.IMAGETTE, np.array(measurements, dtype=object)),
    }
    data = {
        "footprint_latitude": ((S.IMAGETTE, CORNER), corners[:, :, 0], {"units": "degrees_north"}),
        "footprint_longitude": ((S.IMAGETTE, CORNER), corners[:, :, 1], {"units": "degrees_east"}),
    }
    return xr.Dataset(
        data, coords=coords, attrs={"safe": name, "pass": pass_direction, "manifest": str(manifest)}
    )


class WVNetBackendEntrypoint(BackendEntrypoint):
    """xarray backend: ``xr.open_dataset(path_to_SAFE, engine="wvnet")`` is :func:`open_safe` of that product.

    Opens WV L1 SLC SAFE folders, their ``manifest.safe``, zipped products and EOPF ``S01SWVSLC`` Zarr products
    (local or ``s3://...``) as the lazy
    imagette Dataset of calibrated sigma0; ``imagettes=``, ``chunks_imagettes=``, ``denoise=`` and
    ``storage_options=`` are passed to :func:`open_safe`.

    Examples
    --------
    >>> import xarray as xr
    >>> ds = xr.open_dataset("S1A_WV_SLC__1SSV_...SAFE", engine="wvnet")  # doctest: +SKIP
    """

    description = "Sentinel-1 WV L1 SLC SAFE products (folders, manifest.safe, zips) and EOPF S01SWVSLC Zarr " \
                  "products as imagette sigma0"
    url = "https://github.com/xwvnet/xwvnet/blob/main/docs/safe.md"
    open_dataset_parameters = ("filename_or_obj", "drop_variables", "imagettes", "chunks_imagettes", "denoise",
                               "storage_options")

    def open_dataset(  # type: ignore[override]
        self,
        filename_or_obj: str | os.PathLike,
        *,
        drop_variables: str | Iterable[str] | None = None,
        imagettes: Sequence[int | str] | None = None,
        chunks_imagettes: int = 1,
        denoise: bool = False,
        storage_options: dict | None = None,
    ) -> xr.Dataset:
        """Open a SAFE product as :func:`open_safe` does.

        Parameters
        ----------
        filename_or_obj : str or os.PathLike
            A SAFE folder, its ``manifest.safe``, a zipped product, or an EOPF ``S01SWVSLC`` product (path or
            URL).
        drop_variables : str or iterable of str, optional
            Variables not to return.
        imagettes : sequence of int or str, optional
            Only these imagettes (numbers or ids).
        chunks_imagettes : int, default 1
            Imagettes per dask chunk.
        denoise : bool, default False
            Subtract the thermal noise LUT.
        storage_options : dict, optional
            Credentials and endpoint of a product on object storage (as :func:`open_safe`).

        Returns
        -------
        xarray.Dataset
            As :func:`open_safe`.
        """
        if not isinstance(filename_or_obj, str | os.PathLike):
            raise InvalidTypeError(f"the wvnet engine opens SAFE paths or URLs, got {type(filename_or_obj).__name__}.")
        ds = open_safe(filename_or_obj, imagettes, chunks_imagettes, denoise=denoise,
                       storage_options=storage_options)
        if drop_variables is not None:
            ds = ds.drop_vars([drop_variables] if isinstance(drop_variables, str) else list(drop_variables),
                              errors="ignore")
        return ds

    def guess_can_open(self, filename_or_obj: object) -> bool:
        """Whether this looks like a Sentinel-1 WV SLC product (``S1?_WV_SLC_...SAFE``/``.zip``, ``manifest.safe``,
        EOPF ``S01SWVSLC_...zarr``/``.zip``).

        Parameters
        ----------
        filename_or_obj : object
            What ``xr.open_dataset`` was given.

        Returns
        -------
        bool
        """
        if not isinstance(filename_or_obj, str | os.PathLike):
            return False
        name = str(filename_or_obj).rstrip("/")
        base = posixpath.basename(name).upper()
        if base == "MANIFEST.SAFE":
            base = posixpath.basename(posixpath.dirname(name)).upper()
        if eopf.product_type(base) == eopf.SLC:
            return True
        return base.startswith("S1") and "_WV_SLC" in base and base.endswith((".SAFE", ".ZIP"))
