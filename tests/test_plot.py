"""Figures (xwvnet.plot): neighbour panel, probe scatter, learning curve, imagette grid, embedding map and positions."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from matplotlib.figure import Figure

from tests._factories import embedded_imagettes
from xwvnet import plot
from xwvnet import retrieval as R
from xwvnet import schema as S
from xwvnet.evaluation.curves import learning_curve


def test_neighbors_panel_shows_query_and_k_neighbours():
    ds = embedded_imagettes()
    query = str(ds[S.IMAGETTE].values[2])
    fig = plot.neighbor_panel(ds, query, k=3)
    assert isinstance(fig, Figure)
    axes = fig.get_axes()
    assert len(axes) == 4
    assert axes[0].get_title().startswith("query")
    expected = R.neighbors(ds, k=3, query=[query])["neighbor"].values[0]
    assert [ax.get_xlabel() for ax in axes[1:]] == [str(v)[-28:] for v in expected]
    assert axes[1].get_title().startswith("#1 cos=")
    shown = axes[0].get_images()[0].get_array()
    assert shown.shape == (24, 30)


def test_neighbors_panel_crops_padding_and_refuses_unknown_ids():
    ds = embedded_imagettes()
    ds = ds.assign({S.VALID_LINES: (S.IMAGETTE, np.full(8, 10, dtype=np.int32))})
    fig = plot.neighbor_panel(ds, str(ds[S.IMAGETTE].values[0]), k=2)
    assert fig.get_axes()[0].get_images()[0].get_array().shape == (10, 30)
    with pytest.raises(ValueError, match="not an imagette"):
        plot.neighbor_panel(ds, "nope")


def test_probe_scatter_and_comparison():
    truth = np.linspace(0, 5, 20)
    ax = plot.probe_scatter(truth, truth + 0.1, title="toy", units="m")
    assert "RMSE 0.1" in ax.get_title()
    assert ax.get_xlabel() == "true (m)"
    fig = plot.probe_comparison({"a": (truth, truth), "b": (truth, truth[::-1])}, target="hs", units="m")
    assert len(fig.get_axes()) == 2


def test_panels_draw_into_given_axes():
    ds = embedded_imagettes()
    fig = Figure()
    axes = fig.subplots(2, 3)
    query = str(ds[S.IMAGETTE].values[1])
    assert plot.neighbor_panel(ds, query, k=2, axes=axes[0]) is fig
    assert axes[0][0].get_title().startswith("query") and axes[0][2].get_images()
    assert not axes[1][0].get_images()  # only the axes needed are used
    truth = np.linspace(0, 1, 5)
    assert plot.probe_comparison({"a": (truth, truth)}, target="hs", axes=[axes[1][0]]) is fig
    assert "RMSE" in axes[1][0].get_title()
    with pytest.raises(ValueError, match="3 panels"):
        plot.neighbor_panel(ds, query, k=2, axes=axes[1][:2])


def test_plot_modules_never_switch_the_backend(monkeypatch):
    import matplotlib

    calls = []
    monkeypatch.setattr(matplotlib, "use", lambda *a, **k: calls.append(a))
    truth = np.linspace(0, 5, 20)
    plot.probe_scatter(truth, truth)
    ds = embedded_imagettes()
    plot.neighbor_panel(ds, str(ds[S.IMAGETTE].values[0]), k=2)
    assert calls == []


def test_learning_curve_plot(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((120, 5)).astype(np.float32)
    ds = xr.Dataset({S.EMBEDDING: ((S.IMAGETTE, S.FEATURE), x), "hs": (S.IMAGETTE, x @ np.ones(5))},
                    coords={S.IMAGETTE: [f"i{i}" for i in range(120)]})
    curve = learning_curve(ds, "hs", sizes=(10, 30, None), seeds=2)
    ax = plot.learning_curve_panel(curve)
    assert ax.get_ylabel() == "rmse"
    assert ax.get_xscale() == "log"
    line = ax.get_lines()[0]
    np.testing.assert_array_equal(line.get_xdata(), curve["n_labels"].values)
    ax.figure.savefig(tmp_path / "curve.png")
    with pytest.raises(ValueError, match="not in the curve"):
        plot.learning_curve_panel(curve, "auroc")


def test_imagettes_are_drawn_right_way_up_within_their_valid_extent():
    from xwvnet import synthetic

    ds = synthetic.imagettes(3, seed=1, size=(48, 64), ragged=True).compute()
    fig = plot.imagette_grid(ds, caption="hs")
    assert len(fig.axes) == 3
    for ax, imagette in zip(fig.axes, ds[S.IMAGETTE].values):
        one = ds.sel({S.IMAGETTE: imagette})
        shown = ax.images[0]
        lines, samples = int(one[S.VALID_LINES]), int(one[S.VALID_SAMPLES])
        np.testing.assert_array_equal(shown.get_array(), one[S.QUICKLOOK].values[:lines, :samples])
        assert shown.origin == "upper"  # line 0 at the top, as in the quicklook files
        assert str(imagette) in ax.get_xlabel().replace("\n", "") and "hs =" in ax.get_xlabel()
    with pytest.raises(ValueError, match="not imagettes"):
        plot.imagette_grid(ds, ["nope"])


def test_similarity_digits_tell_close_values_apart_and_ids_are_never_cut():
    assert plot.similarity_digits([0.5, 0.25]) == 3
    assert plot.similarity_digits([0.99991, 0.99987]) == 5
    assert plot.similarity_digits([1.0, 1.0]) == 3
    name = "s1a-wv1-QL-vv-20190213t130655-20190213t130658-025911-02e29d-095"
    wrapped = plot.wrap_id(name, 20)
    assert wrapped.replace("\n", "") == name and max(map(len, wrapped.splitlines())) <= 20


def test_embedding_map_pca_and_positions():
    ds = embedded_imagettes()
    ds = ds.assign(hs=(S.IMAGETTE, np.linspace(0, 1, ds.sizes[S.IMAGETTE]), {"units": "m"}))
    ax = plot.embedding_map(ds, "hs")
    assert ax.get_xlabel().startswith("PC1") and len(ax.collections[0].get_offsets()) == ds.sizes[S.IMAGETTE]
    with pytest.raises(ValueError, match="method"):
        plot.embedding_map(ds, method="tsne")
    placed = ds.assign_coords({S.LATITUDE: (S.IMAGETTE, np.linspace(-10, 10, ds.sizes[S.IMAGETTE])),
                               S.LONGITUDE: (S.IMAGETTE, np.linspace(0, 20, ds.sizes[S.IMAGETTE]))})
    ax = plot.positions(placed, "hs", title="where")
    np.testing.assert_allclose(ax.collections[0].get_offsets()[:, 1], placed[S.LATITUDE].values)
