"""Parametric learning-curve families and their robust least-squares fits.

Each family is a decreasing, saturating curve ``f(x) -> c`` of the (normalised) step ``x > 0``,
from Domhan, Springenberg & Hutter (IJCAI 2015)'s set of eleven:

* ``pow3`` -- the saturating power law ``c + a * x**-alpha`` (the scaling-law form, Kaplan et al.
  2020): a slow, heavy tail;
* ``exp3`` -- exponential decay ``c + a * exp(-b * x)``: the fastest tail;
* ``weibull`` -- the stretched exponential ``c + a * exp(-(k * x)**delta)`` (Domhan et al.'s
  Weibull/Janoschek form, mirrored to fall): between the two, ``delta = 1`` is ``exp3``;
* ``pow4`` -- the shifted power law ``c + a * (x + b)**-alpha`` (Domhan et al.'s ``pow4``): a
  power-law tail after a flatter start, as a loss has before its first fast fall;
* ``logpower`` -- Domhan et al.'s *log power* ``a / (1 + (x / e**b)**c)``, mirrored to fall: flat
  before the knee ``e**b``, then a power law with no asymptote above 0, a straight line in log-log
  that keeps falling. The other families saturate, and fitted to the first quarter of a run their
  asymptote sits too high: on the corpus the median forecast ended above the truth for 76-88% of
  the curves, which fell on 2-3x as far as forecast (``benchmarks/FORECAST.md``). Only for a
  metric that is never negative (a loss: its floor is 0), where "falls on towards 0" is a shape
  the curve can take; the backtests weigh it against the saturating families.

Curves that rise (accuracies) are fitted on their negation by the caller. Fits are
``scipy.optimize.least_squares`` with the ``soft_l1`` loss (residuals beyond ``f_scale``, the
curve's noise level, count linearly, so a spike that survived the block medians pulls little),
inside bounds that keep every family decreasing and saturating. The starting points come from
linearising the curve for a few trial asymptotes ``c`` (``log(y - c)`` is linear in ``log x``
for the power laws and in ``x`` for the exponentials), which finds the basin without a
multi-start search.

SciPy is imported inside :func:`fit` only (it is an optional dependency: the ``forecast`` extra).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["FAMILIES", "Family", "Fit", "fit"]

Curve = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _pow3(x: np.ndarray, p: np.ndarray) -> np.ndarray:
    c, a, alpha = p
    return np.asarray(c + a * x ** (-alpha))


def _pow4(x: np.ndarray, p: np.ndarray) -> np.ndarray:
    c, a, alpha, b = p
    return np.asarray(c + a * (x + b) ** (-alpha))


def _exp3(x: np.ndarray, p: np.ndarray) -> np.ndarray:
    c, a, b = p
    return np.asarray(c + a * np.exp(-b * x))


def _logpower(x: np.ndarray, p: np.ndarray) -> np.ndarray:
    a, b, c = p
    return np.asarray(a * np.exp(-np.logaddexp(0.0, c * (np.log(x) - b))))  # a / (1 + (x/e^b)^c), no overflow


def _weibull(x: np.ndarray, p: np.ndarray) -> np.ndarray:
    c, a, k, delta = p
    return np.asarray(c + a * np.exp(-((k * x) ** delta)))


@dataclass(frozen=True)
class Family:
    """One learning-curve family: its formula, parameter names and what users read."""

    name: str
    label: str  # shown in the readout: "power law"
    formula: str
    params: tuple[str, ...]
    curve: Curve
    zero_floor: bool = False  # its asymptote is 0: fitted only to a metric that is never negative


FAMILIES: tuple[Family, ...] = (
    Family("pow3", "power law", "c + a·x^−α", ("c", "a", "alpha"), _pow3),
    Family("exp3", "exponential", "c + a·e^(−b·x)", ("c", "a", "b"), _exp3),
    Family("weibull", "stretched exponential", "c + a·e^(−(k·x)^δ)", ("c", "a", "k", "delta"), _weibull),
    Family("pow4", "shifted power law", "c + a·(x + b)^−α", ("c", "a", "alpha", "b"), _pow4),
    Family("logpower", "log power", "a / (1 + (x/e^b)^c)", ("a", "b", "c"), _logpower, zero_floor=True),
)


def _on_scale(family: Family, x: np.ndarray, p: np.ndarray, log: bool) -> np.ndarray:
    """The family's curve, or its logarithm with ``log``."""
    y = family.curve(x, p)
    return np.log(np.maximum(y, 1e-300)) if log else y


@dataclass(frozen=True)
class Fit:
    """A family fitted to points: its parameters and the Laplace covariance of them.

    With ``log`` the fit was made on the logarithm of the values, and :meth:`__call__`,
    :meth:`gradient` and :meth:`sd` are of the curve's logarithm.
    """

    family: Family
    params: np.ndarray
    cov: np.ndarray  # parameter covariance (noise variance x inflation x (J^T J)^-1)
    rms: float  # robust spread of the residuals
    log: bool = False

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return _on_scale(self.family, np.asarray(x, dtype=np.float64), self.params, self.log)

    def gradient(self, x: np.ndarray) -> np.ndarray:
        """d f(x) / d params, one row per x (central differences: cheap at a handful of params)."""
        x = np.asarray(x, dtype=np.float64)
        rows = np.empty((len(x), len(self.params)))
        for i, p in enumerate(self.params):
            h = 1e-6 * max(abs(p), 1e-3)
            up, down = self.params.copy(), self.params.copy()
            up[i] += h
            down[i] -= h
            rows[:, i] = (_on_scale(self.family, x, up, self.log) - _on_scale(self.family, x, down, self.log)) / (2 * h)
        return rows

    def sd(self, x: np.ndarray) -> np.ndarray:
        """Standard deviation of f(x) from the parameters' uncertainty (the delta method)."""
        g = self.gradient(x)
        var = np.einsum("ij,jk,ik->i", g, self.cov, g)
        return np.sqrt(np.maximum(var, 0.0))


def _linear_start(x: np.ndarray, y: np.ndarray, transform: Callable[[np.ndarray], np.ndarray],
                  span: float, floor: float) -> tuple[float, float, float]:
    """``(c, log a, slope)`` of the best line through ``log(y - c)`` vs ``transform(x)`` over a few
    trial asymptotes ``c`` below the data (and not below ``floor``)."""
    best = (np.inf, max(float(y.min()) - span, floor), 0.0, 1.0)
    tx = transform(x)
    for q in (0.02, 0.1, 0.3, 1.0, 3.0):
        c = max(float(y.min()) - q * span, floor)
        if c >= float(y.min()):
            continue
        ly = np.log(y - c)
        slope, icept = np.polyfit(tx, ly, 1)
        err = float(np.sum((np.exp(icept + slope * tx) + c - y) ** 2))
        if err < best[0]:
            best = (err, c, float(icept), float(slope))
    return best[1], best[2], best[3]


def _start(family: Family, x: np.ndarray, y: np.ndarray, span: float, floor: float) -> np.ndarray:
    if family.name == "logpower":  # the line through log y vs log x, its knee a step before the data
        slope, _ = np.polyfit(np.log(x), np.log(np.maximum(y, 1e-300)), 1)
        c, b = float(np.clip(-slope, 0.05, 4.0)), float(np.log(x[0])) - 1.0
        mid = len(x) // 2
        return np.array([float(y[mid]) * (1.0 + (float(x[mid]) * np.exp(-b)) ** c), b, c])
    if family.name in ("pow3", "pow4"):
        c, la, slope = _linear_start(x, y, np.log, span, floor)
        start = [c, np.exp(la), float(np.clip(-slope, 0.05, 4.0))]
        return np.array(start if family.name == "pow3" else [*start, 0.01])
    c, la, slope = _linear_start(x, y, lambda v: v, span, floor)
    b = float(np.clip(-slope, 0.05, 50.0))
    if family.name == "exp3":
        return np.array([c, np.exp(la), b])
    return np.array([c, np.exp(la), b, 1.0])


def _bounds(family: Family, x: np.ndarray, y: np.ndarray, span: float, floor: float) -> tuple[np.ndarray, np.ndarray]:
    """Keep the curve falling and saturating, and its asymptote within reach of the data and above ``floor``."""
    c_lo, c_hi = max(float(y.min()) - 10 * span, floor), float(y.max())
    big = 1e3 * span + 1e-12
    if family.name == "pow3":
        return np.array([c_lo, 0.0, 0.01]), np.array([c_hi, big, 5.0])
    if family.name == "pow4":
        return np.array([c_lo, 0.0, 0.01, 0.0]), np.array([c_hi, big, 5.0, 10.0])
    if family.name == "exp3":
        return np.array([c_lo, 0.0, 1e-3]), np.array([c_hi, big, 200.0])
    if family.name == "logpower":  # the knee from e^-2 before the first point to the last (x = 1)
        lead = float(np.log(x[0])) - 2.0
        return np.array([0.0, lead, 0.01]), np.array([1e4 * float(np.abs(y).max()) + 1e-12, 0.0, 5.0])
    return np.array([c_lo, 0.0, 1e-3, 0.1]), np.array([c_hi, big, 200.0, 3.0])


def _robust_sd(r: np.ndarray) -> float:
    return float(1.4826 * np.median(np.abs(r - np.median(r))))


def fit(family: Family, x: np.ndarray, y: np.ndarray, noise: float, floor: float = -np.inf,
        log: bool = False, start: np.ndarray | None = None) -> Fit | None:
    """Fit ``family`` to ``(x, y)`` (x > 0, y falling); None when the optimiser fails.

    ``floor`` bounds the asymptote from below (0 for a loss that has never been negative).
    ``start``: the parameters to start from (say, a fit of the same family to more of the
    points), else found by linearising.
    With ``log`` (positive ``y`` and ``floor`` 0) the residuals are of ``log y``: a loss falling
    over decades is fitted as closely at its end as at its start, and the right-skewed noise of
    mini-batch losses becomes about symmetric.

    ``noise`` is the spread of ``y`` (of ``log y`` with ``log``) around a smooth curve (the soft-L1
    scale, and the floor of the residual spread). The covariance is the Laplace approximation
    ``s^2 * infl * (J^T J)^-1`` with ``s`` the residuals' robust spread and
    ``infl = (1 + rho) / (1 - rho)`` for their lag-1 autocorrelation ``rho``: neighbouring block
    medians of a training curve wander together, so ``n`` residuals hold fewer than ``n``
    independent pieces of evidence.
    """
    from scipy.optimize import least_squares  # optional dependency, imported when a forecast runs

    span = float(np.ptp(y)) or max(abs(float(y.mean())), 1e-12)
    lo, hi = _bounds(family, x, y, span, floor)
    p0 = np.clip(_start(family, x, y, span, floor) if start is None else start, lo + 1e-12, hi - 1e-12)
    scale = max(noise, 1e-9)
    u = np.log(y) if log else y
    try:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # a trial step that overflows is rejected
            res = least_squares(lambda p: _on_scale(family, x, p, log) - u, p0, bounds=(lo, hi), loss="soft_l1",
                                f_scale=scale, x_scale="jac", max_nfev=100 * len(p0), ftol=1e-6, xtol=1e-6)
    except (ValueError, FloatingPointError):
        return None
    if not np.all(np.isfinite(res.x)):
        return None
    resid = _on_scale(family, x, res.x, log) - u
    s = max(_robust_sd(resid), noise, 1e-12)
    rho = float(np.clip(np.corrcoef(resid[:-1], resid[1:])[0, 1], 0.0, 0.9)) if len(resid) > 3 and np.std(resid) > 0 \
        else 0.0
    params = np.asarray(res.x, dtype=np.float64)
    # the plain model Jacobian (least_squares' own is of the soft-L1 scaled residuals)
    jac = Fit(family, params, np.zeros((len(params), len(params))), s, log).gradient(x)
    cov = s * s * (1 + rho) / (1 - rho) * np.linalg.pinv(jac.T @ jac)
    return Fit(family, params, cov, s, log)
