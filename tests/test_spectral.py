"""Spectral helpers (xwvnet.spectral): frequency bin widths on geometric and linear frequency grids."""

import numpy as np
import pytest

from xwvnet.spectral import frequency_widths


def test_frequency_widths():
    f = 0.0339 * 1.1 ** np.arange(36)
    assert np.allclose(frequency_widths(f), f * (1.1 - 1 / 1.1) / 2)
    assert np.allclose(frequency_widths(np.linspace(0.05, 0.5, 10)), 0.05)
    with pytest.raises(ValueError, match="increasing"):
        frequency_widths(np.array([0.2, 0.1]))
