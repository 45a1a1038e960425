"""Figures: a query imagette beside its nearest neighbours, probe scatter plots, data-sparse curves, positions.

Every function draws into axes it is given (``ax=``, or ``axes=`` for a row of panels) or, without them, into a
new ``matplotlib.figure.Figure`` made directly (no pyplot state, never a backend switch), so figures work on
headless workers, in threads and inside a caller's own layout; call ``fig.savefig(...)`` or display them in a
notebook.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.figure import Figure, SubFigure

from . import schema as S
from .errors import InvalidArgumentError, InvalidDataError, MissingDependencyError
from .evaluation.metrics import regression_scores
from .retrieval import neighbors as _search


def _enable_notebook_display() -> None:
    """In IPython/Jupyter, let the Figures made here display as cell results, whatever the backend.

    The Figures are made without pyplot, so no backend's display hook knows them: register a PNG formatter for
    ``Figure`` with IPython (no backend is switched). Outside IPython nothing happens.
    """
    try:
        from IPython import get_ipython
        from IPython.core.pylabtools import print_figure
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return
    formatter = shell.display_formatter.formatters["image/png"]
    formatter.for_type(Figure, lambda fig: print_figure(fig, "png", bbox_inches="tight"))


_enable_notebook_display()


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


def _fit(text: str, width_inches: float, fontsize: float) -> str:
    """``text`` wrapped, line by line, to about ``width_inches`` at ``fontsize`` points (never cut: long words stay)."""
    chars = max(8, int(0.9 * width_inches * 72 / (0.6 * fontsize)))  # DejaVu Sans: about 0.6 em a character
    return "\n".join(textwrap.fill(line, chars, break_long_words=False) if line else line
                     for line in text.split("\n"))


def _set_title(ax: Axes, text: str, fontsize: float = 9) -> None:
    """An axes title wrapped to the axes' width, so that a long encoder name never runs past the figure."""
    ax.set_title(_fit(text, ax.bbox.width / ax.figure.dpi, fontsize), fontsize=fontsize)


def _suptitle(fig: Figure | SubFigure, text: str, fontsize: float = 10) -> None:
    """A figure title wrapped to the figure's width."""
    fig.suptitle(_fit(text, fig.bbox.width / fig.dpi, fontsize), fontsize=fontsize)


def _row_of_axes(axes: Sequence[Axes] | None, n: int,
                 figsize: tuple[float, float]) -> tuple[list[Axes], Figure | SubFigure]:
    """``n`` axes in a row: the caller's (at least ``n``), else those of a new Figure."""
    if axes is None:
        fig = Figure(figsize=figsize, layout="constrained")
        return list(fig.subplots(1, n, squeeze=False)[0]), fig
    axes = list(np.ravel(np.asarray(axes, dtype=object)))
    if len(axes) < n:
        raise InvalidArgumentError(f"{n} panels to draw but {len(axes)} axes given: give at least {n}.")
    return axes[:n], axes[0].figure


def similarity_digits(values: Sequence[float] | np.ndarray, *, least: int = 3, most: int = 6) -> int:
    """Decimals needed so that similarities that differ print differently (``least`` to ``most``).

    Parameters
    ----------
    values : sequence of float
        The similarities to print.
    least, most : int
        The range of decimals.

    Returns
    -------
    int

    Examples
    --------
    >>> similarity_digits([0.99991, 0.99987])
    5
    """
    finite = [float(v) for v in np.ravel(values) if np.isfinite(v)]
    for digits in range(least, most + 1):
        shown = [f"{v:.{digits}f}" for v in finite]
        if len(set(shown)) == len(set(finite)):
            return digits
    return most


def wrap_id(name: str, width: int = 32) -> str:
    """An imagette id broken into lines of at most ``width`` characters at ``-``/``:``/``_``, never cut.

    Parameters
    ----------
    name : str
        The id.
    width : int, default 32
        The longest line.

    Returns
    -------
    str

    Examples
    --------
    >>> print(wrap_id("s1a-wv1-QL-vv-20190213t130655-20190213t130658-025911-02e29d-095", 30))
    s1a-wv1-QL-vv-20190213t130655-
    20190213t130658-025911-02e29d-
    095
    """
    lines, line = [], ""
    for part in _split_keep(name):
        if line and len(line) + len(part) > width:
            lines.append(line)
            line = ""
        line += part
    return "\n".join([*lines, line])


def _split_keep(name: str) -> list[str]:
    out, part = [], ""
    for char in name:
        part += char
        if char in "-:_":
            out.append(part)
            part = ""
    return [*out, part] if part else out


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
        raise InvalidArgumentError(
            f"query {query_id!r} is not an imagette of the Dataset; give one of ds.{S.IMAGETTE}."
        )
    if result is None or query_id not in set(result[S.IMAGETTE].values.astype(str)):
        result = _search(ds, k=k, query=[query_id], features=features)
    row = result.sel({S.IMAGETTE: query_id})
    names = [str(v) for v in row["neighbor"].values[:k] if str(v)]
    sims = row["similarity"].values[: len(names)]
    axes, fig = _row_of_axes(axes, len(names) + 1, (2.6 * (len(names) + 1), 3.2))
    digits = similarity_digits(sims)
    panels = [(query_id, f"query\n{_tags(ds, query_id)}")]
    panels += [(n, f"#{r} cos={s:.{digits}f}\n{_tags(ds, n)}") for r, (n, s) in enumerate(zip(names, sims), start=1)]
    for ax, (name, title) in zip(axes, panels):
        ax.imshow(_valid_image(ds, name, var), cmap="gray", interpolation="nearest", origin="upper")
        _set_title(ax, title, 9)
        ax.set_xlabel(wrap_id(name), fontsize=6)
        ax.set_xticks([])
        ax.set_yticks([])
    _suptitle(fig, f"nearest imagettes ({result.attrs.get('encoder', 'embedding')})", 10)
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
    _set_title(ax, f"{title}\nRMSE {scores['rmse']:.3g}, R² {scores['r2']:.2f}".strip(), 9)
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
    _suptitle(fig, f"linear probe of {target} on the test imagettes", 10)
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
        raise InvalidArgumentError(f"metric {metric!r} is not in the curve; it has {metrics}")
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
    _set_title(ax, f"{curve.attrs.get('target', '')}: {metric} against labels", 10)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    return ax


def _plate_carree() -> object | None:
    try:
        import cartopy.crs as ccrs
    except ImportError:
        return None
    return ccrs.PlateCarree()


def _coastlines(ax: Axes) -> bool:
    """Draw coastlines when ``ax`` is a cartopy GeoAxes (cartopy installed); report whether it did."""
    if not hasattr(ax, "coastlines"):
        return False
    try:
        from cartopy.io import shapereader

        shapereader.natural_earth(resolution="110m", category="physical", name="coastline")  # fetched now or never
        ax.coastlines(linewidth=0.5)
        ax.gridlines(draw_labels=True, linewidth=0.2)
    except Exception:  # no Natural Earth data offline: positions still plot
        return False
    return True


def _coloured_scatter(ax: Axes, x: np.ndarray, y: np.ndarray, ds: xr.Dataset, color: str | xr.DataArray | None, *,
                      keep: np.ndarray | None = None, label: str | None = None, cmap: str = "viridis",
                      **style: object) -> None:
    """Dots at ``(x, y)``, coloured by ``color`` (a variable of ``ds`` or a DataArray, rows ``keep``) with a labelled
    colour bar; plain dots when ``color`` is None."""
    if color is None:
        ax.scatter(x, y, **style)
        return
    var = ds[color] if isinstance(color, str) else color
    values = np.asarray(var.values, dtype=float)
    values = values if keep is None else values[keep]
    units = var.attrs.get("units", "")
    dots = ax.scatter(x, y, c=values, cmap=cmap, **style)
    ax.figure.colorbar(dots, ax=ax, label=label or f"{var.name}" + (f" ({units})" if units else ""))


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
        fig = Figure(figsize=(6, 4.5), layout="constrained")
        projection = _plate_carree()
        ax = fig.add_subplot(projection=projection) if projection is not None else fig.subplots()
    _coastlines(ax)
    _coloured_scatter(ax, ds[S.LONGITUDE].values, ds[S.LATITUDE].values, ds, color, label=label, cmap=cmap, s=30,
                      edgecolor="k", linewidth=0.3)
    ax.set(xlabel="longitude (deg E)", ylabel="latitude (deg N)")
    _set_title(ax, title, 9)
    return ax


def imagette_grid(
    ds: xr.Dataset,
    ids: Sequence[str] | None = None,
    *,
    n: int = 8,
    cols: int = 4,
    var: str | None = None,
    caption: str | None = None,
    axes: Sequence[Axes] | None = None,
) -> Figure | SubFigure:
    """Imagettes the right way up (first line at the top), each cut to its valid extent, with id and tag captions.

    Parameters
    ----------
    ds : xarray.Dataset
        Imagettes with an image variable.
    ids : sequence of str, optional
        The imagettes to show (default: the first ``n``).
    n : int, default 8
        How many to show when ``ids`` is not given.
    cols : int, default 4
        Panels per row.
    var : str, optional
        The image variable (``quicklook`` by default, else ``sigma0``, shown in dB).
    caption : str, optional
        A variable along ``imagette`` printed under each id (e.g. ``"hs"``), with its units.
    axes : sequence of matplotlib.axes.Axes, optional
        Axes to draw into (one per imagette); a new figure when not given.

    Returns
    -------
    matplotlib.figure.Figure or matplotlib.figure.SubFigure

    Raises
    ------
    ValueError
        If an id is not in ``ds`` or too few ``axes`` are given.

    Examples
    --------
    >>> import xwvnet
    >>> fig = xwvnet.plot.imagette_grid(xwvnet.synthetic.imagettes(4, seed=0, size=(64, 64)), caption="hs")
    >>> len(fig.axes)
    4
    """
    name = S.image_var(ds, var)
    ids = [str(i) for i in (ids if ids is not None else ds[S.IMAGETTE].values[:n])]
    known = set(ds[S.IMAGETTE].values.astype(str))
    missing = [i for i in ids if i not in known]
    if missing:
        raise InvalidArgumentError(f"{missing[:3]} are not imagettes of the Dataset; give ids from ds.{S.IMAGETTE}.")
    if axes is None:
        rows = max(1, -(-len(ids) // cols))
        fig = Figure(figsize=(2.8 * min(cols, len(ids)), 3.1 * rows), layout="constrained")
        grid = fig.subplots(rows, min(cols, len(ids)), squeeze=False)
        for ax in grid.ravel()[len(ids):]:
            ax.set_visible(False)
        axes = list(grid.ravel()[: len(ids)])
    axes, fig = _row_of_axes(axes, len(ids), (1, 1))
    for ax, imagette in zip(axes, ids):
        image = _valid_image(ds, imagette, name).astype(np.float32)
        if name == S.SIGMA0:
            image = 10 * np.log10(np.where(image > 0, image, np.nan))
        ax.imshow(image, cmap="gray", interpolation="nearest", origin="upper")
        text = wrap_id(imagette, 30)
        tags = _tags(ds, imagette)
        if tags:
            text += f"\ntags: {tags}"
        if caption is not None:
            value = float(ds[caption].sel({S.IMAGETTE: imagette}).values)
            text += f"\n{caption} = {value:.3g} {ds[caption].attrs.get('units', '')}".rstrip()
        ax.set_xlabel(text, fontsize=6)
        ax.set_xticks([])
        ax.set_yticks([])
    return fig


def embedding_map(
    ds: xr.Dataset,
    color: str | xr.DataArray | None = None,
    *,
    method: str = "pca",
    features: str = S.EMBEDDING,
    ax: Axes | None = None,
    seed: int = 0,
    cmap: str = "viridis",
) -> Axes:
    """The embeddings in two dimensions (PCA, or UMAP when installed), coloured by a per-imagette variable.

    Parameters
    ----------
    ds : xarray.Dataset
        Imagettes with ``features``.
    color : str or xarray.DataArray, optional
        What colours the dots (e.g. ``"hs"``).
    method : {"pca", "umap"}, default "pca"
        The projection: scikit-learn's PCA, or umap-learn's UMAP (an optional dependency).
    features : str, default "embedding"
        The feature variable.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure's axes when not given.
    seed : int, default 0
        Seed of the projection (UMAP, randomised PCA solvers).
    cmap : str, default "viridis"
        The colour map.

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    ValueError
        On an unknown ``method``, or fewer than 3 imagettes with finite features.
    ImportError
        If ``method="umap"`` and umap-learn is not installed.
    """
    S.require(ds, [features], "an embedding map")
    x = np.asarray(ds[features].values, dtype=np.float64)
    keep = np.isfinite(x).all(axis=1)
    if keep.sum() < 3:
        raise InvalidDataError(
            f"an embedding map needs at least 3 imagettes with finite {features!r}; found {keep.sum()}."
        )
    if method == "pca":
        from sklearn.decomposition import PCA

        pca = PCA(n_components=2, random_state=seed)
        xy = pca.fit_transform(x[keep])
        labels = [f"PC{i + 1} ({100 * r:.0f}% of variance)" for i, r in enumerate(pca.explained_variance_ratio_)]
    elif method == "umap":
        try:
            import umap
        except ImportError as err:
            raise MissingDependencyError(
                "method='umap' needs umap-learn: pip install umap-learn (or use method='pca')."
            ) from err
        xy = umap.UMAP(n_components=2, random_state=seed).fit_transform(x[keep])
        labels = ["UMAP 1", "UMAP 2"]
    else:
        raise InvalidArgumentError(f"method must be 'pca' or 'umap', found {method!r}.")
    if ax is None:
        ax = Figure(figsize=(5.5, 4.5), layout="constrained").subplots()
    _coloured_scatter(ax, xy[:, 0], xy[:, 1], ds, color, keep=keep, cmap=cmap, s=14)
    ax.set(xlabel=labels[0], ylabel=labels[1])
    encoder = ds[features].attrs.get("encoder", features)
    _set_title(ax, f"{encoder} embeddings, {method.upper()}", 9)
    return ax
