"""The table of runs under the control bar: colour, name, best value, show/hide, highlight.

One row per run (shown once a plot holds two or more runs): a checkbox bound to
the plot's ``hidden_runs``, the run's colour swatch and name (escaped), the best
value of the main metric (see :class:`~lossviz_widget._core.frame.RunRow`) and a
"highlight" toggle bound to ``highlight_run`` (the other runs fade). The rows are
refreshed from each frame's ``runs``; a click changes the plot's traits, which
request a new frame, so Python (``plot.hidden_runs = ("a",)``) and the table stay
in step either way.
"""

from __future__ import annotations

from typing import Any, Protocol

import ipywidgets as widgets

from .._core.frame import RunRow
from .._io.tables import run_label_html

__all__ = ["RunChoices", "RunsTable"]


class RunChoices(Protocol):
    """What the table reads and writes on its plot: the two run-selection settings (``LossPlot``
    traits, made from :class:`~lossviz_widget._core.settings.ViewSettings`)."""

    hidden_runs: tuple[str, ...]
    highlight_run: str | None


class _Row:
    """The widgets of one run's row."""

    def __init__(self, plot: RunChoices, name: str) -> None:
        self.name = name
        self.show = widgets.Checkbox(value=True, indent=False, description="", tooltip="show this run",
                                     layout=widgets.Layout(width="28px"))
        self.label = widgets.HTML()
        self.highlight = widgets.ToggleButton(description="highlight", tooltip="fade the other runs",
                                              layout=widgets.Layout(width="80px", height="24px"))
        self.box = widgets.HBox([self.show, self.highlight, self.label],
                                layout=widgets.Layout(align_items="center"))
        self.box.add_class("lossviz-run")

        def on_show(change: dict[str, Any]) -> None:
            hidden = tuple(r for r in plot.hidden_runs if r != name)
            plot.hidden_runs = hidden if change["new"] else (*hidden, name)

        def on_highlight(change: dict[str, Any]) -> None:
            if change["new"]:
                plot.highlight_run = name
            elif plot.highlight_run == name:
                plot.highlight_run = None

        self.show.observe(on_show, names="value")
        self.highlight.observe(on_highlight, names="value")

    def update(self, row: RunRow, hidden: bool, highlighted: bool) -> int:
        """Show ``row``'s label; the toggles follow ``hidden``/``highlighted``, the plot's traits now.

        Not ``row.hidden``/``row.highlighted``: the frame may predate a click, and setting a
        toggle back to the frame's state would undo that click (the toggles write the traits).
        """
        sent = 0
        label = run_label_html(row)
        if self.label.value != label:
            self.label.value = label
            sent += 1
        if self.show.value == hidden:
            self.show.value = not hidden
            sent += 1
        if self.highlight.value != highlighted:
            self.highlight.value = highlighted
            sent += 1
        return sent


class RunsTable:
    """The run rows of one plot (``box``); hidden while the plot has fewer than two runs."""

    def __init__(self, plot: RunChoices) -> None:
        self._plot = plot
        self._rows: dict[str, _Row] = {}
        self.box = widgets.VBox(layout=widgets.Layout(display="none"))
        self.box.add_class("lossviz-runs")

    def update(self, rows: list[RunRow]) -> int:
        """Bring the table to a frame's runs; returns the number of widget updates sent."""
        sent = 0
        hidden, highlight = set(self._plot.hidden_runs), self._plot.highlight_run
        for row in rows:
            r = self._rows.get(row.name)
            if r is None:
                r = self._rows[row.name] = _Row(self._plot, row.name)
            sent += r.update(row, row.name in hidden, row.name == highlight)
        boxes = tuple(self._rows[row.name].box for row in rows)
        if self.box.children != boxes:
            self.box.children = boxes
            sent += 1
        display = "flex" if len(rows) > 1 else "none"
        if self.box.layout.display != display:
            self.box.layout.display = display
            sent += 1
        return sent

