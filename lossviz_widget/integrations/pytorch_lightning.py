"""PyTorch Lightning (the standalone ``pytorch_lightning`` package): ``Trainer(logger=LossPlotLogger())``.

The same logger as :mod:`.lightning`, built on ``pytorch_lightning``'s own ``Logger``.
"""

from __future__ import annotations

from pytorch_lightning.loggers import Logger
from pytorch_lightning.utilities import rank_zero_only

from ._lightning_logger import logger_class

__all__ = ["LossPlotLogger"]

LossPlotLogger = logger_class(Logger, rank_zero_only)
