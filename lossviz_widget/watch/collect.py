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
                  tuple(n for n, _ in acts), frozenset(n for n, m in acts if isinstance(m, _RELU_FAMILY)),
                  tuple(math.sqrt(p.numel() / max(_update_sample(p).numel(), 1)) for _, ps in params for p in ps))


def _norms(tensors: list[torch.Tensor], ord: int = 2) -> Sequence[torch.Tensor]:
    """The ``ord``-norm of each tensor as float32 device scalars, in one fused call where available;
    ``ord`` 0 counts the nonzero elements."""
    if not tensors:
        return []
    try:
        return torch._foreach_norm(tensors, ord, dtype=torch.float32)
    except (AttributeError, RuntimeError, TypeError):  # an older torch, or mixed devices
        return [torch.linalg.vector_norm(t, ord, dtype=torch.float32) for t in tensors]


def _stack_into(out: torch.Tensor, values: Sequence[torch.Tensor]) -> None:
    """Write the scalars ``values`` into the vector ``out`` in one call (moved to its device first
    when they live on several: a model split across GPUs)."""
    try:
        torch.stack(list(values), out=out)
    except RuntimeError:
        torch.stack([v.to(out.device) for v in values], out=out)


def _update_sample(param: torch.Tensor) -> torch.Tensor:
    """The part of ``param`` whose change stands for the whole tensor's (see ``_UPDATE_STRIDE``): a
    view of every ``_UPDATE_STRIDE``-th element of a large tensor, else the tensor itself."""
    if param.numel() >= _UPDATE_SAMPLED_FROM and param.is_contiguous():
        return param.view(-1)[::_UPDATE_STRIDE]
    return param


_CHUNK_ROWS = 64  # sampled rows per preallocated device block (see Collector._row_for_step)


class Collector:
    """Hooks that hand one device row per sampled step to ``on_row(step_index, row, counts)``.

    ``row`` (a view into a preallocated device block, NaN where nothing was measured) is laid out
    as :class:`~.series.Layout` says, with per activation module the sum, the 2-norm and the live
    units of its output; ``counts`` holds, per activation module, the output's elements and units
    (host numbers, from shapes; ``(0, 0)`` where it did not run), from which the series derive
    mean, std and dead share.

    ``every``: sample one step in ``every`` (step 0, ``every``, ``2 * every``...).
    :meth:`remove` takes every hook off again.
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer | None, *, every: int,
                 activations: bool, on_row: Callable[[int, torch.Tensor, tuple[tuple[int, int], ...]], None],
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
        self._no_counts = ((0, 0),) * len(self._acts)
        self._counts = self._no_counts  # this step's activation (elements, units), by module
        self._outputs: dict[int, torch.Tensor] = {}  # activation outputs of this forward pass, to measure at its end
        self._indices: dict[tuple[int, ...], torch.Tensor] = {}  # see _index
        self._act_where: dict[tuple[tuple[int, ...], int], tuple[int, ...]] = {}  # see _act_positions
        start = 3 * len(self._params)
        self._act_span = tuple(range(start, start + 3 * len(self._acts)))  # the row's activation part
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
        self._block = torch.empty(0, self.layout.device_width, device=device)  # rows handed out so far: _next
        self._next = 0
        self._row: torch.Tensor | None = None  # the sampled step's row, once something measured it
        self._optimizer = optimizer
        if optimizer is not None:
            self._handles.append(optimizer.register_step_post_hook(self._post_step))
        else:
            self._handles += [p.register_post_accumulate_grad_hook(self._guarded(self._grad_hook(i)))
                              for i, p in enumerate(self._params)]
            self._handles.append(self._root.register_forward_pre_hook(self._guarded(self._on_forward)))
        # hooks on only for sampled steps (see _arm), made once
        self._pre_step_hook = self._guarded(self._pre_step)
        self._activation_hooks = [self._guarded(self._activation_hook(i)) for i in range(len(self._acts))]
        self._forward_end_hook = self._guarded(self._on_forward_end)
        self._sampled_handles: list[Any] = []
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

    def _arm(self) -> None:
        """The hooks only a sampled step needs (the optimizer's pre-step hook, the activation modules'
        and the model's forward hooks) on for one, off otherwise: a module with a forward hook leaves
        PyTorch's fast call path, which costs every forward pass even when the hook returns at once,
        and an unsampled step then costs the loop the post-step hook's count alone."""
        sampling = self.sampling
        if sampling and not self._sampled_handles:
            handles = []
            if self._optimizer is not None:
                handles.append(self._optimizer.register_step_pre_hook(self._pre_step_hook))
            if self._acts:
                handles += [module.register_forward_hook(hook)
                            for (_, module), hook in zip(self._acts, self._activation_hooks, strict=True)]
                handles.append(self._root.register_forward_hook(self._forward_end_hook))
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

    def _row_for_step(self) -> torch.Tensor:
        """The current sampled step's row: the next one of a preallocated, NaN-filled device block
        (one allocation per ``_CHUNK_ROWS`` sampled steps, not one per reduction and step). The
        reductions write into it in place; what a step did not measure stays NaN."""
        if self._row is None:
            if self._next == len(self._block):
                self._block = torch.full((_CHUNK_ROWS, self.layout.device_width), math.nan, device=self._device)
                self._next = 0
            self._row = self._block[self._next]
            self._next += 1
        return self._row

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
        """Count the step; on a sampled one, measure its gradients, weights and update first.

        Gradients are read here, not before the step: a closure passed to ``step()`` (Lightning's
        automatic optimization, LBFGS) computes them inside it, and nothing in ``step()`` changes
        them (after ``GradScaler.unscale_`` and clipping, they are what the optimizer used).

        Registered as it is (it guards itself: an error goes to ``on_error``), so an unsampled step
        costs the loop this one Python call: a flag, a count and a modulo."""
        try:
            if self._stepping:
                self._stepping = False
                self._measure_step()
        except Exception as exc:
            self._on_error(exc)
        finally:
            self._row, self._counts = None, self._no_counts  # a failed measurement leaves nothing behind
            self.count += 1
        # hooks on for the next step if it is sampled, off after a sampled one (with every=1 they stay on)
        if self.every > 1 and (self._sampled_handles or self.count % self.every == 0):
            try:
                self._arm()
            except Exception as exc:
                self._on_error(exc)

    def _measure_step(self) -> None:
        """Every norm of the step just taken, in one fused call written straight into its row."""
        params, q = self._params, len(self._params)
        row = self._row_for_step()
        with torch.no_grad():
            torch._foreach_sub_(self._before, self._samples)  # now -Δθ (sampled)
            # (``is not None`` one by one: ``None in grads`` compares tensors, ~50 µs each)
            grads = [p.grad for p in params if p.grad is not None]
            if len(grads) == q:  # the usual case: every norm in one call
                _stack_into(row[: 3 * q], _norms([*grads, *params, *self._before]))
            else:  # tensors without a gradient stay NaN in the row, and out of the total
                norms = _norms([*grads, *params, *self._before])
                if grads:
                    present = tuple(i for i, p in enumerate(params) if p.grad is not None)
                    row[:q].index_copy_(0, self._index(present), torch.stack(list(norms[: len(grads)])))
                _stack_into(row[q : 3 * q], norms[len(grads) :])
        self._emit()

    def _index(self, positions: tuple[int, ...]) -> torch.Tensor:
        """``positions`` as a device index tensor, made once per distinct tuple (copying a host list
        to the device at each step would cost a transfer each time). ``non_blocking``: a blocking
        copy to a GPU synchronises the stream, which a training step must never do."""
        index = self._indices.get(positions)
        if index is None:
            index = torch.tensor(positions, dtype=torch.long).to(self._device, non_blocking=True)
            self._indices[positions] = index
        return index

    def _act_positions(self, order: tuple[int, ...], units: int) -> tuple[int, ...]:
        """Where the values of :meth:`_reduce_activations` go in a row, for activation modules
        ``order`` of which the first ``units`` have live units: sums, then 2-norms, then live units."""
        key = (order, units)
        where = self._act_where.get(key)
        if where is None:
            a, start = len(self._acts), 3 * len(self._params)
            where = self._act_where[key] = (*(start + i for i in order), *(start + a + i for i in order),
                                            *(start + 2 * a + i for i in order[:units]))
        return where

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
                q, nan = len(self._params), self._nan
                pairs = [self._backward_norms.get(i, (nan, nan)) for i in range(q)]
                row = self._row_for_step()
                _stack_into(row[: 2 * q], [p[0] for p in pairs] + [p[1] for p in pairs])
                self._emit()
        finally:
            self._row, self._counts = None, self._no_counts
            self._backward_norms = {}
            self._backward_seen = False
            self.count += 1
            self._arm()

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
        its live units, written into the step's row; the outputs are let go.

        Done once per forward pass over all modules, not in each module's hook: three fused
        ``_foreach_norm`` calls, one reduction per module and one write, instead of several small
        operations per module (PyTorch's per-call overhead dominated on small layers). A ReLU output
        is >= 0, so a unit (a feature, or a channel of a map) is alive iff its sum over the batch
        (and positions) is > 0: that one pass gives both the live units (ord-0 norm of the per-unit
        sums) and the total (their ord-1 norm), where a max over the batch and a sum took two."""
        outs, self._outputs = self._outputs, {}
        units = [i for i, o in outs.items() if self._relu[i] and o.dim() >= 2]
        others = [i for i in outs if not (self._relu[i] and outs[i].dim() >= 2)]
        unit_sums = [outs[i].sum(dim=(0, *range(2, outs[i].dim())), dtype=torch.float32) for i in units]
        order = (*units, *others)
        values = [*_norms(unit_sums, 1), *(outs[i].sum(dtype=torch.float32) for i in others),
                  *_norms([outs[i] for i in order]), *_norms(unit_sums, 0)]
        row = self._row_for_step()
        where = self._act_positions(order, len(units))
        if where == self._act_span:  # every module, all of the ReLU family, in order: straight in
            _stack_into(row[where[0] : where[-1] + 1], values)
        else:
            try:
                values_t = torch.stack(values)
            except RuntimeError:  # activations on several devices
                values_t = torch.stack([v.to(row.device) for v in values])
            row.index_copy_(0, self._index(where), values_t)
        counts = list(self._counts)
        for i in units:
            counts[i] = (outs[i].numel(), outs[i].shape[1])
        for i in others:
            counts[i] = (outs[i].numel(), 0)
        self._counts = tuple(counts)

    # -- one row ----------------------------------------------------------------------------

    def _emit(self) -> None:
        """Hand the step's row over with its activation counts (the total gradient norm and
        everything else derived from the row is host arithmetic at frame time)."""
        if self._outputs:  # kept by modules called outside the model's forward (no forward end seen)
            self._reduce_activations()
        self._on_row(self.count, self._row_for_step(), self._counts)
