"""End to end: reading values off the curves in a real browser (issue 14: hover, legends, themes, front ends).

* JupyterLab, training cell running: hovering mid-plot shows a tooltip whose step and raw value
  are exactly what the cell logged there, a crosshair in every panel, and (after the cell) the
  smoothed value the kernel sent for that step; a legend click hides a line and a second shows it.
* 800 and 1900 px wide pages: legends never overlap the curves (bounding boxes), the control
  bar stays one row, panels go to one column when narrow; light-theme text contrast.
* JupyterLab Dark (own server): every text of the plot and of the tooltip has a contrast of at
  least 4.5:1 against what is behind it (WCAG AA), from computed styles.
* Jupyter Notebook 7 (own server, ``/notebooks/NAME``): the plot updates live while the cell runs,
  and hovering works there too.
* Controls during a running cell: when the kernel handles a click (ipykernel version), and at once
  while training runs in a thread.
* Voila: live while training runs in a thread (and hover works); after a blocking training cell
  the app shows the finished run.

Screenshots of every case go to ``test-artifacts/browser/hover-*.png``.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from browser_harness import (
    CANVAS_SENT_CODE,
    DARK_THEME,
    LAB_SETTINGS,
    TOOLTIP_JS,
    NotebookPage,
    artifacts_dir,
    free_port,
    last_drawn_step,
    low_contrast,
    new_context,
    open_in_notebook7,
    opened_notebook,
    own_server_page,
    painted,
    poll,
    require_chromium,
    running_jupyterlab,
    write_notebook,
)

if TYPE_CHECKING:
    from playwright.sync_api import Locator

N_STEPS = 700
LOSS = "1.5 * math.exp(-i / 150) + 0.1 + 0.03 * math.sin(i / 3)"
VAL_LOSS = "1.6 * math.exp(-i / 180) + 0.15"
ACC = "0.95 - 0.8 * math.exp(-i / 200)"

SETUP_CELL = """\
from lossviz_widget import LossPlot
plot = LossPlot(title="hover test", smoothing=0.6)
plot"""

TRAIN_CELL = f"""\
import math, time
for i in range({N_STEPS}):
    time.sleep(0.02)
    plot.log(loss={LOSS}, acc={ACC}, step=i)
    if i % 50 == 0:
        plot.log(val_loss={VAL_LOSS}, step=i)
print("TRAINING DONE")"""

# What the kernel sent for the loss panel's main line, and the x scale it set.
STATE_CELL = CANVAS_SENT_CODE + """\
import itertools
import json
main = drawn_lines(plot, "loss", "loss")[1]
scale = plot.figures["loss"].axes[0].scale
print("STATE", json.dumps({"min": scale.min, "max": scale.max, "x": main.x.tolist(),
                            "y": main.y.tolist(), "dtype": str(main.y.dtype)}))"""

CROSSHAIRS_JS = """() => [...document.querySelectorAll('.lossviz-crosshair')]
  .filter(c => c.style.display === 'block').map(c => { const r = c.getBoundingClientRect();
    return {left: r.left, top: r.top, bottom: r.bottom}; })"""

PLOT_AREAS_JS = """(root) => [...root.querySelectorAll('.lossviz-panel rect.plotarea_events')].map(r => {
  const b = r.getBoundingClientRect(); return {left: b.left, right: b.right, top: b.top, bottom: b.bottom}; })"""


def logged(expr: str, step: int) -> float:
    """The value the training cell logged at ``step`` (the same expression, evaluated here)."""
    return float(eval(expr, {"math": math, "i": step}))  # the test's own constant


def panel(nb: NotebookPage, family: str) -> Locator:
    """The panel box (legend layer + figure) whose figure title is ``family``."""
    return nb.cell(0).locator(".lossviz .lossviz-panel-box").filter(
        has=nb.page.locator("text.mainheading", has_text=re.compile(rf"^\s*{family}\b")))


def hover(nb: NotebookPage, family: str, fraction: float) -> dict[str, float]:
    """Move the mouse to ``fraction`` of the width of a panel's plot area, halfway down; the point."""
    box = panel(nb, family).locator("rect.plotarea_events").bounding_box()
    assert box, f"no plot area in panel {family}"
    x, y = box["x"] + fraction * box["width"], box["y"] + 0.5 * box["height"]
    nb.page.mouse.move(x - 3, y)
    nb.page.mouse.move(x, y)
    return {"x": x, "y": y, "left": box["x"], "width": box["width"]}


def tooltip(nb: NotebookPage, timeout: float = 10.0) -> dict[str, Any]:
    return poll(lambda: nb.page.evaluate(TOOLTIP_JS), timeout, "no hover tooltip shown")


def row(tip: dict[str, Any], label: str) -> dict[str, str]:
    rows = [r for r in tip["rows"] if r["label"] == label]
    assert len(rows) == 1, f"expected one {label!r} row in the tooltip: {tip}"
    return rows[0]


def as_float32(text: str) -> np.float32:
    return np.float32(float(text.replace(",", "")))


def raw_at(r: dict[str, str]) -> tuple[np.float32, int]:
    """A tooltip row's raw value and its step. The faint raw line gets half a line's points: once
    the view's width reached the kernel (2 points per pixel column) it may be bucketed, and the
    tooltip then names the step of the raw point it read: "0.3672 (at 271)"."""
    raw, _, at = r["raw"].partition(" (at ")
    step = int((at.rstrip(")") if at else r["x"]).replace(",", ""))
    return as_float32(raw), step


def check_hover_while_training(nb: NotebookPage, shot: str) -> None:
    """Hover the loss panel mid-plot while cell 1 runs; the tooltip matches what was logged."""
    poll(lambda: nb.is_executing(1), 60, "training cell never started executing ([*])", interval=0.05)
    loss = panel(nb, "loss")
    poll(lambda: loss.count() == 1 and panel(nb, "accuracy").count() == 1 and (last_drawn_step(
        nb.page, loss.locator(".lossviz-panel"), "loss") or 0) > 100, 60, "loss line never reached 100 points")
    assert nb.is_executing(1) and "TRAINING DONE" not in nb.output_text(1)
    hover(nb, "loss", 0.5)
    tip = tooltip(nb)
    assert nb.is_executing(1), "the training cell ended before the tooltip was read: make it longer"
    nb.screenshot(f"{shot}-mid-training")
    r = row(tip, "loss")
    step = int(r["x"].replace(",", ""))
    assert 0 <= step < N_STEPS
    # The raw value shown is the logged one at its step (float32 on the wire: compare as float32).
    raw, raw_step = raw_at(r)
    assert raw == np.float32(logged(LOSS, raw_step)), (r, logged(LOSS, raw_step))
    assert r["value"] and math.isfinite(float(r["value"]))  # the smoothed value; checked exactly below
    val = row(tip, "val_loss")
    vstep = int(val["x"].replace(",", ""))
    assert vstep % 50 == 0 and as_float32(val["raw"]) == np.float32(logged(VAL_LOSS, vstep)), val
    values = [float(x["value"] or x["raw"].split(" ")[0]) for x in tip["rows"]]  # a sparse series: raw only
    assert values == sorted(values, reverse=True), tip  # sorted by the value drawn
    # A crosshair in every panel, at the cursor's x (the same fraction of each plot area: one x scale).
    where = hover(nb, "loss", 0.5)
    crosshairs = nb.page.evaluate(CROSSHAIRS_JS)
    areas = nb.cell(0).locator(".lossviz").evaluate(PLOT_AREAS_JS)
    assert len(crosshairs) == len(areas) == 2, (crosshairs, areas)
    for area in areas:
        inside = [c for c in crosshairs if area["left"] <= c["left"] <= area["right"]
                  and abs(c["top"] - area["top"]) < 1 and abs(c["bottom"] - area["bottom"]) < 1]
        assert len(inside) == 1, (area, crosshairs)
        fraction = (inside[0]["left"] - area["left"]) / (area["right"] - area["left"])
        assert abs(fraction - 0.5) * (area["right"] - area["left"]) <= 1.5, (fraction, area, where)
    # The accuracy panel's own tooltip shows acc at the same kind of step.
    hover(nb, "accuracy", 0.3)
    acc = row(tooltip(nb), "acc")
    astep = int(acc["x"].replace(",", ""))
    raw, raw_step = raw_at(acc)
    assert abs(raw_step - astep) <= 8 and raw == np.float32(logged(ACC, raw_step)), acc  # within a bucket
    nb.page.mouse.move(1, 1)
    poll(lambda: nb.page.evaluate(TOOLTIP_JS) is None and not nb.page.evaluate(CROSSHAIRS_JS), 5,
         "tooltip/crosshair still shown after the mouse left")


def check_after_training(nb: NotebookPage, shot: str) -> None:
    """After the cell: the step under the cursor and the smoothed value are exactly what the kernel sent."""
    nb.wait_cell_done(2, timeout=120)
    m = re.search(r"STATE (\{.*\})", nb.output_text(2))
    assert m, nb.output_text(2)
    state = json.loads(m.group(1))
    xs, ys = state["x"], state["y"]
    assert len(xs) == N_STEPS  # under max_points: every step is drawn
    fraction = 0.37
    where = hover(nb, "loss", fraction)
    tip = tooltip(nb)
    nb.screenshot(f"{shot}-after-training")
    r = row(tip, "loss")
    step = int(r["x"].replace(",", ""))
    expected = state["min"] + fraction * (state["max"] - state["min"])
    step_px = where["width"] / (state["max"] - state["min"])  # pixels per step
    assert abs(step - expected) <= 0.5 + 1.0 / step_px, (step, expected)
    i = xs.index(step)
    assert as_float32(r["value"]) == np.float32(ys[i]), (r, ys[i])  # the smoothed value sent
    raw, raw_step = raw_at(r)
    assert abs(raw_step - step) <= 2 * (state["max"] - state["min"]) / where["width"] + 1, (raw_step, step)
    assert raw == np.float32(logged(LOSS, raw_step))
    assert as_float32(r["value"]) != raw  # smoothing 0.6: two different numbers


def check_legend_click(nb: NotebookPage, shot: str) -> None:
    loss = panel(nb, "loss")
    figure = loss.locator(".lossviz-panel")
    item = loss.locator('.lossviz-legend-item[data-key="val_loss"]')
    assert item.inner_text().strip() == "val_loss"
    swatch = item.locator(".lossviz-swatch").evaluate("e => getComputedStyle(e).borderTopColor")  # rgb(r, g, b)
    val_color = "#{:02x}{:02x}{:02x}".format(*(int(v) for v in re.findall(r"\d+", swatch)[:3]))
    assert painted(figure, val_color) > 100  # what a person sees of the val_loss line, whichever renderer
    item.click()
    poll(lambda: painted(figure, val_color) < 10, 5, "val_loss line still shown")
    assert last_drawn_step(nb.page, figure, "loss") == N_STEPS - 1  # the other line stays
    hover(nb, "loss", 0.5)
    assert "val_loss" not in [r["label"] for r in tooltip(nb)["rows"]]
    nb.screenshot(f"{shot}-legend-hidden")
    item.click()
    poll(lambda: painted(figure, val_color) > 100, 5, "val_loss line not shown again")
    nb.page.mouse.move(1, 1)


def check_wall_time_axis(nb: NotebookPage, shot: str) -> None:
    """On the wall-time axis the readout names the time of the nearest point (a UTC date)."""
    nb.cell(0).locator(".lossviz-controls select").nth(1).select_option(label="wall time")
    poll(lambda: "wall time" in " ".join(panel(nb, "loss").locator("text.axislabel").all_text_contents()), 20,
         "the x axis never switched to wall time")
    hover(nb, "loss", 0.5)
    poll(lambda: (nb.page.evaluate(TOOLTIP_JS) or {}).get("head", "").startswith("wall time"), 10,
         "no wall-time readout")
    r = row(tooltip(nb), "loss")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC", r["x"]), r
    assert as_float32(r["raw"].partition(" (at ")[0]) > 0  # "(at <time>)" where the raw line is bucketed
    nb.screenshot(f"{shot}-wall-time")
    nb.page.mouse.move(1, 1)


@pytest.mark.browser
@pytest.mark.timeout(240)
def test_hover_readout_crosshair_and_legend_in_jupyterlab(request: pytest.FixtureRequest) -> None:
    with opened_notebook(request, "hover.ipynb", [SETUP_CELL, TRAIN_CELL, STATE_CELL]) as nb:
        nb.run_all_cells()
        check_hover_while_training(nb, "hover-lab")
        check_after_training(nb, "hover-lab")
        check_legend_click(nb, "hover-lab")
        check_wall_time_axis(nb, "hover-lab")
        assert not nb.error_outputs(), nb.error_outputs()


# --------------------------------------------------------------------------------------------
# Layout at 800 and 1900 px, and contrast
# --------------------------------------------------------------------------------------------

STATIC_CELL = """\
import math
from lossviz_widget import LossPlot
plot = LossPlot(title="layout test", smoothing=0.6)
for run in ("lr=0.1", "lr=0.01", "lr=0.001"):
    for i in range(400):
        k = {"lr=0.1": 1.0, "lr=0.01": 1.4, "lr=0.001": 1.9}[run]
        plot.log(loss=k * math.exp(-i / 90) + 0.1, acc=0.97 - 0.8 * math.exp(-i / (60 * k)), step=i, run=run)
        if i % 40 == 0:
            plot.log(val_loss=k * math.exp(-i / 110) + 0.2, val_acc=0.9 - 0.8 * math.exp(-i / (70 * k)), step=i,
                     run=run)
plot.flush()
plot"""

OVERLAPS_JS = """(root) => {
  const box = (e) => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
  const meet = (a, b) => a[0] < b[2] && b[0] < a[2] && a[1] < b[3] && b[1] < a[3];
  const out = {overlaps: [], legends: 0, paths: 0};
  for (const p of root.querySelectorAll('.lossviz-panel-box')) {
    const legends = [...p.querySelectorAll('.lossviz-legend-item')].map(box);
    const svgLegends = [...p.querySelectorAll('.g_legend')].filter(g => getComputedStyle(g).display !== 'none'
      && g.getBoundingClientRect().width > 0).map(box);
    const paths = [...p.querySelectorAll('g.curve path.line')].filter(e => !e.closest('.g_legend')
      && e.getAttribute('d') && getComputedStyle(e.closest('g[clip-path]') || e).display !== 'none').map(box)
      .concat([...p.querySelectorAll('canvas.lossviz-lines')].map(box));  // renderer="canvas": the whole plot area
    out.legends += legends.length + svgLegends.length; out.paths += paths.length;
    for (const l of [...legends, ...svgLegends]) for (const q of paths) if (meet(l, q)) out.overlaps.push([l, q]);
  }
  return out;
}"""

def controls_in_one_row(widget: Locator) -> bool:
    """Whether every control of the bar starts above the bottom of every other one (no wrap)."""
    return bool(widget.locator(".lossviz-controls").first.evaluate("""(bar) => {
      const r = [...bar.children].map(c => c.getBoundingClientRect());
      return Math.max(...r.map(b => b.top)) < Math.min(...r.map(b => b.bottom)); }"""))


@pytest.mark.browser
@pytest.mark.timeout(180)
@pytest.mark.parametrize("width", [800, 990, 1900])
def test_legends_off_the_data_and_layout(request: pytest.FixtureRequest, width: int) -> None:
    """Page widths 800 and 1900 px, and 990 px, where the plot itself is about 810 px wide."""
    with opened_notebook(request, f"layout{width}.ipynb", [STATIC_CELL]) as nb:
        nb.page.set_viewport_size({"width": width, "height": 1100})
        nb.page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current").click()  # file browser closed
        nb.run_all_cells()
        nb.wait_cell_done(0, timeout=90)
        widget = nb.cell(0).locator(".lossviz")
        poll(lambda: widget.locator(".lossviz-legend-item").count() == 12, 30, "legends never drew")  # 2 panels x 6
        nb.page.mouse.move(1, 1)
        nb.page.wait_for_timeout(300)
        found = widget.evaluate(OVERLAPS_JS)
        nb.screenshot(f"hover-layout-{width}px")
        nb.screenshot(f"hover-layout-{width}px-widget", widget)
        assert found["legends"] == 12 and found["paths"] >= 2, found  # the canvas of each panel (svg: 12+ paths)
        assert not found["overlaps"], found["overlaps"][:5]
        plot_width = widget.evaluate("(w) => w.getBoundingClientRect().width")
        areas = widget.evaluate(PLOT_AREAS_JS)
        if plot_width < 840:  # two 420 px panels do not fit: one column
            assert len({round(a["left"]) for a in areas}) == 1, areas
        else:
            assert len({round(a["top"]) for a in areas}) == 1, areas  # side by side
        if width >= 990:
            assert plot_width >= 800 and controls_in_one_row(widget), f"control bar wraps at {plot_width:.0f} px"
        bad, n = low_contrast(nb, "[document.querySelector('.jp-Cell .lossviz')]")
        assert n > 20 and not bad, bad


# --------------------------------------------------------------------------------------------
# JupyterLab Dark and Notebook 7: servers of their own
# --------------------------------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.timeout(300)
def test_dark_theme_text_contrast(request: pytest.FixtureRequest) -> None:
    require_chromium()
    browser = request.getfixturevalue("chromium_browser")
    with running_jupyterlab(lab_settings={**LAB_SETTINGS, DARK_THEME[0]: DARK_THEME[1]}) as server:
        nb = own_server_page(browser, server)
        try:
            write_notebook(server.root_dir / "dark.ipynb", [SETUP_CELL, TRAIN_CELL, STATE_CELL])
            nb.open("dark.ipynb")
            assert nb.page.evaluate("() => document.body.dataset.jpThemeLight") == "false"  # dark theme on
            nb.run_all_cells()
            check_hover_while_training(nb, "hover-dark")
            nb.wait_cell_done(2, timeout=120)
            hover(nb, "loss", 0.6)
            tooltip(nb)
            bad, n = low_contrast(nb, "[document.querySelector('.jp-Cell .lossviz'), "
                                      "...document.querySelectorAll('.lossviz-tooltip')]")
            nb.screenshot("hover-dark-contrast")
            nb.screenshot("hover-dark-widget", nb.cell(0).locator(".lossviz"))
            assert n > 20 and not bad, bad
            # The snapshot button's PNG has the theme's (dark) background.
            nb.page.mouse.move(1, 1)
            with nb.page.expect_download() as download:
                nb.cell(0).locator(".lossviz-snapshot button").first.click()
            path = nb.artifacts / "hover-dark-snapshot.png"
            download.value.save_as(path)
            from PIL import Image

            corner = Image.open(path).convert("RGB").getpixel((2, 2))
            assert max(corner) < 80, f"snapshot background {corner} is not the dark theme's"
        finally:
            nb.page.context.close()


@pytest.mark.browser
@pytest.mark.timeout(300)
def test_notebook7_live_update_and_hover(request: pytest.FixtureRequest) -> None:
    require_chromium()
    browser = request.getfixturevalue("chromium_browser")
    with running_jupyterlab(app="notebook") as server:
        nb = own_server_page(browser, server)
        try:
            write_notebook(server.root_dir / "nb7.ipynb", [SETUP_CELL, TRAIN_CELL, STATE_CELL])
            open_in_notebook7(nb, "nb7.ipynb")
            nb.run_all_cells()
            loss = panel(nb, "loss")
            poll(lambda: nb.is_executing(1) and loss.count() == 1, 60, "Notebook 7: training never started")
            samples = []
            t0 = time.monotonic()
            while nb.is_executing(1) and len(samples) < 6 and time.monotonic() - t0 < 60:
                last = last_drawn_step(nb.page, loss.locator(".lossviz-panel"), "loss")
                if last is not None and nb.is_executing(1):
                    samples.append(last)
                nb.page.wait_for_timeout(400)
            assert sum(b > a for a, b in itertools.pairwise(samples)) >= 2, samples  # live growth
            check_hover_while_training(nb, "hover-notebook7")
            nb.wait_cell_done(2, timeout=120)
            assert not nb.error_outputs(), nb.error_outputs()
        finally:
            nb.page.context.close()


# --------------------------------------------------------------------------------------------
# Controls during a running cell (what the user guide's "Training in a thread" says)
# --------------------------------------------------------------------------------------------

BLOCKING_CELL = """\
import math, time
seen = None
for i in range(500):
    time.sleep(0.02)
    plot.log(loss=1.5 * math.exp(-i / 150) + 0.1, step=i)
    if plot.log_y and seen is None:
        seen = i
print("DURING_CELL", seen)"""

THREAD_CELL = """\
import math, threading, time
def train(n=3000):
    for i in range(n):
        time.sleep(0.01)
        plot.log(loss=1.5 * math.exp(-i / 150) + 0.1, step=1000 + i)
threading.Thread(target=train, daemon=True).start()
print("THREAD_STARTED")"""

TICKS_JS = "(w) => [...w.querySelectorAll('.lossviz-panel g.axis text')].map(t => t.textContent).join(' ')"


def _readout_step(nb: NotebookPage) -> int:
    row = nb.cell(0).locator('.lossviz .lossviz-readout tr[data-metric="loss"]')
    return int(float(row.first.get_attribute("data-step") or -1)) if row.count() else -1


def subshell_comms(version: str) -> bool:
    """Whether this ipykernel handles widget messages that JupyterLab sends on a subshell in that
    subshell's thread (7.0-7.3), or routes them to the shell that last sent on the widget (7.4+:
    ``Comm._reply_subshell_for``; the main shell for a widget made in a notebook cell)."""
    major, minor = (int(v) for v in version.split(".")[:2])
    return major == 7 and minor < 4


@pytest.mark.browser
@pytest.mark.timeout(240)
def test_control_bar_during_a_blocking_cell_and_a_training_thread(request: pytest.FixtureRequest) -> None:
    import ipykernel

    cells = ["from lossviz_widget import LossPlot\nplot = LossPlot(title='controls')\nplot", BLOCKING_CELL,
             THREAD_CELL]
    with opened_notebook(request, "controls.ipynb", cells) as nb:
        nb.run_all_cells()
        poll(lambda: nb.is_executing(1) and "loss" in nb.output_text(0), 60, "training never started")
        nb.page.wait_for_timeout(1500)
        assert nb.is_executing(1)
        log_y = nb.cell(0).locator(".lossviz-controls button", has_text="log y")
        log_y.click()  # while the blocking cell runs
        during = re.search(r"DURING_CELL (\S+)", nb.wait_output_text(1, "DURING_CELL", timeout=60)).group(1)
        if subshell_comms(ipykernel.__version__):
            assert during != "None", f"ipykernel {ipykernel.__version__}: log y not seen during the cell"
        else:
            assert during == "None", f"ipykernel {ipykernel.__version__}: log y seen during the cell ({during})"
        # Training in a thread: the cells are done, the kernel is idle and handles a click at once
        # (the plot's y axis switches) while the thread keeps training (the readout's step grows).
        nb.wait_output_text(2, "THREAD_STARTED", timeout=30)
        widget = nb.cell(0).locator(".lossviz")
        nb.page.wait_for_timeout(1500)  # the click queued during the blocking cell is handled by now
        ticks, step = widget.evaluate(TICKS_JS), _readout_step(nb)
        log_y.click()
        poll(lambda: widget.evaluate(TICKS_JS) != ticks and _readout_step(nb) > step, 10,
             "the y axis did not switch (or training stopped) after a click during threaded training")
        later = _readout_step(nb)
        poll(lambda: _readout_step(nb) > later, 10, "the training thread stopped")
        nb.screenshot("hover-controls-thread")


# --------------------------------------------------------------------------------------------
# Voila: the notebook as an app
# --------------------------------------------------------------------------------------------

VOILA_SETUP = "from lossviz_widget import LossPlot\nplot = LossPlot(title='voila')\nplot"
VOILA_THREAD = """\
import math, threading, time
def train():
    for i in range(1500):
        time.sleep(0.01)
        plot.log(loss=1.5 * math.exp(-i / 300) + 0.1, step=i)
threading.Thread(target=train, daemon=True).start()"""
VOILA_BLOCKING = """\
import math, time
for i in range(300):
    time.sleep(0.02)
    plot.log(loss=1.5 * math.exp(-i / 300) + 0.1, step=i)"""


@contextlib.contextmanager
def running_voila(notebook: Path) -> Iterator[str]:
    """``voila notebook`` on a free port of 127.0.0.1, isolated Jupyter dirs; yields its URL."""
    port = free_port()
    home = notebook.parent
    env = {k: v for k, v in os.environ.items() if k not in ("JUPYTER_PATH", "JUPYTER_PLATFORM_DIRS")}
    env.update({"JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_DATA_DIR": str(home / "data"),
                "JUPYTER_RUNTIME_DIR": str(home / "runtime"), "IPYTHONDIR": str(home / "ipython"),
                "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2]), env.get("PYTHONPATH", "")])})
    log = open(artifacts_dir() / f"voila-{notebook.stem}.log", "wb")  # noqa: SIM115 -- closed below
    proc = subprocess.Popen([sys.executable, "-m", "voila", str(notebook), "--no-browser", f"--port={port}",
                             "--Voila.ip=127.0.0.1"], cwd=home, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        def up() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"voila exited with {proc.returncode}")
            try:
                with urllib.request.urlopen(url + "voila/static/", timeout=2):
                    return True
            except urllib.error.HTTPError:
                return True  # it answers
            except OSError:
                return False
        poll(up, 60, "voila did not start")
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def voila_failed(page: Any, what: str) -> str:
    """``what``, with a screenshot of the page and what its panels hold."""
    page.screenshot(path=str(artifacts_dir() / "hover-voila-failed.png"))
    parts = page.evaluate("""() => [...document.querySelectorAll('.lossviz-panel')].map((p) => [
      p.querySelectorAll('canvas.lossviz-lines').length, p.querySelectorAll('g.curve path.line').length])""")
    return f"{what}: panels' (canvases, SVG curve paths): {parts}"


def voila_last_step(page: Any) -> int | None:
    """The last step the loss panel draws, from the hover readout (either renderer)."""
    figure = page.locator(".lossviz-panel").first
    return last_drawn_step(page, figure, "loss") if figure.count() else None


@pytest.mark.browser
@pytest.mark.timeout(240)
def test_voila_live_with_a_training_thread_and_after_a_blocking_cell(request: pytest.FixtureRequest,
                                                                    tmp_path: Path) -> None:
    require_chromium()
    browser = request.getfixturevalue("chromium_browser")
    context = new_context(browser)
    page = context.new_page()
    try:
        # Training in a thread: the app shows the plot while it trains, and it grows; hovering reads it.
        nb = write_notebook(tmp_path / "thread" / "app.ipynb", [VOILA_SETUP, VOILA_THREAD])
        with running_voila(nb) as url:
            page.goto(url, timeout=90_000)
            poll(lambda: voila_last_step(page) is not None, 90, lambda: voila_failed(page, "no curve shown in Voila"))
            samples = []
            for _ in range(4):
                samples.append(voila_last_step(page))
                page.wait_for_timeout(1000)
            assert None not in samples and samples == sorted(samples), samples  # type: ignore[type-var]
            assert samples[-1] > samples[0] and samples[-1] < 1500, samples  # type: ignore[operator]
            assert painted(page.locator(".lossviz-panel").first, "#1f77b4") > 100  # the loss line on screen
            box = page.locator(".lossviz-panel rect.plotarea_events").first.bounding_box()
            page.mouse.move(box["x"] + box["width"] / 2, box["y"] + 40)
            tip = poll(lambda: page.evaluate(TOOLTIP_JS), 10, "no hover tooltip in Voila")
            assert row(tip, "loss")["value"]
            page.screenshot(path=str(artifacts_dir() / "hover-voila-thread.png"))
        # A blocking training cell: Voila shows the page once every cell has run, with the whole run.
        nb = write_notebook(tmp_path / "blocking" / "app.ipynb", [VOILA_SETUP, VOILA_BLOCKING])
        with running_voila(nb) as url:
            page.goto(url, timeout=90_000)
            poll(lambda: voila_last_step(page) == 299, 90,
                 lambda: voila_failed(page, f"last step drawn {voila_last_step(page)}, not 299"))
            page.screenshot(path=str(artifacts_dir() / "hover-voila-blocking.png"))
    finally:
        context.close()
