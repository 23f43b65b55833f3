"""``LossPlot.from_history`` (results that already exist) and the lazy imports of the integrations."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lossviz_widget import LossPlot
from lossviz_widget.integrations.history import log_history

ROOT = Path(__file__).resolve().parents[2]
FRAMEWORKS = ["keras", "torch", "lightning", "pytorch_lightning", "transformers", "sklearn", "xgboost",
              "lightgbm", "tensorflow", "jax"]


def test_keras_history_object():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras

    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    history = model.fit(x, x[:, :1], validation_split=0.25, epochs=4, initial_epoch=1, verbose=0)
    plot = LossPlot.from_history(history, title="from fit")
    assert plot.title == "from fit"
    assert set(plot.history) == set(history.history) == {"loss", "mae", "val_loss", "val_mae"}
    for name, values in history.history.items():
        np.testing.assert_array_equal(plot.history[name].steps, [1, 2, 3])  # History.epoch
        np.testing.assert_array_equal(plot.history[name].values, values)
    plot2 = LossPlot.from_history(history.history)  # the dict: steps 0, 1, ...
    np.testing.assert_array_equal(plot2.history["val_mae"].steps, [0, 1, 2])


def test_dict_of_lists_keeps_nan_and_inf():
    plot = LossPlot.from_history({"loss": [1.0, float("nan"), np.inf], "acc": np.array([0.1, 0.2, 0.3])})
    np.testing.assert_array_equal(plot.history["loss"].values, [1.0, np.nan, np.inf])
    np.testing.assert_array_equal(plot.history["acc"].steps, [0, 1, 2])


@pytest.mark.parametrize("history, error, match", [
    ({}, ValueError, "history is empty"),
    ({"loss": [1.0, 0.5], "val_loss": [0.9]}, ValueError, r"'loss' has 2, 'val_loss' has 1"),
    ({"loss": [1.0, "0.5"]}, TypeError, r"history\['loss'\]\[1\] \(epoch 1\)"),
    ({"loss": [1.0, None]}, TypeError, r"history\['loss'\]\[1\]"),
    ({"loss": [[1.0, 2.0]]}, TypeError, r"history\['loss'\]\[0\]"),
    ({"loss": "0.5"}, TypeError, r"history\['loss'\]: expected a list"),
    ({"loss": 0.5}, TypeError, r"history\['loss'\]: expected a list"),
    ({3: [0.5]}, TypeError, "metric names must be str"),
    ([0.5, 0.4], TypeError, "keras.callbacks.History or a mapping"),
])
def test_bad_input_is_named_and_logs_nothing(history, error, match):
    plot = LossPlot()
    plot.log(loss=2.0, step=0)
    with pytest.raises(error, match=match):
        log_history(history, plot)
    assert list(plot.history) == ["loss"] and list(plot.history["loss"].values) == [2.0]
    with pytest.raises(error, match=match):
        LossPlot.from_history(history)


def test_log_history_into_an_existing_plot():
    plot = LossPlot()
    assert log_history({"loss": [0.5, 0.25]}, plot) is plot
    np.testing.assert_array_equal(plot.history["loss"].values, [0.5, 0.25])


def test_importing_the_package_imports_no_framework():
    code = (
        "import sys, json, lossviz_widget, lossviz_widget.integrations\n"
        "from lossviz_widget.integrations import history, loop\n"
        "lossviz_widget.LossPlot.from_history({'loss': [1.0]})\n"
        f"print(json.dumps(sorted(m for m in {FRAMEWORKS!r} if m in sys.modules)))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
