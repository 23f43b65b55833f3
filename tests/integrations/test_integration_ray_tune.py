"""LossPlotCallback against a real local Ray Tune sweep (skipped when Ray is not installed).

One sweep per module: three configs of a function trainable, one of which fails
after two results; each trial must become one run holding exactly what it reported.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray")
pytest.importorskip("ray.tune")
import ray
from ray import tune

from lossviz_widget import LossPlot
from lossviz_widget.integrations.ray_tune import SKIPPED_KEYS, LossPlotCallback, numeric_metrics

ITERATIONS = 4
LRS = [0.1, 0.01, 0.5]  # 0.5 fails after its second result


def trainable(config):
    lr = config["lr"]
    for i in range(ITERATIONS):
        if lr == 0.5 and i == 2:
            raise RuntimeError("diverged")
        tune.report({"loss": 1.0 / (1 + lr * i), "val": {"loss": 2.0 - lr * i, "note": "text"},
                     "lr_used": lr, "nan_metric": math.nan if i == 1 else float(i)})


def _start_ray() -> None:
    """A local 2-CPU Ray. On a loaded machine Ray's raylet can give up waiting for its
    dashboard agent (a fixed 15 s, ray-project/ray#65983): then one more try, and if Ray
    still cannot start, a skip that says so (nothing of ours has run yet)."""
    options = dict(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    for _ in range(2):
        try:
            ray.init(**options)
            return
        except Exception as exc:
            if "timed out during startup" not in str(exc):
                raise
            ray.shutdown()
    pytest.skip("Ray's own startup timed out twice on this machine (its raylet waits 15 s for its "
                "dashboard agent: ray-project/ray#65983); the sweep tests need a running Ray")


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """Run the sweep once with the callback attached; Ray is shut down afterwards."""
    # Ray's workers import `trainable` from this module: they inherit PYTHONPATH from here
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parent), str(Path(__file__).parents[2]),
                                                saved or ""])
    try:
        _start_ray()
        plot = LossPlot(title="sweep")
        callback = LossPlotCallback(plot)
        tuner = tune.Tuner(
            trainable,
            param_space={"lr": tune.grid_search(LRS)},
            run_config=tune.RunConfig(storage_path=str(tmp_path_factory.mktemp("ray")), name="t",
                                      callbacks=[callback], verbose=0),
        )
        results = tuner.fit()
        yield plot, callback, results
        plot.close()
    finally:
        ray.shutdown()
        if saved is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = saved


def _expected(lr: float, n: int) -> dict[str, list[float]]:
    return {
        "loss": [1.0 / (1 + lr * i) for i in range(n)],
        "val/loss": [2.0 - lr * i for i in range(n)],
        "lr_used": [lr] * n,
        "nan_metric": [math.nan if i == 1 else float(i) for i in range(n)],
    }


def test_each_trial_is_a_run_with_exactly_its_results(sweep):
    plot, _callback, _results = sweep
    assert len(plot.runs) == len(LRS)
    by_lr = {}
    for run in plot.runs:
        lrs = set(plot.run(run).history["lr_used"].values)
        assert len(lrs) == 1
        by_lr[lrs.pop()] = run
    assert sorted(by_lr) == sorted(LRS)
    for lr, run in by_lr.items():
        n = ITERATIONS if lr != 0.5 else 2
        history = plot.run(run).history
        assert list(history) == ["loss", "val/loss", "lr_used", "nan_metric"], "bookkeeping or text was logged"
        for name, values in _expected(lr, n).items():
            np.testing.assert_array_equal(history[name].steps, np.arange(1, n + 1), err_msg=f"{run} {name}")
            np.testing.assert_array_equal(history[name].values, values, err_msg=f"{run} {name}")
        assert f"lr={lr}" in run, f"run {run!r} should name its config"


def test_trial_states_are_shown(sweep):
    plot, callback, results = sweep
    assert sorted(callback.status.values()) == ["failed", "finished", "finished"]
    failed = [run for run, state in callback.status.items() if state == "failed"]
    assert len(failed) == 1 and "lr=0.5" in failed[0]
    assert plot.title == "sweep - 3 trials: 2 finished, 1 failed"
    assert results.num_errors == 1


def test_metrics_and_run_name_parameters():
    plot = LossPlot()
    result = {"training_iteration": 3, "loss": 0.5, "time_total_s": 1.5, "val": {"acc": 0.25}, "acc": True}
    assert numeric_metrics(result, None) == {"loss": 0.5, "val/acc": 0.25}
    assert numeric_metrics(result, ("val/acc", "time_total_s", "missing")) == {"val/acc": 0.25, "time_total_s": 1.5}
    assert {"training_iteration", "time_this_iter_s", "timestamp", "pid", "config"} <= SKIPPED_KEYS

    class Trial:  # the two attributes LossPlotCallback reads from a ray Trial
        trial_id, experiment_tag = "abc_00001", "1_lr=0.1"

        def __str__(self):
            return "trainable_abc_00001"

    callback = LossPlotCallback(plot, metrics=(m for m in ["loss"]), run_name=lambda t: f"trial {t.trial_id}")
    callback.on_trial_result(0, [], Trial(), result)
    assert plot.runs == ("trial abc_00001",)
    np.testing.assert_array_equal(plot.run("trial abc_00001").history["loss"].steps, [3.0])
    assert list(plot.run("trial abc_00001").history) == ["loss"]
    with pytest.warns(RuntimeWarning, match="result of trial 'trial abc_00001' not plotted: .*step"):
        callback.on_trial_result(0, [], Trial(), {**result, "training_iteration": 1})  # a restart repeats steps
    np.testing.assert_array_equal(plot.run("trial abc_00001").history["loss"].steps, [3.0])
    plot.close()


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"plot": "x"}, "plot must be a LossPlot or None, got str"),
    ({"metrics": "loss"}, "metrics must be an iterable of metric names"),
    ({"metrics": ["loss", 3]}, "metrics must be an iterable of metric names"),
    ({"run_name": "x"}, "run_name must be a callable"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(TypeError, match=match):
        LossPlotCallback(**kwargs)
