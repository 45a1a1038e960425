"""Shared fixtures: the real sample-data mirror, and small imagette Datasets made here."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from xwvnet import schema as S

REPO = Path(__file__).resolve().parent.parent


def _mirror() -> Path | None:
    value = os.environ.get("XWVNET_DATA_DIR", "").strip()
    for candidate in ([Path(value)] if value else []) + [REPO.parent / "shared" / "data"]:
        if candidate.is_dir():
            return candidate
    return None


@pytest.fixture(autouse=True, scope="session")
def _point_xwvnet_at_the_mirror():
    """Make the package itself read the mirror too (as `make test` does), without touching the network."""
    mirror = _mirror()
    if mirror is not None and not os.environ.get("XWVNET_DATA_DIR"):
        os.environ["XWVNET_DATA_DIR"] = str(mirror)
    yield


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The folder of real sample files (XWVNET_DATA_DIR, else ../shared/data); skip when there is none."""
    mirror = _mirror()
    if mirror is None:
        pytest.skip("real sample data not available: set XWVNET_DATA_DIR to a mirror laid out like ../shared/data")
    return mirror


@pytest.fixture(scope="session")
def wvnet_samples(data_dir: Path) -> Path:
    """The folder holding the 15 published WV-Net quicklooks, their tag CSV and reference embeddings."""
    folder = data_dir / "wvnet_upstream"
    if not (folder / "sample_data.csv").is_file():
        pytest.skip(f"the published WV-Net sample is not in {folder}")
    return folder


def make_imagettes(n: int = 8, lines: int = 32, samples: int = 40, seed: int = 0) -> xr.Dataset:
    """A tiny valid imagette Dataset with random pixels, for tests that need no physics."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"test-{seed}-{i:04d}" for i in range(n)], dtype=object)
    return xr.Dataset(
        {
            S.QUICKLOOK: ((S.IMAGETTE, S.LINE, S.SAMPLE), rng.integers(0, 256, (n, lines, samples), dtype=np.uint8)),
            S.VALID_LINES: (S.IMAGETTE, np.full(n, lines, dtype=np.int32)),
            S.VALID_SAMPLES: (S.IMAGETTE, np.full(n, samples, dtype=np.int32)),
        },
        coords={
            S.IMAGETTE: ids,
            S.TIME: (S.IMAGETTE, np.datetime64("2020-01-01", "ns") + np.arange(n).astype("timedelta64[h]")),
            S.LATITUDE: (S.IMAGETTE, rng.uniform(-60, 60, n)),
            S.LONGITUDE: (S.IMAGETTE, rng.uniform(-180, 180, n)),
            S.MISSION: (S.IMAGETTE, np.array(["s1a"] * n, dtype=object)),
            S.SWATH: (S.IMAGETTE, np.array(["wv1", "wv2"] * (n // 2) + ["wv1"] * (n % 2), dtype=object)),
            S.POLARIZATION: (S.IMAGETTE, np.array(["vv"] * n, dtype=object)),
            S.ORBIT: (S.IMAGETTE, np.arange(n, dtype=np.int64) + 1000),
        },
    )


@pytest.fixture
def imagettes() -> xr.Dataset:
    return make_imagettes()


def save_random_resnet18(path: Path, seed: int) -> Path:
    """A seeded random ResNet-18 state dict in torchvision format: a small, offline encoder for tests."""
    import torch

    from xwvnet.models.resnet import resnet18

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.save(resnet18().state_dict(), path)
    return path


def embed_whole_store(store: Path, weights: Path) -> np.ndarray:
    """Single-process embeddings of a whole store in one block: the reference that other runs must equal."""
    import xwvnet
    from xwvnet.inference import embed_block

    ds = xwvnet.open_store(store).load()
    return embed_block(ds[S.QUICKLOOK].values, ds[S.VALID_LINES].values, ds[S.VALID_SAMPLES].values,
                       encoder=str(weights))
