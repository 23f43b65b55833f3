"""Common loss functions in NumPy, with PyTorch's exact semantics.

Every function takes array-likes (NumPy arrays, lists, CPU tensors), computes in
the input's float dtype (float32 stays float32, float64 stays float64; float16
is computed in float32, integers in float64) and returns a NumPy scalar for
``reduction="mean"``/``"sum"`` or an array for ``"none"``. The formulas, the
reductions, class weights, ``ignore_index`` and label smoothing follow
``torch.nn.functional`` (checked against it in the tests; see REFERENCE.md §8).

Numerically stable: log-softmax via log-sum-exp with the max subtracted,
log-sigmoid via ``logaddexp``, so logits of +/-1000 give finite, exact values.
NaN and Inf in the inputs propagate into the loss; they are never an error.
Bad input (mismatched shapes, non-integer or out-of-range class targets,
probabilities outside [0, 1], an unknown reduction) raises ``ValueError`` or
``TypeError`` naming the argument.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "huber",
    "kl_div",
    "mae",
    "mse",
    "nll",
    "smooth_l1",
]

Reduction = Literal["mean", "sum", "none"]
_REDUCTIONS = ("mean", "sum", "none")
_LOG_CLAMP = -100.0  # PyTorch's floor for log(p) in binary_cross_entropy


# ---------------------------------------------------------------- coercion and checks

def _compute_dtype(a: np.ndarray, name: str) -> np.dtype:
    kind = a.dtype.kind
    if kind == "f":
        return np.dtype(np.float64) if a.dtype == np.float64 else np.dtype(np.float32)
    if kind in "iub":
        return np.dtype(np.float64)
    raise TypeError(f"{name} must hold real numbers, got dtype {a.dtype}")


def _floats(x: ArrayLike, name: str, dtype: np.dtype | None = None) -> np.ndarray:
    """``x`` as an array of ``dtype`` (by default the dtype the loss is computed in)."""
    a = np.asarray(x)
    target = _compute_dtype(a, name)
    return a.astype(dtype if dtype is not None else target, copy=False)


def _same_shape(input: np.ndarray, target: np.ndarray) -> None:
    if input.shape != target.shape:
        raise ValueError(f"target must have the shape of input {input.shape}, got {target.shape}")


def _check_reduction(reduction: str, allowed: tuple[str, ...] = _REDUCTIONS) -> None:
    if reduction not in allowed:
        raise ValueError(f"reduction must be one of {', '.join(map(repr, allowed))}; got {reduction!r}")


def _check_unit_interval(a: np.ndarray, name: str) -> None:
    """Probabilities must lie in [0, 1]; NaN is allowed (it propagates)."""
    with np.errstate(invalid="ignore"):
        bad = (a < 0) | (a > 1)
    if bad.any():
        raise ValueError(f"{name} must be probabilities in [0, 1]; found {a[bad].flat[0]!r}")


def _broadcast_to(w: ArrayLike | None, shape: tuple[int, ...], name: str, dtype: np.dtype) -> np.ndarray | None:
    if w is None:
        return None
    a = _floats(w, name, dtype)
    try:
        np.broadcast_shapes(a.shape, shape)
    except ValueError:
        raise ValueError(f"{name} of shape {a.shape} does not broadcast to the input's shape {shape}") from None
    return a


def _reduce(loss: np.ndarray, reduction: str, denominator: float | np.floating | None = None):
    """PyTorch's reductions: ``mean`` divides by ``denominator`` (default: element count).

    An empty mean, or one over weights that sum to 0 (every target ignored), is NaN.
    """
    if reduction == "none":
        return loss
    total = loss.sum(dtype=loss.dtype)
    if reduction == "sum":
        return total
    denom = loss.dtype.type(loss.size if denominator is None else denominator)
    with np.errstate(invalid="ignore", divide="ignore"):
        return loss.dtype.type(total / denom)


def _log(p: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.maximum(np.log(p), _LOG_CLAMP)


def _log1m(p: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.maximum(np.log1p(-p), _LOG_CLAMP)


def _softplus(x: np.ndarray) -> np.ndarray:
    """log(1 + e^x), stable for any x (``logaddexp(0, x)``)."""
    return np.logaddexp(x.dtype.type(0), x)


def _paired(input: ArrayLike, target: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    x = _floats(input, "input")
    t = _floats(target, "target", x.dtype)
    _same_shape(x, t)
    return x, t


# ---------------------------------------------------------------- regression

def mse(input: ArrayLike, target: ArrayLike, *, reduction: Reduction = "mean"):
    """Mean squared error: ``(input - target)**2``, reduced (``F.mse_loss``)."""
    _check_reduction(reduction)
    x, t = _paired(input, target)
    return _reduce(np.square(x - t), reduction)


def mae(input: ArrayLike, target: ArrayLike, *, reduction: Reduction = "mean"):
    """Mean absolute error: ``|input - target|``, reduced (``F.l1_loss``)."""
    _check_reduction(reduction)
    x, t = _paired(input, target)
    return _reduce(np.abs(x - t), reduction)


def _quadratic_then_linear(r: np.ndarray, knee: float) -> np.ndarray:
    """``0.5 r**2`` for ``r < knee``, else ``knee * (r - 0.5 knee)`` (r = |residual|)."""
    k = r.dtype.type(knee)
    return np.where(r < k, 0.5 * r * r, k * (r - 0.5 * k))


def huber(input: ArrayLike, target: ArrayLike, *, delta: float = 1.0, reduction: Reduction = "mean"):
    """Huber loss (``F.huber_loss``), r = |input - target|::

        0.5 * r**2                 if r < delta
        delta * (r - 0.5 * delta)  otherwise
    """
    _check_reduction(reduction)
    if not delta > 0:
        raise ValueError(f"delta must be > 0, got {delta!r}")
    x, t = _paired(input, target)
    return _reduce(_quadratic_then_linear(np.abs(x - t), delta), reduction)


def smooth_l1(input: ArrayLike, target: ArrayLike, *, beta: float = 1.0, reduction: Reduction = "mean"):
    """Smooth L1 loss (``F.smooth_l1_loss``), r = |input - target|::

        0.5 * r**2 / beta   if r < beta
        r - 0.5 * beta      otherwise

    i.e. Huber(beta) / beta; ``beta=0`` is the plain L1 loss.
    """
    _check_reduction(reduction)
    if not beta >= 0:
        raise ValueError(f"beta must be >= 0, got {beta!r}")
    x, t = _paired(input, target)
    r = np.abs(x - t)
    if beta == 0:
        return _reduce(r, reduction)
    return _reduce(_quadratic_then_linear(r, beta) / r.dtype.type(beta), reduction)


# ---------------------------------------------------------------- binary

def binary_cross_entropy(
    input: ArrayLike, target: ArrayLike, *, weight: ArrayLike | None = None, reduction: Reduction = "mean"
):
    """Binary cross-entropy on probabilities (``F.binary_cross_entropy``)::

        -w * (t * max(log p, -100) + (1 - t) * max(log(1 - p), -100))

    The log is clamped at -100 like PyTorch, so a confident wrong prediction costs
    100 instead of inf. ``input`` and ``target`` must lie in [0, 1]; ``weight``
    broadcasts to the input's shape.
    """
    _check_reduction(reduction)
    p, t = _paired(input, target)
    _check_unit_interval(p, "input")
    _check_unit_interval(t, "target")
    w = _broadcast_to(weight, p.shape, "weight", p.dtype)
    loss = -(t * _log(p) + (1 - t) * _log1m(p))
    return _reduce(loss if w is None else loss * w, reduction)


def binary_cross_entropy_with_logits(
    input: ArrayLike,
    target: ArrayLike,
    *,
    weight: ArrayLike | None = None,
    pos_weight: ArrayLike | None = None,
    reduction: Reduction = "mean",
):
    """Binary cross-entropy on logits z (``F.binary_cross_entropy_with_logits``)::

        w * (pw * t * softplus(-z) + (1 - t) * softplus(z)),  softplus(z) = log(1 + e^z)

    computed with ``logaddexp`` so z = +/-1000 is finite and exact. ``pos_weight``
    (pw, default 1) weighs the positive term and broadcasts along the last (class)
    axis; ``weight`` broadcasts to the input's shape; ``target`` lies in [0, 1].
    """
    _check_reduction(reduction)
    z, t = _paired(input, target)
    _check_unit_interval(t, "target")
    w = _broadcast_to(weight, z.shape, "weight", z.dtype)
    pw = _broadcast_to(pos_weight, z.shape, "pos_weight", z.dtype)
    positive = t * _softplus(-z)
    loss = (positive if pw is None else pw * positive) + (1 - t) * _softplus(z)
    return _reduce(loss if w is None else loss * w, reduction)


# ---------------------------------------------------------------- multi-class

def _class_last(x: ArrayLike, name: str) -> tuple[np.ndarray, bool]:
    """Input of shape (C,), (N, C) or (N, C, d1, ...) with the class axis moved last.

    Returns the array and whether it was unbatched (shape (C,)).
    """
    a = _floats(x, name)
    if a.ndim == 0:
        raise ValueError(f"{name} must have a class dimension: shape (C,), (N, C) or (N, C, d1, ...); got a scalar")
    if a.ndim == 1:
        return a[None, :], True
    return np.moveaxis(a, 1, -1), False


def _class_targets(target: np.ndarray, shape: tuple[int, ...], n_classes: int, ignore_index: int) -> np.ndarray:
    """Validated integer class indices of ``shape`` (the input's shape without its class axis)."""
    if target.shape != shape:
        raise ValueError(f"target must hold class indices of shape {shape} (or probabilities of the input's "
                         f"shape), got shape {target.shape}")
    if target.dtype.kind == "f":
        if not np.all(np.isfinite(target) & (target == np.round(target))):
            bad = target[~(np.isfinite(target) & (target == np.round(target)))].flat[0]
            raise ValueError(f"target class indices must be integers, found {bad!r}")
        target = target.astype(np.int64)
    elif target.dtype.kind not in "iu":
        raise TypeError(f"target must hold integer class indices, got dtype {target.dtype}")
    out = (target < 0) | (target >= n_classes)
    out &= target != ignore_index
    if out.any():
        raise ValueError(f"target class indices must be in [0, {n_classes}) or equal ignore_index="
                         f"{ignore_index}; found {target[out].flat[0]}")
    return target.astype(np.int64, copy=False)


def _class_weight(weight: ArrayLike | None, n_classes: int, dtype: np.dtype) -> np.ndarray:
    if weight is None:
        return np.ones(n_classes, dtype)
    w = _floats(weight, "weight", dtype)
    if w.shape != (n_classes,):
        raise ValueError(f"weight must have one entry per class, shape ({n_classes},); got {w.shape}")
    return w


def _check_label_smoothing(label_smoothing: float) -> None:
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing!r}")


def _hard_target_loss(logp: np.ndarray, target: np.ndarray, w: np.ndarray, ignore_index: int,
                      label_smoothing: float, reduction: str):
    """Per-target ``(1-eps) * w_y * -log p_y + eps/C * sum_c w_c * -log p_c`` (0 where ignored).

    ``mean`` divides by the summed weights ``w_y`` of the targets that are not ignored
    (NaN when all are), for both terms, exactly like ``F.cross_entropy``.
    """
    n_classes = logp.shape[-1]
    kept = target != ignore_index
    safe = np.where(kept, target, 0)
    picked = np.take_along_axis(logp, safe[..., None], axis=-1)[..., 0]
    w_y = np.where(kept, w[safe], 0).astype(logp.dtype)
    loss = np.where(kept, -w_y * picked, 0).astype(logp.dtype)
    if label_smoothing > 0:
        eps = logp.dtype.type(label_smoothing)
        smooth = np.where(kept, -(logp * w).sum(axis=-1), 0).astype(logp.dtype)
        loss = (1 - eps) * loss + (eps / n_classes) * smooth
    return _reduce(loss, reduction, w_y.sum(dtype=logp.dtype))


def _soft_target_loss(logp: np.ndarray, target: np.ndarray, w: np.ndarray, label_smoothing: float,
                      reduction: str):
    """``-sum_c w_c * t_c * log p_c`` with ``t`` smoothed to ``(1-eps) t + eps/C``; ``mean``
    divides by the number of samples (not by the weights), like ``F.cross_entropy``."""
    n_classes = logp.shape[-1]
    if label_smoothing > 0:
        eps = logp.dtype.type(label_smoothing)
        target = target * (1 - eps) + eps / n_classes
    loss = -(logp * target * w).sum(axis=-1)
    return _reduce(loss, reduction, logp.size // n_classes if n_classes else 0)


def _log_softmax(x: np.ndarray) -> np.ndarray:
    """``x - logsumexp(x)`` along the last axis, with the row maximum subtracted first."""
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        m = np.max(x, axis=-1, keepdims=True) if x.shape[-1] else np.zeros((*x.shape[:-1], 1), x.dtype)
        m = np.where(np.isfinite(m), m, 0)
        shifted = x - m
        return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _log_probabilities(p: np.ndarray) -> np.ndarray:
    _check_unit_interval(p, "input")
    total = p.sum(axis=-1)
    tol = 1e-3 if p.dtype == np.float32 else 1e-6
    off = np.abs(total - 1) > tol  # NaN rows pass: they give a NaN loss
    if off.any():
        raise ValueError(f"input probabilities must sum to 1 over the class dimension (dim 1); a row sums to "
                         f"{total[off].flat[0]!r} (pass from_logits=True for unnormalized scores)")
    return _log(p)


def _multiclass(logp: np.ndarray, unbatched: bool, target: ArrayLike, weight, ignore_index: int,
                label_smoothing: float, reduction: str):
    n_classes = logp.shape[-1]
    w = _class_weight(weight, n_classes, logp.dtype)
    t = np.asarray(target)
    if unbatched:
        t = t[None, ...]
    if t.shape == logp.shape and t.dtype.kind == "f":  # class probabilities (class axis already last)
        t = t.astype(logp.dtype, copy=False)
        _check_unit_interval(t, "target")
        loss = _soft_target_loss(logp, t, w, label_smoothing, reduction)
    else:
        t = _class_targets(t, logp.shape[:-1], n_classes, ignore_index)
        loss = _hard_target_loss(logp, t, w, ignore_index, label_smoothing, reduction)
    if reduction != "none":
        return loss
    return loss[0] if unbatched else loss


def _prepare_target(target: ArrayLike, input_shape: tuple[int, ...]) -> np.ndarray:
    """Probability targets come in the input's layout (class axis 1): move it last too."""
    t = np.asarray(target)
    if t.dtype.kind == "f" and t.shape == input_shape and t.ndim > 2:
        return np.moveaxis(t, 1, -1)
    return t


def cross_entropy(
    input: ArrayLike,
    target: ArrayLike,
    *,
    weight: ArrayLike | None = None,
    ignore_index: int = -100,
    reduction: Reduction = "mean",
    label_smoothing: float = 0.0,
    from_logits: bool = True,
):
    """Cross-entropy (``F.cross_entropy``) over the class dimension, dim 1.

    ``input`` has shape (C,), (N, C) or (N, C, d1, ...): logits (``from_logits=True``,
    log p = x - logsumexp(x)) or probabilities (``from_logits=False``, each row in
    [0, 1] summing to 1; log p clamped at -100 like ``binary_cross_entropy``).

    ``target`` is either integer class indices of shape (), (N,) or (N, d1, ...), or
    class probabilities of the input's shape (soft targets, float). Per target, with
    class weights w (default 1) and label smoothing eps::

        hard:  (1 - eps) * w_y * -log p_y + eps / C * sum_c w_c * -log p_c
        soft:  -sum_c w_c * ((1 - eps) t_c + eps / C) * log p_c

    Hard targets equal to ``ignore_index`` contribute 0, and ``mean`` divides by the
    summed ``w_y`` of the others (NaN if all are ignored); for soft targets ``mean``
    divides by the number of samples and ``ignore_index`` does not apply (as in PyTorch).
    """
    _check_reduction(reduction)
    _check_label_smoothing(label_smoothing)
    a = np.asarray(input)
    x, unbatched = _class_last(a, "input")
    logp = _log_softmax(x) if from_logits else _log_probabilities(x)
    return _multiclass(logp, unbatched, _prepare_target(target, a.shape), weight, ignore_index,
                       label_smoothing, reduction)


def nll(
    input: ArrayLike,
    target: ArrayLike,
    *,
    weight: ArrayLike | None = None,
    ignore_index: int = -100,
    reduction: Reduction = "mean",
):
    """Negative log-likelihood (``F.nll_loss``): ``-w_y * input[y]`` per target.

    ``input`` holds log-probabilities, shape (C,), (N, C) or (N, C, d1, ...);
    ``target`` integer class indices. ``ignore_index`` and ``mean`` (divides by
    the summed weights of the targets not ignored) as in :func:`cross_entropy`.
    """
    _check_reduction(reduction)
    x, unbatched = _class_last(input, "input")
    t = np.asarray(target)
    if t.dtype.kind == "f" and t.shape == np.shape(input):
        raise ValueError("nll needs integer class indices as target; use cross_entropy for probability targets")
    return _multiclass(x, unbatched, t, weight, ignore_index, 0.0, reduction)


def kl_div(
    input: ArrayLike,
    target: ArrayLike,
    *,
    reduction: Literal["mean", "sum", "none", "batchmean"] = "mean",
    log_target: bool = False,
):
    """Kullback-Leibler divergence with PyTorch's argument order (``F.kl_div``).

    ``input`` holds log-probabilities log q; ``target`` probabilities p (or log p
    with ``log_target=True``). Pointwise::

        p * (log p - log q)   computed as xlogy(p, p) - p * log q  (0 where p = 0)

    ``mean`` averages over every element; ``batchmean`` (the true KL per sample)
    divides the sum by the batch size, ``input.shape[0]``.
    """
    _check_reduction(reduction, (*_REDUCTIONS, "batchmean"))
    logq, t = _paired(input, target)
    with np.errstate(divide="ignore", invalid="ignore"):
        if log_target:  # like PyTorch, log p = -inf gives 0 * inf = NaN here
            loss = np.exp(t) * (t - logq)
        else:
            _check_unit_interval(t, "target")
            loss = np.where(t == 0, t.dtype.type(0), t * np.log(t)) - t * logq
    if reduction == "batchmean":
        return _reduce(loss, "sum") if loss.ndim == 0 else _reduce(loss, "mean", loss.shape[0])
    return _reduce(loss, reduction)
