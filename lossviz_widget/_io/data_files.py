"""Full-resolution data files: ``.csv``, ``.json``, ``.npz`` (the ``.jsonl`` log is :mod:`.logfile`;
which suffix goes where is :mod:`.export`).

Every format keeps every logged value exactly (floats are written as their
shortest round-trip text, or as raw float64 in ``.npz``), NaN and +/-Inf
included, and reads back to identical arrays. ``.json`` and ``.npz`` also keep
the title and view settings. Nothing is pickled: ``.npz`` holds plain float64
arrays plus a JSON string, and is read with ``allow_pickle=False``.

Every format keeps the runs apart (see :mod:`lossviz_widget._core.runs`), in their
order: CSV is long format, one row per point: ``run,metric,step,value,wall_time``;
``.json`` maps ``runs -> run -> metric -> columns``; ``.npz`` lists each run's
metrics in its JSON ``meta`` (files written before runs existed, with one
``"run"``, still load).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

import numpy as np

from .._model import DEFAULT_RUN, MetricHistory, RunData, RunsData

__all__ = [
    "CSV_HEADER",
    "NONFINITE",
    "check_file_name",
    "csv_bytes",
    "float_from_json",
    "floats_from_json",
    "histories",
    "json_float",
    "json_safe_floats",
    "make_history",
    "read_csv",
    "read_json",
    "read_npz",
    "write_data",
]

FORMAT = "lossviz_widget"
VERSION = 1
CSV_HEADER = ["run", "metric", "step", "value", "wall_time"]



NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}  # strict JSON's non-finite floats


def json_float(v: float) -> float | str:
    """A float as strict JSON: NaN/Inf become the strings "NaN", "Infinity", "-Infinity"."""
    if math.isfinite(v):
        return v
    return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")


def float_from_json(v: Any) -> float:
    if isinstance(v, str):
        try:
            return NONFINITE[v]
        except KeyError:
            raise ValueError(f"not a number: {v!r}") from None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"not a number: {v!r}")
    return float(v)


def json_safe_floats(a: np.ndarray | Iterable[float]) -> list[float | str]:
    """A 1-D float array as a JSON-ready list: finite values as floats, NaN/+-Inf as strings.

    JSON has no NaN or Infinity (``json.dumps`` would write invalid JSON), so they become
    "NaN", "Infinity", "-Infinity": the spelling JavaScript's ``Number()`` and Python's
    ``float()`` both read back. Finite values stay floats, written with ``repr`` (exact).
    """
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"json_safe_floats expects a 1-D array, got shape {arr.shape}")
    out: list[float | str] = arr.tolist()
    for i in np.flatnonzero(~np.isfinite(arr)).tolist():
        out[i] = json_float(out[i])
    return out


def floats_from_json(values: Iterable[Any]) -> np.ndarray:
    """The inverse of :func:`json_safe_floats`: a float64 array with NaN/+-Inf restored."""
    return np.array([float_from_json(v) for v in values], dtype=np.float64)


def csv_bytes(data: RunData) -> bytes:
    """The ``.csv`` export as bytes (the HTML report embeds the same file)."""
    buf = io.BytesIO()
    write_data(buf, ".csv", data)
    return buf.getvalue()


def make_history(steps: Iterable[float], values: Iterable[float], wall: Iterable[float], name: str) -> MetricHistory:
    s = np.asarray(list(steps) if not isinstance(steps, np.ndarray) else steps, dtype=np.float64)
    v = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=np.float64)
    w = np.asarray(list(wall) if not isinstance(wall, np.ndarray) else wall, dtype=np.float64)
    if not (len(s) == len(v) == len(w)):
        raise ValueError(f"metric {name!r}: steps, values and wall_time have different lengths")
    if len(s) and (not np.isfinite(s).all() or (np.diff(s) < 0).any()):
        raise ValueError(f"metric {name!r}: steps must be finite and non-decreasing")
    for a in (s, v, w):
        a.flags.writeable = False
    return MetricHistory(s, v, w)


# -- writing --------------------------------------------------------------------------------


def write_data(f: IO[bytes], suffix: str, data: RunData) -> None:
    """Serialize ``data`` to an open binary file in the format of ``suffix``."""
    if suffix == ".csv":
        text = io.TextIOWrapper(f, encoding="utf-8", newline="")
        writer = csv.writer(text)
        writer.writerow(CSV_HEADER)
        for run, name, h in _series(data):
            # repr() is the shortest text that parses back to the same float (nan/inf included)
            writer.writerows(
                (run, name, repr(s), repr(v), repr(t))
                for s, v, t in zip(h.steps.tolist(), h.values.tolist(), h.wall_time.tolist())
            )
        text.flush()
        text.detach()
    elif suffix == ".json":
        doc = {
            "format": FORMAT, "version": VERSION, "title": data.title, "settings": data.settings,
            "runs": {run: {name: {"steps": h.steps.tolist(), "values": json_safe_floats(h.values),
                                  "wall_time": h.wall_time.tolist()}
                           for name, h in metrics.items()}
                     for run, metrics in data.runs.items()},
        }
        f.write(json.dumps(doc, allow_nan=False, ensure_ascii=False).encode("utf-8"))
    elif suffix == ".npz":
        # "runs": each run's metric names; the arrays m0_*, m1_*, ... follow that order
        meta = {"format": FORMAT, "version": VERSION, "title": data.title, "settings": data.settings,
                "runs": [[run, list(metrics)] for run, metrics in data.runs.items()]}
        arrays: dict[str, np.ndarray] = {"meta": np.array(json.dumps(meta, ensure_ascii=False))}
        for i, (_, _, h) in enumerate(_series(data)):
            arrays[f"m{i}_steps"], arrays[f"m{i}_values"], arrays[f"m{i}_wall_time"] = h.steps, h.values, h.wall_time
        # mypy matches **arrays against savez_compressed's own ``allow_pickle: bool`` keyword too
        np.savez_compressed(f, **arrays)  # type: ignore[arg-type]
    else:
        raise ValueError(f"no data writer for {suffix!r}")


def _series(data: RunData) -> Iterable[tuple[str, str, MetricHistory]]:
    return ((run, name, h) for run, metrics in data.runs.items() for name, h in metrics.items())


# -- reading --------------------------------------------------------------------------------


def check_file_name(kind: str, name: Any) -> str:
    """A run or metric name read from a file: a non-empty string."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"{kind} name must be a non-empty string, got {name!r}")
    return name


def histories(columns: dict[tuple[str, str], tuple[list[float], list[float], list[float]]]) -> RunsData:
    """Runs of histories from ``(run, metric) -> (steps, values, wall times)`` columns, in their order."""
    runs: RunsData = {}
    for (run, name), cols in columns.items():
        runs.setdefault(run, {})[name] = make_history(*cols, name)
    return runs


def read_csv(path: Path) -> RunData:
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, None) or []
        # columns are matched by name: a table that went through pandas (an index column first)
        # or a spreadsheet (columns reordered, one added) still loads; other columns are ignored
        missing = [name for name in CSV_HEADER if name not in header]
        if missing:
            raise ValueError(f"header must be {','.join(CSV_HEADER)} (in any order, other columns ignored; "
                             f"missing: {','.join(missing)}), got {header}")
        at = [header.index(name) for name in CSV_HEADER]
        width = len(header)
        columns: dict[tuple[str, str], tuple[list[float], list[float], list[float]]] = {}
        for line, row in enumerate(reader, start=2):
            if len(row) != width:
                raise ValueError(f"line {line}: expected {width} fields, got {len(row)}")
            run, metric, step, value, wall = (row[i] for i in at)
            key = (run, metric)
            cols = columns.get(key)
            if cols is None:
                check_file_name("run", run)
                check_file_name("metric", metric)
                cols = columns[key] = ([], [], [])
            cols[0].append(float(step))
            cols[1].append(float(value))
            cols[2].append(float(wall))
    return RunData(histories(columns))


def read_json(path: Path) -> RunData:
    doc = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"missing \"format\": \"{FORMAT}\"")
    runs: RunsData = {}
    for run, metrics in doc["runs"].items():
        runs[check_file_name("run", run)] = {
            check_file_name("metric", name): make_history(m["steps"], floats_from_json(m["values"]),
                                                          m["wall_time"], name)
            for name, m in metrics.items()
        }
    return RunData(runs, str(doc.get("title", "")), dict(doc.get("settings", {})))


def read_npz(path: Path) -> RunData:
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        if meta.get("format") != FORMAT:
            raise ValueError(f"missing \"format\": \"{FORMAT}\"")
        layout = meta["runs"] if "runs" in meta else [[meta.get("run", DEFAULT_RUN), meta["metrics"]]]
        runs: RunsData = {}
        i = 0
        for run, names in layout:
            metrics = runs[check_file_name("run", run)] = {}
            for name in names:
                metrics[check_file_name("metric", name)] = make_history(
                    z[f"m{i}_steps"], z[f"m{i}_values"], z[f"m{i}_wall_time"], name)
                i += 1
    return RunData(runs, str(meta.get("title", "")), dict(meta.get("settings", {})))
