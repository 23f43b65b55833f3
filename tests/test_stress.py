"""Stress (not timed): 1e7 points over 4 metrics from a background thread while the main thread
changes smoothing and log scale: history exact, no exception, every frame within max_points."""

import threading

import numpy as np
import pytest
from drawn import decode_lines, layers

from lossviz_widget import LossPlot

N_STEPS = 2_500_000  # x 4 metrics = 1e7 points
METRICS = ("loss", "val_loss", "acc", "lr")


def expected(name: str, i: np.ndarray) -> np.ndarray:
    base = {"loss": 1.0, "val_loss": 2.0, "acc": 3.0, "lr": 4.0}[name]
    return base + (i % 1000) / 1000.0


@pytest.mark.timeout(600)
def test_ten_million_points_with_settings_changing_underneath(as_in_a_kernel):
    plot = LossPlot(max_points=1000, fps=20)  # frames render on the background thread, as in a kernel
    longest: list[int] = []
    watched: set[int] = set()
    errors: list[BaseException] = []

    def record(change):  # the longest line of the panel's frame, as its canvas decodes it
        packed, _ = decode_lines(change["new"])
        if packed:
            longest.append(max(len(x) for x, _ in packed))

    def train():
        try:
            for i in range(N_STEPS):
                k = i % 1000 / 1000.0
                plot.log(loss=1.0 + k, val_loss=2.0 + k, acc=3.0 + k, lr=4.0 + k, step=i)
        except BaseException as exc:  # surfaced by the main thread below
            errors.append(exc)

    worker = threading.Thread(target=train)
    worker.start()
    settings = [dict(smoothing=0.9), dict(log_y=True), dict(smoothing=0.0), dict(log_y=False),
                dict(ignore_outliers=True), dict(smoothing=0.6, x_axis="relative_time"), dict(x_axis="step")]
    turn = 0
    while worker.is_alive():
        for name, value in settings[turn % len(settings)].items():
            setattr(plot, name, value)
        turn += 1
        for layer in layers(plot).values():  # watch every line's size as frames arrive
            if id(layer) not in watched:
                watched.add(id(layer))
                layer.observe(record, names=["lines"])
        worker.join(timeout=0.3)
    assert not errors, errors
    plot.flush()
    assert plot.recorder.errors() == []  # no frame failed in the render thread
    steps = np.arange(N_STEPS)
    for name in METRICS:
        h = plot.history[name]
        np.testing.assert_array_equal(h.steps, steps)
        np.testing.assert_array_equal(h.values, expected(name, steps))
        assert np.all(np.diff(h.wall_time) >= 0)
    assert turn >= 5 and len(longest) >= 20
    assert max(longest) <= 1000  # no frame ever exceeded max_points per line
    plot.close()
