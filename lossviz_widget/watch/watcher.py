"""``Watcher``: hooks on a model feeding per-layer series, rules and a view of a :class:`Recorder`.

Data path: the :class:`~.collect.Collector`'s hooks leave one device vector per sampled step in a
queue (the training loop's only cost: the reductions themselves, no device sync, no ``log()``).
Whenever the recorder reads its data (each frame, ``flush()``, ``diagnose()``) it first calls the
watcher's feed (:meth:`Recorder.add_feed`): the queued vectors are stacked and copied to the host
in one transfer, appended to the :class:`~.series.WatchedSeries`, and their total gradient norms
appended to the plot's ``watch/grad_norm`` curve (at the steps and wall times of their training
steps), so the diagnostics engine reads that curve beside the loss, in order with it. At each
frame the recorder then calls :meth:`Watcher.write_new` (the watcher is one of its sinks), which
redraws a view (the heatmaps of :mod:`.view`) when there is one. The rules
(:mod:`lossviz_widget.diagnostics.watch`) run in the recorder's diagnostics pass
(:meth:`Recorder.add_finder`), so their findings are listed, marked and returned by
``diagnose()`` like every other. :meth:`close` (``unwatch()``, or the recorder closing) removes
every hook and keeps what was measured.
"""

from __future__ import annotations

import collections
import logging
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from .._core.recorder import Recorder
from .._core.rewind import Rewind
from .._model import DEFAULT_RUN, RunsData
from ..diagnostics.findings import Finding
from ..diagnostics.watch import GRAD_NORM_METRIC, WatchConfig, WatchRules
from .series import QUANTITIES, WatchedSeries

__all__ = ["Watcher", "fetch_rows"]

log = logging.getLogger("lossviz_widget")


def fetch_rows(rows: Sequence[Any]) -> np.ndarray:
    """Equal-length device vectors -> one ``len(rows) x width`` float64 host array, in one copy.

    The vector counterpart of :func:`lossviz_widget._core.values.resolve_deferred` (which fetches
    scalars): stacked on their device, then copied once; one sync per call, at frame time.
    """
    if not rows:
        return np.empty((0, 0))
    device = rows[0].device
    return torch.stack([r.to(device) for r in rows]).to(torch.float64).cpu().numpy()


def _distributed_rank() -> int:
    """This process's rank in an initialised ``torch.distributed`` group, else 0."""
    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized():
        return int(dist.get_rank())
    return 0


class Watcher:
    """Watch ``model``'s gradients, weights, updates and activations into ``recorder``.

    ``optimizer`` (optional) adds the update-to-weight ratio and takes gradients as the optimizer
    sees them (unscaled under AMP); ``every``: one sampled step in ``every``; ``activations``:
    hook activation modules too. Steps count from ``start`` (by default one past the recorder's
    largest step, like :func:`lossviz_widget.integrations.loop.track`). On a DDP rank other than
    0 nothing is hooked (gradients are the same on every rank after the all-reduce).
    ``draw(series)`` is called at frames with new samples (the widget's heatmaps); it returns False
    when it skipped them (throttled), and the watcher then asks for another frame.
    """

    def __init__(self, recorder: Recorder, model: Any, optimizer: Any = None, *, every: int = 10,
                 activations: bool = True, config: WatchConfig | None = None, start: int | None = None,
                 draw: Callable[[WatchedSeries], bool] | None = None) -> None:
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"watch() takes a torch.nn.Module, got {type(model).__name__}")
        inner = getattr(optimizer, "optimizer", None)
        if isinstance(inner, torch.optim.Optimizer):  # accelerate's and Lightning's wrappers: hook the real one
            optimizer = inner
        if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"optimizer must be a torch.optim.Optimizer or None, got {type(optimizer).__name__}")
        if not isinstance(every, int) or isinstance(every, bool) or every < 1:
            raise ValueError(f"every must be an int >= 1, got {every!r}")
        from .collect import Collector, layout_of

        self.rules = WatchRules(config)
        self.last_error: BaseException | None = None  # the last error in a hook or a frame (training went on)
        self._recorder = recorder
        self._draw = draw
        self._start = self._next_step(recorder) if start is None else int(start)
        self._stale = False  # samples the view has not drawn yet
        # (step, device row, activation counts, wall time) per sampled step not yet fetched
        self._queue: collections.deque[tuple[int, Any, tuple[tuple[int, int], ...], float]] = collections.deque()
        self._collector: Collector | None = None
        self.series = WatchedSeries(layout_of(model, activations))
        self._has_optimizer = optimizer is not None
        if _distributed_rank() == 0:
            self._collector = Collector(model, optimizer, every=every, activations=activations,
                                        on_row=self._on_row, on_error=self._on_error)
        recorder.add_feed(self._feed)
        recorder.add_sink(self)
        recorder.add_finder(self.findings)

    @staticmethod
    def _next_step(recorder: Recorder) -> int:
        last = [h.steps[-1] for h in recorder.data().get(DEFAULT_RUN, {}).values() if len(h.steps)]
        return int(max(last)) + 1 if last else 0

    @property
    def expected(self) -> tuple[str, ...]:
        """The quantities this watch will measure (the view makes their maps up front): none on a
        DDP rank other than 0, the update ratio only with an optimizer, the activation statistics
        only for activation modules, the dead share only for the ReLU family."""
        if self._collector is None:
            return ()
        lay = self.series.layout
        has = {"grad_norm": bool(lay.param_layers), "weight_norm": bool(lay.param_layers),
               "update_ratio": bool(lay.param_layers) and self._has_optimizer,
               "act_mean": bool(lay.act_layers), "act_std": bool(lay.act_layers),
               "dead_fraction": bool(lay.relu_layers)}
        return tuple(q for q in QUANTITIES if has[q])

    @property
    def active(self) -> bool:
        """Whether hooks are on the model (False after :meth:`close`, and on DDP ranks other than 0)."""
        return self._collector is not None

    # -- from the training loop ------------------------------------------------------------------

    def _on_row(self, count: int, row: Any, counts: tuple[tuple[int, int], ...]) -> None:
        first = not self._queue
        self._queue.append((self._start + count, row, counts, time.time()))
        if first:
            # a frame for the rows since the last fetch, asked once, as log() asks for logged points:
            # asking at every row would also draw each frame offered to the logging thread here, in
            # the optimizer's hook (see FrameScheduler), where the loop pays all of its CPU
            self._recorder.changed(settle=True)

    def _on_error(self, exc: BaseException) -> None:
        if self.last_error is None:
            log.warning("lossviz_widget: watch() hook failed; training goes on (%s: %s)", type(exc).__name__, exc)
        self.last_error = exc

    @property
    def error(self) -> str:
        """Sink protocol: the last hook or frame error, for the plot's status line ("" when none)."""
        exc = self.last_error
        return "" if exc is None else f"watch() error: {type(exc).__name__}: {exc}"

    # -- when the recorder reads its data (the feed: one pass at a time) or draws (its frame lock) ----

    def fetch(self) -> int:
        """Copy the queued samples to the host (one transfer) and append them to the series, their
        total gradient norms to the plot's curve; returns how many."""
        queued = [self._queue.popleft() for _ in range(len(self._queue))]
        if not queued:
            return 0
        steps = [q[0] for q in queued]
        self.series.append(steps, fetch_rows([q[1] for q in queued]), np.array([q[2] for q in queued]))
        self._recorder.extend(GRAD_NORM_METRIC, steps, self.series.total_grad_norm[-len(queued):],
                              [q[3] for q in queued], request=False)
        return len(steps)

    def _feed(self) -> None:
        """The recorder's feed: fetch before it reads its data (see the module docstring)."""
        try:
            self._stale = self.fetch() > 0 or self._stale
        except Exception as exc:
            self._on_error(exc)

    def write_new(self, data: RunsData, rewinds: Sequence[Rewind] = ()) -> None:
        """Sink protocol: each frame, redraw the view if the feed brought new samples. Step rewinds
        of the logged curves do not touch the watched series (they are the model's own record)."""
        try:
            if self._stale and self._draw is not None:
                self._stale = not self._draw(self.series)
                if self._stale:  # drawn by a later frame (the watcher, a sink, keeps frames running)
                    self._recorder.changed()
        except Exception as exc:
            self._on_error(exc)

    def findings(self, data: RunsData) -> list[Finding]:
        """Every watch finding so far, after reading what was measured since the last call (the
        recorder's feed fetched it before the data it reads)."""
        try:
            self.rules.update(self.series)
        except Exception as exc:
            self._on_error(exc)
        return list(self.rules.findings)

    def close(self) -> None:
        """Remove every hook and stop drawing (idempotent); what was measured stays (series, curve,
        findings, the view as last drawn), and samples still queued are read at the next frame."""
        self._draw = None
        if self._collector is not None:
            self._collector.remove()
            self._collector = None
