"""TensorBoard-exact EMA: pandas oracle on finite data, TensorBoard's NaN/constant rules."""

import gc
import math
import tracemalloc

import numpy as np
import pandas as pd
import pytest

from lossviz_widget._core.smoothing import EmaSmoother, tensorboard_ema


def tensorboard_reference(values, weight):
    """A line-by-line port of TensorBoard's resmoothDataset (vz_line_chart2/line-chart.ts)."""
    ys = list(values)
    is_constant = all(v == ys[0] for v in ys)
    last, num_accum, out = 0.0, 0, []
    for v in ys:
        if is_constant or not math.isfinite(v):
            out.append(v)
            continue
        last = last * weight + (1 - weight) * v
        num_accum += 1
        debias = 1 - weight**num_accum if weight != 1 else 1
        out.append(last / debias)
    return np.array(out)


@pytest.mark.parametrize("weight", [0.0, 0.01, 0.3, 0.6, 0.9, 0.99, 0.999])
@pytest.mark.parametrize("n", [1, 2, 7, 1000, 5003])
def test_matches_pandas_ewm_adjusted(weight, n):
    rng = np.random.default_rng(n)
    y = np.cumsum(rng.normal(size=n)) + 5 * rng.random(n)
    expected = pd.Series(y).ewm(alpha=1 - weight, adjust=True).mean().to_numpy()
    np.testing.assert_allclose(tensorboard_ema(y, weight), expected, rtol=1e-12, atol=1e-12)


def test_nan_and_inf_pass_through_and_do_not_advance_the_average():
    y = np.array([1.0, np.nan, 3.0, np.inf, -np.inf, 2.0, np.nan, 4.0])
    got = tensorboard_ema(y, 0.6)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(y))
    assert got[3] == np.inf and got[4] == -np.inf
    np.testing.assert_allclose(got, tensorboard_reference(y, 0.6), rtol=1e-14)
    finite = np.isfinite(y)  # the finite points are smoothed as if the others were absent
    np.testing.assert_allclose(got[finite], pd.Series(y[finite]).ewm(alpha=0.4).mean(), rtol=1e-13)


def test_constant_series_returned_as_is_then_smoothed_once_it_varies():
    y = np.full(50, 0.1)
    s = EmaSmoother(0.9)
    np.testing.assert_array_equal(s.update(y), y)  # exact, not 0.1*(1-w^k)/(1-w^k)
    y2 = np.append(y, 0.5)
    got = s.update(y2).copy()
    np.testing.assert_allclose(got, tensorboard_reference(y2, 0.9), rtol=1e-14)
    assert got[-1] != 0.5 and got[-1] > 0.1


def test_all_nan_and_leading_nan():
    assert np.isnan(tensorboard_ema(np.array([np.nan, np.nan]), 0.6)).all()
    y = np.array([np.nan, 1.0, 1.0, 2.0])
    np.testing.assert_allclose(tensorboard_ema(y, 0.6), tensorboard_reference(y, 0.6), equal_nan=True)


@pytest.mark.parametrize("weight", [0.6, 0.95])
def test_incremental_updates_equal_one_shot(weight):
    rng = np.random.default_rng(0)
    y = rng.normal(size=20000)
    y[rng.integers(0, len(y), 40)] = np.nan
    s = EmaSmoother(weight)
    cuts = [*sorted(rng.integers(0, len(y), 30)), len(y)]
    for c in cuts:
        part = s.update(y[:c])
        assert len(part) == c
    ref = tensorboard_reference(y, weight)
    # zero-mean data: near a zero crossing only an error relative to the series' magnitude is meaningful
    np.testing.assert_allclose(part, ref, rtol=1e-11, atol=1e-14 * np.nanmax(np.abs(ref)), equal_nan=True)


def test_long_series_stays_accurate():
    y = np.linspace(10, 0, 1_000_000) + np.sin(np.arange(1_000_000))
    expected = pd.Series(y).ewm(alpha=1 - 0.999, adjust=True).mean().to_numpy()
    np.testing.assert_allclose(tensorboard_ema(y, 0.999), expected, rtol=1e-10)


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, float("nan")])
def test_weight_out_of_range(bad):
    with pytest.raises(ValueError, match="smoothing weight"):
        EmaSmoother(bad)


def runs_with_gaps(n, seed):
    """A random walk with single NaN/+inf/-inf points and runs of them."""
    rng = np.random.default_rng(seed)
    y = np.cumsum(rng.normal(size=n)) + 3.0
    for bad in (np.nan, np.inf, -np.inf):
        y[rng.integers(0, n, n // 200)] = bad
        start = int(rng.integers(0, n - 50))
        y[start : start + int(rng.integers(1, 50))] = bad
    return y


@pytest.mark.parametrize("weight", [0.0, 0.3, 0.6, 0.9, 0.99, 0.999])
def test_equal_to_the_tensorboard_port_within_1e_12_with_nan_inf_runs(weight):
    y = runs_with_gaps(60_000, seed=int(weight * 1000))
    got, ref = tensorboard_ema(y, weight), tensorboard_reference(y, weight)
    np.testing.assert_array_equal(got[~np.isfinite(ref)], ref[~np.isfinite(ref)])  # passed through
    # 1e-12 relative to the series' magnitude (near a zero crossing, relative to the value is ill-posed)
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12 * np.abs(ref[np.isfinite(ref)]).max())


def test_slices_and_increments_change_nothing(monkeypatch):
    import lossviz_widget._core.smoothing as smoothing

    # private on purpose (here and below): the slice size is a tuning constant; small, one update spans many slices
    monkeypatch.setattr(smoothing, "_SLICE", 1000)  # many slices, some starting inside the debias horizon
    y = runs_with_gaps(20_000, seed=7)
    s = EmaSmoother(0.99)
    for c in (1, 999, 1000, 1001, 5000, 12_345, 20_000):
        got = s.update(y[:c])
    ref = tensorboard_reference(y, 0.99)
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12 * np.abs(ref[np.isfinite(ref)]).max())
    np.testing.assert_allclose(got, tensorboard_ema(y, 0.99), rtol=1e-13)  # as one shot


def test_compact_storage_is_the_float64_result_rounded_to_float32():
    y = runs_with_gaps(30_000, seed=11)
    s = EmaSmoother(0.9, compact=True)
    got = s.update(y)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, tensorboard_ema(y, 0.9).astype(np.float32))  # what is drawn
    # relative error bound: half a float32 ulp for the rounding, plus the float64 EMA's 1e-12
    finite = np.isfinite(got)
    ref = tensorboard_reference(y, 0.9)[finite]
    assert np.max(np.abs(got[finite] - ref) / np.abs(ref)) <= 2.0**-24 + 1e-12


@pytest.mark.parametrize("extreme", [1e-35, -1e-35, 1e35, -1e35])
def test_compact_storage_switches_to_float64_for_values_float32_cannot_draw(extreme):
    s = EmaSmoother(0.6, compact=True)
    head = np.linspace(1.0, 2.0, 100)
    assert s.update(head).dtype == np.float32
    y = np.concatenate([head, np.full(50, extreme), np.full(2000, extreme * 3)])
    got = s.update(y)
    assert got.dtype == np.float64
    ref = tensorboard_reference(y, 0.6)
    full = tensorboard_ema(y, 0.6)
    np.testing.assert_allclose(got[:100], full[:100].astype(np.float32), rtol=2.0**-23)  # kept as drawn
    np.testing.assert_allclose(got[100:], ref[100:], rtol=1e-12)  # float64 from the switch on
    assert got[-1] != 0 and np.isfinite(got[-1])


def test_fits_float32():
    from lossviz_widget._core.precision import fits_float32

    assert fits_float32(np.array([]))
    assert fits_float32(np.array([np.nan, np.inf, -np.inf]))
    assert fits_float32(np.array([0.0, -1.0, 1e-30, 1e30, np.nan]))
    assert fits_float32(np.array([1e-5, 3.0]))
    for bad in ([1.0, 1e31], [-1e31, 0.0], [1e-31, 2.0], [-2.0, -1e-31], [-1.0, 1e-31, 1.0], [np.inf, 2e30]):
        assert not fits_float32(np.array(bad)), bad


def test_compact_storage_switch_inside_one_update_keeps_its_earlier_slices(monkeypatch):
    """The switch to float64 can happen in a later slice of one update(): the slices already
    stored in that update must survive it (only the uninitialised slack is dropped)."""
    import lossviz_widget._core.smoothing as smoothing

    monkeypatch.setattr(smoothing, "_SLICE", 64)
    y = np.concatenate([np.linspace(1.0, 2.0, 100), np.full(60, 1e35)])
    got = EmaSmoother(0.6, compact=True).update(y)
    assert got.dtype == np.float64
    full = tensorboard_ema(y, 0.6)
    np.testing.assert_allclose(got[:64], full[:64].astype(np.float32), rtol=2.0**-23)  # first slice, as drawn
    np.testing.assert_allclose(got[64:], tensorboard_reference(y, 0.6)[64:], rtol=1e-12)


def test_stream_equals_the_stored_ema_chunk_by_chunk_and_keeps_nothing():
    rng = np.random.default_rng(3)
    y = rng.normal(1.0, 0.3, 5000)
    y[[10, 11, 400, 4999]] = [np.nan, np.inf, -np.inf, np.nan]
    streamed = EmaSmoother(0.9)
    parts = [streamed.stream(y[a:b]) for a, b in ((0, 1), (1, 7), (7, 4000), (4000, 5000))]
    np.testing.assert_allclose(np.concatenate(parts), tensorboard_ema(y, 0.9), rtol=1e-12, equal_nan=True)
    big = np.ones(1_000_000)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(3):
            del parts
            parts = streamed.stream(big)  # 8 MB out, handed over
        del parts
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # nothing per point is kept (that would be 8 MB a pass); the scan's coefficient tiles for
    # this weight, kept for the next slice, are bounded whatever the length (~1.3 MB)
    assert kept < 2 * 1024 * 1024


def step_by_step(x, a, b, init):
    coef = np.broadcast_to(a, len(x))
    out, last = np.empty(len(x)), init
    for i, v in enumerate(x):
        last = coef[i] * last + b * v
        out[i] = last
    return out


@pytest.mark.parametrize("n", [1, 64, 65, 71, 8 * 4096, 8 * 4096 + 7, 100_003])
def test_scan_equals_the_step_by_step_recurrence(n):
    """Every path of the vectorized scan: scaled rows, unscaled rows (a**8 would underflow),
    a coefficient per point (the time EMA), block and row remainders, a carried-in start."""
    from lossviz_widget._core.smoothing import _scan  # private on purpose: each path of the kernel all smoothers share

    rng = np.random.default_rng(n)
    x = rng.uniform(0.5, 2.0, n)
    for a in (0.0, 1e-200, 1e-13, 0.01, 0.6, 0.999, 1.0):
        out = np.empty(n)
        last = _scan(x, a, 1.0 - a if a < 1 else 1.0, 0.7, out)
        want = step_by_step(x, a, 1.0 - a if a < 1 else 1.0, 0.7)
        np.testing.assert_allclose(out, want, rtol=1e-13 if a < 1 else 1e-11)
        assert last == out[-1]
    coef = np.exp(-rng.exponential(0.5, n))  # per-point coefficients, 0 and 1 among them
    coef[rng.integers(0, n, 3)] = 0.0
    coef[rng.integers(0, n, 3)] = 1.0
    out = np.empty(n)
    last = _scan(x, coef.copy(), 1.0, 0.7, out)
    np.testing.assert_allclose(out, step_by_step(x, coef, 1.0, 0.7), rtol=1e-13)
    assert last == out[-1]


@pytest.mark.parametrize("seed", range(6))
def test_float32_cache_decisions_follow_the_rule_slice_by_slice(monkeypatch, seed):
    """The compact cache stays float32 up to the first slice whose float64 result fails
    fits_float32 (judged from the min/max the smoother computes anyway), and from there on holds
    exactly the float64 result: the decision of the rule applied to each slice on its own."""
    import lossviz_widget._core.smoothing as smoothing
    from lossviz_widget._core.precision import fits_float32

    monkeypatch.setattr(smoothing, "_SLICE", 1000)
    rng = np.random.default_rng(seed)
    y = rng.uniform(0.5, 2.0, 6000)
    if seed % 3:  # values float32 cannot draw, in a random slice
        at = int(rng.integers(0, 5000))  # long enough runs for the EMA to reach 1e-30 too
        y[at : at + int(rng.integers(700, 1000))] = [1e35, 1e-35, -1e-35, 0.0][seed % 4]
    if seed % 2:
        y[rng.integers(0, len(y), 20)] = [np.nan, np.inf, -np.inf, 3.0][seed % 4]
    wide = EmaSmoother(0.9).update(y)  # the float64 result
    fits = [fits_float32(wide[a : a + 1000]) for a in range(0, len(y), 1000)]
    switch = 1000 * fits.index(False) if False in fits else len(y)
    got = EmaSmoother(0.9, compact=True).update(y)
    assert got.dtype == (np.float32 if switch == len(y) else np.float64)
    np.testing.assert_array_equal(got[:switch], wide[:switch].astype(np.float32))
    np.testing.assert_array_equal(got[switch:], wide[switch:])


@pytest.mark.parametrize("mode", ["ema", "time_ema"])
@pytest.mark.parametrize("compact", [False, True])
def test_outputs_grown_ahead_of_need_hold_the_same(monkeypatch, mode, compact):
    """A long smoothed output three quarters full has its next array prepared by a helper thread
    (lossviz_widget._core.buffers.GrowAhead): fed in the same pieces, through many growths (and,
    compact, a switch from float32 to float64 storage), the output is exactly what it is when
    every growth copies at once."""
    import time

    from lossviz_widget._core import buffers
    from lossviz_widget._core.smoothing import make_smoother

    rng = np.random.default_rng(5)
    n = 20_000
    x = np.cumsum(rng.uniform(0.5, 1.5, n))
    values = 1.0 / (1 + x / 100) + 0.1 * rng.standard_normal(n)
    values[15_000:] *= 1e40  # past float32's range: compact storage turns float64
    ends = np.minimum(np.cumsum(rng.integers(1, 700, n)), n)
    ends = ends[: int(np.searchsorted(ends, n)) + 1]

    def fed(ahead_from: float) -> np.ndarray:
        monkeypatch.setattr(buffers, "AHEAD_FROM", ahead_from)
        smoother = make_smoother(mode, 0.9, compact=compact) if mode == "ema" else make_smoother(mode, 0.9)
        for k, end in enumerate(ends.tolist()):
            out = smoother.update(values[:end], x[:end])
            if k % 10 == 0:
                time.sleep(0.001)  # the helper thread gets to finish sometimes
        return np.array(out)

    monkeypatch.setattr(buffers, "AHEAD_SLICE", 50)
    at_once = fed(math.inf)
    ahead = fed(256)
    assert ahead.dtype == at_once.dtype and len(ahead) == n
    np.testing.assert_array_equal(ahead, at_once)
