"""How much a series is smoothed, given how densely it was measured (no widgets here).

The smoothing weight (TensorBoard's 0.6 by default) is meant for per-batch noise: it is a
weight *per point*. Applied as is to a sparse series, validation every N steps or one value
per epoch, it lags the measurement by points that are N steps or whole epochs apart (a
5-point ``val_acc`` whose last measured value is 0.914 drawn at 0.889). So each series gets
its own weight:

* a series with at most :data:`SPARSE_POINTS` points is drawn raw: every point is a
  measurement worth seeing, and each gets a dot;
* otherwise the weight is ``smoothing ** ratio``, where ``ratio`` is the series' mean step
  spacing over the finest mean spacing among its run's series (rounded to a whole number):
  a validation series measured every 100 steps beside a per-step training loss gets
  ``0.6 ** 100``, that is no smoothing, while series logged at the same cadence keep the
  weight the user set (what TensorBoard does for each of them);
* a weight below :data:`MIN_WEIGHT` (it would change nothing visible) is 0: raw.

The spacing is read on steps whatever the x axis shows, so switching the x axis never
changes a line's shape. The same weights drive the live view, exported images and the HTML
report (they all draw a :class:`~lossviz_widget._core.frame.Frame`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from .._model import MetricHistory

__all__ = ["MIN_WEIGHT", "SPARSE_POINTS", "series_weights"]

#: A series with at most this many points is drawn raw, with a dot on every point.
SPARSE_POINTS = 60
#: Smoothing weights below this are treated as 0 (raw).
MIN_WEIGHT = 0.01


def _mean_spacing(hist: MetricHistory) -> float:
    """The mean step between consecutive points (NaN with fewer than two points or no spread)."""
    n = len(hist)
    if n < 2:
        return math.nan
    span = float(hist.steps[-1]) - float(hist.steps[0])
    return span / (n - 1) if span > 0 else math.nan


def series_weights(smoothing: float, metrics: Mapping[str, MetricHistory]) -> dict[str, float]:
    """The smoothing weight of each metric of one run (see the module's text for the rule)."""
    if smoothing <= 0:
        return dict.fromkeys(metrics, 0.0)
    spacing = {name: _mean_spacing(h) for name, h in metrics.items() if len(h) > SPARSE_POINTS}
    finest = min((v for v in spacing.values() if not math.isnan(v)), default=math.nan)
    weights = {}
    for name in metrics:
        if name not in spacing:
            weights[name] = 0.0
            continue
        v = spacing[name]
        ratio = 1 if math.isnan(v) or math.isnan(finest) else max(1, round(v / finest))
        w = smoothing**ratio
        weights[name] = w if w >= MIN_WEIGHT else 0.0
    return weights
