"""Detectors that look at one series at a time; each keeps running state and reads only new points.

Rules (defaults in :class:`~lossviz_widget.diagnostics.engine.DiagnosticsConfig`; the table with
sources is ``docs/diagnostics.md``, the scores on real curves ``benchmarks/DIAGNOSTICS.md``):

* ``nonfinite`` (any metric; Keras ``TerminateOnNaN``, Lightning ``check_finite``): a NaN/Inf
  value. Episode ends after ``clear_after`` finite points in a row.
* ``negative_loss`` (loss-like names): the first finite value below 0, once per series (some
  losses are log-likelihoods: said once, not per point).
* ``divergence`` (training losses, :class:`Divergence`): fastai's ``lr_find`` stop rule (4x the
  best) on a robust level, the median of the last 7 medians of 10-point blocks.
* ``loss_spike`` (training losses, :class:`LossSpike`): a jump above the local level and
  spread, reported once it is known whether the loss recovered; :func:`with_grad_norm` adds
  whether a logged gradient norm spiked first.
* ``initial_loss`` (training losses, only with ``num_classes``): cs231n's check that
  cross-entropy starts near ``ln C``; the first finite value outside ``initial_loss_band``
  (0.5-1.5) times ``ln C`` is reported.
* Block rules (training losses, :class:`BlockTrends`): the series is cut into blocks of
  ``block`` (100) points; per block its median (level) and a robust noise (the interquartile
  range of first differences / (1.349 sqrt 2): the trend cancels, one huge value does not
  count) are kept, and the rules read only those summaries:

  - ``noisy``: noise above ``noise_ratio`` (80%) of the level in 2 blocks in a row; ends after 2
    blocks under 70% of that.
  - ``not_learning`` (first ``early_blocks`` = 20 blocks): from the 5th block still at an
    untrained classifier's loss (>= 0.9 ln C, with ``num_classes``) or, without it, from the 8th
    never 5% away from the first level. Ends when the level moves twice that band away (with
    ``num_classes``: under 0.7 ln C).
  - ``lr_too_high`` (same window, from the 5th block, while the loss never came 10% down): the
    level is 10% above the first block's, or has not come down 2% while the noise is over 25%.
    Ends once a level is 10% below the first.
  - ``lr_too_low`` (same window, from the 10th block): under 50% down from the first level,
    falling significantly and steadily (the second half 0.4-2x the first). Ends once the level
    is half the first.
  - ``converged`` (from the 10th block): the level moved by less than the larger of 0.5% and two
    standard errors over the last 5 blocks and by less than 10% since the block half as far
    into the run. Ends when it drops by three times that again, or 10% below where the episode
    opened (:meth:`BlockTrends._converged_episodes`).

Those, ``noisy``, ``divergence`` and the generalization rules describe a state: an episode that ends is listed in the
detector's ``ended`` (:class:`~.findings.Closing`), and the engine marks its finding ended.

Costs: a few NumPy passes per new point; :class:`RunRule` returns after one pass when a frame
holds no bad value, and blocks past the early window are judged together (no Python per block).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from .._model import MetricHistory
from .findings import Closing, Finding, episodes, fmt, held, pct, row_stats

__all__ = [
    "BlockTrends",
    "Divergence",
    "InitialLoss",
    "LossSpike",
    "RunRule",
    "negative_rule",
    "nonfinite_rule",
    "with_grad_norm",
]

_NEVER = -(1 << 62)


class RunRule:
    """A per-point condition; an episode ends after ``clear_after`` points without it."""

    def __init__(self, code: str, bad, describe, clear_after: int) -> None:
        self.code, self._bad, self._describe, self.clear_after = code, bad, describe, clear_after
        self.active = False
        self.last_bad = _NEVER

    def feed(self, name: str, steps: np.ndarray, values: np.ndarray, start: int) -> list[Finding]:
        v = values[start:]
        bad = self._bad(v)
        if not bad.any():  # the usual case: an open episode ends once `clear_after` clean points passed
            if self.active and len(values) - 1 - self.last_bad >= self.clear_after:
                self.active = False
            return []
        idx = np.arange(start, len(values))
        last_bad = np.maximum.accumulate(np.where(bad, idx, self.last_bad))
        starts, _, self.active = episodes(bad, (idx - last_bad) >= self.clear_after, self.active)
        self.last_bad = int(last_bad[-1])
        return [self._describe(name, float(steps[start + i]), float(v[i])) for i in starts]


def _nonfinite(name: str, step: float, value: float) -> Finding:
    return Finding(
        "nonfinite", "error", name, step, f"{name} is {fmt(value)} at step {fmt(step)}.",
        "Training has diverged or hit a numerical error: lower the learning rate, clip gradients, or look "
        "for log(0), division by zero or bad values in the data.", {"value": repr(value)},
    )


def _negative(name: str, step: float, value: float) -> Finding:
    return Finding(
        "negative_loss", "warning", name, step,
        f"{name} goes below zero (first at step {fmt(step)}: {fmt(value)}): fine for log-likelihood or "
        "ELBO-style objectives and GAN losses, a bug for cross-entropy, MSE and other losses that are >= 0.",
        "If this loss cannot be negative, check its sign and inputs (probabilities vs logits, a missing "
        "mean or log); otherwise ignore this (said once per series).", {"value": value},
    )


def nonfinite_rule(clear_after: int) -> RunRule:
    return RunRule("nonfinite", lambda v: ~np.isfinite(v), _nonfinite, clear_after)


def negative_rule() -> RunRule:
    """Once per series: a loss that can go negative (a log-likelihood) does so all the time."""
    return RunRule("negative_loss", lambda v: np.isfinite(v) & (v < 0), _negative, -_NEVER)


def _rolling(x: np.ndarray, window: int, how: str) -> np.ndarray:
    """Median or max (``how``), NaN ignored, of the ``window`` values ending at each index; NaN
    where fewer than ``window`` values end there or all are NaN."""
    out = np.full(len(x), np.nan)
    if len(x) >= window:
        w = np.lib.stride_tricks.sliding_window_view(x, window)
        if how == "median":
            out[window - 1 :] = row_stats(w)[1]  # np.nanmedian is ~50x slower on short rows
        else:
            with warnings.catch_warnings():  # an all-NaN window gives NaN, as wanted
                warnings.simplefilter("ignore", RuntimeWarning)
                out[window - 1 :] = np.nanmax(w, axis=1)
    return out


class Divergence(Closing):
    """A loss that runs away: its robust level exceeds ``ratio`` times its best.

    The level is the median of the last ``window`` (7) medians of ``size``-point (10) blocks:
    a spike of a few points moves no block median, and the level moves only once more than
    half of the last 70 points are high, so a spike that recovers within ~40 points is a
    ``loss_spike``, not a divergence (fastai's ``lr_find`` stop rule, 4x the best smoothed loss,
    judged on this level instead of an EMA, which one huge value drags up). The rise must also
    give back more than a quarter of the progress from the first level to the best: with a
    batch of one, a loss near 0 moves by 4x and more without meaning anything. Non-finite
    values count as +inf in a block's median; a block whose median is not finite is left out of
    the level (``nonfinite`` reports it). Ends once the level is back under half the threshold."""

    def __init__(self, ratio: float, warmup: int, size: int = 10, window: int = 7) -> None:
        self.ratio, self.warmup, self.size, self.window = ratio, warmup, size, window
        self.blocks = 0  # complete blocks read
        self.recent = np.empty(0)  # medians of the last window - 1 blocks
        self.best = math.inf
        self.first = math.nan  # the first level: what "a quarter of the progress" is measured on
        self.active = False
        super().__init__()

    def feed(self, name: str, steps: np.ndarray, values: np.ndarray, start: int) -> list[Finding]:
        stop = len(values) // self.size
        if stop <= self.blocks:
            return []
        grid = values[self.blocks * self.size : stop * self.size].reshape(-1, self.size)
        with np.errstate(invalid="ignore"):
            meds = np.median(np.where(np.isnan(grid), np.inf, grid), axis=1)
        ext = np.concatenate((self.recent, meds))
        level = _rolling(ext, self.window, "median")[len(self.recent) :]
        ends = steps[self.blocks * self.size + self.size - 1 : stop * self.size : self.size]
        eligible = (self.blocks + 1 + np.arange(len(meds))) * self.size > self.warmup
        eligible &= np.isfinite(level)
        self.blocks, self.recent = stop, ext[-(self.window - 1) :] if self.window > 1 else np.empty(0)
        best = np.minimum(self.best, np.minimum.accumulate(np.where(eligible, level, np.inf)))
        self.best = float(best[-1])
        if math.isnan(self.first) and eligible.any():
            self.first = float(level[int(np.argmax(eligible))])
        with np.errstate(invalid="ignore"):
            # material: the level gave back more than a quarter of the progress made from the first
            # level (a per-sample loss near 0 jitters by large factors without meaning anything)
            material = level - best > 0.25 * np.maximum(self.first - best, 0.0)
            trigger = eligible & (best > 0) & (level > self.ratio * best) & material
            clear = eligible & (level < 0.5 * self.ratio * best)
        starts, stops, self.active = episodes(trigger, clear, self.active)
        self.ended += [("divergence", float(ends[i]), f"it came back down ({fmt(float(level[i]))})") for i in stops]
        out = []
        for i in starts:
            s, v, b = float(ends[i]), float(level[i]), float(best[i])
            out.append(Finding(
                "divergence", "error", name, s,
                f"{name} is diverging: its level (median of the last {self.window * self.size} points) is {fmt(v)} "
                f"at step {fmt(s)}, {v / b:.3g}x its best ({fmt(b)}).",
                "Restart from the last good checkpoint with a 3-10x lower learning rate, learning-rate warmup "
                "or gradient clipping.", {"level": v, "best": b, "ratio": v / b},
            ))
        return out


_BACK = 10  # points in a row back in the range of before: a spike has recovered


class LossSpike:
    """A sudden jump relative to the local level and noise, and whether the loss came back.

    Reference for each point: the median and the largest value of the ``window`` (10) complete
    ``size``-point (10) blocks before its own (the last ~100 points). A finite value above
    ``median + ratio * (largest - median)`` (``ratio`` 4; the spread floored at 5% of the
    median) starts a spike: on the real curves of the corpus (``benchmarks/DIAGNOSTICS.md``) no
    point of a healthy run exceeds 2.2x that spread, none of a batch-of-1-to-4 run 3.9x, and the
    mildest injected spike (one step at 10x the learning rate) reaches 5.2x. It has recovered at
    the first 10 points in a row whose median is back under ``max(2 x median, largest)`` of before. The
    finding is reported once that is known: recovered (info, with how many steps it took) or
    not within ``recover_within`` (300) points (warning); its step is the spike's,
    ``evidence["reported_at"]`` the step where it was decided. One finding per spike; no new
    spike opens before the last one recovered."""

    def __init__(self, ratio: float = 4.0, size: int = 10, window: int = 10, recover_within: int = 300) -> None:
        self.ratio, self.size, self.window, self.recover_within = ratio, size, window, recover_within
        self.blocks = 0  # complete blocks read
        self.meds = np.empty(0)  # median and largest value of the last window + 2 complete blocks
        self.tops = np.empty(0)
        self.open: dict[str, float] | None = None  # the spike waiting for its verdict
        self.reported = False  # the open spike's finding is out (it did not recover in time)
        self.pos = 0  # next index where a spike may start, or where a recovery window may end

    def _references(self, values: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
        """``(base, med, top)``: for block ``base + q``, the median and the largest value of the
        ``window`` complete blocks before it (NaN where unknown)."""
        stop = len(values) // self.size
        base = self.blocks - len(self.meds)
        if stop > self.blocks:
            _, med, top, _ = row_stats(values[self.blocks * self.size : stop * self.size].reshape(-1, self.size))
            self.meds, self.tops = np.concatenate((self.meds, med)), np.concatenate((self.tops, top))
            self.blocks = stop
        ref_med = np.concatenate(([np.nan], _rolling(self.meds, self.window, "median")))
        ref_top = np.concatenate(([np.nan], _rolling(self.tops, self.window, "max")))
        self.meds, self.tops = self.meds[-(self.window + 2) :], self.tops[-(self.window + 2) :]
        return base, ref_med, ref_top

    def feed(self, name: str, steps: np.ndarray, values: np.ndarray, start: int) -> list[Finding]:
        n = len(values)
        base, ref_med, ref_top = self._references(values)
        out: list[Finding] = []
        while True:
            if self.open is None:
                if self.pos >= n:
                    break
                q = np.minimum(np.arange(self.pos, n) // self.size - base, len(ref_med) - 1)
                m, t = ref_med[q], ref_top[q]
                with np.errstate(invalid="ignore"):
                    hit = np.flatnonzero(values[self.pos :] > m + self.ratio * np.maximum(t - m, 0.05 * np.abs(m)))
                if not len(hit):
                    self.pos = n
                    break
                k = self.pos + int(hit[0])
                self.open = {"index": k, "med": float(m[hit[0]]), "top": float(t[hit[0]])}
                self.reported, self.pos = False, k + _BACK
            k = int(self.open["index"])
            bound = max(2 * self.open["med"], self.open["top"])
            e0, limit = max(self.pos, k + _BACK), k + self.recover_within
            back = np.empty(0, dtype=np.int64)
            if e0 < n:  # windows of _BACK points ending at e0, e0 + 1, ... (all after the spike)
                w = np.lib.stride_tricks.sliding_window_view(values[e0 - _BACK + 1 : n], _BACK)
                with np.errstate(invalid="ignore"):
                    back = np.flatnonzero(np.median(np.where(np.isnan(w), np.inf, w), axis=1) <= bound)
            if len(back):
                e = e0 + int(back[0])
                if not self.reported:
                    out.append(self._finding(name, steps, values, k, min(e, limit), e <= limit, self.open))
                self.open, self.pos = None, e + 1
                continue
            if n - 1 >= limit and not self.reported:
                out.append(self._finding(name, steps, values, k, limit, False, self.open))
                self.reported = True
            self.pos = max(e0, n)
            break
        return out

    def _finding(self, name: str, steps: np.ndarray, values: np.ndarray, k: int, j: int, recovered: bool,
                 spike: dict[str, float]) -> Finding:
        s, at = float(steps[k]), float(steps[min(j, len(steps) - 1)])
        peak = float(np.nanmax(np.where(np.isfinite(values[k : j + 1]), values[k : j + 1], np.nan))) \
            if np.isfinite(values[k : j + 1]).any() else float(values[k])
        before = spike["med"]
        head = (f"{name} spiked at step {fmt(s)}: from about {fmt(before)} to {fmt(peak)} "
                f"({peak / before:.3g}x)" if before > 0 else f"{name} spiked at step {fmt(s)} to {fmt(peak)}")
        ev: dict[str, float | str] = {"before": before, "peak": peak, "reported_at": at, "recovered": float(recovered)}
        if recovered:
            ev["recovery_steps"] = at - s
            return Finding("loss_spike", "info", name, s, f"{head}; it recovered {fmt(at - s)} steps later.",
                           "Nothing to do if it stays rare; if spikes recur, lower the learning rate, clip gradients "
                           "or look for bad batches.", ev)
        return Finding("loss_spike", "warning", name, s,
                       f"{head}; it has not recovered {fmt(at - s)} steps later.",
                       "Go back to a checkpoint before the spike and resume with a lower learning rate or gradient "
                       "clipping; check the batches around that step.", ev)


class InitialLoss:
    """cs231n's sanity check: cross-entropy starts near ln(num_classes)."""

    def __init__(self, num_classes: int, band: tuple[float, float]) -> None:
        self.expected = math.log(num_classes)
        self.num_classes, self.band = num_classes, band
        self.done = False

    def feed(self, name: str, steps: np.ndarray, values: np.ndarray, start: int) -> list[Finding]:
        if self.done:
            return []
        v = values[start:]
        finite = np.flatnonzero(np.isfinite(v))
        if not len(finite):
            return []
        self.done = True
        i = int(finite[0])
        first, s = float(v[i]), float(steps[start + i])
        ratio = first / self.expected
        if self.band[0] <= ratio <= self.band[1]:
            return []
        high = ratio > self.band[1]
        return [Finding(
            "initial_loss", "warning", name, s,
            f"{name} starts at {fmt(first)} (step {fmt(s)}); with {self.num_classes} classes an untrained "
            f"model starts near ln {self.num_classes} = {self.expected:.3g}.",
            "The first predictions are overconfident: initialize the last layer small (bias 0) and check the "
            "loss receives logits." if high else
            "Suspiciously low for an untrained model: check for label leakage and how the loss is reduced.",
            {"initial": first, "expected": self.expected, "ratio": ratio},
        )]


def with_grad_norm(f: Finding, name: str, grad: MetricHistory, lead: int = 50) -> Finding:
    """``f`` (a ``loss_spike``) saying whether the gradient norm ``name`` spiked first: its
    largest value in the ``lead`` steps up to the spike, against the median of the 100 values
    before those, and where it first went over 3x that median (update-norm spikes came before
    loss spikes in marin-community/marin#1368)."""
    s = f.step
    a, b = np.searchsorted(grad.steps, [s - lead, s], side="left")
    b = int(np.searchsorted(grad.steps, s, side="right"))
    ref = grad.values[max(int(a) - 100, 0) : int(a)]
    ref = ref[np.isfinite(ref)]
    near = grad.values[int(a) : b]
    if not len(ref) or not len(near) or not float(np.median(ref)) > 0:
        return f
    base = float(np.median(ref))
    with np.errstate(invalid="ignore"):
        over = np.flatnonzero(~(near <= 3 * base))  # NaN/inf count as spiking
    ev = dict(f.evidence)
    if not len(over):
        text = f" {name} did not spike before it (at most {fmt(float(np.nanmax(near)) / base)}x its median)."
        ev["grad_spiked_first"] = 0.0
    else:
        at = float(grad.steps[int(a) + int(over[0])])
        peak = float(np.nanmax(np.where(np.isfinite(near), near, np.nan))) if np.isfinite(near).any() else math.inf
        if at < s:
            text = (f" {name} spiked first, at step {fmt(at)} ({fmt(peak / base)}x its median): the update blew up "
                    "before the loss did (an unstable step, not just a bad batch).")
        else:
            text = (f" {name} spiked at the same step ({fmt(peak / base)}x its median), as a bad batch or a "
                    "too-large step does.")
        ev["grad_spiked_first"] = float(at < s)
        ev["grad_spike_step"] = at
    return replace(f, message=f.message + text, evidence=ev)


class BlockTrends(Closing):
    """Noise, learning and learning-rate rules on per-block summaries (see the module docstring).

    Blocks of the early window are judged one by one (every rule, at most ``early_blocks`` of
    them); past it only ``noisy`` and ``converged`` can open, and those are judged for a frame's
    blocks at once with NumPy. The block levels are kept (one float per ``block`` points)."""

    def __init__(self, block: int, noise_ratio: float, early_blocks: int, converged_rel: float,
                 expected: float | None = None) -> None:
        self.block, self.noise_ratio = block, noise_ratio
        self.early_blocks, self.converged_rel = early_blocks, converged_rel
        self.expected = expected  # ln C with num_classes: an untrained classifier's loss
        self._pend_v = np.empty(0)
        self._pend_s = np.empty(0)
        self.count = 0  # blocks judged
        self._levels = np.empty(64)  # every block's level (median); the first `count` are used
        self.noises: list[float] = []  # of the last five blocks
        self.ends: list[float] = []  # last step of each of the last two blocks
        self.active: dict[str, bool] = {c: False for c in _BLOCK_CODES}
        self.learned = False  # the loss has left its initial level: not_learning cannot open any more
        self._hi = self._lo = 0  # blocks in a row above / well below the noise threshold
        self._band = math.nan  # not_learning: how far from the first level counts as learning (2x this)
        self._settled = math.nan  # converged: the level where the open episode started
        self._fell = 0  # converged: the block where the last episode closed (the loss fell again)
        super().__init__()

    def feed(self, name: str, steps: np.ndarray, values: np.ndarray, start: int) -> list[Finding]:
        v = np.concatenate((self._pend_v, values[start:]))
        s = np.concatenate((self._pend_s, steps[start:]))
        full = len(v) // self.block * self.block
        self._pend_v, self._pend_s = v[full:].copy(), s[full:].copy()
        out: list[Finding] = []
        if not full:
            return out
        count, level, noise = _block_summaries(v[:full].reshape(-1, self.block))
        ends = s[self.block - 1 : full : self.block]
        kept = np.flatnonzero((count >= self.block // 2) & np.isfinite(noise))  # enough finite values and pairs
        early = kept[: max(self.early_blocks - self.count, 0)].tolist()
        for k in early:
            self._push([float(level[k])], [float(noise[k])], [float(ends[k])])
            out += self._judge(name)
        late = kept[len(early) :]
        if len(late):
            out += self._judge_late(name, level[late], noise[late], ends[late])
        return out

    @property
    def levels(self) -> np.ndarray:
        """Every judged block's level, in order."""
        return self._levels[: self.count]

    def _push(self, levels: list[float], noises: list[float], ends: list[float]) -> None:
        if self.count + len(levels) > len(self._levels):  # grow by doubling: O(1) per block, amortized
            self._levels = np.concatenate((self._levels, np.empty(max(len(self._levels), len(levels)))))
        self._levels[self.count : self.count + len(levels)] = levels
        self.count += len(levels)
        self.noises = (self.noises + noises)[-5:]
        self.ends = (self.ends + ends)[-2:]

    def _open(self, code: str, cond: bool, clear: bool, step: float, why: str) -> bool:
        """Whether an episode of ``code`` opens at this block; an open one closes on ``clear``
        (listed in :attr:`ended` with ``why``)."""
        if self.active[code]:
            if clear:
                self.active[code] = False
                self.ended.append((code, step, why))
            return False
        self.active[code] = cond
        return cond

    def _se(self, last: int) -> float:
        """Standard error of a difference of two block levels, from the last blocks' noise."""
        recent = self.noises[-last:]
        return math.sqrt(2.0 * sum(n * n for n in recent) / len(recent) / self.block)

    def _judge(self, name: str) -> list[Finding]:
        """Every rule on the latest block (early window)."""
        L, i, step = self.levels.tolist(), self.count - 1, self.ends[-1]  # early window: at most early_blocks
        level, l0 = L[-1], L[0]
        noise = self.noises[-1]
        rel = noise / abs(level) if level else (math.inf if noise > 0 else 0.0)  # NaN noise: NaN, judged as quiet
        self._hi = self._hi + 1 if rel > self.noise_ratio else 0
        self._lo = self._lo + 1 if rel < 0.7 * self.noise_ratio else 0
        out: list[Finding] = []
        if self._open("noisy", self._hi >= 2, self._lo >= 2, step, _steadier(rel)):
            out.append(self._noisy(name, self.ends[-2] if i else step, step, self.noises[-1], level, rel))
        out += self._not_learning(name, i, step, level, l0)
        early = 4 <= i < self.early_blocks and l0 > 0 and min(L) > 0.9 * l0  # it never came down
        high = early and (level > 1.1 * l0 or (level > 0.98 * l0 and rel > 0.25))
        if self._open("lr_too_high", high, level < 0.9 * l0, step, _came_down(level)):
            out.append(Finding(
                "lr_too_high", "warning", name, step,
                f"{name} has not come down since the start ({fmt(l0)} -> {fmt(level)} by step {fmt(step)}) and "
                f"jumps by {pct(rel)} of its level: the learning rate is likely too high.",
                "Try a 3-10x lower learning rate or warmup; an LR range test (fastai lr_find) finds a good one.",
                {"first_level": l0, "level": level, "noise_ratio": rel},
            ))
        low = False
        if 9 <= i < self.early_blocks and l0 > 0 and level > 0:
            half = L[i // 2]
            first, second = l0 - half, half - level  # falls over the first and the second half
            # steady: the second half falls about as much as the first (not stalling, not speeding up)
            low = (0 < (l0 - level) / l0 < 0.5 and second > 3 * self._se(5) and 0.4 * first <= second <= 2 * first)
        if self._open("lr_too_low", low, level < 0.5 * l0, step, _halved(level)):
            out.append(Finding(
                "lr_too_low", "info", name, step,
                f"{name} falls slowly and steadily: {pct((l0 - level) / l0)} in {fmt((i + 1) * self.block)} points "
                "and as fast in the second half as in the first: the learning rate is likely too low.",
                "Try a 3-10x higher learning rate (an LR range test finds a good one).",
                {"first_level": l0, "level": level},
            ))
        if i >= 9:
            moved, thr, longer = self._moved(i, level)
            cond = abs(moved) < thr and longer < max(0.1 * abs(level), thr)
            if self._converged_episodes(np.array([cond]), np.array([moved]), np.array([thr]), np.array([level]),
                                        np.array([step]), np.array([i])):
                out.append(self._converged(name, step, level, moved, thr))
        return out

    def _converged_episodes(self, cond: np.ndarray, moved: np.ndarray, thr: np.ndarray, level: np.ndarray,
                            ends: np.ndarray, idx: np.ndarray) -> list[int]:
        """Blocks (``idx``: their numbers) where a ``converged`` episode opens (``cond``); an open
        one closes when the level drops by 3 thresholds over 5 blocks, or by more than 10% (and 3
        thresholds) below where the episode started: a loss that keeps falling slowly, a little
        per 5 blocks, was not converged after all. After such a close, a new episode needs the
        block half as far into the run (what ``cond`` compares with) to be past it, so a slow
        steady fall does not open and close one episode after another. One pass over the
        blocks, Python only at each opening and closing."""
        starts: list[int] = []
        i, n = 0, len(cond)
        while i < n:
            if self.active["converged"]:
                ref = self._settled
                with np.errstate(invalid="ignore"):
                    hits = np.flatnonzero((moved[i:] > 3 * thr[i:])
                                          | (ref - level[i:] > np.maximum(0.1 * abs(ref), 3 * thr[i:])))
                if not len(hits):
                    break
                i += int(hits[0])
                self.ended.append(("converged", float(ends[i]), f"it fell again, to {fmt(float(level[i]))}"))
                self._fell = int(idx[i])
            else:
                hits = np.flatnonzero(cond[i:] & (idx[i:] // 2 >= self._fell))
                if not len(hits):
                    break
                i += int(hits[0])
                starts.append(i)
                self._settled = float(level[i])
            self.active["converged"] = not self.active["converged"]
            i += 1
        return starts

    def _moved(self, i: int, level: float) -> tuple[float, float, float]:
        """Change of the level over the last 5 blocks, the threshold for that, and the fall since
        the block half as far into the run (a loss still falling on a log-step axis has not
        converged)."""
        L = self.levels.tolist()
        thr = max(self.converged_rel * abs(level), 2 * self._se(5))
        return L[-5] - level, thr, L[i // 2] - level

    def _not_learning(self, name: str, i: int, step: float, level: float, l0: float) -> list[Finding]:
        """``not_learning``: with ``num_classes``, after 5 blocks still at an untrained classifier's
        loss (the last 3 levels >= 0.9 ln C: a network killed by a too-high learning rate sits
        there); without it, after ``FLAT_BLOCKS`` (8) blocks no block level 5% (and 3 standard
        errors) away from the first: 8, not fewer, because the quickstart's MLP sits at its
        initial loss for ~600 steps before it falls 50x (a saddle, not a dead network). Once the
        loss leaves that level it can no longer open."""
        if i >= self.early_blocks:  # past the early window an open episode can still close
            if self.active["not_learning"]:
                left = (level < 0.7 * self.expected if self.expected is not None
                        else abs(level - l0) > 2 * self._band)
                self.learned = self._close_late("not_learning", np.array([left]), np.array([level]),
                                                np.array([step]), _learning)
            return []
        if self.learned:  # an open episode closed when it learned; nothing opens again
            return []
        L = self.levels.tolist()
        if self.expected is not None:
            stuck = i >= 4 and min(L[-3:]) >= 0.9 * self.expected
            self.learned = level < 0.7 * self.expected
            what = f"near ln C = {self.expected:.3g}, the loss of an untrained classifier"
        else:
            band = max(0.05 * abs(l0), 3 * self._se(5))
            stuck = i >= FLAT_BLOCKS - 1 and max(abs(x - l0) for x in L) <= band
            self.learned = abs(level - l0) > 2 * band
            what = f"within {pct(band / abs(l0)) if l0 else fmt(band)} of where it started"
        if not self._open("not_learning", stuck and not self.learned, self.learned, step, _learning(level)):
            return []
        self._band = math.nan if self.expected is not None else band
        return [Finding(
            "not_learning", "warning", name, step,
            f"{name} is not learning: after {fmt((i + 1) * self.block)} points it is still {fmt(level)}, {what}.",
            "Check that gradients reach the weights (requires_grad, optimizer.step(), zero_grad) and the learning "
            "rate: far too high kills the network (it jumped, then stays flat), far too low barely moves it.",
            {"level": level, "first_level": l0, "expected": math.nan if self.expected is None else self.expected},
        )]

    def _judge_late(self, name: str, level: np.ndarray, noise: np.ndarray, ends: np.ndarray) -> list[Finding]:
        """:meth:`_judge` for blocks past the early window, vectorized: there ``lr_too_high``,
        ``lr_too_low`` and ``not_learning`` cannot open (``lr_too_high`` may still close) and the
        others see the same numbers, computed in the same order."""
        L = np.concatenate((self._levels[max(self.count - 4, 0) : self.count], level))  # the 4 before and these
        half = (self.count + np.arange(len(level))) // 2  # block half as far into the run, for each
        old = half < self.count
        at_half = np.where(old, self._levels[np.minimum(half, max(self.count - 1, 0))], 0.0)
        at_half = np.where(old, at_half, L[np.clip(half - self.count + len(L) - len(level), 0, len(L) - 1)])
        N = np.concatenate((self.noises[-4:], noise))
        pad = len(N) - len(level)
        E = np.concatenate((self.ends[-1:], ends))
        idx = self.count + np.arange(len(level))
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            rel = np.where(level != 0, noise / np.abs(level), np.where(noise > 0, math.inf, 0.0))
            hi, self._hi = held(rel > self.noise_ratio, self._hi, 2)
            lo, self._lo = held(rel < 0.7 * self.noise_ratio, self._lo, 2)
            # over the 5 blocks ending at each: the same left-to-right sum of squares as _se
            late = idx >= 9
            j = np.arange(len(level)) + pad
            window = [N[np.maximum(j - b, 0)] for b in (4, 3, 2, 1, 0)]
            sq = window[0] * window[0]
            for n in window[1:]:
                sq = sq + n * n
            se = np.sqrt(2.0 * sq / 5 / self.block)
            moved = L[np.maximum(j - 4, 0)] - level
            longer = at_half - level
            a, b = self.converged_rel * np.abs(level), 2 * se
            thr = np.where(b > a, b, a)
            cap = 0.1 * np.abs(level)
            cond = late & (np.abs(moved) < thr) & (longer < np.where(thr > cap, thr, cap))
            converged = self._converged_episodes(cond, moved, thr, level, ends, idx)
            noisy, calm, self.active["noisy"] = episodes(hi, lo, self.active["noisy"])
        self.ended += [("noisy", float(ends[k]), _steadier(float(rel[k]))) for k in calm]
        l0 = self._levels[0]
        self._close_late("lr_too_high", level < 0.9 * l0, level, ends, _came_down)
        self._close_late("lr_too_low", level < 0.5 * l0, level, ends, _halved)
        if self.expected is not None:
            left = level < 0.7 * self.expected
        else:
            with np.errstate(invalid="ignore"):
                left = np.abs(level - l0) > 2 * self._band
        if self._close_late("not_learning", left, level, ends, _learning):
            self.learned = True
        found = [(k, 0, self._noisy(name, float(E[k]), float(ends[k]), float(noise[k]), float(level[k]), float(rel[k])))
                 for k in noisy]
        found += [(k, 1, self._converged(name, float(ends[k]), float(level[k]), float(moved[k]), float(thr[k])))
                  for k in converged]
        self._push(level.tolist(), noise[-5:].tolist(), ends[-2:].tolist())
        return [f for _, _, f in sorted(found, key=lambda t: t[:2])]

    def _close_late(self, code: str, clear: np.ndarray, level: np.ndarray, ends: np.ndarray,
                    why: Callable[[float], str]) -> bool:
        """Close an open ``code`` episode at the first block past the early window where ``clear``
        holds (those rules cannot open there any more); whether it closed."""
        hits = np.flatnonzero(clear)
        if not self.active[code] or not len(hits):
            return False
        k = int(hits[0])
        self.active[code] = False
        self.ended.append((code, float(ends[k]), why(float(level[k]))))
        return True

    @staticmethod
    def _noisy(name: str, prev_end: float, step: float, noise: float, level: float, rel: float) -> Finding:
        return Finding(
            "noisy", "info", name, step, f"{name} is noisy: point-to-point noise is {pct(rel)} of its level "
            f"(steps {fmt(prev_end)}-{fmt(step)}).",
            "A larger batch size or a lower learning rate steadies it; raise the smoothing to see the trend.",
            {"noise": noise, "level": level, "ratio": rel},
        )

    def _converged(self, name: str, step: float, level: float, moved: float, thr: float) -> Finding:
        return Finding(
            "converged", "info", name, step,
            f"{name} moved by only {pct(abs(moved) / abs(level)) if level else fmt(moved)} over the last "
            f"{fmt(5 * self.block)} points (to step {fmt(step)}) and by little since half as many steps: it has "
            "converged or stalled.",
            "If validation is flat too you can stop here; otherwise lower the learning rate (a schedule or "
            "ReduceLROnPlateau) for a final gain.", {"level": level, "moved": moved, "threshold": thr},
        )


def _steadier(rel: float) -> str:
    return f"steadier since (noise {pct(rel)} of its level)"


def _came_down(level: float) -> str:
    return f"it came down, to {fmt(level)}"


def _halved(level: float) -> str:
    return f"it has since fallen by half, to {fmt(level)}"


def _learning(level: float) -> str:
    return f"it started learning ({fmt(level)})"


FLAT_BLOCKS = 8  # blocks at the initial level before a loss is "not learning" (without num_classes)
_BLOCK_CODES = ("noisy", "lr_too_high", "lr_too_low", "converged", "not_learning")


def _block_summaries(grid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row: finite values, level (their median) and noise (the interquartile range of first
    differences between neighbouring finite values / (1.349 sqrt 2): the standard deviation of
    Gaussian point noise, robust to the odd huge value, and the trend cancels in differences)."""
    count, level, _, _ = row_stats(grid)
    with np.errstate(invalid="ignore", over="ignore"):
        d = np.diff(grid, axis=1)  # NaN/inf where a neighbour is not finite
    d = np.sort(np.where(np.isfinite(d), d, np.nan), axis=1)
    m = np.isfinite(d).sum(axis=1)
    r = np.arange(len(d))
    q1, q3 = np.maximum((m - 1) // 4, 0), np.maximum((3 * (m - 1)) // 4, 0)
    with np.errstate(invalid="ignore", over="ignore"):
        noise = np.where(m >= 4, (d[r, q3] - d[r, q1]) / (1.349 * math.sqrt(2.0)), np.nan)
    return count, level, noise
