"""Full recomputes on several cores: same results as one series after another, helpers' CPU
counted in the scheduler's frame cost, live frames (a few new points) never handed to the pool."""

import threading
import time

import numpy as np
import pytest
from waiting import wait_until

import lossviz_widget._core.frame as view
import lossviz_widget._core.parallel as parallel
from lossviz_widget import MetricHistory
from lossviz_widget._core.frame import FrameBuilder, ViewSettings
from lossviz_widget._core.scheduler import FrameScheduler
from lossviz_widget._core.smoothing import SMOOTHING_MODES


@pytest.fixture
def one_helper(monkeypatch):
    """Exactly one helper thread, whatever the machine's core count (a 1-core box included)."""
    monkeypatch.setattr(parallel, "helper_count", lambda: 1)


def burn(seconds):
    """Spend ``seconds`` of this thread's CPU time; return the thread and the CPU spent."""
    start = time.thread_time()
    while time.thread_time() - start < seconds:
        pass
    return threading.current_thread(), time.thread_time() - start


def paired_jobs(seconds):
    """Two jobs that each wait for the other to start: they must run on two threads at once."""
    barrier = threading.Barrier(2, timeout=10)

    def job():
        barrier.wait()
        return burn(seconds)

    return [job, job]


def test_run_all_keeps_order_and_uses_the_helpers(one_helper):
    results = parallel.run_all(paired_jobs(0.01) + [lambda i=i: i for i in range(5)])
    assert results[2:] == list(range(5))
    threads = {results[0][0], results[1][0]}
    assert len(threads) == 2 and threading.current_thread() in threads


def test_run_all_raises_a_jobs_error_after_every_job_stopped(one_helper):
    finished = []

    def slow():
        time.sleep(0.05)
        finished.append(1)

    def bad():
        raise ValueError("job failed")

    with pytest.raises(ValueError, match="job failed"):
        parallel.run_all([slow, bad, slow])
    count = len(finished)
    time.sleep(0.1)
    assert len(finished) == count  # nothing still running after run_all returned


def test_helpers_cpu_is_credited_to_the_caller(one_helper):
    own, with_helpers = time.thread_time(), parallel.cpu_time()
    results = parallel.run_all(paired_jobs(0.1))
    spent = sum(cpu for _, cpu in results)
    own, with_helpers = time.thread_time() - own, parallel.cpu_time() - with_helpers
    assert own < 0.75 * spent  # the helper's half is not the caller's own CPU time...
    assert with_helpers >= 0.95 * spent  # ...but it is counted


def test_scheduler_frame_cost_includes_the_helpers_cpu(one_helper):
    """The 20% CPU cap must see the pool's CPU: a frame whose work ran half on a helper costs
    all of it (with the render thread's own CPU time alone it would look half as dear)."""
    spent = []

    class Owner:
        def render(self):
            spent.extend(cpu for _, cpu in parallel.run_all(paired_jobs(0.1)))
            return 0

    owner = Owner()
    sched = FrameScheduler(owner.render, fps=100.0, max_busy_fraction=0.2)
    sched.request()
    wait_until(lambda: sched.frames >= 1, timeout=10)
    sched.stop()
    assert len(spent) == 2
    assert sched.last_cost >= 0.95 * sum(spent) > 0.19


def series(n, seed):
    rng = np.random.default_rng(seed)
    y = np.cumsum(rng.normal(size=n)) + 100.0
    y[rng.integers(0, n, 30)] = np.nan
    y[rng.integers(0, n, 5)] = np.inf
    return y


def histories(n):
    steps = np.arange(n, dtype=np.float64)
    wall = 1.7e9 + np.cumsum(np.random.default_rng(9).uniform(0.5, 2.0, n))
    return {name: MetricHistory(steps, series(n, k), wall) for k, name in enumerate(("loss", "val_loss", "acc", "lr"))}


def frame_arrays(frame):
    return [(s.key, a) for p in frame.panels for s in p.series for a in (s.x, s.y, s.raw_x, s.raw_y, s.nonfinite_x)]


@pytest.mark.parametrize("mode", SMOOTHING_MODES)
def test_threaded_frames_are_bit_identical_to_serial_ones(monkeypatch, one_helper, mode):
    calls = []
    run_all = parallel.run_all
    monkeypatch.setattr(view, "run_all", lambda jobs: calls.append(len(jobs)) or run_all(jobs))
    monkeypatch.setattr(view, "PARALLEL_MIN_POINTS", 1000)
    data = histories(40_000)
    threaded, serial = FrameBuilder(), FrameBuilder()
    for weight in (0.6, 0.95):  # a first frame, then a re-smooth: both full recomputes
        s = ViewSettings(smoothing=weight, smoothing_mode=mode, x_axis="wall_time", max_points=300)
        got = frame_arrays(threaded.build(data, 1.7e9, s))
        monkeypatch.setattr(view, "PARALLEL_MIN_POINTS", 10**12)
        want = frame_arrays(serial.build(data, 1.7e9, s))
        monkeypatch.setattr(view, "PARALLEL_MIN_POINTS", 1000)
        assert [k for k, _ in got] == [k for k, _ in want]
        for (_, a), (_, b) in zip(got, want):
            if a is not None or b is not None:
                np.testing.assert_array_equal(a, b)
                assert a.dtype == b.dtype
        # the caches themselves, float32 or not: every point, as a frame of 40k points reads them back
        monkeypatch.setattr(view, "PARALLEL_MIN_POINTS", 10**12)  # a re-downsample only: nothing to count
        every = ViewSettings(smoothing=weight, smoothing_mode=mode, x_axis="wall_time", max_points=100_000)
        got, want = frame_arrays(threaded.build(data, 1.7e9, every)), frame_arrays(serial.build(data, 1.7e9, every))
        monkeypatch.setattr(view, "PARALLEL_MIN_POINTS", 1000)
        assert max(len(a) for _, a in got if a is not None) == 40_000
        for (_, a), (_, b) in zip(got, want, strict=True):
            if a is not None or b is not None:
                np.testing.assert_array_equal(a, b)
                assert a.dtype == b.dtype
    assert calls == [4, 4]


def test_live_frames_do_not_use_the_pool(monkeypatch, one_helper):
    calls = []
    run_all = parallel.run_all
    monkeypatch.setattr(view, "run_all", lambda jobs: calls.append(len(jobs)) or run_all(jobs))
    monkeypatch.setattr(view, "PARALLEL_MIN_POINTS", 20_000)
    n = 30_000
    full = histories(n + 50)
    builder = FrameBuilder()

    def upto(k):
        return {m: MetricHistory(h.steps[:k], h.values[:k], h.wall_time[:k]) for m, h in full.items()}

    builder.build(upto(n), 1.7e9, ViewSettings(smoothing=0.9))
    assert calls == [4]  # the first frame: 4 x 30k points to take in
    for k in range(n + 10, n + 50, 10):  # live frames: a few new points per series
        builder.build(upto(k), 1.7e9, ViewSettings(smoothing=0.9))
    assert calls == [4]
    builder.build(upto(n + 50), 1.7e9, ViewSettings(smoothing=0.8))  # slider moved: re-smooth all
    assert calls == [4, 4]


def test_nested_and_concurrent_callers_finish(one_helper):
    """Jobs that call run_all themselves, from several threads at once: the shared pool's
    threads never wait on helpers queued behind them."""
    def inner():
        return sum(parallel.run_all([lambda i=i: i for i in range(4)]))

    def outer():
        return parallel.run_all([inner] * 6)

    results = []
    threads = [threading.Thread(target=lambda: results.append(outer())) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert results == [[6] * 6] * 4
