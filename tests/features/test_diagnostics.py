"""Diagnostics detectors on synthetic curves: what should and should not trigger, episodes, cost,
and the plateau rule against PyTorch's own ReduceLROnPlateau."""

import math

import numpy as np
import pytest

from lossviz_widget import MetricHistory
from lossviz_widget.diagnostics import Diagnostics, DiagnosticsConfig, Finding, PlateauTracker


def H(steps, values):
    steps = np.asarray(steps, dtype=float)
    return MetricHistory(steps, np.asarray(values, dtype=float), steps)


def run(series, chunk=None, config=None, seed=0):
    """Feed ``{name: (steps, values)}`` to a fresh Diagnostics, all at once or in random chunks of steps."""
    diag = Diagnostics(config)
    last = max(float(s[-1]) for s, _ in series.values())
    rng = np.random.default_rng(seed)
    end = 0.0
    while True:
        end = last + 1 if chunk is None else end + int(rng.integers(1, chunk + 1))
        diag.update({n: H(s[s < end], v[s < end]) for n, (s, v) in series.items()})
        if end > last:
            return diag.findings


def codes(findings):
    return [f.code for f in findings]


def curve(n, level=lambda s: 2 * np.exp(-s / 300) + 0.1, noise=0.02, seed=0):
    s = np.arange(n, dtype=float)
    rng = np.random.default_rng(seed)
    return s, level(s) * (1 + noise * rng.normal(size=n))


def test_a_healthy_run_raises_no_warning_or_error():
    s, train = curve(3000)
    vs = s[::50]
    val = (2 * np.exp(-vs / 300) + 0.15) * (1 + 0.01 * np.random.default_rng(1).normal(size=len(vs)))
    found = run({"loss": (s, train), "val_loss": (vs, val)})
    assert all(f.severity == "info" for f in found), [f.text for f in found]
    assert "overfitting" not in codes(found) and "divergence" not in codes(found)


def test_findings_do_not_depend_on_how_the_data_arrives():
    s, train = curve(4000, noise=0.3, seed=3)
    train[1234] = np.nan
    vs = s[::40]
    val = 0.3 + 2 * np.exp(-vs / 300) + np.maximum(0, vs - 2000) / 4000
    series = {"loss": (s, train), "val_loss": (vs, val)}
    whole = run(series)
    assert {"nonfinite", "overfitting"} <= set(codes(whole))
    for seed in range(3):
        assert run(series, chunk=300, seed=seed) == whole


# -- point rules --------------------------------------------------------------------------------


def test_nonfinite_once_per_episode():
    s, v = curve(300)
    v[[50, 52, 60]] = [np.nan, np.inf, np.nan]  # one episode: fewer than 20 clean points between
    v[150] = -np.inf  # a new one
    found = run({"val/loss": (s, v)})
    nf = [f for f in found if f.code == "nonfinite"]
    assert [f.step for f in nf] == [50.0, 150.0]
    assert nf[0].severity == "error" and "nan" in nf[0].message and nf[1].evidence["value"] == "-inf"
    assert codes(run({"loss": curve(300)})).count("nonfinite") == 0


def test_negative_value_only_for_loss_like_names():
    s = np.arange(100, dtype=float)
    v = np.where(s == 40, -0.5, 1.0)
    assert [f.step for f in run({"train/mse": (s, v)}) if f.code == "negative_loss"] == [40.0]
    assert "negative_loss" not in codes(run({"reward": (s, v), "grad_norm": (s, v)}))


# -- divergence ---------------------------------------------------------------------------------


def test_divergence_fires_once_when_the_smoothed_loss_exceeds_four_times_its_best():
    s = np.arange(1500, dtype=float)
    v = np.where(s < 800, 2 * np.exp(-s / 200) + 0.1, 0.13 * np.exp((s - 800) / 60))
    found = [f for f in run({"loss": (s, v)}) if f.code == "divergence"]
    assert len(found) == 1
    f = found[0]
    assert f.evidence["ratio"] > 4 and 800 < f.step < 1000 and "lower learning rate" in f.suggestion


def test_noisy_but_stable_loss_does_not_diverge_or_flap():
    for seed in range(5):  # 60% multiplicative noise: spikes, but the smoothed loss stays near its level
        s, v = curve(3000, noise=0.6, seed=seed)
        assert "divergence" not in codes(run({"loss": (s, np.abs(v))}))


def test_divergence_hysteresis_a_loss_hovering_at_the_threshold_reports_once():
    s = np.arange(4000, dtype=float)
    v = np.where(s < 500, 1.0, 4.2 + 0.8 * np.sin(s / 40))  # crosses 4x best again and again
    assert codes(run({"loss": (s, v)})).count("divergence") == 1


# -- initial loss -------------------------------------------------------------------------------


@pytest.mark.parametrize("first, expect", [(2.30, False), (2.9, False), (9.0, True), (0.3, True)])
def test_initial_cross_entropy_near_ln_c(first, expect):
    s = np.arange(50, dtype=float)
    v = first * np.exp(-s / 30)
    found = run({"loss": (s, v)}, config=DiagnosticsConfig(num_classes=10))
    assert ("initial_loss" in codes(found)) == expect
    assert "initial_loss" not in codes(run({"loss": (s, v)}))  # no num_classes: nothing to compare with


def test_bad_config_is_a_clear_error():
    with pytest.raises(ValueError, match="num_classes must be an int >= 2"):
        DiagnosticsConfig(num_classes=1)
    with pytest.raises(ValueError, match="threshold_mode must be"):
        PlateauTracker(threshold_mode="percent")


# -- plateau: PyTorch's ReduceLROnPlateau is the oracle ----------------------------------------


def torch_reductions(values, **kw):
    torch = pytest.importorskip("torch")
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=1.0)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.9, **kw)
    out = []
    for i, v in enumerate(values):
        before = opt.param_groups[0]["lr"]
        sched.step(float(v))
        if opt.param_groups[0]["lr"] < before:
            out.append(i)
    return out


SETTINGS = [
    dict(mode="min", threshold=1e-4, threshold_mode="rel", patience=10, cooldown=0),
    dict(mode="min", threshold=0.01, threshold_mode="rel", patience=3, cooldown=2),
    dict(mode="min", threshold=0.05, threshold_mode="abs", patience=5, cooldown=0),
    dict(mode="max", threshold=0.02, threshold_mode="rel", patience=2, cooldown=3),
    dict(mode="max", threshold=0.01, threshold_mode="abs", patience=0, cooldown=1),
]


@pytest.mark.parametrize("kw", SETTINGS, ids=lambda k: "-".join(str(v) for v in k.values()))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_plateau_reductions_match_torch(kw, seed):
    rng = np.random.default_rng(seed)
    n = 150
    trend = 1 + np.exp(-np.arange(n) / 30)
    values = (trend if kw["mode"] == "min" else 2 - trend) + 0.02 * rng.normal(size=n)
    tracker = PlateauTracker(**kw)
    cuts = np.sort(rng.choice(np.arange(1, n), size=6, replace=False))
    for a, b in zip(np.r_[0, cuts], np.r_[cuts, n]):
        tracker.feed(values[a:b])
    expected = torch_reductions(values, **kw)
    assert expected, "the sequence should plateau at least once"
    assert tracker.reductions == expected


def test_plateau_finding_once_per_plateau_and_again_after_an_improvement():
    vs = np.arange(0, 6000, 100, dtype=float)
    v = np.r_[np.linspace(1, 0.5, 10), np.full(20, 0.5), np.linspace(0.45, 0.3, 5), np.full(25, 0.3)]
    s, train = curve(6000)
    found = [f for f in run({"loss": (s, train), "val_loss": (vs, v)}) if f.code == "plateau"]
    torch_steps = [vs[i] for i in torch_reductions(v, patience=10)]
    assert len(torch_steps) >= 3  # torch reduces repeatedly on a long plateau...
    assert [f.step for f in found] == [torch_steps[0], vs[35 + 11 - 1]]  # ...we report each plateau once
    assert found[0].evidence["best_step"] == 900.0


# -- overfitting and generalization gap ------------------------------------------------------


def overfit_series(noise=0.0, seed=0, train_rises=False):
    s, train = curve(5000, level=lambda s: 2 * np.exp(-s / 500) + 0.02, noise=0.05, seed=seed)
    if train_rises:
        train = train * (1 + np.maximum(0, s - 2000) / 200)
    vs = s[::100]
    rng = np.random.default_rng(seed + 100)
    val = (0.4 + 2 * np.exp(-vs / 500) + 0.3 * np.maximum(0, vs - 2000) / 1000) * (1 + noise * rng.normal(size=len(vs)))
    return {"loss": (s, train), "val_loss": (vs, val)}


def test_overfitting_found_with_the_step_to_stop_at():
    found = [f for f in run(overfit_series()) if f.code == "overfitting"]
    assert len(found) == 1
    f = found[0]
    assert f.metric == "val_loss" and f.evidence["train_metric"] == "loss"
    assert 1800 <= f.evidence["best_step"] <= 2300 and f.evidence["gl"] > 5
    assert f.step > f.evidence["best_step"]
    assert f"early stopping at step {int(f.evidence['best_step']):,}" in f.suggestion
    assert "above its minimum" in f.message and "keeps falling" in f.message


@pytest.mark.parametrize("seed", range(6))
def test_noisy_validation_near_the_threshold_does_not_cry_overfitting(seed):
    # flat-to-falling validation with 2.5% noise: GL jitters around 5 now and then, but not 3x in a row
    s, train = curve(5000, level=lambda s: 2 * np.exp(-s / 500) + 0.02, noise=0.05, seed=seed)
    vs = s[::100]
    val = (0.4 + 2 * np.exp(-vs / 500)) * (1 + 0.025 * np.random.default_rng(seed).normal(size=len(vs)))
    assert "overfitting" not in codes(run({"loss": (s, train), "val_loss": (vs, val)}))


def test_rising_validation_with_rising_training_is_not_overfitting():
    assert "overfitting" not in codes(run(overfit_series(train_rises=True)))


def test_generalization_gap():
    s, train = curve(2000, level=lambda s: 0.2 + 0 * s, noise=0.01)
    vs = s[::100]
    assert "generalization_gap" in codes(run({"loss": (s, train), "val_loss": (vs, np.full(len(vs), 0.7))}))
    assert "generalization_gap" not in codes(run({"loss": (s, train), "val_loss": (vs, np.full(len(vs), 0.25))}))


# -- block rules: noise, learning rate, convergence ---------------------------------------------


def test_noisy_loss():
    s, v = curve(2000, level=lambda s: 1 + 0 * s, noise=0.9, seed=1)
    found = [f for f in run({"loss": (s, np.abs(v))}) if f.code == "noisy"]
    assert len(found) == 1 and "batch size" in found[0].suggestion
    s, v = curve(2000, noise=0.1, seed=1)
    assert "noisy" not in codes(run({"loss": (s, v)}))


def test_learning_rate_too_high_rising_and_jumpy_flat_is_not_learning():
    s, v = curve(2000, level=lambda s: 1.5 + s / 2000, noise=0.4, seed=2)
    assert "lr_too_high" in codes(run({"loss": (s, np.abs(v))}))  # rising from the start, jumpy
    s, v = curve(2000, level=lambda s: 1.5 + 0 * s, noise=0.4, seed=2)
    assert "not_learning" in codes(run({"loss": (s, np.abs(v))}))  # flat from the start: not learning
    assert not {"lr_too_high", "not_learning"} & set(codes(run({"loss": curve(2000, noise=0.4)})))  # coming down


def test_learning_rate_too_low_steady_slow_fall():
    s, v = curve(3000, level=lambda s: 2.3 - 2e-5 * s, noise=0.002, seed=4)
    found = [f for f in run({"loss": (s, v)}) if f.code == "lr_too_low"]
    assert len(found) == 1 and found[0].step == 999.0  # judged from the 10th block of 100 points
    assert "lr_too_low" not in codes(run({"loss": curve(3000, noise=0.002)}))  # a healthy fast fall
    for seed in range(4):  # flat noise: block means fall 4x in a row by chance, but not significantly
        assert "lr_too_low" not in codes(run({"loss": curve(3000, level=lambda s: 2.3 + 0 * s, noise=0.05, seed=seed)}))


def test_converged_after_the_fall_and_not_before():
    s, v = curve(6000, level=lambda s: 2 * np.exp(-s / 200) + 0.3, noise=0.05, seed=5)
    found = [f for f in run({"loss": (s, v)}) if f.code == "converged"]
    assert len(found) == 1 and found[0].step > 1000
    s, v = curve(6000, level=lambda s: 3 - s / 3000, noise=0.05, seed=5)  # still falling steadily
    assert "converged" not in codes(run({"loss": (s, v)}))


# -- cost ---------------------------------------------------------------------------------------


def test_per_frame_work_is_proportional_to_the_new_points():
    n, chunk = 1_000_000, 20_000
    s = np.arange(n, dtype=float)
    train = 2 * np.exp(-s / 1e5) + 0.1 + 0.01 * np.sin(s)
    vs, val = s[::100], 0.2 + 2 * np.exp(-s[::100] / 1e5)
    diag = Diagnostics()
    work = []
    for end in range(chunk, n + 1, chunk):
        before = diag.examined
        diag.update({"loss": H(s[:end], train[:end]), "val_loss": H(vs[vs < end], val[vs < end])})
        work.append(diag.examined - before)
    # per frame: a fixed number of passes over the new training points, plus a short training window
    # per new validation point; never the whole history
    new_val = chunk // 100
    bound = 6 * chunk + new_val * (3 + DiagnosticsConfig().train_window)
    assert max(work) <= bound, (max(work), bound)
    assert work[-1] <= work[0] + DiagnosticsConfig().train_window  # the last frame costs as much as the first


def test_default_run_findings_name_their_run_once_there_are_several_runs():
    s = np.arange(300, dtype=float)
    v = np.abs(np.sin(s)) + 0.1
    v[40] = np.nan
    diag = Diagnostics()
    alone = diag.update({"default": {"loss": H(s[:100], v[:100])}})
    assert [f.run for f in alone] == [None]  # one run: findings stay as they were
    both = diag.update({"default": {"loss": H(s, v)}, "b": {"loss": H(s, v)}})
    assert [f.run for f in both] == ["b"]  # the default run's finding is not found again...
    assert sorted(f.run for f in diag.findings) == ["b", "default"]  # ...but relabelled
    v2 = np.r_[v, np.full(50, 0.5), np.full(50, np.inf)]  # a second episode, found with several runs
    later = diag.update({"default": {"loss": H(np.arange(400.0), v2)}, "b": {"loss": H(s, v)}})
    assert [f.run for f in later if f.code == "nonfinite"] == ["default"]


def test_finding_text_and_fields():
    f = Finding("divergence", "error", "loss", 12.0, "m.", "s.", {"ratio": 5.0})
    assert f.text == "m. s." and f.run is None
    assert math.isclose(f.evidence["ratio"], 5.0)


@pytest.mark.parametrize("kind", ["zeros", "negative", "constant", "all_nan", "huge", "tiny", "alternating_sign"])
def test_degenerate_series_raise_nothing_and_warn_nothing(kind):
    n = 3000
    s = np.arange(n, dtype=float)
    v = {
        "zeros": np.zeros(n), "negative": -1 - s / n, "constant": np.full(n, 0.7), "all_nan": np.full(n, np.nan),
        "huge": np.full(n, 1e300) * (1 + (s % 7)), "tiny": np.full(n, 1e-300) * (s % 3),
        "alternating_sign": np.where(s % 2 == 0, 1.0, -1.0),
    }[kind]
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        found = run({"loss": (s, v), "val_loss": (s[::10], v[::10]), "acc": (s, v)}, chunk=500)
    assert all(isinstance(f, Finding) for f in found)


def test_vectorized_episode_machine_matches_the_sequential_rule():
    """The NumPy run lengths (``held``) and episode starts equal the per-value state machine
    (run counter always updated; an open episode closes on a release value, which cannot
    reopen it; a closed one opens when the run reaches ``persist`` and, with a reopening gate,
    only where the running best is below the gate, which each opening moves down)."""
    from lossviz_widget.diagnostics.findings import Reopening, episodes, held

    rng = np.random.default_rng(7)
    for case in range(600):
        n, persist = int(rng.integers(1, 60)), int(rng.integers(1, 5))
        cond, release = rng.random(n) < 0.7, rng.random(n) < 0.2
        carry, active = int(rng.integers(0, 4)), bool(rng.integers(0, 2))
        gated = case % 2 == 1
        best = np.minimum.accumulate(rng.random(n) * 2.0) if gated else None
        below, margin = float(rng.choice([np.inf, 1.0])), 0.1
        run, act, starts, ends, runs, gate = carry, active, [], [], [], below
        for i in range(n):
            run = run + 1 if cond[i] else 0
            runs.append(run)
            if act:
                act = not release[i]
                if not act:
                    ends.append(i)
            elif run >= persist and (best is None or best[i] < gate):
                act = True
                starts.append(i)
                if best is not None:
                    gate = float(best[i]) * (1 - margin)
        trigger, run_at_end = held(cond, carry, persist)
        assert trigger.tolist() == [r >= persist for r in runs] and run_at_end == run
        reopening = Reopening(best, below, margin) if best is not None else None
        assert episodes(trigger, release, active, reopening) == (starts, ends, act)
        if reopening is not None:
            assert reopening.below == gate


@pytest.mark.parametrize("field, value", [
    ("plateau_threshold_mode", "foo"), ("plateau_patience", -1), ("plateau_cooldown", -1), ("plateau_threshold", -0.1),
    ("divergence_beta", 1.0), ("divergence_ratio", 0.0), ("divergence_warmup", -1), ("clear_after", 0),
    ("initial_loss_band", (1.5, 0.5)), ("initial_loss_band", "wide"), ("gl_alpha", float("nan")), ("train_fall", -1.0),
    ("gap_ratio", 0.0), ("persist", 0), ("train_window", 0), ("noise_ratio", float("inf")), ("early_blocks", 0),
    ("converged_rel", 0.0), ("persist", 2.5), ("persist", True),
])
def test_config_rejects_bad_thresholds_at_construction(field, value):
    """A bad threshold fails where it is given, naming the field, not later on every frame of the render thread."""
    with pytest.raises((TypeError, ValueError), match=field):
        DiagnosticsConfig(**{field: value})


@pytest.mark.parametrize("train, val", [
    ("train/logloss", "eval/logloss"),  # XGBoost (integrations.xgboost names <dataset>/<metric>)
    ("training/binary_logloss", "valid_1/binary_logloss"),  # LightGBM
    ("train/mlogloss", "validation/mlogloss"),
])
def test_boosting_logloss_names_are_losses(train, val):
    """The boosting integrations log ``logloss``-style names: they get the loss rules (overfitting here)."""
    series = overfit_series()
    found = run({train: series["loss"], val: series["val_loss"]})
    assert "overfitting" in codes(found)


def test_noisy_dense_series_do_not_flood_findings():
    """A validation loss logged every step with +-10% noise on a falling curve (the benchmark's
    workload): overfitting and plateau episodes re-open only after a real (5%) new minimum, so
    their number grows with the log of the curve's range, not with the number of points; the
    widget lists only the latest findings."""
    from lossviz_widget import LossPlot
    from lossviz_widget._ui.widget import FINDINGS_SHOWN

    n = 200_000
    i = np.arange(n)
    noise = np.random.default_rng(0).random(n)
    loss = 2.0 / (1.0 + i / n * 20.0) + 0.2 * noise
    plot = LossPlot()
    try:
        for a in range(0, n, 20_000):
            for name, v in (("loss", loss), ("val_loss", loss * 1.1)):
                plot.extend(name, i[a:a + 20_000], v[a:a + 20_000])
            plot.flush()
        found = plot.diagnose()
        per_code = {c: sum(f.code == c for f in found) for c in {f.code for f in found}}
        bound = int(np.log(loss.max() / loss.min()) / np.log(1 / 0.95)) + 2  # 5% new minima in the range
        assert per_code.get("overfitting", 0) <= bound and per_code.get("plateau", 0) <= bound, per_code
        assert plot.shown_html["findings"].count('class="lossviz-finding"') <= FINDINGS_SHOWN
    finally:
        plot.close()


# -- evaluations: what the validation rules count as one ------------------------------------------


def test_validation_every_step_is_judged_on_block_means_and_sparse_or_smooth_on_each_value():
    from lossviz_widget.diagnostics.evaluations import Evaluations

    s = np.arange(2000, dtype=float)
    train = H(s, 2 * np.exp(-s / 300) + 0.1)
    rng = np.random.default_rng(0)
    noisy = H(s, (2 * np.exp(-s / 300) + 0.2) * (1 + 0.3 * rng.normal(size=2000)))  # a minibatch per step
    ev = Evaluations(block=20)
    steps, values, se = ev.take(noisy, 2000, train)
    assert ev.mode == "blocks" and len(steps) == 100 and steps[0] == 19 and (se > 0).all()
    np.testing.assert_allclose(values[0], noisy.values[:20].mean())
    sparse = H(s[::50], 2 * np.exp(-s[::50] / 300) + 0.2)
    ev = Evaluations(block=20)
    assert len(ev.take(sparse, 2, train)[0]) == 2 and ev.mode == "each"  # decided at the 2nd value
    epochs = np.arange(60, dtype=float)  # per-epoch train and validation logged at the same steps: smooth
    ev = Evaluations(block=20)
    e_train, e_val = H(epochs, 2 * np.exp(-epochs / 10) + 0.1), H(epochs, 2 * np.exp(-epochs / 10) + 0.3)
    assert len(ev.take(e_val, 30, e_train)[0]) == 0 and ev.mode is None  # waits for 50 values
    assert len(ev.take(e_val, 60, e_train)[0]) == 60 and ev.mode == "each"


@pytest.mark.parametrize("seed", range(10))
def test_a_minibatch_validation_loss_on_a_healthy_curve_gives_no_overfitting_and_few_plateaus(seed):
    """A validation minibatch per step (+-30%) on a curve that falls, then stays flat: the lowest
    of many noisy block means is a chance low, not a minimum to beat (docs/diagnostics.md)."""
    s, train = curve(6000, noise=0.2, seed=seed)
    rng = np.random.default_rng(seed + 100)
    val = np.abs((2 * np.exp(-s / 300) + 0.15) * (1 + 0.3 * rng.normal(size=len(s))))
    found = run({"loss": (s, train), "val_loss": (s, val)})
    assert "overfitting" not in codes(found) and codes(found).count("plateau") <= 3, codes(found)


def test_not_learning_without_num_classes_is_a_loss_flat_from_the_start():
    s, v = curve(2000, level=lambda s: 0.7 + 0 * s, noise=0.02, seed=6)
    found = [f for f in run({"loss": (s, v)}) if f.code == "not_learning"]
    assert len(found) == 1 and found[0].step == 799.0 and found[0].severity == "warning"
    assert "not_learning" not in codes(run({"loss": curve(2000, noise=0.02)}))


def test_a_spike_without_a_gradient_norm_spike_says_so():
    s, v = curve(3000, noise=0.05, seed=7)
    v[2000] = 50.0
    g = np.abs(1 + 0.05 * np.random.default_rng(8).normal(size=len(s)))
    f = next(f for f in run({"loss": (s, v), "train/grad_norm": (s, g)}) if f.code == "loss_spike")
    assert "train/grad_norm did not spike before it" in f.message and f.evidence["grad_spiked_first"] == 0.0
    assert f.severity == "info" and f.evidence["reported_at"] > f.step


# -- findings that later data contradicts end -----------------------------------------------------


def _slow_then_learning(n=160_000, seed=8):
    """Flat for the early window, then a steady 100x fall: a saddle, or a long run's slow start."""
    return curve(n, level=lambda s: 0.02 + 2 * np.exp(-np.maximum(s - 3000, 0) / 8000), noise=0.01, seed=seed)


def test_early_findings_end_when_the_loss_later_learns_and_the_end_does_not_depend_on_chunks():
    s, v = _slow_then_learning()
    whole = run({"loss": (s, v)})
    early = {f.code: f for f in whole if f.step < 3000}
    assert {"not_learning", "converged"} <= set(early)
    nl, conv = early["not_learning"], early["converged"]
    assert not nl.active and 3000 < nl.ended < 6000 and nl.ended_because.startswith("it started learning")
    assert not conv.active and 3000 < conv.ended < 6000 and conv.ended_because.startswith("it fell again")
    assert f"Until step {nl.ended:,.0f}" in nl.text and nl.suggestion not in nl.text
    # from ~60k steps the loss sits at 0.02: converged again (judged against the level half as far
    # into the run, so some 100k steps later), and that one holds
    last = [f for f in whole if f.code == "converged"][-1]
    assert last.step > 60_000 and last.active
    assert not [f for f in whole if f.active and f.severity != "info"]
    for seed in range(2):
        assert run({"loss": (s, v)}, chunk=20_000, seed=seed) == whole


def test_a_slow_steady_fall_is_not_called_converged_over_and_over():
    """A loss that falls 0.25% per 500 steps for a million steps looks flat over 5 blocks; once
    it has fallen 10% below where it was called converged, that ends, and it is not said again
    while the fall goes on."""
    s = np.arange(400_000, dtype=float)
    v = 2 * np.exp(-s / 2e5) * (1 + 0.005 * np.random.default_rng(9).normal(size=len(s)))
    found = [f for f in run({"loss": (s, v)}) if f.code in ("converged", "not_learning", "lr_too_low")]
    assert found and not [f for f in found if f.active and f.code != "lr_too_low"]
    assert len([f for f in found if f.code == "converged"]) == 1



def test_overfitting_ends_when_the_validation_loss_comes_back_to_its_best():
    """Double descent: validation rises while training falls (overfitting), then falls back
    below its first minimum; the warning ends there, and the run has no current warning."""
    s, train = curve(6000, level=lambda s: 2 * np.exp(-s / 300) + 0.02, noise=0.01)
    vs = s[::50]
    bump = 0.5 * np.exp(-(((vs - 2500) / 600) ** 2))  # up from ~1,500, back down by ~3,500
    val = 0.3 + 2 * np.exp(-vs / 300) + bump - 0.05 * np.maximum(vs - 2500, 0) / 3500
    series = {"loss": (s, train), "val_loss": (vs, val)}
    found = run(series)
    (over,) = [f for f in found if f.code == "overfitting"]
    assert not over.active and 2500 < over.ended < 4500 and "came back to" in over.ended_because
    assert not [f for f in found if f.active and f.severity != "info"]
    assert run(series, chunk=400) == found
