"""The Lightning logger, built once per Lightning package (``lightning.pytorch`` or ``pytorch_lightning``).

Both packages ship the same ``Logger`` base class and ``rank_zero_only`` under different
import names; :mod:`.lightning` and :mod:`.pytorch_lightning` each pass theirs in.
"""

from __future__ import annotations

import os
from argparse import Namespace
from collections.abc import Mapping
from typing import Any

from .._ui import LossPlot
from ._common import numeric, resolve_plot

__all__ = ["logger_class", "next_version"]


def next_version(root: str) -> int:
    """The first free ``version_N`` in ``root`` (0 when there is none), as Lightning's own loggers number runs."""
    try:
        names = os.listdir(root)
    except OSError:
        return 0
    taken = [int(n[8:]) for n in names if n.startswith("version_") and n[8:].isdigit()
             and os.path.isdir(os.path.join(root, n))]
    return max(taken, default=-1) + 1


def logger_class(base: type, rank_zero_only: Any) -> type:
    """A ``LossPlotLogger`` subclassing ``base`` (a Lightning ``Logger``)."""

    class LossPlotLogger(base):
        """Lightning logger that streams every logged metric into a ``LossPlot``.

        Use it alone or next to others: ``Trainer(logger=[LossPlotLogger(), CSVLogger("logs")])``.
        Metrics keep Lightning's names (``train_loss_step``, ``train_loss_epoch``, ``val_loss``,
        ``epoch``...) and its step (``trainer.global_step``-like batches that stepped), so
        epoch and validation values sit at the step of the epoch's last batch. Rows may hold
        any subset of metrics (validation comes in its own rows). Only global rank 0 logs.
        Shows nothing unless ``display=True``: put ``logger.plot`` as a cell's last line.

        Versioned like Lightning's own loggers: ``version`` (None: the first free ``version_N``
        under ``save_dir/name``, fixed on first use) names ``log_dir``; when this logger is the
        first of the Trainer's, checkpoints go to ``<save_dir or default_root_dir>/<name>/version_N``,
        so each run keeps its own. Another ``Trainer`` with the same logger goes on in the same
        version and plot: its steps restart, which the plot's ``on_rewind`` handles (the default
        purges the previous attempt's later points; ``LossPlot(on_rewind="new_run")`` keeps both).

        ``watch=True`` also watches the model (:meth:`LossPlot.watch`, with its first optimizer,
        every ``watch_every`` optimizer steps) from the start of fitting to its end.
        """

        def __init__(self, plot: LossPlot | None = None, *, display: bool = False, title: str = "",
                     save_dir: str | os.PathLike[str] | None = None, name: str = "lossviz",
                     version: int | str | None = None, watch: bool = False, watch_every: int = 10) -> None:
            super().__init__()
            self.plot = resolve_plot(plot, display=display, title=title)
            self.hparams: dict[str, Any] = {}
            self._save_dir = None if save_dir is None else os.fspath(save_dir)
            self._name = name
            self._version = version
            self.watch = watch
            self.watch_every = watch_every

        @property
        def name(self) -> str:
            return self._name

        @property
        def save_dir(self) -> str | None:
            return self._save_dir

        @property
        def version(self) -> int | str:
            if self._version is None:
                self._version = next_version(os.path.join(self._save_dir or os.getcwd(), self._name))
            return self._version

        @property
        def log_dir(self) -> str:
            """``<save_dir>/<name>/version_N`` (``save_dir`` None: the current folder)."""
            version = self.version if isinstance(self.version, str) else f"version_{self.version}"
            return os.path.join(self._save_dir or os.getcwd(), self._name, version)

        @property
        def experiment(self) -> LossPlot:
            return self.plot

        @rank_zero_only
        def log_hyperparams(self, params: Mapping[str, Any] | Namespace, *args: Any, **kwargs: Any) -> None:
            """Kept in ``self.hparams`` (not plotted: they are constants)."""
            self.hparams.update(vars(params) if isinstance(params, Namespace) else dict(params))

        @rank_zero_only
        def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
            row = numeric(metrics)
            if row:
                self.plot.log(row, step=step)

        @rank_zero_only
        def log_graph(self, model: Any, input_array: Any = None) -> None:
            """Lightning calls this once fitting is set up (optimizers exist): start watching."""
            if self.watch:
                trainer = getattr(model, "_trainer", None)  # LightningModule.trainer raises when detached
                optimizers = list(getattr(trainer, "optimizers", None) or [])
                self.plot.watch(model, optimizers[0] if optimizers else None, every=self.watch_every)

        @rank_zero_only
        def finalize(self, status: str) -> None:
            if self.watch:
                self.plot.unwatch()
            self.plot.flush()

    return LossPlotLogger
