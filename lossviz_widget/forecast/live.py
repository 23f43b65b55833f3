"""Forecasts of a live plot: which series, how often they are refitted, and what frames show of them.

A :class:`ForecastTracker` belongs to a :class:`~lossviz_widget.Recorder`. With the view setting
``forecast`` on, each frame calls :meth:`ForecastTracker.update` where the diagnostics run (on the
frame thread, under the recorder's lock, never in ``log()``). It never fits there: it hands the
series' points (read-only views of the recorder's snapshot, which later logging never changes) to
the tracker's one worker thread, which fits them outside the lock, one fit at a time, and the
frame draws the latest finished prediction; when a fit finishes the tracker asks for one more
frame (``on_fitted``), so the band appears without waiting for the next point. A refit costs up
to ~0.7 s (``benchmarks/FORECAST.md``): under the lock it would delay that frame and every
``frame()``, ``diagnose()`` and ``prediction()`` caller. Live frames ask for at most one series
whose points changed at a time, no more than :data:`REFITS_PER_SECOND` a second in all and in no
more than :data:`REFIT_SHARE` of the wall time (a refit costs the same whatever the length of the
run, :func:`~.ensemble.forecast`), so a plot of many series refreshes them in turn, the one fitted
longest ago first. A fit of a run rewound or purged meanwhile is dropped when it finishes
(:meth:`ForecastTracker.forget`). :meth:`ForecastTracker.predict` (``prediction()``) and
:meth:`ForecastTracker.settle` (``frame()``, what exports and reports read) wait for a fresh fit
from the same worker, without the recorder's lock. :meth:`ForecastTracker.add_to` then puts into
the frame:

* per forecast series on the step axis, a :class:`~lossviz_widget._core.run_groups.BandFrame`:
  the median as a dashed line and the 80% interval as a band in the series' colour, from its last
  step to the horizon;
* per readout row, the sentence of :meth:`~.ensemble.Prediction.sentence`;
* per run, with two or more runs forecast on the main metric, the probability that the run ends
  better (below, for a loss) than the median forecast of the run with the best one (the runs
  table shows it: the early-stopping hint a sweep needs).

A run that logs its learning rate (``lr``, ``learning_rate``...) has each forecast fitted after
the rate's last step drop (:func:`~.curve.lr_drop`).

Series forecast: losses and accuracies (:func:`forecast_by_default`), plus any metric given to
:meth:`ForecastTracker.forecast_to`. The horizon is the step given there, else twice the last step
of the metric's longest run (the same for every run, so their forecasts compare).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from dataclasses import dataclass

from .._core.formatting import format_number
from .._core.frame import Frame, PanelFrame, main_metric
from .._core.grouping import higher_is_better, is_accuracy, is_learning_rate
from .._core.run_groups import BandFrame
from .._model import DEFAULT_RUN, MetricHistory
from ..diagnostics.findings import is_loss_like
from .ensemble import Prediction, forecast

__all__ = ["REFITS_PER_SECOND", "REFIT_SHARE", "ForecastTracker", "forecast_by_default"]

log = logging.getLogger("lossviz_widget")

REFITS_PER_SECOND = 2.0  # live refits of all series together, at most
REFIT_SHARE = 0.05  # of the wall time, at most, spent in live refits
MAX_WAKE = 60.0  # seconds: the latest a frame is asked for to refit a series left stale


def forecast_by_default(name: str) -> bool:
    """Whether ``plot.forecast = True`` forecasts metric ``name``: losses and accuracies."""
    return is_loss_like(name) or is_accuracy(name)


_Key = tuple[int, float, float, "float | None"]  # points, last step, horizon, target


@dataclass(frozen=True)
class _Fitted:
    key: _Key
    prediction: Prediction
    at: float  # when its fit started (the tracker's clock)


@dataclass(frozen=True)
class _Pending:
    key: _Key
    future: Future[Prediction]
    paced: bool  # a live frame's refit: the pace rules count it


class ForecastTracker:
    """The horizon, targets and latest predictions of one recorder's series, and the worker thread
    that fits them (see the module docstring). ``on_fitted`` is called (from the worker) when a
    fit lands, to ask for a frame that shows it. Thread-safe."""

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 on_fitted: Callable[[], None] | None = None) -> None:
        self._horizon: float | None = None
        self._targets: dict[str | None, float] = {}  # None: the main metric's
        self._extra: set[str] = set()  # metrics forecast on request that are neither losses nor accuracies
        self._fitted: dict[tuple[str, str], _Fitted] = {}
        self._pending: dict[tuple[str, str], _Pending] = {}  # fits asked of the worker, not landed yet
        self._epochs: dict[str, int] = {}  # per run, bumped by forget(): a fit from before lands nowhere
        self._clock = clock
        self._on_fitted = on_fitted
        self._next_refit = -math.inf  # the clock's time from which a live refit may start
        self._state = threading.RLock()  # guards everything above (the worker and the callers share it)
        self._one_fit = threading.Lock()  # two fits never run at once (the worker's, or a caller's after close)
        self._worker: ThreadPoolExecutor | None = None  # started at the first fit
        self._wake: threading.Timer | None = None  # asks for a frame when the pace lets a refit start
        self._closed = False

    def forecast_to(self, steps: float | None, target: float | None, metric: str | None) -> None:
        """Set the horizon (None: twice the last step) and ``metric``'s target (None: the main
        metric's, whichever it is when the forecast runs)."""
        if steps is not None:
            steps = _number("steps", steps)
            if steps <= 0:
                raise ValueError(f"forecast_to: steps must be > 0, got {steps!r}")
        if target is not None:
            target = _number("target", target)
        if metric is not None and not isinstance(metric, str):
            raise TypeError(f"forecast_to: metric must be a str, got {type(metric).__name__}")
        with self._state:
            self._horizon = steps
            if target is None:
                self._targets.pop(metric, None)
            else:
                self._targets[metric] = target
            if metric is not None and not forecast_by_default(metric):
                self._extra.add(metric)

    def wanted(self, name: str) -> bool:
        """Whether metric ``name`` is forecast while ``forecast`` is on."""
        return name in self._extra or forecast_by_default(name)

    def horizon(self, data: Mapping[str, Mapping[str, MetricHistory]], name: str) -> float:
        """The horizon of metric ``name``: the one set, else twice its longest run's last step."""
        if self._horizon is not None:
            return self._horizon
        last = [float(m[name].steps[-1]) for m in data.values() if name in m and len(m[name])]
        return 2.0 * max(last) if last else math.nan

    def _key(self, data: Mapping[str, Mapping[str, MetricHistory]], run: str, name: str) -> _Key:
        with self._state:
            h = data[run][name]
            target = self._targets.get(name)
            if target is None and None in self._targets:
                names = list(dict.fromkeys(n for metrics in data.values() for n in metrics))
                target = self._targets[None] if name == main_metric(names) else None
            return (len(h), float(h.steps[-1]) if len(h) else math.nan, self.horizon(data, name), target)

    def predict(self, data: Mapping[str, Mapping[str, MetricHistory]], run: str, name: str) -> Prediction:
        """The forecast of ``run``'s metric ``name`` in ``data`` (refitted if its points changed):
        waits for the fit (the worker's, or on this thread once closed)."""
        key = self._key(data, run, name)
        with self._state:
            fitted = self._fitted.get((run, name))
            if fitted is not None and fitted.key == key:
                return fitted.prediction
            future = None if self._closed else self._submit(data, run, name, key, paced=False)
        if future is not None:
            try:
                return future.result()
            except CancelledError:  # closed meanwhile: fit here
                pass
        with self._one_fit:
            return self._fit(data[run], run, name, key)

    def settle(self, data: Mapping[str, Mapping[str, MetricHistory]]) -> None:
        """Fit every wanted series of ``data`` whose points changed and wait for the fits (one at a
        time, by the worker): what ``frame()`` does so exports and reports show fresh forecasts."""
        for run, name in self._stale(data):
            self.predict(data, run, name)

    def latest(self, run: str, name: str) -> Prediction | None:
        """The last forecast made of ``run``'s ``name`` (None: none yet), however old its points."""
        with self._state:
            fitted = self._fitted.get((run, name))
        return None if fitted is None else fitted.prediction

    def _fit(self, metrics: Mapping[str, MetricHistory], run: str, name: str, key: _Key) -> Prediction:
        """Forecast ``metrics[name]``, given the run's learning rate where it logs one."""
        h = metrics[name]
        lr = next((m for n, m in metrics.items() if is_learning_rate(n) and len(m)), None)
        try:
            return forecast(h.steps, h.values, h.wall_time, horizon=key[2] if math.isfinite(key[2]) else None,
                            target=key[3], higher_is_better=higher_is_better(name), run=run, metric=name,
                            lr=None if lr is None else (lr.steps, lr.values))
        except Exception as exc:  # a bug here must not stop the frame: the readout says it
            log.exception("forecast of %r (run %r) failed", name, run)
            return Prediction(run, name, key[2], reason=f"error: {type(exc).__name__}: {exc}")

    def _submit(self, data: Mapping[str, Mapping[str, MetricHistory]], run: str, name: str, key: _Key,
                paced: bool) -> Future[Prediction]:
        """Ask the worker for a fit of ``run``'s ``name`` at ``key`` (under ``_state``); one already
        asked for at that key is shared, not repeated."""
        pending = self._pending.get((run, name))
        if pending is not None and pending.key == key:
            return pending.future
        if self._worker is None:
            self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lossviz-forecast")
        metrics = data[run]  # read-only views: logging never writes into them (see _core.buffers)
        epoch = self._epochs.get(run, 0)

        def job() -> Prediction:
            with self._one_fit:
                started = self._clock()
                prediction = self._fit(metrics, run, name, key)
                took = self._clock() - started
            self._landed(run, name, key, epoch, prediction, started, took, paced)
            return prediction

        future = self._worker.submit(job)
        self._pending[(run, name)] = _Pending(key, future, paced)
        return future

    def _landed(self, run: str, name: str, key: _Key, epoch: int, prediction: Prediction,
                started: float, took: float, paced: bool) -> None:
        """A fit finished (on the worker): keep it unless its run was forgotten meanwhile, set the
        next live refit's earliest time, and ask for a frame that shows it."""
        with self._state:
            pending = self._pending.get((run, name))
            if pending is not None and pending.key == key:
                del self._pending[(run, name)]
            if paced:
                self._next_refit = started + max(1.0 / REFITS_PER_SECOND, took / REFIT_SHARE)
            if self._closed or self._epochs.get(run, 0) != epoch:
                return
            fitted = self._fitted.get((run, name))
            if fitted is None or fitted.at <= started:  # never older points over newer ones
                self._fitted[(run, name)] = _Fitted(key, prediction, started)
        if self._on_fitted is not None:
            self._on_fitted()

    def _stale(self, data: Mapping[str, Mapping[str, MetricHistory]]) -> dict[tuple[str, str], _Key]:
        """The wanted series of ``data`` whose latest prediction is not of their current points,
        with the key of those points."""
        with self._state:
            keys = {(run, name): self._key(data, run, name) for run, metrics in data.items()
                    for name, h in metrics.items() if len(h) and self.wanted(name)}
            return {s: key for s, key in keys.items() if s not in self._fitted or self._fitted[s].key != key}

    def update(self, data: Mapping[str, Mapping[str, MetricHistory]], live: bool) -> None:
        """Ask the worker to refit the series whose points changed, without waiting: all of them,
        or with ``live`` one (never fitted first, then the longest since its fit) when no live
        refit is under way and the last one started long enough ago: at least
        ``1 / REFITS_PER_SECOND`` seconds, and at least ``1 / REFIT_SHARE`` times as long as it
        took, so refits never take more than :data:`REFIT_SHARE` of the time whatever the
        machine's speed or load (they share the interpreter with the training loop)."""
        with self._state:
            if self._closed:
                return
            # a series with a fit under way waits for it to land (it asks for the next frame), so
            # frames asked for faster than fits never queue up more than one fit per series
            stale = {s: key for s, key in self._stale(data).items() if s not in self._pending}
            if not stale:
                return
            if not live:
                for (run, name), key in stale.items():
                    self._submit(data, run, name, key, paced=False)
                return
            if any(p.paced for p in self._pending.values()):
                return  # its landing asks for the next frame
            wait = self._next_refit - self._clock()
            if wait > 0:
                self._wake_in(wait)
                return
            run, name = min(stale, key=lambda s: self._fitted[s].at if s in self._fitted else -math.inf)
            self._submit(data, run, name, stale[(run, name)], paced=True)

    def _wake_in(self, seconds: float) -> None:
        """Ask for a frame once a live refit may start again (under ``_state``), so the series
        still stale when the log goes quiet get their refit without another point logged."""
        if self._on_fitted is None or (self._wake is not None and self._wake.is_alive()):
            return
        self._wake = threading.Timer(min(seconds, MAX_WAKE), self._on_fitted)
        self._wake.daemon = True
        self._wake.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every fit asked for so far has landed; False on timeout."""
        with self._state:
            futures = [p.future for p in self._pending.values()]
        end = None if timeout is None else time.monotonic() + timeout
        for future in futures:
            try:
                future.result(None if end is None else max(end - time.monotonic(), 0.0))
            except CancelledError:
                pass
            except TimeoutError:
                return False
        return True

    def forget(self, run: str) -> None:
        """Drop ``run``'s predictions (its points were replaced); its fits under way land nowhere."""
        with self._state:
            self._epochs[run] = self._epochs.get(run, 0) + 1
            for key in [k for k in self._fitted if k[0] == run]:
                del self._fitted[key]
            for key in [k for k in self._pending if k[0] == run]:
                del self._pending[key]

    def close(self) -> None:
        """Stop the worker: fits asked for are cancelled, one under way lands nowhere, no fit
        starts after this (``predict`` then fits on its caller's thread)."""
        with self._state:
            self._closed = True
            worker, self._worker = self._worker, None
            self._pending.clear()
            if self._wake is not None:
                self._wake.cancel()
        if worker is not None:
            worker.shutdown(wait=False, cancel_futures=True)

    def add_to(self, frame: Frame, step_axis: bool, hidden: frozenset[str]) -> None:
        """Put the latest predictions in ``frame``: bands (on the step axis), readout sentences and
        the runs' chances against the best forecast (see the module docstring)."""
        with self._state:
            shown = {k: f.prediction for k, f in self._fitted.items() if k[0] not in hidden}  # however old
        if not shown:
            return
        frame.readout = [dataclasses.replace(r, forecast=shown[(r.run, r.name)].sentence())
                         if (r.run, r.name) in shown else r for r in frame.readout]
        if step_axis:
            for pf in frame.panels:
                _add_bands(pf, shown, frame.several_runs)
        frame.runs = [dataclasses.replace(r, forecast=text) if text else r
                      for r, text in zip(frame.runs, _chances(frame, shown))]


def _number(what: str, v: object) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(float(v)):
        raise TypeError(f"forecast_to: {what} must be a finite number, got {v!r}")
    return float(v)


def _add_bands(pf: PanelFrame, shown: Mapping[tuple[str, str], Prediction], several_runs: bool) -> None:
    for sf in pf.series:
        p = shown.get((sf.run, sf.name))
        if p is None or not p.ok:
            continue
        label = f"{sf.run}: {sf.name} forecast" if several_runs or sf.run != DEFAULT_RUN else f"{sf.name} forecast"
        pf.bands.append(BandFrame(sf.name, f"forecast\x00{sf.run}", label, sf.color, p.band_x, p.band_mid,
                                  p.band_x, p.band_lo, p.band_hi, members=(sf.run,), dash="dashed"))
        pf.changed = True


def _chances(frame: Frame, shown: Mapping[tuple[str, str], Prediction]) -> list[str]:
    """Per run row: how likely it ends better than the run with the best forecast of its main metric."""
    texts = [""] * len(frame.runs)
    by_metric: dict[str, list[tuple[int, Prediction]]] = {}
    for i, row in enumerate(frame.runs):
        p = shown.get((row.name, row.metric))
        if p is not None and p.ok:
            by_metric.setdefault(row.metric, []).append((i, p))
    for rows in by_metric.values():
        if len(rows) < 2:
            continue
        sign = -1.0 if rows[0][1].higher_is_better else 1.0
        best_i, best = min(rows, key=lambda r: sign * r[1].final)
        for i, p in rows:
            if i == best_i:
                texts[i] = (f"best forecast: {format_number(p.final)} at step {format_number(p.horizon)} "
                            f"(80%: {format_number(p.low)}–{format_number(p.high)})")
            else:
                which = "above" if p.higher_is_better else "below"
                texts[i] = (f"p ≈ {p.prob_beats(best.final):.2f} to end {which} {frame.runs[best_i].name}'s "
                            f"forecast ({format_number(p.final)} vs {format_number(best.final)})")
    return texts
