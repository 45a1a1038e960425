"""Self-supervised training (SimCLR) of imagette encoders.

The entry point is :func:`xwvnet.train` (``xwvnet train STORE --out DIR`` from a shell;
``torchrun --nproc_per_node N -m xwvnet.cli train STORE --out DIR`` on N GPUs or CPU processes). The package is
named ``training`` so that no public name is both a module and a function.
"""

from __future__ import annotations

from .simclr import CheckpointError, load_checkpoint, nt_xent, train, train_briefly

__all__ = ["train", "train_briefly", "nt_xent", "load_checkpoint", "CheckpointError"]
