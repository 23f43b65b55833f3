"""The learning-rate range test's schedule, stopping rule and suggestions, as fastai has them.

Pure NumPy, no framework: :mod:`lossviz_widget.lr_finder.finder` drives a model with these.
Everything follows fastai ``fastai/callback/schedule.py`` (``LRFinder``, ``valley``,
``slide``, ``minimum``, ``steep``, ``Learner.lr_find``) and ``AvgSmoothLoss`` in
``fastai/learner.py``:

* schedule: ``lr_i = start_lr * (end_lr / start_lr) ** (i / num_it)`` for
  ``i = 0 .. num_it - 1`` (fastai's ``SchedExp`` at ``train_iter / num_it``; the
  last lr is one step short of ``end_lr``);
* smoothed loss: debiased EMA ``v = beta * v + (1 - beta) * loss`` from 0,
  shown as ``v / (1 - beta**k)``, beta = 0.98;
* stop once the smoothed loss exceeds 4x the best smoothed loss so far (the
  point that triggers the stop is recorded);
* suggestions are computed on the smoothed losses ``[num_it // 10 : -5]``, cut
  at the first NaN.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "SUGGESTION_METHODS",
    "DivergenceMonitor",
    "Suggestion",
    "lr_schedule",
    "minimum",
    "slide",
    "steep",
    "suggest",
    "valley",
]

DIVERGENCE_FACTOR = 4.0  # fastai: stop when smooth loss > 4 * best


@dataclass(frozen=True)
class Suggestion:
    """One suggested learning rate and the point (lr, smoothed loss) marked on the curve.

    As in fastai the marked point can differ from the suggestion: ``minimum``
    suggests a tenth of the lr it marks at the minimum. NaN when the curve is
    too short for the method.
    """

    method: str
    lr: float
    point_lr: float
    point_loss: float


def lr_schedule(start_lr: float = 1e-7, end_lr: float = 10.0, num_it: int = 100) -> np.ndarray:
    """fastai's exponential schedule: ``start_lr * (end_lr / start_lr) ** (i / num_it)``, i < num_it."""
    if not (math.isfinite(start_lr) and start_lr > 0):
        raise ValueError(f"start_lr must be a positive number, got {start_lr!r}")
    if not (math.isfinite(end_lr) and end_lr > start_lr):
        raise ValueError(f"end_lr must be a number larger than start_lr={start_lr!r}, got {end_lr!r}")
    if isinstance(num_it, bool) or not isinstance(num_it, int) or num_it < 1:
        raise ValueError(f"num_it must be a positive integer, got {num_it!r}")
    return start_lr * (end_lr / start_lr) ** (np.arange(num_it) / num_it)


class DivergenceMonitor:
    """fastai's smoothed loss (``AvgSmoothLoss``) and ``LRFinder`` stopping rule, one loss at a time."""

    def __init__(self, beta: float = 0.98, stop_div: bool = True) -> None:
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"beta must be in [0, 1), got {beta!r}")
        self.beta = beta
        self.stop_div = stop_div
        self._avg = 0.0
        self._count = 0
        self.best = math.inf

    def update(self, loss: float) -> tuple[float, str | None]:
        """Add one raw loss; returns the smoothed loss and why to stop (None: go on).

        Reasons: ``"non-finite"`` (the raw loss is NaN or inf; always stops, since the
        weights are then ruined) and ``"diverged"`` (smoothed > 4x best, with ``stop_div``).
        """
        self._count += 1
        self._avg = self.beta * self._avg + (1.0 - self.beta) * loss
        smooth = self._avg / (1.0 - self.beta**self._count)
        if not math.isfinite(loss):
            return smooth, "non-finite"
        if smooth < self.best:
            self.best = smooth
        if self.stop_div and smooth > DIVERGENCE_FACTOR * self.best:
            return smooth, "diverged"
        return smooth, None


def _point_at(method: str, lr: float, lrs: np.ndarray, losses: np.ndarray, idx: int) -> Suggestion:
    return Suggestion(method, float(lr), float(lrs[idx]), float(losses[idx]))


def _nan(method: str) -> Suggestion:
    return Suggestion(method, math.nan, math.nan, math.nan)


def valley(lrs: np.ndarray, losses: np.ndarray) -> Suggestion:
    """fastai's ``valley``: about 2/3 down the longest valley of the loss curve.

    The longest valley is the longest strictly decreasing subsequence of the losses
    (``lds[i]`` = its length ending at i), found with fastai's O(n^2) scan and its
    exact tie-breaking (the start is fixed when the end first moves to ``i``);
    the suggestion is ``lrs[start + int(len/3) + int(len/6)]``.
    """
    n = len(losses)
    if n == 0:
        return _nan("valley")
    lds = np.ones(n, dtype=np.int64)
    max_start, max_end = 0, 0
    for i in range(1, n):
        # lds[i] as fastai's inner loop over j grows it: a running maximum
        running = np.maximum.accumulate(np.where(losses[i] < losses[:i], lds[:i] + 1, 1))
        lds[i] = running[-1]
        if lds[max_end] < lds[i]:
            first = int(np.argmax(running > lds[max_end]))  # the j at which fastai moves max_end
            max_start, max_end = i - int(running[first]), i
    sections = (max_end - max_start) / 3
    idx = max_start + int(sections) + int(sections / 2)
    return _point_at("valley", lrs[idx], lrs, losses, idx)


def steep(lrs: np.ndarray, losses: np.ndarray) -> Suggestion:
    """fastai's ``steep``: the lr where d loss / d log10(lr) is most negative.

    Forward differences ``(loss[i+1] - loss[i]) / (log10 lr[i+1] - log10 lr[i])``;
    suggests and marks ``lrs[argmin]`` (fastai uses the natural log: same argmin).
    """
    if len(losses) < 2:
        return _nan("steep")
    log_lr = np.log10(lrs)
    idx = int(np.argmin(np.diff(losses) / np.diff(log_lr)))
    return _point_at("steep", lrs[idx], lrs, losses, idx)


def minimum(lrs: np.ndarray, losses: np.ndarray) -> Suggestion:
    """fastai's ``minimum``: a tenth of the lr at the smallest (smoothed) loss, marking the minimum."""
    if len(losses) == 0:
        return _nan("minimum")
    idx = int(np.argmin(losses))
    return _point_at("minimum", lrs[idx] / 10, lrs, losses, idx)


def slide(lrs: np.ndarray, losses: np.ndarray, lr_diff: int = 15, thresh: float = 0.005,
          adjust_value: float = 1.0) -> Suggestion:
    """fastai's ``slide`` rule: slide a window of ``lr_diff`` points down from the end.

    With ``g = np.gradient(losses)`` (per iteration, as fastai: on the exponential
    schedule that is d loss / d log10(lr) times the constant step in log10(lr), so
    ``thresh`` is in loss per iteration), move the window ``[r - lr_diff, r]`` left
    from the last point while ``|g[r] - g[r - lr_diff]| > thresh``; suggest the
    window's left lr times ``adjust_value``, marked at the loss interpolated in log10(lr).
    """
    n = len(losses)
    if n < lr_diff + 1:
        return _nan("slide")
    grad = np.gradient(losses)
    right, left = n - 1, n - 1 - lr_diff
    chosen = lrs[left]
    while left >= 0 and abs(grad[right] - grad[left]) > thresh:
        chosen = lrs[left]
        right, left = right - 1, left - 1
    lr = float(chosen) * adjust_value
    loss = float(np.interp(np.log10(lr), np.log10(lrs), losses))
    return Suggestion("slide", lr, lr, loss)


SUGGESTION_METHODS: dict[str, Callable[[np.ndarray, np.ndarray], Suggestion]] = {
    "valley": valley, "steep": steep, "minimum": minimum, "slide": slide,
}


def suggest(lrs: Sequence[float] | np.ndarray, smoothed: Sequence[float], num_it: int,
            methods: Sequence[str] = ("valley", "steep", "minimum", "slide")) -> dict[str, Suggestion]:
    """Run the named suggestion methods the way ``Learner.lr_find`` does.

    The curve is trimmed to ``[num_it // 10 : -5]`` (skip the flat start and the
    divergence at the end) and cut at its first NaN before any method sees it.
    """
    unknown = [m for m in methods if m not in SUGGESTION_METHODS]
    if unknown:
        raise ValueError(f"suggest: unknown method {unknown[0]!r}; choose from {', '.join(SUGGESTION_METHODS)}")
    lrs_a = np.asarray(lrs, dtype=np.float64)[num_it // 10 : -5]
    loss_a = np.asarray(smoothed, dtype=np.float64)[num_it // 10 : -5]
    nan = np.flatnonzero(np.isnan(loss_a))
    if len(nan):
        lrs_a, loss_a = lrs_a[: nan[0]], loss_a[: nan[0]]
    return {m: SUGGESTION_METHODS[m](lrs_a, loss_a) for m in methods}
