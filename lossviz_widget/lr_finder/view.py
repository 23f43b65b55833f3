"""The learning-rate finder's live plot: loss against lr on a log-x bqplot panel.

Same look as :class:`~lossviz_widget._ui.figures.PanelGrid`: the raw loss faint behind
the smoothed one, no animation, arrays assigned fresh and x with y under
``hold_sync``. Suggestions are a ``Scatter`` of labelled markers on the smoothed
curve plus an HTML table below (escaped). Updates while the test runs are
throttled to ``min_interval`` seconds; :meth:`LRFinderPlot.update` with
``force=True`` always draws.
"""

from __future__ import annotations

import html
import math
import time
from collections.abc import Mapping, Sequence

import ipywidgets as widgets
import numpy as np
from bqplot import Axis, Figure, LinearScale, Lines, LogScale, Scatter

from .._core.formatting import TEXT_COLORS, format_number
from .suggest import Suggestion

__all__ = ["LRFinderPlot"]

_COLOR = "#1f77b4"
_MARKER_COLORS = {"valley": "#d62728", "steep": "#2ca02c", "minimum": "#9467bd", "slide": "#ff7f0e"}


def _fresh(values: Sequence[float] | np.ndarray) -> np.ndarray:
    return np.array(values, dtype=np.float64)  # a new array each time (bqplot keeps a reference)


class LRFinderPlot(widgets.VBox):
    """Live loss-vs-learning-rate plot of :func:`~lossviz_widget.lr_find`."""

    def __init__(self, title: str = "learning-rate finder", min_interval: float = 0.1, **kwargs) -> None:
        self.x_scale = LogScale()
        self.y_scale = LinearScale()
        scales = {"x": self.x_scale, "y": self.y_scale}
        self.raw = Lines(x=_fresh([]), y=_fresh([]), scales=scales, colors=[_COLOR], opacities=[0.25],
                         stroke_width=1, labels=["loss"], display_legend=False)
        self.smoothed = Lines(x=_fresh([]), y=_fresh([]), scales=scales, colors=[_COLOR], stroke_width=2,
                              labels=["smoothed loss"], display_legend=True)
        self.markers = Scatter(x=_fresh([]), y=_fresh([]), scales=scales, names=[], display_names=True,
                               marker="circle", default_size=64, stroke="black", stroke_width=0.5,
                               colors=["#d62728"], display_legend=False)
        self.figure = Figure(
            marks=[self.raw, self.smoothed, self.markers],
            axes=[Axis(scale=self.x_scale, label="learning rate", tick_format=".0e",
                       grid_lines="solid", grid_color="#e8e8e8"),
                  Axis(scale=self.y_scale, side="left", label="loss", tick_format=".3~g",
                       grid_lines="solid", grid_color="#e8e8e8")],
            title=title, animation_duration=0, legend_location="top-left",
            fig_margin={"top": 40, "bottom": 45, "left": 60, "right": 40},
            layout=widgets.Layout(width="100%", max_width="720px", height="320px"),
        )
        self.figure.add_class("lossviz-lr-finder")
        self.readout = widgets.HTML(self._status_html("running…"))
        self.min_interval = min_interval
        self._last_draw = -math.inf
        super().__init__([self.figure, self.readout], **kwargs)

    def update(self, lrs: Sequence[float] | np.ndarray, losses: Sequence[float], smoothed: Sequence[float],
               force: bool = False) -> bool:
        """Show the curve so far; returns whether it drew (throttled unless ``force``)."""
        now = time.monotonic()
        if not force and now - self._last_draw < self.min_interval:
            return False
        self._last_draw = now
        x = _fresh(lrs)
        with self.raw.hold_sync():
            self.raw.x, self.raw.y = x, _fresh(losses)
        with self.smoothed.hold_sync():
            self.smoothed.x, self.smoothed.y = x.copy(), _fresh(smoothed)
        # y range: the raw loss at divergence would squash the curve, so the top is the smoothed maximum
        smooth_a, raw_a = np.asarray(smoothed, dtype=np.float64), np.asarray(losses, dtype=np.float64)
        smooth_a, raw_a = smooth_a[np.isfinite(smooth_a)], raw_a[np.isfinite(raw_a)]
        lo, hi = (min(smooth_a.min(), raw_a.min()), smooth_a.max()) if len(smooth_a) else (None, None)
        if lo is not None and lo == hi:
            lo, hi = None, None
        with self.y_scale.hold_sync():
            self.y_scale.min = None if lo is None else float(lo)
            self.y_scale.max = None if hi is None else float(hi)
        return True

    def show_suggestions(self, suggestions: Mapping[str, Suggestion], stop_reason: str) -> None:
        """Mark each suggestion's point on the curve and list them below."""
        shown = [s for s in suggestions.values() if math.isfinite(s.point_lr) and math.isfinite(s.point_loss)]
        with self.markers.hold_sync():
            self.markers.x = _fresh([s.point_lr for s in shown])
            self.markers.y = _fresh([s.point_loss for s in shown])
            self.markers.names = [f"{s.method} {s.lr:.2g}" for s in shown]
            self.markers.colors = [_MARKER_COLORS.get(s.method, "#d62728") for s in shown] or ["#d62728"]
        self.readout.value = self._table_html(suggestions, stop_reason)

    def set_status(self, text: str) -> None:
        """Replace the text below the plot (escaped)."""
        self.readout.value = self._status_html(text)

    @staticmethod
    def _status_html(text: str) -> str:
        return (f'<div class="lossviz-lr-status" style="color:{TEXT_COLORS["muted"]};font-size:12px">'
                f"{html.escape(text)}</div>")

    @staticmethod
    def _table_html(suggestions: Mapping[str, Suggestion], stop_reason: str) -> str:
        rows = "".join(
            f'<tr data-method="{html.escape(s.method, quote=True)}"><td>'
            f'<span style="color:{_MARKER_COLORS.get(s.method, "#d62728")}">&#9679;</span> '
            f"{html.escape(s.method)}</td><td>{html.escape(format_number(s.lr))}</td></tr>"
            for s in suggestions.values()
        )
        return (
            LRFinderPlot._status_html(f"stopped: {stop_reason}")
            + '<table class="lossviz-lr-suggestions" style="font-size:12px;font-variant-numeric:tabular-nums" '
            'cellpadding="3"><tr><th>method</th><th>suggested lr</th></tr>' + rows + "</table>"
        )

    def close(self) -> None:
        for w in (self.raw, self.smoothed, self.markers, *self.figure.axes, self.x_scale, self.y_scale,
                  self.figure, self.readout):
            w.close()
        super().close()
