"""Every backbone family in one table: the ResNets of :mod:`~xwvnet.models.resnet` and the ViTs of
:mod:`~xwvnet.models.vit`, by architecture name.

Code that picks, builds or sizes a backbone by name (encoders, training) goes through here, so a new family is one
table away. Each family keeps its own layout table (:data:`xwvnet.models.resnet.LAYERS`,
:data:`xwvnet.models.vit.LAYOUTS`); this module only joins them.
"""

from __future__ import annotations

from torch import nn

from ..errors import InvalidArgumentError, InvalidTypeError
from . import resnet, vit

__all__ = ["ARCHITECTURES", "backbone_arch", "build_backbone", "build_like", "check_arch", "feature_width", "is_vit"]

#: architecture name -> constructor taking ``in_chans=`` (ResNets and ViTs; ViTs take ``img_size=`` too)
ARCHITECTURES = {**resnet.ARCHITECTURES, **vit.ARCHITECTURES}


def check_arch(arch: str) -> str:
    """``arch`` if it is a known architecture.

    Parameters
    ----------
    arch : str
        An architecture name.

    Returns
    -------
    str
        ``arch``.

    Raises
    ------
    ValueError
        On an unknown name (the message lists the known ones).

    Examples
    --------
    >>> check_arch("vit_small_patch16")
    'vit_small_patch16'
    """
    if arch not in ARCHITECTURES:
        raise InvalidArgumentError(f"unknown architecture {arch!r}; expected one of {sorted(ARCHITECTURES)}.")
    return arch


def is_vit(arch: str) -> bool:
    """Whether an architecture is a vision transformer (its embedding is the class token, not a pooled map).

    Parameters
    ----------
    arch : str
        A key of :data:`ARCHITECTURES`.

    Returns
    -------
    bool

    Raises
    ------
    ValueError
        On an unknown name.
    """
    return check_arch(arch) in vit.LAYOUTS


def feature_width(arch: str) -> int:
    """Width of the embeddings of an architecture, from its family's table.

    Parameters
    ----------
    arch : str
        A key of :data:`ARCHITECTURES`.

    Returns
    -------
    int
        2048 for ResNet-50, 512 for ResNet-18/34, 384 for ViT-S, 768 for ViT-B.

    Raises
    ------
    ValueError
        On an unknown name.

    Examples
    --------
    >>> feature_width("resnet50"), feature_width("vit_small_patch8")
    (2048, 384)
    """
    return vit.vit_width(arch) if is_vit(arch) else resnet.embedding_size(arch)


def build_backbone(arch: str, in_chans: int = 3, img_size: int | None = None, *,
                   init_weights: bool = True) -> nn.Module:
    """A randomly initialised backbone (seed torch first for a reproducible one), without a classifier.

    Parameters
    ----------
    arch : str
        A key of :data:`ARCHITECTURES`.
    in_chans : int, default 3
        Input channels.
    img_size : int, optional
        ViTs only: the input side their position embedding is learned for (default 224). ResNets take any size.
    init_weights : bool, default True
        ViTs only: ``False`` skips drawing random weights, for a network whose weights are loaded next.

    Returns
    -------
    torch.nn.Module
        A :class:`~xwvnet.models.resnet.ResNet` or a :class:`~xwvnet.models.vit.VisionTransformer`, in training
        mode.

    Raises
    ------
    ValueError
        On an unknown architecture, or an ``img_size`` that a ViT's patch does not divide.

    Examples
    --------
    >>> build_backbone("vit_small_patch16", in_chans=1, img_size=256).grid
    16
    """
    if is_vit(arch):
        return vit.build_vit(arch, in_chans, vit.DEFAULT_IMG_SIZE if img_size is None else int(img_size),
                             init_weights=init_weights)
    return resnet.ARCHITECTURES[arch](in_chans=in_chans)


def backbone_arch(module: nn.Module) -> str:
    """The architecture name of a built backbone, read from its layers.

    Parameters
    ----------
    module : torch.nn.Module
        A ResNet or ViT of this package.

    Returns
    -------
    str
        A key of :data:`ARCHITECTURES`.

    Raises
    ------
    TypeError
        If the module is neither.
    ValueError
        If its layout is not in its family's table.
    """
    if isinstance(module, vit.VisionTransformer):
        return vit.vit_arch(module)
    if isinstance(module, resnet.ResNet):
        return resnet.arch_of(module)
    raise InvalidTypeError(
        f"expected an xwvnet ResNet or VisionTransformer backbone, got {type(module).__name__}."
    )


def build_like(module: nn.Module, *, init_weights: bool = True) -> nn.Module:
    """A fresh backbone of the same architecture, input channels and (for a ViT) learned input side.

    The weights are random (the caller seeds torch, or loads a state dict into it); batch norms are plain ones even
    when ``module``'s were converted to synchronised ones.

    Parameters
    ----------
    module : torch.nn.Module
        A ResNet or ViT of this package.
    init_weights : bool, default True
        ViTs only: ``False`` skips drawing random weights, for a network whose weights are loaded next.

    Returns
    -------
    torch.nn.Module
        Into which ``module.state_dict()`` loads strictly.

    Raises
    ------
    TypeError
        If the module is neither.
    """
    arch = backbone_arch(module)
    return build_backbone(arch, int(module.in_chans), getattr(module, "img_size", None), init_weights=init_weights)
