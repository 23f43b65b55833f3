"""What a detector reports (:class:`Finding`), episode bookkeeping, and which metrics are which.

A finding is reported once per *episode*: the condition must first hold, and a new
finding of the same kind on the same series needs the episode to end first, which
takes a clearly stricter "all clear" condition (hysteresis), so a curve hovering at a
threshold does not flap. A finding about a *state* of the curve (not learning, converged,
noisy, a learning rate that looks too low or too high, diverging) is closed when its episode
ends: :attr:`Finding.ended` says at which step and :attr:`Finding.ended_because` why, so a
claim that later data contradicts is no longer shown as current (an *event*, a spike or a
NaN, stays as it was).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from .._core.formatting import format_number
from .._core.grouping import family_of, higher_is_better

__all__ = [
    "ENDED_COLOR",
    "SEVERITIES",
    "SEVERITY_COLORS",
    "Closing",
    "Ended",
    "Finding",
    "episodes",
    "fmt",
    "held",
    "is_loss_like",
    "is_validation",
    "pct",
    "row_medians",
    "row_stats",
]

SEVERITIES = ("info", "warning", "error")
SEVERITY_COLORS = {"error": "#d62728", "warning": "#ff7f0e", "info": "#1f77b4"}
ENDED_COLOR = "#9e9e9e"  # a finding's marker once its condition ended: grey, readable on light and dark
_TOKENS = re.compile(r"[/_\-.:\s]+")
_VALIDATION = frozenset({"val", "valid", "validation", "eval", "evaluation", "test", "dev", "holdout"})
_LOSS_TOKENS = frozenset(
    {"loss", "nll", "mse", "mae", "rmse", "ce", "xent", "crossentropy", "bce", "perplexity", "ppl", "error",
     "logloss", "mlogloss"}  # XGBoost's and LightGBM's names (integrations log them as is)
)


@dataclass(frozen=True)
class Finding:
    """One thing worth telling the user about a curve.

    ``code`` is stable (``"overfitting"``, ``"divergence"``...), ``message`` says what was seen
    and ``suggestion`` what to do; ``evidence`` holds the numbers behind it. ``step`` is where it
    was detected (the marker's place on the curve). ``run`` names the run it is about; it is
    None only while the plot's data is all in the default run (``log()`` without ``run=``).
    ``ended`` is the step where the condition stopped holding (None while it still holds, and
    for events), ``ended_because`` says what the curve did then ("it started learning").
    """

    code: str
    severity: str
    metric: str
    step: float
    message: str
    suggestion: str
    evidence: Mapping[str, float | str] = field(default_factory=dict)
    run: str | None = None
    ended: float | None = None
    ended_because: str = ""

    @property
    def color(self) -> str:
        """Its marker's colour on the curve: by severity while it holds, grey once it ended."""
        return SEVERITY_COLORS[self.severity] if self.ended is None else ENDED_COLOR

    @property
    def active(self) -> bool:
        """Whether the condition still holds (an event finding is always active)."""
        return self.ended is None

    @property
    def text(self) -> str:
        if self.ended is None:
            return f"{self.message} {self.suggestion}"
        return f"{self.message} Until step {fmt(self.ended)}: {self.ended_because}."


Ended = tuple[str, float, str]  # a closed episode: (code, step where it ended, why)


class Closing:
    """Base of a detector whose findings describe a state of the curve that can end: it lists
    the episodes it closes in :attr:`ended`, and the engine marks their findings
    (:attr:`Finding.ended`) after each read."""

    def __init__(self) -> None:
        self.ended: list[Ended] = []  # episodes closed since the last take_ended()

    def take_ended(self) -> list[Ended]:
        """The episodes closed since the last call, oldest first."""
        out, self.ended = self.ended, []
        return out


def _tokens(name: str) -> list[str]:
    return [t for t in _TOKENS.split(name.lower()) if t]


def is_validation(name: str) -> bool:
    """Evaluated on held-out data (``val_loss``, ``loss/valid``, ``eval/loss``...)."""
    return any(t in _VALIDATION for t in _tokens(name))


def is_loss_like(name: str) -> bool:
    """A quantity that is lower-is-better and normally >= 0 (``loss``, ``mse``, ``val/nll``...)."""
    return not higher_is_better(name) and any(t in _LOSS_TOKENS for t in _tokens(family_of(name)))


def fmt(v: float) -> str:
    return format_number(float(v))


def pct(v: float) -> str:
    return f"{v:.0%}" if abs(v) >= 0.095 else f"{v:.1%}"


@dataclass
class Reopening:
    """A gate on episodes that may open again only after a new best: where the non-increasing
    running best ``best`` is below ``below``; each opening sets ``below = best * (1 - margin)``
    there (so an episode reported at a best of 0.5 opens again only under 0.5 * (1 - margin))."""

    best: np.ndarray
    below: float
    margin: float


def episodes(trigger: np.ndarray, clear: np.ndarray, active: bool,
             reopening: Reopening | None = None) -> tuple[list[int], list[int], bool]:
    """Indices where episodes start and where they end, walking ``trigger``/``clear`` flags with
    hysteresis, and whether one is still active after the last value.

    An inactive episode starts at the first ``trigger`` (with ``reopening``: only where its gate
    allows, which it then moves); an active one ends at the first ``clear`` after it, and that
    value cannot start a new one. Costs O(len) NumPy work plus O(log len) per transition.
    """
    starts: list[int] = []
    ends: list[int] = []
    triggers, clears = np.flatnonzero(trigger), np.flatnonzero(clear)
    i = 0
    while True:
        if not active and reopening is not None:  # first index with best < below (best never rises)
            i = max(i, int(np.searchsorted(-reopening.best, -reopening.below, side="right")))
        pool = clears if active else triggers
        k = int(np.searchsorted(pool, i))
        if k == len(pool):
            return starts, ends, active
        j = int(pool[k])
        if active:
            ends.append(j)
        else:
            starts.append(j)
            if reopening is not None:
                reopening.below = float(reopening.best[j]) * (1.0 - reopening.margin)
        active = not active
        i = j + 1


def held(cond: np.ndarray, carry: int, length: int) -> tuple[np.ndarray, int]:
    """Per value: whether ``cond`` has held for at least ``length`` values in a row ending there
    (``carry`` of them just before the first), and the run length after the last value.

    Boolean windows that double in width: O(n log length) on bytes, no index arrays."""
    n = len(cond)
    if n == 0:
        return cond.astype(bool), carry
    c = min(carry, length - 1)
    out = np.concatenate((np.zeros(length - 1 - c, bool), np.ones(c, bool), cond))  # windows of 1
    width = 1
    while width < length:  # out[k]: ext[k : k + width] all true
        grow = min(width, length - width)
        out = out[grow:] & out[:-grow]
        width += grow
    back = int(np.argmin(cond[::-1]))  # values since the last False
    return out, (carry + n if cond[n - 1 - back] else back)


def row_stats(grid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per row of ``grid``, over its finite values: ``(count, median, max, sorted rows)``;
    NaN where a row has no finite value. One sort per row (non-finite values sort last).

    A grid of finite values only (the usual case: the live diagnostics' rolling medians) takes
    columns of the sorted rows for the median and the maximum: the per-row counts and the fancy
    indexing cost twice the sort itself on many short rows."""
    finite = np.isfinite(grid)
    if finite.all():
        rows = np.sort(grid, axis=1)
        width = rows.shape[1]
        med = rows[:, (width - 1) // 2] / 2 + rows[:, width // 2] / 2
        return np.full(len(rows), width), med, rows[:, -1].copy(), rows
    with np.errstate(invalid="ignore"):
        rows = np.sort(np.where(finite, grid, np.nan), axis=1)
    count = np.isfinite(rows).sum(axis=1)
    r = np.arange(len(rows))
    lo, hi = np.maximum((count - 1) // 2, 0), np.maximum(count // 2, 0)
    with np.errstate(invalid="ignore", over="ignore"):
        med = np.where(count > 0, rows[r, lo] / 2 + rows[r, hi] / 2, np.nan)
        top = np.where(count > 0, rows[r, np.maximum(count - 1, 0)], np.nan)
    return count, med, top, rows


def row_medians(grid: np.ndarray) -> np.ndarray:
    """Per row, the median of its finite values (NaN if none): :func:`row_stats`'s; NumPy's
    ``nanmedian`` is ~50x slower on many short rows."""
    return row_stats(grid)[1]
