"""The main job's steps (xwvnet.demo): what each shows, joins only inside coverage, figures that never clip a text."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from matplotlib.figure import Figure

from tests._factories import embedded_imagettes, make_imagettes
from xwvnet import demo
from xwvnet import retrieval as R
from xwvnet import schema as S


def test_demo_join_only_joins_inside_coverage_and_says_so(data_dir, tmp_path, capsys):
    pytest.importorskip("cfgrib", reason="the UK ERA5 sample is GRIB")
    from xwvnet.demo import demo_join

    table = demo_join(tmp_path, data_dir, n=6)
    assert (tmp_path / "collocate_era5.png").stat().st_size > 10_000
    assert table.sizes[S.IMAGETTE] == 12  # 6 in the UK box (GRIB, March 2019) + 6 world-wide at 2021-03-01 11-13Z
    assert np.isfinite(table.era5_t2m.values).all()
    assert table.era5_t2m.min() > 250 and table.era5_t2m.max() < 310
    uk = table.where(table.group.str.contains("UK"), drop=True)
    assert (uk[S.TIME] >= np.datetime64("2019-03-01")).all() and (uk[S.TIME] < np.datetime64("2019-04-01")).all()
    world = table.where(table.group.str.contains("world"), drop=True)
    offsets = np.abs(world[S.TIME].values - np.datetime64("2021-03-01T12:00"))
    assert (offsets <= np.timedelta64(1, "h")).all()
    out = capsys.readouterr().out
    assert "WV manifest" in out and "not joined" in out


def texts_outside(fig) -> list[str]:
    """Every drawn text (titles, labels, tick labels in view, annotations) whose extent leaves the figure."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    tick_labels, shown = set(), []
    for ax in fig.get_axes():
        if not ax.get_visible():
            continue
        for axis in (ax.xaxis, ax.yaxis):
            lo, hi = sorted(axis.get_view_interval())
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                for label in (tick.label1, tick.label2):
                    tick_labels.add(id(label))
                    if lo <= tick.get_loc() <= hi and tick.get_visible() and label.get_visible():
                        shown.append(label)  # ticks beyond the view are never drawn
    shown += [t for t in fig.findobj(Text) if id(t) not in tick_labels and t.get_visible()]
    box, out = fig.bbox, []
    for text in shown:
        if not text.get_text().strip():
            continue
        e = text.get_window_extent(renderer)
        if e.x0 < box.x0 - 0.5 or e.y0 < box.y0 - 0.5 or e.x1 > box.x1 + 0.5 or e.y1 > box.y1 + 0.5:
            out.append(f"{text.get_text()!r} at {e.bounds} in {box.bounds}")
    return out


def test_texts_outside_sees_a_clipped_title():

    ax = Figure(figsize=(2, 2), layout="constrained").subplots()
    ax.set_title("a title far wider than a two-inch figure can ever hold on one line", fontsize=9)
    assert len(texts_outside(ax.figure)) == 1


def test_demo_figures_never_clip_a_text(data_dir, tmp_path, monkeypatch):

    from tests._factories import make_imagettes
    from xwvnet import demo, synthetic

    saved = []
    original = Figure.savefig

    def keep(fig, *args, **kwargs):
        saved.append((fig, kwargs))
        return original(fig, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keep)
    ds = embedded_imagettes()
    ds[S.EMBEDDING].attrs["encoder"] = "trained here (ResNet-18, SimCLR, a few CPU steps on 15 images)"
    demo.demo_retrieval(ds, tmp_path, k=3)

    def tiny(n, seed=0, size=(256, 256), **kwargs):
        return make_imagettes(n, lines=16, samples=16, seed=seed).assign(
            hs=(S.IMAGETTE, np.linspace(1, 6, n), {"units": "m"}))

    with monkeypatch.context() as m:
        m.setattr(synthetic, "imagettes", tiny)
        # the names the demo gives its rows, the first as long as the one whose title was clipped
        demo.demo_probe(tmp_path, n=30, encoders={
            "trained here (ResNet-18, SimCLR, a few CPU steps on 15 images)": "image-statistics",
            "random-resnet50 (weights not needed)": "image-statistics"})
    demo.demo_join(tmp_path, data_dir, n=4)
    assert {p.name for p in tmp_path.glob("*.png")} == {"retrieval.png", "probe_hs.png", "collocate_era5.png"}
    assert len(saved) == 3
    for fig, kwargs in saved:
        assert kwargs.get("bbox_inches") == "tight"
        assert texts_outside(fig) == []


def test_demo_retrieval_on_toy_data(tmp_path, capsys):
    ds = embedded_imagettes()
    scores = demo.demo_retrieval(ds, tmp_path, k=3)
    assert (tmp_path / "retrieval.png").stat().st_size > 1000
    assert "precision@3" in capsys.readouterr().out
    assert 0 <= float(scores["mean_average_precision"]) <= 1


def test_demo_probe_with_a_toy_encoder(tmp_path, monkeypatch):
    from xwvnet import synthetic

    def tiny(n, seed=0, size=(256, 256)):
        ds = make_imagettes(n, lines=16, samples=16, seed=seed)
        return ds.assign(hs=(S.IMAGETTE, np.linspace(1, 6, n), {"units": "m"}))

    monkeypatch.setattr(synthetic, "imagettes", tiny)

    def oracle(ds):
        hs = ds["hs"].values
        feats = np.stack([hs, np.random.default_rng(0).standard_normal(hs.size)], axis=1).astype(np.float32)
        return ds.assign({S.EMBEDDING: ((S.IMAGETTE, S.FEATURE), feats, {"encoder": "oracle"})})

    table = demo.demo_probe(tmp_path, n=40, encoders={"oracle": oracle, "image-statistics": "image-statistics"})
    assert isinstance(table, pd.DataFrame)
    assert table.loc["oracle", ("hs", "r2")] > 0.99
    assert (tmp_path / "probe_hs.png").is_file() and (tmp_path / "probe_hs.csv").is_file()


# --- the 15 published samples -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def real(wvnet_samples: Path) -> xr.Dataset:
    from xwvnet.io.quicklook import open_quicklooks

    ds = open_quicklooks(wvnet_samples, labels=wvnet_samples / "sample_data.csv")
    order = [Path(f).stem for f in pd.read_csv(wvnet_samples / "sample_data.csv")["filename"]]
    emb = np.load(wvnet_samples / "valid_embs.npy")
    published = xr.DataArray(emb, dims=(S.IMAGETTE, S.FEATURE), coords={S.IMAGETTE: order},
                             attrs={"encoder": "wvnet-resnet50 (published embeddings)"})
    return ds.assign({S.EMBEDDING: published.sel({S.IMAGETTE: ds[S.IMAGETTE].values})})


def test_real_sample_retrieval_matches_brute_force_and_plots(real, tmp_path):
    assert real.sizes[S.IMAGETTE] == 15
    found = R.neighbors(real, k=5)
    x = real[S.EMBEDDING].values.astype(np.float64)
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    sim = u @ u.T
    np.fill_diagonal(sim, -np.inf)
    ids = real[S.IMAGETTE].values
    np.testing.assert_array_equal(found["neighbor"].values, ids[np.argsort(-sim, axis=1)[:, :5]])
    scores = demo.demo_retrieval(real, tmp_path, k=4)
    assert scores.attrs["n_queries"] > 0
    assert (tmp_path / "retrieval.png").is_file()
