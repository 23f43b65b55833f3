"""Run groups: which runs form a group, the group line and band against NumPy, and the drawing
(live bqplot marks, exported images) through LossPlot.group_runs."""

from __future__ import annotations

import re

import numpy as np
import pytest
from bqplot import Figure, Lines
from drawn import labels as drawn_labels

from lossviz_widget import LossPlot, ViewSettings
from lossviz_widget._core.run_groups import GroupSpec, aggregate, group_members

RNG = np.random.default_rng(0)


def test_regex_groups_runs_equal_once_the_match_is_removed():
    runs = ["lr=0.1 seed=0", "lr=0.1 seed=1", "lr=0.2 seed=0", "baseline", "lr=0.2_seed=7"]
    groups = group_members(runs, GroupSpec.make(r"seed=\d+"))
    assert groups == {"lr=0.1": ["lr=0.1 seed=0", "lr=0.1 seed=1"], "lr=0.2": ["lr=0.2 seed=0", "lr=0.2_seed=7"]}


def test_function_groups_by_params():
    params = {"a": {"lr": "0.1", "seed": "0"}, "b": {"lr": "0.1", "seed": "1"}, "c": {"lr": "0.3"}}
    spec = GroupSpec.make(lambda name, p: f"lr={p['lr']}" if "seed" in p else None)
    assert group_members(["a", "b", "c"], spec, params) == {"lr=0.1": ["a", "b"]}


@pytest.mark.parametrize("stat", ["mean", "median"])
@pytest.mark.parametrize("band", ["minmax", "std"])
def test_equal_steps_match_numpy(stat, band):
    steps = np.arange(500.0)
    members = RNG.normal(size=(5, 500)).cumsum(axis=1)
    agg = aggregate([(steps, m) for m in members], stat, band)
    center = members.mean(axis=0) if stat == "mean" else np.median(members, axis=0)
    np.testing.assert_array_equal(agg.steps, steps)
    np.testing.assert_allclose(agg.center, center, rtol=1e-12, atol=1e-12)
    if band == "minmax":
        np.testing.assert_array_equal(agg.lo, members.min(axis=0))
        np.testing.assert_array_equal(agg.hi, members.max(axis=0))
    else:
        std = members.std(axis=0, ddof=1)
        np.testing.assert_allclose(agg.lo, center - std, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(agg.hi, center + std, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(agg.count, 5)


def test_unequal_steps_union_grid_each_member_within_its_own_range():
    a_steps, a = np.arange(0.0, 10.0), np.arange(0.0, 10.0) * 2  # steps 0..9
    b_steps, b = np.arange(0.0, 21.0, 2.0), np.full(11, 100.0)  # steps 0, 2, ..., 20
    b[3] = 106.0  # at step 6
    agg = aggregate([(a_steps, a), (b_steps, b)], "mean", "minmax")
    grid = np.union1d(a_steps, b_steps)
    np.testing.assert_array_equal(agg.steps, grid)
    b_on_grid = np.interp(grid, b_steps, b)  # b is interpolated at the odd steps it did not log
    covered_a = grid <= 9
    expected = np.where(covered_a, (np.interp(grid, a_steps, a) + b_on_grid) / 2, b_on_grid)
    np.testing.assert_allclose(agg.center, expected, rtol=1e-12)
    np.testing.assert_array_equal(agg.count, np.where(covered_a, 2, 1))
    assert agg.center[grid == 7][0] == pytest.approx((14.0 + 103.0) / 2)  # b halfway between 106 and 100
    np.testing.assert_array_equal(agg.hi[grid > 9], b_on_grid[grid > 9])  # a stopped: not extrapolated


def test_several_values_at_one_step_use_the_last_and_nonfinite_values_make_a_gap():
    steps = np.array([0.0, 1.0, 1.0, 2.0, 3.0])
    a = np.array([1.0, 5.0, 2.0, 3.0, 4.0])
    b_steps, b = np.array([0.0, 1.0, 2.0, 3.0]), np.array([3.0, 4.0, np.nan, 6.0])
    agg = aggregate([(steps, a), (b_steps, b)], "mean", "std")
    np.testing.assert_array_equal(agg.center[[0, 1, 3]], [2.0, 3.0, 5.0])
    assert np.isnan(agg.center[2]) and np.isnan(agg.lo[2]) and np.isnan(agg.hi[2])
    np.testing.assert_allclose(agg.hi[1] - agg.center[1], np.std([2.0, 4.0], ddof=1))


def test_bad_specs():
    with pytest.raises(ValueError, match="stat must be"):
        GroupSpec.make("x", stat="max")
    with pytest.raises(ValueError, match="band must be"):
        GroupSpec.make("x", band="iqr")
    with pytest.raises(ValueError, match="not a regular expression"):
        GroupSpec.make("(")
    with pytest.raises(TypeError, match="regex or a function"):
        GroupSpec.make(3)
    assert isinstance(GroupSpec.make(re.compile("s")).by, re.Pattern)


def sweep_plot(n: int = 2000) -> tuple[LossPlot, dict[str, np.ndarray]]:
    plot = LossPlot(smoothing=0.0, max_points=200)
    values = {}
    for lr in (0.1, 0.2):
        for seed in range(3):
            name = f"lr={lr} seed={seed}"
            v = np.exp(-lr * np.arange(n) / 100) + RNG.normal(0, 0.01, n)
            if name == "lr=0.1 seed=1":
                v[n * 5 // 8] = 9.0  # a spike in one seed
            values[name] = v
            plot.extend("loss", np.arange(n), v, run=name)
    return plot, values


def marks(plot: LossPlot) -> list[Lines]:
    pending, found = list(plot.children), []
    while pending:
        w = pending.pop()
        if isinstance(w, Figure):
            found += [m for m in w.marks if isinstance(m, Lines) and m.visible]
        pending.extend(getattr(w, "children", ()))
    return found


def test_group_runs_draws_a_line_and_band_per_group_with_the_spike_kept():
    plot, values = sweep_plot()
    plot.group_runs(r"seed=\d+")
    plot.flush()
    shown = marks(plot)
    fills = [m for m in shown if m.fill == "between"]
    lines = {m.labels[0]: m for m in shown if m.fill != "between"}
    assert sorted(lines) == ["lr=0.1: loss (mean of 3, min-max)", "lr=0.2: loss (mean of 3, min-max)"]
    assert len(fills) == 2  # members hidden: only the groups are drawn
    members = np.stack([values[f"lr=0.1 seed={s}"] for s in range(3)])
    line = lines["lr=0.1: loss (mean of 3, min-max)"]
    assert len(line.x) <= 200
    np.testing.assert_allclose(line.y, members.mean(axis=0)[np.asarray(line.x, dtype=int)], rtol=1e-6)
    band = next(m for m in fills if m.colors[0] == line.colors[0])
    assert np.asarray(band.y).shape[0] == 2 and np.asarray(band.y).shape[1] <= 200
    assert np.max(band.y[1]) == pytest.approx(9.0)  # the spike survives downsampling in the band
    plot.group_runs(r"seed=\d+", show_members=True, stat="median", band="std")
    plot.flush()
    labels = drawn_labels(plot, "loss")  # the members' own lines and the groups' (members: on the canvas)
    assert "lr=0.1 seed=0: loss" in labels and "lr=0.2: loss (median of 3, ±1 std)" in labels
    plot.ungroup_runs()
    plot.flush()
    assert not [m for m in marks(plot) if m.fill == "between"]
    plot.close()


def test_group_runs_in_exported_images_and_reports(tmp_path):
    plot, _ = sweep_plot(300)
    plot.group_runs(r"seed=\d+", band="std")
    svg = plot.export(tmp_path / "g.svg").read_text()
    assert "lr=0.1: loss (mean of 3, ±1 std)" in svg
    page = plot.export(tmp_path / "g.html").read_text()
    assert "mean of 3" in page and "lr=0.2 seed=2" in page  # the members' own numbers stay in the readout
    plot.close()


def test_runs_arriving_later_join_their_group():
    plot = LossPlot(smoothing=0.0)
    plot.group_runs(r"seed=\d+")
    plot.extend("loss", [0, 1], [1.0, 2.0], run="a seed=0")
    plot.flush()
    assert [m.labels[0] for m in marks(plot) if m.fill != "between"] == ["a: loss (mean of 1, min-max)"]
    plot.extend("loss", [0, 1], [3.0, 4.0], run="a seed=1")
    plot.flush()
    line = next(m for m in marks(plot) if m.fill != "between")
    assert line.labels == ["a: loss (mean of 2, min-max)"]
    np.testing.assert_array_equal(line.y, [2.0, 3.0])
    plot.close()


def test_settings_change_the_band_smoothing_and_log_axis():
    plot, _ = sweep_plot(100)
    plot.group_runs(r"seed=\d+")
    plot.smoothing, plot.log_y = 0.9, True
    plot.flush()
    line = next(m for m in marks(plot) if m.fill != "between")
    assert np.all(np.diff(line.y[:50]) < 0.01)  # smoothed: the noise is gone from a falling curve
    assert ViewSettings().x_axis == "step"
    plot.x_axis = "wall_time"
    plot.flush()
    assert not [m for m in marks(plot) if m.fill == "between"]  # groups: step axis only (the panel says so)
    plot.close()
