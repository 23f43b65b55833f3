"""Where a curve is going: a weighted ensemble of learning-curve fits with an 80% interval.

:func:`forecast` takes one metric's full history and returns a :class:`Prediction`:

1. **Points** -- block medians of the history (:func:`~.curve.blocks`, at most ``max_blocks``),
   so the cost of a refit is bounded whatever the run's length, and spikes and NaN gaps drop out.
2. **Window** -- the fit starts after the last learning-rate step: where a logged learning rate
   last fell by half or more (:func:`~.curve.lr_drop`: exact, when the run logs one), or where the
   curve itself last dropped abruptly (:func:`~.curve.last_change`): a learning-rate step
   restarts the curve with other parameters.
3. **No forecast** when the latest value is not finite (diverged), when the window rises
   (diverging, or a validation loss that over-fits), when it is flat within its noise, when it
   has too few points, or when the horizon is more than :data:`MAX_REACH` times as far as the
   window reaches (too early to say); :attr:`Prediction.reason` says which.
4. **Models** -- each family of :mod:`.models` (power law, shifted power law, exponential,
   stretched exponential, and for a metric never negative the log power, which falls on towards
   0) is fitted to the window. Each family's forecast is *anchored*: its
   curve is shifted to start from the measured level now (the median of the raw points of the
   window's last 5% of blocks), and only the change it predicts from there is the family's; a fit that runs a little
   above or below the latest points does not carry that offset to the horizon.
5. **Backtests** -- each family is fitted again to the first 50% and the first 70% of the window,
   and its anchored forecast from there is compared with the level the curve then reached at the
   window's end: the family's demonstrated extrapolation error (RMS over the two), and that error
   per unit of log step.
6. **Ensemble** -- the families are weighted by ``prior / (backtest error² + level noise²)``: a
   family that extrapolated the curve's own recent past well is trusted more; the prior is 1 but
   for the log power's, learnt on real curves (:mod:`.calibration`: a backtest over the window's
   last half hardly tells a curve that falls on from one that levels off).
7. **Uncertainty** -- each family contributes, at every future step, a normal distribution (of the
   logarithm, for a positive loss) with the anchored prediction as mean and a variance of three
   parts: the noise of the anchor level, the Laplace approximation of the parameters' uncertainty
   (delta method, residual autocorrelation inflated: see :func:`~.models.fit`), and the backtest
   error per log step times how many log steps past the data the step is. The forecast is the
   weighted mixture; its 10th, 50th and 90th percentiles give the band and the 80% interval.
8. **Calibration** -- each family's spread is then multiplied by what :mod:`.calibration` learnt
   on real curves (split-conformal, on the learning set: the corpus's development seeds and the
   long runs' first four seeds): at each future step, by the share of the run seen then and by the
   curve's noise level (of a log-scale fit), the factors that put 80% of those curves' outcomes
   inside the interval, per share and per noise bin. The interval's optimistic edge stops where
   the curve would have fallen as far again (on the fitted scale) as it has so far, or three
   times as far as its recent slope per log step carried on to the horizon (:func:`_max_fall`;
   the worse edge at the window's worst level), so an early, loosely pinned fit prints no absurd
   bound.
9. **ETA** -- the first step the median reaches the target, with the steps its 80% band's
   optimistic and pessimistic edges reach it; "may reach" when only the optimistic edge does by
   the horizon.

**Why Laplace plus backtest, not a bootstrap or MCMC.** A bootstrap over residual blocks, or
Domhan et al.'s MCMC, refits each family tens to thousands of times; a live view refits every
few frames on a shared CPU, so one fit per family and window (two with the backtest) is the
budget. And both only resample the noise around the chosen curve: they say how well the
parameters are pinned down *if the family is right*. On real curves the larger error is the
family itself being wrong about the tail, which no resampling of residuals reveals but the
backtest measures directly, and the mixture of families spreads the band where they disagree.
The coverage of the resulting 80% intervals on real training curves is in
``benchmarks/FORECAST.md``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .._core.formatting import format_number as fmt
from . import calibration as _calibration
from .curve import Blocks, blocks, last_change, lr_drop, noise_level
from .models import FAMILIES, Family, Fit, fit

__all__ = ["BACKTEST_SHARES", "CALIBRATED", "MAX_REACH", "MIN_POINTS", "UNCALIBRATED", "Calibration", "Prediction",
           "forecast", "mixture_quantiles", "prob_below"]

MIN_POINTS = 12  # block medians a window needs before it is fitted
LEVEL_POINTS = 4096  # raw points read for the level now, at most
MAX_REACH = 20.0  # the horizon is at most this many times as far from the window's start as its last step
BACKTEST_SHARES = (0.5, 0.7)  # the backtests fit these shares of the window and extrapolate to its end
BAND_POINTS = 48  # points of the band drawn from the last step to the horizon
_EMPTY = np.empty(0)


@dataclass(frozen=True)
class Calibration:
    """What :mod:`.calibration` learnt on real curves (empty: nothing, what
    ``benchmarks/forecast/calibrate.py`` learns from).

    ``scale``: per share of the run seen (``shares``, rising), what each family's spread is
    multiplied by; ``noise_factor``: a further factor per bin of the curve's noise level (bins cut
    at ``noise_edges``, on the fitted scale); ``prior``: ``(family name, weight)`` pairs that
    multiply a family's backtest weight (1 for a family not named).
    """

    shares: tuple[float, ...]
    scale: tuple[float, ...]
    noise_edges: tuple[float, ...] = ()
    noise_factor: tuple[float, ...] = ()
    prior: tuple[tuple[str, float], ...] = ()

    def at(self, share: np.ndarray, noise: float = math.nan) -> np.ndarray:
        """The factor at each share, for a curve of this ``noise``: interpolated in log share, the
        first share's below it, 1 at share 1 (the last step)."""
        share = np.clip(np.asarray(share, dtype=np.float64), 1e-12, 1.0)
        if not self.shares:
            return np.ones_like(share)
        by_noise = self.noise_factor[int(np.searchsorted(self.noise_edges, noise))] \
            if self.noise_factor and math.isfinite(noise) else 1.0
        return np.interp(np.log(share), np.log([*self.shares, 1.0]), [*(k * by_noise for k in self.scale), 1.0])

    def weight(self, family: str) -> float:
        """The prior weight of ``family`` in the ensemble."""
        return dict(self.prior).get(family, 1.0)


CALIBRATED = Calibration(_calibration.SHARES, _calibration.SCALE, _calibration.NOISE_EDGES,
                         _calibration.NOISE_FACTOR, tuple(_calibration.PRIOR.items()))
UNCALIBRATED = Calibration((), ())


@dataclass(frozen=True)
class Prediction:
    """A forecast of one metric of one run at ``horizon`` (a step), or why there is none.

    ``final`` is the median of the forecast at the horizon, ``low``/``high`` its 80% interval;
    ``eta_step`` the first step the median reaches ``target`` (NaN when it does not by the
    horizon), ``eta_early``/``eta_late`` the first steps the 80% band's optimistic and pessimistic
    edges reach it (NaN: not by the horizon; with only ``eta_early`` the target *may* be reached),
    ``eta_seconds`` the wall time from the last point to ``eta_step`` (else ``eta_early``) at the
    recent pace.
    ``reached`` is True when the curve is already at the target. ``model`` names the families and
    their weights. ``noise``: of a log-scale fit (a positive loss), the spread of the logarithm of
    the block medians around a smooth curve, which the interval's calibration bins by (NaN
    otherwise). With no forecast, ``reason`` says why and the numbers are NaN.
    """

    run: str
    metric: str
    horizon: float
    reason: str = ""
    final: float = math.nan
    low: float = math.nan
    high: float = math.nan
    model: str = ""
    weights: dict[str, float] = field(default_factory=dict)
    last_step: float = math.nan
    latest: float = math.nan  # the level at the last step (the last block median)
    fitted_from: float = math.nan  # first step of the fitted window
    target: float | None = None
    eta_step: float = math.nan
    eta_seconds: float = math.nan
    eta_early: float = math.nan
    eta_late: float = math.nan
    reached: bool = False
    higher_is_better: bool = False
    band_x: np.ndarray = field(default_factory=lambda: _EMPTY)  # last step .. horizon
    band_lo: np.ndarray = field(default_factory=lambda: _EMPTY)  # 10th percentile
    band_mid: np.ndarray = field(default_factory=lambda: _EMPTY)  # median
    band_hi: np.ndarray = field(default_factory=lambda: _EMPTY)  # 90th percentile
    # per family (weight, mean, sd) at the horizon, of log(value) with log_scale, else of the value
    # (of minus the value where higher is better)
    mixture: tuple[tuple[float, float, float], ...] = ()
    log_scale: bool = False
    noise: float = math.nan

    @property
    def ok(self) -> bool:
        """Whether there is a forecast (else :attr:`reason` says why not)."""
        return not self.reason

    def prob_below(self, value: float) -> float:
        """Probability that the metric ends (at the horizon) below ``value``."""
        if not self.ok:
            return math.nan
        if self.log_scale:
            return prob_below(self.mixture, math.log(value)) if value > 0 else 0.0
        if self.higher_is_better:
            return 1.0 - prob_below(self.mixture, -value)
        return prob_below(self.mixture, value)

    def prob_beats(self, value: float) -> float:
        """Probability that the metric ends (at the horizon) better than ``value``: below it for a
        loss, above it where higher is better."""
        p = self.prob_below(value)
        return 1.0 - p if self.higher_is_better else p

    def sentence(self) -> str:
        """What the readout says: the final value with its interval and the ETA, or why not."""
        if not self.ok:
            return f"no forecast: {self.reason}"
        text = (f"≈ {fmt(self.final)} at step {fmt(self.horizon)} "
                f"(80%: {fmt(self.low)}–{fmt(self.high)}; {self.model})")
        if self.target is None:
            return text
        if self.reached:
            return f"{text}; already at {fmt(self.target)}"
        goal, by = fmt(self.target), fmt(self.horizon)
        when = f" (in {_duration(self.eta_seconds)})" if math.isfinite(self.eta_seconds) else ""
        if math.isnan(self.eta_early):
            return f"{text}; not expected to reach {goal} by step {by}"
        if math.isnan(self.eta_step):
            return (f"{text}; may reach {goal} by step ~{_steps(self.eta_early)}{when} "
                    f"(the 80% band's optimistic edge; the median does not by step {by})")
        late = _steps(self.eta_late) if math.isfinite(self.eta_late) else f"beyond {by}"
        return (f"{text}; reaches {goal} at step ~{_steps(self.eta_step)}{when} "
                f"(80%: {_steps(self.eta_early)}–{late})")


def _steps(step: float) -> str:
    """A step of an ETA, rounded to what such a forecast knows: 3 significant digits ("41,200")."""
    return fmt(float(f"{step:.3g}"))


def _duration(seconds: float) -> str:
    if seconds < 1:
        return "< 1 s"
    if seconds < 90:
        return f"~{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"~{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"~{seconds / 3600:.1f} h"
    return f"~{seconds / 86400:.1f} days"


def _ncdf(z: np.ndarray) -> np.ndarray:
    """The standard normal CDF (SciPy's: a forecast exists only where SciPy does)."""
    from scipy.special import ndtr

    return np.asarray(ndtr(z))


def prob_below(mixture: Sequence[tuple[float, float, float]], value: float) -> float:
    """P(X < value) for a mixture of normals ``(weight, mean, sd)``."""
    total = 0.0
    for w, mu, sd in mixture:
        total += w * (float(value > mu) if sd <= 0 else float(_ncdf(np.asarray((value - mu) / sd))))
    return total


def mixture_quantiles(w: np.ndarray, mu: np.ndarray, sd: np.ndarray, qs: Sequence[float]) -> list[np.ndarray]:
    """Quantiles of a mixture of normals at every column: ``w`` (k,), ``mu`` and ``sd`` (k, n); bisection."""
    sd = np.maximum(sd, 1e-300)
    out = []
    for q in qs:
        lo = (mu - 8 * sd).min(axis=0)
        hi = (mu + 8 * sd).max(axis=0)
        for _ in range(50):
            mid = 0.5 * (lo + hi)
            cdf = (w[:, None] * _ncdf((mid[None, :] - mu) / sd)).sum(axis=0)
            below = cdf < q
            lo = np.where(below, mid, lo)
            hi = np.where(below, hi, mid)
        out.append(0.5 * (lo + hi))
    return out


def _no(run: str, metric: str, horizon: float, reason: str, maximize: bool, target: float | None,
        last_step: float = math.nan, latest: float = math.nan) -> Prediction:
    return Prediction(run, metric, horizon, reason=reason, target=target, higher_is_better=maximize,
                      last_step=last_step, latest=latest)


def _window_reason(z: np.ndarray, noise: float, tiny: float) -> str:
    """Why a window should not be forecast ("" when it should): rising or flat.

    Levels are medians of a tenth of the window's blocks (``k``), whose noise is about
    ``1.25 * noise / sqrt(k)``: the window rises when its last level is more than 4 such noises
    (and a tenth of its range) above its lowest level, and is flat when its first level is less
    than 4 such noises (and ``tiny``) above its last.
    """
    k = max(2, len(z) // 10)
    head, tail = float(np.median(z[:k])), float(np.median(z[-k:]))
    low = float(np.min(np.median(np.lib.stride_tricks.sliding_window_view(z, k), axis=1)))
    level_noise = 1.25 * noise / math.sqrt(k)
    if tail - low > max(4 * level_noise, 0.1 * float(np.ptp(z))):
        return "rising: not converging (diverging, or a validation loss over-fitting)"
    if head - tail < max(4 * level_noise, tiny):
        return "flat: no trend to extrapolate"
    return ""


@dataclass(frozen=True)
class _Scale:
    """Where the fits live: ``u = log y`` for a positive loss, ``u = y`` for other losses, ``u = -y``
    for metrics where higher is better (the models fall)."""

    log: bool
    sign: float

    def to_u(self, y: np.ndarray | float) -> np.ndarray:
        y = np.asarray(y, dtype=np.float64)
        if self.log:
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.where(y > 0, np.log(np.where(y > 0, y, 1.0)), -np.inf)
        return self.sign * y

    def to_y(self, u: np.ndarray) -> np.ndarray:
        return np.exp(u) if self.log else self.sign * u


def forecast(steps: np.ndarray, values: np.ndarray, wall_time: np.ndarray | None = None, *,
             horizon: float | None = None, target: float | None = None, higher_is_better: bool = False,
             run: str = "", metric: str = "", max_blocks: int = 160,
             families: Sequence[Family] = FAMILIES, lr: tuple[np.ndarray, np.ndarray] | None = None,
             calibration: Calibration = CALIBRATED) -> Prediction:
    """Forecast one series at ``horizon`` (default: twice its last step); see the module docstring.

    A loss that has been positive throughout is fitted on its logarithm (see :func:`~.models.fit`):
    the forecast and its interval stay positive and errors count relative to the level; a loss
    with zeros or negative values is fitted as it is (asymptote and interval not below 0 when it
    has never been negative); a metric where higher is better is fitted on its negation.
    ``families``: the models of the ensemble (:data:`~.models.FAMILIES`). ``lr``: the run's logged
    learning rate ``(steps, values)``, if any: the fit starts after its last step drop.
    ``calibration``: how the mixture is moved and stretched (:data:`CALIBRATED`: learnt on real
    curves; :data:`UNCALIBRATED` for learning it).
    Cost: O(``max_blocks``) per call whatever the length of the series (block medians of at most 16
    points each, at most :data:`LEVEL_POINTS` for the level now, three small least-squares fits per
    family); needs SciPy (the ``forecast`` extra), else the reason says so.
    """
    steps = np.asarray(steps, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    wall = np.full(len(steps), np.nan) if wall_time is None else np.asarray(wall_time, dtype=np.float64)
    if len(steps) == 0:
        return _no(run, metric, math.nan if horizon is None else horizon, "no values yet", higher_is_better, target)
    last = float(steps[-1])
    h = 2.0 * last if horizon is None else float(horizon)
    if not math.isfinite(values[-1]):
        return _no(run, metric, h, f"diverged: the latest value is {values[-1]} (step {last:g})",
                   higher_is_better, target, last)
    b = blocks(steps, values, wall, max_blocks)
    if len(b) < MIN_POINTS:
        return _no(run, metric, h, f"too few points: {len(b)}, {MIN_POINTS} needed", higher_is_better, target, last)
    if h <= last:
        return _no(run, metric, h, f"the run is at or past the horizon (step {fmt(h)})", higher_is_better, target,
                   last)
    scale = _Scale(log=not higher_is_better and bool(b.values.min() > 0), sign=-1.0 if higher_is_better else 1.0)
    floor = 0.0 if not higher_is_better and b.values.min() >= 0 else -np.inf
    u = scale.to_u(b.values)
    noise = noise_level(u)
    tiny = 1e-3 if scale.log else 1e-3 * abs(float(u[-1]))  # a fall this small is flat
    start = _window_start(b, u, noise, tiny, lr)
    win = b.tail(start)
    uw = u[len(b) - len(win):]
    latest = float(win.values[-1])
    reach = (h - win.steps[0]) / max(last - win.steps[0], 1e-12)
    if len(win) >= MIN_POINTS and reach > MAX_REACH:
        return _no(run, metric, h, f"too early: the horizon is {reach:.0f}x the steps fitted (at most {MAX_REACH:g}x)",
                   higher_is_better, target, last, latest)
    if len(win) < MIN_POINTS:
        return _no(run, metric, h, f"changed course at step {win.steps[0]:g} (a learning-rate change?): "
                   f"{len(win)} points since, {MIN_POINTS} needed", higher_is_better, target, last, latest)
    reason = _window_reason(uw, noise, tiny)
    if reason:
        return _no(run, metric, h, reason, higher_is_better, target, last, latest)
    # the level now: the median of the raw points of the window's last 5% of blocks (at most
    # LEVEL_POINTS of them), not of their block medians, which are biased towards the mean of
    # right-skewed mini-batch losses when blocks hold few points
    k_end = max(3, len(win) // 20)
    recent = values[max(int(np.searchsorted(steps, win.steps[-k_end])), len(values) - LEVEL_POINTS):]
    now = float(scale.to_u(float(np.median(recent[np.isfinite(recent)]))))
    try:
        return _ensemble(win, uw, noise, now, k_end, h, target, scale, floor, families, run, metric, last, latest,
                         calibration, float(steps[0]), _max_fall(win, uw, u, now, h))
    except ImportError:
        return _no(run, metric, h, "needs SciPy (pip install 'lossviz-widget[forecast]')", higher_is_better,
                   target, last, latest)


def _max_fall(win: Blocks, uw: np.ndarray, u: np.ndarray, now: float, h: float) -> float:
    """How far below the level now the band's optimistic edge may reach by the horizon (on the
    fitted scale): the fall seen so far (the observed range), or three times the fall of the
    window's recent slope per log step carried on to the horizon, whichever is larger.

    A power law falls as far per log step at its end as the tangent says and a saturating curve
    less, so the bound leaves the outcomes a curve's own course allows and removes the absurd
    tails of a loosely pinned early fit (a 10% cut once printed ``4e-33`` on a loss near 0.1).
    On the corpus's development seeds (``benchmarks/FORECAST.md``) 12 of 177 outcomes fell
    further, 9 of them runs whose learning rate was too low and whose fall sped up later; the
    bound then cost a few percent of coverage, where a linear tangent allowed e^-11 at 10% for
    2 fewer."""
    k = max(3, len(win) // 4)
    origin = float(win.steps[0]) - max(float(np.median(np.diff(win.steps))), 1e-12)
    drop = float(np.median(uw[-2 * k:-k]) - np.median(uw[-k:]))
    logs = math.log((float(np.median(win.steps[-k:])) - origin) / (float(np.median(win.steps[-2 * k:-k])) - origin))
    ahead = math.log((h - origin) / (float(win.steps[-1]) - origin))
    tangent = max(drop, 0.0) / logs * ahead if logs > 0 else 0.0
    return max(float(u.max()) - now, 3.0 * tangent, 0.0)


def _window_start(b: Blocks, u: np.ndarray, noise: float, tiny: float,
                  lr: tuple[np.ndarray, np.ndarray] | None) -> int:
    """The first block fitted: after the curve's last abrupt drop, or after the logged learning
    rate's last step drop where the blocks since show a trend to fit (MIN_POINTS or more, not flat
    or rising): where they do not, the drop moved the curve too little to restart it (a tenfold
    step often moves a mini-batch loss by less than its noise: ``benchmarks/FORECAST.md``), and the
    curve before it still says where it is going."""
    start = last_change(u, noise)
    if lr is None:
        return start
    dropped = lr_drop(np.asarray(lr[0], dtype=np.float64), np.asarray(lr[1], dtype=np.float64))
    at = int(np.searchsorted(b.steps, dropped)) if math.isfinite(dropped) else 0
    if at <= start or len(b) - at < MIN_POINTS:
        return start
    return start if _window_reason(u[at:], noise, tiny) else at


def _ensemble(win: Blocks, u: np.ndarray, noise: float, end_level: float, k_end: int, h: float,
              target: float | None, scale: _Scale, floor: float, families: Sequence[Family], run: str,
              metric: str, last: float, latest: float, calibration: Calibration, first: float,
              fall: float) -> Prediction:
    """The fits, weights and mixture of :func:`forecast` (see the module docstring), on the scale ``u``."""
    t0 = float(win.steps[0])
    gap = float(np.median(np.diff(win.steps))) if len(win) > 1 else 1.0
    origin = t0 - max(gap, 1e-12)
    span = float(win.steps[-1]) - origin

    def to_x(t: np.ndarray) -> np.ndarray:
        return (np.asarray(t, dtype=np.float64) - origin) / span

    x, y = to_x(win.steps), scale.sign * win.values  # y falls (a loss, or minus an accuracy)
    level_sd = max(noise, 1e-12) / math.sqrt(k_end)
    x_end = float(x[-1])
    cuts = [max(MIN_POINTS // 2 + 2, int(share * len(x))) for share in BACKTEST_SHARES]
    fits: list[tuple[Fit, float, float]] = []  # the fit, its backtest error, that error per unit of log x
    for family in families:
        if family.zero_floor and floor != 0.0:  # falls towards 0: not a shape of a metric that may go below
            continue
        full = fit(family, x, y, noise, floor, scale.log)
        if full is None:
            continue
        errs, rates = [], []
        for n in cuts:
            back = fit(family, x[:n], y[:n], noise, floor, scale.log, start=full.params)
            if back is None:
                errs.append(float(np.ptp(u)))
                rates.append(errs[-1] / math.log(x_end / x[n - 1]))
                continue
            start_level = float(np.median(u[max(0, n - k_end):n]))  # anchored, as the forecast is
            change = float(back(np.array([x_end]))[0] - back(np.array([x[n - 1]]))[0])
            errs.append(abs(start_level + change - end_level))
            rates.append(errs[-1] / math.log(x_end / x[n - 1]))
        fits.append((full, math.sqrt(float(np.mean(np.square(errs)))), math.sqrt(float(np.mean(np.square(rates))))))
    maximize = scale.sign < 0
    if not fits:
        return _no(run, metric, h, "no model fits the curve", maximize, target, last, latest)
    w = np.array([calibration.weight(f.family.name) / (err * err + level_sd * level_sd) for f, err, _ in fits])
    w /= w.sum()
    grid = np.unique(np.concatenate([np.geomspace(max(last - origin, 1e-12), h - origin, BAND_POINTS) + origin,
                                     [last, h]]))
    xg = to_x(grid)
    reach = np.log(np.maximum(xg, x_end) / x_end)  # how far past the data, in log steps
    mu = np.array([f(xg) for f, _, _ in fits])
    mu += end_level - mu[:, :1]  # anchored: the level now is measured, the models say how it changes
    # the anchor's own noise, the parameters' and the extrapolation's
    sd = np.array([np.sqrt(level_sd**2 + f.sd(xg) ** 2 + (rate * reach) ** 2) for f, _, rate in fits])
    log_noise = noise if scale.log else math.nan  # the bins are of the noise of a log loss
    sd = sd * calibration.at((last - first) / np.maximum(grid - first, 1e-12), log_noise)  # learnt on real curves
    # the worse edge stops at the window's worst level: a falling curve (a rising one gets no
    # forecast) that would end above where it started is no forecast but the band's tail; the
    # optimistic edge falls at most as far again as the curve has fallen so far
    u_q = [np.clip(q, end_level - fall, float(u.max()))
           for q in mixture_quantiles(w, mu, sd, (0.1, 0.5, 0.9))]
    qs = [scale.to_y(q) for q in u_q]
    lo, mid, hi = (np.maximum(q, floor) for q in (qs[::-1] if maximize else qs))  # quantiles of max(Y, floor)
    eta_step, eta_early, eta_late, reached, eta_s = math.nan, math.nan, math.nan, False, math.nan
    if target is not None:
        goal = float(scale.to_u(target))
        if end_level <= goal:
            reached = True
        else:
            eta_early, eta_step, eta_late = (_first(grid, q <= goal) for q in u_q)
            eta_s = _pace(win) * ((eta_early if math.isnan(eta_step) else eta_step) - last)
    names = ", ".join(f"{f.family.label} {wi:.0%}" for (f, _, _), wi in sorted(zip(fits, w), key=lambda p: -p[1])
                      if wi >= 0.05)  # the families that matter: their weights add up to at least 85%
    return Prediction(
        run, metric, h, final=float(mid[-1]), low=float(lo[-1]), high=float(hi[-1]), model=names,
        weights={f.family.name: float(wi) for (f, _, _), wi in zip(fits, w)}, last_step=last, latest=latest,
        fitted_from=t0, target=target, eta_step=eta_step, eta_seconds=eta_s, eta_early=eta_early,
        eta_late=eta_late, reached=reached,
        higher_is_better=maximize, band_x=grid, band_lo=lo, band_mid=mid, band_hi=hi,
        mixture=tuple((float(wi), float(m[-1]), float(s_[-1])) for wi, m, s_ in zip(w, mu, sd)),
        log_scale=scale.log, noise=log_noise,
    )


def _first(grid: np.ndarray, hit: np.ndarray) -> float:
    """The first step of ``grid`` where ``hit`` (NaN: nowhere)."""
    at = np.nonzero(hit)[0]
    return float(grid[at[0]]) if len(at) else math.nan


def _pace(win: Blocks) -> float:
    """Seconds per step over the window's last quarter (NaN without wall times)."""
    k = max(2, len(win) // 4)
    dt = float(win.wall[-1] - win.wall[-k])
    ds = float(win.steps[-1] - win.steps[-k])
    return dt / ds if ds > 0 and math.isfinite(dt) and dt > 0 else math.nan
