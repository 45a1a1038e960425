"""Radiometry in numpy only (no torch): SAFE -> calibrated sigma0 -> multilooked, stretched WV-Net quicklooks.

The recipe of the published quicklooks as far as it is known (``docs/safe.md``): calibrated sigma0, averaged in
intensity to ~41 x 45 m (10 x 10 SLC pixels), optionally detrended with incidence, stretched per imagette between
its 1st and 99th percentiles to 8 bits. :func:`multilook_sigma0` calibrates at the multilooked resolution: pixel
powers are summed over each block's lines, weighted by the exact calibration of every range sample at the block's
centre line, then summed over the block's samples; the error this makes (the LUT's variation along azimuth within
a block) is bounded from the LUT itself and kept <= ``tolerance`` (else the exact full-resolution path is taken).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

import dask
import dask.array as da
import numpy as np
import xarray as xr

from . import schema as S
from .io import safe as sf
from .io.quicklook import NoReadableImageError

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


#: largest relative error :func:`multilook_sigma0` allows itself against full-resolution calibration
CALIBRATION_TOLERANCE = 1e-4


def calibration_error_bound(lut: sf.Lut, lines: int, samples: int, line_factor: int) -> float:
    """Bound on the relative error of calibrating at the block centre line instead of at every line.

    A multilooked pixel is ``mean(P * w)`` over its block, with ``w = 1 / sigmaNought^2``; taking ``w`` at the
    block's centre line (exact along range) gives ``mean(P) * w_c``, whose relative error is at most
    ``max |w / w_c - 1| <= (1 + e)^2 - 1`` with ``e = max |K - K_c| / min K`` over the block (``P >= 0``). The LUT
    ``K`` is piecewise linear in lines, so the extremes are at the block's first and last lines and at vector
    lines inside it: these are the only lines evaluated.

    Parameters
    ----------
    lut : xwvnet.io.safe.Lut
        The calibration LUT (sigmaNought).
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


def multilook_sigma0(
    imagette: sf.SlcImagette,
    factor: tuple[int, int],
    denoise: bool = False,
    tolerance: float = CALIBRATION_TOLERANCE,
) -> tuple[np.ndarray, float]:
    """Multilooked calibrated sigma0 of one imagette, calibrated at the multilooked resolution when exact enough.

    The measurement is streamed by blocks of lines; ``|DN|^2`` (float32) is summed over each block's
    ``factor[0]`` lines, multiplied by ``1 / sigmaNought^2`` of every range sample at the block's centre line, and
    summed over ``factor[1]`` samples: no full-resolution LUT, no float64 image. When
    :func:`calibration_error_bound` exceeds ``tolerance``, or with ``denoise`` (a difference of powers has no
    relative bound), every pixel is calibrated first (:meth:`~xwvnet.io.safe.SlcImagette.sigma0`), then averaged.

    Parameters
    ----------
    imagette : xwvnet.io.safe.SlcImagette
        As :func:`xwvnet.io.safe.scan_safe` gives it.
    factor : (int, int)
        Lines and samples per block.
    denoise : bool, default False
        Subtract the thermal noise LUT (exact path).
    tolerance : float, default CALIBRATION_TOLERANCE
        Largest relative error allowed against full-resolution calibration.

    Returns
    -------
    tuple
        ``(sigma0, bound)``: float32 ``(lines // fl, samples // fs)``, and the bound on its relative error (0.0 on
        the exact path).

    Raises
    ------
    ValueError
        If a factor is < 1, or the measurement is not what its annotation announces.
    """
    fl, fs = int(factor[0]), int(factor[1])
    if fl < 1 or fs < 1:
        raise ValueError(f"multilook factors must be >= 1, got {factor!r}.")
    lines, samples = imagette.lines, imagette.samples
    nl, ns = lines // fl, samples // fs
    bound = 0.0 if denoise else calibration_error_bound(imagette.calibration, lines, samples, fl)
    if denoise or bound > tolerance:
        return multilook(imagette.sigma0(denoise), (fl, fs)), 0.0
    out = np.empty((nl, ns), dtype=np.float32)
    block = max(1, sf.BLOCK_LINES // fl) * fl
    for a, b, power in imagette.power_blocks(block):
        rows = (b - a) // fl
        if rows == 0:
            continue
        j = a // fl
        centre = np.arange(j, j + rows) * fl + (fl - 1) / 2.0
        weight = (1.0 / np.square(imagette.calibration.at(centre, samples)[:, : ns * fs])).astype(np.float32)
        weight *= np.float32(1.0 / (fl * fs))
        summed = power[: rows * fl, : ns * fs].reshape(rows, fl, ns * fs).sum(axis=1)
        summed *= weight
        out[j : j + rows] = summed.reshape(rows, ns, fs).sum(axis=2)
    return out, bound


def _quicklook_block(
    items: Sequence[sf.SlcImagette], factors: Sequence[tuple[int, int]], lines: int, samples: int,
    denoise: bool, detrended: bool, want_sigma0: bool,
) -> tuple[np.ndarray, np.ndarray]:
    q = np.zeros((len(items), lines, samples), dtype=np.uint8)
    s = np.full((len(items), lines, samples) if want_sigma0 else (0, 0, 0), np.nan, dtype=np.float32)
    for k, (item, factor) in enumerate(zip(items, factors)):
        ml, _ = multilook_sigma0(item, factor, denoise)
        if detrended:
            ml = detrend(ml, multilook(item.incidence_profile[None, :], (1, factor[1]))[0])
        q[k, : ml.shape[0], : ml.shape[1]] = stretch(ml)
        if want_sigma0:
            s[k, : ml.shape[0], : ml.shape[1]] = ml
    return q, s


def safe_to_imagettes(
    paths: str | os.PathLike | Iterable[str | os.PathLike],
    spacing: float | tuple[float, float] | None = None,
    keep_sigma0: bool = False,
    *,
    imagettes: Sequence[int | str] | None = None,
    denoise: bool = False,
    detrended: bool = False,
    chunks: int = 1,
    storage_options: dict | None = None,
) -> xr.Dataset:
    """WV L1 SLC SAFE products -> WV-Net-ready quicklooks (and optionally the multilooked sigma0), lazily.

    The recipe of the published quicklooks as far as it is known (docs/safe.md): calibrated sigma0 (optionally
    denoised), averaged in intensity over 10 x 10 SLC pixels (which gives the published sizes) or to ``spacing``,
    optionally detrended with incidence, then stretched per imagette between its 1st and 99th
    percentiles to 8 bits. One dask task per ``chunks`` imagettes reads, calibrates, multilooks and stretches.

    Parameters
    ----------
    paths : str, os.PathLike or iterable of them
        SAFE folders, their manifests, or zipped SAFE products.
    spacing : float or (float, float), optional
        Output spacing in metres (azimuth, ground range); the factor is rounded per imagette. Default:
        :data:`DEFAULT_LOOKS` (10 x 10 SLC pixels, the published quicklooks: ~41 m x 37 m for WV1, 41 m x 45 m
        for WV2).
    keep_sigma0 : bool, default False
        Also return ``sigma0`` at that spacing (float32, NaN outside each imagette).
    imagettes : sequence of int or str, optional
        Only these imagettes (numbers or ids), as in :func:`xwvnet.io.safe.open_safe`.
    denoise : bool, default False
        Subtract the thermal noise LUT before calibrating.
    detrended : bool, default False
        Divide by the mean NRCS fall with incidence (:func:`detrend`) before stretching.
    chunks : int, default 1
        Imagettes per dask task.
    storage_options : dict, optional
        Options of ``obstore.store.from_url`` for products on object storage (``s3://...``).

    Returns
    -------
    xarray.Dataset
        ``quicklook`` (uint8, 0 outside each imagette), ``sigma0`` when asked, ``valid_lines``/``valid_samples``
        of the multilooked images, the coordinates of :func:`xwvnet.io.safe.open_safe` (``line_spacing`` and
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
    items, skipped = sf.scan_safe(paths, imagettes, storage_options)
    sf.report_skipped(skipped)
    if not items:
        raise NoReadableImageError(
            f"no readable WV imagette in {paths!r}:\n  " + "\n  ".join(skipped or ["(none selected)"]), skipped)
    factors = [DEFAULT_LOOKS if spacing is None else multilook_factor(i.azimuth_spacing, i.ground_spacing, spacing)
               for i in items]
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
    coords = sf.coordinates(items)
    coords[sf.LINE_SPACING] = (S.IMAGETTE, np.array([i.azimuth_spacing * f[0] for i, f in zip(items, factors)]))
    coords[sf.SAMPLE_SPACING] = (S.IMAGETTE, np.array([i.ground_spacing * f[1] for i, f in zip(items, factors)]))
    coords["multilook_lines"] = (S.IMAGETTE, np.array([f[0] for f in factors], dtype=np.int32))
    coords["multilook_samples"] = (S.IMAGETTE, np.array([f[1] for f in factors], dtype=np.int32))
    dims = (S.IMAGETTE, S.LINE, S.SAMPLE)
    averaged = f"over {DEFAULT_LOOKS[0]} x {DEFAULT_LOOKS[1]} pixels" if spacing is None else f"to ~{spacing} m"
    data = {
        S.QUICKLOOK: (dims, da.concatenate(q_blocks, axis=0),
                      {"long_name": "8-bit stretched SAR intensity (quicklook)", "valid_range": [0, 255],
                       "comment": f"sigma0 averaged {averaged}, {STRETCH_PERCENTILES} percentile stretch"
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
    ds[sf.LINE_SPACING].attrs.update(units="m", long_name="azimuth pixel spacing")
    ds[sf.SAMPLE_SPACING].attrs.update(units="m", long_name="ground-range pixel spacing at the imagette centre")
    return S.with_cf_attrs(ds)
