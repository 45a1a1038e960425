"""The evaluation table (one row per encoder), probe metrics, learning curves and the image-statistics baseline."""

from __future__ import annotations

import warnings

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from sklearn.metrics import roc_auc_score

import xwvnet
from tests._factories import make_imagettes
from xwvnet import evaluation
from xwvnet import probe as P
from xwvnet import schema as S
from xwvnet.evaluation import baselines, curves
from xwvnet.evaluation import metrics as M
from xwvnet.evaluation import table as E

from .test_probe import embedded


def labelled(n: int = 200, d: int = 12, seed: int = 0) -> tuple[xr.Dataset, xr.Dataset, xr.Dataset]:
    """Imagette-less labelled Dataset plus two ready embeddings of it: one carrying the signal, one pure noise."""
    rng = np.random.default_rng(seed)
    signal = rng.standard_normal((n, d)).astype(np.float32)
    hs = 2.5 + signal[:, :3].sum(axis=1) * 0.5 + 0.05 * rng.standard_normal(n)
    tags = np.stack([signal[:, 3] > 0, rng.random(n) < 0.3], axis=1).astype(np.int8)
    ids = np.array([f"e-{i:04d}" for i in range(n)], dtype=object)
    ds = xr.Dataset({"hs": (S.IMAGETTE, hs, {"units": "m"}), S.LABELS: ((S.IMAGETTE, S.LABEL), tags)},
                    coords={S.IMAGETTE: ids, S.LABEL: ["SEP", "RND"]})
    good = ds.assign({S.EMBEDDING: ((S.IMAGETTE, S.FEATURE), signal, {"encoder": "good"})})
    noise = rng.standard_normal((n, d)).astype(np.float32)
    bad = xr.Dataset({S.EMBEDDING: ((S.IMAGETTE, S.FEATURE), noise, {"encoder": "noise"})},
                     coords={S.IMAGETTE: ids}).isel({S.IMAGETTE: rng.permutation(n)})  # shuffled: must be aligned
    return ds, good, bad


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    ds, good, bad = labelled()

    def broken(_ds):
        raise RuntimeError("weights not available offline")

    with pytest.warns(UserWarning, match="broken"):
        return E.evaluate(ds, {"good": good, "noise": bad, "broken": broken}, ["hs", S.LABELS], seed=3,
                          Cs=(0.1, 1.0), cv=3)


def test_table_shape_rows_and_columns(table):
    assert list(table.index) == ["good", "noise", "broken"]
    assert table.index.name == "encoder"
    for col in [("hs", "rmse"), ("hs", "bias"), ("hs", "r2"), ("hs", "n_train"), ("hs", "n_test"),
                (S.LABELS, "micro_auroc"), (S.LABELS, "macro_auroc"), (S.LABELS, "auroc[SEP]")]:
        assert col in table.columns
    assert table.loc["good", ("hs", "n_test")] == 60 and table.loc["good", ("hs", "n_train")] == 140
    assert table.attrs["n_test"] == 60


def test_signal_encoder_beats_noise(table):
    assert table.loc["good", ("hs", "rmse")] < 0.1
    assert table.loc["good", ("hs", "r2")] > 0.95
    assert table.loc["noise", ("hs", "r2")] < 0.3
    assert table.loc["good", (S.LABELS, "auroc[SEP]")] > 0.95
    assert abs(table.loc["noise", (S.LABELS, "auroc[SEP]")] - 0.5) < 0.25


def test_failing_encoder_keeps_a_nan_row_and_a_reason(table):
    assert table.loc["broken"].isna().all()
    assert "weights not available offline" in table.attrs["skipped"]["broken"]
    assert "broken: not run" in E.format_table(table)


def test_errors_raise_stops():
    ds, good, _ = labelled(60)
    with pytest.raises(RuntimeError, match="offline"):
        E.evaluate(ds, {"x": lambda _: (_ for _ in ()).throw(RuntimeError("offline"))}, "hs", errors="raise")


def test_given_split_is_used_and_same_for_all_encoders():
    ds, good, bad = labelled(100)
    test_ids = ds[S.IMAGETTE].values[:25]
    table = E.evaluate(ds, [good, bad], "hs", split=test_ids)
    assert list(table.index) == ["good", "noise"]
    assert (table[("hs", "n_test")] == 25).all()
    words = np.where(np.arange(100) < 40, "test", "train")
    assert E.test_mask(ds.assign(split=(S.IMAGETTE, words)), "split").sum() == 40


def test_default_targets_and_missing_target():
    ds, good, _ = labelled(80)
    table = E.evaluate(ds, {"good": good})
    assert {c[0] for c in table.columns} == {"hs", S.LABELS}
    with pytest.raises(ValueError, match="evaluate needs"):
        E.evaluate(ds, {"good": good}, "t2m")


# --- the image-statistics baseline -----------------------------------------------------------------------------------
def bright(n: int = 60, seed: int = 0) -> xr.Dataset:
    """Imagettes whose brightness (and a ragged valid extent) follow a target."""
    ds = make_imagettes(n, lines=48, samples=40, seed=seed)
    rng = np.random.default_rng(seed)
    level = rng.uniform(40, 200, n)
    pixels = np.clip(level[:, None, None] + 20 * rng.standard_normal((n, 48, 40)), 1, 255).astype(np.uint8)
    lines = rng.integers(30, 49, n).astype(np.int32)
    for i, v in enumerate(lines):
        pixels[i, v:] = 0
    return ds.assign(
        {S.QUICKLOOK: (ds[S.QUICKLOOK].dims, pixels), S.VALID_LINES: (S.IMAGETTE, lines),
         "brightness": (S.IMAGETTE, level)})


def test_baseline_features_use_only_the_valid_region():
    ds = bright(6)
    emb = baselines.image_statistics(ds)[S.EMBEDDING]
    assert emb.dims == (S.IMAGETTE, S.FEATURE)
    assert list(emb[S.FEATURE].values) == baselines.feature_names()
    assert emb.attrs["encoder"] == "image-statistics"
    for i in range(6):
        valid = ds[S.QUICKLOOK].values[i, : int(ds[S.VALID_LINES][i])].astype(float)
        np.testing.assert_allclose(emb.values[i, 0], valid.mean(), rtol=1e-5)
        np.testing.assert_allclose(emb.values[i, 1], valid.std(), rtol=1e-5)
    band = [i for i, n in enumerate(baselines.feature_names()) if n.startswith("band_")]
    np.testing.assert_allclose((10.0 ** emb.values[:, band] - 1e-6).sum(axis=1), 1.0, atol=1e-3)


def test_baseline_is_lazy_and_chunk_independent():
    ds = bright(10)
    eager = baselines.image_statistics(ds)[S.EMBEDDING]
    lazy = baselines.image_statistics(ds.chunk({S.IMAGETTE: 3}))[S.EMBEDDING]
    assert isinstance(lazy.data, da.Array)
    np.testing.assert_allclose(lazy.values, eager.values, rtol=1e-6)


def test_spectral_bands_find_a_wave():
    y, x = np.mgrid[0:128, 0:128]
    wave = 100 + 50 * np.sin(2 * np.pi * x / 10.0)  # 0.1 cycles/pixel along samples
    feats = dict(zip(baselines.feature_names(), baselines.image_features(wave)))
    bands = {k: v for k, v in feats.items() if k.startswith("band_")}
    assert max(bands, key=bands.get) == "band_0.0625_0.1250"
    assert feats["sector_0"] > 0.95  # wave vector along samples -> direction sector 0


def test_evaluate_with_the_baseline_row():
    ds = bright(60)
    table = E.evaluate(ds, ["image-statistics"], "brightness", seed=0)
    assert table.loc["image-statistics", ("brightness", "r2")] > 0.9


def test_evaluate_fills_the_test_predictions_it_scored():
    ds = bright(60)
    predicted: dict = {}
    table = E.evaluate(ds, {"stats": "image-statistics", "broken": lambda d: 1 / 0}, "brightness", seed=0,
                       predictions=predicted)
    assert set(predicted) == {"stats"} and set(predicted["stats"]) == {"brightness"}  # no row, no predictions
    got = predicted["stats"]["brightness"]
    test = E.test_mask(ds, seed=0)
    assert got.sizes[S.IMAGETTE] == int(test.sum()) == table.loc["stats", ("brightness", "n_test")]
    assert set(got[S.IMAGETTE].values) == set(ds[S.IMAGETTE].values[test])
    # the scores in the table are those of these very predictions (independent: numpy RMSE)
    truth = ds["brightness"].sel({S.IMAGETTE: got[S.IMAGETTE]}).values
    assert np.sqrt(np.mean((got.values - truth) ** 2)) == pytest.approx(table.loc["stats", ("brightness", "rmse")])
    pd.testing.assert_frame_equal(table, E.evaluate(ds, {"stats": "image-statistics", "broken": lambda d: 1 / 0},
                                                    "brightness", seed=0))


# --- metrics ---------------------------------------------------------------------------------------------------------
def test_regression_scores_values():
    scores = M.regression_scores(np.array([1.0, 2.0, 3.0, np.nan]), np.array([2.0, 3.0, 4.0, 1.0]))
    assert scores == pytest.approx({"rmse": 1.0, "bias": 1.0, "r2": -0.5, "n": 3})
    assert np.isnan(M.regression_scores(np.array([1.0, np.nan]), np.array([1.0, 2.0]))["rmse"])


def test_tag_scores_agree_with_sklearn_and_ignore_unknown_tags():
    rng = np.random.default_rng(2)
    y = (rng.random((50, 3)) < 0.4).astype(np.int8)
    prob = np.clip(y + 0.6 * rng.standard_normal((50, 3)), 0, 1)
    y[:5, 1] = -1  # unknown: left out
    y[:, 2] = 0  # one class only: no AUROC for that tag
    scores = M.tag_scores(y, prob, ["A", "B", "C"])
    known = y[:, 1] >= 0
    assert scores["auroc[A]"] == pytest.approx(roc_auc_score(y[:, 0], prob[:, 0]))
    assert scores["auroc[B]"] == pytest.approx(roc_auc_score(y[known, 1], prob[known, 1]))
    assert np.isnan(scores["auroc[C]"])
    assert scores["macro_auroc"] == pytest.approx((scores["auroc[A]"] + scores["auroc[B]"]) / 2)
    mask = y >= 0
    assert scores["micro_auroc"] == pytest.approx(roc_auc_score(y[mask], prob[mask]))
    assert scores["n"] == 50


def test_probe_scores_on_the_test_imagettes():
    ds = embedded(200)
    test = P.split(ds, seed=2)
    probe = P.fit_probe(ds, "hs", train=~test)
    scores = M.probe_scores(ds, probe, test=test)
    truth = ds["hs"].values[test]
    predicted = P.predict(ds, probe)["hs_predicted"].values[test]
    assert scores == pytest.approx(M.regression_scores(truth, predicted))
    assert scores["n"] == test.sum()


def test_evaluation_exports_and_the_package_name():
    assert xwvnet.learning_curve is curves.learning_curve
    for name in evaluation.__all__:
        assert getattr(evaluation, name) is not None
    assert evaluation.learning_curve.__module__ == "xwvnet.evaluation.curves"
    assert not hasattr(P, "learning_curve") and not hasattr(P, "regression_scores") and not hasattr(P, "score")


# --- learning curves -------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def probe_ds() -> xr.Dataset:
    return embedded()


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
