"""End to end: a diagnostics finding appears live in JupyterLab + headless Chromium.

A training cell logs a training loss that keeps falling and a validation loss that turns up
after step 100. While the cell is still running ([*]) the widget's findings area must show
the overfitting message (plain text, with its suggested action) and the loss panel must
carry a finding marker. Screenshots go to ``test-artifacts/browser/``.
"""

from __future__ import annotations

import pytest
from browser_harness import NotebookPage, opened_notebook, poll

SETUP_CELL = """\
from lossviz_widget import LossPlot
plot = LossPlot(title="diagnostics test", smoothing=0.0)
plot"""

TRAIN_CELL = """\
import math, time
for i in range(400):
    time.sleep(0.02)
    plot.log(loss=math.exp(-i / 80) + 0.05, step=i)
    if i % 10 == 0:
        plot.log(val_loss=math.exp(-i / 80) + 0.1 + max(0, i - 100) * 0.002, step=i)
print("TRAINING DONE")"""

# bqplot draws each Scatter point as a path.dot; a hidden mark (the non-finite markers here,
# with no NaN logged) is not displayed. The finding markers are the only visible dots.
MARKERS_JS = """(panel) => [...panel.querySelectorAll('path.dot')]
  .filter((p) => p.getBoundingClientRect().width > 0 && getComputedStyle(p).visibility !== 'hidden').length"""


@pytest.mark.browser
@pytest.mark.timeout(150)
def test_overfitting_finding_shows_while_training(request: pytest.FixtureRequest) -> None:
    with opened_notebook(request, "diagnostics.ipynb", [SETUP_CELL, TRAIN_CELL]) as nb:
        _check(nb)


def _check(nb: NotebookPage) -> None:
    widget = nb.start_training()
    finding = widget.locator('li.lossviz-finding[data-code="overfitting"]')
    poll(lambda: finding.count() == 1 or not nb.is_executing(1), 60, "no overfitting finding")
    assert nb.is_executing(1) and "TRAINING DONE" not in nb.output_text(1), \
        "the overfitting finding only appeared after the training cell finished"
    text = finding.inner_text()
    assert "overfitting" in text and "val_loss" in text and "early stopping" in text, text
    assert finding.get_attribute("data-metric") == "val_loss"
    nb.screenshot("diagnostics-live-widget", widget)

    nb.wait_cell_done(1, timeout=60)
    panel = widget.locator(".lossviz-panel").first
    poll(lambda: panel.evaluate(MARKERS_JS) >= 1, 20, "no finding marker drawn on the loss panel")
    assert finding.count() == 1, "the overfitting finding was reported more than once"
    assert not nb.error_outputs(), nb.error_outputs()
    nb.screenshot("diagnostics-final-widget", widget)
