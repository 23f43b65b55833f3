"""End to end: several runs in one LossPlot, in real JupyterLab + headless Chromium.

Three runs (one named with HTML) are logged live by a training cell. A person sees one line
per run growing while the cell runs, each run in its own colour, the run names shown as
text (not markup) in the legend and the runs table, and a run's line disappearing when its
"show" box is unticked. With both renderers: ``canvas`` (the default: how far each run's line is
drawn is read with the hover readout at the right edge of the plot, the colours from the panel's
pixels) and ``svg`` (also the SVG paths' vertices and strokes). After training the kernel says what
it drew (``CANVAS_SENT_CODE``). Screenshots go to ``test-artifacts/browser/``.
"""

from __future__ import annotations

import json
import re

import pytest
from browser_harness import CANVAS_SENT_CODE, NotebookPage, last_drawn_step, opened_notebook, painted, poll

from lossviz_widget._core.frame import PALETTE

N_STEPS = 150
RUNS = ("a<b>", "lr=0.1", "c&d")

SETUP_CELL = """\
if "plot" not in globals():  # re-running all cells keeps the plot (and what was hidden)
    from lossviz_widget import LossPlot
    plot = LossPlot(title="runs test", smoothing=0.0, renderer=RENDERER)
plot"""

TRAIN_CELL = f"""\
import math, time
for i in range({N_STEPS} if not plot.runs else 0):
    time.sleep(0.03)
    for k, run in enumerate({RUNS!r}):
        plot.log(loss=(1 + k) * math.exp(-i / 60) + 0.1, step=i, run=run)
print("TRAINING DONE")"""

STATE_CELL = CANVAS_SENT_CODE + """\
import json
plot.flush()
print("HIDDEN", sorted(plot.hidden_runs))
print("DRAWN", json.dumps(drawn_points(plot, "loss")))"""

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
@pytest.mark.parametrize("renderer", ["canvas", "svg"])
def test_runs_live_colours_escaping_and_hiding(request: pytest.FixtureRequest, renderer: str) -> None:
    setup = SETUP_CELL.replace("RENDERER", repr(renderer))
    name = "runs" if renderer == "canvas" else f"runs_{renderer}"
    with opened_notebook(request, f"{name}.ipynb", [setup, TRAIN_CELL, STATE_CELL]) as nb:
        _check_runs(nb, renderer, name)


def _drawn(nb: NotebookPage, panel, run: str, renderer: str) -> int:
    """Points of a run's loss line drawn (0: none): the SVG path's vertices, or on the canvas the steps
    up to the last one the hover readout finds (one point per step here)."""
    if renderer == "svg":
        curves = [c for c in NotebookPage.line_vertices(panel, _label(run)) if not c["hidden"]]
        return int(curves[0]["vertices"]) if len(curves) == 1 else 0
    step = last_drawn_step(nb.page, panel, _label(run))
    return 0 if step is None else step + 1


def _check_runs(nb: NotebookPage, renderer: str, name: str) -> None:
    nb.run_all_cells()
    widget = nb.cell(0).locator(".lossviz")
    widget.wait_for(state="visible", timeout=30_000)
    poll(lambda: nb.is_executing(1), 30, "training cell never started executing ([*])", interval=0.05)
    panel = widget.locator(".lossviz-panel").first

    # While the cell runs: all three runs' lines are drawn and grow.
    samples: list[tuple[int, ...]] = []
    while nb.is_executing(1) and "TRAINING DONE" not in nb.output_text(1):
        counts = tuple(_drawn(nb, panel, r, renderer) for r in RUNS)
        if nb.is_executing(1) and all(counts):
            samples.append(counts)
        nb.page.wait_for_timeout(250)
    assert len(samples) >= 2 and samples[-1] > samples[0], f"run lines did not grow while the cell ran: {samples}"
    assert any(max(s) < N_STEPS for s in samples), samples

    nb.wait_cell_done(1, timeout=60)
    for run in RUNS:
        poll(lambda run=run: _drawn(nb, panel, run, renderer) == N_STEPS, 20,
             lambda run=run: f"{run}: {_drawn(nb, panel, run, renderer)} points drawn")
    nb.wait_cell_done(2, timeout=60)
    said = re.search(r"DRAWN (\{.*\})", nb.output_text(2))
    assert said and json.loads(said.group(1)) == {_label(r): N_STEPS for r in RUNS}, nb.output_text(2)
    colours = {run: painted(panel, PALETTE[k]) for k, run in enumerate(RUNS)}  # one colour per run, on screen
    assert all(n > 200 for n in colours.values()), colours
    if renderer == "svg":
        strokes = {run: panel.evaluate(STROKES_JS, _label(run)) for run in RUNS}
        assert all(len(s) == 1 for s in strokes.values()), strokes
        assert len({s[0] for s in strokes.values()}) == len(RUNS), f"runs share a colour: {strokes}"

    # Names are text, not markup: legend, runs table.
    items = widget.locator(".lossviz-panel-box").first.locator(".lossviz-legend-item")
    legend = {t.strip() for t in items.all_text_contents()}
    assert {_label(r) for r in RUNS} <= legend, legend
    table = widget.locator(".lossviz-runs")
    rows = table.locator(".lossviz-run")
    assert rows.count() == len(RUNS), rows.all_inner_texts()
    text = table.inner_text()
    assert "a<b>" in text and "c&d" in text, text
    names = [n.strip() for n in table.locator("[data-run] > b").all_text_contents()]
    assert names == list(RUNS), f"run names not shown as text: {names}"
    nb.screenshot(f"{name}-final-widget", widget)

    # Untick "show" for one run: its line goes, the others stay.
    row = rows.filter(has_text=re.compile(r"lr=0\.1"))
    row.locator("input[type=checkbox]").uncheck()
    poll(lambda: _drawn(nb, panel, "lr=0.1", renderer) == 0, 20,
         lambda: f"hidden run still drawn: {_drawn(nb, panel, 'lr=0.1', renderer)} points")
    assert _drawn(nb, panel, "a<b>", renderer) == N_STEPS and _drawn(nb, panel, "c&d", renderer) == N_STEPS
    assert painted(panel, PALETTE[1]) < 20, "the hidden run's colour is still on screen"
    nb.run_all_cells()  # the plot and its runs are kept; the last cell prints the state
    nb.wait_cell_done(2, timeout=90)
    assert "HIDDEN ['lr=0.1']" in nb.output_text(2), nb.output_text(2)
    assert not nb.error_outputs(), nb.error_outputs()
    nb.screenshot(f"{name}-one-hidden-widget", widget)
