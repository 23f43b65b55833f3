"""Sparse series are drawn as measured (``lossviz_widget._core.sparse``): the frame, without a widget."""

import numpy as np
import pytest

from lossviz_widget._core.frame import FrameBuilder
from lossviz_widget._core.settings import ViewSettings
from lossviz_widget._core.sparse import SPARSE_POINTS, series_weights
from lossviz_widget._core.store import MetricStore


def _store(series: dict[str, tuple[np.ndarray, np.ndarray]]) -> MetricStore:
    store = MetricStore()
    for name, (steps, values) in series.items():
        store.extend(name, steps, values, 1e9 + steps)
    return store


def _series(frame, name):
    return next(sf for pf in frame.panels for sf in pf.series if sf.name == name)


def test_a_five_point_validation_series_is_drawn_raw_with_dots_on_its_measured_values():
    rng = np.random.default_rng(0)
    steps = np.arange(500.0)
    val_steps = np.array([99.0, 199.0, 299.0, 399.0, 499.0])
    val_acc = np.array([0.71, 0.83, 0.87, 0.90, 0.914])  # the case: last measured 0.914
    store = _store({"acc": (steps, 0.5 + 0.4 * steps / 500 + 0.05 * rng.standard_normal(500)),
                    "val_acc": (val_steps, val_acc)})
    frame = FrameBuilder().build(store.snapshot(), store.t0, ViewSettings(smoothing=0.6))
    val = _series(frame, "val_acc")
    assert val.smoothing == 0.0 and val.dots and val.raw_x is None  # no smoothing, nothing faint behind
    np.testing.assert_array_equal(val.x, val_steps)
    np.testing.assert_allclose(val.y, val_acc, rtol=1e-7)  # float32 on the wire
    assert float(val.y[-1]) == pytest.approx(0.914, rel=1e-7)
    dense = _series(frame, "acc")
    assert dense.smoothing == 0.6 and not dense.dots and dense.raw_x is not None  # per-batch noise: smoothed


def test_validation_every_100_steps_is_not_smoothed_like_per_step_training_loss():
    steps = np.arange(20_000.0)
    val_steps = np.arange(0.0, 20_000.0, 100.0)  # 200 points: more than SPARSE_POINTS
    assert len(val_steps) > SPARSE_POINTS
    store = _store({"loss": (steps, 1.0 / (1.0 + steps)), "val_loss": (val_steps, 1.2 / (1.0 + val_steps))})
    frame = FrameBuilder().build(store.snapshot(), store.t0, ViewSettings(smoothing=0.6))
    val = _series(frame, "val_loss")
    assert val.smoothing == 0.0  # 0.6 ** 100 is below MIN_WEIGHT
    assert float(val.y[-1]) == pytest.approx(1.2 / (1.0 + val_steps[-1]), rel=1e-6)  # no lag at the end


def test_weights_follow_the_spacing_relative_to_the_runs_densest_series():
    store = _store({
        "loss": (np.arange(1000.0), np.ones(1000)),
        "every2": (np.arange(0.0, 1000.0, 2.0), np.ones(500)),
        "short": (np.arange(10.0), np.ones(10)),
    })
    weights = series_weights(0.6, store.snapshot())
    assert weights == {"loss": 0.6, "every2": pytest.approx(0.36), "short": 0.0}
    assert series_weights(0.0, store.snapshot()) == {"loss": 0.0, "every2": 0.0, "short": 0.0}


def test_an_epoch_only_run_is_drawn_as_measured():
    epochs = np.arange(1.0, 6.0)
    store = _store({"loss": (epochs, np.array([1.0, 0.6, 0.5, 0.45, 0.43])),
                    "val_loss": (epochs, np.array([0.9, 0.7, 0.65, 0.66, 0.7]))})
    frame = FrameBuilder().build(store.snapshot(), store.t0, ViewSettings(smoothing=0.9))
    for name in ("loss", "val_loss"):
        sf = _series(frame, name)
        assert sf.smoothing == 0.0 and sf.dots
        np.testing.assert_allclose(sf.y, store.snapshot()[name].values, rtol=1e-7)
