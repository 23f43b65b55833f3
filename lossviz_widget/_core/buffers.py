"""Growable per-metric NumPy buffers: the full-resolution record of a run.

Each metric keeps its values in its own float64 column. Steps and wall times
live in a :class:`Timeline` (two float64 columns) that the metrics logged
together share: ``log(loss=..., acc=..., lr=..., grad=...)`` stores its step
and wall time once, not four times, so four metrics logged per call cost
8 + 16/4 = 12 bytes per point each instead of 24.

Sharing rule (copy-on-divergence). Every member of a timeline has exactly the
timeline's points (``buffer.n == timeline.n``). Rows appended to a set of
buffers (:func:`append_row`, :func:`extend_rows`) go to one timeline when the
set is exactly its members; when the set is only part of one timeline's
members, the set first takes a copy of that timeline (the others keep the
original); when every buffer of the set is still empty, the set starts a new
shared timeline. Anything else (buffers with different pasts: a metric logged
alone, ``extend()`` of one series, a loaded file) gets private timelines, each
copied out on first divergence, so every metric's history stays exact. Buffers
that diverged never share again (that would need an O(n) comparison).

Appends are O(1) amortized (capacity doubles) and never pause for long: a column of at least
:data:`AHEAD_FROM` rows found half full (three quarters, once long: :func:`grow_ahead`) at a frame
(:meth:`MetricBuffer.snapshot`) or a bulk append (:func:`extend_rows`, also ``log()``'s moves of
staged rows) is copied into its next array by a helper thread (:class:`GrowAhead`), and the next
frame or bulk append after that switches to it, copying only the rows logged meanwhile (doubling a
10M-point run's columns at once copied ~400 MB into fresh memory inside one frame or one ``log()``:
0.3-0.7 s; at 1e6 steps, the doublings up to 2^20 rows done in ``log()`` cost it 0.3-0.6 s in all, a
quarter of the loop's time). And the memory the next rows of a long column will be written to is
mapped ahead by a helper thread too (:func:`prefault_ahead`), so writing them costs a copy, not a
page fault per 4 KiB on the thread that writes: the training loop, or a frame. Reads return
read-only views of the filled prefix, so handing out history never copies: the steps and wall
times of metrics that share a timeline are views of the same memory. A timeline is only ever
written past its filled prefix, so views handed out stay valid whatever is logged later.
"""

from __future__ import annotations

import ctypes
import mmap
import queue
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .._model import MetricHistory
from .values import DeferredValue, resolve_deferred

__all__ = ["GrowAhead", "MetricBuffer", "Timeline", "append_row", "columns_nbytes", "extend_rows", "grow_ahead",
           "grown_columns", "prefault_ahead", "truncate_at"]

_INITIAL_CAPACITY = 256
# columns at least this long are grown ahead of need: on a VM whose host backs memory lazily (and takes
# freed memory back) a first write to fresh memory costs ~12 ms per MB, so even a 128 KB column's copy
# can cost the loop ~2 ms; shorter ones come from memory malloc keeps, and copy quickly
AHEAD_FROM = 1 << 14
# columns shorter than this start growing ahead at half full, longer ones at three quarters (see grow_ahead)
AHEAD_EARLY_BELOW = 1 << 20
AHEAD_SLICE = 1 << 20  # rows the helper thread copies per GIL release when it grows a column ahead

PREFAULT_FROM = 1 << 16  # columns at least this long have the memory of their next rows mapped ahead
_PREFAULT_MIN = 1 << 16  # bytes: a smaller stretch is not worth a job (its faults cost ~0.5 ms at most)
_MADV_POPULATE_WRITE = 23  # Linux 5.14+: map pages writable without touching their contents
_MAP_CHUNK = 1 << 21  # bytes mapped per madvise call (~2 ms: see _MemoryHelper._map_range)


def _load_madvise() -> Callable[[int, int, int], int] | None:
    """libc's ``madvise``, where ``MADV_POPULATE_WRITE`` may exist (Linux); None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        madvise = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):
        return None
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    madvise.restype = ctypes.c_int
    return madvise


class _MemoryHelper:
    """One daemon thread that prepares memory for the columns, ahead of the writes.

    On a VM whose host backs memory lazily, the first write to fresh memory costs a page fault per
    4 KiB page: ~10-12 ms per MB measured here (mapping it with ``madvise(MADV_POPULATE_WRITE)`` costs
    the same: the host's work), against ~0.2 ms to copy a MB into mapped memory. A 1e7-step run
    writes ~50 bytes per step into its columns and smoothed outputs, so those faults were a third of
    a frame's CPU and a good part of ``log()``'s own (its inline moves into the columns).
    :meth:`ahead` maps the next rows of the live columns with ``MADV_POPULATE_WRITE``, which changes
    no byte, so it is safe while another thread writes the same memory; ctypes releases the GIL for
    the call, so neither the loop nor a frame waits for it. Where it does not exist (not Linux, a
    kernel before 5.14) the writes fault as before. :class:`GrowAhead`'s new arrays, which no other
    thread writes, are touched by writing zeros instead (see there).

    The jobs (:meth:`ahead`, :class:`GrowAhead`) run on one thread started once: starting a
    thread per job made the caller wait for the new thread to run, up to 0.3 s on a loaded
    machine, inside a frame or ``log()``.
    """

    def __init__(self) -> None:
        self._madvise = _load_madvise()
        self._jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._done: dict[int, int] = {}  # array address -> end address mapped (or asked for) so far

    def submit(self, job: Callable[[], None]) -> bool:
        """Run ``job`` on the helper thread, after the jobs before it; False (not run) when the
        interpreter is shutting down. ``job`` must not raise."""
        with self._lock:
            if self._thread is None:  # a daemon: it never delays the interpreter's exit
                thread = threading.Thread(target=self._run, name="lossviz-memory", daemon=True)
                try:
                    thread.start()
                except RuntimeError:  # the interpreter is shutting down (a plot closed by its finalizer)
                    return False
                self._thread = thread
        self._jobs.put(job)
        return True

    def ahead(self, columns: Sequence[np.ndarray], n: int) -> threading.Event | None:
        """Map the rows of each long column from ``n`` to an eighth of ``n`` further (at least
        :data:`PREFAULT_FROM` rows), within its length, on the helper thread; what was asked for
        before is skipped. Returns an event set once mapped (None: nothing to do), which callers
        never wait for."""
        if self._madvise is None:
            return None
        jobs = []
        for a in columns:
            if len(a) < PREFAULT_FROM:
                continue
            base: int = a.__array_interface__["data"][0]
            stop = base + min(len(a), n + max(n >> 3, PREFAULT_FROM)) * a.itemsize
            stop -= stop % mmap.PAGESIZE
            start = max(base + n * a.itemsize, self._done.get(base, 0))
            start += -start % mmap.PAGESIZE
            if stop - start >= _PREFAULT_MIN:
                self._done[base] = stop  # (a freed array's address may come back: then a miss, no harm)
                jobs.append((a, start, stop))
        if not jobs:
            return None
        if len(self._done) > 4096:  # mostly addresses of arrays long gone
            self._done.clear()
        done = threading.Event()
        return done if self.submit(lambda: self._map(jobs, done)) else None

    def _map(self, jobs: list[tuple[np.ndarray, int, int]], done: threading.Event) -> None:
        """(The helper.) Each job keeps its array alive until its pages are mapped."""
        for _array, start, stop in jobs:
            if not self._map_range(start, stop):
                break
        done.set()

    def _map_range(self, start: int, stop: int) -> bool:
        """``madvise(MADV_POPULATE_WRITE)`` the addresses ``start:stop`` (``start`` page-aligned),
        :data:`_MAP_CHUNK` at a time: the call holds the process's memory-map lock, which every
        other thread's page fault and allocation of a large array waits for (one call for a
        column's tens of MB held a live frame up to 0.4 s). False if it cannot be done here."""
        for at in range(start, stop, _MAP_CHUNK):
            madvise = self._madvise
            if madvise is None or madvise(at, min(_MAP_CHUNK, stop - at), _MADV_POPULATE_WRITE) != 0:
                self._madvise = None  # not supported here (EINVAL), or failing: stop asking
                return False
        return True

    def _run(self) -> None:
        while True:
            self._jobs.get()()


_memory = _MemoryHelper()
prefault_ahead = _memory.ahead


def _readonly(a: np.ndarray) -> np.ndarray:
    view: np.ndarray = a.view()
    view.flags.writeable = False
    return view


def _grown(a: np.ndarray, n: int, needed: int) -> np.ndarray:
    """A copy of ``a[:n]`` with room for ``needed`` points (doubling: the slack past ``n`` is never
    written, so it takes address space, not resident memory). The copy's own writes map the new
    memory (see :class:`GrowAhead` for why not ``madvise``)."""
    new = np.empty(max(2 * len(a), needed, _INITIAL_CAPACITY), dtype=a.dtype)
    new[:n] = a[:n]
    return new


class GrowAhead:
    """The next, twice as long arrays of some columns, prepared on the helper thread
    (:class:`_MemoryHelper`): the first ``copied`` rows copied in (columns whose filled rows are
    never written again: a metric's, whose device values are resolved before a copy begins; 0 for
    others), and the memory for the rows that come next touched (all ``filled`` rows, plus an eighth
    more, written with zeros), so the switch to them (:func:`grown_columns`) copies the other rows
    into memory that is already mapped. The helper releases the GIL while it copies and writes, so
    neither the training loop nor a frame waits for the copy, nor for the page faults of new memory
    (on a VM ~12 ms per MB: far more than the copy). Switching as soon as it is ready frees the old
    arrays, so a run that stops there keeps at most an eighth more memory, not both arrays.

    Touched by writing, not mapped with ``madvise(MADV_POPULATE_WRITE)`` as the live columns' next
    rows are (:meth:`_MemoryHelper.ahead`, which must not change a byte another thread may write):
    no other thread sees these arrays yet, and a write faults its pages in under the memory area's
    own lock, where ``madvise`` holds the process's memory-map lock for the whole range, which every
    other thread's allocation of a large array (``mmap``) waits for, and the page faults queued
    behind that. On fresh VM memory (~12 ms per MB either way) that stopped a frame or ``log()``
    for 50-370 ms several times a run: at 1e6 steps in a kernel, ``log()`` went 2.08x -> 1.74x
    the bare loop and the longest wait for a frame 503 -> 412 ms (benchmarks/FRAMES.md)."""

    __slots__ = ("arrays", "copied", "ready")

    def __init__(self, columns: Sequence[np.ndarray], filled: int, final: bool) -> None:
        self.arrays = [np.empty(2 * len(a), dtype=a.dtype) for a in columns]
        self.copied = filled if final else 0
        self.ready = threading.Event()
        touched = min(len(columns[0]), filled + (filled >> 3))
        old = list(columns)
        _memory.submit(lambda: self._fill(old, touched))  # (not run at interpreter exit: never ready)

    def _fill(self, columns: list[np.ndarray], touched: int) -> None:
        n = self.copied
        for new, old in zip(self.arrays, columns):
            for a in range(0, touched, AHEAD_SLICE):  # a slice per GIL release
                b = min(a + AHEAD_SLICE, touched)
                if a < n:
                    new[a:min(b, n)] = old[a:min(b, n)]
                if b > n:  # touched by writing: no other thread sees these arrays yet
                    new[max(a, n):b] = 0.0
        self.ready.set()


def grow_ahead(ahead: GrowAhead | None, columns: Sequence[np.ndarray], n: int, final: bool = True) -> GrowAhead | None:
    """Start preparing the next arrays of ``columns`` (``n`` rows filled; ``final``: those rows
    never change, so they are copied ahead too) once they are long and half full (three quarters
    for columns of :data:`AHEAD_EARLY_BELOW` rows and more).

    Half full: the loop then logs half a column's capacity of rows before it needs them, time
    enough even where all of that memory is fresh (measured on a VM: ~0.5 µs per row of capacity
    to prepare a 4-metric run's ten columns, its six and four smoothed outputs, against ~0.75 µs
    per row of capacity for a tight loop to fill the other half; at three quarters full the helper
    was often late at the 2^19-row doubling, and ``log()`` copied those columns itself, 20-70 ms
    each). Long columns wait for three quarters: both arrays are resident until the switch, so
    starting at half full made the doubling at 2^23 rows happen within a 1e7-step run, and its
    peak memory went from ~24-28 to ~30 bytes per point and metric."""
    prefault_ahead(columns, n)
    capacity = len(columns[0])
    start = capacity // 2 if capacity < AHEAD_EARLY_BELOW else capacity - capacity // 4
    if ahead is not None or capacity < AHEAD_FROM or n < start:
        return ahead
    return GrowAhead(columns, n, final)


def grown_columns(ahead: GrowAhead | None, columns: Sequence[np.ndarray], n: int, needed: int) -> list[np.ndarray]:
    """Copies of the first ``n`` rows of ``columns`` with room for ``needed``: the arrays prepared
    ahead, completed, if there are any ready that fit. (Ones still being prepared are not waited
    for: the helper runs its jobs one after another, so a column's could be queued behind others'
    for a second; a fresh copy, its memory mapped first, costs ~1.2 ms per MB.)"""
    if (ahead is None or not ahead.ready.is_set() or len(ahead.arrays[0]) < needed
            or ahead.arrays[0].dtype != columns[0].dtype):
        return [_grown(a, n, needed) for a in columns]
    for new, old in zip(ahead.arrays, columns):
        new[ahead.copied:n] = old[ahead.copied:n]
    return ahead.arrays


class Timeline:
    """Step and wall-time columns shared by ``members`` buffers that hold the same points."""

    __slots__ = ("_ahead", "members", "n", "steps", "wall")

    def __init__(self, members: int = 1, capacity: int = _INITIAL_CAPACITY) -> None:
        self.steps = np.empty(capacity)
        self.wall = np.empty(capacity)
        self.n = 0
        self.members = members
        self._ahead: GrowAhead | None = None

    def append(self, step: float, wall: float) -> None:
        n = self.n
        if n == len(self.steps):
            self._reserve(n + 1)
        self.steps[n] = step
        self.wall[n] = wall
        self.n = n + 1

    def extend(self, steps: np.ndarray, wall: np.ndarray) -> None:
        n, k = self.n, len(steps)
        if n + k > len(self.steps):
            self._reserve(n + k)
        self.steps[n : n + k] = steps
        self.wall[n : n + k] = wall
        self.n = n + k

    def _reserve(self, needed: int) -> None:
        self.steps, self.wall = grown_columns(self._ahead, (self.steps, self.wall), self.n, needed)
        self._ahead = None

    def grow_ahead(self) -> None:
        """Prepare the columns' next arrays if they will soon need them; switch once prepared."""
        if self._ahead is not None and self._ahead.ready.is_set():
            self._reserve(self.n)
        else:
            self._ahead = grow_ahead(self._ahead, (self.steps, self.wall), self.n)

    def split(self, members: int) -> Timeline:
        """Give ``members`` of this timeline's members a copy of their own (copy-on-divergence)."""
        self.members -= members
        copy = Timeline(members, max(self.n + (self.n >> 2), _INITIAL_CAPACITY))
        copy.extend(self.steps[: self.n], self.wall[: self.n])
        return copy

    @property
    def nbytes(self) -> int:
        return self.steps.nbytes + self.wall.nbytes


class MetricBuffer:
    """The values column of one metric plus its (possibly shared) :class:`Timeline`.

    Not locked: the owning store serialises access.
    """

    __slots__ = ("_ahead", "_pending", "_values", "last_step", "n", "timeline")

    def __init__(self) -> None:
        self.timeline = Timeline()
        self._values = np.empty(_INITIAL_CAPACITY)
        self._ahead: GrowAhead | None = None
        self.n = 0
        self.last_step = -np.inf
        # (index, tensor) of device tensors whose value is fetched at frame time.
        self._pending: list[tuple[int, Any]] = []

    def append(self, step: float, value: float | DeferredValue, wall: float) -> None:
        """Append one point of this metric alone (it leaves a shared timeline first)."""
        append_row((self,), step, wall, (value,))

    def extend_columns(self, steps: np.ndarray, values: np.ndarray, wall: np.ndarray) -> None:
        """Bulk-append already validated float64 columns of equal length (possibly strided views)
        of this metric alone (it leaves a shared timeline first)."""
        extend_rows((self,), steps, wall, (values,))

    def _put(self, value: float | DeferredValue) -> None:
        n = self.n
        if n == len(self._values):
            self._grow(n + 1)
        if type(value) is DeferredValue:
            self._values[n] = np.nan
            self._pending.append((n, value.tensor))
        else:
            self._values[n] = value
        self.n = n + 1

    def _put_many(self, values: np.ndarray) -> None:
        n, k = self.n, len(values)
        if n + k > len(self._values):
            self._grow(n + k)
        self._values[n : n + k] = values
        self.n = n + k

    def _grow(self, needed: int) -> None:
        (self._values,) = grown_columns(self._ahead, (self._values,), self.n, needed)
        self._ahead = None

    def resolve(self) -> None:
        """Copy pending device values to the host (one batched transfer)."""
        if self._pending:
            idx = np.fromiter((i for i, _ in self._pending), dtype=np.intp, count=len(self._pending))
            self._values[idx] = resolve_deferred([t for _, t in self._pending])
            self._pending.clear()

    def snapshot(self) -> MetricHistory:
        """Resolve pending values and return read-only views of everything logged so far (and
        copy a slice of long columns that are nearly full into their next arrays)."""
        self.resolve()
        self._keep_ahead()
        n, t = self.n, self.timeline
        t.grow_ahead()
        return MetricHistory(_readonly(t.steps[:n]), _readonly(self._values[:n]), _readonly(t.wall[:n]))

    def _keep_ahead(self) -> None:
        """Switch the values column to its next array once the helper has prepared it, or start
        preparing that when the column is long and far enough along (:func:`grow_ahead`). Rows
        holding device values not fetched yet are not copied ahead: fetching them writes them."""
        if self._ahead is not None and self._ahead.ready.is_set():
            self._grow(self.n)
        else:
            self._ahead = grow_ahead(self._ahead, (self._values,), self.n, final=not self._pending)

    @property
    def nbytes(self) -> int:
        """Bytes of this metric's values plus its share of its timeline."""
        return self._values.nbytes + self.timeline.nbytes // self.timeline.members


def columns_nbytes(buffers: Sequence[MetricBuffer]) -> int:
    """Bytes held by the columns of ``buffers``, each shared timeline counted once."""
    timelines = {id(b.timeline): b.timeline for b in buffers}
    return sum(b._values.nbytes for b in buffers) + sum(t.nbytes for t in timelines.values())


def _timeline_for(buffers: Sequence[MetricBuffer]) -> Timeline | None:
    """The timeline ``buffers`` may append rows to together (see the module docstring), or None."""
    t = buffers[0].timeline
    k = len(buffers)
    if k == 1 or all(b.timeline is t for b in buffers):
        if t.members != k:  # the set leaves the others: one copy for all of it
            t = t.split(k)
            for b in buffers:
                b.timeline = t
        return t
    if all(not b.n for b in buffers):  # all new: start sharing
        t = Timeline(k)
        for b in buffers:
            b.timeline.members -= 1
            b.timeline = t
        return t
    return None


def append_row(buffers: Sequence[MetricBuffer], step: float, wall: float,
               values: Sequence[float | DeferredValue]) -> None:
    """Append one point to each of ``buffers`` (distinct), logged at the same step and wall time."""
    t = _timeline_for(buffers)
    if t is None:
        for buf, value in zip(buffers, values):
            append_row((buf,), step, wall, (value,))
        return
    t.append(step, wall)
    for buf, value in zip(buffers, values):
        buf._put(value)
        buf.last_step = step


def extend_rows(buffers: Sequence[MetricBuffer], steps: np.ndarray, wall: np.ndarray,
                columns: Sequence[np.ndarray]) -> None:
    """Append rows of already validated float64 columns (one per buffer, possibly strided views)
    logged together at ``steps`` and ``wall``: one copy per column, whatever the number of rows."""
    if not len(steps):
        return
    t = _timeline_for(buffers)
    if t is None:
        for buf, values in zip(buffers, columns):
            extend_rows((buf,), steps, wall, (values,))
        return
    t.extend(steps, wall)
    last = float(steps[-1])
    for buf, values in zip(buffers, columns):
        buf._put_many(values)
        buf.last_step = last
        buf._keep_ahead()
    t.grow_ahead()


def truncate_at(buffers: Sequence[MetricBuffer], step: float) -> list[int]:
    """Drop the points at or after ``step`` of each of ``buffers`` (a rewind's purge); returns how
    many each lost.

    The kept prefix is copied into new columns, so views handed out earlier stay exactly as they
    were (the module's promise: filled memory is never written again). Buffers that shared a
    timeline keep sharing one (a copy of its prefix), so a run resumed from a checkpoint goes on
    storing one step/wall-time column for the metrics it logs together. O(kept points); rewinds
    are rare.
    """
    by_timeline: dict[int, list[MetricBuffer]] = {}
    for buf in buffers:
        by_timeline.setdefault(id(buf.timeline), []).append(buf)
    dropped: dict[int, int] = {}
    for members in by_timeline.values():
        old = members[0].timeline
        keep = int(np.searchsorted(old.steps[: members[0].n], step, side="left"))
        new = Timeline(len(members), max(keep + (keep >> 2), _INITIAL_CAPACITY))
        new.extend(old.steps[:keep], old.wall[:keep])
        old.members -= len(members)
        for buf in members:
            values = np.empty(len(new.steps))
            values[:keep] = buf._values[:keep]
            dropped[id(buf)] = buf.n - keep
            buf._values, buf.timeline, buf.n, buf._ahead = values, new, keep, None
            buf._pending = [(i, t) for i, t in buf._pending if i < keep]
            buf.last_step = float(new.steps[keep - 1]) if keep else -np.inf
    return [dropped[id(buf)] for buf in buffers]
