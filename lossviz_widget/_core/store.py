"""The set of metrics of one plot: atomic, validated, thread-safe logging.

``log()`` validates every value of a call before appending any, so a bad value
never leaves a half-logged step behind, and the data already logged stays
intact. One lock guards all buffers; it is held only for the appends.

The hot path. A training loop calls ``log()`` with the same metric names, in
the same order, every step, usually as Python floats. Such a call is matched to
its :class:`_Group` (the metric names of the call, in order) by one dict lookup,
each value is checked to be a ``float`` by one type test, and the call's point
is staged as ``step, wall, v1, ..., vk`` at the end of the group's flat Python
list: no per-value function call and no NumPy scalar assignment (each costs
about as much as the whole minimal logger). Staged rows move into the
per-metric NumPy columns in bulk when a frame (or ``history``, an export, ...)
takes a :meth:`MetricStore.snapshot`, or inline once a group holds
``_STAGE_ROWS`` rows, so staging never holds more than about one frame of
points. Anything else (tensors, NumPy or ``int`` values, a new set of names, a
step below the largest so far, any bad input) takes the general path, which
validates exactly as before and then stages the same way (device tensors,
which must not be read in ``log()``, go straight to their buffers).

Ordering: a metric's staged points live in exactly one group at a time (its
``_owner``); a call of another group that logs the same metric first moves the
owner's rows into the columns. So each metric's points reach its columns in
the order they were logged.

Memory: a group's rows go to its metrics together (:func:`~.buffers.extend_rows`),
so the metrics of a group share one step/wall-time timeline as long as they are
always logged together; see :mod:`.buffers` for when they stop sharing.
"""

from __future__ import annotations

import itertools
import struct
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

from .._model import DEFAULT_RUN, MetricHistory
from .buffers import MetricBuffer, append_row, columns_nbytes, extend_rows, truncate_at
from .rewind import Rewind, check_on_rewind
from .scheduler import Deadline
from .values import DeferredValue, check_name, coerce_array, coerce_step, coerce_value

__all__ = ["History", "MetricStore"]

_STAGE_ROWS = 1 << 13  # staged rows per group before they are moved into the columns inline
_SMALL_MOVE = 4  # rows up to which a move appends point by point
_f64 = np.float64  # a float subclass: staged as is (NumPy converts it exactly)
_INF = float("inf")
_time = time.time
_first_logged = itertools.count()  # orders stores (runs) by when their first metric appeared


class _Group:
    """Calls that log the same metric names in the same order, staged as one flat list of floats."""

    __slots__ = ("buffers", "exclusive", "limit", "names", "rows", "width")

    def __init__(self, names: tuple[str, ...], buffers: list[MetricBuffer], exclusive: bool) -> None:
        self.names = names
        self.buffers = buffers
        self.width = len(names) + 2  # step, wall, one value per metric
        self.rows: list[float] = []
        self.limit = _STAGE_ROWS * self.width
        # its metrics were never logged any other way (no other group, extend, load or purge): their
        # last step is the group's own, so a call below the store's largest step (another thread's
        # loop ahead of this one) is checked here, without the general path
        self.exclusive = exclusive


class MetricStore:
    """Per-metric buffers in order of first appearance, plus the implicit step counter.

    ``run`` names the run (in :class:`~.rewind.Rewind` records); ``on_rewind`` is what a step
    rewind does (:mod:`.rewind`); with ``"new_run"``, ``successor(self)`` makes the store the run
    continues in, and from then on this store forwards every call to it.
    """

    def __init__(self, run: str = DEFAULT_RUN, on_rewind: str = "purge",
                 successor: Callable[[MetricStore], MetricStore] | None = None,
                 deadline: Deadline | None = None) -> None:
        self.run = run
        self._deadline = deadline or Deadline()  # a pending frame overdue from then: see log_kwargs
        self.on_rewind = check_on_rewind(on_rewind)
        self._make_successor = successor
        self.successor: MetricStore | None = None  # set once a rewind made a new run of this one
        self.rewinds: list[Rewind] = []  # in order; appended under the lock (see snapshot_with_rewinds)
        self.lock = threading.Lock()
        self._buffers: dict[str, MetricBuffer] = {}
        self._last_step = -1.0  # the largest step logged so far, for implicit steps
        self.t0: float | None = None  # wall time of the first log, for relative time
        self._groups: dict[tuple[str, ...], _Group] = {}
        self._owner: dict[str, _Group] = {}  # metric -> the group that may hold staged points of it
        self._staged: dict[_Group, None] = {}  # groups given rows since the last full move (an ordered set)
        self.first_logged: int | None = None  # ticket of the first metric created here (orders runs)

    # -- logging ------------------------------------------------------------------------------

    def log(self, metrics: Mapping[str, Any], step: Any = None) -> bool:
        """Append one value per metric at ``step`` (next step after the largest so far if None).

        Returns False when a frame is certainly due already (see :meth:`log_kwargs`).
        """
        if type(metrics) is dict:
            values = metrics.copy()  # one consistent view of a dict that another thread may change
            for k in values:
                if type(k) is not str:  # (a str subclass equal to a known name still meets check_name)
                    break
            else:
                return self.log_kwargs(values, step)
        return self._log_general(metrics, step)

    def log_kwargs(self, values: dict[str, Any], step: Any = None) -> bool:
        """:meth:`log` for a dict with ``str`` keys that belongs to this call alone (``**kwargs``).

        The hot path: a call of known names whose values are all floats and whose step is
        an int, a finite float or None, below 2**53 (so an int step is exact) and not below the
        largest step so far (or, for a group whose metrics no other call logs, not below the
        group's own last step: threads logging their own metrics with their own step counters),
        is staged here; anything else goes to the general path, which raises the proper errors
        and handles rewinds.

        Returns whether the caller must ask for a frame: False when the call only added
        rows to a group that already held some, because the call that staged the first of
        them asked for a frame, and that frame's snapshot will take these rows too; True again
        once that frame is overdue (past :attr:`Deadline.at`): asked again, the scheduler then
        draws it on this thread (see :class:`~lossviz_widget._core.scheduler.FrameScheduler`).
        """
        group = self._groups.get(tuple(values))
        if group is None:
            return self._log_general(values, step)
        for v in values.values():
            if type(v) is not float and type(v) is not _f64:
                return self._log_general(values, step)
        s = step
        if s is not None:
            kind = type(s)
            if kind is int:
                try:
                    s = float(s)
                except OverflowError:
                    return self._log_general(values, step)
            elif kind is not float or not -_INF < s < _INF:
                return self._log_general(values, step)
        wall = _time()
        request = False
        lock = self.lock
        lock.acquire()
        try:
            last = top = self._last_step
            if s is None:
                s = top = last + 1.0
            elif last <= s < 9007199254740992.0:  # 2**53: a larger int step may have been rounded
                top = s
            elif (s >= last or s <= -9007199254740992.0 or not group.exclusive
                  or s < (group.rows[-group.width] if group.rows else group.buffers[0].last_step)):
                # a huge step (the general path refuses an inexact one), or one that may go backwards
                # for some metric (the general path checks each one)
                group = None
            if group is not None:
                rows = group.rows
                if not rows:
                    self._claim(group)
                    request = True
                rows.append(s)
                rows.append(wall)
                rows.extend(values.values())
                self._last_step = top
                if len(rows) >= group.limit:
                    self._move(group)
        finally:
            lock.release()
        if group is None:
            return self._log_general(values, step)
        return request or wall >= self._deadline.at

    def _log_general(self, metrics: Mapping[str, Any], step: Any) -> bool:
        """Every other call: validate each value and the step, then stage (or append) atomically.

        Returns whether the caller must ask for a frame (as :meth:`log_kwargs`).
        """
        if self.successor is not None:  # a rewind continued this run as a new one
            return self.successor.log(metrics, step)
        wall = time.time()
        names: list[str] = []
        # floats, and DeferredValues only when ``deferred``: the branches below rely on that flag, which
        # the element type cannot express (the staged rows take floats only)
        values: list[Any] = []
        deferred = False
        for k, v in metrics.items():
            names.append(k if type(k) is str and k in self._buffers else check_name(k))
            value = coerce_value(k, v)
            if type(value) is DeferredValue:
                deferred = True
            values.append(value)
        explicit = None if step is None else coerce_step(step)
        request = True
        forward = False
        lock = self.lock
        lock.acquire()
        try:
            s = self._last_step + 1.0 if explicit is None else explicit
            if s < self._last_step:
                behind = []
                for name in names:
                    buf = self._buffers.get(name)
                    if buf is None:
                        continue
                    self._move_metric(name)  # its last step may still be staged
                    if s < buf.last_step:
                        behind.append(name)
                forward = bool(behind) and not self._rewind(behind, s, "from this call")
            if forward:
                pass  # to the new run, once the lock is released
            elif deferred:
                # device tensors keep their buffer index (fetched at frame time): append directly
                for name in names:
                    self._move_metric(name)
                key = tuple(names)
                group = self._groups.get(key) or self._new_group(key)
                append_row(group.buffers, s, wall, values)
            elif names:
                key = tuple(names)
                group = self._groups.get(key) or self._new_group(key)
                rows = group.rows
                if rows:
                    request = False  # a frame is due already (see log_kwargs)
                else:
                    self._claim(group)
                rows.append(s)
                rows.append(wall)
                rows.extend(values)
                if len(rows) >= group.limit:
                    self._move(group)
            if s > self._last_step and not forward:
                self._last_step = s
            if self.t0 is None and names and not forward:
                self.t0 = wall
        finally:
            lock.release()
        if forward:
            assert self.successor is not None
            return self.successor.log(metrics, step)
        return request

    def _rewind(self, names: list[str], step: float, what: str) -> bool:
        """``names`` were logged at ``step``, below their last step: apply ``on_rewind`` (under the
        lock). True: the call goes on here (their later points were purged); False: it goes to
        the successor (a new run, made now); ``ValueError`` with ``"raise"``."""
        if self.on_rewind == "raise":
            buf = self._buffers[names[0]]
            raise ValueError(
                f"metric {names[0]!r}: step {step:g} goes backwards (last logged step is {buf.last_step:g}); "
                f"steps must be non-decreasing per metric (on_rewind='raise'). Nothing {what} was logged."
            )
        if self.on_rewind == "new_run":
            if self.successor is None:
                assert self._make_successor is not None, "new_run needs a successor factory"
                self.successor = self._make_successor(self)
                self._groups.clear()  # the hot path finds no group: every call takes the forwarding path
                self.rewinds.append(Rewind(self.run, names[0], step, new_run=self.successor.run))
            return False
        self._move_all()
        self._share(names)
        buffers = [self._buffers[name] for name in names]
        for name, buf, dropped in zip(names, buffers, truncate_at(buffers, step)):
            self.rewinds.append(Rewind(self.run, name, step, replaced=dropped, kept=buf.n))
        self._last_step = max([-1.0] + [b.last_step for b in self._buffers.values()])
        return True

    def extend(self, name: Any, steps: Any, values: Any, wall_time: Any = None) -> None:
        """Append many points of one metric at once: O(len), validated in full before anything is kept.

        ``steps`` must be finite, non-decreasing and not below the metric's last step;
        ``values`` may hold NaN/Inf; ``wall_time`` (epoch seconds) defaults to now for every
        point. Arrays of unequal length, non-numeric input or a bad step raise an error
        naming the metric, and nothing is appended.
        """
        name = check_name(name)
        s = coerce_array(name, "steps", steps, exact=True)
        v = coerce_array(name, "values", values)
        w = np.full(len(s), time.time()) if wall_time is None else coerce_array(name, "wall_time", wall_time)
        if not len(s) == len(v) == len(w):
            raise ValueError(
                f"metric {name!r}: steps, values and wall_time must have the same length, got "
                f"{len(s)}, {len(v)} and {len(w)}. Nothing was logged."
            )
        if not (np.isfinite(s).all() and np.isfinite(w).all()):
            raise ValueError(f"metric {name!r}: steps and wall_time must be finite. Nothing was logged.")
        # where the steps go back (a log that was resumed): each part is a rewind of the one before
        cuts = np.flatnonzero(np.diff(s) < 0) + 1 if len(s) > 1 else np.empty(0, dtype=np.intp)
        if len(cuts) and self.on_rewind == "raise":
            raise ValueError(f"metric {name!r}: steps must be non-decreasing (on_rewind='raise'). Nothing was logged.")
        if not len(s):
            return
        if self.successor is not None:
            self.successor.extend(name, s, v, w)
            return
        bounds = [0, *cuts.tolist(), len(s)]
        with self.lock:
            for a, b in itertools.pairwise(bounds):
                buf = self._buffers.get(name)
                if buf is not None:
                    self._move_metric(name)  # staged points come first
                    self._share([name])
                    if s[a] < buf.last_step and not self._rewind([name], float(s[a]), "of this array"):
                        break
                else:
                    buf = self._new_buffer(name)
                buf.extend_columns(s[a:b], v[a:b], w[a:b])
                self._last_step = max(self._last_step, float(s[b - 1]))
                first = float(w[a:b].min())
                self.t0 = first if self.t0 is None else min(self.t0, first)
            else:
                return
        assert self.successor is not None
        self.successor.extend(name, s[a:], v[a:], w[a:])

    # -- staging (all under the lock) -----------------------------------------------------------

    def _new_buffer(self, name: str) -> MetricBuffer:
        if self.first_logged is None:
            self.first_logged = next(_first_logged)
        buf = self._buffers[name] = MetricBuffer()
        return buf

    def _new_group(self, names: tuple[str, ...]) -> _Group:
        buffers = self._buffers
        exclusive = not any(name in buffers for name in names)
        if not exclusive:
            self._share(names)
        for name in names:  # new metrics appear in order of first appearance
            if name not in buffers:
                self._new_buffer(name)
        group = self._groups[names] = _Group(names, [buffers[name] for name in names], exclusive)
        return group

    def _share(self, names: tuple[str, ...] | list[str]) -> None:
        """``names`` are logged some other way than by their first group: no group holding one of
        them is :attr:`_Group.exclusive` any more."""
        for group in self._groups.values():
            if group.exclusive and not set(names).isdisjoint(group.names):
                group.exclusive = False

    def _claim(self, group: _Group) -> None:
        """``group`` is about to stage rows: metrics staged elsewhere move to their columns first."""
        owner = self._owner
        for name in group.names:
            other = owner.get(name)
            if other is not group:
                if other is not None and other.rows:
                    self._move(other)
                owner[name] = group
        self._staged[group] = None

    def _move_metric(self, name: str) -> None:
        group = self._owner.get(name)
        if group is not None and group.rows:
            self._move(group)

    @staticmethod
    def _move(group: _Group) -> None:
        """Move a group's staged rows into its metrics' columns: one conversion, one copy per column."""
        rows = group.rows
        if not rows:
            return
        group.rows = []
        width = group.width
        buffers = group.buffers
        if len(rows) <= _SMALL_MOVE * width:  # a few rows (groups taking turns): NumPy's per-call cost dominates
            for r in range(0, len(rows), width):
                append_row(buffers, rows[r], rows[r + 1], rows[r + 2 : r + width])
            return
        # struct unboxes exact floats directly: ~1.5x faster than np.fromiter/np.array on a list
        table = np.frombuffer(struct.pack(f"{len(rows)}d", *rows), dtype=np.float64).reshape(-1, width)
        extend_rows(buffers, table[:, 0], table[:, 1], [table[:, j] for j in range(2, width)])

    def _move_all(self) -> None:
        for group in self._staged:
            self._move(group)
        self._staged.clear()

    # -- reading ------------------------------------------------------------------------------

    def load(self, metrics: Mapping[str, MetricHistory]) -> None:
        """Append whole histories (from a file) to an empty store.

        Metrics whose steps and wall times are identical (logged together) share one
        timeline again, as they did when they were logged.
        """
        with self.lock:
            if self._buffers:
                raise ValueError("can only load into an empty plot")
            together: list[tuple[MetricHistory, list[MetricBuffer], list[np.ndarray]]] = []
            for name, history in metrics.items():
                check_name(name)
                buf = self._new_buffer(name)
                group = next((g for g in together if np.array_equal(g[0].steps, history.steps)
                              and np.array_equal(g[0].wall_time, history.wall_time)), None)
                if group is None:
                    group = (history, [], [])
                    together.append(group)
                _, buffers, columns = group
                buffers.append(buf)
                columns.append(history.values)
                if len(history):
                    self._last_step = max(self._last_step, float(history.steps[-1]))
                    start = float(history.wall_time[0])
                    self.t0 = start if self.t0 is None else min(self.t0, start)
            for first, buffers, columns in together:
                extend_rows(buffers, first.steps, first.wall_time, columns)

    def names(self) -> list[str]:
        with self.lock:
            return list(self._buffers)

    def snapshot(self) -> dict[str, MetricHistory]:
        """Consistent read-only views of every metric (staged points moved, device values fetched first)."""
        return self.snapshot_with_rewinds()[0]

    def snapshot_with_rewinds(self) -> tuple[dict[str, MetricHistory], tuple[Rewind, ...]]:
        """:meth:`snapshot` and every rewind that happened before it (taken together, under the lock)."""
        with self.lock:
            self._move_all()
            return {name: buf.snapshot() for name, buf in self._buffers.items()}, tuple(self.rewinds)

    def get(self, name: str) -> MetricHistory:
        with self.lock:
            buf = self._buffers[name]
            self._move_metric(name)
            return buf.snapshot()

    def __len__(self) -> int:
        return len(self._buffers)

    @property
    def nbytes(self) -> int:
        """Bytes held by the columns (values, and each shared step/wall-time timeline once)."""
        with self.lock:
            return columns_nbytes(list(self._buffers.values()))

    def __contains__(self, name: object) -> bool:
        return name in self._buffers



class History(Mapping[str, MetricHistory]):
    """Read-only mapping ``metric name -> MetricHistory`` over a live store (one run's metrics).

    ``runs`` (the plot's run names) only serves the error message for an unknown metric.
    """

    def __init__(self, store: MetricStore, run: str = "", runs: tuple[str, ...] = ()) -> None:
        self._store = store
        self._run = run
        self._runs = runs

    def __getitem__(self, name: str) -> MetricHistory:
        try:
            return self._store.get(name)
        except KeyError:
            known = ", ".join(map(repr, self._store.names())) or "none yet"
            where = f" in run {self._run!r}" if len(self._runs) > 1 else ""
            hint = (f"; runs: {', '.join(map(repr, self._runs))} (use plot.run(name).history)"
                    if len(self._runs) > 1 else "")
            raise KeyError(f"no metric {name!r} has been logged{where} (known: {known}){hint}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._store.names())

    def __len__(self) -> int:
        return len(self._store)

    def __contains__(self, name: object) -> bool:
        return name in self._store

    def __repr__(self) -> str:
        inner = ", ".join(f"{k!r}: {len(v)} points" for k, v in self.items())
        return f"History({{{inner}}})"
