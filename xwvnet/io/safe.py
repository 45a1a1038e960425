"""Sentinel-1 WV Level-1 SAFE products: the imagettes a ``manifest.safe`` lists, with times and footprints.

A WV SAFE holds up to a few hundred imagettes, one measurement file each. Its manifest names every measurement
file (which carries mission, swath, start time, orbit, datatake and imagette number) and gives one 4-corner footprint
per imagette in the acquisition frame set, in imagette order. That is enough to know where and when each imagette
was taken before any pixel is read, e.g. to collocate with reanalysis.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import numpy.typing as npt
import xarray as xr

from .. import schema as S
from .names import imagette_key, parse_name

KEY = "imagette_key"
CORNER = "corner"
_NS = {"xfdu": "urn:ccsds:schema:xfdu:1", "safe": "http://www.esa.int/safe/sentinel-1.0",
       "gml": "http://www.opengis.net/gml", "s1": "http://www.esa.int/safe/sentinel-1.0/sentinel-1"}


def _manifest_path(path: str | os.PathLike) -> Path:
    path = Path(path).expanduser()
    if path.is_dir():
        path = path / "manifest.safe"
    if not path.is_file():
        raise FileNotFoundError(
            f"no manifest at {path}: pass a SAFE folder (…SAFE/) or its manifest.safe file."
        )
    return path


def _safe_name(manifest: Path) -> str:
    """The product name (the SAFE folder name without ``.SAFE``), used in imagette ids ``<name>:<nnn>``."""
    folder = manifest.parent.name
    return folder[: -len(".SAFE")] if folder.upper().endswith(".SAFE") else folder


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


def imagettes_from_manifest(path: str | os.PathLike) -> xr.Dataset:
    """List the imagettes of a WV L1 SAFE product from its manifest: ids, times, footprints and centres; no pixels.

    Knowing where and when each imagette was taken before reading a single pixel lets a user collocate a whole
    archive with reanalysis or pick the imagettes worth reading. The manifest names one measurement file per
    imagette and gives one 4-corner footprint per imagette in the same order; the two are paired by that order
    and checked to be imagettes 1..n.

    Parameters
    ----------
    path : str or os.PathLike
        The SAFE folder (``...SAFE/``) or its ``manifest.safe`` file.

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
        If there is no ``manifest.safe`` at ``path``.
    ValueError
        If the manifest is not readable XML, lists no WV measurement files, or its measurement files and
        footprints cannot be paired (different counts, or numbers other than 1..n).

    Examples
    --------
    >>> from xwvnet import datasets
    >>> from xwvnet.io.safe import imagettes_from_manifest
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
    manifest = _manifest_path(path)
    try:
        root = ET.parse(manifest).getroot()
    except ET.ParseError as err:
        raise ValueError(f"{manifest} is not a readable XML manifest ({err}).") from err
    hrefs = [loc.get("href", "") for loc in root.iter("fileLocation")]
    measurements = sorted(
        {Path(h).name for h in hrefs if "measurement/" in h and parse_name(h) is not None},
        key=lambda n: parse_name(n)["imagette_number"],
    )
    if not measurements:
        raise ValueError(f"{manifest} lists no WV measurement files (./measurement/s1?-wv?-...-nnn.tiff).")
    frames = _footprints(root)
    infos = [parse_name(m) for m in measurements]
    numbers = [i["imagette_number"] for i in infos]
    if len(frames) != len(measurements) or numbers != list(range(1, len(numbers) + 1)):
        raise ValueError(
            f"{manifest} lists {len(measurements)} measurement files (numbers {numbers[:3]}…) but {len(frames)} "
            "footprints; they are paired by order, so they must be imagettes 1..n with one footprint each."
        )
    corners = np.stack([f[:4] if f.shape[0] >= 4 else np.full((4, 2), np.nan) for f in frames])
    centres = np.array([footprint_centre(c[:, 0], c[:, 1]) for c in corners])
    name = _safe_name(manifest)
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
