"""End to end: diagnostics findings live in headless Chromium.

* JupyterLab: a training cell logs a training loss that keeps falling and a validation loss that
  turns up after step 100. While the cell is still running ([*]) the widget's findings area must
  show the overfitting message (plain text, with its suggested action) and the loss panel must
  carry a finding marker.
* Jupyter Notebook 7 in the dark theme: a loss that stays flat for 3,000 steps and then learns.
  While it is flat a current "not learning" warning shows; once it learns, the same row is
  listed after the current ones, muted (still readable on the dark background), saying until
  which step it held and why it ended, and its marker turns grey.

Screenshots go to ``test-artifacts/browser/``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from browser_harness import (
    DARK_THEME,
    LAB_SETTINGS,
    NotebookPage,
    low_contrast,
    open_in_notebook7,
    opened_notebook,
    own_server_page,
    poll,
    require_chromium,
    running_jupyterlab,
    write_notebook,
)

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


# Flat (with 1% noise) until step 3,000, then a 100x fall: a slow start that does learn. The
# cell waits for the file ``go`` (the test writes it once it has seen the early warning).
SLOW_START_CELL = """\
import os, time
import numpy as np
s = np.arange(160_000, dtype=float)
v = (0.02 + 2 * np.exp(-np.maximum(s - 3000, 0) / 8000)) * (1 + 0.01 * np.random.default_rng(8).normal(size=len(s)))
for a in range(0, 3000, 100):
    plot.extend("loss", s[a:a + 100], v[a:a + 100])
    time.sleep(0.02)
t0 = time.monotonic()
while not os.path.exists("go") and time.monotonic() - t0 < 60:
    time.sleep(0.05)
for a in range(3000, len(s), 4000):
    plot.extend("loss", s[a:a + 4000], v[a:a + 4000])
    time.sleep(0.05)
print("TRAINING DONE")"""

# The colours of the finding markers (bqplot draws each Scatter point as a path.dot) on a panel.
MARKER_COLORS_JS = """(panel) => [...panel.querySelectorAll('path.dot')]
  .filter((p) => p.getBoundingClientRect().width > 0 && getComputedStyle(p).visibility !== 'hidden')
  .map((p) => getComputedStyle(p).fill)"""


@pytest.mark.browser
@pytest.mark.timeout(300)
def test_an_early_warning_that_later_points_contradict_ends_muted_in_notebook7_dark(
        request: pytest.FixtureRequest) -> None:
    require_chromium()
    browser = request.getfixturevalue("chromium_browser")
    with running_jupyterlab(app="notebook", lab_settings={**LAB_SETTINGS, DARK_THEME[0]: DARK_THEME[1]}) as server:
        nb = own_server_page(browser, server)
        try:
            write_notebook(server.root_dir / "ended.ipynb", [SETUP_CELL, SLOW_START_CELL])
            open_in_notebook7(nb, "ended.ipynb")
            assert nb.page.evaluate("() => document.body.dataset.jpThemeLight") == "false"  # dark theme on
            _check_ended(nb, server.root_dir / "go")
        finally:
            nb.page.context.close()


def _check_ended(nb: NotebookPage, go: Path) -> None:
    widget = nb.start_training()
    warning = widget.locator('li.lossviz-finding[data-code="not_learning"]')
    poll(lambda: warning.count() == 1, 60, "no 'not learning' warning while the loss was flat")
    assert "lossviz-finding-ended" not in (warning.get_attribute("class") or "")
    assert "not learning" in warning.inner_text() and "Until step" not in warning.inner_text()
    panel = widget.locator(".lossviz-panel").first
    poll(lambda: len(panel.evaluate(MARKER_COLORS_JS)) >= 1, 20, "no finding marker while the loss was flat")
    live_colors = set(panel.evaluate(MARKER_COLORS_JS))
    nb.screenshot("diagnostics-ended-notebook7-dark-before", widget)
    go.write_text("go")

    nb.wait_cell_done(1, timeout=120)
    poll(lambda: "lossviz-finding-ended" in (warning.get_attribute("class") or ""), 30,
         lambda: f"the early warning never ended: {warning.inner_text()!r}")
    text = warning.inner_text()
    assert "ended warning" in text and "Until step" in text and "it started learning" in text, text
    ended_at = float(warning.get_attribute("data-ended") or "nan")
    assert 3000 < ended_at < 8000, ended_at
    rows = widget.locator("li.lossviz-finding")
    ended = [rows.nth(i).get_attribute("class") or "" for i in range(rows.count())]
    first_ended = next(i for i, c in enumerate(ended) if "lossviz-finding-ended" in c)
    assert all("lossviz-finding-ended" in c for c in ended[first_ended:]), ended  # current rows first
    # muted, yet readable on the dark background; greyer than a current row's text
    bad, n = low_contrast(nb, "[document.querySelector('.lossviz-finding-ended')]")
    assert n >= 2 and not bad, bad
    colors = widget.evaluate("""(w) => [...w.querySelectorAll('li.lossviz-finding')]
        .map((li) => [li.className, getComputedStyle(li).color])""")
    current = [c for k, c in colors if "ended" not in k]
    assert current and all(c not in current for k, c in colors if "ended" in k), colors
    poll(lambda: set(panel.evaluate(MARKER_COLORS_JS)) - live_colors, 20,
         lambda: f"no grey marker for the ended warning: {panel.evaluate(MARKER_COLORS_JS)}")
    assert not nb.error_outputs(), nb.error_outputs()
    nb.screenshot("diagnostics-ended-notebook7-dark-after", widget)
