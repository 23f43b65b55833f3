"""Detectors on a validation series and its training partner (same family, e.g. loss/val_loss).

For each new finite validation value ``v`` at step ``s`` the training level is the mean of the
last ``train_window`` (20) finite training values logged at or before ``s`` (a binary search and
a short slice: O(1) in the run length).

* ``overfitting``: Prechelt (1998) generalization loss ``GL = 100 * (v / v_min - 1)``, computed on
  the mean of the last ``persist`` validation values (the minimum of single noisy values sits
  low by about two noise deviations, which alone would read as GL of a few percent), above
  ``gl_alpha`` (5, in percent) while the training level is more than ``train_fall`` (1%,
  AUTOTRAINER) below what it was at the validation minimum, for ``persist`` (3) evaluations in a
  row. Ends when GL falls under ``gl_alpha / 2`` (a new minimum makes it 0).
* ``generalization_gap``: ``v`` more than ``gap_ratio`` (2x) the training level for ``persist``
  evaluations in a row; ends under ``(1 + gap_ratio) / 2``.

Both need positive values (lower-is-better losses).
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from ..buffers import MetricHistory
from .findings import Finding, fmt, pct

__all__ = ["Generalization"]


class Generalization:
    """Overfitting and generalization-gap state for one (validation, training) pair."""

    def __init__(self, gl_alpha: float, train_fall: float, gap_ratio: float, persist: int, train_window: int) -> None:
        self.gl_alpha, self.train_fall, self.gap_ratio = gl_alpha, train_fall, gap_ratio
        self.persist, self.train_window = persist, train_window
        self.recent: deque[float] = deque(maxlen=persist)  # the last finite validation values
        self.best = math.inf
        self.best_step = math.nan
        self.train_at_best = math.nan
        self.over_run = self.gap_run = 0
        self.over_active = self.gap_active = False
        self.examined = 0

    def _train_level(self, train: MetricHistory, step: float) -> float:
        i = int(np.searchsorted(train.steps, step, side="right"))
        seg = train.values[max(0, i - self.train_window) : i]
        self.examined += len(seg)
        seg = seg[np.isfinite(seg)]
        return float(seg.mean()) if len(seg) else math.nan

    def feed(self, val_name: str, train_name: str, val: MetricHistory, train: MetricHistory,
             start: int) -> list[Finding]:
        out: list[Finding] = []
        for s, v in zip(val.steps[start:].tolist(), val.values[start:].tolist()):
            self.examined += 1
            if not math.isfinite(v):
                continue
            tl = self._train_level(train, s)
            self.recent.append(v)
            mean = sum(self.recent) / len(self.recent)
            if mean < self.best:
                self.best, self.best_step, self.train_at_best = mean, s, tl
            gl = 100.0 * (mean / self.best - 1.0) if self.best > 0 else 0.0
            # False when either is NaN; a relative fall needs a positive level
            falling = self.train_at_best > 0 and tl < self.train_at_best * (1.0 - self.train_fall)
            self.over_run = self.over_run + 1 if gl > self.gl_alpha and falling else 0
            if self.over_active:
                self.over_active = gl >= self.gl_alpha / 2
            elif self.over_run >= self.persist:
                self.over_active = True
                drop = 1.0 - tl / self.train_at_best
                out.append(Finding(
                    "overfitting", "warning", val_name, s,
                    f"{val_name} is {pct(gl / 100)} above its minimum at step {fmt(self.best_step)} while "
                    f"{train_name} keeps falling ({pct(drop)} lower since): overfitting.",
                    f"Consider early stopping at step {fmt(self.best_step)} (keep that checkpoint) or more "
                    "regularization (weight decay, dropout, data augmentation, more data).",
                    {"gl": gl, "best": self.best, "best_step": self.best_step, "value": v,
                     "train": tl, "train_at_best": self.train_at_best, "train_metric": train_name},
                ))
            ratio = v / tl if tl > 0 else math.nan
            self.gap_run = self.gap_run + 1 if ratio > self.gap_ratio else 0
            if self.gap_active:
                self.gap_active = not ratio < (1.0 + self.gap_ratio) / 2
            elif self.gap_run >= self.persist:
                self.gap_active = True
                out.append(Finding(
                    "generalization_gap", "info", val_name, s,
                    f"{val_name} ({fmt(v)}) is {ratio:.1f}x {train_name} ({fmt(tl)}) at step {fmt(s)}: "
                    "a large generalization gap.",
                    "The model fits its training data much better than new data: add regularization or data, "
                    "or use a smaller model.", {"value": v, "train": tl, "ratio": ratio, "train_metric": train_name},
                ))
        return out
