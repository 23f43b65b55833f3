"""Parameter layouts: many named arrays of any shape as one flat float64 vector, and back.

Every landscape computation works on flat vectors: θ* (the centre), directions and
grid points are NumPy float64 arrays of length ``layout.size``. A :class:`Layout`
remembers how that vector splits into the model's named arrays, which is what
filter normalization (per array, per filter) and setting a model's weights need.
Float64 keeps θ* + x·δ + y·η exact enough that rebuilding every grid point from θ*
never drifts; values are cast to each parameter's own dtype only when set.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Entry", "Layout", "flatten", "layout_of_arrays"]


@dataclass(frozen=True)
class Entry:
    """One named array of the parameter vector; ``one_d``: a bias or norm (``ndim <= 1``)."""

    name: str
    shape: tuple[int, ...]
    start: int

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def stop(self) -> int:
        return self.start + self.size

    @property
    def one_d(self) -> bool:
        return len(self.shape) <= 1


@dataclass(frozen=True)
class Layout:
    """The named arrays, in order, that a flat parameter vector is made of."""

    entries: tuple[Entry, ...]

    @classmethod
    def from_shapes(cls, named_shapes: Sequence[tuple[str, tuple[int, ...]]]) -> Layout:
        entries, start = [], 0
        for name, shape in named_shapes:
            entry = Entry(str(name), tuple(int(s) for s in shape), start)
            entries.append(entry)
            start = entry.stop
        return cls(tuple(entries))

    @property
    def size(self) -> int:
        return self.entries[-1].stop if self.entries else 0

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(e.name for e in self.entries)

    def split(self, vector: np.ndarray) -> list[np.ndarray]:
        """Views of ``vector`` (length ``size``) shaped like each entry."""
        return [vector[e.start:e.stop].reshape(e.shape) for e in self.entries]

    def split_batch(self, rows: np.ndarray) -> list[np.ndarray]:
        """Views of ``rows`` (shape ``(n, size)``) shaped ``(n, *entry.shape)``."""
        return [rows[:, e.start:e.stop].reshape((rows.shape[0], *e.shape)) for e in self.entries]

    def vector(self, arrays: Sequence[object], what: str) -> np.ndarray:
        """``arrays`` (one per entry, matching shapes) as a flat float64 vector.

        Raises ``ValueError`` naming ``what`` and the first entry whose shape differs.
        """
        arrays = list(arrays)
        if len(arrays) != len(self.entries):
            raise ValueError(f"{what} has {len(arrays)} arrays, expected {len(self.entries)} ({', '.join(self.names)})")
        out = np.empty(self.size, dtype=np.float64)
        for entry, array in zip(self.entries, arrays):
            a = np.asarray(array, dtype=np.float64)
            if a.shape != entry.shape:
                raise ValueError(f"{what}: {entry.name!r} has shape {a.shape}, expected {entry.shape}")
            out[entry.start:entry.stop] = a.ravel()
        return out


def layout_of_arrays(params: object, what: str = "params") -> tuple[Layout, np.ndarray, bool]:
    """A NumPy parameter vector or list of arrays as ``(layout, flat float64 copy, is_list)``."""
    if isinstance(params, np.ndarray):
        arrays, is_list = [params], False
    elif isinstance(params, (list, tuple)):
        arrays, is_list = list(params), True
    else:
        raise TypeError(f"{what} must be a NumPy array or a list of arrays, got {type(params).__name__}")
    try:
        arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what} must hold numbers: {exc}") from None
    if not is_list and arrays[0].ndim != 1:
        raise ValueError(f"{what} must be a 1-D parameter vector or a list of arrays, got shape {arrays[0].shape}")
    layout = Layout.from_shapes([(f"{i}" if is_list else "theta", a.shape) for i, a in enumerate(arrays)])
    if layout.size == 0:
        raise ValueError(f"{what} is empty: there is nothing to vary")
    return layout, flatten(arrays), is_list


def flatten(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """Arrays concatenated into one flat float64 vector (a copy)."""
    if not arrays:
        return np.empty(0, dtype=np.float64)
    return np.concatenate([np.asarray(a, dtype=np.float64).ravel() for a in arrays])
