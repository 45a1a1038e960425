"""The WV SAFE reader (xwvnet.io.safe): manifests, calibration, noise, geolocation, zips, hostile products, S3."""

from __future__ import annotations

import doctest
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import xarray as xr
from PIL import Image

import xwvnet
from tests._factories import REPO
from tests._numpydoc import check_numpydoc
from tests._safe_factory import NAME, SPACING, make_wv_safe
from xwvnet import schema as S
from xwvnet.io.quicklook import NoReadableImageError
from xwvnet.io.safe import (
    Lut,
    SafeWarning,
    WVNetBackendEntrypoint,
    footprint_centre,
    imagettes_from_manifest,
    multilook_sigma0,
    open_safe,
    safe_to_imagettes,
    scan_safe,
)
from xwvnet.radiometry import CALIBRATION_TOLERANCE, calibration_error_bound, multilook

SAFE = "S1B_WV_SLC__1SSV_20210403T083025_20210403T084452_026300_032390_D542.SAFE"


@pytest.fixture(scope="module")
def safe_dir(data_dir):
    path = data_dir / "s1_wv" / SAFE
    if not (path / "manifest.safe").is_file():
        pytest.skip(f"{path} not in the data mirror")
    return path


def test_sixty_imagettes_with_ids_times_and_footprints(safe_dir):
    ds = imagettes_from_manifest(safe_dir)
    assert ds.sizes[S.IMAGETTE] == 60
    assert str(ds[S.IMAGETTE].values[0]) == f"{SAFE[:-5]}:001"
    assert ds[S.TIME].values[0] == np.datetime64("2021-04-03T08:30:25", "ns")
    assert ds[S.TIME].values[1] == np.datetime64("2021-04-03T08:30:40", "ns")
    assert (np.diff(ds[S.TIME].values) > np.timedelta64(0, "s")).all()
    assert list(ds[S.SWATH].values[:4]) == ["wv1", "wv2", "wv1", "wv2"]
    assert set(ds[S.ORBIT].values) == {26300} and set(ds[S.MISSION].values) == {"s1b"}
    np.testing.assert_allclose(ds.footprint_latitude.values[0], [35.943001, 35.980026, 36.159458, 36.122410])
    np.testing.assert_allclose(ds.footprint_longitude.values[0], [-34.578793, -34.804562, -34.759426, -34.533089])
    lat, lon = ds[S.LATITUDE].values, ds[S.LONGITUDE].values
    assert ((lat > ds.footprint_latitude.min("corner")) & (lat < ds.footprint_latitude.max("corner"))).all()
    assert ((lon > ds.footprint_longitude.min("corner")) & (lon < ds.footprint_longitude.max("corner"))).all()
    # descending, right-looking: wv2 (far range) lies west of the wv1 imagette before it
    assert (lon[1::2] < lon[0::2]).all()
    assert lat[-1] == pytest.approx(-15.78, abs=0.01)
    assert str(ds.imagette_key.values[1]) == "s1b-wv2-vv-026300-032390-002"
    assert ds.attrs["pass"] == "DESCENDING"
    xwvnet.validate(ds, require_image=False)


def test_manifest_file_or_folder(safe_dir):
    a = imagettes_from_manifest(safe_dir / "manifest.safe")
    b = imagettes_from_manifest(safe_dir)
    assert a.identical(b)


def test_centre_across_the_antimeridian():
    lat, lon = footprint_centre(np.array([0.0, 0.0, 1.0, 1.0]), np.array([179.9, -179.9, -179.9, 179.9]))
    assert lat == pytest.approx(0.5, abs=1e-3) and abs(lon) == pytest.approx(180.0, abs=1e-6)


def test_errors_say_what_to_pass(tmp_path):
    with pytest.raises(FileNotFoundError, match="manifest.safe"):
        imagettes_from_manifest(tmp_path)
    (tmp_path / "manifest.safe").write_text("<xfdu:XFDU xmlns:xfdu='urn:ccsds:schema:xfdu:1'/>")
    with pytest.raises(ValueError, match="lists no WV measurement files"):
        imagettes_from_manifest(tmp_path)
    (tmp_path / "manifest.safe").write_text("not xml")
    with pytest.raises(ValueError, match="not a readable XML"):
        imagettes_from_manifest(tmp_path)


def test_docstring_examples_run(safe_dir):
    """The examples in the manifest reader's docstrings run on the real SAFE and show what they claim."""
    from xwvnet.io import safe

    result = doctest.testmod(safe, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0, result


def test_public_names_have_numpydoc_docstrings():
    check_numpydoc("xwvnet.io.safe")


@pytest.fixture(scope="module")
def product(tmp_path_factory):
    return make_wv_safe(tmp_path_factory.mktemp("safe"), seed=1)


def _valid(ds, k):
    return ds.sigma0[k].values[: int(ds.valid_lines[k]), : int(ds.valid_samples[k])]


def test_sigma0_equals_the_analytic_value(product):
    path, truth = product
    ds = open_safe(path)
    xwvnet.validate(ds)
    assert ds.sigma0.chunks[0] == (1, 1, 1)  # lazy, one task per imagette
    for k, im in enumerate(truth):
        got, want = _valid(ds, k).astype(np.float64), im.sigma0()
        assert got.shape == (im.lines, im.samples)
        ok = want > 0
        assert ok.mean() > 0.99
        assert np.max(np.abs(got[ok] / want[ok] - 1)) < 1e-5
        assert (got[~ok] == 0).all()
        assert np.isnan(ds.sigma0[k].values[im.lines:, :]).all() and np.isnan(ds.sigma0[k].values[:, im.samples:]).all()


def test_noise_removal_uses_the_noise_lut(product):
    path, truth = product
    ds = open_safe(path, denoise=True)
    assert ds.sigma0.attrs["thermal_noise_removed"] == 1
    for k, im in enumerate(truth):
        want = im.sigma0(denoise=True)
        assert np.max(np.abs(_valid(ds, k) - want)) < 1e-5 * np.abs(want).mean()


@pytest.mark.parametrize("style", ["legacy", "none"])
def test_old_ipf_noise_vectors_and_no_noise(tmp_path, style):
    path, truth = make_wv_safe(tmp_path, sizes=[(40, 30)], noise_style=style)
    if style == "legacy":  # IPF < 2.9: noiseVector/noiseLut
        got = open_safe(path, denoise=True).sigma0[0].values
        np.testing.assert_allclose(got, truth[0].sigma0(denoise=True), rtol=1e-5, atol=1e-9)
    else:
        ds = open_safe(path)
        np.testing.assert_allclose(ds.sigma0[0].values, truth[0].sigma0(), rtol=1e-5)
        assert not ds.noise_lut.values[0] and ds.attrs["no_noise_lut"] == [str(ds[S.IMAGETTE].values[0])]
        # found when the XML is read, not when a task computes: skipped with its reason, never calibrated without
        with pytest.warns(SafeWarning), pytest.raises(NoReadableImageError, match="no thermal noise LUT"):
            open_safe(path, denoise=True)


def test_geolocation_times_and_ids(product):
    path, truth = product
    ds = open_safe(path)
    assert list(ds.imagette.values) == [f"{NAME}:{im.number:03d}" for im in truth]
    for k, im in enumerate(truth):
        assert ds.latitude.values[k] == pytest.approx(im.centre[0], abs=1e-9)
        assert ds.longitude.values[k] == pytest.approx(im.centre[1], abs=1e-9)
        assert ds.incidence_angle.values[k] == pytest.approx(im.centre[2], abs=1e-9)
        assert ds.time.values[k] == im.start.astype("datetime64[ns]")
        assert ds.heading.values[k] == pytest.approx(im.heading)
        assert ds.swath.values[k] == im.swath
        assert ds.line_spacing.values[k] == pytest.approx(SPACING[im.swath][1])
    assert set(ds["pass"].values) == {"descending"}
    assert set(ds.mission.values) == {"s1a"} and set(ds.orbit.values) == {25911}
    assert ds.imagette_key.values[1] == "s1a-wv2-vv-025911-02e29d-002"
    manifest = imagettes_from_manifest(path)
    assert list(manifest.imagette.values) == list(ds.imagette.values)
    assert list(manifest.imagette_key.values) == list(ds.imagette_key.values)
    assert ds[S.LATITUDE].attrs["units"] == "degrees_north" and ds.incidence_angle.attrs["units"] == "degree"


def test_zip_and_folder_give_the_same_dataset(tmp_path):
    folder, _ = make_wv_safe(tmp_path / "a", seed=3)
    archive, _ = make_wv_safe(tmp_path / "b", seed=3, as_zip=True)
    assert zipfile.is_zipfile(archive)
    a, b = open_safe(folder).compute(), open_safe(archive).compute()
    assert a.identical(b)
    assert list(open_safe(archive, imagettes=[2, f"{NAME}:003"]).imagette.values) == [f"{NAME}:002", f"{NAME}:003"]


def test_damaged_imagettes_are_skipped_and_named(tmp_path):
    path, truth = make_wv_safe(tmp_path, sizes=[(40, 30)] * 4, seed=2)
    stems = [im.stem for im in truth]
    tiff = path / "measurement" / f"{stems[0]}.tiff"
    tiff.write_bytes(tiff.read_bytes()[:-100])  # truncated measurement
    (path / "annotation" / f"{stems[1]}.xml").unlink()  # missing annotation
    (path / "annotation" / "calibration" / f"calibration-{stems[2]}.xml").write_text("<calibration>garbage")
    with pytest.warns(SafeWarning, match="skipped 3"):
        ds = open_safe(path)
    assert list(ds.imagette.values) == [f"{NAME}:004"]
    np.testing.assert_allclose(_valid(ds, 0), truth[3].sigma0(), rtol=1e-5)
    skipped = "\n".join(ds.attrs["skipped"])
    assert f"{NAME}:001: measurement" in skipped and "truncated" in skipped
    assert f"{NAME}:002: annotation" in skipped
    assert f"{NAME}:003: calibration" in skipped and "not a readable XML" in skipped


def test_bad_calibration_values_and_bad_products(tmp_path):
    path, truth = make_wv_safe(tmp_path / "p", sizes=[(40, 30)] * 2)
    cal = path / "annotation" / "calibration" / f"calibration-{truth[0].stem}.xml"
    cal.write_text(cal.read_text().replace("<sigmaNought", "<sigmaNought>x y</sigmaNought><ignored", 1))
    items, skipped = scan_safe([path, tmp_path / "nothing.SAFE"])
    assert [i.id for i in items] == [f"{NAME}:002"]
    assert any("nothing.SAFE" in s for s in skipped) and any(s.startswith(f"{NAME}:001") for s in skipped)
    with pytest.warns(SafeWarning), pytest.raises(NoReadableImageError, match="no readable WV imagette"):
        open_safe(tmp_path / "nothing.SAFE")
    with pytest.raises(ValueError, match="no SAFE product"):
        open_safe([])


def test_real_manifest_names_give_the_manifest_ids(tmp_path, data_dir):
    """60 imagettes named as in the real WV manifest get the ids imagettes_from_manifest gives it."""
    real = data_dir / "s1_wv" / SAFE
    if not (real / "manifest.safe").is_file():
        pytest.skip("the real WV manifest is not in the data mirror")
    listed = imagettes_from_manifest(real)
    path, _ = make_wv_safe(tmp_path, name=SAFE[:-5], measurement_names=list(listed.source.values),
                           sizes=[(8, 6)] * 60)
    ds = open_safe(path)
    assert ds.sizes["imagette"] == 60
    assert list(ds.imagette.values) == list(listed.imagette.values)
    assert list(ds.imagette_key.values) == list(listed.imagette_key.values)
    assert list(ds.swath.values) == list(listed.swath.values)


def test_quicklooks_have_the_published_statistics(tmp_path, wvnet_samples):
    """Share of 0 and 255, mean and std of generated quicklooks against the 15 published PNGs."""
    pngs = [np.asarray(Image.open(p).convert("L")) for p in sorted(wvnet_samples.glob("*.png"))]
    pub = np.array([[(a == 0).mean(), (a == 255).mean(), a.mean(), a.std()] for a in pngs])
    path, _ = make_wv_safe(tmp_path, sizes=[(800, 900), (800, 700)], seed=5)
    ds = safe_to_imagettes(path, keep_sigma0=True).compute()
    xwvnet.validate(ds)
    assert list(ds.valid_lines.values) == [80, 80] and list(ds.valid_samples.values) == [90, 70]
    assert (ds.multilook_lines.values == 10).all() and (ds.multilook_samples.values == 10).all()
    for k in range(2):
        q = ds.quicklook[k].values[:80, : int(ds.valid_samples[k])]
        stats = np.array([(q == 0).mean(), (q == 255).mean(), q.mean(), q.std()])
        assert 0.007 < stats[0] < 0.015 and 0.007 < stats[1] < 0.015
        assert pub[:, 2].min() - 10 < stats[2] < pub[:, 2].max() + 10  # published means 72..113
        assert abs(stats[3] - pub[:, 3].mean()) < 4  # published std 50..54
    assert (ds.quicklook[1].values[:, 70:] == 0).all() and np.isnan(ds.sigma0[1].values[:, 70:]).all()


def test_multilooked_calibration_is_within_its_bound_of_full_resolution(big_safe_product):
    path, truth = big_safe_product
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


def test_a_lut_steep_in_azimuth_takes_the_exact_path(big_safe_product):
    path, truth = big_safe_product
    item = scan_safe(path, [1])[0][0]
    steep = Lut(np.array([0.0, 10.0, 1500.0]), [np.array([0.0, 529.0])] * 3,
                [np.array([300.0, 320.0]), np.array([400.0, 420.0]), np.array([300.0, 310.0])])
    item.calibration = steep
    assert calibration_error_bound(steep, item.lines, item.samples, 10) > CALIBRATION_TOLERANCE
    fast, bound = multilook_sigma0(item, (10, 10))
    assert bound == 0.0
    np.testing.assert_allclose(fast, multilook(item.sigma0(), (10, 10)), rtol=1e-6)


def test_full_resolution_sigma0_stays_exact_on_zips(tmp_path):
    path, truth = make_wv_safe(tmp_path, sizes=[(70, 90)], seed=4, as_zip=True)
    got = open_safe(path).sigma0[0].values.astype(np.float64)
    want = truth[0].sigma0()
    ok = want > 0
    assert np.max(np.abs(got[ok] / want[ok] - 1)) < 1e-5


def test_noise_vectors_stopping_short_of_the_last_line_are_extended(big_safe_product):
    path, truth = big_safe_product
    got = open_safe(path, denoise=True).sigma0[0].values[: truth[0].lines, : truth[0].samples]
    want = truth[0].sigma0(denoise=True)
    assert np.max(np.abs(got - want)) < 1e-5 * np.abs(want).mean()


def test_opening_safe_and_making_quicklooks_never_imports_torch(big_safe_product):
    path, _ = big_safe_product
    code = (
        "import sys, xwvnet\n"
        f"ds = xwvnet.open_safe({str(path)!r}); ds.sigma0[0].values\n"
        f"q = xwvnet.safe_to_imagettes({str(path)!r}, keep_sigma0=True); q.quicklook.values\n"
        "import xwvnet.radiometry, xwvnet.ingestion\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "print('ok', q.sizes['imagette'])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["ok", "2"]


def test_xarray_backend_gives_open_safe(big_safe_product):
    path, _ = big_safe_product
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
