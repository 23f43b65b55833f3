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
"""

from __future__ import annotations

from typing import Any

import anywidget
from traitlets import Bool, Dict, Int, List, Unicode

from .._io.assets import js_file

__all__ = ["HoverLayer", "series_entry"]


def series_entry(key: Any, label: str, color: str, dash: str, main: Any, raw: Any = None,
                 bucketed: bool = False) -> dict[str, Any]:
    """One legend/readout entry: the drawn ``Lines`` ``main`` and the faint raw one (or None).

    ``bucketed``: fewer points drawn than logged in the drawn x range, so each drawn point is the
    min or max of a bucket (a flag, not the counts, so a growing run does not resend the entry
    every frame).
    """
    return {"key": "\x1f".join(key) if isinstance(key, tuple) else str(key), "label": label, "color": color,
            "dash": dash, "main": f"IPY_MODEL_{main.model_id}", "raw": f"IPY_MODEL_{raw.model_id}" if raw else None,
            "bucketed": bool(bucketed)}


class HoverLayer(anywidget.AnyWidget):
    """Legend and hover readout of one panel (see the module docstring)."""

    _esm = js_file("hover.js")
    _css = js_file("lossviz.css")

    series = List(Dict(), help="Shown series: see series_entry.").tag(sync=True)
    x_label = Unicode("step", help="The x axis label (step, wall time, relative time (unit)).").tag(sync=True)
    canvas = Bool(False, help="Draw the series' lines on a canvas over the plot area (their bqplot Lines then have "
                              "no view: only their models, which hold the data).").tag(sync=True)
    width = Int(0, help="The plot area's width in CSS pixels, set by the browser (rounded up to 32; 0: not "
                        "measured yet): the kernel sends at most 2 points per pixel column.").tag(sync=True)

    def show(self, series: list[dict[str, Any]], x_label: str) -> int:
        """Set the shown series and x label; returns the updates sent (0 when nothing changed)."""
        if series == self.series and x_label == self.x_label:
            return 0
        with self.hold_sync():
            self.series, self.x_label = series, x_label
        return 1
