"""Hooks on a PyTorch model (and optimizer) that measure it on sampled steps, on its device.

Imported only by :meth:`lossviz_widget.LossPlot.watch` (it imports torch). Every ``every``-th
training step, reductions run where the tensors live and stay there: gradient, weight and
update norms per parameter tensor in one fused ``torch._foreach_norm`` call (the update ‖Δθ‖
from a copy of the weights taken just before ``optimizer.step()``), and per activation module
the output's sum, 2-norm and live units, for all modules at once when the forward pass ends.
Everything else (per-layer sums, the total, ratios, mean, std, dead share) is host arithmetic at
frame time, so a sampled step costs the training loop a handful of device operations. The step's
numbers end in one device vector handed to ``on_row``; nothing here waits for the device (no ``.item()``, no
``.cpu()``): the watcher copies the rows to the host in one batch at frame time.

When the sample is taken:

* with an optimizer: the weights are copied just before ``optimizer.step()`` (a step pre-hook);
  gradients, weights and the update are read just after it (a post-hook), so under
  ``torch.amp.GradScaler`` the gradients are unscaled and after clipping, and a closure passed to
  ``step()`` (Lightning, LBFGS) has computed them. Steps count optimizer steps; a step the
  scaler skips (inf/NaN gradients) is not one.
* without: gradients as each backward pass accumulates them into ``.grad`` (a post-accumulate
  hook per parameter; ``torch.autograd.grad`` calls, say a gradient penalty, are not seen), and
  the weights then; the step's row is complete when the next training forward pass starts (or
  at ``unwatch()``). Steps count backward passes; no update ratio. Under a ``GradScaler`` these
  gradients are still scaled.

Activations are measured in training-mode forward passes of sampled steps (evaluation passes
are skipped); their forward hooks (and one on the model, which measures the outputs they kept
when its forward pass ends) are registered only for those steps, so other forward passes keep
PyTorch's hook-free fast path. A module called several times in one step (one ``nn.ReLU``
reused) reports its last call. Functional activations (``F.relu`` in ``forward``) have no module to hook.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from .series import Layout

__all__ = ["Collector", "layout_of"]

# activation modules with a dead-unit share (their output is exactly 0 for inputs <= 0)
_RELU_FAMILY: tuple[type[nn.Module], ...] = (nn.ReLU, nn.ReLU6)
# The update ‖Δθ‖ of a large tensor is measured on every ``_UPDATE_STRIDE``-th element (a prime
# stride, so the sample spreads over its rows and columns) and scaled by sqrt(elements / sampled
# elements): the copy, subtraction and norm then touch about a quarter of the weights' cache lines
# instead of all of them, ~6x cheaper on CPU. Error against the exact update on real training
# (tests/features/test_watch.py, 512-wide MLP on digits): median 0.5% (Adam) and 1.5% (SGD with
# momentum), at most 6%; the rule's band spans decades. Tensors under ``_UPDATE_SAMPLED_FROM``
# elements (and non-contiguous ones) are measured exactly.
_UPDATE_STRIDE = 61
_UPDATE_SAMPLED_FROM = 65_536
# in torch.nn.modules.activation but not an elementwise activation of hidden units
_NOT_ACTIVATIONS: tuple[type[nn.Module], ...] = (nn.MultiheadAttention, nn.Softmax, nn.Softmin, nn.LogSoftmax,
                                                 nn.Softmax2d, nn.GLU)


def _unwrap(model: nn.Module) -> nn.Module:
    """The user's module inside a DDP / DataParallel / ``torch.compile`` wrapper (names without the prefix)."""
    for attr in ("module", "_orig_mod"):
        inner = getattr(model, attr, None)
        if isinstance(inner, nn.Module) and type(model).__name__ in ("DistributedDataParallel", "DataParallel",
                                                                       "OptimizedModule"):
            return _unwrap(inner)
    return model


def _is_activation(module: nn.Module) -> bool:
    return type(module).__module__ == "torch.nn.modules.activation" and not isinstance(module, _NOT_ACTIVATIONS)


def _layers(model: nn.Module) -> tuple[list[tuple[str, list[nn.Parameter]]], list[tuple[str, nn.Module]]]:
    """Modules owning trainable parameters directly, and activation modules, in registration order."""
    params, acts = [], []
    for name, module in model.named_modules():
        own = [p for p in module.parameters(recurse=False) if p.requires_grad]
        label = name or type(module).__name__
        if own:
            params.append((label, own))
        if _is_activation(module):
            acts.append((label, module))
    return params, acts


def layout_of(model: nn.Module, activations: bool = True) -> Layout:
    """The rows' layout for ``model`` (see :class:`~.series.Layout`)."""
    params, acts = _layers(_unwrap(model))
    if not activations:
        acts = []
    return Layout(tuple(n for n, _ in params), tuple(sum(p.numel() for p in ps) for _, ps in params),
                  tuple(i for i, (_, ps) in enumerate(params) for _ in ps),
                  tuple(n for n, _ in acts), frozenset(n for n, m in acts if isinstance(m, _RELU_FAMILY)))


def _norms(tensors: list[torch.Tensor], device: torch.device, ord: int = 2) -> torch.Tensor:
    """The ``ord``-norm of each tensor, as one float32 vector on ``device`` (one fused kernel where
    available); ``ord`` 0 counts the nonzero elements."""
    if not tensors:
        return torch.zeros(0, device=device)
    norms: Sequence[torch.Tensor]
    try:
        norms = torch._foreach_norm(tensors, ord, dtype=torch.float32)
    except (AttributeError, RuntimeError, TypeError):  # an older torch, or mixed devices
        norms = [torch.linalg.vector_norm(t, ord, dtype=torch.float32) for t in tensors]
    try:
        return torch.stack(norms)
    except RuntimeError:  # on several devices (a model split across GPUs): gather them on one
        return torch.stack([n.to(device) for n in norms])


def _update_sample(param: torch.Tensor) -> torch.Tensor:
    """The part of ``param`` whose change stands for the whole tensor's (see ``_UPDATE_STRIDE``): a
    view of every ``_UPDATE_STRIDE``-th element of a large tensor, else the tensor itself."""
    if param.numel() >= _UPDATE_SAMPLED_FROM and param.is_contiguous():
        return param.view(-1)[::_UPDATE_STRIDE]
    return param


class Collector:
    """Hooks that hand one packed device vector per sampled step to ``on_row(step_index, row, counts, total)``.

    ``row`` is laid out as :class:`~.series.Layout` says, with per activation module the sum, the
    sum of squares and the live units of its output; ``counts`` holds, per activation module, the
    output's elements and units (host numbers, from shapes), from which the series derive mean,
    std and dead share; ``total`` is the total gradient norm (a device scalar).

    ``every``: sample one step in ``every`` (step 0, ``every``, ``2 * every``...).
    :meth:`remove` takes every hook off again.
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer | None, *, every: int,
                 activations: bool, on_row: Callable[[int, torch.Tensor, list[tuple[int, int]], torch.Tensor], None],
                 on_error: Callable[[BaseException], None]) -> None:
        self.layout = layout_of(model, activations)
        self.every = every
        self.count = 0  # optimizer steps (or backward passes) so far
        self._on_row = on_row
        self._on_error = on_error
        self._root = _unwrap(model)
        params, acts = _layers(self._root)
        self._params: list[torch.Tensor] = [p for _, ps in params for p in ps]
        self._acts = acts if activations else []
        self._relu = [isinstance(m, _RELU_FAMILY) for _, m in self._acts]
        # activation module index -> [sum, 2-norm, live units or NaN] on the device, (elements, units)
        self._act_rows: dict[int, tuple[torch.Tensor, tuple[int, int]]] = {}
        self._outputs: dict[int, torch.Tensor] = {}  # activation outputs of this forward pass, to measure at its end
        self._stepping = False  # the optimizer step under way is a sampled one
        self._before: list[torch.Tensor] = []  # update samples of the weights just before the sampled step
        self._samples: list[torch.Tensor] = []  # the views they were copied from (read again after the step)
        self._sampled_at: list[int] = []  # the parameters' storage addresses when those views were taken
        self._backward_norms: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # no optimizer: (grad, weight)
        self._backward_seen = False  # no optimizer: a backward pass ended the current step
        self._handles: list[Any] = []
        device = self._params[0].device if self._params else torch.device("cpu")
        self._device = device
        self._nan = torch.full((), math.nan, device=device)
        self._nan3 = torch.full((3,), math.nan, device=device)  # an activation module that did not run
        # per parameter tensor: sqrt(elements / elements in its update sample), scaling the sample's norm
        self._update_scale = torch.tensor([math.sqrt(p.numel() / max(_update_sample(p).numel(), 1))
                                           for p in self._params], dtype=torch.float32, device=device)
        self._optimizer = optimizer
        if optimizer is not None:
            self._handles.append(optimizer.register_step_post_hook(self._guarded(self._post_step)))
        else:
            self._handles += [p.register_post_accumulate_grad_hook(self._guarded(self._grad_hook(i)))
                              for i, p in enumerate(self._params)]
            self._handles.append(self._root.register_forward_pre_hook(self._guarded(self._on_forward)))
        self._sampled_handles: list[Any] = []  # hooks on only for sampled steps (see _arm)
        self._arm()

    def _guarded(self, hook: Callable[..., None]) -> Callable[..., None]:
        """``hook`` that never raises into the training loop: an error goes to ``on_error``."""

        def guarded(*args: Any) -> None:
            try:
                hook(*args)
            except Exception as exc:
                self._on_error(exc)

        return guarded

    # -- when --------------------------------------------------------------------------------

    @property
    def sampling(self) -> bool:
        """Whether the current step is one to measure."""
        return self.count % self.every == 0

    def _advance(self) -> None:
        """One step done: count it, and put on the sampled steps' hooks only if the next one is sampled."""
        self.count += 1
        self._arm()

    def _arm(self) -> None:
        """The hooks only a sampled step needs (the optimizer's pre-step hook, the activation modules'
        and the model's forward hooks) on for one, off otherwise: a module with a forward hook leaves
        PyTorch's fast call path, which costs every forward pass even when the hook returns at once,
        and an unsampled step then costs the loop the post-step hook's count alone."""
        sampling = self.sampling
        if sampling and not self._sampled_handles:
            handles = []
            if self._optimizer is not None:
                handles.append(self._optimizer.register_step_pre_hook(self._guarded(self._pre_step)))
            if self._acts:
                handles += [module.register_forward_hook(self._guarded(self._activation_hook(i)))
                            for i, (_, module) in enumerate(self._acts)]
                handles.append(self._root.register_forward_hook(self._guarded(self._on_forward_end)))
            self._sampled_handles = handles
        elif not sampling:
            while self._sampled_handles:
                self._sampled_handles.pop().remove()

    def remove(self) -> None:
        """Take every hook off the model and optimizer (idempotent); a step measured without an
        optimizer is handed over first."""
        if self._backward_seen:
            self._guarded(self._finish_backward)()
        for handles in (self._handles, self._sampled_handles):
            while handles:
                handles.pop().remove()
        self._before, self._samples, self._sampled_at = [], [], []

    # -- gradients, weights, updates --------------------------------------------------------

    def _pre_step(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        """Copy the weights' update samples (the update is measured against them after the step).

        The sample views are kept while every parameter's storage address is the one they were
        taken at: a ``model.to(...)`` or a ``param.data = ...`` between steps moves it (the old
        storage, which the views keep alive, cannot be reused at the same address), and the views
        are then taken anew."""
        self._stepping = self.sampling
        if self._stepping:
            with torch.no_grad():
                where = [p.data_ptr() for p in self._params]
                if where == self._sampled_at:
                    torch._foreach_copy_(self._before, self._samples)
                else:  # the first sampled step, or storage replaced since
                    self._samples = [_update_sample(p) for p in self._params]
                    self._before = [s.clone() for s in self._samples]
                    self._sampled_at = where

    def _post_step(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        """Gradients, weights and update of the step just taken.

        Gradients are read here, not before the step: a closure passed to ``step()`` (Lightning's
        automatic optimization, LBFGS) computes them inside it, and nothing in ``step()`` changes
        them (after ``GradScaler.unscale_`` and clipping, they are what the optimizer used)."""
        try:
            if self._stepping:
                params, q = self._params, len(self._params)
                with torch.no_grad():
                    torch._foreach_sub_(self._before, self._samples)  # now -Δθ (sampled)
                    given = [p.grad for p in params if p.grad is not None]
                    if len(given) == q:  # the usual case: every norm in one call
                        norms = _norms([*given, *params, *self._before], self._device)
                    else:  # by index: a boolean mask would sync with the device
                        present = [i for i, p in enumerate(params) if p.grad is not None]
                        index = torch.tensor(present, dtype=torch.long).to(self._device, non_blocking=True)
                        grads = torch.full((q,), math.nan, device=self._device).index_copy_(
                            0, index, _norms(given, self._device))
                        norms = torch.cat([grads, _norms([*params, *self._before], self._device)])
                    norms[2 * q :] *= self._update_scale
                self._emit(norms)
        finally:
            self._stepping = False
            self._advance()

    def _grad_hook(self, i: int) -> Callable[[torch.Tensor], None]:
        """No optimizer: after parameter ``i``'s gradient is accumulated, note its norm and its weight's."""

        def hook(param: torch.Tensor) -> None:
            self._backward_seen = True
            if self.sampling and param.grad is not None:
                with torch.no_grad():
                    self._backward_norms[i] = (torch.linalg.vector_norm(param.grad, dtype=torch.float32),
                                               torch.linalg.vector_norm(param.detach(), dtype=torch.float32))

        return hook

    def _on_forward(self, module: nn.Module, args: Any) -> None:
        """No optimizer: the next training forward pass ends the step of the last backward."""
        if self._backward_seen and self._root.training:
            self._finish_backward()

    def _finish_backward(self) -> None:
        try:
            if self.sampling and self._backward_norms:
                nan = self._nan
                pairs = [self._backward_norms.get(i, (nan, nan)) for i in range(len(self._params))]
                grads, weights = (torch.stack([p[k].to(nan.device) for p in pairs]) for k in (0, 1))
                self._emit(torch.cat([grads, weights, torch.full_like(weights, math.nan)]))
        finally:
            self._backward_norms = {}
            self._backward_seen = False
            self._advance()

    # -- activations ------------------------------------------------------------------------

    def _activation_hook(self, i: int) -> Callable[[nn.Module, Any, Any], None]:
        def hook(module: nn.Module, inputs: Any, output: Any) -> None:
            if self._root.training and isinstance(output, torch.Tensor) and output.numel():
                self._outputs[i] = output.detach()  # no autograd graph from here on

        return hook

    def _on_forward_end(self, module: nn.Module, args: Any, output: Any) -> None:
        """The model's forward pass is done: measure the activations it kept, all in a few calls."""
        if self._outputs:
            self._reduce_activations()

    def _reduce_activations(self) -> None:
        """Per activation output kept since the last call: its sum, its 2-norm and (ReLU family)
        its live units, into :attr:`_act_rows`; the outputs are let go.

        Done once per forward pass over all modules, not in each module's hook: three fused
        ``_foreach_norm`` calls and one reduction per module, instead of several small operations per
        module (PyTorch's per-call overhead dominated on small layers). A ReLU output is >= 0, so a
        unit (a feature, or a channel of a map) is alive iff its sum over the batch (and positions)
        is > 0: that one pass gives both the live units (ord-0 norm of the per-unit sums) and the
        total (their ord-1 norm), where a max over the batch and a sum took two."""
        outs, self._outputs = self._outputs, {}
        units = {i: o for i, o in outs.items() if self._relu[i] and o.dim() >= 2}
        others = [i for i in outs if i not in units]
        order = [*units, *others]
        device = outs[order[0]].device
        unit_sums = [o.sum(dim=(0, *range(2, o.dim())), dtype=torch.float32) for o in units.values()]
        nan = self._nan.to(device).expand(len(others))
        other_sums = [outs[i].sum(dtype=torch.float32).to(device) for i in others]
        sums = torch.cat([_norms(unit_sums, device, 1), torch.stack(other_sums) if others else nan])
        live = torch.cat([_norms(unit_sums, device, 0), nan])
        block = torch.stack([sums, _norms([outs[i] for i in order], device), live])
        for i, column in zip(order, block.unbind(1), strict=True):
            self._act_rows[i] = (column, (outs[i].numel(), units[i].shape[1] if i in units else 0))

    # -- one row ----------------------------------------------------------------------------

    def _emit(self, norms: torch.Tensor) -> None:
        """One row: per-parameter norms (gradients, weights, updates: the host sums them per layer),
        then activation sums; and the total gradient norm, a device scalar for the plot's curve
        (tensors without a gradient left out)."""
        parts = [norms]
        counts = []
        if self._outputs:  # kept by modules called outside the model's forward (no forward end seen)
            self._reduce_activations()
        if self._acts:
            missing = (self._nan3, (0, 0))
            rows = [self._act_rows.get(i, missing) for i in range(len(self._acts))]
            try:
                sums = torch.stack([r for r, _ in rows])
            except RuntimeError:  # activations on several devices
                sums = torch.stack([r.to(norms.device) for r, _ in rows])
            parts.append(sums.t().reshape(-1))  # sums, then 2-norms, then live units
            counts = [c for _, c in rows]
        self._act_rows = {}
        total = torch.linalg.vector_norm(norms[: len(self._params)].nan_to_num(0.0))
        self._on_row(self.count, torch.cat(parts), counts, total)
