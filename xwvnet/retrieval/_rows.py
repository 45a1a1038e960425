"""Which embedding rows can be compared by cosine, and their unit form: one rule for exact search and the index.

A row can be compared when its norm is finite and at least float32's smallest normal number (about 1.2e-38).
A row with a NaN or an infinity, a row whose norm overflows float32 even when computed in float64, and a
zero-norm row (e.g. all zeros: it has no direction, so its cosine with anything is undefined) cannot: such a
row is never a neighbour, and as a query it finds nothing.
"""

from __future__ import annotations

import numpy as np

UNIT_TOLERANCE = 1e-5  # rows whose 1/|row| is this close to 1 are used as they are (similarity error <= 1e-5)
_TINY = np.float32(np.finfo(np.float32).tiny)  # the smallest normal float32: a shorter row has no usable direction


def norms(x: np.ndarray) -> np.ndarray:
    """Row norms of a float32 array; rows whose float32 sum of squares over- or underflows are computed in float64.

    Parameters
    ----------
    x : numpy.ndarray
        (n, d) float32 rows.

    Returns
    -------
    numpy.ndarray
        (n,) norms (float32 or float64); NaN or inf for non-finite rows, 0 for zero rows.
    """
    out = np.sqrt(np.einsum("ij,ij->i", x, x))
    redo = np.isinf(out) | ((out == 0) & np.any(x != 0, axis=1))
    if redo.any():
        out = out.astype(np.float64)
        out[redo] = np.sqrt(np.einsum("ij,ij->i", x[redo], x[redo], dtype=np.float64))
    return out


def inverse_norms(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float32 ``1/|row|`` (0 for a row that cannot be compared) and the mask of those rows.

    Parameters
    ----------
    x : numpy.ndarray
        (n, d) float32 rows.

    Returns
    -------
    inverse : numpy.ndarray
        (n,) float32.
    bad : numpy.ndarray
        (n,) bool: the rows that cannot be compared (non-finite, or zero norm).
    """
    n = norms(x)
    with np.errstate(over="ignore", invalid="ignore"):
        n32 = n.astype(np.float32)
    bad = ~np.isfinite(n32) | (n32 < _TINY)
    inverse = np.zeros(n32.shape, dtype=np.float32)
    inverse[~bad] = 1.0 / n32[~bad]
    return inverse, bad


def unit(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows scaled to unit length, the rows that cannot be compared set to zero, and the mask of those rows.

    Parameters
    ----------
    x : numpy.ndarray
        (n, d) rows (converted to float32).

    Returns
    -------
    rows : numpy.ndarray
        (n, d) float32; ``x`` itself when its rows are already of unit length.
    bad : numpy.ndarray
        (n,) bool: the rows that cannot be compared (non-finite, or zero norm).
    """
    x = np.asarray(x, dtype=np.float32)
    inverse, bad = inverse_norms(x)
    if not bad.any() and bool(np.all(np.abs(inverse - 1.0) < UNIT_TOLERANCE)):
        return x, bad  # already unit rows (e.g. normalised embeddings): a scaled copy would only cost a pass
    with np.errstate(invalid="ignore"):  # inf * 0 in a non-finite row: zeroed just below
        out = x * inverse[:, None]
    if bad.any():
        out[bad] = 0.0
    return out, bad
