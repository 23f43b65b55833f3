"""Lines sent for the browser's plot width (``plot_width``): at most 2 points per pixel column, spikes kept.

The view reports its plot area's width (js/hover.js -> ``HoverLayer.width`` -> ``LossPlot.plot_width``);
the frame builder then downsamples each line to ``ViewSettings.points_per_line`` points instead of
``max_points``: the same min/max-per-bucket selection, only with fewer buckets.
"""

from __future__ import annotations

import numpy as np
import pytest
from traitlets import TraitError

from lossviz_widget import LossPlot
from lossviz_widget._core.frame import FrameBuilder
from lossviz_widget._core.settings import ViewSettings
from lossviz_widget._core.store import MetricStore


def _spiky_store(n: int = 100_000, spikes: int = 40) -> tuple[MetricStore, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    y = 1.0 + 0.01 * rng.standard_normal(n)
    at = np.linspace(n // 80, n - n // 80, spikes).astype(np.int64)  # one spike per ~2.5% of the run
    y[at] = np.where(np.arange(spikes) % 2 == 0, 30.0, -30.0)  # up and down
    store = MetricStore()
    store.extend("loss", np.arange(n, dtype=float), y, np.linspace(1e9, 1e9 + 100, n))
    return store, at, y


@pytest.mark.parametrize("smoothing", [0.0, 0.6])
def test_a_known_width_sends_two_points_per_pixel_column_and_every_spike(smoothing: float) -> None:
    store, at, y = _spiky_store()
    width = 300
    frame = FrameBuilder().build(store.snapshot(), store.t0, ViewSettings(smoothing=smoothing, plot_width=width))
    (series,) = frame.panels[0].series
    raw_x = series.x if smoothing == 0 else series.raw_x
    assert len(series.x) <= 2 * width
    # the raw line gets half the budget behind a smoothed one
    assert raw_x is not None and len(raw_x) <= (2 * width if smoothing == 0 else width)
    assert set(at.tolist()) <= set(raw_x.astype(np.int64).tolist())  # every spike, up and down, is drawn
    raw_y = series.y if smoothing == 0 else series.raw_y
    assert raw_y is not None and raw_y.max() == y.max() and raw_y.min() == y.min()


def test_width_aware_points_are_those_of_the_same_budget_from_max_points() -> None:
    """Same selection as before, only the budget differs: plot_width=W draws what max_points=2W drew."""
    store, _, _ = _spiky_store()
    by_width = FrameBuilder().build(store.snapshot(), store.t0, ViewSettings(plot_width=400))
    by_max = FrameBuilder().build(store.snapshot(), store.t0, ViewSettings(max_points=800))
    (a,), (b,) = by_width.panels[0].series, by_max.panels[0].series
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.y, b.y)
    np.testing.assert_array_equal(a.raw_x, b.raw_x)


def test_points_per_line_never_exceeds_max_points_and_unknown_width_changes_nothing() -> None:
    assert ViewSettings().points_per_line == 2000  # not reported yet: max_points
    assert ViewSettings(plot_width=5000).points_per_line == 2000  # a wide plot gets no more than max_points
    assert ViewSettings(max_points=300, plot_width=400).points_per_line == 300
    assert ViewSettings(plot_width=400).points_per_line == 800
    assert ViewSettings(plot_width=8).points_per_line == 16  # the smallest allowed line
    with pytest.raises(ValueError, match="plot_width"):
        ViewSettings(plot_width=3)


def test_the_plot_width_trait_is_checked_and_exports_keep_full_resolution() -> None:
    plot = LossPlot(plot_width=100)
    with pytest.raises(TraitError, match="plot_width"):
        plot.plot_width = -1
    for i in range(5000):
        plot.log({"loss": 1.0 / (1 + i)}, step=i)
    (series,) = plot.frame(max_points=4000).panels[0].series  # an export, a report: not the browser's width
    assert len(series.x) > 200
    plot.close()
