"""Scores: regression scores by hand, tag AUROCs against scikit-learn, and a probe's scores on its test imagettes."""

from __future__ import annotations

import warnings

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


def test_class_scores_agree_with_sklearn_and_ignore_unknown_classes():
    from sklearn.metrics import accuracy_score, balanced_accuracy_score

    rng = np.random.default_rng(4)
    truth = rng.choice(np.array(["POW", "WS", "MCC", "RC"], dtype=object), 60)
    guess = np.where(rng.random(60) < 0.7, truth, "WS").astype(object)
    truth[:4] = ["", None, np.nan, ""]  # unknown: left out
    guess[10] = None  # no prediction: wrong
    scores = M.class_scores(truth, guess)
    known = np.arange(60) >= 4
    sk_guess = guess[known].astype(str)
    assert scores["accuracy"] == pytest.approx(accuracy_score(truth[known].astype(str), sk_guess))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "y_pred contains classes not in y_true" (the None)
        expected = balanced_accuracy_score(truth[known].astype(str), sk_guess)
    assert scores["balanced_accuracy"] == pytest.approx(expected)
    assert scores["n"] == 56
    ints = M.class_scores(np.array([0, 1, 2, -1]), np.array([0, 2, 2, 0]))
    assert ints == pytest.approx({"accuracy": 2 / 3, "balanced_accuracy": 2 / 3, "n": 3})


def _brute_precision(x: np.ndarray, relevant: np.ndarray, usable: np.ndarray, queries: np.ndarray, k: int) -> float:
    """Mean over usable queries of (relevant among the k most cosine-similar others) / k, by a full sort."""
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    values = []
    for q in queries:
        if not usable[q]:
            continue
        sim = unit @ unit[q]
        sim[q] = -np.inf
        top = np.argsort(-sim, kind="stable")[:k]
        values.append(relevant[q, top].sum() / k)
    return float(np.mean(values))


def test_retrieval_precision_against_a_brute_force_count():
    import xarray as xr

    from xwvnet import schema as S

    ds = probe_embeddings(120, d=6, noise=0.5, seed=5)
    rng = np.random.default_rng(5)
    cls = np.where(ds[S.EMBEDDING].values[:, 0] > 0, "A", np.where(rng.random(120) < 0.5, "B", "C")).astype(object)
    cls[:3] = ""  # unknown: not scored
    ds = ds.assign({"cls": (S.IMAGETTE, cls)})
    x = ds[S.EMBEDDING].values.astype(float)
    queries = P.split(ds, seed=0)
    rows = np.flatnonzero(queries)
    got = M.retrieval_precision(ds, "cls", 7, queries=queries)
    same = (cls[:, None] == cls[None, :]) & (cls != "")[:, None] & (cls != "")[None, :]
    assert got["precision@7"] == pytest.approx(_brute_precision(x, same, cls != "", rows, 7))
    assert got["n"] == int((cls[rows] != "").sum())
    tags = ds[S.LABELS].values == 1
    shares = (tags.astype(int) @ tags.T.astype(int)) > 0
    tagged = tags.any(axis=1)
    got = M.retrieval_precision(ds, S.LABELS, 7, queries=queries)
    assert got["precision@7"] == pytest.approx(_brute_precision(x, shares, tagged, rows, 7))
    assert isinstance(M._relevance_tags(ds, "cls"), xr.Dataset)
