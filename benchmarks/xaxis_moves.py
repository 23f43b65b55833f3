"""How often the shared x axis moves while a run grows live (kernel side, no browser).

Each move of the x scale's bounds makes bqplot redraw every panel's SVG axes and tick labels in the
browser, so this counts, per second of a live window, the changes of the x scale's ``max``
and of the x axes' tick values that a ``LossPlot`` sends (and, for comparison, the moves of the
panels' y scales, all panels together), while ``steps_per_s`` steps of 4
metrics are logged (as ``benchmarks/browser.py``'s live windows do) and a frame is drawn every
0.1 s (``flush()``: the render thread's default 10 frames/s). Also reports the widest empty share
of the x axis right of the data seen in the window (what a user sees as blank room).

    PYTHONPATH=$PWD .venv/bin/python benchmarks/xaxis_moves.py [--sizes 1000,100000,1000000]
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import workloads

__all__ = ["measure_moves"]


def _scales(plot: Any) -> tuple[Any, list[Any], list[Any]]:
    """The shared x scale, every panel's x axis, every panel's y scale."""
    axes = [a for f in plot.figures.values() for a in f.axes if a.orientation != "vertical"]
    ys = [a.scale for f in plot.figures.values() for a in f.axes if a.orientation == "vertical"]
    return axes[0].scale, axes, ys


def measure_moves(n: int, seconds: float = 5.0, steps_per_s: int = 500, fps: float = 10.0) -> dict[str, float]:
    """Grow a run to ``n`` steps, then log ``steps_per_s`` for ``seconds`` with a frame every ``1/fps`` s."""
    from lossviz_widget import LossPlot

    plot = LossPlot(title="moves")
    total = 10**7
    for i in range(n):
        plot.log(workloads.values_at(i, 1.0 / total), step=i)
    plot.flush()
    scale, axes, ys = _scales(plot)
    moves = {"bounds": 0, "ticks": 0, "y": 0}

    def count(what: str) -> Any:
        return lambda change: moves.__setitem__(what, moves[what] + 1)

    scale.observe(count("bounds"), names=["max"])
    axes[0].observe(count("ticks"), names=["tick_values"])  # every panel's x axis gets the same ticks
    for y in ys:
        y.observe(count("y"), names=["min", "max"])  # min and max counted apart (a move of both: 2)
    empty: list[float] = []
    step = n
    t0 = time.monotonic()
    next_frame = t0
    while (now := time.monotonic()) - t0 < seconds:
        due = n + int((now - t0) * steps_per_s)
        while step < due:
            plot.log(workloads.values_at(step, 1.0 / total), step=step)
            step += 1
        if now >= next_frame:
            plot.flush()
            next_frame += 1.0 / fps
            lo, hi = float(scale.min), float(scale.max)
            empty.append((hi - (step - 1)) / (hi - lo))
        time.sleep(0.005)
    elapsed = time.monotonic() - t0
    plot.close()
    return {"n": n, "bounds_per_s": moves["bounds"] / elapsed, "ticks_per_s": moves["ticks"] / elapsed,
            "y_per_s": moves["y"] / elapsed,
            "empty_max": max(empty), "empty_median": statistics.median(empty), "frames": len(empty)}


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,100000,1000000")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    print("| logged steps at start | x bounds moves/s | x tick changes/s | empty share right of the data: "
          "median, max | y min/max changes/s (all panels, counted apart) | frames | windows |")
    print("|---|---|---|---|---|---|---|")
    for size in (int(float(s)) for s in a.sizes.split(",")):
        rs = [measure_moves(size, a.seconds) for _ in range(a.repeats)]

        def med(k: str, rs: list[dict[str, float]] = rs) -> float:
            return statistics.median(r[k] for r in rs)

        print(f"| {size:,} | {med('bounds_per_s'):.1f} | {med('ticks_per_s'):.1f} | "
              f"{med('empty_median'):.0%}, {med('empty_max'):.0%} | {med('y_per_s'):.1f} | {med('frames'):.0f} | "
              f"{len(rs)} |")
