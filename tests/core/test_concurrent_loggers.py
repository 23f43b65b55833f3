"""Threads logging their own metrics with their own step counters into one plot.

Each thread's calls are below the store's largest step most of the time (another thread is
ahead); they stay on the hot path when their metrics are logged by no other call, and every
history comes out exact. A rewind of one thread's metric still purges.
"""

from __future__ import annotations

import threading

from lossviz_widget import Recorder

THREADS, N = 8, 20_000


def test_threads_with_their_own_steps_keep_exact_histories() -> None:
    rec = Recorder(diagnostics=False)
    start = threading.Barrier(THREADS)

    def work(k: int) -> None:
        name = f"m{k}"
        start.wait()
        for i in range(N):
            rec.log(**{name: float(i * THREADS + k)}, step=i)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(THREADS):
        h = rec.history[f"m{k}"]
        assert h.steps.tolist() == list(range(N))
        assert h.values.tolist() == [float(i * THREADS + k) for i in range(N)]
    assert rec.frame().notes == []  # no rewind was seen where there was none
    rec.log(m3=-1.0, step=10)  # below m3's own last step: a rewind, purged as usual
    assert rec.history["m3"].steps.tolist() == list(range(11))
    assert rec.history["m4"].steps.tolist() == list(range(N))
