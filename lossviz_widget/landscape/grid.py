"""The landscape data record and the coarse-to-fine order its cells are computed in.

A :class:`Landscape` is plain data: the axis coordinates, the loss at every cell
(``values[row=y, col=x]``, as the reference code's ``Z``), which cells are computed
yet, the optional trajectory, and the settings needed to reproduce it (seeds,
normalization). Computing fills it in place; exporting reads it. Not-yet-computed
cells are NaN *and* ``computed == False``; a loss that came out NaN or ±Inf is kept
as it is with ``computed == True``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["KINDS", "Landscape", "TrajectoryPath", "axis", "fill_order"]

KINDS = ("interpolation", "line", "plane", "trajectory")
STRIDES = (4, 2, 1)  # every 4th cell (both ways), then every 2nd, then all


def axis(span: tuple[float, float], steps: int, name: str) -> np.ndarray:
    """``steps`` evenly spaced coordinates from ``span[0]`` to ``span[1]`` (validated)."""
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)):
        raise TypeError(f"{name} steps must be an int, got {type(steps).__name__}")
    if steps < 1:
        raise ValueError(f"{name} steps must be at least 1, got {steps}: the grid would be empty")
    try:
        lo, hi = (float(v) for v in span)
    except (TypeError, ValueError):
        raise TypeError(f"{name} range must be a (min, max) pair of numbers, got {span!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise ValueError(f"{name} range must be finite with min < max, got ({lo}, {hi})")
    return np.linspace(lo, hi, int(steps))


@dataclass
class TrajectoryPath:
    """Training snapshots projected onto the plane; ``losses`` are each checkpoint's true loss."""

    coords: np.ndarray  # (k, 2)
    steps: np.ndarray  # (k,)
    losses: np.ndarray  # (k,), NaN until computed
    residual: np.ndarray  # (k,), see directions.PCA


@dataclass
class Landscape:
    """A loss landscape: a 1-D curve (``y is None``) or a 2-D surface, filled in place while computing."""

    kind: str
    x: np.ndarray
    y: np.ndarray | None
    x_label: str
    y_label: str = ""
    metric: str = "loss"
    title: str = ""
    info: dict[str, Any] = field(default_factory=dict)
    path: TrajectoryPath | None = None
    values: np.ndarray = field(init=False)
    computed: np.ndarray = field(init=False)
    status: str = "pending"  # then running; ends done, cancelled, interrupted or failed
    error: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        shape = (len(self.x),) if self.y is None else (len(self.y), len(self.x))
        self.values = np.full(shape, np.nan)
        self.computed = np.zeros(shape, dtype=bool)

    @property
    def ndim(self) -> int:
        return self.values.ndim

    @property
    def n_points(self) -> int:
        """Loss evaluations this landscape needs: grid cells plus trajectory checkpoints."""
        return self.values.size + (0 if self.path is None else len(self.path.steps))

    @property
    def cost(self) -> int:
        """Forward passes: points × evaluation batches per point."""
        return self.n_points * int(self.info.get("passes_per_point", 1))

    def cost_text(self) -> str:
        """The cost in words, e.g. ``121 grid points × 2 batches = 242 forward passes``."""
        cells = "×".join(str(n) for n in self.values.shape[::-1])
        parts = f"{self.values.size:,} grid points ({cells})"
        if self.path is not None:
            parts += f" + {len(self.path.steps):,} checkpoints"
        passes = int(self.info.get("passes_per_point", 1))
        unit = "batch" if passes == 1 else "batches"
        return f"{parts} × {passes} {unit} = {self.cost:,} forward passes"

    def __repr__(self) -> str:
        done = int(self.computed.sum())
        return (f"<Landscape {self.kind} {'×'.join(map(str, self.values.shape[::-1]))}: {done}/{self.values.size} "
                f"points, {self.status}>")


def fill_order(shape: tuple[int, ...], strides: tuple[int, ...] = STRIDES) -> np.ndarray:
    """Flat cell indices, coarse to fine: the centre, then every ``strides[0]``-th cell, ... then all.

    Each cell appears once; within a level, row by row. Seen as a picture, the grid
    first shows a coarse version of the whole surface, which then sharpens.
    """
    if any(n < 1 for n in shape):
        raise ValueError(f"an empty grid has nothing to compute: shape {shape}")
    coords = np.indices(shape).reshape(len(shape), -1)
    level = np.full(coords.shape[1], len(strides))
    for rank, stride in reversed(list(enumerate(strides))):
        on = np.all(coords % stride == 0, axis=0)
        level[on] = rank
    centre = np.ravel_multi_index(tuple(n // 2 for n in shape), shape)
    level[centre] = -1
    return np.argsort(level, kind="stable")
