"""A min/max pyramid: the downsampling of a growing series at a cost bounded per frame.

Level 0 stores, for every complete block of ``base`` points, the index of its
smallest and largest finite value and of its first non-finite value. Level k
merges pairs of level k-1 blocks (blocks of ``base * 2**k`` points). Appending
points only completes new blocks, so :meth:`MinMaxPyramid.update` costs
O(new points). Selecting the points to draw for any index range picks the
level whose blocks fit the budget and reads O(max_points) stored extremes, plus
a direct scan of the two partial blocks at the range's edges: a frame costs
O(new points + max_points), whatever the run length, and every spike survives.

Blocks are equal in point count. Ranges small enough to scan outright
(``DIRECT_SCAN`` points) use :func:`~lossviz_widget._core.downsample.minmax_indices`
instead, whose buckets are equal in x width; for evenly logged steps both agree.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .downsample import minmax_indices

__all__ = ["DIRECT_SCAN", "MinMaxPyramid"]

DIRECT_SCAN = 1 << 16  # ranges up to this many points are downsampled by a direct scan
_NONE = -1


class _Columns:
    """Three growable int64 columns: argmin, argmax, first non-finite (``-1`` = none)."""

    def __init__(self) -> None:
        self.data = np.empty((3, 64), dtype=np.int64)
        self.n = 0

    def extend(self, imin: np.ndarray, imax: np.ndarray, inf: np.ndarray) -> None:
        k = len(imin)
        if self.n + k > self.data.shape[1]:
            grown = np.empty((3, max(2 * self.data.shape[1], self.n + k)), dtype=np.int64)
            grown[:, : self.n] = self.data[:, : self.n]
            self.data = grown
        self.data[0, self.n : self.n + k] = imin
        self.data[1, self.n : self.n + k] = imax
        self.data[2, self.n : self.n + k] = inf
        self.n += k

    def rows(self, a: int, b: int) -> np.ndarray:
        return self.data[:, a:b]


def _pick(a: np.ndarray, b: np.ndarray, va: np.ndarray, vb: np.ndarray,
          better: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per pair, the candidate index whose value is ``better`` (``-1`` candidates lose), and its value."""
    take_b = (a < 0) | ((b >= 0) & better(vb, va))
    return np.where(take_b, b, a), np.where(take_b, vb, va)


def _values_at(values: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``values[idx]``, NaN where ``idx`` is ``-1``."""
    return np.where(idx >= 0, values[np.maximum(idx, 0)], np.nan)


def _blocks(values: np.ndarray, start: int, seg: np.ndarray) -> tuple[np.ndarray, ...]:
    """Level-0 columns of the blocks (rows) of ``seg``, which begins at index ``start`` of
    ``values``, and the values at their extremes (NaN for blocks with no finite value)."""
    row = np.arange(len(seg))
    imin, imax = seg.argmin(axis=1), seg.argmax(axis=1)
    vmin, vmax = seg[row, imin], seg[row, imax]
    inf = np.full(len(seg), _NONE)
    # argmin/argmax stop at a NaN and an infinity is an extreme: a block holds a non-finite
    # value exactly when one of its two extremes is not finite (no pass over the block of its own)
    bad = np.flatnonzero(~(np.isfinite(vmin) & np.isfinite(vmax)))
    imin += start + row * seg.shape[1]
    imax += start + row * seg.shape[1]
    if len(bad):
        sub = seg[bad]
        finite = np.isfinite(sub)
        has = finite.any(axis=1)
        first = start + bad * seg.shape[1]
        imin[bad] = np.where(has, first + np.where(finite, sub, np.inf).argmin(axis=1), _NONE)
        imax[bad] = np.where(has, first + np.where(finite, sub, -np.inf).argmax(axis=1), _NONE)
        inf[bad] = np.where((~finite).any(axis=1), first + (~finite).argmax(axis=1), _NONE)
        vmin[bad] = _values_at(values, imin[bad])
        vmax[bad] = _values_at(values, imax[bad])
    return imin, imax, inf, vmin, vmax


class MinMaxPyramid:
    """Incremental per-block extremes of one growing series (see the module docstring)."""

    def __init__(self, base: int = 64) -> None:
        self.base = base
        self.levels: list[_Columns] = []
        self.seen = 0  # points of the series the pyramid has been updated with

    def update(self, values: np.ndarray) -> None:
        """Take in the points appended since the last call (``values`` is the whole series).

        Each level is built from the one below and the values at its extremes, which are
        passed up, not looked up again (a gather from the whole series per level would cost
        more than the level itself).
        """
        n = len(values)
        if n < self.seen:
            raise ValueError("series shrank; a MinMaxPyramid only follows appended data")
        self.seen = n
        if not self.levels:
            self.levels.append(_Columns())
        level0 = self.levels[0]
        done, full = level0.n, n // self.base
        if full <= done:
            return
        seg = values[done * self.base : full * self.base].reshape(-1, self.base)
        imin, imax, inf, vmin, vmax = _blocks(values, done * self.base, seg)
        level0.extend(imin, imax, inf)
        fresh = done  # the rows of the level below whose extreme values are vmin, vmax
        k = 1
        while self.levels[k - 1].n >= 2:
            if len(self.levels) == k:
                self.levels.append(_Columns())
            below, here = self.levels[k - 1], self.levels[k]
            full = below.n // 2
            if full <= here.n:
                break  # nothing new here, so nothing new above
            first = 2 * here.n
            pairs = below.rows(first, 2 * full)
            if first < fresh:  # a block left unpaired by an earlier update: look its values up
                old = below.rows(first, fresh)
                vmin = np.concatenate((_values_at(values, old[0]), vmin))
                vmax = np.concatenate((_values_at(values, old[1]), vmax))
            lo, hi = pairs[:, 0::2], pairs[:, 1::2]
            m = 2 * (full - here.n)
            imin, vmin = _pick(lo[0], hi[0], vmin[0:m:2], vmin[1:m:2], np.less)
            imax, vmax = _pick(lo[1], hi[1], vmax[0:m:2], vmax[1:m:2], np.greater)
            here.extend(imin, imax, np.where(lo[2] >= 0, lo[2], hi[2]))
            fresh = here.n - len(imin)
            k += 1

    def truncate(self, n: int) -> None:
        """Forget every block that reaches index ``n`` or beyond (their points are about to
        change: a centered smoother rewrites its tail). The next :meth:`update` redoes them."""
        if n >= self.seen:
            return
        self.seen = n
        for k, level in enumerate(self.levels):
            level.n = min(level.n, n // (self.base << k))

    def select(self, x: np.ndarray, values: np.ndarray, i0: int, i1: int, max_points: int) -> np.ndarray:
        """Sorted indices in ``[i0, i1)`` to draw: at most ``max_points``, extremes kept.

        ``x`` is the (non-decreasing) x column, used for direct scans of small ranges.
        """
        count = i1 - i0
        if count <= 0:
            return np.empty(0, dtype=np.int64)
        if count <= max(DIRECT_SCAN, max_points):
            return i0 + minmax_indices(x[i0:i1], values[i0:i1], max_points)
        blocks_allowed = max(1, (max_points - 8) // 3)  # 3 per block, 3 per edge, 2 endpoints
        level = 0
        while level + 1 < len(self.levels) and count / (self.base << level) > blocks_allowed:
            level += 1
        size = self.base << level
        a = -(-i0 // size)  # first whole block
        b = min(i1 // size, self.levels[level].n)  # past the last whole block (computed ones only)
        if b - a > blocks_allowed or b <= a:  # cannot happen once updated; stay correct anyway
            return i0 + minmax_indices(x[i0:i1], values[i0:i1], max_points)
        stored = self.levels[level].rows(a, b).ravel()
        parts = [np.array([i0, i1 - 1]), stored[stored >= 0]]
        for lo, hi in ((i0, a * size), (b * size, i1)):  # partial blocks at the edges: scan them
            if hi > lo:
                parts.append(lo + _extremes(values[lo:hi]))
        return np.unique(np.concatenate(parts))


def _extremes(seg: np.ndarray) -> np.ndarray:
    finite = np.isfinite(seg)
    out = []
    if finite.any():
        out += [int(np.where(finite, seg, np.inf).argmin()), int(np.where(finite, seg, -np.inf).argmax())]
    if not finite.all():
        out.append(int((~finite).argmax()))
    return np.array(out, dtype=np.int64)
