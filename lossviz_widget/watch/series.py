"""Watched quantities as per-layer series: what the hooks measured, on the host (NumPy only).

The collector (:mod:`.collect`) packs one sampled training step into one device vector laid
out by :class:`Layout`; :class:`WatchedSeries` takes a batch of such rows, fetched from the
device in one copy at frame time, and keeps them as ``steps x layers`` matrices per quantity.
:meth:`WatchedSeries.heat` reduces a quantity to at most ``max_rows x max_cols`` cells for a
heatmap, so what a frame sends is bounded whatever the depth of the model and the length of
the run. No torch here: the diagnostics rules and tests read these series without it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["ACTIVATION_QUANTITIES", "LOG_QUANTITIES", "PARAM_QUANTITIES", "QUANTITIES", "Heat", "Layout",
           "WatchedSeries", "rms"]

# per layer with parameters (a module owning parameters directly: Linear, Conv2d, LayerNorm...)
PARAM_QUANTITIES = ("grad_norm", "weight_norm", "update_ratio")
# per activation module (ReLU, GELU, Tanh...): mean and std of the output; dead_fraction for the
# ReLU family only (NaN for the others): the share of units zero for every sample of the batch
ACTIVATION_QUANTITIES = ("act_mean", "act_std", "dead_fraction")
QUANTITIES = PARAM_QUANTITIES + ACTIVATION_QUANTITIES
LOG_QUANTITIES = frozenset({"grad_norm", "weight_norm", "update_ratio", "act_std"})  # span decades: log colour
_MEAN_REDUCED = frozenset(ACTIVATION_QUANTITIES)  # cells merge by mean; the others by max (spikes survive)


@dataclass(frozen=True)
class Layout:
    """Which layers a sampled row holds, in which order (input side first, as registered).

    A stored row is ``[total grad norm, grad_norm x P, weight_norm x P, update_ratio x P,
    act_mean x A, act_std x A, dead_fraction x A]`` with ``P = len(param_layers)``,
    ``A = len(act_layers)``. Rows come from the device as ``[grad norm x Q, weight norm x Q,
    update norm x Q, sum x A, 2-norm x A, live units x A]`` over the ``Q`` parameter
    tensors (the update norms as measured, before :attr:`update_scale`);
    :meth:`WatchedSeries.append` turns them into stored rows.
    """

    param_layers: tuple[str, ...]
    param_sizes: tuple[int, ...]  # elements per layer (its gradient's RMS is norm / sqrt(size))
    param_layer_of: tuple[int, ...]  # per parameter tensor, the index of its layer (non-decreasing)
    act_layers: tuple[str, ...] = ()
    relu_layers: frozenset[str] = field(default_factory=frozenset)  # act_layers with a dead_fraction
    # per parameter tensor, the factor from its measured update norm to its whole update's (the
    # collector measures large tensors' updates on a strided sample); empty: all exact (1.0)
    update_scale: tuple[float, ...] = ()

    @property
    def width(self) -> int:
        """Values per stored row."""
        return 1 + 3 * len(self.param_layers) + 3 * len(self.act_layers)

    @property
    def device_width(self) -> int:
        """Values per row as measured: three norms per parameter tensor, three sums per activation layer."""
        return 3 * len(self.param_layer_of) + 3 * len(self.act_layers)

    def layers(self, quantity: str) -> tuple[str, ...]:
        """Row labels of ``quantity``'s matrix."""
        if quantity in PARAM_QUANTITIES:
            return self.param_layers
        if quantity in ACTIVATION_QUANTITIES:
            return self.act_layers
        raise ValueError(f"unknown quantity {quantity!r}; one of {QUANTITIES}")

    def columns(self, quantity: str) -> slice:
        """Where ``quantity`` sits in a packed row."""
        p, a = len(self.param_layers), len(self.act_layers)
        if quantity in PARAM_QUANTITIES:
            start = 1 + PARAM_QUANTITIES.index(quantity) * p
            return slice(start, start + p)
        start = 1 + 3 * p + ACTIVATION_QUANTITIES.index(quantity) * a
        return slice(start, start + a)


class _Rows:
    """A growing ``n x width`` matrix (capacity doubles: amortised O(1) per row)."""

    def __init__(self, width: int, dtype: type = np.float32) -> None:
        self._data: np.ndarray = np.empty((64, width), dtype=dtype)
        self._n = 0

    def append(self, rows: np.ndarray) -> None:
        need = self._n + len(rows)
        if need > len(self._data):
            grown = np.empty((max(need, 2 * len(self._data)), self._data.shape[1]), dtype=self._data.dtype)
            grown[: self._n] = self._data[: self._n]
            self._data = grown
        self._data[self._n : need] = rows
        self._n = need

    def view(self) -> np.ndarray:
        out = self._data[: self._n]
        out.flags.writeable = False
        return out


@dataclass(frozen=True)
class Heat:
    """One heatmap's cells: ``color[row, col]`` at ``steps[col]`` for ``labels[row]``."""

    quantity: str
    steps: np.ndarray  # first step of each column
    labels: tuple[str, ...]  # one per row, input side first ("a … b" for a group of layers)
    color: np.ndarray  # rows x cols, float32, NaN where nothing was measured


class WatchedSeries:
    """Every sampled row so far: steps, the total gradient norm, and per-quantity matrices.

    Not thread-safe: the watcher appends and reads under the recorder's frame lock.
    """

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self._steps = _Rows(1, np.float64)
        self._n = 0  # rows visible to readers
        self._present: set[str] = set()  # quantities measured at least once
        self._rows = _Rows(layout.width)
        of = np.asarray(layout.param_layer_of, dtype=np.intp)
        self._layer_starts = np.flatnonzero(np.r_[True, of[1:] != of[:-1]]) if of.size else of

    def __len__(self) -> int:
        return self._n

    def append(self, steps: Sequence[float], rows: np.ndarray, counts: np.ndarray | None = None) -> None:
        """Add measured rows (``len(steps) x layout.device_width``), steps increasing.

        Per layer: norms are the root of the summed squares of its tensors' norms (NaN when one
        had no gradient), the update ratio is ‖Δθ‖/‖θ‖ after the step, the total gradient norm
        covers every tensor that had one. Per activation layer, ``counts``
        (``len(steps) x A x 2``) gives the output's elements and units, for the mean, the
        (unbiased) std and the dead share (NaN where the layer was not measured)."""
        lay = self.layout
        raw = np.asarray(rows, dtype=np.float64).reshape(len(steps), lay.device_width)
        q, a = len(lay.param_layer_of), len(lay.act_layers)
        grads, weights, updates = raw[:, :q], raw[:, q : 2 * q], raw[:, 2 * q : 3 * q]
        if lay.update_scale:
            updates = updates * np.asarray(lay.update_scale)
        with np.errstate(invalid="ignore", divide="ignore"):
            total = np.where(np.isnan(grads).all(axis=1), np.nan, np.sqrt(np.nansum(grads**2, axis=1)))
            w = self._per_layer(weights)
            parts = [total[:, None], self._per_layer(grads), w, self._per_layer(updates) / w]
            if a:
                c = np.asarray(counts, dtype=np.float64).reshape(len(steps), a, 2)
                n, units = c[..., 0], c[..., 1]
                sums, norms, alive = (raw[:, 3 * q + k * a : 3 * q + (k + 1) * a] for k in range(3))
                squares = norms**2
                mean = np.where(n > 0, sums / n, np.nan)
                var = np.where(n > 1, (squares - sums * mean) / (n - 1), np.where(n == 1, 0.0, np.nan))
                parts += [mean, np.sqrt(np.maximum(var, 0.0)), np.where(units > 0, 1.0 - alive / units, np.nan)]
        stored = np.concatenate(parts, axis=1)
        self._present |= {q for q in QUANTITIES if (~np.isnan(stored[:, lay.columns(q)])).any()}
        self._rows.append(stored)
        self._steps.append(np.asarray(steps, dtype=np.float64).reshape(-1, 1))
        self._n += len(steps)  # last: a reader on another thread sees whole rows

    def _per_layer(self, norms: np.ndarray) -> np.ndarray:
        """Per-tensor norms (rows x Q) -> per-layer norms (rows x P): root of the summed squares (a
        layer's tensors are consecutive: one ``reduceat`` over the row, where ``np.add.at`` was
        several times slower; a NaN stays within its layer)."""
        if not self._layer_starts.size:
            return np.zeros((len(norms), 0))
        return np.sqrt(np.add.reduceat(norms**2, self._layer_starts, axis=1))

    @property
    def steps(self) -> np.ndarray:
        """The training step of each sampled row."""
        return self._steps.view()[: self._n, 0]

    @property
    def total_grad_norm(self) -> np.ndarray:
        """The norm of all gradients together, per sampled row (what ``clip_grad_norm_`` computes)."""
        return self._rows.view()[: len(self), 0]

    def matrix(self, quantity: str) -> np.ndarray:
        """``quantity`` per sampled row and layer: ``len(self) x len(layout.layers(quantity))``."""
        return self._rows.view()[: len(self), self.layout.columns(quantity)]

    def present(self) -> tuple[str, ...]:
        """The quantities with at least one measured (non-NaN) value, in :data:`QUANTITIES` order."""
        return tuple(q for q in QUANTITIES if q in self._present)

    def heat(self, quantity: str, max_cols: int = 240, max_rows: int = 32) -> Heat:
        """``quantity`` reduced to at most ``max_rows x max_cols`` cells.

        Columns: consecutive sampled steps in equal-count buckets; rows: consecutive layers in
        equal groups once there are more than ``max_rows``. A cell of norms or ratios keeps the
        largest value it covers (a spike survives, as on the curves); a cell of activation
        statistics their mean.
        """
        m = self.matrix(quantity)
        labels = self.layout.layers(quantity)
        reduce = _nanmean if quantity in _MEAN_REDUCED else _nanmax
        col_starts = _bucket_starts(len(m), max_cols)
        row_starts = _bucket_starts(len(labels), max_rows)
        cells = m if len(col_starts) == len(m) else reduce(m, col_starts, axis=0)
        cells = cells.T  # layers x steps
        if len(row_starts) < len(labels):
            cells = reduce(cells, row_starts, axis=0)
            ends = [*row_starts[1:], len(labels)]
            labels = tuple(labels[a] if b - a == 1 else f"{labels[a]} … {labels[b - 1]}"
                           for a, b in zip(row_starts, ends, strict=True))
        steps = self.steps[col_starts] if len(m) else np.empty(0)
        return Heat(quantity, steps, tuple(labels), np.ascontiguousarray(cells, dtype=np.float32))


def _bucket_starts(n: int, buckets: int) -> np.ndarray:
    """Start indices of at most ``buckets`` consecutive, equal-count groups of ``n`` items."""
    if n <= buckets:
        return np.arange(n)
    return np.unique(np.arange(buckets) * n // buckets)


def _nanmax(m: np.ndarray, starts: np.ndarray, axis: int) -> np.ndarray:
    """Per group of ``m`` along ``axis`` starting at ``starts``: the largest value, NaN when none."""
    filled = np.where(np.isnan(m), -np.inf, m)
    out = np.maximum.reduceat(filled, starts, axis=axis)
    out[out == -np.inf] = np.nan
    return out


def _nanmean(m: np.ndarray, starts: np.ndarray, axis: int) -> np.ndarray:
    """Per group of ``m`` along ``axis`` starting at ``starts``: the mean of its finite values."""
    finite = np.isfinite(m)
    total = np.add.reduceat(np.where(finite, m, 0.0), starts, axis=axis)
    count = np.add.reduceat(finite.astype(np.float32), starts, axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def rms(norms: np.ndarray, sizes: Sequence[int]) -> np.ndarray:
    """Per-element root mean square from per-layer norms (comparable across layer widths)."""
    return norms / np.sqrt(np.asarray(sizes, dtype=np.float64))
