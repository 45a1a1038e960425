"""SimCLR views of SAR intensity imagettes, made batch-wise on the training device.

Colour-photo augmentations (colour jitter, grey-scale) mean nothing for single-channel SAR intensity, and several
photographic ones destroy exactly what carries the sea state: a random *resized* crop changes the apparent wave
length, a blur removes the azimuth smearing that grows with wave height, a contrast jitter changes the modulation
depth. So the default view (``crop="field"``) is a crop *at the pixel scale of the embedding*: the imagette goes
through the WV-Net field geometry first (the 450 x 450 field resized to 224 x 224, bilinear, exactly as
:func:`~xwvnet.models.transforms.wvnet_transform` does), and the view is a ``size`` x ``size`` window of it, placed
on the imagette (inside its valid extent where it fits, else holding all of it). Then an optional flip and
90-degree rotation (exact: index permutations), off by default: a turn swaps azimuth and range, a flip reverses
the wave direction, and both made the hs probes worse. Speckle-like
multiplicative noise, blur and the gamma/contrast/brightness jitter are there, off by default: each made the probes
worse in ``benchmarks/ssl_quality.py`` (added speckle drowns the wave modulation whose contrast against the
imagette's own speckle carries Hs).
``crop="resized"`` is the photographic random resized crop (area ``scale``, aspect ``ratio``) inside the valid
extent, kept for comparison (see ``benchmarks/ssl_quality.py``).

Everything is vectorised over the batch and draws from an explicit ``torch.Generator``, so a seed fixes every view.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InvalidArgumentError, InvalidDataError
from ..models.transforms import CROP, SIZE, WVNET_MEAN, WVNET_STD, crop_offsets, field_index

__all__ = ["AugmentConfig", "CROP_MODES", "augment", "embedding_field", "to_model_input", "view_pair"]

#: how a view is cut: ``"field"`` keeps the embedding's pixel scale, ``"resized"`` is the photographic crop.
CROP_MODES = ("field", "resized")


@dataclass(frozen=True)
class AugmentConfig:
    """Parameters of one SimCLR view; ranges are ``(low, high)``, drawn uniformly unless said otherwise.

    Parameters
    ----------
    size : int, default 64
        Side of the square view, in pixels.
    crop : str, default "field"
        ``"field"``: a ``size`` window of the WV-Net field (the embedding's 224 x 224 input, so the pixel scale
        that training sees is the one embedding sees); ``size`` is at most 224. ``"resized"``: a random resized
        crop of ``scale`` and ``ratio`` inside the valid extent, resampled to ``size`` (photographic SimCLR).
    scale : tuple of float, default (0.2, 1.0)
        ``crop="resized"`` only: crop area as a fraction of the imagette's valid area.
    ratio : tuple of float, default (3/4, 4/3)
        ``crop="resized"`` only: crop aspect ratio (log-uniform).
    flip : bool, default False
        Random horizontal and vertical flips (they reverse the wave direction; off by default, as in training).
    rotate90 : bool, default False
        Random rotations by multiples of 90 degrees (they swap azimuth and range).
    blur_p : float, default 0.0
        Probability of a Gaussian blur (off: it teaches invariance to the azimuth smearing that grows with Hs).
    blur_sigma : tuple of float, default (0.1, 2.0)
        Blur standard deviation, in output pixels.
    speckle_p : float, default 0.0
        Probability of added multiplicative speckle (off: it hides the wave modulation that carries Hs).
    looks : tuple of float, default (4.0, 32.0)
        Equivalent number of looks of the added speckle (log-uniform; fewer looks, stronger speckle).
    jitter_p : float, default 0.0
        Probability of the radiometric jitter (gamma, contrast, brightness); off: the modulation depth carries
        sea state.
    gamma : tuple of float, default (0.7, 1.4)
        Gamma exponent (log-uniform).
    contrast : tuple of float, default (0.7, 1.3)
        Contrast factor about the view's mean.
    brightness : tuple of float, default (-0.1, 0.1)
        Added brightness, on the [0, 1] scale.
    on_imagette : float, default 1.0
        ``crop="field"`` only: the least share of the view's side, per axis, on the imagette. 1.0 keeps views on the
        imagette where it fits; 0.5 lets them reach into the field's border (zero or mirrored, as the encoder's
        transform has it).

    Examples
    --------
    >>> AugmentConfig(size=96, flip=True, rotate90=True).to_dict()["flip"]  # invariance to wave direction
    True
    """

    size: int = 64
    crop: str = "field"
    scale: tuple[float, float] = (0.2, 1.0)  # crop area as a fraction of the valid area
    ratio: tuple[float, float] = (3 / 4, 4 / 3)  # crop aspect ratio (log-uniform)
    flip: bool = False  # random horizontal and vertical flips
    rotate90: bool = False  # random multiples of 90 degrees
    blur_p: float = 0.0
    blur_sigma: tuple[float, float] = (0.1, 2.0)  # in output pixels
    speckle_p: float = 0.0
    looks: tuple[float, float] = (4.0, 32.0)  # equivalent number of looks of the added speckle (log-uniform)
    jitter_p: float = 0.0
    gamma: tuple[float, float] = (0.7, 1.4)  # log-uniform
    contrast: tuple[float, float] = (0.7, 1.3)
    brightness: tuple[float, float] = (-0.1, 0.1)
    on_imagette: float = 1.0

    def __post_init__(self) -> None:
        if not 0 < self.on_imagette <= 1:
            raise InvalidArgumentError(f"on_imagette={self.on_imagette} is not allowed: it must be in (0, 1].")
        if self.crop not in CROP_MODES:
            raise InvalidArgumentError(f"crop={self.crop!r} is not allowed: crop must be one of {list(CROP_MODES)}.")
        if self.crop == "field" and not 1 <= self.size <= SIZE:
            raise InvalidArgumentError(f"size={self.size} is not allowed with crop='field': a view is a window of the "
                                       f"{SIZE} x {SIZE} embedding field, so size must be from 1 to {SIZE}.")

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


def embedding_field(
    images: torch.Tensor, valid_lines: torch.Tensor, valid_samples: torch.Tensor, border: str = "zero"
) -> tuple[torch.Tensor, torch.Tensor]:
    """The WV-Net field of each imagette as embedding sees it, before normalisation, and where the imagette lies in it.

    The same geometry (:func:`xwvnet.models.transforms.field_index`) and arithmetic as the WV-Net transforms
    (the 450 x 450 field, scaled to [0, 1], bilinear ``align_corners=True`` to 224 x 224), done with torch
    indexing on the images' device.

    Parameters
    ----------
    images : torch.Tensor
        ``(n, lines, samples)`` uint8 quicklooks, zero padded.
    valid_lines, valid_samples : torch.Tensor
        ``(n,)`` each imagette's valid extent.
    border : {"zero", "reflect"}, default "zero"
        The field's border: ``"zero"`` as ``transform="wvnet"``, ``"reflect"`` as ``transform="wvnet-reflect"``.

    Returns
    -------
    field : torch.Tensor
        ``(n, 1, 224, 224)`` float32 in [0, 1]; ``(field - mean) / std`` is the transform's output.
    box : torch.Tensor
        ``(n, 4)`` int64 ``(top, bottom, left, right)``: output rows ``top:bottom`` and columns ``left:right`` read
        the imagette only (no padding, no reflection).

    Examples
    --------
    >>> images = torch.full((1, 300, 300), 128, dtype=torch.uint8)
    >>> field, box = embedding_field(images, torch.tensor([300]), torch.tensor([300]))
    >>> tuple(field.shape), box.tolist()
    ((1, 1, 224, 224), [[38, 186, 38, 186]])
    """
    device = images.device
    n, lines, samples = images.shape
    vl = valid_lines.detach().cpu().numpy().astype(np.int64)
    vs = valid_samples.detach().cpu().numpy().astype(np.int64)
    rows, cols, row_ok, col_ok = (torch.as_tensor(a, device=device) for a in field_index(vl, vs, CROP, border))
    picked = images[torch.arange(n, device=device)[:, None, None], rows.clamp(0, lines - 1)[:, :, None],
                    cols.clamp(0, samples - 1)[:, None, :]]
    picked = torch.where(row_ok[:, :, None] & col_ok[:, None, :], picked, torch.zeros((), dtype=images.dtype,
                                                                                       device=device))
    x = picked.to(torch.float32).mul_(1.0 / 255)
    field = F.interpolate(x[:, None], size=(SIZE, SIZE), mode="bilinear", align_corners=True, antialias=False)
    # output pixel i reads field positions around i * (CROP - 1) / (SIZE - 1) (bilinear: its floor and ceiling);
    # it reads the imagette only where both lie in [first, last]: integer arithmetic, no rounding doubt
    line0, sample0 = crop_offsets(vl, vs, CROP)
    r_first, r_last = np.maximum(0, -line0), np.minimum(CROP - 1, vl - 1 - line0)
    c_first, c_last = np.maximum(0, -sample0), np.minimum(CROP - 1, vs - 1 - sample0)
    top, bottom = -(-r_first * (SIZE - 1) // (CROP - 1)), r_last * (SIZE - 1) // (CROP - 1) + 1
    left, right = -(-c_first * (SIZE - 1) // (CROP - 1)), c_last * (SIZE - 1) // (CROP - 1) + 1
    box = np.stack([top, np.maximum(bottom, top), left, np.maximum(right, left)], 1)
    return field, torch.as_tensor(box, dtype=torch.int64, device=device)


def _field_crop(field: torch.Tensor, box: torch.Tensor, cfg: AugmentConfig, g: torch.Generator) -> torch.Tensor:
    """A ``cfg.size`` window of each field, on the imagette, then flipped and turned by index permutations only."""
    n, device, size = field.shape[0], field.device, cfg.size

    def offsets(low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        extent = high - low
        # at least `keep` pixels of the view's side on the imagette (all of it where the imagette is smaller),
        # inside the field; on_imagette=1 keeps the view on the imagette where it fits
        keep = extent.clamp(max=math.ceil(cfg.on_imagette * size))
        first = (low - size + keep).clamp(min=0, max=SIZE - size)
        last = (high - keep).clamp(min=0, max=SIZE - size)
        last = last.maximum(first)
        u = torch.rand(n, generator=g, device=device)
        return first + torch.floor(u * (last - first + 1).to(torch.float32)).long().minimum(last - first)

    y0 = offsets(box[:, 0], box[:, 1])
    x0 = offsets(box[:, 2], box[:, 3])
    span = torch.arange(size, device=device)
    rows, cols = y0[:, None] + span, x0[:, None] + span
    out = field[torch.arange(n, device=device)[:, None, None], 0, rows[:, :, None], cols[:, None, :]][:, None]
    if cfg.rotate90:
        k = torch.randint(0, 4, (n,), generator=g, device=device)
        turned = out.clone()
        for quarter in (1, 2, 3):
            pick = k == quarter
            if bool(pick.any()):
                turned[pick] = torch.rot90(out[pick], quarter, dims=(-2, -1))
        out = turned
    if cfg.flip:
        fx = (torch.rand(n, generator=g, device=device) < 0.5)[:, None, None, None]
        fy = (torch.rand(n, generator=g, device=device) < 0.5)[:, None, None, None]
        out = torch.where(fx, out.flip(-1), out)
        out = torch.where(fy, out.flip(-2), out)
    return out


def _resized_crop(x: torch.Tensor, lines: torch.Tensor, samples: torch.Tensor, cfg: AugmentConfig,
                  g: torch.Generator) -> torch.Tensor:
    """The photographic random resized crop inside the valid extent, with flip and rotation, in one grid_sample."""
    n, device = x.shape[0], x.device
    # anti-alias: average-pool by the integer factor the typical crop is shrunk by, then sample bilinearly
    typical = torch.sqrt((lines * samples).mean() * (cfg.scale[0] + cfg.scale[1]) / 2)
    factor = max(1, int(typical.item() // cfg.size))
    if factor > 1:
        x = F.avg_pool2d(x, factor)  # whole blocks only: no pooled pixel mixes in padding
        lines, samples = torch.floor(lines / factor), torch.floor(samples / factor)
    # crops span pixel centres [0.5, extent - 0.5], so bilinear weights never reach the padding
    y0, x0, h, w = _crop_boxes((lines - 1).clamp(min=1), (samples - 1).clamp(min=1), cfg, g)
    y0, x0 = y0 + 0.5, x0 + 0.5
    big_h, big_w = x.shape[-2:]
    rot = _orientation(n, cfg, g, device)
    # output (u, v) in [-1, 1] -> oriented (u', v') -> input normalised coords (align_corners=False)
    scale = torch.stack([w / big_w, h / big_h], -1)  # (n, 2)
    shift = torch.stack([(2 * x0 + w) / big_w - 1, (2 * y0 + h) / big_h - 1], -1)
    theta = torch.cat([rot * scale[:, :, None], shift[:, :, None]], dim=2)  # (n, 2, 3)
    grid = F.affine_grid(theta, (n, 1, cfg.size, cfg.size), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def augment(
    images: torch.Tensor,
    valid_lines: torch.Tensor,
    valid_samples: torch.Tensor,
    cfg: AugmentConfig,
    generator: torch.Generator,
    border: str = "zero",
) -> torch.Tensor:
    """One random view of each imagette, made for the whole batch at once on its device.

    Parameters
    ----------
    images : torch.Tensor
        ``(n, lines, samples)`` uint8 quicklooks (``crop="field"`` needs uint8), or floats in [0, 1].
    valid_lines, valid_samples : torch.Tensor
        ``(n,)`` each imagette's extent inside the zero padding; crops stay inside it where they fit.
    cfg : AugmentConfig
        The view's parameters.
    generator : torch.Generator
        Source of every random draw (on the images' device), so that a seed fixes the views.
    border : {"zero", "reflect"}, default "zero"
        ``crop="field"``: the border of the field the views are windows of, that of the encoder's embedding
        transform (:func:`embedding_field`).

    Returns
    -------
    torch.Tensor
        ``(n, 1, cfg.size, cfg.size)`` float32 in [0, 1].

    Raises
    ------
    ValueError
        If ``images`` is not 3-D, or not uint8 with ``crop="field"``.
    """
    if images.ndim != 3:
        raise InvalidDataError(f"expected images of shape (n, lines, samples), got {tuple(images.shape)}")
    n, device = images.shape[0], images.device
    if cfg.crop == "field":
        if images.dtype != torch.uint8:
            raise InvalidDataError(
                f"crop='field' takes uint8 quicklooks (as the WV-Net transform), got {images.dtype}."
            )
        field, box = embedding_field(images, valid_lines, valid_samples, border)
        out = _field_crop(field, box, cfg, generator)
    else:
        x = images.to(torch.float32)
        if images.dtype == torch.uint8:
            x = x / 255.0
        lines = valid_lines.to(device=device, dtype=torch.float32)
        samples = valid_samples.to(device=device, dtype=torch.float32)
        out = _resized_crop(x[:, None], lines, samples, cfg, generator)

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

    So that the trained encoder embeds with a WV-Net transform (``"wvnet"`` or ``"wvnet-reflect"``, what
    ``encoder.json`` records).

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
    border: str = "zero",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Two independent views of each imagette, ready for the model.

    Parameters
    ----------
    images, valid_lines, valid_samples, cfg, generator, border
        As in :func:`augment`; the second view draws after the first from the same generator.

    Returns
    -------
    tuple of torch.Tensor
        Two ``(n, 3, cfg.size, cfg.size)`` model inputs (see :func:`to_model_input`).
    """
    first = augment(images, valid_lines, valid_samples, cfg, generator, border)
    second = augment(images, valid_lines, valid_samples, cfg, generator, border)
    return to_model_input(first), to_model_input(second)
