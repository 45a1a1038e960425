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


def collocate_era5(out: Path, quick: bool) -> xr.Dataset | None:
    """ERA5 2 m temperature at imagette positions and times (synthetic imagettes and a real WV manifest)."""
    from .collocate import demo_join

    _say("collocate with ERA5")
    try:
        return demo_join(out, n=12 if quick else 24)
    except DataUnavailableError as err:
        print(f"ERA5 sample not available, join skipped: {err}")
        return None


STEPS = [ingest_samples, collocate_era5]


def run(out: str | Path, *, quick: bool = False) -> int:
    """Run every step of the main job, writing under ``out``; returns a process exit code."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"xwvnet demo: writing under {out.resolve()}")
    for step in STEPS:
        step(out, quick)
    _say("done")
    print(f"outputs are in {out.resolve()}")
    return 0
