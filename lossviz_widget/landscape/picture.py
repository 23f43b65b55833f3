"""What a landscape view shows, as arrays: gap-aware colour values, the fill of cells not yet
computed, and contour lines. Shared by the live bqplot view and the matplotlib export,
so both show the same picture.

* Non-finite losses (and, on a log colour scale, losses ≤ 0) are gaps (NaN).
* While computing, a cell not yet computed shows its nearest computed cell, so a
  coarse pass already looks like the whole surface; it sharpens as finer passes land.
* Contours come from contourpy (matplotlib's contour generator) on that same field,
  as one polyline with NaN between pieces (one bqplot ``Lines`` mark draws it, with gaps).
"""

from __future__ import annotations

from typing import cast

import numpy as np

__all__ = ["contour_levels", "contour_lines", "nearest_fill", "shown_values"]


def shown_values(values: np.ndarray, log: bool) -> np.ndarray:
    """Losses as drawn: NaN for non-finite (and for ≤ 0 when ``log``), log10 when ``log``."""
    v = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(v) & ((v > 0) if log else True)
    out = np.full(v.shape, np.nan)
    out[ok] = np.log10(v[ok]) if log else v[ok]
    return out


def nearest_fill(field: np.ndarray, computed: np.ndarray) -> np.ndarray:
    """``field`` with every not-computed cell taken from the nearest computed one (grid distance).

    Computed cells keep their own value (NaN gaps included). Nothing computed: all NaN.
    """
    out = np.array(field, dtype=np.float64, copy=True)
    if computed.all() or not computed.any():
        return out if computed.any() else np.full(field.shape, np.nan)
    idx = np.indices(field.shape).reshape(field.ndim, -1).T.astype(np.float64)
    have = computed.ravel()
    src, dst = idx[have], idx[~have]
    src_vals = out.ravel()[have]
    fill = np.empty(len(dst))
    for start in range(0, len(dst), 512):  # bounded memory: 512 × computed distances at a time
        d = ((dst[start:start + 512, None, :] - src[None, :, :]) ** 2).sum(axis=2)
        fill[start:start + 512] = src_vals[np.argmin(d, axis=1)]
    flat = out.reshape(-1)
    flat[~have] = fill
    return out


def contour_levels(field: np.ndarray, count: int = 12) -> np.ndarray:
    """``count`` levels evenly inside the finite range of ``field`` (none if it is flat or empty)."""
    finite = field[np.isfinite(field)]
    if finite.size == 0:
        return np.empty(0)
    lo, hi = float(finite.min()), float(finite.max())
    if not hi > lo:
        return np.empty(0)
    return np.linspace(lo, hi, count + 2)[1:-1]


def contour_lines(x: np.ndarray, y: np.ndarray, field: np.ndarray, levels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Contour polylines of ``field[row=y, col=x]`` at ``levels``, joined with NaN separators."""
    if len(levels) == 0 or len(x) < 2 or len(y) < 2 or not np.isfinite(field).any():
        return np.empty(0), np.empty(0)
    import contourpy

    gen = contourpy.contour_generator(x, y, np.ma.masked_invalid(field), line_type=contourpy.LineType.Separate)
    pieces: list[np.ndarray] = []
    gap = np.array([[np.nan, np.nan]])
    for level in levels:
        # contourpy's stub returns the union of every line type's shape; Separate: a list of (n, 2) arrays
        for line in cast("list[np.ndarray]", gen.lines(float(level))):
            pieces.extend((line, gap))
    if not pieces:
        return np.empty(0), np.empty(0)
    joined = np.concatenate(pieces[:-1])
    return joined[:, 0].copy(), joined[:, 1].copy()
