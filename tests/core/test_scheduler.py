"""Frame scheduling: coalescing, the fps bound, the trailing frame, clean stop."""

import gc
import threading
import time

import numpy as np
from drawn import render_threads_since
from waiting import wait_until

from lossviz_widget._core.scheduler import FrameScheduler


class Recorder:
    def __init__(self, messages=1, cost=0.0):
        self.times = []
        self.messages = messages
        self.cost = cost
        self.seen = []
        self.source = None

    def render(self):
        self.times.append(time.monotonic())
        if self.source is not None:
            self.seen.append(self.source[0])
        end = time.thread_time() + self.cost  # real work: CPU time, as a frame spends it
        while time.thread_time() < end:
            pass
        return self.messages


def frame_gaps(rec, seconds, **scheduler_args):
    """Request frames continuously for ``seconds``; return the gaps between frame starts."""
    sched = FrameScheduler(rec.render, **scheduler_args)
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        sched.request()
        time.sleep(0.001)
    sched.stop()
    return [b - a for a, b in zip(rec.times, rec.times[1:])]


def test_many_requests_coalesce_into_few_frames_at_most_fps():
    rec = Recorder()
    sched = FrameScheduler(rec.render, fps=20)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 1.0:
        sched.request()  # a tight training loop: ~millions of requests
    assert wait_until(lambda: len(rec.times) >= 2)
    time.sleep(0.2)
    sched.stop()
    gaps = [b - a for a, b in zip(rec.times, rec.times[1:])]
    assert len(rec.times) <= 20 * 1.3 + 2  # about fps frames in that second, plus the trailing one
    assert len(rec.times) >= 10
    assert min(gaps) >= 1 / 20 * 0.9


def test_trailing_frame_shows_the_last_value():
    rec = Recorder()
    counter = [0]
    rec.source = counter
    sched = FrameScheduler(rec.render, fps=5)
    for i in range(1, 1001):
        counter[0] = i
        sched.request()
    assert wait_until(lambda: rec.seen and rec.seen[-1] == 1000, timeout=3)
    n = len(rec.times)
    time.sleep(0.5)
    assert len(rec.times) == n  # idle: no busy re-rendering
    sched.stop()


def test_wait_idle_returns_once_the_throttled_trailing_frame_is_drawn():
    # 60 ms frames at a 20% budget: the trailing frame comes ~300 ms after the previous one,
    # long after a "no frame finished lately" heuristic would have given up waiting
    rec = Recorder(cost=0.06)
    counter = [0]
    rec.source = counter
    sched = FrameScheduler(rec.render, fps=50, max_busy_fraction=0.2)
    assert sched.wait_idle(timeout=0)  # nothing requested yet
    t0 = time.monotonic()
    while time.monotonic() - t0 < 0.5:
        counter[0] += 1
        sched.request()  # (a due frame may be drawn right here: see the hand-over test below)
    assert sched.wait_idle(timeout=5)
    counter[0] += 1  # one more value just after a frame: its frame waits ~240 ms (throttled)
    last = counter[0]
    sched.request()
    assert not sched.wait_idle(timeout=0.01)  # the tail is not drawn yet
    assert sched.wait_idle(timeout=5)
    assert rec.seen[-1] == last
    frames = len(rec.times)
    time.sleep(0.1)
    assert len(rec.times) == frames and sched.wait_idle(timeout=0)
    sched.stop()


def test_wait_idle_returns_after_stop_and_for_a_failing_frame():
    sched = FrameScheduler(lambda: 1 / 0, fps=50, on_error=lambda exc: None)
    sched.request()
    assert sched.wait_idle(timeout=3)  # a frame that raised still counts as drawn
    sched.stop()
    sched.request()  # ignored after stop: nothing will ever be drawn, so nothing to wait for
    assert sched.wait_idle(timeout=0.5)


def test_message_budget_slows_frames():
    rec = Recorder(messages=250)  # 250 msgs/frame at a 500 msg/s budget -> at most 2 frames/s
    gaps = frame_gaps(rec, 1.2, fps=50, max_messages_per_s=500)
    assert gaps and min(gaps) >= 0.45


def test_slow_frames_keep_rendering_under_its_share_of_wall_time():
    rec = Recorder(cost=0.05)  # a 50 ms frame at a 20% budget: at most one frame per 250 ms
    gaps = frame_gaps(rec, 1.3, fps=30, max_busy_fraction=0.2)
    assert len(gaps) >= 2 and min(gaps) >= 0.24


def test_a_costly_frame_delays_the_next_by_at_most_max_spacing():
    # a 0.3 s frame at a 20% budget would be spaced 1.5 s apart: the view would stop for seconds
    rec = Recorder(cost=0.3)
    gaps = frame_gaps(rec, 2.5, fps=30, max_busy_fraction=0.2)
    assert len(gaps) >= 2 and max(gaps) < 1.5  # MAX_SPACING_S (0.4 s) after its start, or once drawn


def test_a_burst_of_logging_is_drawn_once_after_it_settled():
    """The first frame of a burst (``settle=True`` after a pause) waits one frame interval, so a
    burst shorter than that is drawn once, with its last value, instead of interrupted by a frame;
    after a pause, the next burst settles again."""
    rec = Recorder()
    rec.source = [0]
    sched = FrameScheduler(rec.render, fps=2)  # an interval of 0.5 s: far longer than a burst
    for burst in range(2):
        for i in range(2000):
            rec.source[0] = (burst, i)
            sched.request(settle=True)
        assert sched.wait_idle(timeout=5)
        assert rec.seen == [(b, 1999) for b in range(burst + 1)]
        time.sleep(1.1)  # a pause: more than an interval past the time the next frame could start
    sched.stop()


def test_render_errors_are_reported_and_the_thread_survives():
    errors = []
    calls = []

    def render():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return 0

    sched = FrameScheduler(render, fps=50, on_error=errors.append)
    sched.request()
    assert wait_until(lambda: errors)
    time.sleep(0.05)
    sched.request()
    assert wait_until(lambda: len(calls) == 2)
    assert sched.running
    sched.stop()
    assert not sched.running
    assert str(errors[0]) == "boom"


def test_stop_leaves_no_thread_and_requests_after_stop_are_ignored():
    rec = Recorder()
    sched = FrameScheduler(rec.render, fps=50)
    sched.request()
    assert wait_until(lambda: rec.times)
    sched.stop()
    assert not any(t.name == "lossviz-render" and t.is_alive() for t in threading.enumerate())
    sched.request()
    time.sleep(0.1)
    assert not sched.running


def test_thread_ends_when_owner_is_garbage_collected():
    class Owner:
        def __init__(self):
            self.frames = 0
            self.sched = FrameScheduler(self.render, fps=50)

        def render(self):
            self.frames += 1
            return 0

    def drawn_once(owner: Owner) -> bool:
        owner.sched.request()
        return wait_until(lambda: owner.frames == 1)

    before = set(threading.enumerate())
    owner = Owner()
    assert drawn_once(owner)
    (thread,) = render_threads_since(before)
    del owner
    gc.collect()
    thread.join(timeout=3)
    assert not thread.is_alive()


def test_render_threads_are_stopped_at_interpreter_exit(tmp_path):
    """The atexit hook stops every running render thread (no frame races the kernel's teardown)."""
    import subprocess
    import sys

    script = tmp_path / "exit.py"
    script.write_text(
        "import atexit, time\n"
        "made = []\n"
        "# registered before the scheduler module's own hook, so it runs after it (atexit is LIFO)\n"
        "atexit.register(lambda: print('AT EXIT', [s.running for s in made]))\n"
        "from lossviz_widget._core.scheduler import FrameScheduler\n"
        "made += [FrameScheduler(lambda: 0, fps=60), FrameScheduler(lambda: 0, fps=60)]\n"
        "for s in made:\n"
        "    s.request()\n"
        "time.sleep(0.2)\n"
        "print('RUNNING', [s.running for s in made])\n"
    )
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "RUNNING [True, True]" in out.stdout and "AT EXIT [False, False]" in out.stdout, out.stdout


def test_a_tight_logging_loop_draws_the_due_frames_itself_with_the_same_content():
    """While a loop logs as fast as it can, due frames are handed over to it (drawn on the logging
    thread, in one hold of the GIL); they are built by the same code from the same data, so the
    last frame is exactly the one a fresh builder makes from the whole history."""
    from lossviz_widget import Recorder

    drawn: list = []  # (thread name, frame)

    def draw(frame, findings):
        drawn.append((threading.current_thread().name, frame))
        return 1

    rec = Recorder()
    rec.attach_view(draw, live=True)
    step = 0
    t0 = time.monotonic()
    while not any(name == threading.current_thread().name for name, _ in drawn) and time.monotonic() - t0 < 60:
        for _ in range(1000):
            rec.log(loss=1.0 / (step + 1), acc=step % 7 / 7.0, step=step)
            step += 1
    assert any(name == threading.current_thread().name for name, _ in drawn), "no frame was handed over"
    rec.flush()
    last = drawn[-1][1]
    fresh = rec.frame(max_points=rec.settings.max_points)
    for panel, expected in zip(last.panels, fresh.panels, strict=True):
        for series, want in zip(panel.series, expected.series, strict=True):
            assert series.name == want.name
            np.testing.assert_array_equal(series.x, want.x)
            np.testing.assert_array_equal(series.y, want.y)
    rec.close()


def test_a_request_made_while_this_thread_draws_never_draws_again_inside_it():
    # a sink that asks for another frame from inside one (as the watcher does while its heatmaps
    # are throttled), and a loop that logs and flushes: once a frame is overdue (offered to the
    # logging thread), that request used to draw it right there, re-entering the render whose lock
    # the thread held (a deadlock, seen in CI). Now it only schedules the frame.
    from lossviz_widget import Recorder

    recorder = Recorder()

    class AskingSink:
        error = ""

        def write_new(self, data, rewinds=()):
            recorder.changed()

        def close(self):
            pass

    recorder.add_sink(AskingSink())
    done = threading.Event()

    def loop() -> None:
        deadline = time.monotonic() + 3.0
        step = 0
        while time.monotonic() < deadline:
            for _ in range(200):
                recorder.log(loss=1.0 / (step + 1), step=step)
                step += 1
            recorder.flush()
        done.set()

    worker = threading.Thread(target=loop, daemon=True)
    worker.start()
    worker.join(timeout=60)
    assert done.is_set(), "the logging loop deadlocked in flush()"
    assert len(recorder.data()["default"]["loss"]) >= 200  # it logged, flushed and went on
    recorder.close()


def test_a_frame_the_render_thread_draws_is_waited_for_by_a_log_call_that_comes_meanwhile():
    """A frame whose offer nobody took in time (the loop was held up: a long call, the OS) is
    drawn by the render thread; a logging thread that asks for a frame while it is drawn waits
    for it, instead of taking the GIL and the store's lock from it at every turn (such frames
    took seconds in tight loops), and does not draw another one right after it."""
    order: list[str] = []
    started, release = threading.Event(), threading.Event()

    def render() -> int:
        order.append(f"frame on {threading.current_thread().name}")
        started.set()
        release.wait(10)
        order.append("frame end")
        return 1

    scheduler = FrameScheduler(render, fps=50)
    scheduler.request()  # nothing logs during the offer: the render thread draws it
    assert started.wait(10)
    scheduler.request()  # new data: the next frame is pending
    threading.Timer(0.2, lambda: (order.append("released"), release.set())).start()
    scheduler.request()  # more data while that frame is drawn: waits for it
    order.append("request returned")
    assert order[:4] == ["frame on lossviz-render", "released", "frame end", "request returned"]
    assert scheduler.handed_over == 0
    assert scheduler.wait_idle(10)  # the pending frame is still drawn
    scheduler.stop()


def test_a_log_call_stops_waiting_for_a_frame_that_does_not_finish():
    """A frame the render thread cannot finish (a sink stuck on a slow disk) holds a logging
    thread at most FRAME_WAIT_S once: then the loop goes on, and later calls do not wait for it."""
    import math

    order: list[str] = []
    started, release = threading.Event(), threading.Event()

    def render() -> int:
        started.set()
        release.wait(30)
        order.append("frame end")
        return 1

    scheduler = FrameScheduler(render, fps=50)
    scheduler.request()  # nothing logs during the offer: the render thread draws it, and is stuck
    assert started.wait(10)
    scheduler.request()  # new data: the next frame is pending
    scheduler.request()  # waits for the stuck frame, gives up
    order.append("request returned")
    assert scheduler.deadline.at == math.inf  # later calls go on without waiting
    release.set()
    assert scheduler.wait_idle(10)
    assert order[:2] == ["request returned", "frame end"]
    scheduler.stop()


def test_a_frame_asked_for_later_comes_once_after_the_delay_unless_one_came_before():
    rec = Recorder()
    sched = FrameScheduler(rec.render, fps=20)
    t0 = time.monotonic()
    sched.request_later(0.4)  # (starts the thread, which may be waiting already)
    assert wait_until(lambda: len(rec.times) == 1, timeout=3)
    assert rec.times[0] - t0 >= 0.4
    time.sleep(0.6)
    assert len(rec.times) == 1  # once: not again and again
    sched.request_later(0.6)
    time.sleep(0.1)
    sched.request()  # a frame before the delay is the one asked for
    assert wait_until(lambda: len(rec.times) == 2, timeout=3)
    time.sleep(1.0)
    assert len(rec.times) == 2
    sched.stop()
