"""``LandscapeView``: the live widget for a landscape, in the loss curves' bqplot look.

2-D: a ``HeatMap`` of the loss (viridis; not-yet-computed cells show their nearest
computed neighbour, non-finite losses are gaps), white contour lines (contourpy),
the centre θ* marked, and for a trajectory the path with its checkpoints coloured
by their true loss on the same colour scale. 1-D: the loss against α (gaps where
non-finite). Above it: the cost (grid points × forward passes) before starting,
a progress bar with ETA, a Cancel button and a log-colour toggle (losses span decades).
1-D curves join the points computed so far (non-finite ones are gaps).

Updates come from the computing thread, at most every ``min_interval`` seconds
plus one at the end; every redraw holds one lock (ipywidgets has none). The
Cancel button only acts while the kernel is free to receive the click, i.e. when
computing with :meth:`start` (a background thread); a foreground :meth:`run`
stops on a kernel interrupt instead.
"""

from __future__ import annotations

import html
import os
import threading
import time
from pathlib import Path

import ipywidgets as widgets
import numpy as np
from bqplot import Axis, ColorAxis, ColorScale, Figure, HeatMap, LinearScale, Lines, LogScale, Scatter
from traitlets import Bool

from .._core.formatting import TEXT_COLORS, format_number
from .grid import Landscape
from .picture import contour_levels, contour_lines, nearest_fill, shown_values
from .runner import Runner

__all__ = ["LandscapeView"]

_EMPTY = np.empty(0)
_GRID = {"grid_lines": "solid", "grid_color": "#e8e8e8"}
_FIG = {"fig_margin": {"top": 40, "bottom": 50, "left": 65, "right": 90}, "animation_duration": 0,
        "min_aspect_ratio": 0.01, "max_aspect_ratio": 100}


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "…"
    s = round(seconds)
    return f"{s // 60}:{s % 60:02d}" if s >= 60 else f"{s} s"


def _execution_count() -> int | None:
    """The running cell's number in IPython, else None."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - ipywidgets depends on IPython
        return None
    shell = get_ipython()
    return None if shell is None else shell.execution_count


class LandscapeView(widgets.VBox):
    """Shows a :class:`~.grid.Landscape` as a :class:`~.runner.Runner` fills it."""

    log_color = Bool(False, help="Colour (2-D) or y axis (1-D) on a log10 scale; losses <= 0 become gaps.")

    def __init__(self, runner: Runner, *, log_color: bool = False, min_interval: float = 0.2) -> None:
        super().__init__()
        self.runner = runner
        self.landscape: Landscape = runner.landscape
        self.min_interval = float(min_interval)
        self._lock = threading.RLock()
        self._last = 0.0
        self._shown_in: int | None = None
        land = self.landscape
        self._header = widgets.HTML(f"<b>{html.escape(land.title or land.kind)}</b>")
        self._header.add_class("lossviz-title")
        self._cost = widgets.HTML(f"<span>cost: {html.escape(land.cost_text())}</span>")
        self._progress = widgets.IntProgress(value=0, min=0, max=max(1, land.n_points),
                                             layout=widgets.Layout(width="220px"))
        self._status = widgets.HTML()
        self._status.add_class("lossviz-status")
        self._cancel = widgets.Button(description="Cancel", tooltip="stop after the point being computed",
                                      layout=widgets.Layout(width="80px"))
        self._cancel.on_click(lambda _: self.cancel())
        self._log = widgets.ToggleButton(description="log colour" if land.ndim == 2 else "log y",
                                         tooltip="log10 scale (losses span decades)",
                                         layout=widgets.Layout(width="100px"))
        widgets.link((self, "log_color"), (self._log, "value"))
        bar = widgets.HBox([self._progress, self._status, self._cancel, self._log],
                           layout=widgets.Layout(flex_flow="row wrap", align_items="center"))
        bar.add_class("lossviz-controls")
        self._x = LinearScale()
        self._build_2d() if land.ndim == 2 else self._build_1d()
        self.children = [self._header, self._cost, bar, self.figure]
        self.add_class("lossviz-landscape")
        self.log_color = bool(log_color)
        self.observe(lambda _: self.redraw(), names="log_color")
        runner.listeners.append(self._on_progress)
        self.redraw()

    # -- marks --------------------------------------------------------------------------

    def _build_2d(self) -> None:
        land = self.landscape
        self._y = LinearScale()
        self._color = ColorScale(scheme="viridis")
        scales = {"x": self._x, "y": self._y}
        self.heat = HeatMap(x=land.x, y=land.y, color=np.full(land.values.shape, np.nan),
                            scales={**scales, "color": self._color}, null_color="#f0f0f0")
        self.contours = Lines(x=_EMPTY, y=_EMPTY, scales=scales, colors=["white"], opacities=[0.8], stroke_width=1)
        self.centre = Scatter(x=np.zeros(1), y=np.zeros(1), scales=scales, marker="cross", colors=["white"],
                              stroke="black", default_size=60)
        marks = [self.heat, self.contours, self.centre]
        if land.path is not None:
            coords = land.path.coords
            self.path_line = Lines(x=coords[:, 0], y=coords[:, 1], scales=scales, colors=["black"], stroke_width=1.5)
            self.path_points = Scatter(x=coords[:, 0], y=coords[:, 1], color=land.path.losses,
                                       scales={**scales, "color": self._color}, stroke="black", default_size=36,
                                       tooltip=None)
            marks += [self.path_line, self.path_points]
        self._color_axis = ColorAxis(scale=self._color, side="right", label=land.metric, tick_format=".3~g")
        axes = [Axis(scale=self._x, label=land.x_label, **_GRID),
                Axis(scale=self._y, label=land.y_label, side="left", **_GRID),
                self._color_axis]
        self.figure = Figure(marks=marks, axes=axes, title=land.metric, **_FIG,
                             layout=widgets.Layout(width="560px", height="480px"))
        self.figure.add_class("lossviz-panel")

    def _build_1d(self) -> None:
        land = self.landscape
        self._y = LinearScale()
        self.curve = Lines(x=_EMPTY, y=_EMPTY, scales={"x": self._x, "y": self._y},
                           colors=["#1f77b4"], stroke_width=2, marker="circle", marker_size=16)
        self._y_axis = Axis(scale=self._y, side="left", tick_format=".3~g",
                            label=land.metric, **_GRID)
        self.figure = Figure(marks=[self.curve], axes=[Axis(scale=self._x, label=land.x_label, **_GRID), self._y_axis],
                             title=land.metric, **_FIG, layout=widgets.Layout(width="560px", height="340px"))
        self.figure.add_class("lossviz-panel")

    # -- updates ------------------------------------------------------------------------

    def _on_progress(self, land: Landscape) -> None:
        now = time.monotonic()
        if land.status == "running" and now - self._last < self.min_interval:
            return
        self._last = now
        self.redraw()

    def redraw(self) -> None:
        """Push the landscape's current state to the marks, progress bar and status line."""
        with self._lock:
            land = self.landscape
            if land.y is not None:  # a 2-D landscape
                self._draw_2d(land, land.y)
            else:
                self._draw_1d(land)
            self._progress.value = self.runner.done
            self._status.value = self._status_html()
            self._cancel.disabled = land.status not in ("pending", "running")

    def _draw_2d(self, land: Landscape, y: np.ndarray) -> None:
        field = nearest_fill(shown_values(land.values, self.log_color), land.computed)
        label = f"log10 {land.metric}" if self.log_color else land.metric
        xs, ys = contour_lines(land.x, y, field, contour_levels(field))
        with self.heat.hold_sync():
            self.heat.color = field
        with self.contours.hold_sync():
            self.contours.x, self.contours.y = xs, ys
        if self._color_axis.label != label:
            self._color_axis.label = label
        if land.path is not None:
            self.path_points.color = shown_values(land.path.losses, self.log_color)

    def _draw_1d(self, land: Landscape) -> None:
        log = self.log_color
        if isinstance(self._y, LogScale) != log:
            old, self._y = self._y, LogScale() if log else LinearScale()
            self.curve.scales = {"x": self._x, "y": self._y}
            self._y_axis.scale = self._y
            old.close()
        done = land.computed
        y = shown_values(land.values[done], False)  # computed points only: a coarse pass is already a curve
        if log:
            y[~(y > 0)] = np.nan
        with self.curve.hold_sync():
            self.curve.x, self.curve.y = land.x[done], y

    def _status_html(self) -> str:
        land, r = self.landscape, self.runner
        text = f"{r.done:,}/{r.total:,} points"
        if land.status == "running":
            text += f", ETA {_duration(r.eta())}"
        elif land.status != "pending":
            elapsed = (r.finished_at or 0) - (r.started_at or 0)
            text += f", {land.status} in {_duration(elapsed)}"
        if land.computed.any():
            finite = land.values[land.computed & np.isfinite(land.values)]
            if finite.size:
                text += f"; min {format_number(float(finite.min()))}, max {format_number(float(finite.max()))}"
        if land.path is not None:
            text += f"; mean projection residual {format_number(float(np.mean(land.path.residual)))}"
        body = html.escape(text)
        if land.error:
            body += f' <span style="color:{TEXT_COLORS["error"]}">{html.escape(land.error)}</span>'
        return f'<span style="font-size:12px;font-variant-numeric:tabular-nums">{body}</span>'

    # -- display ------------------------------------------------------------------------

    def show(self) -> None:
        """Display the view now (before computing, so it fills in live).

        The one-call functions show the view and then return it; when that return value
        is the cell's last expression, the same cell does not display it a second time.
        """
        from IPython.display import display

        display(self._repr_mimebundle_(), raw=True)
        self._shown_in = _execution_count()

    def _ipython_display_(self) -> None:
        from IPython.display import display

        count, self._shown_in = self._shown_in, None
        if count is not None and count == _execution_count():
            return  # already shown by show() in this very cell
        display(self._repr_mimebundle_(), raw=True)

    # -- control ------------------------------------------------------------------------

    def run(self) -> Landscape:
        """Compute now, blocking (the view updates live); see :meth:`Runner.run`."""
        return self.runner.run()

    def start(self) -> LandscapeView:
        """Compute in a background thread; Cancel works meanwhile. Returns the view."""
        self.runner.start()
        return self

    def cancel(self) -> None:
        self.runner.cancel()

    def wait(self, timeout: float | None = None) -> Landscape:
        return self.runner.wait(timeout)

    def close(self) -> None:
        """Stop a background run (after its current point) and close every widget of the view."""
        self.runner.cancel()
        if self._on_progress in self.runner.listeners:
            self.runner.listeners.remove(self._on_progress)
        parts = [*self.figure.marks, *self.figure.axes, *{s for m in self.figure.marks for s in m.scales.values()},
                 self.figure, self._header, self._cost, self._progress, self._status, self._cancel, self._log,
                 *self.children[2:3]]
        for w in parts:
            w.close()
        super().close()

    def export(self, path: str | os.PathLike[str], *, log_color: bool | None = None, **kwargs: object) -> Path:
        """Write the landscape as ``.png``/``.svg`` (matplotlib) or ``.npz``/``.json`` data; see :func:`.export.save`.

        Images use the view's colour scale unless ``log_color`` says otherwise.
        """
        from .export import save

        return save(self.landscape, path, log_color=self.log_color if log_color is None else log_color, **kwargs)
