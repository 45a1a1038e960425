"""One comparison of encoders on one labelled Dataset, laid out like the WV-Net and OceanSAR-1 papers' tables.

Each encoder (a registry name, an Encoder, a path, the non-learned ``"image-statistics"`` baseline, or embeddings
already made) embeds the same imagettes, each through its own transform; the same seeded train/test split is used
for all, a probe per target is fitted on the training imagettes and scored on the test ones: RMSE, bias and R^2 for
numbers (``hs``, ``wind_speed``), accuracy for a class per imagette (TenGeoP's layout), micro/macro and per-tag
AUROC for tags (WV-Net's); for a class or tags, also the retrieval precision@k of the test imagettes' nearest
neighbours. :func:`paper_table` keeps the columns the papers print, :data:`PUBLISHED` holds their own figures
(on their own data: not comparable as they are). An encoder that cannot run here (e.g. published weights not
downloadable offline) gets a row of NaN and its reason in ``table.attrs["skipped"]``, so the table keeps its shape.
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
from .metrics import probe_scores, retrieval_precision

if TYPE_CHECKING:  # torch is imported only when an encoder embeds
    from ..models.encoder import Encoder

    #: What makes an embedding of a Dataset: a registry name, a weights path, an Encoder, ``"image-statistics"``,
    #: ``"stored"``, a callable ``f(ds) -> embedded Dataset``, or an embedded Dataset.
    EncoderLike = str | os.PathLike | Encoder | Callable[[xr.Dataset], xr.Dataset] | xr.Dataset

DEFAULT_ENCODERS = ("wvnet-resnet50", "imagenet-resnet50", "random-resnet50", "image-statistics")
#: The variable of a class per imagette that :func:`evaluate` looks for (TenGeoP's layout: strings, or integers
#: with ``flag_values``).
CLASS = "class"
DEFAULT_TARGETS = ("hs", "t2m", "wind_speed", CLASS, S.LABELS)
#: The ten TenGeoP classes (Wang et al. 2019), in the order of the data set's documentation.
TENGEOP_CLASSES = ("POW", "WS", "MCC", "RC", "BS", "SI", "IB", "LWA", "AF", "OF")
#: Figures published by the encoders' authors, each on their own test data (not the imagettes evaluated here):
#: linear probes; ``None`` where a paper gives none. Sources: WV-Net, Glaser et al. 2024 (arXiv:2406.18765);
#: OceanSAR-1, Kerdreux et al. 2025 (arXiv:2504.06962).
PUBLISHED: tuple[dict[str, Any], ...] = (
    {"encoder": "WV-Net ResNet-50", "source": "Glaser et al. 2024", "hs_rmse": 0.50, "wind_rmse": None,
     "class_accuracy": None},
    {"encoder": "ImageNet ResNet-50", "source": "Glaser et al. 2024", "hs_rmse": 0.60, "wind_rmse": None,
     "class_accuracy": None},
    {"encoder": "OceanSAR-1 ResNet-50", "source": "Kerdreux et al. 2025", "hs_rmse": 0.63, "wind_rmse": 1.62,
     "class_accuracy": 0.755},
    {"encoder": "OceanSAR-1 ViT-S/16", "source": "Kerdreux et al. 2025", "hs_rmse": 0.57, "wind_rmse": 1.39,
     "class_accuracy": 0.786},
    {"encoder": "OceanSAR-1 ViT-S/8", "source": "Kerdreux et al. 2025", "hs_rmse": 0.55, "wind_rmse": 1.38,
     "class_accuracy": 0.821},
    {"encoder": "OceanSAR-1 ViT-B/8", "source": "Kerdreux et al. 2025", "hs_rmse": 0.54, "wind_rmse": 1.37,
     "class_accuracy": 0.836},
)


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
                   seed: int, fit_kwargs: dict[str, Any], k: int | None = None
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
        if k and probe.kind != "regression" and ds.sizes[S.IMAGETTE] > 1:  # the test imagettes' neighbours
            found = retrieval_precision(work, target, min(k, ds.sizes[S.IMAGETTE] - 1), queries=test,
                                        features=features)
            row.update({(target, m): v for m, v in found.items() if m != "n"})
        predictions[target] = P.predict(test_ds, probe)[P.output_name(probe)]
    return row, predictions


def _evaluate(ds: xr.Dataset, encoders: Any, targets: str | Sequence[str] | None, *, split: P.Selection | None,
              test_size: float, seed: int, batch_size: int, device: str, errors: str, features: str,
              fit_kwargs: dict[str, Any], k: int | None = None, embeddings: dict[str, xr.Dataset] | None = None,
              ) -> tuple[pd.DataFrame, dict[str, dict[str, xr.DataArray]]]:
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
            if embeddings is not None:
                # embedded once, kept for the caller (learning curves)
                emb = embeddings[name] = emb[[features]].persist()
            rows[name], predictions[name] = _score_encoder(ds, emb, target_list, test, features, seed, fit_kwargs,
                                                           k)
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
    k: int | None = 10,
    predictions: dict[str, dict[str, xr.DataArray]] | None = None,
    embeddings: dict[str, xr.Dataset] | None = None,
) -> pd.DataFrame:
    """One comparison of encoders: one row per encoder, columns (target, metric), on one seeded split.

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
        Variables of ``ds``: numbers per imagette, a class per imagette (strings, or integers with
        ``flag_values``), or tags (``labels``); default those of ``hs``, ``t2m``, ``wind_speed``, ``class``,
        ``labels`` that exist.
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
    k : int or None, default 10
        Neighbours per test imagette for the retrieval columns of a class or tags (searched among all imagettes,
        :func:`xwvnet.evaluation.retrieval_precision`); ``None`` or 0: no retrieval columns.
    predictions : dict, optional
        Filled with the test predictions, ``{encoder: {target: DataArray along imagette}}`` (the probe's
        ``<target>_predicted``, or ``labels_probability`` for tags), for figures of predicted against true;
        an encoder that did not run has none.
    embeddings : dict, optional
        Filled with each encoder's embedded Dataset (persisted), ``{encoder: Dataset}``, so that learning curves
        (:func:`xwvnet.evaluation.learning_curves`) reuse them instead of embedding again.

    Returns
    -------
    pandas.DataFrame
        Index ``encoder``; columns (target, metric) with metrics ``rmse``, ``bias``, ``r2`` (numbers),
        ``accuracy``, ``balanced_accuracy`` (a class) or ``micro_auroc``, ``macro_auroc``, ``auroc[<tag>]``
        (tags), then ``precision@<k>`` and ``map@<k>`` (a class or tags, when ``k``), plus ``n_train`` and
        ``n_test``. ``attrs`` holds the seed, the split counts, the targets and the skipped encoders.

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
                             fit_kwargs=fit_kwargs, k=k, embeddings=embeddings)
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


#: The columns of :func:`paper_table`: (heading, target, metric, scale).
PAPER_COLUMNS = (
    ("Hs RMSE (m)", "hs", "rmse", 1.0),
    ("wind RMSE (m/s)", "wind_speed", "rmse", 1.0),
    ("class accuracy (%)", CLASS, "accuracy", 100.0),
    ("tags micro-AUROC", S.LABELS, "micro_auroc", 1.0),
)


def paper_table(table: pd.DataFrame, *, hs: str = "hs", wind: str = "wind_speed", classes: str = CLASS,
                tags: str = S.LABELS) -> pd.DataFrame:
    """An :func:`evaluate` table laid out like the papers': Hs RMSE, wind RMSE, class accuracy, tag micro-AUROC,
    retrieval precision.

    Parameters
    ----------
    table : pandas.DataFrame
        A table from :func:`evaluate`.
    hs, wind, classes, tags : str, optional
        The targets that stand for significant wave height, wind speed, the class per imagette and the tags.

    Returns
    -------
    pandas.DataFrame
        One row per encoder; the columns of :data:`PAPER_COLUMNS` whose target was evaluated (accuracy in %),
        then ``<class or tags> precision@<k>`` for each retrieval column.

    Examples
    --------
    >>> paper_table(xwvnet.evaluate(ds, ["random-resnet50", "image-statistics"]))  # doctest: +SKIP
    """
    names = {"hs": hs, "wind_speed": wind, CLASS: classes, S.LABELS: tags}
    out = pd.DataFrame(index=table.index)
    for heading, target, metric, scale in PAPER_COLUMNS:
        column = (names[target], metric)
        if table.shape[1] and column in table.columns:
            out[heading] = table[column].astype(float) * scale
    for word, target in (("class", classes), ("tags", tags)):
        for column in (c for c in (table.columns if table.shape[1] else ()) if c[0] == target):
            if str(column[1]).startswith("precision@"):
                out[f"{word} {column[1]}"] = table[column].astype(float)
    out.attrs = dict(table.attrs)
    return out


def published_table() -> pd.DataFrame:
    """The authors' own figures (:data:`PUBLISHED`), laid out as :func:`paper_table`: on their data, not ours.

    Returns
    -------
    pandas.DataFrame
        Index ``encoder``; ``source``, ``Hs RMSE (m)``, ``wind RMSE (m/s)``, ``class accuracy (%)`` (TenGeoP); NaN
        where a paper gives no figure.
    """
    rows = {p["encoder"]: {"source": p["source"], "Hs RMSE (m)": p["hs_rmse"], "wind RMSE (m/s)": p["wind_rmse"],
                           "class accuracy (%)": None if p["class_accuracy"] is None else 100 * p["class_accuracy"]}
            for p in PUBLISHED}
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "encoder"
    for col in out.columns[1:]:
        out[col] = out[col].astype(float)
    return out
