"""Scores: regression scores by hand, tag AUROCs against scikit-learn, and a probe's scores on its test imagettes."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from tests._embeddings import probe_embeddings
from xwvnet import probe as P
from xwvnet.evaluation import metrics as M


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
    ds = probe_embeddings(200)
    test = P.split(ds, seed=2)
    probe = P.fit_probe(ds, "hs", train=~test)
    scores = M.probe_scores(ds, probe, test=test)
    truth = ds["hs"].values[test]
    predicted = P.predict(ds, probe)["hs_predicted"].values[test]
    assert scores == pytest.approx(M.regression_scores(truth, predicted))
    assert scores["n"] == test.sum()
