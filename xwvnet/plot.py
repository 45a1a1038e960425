"""Figures: a query imagette beside its nearest neighbours, probe scatter plots, data-sparse curves, positions.

Every function draws into axes it is given (``ax=``, or ``axes=`` for a row of panels) or, without them, into a
new ``matplotlib.figure.Figure`` made directly (no pyplot state, never a backend switch), so figures work on
headless workers, in threads and inside a caller's own layout; call ``fig.savefig(...)`` or display them in a
notebook.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.figure import Figure, SubFigure

from . import schema as S
from .evaluation.metrics import regression_scores
from .retrieval import neighbors as _search


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


def _row_of_axes(axes: Sequence[Axes] | None, n: int,
                 figsize: tuple[float, float]) -> tuple[list[Axes], Figure | SubFigure]:
    """``n`` axes in a row: the caller's (at least ``n``), else those of a new Figure."""
    if axes is None:
        fig = Figure(figsize=figsize, layout="constrained")
        return list(fig.subplots(1, n, squeeze=False)[0]), fig
    axes = list(np.ravel(np.asarray(axes, dtype=object)))
    if len(axes) < n:
        raise ValueError(f"{n} panels to draw but {len(axes)} axes given: give at least {n}.")
    return axes[:n], axes[0].figure


def neighbor_panel(
    ds: xr.Dataset,
    query_id: str,
    *,
    k: int = 5,
    result: xr.Dataset | None = None,
    var: str | None = None,
    features: str = S.EMBEDDING,
    axes: Sequence[Axes] | None = None,
) -> Figure | SubFigure:
    """The query imagette and its ``k`` nearest imagettes of ``ds`` in one row, titled with similarity and tags.

    Shows only the valid region of each imagette, so padding never looks like sea.

    Parameters
    ----------
    ds : xarray.Dataset
        Imagettes with an image variable (and ``features`` when ``result`` is not given).
    query_id : str
        The query imagette's id.
    k : int, default 5
        Neighbours shown.
    result : xarray.Dataset, optional
        A :func:`xwvnet.neighbors` Dataset holding ``query_id``; searched here if not given.
    var : str, optional
        The image variable (``quicklook`` by default, else ``sigma0``).
    features : str, default "embedding"
        The feature variable searched when ``result`` is not given.
    axes : sequence of matplotlib.axes.Axes, optional
        At least ``k + 1`` axes to draw into (query first); a new figure when not given.

    Returns
    -------
    matplotlib.figure.Figure or matplotlib.figure.SubFigure
        The figure holding the panels.

    Raises
    ------
    ValueError
        If ``query_id`` is not an imagette of ``ds``, or too few ``axes`` are given.

    Examples
    --------
    >>> xwvnet.plot.neighbor_panel(ds, str(ds.imagette[0].values), k=4).savefig("neighbours.png")  # doctest: +SKIP
    """
    if query_id not in set(ds[S.IMAGETTE].values.astype(str)):
        raise ValueError(f"query {query_id!r} is not an imagette of the Dataset; give one of ds.{S.IMAGETTE}.")
    if result is None or query_id not in set(result[S.IMAGETTE].values.astype(str)):
        result = _search(ds, k=k, query=[query_id], features=features)
    row = result.sel({S.IMAGETTE: query_id})
    names = [str(v) for v in row["neighbor"].values[:k] if str(v)]
    sims = row["similarity"].values[: len(names)]
    axes, fig = _row_of_axes(axes, len(names) + 1, (2.6 * (len(names) + 1), 3.2))
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
    """Predicted against true values with the 1:1 line, RMSE and R^2 in the title.

    Parameters
    ----------
    truth : numpy.ndarray
        True values.
    predicted : numpy.ndarray
        Predicted values, same shape; pairs with a NaN are left out of the scores.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure's axes when not given.
    title : str, optional
        First line of the title (e.g. the encoder's name).
    units : str, optional
        Units shown on both axis labels.

    Returns
    -------
    matplotlib.axes.Axes
        The axes drawn into.

    Examples
    --------
    >>> ax = probe_scatter(np.arange(5.0), np.arange(5.0) + 0.1, units="m")
    >>> ax.get_xlabel()
    'true (m)'
    """
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


def probe_comparison(pairs: Mapping[str, tuple[np.ndarray, np.ndarray]], *, target: str, units: str = "",
                     axes: Sequence[Axes] | None = None) -> Figure | SubFigure:
    """One :func:`probe_scatter` panel per encoder, side by side, to compare encoders on one target.

    Parameters
    ----------
    pairs : mapping of str to (numpy.ndarray, numpy.ndarray)
        Encoder name -> (true, predicted) values.
    target : str
        The target's name, in the title.
    units : str, optional
        The target's units.
    axes : sequence of matplotlib.axes.Axes, optional
        At least ``len(pairs)`` axes (1 when ``pairs`` is empty) to draw into; a new figure when not given.

    Returns
    -------
    matplotlib.figure.Figure or matplotlib.figure.SubFigure
        The figure holding the panels.

    Raises
    ------
    ValueError
        If too few ``axes`` are given.
    """
    n = max(1, len(pairs))
    axes, fig = _row_of_axes(axes, n, (3.6 * n, 3.8))
    for ax, (name, (truth, pred)) in zip(axes, pairs.items()):
        probe_scatter(truth, pred, ax=ax, title=name, units=units)
    if not pairs:
        axes[0].text(0.5, 0.5, "no encoder could run", ha="center", va="center")
    fig.suptitle(f"linear probe of {target} on the test imagettes", fontsize=10)
    return fig


def learning_curve_panel(curve: xr.Dataset, metric: str | None = None, *, ax: Axes | None = None,
                   label: str | None = None) -> Axes:
    """Mean and spread (±1 std over seeds) of ``metric`` against the number of training labels (log axis).

    Parameters
    ----------
    curve : xarray.Dataset
        From :func:`xwvnet.learning_curve`.
    metric : str, optional
        A metric of the curve; default ``rmse``, else ``macro_auroc``, else ``r2``, else the first.
    ax : matplotlib.axes.Axes, optional
        Where to draw (e.g. the axes of another encoder's curve, to compare); a new figure's axes when not given.
    label : str, optional
        The line's legend label; default the curve's encoder.

    Returns
    -------
    matplotlib.axes.Axes
        The axes drawn into.

    Raises
    ------
    ValueError
        If ``metric`` is not in the curve.

    Examples
    --------
    >>> ax = learning_curve(xwvnet.learning_curve(ds, "hs"))  # doctest: +SKIP
    >>> learning_curve(other_curve, ax=ax)  # doctest: +SKIP
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
        The axes drawn into.

    Raises
    ------
    ValueError
        If ``ds`` has no ``latitude`` or ``longitude``.
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
