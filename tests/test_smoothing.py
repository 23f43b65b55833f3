"""TensorBoard-exact EMA: pandas oracle on finite data, TensorBoard's NaN/constant rules."""

import math

import numpy as np
import pandas as pd
import pytest

from lossviz_widget.smoothing import EmaSmoother, tensorboard_ema


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
    cuts = sorted(rng.integers(0, len(y), 30)) + [len(y)]
    for c in cuts:
        part = s.update(y[:c])
        assert len(part) == c
    np.testing.assert_allclose(part, tensorboard_reference(y, weight), rtol=1e-11, equal_nan=True)


def test_long_series_stays_accurate():
    y = np.linspace(10, 0, 1_000_000) + np.sin(np.arange(1_000_000))
    expected = pd.Series(y).ewm(alpha=1 - 0.999, adjust=True).mean().to_numpy()
    np.testing.assert_allclose(tensorboard_ema(y, 0.999), expected, rtol=1e-10)


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, float("nan")])
def test_weight_out_of_range(bad):
    with pytest.raises(ValueError, match="smoothing weight"):
        EmaSmoother(bad)
