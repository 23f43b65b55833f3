"""Detectors that look at one series at a time; each keeps running state and reads only new points.

Rules (defaults in :class:`~lossviz_widget.diagnostics.engine.DiagnosticsConfig`):

* ``nonfinite`` (any metric; Keras ``TerminateOnNaN``, Lightning ``check_finite``): a NaN/Inf
  value. Episode ends after ``clear_after`` finite points in a row.
* ``negative_loss`` (loss-like names): a finite value below 0. Ends after ``clear_after``
  non-negative points in a row.
* ``divergence`` (training loss-like series): fastai's ``lr_find`` stop rule. The loss smoothed
  by fastai's debiased EMA (beta 0.98) exceeds ``divergence_ratio`` (4) times its best smoothed
  value (after ``divergence_warmup`` points). Ends once it is back under half that (2x best).
* ``initial_loss`` (training loss-like series, only when ``num_classes`` is given): cs231n's
  check that cross-entropy starts near ``ln C``; the first finite value outside
  ``initial_loss_band`` (0.5-1.5) times ``ln C`` is reported. Without ``num_classes`` there is
  no expected value to compare with, so nothing is said.
* Block rules (training loss-like series): the series is cut into blocks of ``block`` (100)
  points; per block its finite mean (level) and noise ``std(diff(y)) / sqrt(2)`` over pairs of
  neighbouring finite points (the trend cancels in first differences) are kept, and the rules
  read only those block summaries:

  - ``noisy``: noise above ``noise_ratio`` (50%) of the level in 2 blocks in a row; ends after 2
    blocks under 70% of that.
  - ``lr_too_high`` (first ``early_blocks`` = 20 blocks, from the 5th): the level is 10% above
    the first block's, or has not come down 2% while the noise is over 25% of the level.
  - ``lr_too_low`` (same early window): the last 5 block levels fall every time, each by under
    1%, by more than twice their standard error in all, and less than 10% below the first block.
  - ``converged`` (from the 10th block): the level moved by less than the larger of 0.5% and two
    standard errors over the last 5 blocks. Ends when it drops by three times that again.

Costs: a few NumPy passes per new point; :class:`RunRule` returns after one pass when a frame
holds no bad value, and blocks past the early window are judged together (no Python per block).
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from .._core.smoothing import EmaSmoother
from .findings import Finding, first_episode, fmt, held, pct

__all__ = ["BlockTrends", "Divergence", "InitialLoss", "RunRule", "negative_rule", "nonfinite_rule"]

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
        starts, self.active = first_episode(bad, (idx - last_bad) >= self.clear_after, self.active)
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
        f"{name} is negative ({fmt(value)}) at step {fmt(step)}, but a loss like this is normally >= 0.",
        "Check the loss's sign and inputs (probabilities vs logits); negative values are expected only for "
        "losses such as a continuous negative log-likelihood or a GAN loss.", {"value": value},
    )


def nonfinite_rule(clear_after: int) -> RunRule:
    return RunRule("nonfinite", lambda v: ~np.isfinite(v), _nonfinite, clear_after)


def negative_rule(clear_after: int) -> RunRule:
    return RunRule("negative_loss", lambda v: np.isfinite(v) & (v < 0), _negative, clear_after)


class Divergence:
    """fastai's lr_find stop rule on a debiased EMA of the loss (see the module docstring)."""

    def __init__(self, ratio: float, beta: float, warmup: int) -> None:
        self.ratio, self.warmup = ratio, warmup
        self._ema = EmaSmoother(beta)
        self.best = math.inf
        self.count = 0  # finite points so far
        self.active = False

    def feed(self, name: str, steps: np.ndarray, values: np.ndarray, start: int) -> list[Finding]:
        sm = self._ema.stream(values[start:])  # keeps no per-point output
        finite = np.isfinite(sm)
        k = self.count + np.cumsum(finite)
        self.count = int(k[-1]) if len(k) else self.count
        eligible = finite & (k > self.warmup)
        best = np.minimum(self.best, np.minimum.accumulate(np.where(eligible, sm, np.inf)))
        if len(best):
            self.best = float(best[-1])
        trigger = eligible & (best > 0) & (sm > self.ratio * best)
        clear = eligible & (sm < 0.5 * self.ratio * best)
        starts, self.active = first_episode(trigger, clear, self.active)
        out = []
        for i in starts:
            s, v, b = float(steps[start + i]), float(sm[i]), float(best[i])
            out.append(Finding(
                "divergence", "error", name, s,
                f"{name} is diverging: smoothed it is {fmt(v)} at step {fmt(s)}, {v / b:.1f}x its best ({fmt(b)}).",
                "Restart from the last good checkpoint with a 3-10x lower learning rate, learning-rate warmup "
                "or gradient clipping.", {"smoothed": v, "best": b, "ratio": v / b},
            ))
        return out


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


class BlockTrends:
    """Noise and learning-rate rules on per-block summaries (see the module docstring).

    Blocks of the early window are judged one by one (all four rules, at most ``early_blocks``
    of them); past it only ``noisy`` and ``converged`` can open, and those are judged for a
    frame's blocks at once with NumPy. Only the first level and the last five blocks are kept."""

    def __init__(self, block: int, noise_ratio: float, early_blocks: int, converged_rel: float) -> None:
        self.block, self.noise_ratio = block, noise_ratio
        self.early_blocks, self.converged_rel = early_blocks, converged_rel
        self._pend_v = np.empty(0)
        self._pend_s = np.empty(0)
        self.count = 0  # blocks judged
        self.first_level = math.nan
        self.levels: list[float] = []  # of the last five blocks
        self.noises: list[float] = []
        self.ends: list[float] = []  # last step of each of the last two blocks
        self.active: dict[str, bool] = {c: False for c in ("noisy", "lr_too_high", "lr_too_low", "converged")}
        self._hi = self._lo = 0  # blocks in a row above / well below the noise threshold

    def feed(self, name: str, steps: np.ndarray, values: np.ndarray, start: int) -> list[Finding]:
        v = np.concatenate((self._pend_v, values[start:]))
        s = np.concatenate((self._pend_s, steps[start:]))
        full = len(v) // self.block * self.block
        self._pend_v, self._pend_s = v[full:].copy(), s[full:].copy()
        out: list[Finding] = []
        if not full:
            return out
        grid = v[:full].reshape(-1, self.block)
        finite = np.isfinite(grid)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # near 1e308: inf/nan judge nothing
            count = finite.sum(axis=1)
            level = np.where(finite, grid, 0.0).sum(axis=1) / count
            d = np.diff(grid, axis=1)
            pair = finite[:, 1:] & finite[:, :-1]
            npair = pair.sum(axis=1)
            dmean = np.where(pair, d, 0.0).sum(axis=1) / npair
            noise = np.sqrt(np.where(pair, (d - dmean[:, None]) ** 2, 0.0).sum(axis=1) / npair / 2.0)
        ends = s[self.block - 1 : full : self.block]
        kept = np.flatnonzero(count >= self.block // 2)
        early = kept[: max(self.early_blocks - self.count, 0)].tolist()
        for k in early:
            self._push([float(level[k])], [float(noise[k])], [float(ends[k])])
            out += self._judge(name)
        late = kept[len(early) :]
        if len(late):
            out += self._judge_late(name, level[late], noise[late], ends[late])
        return out

    def _push(self, levels: list[float], noises: list[float], ends: list[float]) -> None:
        if not self.count:
            self.first_level = levels[0]
        self.count += len(levels)
        self.levels = (self.levels + levels)[-5:]
        self.noises = (self.noises + noises)[-5:]
        self.ends = (self.ends + ends)[-2:]

    def _open(self, code: str, cond: bool, clear: bool) -> bool:
        if self.active[code]:
            if clear:
                self.active[code] = False
            return False
        self.active[code] = cond
        return cond

    def _se(self, last: int) -> float:
        """Standard error of a difference of two block means, from the last blocks' noise."""
        recent = self.noises[-last:]
        return math.sqrt(2.0 * sum(n * n for n in recent) / len(recent) / self.block)

    def _judge(self, name: str) -> list[Finding]:
        """All four rules on the latest block (early window)."""
        L, i, step = self.levels, self.count - 1, self.ends[-1]
        level, l0 = L[-1], self.first_level
        rel = self.noises[-1] / abs(level) if level else math.inf
        self._hi = self._hi + 1 if rel > self.noise_ratio else 0
        self._lo = self._lo + 1 if rel < 0.7 * self.noise_ratio else 0
        out: list[Finding] = []
        if self._open("noisy", self._hi >= 2, self._lo >= 2):
            out.append(self._noisy(name, self.ends[-2] if i else step, step, self.noises[-1], level, rel))
        early = 4 <= i < self.early_blocks and l0 > 0
        high = early and (level > 1.1 * l0 or (level > 0.98 * l0 and rel > 0.25))
        if self._open("lr_too_high", high, level < 0.9 * l0):
            out.append(Finding(
                "lr_too_high", "warning", name, step,
                f"{name} has not come down since the start ({fmt(l0)} -> {fmt(level)} by step {fmt(step)}) and "
                f"jumps by {pct(rel)} of its level: the learning rate is likely too high.",
                "Try a 3-10x lower learning rate or warmup; an LR range test (fastai lr_find) finds a good one.",
                {"first_level": l0, "level": level, "noise_ratio": rel},
            ))
        if early and min(L[-5:]) > 0:
            last = L[-5:]
            drops = [(a - b) / a for a, b in itertools.pairwise(last)]
            low = (all(0 < d < 0.01 for d in drops) and last[0] - last[-1] > 2 * self._se(5)
                   and (l0 - level) / l0 < 0.1)
        else:
            low = False
        if self._open("lr_too_low", low, early and level < 0.95 * L[-2]):
            out.append(Finding(
                "lr_too_low", "info", name, step,
                f"{name} falls steadily but slowly: {pct((l0 - level) / l0)} in {fmt((i + 1) * self.block)} points, "
                f"under 1% per {self.block}: the learning rate is likely too low.",
                "Try a 3-10x higher learning rate (an LR range test finds a good one).",
                {"first_level": l0, "level": level},
            ))
        if i >= 9:
            moved = L[-5] - level
            thr = max(self.converged_rel * abs(level), 2 * self._se(5))
            if self._open("converged", abs(moved) < thr, moved > 3 * thr):
                out.append(self._converged(name, step, level, moved, thr))
        return out

    def _judge_late(self, name: str, level: np.ndarray, noise: np.ndarray, ends: np.ndarray) -> list[Finding]:
        """:meth:`_judge` for blocks past the early window, vectorized: there ``lr_too_high`` and
        ``lr_too_low`` cannot open (``lr_too_high`` may still close) and the others see the same
        numbers, computed in the same order."""
        L = np.concatenate((self.levels[-4:], level))  # with the 4 blocks before (fewer at the start)
        N = np.concatenate((self.noises[-4:], noise))
        pad = len(L) - len(level)
        E = np.concatenate((self.ends[-1:], ends))
        idx = self.count + np.arange(len(level))
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            rel = np.where(level != 0, noise / np.abs(level), math.inf)
            hi, self._hi = held(rel > self.noise_ratio, self._hi, 2)
            lo, self._lo = held(rel < 0.7 * self.noise_ratio, self._lo, 2)
            noisy, self.active["noisy"] = first_episode(hi, lo, self.active["noisy"])
            # over the 5 blocks ending at each: the same left-to-right sum of squares as _se
            late = idx >= 9
            j = np.arange(len(level)) + pad
            window = [N[np.maximum(j - b, 0)] for b in (4, 3, 2, 1, 0)]
            sq = window[0] * window[0]
            for n in window[1:]:
                sq = sq + n * n
            se = np.sqrt(2.0 * sq / 5 / self.block)
            moved = L[np.maximum(j - 4, 0)] - level
            a, b = self.converged_rel * np.abs(level), 2 * se
            thr = np.where(b > a, b, a)
            converged, self.active["converged"] = first_episode(late & (np.abs(moved) < thr), late & (moved > 3 * thr),
                                                                self.active["converged"])
        if self.active["lr_too_high"] and bool((level < 0.9 * self.first_level).any()):
            self.active["lr_too_high"] = False
        found = [(k, 0, self._noisy(name, float(E[k]), float(ends[k]), float(noise[k]), float(level[k]), float(rel[k])))
                 for k in noisy]
        found += [(k, 1, self._converged(name, float(ends[k]), float(level[k]), float(moved[k]), float(thr[k])))
                  for k in converged]
        self._push(level[-5:].tolist(), noise[-5:].tolist(), ends[-2:].tolist())
        self.count += len(level) - min(len(level), 5)
        return [f for _, _, f in sorted(found, key=lambda t: t[:2])]

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
            f"{fmt(5 * self.block)} points (to step {fmt(step)}): it has converged or stalled.",
            "If validation is flat too you can stop here; otherwise lower the learning rate (a schedule or "
            "ReduceLROnPlateau) for a final gain.", {"level": level, "moved": moved, "threshold": thr},
        )
