"""Detectors on a validation series and its training partner (same family, e.g. loss/val_loss).

For each new finite validation value ``v`` at step ``s`` the training level is the mean of the
finite values among the last ``train_window`` (20) training values logged at or before ``s``:
windowed sums over the training values a frame's validation steps span (van Herk / Gil-Werman,
O(1) per point whatever the window), or a short gather per value where validation is sparse.
Everything else is a few NumPy passes over the new values (no index arrays); the state machines
visit only the values where an episode opens or closes.

The validation values here are *evaluations* (:mod:`.evaluations`): each value of a validation
loss logged every N steps or epochs, or means of 20 values (with their standard error ``se``)
of one logged at every step.

* ``overfitting``: Prechelt (1998) generalization loss, made noise-aware:
  ``GL = 100 * ((v - z s) / (v_min * (1 + z sqrt(2 ln k) s / v)) - 1)`` with ``z`` =
  ``gl_noise_z`` (1) and ``k`` the evaluations so far: the value may sit high by its noise
  ``s``, and the lowest of ``k`` noisy evaluations sits about ``sqrt(2 ln k)`` noise deviations
  low (a loss's noise scales with it, so the minimum's is the same fraction ``s / v``);
  ``s`` is the larger of a block mean's standard error and the robust spread of the last 10
  evaluations' second differences (0 on a smooth curve, so Prechelt's GL as written; on a
  validation loss that bounces +-20% between evaluations at a constant learning rate a chance
  low is not taken for the minimum to beat). Over ``gl_alpha`` (5, in
  percent) while the training level is more than ``train_fall`` (1%, AUTOTRAINER) below what
  it was at the validation minimum, for ``persist`` (3) evaluations in a row (on a smooth curve,
  noise 0: at the third evaluation over the threshold; later where evaluations bounce, which is
  what keeps a healthy constant-LR run free of false warnings). Ends when GL falls
  under ``gl_alpha / 2`` (a new minimum makes it 0); the next episode needs a minimum
  ``gl_alpha`` % below the one of the last report (no flapping on noisy series).
* ``generalization_gap``: ``v`` more than ``gap_ratio`` (2x) the training level for ``persist``
  evaluations in a row; ends under ``(1 + gap_ratio) / 2``.

Both need positive values (lower-is-better losses).
"""

from __future__ import annotations

import math

import numpy as np

from .._model import MetricHistory
from .findings import Closing, Finding, Reopening, episodes, fmt, held, pct, row_medians

__all__ = ["Generalization"]

NOISE_WINDOW = 10  # evaluations whose second differences give the noise GL must exceed
_SLICE = 1 << 14  # validation values per binary search and window pass (bounds the temporaries)


class Generalization(Closing):
    """Overfitting and generalization-gap state for one (validation, training) pair."""

    def __init__(self, gl_alpha: float, train_fall: float, gap_ratio: float, persist: int, train_window: int,
                 noise_z: float = 1.0) -> None:
        self.gl_alpha, self.train_fall, self.gap_ratio, self.noise_z = gl_alpha, train_fall, gap_ratio, noise_z
        self.persist, self.train_window = persist, train_window
        self.best = math.inf  # lowest evaluation so far (what GL is measured from)
        self.evaluations = 0  # finite evaluations so far
        self.tail = np.empty(0)  # the last two finite evaluations
        self.curv = np.empty(0)  # |second differences| of the last NOISE_WINDOW - 1 evaluations
        self.best_step = math.nan
        self.train_at_best = math.nan
        self.over_run = self.gap_run = 0
        self.over_active = self.gap_active = False
        # after an overfitting report at best B, the next needs a best below B * (1 - gl_alpha/100):
        # a noisy validation series would otherwise open an episode at every chance new minimum
        self.over_reopen = math.inf
        self.over_current = False  # the latest overfitting finding still holds (see _end_overfitting)
        self.examined = 0
        super().__init__()

    def _train_levels(self, train: MetricHistory, steps: np.ndarray) -> np.ndarray:
        """Per validation step: the mean of the finite values among the last ``train_window``
        training values logged at or before it (NaN if none).

        One binary search per step (or one comparison, when training is logged at the same steps),
        then per slice of steps either windowed sums over the
        training values the slice spans (:func:`_window_means`, O(span)) or, where validation is
        sparse and that span is long, a ``(len(steps), train_window)`` gather (O(len * window))."""
        w = self.train_window
        out = np.empty(len(steps))
        for a in range(0, len(steps), _SLICE):
            ends = _ends(train.steps, steps[a : a + _SLICE])
            if int(ends[-1]) - int(ends[0]) + w <= 4 * len(ends):
                out[a : a + len(ends)] = _window_means(train.values, ends, w)
            else:
                out[a : a + len(ends)] = _gathered_means(train.values, ends, w)
            self.examined += int(np.minimum(ends, w).sum())
        return out

    def feed(self, val_name: str, train_name: str, val: MetricHistory, train: MetricHistory,
             start: int, se: np.ndarray | None = None) -> list[Finding]:
        """Take the evaluations from index ``start`` on (``se``: their standard errors, per value
        of ``val``; None for exact evaluations). Everything is computed with NumPy; the episode
        state machines only visit the values where an episode opens or closes."""
        steps, values = val.steps[start:], val.values[start:]
        se_all = np.zeros(len(values)) if se is None else np.asarray(se, dtype=np.float64)[start:]
        self.examined += len(values)
        finite = np.isfinite(values)
        if not finite.all():
            steps, values, se_all = steps[finite], values[finite], se_all[finite]
        n = len(values)
        if n == 0:
            return []
        noise = np.maximum(se_all, self._noise(values))
        # the lowest of k noisy evaluations sits about sqrt(2 ln k) noise deviations under their level
        k = self.evaluations + 1 + np.arange(n)
        self.evaluations += n
        low_bias = np.sqrt(2.0 * np.log(np.maximum(k, 2)))
        levels = self._train_levels(train, steps)
        best, improved = _running_min(values, self.best)
        train_at_best = _latest(improved, n, levels[improved], self.train_at_best)
        with np.errstate(invalid="ignore", divide="ignore"):
            # loss noise scales with the loss: the minimum's noise is the same fraction of it
            rel = np.where(values > 0, noise / values, 0.0)
            low = best * (1.0 + self.noise_z * low_bias * rel)  # the minimum, less its selection bias
            gl = np.where(best > 0, 100.0 * ((values - self.noise_z * noise) / low - 1.0), 0.0)
            # False when either is NaN; a relative fall needs a positive level
            falling = (train_at_best > 0) & (levels < train_at_best * (1.0 - self.train_fall))
            ratio = np.where(levels > 0, values / levels, np.nan)
        over_cond = (gl > self.gl_alpha) & falling
        over_release = gl < self.gl_alpha / 2
        gap_cond = ratio > self.gap_ratio
        gap_release = ratio < (1.0 + self.gap_ratio) / 2

        over_trigger, self.over_run = held(over_cond, self.over_run, self.persist)
        gap_trigger, self.gap_run = held(gap_cond, self.gap_run, self.persist)
        reopening = Reopening(best, self.over_reopen, self.gl_alpha / 100)
        over_at, _, self.over_active = episodes(over_trigger, over_release, self.over_active, reopening)
        self.over_reopen = reopening.below
        gap_at, gap_end, self.gap_active = episodes(gap_trigger, gap_release, self.gap_active)
        self._end_overfitting(val_name, over_at, steps, values, best)
        self.ended += [("generalization_gap", float(steps[i]), f"the gap narrowed to {float(ratio[i]):.3g}x")
                       for i in gap_end]
        best_step = _latest(improved, n, steps[improved], self.best_step, at=[*over_at, n - 1])
        out = [self._overfitting(val_name, train_name, float(steps[i]), float(values[i]), float(gl[i]),
                                 float(best[i]), float(best_step[k]), float(levels[i]), float(train_at_best[i]))
               for k, i in enumerate(over_at)]
        out += [self._gap(val_name, train_name, float(steps[i]), float(values[i]), float(levels[i]), float(ratio[i]))
                for i in gap_at]
        out.sort(key=lambda f: f.step)
        self.best, self.train_at_best, self.best_step = float(best[-1]), float(train_at_best[-1]), float(best_step[-1])
        return out

    def _end_overfitting(self, val_name: str, opened: list[int], steps: np.ndarray, values: np.ndarray,
                         best: np.ndarray) -> None:
        """End the current overfitting finding where the validation loss itself is back within
        ``gl_alpha / 2`` % of its best: stricter than the episode's release (GL, which discounts
        the evaluations' noise, under ``gl_alpha / 2``), which only stops a new report; a noisy
        validation curve dips under that while it still sits well above its best."""
        with np.errstate(invalid="ignore"):
            back = np.flatnonzero(values <= best * (1.0 + self.gl_alpha / 200.0))
        since = ([-1] if self.over_current else []) + opened  # the current finding's index, and new ones
        ends = sorted({int(back[k]) for k in np.searchsorted(back, since, side="right") if k < len(back)})
        self.ended += [("overfitting", float(steps[i]), f"{val_name} came back to {fmt(float(values[i]))}, within "
                        f"{self.gl_alpha / 2:g}% of its best ({fmt(float(best[i]))})") for i in ends]
        if since:
            self.over_current = not ends or ends[-1] <= since[-1]

    def _noise(self, values: np.ndarray) -> np.ndarray:
        """Per evaluation, the noise of the evaluations around it: 1.4826 x the median of the
        last ``NOISE_WINDOW`` absolute second differences / sqrt 6 (a straight trend cancels, so a
        steady rise is not taken for noise); 0 until there are three evaluations."""
        ext = np.concatenate((self.tail, values))
        d2 = np.abs(ext[2:] - 2 * ext[1:-1] + ext[:-2])
        pad = max(len(values) - len(d2), 0)  # the first evaluations of the series have none
        curv = np.concatenate((self.curv, d2))
        k = len(self.curv)
        sigma = np.zeros(len(values))
        if len(d2):
            w = np.lib.stride_tricks.sliding_window_view(np.concatenate((np.full(NOISE_WINDOW - 1, np.nan), curv)),
                                                         NOISE_WINDOW)[k:]
            sigma[pad:] = row_medians(w) * 1.4826 / math.sqrt(6.0)
        self.tail, self.curv = ext[-2:], curv[-(NOISE_WINDOW - 1) :]
        return sigma

    def _overfitting(self, val_name: str, train_name: str, s: float, v: float, gl: float, best: float,
                     best_step: float, tl: float, train_at_best: float) -> Finding:
        drop = 1.0 - tl / train_at_best
        return Finding(
            "overfitting", "warning", val_name, s,
            f"{val_name} is {pct(gl / 100)} above its minimum ({fmt(best)} at step {fmt(best_step)}) for "
            f"{self.persist} evaluations while {train_name} keeps falling ({pct(drop)} lower since): overfitting.",
            f"Consider early stopping at step {fmt(best_step)} (keep that checkpoint) or more "
            "regularization (weight decay, dropout, data augmentation, more data).",
            {"gl": gl, "best": best, "best_step": best_step, "value": v,
             "train": tl, "train_at_best": train_at_best, "train_metric": train_name},
        )

    @staticmethod
    def _gap(val_name: str, train_name: str, s: float, v: float, tl: float, ratio: float) -> Finding:
        return Finding(
            "generalization_gap", "info", val_name, s,
            f"{val_name} ({fmt(v)}) is {ratio:.1f}x {train_name} ({fmt(tl)}) at step {fmt(s)}: "
            "a large generalization gap.",
            "The model fits its training data much better than new data: add regularization or data, "
            "or use a smaller model.", {"value": v, "train": tl, "ratio": ratio, "train_metric": train_name},
        )


def _window_means(values: np.ndarray, ends: np.ndarray, w: int) -> np.ndarray:
    """Per ``end`` (ascending): the mean of the finite values among ``values[end - w : end]``.

    Van Herk / Gil-Werman: with the values cut into blocks of ``w`` (at multiples of ``w``), a
    window is a suffix of one block plus a prefix of the next, so each window sum only ever adds
    values inside that window (a cumulative sum difference would let one 1e30 spike wreck every
    later window). Non-finite values count as 0.0 in the sums and are left out of the counts,
    which come from an exact integer cumulative sum. Reads only the blocks the ends span:
    O(span + len(ends))."""
    lo = max(int(ends[0]) - w, 0) // w * w
    x = values[lo : int(ends[-1])]
    ends = ends - lo
    finite = np.isfinite(x)
    nb = len(x) // w + 1  # at least one block, also for an empty x
    flat = np.zeros(nb * w)
    np.copyto(flat[: len(x)], x, where=finite)
    grid = flat.reshape(nb, w)
    suffix = np.cumsum(grid[:, ::-1], axis=1)[:, ::-1].ravel()  # x[i] + ... to the end of i's block
    prefix = np.zeros(nb * w + 1)  # x[start of i's block] + ... + x[i - 1]; 0 at block starts
    np.cumsum(grid, axis=1, out=grid)
    prefix[1:] = flat
    prefix[::w] = 0.0
    count = np.concatenate(([0], np.cumsum(finite)))
    first = ends - w
    inside = first >= 0  # False only for the first windows of the series
    total = prefix[ends]
    total += np.where(inside, suffix[np.maximum(first, 0)], 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / (count[ends] - count[np.maximum(first, 0)])


def _gathered_means(values: np.ndarray, ends: np.ndarray, w: int) -> np.ndarray:
    """:func:`_window_means` by gathering each window's values (O(len(ends) * w), cheaper where
    the ends are far apart), adding them in the same order, so both give the same bits and the
    levels do not depend on how a frame's steps were sliced."""
    split = ends // w * w  # start of the block of `end`: the window is values[first:split] + values[split:end]
    first = ends - w
    head, tail = ends - split, split - np.maximum(first, 0)  # lengths of the prefix and the suffix part
    prefix, suffix, count = np.zeros(len(ends)), np.zeros(len(ends)), np.zeros(len(ends), dtype=np.int64)
    for j in range(w):
        for total, length, at in ((prefix, head, split + j), (suffix, tail, split - 1 - j)):
            use = j < length
            x = values[np.where(use, at, 0)]
            ok = use & np.isfinite(x)
            x = np.where(ok, x, 0.0)
            count += ok
            total[:] = np.where(use, x if j == 0 else total + x, total)  # cumsum: the first is taken as is
    total = prefix + np.where(first >= 0, suffix, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / count


def _ends(train_steps: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """Per step: how many training steps are at or before it (``searchsorted(side="right")``).
    Where training was logged at exactly these steps (the usual dense case), one comparison
    instead of a binary search per step."""
    first, m = int(np.searchsorted(train_steps, steps[0], side="right")), len(steps)
    if first >= 1 and first - 1 + m <= len(train_steps):
        after = train_steps[first : first + m]  # one shorter at the end of the training series
        if np.array_equal(train_steps[first - 1 : first - 1 + m], steps) and bool((after > steps[: len(after)]).all()):
            return first + np.arange(m)
    return np.searchsorted(train_steps, steps, side="right")


def _running_min(values: np.ndarray, prev: float) -> tuple[np.ndarray, np.ndarray]:
    """The running minimum of ``values`` (no NaN) after ``prev``, and the indices where it
    strictly improves."""
    acc = np.minimum.accumulate(np.concatenate(([prev], values)))
    return acc[1:], np.flatnonzero(values < acc[:-1])


def _latest(improved: np.ndarray, n: int, there: np.ndarray, prev: float, at: list[int] | None = None) -> np.ndarray:
    """Per index (of ``n``, or only those in ``at``): ``there[j]`` for the latest ``improved[j]``
    at or before it, ``prev`` before the first."""
    known = np.concatenate(([prev], there))
    if at is not None:
        return known[np.searchsorted(improved, at, side="right")]
    return np.repeat(known, np.diff(improved, prepend=0, append=n))

