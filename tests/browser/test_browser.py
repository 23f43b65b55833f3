"""End to end: a LossPlot in real JupyterLab + headless Chromium, updated live by a training cell.

What a person would see is read from the page: the loss curve grows while the training cell is
still running, the last frame shows every logged point, and the cell's prints and tqdm bar stay
in the output. With both renderers: ``canvas`` (the default; how far the line is drawn is read with
the hover readout at the right edge of the plot, which reads the points the canvas draws, and the
line's colour in the panel's pixels) and ``svg`` (the path's vertices in the DOM, see
``browser_harness`` for how bqplot draws lines). After the cell the kernel says what it drew
(``CANVAS_SENT_CODE``: ``tests/drawn.py``). Screenshots go to ``test-artifacts/browser/``.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Locator

# The fixtures (notebook_page, ...) come from conftest.py, shared by all browser test modules.
from browser_harness import (
    CANVAS_SENT_CODE,
    NotebookPage,
    check_kernel_process,
    last_drawn_step,
    opened_notebook,
    painted,
    poll,
)

N_STEPS = 400
VAL_EVERY = 50

SETUP_CELL = """\
from lossviz_widget import LossPlot
plot = LossPlot(title="browser test", smoothing=0.0, renderer=RENDERER)
plot"""

# ~8 s: 400 steps x 20 ms. val_loss at steps 0, 50, ..., 350 (8 points).
TRAIN_CELL = f"""\
import math, time
from tqdm.auto import tqdm

N = {N_STEPS}
for i in tqdm(range(N), desc="training"):
    time.sleep(0.02)
    plot.log(loss=1.5 * math.exp(-i / 120) + 0.1 + 0.03 * math.sin(i / 3), step=i)
    if i % {VAL_EVERY} == 0:
        plot.log(val_loss=1.6 * math.exp(-i / 150) + 0.15, step=i)
    if i % 100 == 99:
        print("epoch", i // 100, "done", flush=True)
print("TRAINING DONE")"""

DRAWN_CELL = CANVAS_SENT_CODE + """\
import json
plot.flush()
print("DRAWN", json.dumps(drawn_points(plot, "loss")))"""
LOSS_COLOR = "#1f77b4"  # the first metric's colour (one run: colours by metric)


def _loss_panel(nb: NotebookPage) -> Locator:
    """The LossPlot panel whose figure title is ``loss``."""
    return nb.cell(0).locator(".lossviz .lossviz-panel").filter(
        has=nb.page.locator("text.mainheading", has_text=re.compile(r"^\s*loss\b"))
    )


def _readout_row(nb: NotebookPage, metric: str) -> dict[str, str | None]:
    row = nb.cell(0).locator(f'.lossviz .lossviz-readout tr[data-metric="{metric}"]')
    if not row.count():
        return {}
    return {k: row.first.get_attribute(f"data-{k}") for k in ("step", "count")}


@pytest.mark.browser
@pytest.mark.timeout(150)
@pytest.mark.parametrize("renderer", ["canvas", "svg"])
def test_loss_plot_updates_live_while_cell_runs(request: pytest.FixtureRequest, renderer: str) -> None:
    # opened_notebook checks for Chromium in the test body, so a missing browser is a FAILED test with
    # the install hint (a failing fixture would be reported as a setup ERROR); never a skip.
    name = "live_loss" if renderer == "canvas" else f"live_loss_{renderer}"
    setup = SETUP_CELL.replace("RENDERER", repr(renderer))
    with opened_notebook(request, f"{name}.ipynb", [setup, TRAIN_CELL, DRAWN_CELL]) as nb:  # a workspace of its own
        _check_live(nb, renderer, name)


def _check_live(nb: NotebookPage, renderer: str, name: str) -> None:
    t0 = time.monotonic()
    check_kernel_process(nb.server)  # the kernel is this venv's python (lossviz_widget importable)
    nb.run_all_cells()

    # Cell 1 renders the widget (header, controls, readout) without errors.
    widget = nb.cell(0).locator(".lossviz")
    widget.wait_for(state="visible", timeout=30_000)
    assert "browser test" in widget.locator(".lossviz-title").inner_text()
    poll(lambda: nb.is_executing(1), 30, "training cell never started executing ([*])", interval=0.05)

    # While cell 2 runs: sample how far the loss line is drawn; only samples taken with the
    # cell executing and "TRAINING DONE" absent both before and after the read count.
    def running() -> bool:
        return nb.is_executing(1) and "TRAINING DONE" not in nb.output_text(1)

    def drawn(panel: Locator) -> int | None:
        """Points of the loss line drawn: the SVG path's vertices, or on the canvas the steps up to the
        last one the hover readout finds (one point per step here)."""
        if renderer == "svg":
            visible = [c["vertices"] for c in nb.line_vertices(panel, "loss") if not c["hidden"]]
            return visible[0] if len(visible) == 1 else None
        step = last_drawn_step(nb.page, panel, "loss")
        return None if step is None else step + 1

    samples: list[tuple[float, int]] = []  # (seconds since run, points drawn)
    mid_shot = False
    while running():
        panel = _loss_panel(nb)
        points = drawn(panel.first) if panel.count() else None
        if points is not None and running():
            samples.append((round(time.monotonic() - t0, 2), points))
            increases = sum(b[1] > a[1] for a, b in itertools.pairwise(samples))
            if increases >= 2 and not mid_shot and 50 < points < N_STEPS:
                nb.screenshot(f"{name}-mid-training")
                nb.screenshot(f"{name}-mid-training-widget", widget)
                mid_shot = True
        time.sleep(0.25)

    counts = [v for _, v in samples]
    (nb.artifacts / f"{name}-samples.json").write_text(json.dumps({"t_s_points": samples}))
    increases = sum(b > a for a, b in itertools.pairwise(counts))
    assert increases >= 2, f"loss line did not grow at least twice while the cell ran; samples={samples}"
    assert counts == sorted(counts), f"loss line lost points during training: {samples}"
    assert mid_shot, f"no mid-training screenshot taken; samples={samples}"

    # After the cell finishes: the final frame holds the last logged step.
    nb.wait_cell_done(1, timeout=60)
    out = nb.wait_output_text(1, "TRAINING DONE", timeout=10)
    expected_loss = {"step": str(N_STEPS - 1), "count": str(N_STEPS)}
    poll(lambda: _readout_row(nb, "loss") == expected_loss, 15,
         lambda: f"loss readout never reached {expected_loss}: {_readout_row(nb, 'loss')}")
    n_val = len(range(0, N_STEPS, VAL_EVERY))
    assert _readout_row(nb, "val_loss").get("count") == str(n_val), _readout_row(nb, "val_loss")

    panel = _loss_panel(nb)
    assert panel.count() == 1, "expected exactly one panel titled 'loss'"
    poll(lambda: drawn(panel) == N_STEPS, 10, lambda: f"loss line has {drawn(panel)} points drawn, expected {N_STEPS}")
    if renderer == "svg":
        assert nb.visible_line_vertices(panel, "val_loss") == n_val, nb.line_vertices(panel, "val_loss")
    assert painted(panel, LOSS_COLOR) > 500, "the loss line's colour is not on screen"
    nb.wait_cell_done(2, timeout=60)
    said = re.search(r"DRAWN (\{.*\})", nb.output_text(2))
    assert said and json.loads(said.group(1)) == {"loss": N_STEPS, "val_loss": n_val}, nb.output_text(2)
    box = nb.cell(0).locator(".lossviz .lossviz-panel-box").filter(
        has=nb.page.locator("text.mainheading", has_text=re.compile(r"^\s*loss\b")))
    legend = box.locator(".lossviz-legend-item").all_text_contents()
    assert {"loss", "val_loss"} <= {t.strip() for t in legend}, legend

    # Nothing was erased from the training cell's output: prints and the tqdm bar remain.
    for epoch in range(N_STEPS // 100):
        assert f"epoch {epoch} done" in out, out
    assert re.search(rf"training:\s*100%.*{N_STEPS}/{N_STEPS}", out, re.S), f"tqdm bar missing/incomplete:\n{out}"
    assert not nb.error_outputs(), nb.error_outputs()
    status = widget.locator(".lossviz-status").inner_text()
    assert "error" not in status.lower(), status

    nb.screenshot(f"{name}-final")
    nb.screenshot(f"{name}-final-widget", widget)
    nb.screenshot(f"{name}-final-output", nb.cell(1).locator(".jp-OutputArea"))
