"""The main job (``xwvnet demo``): the whole path from quicklooks to science on the data at hand.

Each step is a small function that takes what the previous ones made and says plainly what it did; where an input
is missing (no sample data, no published weights) it says so and uses what is available.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from . import schema as S
from .datasets import DataUnavailableError, wvnet_sample


def _say(title: str) -> None:
    print(f"\n== {title} " + "=" * max(0, 100 - len(title)))


def ingest_samples(out: Path, quick: bool) -> xr.Dataset:
    """Ingest the 15 published quicklooks (or, with no data, synthetic imagettes) into ``out/imagettes.zarr``."""
    from .io.store import ingest, open_store, to_store

    store = out / "imagettes.zarr"
    _say("ingest")
    try:
        sample = wvnet_sample()
        report = ingest(sample["quicklooks"], store, labels=sample["labels"])
        print("the 15 published WV-Net sample quicklooks (Sentinel-1A, 2019)")
    except DataUnavailableError as err:
        from . import synthetic

        print(f"sample data not available ({err}); using 64 synthetic imagettes instead")
        report = to_store(synthetic.imagettes(16 if quick else 64, seed=0), store)
    print(report.summary())
    ds = open_store(store)
    table = pd.DataFrame(
        {
            "time": ds[S.TIME].values,
            "swath": ds[S.SWATH].values,
            "orbit": ds[S.ORBIT].values,
            "lines x samples": [f"{a} x {b}" for a, b in zip(ds[S.VALID_LINES].values, ds[S.VALID_SAMPLES].values)],
        },
        index=pd.Index(ds[S.IMAGETTE].values, name=S.IMAGETTE),
    )
    if S.LABELS in ds:
        labels = ds[S.LABELS].load()
        codes = labels[S.LABEL].values
        table["tags"] = [" ".join(str(c) for c, v in zip(codes, row) if v == 1) for row in labels.values]
    with pd.option_context("display.width", 160, "display.max_colwidth", 70):
        print(table.to_string())
    return ds


def choose_encoder(out: Path, quick: bool) -> str:
    """WV-Net when its published weights are here; otherwise say so plainly, and train a small encoder here."""
    from .datasets import cache_dir as weights_cache
    from .models.zoo import ENCODERS, find_weights
    from .training import train_briefly

    _say("encoder")
    if find_weights("wvnet-resnet50") is not None:
        print("using the published WV-Net weights (wvnet-resnet50)")
        return "wvnet-resnet50"
    print(f"the published WV-Net weights are NOT available here (offline). To use WV-Net, download\n  "
          f"{ENCODERS['wvnet-resnet50'].url}\ninto {weights_cache()} (see docs/embedding.md).")
    seconds = 20 if quick else 60
    print(f"instead: training a small encoder (SimCLR, ResNet-18, 96 px) for at most {seconds} s on the imagettes "
          "at hand. It is NOT WV-Net: a few seconds of CPU training make a weak encoder, shown here to run the path.")
    path = train_briefly(out / "imagettes.zarr", out / "encoder", seconds=seconds, progress=False)
    print(f"trained encoder: {path} (loss per step in {path.parent / 'loss.csv'})")
    return str(path)


def embed_samples(out: Path, quick: bool, ds: xr.Dataset, encoder: str) -> xr.Dataset:
    """Embed the ingested imagettes and store ``embedding`` in the Zarr store beside them."""
    import numpy as np

    from .inference import embed
    from .io.store import add_variables, open_store

    _say(f"embed with {encoder}")
    store = out / "imagettes.zarr"
    embedded = embed(ds, encoder, batch_size=16).compute()
    add_variables(embedded, store, [S.EMBEDDING])
    emb = embedded[S.EMBEDDING]
    print(f"embedding{tuple(emb.shape)} float32 written to {store}; attrs: {dict(emb.attrs)}")
    reference = _published_embeddings(embedded)
    if reference is not None and encoder == "wvnet-resnet50":
        diff = float(np.abs(emb.values - reference.values).max())
        print(f"max |ours - published valid_embs.npy| = {diff:.2e} (upstream accepts 1e-3)")
    return open_store(store)


def _published_embeddings(ds: xr.Dataset) -> xr.DataArray | None:
    """The upstream reference embeddings of the 15 samples, aligned to ``ds`` (rows follow sample_data.csv)."""
    import numpy as np

    try:
        sample = wvnet_sample()
    except DataUnavailableError:
        return None
    ids = [name.rsplit(".", 1)[0] for name in pd.read_csv(sample["labels"])["filename"]]
    if not set(ids) <= set(ds[S.IMAGETTE].values.tolist()):
        return None
    values = np.load(sample["embeddings"])
    da = xr.DataArray(values, dims=(S.IMAGETTE, S.FEATURE), coords={S.IMAGETTE: np.array(ids, dtype=object)},
                      attrs={"encoder": "wvnet-resnet50 (published reference embeddings, valid_embs.npy)"})
    return da.sel({S.IMAGETTE: ds[S.IMAGETTE].values})


def retrieval_panel(out: Path, quick: bool, ds: xr.Dataset) -> None:
    """Nearest imagettes among the samples, by the published WV-Net embeddings when present, else ours."""

    _say("retrieval")
    reference = _published_embeddings(ds)
    if reference is not None:
        print("retrieval on the published WV-Net reference embeddings of the 15 samples")
        ds = ds.drop_vars(S.EMBEDDING, errors="ignore").assign({S.EMBEDDING: reference})
    demo_retrieval(ds.compute(), out, k=4)


def probe_hs(out: Path, quick: bool, encoder: str) -> None:
    """A linear probe of significant wave height on synthetic imagettes, compared across encoders."""
    from .evaluation.table import DEFAULT_ENCODERS
    from .models.zoo import find_weights

    _say("linear probe of hs on synthetic imagettes")
    encoders = [e for e in DEFAULT_ENCODERS if e in ("random-resnet50", "image-statistics") or find_weights(e)]
    skipped = [e for e in DEFAULT_ENCODERS if e not in encoders]
    if skipped:
        print(f"not compared (weights not available offline): {', '.join(skipped)}")
    named = {e: e for e in encoders}
    if encoder not in named:
        named = {"trained here (SimCLR, brief)": encoder, **named}
    demo_probe(out, quick=quick, encoders=named)


def collocate_era5(out: Path, quick: bool) -> xr.Dataset | None:
    """ERA5 2 m temperature at imagette positions and times (synthetic imagettes and a real WV manifest)."""

    _say("collocate with ERA5")
    try:
        return demo_join(out, n=12 if quick else 24)
    except DataUnavailableError as err:
        print(f"ERA5 sample not available, join skipped: {err}")
        return None


def run(out: str | Path, *, quick: bool = False) -> int:
    """Run every step of the main job, writing under ``out``; returns a process exit code."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"xwvnet demo: writing under {out.resolve()}")
    ds = ingest_samples(out, quick)
    encoder = choose_encoder(out, quick)
    ds = embed_samples(out, quick, ds, encoder)
    retrieval_panel(out, quick, ds)
    probe_hs(out, quick, encoder)
    collocate_era5(out, quick)
    _say("done")
    print(f"outputs are in {out.resolve()}")
    return 0


# --- the two panels of the main job (xwvnet demo) --------------------------------------------------------------------
def demo_retrieval(ds: xr.Dataset, out: str | Path, *, k: int = 4, query_id: str | None = None) -> xr.Dataset:
    """Neighbours among the imagettes of ``ds`` (e.g. the 15 published samples): print each query's nearest ids,
    precision@k and mAP@k against the tags, and save ``out/retrieval.png`` for one query. Uses ``ds.embedding``,
    or the image-statistics baseline when ``ds`` has none (and says so). Returns the per-query metrics.
    """
    from . import plot
    from .retrieval import neighbors, retrieval_scores

    if S.EMBEDDING not in ds.data_vars:
        from .evaluation.baselines import image_statistics

        print("no embedding in the Dataset: retrieval uses the non-learned image-statistics baseline, "
              "standardised over these imagettes (its raw features differ in scale by orders of magnitude)")
        ds = image_statistics(ds).compute()
        emb = ds[S.EMBEDDING]
        ds = ds.assign({S.EMBEDDING: ((emb - emb.mean(S.IMAGETTE)) / emb.std(S.IMAGETTE).where(lambda v: v > 0, 1))
                        .assign_attrs(emb.attrs)})
    ds = ds.compute()
    k = min(k, ds.sizes[S.IMAGETTE] - 1)
    found = neighbors(ds, k=k)
    encoder = ds[S.EMBEDDING].attrs.get("encoder", "unknown encoder")
    print(f"nearest imagettes by cosine similarity of the {encoder} embeddings (k={k})")
    table = pd.DataFrame(
        {f"#{r}": [f"{n[-16:]} ({s:.2f})" for n, s in zip(found["neighbor"].values[:, r - 1],
                                                           found["similarity"].values[:, r - 1])]
         for r in found[S.RANK].values},
        index=pd.Index([str(v)[-24:] for v in found[S.IMAGETTE].values], name="query"),
    )
    with pd.option_context("display.width", 200, "display.max_colwidth", 40):
        print(table.to_string())
    scores = None
    if S.LABELS in ds.data_vars:
        scores = retrieval_scores(ds, found)
        print(f"precision@{k} = {float(scores['mean_precision_at_k']):.3f}, mAP@{k} = "
              f"{float(scores['mean_average_precision']):.3f} over {scores.attrs['n_queries']} queries "
              "(relevant = shares a tag)")
    query_id = query_id or str(ds[S.IMAGETTE].values[0])
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    figure = plot.neighbor_panel(ds, query_id, k=k, result=found.sel({S.IMAGETTE: [query_id]}))
    figure.savefig(out / "retrieval.png", dpi=110)
    print(f"saved {out / 'retrieval.png'}")
    return scores if scores is not None else found


def demo_probe(
    out: str | Path,
    *,
    n: int = 240,
    target: str = "hs",
    encoders: Any = None,
    size: tuple[int, int] = (256, 256),
    seed: int = 0,
    device: str = "auto",
    quick: bool = False,
) -> pd.DataFrame:
    """A probe of ``target`` on ``n`` synthetic imagettes, compared across ``encoders``: print the table, save
    ``out/probe_<target>.png`` (predicted against true, one panel per encoder) and ``out/probe_<target>.csv``.
    """
    from . import plot, synthetic
    from .evaluation.table import _evaluate, format_table

    if encoders is None:
        from .evaluation.table import DEFAULT_ENCODERS as encoders
    if quick:
        n, size = min(n, 64), (min(size[0], 128), min(size[1], 128))
    ds = synthetic.imagettes(n, seed=seed, size=size)
    table, predictions = _evaluate(ds, encoders, [target], split=None, test_size=0.3, seed=seed, batch_size=32,
                                   device=device, errors="warn", features=S.EMBEDDING, fit_kwargs={})
    print(f"linear probe of {target} on {n} synthetic imagettes ({size[0]} x {size[1]} px), "
          f"{table.attrs['n_train']} train / {table.attrs['n_test']} test, seed {seed}")
    print(format_table(table))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    truth = ds[target].compute()
    pairs = {name: (truth.sel({S.IMAGETTE: p[target][S.IMAGETTE]}).values, p[target].values)
             for name, p in predictions.items()}
    figure = plot.probe_comparison(pairs, target=target, units=str(truth.attrs.get("units", "")))
    figure.savefig(out / f"probe_{target}.png", dpi=110)
    table.to_csv(out / f"probe_{target}.csv")
    print(f"saved {out / f'probe_{target}.png'} and {out / f'probe_{target}.csv'}")
    return table


# --- the demo join -------------------------------------------------------------------------------------------------
UK_GRIB = "era5/era5-2mt-2019-03-uk.grib"
GLOBAL_NC = "era5/era5_2t_1.nc"
MANIFEST = "s1_wv/S1B_WV_SLC__1SSV_20210403T083025_20210403T084452_026300_032390_D542.SAFE/manifest.safe"


def _sample_path(name: str, data_dir: str | os.PathLike | None) -> Path:
    if data_dir is not None:
        path = Path(data_dir) / name
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: data_dir must be laid out like ../shared/data.")
        return path
    from .datasets import fetch

    return fetch(name)


def _synthetic_in_uk(n: int, seed: int) -> xr.Dataset:
    """Synthetic imagettes (tiny pixels) placed at random over the sea and land of the UK ERA5 box, March 2019."""
    from . import synthetic

    rng = np.random.default_rng(seed)
    ds = synthetic.imagettes(n, seed=seed, size=(64, 64))
    start = np.datetime64("2019-03-01T00:00", "ns")
    seconds = rng.integers(0, 30 * 86400, n).astype("timedelta64[s]")
    return ds.assign_coords({
        S.LATITUDE: (S.IMAGETTE, rng.uniform(50.2, 57.8, n)),
        S.LONGITUDE: (S.IMAGETTE, rng.uniform(-9.8, 1.8, n)),
        S.TIME: (S.IMAGETTE, np.sort(start + seconds).astype("datetime64[ns]")),
    })


def demo_join(out_dir: str | os.PathLike, data_dir: str | os.PathLike | None = None, *, n: int = 24,
              seed: int = 0) -> xr.Dataset:
    """ERA5 2 m temperature at imagette positions and times: synthetic imagettes in the UK box, and the 60 imagettes
    of the real WV manifest; prints a table, saves ``collocate_era5.png`` under ``out_dir``, returns the table.

    The UK field (hourly, March 2019) needs cfgrib; without it the global 20-degree netCDF (2021-03-01 12Z) is used
    for both. The manifest's imagettes (2021-04-03) are joined with the global field at a 40-day tolerance: this
    shows the join on real WV positions, not the weather of that day.
    """
    from .io.safe import imagettes_from_manifest
    from .joins.collocation import CollocationWarning, collocate

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    global_nc = _sample_path(GLOBAL_NC, data_dir)
    synthetic_ds = _synthetic_in_uk(n, seed)
    try:
        import cfgrib  # noqa: F401

        uk_source: xr.Dataset | Path = _sample_path(UK_GRIB, data_dir)
        uk_label = "ERA5 hourly t2m, UK, March 2019 (GRIB)"
    except ImportError:
        uk_source = global_nc
        synthetic_ds = synthetic_ds.assign_coords({S.TIME: (S.IMAGETTE, np.full(n, np.datetime64("2021-03-01T12",
                                                                                                   "ns")))})
        uk_label = "ERA5 t2m, 20-degree global grid, 2021-03-01 12Z (cfgrib missing: no GRIB)"
    uk = collocate(synthetic_ds, uk_source, variables="t2m", prefix="era5")
    manifest = imagettes_from_manifest(_sample_path(MANIFEST, data_dir))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CollocationWarning)
        wv = collocate(manifest, global_nc, variables="t2m", prefix="era5", time_tolerance="40D")
    columns = [S.TIME, S.LATITUDE, S.LONGITUDE, "era5_t2m"]
    table = xr.concat(
        [part[columns].reset_coords()[columns].compute().assign_coords(group=(S.IMAGETTE, [group] * part.sizes[
            S.IMAGETTE])) for part, group in ((uk, "synthetic (UK)"), (wv, "WV manifest"))],
        dim=S.IMAGETTE,
    )
    table.attrs = {"title": "ERA5 2 m temperature at imagette positions and times (xwvnet.collocate.demo_join)"}
    table["era5_t2m"].attrs = uk["era5_t2m"].attrs
    frame = table.to_dataframe()
    frame["era5_t2m_degC"] = frame["era5_t2m"] - 273.15
    print(f"synthetic imagettes: {uk_label}")
    print(f"manifest imagettes ({manifest.attrs['safe']}): ERA5 t2m of 2021-03-01 12Z, linear, 40-day tolerance")
    with pd.option_context("display.width", 160, "display.max_rows", 200, "display.precision", 2):
        print(frame.drop(columns="era5_t2m").to_string())
    from matplotlib.figure import Figure

    from . import plot

    fig = Figure(figsize=(12, 5), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, part, title in ((axes[0], uk, uk_label), (axes[1], wv, "WV manifest imagettes, ERA5 t2m (2021-03-01)")):
        celsius = (part["era5_t2m"] - 273.15).rename("2 m temperature").assign_attrs(units="degC")
        plot.positions(part, celsius, ax=ax, title=title, cmap="coolwarm")
    figure = out / "collocate_era5.png"
    fig.savefig(figure, dpi=100)
    print(f"figure: {figure}")
    return table
