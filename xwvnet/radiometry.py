"""Radiometry in numpy only (no torch, no dask, no file access): the steps of the WV-Net quicklook recipe.

The recipe of the published quicklooks as far as it is known (``docs/safe.md``): calibrated sigma0, averaged in
intensity to ~41 x 45 m (10 x 10 SLC pixels), optionally detrended with incidence, stretched per imagette between
its 1st and 99th percentiles to 8 bits. Reading and calibrating SAFE products is :mod:`xwvnet.io.safe`'s
(:func:`~xwvnet.io.safe.open_safe`, :func:`~xwvnet.io.safe.safe_to_imagettes`), which calls these functions;
:func:`calibration_error_bound` bounds the error of calibrating at the multilooked resolution from the LUT alone.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import InvalidArgumentError, InvalidDataError

# sigma0 -> quicklook: percentiles of the valid region mapped to 0 and 255 (the published quicklooks have about
# 1% of pixels at 0 and 1% at 255, which a 1-99 percentile stretch reproduces)
STRETCH_PERCENTILES = (1.0, 99.0)
#: default quicklook looks (lines, samples): the published quicklooks are 10 x 10 SLC pixels of either beam (real
#: WV1 4,923 x 5,681 and WV2 4,774 x 4,500 pixels give 492 x 568 and 477 x 450, the published sizes; docs/safe.md)
DEFAULT_LOOKS = (10, 10)
#: approximate quicklook spacing (azimuth, ground range) in metres, for :func:`multilook_factor`: 10 looks are
#: 41 m in azimuth for both beams but 36.7 m (WV1) and 45.5 m (WV2) in ground range, so no one metric spacing
#: gives the published sizes of both beams; ``safe_to_imagettes`` therefore defaults to :data:`DEFAULT_LOOKS`
DEFAULT_SPACING = (41.0, 45.0)
#: NRCS slope with incidence assumed by :func:`detrend` (dB per degree; VV ocean, 20-40 degrees, CMOD-like)
DETREND_SLOPE_DB = -0.4



def check_batch(images: np.ndarray, valid_lines: np.ndarray, valid_samples: np.ndarray) -> tuple[np.ndarray, ...]:
    """A batch of padded imagettes and their valid extents, checked against each other.

    Parameters
    ----------
    images : numpy.ndarray
        ``(imagette, line, sample)`` padded images.
    valid_lines, valid_samples : numpy.ndarray
        One valid extent per imagette, within the padded shape.

    Returns
    -------
    tuple of numpy.ndarray
        The images and the extents as flat int64 arrays.

    Raises
    ------
    ValueError
        If the images are not 3-d, the extents are not one per imagette, or an extent lies outside the image.
    """
    images = np.asarray(images)
    if images.ndim != 3:
        raise InvalidDataError(f"expected images of shape (imagette, line, sample), found shape {images.shape}.")
    vl = np.asarray(valid_lines, dtype=np.int64).reshape(-1)
    vs = np.asarray(valid_samples, dtype=np.int64).reshape(-1)
    n, lines, samples = images.shape
    if vl.shape != (n,) or vs.shape != (n,):
        raise InvalidDataError(f"expected {n} valid_lines and valid_samples, found {vl.shape[0]} and {vs.shape[0]}.")
    if (vl < 0).any() or (vs < 0).any() or (vl > lines).any() or (vs > samples).any():
        raise InvalidDataError(
            f"valid_lines/valid_samples must lie in [0, {lines}] x [0, {samples}] (the padded image shape); found "
            f"lines {vl.min()}..{vl.max()}, samples {vs.min()}..{vs.max()}. Check the Dataset's extent variables."
        )
    return images, vl, vs


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
        raise InvalidDataError(f"expected sigma0 of shape (imagette, line, sample), found shape {x.shape}.")
    n, lines, samples = x.shape
    vl = np.full(n, lines) if valid_lines is None else valid_lines
    vs = np.full(n, samples) if valid_samples is None else valid_samples
    x, vl, vs = check_batch(x, vl, vs)
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
        raise InvalidDataError(
            f"stretch takes an image (line, sample) or a batch (n, line, sample), got shape {x.shape}."
        )
    if not 0.0 <= low < high <= 100.0:
        raise InvalidArgumentError(f"percentiles must satisfy 0 <= low < high <= 100, got low={low}, high={high}.")
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
        raise InvalidArgumentError(f"spacings must be positive numbers in metres; got spacing={spacing!r}, input "
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
        raise InvalidArgumentError(f"multilook needs factors >= 1 and an array of >= 2 dims; got factor={factor!r}, "
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
        raise InvalidDataError(f"incidence of shape {inc.shape} does not broadcast to sigma0 {x.shape}.") from err
    ref = float(np.nanmean(inc)) if reference is None else float(reference)
    return (x / 10.0 ** (slope_db * (inc - ref) / 10.0)).astype(np.float32)


#: largest relative error :func:`multilook_sigma0` allows itself against full-resolution calibration
CALIBRATION_TOLERANCE = 1e-4


def calibration_error_bound(lut: Any, lines: int, samples: int, line_factor: int) -> float:
    """Bound on the relative error of calibrating at the block centre line instead of at every line.

    A multilooked pixel is ``mean(P * w)`` over its block, with ``w = 1 / sigmaNought^2``; taking ``w`` at the
    block's centre line (exact along range) gives ``mean(P) * w_c``, whose relative error is at most
    ``max |w / w_c - 1| <= (1 + e)^2 - 1`` with ``e = max |K - K_c| / min K`` over the block (``P >= 0``). The LUT
    ``K`` is piecewise linear in lines, so the extremes are at the block's first and last lines and at vector
    lines inside it: these are the only lines evaluated.

    Parameters
    ----------
    lut : xwvnet.io.safe.Lut
        The calibration LUT (sigmaNought): ``lut.at(lines, samples)`` and its vector ``lut.lines``.
    lines, samples : int
        The image size.
    line_factor : int
        Lines per block.

    Returns
    -------
    float
        The bound over the whole image (0 for a LUT constant in azimuth).
    """
    blocks = lines // line_factor
    if blocks == 0:
        return 0.0
    e = 0.0
    step = 64  # block rows at a time: bounds the memory (a few MB)
    for j0 in range(0, blocks, step):
        first = np.arange(j0, min(blocks, j0 + step)) * line_factor
        centre = lut.at(first + (line_factor - 1) / 2.0, samples)
        dev = np.zeros_like(centre)
        low = centre.copy()
        edges = [first, first + line_factor - 1]
        inside = [v for v in lut.lines if first[0] <= v <= first[-1] + line_factor - 1]
        for edge in edges:
            k = lut.at(edge, samples)
            np.maximum(dev, np.abs(k - centre), out=dev)
            np.minimum(low, k, out=low)
        for v in inside:  # breakpoints inside a block
            j = (int(v) - int(first[0])) // line_factor
            k = lut.at(np.array([float(v)]), samples)[0]
            dev[j] = np.maximum(dev[j], np.abs(k - centre[j]))
            low[j] = np.minimum(low[j], k)
        e = max(e, float(np.max(dev / low)))
    return (1.0 + e) ** 2 - 1.0
