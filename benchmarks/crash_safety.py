"""How much of what ``log()`` acknowledged survives a SIGKILL, with ``log_file=``.

A child process logs 4 metrics per step to ``LossPlot(log_file=...)`` at a given rate (steps/s;
0: as fast as ``log()`` goes), with or without a step rewind in flight (after ``REWIND_S`` seconds
worth of calls, ``r``, it resumes from step ``r // 2``, as a run reloaded from an older checkpoint
does), and
counts every call that returned in shared memory. The parent SIGKILLs it at a random moment,
reloads the log and checks it against a plain model of the history after ``j`` calls:

* every metric's reloaded history is exactly the model's after some ``j`` (a prefix of what was
  logged: no torn, duplicated, reordered or stale point, the purge of the rewind applied);
* the loss is ``acknowledged - j`` calls, also expressed in seconds at the measured rate.

Children are forked from a forkserver that has imported the package, so a kill costs a fraction of
a second. ``python benchmarks/crash_safety.py`` writes ``benchmarks/CRASH_SAFETY.md``;
``--kills N --json out.json`` is what ``tests/io/test_log_crash.py`` runs.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import Any

REWIND_S = 0.3  # logging time before the rewind (when there is one)
FULL_SPEED = 150_000.0  # steps/s assumed for placing the rewind of a full-speed child
METRICS = ("loss", "acc", "lr", "grad_norm")


def rewind_call(rate: float) -> int:
    """The call at which a child logging at ``rate`` rewinds (to half its step)."""
    return int((rate or FULL_SPEED) * REWIND_S)


def schedule(i: int, rewind_at: int) -> tuple[float, int]:
    """Call ``i``'s step and attempt (0 before the rewind at call ``rewind_at``, 1 after; 0: none)."""
    if rewind_at and i >= rewind_at:
        return float(i - rewind_at + rewind_at // 2), 1
    return float(i), 0


def value(step: float, attempt: int, k: int) -> float:
    """Metric ``k``'s value at ``step`` in ``attempt``: exact in float64, tells attempts apart."""
    return step * 8.0 + attempt * 4.0 + k


def model_calls(steps: Any, values: Any, rewind_at: int) -> int:
    """The number of calls ``j`` after which the model's history of metric 0 is (steps, values),
    or -1 if no ``j`` gives exactly that history."""
    import numpy as np

    n = len(steps)
    if not n:
        return 0
    attempt = int(values[-1] - steps[-1] * 8.0) // 4
    j = n if attempt == 0 else rewind_at + int(steps[-1]) - rewind_at // 2 + 1
    want = [schedule(i, rewind_at) for i in range(j)]
    if rewind_at and j > rewind_at:  # the purge: attempt 0's points at or after the resumed step are gone
        want = [p for p in want if p[1] == 1 or p[0] < rewind_at // 2]
    ws = np.array([p[0] for p in want])
    wv = np.array([value(s, a, 0) for s, a in want])
    return j if np.array_equal(ws, steps) and np.array_equal(wv, values) else -1


def child(path: str, rate: float, rewind_at: int, acked: Synchronized, loop_end: Synchronized,
          stop_after: int) -> None:
    """Log until killed (or ``stop_after`` calls, then idle); ``acked`` counts returned calls."""
    from lossviz_widget import LossPlot

    plot = LossPlot(log_file=path)
    log = plot.log
    start = time.perf_counter()
    i = 0
    while stop_after <= 0 or i < stop_after:
        step, attempt = schedule(i, rewind_at)
        base = step * 8.0 + attempt * 4.0
        log(loss=base, acc=base + 1.0, lr=base + 2.0, grad_norm=base + 3.0, step=step)
        i += 1
        acked.value = i
        if rate and not i & 63:
            wait = start + i / rate - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
    loop_end.value = time.perf_counter() - start
    time.sleep(3600)


@dataclass
class Kill:
    rate: float  # asked steps/s (0: full speed)
    rewind: bool
    killed_after_s: float  # since the child's loop started (about)
    measured_rate: float  # acknowledged calls / time logging
    acknowledged: int  # calls that had returned when the kill came
    on_disk: int  # calls whose points are all in the reloaded log (the smallest over metrics)
    lost: int
    lost_s: float  # lost calls at the measured rate
    exact: bool  # every metric's reloaded history is the model's after some number of calls
    skipped_lines: int
    per_metric: list[int]  # calls on disk per metric (-1: not a prefix of what was logged)


def kill_once(ctx: Any, folder: Path, rate: float, rewind: bool, delay: float,
              stop_after: int = 0, after_loop: float = 0.0) -> Kill:
    """Start a child, SIGKILL it ``delay`` s after it started logging (or ``after_loop`` s after
    its ``stop_after`` calls returned), and check the log it left."""
    from lossviz_widget._io.logfile import read_log

    path = folder / f"run{random.getrandbits(48):x}.jsonl"
    acked, loop_end = ctx.Value("q", 0, lock=False), ctx.Value("d", 0.0, lock=False)
    rewind_at = rewind_call(rate) if rewind else 0
    proc = ctx.Process(target=child, args=(str(path), rate, rewind_at, acked, loop_end, stop_after), daemon=True)
    proc.start()
    deadline = time.monotonic() + 60
    while acked.value == 0 and time.monotonic() < deadline:
        time.sleep(0.001)
    started = time.monotonic()
    if stop_after > 0:
        while loop_end.value == 0.0 and time.monotonic() < deadline + 120:
            time.sleep(0.005)
        time.sleep(after_loop)
    else:
        time.sleep(delay)
    os.kill(proc.pid, signal.SIGKILL)
    proc.join()
    elapsed = time.monotonic() - started
    n_acked = acked.value
    data = read_log(path)
    run = data.runs.get("default", {})
    js = []
    for k, name in enumerate(METRICS):
        h = run.get(name)
        if h is None:
            js.append(0)
            continue
        j = model_calls(h.steps, h.values - k, rewind_at)
        js.append(j)
    exact = all(j >= 0 for j in js)  # (a kill inside a frame's write may leave metrics a chunk apart)
    on_disk = min(js) if exact else -1
    measured = n_acked / (loop_end.value or elapsed)
    lost = n_acked - on_disk if exact else n_acked
    path.unlink()
    return Kill(rate, rewind, round(elapsed, 3), round(measured), n_acked, on_disk, lost,
                round(lost / measured, 4) if measured else 0.0, exact, data.skipped_lines, js)


def forkserver() -> Any:
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["lossviz_widget", "lossviz_widget._ui.widget", "numpy"])
    return ctx


def run_kills(kills: int, seed: int, rates: tuple[float, ...], max_delay: float, rewinds: bool = True) -> list[Kill]:
    """``kills`` random kills per rate, half of them with a rewind in flight (with ``rewinds``)."""
    rng = random.Random(seed)
    ctx = forkserver()
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for rate in rates:
            for n in range(kills):
                out.append(kill_once(ctx, Path(tmp), rate, rewind=rewinds and n % 2 == 1,
                                     delay=rng.uniform(0.05, max_delay)))
    return out


def full_speed_then_kill(steps: int, after_loop: float) -> Kill:
    """The issue's done-when: a full-speed loop of ``steps`` x 4 metrics, killed ``after_loop`` s after it returned."""
    with tempfile.TemporaryDirectory() as tmp:
        return kill_once(forkserver(), Path(tmp), 0.0, False, 0.0, stop_after=steps, after_loop=after_loop)


def close_after_loop(steps: int) -> tuple[float, float]:
    """Seconds of a full-speed loop of ``steps`` x 4 metrics with ``log_file=``, and of ``close()`` right after."""
    from lossviz_widget import LossPlot

    with tempfile.TemporaryDirectory() as tmp:
        plot = LossPlot(log_file=Path(tmp) / "run.jsonl")
        log = plot.log
        start = time.perf_counter()
        for i in range(steps):
            log(loss=0.5, acc=0.25, lr=0.1, grad_norm=1.0, step=i)
        looped = time.perf_counter()
        plot.close()
        return looped - start, time.perf_counter() - looped


def table(kills: list[Kill]) -> str:
    rows = ["| asked rate (steps/s) | measured (steps/s) | kills | rewind in flight | exact prefix | "
            "largest loss (steps x 4 metrics) | largest loss (s) | median loss (s) |",
            "|---|---|---|---|---|---|---|---|"]
    for rate in sorted({k.rate for k in kills}, key=lambda r: r or float("inf")):
        ks = [k for k in kills if k.rate == rate]
        rows.append(
            f"| {'max' if rate == 0 else f'{rate:,.0f}'} | {statistics.median(k.measured_rate for k in ks):,.0f} | "
            f"{len(ks)} | {sum(k.rewind for k in ks)} | {sum(k.exact for k in ks)}/{len(ks)} | "
            f"{max(k.lost for k in ks):,} | {max(k.lost_s for k in ks):.3f} | "
            f"{statistics.median(k.lost_s for k in ks):.3f} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=30, help="random kills per rate")
    parser.add_argument("--rates", default="10000,100000,0", help="steps/s, 0: as fast as log() goes")
    parser.add_argument("--max-delay", type=float, default=3.0, help="latest kill, s after logging started")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--full-speed-steps", type=int, default=600_000)
    parser.add_argument("--no-rewinds", action="store_true", help="no kill has a rewind in flight")
    parser.add_argument("--close-steps", type=int, default=1_000_000, help="full-speed steps before timing close()")
    parser.add_argument("--json", type=Path, help="write the kills as JSON here (no markdown)")
    parser.add_argument("--results", type=Path, default=Path(__file__).with_name("CRASH_SAFETY.md"))
    args = parser.parse_args()
    rates = tuple(float(r) for r in args.rates.split(","))
    kills = run_kills(args.kills, args.seed, rates, args.max_delay, not args.no_rewinds)
    done = full_speed_then_kill(args.full_speed_steps, 0.5) if args.full_speed_steps else None
    if args.json:
        args.json.write_text(json.dumps({"kills": [asdict(k) for k in kills],
                                         "full_speed": None if done is None else asdict(done)}))
        return
    text = [
        "# Crash safety of `log_file=`",
        "",
        f"Made by `python benchmarks/crash_safety.py` ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs, "
        f"Python {sys.version.split()[0]}). A child logs 4 metrics per step to `LossPlot(log_file=...)` and is "
        f"SIGKILLed at a random moment (0.05-{args.max_delay:g} s after it starts logging); every other kill "
        f"has a step rewind in flight (after {REWIND_S:g} s worth of calls, r, it resumes at step r // 2). The "
        "reloaded log is compared with a model of the history: *exact prefix* means every metric's history "
        "is exactly what was logged up to some call (no torn, duplicated or stale point; the purge applied). "
        "Loss = calls acknowledged (returned) before the kill minus calls on disk; in seconds at the measured rate.",
        "",
        table(kills),
        "",
    ]
    if args.close_steps:
        looped, closed = close_after_loop(args.close_steps)
        text += [f"`close()` right after a full-speed loop of {args.close_steps:,} steps x 4 metrics "
                 f"({looped:.2f} s): {closed:.3f} s.", ""]
    if done is not None:
        text += [f"Full-speed loop of {args.full_speed_steps:,} steps x 4 metrics ({done.measured_rate:,.0f} steps/s), "
                 f"SIGKILLed 0.5 s after the loop returned: {done.on_disk:,} of {done.acknowledged:,} acknowledged "
                 f"steps on disk (lost {done.lost:,}), exact prefix: {done.exact}.", ""]
    old = args.results.read_text() if args.results.exists() else ""
    kept = old[old.index("## Before"):] if "## Before" in old else ""  # measured by hand at an older commit
    args.results.write_text("\n".join(text) + ("\n" + kept if kept else ""))
    print("\n".join(text))


if __name__ == "__main__":
    main()
