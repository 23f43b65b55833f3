"""Kernel-side workloads: what each tool does per logged step, timed where it runs.

This module is imported *inside* an ipykernel (see :mod:`kernel` and :mod:`browser`),
so every widget message really goes over IOPub. It depends only on the tools
themselves. Each ``run_*`` function returns a JSON-able dict of raw measurements
(seconds from ``time.perf_counter``, epoch times from ``time.time`` so the driver
can match IOPub messages to windows by their header date, bytes of RSS).

The training loop is the same for every tool: 4 metrics per step (loss, val_loss,
acc, lr), all fresh Python floats computed from the step (a deterministic noisy
decaying loss, like a per-batch loss), so every logger owns its values as it
would with ``loss.item()``. The cost of computing those values is measured on its
own (:func:`generation_cost`) and subtracted from per-call costs.
"""

from __future__ import annotations

import contextlib
import gc
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = [
    "METRICS",
    "TENSOR_POOL",
    "NaiveBqplot",
    "generation_cost",
    "memory_now",
    "memory_reset_peak",
    "run_bare",
    "run_livelossplot",
    "run_lossviz",
    "run_lossviz_tensors",
    "run_naive_bqplot",
    "serve_commands",
]  # fmt: skip

METRICS = ("loss", "val_loss", "acc", "lr")
_HASH_MUL = 1103515245
_HASH_MASK = 0x7FFFFFFF
_HASH_SCALE = 1.0 / 0x7FFFFFFF
_GEN_SAMPLE = 1_000_000  # steps used to measure the value-generation cost
TENSOR_POOL = 1024  # distinct tensors per metric the CPU-tensor loop cycles through


def values_at(i: int, inv_n: float) -> dict[str, float]:
    """The 4 metric values of step ``i`` (the same formulas the timed loops inline)."""
    r = ((i * _HASH_MUL + 12345) & _HASH_MASK) * _HASH_SCALE
    loss = 2.0 / (1.0 + i * inv_n * 20.0) + 0.2 * r
    return {"loss": loss, "val_loss": loss * 1.1, "acc": 1.0 - 0.4 * loss, "lr": 0.001 * (1.0 - i * inv_n)}


# -- memory ----------------------------------------------------------------------------------


def _status_kib(field: str) -> int:
    text = Path("/proc/self/status").read_text()
    m = re.search(rf"^{field}:\s+(\d+) kB", text, re.M)
    return int(m.group(1)) if m else -1


def memory_now() -> dict[str, int]:
    """Current and peak resident set size of this process, in bytes (Linux ``/proc``)."""
    return {"rss": _status_kib("VmRSS") * 1024, "hwm": _status_kib("VmHWM") * 1024}


def memory_reset_peak() -> int:
    """Collect garbage, reset the kernel's peak-RSS counter (``clear_refs`` 5); return the RSS."""
    gc.collect()
    with contextlib.suppress(OSError):  # not Linux, or not allowed: the peak covers the process life
        Path("/proc/self/clear_refs").write_text("5")
    return memory_now()["rss"]


# -- the shared loop -------------------------------------------------------------------------


def generation_cost(n: int) -> float:
    """Seconds per step spent computing the 4 values alone (no logging), over min(n, 1e6) steps."""
    return _generation(n)[0]


def _generation(n: int) -> tuple[float, float]:
    """:func:`generation_cost`, and the same in this thread's CPU seconds (``time.thread_time``)."""
    m = min(n, _GEN_SAMPLE)
    inv_n = 1.0 / n
    t = time.perf_counter()
    c = time.thread_time()
    for i in range(m):
        r = ((i * _HASH_MUL + 12345) & _HASH_MASK) * _HASH_SCALE
        loss = 2.0 / (1.0 + i * inv_n * 20.0) + 0.2 * r
        _v, _a, _l = loss * 1.1, 1.0 - 0.4 * loss, 0.001 * (1.0 - i * inv_n)
    return (time.perf_counter() - t) / m, (time.thread_time() - c) / m


def _timed_loop(log: Callable[..., Any], n: int, start: int = 0, total: int | None = None) -> dict[str, float]:
    """Call ``log(step, loss=, val_loss=, acc=, lr=)`` for steps ``start..start+n-1``, timed."""
    inv_n = 1.0 / (total or n)
    t_epoch = time.time()
    c = time.thread_time()
    t = time.perf_counter()
    for i in range(start, start + n):
        r = ((i * _HASH_MUL + 12345) & _HASH_MASK) * _HASH_SCALE
        loss = 2.0 / (1.0 + i * inv_n * 20.0) + 0.2 * r
        log(i, loss=loss, val_loss=loss * 1.1, acc=1.0 - 0.4 * loss, lr=0.001 * (1.0 - i * inv_n))
    loop_s = time.perf_counter() - t
    return {"loop_s": loop_s, "loop_cpu_s": time.thread_time() - c, "t_loop0": t_epoch, "t_loop1": time.time()}


# -- bare Python loop ------------------------------------------------------------------------


def run_bare(n: int) -> dict[str, Any]:
    """A minimal logger: ``log(step, **kw)`` appends ``(step, value)`` to a dict of lists."""
    gen, gen_cpu = _generation(n)
    store: dict[str, list[tuple[int, float]]] = {}

    def log(step: int, **kw: float) -> None:
        for k, v in kw.items():
            store.setdefault(k, []).append((step, v))

    rss0 = memory_reset_peak()
    res = _timed_loop(log, n)
    mem = memory_now()
    assert len(store["loss"]) == n
    return {**res, "n": n, "gen_s": gen, "per_call_s": res["loop_s"] / n - gen,
            "cpu_per_call_s": res["loop_cpu_s"] / n - gen_cpu, "rss0": rss0, **mem}


# -- lossviz_widget --------------------------------------------------------------------------


def _scheduler(plot: Any) -> Any:
    """The plot's frame scheduler: the recorder's since the layered layout, the plot's own before
    (so the same workloads measure older commits for before/after tables)."""
    recorder = getattr(plot, "recorder", None)
    return getattr(recorder if recorder is not None else plot, "_scheduler", None)


def _frames(plot: Any) -> int | None:
    return getattr(_scheduler(plot), "frames", None)


def _wait_render_idle(plot: Any, quiet_s: float = 0.5, timeout: float = 60.0) -> None:
    """Until the render thread has drawn everything logged so far: the scheduler's
    ``wait_idle`` (no frame pending or in progress). Where it has none: until no frame
    finished for ``quiet_s`` (which a throttled frame can outlast), or a fixed 1 s pause
    if the scheduler exposes no frame counter either."""
    wait_idle = getattr(_scheduler(plot), "wait_idle", None)
    if wait_idle is not None:
        if not wait_idle(timeout):
            raise TimeoutError(f"the render thread was still drawing {timeout:.0f} s after the loop")
        return
    if _frames(plot) is None:
        time.sleep(1.0)
        return
    end = time.monotonic() + timeout
    last = _frames(plot)
    while time.monotonic() < end:
        time.sleep(quiet_s)
        now = _frames(plot)
        if now == last:
            return
        last = now


def _park_render_thread(plot: Any, step: int, timeout: float = 10.0) -> None:
    """Stop background frames from racing the ``flush()`` timings below, through the public
    ``fps`` trait (the scheduler's frame counter is only read, where it exists).

    ``fps`` = 0.001 makes the render thread wait ~1000 s after its next frame; one
    logged step triggers that frame (waited for through the frame counter if the
    scheduler exposes one, else a fixed pause).
    """
    before = _frames(plot)
    plot.fps = 0.001
    plot.log(**values_at(step, 1e-9), step=step)
    if before is None:
        time.sleep(2.0)
        return
    end = time.monotonic() + timeout
    while _frames(plot) == before and time.monotonic() < end:
        time.sleep(0.01)
    time.sleep(0.05)


def _lossviz_loop(plog: Callable[..., None], n: int) -> dict[str, float]:
    """:func:`_timed_loop` with the documented call, ``plot.log(loss=..., ..., step=i)``, inline
    (no wrapper call is timed that the bare logger does not pay too)."""
    inv_n = 1.0 / n
    t_epoch = time.time()
    c = time.thread_time()
    t = time.perf_counter()
    for i in range(n):
        r = ((i * _HASH_MUL + 12345) & _HASH_MASK) * _HASH_SCALE
        loss = 2.0 / (1.0 + i * inv_n * 20.0) + 0.2 * r
        plog(loss=loss, val_loss=loss * 1.1, acc=1.0 - 0.4 * loss, lr=0.001 * (1.0 - i * inv_n), step=i)
    loop_s = time.perf_counter() - t
    return {"loop_s": loop_s, "loop_cpu_s": time.thread_time() - c, "t_loop0": t_epoch, "t_loop1": time.time()}


def run_lossviz(n: int, steady_frames: int = 5, resmooth: tuple[float, ...] = (0.9, 0.95, 0.8)) -> dict[str, Any]:
    """``LossPlot.log`` of 4 floats per step for ``n`` steps, frames rendering as in any kernel.

    The plot is created but not displayed: in a kernel it renders and sends frames
    whether or not a browser shows it (display only adds a static image at cell end).
    After the timed loop: ``flush()`` (everything drawn), the memory reading, then
    ``steady_frames`` frames of one new step each and re-smoothing at each weight in
    ``resmooth``, each timed as ``flush()`` with the render thread parked.
    """
    from lossviz_widget import LossPlot

    gen, gen_cpu = _generation(n)
    plot = LossPlot(title="bench")
    rss0 = memory_reset_peak()
    res: dict[str, Any] = dict(_lossviz_loop(plot.log, n))
    _wait_render_idle(plot)  # the trailing frame draws the tail, as after any training loop
    plot.flush()  # (normally sends nothing more)
    res["t_flush1"] = time.time()
    res["frames_in_loop"] = _frames(plot)
    mem = memory_now()
    assert len(plot.history["loss"]) == n

    step = n
    _park_render_thread(plot, step)
    steady = []
    for _ in range(steady_frames):
        step += 1
        t_a = time.time()
        t = time.perf_counter()
        plot.log(**values_at(step, 1.0 / n), step=step)
        plot.flush()
        dt = time.perf_counter() - t
        steady.append({"t_a": t_a, "t_b": time.time(), "dt": dt})
        time.sleep(0.05)
    smooth = []
    for w in resmooth:
        t_a = time.time()
        t = time.perf_counter()
        plot.smoothing = w
        plot.flush()
        smooth.append({"w": w, "t_a": t_a, "t_b": time.time(), "dt": time.perf_counter() - t})
    plot.close()
    return {**res, "n": n, "gen_s": gen, "per_call_s": res["loop_s"] / n - gen,
            "cpu_per_call_s": res["loop_cpu_s"] / n - gen_cpu, "rss0": rss0, **mem,
            "steady": steady, "resmooth": smooth}


def run_lossviz_tensors(n: int) -> dict[str, Any]:
    """``plot.log(loss=t1, ..., step=i)`` with 4 CPU tensors per step, frames rendering as usual.

    The tensors are 0-d float32 torch tensors, what ``loss.detach()`` gives in a training loop,
    taken in turn from a pool made before the timed loop (making them is the training loop's
    cost, not the logger's). The loop that only fetches them from the pool is timed on its own
    and subtracted, as the value generation is for the float loop.
    """
    import torch

    from lossviz_widget import LossPlot

    inv_n = 1.0 / n
    pool = [tuple(torch.tensor(v, dtype=torch.float32) for v in values_at(i, inv_n).values())
            for i in range(TENSOR_POOL)]
    mask = TENSOR_POOL - 1
    t = time.perf_counter()
    for i in range(n):
        a, b, c, d = pool[i & mask]
    fetch_s = (time.perf_counter() - t) / n
    warm = LossPlot(title="warm-up")  # the first tensor logged pays one-time imports: not per-call cost
    warm.log(loss=pool[0][0])
    warm.close()
    plot = LossPlot(title="bench")
    plog = plot.log
    t = time.perf_counter()
    for i in range(n):
        a, b, c, d = pool[i & mask]
        plog(loss=a, val_loss=b, acc=c, lr=d, step=i)
    loop_s = time.perf_counter() - t
    _wait_render_idle(plot)
    loss = plot.history["loss"]
    assert len(loss) == n and loss.values[n - 1] == float(pool[(n - 1) & mask][0])
    plot.close()
    return {"n": n, "loop_s": loop_s, "gen_s": fetch_s, "per_call_s": loop_s / n - fetch_s,
            "torch": torch.__version__}


# -- a naive bqplot loop ---------------------------------------------------------------------


class NaiveBqplot:
    """What people write: one ``Lines`` per metric in one Figure, lists of every value, and on
    each update the full lists re-assigned (``line.x = steps; line.y = values``: one message
    each, no ``hold_sync``, no downsampling)."""

    def __init__(self) -> None:
        from bqplot import Axis, Figure, LinearScale, Lines

        xs, ys = LinearScale(), LinearScale()
        colors = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728")
        self.lines = {
            name: Lines(x=[], y=[], scales={"x": xs, "y": ys}, labels=[name], colors=[c], display_legend=True)
            for name, c in zip(METRICS, colors, strict=True)
        }
        self.figure = Figure(marks=list(self.lines.values()), animation_duration=0, title="naive bqplot",
                             axes=[Axis(scale=xs, label="step"), Axis(scale=ys, orientation="vertical")])
        self.steps: list[int] = []
        self.values: dict[str, list[float]] = {name: [] for name in METRICS}

    def log(self, step: int, **kw: float) -> None:
        self.steps.append(step)
        for k, v in kw.items():
            self.values[k].append(v)

    def update(self) -> None:
        for name, line in self.lines.items():
            line.x = self.steps
            line.y = self.values[name]

    def close(self) -> None:
        self.figure.close()
        for line in self.lines.values():
            line.close()


def run_naive_bqplot(n: int, updates: int = 3) -> dict[str, Any]:
    """Naive bqplot at ``n`` logged steps: prefill ``n - updates`` steps, one full first draw,
    then ``updates`` timed "log one step + re-assign everything" calls (the per-step cost of
    updating on every step once the run is that long)."""
    rss0 = memory_reset_peak()
    naive = NaiveBqplot()
    pre = max(0, n - updates)
    _timed_loop(naive.log, pre, total=n)
    t_first = time.time()
    t = time.perf_counter()
    naive.update()
    first = {"t_a": t_first, "t_b": time.time(), "dt": time.perf_counter() - t}
    per = []
    inv_n = 1.0 / n
    for i in range(pre, n):
        t_a = time.time()
        t = time.perf_counter()
        naive.log(i, **values_at(i, inv_n))
        naive.update()
        per.append({"t_a": t_a, "t_b": time.time(), "dt": time.perf_counter() - t})
    mem = memory_now()
    naive.close()
    return {"n": n, "first": first, "updates": per, "rss0": rss0, **mem}


# -- livelossplot ----------------------------------------------------------------------------


def run_livelossplot(n: int, updates: int = 3) -> dict[str, Any]:
    """livelossplot ``PlotLosses`` (its defaults: MatplotlibPlot + ExtremaPrinter, notebook
    mode, i.e. ``clear_output``, a new figure, replot all, PNG through the inline backend).

    ``n - updates`` steps are prefilled with ``update()`` alone (no drawing), then
    ``updates`` timed ``update() + send()`` calls. ``updates=0`` measures memory only.
    """
    from livelossplot import PlotLosses

    rss0 = memory_reset_peak()
    plot = PlotLosses()
    pre = max(0, n - updates)
    _timed_loop(lambda i, **kw: plot.update(kw, current_step=i), pre, total=n)
    mem_prefill = memory_now()
    per = []
    inv_n = 1.0 / n
    for i in range(pre, n):
        t_a = time.time()
        t = time.perf_counter()
        plot.update(values_at(i, inv_n), current_step=i)
        plot.send()
        per.append({"t_a": t_a, "t_b": time.time(), "dt": time.perf_counter() - t})
    mem = memory_now()
    return {"n": n, "updates": per, "rss0": rss0, "rss_prefill": mem_prefill["rss"], **mem}


# -- browser paint runs: the kernel obeys commands from the driver ---------------------------


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.rename(path)


def _live_loop(log: Callable[..., None], draw: Callable[[], None], start: int, total: int, seconds: float,
               steps_per_s: int, tick_s: float = 0.01) -> int:
    """Log ``steps_per_s`` steps per second (in batches every ``tick_s``) for ``seconds``, as a
    training loop does between its GPU steps; returns the next step."""
    n = start
    inv_n = 1.0 / total
    t0 = time.monotonic()
    while (elapsed := time.monotonic() - t0) < seconds:
        due = start + int(elapsed * steps_per_s)
        while n < due:
            log(n, **values_at(n, inv_n))
            n += 1
        draw()
        time.sleep(tick_s)
    return n


def serve_commands(tool: str, folder: str, poll_s: float = 0.005, timeout_s: float = 1800.0,
                   plot: Any = None, start: int = 0) -> None:
    """Run in a notebook cell: display ``tool``'s plot, then execute numbered command files.

    The driver writes ``<folder>/cmd-<k>.json`` (``{"op": "grow", "n": N}``: log up to N steps;
    ``{"op": "update"}``: log one step; ``{"op": "live", "seconds": S, "steps_per_s": R}``: log R steps
    per second for S seconds, acknowledged with the frames drawn; ``{"op": "done"}``: return,
    leaving the plot as it is: its kernel is shut down next) and waits for ``<folder>/ack-<k>.json``
    (``{"n", "t_a", "t_b"}``: kernel epoch times before the step was logged and after it was
    handed over for drawing) before watching the page. The cell keeps running throughout, as
    a training cell would. lossviz draws from its render thread, exactly as during training
    (``flush()`` would also refresh the static image kept for saved notebooks); a "grow" is
    acknowledged only once that thread has drawn its last step (throttled by the frames'
    cost, the tail of a fast loop can be drawn a second or more after the loop ends, and
    would otherwise be taken for the next update's frame). ``plot``: a LossPlot displayed by an
    earlier cell (its view has then told the kernel its plot width) with steps up to ``start`` logged,
    else one is made here. The naive loop re-assigns its
    arrays right after logging (a grow draws nothing).
    """
    import json

    from IPython.display import display

    base = Path(folder)

    def nothing() -> None:
        """lossviz draws from its own thread (no draw step); the naive loop draws at once (no settling)."""

    draw: Callable[[], None] = nothing
    settle: Callable[[], None] = nothing
    log: Callable[..., None]
    if tool == "lossviz":
        if plot is None:  # else shown by an earlier cell, which has let the browser report its size
            from lossviz_widget import LossPlot

            plot = LossPlot(title="bench")
            display(plot)

        def log_lossviz(i: int, **kw: float) -> None:
            plot.log(kw, step=i)

        def settle_lossviz() -> None:
            _wait_render_idle(plot)

        log, settle = log_lossviz, settle_lossviz
    elif tool == "naive":
        naive = NaiveBqplot()
        display(naive.figure)
        log, draw = naive.log, naive.update
    else:
        raise ValueError(f"unknown tool {tool!r}")
    n = start
    total = 10**7
    k = 0
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        path = base / f"cmd-{k}.json"
        if not path.exists():
            time.sleep(poll_s)
            continue
        cmd = json.loads(path.read_text())
        t_a = time.time()
        if cmd["op"] == "done":
            _write_atomic(base / f"ack-{k}.json", json.dumps({"n": n}))
            return
        if cmd["op"] == "live":  # log steady for a while, the plot drawing as in training
            frames0 = _frames(plot) if tool == "lossviz" else None
            n = _live_loop(log, draw, n, total, float(cmd["seconds"]), int(cmd["steps_per_s"]))
            settle()
            frames = None if frames0 is None else (_frames(plot) or 0) - frames0
            _write_atomic(base / f"ack-{k}.json", json.dumps(
                {"n": n, "t_a": t_a, "t_b": time.time(), "frames": frames,
                 "plot_width": getattr(plot, "plot_width", None) if tool == "lossviz" else None}))
            k += 1
            continue
        if cmd["op"] == "grow":
            target = int(cmd["n"])
            total = int(cmd.get("total", target))
            if target > n:
                _timed_loop(log, target - n, start=n, total=total)
                n = target
            settle()
        else:
            log(n, **values_at(n, 1.0 / total))
            n += 1
        draw()
        t_b = time.time()
        _write_atomic(base / f"ack-{k}.json", json.dumps({"n": n, "t_a": t_a, "t_b": t_b}))
        k += 1
    raise TimeoutError("the benchmark driver sent no 'done' command")
