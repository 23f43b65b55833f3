"""Notebook display plumbing: the live widget plus a static image that saved notebooks keep.

A displayed plot's output holds the widget view and, beside it, a ``text/plain`` summary and a
PNG of the current view (ipympl's precedent), so viewers without widget state (GitHub,
nbviewer, nbconvert) still show the curves. The static part is refreshed when a cell ends and
when the plot closes, only if the data or the look changed since.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Sequence
from typing import Any

from .._core.formatting import format_number
from .._core.frame import Frame, ReadoutRow

__all__ = ["Displays", "in_kernel", "static_bundle", "summary_text"]

log = logging.getLogger("lossviz_widget")


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
        lines.append(f"  {name}: {r.count:,} points, step {format_number(r.step)}, latest "
                     f"{format_number(r.latest)}, best {format_number(r.best)} (step {format_number(r.best_step)})")
    return "\n".join(lines)


def static_bundle(frame: Frame, title: str) -> dict[str, Any]:
    """``text/plain`` summary and, once there is data, a PNG of ``frame``."""
    bundle: dict[str, Any] = {"text/plain": summary_text(title, frame.readout)}
    if frame.readout:
        try:
            from .._io.images import image_bytes

            bundle["image/png"] = image_bytes(frame, "png", title=title, dpi=80)
        except Exception:  # a static fallback must never break the live display
            log.exception("lossviz_widget: could not render the static image")
    return bundle


class Displays:
    """The IPython displays of one plot, kept up to date with a static image of its current view.

    ``bundle(live)`` makes the output: with ``live`` the widget view plus the static part, else
    the static part alone (the plot is closing); ``key()`` says what the static image shows, so
    an unchanged plot is not redrawn.
    """

    def __init__(self, bundle: Callable[[bool], dict[str, Any]], key: Callable[[], Hashable]) -> None:
        self._bundle = bundle
        self._key = key
        self._handles: list[Any] = []  # IPython DisplayHandles
        self._shown: Hashable = None

    def show(self) -> None:
        """Display the plot in the current cell, and refresh its static image when cells end."""
        from IPython.display import display

        handle = display(self._bundle(True), raw=True, display_id=True)
        if handle is not None:
            self._handles.append(handle)
            self._shown = self._key()
            self._hook_cell_end()

    def refresh(self, live: bool = True) -> None:
        """Re-send the displays' data with a fresh static image, if the data changed since."""
        if not self._handles:
            return
        key = self._key()
        if live and key == self._shown:
            return
        self._shown = key
        bundle = self._bundle(live)
        for handle in self._handles:
            handle.update(bundle, raw=True)

    def close(self) -> None:
        """Leave the final static image in every display and stop following cell ends."""
        self.refresh(live=False)
        if not self._handles:  # only displayed plots hook the cell end (and close() runs from __del__)
            return
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
