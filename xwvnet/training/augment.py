"""SimCLR views of SAR intensity imagettes, made batch-wise on the training device.

Colour-photo augmentations (colour jitter, grey-scale) mean nothing for single-channel SAR intensity; what varies
between two looks at the same sea state is the framing, the orientation, the resolution, the speckle and the
radiometric stretch. So a view is: a random resized crop *inside the valid extent* (never the zero padding), an
optional flip and 90-degree rotation (switchable: wave direction matters for some uses), a Gaussian blur,
speckle-like multiplicative noise and a gamma/contrast/brightness jitter.

Everything is vectorised over the batch (one ``grid_sample`` for crop+flip+rotation, one grouped convolution for
the blur) and draws from an explicit ``torch.Generator``, so a seed fixes every view.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from ..preprocess import WVNET_MEAN, WVNET_STD

__all__ = ["AugmentConfig", "augment", "to_model_input", "view_pair"]


@dataclass(frozen=True)
class AugmentConfig:
    """Parameters of one SimCLR view; ranges are ``(low, high)``, drawn uniformly unless said otherwise.

    Parameters
    ----------
    size : int, default 224
        Side of the square view, in pixels.
    scale : tuple of float, default (0.2, 1.0)
        Crop area as a fraction of the imagette's valid area.
    ratio : tuple of float, default (3/4, 4/3)
        Crop aspect ratio (log-uniform).
    flip : bool, default True
        Random horizontal and vertical flips.
    rotate90 : bool, default True
        Random rotations by multiples of 90 degrees.
    blur_p : float, default 0.5
        Probability of a Gaussian blur.
    blur_sigma : tuple of float, default (0.1, 2.0)
        Blur standard deviation, in output pixels.
    speckle_p : float, default 0.5
        Probability of added multiplicative speckle.
    looks : tuple of float, default (4.0, 32.0)
        Equivalent number of looks of the added speckle (log-uniform; fewer looks, stronger speckle).
    jitter_p : float, default 0.8
        Probability of the radiometric jitter (gamma, contrast, brightness).
    gamma : tuple of float, default (0.7, 1.4)
        Gamma exponent (log-uniform).
    contrast : tuple of float, default (0.7, 1.3)
        Contrast factor about the view's mean.
    brightness : tuple of float, default (-0.1, 0.1)
        Added brightness, on the [0, 1] scale.

    Examples
    --------
    >>> AugmentConfig(size=96, flip=False, rotate90=False).to_dict()["size"]  # keep wave direction
    96
    """

    size: int = 224
    scale: tuple[float, float] = (0.2, 1.0)  # crop area as a fraction of the valid area
    ratio: tuple[float, float] = (3 / 4, 4 / 3)  # crop aspect ratio (log-uniform)
    flip: bool = True  # random horizontal and vertical flips
    rotate90: bool = True  # random multiples of 90 degrees
    blur_p: float = 0.5
    blur_sigma: tuple[float, float] = (0.1, 2.0)  # in output pixels
    speckle_p: float = 0.5
    looks: tuple[float, float] = (4.0, 32.0)  # equivalent number of looks of the added speckle (log-uniform)
    jitter_p: float = 0.8
    gamma: tuple[float, float] = (0.7, 1.4)  # log-uniform
    contrast: tuple[float, float] = (0.7, 1.3)
    brightness: tuple[float, float] = (-0.1, 0.1)

    def to_dict(self) -> dict:
        """The parameters as a plain dict (for the run configuration and ``encoder.json``).

        Returns
        -------
        dict
        """
        return asdict(self)


def _uniform(n: int, low: float, high: float, g: torch.Generator, device: torch.device) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=g, device=device)


def _log_uniform(n: int, low: float, high: float, g: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.exp(_uniform(n, math.log(low), math.log(high), g, device))


def _crop_boxes(
    lines: torch.Tensor, samples: torch.Tensor, cfg: AugmentConfig, g: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(y0, x0, h, w) in pixels, each crop inside its imagette's valid extent."""
    n, device = lines.shape[0], lines.device
    area = lines * samples * _uniform(n, *cfg.scale, g, device)
    ratio = _log_uniform(n, *cfg.ratio, g, device)
    w = torch.sqrt(area * ratio).clamp(min=1.0).minimum(samples)
    h = torch.sqrt(area / ratio).clamp(min=1.0).minimum(lines)
    y0 = (lines - h) * torch.rand(n, generator=g, device=device)
    x0 = (samples - w) * torch.rand(n, generator=g, device=device)
    return y0, x0, h, w


def _orientation(n: int, cfg: AugmentConfig, g: torch.Generator, device: torch.device) -> torch.Tensor:
    """(n, 2, 2) matrices of the dihedral group acting on output coordinates (u=x, v=y)."""
    eye = torch.eye(2, device=device).expand(n, 2, 2).clone()
    if cfg.rotate90:
        k = torch.randint(0, 4, (n,), generator=g, device=device)
        angle = k.to(torch.float32) * (math.pi / 2)
        c, s = torch.cos(angle).round(), torch.sin(angle).round()
        eye = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)
    if cfg.flip:
        fx = 1 - 2 * (torch.rand(n, generator=g, device=device) < 0.5).to(torch.float32)
        fy = 1 - 2 * (torch.rand(n, generator=g, device=device) < 0.5).to(torch.float32)
        eye = eye * torch.stack([fx, fy], -1)[:, None, :]  # flip the output axes, then rotate
    return eye


def _blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian blur with one sigma per image (sigma ~ 0 leaves the image as it is)."""
    n, _, h, w = x.shape
    radius = max(1, int(math.ceil(3 * float(sigma.max()))))
    t = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    kernel = torch.exp(-0.5 * (t[None, :] / sigma.clamp(min=1e-3)[:, None].to(x.dtype)) ** 2)
    kernel = kernel / kernel.sum(1, keepdim=True)  # (n, k)
    y = x.reshape(1, n, h, w)
    y = F.conv2d(F.pad(y, (radius, radius, 0, 0), mode="reflect"), kernel[:, None, None, :], groups=n)
    y = F.conv2d(F.pad(y, (0, 0, radius, radius), mode="reflect"), kernel[:, None, :, None], groups=n)
    return y.reshape(n, 1, h, w)


def augment(
    images: torch.Tensor,
    valid_lines: torch.Tensor,
    valid_samples: torch.Tensor,
    cfg: AugmentConfig,
    generator: torch.Generator,
) -> torch.Tensor:
    """One random view of each imagette, made for the whole batch at once on its device.

    Parameters
    ----------
    images : torch.Tensor
        ``(n, lines, samples)`` uint8 quicklooks, or floats in [0, 1].
    valid_lines, valid_samples : torch.Tensor
        ``(n,)`` each imagette's extent inside the zero padding; crops stay inside it.
    cfg : AugmentConfig
        The view's parameters.
    generator : torch.Generator
        Source of every random draw (on the images' device), so that a seed fixes the views.

    Returns
    -------
    torch.Tensor
        ``(n, 1, cfg.size, cfg.size)`` float32 in [0, 1].

    Raises
    ------
    ValueError
        If ``images`` is not 3-D.
    """
    if images.ndim != 3:
        raise ValueError(f"expected images of shape (n, lines, samples), got {tuple(images.shape)}")
    n, device = images.shape[0], images.device
    x = images.to(torch.float32)
    if images.dtype == torch.uint8:
        x = x / 255.0
    x = x[:, None]
    lines = valid_lines.to(device=device, dtype=torch.float32)
    samples = valid_samples.to(device=device, dtype=torch.float32)
    # anti-alias: average-pool by the integer factor the typical crop is shrunk by, then sample bilinearly
    typical = torch.sqrt((lines * samples).mean() * (cfg.scale[0] + cfg.scale[1]) / 2)
    factor = max(1, int(typical.item() // cfg.size))
    if factor > 1:
        x = F.avg_pool2d(x, factor)  # whole blocks only: no pooled pixel mixes in padding
        lines, samples = torch.floor(lines / factor), torch.floor(samples / factor)
    # crops span pixel centres [0.5, extent - 0.5], so bilinear weights never reach the padding
    y0, x0, h, w = _crop_boxes((lines - 1).clamp(min=1), (samples - 1).clamp(min=1), cfg, generator)
    y0, x0 = y0 + 0.5, x0 + 0.5
    big_h, big_w = x.shape[-2:]
    rot = _orientation(n, cfg, generator, device)
    # output (u, v) in [-1, 1] -> oriented (u', v') -> input normalised coords (align_corners=False)
    scale = torch.stack([w / big_w, h / big_h], -1)  # (n, 2)
    shift = torch.stack([(2 * x0 + w) / big_w - 1, (2 * y0 + h) / big_h - 1], -1)
    theta = torch.cat([rot * scale[:, :, None], shift[:, :, None]], dim=2)  # (n, 2, 3)
    grid = F.affine_grid(theta, (n, 1, cfg.size, cfg.size), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

    if cfg.blur_p > 0:
        sigma = _uniform(n, *cfg.blur_sigma, generator, device)
        sigma = sigma * (torch.rand(n, generator=generator, device=device) < cfg.blur_p)
        out = _blur(out, sigma)
    if cfg.speckle_p > 0:
        # speckle of L looks has unit mean and variance 1/L; a log-normal with the same two moments is one
        # normal draw per pixel instead of L exponential ones
        looks = _log_uniform(n, *cfg.looks, generator, device)
        s2 = torch.log1p(1 / looks) * (torch.rand(n, generator=generator, device=device) < cfg.speckle_p)
        noise = torch.randn(out.shape, generator=generator, device=device)
        out = out * torch.exp(noise * s2.sqrt()[:, None, None, None] - 0.5 * s2[:, None, None, None])
    if cfg.jitter_p > 0:
        on = (torch.rand(n, generator=generator, device=device) < cfg.jitter_p).to(torch.float32)
        gamma = 1 + on * (_log_uniform(n, *cfg.gamma, generator, device) - 1)
        contrast = 1 + on * (_uniform(n, *cfg.contrast, generator, device) - 1)
        brightness = on * _uniform(n, *cfg.brightness, generator, device)
        out = out.clamp(1e-6, 1) ** gamma[:, None, None, None]
        mean = out.mean(dim=(1, 2, 3), keepdim=True)
        out = (out - mean) * contrast[:, None, None, None] + mean + brightness[:, None, None, None]
    return out.clamp(0, 1)


def to_model_input(x: torch.Tensor) -> torch.Tensor:
    """Grey views in [0, 1] to model input, normalised as the WV-Net transform does.

    So that the trained encoder embeds with ``transform="wvnet"`` (what ``encoder.json`` records).

    Parameters
    ----------
    x : torch.Tensor
        ``(n, 1, h, w)`` grey views in [0, 1].

    Returns
    -------
    torch.Tensor
        ``(n, 3, h, w)``, the one channel repeated.
    """
    return ((x - WVNET_MEAN) / WVNET_STD).expand(-1, 3, -1, -1)


def view_pair(
    images: torch.Tensor,
    valid_lines: torch.Tensor,
    valid_samples: torch.Tensor,
    cfg: AugmentConfig,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Two independent views of each imagette, ready for the model.

    Parameters
    ----------
    images, valid_lines, valid_samples, cfg, generator
        As in :func:`augment`; the second view draws after the first from the same generator.

    Returns
    -------
    tuple of torch.Tensor
        Two ``(n, 3, cfg.size, cfg.size)`` model inputs (see :func:`to_model_input`).
    """
    first = augment(images, valid_lines, valid_samples, cfg, generator)
    second = augment(images, valid_lines, valid_samples, cfg, generator)
    return to_model_input(first), to_model_input(second)
