"""``HoverLayer``: a panel's legend, crosshair and hover readout, drawn in the browser.

bqplot ``Lines`` tooltips cannot show the x/y of the point under the cursor (bqplot #1238),
and browser -> kernel messages wait while a training cell runs, so a readout computed in the
kernel would freeze exactly when it is wanted. ``js/hover.js`` computes it in the browser
instead, from the bqplot models that are already there: this widget only tells it which
``Lines`` models belong to which series (model ids, labels, colours), so hovering costs nothing
on the wire. One layer sits above each panel's Figure (in :class:`~lossviz_widget._ui.figures.PanelGrid`)
and also draws the panel's legend (outside the plot area; a click hides or shows a series in
that view), and reports the plot area's width (``width``) so that lines are sent with at most 2
points per pixel column. ``js/lossviz.css`` (its ``_css``) themes the whole plot from JupyterLab's CSS variables.

With ``canvas`` on, the layer also draws the series' lines, and their points come on the layer
itself: every line of the panel in one binary trait (``lines``, see :func:`pack_lines`), one
message per panel and frame instead of one ``Lines`` update per line, which bqplot decodes into
one JS object per point even when it draws nothing (benchmarks/BROWSER.md). The browser reports
whether anyone can see the panel (``seen``: scrolled into view, tab not hidden), so the kernel can
stop sending frames nobody sees.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import anywidget
import numpy as np
from traitlets import Bool, Bytes, Dict, Int, List, Unicode

from .._io.assets import js_file

__all__ = ["HoverLayer", "pack_lines", "pack_series", "series_entry", "series_slot"]


def series_entry(key: Any, label: str, color: str, dash: str, main: Any, raw: Any = None,
                 bucketed: bool = False, slot: int | None = None) -> dict[str, Any]:
    """One legend/readout entry: the drawn ``Lines`` ``main`` and the faint raw one (or None).

    ``bucketed``: fewer points drawn than logged in the drawn x range, so each drawn point is the
    min or max of a bucket (a flag, not the counts, so a growing run does not resend the entry
    every frame). ``slot``: on a canvas, the index of the main line's points in ``HoverLayer.lines``
    (the raw line's are at ``slot + 1``); None: they are on the ``Lines`` models.
    """
    return {"key": "\x1f".join(key) if isinstance(key, tuple) else str(key), "label": label, "color": color,
            "dash": dash, "main": f"IPY_MODEL_{main.model_id}", "raw": f"IPY_MODEL_{raw.model_id}" if raw else None,
            "bucketed": bool(bucketed), "slot": slot}


def pack_series(series: Sequence[tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray] | None]]) -> bytes:
    """:func:`pack_lines` of each series' (main line, raw line or None) in order: the ``i``-th
    series' main line at slot :func:`series_slot` ``(i)``, its raw line at the next one (what
    ``js/hover.js`` reads for an entry's ``slot``)."""
    return pack_lines([line for pair in series for line in pair])


def series_slot(i: int) -> int:
    """The slot of the ``i``-th series' main line in :func:`pack_series`' buffer."""
    return 2 * i


def pack_lines(lines: Sequence[tuple[np.ndarray, np.ndarray] | None]) -> bytes:
    """Every line of a panel as one little-endian buffer, for ``HoverLayer.lines``.

    Layout: a uint32 header ``[count, flags, n_0, ..., n_{count-1}]`` zero-padded to a multiple of
    8 bytes; then the x values of every line in order (float64: steps stay exact past 2**24 and
    dates are epoch milliseconds); then their y values (float32, the precision the frame draws
    and the readout shows; float64 when a line has float64 y: the frame keeps those where float32
    would turn values to 0 or inf, see :mod:`lossviz_widget._core.precision`). ``flags`` bit 0: x
    is a date; bit 1: y is float64. A None line (no raw line) has 0 points. ``js/hover.js``
    ``unpackLines`` reads it as typed-array views, no per-point work.
    """
    xs = [np.asarray(line[0]) for line in lines if line is not None]
    date = any(np.issubdtype(x.dtype, np.datetime64) for x in xs)
    if date:
        xs = [x.astype("datetime64[ms]").astype(np.int64) for x in xs]
    ys = [np.asarray(line[1]) for line in lines if line is not None]
    wide = any(y.dtype == np.float64 for y in ys)
    counts = (0 if line is None else len(line[0]) for line in lines)
    head = np.array([len(lines), int(date) | 2 * int(wide), *counts], dtype="<u4")
    pad = bytes(-head.nbytes % 8)
    x = np.concatenate(xs).astype("<f8", copy=False) if xs else np.empty(0, "<f8")
    y_type = "<f8" if wide else "<f4"
    y = np.concatenate(ys).astype(y_type, copy=False) if ys else np.empty(0, y_type)
    return b"".join((head.tobytes(), pad, x.tobytes(), y.tobytes()))


class HoverLayer(anywidget.AnyWidget):
    """Legend and hover readout of one panel (see the module docstring)."""

    _esm = js_file("hover.js")
    _css = js_file("lossviz.css")

    series = List(Dict(), help="Shown series: see series_entry.").tag(sync=True)
    x_label = Unicode("step", help="The x axis label (step, wall time, relative time (unit)).").tag(sync=True)
    canvas = Bool(False, help="Draw the series' lines on a canvas over the plot area (their bqplot Lines then have "
                              "no view: only their models, which hold the data).").tag(sync=True)
    lines = Bytes(b"", help="With canvas on: the points of every series line of the panel (see pack_lines), in "
                              "the order of the series' slots.").tag(sync=True)
    seen = Bool(True, help="Set by the browser: some view of this panel is on screen (scrolled into view, "
                           "its tab not hidden).").tag(sync=True)
    width = Int(0, help="The plot area's width in CSS pixels, set by the browser (rounded up to 32; 0: not "
                        "measured yet): the kernel sends at most 2 points per pixel column.").tag(sync=True)

    def show(self, series: list[dict[str, Any]], x_label: str, lines: bytes | None = None) -> int:
        """Set the shown series, x label and (not None) the lines' points, in one message; returns the
        updates sent (0 when nothing changed)."""
        if series == self.series and x_label == self.x_label and (lines is None or lines == self.lines):
            return 0
        with self.hold_sync():
            self.series, self.x_label = series, x_label
            if lines is not None:
                self.lines = lines
        return 1
