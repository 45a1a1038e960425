"""WV L1 SLC SAFE reader on generated products: calibration, geolocation, ids, zip/folder, damaged pieces."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
from PIL import Image

import xwvnet
from tests._safe_factory import NAME, SPACING, make_wv_safe
from xwvnet import schema as S
from xwvnet.io.quicklook import NoReadableImageError
from xwvnet.io.safe import SafeWarning, imagettes_from_manifest, open_safe, safe_to_imagettes, scan_safe
from xwvnet.radiometry import multilook_factor

REAL = "S1B_WV_SLC__1SSV_20210403T083025_20210403T084452_026300_032390_D542.SAFE"


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
        np.testing.assert_allclose(open_safe(path).sigma0[0].values, truth[0].sigma0(), rtol=1e-5)
        with pytest.raises(ValueError, match="no noise vectors"):
            open_safe(path, denoise=True).compute()


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
    real = data_dir / "s1_wv" / REAL
    if not (real / "manifest.safe").is_file():
        pytest.skip("the real WV manifest is not in the data mirror")
    listed = imagettes_from_manifest(real)
    path, _ = make_wv_safe(tmp_path, name=REAL[:-5], measurement_names=list(listed.source.values),
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


def test_default_looks_reproduce_the_published_sizes_from_real_headers(wvnet_samples):
    """Real WV1/WV2 headers (spacing, incidence, size) with the default 10 x 10 looks give the published sizes."""
    from tests._safe_factory import FULL_SIZE, INCIDENCE, SPACING
    from xwvnet.radiometry import DEFAULT_LOOKS

    assert SPACING == {"wv1": (1.4976, 4.1248), "wv2": (2.7456, 4.1078)} and INCIDENCE == {"wv1": 24.1, "wv2": 37.1}
    assert FULL_SIZE == {"wv1": (4923, 5681), "wv2": (4774, 4500)}
    for swath in ("wv1", "wv2"):
        rg, az = SPACING[swath]
        lines, samples = FULL_SIZE[swath]
        rows, cols = lines // DEFAULT_LOOKS[0], samples // DEFAULT_LOOKS[1]
        sizes = [Image.open(p).size for p in wvnet_samples.glob(f"*{swath}*.png")]  # (columns, rows)
        assert all(abs(r - rows) <= 15 for _, r in sizes), (rows, sizes)
        assert all(abs(c - cols) <= 30 for c, _ in sizes), (cols, sizes)
        assert all(19_000 < r * az * DEFAULT_LOOKS[0] < 20_500 for _, r in sizes)  # the 20 km vignette
    # one metric spacing cannot give 10 looks in range for both beams: WV1 ground pixels are 3.7 m, WV2 4.6 m
    assert multilook_factor(4.1248, 1.4976 / np.sin(np.deg2rad(24.1)), 45.0)[1] == 12
    assert multilook_factor(4.1078, 2.7456 / np.sin(np.deg2rad(37.1)), 45.0) == (11, 10)
