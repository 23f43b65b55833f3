"""The findings list as HTML (the widget's findings area and the report), everything escaped.

One row per (run, code, series): the latest finding's message and what to do, with how many
episodes there were and the latest step when more than one. Rows are ordered by severity,
then by their first step, so a row keeps its place while its count grows. At most
``SHOWN`` (3) rows are open; the others fold into a ``<details>`` summary line with their
count (no JavaScript needed), and the list has a capped height with its own scroll bar, so
it never pushes the plots out of view however many findings a run has.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from .._core.formatting import TEXT_COLORS, step_attr
from .findings import SEVERITIES, Finding, fmt

__all__ = ["SHOWN", "findings_html"]

SHOWN = 3  # rows listed open; more fold into a summary line


def _e(s: object) -> str:
    return html.escape(str(s), quote=True)


def _row(group: list[Finding]) -> str:
    """One (run, code, series) row: the latest finding, with the count of episodes."""
    f = group[-1]
    step = step_attr(f.step) if f.step == f.step else "nan"
    run = f' data-run="{_e(f.run)}"' if f.run is not None else ""
    more = (f' <span class="lossviz-finding-count" style="color:{TEXT_COLORS["muted"]}">'
            f"({len(group)} times, latest at step "
            f"{_e(fmt(f.step))})</span>" if len(group) > 1 else "")
    return (
        f'<li class="lossviz-finding" data-code="{_e(f.code)}" data-severity="{_e(f.severity)}" '
        f'data-metric="{_e(f.metric)}" data-step="{_e(step)}" data-count="{len(group)}"{run}>'
        f'<b style="color:{TEXT_COLORS.get(f.severity, TEXT_COLORS["muted"])}">{_e(f.severity)}</b> '
        f"{'' if f.run is None else f'[{_e(f.run)}] '}{_e(f.message)} <i>{_e(f.suggestion)}</i>{more}</li>"
    )


def findings_html(findings: Sequence[Finding], limit: int | None = None) -> str:
    """The findings grouped into rows (see the module docstring). Empty string for none.

    With ``limit``, at most ``limit`` rows (the most severe, then the most recent) and a line
    saying how many more :meth:`LossPlot.diagnose` has: the HTML stays bounded however many
    series and codes a plot has."""
    if not findings:
        return ""
    groups: dict[tuple[str | None, str, str], list[Finding]] = {}
    for f in sorted(findings, key=lambda f: f.step):
        groups.setdefault((f.run, f.code, f.metric), []).append(f)
    rows = sorted(groups.values(), key=lambda g: (-_worst(g), g[0].step))  # errors first, then in order
    hidden = 0
    if limit is not None and len(rows) > limit:
        hidden = len(rows) - limit
        rows = rows[:limit]
    items = [_row(g) for g in rows[:SHOWN]]
    if len(rows) > SHOWN:
        rest = rows[SHOWN:]
        counts = {s: sum(1 for g in rest if _worst(g) == SEVERITIES.index(s)) for s in reversed(SEVERITIES)}
        what = ", ".join(f"{n} {s}{'s' if n > 1 and s != 'info' else ''}" for s, n in counts.items() if n)
        items.append(f'<li class="lossviz-findings-more" style="list-style:none"><details><summary>'
                     f"{len(rest)} more ({_e(what)})</summary>"
                     f'<ul style="padding-left:18px;margin:2px 0">{"".join(_row(g) for g in rest)}</ul></details></li>')
    if hidden:
        items.append(f'<li class="lossviz-findings-hidden" style="list-style:none;color:{TEXT_COLORS["muted"]}">'
                     f"{hidden} more kinds of findings: plot.diagnose() lists all</li>")
    return ('<ul class="lossviz-findings" style="margin:4px 0;padding-left:18px;font-size:12px;line-height:1.4;'
            'max-height:11em;overflow-y:auto">' + "".join(items) + "</ul>")


def _worst(group: list[Finding]) -> int:
    """The most severe of a row's findings, as an index into ``SEVERITIES``."""
    return max(SEVERITIES.index(f.severity) if f.severity in SEVERITIES else 0 for f in group)
