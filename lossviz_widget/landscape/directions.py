"""Directions in parameter space: Gaussian with filter normalization, and PCA of a trajectory.

Filter normalization (Li et al. 2018, tomgoldstein/loss-landscape ``net_plotter.py``):
a Gaussian direction δ is rescaled filter by filter so that each filter has the norm
of the same filter of the weights, ``δ[i] ← δ[i] · ‖w[i]‖ / (‖δ[i]‖ + 1e-10)``,
where a filter is a slice along dim 0 (a conv layer's output channel, a linear
layer's output row). Without it, plots of networks with different weight scales
(or scale-invariant layers) are not comparable. 1-D parameters (biases, norm
scales) are zeroed (the reference's ``ignore='biasbn'``), the default for torch
models. A NumPy parameter vector is 1-D as a whole, so for NumPy targets 1-D
arrays are instead rescaled as one filter by default (``zero_1d=False``).
``norm="layer"`` rescales each array as a whole; ``norm=None`` keeps the raw direction.

Directions are drawn from ``numpy.random.default_rng`` seeded per direction from
one recorded seed, so a plot can be redrawn exactly.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .params import Layout

__all__ = ["NORMS", "PCA", "gaussian", "new_seed", "normalize", "orthogonalize", "pca", "random_directions"]

NORMS = ("filter", "layer", None)
_EPS = 1e-10  # as in the reference


def new_seed() -> int:
    """A fresh seed to record when the user gave none."""
    return secrets.randbits(31)


def gaussian(layout: Layout, seed: int, index: int = 0) -> np.ndarray:
    """Standard normal direction number ``index`` for ``seed`` (independent streams per index)."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index,)))
    return rng.standard_normal(layout.size)


def normalize(direction: np.ndarray, weights: np.ndarray, layout: Layout, *, norm: str | None = "filter",
              zero_1d: bool = True) -> np.ndarray:
    """A copy of ``direction`` rescaled to ``weights`` per filter (see the module doc)."""
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    out = np.array(direction, dtype=np.float64, copy=True)
    if norm is None:
        return out
    for d, w, entry in zip(layout.split(out), layout.split(weights), layout.entries):
        if entry.one_d and zero_1d:
            d[...] = 0.0
        elif norm == "layer" or entry.one_d:
            d *= np.linalg.norm(w) / (np.linalg.norm(d) + _EPS)
        else:
            flat_d = d.reshape(d.shape[0], -1)  # a view: one row per filter
            flat_w = w.reshape(w.shape[0], -1)
            flat_d *= (np.linalg.norm(flat_w, axis=1) / (np.linalg.norm(flat_d, axis=1) + _EPS))[:, None]
    return out


def orthogonalize(second: np.ndarray, first: np.ndarray) -> np.ndarray:
    """``second`` minus its component along ``first``, rescaled to its former length (Gram-Schmidt)."""
    n1 = float(first @ first)
    if n1 == 0.0:
        return second.copy()
    out = second - (float(second @ first) / n1) * first
    n_out = np.linalg.norm(out)
    return out * (np.linalg.norm(second) / n_out) if n_out > 0 else out


def random_directions(layout: Layout, center: np.ndarray, count: int, seed: int, *, norm: str | None = "filter",
                      zero_1d: bool = True, orthogonal: bool = False) -> list[np.ndarray]:
    """``count`` (1 or 2) filter-normalized Gaussian directions around ``center``."""
    dirs = [normalize(gaussian(layout, seed, i), center, layout, norm=norm, zero_1d=zero_1d) for i in range(count)]
    if orthogonal and count == 2:
        dirs[1] = orthogonalize(dirs[1], dirs[0])
    if not all(np.any(d) for d in dirs):
        raise ValueError("a direction is all zero (every parameter is 1-D with zero_1d=True, or the weights "
                         "are zero): pass zero_1d=False or norm=None")
    return dirs


@dataclass(frozen=True)
class PCA:
    """Top principal directions of a trajectory and where each snapshot projects.

    ``directions``: unit vectors (rows); ``explained``: explained variance ratio of each;
    ``coords``: ``(k, 2)`` coordinates of each snapshot relative to the final point
    (which sits at the origin); ``residual``: per snapshot, the norm of the part of
    θ_k − θ_final outside the plane divided by the norm of θ_k − θ_final (0: exactly
    in the plane; points with θ_k = θ_final count as 0).
    """

    directions: np.ndarray
    explained: np.ndarray
    coords: np.ndarray
    residual: np.ndarray


def pca(snapshots: Sequence[np.ndarray] | np.ndarray, final: np.ndarray, n: int = 2) -> PCA:
    """PCA of ``snapshots − final`` (rows), as tomgoldstein/loss-landscape ``projection.py``.

    The components and explained variance ratios are those of scikit-learn's
    ``PCA(n)`` (which centres the rows by their mean); the coordinates are the plain
    projections of θ_k − θ_final onto the unit components, so θ_final is at (0, 0).
    """
    rows = np.asarray(snapshots, dtype=np.float64) - np.asarray(final, dtype=np.float64)[None, :]
    if rows.ndim != 2 or len(rows) < n + 1:
        raise ValueError(f"a trajectory needs at least {n + 1} snapshots for {n} PCA directions, got {len(rows)}")
    centred = rows - rows.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    var = s**2
    if var.sum() == 0:
        raise ValueError("the snapshots are all identical: the trajectory has no direction")
    comps = vt[:n]
    coords = rows @ comps.T
    lengths = np.linalg.norm(rows, axis=1)
    outside = np.linalg.norm(rows - coords @ comps, axis=1)
    residual = np.divide(outside, lengths, out=np.zeros_like(lengths), where=lengths > 0)
    return PCA(directions=comps, explained=var[:n] / var.sum(), coords=coords, residual=residual)
