"""The evaluation table of the WV-Net paper, on any labelled Dataset: one row per encoder, linear-probe metrics.

Each encoder (a registry name, an Encoder, a path, the non-learned ``"image-statistics"`` baseline, or embeddings
already made) embeds the same imagettes; the same seeded train/test split is used for all, a probe per target is
fitted on the training imagettes and scored on the test ones: RMSE, bias and R^2 for numbers, micro/macro and
per-tag AUROC for tags. An encoder that cannot run here (e.g. published weights not downloadable offline) gets a
row of NaN and its reason in ``table.attrs["skipped"]``, so the table keeps its shape.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .. import probe as P
from .. import schema as S

DEFAULT_ENCODERS = ("wvnet-resnet50", "imagenet-resnet50", "random-resnet50", "image-statistics")
DEFAULT_TARGETS = ("hs", "t2m", "wind_speed", S.LABELS)


def _name(item: Any, i: int, features: str) -> str:
    if isinstance(item, str):
        return item
    if isinstance(item, xr.Dataset) and features in item:
        return str(item[features].attrs.get("encoder", f"embedding-{i}"))
    return str(getattr(item, "name", None) or getattr(item, "__name__", None) or f"encoder-{i}")


def embeddings_for(ds: xr.Dataset, encoder: Any, *, features: str = S.EMBEDDING, batch_size: int = 32,
                   device: str = "auto") -> xr.Dataset:
    """``ds``'s imagettes embedded by ``encoder``: a ready embedded Dataset (used as is), ``"stored"`` (the
    embedding already in ``ds``), ``"image-statistics"``, a callable ``f(ds) -> Dataset``, or anything
    :func:`xwvnet.inference.embed` takes (a registry name, a weights path or an Encoder).
    """
    if isinstance(encoder, xr.Dataset):
        if features not in encoder.data_vars:
            raise ValueError(f"an embedded Dataset given as encoder has no {features!r} variable.")
        return encoder
    if isinstance(encoder, str) and encoder == "stored":
        if features not in ds.data_vars:
            raise ValueError(f"encoder 'stored' uses the Dataset's own {features!r}, but it has none.")
        return ds
    ds = ds.drop_dims(S.FEATURE, errors="ignore")  # an embedding already there would clash with the new one
    if isinstance(encoder, str) and encoder == "image-statistics":
        from .baselines import image_statistics

        return image_statistics(ds)
    if callable(encoder) and not hasattr(encoder, "state_dict"):
        return encoder(ds)
    from ..inference import embed

    return embed(ds, encoder, batch_size=batch_size, device=device)


def test_mask(ds: xr.Dataset, split: Any = None, *, test_size: float = 0.3, seed: int = 0) -> np.ndarray:
    """Boolean mask over ``imagette``, True = test: from ``split`` (a variable name or array of bools (True =
    test) or of 'train'/'test', or test ids), else a seeded random split of ``test_size``.
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
            raise ValueError(f"no target to evaluate: none of {DEFAULT_TARGETS} is in the Dataset; pass targets=.")
        return found
    targets = [targets] if isinstance(targets, str) else list(targets)
    S.require(ds, targets, "evaluate")
    return targets


def _score_encoder(ds: xr.Dataset, emb: xr.Dataset, targets: list[str], test: np.ndarray, features: str,
                   seed: int, fit_kwargs: dict) -> tuple[dict[tuple[str, str], float], dict[str, xr.DataArray]]:
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
        scores = P.score(test_ds, probe)
        row[(target, "n_train")] = probe.info["n_train"]
        row[(target, "n_test")] = scores.pop("n")
        row.update({(target, m): v for m, v in scores.items()})
        predictions[target] = P.predict(test_ds, probe)[P.output_name(probe)]
    return row, predictions


def _evaluate(ds: xr.Dataset, encoders: Any, targets: Any, *, split: Any, test_size: float, seed: int,
              batch_size: int, device: str, errors: str, features: str,
              fit_kwargs: dict) -> tuple[pd.DataFrame, dict[str, dict[str, xr.DataArray]]]:
    if errors not in ("warn", "raise"):
        raise ValueError(f"errors must be 'warn' or 'raise', got {errors!r}")
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
            warnings.warn(f"evaluate: encoder {name!r} skipped ({skipped[name]})", UserWarning, stacklevel=3)
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
    encoders: Any = DEFAULT_ENCODERS,
    targets: str | Sequence[str] | None = None,
    *,
    split: Any = None,
    test_size: float = 0.3,
    seed: int = 0,
    batch_size: int = 32,
    device: str = "auto",
    errors: str = "warn",
    features: str = S.EMBEDDING,
    **fit_kwargs: Any,
) -> pd.DataFrame:
    """The paper's evaluation table: one row per encoder, columns (target, metric), on one seeded split.

    ``encoders``: a sequence or ``{row name: encoder}`` of registry names, Encoders, paths, ``"image-statistics"``,
    callables ``f(ds) -> embedded Dataset``, or embedded Datasets with the same imagette ids as ``ds``.
    ``targets``: variables of ``ds`` (numbers per imagette, or ``labels``); default: those of ``hs``, ``t2m``,
    ``wind_speed``, ``labels`` that exist. ``split``: test imagettes (ids, a boolean mask with True = test, an
    array of 'train'/'test', or a variable name); default a random ``test_size`` split drawn with ``seed``.
    Metrics: ``rmse``, ``bias``, ``r2`` or ``micro_auroc``, ``macro_auroc``, ``auroc[<tag>]``, with ``n_train``
    and ``n_test``. ``errors="warn"`` keeps a NaN row for an encoder that fails (reason in
    ``table.attrs["skipped"]``); ``"raise"`` stops. Extra keywords go to :func:`xwvnet.probe.fit_probe`.
    """
    table, _ = _evaluate(ds, encoders, targets, split=split, test_size=test_size, seed=seed, batch_size=batch_size,
                         device=device, errors=errors, features=features, fit_kwargs=fit_kwargs)
    return table


def open_joined(paths: Sequence[str | Path]) -> xr.Dataset:
    """Open Zarr stores (imagette stores of ``xwvnet ingest``/``to_store``, embedding stores of ``xwvnet embed``)
    joined on imagette ids, e.g. embeddings with the imagettes and targets they came from.

    Only imagettes present in every store are kept; a variable in several stores is taken from the first.
    """
    from ..io.store import open_store

    def _open(path: str | Path) -> xr.Dataset:
        try:
            return open_store(path)
        except ValueError:  # not an imagette store: maybe an embedding store of `xwvnet embed`
            from ..archive import open_embeddings

            return open_embeddings(path)

    if not paths:
        raise ValueError("give at least one store to open")
    opened = [_open(p) for p in paths]
    return xr.merge(opened, join="inner", compat="override", combine_attrs="override")


def format_table(table: pd.DataFrame, *, per_tag: bool = False) -> str:
    """The table as text, like the paper's (per-tag AUROC columns hidden unless ``per_tag``)."""
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
