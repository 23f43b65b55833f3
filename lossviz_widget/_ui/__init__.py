"""The notebook layer: the ``LossPlot`` widget and its parts (bqplot figures, controls, runs table,
status line, snapshot button, display plumbing).

Other layers reach the UI only through what this package exports.
"""

from .display import in_kernel
from .widget import LossPlot

__all__ = ["LossPlot", "in_kernel"]
