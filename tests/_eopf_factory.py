"""Write Sentinel-1 WV products in ESA's EOPF Zarr layout (S01SWVSLC, S01SWVOCN) with known truth, without eopf.

The layout follows what ESA's converter (``eopf.store.convert``, eopf 2.8.1) writes from a SAFE product: Zarr v2,
one group per vignette named ``S01SWVSLC_<start>_<duration>_<unit><rel. orbit>_<id>_<datatake>_VV_<WV1|2>_<nnn>``
holding ``measurements/slc`` (complex64 ``(azimuth_time, slant_range_time)`` with ``line`` and ``pixel``
coordinates), ``quality/calibration`` and ``quality/noise_range`` (one row per annotated vector), ``conditions/gcp``
(the geolocation grid unstacked to ``(azimuth_time, slant_range_time)``), ``conditions/{doppler_centroid,attitude,
orbit,antenna_pattern}``, and the annotation as ``stac_discovery``/``other_metadata`` attributes. ``tests/io/
test_eopf.py`` checks these variables, dtypes and dims against the product models that eopf ships (when eopf is
installed) and reads the converter's own output when its separate environment is there.

Values come from :func:`tests._safe_factory.make_wv_safe`'s truth, so the SAFE and EOPF readers can be compared.
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import numpy as np
import xarray as xr

from tests._safe_factory import INCIDENCE, SPACING, Imagette, _pixels, _vector_lines

#: seconds between lines, as the SAFE factory writes them
LINE_INTERVAL = 4.1 / 6900.0
_PLATFORM = {"s1a": "sentinel-1a", "s1b": "sentinel-1b", "s1c": "sentinel-1c", "s1d": "sentinel-1d"}


def _stamp(t: np.datetime64) -> str:
    return str(np.datetime64(t, "s")).replace("-", "").replace(":", "")


def eopf_names(safe_name: str, images: list[Imagette], kind: str = "S01SWVSLC") -> tuple[str, list[str]]:
    """The EOPF product name and vignette group names of a SAFE product, as ESA's converter makes them."""
    mission, orbit, datatake, uid = (
        safe_name[:3].lower(),
        int(safe_name.split("_")[-3]),
        safe_name.split("_")[-2],
        safe_name.split("_")[-1],
    )
    start = min(i.start for i in images)
    rel = (orbit - 73) % 175 + 1
    unit = mission[-1].upper()
    product = f"{kind}_{_stamp(start)}_0018_{unit}{rel:03d}__D91"
    groups = [
        f"{kind}_{_stamp(start)}_0300_{unit}{rel:03d}_{uid}_{datatake.upper()}_VV_{i.swath.upper()}_{i.number:03d}"
        for i in images
    ]
    return product, groups


def _stac(safe_name: str, im: Imagette, kind: str, pass_: str) -> dict:
    mission, orbit, datatake = safe_name[:3].lower(), int(safe_name.split("_")[-3]), safe_name.split("_")[-2]
    rg, az = SPACING[im.swath]
    return {
        "type": "Feature",
        "stac_version": "1.1.0",
        "properties": {
            "platform": _PLATFORM[mission],
            "constellation": "sentinel-1",
            "product:type": kind,
            "sat:absolute_orbit": orbit,
            "sat:relative_orbit": (orbit - 73) % 175 + 1,
            "sat:orbit_state": pass_.lower(),
            "eopf:datatake_id": str(int(datatake, 16)),
            "sar:instrument_mode": "WV",
            "sar:polarization": "VV",
            "sar:pixel_spacing_range": rg,
            "sar:pixel_spacing_azimuth": az,
            "view:incidence_angle": INCIDENCE[im.swath],
            "start_datetime": f"{np.datetime64(im.start, 'us')}Z",
            "processing:software": {"Sentinel-1 IPF": "003.71"},
        },
    }


def _times(im: Imagette, lines: np.ndarray) -> np.ndarray:
    return im.start + (np.asarray(lines, dtype=np.float64) * LINE_INTERVAL * 1e9).astype("timedelta64[ns]")


def _ranges(pixels: np.ndarray) -> np.ndarray:
    return 5.0e-3 + np.asarray(pixels, dtype=np.float64) * 1.2e-8


def _lut_dataset(im: Imagette, lines: np.ndarray, values: dict[str, np.ndarray], pixel_dtype: str) -> xr.Dataset:
    pixels = _pixels(im)
    dims = ("azimuth_time", "slant_range_time")
    return xr.Dataset(
        {k: (dims, v.astype(np.float32)) for k, v in values.items()},
        coords={
            "azimuth_time": _times(im, lines),
            "slant_range_time": _ranges(pixels),
            "line": ("azimuth_time", lines.astype(np.int32)),
            "pixel": ("slant_range_time", pixels.astype(pixel_dtype)),
        },
    )


def _vignette(im: Imagette, noise: bool, grid_shape: tuple[int, int]) -> dict[str, xr.Dataset]:
    """The groups of one vignette, by path."""
    lines = np.arange(im.lines)
    pixels = np.arange(im.samples)
    out = {
        "measurements": xr.Dataset(
            {
                "slc": (
                    ("azimuth_time", "slant_range_time"),
                    im.dn.astype(np.complex64),
                    {"long_name": "measurement data set for SLC WV"},
                )
            },
            coords={
                "azimuth_time": _times(im, lines),
                "slant_range_time": _ranges(pixels),
                "line": ("azimuth_time", lines),
                "pixel": ("slant_range_time", pixels),
            },
        )
    }
    vl = _vector_lines(im)
    vp = _pixels(im)
    s0 = im.lut_at(vl[:, None], vp[None, :])
    out["quality/calibration"] = _lut_dataset(
        im,
        vl,
        {
            "sigma_nought": s0,
            "beta_nought": np.full(s0.shape, 237.0),
            "gamma": s0 * 0.93,
            "dn": np.full(s0.shape, 237.0),
        },
        "int32",
    )
    if noise:
        nl = vl[[0, 2]]  # as the SAFE factory: range vectors stop short of the last line
        out["quality/noise_range"] = _lut_dataset(
            im, nl, {"noise_range_lut": np.broadcast_to(im.noise[0] + im.noise[1] * vp, (nl.size, vp.size))}, "uint32"
        )
    gl = np.linspace(0, im.lines - 1, grid_shape[0]).round().astype(np.int32)
    gp = np.linspace(0, im.samples - 1, grid_shape[1]).round().astype(np.int32)
    ll, pp = np.meshgrid(gl, gp, indexing="ij")
    grid = {k: g[0] + g[1] * ll + g[2] * pp for k, g in im.grid.items()}
    dims = ("azimuth_time", "slant_range_time")
    out["conditions/gcp"] = xr.Dataset(
        {
            "latitude": (dims, grid["latitude"]),
            "longitude": (dims, grid["longitude"]),
            "incidence_angle": (dims, grid["incidence"]),
            "elevation_angle": (dims, grid["incidence"] - 2.5),
            "height": (dims, np.zeros(ll.shape)),
            "azimuth_time_gcp": (dims, _times(im, ll)),
            "slant_range_time_gcp": (dims, _ranges(pp)),
        },
        coords={
            "azimuth_time": _times(im, gl),
            "slant_range_time": _ranges(gp),
            "line": ("azimuth_time", gl),
            "pixel": ("slant_range_time", gp),
        },
    )
    t = _times(im, np.array([-1700.0, 0.0, 1700.0]))
    a = ("azimuth_time",)
    out["conditions/doppler_centroid"] = xr.Dataset(
        {
            "data_dc_polynomial": (("azimuth_time", "degree"), np.zeros((3, 3), np.float32)),
            "geometry_dc_polynomial": (("azimuth_time", "degree"), np.zeros((3, 3), np.float32)),
            "data_dc_rms_error": (a, np.full(3, 7.4)),
            "data_dc_rms_error_above_threshold": (a, np.zeros(3, bool)),
            "fine_dce_azimuth_start_time": (a, np.zeros(3, bool)),
            "fine_dce_azimuth_stop_time": (a, np.zeros(3, bool)),
            "t0": (a, np.full(3, 5.0e-3)),
        },
        coords={"azimuth_time": t, "degree": np.arange(3)},
    )
    out["conditions/attitude"] = xr.Dataset(
        {
            **{q: (a, np.full(3, 0.5, np.float32)) for q in ("q0", "q1", "q2", "q3")},
            **{w: (a, np.zeros(3)) for w in ("wx", "wy", "wz", "roll", "pitch", "yaw")},
        },
        coords={"azimuth_time": t},
    )
    out["conditions/orbit"] = xr.Dataset(
        {
            "position": (("azimuth_time", "axis"), np.full((3, 3), 4.0e6)),
            "velocity": (("azimuth_time", "axis"), np.full((3, 3), 5.0e3)),
        },
        coords={"azimuth_time": t, "axis": ["x", "y", "z"]},
    )
    out["conditions/antenna_pattern"] = xr.Dataset(
        {
            "swath": (a, np.array([im.swath.upper()] * 3, dtype="<U3")),
            "slant_range_time_ap": (("azimuth_time", "count"), np.tile(_ranges(np.array([0, 50, 99])), (3, 1))),
            "elevation_angle": (("azimuth_time", "count"), np.full((3, 3), 20.0, np.float32)),
            "incidence_angle": (("azimuth_time", "count"), np.full((3, 3), 23.0, np.float32)),
            "roll": (a, np.full(3, -30.0)),
            "terrain_height": (a, np.zeros(3)),
        },
        coords={"azimuth_time": t},
    )
    return out


def _write(groups: dict[str, xr.Dataset], attrs: dict[str, dict], folder: Path) -> None:
    import zarr

    root = zarr.open_group(str(folder), mode="w", zarr_format=2)
    root.attrs.update(attrs.pop("", {}))
    for path, ds in groups.items():
        ds.to_zarr(str(folder), group=path, mode="a", zarr_format=2, consolidated=False)
    for path, a in attrs.items():
        zarr.open_group(str(folder), path=path, mode="a", zarr_format=2).attrs.update(a)


def _finish(folder: Path, as_zip: bool) -> Path:
    if not as_zip:
        return folder
    archive = folder.with_name(folder.name + ".zip")
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(folder.parent).as_posix())
    shutil.rmtree(folder)
    return archive


def make_eopf_slc(
    root: Path,
    safe_name: str,
    images: list[Imagette],
    *,
    noise: bool = True,
    pass_: str = "Descending",
    grid_shape: tuple[int, int] = (5, 6),
    as_zip: bool = False,
    drop: tuple[str, ...] = (),
) -> Path:
    """Write an EOPF ``S01SWVSLC`` product of the imagettes a SAFE product was made of (the same DN and LUTs).

    ``noise=False`` leaves out ``quality/noise_range`` (as Sentinel-1C products can); ``drop`` leaves out variables
    of every vignette (e.g. ``"quality/calibration/sigma_nought"``), to test a damaged product.
    """
    product, names = eopf_names(safe_name, images)
    folder = Path(root) / f"{product}.zarr"
    if folder.exists():
        shutil.rmtree(folder)
    groups: dict[str, xr.Dataset] = {}
    attrs: dict[str, dict] = {
        "": {
            "stac_discovery": {"properties": {"product:type": "S01SWVSLC"}},
            "other_metadata": {"eopf_category": "eocontainer", "title": "S01SWVSLC"},
        }
    }
    for im, name in zip(images, names):
        for path, ds in _vignette(im, noise, grid_shape).items():
            for var in drop:
                group, _, leaf = var.rpartition("/")
                if group == path:
                    ds = ds.drop_vars(leaf)
            groups[f"{name}/{path}"] = ds
        attrs[name] = {
            "stac_discovery": _stac(safe_name, im, "S01SWVSLC", pass_),
            "other_metadata": {
                "eopf_category": "eoproduct",
                "image_number": f"{im.number:03d}",
                "polarisation": "VV",
                "platform_heading": f"{im.heading:.15e}",
            },
        }
    _write(groups, attrs, folder)
    return _finish(folder, as_zip)


def make_eopf_ocn(
    root: Path,
    safe_name: str,
    images: list[Imagette],
    *,
    hs: list[float] | None = None,
    with_total_hs: bool = True,
    as_zip: bool = False,
) -> Path:
    """Write an EOPF ``S01SWVOCN`` product: one osw (and rvl) vignette per imagette, with ``hs`` as total Hs.

    Without ``with_total_hs`` the vignettes carry only swell partitions and the wind sea (as older IPF versions):
    Hs is then derived from them.
    """
    product, names = eopf_names(safe_name, images, "S01SWVOCN")
    folder = Path(root) / f"{product}.zarr"
    if folder.exists():
        shutil.rmtree(folder)
    hs = hs or [2.0 + k for k in range(len(images))]
    groups: dict[str, xr.Dataset] = {}
    attrs: dict[str, dict] = {
        "": {
            "stac_discovery": {"properties": {"product:type": "S01SWVOCN"}},
            "other_metadata": {"eopf_category": "eocontainer"},
        }
    }
    cell = ("azimuth", "range")
    for im, name, h in zip(images, names, hs):
        coords = {
            "latitude": (cell, [[im.centre[0]]], {"units": "degrees_north"}),
            "longitude": (cell, [[im.centre[1]]], {"units": "degrees_east"}),
        }
        parts = np.array([[[0.6 * h, 0.8 * h, np.nan, np.nan, np.nan]]], np.float32)  # 0.36 + 0.64 = 1
        measurements = {
            "hs": ((*cell, "partition"), parts, {"units": "m"}),
            "wave_length": ((*cell, "partition"), np.full((1, 1, 5), 200.0, np.float32)),
            "wave_direction": ((*cell, "partition"), np.full((1, 1, 5), 90.0, np.float32)),
            "wind_sea_hs": (cell, [[0.0]], {"units": "m"}),
        }
        if with_total_hs:
            measurements["total_hs"] = (
                cell,
                np.array([[h]], np.float32),
                {"units": "m", "long_name": "total significant wave height"},
            )
        groups[f"osw/{name}/measurements"] = xr.Dataset(measurements, coords=coords)
        groups[f"osw/{name}/conditions"] = xr.Dataset(
            {
                "wind_speed": (cell, np.array([[7.5]], np.float32), {"units": "m/s"}),
                "incidence_angle": (cell, np.array([[im.centre[2]]], np.float32), {"units": "degrees"}),
                "heading": (cell, np.array([[im.heading]], np.float32), {"units": "degrees"}),
                "nrcs": (cell, np.array([[-16.7]], np.float32), {"units": "dB"}),
            },
            coords=coords,
        )
        groups[f"osw/{name}/quality"] = xr.Dataset(
            {"partition_quality_flag": ((*cell, "partition"), np.array([[[0.0, 1.0, 4.0, 4.0, 4.0]]]))}, coords=coords
        )
        groups[f"rvl/{name}/conditions"] = xr.Dataset(
            {"zero_doppler_time": (cell, np.array([[im.start + np.timedelta64(1500, "ms")]], "datetime64[ns]"))}
        )
        attrs[f"osw/{name}"] = {
            "stac_discovery": _stac(safe_name, im, "S01SWVOCN", "Descending"),
            "other_metadata": {"eopf_category": "eoproduct", "polarisation": "VV"},
        }
    _write(groups, attrs, folder)
    return _finish(folder, as_zip)
