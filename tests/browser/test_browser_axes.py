"""End to end: a scripted tour of every control at 1e6 points in JupyterLab logs no browser error.

The issue this answers: toggling log y at 1e6 points logged ~10,000 ``<path> attribute d:
Expected number, "M5,NaNL..."`` errors, and each x-axis switch logged ``<rect> attribute
width: A negative value is not valid``. The tour: log y on/off, log x on/off, ignore
outliers, every x-axis mode, a smoothing mode, a wheel zoom, "follow latest" (the reset) and
the snapshot button, each followed by the redraw it causes, then every console error and
page error of the tour is listed. Screenshots of the steps go to ``test-artifacts/browser/``.
"""

from __future__ import annotations

import re

import pytest
from browser_harness import NotebookPage, opened_notebook, poll

SETUP_CELL = """\
import numpy as np
from lossviz_widget import LossPlot
n = 1_000_000
steps = np.arange(n, dtype=float)
wall = 1.7e9 + steps * 0.0072  # two hours of training
rng = np.random.default_rng(0)
plot = LossPlot(title="axes tour")
# a loss that touches 0 and below (log y must draw gaps, not NaN paths), step 0 included (log x)
plot.extend("loss", steps, 2.0 * np.exp(-steps / 2e5) + 0.03 * rng.standard_normal(n), wall)
plot.extend("val_loss", steps[::10_000], 2.1 * np.exp(-steps[::10_000] / 2e5) + 0.05, wall[::10_000])
plot.extend("acc", steps, np.minimum(0.99, 0.3 + 0.7 * steps / n + 0.02 * rng.standard_normal(n)), wall)
plot.extend("learning_rate", steps[::100], 1e-3 * (1 + np.cos(np.pi * steps[::100] / n)) / 2, wall[::100])
plot.flush()
plot"""

STATE_CELL = """print("TOUR READY", plot.runs)"""

#: Console messages that are not the widget's: none so far (every error of the tour counts).
NOT_OURS: tuple[str, ...] = ()


def _settle(nb: NotebookPage, name: str) -> None:
    """Let the kernel take in a control's change and the browser draw the frame it sends."""
    nb.wait_kernel_idle(60)
    nb.page.wait_for_timeout(1500)  # a frame at 1e6 points: downsampled in the kernel, drawn in ~0.1 s
    nb.wait_kernel_idle(60)
    nb.screenshot(f"axes-tour-{name}", nb.cell(0).locator(".lossviz").first)



@pytest.mark.browser
@pytest.mark.timeout(420)
def test_a_tour_of_every_control_at_1e6_points_logs_no_browser_error(request: pytest.FixtureRequest) -> None:
    with opened_notebook(request, "axes_tour.ipynb", [SETUP_CELL, STATE_CELL]) as nb:
        errors: list[str] = []
        step = ["opening"]  # the tour's step the errors come in
        nb.page.on("console", lambda m: errors.append(f"[{step[0]}] {m.text}") if m.type == "error" else None)
        nb.page.on("pageerror", lambda e: errors.append(f"[{step[0]}] pageerror: {e}"))
        nb.run_all_cells()
        step[0] = "first draw"
        nb.wait_cell_done(1, timeout=240)
        widget = nb.cell(0).locator(".lossviz").first
        panels = widget.locator(".lossviz-panel")
        poll(lambda: panels.count() == 3, 60, "the three panels never showed")
        _settle(nb, "start")
        bar = widget.locator(".lossviz-controls")

        def toggle(label: str) -> None:
            bar.locator("button", has_text=re.compile(rf"^\s*{label}\s*$")).click()

        x_select = bar.locator("select").filter(has=nb.page.locator("option", has_text="wall time"))
        mode_select = bar.locator("select").filter(has=nb.page.locator("option", has_text="Gaussian"))
        steps = [
            ("log-y-on", lambda: toggle("log y")),
            ("log-y-off", lambda: toggle("log y")),
            ("log-x-on", lambda: toggle("log x")),
            ("log-y-and-x", lambda: toggle("log y")),
            ("log-x-off", lambda: toggle("log x")),
            ("log-y-off-again", lambda: toggle("log y")),
            ("outliers-on", lambda: toggle("outliers")),
            ("outliers-off", lambda: toggle("outliers")),
            ("x-wall-time", lambda: x_select.select_option(label="wall time")),
            ("x-relative-time", lambda: x_select.select_option(label="relative time")),
            ("x-step", lambda: x_select.select_option(label="step")),
            ("smoothing-gaussian", lambda: mode_select.select_option(label="Gaussian")),
            ("smoothing-ema", lambda: mode_select.select_option(label="EMA")),
        ]
        for name, act in steps:
            step[0] = name
            act()
            _settle(nb, name)
        # a wheel zoom over the loss panel, then "follow latest" (the reset), then the snapshot button
        step[0] = "zoom"
        box = panels.first.locator("svg.svg-figure").bounding_box()
        nb.page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
        for _ in range(30):  # far past the zoom limit
            nb.page.mouse.wheel(0, -600)
            nb.page.wait_for_timeout(30)
        nb.page.mouse.move(1, 1)
        _settle(nb, "zoomed")
        step[0] = "follow latest"
        toggle("follow latest")
        _settle(nb, "follow-latest")
        step[0] = "snapshot"
        widget.locator(".lossviz-snapshot button").click()
        poll(lambda: widget.locator(".lossviz-snapshot").get_attribute("data-last-request-id"), 30,
             "the snapshot button never answered")
        _settle(nb, "snapshot")
        ours = [e for e in errors if not any(s in e for s in NOT_OURS)]
        assert not ours, f"{len(ours)} browser errors during the tour, first ones:\n" + "\n".join(ours[:40])
        assert not nb.error_outputs()
