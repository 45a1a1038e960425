"""A non-learned "encoder": image statistics and spectral energy of each imagette, as an embedding Dataset.

It is the floor every learned encoder must clear: if a probe on WV-Net embeddings does no better than a probe on
the brightness histogram and the energy in a few wavelength bands, the network has learnt nothing useful for that
target. It needs no torch and no weights, so it also runs wherever those are missing. Features come only from the
valid region of each imagette (``[:valid_lines, :valid_samples]``), never from padding.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from .. import schema as S
from .._version import __version__

NAME = "image-statistics"
PERCENTILES = (1, 5, 25, 50, 75, 95, 99)
# radial bands of the 2-D power spectrum, in cycles per pixel (log-spaced; the last ends at Nyquist)
BAND_EDGES = (0.0, 1 / 128, 1 / 64, 1 / 32, 1 / 16, 1 / 8, 1 / 4, 0.5 * np.sqrt(2) + 1e-9)
SECTORS = 4  # direction sectors over 180 degrees (centred on 0, 45, ...), for the wave band below
SECTOR_BAND = (1 / 64, 1 / 4)


def feature_names() -> list[str]:
    """Names of the baseline's features, in order: the ``feature`` coordinate of its embedding.

    Returns
    -------
    list of str
        Moments and percentiles of the valid pixels, ``log10_variance``, the radial spectral bands
        (``band_<low>_<high>`` in cycles per pixel) and the direction sectors of the wave band (``sector_<deg>``).
    """
    names = ["mean", "std", "cv", "skewness", "kurtosis", *(f"p{p}" for p in PERCENTILES), "log10_variance"]
    names += [f"band_{lo:.4f}_{min(hi, 0.7071):.4f}" for lo, hi in zip(BAND_EDGES[:-1], BAND_EDGES[1:])]
    names += [f"sector_{int(180 * i / SECTORS)}" for i in range(SECTORS)]  # centred on that direction
    return names


def _spectral(img: np.ndarray) -> np.ndarray:
    """log10 fraction of spectral energy per radial band, and fraction per direction sector in the wave band."""
    lines, samples = img.shape
    window = np.outer(np.hanning(lines), np.hanning(samples)) if min(lines, samples) > 2 else 1.0
    power = np.abs(np.fft.rfft2((img - img.mean()) * window)) ** 2
    fy = np.fft.fftfreq(lines)[:, None]
    fx = np.fft.rfftfreq(samples)[None, :]
    radius = np.broadcast_to(np.hypot(fx, fy), power.shape)
    total = power.sum() + 1e-30
    bands = [power[(radius >= lo) & (radius < hi)].sum() / total for lo, hi in zip(BAND_EDGES[:-1], BAND_EDGES[1:])]
    width = 180.0 / SECTORS
    angle = np.broadcast_to((np.degrees(np.arctan2(fy, fx)) + width / 2) % 180.0, power.shape)
    in_band = (radius >= SECTOR_BAND[0]) & (radius < SECTOR_BAND[1])
    band_total = power[in_band].sum() + 1e-30
    sectors = [power[in_band & (angle >= width * i) & (angle < width * (i + 1))].sum() / band_total
               for i in range(SECTORS)]
    return np.concatenate([np.log10(np.asarray(bands) + 1e-6), sectors])


def image_features(img: np.ndarray) -> np.ndarray:
    """The feature vector of one image region: statistics of its pixels and the spread of its spectral energy.

    Parameters
    ----------
    img : numpy.ndarray
        The valid region of one imagette, 2-D, any size; non-finite pixels are ignored (and filled with the mean
        for the spectrum).

    Returns
    -------
    numpy.ndarray
        float32, one value per :func:`feature_names` entry; all NaN when no pixel is finite.

    Examples
    --------
    >>> float(image_features(np.full((8, 8), 3.0))[0])
    3.0
    """
    img = np.asarray(img, dtype=np.float64)
    finite = np.isfinite(img)
    if img.size == 0 or not finite.any():
        return np.full(len(feature_names()), np.nan, dtype=np.float32)
    values = img[finite]
    img = np.where(finite, img, values.mean())
    mean, std = values.mean(), values.std()
    centred = (values - mean) / (std if std > 0 else 1.0)
    stats = [mean, std, std / mean if mean else 0.0, np.mean(centred**3), np.mean(centred**4) - 3.0,
             *np.percentile(values, PERCENTILES), np.log10(std**2 + 1e-12)]
    return np.concatenate([stats, _spectral(img)]).astype(np.float32)


def _statistics_block(images: np.ndarray, lines: np.ndarray, samples: np.ndarray) -> np.ndarray:
    out = np.empty(images.shape[:-2] + (len(feature_names()),), dtype=np.float32)
    for i in np.ndindex(images.shape[:-2]):
        out[i] = image_features(images[i][: int(lines[i]), : int(samples[i])])
    return out


def image_statistics(ds: xr.Dataset, *, var: str | None = None) -> xr.Dataset:
    """Embed imagettes with a non-learned baseline: image statistics and spectral energy of each imagette.

    A learned encoder is worth its weights only where a probe on it beats a probe on these features. Lazy over
    dask-backed images (one task per imagette chunk); only the valid region of each imagette is used. The
    features differ in scale by orders of magnitude: probes standardise them; standardise them yourself before a
    cosine search.

    Parameters
    ----------
    ds : xarray.Dataset
        Imagettes with an image variable and ``valid_lines``, ``valid_samples``.
    var : str, optional
        The image variable: ``quicklook`` by default, else ``sigma0``.

    Returns
    -------
    xarray.Dataset
        ``ds`` with ``embedding(imagette, feature)`` (replacing any there), ``encoder="image-statistics"``.

    Raises
    ------
    ValueError
        If there is no image variable or no valid extent.

    Examples
    --------
    >>> xwvnet.evaluation.image_statistics(ds)["embedding"]  # doctest: +SKIP
    """
    ds = ds.drop_dims(S.FEATURE, errors="ignore")  # replaces any embedding already there
    var = S.image_var(ds, var)
    S.require(ds, [S.VALID_LINES, S.VALID_SAMPLES], "image_statistics")
    image = ds[var]
    if image.chunks is not None:
        image = image.chunk({S.LINE: -1, S.SAMPLE: -1})
    names = feature_names()
    emb = xr.apply_ufunc(
        _statistics_block,
        image,
        ds[S.VALID_LINES],
        ds[S.VALID_SAMPLES],
        input_core_dims=[[S.LINE, S.SAMPLE], [], []],
        output_core_dims=[[S.FEATURE]],
        dask="parallelized",
        output_dtypes=[np.float32],
        dask_gufunc_kwargs={"output_sizes": {S.FEATURE: len(names)}},
    )
    emb = emb.assign_coords({S.FEATURE: np.array(names, dtype=object)}).assign_attrs(
        encoder=NAME, image_variable=var, long_name="image statistics and spectral energy (non-learned baseline)",
        xwvnet_version=__version__,
    )
    return ds.assign({S.EMBEDDING: emb})

