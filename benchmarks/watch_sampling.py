"""Would cheaper, sampled statistics be an honest default for ``watch(every=1)``? Their error and saving.

Trains the test models (the digits MLP of ``tests/features/test_watch.py``'s update-sample test,
512-wide, and a CNN on digits; both ReLU, Adam) and at each step compares the exact values
``watch()`` reports with cheaper estimates of them:

* weight norm ‖θ‖ from every 61st element of a tensor of 65,536 or more, scaled by
  sqrt(elements / sampled) (what ``watch()`` already does for the update ‖Δθ‖);
* activation mean and std of each ReLU output from every ``k``-th row of the batch (``k`` = 4, 8);
  the dead share needs every row (a unit is dead only if it is zero for all of them), so it is not
  sampled;

and times, in the training loop of :mod:`watch_overhead` (thread CPU, minimum and median over
steps), what each estimate saves against the exact operation on the 12-layer MLP and the small CNN.
Prints relative errors (median, 95th percentile, maximum over steps and layers).

    PYTHONPATH=. python benchmarks/watch_sampling.py [--steps 100]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn
from watch_overhead import MODELS

from lossviz_widget.watch.collect import _update_sample


def digits_models() -> dict[str, nn.Module]:
    torch.manual_seed(3)
    mlp = nn.Sequential(nn.Linear(64, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 256),
                        nn.ReLU(), nn.Linear(256, 10))
    cnn = nn.Sequential(nn.Unflatten(1, (1, 8, 8)), nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
                        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                        nn.Linear(32 * 16, 64), nn.ReLU(), nn.Linear(64, 10))
    return {"digits MLP 64-512-512-256-10": mlp, "digits CNN": cnn}


def errors(model: nn.Module, steps: int, ks: tuple[int, ...]) -> dict[str, list[float]]:
    """Relative errors of each estimate, per step and tensor / layer."""
    x, y = load_digits(return_X_y=True)
    x, y = torch.tensor(x / 16.0, dtype=torch.float32), torch.tensor(y)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    outs: dict[int, torch.Tensor] = {}
    for i, m in enumerate(m for m in model.modules() if isinstance(m, nn.ReLU)):
        m.register_forward_hook(lambda m, a, o, i=i: outs.__setitem__(i, o.detach()))
    err: dict[str, list[float]] = {"weight norm (stride 61)": []}
    for k in ks:
        err[f"activation mean (every {k}th row)"] = []
        err[f"activation std (every {k}th row)"] = []
    g = torch.Generator().manual_seed(0)
    for _ in range(steps):
        idx = torch.randint(0, len(x), (128,), generator=g)
        opt.zero_grad()
        nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
        opt.step()
        with torch.no_grad():
            for p in model.parameters():
                s = _update_sample(p.detach())
                if s.numel() < p.numel():
                    est = s.double().norm() * (p.numel() / s.numel()) ** 0.5
                    err["weight norm (stride 61)"].append(abs(est.item() / p.double().norm().item() - 1))
            for o in outs.values():
                o = o.double()
                mean, std = o.mean().item(), o.std().item()
                for k in ks:
                    r = o[::k]  # every k-th sample of the batch
                    if mean:
                        err[f"activation mean (every {k}th row)"].append(abs(r.mean().item() / mean - 1))
                    if std:
                        err[f"activation std (every {k}th row)"].append(abs(r.std().item() / std - 1))
    return err


def savings(make: Callable[[], Any], steps: int, ks: tuple[int, ...]) -> dict[str, list[float]]:
    """Thread-CPU seconds per step of each exact operation and its estimate, in a real training loop."""
    torch.manual_seed(0)
    model, batch = make()
    x, y = batch()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    params = list(model.parameters())
    samples = [_update_sample(p.detach()) for p in params]
    outs: dict[int, torch.Tensor] = {}
    for i, m in enumerate(m for m in model.modules() if isinstance(m, nn.ReLU)):
        m.register_forward_hook(lambda m, a, o, i=i: outs.__setitem__(i, o.detach()))
    times: dict[str, list[float]] = {}

    def timed(part: str, work: Callable[[], Any]) -> None:
        start = time.thread_time()
        work()
        times.setdefault(part, []).append(time.thread_time() - start)

    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(x), y)
        with torch.no_grad():
            o = list(outs.values())
            timed("activation 2-norms, every row", lambda o=o: torch._foreach_norm(o, 2))
            for k in ks:
                timed(f"activation 2-norms, every {k}th row",
                      lambda o=o, k=k: torch._foreach_norm([a[::k] for a in o], 2))
        loss.backward()
        opt.step()
        with torch.no_grad():
            timed("weight norms, exact", lambda: torch._foreach_norm(params, 2))
            timed("weight norms, stride 61", lambda: torch._foreach_norm(samples, 2))
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=100)
    args = ap.parse_args()
    torch.set_num_threads(1)
    ks = (4, 8)
    for name, model in digits_models().items():
        print(f"{name}: relative error over {args.steps} steps (median / 95th percentile / max)")
        for part, v in errors(model, args.steps, ks).items():
            if v:
                a = np.asarray(v)
                print(f"  {part:<40} {np.median(a):8.2%} {np.percentile(a, 95):8.2%} {a.max():8.2%}")
    for name, make in MODELS.items():
        print(f"{name}: ms per step, thread CPU (min / median over {args.steps} steps)")
        for part, v in savings(make, args.steps + 10, ks).items():
            v = v[10:]
            print(f"  {part:<40} {1e3 * min(v):7.3f} {1e3 * statistics.median(v):7.3f}")


if __name__ == "__main__":
    main()
