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

__all__ = ["EmaSmoother", "tensorboard_ema"]

# Within a chunk the recurrence is evaluated as w**(j+1) * cumsum(x / w**(i+1)).
# The chunk length keeps w**K above 1e-100, far from float64 underflow/overflow.
_MAX_CHUNK = 1024


def _chunk_len(weight: float) -> int:
    return max(1, min(_MAX_CHUNK, int(100.0 / -math.log10(weight))))


def _ema_accumulate(x: np.ndarray, weight: float, last: float) -> np.ndarray:
    """Biased accumulator ``last_t = w*last_{t-1} + (1-w)*x_t`` for every t, vectorized."""
    m = len(x)
    if weight == 0.0:
        return x.astype(np.float64, copy=True)
    k = _chunk_len(weight)
    chunks = -(-m // k)
    padded = np.zeros(chunks * k)
    padded[:m] = x
    grid = padded.reshape(chunks, k)
    powers = weight ** np.arange(1, k + 1, dtype=np.float64)  # w**(j+1)
    local = powers * ((1.0 - weight) * np.cumsum(grid / powers, axis=1))  # zero carry-in
    carry = np.empty(chunks)
    wk = powers[-1]
    for c in range(chunks):  # carry between chunks: a short scalar recurrence
        carry[c] = last
        last = wk * last + local[c, -1]
    acc = local + powers * carry[:, None]
    return acc.reshape(-1)[:m]


def _debias_horizon(weight: float) -> int:
    """Past this many finite points, ``1 - w**k`` is exactly 1.0 in float64 (w**k < 2**-60)."""
    return 0 if weight == 0.0 else int(math.ceil(-60 * math.log(2) / math.log(weight))) + 1


def _debias(weight: float, start: int, m: int) -> np.ndarray:
    """``1 - w**k`` for k = start+1 .. start+m, computing powers only where they matter."""
    out = np.ones(m)
    j = min(m, _debias_horizon(weight) - start)
    if j > 0:
        out[:j] = 1.0 - weight ** np.arange(start + 1, start + j + 1, dtype=np.float64)
    return out


def tensorboard_ema(values: np.ndarray, weight: float) -> np.ndarray:
    """Smooth a whole series at once (see the module docstring for the exact rule)."""
    smoother = EmaSmoother(weight)
    return smoother.update(np.asarray(values, dtype=np.float64)).copy()


class EmaSmoother:
    """Keeps the smoothed copy of one growing series in step with its raw data.

    Call :meth:`update` with the full raw array (a prefix of which was seen
    before); only the new tail is processed. The returned array is a view
    that the next call may overwrite: copy it to keep it.
    """

    def __init__(self, weight: float) -> None:
        if not 0.0 <= weight < 1.0:
            raise ValueError(f"smoothing weight must be in [0, 1), got {weight!r}")
        self.weight = float(weight)
        self._out = np.empty(0)
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
            start = n - len(new)
            self._out[start:n] = new if self._constant else self._smooth(new)
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
        debiased = acc / _debias(self.weight, self._count, len(xf)) if self._count < _debias_horizon(self.weight) else acc
        self._count += len(xf)
        if all_finite:
            return debiased
        out = new.astype(np.float64, copy=True)
        out[finite] = debiased
        return out

    def _ensure_capacity(self, n: int) -> None:
        if n > len(self._out):
            grown = np.empty(max(n, 2 * len(self._out), 256))
            grown[: self._n] = self._out[: self._n]
            self._out = grown
