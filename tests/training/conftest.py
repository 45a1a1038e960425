"""Fixtures of the training tests."""

from __future__ import annotations

import pytest
import xarray as xr

import xwvnet


@pytest.fixture(scope="module")
def waves() -> xr.Dataset:
    """64 synthetic imagettes with sea-state texture, in memory."""
    return xwvnet.synthetic.imagettes(64, seed=0, size=(96, 96), chunks=16).load()
