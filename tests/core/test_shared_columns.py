"""Metrics logged together share one step/wall-time timeline; diverging metrics keep exact histories."""

import random
import threading

import numpy as np
import pytest

from lossviz_widget import LossPlot, MetricHistory
from lossviz_widget._core import buffers
from lossviz_widget._core.buffers import MetricBuffer, append_row, columns_nbytes, extend_rows
from lossviz_widget._core.store import MetricStore


def sharing(store: MetricStore) -> list[set[str]]:
    """The metrics that share one step/wall-time timeline: their snapshots' step columns are views
    of one array (a metric with its own timeline has its own)."""
    snap = store.snapshot()
    groups: list[set[str]] = []
    for name, h in snap.items():
        group = next((g for g in groups if np.shares_memory(snap[next(iter(g))].steps, h.steps)), None)
        if group is None:
            groups.append({name})
        else:
            group.add(name)
    return groups


def test_metrics_logged_together_share_one_timeline_and_cost_12_bytes_per_point():
    store = MetricStore()
    n = 50_000
    for i in range(n):
        store.log_kwargs({"loss": 1.0 / (i + 1), "acc": 0.5, "lr": 1e-3, "grad": float(i)}, i)
    snap = store.snapshot()
    assert sharing(store) == [{"loss", "acc", "lr", "grad"}]
    for name in ("loss", "acc", "lr", "grad"):
        np.testing.assert_array_equal(snap[name].steps, np.arange(n))
    np.testing.assert_array_equal(snap["grad"].values, np.arange(n))
    assert np.shares_memory(snap["loss"].steps, snap["grad"].steps)  # views, not copies
    # 8 B value + 16 B step/wall shared by 4 = 12 B per point per metric, times the growth slack: below
    # 4 (a column half full switches to its next, twice as long array once the helper thread has it
    # ready; once that thread is idle, the next snapshot has switched every column)
    turn = threading.Event()
    assert buffers._memory.submit(turn.set) and turn.wait(10)
    store.snapshot()
    assert store.nbytes / (4 * n) < 12 * 4
    capacity = store.nbytes // (12 * 4)
    assert store.nbytes == 12 * 4 * capacity and capacity >= n  # every column at the same capacity


def _check(store, model):
    snap = store.snapshot()
    assert set(snap) == set(model)
    for name, points in model.items():
        h = snap[name]
        assert h.steps.tolist() == [p[0] for p in points], name
        assert h.values.tolist() == [p[1] for p in points], name
        walls = [p[2] for p in points]
        known = [(i, w) for i, w in enumerate(walls) if w is not None]
        assert all(h.wall_time[i] == w for i, w in known), name
        assert len(h.steps) == len(h.values) == len(h.wall_time)
    return snap


def test_mixed_grouped_single_and_extended_logs_keep_exact_histories():
    rng = random.Random(4)
    store = MetricStore()
    model: dict[str, list] = {}
    names = ["loss", "acc", "lr", "grad"]
    groups = [tuple(names), ("loss", "acc"), ("lr",), ("acc", "grad", "loss"), tuple(names)]
    step = 0
    held = []  # histories handed out earlier, with what they held then
    for _ in range(3000):
        r = rng.random()
        if r < 0.02:  # one series extended alone, with explicit wall times
            name = rng.choice(names)
            k = rng.randint(0, 20)
            steps = np.arange(step, step + k, dtype=float)
            values = rng.random() + steps
            wall = 1e9 + steps
            store.extend(name, steps, values, wall)
            model.setdefault(name, []).extend(zip(steps.tolist(), values.tolist(), wall.tolist()))
            step += k
        elif r < 0.05:
            held.append((_check(store, model), {k: list(v) for k, v in model.items()}))
        else:
            group = rng.choice(groups) if r < 0.2 else groups[0]
            values = {name: rng.random() for name in group}
            store.log(values, step=step)
            for name, v in values.items():
                model.setdefault(name, []).append((float(step), v, None))
            step += rng.randint(0, 1)
    snap = _check(store, model)
    for name in names:  # metrics logged in the same call got the same wall time, in order
        assert (np.diff(snap[name].wall_time[snap[name].wall_time > 2e9]) >= 0).all()
    for old, then in held:  # earlier views are unchanged by everything logged and split since
        for name, points in then.items():
            assert old[name].values.tolist() == [p[1] for p in points]
            assert old[name].steps.tolist() == [p[0] for p in points]


def test_a_metric_that_leaves_its_group_copies_the_timeline_and_the_rest_keep_sharing():
    store = MetricStore()
    for i in range(10):
        store.log({"loss": float(i), "acc": 0.5, "lr": 0.1}, step=i)
    assert sharing(store) == [{"loss", "acc", "lr"}]
    before = store.get("acc")
    store.log({"lr": 0.2}, step=10)  # lr alone: it takes a copy, loss and acc keep the original
    store.log({"loss": 1.0, "acc": 0.25}, step=11)
    snap = store.snapshot()
    assert sharing(store) == [{"loss", "acc"}, {"lr"}]
    assert snap["lr"].steps.tolist() == list(range(11))
    assert snap["loss"].steps.tolist() == [*range(10), 11]
    assert snap["acc"].values.tolist() == [0.5] * 10 + [0.25]
    assert before.steps.tolist() == list(range(10))  # a view handed out before is untouched
    assert np.array_equal(snap["lr"].wall_time[:10], snap["loss"].wall_time[:10])


def test_a_subset_of_a_group_leaves_together_with_one_copy():
    bufs = [MetricBuffer() for _ in range(4)]
    extend_rows(bufs, np.arange(5.0), np.zeros(5), [np.full(5, float(j)) for j in range(4)])
    assert len({id(b.timeline) for b in bufs}) == 1 and bufs[0].timeline.members == 4
    assert sum(b.nbytes for b in bufs) == columns_nbytes(bufs)  # each buffer's share adds up
    append_row(bufs[:2], 5.0, 1.0, [10.0, 11.0])
    assert bufs[0].timeline is bufs[1].timeline and bufs[0].timeline.members == 2
    assert bufs[2].timeline is bufs[3].timeline and bufs[2].timeline.members == 2
    assert sum(b.nbytes for b in bufs) == columns_nbytes(bufs)
    assert bufs[0].snapshot().steps.tolist() == [0, 1, 2, 3, 4, 5]
    assert bufs[3].snapshot().steps.tolist() == [0, 1, 2, 3, 4]
    assert bufs[1].snapshot().wall_time.tolist() == [0, 0, 0, 0, 0, 1]


def test_buffers_with_different_pasts_stay_private_and_exact():
    a, b = MetricBuffer(), MetricBuffer()
    a.append(0.0, 1.0, 5.0)
    append_row([a, b], 1.0, 6.0, [2.0, 3.0])
    assert a.timeline is not b.timeline
    assert a.snapshot().steps.tolist() == [0.0, 1.0] and a.snapshot().values.tolist() == [1.0, 2.0]
    assert b.snapshot().steps.tolist() == [1.0] and b.snapshot().wall_time.tolist() == [6.0]


def test_loaded_histories_keep_exact_columns_and_take_new_logs(tmp_path):
    store = MetricStore()
    store.load({
        "loss": MetricHistory(np.arange(3.0), np.array([3.0, 2.0, 1.0]), np.array([10.0, 11.0, 12.0])),
        "acc": MetricHistory(np.array([0.0, 2.0]), np.array([0.1, 0.2]), np.array([10.0, 12.0])),
    })
    store.log({"loss": 0.5, "acc": 0.3}, step=3)
    snap = store.snapshot()
    assert snap["loss"].steps.tolist() == [0, 1, 2, 3] and snap["loss"].values.tolist() == [3, 2, 1, 0.5]
    assert snap["acc"].steps.tolist() == [0, 2, 3] and snap["acc"].wall_time[:2].tolist() == [10, 12]
    assert snap["loss"].wall_time[3] == snap["acc"].wall_time[2]
    assert sharing(store) == [{"loss"}, {"acc"}]  # different pasts


def test_loading_metrics_logged_together_shares_their_timeline_again():
    steps, wall = np.arange(1000.0), 1e9 + np.arange(1000.0)
    store = MetricStore()
    store.load({
        "loss": MetricHistory(steps, np.sin(steps), wall),
        "val_loss": MetricHistory(steps[::10], np.cos(steps[::10]), wall[::10]),
        "acc": MetricHistory(steps.copy(), np.cos(steps), wall.copy()),
        "val_acc": MetricHistory(steps[::10].copy(), np.sin(steps[::10]), wall[::10].copy()),
    })
    assert store.names() == ["loss", "val_loss", "acc", "val_acc"]
    assert sharing(store) == [{"loss", "acc"}, {"val_loss", "val_acc"}]
    snap = store.snapshot()
    np.testing.assert_array_equal(snap["acc"].values, np.cos(steps))
    np.testing.assert_array_equal(snap["val_acc"].wall_time, wall[::10])
    store.log({"loss": 0.0}, step=1000)  # loss diverges: acc keeps its exact history
    snap = store.snapshot()
    assert len(snap["loss"]) == 1001 and len(snap["acc"]) == 1000
    np.testing.assert_array_equal(snap["acc"].steps, steps)


def test_plot_history_after_grouped_and_single_logs_and_export_round_trip(tmp_path):
    plot = LossPlot()
    try:
        for i in range(300):
            plot.log(loss=1.0 / (i + 1), acc=i / 300, step=i)
            if i % 100 == 99:
                plot.log(loss=-1.0, step=i)  # an extra point of one metric at the same step
        h = plot.history
        assert len(h["acc"]) == 300 and len(h["loss"]) == 303
        assert h["loss"].values[100] == -1.0 and h["loss"].steps[100] == 99
        other = LossPlot.load(plot.export(tmp_path / "run.csv"))
        try:
            other.log(loss=0.0, acc=1.0, step=300)  # loaded series, then logged together
            for name in ("loss", "acc"):
                np.testing.assert_array_equal(other.history[name].steps[:-1], h[name].steps)
                np.testing.assert_array_equal(other.history[name].values[:-1], h[name].values)
                assert other.history[name].steps[-1] == 300
        finally:
            other.close()
    finally:
        plot.close()


def test_device_tensors_logged_together_share_the_timeline():
    torch = pytest.importorskip("torch")
    store = MetricStore()
    for i in range(5):
        store.log({"loss": torch.tensor(float(i)), "acc": torch.tensor(0.5)}, step=i)
    snap = store.snapshot()
    assert sharing(store) == [{"loss", "acc"}]
    assert snap["loss"].values.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0] and snap["acc"].steps.tolist() == list(range(5))


@pytest.mark.parametrize("madvise", [True, False], ids=["madvise", "no-madvise"])
@pytest.mark.parametrize("seed", range(4))
def test_columns_grown_ahead_of_need_hold_exactly_what_was_logged(monkeypatch, seed, madvise):
    """Long columns found three quarters full at a snapshot are copied into their next arrays by
    a helper thread (so the append that fills them copies only the rest): through any
    interleaving of row appends, bulk appends, snapshots and a rewind, every snapshot holds
    exactly what was logged, and views handed out earlier never change; also where memory cannot
    be mapped ahead with ``madvise`` (the next arrays' rows are then touched by writing zeros,
    which must never reach a row already written)."""
    monkeypatch.setattr(buffers, "AHEAD_FROM", 256)
    monkeypatch.setattr(buffers, "AHEAD_SLICE", 37)
    monkeypatch.setattr(buffers, "PREFAULT_FROM", 300)  # growth copies map their memory first too
    if not madvise:
        monkeypatch.setattr(buffers._memory, "_madvise", None)
    rng = random.Random(seed)
    shared, alone = [MetricBuffer(), MetricBuffer()], MetricBuffer()
    expected: dict[int, list[tuple[float, float, float]]] = {id(b): [] for b in (*shared, alone)}
    views: list[tuple[MetricHistory, list]] = []
    step = 0.0
    for _ in range(400):
        action = rng.random()
        if action < 0.5:
            k = rng.choice([1, 1, 1, 5, 90])
            steps = step + np.arange(k, dtype=float)
            wall = 1e9 + steps
            cols = [rng.random() + steps for _ in shared]
            if k == 1:
                append_row(shared, float(steps[0]), float(wall[0]), [float(c[0]) for c in cols])
            else:
                extend_rows(shared, steps, wall, cols)
            alone.extend_columns(steps, steps * 2, wall)
            for buf, c in zip(shared, cols):
                expected[id(buf)] += list(zip(steps.tolist(), c.tolist(), wall.tolist()))
            expected[id(alone)] += list(zip(steps.tolist(), (steps * 2).tolist(), wall.tolist()))
            step += k
        elif action < 0.98:
            for buf in (*shared, alone):
                h = buf.snapshot()
                want = expected[id(buf)]
                assert list(zip(h.steps.tolist(), h.values.tolist(), h.wall_time.tolist())) == want
                views.append((h, list(want)))
        else:  # a rewind purges the last points of every buffer
            cut = step - rng.randint(1, 50)
            buffers.truncate_at([*shared, alone], cut)
            for key in expected:
                expected[key] = [p for p in expected[key] if p[0] < cut]
            step = max(cut, 0.0)
    assert len(expected[id(alone)]) > 4 * 256  # grown past the threshold several times
    for h, want in views:
        assert list(zip(h.steps.tolist(), h.values.tolist(), h.wall_time.tolist())) == want


def test_log_moves_grow_long_columns_ahead_without_a_frame(monkeypatch):
    """A loop that logs with no frame drawn (a script, an unwatched plot): the moves of staged
    rows into the columns start each long column's next array on the helper thread once it is half
    full, so the doubling itself never copies a long column on the logging thread (on a VM such a
    copy into fresh memory cost ``log()`` 20-70 ms per column at 2^19 rows), and every point
    logged is there, in order."""
    copied_inline: list[int] = []
    grown = buffers._grown

    def spy(a: np.ndarray, n: int, needed: int) -> np.ndarray:
        if len(a) >= 1 << 15:  # 256 KB and longer
            copied_inline.append(n)
        return grown(a, n, needed)

    monkeypatch.setattr(buffers, "_grown", spy)
    store = MetricStore()
    n = 1 << 17
    for i in range(n):
        store.log_kwargs({"loss": float(i), "acc": 0.5 * i}, i)
        if i % 4096 == 0:  # the helper thread gets its turn, as it does beside any real loop
            turn = threading.Event()
            assert buffers._memory.submit(turn.set) and turn.wait(10)  # (after the jobs before it)
    snap = store.snapshot()
    assert copied_inline == []
    np.testing.assert_array_equal(snap["loss"].steps, np.arange(n, dtype=float))
    np.testing.assert_array_equal(snap["acc"].values, 0.5 * np.arange(n))
    assert np.shares_memory(snap["loss"].steps, snap["acc"].steps)
