"""Evaluation of encoders: the paper's linear-probe table, metrics, learning curves and non-learned baselines."""

from __future__ import annotations

from .table import DEFAULT_ENCODERS, evaluate, format_table

__all__ = ["DEFAULT_ENCODERS", "evaluate", "format_table"]
