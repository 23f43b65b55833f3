"""lossviz_widget: live loss curves in Jupyter.

>>> from lossviz_widget import LossPlot
>>> plot = LossPlot(title="my run")
>>> plot.log(loss=0.5, step=0)
"""

from . import losses
from ._core.recorder import Recorder
from ._core.runs import Run
from ._core.settings import ViewSettings
from ._core.smoothing import SMOOTHING_MODES, smooth, tensorboard_ema
from ._model import MetricHistory
from ._ui import LossPlot
from .diagnostics import DiagnosticsConfig, Finding
from .follow import Follower
from .lr_finder import LRFindResult, lr_find

__all__ = [
    "SMOOTHING_MODES",
    "DiagnosticsConfig",
    "Finding",
    "Follower",
    "LRFindResult",
    "LossPlot",
    "MetricHistory",
    "Recorder",
    "Run",
    "ViewSettings",
    "losses",
    "lr_find",
    "smooth",
    "tensorboard_ema",
]
__version__ = "0.1.0"
