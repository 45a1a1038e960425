"""The WV-Net and ImageNet transforms against an independent per-image evaluation (PIL geometry, step-by-step
torch, in tests/_reference.py), and the mirrored border of ``transform="wvnet-reflect"``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from tests._reference import reference_field, reference_input
from xwvnet.models.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    crop_field,
    imagenet_transform,
    wvnet_reflect_transform,
    wvnet_transform,
)

torch.set_num_threads(1)


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


def test_reference_helper_is_not_the_module_under_test():
    """Guard: the reference transform must not call xwvnet.models.transforms (it would compare the code with itself)."""
    import ast
    import inspect

    from tests import _reference

    source = inspect.getsource(_reference.reference_field) + inspect.getsource(_reference.reference_input)
    assert "crop_field" not in source and "wvnet_transform" not in source
    imported = set()  # and its module imports nothing of xwvnet: its steps are its own
    for node in ast.walk(ast.parse(inspect.getsource(_reference))):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
    assert {"PIL", "torch.nn.functional"} <= imported, imported
    assert not [name for name in imported if name.split(".")[0] == "xwvnet"], imported


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
