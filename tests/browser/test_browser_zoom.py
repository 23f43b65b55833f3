"""End to end: zooming a panel with the mouse wheel in JupyterLab re-downsamples the visible
range (full fidelity), and "follow latest" brings the whole run back.

A plot of 200,000 points (max_points=400, smoothing off, ``renderer="svg"``: the path's vertices
are read; the second test does the same with the canvas) is shown; the loss line then
holds <= 400 vertices. A wheel zoom over the panel narrows the shared x scale in the
browser; once the kernel is idle it receives the new range (``plot.x_range``) and sends
the raw points of that range. A later cell reads the state the kernel holds.
"""

from __future__ import annotations

import re

import pytest
from browser_harness import CANVAS_SENT_CODE, NotebookPage, opened_notebook, poll

SETUP_CELL = """\
if "plot" not in globals():  # re-running all cells keeps the plot (and its zoom)
    from lossviz_widget import LossPlot
    plot = LossPlot(title="zoom test", smoothing=0.0, max_points=400, renderer="svg")
    for i in range(200_000):
        plot.log(loss=1.0 + (i % 997) / 997 + (50.0 if i == 123_457 else 0.0), step=i)
    plot.flush()
plot"""

STATE_CELL = """\
main = [m for m in plot.figures["loss"].marks if getattr(m, "labels", None) == ["loss"]][0]
print("STATE", plot.x_range, plot.follow_latest, len(main.x))"""


def _state(nb: NotebookPage) -> tuple[str, str, int] | None:
    m = re.search(r"STATE (.+?) (True|False) (\d+)", nb.output_text(1))
    return (m.group(1), m.group(2), int(m.group(3))) if m else None


@pytest.mark.browser
@pytest.mark.timeout(180)
def test_wheel_zoom_gives_full_fidelity_and_follow_latest_resets(request: pytest.FixtureRequest) -> None:
    with opened_notebook(request, "zoom.ipynb", [SETUP_CELL, STATE_CELL]) as nb:
        _zoom_and_follow(nb)


def _zoom_and_follow(nb: NotebookPage) -> None:
    nb.run_all_cells()
    nb.wait_cell_done(1, timeout=120)
    assert _state(nb) == ("None", "True", _state(nb)[2]) and _state(nb)[2] <= 400
    panel = nb.cell(0).locator(".lossviz .lossviz-panel").first
    poll(lambda: nb.visible_line_vertices(panel, "loss") > 100, 20, "the loss line never drew")
    full = nb.visible_line_vertices(panel, "loss")
    assert full <= 400

    # Zoom in with the wheel over the middle of the plot area (bqplot's PanZoom, x only).
    box = panel.locator("svg.svg-figure").bounding_box()
    nb.page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    for _ in range(12):
        nb.page.mouse.wheel(0, -400)
        nb.page.wait_for_timeout(50)
    nb.page.mouse.move(1, 1)
    nb.screenshot("zoom-browser-side")

    # The kernel is idle: it takes in the new range and redraws it from the raw data.
    nb.run_all_cells()
    nb.wait_cell_done(1, timeout=60)
    poll(lambda: _state(nb) is not None and _state(nb)[0] != "None", 20,
         lambda: f"no zoom reached the kernel: {_state(nb)}")
    x_range, follow, n_points = _state(nb)
    lo, hi = (float(v) for v in re.findall(r"[-\d.e+]+", x_range)[:2])
    assert follow == "False" and 0 < hi - lo < 200_000 / 4, x_range
    visible_raw = int(hi) - int(lo) + 1
    if visible_raw <= 400:  # the zoomed range fits the budget: every raw point there is drawn
        assert n_points >= visible_raw, (x_range, n_points)
    poll(lambda: nb.visible_line_vertices(panel, "loss") == n_points, 20,
         lambda: f"browser shows {nb.visible_line_vertices(panel, 'loss')} vertices, kernel sent {n_points}")
    nb.screenshot("zoom-full-fidelity")

    # follow latest: back to the whole run.
    nb.cell(0).locator(".lossviz-controls button", has_text="follow latest").click()
    nb.run_all_cells()
    nb.wait_cell_done(1, timeout=60)
    poll(lambda: _state(nb) is not None and _state(nb)[:2] == ("None", "True"), 20, lambda: f"{_state(nb)}")
    poll(lambda: nb.visible_line_vertices(panel, "loss") == full, 20, "the full view did not come back")


CANVAS_JS = "el => el.querySelector('canvas.lossviz-lines').toDataURL()"


@pytest.mark.browser
@pytest.mark.timeout(180)
def test_wheel_zoom_on_the_canvas_renderer(request: pytest.FixtureRequest) -> None:
    """The same zoom with ``renderer="canvas"``: bqplot's pan/zoom events (above the canvas) move the
    shared x scale, the canvas redraws for it at once, the kernel gets the range and sends the range's
    points, and the hover readout reads them."""
    setup = SETUP_CELL.replace('renderer="svg"', 'renderer="canvas"')
    state = CANVAS_SENT_CODE + 'print("STATE", plot.x_range, plot.follow_latest, 0, "SENT", *sent_steps(plot))'
    with opened_notebook(request, "zoom_canvas.ipynb", [setup, state]) as nb:
        nb.run_all_cells()
        nb.wait_cell_done(1, timeout=120)
        panel = nb.cell(0).locator(".lossviz .lossviz-panel").first
        panel.locator("canvas.lossviz-lines").wait_for(state="attached", timeout=30_000)
        nb.page.wait_for_timeout(500)
        whole = panel.evaluate(CANVAS_JS)
        box = panel.locator("svg.svg-figure").bounding_box()
        assert box is not None
        nb.page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
        for _ in range(12):
            nb.page.mouse.wheel(0, -400)
            nb.page.wait_for_timeout(50)
        nb.page.mouse.move(1, 1)
        poll(lambda: panel.evaluate(CANVAS_JS) != whole, 10, "the canvas did not redraw for the zoom")
        nb.run_all_cells()  # the kernel is idle: it takes in the range and sends that range's points
        nb.wait_cell_done(1, timeout=60)
        poll(lambda: _state(nb) is not None and _state(nb)[0] != "None", 20,
             lambda: f"no zoom reached the kernel: {_state(nb)}")
        x_range, follow, _ = _state(nb)  # type: ignore[misc]
        lo, hi = (float(v) for v in re.findall(r"[-\d.e+]+", x_range)[:2])
        assert follow == "False" and 0 < hi - lo < 200_000 / 4, x_range
        # the points the kernel sent the canvas are the range's (the frame may already have come while
        # the zoom was drawn from the old points, so the pixels need not change again after it)
        span = hi - lo

        def sent_in_range() -> bool:
            nb.run_all_cells()
            nb.wait_cell_done(1, timeout=60)
            m = re.search(r"SENT (\d+) (\d+)", nb.output_text(1))
            return bool(m) and lo - span <= int(m.group(1)) and int(m.group(2)) <= hi + span

        poll(sent_in_range, 30, lambda: f"the range's points were not sent: {nb.output_text(1)!r}", interval=1.0)
        assert panel.evaluate(CANVAS_JS) != whole, "the canvas went back to the whole run"
        area = panel.locator("rect.plotarea_events").bounding_box()
        assert area is not None
        nb.page.mouse.move(area["x"] + area["width"] * 0.5, area["y"] + area["height"] * 0.5)
        tip = nb.page.locator(".lossviz-tooltip .lossviz-tip-x")
        poll(lambda: tip.count() > 0 and tip.first.is_visible(), 10, "no hover readout")
        step = int(tip.first.inner_text().replace(",", ""))
        assert lo <= step <= hi, (step, x_range)
        nb.screenshot("zoom-canvas")
