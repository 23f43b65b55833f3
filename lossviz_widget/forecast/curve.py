"""From a metric's full history to the points a forecast is fitted on, at bounded cost.

:func:`blocks` cuts the history into at most ``max_blocks`` blocks of consecutive points and keeps
each block's median step and median value, reading at most ``per_block`` evenly spaced points of a
block: O(max_blocks x per_block) whatever the length of the run, and a spike or a NaN gap of a few
points moves no block median. :func:`last_change` finds where the curve last changed course (a
learning-rate step, a restart): the fit starts there, since the curve before a step drop follows
other parameters. :func:`noise_level` estimates the spread of the block medians around a smooth
curve from their second differences, which a smooth trend hardly moves. :func:`lr_drop` reads
the last step drop of a logged learning rate, which is exact where the curve's own drop is lost
in its noise (a tenfold step often moves a mini-batch loss by less than its block medians'
spread: ``benchmarks/FORECAST.md``).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["Blocks", "blocks", "last_change", "lr_drop", "noise_level"]

_MAD = 1.4826  # MAD -> standard deviation for normal noise


class Blocks:
    """Block medians of a series: ``steps``, ``values`` (finite only), and ``wall`` (the block's median wall time)."""

    def __init__(self, steps: np.ndarray, values: np.ndarray, wall: np.ndarray) -> None:
        self.steps = steps
        self.values = values
        self.wall = wall

    def __len__(self) -> int:
        return len(self.steps)

    def tail(self, start: int) -> Blocks:
        return Blocks(self.steps[start:], self.values[start:], self.wall[start:])


def blocks(steps: np.ndarray, values: np.ndarray, wall: np.ndarray, max_blocks: int = 160,
           per_block: int = 16) -> Blocks:
    """Block medians of ``(steps, values, wall)``; blocks with no finite value are left out."""
    n = len(steps)
    if n == 0:
        return Blocks(np.empty(0), np.empty(0), np.empty(0))
    count = min(n, max_blocks)
    edges = np.linspace(0, n, count + 1).astype(np.int64)
    sizes = np.diff(edges)
    k = int(min(per_block, sizes.max()))
    idx = edges[:-1, None] + (np.arange(k)[None, :] * sizes[:, None]) // k
    v = np.asarray(values, dtype=np.float64)[idx]
    v[~np.isfinite(v)] = np.nan
    good = ~np.all(np.isnan(v), axis=1)
    if not good.any():
        return Blocks(np.empty(0), np.empty(0), np.empty(0))
    s = np.asarray(steps, dtype=np.float64)[idx[good]]
    w = np.asarray(wall, dtype=np.float64)[idx[good]]
    return Blocks(np.median(s, axis=1), np.nanmedian(v[good], axis=1), np.median(w, axis=1))


def noise_level(values: np.ndarray) -> float:
    """Spread of ``values`` around a smooth curve: robust SD of second differences / sqrt(6)."""
    if len(values) < 4:
        return 0.0
    d2 = np.diff(values, 2)
    return float(_MAD * np.median(np.abs(d2 - np.median(d2))) / np.sqrt(6.0))


def last_change(values: np.ndarray, noise: float) -> int:
    """Index of the first block after the curve's last abrupt drop (0 when none).

    A drop at block ``i`` is a level shift between the medians of the ``k`` blocks before and
    the ``k`` blocks after it (``k`` = a 32nd of the blocks, at least 3) that is more than 8
    times the noise of such a median, and more than 3 times the fall over the ``k`` blocks before
    it and over the ``k`` blocks after it: a learning-rate step drops
    the curve at once onto a flatter course, while a curve's own steep early descent falls as
    fast before or after any point of it. The window begins one block after the drop, past the
    block that may hold points from both sides.
    """
    n = len(values)
    k = max(3, n // 32)
    if n < 4 * k + 1:
        return 0
    z = np.asarray(values, dtype=np.float64)
    win = np.lib.stride_tricks.sliding_window_view(z, k)
    med = np.median(win, axis=1)  # med[j]: median of z[j:j + k]
    i = np.arange(2 * k, n - 2 * k)
    jump = med[i - k] - med[i + 1]  # the k blocks before i vs the k after it
    before = np.abs(med[i - 2 * k] - med[i - k])
    after = np.abs(med[i + 1] - med[i + 1 + k])
    hit = (jump > 8 * 1.25 * noise / np.sqrt(k)) & (jump > 3 * before) & (jump > 3 * after)
    if not hit.any():
        return 0
    last = int(i[np.nonzero(hit)[0][-1]])
    cluster = [j for j in range(max(2 * k, last - k), last + 1) if hit[j - 2 * k]]
    return int(max(cluster, key=lambda j: jump[j - 2 * k])) + 1


LR_DROP = 0.5  # a learning-rate step: the rate falls to at most this share of its value in one logged step


def lr_drop(steps: np.ndarray, lr: np.ndarray) -> float:
    """The first step at the learning rate's last step drop (NaN when none).

    A step drop: the rate falls to at most :data:`LR_DROP` of the value logged before, from at
    least half the highest rate since the previous drop; the end of a cosine or linear decay,
    where consecutive tiny rates also halve, is not one. O(n), vectorised but for the few drops.
    """
    lr = np.asarray(lr, dtype=np.float64)
    ok = np.isfinite(lr) & (lr >= 0)
    steps, lr = np.asarray(steps, dtype=np.float64)[ok], lr[ok]
    drops = np.nonzero(lr[1:] <= LR_DROP * lr[:-1])[0] + 1
    found, since = math.nan, 0
    for i in drops:
        if lr[i - 1] > 0 and lr[i - 1] >= 0.5 * float(lr[since:i].max()):
            found, since = float(steps[i]), int(i)
    return found
