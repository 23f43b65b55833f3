"""The watch heatmaps: one layers x steps ``bqplot.HeatMap`` per measured quantity.

Rows are layers (input side at the top, as registered), columns sampled steps; norms, ratios and
the activation std are coloured on a log10 scale (they span decades), the activation mean and the
dead-unit share linearly. Hovering a cell shows its layer, step and value (:class:`HeatHover`,
``js/heat_hover.js``: read in the browser, so it works while the training cell runs); the row
names are also listed under each map. Each map holds at most ``max_rows x max_cols`` float32 cells
(:meth:`~.series.WatchedSeries.heat` merges steps and layers beyond that) and is redrawn at most
once per ``min_interval`` seconds, so a watched plot sends at most
``6 x max_rows x max_cols x 4`` bytes of cells per ``min_interval`` (about 180 KB per second
with the defaults) whatever the depth of the model and the length of the run. The total gradient
norm is a curve of the plot itself (``watch/grad_norm``), in its own panel.
"""

from __future__ import annotations

import html
import time
from collections.abc import Sequence

import anywidget
import ipywidgets as widgets
import numpy as np
from bqplot import Axis, ColorAxis, ColorScale, Figure, HeatMap, LinearScale
from ipywidgets import Layout
from traitlets import Bool, List, Unicode

from .._core.formatting import TEXT_COLORS
from .._io.assets import js_file
from .series import LOG_QUANTITIES, QUANTITIES, Heat, WatchedSeries

__all__ = ["HeatHover", "WatchView"]

TITLES = {"grad_norm": "gradient norm", "weight_norm": "weight norm", "update_ratio": "update / weight ratio",
          "act_mean": "activation mean", "act_std": "activation std", "dead_fraction": "dead ReLU units"}


def shown(heat: Heat) -> np.ndarray:
    """The cells as coloured: log10 of the values for :data:`LOG_QUANTITIES` (<= 0 becomes a gap)."""
    if heat.quantity not in LOG_QUANTITIES:
        return heat.color
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(heat.color > 0, np.log10(heat.color), np.nan).astype(np.float32)


class HeatHover(anywidget.AnyWidget):
    """The hover readout of one heatmap: layer, step and value of the cell under the cursor.

    bqplot draws a ``HeatMap`` as one image, so its ``Tooltip`` cannot tell which cell is hovered;
    ``js/heat_hover.js`` finds the cell from the HeatMap's synced arrays and its scales' bounds
    (set to the cells' edges by :class:`_Map`) in the browser, like the curves' ``HoverLayer``."""

    _esm = js_file("heat_hover.js")
    _css = js_file("lossviz.css")

    heat = Unicode(help="The HeatMap's model reference (IPY_MODEL_...).").tag(sync=True)
    rows = List(Unicode(), help="Row labels, top to bottom: layer names (merged layers as 'a … b').").tag(sync=True)
    title = Unicode(help="What the cells hold, as the map's title says.").tag(sync=True)
    log = Bool(False, help="The cells' colour is log10 of the value (the readout shows the value).").tag(sync=True)
    merged = Bool(False, help="A column merges several sampled steps (its step is the first).").tag(sync=True)


def _edges(centers: np.ndarray) -> tuple[float, float]:
    """The outer edges of cells centred on ``centers`` (at least 2), as bqplot's HeatMap draws them."""
    return float(centers[0] - (centers[1] - centers[0]) / 2), float(centers[-1] + (centers[-1] - centers[-2]) / 2)


class _Map:
    """One quantity's figure."""

    def __init__(self, quantity: str) -> None:
        self.quantity = quantity
        log = quantity in LOG_QUANTITIES
        self.x, self.y = LinearScale(), LinearScale(reverse=True)
        self.color = ColorScale(scheme="viridis")
        self.heat = HeatMap(x=np.arange(2.0), y=np.arange(2.0), color=np.full((2, 2), np.nan, dtype=np.float32),
                            scales={"x": self.x, "y": self.y, "color": self.color})
        self.hover = HeatHover(heat=f"IPY_MODEL_{self.heat.model_id}", title=TITLES[quantity], log=log)
        self.y_axis = Axis(scale=self.y, side="left", label="layer (row)", tick_format="d")
        self.figure = Figure(
            marks=[self.heat], title=TITLES[quantity], animation_duration=0,
            axes=[Axis(scale=self.x, label="step"), self.y_axis,
                  ColorAxis(scale=self.color, side="right", label="log10" if log else "")],
            fig_margin={"top": 35, "bottom": 40, "left": 55, "right": 70},
            min_aspect_ratio=0.01, max_aspect_ratio=100, layout=Layout(width="100%", height="240px"),
        )
        self.rows = widgets.HTML()
        self.box = widgets.VBox([self.hover, self.figure, self.rows], layout=Layout(flex="1 1 420px",
                                                                                   min_width="320px"))
        self.box.add_class("lossviz-watch-map")
        self._labels: tuple[str, ...] = ()

    def draw(self, heat: Heat, merged: bool) -> None:
        """Show ``heat``; ``merged``: its columns merge several sampled steps each."""
        if len(heat.steps) < 2:  # bqplot squeezes a 1-column map to 1-D and rejects it
            return
        color = shown(heat)
        if len(color) == 1:  # one layer: a blank second row keeps the map 2-D
            color = np.vstack([color, np.full_like(color, np.nan)])
        x, y = heat.steps.astype(np.float64), np.arange(len(color), dtype=np.float64)
        with self.heat.hold_sync():
            self.heat.x, self.heat.y, self.heat.color = x, y, color
        # the scales' bounds are the cells' outer edges: the map fills the plot area, and the
        # hover layer maps the cursor to a cell with them
        with self.x.hold_sync():
            self.x.min, self.x.max = _edges(x)
        with self.y.hold_sync():
            self.y.min, self.y.max = _edges(y)
        if self.y_axis.tick_values is None or len(self.y_axis.tick_values) != len(y):
            self.y_axis.tick_values = y  # one tick per row (the bounds at half rows would repeat them)
        self.hover.merged = merged
        if heat.labels != self._labels:
            self._labels = heat.labels
            self.hover.rows = list(heat.labels)
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

    def prepare(self, quantities: Sequence[str]) -> None:
        """Make the maps of ``quantities`` now (empty until data comes): making a map's widgets takes
        ~5 ms each, which the first frame with data would otherwise spend in the training loop."""
        missing = [q for q in QUANTITIES if q in quantities and q not in self._maps]
        if missing:
            self._maps.update((q, _Map(q)) for q in missing)
            self.box.children = tuple(self._maps[k].box for k in QUANTITIES if k in self._maps)

    def draw(self, series: WatchedSeries) -> bool:
        """Redraw from ``series``; False (nothing sent) while the last redraw is under ``min_interval`` old."""
        now = time.monotonic()
        if now - self._last < self.min_interval:
            return False
        self._last = now
        present = series.present()
        self.prepare(present)
        for q in (q for q in QUANTITIES if q in present):
            heat = series.heat(q, self.max_cols, self.max_rows)
            self._maps[q].draw(heat, merged=len(heat.steps) < len(series))
        return True
