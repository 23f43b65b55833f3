"""Where ``watch()``'s time goes: the CPU time of each part, on the thread that ran it.

Wraps the collector's hook methods, the watcher's hand-over of a row (which logs the total
gradient norm) and the frame-side work (the watcher's fetch of queued rows, its heatmap
redraws, the rules, and the recorder's whole frame) with ``time.thread_time``, and trains the two
models of :mod:`watch_overhead` with ``watch(every=1)`` and ``watch(every=10)``, in blocks
alternating with unwatched ones. Prints, per model and ``every``, each part's milliseconds per
training step (amortised over all steps of the block, sampled or not) as the minimum over blocks
(the machine's other users only ever add time), split by thread: ``loop`` (the training thread:
the hooks, and frames the logging thread drew itself, see
:class:`lossviz_widget._core.scheduler.FrameScheduler`) and ``frame`` (the render thread).
Parts that a version of the code does not have are left out, so the same script profiles an
older checkout (``PYTHONPATH=old/tree``) for a before/after comparison. Nested parts are
included in their callers (indented).

    PYTHONPATH=. python benchmarks/watch_hooks.py [--blocks 6] [--steps 50]
"""

from __future__ import annotations

import argparse
import collections
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from watch_overhead import MODELS

from lossviz_widget import LossPlot
from lossviz_widget._core import recorder
from lossviz_widget.watch import collect, series, view, watcher

# (owner, attribute) -> the part's name in the output; an attribute missing in a version is skipped
PARTS: dict[tuple[Any, str], str] = {
    (collect.Collector, "_pre_step"): "optimizer pre-step hook",
    (collect.Collector, "_post_step"): "optimizer post-step hook",
    (collect.Collector, "_measure_step"): "  of which: the step's norms (into its row)",
    (collect.Collector, "_emit"): "    of which: the total and the hand-over",
    (watcher.Watcher, "_on_row"): "      of which: the watcher (logs the total)",
    (collect.Collector, "_arm"): "  of which: hooks on/off for the next step",
    (collect.Collector, "_reduce_activations"): "activation statistics (forward end)",
    (collect.Collector, "_on_forward_end"): "model forward hook (activation statistics)",
    (recorder.Recorder, "_render"): "a frame (the recorder's, with the watcher's part)",
    (watcher.Watcher, "write_new"): "  of which: watcher sink",
    (watcher.Watcher, "fetch"): "    of which: fetch and append new rows",
    (series.WatchedSeries, "append"): "      of which: host arithmetic (append)",
    (view.WatchView, "draw"): "    of which: heatmaps",
    (watcher.Watcher, "findings"): "  of which: watch rules",
}
ACTIVATION_HOOKS = "activation module hooks"

# (part, thread) -> seconds; thread is "loop" (the training thread) or "frame"
spent: collections.defaultdict[tuple[str, str], float] = collections.defaultdict(float)
MAIN = threading.main_thread()


def timed(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.thread_time()
        try:
            return method(*args, **kwargs)
        finally:
            where = "loop" if threading.current_thread() is MAIN else "frame"
            spent[name, where] += time.thread_time() - start

    return wrapper


def instrument() -> None:
    for (owner, attr), name in PARTS.items():
        if attr in vars(owner):
            setattr(owner, attr, timed(name, getattr(owner, attr)))
    if "_activation_hook" in vars(collect.Collector):
        make_hook = collect.Collector._activation_hook
        collect.Collector._activation_hook = (  # type: ignore[method-assign]
            lambda self, i: timed(ACTIVATION_HOOKS, make_hook(self, i)))


def profile(blocks: int, steps: int, every: int) -> dict[str, dict[str, tuple[float, float]]]:
    """Per model: part (with its thread) -> (minimum, median) over ``blocks`` of ms per training step."""
    order = [*PARTS.values(), ACTIVATION_HOOKS]
    out = {}
    for name, make in MODELS.items():
        torch.manual_seed(0)
        model, batch = make()
        x, y = batch()
        per_block: list[dict[str, float]] = []
        for _ in range(blocks):
            block: dict[str, float] = {}
            for watched in (False, True):
                opt = torch.optim.Adam(model.parameters(), lr=1e-4)
                plot = LossPlot()
                if watched:
                    plot.watch(model, opt, every=every)
                for i in range(steps + 3):
                    if i == 3:
                        spent.clear()
                        start, process = time.thread_time(), time.process_time()
                    opt.zero_grad(set_to_none=True)
                    loss = nn.functional.cross_entropy(model(x), y)
                    loss.backward()
                    opt.step()
                    plot.log(loss=loss, step=i)
                label = "watched" if watched else "not watched"
                block[f"step, {label} (loop thread)"] = 1e3 * (time.thread_time() - start) / steps
                block[f"step, {label} (process)"] = 1e3 * (time.process_time() - process) / steps
                if watched:
                    for (part, where), seconds in sorted(spent.items(), key=lambda kv: order.index(kv[0][0])):
                        block[f"{part} [{where}]"] = 1e3 * seconds / steps
                plot.close()
            per_block.append(block)
        parts = dict.fromkeys(k for b in per_block for k in b)  # in first-seen order
        out[name] = {p: (min(b.get(p, 0.0) for b in per_block), statistics.median(b.get(p, 0.0) for b in per_block))
                     for p in parts}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blocks", type=int, default=6)
    ap.add_argument("--steps", type=int, default=50, help="timed steps per block (a multiple of every)")
    ap.add_argument("--every", type=int, nargs="+", default=[1, 10])
    args = ap.parse_args()
    torch.set_num_threads(1)
    instrument()
    for every in args.every:
        for name, parts in profile(args.blocks, args.steps, every).items():
            print(f"{name}, every={every} (ms per training step, thread CPU, over {args.blocks} blocks "
                  f"of {args.steps})")
            print(f"  {'part':<64} {'min':>7} {'median':>7}")
            for part, (low, mid) in parts.items():
                print(f"  {part:<64} {low:7.3f} {mid:7.3f}")


if __name__ == "__main__":
    main()
