"""EOPF Zarr WV products (xwvnet.io.eopf): read like SAFE products, by the SAFE and OCN readers; S1A to S1D."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import xwvnet
from tests._eopf_factory import eopf_names, make_eopf_ocn, make_eopf_slc
from tests._factories import REPO
from tests._numpydoc import check_numpydoc
from tests._safe_factory import NAME, make_wv_safe
from xwvnet import schema as S
from xwvnet.io import eopf, sources
from xwvnet.io.ocn import open_ocn
from xwvnet.io.quicklook import NoReadableImageError
from xwvnet.io.safe import SafeWarning, WVNetBackendEntrypoint, open_safe, safe_to_imagettes
from xwvnet.io.storage import locate

#: the Python of a separate environment with ESA's eopf (it pins its own xarray, zarr and dask): ``.eopf-venv``
EOPF_PYTHON = Path(os.environ.get("XWVNET_EOPF_PYTHON", REPO / ".eopf-venv" / "bin" / "python"))
#: coordinates both layouts must give alike (ids and product names differ: they name the product read)
SAME = (
    "time",
    "latitude",
    "longitude",
    "incidence_angle",
    "heading",
    "mission",
    "swath",
    "polarization",
    "orbit",
    "datatake",
    "imagette_number",
    "imagette_key",
    "pass",
    "line_spacing",
    "sample_spacing",
    "valid_lines",
    "valid_samples",
    "noise_lut",
)
SIZES = [(120, 100), (96, 110)]


def _name(mission: str) -> str:
    return mission.upper() + NAME[3:]


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """A SAFE product and the same imagettes as an EOPF product (folder and zip)."""
    root = tmp_path_factory.mktemp("eopf")
    safe, images = make_wv_safe(root, sizes=SIZES, seed=5)
    (root / "zip").mkdir()
    return safe, make_eopf_slc(root, NAME, images), make_eopf_slc(root / "zip", NAME, images, as_zip=True), images


def _same_imagettes(a: xr.Dataset, b: xr.Dataset, rtol: float = 1e-6) -> None:
    for name in SAME:
        x, y = a[name].values, b[name].values
        if x.dtype.kind in "fc":
            np.testing.assert_allclose(x, y, rtol=rtol, atol=0, err_msg=name)
        else:
            np.testing.assert_array_equal(x, y, err_msg=name)


def test_eopf_imagettes_are_the_safe_imagettes(pair):
    safe, folder, zipped, truth = pair
    a, b, c = open_safe(safe), open_safe(folder), open_safe(zipped)
    product, _ = eopf_names(NAME, truth)
    assert list(b[S.IMAGETTE].values) == [f"{product}:001", f"{product}:002"]
    assert list(c[S.IMAGETTE].values) == list(b[S.IMAGETTE].values)
    _same_imagettes(a, b)
    # the LUTs are float32 in EOPF (float64 numbers in the XML): sigma0 agrees to float32 precision
    np.testing.assert_allclose(b.sigma0.values, a.sigma0.values, rtol=1e-6, equal_nan=True)
    np.testing.assert_array_equal(c.sigma0.values, b.sigma0.values)
    for k, im in enumerate(truth):
        np.testing.assert_allclose(b.sigma0.values[k, : im.lines, : im.samples], im.sigma0(), rtol=1e-5)
    qa, qb = safe_to_imagettes(safe, keep_sigma0=True), safe_to_imagettes(zipped, keep_sigma0=True)
    np.testing.assert_array_equal(qa.quicklook.values, qb.quicklook.values)
    np.testing.assert_allclose(qb.sigma0.values, qa.sigma0.values, rtol=1e-6, equal_nan=True)
    _same_imagettes(qa, qb)
    xwvnet.validate(qb)
    da = open_safe(safe, denoise=True).sigma0.values
    np.testing.assert_allclose(open_safe(folder, denoise=True).sigma0.values, da, rtol=1e-5, equal_nan=True)


def test_the_input_door_the_backend_and_ingest_take_them(pair, tmp_path):
    safe, folder, zipped, _ = pair
    assert sources.source_kind(folder) == sources.EOPF_SLC and sources.source_kind(zipped) == sources.EOPF_SLC
    assert sources.source_kind("s3://b/S01SWVOCN_20240926T075723_0574_A319_2090_06D2B0.zarr") == sources.EOPF_OCN
    renamed = tmp_path / "mine.zarr"
    renamed.symlink_to(folder, target_is_directory=True)
    assert sources.source_kind(renamed) == sources.EOPF_SLC  # told by its root attributes
    kinds = {s.kind for s in sources.resolve([folder.parent], kinds=(sources.SAFE, sources.EOPF_SLC))}
    assert kinds == {sources.SAFE, sources.EOPF_SLC}
    guess = WVNetBackendEntrypoint().guess_can_open
    assert guess(folder) and guess(zipped) and guess(f"s3://b/{folder.name}")
    ds = xr.open_dataset(zipped, engine="wvnet")
    np.testing.assert_array_equal(ds.sigma0.values, open_safe(folder).sigma0.values)
    report = xwvnet.ingest([safe, zipped], tmp_path / "store")
    assert report.added == 4 and not report.skipped
    stored = xwvnet.open_store(tmp_path / "store")
    assert sorted(stored.imagette_key.values.tolist()) == sorted(
        2 * ["s1a-wv1-vv-025911-02e29d-001", "s1a-wv2-vv-025911-02e29d-002"]
    )


@pytest.mark.parametrize("mission", ["s1a", "s1b", "s1c", "s1d"])
def test_every_unit_reads_alike_and_missing_noise_is_said(tmp_path, mission):
    """Sentinel-1C products may carry no thermal noise LUT: the readers say so, and refuse to denoise them."""
    no_noise = mission == "s1c"
    safe, images = make_wv_safe(
        tmp_path, name=_name(mission), sizes=[(64, 70)], seed=3, noise_style="none" if no_noise else "range"
    )
    zarr_product = make_eopf_slc(tmp_path, _name(mission), images, noise=not no_noise)
    a, b = open_safe(safe), open_safe(zarr_product)
    _same_imagettes(a, b)
    assert set(b.mission.values) == {mission} and b.imagette_key.values[0].startswith(f"{mission}-wv1-vv-")
    assert bool(b.noise_lut.values[0]) is not no_noise and bool(a.noise_lut.values[0]) is not no_noise
    assert b.attrs["no_noise_lut"] == ([str(b[S.IMAGETTE].values[0])] if no_noise else [])
    assert a.attrs["no_noise_lut"] == ([str(a[S.IMAGETTE].values[0])] if no_noise else [])
    if no_noise:
        for path in (safe, zarr_product):
            with pytest.warns(SafeWarning), pytest.raises(NoReadableImageError, match="no thermal noise LUT"):
                open_safe(path, denoise=True)
    ocn = open_ocn(make_eopf_ocn(tmp_path, _name(mission), images, hs=[2.5]))
    assert list(ocn.imagette_key.values) == list(b.imagette_key.values)
    assert list(ocn.mission.values) == [mission]


def test_a_missing_variable_is_one_line_naming_it(tmp_path):
    safe, images = make_wv_safe(tmp_path, sizes=SIZES, seed=2)
    damaged = make_eopf_slc(tmp_path, NAME, images, drop=("quality/calibration/sigma_nought",))
    with pytest.warns(SafeWarning), pytest.raises(NoReadableImageError) as info:
        open_safe(damaged)
    assert info.value.skipped[0].endswith(
        ":001: missing quality/calibration/sigma_nought (an EOPF S01SWVSLC vignette has them all)"
    )
    assert len(info.value.skipped) == 2
    with (
        pytest.warns(SafeWarning, match="an EOPF WV L2 OCN product .S01SWVOCN., not a WV L1 SLC"),
        pytest.raises(NoReadableImageError),
    ):
        open_safe(make_eopf_ocn(tmp_path, NAME, images))


def test_an_other_eopf_product_type_is_refused_by_name(tmp_path):
    import zarr

    folder = tmp_path / "other.zarr"
    zarr.open_group(str(folder), mode="w", zarr_format=2).attrs.update(
        {"stac_discovery": {"properties": {"product:type": "S01SIWSLC"}}}
    )
    with pytest.raises(
        xwvnet.errors.InvalidFileError,
        match="an EOPF product of type S01SIWSLC; WV products are S01SWVSLC or S01SWVOCN",
    ):
        eopf.product_kind(locate(folder))


def test_ocn_vignettes_read_like_netcdf_products(tmp_path):
    _, images = make_wv_safe(tmp_path, sizes=SIZES, seed=1)
    ds = open_ocn(make_eopf_ocn(tmp_path, NAME, images, hs=[2.0, 3.5]))
    np.testing.assert_allclose(ds.hs.values, [2.0, 3.5])
    assert list(ds.hs_method.values) == ["oswTotalHs", "oswTotalHs"]
    np.testing.assert_allclose(ds.latitude.values, [im.centre[0] for im in images], rtol=1e-6)
    assert list(ds[S.TIME].values) == [np.datetime64(im.start + np.timedelta64(1500, "ms"), "ns") for im in images]
    older = open_ocn(
        make_eopf_ocn(tmp_path / "old", NAME, images, hs=[2.0, 3.5], with_total_hs=False)
        if (tmp_path / "old").mkdir() is None
        else None
    )
    np.testing.assert_allclose(older.hs.values, [2.0, 3.5], rtol=1e-6)  # sqrt(0.36 + 0.64) h, partitions 4 dropped
    assert list(older.hs_method.values) == ["partitions", "partitions"]
    xwvnet.validate(ds, require_image=False)


@pytest.mark.parametrize("as_zip", [False, True])
def test_products_on_s3_read_as_local_ones(tmp_path, s3_endpoint, as_zip):
    import boto3

    from tests._factories import new_bucket

    _, images = make_wv_safe(tmp_path, sizes=[(60, 50)], seed=7)
    path = make_eopf_slc(tmp_path / "p", NAME, images, as_zip=as_zip) if (tmp_path / "p").mkdir() is None else None
    bucket = new_bucket(s3_endpoint)
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    for p in [path] if as_zip else sorted(path.rglob("*")):
        if p.is_file():
            s3.upload_file(str(p), bucket, f"wv/{p.relative_to(path.parent).as_posix()}")
    remote = open_safe(f"s3://{bucket}/wv/{path.name}")
    np.testing.assert_array_equal(remote.sigma0.values, open_safe(path).sigma0.values)


def test_numpydoc():
    check_numpydoc("xwvnet.io.eopf")


# ---- against ESA's eopf (a separate environment: it pins its own xarray, zarr and dask) ------------------------------
def _eopf_models() -> Path:
    if not EOPF_PYTHON.is_file():
        pytest.skip(
            f"no eopf environment at {EOPF_PYTHON} (python3 -m venv .eopf-venv && .eopf-venv/bin/pip install "
            "eopf==2.8.1 defusedxml; or set XWVNET_EOPF_PYTHON)"
        )
    code = "import importlib.util, os; print(os.path.dirname(importlib.util.find_spec('eopf').origin))"
    found = subprocess.run([str(EOPF_PYTHON), "-c", code], capture_output=True, text=True, timeout=120)
    if found.returncode:
        pytest.skip(f"{EOPF_PYTHON} has no eopf: {found.stderr.strip()[-200:]}")
    return Path(found.stdout.strip()) / "product" / "models"


def _layout(group: object, prefix: str = "") -> dict[str, tuple[str, list[str]]]:
    """Variables of a written vignette: path -> (dtype, dims), coordinates left out (as eopf's models do)."""
    arrays = dict(group.arrays())
    coords = {c for a in arrays.values() for c in str(a.attrs.get("coordinates", "")).split()}
    out = {}
    for name, arr in arrays.items():
        dims = list(arr.attrs.get("_ARRAY_DIMENSIONS", []))
        if [name] == dims or name in coords:
            continue
        is_time = "since" in str(arr.attrs.get("units", ""))
        dtype = "<U3" if arr.dtype.kind == "U" else "datetime64[ns]" if is_time else str(arr.dtype)
        out[f"{prefix}/{name}"] = (dtype, dims)
    for name, sub in group.groups():
        out.update(_layout(sub, f"{prefix}/{name}"))
    return out


def test_the_factory_writes_the_layout_of_eopf_models(tmp_path):
    """Our writer follows the product models eopf ships (real products: variables, dtypes, dims), read now."""
    import zarr

    models = _eopf_models()
    _, images = make_wv_safe(tmp_path, sizes=SIZES, seed=1)
    slc = json.loads((models / "S01SWVSLC.json").read_text())
    model = next(iter(slc["sub_products"].values()))["variables"]
    written = zarr.open_group(str(make_eopf_slc(tmp_path, NAME, images)), mode="r")
    for name in eopf_names(NAME, images)[1]:
        ours = _layout(written[name])
        assert set(ours) == set(model)
        for path, (dtype, dims) in ours.items():
            assert (np.dtype(dtype), dims) == (np.dtype(model[path]["dtype"]), model[path]["dims"]), path
    assert {f"/{v}" for v in (*eopf.SLC_VARIABLES, eopf.NOISE)} <= set(model)
    ocn = json.loads((models / "S01SWVOCN.json").read_text())["sub_containers"]
    written = zarr.open_group(str(make_eopf_ocn(tmp_path, NAME, images)), mode="r")
    for part in ("osw", "rvl"):
        model = next(iter(ocn[part]["sub_products"].values()))["variables"]
        ours = _layout(written[part][eopf_names(NAME, images, "S01SWVOCN")[1][0]])
        assert set(ours) <= set(model), sorted(set(ours) - set(model))
        for path, (_, dims) in ours.items():
            assert dims == model[path]["dims"], path
    model = next(iter(ocn["osw"]["sub_products"].values()))["variables"]
    assert {f"/{k}" for k in eopf.OSW_NAMES if "/" in k} <= set(model)  # the names the OCN reader maps


CONVERT = textwrap.dedent("""
    import sys

    if __name__ == "__main__":
        import eopf.store.convert as convert

        convert._validate_converted = lambda eop, logger: None  # it fetches STAC schemas from the web
        for safe in sys.argv[2:]:
            print(convert.convert(safe, sys.argv[1])[1], flush=True)
""")


def test_products_esa_converts_read_as_their_safe(tmp_path, data_dir):
    """ESA's converter (eopf.store.convert, offline) writes EOPF products of our SAFE products: same imagettes."""
    _eopf_models()
    support = next((data_dir / "s1_other_modes").glob("S1B_IW_SLC__*.SAFE/support"), None)
    if support is None:
        pytest.skip("the converter validates annotations with the product XSD: no SAFE support/ in the data mirror")
    safes = []
    for mission, noise in (("s1a", "range"), ("s1c", "none")):
        safe, _ = make_wv_safe(tmp_path / mission, name=_name(mission), sizes=SIZES, seed=4, noise_style=noise)
        (safe / "support").mkdir()
        for xsd in support.iterdir():
            (safe / "support" / xsd.name).write_bytes(xsd.read_bytes())
        safes.append(safe)
    (tmp_path / "convert.py").write_text(CONVERT)
    done = subprocess.run(
        [str(EOPF_PYTHON), str(tmp_path / "convert.py"), str(tmp_path / "out"), *map(str, safes)],
        capture_output=True,
        text=True,
        timeout=500,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    names = [line for line in done.stdout.split() if line.startswith("S01SWVSLC_")]
    assert len(names) == 2, done.stdout[-2000:]
    for safe, name in zip(safes, names):
        a, b = open_safe(safe), open_safe(tmp_path / "out" / f"{name}.zarr")
        _same_imagettes(a, b)  # its geolocation grid is float32 numbers stored as float64
        np.testing.assert_allclose(b.sigma0.values, a.sigma0.values, rtol=1e-6, equal_nan=True)
        np.testing.assert_array_equal(
            safe_to_imagettes(safe).quicklook.values,
            safe_to_imagettes(tmp_path / "out" / f"{name}.zarr").quicklook.values,
        )
    assert not b.noise_lut.values.any() and b.mission.values[0] == "s1c"


def test_the_eopf_module_imports_no_reader():
    code = "import sys, xwvnet.io.eopf; print([m for m in ('xwvnet.io.safe', 'xwvnet.io.ocn') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]"
