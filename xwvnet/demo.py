"""The main job (``xwvnet demo``): the whole path from quicklooks to science on the data at hand.

Each step is a small function that takes what the previous ones made and says plainly what it did; where an input
is missing (no sample data, no published weights) it says so and uses what is available.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from . import schema as S
from ._files import local_path
from .datasets import DataUnavailableError, wvnet_sample
from .errors import InputNotFoundError


def _say(title: str) -> None:
    print(f"\n== {title} " + "=" * max(0, 100 - len(title)))


def ingest_samples(out: Path, quick: bool) -> xr.Dataset:
    """Ingest the 15 published quicklooks (or, with no data, synthetic imagettes) into ``out/imagettes.zarr``."""
    from .ingestion import ingest
    from .io.store import open_store, to_store

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
    from .training import train

    _say("encoder")
    if find_weights("wvnet-resnet50") is not None:
        print("using the published WV-Net weights (wvnet-resnet50)")
        return "wvnet-resnet50"
    print(f"the published WV-Net weights are NOT available here (offline). To use WV-Net, download\n  "
          f"{ENCODERS['wvnet-resnet50'].url}\ninto {weights_cache()} (see docs/embedding.md).")
    steps = 10 if quick else 40
    print(f"instead: training a small encoder here (SimCLR, ResNet-18, 64 px, batch 8, {steps} steps, seed 0) on "
          "the imagettes at hand. It is NOT WV-Net: a few CPU steps on 15 images make a weak encoder, shown only to "
          "run the whole path; the same steps give the same encoder on every run.")
    path = train(out / "imagettes.zarr", out / "encoder", overwrite=True, arch="resnet18",
                 image_size=64, batch_size=8, steps=steps, warmup_steps=2, checkpoint_every=steps,
                 seed=0, progress=False)
    print(f"trained encoder: {path} (loss per step in {path.parent / 'loss.csv'})")
    return str(path)


def embed_samples(out: Path, quick: bool, ds: xr.Dataset, encoder: str) -> xr.Dataset:
    """Embed the ingested imagettes and store ``embedding`` in the Zarr store beside them."""

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
        named = {"trained here (ResNet-18, SimCLR, a few CPU steps on 15 images)": encoder, **named}
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
    out = local_path(out, "the demo")
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
    figure.savefig(out / "retrieval.png", dpi=110, bbox_inches="tight")
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
    from .evaluation.table import evaluate, format_table

    if encoders is None:
        from .evaluation.table import DEFAULT_ENCODERS as encoders
    if quick:
        n, size = min(n, 64), (min(size[0], 128), min(size[1], 128))
    ds = synthetic.imagettes(n, seed=seed, size=size)
    predictions: dict[str, dict[str, xr.DataArray]] = {}
    table = evaluate(ds, encoders, [target], test_size=0.3, seed=seed, device=device, errors="warn",
                     predictions=predictions)
    print(f"linear probe of {target} on {n} synthetic imagettes ({size[0]} x {size[1]} px), "
          f"{table.attrs['n_train']} train / {table.attrs['n_test']} test, seed {seed}")
    print(format_table(table))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    truth = ds[target].compute()
    pairs = {name: (truth.sel({S.IMAGETTE: p[target][S.IMAGETTE]}).values, p[target].values)
             for name, p in predictions.items()}
    figure = plot.probe_comparison(pairs, target=target, units=str(truth.attrs.get("units", "")))
    figure.savefig(out / f"probe_{target}.png", dpi=110, bbox_inches="tight")
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
            raise InputNotFoundError(f"{path} is missing: data_dir must be laid out like ../shared/data.")
        return path
    from .datasets import fetch

    return fetch(name)


def demo_join(out_dir: str | os.PathLike, data_dir: str | os.PathLike | None = None, *, n: int = 24,
              seed: int = 0) -> xr.Dataset:
    """ERA5 2 m temperature at imagette positions and times, only where and when the sample files cover them.

    Synthetic imagettes are placed inside each ERA5 sample's coverage: in the UK box during March 2019 for the
    hourly GRIB (needs cfgrib), and world-wide within an hour of 2021-03-01 12Z for the 20-degree global netCDF
    (one time step, joined with a 1-hour tolerance). The 60 real imagettes of the WV manifest (2021-04-03) are
    mapped but not joined: the samples hold no ERA5 field of that day. Prints a table, saves
    ``collocate_era5.png`` under ``out_dir`` and returns the joined table.

    Parameters
    ----------
    out_dir : str or os.PathLike
        Where the figure goes.
    data_dir : str or os.PathLike, optional
        A folder laid out like the sample registry (default: fetched through :mod:`xwvnet.datasets`).
    n : int, default 24
        Synthetic imagettes per source.
    seed : int, default 0
        Seed of the synthetic imagettes.

    Returns
    -------
    xarray.Dataset
        One row per joined imagette: time, position, ``era5_t2m`` (K) and the ``group`` it belongs to.
    """
    from matplotlib.figure import Figure

    from . import plot, synthetic
    from .io.safe import imagettes_from_manifest
    from .joins.collocation import collocate

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    parts = []
    try:
        import cfgrib  # noqa: F401

        uk = synthetic.imagettes(n, seed=seed, size=(32, 32), region=(-9.5, 50.5, 1.5, 57.5),
                                 time=("2019-03-01T00", "2019-03-31T23"))
        parts.append(("synthetic imagettes, UK box, March 2019: ERA5 hourly t2m (GRIB, linear in space and time)",
                      collocate(uk, _sample_path(UK_GRIB, data_dir), variables="t2m", prefix="era5")))
    except ImportError:
        print("cfgrib is not installed: the UK GRIB sample is skipped (pip install xwvnet[grib])")
    world = synthetic.imagettes(n, seed=seed + 1, size=(32, 32), time=("2021-03-01T11:00", "2021-03-01T13:00"))
    parts.append(("synthetic imagettes world-wide, 2021-03-01 11-13Z: ERA5 t2m of 12Z (20-degree grid, 1 h tolerance)",
                  collocate(world, _sample_path(GLOBAL_NC, data_dir), variables="t2m", prefix="era5",
                            time_tolerance="1h")))
    manifest = imagettes_from_manifest(_sample_path(MANIFEST, data_dir))
    columns = [S.TIME, S.LATITUDE, S.LONGITUDE, "era5_t2m"]
    table = xr.concat(
        [part[columns].reset_coords()[columns].compute().assign_coords(group=(S.IMAGETTE, [title.split(":")[0]] *
                                                                              part.sizes[S.IMAGETTE]))
         for title, part in parts],
        dim=S.IMAGETTE,
    )
    table.attrs = {"title": "ERA5 2 m temperature at synthetic imagette positions and times (xwvnet.demo.demo_join)"}
    table["era5_t2m"].attrs = parts[0][1]["era5_t2m"].attrs
    frame = table.to_dataframe()
    frame["era5_t2m_degC"] = frame["era5_t2m"] - 273.15
    for title, _ in parts:
        print(title)
    with pd.option_context("display.width", 160, "display.max_rows", 200, "display.precision", 2):
        print(frame.drop(columns="era5_t2m").to_string())
    first, last = (str(v)[:16] for v in manifest[S.TIME].values[[0, -1]])
    print(f"WV manifest {manifest.attrs['safe']}: {manifest.sizes[S.IMAGETTE]} real imagettes, {first} to {last}; "
          "mapped, not joined (no ERA5 sample of that day)")
    fig = Figure(figsize=(6 * (len(parts) + 1), 5), layout="constrained")
    axes = fig.subplots(1, len(parts) + 1)
    for ax, (title, part) in zip(axes, parts):
        celsius = (part["era5_t2m"] - 273.15).rename("ERA5 2 m temperature").assign_attrs(units="degC")
        plot.positions(part, celsius, ax=ax, title=title.replace(": ", ":\n"), cmap="coolwarm")
    plot.positions(manifest, ax=axes[-1], title=f"real WV imagettes of the manifest, {first[:10]}\n(positions only: "
                   "no ERA5 sample of that day)")
    figure = out / "collocate_era5.png"
    fig.savefig(figure, dpi=100, bbox_inches="tight")
    print(f"figure: {figure}")
    return table
