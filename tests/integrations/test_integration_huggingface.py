"""Hugging Face ``Trainer`` with a tiny BERT built from a config (no download): the plot against
``trainer.state.log_history``."""

from __future__ import annotations

import numbers

import numpy as np
import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments

from lossviz_widget import LossPlot
from lossviz_widget.integrations.huggingface import LossPlotCallback

torch.set_num_threads(1)


class Tokens(torch.utils.data.Dataset):
    """Random token ids; the label says whether the first token is in the lower half of the vocabulary."""

    def __init__(self, n: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(0, 50, (n, 8), generator=g)
        self.labels = (self.ids[:, 0] < 25).long()

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "labels": self.labels[i]}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=16, num_labels=2)
    torch.manual_seed(0)
    args = TrainingArguments(
        output_dir=str(tmp_path_factory.mktemp("hf")), per_device_train_batch_size=8, num_train_epochs=2,
        logging_steps=2, eval_strategy="epoch", save_strategy="no", report_to=[], use_cpu=True,
        disable_tqdm=True, learning_rate=1e-3, seed=0)
    plot = LossPlot(title="bert")
    callback = LossPlotCallback(plot)
    trainer = Trainer(model=BertForSequenceClassification(config), args=args, train_dataset=Tokens(48, 1),
                      eval_dataset=Tokens(16, 2), callbacks=[callback])
    trainer.train()
    return callback, trainer


def test_every_logged_number_reached_the_plot_at_global_step(run):
    callback, trainer = run
    *rows, summary = trainer.state.log_history
    assert "train_runtime" in summary and not any("train_runtime" in row for row in rows)
    expected: dict[str, tuple[list, list]] = {}
    for row in rows:
        for name, value in row.items():
            if name != "step" and isinstance(value, numbers.Real):
                expected.setdefault(name, ([], []))[0].append(row["step"])
                expected[name][1].append(value)
    history = callback.plot.history
    assert set(history) == set(expected)
    assert {"loss", "grad_norm", "learning_rate", "epoch", "eval_loss", "eval_runtime"} <= set(history)
    for name, (steps, values) in expected.items():
        np.testing.assert_array_equal(history[name].steps, steps, err_msg=name)
        np.testing.assert_array_equal(history[name].values, values, err_msg=name)
    # 48 samples / 8 = 6 steps per epoch, logged every 2; evaluation at each epoch's end
    np.testing.assert_array_equal(history["loss"].steps, [2, 4, 6, 8, 10, 12])
    np.testing.assert_array_equal(history["eval_loss"].steps, [6, 12])
    assert history["learning_rate"].values[-1] < history["learning_rate"].values[0]  # linear decay


def test_summary_row_is_kept_aside(run):
    callback, trainer = run
    summary = trainer.state.log_history[-1]
    assert callback.summary == {k: v for k, v in summary.items() if k != "step"}
    assert "train_loss" not in callback.plot.history
