"""Several runs in one plot: one :class:`~lossviz_widget._core.store.MetricStore` per run name.

A run is a named set of metrics (``"lr=1e-3"``, ``"seed 2"``). Each run has its own
store, lock and implicit step counter, so logging to one run never waits for or
reorders another, and the default run (``log()`` without ``run=``) keeps the
single-run hot path exactly as it was: :attr:`RunStores.default` is a plain store.

Runs are listed in the order their first metric appeared (not the order their
names were first mentioned), so a run that was only looked up stays invisible.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from .._model import DEFAULT_RUN, MetricHistory, RunsData
from .rewind import Rewind, check_on_rewind
from .scheduler import Deadline
from .settings import check_run
from .store import History, MetricStore

__all__ = ["DEFAULT_RUN", "Run", "RunStores", "check_run"]

class RunStores:
    """The stores of one plot's runs. Thread-safe: runs may be created from any thread.

    ``on_rewind`` is what a step rewind does in every run (:mod:`.rewind`). With ``"new_run"``
    a rewound run goes on as ``"<run> (resumed k)"``: logging to ``<run>`` goes there from then
    on (:meth:`get` follows), and ``on_new_default(store)`` is told when that happens to the
    default run (the recorder's hot path holds the default store).
    """

    def __init__(self, on_rewind: str = "purge", on_new_default: Callable[[MetricStore], None] | None = None,
                 deadline: Deadline | None = None) -> None:
        self.on_rewind = check_on_rewind(on_rewind)
        self._deadline = deadline or Deadline()  # when a frame is overdue: every store's log() checks it
        self._on_new_default = on_new_default
        self._lock = threading.Lock()
        self._resumed_from: dict[str, str] = {}  # "<run> (resumed k)" -> "<run>"
        self.default = self._new_store(DEFAULT_RUN)
        self._stores: dict[str, MetricStore] = {DEFAULT_RUN: self.default}

    def _new_store(self, run: str) -> MetricStore:
        return MetricStore(run, self.on_rewind, self._successor, self._deadline)

    def _successor(self, old: MetricStore) -> MetricStore:
        """The new run a rewound run ``old`` goes on in: ``"<run> (resumed k)"``, k from 1."""
        root = old.run
        while (base := self._resumed_from.get(root)) is not None:
            root = base
        with self._lock:
            k = 1
            while f"{root} (resumed {k})" in self._stores:
                k += 1
            name = f"{root} (resumed {k})"
            store = self._stores[name] = self._new_store(name)
            self._resumed_from[name] = root
        if old is self.default:
            self.default = store
            if self._on_new_default is not None:
                self._on_new_default(store)
        return store

    def get(self, run: Any) -> MetricStore:
        """The store ``run`` logs to (created empty on first use; after a rewind with
        ``on_rewind="new_run"``, the run it goes on in); ``run`` is validated."""
        store = self._stores.get(run) if type(run) is str else None
        if store is None:
            name = check_run(run)
            with self._lock:
                store = self._stores.get(name)
                if store is None:
                    store = self._stores[name] = self._new_store(name)
        while store.successor is not None:
            store = store.successor
        return store

    def names(self) -> tuple[str, ...]:
        """Runs holding at least one metric, in the order their first metric appeared."""
        held = [(s.first_logged, name) for name, s in list(self._stores.items()) if s.first_logged is not None]
        return tuple(name for _, name in sorted(held))

    def snapshot(self) -> RunsData:
        """Every run's :meth:`MetricStore.snapshot`, runs in :meth:`names` order."""
        return self.snapshot_with_rewinds()[0]

    def snapshot_with_rewinds(self) -> tuple[RunsData, dict[str, tuple[Rewind, ...]]]:
        """:meth:`snapshot`, and each run's rewinds up to its snapshot (consistent per run)."""
        data: RunsData = {}
        rewinds: dict[str, tuple[Rewind, ...]] = {}
        for name in self.names():
            data[name], rewinds[name] = self._stores[name].snapshot_with_rewinds()
        return data, rewinds

    @property
    def t0(self) -> float | None:
        """Wall time of the first value of any run (the origin of relative time)."""
        starts = [s.t0 for s in list(self._stores.values()) if s.t0 is not None]
        return min(starts, default=None)

    def load(self, runs: Mapping[str, Mapping[str, MetricHistory]]) -> None:
        """Fill empty stores from a file's runs (in the file's order)."""
        if self.names():
            raise ValueError("can only load into an empty plot")
        for run, metrics in runs.items():
            self.get(run).load(metrics)

    def primary(self) -> tuple[str, MetricStore]:
        """What ``LossPlot.history`` shows: the only run when exactly one holds data, else the default run."""
        names = self.names()
        run = names[0] if len(names) == 1 else DEFAULT_RUN
        return run, self._stores[run]


class Run:
    """A handle that logs to one run: ``plot.run("lr=1e-3")`` (or ``recorder.run(...)``).

    ``run.log(...)`` and ``run.extend(...)`` are ``plot.log(..., run=name)`` and
    ``plot.extend(..., run=name)``; ``run.history`` is that run's full-resolution data. It holds
    the run's store and the recorder's callbacks, not the plot.
    """

    __slots__ = ("_changed", "_log_into", "_names", "_store", "name")

    def __init__(self, name: str, store: MetricStore,
                 log_into: Callable[[MetricStore, Mapping[str, Any] | None, Any, dict[str, Any]], None],
                 changed: Callable[[], None], names: Callable[[], tuple[str, ...]]) -> None:
        self.name = name
        self._store = store
        self._log_into = log_into
        self._changed = changed
        self._names = names

    def log(self, metrics: Mapping[str, Any] | None = None, /, *, step: float | None = None, **values: Any) -> None:
        """:meth:`LossPlot.log` for this run (here ``run=`` is an ordinary metric name)."""
        self._log_into(self._store, metrics, step, values)

    def extend(self, metric: str, steps: Any, values: Any, wall_time: Any = None) -> None:
        """:meth:`LossPlot.extend` for this run."""
        self._store.extend(metric, steps, values, wall_time)
        self._changed()

    @property
    def history(self) -> History:
        """This run's data: ``run.history["loss"].steps / .values / .wall_time``."""
        return History(self._store, self.name, self._names())

    def __repr__(self) -> str:
        return f"Run({self.name!r}, metrics={self._store.names()!r})"
