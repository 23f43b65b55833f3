"""Hand-written loops (plain PyTorch, JAX, NumPy...): ``plot.log`` plus two small helpers.

The pattern needs nothing from here::

    plot = LossPlot(); plot                      # the cell's last line shows it
    for step, (x, y) in enumerate(loader):
        loss = train_step(x, y)
        plot.log(loss=loss, step=step)           # tensors are fine: not read on the GPU here

The helpers add counting and a final :meth:`LossPlot.flush` (the last points drawn and the
saved notebook's static image refreshed), also when the loop ends by ``break`` or an error.
They print nothing and clear nothing, so a tqdm bar in the same cell keeps working::

    for step, batch in track(tqdm(loader), plot):
        plot.log(loss=train_step(batch), step=step)

    with live(plot) as plot:                      # or live(display=True) to make and show one
        ...

Both take ``watch=model`` (or ``watch=(model, optimizer)``, which adds the update ratio): the
model is watched (:meth:`LossPlot.watch`, every 10th step) while the loop or block runs, and
unwatched when it ends.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from .._ui import LossPlot
from ._common import resolve_plot

__all__ = ["live", "track"]

T = TypeVar("T")


def _watching(plot: LossPlot, watch: Any, start: int | None = None) -> None:
    """Start ``plot.watch`` for a helper's ``watch=`` argument: a model, or ``(model, optimizer)``."""
    if watch is not None:
        model, optimizer = watch if isinstance(watch, tuple) else (watch, None)
        plot.watch(model, optimizer, start=start)


def track(iterable: Iterable[T], plot: LossPlot, *, start: int | None = None,
          watch: Any = None) -> Iterator[tuple[int, T]]:
    """Yield ``(step, item)`` for each item, then flush ``plot``.

    ``step`` counts from ``start``; by default from one past the largest step ``plot`` already
    holds (0 for a new plot), so a second epoch's loop continues the first one's axis.
    ``watch``: a model (or ``(model, optimizer)``) watched while the loop runs, at the same steps.
    """
    if not isinstance(plot, LossPlot):
        raise TypeError(f"plot must be a LossPlot, got {type(plot).__name__}")
    if start is None:
        last = [h.steps[-1] for h in plot.history.values() if len(h.steps)]
        start = int(max(last)) + 1 if last else 0
    _watching(plot, watch, start)
    try:
        yield from enumerate(iterable, start)
    finally:
        if watch is not None:
            plot.unwatch()
        plot.flush()


@contextmanager
def live(plot: LossPlot | None = None, *, display: bool = False, title: str = "",
         watch: Any = None) -> Iterator[LossPlot]:
    """``plot`` (or a new ``LossPlot``) for the ``with`` block, flushed when the block exits;
    ``watch``: a model (or ``(model, optimizer)``) watched during the block."""
    target = resolve_plot(plot, display=display, title=title)
    _watching(target, watch)
    try:
        yield target
    finally:
        if watch is not None:
            target.unwatch()
        target.flush()
