"""The domain types every layer shares: a metric's full-resolution history, runs of them, data files' content.

No widgets, no I/O: what a :class:`~lossviz_widget.Recorder` holds, what a frame is built from,
what data files read and write.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # typing_extensions ships with mypy; at run time annotations are strings
    from typing_extensions import TypeIs

__all__ = ["DEFAULT_RUN", "MetricHistory", "RunData", "RunsData", "as_runs"]

#: The run that ``log()`` without ``run=`` records into.
DEFAULT_RUN = "default"


@dataclass(frozen=True)
class MetricHistory:
    """Full-resolution data of one metric, as read-only NumPy arrays of equal length.

    ``len(history)`` is the number of points.
    """

    steps: np.ndarray
    values: np.ndarray
    wall_time: np.ndarray

    def __len__(self) -> int:
        return len(self.steps)


RunsData = dict[str, dict[str, MetricHistory]]  # run -> metric -> history, in order


@dataclass
class RunData:
    """What a data file holds: each run's metrics at full resolution, plus title and view settings."""

    runs: RunsData
    title: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    skipped_lines: int = 0  # JSON-lines only: incomplete or corrupt lines passed over


def as_runs(data: Mapping[str, Mapping[str, MetricHistory]] | Mapping[str, MetricHistory]) -> RunsData:
    """``run -> metric -> history``; a bare ``metric -> history`` mapping (one run's) is the default run."""
    if _one_run(data):
        return {DEFAULT_RUN: dict(data)}
    return {run: dict(metrics) for run, metrics in data.items()}


def _one_run(data: Mapping[str, Mapping[str, MetricHistory]] | Mapping[str, MetricHistory],
             ) -> TypeIs[Mapping[str, MetricHistory]]:
    """Whether ``data`` is one run's ``metric -> history`` (its values are histories; empty: no run)."""
    return isinstance(next(iter(data.values()), None), MetricHistory)
