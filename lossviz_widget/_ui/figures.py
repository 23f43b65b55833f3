"""bqplot objects for a :class:`~lossviz_widget._core.frame.Frame`: one Figure per metric family.

All panels share one x scale, so sparse validation points line up with dense
training points across panels. Each series (one metric of one run) is two
``Lines`` marks: a faint raw line (shown behind the smoothed one) and the main
line that carries the legend entry. The legend itself, a crosshair and the hover readout
are drawn in the browser by a :class:`~lossviz_widget._ui.hover.HoverLayer` above each Figure
(bqplot's own legend sits inside the plot area, over the curves). Non-finite values are drawn as gaps plus a
triangle marker at the top of the panel.

Runs: marks are added as runs appear; a hidden run's marks are made invisible
(their data stays on them, nothing new is sent), and colour, dash, opacity and
legend label are restyled in place when they change (a second run appearing,
a run highlighted). The bytes per frame stay bounded: at most ``max_points``
points per line (2 per pixel column of the widest plot area once a view has reported
its width: ``HoverLayer.width``), two lines (main and raw) per visible series, so a frame sends at
most ``2 * max_points * visible runs * metrics per run`` points, and only for
the series that changed; hidden runs add nothing.

With the canvas renderer (:meth:`_Panel.set_canvas`) the series' ``Lines`` get no view and no
data, only their style: each panel's points go to its :class:`~lossviz_widget._ui.hover.HoverLayer`
as one binary message per frame (``pack_series``), sent when any of its series changed. Panels
that no view shows (``HoverLayer.seen``) get nothing while the kernel would hear them seen again
(see :class:`PanelGrid`).

Only arrays that changed are assigned, always as fresh arrays and x with y
under ``hold_sync`` (one message, no frame with mismatched lengths). Switching
between linear/log y or x, or step/date x, replaces the scales: the new scale gets
its bounds first, then each mark gets the new scale *and* its new data in one
message, so no mark is ever drawn with data meant for the other scale (a log scale
given the linear line's zeros drew NaN paths; the old scale is closed last).

Axes (see :mod:`lossviz_widget._core.limits`): y bounds never run below 0 for
non-negative data nor more than a small margin past the data; the wheel zoom stops at
a few steps; tick labels are d3 formats worked out from the shown range (SI
suffixes, just enough digits, clock times on a wall-time axis), and log axes get
their tick values from Python.

Scale bounds are set from Python, not left to bqplot's auto-ranging: bqplot redraws
every line of a scale on each change of its domain, and auto-ranging changes it as
each line's new data arrives (the shared x scale once per frame, a panel's y scale
up to once per line), so a frame drew each line 3-4 times. :func:`_held` bounds
change only when the data leaves them or shrinks well inside them, and the x axis leaves room
on the right for about a second of the run's growth (:mod:`lossviz_widget._core.headroom`), so
a young run's axes move about once a second, not every frame.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable

import numpy as np
from bqplot import Axis, DateScale, Figure, LinearScale, Lines, LogScale, Scatter
from bqplot.interacts import PanZoom
from ipywidgets import Box, Layout, VBox

from .._core.frame import Frame, PanelFrame, SeriesFrame
from .._core.headroom import MIN_FILL, GrowthRate, headroom_above
from .._core.limits import (
    MIN_X_SPAN,
    clamp_to_data,
    date_tick_format,
    linear_ticks,
    log_ticks,
    number_tick_format,
    widen_to_min_span,
)
from .._core.run_groups import BAND_OPACITY
from .hover import HoverLayer, pack_series, series_entry, series_slot

__all__ = ["PanelGrid"]

_EMPTY = np.empty(0)
_FAINT = 0.25  # opacity of the raw line behind the smoothed one


def _held(current: tuple, lo: float, hi: float, below: tuple[float, float], above: tuple[float, float],
          flat: float, log: bool = False) -> tuple[float, float]:
    """Bounds for data spanning ``[lo, hi]`` that change as rarely as possible.

    ``below`` and ``above`` are each side's margin and rounding step, as
    :func:`~lossviz_widget._core.headroom.headroom_above` gives them for the data's span (a step
    means room for a side's growth: the bound is then rounded out to a multiple of it, on a linear
    axis). ``current`` (numbers or None) is kept while it contains the data and the data, so
    widened (by ``flat`` when the span is 0), fills at least ``MIN_FILL`` of it; otherwise that
    widened span is returned. On a log axis the arithmetic is done on log10 values (margins too).
    """
    to, back = (math.log10, lambda v: 10.0**v) if log else (float, float)
    a, b = to(lo), to(hi)
    (room_below, step_below), (room, step) = below, above
    if b - a > 0:
        t0, t1 = a - room_below, b + room
    else:
        t0, t1 = a - flat / 2, b + flat / 2
        step = step_below = 0.0
    if current[0] is not None and current[1] is not None:
        c0, c1 = to(current[0]), to(current[1])
        if c0 <= a and b <= c1 and t1 - t0 >= MIN_FILL * (c1 - c0):
            return float(current[0]), float(current[1])
    if step and not log:
        t1 = math.ceil(t1 / step) * step
    if step_below and not log:
        t0 = math.floor(t0 / step_below) * step_below
    return back(t0), back(t1)


def _extent(arrays: list) -> tuple[float, float] | None:
    """The finite min and max over arrays (None where there is no finite value)."""
    finite = [a[np.isfinite(a)] for a in arrays if a is not None and len(a)]
    finite = [a for a in finite if len(a)]
    if not finite:
        return None
    return float(min(a.min() for a in finite)), float(max(a.max() for a in finite))


def _y_scale(log: bool) -> LinearScale | LogScale:
    """A linear or log scale (y, and x for numbers)."""
    # no padding: bqplot otherwise widens a domain for marker sizes (a loss axis at -0.4, x from -14k)
    return LogScale(allow_padding=False) if log else LinearScale(allow_padding=False)


def _ticks(axis: Axis, lo: float | None, hi: float | None, log: bool, date: bool = False) -> int:
    """Set ``axis``'s tick format (and values, on a log axis) for the range ``[lo, hi]`` (numbers, epoch
    seconds on a date axis); returns the updates sent (0 or 1)."""
    if lo is None or hi is None:
        return 0
    if date:  # d3's time ticks (empty, not None: a change, so bqplot computes them for this scale)
        want: dict = {"tick_format": date_tick_format(hi - lo), "tick_values": _EMPTY}
    elif log:
        want = {"tick_format": "~s" if lo >= 1 else ".3~g", "tick_values": log_ticks(lo, hi)}
    else:
        want = {"tick_format": number_tick_format(lo, hi), "tick_values": linear_ticks(lo, hi)}
    if axis.tick_format == want["tick_format"] and _same(axis.tick_values, want["tick_values"]):
        return 0
    with axis.hold_sync():
        for k, v in want.items():
            setattr(axis, k, v)
    return 1


def _ticks_for_both(lo: float | None, hi: float | None) -> np.ndarray | None:
    """Tick values that a linear and a log scale over ``[lo, hi]`` both place: positive ones."""
    if lo is None or hi is None or not hi > 0:
        return None
    return log_ticks(max(float(lo), float(hi) * 1e-6), float(hi))


def _same(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return bool(np.array_equal(a, b))


class _Panel:
    """One family's Figure and its marks."""

    def __init__(self, family: str, x_scale: LinearScale | LogScale | DateScale, x_label: str, log_y: bool,
                 height: int) -> None:
        self.family = family
        self.log_y = log_y
        self.x_scale = x_scale
        self.y_scale = _y_scale(log_y)
        # a new x scale or log y waits for apply(): see set_scales
        self._pending: tuple[LinearScale | LogScale | DateScale, str, bool, bool] | None = None
        # series (and ("band", key) of run groups) whose data a scale change dropped: sent again when shown
        self._cleared: set[object] = set()
        self._old_y_scale: LinearScale | LogScale | None = None  # closed once no mark uses it
        self._packed: list[str | tuple[str, str]] | None = None  # series in HoverLayer.lines, in slot order
        self._y_growth = (GrowthRate(), GrowthRate())  # how fast the y extent falls and rises (room for it)
        self.growing = False  # the last y bounds left growth room (redone at the next frame, data or not)
        self._stale = False  # frames were skipped (nobody saw the panel): the next one sends everything
        self.settling = False  # scales switched in the last apply(): the axes get their own ticks in the next
        self.x_axis = Axis(scale=x_scale, label=x_label, grid_lines="solid")  # colours: js/lossviz.css
        self.y_axis = Axis(scale=self.y_scale, side="left", tick_format=".3~g",
                           grid_lines="solid")
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
            fig_margin={"top": 40, "bottom": 45, "left": 60, "right": 40},
            min_aspect_ratio=0.01, max_aspect_ratio=100,
            # bqplot's hover toolbar: its Reset throws unless its own pan/zoom button was pressed first
            # (no panzoom model yet), and "follow latest" is the reset here
            display_toolbar=False,
            layout=Layout(width="100%", height=f"{height}px"),
        )
        self.figure.add_class("lossviz-panel")
        # the legend (outside the plot area), crosshair and hover readout: see _ui/hover.py
        self.layer = HoverLayer()
        self.box = VBox([self.layer, self.figure], layout=Layout(flex="1 1 420px", min_width="320px"))
        self.box.add_class("lossviz-panel-box")

    def _scales(self) -> dict:
        return {"x": self.x_scale, "y": self.y_scale}

    def set_scales(self, x_scale: LinearScale | LogScale | DateScale, x_label: str, log_y: bool,
                   x_date: bool = False) -> None:
        """Switch to ``x_scale`` (a DateScale when ``x_date``) and a linear or log y scale at the next
        :meth:`apply`, which then sends every mark's data for the new scales."""
        self._pending = (x_scale, x_label, log_y, x_date)

    def _switch_scales(self, pf: PanelFrame, follow: bool) -> int:
        """Carry out :meth:`set_scales`; :meth:`apply` then sends the data. Returns the updates sent.

        bqplot redraws a mark for a data change with the scales it has, and for a scale change
        with the data it has (whichever comes first in one message): data meant for one scale
        would meet the other (a log scale given zeros draws ``NaN`` paths; step 0 on a log x
        axis, numbers on a date axis). So every mark first drops its data, then the scales
        change (a new y scale gets its bounds first; each axis its scale, tick format and tick
        values in one message), and the new data come last.
        """
        assert self._pending is not None
        x_scale, x_label, log_y, x_date = self._pending
        self._pending = None
        sent = 0
        for mark in self._marks():
            if np.size(mark.x) or np.size(mark.y):
                with mark.hold_sync():
                    mark.x, mark.y = _EMPTY, _EMPTY
                sent += 1
        self._cleared.update(self.lines)
        self._cleared.update(("band", key) for key in self.bands)
        old = None
        if log_y != self.log_y:
            old = self.y_scale
            self.y_scale, self.log_y = _y_scale(log_y), log_y
        self.x_scale = x_scale
        sent += self._apply_y_range(pf, follow, ticks=False)
        # The same goes for an axis and its ticks, and the browser makes a new scale's view
        # asynchronously (bqplot's Axis draws with the old one until then): while the scale
        # changes, bqplot's default format (a time format on a number scale is an error) and
        # tick values that both scales can place (a linear axis's 0 tick is NaN on a log one);
        # the next frame sets the new scale's own.
        if old is not None:
            with self.y_axis.hold_sync():
                self.y_axis.scale, self.y_axis.tick_format = self.y_scale, None
                self.y_axis.tick_values = _ticks_for_both(self.y_scale.min, self.y_scale.max)
        with self.x_axis.hold_sync():
            self.x_axis.label = x_label
            if self.x_axis.scale is not x_scale:
                dates = x_date or isinstance(self.x_axis.scale, DateScale)
                self.x_axis.scale, self.x_axis.tick_format = x_scale, None
                self.x_axis.tick_values = None if dates else _ticks_for_both(x_scale.min, x_scale.max)
        self.settling = True
        self.panzoom.scales = {"x": [x_scale]}
        for mark in self._marks():
            mark.scales = self._scales()
        self._old_y_scale = old
        return sent + 6 + len(self._marks())

    def _apply_y_range(self, pf: PanelFrame, follow: bool, ticks: bool = True) -> int:
        self.growing = False  # (set again by _auto_y)
        current = (self.y_scale.min, self.y_scale.max)
        lo, hi = pf.y_range if pf.y_range else self._auto_y(pf, current, follow)
        if current == (lo, hi):
            return 0
        with self.y_scale.hold_sync():
            self.y_scale.min, self.y_scale.max = lo, hi
        return 1 + (_ticks(self.y_axis, lo, hi, self.log_y) if ticks else 0)

    def _marks(self) -> list:
        return [m for pair in (*self.lines.values(), *self.bands.values()) for m in pair] + [self.markers,
                                                                                          self.findings]

    def set_canvas(self, canvas: bool) -> None:
        """Draw the series' lines on the hover layer's canvas (True) or as bqplot SVG marks.

        The points move with them (the layer's ``lines``, or the ``Lines`` models): the next
        :meth:`apply` sends every series again."""
        if canvas == self.layer.canvas:
            return
        with self.layer.hold_sync():
            self.layer.canvas = canvas
            if not canvas:
                self.layer.lines = b""
        for pair in self.lines.values():
            for mark in pair:
                if canvas and np.size(mark.x):
                    with mark.hold_sync():
                        mark.x, mark.y = _EMPTY, _EMPTY
        self._packed = None
        self._cleared.update(self.lines)
        self._order_marks()

    @property
    def unseen(self) -> bool:
        """No view shows this panel (the browser said so), and no scale switch waits for its next frame."""
        return not self.layer.seen and self._pending is None and not self.settling

    def skip(self) -> None:
        """Nobody sees this panel: send nothing for this frame, and everything with the next one applied."""
        self._stale = True
        self._cleared.update(self.lines)
        self._cleared.update(("band", key) for key in self.bands)

    def _order_marks(self) -> None:
        """Raw lines behind, then run groups' bands, the main lines, the groups' lines; markers on top.

        On a canvas (:meth:`set_canvas`) the series' lines are left out: bqplot makes no view for
        them (their models still hold the data, which js/hover.js draws and reads)."""
        pairs = [] if self.layer.canvas else list(self.lines.values())
        marks = ([p[0] for p in pairs] + [p[0] for p in self.bands.values()]
                 + [p[1] for p in pairs] + [p[1] for p in self.bands.values()] + [self.markers, self.findings])
        if list(self.figure.marks) != marks:
            self.figure.marks = marks

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
            if not (b.changed or ("band", b.key) in self._cleared):
                continue
            self._cleared.discard(("band", b.key))
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

    def apply(self, pf: PanelFrame, follow: bool = True) -> int:
        """Push one panel's frame; returns the number of widget updates sent. ``follow``: the x axis
        follows the data (no zoom), so the y axis may leave room for the data's growth."""
        rescale = self._pending is not None
        if rescale:
            sent = self._switch_scales(pf, follow)
        elif self.settling:
            self.settling = False
            sent = self._apply_y_range(pf, follow, ticks=False)
            sent += _ticks(self.y_axis, self.y_scale.min, self.y_scale.max, self.log_y)
        else:
            sent = self._apply_y_range(pf, follow) if pf.changed or self._stale or self.growing else 0
        canvas = self.layer.canvas
        repack = False  # with canvas on: a series' points changed, HoverLayer.lines is sent again
        shown = set()
        for sf in pf.series:
            if sf.key not in self.lines:
                self._add_series(sf)
                sent += 1
            shown.add(sf.key)
            faint, main = self.lines[sf.key]
            sent += _restyle(faint, main, sf)
            if not (sf.changed or sf.key in self._cleared):
                if faint.visible != (sf.raw_x is not None):  # shown again after being hidden
                    faint.visible = sf.raw_x is not None
                    sent += 1
                continue
            self._cleared.discard(sf.key)
            show_raw = sf.raw_x is not None
            if canvas:  # the points go in HoverLayer.lines; the models keep the style the canvas reads
                repack = True
                sent += _set_style(main, marker="circle" if sf.dots else None)
                sent += _set_style(faint, visible=show_raw)
                continue
            with main.hold_sync():
                main.x, main.y = sf.x, sf.y
                main.marker = "circle" if sf.dots else None  # dots only on measured values
            sent += 1
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
        if pf.changed or rescale or self._stale:
            sent += _set_points(self.markers, pf.marker_x, pf.marker_y, pf.marker_colors)
            sent += _set_points(self.findings, pf.finding_x, pf.finding_y, pf.finding_colors)
        self._stale = False
        packed = None
        if canvas and (repack or self._packed != [sf.key for sf in pf.series]):
            self._packed = [sf.key for sf in pf.series]
            packed = pack_series([((sf.x, sf.y), None if sf.raw_x is None or sf.raw_y is None else (sf.raw_x, sf.raw_y))
                                  for sf in pf.series])
        sent += self.layer.show(self._entries(pf), self.x_axis.label, packed)
        old, self._old_y_scale = self._old_y_scale, None
        if old is not None:  # only once no mark refers to it any more
            old.close()
        title = pf.family + (f"  ({pf.note})" if pf.note else "")
        if self.figure.title != title:
            self.figure.title = title
            sent += 1
        return sent

    def _entries(self, pf: PanelFrame) -> list[dict]:
        """The hover layer's legend/readout entries: the shown series, then the run groups' lines."""
        entries = []
        for i, sf in enumerate(pf.series):
            faint, main = self.lines[sf.key]
            entries.append(series_entry(sf.key, sf.label or sf.name, sf.color, sf.dash, main,
                                        faint if sf.raw_x is not None else None, sf.in_view > len(sf.x),
                                        series_slot(i) if self.layer.canvas else None))
        for b in pf.bands:
            entries.append(series_entry(b.key, b.label, b.color, "solid", self.bands[b.key][1]))
        return entries

    def _auto_y(self, pf: PanelFrame, current: tuple, follow: bool) -> tuple:
        extent = _extent([a for sf in pf.series for a in (sf.y, sf.raw_y)]
                         + [a for b in pf.bands for a in (b.y, b.band_lo, b.band_hi)])
        if extent is None:
            return None, None
        if pf.log_y:  # only the positive values are drawn
            extent = _extent([a[a > 0] for sf in pf.series for a in (sf.y, sf.raw_y) if a is not None]
                             + [a[a > 0] for b in pf.bands for a in (b.y, b.band_lo, b.band_hi)])
            if extent is None:
                return None, None
        flat = abs(extent[0]) * 0.2 or 1.0  # a constant series: +-10% around it
        # room for about a second of growth on a side whose extent grows fast (a young run's lr
        # decaying, its loss falling), so its axis moves about once a second, not every frame (as x)
        a, b = (math.log10(extent[0]), math.log10(extent[1])) if pf.log_y else extent
        key = (pf.log_y, follow)  # a zoom or a pan starts over, and only a followed run grows
        down, up = self._y_growth[0].observe(key, -a), self._y_growth[1].observe(key, b)
        if not follow:
            down = up = 0.0
        # each side's margin and rounding step: a step means growth room, and the clamp below lets
        # the bounds run that far (margin plus rounding) past the data
        below, above = (headroom_above(b - a, r) for r in (down, up))
        self.growing = below[1] > 0 or above[1] > 0
        held = _held(current, *extent, below, above, math.log10(1.2) if pf.log_y else flat, pf.log_y)
        return clamp_to_data(*held, *extent, log=pf.log_y, room=(sum(below), sum(above)))

    def close(self) -> None:
        for w in [*self._marks(), self.x_axis, self.y_axis, self.y_scale, self.panzoom, self.figure, self.layer,
                  self.box]:
            w.close()


def _set_points(scatter: Scatter, x: np.ndarray, y: np.ndarray, colors: list[str]) -> int:
    """Show ``x, y`` in ``scatter`` (hidden when empty); returns the updates sent (0 or 1)."""
    shown = len(x) > 0
    if not (shown or scatter.visible):
        return 0
    colors = colors or ["#d62728"]
    if (scatter.visible == shown and list(scatter.colors) == colors and _same(np.asarray(scatter.x), np.asarray(x))
            and _same(np.asarray(scatter.y), np.asarray(y))):
        return 0  # the same points (findings stay put while a run grows): nothing to send
    with scatter.hold_sync():
        scatter.x, scatter.y = x, y
        scatter.colors = colors
        scatter.visible = shown
    return 1


def _set_style(mark: Lines, **style: object) -> int:
    """Set the traits of ``style`` that differ on ``mark``, in one message; returns the updates sent (0 or 1)."""
    changed = {k: v for k, v in style.items() if getattr(mark, k) != v}
    if changed:
        with mark.hold_sync():
            for k, v in changed.items():
                setattr(mark, k, v)
    return int(bool(changed))


def _restyle(faint: Lines, main: Lines, sf: SeriesFrame) -> int:
    """Bring a series' marks to its colour, dash, opacity, label and visibility; returns updates sent."""
    return (_set_style(main, colors=[sf.color], line_style=sf.dash, opacities=[sf.opacity],
                       labels=[sf.label or sf.name], visible=True, display_legend=True)
            + _set_style(faint, colors=[sf.color], opacities=[_FAINT * sf.opacity]))


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
    not reported back. ``on_width`` is called with the widest plot area (CSS pixels) the
    browser measured, when it changes. A zoom narrower than :data:`~lossviz_widget._core.limits.MIN_X_SPAN`
    steps (seconds on time axes) is widened to it about its middle.

    Panels nobody sees (``HoverLayer.seen`` off: scrolled out of view, tab hidden) get nothing
    while ``skip_unseen()`` says so, i.e. while the kernel would hear at once that they are seen
    again; then ``on_seen`` is called, and the next frame sends them everything.
    """

    def __init__(self, on_zoom: Callable[[tuple[float, float]], None] | None = None, panel_height: int = 240,
                 on_width: Callable[[int], None] | None = None, on_seen: Callable[[], None] | None = None,
                 skip_unseen: Callable[[], bool] | None = None) -> None:
        self.box = Box(layout=Layout(display="flex", flex_flow="row wrap", width="100%"))
        self.box.add_class("lossviz-panels")
        self.panels: dict[str, _Panel] = {}
        self._x_kind = (False, False)  # (date, log) of the shared x scale
        self._min_span = MIN_X_SPAN  # in x axis units
        self._growth = GrowthRate()  # how fast the auto-ranged x extent grows (the room left on the right)
        self._x_growing = False  # the last x bounds left growth room (see growing)
        self._y_growing = False  # ... the y bounds of a panel the last frame drew
        self._on_zoom = on_zoom
        self._on_width = on_width
        self._on_seen = on_seen
        self._skip_unseen = skip_unseen
        self._applying_range = False
        self._panel_height = panel_height
        self._canvas = False
        #: Scales were switched in the last apply(): draw one more frame soon, for the axes' own ticks.
        self.settling = False
        self.x_scale: LinearScale | LogScale | DateScale = self._new_x_scale(*self._x_kind)

    @property
    def _x_is_date(self) -> bool:
        return self._x_kind[0]

    def set_panel_height(self, height: int) -> None:
        """Make every panel (and those to come) ``height`` pixels high."""
        self._panel_height = height
        for panel in self.panels.values():
            panel.figure.layout.height = f"{height}px"

    def _width_measured(self, change: dict) -> None:
        """A view measured a panel's plot area: report the widest (each panel is drawn from one point budget)."""
        widest = max(p.layer.width for p in self.panels.values())
        if widest > 0 and self._on_width is not None:
            self._on_width(widest)

    def _seen_changed(self, change: dict) -> None:
        if change["new"] and self._on_seen is not None:
            self._on_seen()

    def set_renderer(self, renderer: str) -> None:
        """Draw the lines of every panel (and those to come) as SVG (``"svg"``) or on a canvas (``"canvas"``)."""
        self._canvas = renderer == "canvas"
        for panel in self.panels.values():
            panel.set_canvas(self._canvas)

    def _new_x_scale(self, date: bool, log: bool) -> LinearScale | LogScale | DateScale:
        scale = DateScale(allow_padding=False) if date else _y_scale(log)
        scale.observe(self._scale_moved, names=["min", "max"])
        return scale

    def _scale_moved(self, change: dict) -> None:
        lo, hi = self.x_scale.min, self.x_scale.max
        if self._applying_range or self._on_zoom is None or lo is None or hi is None:
            return
        lo, hi = _to_number(lo), _to_number(hi)
        if hi <= lo:  # half-way through a message that moves both bounds (min set, max not yet)
            return
        wide = widen_to_min_span(lo, hi, self._min_span)
        if self._x_kind[1] and wide[0] <= 0:  # a log axis: keep the window positive
            wide = (min(lo, hi / 2), hi)
        if wide != (lo, hi):
            self._set_x_range(wide)
        self._on_zoom(wide)

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
        """Held bounds for all panels' x data (epoch s on a date axis), with room on the right for the
        growth of about the next second (at least 5% of the span, at most all of it)."""
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
        # room for the growth of the next second or so (the axis then moves about once a second, not every frame)
        key = (frame.x_axis, frame.x_label, frame.x_log, frame.x_is_date)
        rate = self._growth.observe(key, math.log10(extent[1]) if frame.x_log else extent[1])
        span = math.log10(extent[1]) - math.log10(extent[0]) if frame.x_log else extent[1] - extent[0]
        above = headroom_above(span, rate)
        self._x_growing = above[1] > 0  # a rounding step: a growth margin (see _held)
        return _held(current, *extent, (0.0, 0.0), above, math.log10(2.0) if frame.x_log else 1.0, log=frame.x_log)

    def _x_span_unit(self, frame: Frame) -> float:
        """The smallest zoom window, in x axis units: a few steps, or a few seconds of time."""
        if frame.x_axis != "relative_time":
            return MIN_X_SPAN
        unit = {"(h)": 3600.0, "(min)": 60.0}.get(frame.x_label.rsplit(" ", 1)[-1], 1.0)
        return MIN_X_SPAN / unit

    @property
    def growing(self) -> bool:
        """Whether the last frame left growth room on an axis (a young run growing fast): one more
        frame once the run stopped drops it (:data:`~lossviz_widget._core.headroom.SETTLE_S`)."""
        return self._x_growing or self._y_growing

    def apply(self, frame: Frame) -> int:
        sent = 0
        kind = (frame.x_is_date, frame.x_log)
        old = None
        if kind != self._x_kind:
            old = self.x_scale
            self.x_scale = self._new_x_scale(*kind)
            self._x_kind = kind
            for shown in self.panels.values():  # carried out in their apply(), after the new scale's bounds
                shown.set_scales(self.x_scale, frame.x_label, shown.log_y, frame.x_is_date)
        self._min_span = self._x_span_unit(frame)
        self._x_growing = self._y_growing = False  # (set again by _auto_x, and below)
        sent += self._set_x_range(frame.x_range if frame.x_range is not None else self._auto_x(frame))
        lo, hi = self.x_scale.min, self.x_scale.max
        x_lo = None if lo is None else _to_number(lo)
        x_hi = None if hi is None else _to_number(hi)
        for pf in frame.panels:
            panel = self.panels.get(pf.family)
            if panel is None:
                panel = self.panels[pf.family] = _Panel(pf.family, self.x_scale, frame.x_label, pf.log_y,
                                                        self._panel_height)
                panel.layer.observe(self._width_measured, names=["width"])
                panel.layer.observe(self._seen_changed, names=["seen"])
                panel.set_canvas(self._canvas)
            elif panel.log_y != pf.log_y or panel.x_axis.label != frame.x_label:
                panel.set_scales(self.x_scale, frame.x_label, pf.log_y, frame.x_is_date)
            if panel.unseen and self._skip_unseen is not None and self._skip_unseen():
                panel.skip()
                continue
            sent += panel.apply(pf, frame.x_range is None)
            self._y_growing = self._y_growing or panel.growing
            if not panel.settling:
                sent += _ticks(panel.x_axis, x_lo, x_hi, frame.x_log, frame.x_is_date)
        if old is not None:  # only once no mark or axis refers to it any more
            old.close()
        self.settling = any(p.settling for p in self.panels.values())
        boxes = tuple(p.box for p in self.panels.values())
        if self.box.children != boxes:
            self.box.children = boxes
            sent += 1
        return sent

    def close(self) -> None:
        for panel in self.panels.values():
            panel.close()
        self.x_scale.close()
        self.box.close()
