"""This package's own ``log_file=`` JSON lines (see :mod:`lossviz_widget._io.logfile`), read incrementally.

The line format is the log writer's: :func:`~lossviz_widget._io.logfile.parse_header` and
:func:`~lossviz_widget._io.logfile.parse_lines` are shared with ``LossPlot.load`` (the bulk line
parser: all point lines of a read at once). A line that is not a record (cut mid-write and then
completed by a resumed log) is counted in ``skipped``. A purge line (a step rewind) needs no
action here: the points after it go back in steps, which the plot handles as the same rewind (its
``on_rewind``). The log's default run is the file's run (``"fit"`` for ``fit.jsonl``); its named
runs are ``"fit/<name>"``.
"""

from __future__ import annotations

import os

from .._io.logfile import parse_header, parse_lines
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

    def _read(self) -> Points:
        points = Points(with_wall_times=True)
        data = self._new_lines()
        while not self._header_read and data:  # the first line that is not blank
            line, _, data = data.partition(b"\n")
            for i, text in enumerate(lines := line.decode("utf-8", errors="replace").splitlines()):
                if not text.strip():
                    continue
                try:
                    parse_header(text)
                except ValueError as exc:
                    raise ValueError(f"{str(self.path)!r}: {exc}") from None
                self._header_read = True
                rest = "\n".join(lines[i + 1:])  # anything a line separator other than \n put after it
                data = (rest.encode("utf-8") + b"\n" if rest else b"") + data
                break
        parsed = parse_lines(data, follow=True)
        self.skipped += parsed.skipped
        for key, steps, values, walls, purge in parsed.each():
            if purge is None:
                run, metric = parsed.keys[key]
                points.add_arrays(metric, steps, values, walls, "" if run == DEFAULT_RUN else run)
        return points
