"""Fixtures of the model tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests._factories import save_random_resnet18


@pytest.fixture(scope="module")
def r18_file(tmp_path_factory) -> Path:
    """A seeded (seed 0) random ResNet-18 state dict named ``r18.pt``, without a sidecar."""
    return save_random_resnet18(tmp_path_factory.mktemp("weights") / "r18.pt", seed=0)
