"""lossviz_widget: live loss curves in Jupyter.

>>> from lossviz_widget import LossPlot
>>> plot = LossPlot(title="my run")
>>> plot.log(loss=0.5, step=0)

The widget (``LossPlot``) and ``lr_find``, which draws one, are imported on first use: a script
or a DDP rank that only needs the widget-free :class:`Recorder` never loads ipywidgets or bqplot.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from . import losses
from ._core.recorder import Recorder
from ._core.runs import Run
from ._core.settings import ViewSettings
from ._core.smoothing import SMOOTHING_MODES, smooth, tensorboard_ema
from ._model import MetricHistory
from .diagnostics import DiagnosticsConfig, Finding
from .follow import Follower

if TYPE_CHECKING:
    from ._ui import LossPlot
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

_LAZY = {"LossPlot": "._ui", "LRFindResult": ".lr_finder", "lr_find": ".lr_finder"}  # they load the widgets


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
