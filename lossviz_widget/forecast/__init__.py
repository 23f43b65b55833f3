"""Learning-curve forecasts: where a curve will end, when it reaches a target, which run will win.

>>> from lossviz_widget.forecast import forecast
>>> p = forecast(steps, losses, horizon=100_000, target=1.8)
>>> p.final, (p.low, p.high), p.eta_step, p.model       # or p.reason when there is no forecast

Widget-free (NumPy; SciPy, the ``forecast`` extra, imported when a fit runs). The models are in
:mod:`.models`, the points and the change-point window in :mod:`.curve`, the ensemble and its
uncertainty in :mod:`.ensemble`; ``LossPlot(forecast=True)`` and :class:`~lossviz_widget.Recorder`
run them live (see ``docs/forecasting.md``), and ``benchmarks/FORECAST.md`` measures them on
real training curves.
"""

from __future__ import annotations

from .ensemble import Prediction, forecast
from .models import FAMILIES, Family

__all__ = ["FAMILIES", "Family", "Prediction", "forecast"]
