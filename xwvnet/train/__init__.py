"""Self-supervised training (SimCLR) of imagette encoders: ``xwvnet.train(ds_or_store, out_dir=...)``.

``xwvnet train STORE --out DIR`` is the same entry point from a shell, and
``torchrun --nproc_per_node N -m xwvnet.cli train STORE --out DIR`` runs it on N GPUs (or N CPU processes).
"""

from __future__ import annotations

import sys
import types

from .simclr import CheckpointError, load_checkpoint, nt_xent, train, train_briefly

__all__ = ["train", "train_briefly", "nt_xent", "load_checkpoint", "CheckpointError"]


class _CallableModule(types.ModuleType):
    """``xwvnet.train`` is both this package and the function: importing a submodule (``xwvnet.train.loader``)
    rebinds the name ``xwvnet.train`` to the package, so the package itself forwards calls to :func:`train`."""

    def __call__(self, *args, **kwargs):
        return train(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
