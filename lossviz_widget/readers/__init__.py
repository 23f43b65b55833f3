"""Training logs written by other tools, read once or followed as they grow.

Formats (each in its own module; the framework, where one is needed, is imported only
when a file of its format is opened):

* TensorBoard event files (``*tfevents*``; :mod:`.tensorboard`, TensorBoard's own loader),
* Keras ``CSVLogger`` files (:mod:`.keras_csv`),
* Lightning ``CSVLogger`` ``metrics.csv`` (:mod:`.lightning_csv`),
* this package's ``log_file=`` JSON lines (:mod:`.jsonl`).

Tracking servers are read by sources of their own, which a follower polls like a
:class:`LogSource` (``poll() -> list[Batch]``): MLflow through its client (:mod:`.mlflow`)
and trackio's local SQLite database (:mod:`.trackio`).

A :class:`LogSource` is one path given by the user: a log file, or a folder searched
(subfolders included, hidden ones skipped) for log files at every poll, so runs that
appear later are found. Runs are named after where their logs sit relative to that
folder: TensorBoard and Lightning write one folder per run, so the run is the file's
folder (``"a"``, ``"lightning_logs/version_0"``); Keras and ``log_file`` logs are one file
per run, so the run is the file's path without suffix (``"fit"``, ``"b/fit"``). A log
directly in the given folder (or given itself) is named after that folder (TensorBoard,
Lightning) or the file's stem. Each poll returns :class:`Batch` es of the points
appended since the last poll (see :mod:`._tail` for how rewrites are handled).
"""

from __future__ import annotations

import os
from pathlib import Path

from ._tail import Batch, Tail

__all__ = ["FORMATS", "Batch", "LogSource", "Tail", "detect_format", "read_logs"]

FORMATS = ("tensorboard", "keras_csv", "lightning_csv", "jsonl")
_ONE_FOLDER_PER_RUN = ("tensorboard", "lightning_csv")
_DESCRIBED = "TensorBoard event files, Keras or Lightning CSVLogger .csv files, lossviz_widget .jsonl logs"


def detect_format(path: str | os.PathLike[str]) -> str:
    """One of :data:`FORMATS`; ``"pending"`` while that cannot be told yet (the file is
    missing or its first line is not complete); ``"unknown"`` for anything else."""
    p = Path(path)
    from .tensorboard import is_event_file

    if is_event_file(p.name):
        return "tensorboard"
    suffix = p.suffix.lower()
    if suffix not in (".csv", ".jsonl"):
        return "unknown"
    try:
        with open(p, "rb") as f:
            first = f.readline(1 << 16)
    except FileNotFoundError:
        return "pending"
    if not first.endswith(b"\n"):
        return "pending"
    line = first.decode("utf-8", errors="replace").strip()
    if suffix == ".jsonl":
        from .._io.logfile import parse_header

        try:
            parse_header(line)
        except ValueError:
            return "unknown"
        return "jsonl"
    from . import keras_csv, lightning_csv
    from ._csv import csv_columns

    columns = csv_columns(line)
    if lightning_csv.matches(columns):
        return "lightning_csv"
    return "keras_csv" if keras_csv.matches(columns) else "unknown"


def _open_tail(path: Path, fmt: str, run: str) -> Tail:
    cls: type[Tail]
    if fmt == "tensorboard":
        from .tensorboard import TensorBoardTail as cls
    elif fmt == "keras_csv":
        from .keras_csv import KerasCsvTail as cls
    elif fmt == "lightning_csv":
        from .lightning_csv import LightningCsvTail as cls
    else:
        from .jsonl import JsonlTail as cls
    return cls(path, run)


class LogSource:
    """One followed path: a log file, or a folder of runs (see the module docstring).

    The path need not exist yet: until it does, :meth:`poll` returns nothing. A file given
    directly in a format that is not a log raises ``ValueError``; unknown files in a folder
    are passed over.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.root = Path(path).expanduser()
        self.tails: dict[Path, Tail] = {}
        self._passed_over: set[Path] = set()

    def poll(self) -> list[Batch]:
        """Find new log files, then return the points appended to any of them since the last poll."""
        for path in self._candidates():
            if path in self.tails or path in self._passed_over:
                continue
            fmt = detect_format(path)
            if fmt == "pending":
                continue
            if fmt == "unknown":
                if path == self.root:
                    raise ValueError(f"cannot read {str(path)!r}: not a known log format (expected {_DESCRIBED})")
                self._passed_over.add(path)
                continue
            self.tails[path] = _open_tail(path, fmt, self._run_name(path, fmt))
        return [batch for tail in list(self.tails.values()) for batch in tail.poll()]

    @property
    def skipped(self) -> int:
        """Lines, records or cells passed over because they held no number, over all files."""
        return sum(t.skipped for t in self.tails.values())

    def _candidates(self) -> list[Path]:
        if self.root.is_file():
            return [self.root]
        found: list[Path] = []
        for folder, subfolders, files in os.walk(self.root):
            subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
            found.extend(Path(folder, name) for name in sorted(files) if not name.startswith("."))
        return found

    def _run_name(self, path: Path, fmt: str) -> str:
        base = self.root if self.root.is_dir() else self.root.parent
        if fmt in _ONE_FOLDER_PER_RUN:
            rel = path.parent.relative_to(base).as_posix()
            return base.resolve().name if rel == "." else rel
        return path.relative_to(base).with_suffix("").as_posix()


def read_logs(path: str | os.PathLike[str]) -> tuple[list[Batch], LogSource]:
    """Everything in the logs at ``path`` (a log file or a folder of runs), read once.

    Raises ``FileNotFoundError`` if ``path`` does not exist and ``ValueError`` if it holds
    no log in a known format. A record cut mid-write at the end of a file is left out.
    """
    source = LogSource(path)
    if not source.root.exists():
        raise FileNotFoundError(f"cannot read logs from {str(source.root)!r}: no such file or folder")
    batches = source.poll()
    if not source.tails:
        raise ValueError(f"no logs found in {str(source.root)!r} (looked for {_DESCRIBED})")
    return batches, source
