"""Where a sampled ``watch()`` step's time goes: the training thread's CPU time in each hook.

Wraps the collector's hook methods (and the watcher's hand-over of a row, which logs the total
gradient norm) with ``time.thread_time`` and trains the two models of
:mod:`watch_overhead` with ``watch(every=1)``, in blocks alternating with unwatched ones; prints,
per model, the minimum over blocks of each part's milliseconds per step (the minimum: the
machine's other users only ever add time). Parts that a version of the code does not have are
left out, so the same script profiles an older checkout (``PYTHONPATH=old/tree``) for a
before/after comparison. Nested parts are included in their callers (``_emit`` and ``on_row``
in ``_post_step``).

    PYTHONPATH=. python benchmarks/watch_hooks.py [--blocks 6] [--steps 50]
"""

from __future__ import annotations

import argparse
import collections
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from watch_overhead import MODELS

from lossviz_widget import LossPlot
from lossviz_widget.watch import collect, watcher

# (class, method) -> the part's name in the output
PARTS = {(collect.Collector, "_pre_step"): "optimizer pre-step hook",
         (collect.Collector, "_post_step"): "optimizer post-step hook",
         (collect.Collector, "_emit"): "  of which: packing the row",
         (watcher.Watcher, "_on_row"): "  of which: handing it over (logs the total)",
         (collect.Collector, "_reduce_activations"): "activation statistics (forward end)"}
ACTIVATION_HOOKS = "activation module hooks"

spent: collections.defaultdict[str, float] = collections.defaultdict(float)


def timed(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.thread_time()
        try:
            return method(*args, **kwargs)
        finally:
            spent[name] += time.thread_time() - start

    return wrapper


def instrument() -> None:
    for (cls, method), name in PARTS.items():
        if hasattr(cls, method):
            setattr(cls, method, timed(name, getattr(cls, method)))
    make_hook = collect.Collector._activation_hook
    collect.Collector._activation_hook = lambda self, i: timed(ACTIVATION_HOOKS, make_hook(self, i))  # type: ignore[method-assign]


def profile(blocks: int, steps: int) -> dict[str, dict[str, float]]:
    out = {}
    for name, make in MODELS.items():
        torch.manual_seed(0)
        model, batch = make()
        x, y = batch()
        opt = torch.optim.Adam(model.parameters(), lr=1e-4)
        plot = LossPlot()
        per_block: collections.defaultdict[str, list[float]] = collections.defaultdict(list)
        step = 0
        for _ in range(blocks):
            for watched in (False, True):
                if watched:
                    plot.watch(model, opt, every=1)
                for i in range(steps + 2):
                    if i == 2:
                        spent.clear()
                        start = time.thread_time()
                    opt.zero_grad(set_to_none=True)
                    loss = nn.functional.cross_entropy(model(x), y)
                    loss.backward()
                    opt.step()
                    plot.log(loss=loss, step=step)
                    step += 1
                per_block["step, watched" if watched else "step, not watched"].append(
                    1e3 * (time.thread_time() - start) / steps)
                if watched:
                    plot.unwatch()
                    for part, seconds in spent.items():
                        per_block[part].append(1e3 * seconds / steps)
        plot.close()
        out[name] = {part: min(v) for part, v in per_block.items()}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blocks", type=int, default=6)
    ap.add_argument("--steps", type=int, default=50)
    args = ap.parse_args()
    torch.set_num_threads(1)
    instrument()
    for name, parts in profile(args.blocks, args.steps).items():
        print(f"{name} (ms per sampled step, thread CPU, min over {args.blocks} blocks of {args.steps})")
        for part, ms in parts.items():
            print(f"  {part:<48} {ms:7.3f}")


if __name__ == "__main__":
    main()
