"""Step-time overhead of ``LossPlot.watch`` on CPU: a small CNN and a 12-layer MLP.

For each model, blocks of training steps run without watching, with ``watch(every=1)`` and with
``watch(every=10)``, interleaved in a shuffled order within each round, all in this process
(same threads, same caches, same load from the machine's other users). Per block and step, three
clocks: wall time; the training thread's CPU time (``time.thread_time``: the hooks' own cost,
least disturbed by other processes on a shared machine); and the process's CPU time
(``time.process_time``: that plus the frame thread, which fetches the values, runs the rules and
builds the heatmaps). The overhead is the median over rounds of each block's time against the
unwatched block of the same round. Every configuration logs the loss to a
``LossPlot`` (not displayed) each step, so the baseline includes what a plot costs anyway; the
watched ones also run the frame thread (fetch, rules, heatmaps) as they would live.

    python benchmarks/watch_overhead.py [--rounds 20] [--steps 200] [--threads 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from lossviz_widget import LossPlot

CONFIGS: dict[str, dict[str, Any] | None] = {"none": None, "every=1": {"every": 1}, "every=10": {"every": 10}}


def small_cnn() -> tuple[nn.Module, Callable[[], tuple[torch.Tensor, torch.Tensor]]]:
    """Two conv layers and two linear ones on 28 x 28 images (MNIST-sized), batch 64."""
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(32 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10),
    )
    x, y = torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,))
    return model, lambda: (x, y)


def mlp12() -> tuple[nn.Module, Callable[[], tuple[torch.Tensor, torch.Tensor]]]:
    """Twelve Linear(256, 256) + ReLU layers and a classifier, batch 128."""
    layers: list[nn.Module] = [nn.Linear(64, 256), nn.ReLU()]
    for _ in range(11):
        layers += [nn.Linear(256, 256), nn.ReLU()]
    model = nn.Sequential(*layers, nn.Linear(256, 10))
    x, y = torch.randn(128, 64), torch.randint(0, 10, (128,))
    return model, lambda: (x, y)


MODELS = {"small CNN": small_cnn, "12-layer MLP": mlp12}


CLOCKS = {"wall": time.perf_counter, "thread CPU": time.thread_time, "process CPU": time.process_time}


def block(model: nn.Module, batch: Callable[[], tuple[torch.Tensor, torch.Tensor]], watch: dict[str, Any] | None,
          steps: int, ops: Any = None) -> dict[str, float]:
    """Seconds per training step by each of :data:`CLOCKS` over ``steps`` steps (after 3 untimed
    ones), with ``watch`` options or none; ``ops`` (say ``watch_floor.Reductions``), when given,
    has its ``after_forward``, ``before_step`` and ``after_step`` called in each step. The clocks
    stop when the loop ends: the plot's ``close()`` (a last diagnostics pass and heatmap build,
    once per plot whatever the length of the run) is not a per-step cost, and on a short block it
    would weigh as one; the frames drawn while the loop runs are counted by the process clock."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    plot = LossPlot()
    if watch is not None:
        plot.watch(model, opt, **watch)
    x, y = batch()

    def step(i: int) -> None:
        opt.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(x), y)
        if ops is not None:
            ops.after_forward()
        loss.backward()
        if ops is not None:
            ops.before_step()
        opt.step()
        if ops is not None:
            ops.after_step()
        plot.log(loss=loss, step=i)

    for i in range(3):
        step(i)
    start = {k: clock() for k, clock in CLOCKS.items()}
    for i in range(3, 3 + steps):
        step(i)
    wall = time.perf_counter() - start["wall"]
    thread = time.thread_time() - start["thread CPU"]
    process = time.process_time() - start["process CPU"]
    plot.close()
    return {"wall": wall / steps, "thread CPU": thread / steps, "process CPU": process / steps}


def measure(rounds: int, steps: int, seed: int = 0) -> dict[str, dict[str, Any]]:
    """Per model and clock: median ms per step of each configuration, and the median (and IQR)
    over rounds of the paired overhead against the unwatched block."""
    rng = random.Random(seed)
    out: dict[str, dict[str, Any]] = {}
    for name, make in MODELS.items():
        torch.manual_seed(0)
        model, batch = make()
        times: dict[str, list[dict[str, float]]] = {c: [] for c in CONFIGS}
        for _ in range(rounds):
            order = list(CONFIGS)
            rng.shuffle(order)
            for c in order:
                times[c].append(block(model, batch, CONFIGS[c], steps))
        out[name] = {}
        for clock in CLOCKS:
            per = {c: [t[clock] for t in ts] for c, ts in times.items()}
            paired = {c: [per[c][r] / per["none"][r] - 1 for r in range(rounds)] for c in CONFIGS if c != "none"}
            out[name][clock] = {
                "step_ms": {c: 1e3 * statistics.median(v) for c, v in per.items()},
                "overhead": {c: statistics.median(v) for c, v in paired.items()},
                "overhead_iqr": {c: _iqr(v) for c, v in paired.items()},
            }
    return out


def _iqr(values: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(values, n=4)
    return q[0], q[2]


def table(results: dict[str, dict[str, Any]]) -> str:
    rows = ["| model | clock | step, no watch | every=1 | overhead every=1 (IQR) | every=10 "
            "| overhead every=10 (IQR) |",
            "|---|---|---|---|---|---|---|"]
    for name, clocks in results.items():
        for clock, r in clocks.items():
            ms, ov, iqr = r["step_ms"], r["overhead"], r["overhead_iqr"]
            cells = [name, clock, f"{ms['none']:.2f} ms"]
            for c in ("every=1", "every=10"):
                cells += [f"{ms[c]:.2f} ms", f"{ov[c]:+.1%} ({iqr[c][0]:+.1%} … {iqr[c][1]:+.1%})"]
            rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--steps", type=int, default=200, help="timed steps per block (a multiple of 10: "
                    "every=10 then samples exactly one step in ten of them)")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1: least noise on a shared box)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    results = measure(args.rounds, args.steps)
    print(f"torch {torch.__version__}, {args.threads} thread(s), {args.rounds} rounds x {args.steps} steps")
    print(table(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
