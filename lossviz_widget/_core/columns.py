"""One series' (steps, values, wall times) gathered while a file is read, in file order.

Readers get points one at a time (a text line) or many at once (a chunk line of a ``log_file``,
a bulk-decoded run of TensorBoard records). :class:`SeriesColumns` keeps arrays as they come and
single points in lists, and joins them once when the columns are asked for, so neither kind is
converted to the other point by point.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["Column", "SeriesColumns"]

Column = Sequence[float] | np.ndarray
Columns = tuple[np.ndarray, np.ndarray, np.ndarray]

_NONE = np.empty(0)


class SeriesColumns:
    """Chunks of arrays (single points gathered in lists between them), cut back by :meth:`purge`."""

    __slots__ = ("chunks", "points")

    def __init__(self) -> None:
        self.chunks: list[Columns] = []
        self.points: tuple[list[float], list[float], list[float]] = ([], [], [])

    def add_point(self, step: float, value: float, wall_time: float) -> None:
        self.points[0].append(step)
        self.points[1].append(value)
        self.points[2].append(wall_time)

    def add(self, steps: Column, values: Column, wall_times: Column) -> None:
        """Many points: a list's are gathered with the single points, an array is kept as it is."""
        if isinstance(steps, list):
            self.points[0].extend(steps)
            self.points[1].extend(values)
            self.points[2].extend(wall_times)
            return
        self._end_points()
        self.chunks.append((np.asarray(steps, dtype=np.float64), np.asarray(values, dtype=np.float64),
                            np.asarray(wall_times, dtype=np.float64)))

    def _end_points(self) -> None:
        if self.points[0]:
            s, v, t = (np.array(c, dtype=np.float64) for c in self.points)
            self.chunks.append((s, v, t))
            self.points = ([], [], [])

    def columns(self) -> Columns:
        """The steps, values and wall times so far, each one float64 array."""
        self._end_points()
        if not self.chunks:
            return _NONE, _NONE, _NONE
        if len(self.chunks) > 1:
            self.chunks = [(np.concatenate([c[0] for c in self.chunks]), np.concatenate([c[1] for c in self.chunks]),
                            np.concatenate([c[2] for c in self.chunks]))]
        return self.chunks[0]

    def purge(self, step: float) -> None:
        """Drop the points at or after ``step`` (a step rewind recorded in a log)."""
        s, v, t = self.columns()
        keep = int(np.searchsorted(s, step, side="left"))
        self.chunks = [(s[:keep], v[:keep], t[:keep])]
