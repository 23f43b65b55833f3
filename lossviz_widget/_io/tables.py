"""HTML of a frame's tables: the latest/best readout (with forecasts on, a forecast column) and a
run's label (with its chance against the best run's forecast) -- the widget and the report show the
same markup. Everything user-provided (metric and run names) is escaped."""

from __future__ import annotations

import html
import math

from .._core.formatting import format_number, step_attr
from .._core.frame import ReadoutRow, RunRow

__all__ = ["readout_html", "run_label_html"]


def run_label_html(row: RunRow) -> str:
    """Swatch, escaped name and best value of one run."""
    name = html.escape(row.name, quote=True)
    if row.metric and not math.isnan(row.best):
        which = "max" if row.higher_is_better else "min"
        best = (f'<span style="color:#555">best {html.escape(row.metric)} ({which}) '
                f"<b>{format_number(row.best)}</b> at step {format_number(row.best_step)}</span>")
    else:
        best = '<span style="color:#999">no value yet</span>'
    forecast = (f' &nbsp; <span class="lossviz-chance" style="color:#555">{html.escape(row.forecast)}</span>'
                if row.forecast else "")
    return (f'<span data-run="{name}" style="font-size:12px">'
            f'<span style="display:inline-block;width:14px;height:4px;margin:0 6px 3px 0;background:{row.color}">'
            f"</span><b>{name}</b> &nbsp; {best}{forecast}</span>")


def readout_html(rows: list[ReadoutRow]) -> str:
    """A table of the latest and best value of each metric (names escaped); with several runs, of each
    (run, metric), with a run column."""
    if not rows:
        return '<div class="lossviz-empty" style="color:#777">No values logged yet: call plot.log(loss=...)</div>'
    several = len({r.run for r in rows}) > 1
    forecasts = any(r.forecast for r in rows)
    head = (
        f"<tr><th></th>{'<th>run</th>' if several else ''}<th>metric</th><th>step</th><th>latest</th><th>best</th>"
        f"<th>at step</th><th>points</th><th>non-finite</th>{'<th>forecast</th>' if forecasts else ''}</tr>"
    )
    body = []
    for r in rows:
        name = html.escape(r.name, quote=True)
        run = html.escape(r.run, quote=True)
        arrow = "&#9650;" if r.higher_is_better else "&#9660;"  # which way is better
        bad = ' style="color:#d62728;font-weight:bold"' if r.nonfinite else ""
        body.append(
            f'<tr data-run="{run}" data-metric="{name}" data-step="{step_attr(r.step)}" data-count="{r.count}" '
            f'data-nonfinite="{r.nonfinite}">'
            f'<td><span style="display:inline-block;width:12px;height:3px;background:{r.color}"></span></td>'
            f"{f'<td>{run}</td>' if several else ''}<td>{name}</td>"
            f"<td>{format_number(r.step)}{_rewound(r.note)}</td><td>{format_number(r.latest)}</td>"
            f'<td title="best ({"max" if r.higher_is_better else "min"})">{format_number(r.best)} {arrow}</td>'
            f"<td>{'' if math.isnan(r.best_step) else format_number(r.best_step)}</td>"
            f"<td>{r.count:,}</td><td{bad}>{r.nonfinite:,}</td>{_forecast(r.forecast) if forecasts else ''}</tr>"
        )
    return (
        '<table style="border-collapse:collapse;font-size:12px;font-variant-numeric:tabular-nums" '
        'cellpadding="3">' + head + "".join(body) + "</table>"
    )


def _forecast(text: str) -> str:
    """The forecast cell (see :mod:`lossviz_widget.forecast`); grey when there is no forecast."""
    grey = "color:#999;" if text.startswith("no forecast") else ""
    return f'<td class="lossviz-forecast" style="{grey}text-align:left">{html.escape(text)}</td>'


def _rewound(note: str) -> str:
    """A mark after the step of a series that was resumed (a step rewind), the note as its tooltip."""
    return f' <span title="{html.escape(note, quote=True)}" style="color:#17becf">&#8634;</span>' if note else ""
