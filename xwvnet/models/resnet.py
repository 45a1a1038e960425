"""ResNet-18/34/50 in plain torch, with torchvision's module and parameter names and shapes.

torchvision is not usable here, but the published WV-Net weights (and torchvision's ImageNet weights) are
torchvision ``resnet50`` state dicts; matching its names exactly (``conv1``, ``bn1``, ``layer1.0.conv1``, ...,
``layerN.0.downsample.0/1``, ``fc``) lets those files load with ``strict=True``. Architecture facts follow
He et al. 2016 as torchvision implements them (ResNet v1.5: the stride sits on the 3x3 conv of a bottleneck).
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import InvalidArgumentError, ModelMismatchError

__all__ = [
    "ARCHITECTURES",
    "LAYERS",
    "BasicBlock",
    "Bottleneck",
    "ResNet",
    "arch_of",
    "embedding_size",
    "find_arch",
    "resnet18",
    "resnet34",
    "resnet50",
]


def _conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def _conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (ResNet-18/34), named as torchvision names them.

    Parameters
    ----------
    inplanes : int
        Input channels.
    planes : int
        Output channels (``planes * expansion``, expansion 1).
    stride : int, default 1
        Stride of the first convolution (2 halves the resolution at a stage's start).
    downsample : torch.nn.Module, optional
        Projection of the input when its shape differs from the output's.
    """

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = _conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The block's output: the residual branch plus the (projected) input, after ReLU."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (strided) -> 1x1 convolutions with a residual connection (ResNet-50, torchvision's v1.5).

    Parameters
    ----------
    inplanes : int
        Input channels.
    planes : int
        Width of the inner convolutions; the output has ``planes * 4`` channels.
    stride : int, default 1
        Stride of the 3x3 convolution (where torchvision puts it, so its weights fit).
    downsample : torch.nn.Module, optional
        Projection of the input when its shape differs from the output's.
    """

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = _conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = _conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The block's output: the residual branch plus the (projected) input, after ReLU."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """A ResNet whose ``forward`` returns pooled features (``num_classes=None``) or class logits.

    ``num_features`` is the width of the pooled features (512 for ResNet-18/34, 2048 for ResNet-50), which is the
    embedding size of an encoder built on it. With ``num_classes=None`` there is no ``fc`` module, so a state dict
    without ``fc.*`` (as WV-Net publishes) loads strictly; a classifier state dict (torchvision's ImageNet weights)
    loads strictly into ``num_classes=1000``, or after dropping its ``fc.*`` keys.

    Parameters
    ----------
    block : type
        :class:`BasicBlock` or :class:`Bottleneck`.
    layers : tuple of 4 int
        Blocks in each stage (see :data:`LAYERS`).
    in_chans : int, default 3
        Input channels (the WV-Net transform repeats the grey level to 3).
    num_classes : int, optional
        Classifier outputs; ``None`` for an encoder.
    zero_init_residual : bool, default False
        Start each residual branch at zero (torchvision's option, helps some training recipes).

    Examples
    --------
    >>> ResNet(BasicBlock, (2, 2, 2, 2)).num_features
    512
    """

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        layers: tuple[int, int, int, int],
        *,
        in_chans: int = 3,
        num_classes: int | None = None,
        zero_init_residual: bool = False,
    ) -> None:
        super().__init__()
        self.inplanes = 64
        self.in_chans = in_chans
        self.conv1 = nn.Conv2d(in_chans, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.num_features = 512 * block.expansion
        self.num_classes = num_classes
        if num_classes is not None:
            self.fc = nn.Linear(self.num_features, num_classes)
        self._init_weights(zero_init_residual)

    def _make_layer(
        self, block: type[BasicBlock] | type[Bottleneck], planes: int, blocks: int, stride: int = 1
    ) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                _conv1x1(self.inplanes, planes * block.expansion, stride), nn.BatchNorm2d(planes * block.expansion)
            )
        modules = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        modules += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*modules)

    def _init_weights(self, zero_init_residual: bool) -> None:
        # same scheme as torchvision (Kaiming normal fan_out for convs, BN weight 1 / bias 0); the caller seeds torch
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, Bottleneck):
                    nn.init.zeros_(m.bn3.weight)
                elif isinstance(m, BasicBlock):
                    nn.init.zeros_(m.bn2.weight)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled, flattened features, whatever the classifier head.

        Parameters
        ----------
        x : torch.Tensor
            Input ``(n, in_chans, height, width)``.

        Returns
        -------
        torch.Tensor
            ``(n, num_features)``.
        """
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features (``num_classes=None``) or class logits.

        Parameters
        ----------
        x : torch.Tensor
            Input ``(n, in_chans, height, width)``.

        Returns
        -------
        torch.Tensor
            ``(n, num_features)`` or ``(n, num_classes)``.
        """
        features = self.forward_features(x)
        return features if self.num_classes is None else self.fc(features)


#: THE layer table: architecture name -> (residual block, blocks per stage). Everything else derives from it.
LAYERS: dict[str, tuple[type[BasicBlock] | type[Bottleneck], tuple[int, int, int, int]]] = {
    "resnet18": (BasicBlock, (2, 2, 2, 2)),
    "resnet34": (BasicBlock, (3, 4, 6, 3)),
    "resnet50": (Bottleneck, (3, 4, 6, 3)),
}


def _build(arch: str, in_chans: int, num_classes: int | None, **kwargs: bool) -> ResNet:
    block, layers = LAYERS[arch]
    return ResNet(block, layers, in_chans=in_chans, num_classes=num_classes, **kwargs)


def resnet18(in_chans: int = 3, num_classes: int | None = None, **kwargs: bool) -> ResNet:
    """ResNet-18 (512 features), small enough for tests and short training runs.

    Parameters
    ----------
    in_chans : int, default 3
        Input channels of the first convolution.
    num_classes : int, optional
        Classifier outputs; ``None`` (the default) returns pooled features, as encoders do.
    **kwargs : bool
        ``zero_init_residual``, passed to :class:`ResNet`.

    Returns
    -------
    ResNet
        A randomly initialised network (seed torch first for a reproducible one).

    Examples
    --------
    >>> resnet18().num_features
    512
    """
    return _build("resnet18", in_chans, num_classes, **kwargs)


def resnet34(in_chans: int = 3, num_classes: int | None = None, **kwargs: bool) -> ResNet:
    """ResNet-34 (512 features).

    Parameters
    ----------
    in_chans : int, default 3
        Input channels of the first convolution.
    num_classes : int, optional
        Classifier outputs; ``None`` (the default) returns pooled features.
    **kwargs : bool
        ``zero_init_residual``, passed to :class:`ResNet`.

    Returns
    -------
    ResNet
        A randomly initialised network.
    """
    return _build("resnet34", in_chans, num_classes, **kwargs)


def resnet50(in_chans: int = 3, num_classes: int | None = None, **kwargs: bool) -> ResNet:
    """ResNet-50 (2048 features), the WV-Net backbone.

    Parameters
    ----------
    in_chans : int, default 3
        Input channels of the first convolution.
    num_classes : int, optional
        Classifier outputs; ``None`` (the default) returns pooled features; 1000 fits torchvision's ImageNet file.
    **kwargs : bool
        ``zero_init_residual``, passed to :class:`ResNet`.

    Returns
    -------
    ResNet
        A randomly initialised network.

    Examples
    --------
    >>> resnet50(num_classes=1000).fc.out_features
    1000
    """
    return _build("resnet50", in_chans, num_classes, **kwargs)


#: architecture name -> constructor, for code that picks an architecture by name
ARCHITECTURES = {"resnet18": resnet18, "resnet34": resnet34, "resnet50": resnet50}


def _check_arch(arch: str) -> None:
    if arch not in LAYERS:
        raise InvalidArgumentError(f"unknown architecture {arch!r}; expected one of {sorted(LAYERS)}.")


def embedding_size(arch: str) -> int:
    """Width of the pooled features (the embedding size) of an architecture, from the layer table.

    Parameters
    ----------
    arch : str
        ``"resnet18"``, ``"resnet34"`` or ``"resnet50"``.

    Returns
    -------
    int
        ``512 * block.expansion``: 512 for basic blocks, 2048 for bottlenecks.

    Raises
    ------
    ValueError
        If ``arch`` is not in :data:`LAYERS`.

    Examples
    --------
    >>> embedding_size("resnet50")
    2048
    """
    _check_arch(arch)
    return 512 * LAYERS[arch][0].expansion


def find_arch(bottleneck: bool, blocks: tuple[int, ...]) -> str | None:
    """The architecture with this block kind and blocks per stage, or ``None`` when the table has none.

    Parameters
    ----------
    bottleneck : bool
        Whether the residual blocks are bottlenecks (three convolutions) rather than basic blocks (two).
    blocks : tuple of int
        Blocks in each of the four stages.

    Returns
    -------
    str or None
        A key of :data:`LAYERS`.

    Examples
    --------
    >>> find_arch(False, (2, 2, 2, 2))
    'resnet18'
    """
    for arch, (block, layers) in LAYERS.items():
        if (block is Bottleneck) == bool(bottleneck) and layers == tuple(blocks):
            return arch
    return None


def arch_of(module: ResNet) -> str:
    """The architecture name of a built network, read from its layers (not from how it was made).

    Parameters
    ----------
    module : ResNet
        A network of this module.

    Returns
    -------
    str
        A key of :data:`LAYERS`.

    Raises
    ------
    ValueError
        If its layout is not in the table.
    """
    blocks = tuple(len(getattr(module, f"layer{i}")) for i in range(1, 5))
    bottleneck = isinstance(module.layer1[0], Bottleneck)
    arch = find_arch(bottleneck, blocks)
    if arch is None:
        raise ModelMismatchError(f"unsupported ResNet layout: blocks {blocks}, bottleneck={bottleneck}.")
    return arch
