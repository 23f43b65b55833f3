"""``lr_find``: the learning-rate range test (Smith 2015, as fastai runs it), plotted live.

Trains for up to ``num_it`` mini-batches while the learning rate grows
exponentially from ``start_lr`` to ``end_lr``, records the loss, stops early when
the smoothed loss diverges, and suggests learning rates. Schedule, smoothing,
stopping rule and suggestions are fastai's (see :mod:`lossviz_widget.lr_finder.suggest`).

Two ways in:

* PyTorch: ``lr_find(model, optimizer, loss_fn, data)``. torch is imported only
  here, lazily. The model's ``state_dict`` (parameters and buffers), its
  gradients and train/eval modes, and the optimizer's ``state_dict`` (its state
  and every param group's lr) are restored exactly afterwards, also when the
  loss raises or the run is interrupted (KeyboardInterrupt).
* Any framework: ``lr_find(step_fn=f)`` where ``f(lr)`` trains one batch at that
  learning rate and returns the loss. Saving and restoring the weights is then
  up to the caller.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._core.values import DeferredValue, coerce_value, resolve_deferred
from .suggest import DivergenceMonitor, Suggestion, lr_schedule, suggest
from .view import LRFinderPlot

__all__ = ["LRFindResult", "lr_find"]


@dataclass(frozen=True)
class LRFindResult:
    """What :func:`lr_find` recorded.

    ``lrs``/``losses``/``smoothed_losses`` hold one entry per step run (the step that
    triggered a stop included); ``suggestions`` maps method name to
    :class:`~lossviz_widget.lr_finder.Suggestion`; ``stop_reason`` is ``"num_it"``
    (ran all steps), ``"diverged"`` (smoothed loss > 4x best) or ``"non-finite"``.
    """

    lrs: np.ndarray
    losses: np.ndarray
    smoothed_losses: np.ndarray
    suggestions: dict[str, Suggestion]
    stop_reason: str
    widget: LRFinderPlot

    @property
    def suggested_lr(self) -> float:
        """The first method's suggestion (``valley`` by default)."""
        return next(iter(self.suggestions.values())).lr if self.suggestions else math.nan

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


def _loss_float(value: Any) -> float:
    v = coerce_value("loss", value)
    return float(resolve_deferred([v.tensor])[0]) if isinstance(v, DeferredValue) else v


def _batches(data: Iterable) -> Iterator:
    """Cycle through ``data`` (re-iterated when exhausted, like fastai's extra epochs)."""
    while True:
        empty = True
        for batch in data:
            empty = False
            yield batch
        if empty:
            raise ValueError("data yielded no batches")


@contextmanager
def preserved_training_state(model: Any, optimizer: Any) -> Iterator[None]:
    """Put ``model`` and ``optimizer`` back exactly as they were when the block exits.

    Restores the model's ``state_dict`` (parameters and buffers, copied back in place so
    references to the parameters stay valid), each parameter's ``.grad``, every module's
    train/eval mode and the optimizer's ``state_dict`` (state and param groups, lr included).
    """
    import torch

    with torch.no_grad():
        model_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        grads = [(p, None if p.grad is None else p.grad.detach().clone()) for p in model.parameters()]
    modes = [(m, m.training) for m in model.modules()]
    optimizer_state = copy.deepcopy(optimizer.state_dict())
    try:
        yield
    finally:
        model.load_state_dict(model_state)
        for p, g in grads:
            p.grad = g
        for m, training in modes:
            m.training = training
        optimizer.load_state_dict(optimizer_state)


def _to_device(obj: Any, device: Any) -> Any:
    if hasattr(obj, "to") and callable(obj.to):
        return obj.to(device)
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_device(o, device) for o in obj)
    return obj


def _torch_step_fn(model: Any, optimizer: Any, loss_fn: Callable[..., Any], data: Iterable[Any],
                   device: Any) -> Callable[[float], Any]:
    """One training step per call at the given lr: ``loss_fn(model(inputs), target)``."""
    batches = _batches(data)
    if device is None:
        first = next(iter(model.parameters()), None)
        device = None if first is None else first.device

    def step(lr: float) -> Any:
        for group in optimizer.param_groups:
            group["lr"] = lr
        batch = next(batches)
        if not (isinstance(batch, (list, tuple)) and len(batch) == 2):
            raise TypeError(f"data must yield (inputs, target) pairs, got {type(batch).__name__}")
        inputs, target = _to_device(batch, device) if device is not None else batch
        optimizer.zero_grad()
        loss = loss_fn(model(inputs), target)
        loss.backward()
        optimizer.step()
        return loss.detach()

    return step


def _check_torch_args(model: Any, optimizer: Any, loss_fn: Any, data: Any) -> None:
    import torch

    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
    if not isinstance(data, Iterable):
        raise TypeError(f"data must be an iterable of (inputs, target) batches, got {type(data).__name__}")


def _run(step_fn: Callable[[float], Any], lrs: np.ndarray, monitor: DivergenceMonitor,
         plot: LRFinderPlot) -> tuple[list[float], list[float], str]:
    losses: list[float] = []
    smoothed: list[float] = []
    for lr in lrs:
        loss = _loss_float(step_fn(float(lr)))
        smooth, stop = monitor.update(loss)
        losses.append(loss)
        smoothed.append(smooth)
        plot.update(lrs[: len(losses)], losses, smoothed)
        if stop is not None:
            return losses, smoothed, stop
    return losses, smoothed, "num_it"


def lr_find(
    model: Any = None,
    optimizer: Any = None,
    loss_fn: Callable | None = None,
    data: Iterable | None = None,
    *,
    step_fn: Callable[[float], Any] | None = None,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_it: int = 100,
    stop_div: bool = True,
    beta: float = 0.98,
    suggest_methods: Sequence[str] = ("valley", "steep", "minimum", "slide"),
    device: Any = None,
    display: bool = True,
    title: str = "learning-rate finder",
) -> LRFindResult:
    """Run the learning-rate range test and plot it live; returns an :class:`LRFindResult`.

    PyTorch: ``lr_find(model, optimizer, loss_fn, data)`` with ``data`` yielding
    ``(inputs, target)`` batches (a ``DataLoader``; cycled if shorter than ``num_it``),
    moved to ``device`` (default: the model's). Each step sets every param group's lr,
    runs ``loss_fn(model(inputs), target)``, backward and ``optimizer.step()``.
    Model and optimizer are restored exactly afterwards (see the module docstring).

    Any framework: ``lr_find(step_fn=f)``; ``f(lr)`` trains one batch and returns the loss.

    fastai's rules (``fastai/callback/schedule.py``, ``LRFinder`` and ``Learner.lr_find``):
    lr ``start_lr * (end_lr / start_lr) ** (i / num_it)`` for step i < ``num_it``;
    smoothed loss = debiased EMA with ``beta``; stop when it exceeds 4x its best
    (``stop_div``) and always on a NaN/inf loss; ``suggest_methods`` from
    ``valley``, ``steep``, ``minimum``, ``slide``, on the smoothed curve
    ``[num_it // 10 : -5]``. ``display=False`` builds the widget without displaying it
    (``result.widget``), as the integrations' ``display=`` does.
    """
    if step_fn is not None:
        if any(a is not None for a in (model, optimizer, loss_fn, data)):
            raise TypeError("pass either step_fn or model, optimizer, loss_fn and data, not both")
        if not callable(step_fn):
            raise TypeError(f"step_fn must be callable as step_fn(lr) -> loss, got {type(step_fn).__name__}")
    elif any(a is None for a in (model, optimizer, loss_fn, data)):
        missing = [n for n, a in zip(("model", "optimizer", "loss_fn", "data"), (model, optimizer, loss_fn, data))
                   if a is None]
        raise TypeError(f"lr_find needs model, optimizer, loss_fn and data (missing: {', '.join(missing)}), "
                        "or step_fn=callable(lr) -> loss")
    lrs = lr_schedule(start_lr, end_lr, num_it)
    monitor = DivergenceMonitor(beta, stop_div)
    suggest([], [], num_it, suggest_methods)  # reject unknown methods before training
    if step_fn is None:
        _check_torch_args(model, optimizer, loss_fn, data)  # bad arguments: an error, no plot shown
    plot = LRFinderPlot(title=title)
    if display:
        from IPython.display import display as show_output

        show_output(plot)
    try:
        if step_fn is not None:
            losses, smoothed, reason = _run(step_fn, lrs, monitor, plot)
        else:
            assert loss_fn is not None and data is not None  # (checked above: given when step_fn is not)
            with preserved_training_state(model, optimizer):
                model.train()
                losses, smoothed, reason = _run(_torch_step_fn(model, optimizer, loss_fn, data, device), lrs,
                                                monitor, plot)
    except BaseException as exc:  # KeyboardInterrupt too: the plot says why it stopped, then re-raise
        plot.set_status(f"stopped by {type(exc).__name__}: {exc}")
        raise
    ran = lrs[: len(losses)]
    plot.update(ran, losses, smoothed, force=True)
    suggestions = suggest(ran, smoothed, num_it, suggest_methods)
    plot.show_suggestions(suggestions, reason)
    return LRFindResult(ran.copy(), np.asarray(losses), np.asarray(smoothed), suggestions, reason, plot)
