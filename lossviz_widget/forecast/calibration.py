"""How wide the forecasts' 80% intervals are and how the families are weighted: learnt on real curves.

Written by ``python benchmarks/forecast/calibrate.py`` (do not edit by hand), on the learning set
only: the corpus's development seeds and the long runs' first four seeds (``benchmarks/FORECAST.md``
reports the corpus's held-out seeds and the long runs' fifth and sixth seeds, which it never saw):

* ``PRIOR`` -- a family's prior weight, multiplying its backtest weight in the ensemble: the
  log-power family's, of a grid, the one whose ensemble medians had the least median error
  summed over the three cuts;
* ``SCALE`` -- split-conformal: per *share* of the run seen (last step over horizon, from the
  first step), what every family's spread is multiplied by so that 80% of the learning curves
  end inside the interval; between shares interpolated in log share, 1 at share 1 (the last step);
* ``NOISE_FACTOR`` -- a further factor per bin of the curve's noise level (the spread of the
  logarithm of its block medians, bins cut at the learning curves' quantiles ``NOISE_EDGES``: as
  many bins as the cross-check out of fold chose), learnt with ``SCALE`` so that each share and
  each bin holds 80% of its learning curves.
"""

from __future__ import annotations

PRIOR: dict[str, float] = {"logpower": 0.5}
SHARES: tuple[float, ...] = (0.1, 0.25, 0.5)
SCALE: tuple[float, ...] = (0.557, 0.625, 0.76)
NOISE_EDGES: tuple[float, ...] = (0.0336, 0.0726, 0.1205, 0.1824)
NOISE_FACTOR: tuple[float, ...] = (1.365, 0.568, 1.072, 1.0, 1.463)
DEV_ROWS: tuple[int, ...] = (59, 109, 123)  # learning-set forecasts each share's numbers were learnt on
