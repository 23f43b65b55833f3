"""The diagnostics on real training curves: the corpus of ``benchmarks/diagnostics`` (NumPy and
PyTorch models trained on scikit-learn's packaged datasets, each with a known condition) and
the scenarios of the issue that asked for it, rebuilt from those real runs.

The corpus data is committed (``benchmarks/diagnostics/corpus``), so nothing is trained here
except the quickstart's own loop (a NumPy MLP, a few seconds)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lossviz_widget import LossPlot, MetricHistory
from lossviz_widget.diagnostics import Diagnostics, DiagnosticsConfig, findings_html

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "benchmarks" / "diagnostics" / "corpus"
LABELS = json.loads((CORPUS / "labels.json").read_text())
RUNS = {r["id"]: r for r in LABELS["runs"]}
ARRAYS = np.load(CORPUS / "corpus.npz")


def series(run_id: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {n: (ARRAYS[f"{run_id}__{n}__steps"], ARRAYS[f"{run_id}__{n}__values"]) for n in RUNS[run_id]["series"]}


def diagnose(data: dict[str, tuple[np.ndarray, np.ndarray]], num_classes: int | None = 10) -> list:
    """Through the public API, as a user replaying a log would."""
    plot = LossPlot(num_classes=num_classes)
    try:
        for name, (s, v) in data.items():
            plot.extend(name, s, v)
        return plot.diagnose()
    finally:
        plot.close()


def codes(found: list) -> list[str]:
    return [f.code for f in found]


def label(run_id: str, prefix: str) -> dict:
    return next(lab for lab in RUNS[run_id]["labels"] if lab["condition"].startswith(prefix))


def test_the_corpus_has_what_the_issue_asks_for() -> None:
    runs = LABELS["runs"]
    assert len(runs) >= 60
    assert {r["build"]["framework"] for r in runs} == {"numpy", "torch"}
    assert len({(r["build"]["framework"], r["build"]["model"]) for r in runs}) >= 3
    conditions = {lab["condition"].split(":")[0] for r in runs for lab in r["labels"]}
    assert {"lr_too_high", "lr_too_low", "overfitting", "plateau", "loss_spike", "noisy"} <= conditions
    kinds = {lab["condition"] for r in runs for lab in r["labels"]}
    assert {"lr_too_high:nan", "lr_too_high:diverging", "lr_too_high:dead", "loss_spike:recovered",
            "loss_spike:not_recovered"} <= kinds
    healthy = [r["build"] for r in runs if r["build"]["condition"] == "healthy"]
    assert {str(b["val_every"]) for b in healthy} >= {"1", "50", "epoch"}
    assert {b["schedule"] for b in healthy} >= {"constant", "step", "cosine", "warmup_cosine"}
    assert len({b["batch"] for b in healthy}) >= 3 and len({b["seed"] for b in healthy}) >= 3


def test_scored_subset_meets_the_targets(tmp_path: Path) -> None:
    """``evaluate.py --subset`` (one run per condition and framework) through the public API."""
    out, raw = tmp_path / "D.md", tmp_path / "d.json"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "diagnostics" / "evaluate.py"), "--subset",
                           "--no-timing", "--out", str(out), "--json", str(raw)],
                          cwd=REPO, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(raw.read_text())
    assert res["healthy_runs"] >= 2 and res["healthy_warnings"] == []
    for cond, c in res["conditions"].items():
        assert c["recall"] == 1.0, (cond, c)
        assert c["max_per_episode"] <= 1, (cond, c)
    assert res["conditions"]["overfitting"]["delay_evals"]  # measured (the full table states how many <= 3)
    assert "| no warning or error on any healthy run | 0 on" in out.read_text()


# -- the issue's scenarios, on real curves ------------------------------------------------------


def test_healthy_run_with_validation_every_step_gets_no_warning_and_no_wall_of_findings() -> None:
    for run_id in ("healthy-np-mlp-2", "healthy-torch-mlp-2", "healthy-np-softmax-1"):
        assert RUNS[run_id]["build"]["val_every"] == 1
        found = diagnose(series(run_id))
        assert [f for f in found if f.severity != "info"] == [], run_id
        assert len(found) <= 5, (run_id, codes(found))
        val = RUNS[run_id]["build"]["names"][1]
        assert sum(f.metric == val for f in found) <= 3, (run_id, codes(found))
        assert "overfitting" not in codes(found)


def test_a_network_killed_by_a_too_high_learning_rate_is_not_learning() -> None:
    dead = [r for r, run in RUNS.items() if run["build"]["condition"] == "lr_too_high"
            and not run["build"]["inject"] and label(r, "lr_too_high")["condition"] == "lr_too_high:dead"]
    assert dead
    for r in dead:
        found = [f for f in diagnose(series(r), RUNS[r]["num_classes"]) if f.code == "not_learning"]
        assert len(found) == 1 and found[0].severity == "warning", r
        assert "ln C" in found[0].message and "learning rate" in found[0].suggestion


def test_a_learning_rate_far_too_low_is_reported() -> None:
    for r, run in RUNS.items():
        if run["build"]["condition"] == "lr_too_low":
            assert "lr_too_low" in codes(diagnose(series(r))), r


def test_overfitting_is_reported_within_three_evaluations() -> None:
    run_id = "overfit-numpy-mlp-4"  # validation every 100 steps, minimum early, rising after
    onset = label(run_id, "overfitting")["step"]
    found = [f for f in diagnose(series(run_id)) if f.code == "overfitting"]
    assert len(found) == 1
    vs = series(run_id)["val_loss"][0]
    assert 0 <= ((vs > onset) & (vs <= found[0].step)).sum() <= 3
    assert found[0].evidence["best_step"] < onset


def test_spikes_are_not_divergence_and_say_whether_they_recovered() -> None:
    for r, run in RUNS.items():
        if run["build"]["condition"] != "loss_spike":
            continue
        lab = label(r, "loss_spike")
        spikes = [f for f in diagnose(series(r)) if f.code == "loss_spike" and f.step >= lab["step"]]
        assert spikes, r
        f = spikes[0]
        recovered = lab["condition"] == "loss_spike:recovered"
        assert abs(f.step - lab["step"]) <= 3, (r, f.step)
        assert ("has not recovered" not in f.message) == recovered, (r, f.message)
        assert f.severity == ("info" if recovered else "warning")


def test_a_loss_spike_says_whether_the_gradient_norm_spiked_first() -> None:
    run_id = "spike-torch-mlp-lr-1"  # the learning rate x20 for one step at 1500: the update blows up
    assert "grad_norm" in RUNS[run_id]["series"]
    f = next(f for f in diagnose(series(run_id)) if f.code == "loss_spike")
    assert "grad_norm" in f.message and "grad_spiked_first" in f.evidence


def test_single_step_spikes_on_a_real_curve_are_spikes_not_divergence() -> None:
    """The issue's case: 8.0 on a low baseline, back the next step (injected into a real curve)."""
    s, v = series("healthy-np-mlp-0")["loss"]
    v = v.copy()
    at = [800, 1200, 1600]
    v[at] = 8.0
    found = diagnose({"loss": (s, v)})
    assert "divergence" not in codes(found)
    spikes = [f for f in found if f.code == "loss_spike"]
    assert [f.step for f in spikes] == [float(s[i]) for i in at]
    assert all(f.severity == "info" and "recovered" in f.message for f in spikes)


def test_a_loss_that_goes_negative_is_said_once() -> None:
    """1M points of a noisy loss, ~5% below zero: one finding, one row, one marker."""
    n = 1_000_000
    rng = np.random.default_rng(0)
    v = 0.2 + 0.12 * rng.normal(size=n)
    assert 0.03 < (v < 0).mean() < 0.07
    d = Diagnostics(DiagnosticsConfig())
    s = np.arange(n, dtype=float)
    for a in range(0, n, 100_000):
        d.update({"loss": MetricHistory(s[: a + 100_000], v[: a + 100_000], s[: a + 100_000])})
    neg = [f for f in d.findings if f.code == "negative_loss"]
    assert len(neg) == 1 and "log-likelihood" in neg[0].message
    assert findings_html(d.findings).count('data-code="negative_loss"') == 1


def test_quickstart_curve_is_not_called_slow_before_it_falls_nor_converged_while_it_falls() -> None:
    """The quickstart notebook's own training loop (NumPy MLP on spirals, 10,000 steps)."""
    nb = json.loads((REPO / "notebooks" / "01_quickstart.ipynb").read_text())
    cells = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    env: dict = {}
    exec(cells[0], env)  # imports
    exec(cells[1], env)  # data
    exec(cells[2], env)  # model
    rng, X, y = env["rng"], env["X_train"], env["y_train"]
    params, grads_of = env["params"], env["loss_and_grads"]
    velocity = {k: np.zeros_like(p) for k, p in params.items()}
    losses = np.empty(10_000)
    for step in range(10_000):
        batch = rng.integers(0, len(X), 256)
        losses[step], _, grads = grads_of(X[batch], y[batch])
        for k in params:
            velocity[k] = 0.9 * velocity[k] - 0.05 * grads[k]
            params[k] += velocity[k]
    steps = np.arange(10_000, dtype=float)
    found = diagnose({"loss": (steps, losses)}, num_classes=None)
    assert "lr_too_low" not in codes(found), [f.message for f in found]
    for f in found:
        if f.code == "converged":  # only where the loss no longer falls on a log-step axis
            i = int(f.step)
            assert np.median(losses[i // 2 - 50 : i // 2 + 50]) < 1.15 * np.median(losses[i - 100 : i + 1]), f.message


@pytest.mark.parametrize("run_id", ["healthy-np-mlp-0", "overfit-torch-mlp-2", "spike-torch-mlp-lr-1"])
def test_findings_do_not_depend_on_how_a_real_run_arrives(run_id: str) -> None:
    data = series(run_id)
    whole = Diagnostics(DiagnosticsConfig(num_classes=10))
    whole.update({n: MetricHistory(s.astype(float), v, s.astype(float)) for n, (s, v) in data.items()})
    framed = Diagnostics(DiagnosticsConfig(num_classes=10))
    last = max(int(s[-1]) for s, _ in data.values())
    for end in range(37, last + 38, 37):
        framed.update({n: MetricHistory(s[s < end].astype(float), v[s < end], s[s < end].astype(float))
                       for n, (s, v) in data.items()}, budget=50)
    while framed.pending:
        framed.update({n: MetricHistory(s.astype(float), v, s.astype(float)) for n, (s, v) in data.items()}, budget=50)
    assert [(f.code, f.metric, f.step) for f in framed.findings] == [(f.code, f.metric, f.step) for f in whole.findings]
    assert not any(math.isnan(f.step) for f in whole.findings)


def test_the_issues_dead_network_600_steps_at_ln_10_is_not_learning() -> None:
    """A real network killed by a far too high learning rate (corpus), cut to 600 steps: with
    ``num_classes`` it is reported as not learning within them."""
    run_id = next(r for r, run in RUNS.items() if run["build"]["condition"] == "lr_too_high"
                  and not run["build"]["inject"] and run["num_classes"] == 10
                  and label(r, "lr_too_high")["condition"] == "lr_too_high:dead")
    data = {n: (s[s < 600], v[s < 600]) for n, (s, v) in series(run_id).items()}
    found = [f for f in diagnose(data, 10) if f.code == "not_learning"]
    assert len(found) == 1 and found[0].step < 600 and "ln C = 2.3" in found[0].message


def test_the_issues_overfitting_curve_is_reported_sooner_than_before() -> None:
    """The issue's shape: validation bottoms at step 100, +7% at 200, +10% at 300, +12% at 400,
    +39% by 3,000, training falling to 0; reported at step 700 before (GL on 3-value means)."""
    s = np.arange(3001.0)
    train = 2 * np.exp(-s / 200) + 0.001 * (3000 - s) / 3000
    vs = np.arange(0, 3001, 100.0)
    val = 0.3 * np.interp(vs, [0, 100, 200, 300, 400, 3000], [2.0, 1.0, 1.07, 1.10, 1.12, 1.39])
    found = [f for f in diagnose({"loss": (s, train), "val_loss": (vs, val)}, None) if f.code == "overfitting"]
    assert len(found) == 1 and found[0].step < 700 and found[0].evidence["best_step"] == 100
