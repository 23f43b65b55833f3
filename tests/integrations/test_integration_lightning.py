"""PyTorch Lightning with the real ``Trainer``: the plot logger next to a CSVLogger in the same run."""

from __future__ import annotations

import csv
import math

import lightning.pytorch as L
import numpy as np
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.utilities import rank_zero_only

from lossviz_widget import LossPlot
from lossviz_widget.integrations.lightning import LossPlotLogger

torch.set_num_threads(1)


def _regression(package):
    """A tiny linear regression LightningModule of ``package`` (lightning.pytorch or pytorch_lightning)."""

    class Regression(package.LightningModule):
        def __init__(self, lr: float = 0.1) -> None:
            super().__init__()
            self.save_hyperparameters()
            self.layer = torch.nn.Linear(4, 1)

        def _loss(self, batch):
            x, y = batch
            return torch.nn.functional.mse_loss(self.layer(x).squeeze(-1), y)

        def training_step(self, batch, batch_idx):
            loss = self._loss(batch)
            self.log("train_loss", loss, on_step=True, on_epoch=True)
            return loss

        def validation_step(self, batch, batch_idx):
            self.log("val_loss", self._loss(batch))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)

    torch.manual_seed(0)
    return Regression()


def _loader():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 4, generator=g)
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, x[:, 0]), batch_size=8)


def _fit(trainer_module, loggers, epochs=3):
    trainer = trainer_module.Trainer(
        max_epochs=epochs, logger=loggers, log_every_n_steps=2, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu", devices=1)
    trainer.fit(_regression(trainer_module), _loader(), _loader())
    return trainer


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    plot_logger = LossPlotLogger(title="lightning")
    csv_logger = CSVLogger(tmp_path_factory.mktemp("csv"))
    trainer = _fit(L, [plot_logger, csv_logger])
    with open(f"{csv_logger.log_dir}/metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return plot_logger, trainer, rows


def test_every_csv_value_reached_the_plot_at_its_step(run):
    plot_logger, _, rows = run
    expected: dict[str, tuple[list, list]] = {}
    for row in rows:  # sparse rows (Lightning #4143): each holds only some metrics
        for name, value in row.items():
            if name != "step" and value != "":
                expected.setdefault(name, ([], []))[0].append(float(row["step"]))
                expected[name][1].append(float(value))
    history = plot_logger.plot.history
    assert set(history) == set(expected) == {"epoch", "train_loss_step", "train_loss_epoch", "val_loss"}
    for name, (steps, values) in expected.items():
        np.testing.assert_array_equal(history[name].steps, steps, err_msg=name)
        np.testing.assert_allclose(history[name].values, values, rtol=1e-15, err_msg=name)
    # 5 batches x 3 epochs, every 2nd step logged; epoch values at the epoch's last batch
    np.testing.assert_array_equal(history["train_loss_step"].steps, [1, 3, 5, 7, 9, 11, 13])
    np.testing.assert_array_equal(history["train_loss_epoch"].steps, [4, 9, 14])
    np.testing.assert_array_equal(history["val_loss"].steps, [4, 9, 14])


def test_final_values_equal_callback_metrics(run):
    plot_logger, trainer, _ = run
    metrics = trainer.callback_metrics
    for name in ("train_loss_epoch", "val_loss"):
        assert plot_logger.plot.history[name].values[-1] == pytest.approx(float(metrics[name]), rel=1e-7)
    assert plot_logger.hparams == {"lr": 0.1}
    assert plot_logger.experiment is plot_logger.plot
    epoch_loss = plot_logger.plot.history["train_loss_epoch"].values
    assert epoch_loss[-1] < epoch_loss[0]


def test_only_global_rank_zero_plots():
    plot_logger = LossPlotLogger()
    rank = rank_zero_only.rank
    try:
        rank_zero_only.rank = 1
        plot_logger.log_metrics({"loss": 1.0}, step=0)
        plot_logger.log_hyperparams({"lr": 1.0})
    finally:
        rank_zero_only.rank = rank
    assert len(plot_logger.plot.history) == 0 and plot_logger.hparams == {}
    plot_logger.log_metrics({"loss": math.nan, "note": "text"}, step=0)
    assert list(plot_logger.plot.history) == ["loss"] and math.isnan(plot_logger.plot.history["loss"].values[0])


def test_standalone_pytorch_lightning_package():
    import pytorch_lightning

    from lossviz_widget.integrations.pytorch_lightning import LossPlotLogger as PLLogger

    plot = LossPlot()
    plot_logger = PLLogger(plot)
    assert isinstance(plot_logger, pytorch_lightning.loggers.Logger) and plot_logger.plot is plot
    trainer = _fit(pytorch_lightning, plot_logger, epochs=1)
    assert plot.history["val_loss"].values[-1] == pytest.approx(float(trainer.callback_metrics["val_loss"]))
    np.testing.assert_array_equal(plot.history["train_loss_step"].steps, [1, 3])
