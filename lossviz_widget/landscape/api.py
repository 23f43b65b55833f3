"""One call per kind of landscape: build the target, directions and grid, show the view, compute.

Each function takes either a PyTorch ``nn.Module`` with ``loss_fn(model(x), y)`` and
``data`` (an ``(x, y)`` batch or a loader, read once), or a NumPy parameter vector
(or list of arrays) with ``loss_fn(params)``; ``batched=True`` when the NumPy loss
maps a ``(n, d)`` batch of points to ``n`` losses (vectorized, far faster).

Each returns the :class:`~.view.LandscapeView`. In a notebook it is displayed right
away, so the grid fills in live; then by default the call computes in the foreground
(blocking; a kernel interrupt stops it, the model is restored). ``run_in_background=True``
computes in a thread instead, so the Cancel button works and the notebook stays free.
``compute=False`` only builds it: the cost is shown, ``.run()`` or ``.start()`` computes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .directions import new_seed, pca, random_directions
from .grid import Landscape, TrajectoryPath, axis
from .runner import Runner
from .targets import Target, is_torch_module, make_target
from .trajectory import TrajectoryRecorder
from .view import LandscapeView

__all__ = ["interpolate", "line", "plane", "trajectory"]

_BATCH_CHUNK = 256  # points per call of a batched NumPy loss


def _in_kernel() -> bool:
    from .._ui import in_kernel

    return in_kernel()


def _launch(land: Landscape, target: Target, origin: np.ndarray, dirs: list[np.ndarray], *, batched: bool,
            log_color: bool, run_in_background: bool, compute: bool, display: bool | None,
            snapshots: np.ndarray | None = None) -> LandscapeView:
    land.info["passes_per_point"] = target.passes_per_point
    runner = Runner(land, target, origin, dirs, snapshots=snapshots, chunk=_BATCH_CHUNK if batched else 1)
    view = LandscapeView(runner, log_color=log_color)
    if display is None:
        display = _in_kernel()
    if display:
        view.show()
    if compute:
        view.start() if run_in_background else view.run()
    return view


def _user_direction(target: Target, direction: Any, name: str) -> np.ndarray:
    if hasattr(target, "vector_of") and (is_torch_module(direction) or isinstance(direction, Mapping)):
        return target.vector_of(direction)
    arrays = direction if isinstance(direction, (list, tuple)) else [direction]
    arrays = [a.detach().cpu().numpy() if hasattr(a, "detach") else a for a in arrays]
    return target.layout.vector(arrays, name)


def _steps_pair(steps: int | tuple[int, int]) -> tuple[int, int]:
    """``steps`` of :func:`plane`: one count for both axes or an ``(nx, ny)`` pair (counts checked by ``axis``)."""
    if not isinstance(steps, (tuple, list)):
        return steps, steps
    if len(steps) != 2:
        raise ValueError(f"steps must be an int or an (nx, ny) pair of ints, got {steps!r}")
    return steps[0], steps[1]


def interpolate(start: Any, end: Any, loss_fn: Callable[..., Any], data: Any = None, *,
                alpha_range: tuple[float, float] = (-0.5, 1.5), steps: int = 41, batched: bool = False,
                title: str = "", metric: str = "loss", log_color: bool = False, run_in_background: bool = False,
                compute: bool = True, display: bool | None = None) -> LandscapeView:
    """The loss along θ(α) = (1−α)·start + α·end (Goodfellow et al. 2015), α over ``alpha_range``.

    Torch: ``start``/``end`` are modules or ``state_dict`` copies (e.g. the initial
    weights saved before training, and the trained model); at least one must be a
    module, which is the one evaluated (``end`` if both) and is restored afterwards.
    BatchNorm running statistics (float buffers) are interpolated along with the
    weights, so each α uses statistics that belong between the two; the integer
    ``num_batches_tracked`` is left alone (eval mode does not read it). Beyond [0, 1]
    an extrapolated running variance can turn negative; BatchNorm then gives NaN, which
    is kept and drawn as a gap (a real property of that point, not clamped away).
    NumPy: two parameter vectors (or lists of arrays) of the same shapes.
    """
    alphas = axis(alpha_range, steps, "alpha")
    if is_torch_module(end) or is_torch_module(start):
        model = end if is_torch_module(end) else start
        target = make_target(model, loss_fn, data, buffers=True)
        a, b = target.vector_of(start), target.vector_of(end)  # type: ignore[attr-defined]
    else:
        target = make_target(start, loss_fn, data, batched=batched)
        a = target.center()
        b = _user_direction(target, end, "end")
    land = Landscape("interpolation", alphas, None, x_label="α (0: start, 1: end)", metric=metric,
                     title=title or "linear interpolation", info={"alpha_range": list(alpha_range)})
    return _launch(land, target, a, [b - a], batched=batched, log_color=log_color,
                   run_in_background=run_in_background, compute=compute, display=display)


def _random(target: Target, count: int, seed: int | None, norm: str | None, zero_1d: bool | None,
            orthogonal: bool, directions: Any) -> tuple[list[np.ndarray], dict[str, Any]]:
    center = target.center()
    if directions is not None:
        given = list(directions) if count == 2 else [directions]
        if len(given) != count:
            raise ValueError(f"directions must hold {count} directions, got {len(given)}")
        dirs = [_user_direction(target, d, f"direction {i}") for i, d in enumerate(given)]
        return dirs, {"directions": "given"}
    seed = new_seed() if seed is None else int(seed)
    zero = target.zero_1d_default if zero_1d is None else bool(zero_1d)
    dirs = random_directions(target.layout, center, count, seed, norm=norm, zero_1d=zero, orthogonal=orthogonal)
    return dirs, {"directions": "gaussian", "seed": seed, "norm": norm, "zero_1d": zero, "orthogonal": orthogonal}


def line(model: Any, loss_fn: Callable[..., Any], data: Any = None, *, span: tuple[float, float] = (-1.0, 1.0),
         steps: int = 41, seed: int | None = None, norm: str | None = "filter", zero_1d: bool | None = None,
         direction: Any = None, batched: bool = False, title: str = "", metric: str = "loss",
         log_color: bool = False, run_in_background: bool = False, compute: bool = True,
         display: bool | None = None) -> LandscapeView:
    """The loss along θ* + α·δ for a filter-normalized Gaussian direction δ (Li et al. 2018).

    ``seed`` (recorded in ``landscape.info``; drawn when None) makes δ reproducible;
    ``direction`` gives δ yourself instead (same shapes as the parameters, used as is).
    ``zero_1d`` (default: True for torch models, False for NumPy) zeroes δ on 1-D
    parameters (biases, norms); ``norm``: ``"filter"``, ``"layer"`` or None (raw).
    """
    target = make_target(model, loss_fn, data, batched=batched)
    dirs, info = _random(target, 1, seed, norm, zero_1d, False, direction)
    land = Landscape("line", axis(span, steps, "x"), None, x_label="α (0: θ*)", metric=metric,
                     title=title or "1-D slice", info=info)
    return _launch(land, target, target.center(), dirs, batched=batched, log_color=log_color,
                   run_in_background=run_in_background, compute=compute, display=display)


def plane(model: Any, loss_fn: Callable[..., Any], data: Any = None, *, span: tuple[float, float] = (-1.0, 1.0),
          steps: int | tuple[int, int] = 21, seed: int | None = None, norm: str | None = "filter",
          zero_1d: bool | None = None, orthogonal: bool = False, directions: Any = None, batched: bool = False,
          title: str = "", metric: str = "loss", log_color: bool = False, run_in_background: bool = False,
          compute: bool = True, display: bool | None = None) -> LandscapeView:
    """The loss on θ* + x·δ + y·η for two filter-normalized Gaussian directions (Li et al. 2018).

    ``steps``: points per axis (an int, or ``(nx, ny)``) over ``span`` on both axes;
    the cost is nx·ny forward passes per evaluation batch. ``orthogonal=True`` makes η
    orthogonal to δ (Gram-Schmidt after normalization, keeping η's length). ``directions``:
    a pair (δ, η) given yourself. See :func:`line` for ``seed``, ``norm``, ``zero_1d``.
    """
    nx, ny = _steps_pair(steps)
    target = make_target(model, loss_fn, data, batched=batched)
    dirs, info = _random(target, 2, seed, norm, zero_1d, orthogonal, directions)
    land = Landscape("plane", axis(span, nx, "x"), axis(span, ny, "y"), x_label="δ", y_label="η", metric=metric,
                     title=title or "2-D landscape", info=info)
    return _launch(land, target, target.center(), dirs, batched=batched, log_color=log_color,
                   run_in_background=run_in_background, compute=compute, display=display)


def trajectory(recorder: TrajectoryRecorder, model: Any, loss_fn: Callable[..., Any], data: Any = None, *,
               steps: int | tuple[int, int] = 21, margin: float = 0.25, batched: bool = False, title: str = "",
               metric: str = "loss", log_color: bool = False, run_in_background: bool = False,
               compute: bool = True, display: bool | None = None) -> LandscapeView:
    """The training path on the loss surface around the final point (Li et al. 2018, §7).

    The plane is spanned by the top two PCA directions of the recorded snapshots minus
    the final parameters (``model`` now); axes show each direction's share of the
    variance. The path is drawn where the snapshots *project*, so each checkpoint is
    coloured by its own true loss (evaluated, not read off the surface), and the
    status line reports how far the snapshots lie off the plane (projection residual).
    The grid covers the path plus ``margin`` (a fraction of its extent) on each side.
    """
    if not isinstance(recorder, TrajectoryRecorder):
        raise TypeError(f"recorder must be a TrajectoryRecorder, got {type(recorder).__name__}")
    target = make_target(model, loss_fn, data, batched=batched)
    final = target.center()
    snaps = recorder.snapshots.astype(np.float64)
    if snaps.shape[1:] != final.shape:
        raise ValueError(f"the recorder's snapshots have {snaps.shape[1] if snaps.ndim == 2 else 0} parameters, "
                         f"the model has {final.size}")
    proj = pca(snaps, final)
    nx, ny = _steps_pair(steps)
    spans = []
    for k in range(2):
        lo, hi = min(proj.coords[:, k].min(), 0.0), max(proj.coords[:, k].max(), 0.0)
        pad = margin * (hi - lo) if hi > lo else 1.0
        spans.append((lo - pad, hi + pad))
    ex = proj.explained
    path = TrajectoryPath(coords=proj.coords, steps=recorder.steps, losses=np.full(len(snaps), np.nan),
                          residual=proj.residual)
    land = Landscape("trajectory", axis(spans[0], nx, "x"), axis(spans[1], ny, "y"),
                     x_label=f"PC1 ({ex[0]:.1%} of variance)", y_label=f"PC2 ({ex[1]:.1%} of variance)",
                     metric=metric, title=title or "training trajectory", path=path,
                     info={"directions": "pca", "explained_variance_ratio": ex.tolist(),
                           "max_residual": float(proj.residual.max())})
    return _launch(land, target, final, list(proj.directions), batched=batched, log_color=log_color,
                   run_in_background=run_in_background, compute=compute, display=display, snapshots=snaps)
