"""Numpy helpers of spectral wave maths shared by readers and joins (a low room: no xwvnet import)."""

from __future__ import annotations

import numpy as np

from .errors import InvalidDataError

__all__ = ["frequency_widths"]


def frequency_widths(frequency: np.ndarray) -> np.ndarray:
    """Bin widths df of a frequency grid: centred differences, the ends extended like the grid itself.

    Spectral moments are sums of E df, so the widths must match the model's own. A geometric grid
    (WAVEWATCH III: f[i+1] = r f[i]) gets df = f (r - 1/r) / 2 for every bin, as in WW3's ``frequency_area``;
    any other increasing grid gets centred differences with arithmetic end bins.

    Parameters
    ----------
    frequency : numpy.ndarray
        Increasing 1-D frequencies (Hz), at least 2.

    Returns
    -------
    numpy.ndarray
        The width of each frequency bin (Hz).

    Raises
    ------
    ValueError
        When the grid is not increasing, not 1-D or shorter than 2.

    Examples
    --------
    >>> frequency_widths(np.array([0.1, 0.2, 0.3])).round(3).tolist()
    [0.1, 0.1, 0.1]
    """
    f = np.asarray(frequency, dtype=float)
    if f.ndim != 1 or f.size < 2 or np.any(np.diff(f) <= 0):
        raise InvalidDataError(f"expected an increasing 1-D frequency grid with at least 2 values, found {f!r}.")
    ratios = f[1:] / f[:-1] if np.all(f > 0) else np.array([np.nan])
    if np.allclose(ratios, ratios[0], rtol=1e-4):
        before, after = f[0] / ratios[0], f[-1] * ratios[0]
    else:
        before, after = 2 * f[0] - f[1], 2 * f[-1] - f[-2]
    padded = np.concatenate([[before], f, [after]])
    return (padded[2:] - padded[:-2]) / 2
