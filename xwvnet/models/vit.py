"""Vision transformers (ViT-S/16, ViT-S/8, ViT-B/16, ViT-B/8) in plain torch, with timm's parameter names.

The DINO-style encoders (Caron et al. 2021; OceanSAR-1's ViT variants, Kerdreux et al. 2025) embed an image as the
class token after the final layer norm. Checkpoints of these models are published in timm's layout (the layout of the
original DINO code too): ``cls_token``, ``pos_embed``, ``patch_embed.proj``, ``blocks.N.{norm1, attn.qkv, attn.proj,
norm2, mlp.fc1, mlp.fc2}``, ``norm``; matching those names and shapes exactly lets such files load with
``strict=True``. timm itself is not a dependency: it needs torchvision, whose wheels do not work with every torch.

Architecture facts follow Dosovitskiy et al. 2021 as timm implements them: pre-norm blocks, layer norms with
``eps=1e-6``, exact GELU, a learned position embedding that includes the class token, and ``width // 64`` heads.
The patch size, width, depth and the position grid come from the checkpoint (:func:`vit_layout`); an input whose
patch grid differs from the checkpoint's gets the position embedding resampled bicubically, as timm does for
``dynamic_img_size`` models.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InvalidArgumentError, ModelMismatchError

__all__ = [
    "ARCHITECTURES",
    "HEAD_WIDTH",
    "LAYOUTS",
    "VisionTransformer",
    "vit_arch",
    "build_vit",
    "vit_width",
    "find_vit",
    "is_vit_state_dict",
    "vit_base_patch8",
    "vit_base_patch16",
    "vit_layout",
    "vit_small_patch8",
    "vit_small_patch16",
]

#: width of one attention head: timm's (and DINO's) ViT-S and ViT-B have ``width // 64`` heads
HEAD_WIDTH = 64
#: layer-norm epsilon of timm's and DINO's ViTs
LN_EPS = 1e-6
#: the input side a ViT is built for when nothing else says (the WV-Net and ImageNet transforms give 224 x 224)
DEFAULT_IMG_SIZE = 224

#: THE ViT table: architecture name -> (patch size, width, depth). Heads are ``width // HEAD_WIDTH``, the MLP is
#: four times the width.
LAYOUTS: dict[str, tuple[int, int, int]] = {
    "vit_small_patch16": (16, 384, 12),
    "vit_small_patch8": (8, 384, 12),
    "vit_base_patch16": (16, 768, 12),
    "vit_base_patch8": (8, 768, 12),
}


class PatchEmbed(nn.Module):
    """Non-overlapping ``patch x patch`` patches projected to the width by one strided convolution (``proj``).

    Parameters
    ----------
    patch : int
        Side of a patch in pixels.
    in_chans : int
        Input channels.
    width : int
        Token width.
    """

    def __init__(self, patch: int, in_chans: int, width: int) -> None:
        super().__init__()
        self.patch = patch
        self.proj = nn.Conv2d(in_chans, width, kernel_size=patch, stride=patch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Patch tokens ``(n, gh * gw, width)`` of an image ``(n, in_chans, gh * patch, gw * patch)``."""
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    """Multi-head self-attention with one ``qkv`` projection and an output projection ``proj``.

    Parameters
    ----------
    width : int
        Token width.
    heads : int
        Attention heads (``width`` must divide by it).
    """

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Attended tokens, the same shape as ``x`` ``(n, tokens, width)``."""
        n, tokens, width = x.shape
        q, k, v = self.qkv(x).reshape(n, tokens, 3, self.heads, width // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(n, tokens, width))


class Mlp(nn.Module):
    """``fc1`` -> GELU -> ``fc2``, four times the width inside.

    Parameters
    ----------
    width : int
        Token width.
    hidden : int
        Inner width.
    """

    def __init__(self, width: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(width, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The MLP of each token."""
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """A pre-norm transformer block: ``x + attn(norm1(x))``, then ``x + mlp(norm2(x))``.

    Parameters
    ----------
    width : int
        Token width.
    heads : int
        Attention heads.
    """

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(width, eps=LN_EPS)
        self.attn = Attention(width, heads)
        self.norm2 = nn.LayerNorm(width, eps=LN_EPS)
        self.mlp = Mlp(width, 4 * width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The block's output tokens."""
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VisionTransformer(nn.Module):
    """A ViT whose ``forward`` returns the class token after the final norm: the DINO embedding.

    ``num_features`` is the width (384 for ViT-S, 768 for ViT-B), the embedding size of an encoder built on it. The
    position embedding is learned for an ``img_size x img_size`` input (the grid of the checkpoint); other sides
    that are a multiple of the patch are accepted, with the position embedding resampled to their grid.

    Parameters
    ----------
    patch : int
        Patch side in pixels.
    width : int
        Token width.
    depth : int
        Transformer blocks.
    in_chans : int, default 3
        Input channels.
    img_size : int, default 224
        Side of the input the position embedding is learned for (a multiple of ``patch``).
    heads : int, optional
        Attention heads; default ``width // 64``.
    init_weights : bool, default True
        Draw random initial weights (timm's scheme); ``False`` leaves torch's defaults, for a network whose weights
        are loaded next (drawing ViT weights is slow on a CPU).

    Raises
    ------
    ValueError
        If ``img_size`` is not a positive multiple of ``patch``, or ``width`` does not divide into the heads.

    Examples
    --------
    >>> VisionTransformer(16, 384, 1).num_features
    384
    """

    def __init__(self, patch: int, width: int, depth: int, *, in_chans: int = 3, img_size: int = DEFAULT_IMG_SIZE,
                 heads: int | None = None, init_weights: bool = True) -> None:
        super().__init__()
        heads = heads or max(1, width // HEAD_WIDTH)
        if img_size <= 0 or img_size % patch:
            raise InvalidArgumentError(f"img_size={img_size} must be a positive multiple of the patch size {patch}.")
        if width % heads:
            raise InvalidArgumentError(f"width {width} does not divide into {heads} heads.")
        self.patch, self.width, self.depth, self.heads = int(patch), int(width), int(depth), int(heads)
        self.in_chans, self.img_size, self.num_features = int(in_chans), int(img_size), int(width)
        self.patch_embed = PatchEmbed(patch, in_chans, width)
        grid = img_size // patch
        self.cls_token = nn.Parameter(torch.zeros(1, 1, width))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + grid * grid, width))
        self.blocks = nn.Sequential(*(Block(width, heads) for _ in range(depth)))
        self.norm = nn.LayerNorm(width, eps=LN_EPS)
        if init_weights:
            self._init_weights()

    def _init_weights(self) -> None:
        # timm's scheme for ViTs: truncated normal (std 0.02) for the position embedding and the linear layers,
        # small normal for the class token, zero biases; the caller seeds torch
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    @property
    def grid(self) -> int:
        """Side of the patch grid the position embedding is learned for."""
        return self.img_size // self.patch

    def _positions(self, gh: int, gw: int) -> torch.Tensor:
        """The position embedding for a ``gh x gw`` patch grid (resampled bicubically when it is not the learned
        one, with antialiasing, as timm's ``resample_abs_pos_embed``)."""
        if (gh, gw) == (self.grid, self.grid):
            return self.pos_embed
        prefix, grid = self.pos_embed[:, :1], self.pos_embed[:, 1:]
        grid = grid.reshape(1, self.grid, self.grid, self.width).permute(0, 3, 1, 2).float()
        grid = F.interpolate(grid, size=(gh, gw), mode="bicubic", align_corners=False, antialias=True)
        grid = grid.permute(0, 2, 3, 1).reshape(1, gh * gw, self.width).to(prefix.dtype)
        return torch.cat([prefix, grid], dim=1)

    def forward_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """Every token after the final norm: the class token first, then the patches row by row.

        Parameters
        ----------
        x : torch.Tensor
            Input ``(n, in_chans, height, width)``, both sides multiples of the patch.

        Returns
        -------
        torch.Tensor
            ``(n, 1 + patches, width)``.

        Raises
        ------
        ValueError
            If a side of the input is not a multiple of the patch size, or the channels differ.
        """
        n, chans, h, w = x.shape
        if chans != self.in_chans or h % self.patch or w % self.patch or h == 0 or w == 0:
            raise ModelMismatchError(
                f"a ViT with {self.patch}-pixel patches and {self.in_chans} input channels takes inputs whose sides "
                f"are multiples of {self.patch}; got {chans} x {h} x {w}."
            )
        tokens = self.patch_embed(x)
        tokens = torch.cat([self.cls_token.expand(n, -1, -1), tokens], dim=1)
        tokens = tokens + self._positions(h // self.patch, w // self.patch)
        return self.norm(self.blocks(tokens))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The embedding: the class token after the final norm.

        Parameters
        ----------
        x : torch.Tensor
            Input ``(n, in_chans, height, width)``.

        Returns
        -------
        torch.Tensor
            ``(n, num_features)``.
        """
        return self.forward_tokens(x)[:, 0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The embedding (see :meth:`forward_features`).

        Parameters
        ----------
        x : torch.Tensor
            Input ``(n, in_chans, height, width)``.

        Returns
        -------
        torch.Tensor
            ``(n, num_features)``.
        """
        return self.forward_features(x)


def _check_arch(arch: str) -> None:
    if arch not in LAYOUTS:
        raise InvalidArgumentError(f"unknown ViT architecture {arch!r}; expected one of {sorted(LAYOUTS)}.")


def build_vit(arch: str, in_chans: int = 3, img_size: int = DEFAULT_IMG_SIZE, *,
              init_weights: bool = True) -> VisionTransformer:
    """A randomly initialised ViT of the table (seed torch first for a reproducible one).

    Parameters
    ----------
    arch : str
        A key of :data:`LAYOUTS`.
    in_chans : int, default 3
        Input channels.
    img_size : int, default 224
        Side of the input the position embedding is learned for.
    init_weights : bool, default True
        Draw random initial weights; ``False`` when weights are loaded next.

    Returns
    -------
    VisionTransformer

    Raises
    ------
    ValueError
        On an unknown architecture, or an ``img_size`` that is not a multiple of the patch.

    Examples
    --------
    >>> build_vit("vit_small_patch16").pos_embed.shape
    torch.Size([1, 197, 384])
    """
    _check_arch(arch)
    patch, width, depth = LAYOUTS[arch]
    return VisionTransformer(patch, width, depth, in_chans=in_chans, img_size=img_size, init_weights=init_weights)


def vit_small_patch16(in_chans: int = 3, img_size: int = DEFAULT_IMG_SIZE) -> VisionTransformer:
    """ViT-S/16 (384 features, 6 heads, 12 blocks), as DINO and OceanSAR-1 train it.

    Parameters
    ----------
    in_chans : int, default 3
        Input channels.
    img_size : int, default 224
        Side of the input the position embedding is learned for.

    Returns
    -------
    VisionTransformer
        A randomly initialised network.
    """
    return build_vit("vit_small_patch16", in_chans, img_size)


def vit_small_patch8(in_chans: int = 3, img_size: int = DEFAULT_IMG_SIZE) -> VisionTransformer:
    """ViT-S/8 (384 features, 8-pixel patches: four times the tokens of ViT-S/16).

    Parameters
    ----------
    in_chans : int, default 3
        Input channels.
    img_size : int, default 224
        Side of the input the position embedding is learned for.

    Returns
    -------
    VisionTransformer
        A randomly initialised network.
    """
    return build_vit("vit_small_patch8", in_chans, img_size)


def vit_base_patch16(in_chans: int = 3, img_size: int = DEFAULT_IMG_SIZE) -> VisionTransformer:
    """ViT-B/16 (768 features, 12 heads, 12 blocks).

    Parameters
    ----------
    in_chans : int, default 3
        Input channels.
    img_size : int, default 224
        Side of the input the position embedding is learned for.

    Returns
    -------
    VisionTransformer
        A randomly initialised network.
    """
    return build_vit("vit_base_patch16", in_chans, img_size)


def vit_base_patch8(in_chans: int = 3, img_size: int = DEFAULT_IMG_SIZE) -> VisionTransformer:
    """ViT-B/8 (768 features, 8-pixel patches), OceanSAR-1's best variant in its paper's probes.

    Parameters
    ----------
    in_chans : int, default 3
        Input channels.
    img_size : int, default 224
        Side of the input the position embedding is learned for.

    Returns
    -------
    VisionTransformer
        A randomly initialised network.
    """
    return build_vit("vit_base_patch8", in_chans, img_size)


#: architecture name -> constructor ``(in_chans=3, img_size=224)``
ARCHITECTURES = {"vit_small_patch16": vit_small_patch16, "vit_small_patch8": vit_small_patch8,
                 "vit_base_patch16": vit_base_patch16, "vit_base_patch8": vit_base_patch8}


def vit_width(arch: str) -> int:
    """Width of a ViT of the table: the size of its embeddings (the class token).

    Parameters
    ----------
    arch : str
        A key of :data:`LAYOUTS`.

    Returns
    -------
    int
        384 for ViT-S, 768 for ViT-B.

    Raises
    ------
    ValueError
        On an unknown architecture.

    Examples
    --------
    >>> vit_width("vit_base_patch8")
    768
    """
    _check_arch(arch)
    return LAYOUTS[arch][1]


def find_vit(patch: int, width: int, depth: int) -> str | None:
    """The architecture of the table with this patch, width and depth, or ``None``.

    Parameters
    ----------
    patch, width, depth : int
        Patch side, token width, transformer blocks.

    Returns
    -------
    str or None
        A key of :data:`LAYOUTS`.

    Examples
    --------
    >>> find_vit(8, 384, 12)
    'vit_small_patch8'
    """
    return next((arch for arch, layout in LAYOUTS.items() if layout == (patch, width, depth)), None)


def vit_arch(module: VisionTransformer) -> str:
    """The architecture name of a built ViT, read from its layers.

    Parameters
    ----------
    module : VisionTransformer
        A network of this module.

    Returns
    -------
    str
        A key of :data:`LAYOUTS`.

    Raises
    ------
    ValueError
        If its layout is not in the table.
    """
    arch = find_vit(module.patch, module.width, len(module.blocks))
    if arch is None or module.heads != module.width // HEAD_WIDTH:
        raise ModelMismatchError(
            f"unsupported ViT layout: patch {module.patch}, width {module.width}, depth {len(module.blocks)}, "
            f"{module.heads} heads; expected one of {LAYOUTS} with width // {HEAD_WIDTH} heads."
        )
    return arch


def is_vit_state_dict(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """Whether a state dict has the keys of a timm-layout ViT (a patch embedding and a class token).

    Parameters
    ----------
    state_dict : mapping of str to torch.Tensor
        Weights, in timm's names.

    Returns
    -------
    bool
    """
    return "patch_embed.proj.weight" in state_dict and "cls_token" in state_dict


def vit_layout(state_dict: Mapping[str, torch.Tensor]) -> tuple[str, int, int]:
    """The architecture, input channels and learned input side of a timm-layout ViT state dict, from its shapes.

    Parameters
    ----------
    state_dict : mapping of str to torch.Tensor
        Weights in timm's names, without a classifier ``head``.

    Returns
    -------
    tuple of (str, int, int)
        ``(arch, in_chans, img_size)``, ``arch`` a key of :data:`LAYOUTS`.

    Raises
    ------
    ValueError
        (a :class:`~xwvnet.errors.ModelMismatchError`) if the shapes are not those of a ViT of the table with one
        class token and a square position grid (register tokens, missing class tokens and other variants are
        refused).

    Examples
    --------
    >>> vit_layout(vit_small_patch8(in_chans=1, img_size=256).state_dict())
    ('vit_small_patch8', 1, 256)
    """
    proj = state_dict["patch_embed.proj.weight"]
    width, in_chans, patch, patch_w = (int(s) for s in proj.shape)
    depth = len({int(m.group(1)) for k in state_dict if (m := re.match(r"blocks\.(\d+)\.", k))})
    arch = find_vit(patch, width, depth) if patch == patch_w else None
    if arch is None:
        raise ModelMismatchError(
            f"unsupported ViT layout: {patch} x {patch_w} patches, width {width}, {depth} blocks; expected one of "
            f"{ {name: dict(zip(('patch', 'width', 'depth'), layout)) for name, layout in LAYOUTS.items()} }."
        )
    extra = sorted(k for k in state_dict if k.startswith(("reg_token", "fc_norm", "norm_pre", "blocks.0.ls1")))
    if extra:
        raise ModelMismatchError(
            f"a ViT with {extra[0]!r} (register tokens, layer scale or another pooling) is not supported; expected "
            "DINO's layout (one class token, a final norm, no layer scale)."
        )
    tokens = int(state_dict["pos_embed"].shape[1]) if "pos_embed" in state_dict else -1
    grid = math.isqrt(max(tokens - 1, 0))
    if tokens < 2 or grid * grid != tokens - 1:
        raise ModelMismatchError(
            f"the position embedding has {tokens} tokens; expected one class token plus a square grid of patches."
        )
    return arch, in_chans, grid * patch
