"""A realistic run for the image and report tests, built only through the public API.

``LossPlot.log`` for 50,000 steps: ``loss`` and ``lr`` every step, ``acc`` every 10
steps, ``val_loss``/``val_acc`` every 1,000 steps (sparse: drawn with dots), with
NaN/+Inf/-Inf in ``loss`` (and so in ``val_loss``) and one huge spike for the
"ignore outliers" view. Frames come from ``LossPlot.frame()``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np

from lossviz_widget import LossPlot
from lossviz_widget._core.frame import Frame

N_STEPS = 50_000
VAL_EVERY = 1_000
ACC_EVERY = 10
NAN_STEPS = (12_000, 30_000, 30_001)
POSINF_STEP = 40_000
NEGINF_STEP = 45_000
SPIKE_STEP, SPIKE = 25_000, 400.0
FAMILIES = ["loss", "lr", "accuracy"]  # panel order: first appearance of each family
METRICS = ["loss", "lr", "acc", "val_loss", "val_acc"]


def run_values() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    s = np.arange(N_STEPS, dtype=np.float64)
    loss = 2.5 * np.exp(-s / 8000.0) + 0.3 + 0.12 * rng.standard_normal(N_STEPS)
    loss[list(NAN_STEPS)] = np.nan
    loss[POSINF_STEP] = np.inf
    loss[NEGINF_STEP] = -np.inf
    loss[SPIKE_STEP] = SPIKE
    acc = 1.0 - 0.9 * np.exp(-s / 10_000.0) - 0.04 * rng.random(N_STEPS)
    lr = 1e-3 * np.minimum(1.0, (s + 1) / 2000.0) * (0.5 * (1 + np.cos(np.pi * s / N_STEPS)) + 1e-3)
    return {"loss": loss, "acc": acc, "lr": lr}


def make_run_plot(title: str = "resnet18") -> LossPlot:
    """The 50k-step run (the caller closes the plot)."""
    v = run_values()
    loss, acc, lr = v["loss"], v["acc"], v["lr"]
    plot = LossPlot(title=title)
    for i in range(N_STEPS):
        if i % ACC_EVERY == 0:
            plot.log(loss=loss[i], lr=lr[i], acc=acc[i], step=i)
        else:
            plot.log(loss=loss[i], lr=lr[i], step=i)
        if i % VAL_EVERY == 0:
            plot.log(val_loss=loss[i] * 1.1 + 0.1, val_acc=acc[i] - 0.05, step=i)
    return plot


def small_plot(metrics: dict[str, list[float]], **view: object) -> LossPlot:
    """A short run: each metric's values at steps 0, 1, 2, ..."""
    plot = LossPlot(**view)
    for name, values in metrics.items():
        for i, value in enumerate(values):
            plot.log({name: value}, step=i)
    return plot


@contextlib.contextmanager
def view_settings(plot: LossPlot, **view: object) -> Iterator[LossPlot]:
    """Temporarily set view traits (log_y, ignore_outliers, x_axis, smoothing) on ``plot``."""
    old = {k: getattr(plot, k) for k in view}
    try:
        for k, v in view.items():
            setattr(plot, k, v)
        yield plot
    finally:
        for k, v in old.items():
            setattr(plot, k, v)


def frame_of(plot: LossPlot, **view: object) -> Frame:
    """``plot.frame()`` under the given view settings."""
    with view_settings(plot, **view):
        return plot.frame()
