"""plot.watch(model): real small PyTorch models on CPU, measured values against torch.autograd by
hand, the rules on models that are broken in known ways (and one that is not), hooks gone after
unwatch()/close(), and bounded heatmaps. The CUDA no-sync property runs where a GPU is lent."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from sklearn.datasets import load_digits  # noqa: E402
from torch import nn  # noqa: E402

import lossviz_widget  # noqa: E402
from lossviz_widget import LossPlot  # noqa: E402
from lossviz_widget.diagnostics.watch import WatchConfig  # noqa: E402

WATCH_DIR = str(Path(lossviz_widget.__file__).parent / "watch")  # the watch package's source files


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    x, y = load_digits(return_X_y=True)
    return torch.tensor(x / 16.0, dtype=torch.float32), torch.tensor(y)


def mlp(depth: int, width: int, act: type[nn.Module], n_in: int = 64, n_out: int = 10) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(n_in if i == 0 else width, width), act()]
    return nn.Sequential(*layers, nn.Linear(width, n_out))


def train(plot: LossPlot, model: nn.Module, opt: torch.optim.Optimizer, data: tuple, steps: int,
          batch: int = 128, seed: int = 0, start: int = 0) -> None:
    x, y = data
    g = torch.Generator().manual_seed(seed)
    for step in range(start, start + steps):
        idx = torch.randint(0, len(x), (batch,), generator=g)
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
        loss.backward()
        opt.step()
        plot.log(loss=loss, step=step)
    plot.flush()


def codes(plot: LossPlot) -> set[str]:
    return {f.code for f in plot.diagnose()}


def start(model: nn.Module, lr: float, every: int, momentum: float = 0.0) -> tuple[torch.optim.SGD, LossPlot, Any]:
    """An SGD optimizer for ``model``, a new plot watching both, and its watcher."""
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    plot = LossPlot()
    return opt, plot, plot.watch(model, opt, every=every)


# -- the rules on real models ---------------------------------------------------------------


def test_deep_sigmoid_mlp_has_vanishing_gradients(digits):
    torch.manual_seed(0)
    model = mlp(10, 32, nn.Sigmoid)
    opt, plot, _ = start(model, 0.1, 2)
    train(plot, model, opt, digits, 60)
    found = [f for f in plot.diagnose() if f.code == "vanishing_gradients"]
    assert len(found) == 1, plot.diagnose()
    assert found[0].evidence["first_layer"] == "0" and found[0].evidence["last_layer"] == "20"
    assert found[0].evidence["ratio"] < 1e-3
    assert "dead_relu" not in codes(plot)  # sigmoid units have no dead share
    plot.close()


def test_relu_net_with_negative_bias_init_has_dead_units(digits):
    torch.manual_seed(0)
    model = mlp(3, 64, nn.ReLU)
    with torch.no_grad():
        model[2].bias.fill_(-20.0)  # the second hidden layer's units are all below zero
    opt, plot, watcher = start(model, 0.05, 1)
    train(plot, model, opt, digits, 20)
    dead = [f for f in plot.diagnose() if f.code == "dead_relu"]
    assert len(dead) == 1, plot.diagnose()
    assert dead[0].evidence["layers"].split(", ")[0] == "3"  # the ReLU after model[2]
    shares = watcher.series.matrix("dead_fraction")
    assert np.all(shares[:, 1] == 1.0)  # every unit of that layer, every sampled step
    assert np.all(shares[:, 0] < 0.5)  # the first ReLU is alive
    plot.close()


def test_too_high_learning_rate_explodes_and_updates_too_fast(digits):
    torch.manual_seed(0)
    model = mlp(4, 64, nn.ReLU)
    opt, plot, _ = start(model, 3.0, 1, momentum=0.9)
    train(plot, model, opt, digits, 40)
    found = codes(plot)
    assert "exploding_gradients" in found, plot.diagnose()
    assert "update_ratio_high" in found, plot.diagnose()
    plot.close()


@pytest.fixture
def one_thread() -> Any:
    """torch on one intra-op thread for the test, restored after: the numbers then do not depend
    on the machine's core count, and a loaded machine does not stall OpenMP's spinning team (a
    250-step run took 10 s alone, 90 s at load 7 and once passed pytest's 300 s timeout)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_healthy_cnn_on_digits_has_no_finding(digits, one_thread):
    # lr 0.007 with momentum 0.9: every rule clear by a margin (update ratio median at most 0.0071
    # against 1e-2, the total gradient norm at most 5.5x its running median against 10x); at lr 0.01
    # the update ratio reached 0.0096 and the gradient-norm ratio 9.35, so a last-bit difference
    # (another CPU, another thread count) could have turned either into a finding
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Unflatten(1, (1, 8, 8)), nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(32 * 16, 64), nn.ReLU(), nn.Linear(64, 10),
    )
    opt, plot, watcher = start(model, 0.007, 5, momentum=0.9)
    train(plot, model, opt, digits, 250)
    assert plot.history["loss"].values[-20:].mean() < 0.5  # it learned (from ln 10 = 2.3)
    assert plot.diagnose() == [], [f.message for f in plot.diagnose()]
    assert len(watcher.series) == 50
    ratio = np.nanmedian(watcher.series.matrix("update_ratio"), axis=1)
    assert ratio.max() < 0.8 * WatchConfig().update_ratio_band[1]  # clear of the rule, not just under it
    plot.close()


def test_a_loss_spike_is_told_with_the_watched_gradient_norm(digits):
    """The engine's loss_spike finding reads the watcher's watch/grad_norm curve beside the loss."""
    torch.manual_seed(0)
    model = mlp(2, 64, nn.ReLU)
    opt, plot, _ = start(model, 0.1, 1)
    x, y = digits
    for step in range(175):
        opt.zero_grad()
        xb, yb = x[step % 10 * 100 : step % 10 * 100 + 100], y[step % 10 * 100 : step % 10 * 100 + 100]
        if step == 150:
            xb = xb * 40.0  # one corrupt batch: a huge gradient, a huge update, a loss spike
        loss = nn.functional.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()
        plot.log(loss=loss, step=step)
    plot.flush()
    spikes = [f for f in plot.diagnose() if f.code == "loss_spike"]
    assert len(spikes) == 1, [f.message for f in plot.diagnose()]
    assert spikes[0].step == 150 and "watch/grad_norm" in spikes[0].message
    assert spikes[0].evidence["grad_spike_step"] <= 150
    assert plot.history["watch/grad_norm"].values[150] > 10 * np.median(plot.history["watch/grad_norm"].values[:150])
    plot.close()


# -- values against a reference by hand -----------------------------------------------------


def _reference_norms(model: nn.Module, loss_fn, x, y) -> tuple[np.ndarray, np.ndarray]:
    """Per-layer gradient and weight norms from torch.autograd.grad (no hooks involved)."""
    layers = [m for m in model.modules() if list(m.parameters(recurse=False))]
    params = [p for m in layers for p in m.parameters(recurse=False)]
    grads = torch.autograd.grad(loss_fn(model(x), y), params)
    g, w, k = [], [], 0
    for m in layers:
        n = len(list(m.parameters(recurse=False)))
        g.append(torch.sqrt(sum((gr.double() ** 2).sum() for gr in grads[k : k + n])).item())
        w.append(torch.sqrt(sum((p.double() ** 2).sum() for p in params[k : k + n])).item())
        k += n
    return np.array(g), np.array(w)


def test_values_match_autograd_by_hand(digits):
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 16), nn.Tanh(), nn.Linear(16, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    x, y = digits[0][:200], digits[1][:200]
    loss_fn = nn.functional.cross_entropy
    plot = LossPlot()
    watcher = plot.watch(model, opt, every=1)
    expected = []
    for _ in range(3):
        grad_ref, _ = _reference_norms(model, loss_fn, x, y)
        before = [p.detach().clone() for p in model.parameters()]
        with torch.no_grad():  # activations by hand: the hidden layers' outputs
            h1 = torch.relu(model[0](x))
            h2 = torch.tanh(model[2](h1))
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
        _, weight_ref = _reference_norms(model, loss_fn, x, y)
        deltas = [(p.detach() - b).double() for p, b in zip(model.parameters(), before, strict=True)]
        upd = np.array([torch.sqrt((deltas[i] ** 2).sum() + (deltas[i + 1] ** 2).sum()).item() for i in (0, 2, 4)])
        dead = 1.0 - (h1 != 0).any(dim=0).double().mean().item()
        expected.append((grad_ref, weight_ref, upd / weight_ref, [h1.mean().item(), h2.mean().item()],
                         [h1.std().item(), h2.std().item()], dead))
    plot.flush()
    s = watcher.series
    assert list(s.steps) == [0, 1, 2]
    assert s.layout.param_layers == ("0", "2", "4") and s.layout.act_layers == ("1", "3")
    for i, (g, w, ratio, mean, std, dead) in enumerate(expected):
        np.testing.assert_allclose(s.matrix("grad_norm")[i], g, rtol=1e-5)
        np.testing.assert_allclose(s.total_grad_norm[i], np.sqrt((g**2).sum()), rtol=1e-5)
        np.testing.assert_allclose(s.matrix("weight_norm")[i], w, rtol=1e-5)
        np.testing.assert_allclose(s.matrix("update_ratio")[i], ratio, rtol=1e-4)
        np.testing.assert_allclose(s.matrix("act_mean")[i], mean, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(s.matrix("act_std")[i], std, rtol=1e-4)
        assert s.matrix("dead_fraction")[i][0] == pytest.approx(dead)
        assert np.isnan(s.matrix("dead_fraction")[i][1])  # Tanh: no dead share
    np.testing.assert_allclose(plot.history["watch/grad_norm"].values, s.total_grad_norm, rtol=1e-6)
    plot.close()


@pytest.mark.parametrize("optimizer", ["adam", "sgd-momentum"])
def test_update_ratio_of_large_tensors_is_estimated_from_a_strided_sample_within_a_few_percent(digits, optimizer):
    # layers of 64x512, 512x512 and 512x256 weights: the two large ones are measured on every
    # _UPDATE_STRIDE-th element (see collect.py); the estimate is checked against the exact update
    # of each step, on real training where many units are dead and many inputs constant (digits)
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(64, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 256),
                          nn.ReLU(), nn.Linear(256, 10))
    opt = (torch.optim.Adam(model.parameters(), lr=1e-3) if optimizer == "adam"
           else torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9))
    x, y = digits
    plot = LossPlot()
    watcher = plot.watch(model, opt, every=1)
    exact = []
    g = torch.Generator().manual_seed(0)
    for _ in range(25):
        idx = torch.randint(0, len(x), (128,), generator=g)
        before = [p.detach().clone() for p in model.parameters()]
        opt.zero_grad()
        nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
        opt.step()
        params = list(model.parameters())
        exact.append([torch.sqrt(sum(((params[j] - before[j]).double() ** 2).sum() for j in (i, i + 1))
                                 / sum((params[j].double() ** 2).sum() for j in (i, i + 1))).item()
                      for i in range(0, len(params), 2)])
    plot.flush()
    error = np.abs(watcher.series.matrix("update_ratio") / np.array(exact) - 1)
    assert error[:, [0, 3]].max() < 1e-5  # the small first and last layers are measured exactly
    assert np.median(error[:, 1:3]) < 0.02 and error[:, 1:3].max() < 0.08, error[:, 1:3]
    plot.close()


def test_update_ratio_of_a_non_contiguous_parameter_is_exact(digits):
    # a large contiguous tensor's update is measured on a strided view of it; a parameter that is
    # not contiguous (a transposed weight) is measured whole: its ratio is exact
    class Transposed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.hidden = nn.Linear(64, 16)
            self.out = nn.Parameter(torch.randn(10, 16).t() * 0.1)  # 16 x 10, column-major

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.relu(self.hidden(x)) @ self.out

    torch.manual_seed(0)
    model = Transposed()
    assert not model.out.is_contiguous()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    plot = LossPlot()
    watcher = plot.watch(model, opt, every=1)
    x, y = digits[0][:64], digits[1][:64]
    exact = []
    for _ in range(3):
        before = [p.detach().clone() for p in model.parameters()]
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        after = list(model.parameters())
        ratio = [torch.sqrt(sum(((after[j] - before[j]).double() ** 2).sum() for j in js)
                            / sum((after[j].double() ** 2).sum() for j in js)).item() for js in ((0,), (1, 2))]
        exact.append(ratio)
    plot.flush()
    # the root owns `out` (its parameters come first), then `hidden` (weight and bias)
    assert watcher.series.layout.param_layers == ("Transposed", "hidden")
    np.testing.assert_allclose(watcher.series.matrix("update_ratio"), exact, rtol=1e-5)
    plot.close()


def test_an_unsampled_step_costs_the_loop_only_a_few_python_calls(digits):
    # every=10 must cost ~nothing on the nine steps in ten it does not measure: count the Python
    # function calls (sys.setprofile: deterministic, unlike a timer) of one unsampled training step
    # with and without the watch; what watching adds there is the optimizer's post-step hook counting
    # the step (1 call: the hook, which guards itself and turns the next step's hooks on only when
    # that one is sampled; the pre-step and forward hooks are on for sampled steps only)
    import collections

    torch.manual_seed(0)
    model = mlp(4, 64, nn.ReLU)
    x, y = digits[0][:128], digits[1][:128]

    def calls_of_step(step_index: int, watched: bool) -> collections.Counter:
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        plot = LossPlot()
        if watched:
            plot.watch(model, opt, every=10)
        calls: collections.Counter = collections.Counter()

        def profile(frame: Any, event: str, arg: Any) -> None:
            # the watch package's own calls: whether log() also drew an overdue frame in this step
            # depends on the machine's timing (the frame hand-over), with or without a watch
            if event == "call" and WATCH_DIR in frame.f_code.co_filename:
                calls[frame.f_code.co_filename, frame.f_code.co_name] += 1

        for i in range(step_index + 1):
            if i == step_index:
                sys.setprofile(profile)
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            plot.log(loss=loss, step=i)
            if i == step_index:
                sys.setprofile(None)
        plot.close()
        return calls

    bare, unsampled, sampled = calls_of_step(5, False), calls_of_step(5, True), calls_of_step(10, True)
    assert not bare
    extra = sum((unsampled - bare).values())
    assert extra == 1, (unsampled - bare).most_common()
    measuring = {"_norms", "_emit", "_reduce_activations"}  # the measuring itself: on sampled steps only
    assert measuring <= {name for _, name in sampled} and not measuring & {name for _, name in unsampled}


def test_without_optimizer_gradients_come_from_each_backward(digits):
    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(64, 16), nn.GELU(), nn.Linear(16, 10))
    x, y = digits[0][:64], digits[1][:64]
    plot = LossPlot()
    watcher = plot.watch(model, every=3)
    refs = []
    for step in range(7):
        if step % 3 == 0:
            refs.append(_reference_norms(model, nn.functional.cross_entropy, x, y))
        model.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        with torch.no_grad():
            for p in model.parameters():
                p -= 0.1 * p.grad
    plot.unwatch()  # the last step's row is complete at the next forward pass, or here
    plot.flush()
    s = watcher.series
    assert list(s.steps) == [0, 3, 6]
    for i, (g, w) in enumerate(refs):
        np.testing.assert_allclose(s.matrix("grad_norm")[i], g, rtol=1e-5)
        np.testing.assert_allclose(s.matrix("weight_norm")[i], w, rtol=1e-5)
    assert np.isnan(s.matrix("update_ratio")).all()  # no optimizer: no update ratio
    plot.close()


def test_a_parameter_without_gradient_is_nan_and_left_out_of_the_total(digits):
    # a layer the forward pass never uses keeps grad None: its gradient norm is NaN (not 0), its
    # weight norm is measured, and the total is that of the gradients there are
    class Partly(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.used = nn.Linear(64, 10)
            self.unused = nn.Linear(3, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.used(x)

    torch.manual_seed(0)
    model = Partly()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    plot = LossPlot()
    watcher = plot.watch(model, opt, every=1)
    x, y = digits[0][:64], digits[1][:64]
    grad_ref = []
    for _ in range(2):
        opt.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(x), y).backward()
        grad_ref.append(torch.sqrt(sum((p.grad.double() ** 2).sum() for p in model.used.parameters())).item())
        opt.step()
    plot.flush()
    s = watcher.series
    assert s.layout.param_layers == ("used", "unused")
    np.testing.assert_allclose(s.matrix("grad_norm")[:, 0], grad_ref, rtol=1e-5)
    assert np.isnan(s.matrix("grad_norm")[:, 1]).all()
    weight = torch.sqrt(sum((p.detach().double() ** 2).sum() for p in model.unused.parameters())).item()
    np.testing.assert_allclose(s.matrix("weight_norm")[:, 1], weight, rtol=1e-5)
    np.testing.assert_allclose(s.total_grad_norm, grad_ref, rtol=1e-5)
    np.testing.assert_allclose(plot.history["watch/grad_norm"].values, grad_ref, rtol=1e-5)
    plot.close()


def test_watch_makes_the_maps_of_what_it_will_measure_before_training():
    # the maps' widgets are made by watch() (not by the first frame with data, inside the loop):
    # without an optimizer there is no update ratio, without a ReLU no dead share
    plot = LossPlot()
    plot.watch(mlp(2, 8, nn.Tanh))
    box = next(c for c in plot.children if "lossviz-watch" in c._dom_classes)  # (ipywidgets' trait behind add_class)
    assert [w.children[1].title for w in box.children] == ["gradient norm", "weight norm", "activation mean",
                                                           "activation std"]
    model = mlp(2, 8, nn.ReLU)
    plot.watch(model, torch.optim.SGD(model.parameters(), lr=0.1), activations=False)
    box = next(c for c in plot.children if "lossviz-watch" in c._dom_classes)
    assert [w.children[1].title for w in box.children] == ["gradient norm", "weight norm", "update / weight ratio"]
    plot.close()


def test_eval_passes_are_not_measured_and_steps_continue_the_plot(digits):
    model = nn.Sequential(nn.Linear(64, 8), nn.ReLU(), nn.Linear(8, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    plot = LossPlot()
    plot.log(loss=2.0, step=99)
    watcher = plot.watch(model, opt, every=1)
    x, y = digits[0][:32], digits[1][:32]
    model.eval()
    with torch.no_grad():
        model(x * 1e3)  # an evaluation pass: not a training step, not measured
    model.train()
    opt.zero_grad()
    nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
    plot.flush()
    assert list(watcher.series.steps) == [100]
    assert watcher.series.matrix("act_mean")[0, 0] < 100  # the training batch's, not the eval's
    plot.close()


# -- hooks, lifecycle, bounds ----------------------------------------------------------------


def _hook_count(model: nn.Module, opt: torch.optim.Optimizer | None) -> int:
    # torch's own hook registries (private, no public reader): what unwatch() must leave empty
    n = sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())
    n += sum(len(p._backward_hooks or {}) + len(getattr(p, "_post_accumulate_grad_hooks", None) or {})
             for p in model.parameters())
    if opt is not None:
        n += len(opt._optimizer_step_pre_hooks) + len(opt._optimizer_step_post_hooks)
    return n


@pytest.mark.parametrize("with_optimizer", [True, False])
def test_unwatch_and_close_leave_no_hook(digits, with_optimizer):
    model = mlp(2, 16, nn.ReLU)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    plot = LossPlot()
    watcher = plot.watch(model, opt if with_optimizer else None, every=1)
    assert _hook_count(model, opt) > 0 and watcher.active
    train(plot, model, opt, digits, 3)
    plot.unwatch()
    assert _hook_count(model, opt) == 0 and not watcher.active
    train(plot, model, opt, digits, 3, start=3)  # no longer measured
    assert len(watcher.series) == 3
    # _dom_classes: ipywidgets' trait behind add_class (no public reader)
    assert "lossviz-watch" in [c for w in plot.children for c in w._dom_classes]  # the maps stay

    watcher = plot.watch(model, opt, every=2)  # watching again, then closing the plot
    # the optimizer's post-step hook, and for step 6 (sampled) its pre-step hook, the 2 ReLUs' and
    # the model's (the forward pass's end)
    assert _hook_count(model, opt) == 1 + 1 + 2 + 1
    train(plot, model, opt, digits, 3, start=6)
    assert list(watcher.series.steps) == [6, 8]
    assert _hook_count(model, opt) == 1  # step 9 is not sampled: only the post-step hook counts it
    plot.close()
    assert _hook_count(model, opt) == 0 and not watcher.active


def test_heatmaps_stay_bounded_for_deep_models_and_long_runs():
    model = nn.Sequential(*[nn.Linear(4, 4) for _ in range(100)])
    opt, plot, watcher = start(model, 1e-3, 1)
    x = torch.randn(8, 4)
    for _ in range(130):
        opt.zero_grad()
        model(x).square().mean().backward()
        opt.step()
    plot.flush()
    assert watcher.series.heat("grad_norm").color.shape == (32, 130)  # 32 rows by default
    heat = watcher.series.heat("grad_norm", max_cols=100)
    assert heat.color.shape == (32, 100) and heat.color.dtype == np.float32
    assert heat.labels[0] == "0 … 2" and heat.labels[-1].endswith("99")
    # a cell keeps the largest value it covers (a spike survives)
    full = watcher.series.matrix("grad_norm")
    assert np.nanmax(heat.color) == pytest.approx(np.nanmax(full))
    plot.close()


def test_watch_rejects_bad_arguments():
    plot = LossPlot()
    with pytest.raises(TypeError, match="torch.nn.Module"):
        plot.watch("model")
    with pytest.raises(ValueError, match="every"):
        plot.watch(nn.Linear(2, 2), every=0)
    with pytest.raises(TypeError, match="optimizer"):
        plot.watch(nn.Linear(2, 2), optimizer=object())
    with pytest.raises(ValueError, match="persist"):
        WatchConfig(persist=0)
    plot.close()


def test_importing_the_watch_package_imports_no_torch():
    code = ("import sys, lossviz_widget.watch, lossviz_widget.diagnostics.watch, lossviz_widget; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


# -- CUDA: no device sync per step (run where a GPU is lent) ---------------------------------


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_watching_on_cuda_never_syncs_in_the_training_loop():
    torch.manual_seed(0)
    dev = torch.device("cuda")
    model = mlp(4, 256, nn.ReLU).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    # frames (which copy values to the host, a sync by design) at most every 100 s: sync debug
    # mode is process-wide, and only the training loop must never sync
    plot = LossPlot(fps=0.01)
    watcher = plot.watch(model, opt, every=1)
    x, y = torch.randn(256, 64, device=dev), torch.randint(0, 10, (256,), device=dev)
    scaler = torch.amp.GradScaler("cuda")
    assert plot.recorder.wait_idle(30)  # the frame watch() asked for is drawn before the check starts
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for step in range(50):
            opt.zero_grad(set_to_none=True)
            with torch.autocast("cuda", dtype=torch.float16):
                loss = nn.functional.cross_entropy(model(x), y)
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            opt.step()  # (scaler.step syncs by design to check for inf: stepping directly here)
            scaler.update()
            plot.log(loss=loss.detach(), step=step)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    plot.flush()
    assert watcher.last_error is None and watcher.error == ""
    assert len(watcher.series) == 50
    assert np.isfinite(watcher.series.matrix("grad_norm")).all()
    plot.close()


def test_the_plot_shows_one_log_coloured_heatmap_per_quantity(digits):
    from bqplot import HeatMap

    torch.manual_seed(0)
    model = mlp(2, 16, nn.ReLU)
    opt, plot, watcher = start(model, 0.05, 1)
    train(plot, model, opt, digits, 12)
    assert plot.recorder.wait_idle(10)  # maps redraw at most once a second: the last redraw is due then
    box = next(c for c in plot.children if "lossviz-watch" in c._dom_classes)
    assert plot.children.index(box) == 4  # under the panels, above the findings
    figures = [w.children[1] for w in box.children]
    assert [f.title for f in figures] == ["gradient norm", "weight norm", "update / weight ratio", "activation mean",
                                         "activation std", "dead ReLU units"]
    heat = figures[0].marks[0]
    assert isinstance(heat, HeatMap)
    assert heat.color.shape == (3, 12)  # layers x sampled steps
    np.testing.assert_allclose(heat.color, np.log10(watcher.series.matrix("grad_norm").T), rtol=1e-5)  # log colour
    rows = box.children[0].children[2].value
    assert "0&nbsp;0" in rows and "2&nbsp;4" in rows  # row index -> layer name
    hover = box.children[0].children[0]  # the hover readout (tests/browser/test_browser_watch.py hovers it)
    assert hover.rows == ["0", "2", "4"] and hover.heat == f"IPY_MODEL_{heat.model_id}" and hover.log
    # the scales span the cells' outer edges (the hover layer maps the cursor to a cell with them)
    assert (heat.scales["x"].min, heat.scales["x"].max) == (-0.5, 11.5)
    assert (heat.scales["y"].min, heat.scales["y"].max) == (-0.5, 2.5)
    plot.close()
