"""Independent NumPy-heavy jobs on a few cores, and the CPU time they cost the caller.

A full recompute of several series (re-smoothing after a slider or mode change, the
first frame of a loaded file) is one independent job per series, and NumPy releases
the GIL inside its loops, so :func:`run_all` runs them on the calling thread and a
small shared pool of helper threads together.

The frame scheduler caps rendering at a fraction of one core, measured as the render
thread's CPU time. CPU that helpers spend on a caller's jobs would escape that measure,
so :func:`run_all` credits it to the caller and :func:`cpu_time` reports both.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

__all__ = ["cpu_time", "helper_count", "run_all"]

T = TypeVar("T")

_MAX_HELPERS = 3  # beside the calling thread: a frame never takes more than 4 cores
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
_credit = threading.local()  # .seconds: helper CPU spent on this thread's jobs


def helper_count() -> int:
    """Helper threads :func:`run_all` uses beside the caller: one fewer than the usable cores (at most 3)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(0, min(_MAX_HELPERS, cores - 1))


def cpu_time() -> float:
    """CPU seconds of the calling thread, plus those helpers spent on its :func:`run_all` jobs."""
    return time.thread_time() + getattr(_credit, "seconds", 0.0)


def _helpers() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=_MAX_HELPERS, thread_name_prefix="lossviz-job")
        return _pool


def run_all(jobs: Sequence[Callable[[], T]]) -> list[T]:
    """Run independent ``jobs`` and return their results, in order.

    The caller and up to :func:`helper_count` helpers take jobs from one queue until it is
    empty; with one job, or no helper, they all run here. Every job has finished when this
    returns (or raises the first job's exception). Each job's result is what it computes,
    whichever thread ran it.
    """
    helpers = min(helper_count(), len(jobs) - 1)
    if helpers <= 0:
        return [job() for job in jobs]
    results: dict[int, T] = {}  # job index -> its result
    pending = list(range(len(jobs) - 1, -1, -1))  # popped from the end: jobs in order
    lock = threading.Lock()

    def drain() -> None:
        while True:
            with lock:
                if not pending:
                    return
                i = pending.pop()
            try:
                results[i] = jobs[i]()
            except BaseException:
                with lock:
                    pending.clear()  # a job failed: start no other
                raise

    def helper() -> tuple[float, BaseException | None]:
        started = time.thread_time()
        try:
            drain()
        except BaseException as exc:
            return time.thread_time() - started, exc
        return time.thread_time() - started, None

    futures = [_helpers().submit(helper) for _ in range(helpers)]
    try:
        drain()
    finally:
        # helpers still queued (the pool busy with another caller's) are not waited for: the
        # queue is empty by now. So a job may itself call run_all without risk of deadlock.
        outcomes = [future.result() for future in futures if not future.cancel()]
        _credit.seconds = getattr(_credit, "seconds", 0.0) + sum(spent for spent, _ in outcomes)
    for _, exc in outcomes:
        if exc is not None:
            raise exc
    return [results[i] for i in range(len(jobs))]
