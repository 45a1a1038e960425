"""Scores of probe predictions, computed with ``sklearn.metrics``: RMSE, bias and R^2 for numbers, AUROC for tags.

The paper scores an encoder by how well a linear probe on its embeddings predicts held-out targets; these are
those scores. Missing truth (NaN, or tag ``-1``) is left out rather than counted, so a partly labelled test set
gives honest numbers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr
from sklearn.metrics import mean_squared_error, r2_score, roc_auc_score

from .. import schema as S
from ..probe import Probe, Selection, predict, training_mask


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
        :func:`regression_scores` for a number, :func:`tag_scores` for tags.

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
    return regression_scores(truth.values, pred.values)
