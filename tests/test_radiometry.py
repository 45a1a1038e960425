"""Radiometry (xwvnet.radiometry): the calibration error bound, and multilook factors that give the published sizes."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests._safe_factory import SPACING
from xwvnet.io.safe import Lut
from xwvnet.radiometry import calibration_error_bound, multilook_factor, sigma0_to_quicklook


def test_a_constant_lut_has_a_zero_bound():
    lut = Lut(np.array([0.0]), [np.array([0.0, 99.0])], [np.array([5.0, 7.0])])
    assert calibration_error_bound(lut, 100, 100, 10) == 0.0


def test_default_looks_reproduce_the_published_sizes_from_real_headers(wvnet_samples):
    """Real WV1/WV2 headers (spacing, incidence, size) with the default 10 x 10 looks give the published sizes."""
    from tests._safe_factory import FULL_SIZE, INCIDENCE
    from xwvnet.radiometry import DEFAULT_LOOKS

    assert SPACING == {"wv1": (1.4976, 4.1248), "wv2": (2.7456, 4.1078)} and INCIDENCE == {"wv1": 24.1, "wv2": 37.1}
    assert FULL_SIZE == {"wv1": (4923, 5681), "wv2": (4774, 4500)}
    for swath in ("wv1", "wv2"):
        rg, az = SPACING[swath]
        lines, samples = FULL_SIZE[swath]
        rows, cols = lines // DEFAULT_LOOKS[0], samples // DEFAULT_LOOKS[1]
        sizes = [Image.open(p).size for p in wvnet_samples.glob(f"*{swath}*.png")]  # (columns, rows)
        assert sizes, f"no published {swath} quicklook"  # the checks below hold for every one of them
        assert all(abs(r - rows) <= 15 for _, r in sizes), (rows, sizes)
        assert all(abs(c - cols) <= 30 for c, _ in sizes), (cols, sizes)
        assert all(19_000 < r * az * DEFAULT_LOOKS[0] < 20_500 for _, r in sizes)  # the 20 km vignette
    # one metric spacing cannot give 10 looks in range for both beams: WV1 ground pixels are 3.7 m, WV2 4.6 m
    assert multilook_factor(4.1248, 1.4976 / np.sin(np.deg2rad(24.1)), 45.0)[1] == 12
    assert multilook_factor(4.1078, 2.7456 / np.sin(np.deg2rad(37.1)), 45.0) == (11, 10)


def test_sigma0_stretch_maps_percentiles_and_ignores_nan_and_padding():
    rng = np.random.default_rng(4)
    sigma0 = rng.lognormal(-3, 1, (2, 120, 150)).astype(np.float32)
    sigma0[0, 5, 5] = np.nan
    sigma0[1, 100:, :] = 1e6  # outside the valid extent of imagette 1: must not shift its stretch
    q = sigma0_to_quicklook(sigma0, [120, 100], [150, 150])
    assert q.dtype == np.uint8 and q.shape == sigma0.shape
    assert q[0, 5, 5] == 0 and (q[1, 100:] == 0).all()
    for k, lines in enumerate([120, 100]):
        valid = q[k, :lines].ravel()
        assert 0.005 < np.mean(valid == 0) < 0.02 and 0.005 < np.mean(valid == 255) < 0.02
    order = np.argsort(sigma0[0, 10])
    assert (np.diff(q[0, 10][order].astype(int)) >= 0).all()  # monotonic in intensity


def test_sigma0_without_finite_values_gives_zeros():
    q = sigma0_to_quicklook(np.full((1, 4, 4), np.nan, dtype=np.float32))
    assert (q == 0).all()


def test_stretch_percentiles_nan_and_shapes():
    from xwvnet.radiometry import stretch

    x = np.linspace(0.0, 1.0, 10_000, dtype=np.float32).reshape(100, 100)
    x[0, :10] = np.nan
    q = stretch(x)
    assert q.dtype == np.uint8 and q.shape == x.shape and (q[0, :10] == 0).all()
    valid = q[np.isfinite(x)]
    assert abs((valid == 0).mean() - 0.01) < 0.003 and abs((valid == 255).mean() - 0.01) < 0.003
    np.testing.assert_array_equal(stretch(np.stack([x, x * 4])), np.stack([q, q]))  # per image, scale-free
    with pytest.raises(ValueError, match="percentiles"):
        stretch(x, 99, 1)


def test_multilook_block_means_and_factors():
    from xwvnet.radiometry import multilook, multilook_factor

    x = np.arange(2 * 7 * 9, dtype=np.float32).reshape(2, 7, 9)
    out = multilook(x, (2, 3))
    assert out.shape == (2, 3, 3)
    assert out[1, 2, 1] == x[1, 4:6, 3:6].mean()
    assert multilook_factor(4.1, 4.5, 45.0) == (11, 10) and multilook_factor(4.1, 4.5, (8.2, 4.4)) == (2, 1)
    with pytest.raises(ValueError, match="positive"):
        multilook_factor(4.1, 0.0)
    with pytest.raises(ValueError, match="factors"):
        multilook(x, 0)


def test_detrend_removes_a_log_linear_incidence_trend():
    from xwvnet.radiometry import detrend

    inc = np.linspace(22.8, 24.2, 50)
    field = np.random.default_rng(0).lognormal(0, 0.2, (40, 50))
    s0 = 0.05 * field * 10 ** (-0.4 * (inc - 23.5) / 10)
    out = detrend(s0, inc, reference=23.5)
    np.testing.assert_allclose(out, 0.05 * field, rtol=1e-6)
    with pytest.raises(ValueError, match="broadcast"):
        detrend(s0, inc[:10])
