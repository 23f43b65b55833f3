"""What the validation rules (plateau, overfitting, gap) count as one *evaluation*.

An evaluation on a held-out set every N steps or every epoch is one number with little noise:
each value is an evaluation, and ``ReduceLROnPlateau``'s and Prechelt's rules apply to it as
written. A validation loss logged at (nearly) every training step is something else: the loss
of one validation minibatch, a noisy estimate. Fed to those rules value by value, a steadily
falling curve reads as a new plateau and a new "overfitting" at every chance high (the issue
that started this module: 14 plateaus and 6 overfitting warnings on a healthy run). Such a
series is cut into blocks of ``block`` (20) values and each block's mean is one evaluation,
with its standard error (``se``), which the overfitting rule subtracts twice before comparing
with the minimum.

Which is which is decided once per series, from the data:

* sparse (each value): fewer values than half the training partner's over the same steps, or
  no training partner (decided at the 2nd value);
* otherwise, once ``decide_at`` (50) values are in: blocks if the values are noisy, else each
  value. Noisy: the median of ``|v[i] - (v[i-1] + v[i+1]) / 2|`` (what a straight line through
  the neighbours misses) is above 60% of the median ``|v[i] - v[i-1]|`` (white noise: 87%; a
  smooth falling curve: under 50% even where it halves per value) or above 2% of the median
  value. Until then the values wait (nothing is judged on them).
"""

from __future__ import annotations

import numpy as np

from .._model import MetricHistory

__all__ = ["Evaluations"]


class Evaluations:
    """Incremental evaluations of one validation series (see the module docstring)."""

    def __init__(self, block: int = 20, decide_at: int = 50, each: bool = False) -> None:
        self.block, self.decide_at = block, decide_at
        self.mode: str | None = "each" if each else None  # None (undecided), "each" or "blocks"
        self.read = 0  # values of the series turned into evaluations so far

    def take(self, hist: MetricHistory, stop: int, partner: MetricHistory | None
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The evaluations completed by values ``[read, stop)`` of ``hist``: ``(steps, values, se)``
        (``se`` 0 for single values). ``partner`` is the training series (for the decision)."""
        if self.mode is None:
            self.mode = self._decide(hist, stop, partner)
            if self.mode is None:
                return np.empty(0), np.empty(0), np.empty(0)
        if self.mode == "each":
            a, self.read = self.read, stop
            return hist.steps[a:stop], hist.values[a:stop], np.zeros(stop - a)
        n = (stop - self.read) // self.block
        if not n:
            return np.empty(0), np.empty(0), np.empty(0)
        a, b = self.read, self.read + n * self.block
        self.read = b
        grid = hist.values[a:b].reshape(n, self.block)
        finite = np.isfinite(grid)
        count = finite.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            mean = np.where(finite, grid, 0.0).sum(axis=1) / count
            var = np.where(finite, (grid - mean[:, None]) ** 2, 0.0).sum(axis=1) / np.maximum(count - 1, 1)
            se = np.sqrt(var / count)
        mean = np.where(count >= self.block // 2, mean, np.nan)  # mostly non-finite: a bad evaluation
        return hist.steps[a + self.block - 1 : b : self.block], mean, np.where(np.isfinite(se), se, 0.0)

    def _decide(self, hist: MetricHistory, stop: int, partner: MetricHistory | None) -> str | None:
        if partner is None or not len(partner):
            return "each"
        if stop < 2:
            return None
        steps = hist.steps[:stop]
        lo, hi = np.searchsorted(partner.steps, [steps[0], steps[-1]], side="right")
        if stop < 0.5 * (hi - lo + 1):
            return "each"
        if stop < self.decide_at:
            return None
        v = hist.values[: self.decide_at]
        v = v[np.isfinite(v)]
        if len(v) < 3:
            return "each"
        resid = float(np.median(np.abs(v[1:-1] - (v[:-2] + v[2:]) / 2)))
        step = float(np.median(np.abs(np.diff(v))))
        return "blocks" if resid > 0.6 * step or resid > 0.02 * float(np.median(np.abs(v))) else "each"
