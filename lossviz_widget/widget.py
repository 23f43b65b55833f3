"""``LossPlot``: the widget users display and log to.

Data path: ``log()`` -> :mod:`store` (validated, buffered) -> :mod:`scheduler`
(frames at most ``fps`` per second, on a background thread) -> :mod:`view`
(smoothing, downsampling, readout) -> :mod:`figures` (bqplot). ``log()`` itself
never touches a widget.

Outside a Jupyter kernel (a plain script) there is no render thread: logging
and history work the same, and :meth:`LossPlot.flush` renders on demand.
"""

from __future__ import annotations

import dataclasses
import html
import threading
from collections.abc import Mapping
from typing import Any

import ipywidgets as widgets
from traitlets import Bool, Enum, Float, Int, TraitError, Unicode, observe, validate

from .controls import control_bar, format_number, readout_html
from .figures import PanelGrid
from .scheduler import FrameScheduler
from .store import History, MetricStore
from .view import X_AXIS_MODES, Frame, FrameBuilder, ReadoutRow, ViewSettings

__all__ = ["LossPlot"]

_VIEW_TRAITS = ("smoothing", "log_y", "ignore_outliers", "x_axis", "max_points")


def _in_kernel() -> bool:
    """True inside a running IPython kernel (a browser may be attached)."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - ipykernel depends on IPython
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


class LossPlot(widgets.VBox):
    """Live loss curves for a training loop.

    >>> plot = LossPlot(title="resnet18")      # display it: `plot` as the cell's last line
    >>> plot.log(loss=0.93, step=0)             # any number of metrics per call
    >>> plot.log({"val/loss": 1.02}, step=0)    # or a mapping

    Metrics group into one panel per family (``loss``/``val_loss``/``train/loss``
    share a panel). The browser receives at most ``max_points`` points per
    line per frame, chosen per x-bucket min/max so spikes survive; smoothing is
    TensorBoard's debiased EMA on the full-resolution data.
    """

    title = Unicode("", help="Heading shown above the panels.").tag(sync=True)
    smoothing = Float(0.6, help="TensorBoard EMA weight in [0, 1); 0 draws the raw data only.").tag(sync=True)
    log_y = Bool(False, help="Logarithmic y axes; values <= 0 are drawn as gaps.").tag(sync=True)
    ignore_outliers = Bool(False, help="Fit y axes to the 5th-95th percentile of the data.").tag(sync=True)
    x_axis = Enum(X_AXIS_MODES, "step", help="x axis: step, wall_time or relative_time.").tag(sync=True)
    fps = Float(10.0, help="Maximum frames per second sent to the browser.").tag(sync=True)
    max_points = Int(2000, help="Maximum points per line per frame.").tag(sync=True)

    def __init__(
        self,
        title: str = "",
        *,
        smoothing: float = 0.6,
        log_y: bool = False,
        ignore_outliers: bool = False,
        x_axis: str = "step",
        fps: float = 10.0,
        max_points: int = 2000,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            title=title, smoothing=smoothing, log_y=log_y, ignore_outliers=ignore_outliers,
            x_axis=x_axis, fps=fps, max_points=max_points, **kwargs,
        )
        self._store = MetricStore()
        self._builder = FrameBuilder()
        self._grid = PanelGrid()
        self._render_lock = threading.Lock()
        self._header = widgets.HTML()
        self._header.add_class("lossviz-title")
        self._readout = widgets.HTML(readout_html([]))
        self._readout.add_class("lossviz-readout")
        self._status = widgets.HTML()
        self._status.add_class("lossviz-status")
        self._error = ""  # last rendering error, shown in the status line
        self._last_rows: list[ReadoutRow] = []
        self._update_header()
        self.children = [self._header, control_bar(self), self._grid.box, self._readout, self._status]
        self.add_class("lossviz")
        self._live = _in_kernel()
        self._scheduler = FrameScheduler(self._render, fps=fps, on_error=self._report_error)

    # -- validation -----------------------------------------------------------------------------

    @validate("smoothing")
    def _check_smoothing(self, proposal: dict) -> float:
        v = proposal["value"]
        if not 0.0 <= v < 1.0:
            raise TraitError(f"smoothing must be in [0, 1), got {v!r}")
        return v

    @validate("fps")
    def _check_fps(self, proposal: dict) -> float:
        v = proposal["value"]
        if not 0.0 < v <= 60.0:
            raise TraitError(f"fps must be in (0, 60], got {v!r}")
        return v

    @validate("max_points")
    def _check_max_points(self, proposal: dict) -> int:
        v = proposal["value"]
        if not 16 <= v <= 1_000_000:
            raise TraitError(f"max_points must be in [16, 1000000], got {v!r}")
        return v

    @observe(*_VIEW_TRAITS)
    def _on_view_change(self, change: dict) -> None:
        self._request_frame()

    @observe("fps")
    def _on_fps(self, change: dict) -> None:
        if hasattr(self, "_scheduler"):
            self._scheduler.fps = change["new"]

    @observe("title")
    def _on_title(self, change: dict) -> None:
        if hasattr(self, "_header"):
            self._update_header()

    # -- public API ---------------------------------------------------------------------------

    def log(self, metrics: Mapping[str, Any] | None = None, /, *, step: float | None = None, **values: Any) -> None:
        """Record one value per metric at ``step``; returns immediately (drawing happens later).

        ``step`` defaults to one more than the largest step logged so far (so it counts
        calls when never given). Values may be Python or NumPy numbers, 0-d/size-1
        arrays or tensors; GPU tensors are fetched in batches at frame time. Raises
        ``TypeError``/``ValueError`` naming the metric for bad input, in which case
        nothing from this call is recorded.
        """
        if metrics is None:
            merged: Mapping[str, Any] = values
        elif not isinstance(metrics, Mapping):
            raise TypeError(
                f"log() takes a mapping of metric values or keyword arguments, got {type(metrics).__name__}"
            )
        elif values:
            clash = metrics.keys() & values.keys()
            if clash:
                raise ValueError(f"metric {sorted(clash)[0]!r} given both in the mapping and as a keyword")
            merged = {**metrics, **values}
        else:
            merged = metrics
        if not merged:
            raise TypeError("log() needs at least one metric, e.g. plot.log(loss=0.5)")
        self._store.log(merged, step)
        if self._live:
            self._scheduler.request()

    def flush(self) -> None:
        """Draw everything logged so far now, on this thread (also works without a browser)."""
        self._render()

    @property
    def history(self) -> History:
        """Full-resolution data: ``plot.history["loss"].steps / .values / .wall_time``."""
        return History(self._store)

    def close(self) -> None:
        """Stop the render thread and close every child widget."""
        scheduler = getattr(self, "_scheduler", None)
        if scheduler is not None:
            scheduler.stop()
        grid = getattr(self, "_grid", None)
        if grid is not None:
            grid.close()
        pending = list(self.children)
        while pending:  # the control bar's slider, toggles and dropdown too
            child = pending.pop()
            pending.extend(getattr(child, "children", ()))
            child.close()
        super().close()

    # -- rendering ----------------------------------------------------------------------------

    def _settings(self) -> ViewSettings:
        return ViewSettings(self.smoothing, self.log_y, self.ignore_outliers, self.x_axis, self.max_points)

    def _export_frame(self, max_points: int = 4000) -> Frame:
        """The current view (panels, colours, smoothing, scales) at export resolution.

        Built by a fresh FrameBuilder, so the live view's incremental state is untouched.
        """
        settings = dataclasses.replace(self._settings(), max_points=max_points)
        return FrameBuilder().build(self._store.snapshot(), self._store.t0, settings)

    def _request_frame(self) -> None:
        if getattr(self, "_live", False):
            self._scheduler.request()

    def _render(self) -> int:
        """Build and push one frame; returns the number of widget messages sent."""
        with self._render_lock:
            data = self._store.snapshot()
            frame = self._builder.build(data, self._store.t0, self._settings())
            sent = self._grid.apply(frame)
            readout = readout_html(frame.readout)
            if readout != self._readout.value:
                self._readout.value = readout
                sent += 1
            self._last_rows = frame.readout
            status = self._status_html(frame.readout)
            if status != self._status.value:
                self._status.value = status
                sent += 1
            return sent

    def _status_html(self, rows: list[ReadoutRow]) -> str:
        points = sum(r.count for r in rows)
        nonfinite = sum(r.nonfinite for r in rows)
        last = max((r.step for r in rows), default=None)
        parts = [] if last is None else [f"step {format_number(last)}"]
        parts.append(f"{len(rows)} metrics, {points:,} points")
        if nonfinite:
            parts.append(f'<span style="color:#d62728">&#9660; {nonfinite:,} non-finite (NaN/Inf) values</span>')
        if self._error:
            parts.append(f'<span style="color:#d62728">rendering error: {html.escape(self._error)}</span>')
        return '<span style="font-size:11px;color:#555">' + " &middot; ".join(parts) + "</span>"

    def _report_error(self, exc: BaseException) -> None:
        self._error = f"{type(exc).__name__}: {exc}"
        with self._render_lock:
            self._status.value = self._status_html(self._last_rows)

    def _update_header(self) -> None:
        text = html.escape(self.title)
        self._header.value = f'<b style="font-size:14px">{text}</b>' if text else ""
