"""Axis switches at 1e6 points: time until the browser has drawn them, and browser errors.

The issue measured it before: toggling log y at 1e6 points took 2.2 s and logged ~10,000
``NaN`` path errors; each x-axis switch logged 12 ``<rect> ... negative`` errors. Here, in
real JupyterLab + headless Debian Chromium (``tests/browser_harness.py``), a plot holding
four series (two of 1e6 points: ``loss``, ``acc``; ``val_loss`` every 10,000 steps;
``learning_rate`` every 100; ``renderer="svg"``, whose paths are watched) is displayed, the
kernel is idle, and each control is switched
``--rounds`` times. Per switch: **settled** = the last change, within 6 s of the click, of a
drawn line (``d`` of a bqplot ``path.line`` outside legends) or of an axis tick
(``transform`` of a ``g.tick``), seen by a ``MutationObserver``, minus the click's
``performance.now()`` (so: the control's message to the kernel, the frame built there,
the messages back, and the redraw). Console errors and page errors are counted per switch.

    python benchmarks/axes_switch.py [--rounds 5] [--out benchmarks/AXES.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from browser_harness import NotebookPage, launch_chromium, new_context, poll, running_jupyterlab, write_notebook

SETUP = """\
import numpy as np
from lossviz_widget import LossPlot
n = 1_000_000
steps = np.arange(n, dtype=float)
wall = 1.7e9 + steps * 0.0072
rng = np.random.default_rng(0)
plot = LossPlot(title="axes benchmark", renderer="svg")  # the SVG paths this measures (canvas: no path)
plot.extend("loss", steps, 2.0 * np.exp(-steps / 2e5) + 0.05 + 0.02 * np.abs(rng.standard_normal(n)), wall)
plot.extend("val_loss", steps[::10_000], 2.1 * np.exp(-steps[::10_000] / 2e5) + 0.06, wall[::10_000])
plot.extend("acc", steps, np.minimum(0.99, 0.3 + 0.7 * steps / n + 0.02 * rng.standard_normal(n)), wall)
plot.extend("learning_rate", steps[::100], 1e-3 * (1 + np.cos(np.pi * steps[::100] / n)) / 2, wall[::100])
plot.flush()
plot"""

OBSERVE_JS = r"""
(root) => {
  const B = window.__axes = { last: -1 };
  new MutationObserver((records) => {
    for (const r of records) {
      const el = r.target;
      if ((r.attributeName === 'd' && el.matches && el.matches('path.line') && !el.closest('.g_legend'))
          || (r.attributeName === 'transform' && el.matches && el.matches('g.tick'))) {
        B.last = performance.now();
      }
    }
  }).observe(root, { attributes: true, subtree: true, attributeFilter: ['d', 'transform'] });
}
"""


def _switches(nb: NotebookPage) -> list[tuple[str, object]]:
    bar = nb.cell(0).locator(".lossviz-controls")

    def toggle(label: str):
        return lambda: bar.locator("button", has_text=re.compile(rf"^\s*{label}\s*$")).click()

    x_select = bar.locator("select").filter(has=nb.page.locator("option", has_text="wall time"))

    def x_axis(label: str):
        return lambda: x_select.select_option(label=label)

    return [("log y on", toggle("log y")), ("log y off", toggle("log y")), ("log x on", toggle("log x")),
            ("log x off", toggle("log x")), ("x: wall time", x_axis("wall time")),
            ("x: relative time", x_axis("relative time")), ("x: step", x_axis("step"))]


def measure(rounds: int) -> dict[str, dict[str, list[float] | int]]:
    from playwright.sync_api import sync_playwright

    results: dict[str, dict[str, list[float] | int]] = {}
    with running_jupyterlab() as server, sync_playwright() as pw:
        browser = launch_chromium(pw)
        context = new_context(browser)
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        write_notebook(server.root_dir / "axes.ipynb", [SETUP])
        nb = NotebookPage(page, server)
        nb.open("axes.ipynb")
        nb.run_all_cells()
        nb.wait_cell_done(0, timeout=300)
        widget = nb.cell(0).locator(".lossviz").first
        poll(lambda: widget.locator(".lossviz-panel").count() == 3, 60, "no panels")
        page.wait_for_timeout(2000)
        widget.evaluate(OBSERVE_JS)
        for _ in range(rounds):
            for name, act in _switches(nb):
                before = len(errors)
                start = page.evaluate("() => { window.__axes.last = -1; return performance.now(); }")
                act()
                page.wait_for_timeout(6000)
                last = page.evaluate("() => window.__axes.last")
                entry = results.setdefault(name, {"settled_ms": [], "errors": 0})
                if last > start:
                    entry["settled_ms"].append(last - start)  # type: ignore[union-attr]
                entry["errors"] = int(entry["errors"]) + len(errors) - before  # type: ignore[call-overload]
        context.close()
        browser.close()
    return results


def _load() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def report(results: dict[str, dict[str, list[float] | int]], rounds: int, load_before: str, load_after: str) -> str:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    lines = [
        "# Axis switches at 1e6 points",
        "",
        "`python benchmarks/axes_switch.py` (method: its docstring). A plot of 1e6-point `loss` and `acc`,",
        "`val_loss` every 10,000 steps and `learning_rate` every 100, in JupyterLab + headless Chromium;",
        f"each control switched {rounds} times with the kernel idle. **settled**: click to the last redraw of a",
        "line or axis tick (median, min-max); **errors**: browser console errors and page errors over all",
        "switches of that control (the issue: ~10,000 per log-y toggle, 12 pairs per x-axis switch).",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs shared with other work, load average "
        f"{load_before} before and {load_after} after; Python {platform.python_version()}; commit {commit}.",
        "",
        "| switch | settled (ms, median) | min-max | errors |",
        "|---|---:|---:|---:|",
    ]
    for name, entry in results.items():
        ms = sorted(entry["settled_ms"])  # type: ignore[arg-type]
        span = f"{ms[0]:.0f}-{ms[-1]:.0f}" if ms else "-"
        median = f"{statistics.median(ms):.0f}" if ms else "-"
        lines.append(f"| {name} | {median} | {span} | {entry['errors']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "AXES.md")
    args = parser.parse_args()
    load_before = _load()
    t0 = time.monotonic()
    results = measure(args.rounds)
    text = report(results, args.rounds, load_before, _load())
    args.out.write_text(text)
    print(text, f"({time.monotonic() - t0:.0f} s)")


if __name__ == "__main__":
    main()
