"""XGBoost and LightGBM callbacks against the frameworks' own evaluation records."""

from __future__ import annotations

import math

import lightgbm as lgb
import numpy as np
import pytest
import xgboost as xgb

from lossviz_widget import LossPlot
from lossviz_widget._core.grouping import family_of
from lossviz_widget.integrations.lightgbm import LossPlotCallback as LightGBMCallback
from lossviz_widget.integrations.xgboost import LossPlotCallback as XGBoostCallback

RNG = np.random.default_rng(0)
X = RNG.normal(size=(200, 5))
Y = (X[:, 0] + 0.3 * RNG.normal(size=200) > 0).astype(int)
TRAIN, VALID = slice(0, 150), slice(150, 200)
ROUNDS = 6


def _assert_matches(plot: LossPlot, record: dict, rename: dict[str, str]) -> None:
    expected = {f"{rename.get(data, data)}/{metric}": values
                for data, metrics in record.items() for metric, values in metrics.items()}
    assert set(plot.history) == set(expected)
    for name, values in expected.items():
        np.testing.assert_array_equal(plot.history[name].steps, np.arange(ROUNDS), err_msg=name)
        np.testing.assert_array_equal(plot.history[name].values, np.asarray(values, dtype=np.float64), err_msg=name)


def test_xgboost_sklearn_api_with_renamed_datasets():
    callback = XGBoostCallback(datasets={"validation_0": "train", "validation_1": "valid"})
    model = xgb.XGBClassifier(n_estimators=ROUNDS, max_depth=2, n_jobs=1, callbacks=[callback],
                              eval_metric=["logloss", "error"])
    model.fit(X[TRAIN], Y[TRAIN], eval_set=[(X[TRAIN], Y[TRAIN]), (X[VALID], Y[VALID])], verbose=False)
    _assert_matches(callback.plot, model.evals_result(), {"validation_0": "train", "validation_1": "valid"})
    assert {family_of(n) for n in callback.plot.history} == {"logloss", "error"}  # train and valid share panels


def test_xgboost_native_train_keeps_dataset_names_and_nan():
    calls = []

    def nan_after_3(predt, dtrain):  # a custom metric that goes NaN from round 3 (2 sets a round): kept
        calls.append(1)
        return "custom", math.nan if len(calls) > 6 else 1.0

    record: dict = {}
    plot = LossPlot()
    dtrain, dvalid = xgb.DMatrix(X[TRAIN], Y[TRAIN]), xgb.DMatrix(X[VALID], Y[VALID])
    xgb.train({"objective": "binary:logistic", "max_depth": 2, "nthread": 1, "eval_metric": "logloss"}, dtrain,
              ROUNDS, evals=[(dtrain, "train"), (dvalid, "valid")], custom_metric=nan_after_3,
              evals_result=record, verbose_eval=False, callbacks=[XGBoostCallback(plot)])
    _assert_matches(plot, record, {})
    assert np.isnan(plot.history["valid/custom"].values[3:]).all() and len(plot.history["valid/custom"]) == ROUNDS
    assert family_of("validation_0/logloss") == family_of("valid/logloss") == "logloss"


@pytest.mark.parametrize("valid_names", [None, ["train", "valid"]])
def test_lightgbm_train(valid_names):
    record: dict = {}
    callback = LightGBMCallback(title="gbm")
    train = lgb.Dataset(X[TRAIN], Y[TRAIN])
    lgb.train({"objective": "binary", "verbose": -1, "num_threads": 1, "metric": ["binary_logloss", "auc"]},
              train, ROUNDS, valid_sets=[train, lgb.Dataset(X[VALID], Y[VALID], reference=train)],
              valid_names=valid_names, callbacks=[callback, lgb.record_evaluation(record)])
    _assert_matches(callback.plot, record, {})
    names = set(callback.plot.history)
    assert ("train/auc" in names) == (valid_names is not None)
    assert {family_of(n) for n in names} == {"binary_logloss", "auc"}


def test_lightgbm_sklearn_api_renamed():
    callback = LightGBMCallback(datasets={"training": "train", "valid_1": "valid"})
    model = lgb.LGBMRegressor(n_estimators=ROUNDS, num_threads=1, verbose=-1)
    model.fit(X[TRAIN], X[TRAIN, 0], eval_set=[(X[TRAIN], X[TRAIN, 0]), (X[VALID], X[VALID, 0])],
              callbacks=[callback])
    _assert_matches(callback.plot, model.evals_result_, {"training": "train", "valid_1": "valid"})
