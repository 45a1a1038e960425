"""Learning curves: scores against the number of labels, for a regression target and for tags, on nested subsets."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr

from tests._embeddings import probe_embeddings
from xwvnet import schema as S
from xwvnet.evaluation import curves


@pytest.fixture(scope="module")
def probe_ds() -> xr.Dataset:
    return probe_embeddings()


def test_learning_curve_shape_and_improvement(probe_ds):
    ds = probe_ds
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        curve = curves.learning_curve(ds, "hs", sizes=(10, 30, None, 10_000), seeds=3, test_size=0.3)
    assert list(curve["n_labels"].values) == [10, 30, 210]  # None and oversized sizes -> all 210 training rows
    assert curve["score"].dims == ("metric", "n_labels", "seed")
    assert set(curve["metric"].values) == {"rmse", "bias", "r2"}
    rmse = curve["mean"].sel(metric="rmse").values
    assert rmse[-1] < rmse[0]
    assert rmse[-1] < 0.15
    assert np.all(curve["std"].sel(metric="rmse").values >= 0)


def test_learning_curve_for_tags(probe_ds):
    curve = curves.learning_curve(probe_ds, S.LABELS, sizes=(40, None), seeds=2, Cs=(0.1, 1.0), cv=3)
    assert "macro_auroc" in curve["metric"].values
    assert float(curve["mean"].sel(metric="auroc[SEP]", n_labels=210)) > 0.95


def test_learning_curve_subsets_are_seeded_and_nested():
    pool = np.arange(100, 180)
    small, large = curves._subset(pool, 10, seed=3), curves._subset(pool, 40, seed=3)
    assert len(small) == 10 and len(set(small)) == 10 and set(small) <= set(pool)
    assert set(small) <= set(large)  # one seed: the smaller training set lies inside the larger
    np.testing.assert_array_equal(curves._subset(pool, 10, seed=3), small)
    assert set(curves._subset(pool, 10, seed=4)) != set(small)
    np.testing.assert_array_equal(curves._subset(pool, 80, seed=3), pool)


def test_learning_curves_of_several_encoders_share_the_split(probe_ds):
    from xwvnet.errors import XWVNetWarning

    noise = probe_ds.copy()
    noise[S.EMBEDDING] = noise[S.EMBEDDING].copy(data=np.random.default_rng(1).standard_normal(
        noise[S.EMBEDDING].shape).astype(np.float32))
    with pytest.warns(XWVNetWarning, match="broken"):
        both = curves.learning_curves(probe_ds, {"signal": probe_ds, "noise": noise, "broken": lambda d: 1 / 0},
                                      "hs", sizes=(10, 50), seeds=2)
    assert list(both["encoder"].values) == ["signal", "noise"] and "broken" in both.attrs["skipped"]
    assert both["score"].dims == ("encoder", "metric", "n_labels", "seed")
    alone = curves.learning_curve(probe_ds, "hs", sizes=(10, 50), seeds=2)
    xr.testing.assert_allclose(both["score"].sel(encoder="signal", drop=True), alone["score"])
    rmse = both["mean"].sel(metric="rmse", n_labels=50)
    assert float(rmse.sel(encoder="signal")) < float(rmse.sel(encoder="noise"))


def test_learning_curve_of_a_class(probe_ds):
    ds = probe_ds.assign(cls=(S.IMAGETTE, np.where(probe_ds[S.EMBEDDING].values[:, 0] > 0, "A", "B").astype(object)))
    curve = curves.learning_curve(ds, "cls", sizes=(20, None), seeds=2, Cs=(1.0,), cv=2)
    assert {"accuracy", "balanced_accuracy"} <= set(curve["metric"].values)
    assert float(curve["mean"].sel(metric="accuracy", n_labels=210)) > 0.9
