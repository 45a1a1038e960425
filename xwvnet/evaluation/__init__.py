"""Evaluation of encoders: one comparison table, probe and retrieval metrics, learning curves, a non-learned baseline.

``table`` (:func:`evaluate`, :func:`format_table`, :func:`paper_table`, :func:`published_table`), ``metrics``
(:func:`regression_scores`, :func:`tag_scores`, :func:`class_scores`, :func:`retrieval_precision`,
:func:`probe_scores`), ``curves`` (:func:`learning_curve`, :func:`learning_curves`) and ``baselines``
(:func:`image_statistics`).
"""

from __future__ import annotations

from .baselines import image_statistics
from .curves import learning_curve, learning_curves
from .metrics import class_scores, probe_scores, regression_scores, retrieval_precision, tag_scores
from .table import DEFAULT_ENCODERS, PUBLISHED, evaluate, format_table, paper_table, published_table

__all__ = [
    "DEFAULT_ENCODERS",
    "PUBLISHED",
    "class_scores",
    "evaluate",
    "format_table",
    "image_statistics",
    "learning_curve",
    "learning_curves",
    "paper_table",
    "probe_scores",
    "published_table",
    "regression_scores",
    "retrieval_precision",
    "tag_scores",
]
