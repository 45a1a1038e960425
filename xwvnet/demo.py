"""The main job (``xwvnet demo``): the whole path from quicklooks to science on the data at hand.

Each step is a small function that takes what the previous ones made and says plainly what it did; where an input
is missing (no sample data, no published weights) it says so and uses what is available.
"""

from __future__ import annotations

from pathlib import Path

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
    from .models.registry import ENCODERS, find_weights, weights_cache
    from .train import train_briefly

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

    from .embed import embed
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
    from .evaluation import demo_retrieval

    _say("retrieval")
    reference = _published_embeddings(ds)
    if reference is not None:
        print("retrieval on the published WV-Net reference embeddings of the 15 samples")
        ds = ds.drop_vars(S.EMBEDDING, errors="ignore").assign({S.EMBEDDING: reference})
    demo_retrieval(ds.compute(), out, k=4)


def probe_hs(out: Path, quick: bool, encoder: str) -> None:
    """A linear probe of significant wave height on synthetic imagettes, compared across encoders."""
    from .evaluation import DEFAULT_ENCODERS, demo_probe
    from .models.registry import find_weights

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
    from .collocate import demo_join

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
