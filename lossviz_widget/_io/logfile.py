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
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._core.bytescan import bytes_at, distinct_strings, groups_in_order
from .._core.columns import Column, SeriesColumns
from .._core.rewind import Rewind
from .._model import DEFAULT_RUN, RunData, RunsData
from .data_files import NONFINITE, check_file_name, float_from_json, json_float, make_history

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


_FAST_KEYS = ({"m"}, {"m", "r"})
_MAX_KEY = 1024  # longer series keys (rare) are parsed line by line
_MAX_NUMBER = 64  # and longer numbers
_NUMBER = (float, int)  # what a JSON number parses to


class LogLines:
    """The records of many lines of a log, in file order: runs of point lines (several series,
    ``ids`` says whose: an index into ``keys``), other records' points (one series) and purges."""

    def __init__(self) -> None:
        self.keys: list[tuple[str, str]] = []
        self.parts: list[tuple[int, np.ndarray | None, np.ndarray, np.ndarray, np.ndarray, float | None]] = []
        self.skipped = 0

    def each(self) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray, float | None]]:
        """``(key, steps, values, wall_times, purge)`` in file order, one series at a time: the
        points of a series (``purge`` None), or a purge of its points at or after ``purge``."""
        for key, ids, s, v, t, purge in self.parts:
            if ids is None:
                yield key, s, v, t, purge
                continue
            for k, where in groups_in_order(ids):
                yield k, s[where], v[where], t[where], None


def parse_lines(text: bytes, split: Callable[[str], list[str]], count_blank: bool) -> LogLines:
    """Every record in ``text`` (lines after the header; a last line without its newline
    included), exactly as :func:`parse_record` gives them line by line, but fast.

    Point lines exactly as :class:`LogWriter` writes them (``{<key>, "s": <number>, "v":
    <number>, "t": <number>}``), nearly every line of a log written by a loop of fewer than ~600
    steps/s, are found and decoded for all lines at once: fields located with NumPy, the series
    key parsed once per distinct key, all numbers parsed by one JSON parse of an array made of
    them (orjson when installed: ~6x the standard library's speed on numbers). Every other line
    (chunk and purge lines, values written as "NaN", cut or corrupt lines, anything unusual) goes
    through :func:`parse_record`, after ``split`` (how the caller splits text into lines beyond
    ``\n``); blank lines count as skipped if ``count_blank``."""
    out = LogLines()
    buf = np.frombuffer(text, dtype=np.uint8)
    ends = np.flatnonzero(buf == 10)
    if len(text) and text[-1:] != b"\n":
        ends = np.append(ends, len(text))
    if not len(ends):
        return out
    starts = np.concatenate(([0], ends[:-1] + 1)).astype(np.int64)
    fast, fields, key_at, key_len = _point_lines(buf, starts, ends)
    index: dict[tuple[str, str], int] = {}
    ids = np.full(len(starts), -1, dtype=np.int64)
    if fast.any():
        first, which = distinct_strings(buf, key_at[fast], key_len[fast])
        key_ids = np.array([_key_id(text[a:a + n], index) for a, n in
                            zip(key_at[fast][first].tolist(), key_len[fast][first].tolist())], dtype=np.int64)
        ids[fast] = key_ids[which]
        fast &= ids >= 0
    parsed = _numbers(buf, fields[fast])
    if parsed is None:
        fast[:] = False
        numbers = np.zeros((0, 3))
    else:
        numbers, fast[fast] = parsed
    fast_lines = np.flatnonzero(fast)
    fast_ids = ids[fast]
    done = 0  # point lines already in parts

    def points_before(line: int) -> None:
        nonlocal done
        before = int(np.searchsorted(fast_lines, line))
        if before > done:
            out.parts.append((-1, fast_ids[done:before], numbers[done:before, 0], numbers[done:before, 1],
                              numbers[done:before, 2], None))
            done = before

    for i in np.flatnonzero(~fast).tolist():
        piece = text[starts[i]:ends[i]].decode("utf-8", errors="replace")
        for line in split(piece):
            if not count_blank and not line.strip():
                continue
            rec = parse_record(line)
            if rec is None:
                out.skipped += 1
                continue
            points_before(i)
            run, name, steps, values, walls, purge = rec
            out.parts.append((index.setdefault((run, name), len(index)), None, np.asarray(steps, dtype=np.float64),
                              np.asarray(values, dtype=np.float64), np.asarray(walls, dtype=np.float64), purge))
    points_before(len(starts))
    out.keys = list(index)
    return out


def _point_lines(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Which lines look like point lines, their three number fields (``(start, end)`` each), and
    where their series key (what lies between ``{`` and ``, "s": ``) is."""
    n = len(starts)
    fields = np.zeros((n, 3, 2), dtype=np.int64)
    colons = np.flatnonzero(buf == ord(":"))
    colons = colons[(colons >= 5) & (colons < len(buf) - 1)]
    near = bytes_at(buf, colons - 5, 7)  # `, "x": ` around each colon
    marks = colons[(near[:, 0] == ord(",")) & (near[:, 1] == ord(" ")) & (near[:, 2] == ord('"'))
                   & (near[:, 4] == ord('"')) & (near[:, 6] == ord(" "))]
    letters = buf[marks - 2]
    line = np.searchsorted(ends, marks)
    count = np.bincount(line, minlength=n)
    ok = count == 3
    first = np.cumsum(count) - count
    pick = np.minimum(first[:, None] + np.arange(3), max(len(marks) - 1, 0))
    if len(marks):
        ok &= (letters[pick] == np.array([ord("s"), ord("v"), ord("t")])).all(axis=1)
        at = marks[pick]  # each field's colon
    else:
        at = np.zeros((n, 3), dtype=np.int64)
    last = np.maximum(ends - 1, 0)
    ok &= (ends - starts > 2) & (buf[np.minimum(starts, len(buf) - 1)] == ord("{")) & (buf[last] == ord("}"))
    fields[:, :, 0] = at + 2
    fields[:, 0, 1] = at[:, 1] - 5
    fields[:, 1, 1] = at[:, 2] - 5
    fields[:, 2, 1] = last
    ok &= (fields[:, :, 1] > fields[:, :, 0]).all(axis=1)
    key_at, key_len = starts + 1, at[:, 0] - 5 - (starts + 1)
    ok &= (key_len > 0) & (key_len <= _MAX_KEY)
    ok &= (fields[:, :, 1] - fields[:, :, 0] <= _MAX_NUMBER).all(axis=1)
    return ok, fields, key_at, key_len


def _key_id(key: bytes, index: dict[tuple[str, str], int]) -> int:
    """The series id of a point line's key text (``"m": ...`` or ``"r": ..., "m": ...``), or -1
    if those lines must go the slow way (a key :func:`parse_record` would read differently)."""
    text = "{" + key.decode("utf-8", errors="replace") + "}"
    try:
        rec = json.loads(text)
        if set(rec) not in _FAST_KEYS or len(text.splitlines()) != 1:
            return -1
        run, name = check_file_name("run", rec.get("r", DEFAULT_RUN)), check_file_name("metric", rec["m"])
    except ValueError:
        return -1
    return index.setdefault((run, name), len(index))


def _numbers(buf: np.ndarray, fields: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The numbers in ``fields`` (``(start, end)`` of each point line's three numbers), parsed as
    one JSON array: a copy of the buffer with every byte outside them made a space and a comma
    after each; and which lines they are (those whose values are all numbers, or a non-finite
    value as the writer stores it). ``None`` unless each field is exactly one JSON value (the
    parse fails, or gives another count): then every line takes the slow path."""
    spans = fields.reshape(-1, 2)
    if not len(spans):
        return np.zeros((0, 3)), np.zeros(0, dtype=bool)
    edges = np.zeros(len(buf) + 1, dtype=np.int8)
    edges[spans[:, 0]] = 1
    edges[spans[:, 1]] = -1  # an end is never another field's start (": " lies between)
    blob = np.where(np.cumsum(edges[:-1], dtype=np.int8).view(bool), buf, np.uint8(ord(" ")))
    blob[spans[:-1, 1]] = ord(",")
    try:
        numbers = _loads(b"[" + blob.tobytes() + b"]")
    except ValueError:
        return None
    if len(numbers) != len(spans):
        return None
    if set(map(type, numbers)) <= {float, int}:
        return np.array(numbers, dtype=np.float64).reshape(-1, 3), np.ones(len(fields), dtype=bool)
    # some values are not numbers: "NaN"/"Infinity"/"-Infinity" (how the writer stores them) are
    # read here; lines with anything else go the slow way
    good = np.zeros(len(fields), dtype=bool)
    rows: list[list[float]] = []
    for k in range(len(fields)):
        s, v, t = numbers[3 * k:3 * k + 3]
        if type(s) in _NUMBER and type(t) in _NUMBER and (type(v) in _NUMBER or (type(v) is str and v in NONFINITE)):
            good[k] = True
            rows.append([s, float_from_json(v), t])
    return np.array(rows, dtype=np.float64).reshape(-1, 3), good


def _loads(data: bytes) -> Any:
    try:
        import orjson
    except ImportError:
        return json.loads(data)
    return orjson.loads(data)


def read_log(path: Path) -> RunData:
    """Read a log file (purges applied); cut/corrupt lines are skipped and counted in ``skipped_lines``.

    Lines are split as a text-mode file splits them (``\\n``, ``\\r\\n`` or ``\\r``)."""
    data = path.read_bytes()
    head = min((i for i in (data.find(b"\n"), data.find(b"\r")) if i >= 0), default=len(data))
    rest = head + 2 if data[head:head + 2] == b"\r\n" else head + 1
    title, settings = parse_header(data[:head].decode("utf-8", errors="replace"))
    lines = parse_lines(data[rest:], _text_mode_lines, count_blank=True)
    series: dict[int, SeriesColumns] = {}  # in first-seen order
    for key, s, v, t, purge in lines.each():
        cols = series.setdefault(key, SeriesColumns())
        if purge is None:
            cols.add(s, v, t)
        else:
            cols.purge(purge)
    runs: RunsData = {}
    for key, cols in series.items():
        run, name = lines.keys[key]
        runs.setdefault(run, {})[name] = make_history(*cols.columns(), name)
    return RunData(runs, title, settings, lines.skipped)


def _text_mode_lines(piece: str) -> list[str]:
    """The lines of ``piece`` (no ``\\n`` in it) as a text-mode file reads them: ``\\r`` ends one too."""
    return piece.removesuffix("\r").split("\r")
