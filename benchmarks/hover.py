"""Browser main-thread cost of the hover readout and crosshair (js/hover.js), per mouse move.

    python benchmarks/hover.py            # writes benchmarks/HOVER.md (about 1 min)

A LossPlot of 8 runs x 2000 logged steps of ``loss`` in one panel (``max_points=2000``,
smoothing 0.6: 8 smoothed lines of 2000 points and 8 raw lines of 1000, each point the min or max of its bucket),
plus a second panel (``acc``, same runs) that draws its crosshair on each move, shown in real
JupyterLab + headless Debian Chromium (``tests/browser_harness.py``). The mouse then moves
across the loss panel's plot area, one step at a time, waiting for an animation frame after
each move so every move is handled on its own (the readout is drawn once per frame), and the
same number of moves along the plot's title row (the baseline: JupyterLab's own work on a
mouse move). Main-thread time comes from the DevTools protocol (``Performance.getMetrics``:
``TaskDuration`` and ``ScriptDuration``), summed over the moves; the hover cost per move is the
difference to the baseline. Outgoing websocket frames are counted during the hover moves
(the readout must send nothing to the kernel).
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from browser_harness import NotebookPage, launch_chromium, new_context, poll, running_jupyterlab, write_notebook

BENCH_DIR = Path(__file__).resolve().parent
RUNS, STEPS, MOVES, REPEATS = 8, 2000, 200, 5

CELL = f"""\
import math
from lossviz_widget import LossPlot
plot = LossPlot(title="hover benchmark", smoothing=0.6, max_points={STEPS})
for r in range({RUNS}):
    run = plot.run(f"run {{r}}")
    for i in range({STEPS}):
        run.log(loss=(1 + r / 4) * math.exp(-i / 500) + 0.05 * math.sin(i * (r + 1)), acc=1 - math.exp(-i / 400),
                step=i)
plot.flush()
plot"""

METRICS = ("TaskDuration", "ScriptDuration", "LayoutDuration", "RecalcStyleDuration")
FRAME_JS = "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r())))"


def _metrics(cdp: Any) -> dict[str, float]:
    return {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}


def _sweep(page: Any, cdp: Any, x0: float, x1: float, y: float) -> dict[str, float]:
    """Main-thread seconds (task, script) spent over MOVES moves from x0 to x1 at height y."""
    page.mouse.move(x0, y)
    page.evaluate(FRAME_JS)
    before = _metrics(cdp)
    for k in range(MOVES):
        page.mouse.move(x0 + (x1 - x0) * k / (MOVES - 1), y)
        page.evaluate(FRAME_JS)
    after = _metrics(cdp)
    return {name: (after[name] - before[name]) * 1000 / MOVES for name in METRICS}


def measure() -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    with running_jupyterlab(BENCH_DIR / "out") as server, sync_playwright() as pw:
        browser = launch_chromium(pw)
        context = new_context(browser)
        page = context.new_page()
        nb = NotebookPage(page, server, BENCH_DIR / "out")
        write_notebook(server.root_dir / "hover_bench.ipynb", [CELL])
        nb.open("hover_bench.ipynb")
        nb.run_all_cells()
        nb.wait_cell_done(0, timeout=300)
        panel = nb.cell(0).locator(".lossviz .lossviz-panel").first
        poll(lambda: all(nb.visible_line_vertices(panel, f"run {r}: loss") == STEPS for r in range(RUNS)), 60,
             "the 8 lines never drew 2000 points each")
        sent: list[int] = []
        page.on("websocket", lambda ws: ws.on("framesent", lambda _f: sent.append(1)))
        cdp = context.new_cdp_session(page)
        cdp.send("Performance.enable")
        area = panel.locator("rect.plotarea_events").bounding_box()
        y = area["y"] + area["height"] / 2
        title = nb.cell(0).locator(".lossviz-title").bounding_box()  # the plot's heading row: no hover there
        hover, base, frames = [], [], []
        for _ in range(REPEATS):
            n0 = len(sent)
            hover.append(_sweep(page, cdp, area["x"] + 2, area["x"] + area["width"] - 2, y))
            frames.append(len(sent) - n0)
            base.append(_sweep(page, cdp, area["x"] + 2, area["x"] + area["width"] - 2,
                               title["y"] + title["height"] / 2))
        shown = page.evaluate("() => [...document.querySelectorAll('.lossviz-tooltip')]"
                              ".filter(t => t.style.display === 'block').length")
        page.mouse.move(area["x"] + area["width"] * 0.6, y)
        page.evaluate(FRAME_JS)
        nb.screenshot("hover-benchmark")
        browser.close()
    return {"hover": hover, "base": base, "frames_sent": frames, "tooltip_after_base": shown}


def write(result: dict[str, Any], path: Path) -> None:
    def med(rows: list[dict[str, float]], key: str) -> float:
        return statistics.median(r[key] for r in rows)

    def cells(rows: list[dict[str, float]], minus: list[dict[str, float]] | None = None) -> str:
        values = [med(rows, m) - (med(minus, m) if minus else 0.0) for m in METRICS]
        return " | ".join(f"{v:.2f} ms" for v in values)

    load = os.getloadavg()
    lines = [
        "# Hover readout: browser main-thread cost per mouse move",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `python benchmarks/hover.py` "
        f"({platform.processor() or platform.machine()}, {os.cpu_count()} cores, load average "
        f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} while it ran: other work shared the machine), "
        "JupyterLab + headless Debian Chromium (software rendering, no GPU). Method: the docstring of "
        "`benchmarks/hover.py`.",
        "",
        f"{RUNS} series x {STEPS} points (smoothed lines; plus {RUNS} raw lines of {STEPS // 2} points) in the "
        f"hovered panel, a second panel drawing its crosshair; {MOVES} moves per sweep, median of {REPEATS} sweeps.",
        "",
        "| per mouse move | main-thread task time | script | layout | style |",
        "|---|---|---|---|---|",
        f"| over the plot (readout + crosshairs) | {cells(result['hover'])} |",
        f"| over the plot's title row (baseline) | {cells(result['base'])} |",
        f"| **hover cost (difference)** | {cells(result['hover'], result['base'])} |",
        "",
        "Task time is everything the main thread did (script, style, layout, paint, compositing); "
        "the rest of the difference beyond script, layout and style is painting the tooltip and the "
        "crosshairs, in software here.",
        "",
        f"Websocket frames sent by the page during the hover sweeps: {sum(result['frames_sent'])} "
        "(the readout is computed in the browser from data already there; nothing goes to the kernel).",
        "",
    ]
    path.write_text("\n".join(lines))


if __name__ == "__main__":
    out = measure()
    print(out)
    write(out, BENCH_DIR / "HOVER.md")
    print((BENCH_DIR / "HOVER.md").read_text())
