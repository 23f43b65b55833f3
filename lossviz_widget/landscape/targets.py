"""What a landscape evaluates: a loss as a function of one flat parameter vector.

A :class:`Target` knows its parameter :class:`~.params.Layout`, its centre θ*, how
many forward passes one point costs, and opens a *session*: a context manager that
yields ``evaluate(rows)`` (rows: ``(n, size)`` float64 parameter vectors → ``(n,)``
losses) and puts everything back as it was when it closes, whatever happened.

This module has the NumPy target (a plain loss function of a parameter vector or
a list of arrays) and :func:`make_target`, which picks the right target for what
the user passed; the PyTorch target lives in :mod:`.torch_target` and torch is
imported only when a torch model is actually passed.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol, TypeGuard

import numpy as np

from .params import Layout, layout_of_arrays

if TYPE_CHECKING:
    import torch

__all__ = ["NumpyTarget", "Target", "is_torch_module", "make_target"]

Evaluate = Callable[[np.ndarray], np.ndarray]


class Target(Protocol):
    layout: Layout
    passes_per_point: int  # forward passes (batches) per grid point: the cost unit
    zero_1d_default: bool  # filter normalization default: zero biases/norms (torch) or not (NumPy)

    def center(self) -> np.ndarray: ...

    def session(self) -> contextlib.AbstractContextManager[Evaluate]: ...


def is_torch_module(obj: object) -> TypeGuard[torch.nn.Module]:
    """True for a ``torch.nn.Module``; never imports torch (no torch loaded: no module)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.nn.Module)


def _as_loss(value: Any, where: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"loss_fn must return a number {where}, got {type(value).__name__}") from None


class NumpyTarget:
    """``loss_fn(theta)`` for a NumPy parameter vector, or ``loss_fn([arrays])`` for a list.

    ``batched=True``: ``loss_fn`` takes a whole batch of points at once, shape
    ``(n, d)`` (a list input: a list of arrays with a leading ``n`` axis) and returns
    ``n`` losses; one call then evaluates many grid points (vectorized).
    """

    passes_per_point = 1
    zero_1d_default = False

    def __init__(self, params: object, loss_fn: Callable[..., Any], *, batched: bool = False) -> None:
        if not callable(loss_fn):
            raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
        self.layout, self._center, self._is_list = layout_of_arrays(params)
        self._loss = loss_fn
        self.batched = bool(batched)

    def center(self) -> np.ndarray:
        return self._center.copy()

    def _arg(self, row: np.ndarray) -> object:
        row = row.copy()  # the user's function may modify what it gets
        return [a.copy() for a in self.layout.split(row)] if self._is_list else row

    def _evaluate(self, rows: np.ndarray) -> np.ndarray:
        if not self.batched:
            return np.array([_as_loss(self._loss(self._arg(r)), "for one parameter vector") for r in rows])
        batch = rows.copy()
        out = self._loss([a.copy() for a in self.layout.split_batch(batch)] if self._is_list else batch)
        try:
            values = np.asarray(out, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"a batched loss_fn must return an array of numbers, got {type(out).__name__}") from None
        if values.shape != (len(rows),):
            raise ValueError(f"a batched loss_fn must map shape (n, d) to (n,): got {values.shape} for n={len(rows)}")
        return values

    @contextlib.contextmanager
    def session(self) -> Iterator[Evaluate]:
        yield self._evaluate


def make_target(model: object, loss_fn: Callable[..., Any], data: object = None, *, batched: bool = False,
                buffers: bool = False) -> Target:
    """A torch target for an ``nn.Module`` (``data`` required), else a NumPy target."""
    if is_torch_module(model):
        from .torch_target import TorchTarget

        if batched:
            raise ValueError("batched=True is for NumPy loss functions; a torch model evaluates one point at a time")
        return TorchTarget(model, loss_fn, data, buffers=buffers)
    if data is not None:
        raise TypeError("data is only for torch models; a NumPy loss_fn gets the parameters alone")
    if buffers:
        raise ValueError("buffers=True is for torch models (BatchNorm running statistics)")
    return NumpyTarget(model, loss_fn, batched=batched)
