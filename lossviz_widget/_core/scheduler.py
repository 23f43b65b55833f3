"""Coalesce "data changed" signals into at most ``fps`` frames per second.

``request()`` is what ``log()`` calls: after the first request of a frame it is
a single attribute read, so the training loop never pays for plotting. A daemon
thread renders the frame, never sooner than ``1/fps`` after the previous one,
and always once more after the last request (the trailing frame), so the final
value shows even when logging stops. The first frame of a burst of logging (``request(settle=True)``
after a pause) waits ``1/fps`` too: a short loop is then drawn once, after it, instead of paying
for a frame (the first one also for its one-off setup: figures, marks) in its own time.
The render callback returns how many widget messages it sent; the next frame waits long enough to keep the IOPub
rate under ``max_messages_per_s`` (jupyter_server drops messages above 1000/s)
and to keep rendering under ``max_busy_fraction`` of wall time, so slow frames
never starve the training loop of the GIL (but never more than :data:`MAX_SPACING_S` apart
for that: a costly frame must not stop the view for seconds). A frame's cost is the render thread's
own CPU time, plus the CPU that helper threads spent on its jobs (a full recompute
of several series runs on a few cores, :mod:`._parallel`): its wall time also
counts the waits for the GIL that a busy training loop causes, which would
throttle frames exactly when the run is live. CPU the render reports as
:attr:`FrameScheduler.exempt` (writing ``log_file``) does not throttle: a log
must keep up with the loop (a kill loses at most the last frame), and its cost per
point is the same whether it is written in many frames or few.

:meth:`FrameScheduler.wait_idle` blocks until every request so far has been drawn
(nothing pending, no frame in progress): what a caller that must see the end of
a burst of logging drawn waits for, however long throttling delays the frame.

The thread holds only a weak reference to the owner's render method, so a
forgotten plot does not keep itself alive.
"""

from __future__ import annotations

import atexit
import logging
import math
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from .parallel import cpu_time

__all__ = ["HAND_OVER_S", "MAX_SPACING_S", "Deadline", "FrameScheduler"]

log = logging.getLogger("lossviz_widget")

HAND_OVER_S = 0.05  # how long a due frame waits for a logging thread to draw it (see FrameScheduler)
HANDED_OVER_MAX_S = 0.25  # the most a handed-over frame's wall time (beyond its CPU time) delays the next
MAX_SPACING_S = 0.4  # the most a frame's cost delays the next (a frame every 0.5 s, even in tight loops)
FRAME_WAIT_S = 0.5  # the most a log() call waits for a frame the render thread is drawing (see FrameScheduler)
HANDED_OVER_SHARE = 0.5  # of max_busy_fraction, for frames drawn in log(): the loop pays all of their CPU

# Render threads still running at interpreter exit are stopped first, so no frame is
# sent while the kernel tears down IOPub (registered after ipykernel's hooks, so it runs
# before them).
_running: weakref.WeakSet[FrameScheduler] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    for scheduler in list(_running):
        scheduler.stop(timeout=1.0)


class Deadline:
    """When the pending frame is overdue, in ``time.time()`` seconds (``inf``: none is).

    Shared by a scheduler and the stores that feed it: ``log()``'s hot path already reads the
    wall clock for each point, so comparing it with this is the whole cost of the hand-over (see
    :class:`FrameScheduler`)."""

    __slots__ = ("at",)

    def __init__(self) -> None:
        self.at = math.inf


class FrameScheduler:
    """Runs ``render()`` on a background thread, throttled to ``fps`` with a trailing frame.

    **Hand-over in tight loops.** A thread that logs as fast as it can holds the GIL; the render
    thread gets it back only after the interpreter's switch interval (5 ms), and loses it at every
    NumPy call or socket write that releases it, so one frame could take seconds. So when a frame
    is due, the render thread first offers it to the logging thread: it sets :attr:`deadline` to
    now and waits up to :data:`HAND_OVER_S`; ``log()``, which reads the clock anyway, sees the
    deadline passed and calls :meth:`request`, which draws the frame right there, in one hold of
    the GIL (:meth:`draw_overdue`). If nothing logs meanwhile, the render thread draws it itself,
    and the deadline stays passed while it does: a ``log()`` call that comes meanwhile (the loop
    was only held up, say by a long call or the OS) waits for that frame, instead of taking the
    GIL and the store's lock from it at every turn (such frames took 1-2.6 s in tight loops; the
    render thread waited up to 0.85 s for the store's lock alone, which the loop re-took first).
    It waits :data:`FRAME_WAIT_S` at most: a frame still not drawn by then (a sink stuck on a
    slow disk) no longer holds up the loop, which goes on as before.
    The wait is short because the frame after the loop's last ``log()`` (the trailing frame, which
    also writes ``log_file``) waits for it too: a kill soon after a loop must not lose more.
    Either way one frame is drawn. A handed-over frame gets half the CPU share
    (:data:`HANDED_OVER_SHARE`): a frame the render thread draws overlaps the loop in NumPy's
    GIL-free calls, one drawn in ``log()`` costs the loop all of its CPU (at the full share, frames
    alone made ``log()`` 1.25x slower in a tight loop). A handed-over frame also counts its wall
    time (the loop waited for all of it, the IOPub thread's sends included), but that part
    delays the next frame by at most :data:`HANDED_OVER_MAX_S`: one frame slowed by a busy machine
    must not stop frames for seconds.
    """

    def __init__(
        self,
        render: Callable[[], int],
        fps: float = 10.0,
        max_messages_per_s: float = 500.0,
        max_busy_fraction: float = 0.2,
        on_error: Callable[[BaseException], None] | None = None,
        deadline: Deadline | None = None,
    ) -> None:
        self._render = weakref.WeakMethod(render) if hasattr(render, "__self__") else (lambda: render)
        self.fps = fps
        self.max_messages_per_s = max_messages_per_s
        self.max_busy_fraction = max_busy_fraction
        self._on_error = on_error
        self._pending = threading.Event()
        self._stop = threading.Event()
        self._idle = threading.Event()  # set while nothing is pending or being rendered
        self._idle.set()
        self._idle_lock = threading.Lock()  # makes "pending -> not idle" and "drawn -> idle" atomic
        self._drawing = threading.Lock()  # held while a frame is drawn, on whichever thread
        self._drawn = threading.Event()  # set when a frame offered to the logging thread was drawn
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._next_allowed = 0.0  # time.monotonic() before which no frame starts (throttling)
        self._later = math.inf  # time.monotonic() at which a frame is due if none came before (request_later)
        self.deadline = deadline or Deadline()
        self._local = threading.local()  # .depth: frames being drawn on this thread (see rendering())
        self.frames = 0
        self.handed_over = 0  # frames drawn by the logging thread (see the class docstring)
        self.last_cost = 0.0  # CPU seconds of the last frame, helper threads' share included
        self.exempt = 0.0  # CPU seconds of the current frame that do not count towards throttling

    def request(self, settle: bool = False) -> None:
        """Ask for a frame soon. Cheap when one is already pending; draws it here when it is
        overdue (the render thread offered it to the caller: see the class docstring).

        ``settle`` (new data from ``log()``): if no frame was due for ``1/fps`` already, this is
        the start of a burst, and its frame waits ``1/fps`` (see the module docstring)."""
        if not self._pending.is_set():
            if self._thread is None:
                self.start()
            if settle:
                interval = 1.0 / self.fps
                now = time.monotonic()
                if now >= self._next_allowed + interval:
                    self._next_allowed = now + interval  # (before the render thread wakes to read it)
            with self._idle_lock:
                self._idle.clear()
                self._pending.set()
        elif time.time() >= self.deadline.at and not getattr(self._local, "depth", 0):
            self.draw_overdue()

    def request_later(self, delay: float) -> None:
        """Ask for a frame ``delay`` seconds from now (or at the earlier time already asked for),
        unless one comes before: a frame to draw once nothing has changed for a while (an axis's
        growth room dropped once a run stopped, see :mod:`.headroom`). Never draws on this thread;
        :meth:`wait_idle` does not wait for it. Meant for a frame to ask from its own render; the
        render thread wakes for it within a second at most (it may be waiting already)."""
        self._later = min(self._later, time.monotonic() + delay)
        if self._thread is None:
            self.start()

    @contextmanager
    def rendering(self) -> Iterator[None]:
        """Mark this thread as drawing a frame (the owner's render, whoever called it: this
        scheduler, or a ``flush()``). A request made meanwhile (a sink or the view asking for the
        next frame) then only schedules it: drawing the overdue frame there would re-enter the
        render, whose lock this thread holds."""
        self._local.depth = getattr(self._local, "depth", 0) + 1
        try:
            yield
        finally:
            self._local.depth -= 1

    def draw_overdue(self) -> None:
        """Draw the pending frame on the calling thread; if the render thread is drawing it
        already (the offer was not taken in time), wait for that frame instead (see the class
        docstring)."""
        if self._drawing.acquire(blocking=False):
            self._drawn.set()  # the render thread stops waiting for this frame
            try:
                if self._pending.is_set() and not self._stop.is_set():
                    self.handed_over += 1
                    self._draw()
            finally:
                self._drawing.release()
        elif self._drawing.acquire(timeout=FRAME_WAIT_S):
            self._drawing.release()
        else:  # a frame that slow (a sink stuck on a slow disk?) must not hold the loop: go on without it
            self.deadline.at = math.inf

    def start(self) -> None:
        """Start the render thread (the first request does, if nothing did before: starting it
        when a view attaches keeps that cost out of a training loop's first ``log()``)."""
        with self._start_lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._run, name="lossviz-render", daemon=True)
                _running.add(self)
                self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._pending.wait(timeout=min(1.0, max(0.0, self._later - time.monotonic())))
            if self._stop.is_set():
                return
            if not self._pending.is_set():
                if self._render() is None:  # owner was garbage-collected
                    return
                if time.monotonic() < self._later:
                    continue
                self.request()  # the frame asked for with request_later is due
            self._later = math.inf  # a frame now: it is the one request_later asked for
            delay = self._next_allowed - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                return
            frames = self.frames
            self._drawn.clear()
            self.deadline.at = time.time()  # offered to a logging thread first
            if self._drawn.wait(HAND_OVER_S):  # drawn there (or being drawn): throttle from that frame
                self.deadline.at = math.inf
                continue
            with self._drawing:  # (the deadline stays passed: a logging thread waits for this frame)
                if self.frames == frames and self._pending.is_set() and not self._stop.is_set():
                    self._draw()
                self.deadline.at = math.inf
            if self._render() is None:
                return

    def _draw(self) -> None:
        """One frame (the caller holds ``_drawing``): render, then when the next may start."""
        if threading.current_thread() is not self._thread:
            self.deadline.at = math.inf  # handed over: later calls of the loop go on
        self._pending.clear()  # requests from now on schedule another frame
        render = self._render()
        if render is None:
            return
        started = time.monotonic()
        cpu_started = cpu_time()
        self.exempt = 0.0
        try:
            messages = render() or 0
        except Exception as exc:  # keep drawing later frames; report and go on
            log.exception("lossviz_widget: rendering a frame failed")
            messages = 0
            if self._on_error is not None:
                self._on_error(exc)
        del render
        self.last_cost = busy = cpu_time() - cpu_started
        self.frames += 1
        with self._idle_lock:
            if not self._pending.is_set():
                self._idle.set()
        throttled = max(0.0, busy - self.exempt)
        if threading.current_thread() is self._thread:
            spacing = min(throttled / self.max_busy_fraction, MAX_SPACING_S)
        else:  # handed over: the loop paid all of it (half the share), and waited for its IOPub sends, GIL waits
            spacing = min(throttled / (self.max_busy_fraction * HANDED_OVER_SHARE), MAX_SPACING_S)
            waited = max(0.0, time.monotonic() - started - self.exempt)
            spacing = max(spacing, min(waited / self.max_busy_fraction, HANDED_OVER_MAX_S))
        interval = max(1.0 / self.fps, messages / self.max_messages_per_s, spacing)
        self._next_allowed = started + interval

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until every frame requested so far has been rendered; False on timeout.

        True at once when nothing was ever requested or the thread has stopped (its
        pending frames are dropped, so nothing more will be drawn).
        """
        end = None if timeout is None else time.monotonic() + timeout
        while not self._idle.wait(0.05):
            if not self.running:
                return True
            if end is not None and time.monotonic() >= end:
                return False
        return True

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread (pending frames are dropped; call the owner's flush first)."""
        self._stop.set()
        self.deadline.at = math.inf
        self._pending.set()
        self._drawn.set()
        _running.discard(self)
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()
