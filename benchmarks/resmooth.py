"""Re-smoothing a long run: this checkout beside an earlier revision, side by side.

Usage: ``nice -n 10 python benchmarks/resmooth.py [--steps 1e7] [--before REV] [--rounds 3]``

What ``benchmarks/workloads.py`` times as "re-smoothing" (``plot.smoothing = w`` then
``plot.flush()``: every series smoothed again from its raw values at the new weight, and its
smoothed min/max pyramid rebuilt), without the kernel around it: a ``LossPlot`` that is not
displayed holds 4 metrics of ``--steps`` steps (``extend``, the curves of ``workloads.py``), and
the weight goes 0.6 → 0.9 → 0.95 → 0.8. Each revision runs in a process of its own (its tree
extracted with ``git archive``: the package reads its front end from ``js/``), the two
alternating ``--rounds`` times; the table gives the medians over all rounds of the first change
(0.6 → 0.9) and of the others, wall and CPU time (all threads: the re-smooth runs on helper
threads too), with the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WEIGHTS = (0.9, 0.95, 0.8)


def child(steps: int) -> dict[str, list[float]]:
    """In a fresh process: the plot, then the timed weight changes (ms, wall and CPU)."""
    import numpy as np

    from lossviz_widget import LossPlot

    i = np.arange(steps, dtype=np.float64)
    loss = 2.0 / (1.0 + i / steps * 20.0) + 0.2 * np.random.default_rng(0).random(steps)
    plot = LossPlot(title="resmooth")
    for name, v in (("loss", loss), ("val_loss", loss * 1.1), ("acc", 1.0 - 0.4 * loss),
                    ("lr", 0.001 * (1.0 - i / steps))):
        plot.extend(name, i, v)
    plot.flush()  # smoothed at the default weight (0.6), as after a training loop
    wall, cpu = [], []
    for w in WEIGHTS:
        c, t = time.process_time(), time.perf_counter()
        plot.smoothing = w
        plot.flush()
        wall.append((time.perf_counter() - t) * 1e3)
        cpu.append((time.process_time() - c) * 1e3)
    plot.close()
    return {"wall": wall, "cpu": cpu}


def run_at(tree: Path, steps: int) -> dict[str, list[float]]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run([sys.executable, __file__, "--child", str(steps)], env=env, capture_output=True,
                         text=True, check=True).stdout
    result: dict[str, list[float]] = json.loads(out.splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=float, default=1e7)
    ap.add_argument("--before", default="8baf25c", help="the revision run beside this checkout ('' for none)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--child", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child)))
        return 0
    steps = int(args.steps)
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"this checkout": REPO}
        if args.before:
            archive = subprocess.run(["git", "-C", str(REPO), "archive", args.before],
                                     capture_output=True, check=True).stdout
            subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
            trees = {f"`{args.before}` (before)": Path(tmp), **trees}
        got: dict[str, list[dict[str, list[float]]]] = {name: [] for name in trees}
        for _ in range(args.rounds):
            for name, tree in trees.items():
                got[name].append(run_at(tree, steps))
    end = os.getloadavg()
    print(f"{steps:,} steps x 4 metrics, {args.rounds} rounds alternating, {os.cpu_count()} cores; "
          f"load average {load[0]:.2f} at the start, {end[0]:.2f} at the end\n")
    print("| revision | 0.6 → 0.9, wall (CPU) | other changes, median wall (CPU) | all wall times, ms |")
    print("|---|---|---|---|")
    for name, runs in got.items():
        first = [r["wall"][0] for r in runs]
        first_cpu = [r["cpu"][0] for r in runs]
        rest = [x for r in runs for x in r["wall"][1:]]
        rest_cpu = [x for r in runs for x in r["cpu"][1:]]
        every = ", ".join(f"{x:.0f}" for r in runs for x in r["wall"])
        print(f"| {name} | {statistics.median(first):.0f} ms ({statistics.median(first_cpu):.0f}) | "
              f"{statistics.median(rest):.0f} ms ({statistics.median(rest_cpu):.0f}) | {every} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
