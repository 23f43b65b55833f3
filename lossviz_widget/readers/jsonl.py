"""This package's own ``log_file=`` JSON lines (see :mod:`lossviz_widget._io.logfile`), read incrementally.

The line format is the log writer's: :func:`~lossviz_widget._io.logfile.parse_header` and
:func:`~lossviz_widget._io.logfile.parse_point` are shared with ``LossPlot.load``. A line
that is not a point (cut mid-write and then completed by a resumed log) is counted in
``skipped``. The log's default run is the file's run (``"fit"`` for ``fit.jsonl``); its
named runs are ``"fit/<name>"``.
"""

from __future__ import annotations

import os

from .._io.logfile import parse_header, parse_point
from .._model import DEFAULT_RUN
from ._tail import LineTail, Points

__all__ = ["JsonlTail"]


class JsonlTail(LineTail):
    format = "lossviz_widget log"
    has_wall_times = True

    def __init__(self, path: str | os.PathLike[str], run: str) -> None:
        super().__init__(path, run)
        self._header_read = False

    def _restart(self) -> None:
        super()._restart()
        self._header_read = False

    def _parse_line(self, line: str, points: Points) -> None:
        if not self._header_read:
            try:
                parse_header(line)
            except ValueError as exc:
                raise ValueError(f"{str(self.path)!r}: {exc}") from None
            self._header_read = True
            return
        point = parse_point(line)
        if point is None:
            self.skipped += 1
        else:
            run, metric, step, value, wall_time = point
            points.add(metric, step, value, wall_time, "" if run == DEFAULT_RUN else run)
