"""scikit-learn: the curves of a fitted ``MLPClassifier``/``MLPRegressor``, and ``partial_fit`` loops.

>>> plot = plot_mlp(MLPClassifier(early_stopping=True).fit(X, y))   # loss_curve_ + validation_scores_
>>> for step, (xb, yb) in enumerate(batches):                       # any estimator with partial_fit
...     partial_fit_step(sgd, xb, yb, plot, step=step, validation=(X_val, y_val), classes=[0, 1])

``partial_fit_step`` computes the loss itself, since most estimators do not report one:
``log_loss`` from ``predict_proba`` when the classifier has it, else ``hinge_loss`` from
``decision_function`` (sklearn's multi-class Crammer-Singer form), and ``mse`` for regressors.
The metric names say which loss it is; log loss and MSE come from :mod:`lossviz_widget.losses`.
Nothing is displayed unless ``display=True``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import is_classifier

from .._ui import LossPlot
from ..losses import cross_entropy, mse
from ._common import resolve_plot

__all__ = ["partial_fit_step", "plot_mlp"]

_EPS = np.finfo(np.float64).eps  # probabilities are clipped to [eps, 1 - eps], as sklearn does


def plot_mlp(estimator: Any, plot: LossPlot | None = None, *, display: bool = False, title: str = "") -> LossPlot:
    """Log a fitted MLP's ``loss_curve_`` as ``loss`` at steps = epochs (0, 1, ...), and with
    ``early_stopping=True`` its ``validation_scores_`` as ``val_accuracy`` (classifier) or
    ``val_r2`` (regressor). NaN values are kept."""
    curve = getattr(estimator, "loss_curve_", None)
    if curve is None:
        raise ValueError(
            f"estimator must be a fitted MLPClassifier/MLPRegressor with loss_curve_ (solver 'sgd' or 'adam'), "
            f"got {type(estimator).__name__} without one"
        )
    scores = getattr(estimator, "validation_scores_", None)
    score_name = "val_accuracy" if is_classifier(estimator) else "val_r2"
    target = resolve_plot(plot, display=display, title=title)
    for epoch, loss in enumerate(curve):
        row = {"loss": loss}
        if scores is not None and epoch < len(scores):
            row[score_name] = scores[epoch]
        target.log(row, step=epoch)
    target.flush()
    return target


def _class_index(y: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Column of each label of ``y`` in ``classes`` (sorted, as sklearn's ``classes_``); a label
    outside them is a ValueError, not the neighbouring class ``searchsorted`` would give."""
    index = np.minimum(np.searchsorted(classes, y), len(classes) - 1)
    unknown = classes[index] != y
    if unknown.any():
        raise ValueError(f"y holds label {y[unknown][0]!r}, which is not among the estimator's "
                         f"classes_ {classes.tolist()}")
    return index


def _log_loss(y: np.ndarray, proba: np.ndarray, classes: np.ndarray) -> float:
    """Mean cross-entropy of ``proba`` (columns in ``classes`` order), as ``sklearn.metrics.log_loss``:
    probabilities clipped to [eps, 1 - eps] and renormalized first."""
    proba = np.clip(np.asarray(proba, dtype=np.float64), _EPS, 1 - _EPS)
    proba = proba / proba.sum(axis=1, keepdims=True)
    return float(cross_entropy(proba, _class_index(y, classes), from_logits=False))


def _hinge_loss(y: np.ndarray, decision: np.ndarray, classes: np.ndarray) -> float:
    """Mean hinge loss of ``decision_function`` output, as ``sklearn.metrics.hinge_loss``."""
    decision = np.asarray(decision, dtype=np.float64)
    index = _class_index(y, classes)
    if decision.ndim == 1:  # binary: the score of classes[1]; labels become -1/+1
        margin = np.where(index == 1, 1.0, -1.0) * decision
    else:  # multi-class: true class score minus the best other score
        rows = np.arange(len(y))
        true = decision[rows, index]
        others = decision.copy()
        others[rows, index] = -np.inf
        margin = true - others.max(axis=1)
    return float(np.mean(np.maximum(0.0, 1.0 - margin)))


def _loss(estimator: Any, X: Any, y: Any) -> tuple[str, float]:
    """The name and value of the loss ``estimator`` makes on ``(X, y)``."""
    y = np.asarray(y)
    if not is_classifier(estimator):
        return "mse", float(mse(np.asarray(estimator.predict(X), dtype=np.float64), y.astype(np.float64)))
    classes = np.asarray(estimator.classes_)
    if hasattr(estimator, "predict_proba"):
        return "log_loss", _log_loss(y, estimator.predict_proba(X), classes)
    return "hinge_loss", _hinge_loss(y, estimator.decision_function(X), classes)


def partial_fit_step(estimator: Any, X: Any, y: Any, plot: LossPlot, *, step: int | None = None,
                     validation: tuple[Any, Any] | None = None, **fit_params: Any) -> float:
    """``estimator.partial_fit(X, y, **fit_params)``, then log its loss on this batch (after the
    update) and, with ``validation=(X_val, y_val)``, as ``val_<loss>`` on that set. Returns the
    batch loss. ``classes=`` for the first call of a classifier goes in ``fit_params``."""
    if not hasattr(estimator, "partial_fit"):
        raise TypeError(f"estimator must have partial_fit, got {type(estimator).__name__}")
    estimator.partial_fit(X, y, **fit_params)
    name, value = _loss(estimator, X, y)
    row = {name: value}
    if validation is not None:
        row["val_" + name] = _loss(estimator, *validation)[1]
    plot.log(row, step=step)
    return value
