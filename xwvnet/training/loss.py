"""The SimCLR objective: NT-Xent over paired projections, with negatives gathered across DDP ranks.

Kept apart from the loop so that it can be checked against a direct computation, and reused by benchmarks.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from ..errors import InvalidArgumentError

__all__ = ["nt_xent", "simclr_loss"]


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.1, *, gather: bool = False) -> torch.Tensor:
    r"""Normalised-temperature cross-entropy (SimCLR's NT-Xent) of paired projections ``z1[i] <-> z2[i]``.

    With the 2N rows :math:`u_k` of ``z1`` and ``z2`` L2-normalised, :math:`s_{kl} = u_k \cdot u_l / \tau`, and
    :math:`p(k)` the row paired with row :math:`k`,

    .. math::

        L = \frac{1}{2N} \sum_{k=1}^{2N} \Big[ -s_{k\,p(k)} + \log \sum_{l \ne k} \exp s_{kl} \Big]

    i.e. each row is classified against the other 2N - 1 rows, its positive being its pair. Why: it pulls two views
    of one imagette together and pushes them away from every other imagette of the batch.

    Parameters
    ----------
    z1, z2 : torch.Tensor
        ``(n, d)`` projections of the first and second views; row ``i`` of each comes from the same imagette.
    temperature : float, default 0.1
        :math:`\tau`; lower values weigh hard negatives more.
    gather : bool, default False
        Inside an initialised process group of more than one rank, take the candidates from every rank's rows
        (gathered with gradient), so negatives come from the global batch: the mean over ranks then equals the
        single-process loss on the concatenated batch.

    Returns
    -------
    torch.Tensor
        The scalar loss, in the dtype of the inputs.

    Raises
    ------
    ValueError
        If ``z1`` and ``z2`` are not two 2-D tensors of the same shape.

    Examples
    --------
    >>> z = torch.eye(4)
    >>> float(nt_xent(z, z, 0.1)) < 0.01  # each row's pair is its most similar row
    True
    """
    if z1.shape != z2.shape or z1.ndim != 2:
        raise InvalidArgumentError(
            f"expected two (n, d) tensors of the same shape, got {tuple(z1.shape)} and {tuple(z2.shape)}"
        )
    z1, z2 = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    n, offset = z1.shape[0], 0
    all1, all2 = z1, z2
    if gather and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        all1, all2 = _GatherWithGrad.apply(z1), _GatherWithGrad.apply(z2)
        offset = dist.get_rank() * n
    total = all1.shape[0]
    queries = torch.cat([z1, z2])  # (2n, d)
    logits = queries @ torch.cat([all1, all2]).T / temperature  # (2n, 2N)
    rows = torch.arange(n, device=z1.device) + offset
    own = torch.cat([rows, rows + total])
    positive = torch.cat([rows + total, rows])
    self_mask = torch.zeros_like(logits, dtype=torch.bool)
    self_mask[torch.arange(2 * n, device=z1.device), own] = True
    return F.cross_entropy(logits.masked_fill(self_mask, float("-inf")), positive)


class _GatherWithGrad(torch.autograd.Function):
    """Concatenate every rank's rows; the backward pass returns to each rank the summed gradient of its rows."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor) -> torch.Tensor:
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        ctx.rows = x.shape[0]
        return torch.cat(parts)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous()
        dist.all_reduce(grad)  # every rank's loss depends on these rows
        start = dist.get_rank() * ctx.rows
        return grad[start : start + ctx.rows]


def simclr_loss(model: nn.Module, v1: torch.Tensor, v2: torch.Tensor, temperature: float,
                gather: bool = False) -> torch.Tensor:
    """NT-Xent of one training step, both views through the model in one pass.

    One pass, so that batch normalisation sees both views (as SimCLR does); the projections are cast to float32
    before the loss, whatever the autocast precision.

    Parameters
    ----------
    model : torch.nn.Module
        Backbone and projection head (e.g. :class:`~xwvnet.training.head.SimCLR`, possibly wrapped in DDP).
    v1, v2 : torch.Tensor
        ``(n, 3, size, size)`` first and second views of the same ``n`` imagettes.
    temperature : float
        Temperature of :func:`nt_xent`.
    gather : bool, default False
        Take negatives from every DDP rank (see :func:`nt_xent`).

    Returns
    -------
    torch.Tensor
        The scalar loss.
    """
    z1, z2 = model(torch.cat([v1, v2])).float().chunk(2)
    return nt_xent(z1, z2, temperature, gather=gather)
