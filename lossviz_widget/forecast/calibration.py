"""How far the forecasts' medians and 80% intervals are moved and stretched: learnt on real curves.

Written by ``python benchmarks/forecast/calibrate.py`` (do not edit by hand): split-conformal
calibration on the development seeds of the corpus (``benchmarks/FORECAST.md`` reports the
held-out seeds and the long runs, which it never saw). Per *share* of the run seen (last step
over horizon, from the first step), ``SCALE`` multiplies every family's spread so that 80% of
the development curves end inside the interval. Between shares it is interpolated in log
share; at share 1 (the last step) it is 1.
"""

from __future__ import annotations

SHARES: tuple[float, ...] = (0.1, 0.25, 0.5)
SCALE: tuple[float, ...] = (1.151, 0.863, 1.112)
DEV_ROWS: tuple[int, ...] = (27, 45, 59)  # development forecasts each share's numbers were learnt on
