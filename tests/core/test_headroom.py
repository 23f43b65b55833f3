"""An axis's growth room: the run's growth rate from its frames, and the margin it gives."""

from __future__ import annotations

import pytest

from lossviz_widget._core.headroom import GROWTH_HORIZON_S, HEADROOM, MAX_GROWTH_HEADROOM, GrowthRate, headroom_above


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_rate_comes_from_the_frames_of_the_last_seconds():
    clock = _Clock()
    rate = GrowthRate(clock)
    assert rate.observe("step", 1000.0) == 0.0  # one frame says nothing
    clock.now += 0.1
    assert rate.observe("step", 1050.0) == 0.0  # nor a burst shorter than a quarter second
    top = 1050.0
    for _ in range(30):  # 500 steps/s at 10 frames/s for 3 s
        clock.now += 0.1
        top += 50.0
        got = rate.observe("step", top)
    assert got == pytest.approx(500.0)
    clock.now += 0.1
    assert rate.observe("step", top) == pytest.approx(500.0 * 2.0 / 2.1, rel=0.01)  # a pause slows it
    for _ in range(25):  # stopped for 2.5 s: no growth left in the window
        clock.now += 0.1
        got = rate.observe("step", top)
    assert got == 0.0


def test_a_new_axis_or_shrinking_data_starts_over():
    clock = _Clock()
    rate = GrowthRate(clock)
    for i in range(5):
        clock.now += 0.1
        rate.observe("step", 1000.0 + 100 * i)
    clock.now += 0.1
    assert rate.observe("step", 1500.0) == pytest.approx(1000.0)
    clock.now += 0.1
    assert rate.observe("relative_time", 3.0) == 0.0  # other units
    clock.now += 0.5
    assert rate.observe("relative_time", 1.0) == 0.0  # a run removed: its extent went down
    assert rate.observe("relative_time", float("nan")) == 0.0


def test_the_margin_is_five_percent_or_a_second_of_growth_rounded_and_capped():
    assert headroom_above(1e6, rate=500.0) == (HEADROOM * 1e6, 0.0)  # a long run: today's 5%
    assert headroom_above(1000.0) == (HEADROOM * 1000.0, 0.0)
    assert headroom_above(1000.0, rate=500.0) == (500.0, 100.0)  # a second of growth, rounded to 100s
    assert headroom_above(1000.0, rate=380.0) == (380.0, 50.0)
    assert headroom_above(100.0, rate=500.0) == (MAX_GROWTH_HEADROOM * 100.0, 20.0)  # at most the span
    assert headroom_above(2.0, share=0.1) == (pytest.approx(0.2), 0.0)  # y: its own fixed share


def test_a_run_that_stopped_growing_for_a_second_has_no_rate():
    clock = _Clock()
    rate = GrowthRate(clock)
    top = 0.0
    for _ in range(20):
        clock.now += 0.1
        top += 50.0
        rate.observe("step", top)
    clock.now += GROWTH_HORIZON_S - 0.1
    assert rate.observe("step", top) > 0  # a pause shorter than the horizon: still growing
    clock.now += 0.1
    assert rate.observe("step", top) == 0.0  # a whole horizon without growth: stopped
    clock.now += 0.1
    assert rate.observe("step", top + 50.0) > 0  # growing again
