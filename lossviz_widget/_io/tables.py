"""HTML of a frame's tables: the latest/best readout and a run's label (the widget and the report
show the same markup). Everything user-provided (metric and run names) is escaped."""

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
    return (f'<span data-run="{name}" style="font-size:12px">'
            f'<span style="display:inline-block;width:14px;height:4px;margin:0 6px 3px 0;background:{row.color}">'
            f"</span><b>{name}</b> &nbsp; {best}</span>")


def readout_html(rows: list[ReadoutRow]) -> str:
    """A table of the latest and best value of each metric (names escaped); with several runs, of each
    (run, metric), with a run column."""
    if not rows:
        return (f'<div class="lossviz-empty" style="color:{TEXT_COLORS["muted"]}">'
                "No values logged yet: call plot.log(loss=...)</div>")
    several = len({r.run for r in rows}) > 1
    head = (
        f"<tr><th></th>{'<th>run</th>' if several else ''}<th>metric</th><th>step</th><th>latest</th><th>best</th>"
        "<th>at step</th><th>points</th><th>non-finite</th></tr>"
    )
    body = []
    for r in rows:
        name = html.escape(r.name, quote=True)
        run = html.escape(r.run, quote=True)
        arrow = "&#9650;" if r.higher_is_better else "&#9660;"  # which way is better
        bad = f' style="color:{TEXT_COLORS["error"]};font-weight:bold"' if r.nonfinite else ""
        body.append(
            f'<tr data-run="{run}" data-metric="{name}" data-step="{step_attr(r.step)}" data-count="{r.count}" '
            f'data-nonfinite="{r.nonfinite}">'
            f'<td><span style="display:inline-block;width:12px;height:3px;background:{r.color}"></span></td>'
            f"{f'<td>{run}</td>' if several else ''}<td>{name}</td>"
            f"<td>{format_number(r.step)}{_rewound(r.note)}</td><td>{format_number(r.latest)}</td>"
            f'<td title="best ({"max" if r.higher_is_better else "min"})">{format_number(r.best)} {arrow}</td>'
            f"<td>{'' if math.isnan(r.best_step) else format_number(r.best_step)}</td>"
            f"<td>{r.count:,}</td><td{bad}>{r.nonfinite:,}</td></tr>"
        )
    return (
        '<table style="border-collapse:collapse;font-size:12px;font-variant-numeric:tabular-nums" '
        'cellpadding="3">' + head + "".join(body) + "</table>"
    )


def _rewound(note: str) -> str:
    """A mark after the step of a series that was resumed (a step rewind), the note as its tooltip."""
    if not note:
        return ""
    return f' <span title="{html.escape(note, quote=True)}" style="color:{TEXT_COLORS["rewind"]}">&#8634;</span>'
