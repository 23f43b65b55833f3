"""Step rewinds: a metric logged at a step below its last one (a run resumed from a checkpoint,
a re-run training cell, a second ``fit()``).

What happens is the plot's ``on_rewind`` setting:

* ``"purge"`` (default, TensorBoard's "purge orphaned data"): the metric's points at or after
  the new step are dropped and the new point is kept, so the curve shows the resumed attempt;
  the frame marks the step and notes how many points were replaced.
* ``"new_run"``: the run is continued as a new run ``"<run> (resumed k)"`` (every later call
  for that run goes there), so both attempts stay on the plot, comparable.
* ``"raise"``: ``ValueError``, nothing from the call is logged (the behaviour before rewinds
  were handled).

A rewind is recorded as a :class:`Rewind` in the run's store, in order, under the store's lock,
and read with a consistent snapshot: every consumer with per-series state (the frame builder's
caches, the diagnostics, the ``log_file`` writer) replays the rewinds of each frame with a
:class:`RewindCursor` before it reads that frame's points.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .formatting import format_number

__all__ = ["ON_REWIND", "Rewind", "RewindCursor", "check_on_rewind"]

#: What a step rewind does (see the module docstring); the first is the default.
ON_REWIND = ("purge", "new_run", "raise")


def check_on_rewind(value: Any) -> str:
    """``value`` if it is one of :data:`ON_REWIND`, else ``ValueError`` listing them."""
    if not isinstance(value, str) or value not in ON_REWIND:
        raise ValueError(f"on_rewind must be one of {', '.join(map(repr, ON_REWIND))}, got {value!r}")
    return value


@dataclass(frozen=True)
class Rewind:
    """One rewind: ``metric`` of ``run`` was logged at ``step``, below its last step.

    With ``on_rewind="purge"``, ``replaced`` points (those at or after ``step``) were dropped and
    ``kept`` points remain before the new one. With ``"new_run"``, ``new_run`` names the run the
    logging went on in (``metric`` is the metric that rewound, nothing was dropped).
    """

    run: str
    metric: str
    step: float
    replaced: int = 0
    kept: int = 0
    new_run: str = ""

    def describe(self) -> str:
        """The note a frame shows: ``loss: resumed at step 50, 50 points replaced``."""
        at = f"resumed at step {format_number(self.step)}"
        if self.new_run:
            return f"{self.run}: {at} as run {self.new_run!r}"
        points = "1 point" if self.replaced == 1 else f"{self.replaced:,} points"
        return f"{self.metric}: {at}, {points} replaced"


class RewindCursor:
    """Which of each run's rewinds a consumer has replayed already."""

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}

    def take(self, rewinds: Mapping[str, Sequence[Rewind]]) -> list[Rewind]:
        """The rewinds not seen yet (each run's in order); they count as seen from now on."""
        new: list[Rewind] = []
        for run, events in rewinds.items():
            seen = self._seen.get(run, 0)
            if len(events) > seen:
                new += events[seen:]
                self._seen[run] = len(events)
        return new
