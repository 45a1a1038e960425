"""Data-sparse learning curves: a probe's test scores against the number of training labels.

The WV-Net paper's point is that a pretrained encoder needs few labels; a curve shows how many. The test set is
fixed, and training subsets are drawn with scikit-learn's ``ShuffleSplit``, nested within one seed, so that a
curve's steps reflect the number of labels rather than which imagettes happened to be drawn.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import xarray as xr
from sklearn.model_selection import ShuffleSplit

from .. import schema as S
from ..errors import InvalidDataError
from ..probe import Selection, fit_probe, split, training_mask
from .metrics import probe_scores

CURVE_SIZES: tuple[int | None, ...] = (10, 30, 100, 300, 1000, None)


def _usable(ds: xr.Dataset, target: str) -> np.ndarray:
    """Imagettes with a known target: finite number, or at least one tag known."""
    y = ds[target]
    if y.ndim == 2:
        return np.asarray(((y == 0) | (y == 1)).any(S.LABEL).values)
    return np.isfinite(np.asarray(y.values, dtype=float))


def _subset(pool: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` rows of ``pool`` drawn with ``seed``; for one seed, smaller subsets lie inside larger ones."""
    if n >= pool.size:
        return pool
    # ShuffleSplit permutes once per seed and trains on the permutation's last n rows: nested across n
    train, _ = next(ShuffleSplit(n_splits=1, train_size=n, random_state=seed).split(pool))
    return pool[train]


def learning_curve(
    ds: xr.Dataset,
    target: str,
    *,
    sizes: Sequence[int | None] = CURVE_SIZES,
    seeds: int | Sequence[int] = 5,
    test: Selection | None = None,
    test_size: float = 0.3,
    split_seed: int = 0,
    features: str = S.EMBEDDING,
    kind: str = "auto",
    alphas: Sequence[float] | None = None,
    Cs: Sequence[float] | None = None,
    cv: int = 5,
    max_iter: int = 500,
) -> xr.Dataset:
    """A probe's test scores against the number of training labels, repeated over seeds.

    One test set is kept fixed. For each size and seed a random subset of the training imagettes with a known
    target is fitted (:func:`xwvnet.fit_probe`) and scored on the test set
    (:func:`xwvnet.evaluation.probe_scores`).

    Parameters
    ----------
    ds : xarray.Dataset
        Imagettes with ``features`` and ``target`` (loaded here if dask-backed).
    target : str
        A number per imagette or the tags.
    sizes : sequence of int or None, optional
        Training set sizes; ``None`` means every training imagette, and larger sizes are clipped to that.
    seeds : int or sequence of int, default 5
        Seeds of the subsets (and of the probes' folds): a count (0, 1, ...) or the seeds themselves.
    test : str, sequence of str, numpy.ndarray or xarray.DataArray, optional
        The test imagettes (ids or a boolean mask); default a :func:`xwvnet.probe.split` of ``test_size``.
    test_size : float, default 0.3
        Fraction held out when ``test`` is not given.
    split_seed : int, default 0
        Seed of that split.
    features : str, default "embedding"
        The feature variable.
    kind : {"auto", "regression", "multilabel"}, default "auto"
        The probe kind (see :func:`xwvnet.fit_probe`).
    alphas, Cs : sequence of float, optional
        Penalties for :func:`xwvnet.fit_probe` (its defaults when not given).
    cv : int, default 5
        Folds of the logistic cross-validation.
    max_iter : int, default 500
        Iterations of the logistic solver.

    Returns
    -------
    xarray.Dataset
        ``score(metric, n_labels, seed)`` with ``mean`` and ``std`` over seeds; attrs name the target, the test
        count, the features and the encoder. Plot it with :func:`xwvnet.plot.learning_curve_panel`.

    Raises
    ------
    ValueError
        If fewer than 3 training imagettes have a known target.

    Examples
    --------
    >>> curve = xwvnet.learning_curve(ds, "hs", sizes=(10, 100, None), seeds=5)  # doctest: +SKIP
    >>> curve["mean"].sel(metric="rmse")  # doctest: +SKIP
    """
    ds = ds.load() if any(v.chunks for v in (ds[features], ds[target])) else ds
    test_mask = split(ds, test_size=test_size, seed=split_seed) if test is None else training_mask(ds, test)
    pool = np.flatnonzero(~test_mask & _usable(ds, target))
    if pool.size < 3:
        raise InvalidDataError(f"learning_curve: only {pool.size} training imagettes have a known {target!r}.")
    counts = sorted({min(pool.size, s) if s is not None else pool.size for s in sizes})
    seed_list = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    fit_kwargs = {"kind": kind, "cv": cv, "max_iter": max_iter, **({"alphas": alphas} if alphas is not None else {}),
                  **({"Cs": Cs} if Cs is not None else {})}
    test_ds = ds.isel({S.IMAGETTE: np.flatnonzero(test_mask)})
    results: list[list[dict[str, float]]] = []
    for n in counts:
        row = []
        for seed in seed_list:
            mask = np.zeros(ds.sizes[S.IMAGETTE], dtype=bool)
            mask[_subset(pool, n, seed)] = True
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                probe = fit_probe(ds, target, features=features, train=mask, seed=seed, **fit_kwargs)
            row.append(probe_scores(test_ds, probe))
        results.append(row)
    metrics = [m for m in results[0][0] if m != "n"]
    values = np.array([[[r[m] for r in row] for row in results] for m in metrics], dtype=float)
    scores = xr.DataArray(values, dims=("metric", "n_labels", "seed"),
                          coords={"metric": metrics, "n_labels": counts, "seed": seed_list})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices (a tag absent from the test set)
        return xr.Dataset(
            {"score": scores, "mean": scores.mean("seed"), "std": scores.std("seed")},
            attrs={"target": target, "n_test": int(test_mask.sum()), "features": features,
                   "encoder": str(ds[features].attrs.get("encoder", "unknown"))},
        )
