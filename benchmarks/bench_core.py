"""Core costs of lossviz_widget: per-log() cost (frames included) and bytes sent per frame.

Run: .venv/bin/python benchmarks/bench_core.py   (writes benchmarks/RESULTS-core.md)

* per-call cost: 4 Python floats per log(), the render thread running as in a
  kernel (frames included), against a minimal logger appending (step, value) to
  a dict of lists, measured in the same run; median over repeats.
* bytes per frame: every widget state message is captured at the point where
  ipywidgets hands it to the comm (JSON + binary buffers), so this is what the
  browser would receive. Measured for a steady-state frame (one new step after
  N logged steps) and for the first full frame.

The side-by-side comparison against the peers (livelossplot, a naive bqplot
loop) through a real kernel and browser is the scale issue's benchmark suite.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import ipywidgets

from lossviz_widget import LossPlot

REPEATS = 5
CALLS = 200_000


def minimal_logger_cost(calls: int) -> float:
    store: dict[str, list] = {}

    def log(step, **kw):
        for k, v in kw.items():
            store.setdefault(k, []).append((step, v))

    t = time.perf_counter()
    for i in range(calls):
        log(i, loss=0.5, acc=0.9, val_loss=0.6, lr=1e-3)
    return (time.perf_counter() - t) / calls


def lossplot_cost(calls: int) -> tuple[float, int]:
    plot = LossPlot()
    plot._live = True  # as inside a kernel: frames render on the background thread meanwhile
    t = time.perf_counter()
    for i in range(calls):
        plot.log(loss=0.5, acc=0.9, val_loss=0.6, lr=1e-3, step=i)
    elapsed = time.perf_counter() - t
    frames = plot._scheduler.frames
    plot.close()
    return elapsed / calls, frames


class Wire:
    """Captures what widgets send: JSON size plus binary buffer sizes."""

    def __init__(self) -> None:
        self.bytes = 0
        self.messages = 0
        self._orig = ipywidgets.Widget._send

    def __enter__(self):
        wire = self

        def _send(widget, msg, buffers=None):
            wire.messages += 1
            wire.bytes += len(json.dumps(msg, default=str)) + sum(memoryview(b).nbytes for b in buffers or ())
            return wire._orig(widget, msg, buffers)

        ipywidgets.Widget._send = _send
        return self

    def __exit__(self, *exc):
        ipywidgets.Widget._send = self._orig


def frame_bytes(n_steps: int) -> tuple[int, int, int]:
    plot = LossPlot()
    for i in range(n_steps):
        plot.log(loss=1.0 / (i + 1), acc=i / n_steps, val_loss=0.5, lr=1e-3, step=i)
    with Wire() as first:
        plot.flush()
    plot.log(loss=0.1, acc=0.9, val_loss=0.5, lr=1e-3, step=n_steps)
    with Wire() as steady:
        plot.flush()
    plot.close()
    return first.bytes, steady.bytes, steady.messages


def main() -> None:
    rows = []
    base = statistics.median(minimal_logger_cost(CALLS) for _ in range(REPEATS))
    runs = [lossplot_cost(CALLS) for _ in range(REPEATS)]
    ours = statistics.median(r[0] for r in runs)
    frames = statistics.median(r[1] for r in runs)
    rows.append("| log() of 4 floats | cost per call (median of %d x %d calls) |" % (REPEATS, CALLS))
    rows.append("|---|---|")
    rows.append(f"| minimal logger (dict of lists) | {base * 1e6:.2f} us |")
    rows.append(f"| LossPlot.log, frames included ({frames:.0f} frames) | {ours * 1e6:.2f} us ({ours / base:.2f}x) |")
    rows.append("")
    rows.append("| logged steps (4 metrics) | first frame | steady frame (1 new step) | messages per steady frame |")
    rows.append("|---|---|---|---|")
    for n in (1_000, 100_000, 1_000_000):
        first, steady, msgs = frame_bytes(n)
        rows.append(f"| {n:,} | {first / 1024:.1f} KiB | {steady / 1024:.1f} KiB | {msgs} |")
    text = "\n".join(rows)
    print(text)
    out = Path(__file__).with_name("RESULTS-core.md")
    out.write_text(f"# Core costs\n\nPython {sys.version.split()[0]}, {time.strftime('%Y-%m-%d')}\n\n{text}\n")


if __name__ == "__main__":
    main()
