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
since its last call, so a frame costs O(new points), not O(all points). A full
re-smooth (a new weight) costs ~4 ns per point for the EMA with its float32 cache
(:func:`_scan`: vector passes, no sequential ``cumsum``); the viewer re-smooths
its series on several cores at once (:mod:`._parallel`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .buffers import GrowAhead, grow_ahead, grown_columns
from .precision import fits_float32

__all__ = [
    "MODES",
    "SMOOTHING_MODES",
    "CenteredSmoother",
    "EmaSmoother",
    "Smoother",
    "SmoothingMode",
    "TimeEmaSmoother",
    "gaussian_kernel",
    "half_window",
    "make_smoother",
    "smooth",
    "tensorboard_ema",
]

# Points smoothed per pass: bounds the temporaries (one float64 array of this size).
_SLICE = 1 << 20
# _scan evaluates the recurrence in rows of _ROW points, a cache-sized _BLOCK of them at a time.
_ROW = 8
_BLOCK = 1 << 15  # 256 KiB of float64: stays in L2 while its columns are summed
_SCALAR_MAX = 64  # up to this many points a plain loop is cheaper
# Scaling by a**-(j+1) within a row needs a**_ROW far from float64 underflow.
_MIN_SCALED = 1e-100


def _scan(x: np.ndarray, a: float | np.ndarray, b: float, init: float, out: np.ndarray) -> float:
    """``out[t] = a * out[t-1] + b * x[t]`` for every t, from ``out[-1] = init``; returns the last value.

    ``a`` is one coefficient, or an array of each point's own (then used as scratch: overwritten).
    The series is cut into rows of L = ``_ROW`` points, ``y[r, j] = a**(j+1) * (c[r-1] + S[r, j])``:

    1. ``S``, each row's accumulator from a zero start, as a running sum of ``b * x / a**(j+1)``
       that goes *down the L columns* of a cache-sized block: L - 1 vector adds, each over every
       row at once. Along the series it would be ``cumsum``, a sequential loop (~4 ns a point,
       several times what a vector pass costs).
    2. ``c``, the accumulator at each row end: the same recurrence over the row ends with
       coefficient ``a**L``, solved by this function on a series L times shorter.
    3. ``out = (S + c) * a**(j+1)``.

    About four passes over ``out`` in all; agrees with the step-by-step loop to ~1e-14 relative.
    ``x`` may be strided; ``out`` is float64 and contiguous. When ``a**L`` would underflow (``a``
    below ~1e-12), and for varying coefficients, rows are accumulated unscaled instead: a
    multiply and an add per column, and the carries enter as ``c[r-1] * prod(a[r, :j+1])``.
    """
    m = len(x)
    if isinstance(a, np.ndarray):
        coefs, w = a, 0.0  # each point's own coefficient (``w`` unused)
    else:
        coefs, w = None, a
    if coefs is None and w == 0.0:
        np.multiply(x, b, out=out)
        return float(out[-1]) if m else init
    if m <= _SCALAR_MAX:
        last = init
        for i, (v, c) in enumerate(zip(x.tolist(), coefs.tolist() if coefs is not None else itertools.repeat(w))):
            last = c * last + b * v
            out[i] = last
        return last
    L = _ROW
    powers = w ** np.arange(1, L + 1, dtype=np.float64)  # a**(j+1) (constant coefficient only)
    scaled = coefs is None and powers[-1] >= _MIN_SCALED
    rows = m // L
    body = rows * L
    tile = min(_BLOCK, body) // L
    scale = _tiled(b / powers, tile) if scaled else None
    tmp = np.empty(tile)
    for lo in range(0, body, _BLOCK):  # 1. row accumulators from a zero start
        hi = min(body, lo + _BLOCK)
        np.multiply(x[lo:hi], scale[: hi - lo] if scale is not None else b, out=out[lo:hi])
        g = out[lo:hi].reshape(-1, L)
        p = coefs[lo:hi].reshape(-1, L) if coefs is not None else None
        for j in range(1, L):
            if scaled:
                np.add(g[:, j], g[:, j - 1], out=g[:, j])
                continue
            t = tmp[: len(g)]
            np.multiply(g[:, j - 1], p[:, j] if p is not None else w, out=t)
            np.add(g[:, j], t, out=g[:, j])
            if p is not None:  # a becomes the running product within the row
                np.multiply(p[:, j], p[:, j - 1], out=p[:, j])
    carry = np.empty(rows + 1)  # carry[r]: the accumulator before row r
    carry[0] = init
    ends = out[:body].reshape(rows, L)[:, -1]
    # varying: a copy (the recursion overwrites its coefficients)
    a_row = np.ascontiguousarray(coefs[:body].reshape(rows, L)[:, -1]) if coefs is not None else float(powers[-1])
    _scan(ends, a_row, float(powers[-1]) if scaled else 1.0, init, carry[1:])  # 2. carries between rows
    unscale = _tiled(powers, tile) if scaled else None
    for lo in range(0, body, _BLOCK):  # 3. add the carries
        hi = min(body, lo + _BLOCK)
        g = out[lo:hi].reshape(-1, L)
        c = carry[lo // L : hi // L, None]
        if unscale is not None:
            np.add(g, c, out=g)
            np.multiply(out[lo:hi], unscale[: hi - lo], out=out[lo:hi])
        elif coefs is not None:
            p = coefs[lo:hi].reshape(-1, L)
            np.multiply(p, c, out=p)
            np.add(g, p, out=g)
        else:
            g += c * powers
    last = float(out[body - 1])
    for i in range(body, m):  # the last partial row
        last = (float(coefs[i]) if coefs is not None else w) * last + b * float(x[i])
        out[i] = last
    return last


_tiles: dict[tuple[bytes, int], np.ndarray] = {}


def _tiled(row: np.ndarray, count: int) -> np.ndarray:
    """``np.tile(row, count)``, kept for the next call with the same row (read-only): a re-smooth
    scans ~20 slices with the same coefficients, and building the tiles anew for each cost ~10%
    of the scan. The few latest are kept (one weight's rows, and those of its recursion)."""
    key = (row.tobytes(), count)
    tiled = _tiles.get(key)
    if tiled is None:
        if len(_tiles) >= 16:
            _tiles.clear()
        tiled = _tiles[key] = np.tile(row, count)
        tiled.flags.writeable = False
    return tiled


def _debias_horizon(weight: float) -> int:
    """Past this many finite points, ``1 - w**k`` is exactly 1.0 in float64 (w**k < 2**-60)."""
    return 0 if weight == 0.0 else math.ceil(-60 * math.log(2) / math.log(weight)) + 1


def _debias(weight: float, start: int, m: int) -> np.ndarray:
    """``1 - w**k`` for k = start+1 .. start+m (m up to the horizon: paid once per smoother).

    Scalar ``pow``, as TensorBoard's ``Math.pow``: NumPy's vectorized power may differ in the last bit.
    """
    return 1.0 - np.fromiter((weight**k for k in range(start + 1, start + m + 1)), dtype=np.float64, count=m)


def _all_equal(a: np.ndarray, v: float) -> bool:
    """Whether every value of ``a`` equals ``v``; a differing value near the start (the usual
    case) answers without a pass over all of ``a``."""
    return bool(np.all(a[:64] == v)) and bool(np.all(a == v))


def _adopt(storage: np.ndarray | None, dtype: type) -> np.ndarray:
    """``storage`` to write a smoothed series into, if it has the right dtype; else a fresh empty array."""
    return storage if storage is not None and storage.dtype == dtype and storage.ndim == 1 else np.empty(0, dtype)


class _Cache:
    """What every smoother shares: the smoothed series lives in ``_out`` (with room to grow)."""

    _out: np.ndarray
    _ahead: GrowAhead | None = None

    def _room(self, n: int, keep: int) -> None:
        """Room in ``_out`` for ``n`` points, its first ``keep`` kept. A long output half full (three
        quarters, once very long) has its next array's memory touched by a helper thread ahead of
        need and is moved there once it is ready (:class:`~lossviz_widget._core.buffers.GrowAhead`):
        a frame then copies into mapped memory (fresh memory cost a 1e7-step run's frames up to
        250 ms)."""
        ahead = self._ahead
        if ahead is not None and ahead.ready.is_set():
            self._ahead = None
            if ahead.arrays[0].dtype == self._out.dtype and n <= len(ahead.arrays[0]):
                (self._out,) = grown_columns(ahead, (self._out,), keep, n)
                return
        if n > len(self._out):
            (self._out,) = grown_columns(None, (self._out,), keep, n)
            self._ahead = None
        else:
            self._ahead = grow_ahead(self._ahead, (self._out,), n, final=False)

    @property
    def buffer(self) -> np.ndarray:
        """The array the smoothed series lives in, room to grow included. Pass it as ``storage``
        to the smoother that replaces this one: rewriting memory in place costs half of what
        fresh memory does (its page faults), and the room to grow is kept."""
        return self._out


def _series(values: object, what: str = "values") -> np.ndarray:
    """``values`` as a 1-D float64 array, or a ValueError naming ``what``."""
    try:
        a = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be a 1-D array of numbers: {exc}") from None
    if a.ndim != 1:
        raise ValueError(f"{what} must be a 1-D array of numbers, got shape {a.shape}")
    return a


def tensorboard_ema(values: np.ndarray, weight: float) -> np.ndarray:
    """Smooth a whole series at once (see the module docstring for the exact rule)."""
    smoother = EmaSmoother(weight)
    smoothed: np.ndarray = smoother.update(_series(values)).copy()
    return smoothed


class EmaSmoother(_Cache):
    """Keeps the smoothed copy of one growing series in step with its raw data.

    Call :meth:`update` with the full raw array (a prefix of which was seen
    before); only the new tail is processed. The returned array is a view
    that the next call may overwrite: copy it to keep it.

    ``compact=True`` stores the smoothed series as float32 (half the memory) while
    every value fits float32 losslessly for drawing (see :func:`fits_float32`), and
    as float64 from the first value that does not. Values are computed in float64
    either way; only the stored copy is rounded, exactly as the browser receives it.
    ``storage`` (any smoother's :attr:`buffer`) is reused for the output where its dtype fits.
    """

    def __init__(self, weight: float, compact: bool = False, storage: np.ndarray | None = None) -> None:
        if not 0.0 <= weight < 1.0:
            raise ValueError(f"smoothing weight must be in [0, 1), got {weight!r}")
        self.weight = float(weight)
        self._out = _adopt(storage, np.float32 if compact else np.float64)
        self._n = 0
        self._last = 0.0  # biased accumulator
        self._count = 0  # finite points so far (TensorBoard's numAccum)
        self._first = math.nan  # first value, to track TensorBoard's "constant series" rule
        self._constant = True
        self.changed_from = 0  # first output index the last update wrote (earlier ones are unchanged)

    def update(self, values: np.ndarray, x: np.ndarray | None = None) -> np.ndarray:
        """``x`` (the x column) is accepted for a uniform smoother interface and ignored."""
        n = len(values)
        if n < self._n:
            raise ValueError("series shrank; EmaSmoother only follows appended data")
        new = values[self._n : n]
        self.changed_from = self._n
        if len(new):
            if self._n == 0:
                self._first = float(new[0])
            if self._constant and not _all_equal(new, self._first):
                # TensorBoard decides constancy over the whole series: once it breaks,
                # every earlier output changes from "as is" to the EMA. Redo from scratch.
                self._constant = False
                self._n, self._last, self._count = 0, 0.0, 0
                self.changed_from = 0
                new = values[:n]
            self._room(n, self._n)
            start = n - len(new)
            if self._constant:
                self._store(start, new)
            else:
                # float64 cache: smooth straight into it; float32: into a float64 scratch, which
                # _store judges and rounds on the copy (a scratch of one slice bounds the memory)
                wide = self._out.dtype == np.float64
                scratch = None if wide else np.empty(min(len(new), _SLICE))
                for a in range(start, n, _SLICE):
                    b = min(n, a + _SLICE)
                    out = self._out[a:b] if scratch is None else scratch[: b - a]
                    bounds = self._smooth(values[a:b], out)
                    if scratch is not None:
                        self._store(a, out, bounds)
            self._n = n
        return self._out[:n]

    def stream(self, new: np.ndarray) -> np.ndarray:
        """Smooth the values that follow those fed so far and return them, keeping no output
        (O(1) memory: for readers that see each value once, like the divergence detector).

        Same EMA as :meth:`update`, without TensorBoard's constant-series rule (a constant series
        smooths to itself up to rounding anyway). Don't mix with :meth:`update` on one smoother."""
        new = np.asarray(new, dtype=np.float64)
        out = np.empty(len(new))
        for a in range(0, len(new), _SLICE):  # slices bound the temporaries
            self._smooth(new[a : a + _SLICE], out[a : a + _SLICE])
        return out

    def _smooth(self, new: np.ndarray, out: np.ndarray) -> tuple[float, float] | None:
        """Write ``new`` smoothed into ``out`` (float64); return its (min, max) when all finite.

        All finite is the common case and is judged on the result (a non-finite input makes its
        own output non-finite), so it costs no pass of its own; the min and max are what
        :func:`fits_float32` needs. Otherwise the finite values are smoothed on their own and
        the others passed through (TensorBoard's rule), and ``None`` is returned.
        """
        with np.errstate(invalid="ignore"):  # inf - inf, where +inf and -inf meet: redone below
            last = _scan(new, self.weight, 1.0 - self.weight, self._last, out)
            self._debias_next(out)
        lo, hi = (float(out.min()), float(out.max())) if len(out) else (0.0, 0.0)
        if math.isfinite(lo) and math.isfinite(hi):
            self._last = last
            self._count += len(new)
            return lo, hi
        finite = np.isfinite(new)
        out[:] = new
        xf = new[finite]
        if len(xf):
            acc = np.empty(len(xf))
            self._last = _scan(xf, self.weight, 1.0 - self.weight, self._last, acc)
            self._debias_next(acc)
            self._count += len(xf)
            out[finite] = acc
        return None

    def _debias_next(self, acc: np.ndarray) -> None:
        """Divide the accumulators of the finite points that follow ``self._count`` by 1 - w**k."""
        j = min(len(acc), _debias_horizon(self.weight) - self._count)
        if j > 0:  # TensorBoard divides by 1 - w**k; past the horizon that is exactly 1
            acc[:j] /= _debias(self.weight, self._count, j)

    def _store(self, start: int, smoothed: np.ndarray, bounds: tuple[float, float] | None = None) -> None:
        if self._out.dtype != np.float64 and not fits_float32(smoothed, bounds):
            # from now on: float64 (earlier values stay as drawn). Only what is filled, [0, start),
            # is converted: the slack past it is uninitialised memory (a cast could warn on it).
            wide = np.empty(len(self._out), dtype=np.float64)
            wide[:start] = self._out[:start]
            self._out = wide
        self._out[start : start + len(smoothed)] = smoothed


# -- further modes -------------------------------------------------------------------------------
#
# One slider drives every mode. Its value ``s`` in [0, 1) is the EMA weight for both EMAs; the
# centered windows use the same effective width: ``span = (1 + s) / (1 - s)`` points, the pandas
# ``span`` of an EMA with weight ``s`` (0.6 -> 4, 0.9 -> 19, 0.99 -> 199, 0.999 -> 1999), so moving
# the slider feels the same in every mode. Windows are counted in points (not as a fraction of the
# run) so that they do not change as the run grows: that is what keeps a frame incremental.

_TIME_UNIT_SAMPLE = 32  # spacings that fix the time EMA's unit (their median)
_MAX_LOG_DECAY = 115.0  # between two points: e**-115 ~ 1e-50, the past no longer shows in float64
# Gaussian window sums: direct convolution up to this many taps (or this much work), FFT
# blocks (overlap-add) above: ~15 ms per 1e6 points whatever the width, where one FFT of the
# whole series costs ~10x that and direct sums ~1.3 ns per point and tap.
_DIRECT_TAPS = 64
_DIRECT_WORK = 200_000


def half_window(weight: float) -> int:
    """Half-width ``h`` of the centered moving average (window ``2h + 1`` ~ the EMA span)."""
    span = (1.0 + weight) / (1.0 - weight)
    return round((span - 1.0) / 2.0)


def gaussian_kernel(weight: float) -> np.ndarray:
    """Gaussian weights with the variance of the moving average's box (sigma = (2h+1)/sqrt(12)),
    truncated at 3 sigma; equals ``scipy.signal.windows.gaussian(2k+1, sigma)``."""
    sigma = (2 * half_window(weight) + 1) / math.sqrt(12.0)
    k = math.ceil(3.0 * sigma)
    j = np.arange(-k, k + 1, dtype=np.float64)
    return np.exp(-0.5 * (j / sigma) ** 2)


class TimeEmaSmoother(_Cache):
    """Debiased EMA whose decay follows the x spacing (W&B's time-weighted EMA).

    Each point's weight decays by ``w ** (dx / unit)`` over an x distance ``dx``, so a gap
    of ten logging intervals forgets as much as ten points would; TensorBoard's EMA treats
    every point as one step apart. ``unit`` is the median spacing of the first
    ``_TIME_UNIT_SAMPLE`` intervals (fixed from then on, so evenly logged data smooths exactly
    like :class:`EmaSmoother`). The output is ``sum(w_i y_i) / sum(w_i)`` over the finite points
    so far, which is ``pandas ewm(times=x, halflife=unit * ln 0.5 / ln w, adjust=True)``.
    W&B scales ``dx`` by the visible x range instead; a fixed unit keeps earlier outputs final,
    so each frame costs O(new points). Non-finite values pass through and are skipped; x
    steps backwards (clock changes) count as no distance.
    """

    mode = "time_ema"

    def __init__(self, weight: float, storage: np.ndarray | None = None) -> None:
        if not 0.0 <= weight < 1.0:
            raise ValueError(f"smoothing weight must be in [0, 1), got {weight!r}")
        self.weight = float(weight)
        self._log_w = math.log(weight) if weight > 0 else -math.inf
        self._out = _adopt(storage, np.float64)
        self._n = 0
        self._unit = math.nan  # the unit used so far (NaN: none yet); final once the sample is complete
        self._num = self._den = 0.0
        self._t_last = math.nan  # x of the last finite point
        self.changed_from = 0

    @staticmethod
    def _unit_of(x: np.ndarray) -> float:
        d = np.diff(x[: _TIME_UNIT_SAMPLE + 1])
        d = d[d > 0]
        return float(np.median(d)) if len(d) else 1.0

    def update(self, values: np.ndarray, x: np.ndarray) -> np.ndarray:
        n = len(values)
        if n < self._n:
            raise ValueError("series shrank; TimeEmaSmoother only follows appended data")
        if len(x) != n:
            raise ValueError(f"x has {len(x)} points, values {n}")
        start = self._n
        if self._n <= _TIME_UNIT_SAMPLE:  # the unit is still being learnt: redo if it moved
            unit = self._unit_of(x[:n])
            if unit != self._unit:
                self._unit, start = unit, 0
                self._num = self._den = 0.0
                self._t_last = math.nan
        self.changed_from = start
        self._room(n, start)
        if n > start:
            self._smooth(values[start:n], x[start:n], self._out[start:n])
        self._n = n
        return self._out[:n]

    def _smooth(self, new: np.ndarray, t: np.ndarray, out: np.ndarray) -> None:
        """Write ``new`` (at x ``t``) smoothed into ``out``; the temporaries are updated in place."""
        if self.weight == 0.0:
            out[:] = new
            return
        finite = np.isfinite(new)
        all_finite = bool(finite.all())
        if all_finite:  # the usual case: no copies of the finite values, no scatter back
            y, ty = new, t
        else:
            out[:] = new  # non-finite values pass through
            y, ty = new[finite], t[finite]
            if not len(y):
                return
        # log decay per point, clamped: beyond e**-115 the past no longer shows in float64 anyway
        step = np.empty(len(y))
        step[0] = 0.0 if math.isnan(self._t_last) else ty[0] - self._t_last
        np.subtract(ty[1:], ty[:-1], out=step[1:])
        np.maximum(step, 0.0, out=step)
        np.divide(step, self._unit, out=step)
        np.multiply(step, self._log_w, out=step)
        np.maximum(step, -_MAX_LOG_DECAY, out=step)
        decay = np.exp(step, out=step)
        # num_t = decay_t * num_(t-1) + y_t and den_t = decay_t * den_(t-1) + 1: the EMA's scan
        # with a coefficient per point (it overwrites them: the first scan gets a copy)
        num = out if all_finite else np.empty(len(y))
        den = np.empty(len(y))
        self._num = _scan(y, decay.copy(), 1.0, self._num, num)
        self._den = _scan(np.broadcast_to(1.0, len(y)), decay, 1.0, self._den, den)
        np.divide(num, den, out=num)
        if not all_finite:
            out[finite] = num
        self._t_last = float(ty[-1])


def _window_sums(a: np.ndarray, kernel: np.ndarray, box: bool) -> np.ndarray:
    """``sum_j kernel[j + k] * a[i + j]`` for every i (zeros outside ``a``); kernel symmetric."""
    k = len(kernel) // 2
    n = len(a)
    if box:  # c[min(i + k + 1, n)] - c[max(i - k, 0)] over the running sum c, by slices
        c = np.concatenate(([0.0], np.cumsum(a)))
        out = np.empty(n)
        m = max(0, n - k)
        out[:m] = c[k + 1 : n + 1]
        out[m:] = c[n]
        out[k + 1 :] -= c[1 : max(1, n - k)]
        return out
    if len(kernel) <= _DIRECT_TAPS or n * len(kernel) <= _DIRECT_WORK:
        return np.convolve(a, kernel, mode="same") if n >= len(kernel) else np.convolve(a, kernel)[k : k + n]
    size = 1 << max(12, math.ceil(math.log2(4 * len(kernel))))  # FFT blocks of ~4 kernels
    step = size - 2 * k
    spectrum = np.fft.rfft(kernel, size)
    full = np.zeros(n + 2 * k)
    for lo in range(0, n, step):  # overlap-add: each block's full convolution, summed
        part = np.fft.irfft(np.fft.rfft(a[lo : lo + step], size) * spectrum, size)
        end = min(n, lo + step) - lo + 2 * k
        full[lo : lo + end] += part[:end]
    return full[k : k + n]


def _window_weights(n: int, kernel: np.ndarray, box: bool) -> np.ndarray:
    """``_window_sums(np.ones(n), kernel, box)``: the whole kernel's sum except within ``k`` of
    either end, so only a short stretch is convolved (the denominator of an all-finite series)."""
    k = len(kernel) // 2
    if n <= 4 * k + 2:
        return _window_sums(np.ones(n), kernel, box)
    edges = _window_sums(np.ones(4 * k + 2), kernel, box)
    out = np.full(n, edges[2 * k + 1])
    out[: 2 * k + 1] = edges[: 2 * k + 1]
    out[n - 2 * k - 1 :] = edges[2 * k + 1 :]
    return out


class CenteredSmoother(_Cache):
    """Centered weighted window (moving average or Gaussian) over the finite neighbours.

    ``out[i] = sum(K[j] * y[i+j]) / sum(K[j])`` over the finite ``y`` within ``i-k .. i+k``
    (windows shrink at both ends: pandas ``rolling(center=True, min_periods=1)``); non-finite
    points pass through as gaps. An appended point changes only the last ``k`` outputs, so
    :meth:`update` recomputes ``new + k`` outputs from ``new + 2k`` inputs.
    """

    def __init__(self, mode: str, weight: float, storage: np.ndarray | None = None) -> None:
        if not 0.0 <= weight < 1.0:
            raise ValueError(f"smoothing weight must be in [0, 1), got {weight!r}")
        if mode not in ("moving_average", "gaussian"):
            raise ValueError(f"mode must be 'moving_average' or 'gaussian', got {mode!r}")
        self.mode = mode
        self.weight = float(weight)
        self._box = mode == "moving_average"
        self.kernel = np.ones(2 * half_window(weight) + 1) if self._box else gaussian_kernel(weight)
        self.half = len(self.kernel) // 2
        self._out = _adopt(storage, np.float64)
        self._n = 0
        self.changed_from = 0
        self.examined = 0  # input points read so far (tests check the incremental cost)

    def update(self, values: np.ndarray, x: np.ndarray | None = None) -> np.ndarray:
        n = len(values)
        if n < self._n:
            raise ValueError("series shrank; CenteredSmoother only follows appended data")
        k = self.half
        start = max(0, self._n - k) if n > self._n else n
        self.changed_from = start
        if n > len(self._out):
            grown = np.empty(max(n, 2 * len(self._out), 256))
            grown[: self._n] = self._out[: self._n]
            self._out = grown
        if n > start:
            lo = max(0, start - k)
            seg = values[lo:n]
            self.examined += len(seg)
            finite = np.isfinite(seg)
            if finite.all():  # the usual case: the denominator needs no convolution
                smooth = _window_sums(seg, self.kernel, self._box)
                smooth /= _window_weights(len(seg), self.kernel, self._box)
            else:
                num = _window_sums(np.where(finite, seg, 0.0), self.kernel, self._box)
                den = _window_sums(finite.astype(np.float64), self.kernel, self._box)
                with np.errstate(invalid="ignore", divide="ignore"):
                    smooth = np.where(finite, num / np.where(finite, den, 1.0), seg)
            self._out[start:n] = smooth[start - lo :]
        self._n = n
        return self._out[:n]


Smoother = EmaSmoother | TimeEmaSmoother | CenteredSmoother


@dataclass(frozen=True)
class SmoothingMode:
    """One smoothing mode, declared once: the ``smoothing_mode`` trait, the control bar's dropdown,
    data files and the frame builder all read :data:`MODES`.

    ``make(weight, compact, storage)`` returns a fresh incremental smoother; ``needs_x``: its result
    depends on the x column (so switching the x axis recomputes it).
    """

    name: str
    label: str  # the dropdown's short label (the whole control bar fits one row)
    meaning: str  # what the slider value ``s`` means in this mode
    make: Callable[[float, bool, np.ndarray | None], Smoother]
    needs_x: bool = False


#: Every smoothing mode, in the dropdown's order. Adding a mode is one entry here (plus its test).
MODES: dict[str, SmoothingMode] = {m.name: m for m in (
    SmoothingMode("ema", "EMA", "TensorBoard's debiased EMA with weight s",
                  lambda w, compact, storage: EmaSmoother(w, compact=compact, storage=storage)),
    SmoothingMode("time_ema", "time EMA", "W&B's time-weighted EMA: weight s per x unit (uneven spacing)",
                  lambda w, compact, storage: TimeEmaSmoother(w, storage=storage), needs_x=True),
    SmoothingMode("moving_average", "moving avg", "centered moving average of (1+s)/(1-s) points",
                  lambda w, compact, storage: CenteredSmoother("moving_average", w, storage=storage)),
    SmoothingMode("gaussian", "Gaussian", "centered Gaussian window with the moving average's variance",
                  lambda w, compact, storage: CenteredSmoother("gaussian", w, storage=storage)),
)}
SMOOTHING_MODES = tuple(MODES)


def make_smoother(mode: str, weight: float, compact: bool = False, storage: np.ndarray | None = None) -> Smoother:
    """A fresh incremental smoother for ``mode`` (one of :data:`SMOOTHING_MODES`).

    ``compact`` stores the EMA as float32 where that loses nothing drawn (see :class:`EmaSmoother`).
    ``storage``: the :attr:`~_Cache.buffer` of the smoother this one replaces, to reuse its memory.
    """
    spec = MODES.get(mode)
    if spec is None:
        raise ValueError(f"smoothing_mode must be one of {SMOOTHING_MODES}, got {mode!r}")
    return spec.make(weight, compact, storage)


def smooth(values: np.ndarray, weight: float, mode: str = "ema", x: np.ndarray | None = None) -> np.ndarray:
    """Smooth a whole series at once; ``x`` (default: 0, 1, 2...) matters for ``time_ema`` only."""
    v = _series(values)
    xs = np.arange(len(v), dtype=np.float64) if x is None else _series(x, "x")
    smoothed: np.ndarray = make_smoother(mode, weight).update(v, xs).copy()
    return smoothed
