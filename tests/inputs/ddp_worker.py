"""One rank of the 2-process ``gloo`` job that tests/test_distributed.py starts.

Usage: ``python ddp_worker.py RANK WORLD_SIZE PORT OUT_DIR``. Every rank runs the same
phases with rank-dependent values and writes ``OUT_DIR/rank<RANK>.json``: the plots'
histories (NaN/Inf as strings), the errors each phase raised, and whether this process
created any widget.
"""

from __future__ import annotations

import json
import math
import os
import sys
from datetime import timedelta

import ipywidgets
import torch
import torch.distributed as dist

from lossviz_widget import LossPlot
from lossviz_widget.distributed import DistributedLogger


def encode(x: float) -> float | str:
    return x if math.isfinite(x) else str(x)


def history(logger: DistributedLogger) -> dict | None:
    if logger.plot is None:
        return None
    return {name: {"steps": h.steps.tolist(), "values": [encode(v) for v in h.values]}
            for name, h in logger.plot.history.items()}


def main() -> None:
    rank, world, port, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    made: list[str] = []
    widgets: list[str] = []  # every ipywidgets widget this rank constructs
    ipywidgets.Widget.on_widget_constructed(lambda w: widgets.append(type(w).__name__))

    def make_plot(title: str):
        return lambda: made.append(title) or LossPlot(title=title)

    mean = DistributedLogger(make_plot("mean"))  # made before the process group: looked up per call
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=port)
    dist.init_process_group("gloo", rank=rank, world_size=world, timeout=timedelta(seconds=30))
    result: dict = {"errors": {}}
    # mean: a tensor and a float, names in a different order on each rank, NaN and Inf on one rank
    for step in range(5):
        loss = torch.tensor(float("nan") if (rank == 1 and step == 2) else (1.0 + 2 * rank) * (step + 1))
        acc = math.inf if (rank == 0 and step == 3) else 0.1 * rank + step
        if rank == 0:
            mean.log({"loss": loss}, acc=acc, step=10 * step)
        else:
            mean.log(acc=acc, loss=loss, step=10 * step)
    # each reduction on non-finite values: (rank 0, rank 1) per step
    pairs = [(1.0, 5.0), (math.nan, 2.0), (math.inf, 3.0), (-math.inf, math.inf), (-2.5, math.nan)]
    for op in ("sum", "max", "min"):
        logger = DistributedLogger(make_plot(op), reduce=op)
        for step, pair in enumerate(pairs):
            logger.log(x=pair[rank], step=step)
        result[op] = history(logger)
    # mismatched names, then a bad value: every rank raises, and the group stays usable
    checked = DistributedLogger(make_plot("checked"))
    for phase, value in (("names", {"loss" if rank == 0 else "lost": 1.0}),
                         ("value", {"loss": 2.0 if rank == 0 else "oops"})):
        try:
            checked.log(value, step=0)
        except Exception as exc:
            result["errors"][phase] = f"{type(exc).__name__}: {exc}"
    checked.log(loss=7.0 + rank, step=1)
    # more metrics than one chunk holds: a second all_reduce after the check
    many = DistributedLogger(make_plot("many"))
    many.log({f"m{i:02d}": 100.0 * rank + i for i in range(70)}, step=0)

    result.update(mean=history(mean), checked=history(checked), many=history(many), made=made,
                  widgets=len(widgets), rank=mean.rank,
                  world_size=mean.world_size, plotting=mean.plotting)
    dist.destroy_process_group()
    with open(os.path.join(out, f"rank{rank}.json"), "w", encoding="utf-8") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
