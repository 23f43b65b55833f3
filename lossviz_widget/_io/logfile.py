"""``log_file=``: every logged value streamed to a JSON-lines file, for crash safety.

Points are appended at frame time (device tensors are fetched by then), flushed
to the OS at every frame and on close, so a killed kernel loses at most the
last frame. The first line is a header; every other line is one point::

    {"format": "lossviz_widget.jsonl", "version": 1, "title": "...", "settings": {...}}
    {"m": "loss", "s": 0.0, "v": 0.93, "t": 1764000000.123}
    {"r": "lr=1e-3", "m": "loss", "s": 0.0, "v": 0.91, "t": 1764000000.125}

``"r"`` is the run; lines of the default run leave it out.

Reading skips lines cut mid-write (or otherwise corrupt) and counts them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO, Any

from .._model import DEFAULT_RUN, RunData, RunsData
from .data_files import check_file_name, float_from_json, histories, json_float

__all__ = ["LogWriter", "parse_header", "parse_point", "read_log"]

LOG_FORMAT = "lossviz_widget.jsonl"


class LogWriter:
    """Appends the points of each frame that are not on disk yet."""

    def __init__(self, path: str | os.PathLike[str], *, title: str, settings: dict[str, Any],
                 already_written: dict[tuple[str, str], int] | None = None) -> None:
        self.path = Path(path).expanduser()
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
            self._file: IO[str] | None = self.path.open("a", encoding="utf-8")
        except OSError as exc:
            raise PermissionError(f"cannot write log file {str(self.path)!r}: {exc.strerror}") from exc
        self._written: dict[tuple[str, str], int] = dict(already_written or {})  # (run, metric) -> points
        if resume and self.path.stat().st_size and not self._ends_with_newline():
            self._file.write("\n")  # the last line was cut mid-write: never glue new data onto it
        if not resume:
            header = {"format": LOG_FORMAT, "version": 1, "title": title, "settings": settings}
            self._file.write(json.dumps(header, ensure_ascii=False) + "\n")
            self._file.flush()

    def _ends_with_newline(self) -> bool:
        with self.path.open("rb") as f:
            f.seek(-1, os.SEEK_END)
            return f.read(1) == b"\n"

    def write_new(self, data: RunsData) -> None:
        """Append every point not yet written, then flush (called once per frame)."""
        f = self._file
        if f is None:
            return
        lines = []
        for run, metrics in data.items():
            prefix = "" if run == DEFAULT_RUN else f'"r": {json.dumps(run, ensure_ascii=False)}, '
            for name, h in metrics.items():
                start = self._written.get((run, name), 0)
                if start == len(h):
                    continue
                key = prefix + '"m": ' + json.dumps(name, ensure_ascii=False)
                for s, v, t in zip(h.steps[start:].tolist(), h.values[start:].tolist(),
                                   h.wall_time[start:].tolist()):
                    lines.append(f'{{{key}, "s": {s!r}, "v": {json.dumps(json_float(v))}, "t": {t!r}}}\n')
                self._written[run, name] = len(h)
        if lines:
            f.write("".join(lines))
            f.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def parse_header(line: str) -> tuple[str, dict[str, Any]]:
    """Title and settings from a log's first line; ``ValueError`` if it is not our header."""
    try:
        header = json.loads(line) if line.strip() else None
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("format") != LOG_FORMAT:
        raise ValueError(f'first line must be a header with "format": "{LOG_FORMAT}"')
    return str(header.get("title", "")), dict(header.get("settings", {}))


def parse_point(line: str) -> tuple[str, str, float, float, float] | None:
    """``(run, metric, step, value, wall_time)`` of one point line, or ``None`` if it is cut or corrupt."""
    try:
        rec = json.loads(line)
        run, name = check_file_name("run", rec.get("r", DEFAULT_RUN)), check_file_name("metric", rec["m"])
        return run, name, float(rec["s"]), float_from_json(rec["v"]), float(rec["t"])
    except (ValueError, KeyError, TypeError, AttributeError):
        return None  # typically the last line, cut mid-write by a killed process


def read_log(path: Path) -> RunData:
    """Read a log file; incomplete/corrupt lines are skipped and counted in ``skipped_lines``."""
    columns: dict[tuple[str, str], tuple[list[float], list[float], list[float]]] = {}
    skipped = 0
    with path.open(encoding="utf-8", errors="replace") as f:
        title, settings = parse_header(f.readline())
        for line in f:
            point = parse_point(line)
            if point is None:
                skipped += 1
                continue
            cols = columns.setdefault(point[:2], ([], [], []))
            cols[0].append(point[2])
            cols[1].append(point[3])
            cols[2].append(point[4])
    return RunData(histories(columns), title, settings, skipped)
