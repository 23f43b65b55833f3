"""watch with one flag: the loop helpers, Lightning's logger and the Hugging Face callback, with the
real frameworks on CPU; the model is watched during training and unwatched at its end."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from lossviz_widget import LossPlot  # noqa: E402
from lossviz_widget.integrations.loop import live, track  # noqa: E402

torch.set_num_threads(1)


def _hooked(model: nn.Module, opt: torch.optim.Optimizer | None = None) -> int:
    """Hooks on ``model`` (and ``opt``): forward, forward-pre, post-accumulate-grad, optimizer step."""
    n = sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())
    n += sum(len(getattr(p, "_post_accumulate_grad_hooks", None) or {}) for p in model.parameters())
    return n + (0 if opt is None else len(opt._optimizer_step_pre_hooks) + len(opt._optimizer_step_post_hooks))


def test_track_and_live_watch_while_the_loop_runs():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.randn(16, 4), torch.randn(16, 1)
    plot = LossPlot()
    for step, _ in track(range(25), plot, watch=(model, opt)):
        assert _hooked(model, opt) >= 1  # the post-step hook (+ pre-step, ReLU and model hooks on sampled steps)
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        plot.log(loss=loss, step=step)
    assert _hooked(model, opt) == 0
    watched = plot.history["watch/grad_norm"]
    assert list(watched.steps) == [0, 10, 20]  # the loop's own steps, every 10th
    assert np.isfinite(watched.values).all()
    with live(plot, watch=model) as p:  # no optimizer: backward passes counted, from one past step 24
        # the root's forward pre-hook, 4 parameters', the ReLU's and the root's forward hook (step 25 is sampled)
        assert _hooked(model) == 1 + 4 + 1 + 1
        for _ in range(11):
            model.zero_grad()
            nn.functional.mse_loss(model(x), y).backward()
        model(x)  # the next forward pass completes the last measured step
    assert p is plot and _hooked(model) == 0
    assert list(plot.history["watch/grad_norm"].steps) == [0, 10, 20, 25, 35]
    plot.close()


def test_lightning_logger_watches_with_its_optimizer():
    L = pytest.importorskip("lightning.pytorch")
    from lossviz_widget.integrations.lightning import LossPlotLogger

    class Classifier(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))

        def training_step(self, batch, batch_idx):
            x, y = batch
            loss = nn.functional.cross_entropy(self.net(x), y)
            self.log("train_loss", loss)
            return loss

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    torch.manual_seed(0)
    x = torch.randn(64, 4)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, (x[:, 0] > 0).long()), batch_size=8)
    logger = LossPlotLogger(watch=True, watch_every=2)
    module = Classifier()
    trainer = L.Trainer(max_epochs=2, logger=logger, log_every_n_steps=1, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu", devices=1)
    trainer.fit(module, loader)
    assert _hooked(module) == 0  # unwatched when fitting ended
    watched = logger.plot.history["watch/grad_norm"]
    assert list(watched.steps) == list(range(0, 16, 2))  # 16 optimizer steps, every 2nd
    # gradients came from the closure Lightning runs inside optimizer.step(): never empty, never stale zeros
    assert np.all(watched.values > 0)
    logger.plot.close()


def test_huggingface_callback_watches_at_global_steps(tmp_path):
    transformers = pytest.importorskip("transformers")
    from lossviz_widget.integrations.huggingface import LossPlotCallback

    config = transformers.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=32, max_position_embeddings=16, num_labels=2)

    class Tokens(torch.utils.data.Dataset):
        def __init__(self) -> None:
            g = torch.Generator().manual_seed(1)
            self.ids = torch.randint(0, 50, (32, 8), generator=g)

        def __len__(self) -> int:
            return len(self.ids)

        def __getitem__(self, i):
            return {"input_ids": self.ids[i], "labels": (self.ids[i, 0] < 25).long()}

    torch.manual_seed(0)
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path), per_device_train_batch_size=8, num_train_epochs=2, logging_steps=2,
        save_strategy="no", report_to=[], use_cpu=True, disable_tqdm=True, learning_rate=1e-3, seed=0)
    callback = LossPlotCallback(watch=True)
    model = transformers.BertForSequenceClassification(config)
    trainer = transformers.Trainer(model=model, args=args, train_dataset=Tokens(), callbacks=[callback])
    trainer.train()
    assert _hooked(model) == 0
    plot = callback.plot
    watched = plot.history["watch/grad_norm"]
    # optimizer steps 0, 2, 4, 6 (every logging_steps), each at the global_step it ends at
    assert list(watched.steps) == [1, 3, 5, 7]
    assert np.isfinite(watched.values).all()
    plot.close()
