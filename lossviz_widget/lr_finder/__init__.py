"""The learning-rate finder: fastai's range test, run on a model and plotted live.

``finder`` runs the test (:func:`lr_find`, :class:`LRFindResult`), ``suggest`` holds
fastai's schedule, stopping rule and suggestion methods (pure NumPy), ``view`` the live
log-x plot (:class:`LRFinderPlot`). ``from lossviz_widget import lr_find`` is the usual way in.
"""

from __future__ import annotations

from .finder import LRFindResult, lr_find
from .suggest import Suggestion
from .view import LRFinderPlot

__all__ = ["LRFindResult", "LRFinderPlot", "Suggestion", "lr_find"]
