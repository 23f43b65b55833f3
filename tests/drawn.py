"""What a ``LossPlot`` has drawn, read through its public ``figures``: the bqplot marks the
browser receives. (For the same view as plain data, tests read ``plot.frame()``.) And the parts
of a ``LandscapeView``, from its public widget tree.

The layout of a figure's marks is documented on ``LossPlot.figures``: the faint raw lines,
the main lines in the same order (``labels`` is the legend label), then the non-finite
markers and the findings markers.
"""

from __future__ import annotations

import threading
from types import SimpleNamespace

import ipywidgets as widgets
from bqplot import Axis, ColorAxis, Figure, Lines, Scale, Scatter

from lossviz_widget import LossPlot


def lines(plot: LossPlot, family: str, label: str) -> tuple[Lines, Lines]:
    """The (faint raw, main) lines of the series whose legend label is ``label``
    (``"loss"``; ``"run: loss"`` with several runs). ``KeyError`` when it is not drawn (yet)."""
    figure = plot.figures.get(family)
    drawn = [m for m in figure.marks if isinstance(m, Lines)] if figure is not None else []
    faints, mains = drawn[: len(drawn) // 2], drawn[len(drawn) // 2 :]
    for faint, main in zip(faints, mains, strict=True):
        if main.labels == [label]:
            return faint, main
    raise KeyError((family, label))


def main_line(plot: LossPlot, family: str, label: str) -> Lines:
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
    """The legend labels of the series drawn in a panel (hidden runs' lines included)."""
    return {m.labels[0] for m in plot.figures[family].marks if isinstance(m, Lines) and m.labels}


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
