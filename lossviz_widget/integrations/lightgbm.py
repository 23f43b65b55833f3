"""LightGBM: ``lgb.train(..., callbacks=[LossPlotCallback()])`` or ``LGBMClassifier().fit(..., callbacks=[...])``.

Every entry of ``env.evaluation_result_list`` is logged after each boosting round, at
step = round (0, 1, ...; continued training keeps counting), as ``<dataset>/<metric>``:
``training/binary_logloss``, ``valid_0/binary_logloss`` (LightGBM's own dataset names, or
``valid_names=``; rename with ``datasets={"valid_0": "valid"}``). Every dataset's values of one metric share a panel.
Nothing is displayed unless ``display=True``; call ``callback.plot.flush()`` or show
``callback.plot`` after training to draw the last round.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._ui import LossPlot
from ._common import SharedPlot, resolve_plot

__all__ = ["LossPlotCallback"]


class LossPlotCallback(SharedPlot):
    """A LightGBM callback streaming evaluation results into ``plot`` (a new ``LossPlot`` if None)."""

    def __init__(self, plot: LossPlot | None = None, *, datasets: Mapping[str, str] | None = None,
                 display: bool = False, title: str = "") -> None:
        self.plot = resolve_plot(plot, display=display, title=title)
        self.datasets = dict(datasets or {})
        self.order = 25  # LightGBM runs callbacks by order: after record_evaluation (20), before early_stopping (30)

    def __call__(self, env: Any) -> None:
        row = {f"{self.datasets.get(data, data)}/{metric}": value
               for data, metric, value, *_ in env.evaluation_result_list}
        if row:
            self.plot.log(row, step=env.iteration)
        if env.iteration + 1 == env.end_iteration:
            self.plot.flush()
