"""``Recorder``: everything a live plot is, without a widget.

A recorder owns the runs and their stores, the frame builder, the diagnostics, the frame
scheduler, the sinks that stream values to disk and the sources (followers) that feed it. It
is what a script, a DDP rank or a test uses; :class:`~lossviz_widget.LossPlot` is a view over
one (traits, layout, display).

Data path: :meth:`Recorder.log` -> :class:`~lossviz_widget._core.runs.RunStores` (validated,
buffered; the training loop's only cost) -> :class:`~lossviz_widget._core.scheduler.FrameScheduler`
(at most ``fps`` frames per second, on a background thread) -> sinks (every new point) and, when
a view is attached, :class:`~lossviz_widget._core.frame.FrameBuilder` (smoothing, downsampling,
readout) -> the view's ``draw(frame, findings)``.

Frames run in the background only when something consumes them: a live view (``attach_view``
with ``live=True``, i.e. a browser may be showing it) or a sink. Otherwise :meth:`flush` renders
on demand, on the calling thread.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from .._model import RunsData
from ..diagnostics import Diagnostics, DiagnosticsConfig, Finding
from ..forecast.ensemble import Prediction
from ..forecast.live import ForecastTracker
from .frame import Frame, FrameBuilder
from .parallel import cpu_time
from .rewind import Rewind, RewindCursor
from .run_groups import GroupBuilder, GroupSpec
from .runs import Run, RunStores, check_run
from .scheduler import Deadline, FrameScheduler
from .settings import ViewSettings
from .store import History, MetricStore
from .values import merge_metrics

__all__ = ["LIVE_DIAGNOSTICS_BUDGET", "Batch", "Finder", "Recorder", "Sink", "Source"]

log = logging.getLogger("lossviz_widget")

# points per series the diagnostics read in one live frame (~10 ms for 4 series); a backlog
# (extend(), a fast loop) is caught up over the next frames while the curves keep updating
LIVE_DIAGNOSTICS_BUDGET = 1 << 17
DIAGNOSTICS_FRAME_S = 0.005  # CPU seconds a live frame gives the diagnostics while points keep coming


class _DiagnosticsPace:
    """How many points per series the diagnostics read in the next live frame.

    While points keep arriving (a tight loop logs ~1M points/s), reading up to
    :data:`LIVE_DIAGNOSTICS_BUDGET` per series cost a frame 40-200 ms, and the scheduler spaces
    frames 5x their cost apart: the frames the user waits for came ever later. So a frame that
    finds new points reads what fits in :data:`DIAGNOSTICS_FRAME_S` of CPU at the pace the last
    budget-bound read measured (the diagnostics fall behind while the loop outpaces them, and the
    curves keep coming); one that finds none (logging paused or over) catches up at the full
    budget, frame after frame, until nothing is pending. Findings are the same once caught up.
    """

    def __init__(self) -> None:
        self.budget = 1 << 13  # until a budget-bound read measures the pace
        self._points: int | None = None  # points in the data at the last frame

    def next(self, data: RunsData) -> int:
        """The budget for this frame's read of ``data`` (the full one for the first frame)."""
        points = sum(len(h) for metrics in data.values() for h in metrics.values())
        arriving = self._points is not None and points != self._points
        self._points = points
        return self.budget if arriving else LIVE_DIAGNOSTICS_BUDGET

    def measured(self, budget: int, spent: float, pending: bool) -> None:
        """A read at ``budget`` took ``spent`` CPU seconds; ``pending``: the budget bound it."""
        if pending and spent > 0:
            self.budget = int(min(max(budget * DIAGNOSTICS_FRAME_S / spent, 1024), LIVE_DIAGNOSTICS_BUDGET))


class Sink(Protocol):
    """Something that receives every point once, frame by frame (the ``log_file`` writer).

    ``rewinds`` are the step rewinds (:mod:`.rewind`) that happened before ``data`` was taken and
    were not given to this sink yet: the sink applies them before it reads ``data``.
    """

    def write_new(self, data: RunsData, rewinds: Sequence[Rewind]) -> None: ...

    @property
    def error(self) -> str:
        """Why the last write failed ("" when it worked); shown in :meth:`Recorder.errors`."""

    def close(self) -> None: ...


class Source(Protocol):
    """Something that feeds a recorder from elsewhere (a log follower) until stopped."""

    @property
    def current_error(self) -> BaseException | None: ...

    @property
    def notes(self) -> list[str]: ...

    def stop(self, timeout: float | None = 10.0) -> None: ...


class Batch(Protocol):
    """Points of one metric of one run, as sources deliver them (read-only: readers' are frozen)."""

    @property
    def run(self) -> str: ...

    @property
    def metric(self) -> str: ...

    @property
    def steps(self) -> Any: ...

    @property
    def values(self) -> Any: ...

    @property
    def wall_times(self) -> Any: ...


Draw = Callable[[Frame, Sequence[Finding]], int]
Finder = Callable[[RunsData], Sequence[Finding]]  # every finding so far of rules on other data (watch())
Feed = Callable[[], None]  # appends points held off the store, before each snapshot (see Recorder.add_feed)


class Recorder:
    """Runs, frames, diagnostics and streaming, with no widget.

    >>> rec = Recorder()
    >>> rec.log(loss=0.9, step=0)
    >>> rec.frame().readout[0].latest
    0.9

    ``settings`` decides how frames are drawn (:class:`~lossviz_widget._core.settings.ViewSettings`);
    ``diagnostics_config`` sets every diagnostics threshold, ``diagnostics=False`` turns them off;
    ``num_classes`` enables the initial cross-entropy check (``ln C``); ``on_rewind`` is what a
    metric logged below its last step does: ``"purge"`` its later points, go on as a ``"new_run"``,
    or ``"raise"`` (see :mod:`lossviz_widget._core.rewind`).
    """

    def __init__(self, settings: ViewSettings | None = None, *, diagnostics: bool = True,
                 diagnostics_config: DiagnosticsConfig | None = None, num_classes: int | None = None,
                 on_rewind: str = "purge") -> None:
        if diagnostics_config is not None and not isinstance(diagnostics_config, DiagnosticsConfig):
            raise TypeError(f"diagnostics_config must be a DiagnosticsConfig, got {type(diagnostics_config).__name__}")
        self._settings = settings or ViewSettings()
        self._diag_config = diagnostics_config or DiagnosticsConfig()
        if num_classes is not None:
            self._diag_config = dataclasses.replace(self._diag_config, num_classes=num_classes)
        self._diagnostics_on = diagnostics
        self._diag = Diagnostics(self._diag_config)
        self._diag_pace = _DiagnosticsPace()
        deadline = Deadline()  # the scheduler's, read by log()'s hot path: see FrameScheduler
        self._runs = RunStores(on_rewind, on_new_default=self._set_default, deadline=deadline)
        self._store = self._runs.default  # the default run: log() without run=
        self._builder = FrameBuilder()
        self._lock = threading.Lock()  # one frame at a time; guards builder, diagnostics and sinks
        self._replayed = RewindCursor()  # rewinds the builder and the diagnostics have forgotten
        self._sinks: list[tuple[Sink, RewindCursor]] = []
        self._sources: list[Source] = []
        self._finders: list[Finder] = []
        self._feeds: list[Feed] = []
        self._feed_lock = threading.Lock()  # one feed pass at a time (taken after _lock, never before it)
        self._draw: Draw | None = None
        self._live = False
        self._background = False  # self._live or any sink: read by every log() call, so a plain attribute
        self._on_status: Callable[[], None] | None = None
        self._render_error = ""  # the last frame's error, until a frame renders again
        self._groups: GroupBuilder | None = None  # run groups (group_runs), drawn as a line with a band
        self._param_sources: list[Any] = []  # sources with ``params`` (run -> params): tracking servers
        # horizon, targets, latest predictions (settings.forecast), fitted by its own worker thread
        self._forecasts = ForecastTracker(on_fitted=self.request_frame)
        self._scheduler = FrameScheduler(self._frame_from_thread, fps=self._settings.fps, on_error=self._report_error,
                                         deadline=deadline)

    # -- taking in data ----------------------------------------------------------------------------

    def log(self, metrics: Mapping[str, Any] | None = None, /, *, step: float | None = None,
            run: str | None = None, **values: Any) -> None:
        """Record one value per metric at ``step``; see :meth:`lossviz_widget.LossPlot.log`."""
        store = self._store if run is None else self._runs.get(run)
        if metrics is None and values:  # keywords only: the common case, and the hot path
            # ``values`` is this call's own dict (str keys). False: a frame is already due.
            if store.log_kwargs(values, step) and self._background:
                self._scheduler.request(settle=True)
            return
        self._log_into(store, metrics, step, values)

    def _set_default(self, store: MetricStore) -> None:
        """A rewind continued the default run as a new run (``on_rewind="new_run"``)."""
        self._store = store

    @property
    def on_rewind(self) -> str:
        """What a step rewind does: ``"purge"``, ``"new_run"`` or ``"raise"``."""
        return self._runs.on_rewind

    def _log_into(self, store: MetricStore, metrics: Mapping[str, Any] | None, step: Any,
                  values: dict[str, Any]) -> None:
        if store.log(merge_metrics(metrics, values), step):
            self.changed(settle=True)

    def extend(self, metric: str, steps: Any, values: Any, wall_time: Any = None, *, run: str | None = None,
               request: bool = True) -> None:
        """Append many points of one metric at once; see :meth:`lossviz_widget.LossPlot.extend`.
        ``request=False``: no frame is asked for (a feed, whose points the snapshot being taken reads)."""
        (self._store if run is None else self._runs.get(run)).extend(metric, steps, values, wall_time)
        if request:
            self.changed()

    def extend_batches(self, batches: Sequence[Batch]) -> None:
        """Append read log points; a batch that is rejected (say, steps going back) does not stop
        the others, and ``ValueError`` then names each rejected run."""
        errors = []
        for b in batches:
            try:
                self.extend(b.metric, b.steps, b.values, b.wall_times, run=b.run)
            except (TypeError, ValueError) as exc:
                errors.append(f"run {b.run!r}: {exc}")
        if errors:
            raise ValueError("; ".join(errors))

    def load(self, runs: Mapping[str, Mapping[str, Any]]) -> None:
        """Fill an empty recorder with a data file's runs (in the file's order)."""
        self._runs.load(runs)
        self.changed()

    def changed(self, settle: bool = False) -> None:
        """New data arrived: schedule a frame if anything consumes one (``settle``: logged points,
        whose burst's first frame waits one interval; see :meth:`FrameScheduler.request`)."""
        if self._background:
            self._scheduler.request(settle)

    def run(self, name: str) -> Run:
        """A handle that logs to run ``name``; see :meth:`lossviz_widget.LossPlot.run`."""
        return Run(check_run(name), self._runs.get(name), self._log_into, self.changed, self._runs.names)

    # -- reading -----------------------------------------------------------------------------------

    @property
    def runs(self) -> tuple[str, ...]:
        """Names of the runs holding data, in the order their first value was logged."""
        return self._runs.names()

    @property
    def history(self) -> History:
        """Full-resolution data of the only run, or with several runs of the default run."""
        self._run_feeds()
        run, store = self._runs.primary()
        return History(store, run, self.runs)

    def data(self) -> RunsData:
        """Every run's full-resolution data now: ``run -> metric -> MetricHistory`` (read-only views)."""
        self._run_feeds()
        return self._runs.snapshot()

    @property
    def t0(self) -> float | None:
        """Wall time of the first value of any run (the origin of relative time)."""
        return self._runs.t0

    def frame(self, max_points: int = 4000) -> Frame:
        """The current view (panels, colours, smoothing, scales, readout) at ``max_points`` per line.

        What exports, reports and tests read. Built by a fresh :class:`FrameBuilder`, so the live
        view's incremental state is untouched. With forecasts on, it waits for the refits of the
        series whose points changed (not holding the lock, so live frames go on meanwhile).
        """
        settings = dataclasses.replace(self._settings, max_points=max_points, plot_width=0)  # not the browser's width
        if settings.forecast:
            with self._lock:
                data, _ = self._snapshot()
            self._forecasts.settle(data)
        with self._lock:
            data, rewinds = self._snapshot()
            findings = self._current_findings(data)
            groups = None if self._groups is None else GroupBuilder(self._groups.spec)
            frame = self._build_frame(FrameBuilder(), data, settings, findings, groups, _in_order(rewinds), live=False)
        return frame

    def _build_frame(self, builder: FrameBuilder, data: RunsData, settings: ViewSettings,
                     findings: Sequence[Finding], groups: GroupBuilder | None, rewinds: Sequence[Rewind],
                     live: bool) -> Frame:
        """A frame of ``data`` (under ``_lock``); with run groups, their bands added and their members'
        lines left out (unless shown; their readout rows stay); with forecasts, the latest fitted (the
        refits of changed series asked of the forecasts' worker, all, or ``live`` a few a second,
        never waited for: see :mod:`lossviz_widget.forecast.live`)."""
        frame = builder.build(data, self._runs.t0, settings, findings, rewinds)
        if groups is not None:
            groups.add_to(frame, data, settings, self.run_params())
        if settings.forecast:
            self._forecasts.update(data, live)
            self._forecasts.add_to(frame, settings.x_axis == "step", settings.hidden_runs)
        return frame

    def diagnose(self) -> list[Finding]:
        """Every finding so far (oldest first), after reading the points logged since the last frame."""
        with self._lock:
            return self._current_findings(self._snapshot()[0])

    def _snapshot(self) -> tuple[RunsData, dict[str, tuple[Rewind, ...]]]:
        """Every run's data and every rewind so far (under ``_lock``). The series rewound since the
        last call are forgotten by the frame builder and the diagnostics first (recomputed from
        their data), so no cache built from purged points survives. The feeds append theirs first."""
        self._run_feeds()
        data, rewinds = self._runs.snapshot_with_rewinds()
        for rewind in self._replayed.take(rewinds):
            self._builder.forget(rewind.run, rewind.metric)
            self._diag.forget_run(rewind.run)
            self._forecasts.forget(rewind.run)
        return data, rewinds

    def _current_findings(self, data: RunsData, budget: int | None = None) -> list[Finding]:
        if not self._diagnostics_on:
            return []
        if budget is None:
            self._diag.update(data)
        else:
            budget = min(budget, self._diag_pace.next(data))
            started = cpu_time()
            self._diag.update(data, budget)
            self._diag_pace.measured(budget, cpu_time() - started, self._diag.pending > 0)
        found = list(self._diag.findings)
        for finder in self._finders:
            found += finder(data)
        return sorted(found, key=lambda f: f.step) if self._finders else found

    # -- settings ----------------------------------------------------------------------------------

    @property
    def settings(self) -> ViewSettings:
        """How frames are drawn; setting it schedules a frame."""
        return self._settings

    @settings.setter
    def settings(self, value: ViewSettings) -> None:
        self._settings = value
        self._scheduler.fps = value.fps
        self.request_frame()

    @property
    def diagnostics(self) -> bool:
        """Whether diagnostics run; turning them off drops all their state (nothing runs while off)."""
        return self._diagnostics_on

    @diagnostics.setter
    def diagnostics(self, on: bool) -> None:
        with self._lock:
            self._diagnostics_on = bool(on)
            if not on:
                self._diag = Diagnostics(self._diag_config)
        self.request_frame()

    # -- forecasts ----------------------------------------------------------------------------------

    def forecast_to(self, steps: float | None = None, target: float | None = None, *,
                    metric: str | None = None) -> None:
        """Forecast to step ``steps`` (None: twice the last step) and, with ``target``, when ``metric``
        (None: the main metric, the first of the ``loss`` family, once there is one) reaches it; see
        :meth:`lossviz_widget.LossPlot.forecast_to`. A ``metric`` that is neither a loss nor an
        accuracy is forecast from then on too."""
        with self._lock:
            self._forecasts.forecast_to(steps, target, metric)
        self.request_frame()

    def prediction(self, metric: str, run: str | None = None) -> Prediction:
        """The forecast of ``metric`` of ``run`` (None: the only run, else the default run) now: final
        value at the horizon with its 80% interval, ETA to the target, model, or why there is none.
        Works whether ``forecast`` is on or not. Raises ``KeyError`` for a metric the run does not have."""
        with self._lock:
            data, _ = self._snapshot()
            name = self._runs.primary()[0] if run is None else check_run(run)
        if name not in data or metric not in data[name] or not len(data[name][metric]):
            held = sorted(data.get(name, {}))
            raise KeyError(f"run {name!r} has no values of {metric!r} (it has {held})")
        return self._forecasts.predict(data, name, metric)  # fitted by the worker, not under the lock

    # -- run groups ---------------------------------------------------------------------------------

    def group_runs(self, by: Any, *, stat: str = "mean", band: str = "minmax", show_members: bool = False) -> None:
        """Draw runs that differ only by seed (say) as one line with a band; see
        :meth:`lossviz_widget.LossPlot.group_runs`."""
        spec = GroupSpec.make(by, stat, band, show_members)
        with self._lock:
            self._groups = GroupBuilder(spec)
        self.request_frame()

    def ungroup_runs(self) -> None:
        """Draw every run on its own again (undoes :meth:`group_runs`)."""
        with self._lock:
            self._groups = None
        self.request_frame()

    def add_param_source(self, source: Any) -> None:
        """Take the runs' params from ``source.params`` (run -> params: a tracking server's reader),
        for :meth:`group_runs` with a function."""
        self._param_sources.append(source)

    def run_params(self) -> dict[str, dict[str, str]]:
        """Run -> params, from the tracking servers read."""
        params: dict[str, dict[str, str]] = {}
        for source in list(self._param_sources):
            params.update(source.params)
        return params

    # -- consumers and sources ---------------------------------------------------------------------

    def attach_view(self, draw: Draw, *, live: bool, on_status: Callable[[], None] | None = None) -> None:
        """Send each frame to ``draw(frame, findings)`` (returns the number of messages it sent).

        ``live``: frames are drawn in the background as data arrives (a browser may show them);
        otherwise only :meth:`flush` draws. ``on_status`` is called when :meth:`errors` change.
        """
        self._draw = draw
        self._live = live
        self._background = live or bool(self._sinks)  # (sinks: a list of pairs)
        self._on_status = on_status
        if live:
            self._scheduler.start()  # now, not in the training loop's first log()

    def add_sink(self, sink: Sink) -> None:
        """Stream every point to ``sink`` from now on; what is held already goes in the next frame."""
        with self._lock:
            cursor = RewindCursor()  # the rewinds before now are in the data the sink starts from
            cursor.take(self._runs.snapshot_with_rewinds()[1])
            self._sinks.append((sink, cursor))
            self._background = True
        self._render(draw=False)
        self._scheduler.request()

    def add_finder(self, finder: Finder) -> None:
        """Merge ``finder(data)`` (every finding so far of rules on data the recorder does not hold,
        such as :meth:`lossviz_widget.LossPlot.watch`'s gradients) into each frame's findings and
        :meth:`diagnose`, by step. Called under the frame lock, only while diagnostics are on."""
        with self._lock:
            self._finders.append(finder)
        self.request_frame()

    def add_feed(self, feed: Feed) -> None:
        """Call ``feed()`` first whenever the data is read (a frame, ``flush()``, :meth:`diagnose`,
        :attr:`history`, :meth:`data`): a producer that keeps its points off the store until then
        (the watcher's device rows: nothing per point in the training loop) appends them with
        ``extend(..., request=False)``, so whoever reads sees them with everything logged before.
        Feeds run one pass at a time, not necessarily under the frame lock; ``feed`` must not raise."""
        with self._feed_lock:
            self._feeds.append(feed)

    def _run_feeds(self) -> None:
        if self._feeds:
            with self._feed_lock:
                for feed in self._feeds:
                    feed()

    def add_source(self, source: Source) -> None:
        """Keep ``source`` (a started follower) until :meth:`stop_sources` or :meth:`close`."""
        self._sources.append(source)

    def stop_sources(self) -> None:
        """Stop every source; their threads end before this returns.

        Raises ``TimeoutError`` if one is stuck (say, on a hung network file system), after
        asking every source to stop."""
        stuck: TimeoutError | None = None
        while self._sources:
            try:
                self._sources.pop().stop()
            except TimeoutError as exc:
                stuck = stuck or exc
        self.status_changed()  # their errors are no longer current
        if stuck is not None:
            raise stuck

    def errors(self) -> list[str]:
        """What is wrong on the plotting side right now (shown in a view's status line)."""
        errors = [self._render_error] if self._render_error else []
        errors += [sink.error for sink, _ in list(self._sinks) if sink.error]
        errors += [f"following logs error: {type(e).__name__}: {e}"
                   for e in (s.current_error for s in list(self._sources)) if e is not None]
        return errors

    def notes(self) -> list[str]:
        """What the sources have to say that is not an error (a tracking server's run was deleted)."""
        return [note for s in list(self._sources) for note in s.notes]

    def status_changed(self) -> None:
        """Tell the view that :meth:`errors` changed (sources call this from their threads)."""
        if self._on_status is not None:
            self._on_status()

    # -- frames ------------------------------------------------------------------------------------

    @property
    def background(self) -> bool:
        """Whether frames run on the background thread: to draw live or to feed a sink."""
        return self._background

    def request_frame(self) -> None:
        """Schedule a frame (throttled to ``fps``) if a live view shows them."""
        if self._live:
            self._scheduler.request()

    def request_frame_later(self, delay: float) -> None:
        """Schedule a frame ``delay`` seconds from now, unless one comes before, if a live view shows
        them (see :meth:`~lossviz_widget._core.scheduler.FrameScheduler.request_later`)."""
        if self._live:
            self._scheduler.request_later(delay)

    def flush(self) -> None:
        """Draw (and write to the sinks) everything logged so far, now, on this thread."""
        self._render()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until every frame requested so far is drawn (and every forecast refit asked for
        has landed, with the frame it asks for); False on timeout."""
        end = None if timeout is None else time.monotonic() + timeout
        if not self._forecasts.wait(timeout):
            return False
        return self._scheduler.wait_idle(None if end is None else max(end - time.monotonic(), 0.0))

    def _frame_from_thread(self) -> int:
        return self._render(draw=self._live, budget=LIVE_DIAGNOSTICS_BUDGET)

    def _render(self, draw: bool = True, budget: int | None = None) -> int:
        """Write new points to the sinks and, with ``draw``, build and draw one frame; returns the
        number of widget messages sent. With ``budget`` (live frames) the diagnostics read at most
        that many new points per series, and while they are behind the next frame is requested."""
        with self._lock, self._scheduler.rendering():
            started = cpu_time()
            data, rewinds = self._snapshot()
            if self._sinks:
                failing = [sink.error for sink, _ in self._sinks]
                for sink, cursor in self._sinks:
                    sink.write_new(data, cursor.take(rewinds))
                if failing != [sink.error for sink, _ in self._sinks]:
                    self.status_changed()  # a write failed, or works again
                self._scheduler.exempt = cpu_time() - started  # the log keeps up: see FrameScheduler
            if not draw or self._draw is None:
                return 0
            findings = self._current_findings(data, budget)
            if self._diag.pending:
                self._scheduler.request()
            frame = self._build_frame(self._builder, data, self._settings, findings, self._groups,
                                      _in_order(rewinds), live=budget is not None)
            self._render_error = ""  # this frame renders: an earlier error is over (it stays logged)
            return self._draw(frame, findings)

    def _report_error(self, exc: BaseException) -> None:
        """A frame failed (the scheduler logged it): show it until a frame renders again."""
        self._render_error = f"rendering error: {type(exc).__name__}: {exc}"
        self.status_changed()

    def close(self) -> None:
        """Stop the sources and the frame thread, write the last points to the sinks, close them.

        Raises ``TimeoutError`` (after closing everything else) if a source was stuck."""
        stuck: TimeoutError | None = None
        try:
            self.stop_sources()
        except TimeoutError as exc:  # a poll stuck on a slow file system: close the rest anyway
            stuck = exc
        self._forecasts.close()  # no fit starts after this, none lands
        self._scheduler.stop()
        self._render(draw=False)  # the last points reach the sinks
        with self._lock:
            sinks, self._sinks = self._sinks, []
            self._background = self._live
        for sink, _ in sinks:
            sink.close()
        if stuck is not None:
            raise stuck


def _in_order(rewinds: Mapping[str, Sequence[Rewind]]) -> list[Rewind]:
    """Every run's rewinds in one list (each run's in the order they happened)."""
    return [r for events in rewinds.values() for r in events]
