"""Safe file writing: a failed or interrupted export never replaces a good file.

Everything is written to a temporary file in the target folder, fsynced, then
renamed over the target (``os.replace`` is atomic on POSIX and Windows). Errors
name the path and say what is wrong (missing folder, read-only location...).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

__all__ = ["atomic_write", "check_suffix"]


def check_suffix(path: str | os.PathLike[str], allowed: tuple[str, ...], what: str) -> tuple[Path, str]:
    """Return ``(path, suffix)`` or raise ``ValueError`` listing the formats that work."""
    p = Path(path).expanduser()
    suffix = p.suffix.lower()
    if suffix not in allowed:
        raise ValueError(f"cannot {what} {str(p)!r}: unknown suffix {suffix or '(none)'!r}; "
                         f"use one of {', '.join(allowed)}")
    return p, suffix


def _default_mode(target: Path) -> int:
    try:
        return target.stat().st_mode & 0o777  # keep the mode of the file being replaced
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def atomic_write(path: Path, write: Callable[[IO[bytes]], object]) -> Path:
    """Call ``write(file)`` on a temporary file next to ``path``, then rename it into place."""
    folder = path.parent
    if not folder.is_dir():
        raise FileNotFoundError(f"cannot write {str(path)!r}: folder {str(folder)!r} does not exist")
    if path.is_dir():
        raise IsADirectoryError(f"cannot write {str(path)!r}: it is a folder")
    try:
        fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise PermissionError(f"cannot write {str(path)!r}: {str(folder)!r} is not writable ({exc.strerror})") from exc
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _default_mode(path))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
