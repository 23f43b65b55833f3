"""The incremental-reading core shared by every log format: one :class:`Tail` per file.

A tail remembers where it stopped and, at each :meth:`Tail.poll`, reads only what was
appended since. It stats the file first, so an unchanged file costs one ``stat``. A
file that was rewritten or replaced since the last poll (it shrank, its inode
changed, or its first bytes differ: a writer that started over, ``rsync``, Lightning
rewriting ``metrics.csv`` with a wider header) is read again from the start. Per run and
metric, its points are compared with those delivered before, by content: the ones it still
holds (a copy, a rewrite with a wider header) are not delivered again, so each point is
delivered once; from the first point that differs (``CSVLogger(append=False)`` started a new
run in the same file) everything is delivered, and the plot sees the steps go back: a step
rewind, handled by its ``on_rewind``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from .._core.columns import Column, SeriesColumns

__all__ = ["Batch", "Points", "Tail", "forward_mask"]

HEAD_BYTES = 4096  # how much of a file's start is compared to notice a rewrite


@dataclass(frozen=True)
class Batch:
    """New points of one metric of one run, in file order.

    ``wall_times`` is ``None`` for formats that do not record them (the CSV loggers).
    """

    run: str
    metric: str
    steps: np.ndarray
    values: np.ndarray
    wall_times: np.ndarray | None

    def __len__(self) -> int:
        return len(self.steps)


def forward_mask(steps: np.ndarray, last_step: float) -> np.ndarray:
    """Which of ``steps`` can be appended to a line whose last step is ``last_step``: those not
    below any step before them (a line only grows to the right). Used by the tracking-server
    readers, whose servers accept steps in any order."""
    before = np.maximum.accumulate(np.concatenate(([last_step], steps)))[:-1]
    return steps >= before


class Points:
    """Points collected during one read, grouped by (run, metric) in first-seen order.

    ``run`` is ``""`` for the file's own run; a log holding several runs (our own
    ``log_file``) names the others. Points come one at a time (:meth:`add`, text formats) or as
    arrays (:meth:`add_arrays`, the bulk readers); arrays are kept as they are, not copied into
    lists.
    """

    def __init__(self, with_wall_times: bool) -> None:
        self._cols: dict[tuple[str, str], SeriesColumns] = {}
        self._walls = with_wall_times

    def _series(self, run: str, metric: str) -> SeriesColumns:
        cols = self._cols.get((run, metric))
        if cols is None:
            cols = self._cols[run, metric] = SeriesColumns()
        return cols

    def add(self, metric: str, step: float, value: float, wall_time: float = float("nan"), run: str = "") -> None:
        self._series(run, metric).add_point(step, value, wall_time)

    def add_arrays(self, metric: str, steps: Column, values: Column, wall_times: Column, run: str = "") -> None:
        """:meth:`add` for many points of one series, in order."""
        self._series(run, metric).add(steps, values, wall_times)

    def items(self) -> Iterator[tuple[tuple[str, str], np.ndarray, np.ndarray, np.ndarray | None]]:
        """``((run, metric), steps, values, wall_times or None)`` per series."""
        for key, cols in self._cols.items():
            s, v, w = cols.columns()
            yield key, s, v, (w if self._walls else None)


class Tail:
    """One log file, read incrementally. Subclasses implement :meth:`_read` and :meth:`_restart`.

    A file that does not exist (yet, or for a moment while it is being replaced) yields
    nothing; polling it again later picks it up.
    """

    format: ClassVar[str] = ""

    def __init__(self, path: str | os.PathLike[str], run: str) -> None:
        self.path = Path(path)
        self.run = run
        self.skipped = 0  # cells/lines/records passed over because they hold no number
        self._key: tuple[int, int, int, int] | None = None  # (dev, inode, size, mtime) at the last read
        self._head = b""
        self._seen: dict[tuple[str, str], int] = {}  # points per series read from the file's current version
        self._sent: dict[tuple[str, str], list[tuple[np.ndarray, np.ndarray]]] = {}  # delivered (steps, values)

    def poll(self) -> list[Batch]:
        """The points appended since the last poll (nothing while the file is missing)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return []
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        if key == self._key:
            return []
        old, self._key = self._key, key
        head = self._read_head()
        n = min(len(head), len(self._head))
        if old is not None and (old[:2] != key[:2] or key[2] < old[2] or head[:n] != self._head[:n]):
            self._seen = {}
            self._restart()
        self._head = head
        return self._deliver(self._read())

    def _read_head(self) -> bytes:
        try:
            with open(self.path, "rb") as f:
                return f.read(HEAD_BYTES)
        except FileNotFoundError:
            return b""

    def _deliver(self, points: Points) -> list[Batch]:
        """Batches of the points not delivered before (see the module docstring)."""
        out = []
        for key, steps, values, walls in points.items():
            start = self._seen.get(key, 0)
            self._seen[key] = start + len(steps)
            sent = self._sent.setdefault(key, [])
            delivered = sum(len(s) for s, _ in sent)
            drop = max(0, delivered - start)
            if drop:  # a rewritten file: is its start what was delivered? (by content, not by count)
                if len(sent) > 1:
                    sent[:] = [(np.concatenate([s for s, _ in sent]), np.concatenate([v for _, v in sent]))]
                old_steps, old_values = sent[0] if sent else (steps[:0], values[:0])
                k = min(drop, len(steps))
                if not (np.array_equal(steps[:k], old_steps[start:start + k])
                        and np.array_equal(values[:k], old_values[start:start + k], equal_nan=True)):
                    sent[:] = [(old_steps[:start], old_values[:start])]  # new content from here: all of it is new
                    drop = 0
            if drop >= len(steps):
                continue
            sent.append((steps[drop:], values[drop:]))
            run = f"{self.run}/{key[0]}" if key[0] else self.run
            out.append(Batch(run, key[1], steps[drop:], values[drop:], None if walls is None else walls[drop:]))
        return out

    def _read(self) -> Points:
        """Parse what was appended since the last read; an incomplete last record waits."""
        raise NotImplementedError

    def _restart(self) -> None:
        """Forget the read position: the file is read again from its start."""
        raise NotImplementedError


class LineTail(Tail):
    """A text log of one record per line; only complete lines are parsed."""

    has_wall_times: ClassVar[bool] = False

    def __init__(self, path: str | os.PathLike[str], run: str) -> None:
        super().__init__(path, run)
        self._offset = 0

    def _restart(self) -> None:
        self._offset = 0

    def _read(self) -> Points:
        points = Points(with_wall_times=self.has_wall_times)
        for line in self._new_lines().decode("utf-8", errors="replace").splitlines():
            if line.strip():
                self._parse_line(line, points)
        return points

    def _new_lines(self) -> bytes:
        """The complete lines appended since the last read (a last line without its newline is
        still being written: it waits)."""
        try:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:
            return b""
        end = data.rfind(b"\n") + 1
        self._offset += end
        return data[:end]

    def _parse_line(self, line: str, points: Points) -> None:
        raise NotImplementedError
