"""Self-supervised training (SimCLR) of imagette encoders.

The entry point is :func:`xwvnet.train` (``xwvnet train STORE --out DIR`` from a shell;
``torchrun --nproc_per_node N -m xwvnet.cli train STORE --out DIR`` on N GPUs or CPU processes). The package is
named ``training`` so that no public name is both a module and a function. Its rooms: ``loss`` (NT-Xent),
``head`` (projection head and model), ``checkpoint`` (save, load, RNG states), ``simclr`` (schedule, loop,
outputs), ``augment`` (the views) and ``loader`` (streaming batches from a store, and :class:`ImagetteDataset`, the
public torch Dataset over a store for your own loop).
"""

from __future__ import annotations

from .checkpoint import CheckpointError, load_checkpoint
from .loader import ImagetteDataset
from .loss import nt_xent
from .simclr import TrainConfig, train

__all__ = ["train", "TrainConfig", "nt_xent", "load_checkpoint", "CheckpointError", "ImagetteDataset"]
