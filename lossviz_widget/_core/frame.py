"""From full-resolution history to what one frame draws (no widgets here).

For each metric: choose the x column (step, wall time or relative time), smooth
the full-resolution values, downsample raw and smoothed lines to at most
``ViewSettings.points_per_line`` each (``max_points``, fewer for a narrow plot), mask
values <= 0 on a log axis, and locate non-finite points for markers. Per panel: the y range
(auto, or the 5th-95th percentile when ignoring outliers). Per metric: the readout (latest, best, counts).

Several runs: the input is ``run -> metric -> history``; a series is one
(run, metric) pair, and a panel (a metric family) holds one line per series.
With one run, colours go by metric (as they always did); with two or more, by
run (the same colour in every panel) and, within a run's colour, the metrics of
one panel differ by dash (``loss`` solid, ``val_loss`` dashed, ...). Hidden
runs (``ViewSettings.hidden_runs``) are left out of panels and readout, so none
of their points are sent; a highlighted run (``highlight_run``) stays opaque
while the others fade. Per run, :class:`RunRow` gives the best value of the
main metric (the first metric of the ``loss`` family, else the first metric).

:class:`FrameBuilder` keeps per-series state (smoother, running stats, last
result) so a series that received no new points since the previous frame is
not recomputed and is marked unchanged, and nothing is re-sent for it.
"""

from __future__ import annotations

import colorsys
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING

import numpy as np

from .._model import DEFAULT_RUN, MetricHistory, as_runs
from ..diagnostics.findings import Finding
from .formatting import format_number
from .grouping import family_of, higher_is_better
from .limits import clamp_to_data
from .parallel import run_all
from .precision import fits_float32
from .pyramid import MinMaxPyramid
from .rewind import Rewind
from .settings import X_AXIS_MODES, ViewSettings
from .smoothing import MODES, Smoother, make_smoother
from .sparse import SPARSE_POINTS, series_weights

if TYPE_CHECKING:
    from .run_groups import BandFrame

__all__ = [
    "X_AXIS_MODES",
    "Frame",
    "FrameBuilder",
    "PanelFrame",
    "ReadoutRow",
    "RunRow",
    "SeriesFrame",
    "ViewSettings",
]

PALETTE = (  # matplotlib's tab10, then tab20's light partner of each: 20 categorical colours
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
    "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5",
    "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5",
)
REWIND_COLOR = "#17becf"  # the marker where a series was resumed (a step rewind)
# Blocks of the smoothed line's pyramid, rebuilt whole when the smoothing changes. A
# smoothed line has no lone spikes to keep, and 256-point blocks (vs the raw line's 64)
# cost a quarter of the per-block work: ~9 instead of ~35 ms per 1e7 points. Only views of
# 2^16-170k points read the finest level, and get 770-2000 points instead of up to 2000.
SMOOTH_PYRAMID_BASE = 256
DASHES = ("solid", "dashed", "dotted", "dash_dotted")  # metrics of one panel within one run's colour
FADED = 0.15  # opacity of the runs that are not highlighted
OUTLIER_PERCENTILES = (5.0, 95.0)
_TIME_UNITS = ((3 * 3600.0, 3600.0, "h"), (3 * 60.0, 60.0, "min"), (0.0, 1.0, "s"))
# A frame whose series have at least this many points to (re)compute in all updates them on
# several cores; below it (a few new points per series: every live frame) they go in turn here,
# as the pool's hand-offs would cost more than they save (measured on 2 cores: 4 series x 1e5
# points were slower on the pool; 4 x 1e6 and more ~1.35x faster, for ~20% more CPU in all).
PARALLEL_MIN_POINTS = 1 << 20


def main_metric(names: Sequence[str]) -> str:
    """The metric the runs table compares runs on: the first of the ``loss`` family, else the first ("": none)."""
    return next((n for n in names if family_of(n) == "loss"), names[0] if names else "")


def palette_color(i: int) -> str:
    """Colour number ``i`` (a run's, or with one run a metric's): :data:`PALETTE`, then generated.

    From 21 on, hues step by the golden angle (each new hue lands in the widest gap left) at
    three lightness levels, so any number of runs get distinct colours; deterministic, so a run
    has the same colour in every panel, image and report.
    """
    if i < len(PALETTE):
        return PALETTE[i]
    k = i - len(PALETTE)
    r, g, b = colorsys.hls_to_rgb((0.04 + k * 0.381966) % 1.0, (0.58, 0.5, 0.42)[k % 3], 0.9)
    return f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"


@dataclass
class SeriesFrame:
    """One (run, metric) series' lines for a frame. ``x`` arrays are float64 or datetime64[ms].

    ``label`` is what legends show: the metric name, or ``run: metric`` with several runs.
    """

    name: str
    color: str
    x: np.ndarray  # main line: smoothed when smoothing > 0, else raw
    y: np.ndarray
    raw_x: np.ndarray | None  # faint raw line behind the smoothed one (None: not shown)
    raw_y: np.ndarray | None
    nonfinite_x: np.ndarray  # where the (downsampled) raw series is NaN/Inf
    changed: bool = True
    run: str = DEFAULT_RUN
    label: str = ""
    dash: str = "solid"  # one of DASHES
    opacity: float = 1.0  # FADED when another run is highlighted
    # logged points in the drawn x range: more than len(x) means each drawn point is a bucket's min or max
    in_view: int = 0
    smoothing: float = 0.0  # the weight this series was smoothed with (0: the main line is raw; see _core.sparse)
    left_out: int = 0  # points at x <= 0 not drawn on a log x axis

    @property
    def dots(self) -> bool:
        """Whether the main line gets a dot on each point: it is raw (every dot is a measured value)
        and has at most :data:`~lossviz_widget._core.sparse.SPARSE_POINTS` points in view."""
        return self.smoothing == 0 and len(self.x) <= SPARSE_POINTS

    @property
    def key(self) -> str | tuple[str, str]:
        """Identity of the series across frames: ``(run, metric)``, or the bare metric name for the
        default run (so single-run code keeps addressing lines by metric name)."""
        return self.name if self.run == DEFAULT_RUN else (self.run, self.name)


@dataclass
class PanelFrame:
    family: str
    series: list[SeriesFrame]
    log_y: bool  # effective: False when the panel has no positive value to show
    y_range: tuple[float, float] | None  # None: let the scale auto-range
    marker_x: np.ndarray = field(default_factory=lambda: np.empty(0))
    marker_y: np.ndarray = field(default_factory=lambda: np.empty(0))
    marker_colors: list[str] = field(default_factory=list)
    note: str = ""
    changed: bool = True
    # diagnostics findings on this panel's curves (see lossviz_widget.diagnostics)
    finding_x: np.ndarray = field(default_factory=lambda: np.empty(0))
    finding_y: np.ndarray = field(default_factory=lambda: np.empty(0))
    finding_colors: list[str] = field(default_factory=list)
    bands: list[BandFrame] = field(default_factory=list)  # run groups' lines and bands (see run_groups)
    # steps where a shown series of this panel was resumed (a step rewind); marked among the findings
    rewind_steps: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class ReadoutRow:
    name: str
    color: str
    step: float
    latest: float
    best: float
    best_step: float
    count: int
    nonfinite: int
    higher_is_better: bool
    run: str = DEFAULT_RUN
    note: str = ""  # the series' last step rewind: "resumed at step 50, 50 points replaced"
    has_best: bool = True  # a best value means something for it (ViewSettings.best_for)
    forecast: str = ""  # with forecasts on: the final value, interval and ETA, or why there is none


@dataclass(frozen=True)
class RunRow:
    """One run in the runs table: its colour and the best value of the main metric."""

    name: str
    color: str
    metric: str  # the main metric ("" when the run has none of it)
    best: float
    best_step: float
    higher_is_better: bool
    hidden: bool
    highlighted: bool
    forecast: str = ""  # with forecasts of several runs: its chance to beat the best run's forecast


@dataclass
class Frame:
    panels: list[PanelFrame]
    readout: list[ReadoutRow]
    x_label: str
    x_is_date: bool
    x_range: tuple[float, float] | None = None  # the zoom, in x axis units (epoch s on a date axis)
    runs: list[RunRow] = field(default_factory=list)  # every run holding data, hidden ones included
    notes: list[str] = field(default_factory=list)  # the last step rewind of each series, for the status line
    x_log: bool = False  # a log x axis: no x <= 0 in any line or marker
    x_axis: str = "step"  # the x axis mode (one of X_AXIS_MODES)

    @property
    def several_runs(self) -> bool:
        return len(self.runs) > 1


class _MetricState:
    """Incremental per-series bookkeeping (one metric of one run)."""

    def __init__(self, run: str, name: str) -> None:
        self.run = run
        self.name = name
        self.maximize = higher_is_better(name)
        self.smoother: Smoother | None = None
        self.smoother_key: _SmootherKey | None = None  # what the smoother (and its pyramid) were made for
        self.seen = 0
        self.nonfinite = 0
        self.best = math.nan
        self.best_step = math.nan
        self.key: tuple[int, ViewSettings, float] | None = None  # what ``frame`` was made for
        self.frame: SeriesFrame | None = None
        self.values = np.empty(0)  # latest full-resolution raw values (a read-only view)
        self.raw_pyramid = MinMaxPyramid()
        self.smooth_pyramid = MinMaxPyramid(SMOOTH_PYRAMID_BASE)

    def update_stats(self, hist: MetricHistory) -> None:
        new = hist.values[self.seen :]
        if len(new):
            finite = np.isfinite(new)
            self.nonfinite += int(len(new) - np.count_nonzero(finite))
            if finite.any():
                i = int(np.nanargmax(np.where(finite, new, -np.inf)) if self.maximize
                        else np.nanargmin(np.where(finite, new, np.inf)))
                v = float(new[i])
                if math.isnan(self.best) or (v > self.best if self.maximize else v < self.best):
                    self.best, self.best_step = v, float(hist.steps[self.seen + i])
            self.seen = len(hist.values)

    def pending(self, hist: MetricHistory, s: ViewSettings) -> int:
        """Points the caches of this series have to (re)compute for a frame with settings ``s``."""
        todo = len(hist) - self.raw_pyramid.seen
        if s.smoothing > 0:
            todo += len(hist) - (self.smooth_pyramid.seen if self.smoother_key == _smoother_key(s) else 0)
        return todo

    def refresh(self, hist: MetricHistory, s: ViewSettings) -> None:
        """Bring the caches a frame reads up to date: raw pyramid, smoother, smoothed pyramid."""
        self.raw_pyramid.update(hist.values)
        if s.smoothing > 0:
            self.smoothed(hist.values, _x_column(hist, s), s)

    def smoothed(self, values: np.ndarray, x: np.ndarray, s: ViewSettings) -> np.ndarray:
        """The smoothed series, and its pyramid brought up to date from the first changed point.

        ``x`` is the x column (the time-weighted EMA decays with its spacing).
        """
        key = _smoother_key(s)
        smoother = self.smoother
        if smoother is None or self.smoother_key != key:
            old = None if smoother is None else smoother.buffer  # its memory is reused
            smoother = self.smoother = make_smoother(s.smoothing_mode, s.smoothing, compact=True, storage=old)
            self.smoother_key = key
            self.smooth_pyramid = MinMaxPyramid(SMOOTH_PYRAMID_BASE)
        smooth = smoother.update(values, x)
        self.smooth_pyramid.truncate(smoother.changed_from)
        self.smooth_pyramid.update(smooth)
        return smooth


_SmootherKey = tuple[str, float, str | None]


def _smoother_key(s: ViewSettings) -> _SmootherKey:
    """What a smoother (and its pyramid) is made for: a change means a recompute from scratch."""
    return s.smoothing_mode, s.smoothing, s.x_axis if MODES[s.smoothing_mode].needs_x else None


def _x_column(hist: MetricHistory, s: ViewSettings) -> np.ndarray:
    """The x column of ``hist`` for the x axis of ``s``: steps, or wall time (epoch s)."""
    return hist.steps if s.x_axis == "step" else hist.wall_time


def _time_unit(span_s: float) -> tuple[float, str]:
    for threshold, scale, unit in _TIME_UNITS:
        if span_s >= threshold:
            return scale, unit
    return 1.0, "s"


def _fresh(a: np.ndarray) -> np.ndarray:
    """A new contiguous float64 array (bqplot only syncs new objects; int64 would become int32)."""
    return np.array(a, dtype=np.float64)


def _wire_y(a: np.ndarray) -> np.ndarray:
    """y values for the browser: float32 (half the bytes) where that loses nothing visible.

    float32 keeps ~7 significant digits between 1e-30 and 1e30; outside that range
    (underflow to 0, overflow to inf) the values go as float64 (see :mod:`._precision`).
    """
    return np.array(a, dtype=np.float32) if fits_float32(a) else _fresh(a)


def _wire_x(x: np.ndarray) -> np.ndarray:
    """Steps for the browser: float32 (a third fewer bytes per point with float32 y) where
    every value survives the round trip exactly (integer steps below 2**24, about 1.7e7);
    float64 otherwise, so no step ever moves on the axis."""
    x32 = np.array(x, dtype=np.float32)
    return x32 if np.array_equal(x32, x) else _fresh(x)


def _x_values(x: np.ndarray, x_axis: str, t0: float, scale: float) -> np.ndarray:
    """x column values as the axis shows them: steps, datetimes, or scaled time since start."""
    if x_axis == "step":
        return _wire_x(x)
    x = np.maximum.accumulate(x)  # clocks can step backwards; a line needs non-decreasing x
    if x_axis == "wall_time":
        return (x * 1000.0).astype("datetime64[ms]")
    return (x - t0) / scale


def _index_range(column: np.ndarray, lo: float, hi: float) -> tuple[int, int]:
    """Indices of the points within [lo, hi], plus one neighbour each side so lines reach the edges."""
    i0 = max(0, int(np.searchsorted(column, lo, side="left")) - 1)
    i1 = min(len(column), int(np.searchsorted(column, hi, side="right")) + 1)
    return i0, i1


class FrameBuilder:
    """Turns store snapshots into :class:`Frame` objects, reusing work across frames."""

    def __init__(self) -> None:
        self._metrics: dict[tuple[str, str], _MetricState] = {}  # (run, metric) -> state
        self._metric_order: dict[str, int] = {}  # metric -> order of first appearance (colour with one run)
        self._dashes: dict[str, str] = {}  # metric -> its dash with several runs
        self._family_sizes: dict[str, int] = {}  # family -> metrics of it seen so far
        self._panel_keys: dict[str, tuple[object, ...]] = {}

    def build(
        self,
        data: Mapping[str, Mapping[str, MetricHistory]] | Mapping[str, MetricHistory],
        t0: float | None,
        settings: ViewSettings,
        findings: Sequence[Finding] = (),
        rewinds: Sequence[Rewind] = (),
    ) -> Frame:
        """One frame of ``data``: ``run -> metric -> history`` (or ``metric -> history`` for one run).

        ``findings`` (diagnostics) are marked on their series' curve; so is each series' last
        step rewind of ``rewinds`` (all of them so far, in order), also noted in its readout row,
        its panel's title and :attr:`Frame.notes`. A rewound series must have been
        :meth:`forget`-ten first.
        """
        runs = as_runs(data)
        everything = [h for metrics in runs.values() for h in metrics.values()]
        scale, unit = 1.0, "s"
        if settings.x_axis == "relative_time" and t0 is not None:
            span = max((float(h.wall_time[-1]) - t0 for h in everything if len(h)), default=0.0)
            scale, unit = _time_unit(span)
        x_label = {"step": "step", "wall_time": "wall time", "relative_time": f"time since start ({unit})"}[
            settings.x_axis
        ]
        by_run = len(runs) > 1
        data_settings = settings.data_part()
        for metrics in runs.values():
            for name in metrics:
                if name not in self._metric_order:
                    self._new_metric(name)
        per_series = {
            (run, name): data_settings if w == settings.smoothing else replace(data_settings, smoothing=w)
            for run, metrics in runs.items() for name, w in series_weights(settings.smoothing, metrics).items()
        }
        self._refresh_caches(runs, settings.hidden_runs, per_series)
        families: dict[str, list[_MetricState]] = {}
        readout: list[ReadoutRow] = []
        last_rewind = {(r.new_run or r.run, r.metric): r for r in rewinds}  # the last one of each series
        for run_index, (run, metrics) in enumerate(runs.items()):
            hidden = run in settings.hidden_runs
            opacity = FADED if settings.highlight_run in runs and settings.highlight_run != run else 1.0
            for name, hist in metrics.items():
                state = self._state(run, name)
                state.update_stats(hist)
                state.values = hist.values
                family = families.setdefault(family_of(name), [])
                if hidden:
                    continue
                color = palette_color(run_index if by_run else self._metric_order[name])
                series_settings = per_series[run, name]
                key = (len(hist), series_settings, scale)
                sf = state.frame
                if sf is None or state.key != key:
                    sf = state.frame = self._series(state, hist, series_settings, t0 or 0.0, scale)
                    state.key = key
                else:
                    sf.changed = False
                sf.color, sf.opacity = color, opacity
                sf.label = f"{run}: {name}" if by_run else name
                sf.dash = self._dashes[name] if by_run else "solid"
                family.append(state)
                if len(hist):
                    rewind = last_rewind.get((run, name))
                    readout.append(
                        ReadoutRow(name, color, float(hist.steps[-1]), float(hist.values[-1]), state.best,
                                   state.best_step, len(hist), state.nonfinite, state.maximize, run,
                                   "" if rewind is None else rewind.describe(), settings.best_for(name))
                    )
        shown = [r for key, r in last_rewind.items() if key[0] in runs and key[0] not in settings.hidden_runs]
        marks = _finding_marks(findings, runs, settings, t0 or 0.0, scale, shown)
        panels = [self._panel(fam, states, settings, marks.get(fam)) for fam, states in families.items()]
        for panel in panels:
            panel.rewind_steps = [r.step for r in shown if family_of(r.metric) == panel.family]
            if panel.rewind_steps:
                at = ", ".join(format_number(step) for step in panel.rewind_steps)
                panel.note = "; ".join(filter(None, [panel.note, f"resumed at step {at}"]))
        return Frame(panels, readout, x_label, settings.x_axis == "wall_time", settings.x_range,
                     self._run_rows(runs, settings), [r.describe() for r in shown], settings.x_is_log,
                     settings.x_axis)

    def forget(self, run: str, name: str) -> None:
        """Drop the caches of one series (smoother, pyramids, stats): its points changed other than
        by appending (a step rewind purged some), so the next frame computes it from scratch."""
        self._metrics.pop((run, name), None)

    def _state(self, run: str, name: str) -> _MetricState:
        state = self._metrics.get((run, name))
        if state is None:
            state = self._metrics[run, name] = _MetricState(run, name)
        return state

    def _refresh_caches(self, runs: Mapping[str, Mapping[str, MetricHistory]], hidden: frozenset[str],
                        per_series: Mapping[tuple[str, str], ViewSettings]) -> None:
        """Bring the caches of the shown series up to date on several cores when there is much to do.

        A full recompute (a new smoothing weight or mode, a loaded file) is one independent job
        per series: :func:`~._parallel.run_all` runs them on this thread and its helpers, and
        credits the helpers' CPU to this thread (the scheduler's cost measure). Results are the
        same as one series after another. Frames with less than ``PARALLEL_MIN_POINTS`` to do
        leave it to :meth:`_series`, one series at a time.
        """
        jobs, todo = [], 0
        for run, metrics in runs.items():
            if run in hidden:
                continue
            for name, hist in metrics.items():
                state = self._state(run, name)
                s = per_series[run, name]
                n = state.pending(hist, s)
                if n:
                    jobs.append(partial(state.refresh, hist, s))
                    todo += n
        if len(jobs) >= 2 and todo >= PARALLEL_MIN_POINTS:
            run_all(jobs)

    def _new_metric(self, name: str) -> None:
        """Number a metric name seen for the first time; its dash is its place within its family."""
        self._metric_order[name] = len(self._metric_order)
        family = family_of(name)
        i = self._family_sizes.get(family, 0)
        self._family_sizes[family] = i + 1
        self._dashes[name] = DASHES[i % len(DASHES)]

    def _run_rows(self, runs: Mapping[str, Mapping[str, MetricHistory]], s: ViewSettings) -> list[RunRow]:
        main = main_metric(list(self._metric_order))
        rows = []
        for i, run in enumerate(runs):
            state = self._metrics.get((run, main)) if main in runs[run] else None
            rows.append(RunRow(
                run, palette_color(i), main if state else "",
                state.best if state else math.nan, state.best_step if state else math.nan,
                higher_is_better(main), run in s.hidden_runs, run == s.highlight_run,
            ))
        return rows

    def _series(
        self, state: _MetricState, hist: MetricHistory, s: ViewSettings, t0: float, scale: float
    ) -> SeriesFrame:
        column = _x_column(hist, s)  # relative time is wall time shifted and scaled
        i0, i1 = 0, len(hist)
        if s.x_range is not None:
            lo, hi = s.x_range
            if s.x_axis == "relative_time":
                lo, hi = t0 + lo * scale, t0 + hi * scale
            i0, i1 = _index_range(column, lo, hi)
        left_out = 0
        if s.x_is_log:  # a log axis has no place for x <= 0 (step 0, the start of relative time)
            left_out = int(np.searchsorted(column, 0.0 if s.x_axis == "step" else t0, side="right"))
            i0 = max(i0, left_out)
            i1 = max(i0, i1)
        raw = hist.values
        state.raw_pyramid.update(raw)  # (a no-op when _refresh_caches did it)
        # behind a smoothed line the faint raw line gets half the budget: half the path to draw
        budget = s.points_per_line
        raw_budget = max(4, budget // 2) if s.smoothing > 0 else budget
        raw_idx = state.raw_pyramid.select(column, raw, i0, i1, raw_budget)
        raw_y = raw[raw_idx]
        faint_idx: np.ndarray | None
        faint_y: np.ndarray | None
        if s.smoothing > 0:
            smooth = state.smoothed(raw, column, s)
            idx = state.smooth_pyramid.select(column, smooth, i0, i1, budget)
            main_idx, main_y = idx, smooth[idx]
            faint_idx, faint_y = raw_idx, raw_y
        else:
            main_idx, main_y = raw_idx, raw_y
            faint_idx = faint_y = None
        if s.log_y_for(family_of(state.name)):  # a log axis cannot show values <= 0 (bqplot #1219): gaps
            main_y = np.where(main_y > 0, main_y, np.nan)
            faint_y = None if faint_y is None else np.where(faint_y > 0, faint_y, np.nan)

        def as_x(idx: np.ndarray) -> np.ndarray:
            return _x_values(column[idx], s.x_axis, t0, scale)

        return SeriesFrame(
            state.name, "", as_x(main_idx), _wire_y(main_y),  # colour and style: set by build()
            None if faint_idx is None else as_x(faint_idx), None if faint_y is None else _wire_y(faint_y),
            as_x(raw_idx[~np.isfinite(raw_y)]), run=state.run, smoothing=s.smoothing, left_out=left_out,
            in_view=i1 - i0,
        )

    def _panel(self, family: str, states: list[_MetricState], s: ViewSettings,
               marks: tuple[np.ndarray, np.ndarray, list[str]] | None) -> PanelFrame:
        series = [st.frame for st in states if st.frame is not None]  # (all: build() made them)
        key = (tuple((st.run, st.name, st.key) for st in states), 0 if marks is None else len(marks[2]))
        changed = any(f.changed for f in series) or self._panel_keys.get(family) != key
        self._panel_keys[family] = key
        shown = [a for f in series for a in (f.y, f.raw_y) if a is not None]
        values = np.concatenate(shown) if shown else np.empty(0)
        values = values[np.isfinite(values)]
        wants_log = s.log_y_for(family)
        log_y = wants_log and bool((values > 0).any())
        notes = ["log scale needs positive values: showing linear" if wants_log and not log_y else ""]
        left_out = sum(f.left_out for f in series)
        if left_out:
            notes.append(f"log x leaves out {left_out:,} point{'s' if left_out > 1 else ''} at x <= 0")
        note = "; ".join(filter(None, notes))
        y_range = None
        if s.ignore_outliers and len(values):
            y_range = self._outlier_range(states, log_y)
        top = y_range[1] if y_range else (float(values.max()) if len(values) else 1.0)
        marker_x = [f.nonfinite_x for f in series if len(f.nonfinite_x)]
        colors = [f.color for f in series for _ in range(len(f.nonfinite_x))]
        mx = np.concatenate(marker_x) if marker_x else np.empty(0)
        fx, fy, fcolors = marks if marks is not None else (np.empty(0), np.empty(0), [])
        if len(fy):  # non-finite values, or <= 0 on a log axis, sit at the top like the NaN markers
            fy = np.where(np.isfinite(fy) & ((fy > 0) | (not log_y)), fy, top)
        return PanelFrame(
            family, series, log_y, y_range, mx, np.full(len(mx), top), colors, note, changed, fx, fy, fcolors
        )

    def _outlier_range(self, states: list[_MetricState], log_y: bool) -> tuple[float, float] | None:
        """The 5th-95th percentile of the panel's finite raw values, padded by 10%.

        Judged on (an evenly strided sample of) the full data, not the downsampled lines:
        min/max buckets over-represent extremes.
        """
        # a strided sample of at most ~200k points keeps this O(1) in the run length
        total = sum(len(st.values) for st in states)
        stride = max(1, total // 200_000)
        v = np.concatenate([st.values[::stride] for st in states])
        v = v[np.isfinite(v)]
        if log_y:
            v = np.log10(v[v > 0])
        if not len(v):
            return None
        lo, hi = np.percentile(v, OUTLIER_PERCENTILES)
        pad = (hi - lo) * 0.1 or max(abs(hi) * 0.05, 0.05 if log_y else 1e-12)
        lo, hi = lo - pad, hi + pad
        if log_y:  # never past the data (an accuracy axis at 1.05), nor below 0 for data that is not
            return clamp_to_data(float(10**lo), float(10**hi), float(10 ** v.min()), float(10 ** v.max()), log=True)
        return clamp_to_data(float(lo), float(hi), float(v.min()), float(v.max()))


def _finding_marks(
    findings: Sequence[Finding], runs: dict[str, dict[str, MetricHistory]], s: ViewSettings, t0: float, scale: float,
    rewinds: Sequence[Rewind] = (),
) -> dict[str, tuple[np.ndarray, np.ndarray, list[str]]]:
    """Per family: x, y (the raw value at the finding's step) and colour of each shown finding's
    marker, and of each rewind's (at the resumed point, in :data:`REWIND_COLOR`)."""
    points: dict[str, list[tuple[float, float, str]]] = {}
    wanted = [(DEFAULT_RUN if f.run is None else f.run, f.metric, f.step, f.color) for f in findings]
    wanted += [(r.new_run or r.run, r.metric, r.step, REWIND_COLOR) for r in rewinds]
    for run, metric, step, color in wanted:
        hist = runs.get(run, {}).get(metric)
        if hist is None or not len(hist) or run in s.hidden_runs:
            continue
        i = min(int(np.searchsorted(hist.steps, step)), len(hist) - 1)
        x = float(hist.steps[i] if s.x_axis == "step" else hist.wall_time[i])
        if s.x_is_log and x <= (0.0 if s.x_axis == "step" else t0):  # off a log x axis, like its point
            continue
        points.setdefault(family_of(metric), []).append((x, float(hist.values[i]), color))
    for pts in points.values():
        pts.sort()  # by x: _x_values makes time columns non-decreasing
    return {
        fam: (_x_values(np.array([p[0] for p in pts]), s.x_axis, t0, scale), np.array([p[1] for p in pts]),
              [p[2] for p in pts])
        for fam, pts in points.items()
    }
