"""Open the sources imagettes are joined with (reanalysis, wave-model, L2 OCN, WV manifests), lazily and spelled alike.

Reanalysis and wave-model files come as netCDF, GRIB or Zarr, and spell their coordinates in many ways (``lat``,
``nav_lon``, ERA5's ``valid_time``). :func:`open_source` opens any of them without reading values, and
:func:`normalise_source` renames the coordinates to the data model's ``latitude`` / ``longitude`` / ``time``, so
that the joins (:mod:`xwvnet.joins`) deal with one spelling only.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import xarray as xr

from .. import schema as S

#: coordinate names read as latitude / longitude (else a variable with that ``standard_name``)
LATITUDE_NAMES = ("latitude", "lat", "nav_lat", "y_lat")
LONGITUDE_NAMES = ("longitude", "lon", "nav_lon", "x_lon")
GRIB_SUFFIXES = (".grib", ".grb", ".grib2", ".grb2")


def _is_zarr(path: Path) -> bool:
    return path.suffix.lower() == ".zarr" or (path / ".zgroup").exists() or (path / "zarr.json").exists()


def _is_manifest(path: Path) -> bool:
    return path.suffix.lower() == ".safe" or path.name == "manifest.safe"


def _is_ocn(path: Path) -> bool:
    """An L2 OCN product (``s1a-wv2-ocn-...nc``) or a folder of them."""
    if path.is_dir():
        return any(path.glob("*-ocn-*.nc"))
    return path.suffix.lower() == ".nc" and "-ocn-" in path.name.lower()


def open_source(path: str | os.PathLike) -> xr.Dataset:
    """Open a source file lazily: values are read only when the join samples them.

    The kind is told by the name: GRIB (``.grib``, ``.grb``, ``.grib2``) through cfgrib, Zarr stores, Sentinel-1
    L2 OCN products (one ``*-ocn-*.nc`` file or a folder of them, through :func:`xwvnet.open_ocn`), WV SAFE
    folders or manifests (imagette positions only), and anything else through :func:`xarray.open_dataset`
    (netCDF). No values are loaded, so a year of global hourly reanalysis opens in a moment.

    Parameters
    ----------
    path : str or os.PathLike
        The file or folder to open.

    Returns
    -------
    xarray.Dataset
        The source as stored (coordinates not yet renamed: see :func:`normalise_source`).

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    ImportError
        For a GRIB file when cfgrib (and eccodes) is not installed.

    Examples
    --------
    >>> from xwvnet.io.sources import open_source
    >>> open_source("/nonexistent/era5.nc")
    Traceback (most recent call last):
    ...
    FileNotFoundError: collocation source /nonexistent/era5.nc does not exist; pass a Dataset or an existing file.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"collocation source {path} does not exist; pass a Dataset or an existing file.")
    if path.suffix.lower() in GRIB_SUFFIXES:
        try:
            import cfgrib  # noqa: F401
        except ImportError as err:
            raise ImportError(
                f"{path.name} is a GRIB file: reading it needs cfgrib and eccodes (pip install cfgrib eccodes), "
                "or convert it to netCDF first."
            ) from err
        return xr.open_dataset(path, engine="cfgrib", backend_kwargs={"indexpath": ""})
    if _is_zarr(path):
        return xr.open_zarr(path)
    if _is_manifest(path):
        from .safe import imagettes_from_manifest

        return imagettes_from_manifest(path)
    if _is_ocn(path):
        from .ocn import open_ocn

        return open_ocn(path)
    return xr.open_dataset(path)


def find_coordinate(ds: xr.Dataset, names: Sequence[str], standard_name: str) -> str | None:
    """Find the variable that holds a coordinate, by its usual names first and then by its CF standard name.

    Parameters
    ----------
    ds : xarray.Dataset
        The Dataset to look in (coordinates and data variables alike).
    names : sequence of str
        Usual names, tried in order (e.g. :data:`LATITUDE_NAMES`).
    standard_name : str
        The CF ``standard_name`` to look for when no usual name is present (e.g. ``"latitude"``).

    Returns
    -------
    str or None
        The variable's name, or ``None`` when there is none.

    Examples
    --------
    >>> import xarray as xr
    >>> ds = xr.Dataset(coords={"y": ("y", [0.0, 1.0], {"standard_name": "latitude"})})
    >>> find_coordinate(ds, LATITUDE_NAMES, "latitude")
    'y'
    """
    for name in names:
        if name in ds.variables:
            return name
    for name, var in ds.variables.items():
        if var.attrs.get("standard_name") == standard_name:
            return str(name)
    return None


def normalise_source(source: xr.Dataset) -> xr.Dataset:
    """Spell a source's coordinates as the data model does: ``latitude``, ``longitude`` and ``time``.

    ERA5 netCDF from the new CDS names its time axis ``valid_time``; cfgrib gives ``time`` (the analysis time)
    and a ``valid_time`` coordinate (time + step), which is the time the field is valid at and so the one to
    match imagettes with. A scalar ``time`` (one field) is dropped, so that the source does not look
    time-dependent. Nothing is loaded.

    Parameters
    ----------
    source : xarray.Dataset
        The source as opened (see :func:`open_source`).

    Returns
    -------
    xarray.Dataset
        A new Dataset with the coordinates renamed; the input is not modified.

    Raises
    ------
    ValueError
        When no latitude/longitude can be found, or ``valid_time`` spans more than one dimension (forecast
        steps): select one step first.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ds = xr.Dataset({"t2m": (("valid_time", "lat", "lon"), np.zeros((1, 2, 3)))},
    ...                 coords={"valid_time": [np.datetime64("2021-03-01T12", "ns")], "lat": [0.0, 1.0],
    ...                         "lon": [0.0, 1.0, 2.0]})
    >>> sorted(normalise_source(ds).t2m.dims)
    ['latitude', 'longitude', 'time']
    """
    out = source
    lat = find_coordinate(out, LATITUDE_NAMES, "latitude")
    lon = find_coordinate(out, LONGITUDE_NAMES, "longitude")
    if lat is None or lon is None:
        raise ValueError(
            f"the collocation source has no latitude/longitude: expected variables named {LATITUDE_NAMES} / "
            f"{LONGITUDE_NAMES} (or with those standard names); found {sorted(map(str, out.variables))}."
        )
    renames = {k: v for k, v in ((lat, S.LATITUDE), (lon, S.LONGITUDE)) if k != v}
    if renames:
        out = out.rename(renames)
    if "valid_time" in out.variables:
        vt = out["valid_time"]
        if "valid_time" in out.dims:
            out = out.drop_vars([S.TIME], errors="ignore").rename({"valid_time": S.TIME})
        elif vt.ndim == 1 and S.TIME in out.dims and vt.dims == (S.TIME,):
            out = out.drop_vars("valid_time").assign_coords({S.TIME: vt.values})
        elif vt.ndim == 0 and S.TIME not in out.dims:
            out = out.drop_vars("valid_time")
        elif vt.ndim > 1:
            raise ValueError(
                f"the source's valid_time has dims {vt.dims}: select one forecast step (source.isel(step=0)) or "
                "stack time and step into one valid time first."
            )
    if S.TIME in out.variables and out[S.TIME].ndim == 0:
        out = out.drop_vars(S.TIME)
    return out
