"""The SimCLR views: inside the valid extent, the dihedral group exactly, seeded, and SAR-style noise."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xwvnet.preprocess import WVNET_MEAN, WVNET_STD
from xwvnet.training.augment import AugmentConfig, augment, to_model_input, view_pair

torch.set_num_threads(1)
QUIET = dict(blur_p=0.0, speckle_p=0.0, jitter_p=0.0)  # geometry only


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _padded(n: int = 6, shape=(40, 50), valid=(30, 35), value: int = 200) -> tuple[torch.Tensor, ...]:
    images = torch.zeros((n, *shape), dtype=torch.uint8)
    images[:, : valid[0], : valid[1]] = value
    return images, torch.full((n,), valid[0]), torch.full((n,), valid[1])


def test_shape_range_and_dtype():
    images, vl, vs = _padded()
    out = augment(images, vl, vs, AugmentConfig(size=24), _gen())
    assert out.shape == (6, 1, 24, 24) and out.dtype == torch.float32
    assert float(out.min()) >= 0 and float(out.max()) <= 1


@pytest.mark.parametrize("shape,valid", [((40, 50), (30, 35)), ((200, 220), (151, 173))])  # 2nd: pooled first
def test_crops_never_see_the_padding(shape, valid):
    images, vl, vs = _padded(n=64, shape=shape, valid=valid)
    out = augment(images, vl, vs, AugmentConfig(size=16, **QUIET), _gen(3))
    np.testing.assert_allclose(out.numpy(), 200 / 255, atol=1e-5)  # a single 0 pixel would pull some value down


def _smooth(n: int) -> torch.Tensor:
    """A smooth asymmetric field, so that resampling barely changes it but each orientation differs."""
    r, c = np.meshgrid(np.linspace(0, 1, n), np.linspace(0, 1, n), indexing="ij")
    return torch.from_numpy(np.round(40 + 150 * r**2 + 60 * c).astype(np.uint8))


def test_full_crop_is_a_dihedral_transform():
    base = _smooth(32)
    images = base.expand(32, 32, 32).contiguous()
    cfg = AugmentConfig(size=32, scale=(1.0, 1.0), ratio=(1.0, 1.0), **QUIET)
    out = augment(images, torch.full((32,), 32), torch.full((32,), 32), cfg, _gen(1))[:, 0].numpy()
    ref = base.numpy() / 255
    group = [np.rot90(f, k) for f in (ref, ref[::-1]) for k in range(4)]
    found = set()
    for view in out:
        errors = sorted((np.abs(view - g).max(), i) for i, g in enumerate(group))
        assert errors[0][0] < 0.03 < errors[1][0]  # one element of the group fits, no other does
        found.add(errors[0][1])
    assert len(found) >= 5  # 32 draws over the 8 elements of the group


def test_orientation_switches_keep_the_image_upright():
    base = _smooth(32)
    cfg = AugmentConfig(size=32, scale=(1.0, 1.0), ratio=(1.0, 1.0), flip=False, rotate90=False, **QUIET)
    out = augment(base.expand(8, 32, 32).contiguous(), torch.full((8,), 32), torch.full((8,), 32), cfg, _gen())
    np.testing.assert_allclose(out[:, 0].numpy(), np.broadcast_to(base.numpy() / 255, (8, 32, 32)), atol=0.03)


def test_same_seed_same_views_other_seed_other_views():
    images, vl, vs = _padded()
    images = images + torch.randint(0, 50, images.shape, generator=_gen(9), dtype=torch.uint8)
    cfg = AugmentConfig(size=20)
    a = augment(images, vl, vs, cfg, _gen(5))
    b = augment(images, vl, vs, cfg, _gen(5))
    c = augment(images, vl, vs, cfg, _gen(6))
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_speckle_is_multiplicative_with_unit_mean():
    images, vl, vs = _padded(n=8, shape=(64, 64), valid=(64, 64), value=100)
    cfg = AugmentConfig(size=64, scale=(1.0, 1.0), ratio=(1.0, 1.0), blur_p=0.0, jitter_p=0.0, speckle_p=1.0,
                        looks=(4.0, 4.0))
    out = augment(images, vl, vs, cfg, _gen())
    rel = out / (100 / 255)
    assert abs(float(rel.mean()) - 1) < 0.02
    assert abs(float(rel.var()) - 1 / 4) < 0.03  # variance 1/L for L looks


def test_blur_smooths():
    rng = np.random.default_rng(1)
    images = torch.from_numpy(rng.integers(0, 256, (4, 32, 32), dtype=np.uint8))
    size32 = dict(size=32, scale=(1.0, 1.0), ratio=(1.0, 1.0), flip=False, rotate90=False, speckle_p=0.0,
                  jitter_p=0.0)
    sharp = augment(images, torch.full((4,), 32), torch.full((4,), 32), AugmentConfig(blur_p=0.0, **size32), _gen())
    blurred = augment(images, torch.full((4,), 32), torch.full((4,), 32),
                      AugmentConfig(blur_p=1.0, blur_sigma=(1.5, 1.5), **size32), _gen())
    assert float(blurred.std()) < 0.6 * float(sharp.std())
    assert abs(float(blurred.mean()) - float(sharp.mean())) < 0.02


def test_model_input_uses_the_wvnet_normalisation():
    images, vl, vs = _padded(n=2)
    v1, v2 = view_pair(images, vl, vs, AugmentConfig(size=8, **QUIET), _gen())
    assert v1.shape == v2.shape == (2, 3, 8, 8)
    np.testing.assert_allclose(v1.numpy(), (200 / 255 - WVNET_MEAN) / WVNET_STD, rtol=1e-5)
    x = torch.rand(3, 1, 4, 4)
    assert torch.equal(to_model_input(x)[:, 2], to_model_input(x)[:, 0])


def test_rejects_a_wrong_shape():
    with pytest.raises(ValueError, match="lines, samples"):
        augment(torch.zeros(2, 1, 8, 8), torch.ones(2), torch.ones(2), AugmentConfig(size=4), _gen())
