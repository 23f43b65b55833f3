"""Runs of a trackio project, read from its local SQLite database and followed as rows arrive.

trackio (Hugging Face; ``trackio.init/log/finish``) keeps each project in one SQLite file;
trackio's own ``SQLiteStorage.get_project_db_path`` says where (``TRACKIO_DIR``, by default
``~/.cache/huggingface/trackio``). Its reading API (``SQLiteStorage.get_logs``) returns a
run's whole history at each call, optionally thinned by stride to ``max_points`` (its
dashboard keeps at most 3000 rows per chart, losing spikes), and opens the file for
writing. So the rows are read here from trackio's schema directly, **read-only**
(``file:...?mode=ro``), and incrementally: table ``metrics`` has one row per ``log()``
call (``id`` autoincrement, ``run_name``, ``step``, ``timestamp`` ISO 8601, ``metrics`` a
JSON object with ``"NaN"``/``"Infinity"``/``"-Infinity"`` for non-finite values); each
poll reads the rows with an ``id`` above the last one read. Non-numeric entries (images,
tables, histograms) are passed over and counted in :attr:`TrackioSource.skipped`. Within
a run and metric, rows are delivered in ``id`` order (the order trackio wrote them),
with the same rule as MLflow's reader for steps that go back: a point whose step is
below the last one delivered is counted in ``skipped``.

Run labels are trackio's run names; :attr:`TrackioSource.params` maps them to the run's
config (table ``configs``; trackio's own ``_``-prefixed keys left out). A database that
does not exist yet makes :meth:`poll` return nothing, so a project can be followed
before its first run starts.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ._tail import Batch, Points, forward_mask

__all__ = ["TrackioSource", "trackio_db_path"]

ROWS_PER_READ = 50_000  # rows fetched per query, so one poll's memory stays bounded
_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def trackio_db_path(project: str) -> Path:
    """Where trackio keeps ``project``'s database (trackio's own answer; needs trackio installed)."""
    try:
        from trackio.sqlite_storage import SQLiteStorage
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("reading a trackio project by name needs trackio: pip install 'lossviz-widget[trackio]'"
                          ) from exc
    return Path(SQLiteStorage.get_project_db_path(project))


def _number(v: Any) -> float | None:
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str):
        return _NONFINITE.get(v)
    return None


def _epoch(timestamp: str) -> float:
    try:
        t = datetime.fromisoformat(timestamp)
    except (TypeError, ValueError):
        return math.nan
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return t.timestamp()


class TrackioSource:
    """One trackio project's runs: give ``project`` (found where trackio keeps it) or ``db_path``."""

    def __init__(self, project: str | None = None, *, db_path: str | os.PathLike[str] | None = None) -> None:
        if (project is None) == (db_path is None):
            raise TypeError("give exactly one of project (a trackio project name) and db_path")
        if project is not None and not isinstance(project, str):
            raise TypeError(f"project must be a str, got {type(project).__name__}")
        self.path = trackio_db_path(project) if project is not None else Path(db_path).expanduser()  # type: ignore[arg-type]
        self.skipped = 0
        self.notes: list[str] = []
        self._last_id = 0
        self._last_step: dict[tuple[str, str], float] = {}
        self._params: dict[str, dict[str, str]] = {}

    @property
    def params(self) -> dict[str, dict[str, str]]:
        """Run name -> its trackio config (as strings)."""
        return {k: dict(v) for k, v in list(self._params.items())}  # (polled on another thread)

    def poll(self) -> list[Batch]:
        """The rows written since the last poll (nothing while the database does not exist)."""
        if not self.path.exists():
            return []
        conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=10.0)
        try:
            points = Points(with_wall_times=True)
            while True:
                rows = conn.execute("SELECT id, run_name, step, timestamp, metrics FROM metrics WHERE id > ? "
                                    "ORDER BY id LIMIT ?", (self._last_id, ROWS_PER_READ)).fetchall()
                for row_id, run, step, timestamp, metrics in rows:
                    self._add_row(points, run, float(step), _epoch(timestamp), metrics)
                    self._last_id = row_id
                if len(rows) < ROWS_PER_READ:
                    break
            self._read_configs(conn)
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):  # created, not yet set up by trackio
                return []
            raise
        finally:
            conn.close()
        return self._batches(points)

    def _add_row(self, points: Points, run: str, step: float, wall: float, metrics: str | bytes) -> None:
        try:
            values = json.loads(metrics)
        except ValueError:
            self.skipped += 1
            return
        for name, v in values.items():
            x = _number(v)
            if x is None:
                self.skipped += 1
                continue
            points.add(name, step, x, wall, run)

    def _batches(self, points: Points) -> list[Batch]:
        out = []
        for (run, metric), steps, values, walls in points.items():
            last = self._last_step.get((run, metric), -math.inf)
            keep = forward_mask(steps, last)
            if not keep.all():
                self.skipped += int(len(keep) - keep.sum())
                steps, values, walls = steps[keep], values[keep], None if walls is None else walls[keep]
            if len(steps):
                self._last_step[run, metric] = float(steps[-1])
                out.append(Batch(run, metric, steps, values, walls))
        return out

    def _read_configs(self, conn: sqlite3.Connection) -> None:
        try:
            rows = conn.execute("SELECT run_name, config FROM configs").fetchall()
        except sqlite3.OperationalError:  # an older database without configs
            return
        for run, config in rows:
            try:
                data = json.loads(config)
            except ValueError:
                continue
            if isinstance(data, dict):
                self._params[run] = {str(k): str(v) for k, v in data.items() if not str(k).startswith("_")}

