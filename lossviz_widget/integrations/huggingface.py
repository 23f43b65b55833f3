"""Hugging Face ``transformers.Trainer``: ``Trainer(..., callbacks=[LossPlotCallback()])``.

Every numeric entry of each log row is plotted at ``state.global_step``: ``loss``,
``grad_norm``, ``learning_rate``, ``epoch`` (fractional), ``eval_loss`` and the other
``eval_*`` values. The summary row ``Trainer`` logs when training ends
(``train_runtime``, ``train_loss`` as the mean over the whole run, ...) is not a point on
a curve: it is kept in ``callback.summary`` instead. Only the main process logs.

``LossPlotCallback(watch=True)`` also watches the model (:meth:`LossPlot.watch`: per-layer
gradients, weights, update ratio, activations) every ``watch_every`` optimizer steps (default:
the logging interval), at ``global_step`` numbers, from ``on_train_begin`` to ``on_train_end``.
"""

from __future__ import annotations

from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from .._ui import LossPlot
from ._common import SharedPlot, numeric, resolve_plot

__all__ = ["LossPlotCallback"]


class LossPlotCallback(SharedPlot, TrainerCallback):
    """Stream ``Trainer`` logs into ``plot`` (a new ``LossPlot`` if None).

    Shows nothing unless ``display=True``: put ``callback.plot`` as a cell's last line.
    """

    def __init__(self, plot: LossPlot | None = None, *, display: bool = False, title: str = "",
                 watch: bool = False, watch_every: int | None = None) -> None:
        self.plot = resolve_plot(plot, display=display, title=title)
        self.summary: dict[str, float] = {}
        self.watch = watch
        self.watch_every = watch_every

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                       **kwargs: Any) -> None:
        if self.watch and state.is_world_process_zero and kwargs.get("model") is not None:
            # the k-th optimizer step (from 0) ends at global_step k + 1, where Trainer logs its loss
            every = self.watch_every or max(1, int(state.logging_steps))  # absolute (args' may be a ratio)
            self.plot.watch(kwargs["model"], kwargs.get("optimizer"), every=every, start=state.global_step + 1)

    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
               logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        row = numeric(logs or {})
        if "train_runtime" in row:
            self.summary.update(row)
        elif row:
            self.plot.log(row, step=state.global_step)

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                     **kwargs: Any) -> None:
        if state.is_world_process_zero:
            if self.watch:
                self.plot.unwatch()
            self.plot.flush()
