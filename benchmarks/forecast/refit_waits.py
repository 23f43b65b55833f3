"""What live forecasts cost a training loop, and how long frames wait for them: this code beside an earlier one.

``python benchmarks/forecast/refit_waits.py [--before REV] [--repeats 5]`` (default ``--before``:
the merge base with ``main``, where the refits ran on the frame thread under the recorder's lock).
Writes the section "Refits off the frame lock" of ``benchmarks/FORECAST.md`` (``evaluate.py`` keeps
it when it rewrites the rest).

The loop is ``evaluate.py``'s: softmax regression on scikit-learn's digits, NumPy mini-batch SGD,
40,000 steps, loss and accuracy logged each step into a :class:`~lossviz_widget.Recorder` whose
view draws frames in the background as in a notebook (the view itself draws nothing, so the
numbers are the recorder's). Per run, in a fresh interpreter: the loop's wall time; the longest
frame (wall time of one pass of the recorder's frame method, ``Recorder._render``, timed by a
subclass: a refit on the frame thread is inside it); the longest gap between two frames drawn
during the loop; the longest wait of a ``diagnose()`` call made every 50 ms from another thread
(what ``frame()``, ``diagnose()`` and ``prediction()`` callers wait for the recorder's lock); and
the refits made (calls of ``lossviz_widget.forecast.live.forecast``, counted by a wrapper) with
their wall time.
Forecasts off and on, both revisions, runs interleaved (before off, before on, after off, after
on, ...), medians and maxima over ``--repeats``. The earlier revision's ``lossviz_widget`` is
(and ``js``) taken with ``git archive`` into a temporary folder that goes first on the child's ``PYTHONPATH``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
HEADING = "## Refits off the frame lock"


def loop(forecast: bool, steps: int = 40_000, probe_every: float = 0.05) -> dict[str, float]:
    """One training loop with a live recorder (see the module docstring): its wall time, the
    longest gap between frames drawn during it, the longest ``diagnose()`` wait, frames drawn."""
    from sklearn.datasets import load_digits

    import lossviz_widget.forecast.live as live
    from lossviz_widget import Recorder, ViewSettings

    frames: list[float] = []
    fits: list[float] = []
    fit = live.forecast

    def timed_fit(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return fit(*args, **kwargs)
        finally:
            fits.append(time.perf_counter() - started)

    class Timed(Recorder):
        def _render(self, *args: Any, **kwargs: Any) -> int:
            started = time.perf_counter()
            try:
                return super()._render(*args, **kwargs)
            finally:
                frames.append(time.perf_counter() - started)

    live.forecast = timed_fit
    x, y = load_digits(return_X_y=True)
    x = x / 16.0
    drawn: list[float] = []
    rec = Timed(ViewSettings(forecast=forecast), diagnostics=True)
    rec.attach_view(lambda frame, findings: drawn.append(time.perf_counter()) or 0, live=True)
    waits: list[float] = []
    done = threading.Event()

    def probe() -> None:
        while not done.wait(probe_every):
            started = time.perf_counter()
            rec.diagnose()
            waits.append(time.perf_counter() - started)

    prober = threading.Thread(target=probe, daemon=True)
    rng = np.random.default_rng(0)
    w, b = np.zeros((64, 10)), np.zeros(10)
    started = time.perf_counter()
    prober.start()
    for step in range(1, steps + 1):
        idx = rng.integers(0, len(x), 64)
        logits = x[idx] @ w + b
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        loss = -np.log(p[np.arange(64), y[idx]]).mean()
        p[np.arange(64), y[idx]] -= 1.0
        w -= 0.05 * x[idx].T @ p / 64
        b -= 0.05 * p.mean(axis=0)
        rec.log(loss=float(loss), acc=float((logits.argmax(axis=1) == y[idx]).mean()), step=step)
    ended = time.perf_counter()
    done.set()
    prober.join()
    rec.close()
    during = [t for t in drawn if t <= ended]
    gaps = np.diff([started, *during, ended])
    live.forecast = fit
    return {"loop_s": ended - started, "max_frame_s": max(frames), "max_frame_gap_s": float(gaps.max()),
            "max_diagnose_wait_s": max(waits), "frames": float(len(during)), "refits": float(len(fits)),
            "refit_s": sum(fits)}


def child(code: Path, forecast: bool) -> dict[str, float]:
    """:func:`loop` in a fresh interpreter importing ``lossviz_widget`` from ``code``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(code), os.environ.get("PYTHONPATH")]))}
    out = subprocess.run([sys.executable, __file__, "--child", str(int(forecast))], env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.splitlines()[-1])


def section(rev: str, results: dict[tuple[str, bool], list[dict[str, float]]], repeats: int) -> str:
    """The Markdown section of FORECAST.md."""
    def both(name: str, on: bool, key: str, fmt: str = "{:.2f}", scale: float = 1.0) -> str:
        """The median of ``key`` over the runs, the largest in brackets."""
        xs = [scale * r[key] for r in results[name, on]]
        return f"{fmt.format(statistics.median(xs))} ({fmt.format(max(xs))})"

    rows = []
    for name, label in (("before", f"before ({rev})"), ("after", "after (this code)")):
        for on in (False, True):
            rows.append(f"| {label} | {'on' if on else 'off'} | {both(name, on, 'loop_s')} | "
                        f"{both(name, on, 'max_frame_s', '{:.0f} ms', 1e3)} | "
                        f"{both(name, on, 'max_frame_gap_s', '{:.0f} ms', 1e3)} | "
                        f"{both(name, on, 'max_diagnose_wait_s', '{:.0f} ms', 1e3)} | "
                        f"{both(name, on, 'frames', '{:.0f}')} | {both(name, on, 'refits', '{:.0f}')} | "
                        f"{both(name, on, 'refit_s')} |")
    cost = {name: statistics.median(r["loop_s"] for r in results[name, True])
            / statistics.median(r["loop_s"] for r in results[name, False]) - 1 for name in ("before", "after")}
    loops = [r["loop_s"] for runs in results.values() for r in runs]
    return "\n".join([
        "",
        HEADING,
        "",
        f"Made by `python benchmarks/forecast/refit_waits.py` ({platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs shared, 1-minute load average {os.getloadavg()[0]:.1f} when it finished; "
        f"{repeats} runs per row, interleaved, each in a fresh interpreter). The training loop of the "
        "paragraph above (40,000 steps, frames drawn in the background); *longest frame*: the longest "
        "pass of the frame thread (building and drawing one frame, under the recorder's lock); *longest "
        "frame gap*: the longest time between two frames drawn during the loop; *longest diagnose() "
        "wait*: the longest of the `diagnose()` calls made every 50 ms from another thread (it waits for "
        "the recorder's lock, as `frame()` and `prediction()` do); *refits*: forecasts fitted during the "
        "run, and their wall time in all. Medians over the runs, the largest in brackets:",
        "",
        "| code | forecasts | loop (s) | longest frame | longest frame gap | longest diagnose() wait | "
        "frames drawn | refits | refit time (s) |",
        "|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"Forecasts on cost the loop {cost['before']:+.0%} before, {cost['after']:+.0%} after (medians of "
        f"loops that took {min(loops):.1f}-{max(loops):.1f} s on this shared machine: a difference smaller "
        "than that spread is not measured). Before, each refit ran on the frame thread under the lock; "
        "after, the frame thread hands the points to the forecasts' worker thread and draws the latest "
        "finished fit, so neither the frames nor the lock's other callers wait for a fit. The fit still "
        "shares the interpreter (and its lock) with the loop and the frames, so it takes longer in wall "
        "time, and the pace (at most 5% of the wall time) then leaves more time before the next one.",
        "",
    ])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", default=None, help="the earlier revision (default: the merge base with main)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--child", choices=("0", "1"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        print(json.dumps(loop(args.child == "1")))
        return
    rev = args.before or subprocess.run(["git", "-C", str(REPO), "merge-base", "HEAD", "main"], check=True,
                                        capture_output=True, text=True).stdout.strip()[:7]
    results: dict[tuple[str, bool], list[dict[str, Any]]] = {(n, on): [] for n in ("before", "after")
                                                              for on in (False, True)}
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "lossviz_widget", "js"], capture_output=True,
                                 check=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        for rep in range(args.repeats):
            for name, code in (("before", Path(tmp)), ("after", REPO)):
                for on in (False, True):
                    r = child(code, on)
                    results[name, on].append(r)
                    print(f"{rep + 1}/{args.repeats} {name} forecast={'on' if on else 'off'}: {r}", flush=True)
    out = REPO / "benchmarks" / "FORECAST.md"
    old = out.read_text()
    cut = old.find("\n" + HEADING)
    text = section(rev, results, args.repeats)
    if cut >= 0:  # replace this section, keep any after it
        nxt = old.find("\n## ", cut + 1)
        out.write_text(old[:cut] + text + (old[nxt:] if nxt >= 0 else ""))
    else:
        out.write_text(old.rstrip("\n") + "\n" + text)
    print(text)


if __name__ == "__main__":
    main()
