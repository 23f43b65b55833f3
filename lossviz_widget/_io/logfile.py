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

from .._core.bytescan import LOW_BYTES, distinct_strings, groups_in_order, words, words_at
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
    lines, at, key_len = _point_lines(buf, starts, ends)
    index: dict[tuple[str, str], int] = {}
    ids = np.zeros(0, dtype=np.int64)
    if len(lines):
        first, which = distinct_strings(buf, starts[lines] + 1, key_len)
        key_ids = np.array([_key_id(text[a:a + n], index) for a, n in
                            zip((starts[lines][first] + 1).tolist(), key_len[first].tolist())], dtype=np.int64)
        ids = key_ids[which]
        known = ids >= 0
        lines, at, ids = lines[known], at[known], ids[known]
    parsed = _numbers(buf, at, ends[lines] - 1)
    if parsed is None:
        lines, numbers = lines[:0], np.zeros((0, 3))
    else:
        numbers, good = parsed
        lines, ids, numbers = lines[good], ids[good], numbers[good]
    done = 0  # point lines already in parts

    def points_before(line: int) -> None:
        nonlocal done
        before = int(np.searchsorted(lines, line))
        if before > done:
            out.parts.append((-1, ids[done:before], numbers[done:before, 0], numbers[done:before, 1],
                              numbers[done:before, 2], None))
            done = before

    slow = np.ones(len(starts), dtype=bool)
    slow[lines] = False
    for i in np.flatnonzero(slow).tolist():
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


#: ``, "x": `` and the byte after it as one little-endian word, the letter and that byte masked out
_MARK = int.from_bytes(b', "\0": \0', "little")
_MARK_MASK = np.uint64(0x00FF_FFFF_00FF_FFFF)
_SVT = (ord("s"), ord("v"), ord("t"))


def _point_lines(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The lines that look like point lines, ascending; the colons of their ``"s"``, ``"v"``,
    ``"t"`` fields (one row each); and the length of their series key (what lies between ``{``
    and ``, "s": ``). One pass over the text finds the colons; each is tested as one 8-byte word
    against ``, "x": `` (in a JSON string a quote is escaped, so in a valid line these are
    fields); a point line has exactly the three, in that order."""
    colons = np.flatnonzero(buf[5:-2] == ord(":"))  # each at 5 + its index
    marks = colons[(words(buf)[colons] & _MARK_MASK) == _MARK] + 5
    letters = buf[marks - 2]
    m = len(marks)
    k = np.flatnonzero(letters[:max(m - 2, 0)] == _SVT[0])  # each "s" mark with two more after it
    k = k[(letters[k + 1] == _SVT[1]) & (letters[k + 2] == _SVT[2])]
    lines = np.searchsorted(ends, marks[k])
    ok = marks[k + 2] < ends[lines]  # all three in one line, no other mark in it before or after
    ok &= (k == 0) | (marks[k - 1] < starts[lines])
    ok &= (k + 3 >= m) | (marks[np.minimum(k + 3, m - 1)] > ends[lines])
    k, lines = k[ok], lines[ok]
    at = marks[k[:, None] + np.arange(3)]
    first, last = starts[lines], ends[lines] - 1
    ok = (buf[first] == ord("{")) & (buf[last] == ord("}"))
    key_len = at[:, 0] - 5 - (first + 1)
    ok &= (key_len > 0) & (key_len <= _MAX_KEY)
    for size in (at[:, 1] - 5 - (at[:, 0] + 2), at[:, 2] - 5 - (at[:, 1] + 2), last - (at[:, 2] + 2)):
        ok &= (size > 0) & (size <= _MAX_NUMBER)
    return lines[ok], at[ok], key_len[ok]


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


def _numbers(buf: np.ndarray, at: np.ndarray, t_end: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The three numbers of each point line (``at``: its fields' colons; ``t_end``: its closing
    ``}``), parsed as one JSON array (:func:`_number_text`); and which lines they are: those whose
    fields are all numbers (they start with ``-`` or a digit), or whose value is non-finite as the
    writer stores it (``"NaN"``...). ``None`` unless each field is exactly one JSON value (the
    parse fails, or gives another count): then every line takes the slow path."""
    n = len(at)
    if not n:
        return np.zeros((0, 3)), np.zeros(0, dtype=bool)
    begin = at + 2
    try:
        numbers = _loads(_number_text(buf, at, t_end))
    except ValueError:
        return None
    if len(numbers) != 3 * n:
        return None
    lead = buf[begin.ravel()]
    numeric = (lead == ord("-")) | ((lead >= ord("0")) & (lead <= ord("9")))
    good = numeric.reshape(n, 3).all(axis=1)
    for i in np.flatnonzero(~numeric).tolist():  # few: "NaN"/"Infinity"/"-Infinity" values are read,
        x = numbers[i]  # lines with anything else go the slow way
        if i % 3 == 1 and type(x) is str and x in NONFINITE and numeric[i - 1] and numeric[i + 1]:
            good[i // 3] = True
            numbers[i] = NONFINITE[x]
        else:
            numbers[i] = 0.0
    return np.fromiter(numbers, np.float64, 3 * n).reshape(n, 3), good


_SPACES = np.uint64(int.from_bytes(b" " * 8, "little"))


def _number_text(buf: np.ndarray, at: np.ndarray, t_end: np.ndarray) -> bytes:
    """A JSON array of the point lines' numbers (``at``: their fields' colons; ``t_end``: their
    closing ``}``), each line's three in order.

    Where the point lines fill most of the text they span (a log of point lines), what follows
    each line's ``"s": `` is kept (one pass over the span), with the ``"v":`` and ``"t":`` in it
    made spaces and the closing ``}`` a comma. Else (a few point lines among chunk lines) each
    field is gathered on its own (:func:`words_at`), padded with spaces to whole 8-byte words."""
    begin = at[:, 0] + 2
    kept = t_end + 1 - begin
    if 2 * int(kept.sum()) >= int(t_end[-1]) - int(begin[0]):
        runs = np.empty(2 * len(at), dtype=np.int64)  # alternately: bytes dropped, bytes kept
        runs[0] = 0
        runs[2::2] = begin[1:] - t_end[:-1] - 1
        runs[1::2] = kept
        keep = np.repeat(np.tile(np.array([False, True]), len(at)), runs)
        text = buf[int(begin[0]):int(t_end[-1]) + 1][keep]
        line_at = np.cumsum(kept) - kept  # where each line's text starts in it
        names = (line_at[:, None] + (at[:, 1:] - 3 - begin[:, None])).ravel()  # the `"v":`, `"t":`
        text[(names[:, None] + np.arange(4)).ravel()] = ord(" ")
        text[line_at + kept - 1] = ord(",")
        text[-1] = ord("]")
        return b"[" + text.tobytes()
    stop = np.stack([at[:, 1] - 5, at[:, 2] - 5, t_end], axis=1).ravel()
    size = stop - (at + 2).ravel()
    rows = words_at(buf, (at + 2).ravel(), int(size.max()) // 8 + 1)
    keep = LOW_BYTES[np.clip(size[:, None] - 8 * np.arange(rows.shape[1]), 0, 8)]
    text = ((rows & keep) | (_SPACES & ~keep)).view(np.uint8)  # the last byte of each row is a space
    text[:, -1] = ord(",")
    text[-1, -1] = ord("]")
    return b"[" + text.tobytes()


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
