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
import functools
import itertools
import json
import os
import warnings
from collections.abc import Iterator, Sequence
from operator import attrgetter
from pathlib import Path
from typing import Any

import numpy as np

from .._core.bytescan import groups_in_order
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
    except (ValueError, KeyError, TypeError, AttributeError, OverflowError):  # OverflowError: an integer past float64
        return None  # typically the last line, cut mid-write by a killed process


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


#: Bytes of lines decoded as one block, then the size of the blocks a failed block is split into;
#: the lines of a failed block of the last size are decoded one at a time (a cut or corrupt line
#: costs a few decodes of 16 KiB; a log of only chunk lines tries each of them once as a block).
_BLOCK_BYTES = (1 << 20, 1 << 14)
#: What ends a line besides ``\n`` when reading a file (text mode), and when following one
#: (``str.splitlines``; its other separators, ``\x0b``-``\x1e``, are control characters, which
#: JSON never holds raw: a line holding one fails to decode and takes the slow path anyway).
_READ_SEPARATORS = (b"\r",)
_FOLLOW_SEPARATORS = (b"\r", "\x85".encode(), "\u2028".encode(), "\u2029".encode())
_RUN, _METRIC, _RUN_METRIC = attrgetter("r"), attrgetter("m"), attrgetter("r", "m")
_COLUMNS = (attrgetter("s"), attrgetter("v"), attrgetter("t"))


@functools.lru_cache(maxsize=32)  # a decoder per set of names: a log has a few sets
def _point_decoder(metrics: frozenset[str] = frozenset(), runs: frozenset[str] = frozenset()) -> Any:
    """msgspec's decoder of one point line, exactly as :func:`parse_record` reads it when it
    decodes at all: the fields ``m``, ``s``, ``v``, ``t`` and optionally ``r``, no other; names
    non-empty strings; numbers (a float, or an integer, which is read as the same float), the
    value also one of the non-finite strings the writer stores (:data:`NONFINITE`). Anything
    else (other fields, a step as a string, ``true``, ``NaN`` unquoted, numbers past float64,
    invalid UTF-8) fails to decode and goes through :func:`parse_record`. Imported when a log
    is first read.

    With ``metrics`` (and ``runs``, which holds the default run), only lines of those series
    decode, each name as the one string object of ``metrics`` or ``runs``: no string made per
    line, and the series ids found faster."""
    from typing import Annotated, Literal

    import msgspec

    name = Annotated[str, msgspec.Meta(min_length=1)]
    metric, run = (Literal.__getitem__(tuple(sorted(names))) if metrics else name for names in (metrics, runs))
    value = float | Literal.__getitem__(tuple(NONFINITE))
    point = msgspec.defstruct("PointLine", [("m", metric), ("s", float), ("v", value), ("t", float),
                                            ("r", run, DEFAULT_RUN)], forbid_unknown_fields=True, gc=False)
    return msgspec.json.Decoder(point)


class _Parse:
    """The state of one :func:`parse_lines`: the point lines read so far, in file order (float64
    columns and their series ids, a block at a time; the last few as msgspec objects), and every
    other record with how many point lines came before it."""

    def __init__(self, text: bytes, follow: bool) -> None:
        import msgspec

        self.text = text
        self.follow = follow
        self.separators = _FOLLOW_SEPARATORS if follow else _READ_SEPARATORS
        self.decoder = _point_decoder()
        self.failed = msgspec.DecodeError  # its ValidationError too
        self.metrics: frozenset[str] = frozenset()  # the metrics of the point lines decoded in blocks
        self.runs = frozenset([DEFAULT_RUN])  # the runs of all point lines decoded
        self.points: list[Any] = []  # decoded point lines not yet made columns
        self.columns: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []  # (ids, s, v, t)
        self.count = 0  # point lines already in columns
        self.index: dict[tuple[str, str], int] = {}  # series id of each (run, metric)
        self.records: list[tuple[int, Record]] = []
        self.skipped = 0

    def lines_in(self, a: int, b: int, level: int = 0) -> None:
        """The lines of ``text[a:b]`` (``b`` just after a newline), in blocks of about
        ``_BLOCK_BYTES[level]`` bytes: each decoded at once if its lines are all point lines,
        else in blocks of the next size; line by line past the last size."""
        if level == len(_BLOCK_BYTES):
            for line in self.text[a:b - 1].split(b"\n"):
                self.line(line)
            return
        while a < b:
            end = self.text.find(b"\n", min(a + _BLOCK_BYTES[level], b) - 1, b) + 1
            if self.text.find(b"\n", a, end - 1) < 0:  # one line (a chunk line is megabytes)
                self.line(self.text[a:end - 1])
            elif not self.decoded(self.text[a:end]):
                self.lines_in(a, end, level + 1)
            a = end

    def decoded(self, chunk: bytes) -> bool:
        """Whether the lines of ``chunk`` (which ends with a newline) are all point lines, each
        decoded and kept if so. msgspec's ``decode_lines`` reads JSON values separated by any
        whitespace, so more is checked: no line holds a line end of the caller's, and each ends
        with ``}``. The only braces of a point line outside its strings are its first and last
        byte, and a JSON string holds no raw newline, so then a record ends where its line ends
        and each line holds at least one: as many records as lines means one per line."""
        seps = self.separators if not chunk.isascii() else self.separators[:1]  # the others are not ASCII
        if any(sep in chunk for sep in seps):
            return False
        buf = np.frombuffer(chunk, dtype=np.uint8)
        ends = np.flatnonzero(buf == ord("\n"))
        if not (buf[ends - 1] == ord("}")).all():  # an empty first line reads buf[-1], a newline
            return False
        for decoder in (_point_decoder(self.metrics, self.runs), self.decoder) if self.metrics else (self.decoder,):
            try:
                points = decoder.decode_lines(chunk)
            except self.failed:
                continue
            if len(points) != len(ends):
                return False
            if decoder is self.decoder:  # new names: the next blocks are decoded with them known
                self.metrics |= set(map(_METRIC, points))
                self.runs |= set(map(_RUN, points))
            self.points += points
            self.to_columns()
            return True
        return False

    def line(self, raw: bytes) -> None:
        """One line (without its newline): a point line decoded, else whatever :func:`parse_record`
        reads in it (after splitting it further as the caller's lines split)."""
        if not any(sep in raw for sep in self.separators):
            try:
                point = self.decoder.decode(raw)
            except self.failed:
                pass
            else:
                self.points.append(point)
                self.runs |= {point.r}
                return
        piece = raw.decode("utf-8", errors="replace")
        for line in piece.splitlines() if self.follow else _text_mode_lines(piece):
            if self.follow and not line.strip():
                continue
            rec = parse_record(line)
            if rec is None:
                self.skipped += 1
            else:
                self.records.append((self.count + len(self.points), rec))

    def to_columns(self) -> None:
        """The decoded point lines made series ids and float64 columns, while they are still in
        the cache (a block at a time), and let go. NumPy reads the values' non-finite strings as
        their floats."""
        points, n = self.points, len(self.points)
        named = len(self.runs) > 1  # else the metric alone tells series apart
        first: dict[Any, int] = {}  # each series' first point, by its (run, metric) or metric
        at = np.fromiter(map(first.setdefault, map(_RUN_METRIC if named else _METRIC, points),
                             itertools.count()), np.int64, n)
        series = np.empty(n, dtype=np.int64)
        series[list(first.values())] = [self.index.setdefault(key if named else (DEFAULT_RUN, key), len(self.index))
                                        for key in first]
        s, v, t = (np.fromiter(map(get, points), np.float64, n) for get in _COLUMNS)
        self.columns.append((series[at], s, v, t))
        self.count += n
        self.points = []

    def lines(self) -> LogLines:
        """What was read, as :class:`LogLines`."""
        self.to_columns()
        ids, s, v, t = (np.concatenate(cols) for cols in zip(*self.columns))
        out = LogLines()
        out.skipped = self.skipped
        index = self.index
        done = 0

        def points_before(before: int) -> None:
            nonlocal done
            if before > done:
                out.parts.append((-1, ids[done:before], s[done:before], v[done:before], t[done:before], None))
                done = before

        for before, (run, name, steps, values, walls, purge) in self.records:
            points_before(before)
            out.parts.append((index.setdefault((run, name), len(index)), None, np.asarray(steps, dtype=np.float64),
                              np.asarray(values, dtype=np.float64), np.asarray(walls, dtype=np.float64), purge))
        points_before(self.count)
        out.keys = list(index)
        return out


def parse_lines(text: bytes, *, follow: bool, start: int = 0) -> LogLines:
    """Every record in ``text[start:]`` (lines after the header; a last line without its newline
    included), exactly as :func:`parse_record` gives them line by line, but fast.

    Lines are split as a file read in text mode splits them (``\\n``, ``\\r\\n``, ``\\r``; blank
    lines count as skipped), or, when ``follow``, as ``str.splitlines`` does (blank lines passed
    over). Point lines (``{<key>, "s": <number>, "v": <number>, "t": <number>}``, nearly every
    line of a log written by a loop of fewer than ~600 steps/s) are decoded by msgspec's compiled
    JSON parser, a megabyte of lines at a time; a block that fails (a chunk or purge line, a
    line cut by a killed process, anything unusual) is retried in smaller blocks, then line by
    line, and every line that is not a point line goes through :func:`parse_record`."""
    parse = _Parse(text, follow)
    whole = max(text.rfind(b"\n") + 1, start)
    if whole > start:
        parse.lines_in(start, whole)
    if whole < len(text):
        parse.line(text[whole:])
    return parse.lines()


def read_log(path: Path) -> RunData:
    """Read a log file (purges applied); cut/corrupt lines are skipped and counted in ``skipped_lines``.

    Lines are split as a text-mode file splits them (``\\n``, ``\\r\\n`` or ``\\r``)."""
    data = path.read_bytes()
    head = min((i for i in (data.find(b"\n"), data.find(b"\r")) if i >= 0), default=len(data))
    rest = head + 2 if data[head:head + 2] == b"\r\n" else head + 1
    title, settings = parse_header(data[:head].decode("utf-8", errors="replace"))
    lines = parse_lines(data, follow=False, start=rest)
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
