"""PyTorch Lightning (the ``lightning`` package): ``Trainer(logger=LossPlotLogger())``.

See :func:`._lightning_logger.logger_class` for what is logged; for the standalone
``pytorch_lightning`` package use :mod:`.pytorch_lightning`.
"""

from __future__ import annotations

from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities import rank_zero_only

from ._lightning_logger import logger_class

__all__ = ["LossPlotLogger"]

LossPlotLogger = logger_class(Logger, rank_zero_only)
