"""The SimCLR model: a backbone's pooled features through a projection head that is discarded after training."""

from __future__ import annotations

import torch
from torch import nn

from ..models import resnet

__all__ = ["ProjectionHead", "SimCLR", "param_groups"]


class ProjectionHead(nn.Module):
    """Linear -> BatchNorm -> ReLU -> Linear (SimCLR v2 style), discarded after training.

    The loss is taken on the head's output rather than on the backbone's features because the head absorbs the
    invariances the loss asks for, which leaves the features more useful downstream (Chen et al. 2020).

    Parameters
    ----------
    in_features : int
        Width of the backbone's pooled features.
    hidden : int, optional
        Width of the hidden layer; default ``in_features``.
    out_features : int, default 128
        Width of the projections the loss compares.
    """

    def __init__(self, in_features: int, hidden: int | None = None, out_features: int = 128) -> None:
        super().__init__()
        hidden = hidden or in_features
        self.net = nn.Sequential(
            nn.Linear(in_features, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, out_features),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Project pooled features.

        Parameters
        ----------
        x : torch.Tensor
            ``(n, in_features)`` pooled features.

        Returns
        -------
        torch.Tensor
            ``(n, out_features)`` projections.
        """
        return self.net(x)


class SimCLR(nn.Module):
    """Backbone (pooled features) followed by a projection head: what the SimCLR loss trains.

    Parameters
    ----------
    backbone : xwvnet.models.resnet.ResNet
        The encoder kept after training (no classifier: it returns pooled features).
    head : ProjectionHead
        The projection head.
    """

    def __init__(self, backbone: resnet.ResNet, head: ProjectionHead) -> None:
        super().__init__()
        self.backbone, self.head = backbone, head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Projections of a batch of model inputs.

        Parameters
        ----------
        x : torch.Tensor
            ``(n, 3, h, w)`` normalised views.

        Returns
        -------
        torch.Tensor
            ``(n, out_features)`` projections.
        """
        return self.head(self.backbone(x))


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Optimiser parameter groups with no weight decay on biases and normalisation parameters.

    Decaying 1-D parameters (biases, batch-norm scales and shifts) only shrinks them towards values the network
    does not want; the usual practice is to decay the weight matrices and kernels alone.

    Parameters
    ----------
    model : torch.nn.Module
        The model to optimise.
    weight_decay : float
        Decay of the parameters of two or more dimensions.

    Returns
    -------
    list of dict
        Two groups, ``[{"params": ..., "weight_decay": weight_decay}, {"params": ..., "weight_decay": 0.0}]``.
    """
    decay = [p for p in model.parameters() if p.ndim > 1]
    plain = [p for p in model.parameters() if p.ndim <= 1]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": plain, "weight_decay": 0.0}]
