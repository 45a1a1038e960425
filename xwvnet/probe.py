"""Linear probes on frozen embeddings: scikit-learn pipelines, predictions beside the data, saved without pickle.

A probe judges an encoder the way the WV-Net paper does: a linear model on standardised embedding features, its
regularisation chosen by cross-validation. A number per imagette (``hs``, ``t2m``) gets
``Pipeline([StandardScaler(), RidgeCV()])``; tags (``labels``) get one ``Pipeline([StandardScaler(),
LogisticRegressionCV()])`` per tag, since each tag has its own known (not ``-1``) imagettes; a class per imagette
(strings, or integers with CF ``flag_values``/``flag_meanings``: TenGeoP's layout) gets one multinomial
``Pipeline([StandardScaler(), LogisticRegressionCV()])``. Once fitted, a probe
is only numbers (per output: scaler mean and scale, coefficients, intercept). It is saved as an ``.npz`` of those
arrays plus a JSON header and read back with ``allow_pickle=False``; it predicts through scikit-learn estimators
rebuilt from the same numbers, so predictions before and after a save are identical.

Metrics, probe scores and learning curves live in :mod:`xwvnet.evaluation`.
"""

from __future__ import annotations

import inspect
import json
import os
import warnings
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import xarray as xr
from scipy.special import logit
from sklearn import config_context
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV, Ridge, RidgeCV
from sklearn.model_selection import ShuffleSplit, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from . import schema as S
from ._files import local_path
from ._version import __version__
from .errors import (
    InputNotFoundError,
    InvalidArgumentError,
    InvalidDataError,
    InvalidTypeError,
    ModelError,
    ModelMismatchError,
    XWVNetWarning,
    warn,
)


class _Applicable(Protocol):
    """What :func:`predict` applies besides a Probe: a fitted model with its own ``apply`` (a
    :class:`xwvnet.heads.Head`; heads.py sits below this module, so it is named by what it does)."""

    tensors: Any

    def apply(self, ds: xr.Dataset, *, name: str | None = None) -> xr.Dataset:
        """Predictions beside the imagettes."""


FORMAT = "xwvnet-probe"
#: 2: scaler mean and scale per output, shape (outputs, features); 1 (still read): one shared scaler, (features,)
FORMAT_VERSION = 2
KINDS = ("regression", "multilabel", "multiclass")
DEFAULT_ALPHAS = tuple(float(a) for a in np.logspace(-3, 6, 19))
DEFAULT_CS = tuple(float(c) for c in np.logspace(-4, 1, 6))

#: What selects imagettes: ids, a boolean mask (array or DataArray along ``imagette``), or a boolean variable's name.
Selection = str | Sequence[str] | np.ndarray | xr.DataArray


class ProbeFileError(ModelError, ValueError):
    """A file given to :meth:`Probe.load` is not a probe saved by xwvnet (or was saved by a newer xwvnet)."""


def _scaler(mean: np.ndarray, scale: np.ndarray) -> StandardScaler:
    """A fitted StandardScaler holding ``mean`` and ``scale`` (what ``fit`` would have set)."""
    scaler = StandardScaler()
    scaler.mean_, scaler.scale_, scaler.var_ = mean, scale, scale**2
    scaler.n_features_in_ = mean.shape[0]
    return scaler


def _final(kind: str, coef: np.ndarray, intercept: np.ndarray) -> Ridge | LogisticRegression:
    """A fitted Ridge (regression), binary LogisticRegression (one tag, ``coef`` (1, features)) or multinomial one
    (classes, ``coef`` (classes, features); two classes stored as ``-w/2, +w/2`` are the binary model of ``w``)."""
    if kind == "regression":
        model: Ridge | LogisticRegression = Ridge()
        model.coef_, model.intercept_ = coef[0], float(intercept[0])
    elif kind == "multiclass":
        model = LogisticRegression()
        if coef.shape[0] == 2:  # softmax of (-z/2, z/2) is the sigmoid of z: scikit-learn's binary layout
            model.coef_, model.intercept_ = coef[1:] - coef[:1], intercept[1:] - intercept[:1]
        else:
            model.coef_, model.intercept_ = coef, intercept
        model.classes_ = np.arange(coef.shape[0])
    else:
        model = LogisticRegression()
        model.coef_, model.intercept_, model.classes_ = coef, intercept, np.array([0, 1])
    model.n_features_in_ = coef.shape[1]
    return model


@dataclass(frozen=True, eq=False)
class Probe:
    """A fitted linear probe: per output, ``(x - mean) / scale @ coef + intercept`` (a logistic link for tags).

    The arrays define the probe; :attr:`pipelines` rebuilds the scikit-learn estimators from them, and every
    prediction goes through those, fitted or loaded alike.

    Parameters
    ----------
    kind : {"regression", "multilabel", "multiclass"}
        Ridge regression of one number, one logistic model per tag, or one multinomial logistic model of a class.
    target : str
        The variable the probe was fitted on (``"hs"``, ``"labels"``...).
    features : str
        The feature variable it reads (``"embedding"``).
    outputs : tuple of str
        Output names: ``(target,)`` for regression, the tag codes for tags, the class names for a class.
    mean, scale : numpy.ndarray
        Scaler mean and scale, shape (outputs, features).
    coef : numpy.ndarray
        Coefficients on the standardised features, shape (outputs, features).
    intercept : numpy.ndarray
        Intercepts, shape (outputs,).
    info : dict, optional
        Provenance and fit diagnostics (counts, chosen regularisation, the embedding's encoder attrs); saved.

    Raises
    ------
    ValueError
        If ``kind`` is unknown or the arrays' shapes disagree.

    Examples
    --------
    >>> probe = fit_probe(ds, "hs")  # doctest: +SKIP
    >>> probe.save("hs.probe"); Probe.load("hs.probe")  # doctest: +SKIP
    """

    kind: str
    target: str
    features: str
    outputs: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InvalidArgumentError(f"probe kind must be one of {KINDS}, got {self.kind!r}")
        for name in ("mean", "scale", "coef", "intercept"):  # one dtype and layout: rebuilt models compute alike
            object.__setattr__(self, name, np.ascontiguousarray(getattr(self, name), dtype=np.float64))
        if self.coef.ndim != 2:
            raise InvalidArgumentError(f"probe coef must be (outputs, features), got shape {self.coef.shape}")
        n_out, n_feat = self.coef.shape
        if self.mean.shape != self.coef.shape or self.scale.shape != self.coef.shape or self.intercept.shape != (
                n_out,):
            raise InvalidArgumentError(
                f"inconsistent probe arrays: coef {self.coef.shape}, mean {self.mean.shape}, "
                f"scale {self.scale.shape}, intercept {self.intercept.shape}"
            )
        if len(self.outputs) != n_out:
            raise InvalidArgumentError(f"probe has {n_out} outputs but {len(self.outputs)} output names")
        if self.kind == "regression" and n_out != 1:
            raise InvalidArgumentError(f"a regression probe has one output, got {n_out}")
        if self.kind == "multiclass" and n_out < 2:
            raise InvalidArgumentError(f"a multi-class probe has at least two classes, got {n_out}")

    @property
    def n_features(self) -> int:
        """Number of features the probe reads.

        Returns
        -------
        int
        """
        return int(self.coef.shape[1])

    @cached_property
    def pipelines(self) -> tuple[Pipeline, ...]:
        """One fitted ``Pipeline([StandardScaler, Ridge | LogisticRegression])`` per output, built from the arrays.

        Returns
        -------
        tuple of sklearn.pipeline.Pipeline
            In the order of :attr:`outputs`; a multi-class probe has one, for all its classes.
        """
        if self.kind == "multiclass":
            return (Pipeline([("scale", _scaler(self.mean[0], self.scale[0])),
                              ("linear", _final(self.kind, self.coef, self.intercept))]),)
        return tuple(
            Pipeline([("scale", _scaler(self.mean[j], self.scale[j])),
                      ("linear", _final(self.kind, self.coef[j:j + 1], self.intercept[j:j + 1]))])
            for j in range(len(self.outputs))
        )

    def _apply(self, x: np.ndarray, method: str) -> np.ndarray:
        """``method`` of each pipeline on the finite rows of ``x``, NaN on the others, as float32 (n, outputs)."""
        x = np.asarray(x, dtype=np.float64)
        out = np.full((x.shape[0], len(self.outputs)), np.nan, dtype=np.float32)
        ok = np.isfinite(x).all(axis=1)  # an imagette that failed to embed gets NaN, the others are predicted
        if not ok.any():
            return out
        rows = np.flatnonzero(ok)
        # standardised rows are read once per output: in slices of ~16 MB they stay in cache for all outputs
        step = max(1, (1 << 21) // max(1, x.shape[1]))
        with config_context(assume_finite=True):  # rows are finite: spare sklearn a scan of them per estimator
            for start in range(0, rows.size, step):
                part = rows[start:start + step]
                block = x[part[0]:part[-1] + 1] if part[-1] - part[0] + 1 == part.size else x[part]
                if self.kind == "multiclass":  # one model for every class
                    values = getattr(self.pipelines[0], method)(block).reshape(part.size, -1)
                    out[part, :values.shape[1]] = values  # a binary decision is one column
                    continue
                for group in self._scaler_groups:  # outputs with one scaler (tags known alike): standardise once
                    z = self.pipelines[group[0]][:-1].transform(block)
                    for j in group:
                        values = getattr(self.pipelines[j][-1], method)(z)
                        out[part, j] = values[:, 1] if method == "predict_proba" else values
        return out

    @cached_property
    def _scaler_groups(self) -> list[list[int]]:
        """Outputs grouped by identical scaler arrays (same result as each pipeline alone, one transform)."""
        groups: dict[bytes, list[int]] = {}
        for j in range(len(self.outputs)):
            groups.setdefault(self.mean[j].tobytes() + self.scale[j].tobytes(), []).append(j)
        return list(groups.values())

    def decision(self, x: np.ndarray) -> np.ndarray:
        """The linear output of each output: predictions for regression, logits for tags.

        Parameters
        ----------
        x : numpy.ndarray
            Features, shape (n, features).

        Returns
        -------
        numpy.ndarray
            float32, shape (n, outputs); NaN for rows with a non-finite feature.
        """
        if self.kind == "multiclass" and len(self.outputs) == 2:  # the binary model gives one logit: (-z/2, z/2)
            z = self._apply(x, "decision_function")[:, :1]
            return np.concatenate([-z / 2, z / 2], axis=1)
        return self._apply(x, "predict" if self.kind == "regression" else "decision_function")

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Predictions: values for regression, probabilities of each tag for tags, of each class for a class.

        Parameters
        ----------
        x : numpy.ndarray
            Features, shape (n, features).

        Returns
        -------
        numpy.ndarray
            float32, shape (n, outputs); NaN for rows with a non-finite feature.
        """
        return self._apply(x, "predict" if self.kind == "regression" else "predict_proba")

    def __repr__(self) -> str:
        counts = self.info.get("n_train", "?")
        return (f"Probe(kind={self.kind!r}, target={self.target!r}, features={self.n_features}, "
                f"outputs={len(self.outputs)}, n_train={counts}, dropped={self.info.get('n_dropped', 0)})")

    def save(self, path: str | os.PathLike) -> Path:
        """Write the probe as an ``.npz`` of arrays plus a JSON header, with no pickle in it.

        Parameters
        ----------
        path : str or os.PathLike
            The file to write (any suffix: nothing is appended).

        Returns
        -------
        pathlib.Path
            ``path``.
        """
        path = local_path(path, "a probe")
        header = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "kind": self.kind,
            "target": self.target,
            "features": self.features,
            "outputs": list(self.outputs),
            "info": self.info,
        }
        with open(path, "wb") as fh:
            np.savez(
                fh,
                header=np.array(json.dumps(header, default=_jsonable)),
                mean=self.mean,
                scale=self.scale,
                coef=self.coef,
                intercept=self.intercept,
            )
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Probe:
        """Read a probe written by :meth:`save` (``allow_pickle=False``: a file cannot run code).

        Parameters
        ----------
        path : str or os.PathLike
            A file written by :meth:`save`.

        Returns
        -------
        Probe
            Predicting exactly as the probe that was saved.

        Raises
        ------
        FileNotFoundError
            If there is no file at ``path``.
        ProbeFileError
            A ``ValueError`` naming the file, if it is not an xwvnet probe (not a zip/npz archive, no header, a
            header that is not a JSON object of format ``xwvnet-probe``), is damaged (truncated, a bad checksum,
            header fields missing or of the wrong type, arrays missing, not numbers or not finite), or was written
            by a newer xwvnet.
        """
        path = local_path(path, "a probe")
        if not path.is_file():
            raise InputNotFoundError(f"no probe file at {path}" + (" (a folder)" if path.is_dir() else "")
                                     + ": give the path written by Probe.save.")
        hint = "Give a file written by Probe.save (xwvnet), or save the probe again."
        if not zipfile.is_zipfile(path):
            raise ProbeFileError(f"{path} is not an xwvnet probe file, or is damaged (truncated?): it is not a "
                                 f"readable .npz archive. {hint}")
        try:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in npz.files}
        except Exception as err:  # zipfile, zlib and numpy raise many types on a damaged archive: all mean the same
            raise ProbeFileError(f"{path} is not an xwvnet probe file, or is damaged: its .npz archive cannot be read "
                                 f"({type(err).__name__}: {err}). {hint}") from err
        if "header" not in arrays:
            raise ProbeFileError(f"{path} is not an xwvnet probe file (no probe header; found {sorted(arrays)}). "
                                 f"{hint}")
        try:
            header = json.loads(str(arrays["header"]))
        except (json.JSONDecodeError, RecursionError) as err:
            raise ProbeFileError(f"{path} is not an xwvnet probe file, or is damaged (its header is not JSON). "
                                 f"{hint}") from err
        if not isinstance(header, dict):
            raise ProbeFileError(f"{path} is not an xwvnet probe file, or is damaged (its header is a JSON "
                                 f"{type(header).__name__}, expected an object). {hint}")
        if header.get("format") != FORMAT:
            raise ProbeFileError(f"{path} is not an xwvnet probe file (format {header.get('format')!r}). {hint}")
        version = header.get("format_version")
        if isinstance(version, bool) or not isinstance(version, int) or version > FORMAT_VERSION:
            raise ProbeFileError(
                f"{path} is a probe of format version {version}, but this xwvnet reads up to {FORMAT_VERSION}: "
                "upgrade xwvnet to read it."
            )
        _check_header(path, header, hint)
        missing = [n for n in ("mean", "scale", "coef", "intercept") if n not in arrays]
        if missing:
            raise ProbeFileError(f"{path} is a damaged probe file: arrays {missing} are missing. {hint}")
        odd = [n for n in ("mean", "scale", "coef", "intercept") if arrays[n].dtype.kind not in "fiu"]
        if odd:
            raise ProbeFileError(f"{path} is a damaged probe file: arrays {odd} are not numbers. {hint}")
        coef = arrays["coef"]
        mean, scale = arrays["mean"], arrays["scale"]
        if mean.ndim == 1 and coef.ndim == 2:  # format 1: one scaler shared by every output
            mean, scale = np.tile(mean, (coef.shape[0], 1)), np.tile(scale, (coef.shape[0], 1))
        try:
            probe = cls(kind=header["kind"], target=header["target"], features=header["features"],
                        outputs=tuple(header["outputs"]), mean=mean, scale=scale, coef=coef,
                        intercept=arrays["intercept"], info=header.get("info", {}))
        except ValueError as err:
            raise ProbeFileError(f"{path} is a damaged probe file ({err}). {hint}") from err
        bad = [n for n in ("mean", "scale", "coef", "intercept") if not np.isfinite(getattr(probe, n)).all()]
        if bad or not (probe.scale > 0).all():
            raise ProbeFileError(f"{path} is a damaged probe file: arrays {bad or ['scale']} hold non-finite values "
                                 f"{'' if bad else 'or zeros '}that no fit produces. {hint}")
        return probe


def _check_header(path: Path, header: dict[str, Any], hint: str) -> None:
    """Every header field a probe needs is there and of the right type (else the file is damaged)."""
    expected = {"kind": str, "target": str, "features": str, "outputs": list}
    missing = [k for k in expected if k not in header]
    if missing:
        raise ProbeFileError(f"{path} is not a complete xwvnet probe file: its header lacks {missing}. It is "
                             f"damaged or was not written by Probe.save. {hint}")
    wrong = [f"{k} ({type(header[k]).__name__}, expected {t.__name__})" for k, t in expected.items()
             if not isinstance(header[k], t)]
    if isinstance(header["outputs"], list) and not all(isinstance(o, str) for o in header["outputs"]):
        wrong.append("outputs (not all strings)")
    if not isinstance(header.get("info", {}), dict):
        wrong.append(f"info ({type(header['info']).__name__}, expected dict)")
    if wrong:
        raise ProbeFileError(f"{path} is a damaged probe file: header fields of the wrong type: {wrong}. {hint}")


def _jsonable(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


# --- selecting imagettes ---------------------------------------------------------------------------------------------
def _features(ds: xr.Dataset, features: str) -> xr.DataArray:
    if features not in ds.data_vars:
        raise InvalidDataError(
            f"no {features!r} variable to probe: found {sorted(map(str, ds.data_vars))}. Embed the imagettes first "
            "(ds.wvnet.embed(...) or xwvnet.evaluation.image_statistics(ds))."
        )
    x = ds[features]
    if x.ndim != 2 or x.dims[0] != S.IMAGETTE:
        raise InvalidDataError(f"{features!r} must have dims ({S.IMAGETTE!r}, {S.FEATURE!r}), found {x.dims}")
    return x


def infer_kind(target: xr.DataArray) -> str:
    """The probe kind a target calls for.

    Parameters
    ----------
    target : xarray.DataArray
        The variable to probe.

    Returns
    -------
    str
        ``"multilabel"`` for (imagette, label) tags; ``"multiclass"`` for a class per imagette (strings, or integers
        with a CF ``flag_values`` or ``flag_meanings`` attribute); ``"regression"`` for another number per imagette.

    Raises
    ------
    ValueError
        If ``target`` is none of these.
    """
    if target.ndim == 2 and S.LABEL in target.dims:
        return "multilabel"
    if target.dims == (S.IMAGETTE,) and (target.dtype.kind in "OUS" or (
            target.dtype.kind in "iu" and ("flag_values" in target.attrs or "flag_meanings" in target.attrs))):
        return "multiclass"
    if target.dims == (S.IMAGETTE,) and target.dtype.kind in "fiu":
        return "regression"
    raise InvalidDataError(
        f"cannot probe {target.name!r} with dims {target.dims} and dtype {target.dtype}: expected a number per "
        f"imagette (dims ({S.IMAGETTE!r},)) for regression, a class per imagette (strings, or integers with "
        f"flag_values) or 0/1 tags with dims ({S.IMAGETTE!r}, {S.LABEL!r})."
    )


def training_mask(ds: xr.Dataset, train: Selection) -> np.ndarray:
    """A boolean mask over ``imagette`` from ids, a boolean mask, or the name of a boolean variable.

    Parameters
    ----------
    ds : xarray.Dataset
        The imagettes.
    train : str, sequence of str, numpy.ndarray or xarray.DataArray
        Imagette ids; a boolean array of ``ds.sizes["imagette"]`` values; a boolean DataArray along ``imagette``
        (aligned by id, missing ids are False); or the name of such a variable of ``ds``.

    Returns
    -------
    numpy.ndarray
        bool, one value per imagette of ``ds``.

    Raises
    ------
    ValueError
        If a boolean array has the wrong length or an id is not an imagette of ``ds``.
    """
    if isinstance(train, str):
        train = ds[train]
    if isinstance(train, xr.DataArray) and train.dtype == bool:
        return np.asarray(train.reindex({S.IMAGETTE: ds[S.IMAGETTE]}, fill_value=False).values, dtype=bool)
    values = np.asarray(train)
    if values.dtype == bool:
        if values.shape != (ds.sizes[S.IMAGETTE],):
            raise InvalidArgumentError(
                f"a boolean training mask needs {ds.sizes[S.IMAGETTE]} values, got shape {values.shape}"
            )
        return values
    ids = ds[S.IMAGETTE].values.astype(str)
    wanted = values.astype(str)
    unknown = np.setdiff1d(wanted, ids)
    if unknown.size:
        raise InvalidArgumentError(
            f"{unknown.size} training id(s) are not imagettes of the Dataset, e.g. {unknown[:3].tolist()}"
        )
    return np.isin(ids, wanted)


def split(ds: xr.Dataset, *, test_size: float = 0.3, seed: int = 0) -> np.ndarray:
    """A seeded random test set, drawn by scikit-learn's ``ShuffleSplit``.

    Parameters
    ----------
    ds : xarray.Dataset
        The imagettes.
    test_size : float, default 0.3
        Fraction of imagettes in the test set (rounded; at least 1, and at least 1 imagette is left to train on).
    seed : int, default 0
        Random state of the split: the same seed gives the same test set.

    Returns
    -------
    numpy.ndarray
        bool over ``imagette``, True for the test imagettes.

    Raises
    ------
    ValueError
        If ``test_size`` is not in (0, 1).

    Examples
    --------
    >>> test = split(ds, test_size=0.3, seed=0)  # doctest: +SKIP
    >>> probe = fit_probe(ds, "hs", train=~test)  # doctest: +SKIP
    """
    n = ds.sizes[S.IMAGETTE]
    if not 0 < test_size < 1:
        raise InvalidArgumentError(f"test_size must be a fraction in (0, 1), got {test_size}")
    test = np.zeros(n, dtype=bool)
    n_test = min(n - 1, max(1, int(round(test_size * n))))
    if n_test < 1:  # a single imagette: nothing can be held out
        return test
    _, rows = next(ShuffleSplit(n_splits=1, test_size=n_test, random_state=seed).split(np.empty((n, 1))))
    test[rows] = True
    return test


# --- fitting ---------------------------------------------------------------------------------------------------------
def _training_rows(ds: xr.Dataset, target: str, features: str,
                   train: Selection | None) -> tuple[np.ndarray, np.ndarray]:
    """Loaded features and target of the training imagettes (``train``: a selection, None for all)."""
    S.require(ds, [target], "fit_probe")
    x = _features(ds, features)
    if train is not None:
        ds = ds.isel({S.IMAGETTE: np.flatnonzero(training_mask(ds, train))})
        x = ds[features]
    y = ds[target]
    if y.ndim == 2:
        y = y.transpose(S.IMAGETTE, S.LABEL)
    return np.asarray(x.values, dtype=np.float64), np.asarray(y.values)


def fit_probe(
    ds: xr.Dataset,
    target: str,
    *,
    kind: str = "auto",
    features: str = S.EMBEDDING,
    train: Selection | None = None,
    alphas: Sequence[float] = DEFAULT_ALPHAS,
    Cs: Sequence[float] = DEFAULT_CS,
    cv: int = 5,
    seed: int = 0,
    max_iter: int = 500,
) -> Probe:
    """Fit a linear probe of ``target`` on the embedding features (the Dataset is not changed).

    Imagettes whose target is NaN (or whose tags are all unknown, ``-1``; or whose class is empty, None, NaN or a
    negative integer) or whose features hold NaN are left out of the fit; their count is in
    ``probe.info["n_dropped"]`` and a warning.

    Parameters
    ----------
    ds : xarray.Dataset
        Imagettes with ``features`` (imagette, feature) and ``target``.
    target : str
        A number per imagette (``"hs"``), 0/1/-1 tags (imagette, label) (``"labels"``) or a class per imagette.
    kind : {"auto", "regression", "multilabel", "multiclass"}, default "auto"
        ``"regression"``: ``Pipeline([StandardScaler(), RidgeCV(alphas)])`` (penalty by leave-one-out CV);
        ``"multilabel"``: per tag ``Pipeline([StandardScaler(), LogisticRegressionCV(Cs)])`` (``C`` by ``cv``-fold
        AUROC; a tag seen fewer than twice as 0 or as 1 predicts its smoothed prevalence); ``"multiclass"``: one
        multinomial ``Pipeline([StandardScaler(), LogisticRegressionCV(Cs)])`` (``C`` by stratified ``cv``-fold
        accuracy); ``"auto"``: see :func:`infer_kind`.
    features : str, default "embedding"
        The feature variable.
    train : str, sequence of str, numpy.ndarray or xarray.DataArray, optional
        The imagettes to fit on (see :func:`training_mask`); all by default.
    alphas : sequence of float, optional
        Ridge penalties to choose from.
    Cs : sequence of float, optional
        Inverse logistic penalties to choose from.
    cv : int, default 5
        Folds of the logistic cross-validation (fewer when a tag is rare).
    seed : int, default 0
        Random state of the stratified folds.
    max_iter : int, default 500
        Iterations of the logistic solver.

    Returns
    -------
    Probe
        The fitted probe; ``info`` holds counts, the chosen penalties and the embedding's encoder attrs.

    Raises
    ------
    ValueError
        If ``target`` or ``features`` is missing, ``kind`` is unknown, or too few imagettes are usable.

    Examples
    --------
    >>> test = xwvnet.probe.split(ds, seed=0)  # doctest: +SKIP
    >>> probe = xwvnet.fit_probe(ds, "hs", train=~test)  # doctest: +SKIP
    >>> xwvnet.predict(ds, probe)["hs_predicted"]  # doctest: +SKIP
    """
    if target not in ds.variables:
        raise InvalidDataError(f"no target {target!r} in the Dataset (variables: {sorted(map(str, ds.variables))})."
                               + S.did_you_mean(target, ds.variables))
    target_da = ds[target]
    kind = infer_kind(target_da) if kind == "auto" else kind
    if kind not in KINDS:
        raise InvalidArgumentError(f"kind must be 'auto' or one of {KINDS}, got {kind!r}")
    x, y = _training_rows(ds, target, features, train)
    provenance = {k: v for k, v in ds[features].attrs.items() if isinstance(v, str | int | float)}
    info: dict[str, Any] = {
        "xwvnet_version": __version__,
        "embedding_attrs": provenance,
        "units": str(target_da.attrs.get("units", "")),
        "long_name": str(target_da.attrs.get("long_name", target)),
        "seed": int(seed),
    }
    if kind == "regression":
        return _fit_regression(x, y.astype(np.float64), target, features, alphas, info)
    if kind == "multiclass":
        return _fit_multiclass(x, y, target, features, Cs, cv, seed, max_iter, info)
    labels = tuple(str(c) for c in ds[S.LABEL].values)
    return _fit_multilabel(x, y, labels, target, features, Cs, cv, seed, max_iter, info)


def _report_dropped(n_dropped: int, n_total: int, target: str) -> None:
    if n_dropped:
        warn(
            f"fit_probe: {n_dropped} of {n_total} imagettes left out of the fit of {target!r} "
            "(NaN target, unknown tag or class, or NaN features)",
            XWVNetWarning,
        )


def _fit_regression(x: np.ndarray, y: np.ndarray, target: str, features: str, alphas: Sequence[float],
                    info: dict[str, Any]) -> Probe:
    ok = np.isfinite(y) & np.isfinite(x).all(axis=1)
    n_dropped = int((~ok).sum())
    _report_dropped(n_dropped, len(y), target)
    if ok.sum() < 3:
        raise InvalidDataError(
            f"fit_probe: only {int(ok.sum())} imagettes have a finite {target!r}; at least 3 are needed."
        )
    pipeline = Pipeline([("scale", StandardScaler()), ("linear", RidgeCV(alphas=np.asarray(alphas, dtype=float)))])
    pipeline.fit(x[ok], y[ok])
    scaler, ridge = pipeline.named_steps["scale"], pipeline.named_steps["linear"]
    info = {**info, "n_train": int(ok.sum()), "n_dropped": n_dropped, "alpha": float(ridge.alpha_),
            "model": "Pipeline(StandardScaler, RidgeCV leave-one-out)"}
    return Probe("regression", target, features, (target,), scaler.mean_[None, :], scaler.scale_[None, :],
                 np.reshape(ridge.coef_, (1, -1)), np.reshape(ridge.intercept_, (1,)), info)


def _logistic_cv(Cs: Sequence[float], folds: StratifiedKFold, max_iter: int) -> LogisticRegressionCV:
    kwargs: dict[str, Any] = {"Cs": list(Cs), "cv": folds, "scoring": "roc_auc", "max_iter": max_iter}
    if "use_legacy_attributes" in inspect.signature(LogisticRegressionCV).parameters:  # scikit-learn >= 1.8
        kwargs.update(use_legacy_attributes=False, l1_ratios=(0.0,))
    return LogisticRegressionCV(**kwargs)


def _fit_multilabel(x: np.ndarray, y: np.ndarray, labels: tuple[str, ...], target: str, features: str,
                    Cs: Sequence[float], cv: int, seed: int, max_iter: int, info: dict[str, Any]) -> Probe:
    finite = np.isfinite(x).all(axis=1)
    known = (y == 0) | (y == 1)
    rows = finite & known.any(axis=1)
    n_dropped = int((~rows).sum())
    _report_dropped(n_dropped, len(y), target)
    if rows.sum() < 2:
        raise InvalidDataError(f"fit_probe: only {int(rows.sum())} imagettes have known tags; at least 2 are needed.")
    x, y, known = x[rows], y[rows], known[rows]
    shape = (len(labels), x.shape[1])
    mean, scale, coef = np.zeros(shape), np.ones(shape), np.zeros(shape)
    intercept = np.zeros(len(labels))
    chosen: dict[str, float | None] = {}
    constant: list[str] = []
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(lbfgs failed to converge|max_iter).*")
        for j, code in enumerate(labels):
            xj, yj = x[known[:, j]], y[known[:, j], j].astype(int)
            positives = int(yj.sum())
            smallest = min(positives, len(yj) - positives)
            if smallest < 2:  # a tag seen (almost) never or always: no model can be fitted, predict its prevalence
                scaler = StandardScaler().fit(x)
                intercept[j] = logit((positives + 0.5) / (len(yj) + 1.0))
                chosen[code] = None
                constant.append(code)
            else:
                folds = StratifiedKFold(n_splits=min(cv, smallest), shuffle=True, random_state=seed)
                pipeline = Pipeline([("scale", StandardScaler()), ("linear", _logistic_cv(Cs, folds, max_iter))])
                pipeline.fit(xj, yj)
                scaler, model = pipeline.named_steps["scale"], pipeline.named_steps["linear"]
                coef[j] = np.ravel(model.coef_)
                intercept[j] = float(np.ravel(model.intercept_)[0])
                chosen[code] = float(np.ravel(model.C_)[0])
            mean[j], scale[j] = scaler.mean_, scaler.scale_
    info = {**info, "n_train": int(rows.sum()), "n_dropped": n_dropped, "C": chosen, "constant_labels": constant,
            "model": "Pipeline(StandardScaler, LogisticRegressionCV by AUROC) per tag"}
    return Probe("multilabel", target, features, labels, mean, scale, coef, intercept, info)


def known_classes(y: np.ndarray) -> np.ndarray:
    """Which entries of a class variable are known: not None, NaN, empty, or (integers) negative.

    Parameters
    ----------
    y : numpy.ndarray
        A class per imagette: strings or objects, or integers.

    Returns
    -------
    numpy.ndarray
        bool, shape of ``y``.
    """
    y = np.asarray(y)
    if y.dtype.kind in "iu":
        return y >= 0
    if y.dtype.kind == "f":
        return np.isfinite(y) & (y >= 0)
    return np.array([v is not None and v == v and str(v) != "" for v in y.ravel()], dtype=bool).reshape(y.shape)


def _fit_multiclass(x: np.ndarray, y: np.ndarray, target: str, features: str, Cs: Sequence[float], cv: int,
                    seed: int, max_iter: int, info: dict[str, Any]) -> Probe:
    ok = known_classes(y) & np.isfinite(x).all(axis=1)
    n_dropped = int((~ok).sum())
    _report_dropped(n_dropped, len(y), target)
    x, y = x[ok], y[ok]
    names, codes, counts = np.unique(np.asarray(y).astype(str), return_inverse=True, return_counts=True)
    if names.size < 2:
        raise InvalidDataError(f"fit_probe: a multi-class probe of {target!r} needs at least two classes among the "
                               f"training imagettes, found {names.tolist()}.")
    if y.dtype.kind in "iu":  # integer classes: in numeric order, predicted back as integers
        order = np.argsort(names.astype(np.int64))
        names, counts, codes = names[order], counts[order], np.argsort(order)[codes]
    folds = StratifiedKFold(n_splits=max(2, min(cv, int(counts.min()))), shuffle=True, random_state=seed)
    kwargs: dict[str, Any] = {"Cs": list(Cs), "cv": folds, "scoring": "accuracy", "max_iter": max_iter}
    if "use_legacy_attributes" in inspect.signature(LogisticRegressionCV).parameters:  # scikit-learn >= 1.8
        kwargs.update(use_legacy_attributes=False, l1_ratios=(0.0,))
    pipeline = Pipeline([("scale", StandardScaler()), ("linear", LogisticRegressionCV(**kwargs))])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(lbfgs failed to converge|max_iter|least populated).*")
        pipeline.fit(x, codes)
    scaler, model = pipeline.named_steps["scale"], pipeline.named_steps["linear"]
    coef, intercept = np.atleast_2d(model.coef_), np.ravel(model.intercept_)
    if names.size == 2:  # scikit-learn's binary model (1, features): as two softmax rows -w/2, +w/2
        coef, intercept = np.vstack([-coef / 2, coef / 2]), np.array([-intercept[0] / 2, intercept[0] / 2])
    k = names.size
    info = {**info, "n_train": int(ok.sum()), "n_dropped": n_dropped, "C": float(np.ravel(model.C_)[0]),
            "class_counts": {str(c): int(n) for c, n in zip(names, counts, strict=True)},
            "integer_classes": bool(y.dtype.kind in "iu"),
            "model": "Pipeline(StandardScaler, multinomial LogisticRegressionCV by accuracy)"}
    return Probe("multiclass", target, features, tuple(str(c) for c in names), np.tile(scaler.mean_, (k, 1)),
                 np.tile(scaler.scale_, (k, 1)), coef, intercept, info)


def predicted_class(probe: Probe, probability: np.ndarray) -> np.ndarray:
    """The most probable class of each row of a multi-class probe's :meth:`Probe.transform`.

    Parameters
    ----------
    probe : Probe
        A multi-class probe.
    probability : numpy.ndarray
        Class probabilities, shape (n, classes).

    Returns
    -------
    numpy.ndarray
        Class names (object), or integers when the probe was fitted on integer classes; ``None`` (or ``-1``) for
        a row of NaN.
    """
    probability = np.asarray(probability)
    missing = ~np.isfinite(probability).all(axis=1)
    best = np.argmax(np.where(np.isfinite(probability), probability, -np.inf), axis=1)
    if probe.info.get("integer_classes"):
        return np.where(missing, -1, np.asarray(probe.outputs, dtype=np.int64)[best])
    names = np.asarray(probe.outputs, dtype=object)[best]
    names[missing] = None
    return names


# --- prediction ------------------------------------------------------------------------------------------------------
def output_name(probe: Probe) -> str:
    """The variable a probe's predictions are stored in.

    Parameters
    ----------
    probe : Probe
        A fitted probe.

    Returns
    -------
    str
        ``"labels_probability"`` for tags, ``"<target>_predicted"`` for a number or a class.
    """
    return S.LABELS_PROBABILITY if probe.kind == "multilabel" else f"{probe.target}{S.PREDICTED_SUFFIX}"


class RecomputeWarning(XWVNetWarning):
    """Computing this result runs the encoder again: persist (or store) the embeddings first."""


def _warn_if_embedding_again(x: xr.DataArray) -> None:
    """Warn when lazy features still hold the encoder's tasks: each compute would embed every imagette again."""
    graph = getattr(x.data, "__dask_graph__", lambda: None)()
    layers = getattr(graph, "layers", {}) if graph is not None else {}
    if not layers:
        return
    from .inference import embed_resolved  # the function every lazy embedding task runs (dask names layers by it)

    if any(str(name).startswith(embed_resolved.__name__) for name in layers):
        warn(
            f"{x.name!r} is still the lazy result of embed(): computing these predictions runs the encoder again "
            "over every imagette. Call `ds = ds.persist()` (or store the embeddings with embed_store / to_zarr) "
            "after embed and before fit_probe/predict/neighbors.",
            RecomputeWarning,
        )


def predict(ds: xr.Dataset, probe: Probe | _Applicable, *, name: str | None = None) -> xr.Dataset:
    """A new Dataset with the probe's (or head's) predictions added beside the imagettes.

    Lazy when the features are dask-backed (one task per imagette chunk). An imagette whose features hold NaN
    gets a NaN prediction (no class: ``None``, or ``-1`` for integer classes).

    Parameters
    ----------
    ds : xarray.Dataset
        Imagettes with the probe's feature variable (same encoder as the probe was fitted on).
    probe : Probe or Head
        A fitted or loaded probe, or a head (:func:`xwvnet.fit_head`: applied by :meth:`Head.apply
        <xwvnet.heads.Head.apply>`, which refuses data whose encoder or covariates differ from its own).
    name : str, optional
        Name of the new variable; default ``<target>_predicted`` (imagette: a number, or the most probable class)
        or ``labels_probability`` (imagette, label).

    Returns
    -------
    xarray.Dataset
        ``ds`` plus the predictions, with units, the probe's provenance and (for tags) the ``label`` coordinate
        in the Dataset's own order when it has one.

    Raises
    ------
    ValueError
        If the feature count differs from the probe's, or the Dataset's tags differ from the probe's.
    TypeError
        If ``probe`` is neither a Probe nor a Head.

    Warns
    -----
    UserWarning
        If the embedding's encoder differs from the one the probe was fitted on.
    """
    if not isinstance(probe, Probe):
        if callable(getattr(probe, "apply", None)) and hasattr(probe, "tensors"):  # a Head (heads.py)
            return probe.apply(ds, name=name)
        raise InvalidTypeError(f"predict takes a Probe or a Head, got {type(probe).__name__}")
    x = _features(ds, probe.features)
    _warn_if_embedding_again(x)
    if x.sizes[x.dims[1]] != probe.n_features:
        raise ModelMismatchError(
            f"the probe was fitted on {probe.n_features} features but {probe.features!r} has "
            f"{x.sizes[x.dims[1]]}: use embeddings from the same encoder as the probe "
            f"({probe.info.get('embedding_attrs', {}).get('encoder', 'unknown')})."
        )
    fitted_on = probe.info.get("embedding_attrs", {}).get("encoder")
    now = x.attrs.get("encoder")
    if fitted_on and now and fitted_on != now:
        warn(f"the probe was fitted on embeddings of {fitted_on!r}, these are of {now!r}", XWVNetWarning)
    feature_dim = x.dims[1]
    if x.chunks is not None:
        x = x.chunk({feature_dim: -1})
    multilabel, multiclass = probe.kind == "multilabel", probe.kind == "multiclass"
    if multiclass:
        integer = bool(probe.info.get("integer_classes"))
        func, dtype = (lambda a: predicted_class(probe, probe.transform(a))), (np.int64 if integer else object)
    else:
        func = probe.transform if multilabel else (lambda a: probe.transform(a)[:, 0])
        dtype = np.float32
    out = xr.apply_ufunc(
        func,
        x,
        input_core_dims=[[feature_dim]],
        output_core_dims=[[S.LABEL]] if multilabel else [[]],
        dask="parallelized",
        output_dtypes=[dtype],
        dask_gufunc_kwargs={"output_sizes": {S.LABEL: len(probe.outputs)}} if multilabel else None,
    )
    attrs = {
        "long_name": ("probability of each tag" if multilabel else f"{probe.info.get('long_name', probe.target)}, "
                      f"{'the most probable class ' if multiclass else ''}predicted by a linear probe"),
        "probe_kind": probe.kind,
        "probe_target": probe.target,
        "probe_n_train": int(probe.info.get("n_train", -1)),
        "encoder": str(probe.info.get("embedding_attrs", {}).get("encoder", "unknown")),
        "xwvnet_version": __version__,
    }
    if probe.kind == "regression" and probe.info.get("units"):
        attrs["units"] = probe.info["units"]
    out = out.assign_attrs(attrs)
    if multilabel:
        out = out.assign_coords({S.LABEL: np.array(probe.outputs, dtype=object)})
        if S.LABEL in ds.indexes:
            have = [str(v) for v in ds[S.LABEL].values]
            if set(have) != set(probe.outputs):
                raise ModelMismatchError(
                    f"the Dataset's {S.LABEL!r} coordinate {have} differs from the probe's tags {list(probe.outputs)}:"
                    f" drop it (ds.drop_dims({S.LABEL!r})) or predict on a Dataset without it."
                )
            out = out.sel({S.LABEL: ds[S.LABEL].values})
    return ds.assign({name or output_name(probe): out})
