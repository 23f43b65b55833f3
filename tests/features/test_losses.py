"""lossviz_widget.losses against torch.nn.functional, sklearn.metrics and scipy.special."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import special
from sklearn import metrics

from lossviz_widget import losses as L

REDUCTIONS = ("mean", "sum", "none")
DTYPES = (np.float32, np.float64)
TOL = {np.float32: dict(rtol=2e-5, atol=2e-5), np.float64: dict(rtol=1e-12, atol=1e-12)}


def _t(a):
    return None if a is None else torch.from_numpy(np.asarray(a))


def check(ours, theirs, dtype):
    ours = np.asarray(ours)
    theirs = theirs.numpy() if isinstance(theirs, torch.Tensor) else np.asarray(theirs)
    assert ours.dtype == np.dtype(dtype)
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, equal_nan=True, **TOL[dtype])


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


# ------------------------------------------------------------------ regression

REGRESSION = [
    (L.mse, lambda x, t, r: F.mse_loss(x, t, reduction=r), {}),
    (L.mae, lambda x, t, r: F.l1_loss(x, t, reduction=r), {}),
    (L.huber, lambda x, t, r: F.huber_loss(x, t, reduction=r, delta=0.7), {"delta": 0.7}),
    (L.smooth_l1, lambda x, t, r: F.smooth_l1_loss(x, t, reduction=r, beta=0.3), {"beta": 0.3}),
    (L.smooth_l1, lambda x, t, r: F.smooth_l1_loss(x, t, reduction=r, beta=0.0), {"beta": 0.0}),
]


@pytest.mark.parametrize("ours,torch_fn,kw", REGRESSION)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_regression_matches_torch(rng, ours, torch_fn, kw, reduction, dtype):
    x = (rng.normal(size=(7, 3)) * 2).astype(dtype)
    t = (rng.normal(size=(7, 3)) * 2).astype(dtype)
    check(ours(x, t, reduction=reduction, **kw), torch_fn(_t(x), _t(t), reduction), dtype)


@settings(max_examples=40, deadline=None)
@given(hnp.arrays(np.float64, st.integers(1, 30), elements=st.floats(-1e6, 1e6)),
       st.floats(0.01, 100))
def test_regression_property_vs_sklearn_and_torch(x, delta):
    t = x[::-1].copy()
    assert L.mse(x, t) == pytest.approx(metrics.mean_squared_error(t, x), rel=1e-12, abs=1e-12)
    assert L.mae(x, t) == pytest.approx(metrics.mean_absolute_error(t, x), rel=1e-12, abs=1e-12)
    np.testing.assert_allclose(L.huber(x, t, delta=delta, reduction="none"),
                               F.huber_loss(_t(x), _t(t), delta=delta, reduction="none").numpy(), rtol=1e-12)
    np.testing.assert_allclose(L.smooth_l1(x, t, beta=delta, reduction="none"),
                               L.huber(x, t, delta=delta, reduction="none") / delta, rtol=1e-12)


def test_integer_inputs_compute_in_float64_and_float16_in_float32():
    assert L.mse([1, 2, 3], [1, 2, 5]).dtype == np.float64
    assert L.mse([1, 2, 3], [1, 2, 5]) == pytest.approx(4 / 3)
    assert L.mae(np.ones(3, np.float16), np.zeros(3, np.float16)).dtype == np.float32


def test_nan_and_inf_propagate():
    assert np.isnan(L.mse([np.nan, 1.0], [0.0, 1.0]))
    assert L.mae([np.inf, 1.0], [0.0, 1.0]) == np.inf
    assert np.isnan(L.binary_cross_entropy([np.nan], [1.0]))


# ------------------------------------------------------------------ binary

@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weighted", [False, True])
def test_bce_matches_torch_including_0_and_1(rng, reduction, dtype, weighted):
    p = rng.uniform(size=(6, 4)).astype(dtype)
    p[0, :] = [0, 1, 0, 1]  # log clamped at -100 -> loss 100 where wrong
    t = rng.uniform(size=(6, 4)).astype(dtype)
    t[0, :] = [1, 0, 0, 1]
    w = rng.uniform(0.1, 3, size=(4,)).astype(dtype) if weighted else None
    ours = L.binary_cross_entropy(p, t, weight=w, reduction=reduction)
    check(ours, F.binary_cross_entropy(_t(p), _t(t), weight=_t(w), reduction=reduction), dtype)
    if reduction == "none":
        scale = 1 if w is None else w
        np.testing.assert_allclose(ours[0], np.array([100, 100, 0, 0]) * scale, rtol=1e-6)


def test_bce_vs_sklearn_log_loss(rng):
    p = rng.uniform(0.01, 0.99, 200)
    y = rng.integers(0, 2, 200)
    assert L.binary_cross_entropy(p, y) == pytest.approx(metrics.log_loss(y, p), rel=1e-12)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weighted,pos_weighted", list(itertools.product([False, True], repeat=2)))
def test_bce_with_logits_matches_torch(rng, reduction, dtype, weighted, pos_weighted):
    z = (rng.normal(size=(8, 3)) * 4).astype(dtype)
    z[0] = [1000, -1000, 0]
    z[1] = [-1000, 1000, 30]
    t = rng.uniform(size=(8, 3)).astype(dtype)
    t[0], t[1] = [0, 1, 1], [0, 1, 0.5]
    w = rng.uniform(0.1, 3, size=(8, 1)).astype(dtype) if weighted else None
    pw = rng.uniform(0.1, 3, size=(3,)).astype(dtype) if pos_weighted else None
    ours = L.binary_cross_entropy_with_logits(z, t, weight=w, pos_weight=pw, reduction=reduction)
    theirs = F.binary_cross_entropy_with_logits(_t(z), _t(t), weight=_t(w), pos_weight=_t(pw), reduction=reduction)
    check(ours, theirs, dtype)
    assert np.all(np.isfinite(ours))


def test_bce_with_logits_extremes_are_exact():
    z = np.array([1000.0, -1000.0, 1000.0, -1000.0])
    t = np.array([0.0, 1.0, 1.0, 0.0])
    np.testing.assert_array_equal(L.binary_cross_entropy_with_logits(z, t, reduction="none"), [1000, 1000, 0, 0])
    # the textbook formula through scipy: log(expit(z)) where that is accurate, log_expit everywhere
    z = np.linspace(-30, 30, 61)
    t = np.linspace(0, 1, 61)
    ours = L.binary_cross_entropy_with_logits(z, t, reduction="none")
    oracle = -(t * special.log_expit(z) + (1 - t) * special.log_expit(-z))
    np.testing.assert_allclose(ours, oracle, rtol=1e-13, atol=1e-15)
    mid = np.abs(z) < 5
    p = special.expit(z[mid])
    textbook = -(special.xlogy(t[mid], p) + special.xlogy(1 - t[mid], 1 - p))
    np.testing.assert_allclose(ours[mid], textbook, rtol=1e-12)


# ------------------------------------------------------------------ cross-entropy / nll

CE_CASES = list(itertools.product(REDUCTIONS, DTYPES, [False, True], [None, 2], [0.0, 0.25]))


@pytest.mark.parametrize("shape", [(9, 5), (4, 5, 3, 2)])
@pytest.mark.parametrize("reduction,dtype,weighted,ignore,smoothing", CE_CASES)
def test_cross_entropy_hard_targets_match_torch(rng, shape, reduction, dtype, weighted, ignore, smoothing):
    x = (rng.normal(size=shape) * 3).astype(dtype)
    x.reshape(-1)[:2] = [1000, -1000]
    target_shape = (shape[0], *shape[2:])
    y = rng.integers(0, shape[1], size=target_shape)
    kw = {}
    if ignore is not None:
        y.reshape(-1)[::3] = ignore
        kw["ignore_index"] = ignore
    w = rng.uniform(0.2, 3, size=shape[1]).astype(dtype) if weighted else None
    ours = L.cross_entropy(x, y, weight=w, reduction=reduction, label_smoothing=smoothing, **kw)
    theirs = F.cross_entropy(_t(x), _t(y), weight=_t(w), reduction=reduction, label_smoothing=smoothing, **kw)
    check(ours, theirs, dtype)
    assert np.all(np.isfinite(ours))


@pytest.mark.parametrize("shape", [(9, 5), (4, 5, 3)])
@pytest.mark.parametrize("reduction,dtype,weighted,smoothing",
                         list(itertools.product(REDUCTIONS, DTYPES, [False, True], [0.0, 0.3])))
def test_cross_entropy_soft_targets_match_torch(rng, shape, reduction, dtype, weighted, smoothing):
    x = (rng.normal(size=shape) * 3).astype(dtype)
    x.reshape(-1)[:2] = [-1000, 1000]
    t = np.moveaxis(rng.dirichlet(np.ones(shape[1]), size=(shape[0], *shape[2:])), -1, 1).astype(dtype)
    w = rng.uniform(0.2, 3, size=shape[1]).astype(dtype) if weighted else None
    ours = L.cross_entropy(x, t, weight=w, reduction=reduction, label_smoothing=smoothing)
    check(ours, F.cross_entropy(_t(x), _t(t), weight=_t(w), reduction=reduction, label_smoothing=smoothing), dtype)


@settings(max_examples=40, deadline=None)
@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 5)), elements=st.floats(-1000, 1000)),
       st.data())
def test_cross_entropy_property_any_logits(x, data):
    y = np.array(data.draw(st.lists(st.integers(0, x.shape[1] - 1), min_size=x.shape[0], max_size=x.shape[0])))
    eps = data.draw(st.sampled_from([0.0, 0.1]))
    ours = L.cross_entropy(x, y, reduction="none", label_smoothing=eps)
    assert np.all(np.isfinite(ours)) and np.all(ours >= 0)
    theirs = F.cross_entropy(_t(x), _t(y), reduction="none", label_smoothing=eps).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-9)
    log_p = special.log_softmax(x, axis=1)
    oracle = -(1 - eps) * log_p[np.arange(len(y)), y] - eps / x.shape[1] * log_p.sum(axis=1)
    np.testing.assert_allclose(ours, oracle, rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_unbatched(rng, reduction):
    x = rng.normal(size=4)
    for target in (np.int64(2), rng.dirichlet(np.ones(4))):
        check(L.cross_entropy(x, target, reduction=reduction, label_smoothing=0.1),
              F.cross_entropy(_t(x), _t(target), reduction=reduction, label_smoothing=0.1), np.float64)


def test_cross_entropy_from_extreme_logits_equals_log_softmax_oracle():
    x = np.array([[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, -1000.0], [1e4, 1e4, -1e4]])
    y = np.array([1, 0, 2])
    oracle = -special.log_softmax(x, axis=1)[np.arange(3), y]
    ours = L.cross_entropy(x, y, reduction="none")
    np.testing.assert_allclose(ours, oracle, rtol=1e-15)
    np.testing.assert_allclose(ours, [2000, np.log(3), 2e4 + np.log(2)], rtol=1e-15)
    # logsumexp(x) - x_y cancels (1000 + ln 3 - 1000): equal up to that rounding
    np.testing.assert_allclose(special.logsumexp(x, axis=1) - x[np.arange(3), y], ours, rtol=1e-13)


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_from_probabilities(rng, dtype):
    p = rng.dirichlet(np.ones(4), size=50).astype(dtype)
    y = rng.integers(0, 4, 50)
    ours = L.cross_entropy(p, y, from_logits=False)
    assert ours.dtype == dtype
    p64 = p.astype(np.float64)
    p64 /= p64.sum(axis=1, keepdims=True)  # float32 rows sum to 1 only to float32 precision
    assert ours == pytest.approx(metrics.log_loss(y, p64, labels=range(4)), rel=1e-5)
    for reduction in REDUCTIONS:
        theirs = F.nll_loss(torch.log(_t(p)).clamp(min=-100), _t(y), reduction=reduction)
        check(L.cross_entropy(p, y, from_logits=False, reduction=reduction), theirs, dtype)
    # a zero probability for the true class costs 100 (log clamped), not inf
    assert L.cross_entropy([[1.0, 0.0]], [1], from_logits=False) == 100.0


def test_all_ignored_mean_is_nan_like_torch():
    x = np.zeros((3, 2))
    y = np.full(3, -100)
    assert np.isnan(L.cross_entropy(x, y))
    assert np.isnan(F.cross_entropy(_t(x), _t(y)).item())
    assert L.cross_entropy(x, y, reduction="sum") == 0.0
    assert np.isnan(L.nll(x, y, weight=[1.0, 2.0]))


def test_integer_valued_float_targets_are_class_indices():
    x = np.array([[0.1, 2.0, -1.0], [1.0, 0.0, 0.5]])
    assert L.cross_entropy(x, np.array([1.0, 0.0])) == L.cross_entropy(x, np.array([1, 0]))


@pytest.mark.parametrize("reduction,dtype,weighted", list(itertools.product(REDUCTIONS, DTYPES, [False, True])))
def test_nll_matches_torch(rng, reduction, dtype, weighted):
    logp = special.log_softmax(rng.normal(size=(6, 4, 2)), axis=1).astype(dtype)
    y = rng.integers(0, 4, size=(6, 2))
    y[0, 0] = 7
    w = rng.uniform(0.2, 2, 4).astype(dtype) if weighted else None
    check(L.nll(logp, y, weight=w, ignore_index=7, reduction=reduction),
          F.nll_loss(_t(logp), _t(y), weight=_t(w), ignore_index=7, reduction=reduction), dtype)


# ------------------------------------------------------------------ KL

@pytest.mark.parametrize("reduction", (*REDUCTIONS, "batchmean"))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div_matches_torch(rng, reduction, dtype, log_target):
    logq = special.log_softmax(rng.normal(size=(5, 6)), axis=1).astype(dtype)
    p = rng.dirichlet(np.ones(6), size=5)
    p[0, :2] = [0, p[0, 0] + p[0, 1]]  # zeros in the target contribute 0
    p = p.astype(dtype)
    with np.errstate(divide="ignore"):
        target = np.log(p) if log_target else p
    ours = L.kl_div(logq, target, reduction=reduction, log_target=log_target)
    with warnings.catch_warnings():  # torch warns that its 'mean' is not the KL per sample
        warnings.simplefilter("ignore", UserWarning)
        theirs = F.kl_div(_t(logq), _t(target), reduction=reduction, log_target=log_target)
    check(ours, theirs, dtype)


def test_kl_div_batchmean_is_scipy_kl_per_sample(rng):
    q = rng.dirichlet(np.ones(5), size=8)
    p = rng.dirichlet(np.ones(5), size=8)
    oracle = special.rel_entr(p, q).sum(axis=1).mean()
    assert L.kl_div(np.log(q), p, reduction="batchmean") == pytest.approx(oracle, rel=1e-13)


# ------------------------------------------------------------------ bad input

@pytest.mark.parametrize("call,error,match", [
    (lambda: L.mse(np.zeros(3), np.zeros(4)), ValueError, "target must have the shape"),
    (lambda: L.mse(np.zeros(3), np.zeros(3), reduction="avg"), ValueError, "reduction must be one of"),
    (lambda: L.mse(np.zeros(3), np.zeros(3), reduction="batchmean"), ValueError, "reduction"),
    (lambda: L.mae(np.zeros(2, complex), np.zeros(2)), TypeError, "input must hold real numbers"),
    (lambda: L.mae(np.zeros(2), ["a", "b"]), TypeError, "target must hold real numbers"),
    (lambda: L.huber([1.0], [2.0], delta=0), ValueError, "delta must be > 0"),
    (lambda: L.smooth_l1([1.0], [2.0], beta=-1), ValueError, "beta must be >= 0"),
    (lambda: L.binary_cross_entropy([1.2], [1.0]), ValueError, "input must be probabilities"),
    (lambda: L.binary_cross_entropy([0.2], [-0.1]), ValueError, "target must be probabilities"),
    (lambda: L.binary_cross_entropy([0.2, 0.3], [1.0, 0.0], weight=[1.0, 2, 3]), ValueError, "weight of shape"),
    (lambda: L.binary_cross_entropy_with_logits([3.0], [2.0]), ValueError, "target must be probabilities"),
    (lambda: L.binary_cross_entropy_with_logits([3.0, 1], [1.0, 0], pos_weight=[1, 2, 3]), ValueError,
     "pos_weight of shape"),
    (lambda: L.cross_entropy(np.zeros((2, 3)), [0.5, 1]), ValueError, "must be integers"),
    (lambda: L.cross_entropy(np.zeros((2, 3)), [0, 3]), ValueError, r"in \[0, 3\)"),
    (lambda: L.cross_entropy(np.zeros((2, 3)), [0, -1]), ValueError, "ignore_index=-100"),
    (lambda: L.cross_entropy(np.zeros((2, 3)), [0, 1, 2]), ValueError, "class indices of shape"),
    (lambda: L.cross_entropy(np.zeros((2, 3)), np.array([True, False])), TypeError, "integer class indices"),
    (lambda: L.cross_entropy(np.zeros((2, 3)), [0, 1], weight=[1.0, 2]), ValueError, "one entry per class"),
    (lambda: L.cross_entropy(np.zeros((2, 3)), [0, 1], label_smoothing=1.5), ValueError, "label_smoothing"),
    (lambda: L.cross_entropy(np.zeros((2, 3)), np.full((2, 3), 1.5)), ValueError, "target must be probabilities"),
    (lambda: L.cross_entropy(np.full((2, 3), 0.5), [0, 1], from_logits=False), ValueError, "sum to 1"),
    (lambda: L.cross_entropy(np.full((2, 2), 2.0), [0, 1], from_logits=False), ValueError, "input must be prob"),
    (lambda: L.cross_entropy(np.float64(1.0), 0), ValueError, "class dimension"),
    (lambda: L.nll(np.zeros((2, 3)), np.zeros((2, 3))), ValueError, "integer class indices"),
    (lambda: L.kl_div(np.zeros(3), [0.5, 0.5, 1.5]), ValueError, "target must be probabilities"),
    (lambda: L.kl_div(np.zeros(3), np.zeros(2)), ValueError, "target must have the shape"),
])
def test_bad_input_raises_a_clear_error(call, error, match):
    with pytest.raises(error, match=match):
        call()
