"""How numbers read in the widget, the report and diagnostics messages (one place, one style)."""

from __future__ import annotations

import math

__all__ = ["format_number", "step_attr"]


def format_number(v: float) -> str:
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if v == int(v) and abs(v) < 1e15:
        return f"{int(v):,}"
    return f"{v:.4g}"


def step_attr(v: float) -> str:
    """A step for an HTML ``data-step`` attribute: ``12`` for whole steps, else ``repr``."""
    return str(int(v)) if v == int(v) else repr(v)
