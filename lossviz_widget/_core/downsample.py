"""Spike-preserving downsampling: per x-bucket minimum and maximum.

A line of millions of points is drawn from at most ``max_points`` of them: the
x range is cut into equal-width buckets and each bucket keeps the index of its
smallest and largest finite value (and of its first non-finite value, so NaN
gaps and their markers survive). The first and last points are always kept.
Random or stride sampling (TensorBoard's reservoir of 1000) would drop the
single-step spikes that users most need to see.
"""

from __future__ import annotations

import numpy as np

__all__ = ["minmax_indices"]


def _first_per_segment(mask: np.ndarray, segment: np.ndarray) -> np.ndarray:
    idx = np.flatnonzero(mask)
    if len(idx) == 0:
        return idx
    seg = segment[idx]
    keep = np.empty(len(idx), dtype=bool)
    keep[0] = True
    np.not_equal(seg[1:], seg[:-1], out=keep[1:])
    return idx[keep]


def minmax_indices(x: np.ndarray, y: np.ndarray, max_points: int) -> np.ndarray:
    """Sorted indices of at most ``max_points`` points of ``(x, y)`` that keep its extremes.

    Buckets are equal in x width (``x`` is taken as non-decreasing: a clock that stepped
    back is levelled). Returns ``arange(len(x))`` when nothing needs dropping.
    """
    n = len(x)
    if max_points < 4:
        raise ValueError(f"max_points must be at least 4, got {max_points}")
    if n <= max_points:
        return np.arange(n)
    x = np.maximum.accumulate(x)
    finite = np.isfinite(y)
    all_finite = bool(finite.all())
    per_bucket = 2 if all_finite else 3
    buckets = max(1, (max_points - 2) // per_bucket)
    x0, x1 = float(x[0]), float(x[-1])
    if x1 > x0:
        bucket = ((x - x0) * (buckets / (x1 - x0))).astype(np.int64)
        np.minimum(bucket, buckets - 1, out=bucket)
    else:  # all points at one x: fall back to equal-count buckets
        bucket = np.arange(n, dtype=np.int64) * buckets // n
    change = np.empty(n, dtype=bool)
    change[0] = True
    np.not_equal(bucket[1:], bucket[:-1], out=change[1:])
    starts = np.flatnonzero(change)
    segment = np.cumsum(change) - 1
    yf = y if all_finite else np.where(finite, y, np.nan)
    lo = np.fmin.reduceat(yf, starts)  # fmin/fmax skip NaN
    hi = np.fmax.reduceat(yf, starts)
    parts = [
        np.array([0, n - 1]),
        _first_per_segment(yf == lo[segment], segment),
        _first_per_segment(yf == hi[segment], segment),
    ]
    if not all_finite:
        parts.append(_first_per_segment(~finite, segment))
    return np.unique(np.concatenate(parts))
