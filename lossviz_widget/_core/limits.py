"""Axis limits and tick labels that read well and never lie about the data (no widgets here).

* y bounds stay close to the data: a panel whose values are all >= 0 (losses, accuracies,
  learning rates) never shows negative values, and a margin never runs more than
  :data:`Y_MARGIN` of the data's span past its extremes (``ignore_outliers`` once put an
  accuracy axis at 1.05), except, on a side where the data's extent grows fast (a young run's
  learning rate decaying, its loss falling), room for about the next second of that growth
  (:mod:`.headroom`), which the caller passes as ``room``;
* zoom stops at :data:`MIN_X_SPAN` steps (wheel zoom went down to a 2.7-step window);
* tick labels: d3-format strings (what bqplot's ``Axis.tick_format`` takes) with just enough
  digits that neighbouring ticks differ (``499,998`` and ``499,999``, not ``4.99998e+5`` twice),
  SI suffixes for large numbers (``100k``, ``1.2M``), clock times for wall-time axes
  (hours and minutes, seconds only for spans under a few minutes), and tick values at powers
  of ten (with 2 and 5 between them over a short range) on log axes, where d3's own ticks
  (1, 2, ... 9, 10, 20 ...) run into each other.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "MIN_X_SPAN",
    "Y_MARGIN",
    "clamp_to_data",
    "date_tick_format",
    "linear_ticks",
    "log_ticks",
    "number_tick_format",
    "tick_step",
    "widen_to_min_span",
]

#: Zoom stops at a window of this many x units (steps; seconds on time axes).
MIN_X_SPAN = 8.0
#: y bounds run at most this share of the data's span past its extremes.
Y_MARGIN = 0.05
#: About this many ticks per axis: labels up to ~10 characters fit a 320 px panel without touching.
TICKS = 5


def clamp_to_data(lo: float, hi: float, data_lo: float, data_hi: float, log: bool = False,
                  room: tuple[float, float] = (0.0, 0.0)) -> tuple[float, float]:
    """``[lo, hi]`` cut to the data's ``[data_lo, data_hi]`` plus :data:`Y_MARGIN` of its span
    (on a log axis, of its span in decades), or plus ``room`` (below, above; in decades on a log
    axis) where that is larger, and to 0 below when no value is negative."""
    if log:
        a, b = math.log10(data_lo), math.log10(data_hi)
        pad = (b - a) * Y_MARGIN or math.log10(1.2) / 2
        return max(lo, 10 ** (a - max(pad, room[0]))), min(hi, 10 ** (b + max(pad, room[1])))
    pad = (data_hi - data_lo) * Y_MARGIN or (abs(data_lo) * 0.1 or 0.5)
    floor = data_lo - max(pad, room[0])
    if data_lo >= 0:
        floor = max(floor, 0.0)
    return max(lo, floor), min(hi, data_hi + max(pad, room[1]))


def widen_to_min_span(lo: float, hi: float, min_span: float = MIN_X_SPAN) -> tuple[float, float]:
    """``[lo, hi]`` widened about its middle to at least ``min_span`` (unchanged when wider)."""
    if hi - lo >= min_span:
        return lo, hi
    mid = (lo + hi) / 2
    return mid - min_span / 2, mid + min_span / 2


def tick_step(span: float, ticks: int = TICKS) -> float:
    """The step between the ticks d3 places across ``span`` when asked for ``ticks`` of them
    (d3-array's ``tickIncrement``: 1, 2, 5 or 10 times a power of ten)."""
    raw = span / ticks
    power = 10.0 ** math.floor(math.log10(raw))
    error = raw / power
    factor = 10 if error >= math.sqrt(50) else 5 if error >= math.sqrt(10) else 2 if error >= math.sqrt(2) else 1
    return factor * power


def number_tick_format(lo: float, hi: float) -> str:
    """A d3-format string for linear ticks across ``[lo, hi]``: SI suffixes from 10,000 up (``100k``,
    ``1.2M``), plain decimals below, with as many significant digits as neighbouring ticks need."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return ",.4~g"
    step = tick_step(hi - lo)
    top = max(abs(lo), abs(hi))
    # the significant digits a label needs: from the largest value's down to the step's
    digits = max(1, min(math.floor(math.log10(top)) - math.floor(math.log10(step)) + 1, 12))
    if top >= 1e4:  # SI suffixes
        return f".{max(2, digits)}~s"
    if top < 1e-3:  # 5.0415e-4 (d3's ~s would say 504.15µ)
        return f".{max(1, digits - 1)}~e"
    return f",.{min(max(0, -math.floor(math.log10(step))), 12)}f"


def date_tick_format(span_s: float) -> str:
    """A d3 time format for a wall-time axis spanning ``span_s`` seconds: seconds only when the
    span is short enough for ticks to be seconds apart, the date only when it covers days."""
    if span_s < 5 * 60:
        return "%H:%M:%S"
    if span_s < 2 * 86400:
        return "%H:%M"
    return "%b %d %H:%M"


def linear_ticks(lo: float, hi: float) -> np.ndarray:
    """Tick values across ``[lo, hi]`` at d3's "nice" step for about :data:`TICKS` ticks (what
    :func:`number_tick_format` formats). Set from Python: bqplot given ``num_ticks`` spaces ticks
    evenly from bound to bound (``-0.4, 0.3, 1.0 ...``, ``-14k, 260k ...``)."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return np.empty(0)
    step = tick_step(hi - lo)
    ticks = np.arange(math.ceil(lo / step), math.floor(hi / step) + 1) * step
    return np.round(ticks, 12) + 0.0  # no 0.30000000000000004, no -0


def log_ticks(lo: float, hi: float) -> np.ndarray:
    """Tick values for a log axis across ``[lo, hi]`` (> 0): every power of ten, or every few
    over many decades; with 2x and 5x between them when the range spans under three decades; evenly
    spaced within a decade that holds fewer than two of those."""
    if not (lo > 0 and hi > lo and math.isfinite(hi)):
        return np.empty(0)
    a, b = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    decades = np.arange(a, b + 1)
    if len(decades) > 2 * TICKS:
        decades = decades[:: math.ceil(len(decades) / TICKS)]
    multiples = (1.0, 2.0, 5.0) if math.log10(hi / lo) < 3 else (1.0,)
    ticks = np.array([m * 10.0**int(d) for d in decades for m in multiples])
    ticks = ticks[(ticks >= lo) & (ticks <= hi)]
    if len(ticks) >= 2:
        return ticks
    step = tick_step(hi - lo)  # within one decade: evenly spaced ticks
    return np.arange(math.ceil(lo / step), math.floor(hi / step) + 1) * step
