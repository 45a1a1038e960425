"""Joins of imagettes with reanalysis, wave-model, altimeter, buoy and L2 OCN values at their positions and times."""

from __future__ import annotations

from .collocation import CollocationWarning, collocate

__all__ = ["collocate", "CollocationWarning"]
