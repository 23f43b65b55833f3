"""A PyTorch ``nn.Module`` with a loss function and a fixed evaluation set, as a :class:`~.targets.Target`.

Imported only when a torch model is passed (torch stays out of ``import lossviz_widget``).

What a session guarantees (Li et al. 2018; tomgoldstein/loss-landscape):

* the model is in eval mode and no gradients are recorded while points are evaluated,
  on the same fixed evaluation batches every time (a loader is read once, up front);
* every point's weights are *set* from its own vector θ* + x·δ + y·η, never updated
  in place step by step, so nothing accumulates;
* afterwards every parameter and buffer is bit-identical to before (copied back from
  clones), with each module's train/eval mode and each parameter's ``requires_grad``
  as they were: also when the loss raises or the user interrupts.

``buffers=True`` (used by interpolation) adds the floating-point buffers, i.e.
BatchNorm ``running_mean``/``running_var``, to the parameter vector, so they are
interpolated too; integer buffers (``num_batches_tracked``) are left alone.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import torch

from .params import Layout

__all__ = ["TorchTarget", "batches_of"]


def batches_of(data: object) -> list[tuple[Any, Any]]:
    """``(inputs, targets)`` or an iterable of such batches (e.g. a DataLoader), read once into a list."""
    if isinstance(data, (tuple, list)) and len(data) == 2 and isinstance(data[0], torch.Tensor):
        return [(data[0], data[1])]
    if data is None or isinstance(data, (str, bytes, torch.Tensor)) or not hasattr(data, "__iter__"):
        raise TypeError("data must be an (inputs, targets) pair of tensors or an iterable of such batches "
                        f"(e.g. a DataLoader), got {type(data).__name__}")
    batches = []
    for i, batch in enumerate(data):
        if not isinstance(batch, (tuple, list)) or len(batch) < 2:
            raise TypeError(f"data batch {i} must be an (inputs, targets) pair, got {type(batch).__name__}")
        batches.append((batch[0], batch[1]))
    if not batches:
        raise ValueError("data holds no batches: the loss needs at least one evaluation batch")
    return batches


def _size(inputs: Any) -> int:
    return len(inputs) if hasattr(inputs, "__len__") else 1


class TorchTarget:
    """``loss_fn(model(x), y)`` averaged over fixed batches (weighted by batch size)."""

    zero_1d_default = True

    def __init__(self, model: torch.nn.Module, loss_fn: Callable[..., Any], data: object, *,
                 buffers: bool = False) -> None:
        if not callable(loss_fn):
            raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
        self.model = model
        self._loss = loss_fn
        self._batches = batches_of(data)
        self.passes_per_point = len(self._batches)
        named: list[tuple[str, torch.Tensor]] = list(model.named_parameters())
        if buffers:
            named += [(n, b) for n, b in model.named_buffers() if b.is_floating_point()]
        if not named:
            raise ValueError("the model has no parameters to vary")
        self._tensors = [t for _, t in named]
        self.layout = Layout.from_shapes([(n, tuple(t.shape)) for n, t in named])

    def center(self) -> np.ndarray:
        return self.vector_of(self.model)

    def vector_of(self, source: torch.nn.Module | Mapping[str, Any]) -> np.ndarray:
        """The layout's values taken from a module or a ``state_dict`` (float64, flat)."""
        if isinstance(source, torch.nn.Module):
            state: dict[str, torch.Tensor] = dict(source.named_parameters())
            state.update(source.named_buffers())
        elif isinstance(source, Mapping):
            state = dict(source)
        else:
            raise TypeError(f"expected an nn.Module or a state_dict, got {type(source).__name__}")
        missing = [n for n in self.layout.names if n not in state]
        if missing:
            raise ValueError(f"the other parameter set lacks {', '.join(map(repr, missing[:5]))}"
                             + (f" and {len(missing) - 5} more" if len(missing) > 5 else ""))
        arrays = [torch.as_tensor(state[n]).detach().to("cpu", torch.float64).numpy() for n in self.layout.names]
        return self.layout.vector(arrays, "the other parameter set")

    def _set(self, row: np.ndarray) -> None:
        for tensor, entry in zip(self._tensors, self.layout.entries):
            src = torch.from_numpy(row[entry.start:entry.stop]).view(entry.shape)
            tensor.copy_(src.to(device=tensor.device, dtype=tensor.dtype))

    def _loss_here(self) -> float:
        total, count = 0.0, 0
        for x, y in self._batches:
            n = _size(x)
            loss = self._loss(self.model(x), y)
            total += float(loss) * n
            count += n
        return total / count

    def _evaluate(self, rows: np.ndarray) -> np.ndarray:
        out = np.empty(len(rows))
        for i, row in enumerate(rows):
            self._set(row)
            out[i] = self._loss_here()
        return out

    @contextlib.contextmanager
    def session(self) -> Iterator[Callable[[np.ndarray], np.ndarray]]:
        model = self.model
        saved = [(t, t.detach().clone()) for t in [*model.parameters(), *model.buffers()]]
        modes = [(m, m.training) for m in model.modules()]
        grads = [(p, p.requires_grad) for p in model.parameters()]
        try:
            model.eval()
            with torch.no_grad():
                yield self._evaluate
        finally:
            with torch.no_grad():
                for tensor, copy in saved:
                    tensor.copy_(copy)
            for module, training in modes:
                module.training = training
            for p, flag in grads:
                p.requires_grad_(flag)
