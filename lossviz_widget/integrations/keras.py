"""Keras 3 (any backend): live curves from ``model.fit`` with one callback.

>>> cb = LossPlotCallback()              # or LossPlotCallback(plot=plot) / display=True
>>> model.fit(x, y, validation_data=(xv, yv), callbacks=[cb])
>>> cb.plot                              # a cell's last line shows it

One step axis, the global batch index (0, 1, ... across epochs and ``fit`` calls):

* ``loss``, ``accuracy``, ...: the value of each *batch*. Keras reports running means
  since the epoch began; they are de-averaged with the number of samples each batch
  added to the loss tracker (``model.metrics``' ``loss`` tracker count), so batches of
  different size (the last one of an epoch) come out exact. Without that tracker every
  batch weighs the same. Exact for mean-type metrics (loss, accuracy, MAE...); for
  non-additive ones (AUC, precision) the de-averaged value is not a per-batch score.
* ``loss_epoch``, ``accuracy_epoch``: the epoch values Keras reports (``History``), at the
  step of the epoch's last batch; ``val_loss``, ``val_accuracy``: validation, same step.
* ``learning_rate``: ``optimizer.learning_rate`` as used by each batch (schedules included).

The ``*_epoch``/``val_*`` names share a panel with their batch metric (see
:mod:`lossviz_widget._core.grouping`).
"""

from __future__ import annotations

from typing import Any

import keras

from .._ui import LossPlot
from ._common import numeric, resolve_plot

__all__ = ["LossPlotCallback"]

_LR_NAMES = frozenset({"learning_rate", "lr"})


class LossPlotCallback(keras.callbacks.Callback):
    """Stream per-batch and per-epoch metrics of ``fit`` into ``plot`` (a new ``LossPlot`` if None).

    ``display=True`` shows the plot where the callback is created; otherwise show
    ``callback.plot`` yourself. ``flush()`` runs at the end of training.
    """

    def __init__(self, plot: LossPlot | None = None, *, display: bool = False, title: str = "") -> None:
        super().__init__()
        self.plot = resolve_plot(plot, display=display, title=title)
        self._step = -1  # global index of the last batch seen
        self._seen = 0.0  # samples (loss tracker count) since the epoch began
        self._sums: dict[str, float] = {}  # running mean * samples, per metric, at the last batch
        self._lr: float | None = None

    def _samples(self, batch: int) -> float:
        """Samples counted by the loss tracker so far this epoch (``batch + 1`` if there is none)."""
        for metric in getattr(self.model, "metrics", ()):
            if metric.name == "loss" and hasattr(metric, "count"):
                return float(keras.ops.convert_to_tensor(metric.count))
        return float(batch + 1)

    def _learning_rate(self) -> float | None:
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is None:
            return None
        try:
            return float(keras.ops.convert_to_tensor(optimizer.learning_rate))
        except (AttributeError, TypeError, ValueError):
            return None  # no optimizer or no readable learning rate

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._seen = 0.0
        self._sums = {}

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._lr = self._learning_rate()

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._step += 1
        seen = self._samples(batch)
        added = seen - self._seen
        row = {}
        for name, mean in numeric(logs or {}).items():
            if name in _LR_NAMES:
                continue
            total = mean * seen
            row[name] = (total - self._sums.get(name, 0.0)) / added if added > 0 else mean
            self._sums[name] = total
        self._seen = seen
        if self._lr is not None:
            row["learning_rate"] = self._lr
        if row:
            self.plot.log(row, step=self._step)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        row = {}
        for name, value in numeric(logs or {}).items():
            if name in _LR_NAMES:
                continue
            row[name if name.startswith("val_") else f"{name}_epoch"] = value
        if row:
            self.plot.log(row, step=max(self._step, 0))

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self.plot.flush()
