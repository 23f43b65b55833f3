"""The diagnostics' fast paths against plain reference implementations, budgeted catch-up, and
bounded temporaries. The references (the sequential ReduceLROnPlateau loop, per-block judging,
a per-window gather) live here, not in the package."""

import math
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lossviz_widget import MetricHistory
from lossviz_widget.diagnostics import Diagnostics, PlateauTracker, engine
from lossviz_widget.diagnostics.findings import row_stats
from lossviz_widget.diagnostics.generalization import _gathered_means, _window_means  # private: pinned bit for bit
from lossviz_widget.diagnostics.series import BlockTrends

SPECIALS = [math.nan, math.inf, -math.inf]


# -- PlateauTracker: the plain sequential loop is the oracle ----------------------------------------


class SequentialPlateau(PlateauTracker):
    """PyTorch's step() once per value, as the tracker did before its vectorized scans.

    A subclass, so it shares the tracker's own threshold rule (``_improvement_bound``)."""

    def feed(self, values):
        opened = []
        scale, offset, minimize = self._improvement_bound()
        reopen = (1.0 - self.reopen) if minimize else (1.0 + self.reopen)
        for i, a in enumerate(np.asarray(values, dtype=float).tolist(), start=self.count):
            bound = self.best * scale + offset
            if (a < bound) if minimize else (a > bound):
                self.best, self.best_index, self.num_bad = a, i, 0
                if self.in_plateau and ((a < self.close_bound) if minimize else (a > self.close_bound)):
                    self.in_plateau = False
            else:
                self.num_bad += 1
            if self.cooldown_counter > 0:
                self.cooldown_counter -= 1
                self.num_bad = 0
            if self.num_bad > self.patience:
                self.num_reductions += 1
                self.reductions.append(i)
                self.cooldown_counter, self.num_bad = self.cooldown, 0
                if not self.in_plateau:
                    self.in_plateau, self.close_bound = True, self.best * reopen
                    opened.append((i, self.best, self.best_index))
        self.count += len(values)
        return opened


def plateau_state(t):
    return (t.best, t.best_index, t.num_bad, t.cooldown_counter, t.in_plateau, t.close_bound, t.count,
            t.num_reductions, t.reductions)


def plateau_series(rng, n, kind):
    """Long flat stretches (the vectorized path), dense improvements (the loop), steps, specials."""
    if kind == "trend":
        x = 1 + np.exp(-np.arange(n) / rng.uniform(5, 500)) + rng.uniform(0, 0.3) * rng.normal(size=n)
    elif kind == "steps":
        x = np.repeat(rng.normal(size=n // 50 + 1).cumsum(), 50)[:n]
    elif kind == "negative":
        x = -np.arange(n) * rng.uniform(0, 1e-3) - 5 + 0.1 * rng.normal(size=n)
    else:  # dense improvements: a strictly monotone run with noisy stretches
        x = np.where(np.arange(n) % 97 < 60, -np.arange(n, dtype=float), rng.normal(size=n))
    if rng.random() < 0.3:
        x = -x  # 'max' mode series, or a rising 'min' one
    if n and rng.random() < 0.5:
        k = rng.integers(0, n, size=int(rng.integers(1, 6)))
        x[k] = rng.choice(SPECIALS, size=len(k))
    return x


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 4000),
       kind=st.sampled_from(["trend", "steps", "negative", "dense"]),
       mode=st.sampled_from(["min", "max"]), threshold_mode=st.sampled_from(["rel", "abs"]),
       threshold=st.sampled_from([0.0, 1e-4, 0.01, 0.5]), patience=st.integers(0, 12),
       cooldown=st.integers(0, 4), reopen=st.sampled_from([0.0, 0.05]))
def test_plateau_fast_path_matches_the_sequential_loop(seed, n, kind, mode, threshold_mode, threshold, patience,
                                                       cooldown, reopen):
    rng = np.random.default_rng(seed)
    x = plateau_series(rng, n, kind)
    kw = dict(mode=mode, threshold=threshold, threshold_mode=threshold_mode, patience=patience, cooldown=cooldown,
              reopen=reopen)
    fast, slow = PlateauTracker(**kw), SequentialPlateau(**kw)
    pos = 0
    while True:  # random chunk sizes, empty ones included
        size = int(rng.integers(0, 900))
        assert fast.feed(x[pos : pos + size]) == slow.feed(x[pos : pos + size])
        assert repr(plateau_state(fast)) == repr(plateau_state(slow))
        pos += size
        if pos >= n:
            break


def test_plateau_long_flat_stretch_with_cooldown_counts_every_reduction():
    """After one improvement 100k bad values: a reduction every cooldown + patience + 1; a 50% new
    best ends that plateau, and NaNs (bad, as in PyTorch) open the next."""
    x = np.r_[1.0, np.full(100_000, 2.0), 0.5, np.full(10, np.nan)]
    fast, slow = PlateauTracker(patience=3, cooldown=2), SequentialPlateau(patience=3, cooldown=2)
    assert fast.feed(x) == slow.feed(x) == [(4, 1.0, 0), (100_006, 0.5, 100_001)]
    assert fast.reductions == slow.reductions and fast.reductions[:3] == [4, 10, 16] and fast.num_reductions > 16000
    assert repr(plateau_state(fast)) == repr(plateau_state(slow))


# -- BlockTrends: judging each block in turn is the oracle ----------------------------------------


class SequentialBlocks(BlockTrends):
    """Judges each block in turn through the class's own steps (``_push``, ``_judge``)."""

    def _judge_late(self, name, level, noise, ends):
        out = []
        for lv, nz, e in zip(level.tolist(), noise.tolist(), ends.tolist()):
            self._push([lv], [nz], [e])
            out += self._judge(name)
        return out


def block_state(b):
    # _hi/_lo (private on purpose): the trend band carried to the next block is state too; equal states, equal futures
    return (b.count, b.levels, b.noises, b.ends, b.active, b.learned, b._hi, b._lo)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 6000), block=st.sampled_from([10, 23, 100]),
       noise_ratio=st.sampled_from([0.05, 0.5]), early=st.integers(1, 25),
       shape=st.sampled_from(["fall", "flat", "wave", "rise_fall", "zero"]))
def test_vectorized_blocks_match_judging_each_block(seed, n, block, noise_ratio, early, shape):
    rng = np.random.default_rng(seed)
    s = np.arange(n, dtype=float)
    base = {"fall": 2 / (1 + s / 300), "flat": np.full(n, 0.7), "wave": 1 + 0.01 * np.sin(s / 200),
            "rise_fall": 1 + np.abs(s - n / 2) / max(n, 1), "zero": np.zeros(n)}[shape]
    v = base * (1 + rng.choice([0.0, 0.01, 0.5, 2.0]) * rng.normal(size=n))
    if n and rng.random() < 0.4:
        k = rng.integers(0, n, size=int(rng.integers(1, 200)))
        v[k] = rng.choice([*SPECIALS, 0.0], size=len(k))
    kw = dict(block=block, noise_ratio=noise_ratio, early_blocks=early, converged_rel=0.005)
    fast, slow = BlockTrends(**kw), SequentialBlocks(**kw)
    cuts = sorted(set(rng.integers(0, n + 1, size=4).tolist()) | {n})
    start = 0
    for c in cuts:
        assert fast.feed("loss", s[:c], v[:c], start) == slow.feed("loss", s[:c], v[:c], start)
        assert repr(block_state(fast)) == repr(block_state(slow))
        assert sorted(fast.take_ended()) == sorted(slow.take_ended())  # the same episodes end, where and why
        start = c


# -- training levels: windowed sums against a per-window gather -----------------------------------


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), m=st.integers(1, 400), w=st.integers(1, 40), integers=st.booleans())
def test_windowed_training_levels_match_the_gather(seed, m, w, integers):
    rng = np.random.default_rng(seed)
    x = rng.integers(-50, 50, size=m).astype(float) if integers else rng.normal(size=m) * 10.0 ** rng.integers(-3, 4)
    if m:
        k = rng.integers(0, m, size=int(rng.integers(0, 6)))
        x[k] = rng.choice([*SPECIALS, 1e+30], size=len(k))
    ends = np.sort(rng.integers(0, m + 1, size=int(rng.integers(1, 60))))
    fast = _window_means(x, ends, w)
    np.testing.assert_array_equal(fast, _gathered_means(x, ends, w))  # the same bits: same order of additions
    windows = [x[max(e - w, 0) : e] for e in ends.tolist()]
    direct = [np.sum(v[np.isfinite(v)]) / np.isfinite(v).sum() if np.isfinite(v).any() else np.nan for v in windows]
    if integers:  # every sum is exact, whatever its order
        np.testing.assert_array_equal(fast, direct)
    else:
        np.testing.assert_allclose(fast, direct, rtol=1e-9, atol=0)


# -- row statistics: the all-finite fast path and the general one against a per-row reference -----


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), rows=st.integers(1, 60), width=st.integers(1, 12), specials=st.integers(0, 8),
       windows=st.booleans())
def test_row_stats_match_each_rows_own_finite_values(seed, rows, width, specials, windows):
    rng = np.random.default_rng(seed)
    if windows:  # the rolling windows the diagnostics pass: a strided view of one series
        x = rng.normal(size=rows + width - 1)
        x[rng.integers(0, len(x), size=specials)] = rng.choice(SPECIALS, size=specials)
        grid = np.lib.stride_tricks.sliding_window_view(x, width)
    else:
        grid = rng.normal(size=(rows, width)) * 10.0 ** rng.integers(-3, 4)
        grid[rng.integers(0, rows, size=specials), rng.integers(0, width, size=specials)] = rng.choice(SPECIALS,
                                                                                                     size=specials)
    count, med, top, ordered = row_stats(grid)
    for i, row in enumerate(grid):
        kept = np.sort(row[np.isfinite(row)])
        assert count[i] == len(kept)
        np.testing.assert_array_equal(ordered[i, : len(kept)], kept)  # finite values first, in order
        assert np.isnan(ordered[i, len(kept) :]).all()
        if len(kept):
            assert med[i] == kept[(len(kept) - 1) // 2] / 2 + kept[len(kept) // 2] / 2
            assert top[i] == kept[-1]
        else:
            assert np.isnan(med[i]) and np.isnan(top[i])


def test_a_huge_spike_only_affects_the_windows_that_hold_it():
    """No global cumulative sum: 1e30 at index 5 leaves later windows exact."""
    x = np.arange(100, dtype=float)
    x[5] = 1e30
    ends = np.arange(0, 101)
    got = _window_means(x, ends, 20)
    for e in range(26, 101):
        assert got[e] == np.mean(x[e - 20 : e])


# -- the engine: budgets and slices change nothing ----------------------------------------------


def workload(n, every=1, seed=0):
    rng = np.random.default_rng(seed)
    s = np.arange(n, dtype=float)
    loss = 2 / (1 + s / n * 20) * (1 + 0.3 * rng.normal(size=n))
    val = 1.1 * 2 / (1 + s / n * 20) + np.maximum(0, s - 0.6 * n) / n + 0.05 * rng.normal(size=n)
    k = rng.integers(0, n, size=5)
    loss[k] = np.nan
    return {"loss": (s, loss), "val_loss": (s[::every], val[::every]), "acc": (s, 1 - 0.3 * loss),
            "loss_epoch": (s[::97], loss[::97])}


def histories(data, upto=math.inf):
    """The series as logged up to step ``upto`` (excluded)."""
    return {m: MetricHistory(s[s < upto], v[s < upto], s[s < upto]) for m, (s, v) in data.items()}


def as_tuples(findings):
    return [(f.code, f.metric, f.step, f.message, repr(sorted(f.evidence.items())), f.run) for f in findings]


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 1000), n=st.integers(50, 6000), every=st.sampled_from([1, 7, 100]),
       parts=st.integers(1, 40), slice_=st.sampled_from([17, 256, 1 << 17]), frames=st.integers(1, 4))
def test_budgeted_and_sliced_updates_find_exactly_what_one_update_finds(seed, n, every, parts, slice_, frames):
    data = workload(n, every, seed)
    budget = max(n // parts, 1)
    whole = Diagnostics()
    whole.update(histories(data))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(engine, "SLICE", slice_)
        diag = caught_up(data, budget, frames, seed)
    assert as_tuples(diag.findings) == as_tuples(whole.findings)
    h = histories(data)
    assert diag.update(h) == [] and diag.pending == 0


def caught_up(data, budget, frames, seed):
    """Budgeted updates while the data arrives, then until nothing is pending."""
    n = len(data["loss"][0])
    diag = Diagnostics()
    rng = np.random.default_rng(seed)
    for upto in [*sorted(rng.integers(1, n, size=frames).tolist()), n]:  # data keeps arriving meanwhile
        h = histories(data, upto)
        diag.update(h, budget)
        assert diag.pending >= 0
    h = histories(data)
    calls = 0
    while True:
        diag.update(h, budget)
        calls += 1
        if not diag.pending:
            break
    assert calls <= n // budget + 2
    return diag


def test_a_budgeted_update_reads_at_most_the_budget_per_series():
    data = workload(10_000)
    diag = Diagnostics()
    diag.update(histories(data), budget=1000)
    assert diag.pending == 3 * 9000 + (len(data["loss_epoch"][0]) - 1000 if len(data["loss_epoch"][0]) > 1000 else 0)
    # private on purpose: points read per series (pending above is their sum; this is each one's bound)
    assert all(st.seen <= 1000 for st in diag._series.values())
    with pytest.raises(ValueError, match="budget must be an int >= 1"):
        diag.update(histories(data), budget=0)


def test_one_update_over_a_big_backlog_has_bounded_temporaries():
    """2e6 steps x 3 metrics at once: the detectors' temporaries stay at a few slices' worth
    (the whole backlog at once needed ~40 B per point, ~240 MB here)."""
    n = 2_000_000
    h = histories(workload(n))
    diag = Diagnostics()
    tracemalloc.start()
    try:
        diag.update(h)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 24e6, peak  # ~2 slices of 2**17 points x ~40 temporaries of 8 bytes
    assert diag.pending == 0 and diag.examined >= 3 * n
