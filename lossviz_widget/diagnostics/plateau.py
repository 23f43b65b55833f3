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
a finding is reported at the first reduction of an episode, which ends once the best beats the
best at the report by ``reopen`` (5% relative): on a noisy series PyTorch's threshold (1e-4) is
met by chance every few evaluations, which would report a new plateau each time.
Defaults are PyTorch's: patience 10, threshold 1e-4 relative, cooldown 0.

Cost: the rule is sequential, but between two improvements nothing changes except counters, so
long stretches without an improvement are found by vectorized scans and counted arithmetically
(~1-2 ns per value); where improvements are dense a plain loop runs (~0.1 us per value).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["PlateauTracker"]


class PlateauTracker:
    """Incremental ReduceLROnPlateau decisions over one series."""

    def __init__(self, mode: str = "min", threshold: float = 1e-4, threshold_mode: str = "rel",
                 patience: int = 10, cooldown: int = 0, reopen: float = 0.05, keep_reductions: bool = True) -> None:
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
        self._limit = _DENSE  # bad values in a row before feed() scans (adapts to the gaps)
        self.keep_reductions = keep_reductions  # the engine keeps only their count (memory)
        self.reductions: list[int] = []
        self.num_reductions = 0
        self.reopen = reopen
        self.in_plateau = False  # an episode is open (reported, no improvement since)
        # an episode closes when the best beats the best at its report by `reopen` (relative; 5%):
        # on a noisy series PyTorch's tiny threshold is met by chance every few evaluations
        self.close_bound = math.inf if mode == "min" else -math.inf

    def _improvement_bound(self) -> tuple[float, float, bool]:
        """``(scale, offset, minimize)``: ``a`` is better iff ``a < best * scale + offset`` (min)
        or ``a > best * scale + offset`` (max), PyTorch's four threshold rules in one form."""
        rel = self.threshold_mode == "rel"
        if self.mode == "min":
            return (1.0 - self.threshold, 0.0, True) if rel else (1.0, -self.threshold, True)
        return (1.0 + self.threshold, 0.0, False) if rel else (1.0, self.threshold, False)

    def feed(self, values: np.ndarray) -> list[tuple[int, float, int]]:
        """Take new evaluations; returns ``(index, best, best_index)`` where an episode opens
        (indices over the whole series, best as it stood then).

        The rule is sequential (each decision depends on the best so far), but between two
        improvements the bound a value must beat is fixed. So a lean Python loop takes the
        values while improvements come thick (~0.2 us per value); after ``_DENSE`` values without
        one, a vectorized scan in growing chunks finds each next improvement and the bad values
        before it are accounted arithmetically (:func:`_bad_stretch`): O(1) Python steps per
        improvement, ~1 ns per value between them. Improvements closer than ``_DENSE`` apart hand
        back to the loop, so no series costs more than the loop alone."""
        opened = []
        scale, offset, minimize = self._improvement_bound()
        best, best_index, num_bad = self.best, self.best_index, self.num_bad
        cooldown_counter, in_plateau, close_bound = self.cooldown_counter, self.in_plateau, self.close_bound
        patience, cooldown, keep = self.patience, self.cooldown, self.keep_reductions
        reopen = (1.0 - self.reopen) if minimize else (1.0 + self.reopen)
        values = np.asarray(values, dtype=np.float64)
        n, base, pos, since = len(values), self.count, 0, 0
        reductions, limit = 0, self._limit
        while pos < n:
            if since < limit:  # sequential: exactly PyTorch's step()
                for i, a in enumerate(values[pos : pos + limit].tolist(), start=base + pos):
                    bound = best * scale + offset
                    if (a < bound) if minimize else (a > bound):
                        best, best_index, num_bad = a, i, 0
                        if in_plateau and ((a < close_bound) if minimize else (a > close_bound)):
                            in_plateau = False
                    else:
                        num_bad += 1
                    if cooldown_counter > 0:
                        cooldown_counter -= 1
                        num_bad = 0
                    if num_bad > patience:
                        reductions += 1
                        if keep:
                            self.reductions.append(i)
                        cooldown_counter, num_bad = cooldown, 0
                        if not in_plateau:
                            in_plateau, close_bound = True, best * reopen
                            opened.append((i, best, best_index))
                pos += limit
                since = base + pos - 1 - best_index  # bad values in a row so far
                if since < _DENSE // 4:  # an improvement among the last few: dense, walk longer lists
                    limit = min(2 * limit, _CHUNK)
                continue
            stop = _next_better(values, pos, best * scale + offset, minimize)  # values[pos:stop] are all bad
            first, count, num_bad, cooldown_counter = _bad_stretch(stop - pos, num_bad, cooldown_counter,
                                                                   patience, cooldown)
            if count:
                period = cooldown + patience + 1
                reductions += count
                if keep:
                    self.reductions.extend(range(base + pos + first, base + stop, period))
                if not in_plateau:
                    in_plateau, close_bound = True, best * reopen
                    opened.append((base + pos + first, best, best_index))
            if stop == n:
                break
            a = float(values[stop])  # an improvement: as in the loop above, no reduction possible
            best, best_index, num_bad = a, base + stop, 0
            if in_plateau and ((a < close_bound) if minimize else (a > close_bound)):
                in_plateau = False
            cooldown_counter = max(cooldown_counter - 1, 0)
            # the scan's fixed cost pays off on long stretches: after one, scan on sooner
            if stop - pos >= limit:  # the scan paid off: scan sooner
                limit = max(limit // 2, _DENSE)
            elif stop - pos < _DENSE:  # found at once: walk longer lists
                limit = min(2 * limit, _CHUNK)
            since, pos = 0, stop + 1
        self.count += n
        self._limit = limit
        self.num_reductions += reductions
        self.best, self.best_index, self.num_bad = best, best_index, num_bad
        self.cooldown_counter, self.in_plateau, self.close_bound = cooldown_counter, in_plateau, close_bound
        return opened


_DENSE = 32  # least number of values without an improvement before the vectorized scan takes over
_CHUNK = 1024  # the most values the loop walks at once (where improvements are dense)
_SCAN = (256, 1 << 16)  # first and largest chunk of that scan


def _next_better(values: np.ndarray, pos: int, bound: float, minimize: bool) -> int:
    """The first index from ``pos`` on whose value beats ``bound`` (NaN never does), or ``len(values)``.
    Chunks grow 4x, so a near improvement costs little and a far one O(distance)."""
    size = _SCAN[0]
    while pos < len(values):
        chunk = values[pos : pos + size]
        hit = chunk < bound if minimize else chunk > bound
        k = int(hit.argmax())
        if hit[k]:
            return pos + k
        pos += len(chunk)
        size = min(4 * size, _SCAN[1])
    return len(values)


def _bad_stretch(k: int, num_bad: int, cooldown_counter: int, patience: int,
                 cooldown: int) -> tuple[int, int, int, int]:
    """``k`` bad evaluations in a row under PyTorch's counters: ``(first, count, num_bad,
    cooldown_counter)``, the offset of the first learning-rate reduction among them (-1 if none),
    how many there are (then one every ``cooldown + patience + 1`` evaluations), and the
    counters after them.

    During cooldown each bad evaluation only ticks the counter down (the bad count stays 0); then
    the count grows by one per evaluation and a reduction happens when it exceeds ``patience``,
    which resets it and starts the cooldown again."""
    absorbed = min(cooldown_counter, k)  # still in cooldown
    if absorbed:
        num_bad, cooldown_counter, k = 0, cooldown_counter - absorbed, k - absorbed
    to_first = patience + 1 - num_bad  # bad evaluations until the first reduction (>= 1)
    if k < to_first:
        return -1, 0, num_bad + k, cooldown_counter
    period = cooldown + patience + 1
    count = 1 + (k - to_first) // period
    after = k - to_first - (count - 1) * period  # evaluations after the last reduction, < period
    in_cooldown = min(after, cooldown)
    return absorbed + to_first - 1, count, after - in_cooldown, cooldown - in_cooldown
