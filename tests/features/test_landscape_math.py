"""Loss landscapes, the math: analytic slices, filter normalization against the reference
formula, PCA against scikit-learn, the coarse-to-fine order, the recorder's budget, and bad input."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from drawn import landscape_parts
from sklearn.decomposition import PCA as SkPCA

from lossviz_widget import landscape as ls
from lossviz_widget.landscape.grid import fill_order
from lossviz_widget.landscape.params import Layout

RNG = np.random.default_rng(0)
A = (lambda m: m @ m.T + np.eye(6))(RNG.standard_normal((6, 6)))


def quad(theta):
    return 0.5 * theta @ A @ theta


def quad_batched(rows):
    return 0.5 * np.einsum("ni,ij,nj->n", rows, A, rows)


def compute(fn, *args, **kwargs):
    return fn(*args, display=False, **kwargs).landscape


# -- analytic ------------------------------------------------------------------------------


def test_quadratic_slice_at_zero_is_half_alpha_squared_dAd():
    d = RNG.standard_normal(6)
    land = compute(ls.line, np.zeros(6), quad, direction=d, span=(-2, 2), steps=9)
    np.testing.assert_allclose(land.values, 0.5 * land.x**2 * (d @ A @ d), rtol=1e-13, atol=1e-13)
    assert land.computed.all() and land.status == "done"


def test_quadratic_slice_away_from_zero_general_formula():
    theta = RNG.standard_normal(6)
    d = RNG.standard_normal(6)
    land = compute(ls.line, theta, quad_batched, direction=d, span=(-1.5, 0.5), steps=11, batched=True)
    a = land.x
    expected = quad(theta) + a * (d @ A @ theta) + 0.5 * a**2 * (d @ A @ d)
    np.testing.assert_allclose(land.values, expected, rtol=1e-12)


def test_plane_of_quadratic_and_centre_equals_loss_at_theta_star():
    theta = RNG.standard_normal(6)
    d1, d2 = RNG.standard_normal(6), RNG.standard_normal(6)
    land = compute(ls.plane, theta, quad, directions=[d1, d2], span=(-1, 1), steps=(7, 5))
    assert land.values.shape == (5, 7)  # rows are y, columns x
    assert land.values[2, 3] == quad(theta)  # exact: θ* + 0·δ + 0·η is θ*
    for iy, y in enumerate(land.y):
        for ix, x in enumerate(land.x):
            assert land.values[iy, ix] == pytest.approx(quad(theta + x * d1 + y * d2), rel=1e-12)


def test_linear_regression_mse_lines_are_exact_parabolas():
    X = RNG.standard_normal((50, 4))
    y = X @ RNG.standard_normal(4) + 0.1 * RNG.standard_normal(50)
    w_star = np.linalg.lstsq(X, y, rcond=None)[0]

    def mse(rows):
        return np.mean((rows @ X.T - y) ** 2, axis=1)

    for seed in range(3):
        land = compute(ls.line, w_star, mse, seed=seed, batched=True, span=(-3, 3), steps=25)
        coef = np.polyfit(land.x, land.values, 2)
        fit = np.polyval(coef, land.x)
        assert np.max(np.abs(fit - land.values)) < 1e-10 * np.max(land.values)
        assert coef[0] > 0 and abs(coef[1]) < 1e-8  # w* is the minimum: no linear term
        unbatched = compute(ls.line, w_star, lambda w: float(mse(w[None])[0]), seed=seed, span=(-3, 3), steps=25)
        np.testing.assert_allclose(unbatched.values, land.values, rtol=1e-14)
        assert land.info["seed"] == seed


def test_list_of_arrays_params():
    params = [RNG.standard_normal((2, 3)), RNG.standard_normal(3)]
    seen = []

    def loss(p):
        seen.append([a.shape for a in p])
        return float(sum((a**2).sum() for a in p))

    land = compute(ls.plane, params, loss, steps=3, seed=1)
    assert seen[0] == [(2, 3), (3,)]
    assert land.values[1, 1] == loss(params)


# -- filter normalization --------------------------------------------------------------------


def test_filter_normalization_rows_and_1d_rules():
    layout = Layout.from_shapes([("conv", (4, 2, 3, 3)), ("bias", (4,)), ("fc", (3, 5))])
    w = RNG.standard_normal(layout.size)
    d = RNG.standard_normal(layout.size)
    out = ls.normalize(d, w, layout)
    for o, wi, e in zip(layout.split(out), layout.split(w), layout.entries):
        if e.one_d:
            assert not o.any()
        else:
            for k in range(e.shape[0]):
                assert np.linalg.norm(o[k]) == pytest.approx(np.linalg.norm(wi[k]), rel=1e-9)
    kept = ls.normalize(d, w, layout, zero_1d=False)
    assert np.linalg.norm(layout.split(kept)[1]) == pytest.approx(np.linalg.norm(layout.split(w)[1]))
    np.testing.assert_array_equal(ls.normalize(d, w, layout, norm=None), d)


def test_orthogonal_second_direction_and_seeds_reproduce():
    layout = Layout.from_shapes([("w", (8, 5))])
    w = RNG.standard_normal(layout.size)
    a = ls.random_directions(layout, w, 2, seed=3, orthogonal=True)
    b = ls.random_directions(layout, w, 2, seed=3, orthogonal=True)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert abs(a[0] @ a[1]) < 1e-10 * np.linalg.norm(a[0]) * np.linalg.norm(a[1])
    c = ls.random_directions(layout, w, 2, seed=4)
    assert not np.array_equal(a[0], c[0])


# -- PCA ----------------------------------------------------------------------------------------


def test_pca_matches_scikit_learn():
    final = RNG.standard_normal(30)
    steps = np.linspace(1, 0, 25)[:, None]
    snaps = final + steps * RNG.standard_normal(30) + steps**2 * RNG.standard_normal(30) \
        + 0.01 * RNG.standard_normal((25, 30))
    got = ls.pca(snaps, final)
    sk = SkPCA(n_components=2).fit(snaps - final)
    np.testing.assert_allclose(got.explained, sk.explained_variance_ratio_, rtol=1e-10)
    for mine, theirs in zip(got.directions, sk.components_):
        assert abs(mine @ theirs) == pytest.approx(1.0, abs=1e-10)
    rows = snaps - final
    np.testing.assert_allclose(got.coords, rows @ got.directions.T, atol=1e-12)
    off = rows - got.coords @ got.directions
    np.testing.assert_allclose(got.residual, np.linalg.norm(off, axis=1) / np.linalg.norm(rows, axis=1))
    assert got.residual[-1] == 0.0 or np.linalg.norm(rows[-1]) > 0


def test_trajectory_numpy_path_losses_are_true_losses():
    B = np.diag([1.0, 10.0])
    theta = np.array([2.0, 1.0])
    rec = ls.TrajectoryRecorder(every=2)
    for _ in range(40):
        rec.record(theta)
        theta = theta - 0.05 * (B @ theta)
    view = ls.trajectory(rec, theta, lambda t: 0.5 * t @ B @ t, steps=9, display=False)
    land = view.landscape
    snaps = rec.snapshots.astype(np.float64)
    np.testing.assert_allclose(land.path.losses, [0.5 * s @ B @ s for s in snaps], rtol=1e-12)
    assert np.all(land.path.residual < 1e-6)  # a 2-D problem lies in its PCA plane
    assert "% of variance" in land.x_label and land.info["explained_variance_ratio"][0] > 0.5
    d1, d2 = ls.pca(snaps, theta).directions
    for iy, ix in [(0, 0), (4, 7), (8, 3)]:
        point = theta + land.x[ix] * d1 + land.y[iy] * d2
        assert land.values[iy, ix] == pytest.approx(0.5 * point @ B @ point, rel=1e-12)
    assert land.x[0] < 0 < land.x[-1] or land.x[0] <= 0 <= land.x[-1]
    assert "residual" in landscape_parts(view).status.value


# -- order and recorder -------------------------------------------------------------------------


def test_fill_order_is_centre_then_coarse_to_fine():
    order = fill_order((9, 9))
    assert sorted(order) == list(range(81))
    assert order[0] == 40
    rows, cols = np.unravel_index(order[1:], (9, 9))
    level = np.where((rows % 4 == 0) & (cols % 4 == 0), 0, np.where((rows % 2 == 0) & (cols % 2 == 0), 1, 2))
    assert np.all(np.diff(level) >= 0)
    assert (level == 0).sum() == 9 - 1 and (level == 1).sum() == 25 - 9  # the centre (4, 4) came first
    assert list(fill_order((5,))[:3]) == [2, 0, 4]


def test_recorder_thins_within_budget():
    rec = ls.TrajectoryRecorder(every=1, max_bytes=10 * 4 * 8)  # ten float32 snapshots of 8 numbers
    for step in range(100):
        rec.record(np.full(8, step, dtype=np.float64))
    assert rec.nbytes <= rec.max_bytes and 5 <= len(rec) <= 10
    steps = rec.steps
    assert steps[0] == 0 and len(set(np.diff(steps))) == 1 and np.diff(steps)[0] == rec.every
    np.testing.assert_array_equal(rec.snapshots[:, 0], steps)
    assert rec.snapshots.dtype == np.float32


# -- bad input ----------------------------------------------------------------------------------


def test_bad_input_errors_are_clear():
    with pytest.raises(ValueError, match="'0' has shape"):
        compute(ls.interpolate, [np.zeros((2, 2))], [np.zeros(3)], lambda p: 0.0)
    with pytest.raises(ValueError, match="has 1 arrays, expected 2"):
        compute(ls.interpolate, [np.zeros(2), np.zeros(2)], np.zeros(4), lambda p: 0.0)
    with pytest.raises(ValueError, match="steps must be at least 1"):
        compute(ls.plane, np.ones(3), quad, steps=0)
    with pytest.raises(ValueError, match="range must be finite"):
        compute(ls.line, np.ones(3), quad, span=(1, -1))
    with pytest.raises(TypeError, match="loss_fn must be callable"):
        compute(ls.line, np.ones(3), "mse")
    with pytest.raises(TypeError, match="params must be a NumPy array"):
        compute(ls.line, "weights", quad)
    with pytest.raises(ValueError, match="empty"):
        compute(ls.line, np.zeros(0), quad)
    with pytest.raises(TypeError, match="must return a number"):
        compute(ls.line, np.ones(6), lambda t: "high", seed=0, steps=3)
    with pytest.raises(ValueError, match=r"map shape \(n, d\) to \(n,\)"):
        compute(ls.line, np.ones(6), lambda rows: rows.sum(), seed=0, steps=3, batched=True)
    with pytest.raises(TypeError, match="recorder must be a TrajectoryRecorder"):
        compute(ls.trajectory, [], np.ones(3), quad)
    with pytest.raises(ValueError, match="at least 3 snapshots"):
        rec = ls.TrajectoryRecorder()
        rec.record(np.ones(6))
        compute(ls.trajectory, rec, np.ones(6), quad)
    with pytest.raises(ValueError, match="record\\(\\): 4 parameters"):
        rec.record(np.ones(4))
    with pytest.raises(ValueError, match="every must be a positive int"):
        ls.TrajectoryRecorder(every=0)
    with pytest.raises(ValueError, match="a direction is all zero"):
        compute(ls.line, np.ones(3), quad, zero_1d=True)
    with pytest.raises(TypeError, match="data is only for torch"):
        compute(ls.line, np.ones(3), quad, (1, 2))


def test_non_finite_losses_are_kept():
    def loss(t):
        v = t[0]
        return np.nan if v > 0.4 else (np.inf if v < -0.4 else v * v)

    land = compute(ls.line, np.zeros(1), loss, direction=np.ones(1), span=(-1, 1), steps=5)
    assert land.computed.all() and land.status == "done"
    assert np.isinf(land.values[0]) and np.isnan(land.values[-1]) and land.values[2] == 0.0


def test_importing_the_landscape_package_does_not_import_torch():
    code = "import sys, lossviz_widget.landscape; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
