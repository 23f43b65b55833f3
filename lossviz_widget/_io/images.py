"""Kernel-side images of a :class:`~lossviz_widget._core.frame.Frame`: PNG, SVG and PDF with matplotlib.

The image is drawn from the same :class:`Frame` the live bqplot view draws, so it
shows the same thing: one panel per metric family in the same order (a grid of
up to two columns; a lone last panel spans the row, as the live view's wrapping
row stretches it), the same colours and dashes (several runs: one colour per run), the
smoothed main line over the faint raw line, dots on sparse lines, a downward triangle at
the top of the panel for each non-finite value, log y and explicit y ranges, and one
shared x axis.

Why matplotlib's object-oriented API and never ``pyplot``: pyplot keeps global
state (current figure, a GUI backend chosen from ``MPLBACKEND``/``DISPLAY``) that
is neither thread-safe nor safe inside a running training cell. A bare
:class:`matplotlib.figure.Figure` saved with ``savefig(format=...)`` uses the
Agg/SVG/PDF canvases directly: it works from any thread, in a plain script and
in CI with no display.

matplotlib is imported inside the functions, so ``import lossviz_widget`` stays
light: nothing here costs anything until an image is actually made.

Every user string (title, metric names) is drawn literally: mathtext and TeX are
turned off per text object, so ``loss_$x$`` stays ``loss_$x$``.

The one piece of global matplotlib state touched: three settings that matplotlib
reads only from ``rcParams`` when saving (``svg.fonttype``, ``svg.hashsalt``,
``pdf.fonttype``) are borrowed for the duration of one ``savefig``, under a lock,
and put back.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import math
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from .._core.frame import Frame, PanelFrame
from .._core.limits import clamp_to_data
from .._core.run_groups import BAND_OPACITY

if TYPE_CHECKING:  # pragma: no cover - annotations only; matplotlib is imported lazily
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.typing import RcKeyType

__all__ = ["IMAGE_FORMATS", "image_bytes", "render_figure"]

#: Formats :func:`image_bytes` can write.
IMAGE_FORMATS = ("png", "svg", "pdf")

# Matching figures.py (the live view).
_RAW_ALPHA = 0.25
_DASHES = {"solid": "-", "dashed": "--", "dotted": ":", "dash_dotted": "-."}  # bqplot line_style -> matplotlib
_GRID_COLOR = "#e8e8e8"
# Paper/slide look, in points (independent of the user's rcParams).
_TEXT_COLOR = "#222222"
_AXIS_COLOR = "#666666"
_TICK_SIZE = 9.0
_LABEL_SIZE = 10.5
_LEGEND_SIZE = 9.0
_LEGEND_ROWS = 10  # a legend with more entries (runs x metrics) is set small, in columns of
_LEGEND_ROWS_MANY = 16  # at most this many rows
_LEGEND_SIZE_MANY = 6.0
_PANEL_TITLE_SIZE = 12.0
_TITLE_SIZE = 14.0
_MAIN_WIDTH = 1.6
_RAW_WIDTH = 1.0
_MARKER_TOP = 0.97  # non-finite markers: this far up the panel (axes coordinates)

# Settings matplotlib only reads from its global rcParams at save time (see _save_rc).
_SAVE_RC: dict[str, dict[RcKeyType, Any]] = {
    "png": {},
    # Text as <text> elements (searchable, selectable, escaped by the SVG writer),
    # and a fixed salt so clip-path/marker ids, hence the bytes, are reproducible.
    "svg": {"svg.fonttype": "none", "svg.hashsalt": "lossviz_widget"},
    # TrueType (Type 42) fonts: what journals ask for, and the text stays selectable.
    "pdf": {"pdf.fonttype": 42},
}
_RC_LOCK = threading.Lock()


def _literal(**kwargs: Any) -> dict[str, Any]:
    """Text properties that show a string as is: no mathtext (``$...$``), no TeX."""
    return {"parse_math": False, "usetex": False, **kwargs}


def _grid_shape(n_panels: int) -> tuple[int, int]:
    ncols = 1 if n_panels <= 1 else 2
    return max(1, math.ceil(n_panels / ncols)), ncols


def _auto_height(frame: Frame, width: float, title: str) -> float:
    """Figure height (inches) for ``width``: panels about 1.6:1 in two columns, wider alone."""
    n = len(frame.panels)
    nrows, ncols = _grid_shape(n)
    if n == 0:
        row = width * 0.3
    elif ncols == 1:
        row = width * 0.45
    else:
        row = width / ncols * 0.62
    return round(nrows * row + (0.45 if title else 0.0), 3)


def _local_tz() -> datetime.tzinfo:
    """The machine's current time zone (the live view's date axis shows browser-local time)."""
    tz = datetime.datetime.now().astimezone().tzinfo
    return tz if tz is not None else datetime.timezone.utc


def _finite_or_nan(y: np.ndarray) -> np.ndarray:
    """Non-finite y as NaN: matplotlib draws NaN as a gap and never autoscales to it."""
    y = np.asarray(y, dtype=np.float64)
    return np.where(np.isfinite(y), y, np.nan)


def _number_label(value: float, pos: object = None) -> str:
    """x tick labels with thousands separators (``50,000``, not ``50000`` or ``5e4``)."""
    value = float(value) + 0.0  # no "-0"
    return f"{value:,.0f}" if value.is_integer() else f"{value:,.6g}"


def _style_axes(ax: Axes) -> None:
    ax.set_facecolor("white")
    ax.set_axisbelow(True)
    ax.grid(True, which="major", color=_GRID_COLOR, linewidth=0.8)
    for side in ("top", "right"):  # like bqplot: only the left and bottom axis lines
        ax.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_color(_AXIS_COLOR)
        ax.spines[side].set_linewidth(0.8)
    ax.tick_params(which="both", colors=_AXIS_COLOR, labelcolor=_TEXT_COLOR, labelsize=_TICK_SIZE)
    ax.margins(x=0.01, y=0.05)


def _draw_panel(ax: Axes, pf: PanelFrame) -> None:
    from matplotlib.lines import Line2D

    if pf.log_y:
        ax.set_yscale("log")
    # Like the live view: every faint raw line first, then the main lines, then the markers.
    for sf in pf.series:
        if sf.raw_x is not None and sf.raw_y is not None and len(sf.raw_x):
            ax.plot(sf.raw_x, _finite_or_nan(sf.raw_y), color=sf.color, alpha=_RAW_ALPHA * sf.opacity,
                    linewidth=_RAW_WIDTH, zorder=2.0, label="_raw")
    _draw_bands(ax, pf)
    for sf in pf.series:
        line, = ax.plot(sf.x, _finite_or_nan(sf.y), color=sf.color, linewidth=_MAIN_WIDTH, zorder=2.1,
                        linestyle=_DASHES[sf.dash], alpha=sf.opacity, marker="o" if sf.dots else None,
                        markersize=3.5, label=sf.label or sf.name)
        line.set_gid(f"series {sf.label or sf.name}")  # the <g id> of the line in SVG output (escaped there)
    handles, labels = ax.get_legend_handles_labels()
    if len(pf.marker_x):
        # x in data, y in axes coordinates: at the top of the panel whatever its y range,
        # and (a blended transform) never stretching the y autoscale. Above the legend
        # (zorder 5), which must never hide one.
        colors = list(pf.marker_colors) or ["#d62728"] * len(pf.marker_x)
        for color in dict.fromkeys(colors):
            sel = np.fromiter((c == color for c in colors), dtype=bool, count=len(colors))
            ax.plot(pf.marker_x[sel], np.full(int(sel.sum()), _MARKER_TOP), transform=ax.get_xaxis_transform(),
                    linestyle="none", marker="v", markersize=7, markerfacecolor=color,
                    markeredgecolor="black", markeredgewidth=0.5, clip_on=False, zorder=6, label="_nonfinite")
        handles.append(Line2D([], [], linestyle="none", marker="v", markersize=7, markerfacecolor="#999999",
                              markeredgecolor="black", markeredgewidth=0.5))
        labels.append("non-finite (NaN/Inf)")
    if len(pf.finding_x):  # diagnostics findings: a diamond on the curve at the step, like the live view
        ax.scatter(pf.finding_x, pf.finding_y, c=list(pf.finding_colors), marker="D", s=36, edgecolors="white",
                   linewidths=0.8, zorder=5.5, label="_finding")
        handles.append(Line2D([], [], linestyle="none", marker="D", markersize=6, markerfacecolor="#999999",
                              markeredgecolor="white"))
        labels.append("diagnostics finding")
    if pf.y_range is not None:
        ax.set_ylim(*pf.y_range)
    else:  # like the live view: never below 0 for data that is not, nor far past the data
        drawn = [a for sf in pf.series for a in (sf.y, sf.raw_y) if a is not None]
        drawn += [a for band in pf.bands for a in (band.y, band.band_lo, band.band_hi)]
        values = np.concatenate([np.asarray(a, dtype=np.float64) for a in drawn]) if drawn else np.empty(0)
        values = values[np.isfinite(values) & ((values > 0) | (not pf.log_y))]
        if len(values):
            ax.set_ylim(*clamp_to_data(*ax.get_ylim(), float(values.min()), float(values.max()), log=pf.log_y))
    title = pf.family + (f"\n{pf.note}" if pf.note else "")
    ax.set_title(title, **_literal(fontsize=_PANEL_TITLE_SIZE, color=_TEXT_COLOR, fontweight="bold"))
    if handles:
        many = len(handles) > _LEGEND_ROWS  # many runs: small type in columns, so the legend fits the panel
        legend = ax.legend(handles, labels, loc="best", fontsize=_LEGEND_SIZE_MANY if many else _LEGEND_SIZE,
                           ncols=math.ceil(len(handles) / _LEGEND_ROWS_MANY) if many else 1, frameon=True,
                           framealpha=0.9, edgecolor="#dddddd", fancybox=False, borderaxespad=0.4,
                           handlelength=1.2 if many else 2.0, columnspacing=0.8, labelspacing=0.2 if many else 0.5)
        for text in legend.get_texts():
            text.set_parse_math(False)
            text.set_usetex(False)
            text.set_color(_TEXT_COLOR)


def _draw_bands(ax: Axes, pf: PanelFrame) -> None:
    """Run groups (see :mod:`lossviz_widget._core.run_groups`) and forecasts (:mod:`lossviz_widget.forecast`):
    the shaded band, then the group's line (a forecast's dashed)."""
    for b in pf.bands:
        ax.fill_between(b.band_x, _finite_or_nan(b.band_lo), _finite_or_nan(b.band_hi), color=b.color,
                        alpha=BAND_OPACITY, linewidth=0, zorder=2.05, label="_band")
        ax.plot(b.x, _finite_or_nan(b.y), color=b.color, linewidth=_MAIN_WIDTH * 1.25, zorder=2.2, label=b.label,
                linestyle=_DASHES[b.dash])


def render_figure(
    frame: Frame, *, title: str = "", width: float = 10.0, height: float | None = None, dpi: float = 150
) -> Figure:
    """Draw ``frame`` (e.g. ``plot.frame()``) as a matplotlib Figure that matches the live view.

    One panel per metric family, in the frame's order, on a grid of up to two
    columns sharing one x axis; each metric's main line (smoothed when smoothing
    is on) over its faint raw line, dots on lines of at most 60 points, downward
    triangles at the top of the panel where values are NaN/Inf, log y and the
    outlier-free y range where the frame says so, dates on x for wall time.
    ``width``/``height`` are inches (``height=None``: from the number of panel
    rows); ``dpi`` sets the pixel size of raster output (``width * dpi`` pixels).

    The Figure is not attached to pyplot (no global state, any thread): save it
    with ``fig.savefig(file, format=...)`` or use :func:`image_bytes`. Its layout
    (constrained layout) is computed once, here, and then kept, so every save of it
    looks the same. A frame with nothing logged gives a figure saying so.
    """
    return _fix_layout(_build_figure(frame, title=title, width=width, height=height, dpi=dpi))


def _build_figure(frame: Frame, *, title: str, width: float, height: float | None, dpi: float) -> Figure:
    """:func:`render_figure` without running the layout (it runs when the figure is drawn)."""
    from matplotlib import dates as mdates
    from matplotlib.figure import Figure
    from matplotlib.layout_engine import ConstrainedLayoutEngine
    from matplotlib.ticker import FuncFormatter

    if not (width > 0 and math.isfinite(width)):
        raise ValueError(f"width must be a positive number of inches, got {width!r}")
    if not (dpi > 0 and math.isfinite(dpi)):
        raise ValueError(f"dpi must be positive, got {dpi!r}")
    if height is None:  # a whole number of pixels, so the PNG is exactly width*dpi x height*dpi
        height = max(1, round(_auto_height(frame, width, title) * dpi)) / dpi
    elif not (height > 0 and math.isfinite(height)):
        raise ValueError(f"height must be a positive number of inches or None, got {height!r}")

    layout = ConstrainedLayoutEngine(w_pad=0.06, h_pad=0.06, hspace=0.04, wspace=0.03)
    fig = Figure(figsize=(width, height), dpi=dpi, facecolor="white", layout=layout)
    if title:
        fig.suptitle(title, **_literal(fontsize=_TITLE_SIZE, fontweight="bold", color=_TEXT_COLOR))
    panels = frame.panels
    if not panels:
        fig.text(0.5, 0.5, "No values logged yet", **_literal(ha="center", va="center", fontsize=_LABEL_SIZE + 2,
                                                             color="#777777"))
        return fig

    nrows, ncols = _grid_shape(len(panels))
    grid = fig.add_gridspec(nrows, ncols)
    tz = _local_tz() if frame.x_is_date else None
    x_label = frame.x_label
    if tz is not None:
        x_label = f"{x_label} ({datetime.datetime.now(tz).tzname() or 'local time'})"
    first: Axes | None = None
    for i, pf in enumerate(panels):
        row, col = divmod(i, ncols)
        alone_last = ncols == 2 and i == len(panels) - 1 and col == 0  # the live row stretches it
        ax = fig.add_subplot(grid[row, :] if alone_last else grid[row, col], sharex=first)
        first = first or ax
        _style_axes(ax)
        _draw_panel(ax, pf)
        if row == nrows - 1:
            ax.set_xlabel(x_label, **_literal(fontsize=_LABEL_SIZE, color=_TEXT_COLOR))
    # Shared x: one ticker for every panel (the first panel's, which the others share).
    xaxis = fig.axes[0].xaxis
    if frame.x_log:  # like the live view: x <= 0 is not in the frame
        fig.axes[0].set_xscale("log")
    elif tz is not None:
        locator = mdates.AutoDateLocator(tz=tz)
        xaxis.set_major_locator(locator)
        xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=tz))
    if not frame.x_log and tz is None:
        xaxis.set_major_formatter(FuncFormatter(_number_label))
    return fig


def _fix_layout(fig: Figure) -> Figure:
    """Run constrained layout now, then keep its result.

    Constrained layout starts from the current positions, so each draw moves things
    by a fraction of a pixel: saving one Figure twice (or as PNG and then PDF) would
    not give the same layout. Laid out once here, every save of this Figure is the same.
    """
    fig.draw_without_rendering()
    fig.set_layout_engine("none")
    return fig


@contextlib.contextmanager
def _save_rc(fmt: str) -> Iterator[None]:
    """Apply the few settings matplotlib reads only from global rcParams, for one savefig.

    Only these keys are touched, under a lock, and each is restored unless someone
    else changed it meanwhile (then theirs is kept).
    """
    import matplotlib as mpl

    overrides = _SAVE_RC[fmt]
    with _RC_LOCK:
        saved = {key: mpl.rcParams[key] for key in overrides}
        try:
            for key, value in overrides.items():
                mpl.rcParams[key] = value
            yield
        finally:
            for key, value in overrides.items():
                if mpl.rcParams[key] == value:
                    mpl.rcParams[key] = saved[key]


def image_bytes(
    frame: Frame,
    fmt: str,
    *,
    title: str = "",
    width: float = 10.0,
    height: float | None = None,
    dpi: float = 150,
) -> bytes:
    """``frame`` as a ``"png"``, ``"svg"`` or ``"pdf"`` file's bytes (see :func:`render_figure`).

    The output is reproducible: identical data gives identical bytes (no
    timestamps in SVG/PDF metadata, fixed SVG ids). SVG text stays text (escaped
    XML, searchable when embedded in a page); PDF fonts are TrueType. Raises
    ``ValueError`` naming ``fmt`` when it is not one of :data:`IMAGE_FORMATS`.
    """
    key = fmt.lower() if isinstance(fmt, str) else fmt
    if key not in IMAGE_FORMATS:
        raise ValueError(f"unsupported image format {fmt!r}: expected one of {', '.join(IMAGE_FORMATS)}")
    # Laid out once, by this savefig: the same layout as render_figure's (same start), one draw fewer.
    fig = _build_figure(frame, title=title, width=width, height=height, dpi=dpi)
    if key == "png":
        metadata: dict[str, Any] = {}
    elif key == "svg":
        metadata = {"Date": None}
    else:
        metadata = {"CreationDate": None, "ModDate": None}
    if title and key != "png":
        metadata["Title"] = title
    buf = io.BytesIO()
    with _save_rc(key):
        fig.savefig(buf, format=key, dpi=dpi, metadata=metadata, facecolor="white", edgecolor="white",
                    transparent=False)
    return buf.getvalue()
