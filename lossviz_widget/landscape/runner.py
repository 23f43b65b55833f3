"""Fill a :class:`~.grid.Landscape`: in the foreground, or in a background thread that can be cancelled.

Every point is θ = origin + x·δ (+ y·η), built from scratch for that point (never
by stepping from the previous one, so nothing drifts), and evaluated inside one
target session (which restores the model afterwards, whatever happens). Trajectory
checkpoints are evaluated first (their markers then show early), then the grid
cells in :func:`~.grid.fill_order`.

Cancelling (:meth:`Runner.cancel`, the widget's Cancel button) stops after the
point being evaluated. A blocking notebook cell does not receive button clicks
until it ends, so to cancel from the widget, compute in the background
(:meth:`Runner.start`). In the foreground, interrupting the kernel (a
``KeyboardInterrupt``) stops it too: the model is restored, the points computed
so far are kept, and the interrupt is re-raised.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

import numpy as np

from .grid import Landscape, fill_order
from .targets import Target

__all__ = ["Runner"]

Listener = Callable[[Landscape], None]


class Runner:
    """Computes ``landscape`` for ``target`` along ``directions`` from ``origin``.

    ``snapshots``: the trajectory checkpoints' full parameter vectors (rows), whose
    true losses fill ``landscape.path.losses``. ``listeners`` are called (from the
    computing thread) after every chunk of points and once at the end.
    """

    def __init__(self, landscape: Landscape, target: Target, origin: np.ndarray, directions: Sequence[np.ndarray],
                 *, snapshots: np.ndarray | None = None, chunk: int = 1) -> None:
        if len(directions) != landscape.ndim:
            raise ValueError(f"a {landscape.ndim}-D landscape needs {landscape.ndim} directions, got {len(directions)}")
        self.landscape = landscape
        self.target = target
        self._origin = np.asarray(origin, dtype=np.float64)
        self._dirs = np.stack([np.asarray(d, dtype=np.float64) for d in directions])
        self._snapshots = snapshots
        self._chunk = max(1, int(chunk))
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self.listeners: list[Listener] = []
        self.done = 0
        self.started_at: float | None = None
        self.finished_at: float | None = None

    # -- progress -------------------------------------------------------------------------

    @property
    def total(self) -> int:
        return self.landscape.n_points

    def eta(self) -> float | None:
        """Seconds left at the rate so far (None before the first point)."""
        if self.started_at is None or self.done == 0:
            return None
        if self.finished_at is not None:
            return 0.0
        rate = (time.perf_counter() - self.started_at) / self.done
        return rate * (self.total - self.done)

    @property
    def running(self) -> bool:
        return self.landscape.status == "running"

    # -- control ----------------------------------------------------------------------------

    def cancel(self) -> None:
        """Stop after the point being evaluated; what is computed stays."""
        self._cancel.set()

    def run(self) -> Landscape:
        """Compute here and now (blocking); re-raises the loss's error or a KeyboardInterrupt."""
        self._claim()
        self._work()
        if self._error is not None:
            raise self._error
        return self.landscape

    def start(self) -> threading.Thread:
        """Compute in a daemon thread; the widget's Cancel button works meanwhile.

        The thread sets the model's weights point by point: do not use or train the
        model until :meth:`wait` returns (it is restored exactly then).
        """
        self._claim()
        self._thread = threading.Thread(target=self._work, name="lossviz-landscape", daemon=True)
        self._thread.start()
        return self._thread

    def wait(self, timeout: float | None = None) -> Landscape:
        """Wait for a background run; re-raises its error. ``TimeoutError`` if still running."""
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise TimeoutError(f"the landscape is still computing after {timeout} s")
        if self._error is not None:
            raise self._error
        return self.landscape

    def _claim(self) -> None:
        if self.landscape.status != "pending":
            raise RuntimeError(f"this landscape was already computed (status {self.landscape.status!r})")
        self.landscape.status = "running"

    # -- the work -----------------------------------------------------------------------------

    def _notify(self) -> None:
        for listener in list(self.listeners):
            listener(self.landscape)

    def _grid_rows(self, flat: np.ndarray) -> np.ndarray:
        land = self.landscape
        idx = np.unravel_index(flat, land.values.shape)
        # a 1-D landscape has no y (land.ndim == 1)
        coefs = land.x[idx[0]][:, None] if land.y is None else np.stack([land.x[idx[1]], land.y[idx[0]]], axis=1)
        return self._origin[None, :] + coefs @ self._dirs

    def _work(self) -> None:
        land = self.landscape
        self.started_at = time.perf_counter()
        try:
            with self.target.session() as evaluate:
                path = land.path
                if path is not None and self._snapshots is not None:
                    for i in range(len(path.steps)):
                        if self._cancel.is_set():
                            break
                        path.losses[i] = evaluate(np.asarray(self._snapshots[i:i + 1], dtype=np.float64))[0]
                        self.done += 1
                        self._notify()
                order = fill_order(land.values.shape)
                for start in range(0, len(order), self._chunk):
                    if self._cancel.is_set():
                        break
                    flat = order[start:start + self._chunk]
                    losses = evaluate(self._grid_rows(flat))
                    land.values.flat[flat] = losses
                    land.computed.flat[flat] = True
                    self.done += len(flat)
                    self._notify()
            land.status = "cancelled" if self._cancel.is_set() and self.done < self.total else "done"
        except KeyboardInterrupt as exc:
            land.status, land.error, self._error = "interrupted", "interrupted (KeyboardInterrupt)", exc
        except Exception as exc:  # the user's loss or model failed: shown in the widget, re-raised by run/wait
            land.status, land.error, self._error = "failed", f"{type(exc).__name__}: {exc}", exc
        finally:
            self.finished_at = time.perf_counter()
            self._notify()
