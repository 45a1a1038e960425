"""The SimCLR views: windows of the embedding field at its pixel scale (the default) or photographic resized crops,
inside the valid extent, the dihedral group exactly, seeded, and SAR-style noise."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import xwvnet
from xwvnet.models.transforms import WVNET_MEAN, WVNET_STD, wvnet_reflect_transform, wvnet_transform
from xwvnet.training.augment import AugmentConfig, augment, embedding_field, to_model_input, view_pair

torch.set_num_threads(1)
QUIET = dict(blur_p=0.0, speckle_p=0.0, jitter_p=0.0)  # geometry only
RESIZED = dict(crop="resized")  # the photographic random resized crop


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
    out = augment(images, vl, vs, AugmentConfig(size=24, **RESIZED), _gen())
    assert out.shape == (6, 1, 24, 24) and out.dtype == torch.float32
    assert float(out.min()) >= 0 and float(out.max()) <= 1


@pytest.mark.parametrize("shape,valid", [((40, 50), (30, 35)), ((200, 220), (151, 173))])  # 2nd: pooled first
def test_crops_never_see_the_padding(shape, valid):
    images, vl, vs = _padded(n=64, shape=shape, valid=valid)
    out = augment(images, vl, vs, AugmentConfig(size=16, **RESIZED, **QUIET), _gen(3))
    np.testing.assert_allclose(out.numpy(), 200 / 255, atol=1e-5)  # a single 0 pixel would pull some value down


def _smooth(n: int) -> torch.Tensor:
    """A smooth asymmetric field, so that resampling barely changes it but each orientation differs."""
    r, c = np.meshgrid(np.linspace(0, 1, n), np.linspace(0, 1, n), indexing="ij")
    return torch.from_numpy(np.round(40 + 150 * r**2 + 60 * c).astype(np.uint8))


def test_full_crop_is_a_dihedral_transform():
    base = _smooth(32)
    images = base.expand(32, 32, 32).contiguous()
    cfg = AugmentConfig(size=32, scale=(1.0, 1.0), ratio=(1.0, 1.0), flip=True, rotate90=True, **RESIZED, **QUIET)
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
    cfg = AugmentConfig(size=32, scale=(1.0, 1.0), ratio=(1.0, 1.0), flip=False, rotate90=False, **RESIZED,
                        **QUIET)
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
                        looks=(4.0, 4.0), **RESIZED)
    out = augment(images, vl, vs, cfg, _gen())
    rel = out / (100 / 255)
    assert abs(float(rel.mean()) - 1) < 0.02
    assert abs(float(rel.var()) - 1 / 4) < 0.03  # variance 1/L for L looks


def test_blur_smooths():
    rng = np.random.default_rng(1)
    images = torch.from_numpy(rng.integers(0, 256, (4, 32, 32), dtype=np.uint8))
    size32 = dict(size=32, scale=(1.0, 1.0), ratio=(1.0, 1.0), flip=False, rotate90=False, speckle_p=0.0,
                  jitter_p=0.0, **RESIZED)
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


# --- the default: windows of the embedding field, at its pixel scale ------------------------------------------------
def test_defaults_keep_what_carries_sea_state():
    cfg = AugmentConfig()
    assert cfg.crop == "field" and cfg.blur_p == 0 and cfg.jitter_p == 0 and cfg.speckle_p == 0
    with pytest.raises(ValueError, match="at most|from 1 to 224"):
        AugmentConfig(size=256)
    with pytest.raises(ValueError, match="crop must be one of"):
        AugmentConfig(crop="zoom")


@pytest.mark.parametrize("border, transform", [("zero", wvnet_transform), ("reflect", wvnet_reflect_transform)])
def test_the_field_is_what_the_wvnet_transform_feeds_the_encoder(border, transform):
    ds = xwvnet.synthetic.imagettes(6, seed=2, size=(120, 140), ragged=True).compute()
    im, vl, vs = ds.quicklook.values, ds.valid_lines.values, ds.valid_samples.values
    field, box = embedding_field(torch.from_numpy(im), torch.from_numpy(vl), torch.from_numpy(vs), border)
    ref = transform(im, vl, vs, channels=1)
    assert torch.equal((field - WVNET_MEAN) / WVNET_STD, ref)  # the same arithmetic, bit for bit


def _is_200(x: torch.Tensor) -> torch.Tensor:
    return torch.isclose(x, torch.tensor(200 / 255), rtol=0, atol=1e-6)


@pytest.mark.parametrize("valid", [(300, 300), (120, 90), (450, 450), (500, 470)])
def test_the_box_holds_exactly_the_imagette(valid):
    images = torch.zeros((1, 520, 520), dtype=torch.uint8)
    images[:, : valid[0], : valid[1]] = 200
    field, box = embedding_field(images, torch.tensor([valid[0]]), torch.tensor([valid[1]]))
    top, bottom, left, right = box[0].tolist()
    v = field[0, 0]
    assert torch.all(_is_200(v[top:bottom, left:right]))
    outside = torch.ones_like(v, dtype=torch.bool)
    outside[top:bottom, left:right] = False
    assert not torch.any(_is_200(v[outside]))  # every pixel left out reads some padding


def test_field_views_are_windows_at_the_embedding_scale():
    rng = np.random.default_rng(0)
    images = torch.from_numpy(rng.integers(1, 256, (5, 300, 300), dtype=np.uint8))
    full = torch.full((5,), 300)
    field, box = embedding_field(images, full, full)
    cfg = AugmentConfig(size=40, flip=False, rotate90=False, **QUIET)
    views = augment(images, full, full, cfg, _gen(4))
    top, bottom, left, right = box[0].tolist()
    for view, f in zip(views[:, 0], field[:, 0]):
        windows = f.unfold(0, 40, 1).unfold(1, 40, 1)  # every 40 x 40 window of the field
        match = (windows == view).flatten(2).all(-1).nonzero().tolist()
        assert len(match) == 1  # one exact window: no resampling between the field and the view
        y0, x0 = match[0]
        assert top <= y0 and y0 + 40 <= bottom and left <= x0 and x0 + 40 <= right  # on the imagette only


def test_field_views_hold_a_small_imagette_whole():
    images = torch.zeros((16, 64, 64), dtype=torch.uint8)
    images[:, :50, :60] = 200
    vl, vs = torch.full((16,), 50), torch.full((16,), 60)
    _, box = embedding_field(images, vl, vs)
    area = int((box[0, 1] - box[0, 0]) * (box[0, 3] - box[0, 2]))
    views = augment(images, vl, vs, AugmentConfig(size=48, **QUIET), _gen(1))
    on = _is_200(views).flatten(1).sum(1)
    assert area < 48 * 48 and torch.all(on == area)  # all of the imagette is in every view


def test_field_flips_and_turns_are_exact_permutations():
    rng = np.random.default_rng(3)
    images = torch.from_numpy(rng.integers(1, 256, (1, 450, 450), dtype=np.uint8)).expand(24, 450, 450)
    full = torch.full((24,), 450)
    field, _ = embedding_field(images[:1], full[:1], full[:1])
    views = augment(images.contiguous(), full, full, AugmentConfig(size=224, flip=True, rotate90=True, **QUIET),
                    _gen(2))[:, 0]
    ref = field[0, 0]
    group = [torch.rot90(f, k) for f in (ref, ref.flip(0)) for k in range(4)]
    found = {next(i for i, g in enumerate(group) if torch.equal(v, g)) for v in views}  # StopIteration: none fits
    assert len(found) >= 5


def test_field_views_may_reach_into_the_border_but_keep_their_share_on_the_imagette():
    images = torch.zeros((64, 256, 256), dtype=torch.uint8)
    images[:] = 200
    full = torch.full((64,), 256)
    views = augment(images, full, full, AugmentConfig(size=64, on_imagette=0.5, **QUIET), _gen(4))
    on = _is_200(views).flatten(1).float().mean(1)
    assert torch.all(on >= 0.25 - 1e-6) and bool((on < 1).any())  # some border, never less than a quarter on
