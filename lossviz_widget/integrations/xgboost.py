"""XGBoost: ``xgb.train(..., callbacks=[LossPlotCallback()])`` or ``XGBClassifier(callbacks=[...])``.

Every evaluation metric of every evaluation set is logged after each boosting round, at
step = round (0, 1, ...), as ``<dataset>/<metric>``: ``train/logloss``, ``eval/logloss``
for ``evals=[(dtrain, "train"), (dval, "eval")]``; the scikit-learn API names its
``eval_set`` entries ``validation_0``, ``validation_1``... (rename them with
``datasets={"validation_0": "train", "validation_1": "valid"}``). Every dataset's values
of one metric share a panel. Nothing is displayed unless ``display=True``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import xgboost

from .._ui import LossPlot
from ._common import SharedPlot, resolve_plot

__all__ = ["LossPlotCallback"]


class LossPlotCallback(SharedPlot, xgboost.callback.TrainingCallback):
    """Stream ``evals_log`` into ``plot`` (a new ``LossPlot`` if None), one row per round."""

    def __init__(self, plot: LossPlot | None = None, *, datasets: Mapping[str, str] | None = None,
                 display: bool = False, title: str = "") -> None:
        super().__init__()
        self.plot = resolve_plot(plot, display=display, title=title)
        self.datasets = dict(datasets or {})

    def after_iteration(self, model: Any, epoch: int, evals_log: Mapping[str, Mapping[str, Any]]) -> bool:
        row = {}
        for data, metrics in evals_log.items():
            for metric, values in metrics.items():
                last = values[-1]
                row[f"{self.datasets.get(data, data)}/{metric}"] = last[0] if isinstance(last, tuple) else last
        if row:
            self.plot.log(row, step=epoch)
        return False  # never asks to stop training

    def after_training(self, model: Any) -> Any:
        self.plot.flush()
        return model
