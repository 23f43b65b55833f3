"""Record parameter snapshots during training, within a memory budget, for the trajectory plot.

>>> rec = TrajectoryRecorder(every=10, max_bytes=64 * 2**20)
>>> for step in range(steps):
...     train_step()
...     rec.record(model)          # every call; keeps every 10th, as float32

Snapshots are flat float32 copies (half the memory of float64; the projection is
a picture, not a restart point). When they would exceed ``max_bytes``, every other
snapshot is dropped and ``every`` doubles, so the kept ones stay evenly spaced in
steps and memory stays within the budget however long training runs.

torch is not imported here: a module's parameters are read through tensor methods.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .params import flatten
from .targets import is_torch_module

__all__ = ["TrajectoryRecorder", "snapshot_of"]


def snapshot_of(params: Any) -> np.ndarray:
    """A flat float32 copy of a torch module's parameters, or of a NumPy vector / list of arrays."""
    if is_torch_module(params):
        arrays = [p.detach().to("cpu").float().numpy() for p in params.parameters()]
    elif isinstance(params, np.ndarray):
        arrays = [params]
    elif isinstance(params, (list, tuple)):
        arrays = list(params)
    else:
        raise TypeError(f"record() takes a torch nn.Module, a NumPy array or a list of arrays, "
                        f"got {type(params).__name__}")
    return flatten(arrays).astype(np.float32)


class TrajectoryRecorder:
    """Keeps every ``every``-th recorded state, thinning itself to stay under ``max_bytes``."""

    def __init__(self, every: int = 1, max_bytes: int = 256 * 2**20) -> None:
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a positive int, got {every!r}")
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes <= 0:
            raise ValueError(f"max_bytes must be a positive int, got {max_bytes!r}")
        self.every = every
        self.max_bytes = max_bytes
        self._snaps: list[np.ndarray] = []
        self._steps: list[int] = []
        self._calls = 0

    def record(self, params: Any, step: int | None = None) -> bool:
        """Call once per training step; returns whether this state was kept.

        ``step`` defaults to the number of earlier calls. Raises ``ValueError`` when
        the parameter count changes between calls or one snapshot exceeds the budget.
        """
        call = self._calls
        self._calls += 1
        if call % self.every:
            return False
        snap = snapshot_of(params)
        if self._snaps and snap.size != self._snaps[0].size:
            raise ValueError(f"record(): {snap.size} parameters, but earlier snapshots have {self._snaps[0].size}")
        if snap.nbytes > self.max_bytes:
            raise ValueError(f"one snapshot takes {snap.nbytes:,} bytes, more than max_bytes={self.max_bytes:,}")
        self._snaps.append(snap)
        self._steps.append(call if step is None else int(step))
        while self.nbytes > self.max_bytes:
            self._thin()
        return True

    def _thin(self) -> None:
        """Drop every other snapshot (the ones off the doubled stride) and double ``every``."""
        self.every *= 2
        keep = [i for i in range(len(self._snaps)) if i % 2 == 0]
        self._snaps = [self._snaps[i] for i in keep]
        self._steps = [self._steps[i] for i in keep]

    @property
    def nbytes(self) -> int:
        return sum(s.nbytes for s in self._snaps)

    @property
    def steps(self) -> np.ndarray:
        return np.array(self._steps, dtype=np.int64)

    @property
    def snapshots(self) -> np.ndarray:
        """``(k, d)`` float32, one row per kept snapshot."""
        if not self._snaps:
            return np.empty((0, 0), dtype=np.float32)
        return np.stack(self._snaps)

    def __len__(self) -> int:
        return len(self._snaps)
