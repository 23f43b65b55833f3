"""HTML of a frame's tables: the latest/best readout (with forecasts on, a forecast column) and a
run's label (with its chance against the best run's forecast) -- the widget and the report show the
same markup. Everything user-provided (metric and run names) is escaped."""

from __future__ import annotations

import html
import math

from .._core.formatting import TEXT_COLORS, format_number, step_attr
from .._core.frame import ReadoutRow, RunRow

__all__ = ["readout_html", "run_label_html"]


def run_label_html(row: RunRow) -> str:
    """Swatch, escaped name and best value of one run."""
    name = html.escape(row.name, quote=True)
    if row.metric and not math.isnan(row.best):
        which = "max" if row.higher_is_better else "min"
        best = (f'<span style="color:{TEXT_COLORS["muted"]}">best {html.escape(row.metric)} ({which}) '
                f"<b>{format_number(row.best)}</b> at step {format_number(row.best_step)}</span>")
    else:
        best = f'<span style="color:{TEXT_COLORS["muted"]}">no value yet</span>'
    forecast = (f' &nbsp; <span class="lossviz-chance" style="color:{TEXT_COLORS["muted"]}">'
                f'{html.escape(row.forecast)}</span>' if row.forecast else "")
    return (f'<span data-run="{name}" style="font-size:12px">'
            f'<span style="display:inline-block;width:14px;height:4px;margin:0 6px 3px 0;background:{row.color}">'
            f"</span><b>{name}</b> &nbsp; {best}{forecast}</span>")


def readout_html(rows: list[ReadoutRow]) -> str:
    """A table of the latest and best value of each metric (names escaped); with several runs, of each
    (run, metric), grouped by run: one ``<tbody>`` per run, its name once, spanning its rows."""
    if not rows:
        return (f'<div class="lossviz-empty" style="color:{TEXT_COLORS["muted"]}">'
                "No values logged yet: call plot.log(loss=...)</div>")
    runs: dict[str, list[ReadoutRow]] = {}
    for r in rows:
        runs.setdefault(r.run, []).append(r)
    several = len(runs) > 1
    forecasts = any(r.forecast for r in rows)
    head = (
        f"<tr><th></th>{'<th>run</th>' if several else ''}<th>metric</th><th>step</th><th>latest</th><th>best</th>"
        f"<th>at step</th><th>points</th><th>non-finite</th>{'<th>forecast</th>' if forecasts else ''}</tr>"
    )
    body = []
    for run_rows in runs.values():
        body.append('<tbody style="border-top:1px solid #ddd">' if several else "<tbody>")
        for i, r in enumerate(run_rows):
            name = html.escape(r.name, quote=True)
            run = html.escape(r.run, quote=True)
            arrow = "&#9650;" if r.higher_is_better else "&#9660;"  # which way is better
            bad = f' style="color:{TEXT_COLORS["error"]};font-weight:bold"' if r.nonfinite else ""
            first = several and not i  # the run's name once, spanning its rows
            run_cell = f'<td rowspan="{len(run_rows)}" style="vertical-align:top">{run}</td>' if first else ""
            body.append(
                f'<tr data-run="{run}" data-metric="{name}" data-step="{step_attr(r.step)}" data-count="{r.count}" '
                f'data-nonfinite="{r.nonfinite}">'
                f'<td><span style="display:inline-block;width:12px;height:3px;background:{r.color}"></span></td>'
                f"{run_cell}<td>{name}</td>"
                f"<td>{format_number(r.step)}{_rewound(r.note)}</td><td>{format_number(r.latest)}</td>"
                f"{_best_cells(r, arrow)}"
                f"<td>{r.count:,}</td><td{bad}>{r.nonfinite:,}</td>{_forecast(r.forecast) if forecasts else ''}</tr>"
            )
        body.append("</tbody>")
    return (
        '<table style="border-collapse:collapse;font-size:12px;font-variant-numeric:tabular-nums" '
        'cellpadding="3"><thead>' + head + "</thead>" + "".join(body) + "</table>"
    )


def _forecast(text: str) -> str:
    """The forecast cell (see :mod:`lossviz_widget.forecast`); grey when there is no forecast."""
    grey = f"color:{TEXT_COLORS['muted']};" if text.startswith("no forecast") else ""
    return f'<td class="lossviz-forecast" style="{grey}text-align:left">{html.escape(text)}</td>'


def _rewound(note: str) -> str:
    """A mark after the step of a series that was resumed (a step rewind), the note as its tooltip."""
    if not note:
        return ""
    return f' <span title="{html.escape(note, quote=True)}" style="color:{TEXT_COLORS["rewind"]}">&#8634;</span>'


def _best_cells(r: ReadoutRow, arrow: str) -> str:
    """The best value and its step; blank where a best means nothing (a learning rate, a norm)."""
    if not r.has_best:
        return '<td title="no best: min/max means nothing for this metric (see best_metrics)"></td><td></td>'
    step = "" if math.isnan(r.best_step) else format_number(r.best_step)
    return (f'<td title="best ({"max" if r.higher_is_better else "min"})">{format_number(r.best)} {arrow}</td>'
            f"<td>{step}</td>")
