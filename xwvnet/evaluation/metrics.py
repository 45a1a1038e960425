"""Scores of probe predictions, computed with ``sklearn.metrics``: RMSE, bias and R^2 for numbers, AUROC for tags,
accuracy for a class per imagette.

The paper scores an encoder by how well a linear probe on its embeddings predicts held-out targets; these are
those scores. Missing truth (NaN, tag ``-1``, an empty or negative class) is left out rather than counted, so a
partly labelled test set gives honest numbers.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import xarray as xr
from sklearn.metrics import accuracy_score, balanced_accuracy_score, mean_squared_error, r2_score, roc_auc_score

from .. import schema as S
from ..probe import Probe, Selection, known_classes, predict, training_mask


def regression_scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """RMSE, bias and R^2 of predictions, over the pairs where both values are finite.

    Parameters
    ----------
    y_true : numpy.ndarray
        True values, shape (n,).
    y_pred : numpy.ndarray
        Predicted values, shape (n,).

    Returns
    -------
    dict
        ``rmse``, ``bias`` (mean of predicted - true), ``r2`` (NaN each when fewer than 2 finite pairs) and ``n``
        (the count of finite pairs).

    Examples
    --------
    >>> regression_scores(np.array([1.0, 2.0, 3.0]), np.array([2.0, 3.0, 4.0]))["bias"]
    1.0
    """
    y_true, y_pred = np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float)
    ok = np.isfinite(y_true) & np.isfinite(y_pred)
    if ok.sum() < 2:
        return {"rmse": np.nan, "bias": np.nan, "r2": np.nan, "n": int(ok.sum())}
    return {
        "rmse": float(np.sqrt(mean_squared_error(y_true[ok], y_pred[ok]))),
        "bias": float(np.mean(y_pred[ok] - y_true[ok])),
        "r2": float(r2_score(y_true[ok], y_pred[ok])),
        "n": int(ok.sum()),
    }


def tag_scores(y_true: np.ndarray, prob: np.ndarray, labels: Sequence[str]) -> dict[str, float]:
    """Micro- and macro-AUROC of tag probabilities, and the AUROC of each tag.

    Micro-AUROC pools every known (imagette, tag) entry; macro-AUROC is the mean over the tags that have both
    classes among their known entries (a tag with one class only has no AUROC: NaN).

    Parameters
    ----------
    y_true : numpy.ndarray
        Tags, shape (n, tags): 1 set, 0 not set, anything else (``-1``) unknown and ignored.
    prob : numpy.ndarray
        Predicted probabilities, shape (n, tags); NaN entries are ignored.
    labels : sequence of str
        The tag codes, in column order.

    Returns
    -------
    dict
        ``micro_auroc``, ``macro_auroc``, ``n`` (imagettes with at least one known tag) and ``auroc[<tag>]``.
    """
    y_true, prob = np.asarray(y_true), np.asarray(prob, dtype=float)
    known = ((y_true == 0) | (y_true == 1)) & np.isfinite(prob)
    per_tag: dict[str, float] = {}
    for j, code in enumerate(labels):
        yj = y_true[known[:, j], j]
        per_tag[code] = float(roc_auc_score(yj, prob[known[:, j], j])) if len(np.unique(yj)) == 2 else np.nan
    scored = [v for v in per_tag.values() if np.isfinite(v)]
    flat_y, flat_p = y_true[known], prob[known]
    micro = float(roc_auc_score(flat_y, flat_p)) if len(np.unique(flat_y)) == 2 else np.nan
    out = {"micro_auroc": micro, "macro_auroc": float(np.mean(scored)) if scored else np.nan,
           "n": int(known.any(axis=1).sum())}
    out.update({f"auroc[{code}]": v for code, v in per_tag.items()})
    return out


def class_scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Accuracy and balanced accuracy of predicted classes, over the imagettes whose class is known.

    Parameters
    ----------
    y_true : numpy.ndarray
        True classes, shape (n,): strings, or integers (negative: unknown); None, NaN or ``""`` are unknown.
    y_pred : numpy.ndarray
        Predicted classes, shape (n,), of the same kind; an unknown prediction counts as wrong.

    Returns
    -------
    dict
        ``accuracy`` (fraction correct), ``balanced_accuracy`` (mean recall over the true classes) (NaN each when
        no class is known) and ``n`` (imagettes with a known class).

    Examples
    --------
    >>> class_scores(np.array(["a", "b", "b", ""]), np.array(["a", "b", "a", "a"]))["accuracy"]
    0.6666666666666666
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    ok = known_classes(y_true)
    if not ok.any():
        return {"accuracy": np.nan, "balanced_accuracy": np.nan, "n": 0}
    truth, guess = y_true[ok].astype(str), y_pred[ok].astype(str)
    guess = np.where(known_classes(y_pred[ok]), guess, "\x00")  # no prediction: wrong, whatever the class
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "y_pred contains classes not in y_true"
        balanced = float(balanced_accuracy_score(truth, guess))
    return {"accuracy": float(accuracy_score(truth, guess)), "balanced_accuracy": balanced, "n": int(ok.sum())}


def _relevance_tags(ds: xr.Dataset, target: str) -> xr.Dataset:
    """``target`` as 0/1/-1 tags (imagette, label) in a Dataset of its own: tags as they are, a class one-hot."""
    y = ds[target]
    ids = {S.IMAGETTE: ds[S.IMAGETTE].values}
    if y.ndim == 2:
        return xr.Dataset({"tags": y.transpose(S.IMAGETTE, S.LABEL).drop_vars(
            [c for c in y.coords if c not in (S.IMAGETTE, S.LABEL)])})
    values = np.asarray(y.values)
    known = known_classes(values)
    names = np.unique(values[known].astype(str))
    onehot = (values.astype(str)[:, None] == names[None, :]).astype(np.int8)
    onehot[~known] = -1
    return xr.Dataset({"tags": ((S.IMAGETTE, S.LABEL), onehot)}, coords={**ids, S.LABEL: names})


def retrieval_precision(ds: xr.Dataset, target: str, k: int = 10, *, queries: Selection | None = None,
                        features: str = S.EMBEDDING) -> dict[str, float]:
    """Precision@k of an embedding's nearest neighbours: the share of each query's ``k`` most cosine-similar
    imagettes that have its class (a class target) or share a tag with it (tags), averaged over the queries.

    The search (:func:`xwvnet.retrieval.neighbors`) runs over every imagette of ``ds``, each query excluded from
    its own neighbours; the counting is :func:`xwvnet.retrieval.retrieval_scores`, which leaves out queries with an
    unknown class or tag, no tag, or nothing relevant to find.

    Parameters
    ----------
    ds : xarray.Dataset
        Imagettes with ``features`` and ``target``.
    target : str
        A class per imagette, or tags (imagette, label).
    k : int, default 10
        Neighbours per query (at most the number of imagettes minus one).
    queries : str, sequence of str, numpy.ndarray or xarray.DataArray, optional
        The query imagettes (ids, a boolean mask, a boolean variable's name); all by default.
    features : str, default "embedding"
        The feature variable.

    Returns
    -------
    dict
        ``precision@<k>``, ``map@<k>`` (mean average precision at k) and ``n`` (queries scored).

    Examples
    --------
    >>> retrieval_precision(ds, "labels", k=10)["precision@10"]  # doctest: +SKIP
    """
    from ..retrieval import neighbors, retrieval_scores

    ids = ds[S.IMAGETTE].values
    query = None if queries is None else ids[training_mask(ds, queries)]
    found = neighbors(ds[[features]], k, query=query, features=features)
    scores = retrieval_scores(_relevance_tags(ds, target), found, labels="tags")
    k = int(scores.attrs["k"])
    return {f"precision@{k}": float(scores["mean_precision_at_k"]), f"map@{k}": float(scores["mean_average_precision"]),
            "n": int(scores.attrs["n_queries"])}


def probe_scores(ds: xr.Dataset, probe: Probe, test: Selection | None = None) -> dict[str, float]:
    """A probe's scores on (test) imagettes of ``ds``, against ``ds[probe.target]``.

    Parameters
    ----------
    ds : xarray.Dataset
        Imagettes with the probe's features and its target.
    probe : Probe
        A fitted probe.
    test : str, sequence of str, numpy.ndarray or xarray.DataArray, optional
        The imagettes to score (ids, a boolean mask, a boolean variable's name); all by default.

    Returns
    -------
    dict
        :func:`regression_scores` for a number, :func:`tag_scores` for tags, :func:`class_scores` for a class.

    Examples
    --------
    >>> test = xwvnet.probe.split(ds, seed=0)  # doctest: +SKIP
    >>> probe_scores(ds, xwvnet.fit_probe(ds, "hs", train=~test), test=test)["rmse"]  # doctest: +SKIP
    """
    if test is not None:
        ds = ds.isel({S.IMAGETTE: np.flatnonzero(training_mask(ds, test))})
    pred = predict(ds, probe, name="__prediction__")["__prediction__"]
    truth = ds[probe.target]
    if probe.kind == "multilabel":
        truth = truth.transpose(S.IMAGETTE, S.LABEL).sel({S.LABEL: list(probe.outputs)})
        return tag_scores(truth.values, pred.transpose(S.IMAGETTE, S.LABEL).values, probe.outputs)
    if probe.kind == "multiclass":
        return class_scores(truth.values, pred.values)
    return regression_scores(truth.values, pred.values)
