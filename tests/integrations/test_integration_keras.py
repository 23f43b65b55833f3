"""Keras 3 (torch backend) with the real ``fit``: what reaches ``plot.history`` against ``History``."""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras
import numpy as np
import pytest

from lossviz_widget import LossPlot
from lossviz_widget.integrations.keras import LossPlotCallback

N, BATCH, EPOCHS = 100, 32, 3
SIZES = [32, 32, 32, 4]  # batches per epoch: the last one is smaller


class RawLogs(keras.callbacks.Callback):
    """Keras' own per-batch logs (running means since the epoch began), for comparison."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[tuple[int, dict]] = []

    def on_train_batch_end(self, batch, logs=None):
        self.batches.append((batch, dict(logs)))


def _data(nan_last: bool = False):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("float32")
    if nan_last:
        x[-1, 0] = np.nan  # the last (4-sample) batch diverges: its loss and then the weights are NaN
    return x, y


def _model(lr=0.1, loss="binary_crossentropy"):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=keras.optimizers.SGD(lr), loss=loss, metrics=["accuracy"])
    return model


@pytest.fixture(scope="module")
def run():
    x, y = _data()
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=2, decay_rate=0.5)
    model = _model(schedule)
    raw, callback = RawLogs(), LossPlotCallback(title="keras")
    history = model.fit(x, y, batch_size=BATCH, epochs=EPOCHS, validation_data=(x[:20], y[:20]),
                        callbacks=[callback, raw], verbose=0)
    return callback.plot, history, raw


def test_names_steps_and_counts(run):
    plot, _history, _ = run
    n = EPOCHS * len(SIZES)
    assert set(plot.history) == {"loss", "accuracy", "learning_rate", "loss_epoch", "accuracy_epoch",
                                 "val_loss", "val_accuracy"}
    for name in ("loss", "accuracy", "learning_rate"):
        np.testing.assert_array_equal(plot.history[name].steps, np.arange(n))  # global batch index
    last_batches = np.arange(len(SIZES) - 1, n, len(SIZES))
    for name in ("loss_epoch", "accuracy_epoch", "val_loss", "val_accuracy"):
        np.testing.assert_array_equal(plot.history[name].steps, last_batches)


def test_epoch_and_validation_values_equal_history(run):
    plot, history, _ = run
    for name, values in history.history.items():
        plotted = name if name.startswith("val_") else f"{name}_epoch"
        np.testing.assert_array_equal(plot.history[plotted].values, np.asarray(values, dtype=np.float64))


def test_batch_values_are_de_averaged_exactly(run):
    """Re-averaging the per-batch values (weighted by batch size, as Keras does) gives back
    every running mean Keras reported, and the epoch value in History."""
    plot, history, raw = run
    sizes = np.array(SIZES, dtype=np.float64)
    for name in ("loss", "accuracy"):
        per_batch = plot.history[name].values.reshape(EPOCHS, len(SIZES))
        running = np.cumsum(per_batch * sizes, axis=1) / np.cumsum(sizes)
        reported = np.array([logs[name] for _, logs in raw.batches]).reshape(EPOCHS, len(SIZES))
        np.testing.assert_allclose(running, reported, rtol=1e-5)
        np.testing.assert_allclose(running[:, -1], history.history[name], rtol=1e-5)
    # each batch's accuracy is (correct samples) / (batch size), the 4-sample batch included
    correct = plot.history["accuracy"].values.reshape(EPOCHS, len(SIZES)) * sizes
    np.testing.assert_allclose(correct, np.round(correct), atol=1e-3)
    assert raw.batches[0][1]["loss"] == pytest.approx(plot.history["loss"].values[0])  # the first batch as is


def test_learning_rate_follows_the_schedule(run):
    plot, _, _ = run
    steps = np.arange(EPOCHS * len(SIZES))
    np.testing.assert_allclose(plot.history["learning_rate"].values, 0.1 * 0.5 ** (steps / 2), rtol=1e-6)


def test_second_fit_continues_the_axis_and_nan_is_kept():
    x, y = _data(nan_last=True)
    model, plot = _model(loss="mse"), LossPlot()
    callback = LossPlotCallback(plot)
    assert callback.plot is plot
    model.fit(x, y, batch_size=BATCH, epochs=1, callbacks=[callback], verbose=0, shuffle=False)
    history = model.fit(x, y, batch_size=BATCH, epochs=1, callbacks=[callback], verbose=0, shuffle=False)
    loss = plot.history["loss"]
    np.testing.assert_array_equal(loss.steps, np.arange(2 * len(SIZES)))
    assert np.isfinite(loss.values[:3]).all() and np.isnan(loss.values[3:]).all()  # every NaN point kept
    assert np.isnan(history.history["loss"][0]) and np.isnan(plot.history["loss_epoch"].values).all()
    np.testing.assert_array_equal(plot.history["learning_rate"].values, np.full(8, np.float32(0.1)))


def test_rejects_a_non_plot():
    with pytest.raises(TypeError, match="plot must be a LossPlot"):
        LossPlotCallback(plot="loss")
