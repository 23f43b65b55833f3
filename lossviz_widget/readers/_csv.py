"""Metrics CSV files (one row per logging event, one column per metric), read incrementally.

Shared by the Keras and Lightning readers, which differ only in the x column and in
which columns are bookkeeping rather than metrics. An empty cell (Lightning's sparse
rows) or ``NA`` (Keras, a metric missing that epoch) means "no value here": nothing is
recorded for it. ``nan``/``inf`` are values and are kept.
"""

from __future__ import annotations

import csv
import os
from typing import ClassVar

from ._tail import LineTail, Points

__all__ = ["CsvTail", "csv_columns"]

_ABSENT = ("", "NA")


def csv_columns(header_line: str) -> list[str]:
    """Column names of a header line (comma separated, or ``;``/tab when it has no comma)."""
    return next(csv.reader([header_line], delimiter=_delimiter(header_line)))


def _delimiter(header_line: str) -> str:
    if "," in header_line:
        return ","
    return next((c for c in ("\t", ";") if c in header_line), ",")


def _number(cell: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        return None


class CsvTail(LineTail):
    """A metrics CSV; subclasses name the x column and the columns that are not metrics."""

    x_column: ClassVar[str] = ""
    ignored: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, path: str | os.PathLike[str], run: str) -> None:
        super().__init__(path, run)
        self._columns: list[str] | None = None
        self._delim = ","

    def _restart(self) -> None:
        super()._restart()
        self._columns = None

    def _parse_line(self, line: str, points: Points) -> None:
        if self._columns is None:
            self._delim = _delimiter(line)
            self._columns = next(csv.reader([line], delimiter=self._delim))
            if self.x_column not in self._columns:
                raise ValueError(f"{str(self.path)!r}: a {self.format} file needs a {self.x_column!r} column, "
                                 f"got columns {self._columns}")
            self._x = self._columns.index(self.x_column)
            return
        row = next(csv.reader([line], delimiter=self._delim))
        step = _number(row[self._x]) if len(row) == len(self._columns) else None
        if step is None:
            self.skipped += 1
            return
        for i, (name, cell) in enumerate(zip(self._columns, row)):
            if i == self._x or name in self.ignored or cell in _ABSENT:
                continue
            value = _number(cell)
            if value is None:
                self.skipped += 1  # e.g. Keras writes a non-scalar metric as "[1, 2]"
            else:
                points.add(name, step, value)
