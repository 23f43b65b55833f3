"""Files from a recorder and back: one table from suffix to writer, one from suffix to reader.

* images (``.png``/``.svg``/``.pdf``): the current view rendered in the kernel (:mod:`.images`),
* ``.html``: a self-contained report page (:mod:`.report`),
* data (``.csv``/``.json``/``.npz``): every value at full resolution (:mod:`.data_files`),
* reading also takes the ``.jsonl`` log (:mod:`.logfile`).

Every file is written to a temporary name and renamed into place (:func:`.files.atomic_write`),
so a failure never leaves a half-written file where a good one was.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from .._core.recorder import Recorder
from .._model import RunData
from .data_files import read_csv, read_json, read_npz, write_data
from .files import atomic_write, check_suffix
from .logfile import LOG_SUFFIX, read_log

__all__ = ["EXPORT_SUFFIXES", "IMAGE_SUFFIXES", "LOAD_SUFFIXES", "ExportOptions", "export", "read_file"]


@dataclass(frozen=True)
class ExportOptions:
    """What a written file shows besides the data: the title, the saved settings, the image size."""

    title: str = ""
    settings: dict[str, Any] | None = None
    width: float = 10.0  # inches
    height: float | None = None  # inches; None: from the number of panels
    dpi: float = 150


Writer = Callable[[Recorder, ExportOptions, IO[bytes]], None]


def _image(fmt: str) -> Writer:
    def write(rec: Recorder, o: ExportOptions, f: IO[bytes]) -> None:
        from .images import image_bytes  # matplotlib: imported only when an image is made

        f.write(image_bytes(rec.frame(), fmt, title=o.title, width=o.width, height=o.height, dpi=o.dpi))

    return write


def _report(rec: Recorder, o: ExportOptions, f: IO[bytes]) -> None:
    from .report import render_report

    page = render_report(rec.frame(), rec.data(), title=o.title, settings=o.settings or {}, findings=rec.diagnose())
    f.write(page.encode("utf-8"))


def _data(suffix: str) -> Writer:
    def write(rec: Recorder, o: ExportOptions, f: IO[bytes]) -> None:
        write_data(f, suffix, RunData(rec.data(), o.title, dict(o.settings or {})))

    return write


IMAGE_SUFFIXES = (".png", ".svg", ".pdf")
WRITERS: dict[str, Writer] = {
    **{s: _image(s[1:]) for s in IMAGE_SUFFIXES},
    ".html": _report,
    **{s: _data(s) for s in (".csv", ".json", ".npz")},
}
EXPORT_SUFFIXES = tuple(WRITERS)
READERS: dict[str, Callable[[Path], RunData]] = {
    ".csv": read_csv, ".json": read_json, ".npz": read_npz, LOG_SUFFIX: read_log,
}
LOAD_SUFFIXES = tuple(READERS)


def export(rec: Recorder, path: str | os.PathLike[str], options: ExportOptions) -> Path:
    """Write ``rec`` to ``path`` in the format its suffix names; returns the path."""
    p, suffix = check_suffix(path, EXPORT_SUFFIXES, "export to")
    writer = WRITERS[suffix]
    return atomic_write(p, lambda f: writer(rec, options, f))


def read_file(path: str | os.PathLike[str]) -> RunData:
    """Read a data file or log (``.csv``/``.json``/``.npz``/``.jsonl``); ``ValueError`` naming the path
    if it is not valid, ``FileNotFoundError``/``IsADirectoryError`` for a wrong path."""
    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"cannot load {str(p)!r}: no such file")
    if p.is_dir():
        raise IsADirectoryError(f"cannot load {str(p)!r}: it is a folder")
    p, suffix = check_suffix(p, LOAD_SUFFIXES, "load")
    try:
        return READERS[suffix](p)
    except (ValueError, KeyError, TypeError, OSError, EOFError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        if isinstance(exc, (FileNotFoundError, PermissionError)):
            raise
        raise ValueError(f"cannot load {str(p)!r}: not a valid lossviz {suffix} file "
                         f"({type(exc).__name__}: {exc})") from exc
