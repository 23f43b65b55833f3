"""The set of metrics of one plot: atomic, validated, thread-safe logging.

``log()`` validates every value of a call before appending any, so a bad value
never leaves a half-logged step behind, and the data already logged stays
intact. One lock guards all buffers; it is held only for the appends.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

from ._values import check_name, coerce_step, coerce_value
from .buffers import MetricBuffer, MetricHistory

__all__ = ["MetricStore", "History"]


class MetricStore:
    """Per-metric buffers in order of first appearance, plus the implicit step counter."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._buffers: dict[str, MetricBuffer] = {}
        self._last_step = -1.0  # the largest step logged so far, for implicit steps
        self.t0: float | None = None  # wall time of the first log, for relative time

    def log(self, metrics: Mapping[str, Any], step: Any = None) -> None:
        """Append one value per metric at ``step`` (next step after the largest so far if None)."""
        wall = time.time()
        items = [(check_name(k), coerce_value(k, v)) for k, v in metrics.items()]
        explicit = None if step is None else coerce_step(step)
        with self.lock:
            s = self._last_step + 1.0 if explicit is None else explicit
            buffers = self._buffers
            for name, _ in items:
                buf = buffers.get(name)
                if buf is not None and s < buf.last_step:
                    raise ValueError(
                        f"metric {name!r}: step {s:g} goes backwards (last logged step is {buf.last_step:g}); "
                        "steps must be non-decreasing per metric. Nothing from this call was logged."
                    )
            for name, value in items:
                buf = buffers.get(name)
                if buf is None:
                    buf = buffers[name] = MetricBuffer()
                buf.append(s, value, wall)
            if s > self._last_step:
                self._last_step = s
            if self.t0 is None and items:
                self.t0 = wall

    def load(self, metrics: Mapping[str, MetricHistory]) -> None:
        """Append whole histories (from a file) to an empty store."""
        with self.lock:
            if self._buffers:
                raise ValueError("can only load into an empty plot")
            for name, history in metrics.items():
                check_name(name)
                buf = self._buffers[name] = MetricBuffer()
                buf.extend(history)
                if len(history):
                    self._last_step = max(self._last_step, float(history.steps[-1]))
                    first = float(history.wall_time[0])
                    self.t0 = first if self.t0 is None else min(self.t0, first)

    def names(self) -> list[str]:
        with self.lock:
            return list(self._buffers)

    def snapshot(self) -> dict[str, MetricHistory]:
        """Consistent read-only views of every metric (device values fetched first)."""
        with self.lock:
            return {name: buf.snapshot() for name, buf in self._buffers.items()}

    def get(self, name: str) -> MetricHistory:
        with self.lock:
            return self._buffers[name].snapshot()

    def __len__(self) -> int:
        return len(self._buffers)

    def __contains__(self, name: object) -> bool:
        return name in self._buffers


class History(Mapping[str, MetricHistory]):
    """Read-only mapping ``metric name -> MetricHistory`` over a live store."""

    def __init__(self, store: MetricStore) -> None:
        self._store = store

    def __getitem__(self, name: str) -> MetricHistory:
        try:
            return self._store.get(name)
        except KeyError:
            known = ", ".join(map(repr, self._store.names())) or "none yet"
            raise KeyError(f"no metric {name!r} has been logged (known: {known})") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._store.names())

    def __len__(self) -> int:
        return len(self._store)

    def __contains__(self, name: object) -> bool:
        return name in self._store

    def __repr__(self) -> str:
        inner = ", ".join(f"{k!r}: {len(v)} points" for k, v in self.items())
        return f"History({{{inner}}})"
