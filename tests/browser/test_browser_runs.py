"""End to end: several runs in one LossPlot, in real JupyterLab + headless Chromium.

Three runs (one named with HTML) are logged live by a training cell. A person sees one line
per run growing while the cell runs, each run in its own colour, the run names shown as
text (not markup) in the legend and the runs table, and a run's line disappearing when its
"show" box is unticked. Screenshots go to ``test-artifacts/browser/``.
"""

from __future__ import annotations

import re

import pytest
from browser_harness import NotebookPage, opened_notebook, poll

N_STEPS = 150
RUNS = ("a<b>", "lr=0.1", "c&d")

SETUP_CELL = """\
if "plot" not in globals():  # re-running all cells keeps the plot (and what was hidden)
    from lossviz_widget import LossPlot
    plot = LossPlot(title="runs test", smoothing=0.0)
plot"""

TRAIN_CELL = f"""\
import math, time
for i in range({N_STEPS} if not plot.runs else 0):
    time.sleep(0.03)
    for k, run in enumerate({RUNS!r}):
        plot.log(loss=(1 + k) * math.exp(-i / 60) + 0.1, step=i, run=run)
print("TRAINING DONE")"""

STATE_CELL = 'print("HIDDEN", sorted(plot.hidden_runs))'

STROKES_JS = """(fig, label) => {
  const out = [];
  for (const curve of fig.querySelectorAll('g.curve')) {
    if (curve.closest('.g_legend')) continue;
    const l = curve.querySelector('text.curve_label');
    if (!l || l.textContent.trim() !== label) continue;
    const p = curve.querySelector('path.line');
    if (p && getComputedStyle(curve).display !== 'none') out.push(getComputedStyle(p).stroke);
  }
  return out;
}"""


def _label(run: str) -> str:
    return f"{run}: loss"


@pytest.mark.browser
@pytest.mark.timeout(180)
def test_runs_live_colours_escaping_and_hiding(request: pytest.FixtureRequest) -> None:
    with opened_notebook(request, "runs.ipynb", [SETUP_CELL, TRAIN_CELL, STATE_CELL]) as nb:
        _check_runs(nb)


def _vertices(panel, run: str) -> int:
    curves = [c for c in NotebookPage.line_vertices(panel, _label(run)) if not c["hidden"]]
    return int(curves[0]["vertices"]) if len(curves) == 1 else 0


def _check_runs(nb: NotebookPage) -> None:
    nb.run_all_cells()
    widget = nb.cell(0).locator(".lossviz")
    widget.wait_for(state="visible", timeout=30_000)
    poll(lambda: nb.is_executing(1), 30, "training cell never started executing ([*])", interval=0.05)
    panel = widget.locator(".lossviz-panel").first

    # While the cell runs: all three runs' lines are drawn and grow.
    samples: list[tuple[int, ...]] = []
    while nb.is_executing(1) and "TRAINING DONE" not in nb.output_text(1):
        counts = tuple(_vertices(panel, r) for r in RUNS)
        if nb.is_executing(1) and all(counts):
            samples.append(counts)
        nb.page.wait_for_timeout(250)
    assert len(samples) >= 2 and samples[-1] > samples[0], f"run lines did not grow while the cell ran: {samples}"
    assert any(max(s) < N_STEPS for s in samples), samples

    nb.wait_cell_done(1, timeout=60)
    for run in RUNS:
        poll(lambda run=run: _vertices(panel, run) == N_STEPS, 20,
             lambda run=run: f"{run}: {NotebookPage.line_vertices(panel, _label(run))}")
    strokes = {run: panel.evaluate(STROKES_JS, _label(run)) for run in RUNS}
    assert all(len(s) == 1 for s in strokes.values()), strokes
    assert len({s[0] for s in strokes.values()}) == len(RUNS), f"runs share a colour: {strokes}"

    # Names are text, not markup: legend, runs table.
    legend = {t.strip() for t in panel.locator(".g_legend text.legendtext").all_text_contents()}
    assert {_label(r) for r in RUNS} <= legend, legend
    table = widget.locator(".lossviz-runs")
    rows = table.locator(".lossviz-run")
    assert rows.count() == len(RUNS), rows.all_inner_texts()
    text = table.inner_text()
    assert "a<b>" in text and "c&d" in text, text
    names = [n.strip() for n in table.locator("[data-run] > b").all_text_contents()]
    assert names == list(RUNS), f"run names not shown as text: {names}"
    nb.screenshot("runs-final-widget", widget)

    # Untick "show" for one run: its line goes, the others stay.
    row = rows.filter(has_text=re.compile(r"lr=0\.1"))
    row.locator("input[type=checkbox]").uncheck()
    poll(lambda: _vertices(panel, "lr=0.1") == 0, 20,
         lambda: f"hidden run still drawn: {NotebookPage.line_vertices(panel, _label('lr=0.1'))}")
    assert _vertices(panel, "a<b>") == N_STEPS and _vertices(panel, "c&d") == N_STEPS
    nb.run_all_cells()  # the plot and its runs are kept; the last cell prints the state
    nb.wait_cell_done(2, timeout=90)
    assert "HIDDEN ['lr=0.1']" in nb.output_text(2), nb.output_text(2)
    assert not nb.error_outputs(), nb.error_outputs()
    nb.screenshot("runs-one-hidden-widget", widget)
