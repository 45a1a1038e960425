"""Heads beyond linear: a small MLP (or a ridge) on embeddings plus per-imagette covariates, saved without pickle.

A head predicts a number per imagette (``hs`` from an altimeter, ``wind_speed`` from ERA5, anything
:func:`xwvnet.collocate` added) from several inputs at once: the embedding, covariates such as
``incidence_angle``, and the image statistics of :mod:`xwvnet.evaluation.baselines` (``"image_statistics"``:
moments, percentiles and spectral energy of the valid pixels of the quicklook or the sigma0). Inputs are
standardised (the probe's scaler) and so is the target; ``model="mlp"`` reduces wide inputs (embeddings) to their
leading principal components, then trains a small ensemble of torch MLPs with input dropout and AdamW, each on its
own seeded split of the training imagettes, keeping the weights of the epoch with the lowest held-out error (early
stopping), and averages them; ``model="ridge"`` is the linear probe's ``Pipeline([StandardScaler(), RidgeCV()])``
on the same inputs.

Once fitted, a head is only arrays. It is saved as one safetensors file (tensors, no pickle possible) whose
metadata holds a JSON header, and every prediction, fitted or loaded, goes through the same arithmetic on those
arrays, so predictions before and after a save are identical. :func:`xwvnet.predict` applies a head like a probe:
lazily, ``<target>_predicted(imagette)``, refusing data whose encoder or covariates differ from the head's.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import dask
import numpy as np
import safetensors
import safetensors.numpy
import xarray as xr

from . import schema as S
from ._files import local_path
from ._version import __version__
from .errors import (
    InputNotFoundError,
    InvalidArgumentError,
    InvalidDataError,
    ModelError,
    ModelMismatchError,
    TrainingDivergedError,
    XWVNetWarning,
    warn,
)
from .evaluation import baselines
from .probe import (
    DEFAULT_ALPHAS,
    Probe,
    Selection,
    _fit_regression,
    _jsonable,
    _scaler,
    _warn_if_embedding_again,
    infer_kind,
    split,
    training_mask,
)

__all__ = ["Head", "HeadFileError", "fit_head", "IMAGE_STATISTICS", "MODELS"]

FORMAT = "xwvnet-head"
FORMAT_VERSION = 2  # 2: MLP heads may hold a projection (principal components) before their first layer
MODELS = ("mlp", "ridge")
#: The feature name that stands for the image statistics of each imagette (:func:`baselines.image_statistics`).
IMAGE_STATISTICS = "image_statistics"
#: Attributes of a feature variable that identify what made it; a head refuses data where one of them differs.
IDENTITY_ATTRS = ("encoder", "encoder_weights_hash", "image_variable")
_RIDGE_TENSORS = ("mean", "scale", "coef", "intercept")


class HeadFileError(ModelError, ValueError):
    """A file given to :meth:`Head.load` is not a head saved by xwvnet (or was saved by a newer xwvnet)."""


# --- inputs ----------------------------------------------------------------------------------------------------------
def _feature_names(features: str | Sequence[str]) -> tuple[str, ...]:
    names = (features,) if isinstance(features, str) else tuple(features)
    if not names or not all(isinstance(n, str) and n for n in names):
        raise InvalidArgumentError(f"features must be one or more variable names, got {features!r}")
    if len(set(names)) != len(names):
        raise InvalidArgumentError(f"features name a variable twice: {list(names)}")
    return names


def _input(ds: xr.Dataset, name: str, image_variable: str | None) -> tuple[xr.DataArray, dict[str, str]]:
    """One input as (imagette, columns) or (imagette,), and what identifies it (encoder, image variable, columns)."""
    if name == IMAGE_STATISTICS:
        x = baselines.image_statistics(ds, var=image_variable)[S.EMBEDDING]
        identity = {"encoder": baselines.NAME, "image_variable": str(x.attrs["image_variable"])}
    else:
        if name not in ds.variables:
            raise InvalidDataError(
                f"no feature {name!r} in the Dataset (variables: {sorted(map(str, ds.variables))}); give a variable "
                f"or coordinate along {S.IMAGETTE!r}, or {IMAGE_STATISTICS!r}." + S.did_you_mean(name, ds.variables)
            )
        x = ds[name]
        if S.IMAGETTE not in x.dims or x.ndim > 2 or x.dtype.kind not in "biuf":
            raise InvalidDataError(
                f"feature {name!r} has dims {x.dims} and dtype {x.dtype}: a head reads numbers along "
                f"{S.IMAGETTE!r}, one per imagette or a vector (imagette, column) each."
            )
        x = x.transpose(S.IMAGETTE, ...)
        identity = {k: str(x.attrs[k]) for k in IDENTITY_ATTRS if k in x.attrs}
    if x.ndim == 2:
        column = x.dims[1]
        if column in x.coords and x[column].dtype.kind in "OUS":
            identity["columns"] = ",".join(map(str, x[column].values))
        x = x.drop_vars(column, errors="ignore").rename({column: f"{name} column"})  # inputs may share a dim name
    return x.reset_coords(drop=True).rename(name), identity


def _inputs(
    ds: xr.Dataset, features: tuple[str, ...], image_variable: str | None
) -> tuple[list[xr.DataArray], list[dict[str, str]], list[int]]:
    arrays, identities, widths = [], [], []
    for name in features:
        x, identity = _input(ds, name, image_variable)
        arrays.append(x)
        identities.append(identity)
        widths.append(int(x.shape[1]) if x.ndim == 2 else 1)
    return arrays, identities, widths


def _stack(*blocks: np.ndarray) -> np.ndarray:
    """Blocks of the inputs (n, ...) side by side as one float64 (n, columns) matrix."""
    n = blocks[0].shape[0]
    return np.concatenate([np.asarray(b, dtype=np.float64).reshape(n, -1) for b in blocks], axis=1)


# --- the head --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Head:
    """A fitted head: standardised inputs -> MLP or ridge -> a number per imagette.

    Parameters
    ----------
    model : {"mlp", "ridge"}
        The estimator.
    target : str
        The variable it was fitted on (``"hs"``...).
    features : tuple of str
        The inputs it reads, in order: variables or coordinates along ``imagette`` (``"embedding"``,
        ``"incidence_angle"``...) and ``"image_statistics"``.
    widths : tuple of int
        Columns of each input (1 for a number per imagette).
    identities : tuple of dict
        Per input, what made it (``encoder``, ``encoder_weights_hash``, ``image_variable``, column names, where
        known): :func:`xwvnet.predict` refuses data where one of these differs.
    tensors : dict of str to numpy.ndarray
        ``"mlp"``: ``input_mean``, ``input_scale``, ``target_mean``, ``target_scale`` (float64), optionally
        ``projection`` (float64, (inputs, columns): standardised inputs -> the columns the MLP reads, e.g. whitened
        principal components of the embedding), and ``layer<i>.weight``, ``layer<i>.bias`` (float32, ReLU between
        layers; an ensemble is stored as one MLP whose members sit side by side); ``"ridge"``: the probe's
        ``mean``, ``scale``, ``coef``, ``intercept``.
    info : dict, optional
        Provenance and fit diagnostics (counts, epochs, held-out error, chosen penalty); saved.

    Raises
    ------
    ValueError
        If ``model`` is unknown or the arrays do not fit together.

    Examples
    --------
    >>> head = fit_head(ds, "hs", features=("embedding", "incidence_angle"))  # doctest: +SKIP
    >>> head.save("hs.head.safetensors"); Head.load("hs.head.safetensors")  # doctest: +SKIP
    """

    model: str
    target: str
    features: tuple[str, ...]
    widths: tuple[int, ...]
    identities: tuple[dict[str, str], ...]
    tensors: Mapping[str, np.ndarray]
    info: dict[str, Any] = field(default_factory=dict)

    kind = "regression"  # what evaluation.metrics.probe_scores reads: a head predicts one number per imagette

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise InvalidArgumentError(f"head model must be one of {MODELS}, got {self.model!r}")
        if not (len(self.features) == len(self.widths) == len(self.identities)):
            raise InvalidArgumentError(
                f"a head needs one width and one identity per feature, got {self.features}, "
                f"{self.widths}, {len(self.identities)} identities"
            )
        object.__setattr__(self, "tensors", {k: np.ascontiguousarray(v) for k, v in self.tensors.items()})
        n = self.n_features
        if self.model == "ridge":
            missing = [k for k in _RIDGE_TENSORS if k not in self.tensors]
            if missing:
                raise InvalidArgumentError(f"a ridge head lacks tensors {missing}")
            if self.tensors["coef"].shape != (1, n):
                raise InvalidArgumentError(f"ridge coef must be (1, {n}), got {self.tensors['coef'].shape}")
            return
        shapes = {"input_mean": (n,), "input_scale": (n,), "target_mean": (1,), "target_scale": (1,)}
        wrong = [
            f"{k} {self.tensors[k].shape if k in self.tensors else 'missing'}"
            for k, s in shapes.items()
            if k not in self.tensors or self.tensors[k].shape != s
        ]
        fan_in = n
        if "projection" in self.tensors:  # standardised inputs -> whitened principal components
            projection = self.tensors["projection"]
            if projection.ndim != 2 or projection.shape[0] != n:
                wrong.append(f"projection {projection.shape}")
            fan_in = projection.shape[-1]
        for i in range(self.n_layers):
            w, b = self.tensors.get(f"layer{i}.weight"), self.tensors.get(f"layer{i}.bias")
            if w is None or b is None or w.ndim != 2 or w.shape[1] != fan_in or b.shape != (w.shape[0],):
                wrong.append(f"layer{i}")
                break
            fan_in = w.shape[0]
        if self.n_layers == 0 or fan_in != 1:
            wrong.append(f"{self.n_layers} layers ending in {fan_in} outputs")
        if wrong:
            raise InvalidArgumentError(f"inconsistent MLP head tensors for {n} inputs: {wrong}")

    @property
    def n_features(self) -> int:
        """Number of input columns (all features side by side).

        Returns
        -------
        int
        """
        return int(sum(self.widths))

    @property
    def n_layers(self) -> int:
        """Linear layers of the MLP (0 for a ridge head).

        Returns
        -------
        int
        """
        return sum(1 for k in self.tensors if k.startswith("layer") and k.endswith(".weight"))

    @property
    def outputs(self) -> tuple[str, ...]:
        """The output names: ``(target,)``.

        Returns
        -------
        tuple of str
        """
        return (self.target,)

    @cached_property
    def _probe(self) -> Probe:
        t = self.tensors
        return Probe(
            "regression",
            self.target,
            "+".join(self.features),
            (self.target,),
            t["mean"],
            t["scale"],
            t["coef"],
            t["intercept"],
            {},
        )

    @cached_property
    def _layers(self) -> list[tuple[Any, Any]]:
        import torch

        return [
            (torch.tensor(self.tensors[f"layer{i}.weight"]), torch.tensor(self.tensors[f"layer{i}.bias"]))
            for i in range(self.n_layers)
        ]  # copies: loaded arrays may be read-only

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Predictions for rows of inputs side by side (the features in order, each flattened).

        Parameters
        ----------
        x : numpy.ndarray
            Inputs, shape (n, :attr:`n_features`).

        Returns
        -------
        numpy.ndarray
            float32, shape (n,); NaN for rows with a non-finite input.
        """
        x = np.asarray(x, dtype=np.float64)
        if self.model == "ridge":
            return self._probe.transform(x)[:, 0]
        import torch
        import torch.nn.functional as F

        out = np.full(x.shape[0], np.nan, dtype=np.float32)
        ok = np.isfinite(x).all(axis=1)
        if not ok.any():
            return out
        t = self.tensors
        z = _scaler(t["input_mean"], t["input_scale"]).transform(x[ok])
        if "projection" in t:
            z = z @ t["projection"]
        z = torch.from_numpy(z.astype(np.float32))
        with torch.no_grad():
            for i, (w, b) in enumerate(self._layers):
                z = F.linear(z, w, b)
                if i < self.n_layers - 1:
                    z = torch.relu(z)
        y = z[:, 0].numpy().astype(np.float64) * t["target_scale"][0] + t["target_mean"][0]
        out[ok] = y.astype(np.float32)
        return out

    def apply(self, ds: xr.Dataset, *, name: str | None = None) -> xr.Dataset:
        """A new Dataset with the head's predictions beside the imagettes (what :func:`xwvnet.predict` runs).

        Parameters
        ----------
        ds : xarray.Dataset
            Imagettes with the head's features, made as the head's were (same encoder, same covariates).
        name : str, optional
            Name of the new variable; default ``<target>_predicted``.

        Returns
        -------
        xarray.Dataset
            ``ds`` plus ``<target>_predicted(imagette)`` (float32; lazy when an input is dask-backed; NaN where an
            input is not finite), with units and the head's provenance in its attrs.

        Raises
        ------
        ModelMismatchError
            A ``ValueError``, if a feature is missing, has another number of columns, or was made by another
            encoder (or from another image variable, or with other columns) than the head was fitted on.
        """
        image_variable = next(
            (i.get("image_variable") for f, i in zip(self.features, self.identities) if f == IMAGE_STATISTICS), None
        )
        missing = [f for f in self.features if f != IMAGE_STATISTICS and f not in ds.variables]
        if image_variable is not None and image_variable not in ds.data_vars:
            missing.append(f"{image_variable} (for {IMAGE_STATISTICS})")
        if missing:
            raise ModelMismatchError(
                f"the head of {self.target!r} reads {list(self.features)}, but the Dataset lacks "
                f"{missing}: give imagettes with the covariates the head was fitted on."
            )
        arrays, identities, widths = _inputs(ds, self.features, image_variable)
        for feature, fitted, now, w_fit, w_now in zip(self.features, self.identities, identities, self.widths, widths):
            differ = {k: (fitted[k], now[k]) for k in fitted if k in now and fitted[k] != now[k]}
            if w_fit != w_now or differ:
                what = (
                    f"{w_now} columns, the head was fitted on {w_fit}"
                    if w_fit != w_now
                    else "; ".join(f"{k} {b!r}, the head was fitted on {a!r}" for k, (a, b) in differ.items())
                )
                raise ModelMismatchError(
                    f"feature {feature!r} of the Dataset does not match the head of "
                    f"{self.target!r}: {what}. Embed and collocate as for the fit."
                )
        for x in arrays:
            _warn_if_embedding_again(x)
        if any(x.chunks is not None for x in arrays):
            arrays = [x.chunk({x.dims[1]: -1}) if x.ndim == 2 else x for x in arrays]
        out = xr.apply_ufunc(
            lambda *blocks: self.transform(_stack(*blocks)),
            *arrays,
            input_core_dims=[[x.dims[1]] if x.ndim == 2 else [] for x in arrays],
            dask="parallelized",
            output_dtypes=[np.float32],
        )
        encoder = next((i["encoder"] for i in self.identities if "encoder" in i), "unknown")
        attrs = {
            "long_name": f"{self.info.get('long_name', self.target)}, predicted by an {self.model} head",
            "head_model": self.model,
            "head_target": self.target,
            "head_features": ",".join(self.features),
            "head_n_train": int(self.info.get("n_train", -1)),
            "encoder": str(encoder),
            "xwvnet_version": __version__,
        }
        if self.info.get("units"):
            attrs["units"] = self.info["units"]
        return ds.assign({name or f"{self.target}{S.PREDICTED_SUFFIX}": out.assign_attrs(attrs)})

    def __repr__(self) -> str:
        return (
            f"Head(model={self.model!r}, target={self.target!r}, features={list(self.features)}, "
            f"inputs={self.n_features}, n_train={self.info.get('n_train', '?')}, "
            f"dropped={self.info.get('n_dropped', 0)})"
        )

    # --- files -------------------------------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write the head as one safetensors file: its tensors, and a JSON header in the file's metadata.

        safetensors holds raw tensors and a JSON header only: nothing in the file can run code when read.

        Parameters
        ----------
        path : str or os.PathLike
            The file to write (any suffix: nothing is appended).

        Returns
        -------
        pathlib.Path
            ``path``.
        """
        path = local_path(path, "a head")
        version = FORMAT_VERSION if "projection" in self.tensors else 1  # files without one stay readable by 1
        header = {
            "format": FORMAT,
            "format_version": version,
            "model": self.model,
            "target": self.target,
            "features": list(self.features),
            "widths": list(self.widths),
            "identities": [dict(i) for i in self.identities],
            "info": self.info,
        }
        safetensors.numpy.save_file(
            dict(self.tensors), str(path), metadata={FORMAT: json.dumps(header, default=_jsonable)}
        )
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Head:
        """Read a head written by :meth:`save` (a safetensors file: no pickle, no code runs).

        Parameters
        ----------
        path : str or os.PathLike
            A file written by :meth:`save`.

        Returns
        -------
        Head
            Predicting exactly as the head that was saved.

        Raises
        ------
        FileNotFoundError
            If there is no file at ``path``.
        HeadFileError
            A ``ValueError`` naming the file, if it is not an xwvnet head (not safetensors, no header of format
            ``xwvnet-head``), is damaged, or was written by a newer xwvnet.
        """
        path = local_path(path, "a head")
        if not path.is_file():
            raise InputNotFoundError(f"no head file at {path}: give the path written by Head.save.")
        hint = "Give a file written by Head.save (xwvnet), or save the head again."
        try:
            with safetensors.safe_open(str(path), framework="numpy") as fh:
                metadata = fh.metadata() or {}
                tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 (safe_open is no mapping)
        except Exception as err:  # safetensors raises its own error types (and OSError) on a damaged file
            raise HeadFileError(
                f"{path} is not an xwvnet head file, or is damaged: it is not a readable safetensors "
                f"file ({type(err).__name__}: {err}). {hint}"
            ) from err
        try:
            header = json.loads(metadata[FORMAT])
        except (KeyError, json.JSONDecodeError, RecursionError) as err:
            raise HeadFileError(f"{path} is not an xwvnet head file (no {FORMAT} header). {hint}") from err
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise HeadFileError(f"{path} is not an xwvnet head file (its header is not an {FORMAT} one). {hint}")
        version = header.get("format_version")
        if isinstance(version, bool) or not isinstance(version, int) or version > FORMAT_VERSION:
            raise HeadFileError(
                f"{path} is a head of format version {version}, but this xwvnet reads up to "
                f"{FORMAT_VERSION}: upgrade xwvnet to read it."
            )
        if not all(np.isfinite(t).all() for t in tensors.values()):
            raise HeadFileError(f"{path} is a damaged head file: tensors hold non-finite values. {hint}")
        try:
            return cls(
                model=header["model"],
                target=header["target"],
                features=tuple(header["features"]),
                widths=tuple(int(w) for w in header["widths"]),
                identities=tuple(dict(i) for i in header["identities"]),
                tensors=tensors,
                info=dict(header.get("info", {})),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise HeadFileError(f"{path} is a damaged head file ({type(err).__name__}: {err}). {hint}") from err


# --- fitting ---------------------------------------------------------------------------------------------------------
def fit_head(
    ds: xr.Dataset,
    target: str,
    *,
    features: str | Sequence[str] = (S.EMBEDDING,),
    model: str = "mlp",
    train: Selection | None = None,
    image_variable: str | None = None,
    hidden: Sequence[int] = (128, 64),
    components: int | Sequence[int | None] | None = (8, 16, 32),
    dropout: float = 0.0,
    ensemble: int = 5,
    validation: float = 0.2,
    max_epochs: int = 300,
    patience: int = 30,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    weight_decay: float = 1e-4,
    alphas: Sequence[float] = DEFAULT_ALPHAS,
    seed: int = 0,
) -> Head:
    """Fit a head of ``target`` on embeddings plus covariates (the Dataset is not changed).

    Imagettes whose target or any input is not finite are left out of the fit; their count is in
    ``head.info["n_dropped"]`` and a warning.

    Parameters
    ----------
    ds : xarray.Dataset
        Imagettes with the features and ``target`` (a number per imagette, e.g. from :func:`xwvnet.collocate`).
    target : str
        The variable to predict (``"hs"``, ``"wind_speed"``...).
    features : str or sequence of str, default ("embedding",)
        The inputs, side by side: variables or coordinates along ``imagette``, one number per imagette
        (``"incidence_angle"``) or a vector (``"embedding"``), and ``"image_statistics"``: the statistics of
        :func:`xwvnet.evaluation.baselines.image_features` of each imagette's valid pixels, computed here (lazily
        when the images are dask-backed) and again at prediction.
    model : {"mlp", "ridge"}, default "mlp"
        ``"mlp"``: a torch MLP (ReLU) on standardised inputs and target, AdamW, early stopping on a held-out
        split; ``"ridge"``: ``Pipeline([StandardScaler(), RidgeCV(alphas)])``, the linear probe on these inputs.
    train : str, sequence of str, numpy.ndarray or xarray.DataArray, optional
        The imagettes to fit on (see :func:`xwvnet.probe.training_mask`); all by default.
    image_variable : str, optional
        The image read for ``"image_statistics"``: ``quicklook`` by default, else ``sigma0``.
    hidden : sequence of int, default (128, 64)
        Widths of the MLP's hidden layers.
    components : int, None or sequence of them, default (8, 16, 32)
        Each input wider than the largest count here (an embedding of 512 or 2048 columns) is reduced to its
        first ``components`` principal components, whitened, computed on the standardised training imagettes (the
        validation ones included: no target is read); narrower inputs (covariates, the 24 image statistics) pass
        unchanged. With a few hundred or thousand labels, an MLP on every column of a wide embedding mostly fits
        noise. Several counts: the first ensemble member is fitted with each, and the one of lowest held-out error
        is kept for all members (``info["components"]``, None where no input is reduced; the held-out RMSE of
        each in ``info["components_validation_rmse"]``). The projection is saved with the head and applied at
        prediction. ``None`` reads every column.
    dropout : float, default 0.0
        Share of the MLP's inputs zeroed at random at each training step (input dropout, a regulariser; none at
        prediction). Off by default: early stopping, the reduction and the ensemble already regularise.
    ensemble : int, default 5
        MLPs fitted, each on its own seeded held-out split (member ``k`` uses seed ``seed + k`` for its split,
        initial weights and batch order); the head predicts their mean. Averaging lowers the variance that one
        small MLP has from its initial weights and its split; the members are saved side by side as one MLP.
    validation : float, default 0.2
        Fraction of the usable training imagettes held out for early stopping (a seeded
        :func:`xwvnet.probe.split`, one per ensemble member); a member is not fitted on its held-out imagettes.
    max_epochs : int, default 300
        Most passes over the training imagettes.
    patience : int, default 30
        Stop after this many epochs without a lower held-out error; the best epoch's weights are kept.
    batch_size : int, default 64
        Imagettes per optimiser step.
    learning_rate, weight_decay : float, default 1e-3, 1e-4
        AdamW's settings.
    alphas : sequence of float, optional
        Ridge penalties to choose from (``model="ridge"``).
    seed : int, default 0
        Seed of the held-out splits, the MLPs' initial weights, their input dropout and batch order: a seed gives
        the same head.

    Returns
    -------
    Head
        The fitted head; ``info`` holds counts (``n_train`` and ``n_validation`` of one member), the mean held-out
        RMSE of the members, their epochs and best epochs (MLP) or the penalty (ridge).

    Raises
    ------
    ValueError
        If ``target`` or a feature is missing or not numbers along ``imagette``, ``target`` is also a feature,
        an argument is out of range, or too few imagettes are usable.
    TrainingDivergedError
        If the MLP's loss becomes NaN or infinite (lower ``learning_rate``).

    Examples
    --------
    >>> features = ("embedding", "incidence_angle", "image_statistics")
    >>> head = xwvnet.fit_head(ds, "hs", features=features, train=~xwvnet.probe.split(ds))  # doctest: +SKIP
    >>> xwvnet.predict(ds, head)["hs_predicted"]  # doctest: +SKIP
    """
    names = _feature_names(features)
    if model not in MODELS:
        raise InvalidArgumentError(f"model must be one of {MODELS}, got {model!r}")
    if target not in ds.variables:
        raise InvalidDataError(
            f"no target {target!r} in the Dataset (variables: {sorted(map(str, ds.variables))})."
            + S.did_you_mean(target, ds.variables)
        )
    if target in names:
        raise InvalidArgumentError(f"the target {target!r} is also a feature: a head cannot read what it predicts")
    if infer_kind(ds[target]) != "regression":
        raise InvalidDataError(f"a head predicts a number per imagette, and {target!r} holds tags: use fit_probe.")
    hidden = tuple(int(h) for h in hidden)
    candidates = tuple(components) if isinstance(components, Sequence) else (components,)
    if not candidates or not all(
        c is None or isinstance(c, (int, np.integer)) and not isinstance(c, bool) for c in candidates
    ):
        raise InvalidArgumentError(f"components must be a count, None or a sequence of them, got {components!r}")
    candidates = tuple(dict.fromkeys(None if c is None else int(c) for c in candidates))
    counts = (max_epochs, patience, batch_size, ensemble, *hidden, *(c for c in candidates if c is not None))
    if not 0 < validation < 1 or not 0 <= dropout < 1 or min(counts) < 1:
        raise InvalidArgumentError(
            f"validation must be in (0, 1), dropout in [0, 1) and max_epochs, patience, batch_size, ensemble, "
            f"components and hidden widths >= 1; got validation={validation}, dropout={dropout}, "
            f"max_epochs={max_epochs}, patience={patience}, batch_size={batch_size}, ensemble={ensemble}, "
            f"components={components}, hidden={hidden}"
        )
    target_da = ds[target]
    if train is not None:
        ds = ds.isel({S.IMAGETTE: np.flatnonzero(training_mask(ds, train))})
    arrays, identities, widths = _inputs(ds, names, image_variable)
    for x in arrays:
        _warn_if_embedding_again(x)
    *values, y = dask.compute(*(x.data for x in arrays), ds[target].data)
    x = _stack(*values) if len(values) else np.empty((0, 0))
    y = np.asarray(y, dtype=np.float64)
    ok = np.isfinite(y) & np.isfinite(x).all(axis=1)
    n_dropped = int((~ok).sum())
    if n_dropped:
        warn(
            f"fit_head: {n_dropped} of {len(y)} imagettes left out of the fit of {target!r} (NaN target or NaN input)",
            XWVNetWarning,
        )
    if ok.sum() < 5:
        raise InvalidDataError(
            f"fit_head: only {int(ok.sum())} imagettes have a finite {target!r} and finite inputs; "
            "at least 5 are needed."
        )
    info: dict[str, Any] = {
        "xwvnet_version": __version__,
        "units": str(target_da.attrs.get("units", "")),
        "long_name": str(target_da.attrs.get("long_name", target)),
        "seed": int(seed),
        "n_dropped": n_dropped,
    }
    x, y = x[ok], y[ok]
    if model == "ridge":
        probe = _fit_regression(x, y, target, "+".join(names), alphas, {})
        tensors = {"mean": probe.mean, "scale": probe.scale, "coef": probe.coef, "intercept": probe.intercept}
        info.update(
            n_train=int(ok.sum()),
            n_validation=0,
            alpha=probe.info["alpha"],
            model="Pipeline(StandardScaler, RidgeCV leave-one-out)",
        )
    else:
        kept = xr.Dataset(coords={S.IMAGETTE: ds[S.IMAGETTE].isel({S.IMAGETTE: np.flatnonzero(ok)})})
        held = [split(kept, test_size=validation, seed=seed + k) for k in range(ensemble)]
        settings = _MLPSettings(hidden, dropout, max_epochs, patience, batch_size, learning_rate, weight_decay)
        tensors, fit_info = _fit_mlp(x, y, widths, candidates, held, settings, seed)
        info.update(
            n_train=int((~held[0]).sum()),
            n_validation=int(held[0].sum()),
            hidden=list(hidden),
            dropout=dropout,
            ensemble=ensemble,
            **fit_info,
            model="MLP (ReLU) on standardised inputs (wide ones reduced to whitened principal components) "
            "and target, input dropout, AdamW, early stopping on a held-out split; an ensemble of "
            "such MLPs, each with its own held-out split, averaged",
        )
    return Head(model, target, names, tuple(widths), tuple(identities), tensors, info)


@dataclass(frozen=True)
class _MLPSettings:
    hidden: tuple[int, ...]
    dropout: float
    max_epochs: int
    patience: int
    batch_size: int
    learning_rate: float
    weight_decay: float


def _principal_axes(
    z: np.ndarray, widths: Sequence[int], components: Sequence[int | None]
) -> list[tuple[np.ndarray, np.ndarray] | None]:
    """Per input, its principal axes and singular values on the standardised inputs ``z`` if it is wider than every
    count in ``components`` (the inputs that are reduced), else None."""
    counts = [c for c in components if c is not None]
    axes: list[tuple[np.ndarray, np.ndarray] | None] = []
    start = 0
    for width in widths:
        if counts and width > max(counts):
            _, sv, vt = np.linalg.svd(z[:, start : start + width], full_matrices=False)
            axes.append((vt, sv))
        else:
            axes.append(None)
        start += width
    return axes


def _projection(
    axes: list[tuple[np.ndarray, np.ndarray] | None], widths: Sequence[int], components: int | None, n: int
) -> np.ndarray | None:
    """Standardised inputs (n, sum(widths)) -> the columns the MLP reads: each input with principal ``axes``
    becomes its first ``components`` principal components, whitened (unit variance over the n training rows); the
    others pass unchanged. None for ``components=None`` or when no input is reduced."""
    if components is None or all(a is None for a in axes):
        return None
    blocks = []
    for width, pca in zip(widths, axes):
        block = np.eye(width)
        if pca is not None:
            vt, sv = pca
            keep = min(components, int((sv > sv[0] * 1e-6).sum()))  # never amplify directions of no variance
            block = vt[:keep].T / (sv[:keep] / np.sqrt(n))
        blocks.append(block)
    projection = np.zeros((sum(widths), sum(b.shape[1] for b in blocks)))
    row = col = 0
    for block in blocks:
        projection[row : row + block.shape[0], col : col + block.shape[1]] = block
        row, col = row + block.shape[0], col + block.shape[1]
    return projection


def _fit_mlp(
    x: np.ndarray,
    y: np.ndarray,
    widths: Sequence[int],
    components: tuple[int | None, ...],
    held: list[np.ndarray],
    settings: _MLPSettings,
    seed: int,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Standardise (and project) the inputs, train one MLP per held-out split (member ``k`` seeded ``seed + k``),
    each stopped early on its split; the members side by side as one MLP's tensors, and how the fit went.

    With several ``components``, the first member is fitted with each, and the one of lowest held-out error is
    kept for all members.
    """
    import torch
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x)
    z = scaler.transform(x)
    axes = _principal_axes(z, widths, components)
    if all(a is None for a in axes):  # no input is reduced: every candidate is the same MLP
        components = (None,)
    y_mean, y_scale = float(y.mean()), float(y.std()) or 1.0
    yt = torch.from_numpy(((y - y_mean) / y_scale).astype(np.float32))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # steps this small run fastest on one thread (several only wait on each other)
    try:
        tried = {}
        for candidate in components:  # the first member with each candidate; the best one is kept for all
            projection = _projection(axes, widths, candidate, len(z))
            zt = torch.from_numpy((z if projection is None else z @ projection).astype(np.float32))
            tried[candidate] = (projection, zt, _fit_member(zt, yt, held[0], settings, seed))
        chosen = min(tried, key=lambda c: tried[c][2][2])
        projection, zt, first = tried[chosen]
        fits = [first] + [_fit_member(zt, yt, rows, settings, seed + k) for k, rows in enumerate(held) if k]
    finally:
        torch.set_num_threads(threads)
    tensors: dict[str, np.ndarray] = {
        "input_mean": scaler.mean_,
        "input_scale": scaler.scale_,
        "target_mean": np.array([y_mean]),
        "target_scale": np.array([y_scale]),
    }
    if projection is not None:
        tensors["projection"] = projection
    for i, (weight, bias) in enumerate(_side_by_side([fit[0] for fit in fits])):
        tensors[f"layer{i}.weight"], tensors[f"layer{i}.bias"] = weight, bias
    info: dict[str, Any] = {"components": chosen, "mlp_inputs": int(zt.shape[1])}
    if len(tried) > 1:
        info["components_validation_rmse"] = {str(c): float(np.sqrt(t[2][2]) * y_scale) for c, t in tried.items()}
    return tensors, {
        **info,
        "epochs": [f[1] + 1 for f in fits],
        "best_epoch": [f[3] + 1 for f in fits],
        "validation_rmse": float(np.sqrt(np.mean([f[2] for f in fits])) * y_scale),
    }


def _side_by_side(members: list[list[tuple[np.ndarray, np.ndarray]]]) -> list[tuple[np.ndarray, np.ndarray]]:
    """MLPs of the same shape as one MLP that outputs their mean: first layers stacked, hidden layers block-diagonal,
    the output layer's weights and bias averaged over members."""
    if len(members) == 1:
        return members[0]
    k, layers = len(members), []
    for i in range(len(members[0])):
        weights, biases = [m[i][0] for m in members], [m[i][1] for m in members]
        if i == 0:
            weight = np.concatenate(weights, axis=0)
        elif i == len(members[0]) - 1:
            weight = np.concatenate(weights, axis=1)
        else:
            weight = np.zeros((sum(w.shape[0] for w in weights), sum(w.shape[1] for w in weights)), np.float32)
            row = col = 0
            for w in weights:
                weight[row : row + w.shape[0], col : col + w.shape[1]] = w
                row, col = row + w.shape[0], col + w.shape[1]
        if i == len(members[0]) - 1:
            weight, bias = weight / np.float32(k), np.mean(biases, axis=0, dtype=np.float64).astype(np.float32)
        else:
            bias = np.concatenate(biases)
        layers.append((weight.astype(np.float32), bias.astype(np.float32)))
    return layers


def _fit_member(
    zt: Any, yt: Any, held: np.ndarray, settings: _MLPSettings, seed: int
) -> tuple[list[tuple[np.ndarray, np.ndarray]], int, float, int]:
    """One MLP trained on the rows of (zt, yt) not ``held``, stopped early on the ``held`` ones: its best layers,
    last epoch, best held-out MSE and its epoch."""
    import torch

    fit, val = torch.from_numpy(np.flatnonzero(~held)), torch.from_numpy(np.flatnonzero(held))
    xt, yt, xvt, yvt = zt[fit], yt[fit], zt[val], yt[val]

    sizes = (xt.shape[1], *settings.hidden, 1)
    with torch.random.fork_rng(devices=[]):  # seeded initial weights; the caller's generator is left as it was
        torch.manual_seed(seed)
        layers = [torch.nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])]
    dropout = torch.nn.Dropout(settings.dropout)

    def forward(z: Any, training: bool = False) -> Any:
        if training and settings.dropout:
            z = dropout(z)
        for i, layer in enumerate(layers):
            z = layer(z)
            if i < len(layers) - 1:
                z = torch.relu(z)
        return z[:, 0]

    params = [p for layer in layers for p in layer.parameters()]
    optimiser = torch.optim.AdamW(params, lr=settings.learning_rate, weight_decay=settings.weight_decay)
    order = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):  # dropout draws from the global generator: seeded, then restored
        torch.manual_seed(seed)
        epoch, best, best_epoch, state = _epochs(forward, optimiser, params, xt, yt, xvt, yvt, order, settings)
    return ([(state[2 * i].numpy(), state[2 * i + 1].numpy()) for i in range(len(layers))], epoch, best, best_epoch)


def _epochs(
    forward: Any,
    optimiser: Any,
    params: list[Any],
    xt: Any,
    yt: Any,
    xvt: Any,
    yvt: Any,
    order: Any,
    settings: _MLPSettings,
) -> tuple[int, float, int, list[Any]]:
    """The training epochs with early stopping: the last epoch, the best held-out MSE, its epoch and weights."""
    import torch
    import torch.nn.functional as F

    best, best_epoch, state = math.inf, -1, [p.detach().clone() for p in params]
    epoch = 0
    for epoch in range(settings.max_epochs):
        for rows in torch.randperm(len(yt), generator=order).split(settings.batch_size):
            optimiser.zero_grad()
            loss = F.mse_loss(forward(xt[rows], training=True), yt[rows])
            if not torch.isfinite(loss):
                raise TrainingDivergedError(
                    f"fit_head: the MLP's loss became {loss.item()} at epoch {epoch}: lower learning_rate."
                )
            loss.backward()
            optimiser.step()
        with torch.no_grad():
            held = F.mse_loss(forward(xvt), yvt).item()
        if held < best:
            best, best_epoch, state = held, epoch, [p.detach().clone() for p in params]
        elif epoch - best_epoch >= settings.patience:
            break
    return epoch, best, best_epoch, state
