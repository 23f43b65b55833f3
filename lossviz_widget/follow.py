"""Following logs that another process (or machine, via shared storage) is writing.

A :class:`Follower` polls one or more sources on a daemon thread every ``interval``
seconds and hands the new points to a sink (for a ``LossPlot``: its ``extend``). A
source is a path (a :class:`~lossviz_widget.readers.LogSource` is made for it) or any
object with a ``poll() -> list[Batch]`` method (:class:`Source`: the tracking-server
readers :class:`~lossviz_widget.readers.mlflow.MlflowSource` and
:class:`~lossviz_widget.readers.trackio.TrackioSource`, whose ``notes`` the follower
passes on). Each poll costs a ``stat`` per known file, a folder walk
per followed folder, and reading only the bytes appended since the last poll.

Errors (an unreadable file, a file in an unknown format, a sink that rejects points)
are logged to the ``lossviz_widget`` logger and passed to ``on_error`` once per distinct
message, and polling goes on: a source that recovers is read again. An error stays
:attr:`Follower.current_error` until its source (or the sink) succeeds again or the
follower stops; then ``on_recover`` is called.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

from .readers import Batch, LogSource

__all__ = ["Follower", "Source"]

log = logging.getLogger("lossviz_widget")


@runtime_checkable
class Source(Protocol):
    """Anything a :class:`Follower` can poll: each call returns the points that are new since the last."""

    def poll(self) -> list[Batch]: ...


class Follower:
    """Polls ``paths`` (paths or :class:`Source` s) on a background thread; :meth:`start`, then
    :meth:`stop` (joins the thread)."""

    def __init__(self, paths: Sequence[str | os.PathLike[str] | Source], sink: Callable[[list[Batch]], None], *,
                 interval: float = 1.0, on_error: Callable[[BaseException], None] | None = None,
                 on_recover: Callable[[], None] | None = None) -> None:
        if not paths:
            raise TypeError("follow() needs at least one path: a log file or a folder of runs")
        for p in paths:
            if not isinstance(p, (str, os.PathLike, Source)):
                raise TypeError(f"follow() paths must be str or os.PathLike, got {type(p).__name__}")
        if isinstance(interval, bool) or not isinstance(interval, (int, float)) or not (
                math.isfinite(interval) and interval > 0):
            raise ValueError(f"interval must be a positive number of seconds, got {interval!r}")
        self.sources = [p if isinstance(p, Source) else LogSource(p) for p in paths]
        self.interval = float(interval)
        self.polls = 0  # completed polling rounds
        self.last_error: BaseException | None = None
        self._sink = sink
        self._on_error = on_error
        self._on_recover = on_recover
        self._failing: dict[int, BaseException] = {}  # source index (-1: the sink) -> error, until it succeeds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # one poll at a time: a poll from the caller while the thread polls would otherwise read the
        # next bytes and hand them to the sink before the earlier ones (which the plot then rejects)
        self._poll_lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start polling (the first poll happens at once)."""
        if self._thread is not None:
            raise RuntimeError("this Follower was already started; create a new one")
        self._thread = threading.Thread(target=self._run, name="lossviz-follow", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = 10.0) -> None:
        """Stop polling and wait for the thread to end (a poll under way finishes first)."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                raise TimeoutError(f"the follow thread did not stop within {timeout} s")
        if self._failing:  # nothing is followed any more, so nothing is failing
            self._failing.clear()
            if self._on_recover is not None:
                self._on_recover()

    def poll(self) -> int:
        """One round: new points from every source go to the sink. Returns how many points.

        Safe to call while the thread polls: rounds run one at a time, in order.
        """
        with self._poll_lock:
            return self._poll()

    @property
    def current_error(self) -> BaseException | None:
        """The latest error of a source (or the sink) that has not succeeded since; None when all is well."""
        failing = list(self._failing.values())  # one atomic copy: the polling thread may change the dict
        return failing[-1] if failing else None

    @property
    def notes(self) -> list[str]:
        """What the sources have to say that is not an error (a tracking server's run was deleted)."""
        return [note for source in self.sources for note in getattr(source, "notes", ())]

    def _poll(self) -> int:
        failed_before = bool(self._failing)
        batches: list[Batch] = []
        for i, source in enumerate(self.sources):
            try:
                batches.extend(source.poll())
            except Exception as exc:
                self._report(i, exc)
            else:
                self._failing.pop(i, None)
        if batches:
            try:
                self._sink(batches)
            except Exception as exc:
                self._report(-1, exc)
            else:
                self._failing.pop(-1, None)
        self.polls += 1
        if failed_before and not self._failing and self._on_recover is not None:
            self._on_recover()
        return sum(len(b) for b in batches)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.poll()
            self._stop.wait(self.interval)

    def _report(self, key: int, exc: BaseException) -> None:
        self.last_error = exc
        old = self._failing.pop(key, None)
        self._failing[key] = exc  # last in the dict: the latest current error
        if old is None or _message(old) != _message(exc):
            log.error("lossviz_widget: following logs failed: %s", _message(exc))
            if self._on_error is not None:
                self._on_error(exc)


def _message(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
