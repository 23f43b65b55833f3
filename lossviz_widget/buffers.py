"""Growable per-metric NumPy buffers: the full-resolution record of a run.

Each metric keeps three float64 columns (step, value, wall time): 24 bytes per
point. Appends are O(1) amortized (capacity doubles); reads return read-only
views of the filled prefix, so handing out history never copies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ._values import DeferredValue, resolve_deferred

__all__ = ["MetricBuffer", "MetricHistory"]

_INITIAL_CAPACITY = 256


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


def _readonly(a: np.ndarray) -> np.ndarray:
    view = a.view()
    view.flags.writeable = False
    return view


class MetricBuffer:
    """Append-only columns for one metric. Not locked: the owning store serialises access."""

    __slots__ = ("_steps", "_values", "_wall", "n", "last_step", "_pending")

    def __init__(self) -> None:
        self._steps = np.empty(_INITIAL_CAPACITY)
        self._values = np.empty(_INITIAL_CAPACITY)
        self._wall = np.empty(_INITIAL_CAPACITY)
        self.n = 0
        self.last_step = -np.inf
        # (index, tensor) of device tensors whose value is fetched at frame time.
        self._pending: list[tuple[int, Any]] = []

    def append(self, step: float, value: float | DeferredValue, wall: float) -> None:
        n = self.n
        if n == len(self._steps):
            self._grow()
        self._steps[n] = step
        self._wall[n] = wall
        if type(value) is DeferredValue:
            self._values[n] = np.nan
            self._pending.append((n, value.tensor))
        else:
            self._values[n] = value
        self.n = n + 1
        self.last_step = step

    def extend(self, history: MetricHistory) -> None:
        """Bulk-append already validated points (loading a file)."""
        self.extend_columns(history.steps, history.values, history.wall_time)

    def extend_columns(self, steps: np.ndarray, values: np.ndarray, wall: np.ndarray) -> None:
        """Bulk-append already validated float64 columns of equal length (possibly strided views).

        This is how the store moves the points staged between frames into the columns:
        one copy per column, whatever the number of points.
        """
        n, k = self.n, len(steps)
        if not k:
            return
        if n + k > len(self._steps):
            self._grow(n + k)
        self._steps[n : n + k] = steps
        self._values[n : n + k] = values
        self._wall[n : n + k] = wall
        self.n = n + k
        self.last_step = float(steps[-1])

    def _grow(self, needed: int = 0) -> None:
        cap = max(2 * len(self._steps), needed)
        for attr in ("_steps", "_values", "_wall"):
            old = getattr(self, attr)
            new = np.empty(cap)
            new[: self.n] = old[: self.n]
            setattr(self, attr, new)

    def resolve(self) -> None:
        """Copy pending device values to the host (one batched transfer)."""
        if self._pending:
            idx = np.fromiter((i for i, _ in self._pending), dtype=np.intp, count=len(self._pending))
            self._values[idx] = resolve_deferred([t for _, t in self._pending])
            self._pending.clear()

    def snapshot(self) -> MetricHistory:
        """Resolve pending values and return read-only views of everything logged so far."""
        self.resolve()
        n = self.n
        return MetricHistory(
            _readonly(self._steps[:n]), _readonly(self._values[:n]), _readonly(self._wall[:n])
        )

    @property
    def nbytes(self) -> int:
        return self._steps.nbytes + self._values.nbytes + self._wall.nbytes
