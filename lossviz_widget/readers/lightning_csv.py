"""Lightning ``CSVLogger`` ``metrics.csv``: sparse rows keyed by the global ``step``.

Each row holds the metrics of one logging call (training steps, epoch-end
validation...), the other cells empty; an empty cell records nothing. The ``epoch``
column is bookkeeping Lightning adds to every row, not a metric. Lightning rewrites the
whole file with a wider header when a new metric appears; the tail notices (the first
bytes changed) and delivers only the rows it had not delivered.
"""

from __future__ import annotations

from ._csv import CsvTail

__all__ = ["LightningCsvTail", "matches"]


def matches(columns: list[str]) -> bool:
    """Whether a CSV header is a Lightning ``CSVLogger``'s (it has a ``step`` column)."""
    return "step" in columns


class LightningCsvTail(CsvTail):
    format = "Lightning CSVLogger"
    x_column = "step"
    ignored = frozenset({"epoch"})
