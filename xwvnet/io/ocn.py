"""Read Sentinel-1 WV Level-2 OCN products into an imagette-indexed Dataset (one row per imagette).

Each WV OCN netCDF product describes one imagette (``oswAzSize = oswRaSize = 1``); an EOPF ``S01SWVOCN`` Zarr
product holds one ``osw`` vignette per imagette, read in the netCDF names (:func:`xwvnet.io.eopf.ocn_vignettes`).
The reader keeps its ocean-swell (``osw``) values under plain names (``hs``, ``wind_speed``, ``nrcs``...; the netCDF
product's name is in each variable's ``source_name`` attribute), its centre position and incidence as coordinates,
and takes mission, swath, time, orbit, datatake and imagette number from the file name (from the vignette's name,
attributes and zero-Doppler times for EOPF), as quicklooks do, so all carry the same ``imagette_key``.
Products that cannot be read are skipped and reported in an :class:`OcnWarning`, never fatal for the rest.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import xarray as xr

from .. import schema as S
from ..errors import InvalidFileError, XWVNetWarning, warn
from . import eopf
from .names import NameInfo, imagette_key, parse_name
from .sources import EOPF_OCN, NETCDF, OCN, resolve

KEY = "imagette_key"
PARTITION = "partition"
#: partitions whose ``oswQualityFlagPartition`` is above this (0 very good, 1 good, 2 medium, 3 low, 4 poor) are left
#: out of a total Hs derived from the partitions
MAX_PARTITION_QUALITY = 3
#: how ``hs`` was obtained, per product (the coordinate ``hs_method``)
HS_METHODS = {
    "oswTotalHs": "the product's oswTotalHs (IPF 3.40 and later)",
    "partitions": "sqrt(sum oswHs^2 + oswWindSeaHs^2) over partitions with oswQualityFlagPartition <= "
                  f"{MAX_PARTITION_QUALITY} (products without oswTotalHs: IPF 3.31 and earlier)",
    "polar_spectrum": "4 sqrt(sum oswPolSpec(phi, k) k dk dphi), the swell spectrum on its log-polar grid",
    "none": "no oswTotalHs, partitions or polar spectrum: NaN",
}

# our name -> the product's name
SCALARS = {
    "hs": "oswTotalHs",
    "hs_std": "oswTotalHsStdev",
    "hs_windsea": "oswWindSeaHs",
    "hs_windsea_partition": "oswPhs0",
    "wind_speed": "oswWindSpeed",
    "wind_direction": "oswWindDirection",
    "model_wind_speed": "oswEcmwfWindSpeed",
    "model_wind_direction": "oswEcmwfWindDirection",
    "nrcs": "oswNrcs",
    "nrcs_denoised": "oswNrcsNeszCorr",
    "normalized_variance": "oswNv",
    "skewness": "oswSkew",
    "kurtosis": "oswKurt",
    "intensity": "oswInten",
    "azimuth_cutoff": "oswAzCutoff",
    "range_cutoff": "oswRaCutoff",
    "snr": "oswSnr",
    "wave_age": "oswWaveAge",
    "depth": "oswDepth",
    "land_flag": "oswLandFlag",
}
PARTITIONS = {
    "partition_hs": "oswHs",
    "partition_wavelength": "oswWl",
    "partition_direction": "oswDirmet",
    "partition_quality": "oswQualityFlagPartition",
}
COORDS = {
    S.LATITUDE: "oswLat",
    S.LONGITUDE: "oswLon",
    S.INCIDENCE_ANGLE: "oswIncidenceAngle",
    S.HEADING: "oswHeading",
}


class OcnWarning(XWVNetWarning):
    """An OCN product was skipped (unreadable, or not a WV OCN name), and the rest were still read.

    A warning rather than an error, so that one corrupt product in a folder never stops the others; the message
    names each skipped file and why.
    """


def _value(ds: xr.Dataset, name: str) -> np.ndarray:
    """The product's values for ``name`` with the (1, 1) cell dims dropped (NaN if absent)."""
    if name not in ds.variables:
        return np.array(np.nan)
    var = ds[name]
    cells = [d for d in var.dims if d in ("oswAzSize", "oswRaSize")]
    return np.asarray(var.isel({d: 0 for d in cells}).values, dtype=float)


def _polar_m0(ds: xr.Dataset) -> float:
    """m0 = sum P(phi, k) k dk dphi of ``oswPolSpec`` (m^4 on wavenumber k in rad/m and direction phi)."""
    spec = ds["oswPolSpec"]
    cells = [d for d in spec.dims if d in ("oswAzSize", "oswRaSize")]
    values = np.asarray(spec.isel({d: 0 for d in cells}).transpose("oswAngularBinSize", "oswWavenumberBinSize")
                        .values, dtype=float)
    k = np.asarray(ds["oswK"].values, dtype=float)
    from ..spectral import frequency_widths  # the same bin widths as for frequency grids (geometric here)

    dk = frequency_widths(k)
    dphi = 2 * np.pi / values.shape[0]
    return float(np.nansum(values * (k * dk)[None, :]) * dphi)


def total_hs(ds: xr.Dataset) -> tuple[float, str]:
    """The total significant wave height of one WV OCN product, and how it was obtained (a key of HS_METHODS).

    ``oswTotalHs`` when the product has it (IPF 3.40 and later); else the swell partitions and the wind sea,
    sqrt(sum oswHs^2 + oswWindSeaHs^2), leaving out partitions whose ``oswQualityFlagPartition`` is worse than
    :data:`MAX_PARTITION_QUALITY` (4, "poor"); else 4 sqrt(m0) of the polar swell spectrum ``oswPolSpec``.

    Parameters
    ----------
    ds : xarray.Dataset
        One OCN product as opened.

    Returns
    -------
    tuple of (float, str)
        Hs in m (NaN when nothing is there) and ``"oswTotalHs"``, ``"partitions"``, ``"polar_spectrum"`` or
        ``"none"``.

    Examples
    --------
    >>> import xarray as xr
    >>> ds = xr.Dataset({"oswHs": (("oswAzSize", "oswRaSize", "oswPartitions"), [[[3.0, 4.0, np.nan]]]),
    ...                  "oswWindSeaHs": (("oswAzSize", "oswRaSize"), [[0.0]])})
    >>> total_hs(ds)
    (5.0, 'partitions')
    """
    total = float(np.ravel(_value(ds, "oswTotalHs"))[0])
    if np.isfinite(total):
        return total, "oswTotalHs"
    parts = np.ravel(_value(ds, "oswHs"))
    quality = np.ravel(_value(ds, "oswQualityFlagPartition"))
    windsea = float(np.ravel(_value(ds, "oswWindSeaHs"))[0])
    keep = np.isfinite(parts)
    if quality.size == parts.size:
        keep &= ~(quality > MAX_PARTITION_QUALITY)  # a missing flag keeps the partition
    if keep.any() or np.isfinite(windsea):
        energy = float(np.sum(parts[keep] ** 2)) + (windsea**2 if np.isfinite(windsea) else 0.0)
        return float(np.sqrt(energy)), "partitions"
    if {"oswPolSpec", "oswK"} <= set(ds.variables):
        m0 = _polar_m0(ds)
        if np.isfinite(m0) and m0 > 0:
            return float(4 * np.sqrt(m0)), "polar_spectrum"
    return float("nan"), "none"


def _row(ds: xr.Dataset, info: NameInfo, ident: str, source: str) -> dict[str, object]:
    """One imagette's row from its osw variables in the netCDF names (a netCDF product or an EOPF vignette)."""
    if not {"oswTotalHs", "oswHs", "oswPolSpec"} & set(ds.variables):
        raise InvalidFileError("no oswTotalHs, oswHs or oswPolSpec: not a WV OCN product with an ocean swell (osw) "
                               "component")
    row: dict[str, object] = {"info": info, "attrs": {}, "id": ident, "source": source}
    for ours, theirs in {**SCALARS, **PARTITIONS, **COORDS}.items():
        row[ours] = _value(ds, theirs)
        if theirs in ds.variables:
            attrs = {k: v for k, v in ds[theirs].attrs.items() if k in ("units", "long_name", "standard_name")}
            row["attrs"][ours] = {**attrs, "source_name": theirs}
    row["hs"], row["hs_method"] = total_hs(ds)
    if "hs" not in row["attrs"]:
        row["attrs"]["hs"] = {"units": "m", "long_name": "Total significant wave height"}
    row["source_product"] = str(ds.attrs.get("sourceProduct", ""))
    row["ipf"] = str(ds.attrs.get("IPFversion", ""))
    return row


def _read_one(path: Path) -> dict[str, object]:
    info = parse_name(path)
    if info is None:
        raise InvalidFileError(
            "not a Sentinel-1 WV OCN file name (s1a-wv2-ocn-vv-<start>-<stop>-<orbit>-<dt>-<nnn>.nc)"
        )
    with xr.open_dataset(path, decode_times=False, mask_and_scale=True) as ds:
        return _row(ds, info, path.name.split(".")[0], path.name)


def _read_eopf(source: object, skipped: list[str]) -> list[dict[str, object]]:
    """The rows of an EOPF S01SWVOCN product, one per osw vignette (bad vignettes go to ``skipped``)."""
    vignettes, bad = eopf.ocn_vignettes(source.location)
    skipped += bad
    name = eopf.product_name(source.location)
    rows = []
    for v in vignettes:
        ds = v["dataset"].assign_attrs(IPFversion=v["ipf"], sourceProduct=v["source_product"])
        try:
            rows.append(_row(ds, v["info"], f"{name}:{v['info']['imagette_number']:03d}", v["name"]))
        except (ValueError, KeyError) as err:
            skipped.append(f"{name}:{v['info']['imagette_number']:03d}: {err}")
    return rows


def open_ocn(paths: str | os.PathLike | Iterable[str | os.PathLike], *,
             storage_options: dict | None = None) -> xr.Dataset:
    """Open Sentinel-1 WV L2 OCN products as one imagette Dataset, one row per product.

    ESA's L2 ocean-swell estimates (wave height, winds, NRCS statistics, swell partitions) are the closest thing
    to ground truth that comes with every imagette; reading them onto the ``imagette`` dimension lets them be
    joined with quicklooks or SLC imagettes of the same acquisition by ``imagette_key``, and used as probe
    targets. Variables get plain names (``hs``, ``wind_speed``, ``nrcs``...; see ``SCALARS`` and
    ``PARTITIONS``) and keep the product's name in their ``source_name`` attribute, with its units and
    long name.

    Parameters
    ----------
    paths : str, os.PathLike or iterable of them
        Product files (``.nc``), EOPF ``S01SWVOCN`` products (``.zarr`` folders or zips, local or ``s3://``,
        ``gs://``, ``az://`` URLs), folders (their netCDF files and EOPF products, sorted) or glob patterns, or a
        list of any of these, resolved by :func:`xwvnet.io.sources.resolve` (netCDF files on a local disk only).
    storage_options : dict, optional
        Credentials and endpoint of EOPF products given as URLs (as :func:`xwvnet.io.safe.open_safe`).

    Returns
    -------
    xarray.Dataset
        Per-imagette ``float32`` variables (``hs``, ``hs_std``, ``wind_speed``, ``wind_direction``, ``nrcs``...,
        NaN where a product lacks one) and ``partition_*`` variables of dims ``(imagette, partition)``. Ids are
        the file stems (``<EOPF product name>:<nnn>`` for EOPF vignettes), in the order the paths resolve to;
        coordinates ``time``, ``latitude``, ``longitude`` (in [-180, 180)), ``incidence_angle``, ``heading``,
        ``mission``, ``swath``, ``polarization``, ``orbit``,
        ``datatake``, ``imagette_number``, ``imagette_key``, ``source`` (file name), ``source_product`` (the
        L1 product it was made from), ``ipf_version`` and ``hs_method``. ``hs`` is ``oswTotalHs`` where the
        product has it, else derived from the partitions and the wind sea or the polar spectrum
        (:func:`total_hs`; its ``hs_method`` attribute says which, per product in the ``hs_method`` coordinate).
        WV1 and WV2 products are read alike.

    Raises
    ------
    xwvnet.errors.InvalidFileError
        If no product could be read (every one skipped); the message names the first reasons. A ``ValueError``.
    xwvnet.errors.InputNotFoundError
        For folders or patterns holding no netCDF file (a ``FileNotFoundError``).
    xwvnet.errors.InvalidArgumentError
        For an empty list or the URL of a netCDF product (those are read from a local disk).

    Warns
    -----
    OcnWarning
        Listing the products skipped: unreadable files, names that are not WV OCN names, or products without an
        ocean-swell component (none of ``oswTotalHs``, ``oswHs``, ``oswPolSpec``).

    Examples
    --------
    >>> import xwvnet
    >>> from xwvnet import datasets
    >>> path = datasets.fetch("s1_wv/s1a-wv2-ocn-vv-20260112t045817-20260112t045820-062729-07ddb1-036.nc")
    >>> ds = xwvnet.open_ocn(path)
    >>> dict(ds.sizes)
    {'imagette': 1, 'partition': 5}
    >>> round(float(ds.hs[0]), 2), ds.hs.attrs["units"], ds.hs.attrs["source_name"]
    (2.01, 'm', 'oswTotalHs')
    >>> str(ds.imagette_key.values[0])
    's1a-wv2-vv-062729-07ddb1-036'
    """
    found = resolve(paths, storage_options, kinds=(OCN, NETCDF, EOPF_OCN))
    rows, skipped = [], []
    for source in found:
        try:
            if source.kind == EOPF_OCN:
                rows += [(None, row) for row in _read_eopf(source, skipped)]
            else:
                rows.append((source.path, _read_one(source.path)))
        except (OSError, ValueError, KeyError, RuntimeError) as err:
            skipped.append(f"{source}: {err}")
    files = found
    if skipped:
        warn(f"skipped {len(skipped)} OCN file(s):\n  " + "\n  ".join(skipped), OcnWarning)
    if not rows:
        raise InvalidFileError(
            f"no readable WV L2 OCN product among {len(files)} path(s) given"
            + (f": {'; '.join(skipped[:3])}" if skipped else "; pass .nc files, a folder of them or a glob.")
        )
    n = len(rows)
    n_part = max(int(np.size(r[name])) for _, r in rows for name in PARTITIONS)
    data: dict[str, tuple] = {}
    attrs: dict[str, dict] = {}
    for _, r in rows:
        for k, v in r["attrs"].items():
            attrs.setdefault(k, v)
    for name in SCALARS:
        data[name] = (S.IMAGETTE, np.array([float(np.ravel(r[name])[0]) for _, r in rows], dtype=np.float32))
    for name in PARTITIONS:
        block = np.full((n, n_part), np.nan, dtype=np.float32)
        for i, (_, r) in enumerate(rows):
            values = np.ravel(r[name])
            block[i, : values.size] = values
        data[name] = ((S.IMAGETTE, PARTITION), block)
    infos = [r["info"] for _, r in rows]
    lon = np.array([float(np.ravel(r[S.LONGITUDE])[0]) for _, r in rows])
    coords = {
        S.IMAGETTE: np.array([r["id"] for _, r in rows], dtype=object),
        S.TIME: np.array([i["time"] for i in infos], dtype="datetime64[ns]"),
        S.LATITUDE: np.array([float(np.ravel(r[S.LATITUDE])[0]) for _, r in rows]),
        S.LONGITUDE: (lon + 180.0) % 360.0 - 180.0,
        S.INCIDENCE_ANGLE: np.array([float(np.ravel(r[S.INCIDENCE_ANGLE])[0]) for _, r in rows]),
        S.HEADING: np.array([float(np.ravel(r[S.HEADING])[0]) for _, r in rows]),
        S.MISSION: np.array([i["mission"] for i in infos], dtype=object),
        S.SWATH: np.array([i["swath"] for i in infos], dtype=object),
        S.POLARIZATION: np.array([i["polarization"] for i in infos], dtype=object),
        S.ORBIT: np.array([i["orbit"] for i in infos], dtype=np.int64),
        S.DATATAKE: np.array([i["datatake"] for i in infos], dtype=object),
        S.NUMBER: np.array([i["imagette_number"] for i in infos], dtype=np.int64),
        KEY: np.array([imagette_key(i) for i in infos], dtype=object),
        S.SOURCE: np.array([r["source"] for _, r in rows], dtype=object),
        "source_product": np.array([r["source_product"] for _, r in rows], dtype=object),
        "hs_method": np.array([r["hs_method"] for _, r in rows], dtype=object),
        "ipf_version": np.array([r["ipf"] for _, r in rows], dtype=object),
        PARTITION: np.arange(n_part, dtype=np.int64),
    }
    coords = {k: ((PARTITION if k == PARTITION else S.IMAGETTE), v) for k, v in coords.items()}
    ds = xr.Dataset(data, coords=coords, attrs={"title": "Sentinel-1 WV L2 OCN products (ocean swell component)"})
    for name, a in attrs.items():
        ds[name].attrs.update(a)
    used = sorted(set(ds["hs_method"].values.tolist()))
    ds["hs"].attrs["source_name"] = "oswTotalHs" if used == ["oswTotalHs"] else "derived (see hs_method)"
    ds["hs"].attrs["hs_method"] = "; ".join(f"{m}: {HS_METHODS[m]}" for m in used)
    ds["hs_method"].attrs["long_name"] = "how hs was obtained: " + ", ".join(HS_METHODS)
    return ds

