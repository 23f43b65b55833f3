"""Smoothing modes beside TensorBoard's EMA: pandas oracles, hand fixtures, incremental == batch, NaN gaps."""

import math

import numpy as np
import pandas as pd
import pytest

from lossviz_widget import MetricHistory
from lossviz_widget._core.frame import FrameBuilder, ViewSettings
from lossviz_widget._core.pyramid import MinMaxPyramid
from lossviz_widget._core.smoothing import (
    SMOOTHING_MODES,
    CenteredSmoother,
    TimeEmaSmoother,
    gaussian_kernel,
    half_window,
    make_smoother,
    smooth,
    tensorboard_ema,
)

pytest.importorskip("scipy")  # pandas' win_type="gaussian" needs it


def _with_gaps(n, seed):
    rng = np.random.default_rng(seed)
    y = np.cumsum(rng.normal(size=n)) + 3 * rng.random(n)
    bad = rng.random(n) < 0.05
    y[bad] = rng.choice([np.nan, np.inf, -np.inf], size=int(bad.sum()))
    return y


def _pandas_input(y):
    return pd.Series(np.where(np.isfinite(y), y, np.nan))


@pytest.mark.parametrize("weight", [0.3, 0.5, 0.6, 0.9, 0.99])
def test_time_ema_matches_pandas_ewm_with_times_and_halflife(weight):
    rng = np.random.default_rng(1)
    y = _with_gaps(800, 2)
    x = 1000.0 * np.cumsum(rng.integers(1, 7, size=800))  # seconds: pandas rounds the halflife to 1 ns
    unit = float(np.median(np.diff(x[:33])))
    halflife = unit * math.log(0.5) / math.log(weight)
    expected = _pandas_input(y).ewm(halflife=pd.Timedelta(seconds=halflife), times=pd.to_datetime(x, unit="s")).mean()
    got = smooth(y, weight, "time_ema", x)
    finite = np.isfinite(y)
    np.testing.assert_allclose(got[finite], expected.to_numpy()[finite], rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(got[~finite], y[~finite])  # gaps stay gaps, values kept


def test_time_ema_on_even_spacing_is_tensorboards_ema():
    y = np.random.default_rng(3).normal(size=500)
    np.testing.assert_allclose(smooth(y, 0.8, "time_ema", 10.0 * np.arange(500)), tensorboard_ema(y, 0.8), rtol=1e-12)


def test_time_ema_hand_fixture_a_gap_forgets_more():
    # w = 0.5, unit = median spacing = 1: at x=4 the points at x=0,1,2 weigh 0.5**4, 0.5**3, 0.5**2
    got = smooth(np.array([4.0, 2.0, 1.0, 3.0]), 0.5, "time_ema", np.array([0.0, 1.0, 2.0, 4.0]))
    assert got[0] == 4.0
    assert got[1] == pytest.approx((0.5 * 4 + 2) / 1.5, rel=1e-14)
    assert got[3] == pytest.approx((4 / 16 + 2 / 8 + 1 / 4 + 3) / (1 / 16 + 1 / 8 + 1 / 4 + 1), rel=1e-14)
    # a long gap (10,000 units) forgets the past entirely, without overflow or NaN
    far = smooth(np.r_[np.full(10, 5.0), 1.0], 0.9, "time_ema", np.r_[np.arange(10.0), 1e4])
    assert np.all(np.isfinite(far)) and far[-1] == pytest.approx(1.0, rel=1e-15)


@pytest.mark.parametrize("weight", [0.2, 0.6, 0.9, 0.97])
def test_moving_average_matches_pandas_rolling_center(weight):
    y = _with_gaps(700, 4)
    h = half_window(weight)
    expected = _pandas_input(y).rolling(2 * h + 1, center=True, min_periods=1).mean().to_numpy()
    got = smooth(y, weight, "moving_average")
    finite = np.isfinite(y)
    np.testing.assert_allclose(got[finite], expected[finite], rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(got[~finite], y[~finite])


@pytest.mark.parametrize("weight", [0.2, 0.6, 0.9, 0.99])
def test_gaussian_matches_pandas_rolling_gaussian_window(weight):
    y = _with_gaps(3000, 5)  # 0.99: a 690-point kernel on 3000 points goes through the FFT path
    kernel = gaussian_kernel(weight)
    sigma = (2 * half_window(weight) + 1) / math.sqrt(12)
    expected = _pandas_input(y).rolling(len(kernel), center=True, min_periods=1, win_type="gaussian").mean(std=sigma)
    got = smooth(y, weight, "gaussian")
    finite = np.isfinite(y)
    np.testing.assert_allclose(got[finite], expected.to_numpy()[finite], rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(got[~finite], y[~finite])


def test_slider_meaning_for_windows():
    assert [2 * half_window(w) + 1 for w in (0.0, 0.6, 0.9, 0.99, 0.999)] == [1, 5, 19, 199, 1999]
    assert smooth(np.array([1.0, 5.0, 3.0]), 0.0, "moving_average").tolist() == [1.0, 5.0, 3.0]
    # window 5 at w=0.6: hand-computed, ends use the points that exist
    got = smooth(np.array([1.0, 2.0, 3.0, 10.0, 4.0, 5.0]), 0.6, "moving_average")
    np.testing.assert_allclose(got, [2.0, 4.0, 4.0, 4.8, 5.5, 19 / 3])


@pytest.mark.parametrize("mode", SMOOTHING_MODES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_incremental_equals_batch_on_random_appends(mode, seed):
    rng = np.random.default_rng(seed)
    n = 4000
    y = _with_gaps(n, seed + 10)
    x = np.cumsum(rng.integers(1, 4, size=n)).astype(float)
    weight = float(rng.choice([0.5, 0.9, 0.99]))
    sm = make_smoother(mode, weight)
    batch = smooth(y, weight, mode, x)
    end = 0
    while end < n:
        old = end
        end = min(n, end + int(rng.integers(1, 400)))
        out = sm.update(y[:end], x[:end])
        assert sm.changed_from <= old  # everything before changed_from is final
        np.testing.assert_allclose(out, batch[:end] if mode == "ema" else smooth(y[:end], weight, mode, x[:end]),
                                   rtol=1e-9, atol=1e-9, equal_nan=True)
    np.testing.assert_allclose(out, batch, rtol=1e-9, atol=1e-9, equal_nan=True)


def test_centered_update_reads_only_the_new_points_plus_two_half_windows():
    sm = CenteredSmoother("gaussian", 0.9)
    y = np.random.default_rng(0).normal(size=200_000)
    sm.update(y[:100_000])
    before = sm.examined
    sm.update(y[:100_050])
    assert sm.examined - before == 50 + 2 * sm.half
    assert sm.changed_from == 100_000 - sm.half


def test_time_ema_unit_is_learnt_then_fixed():
    sm = TimeEmaSmoother(0.9)
    x = np.concatenate([np.arange(0, 100, 2.0), 100 + np.arange(0, 500, 7.0)])
    y = np.ones(len(x))
    sm.update(y[:10], x[:10])
    sm.update(y[:60], x[:60])
    assert sm._unit == 2.0  # private on purpose: the unit learnt from the first spacings has no public reader
    sm.update(y, x)
    assert sm.changed_from == 60  # kept: another unit would have recomputed from the start


def test_pyramid_truncate_then_update_equals_a_fresh_pyramid():
    rng = np.random.default_rng(7)
    v = rng.normal(size=20_000)
    p = MinMaxPyramid(base=16)
    p.update(v[:15_000])
    v2 = v.copy()
    v2[14_000:] = rng.normal(size=6000)  # the tail was rewritten
    p.truncate(14_000)
    p.update(v2)
    fresh = MinMaxPyramid(base=16)
    fresh.update(v2)
    x = np.arange(len(v2), dtype=float)
    for lo, hi in ((0, 20_000), (1000, 19_999), (13_990, 20_000)):
        np.testing.assert_array_equal(p.select(x, v2, lo, hi, 64), fresh.select(x, v2, lo, hi, 64))


@pytest.mark.parametrize("mode", SMOOTHING_MODES)
def test_frame_builder_incremental_lines_equal_a_fresh_build(mode):
    rng = np.random.default_rng(11)
    n = 100_000
    steps = np.arange(n, dtype=float)
    values = np.exp(-steps / 3e4) + 0.1 * rng.normal(size=n)
    settings = ViewSettings(smoothing=0.9, smoothing_mode=mode, max_points=300)
    live = FrameBuilder()
    for end in (70_000, 70_001, 85_000, n):
        data = {"loss": MetricHistory(steps[:end], values[:end], steps[:end])}
        frame = live.build(data, 0.0, settings)
    fresh = FrameBuilder().build(data, 0.0, settings)
    a, b = frame.panels[0].series[0], fresh.panels[0].series[0]
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.y, b.y)


def test_unknown_mode_is_a_clear_error():
    with pytest.raises(ValueError, match="smoothing_mode must be one of"):
        make_smoother("median", 0.5)
    with pytest.raises(ValueError, match="smoothing weight must be in"):
        make_smoother("gaussian", 1.0)


@pytest.mark.parametrize("values", [[[1.0, 2.0], [3.0, 4.0]], ["a", "b"], 3.0])
@pytest.mark.parametrize("mode", SMOOTHING_MODES)
def test_smooth_rejects_values_that_are_not_a_1d_series(values, mode):
    with pytest.raises((TypeError, ValueError), match="values"):
        smooth(values, 0.5, mode=mode)


def test_smooth_rejects_x_that_does_not_match_values():
    with pytest.raises(ValueError, match="x"):
        smooth([1.0, 2.0, 3.0], 0.5, mode="time_ema", x=[[0.0, 1.0, 2.0]])


def test_tensorboard_ema_rejects_2d_values():
    with pytest.raises(ValueError, match="values"):
        tensorboard_ema(np.ones((2, 2)), 0.5)


@pytest.mark.parametrize("mode", SMOOTHING_MODES)
def test_a_replacing_smoother_reuses_the_buffer_and_computes_the_same(mode):
    y = _with_gaps(5000, seed=21)
    x = np.cumsum(np.random.default_rng(2).uniform(0.5, 2.0, len(y)))
    old = make_smoother(mode, 0.6, compact=True)
    old.update(y[:3000], x[:3000])
    old.update(y, x)  # grown: room to spare
    buffer = old.buffer
    new = make_smoother(mode, 0.9, compact=True, storage=buffer)
    got = new.update(y, x)
    assert new.buffer is buffer  # same memory, no fresh allocation
    want = make_smoother(mode, 0.9, compact=True).update(y, x)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)
    other = "moving_average" if mode == "ema" else "ema"  # float64 vs float32 cache: not reused
    assert make_smoother(other, 0.9, compact=True, storage=buffer).buffer is not buffer


@pytest.mark.parametrize("box", [True, False])
@pytest.mark.parametrize("fft", [False, True])
def test_window_sums_and_weights_equal_brute_force(monkeypatch, box, fft):
    """Every path of the window sums (running-sum slices; direct or overlap-add FFT convolution)
    against the definition, short series and series shorter than the kernel included."""
    import lossviz_widget._core.smoothing as smoothing

    if fft:  # overlap-add for any kernel, blocks far shorter than the series
        # private on purpose: the size thresholds pick the convolution path; zero forces the FFT one
        monkeypatch.setattr(smoothing, "_DIRECT_TAPS", 0)
        monkeypatch.setattr(smoothing, "_DIRECT_WORK", 0)
    rng = np.random.default_rng(5)
    for weight in (0.6, 0.9, 0.99):
        kernel = np.ones(2 * half_window(weight) + 1) if box else gaussian_kernel(weight)
        k = len(kernel) // 2
        for n in (1, 2, k, k + 1, 2 * k + 1, 4 * k + 3, 9000):
            a = rng.normal(size=n)
            padded = np.concatenate([np.zeros(k), a, np.zeros(k)])
            want = np.array([padded[i : i + 2 * k + 1] @ kernel for i in range(n)])
            ones = np.concatenate([np.zeros(k), np.ones(n), np.zeros(k)])
            weights = np.array([ones[i : i + 2 * k + 1] @ kernel for i in range(n)])
            got = smooth(a, weight, "moving_average" if box else "gaussian")  # window sums / window weights
            atol = 1e-11 * kernel.sum() * max(1.0, np.abs(a).max()) / weights.min()
            np.testing.assert_allclose(got, want / weights, rtol=1e-9, atol=atol)
