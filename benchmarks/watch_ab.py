"""Two versions of ``watch()`` against each other and against no watch, interleaved in ONE process.

The working tree's ``lossviz_widget/watch/`` ("new") and the same files at a git revision
("base", ``--base``, default ``main``) are both loaded into this process (the base's modules
under the same names, swapped into ``sys.modules`` before each block, so ``LossPlot.watch``
builds that version's watcher and hooks). Each round runs, in a shuffled order, one block per
configuration: no watch, the floor (no watch, but the tensor operations exact values need run
inline at every step: :class:`watch_floor.Reductions`), and base and new at each ``--every``; a
block is :func:`watch_overhead.block` (Adam, fixed batch, the loss logged every step, 3 untimed
steps and ``--steps`` timed ones). Per model and configuration it prints the median over rounds of the
training thread's CPU time (``time.thread_time``: what the hooks cost the loop, the clock least
disturbed by other users of a shared machine), the process's CPU time and the wall time per
step, with the interquartile range, and the paired comparisons within each round: each
configuration's overhead against no watch, new - base and new - floor (ms per step; median and
IQR over rounds). Last column: the least thread CPU per step of any block of the configuration,
and its overhead against the least of the unwatched blocks (the machine's other users only ever
add time: on a loaded machine this is the estimate least disturbed by them). The load average is
printed at the start and end.

    PYTHONPATH=. python benchmarks/watch_ab.py [--base main] [--rounds 10] [--steps 200] [--every 1 10]
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import statistics
import subprocess
import sys
import tempfile
import types
from pathlib import Path

import torch
from watch_floor import Reductions
from watch_overhead import MODELS, block

import lossviz_widget.watch

# in import order: each imports the ones before it
MODULES = ("series", "collect", "view", "watcher")
PACKAGE = "lossviz_widget.watch"


def _current() -> dict[str, types.ModuleType]:
    for name in MODULES:
        importlib.import_module(f"{PACKAGE}.{name}")
    return {name: sys.modules[f"{PACKAGE}.{name}"] for name in MODULES}


def _use(version: dict[str, types.ModuleType]) -> None:
    """Make ``version``'s modules the ones ``import lossviz_widget.watch.<name>`` finds."""
    for name, module in version.items():
        sys.modules[f"{PACKAGE}.{name}"] = module
        setattr(lossviz_widget.watch, name, module)


def load_revision(revision: str, into: Path) -> dict[str, types.ModuleType]:
    """The watch package's modules as they are at git ``revision``, loaded beside the current ones."""
    new = _current()
    loaded: dict[str, types.ModuleType] = {}
    try:
        for name in MODULES:
            source = subprocess.run(["git", "show", f"{revision}:lossviz_widget/watch/{name}.py"],
                                    capture_output=True, text=True, check=True).stdout
            path = into / f"{name}.py"
            path.write_text(source)
            spec = importlib.util.spec_from_file_location(f"{PACKAGE}.{name}", path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module  # the next modules' relative imports find this one
            spec.loader.exec_module(module)
            loaded[name] = module
    finally:
        _use(new)
    return loaded


def _load() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def _quartiles(values: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
    return q[0], statistics.median(values), q[2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default="main", help="git revision of the other version")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--every", type=int, nargs="+", default=[1, 10])
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        versions = {"base": load_revision(args.base, Path(tmp)), "new": _current()}
    configs = [("none", None, 0), ("floor", None, 0)]
    configs += [(v, version, e) for e in args.every for v, version in versions.items()]
    rng = random.Random(0)
    print(f"load at start: {_load()}; torch {torch.__version__}, {args.threads} thread(s), base {args.base}, "
          f"{args.rounds} rounds x {args.steps} steps")
    for model_name in args.models:
        torch.manual_seed(0)
        model, batch = MODELS[model_name]()
        times: dict[tuple[str, int], list[dict[str, float]]] = {(v, e): [] for v, _, e in configs}
        for _ in range(args.rounds):
            for v, version, every in rng.sample(configs, len(configs)):
                if version is not None:
                    _use(version)
                ops = Reductions(model) if v == "floor" else None
                times[v, every].append(block(model, batch, None if version is None else {"every": every}, args.steps,
                                             ops))
                if ops is not None:
                    ops.remove()
            _use(versions["new"])
        print(f"\n{model_name} (ms per step: median [IQR] over {args.rounds} rounds)")
        print(f"  {'configuration':<18} {'thread CPU':>24} {'process CPU':>24} {'wall':>24} {'thread CPU min':>15}")
        kinds = {v: version for v, version, _ in configs}
        for (v, every), ts in times.items():
            version = kinds[v]
            cells = []
            for clock in ("thread CPU", "process CPU", "wall"):
                lo, mid, hi = _quartiles([1e3 * t[clock] for t in ts])
                cells.append(f"{mid:7.3f} [{lo:6.3f}-{hi:6.3f}]")
            low = min(1e3 * t["thread CPU"] for t in ts)
            low_over = low / min(1e3 * t["thread CPU"] for t in times["none", 0]) - 1
            print(f"  {v if version is None else f'{v} every={every}':<18} " + " ".join(f"{c:>24}" for c in cells)
                  + f" {low:7.3f} ({low_over:+.1%})")
        for clock in ("thread CPU", "process CPU", "wall"):
            per = {key: [t[clock] for t in ts] for key, ts in times.items()}

            def paired(a: tuple[str, int], b: tuple[str, int], ratio: bool = False,
                       per: dict[tuple[str, int], list[float]] = per) -> str:
                pairs = zip(per[a], per[b], strict=True)
                d = _quartiles([(x / y - 1 if ratio else 1e3 * (x - y)) for x, y in pairs])
                return (f"{d[1]:+.1%} [{d[0]:+.1%} … {d[2]:+.1%}]" if ratio
                        else f"{d[1]:+.3f} ms [{d[0]:+.3f} … {d[2]:+.3f}]")

            print(f"  {clock}: floor vs none {paired(('floor', 0), ('none', 0), True)}")
            for every in args.every:
                new, base = ("new", every), ("base", every)
                print(f"  {clock}, every={every}: overhead base {paired(base, ('none', 0), True)}, "
                      f"new {paired(new, ('none', 0), True)}; new - base {paired(new, base)}"
                      f"; new - floor {paired(new, ('floor', 0))}")
    print(f"\nload at end: {_load()}")


if __name__ == "__main__":
    main()
