"""Fixtures of the export tests: clustered embeddings, and the 15 published quicklooks embedded by a ResNet-18."""

from __future__ import annotations

from pathlib import Path

import pytest
import xarray as xr

import xwvnet
from tests.export._helpers import embeddings


@pytest.fixture
def emb() -> xr.Dataset:
    return embeddings()


@pytest.fixture(scope="session")
def quicklook_embeddings(tmp_path_factory, wvnet_samples, weights) -> Path:
    """An embedding store of the 15 published WV-Net quicklooks (no positions), by a small random ResNet-18."""
    pytest.importorskip("torch")
    folder = tmp_path_factory.mktemp("quicklooks")
    files = sorted(wvnet_samples.glob("*.png"))
    assert len(files) == 15
    xwvnet.ingest([str(f) for f in files], out=folder / "imagettes.zarr")
    report = xwvnet.embed_store(folder / "imagettes.zarr", folder / "embeddings.zarr", weights, progress=False)
    assert report.complete
    return folder / "embeddings.zarr"
