"""Batch-norm statistics of a trained backbone, re-estimated on the inputs it will embed.

SimCLR trains on views (``image_size`` windows of the embedding field, flipped and turned); embedding feeds the
whole 224-px field through the encoder's transform (for a 256-px imagette and ``"wvnet"``, two thirds of it the zero
border). Batch norm's running statistics, which the saved encoder normalises with, are those of the training views,
so every layer of the embedding would be normalised with the statistics of other inputs. Before an encoder is saved,
its statistics are measured again on embedding inputs of the training imagettes (the cumulative average of
"precise batch norm", weights unchanged). Measured in ``tests/test_training_init.py``'s setting: six continued steps
at the continuing learning rate moved held-out embeddings by 11 to 16 times their spread across imagettes with the
views' statistics, and by 0.4 with re-estimated ones; that is statistics, not learning.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from torch import nn

from ..errors import InvalidDataError

__all__ = ["calibration_index", "reestimate_batch_norm"]


def calibration_index(starts: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Positions of about ``n`` imagettes in whole chunks chosen in a seeded order (each chunk read once).

    Parameters
    ----------
    starts : numpy.ndarray
        Chunk starts along ``imagette``, plus the end (:func:`xwvnet.training.loader.chunk_starts`).
    n : int
        Imagettes wanted (all of them when the data hold fewer).
    seed : int
        Seed of the chunk order.

    Returns
    -------
    numpy.ndarray
        Sorted int64 positions, ``min(n, total)`` of them.

    Examples
    --------
    >>> calibration_index(np.array([0, 4, 8, 12]), 6, seed=0).size
    6
    """
    total = int(starts[-1])
    if n >= total:
        return np.arange(total, dtype=np.int64)
    order = np.random.default_rng([seed, 2]).permutation(len(starts) - 1)
    picked: list[np.ndarray] = []
    count = 0
    for c in order:
        picked.append(np.arange(starts[c], starts[c + 1]))
        count += int(starts[c + 1] - starts[c])
        if count >= n:
            break
    return np.sort(np.concatenate(picked)[:n]).astype(np.int64)


def reestimate_batch_norm(backbone: nn.Module, inputs: Iterable[torch.Tensor]) -> nn.Module:
    """Replace the running statistics of every batch norm of ``backbone`` by their average over ``inputs``.

    Each layer's ``running_mean`` and ``running_var`` become the mean over batches of the batch statistics that
    layer sees (``momentum=None``, torch's cumulative average); weights, biases and the other layers are unchanged.

    Parameters
    ----------
    backbone : torch.nn.Module
        Changed in place; plain (not synchronised) batch norms, on the device of ``inputs``.
    inputs : iterable of torch.Tensor
        Batches of model input, as embedding makes them.

    Returns
    -------
    torch.nn.Module
        ``backbone``, in eval mode.

    Raises
    ------
    ValueError
        If ``inputs`` holds no batch.
    """
    batches = iter(inputs)
    first = next(batches, None)
    if first is None:
        raise InvalidDataError("no input batch to measure batch-norm statistics on.")
    norms = [m for m in backbone.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    backbone.train()
    with torch.no_grad():
        backbone(first)
        for x in batches:
            backbone(x)
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    return backbone.eval()
