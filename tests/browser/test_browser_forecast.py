"""End to end: a live forecast in JupyterLab + headless Chromium while a real model trains.

The training cell fits softmax regression to scikit-learn's digits with mini-batch SGD (NumPy,
a few seconds of CPU, slowed to ~25 s so the plot is watched live) and logs its loss each step
into ``LossPlot(forecast=True)`` with a horizon and a target. While the cell is still running
([*]) the readout must show the forecast (final value, 80% interval, the target sentence) and
the loss panel a dashed forecast line and a shaded band reaching past the data. Screenshots of
the widget are taken as the forecast converges (``forecast-live-1..4.png`` in
``test-artifacts/browser/``).
"""

from __future__ import annotations

import pytest
from browser_harness import NotebookPage, opened_notebook, poll

pytest.importorskip("sklearn")
pytest.importorskip("scipy")

SETUP_CELL = """\
from lossviz_widget import LossPlot
plot = LossPlot(title="forecast test", forecast=True, smoothing=0.6)
plot.forecast_to(steps=1200, target=0.3)
plot"""

TRAIN_CELL = """\
import time
import numpy as np
from sklearn.datasets import load_digits
x, y = load_digits(return_X_y=True)
x = x / 16.0
rng = np.random.default_rng(0)
w = np.zeros((64, 10))
b = np.zeros(10)
for step in range(1, 1201):
    idx = rng.integers(0, len(x), 32)
    logits = x[idx] @ w + b
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    loss = -np.log(p[np.arange(32), y[idx]]).mean()
    p[np.arange(32), y[idx]] -= 1.0
    w -= 0.05 * x[idx].T @ p / 32
    b -= 0.05 * p.mean(axis=0)
    plot.log(loss=loss, step=step)
    time.sleep(0.02)
print("TRAINING DONE")"""

# The forecast band is a bqplot Lines mark with fill="between": its path.area has a non-empty
# outline. The forecast line's legend label names it.
BAND_JS = """(panel) => {
  const areas = [...panel.querySelectorAll('path.area')].filter((p) => (p.getAttribute('d') || '').length > 20);
  const labels = [...panel.querySelectorAll('text.legendtext')].map((t) => t.textContent);
  return {areas: areas.length, labels: labels};
}"""


@pytest.mark.browser
@pytest.mark.timeout(180)
def test_forecast_band_and_readout_while_training(request: pytest.FixtureRequest) -> None:
    with opened_notebook(request, "forecast.ipynb", [SETUP_CELL, TRAIN_CELL]) as nb:
        _check(nb)


def _check(nb: NotebookPage) -> None:
    widget = nb.start_training()
    cell = widget.locator("td.lossviz-forecast")
    poll(lambda: (cell.count() == 1 and "80%" in cell.inner_text()) or not nb.is_executing(1), 60,
         "no forecast in the readout")
    assert nb.is_executing(1), "the forecast only appeared after the training cell finished"
    text = cell.inner_text()
    assert "at step 1,200" in text and ("reach 0.3" in text or "reaches 0.3" in text), text
    panel = widget.locator(".lossviz-panel").first
    drawn = poll(lambda: (lambda d: d if d["areas"] >= 1 else None)(panel.evaluate(BAND_JS)), 20,
                 "no forecast band drawn")
    assert "loss forecast" in drawn["labels"], drawn
    shots, seen = 0, set()
    while nb.is_executing(1) and shots < 4:  # the forecast converging, as the run proceeds
        now = cell.inner_text()
        if now not in seen:
            seen.add(now)
            shots += 1
            nb.screenshot(f"forecast-live-{shots}", widget)
        poll(lambda shown=now: cell.inner_text() != shown or not nb.is_executing(1), 30, "the forecast never updated")
    assert shots >= 2, "the forecast did not change while training"
    nb.wait_cell_done(1, timeout=90)
    assert not nb.error_outputs(), nb.error_outputs()
    nb.screenshot("forecast-final-widget", widget)
