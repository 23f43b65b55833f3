"""What every integration shares: getting a plot, and keeping the numeric values of a log row."""

from __future__ import annotations

import copy
import numbers
from collections.abc import Mapping
from typing import Any

from .._ui import LossPlot

__all__ = ["SharedPlot", "numeric", "resolve_plot"]


class SharedPlot:
    """Mixin for callbacks holding a ``plot``: copies log into the same plot.

    ``sklearn.base.clone`` (``GridSearchCV``, ``cross_val_score``) deep-copies an estimator's
    parameters, its ``callbacks`` included, and a widget cannot be copied. A copy of the callback
    shares the original's plot and copies everything else, so every fit of every clone shows up
    where the user looks; their steps restart at 0, which the plot's ``on_rewind`` handles
    (``"purge"``: the latest fit; ``LossPlot(on_rewind="new_run")``: every fit, side by side).
    """

    plot: LossPlot

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        clone = copy.copy(self)
        memo[id(self)] = clone
        for name, value in vars(self).items():
            if name != "plot":
                setattr(clone, name, copy.deepcopy(value, memo))
        return clone


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
