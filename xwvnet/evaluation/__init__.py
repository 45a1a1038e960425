"""Evaluation of encoders: the paper's linear-probe table, probe metrics, learning curves, a non-learned baseline.

``table`` (:func:`evaluate`, :func:`format_table`), ``metrics`` (:func:`regression_scores`, :func:`tag_scores`,
:func:`probe_scores`), ``curves`` (:func:`learning_curve`) and ``baselines`` (:func:`image_statistics`).
"""

from __future__ import annotations

from .baselines import image_statistics
from .curves import learning_curve
from .metrics import probe_scores, regression_scores, tag_scores
from .table import DEFAULT_ENCODERS, evaluate, format_table

__all__ = [
    "DEFAULT_ENCODERS",
    "evaluate",
    "format_table",
    "image_statistics",
    "learning_curve",
    "probe_scores",
    "regression_scores",
    "tag_scores",
]
