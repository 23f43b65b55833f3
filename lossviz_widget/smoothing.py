"""TensorBoard's debiased exponential moving average, computed incrementally.

The rule is TensorBoard's ``classicSmoothing`` / ``resmoothDataset``
(tensorboard ``line_chart_v2/data_transformer.ts``), reproduced exactly:

* ``last = last * w + (1 - w) * y`` starting from 0, shown as
  ``last / (1 - w**k)`` where ``k`` counts the *finite* points so far;
* non-finite points (NaN, +/-Inf) pass through unchanged and do not advance
  the average;
* a series whose values are all equal is returned as is (TensorBoard #786).

On finite data this equals ``pandas.Series.ewm(alpha=1 - w, adjust=True).mean()``.

Smoothing runs on the full-resolution data before any downsampling
(TensorBoard #1518), and :class:`EmaSmoother` only processes the points added
since its last call, so a frame costs O(new points), not O(all points).
"""

from __future__ import annotations

import math

import numpy as np

from ._precision import fits_float32

__all__ = ["EmaSmoother", "tensorboard_ema"]

# Points smoothed per pass: bounds the temporaries (one float64 array of this size) and
# keeps them cache-sized.
_SLICE = 1 << 20
# Within a chunk the recurrence is evaluated as w**(j+1) * cumsum(x * (1-w) / w**(i+1)).
# The chunk length keeps w**K above 1e-100, far from float64 underflow/overflow.
_MAX_CHUNK = 1024


def _chunk_len(weight: float) -> int:
    return max(1, min(_MAX_CHUNK, int(100.0 / -math.log10(weight))))


def _ema_accumulate(x: np.ndarray, weight: float, last: float) -> np.ndarray:
    """Biased accumulator ``last_t = w*last_{t-1} + (1-w)*x_t`` for every t, vectorized.

    Chunks of K points are independent cumulative sums (zero carry-in), joined by a
    short scalar recurrence over the chunk ends; five in-place passes over one array.
    Agrees with the step-by-step loop to ~1e-13 relative.
    """
    m = len(x)
    if weight == 0.0:
        return x.astype(np.float64, copy=True)
    k = _chunk_len(weight)
    chunks = -(-m // k)
    powers = weight ** np.arange(1, k + 1, dtype=np.float64)  # w**(j+1)
    grid = np.empty((chunks, k))
    flat = grid.reshape(-1)
    flat[:m] = x
    flat[m:] = 0.0
    grid *= (1.0 - weight) / powers
    np.cumsum(grid, axis=1, out=grid)  # times powers: each chunk's accumulator from a zero start
    ends = (grid[:, -1] * powers[-1]).tolist()
    carry = np.empty(chunks)
    wk = float(powers[-1])
    for c, end in enumerate(ends):  # carry between chunks: a short scalar recurrence
        carry[c] = last
        last = wk * last + end
    grid += carry[:, None]
    grid *= powers
    return flat[:m]


def _debias_horizon(weight: float) -> int:
    """Past this many finite points, ``1 - w**k`` is exactly 1.0 in float64 (w**k < 2**-60)."""
    return 0 if weight == 0.0 else int(math.ceil(-60 * math.log(2) / math.log(weight))) + 1


def _debias(weight: float, start: int, m: int) -> np.ndarray:
    """``1 - w**k`` for k = start+1 .. start+m (m up to the horizon: paid once per smoother).

    Scalar ``pow``, as TensorBoard's ``Math.pow``: NumPy's vectorized power may differ in the last bit.
    """
    return 1.0 - np.fromiter((weight**k for k in range(start + 1, start + m + 1)), dtype=np.float64, count=m)


def tensorboard_ema(values: np.ndarray, weight: float) -> np.ndarray:
    """Smooth a whole series at once (see the module docstring for the exact rule)."""
    smoother = EmaSmoother(weight)
    return smoother.update(np.asarray(values, dtype=np.float64)).copy()


class EmaSmoother:
    """Keeps the smoothed copy of one growing series in step with its raw data.

    Call :meth:`update` with the full raw array (a prefix of which was seen
    before); only the new tail is processed. The returned array is a view
    that the next call may overwrite: copy it to keep it.

    ``compact=True`` stores the smoothed series as float32 (half the memory) while
    every value fits float32 losslessly for drawing (see :func:`fits_float32`), and
    as float64 from the first value that does not. Values are computed in float64
    either way; only the stored copy is rounded, exactly as the browser receives it.
    """

    def __init__(self, weight: float, compact: bool = False) -> None:
        if not 0.0 <= weight < 1.0:
            raise ValueError(f"smoothing weight must be in [0, 1), got {weight!r}")
        self.weight = float(weight)
        self._out = np.empty(0, dtype=np.float32 if compact else np.float64)
        self._n = 0
        self._last = 0.0  # biased accumulator
        self._count = 0  # finite points so far (TensorBoard's numAccum)
        self._first = math.nan  # first value, to track TensorBoard's "constant series" rule
        self._constant = True
        self.resets = 0  # full recomputations (earlier outputs changed): consumers rebuild caches

    def update(self, values: np.ndarray) -> np.ndarray:
        n = len(values)
        if n < self._n:
            raise ValueError("series shrank; EmaSmoother only follows appended data")
        new = values[self._n : n]
        if len(new):
            if self._n == 0:
                self._first = float(new[0])
            if self._constant and not bool(np.all(new == self._first)):
                # TensorBoard decides constancy over the whole series: once it breaks,
                # every earlier output changes from "as is" to the EMA. Redo from scratch.
                self._constant = False
                self.resets += 1
                self._n, self._last, self._count = 0, 0.0, 0
                new = values[:n]
            self._ensure_capacity(n)
            for a in range(0, len(new), _SLICE):  # slices bound the temporaries
                part = new[a : a + _SLICE]
                self._store(n - len(new) + a, part if self._constant else self._smooth(part))
            self._n = n
        return self._out[:n]

    def _smooth(self, new: np.ndarray) -> np.ndarray:
        finite = np.isfinite(new)
        all_finite = bool(finite.all())
        xf = new if all_finite else new[finite]
        if len(xf) == 0:
            return new.astype(np.float64, copy=True)
        acc = _ema_accumulate(xf, self.weight, self._last)
        self._last = float(acc[-1])
        j = min(len(xf), _debias_horizon(self.weight) - self._count)
        if j > 0:  # TensorBoard divides by 1 - w**k; past the horizon that is exactly 1
            acc[:j] /= _debias(self.weight, self._count, j)
        self._count += len(xf)
        if all_finite:
            return acc
        out = new.astype(np.float64, copy=True)
        out[finite] = acc
        return out

    def _store(self, start: int, smoothed: np.ndarray) -> None:
        if self._out.dtype != np.float64 and not fits_float32(smoothed):
            # from now on: float64 (earlier values stay as drawn). Only what is filled, [0, start),
            # is converted: the slack past it is uninitialised memory (a cast could warn on it).
            wide = np.empty(len(self._out), dtype=np.float64)
            wide[:start] = self._out[:start]
            self._out = wide
        self._out[start : start + len(smoothed)] = smoothed

    def _ensure_capacity(self, n: int) -> None:
        if n > len(self._out):
            grown = np.empty(max(n, 2 * len(self._out), 256), dtype=self._out.dtype)
            grown[: self._n] = self._out[: self._n]
            self._out = grown
