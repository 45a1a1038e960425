"""Model input transforms (the WV-Net one, bit-faithful to the published code) and sigma0 -> quicklook.

All transforms work on a batch of padded imagettes ``(n, line, sample)`` plus each one's valid extent, so a dask
block goes through in one vectorised call. The geometry (where each output pixel comes from) is integer index
arithmetic done once per batch; the arithmetic on values repeats the published operations in the same order and
dtype (uint8 -> float32 ``* (1/255)``, bilinear ``align_corners=True`` without antialiasing, ``(x - mean) / std``),
so the tensors equal the published procedure's.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence

import dask
import dask.array as da
import numpy as np
import torch
import torch.nn.functional as F
import xarray as xr

from . import schema as S
from .io import slc
from .io.quicklook import NoReadableImageError

# the published WV-Net procedure (Glaser et al. 2024): a 450x450 field, resized to 224x224
CROP = 450
SIZE = 224
WVNET_MEAN = 103.4862417561056 / 255.0
WVNET_STD = 56.745013435601074 / 255.0
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# sigma0 -> quicklook: percentiles of the valid region mapped to 0 and 255 (the published quicklooks have about
# 1% of pixels at 0 and 1% at 255, which a 1-99 percentile stretch reproduces)
STRETCH_PERCENTILES = (1.0, 99.0)
#: default quicklook spacing (azimuth, ground range) in metres: 10 x 10 SLC pixels of WV1 and WV2, which
#: reproduces the published quicklook sizes (see :func:`multilook_factor` and docs/safe.md)
DEFAULT_SPACING = (41.0, 45.0)
#: NRCS slope with incidence assumed by :func:`detrend` (dB per degree; VV ocean, 20-40 degrees, CMOD-like)
DETREND_SLOPE_DB = -0.4


def crop_offsets(valid_lines: np.ndarray, valid_samples: np.ndarray, crop: int = CROP) -> tuple[np.ndarray, ...]:
    """Per imagette, the source (line, sample) of the top-left pixel of the ``crop`` x ``crop`` field.

    Replays the published steps on the image extent only:

    1. ``Pad(padding=(0, w_diff, 0, h_diff))`` with ``w_diff = max(0, 450 - width)``,
       ``h_diff = max(0, 450 - height)``. torchvision reads a 4-tuple as (left, top, right, bottom), so the *width*
       deficit pads the **top** and the height deficit the bottom; nothing pads left or right. A quirk of the
       published code, kept because the weights were trained (and the reference embeddings computed) with it.
    2. ``CenterCrop(450)``: where the image is still smaller it is first padded with 0 by ``(450 - w) // 2`` on the
       left (and the rest on the right), then cropped at ``round((size - 450) / 2)`` (Python's round half to even).

    Parameters
    ----------
    valid_lines, valid_samples : numpy.ndarray
        The valid extent of each imagette.
    crop : int, default 450
        The side of the field.

    Returns
    -------
    tuple of numpy.ndarray
        ``(line0, sample0)`` int64 arrays: output pixel (r, c) reads input pixel (line0 + r, sample0 + c), and is 0
        where that falls outside the valid extent.

    Examples
    --------
    >>> line0, sample0 = crop_offsets([500], [400])
    >>> int(line0[0]), int(sample0[0])  # 50 rows padded on top (the quirk) and cropped again; 25 columns left
    (0, -25)
    """
    h = np.asarray(valid_lines, dtype=np.int64)
    w = np.asarray(valid_samples, dtype=np.int64)
    top = np.maximum(0, crop - w)  # the quirk: width deficit on top
    h1 = h + top + np.maximum(0, crop - h)
    pad_top = np.where(h1 < crop, (crop - h1) // 2, 0)  # never happens after step 1, kept for clarity
    pad_left = np.where(w < crop, (crop - w) // 2, 0)
    h2 = np.maximum(h1, crop)
    w2 = np.maximum(w, crop)
    crop_top = np.round((h2 - crop) / 2.0).astype(np.int64)  # numpy rounds half to even, as Python's round
    crop_left = np.round((w2 - crop) / 2.0).astype(np.int64)
    return crop_top - pad_top - top, crop_left - pad_left


def _check_batch(images: np.ndarray, valid_lines: np.ndarray, valid_samples: np.ndarray) -> tuple[np.ndarray, ...]:
    images = np.asarray(images)
    if images.ndim != 3:
        raise ValueError(f"expected images of shape (imagette, line, sample), found shape {images.shape}.")
    vl = np.asarray(valid_lines, dtype=np.int64).reshape(-1)
    vs = np.asarray(valid_samples, dtype=np.int64).reshape(-1)
    n, lines, samples = images.shape
    if vl.shape != (n,) or vs.shape != (n,):
        raise ValueError(f"expected {n} valid_lines and valid_samples, found {vl.shape[0]} and {vs.shape[0]}.")
    if (vl < 0).any() or (vs < 0).any() or (vl > lines).any() or (vs > samples).any():
        raise ValueError(
            f"valid_lines/valid_samples must lie in [0, {lines}] x [0, {samples}] (the padded image shape); found "
            f"lines {vl.min()}..{vl.max()}, samples {vs.min()}..{vs.max()}. Check the Dataset's extent variables."
        )
    return images, vl, vs


def crop_field(
    images: np.ndarray, valid_lines: np.ndarray, valid_samples: np.ndarray, crop: int = CROP
) -> np.ndarray:
    """The published 450x450 field of each imagette, before resizing (integer indexing, no arithmetic on values).

    Parameters
    ----------
    images : numpy.ndarray
        ``(n, line, sample)``, padded.
    valid_lines, valid_samples : numpy.ndarray
        The valid extent of each imagette.
    crop : int, default 450
        The side of the field.

    Returns
    -------
    numpy.ndarray
        ``(n, crop, crop)`` of the input dtype, 0 where padded.

    Raises
    ------
    ValueError
        If the shapes disagree or an extent lies outside the padded shape.
    """
    images, vl, vs = _check_batch(images, valid_lines, valid_samples)
    line0, sample0 = crop_offsets(vl, vs, crop)
    rows = line0[:, None] + np.arange(crop)  # (n, crop)
    cols = sample0[:, None] + np.arange(crop)
    row_ok = (rows >= 0) & (rows < vl[:, None])
    col_ok = (cols >= 0) & (cols < vs[:, None])
    rows = np.clip(rows, 0, max(images.shape[1] - 1, 0))
    cols = np.clip(cols, 0, max(images.shape[2] - 1, 0))
    if images.shape[1] == 0 or images.shape[2] == 0:
        return np.zeros((images.shape[0], crop, crop), dtype=images.dtype)
    field = images[np.arange(images.shape[0])[:, None, None], rows[:, :, None], cols[:, None, :]]
    return np.where(row_ok[:, :, None] & col_ok[:, None, :], field, np.zeros((), dtype=images.dtype))


def _resize(field: np.ndarray, device: torch.device | str | None) -> torch.Tensor:
    """uint8 (n, H, W) -> float32 (n, 1, SIZE, SIZE): scale to [0, 1] then bilinear, as published."""
    x = torch.from_numpy(np.ascontiguousarray(field)).to(device or "cpu")
    x = x.to(torch.float32).mul_(1.0 / 255)  # torchvision ToDtype(float32, scale=True) does exactly this
    return F.interpolate(x[:, None], size=(SIZE, SIZE), mode="bilinear", align_corners=True, antialias=False)


def wvnet_transform(
    quicklooks: np.ndarray,
    valid_lines: np.ndarray,
    valid_samples: np.ndarray,
    *,
    device: torch.device | str | None = None,
    channels: int = 3,
) -> torch.Tensor:
    """The published WV-Net input of each quicklook: float32 tensor ``(n, channels, 224, 224)``.

    ``quicklooks``: uint8 ``(n, line, sample)``, padded; only ``[:valid_lines[i], :valid_samples[i]]`` is read.
    Steps: pad and centre-crop to 450x450 (see :func:`crop_offsets`), scale to [0, 1], bilinear resize to 224x224
    (``align_corners=True``, no antialiasing), repeat to ``channels``, normalise with mean 103.486/255 and std
    56.745/255. The tensors equal the published procedure's, so the published weights see what they were
    trained on.

    Parameters
    ----------
    quicklooks : numpy.ndarray
        uint8 ``(n, line, sample)``, padded.
    valid_lines, valid_samples : numpy.ndarray
        The valid extent of each imagette.
    device : torch.device or str, optional
        Where the float work happens (the uint8 field travels, 4x smaller than floats).
    channels : int, default 3
        Channels of the output (the grey level repeated).

    Returns
    -------
    torch.Tensor
        float32 ``(n, channels, 224, 224)``.

    Raises
    ------
    ValueError
        If the quicklooks are not uint8, or the extents do not fit.
    """
    if np.asarray(quicklooks).dtype != np.uint8:
        raise ValueError(
            f"the WV-Net transform takes uint8 quicklooks, found dtype {np.asarray(quicklooks).dtype}; convert "
            "calibrated sigma0 with xwvnet.preprocess.sigma0_to_quicklook first."
        )
    x = _resize(crop_field(quicklooks, valid_lines, valid_samples), device)
    x = x.sub_(torch.tensor(WVNET_MEAN, dtype=torch.float32)).div_(torch.tensor(WVNET_STD, dtype=torch.float32))
    return x.expand(-1, channels, -1, -1).contiguous()


def imagenet_transform(
    quicklooks: np.ndarray,
    valid_lines: np.ndarray,
    valid_samples: np.ndarray,
    *,
    device: torch.device | str | None = None,
    channels: int = 3,
) -> torch.Tensor:
    """Input for ImageNet-trained weights: float32 ``(n, channels, 224, 224)``.

    The same 450x450 field and resize as :func:`wvnet_transform`, so that both encoders see the same ocean, then
    the grey level repeated to RGB and normalised with ImageNet's per-channel mean and std (the statistics those
    weights were trained with).

    Parameters
    ----------
    quicklooks : numpy.ndarray
        uint8 ``(n, line, sample)``, padded.
    valid_lines, valid_samples : numpy.ndarray
        The valid extent of each imagette.
    device : torch.device or str, optional
        Where the float work happens.
    channels : int, default 3
        Channels of the output (the first ``channels`` of RGB).

    Returns
    -------
    torch.Tensor
        float32 ``(n, channels, 224, 224)``.

    Raises
    ------
    ValueError
        If the quicklooks are not uint8, or the extents do not fit.
    """
    if np.asarray(quicklooks).dtype != np.uint8:
        raise ValueError(f"the ImageNet transform takes uint8 quicklooks, found {np.asarray(quicklooks).dtype}.")
    x = _resize(crop_field(quicklooks, valid_lines, valid_samples), device).expand(-1, 3, -1, -1)
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
    x = (x - mean) / std
    return x[:, :channels].contiguous()


TRANSFORMS: dict[str, Callable[..., torch.Tensor]] = {"wvnet": wvnet_transform, "imagenet": imagenet_transform}


def get_transform(name: str | Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    """A transform by name (``"wvnet"``, ``"imagenet"``), or a callable with the same signature, returned as is.

    Parameters
    ----------
    name : str or callable
        A key of :data:`TRANSFORMS`, or a transform.

    Returns
    -------
    callable
        ``fn(quicklooks, valid_lines, valid_samples, *, device=None, channels=3) -> torch.Tensor``.

    Raises
    ------
    ValueError
        On an unknown name.

    Examples
    --------
    >>> get_transform("wvnet").__name__
    'wvnet_transform'
    """
    if callable(name):
        return name
    if name not in TRANSFORMS:
        raise ValueError(f"unknown transform {name!r}; expected one of {sorted(TRANSFORMS)} or a callable.")
    return TRANSFORMS[name]


def sigma0_to_quicklook(
    sigma0: np.ndarray,
    valid_lines: np.ndarray | None = None,
    valid_samples: np.ndarray | None = None,
    *,
    percentiles: tuple[float, float] = STRETCH_PERCENTILES,
) -> np.ndarray:
    """Calibrated linear sigma0 ``(n, line, sample)`` -> uint8 quicklooks, so calibrated data can be embedded.

    Per imagette, the ``percentiles`` (default 1 and 99) of the finite values inside the valid extent are mapped
    to 0 and 255, linearly in intensity, clipped and rounded: the 8-bit stretch of the published quicklooks
    (about 1% of their pixels sit at 0 and 1% at 255). NaN, and everything outside the valid extent, become 0.
    An imagette without finite values is all 0.

    Parameters
    ----------
    sigma0 : numpy.ndarray
        Calibrated linear NRCS ``(n, line, sample)``.
    valid_lines, valid_samples : numpy.ndarray, optional
        The valid extent of each imagette (default: the full shape).
    percentiles : tuple of (float, float), default (1.0, 99.0)
        The percentiles mapped to 0 and 255.

    Returns
    -------
    numpy.ndarray
        uint8 ``(n, line, sample)``.

    Raises
    ------
    ValueError
        If the array is not 3-D or the extents do not fit.

    Examples
    --------
    >>> import numpy as np
    >>> q = sigma0_to_quicklook(np.linspace(0.01, 0.1, 100, dtype="float32").reshape(1, 10, 10))
    >>> int(q.min()), int(q.max()), q.dtype.name
    (0, 255, 'uint8')
    """
    x = np.asarray(sigma0, dtype=np.float32)
    if x.ndim != 3:
        raise ValueError(f"expected sigma0 of shape (imagette, line, sample), found shape {x.shape}.")
    n, lines, samples = x.shape
    vl = np.full(n, lines) if valid_lines is None else valid_lines
    vs = np.full(n, samples) if valid_samples is None else valid_samples
    x, vl, vs = _check_batch(x, vl, vs)
    inside = (np.arange(lines)[None, :, None] < vl[:, None, None]) & (
        np.arange(samples)[None, None, :] < vs[:, None, None]
    )
    return stretch(np.where(inside, x, np.nan), *percentiles)


def stretch(x: np.ndarray, low: float = STRETCH_PERCENTILES[0], high: float = STRETCH_PERCENTILES[1]) -> np.ndarray:
    """Percentile stretch to 8 bits, per image: the ``low`` and ``high`` percentiles map to 0 and 255.

    The values between are mapped linearly (in the units given: linear sigma0 for the published quicklooks),
    clipped and rounded; NaN (outside the valid extent) becomes 0. An image without finite values is all 0.

    Parameters
    ----------
    x : numpy.ndarray
        One image ``(line, sample)`` or a batch ``(n, line, sample)``; NaN marks pixels outside the image.
    low, high : float, default 1 and 99
        Percentiles of each image's finite values mapped to 0 and 255.

    Returns
    -------
    numpy.ndarray
        uint8 of the shape of ``x``.

    Raises
    ------
    ValueError
        If ``x`` is not 2-D or 3-D, or the percentiles are not ``0 <= low < high <= 100``.

    Examples
    --------
    >>> import numpy as np
    >>> q = stretch(np.linspace(0.0, 1.0, 9999).reshape(101, 99), 1, 99)
    >>> int(q.min()), int(q.max()), round(float((q == 0).mean()), 2), round(float((q == 255).mean()), 2)
    (0, 255, 0.01, 0.01)
    """
    x = np.asarray(x, dtype=np.float32)
    if x.ndim not in (2, 3):
        raise ValueError(f"stretch takes an image (line, sample) or a batch (n, line, sample), got shape {x.shape}.")
    if not 0.0 <= low < high <= 100.0:
        raise ValueError(f"percentiles must satisfy 0 <= low < high <= 100, got low={low}, high={high}.")
    batch = x[None] if x.ndim == 2 else x
    batch = np.where(np.isfinite(batch), batch, np.nan)
    out = np.zeros(batch.shape, dtype=np.uint8)
    has = np.isfinite(batch).any(axis=(1, 2))
    if has.any():
        lo, hi = np.nanpercentile(batch[has].reshape(int(has.sum()), -1), (low, high), axis=1)  # (n_has,) each
        span = np.where(hi > lo, hi - lo, 1.0)
        scaled = (batch[has] - lo[:, None, None]) / span[:, None, None] * 255.0
        out[has] = np.clip(np.rint(np.nan_to_num(scaled, nan=0.0)), 0, 255).astype(np.uint8)
    return out[0] if x.ndim == 2 else out


def multilook_factor(
    line_spacing: float, sample_spacing: float, spacing: float | tuple[float, float] = DEFAULT_SPACING
) -> tuple[int, int]:
    """Pixels to average along lines and samples so that the output spacing is closest to ``spacing``.

    Parameters
    ----------
    line_spacing, sample_spacing : float
        The input spacing in metres (azimuth; ground range, i.e. slant spacing / sin(incidence)).
    spacing : float or (float, float), default DEFAULT_SPACING
        The wanted output spacing in metres, one value for both directions or (azimuth, ground range).

    Returns
    -------
    tuple of int
        ``(line_factor, sample_factor)``, each >= 1: ``round(spacing / input spacing)``.

    Raises
    ------
    ValueError
        If a spacing is not a positive number.

    Examples
    --------
    >>> multilook_factor(4.1, 1.7987 / np.sin(np.deg2rad(23.4)))  # WV1: 10 x 10 SLC pixels
    (10, 10)
    >>> multilook_factor(4.1, 2.6981 / np.sin(np.deg2rad(36.4)))  # WV2
    (10, 10)
    """
    want = (float(spacing), float(spacing)) if np.isscalar(spacing) else tuple(map(float, spacing))  # type: ignore
    have = (float(line_spacing), float(sample_spacing))
    if len(want) != 2 or not all(np.isfinite(v) and v > 0 for v in (*want, *have)):
        raise ValueError(f"spacings must be positive numbers in metres; got spacing={spacing!r}, input "
                         f"spacing=({line_spacing}, {sample_spacing}).")
    return tuple(max(1, int(round(w / h))) for w, h in zip(want, have))  # type: ignore[return-value]


def multilook(sigma0: np.ndarray, factor: int | tuple[int, int]) -> np.ndarray:
    """Average intensity over ``factor`` blocks of pixels (the last incomplete block of each axis is dropped).

    Averaging in linear intensity is what turns single-look speckle into a readable image; a block holding NaN
    is NaN. Use :func:`multilook_factor` to turn a target spacing in metres into a factor.

    Parameters
    ----------
    sigma0 : numpy.ndarray
        ``(..., line, sample)``, linear.
    factor : int or (int, int)
        Pixels per block along lines and samples (one int for both).

    Returns
    -------
    numpy.ndarray
        float32 ``(..., line // fl, sample // fs)``.

    Raises
    ------
    ValueError
        If a factor is < 1 or the array has fewer than 2 dimensions.

    Examples
    --------
    >>> import numpy as np
    >>> multilook(np.arange(20.0).reshape(4, 5), 2)
    array([[ 3.,  5.],
           [13., 15.]], dtype=float32)
    """
    x = np.asarray(sigma0)
    fl, fs = (int(factor), int(factor)) if np.isscalar(factor) else map(int, factor)  # type: ignore[arg-type]
    if fl < 1 or fs < 1 or x.ndim < 2:
        raise ValueError(f"multilook needs factors >= 1 and an array of >= 2 dims; got factor={factor!r}, "
                         f"shape {x.shape}.")
    lines, samples = x.shape[-2] // fl, x.shape[-1] // fs
    x = x[..., : lines * fl, : samples * fs].reshape(*x.shape[:-2], lines, fl, samples, fs)
    return x.mean(axis=(-3, -1), dtype=np.float64).astype(np.float32)


def detrend(
    sigma0: np.ndarray,
    incidence: np.ndarray,
    slope_db: float = DETREND_SLOPE_DB,
    reference: float | None = None,
) -> np.ndarray:
    """Remove the mean fall of NRCS with incidence across an imagette, so the stretch shows the ocean, not the beam.

    Divides by an assumed mean NRCS model ``10 ** (slope_db * (incidence - reference) / 10)``: a log-linear fit
    of CMOD-like VV ocean NRCS over 20-40 degrees (about -0.4 dB per degree at moderate winds). This is an
    assumption: the pipeline behind the published WV-Net quicklooks is not public (the IFREMER/TenGeoP recipe
    detrends with a geophysical model function, as xsarsea's ``sigma0_detrend`` does; over one 20 km imagette
    the incidence spans ~1.5 degrees, where a GMF and this log-linear model differ by well under 0.1 dB).

    Parameters
    ----------
    sigma0 : numpy.ndarray
        ``(..., line, sample)``, linear.
    incidence : numpy.ndarray
        Incidence angle in degrees, broadcastable to ``sigma0`` (e.g. one value per sample).
    slope_db : float, default DETREND_SLOPE_DB
        NRCS slope with incidence, dB per degree.
    reference : float, optional
        The incidence kept unchanged (default: the mean of ``incidence``), so the level stays the image's own.

    Returns
    -------
    numpy.ndarray
        float32, the shape of ``sigma0``.

    Raises
    ------
    ValueError
        If ``incidence`` does not broadcast to ``sigma0``.

    Examples
    --------
    >>> import numpy as np
    >>> inc = np.array([22.0, 23.0, 24.0])
    >>> s0 = 0.05 * 10 ** (-0.4 * (inc - 23.0) / 10)
    >>> np.allclose(detrend(s0[None, :], inc), 0.05)
    True
    """
    x = np.asarray(sigma0, dtype=np.float64)
    inc = np.asarray(incidence, dtype=np.float64)
    try:
        np.broadcast_shapes(inc.shape, x.shape)
    except ValueError as err:
        raise ValueError(f"incidence of shape {inc.shape} does not broadcast to sigma0 {x.shape}.") from err
    ref = float(np.nanmean(inc)) if reference is None else float(reference)
    return (x / 10.0 ** (slope_db * (inc - ref) / 10.0)).astype(np.float32)


def _quicklook_block(
    items: Sequence[slc.SlcImagette], factors: Sequence[tuple[int, int]], lines: int, samples: int,
    denoise: bool, detrended: bool, want_sigma0: bool,
) -> tuple[np.ndarray, np.ndarray]:
    q = np.zeros((len(items), lines, samples), dtype=np.uint8)
    s = np.full((len(items), lines, samples) if want_sigma0 else (0, 0, 0), np.nan, dtype=np.float32)
    for k, (item, factor) in enumerate(zip(items, factors)):
        ml = multilook(item.sigma0(denoise), factor)
        if detrended:
            ml = detrend(ml, multilook(item.incidence_profile[None, :], (1, factor[1]))[0])
        q[k, : ml.shape[0], : ml.shape[1]] = stretch(ml)
        if want_sigma0:
            s[k, : ml.shape[0], : ml.shape[1]] = ml
    return q, s


def safe_to_imagettes(
    paths: str | os.PathLike | Iterable[str | os.PathLike],
    spacing: float | tuple[float, float] = DEFAULT_SPACING,
    keep_sigma0: bool = False,
    *,
    imagettes: Sequence[int | str] | None = None,
    denoise: bool = False,
    detrended: bool = False,
    chunks: int = 1,
) -> xr.Dataset:
    """WV L1 SLC SAFE products -> WV-Net-ready quicklooks (and optionally the multilooked sigma0), lazily.

    The recipe of the published quicklooks as far as it is known (docs/safe.md): calibrated sigma0 (optionally
    denoised), averaged in intensity to ``spacing`` (default ~41 x 45 m: 10 x 10 SLC pixels, which gives the
    published sizes), optionally detrended with incidence, then stretched per imagette between its 1st and 99th
    percentiles to 8 bits. One dask task per ``chunks`` imagettes reads, calibrates, multilooks and stretches.

    Parameters
    ----------
    paths : str, os.PathLike or iterable of them
        SAFE folders, their manifests, or zipped SAFE products.
    spacing : float or (float, float), default DEFAULT_SPACING
        Output spacing in metres (azimuth, ground range); the factor is rounded per imagette.
    keep_sigma0 : bool, default False
        Also return ``sigma0`` at that spacing (float32, NaN outside each imagette).
    imagettes : sequence of int or str, optional
        Only these imagettes (numbers or ids), as in :func:`xwvnet.io.slc.open_safe`.
    denoise : bool, default False
        Subtract the thermal noise LUT before calibrating.
    detrended : bool, default False
        Divide by the mean NRCS fall with incidence (:func:`detrend`) before stretching.
    chunks : int, default 1
        Imagettes per dask task.

    Returns
    -------
    xarray.Dataset
        ``quicklook`` (uint8, 0 outside each imagette), ``sigma0`` when asked, ``valid_lines``/``valid_samples``
        of the multilooked images, the coordinates of :func:`xwvnet.io.slc.open_safe` (``line_spacing`` and
        ``sample_spacing`` now those of the output) and ``multilook_lines``/``multilook_samples`` (the factors);
        ``attrs["skipped"]`` lists the imagettes and products skipped, and why.

    Raises
    ------
    ValueError
        If ``paths`` is empty, ``spacing`` is not positive, or ``chunks`` < 1.
    NoReadableImageError
        If no imagette can be read (a ``ValueError``).

    Warns
    -----
    SafeWarning
        When imagettes or products are skipped.

    Examples
    --------
    >>> ds = safe_to_imagettes(["S1A_WV_SLC__1SSV_...SAFE", "S1B_WV_SLC__1SSV_...zip"])  # doctest: +SKIP
    >>> xwvnet.to_store(ds, "wv.zarr")  # doctest: +SKIP
    """
    if chunks < 1:
        raise ValueError(f"chunks must be >= 1 imagette, got {chunks}.")
    items, skipped = slc.scan_safe(paths, imagettes)
    slc.report_skipped(skipped)
    if not items:
        raise NoReadableImageError(
            f"no readable WV imagette in {paths!r}:\n  " + "\n  ".join(skipped or ["(none selected)"]), skipped)
    factors = [multilook_factor(i.azimuth_spacing, i.ground_spacing, spacing) for i in items]
    vl = np.array([i.lines // f[0] for i, f in zip(items, factors)], dtype=np.int32)
    vs = np.array([i.samples // f[1] for i, f in zip(items, factors)], dtype=np.int32)
    lines, samples = int(vl.max()), int(vs.max())
    q_blocks, s_blocks = [], []
    for k in range(0, len(items), chunks):
        part = dask.delayed(_quicklook_block, nout=2)(items[k : k + chunks], factors[k : k + chunks], lines,
                                                      samples, denoise, detrended, keep_sigma0)
        n = len(items[k : k + chunks])
        q_blocks.append(da.from_delayed(part[0], shape=(n, lines, samples), dtype=np.uint8))
        s_blocks.append(da.from_delayed(part[1], shape=(n, lines, samples) if keep_sigma0 else (0, 0, 0),
                                        dtype=np.float32))
    coords = slc.coordinates(items)
    coords[slc.LINE_SPACING] = (S.IMAGETTE, np.array([i.azimuth_spacing * f[0] for i, f in zip(items, factors)]))
    coords[slc.SAMPLE_SPACING] = (S.IMAGETTE, np.array([i.ground_spacing * f[1] for i, f in zip(items, factors)]))
    coords["multilook_lines"] = (S.IMAGETTE, np.array([f[0] for f in factors], dtype=np.int32))
    coords["multilook_samples"] = (S.IMAGETTE, np.array([f[1] for f in factors], dtype=np.int32))
    dims = (S.IMAGETTE, S.LINE, S.SAMPLE)
    data = {
        S.QUICKLOOK: (dims, da.concatenate(q_blocks, axis=0),
                      {"long_name": "8-bit stretched SAR intensity (quicklook)", "valid_range": [0, 255],
                       "comment": f"sigma0 averaged to ~{spacing} m, {STRETCH_PERCENTILES} percentile stretch"
                                  + (", detrended with incidence" if detrended else "")}),
        S.VALID_LINES: (S.IMAGETTE, vl),
        S.VALID_SAMPLES: (S.IMAGETTE, vs),
    }
    if keep_sigma0:
        data[S.SIGMA0] = (dims, da.concatenate(s_blocks, axis=0),
                          {"long_name": "calibrated normalised radar cross section (linear), multilooked",
                           "units": "1", "thermal_noise_removed": int(denoise)})
    ds = xr.Dataset(data, coords=coords, attrs={"skipped": skipped,
                                               "title": "Sentinel-1 WV imagettes (quicklooks from L1 SLC)"})
    ds[slc.LINE_SPACING].attrs.update(units="m", long_name="azimuth pixel spacing")
    ds[slc.SAMPLE_SPACING].attrs.update(units="m", long_name="ground-range pixel spacing at the imagette centre")
    return S.with_cf_attrs(ds)
