"""Data-sparse learning curves: a probe's test scores against the number of training labels.

The WV-Net paper's point is that a pretrained encoder needs few labels; a curve shows how many. The test set is
fixed, and training subsets are drawn with scikit-learn's ``ShuffleSplit``, nested within one seed, so that a
curve's steps reflect the number of labels rather than which imagettes happened to be drawn.
:func:`learning_curves` draws the same curve for several encoders, on the same imagettes, split and subsets.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr
from sklearn.model_selection import ShuffleSplit

from .. import schema as S
from .._runtime import BATCH_SIZE
from ..errors import InvalidArgumentError, InvalidDataError, XWVNetWarning, warn
from ..probe import Selection, fit_probe, known_classes, split, training_mask
from .metrics import probe_scores

CURVE_SIZES: tuple[int | None, ...] = (10, 30, 100, 300, 1000, None)


def _usable(ds: xr.Dataset, target: str) -> np.ndarray:
    """Imagettes with a known target: finite number, known class, or at least one tag known."""
    y = ds[target]
    if y.ndim == 2:
        return np.asarray(((y == 0) | (y == 1)).any(S.LABEL).values)
    if y.dtype.kind not in "fiu":
        return known_classes(y.values)
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
    kind : {"auto", "regression", "multilabel", "multiclass"}, default "auto"
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


def learning_curves(
    ds: xr.Dataset,
    encoders: Sequence[Any] | Mapping[str, Any],
    target: str,
    *,
    sizes: Sequence[int | None] = CURVE_SIZES,
    seeds: int | Sequence[int] = 5,
    test: Selection | None = None,
    test_size: float = 0.3,
    split_seed: int = 0,
    features: str = S.EMBEDDING,
    batch_size: int = BATCH_SIZE,
    device: str = "auto",
    errors: str = "warn",
    **fit_kwargs: Any,
) -> xr.Dataset:
    """Data-sparse curves of several encoders: :func:`learning_curve` of each, on one test set and one set of
    nested training subsets.

    Parameters
    ----------
    ds : xarray.Dataset
        Imagettes with ``target``.
    encoders : sequence or mapping of encoders
        As :func:`xwvnet.evaluate` takes them (names, weights paths, Encoders, ``"image-statistics"``, ``"stored"``,
        callables, embedded Datasets; see :func:`xwvnet.evaluation.table.embeddings_for`); pass the ``embeddings``
        that :func:`xwvnet.evaluate` filled to avoid embedding again.
    target : str
        A number, a class per imagette, or the tags.
    sizes, seeds, test, test_size, split_seed, features
        As for :func:`learning_curve`; the test set is drawn once, on ``ds``, for every encoder.
    batch_size : int, default :data:`xwvnet._runtime.BATCH_SIZE` (64)
        Imagettes per forward pass when an encoder embeds.
    device : str, default "auto"
        Torch device when an encoder embeds.
    errors : {"warn", "raise"}, default "warn"
        ``"warn"`` leaves out (with a warning, reason in ``attrs["skipped"]``) an encoder that fails.
    **fit_kwargs
        ``kind``, ``alphas``, ``Cs``, ``cv``, ``max_iter`` for :func:`learning_curve`.

    Returns
    -------
    xarray.Dataset
        ``score(encoder, metric, n_labels, seed)``, ``mean`` and ``std`` over seeds; attrs as
        :func:`learning_curve`'s plus ``skipped``.

    Raises
    ------
    ValueError
        If ``errors`` is unknown, or no encoder could be scored.

    Examples
    --------
    >>> embedded = {}
    >>> table = xwvnet.evaluate(ds, ["random-resnet50", "image-statistics"], embeddings=embedded)  # doctest: +SKIP
    >>> curves = learning_curves(ds, embedded, "hs", sizes=(10, 30, None), seeds=3)  # doctest: +SKIP
    >>> curves["mean"].sel(metric="rmse").to_pandas()  # doctest: +SKIP
    """
    from .table import _name, embeddings_for

    if errors not in ("warn", "raise"):
        raise InvalidArgumentError(f"errors must be 'warn' or 'raise', got {errors!r}")
    S.require(ds, [target], "learning_curves")
    items = dict(encoders) if isinstance(encoders, Mapping) else {
        _name(e, i, features): e for i, e in enumerate([encoders] if isinstance(encoders, str | xr.Dataset)
                                                        else encoders)}
    test_mask = split(ds, test_size=test_size, seed=split_seed) if test is None else training_mask(ds, test)
    ids = ds[S.IMAGETTE].values
    truth = ds[target].compute()
    found: dict[str, xr.Dataset] = {}
    skipped: dict[str, str] = {}
    for name, item in items.items():
        try:
            emb = embeddings_for(ds, item, features=features, batch_size=batch_size, device=device)
            x = emb[features].sel({S.IMAGETTE: ids}) if not np.array_equal(
                emb[S.IMAGETTE].values.astype(str), ids.astype(str)) else emb[features]
            work = xr.Dataset({features: x.compute().assign_coords({S.IMAGETTE: ids}), target: truth})
            found[name] = learning_curve(work, target, sizes=sizes, seeds=seeds, test=test_mask, features=features,
                                         **fit_kwargs)
        except Exception as err:  # one encoder failing must not lose the others' curves
            if errors == "raise":
                raise
            skipped[name] = f"{type(err).__name__}: {err}"
            warn(f"learning_curves: encoder {name!r} skipped ({skipped[name]})", XWVNetWarning)
    if not found:
        raise InvalidDataError(f"learning_curves: no encoder could be scored: {skipped}")
    out = xr.concat(list(found.values()), dim=xr.DataArray(list(found), dims="encoder", name="encoder"),
                    join="outer", combine_attrs="drop")
    first = next(iter(found.values()))
    out.attrs = {"target": target, "n_test": first.attrs["n_test"], "features": features, "skipped": skipped}
    return out
