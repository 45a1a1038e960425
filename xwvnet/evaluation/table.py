"""The evaluation table of the WV-Net paper, on any labelled Dataset: one row per encoder, linear-probe metrics.

Each encoder (a registry name, an Encoder, a path, the non-learned ``"image-statistics"`` baseline, or embeddings
already made) embeds the same imagettes; the same seeded train/test split is used for all, a probe per target is
fitted on the training imagettes and scored on the test ones: RMSE, bias and R^2 for numbers, micro/macro and
per-tag AUROC for tags. An encoder that cannot run here (e.g. published weights not downloadable offline) gets a
row of NaN and its reason in ``table.attrs["skipped"]``, so the table keeps its shape.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from .. import probe as P
from .. import schema as S
from .._runtime import BATCH_SIZE
from ..errors import InvalidArgumentError, InvalidDataError, XWVNetWarning, warn
from .metrics import probe_scores

if TYPE_CHECKING:  # torch is imported only when an encoder embeds
    from ..models.encoder import Encoder

    #: What makes an embedding of a Dataset: a registry name, a weights path, an Encoder, ``"image-statistics"``,
    #: ``"stored"``, a callable ``f(ds) -> embedded Dataset``, or an embedded Dataset.
    EncoderLike = str | os.PathLike | Encoder | Callable[[xr.Dataset], xr.Dataset] | xr.Dataset

DEFAULT_ENCODERS = ("wvnet-resnet50", "imagenet-resnet50", "random-resnet50", "image-statistics")
DEFAULT_TARGETS = ("hs", "t2m", "wind_speed", S.LABELS)


def _name(item: object, i: int, features: str) -> str:
    if isinstance(item, str):
        return item
    if isinstance(item, xr.Dataset) and features in item:
        return str(item[features].attrs.get("encoder", f"embedding-{i}"))
    return str(getattr(item, "name", None) or getattr(item, "__name__", None) or f"encoder-{i}")


def embeddings_for(
    ds: xr.Dataset,
    encoder: EncoderLike,
    *,
    features: str = S.EMBEDDING,
    batch_size: int = BATCH_SIZE,
    device: str = "auto",
) -> xr.Dataset:
    """``ds``'s imagettes embedded by ``encoder``, whatever form the encoder is given in.

    Parameters
    ----------
    ds : xarray.Dataset
        The imagettes.
    encoder : str, os.PathLike, Encoder, callable or xarray.Dataset
        A ready embedded Dataset (used as is); ``"stored"`` (the embedding already in ``ds``);
        ``"image-statistics"`` (the non-learned baseline); a callable ``f(ds) -> embedded Dataset``; or anything
        :func:`xwvnet.embed` takes (a registry name, a weights path, an Encoder).
    features : str, default "embedding"
        The feature variable.
    batch_size : int, default :data:`xwvnet._runtime.BATCH_SIZE` (64)
        Imagettes per forward pass, for :func:`xwvnet.embed`.
    device : str, default "auto"
        Torch device, for :func:`xwvnet.embed`.

    Returns
    -------
    xarray.Dataset
        With ``features`` (imagette, feature).

    Raises
    ------
    ValueError
        If an embedded Dataset or ``"stored"`` lacks ``features``.
    """
    if isinstance(encoder, xr.Dataset):
        if features not in encoder.data_vars:
            raise InvalidDataError(f"an embedded Dataset given as encoder has no {features!r} variable.")
        return encoder
    if isinstance(encoder, str) and encoder == "stored":
        if features not in ds.data_vars:
            raise InvalidDataError(f"encoder 'stored' uses the Dataset's own {features!r}, but it has none.")
        return ds
    ds = ds.drop_dims(S.FEATURE, errors="ignore")  # an embedding already there would clash with the new one
    if isinstance(encoder, str) and encoder == "image-statistics":
        from .baselines import image_statistics

        return image_statistics(ds)
    if callable(encoder) and not hasattr(encoder, "state_dict"):
        return encoder(ds)
    from ..inference import embed

    return embed(ds, encoder, batch_size=batch_size, device=device)


def test_mask(ds: xr.Dataset, split: P.Selection | None = None, *, test_size: float = 0.3,
              seed: int = 0) -> np.ndarray:
    """The test imagettes of an evaluation, as a boolean mask over ``imagette`` (True = test).

    Parameters
    ----------
    ds : xarray.Dataset
        The imagettes.
    split : str, sequence of str, numpy.ndarray or xarray.DataArray, optional
        A variable name or array of bools (True = test) or of ``"train"``/``"test"``, or the test ids; default a
        seeded random split (:func:`xwvnet.probe.split`).
    test_size : float, default 0.3
        Fraction held out by the random split.
    seed : int, default 0
        Seed of the random split.

    Returns
    -------
    numpy.ndarray
        bool, one value per imagette.

    Raises
    ------
    ValueError
        If ``split`` names ids that are not imagettes of ``ds`` or a mask of the wrong length.
    """
    if split is None:
        return P.split(ds, test_size=test_size, seed=seed)
    values = ds[split] if isinstance(split, str) else split
    arr = np.asarray(values.values if isinstance(values, xr.DataArray) else values)
    if arr.dtype.kind in "OUS" and arr.shape == (ds.sizes[S.IMAGETTE],) and set(arr.astype(str)) <= {"train", "test"}:
        return arr.astype(str) == "test"
    return P.training_mask(ds, arr)


def _targets(ds: xr.Dataset, targets: str | Sequence[str] | None) -> list[str]:
    if targets is None:
        found = [t for t in DEFAULT_TARGETS if t in ds.variables]
        if not found:
            raise InvalidDataError(
                f"no target to evaluate: none of {DEFAULT_TARGETS} is in the Dataset; pass targets=."
            )
        return found
    targets = [targets] if isinstance(targets, str) else list(targets)
    S.require(ds, targets, "evaluate")
    return targets


def _score_encoder(ds: xr.Dataset, emb: xr.Dataset, targets: list[str], test: np.ndarray, features: str,
                   seed: int, fit_kwargs: dict[str, Any]
                   ) -> tuple[dict[tuple[str, str], float], dict[str, xr.DataArray]]:
    ids = ds[S.IMAGETTE].values
    emb_ids = emb[S.IMAGETTE].values
    if len(emb_ids) != len(ids) or not np.array_equal(emb_ids.astype(str), ids.astype(str)):
        emb = emb.sel({S.IMAGETTE: ids})  # align a ready-made embedding to ds (KeyError names missing ids)
    x = emb[features].compute()
    work = xr.Dataset({features: x.assign_coords({S.IMAGETTE: ids})}, coords={S.IMAGETTE: ids})
    work = work.assign({t: ds[t].compute() for t in targets})
    train_ds = work.isel({S.IMAGETTE: np.flatnonzero(~test)})
    test_ds = work.isel({S.IMAGETTE: np.flatnonzero(test)})
    row: dict[tuple[str, str], float] = {}
    predictions: dict[str, xr.DataArray] = {}
    for target in targets:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            probe = P.fit_probe(train_ds, target, features=features, seed=seed, **fit_kwargs)
        scores = probe_scores(test_ds, probe)
        row[(target, "n_train")] = probe.info["n_train"]
        row[(target, "n_test")] = scores.pop("n")
        row.update({(target, m): v for m, v in scores.items()})
        predictions[target] = P.predict(test_ds, probe)[P.output_name(probe)]
    return row, predictions


def _evaluate(ds: xr.Dataset, encoders: Any, targets: str | Sequence[str] | None, *, split: P.Selection | None,
              test_size: float, seed: int, batch_size: int, device: str, errors: str, features: str,
              fit_kwargs: dict[str, Any]) -> tuple[pd.DataFrame, dict[str, dict[str, xr.DataArray]]]:
    """The table of :func:`evaluate` and, per encoder and target, the test predictions (for figures)."""
    if errors not in ("warn", "raise"):
        raise InvalidArgumentError(f"errors must be 'warn' or 'raise', got {errors!r}")
    items = dict(encoders) if isinstance(encoders, Mapping) else {
        _name(e, i, features): e for i, e in enumerate([encoders] if isinstance(encoders, str | xr.Dataset)
                                                        else encoders)}
    target_list = _targets(ds, targets)
    test = test_mask(ds, split, test_size=test_size, seed=seed)
    rows: dict[str, dict] = {}
    predictions: dict[str, dict[str, xr.DataArray]] = {}
    skipped: dict[str, str] = {}
    for name, item in items.items():
        try:
            emb = embeddings_for(ds, item, features=features, batch_size=batch_size, device=device)
            rows[name], predictions[name] = _score_encoder(ds, emb, target_list, test, features, seed, fit_kwargs)
        except Exception as err:  # one encoder failing must not lose the others' rows
            if errors == "raise":
                raise
            skipped[name] = f"{type(err).__name__}: {err}"
            warn(f"evaluate: encoder {name!r} skipped ({skipped[name]})", XWVNetWarning)
            rows[name] = {}
    table = pd.DataFrame.from_dict(rows, orient="index")
    if table.shape[1]:
        table.columns = pd.MultiIndex.from_tuples(table.columns, names=["target", "metric"])
        counts = [c for c in table.columns if c[1] in ("n_train", "n_test")]
        table[counts] = table[counts].astype("Int64")
    table.index.name = "encoder"
    table.attrs.update({"seed": seed, "n_test": int(test.sum()), "n_train": int((~test).sum()), "skipped": skipped,
                        "targets": target_list})
    return table, predictions


def evaluate(
    ds: xr.Dataset,
    encoders: Sequence[EncoderLike] | Mapping[str, EncoderLike] | str | xr.Dataset = DEFAULT_ENCODERS,
    targets: str | Sequence[str] | None = None,
    *,
    split: P.Selection | None = None,
    test_size: float = 0.3,
    seed: int = 0,
    batch_size: int = BATCH_SIZE,
    device: str = "auto",
    errors: str = "warn",
    features: str = S.EMBEDDING,
    alphas: Sequence[float] = P.DEFAULT_ALPHAS,
    Cs: Sequence[float] = P.DEFAULT_CS,
    cv: int = 5,
    max_iter: int = 500,
    predictions: dict[str, dict[str, xr.DataArray]] | None = None,
) -> pd.DataFrame:
    """The paper's evaluation table: one row per encoder, columns (target, metric), on one seeded split.

    Every encoder embeds the same imagettes; a probe per target (:func:`xwvnet.fit_probe`) is fitted on the
    same training imagettes and scored on the same test ones, so rows compare encoders and nothing else.

    Parameters
    ----------
    ds : xarray.Dataset
        Imagettes (or only their ids and targets, when every encoder is a ready embedded Dataset).
    encoders : sequence or mapping of encoders, optional
        A sequence, or ``{row name: encoder}``, of registry names, Encoders, weights paths,
        ``"image-statistics"``, ``"stored"``, callables ``f(ds) -> embedded Dataset``, or embedded Datasets with
        the imagette ids of ``ds`` (see :func:`embeddings_for`). Default: :data:`DEFAULT_ENCODERS`.
    targets : str or sequence of str, optional
        Variables of ``ds`` (numbers per imagette, or ``labels``); default those of ``hs``, ``t2m``,
        ``wind_speed``, ``labels`` that exist.
    split : str, sequence of str, numpy.ndarray or xarray.DataArray, optional
        The test imagettes (see :func:`test_mask`); default a random ``test_size`` split drawn with ``seed``.
    test_size : float, default 0.3
        Fraction held out by the random split.
    seed : int, default 0
        Seed of the split and of the probes' folds.
    batch_size : int, default :data:`xwvnet._runtime.BATCH_SIZE` (64)
        Imagettes per forward pass when an encoder embeds.
    device : str, default "auto"
        Torch device when an encoder embeds.
    errors : {"warn", "raise"}, default "warn"
        ``"warn"`` keeps a NaN row for an encoder that fails (reason in ``table.attrs["skipped"]``), so that one
        unavailable encoder (e.g. weights offline) does not lose the others; ``"raise"`` stops.
    features : str, default "embedding"
        The feature variable.
    alphas, Cs : sequence of float, optional
        Ridge and logistic penalties to choose from (:func:`xwvnet.fit_probe`).
    cv : int, default 5
        Folds of the logistic cross-validation.
    max_iter : int, default 500
        Iterations of the logistic solver.
    predictions : dict, optional
        Filled with the test predictions, ``{encoder: {target: DataArray along imagette}}`` (the probe's
        ``<target>_predicted``, or ``labels_probability`` for tags), for figures of predicted against true;
        an encoder that did not run has none.

    Returns
    -------
    pandas.DataFrame
        Index ``encoder``; columns (target, metric) with metrics ``rmse``, ``bias``, ``r2`` (numbers) or
        ``micro_auroc``, ``macro_auroc``, ``auroc[<tag>]`` (tags), plus ``n_train`` and ``n_test``. ``attrs``
        holds the seed, the split counts, the targets and the skipped encoders.

    Raises
    ------
    ValueError
        If ``errors`` is unknown, no target is found, or a target is missing.

    Examples
    --------
    >>> table = xwvnet.evaluate(ds, ["wvnet-resnet50", "image-statistics"], "hs")  # doctest: +SKIP
    >>> print(xwvnet.evaluation.format_table(table))  # doctest: +SKIP
    >>> predicted = {}
    >>> table = xwvnet.evaluate(ds, ["image-statistics"], "hs", predictions=predicted)  # doctest: +SKIP
    >>> predicted["image-statistics"]["hs"]  # doctest: +SKIP
    """
    fit_kwargs = {"alphas": alphas, "Cs": Cs, "cv": cv, "max_iter": max_iter}
    table, found = _evaluate(ds, encoders, targets, split=split, test_size=test_size, seed=seed,
                             batch_size=batch_size, device=device, errors=errors, features=features,
                             fit_kwargs=fit_kwargs)
    if predictions is not None:
        predictions.update(found)
    return table


def format_table(table: pd.DataFrame, *, per_tag: bool = False) -> str:
    """The evaluation table as text, like the paper's, with the encoders that did not run and why.

    Parameters
    ----------
    table : pandas.DataFrame
        A table from :func:`evaluate`.
    per_tag : bool, default False
        Show the per-tag AUROC columns too.

    Returns
    -------
    str
        Three decimals; counts as integers; ``-`` where an encoder did not run.
    """
    shown = table
    if table.shape[1] and not per_tag:
        keep = [c for c in table.columns if not str(c[1]).startswith("auroc[")]
        shown = table[keep]
    shown = shown.copy()
    for col in shown.columns:
        if str(shown[col].dtype) == "Int64":  # counts: no decimals, "-" where the encoder did not run
            shown[col] = shown[col].map(lambda v: "-" if pd.isna(v) else str(v))
    text = shown.to_string(float_format=lambda v: f"{v:.3f}", na_rep="-")
    for name, reason in table.attrs.get("skipped", {}).items():
        text += f"\n  {name}: not run ({reason.splitlines()[0][:150]})"
    return text
