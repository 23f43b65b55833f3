"""This package's own ``log_file=`` JSON lines (see :mod:`lossviz_widget._io.logfile`), read incrementally.

The line format is the log writer's: :func:`~lossviz_widget._io.logfile.parse_header` and
:func:`~lossviz_widget._io.logfile.parse_record` are shared with ``LossPlot.load``. A line
that is not a record (cut mid-write and then completed by a resumed log) is counted in
``skipped``. A purge line (a step rewind) needs no action here: the points after it go back in
steps, which the plot handles as the same rewind (its ``on_rewind``). The log's default run
is the file's run (``"fit"`` for ``fit.jsonl``); its
named runs are ``"fit/<name>"``.
"""

from __future__ import annotations

import os

from .._io.logfile import parse_header, parse_record
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
        record = parse_record(line)
        if record is None:
            self.skipped += 1
            return
        run, metric, steps, values, wall_times, _ = record
        points.add_arrays(metric, steps, values, wall_times, "" if run == DEFAULT_RUN else run)
