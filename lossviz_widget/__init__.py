"""lossviz_widget: live loss curves in Jupyter.

>>> from lossviz_widget import LossPlot
>>> plot = LossPlot(title="my run")
>>> plot.log(loss=0.5, step=0)
"""

from .buffers import MetricHistory
from .runs import Run
from .smoothing import tensorboard_ema
from .widget import LossPlot

__all__ = ["LossPlot", "MetricHistory", "Run", "tensorboard_ema"]
__version__ = "0.1.0"
