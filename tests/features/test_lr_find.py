"""lr_find: fastai's schedule, smoothing, stopping rule and suggestions; exact restore; the live plot."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from bqplot import LogScale
from hypothesis import given, settings
from hypothesis import strategies as st

from lossviz_widget import LRFindResult, lr_find
from lossviz_widget.lr_finder import LRFinderPlot
from lossviz_widget.lr_finder.suggest import DivergenceMonitor, lr_schedule, minimum, slide, steep, suggest, valley

torch.set_num_threads(1)


def test_importing_the_package_imports_no_framework():
    import subprocess
    import sys

    code = ("import sys, lossviz_widget; from lossviz_widget import losses, lr_find; "
            "print(sorted(m for m in ('torch', 'scipy', 'sklearn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ------------------------------------------------------------------ schedule, smoothing, stopping

def test_schedule_is_fastais_exponential():
    lrs = lr_schedule()
    assert len(lrs) == 100
    assert lrs[0] == 1e-7
    np.testing.assert_array_equal(lrs, 1e-7 * (10 / 1e-7) ** (np.arange(100) / 100))
    np.testing.assert_allclose(lrs[50], 1e-3, rtol=1e-14)
    assert lrs[-1] < 10  # one step short of end_lr, like SchedExp at train_iter / num_it
    np.testing.assert_allclose(lr_schedule(1e-3, 1.0, 3), [1e-3, 1e-2, 1e-1], rtol=1e-14)


@pytest.mark.parametrize("kwargs,match", [
    ({"start_lr": 0}, "start_lr"), ({"start_lr": -1}, "start_lr"), ({"end_lr": 1e-8}, "end_lr"),
    ({"num_it": 0}, "num_it"), ({"num_it": 2.5}, "num_it"),
])
def test_schedule_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        lr_schedule(**kwargs)


def test_smoothed_loss_is_the_debiased_ema_with_beta_098():
    losses = np.random.default_rng(0).uniform(1, 2, 60)
    monitor = DivergenceMonitor(stop_div=False)
    smoothed = [monitor.update(v)[0] for v in losses]
    oracle = pd.Series(losses).ewm(alpha=0.02, adjust=True).mean().to_numpy()
    np.testing.assert_allclose(smoothed, oracle, rtol=1e-13)


def _stop_index(losses, beta=0.98):
    """Hand-rolled rule: first i where EMA_i > 4 * min(EMA_0..i)."""
    ema = pd.Series(losses).ewm(alpha=1 - beta, adjust=True).mean().to_numpy()
    best = np.minimum.accumulate(ema)
    return int(np.argmax(ema > 4 * best))


def test_stops_when_smoothed_loss_exceeds_four_times_best():
    losses = [1.0] * 30 + [1.0 * 1.5**k for k in range(1, 40)]
    seen = []

    def step(lr):
        seen.append(lr)
        return losses[len(seen) - 1]

    result = lr_find(step_fn=step, display=False)
    stop = _stop_index(losses)
    assert result.stop_reason == "diverged"
    assert len(result.lrs) == len(seen) == stop + 1  # the triggering step is recorded
    assert result.smoothed_losses[-1] > 4 * result.smoothed_losses.min()
    assert result.smoothed_losses[-2] <= 4 * result.smoothed_losses[:-1].min()
    np.testing.assert_array_equal(seen, lr_schedule()[: stop + 1])
    np.testing.assert_array_equal(result.losses, losses[: stop + 1])

    no_stop = lr_find(step_fn=lambda lr: min(1e6, 1.5 ** (100 * lr)), stop_div=False, display=False)
    assert no_stop.stop_reason == "num_it" and len(no_stop.lrs) == 100


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_stops_on_non_finite_loss(bad):
    calls = []

    def step(lr):
        calls.append(lr)
        return bad if len(calls) == 21 else 1.0

    result = lr_find(step_fn=step, display=False)
    assert result.stop_reason == "non-finite"
    assert len(calls) == len(result.losses) == 21
    assert not math.isfinite(result.losses[-1])  # kept, not dropped


# ------------------------------------------------------------------ suggestion functions (hand-computed)

LRS8 = 10.0 ** np.arange(-6, 2)  # 1e-6 .. 10


def test_valley_fixture():
    # longest strictly decreasing run: 3, 2, 1.5, 1, 0.5, 0.4 (indices 1..7, start 1, end 7)
    losses = np.array([1, 3, 2, 1.5, 1, 0.5, 2, 0.4])
    s = valley(LRS8, losses)
    # sections = (7 - 1) / 3 = 2 -> idx = 1 + 2 + 1 = 4
    assert (s.lr, s.point_lr, s.point_loss) == (LRS8[4], LRS8[4], 1.0)


def test_steep_fixture():
    lrs = np.array([1e-3, 1e-2, 1e-1, 1.0])
    s = steep(lrs, np.array([1.0, 0.9, 0.5, 0.45]))  # slopes per decade -0.1, -0.4, -0.05
    assert (s.lr, s.point_lr, s.point_loss) == (1e-2, 1e-2, 0.9)


def test_minimum_fixture():
    lrs = np.array([1e-3, 1e-2, 1e-1, 1.0])
    s = minimum(lrs, np.array([3.0, 2.0, 1.0, 2.0]))
    assert s.lr == pytest.approx(1e-2) and (s.point_lr, s.point_loss) == (0.1, 1.0)


def test_slide_fixtures():
    lrs = lr_schedule(1e-4, 1.0, 40)
    i = np.arange(40)
    # flat, then falling linearly, then curving up from i = 30: the window slides left from the end
    # while the gradients 15 apart differ by more than 0.005; it stops with its right end at 29
    losses = 1 - 0.1 * np.maximum(0, i - 10) + 0.02 * np.maximum(0, i - 30) ** 2
    s = slide(lrs, losses)
    assert s.lr == lrs[15] and s.point_lr == lrs[15]
    assert s.point_loss == pytest.approx(losses[15], rel=1e-12)
    # constant gradient: stops at once, at 15 points from the end
    assert slide(lrs, np.linspace(2, 1, 40)).lr == lrs[40 - 16]
    # gradient differences always large: slides to the first lr
    assert slide(lrs, 0.01 * i.astype(float) ** 2).lr == lrs[0]
    assert math.isnan(slide(lrs[:15], losses[:15]).lr)  # too short for the window


def test_suggest_trims_like_fastai_and_cuts_at_nan():
    lrs = lr_schedule()
    losses = np.linspace(3, 1, 100)
    losses[5] = 0.0  # inside the first num_it // 10: ignored
    losses[60] = np.nan  # everything from here on is ignored
    out = suggest(lrs, losses, 100, ("minimum", "valley"))
    assert list(out) == ["minimum", "valley"]
    assert out["minimum"].point_lr == lrs[59]
    assert out["minimum"].lr == pytest.approx(lrs[59] / 10)
    with pytest.raises(ValueError, match="unknown method 'nope'"):
        suggest(lrs, losses, 100, ("nope",))
    empty = suggest(lrs[:10], losses[:10], 100)
    assert all(math.isnan(s.lr) for s in empty.values())


def _valley_by_hand(losses):
    """fastai's valley spelled out with scalar loops, as an oracle for the vectorized one."""
    n = len(losses)
    lds = [1] * n
    start = end = 0
    for i in range(1, n):
        for j in range(i):
            if losses[i] < losses[j]:
                lds[i] = max(lds[i], lds[j] + 1)
            if lds[end] < lds[i]:
                end, start = i, i - lds[i]
    third = (end - start) / 3
    return start + int(third) + int(third / 2)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 6), min_size=1, max_size=40))
def test_valley_equals_the_scalar_loops(values):
    losses = np.array(values, dtype=float)
    lrs = np.arange(1, len(losses) + 1, dtype=float)
    assert valley(lrs, losses).lr == lrs[_valley_by_hand(values)]


# ------------------------------------------------------------------ a real PyTorch model

def _regression_problem():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(256, 8, generator=gen)
    y = x @ torch.randn(8, 1, generator=gen) + 0.1 * torch.randn(256, 1, generator=gen)
    return x, y


def test_suggestions_are_sane_on_linear_regression():
    x, y = _regression_problem()
    design = torch.cat([x, torch.ones(len(x), 1)], dim=1)
    hessian = 2 * design.T @ design / len(x)  # of the MSE: full-batch GD diverges above 2 / lambda_max
    lr_max = 2 / torch.linalg.eigvalsh(hessian).max().item()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=len(x))
    torch.manual_seed(1)
    model = torch.nn.Linear(8, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    result = lr_find(model, optimizer, torch.nn.functional.mse_loss, loader, display=False)
    assert isinstance(result, LRFindResult)
    assert result.stop_reason == "diverged" and result.lrs[-1] > lr_max
    assert set(result.suggestions) == {"valley", "steep", "minimum", "slide"}
    for s in result.suggestions.values():
        assert 1e-4 <= s.lr <= lr_max, s
    assert result.suggested_lr == result.suggestions["valley"].lr
    # and the minimum suggestion trains well: 50 full-batch steps cut the loss 20-fold
    model2 = torch.nn.Linear(8, 1)
    opt2 = torch.optim.SGD(model2.parameters(), lr=result.suggestions["minimum"].lr)
    first = torch.nn.functional.mse_loss(model2(x), y).item()
    for _ in range(50):
        opt2.zero_grad()
        loss = torch.nn.functional.mse_loss(model2(x), y)
        loss.backward()
        opt2.step()
    assert loss.item() < first / 20


class _Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.BatchNorm1d(16), torch.nn.ReLU(),
                                        torch.nn.Dropout(0.1), torch.nn.Linear(16, 1))

    def forward(self, x):
        return self.body(x)


def _trained_net_and_adam():
    """A model with buffers (BatchNorm) and an optimizer with state and two param groups."""
    torch.manual_seed(2)
    x, y = _regression_problem()
    model = _Net()
    optimizer = torch.optim.Adam([{"params": model.body[0].parameters(), "lr": 3e-3},
                                  {"params": model.body[4].parameters(), "lr": 1e-3}])
    for _ in range(3):
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(x[:32]), y[:32]).backward()
        optimizer.step()
    model.eval()  # lr_find switches to train mode and must switch back
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=64)  # 4 batches
    return model, optimizer, loader


def _snapshot(model, optimizer):
    import copy

    return ({k: v.clone() for k, v in model.state_dict().items()},
            [None if p.grad is None else p.grad.clone() for p in model.parameters()],
            [m.training for m in model.modules()], copy.deepcopy(optimizer.state_dict()))


def _assert_restored(model, optimizer, before):
    state, grads, modes, opt_state = before
    now = model.state_dict()
    assert state.keys() == now.keys()
    assert all(torch.equal(state[k], now[k]) for k in state)  # weights and BatchNorm buffers, bit for bit
    for g, p in zip(grads, model.parameters()):
        assert (g is None and p.grad is None) or torch.equal(g, p.grad)
    assert modes == [m.training for m in model.modules()]
    after = optimizer.state_dict()
    assert [g["lr"] for g in after["param_groups"]] == [3e-3, 1e-3]
    assert after["param_groups"] == opt_state["param_groups"]
    assert after["state"].keys() == opt_state["state"].keys()
    for k, s in opt_state["state"].items():
        assert all(torch.equal(v, after["state"][k][name]) for name, v in s.items())


def test_model_and_optimizer_are_restored_exactly_and_schedule_reaches_every_group():
    model, optimizer, loader = _trained_net_and_adam()
    before = _snapshot(model, optimizer)
    seen = []

    def loss_fn(out, target):
        seen.append([g["lr"] for g in optimizer.param_groups])
        assert model.training
        return torch.nn.functional.mse_loss(out, target)

    result = lr_find(model, optimizer, loss_fn, loader, num_it=12, display=False)  # cycles the 4 batches
    assert len(result.lrs) == len(seen) == 12 and result.stop_reason == "num_it"
    expected = lr_schedule(num_it=12)
    np.testing.assert_array_equal(result.lrs, expected)
    assert seen == [[lr, lr] for lr in expected]
    _assert_restored(model, optimizer, before)


@pytest.mark.parametrize("error", [RuntimeError("boom <b>"), KeyboardInterrupt()])
def test_restored_when_the_loss_raises(error):
    model, optimizer, loader = _trained_net_and_adam()
    before = _snapshot(model, optimizer)
    calls = []

    def loss_fn(out, target):
        calls.append(1)
        if len(calls) == 6:
            raise error
        return torch.nn.functional.mse_loss(out, target)

    with pytest.raises(type(error)):
        lr_find(model, optimizer, loss_fn, loader, display=False)
    assert len(calls) == 6  # five real steps changed the weights before the error
    _assert_restored(model, optimizer, before)


def test_bad_arguments_are_rejected_clearly():
    model, optimizer, loader = _trained_net_and_adam()
    mse = torch.nn.functional.mse_loss
    with pytest.raises(TypeError, match="missing: loss_fn, data"):
        lr_find(model, optimizer, display=False)
    with pytest.raises(TypeError, match="either step_fn or model"):
        lr_find(model, step_fn=lambda lr: 1.0, display=False)
    with pytest.raises(TypeError, match="step_fn must be callable"):
        lr_find(step_fn=3, display=False)
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        lr_find(object(), optimizer, mse, loader, display=False)
    with pytest.raises(TypeError, match="optimizer must be a torch.optim.Optimizer"):
        lr_find(model, object(), mse, loader, display=False)
    with pytest.raises(TypeError, match=r"data must yield \(inputs, target\) pairs"):
        lr_find(model, optimizer, mse, [torch.zeros(4, 8)], display=False)
    with pytest.raises(ValueError, match="data yielded no batches"):
        lr_find(model, optimizer, mse, [], display=False)
    with pytest.raises(ValueError, match="unknown method"):
        lr_find(step_fn=lambda lr: 1.0, suggest_methods=("best",), display=False)
    with pytest.raises(TypeError, match="'loss'"):
        lr_find(step_fn=lambda lr: "low", display=False)
    with pytest.raises(ValueError, match="'loss': expected a scalar"):
        lr_find(step_fn=lambda lr: np.ones(3), display=False)


def test_display_is_named_as_in_the_integrations(capsys):
    """``display=`` (the integrations' name) shows the widget or not; there is no ``show=``."""
    quiet = lr_find(step_fn=lambda lr: 1.0, num_it=20, display=False)
    assert capsys.readouterr().out == ""
    shown = lr_find(step_fn=lambda lr: 1.0, num_it=20, display=True)
    assert "LRFinderPlot" in capsys.readouterr().out  # IPython's display() outside a kernel prints the repr
    assert len(quiet.losses) == len(shown.losses) == 20
    with pytest.raises(TypeError, match="show"):
        lr_find(step_fn=lambda lr: 1.0, show=False)


# ------------------------------------------------------------------ any framework: step_fn

def test_generic_step_fn_on_a_quadratic():
    """Gradient descent on f(w) = 0.5 * a * w**2: converges for lr < 2 / a, diverges beyond."""
    a = 4.0
    state = {"w": 3.0}

    def step(lr):
        state["w"] -= lr * a * state["w"]
        return np.float32(0.5 * a * state["w"] ** 2)  # any scalar type: NumPy, tensors, floats

    result = lr_find(step_fn=step, display=False)
    assert result.stop_reason == "diverged"
    assert result.lrs[-1] > 2 / a
    for method in ("valley", "steep", "minimum"):  # slide's threshold is absolute: loss ~18 here is too big
        assert 1e-4 <= result.suggestions[method].lr <= 2 / a
    np.testing.assert_array_equal(result.lrs, lr_schedule()[: len(result.lrs)])


# ------------------------------------------------------------------ the live plot

def test_widget_holds_the_curve_and_the_suggestion_markers():
    calls = []

    def step(lr):
        calls.append(lr)
        return 1.0 / (1 + 1e3 * lr) + 50 * lr**2 + 0.01 * math.sin(len(calls))

    result = lr_find(step_fn=step, display=False, title="<i>run</i>")
    plot = result.widget
    assert isinstance(plot, LRFinderPlot) and isinstance(plot.x_scale, LogScale)
    np.testing.assert_array_equal(plot.raw.x, result.lrs)
    np.testing.assert_array_equal(plot.raw.y, result.losses)
    np.testing.assert_array_equal(plot.smoothed.y, result.smoothed_losses)
    assert plot.raw.opacities == [0.25]
    shown = list(result.suggestions.values())
    np.testing.assert_array_equal(plot.markers.x, [s.point_lr for s in shown])
    np.testing.assert_array_equal(plot.markers.y, [s.point_loss for s in shown])
    assert [n.split()[0] for n in plot.markers.names] == [s.method for s in shown]
    assert plot.figure.title == "<i>run</i>"  # SVG text node, not HTML
    for s in shown:
        assert f'data-method="{s.method}"' in plot.readout.value
    assert f"stopped: {result.stop_reason}" in plot.readout.value
    plot.close()


def test_widget_text_is_escaped():
    plot = LRFinderPlot()
    plot.set_status('stopped by RuntimeError: <img src=x onerror="alert(1)">')
    assert "<img" not in plot.readout.value and "&lt;img" in plot.readout.value
    plot.close()


def test_widget_updates_are_throttled_but_forced_draws_go_through():
    plot = LRFinderPlot(min_interval=60)
    assert plot.update([1e-3], [1.0], [1.0])
    assert not plot.update([1e-3, 1e-2], [1.0, 0.5], [1.0, 0.9])  # within the interval: skipped
    assert len(plot.raw.x) == 1
    assert plot.update([1e-3, 1e-2], [1.0, 0.5], [1.0, 0.9], force=True)
    np.testing.assert_array_equal(plot.smoothed.y, [1.0, 0.9])
    plot.close()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_model_cpu_batches_are_moved_and_state_restored():
    model, optimizer, loader = _trained_net_and_adam()
    model.cuda()
    optimizer.load_state_dict(optimizer.state_dict())  # moves Adam's state to the parameters' device
    before = _snapshot(model, optimizer)
    result = lr_find(model, optimizer, torch.nn.functional.mse_loss, loader, num_it=20, display=False)
    assert len(result.losses) == 20 and np.all(np.isfinite(result.losses))
    _assert_restored(model, optimizer, before)


def test_notebook_shows_the_finder_live_and_trains_with_its_suggestion(tmp_path):
    """In a real kernel: the lr_find cell displays the plot and its bqplot marks get their
    data inside that cell; the suggested lr then trains the model (NumPy loss == torch loss)."""
    from pathlib import Path

    from notebook_harness import WIDGET_VIEW_MIME, cell_text, run_notebook

    run = run_notebook(Path(__file__).resolve().parents[2] / "notebooks" / "06_lr_finder.ipynb", tmp_path)
    find = run.code_cell("lr_find(model")
    for i, cell in enumerate(run.nb.cells):
        assert not [o for o in cell.get("outputs", []) if o.output_type == "error"], f"cell {i} raised"
    views = [o for o in run.nb.cells[find].outputs if WIDGET_VIEW_MIME in o.get("data", {})]
    assert len(views) == 1
    models = run.models()
    assert models[views[0]["data"][WIDGET_VIEW_MIME]["model_id"]] == "@jupyter-widgets/controls:VBoxModel"
    marks = {e.comm_id for e in run.events if e.cell_index == find and e.model in ("bqplot:LinesModel",
                                                                                    "bqplot:ScatterModel")}
    fed = {e.comm_id for e in run.events
           if e.cell_index == find and e.comm_id in marks and e.msg_type == "comm_msg" and {"x", "y"} & set(e.keys)}
    assert len(marks) == 3 and fed == marks  # raw, smoothed, suggestion markers
    text = cell_text(run.nb.cells[find])
    assert "valley:" in text and "optimizer lr is back to 0.01" in text
    out = cell_text(run.nb.cells[run.code_cell("numpy cross-entropy")])
    values = dict(line.split(": ") for line in out.strip().splitlines())
    assert float(values["numpy cross-entropy"]) == pytest.approx(float(values["torch cross-entropy"]), rel=1e-5)
    assert float(values["accuracy"]) > 0.9
