"""Watch a PyTorch model's gradients, weights, updates and activations live, and say what they mean.

>>> plot.watch(model, optimizer, every=10)     # see lossviz_widget.LossPlot.watch
>>> plot.unwatch()

:mod:`.collect` (hooks and on-device reductions; imports torch), :mod:`.series` (per-layer series,
NumPy only), :mod:`.watcher` (ties them to a :class:`~lossviz_widget.Recorder`), :mod:`.view`
(the heatmaps; bqplot). The rules: :mod:`lossviz_widget.diagnostics.watch`. Importing this
package imports neither torch nor a widget library: :class:`Watcher` loads on first use.
"""

from __future__ import annotations

from typing import Any

from .series import QUANTITIES, Heat, Layout, WatchedSeries

__all__ = ["QUANTITIES", "Heat", "Layout", "WatchedSeries", "Watcher"]


def __getattr__(name: str) -> Any:
    if name == "Watcher":
        from .watcher import Watcher

        return Watcher
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
