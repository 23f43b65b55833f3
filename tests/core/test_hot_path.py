"""The staged hot path of ``log()``: exactly the same history as point-by-point logging.

Calls of known metric names with float values are staged per call signature and moved
into the NumPy columns in bulk (at frame time, on ``history``, or inline when a group
holds ``_STAGE_ROWS`` rows). These tests compare every observable result against a
plain-Python model of ``log()``'s contract, for random mixes of call forms, value
types, steps, bad input and reads, and check threads, frames and memory at rest.
"""

import gc
import math
import random
import threading
import tracemalloc
import types

import numpy as np
import pytest
from drawn import main_line
from waiting import wait_until

import lossviz_widget._core.store as store_module
from lossviz_widget import LossPlot
from lossviz_widget._core.store import MetricStore

try:
    import torch
except ImportError:  # pragma: no cover - torch is a test dependency here
    torch = None


@pytest.fixture
def plot():
    p = LossPlot(on_rewind="raise")  # these tests check the errors of steps going back
    yield p
    p.close()


def same(a, b):
    """Exact equality of float64 columns: NaN positions and the sign of zero included."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and np.array_equal(a, b, equal_nan=True) and np.array_equal(np.signbit(a), np.signbit(b))


class Model:
    """``log()``'s contract in plain Python: what the history must hold after each call."""

    def __init__(self):
        self.data: dict[str, tuple[list, list]] = {}
        self.last = -1.0

    def log(self, metrics: dict, step) -> bool:
        """Apply a valid call; returns False (nothing changes) where ``log()`` must raise."""
        s = self.last + 1.0 if step is None else float(step)
        for name in metrics:
            if name in self.data and self.data[name][0] and s < self.data[name][0][-1]:
                return False
        for name, v in metrics.items():
            steps, values = self.data.setdefault(name, ([], []))
            steps.append(s)
            values.append(float(v))
        self.last = max(self.last, s)
        return True

    def check(self, plot):
        assert list(plot.history) == list(self.data)  # order of first appearance
        for name, (steps, values) in self.data.items():
            h = plot.history[name]
            assert same(h.steps, steps), name
            assert same(h.values, values), name
            assert len(h.wall_time) == len(steps) and np.all(np.isfinite(h.wall_time))
            assert not h.steps.flags.writeable and not h.values.flags.writeable


SIGNATURES = [("loss", "acc"), ("loss",), ("acc", "loss"), ("val_loss", "val_acc"), ("lr",), ("train/loss", "lr")]


def random_value(rng, i, j):
    kind = rng.random()
    base = i + j / 8  # unique per point, so any misplaced point shows
    if kind < 0.70:
        return float(base)
    if kind < 0.75:
        return np.float64(base)
    if kind < 0.80:
        return np.float32(base)
    if kind < 0.84:
        return int(i)
    if kind < 0.88 and torch is not None:
        return torch.tensor(base, dtype=torch.float64)
    return rng.choice([math.nan, math.inf, -math.inf, -0.0, 0.0])


@pytest.mark.parametrize("stage_rows", [3, 1 << 13])
def test_random_calls_match_the_model(monkeypatch, stage_rows):
    # private on purpose: the staging size is a tuning constant; tiny, it moves rows inline on nearly every call
    monkeypatch.setattr(store_module, "_STAGE_ROWS", stage_rows)
    rng = random.Random(stage_rows)
    plot, model = LossPlot(on_rewind="raise"), Model()
    for i in range(4000):
        names = rng.choice(SIGNATURES)
        if i > 2000 and rng.random() < 0.002:
            names = (f"late_{i}",)  # a metric appearing mid-run
        metrics = {n: random_value(rng, i, j) for j, n in enumerate(names)}
        r, top = rng.random(), int(max(model.last, 0))
        if r < 0.45:
            call_step = None
        elif r < 0.9:
            s = top + rng.choice([0, 1, 1, 3])  # equal steps are allowed
            call_step = rng.choice([s, float(s), np.int64(s)])
        else:
            call_step = max(0, top - rng.randint(1, 5))  # may go backwards for some metric
        expect_ok = model.log(dict(metrics), call_step)
        form = rng.random()
        try:
            if form < 0.6:
                plot.log(**metrics, step=call_step)
            elif form < 0.8:
                plot.log(dict(metrics), step=call_step)
            elif form < 0.9:
                plot.log(types.MappingProxyType(dict(metrics)), step=call_step)
            else:
                first, *rest = metrics
                plot.log({first: metrics[first]}, **{k: metrics[k] for k in rest}, step=call_step)
        except ValueError as exc:
            assert not expect_ok, exc
            assert "goes backwards" in str(exc) and "Nothing from this call was logged" in str(exc)
        else:
            assert expect_ok, f"call {i} should have raised"
        if rng.random() < 0.01:  # a bad value among good ones: nothing from that call is logged
            bad = dict(metrics)
            bad[rng.choice(names)] = rng.choice(["0.5", None, True, [1.0], np.ones(3)])
            with pytest.raises((TypeError, ValueError), match="metric '"):
                plot.log(**bad)
        if rng.random() < 0.02:
            model.check(plot)
        elif rng.random() < 0.02:
            name = rng.choice(list(model.data))
            assert same(plot.history[name].values, model.data[name][1])
    model.check(plot)
    plot.close()


def test_interleaved_fast_and_general_calls_keep_each_metrics_order(plot):
    for i in range(100):
        plot.log(loss=float(i), step=i)  # staged
        if i % 7 == 0:
            plot.log(loss=np.float32(i + 0.5), step=i)  # general path, same metric, same step
        if i % 11 == 0:
            plot.log({"acc": 0.5, "loss": i + 0.25}, step=i)  # another group sharing "loss"
    h = plot.history["loss"]
    expected = []
    for i in range(100):
        expected.append(float(i))
        if i % 7 == 0:
            expected.append(i + 0.5)
        if i % 11 == 0:
            expected.append(i + 0.25)
    assert h.values.tolist() == expected
    assert np.all(np.diff(h.steps) >= 0)


def test_new_metric_mid_run_and_implicit_steps(plot):
    for i in range(5000):
        plot.log(loss=1.0 / (i + 1), lr=1e-3)
    plot.log(loss=0.1, grad_norm=2.0)  # a new signature and a new metric after 5000 staged calls
    plot.log(loss=0.09, lr=1e-3)
    assert list(plot.history) == ["loss", "lr", "grad_norm"]
    assert plot.history["loss"].steps.tolist() == list(range(5002))
    assert plot.history["grad_norm"].steps.tolist() == [5000.0]
    assert plot.history["lr"].steps.tolist() == [*range(5000), 5001]


def test_bad_value_after_many_staged_calls_leaves_history_exact(plot):
    for i in range(10_000):
        plot.log(loss=float(i), acc=i / 10_000, step=i)
    for bad in ("x", None, True, 1 + 2j, [0.5], np.array([1.0, 2.0])):
        with pytest.raises((TypeError, ValueError), match="metric 'acc'"):
            plot.log(loss=-1.0, acc=bad, step=10_000)
    with pytest.raises(ValueError, match="step must be finite"):
        plot.log(loss=-1.0, acc=0.5, step=float("nan"))
    with pytest.raises(TypeError, match="step must be a number"):
        plot.log(loss=-1.0, acc=0.5, step=True)
    with pytest.raises(ValueError, match="too large"):
        plot.log(loss=-1.0, acc=0.5, step=10**400)
    # the last step is still staged, not yet in the columns: the check must see it
    with pytest.raises(ValueError, match=r"metric 'loss': step 9998 goes backwards \(last logged step is 9999\)"):
        plot.log(loss=-1.0, acc=0.5, step=9998)
    assert plot.history["loss"].values.tolist() == [float(i) for i in range(10_000)]
    assert plot.history["acc"].steps.tolist() == list(range(10_000))
    plot.log(loss=-1.0, acc=0.5, step=9999)  # equal steps are fine, and the plot keeps working
    assert len(plot.history["loss"]) == 10_001


def test_nonfinite_and_signed_zero_survive_staging(plot):
    values = [1.0, math.nan, math.inf, -math.inf, -0.0, 0.0, 5e-324, 1.7976931348623157e308]
    for v in values:
        plot.log(loss=v)
    assert same(plot.history["loss"].values, values)


def test_str_subclass_names_are_still_rejected(plot):
    class Name(str):
        pass

    plot.log({"loss": 1.0})
    with pytest.raises(TypeError, match="metric names must be str"):
        plot.log({Name("loss"): 2.0})  # equal to a known name, but not a str
    with pytest.raises(ValueError, match="must not be empty"):
        plot.log(**{"": 1.0})
    assert plot.history["loss"].values.tolist() == [1.0]


def test_logged_dict_is_copied_not_kept(plot):
    d = {"loss": 1.0}
    plot.log(d)
    plot.log(d)
    d["loss"] = "changed later"  # must not reach the staged rows
    assert plot.history["loss"].values.tolist() == [1.0, 1.0]


def test_snapshots_between_chunks_are_stable_views(monkeypatch):
    monkeypatch.setattr(store_module, "_STAGE_ROWS", 64)  # private on purpose: many moves inline (as above)
    store = MetricStore()
    held = []
    for i in range(5000):
        store.log_kwargs({"loss": float(i), "acc": -float(i)}, i)
        if i % 333 == 0:
            held.append((i + 1, store.snapshot()))
    final = store.snapshot()
    for n, snap in held:  # old views never change, even after the columns grew and moved
        assert len(snap["loss"]) == n
        assert same(snap["loss"].values, final["loss"].values[:n])
        assert same(snap["acc"].steps, final["acc"].steps[:n])
    assert same(final["loss"].steps, np.arange(5000))


def test_staging_is_bounded_without_frames():
    n = 200_000
    store = MetricStore()
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(n):  # never a snapshot: whatever is staged stays staged
            store.log_kwargs({"loss": 0.5, "acc": float(i)}, i)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # staged rows (Python floats in lists, ~30 B a number, ~25 MB here if never moved) go into the
    # columns inline once a group holds one frame's worth: at most ~1 MB stays staged
    assert held < store.nbytes + 2 * 1024 * 1024
    assert same(store.get("acc").values, np.arange(n))


@pytest.mark.skipif(torch is None, reason="needs torch")
def test_device_tensor_between_staged_calls_keeps_order(plot):
    plot.log(loss=1.0, step=0)
    plot.log(loss=2.0, step=1)  # staged
    plot.log(loss=torch.tensor(0.5, device="meta") * 2, step=2)  # deferred: appended directly, never read
    plot.log(loss=4.0, step=3)  # staged again
    with pytest.warns(RuntimeWarning, match="could not be copied"):
        h = plot.history["loss"]
    # the unreadable value stays in its place among the points (NaN: its copy failed)
    assert same(h.values, [1.0, 2.0, math.nan, 4.0]) and h.steps.tolist() == [0, 1, 2, 3]


@pytest.mark.skipif(torch is None, reason="needs torch")
def test_cpu_tensors_of_every_real_dtype_match_float(plot):
    dtypes = [torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.int8, torch.int16,
              torch.int32, torch.int64, torch.uint8]
    for dt in dtypes:
        t = torch.tensor(1.5 if dt.is_floating_point else 3, dtype=dt)
        plot.log(**{str(dt): t, f"{dt} size-1": t.reshape(1)})
        assert plot.history[str(dt)].values.tolist() == [float(t)]
        assert plot.history[f"{dt} size-1"].values.tolist() == [float(t)]
    w = torch.tensor(2.0, requires_grad=True)
    plot.log(graph=w * 3)  # part of an autograd graph: read without keeping it
    assert plot.history["graph"].values.tolist() == [6.0]
    with pytest.raises(ValueError, match=r"metric 'v': expected a scalar, got a tensor of shape \(2,\)"):
        plot.log(v=torch.zeros(2))
    with pytest.raises(TypeError, match="metric 'b': got a boolean"):
        plot.log(b=torch.tensor(True))


def test_threads_logging_while_frames_read():
    store = MetricStore()
    n_threads, per_thread = 4, 20_000
    barrier = threading.Barrier(n_threads + 1)
    stop = threading.Event()
    snaps = []

    def worker(k):
        barrier.wait()
        for i in range(per_thread):
            store.log_kwargs({f"m{k}": float(i), "shared": float(k)})

    def reader():
        barrier.wait()
        while not stop.is_set():
            snaps.append(store.snapshot())

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(n_threads)]
    r = threading.Thread(target=reader)
    for t in [*threads, r]:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    r.join()
    final = store.snapshot()
    for k in range(n_threads):
        assert same(final[f"m{k}"].values, np.arange(per_thread))
    shared = final["shared"]
    assert len(shared) == n_threads * per_thread
    assert np.all(np.diff(shared.steps) > 0)  # implicit steps unique and ordered across threads
    assert np.bincount(shared.values.astype(int)).tolist() == [per_thread] * n_threads
    assert len(snaps) > 1
    lengths = [len(s.get("shared", ())) for s in snaps]
    assert lengths == sorted(lengths)
    for snap in snaps[:: max(1, len(snaps) // 50)]:  # every snapshot is a consistent prefix
        for name, h in snap.items():
            n = len(h)
            assert len(h.values) == len(h.wall_time) == n
            assert same(h.steps, final[name].steps[:n]) and same(h.values, final[name].values[:n])


@pytest.mark.parametrize("kind", [float, np.float32])  # the hot path, and the general path's staging
def test_live_frames_show_every_staged_point(kind, as_in_a_kernel):
    p = LossPlot(smoothing=0.0, max_points=100_000)  # frames on the background thread, as in a kernel

    def drawn(count):  # the readout row of loss, as the last frame drew it
        return f'data-metric="loss" data-step="{count - 1}" data-count="{count}"' in p.shown_html["readout"]

    n = 30_000
    for i in range(n):
        p.log(loss=kind(i), acc=kind(0.5), step=i)
    # no flush(): the frames requested by the calls that started each batch cover all of it
    assert wait_until(lambda: drawn(n), timeout=30)
    assert main_line(p, "loss", "loss").x[-1] == n - 1
    p.log(loss=kind(1.0), acc=kind(0.5), step=n)  # one more after a pause: a trailing frame again
    assert wait_until(lambda: drawn(n + 1), timeout=30)
    p.close()


def test_memory_at_rest_is_the_float64_columns_only():
    n = 100_000
    gc.collect()
    tracemalloc.start()
    try:
        store = MetricStore()
        before = tracemalloc.get_traced_memory()[0]
        for i in range(n):
            store.log_kwargs({"loss": 0.5 + i, "acc": 0.9, "val_loss": 0.6, "lr": 1e-3}, i)
        snap = store.snapshot()  # at rest: nothing staged any more (held, below: the columns only)
        del snap
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    columns = store.nbytes
    snap = store.snapshot()  # the 4 metrics logged together share one step/wall-time pair of columns
    assert all(np.shares_memory(snap["loss"].steps, h.steps) for h in snap.values())
    # float64 values + one float64 step/wall pair; O(1) amortized growth: a column half full gets its
    # next, twice as long array prepared and switches to it once ready, so its capacity stays below
    # four times its points (address space: rows past an eighth beyond the last are never written)
    assert (8 * 4 + 16) * n <= columns < 4 * (8 * 4 + 16) * n
    assert held < columns + 256 * 1024  # no Python objects per point left behind
