"""Learning-curve forecasts (:mod:`lossviz_widget.forecast`): the fits recover known curves, the
forecaster says "no forecast" where it should, its 80% intervals cover real training curves (a
fixed fast subset of the diagnostics corpus), and ``LossPlot(forecast=True)`` / ``Recorder`` show
and return them (bands, readout, runs table, images, reports)."""

from __future__ import annotations

import math
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from waiting import wait_until

from lossviz_widget import LossPlot, Recorder
from lossviz_widget._core.settings import ViewSettings
from lossviz_widget._model import MetricHistory
from lossviz_widget.forecast import FAMILIES, forecast
from lossviz_widget.forecast import calibration as learnt
from lossviz_widget.forecast.curve import lr_drop
from lossviz_widget.forecast.ensemble import CALIBRATED, UNCALIBRATED, Calibration
from lossviz_widget.forecast.live import REFIT_SHARE, REFITS_PER_SECOND, ForecastTracker
from lossviz_widget.forecast.models import fit

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks" / "forecast"))
import calibrate  # noqa: E402  (benchmarks/forecast/calibrate.py: how the calibration is learnt)
import evaluate  # noqa: E402  (benchmarks/forecast/evaluate.py: the corpus and its scoring)

FAMILY = {f.name: f for f in FAMILIES}
STEPS = np.arange(1, 3001, dtype=np.float64)


def power_law(t: np.ndarray, c: float = 0.4, a: float = 3.0, alpha: float = 0.5) -> np.ndarray:
    return c + a * t ** (-alpha)


# -- the models recover known curves ---------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_power_law_parameters_recovered_from_noisy_points(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = STEPS / STEPS[-1]
    y = 0.4 + 0.06 * x ** (-0.5) + rng.normal(0, 0.01, len(x))  # c=0.4, a=3*3000^-0.5, alpha=0.5
    fitted = fit(FAMILY["pow3"], x, y, noise=0.01)
    assert fitted is not None
    c, a, alpha = fitted.params
    assert c == pytest.approx(0.4, abs=0.01)
    assert alpha == pytest.approx(0.5, rel=0.1)
    assert a == pytest.approx(0.06, rel=0.15)
    sd = np.sqrt(np.diag(fitted.cov))  # the Laplace spread is honest about what the noise leaves open
    assert np.all(np.abs(fitted.params - [0.4, 0.06, 0.5]) < 4 * sd + 1e-3)


def test_exponential_parameters_recovered_from_noisy_points() -> None:
    rng = np.random.default_rng(3)
    x = STEPS / STEPS[-1]
    y = 0.2 + 1.5 * np.exp(-6.0 * x) + rng.normal(0, 0.005, len(x))
    fitted = fit(FAMILY["exp3"], x, y, noise=0.005)
    assert fitted is not None
    assert fitted.params == pytest.approx([0.2, 1.5, 6.0], rel=0.05)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_log_power_parameters_recovered_from_noisy_points(seed: int) -> None:
    """Domhan et al.'s log power ``a / (1 + (x/e^b)^c)``, fitted on the log of a loss with
    multiplicative noise as mini-batch losses have: flat at ``a`` before the knee ``e^b``, then a
    power law of slope ``-c`` in log-log with no asymptote above 0."""
    rng = np.random.default_rng(seed)
    x = STEPS / STEPS[-1]
    truth = np.array([2.0, -3.0, 0.7])
    y = FAMILY["logpower"].curve(x, truth) * np.exp(rng.normal(0, 0.02, len(x)))
    fitted = fit(FAMILY["logpower"], x, y, noise=0.02, floor=0.0, log=True)
    assert fitted is not None
    assert fitted.params == pytest.approx(truth, rel=0.1)
    sd = np.sqrt(np.diag(fitted.cov))
    assert np.all(np.abs(fitted.params - truth) < 4 * sd + 1e-3)


def test_log_power_weighs_in_only_where_a_loss_cannot_go_below_zero() -> None:
    """A loss that falls as a straight line in log-log (no floor in sight): the log-power family
    forecasts it further down than the saturating families, and its weight in the ensemble is
    its backtest weight times the prior calibrate.py learnt (0: out). A metric that goes below 0
    never gets the family (its asymptote is 0)."""
    rng = np.random.default_rng(21)
    values = 3.0 * STEPS ** -0.3 * np.exp(rng.normal(0, 0.03, len(STEPS)))
    falls_on = forecast(STEPS[:750], values[:750], horizon=3000.0, families=[FAMILY["logpower"]])
    saturating = forecast(STEPS[:750], values[:750], horizon=3000.0, calibration=UNCALIBRATED,
                          families=[f for f in FAMILIES if f.name != "logpower"])
    assert falls_on.ok and saturating.ok
    assert falls_on.final < saturating.final
    both = forecast(STEPS[:750], values[:750], horizon=3000.0, calibration=UNCALIBRATED)
    halved = forecast(STEPS[:750], values[:750], horizon=3000.0,
                      calibration=Calibration((), (), prior=(("logpower", 0.5),)))
    out = forecast(STEPS[:750], values[:750], horizon=3000.0,
                   calibration=Calibration((), (), prior=(("logpower", 0.0),)))
    w = both.weights["logpower"]
    assert 0 < w < 1 and halved.weights["logpower"] == pytest.approx(0.5 * w / (1 - 0.5 * w))
    assert out.weights["logpower"] == 0 and out.final == pytest.approx(saturating.final, rel=1e-6)
    assert CALIBRATED.weight("logpower") == learnt.PRIOR["logpower"] and CALIBRATED.weight("pow3") == 1.0
    shifted = forecast(STEPS[:750], values[:750] - 2.0, horizon=3000.0)  # goes below 0: no floor at 0
    assert shifted.ok and "logpower" not in shifted.weights


@pytest.mark.parametrize("cut", [300, 750, 1500])
def test_forecast_of_a_noisy_power_law_covers_the_truth(cut: int) -> None:
    """Five noisy copies of one power law: the 80% intervals cover the truth at least 3 times in
    5 (an 80% interval misses 1 time in 5), and the median is within 10% of it from a tenth of the
    run, within 5% from a quarter or more."""
    truth = power_law(np.array([3000.0]))[0]
    covered = 0
    for seed in range(5):
        rng = np.random.default_rng(seed)
        values = power_law(STEPS) * np.exp(rng.normal(0, 0.05, len(STEPS)))  # multiplicative noise, as minibatches
        p = forecast(STEPS[:cut], values[:cut], horizon=3000.0, metric="loss")
        assert p.ok, p.reason
        covered += p.low <= truth <= p.high
        assert abs(p.final - truth) / truth < (0.10 if cut == 300 else 0.05)
        assert p.band_x[0] == STEPS[cut - 1] and p.band_x[-1] == 3000.0
        assert np.all(p.band_lo <= p.band_mid) and np.all(p.band_mid <= p.band_hi)
        assert p.prob_below(p.high) == pytest.approx(0.9, abs=0.02)
    assert covered >= 3


def _r3(step: float) -> str:
    """A step as ETAs print it: 3 significant digits, thousands separated."""
    return f"{float(f'{step:.3g}'):,.0f}"


def test_eta_to_a_target_in_steps_and_wall_time() -> None:
    """The ETA is the median's crossing with the band's edges' crossings as its 80% range:
    "reaches T at step ~N (in ...) (80%: A–B)"; "may reach T by step ~N" when only the band's
    optimistic edge crosses by the horizon; "not expected to reach" when not even that does."""
    rng = np.random.default_rng(5)
    values = power_law(STEPS) * np.exp(rng.normal(0, 0.02, len(STEPS)))
    wall = 1000.0 + 0.5 * STEPS  # half a second a step
    target = float(power_law(np.array([2000.0]))[0])
    p = forecast(STEPS[:800], values[:800], wall[:800], horizon=3000.0, target=target)
    assert p.ok and not p.reached
    assert 1200 <= p.eta_step <= 3000  # the truth is 2000; a curve this flat makes the ETA sensitive
    assert p.eta_early <= p.eta_step and (math.isnan(p.eta_late) or p.eta_late >= p.eta_step)
    assert p.eta_seconds == pytest.approx(0.5 * (p.eta_step - 800), rel=0.05)
    late = _r3(p.eta_late) if math.isfinite(p.eta_late) else "beyond 3,000"
    assert f"reaches {target:.4g} at step ~{_r3(p.eta_step)} (in ~" in p.sentence()
    assert f"min) (80%: {_r3(p.eta_early)}–{late})" in p.sentence()
    # a target only the optimistic edge reaches: between the median and the low end at the horizon
    maybe_target = 0.5 * (p.final + p.low)
    maybe = forecast(STEPS[:800], values[:800], wall[:800], horizon=3000.0, target=maybe_target)
    assert math.isnan(maybe.eta_step) and maybe.eta_early < 3000
    assert f"may reach {maybe_target:.4g} by step ~{_r3(maybe.eta_early)} (in ~" in maybe.sentence()
    assert "the median does not by step 3,000" in maybe.sentence()
    assert maybe.eta_seconds == pytest.approx(0.5 * (maybe.eta_early - 800), rel=0.05)
    never = forecast(STEPS[:800], values[:800], wall[:800], horizon=3000.0, target=0.1)  # below the asymptote
    assert math.isnan(never.eta_step) and math.isnan(never.eta_early)
    assert "not expected to reach 0.1 by step 3,000" in never.sentence()
    done = forecast(STEPS[:800], values[:800], horizon=3000.0, target=5.0)
    assert done.reached and "already at 5" in done.sentence()


def test_the_calibration_is_interpolated_by_the_share_of_the_run_seen() -> None:
    """The spread factor calibrate.py learnt, per share seen; log-interpolated between shares,
    the first share's below it, 1 at the last step; UNCALIBRATED changes nothing."""
    table = Calibration((0.1, 0.5), (2.0, 1.5))
    scale = table.at(np.array([0.05, 0.1, math.sqrt(0.05), 0.5, 1.0]))
    assert scale == pytest.approx([2.0, 2.0, 1.75, 1.5, 1.0])
    assert UNCALIBRATED.at(np.array([0.1, 0.7])) == pytest.approx([1, 1])
    assert CALIBRATED.shares == learnt.SHARES == evaluate.CUTS  # learnt at the cuts FORECAST.md scores
    assert all(n >= 20 for n in learnt.DEV_ROWS) and all(0.3 < k < 5 for k in learnt.SCALE)
    assert len(learnt.NOISE_FACTOR) == len(learnt.NOISE_EDGES) + 1 and all(0.3 < k < 5 for k in learnt.NOISE_FACTOR)


def test_the_calibration_is_by_the_share_seen_and_the_curves_noise() -> None:
    """The noise bin's factor multiplies the share's (bins cut at the edges); no noise (a fit not
    on the log scale): the share's alone; 1 at the last step whatever the noise."""
    table = Calibration((0.25,), (2.0,), (0.1, 0.2), (0.5, 1.0, 1.5))
    share = np.array([0.25, 1.0])
    assert table.at(share, 0.05) == pytest.approx([1.0, 1.0])
    assert table.at(share, 0.15) == pytest.approx([2.0, 1.0])
    assert table.at(share, 0.3) == pytest.approx([3.0, 1.0])
    assert table.at(share) == pytest.approx([2.0, 1.0])
    rng = np.random.default_rng(13)
    values = power_law(STEPS) * np.exp(rng.normal(0, 0.05, len(STEPS)))
    p = forecast(STEPS[:750], values[:750], horizon=3000.0, calibration=UNCALIBRATED)
    assert p.noise > 0  # the spread of log(block medians) around a smooth curve: what the bins are of
    wide = forecast(STEPS[:750], values[:750], horizon=3000.0, calibration=Calibration((0.25,), (1.0,), (p.noise / 2,),
                                                                                        (1.0, 3.0)))
    assert np.log(wide.high / wide.low) == pytest.approx(3 * np.log(p.high / p.low), rel=0.25)


def _noisy_rows(n: int, seed: int) -> list[dict[str, Any]]:
    """Rows as calibrate.py learns from: forecasts whose spread is right for quiet curves and a
    third of the truth's for noisy ones (noise above 0.2), three cuts, four folds."""
    rng = np.random.default_rng(seed)
    rows = []
    for i, noise in enumerate(rng.uniform(0.01, 0.3, n)):
        spread = 0.5 * (3.0 if noise > 0.2 else 1.0)
        rows.append({"mixture": ((1.0, 0.0, 0.5),), "log_scale": True, "maximize": False, "noise": float(noise),
                     "cut": evaluate.CUTS[i % 3], "fold": i // 3 % 4, "truth": float(np.exp(rng.normal(0.0, spread)))})
    return rows


def test_conformal_learning_by_noise_bins_covers_80_percent_in_each() -> None:
    """calibrate.learn_table on forecasts whose spread is right for quiet curves and a third of
    the truth's for noisy ones: each share's scale and each noise bin's factor put 80% of their
    curves inside, the noisiest bin's factor ~3 times the quietest's."""
    rows = _noisy_rows(900, 14)
    scales, edges, factor = calibrate.learn_table(rows, prior=1.0)
    assert len(scales) == 3 and len(factor) == len(edges) + 1 == 3
    assert factor[2] / factor[0] == pytest.approx(3.0, rel=0.35)
    for b in range(3):
        inside = [abs(math.log(r["truth"])) <= 1.2816 * 0.5 * scales[evaluate.CUTS.index(r["cut"])] * factor[b]
                  for r in rows if int(np.searchsorted(edges, r["noise"])) == b]
        assert np.mean(inside) == pytest.approx(0.8, abs=0.07)


def test_cross_check_prefers_noise_bins_where_the_noise_sets_the_spread() -> None:
    """calibrate.cross_check on forecasts whose spread is a third of the truth's for noisy curves:
    out of fold, binning by noise brings each cell's coverage nearer 80% than one bin does."""
    distance = calibrate.cross_check(_noisy_rows(240, 15), prior=1.0)
    assert set(distance) == set(calibrate.BIN_CHOICES)
    assert distance[3] < distance[1] - calibrate.MARGIN


def test_the_calibration_learns_on_the_long_runs_first_four_seeds_and_holds_out_the_others() -> None:
    """Each long build's first four seeds are in calibrate.py's learning set, its fifth and sixth
    (trained after the calibration was learnt) held out; the cross-check's folds keep every seed
    of a long build together (across builds) and hold two builds each."""
    split = {s["run"]: s["split"] for s in evaluate.load()}
    long = [run for run in split if run.startswith("long-")]
    assert len(long) == 48
    assert {split[run] for run in long if run.endswith(("-e", "-f"))} == {"long new"}
    assert {split[run] for run in long if not run.endswith(("-e", "-f"))} == {"long dev"}
    assert set(calibrate.LEARN_SPLITS) == {"dev", "long dev"}
    folds = {run: calibrate.fold(run, 0) for run in long}
    seeds = ("-b", "-c", "-d", "-e", "-f")
    assert all(folds[run] == folds[run.rsplit("-", 1)[0]] for run in long if run.endswith(seeds))
    assert sorted(Counter(folds.values()).values()) == [12, 12, 12, 12]


def test_calibrated_intervals_are_wider_by_the_learnt_scale() -> None:
    rng = np.random.default_rng(11)
    values = power_law(STEPS) * np.exp(rng.normal(0, 0.05, len(STEPS)))
    plain = forecast(STEPS[:750], values[:750], horizon=3000.0, calibration=UNCALIBRATED)
    wide = forecast(STEPS[:750], values[:750], horizon=3000.0, calibration=Calibration((0.25,), (3.0,)))
    assert wide.final == pytest.approx(plain.final, rel=0.02)
    assert np.log(wide.high / wide.low) == pytest.approx(3 * np.log(plain.high / plain.low), rel=0.25)


def test_split_conformal_learning_finds_the_scale_that_covers_80_percent() -> None:
    """calibrate.learn on forecasts whose spread is half the truth's: the scale it learns is ~2."""
    rng = np.random.default_rng(12)
    rows = [{"mixture": ((1.0, 0.0, 0.5),), "log_scale": True, "maximize": False, "truth": float(np.exp(t))}
            for t in rng.normal(0.0, 1.0, 400)]
    assert calibrate.learn(rows) == pytest.approx(2.0, rel=0.12)


def test_early_intervals_keep_a_bounded_optimistic_edge() -> None:
    """A real over-fitting run's training loss from 10% of its steps (a steep fall of three
    decades, loosely pinned): the band's optimistic edge once read 1e-145; it now stops at most
    three times the recent log-log slope's fall to the horizon below the level now."""
    s = next(s for s in evaluate.load() if s["run"] == "overfit-torch-mlp-5" and s["series"] == "loss")
    seen = s["steps"] <= s["steps"][0] + 0.1 * (s["steps"][-1] - s["steps"][0])
    p = forecast(s["steps"][seen], s["values"][seen], horizon=float(s["steps"][-1]))
    assert p.ok, p.reason
    truth = evaluate.level(s["values"])
    assert p.low <= truth <= p.high
    assert p.low >= 1e-8 * p.latest and np.all(p.band_lo >= p.low)  # was 1e-145: 1e-143 times the level


def test_an_accuracy_is_forecast_rising() -> None:
    rng = np.random.default_rng(6)
    acc = 0.95 - 0.6 * STEPS ** -0.4 + rng.normal(0, 0.005, len(STEPS))
    p = forecast(STEPS[:1000], acc[:1000], horizon=3000.0, higher_is_better=True, target=0.9)
    assert p.ok, p.reason
    truth = 0.95 - 0.6 * 3000.0 ** -0.4
    assert p.low <= truth <= p.high and p.final > float(np.median(acc[950:1000]))
    assert p.prob_beats(p.low) == pytest.approx(0.9, abs=0.02)  # above its 10th percentile: 90%


def test_spikes_and_nan_gaps_do_not_throw_the_forecast_off() -> None:
    rng = np.random.default_rng(7)
    clean = power_law(STEPS) * np.exp(rng.normal(0, 0.03, len(STEPS)))
    dirty = clean.copy()
    dirty[rng.choice(1000, 15, replace=False)] *= 20.0  # loss spikes
    dirty[400:430] = np.nan  # a NaN gap that recovered
    a = forecast(STEPS[:1000], clean[:1000], horizon=3000.0)
    b = forecast(STEPS[:1000], dirty[:1000], horizon=3000.0)
    assert a.ok and b.ok, b.reason
    assert b.final == pytest.approx(a.final, rel=0.05)
    truth = power_law(np.array([3000.0]))[0]
    assert a.low <= truth <= a.high and b.low <= truth <= b.high


def test_a_logged_learning_rate_step_is_found_exactly() -> None:
    """The last step drop of a logged rate (x0.1 at 40% and 80%); a cosine schedule's tail and a
    warmup are not drops; the forecast's window starts there even where the loss shows no drop,
    unless the curve since is flat (then the whole curve is fitted)."""
    t = np.arange(2000, dtype=np.float64)
    step = 0.05 * 0.1 ** (t // 800)
    assert lr_drop(t, step) == 1600.0 and lr_drop(t[:1200], step[:1200]) == 800.0
    assert math.isnan(lr_drop(t[:700], step[:700]))
    cosine = 0.05 * 0.5 * (1 + np.cos(np.pi * t / 2000))
    warmup = np.minimum(1.0, (t + 1) / 200) * 0.05
    assert math.isnan(lr_drop(t, cosine)) and math.isnan(lr_drop(t, warmup))
    rng = np.random.default_rng(14)
    lr = (STEPS[:1800], 0.1 * 0.1 ** (STEPS[:1800] >= 1000))
    noise = np.exp(rng.normal(0, 0.05, 1800))
    values = power_law(STEPS[:1800], c=0.02) * noise  # still falling after the drop, which hardly shows
    p = forecast(STEPS[:1800], values, horizon=3000.0, lr=lr)
    assert p.ok and 1000 <= p.fitted_from <= 1015
    assert forecast(STEPS[:1800], values, horizon=3000.0).fitted_from < 50
    # flat after the drop: the blocks since say nothing, the curve before it still does
    flat = forecast(STEPS[:1800], power_law(STEPS[:1800]) * noise, horizon=3000.0, lr=lr)
    assert flat.ok and flat.fitted_from < 50


def test_the_fit_starts_after_a_learning_rate_step_drop() -> None:
    rng = np.random.default_rng(8)
    before = power_law(STEPS[:1000])
    after = 0.5 * power_law(STEPS[1000:] - 999.0, c=0.3, a=0.4)  # LR / 10 at step 1000: a sudden fall
    values = np.concatenate([before, after]) * np.exp(rng.normal(0, 0.01, len(STEPS)))
    p = forecast(STEPS[:2000], values[:2000], horizon=3000.0)
    assert p.ok, p.reason
    assert 1000 <= p.fitted_from <= 1100
    truth = 0.5 * power_law(np.array([2001.0]), c=0.3, a=0.4)[0]
    assert p.low <= truth <= p.high


# -- no forecast, and why ----------------------------------------------------------------------------


def test_no_forecast_for_a_diverging_curve() -> None:
    rising = np.exp(STEPS[:500] / 200.0)
    p = forecast(STEPS[:500], rising)
    assert not p.ok and p.reason.startswith("rising")
    assert math.isnan(p.final) and "no forecast: rising" in p.sentence()
    nan_end = power_law(STEPS[:500])
    nan_end[-5:] = np.nan
    p = forecast(STEPS[:500], nan_end)
    assert not p.ok and p.reason.startswith("diverged")


def test_no_forecast_for_a_flat_curve() -> None:
    rng = np.random.default_rng(9)
    p = forecast(STEPS, 0.7 + rng.normal(0, 0.02, len(STEPS)))
    assert not p.ok and p.reason.startswith("flat")


def test_no_forecast_with_too_few_points_or_a_horizon_too_near_or_too_far() -> None:
    assert forecast(STEPS[:5], power_law(STEPS[:5])).reason.startswith("too few points")
    assert forecast([], []).reason == "no values yet"
    assert "at or past the horizon" in forecast(STEPS[:500], power_law(STEPS[:500]), horizon=100.0).reason
    assert forecast(STEPS[:100], power_law(STEPS[:100]), horizon=1e6).reason.startswith("too early")


# -- real training curves ----------------------------------------------------------------------------


def test_interval_coverage_on_real_training_curves() -> None:
    """The fixed fast subset of the corpus (``evaluate.py --subset``): 8 real runs, 3 cuts each."""
    rows = evaluate.score([s for s in evaluate.load() if s["run"] in evaluate.SUBSET])
    scored = [r for r in rows if r["ok"] and math.isfinite(r["truth"])]
    assert len(scored) >= 20
    covered = np.mean([r["low"] <= r["truth"] <= r["high"] for r in scored])
    assert 0.65 <= covered <= 0.95, covered
    diverged = [r for r in rows if r["run"] == "high-torch-mlp-3" and r["series"] == "loss"]
    assert diverged and not any(r["ok"] for r in diverged)  # a run that went NaN gets no forecast


# -- the widget and the recorder ---------------------------------------------------------------------


def _train(plot: LossPlot | Recorder, run: str | None = None, c: float = 0.4, n: int = 800) -> None:
    rng = np.random.default_rng(len(run or "") + 10)
    for s in range(1, n + 1):
        plot.log(loss=power_law(np.array([float(s)]), c=c)[0] * math.exp(rng.normal(0, 0.03)),
                 acc=0.9 - 0.5 * s ** -0.3, lr=0.1, step=s, run=run)


def test_the_live_forecast_reads_the_runs_logged_learning_rate() -> None:
    rec = Recorder()
    rng = np.random.default_rng(15)
    for s in range(1, 1500):
        rec.log(loss=power_law(np.array([float(s)]))[0] * math.exp(rng.normal(0, 0.03)), lr=0.1 if s < 900 else 0.01,
                step=s)
    assert 900 <= rec.prediction("loss").fitted_from <= 915


def test_widget_forecast_band_readout_and_prediction() -> None:
    plot = LossPlot(forecast=True)
    try:
        _train(plot)
        plot.forecast_to(steps=4000, target=0.5)
        p = plot.prediction("loss")
        assert p.ok and p.horizon == 4000 and p.target == 0.5 and p.model
        assert p.low < p.final < p.high
        frame = plot.frame()
        bands = {b.label: b for pf in frame.panels for b in pf.bands}
        assert set(bands) == {"loss forecast", "acc forecast"}  # lr is neither a loss nor an accuracy
        band = bands["loss forecast"]
        assert band.dash == "dashed" and band.x[0] == 800 and band.x[-1] == 4000
        assert band.band_hi[-1] == pytest.approx(p.high) and band.band_lo[-1] == pytest.approx(p.low)
        rows = {r.name: r for r in frame.readout}
        assert rows["loss"].forecast == p.sentence() and "reaches 0.5 at step" in rows["loss"].forecast
        assert rows["lr"].forecast == ""
        plot.flush()  # draws: the widget's readout has the forecast column
        readout = plot.shown_html["readout"]
        assert "<th>forecast</th>" in readout and "reaches 0.5 at step" in readout
    finally:
        plot.close()


def test_forecast_is_off_by_default_and_prediction_works_anyway() -> None:
    plot = LossPlot()
    try:
        _train(plot, n=300)
        frame = plot.frame()
        assert not any(pf.bands for pf in frame.panels) and not any(r.forecast for r in frame.readout)
        assert plot.prediction("loss").ok
        plot.forecast = True
        assert any(pf.bands for pf in plot.frame().panels)
        with pytest.raises(KeyError, match="val_loss"):
            plot.prediction("val_loss")
    finally:
        plot.close()


def test_forecast_to_refuses_bad_values() -> None:
    rec = Recorder()
    rec.log(loss=1.0, step=1)
    with pytest.raises(TypeError, match="steps must be a finite number"):
        rec.forecast_to(steps="far")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="steps must be > 0"):
        rec.forecast_to(steps=-5)
    with pytest.raises(TypeError, match="target must be a finite number"):
        rec.forecast_to(target=math.nan)
    with pytest.raises(TypeError, match="metric must be a str"):
        rec.forecast_to(metric=3)  # type: ignore[arg-type]
    early = Recorder()  # a target set before anything is logged is the main metric's, once there is one
    early.forecast_to(steps=100, target=0.5)
    for s in range(1, 50):
        early.log(acc=1 - 1 / s, loss=1 / s, step=s)
    assert early.prediction("loss").target == 0.5 and early.prediction("acc").target is None


def test_a_requested_metric_that_is_not_a_loss_is_forecast_too() -> None:
    rec = Recorder(ViewSettings(forecast=True))
    for s in range(1, 400):
        rec.log(lr=0.01 + 0.4 * s ** -0.5, step=s)  # a decaying learning rate: neither loss nor accuracy
    assert not any(pf.bands for pf in rec.frame().panels)
    rec.forecast_to(metric="lr", target=0.02)
    frame = rec.frame()
    assert [b.label for pf in frame.panels for b in pf.bands] == ["lr forecast"]
    assert rec.prediction("lr").target == 0.02


def test_runs_table_gives_each_run_its_chance_against_the_best_forecast() -> None:
    plot = LossPlot(forecast=True)
    try:
        _train(plot, "a", c=0.40)
        _train(plot, "b", c=0.20)  # ends clearly lower
        frame = plot.frame()
        runs = {r.name: r.forecast for r in frame.runs}
        assert runs["b"].startswith("best forecast:")
        assert runs["a"].startswith("p ≈ 0.0") and "to end below b's forecast" in runs["a"]
        p_a, p_b = plot.prediction("loss", run="a"), plot.prediction("loss", run="b")
        assert p_a.prob_beats(p_b.final) < 0.05
        assert f"p ≈ {p_a.prob_beats(p_b.final):.2f}" in runs["a"]
    finally:
        plot.close()


def test_images_and_reports_show_the_forecast(tmp_path: Path) -> None:
    plot = LossPlot(forecast=True, title="<b>forecast</b>")
    try:
        _train(plot, "a<x>")
        _train(plot, "b", c=0.3)
        plot.forecast_to(steps=2000, target=0.45)
        svg = plot.export(tmp_path / "p.svg").read_text()
        assert "a&lt;x&gt;: loss forecast" in svg  # the legend names the forecast line (escaped)
        report = plot.export(tmp_path / "r.html").read_text()
        assert "lossviz-forecast" in report and "reach 0.45 by step" in report
        assert "to end below b&#x27;s forecast" in report or "to end below b's forecast" in report
        assert "a<x>" not in report
    finally:
        plot.close()


def _two_losses(n: int) -> dict[str, dict[str, MetricHistory]]:
    steps = STEPS[:n]
    return {"default": {name: MetricHistory(steps, power_law(steps, c=c), steps) for name, c in
                        (("loss", 0.4), ("val_loss", 0.5))}}


def test_live_refits_take_turns_and_a_bounded_share_of_the_time() -> None:
    """Live, one series is refitted at a time, the one fitted longest ago first, and the next
    refit waits at least 1 / REFITS_PER_SECOND and 1 / REFIT_SHARE times what the last one took."""
    now = [0.0]
    tracker = ForecastTracker(clock=lambda: now[0])
    try:
        tracker.update(_two_losses(500), live=True)
        assert tracker.wait(30)
        first = tracker.latest("default", "loss")
        assert first is not None and tracker.latest("default", "val_loss") is None  # one refit per frame
        tracker.update(_two_losses(510), live=True)  # no time has passed: nothing
        assert tracker.wait(30) and tracker.latest("default", "val_loss") is None
        now[0] += 1.0 / REFITS_PER_SECOND
        tracker.update(_two_losses(520), live=True)
        assert tracker.wait(30) and tracker.latest("default", "val_loss") is not None  # never fitted: first
        assert tracker.latest("default", "loss") is first
        now[0] += 1.0 / REFITS_PER_SECOND
        tracker.update(_two_losses(530), live=True)
        assert tracker.wait(30) and tracker.latest("default", "loss") is not first  # then the one fitted longest ago
        tracker.update(_two_losses(540), live=False)  # flush(): every refit asked for at once
        assert tracker.wait(30)
        assert tracker.latest("default", "loss").last_step == tracker.latest("default", "val_loss").last_step == 540
    finally:
        tracker.close()

    slow = [0.0]  # each read of the clock is 0.1 s later: a refit (read as it starts and ends) took 0.1 s

    def clock() -> float:
        slow[0] += 0.1
        return slow[0]

    tracker = ForecastTracker(clock=clock)
    try:
        tracker.update(_two_losses(500), live=True)  # reads 0.1; the fit starts at 0.2, ends at 0.3
        assert tracker.wait(30) and tracker.latest("default", "loss") is not None
        slow[0] = 0.2 + 0.1 / REFIT_SHARE - 0.3  # past 1 / REFITS_PER_SECOND, not 0.1 / REFIT_SHARE
        tracker.update(_two_losses(510), live=True)
        assert tracker.wait(30) and tracker.latest("default", "val_loss") is None
        slow[0] += 0.2
        tracker.update(_two_losses(520), live=True)
        assert tracker.wait(30) and tracker.latest("default", "val_loss") is not None
    finally:
        tracker.close()


class _HeldFits:
    """A tracker clock that holds every fit on the worker thread (it reads the clock as a fit
    starts) until :meth:`release`: a fit as slow as the test needs, deterministically."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self._gate = threading.Event()
        self.fitted = 0  # on_fitted calls: frames asked for

    def __call__(self) -> float:
        if threading.current_thread() is not threading.main_thread():
            self.started.set()
            self._gate.wait(30)
        return time.monotonic()

    def release(self) -> None:
        self._gate.set()

    def on_fitted(self) -> None:
        self.fitted += 1


def test_a_frame_never_waits_for_a_fit_and_asks_for_one_more_when_it_lands() -> None:
    held = _HeldFits()
    tracker = ForecastTracker(clock=held, on_fitted=held.on_fitted)
    try:
        tracker.update(_two_losses(500), live=True)  # returns at once: the fit is the worker's
        assert held.started.wait(30)
        for n in (510, 520):  # frames go on while the fit is held; no second fit is asked for
            tracker.update(_two_losses(n), live=True)
            tracker.update(_two_losses(n), live=False)
        assert tracker.latest("default", "loss") is None and not tracker.wait(0.1)
        held.release()
        assert tracker.wait(30)
        assert tracker.latest("default", "loss") is not None and held.fitted >= 1
    finally:
        tracker.close()


def test_a_fit_of_a_rewound_run_lands_nowhere() -> None:
    held = _HeldFits()
    tracker = ForecastTracker(clock=held, on_fitted=held.on_fitted)
    try:
        tracker.update(_two_losses(500), live=True)
        assert held.started.wait(30)
        tracker.forget("default")  # the run's points were purged while its fit ran
        held.release()
        assert tracker.wait(30)
        assert tracker.latest("default", "loss") is None and held.fitted == 0
        tracker.update(_two_losses(300), live=False)  # the points after the rewind are fitted
        assert tracker.wait(30) and tracker.latest("default", "loss").last_step == 300
    finally:
        tracker.close()


def test_no_fit_lands_or_starts_after_close() -> None:
    held = _HeldFits()
    tracker = ForecastTracker(clock=held, on_fitted=held.on_fitted)
    tracker.update(_two_losses(500), live=True)
    assert held.started.wait(30)
    tracker.close()
    held.release()
    assert tracker.wait(30)
    tracker.update(_two_losses(510), live=False)
    assert tracker.wait(30)
    assert tracker.latest("default", "loss") is None and held.fitted == 0
    assert tracker.predict(_two_losses(510), "default", "loss").ok  # prediction() still fits, on its caller's thread


def test_fits_asked_from_several_threads_run_one_at_a_time_on_the_worker() -> None:
    """prediction() from several threads at once: every fit runs on the one worker thread (so
    two never run at once), and each caller gets the fit of its own points."""
    fitters: set[str] = set()

    def clock() -> float:  # read as each fit starts and ends, on the thread that fits
        fitters.add(threading.current_thread().name)
        return time.monotonic()

    tracker = ForecastTracker(clock=clock)
    got: dict[int, float] = {}
    callers = [threading.Thread(target=lambda n=n: got.__setitem__(
        n, tracker.predict(_two_losses(n), "default", "loss").last_step), name=f"caller-{n}")
        for n in (500, 510, 520, 530)]
    try:
        for t in callers:
            t.start()
        for t in callers:
            t.join(60)
    finally:
        tracker.close()
    assert got == {n: float(n) for n in (500, 510, 520, 530)}
    assert len(fitters) == 1 and not fitters & {t.name for t in callers}


def test_a_live_plot_draws_the_band_when_its_fit_lands_and_refits_after_a_rewind() -> None:
    """Through the Recorder: the worker's fits land in frames drawn in the background without
    another log() (each series in turn, at the live pace); a purge rewind refits."""
    drawn: list[Any] = []
    rec = Recorder(ViewSettings(forecast=True))
    rec.attach_view(lambda frame, findings: drawn.append(frame) or 0, live=True)

    def band_from(step: float) -> bool:
        bands = [b for pf in drawn[-1].panels for b in pf.bands] if drawn else []
        return {b.label: b.x[0] for b in bands} == {"loss forecast": step, "acc forecast": step}

    try:
        _train(rec)
        assert wait_until(lambda: band_from(800), timeout=60)
        rec.log(loss=1.0, acc=0.5, step=400)  # a rewind: the points from step 400 on are purged
        for s in range(401, 601):
            rec.log(loss=power_law(np.array([float(s)]))[0], acc=0.9 - 0.5 * s ** -0.3, step=s)
        assert wait_until(lambda: band_from(600), timeout=60)
    finally:
        rec.close()
    assert rec.prediction("loss").last_step == 600  # after close: fitted on this thread
