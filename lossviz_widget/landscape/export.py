"""Landscape files: an image (``.png``/``.svg``, matplotlib, kernel side) or the grid data
(``.npz``/``.json``), written atomically like :meth:`LossPlot.export`.

The image draws what the live view draws (:mod:`.picture`: same gaps, same log10
colour option, same contour lines, the path coloured by true checkpoint loss) with
matplotlib's object-oriented API and the loss curves' image style (:mod:`..images`);
every label is drawn literally and SVG text stays escaped text.

Data files keep everything needed to redraw or reproduce the plot: axes, values
(NaN/±Inf kept; JSON spells them "NaN"/"Infinity"/"-Infinity" as ``formats.json_float``),
which cells were computed, the trajectory, and the settings (seeds, normalization).
Nothing is pickled: ``.npz`` holds plain arrays plus one JSON string, and is read
with ``allow_pickle=False``. :func:`load` reads both back to an equal :class:`~.grid.Landscape`.
"""

from __future__ import annotations

import io
import json
import math
import os
from pathlib import Path
from typing import IO, Any

import numpy as np

from .._io.data_files import float_from_json, json_float
from .._io.files import atomic_write, check_suffix
from .._io.images import _literal, _save_rc, _style_axes
from .grid import Landscape, TrajectoryPath
from .picture import contour_levels, contour_lines, shown_values

__all__ = ["LANDSCAPE_SUFFIXES", "image_bytes", "load", "render_figure", "save"]

LANDSCAPE_SUFFIXES = (".png", ".svg", ".npz", ".json")
FORMAT = "lossviz_widget.landscape"
VERSION = 1
_FIELDS = ("kind", "x_label", "y_label", "metric", "title", "status", "error")


def _jsonable(value: Any) -> Any:
    """``value`` with every float made strict JSON (NaN/Inf as strings), containers walked."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in (value.tolist() if isinstance(value, np.ndarray) else value)]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return json_float(float(value))
    if value is None or isinstance(value, str):
        return value
    return str(value)


def _floats(value: Any) -> np.ndarray:
    """A nested JSON list of numbers/"NaN" strings back to a float64 array."""
    if isinstance(value, list):
        return np.array([_floats(v) for v in value], dtype=np.float64) if value else np.empty(0)
    return np.asarray(float_from_json(value), dtype=np.float64)


def _document(land: Landscape) -> dict[str, Any]:
    doc: dict[str, Any] = {"format": FORMAT, "version": VERSION, **{k: getattr(land, k) for k in _FIELDS}}
    doc.update(x=land.x, y=land.y, values=land.values, computed=land.computed, info=land.info)
    if land.path is not None:
        p = land.path
        doc["path"] = {"coords": p.coords, "steps": p.steps, "losses": p.losses, "residual": p.residual}
    return _jsonable(doc)


def _from_document(doc: dict[str, Any], arrays: dict[str, np.ndarray] | None = None) -> Landscape:
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        found = doc.get("format") if isinstance(doc, dict) else None
        raise ValueError(f"not a lossviz_widget landscape file (format {found!r})")
    get = (lambda k: arrays[k]) if arrays is not None else (lambda k: _floats(doc[k]))
    y = None if doc.get("y") is None and (arrays is None or "y" not in arrays) else get("y")
    land = Landscape(kind=doc["kind"], x=get("x"), y=y, x_label=doc["x_label"], y_label=doc["y_label"],
                     metric=doc["metric"], title=doc["title"], info=doc.get("info", {}))
    land.values[...] = get("values")
    land.computed[...] = arrays["computed"] if arrays is not None else np.array(doc["computed"], dtype=bool)
    land.status, land.error = doc["status"], doc["error"]
    if "path" in doc or (arrays is not None and "path_coords" in arrays):
        if arrays is not None:
            p = {k: arrays[f"path_{k}"] for k in ("coords", "steps", "losses", "residual")}
        else:
            p = {k: _floats(doc["path"][k]) for k in ("coords", "steps", "losses", "residual")}
        land.path = TrajectoryPath(coords=p["coords"].reshape(-1, 2), steps=p["steps"].astype(np.int64),
                                   losses=p["losses"], residual=p["residual"])
    return land


def _write_npz(land: Landscape, f: IO[bytes]) -> None:
    doc = _document(land)
    meta = {k: v for k, v in doc.items() if k not in ("x", "y", "values", "computed", "path")}
    arrays = {"x": land.x, "values": land.values, "computed": land.computed, "meta": np.array(json.dumps(meta))}
    if land.y is not None:
        arrays["y"] = land.y
    if land.path is not None:
        p = land.path
        arrays.update(path_coords=p.coords, path_steps=p.steps, path_losses=p.losses, path_residual=p.residual)
    np.savez(f, **arrays)  # type: ignore[arg-type]  # mypy matches **arrays against savez's allow_pickle: bool


def _read_npz(path: Path) -> Landscape:
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    if "meta" not in arrays:
        raise ValueError(f"{str(path)!r} is not a lossviz_widget landscape file (no meta)")
    return _from_document(json.loads(str(arrays.pop("meta"))), arrays)


def render_figure(land: Landscape, *, log_color: bool = False, width: float = 6.4, height: float | None = None,
                  dpi: float = 150):
    """The landscape as a matplotlib Figure (not attached to pyplot; any thread)."""
    from matplotlib.figure import Figure

    if not (width > 0 and math.isfinite(width)) or not (dpi > 0 and math.isfinite(dpi)):
        raise ValueError(f"width and dpi must be positive numbers, got width={width!r}, dpi={dpi!r}")
    height = height if height is not None else width * (0.85 if land.ndim == 2 else 0.6)
    fig = Figure(figsize=(width, height), dpi=dpi, facecolor="white", layout="constrained")
    ax = fig.add_subplot()
    _style_axes(ax)
    label = f"log10 {land.metric}" if log_color else land.metric
    if land.y is None:  # a 1-D landscape
        y = np.where(land.computed, shown_values(land.values, False), np.nan)
        if log_color:
            ax.set_yscale("log")
        ax.plot(land.x, y, color="#1f77b4", linewidth=1.6, marker="o", markersize=3)
        ax.set_ylabel(land.metric, **_literal())
    else:
        field = np.where(land.computed, shown_values(land.values, log_color), np.nan)
        finite = field[np.isfinite(field)]
        vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        mesh = ax.pcolormesh(land.x, land.y, np.ma.masked_invalid(field), cmap="viridis", shading="nearest",
                             vmin=vmin, vmax=vmax)
        xs, ys = contour_lines(land.x, land.y, field, contour_levels(field))
        ax.plot(xs, ys, color="white", linewidth=0.8, alpha=0.8)
        ax.plot([0.0], [0.0], marker="+", color="white", markersize=10, markeredgewidth=2)
        if land.path is not None:
            c = land.path.coords
            ax.plot(c[:, 0], c[:, 1], color="black", linewidth=1.2)
            ax.scatter(c[:, 0], c[:, 1], c=shown_values(land.path.losses, log_color), cmap="viridis", vmin=vmin,
                       vmax=vmax, edgecolors="black", linewidths=0.6, s=22, zorder=3)
        bar = fig.colorbar(mesh, ax=ax)
        bar.set_label(label, **_literal())
        ax.set_ylabel(land.y_label, **_literal())
    ax.set_xlabel(land.x_label, **_literal())
    ax.set_title(land.title or land.kind, **_literal(fontweight="bold"))
    return fig


def image_bytes(land: Landscape, fmt: str, **kwargs: Any) -> bytes:
    """The landscape as ``"png"`` or ``"svg"`` bytes (reproducible: no dates, fixed SVG ids)."""
    if fmt not in ("png", "svg"):
        raise ValueError(f"unsupported image format {fmt!r}: expected png or svg")
    fig = render_figure(land, **kwargs)
    buf = io.BytesIO()
    with _save_rc(fmt):
        fig.savefig(buf, format=fmt, metadata={"Date": None} if fmt == "svg" else {}, facecolor="white")
    return buf.getvalue()


def save(land: Landscape, path: str | os.PathLike[str], *, log_color: bool = False, **image_kwargs: Any) -> Path:
    """Write ``land`` to ``path``; the suffix picks the format (see the module doc). Returns the path."""
    if not isinstance(land, Landscape):
        raise TypeError(f"save() needs a Landscape, got {type(land).__name__}")
    p, suffix = check_suffix(path, LANDSCAPE_SUFFIXES, "export a landscape to")
    if suffix in (".png", ".svg"):
        data = image_bytes(land, suffix[1:], log_color=log_color, **image_kwargs)
        return atomic_write(p, lambda f: f.write(data))
    if image_kwargs:
        raise TypeError(f"{', '.join(image_kwargs)}: only for image files (.png, .svg)")
    if suffix == ".npz":
        return atomic_write(p, lambda f: _write_npz(land, f))
    text = json.dumps(_document(land), allow_nan=False, indent=1)
    return atomic_write(p, lambda f: f.write(text.encode("utf-8")))


def load(path: str | os.PathLike[str]) -> Landscape:
    """Read a landscape written by :func:`save` as ``.npz`` or ``.json``."""
    p, suffix = check_suffix(path, (".npz", ".json"), "load a landscape from")
    if suffix == ".npz":
        return _read_npz(p)
    return _from_document(json.loads(p.read_text(encoding="utf-8")))
