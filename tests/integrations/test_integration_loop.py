"""Hand-written PyTorch loops: ``track`` and ``live`` next to a real tqdm bar."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from tqdm import tqdm

from lossviz_widget import LossPlot
from lossviz_widget.integrations.loop import live, track

torch.set_num_threads(1)


def _drawn(plot: LossPlot, points: int) -> bool:
    """True once a frame of ``points`` points has been rendered (flush() writes the status line)."""
    return f"{points} points" in plot.shown_html["status"]


def test_track_a_real_training_loop_with_tqdm():
    torch.manual_seed(0)
    x = torch.randn(64, 3)
    y = x @ torch.tensor([1.0, -2.0, 0.5])
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8)
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    plot, bar_output, losses = LossPlot(), io.StringIO(), []
    for _epoch in range(2):
        for step, (xb, yb) in track(tqdm(loader, file=bar_output), plot):
            loss = torch.nn.functional.mse_loss(model(xb).squeeze(-1), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            plot.log(loss=loss.detach(), step=step)  # a tensor, as users log it
            losses.append(loss.item())
    loss = plot.history["loss"]
    np.testing.assert_array_equal(loss.steps, np.arange(16))  # the second epoch continues the axis
    np.testing.assert_allclose(loss.values, losses, rtol=1e-7)
    assert losses[-1] < 0.1 * losses[0]
    assert "8/8" in bar_output.getvalue()  # the bar ran to the end
    assert _drawn(plot, 16)


def test_track_flushes_on_break_and_takes_a_start():
    plot = LossPlot()
    assert not _drawn(plot, 0)
    for step, item in track(range(100), plot, start=10):
        plot.log(loss=float(item), step=step)
        if step == 12:
            break
    np.testing.assert_array_equal(plot.history["loss"].steps, [10, 11, 12])
    assert _drawn(plot, 3)
    with pytest.raises(TypeError, match="plot must be a LossPlot"):
        next(track([1], None))


def test_live_flushes_on_error_and_keeps_nan():
    with pytest.raises(ZeroDivisionError), live(title="run") as plot:
        plot.log(loss=float("nan"), step=0)
        raise ZeroDivisionError("the training loop failed")
    assert plot.title == "run" and np.isnan(plot.history["loss"].values[0])
    assert _drawn(plot, 1)
