"""Tensors as values: PyTorch on CPU here, CUDA where a GPU exists (no sync per log())."""

import gc
import weakref

import numpy as np
import pytest
from drawn import main_line

from lossviz_widget import LossPlot

torch = pytest.importorskip("torch")
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture
def plot():
    p = LossPlot()
    yield p
    p.close()


def test_cpu_tensors_of_any_float_or_int_dtype(plot):
    w = torch.tensor(2.0, requires_grad=True)
    loss = (w * 3) ** 2  # part of an autograd graph
    plot.log(
        loss=loss, one=torch.tensor([0.5]), half=torch.tensor(1.5, dtype=torch.float16),
        bf=torch.tensor(2.0, dtype=torch.bfloat16), i=torch.tensor(7), d=torch.tensor(0.1, dtype=torch.float64),
    )
    got = {k: plot.history[k].values[0] for k in plot.history}
    assert got == {"loss": 36.0, "one": 0.5, "half": 1.5, "bf": 2.0, "i": 7.0, "d": 0.1}
    plot.log(step=torch.tensor(5), loss=torch.tensor(1.0))
    assert plot.history["loss"].steps.tolist() == [0.0, 5.0]


@pytest.mark.parametrize(
    "value, exc, message",
    [
        (torch.tensor([1.0, 2.0, 3.0]), ValueError, r"metric 'loss': expected a scalar, got a tensor of shape \(3,\)"),
        (torch.tensor(True), TypeError, "metric 'loss': got a boolean"),
        (torch.tensor(1 + 1j), TypeError, "metric 'loss': unsupported dtype"),
        (torch.zeros(0), ValueError, "expected a scalar"),
    ],
)
def test_bad_tensors(plot, value, exc, message):
    plot.log(loss=1.0)
    with pytest.raises(exc, match=message):
        plot.log(loss=value)
    assert plot.history["loss"].values.tolist() == [1.0]


def test_device_tensors_are_never_read_in_log(plot):
    """A meta tensor has no data: any attempt to read it raises. log() must not try."""
    leaf = torch.tensor(0.5, device="meta", requires_grad=True)
    plot.log(loss=1.0, step=0)
    plot.log(loss=leaf * 2, step=1)  # deferred, not read
    plot.log(loss=2.0, step=2)
    held = weakref.ref(leaf)
    del leaf
    gc.collect()
    assert held() is None  # graph dropped: the value kept does not hold the autograd graph (and its leaves)
    with pytest.warns(RuntimeWarning, match="1 logged tensor value.*could not be copied.*NaN"):
        values = plot.history["loss"].values  # fetch fails: a defined outcome, not an error per frame
    assert values[0] == 1.0 and np.isnan(values[1]) and values[2] == 2.0
    plot.flush()  # nothing pending any more: frames work
    assert plot.shown_html["readout"].count('data-nonfinite="1"') == 1


def test_deferred_values_are_fetched_in_order_in_one_batch(plot):
    from lossviz_widget._core.buffers import MetricBuffer
    from lossviz_widget._core.values import DeferredValue

    buf = MetricBuffer()
    for i in range(1000):  # CPU tensors exercise the same batching code as CUDA ones
        buf.append(float(i), DeferredValue(torch.tensor(i * 0.5, dtype=torch.float32 if i % 2 else torch.float64)), 0.0)
    buf.append(1000.0, 9.0, 0.0)
    np.testing.assert_array_equal(buf.snapshot().values, np.r_[np.arange(1000) * 0.5, 9.0])


def test_nan_tensor_kept(plot):
    plot.log(loss=torch.tensor(float("nan")))
    assert np.isnan(plot.history["loss"].values[0])


@cuda
def test_cuda_tensors_never_sync_in_log_and_arrive_at_frame_time(plot):
    device = torch.device("cuda")
    w = torch.randn(256, 256, device=device, requires_grad=True)
    expected = []
    torch.cuda.set_sync_debug_mode("error")  # any device->host sync inside log() raises
    try:
        for step in range(500):
            loss = (w @ w).square().mean() * (1.0 / (step + 1))
            plot.log(loss=loss, half=loss.detach().half(), step=step)
            expected.append(loss.detach())
    finally:
        torch.cuda.set_sync_debug_mode(0)
    plot.flush()  # one batched transfer per (device, dtype)
    want = torch.stack(expected).double().cpu().numpy()
    np.testing.assert_allclose(plot.history["loss"].values, want, rtol=1e-12)
    np.testing.assert_allclose(plot.history["half"].values, want, rtol=2e-3)
    assert plot.history["loss"].steps.tolist() == list(range(500))
    line = main_line(plot, "loss", "loss")
    assert np.isfinite(line.y).all() and len(line.y) == 500


@cuda
def test_cuda_history_access_resolves_pending_values(plot):
    plot.log(loss=torch.tensor(0.25, device="cuda"))
    plot.log(loss=torch.tensor(float("inf"), device="cuda"))
    assert plot.history["loss"].values.tolist() == [0.25, float("inf")]


@cuda
def test_cuda_graph_memory_is_freed_while_the_value_waits_for_a_frame(plot):
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    w = torch.randn(4096, 4096, device="cuda", requires_grad=True)  # 64 MiB
    activation = (w @ w).tanh()  # the graph saves a 64 MiB activation for backward
    loss = activation.mean()
    del activation
    held = torch.cuda.memory_allocated()
    assert held - base >= 128 * 2**20
    plot.log(loss=loss)  # deferred: still on the device, not yet fetched
    del loss, w
    assert torch.cuda.memory_allocated() - base < 2**20  # only the detached scalar remains
    plot.flush()
    assert np.isfinite(plot.history["loss"].values[0])


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_extend_takes_half_precision_tensors_as_log_does(dtype):
    """``log()`` takes a bfloat16 scalar; ``extend()`` of a bfloat16 tensor (NumPy has no such dtype) too."""
    p = LossPlot()
    try:
        values = torch.tensor([1.0, float("nan"), 0.5], dtype=dtype, requires_grad=True)
        p.extend("loss", torch.arange(3, dtype=dtype), values, run="half")
        h = p.run("half").history["loss"]
        np.testing.assert_array_equal(h.values, [1.0, np.nan, 0.5])
        np.testing.assert_array_equal(h.steps, [0.0, 1.0, 2.0])
    finally:
        p.close()
