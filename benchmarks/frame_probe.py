"""Where a long frame of a tight loop spends its time: a stack-sampling probe in a real kernel.

Usage: ``python benchmarks/frame_probe.py [--runs 3] [--steps 1e7] [--over 0.25]``. Each run
starts a fresh ipykernel that logs 4 floats per step as fast as it can (the suite's loop,
``workloads._lossviz_loop``, after ``memory_reset_peak()``, as ``benchmarks/run.py`` does),
with ``Recorder._render`` wrapped to time each frame (wall and thread CPU, and the thread that
drew it: the render thread, or ``MainThread`` for a frame handed over to ``log()``). A watchdog
thread samples, every 50 ms while a frame has run longer than ``--over`` seconds, the stack of
the thread drawing it and of the main thread, and that thread's CPU clock. Per run it prints
the frames by thread, the longest frame, the longest wait between frames in the IOPub traffic
(found as RESULTS.md finds it: ``kernel.frames_by_gap``, ``kernel.waits``), and each long frame
with its samples (a CPU clock that stands still while the stack waits on a lock or in a NumPy
call is a wait, not work). This is how the 1-2.6 s stall of FRAMES.md's 04:57 section
was found. A diagnostic, not a measurement for RESULTS.md: the probe's own sampling costs a
little GIL time.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import Counter
from pathlib import Path

from kernel import KernelSession, frames_by_gap, in_window, waits

_KERNEL_CODE = r'''
import sys, time, json, threading, traceback, os
from lossviz_widget import LossPlot
from lossviz_widget._core import recorder as _recorder
import workloads
frames, samples, current = [], [], {{}}
_render = _recorder.Recorder._render
def timed(self, *a, **k):
    t0, c0 = time.time(), time.thread_time()
    current["ident"], current["t0"] = threading.get_ident(), t0
    try:
        return _render(self, *a, **k)
    finally:
        current.pop("t0", None)
        frames.append((t0, time.time(), time.thread_time() - c0, threading.current_thread().name))
_recorder.Recorder._render = timed
def where(ident):
    f = sys._current_frames().get(ident)
    stack = [] if f is None else traceback.extract_stack(f)[-4:]
    return [f"{{os.path.basename(s.filename)}}:{{s.lineno}} {{s.name}}" for s in stack]
stop = False
def watch():
    while not stop:
        time.sleep(0.05)
        t0, ident = current.get("t0"), current.get("ident")
        if t0 is None or time.time() - t0 < {over}:
            continue
        cpu = time.clock_gettime(time.pthread_getcpuclockid(ident))
        samples.append((t0, time.time(), cpu, where(ident), where(threading.main_thread().ident)))
threading.Thread(target=watch, daemon=True).start()
plot = LossPlot(title="probe")
workloads.memory_reset_peak()
t_start = time.time()
workloads._lossviz_loop(plot.log, {steps})
t_end = time.time()
stop = True
with open({out!r}, "w") as f:
    json.dump({{"t0": t_start, "t1": t_end, "frames": frames, "samples": samples}}, f)
'''


def probe(steps: int, over: float) -> None:
    """One run in a fresh kernel (the suite's :class:`KernelSession`); prints what it found."""
    with tempfile.TemporaryDirectory() as tmp, KernelSession() as k:
        out = Path(tmp) / "probe.json"
        k.execute(_KERNEL_CODE.format(steps=steps, over=over, out=str(out)), timeout=1800)
        res = json.loads(out.read_text())
        messages = k.messages
    t0, t1 = res["t0"], res["t1"]
    frames = [f for f in res["frames"] if f[0] < t1]
    starts = [f[0].sent for f in frames_by_gap(in_window(messages, t0, t1, ["comm_msg"]))]  # as RESULTS.md
    gaps = waits(starts, t0, t1)
    gap = max(gaps)
    at = ([t0, *starts])[gaps.index(gap)] - t0
    longest = max(frames, key=lambda f: f[1] - f[0]) if frames else None
    print(f"loop {t1 - t0:.1f} s, frames by thread {dict(Counter(f[3] for f in frames))}; "
          f"longest IOPub gap {gap * 1e3:.0f} ms at {at:.1f} s", flush=True)
    if longest is not None:
        print(f"  longest frame {1e3 * (longest[1] - longest[0]):.0f} ms wall, {1e3 * longest[2]:.0f} ms CPU, "
              f"at {longest[0] - t0:.1f} s on {longest[3]}")
    for f in frames:
        if f[1] - f[0] <= over:
            continue
        print(f"  long frame at {f[0] - t0:.2f} s: {1e3 * (f[1] - f[0]):.0f} ms wall, {1e3 * f[2]:.0f} ms CPU, {f[3]}")
        for s in (s for s in res["samples"] if s[0] == f[0]):
            print(f"    +{1e3 * (s[1] - f[0]):.0f} ms, its CPU clock {s[2]:.2f} s: {' <- '.join(reversed(s[3]))}"
                  f"   | main: {' <- '.join(reversed(s[4]))}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--steps", type=float, default=1e7)
    parser.add_argument("--over", type=float, default=0.25, help="seconds: frames longer than this are sampled")
    args = parser.parse_args()
    for run in range(args.runs):
        print(f"run {run + 1}/{args.runs}:", end=" ")
        probe(int(args.steps), args.over)


if __name__ == "__main__":
    main()
