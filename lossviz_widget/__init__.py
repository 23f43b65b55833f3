"""lossviz_widget: live loss curves in Jupyter.

>>> from lossviz_widget import LossPlot
>>> plot = LossPlot(title="my run")
>>> plot.log(loss=0.5, step=0)
"""

from . import losses
from .buffers import MetricHistory
from .lr_finder import LRFindResult, lr_find
from .smoothing import tensorboard_ema
from .widget import LossPlot

__all__ = ["LRFindResult", "LossPlot", "MetricHistory", "losses", "lr_find", "tensorboard_ema"]
__version__ = "0.1.0"
