"""The frame builder (``lossviz_widget._core.frame``): what a view of the data holds, without a widget."""

import numpy as np
import pytest

from lossviz_widget import tensorboard_ema
from lossviz_widget._core.frame import SMOOTH_PYRAMID_BASE, FrameBuilder
from lossviz_widget._core.settings import ViewSettings
from lossviz_widget._core.store import MetricStore


def test_view_of_an_x_range_shows_raw_points_there():
    store = MetricStore()
    n = 200_000
    y = np.ones(n)
    y[123_456] = 50.0
    store.extend("loss", np.arange(n, dtype=float), y, np.linspace(1e9, 1e9 + 100, n))
    builder = FrameBuilder()
    full = builder.build(store.snapshot(), store.t0, ViewSettings(smoothing=0.0, max_points=500))
    (series,) = full.panels[0].series
    assert len(series.x) <= 500 and 123_456 in series.x  # bounded, spike kept
    zoom = builder.build(store.snapshot(), store.t0, ViewSettings(smoothing=0.0, max_points=500,
                                                                  x_range=(123_400.0, 123_500.0)))
    (series,) = zoom.panels[0].series
    # every raw point, plus one neighbour each side
    np.testing.assert_array_equal(series.x, np.arange(123_399, 123_502))
    assert series.y.max() == 50.0


def test_smoothed_line_of_a_mid_zoom_keeps_its_extremes_and_enough_points():
    """The smoothed line's pyramid has coarser blocks (SMOOTH_PYRAMID_BASE) than the raw one: a
    view in the band where its finest level is read still shows the smoothed extremes, with
    hundreds of points, and exactly the smoothed values."""
    n = 400_000
    y = np.sin(np.arange(n) / 3000.0) + 0.3 * np.random.default_rng(5).standard_normal(n)
    y[250_000] = 40.0  # a spike: the smoothed line has a bump there
    store = MetricStore()
    store.extend("loss", np.arange(n, dtype=float), y, np.linspace(1e9, 1e9 + 100, n))
    lo, hi = 200_000.0, 300_000.0  # 100k points: more than a direct scan, under 664 coarse blocks
    assert 1 << 16 < hi - lo < SMOOTH_PYRAMID_BASE * 664
    frame = FrameBuilder().build(store.snapshot(), store.t0, ViewSettings(smoothing=0.9, max_points=2000,
                                                                          x_range=(lo, hi)))
    (series,) = frame.panels[0].series
    smooth = tensorboard_ema(y, 0.9)
    inside = smooth[int(lo) : int(hi) + 1]
    assert 300 <= len(series.x) <= 2000
    assert float(series.y.max()) == pytest.approx(float(inside.max()), rel=1e-6)
    assert float(series.y.min()) == pytest.approx(float(inside.min()), rel=1e-6)
    np.testing.assert_allclose(series.y, smooth[series.x.astype(np.int64)], rtol=1e-6)
