"""Settings and run-folder helpers shared by the training, checkpoint, weights and device tests."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import numpy as np

#: A tiny run on 64 imagettes (tests/training/conftest.py's ``waves``): batches of 16 at 32 x 32.
TINY = dict(image_size=32, batch_size=16, warmup_steps=1, lr=3e-3, progress=False)
#: A tiny run on the CPU on 16 imagettes (tests/conftest.py's ``few_waves``): batches of 8 at 32 x 32.
TINY_CPU = dict(image_size=32, batch_size=8, warmup_steps=1, lr=3e-3, progress=False, device="cpu")


def digest(path: Path) -> str:
    """The SHA-256 of a file, in hex."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def copy_run(src: Path, dst: Path) -> Path:
    """A copy of a run folder (its files), for a test that damages it."""
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


def seeded_rng_states(seed: int) -> dict:
    """Python's, numpy's and torch's global generators seeded with ``seed`` and advanced once: their states."""
    import torch

    from xwvnet.training.checkpoint import rng_state

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    random.random(), np.random.rand(), torch.rand(1)  # not a freshly seeded state
    return rng_state()


def file_names(folder: Path) -> list[str]:
    """The names of the files in ``folder``, sorted (to see that no temporary file is left behind)."""
    return sorted(p.name for p in folder.iterdir())
