"""End to end: hovering a ``watch()`` heatmap in JupyterLab + headless Chromium names the layer.

A cell trains a small MLP under ``plot.watch(model, opt, every=1)``, prints what the watcher
measured, then keeps running ([*]). While it runs, the pointer goes to the middle of one cell of
the gradient-norm heatmap: the readout must give that cell's layer name (not a row index), its
step and its value (as measured, to the 4 digits shown), and vanish when the pointer leaves.
Screenshot: ``test-artifacts/browser/watch-hover.png``.
"""

from __future__ import annotations

import json
import re

import pytest
from browser_harness import NotebookPage, opened_notebook, poll

STEPS = 30

SETUP_CELL = """\
import torch
from torch import nn
from lossviz_widget import LossPlot
torch.manual_seed(0)
model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 2))
opt = torch.optim.SGD(model.parameters(), lr=0.05)
plot = LossPlot(title="watch hover test")
watcher = plot.watch(model, opt, every=1)
plot"""

TRAIN_CELL = f"""\
import json, time
x, y = torch.randn(64, 8), torch.randint(0, 2, (64,))
for step in range({STEPS}):
    opt.zero_grad()
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    plot.log(loss=loss, step=step)
plot.flush()
plot.recorder.wait_idle(10)  # the maps redraw at most once a second: the last redraw is done then
print("STATE", json.dumps({{"grad_norm": watcher.series.matrix("grad_norm").tolist()}}))
time.sleep(40)  # still running while the browser hovers
print("TRAINING DONE")"""

TIP_JS = """() => {
  const tips = [...document.querySelectorAll('.lossviz-heat-tip')].filter(t => t.style.display === 'block');
  if (tips.length !== 1) return null;
  const text = (cls) => tips[0].querySelector(cls).textContent;
  return {layer: text('.lossviz-heat-layer'), step: text('.lossviz-heat-step'), value: text('.lossviz-heat-value')};
}"""


@pytest.mark.browser
@pytest.mark.timeout(180)
def test_hovering_the_heatmap_shows_layer_step_and_value(request: pytest.FixtureRequest) -> None:
    nb: NotebookPage
    with opened_notebook(request, "watch_hover.ipynb", [SETUP_CELL, TRAIN_CELL]) as nb:
        hover_two_cells(nb)


def hover_two_cells(nb: NotebookPage) -> None:
    """Run the notebook, hover two cells of the gradient-norm map, then leave it."""
    nb.run_all_cells()
    out = nb.wait_output_text(1, "STATE", timeout=90)
    measured = json.loads(re.search(r"STATE (.*)", out).group(1))["grad_norm"]  # steps x layers
    assert len(measured) == STEPS and len(measured[0]) == 3
    grad_map = nb.cell(0).locator(".lossviz-watch-map").filter(
        has=nb.page.locator("text.mainheading", has_text="gradient norm"))
    area = grad_map.locator("rect.plotarea_events")
    poll(lambda: area.count() == 1 and area.bounding_box(), 30, "no gradient-norm heatmap drawn")
    box = area.bounding_box()
    assert box
    # the middle of the cell of step 10 (columns: steps 0..29) and the second layer (rows: "0", "2", "4")
    col, row = 10, 1
    x = box["x"] + (col + 0.5) / STEPS * box["width"]
    y = box["y"] + (row + 0.5) / 3 * box["height"]
    nb.page.mouse.move(x - 4, y)
    nb.page.mouse.move(x, y)
    tip = poll(lambda: nb.page.evaluate(TIP_JS), 10, "no heatmap readout shown")
    assert nb.is_executing(1), "the cell ended before the readout was read: make it sleep longer"
    nb.screenshot("watch-hover")
    assert tip["layer"] == "layer: 2", tip  # model[2], the second Linear: its name, not a row index
    assert tip["step"] == "step: 10", tip
    label, value = tip["value"].split(": ")
    assert label == "gradient norm"
    assert float(value) == pytest.approx(measured[col][row], rel=1e-3), (tip, measured[col][row])
    # the first layer, a few cells on
    nb.page.mouse.move(box["x"] + 20.5 / STEPS * box["width"], box["y"] + 0.5 / 3 * box["height"])
    tip = poll(lambda: (t := nb.page.evaluate(TIP_JS)) and t["step"] == "step: 20" and t, 10,
               "the readout did not follow the pointer")
    assert tip["layer"] == "layer: 0" and float(tip["value"].split(": ")[1]) == pytest.approx(measured[20][0], rel=1e-3)
    nb.page.mouse.move(box["x"] - 30, box["y"] - 30)  # out of the map: the readout goes
    poll(lambda: nb.page.evaluate(TIP_JS) is None, 10, "the readout stayed after the pointer left")
