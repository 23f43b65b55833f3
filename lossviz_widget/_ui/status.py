"""The status line under the plot: progress, non-finite values and what is wrong right now.

Errors on the plotting side (a frame that failed, a follower that cannot read its file) show
here while they are current and leave once things work again; the training loop never sees them.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from .._core.formatting import TEXT_COLORS, format_number
from .._core.frame import ReadoutRow

__all__ = ["status_html"]


def status_html(rows: Sequence[ReadoutRow], errors: Sequence[str], notes: Sequence[str] = (),
                rewinds: Sequence[str] = ()) -> str:
    """Last step, series and point counts, non-finite count, ``rewinds`` (the last step rewinds),
    ``errors`` and ``notes`` (what sources say: a tracking server's run was deleted), all escaped."""
    points = sum(r.count for r in rows)
    nonfinite = sum(r.nonfinite for r in rows)
    last = max((r.step for r in rows), default=None)
    parts = [] if last is None else [f"step {format_number(last)}"]
    runs = len({r.run for r in rows})
    what = f"{runs} runs, {len(rows)} series" if runs > 1 else f"{len(rows)} metrics"
    parts.append(f"{what}, {points:,} points")
    if nonfinite:
        parts.append(f'<span style="color:{TEXT_COLORS["error"]}">&#9660; {nonfinite:,} non-finite (NaN/Inf) '
                     "values</span>")
    parts += [f'<span style="color:{TEXT_COLORS["rewind"]}">&#8634; {html.escape(n)}</span>' for n in rewinds]
    parts += [f'<span style="color:{TEXT_COLORS["error"]}">{html.escape(e)}</span>' for e in errors]
    parts += [html.escape(note) for note in notes]
    return f'<span style="font-size:11px;color:{TEXT_COLORS["muted"]}">' + " &middot; ".join(parts) + "</span>"
