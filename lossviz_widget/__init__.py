"""lossviz_widget: live loss curves in Jupyter.

>>> from lossviz_widget import LossPlot
>>> plot = LossPlot(title="my run")
>>> plot.log(loss=0.5, step=0)
"""

from . import losses
from .buffers import MetricHistory
from .diagnostics import DiagnosticsConfig, Finding
from .follow import Follower
from .lr_finder import LRFindResult, lr_find
from .runs import Run
from .smoothing import SMOOTHING_MODES, smooth, tensorboard_ema
from .widget import LossPlot

__all__ = [
    "DiagnosticsConfig", "Finding", "Follower", "LRFindResult", "LossPlot", "MetricHistory", "Run", "SMOOTHING_MODES", "losses",
    "lr_find", "smooth", "tensorboard_ema",
]
__version__ = "0.1.0"
