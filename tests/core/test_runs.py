"""Several runs in one plot: logging API, per-run history, extend(), bad input."""

from __future__ import annotations

import numpy as np
import pytest

from lossviz_widget import LossPlot

HTML_NAME = "<b>x</b>&\"'"


@pytest.fixture
def plot():
    p = LossPlot()
    yield p
    p.close()


def test_runs_keep_their_own_history(plot):
    a = plot.run("lr=1e-3")
    for i in range(5):
        a.log(loss=1.0 / (i + 1), step=i)
        plot.log(loss=2.0 + i, step=10 * i, run="lr=1e-2")
        plot.log({"val_loss": 3.0 + i}, step=10 * i, run="lr=1e-2")
    plot.log(loss=7.0, step=3)  # the default run
    assert plot.runs == ("lr=1e-3", "lr=1e-2", "default")
    ha = plot.run("lr=1e-3").history
    assert list(ha) == ["loss"]
    np.testing.assert_array_equal(ha["loss"].values, [1.0, 0.5, 1 / 3, 0.25, 0.2])
    np.testing.assert_array_equal(ha["loss"].steps, np.arange(5.0))
    hb = plot.run("lr=1e-2").history
    assert list(hb) == ["loss", "val_loss"]
    np.testing.assert_array_equal(hb["loss"].values, [2.0, 3.0, 4.0, 5.0, 6.0])
    np.testing.assert_array_equal(hb["val_loss"].steps, [0.0, 10.0, 20.0, 30.0, 40.0])
    # with several runs, plot.history is the default run's
    np.testing.assert_array_equal(plot.history["loss"].values, [7.0])
    with pytest.raises(KeyError, match="use plot.run"):
        plot.history["val_loss"]


def test_history_is_the_only_run(plot):
    plot.log(loss=1.0, run="only")
    plot.log(loss=2.0, run="only")
    assert plot.runs == ("only",)
    np.testing.assert_array_equal(plot.history["loss"].values, [1.0, 2.0])
    np.testing.assert_array_equal(plot.history["loss"].steps, [0.0, 1.0])  # implicit steps count per run


def test_implicit_steps_count_per_run(plot):
    for _ in range(3):
        plot.log(loss=1.0, run="a")
    plot.log(loss=1.0, run="b")
    assert plot.run("a").history["loss"].steps.tolist() == [0.0, 1.0, 2.0]
    assert plot.run("b").history["loss"].steps.tolist() == [0.0]


def test_a_run_that_was_only_named_is_not_listed(plot):
    plot.run("later")
    plot.log(loss=1.0)
    assert plot.runs == ("default",)
    assert "later" not in plot.runs


def test_run_handle_logs_a_metric_called_run(plot):
    r = plot.run("a")
    r.log(run=0.5)  # on a handle, run= is an ordinary metric
    assert r.history["run"].values.tolist() == [0.5]
    assert r.name == "a"


@pytest.mark.parametrize("bad, exc", [(3, TypeError), (b"a", TypeError), (("a",), TypeError), ("", ValueError)])
def test_bad_run_names_are_rejected(plot, bad, exc):
    with pytest.raises(exc, match="run name"):
        plot.run(bad)
    with pytest.raises(exc, match="run name"):
        plot.extend("loss", [0], [1.0], run=bad)
    with pytest.raises(exc, match="run name"):
        plot.log(loss=1.0, run=bad)
    with pytest.raises(exc, match="run name"):
        plot.log({"loss": 1.0}, run=bad)
    with pytest.raises(TypeError, match="run names must be str"):
        plot.run(None)  # (run=None in log()/extend() is the default run)
    assert plot.runs == ()


def test_extend_appends_in_bulk_and_keeps_nonfinite(plot):
    plot.log(loss=0.5, step=0, run="a")
    plot.extend("loss", np.arange(1, 6), [1.0, np.nan, np.inf, -np.inf, 2.0], wall_time=np.arange(5) + 100.0,
                run="a")
    plot.run("a").log(loss=3.0, step=6)
    h = plot.run("a").history["loss"]
    np.testing.assert_array_equal(h.steps, np.arange(7.0))
    np.testing.assert_array_equal(h.values, [0.5, 1.0, np.nan, np.inf, -np.inf, 2.0, 3.0])
    np.testing.assert_array_equal(h.wall_time[1:6], np.arange(5) + 100.0)
    plot.extend("loss", [], [])  # nothing to add: fine
    assert plot.runs == ("a",)


def test_extend_accepts_tensors():
    torch = pytest.importorskip("torch")
    p = LossPlot()
    try:
        p.extend("loss", torch.arange(3), torch.tensor([0.5, 0.25, 0.125], requires_grad=True) * 1)
        np.testing.assert_array_equal(p.history["loss"].values, [0.5, 0.25, 0.125])
    finally:
        p.close()


@pytest.mark.parametrize(
    "steps, values, wall, exc, match",
    [
        ([5, 6], [1.0], None, ValueError, "same length"),
        ([5, 6], ["a", "b"], None, TypeError, "values must hold real numbers"),
        ([5, 6], [True, False], None, TypeError, "booleans"),
        ([5, 6], [1 + 2j, 1.0], None, TypeError, "values"),
        ([5, None], [1.0, 2.0], None, TypeError, "steps"),
        ([5, 6], [[1.0, 2.0]], None, ValueError, "1-D"),
        ([5, 6], 1.0, None, TypeError, "values must be a 1-D"),
        ([6, 5], [1.0, 2.0], None, ValueError, "non-decreasing"),
        ([5, np.nan], [1.0, 2.0], None, ValueError, "finite"),
        ([1, 6], [1.0, 2.0], None, ValueError, "goes backwards"),
        ([5, 6], [1.0, 2.0], [1.0, np.inf], ValueError, "finite"),
        ([5, 6], [1.0, 2.0], "now", TypeError, "wall_time"),
    ],
)
def test_extend_bad_input_loses_nothing(plot, steps, values, wall, exc, match):
    plot.log(loss=0.5, step=4, run="a")
    plot.log(loss=0.6, step=4, run="a")  # a staged row must survive too
    with pytest.raises(exc, match=match):
        plot.extend("loss", steps, values, wall, run="a")
    h = plot.run("a").history["loss"]
    assert h.values.tolist() == [0.5, 0.6] and h.steps.tolist() == [4.0, 4.0]
    plot.extend("loss", [5, 6], [1.0, 2.0], run="a")  # and the run goes on
    assert plot.run("a").history["loss"].values.tolist() == [0.5, 0.6, 1.0, 2.0]


def test_extend_bad_metric_name(plot):
    with pytest.raises(TypeError, match="metric names must be str"):
        plot.extend(3, [0], [1.0])
    with pytest.raises(ValueError, match="must not be empty"):
        plot.extend("", [0], [1.0])
    assert plot.runs == ()


def test_runs_from_threads_stay_apart(plot):
    import threading

    def train(name: str, offset: float) -> None:
        r = plot.run(name)
        for i in range(2000):
            r.log(loss=offset + i, step=i)

    threads = [threading.Thread(target=train, args=(f"run{k}", 10_000.0 * k)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(plot.runs) == [f"run{k}" for k in range(4)]
    for k in range(4):
        h = plot.run(f"run{k}").history["loss"]
        np.testing.assert_array_equal(h.values, 10_000.0 * k + np.arange(2000.0))
