"""GPU check (issue 4): logging a CUDA loss tensor every step must not synchronise the device.

Run on a machine with a CUDA GPU: ``python benchmarks/gpu_sync.py``. A small MLP trains on
random data on the GPU for ``STEPS`` steps, three ways:

* ``no logging``: the bare training loop;
* ``plot.log(loss=loss)``: the tensor is handed over as it is; lossviz_widget keeps a
  reference and copies a batch of values to the host only when a frame is drawn;
* ``plot.log(loss=loss.item())``: what a naive logger does, one device sync per step.

For each it reports the median step time over ``REPEATS`` runs and the number of
synchronising CUDA calls made inside the loop, counted with
``torch.cuda.set_sync_debug_mode("warn")`` (each sync raises a UserWarning). Prints a
Markdown table.
"""

from __future__ import annotations

import statistics
import time
import warnings

import torch

from lossviz_widget import LossPlot

STEPS, REPEATS = 300, 7


def _model() -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    # sized so that the GPU's work per step (~2 ms on an H100) is about the CPU's launch time:
    # then a sync per step shows (the CPU can no longer queue the next step while the GPU runs)
    model = torch.nn.Sequential(torch.nn.Linear(1024, 8192), torch.nn.ReLU(), torch.nn.Linear(8192, 1)).cuda()
    return model, torch.optim.SGD(model.parameters(), lr=1e-3)


def run(mode: str) -> tuple[float, int]:
    model, opt = _model()
    x, y = torch.randn(2048, 1024, device="cuda"), torch.randn(2048, 1, device="cuda")
    plot = LossPlot() if mode != "none" else None
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        t0 = time.perf_counter()
        for step in range(STEPS):
            loss = torch.nn.functional.mse_loss(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if mode == "tensor":
                plot.log(loss=loss, step=step)
            elif mode == "item":
                plot.log(loss=loss.item(), step=step)
        torch.cuda.set_sync_debug_mode("default")
    torch.cuda.synchronize()
    per_step = (time.perf_counter() - t0) / STEPS
    syncs = sum("synchroniz" in str(w.message) for w in caught)
    if plot is not None:
        plot.flush()
        assert len(plot.history["loss"].values) == STEPS
        plot.close()
    return per_step, syncs


def main() -> None:
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}, {STEPS} steps x {REPEATS} repeats\n")
    print("| loop | median step time | syncs in the loop |")
    print("|---|---|---|")
    modes = (("none", "no logging"), ("tensor", "plot.log(loss=loss)"), ("item", "plot.log(loss=loss.item())"))
    for mode, label in modes:
        run(mode)  # warm-up (kernels, allocator)
        results = [run(mode) for _ in range(REPEATS)]
        med = statistics.median(r[0] for r in results)
        print(f"| {label} | {med * 1e6:.0f} us | {max(r[1] for r in results)} |")


if __name__ == "__main__":
    main()
