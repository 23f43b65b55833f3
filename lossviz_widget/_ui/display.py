"""Notebook display plumbing: the live widget, then a static image that saved notebooks keep.

Displaying a plot makes two outputs in the cell: the widget view, and right after it a static
image of the current view (``text/html`` holding the PNG, plus ``image/png`` and a ``text/plain``
summary). Why two: a front end picks one MIME type per output, and JupyterLab always picks the
widget type, so a notebook saved without widget state (JupyterLab's default: "Save Widget State
Automatically" is off) and reopened without running anything showed "Error displaying widget:
model not found" and no curves, although the PNG was in that same output. In an output of its
own the PNG always shows. While the widget lives, a style it carries (:data:`WIDGET_CSS`) hides
the image output right after it, so the live view is not shown twice; where the widget cannot
render, nothing hides the image. nbconvert, nbviewer and GitHub show the image (and the
summary). The image is refreshed when a cell ends and when the plot closes, only if the data
or the look changed since; closing also empties the widget's output.

The same style replaces ipywidgets' broken-link icon on each of the plot's parts, after a kernel
restart or shutdown, by one line on top: "kernel disconnected: static view".
"""

from __future__ import annotations

import base64
import html
import logging
from collections.abc import Callable, Hashable, Sequence
from typing import Any

from .._core.formatting import format_number
from .._core.frame import Frame, ReadoutRow

__all__ = ["WIDGET_CSS", "Displays", "in_kernel", "static_bundle", "summary_text"]

log = logging.getLogger("lossviz_widget")

#: Carried by the live widget (a ``<style>`` in it), so it applies exactly while the widget renders.
WIDGET_CSS = """
.jp-OutputArea-child:has(.lossviz) + .jp-OutputArea-child:has(.lossviz-static) { display: none; }
.lossviz .jupyter-widgets-disconnected::before { content: none; display: none; }
.lossviz.jupyter-widgets-disconnected::before {
  content: "kernel disconnected: static view (run the cell again to go live)";
  display: block; padding: 2px 0 4px; font: 12px var(--jp-ui-font-family, sans-serif);
  color: var(--jp-ui-font-color2, #616161);
}
.lossviz.jupyter-widgets-disconnected .lossviz-controls { opacity: 0.5; pointer-events: none; }
.lossviz-findings { max-height: 9em; overflow-y: auto; }
.lossviz-readout-box .jupyter-widget-Collapse-header { padding: 3px 8px; font-size: 12px; }
.lossviz-readout-box .jupyter-widget-Collapse-contents { padding: 2px 8px; }
"""


def in_kernel() -> bool:
    """True inside a running IPython kernel (a browser may be attached)."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - ipykernel depends on IPython
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def summary_text(title: str, rows: Sequence[ReadoutRow]) -> str:
    """The plot as plain text: each series' points, latest step and value, best value."""
    head = f"LossPlot {title!r}" if title else "LossPlot"
    if not rows:
        return f"{head}: no values logged yet"
    lines = [f"{head}: {len(rows)} metrics"]
    several = len({r.run for r in rows}) > 1
    for r in rows:
        name = f"{r.run}: {r.name}" if several else r.name
        best = f", best {format_number(r.best)} (step {format_number(r.best_step)})" if r.has_best else ""
        lines.append(f"  {name}: {r.count:,} points, step {format_number(r.step)}, latest "
                     f"{format_number(r.latest)}{best}")
    return "\n".join(lines)


def static_bundle(frame: Frame, title: str) -> dict[str, Any]:
    """``text/plain`` summary and, once there is data, a PNG of ``frame``; the ``text/html`` part
    (the ``<img>``, or the summary while nothing is logged) sits in a ``lossviz-static`` box, which
    the live widget's style hides, so a live plot never shows its fallback under it."""
    text = summary_text(title, frame.readout)
    bundle: dict[str, Any] = {"text/plain": text,
                              "text/html": f'<div class="lossviz-static"><pre>{html.escape(text)}</pre></div>'}
    if frame.readout:
        try:
            from .._io.images import image_bytes

            png = image_bytes(frame, "png", title=title, dpi=80)
        except Exception:  # a static fallback must never break the live display
            log.exception("lossviz_widget: could not render the static image")
            return bundle
        alt = html.escape(f"LossPlot {title}".strip(), quote=True)
        bundle["image/png"] = png
        bundle["text/html"] = (f'<div class="lossviz-static"><img alt="{alt}" style="max-width:100%" '
                               f'src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}"/></div>')
    return bundle


class Displays:
    """The IPython displays of one plot: the widget's output and, after it, the static image's.

    ``widget()`` makes the widget's bundle, ``static()`` the static one; ``key()`` says what the
    static image shows, so an unchanged plot is not redrawn.
    """

    def __init__(self, widget: Callable[[], dict[str, Any]], static: Callable[[], dict[str, Any]],
                 key: Callable[[], Hashable]) -> None:
        self._widget = widget
        self._static = static
        self._key = key
        self._handles: list[tuple[Any, Any]] = []  # IPython DisplayHandles: (widget's, static image's)
        self._shown: Hashable = None

    def show(self) -> None:
        """Display the plot in the current cell, and refresh its static image when cells end."""
        from IPython.display import display

        live = display(self._widget(), raw=True, display_id=True)
        key = self._key()
        still = display(self._static(), raw=True, display_id=True)
        if live is not None and still is not None:
            self._handles.append((live, still))
            self._shown = key
            self._hook_cell_end()

    def refresh(self, force: bool = False) -> None:
        """Re-send the static image if the data changed since (``force``: in any case)."""
        if not self._handles:
            return
        key = self._key()
        if key == self._shown and not force:
            return
        self._shown = key
        bundle = self._static()
        for _, still in self._handles:
            still.update(bundle, raw=True)

    def close(self) -> None:
        """Leave the final static image in every display, empty the widget's outputs, and stop
        following cell ends."""
        if not self._handles:  # only displayed plots hook the cell end (and close() runs from __del__)
            return
        self.refresh(force=True)
        for live, _ in self._handles:
            live.update({"text/plain": ""}, raw=True)
        from IPython import get_ipython

        shell = get_ipython()
        if shell is not None and self._on_cell_end in shell.events.callbacks["post_run_cell"]:
            shell.events.unregister("post_run_cell", self._on_cell_end)

    def _on_cell_end(self, result: Any = None) -> None:
        try:
            self.refresh()
        except Exception:
            log.exception("lossviz_widget: could not refresh the static image")

    def _hook_cell_end(self) -> None:
        from IPython import get_ipython

        shell = get_ipython()
        if shell is not None and self._on_cell_end not in shell.events.callbacks["post_run_cell"]:
            shell.events.register("post_run_cell", self._on_cell_end)
