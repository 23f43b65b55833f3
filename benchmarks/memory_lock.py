"""Does preparing memory on a helper thread hold up the other threads? ``madvise`` against writes.

Usage: ``python benchmarks/memory_lock.py [--mb 300] [--rounds 2]``. A diagnostic, printed, not a
RESULTS.md column: why ``_core/buffers.py``'s helper touches the new arrays it prepares by writing
zeros (``GrowAhead``) instead of mapping them with ``madvise(MADV_POPULATE_WRITE)`` (FRAMES.md,
the 10:44 section of 2026-12-05).

Each run is a fresh process: a helper thread prepares ``--mb`` MB of memory never touched before,
one way or the other, while the main thread loops (allocate 4 MB, write one byte per page, free it,
a little Python), as a training loop and a frame do. Printed per run: the helper's rate, and the
main thread's iterations and their median, p99 and longest time. ``madvise`` holds the process's
memory-map lock for each call's range, and every ``mmap``/``munmap`` and page fault of the other
threads waits behind it; a write faults its pages in under the memory area's own lock. On a VM
whose host backs memory lazily (~12 ms per MB on first touch) the difference is tens of
milliseconds per main-thread iteration; on memory the host has already backed, both are fast.
The modes alternate, ``--rounds`` times. ``madvise`` modes are skipped where the call does not
exist (not Linux, a kernel before 5.14).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import mmap
import statistics
import subprocess
import sys
import threading
import time

from lossviz_widget._core.buffers import _MADV_POPULATE_WRITE, _load_madvise  # what the helper calls

MODES = ("madvise 2 MB", "madvise 256 KB", "write")


def _child(mode: str, mb: int) -> dict:
    import numpy as np

    big = np.empty(mb << 17)  # float64: mb MB, untouched
    chunk = {"madvise 2 MB": 2 << 20, "madvise 256 KB": 256 << 10}.get(mode)
    madvise = None
    if chunk is not None:
        madvise = _load_madvise()  # the package's own: libc's, on Linux
        if madvise is None:
            return {"mode": mode, "skipped": "no madvise here (not Linux)"}
    base = big.__array_interface__["data"][0]
    start = -(-base // mmap.PAGESIZE) * mmap.PAGESIZE
    done = threading.Event()
    helper: dict = {}

    def prepare() -> None:
        t = time.perf_counter()
        if madvise is not None and chunk is not None:
            for at in range(start, base + big.nbytes - chunk, chunk):
                if madvise(at, chunk, _MADV_POPULATE_WRITE) != 0:
                    helper["error"] = f"madvise failed (errno {ctypes.get_errno()})"
                    break
        else:
            for a in range(0, len(big), 1 << 20):  # 8 MB per GIL release
                big[a : a + (1 << 20)] = 0.0
        helper["s"] = time.perf_counter() - t
        done.set()

    thread = threading.Thread(target=prepare)
    thread.start()
    times = []
    while True:  # at least one iteration, however soon the helper is done
        t = time.perf_counter()
        a = np.empty(1 << 19)  # 4 MB
        a[:: mmap.PAGESIZE // 8] = 1.0
        del a
        x = 0
        for i in range(2000):
            x += i
        times.append(time.perf_counter() - t)
        if done.is_set():
            break
    thread.join()
    if "error" in helper:
        return {"mode": mode, "skipped": helper["error"]}
    ms = sorted(1e3 * t for t in times)
    return {"mode": mode, "helper_mb_s": mb / helper["s"], "iterations": len(times),
            "median_ms": statistics.median(ms), "p99_ms": ms[min(len(ms) - 1, int(0.99 * len(ms)))],
            "max_ms": ms[-1]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=int, default=300, help="memory the helper prepares per run")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--child", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(_child(args.child, args.mb)))
        return 0
    print(f"{args.mb} MB prepared by a helper thread per run, each run a fresh process\n")
    print("| mode | helper MB/s | main-thread iterations | median ms | p99 ms | longest ms |")
    print("|---|---|---|---|---|---|")
    for _ in range(args.rounds):
        for mode in MODES:
            out = subprocess.run([sys.executable, __file__, "--child", mode, "--mb", str(args.mb)],
                                 capture_output=True, text=True, check=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            if "skipped" in r:
                print(f"| {mode} | skipped: {r['skipped']} | | | | |")
            else:
                print(f"| {mode} | {r['helper_mb_s']:.0f} | {r['iterations']:,} | {r['median_ms']:.1f} | "
                      f"{r['p99_ms']:.1f} | {r['max_ms']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
