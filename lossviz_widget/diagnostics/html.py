"""The findings list as HTML (the widget's findings area and the report), everything escaped."""

from __future__ import annotations

import html
from collections.abc import Sequence

from .._core.formatting import step_attr
from .findings import SEVERITY_COLORS, Finding

__all__ = ["findings_html"]


def findings_html(findings: Sequence[Finding], limit: int | None = None) -> str:
    """One line per finding: severity mark, message, suggested action. Empty string for none.

    With ``limit``, only the latest ``limit`` findings (by step) and a line saying how many
    earlier ones :meth:`LossPlot.diagnose` has: the widget's area stays short and its HTML
    bounded however long the run."""
    if not findings:
        return ""
    items = []
    shown = list(findings)
    if limit is not None and len(shown) > limit:
        shown = sorted(shown, key=lambda f: f.step)[-limit:]
        items.append(f'<li class="lossviz-findings-more" style="list-style:none;color:#777">'
                     f"{len(findings) - limit} earlier findings: plot.diagnose() lists all</li>")
    for f in shown:
        step = step_attr(f.step) if f.step == f.step else "nan"
        run = f' data-run="{_escape(f.run)}"' if f.run is not None else ""
        items.append(
            f'<li class="lossviz-finding" data-code="{_escape(f.code)}" data-severity="{_escape(f.severity)}" '
            f'data-metric="{_escape(f.metric)}" data-step="{_escape(step)}"{run}>'
            f'<b style="color:{SEVERITY_COLORS.get(f.severity, "#555")}">{_escape(f.severity)}</b> '
            f"{'' if f.run is None else f'[{_escape(f.run)}] '}{_escape(f.message)} "
            f"<i>{_escape(f.suggestion)}</i></li>"
        )
    return ('<ul class="lossviz-findings" style="margin:4px 0;padding-left:18px;font-size:12px">'
            + "".join(items) + "</ul>")


def _escape(value: object) -> str:
    """``value`` as text, safe in HTML content and in quoted attribute values."""
    return html.escape(str(value), quote=True)
