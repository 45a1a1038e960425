"""The one SAFE reader: calibration at the multilooked resolution (bounded error), no torch, the xarray backend,
hostile products (zip bombs, escaping hrefs, XML entities), products on S3, ingest on a dask.distributed cluster."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from tests._safe_factory import NAME, make_wv_safe
from xwvnet import schema as S
from xwvnet.io.safe import (
    Lut,
    SafeWarning,
    WVNetBackendEntrypoint,
    multilook_sigma0,
    open_safe,
    safe_to_imagettes,
    scan_safe,
)
from xwvnet.radiometry import CALIBRATION_TOLERANCE, calibration_error_bound, multilook

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def product(tmp_path_factory):
    return make_wv_safe(tmp_path_factory.mktemp("safe"), sizes=[(1500, 530), (1203, 467)], seed=3)


def test_multilooked_calibration_is_within_its_bound_of_full_resolution(product):
    path, truth = product
    for item, im in zip(scan_safe(path)[0], truth):
        fast, bound = multilook_sigma0(item, (10, 10))
        full = multilook(im.sigma0(), (10, 10))  # the analytic sigma0, averaged
        assert fast.shape == (im.lines // 10, im.samples // 10) and fast.dtype == np.float32
        err = np.max(np.abs(fast / full - 1))
        assert 0 < bound <= CALIBRATION_TOLERANCE
        assert err <= bound * 1.01 + 2e-6 and err <= 1e-4
        # the bound is not vacuous: calibrating with the block's mean power only along range is far off
        naive = multilook(np.square(np.abs(im.dn.astype(np.complex128))), (10, 10)) / multilook(
            im.lut_at(*np.meshgrid(np.arange(im.lines), np.arange(im.samples), indexing="ij")), (10, 10)) ** 2
        assert np.max(np.abs(naive / full - 1)) > err


def test_a_lut_steep_in_azimuth_takes_the_exact_path(product):
    path, truth = product
    item = scan_safe(path, [1])[0][0]
    steep = Lut(np.array([0.0, 10.0, 1500.0]), [np.array([0.0, 529.0])] * 3,
                [np.array([300.0, 320.0]), np.array([400.0, 420.0]), np.array([300.0, 310.0])])
    item.calibration = steep
    assert calibration_error_bound(steep, item.lines, item.samples, 10) > CALIBRATION_TOLERANCE
    fast, bound = multilook_sigma0(item, (10, 10))
    assert bound == 0.0
    np.testing.assert_allclose(fast, multilook(item.sigma0(), (10, 10)), rtol=1e-6)


def test_a_constant_lut_has_a_zero_bound():
    lut = Lut(np.array([0.0]), [np.array([0.0, 99.0])], [np.array([5.0, 7.0])])
    assert calibration_error_bound(lut, 100, 100, 10) == 0.0


def test_full_resolution_sigma0_stays_exact_on_zips(tmp_path):
    path, truth = make_wv_safe(tmp_path, sizes=[(70, 90)], seed=4, as_zip=True)
    got = open_safe(path).sigma0[0].values.astype(np.float64)
    want = truth[0].sigma0()
    ok = want > 0
    assert np.max(np.abs(got[ok] / want[ok] - 1)) < 1e-5


def test_noise_vectors_stopping_short_of_the_last_line_are_extended(product):
    path, truth = product
    got = open_safe(path, denoise=True).sigma0[0].values[: truth[0].lines, : truth[0].samples]
    want = truth[0].sigma0(denoise=True)
    assert np.max(np.abs(got - want)) < 1e-5 * np.abs(want).mean()


def test_opening_safe_and_making_quicklooks_never_imports_torch(product):
    path, _ = product
    code = (
        "import sys, xwvnet\n"
        f"ds = xwvnet.open_safe({str(path)!r}); ds.sigma0[0].values\n"
        f"q = xwvnet.safe_to_imagettes({str(path)!r}, keep_sigma0=True); q.quicklook.values\n"
        "import xwvnet.radiometry, xwvnet.ingestion\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "print('ok', q.sizes['imagette'])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["ok", "2"]


def test_xarray_backend_gives_open_safe(product):
    path, _ = product
    assert "wvnet" in xr.backends.list_engines()
    ds = xr.open_dataset(path, engine="wvnet")
    ref = open_safe(path)
    assert not ds.sigma0.variable._in_memory  # lazy: nothing read yet
    assert xr.open_dataset(path, engine="wvnet", chunks={}).sigma0.chunks is not None
    xr.testing.assert_identical(ds.drop_attrs(), ref.drop_attrs())
    assert list(ds[S.IMAGETTE].values) == [f"{NAME}:001", f"{NAME}:002"]
    small = xr.open_dataset(path / "manifest.safe", engine="wvnet", imagettes=[2], drop_variables="valid_lines")
    assert small.sizes[S.IMAGETTE] == 1 and S.VALID_LINES not in small
    guess = WVNetBackendEntrypoint().guess_can_open
    assert guess(path) and guess(str(path / "manifest.safe")) and guess(f"s3://b/{NAME}.zip")
    assert not guess("wv.nc") and not guess("S1A_IW_SLC__1SDV_x.SAFE")


def _bomb(tmp_path, name):
    """A zipped product whose first annotation inflates ~1000x (a zip bomb in miniature)."""
    path, _ = make_wv_safe(tmp_path, sizes=[(40, 30), (40, 30)], seed=5)
    archive = tmp_path / f"{name}.zip"
    first = sorted((path / "annotation").glob("*.xml"))[0]
    first.write_bytes(first.read_bytes() + b" " * 60_000_000)
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(path.rglob("*")):
            zf.write(p, p.relative_to(tmp_path).as_posix())
    return archive


def test_a_zip_bomb_member_is_refused_from_the_zip_directory_and_the_rest_read(tmp_path):
    archive = _bomb(tmp_path, "bomb")
    assert archive.stat().st_size < 1_000_000
    with pytest.warns(SafeWarning, match="zip bomb"):
        ds = open_safe(archive)
    assert list(ds[S.IMAGETTE].values) == [f"{NAME}:002"]
    assert any("001" in s and "zip bomb" in s for s in ds.attrs["skipped"])


def test_hrefs_outside_the_product_and_xml_entities_are_refused(tmp_path):
    path, _ = make_wv_safe(tmp_path / "p", sizes=[(40, 30), (40, 30), (40, 30)], seed=6)
    secret = tmp_path / "p" / "secret"
    secret.mkdir()
    annotations = sorted((path / "annotation").glob("*-001.xml"))
    (secret / annotations[0].name).write_bytes(annotations[0].read_bytes())
    manifest = (path / "manifest.safe").read_text()
    manifest = manifest.replace(f"./annotation/{annotations[0].name}", f"../secret/{annotations[0].name}")
    (path / "manifest.safe").write_text(manifest)
    cal = next((path / "annotation" / "calibration").glob("calibration-*-002.xml"))
    body = cal.read_text().split("\n", 1)[1]
    cal.write_text('<?xml version="1.0"?>\n<!DOCTYPE c [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n' + body)
    with pytest.warns(SafeWarning):
        ds = open_safe(path)
    assert list(ds[S.IMAGETTE].values) == [f"{NAME}:003"]
    skipped = "\n".join(ds.attrs["skipped"])
    assert f"{NAME}:001: href '../secret/" in skipped and "outside the product" in skipped
    assert f"{NAME}:002: calibration" in skipped and "entities" in skipped


def test_entities_anywhere_in_any_encoding_and_links_out_of_the_product_are_refused(tmp_path):
    path, _ = make_wv_safe(tmp_path / "p", sizes=[(40, 30)] * 4, seed=8)
    calibrations = sorted((path / "annotation" / "calibration").glob("calibration-*.xml"), key=lambda p: p.name[-7:])
    body = calibrations[0].read_text().split("\n", 1)[1]
    comment = "<!-- " + "x" * 5000 + " -->\n"  # past any first-4-KB look
    calibrations[0].write_text('<?xml version="1.0"?>\n' + comment + '<!DOCTYPE c [<!ENTITY k "1.0">]>\n' + body)
    body = calibrations[1].read_text().split("\n", 1)[1]
    calibrations[1].write_bytes(('<?xml version="1.0" encoding="UTF-16"?>\n<!DOCTYPE c [<!ENTITY k "1.0">]>\n'
                                 + body).encode("utf-16"))
    outside = tmp_path / "elsewhere.xml"
    outside.write_bytes(calibrations[2].read_bytes())
    calibrations[2].unlink()
    calibrations[2].symlink_to(outside)
    with pytest.warns(SafeWarning):
        ds = open_safe(path)
    assert list(ds[S.IMAGETTE].values) == [f"{NAME}:004"]  # each refusal skips only its imagette
    skipped = "\n".join(ds.attrs["skipped"])
    assert f"{NAME}:001: calibration" in skipped and f"{NAME}:002: calibration" in skipped
    assert skipped.count("DTD or XML entities") == 2
    assert f"{NAME}:003" in skipped and "a link that leaves the product" in skipped


@pytest.mark.parametrize("as_zip", [False, True])
def test_products_on_s3_read_as_local_ones(tmp_path, s3_endpoint, as_zip):
    import boto3

    from tests._factories import new_bucket

    path, truth = make_wv_safe(tmp_path, sizes=[(60, 50), (44, 70)], seed=7, as_zip=as_zip)
    bucket = new_bucket(s3_endpoint)
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    for p in [path] if as_zip else sorted(path.rglob("*")):
        if p.is_file():
            s3.upload_file(str(p), bucket, f"wv/{p.relative_to(tmp_path).as_posix()}")
    url = f"s3://{bucket}/wv/{path.name}"
    remote, local = open_safe(url), open_safe(path)
    np.testing.assert_array_equal(remote.sigma0.values, local.sigma0.values)
    assert list(remote[S.IMAGETTE].values) == list(local[S.IMAGETTE].values)
    ql = safe_to_imagettes(url)
    np.testing.assert_array_equal(ql.quicklook.values, safe_to_imagettes(path).quicklook.values)
    import xwvnet

    report = xwvnet.ingest([url], tmp_path / "store")  # an s3:// product is a SAFE source like a path
    assert report.added == 2 and not report.skipped


def test_products_on_s3_take_the_checked_storage_options(tmp_path, s3_endpoint, monkeypatch):
    """The endpoint and keys of SAFE URLs come in storage_options= (the names locate checks), not the environment."""
    import boto3

    import xwvnet
    from tests._factories import new_bucket

    path, _ = make_wv_safe(tmp_path, sizes=[(40, 30)], seed=8, as_zip=True)
    bucket = new_bucket(s3_endpoint)
    boto3.client("s3", endpoint_url=s3_endpoint).upload_file(str(path), bucket, f"wv/{path.name}")
    for name in ("AWS_ENDPOINT_URL", "AWS_ALLOW_HTTP", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    options = {"endpoint_url": s3_endpoint, "allow_http": True, "access_key_id": "testing",
               "secret_access_key": "testing", "region": "us-east-1"}
    url = f"s3://{bucket}/wv/{path.name}"
    ds = open_safe(url, storage_options=options)
    np.testing.assert_array_equal(ds.sigma0.values, open_safe(path).sigma0.values)
    with pytest.raises(ValueError, match=r"\['endpoint'\] are not known for s3:// stores; known: \['endpoint_url'"):
        open_safe(url, storage_options={"endpoint": s3_endpoint})
    report = xwvnet.ingest([url], tmp_path / "store", storage_options=options)  # a local store: options for the URL
    assert report.added == 1 and not report.skipped
    with pytest.raises(ValueError, match="not known for file:// stores"):  # nothing on object storage takes them
        xwvnet.ingest([path], tmp_path / "other", storage_options=options)


def test_ingest_on_a_distributed_cluster(tmp_path, product):
    distributed = pytest.importorskip("distributed")
    import xwvnet

    path, _ = product
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None) as client:
        report = xwvnet.ingest([path], tmp_path / "store", client=client)
    assert report.added == 2
    ref = safe_to_imagettes(path)
    stored = xwvnet.open_store(tmp_path / "store")
    np.testing.assert_array_equal(stored.quicklook.values, ref.quicklook.values)
