"""Learn the forecasts' calibration on the learning set: ``lossviz_widget/forecast/calibration.py``.

``python benchmarks/forecast/calibrate.py`` forecasts every loss series of the learning set --
the diagnostics corpus's development seeds (0-3) and the long runs' first four seeds
(``make_long.py``; never the corpus's held-out seeds or the long runs' fifth and sixth seeds,
which ``evaluate.py`` then scores as held out) -- from the first 10%, 25% and 50% of its steps
*uncalibrated*, and learns from those forecasts' mixtures at the horizon (reweighting a mixture
needs no refit). The long runs' first seeds joined the learning set after the calibration learnt
on the corpus alone was too wide on all of them (nothing in the corpus is long and smooth); their
second to fourth seeds joined once, held out, they showed it still too wide from half a run
(``FORECAST.md``).

1. ``PRIOR`` -- the log-power family's prior weight (:data:`PRIORS`), the one whose ensemble
   medians had the least median relative error summed over the cuts (the median of the mixture
   before the band's bounds, which move few medians). The family falls on where the saturating
   ones stop; its backtests cannot tell it from them early in a run, and at full weight its
   medians overshot the development curves' falls at the 10% cut (``FORECAST.md``).
2. ``SCALE`` and ``NOISE_FACTOR`` -- split-conformal: each forecast's *score* is the least factor
   on every family's spread that puts the truth inside its 80% interval (on the scale the
   forecast fits: the logarithm of a positive loss). The curves are binned by their noise level
   (``BINS`` quantile bins of the learning set's, ``NOISE_EDGES``); alternately, each cut's ``SCALE`` is
   the ⌈0.8 (n + 1)⌉-th smallest of its scores over their bins' factors, and each bin's factor
   the same order statistic of its scores over their cuts' scales, until both settle (each share
   and each noise bin then covers 80% of its learning curves; the last pass is the shares').
3. How many noise bins: :data:`BINS` unless another of :data:`BIN_CHOICES` brings the
   out-of-fold coverage (:func:`cross_check`: four folds, each a quarter of the corpus seeds and
   two of the long builds with all their seeds, :func:`fold`) nearer 80% over the cells cut x
   noise tertile by more than :data:`MARGIN`, on the learning set only (those cells hold 5-60
   curves: a smaller difference is noise). It also prints the out-of-fold coverage of the long
   runs and of the corpus apart, per cut: the check of whether those cells are too coarse for
   long smooth runs (a separate cell for them is warranted only if it misses there).

   With the long runs' first four seeds in the learning set, five bins won (mean distance from
   80% 4.6% against 6.8% for three, 5.6% for one), and out of fold (folds across the builds) the
   five-bin table covered the long runs 28 of 32 (88%), 53 of 64 (83%) and 54 of 64 (84%) from
   10%, 25% and 50%, and the corpus's 21 of 27, 35 of 45, 43 of 59 (78%, 78%, 73%): inside
   70-90% for the long runs at every cut, so no cell or feature for long, quiet runs seen past
   half was added (the table by share and noise already fits them once they are learnt on).

Chosen on the corpus's development seeds alone, before the long runs joined (commit 96a382f):
the noise level is the one feature known live whose Spearman correlation with the scores kept
its sign at every cut (-0.20, -0.16, -0.20 at 10%, 25%, 50%; points per block -0.22, +0.09,
-0.03; noise over the window's fall -0.20, -0.02, 0.00): weak, and its bins' factors show no
trend, so it mostly evens the coverage across noise levels. Learning every family's prior at
once (a grid, least mean log error) was also tried: in a leave-one-seed-out check on the
development seeds it beat equal priors in 1 fold of 4, so only the log power's is learnt.

The median is not moved by a learnt shift: a shift by the forecasts' median bias on the
development seeds made their median errors worse at every cut (27% -> 36%, 18% -> 21%, 9% -> 13%),
and a single dev-learnt scaling of the predicted fall made the held-out errors much worse (the
error distribution is skewed); the log-power family moves the median instead.

Rows of runs with an event injected after the cut (``evaluate.changes_after``) are left out: no
interval of a curve's past covers a learning rate raised a thousandfold later, and widening every
interval for them would make the interval useless for every other run (``FORECAST.md`` reports
them apart). Takes ~1.5 min on 2 shared cores; then run ``evaluate.py``.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import evaluate  # noqa: E402  (the corpus, its cuts and its scoring)
import make_long  # noqa: E402  (the long runs' builds)

from lossviz_widget.forecast.ensemble import UNCALIBRATED, mixture_quantiles  # noqa: E402

OUT = evaluate.REPO / "lossviz_widget" / "forecast" / "calibration.py"
FACTORS = np.geomspace(0.05, 50.0, 600)  # the scale factors tried for each score
FAMILY = "logpower"  # the family whose prior weight is learnt
PRIORS = (0.0, 0.25, 0.5, 1.0, 2.0)  # the prior weights tried
ROUNDS = 4  # alternations of the shares' and the noise bins' factors
BINS = 3  # noise bins (tertiles) unless another number is clearly better out of fold
BIN_CHOICES = (1, 2, 3, 4, 5)  # the numbers of noise bins cross-checked
MARGIN = 0.01  # how much nearer 80% (mean over the cells) another number must bring the coverage
LEARN_SPLITS = ("dev", "long dev")  # evaluate.load's splits the calibration is learnt on


def _u(row: dict[str, Any]) -> float:
    """The truth on the scale the forecast fitted."""
    if row["log_scale"]:
        return math.log(row["truth"]) if row["truth"] > 0 else -math.inf
    return -row["truth"] if row["maximize"] else row["truth"]


def _mixture(row: dict[str, Any], prior: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The forecast's mixture at the horizon ``(weights, means, sds)``, :data:`FAMILY`'s weight
    multiplied by ``prior`` (left as it is where that leaves no weight)."""
    w, mu, sd = (np.array([m[i] for m in row["mixture"]]) for i in range(3))
    moved = w * np.array([prior if name == FAMILY else 1.0 for name in row.get("families", ())] or 1.0)
    w = moved if moved.sum() > 0 else w
    return w / w.sum(), mu, sd


def needed(row: dict[str, Any], prior: float = 1.0) -> float:
    """The least factor on every family's spread that puts the truth inside the 80% interval."""
    w, mu, sd = _mixture(row, prior)
    lo, hi = mixture_quantiles(w, np.repeat(mu[:, None], len(FACTORS), axis=1), sd[:, None] * FACTORS[None, :],
                               (0.1, 0.9))
    inside = np.nonzero((lo <= _u(row)) & (_u(row) <= hi))[0]
    return float(FACTORS[inside[0]]) if len(inside) else math.inf


def conformal(scores: list[float]) -> float:
    """The ⌈0.8 (n + 1)⌉-th smallest score: the factor that covers 80% of these curves (and,
    exchangeably, of new ones); 1 for no curves."""
    if not scores:
        return 1.0
    s = sorted(scores)
    return s[min(math.ceil(0.8 * (len(s) + 1)), len(s)) - 1]


def learn(rows: list[dict[str, Any]], prior: float = 1.0) -> float:
    """The factor that covers 80% of these uncalibrated forecasts (see the module docstring)."""
    return conformal([needed(r, prior) for r in rows])


def median_error(rows: list[dict[str, Any]], prior: float) -> float:
    """Median relative error of the mixtures' medians at the horizon, with ``prior``."""
    errs = []
    for r in rows:
        w, mu, sd = _mixture(r, prior)
        mid = float(mixture_quantiles(w, mu[:, None], sd[:, None], (0.5,))[0][0])
        value = math.exp(mid) if r["log_scale"] else (-mid if r["maximize"] else mid)
        errs.append(abs(value - r["truth"]) / abs(r["truth"]))
    return float(np.median(errs))


def learn_table(rows: list[dict[str, Any]], prior: float,
                bins: int = 3) -> tuple[list[float], list[float], list[float]]:
    """``SCALE`` per cut, ``NOISE_EDGES`` (``bins`` quantile bins) and ``NOISE_FACTOR`` (see the
    module docstring)."""
    scores = [needed(r, prior) for r in rows]
    noise = np.array([r["noise"] for r in rows], dtype=np.float64)
    edges = [float(e) for e in np.quantile(noise[np.isfinite(noise)], np.arange(1, bins) / bins)]
    bins = [int(np.searchsorted(edges, n)) if math.isfinite(n) else -1 for n in noise]
    factor, scale = [1.0] * (len(edges) + 1), {cut: 1.0 for cut in evaluate.CUTS}

    def by_noise(i: int) -> float:
        return factor[bins[i]] if bins[i] >= 0 else 1.0

    for last in range(ROUNDS + 1):
        scale = {cut: conformal([s / by_noise(i) for i, (s, r) in enumerate(zip(scores, rows)) if r["cut"] == cut])
                 for cut in evaluate.CUTS}
        if last == ROUNDS:
            break
        factor = [conformal([s / scale[rows[i]["cut"]] for i, s in enumerate(scores) if bins[i] == b])
                  for b in range(len(factor))]
    return [scale[cut] for cut in evaluate.CUTS], edges, factor


def covers(row: dict[str, Any], prior: float, scales: list[float], edges: list[float], factor: list[float]) -> bool:
    """Whether a learnt table's interval (at the row's cut, in its noise bin) holds the truth."""
    k = factor[int(np.searchsorted(edges, row["noise"]))] if math.isfinite(row["noise"]) else 1.0
    return needed(row, prior) <= scales[evaluate.CUTS.index(row["cut"])] * k


LONG_BUILDS = sorted({make_long.build_of(s.id) for s in make_long.specs()})


def fold(run: str, seed: int) -> int:
    """The cross-check's fold of a run: a long run's build's place among the long builds modulo 4
    (every seed of a build in one fold, so the check is across builds), a corpus run's seed modulo
    4 (a quarter of the development seeds each)."""
    build = make_long.build_of(run)
    return LONG_BUILDS.index(build) % 4 if build in LONG_BUILDS else seed % 4


def out_of_fold(rows: list[dict[str, Any]], prior: float, bins: int) -> list[bool]:
    """Whether each row's interval holds its truth, with the table learnt (``bins`` noise bins) on
    the other three folds (the rows' ``fold``)."""
    covered = [False] * len(rows)
    for f in range(4):
        learnt = learn_table([r for r in rows if r["fold"] != f], prior, bins)
        for i, r in enumerate(rows):
            if r["fold"] == f:
                covered[i] = covers(r, prior, *learnt)
    return covered


def cross_check(rows: list[dict[str, Any]], prior: float) -> dict[int, float]:
    """Per number of noise bins (:data:`BIN_CHOICES`), the mean distance from 80% of the
    out-of-fold coverage over the cells cut x noise tertile (:func:`out_of_fold`)."""
    noise = np.array([r["noise"] for r in rows], dtype=np.float64)
    tertiles = np.quantile(noise[np.isfinite(noise)], (1 / 3, 2 / 3))
    out = {}
    for bins in BIN_CHOICES:
        hits: dict[tuple[float, int], list[bool]] = {}
        for r, ok in zip(rows, out_of_fold(rows, prior, bins)):
            if math.isfinite(r["noise"]):
                hits.setdefault((r["cut"], int(np.searchsorted(tertiles, r["noise"]))), []).append(ok)
        out[bins] = float(np.mean([abs(float(np.mean(h)) - 0.8) for h in hits.values()]))
        print(f"{bins} noise bins: out-of-fold coverage per cut x noise tertile "
              + ", ".join(f"{cut:.0%}/{b}: {np.mean(h):.0%} ({len(h)})" for (cut, b), h in sorted(hits.items()))
              + f"; mean distance from 80% {out[bins]:.1%}")
    return out


def by_group(rows: list[dict[str, Any]], covered: list[bool]) -> str:
    """Out-of-fold coverage per cut of the long runs and of the corpus apart, with each cell's
    count and 95% Wilson interval: whether the cells are too coarse for long smooth runs."""
    cells = []
    for group in ("long", "corpus"):
        for cut in evaluate.CUTS:
            hits = [ok for r, ok in zip(rows, covered) if r["cut"] == cut and r["split"].startswith("long")
                    == (group == "long")]
            lo, hi = evaluate.wilson(sum(hits), len(hits))
            cells.append(f"{group} {cut:.0%}: {sum(hits)} of {len(hits)} ({lo:.0%}-{hi:.0%})")
    return "out-of-fold coverage: " + ", ".join(cells)


def main() -> None:
    series = [s for s in evaluate.load() if s["split"] in LEARN_SPLITS]
    seed = {s["run"]: int(s["build"]["seed"]) for s in series}
    rows = [{**r, "fold": fold(r["run"], seed[r["run"]])} for r in evaluate.score(series, calibration=UNCALIBRATED)
            if r["ok"] and math.isfinite(r["truth"]) and not r["changes"]]
    errors = {prior: sum(median_error([r for r in rows if r["cut"] == cut], prior) for cut in evaluate.CUTS)
              for prior in PRIORS}
    prior = min(PRIORS, key=lambda p: errors[p])
    for p, e in errors.items():
        print(f"{FAMILY} prior {p}: median errors summed over the cuts {e:.1%}")
    distance = cross_check(rows, prior)
    best = min(BIN_CHOICES, key=lambda b: distance[b])
    bins = best if distance[best] < distance[BINS] - MARGIN else BINS
    print(f"{bins} noise bins, " + by_group(rows, out_of_fold(rows, prior, bins)))
    scales, edges, factor = learn_table(rows, prior, bins)
    counts = [sum(r["cut"] == cut for r in rows) for cut in evaluate.CUTS]
    text = OUT.read_text()
    head = text[: text.index("PRIOR: ")]
    OUT.write_text(head + f'PRIOR: dict[str, float] = {{"{FAMILY}": {prior!r}}}\n'
                   f"SHARES: tuple[float, ...] = {tuple(evaluate.CUTS)!r}\n"
                   f"SCALE: tuple[float, ...] = {tuple(round(s, 3) for s in scales)!r}\n"
                   f"NOISE_EDGES: tuple[float, ...] = {tuple(round(e, 4) for e in edges)!r}\n"
                   f"NOISE_FACTOR: tuple[float, ...] = {tuple(round(f, 3) for f in factor)!r}\n"
                   f"DEV_ROWS: tuple[int, ...] = {tuple(counts)!r}  # learning-set forecasts each share's numbers "
                   "were learnt on\n")
    print(OUT.read_text())


if __name__ == "__main__":
    main()
