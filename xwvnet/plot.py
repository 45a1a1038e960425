"""Figures: a query imagette beside its nearest neighbours, probe scatter plots, data-sparse curves.

Figures are built with ``matplotlib.figure.Figure`` directly (no pyplot state), so they work on headless workers
and in threads; call ``fig.savefig(...)`` or display them in a notebook.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from . import schema as S


def _valid_image(ds: xr.Dataset, imagette_id: str, var: str | None) -> np.ndarray:
    """The valid region of one imagette (padding cut off)."""
    name = S.image_var(ds, var)
    one = ds.sel({S.IMAGETTE: imagette_id})
    image = np.asarray(one[name].values)
    if S.VALID_LINES in one and S.VALID_SAMPLES in one:
        image = image[: int(one[S.VALID_LINES]), : int(one[S.VALID_SAMPLES])]
    return image


def _tags(ds: xr.Dataset, imagette_id: str) -> str:
    if S.LABELS not in ds.data_vars:
        return ""
    row = ds[S.LABELS].sel({S.IMAGETTE: imagette_id}).values
    return " ".join(str(c) for c, v in zip(ds[S.LABEL].values, row) if v == 1)


def neighbors(
    ds: xr.Dataset,
    query_id: str,
    *,
    k: int = 5,
    result: xr.Dataset | None = None,
    var: str | None = None,
    features: str = S.EMBEDDING,
) -> Figure:
    """The query imagette and its ``k`` nearest imagettes of ``ds`` in one row, titled with similarity and tags.

    ``result``: a :func:`xwvnet.retrieval.neighbors` Dataset holding ``query_id`` (computed here if not given).
    """
    if query_id not in set(ds[S.IMAGETTE].values.astype(str)):
        raise ValueError(f"query {query_id!r} is not an imagette of the Dataset; give one of ds.{S.IMAGETTE}.")
    if result is None or query_id not in set(result[S.IMAGETTE].values.astype(str)):
        from .retrieval import neighbors as search

        result = search(ds, k=k, query=[query_id], features=features)
    row = result.sel({S.IMAGETTE: query_id})
    names = [str(v) for v in row["neighbor"].values[:k] if str(v)]
    sims = row["similarity"].values[: len(names)]
    fig = Figure(figsize=(2.6 * (len(names) + 1), 3.2), layout="constrained")
    axes = fig.subplots(1, len(names) + 1, squeeze=False)[0]
    panels = [(query_id, f"query\n{_tags(ds, query_id)}")]
    panels += [(n, f"#{r} cos={s:.3f}\n{_tags(ds, n)}") for r, (n, s) in enumerate(zip(names, sims), start=1)]
    for ax, (name, title) in zip(axes, panels):
        ax.imshow(_valid_image(ds, name, var), cmap="gray", interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(name[-28:], fontsize=6)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"nearest imagettes ({result.attrs.get('encoder', 'embedding')})", fontsize=10)
    return fig


def probe_scatter(truth: np.ndarray, predicted: np.ndarray, *, ax: Axes | None = None, title: str = "",
                  units: str = "") -> Axes:
    """Predicted against true values with the 1:1 line, RMSE and R^2 in the title."""
    from .probe import regression_scores

    if ax is None:
        ax = Figure(figsize=(4, 4), layout="constrained").subplots()
    truth, predicted = np.asarray(truth, dtype=float), np.asarray(predicted, dtype=float)
    scores = regression_scores(truth, predicted)
    ax.scatter(truth, predicted, s=10, alpha=0.7)
    finite = np.isfinite(truth) & np.isfinite(predicted)
    if finite.any():
        lo = float(min(truth[finite].min(), predicted[finite].min()))
        hi = float(max(truth[finite].max(), predicted[finite].max()))
        ax.plot([lo, hi], [lo, hi], color="k", lw=0.8)
    unit = f" ({units})" if units else ""
    ax.set_xlabel(f"true{unit}")
    ax.set_ylabel(f"predicted{unit}")
    ax.set_title(f"{title}\nRMSE {scores['rmse']:.3g}, R² {scores['r2']:.2f}".strip(), fontsize=9)
    return ax


def probe_comparison(pairs: Mapping[str, tuple[np.ndarray, np.ndarray]], *, target: str, units: str = "") -> Figure:
    """One :func:`probe_scatter` panel per encoder: ``pairs`` maps an encoder name to (true, predicted)."""
    n = max(1, len(pairs))
    fig = Figure(figsize=(3.6 * n, 3.8), layout="constrained")
    axes = fig.subplots(1, n, squeeze=False)[0]
    for ax, (name, (truth, pred)) in zip(axes, pairs.items()):
        probe_scatter(truth, pred, ax=ax, title=name, units=units)
    if not pairs:
        axes[0].text(0.5, 0.5, "no encoder could run", ha="center", va="center")
    fig.suptitle(f"linear probe of {target} on the test imagettes", fontsize=10)
    return fig


def learning_curve(curve: xr.Dataset, metric: str | None = None, *, ax: Axes | None = None,
                   label: str | None = None) -> Axes:
    """Mean and spread (±1 std over seeds) of ``metric`` against the number of training labels (log axis).

    ``curve``: from :func:`xwvnet.probe.learning_curve`; ``metric`` defaults to ``rmse`` or ``macro_auroc``.
    """
    metrics = [str(m) for m in curve["metric"].values]
    if metric is None:
        metric = next((m for m in ("rmse", "macro_auroc", "r2") if m in metrics), metrics[0])
    if metric not in metrics:
        raise ValueError(f"metric {metric!r} is not in the curve; it has {metrics}")
    if ax is None:
        ax = Figure(figsize=(5, 3.6), layout="constrained").subplots()
    n = curve["n_labels"].values
    mean = curve["mean"].sel(metric=metric).values
    std = np.nan_to_num(curve["std"].sel(metric=metric).values)
    ax.plot(n, mean, marker="o", label=label or curve.attrs.get("encoder", None))
    ax.fill_between(n, mean - std, mean + std, alpha=0.25)
    ax.set_xscale("log")
    ax.set_xlabel("training labels")
    ax.set_ylabel(metric)
    ax.set_title(f"{curve.attrs.get('target', '')}: {metric} against labels", fontsize=10)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    return ax


def positions(
    ds: xr.Dataset,
    color: str | xr.DataArray | None = None,
    *,
    ax: Axes | None = None,
    title: str = "",
    label: str | None = None,
    cmap: str = "viridis",
) -> Axes:
    """Imagette positions on a longitude/latitude plane, optionally coloured by a per-imagette variable.

    Parameters
    ----------
    ds : xarray.Dataset
        Imagettes with ``latitude`` and ``longitude`` coordinates.
    color : str or xarray.DataArray, optional
        A variable of ``ds`` (or a DataArray along ``imagette``) whose values colour the dots.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure's axes when not given.
    title : str, optional
        The axes title.
    label : str, optional
        The colour bar label (default: the variable's name and units).
    cmap : str, default "viridis"
        The colour map.

    Returns
    -------
    matplotlib.axes.Axes
    """
    S.require(ds, [S.LATITUDE, S.LONGITUDE], "plotting positions")
    if ax is None:
        ax = Figure(figsize=(6, 4.5), layout="constrained").subplots()
    values = None
    if color is not None:
        var = ds[color] if isinstance(color, str) else color
        values = np.asarray(var.values, dtype=float)
        units = var.attrs.get("units", "")
        label = label or f"{var.name}" + (f" ({units})" if units else "")
    dots = ax.scatter(ds[S.LONGITUDE].values, ds[S.LATITUDE].values, c=values, cmap=cmap if values is not None
                      else None, s=30, edgecolor="k", linewidth=0.3)
    if values is not None:
        ax.figure.colorbar(dots, ax=ax, label=label)
    ax.set(xlabel="longitude (deg E)", ylabel="latitude (deg N)", title=title)
    ax.title.set_fontsize(9)
    return ax
