"""bqplot objects for a :class:`~lossviz_widget._core.frame.Frame`: one Figure per metric family.

All panels share one x scale, so sparse validation points line up with dense
training points across panels. Each series (one metric of one run) is two
``Lines`` marks: a faint raw line (shown behind the smoothed one) and the main
line that carries the legend entry. Non-finite values are drawn as gaps plus a
triangle marker at the top of the panel.

Runs: marks are added as runs appear; a hidden run's marks are made invisible
(their data stays on them, nothing new is sent), and colour, dash, opacity and
legend label are restyled in place when they change (a second run appearing,
a run highlighted). The bytes per frame stay bounded: at most ``max_points``
points per line, two lines (main and raw) per visible series, so a frame sends at
most ``2 * max_points * visible runs * metrics per run`` points, and only for
the series that changed; hidden runs add nothing.

Only arrays that changed are assigned, always as fresh arrays and x with y
under ``hold_sync`` (one message, no frame with mismatched lengths). Switching
between linear/log y or step/date x replaces the scales and axes in place.

Scale bounds are set from Python, not left to bqplot's auto-ranging: bqplot redraws
every line of a scale on each change of its domain, and auto-ranging changes it as
each line's new data arrives (the shared x scale once per frame, a panel's y scale
up to once per line), so a frame drew each line 3-4 times. :func:`_held` bounds
change only when the data leaves them or shrinks well inside them.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable

import numpy as np
from bqplot import Axis, DateScale, Figure, LinearScale, Lines, LogScale, Scatter
from bqplot.interacts import PanZoom
from ipywidgets import Box, Layout

from .._core.frame import Frame, PanelFrame, SeriesFrame
from .._core.grouping import higher_is_better
from .._core.run_groups import BAND_OPACITY

__all__ = ["PanelGrid"]

_EMPTY = np.empty(0)
_FAINT = 0.25  # opacity of the raw line behind the smoothed one
_SPARSE_MARKERS = 60  # a line with at most this many points also gets dots, so sparse metrics show


_HEADROOM = 0.05  # auto-ranged bounds: margin (share of the data span) added when they move
_MIN_FILL = 0.8  # ... and kept while the data, so widened, fills at least this share of them


def _held(current: tuple, lo: float, hi: float, below: float, above: float, flat: float,
          log: bool = False) -> tuple[float, float]:
    """Bounds for data spanning ``[lo, hi]`` that change as rarely as possible.

    ``current`` (numbers or None) is kept while it contains the data and the data, widened
    by ``below``/``above`` of its span (``flat`` when the span is 0), fills at least
    ``_MIN_FILL`` of it; otherwise that widened span is returned. On a log axis the
    arithmetic is done on log10 values.
    """
    to, back = (math.log10, lambda v: 10.0**v) if log else (float, float)
    a, b = to(lo), to(hi)
    span = b - a
    if span > 0:
        t0, t1 = a - below * span, b + above * span
    else:
        t0, t1 = a - flat / 2, b + flat / 2
    if current[0] is not None and current[1] is not None:
        c0, c1 = to(current[0]), to(current[1])
        if c0 <= a and b <= c1 and t1 - t0 >= _MIN_FILL * (c1 - c0):
            return float(current[0]), float(current[1])
    return back(t0), back(t1)


def _extent(arrays: list) -> tuple[float, float] | None:
    """The finite min and max over arrays (None where there is no finite value)."""
    finite = [a[np.isfinite(a)] for a in arrays if a is not None and len(a)]
    finite = [a for a in finite if len(a)]
    if not finite:
        return None
    return float(min(a.min() for a in finite)), float(max(a.max() for a in finite))


def _y_scale(log: bool) -> LinearScale | LogScale:
    return LogScale() if log else LinearScale()


class _Panel:
    """One family's Figure and its marks."""

    def __init__(self, family: str, x_scale: LinearScale | DateScale, x_label: str, log_y: bool) -> None:
        self.family = family
        self.log_y = log_y
        self.x_scale = x_scale
        self.y_scale = _y_scale(log_y)
        self.x_axis = Axis(scale=x_scale, label=x_label, grid_lines="solid", grid_color="#e8e8e8")
        self.y_axis = Axis(scale=self.y_scale, side="left", tick_format=".3~g",
                           grid_lines="solid", grid_color="#e8e8e8")
        self.markers = Scatter(
            x=_EMPTY, y=_EMPTY, scales=self._scales(), marker="triangle-down", default_size=48,
            stroke="black", stroke_width=0.5, visible=False, display_legend=False,
        )
        self.findings = Scatter(  # diagnostics findings, at the step on the curve
            x=_EMPTY, y=_EMPTY, scales=self._scales(), marker="diamond", default_size=64,
            stroke="white", stroke_width=1, visible=False, display_legend=False,
        )
        self.lines: dict[str | tuple[str, str], tuple[Lines, Lines]] = {}  # SeriesFrame.key -> (faint, main)
        self.bands: dict[tuple[str, str], tuple[Lines, Lines]] = {}  # BandFrame.key -> (shaded band, group line)
        self.panzoom = PanZoom(scales={"x": [x_scale]})  # drag to pan, wheel to zoom, in x
        self.figure = Figure(
            interaction=self.panzoom,
            marks=[self.markers, self.findings], axes=[self.x_axis, self.y_axis], title=family, animation_duration=0,
            # rising curves (accuracy) end top-right, falling ones (loss) bottom-right: keep the legend clear
            legend_location="bottom-right" if higher_is_better(family) else "top-right",
            fig_margin={"top": 40, "bottom": 45, "left": 60, "right": 40},
            min_aspect_ratio=0.01, max_aspect_ratio=100,
            layout=Layout(flex="1 1 420px", min_width="320px", height="300px"),
        )
        self.figure.add_class("lossviz-panel")

    def _scales(self) -> dict:
        return {"x": self.x_scale, "y": self.y_scale}

    def set_scales(self, x_scale: LinearScale | DateScale, x_label: str, log_y: bool) -> None:
        old = None
        if log_y != self.log_y:
            old = self.y_scale
            self.y_scale, self.log_y = _y_scale(log_y), log_y
            self.y_axis.scale = self.y_scale
        self.x_scale = x_scale
        self.x_axis.scale = x_scale
        self.x_axis.label = x_label
        self.panzoom.scales = {"x": [x_scale]}
        for mark in self._marks():
            mark.scales = self._scales()
        if old is not None:  # only once no mark refers to it any more
            old.close()

    def _marks(self) -> list:
        return [m for pair in (*self.lines.values(), *self.bands.values()) for m in pair] + [self.markers,
                                                                                          self.findings]

    def _order_marks(self) -> None:
        """Raw lines behind, then run groups' bands, the main lines, the groups' lines; markers on top."""
        self.figure.marks = ([p[0] for p in self.lines.values()] + [p[0] for p in self.bands.values()]
                             + [p[1] for p in self.lines.values()] + [p[1] for p in self.bands.values()]
                             + [self.markers, self.findings])

    def _add_series(self, sf: SeriesFrame) -> None:
        faint = Lines(x=_EMPTY, y=_EMPTY, scales=self._scales(), colors=[sf.color], opacities=[_FAINT],
                      stroke_width=1, display_legend=False, visible=False)
        main = Lines(x=_EMPTY, y=_EMPTY, scales=self._scales(), colors=[sf.color], stroke_width=2,
                     labels=[sf.label or sf.name], display_legend=True, marker_size=24)
        self.lines[sf.key] = (faint, main)
        self._order_marks()

    def _apply_bands(self, pf: PanelFrame) -> int:
        """Push the run groups' bands and lines (see :mod:`lossviz_widget.run_groups`), and the forecasts'
        (:mod:`lossviz_widget.forecast`: a dashed line); returns updates sent."""
        sent = 0
        shown = set()
        for b in pf.bands:
            if b.key not in self.bands:
                fill = Lines(x=_EMPTY, y=[_EMPTY, _EMPTY], scales=self._scales(), fill="between",
                             colors=[b.color, b.color], fill_colors=[b.color], opacities=[0.0, 0.0],
                             fill_opacities=[BAND_OPACITY], stroke_width=0, display_legend=False)
                line = Lines(x=_EMPTY, y=_EMPTY, scales=self._scales(), colors=[b.color], stroke_width=2.5,
                             labels=[b.label], display_legend=True, line_style=b.dash)
                self.bands[b.key] = (fill, line)
                self._order_marks()
                sent += 1
            shown.add(b.key)
            fill, line = self.bands[b.key]
            style = {"colors": [b.color], "labels": [b.label], "visible": True}
            if any(getattr(line, k) != v for k, v in style.items()):
                with line.hold_sync():
                    for k, v in style.items():
                        setattr(line, k, v)
                sent += 1
            if not fill.visible:  # shown again
                fill.visible = True
                sent += 1
            if not b.changed:
                continue
            with fill.hold_sync():
                fill.x, fill.y = b.band_x, np.vstack([b.band_lo, b.band_hi]).astype(np.float64)
                fill.colors, fill.fill_colors = [b.color, b.color], [b.color]
            with line.hold_sync():
                line.x, line.y = b.x, np.asarray(b.y, dtype=np.float64)
            sent += 2
        for key, (fill, line) in self.bands.items():  # groups no longer drawn (ungrouped, hidden)
            if key not in shown and line.visible:
                fill.visible = line.visible = False
                sent += 2
        return sent

    def apply(self, pf: PanelFrame) -> int:
        """Push one panel's frame; returns the number of widget updates sent."""
        sent = 0
        shown = set()
        for sf in pf.series:
            if sf.key not in self.lines:
                self._add_series(sf)
                sent += 1
            shown.add(sf.key)
            faint, main = self.lines[sf.key]
            sent += _restyle(faint, main, sf)
            if not sf.changed:
                if faint.visible != (sf.raw_x is not None):  # shown again after being hidden
                    faint.visible = sf.raw_x is not None
                    sent += 1
                continue
            with main.hold_sync():
                main.x, main.y = sf.x, sf.y
                main.marker = "circle" if len(sf.x) <= _SPARSE_MARKERS else None
            sent += 1
            show_raw = sf.raw_x is not None
            if show_raw or faint.visible:
                with faint.hold_sync():
                    faint.x = sf.raw_x if show_raw else _EMPTY
                    faint.y = sf.raw_y if show_raw else _EMPTY
                    faint.visible = show_raw
                sent += 1
        sent += self._apply_bands(pf)
        for key, (faint, main) in self.lines.items():  # hidden runs: keep their data, stop drawing them
            if key not in shown and main.visible:
                with main.hold_sync():
                    main.visible = main.display_legend = False
                faint.visible = False
                sent += 2
        if pf.changed:
            current = (self.y_scale.min, self.y_scale.max)
            lo, hi = pf.y_range if pf.y_range else self._auto_y(pf, current)
            if current != (lo, hi):
                with self.y_scale.hold_sync():
                    self.y_scale.min, self.y_scale.max = lo, hi
                sent += 1
            sent += _set_points(self.markers, pf.marker_x, pf.marker_y, pf.marker_colors)
            sent += _set_points(self.findings, pf.finding_x, pf.finding_y, pf.finding_colors)
        title = pf.family + (f"  ({pf.note})" if pf.note else "")
        if self.figure.title != title:
            self.figure.title = title
            sent += 1
        return sent

    def _auto_y(self, pf: PanelFrame, current: tuple) -> tuple:
        extent = _extent([a for sf in pf.series for a in (sf.y, sf.raw_y)]
                         + [a for b in pf.bands for a in (b.y, b.band_lo, b.band_hi)])
        if extent is None:
            return None, None
        flat = abs(extent[0]) * 0.2 or 1.0  # a constant series: +-10% around it
        return _held(current, *extent, _HEADROOM, _HEADROOM, math.log10(1.2) if pf.log_y else flat, pf.log_y)

    def close(self) -> None:
        for w in [*self._marks(), self.x_axis, self.y_axis, self.y_scale, self.panzoom, self.figure]:
            w.close()


def _set_points(scatter: Scatter, x: np.ndarray, y: np.ndarray, colors: list[str]) -> int:
    """Show ``x, y`` in ``scatter`` (hidden when empty); returns the updates sent (0 or 1)."""
    shown = len(x) > 0
    if not (shown or scatter.visible):
        return 0
    with scatter.hold_sync():
        scatter.x, scatter.y = x, y
        scatter.colors = colors or ["#d62728"]
        scatter.visible = shown
    return 1


def _restyle(faint: Lines, main: Lines, sf: SeriesFrame) -> int:
    """Bring a series' marks to its colour, dash, opacity, label and visibility; returns updates sent."""
    style = {"colors": [sf.color], "line_style": sf.dash, "opacities": [sf.opacity],
             "labels": [sf.label or sf.name], "visible": True, "display_legend": True}
    changed = {k: v for k, v in style.items() if getattr(main, k) != v}
    if changed:
        with main.hold_sync():
            for k, v in changed.items():
                setattr(main, k, v)
    faint_style = {"colors": [sf.color], "opacities": [_FAINT * sf.opacity]}
    faint_changed = {k: v for k, v in faint_style.items() if getattr(faint, k) != v}
    if faint_changed:
        with faint.hold_sync():
            for k, v in faint_changed.items():
                setattr(faint, k, v)
    return bool(changed) + bool(faint_changed)


def _epoch_to_date(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, tz=dt.timezone.utc).replace(tzinfo=None)  # like datetime64 data


def _to_number(v: object) -> float:
    """A scale bound as a number: dates (naive UTC, as the data) become epoch seconds."""
    if isinstance(v, dt.datetime):
        return (v if v.tzinfo else v.replace(tzinfo=dt.timezone.utc)).timestamp()
    return float(v)  # type: ignore[arg-type]


class PanelGrid:
    """The wrapping row of panels, created on demand as new families appear.

    ``on_zoom`` is called with the new ``(min, max)`` x range (epoch seconds on a date
    axis) when the user pans or zooms in the browser; ranges set by :meth:`apply` are
    not reported back.
    """

    def __init__(self, on_zoom: Callable[[tuple[float, float]], None] | None = None) -> None:
        self.box = Box(layout=Layout(display="flex", flex_flow="row wrap", width="100%"))
        self.box.add_class("lossviz-panels")
        self.panels: dict[str, _Panel] = {}
        self._x_is_date = False
        self._on_zoom = on_zoom
        self._applying_range = False
        self.x_scale: LinearScale | DateScale = self._new_x_scale(False)

    def _new_x_scale(self, date: bool) -> LinearScale | DateScale:
        scale = DateScale() if date else LinearScale()
        scale.observe(self._scale_moved, names=["min", "max"])
        return scale

    def _scale_moved(self, change: dict) -> None:
        lo, hi = self.x_scale.min, self.x_scale.max
        if self._applying_range or self._on_zoom is None or lo is None or hi is None:
            return
        self._on_zoom((_to_number(lo), _to_number(hi)))

    def _set_x_range(self, x_range: tuple[float, float] | None) -> int:
        """Pin the shared x scale to ``x_range`` (None: no data yet, bqplot auto-ranges)."""
        if x_range is None:
            bounds: tuple = (None, None)
        elif self._x_is_date:
            bounds = (_epoch_to_date(x_range[0]), _epoch_to_date(x_range[1]))
        else:
            bounds = (float(x_range[0]), float(x_range[1]))
        if (self.x_scale.min, self.x_scale.max) == bounds:
            return 0
        self._applying_range = True
        try:
            with self.x_scale.hold_sync():
                self.x_scale.min, self.x_scale.max = bounds
        finally:
            self._applying_range = False
        return 1

    def _auto_x(self, frame: Frame) -> tuple[float, float] | None:
        """Held bounds for all panels' x data (epoch s on a date axis), with room to grow on the right."""
        xs = [x for pf in frame.panels for sf in pf.series for x in (sf.x, sf.raw_x) if x is not None]
        xs += [b.x for pf in frame.panels for b in pf.bands]
        if frame.x_is_date:
            xs = [x.astype("datetime64[ms]").astype(np.int64) / 1000.0 for x in xs]
        extent = _extent(xs)
        if extent is None:
            return None
        current = (self.x_scale.min, self.x_scale.max)
        if None not in current:
            current = (_to_number(current[0]), _to_number(current[1]))
        return _held(current, *extent, 0.0, _HEADROOM, 1.0)

    def apply(self, frame: Frame) -> int:
        sent = 0
        if frame.x_is_date != self._x_is_date:
            old = self.x_scale
            self.x_scale = self._new_x_scale(frame.x_is_date)
            self._x_is_date = frame.x_is_date
            for shown in self.panels.values():
                shown.set_scales(self.x_scale, frame.x_label, shown.log_y)
            old.close()
        sent += self._set_x_range(frame.x_range if frame.x_range is not None else self._auto_x(frame))
        for pf in frame.panels:
            panel = self.panels.get(pf.family)
            if panel is None:
                panel = self.panels[pf.family] = _Panel(pf.family, self.x_scale, frame.x_label, pf.log_y)
            elif panel.log_y != pf.log_y or panel.x_axis.label != frame.x_label:
                panel.set_scales(self.x_scale, frame.x_label, pf.log_y)
                sent += 1
            sent += panel.apply(pf)
        figures = tuple(p.figure for p in self.panels.values())
        if self.box.children != figures:
            self.box.children = figures
            sent += 1
        return sent

    def close(self) -> None:
        for panel in self.panels.values():
            panel.close()
        self.x_scale.close()
        self.box.close()
