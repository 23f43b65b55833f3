"""Frames in a tight loop: the longest wait for a frame, this code beside an earlier revision.

Usage: ``python benchmarks/frame_waits.py [--before REV] [--sizes 1e4 1e5 1e6 1e7]
[--repeats 3] [--out FILE.md]`` (default ``--before 8baf25c``, the code before a burst's first frame
settled and long columns were mapped ahead; ``93987c3`` is the code before columns and smoothed
outputs were grown ahead, ``1046245`` the code before the hand-over; writes ``benchmarks/FRAMES.md``,
whose earlier sections it keeps below the new one). Don't ``nice`` it: the timed loops are the point.

The measurement is the main suite's (``benchmarks/run.py``, RESULTS.md's "longest wait for a frame
during it" and cost per call), run on the same machine in one invocation for both versions, runs
interleaved (before, after, before, after, ...): a real ipykernel per run, a pure-Python loop
logging 4 floats per step as fast as it can, frames found in the IOPub traffic; the bare loop
is run beside them, for the per-call ratio, which is given twice: from the loops' wall time (what
RESULTS.md reports) and from the logging thread's own CPU time (``time.thread_time``: frames drawn
in ``log()`` count, waits for the GIL and other processes on a shared machine do not). The earlier
revision's ``lossviz_widget`` and ``js`` are taken with ``git archive`` into a temporary folder that
goes first on the kernel's ``PYTHONPATH``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import suite

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent


def checkout(rev: str, into: Path) -> Path:
    """``lossviz_widget/`` and ``js/`` of ``rev``, extracted under ``into``."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "lossviz_widget", "js"],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def run(code: Path, n: int, logs: Path) -> dict:
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(code), old]))
    try:
        r, msgs = suite._in_kernel("run_lossviz", logs, n=n)
        return {**suite._lossviz_run(r, msgs), "cpu_per_call_s": r["cpu_per_call_s"]}
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH")
        else:
            os.environ["PYTHONPATH"] = old


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", default="8baf25c", help="the revision to compare with")
    ap.add_argument("--sizes", nargs="+", type=float, default=[1e4, 1e5, 1e6, 1e7])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=BENCH / "FRAMES.md")
    args = ap.parse_args(argv)
    load = os.getloadavg()
    rows = ["| logged steps | code | longest wait for a frame, median (min–max) | frames in the loop | "
            "`log()` per call, median | × bare loop | `log()` thread CPU per call | × bare loop (CPU) |",
            "|---|---|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        before = checkout(args.before, Path(tmp))
        logs = Path(tmp) / "logs"
        for n in (int(s) for s in args.sizes):
            res: dict[str, list[dict]] = {"before": [], "after": []}
            bare, bare_cpu = [], []
            for rep in range(args.repeats):
                r, _ = suite._in_kernel("run_bare", logs, n=n)
                bare.append(suite._bare_run(r)["per_call_s"])
                bare_cpu.append(r["cpu_per_call_s"])
                for name, code in (("before", before), ("after", REPO)):
                    res[name].append(run(code, n, logs))
                    last = res[name][-1]
                    print(f"n={n:.0e} {rep + 1}/{args.repeats} {name}: longest wait {last['max_frame_gap_s']:.3f} s, "
                          f"{last['frames_in_loop']} frames, {last['per_call_s'] * 1e6:.2f} us/log "
                          f"({last['cpu_per_call_s'] * 1e6:.2f} CPU), bare {bare[-1] * 1e6:.2f} "
                          f"({bare_cpu[-1] * 1e6:.2f}); load {os.getloadavg()[0]:.2f}", flush=True)
            bare_s, bare_cpu_s = statistics.median(bare), statistics.median(bare_cpu)
            for name, label in (("before", f"before (`{args.before}`)"), ("after", "**after** (this code)")):
                waits = [r["max_frame_gap_s"] for r in res[name]]
                per_call = statistics.median(r["per_call_s"] for r in res[name])
                cpu = statistics.median(r["cpu_per_call_s"] for r in res[name])
                rows.append(f"| {n:.0e} | {label} | {statistics.median(waits) * 1e3:.0f} ms "
                            f"({min(waits) * 1e3:.0f}–{max(waits) * 1e3:.0f}) | "
                            f"{statistics.median(r['frames_in_loop'] for r in res[name]):.0f} | "
                            f"{per_call * 1e6:.2f} µs | {per_call / bare_s:.2f}× | "
                            f"{cpu * 1e6:.2f} µs | {cpu / bare_cpu_s:.2f}× |")
            rows.append(f"| {n:.0e} | bare loop | | | {bare_s * 1e6:.2f} µs | 1.00× | "
                        f"{bare_cpu_s * 1e6:.2f} µs | 1.00× |")
    end = os.getloadavg()
    head = f"""# Frames in a tight loop

Written by `benchmarks/frame_waits.py` on {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC:
{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; load average at the start
{load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}, at the end {end[0]:.2f} / {end[1]:.2f} / {end[2]:.2f} (a shared
machine: compare the rows of one size, run side by side).
{args.repeats} runs per size and version, interleaved, each in a fresh kernel. Target (issue 20): the longest
wait ≤ 0.5 s at 1e5…1e7 steps, `log()` ≤ 2× the bare loop.

"""
    earlier = f"\n{_earlier(args.out.read_text())}" if args.out.exists() else ""
    args.out.write_text(head + "\n".join(rows) + "\n" + earlier)
    print(f"wrote {args.out}")
    return 0


def _earlier(text: str) -> str:
    """An earlier FRAMES.md's sections under one "# Earlier runs" heading: its current section
    first, then the runs it already kept."""
    body = text.split("\n", 1)[1] if text.startswith("# Frames in a tight loop") else text
    current, _, past = body.partition("\n# Earlier runs\n")
    return "# Earlier runs\n\n" + current.strip() + ("\n\n" + past.strip() if past.strip() else "") + "\n"


if __name__ == "__main__":
    sys.exit(main())
