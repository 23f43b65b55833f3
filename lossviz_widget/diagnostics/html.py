"""The findings list as HTML (the widget's findings area and the report), everything escaped.

One row per (run, code, series): the latest finding's message and what to do, with how many
episodes there were and the latest step when more than one. A row whose latest finding has
ended (the curve later contradicted it: :attr:`Finding.ended`) is muted, says until which step
and why instead of what to do, and is listed after every current one. Rows are ordered by
that, then by severity, then by their first step, so a row keeps its place while its count
grows. At most
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
    muted = TEXT_COLORS["muted"]
    more = (f' <span class="lossviz-finding-count" style="color:{muted}">({len(group)} times, latest at step '
            f"{_e(fmt(f.step))})</span>" if len(group) > 1 else "")
    head = f'data-code="{_e(f.code)}" data-severity="{_e(f.severity)}" data-metric="{_e(f.metric)}" ' \
           f'data-step="{_e(step)}" data-count="{len(group)}"{run}'
    who = "" if f.run is None else f"[{_e(f.run)}] "
    if f.ended is not None:
        return (f'<li class="lossviz-finding lossviz-finding-ended" {head} data-ended="{_e(step_attr(f.ended))}" '
                f'style="color:{muted}"><b>ended {_e(f.severity)}</b> {who}{_e(f.message)} '
                f"<i>Until step {_e(fmt(f.ended))}: {_e(f.ended_because)}.</i>{more}</li>")
    return (f'<li class="lossviz-finding" {head}><b style="color:{TEXT_COLORS.get(f.severity, muted)}">'
            f"{_e(f.severity)}</b> {who}{_e(f.message)} <i>{_e(f.suggestion)}</i>{more}</li>")


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
    # current rows first, errors first among them, then in order
    rows = sorted(groups.values(), key=lambda g: (g[-1].ended is not None, -_worst(g), g[0].step))
    hidden = 0
    if limit is not None and len(rows) > limit:
        hidden = len(rows) - limit
        rows = rows[:limit]
    items = [_row(g) for g in rows[:SHOWN]]
    if len(rows) > SHOWN:
        rest = rows[SHOWN:]
        current = [g for g in rest if g[-1].ended is None]
        counts = {s: sum(1 for g in current if _worst(g) == SEVERITIES.index(s)) for s in reversed(SEVERITIES)}
        counts["ended"] = len(rest) - len(current)
        what = ", ".join(f"{n} {s}{'s' if n > 1 and s not in ('info', 'ended') else ''}"
                         for s, n in counts.items() if n)
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
