"""Keras ``CSVLogger`` files: one row per epoch, ``epoch`` first, then one column per metric.

The x value of every point is the epoch (Keras counts from 0). The file records no
wall time.
"""

from __future__ import annotations

from ._csv import CsvTail

__all__ = ["KerasCsvTail", "matches"]


def matches(columns: list[str]) -> bool:
    """Whether a CSV header is a Keras ``CSVLogger``'s."""
    return bool(columns) and columns[0] == "epoch" and "step" not in columns


class KerasCsvTail(CsvTail):
    format = "Keras CSVLogger"
    x_column = "epoch"
