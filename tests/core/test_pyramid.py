"""The min/max pyramid against brute force: incremental = one-shot, block extremes exact,
selection bounded with every spike, gap and endpoint kept, raw points when zoomed in."""

import numpy as np
import pytest

from lossviz_widget._core.pyramid import DIRECT_SCAN, MinMaxPyramid


def noisy(n, seed=0, nonfinite=50):
    rng = np.random.default_rng(seed)
    y = np.cumsum(rng.normal(size=n))
    idx = rng.integers(0, n, nonfinite)
    y[idx[: nonfinite // 2]] = np.nan
    y[idx[nonfinite // 2 :]] = np.inf
    return y


def brute(values, start, size):
    seg = values[start : start + size]
    finite = np.isfinite(seg)
    if not finite.any():
        lo = hi = -1
    else:
        lo = start + int(np.where(finite, seg, np.inf).argmin())
        hi = start + int(np.where(finite, seg, -np.inf).argmax())
    nf = start + int((~finite).argmax()) if not finite.all() else -1
    return lo, hi, nf


def test_incremental_equals_one_shot_and_blocks_are_exact():
    y = noisy(300_000)
    one = MinMaxPyramid()
    one.update(y)
    inc = MinMaxPyramid()
    rng = np.random.default_rng(1)
    n = 0
    while n < len(y):
        n = min(len(y), n + int(rng.integers(1, 20_000)))
        inc.update(y[:n])
    assert len(one.levels) == len(inc.levels) >= 10
    for a, b in zip(one.levels, inc.levels):
        np.testing.assert_array_equal(a.rows(0, a.n), b.rows(0, b.n))
    for k in (0, 3, 9):  # every stored block matches brute force, NaN/Inf included
        size = one.base << k
        rows = one.levels[k].rows(0, one.levels[k].n)
        for j in range(0, one.levels[k].n, max(1, one.levels[k].n // 200)):
            lo, hi, nf = rows[:, j]
            blo, bhi, bnf = brute(y, j * size, size)
            assert nf == bnf and (lo == blo or y[lo] == y[blo]) and (hi == bhi or y[hi] == y[bhi])


@pytest.mark.parametrize("max_points", [16, 500, 2000])
def test_selection_is_bounded_and_keeps_extremes(max_points):
    n = 2_000_003
    y = noisy(n, seed=max_points)
    y[1_234_567] = 1e9  # a single-step spike
    pyr = MinMaxPyramid()
    pyr.update(y)
    x = np.arange(n, dtype=float)
    for i0, i1 in [(0, n), (10, n - 10), (123_456, 1_500_001), (DIRECT_SCAN * 3 + 7, DIRECT_SCAN * 5)]:
        idx = pyr.select(x, y, i0, i1, max_points)
        assert len(idx) <= max_points and np.all(np.diff(idx) > 0)
        assert idx[0] == i0 and idx[-1] == i1 - 1
        seg = y[i0:i1]
        finite = np.isfinite(seg)
        shown = y[idx][np.isfinite(y[idx])]
        assert shown.max() == seg[finite].max() and shown.min() == seg[finite].min()  # extremes kept
        if not finite.all():
            assert not np.isfinite(y[idx]).all()  # gaps stay visible
    assert 1_234_567 in pyr.select(x, y, 0, n, max_points)


def test_zooming_into_a_spike_shows_raw_points():
    n = 10_000_000
    y = np.ones(n)
    y[3_141_592] = 100.0
    pyr = MinMaxPyramid()
    pyr.update(y)
    x = np.arange(n, dtype=float)
    assert 3_141_592 in pyr.select(x, y, 0, n, 2000)  # visible in the full view
    idx = pyr.select(x, y, 3_141_500, 3_141_700, 2000)  # zoomed: every raw point
    np.testing.assert_array_equal(idx, np.arange(3_141_500, 3_141_700))


def test_small_series_and_empty_range():
    pyr = MinMaxPyramid()
    y = np.arange(10.0)
    pyr.update(y)
    np.testing.assert_array_equal(pyr.select(y, y, 0, 10, 100), np.arange(10))
    assert len(pyr.select(y, y, 5, 5, 100)) == 0
    with pytest.raises(ValueError, match="shrank"):
        pyr.update(y[:5])


def test_level0_finds_every_kind_of_non_finite_block():
    """argmin/argmax picks flag the blocks to mask: NaN, +inf, -inf, all non-finite, mixed."""
    base = 64
    y = np.random.default_rng(3).normal(size=base * 8)
    y[0 * base + 5] = np.nan
    y[1 * base + 7] = np.inf
    y[2 * base + 9] = -np.inf
    y[3 * base : 4 * base] = np.nan
    y[4 * base : 5 * base] = np.inf
    y[5 * base + 1], y[5 * base + 2], y[5 * base + 3] = -np.inf, np.nan, np.inf
    pyr = MinMaxPyramid(base)
    pyr.update(y)
    rows = pyr.levels[0].rows(0, 8)
    for j in range(8):
        assert tuple(rows[:, j]) == brute(y, j * base, base), j
