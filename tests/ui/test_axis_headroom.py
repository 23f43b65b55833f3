"""Auto-ranged axes leave room for about a second of growth: a young run's axes hold still.

The x axis on the right of the data; the y axis on a side where the data's extent grows fast (a
young run's learning rate decaying, its loss falling), and otherwise no more than 5% of the span.

Frames here are drawn with ``flush()`` about 0.1 s apart (the render thread's 10 frames/s), so the
growth rate the plot measures from its frames is a real one; nothing asserts on time itself.
"""

from __future__ import annotations

import datetime as dt
import itertools
import time

import pytest
from bqplot import DateScale
from drawn import x_scale, y_scale
from waiting import wait_until

from lossviz_widget import LossPlot
from lossviz_widget._core.frame import FrameBuilder
from lossviz_widget._core.headroom import SETTLE_S


def _grow(plot: LossPlot, start: int, frames: int, per_frame: int, first: int = 0) -> list[tuple]:
    """Log ``per_frame`` steps and draw a frame, ``frames`` times, 0.1 s apart; the x bounds after each."""
    bounds = []
    step = start
    for _ in range(frames):
        time.sleep(0.1)
        for _ in range(per_frame):
            plot.log(loss=1.0 / (1 + step), step=step)
            step += 1
        plot.flush()
        scale = x_scale(plot)
        assert scale.min <= first and scale.max >= step - 1  # the data always fits
        bounds.append((scale.min, scale.max))
    return bounds


def _longest_hold(bounds: list[tuple]) -> int:
    """The most consecutive frames that kept the same bounds."""
    best = run = 1
    for a, b in itertools.pairwise(bounds):
        run = run + 1 if a == b else 1
        best = max(best, run)
    return best


def test_a_young_fast_growing_run_keeps_its_x_bounds_for_several_frames():
    plot = LossPlot()
    for i in range(1000):
        plot.log(loss=1.0 / (1 + i), step=i)
    plot.flush()
    # 50 steps a frame at 1,000 steps: 5% of the span a frame, so a 5% margin moved every frame or two
    bounds = _grow(plot, 1000, frames=15, per_frame=50)
    assert _longest_hold(bounds) >= 4
    assert len(set(bounds)) <= 6
    lo, hi = bounds[-1]
    last = 1000 + 15 * 50 - 1
    assert (hi - last) / (hi - lo) <= 0.5 + 0.125  # the curve fills at least half the width (plus rounding)
    plot.close()


def test_a_long_run_keeps_the_small_margin():
    plot = LossPlot()
    n = 200_000
    for i in range(n):
        plot.log(loss=1.0, step=i)
    plot.flush()
    bounds = _grow(plot, n, frames=5, per_frame=50)  # 500 steps/s: 0.25% of the span a second
    assert bounds == [(0.0, pytest.approx(1.05 * (n - 1)))] * len(bounds)
    plot.close()


def test_a_log_x_axis_keeps_positive_held_bounds():
    plot = LossPlot(x_log=True)
    for i in range(1, 1000):
        plot.log(loss=1.0 / i, step=i)
    plot.flush()
    bounds = _grow(plot, 1000, frames=10, per_frame=50, first=1)
    assert all(lo > 0 for lo, _ in bounds)
    assert _longest_hold(bounds) >= 4
    plot.close()


def test_a_zoom_is_not_moved_by_a_fast_growing_run():
    plot = LossPlot()
    for i in range(1000):
        plot.log(loss=1.0, step=i)
    plot.flush()
    plot.x_range = (100.0, 200.0)
    step = 1000
    for _ in range(5):
        time.sleep(0.1)
        for _ in range(50):
            plot.log(loss=1.0, step=step)
            step += 1
        plot.flush()
        assert (x_scale(plot).min, x_scale(plot).max) == (100.0, 200.0)
    plot.follow_latest = True  # back to auto-ranging: the whole run fits
    plot.flush()
    assert x_scale(plot).min == 0.0 and x_scale(plot).max >= step - 1
    plot.close()


def test_a_wall_time_axis_leaves_room_for_the_next_second():
    plot = LossPlot(x_axis="wall_time")
    for i in range(12):
        plot.log(loss=1.0 / (1 + i), step=i)
        plot.flush()
        time.sleep(0.1)
    scale = x_scale(plot)
    wall = plot.history["loss"].wall_time
    first, last = float(wall[0]), float(wall[-1])
    assert isinstance(scale, DateScale)
    lo = scale.min.replace(tzinfo=scale.min.tzinfo or dt.timezone.utc).timestamp()
    hi = scale.max.replace(tzinfo=scale.max.tzinfo or dt.timezone.utc).timestamp()
    assert lo <= first + 1e-3 and hi >= last - 1e-3
    assert hi - last > 0.05 * (last - first)  # more than the fixed 5%: the clock grows ~1 s a second
    assert hi - last <= (last - first) * 1.25 + 1e-3  # at most the span (plus rounding): the data fills half
    plot.close()


def _lr(step: int, end: int) -> float:
    """A learning rate decaying linearly from 1e-3 to 0 at step ``end``."""
    return 1e-3 * (1 - step / end)


def _lr_plot(steps: int, end: int) -> LossPlot:
    """A plot of :func:`_lr` over its first ``steps`` steps, drawn."""
    plot = LossPlot()
    for i in range(steps):
        plot.log(lr=_lr(i, end), step=i)
    plot.flush()
    return plot


def _decay(plot: LossPlot, start: int, frames: int, per_frame: int, end: int) -> list[tuple]:
    """Log ``per_frame`` more steps of :func:`_lr` and draw a frame, ``frames`` times, 0.1 s apart;
    the lr panel's y bounds after each (compared with 1e-9 to spare: a frame draws float32 values)."""
    bounds = []
    step = start
    for _ in range(frames):
        time.sleep(0.1)
        for _ in range(per_frame):
            plot.log(lr=_lr(step, end), step=step)
            step += 1
        plot.flush()
        scale = y_scale(plot, "lr")
        lo, hi = _lr(step - 1, end), 1e-3
        assert 0.0 <= scale.min <= lo and scale.max >= hi  # the data always fits, nothing below 0
        assert scale.max - hi <= 0.05 * (hi - lo) + 1e-9  # the top does not move: 5% at most
        bounds.append((scale.min, scale.max))
    return bounds


def _five_percent_below(bounds: list[tuple], start: int, per_frame: int, end: int) -> bool:
    """Whether every frame's lower bound is within 5% of the data's span below its lowest value."""
    lows = [_lr(start + (k + 1) * per_frame - 1, end) for k in range(len(bounds))]
    return all(low - lo <= 0.05 * (1e-3 - low) + 1e-9 for (lo, _), low in zip(bounds, lows))


def test_a_young_decaying_learning_rate_keeps_its_y_bounds_for_several_frames():
    plot = _lr_plot(1000, end=4000)
    # 50 steps a frame at 1,000 steps: the lr's span grows 5% a frame, so a 5% margin moved every frame or two
    bounds = _decay(plot, 1000, frames=15, per_frame=50, end=4000)
    assert _longest_hold(bounds) >= 4
    assert len(set(bounds)) <= 6
    lo, hi = bounds[-1]
    last = _lr(1000 + 15 * 50 - 1, 4000)
    assert (last - lo) / (hi - lo) <= 0.5 + 0.125  # the curve fills at least half the height (plus rounding)
    assert not _five_percent_below(bounds, 1000, 50, 4000)  # (the room is really there)
    plot.close()


def test_a_long_run_keeps_y_within_five_percent_of_the_data():
    n = 100_000
    plot = _lr_plot(n, end=4 * n)
    bounds = _decay(plot, n, frames=5, per_frame=50, end=4 * n)  # the lr's span grows 0.2% a second
    assert _five_percent_below(bounds, n, 50, 4 * n)
    plot.close()


def test_a_zoom_gives_the_y_axis_no_growth_room():
    plot = _lr_plot(1000, end=4000)
    plot.x_range = (0.0, 5000.0)  # the whole run stays in view, but the view does not follow it
    bounds = _decay(plot, 1000, frames=8, per_frame=50, end=4000)
    assert _five_percent_below(bounds, 1000, 50, 4000)
    plot.close()


def test_a_run_that_stops_drops_its_growth_room_without_another_log(as_in_a_kernel, monkeypatch):
    """Frames drawn live (the render thread): a young run grows fast for 1.5 s and stops; the
    view asks for one more frame once it has not grown for a second, which brings the axes back
    to the fixed margins (x: the data fills at least 80% of it; y: 5% of the span below), and
    then no more."""
    builds, build = [], FrameBuilder.build
    monkeypatch.setattr(FrameBuilder, "build", lambda *a, **kw: builds.append(1) or build(*a, **kw))  # one per frame
    plot = LossPlot()
    end = 4000
    for i in range(500):
        plot.log(lr=_lr(i, end), step=i)
    step = 500
    stop = time.monotonic() + 1.5
    while time.monotonic() < stop:  # ~500 steps/s: the run grows ~50% of its length a second
        for _ in range(25):
            plot.log(lr=_lr(step, end), step=step)
            step += 1
        time.sleep(0.05)
    last = step - 1
    low = _lr(last, end)
    assert wait_until(lambda: x_scale(plot).max is not None and x_scale(plot).max >= last, timeout=5)
    assert low - y_scale(plot, "lr").min > 0.05 * (1e-3 - low)  # growth room below, while it grew

    def settled() -> bool:
        x, y = x_scale(plot), y_scale(plot, "lr")
        return last - x.min >= 0.8 * (x.max - x.min) and low - y.min <= 0.05 * (1e-3 - low) + 1e-9

    assert wait_until(settled, timeout=5)  # with no log() and no flush()
    time.sleep(0.5)  # (the settling frame's own last steps)
    frames = len(builds)
    time.sleep(3 * SETTLE_S)
    assert len(builds) == frames  # settled: the plot is idle
    plot.close()
