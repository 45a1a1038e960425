"""Joins of imagettes with reanalysis, wave-model, altimeter, buoy and L2 OCN values at their positions and times.

:func:`collocate` (``xwvnet.collocate``) is the one call (:func:`add_positions` gives quicklooks the positions of
their L2 OCN products or SAFE manifests first); its parts are importable on their own: grids sampled with
xarray's ``interp``/``sel`` (:mod:`.grid`), points matched on the sphere with a ``BallTree`` (:mod:`.points`), and
wave spectra reduced to Hs, periods and direction (:mod:`.waves`).
"""

from __future__ import annotations

from .collocation import (
    CollocationWarning,
    MissingPositionError,
    add_positions,
    collocate,
    collocate_to_file,
    open_imagettes,
)
from .grid import sample_grid
from .points import haversine_km, nearest_points, sample_points
from .waves import add_wave_parameters, decode_era5_spectrum, wave_parameters

__all__ = ["collocate", "collocate_to_file", "open_imagettes", "add_positions", "CollocationWarning",
           "MissingPositionError", "sample_grid", "sample_points",
           "nearest_points", "haversine_km", "wave_parameters", "add_wave_parameters", "decode_era5_spectrum"]
