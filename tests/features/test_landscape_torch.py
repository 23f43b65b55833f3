"""Loss landscapes of a real (tiny) PyTorch CNN: filter normalization against the
tomgoldstein/loss-landscape formula, exact restore of the model (also on errors and
KeyboardInterrupt), interpolation with BatchNorm statistics, the cost, the trajectory."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from drawn import landscape_parts

pytest.importorskip("torch")
import torch
from torch import nn

from lossviz_widget import landscape as ls
from lossviz_widget.landscape.directions import gaussian
from lossviz_widget.landscape.torch_target import TorchTarget

torch.set_num_threads(1)


def make_cnn(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
                         nn.Flatten(), nn.Linear(16, 3))


def make_data(n: int = 24, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 8, 8, generator=g), torch.randint(0, 3, (n,), generator=g)


def train_a_bit(model: nn.Module, data, steps: int = 5, recorder=None) -> None:
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model.train()
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(model(data[0]), data[1]).backward()
        opt.step()
        if recorder is not None:
            recorder.record(model)


def state(model: nn.Module):
    return ([(n, t.detach().clone()) for n, t in model.named_parameters()],
            [(n, t.detach().clone()) for n, t in model.named_buffers()],
            [m.training for m in model.modules()], [p.requires_grad for p in model.parameters()])


def assert_same_state(model: nn.Module, before) -> None:
    params, buffers, modes, grads = before
    for (name, saved), (_, now) in zip(params, model.named_parameters()):
        assert torch.equal(saved, now), name
    for (name, saved), (_, now) in zip(buffers, model.named_buffers()):
        assert torch.equal(saved, now), name
    assert [m.training for m in model.modules()] == modes
    assert [p.requires_grad for p in model.parameters()] == grads


def reference_normalize(direction: list, weights: list) -> None:
    """tomgoldstein/loss-landscape net_plotter.normalize_directions_for_weights(norm='filter', ignore='biasbn')."""
    for d, w in zip(direction, weights):
        if d.dim() <= 1:
            d.fill_(0)
        else:
            for di, wi in zip(d, w):  # over dim 0: conv output channels, linear output rows
                di.mul_(wi.norm() / (di.norm() + 1e-10))


def test_filter_normalization_matches_reference_formula():
    model = make_cnn()
    target = TorchTarget(model, nn.CrossEntropyLoss(), make_data())
    layout, center = target.layout, target.center()
    raw = gaussian(layout, seed=7)
    ours = ls.normalize(raw, center, layout)
    direction = [torch.from_numpy(a.copy()) for a in layout.split(raw)]
    weights = [p.detach().double() for p in model.parameters()]
    reference_normalize(direction, weights)
    expected = np.concatenate([d.numpy().ravel() for d in direction])
    np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=0)
    one_d = [e for e in layout.entries if e.one_d]
    assert {e.name for e in one_d} == {"0.bias", "1.weight", "1.bias", "5.bias"}
    assert all(not ours[e.start:e.stop].any() for e in one_d)


def _frozen_mixed_mode_model():
    model = make_cnn()
    data = make_data()
    train_a_bit(model, data, 2)
    model.train()
    model[1].eval()  # a submodule in eval mode while the model trains
    model[0].bias.requires_grad_(False)
    return model, data


def test_model_restored_bit_identical_after_a_run():
    model, data = _frozen_mixed_mode_model()
    before = state(model)
    view = ls.plane(model, nn.CrossEntropyLoss(), data, steps=5, seed=0, display=False)
    land = view.landscape
    assert land.status == "done" and land.computed.all()
    assert_same_state(model, before)
    model.eval()  # the centre is L(θ*) with the model in eval mode on the same data
    with torch.no_grad():
        direct = float(nn.functional.cross_entropy(model(data[0]), data[1]))
    assert land.values[2, 2] == direct
    assert land.info["seed"] == 0 and land.info["zero_1d"] is True


def _cross_entropy_raising_at(call: int, error: BaseException):
    """Cross-entropy that raises ``error`` on its ``call``-th evaluation (1-based)."""
    calls = []

    def loss(out, y):
        calls.append(1)
        if len(calls) == call:
            raise error
        return nn.functional.cross_entropy(out, y)

    return loss


@pytest.mark.parametrize("error", [RuntimeError("loss exploded"), KeyboardInterrupt()])
def test_model_restored_when_the_loss_raises_mid_grid(error):
    model, data = _frozen_mixed_mode_model()
    before = state(model)
    with pytest.raises(type(error)):
        ls.plane(model, _cross_entropy_raising_at(7, error), data, steps=5, seed=1, display=False)
    assert_same_state(model, before)
    assert torch.is_grad_enabled()


def test_restored_after_background_error_and_kept_points():
    model, data = _frozen_mixed_mode_model()
    before = state(model)
    loss = _cross_entropy_raising_at(10, ValueError("bad batch"))
    view = ls.plane(model, loss, data, steps=5, seed=1, display=False, run_in_background=True)
    with pytest.raises(ValueError, match="bad batch"):
        view.wait(30)
    land = view.landscape
    assert land.status == "failed" and "ValueError: bad batch" in land.error
    assert land.computed.sum() == 9 and "bad batch" in landscape_parts(view).status.value
    assert_same_state(model, before)


def test_cost_counts_forward_passes_over_a_loader():
    model = make_cnn()
    x, y = make_data(30)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=10)
    forwards = []
    model.register_forward_hook(lambda *a: forwards.append(1))
    view = ls.plane(model, nn.CrossEntropyLoss(), loader, steps=(5, 3), seed=0, compute=False, display=False)
    land = view.landscape
    assert land.cost == 5 * 3 * 3
    assert land.cost_text() == "15 grid points (5×3) × 3 batches = 45 forward passes"
    assert "45 forward passes" in landscape_parts(view).cost.value
    assert view.runner.done == 0 and not land.computed.any()  # nothing ran before start
    view.run()
    assert len(forwards) == 45
    # the loader's mean loss (equal batches) is the full set's mean loss at θ*
    model.eval()
    with torch.no_grad():
        full = float(nn.functional.cross_entropy(model(x), y))
    assert land.values[1, 2] == pytest.approx(full, rel=1e-6)


def test_interpolation_hits_both_ends_with_batchnorm_statistics():
    data = make_data()
    model = make_cnn()
    init = copy.deepcopy(model.state_dict())
    train_a_bit(model, data, 8)
    end_state = state(model)
    view = ls.interpolate(init, model, nn.CrossEntropyLoss(), data, steps=5, display=False)
    land = view.landscape
    np.testing.assert_array_equal(land.x, [-0.5, 0.0, 0.5, 1.0, 1.5])
    assert_same_state(model, end_state)
    start_model = make_cnn()
    start_model.load_state_dict(init)
    for alpha_index, net in ((1, start_model), (3, model)):
        net.eval()
        with torch.no_grad():
            direct = float(nn.functional.cross_entropy(net(data[0]), data[1]))
        assert land.values[alpha_index] == pytest.approx(direct, rel=1e-6, abs=1e-7)
    assert int(model[1].num_batches_tracked) == 8  # left alone
    assert land.values[3] < land.values[1]


def test_interpolation_rejects_mismatched_models():
    other = make_cnn(1).state_dict()
    other["0.weight"] = torch.zeros(5, 1, 3, 3)
    with pytest.raises(ValueError, match=r"'0.weight' has shape \(5, 1, 3, 3\), expected \(4, 1, 3, 3\)"):
        ls.interpolate(other, make_cnn(), nn.CrossEntropyLoss(), make_data(), display=False)
    with pytest.raises(ValueError, match="lacks '0.bias', '1.weight'"):
        ls.interpolate({"0.weight": torch.zeros(4, 1, 3, 3)}, make_cnn(), nn.CrossEntropyLoss(), make_data(),
                       display=False)
    with pytest.raises(TypeError, match="data must be an \\(inputs, targets\\) pair"):
        ls.plane(make_cnn(), nn.CrossEntropyLoss(), torch.zeros(3), display=False)
    with pytest.raises(ValueError, match="no batches"):
        ls.plane(make_cnn(), nn.CrossEntropyLoss(), [], display=False)


def test_trajectory_of_a_cnn():
    model = make_cnn()
    data = make_data()
    rec = ls.TrajectoryRecorder(every=1)
    train_a_bit(model, data, 12, recorder=rec)
    before = state(model)
    land = ls.trajectory(rec, model, nn.CrossEntropyLoss(), data, steps=5, display=False).landscape
    assert land.status == "done" and len(land.path.losses) == 12
    model.eval()
    with torch.no_grad():
        last = float(nn.functional.cross_entropy(model(data[0]), data[1]))
    assert land.path.losses[-1] == pytest.approx(last, rel=1e-6)  # the last snapshot is the final model
    assert land.path.residual[-1] == 0.0 and np.allclose(land.path.coords[-1], 0.0)
    model.train()
    assert_same_state(model, before)
