"""How numbers read in the widget, the report and diagnostics messages (one place, one style)."""

from __future__ import annotations

import math

__all__ = ["TEXT_COLORS", "format_number", "step_attr"]

#: Colours of text in the HTML parts (readout, status line, findings), as CSS: a variable that
#: ``js/lossviz.css`` sets for light and dark JupyterLab themes (each with >= 4.5:1 contrast), and a
#: fallback readable on white for pages without that stylesheet (the HTML report, nbconvert).
TEXT_COLORS = {
    "muted": "var(--lossviz-muted, #595959)",
    "error": "var(--lossviz-error, #c62828)",
    "warning": "var(--lossviz-warning, #a04a00)",
    "info": "var(--lossviz-info, #1565c0)",
    "rewind": "var(--lossviz-rewind, #00727d)",
}


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
