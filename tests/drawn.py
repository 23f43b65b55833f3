"""What a ``LossPlot`` has drawn, whatever its renderer, read through its public widget tree: the
bqplot marks and the panels' hover layers the browser receives. (For the same view as plain data,
tests read ``plot.frame()``.) And the parts of a ``LandscapeView``, from its public widget tree.

The layout of a figure's marks is documented on ``LossPlot.figures``: with ``renderer="svg"`` the
faint raw lines, the main lines in the same order (``labels`` is the legend label), then the
non-finite markers and the findings markers. With ``renderer="canvas"`` (the default) the series'
``Lines`` are not among the marks and hold only their style: each panel's points travel in its
``HoverLayer.lines`` (one buffer per panel, see ``_ui/hover.py`` ``pack_lines``), which
:func:`decode_lines` reads -- the one decoder of that format in the tests (the browser tests run
it in the kernel through ``browser_harness.DRAWN_CODE``).
"""

from __future__ import annotations

import itertools
import threading
from types import SimpleNamespace
from typing import Any

import ipywidgets as widgets
import numpy as np
from bqplot import Axis, ColorAxis, Figure, Lines, Scale, Scatter

from lossviz_widget import LossPlot
from lossviz_widget._ui.hover import HoverLayer

_NONE = np.empty(0)


def decode_lines(buf: bytes) -> tuple[list[tuple[np.ndarray, np.ndarray]], bool]:
    """The points of ``HoverLayer.lines``, per line, and whether x are dates (epoch ms).

    The documented layout, read independently of the encoder: uint32 ``[count, flags, n...]``
    padded to 8 bytes, then all x (float64), then all y (float32; float64 when flags bit 1 is set).
    """
    if len(buf) < 8:
        return [], False
    count, flags = (int(v) for v in np.frombuffer(buf, "<u4", 2))
    counts = np.frombuffer(buf, "<u4", count, 8)
    at = -(-(8 + 4 * count) // 8) * 8
    total = int(counts.sum())
    y_type = "<f8" if flags & 2 else "<f4"
    xs = np.frombuffer(buf, "<f8", total, at)
    ys = np.frombuffer(buf, y_type, total, at + 8 * total)
    assert len(buf) == at + (8 + np.dtype(y_type).itemsize) * total, "HoverLayer.lines has a wrong length"
    edges = np.concatenate([[0], np.cumsum(counts)]).astype(int)
    return [(xs[a:b], ys[a:b]) for a, b in itertools.pairwise(edges)], bool(flags & 1)


def layers(plot: LossPlot) -> dict[str, HoverLayer]:
    """Each panel's hover layer by family: the widget next to the panel's Figure in its box."""
    found: dict[str, HoverLayer] = {}
    pending: list[widgets.Widget] = list(plot.children)
    while pending:
        w = pending.pop()
        kids = list(getattr(w, "children", ()))
        for family, figure in plot.figures.items():
            if figure in kids:
                (found[family],) = [k for k in kids if isinstance(k, HoverLayer)]
        pending += kids
    return found


def model(ref: str) -> Any:
    """The widget a layer entry names (``IPY_MODEL_<id>``: a canvas plot's ``Lines`` are in no Figure)."""
    return widgets.widgets.widget._instances[ref.removeprefix("IPY_MODEL_")]


class Drawn:
    """One line as the browser draws it: the style of its bqplot ``Lines`` (any attribute of the mark:
    ``colors``, ``opacities``, ``line_style``, ``marker``, ``visible``, ``labels``, ``scales`` ...) and
    its points ``x``, ``y``, read anew at each access. With the SVG renderer those are the mark's own;
    with the canvas renderer the points of its slot in the panel's ``HoverLayer.lines`` (x as
    ``datetime64[ms]`` on a date axis, as a mark holds them), empty while the series is not drawn
    (a hidden run: nothing is sent for it). ``mark`` None: a raw line the canvas has no entry for
    (smoothing off: not drawn)."""

    def __init__(self, layer: HoverLayer, mark: Lines | None, raw: bool) -> None:
        self._layer, self._mark, self._raw = layer, mark, raw

    def _points(self) -> tuple[np.ndarray, np.ndarray]:
        if self._mark is None:
            return _NONE, _NONE
        if not self._layer.canvas:
            return self._mark.x, self._mark.y
        ref = f"IPY_MODEL_{self._mark.model_id}"
        for e in self._layer.series:
            if e["slot"] is not None and e["raw" if self._raw else "main"] == ref:
                packed, dates = decode_lines(self._layer.lines)
                x, y = packed[e["slot"] + int(self._raw)]
                return (x.astype(np.int64).astype("datetime64[ms]") if dates else x), y
        return _NONE, _NONE

    @property
    def x(self) -> np.ndarray:
        return self._points()[0]

    @property
    def y(self) -> np.ndarray:
        return self._points()[1]

    @property
    def visible(self) -> bool:
        return self._mark is not None and bool(self._mark.visible)

    def __getattr__(self, name: str) -> Any:
        if self._mark is None:
            raise AttributeError(f"{name}: no raw line is drawn")
        return getattr(self._mark, name)


def lines(plot: LossPlot, family: str, label: str) -> tuple[Drawn, Drawn]:
    """The (faint raw, main) lines of the series whose legend label is ``label``
    (``"loss"``; ``"run: loss"`` with several runs). ``KeyError`` when it is not drawn (yet)."""
    layer = layers(plot).get(family)
    if layer is None:
        raise KeyError((family, label))
    if layer.canvas:
        for e in layer.series:
            if e["slot"] is not None and e["label"] == label:
                return Drawn(layer, model(e["raw"]) if e["raw"] else None, True), Drawn(layer, model(e["main"]), False)
        raise KeyError((family, label))
    figure = plot.figures[family]
    drawn = [m for m in figure.marks if isinstance(m, Lines)]
    faints, mains = drawn[: len(drawn) // 2], drawn[len(drawn) // 2 :]
    for faint, main in zip(faints, mains, strict=True):
        if main.labels == [label]:
            return Drawn(layer, faint, True), Drawn(layer, main, False)
    raise KeyError((family, label))


def main_line(plot: LossPlot, family: str, label: str) -> Drawn:
    return lines(plot, family, label)[1]


def _scatter(figure: Figure, marker: str) -> Scatter:
    (scatter,) = (m for m in figure.marks if isinstance(m, Scatter) and m.marker == marker)
    return scatter


def nonfinite_markers(plot: LossPlot, family: str) -> Scatter:
    """The triangles marking NaN/Inf values in a panel."""
    return _scatter(plot.figures[family], "triangle-down")


def finding_markers(plot: LossPlot, family: str) -> Scatter:
    """The diamonds marking diagnostics findings on a panel's curves."""
    return _scatter(plot.figures[family], "diamond")


def _axis(figure: Figure, orientation: str) -> Axis:
    (axis,) = (a for a in figure.axes if a.orientation == orientation)
    return axis


def x_axis(plot: LossPlot, family: str) -> Axis:
    return _axis(plot.figures[family], "horizontal")


def x_scale(plot: LossPlot) -> Scale:
    """The x scale every panel shares (what the browser's pan/zoom writes to)."""
    scales = {id(a.scale): a.scale for a in (_axis(f, "horizontal") for f in plot.figures.values())}
    (scale,) = scales.values()
    return scale


def y_scale(plot: LossPlot, family: str) -> Scale:
    return _axis(plot.figures[family], "vertical").scale


def labels(plot: LossPlot, family: str) -> set[str]:
    """The legend labels of the lines drawn in a panel (its series and run groups' lines)."""
    return {e["label"] for e in layers(plot)[family].series}


def render_threads_since(before: set[threading.Thread]) -> list[threading.Thread]:
    """The frame threads (``lossviz-render``) started since ``before = set(threading.enumerate())``."""
    return [t for t in threading.enumerate() if t not in before and t.name == "lossviz-render"]


def landscape_parts(view: widgets.VBox) -> SimpleNamespace:
    """A ``LandscapeView``'s widgets as it lays them out (``view.children``): the header, the cost
    line, the bar (progress, status, cancel button, log toggle) and the figure, plus the figure's
    colour axis (2-D) and y axis."""
    header, cost, bar, figure = view.children
    progress, status, cancel, log = bar.children
    color_axis = next((a for a in figure.axes if isinstance(a, ColorAxis)), None)
    y = next(a for a in figure.axes if a.orientation == "vertical" and not isinstance(a, ColorAxis))
    return SimpleNamespace(header=header, cost=cost, progress=progress, status=status, cancel=cancel, log=log,
                           color_axis=color_axis, y_axis=y)
