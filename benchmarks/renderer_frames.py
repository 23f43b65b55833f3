"""Kernel-side cost of a live frame with each renderer (the default flipped to canvas: issue 20).

In a real ipykernel (nbclient, no browser: the kernel still serialises and sends every widget
update), a ``LossPlot`` of 4 metrics (smoothing 0.6: 8 lines of at most 2,000 points) holding N
steps gets one new step per metric, then ``flush()`` builds and sends the frame; median and
quartiles of the ``flush()`` time over ``--frames`` frames, per renderer, interleaved.

    python benchmarks/renderer_frames.py [--sizes 1000,100000,1000000] [--frames 40]
        [--out benchmarks/RENDERER_FRAMES.md]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from notebook_harness import cell_text, run_notebook

CELL = """\
import json, time
import numpy as np
from lossviz_widget import LossPlot

out = {}
for n in SIZES:
    plots = {r: LossPlot(renderer=r, smoothing=0.6) for r in ("svg", "canvas")}
    steps = np.arange(n, dtype=float)
    for p in plots.values():
        for k, name in enumerate(("loss", "val_loss", "acc", "lr")):
            p.extend(name, steps, 1.0 / (1 + steps / 1000) + 0.01 * k + 0.01 * np.sin(steps), 1.7e9 + steps)
        p.flush()
    times = {r: [] for r in plots}
    for i in range(FRAMES):
        for r, p in plots.items():  # interleaved: the same load for both
            p.log(loss=0.5, val_loss=0.6, acc=0.7, lr=0.8, step=n + i)
            t = time.perf_counter()
            p.flush()
            times[r].append(time.perf_counter() - t)
    for r, p in plots.items():
        out[f"{n} {r}"] = [1e3 * v for v in times[r]]
        p.close()
print("RESULT", json.dumps(out))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,100000,1000000")
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    code = f"SIZES = {sizes!r}\nFRAMES = {args.frames}\n" + CELL
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        run = run_notebook(nb, Path(tmp), cell_timeout=1200)
    load1 = os.getloadavg()[0]
    line = next(x for x in cell_text(run.nb.cells[0]).splitlines() if x.startswith("RESULT "))
    res = json.loads(line[len("RESULT "):])
    import numpy as np

    rows = ["| logged steps | renderer | flush ms/frame, median | p25–p75 |", "|---|---|---|---|"]
    for n in sizes:
        for r in ("svg", "canvas"):
            q1, med, q3 = np.percentile(np.asarray(res[f"{n} {r}"]), [25, 50, 75])
            rows.append(f"| {n:,} | {r} | {med:.2f} | {q1:.2f}–{q3:.2f} |")
    text = (f"`python benchmarks/renderer_frames.py --sizes {args.sizes} --frames {args.frames}` "
            f"({platform.python_version()}, load average {load0:.1f} at the start, {load1:.1f} at the end)\n\n"
            + "\n".join(rows) + "\n")
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
