"""The WV-Net transform against an independent per-image evaluation (PIL geometry, step-by-step torch)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from xwvnet.models.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    crop_field,
    imagenet_transform,
    wvnet_reflect_transform,
    wvnet_transform,
)
from xwvnet.radiometry import sigma0_to_quicklook

torch.set_num_threads(1)


def reference_field(valid: np.ndarray) -> np.ndarray:
    """The published 450x450 field, by replaying the steps on a PIL image (written apart from the module)."""
    h, w = valid.shape
    img = Image.fromarray(valid)
    # Pad(padding=(0, w_diff, 0, h_diff)): torchvision reads (left, top, right, bottom)
    top, bottom = max(0, 450 - w), max(0, 450 - h)
    padded = Image.new("L", (w, h + top + bottom), 0)
    padded.paste(img, (0, top))
    # CenterCrop(450): pad symmetrically (floor on the left/top) where smaller, then crop at Python round()
    pw, ph = padded.size
    if pw < 450 or ph < 450:
        grown = Image.new("L", (max(pw, 450), max(ph, 450)), 0)
        grown.paste(padded, ((450 - pw) // 2 if pw < 450 else 0, (450 - ph) // 2 if ph < 450 else 0))
        padded = grown
        pw, ph = padded.size
    left, upper = int(round((pw - 450) / 2.0)), int(round((ph - 450) / 2.0))
    return np.asarray(padded.crop((left, upper, left + 450, upper + 450)))


def reference_input(valid: np.ndarray) -> torch.Tensor:
    """(3, 224, 224) float32 model input of one valid region, step by step."""
    x = torch.from_numpy(reference_field(valid).copy()).to(torch.float32) / 255.0
    x = F.interpolate(x[None, None], size=(224, 224), mode="bilinear", align_corners=True)[0]
    x = x.repeat(3, 1, 1)
    mean = torch.full((3, 1, 1), 103.4862417561056 / 255.0)
    std = torch.full((3, 1, 1), 56.745013435601074 / 255.0)
    return (x - mean) / std


def pad_batch(images: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lines = max(i.shape[0] for i in images)
    samples = max(i.shape[1] for i in images)
    out = np.zeros((len(images), lines, samples), dtype=np.uint8)
    for k, img in enumerate(images):
        out[k, : img.shape[0], : img.shape[1]] = img
    return out, np.array([i.shape[0] for i in images]), np.array([i.shape[1] for i in images])


# sizes that exercise every branch: larger, WV2-like narrower (the top-pad quirk), odd excess (round half to
# even), smaller in both directions, exactly 450
SIZES = [(491, 565), (477, 449), (478, 437), (455, 460), (453, 451), (300, 200), (450, 450), (12, 700), (700, 12)]


def random_images(sizes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(1, 256, size, dtype=np.uint8) for size in sizes]


def test_field_matches_reference_on_odd_sizes():
    images = random_images(SIZES)
    batch, vl, vs = pad_batch(images)
    fields = crop_field(batch, vl, vs)
    for k, img in enumerate(images):
        np.testing.assert_array_equal(fields[k], reference_field(img), err_msg=f"size {img.shape}")


def test_transform_matches_reference_on_odd_sizes():
    images = random_images(SIZES, seed=1)
    batch, vl, vs = pad_batch(images)
    x = wvnet_transform(batch, vl, vs)
    assert x.shape == (len(images), 3, 224, 224) and x.dtype == torch.float32
    for k, img in enumerate(images):
        torch.testing.assert_close(x[k], reference_input(img), rtol=0, atol=1e-6)


def test_transform_matches_reference_on_real_quicklooks(wvnet_samples):
    images = [np.asarray(Image.open(p).convert("L")) for p in sorted(wvnet_samples.glob("*.png"))]
    assert len(images) == 15
    batch, vl, vs = pad_batch(images)
    x = wvnet_transform(batch, vl, vs)
    for k, img in enumerate(images):
        torch.testing.assert_close(x[k], reference_input(img), rtol=0, atol=1e-6)


def test_the_top_pad_quirk_and_round_half_even():
    img = np.full((460, 400), 7, dtype=np.uint8)  # narrower: the width deficit (50) pads the top
    field = crop_field(img[None], [460], [400])[0]
    # height 460 + 50 (top) = 510 -> crop starts at row 30: rows 0..19 are padding, then the image
    assert (field[:20] == 0).all() and (field[20:, 25:425] == 7).all()
    assert (field[:, :25] == 0).all() and (field[:, 425:] == 0).all()  # 400 wide: 25 zero columns each side
    ramp = np.repeat(np.arange(455, dtype=np.uint8)[:, None] % 251, 460, axis=1)
    field = crop_field(ramp[None], [455], [460])[0]
    assert field[0, 0] == ramp[2, 0]  # round(2.5) == 2 (half to even), not 3


def test_padding_outside_valid_extent_is_ignored():
    images = random_images([(300, 320)], seed=2)
    batch, vl, vs = pad_batch(images)
    noisy = np.pad(batch, ((0, 0), (0, 40), (0, 30)), constant_values=255)  # garbage beyond the valid extent
    torch.testing.assert_close(wvnet_transform(noisy, vl, vs), wvnet_transform(batch, vl, vs), rtol=0, atol=0)


def test_bad_inputs_are_refused_clearly():
    batch, vl, vs = pad_batch(random_images([(20, 30)]))
    with pytest.raises(ValueError, match="uint8"):
        wvnet_transform(batch.astype(np.float32), vl, vs)
    with pytest.raises(ValueError, match="valid_lines"):
        wvnet_transform(batch, [21], vs)
    with pytest.raises(ValueError, match="shape"):
        wvnet_transform(batch[0], vl, vs)


def test_imagenet_transform_uses_the_same_field_and_imagenet_statistics():
    batch, vl, vs = pad_batch(random_images([(480, 500), (400, 430)], seed=3))
    x = imagenet_transform(batch, vl, vs)
    w = wvnet_transform(batch, vl, vs)
    grey = w[:, 0] * (56.745013435601074 / 255.0) + 103.4862417561056 / 255.0  # undo the WV-Net normalisation
    for c in range(3):
        torch.testing.assert_close(x[:, c], (grey - IMAGENET_MEAN[c]) / IMAGENET_STD[c], rtol=0, atol=1e-5)


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


# --- the mirrored border (transform="wvnet-reflect", what trained encoders embed with) -----------------------------
@pytest.mark.parametrize("valid", [(100, 120), (37, 450), (460, 200), (2, 3)])
def test_the_reflect_border_is_numpys_reflect_padding_of_the_imagette(valid):
    from xwvnet.models.transforms import crop_offsets

    rng = np.random.default_rng(7)
    images = np.zeros((1, 470, 470), dtype=np.uint8)
    images[0, : valid[0], : valid[1]] = rng.integers(1, 256, valid, dtype=np.uint8)
    field = crop_field(images, [valid[0]], [valid[1]], border="reflect")[0]
    line0, sample0 = (int(v[0]) for v in crop_offsets([valid[0]], [valid[1]]))
    pad = 1000
    mirrored = np.pad(images[0, : valid[0], : valid[1]], pad, mode="reflect")
    expected = mirrored[pad + line0: pad + line0 + 450, pad + sample0: pad + sample0 + 450]
    assert np.array_equal(field, expected) and field.min() > 0  # sea everywhere, no zero border


def test_the_reflect_transform_equals_the_published_one_where_the_imagette_fills_the_field():
    rng = np.random.default_rng(8)
    images = rng.integers(0, 256, (3, 520, 600), dtype=np.uint8)
    vl, vs = np.array([450, 500, 520]), np.array([600, 451, 470])
    assert torch.equal(wvnet_transform(images, vl, vs), wvnet_reflect_transform(images, vl, vs))
    small = wvnet_transform(images, np.array([200] * 3), vs)
    assert not torch.equal(small, wvnet_reflect_transform(images, np.array([200] * 3), vs))
