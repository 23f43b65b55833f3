"""``log_file=``: every logged value streamed to a JSON-lines file, for crash safety.

Points are appended at frame time (device tensors are fetched by then) with one ``os.write``
per frame straight to the file (no user-space buffer), so a killed kernel loses at most the
last frame. The first line is a header; every other line is one record::

    {"format": "lossviz_widget.jsonl", "version": 2, "title": "...", "settings": {...}}
    {"m": "loss", "s": 0.0, "v": 0.93, "t": 1764000000.123}
    {"r": "lr=1e-3", "m": "loss", "s": 0.0, "v": 0.91, "t": 1764000000.125}
    {"m": "loss", "s64": "AAAAAAAA8D8...", "v64": "...", "t64": "..."}
    {"m": "loss", "purge": 50.0}

``"r"`` is the run; lines of the default run leave it out. A series that got at most
:data:`POINT_LINES_MAX` new points in a frame is written one readable line per point; a faster
one as one *chunk* line whose ``s64``/``v64``/``t64`` are its steps, values and wall times as
base64 of little-endian float64: formatting float text costs ~0.5 us per number, more than
``log()`` itself, so a loop logging at full speed would leave a text writer ever further
behind (see ``benchmarks/CRASH_SAFETY.md``); raw float64 keeps up at any rate and is exact.
A ``purge`` line records a step rewind (:mod:`lossviz_widget._core.rewind`): the metric's
points at or after that step were dropped, so a reload reproduces the same history.

Never lying about what is on disk: a frame's records are written as one block, and its points
count as written only once the whole block is. A failed write (disk full, file made
read-only) is cut back off the file, reported in :attr:`LogWriter.error` (the plot's status
line) and retried at the next frame with everything pending; a block cut short by a kill is one
invalid last line, which reading skips and counts.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._core.columns import Column, SeriesColumns
from .._core.rewind import Rewind
from .._model import DEFAULT_RUN, RunData, RunsData
from .data_files import check_file_name, float_from_json, json_float, make_history

__all__ = ["LOG_SUFFIX", "LogWriter", "check_log_path", "parse_header", "parse_record", "read_log"]

LOG_FORMAT = "lossviz_widget.jsonl"
LOG_SUFFIX = ".jsonl"
VERSION = 2  # 2: chunk and purge lines
POINT_LINES_MAX = 64  # new points of a series per frame up to which each gets a readable line
CHUNK_POINTS = 1 << 16  # points per chunk line at most (bounded line length)


def check_log_path(path: str | os.PathLike[str]) -> Path:
    """``path`` as a ``log_file``: it must end in ``.jsonl`` (the only format a log is written in)."""
    p = Path(path).expanduser()
    if p.suffix.lower() != LOG_SUFFIX:
        raise ValueError(
            f"log_file {str(p)!r}: a log file is JSON lines and its name must end in {LOG_SUFFIX!r} "
            f"(got {p.suffix or 'no suffix'!r}); for .csv/.json/.npz, log as usual and call export() at the end"
        )
    return p


def _b64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype="<f8").tobytes()).decode("ascii")


def _from_b64(text: Any) -> np.ndarray:
    if not isinstance(text, str):
        raise ValueError("not base64 text")
    raw = base64.b64decode(text, validate=True)
    if len(raw) % 8:
        raise ValueError("not whole float64 values")
    return np.frombuffer(raw, dtype="<f8").astype(np.float64)


class LogWriter:
    """Appends the points of each frame that are not on disk yet (and rewinds' purges)."""

    def __init__(self, path: str | os.PathLike[str], *, title: str, settings: dict[str, Any],
                 already_written: dict[tuple[str, str], int] | None = None) -> None:
        self.path = check_log_path(path)
        folder = self.path.parent
        if not folder.is_dir():
            raise FileNotFoundError(f"cannot write log file {str(self.path)!r}: folder {str(folder)!r} does not exist")
        if self.path.is_dir():
            raise IsADirectoryError(f"cannot write log file {str(self.path)!r}: it is a folder")
        resume = already_written is not None
        if not resume and self.path.exists() and self.path.stat().st_size > 0:
            raise FileExistsError(
                f"log file {str(self.path)!r} already holds data; to continue that run use "
                f"LossPlot.load({str(self.path)!r}, log_file={str(self.path)!r}), or pick a new name"
            )
        try:
            self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise PermissionError(f"cannot write log file {str(self.path)!r}: {exc.strerror}") from exc
        self._size = os.fstat(self._fd).st_size  # the bytes known good: a failed write is cut back to here
        self._written: dict[tuple[str, str], int] = dict(already_written or {})  # (run, metric) -> points on disk
        self._purges: list[Rewind] = []  # rewinds whose purge line is not on disk yet
        self.error = ""  # why the last write failed ("" once a write succeeds)
        self.pending = 0  # points held in memory that the last failed write could not put on disk
        head = ""
        if resume and self._size and not self._ends_with_newline():
            head = "\n"  # the last line was cut mid-write: never glue new data onto it
        if not resume:
            header = {"format": LOG_FORMAT, "version": VERSION, "title": title, "settings": settings}
            head = json.dumps(header, ensure_ascii=False) + "\n"
        if head:
            try:
                self._append(head.encode("utf-8"))
            except OSError as exc:
                self.close()
                raise PermissionError(f"cannot write log file {str(self.path)!r}: {exc.strerror}") from exc

    def _ends_with_newline(self) -> bool:
        with self.path.open("rb") as f:
            f.seek(-1, os.SEEK_END)
            return f.read(1) == b"\n"

    def write_new(self, data: RunsData, rewinds: Sequence[Rewind] = ()) -> None:
        """Append every point not yet written (after the purges of ``rewinds``): one write per frame.

        Never raises for a failed write: it is reported in :attr:`error` and retried next frame.
        """
        if self._fd is None:
            return
        written = dict(self._written)
        self._purges += [r for r in rewinds if not r.new_run]
        parts: list[str] = []
        for r in self._purges:  # points on disk past a purge are dropped by its line on reading
            key = (r.run, r.metric)
            if written.get(key, 0) > r.kept:
                parts.append(f'{{{_series_key(*key)}, "purge": {float(r.step)!r}}}\n')
                written[key] = r.kept
        new = 0
        for run, metrics in data.items():
            for name, h in metrics.items():
                start = written.get((run, name), 0)
                if start < len(h):
                    new += len(h) - start
                    _format_points(parts, _series_key(run, name), h.steps[start:], h.values[start:],
                                   h.wall_time[start:])
                    written[run, name] = len(h)
        if not parts:
            return
        try:
            self._append("".join(parts).encode("utf-8"))
        except OSError as exc:
            self.error = (f"log_file {str(self.path)!r}: write failed ({exc.strerror or exc}); "
                          f"{new:,} points kept in memory, retried every frame")
            self.pending = new
            return
        self._written, self._purges = written, []
        self.error, self.pending = "", 0

    def _append(self, block: bytes) -> None:
        """Write ``block`` after the known-good bytes, whole or not at all (cut back on failure)."""
        fd = self._fd
        assert fd is not None
        try:
            if os.fstat(fd).st_size != self._size:  # an earlier failed write left part of a block
                os.ftruncate(fd, self._size)
            view = memoryview(block)
            while view:
                view = view[os.write(fd, view):]
        except OSError:
            with contextlib.suppress(OSError):  # else cut back at the next attempt (reading skips a cut line)
                os.ftruncate(fd, self._size)
            raise
        self._size += len(block)

    def close(self) -> None:
        """Close the file; warns if the last write failed (how many points never reached it)."""
        if self._fd is None:
            return
        os.close(self._fd)
        self._fd = None
        if self.error:
            warnings.warn(f"{self.error.split('; ')[0]}: {self.pending:,} logged points are not in the file",
                          RuntimeWarning, stacklevel=3)


def _series_key(run: str, name: str) -> str:
    prefix = "" if run == DEFAULT_RUN else f'"r": {json.dumps(run, ensure_ascii=False)}, '
    return prefix + '"m": ' + json.dumps(name, ensure_ascii=False)


def _format_points(parts: list[str], key: str, steps: np.ndarray, values: np.ndarray, wall: np.ndarray) -> None:
    """Lines for one series' new points: readable point lines for a few, chunk lines for many."""
    n = len(steps)
    if n <= POINT_LINES_MAX:
        for s, v, t in zip(steps.tolist(), values.tolist(), wall.tolist()):
            parts.append(f'{{{key}, "s": {s!r}, "v": {json.dumps(json_float(v))}, "t": {t!r}}}\n')
        return
    for a in range(0, n, CHUNK_POINTS):
        b = a + CHUNK_POINTS
        parts.append(f'{{{key}, "s64": "{_b64(steps[a:b])}", "v64": "{_b64(values[a:b])}", '
                     f'"t64": "{_b64(wall[a:b])}"}}\n')


def parse_header(line: str) -> tuple[str, dict[str, Any]]:
    """Title and settings from a log's first line; ``ValueError`` if it is not our header."""
    try:
        header = json.loads(line) if line.strip() else None
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("format") != LOG_FORMAT:
        raise ValueError(f'first line must be a header with "format": "{LOG_FORMAT}"')
    return str(header.get("title", "")), dict(header.get("settings", {}))


#: One record: ``(run, metric, steps, values, wall_times, purge)``: points (``purge`` None; a
#: point line's as one-element lists, a chunk line's as arrays), or a purge of the metric's
#: points at or after ``purge`` (empty columns).
Record = tuple[str, str, Column, Column, Column, "float | None"]

_NONE = np.empty(0)


def parse_record(line: str) -> Record | None:
    """One line after the header, or ``None`` if it is cut or corrupt."""
    try:
        rec = json.loads(line)
        run, name = check_file_name("run", rec.get("r", DEFAULT_RUN)), check_file_name("metric", rec["m"])
        if "purge" in rec:
            return run, name, _NONE, _NONE, _NONE, float_from_json(rec["purge"])
        if "s64" in rec:
            s, v, t = _from_b64(rec["s64"]), _from_b64(rec["v64"]), _from_b64(rec["t64"])
            if not len(s) == len(v) == len(t):
                return None
            return run, name, s, v, t, None
        return run, name, [float(rec["s"])], [float_from_json(rec["v"])], [float(rec["t"])], None
    except (ValueError, KeyError, TypeError, AttributeError):
        return None  # typically the last line, cut mid-write by a killed process


def read_log(path: Path) -> RunData:
    """Read a log file (purges applied); cut/corrupt lines are skipped and counted in ``skipped_lines``."""
    series: dict[tuple[str, str], SeriesColumns] = {}
    skipped = 0
    with path.open(encoding="utf-8", errors="replace") as f:
        title, settings = parse_header(f.readline())
        for line in f:
            rec = parse_record(line)
            if rec is None:
                skipped += 1
                continue
            run, name, s, v, t, purge = rec
            cols = series.setdefault((run, name), SeriesColumns())
            if purge is None:
                cols.add(s, v, t)
            else:
                cols.purge(purge)
    runs: RunsData = {}
    for (run, name), cols in series.items():
        runs.setdefault(run, {})[name] = make_history(*cols.columns(), name)
    return RunData(runs, title, settings, skipped)
