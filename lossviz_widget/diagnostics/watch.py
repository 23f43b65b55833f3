"""Rules on watched gradients, weights, updates and activations (:meth:`lossviz_widget.LossPlot.watch`).

They read a :class:`~lossviz_widget.watch.series.WatchedSeries` (one row per sampled training
step) and report :class:`~.findings.Finding`
objects like every other detector: once per episode, an episode ending only on a clearly
stricter all-clear (hysteresis, :func:`~.findings.episodes`). Thresholds are the fields of
:class:`WatchConfig`; each one's source is in ``docs/watch.md``.

* ``exploding_gradients`` (error): the total gradient norm is non-finite, or more than
  ``explode_ratio`` (10) times its median over the previous ``window`` samples for
  ``explode_persist`` (3) samples in a row (a single hard batch is not an explosion).
* ``vanishing_gradients`` (warning): the first (input-side) layer's RMS gradient is below
  ``vanish_ratio`` (1e-3) times the last layer's, for ``persist`` samples in a row.
* ``dead_relu`` (warning): a ReLU module's share of dead units (zero for every sample of the
  batch) is at least ``dead_fraction`` (50%) for ``persist`` samples in a row.
* ``update_ratio_high`` (warning) / ``update_ratio_low`` (info): the median over layers of
  ‖Δθ‖/‖θ‖ per optimizer step is above / below ``update_ratio_band`` (1e-4…1e-2) for
  ``persist`` samples in a row, after ``warmup`` samples.

A loss spike preceded by a gradient-norm spike is the engine's own ``loss_spike`` finding: it
reads the total gradient norm the watcher logs as ``watch/grad_norm`` beside the loss and says
whether that spiked first (:func:`lossviz_widget.diagnostics.series.with_grad_norm`).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from ..watch.series import WatchedSeries, rms
from .findings import Finding, episodes, fmt, held, pct

__all__ = ["GRAD_NORM_METRIC", "WatchConfig", "WatchRules"]

GRAD_NORM_METRIC = "watch/grad_norm"  # the total gradient norm's curve in the plot


@dataclass(frozen=True)
class WatchConfig:
    """Thresholds of the watch rules (defaults and sources: ``docs/watch.md``)."""

    window: int = 20  # samples (or loss points) a median is taken over
    warmup: int = 5  # samples before the ratio rules judge (the first steps of a run are unusual)
    persist: int = 5  # samples in a row a slow condition must hold
    explode_ratio: float = 10.0
    explode_persist: int = 3  # samples in a row above explode_ratio (one hard batch is not an explosion)
    vanish_ratio: float = 1e-3
    dead_fraction: float = 0.5
    update_ratio_band: tuple[float, float] = (1e-4, 1e-2)

    def __post_init__(self) -> None:
        for name in ("window", "persist", "explode_persist"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be an int >= 1, got {v!r}")
        if not isinstance(self.warmup, int) or self.warmup < 0:
            raise ValueError(f"warmup must be an int >= 0, got {self.warmup!r}")
        for name in ("explode_ratio",):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 1):
                raise ValueError(f"{name} must be a finite number > 1, got {v!r}")
        if not (isinstance(self.vanish_ratio, (int, float)) and 0 < self.vanish_ratio < 1):
            raise ValueError(f"vanish_ratio must be in (0, 1), got {self.vanish_ratio!r}")
        if not (isinstance(self.dead_fraction, (int, float)) and 0 < self.dead_fraction <= 1):
            raise ValueError(f"dead_fraction must be in (0, 1], got {self.dead_fraction!r}")
        lo, hi = self.update_ratio_band
        if not 0 < lo < hi:
            raise ValueError(f"update_ratio_band must be (low, high) with 0 < low < high, "
                             f"got {self.update_ratio_band!r}")


def _nanmedian(a: np.ndarray, axis: int | None = None) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices are NaN, as intended
        return np.asarray(np.nanmedian(a, axis=axis))


def _rolling_ratio(x: np.ndarray, start: int, stop: int, window: int) -> np.ndarray:
    """``x[i] / median(x[i - window : i])`` for ``i`` in ``[start, stop)`` (fewer points at the
    start; NaN for ``i == 0`` and where the median is not positive)."""
    padded = np.concatenate([np.full(window, np.nan), x[:stop]])  # NaN: not there, ignored by the median
    windows = np.lib.stride_tricks.sliding_window_view(padded[start : stop + window - 1], window)
    med = _nanmedian(windows, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(med > 0, x[start:stop] / med, np.nan)


class _Episodes:
    """Per named condition: how long it has held, and whether its episode is active."""

    def __init__(self) -> None:
        self._carry: dict[str, int] = {}
        self._active: dict[str, bool] = {}

    def starts(self, key: str, cond: np.ndarray, clear: np.ndarray, persist: int) -> list[int]:
        """Indices (into ``cond``) where an episode of ``key`` starts: ``cond`` held ``persist`` in a row."""
        trig, self._carry[key] = held(cond, self._carry.get(key, 0), persist)
        found, _, self._active[key] = episodes(trig, clear, self._active.get(key, False))
        return found


class WatchRules:
    """Incremental rules over a growing :class:`WatchedSeries`; :meth:`update` reads what is new."""

    def __init__(self, config: WatchConfig | None = None) -> None:
        self.config = config or WatchConfig()
        self.findings: list[Finding] = []
        self._seen = 0  # samples read
        self._high_carry = 0  # samples in a row above explode_ratio, up to the last one read
        self._episodes = _Episodes()

    def update(self, series: WatchedSeries) -> list[Finding]:
        """Read the samples added since the last call; returns the new findings, also appended to
        :attr:`findings`."""
        new: list[Finding] = []
        start, stop = self._seen, len(series)
        if stop > start:
            new += self._exploding(series, start, stop)
            new += self._vanishing(series, start, stop)
            new += self._dead(series, start, stop)
            new += self._updates(series, start, stop)
            self._seen = stop
        new.sort(key=lambda f: f.step)
        self.findings += new
        return new

    # -- gradients ------------------------------------------------------------------------------

    def _exploding(self, s: WatchedSeries, start: int, stop: int) -> list[Finding]:
        c = self.config
        total = s.total_grad_norm.astype(np.float64)
        ratio = _rolling_ratio(total, start, stop, c.window)
        new = total[start:stop]
        judged = np.arange(start, stop) >= c.warmup
        high, self._high_carry = held(judged & (ratio > c.explode_ratio), self._high_carry, c.explode_persist)
        cond = ~np.isfinite(new) | high
        clear = np.isfinite(new) & (np.nan_to_num(ratio, nan=1.0) < c.explode_ratio / 2)
        out = []
        for k in self._episodes.starts("exploding", cond, clear, 1):
            i = start + k
            step, value = float(s.steps[i]), float(total[i])
            med = float(_nanmedian(total[max(0, i - c.window) : i])) if i else math.nan
            what = (f"The total gradient norm is {fmt(value)} at step {fmt(step)}" if not math.isfinite(value) else
                    f"The total gradient norm jumped to {fmt(value)} at step {fmt(step)}, {fmt(value / med)}x its "
                    f"median over the previous {min(i, c.window)} samples ({fmt(med)})")
            out.append(Finding(
                "exploding_gradients", "error", GRAD_NORM_METRIC, step, f"{what}: exploding gradients.",
                "Lower the learning rate, clip gradients (torch.nn.utils.clip_grad_norm_ near the usual norm), "
                "or add warmup / normalization layers.",
                {"grad_norm": value, "median": med},
            ))
        return out

    def _vanishing(self, s: WatchedSeries, start: int, stop: int) -> list[Finding]:
        layers = s.layout.param_layers
        if len(layers) < 3:  # a depth profile needs a few layers
            return []
        c = self.config
        g = rms(s.matrix("grad_norm")[start:stop].astype(np.float64), s.layout.param_sizes)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = g[:, 0] / g[:, -1]
        cond = np.nan_to_num(ratio, nan=1.0) < c.vanish_ratio
        clear = np.nan_to_num(ratio, nan=0.0) > 10 * c.vanish_ratio
        out = []
        for k in self._episodes.starts("vanishing", cond, clear, c.persist):
            i = start + k
            r = float(ratio[k])
            out.append(Finding(
                "vanishing_gradients", "warning", GRAD_NORM_METRIC, float(s.steps[i]),
                f"Gradients shrink toward the input: the first layer's ({layers[0]}) RMS gradient is "
                f"{fmt(r)} times the last layer's ({layers[-1]}) for {c.persist} samples in a row "
                f"(step {fmt(float(s.steps[i]))}): vanishing gradients; the early layers barely learn.",
                "Use ReLU-family activations with He (Kaiming) init, add normalization layers or residual "
                "connections; deep sigmoid/tanh stacks saturate.",
                {"ratio": r, "first_layer": layers[0], "last_layer": layers[-1]},
            ))
        return out

    # -- activations ----------------------------------------------------------------------------

    def _dead(self, s: WatchedSeries, start: int, stop: int) -> list[Finding]:
        c = self.config
        dead = s.matrix("dead_fraction")[start:stop]
        by_sample: dict[int, list[tuple[str, float]]] = {}
        for j, name in enumerate(s.layout.act_layers):
            if name not in s.layout.relu_layers:
                continue
            col = dead[:, j].astype(np.float64)
            cond = np.nan_to_num(col, nan=0.0) >= c.dead_fraction
            clear = np.nan_to_num(col, nan=1.0) < c.dead_fraction / 2
            for k in self._episodes.starts(f"dead:{name}", cond, clear, c.persist):
                by_sample.setdefault(k, []).append((name, float(col[k])))
        out = []
        for k, hits in sorted(by_sample.items()):
            step = float(s.steps[start + k])
            listed = ", ".join(f"{n} {pct(v)}" for n, v in hits)
            out.append(Finding(
                "dead_relu", "warning", "watch/dead_fraction", step,
                f"{len(hits)} ReLU layer(s) have at least {pct(c.dead_fraction)} dead units (zero for every "
                f"sample of the batch) for {c.persist} samples in a row, at step {fmt(step)}: {listed}.",
                "Dead units never recover: lower the learning rate, check the bias init (negative biases kill "
                "units), use He init, or switch to LeakyReLU/GELU.",
                {"layers": ", ".join(n for n, _ in hits), "worst": max(v for _, v in hits)},
            ))
        return out

    # -- updates --------------------------------------------------------------------------------

    def _updates(self, s: WatchedSeries, start: int, stop: int) -> list[Finding]:
        c = self.config
        lo, hi = c.update_ratio_band
        m = s.matrix("update_ratio")[start:stop].astype(np.float64)
        if not m.size or np.isnan(m).all():
            return []
        med = _nanmedian(m, axis=1)
        judged = np.arange(start, stop) >= c.warmup
        out = []
        for code, cond, clear in (
            ("update_ratio_high", judged & (np.nan_to_num(med, nan=0.0) > hi), np.nan_to_num(med, nan=0.0) < hi / 2),
            ("update_ratio_low", judged & (np.nan_to_num(med, nan=1.0) < lo), np.nan_to_num(med, nan=1.0) > 2 * lo),
        ):
            for k in self._episodes.starts(code, cond, clear, c.persist):
                out.append(self._update_finding(code, s, start + k, m[k], float(med[k])))
        return out

    def _update_finding(self, code: str, s: WatchedSeries, i: int, row: np.ndarray, med: float) -> Finding:
        lo, hi = self.config.update_ratio_band
        step = float(s.steps[i])
        order = np.argsort(np.nan_to_num(row, nan=np.inf if code == "update_ratio_low" else -np.inf))
        worst = order[::-1][:3] if code == "update_ratio_high" else order[:3]
        listed = ", ".join(f"{s.layout.param_layers[j]} {fmt(row[j])}" for j in worst)
        high = code == "update_ratio_high"
        return Finding(
            code, "warning" if high else "info", "watch/update_ratio", step,
            f"Each optimizer step changes the weights by {fmt(med)} of their norm (median over layers, "
            f"{self.config.persist} samples in a row, step {fmt(step)}), "
            + (f"above {fmt(hi)}: learning too fast" if high else f"below {fmt(lo)}: learning very slowly")
            + f"; {'largest' if high else 'smallest'}: {listed}.",
            ("Lower the learning rate (about 1e-3 is the usual ratio)." if high else
             "Raise the learning rate, or check that the model has not stopped learning (frozen or converged)."),
            {"median_ratio": med, "band_low": lo, "band_high": hi},
        )
