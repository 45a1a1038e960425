"""Fixtures of the evaluation tests."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import xarray as xr

from tests._factories import make_imagettes
from xwvnet import schema as S


def _bright(n: int = 60, seed: int = 0) -> xr.Dataset:
    """Imagettes whose brightness (and a ragged valid extent) follow a target."""
    ds = make_imagettes(n, lines=48, samples=40, seed=seed)
    rng = np.random.default_rng(seed)
    level = rng.uniform(40, 200, n)
    pixels = np.clip(level[:, None, None] + 20 * rng.standard_normal((n, 48, 40)), 1, 255).astype(np.uint8)
    lines = rng.integers(30, 49, n).astype(np.int32)
    for i, v in enumerate(lines):
        pixels[i, v:] = 0
    return ds.assign(
        {S.QUICKLOOK: (ds[S.QUICKLOOK].dims, pixels), S.VALID_LINES: (S.IMAGETTE, lines),
         "brightness": (S.IMAGETTE, level)})


@pytest.fixture
def bright() -> Callable[..., xr.Dataset]:
    """``bright(n, seed)``: imagettes whose brightness (and a ragged valid extent) follow a target, ``brightness``."""
    return _bright
