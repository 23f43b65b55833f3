"""The floor under ``watch(every=1)``: the reductions exact values need, alone, inside a real loop.

No hooks, no watcher, no plot: the training loop of :mod:`watch_overhead` (Adam, fixed batch,
one thread) runs the same tensor operations a sampled step makes, at the same points of the step
(so with the caches as training leaves them), each timed with ``time.thread_time``:

* after the forward pass: per ReLU output its per-unit sums, then the fused ord-1 / ord-0 norms
  of those sums and the fused 2-norm of the outputs (activation mean, std, dead share);
* before ``optimizer.step()``: the copy of the update samples (every 61st element of a tensor of
  65,536 or more, as :mod:`lossviz_widget.watch.collect` takes them);
* after it: the subtraction giving the update, and one fused 2-norm of gradients, weights and
  update (the exact gradient and weight norms are two full passes over the parameters).

What ``watch()`` costs beyond this is its own Python and PyTorch dispatch (hooks, the row, the
hand-over): compare with ``watch_hooks.py``. Prints per model the minimum and median over steps
of each part, the step's parts without watching, and the floor's share of the step.

    PYTHONPATH=. python benchmarks/watch_floor.py [--steps 300]
"""

from __future__ import annotations

import argparse
import collections
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from watch_overhead import MODELS

from lossviz_widget.watch.collect import _update_sample


class Reductions:
    """The floor's tensor operations on ``model`` (its ReLU outputs kept by forward hooks), in three
    parts called at their points of a training step; ``timed(part, work)`` runs each operation
    (by default just runs it)."""

    def __init__(self, model: nn.Module, timed: Callable[[str, Callable[[], Any]], Any] = lambda _, w: w()) -> None:
        self.params = list(model.parameters())
        self.samples = [_update_sample(p.detach()) for p in self.params]
        self.before = [s.clone() for s in self.samples]
        self.outs: dict[int, torch.Tensor] = {}
        self.timed = timed
        relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
        self.handles = [m.register_forward_hook(lambda m, i, o, k=k: self.outs.__setitem__(k, o.detach()))
                        for k, m in enumerate(relus)]

    def after_forward(self) -> None:
        timed = self.timed
        with torch.no_grad():
            o = list(self.outs.values())
            sums = timed("activations: per-unit sums", lambda: [a.sum(dim=(0, *range(2, a.dim()))) for a in o])
            timed("activations: 3 fused norms", lambda: (
                torch._foreach_norm(sums, 1), torch._foreach_norm(sums, 0), torch._foreach_norm(o, 2)))
        # let the outputs go, as watch() does: kept until the next forward pass, they would hold
        # memory the allocator reuses otherwise (a fresh mapping and its page faults each step)
        self.outs.clear()

    def before_step(self) -> None:
        with torch.no_grad():
            self.timed("update sample: copy", lambda: torch._foreach_copy_(self.before, self.samples))

    def after_step(self) -> None:
        timed = self.timed
        with torch.no_grad():
            timed("update sample: subtract", lambda: torch._foreach_sub_(self.before, self.samples))
            timed("gradient, weight, update norms", lambda: torch._foreach_norm(
                [*(p.grad for p in self.params), *self.params, *self.before], 2))

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


def floor(make: Callable[[], Any], steps: int) -> dict[str, list[float]]:
    """Seconds per step of each part (training parts and the reductions), over ``steps`` steps."""
    torch.manual_seed(0)
    model, batch = make()
    x, y = batch()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    times: collections.defaultdict[str, list[float]] = collections.defaultdict(list)

    def timed(part: str, work: Callable[[], Any]) -> Any:
        start = time.thread_time()
        out = work()
        times[part].append(time.thread_time() - start)
        return out

    ops = Reductions(model, timed)
    for _ in range(steps):
        timed("zero_grad", lambda: opt.zero_grad(set_to_none=True))
        loss = timed("forward", lambda: nn.functional.cross_entropy(model(x), y))
        ops.after_forward()
        timed("backward", loss.backward)
        ops.before_step()
        timed("optimizer step", opt.step)
        ops.after_step()
    return times


TRAINING = ("zero_grad", "forward", "backward", "optimizer step")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300)
    args = ap.parse_args()
    torch.set_num_threads(1)
    for name, make in MODELS.items():
        times = {part: v[20:] for part, v in floor(make, args.steps + 20).items()}  # 20 warm-up steps
        print(f"{name} (ms, thread CPU, over {args.steps} steps)")
        print(f"  {'part':<40} {'min':>7} {'median':>7}")
        for part, v in times.items():
            print(f"  {part:<40} {1e3 * min(v):7.3f} {1e3 * statistics.median(v):7.3f}")
        for label, parts in (("training step (no reductions)", TRAINING),
                             ("the reductions (the floor)", [p for p in times if p not in TRAINING])):
            per_step = [sum(col) for col in zip(*(times[p] for p in parts), strict=True)]
            print(f"  {label:<40} {1e3 * min(per_step):7.3f} {1e3 * statistics.median(per_step):7.3f}")


if __name__ == "__main__":
    main()
