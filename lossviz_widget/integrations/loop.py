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
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from .._ui import LossPlot
from ._common import resolve_plot

__all__ = ["live", "track"]

T = TypeVar("T")


def track(iterable: Iterable[T], plot: LossPlot, *, start: int | None = None) -> Iterator[tuple[int, T]]:
    """Yield ``(step, item)`` for each item, then flush ``plot``.

    ``step`` counts from ``start``; by default from one past the largest step ``plot`` already
    holds (0 for a new plot), so a second epoch's loop continues the first one's axis.
    """
    if not isinstance(plot, LossPlot):
        raise TypeError(f"plot must be a LossPlot, got {type(plot).__name__}")
    if start is None:
        last = [h.steps[-1] for h in plot.history.values() if len(h.steps)]
        start = int(max(last)) + 1 if last else 0
    try:
        yield from enumerate(iterable, start)
    finally:
        plot.flush()


@contextmanager
def live(plot: LossPlot | None = None, *, display: bool = False, title: str = "") -> Iterator[LossPlot]:
    """``plot`` (or a new ``LossPlot``) for the ``with`` block, flushed when the block exits."""
    target = resolve_plot(plot, display=display, title=title)
    try:
        yield target
    finally:
        target.flush()
