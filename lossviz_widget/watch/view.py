"""The watch heatmaps: one layers x steps ``bqplot.HeatMap`` per measured quantity.

Rows are layers (input side at the top, as registered), columns sampled steps; norms, ratios and
the activation std are coloured on a log10 scale (they span decades), the activation mean and the
dead-unit share linearly. Hovering a cell shows its step, row and value; the row names are listed
under each map. Each map holds at most ``max_rows x max_cols`` float32 cells
(:meth:`~.series.WatchedSeries.heat` merges steps and layers beyond that) and is redrawn at most
once per ``min_interval`` seconds, so a watched plot sends at most
``6 x max_rows x max_cols x 4`` bytes of cells per ``min_interval`` (about 180 KB per second
with the defaults) whatever the depth of the model and the length of the run. The total gradient
norm is a curve of the plot itself (``watch/grad_norm``), in its own panel.
"""

from __future__ import annotations

import html
import time

import ipywidgets as widgets
import numpy as np
from bqplot import Axis, ColorAxis, ColorScale, Figure, HeatMap, LinearScale, Tooltip
from ipywidgets import Layout

from .._core.formatting import TEXT_COLORS
from .series import LOG_QUANTITIES, QUANTITIES, Heat, WatchedSeries

__all__ = ["WatchView"]

TITLES = {"grad_norm": "gradient norm", "weight_norm": "weight norm", "update_ratio": "update / weight ratio",
          "act_mean": "activation mean", "act_std": "activation std", "dead_fraction": "dead ReLU units"}


def shown(heat: Heat) -> np.ndarray:
    """The cells as coloured: log10 of the values for :data:`LOG_QUANTITIES` (<= 0 becomes a gap)."""
    if heat.quantity not in LOG_QUANTITIES:
        return heat.color
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(heat.color > 0, np.log10(heat.color), np.nan).astype(np.float32)


class _Map:
    """One quantity's figure."""

    def __init__(self, quantity: str) -> None:
        self.quantity = quantity
        log = quantity in LOG_QUANTITIES
        self.x, self.y = LinearScale(), LinearScale(reverse=True)
        self.color = ColorScale(scheme="viridis")
        self.heat = HeatMap(x=np.arange(2.0), y=np.arange(2.0), color=np.full((2, 2), np.nan, dtype=np.float32),
                            scales={"x": self.x, "y": self.y, "color": self.color},
                            tooltip=Tooltip(fields=["x", "y", "color"], labels=["step", "row", "log10 value" if log
                                                                                   else "value"]))
        self.figure = Figure(
            marks=[self.heat], title=TITLES[quantity], animation_duration=0,
            axes=[Axis(scale=self.x, label="step"), Axis(scale=self.y, side="left", label="layer (row)",
                                                         tick_format="d"),
                  ColorAxis(scale=self.color, side="right", label="log10" if log else "")],
            fig_margin={"top": 35, "bottom": 40, "left": 55, "right": 70},
            min_aspect_ratio=0.01, max_aspect_ratio=100, layout=Layout(width="100%", height="240px"),
        )
        self.rows = widgets.HTML()
        self.box = widgets.VBox([self.figure, self.rows], layout=Layout(flex="1 1 420px", min_width="320px"))
        self._labels: tuple[str, ...] = ()

    def draw(self, heat: Heat) -> None:
        if len(heat.steps) < 2:  # bqplot squeezes a 1-column map to 1-D and rejects it
            return
        color = shown(heat)
        if len(color) == 1:  # one layer: a blank second row keeps the map 2-D
            color = np.vstack([color, np.full_like(color, np.nan)])
        with self.heat.hold_sync():
            self.heat.x = heat.steps.astype(np.float64)
            self.heat.y = np.arange(len(color), dtype=np.float64)
            self.heat.color = color
        if heat.labels != self._labels:
            self._labels = heat.labels
            items = ", ".join(f"{i}&nbsp;{html.escape(name)}" for i, name in enumerate(heat.labels))
            self.rows.value = f'<div style="font-size:11px;color:{TEXT_COLORS["muted"]}">rows: {items}</div>'


class WatchView:
    """The heatmaps of one watcher; :attr:`box` goes into the plot's layout."""

    def __init__(self, max_cols: int = 240, max_rows: int = 32, min_interval: float = 1.0) -> None:
        self.max_cols = max_cols
        self.max_rows = max_rows
        self.min_interval = min_interval
        self.box = widgets.Box(layout=Layout(display="flex", flex_flow="row wrap", width="100%"))
        self.box.add_class("lossviz-watch")
        self._maps: dict[str, _Map] = {}
        self._last = -np.inf

    def draw(self, series: WatchedSeries) -> bool:
        """Redraw from ``series``; False (nothing sent) while the last redraw is under ``min_interval`` old."""
        now = time.monotonic()
        if now - self._last < self.min_interval:
            return False
        self._last = now
        present = series.present()
        for q in (q for q in QUANTITIES if q in present):
            if q not in self._maps:
                self._maps[q] = _Map(q)
                self.box.children = tuple(self._maps[k].box for k in QUANTITIES if k in self._maps)
            self._maps[q].draw(series.heat(q, self.max_cols, self.max_rows))
        return True
