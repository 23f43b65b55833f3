"""Plateau detection with exactly PyTorch's ``ReduceLROnPlateau`` rule (torch/optim/lr_scheduler.py).

Per evaluation ``a`` (one point of a validation or per-epoch series):

* better: ``a < best * (1 - threshold)`` (mode ``min``, ``rel``), ``a < best - threshold`` (``min``,
  ``abs``), ``a > best * (1 + threshold)`` / ``a > best + threshold`` for ``max``; best starts at
  +/-inf. A better value becomes ``best`` and zeroes the bad-evaluation count, any other value
  (NaN included, as in PyTorch) adds one;
* during cooldown the counter ticks down and the bad count stays 0;
* when the bad count exceeds ``patience`` the scheduler would reduce the learning rate: the
  count resets and cooldown starts.

:attr:`PlateauTracker.reductions` lists the indices where PyTorch would reduce the learning rate;
a finding is reported at the first reduction of an episode, which ends at the next improvement.
Defaults are PyTorch's: patience 10, threshold 1e-4 relative, cooldown 0.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["PlateauTracker"]


class PlateauTracker:
    """Incremental ReduceLROnPlateau decisions over one series."""

    def __init__(self, mode: str = "min", threshold: float = 1e-4, threshold_mode: str = "rel",
                 patience: int = 10, cooldown: int = 0) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"plateau mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"plateau threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
        if patience < 0 or cooldown < 0 or threshold < 0:
            raise ValueError("plateau patience, cooldown and threshold must be >= 0")
        self.mode, self.threshold, self.threshold_mode = mode, threshold, threshold_mode
        self.patience, self.cooldown = patience, cooldown
        self.best = math.inf if mode == "min" else -math.inf
        self.best_index = -1
        self.num_bad = 0
        self.cooldown_counter = 0
        self.count = 0
        self.reductions: list[int] = []
        self.in_plateau = False  # an episode is open (reported, no improvement since)

    def _better(self, a: float) -> bool:
        rel = self.threshold_mode == "rel"
        if self.mode == "min":
            return a < (self.best * (1.0 - self.threshold) if rel else self.best - self.threshold)
        return a > (self.best * (1.0 + self.threshold) if rel else self.best + self.threshold)

    def feed(self, values: np.ndarray) -> list[tuple[int, float, int]]:
        """Take new evaluations; returns ``(index, best, best_index)`` where an episode opens
        (indices over the whole series, best as it stood then)."""
        opened = []
        for a in values.tolist():
            i = self.count
            self.count += 1
            if self._better(a):
                self.best, self.best_index, self.num_bad = a, i, 0
                self.in_plateau = False
            else:
                self.num_bad += 1
            if self.cooldown_counter > 0:
                self.cooldown_counter -= 1
                self.num_bad = 0
            if self.num_bad > self.patience:
                self.reductions.append(i)
                self.cooldown_counter, self.num_bad = self.cooldown, 0
                if not self.in_plateau:
                    self.in_plateau = True
                    opened.append((i, self.best, self.best_index))
        return opened
