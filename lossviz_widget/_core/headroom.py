"""Room left on the right of an auto-ranged x axis, scaled to how fast the run grows.

bqplot redraws the three SVG axes of every panel and their tick labels each time the shared
x scale's bounds move. With a fixed margin (:data:`HEADROOM` of the data span) a young run
that grows by half its length a second (500 steps/s at 1,000 steps) leaves that margin
every frame, so the axis moved almost every frame. The margin above the data is therefore
``max(HEADROOM * span, rate * GROWTH_HORIZON_S)``: the run's recent growth rate (x units per
second, measured from the frames' own x extents over time by :class:`GrowthRate`) over the
next :data:`GROWTH_HORIZON_S`, so the axis moves about once per horizon, and at most
:data:`MAX_GROWTH_HEADROOM` of the span, so the data always fills at least half of the axis.
A long run (1e6 steps at 500 steps/s grows 0.05% a second) keeps today's 5%. Once the extent
has not grown for :data:`GROWTH_HORIZON_S` the run has stopped (or paused) and the rate is 0:
the view asks for one more frame :data:`SETTLE_S` after a frame that left growth room, so a
finished run's axes end at the fixed margin, not with a second's room nothing will fill.

Widget-free: the bqplot layer (``_ui/figures.py``) feeds it and applies the bounds.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Hashable

__all__ = [
    "GROWTH_HORIZON_S",
    "HEADROOM",
    "MAX_GROWTH_HEADROOM",
    "MIN_FILL",
    "SETTLE_S",
    "GrowthRate",
    "headroom_above",
]

HEADROOM = 0.05  # auto-ranged bounds: margin (share of the data span) added when they move
MIN_FILL = 0.8  # ... and kept while the data, so widened, fills at least this share of them
GROWTH_HORIZON_S = 1.0  # x room above the data: at least the growth of the next this many seconds
MAX_GROWTH_HEADROOM = 1.0  # ... but at most this share of the data span (the data fills >= half)
RATE_WINDOW_S = 2.0  # the growth rate is measured over the frames of the last this many seconds
MIN_RATE_WINDOW_S = 0.25  # ... once they cover at least this long (a burst of frames says nothing)
SETTLE_S = GROWTH_HORIZON_S + 0.25  # a frame this long after one that left growth room finds the rate 0


class GrowthRate:
    """How fast the data's upper x extent grows, in x units per second, from the frames themselves.

    :meth:`observe` is called once per frame with the frame's largest x (in the axis's own
    arithmetic: log10 of it on a log axis) and a ``key`` naming the axis (mode, log, date): a
    new key, or an extent that went down (data cleared, a run removed or hidden), starts over.
    The rate is the growth between the oldest frame of the last :data:`RATE_WINDOW_S` and
    this one, 0.0 until those frames cover :data:`MIN_RATE_WINDOW_S`, and 0.0 once the extent
    has not grown for :data:`GROWTH_HORIZON_S` (the run stopped).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._key: Hashable = None
        self._seen: deque[tuple[float, float]] = deque()  # (time, upper x extent), oldest first
        self._grew_at = -math.inf  # when the extent last grew (or was first seen)

    def observe(self, key: Hashable, hi: float) -> float:
        """Record this frame's upper x extent ``hi``; returns the growth rate (x units per second, >= 0)."""
        now = self._clock()
        if key != self._key or (self._seen and hi < self._seen[-1][1]) or not math.isfinite(hi):
            self._seen.clear()
            self._key = key
        if not math.isfinite(hi):
            return 0.0
        if not self._seen or hi > self._seen[-1][1]:
            self._grew_at = now
        self._seen.append((now, hi))
        while len(self._seen) > 2 and now - self._seen[1][0] >= RATE_WINDOW_S:
            self._seen.popleft()  # keep one frame at least RATE_WINDOW_S old: the window's start
        t0, x0 = self._seen[0]
        if now - t0 < MIN_RATE_WINDOW_S or now - self._grew_at >= GROWTH_HORIZON_S:
            return 0.0
        return (hi - x0) / (now - t0)


def headroom_above(span: float, rate: float = 0.0, share: float = HEADROOM) -> tuple[float, float]:
    """The margin above data spanning ``span`` that grows at ``rate`` units per second, and the
    step to round the upper bound up to (0.0: no rounding, the margin is the fixed ``share``).

    The growth margin is rounded so the axis ends on a round number (a 1-2-5 step of at most a
    quarter of the margin: the rounding adds less than that)."""
    fixed = share * span
    grow = min(rate * GROWTH_HORIZON_S, MAX_GROWTH_HEADROOM * span)
    if not grow > fixed:
        return fixed, 0.0
    return grow, _round_step(grow / 4)


def _round_step(most: float) -> float:
    """The largest 1, 2 or 5 times a power of ten that is at most ``most`` (> 0)."""
    power = 10.0 ** math.floor(math.log10(most))
    return max(m * power for m in (1.0, 2.0, 5.0) if m * power <= most)
