"""Min/max bucket downsampling: bounded, spikes and endpoints kept, NaN gaps kept."""

import numpy as np
import pytest

from lossviz_widget._core.downsample import minmax_indices


def test_small_series_untouched():
    x = np.arange(10.0)
    np.testing.assert_array_equal(minmax_indices(x, x, 100), np.arange(10))


@pytest.mark.parametrize("n", [2001, 10_000, 1_000_003])
@pytest.mark.parametrize("max_points", [16, 500, 2000])
def test_bounded_sorted_unique_and_endpoints(n, max_points):
    rng = np.random.default_rng(n)
    x = np.arange(n, dtype=float)
    y = rng.normal(size=n)
    idx = minmax_indices(x, y, max_points)
    assert len(idx) <= max_points
    assert idx[0] == 0 and idx[-1] == n - 1
    assert np.all(np.diff(idx) > 0)
    # every bucket's extremes survive, so the global ones do too
    assert y.argmax() in idx and y.argmin() in idx


def test_single_step_spike_survives_among_a_million_points():
    n = 1_000_000
    y = np.ones(n)
    y[314_159] = 1e6
    y[271_828] = -1e6
    idx = minmax_indices(np.arange(n, dtype=float), y, 2000)
    assert 314_159 in idx and 271_828 in idx


def test_per_bucket_min_and_max_kept():
    n, max_points = 100_000, 202  # 100 buckets of 1000 points
    rng = np.random.default_rng(1)
    y = rng.random(n)
    idx = minmax_indices(np.arange(n, dtype=float), y, max_points)
    for b in range(100):
        seg = y[b * 1000 : (b + 1) * 1000]
        assert b * 1000 + seg.argmax() in idx
        assert b * 1000 + seg.argmin() in idx


def test_nan_and_inf_positions_survive_as_gaps():
    n = 50_000
    y = np.sin(np.arange(n) / 100.0)
    y[[10, 25_000, 49_000]] = [np.nan, np.inf, -np.inf]
    idx = minmax_indices(np.arange(n, dtype=float), y, 300)
    assert len(idx) <= 300
    assert {10, 25_000, 49_000} <= set(idx.tolist())


def test_uneven_x_uses_x_width_buckets():
    # dense early steps, sparse late ones: late points are not swamped by the early ones
    x = np.concatenate([np.linspace(0, 10, 100_000), np.linspace(11, 1000, 500)])
    y = np.random.default_rng(2).random(len(x))
    idx = minmax_indices(x, y, 400)
    assert len(idx) <= 400
    assert (x[idx] > 500).sum() > 50


def test_all_points_at_same_x():
    x = np.zeros(10_000)
    y = np.random.default_rng(3).random(10_000)
    idx = minmax_indices(x, y, 100)
    assert len(idx) <= 100 and y.argmax() in idx


def test_rejects_tiny_budget():
    with pytest.raises(ValueError):
        minmax_indices(np.arange(10.0), np.arange(10.0), 3)
