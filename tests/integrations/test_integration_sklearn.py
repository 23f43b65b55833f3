"""scikit-learn: MLP curves against ``loss_curve_``/``validation_scores_``, and the partial_fit losses
against ``sklearn.metrics``."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import SGDClassifier, SGDRegressor
from sklearn.metrics import hinge_loss, log_loss, mean_squared_error
from sklearn.neural_network import MLPClassifier, MLPRegressor

from lossviz_widget import LossPlot
from lossviz_widget.integrations.sklearn import (  # the two private ones: checked against sklearn.metrics
    _hinge_loss,
    _log_loss,
    partial_fit_step,
    plot_mlp,
)

RNG = np.random.default_rng(0)
X = RNG.normal(size=(300, 5))
Y3 = np.array(["a", "b", "c"])[(X[:, 0] > 0).astype(int) + (X[:, 1] > 0)]
Y2 = (X[:, 0] + 0.5 * RNG.normal(size=300) > 0).astype(int)


def test_mlp_classifier_with_early_stopping():
    mlp = MLPClassifier(hidden_layer_sizes=(8,), max_iter=40, early_stopping=True, random_state=0).fit(X, Y3)
    plot = plot_mlp(mlp, title="mlp")
    n = mlp.n_iter_
    assert set(plot.history) == {"loss", "val_accuracy"} and plot.title == "mlp"
    np.testing.assert_array_equal(plot.history["loss"].steps, np.arange(n))
    np.testing.assert_array_equal(plot.history["loss"].values, mlp.loss_curve_)
    np.testing.assert_array_equal(plot.history["val_accuracy"].values, mlp.validation_scores_)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_mlp_regressor_into_an_existing_plot():
    mlp = MLPRegressor(hidden_layer_sizes=(8,), max_iter=15, random_state=0).fit(X, X[:, 0])
    plot = LossPlot()
    assert plot_mlp(mlp, plot) is plot
    assert list(plot.history) == ["loss"]
    np.testing.assert_array_equal(plot.history["loss"].values, mlp.loss_curve_)
    with pytest.raises(ValueError, match="fitted MLPClassifier/MLPRegressor"):
        plot_mlp(MLPRegressor(), plot)  # not fitted
    with pytest.raises(ValueError, match="fitted MLPClassifier/MLPRegressor"):
        plot_mlp(SGDRegressor(), plot)


@pytest.mark.parametrize("y", [Y2, Y3], ids=["binary", "3-class"])
def test_private_losses_equal_sklearn_metrics(y):
    for loss in ("log_loss", "modified_huber", "hinge"):
        model = SGDClassifier(loss=loss, max_iter=5, tol=None, random_state=0).fit(X, y)
        decision = model.decision_function(X)
        assert _hinge_loss(y, decision, model.classes_) == pytest.approx(
            hinge_loss(y, decision, labels=model.classes_), rel=1e-12)
        if loss != "hinge":
            proba = model.predict_proba(X)
            assert _log_loss(y, proba, model.classes_) == pytest.approx(
                log_loss(y, proba, labels=model.classes_), rel=1e-12)
    # exact 0/1 probabilities are clipped, as sklearn does
    hard = np.eye(3)[np.searchsorted(["a", "b", "c"], Y3[::-1])]
    assert _log_loss(Y3, hard, np.array(["a", "b", "c"])) == pytest.approx(log_loss(Y3, hard), rel=1e-12)


@pytest.mark.parametrize("loss, name", [("log_loss", "log_loss"), ("hinge", "hinge_loss")])
def test_partial_fit_loop(loss, name):
    model, plot, batches = SGDClassifier(loss=loss, random_state=0), LossPlot(), np.array_split(np.arange(300), 6)
    returned = [partial_fit_step(model, X[i], Y3[i], plot, step=s, validation=(X, Y3), classes=["a", "b", "c"])
                for s, i in enumerate(batches)]
    assert set(plot.history) == {name, "val_" + name}
    np.testing.assert_array_equal(plot.history[name].steps, np.arange(6))
    np.testing.assert_array_equal(plot.history[name].values, returned)
    # the last logged values are the fitted model's losses, computed by sklearn
    if loss == "log_loss":
        expected = log_loss(Y3, model.predict_proba(X), labels=model.classes_)
        last = log_loss(Y3[batches[-1]], model.predict_proba(X[batches[-1]]), labels=model.classes_)
    else:
        expected = hinge_loss(Y3, model.decision_function(X), labels=model.classes_)
        last = hinge_loss(Y3[batches[-1]], model.decision_function(X[batches[-1]]), labels=model.classes_)
    assert plot.history["val_" + name].values[-1] == pytest.approx(expected, rel=1e-12)
    assert returned[-1] == pytest.approx(last, rel=1e-12)


def test_partial_fit_regressor_and_bad_estimator():
    model, plot = SGDRegressor(random_state=0), LossPlot()
    for step in range(3):
        partial_fit_step(model, X, X[:, 0], plot, step=step)
    assert plot.history["mse"].values[-1] == pytest.approx(mean_squared_error(X[:, 0], model.predict(X)), rel=1e-12)
    with pytest.raises(TypeError, match="estimator must have partial_fit"):
        partial_fit_step(object(), X, X[:, 0], plot)


@pytest.mark.parametrize("loss", ["log_loss", "hinge"])
def test_validation_labels_the_estimator_never_saw_are_an_error(loss):
    """A label outside ``classes_`` must not be scored as a neighbouring class (a silently wrong loss)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = np.where(X[:, 0] > 0, "c", "a")
    est = SGDClassifier(loss=loss, random_state=0)
    p = LossPlot()
    try:
        partial_fit_step(est, X, y, p, classes=np.array(["a", "c"]))
        with pytest.raises(ValueError, match="'b'"):
            partial_fit_step(est, X, y, p, validation=(X[:2], np.array(["a", "b"])))
        assert "val_log_loss" not in p.history and "val_hinge_loss" not in p.history  # nothing logged
    finally:
        p.close()
