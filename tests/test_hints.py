"""Misspelt names get a "Did you mean ...?" hint: variables, encoders, probe targets."""

from __future__ import annotations

import pytest

import xwvnet
from xwvnet import schema as S


def test_did_you_mean_names_close_names_only():
    assert S.did_you_mean("hss", ["hs", "t2m", "wind_speed"]) == " Did you mean 'hs'?"
    assert S.did_you_mean("qqq", ["hs", "t2m"]) == ""


def test_misspelt_variable():
    ds = xwvnet.synthetic.imagettes(3, seed=0, size=(16, 16))
    with pytest.raises(ValueError, match=r"Did you mean 'quicklook'\?"):
        S.image_var(ds, "quicklok")
    with pytest.raises(ValueError, match=r"For 'wind_sped', did you mean 'wind_speed'\?"):
        S.require(ds, ["wind_sped"], "a probe")


def test_misspelt_encoder():
    from xwvnet.models.zoo import find_weights, load_encoder

    with pytest.raises(ValueError, match=r"Did you mean 'random-resnet50'\?.*xwvnet\.Encoder\(name, 'resnet18'"):
        load_encoder("random-resnet18")
    with pytest.raises(ValueError, match=r"unknown encoder 'wvnet-resnet5'.*Did you mean 'wvnet-resnet50'"):
        find_weights("wvnet-resnet5")


def test_misspelt_probe_target():
    import numpy as np

    ds = xwvnet.synthetic.imagettes(8, seed=0, size=(16, 16))
    ds = ds.assign(embedding=(("imagette", "feature"), np.random.default_rng(0).normal(size=(8, 4))))
    with pytest.raises(ValueError, match=r"no target 'hs_' .*Did you mean 'hs'\?"):
        xwvnet.fit_probe(ds, "hs_")
