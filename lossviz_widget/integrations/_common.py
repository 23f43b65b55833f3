"""What every integration shares: getting a plot, and keeping the numeric values of a log row."""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

from .._ui import LossPlot

__all__ = ["numeric", "resolve_plot"]


def resolve_plot(plot: LossPlot | None, *, display: bool = False, title: str = "") -> LossPlot:
    """``plot``, or a new ``LossPlot(title=title)``; shown in the current cell only when ``display``."""
    if plot is None:
        plot = LossPlot(title=title)
    elif not isinstance(plot, LossPlot):
        raise TypeError(f"plot must be a LossPlot or None, got {type(plot).__name__}")
    if display:
        from IPython.display import display as show

        show(plot)
    return plot


def numeric(row: Mapping[str, Any]) -> dict[str, float]:
    """The real-number entries of a framework's log row (strings, flags, lists... are not metrics)."""
    return {
        name: float(value)
        for name, value in row.items()
        if isinstance(value, numbers.Real) and not isinstance(value, bool)
    }
