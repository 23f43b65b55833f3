"""Integrations survive reuse: a second fit, clones and deep copies, a new Trainer with the same logger.

Each restarts its steps at 0 in the same plot: a step rewind, which the plot's ``on_rewind``
handles (default: the previous fit's points are purged; ``"new_run"``: both stay).
"""

from __future__ import annotations

import copy
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pytest
import torch
import xgboost as xgb
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.model_selection import cross_val_score

from lossviz_widget import LossPlot
from lossviz_widget.integrations.lightgbm import LossPlotCallback as LightGBMCallback
from lossviz_widget.integrations.xgboost import LossPlotCallback as XGBoostCallback

X, Y = make_classification(n_samples=200, n_features=6, random_state=0)
ROUNDS = 5


def _xgb(callback: XGBoostCallback) -> xgb.XGBClassifier:
    return xgb.XGBClassifier(n_estimators=ROUNDS, max_depth=2, n_jobs=1, callbacks=[callback])


def test_xgboost_second_fit_clone_and_cross_val_score() -> None:
    plot = LossPlot(on_rewind="new_run")
    model = _xgb(XGBoostCallback(plot))
    model.fit(X, Y, eval_set=[(X, Y)], verbose=False)
    model.fit(X, Y, eval_set=[(X, Y)], verbose=False)  # was: "step 0 goes backwards"
    assert plot.runs == ("default", "default (resumed 1)")
    twin = clone(model)  # what GridSearchCV and cross_val_score do: was "Widgets cannot be copied"
    assert twin.callbacks[0] is not model.callbacks[0] and twin.callbacks[0].plot is plot
    scores = cross_val_score(model, X, Y, cv=3, params={"eval_set": [(X, Y)], "verbose": False})
    assert len(scores) == 3
    assert len(plot.runs) == 5  # every fit of every clone, side by side
    for run in plot.runs:
        assert plot.run(run).history["validation_0/logloss"].steps.tolist() == list(range(ROUNDS))
    plot.close()


def test_xgboost_refit_purges_by_default_and_deepcopy_shares_the_plot() -> None:
    callback = XGBoostCallback()
    model = _xgb(callback)
    model.fit(X, Y, eval_set=[(X, Y)], verbose=False)
    first = callback.plot.history["validation_0/logloss"].values.copy()
    model.set_params(max_depth=1).fit(X, Y, eval_set=[(X, Y)], verbose=False)
    h = callback.plot.history["validation_0/logloss"]
    assert h.steps.tolist() == list(range(ROUNDS)) and not np.array_equal(h.values, first)  # the refit's curve
    assert callback.plot.frame().notes == [f"validation_0/logloss: resumed at step 0, {ROUNDS} points replaced"]
    twin = copy.deepcopy(callback)
    assert twin.plot is callback.plot and twin.datasets == callback.datasets and twin.datasets is not callback.datasets
    callback.plot.close()


def test_lightgbm_refit_with_the_same_callback() -> None:
    callback = LightGBMCallback()
    model = lgb.LGBMClassifier(n_estimators=ROUNDS, num_leaves=4, verbose=-1, n_jobs=1)
    for _ in range(2):
        model.fit(X, Y, eval_X=(X,), eval_y=(Y,), callbacks=[callback])
    (h,) = callback.plot.history.values()  # (LightGBM names the set after its version's rules)
    assert h.steps.tolist() == list(range(ROUNDS))
    assert copy.deepcopy(callback).plot is callback.plot
    callback.plot.close()


@pytest.mark.timeout(300)
def test_lightning_new_trainer_same_logger_and_versions(tmp_path: Path) -> None:
    import lightning.pytorch as L

    from lossviz_widget.integrations.lightning import LossPlotLogger

    class Regression(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(4, 1)

        def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.layer(x).squeeze(-1), y)
            self.log("train_loss", loss)
            return loss

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=0.1)

    torch.manual_seed(0)
    x = torch.randn(40, 4)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, x[:, 0]), batch_size=8)

    def fit(logger: LossPlotLogger) -> L.Trainer:
        trainer = L.Trainer(max_epochs=2, logger=logger, log_every_n_steps=1, default_root_dir=tmp_path,
                            enable_progress_bar=False, enable_model_summary=False, accelerator="cpu", devices=1)
        trainer.fit(Regression(), loader)
        return trainer

    logger = LossPlotLogger(save_dir=tmp_path)
    first = fit(logger)
    second = fit(logger)  # a new Trainer with the same logger: steps restart, no exception
    assert first.log_dir == second.log_dir == str(tmp_path)
    assert logger.log_dir == str(tmp_path / "lossviz" / "version_0")
    assert (tmp_path / "lossviz" / "version_0" / "checkpoints").is_dir()
    steps = logger.plot.history["train_loss"].steps
    assert steps[0] == 0 and np.all(np.diff(steps) > 0)  # the second fit's curve, not two spliced
    other = LossPlotLogger(save_dir=tmp_path)  # a new run numbers itself after the existing ones
    fit(other)
    assert other.version == 1 and (tmp_path / "lossviz" / "version_1" / "checkpoints").is_dir()
    for lg in (logger, other):
        lg.plot.close()
