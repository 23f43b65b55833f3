"""Buffers, the store and bad input: clear errors naming the metric, nothing lost."""

import math
import threading

import numpy as np
import pytest

from lossviz_widget import LossPlot
from lossviz_widget._core.buffers import MetricBuffer
from lossviz_widget._core.store import MetricStore


@pytest.fixture
def plot():
    p = LossPlot()
    yield p
    p.close()


def test_buffer_grows_amortized_and_keeps_everything():
    buf = MetricBuffer()
    for i in range(10_000):
        buf.append(float(i), i * 0.5, 1000.0 + i)
    h = buf.snapshot()
    assert len(h) == 10_000
    np.testing.assert_array_equal(h.steps, np.arange(10_000))
    np.testing.assert_array_equal(h.values, np.arange(10_000) * 0.5)
    assert buf.nbytes <= 24 * 16_384  # three float64 columns, capacity at most 2x
    with pytest.raises(ValueError):
        h.values[0] = 1.0  # history is read-only


def test_log_forms_and_history(plot):
    plot.log(loss=1.0, step=0)
    plot.log({"train/loss": 2.0}, step=0)
    plot.log({"val_loss": 3.0}, acc=0.5, step=1)
    assert set(plot.history) == {"loss", "train/loss", "val_loss", "acc"}
    h = plot.history["val_loss"]
    assert h.steps.tolist() == [1.0] and h.values.tolist() == [3.0]
    assert h.wall_time.dtype == np.float64 and abs(h.wall_time[0] - __import__("time").time()) < 60
    assert "loss" in plot.history and len(plot.history) == 4
    with pytest.raises(KeyError, match="no metric 'nope'.*known: 'loss'"):
        plot.history["nope"]


def test_omitted_step_counts_calls(plot):
    for v in (3.0, 2.0, 1.0):
        plot.log(loss=v)
    plot.log(val_loss=0.5)
    assert plot.history["loss"].steps.tolist() == [0, 1, 2]
    assert plot.history["val_loss"].steps.tolist() == [3]
    plot.log(loss=0.1, step=100)
    plot.log(loss=0.0)
    assert plot.history["loss"].steps.tolist()[-2:] == [100, 101]


def test_accepted_number_types(plot):
    plot.log(a=1, b=np.float32(0.5), c=np.int64(7), d=np.array(2.5), e=np.array([3.5]), f=np.float16(1.5),
             step=np.int64(3))
    got = {k: plot.history[k].values[0] for k in "abcdef"}
    assert got == {"a": 1.0, "b": 0.5, "c": 7.0, "d": 2.5, "e": 3.5, "f": 1.5}
    assert plot.history["a"].steps[0] == 3.0


@pytest.mark.parametrize(
    "value, exc, message",
    [
        ("0.5", TypeError, "metric 'loss': expected a number"),
        (None, TypeError, "metric 'loss': expected a number"),
        (True, TypeError, "metric 'loss': got a boolean"),
        (np.bool_(False), TypeError, "metric 'loss': got a boolean"),
        (np.array([1.0, 2.0, 3.0]), ValueError, r"metric 'loss': expected a scalar, got an array of shape \(3,\)"),
        (np.array([True]), TypeError, "metric 'loss': got a boolean"),
        (1 + 2j, TypeError, "metric 'loss'"),
        ([0.5], TypeError, "metric 'loss': expected a number"),
        (10**400, ValueError, "too large"),
    ],
)
def test_bad_values_rejected_and_nothing_lost(plot, value, exc, message):
    plot.log(loss=1.0, acc=0.1, step=0)
    with pytest.raises(exc, match=message):
        plot.log(acc=0.2, loss=value, step=1)  # acc is valid but must not be half-logged
    assert plot.history["loss"].values.tolist() == [1.0]
    assert plot.history["acc"].values.tolist() == [0.1]
    plot.log(loss=0.9, acc=0.2, step=1)  # the plot keeps working
    assert len(plot.history["loss"]) == 2


@pytest.mark.parametrize(
    "step, exc, message",
    [
        (float("nan"), ValueError, "step must be finite"),
        (float("inf"), ValueError, "step must be finite"),
        ("3", TypeError, "step must be a number"),
        (True, TypeError, "step must be a number"),
        (np.array([1, 2]), ValueError, "expected a scalar"),
    ],
)
def test_bad_steps(plot, step, exc, message):
    plot.log(loss=1.0, step=0)
    with pytest.raises(exc, match=message):
        plot.log(loss=2.0, step=step)
    assert plot.history["loss"].values.tolist() == [1.0]


def test_step_going_backwards_names_the_metric_and_keeps_data(plot):
    plot.log(loss=1.0, val_loss=1.5, step=10)
    plot.log(loss=0.9, step=20)
    with pytest.raises(ValueError, match=r"metric 'loss': step 15 goes backwards \(last logged step is 20\)"):
        plot.log(val_loss=1.2, loss=0.8, step=15)
    assert plot.history["val_loss"].steps.tolist() == [10]  # not half-logged
    plot.log(val_loss=1.2, step=15)  # per-metric monotonic: fine for val_loss
    plot.log(loss=0.85, step=20)  # equal steps are allowed
    assert plot.history["loss"].steps.tolist() == [10, 20, 20]


def test_bad_names_and_calls(plot):
    with pytest.raises(TypeError, match="metric names must be str"):
        plot.log({1: 0.5})
    with pytest.raises(ValueError, match="must not be empty"):
        plot.log({"": 0.5})
    with pytest.raises(TypeError, match="at least one metric"):
        plot.log(step=3)
    with pytest.raises(TypeError, match="takes a mapping"):
        plot.log([("loss", 1.0)])
    with pytest.raises(ValueError, match="given both"):
        plot.log({"loss": 1.0}, loss=2.0)
    assert len(plot.history) == 0


def test_nan_inf_kept_and_counted(plot):
    plot.log(loss=1.0)
    plot.log(loss=float("nan"))
    plot.log(loss=np.inf)
    plot.log(loss=-np.inf)
    plot.log(loss=0.5)
    v = plot.history["loss"].values
    assert v[0] == 1.0 and math.isnan(v[1]) and v[2] == np.inf and v[3] == -np.inf and v[4] == 0.5
    plot.flush()
    assert 'data-nonfinite="3"' in plot.shown_html["readout"]
    assert "3 non-finite" in plot.shown_html["status"]


def test_concurrent_logging_from_threads_loses_nothing():
    store = MetricStore()
    n_threads, per_thread = 4, 5000
    barrier = threading.Barrier(n_threads)

    def worker(k):
        barrier.wait()
        for i in range(per_thread):
            store.log({f"m{k}": float(i), "shared": float(k)}, step=None)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    snap = store.snapshot()
    for k in range(n_threads):
        np.testing.assert_array_equal(snap[f"m{k}"].values, np.arange(per_thread))
    shared = snap["shared"]
    assert len(shared) == n_threads * per_thread
    assert np.all(np.diff(shared.steps) > 0)  # implicit steps are unique and ordered across threads
    assert np.bincount(shared.values.astype(int)).tolist() == [per_thread] * n_threads
