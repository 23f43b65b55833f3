"""Kernel-side images (``lossviz_widget._io.images``): real matplotlib output, decoded and inspected.

PNGs are decoded with Pillow and checked pixel by pixel (size, not blank, one
axes frame per panel where the Figure says it is, the frame's series colours,
the non-finite markers); SVG is parsed as XML; PDF is checked for its single page.
Frames come from the public API (``LossPlot.log`` + ``frame()``) on a
50,000-step run with NaN/Inf (tests/export_data.py).
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import textwrap
import threading
import xml.etree.ElementTree as ET
from pathlib import Path

import matplotlib as mpl
import numpy as np
import pytest
from export_data import (
    FAMILIES,
    METRICS,
    N_STEPS,
    NAN_STEPS,
    NEGINF_STEP,
    POSINF_STEP,
    SPIKE,
    frame_of,
    make_run_plot,
    small_plot,
)
from matplotlib import dates as mdates
from PIL import Image

from lossviz_widget import LossPlot, tensorboard_ema
from lossviz_widget._io.images import IMAGE_FORMATS, image_bytes, render_figure

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "report"
SVG_NS = "{http://www.w3.org/2000/svg}"


# -- fixtures and helpers -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def run_plot():
    plot = make_run_plot()
    yield plot
    plot.close()


@pytest.fixture(scope="module")
def frame(run_plot):
    return frame_of(run_plot)


@pytest.fixture(scope="module")
def default_png(frame):
    png = image_bytes(frame, "png", title="resnet18")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "export.png").write_bytes(png)
    return png


def decode(png: bytes) -> np.ndarray:
    img = Image.open(io.BytesIO(png))
    assert img.format == "PNG"
    return np.asarray(img.convert("RGB")).astype(np.int32)


def colour_mask(pixels: np.ndarray, hex_colour: str, tol: int = 6) -> np.ndarray:
    rgb = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)], dtype=np.int32)
    return (np.abs(pixels - rgb) <= tol).all(axis=-1)


def fig_png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi)
    return buf.getvalue()


def axes_pixel_boxes(fig) -> list[tuple[float, float, float, float]]:
    """(left, top, right, bottom) of each axes in PNG pixel coordinates (origin top-left)."""
    fig.draw_without_rendering()
    height = fig.bbox.height
    return [(b.x0, height - b.y1, b.x1, height - b.y0) for b in (ax.get_window_extent() for ax in fig.axes)]


def vertical_runs(mask: np.ndarray, min_len: int) -> list[tuple[int, int, int]]:
    """(x, y_start, y_end) of every vertical run of True at least ``min_len`` long."""
    runs = []
    for x in np.flatnonzero(mask.sum(axis=0) >= min_len):
        col = np.concatenate([[False], mask[:, x], [False]]).astype(np.int8)
        edges = np.flatnonzero(np.diff(col))
        for start, end in zip(edges[::2], edges[1::2]):
            if end - start >= min_len:
                runs.append((int(x), int(start), int(end)))
    return runs


def series_colours(frame) -> dict[str, str]:
    return {sf.name: sf.color for pf in frame.panels for sf in pf.series}


# -- import and environment ---------------------------------------------------------------------

HEADLESS_SCRIPT = textwrap.dedent(
    """
    import io, json, os, sys, threading
    import lossviz_widget
    import lossviz_widget._io.images, lossviz_widget._io.report
    after_import = sorted(m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib."))
    from lossviz_widget import LossPlot, tensorboard_ema
    from lossviz_widget._io.images import image_bytes
    from PIL import Image
    plot = LossPlot(title="headless")
    for i in range(200):
        plot.log(loss=1.0 / (i + 1), step=i)
    png = image_bytes(plot.frame(), "png", width=4, height=3, dpi=50)
    svg = image_bytes(plot.frame(), "svg")
    print(json.dumps({
        "after_import": after_import,
        "pyplot": "matplotlib.pyplot" in sys.modules,
        "gui": sorted(m for m in ("tkinter", "PyQt5", "PyQt6", "PySide6", "gi", "wx") if m in sys.modules),
        "size": Image.open(io.BytesIO(png)).size,
        "svg_ok": svg.lstrip().startswith(b"<?xml"),
        "env": [k for k in ("MPLBACKEND", "DISPLAY", "WAYLAND_DISPLAY") if k in os.environ],
        "threads": sorted(t.name for t in threading.enumerate()),
    }))
    plot.close()
    """
)


@pytest.fixture(scope="module")
def headless_run():
    """One plain-Python subprocess with no MPLBACKEND and no display."""
    env = {k: v for k, v in os.environ.items() if k not in ("MPLBACKEND", "DISPLAY", "WAYLAND_DISPLAY")}
    proc = subprocess.run(
        [sys.executable, "-c", HEADLESS_SCRIPT], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_importing_the_package_does_not_import_matplotlib(headless_run):
    assert headless_run["after_import"] == []


def test_renders_in_a_plain_script_without_display_or_backend(headless_run):
    assert headless_run["env"] == []
    assert headless_run["size"] == [200, 150]
    assert headless_run["svg_ok"]
    assert not headless_run["pyplot"], "pyplot was imported: global state"
    assert headless_run["gui"] == []
    assert headless_run["threads"] == ["MainThread"]


# -- PNG ----------------------------------------------------------------------------------------


def test_png_size_is_width_times_dpi(frame, default_png):
    fig = render_figure(frame, title="resnet18")
    w_in, h_in = fig.get_size_inches()
    assert w_in == 10.0 and 4.0 < h_in < 10.0  # height from the panel rows
    assert Image.open(io.BytesIO(default_png)).size == (1500, round(h_in * 150))
    png = image_bytes(frame, "png", width=6, height=4, dpi=100)
    assert Image.open(io.BytesIO(png)).size == (600, 400)


def test_height_follows_panel_rows():
    metrics = {"loss": [1, 0.5, 0.2], "acc": [0.1, 0.5, 0.7], "lr": [1e-3, 1e-3, 1e-4]}
    figs = []
    for n in (1, 2, 3):
        plot = small_plot(dict(list(metrics.items())[:n]))
        try:
            figs.append(render_figure(plot.frame()))
        finally:
            plot.close()
    assert [len(f.axes) for f in figs] == [1, 2, 3]
    heights = [f.get_size_inches()[1] for f in figs]
    assert heights[1] < heights[0]  # one row either way; two columns make it lower
    assert heights[2] == pytest.approx(2 * heights[1], abs=0.01)  # two rows


def test_png_is_not_blank_and_shows_every_series_colour(frame, default_png):
    px = decode(default_png)
    white = (px >= 250).all(axis=-1)
    assert 0.03 < 1 - white.mean() < 0.6
    packed = (px[..., 0] << 16) | (px[..., 1] << 8) | px[..., 2]
    assert len(np.unique(packed)) > 200  # antialiased lines, text, fills
    colours = series_colours(frame)
    assert set(colours) == set(METRICS)
    assert len(set(colours.values())) == len(METRICS)
    for name, colour in colours.items():
        assert colour_mask(px, colour).sum() > 100, f"{name}'s colour {colour} is not in the image"


def test_one_panel_per_family_in_order_on_a_two_column_grid(frame, default_png):
    fig = render_figure(frame, title="resnet18")
    assert [pf.family for pf in frame.panels] == FAMILIES
    assert len(fig.axes) == len(FAMILIES)
    assert [ax.get_title() for ax in fig.axes] == FAMILIES
    shared = fig.axes[0].get_shared_x_axes()
    assert all(shared.joined(fig.axes[0], ax) for ax in fig.axes)  # one x axis, like the live view
    for ax, pf in zip(fig.axes, frame.panels):
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert legend[: len(pf.series)] == [sf.name for sf in pf.series]
    # Pixels: a left axis line (spine) exactly where each axes is: 2 columns, then the
    # lone third panel spanning the row (the live view's flex row stretches it).
    boxes = axes_pixel_boxes(fig)
    (_l0, t0, r0, b0), (l1, t1, r1, _b1), (_l2, t2, r2, _b2) = boxes
    assert abs(t0 - t1) < 1 and r0 < l1 and t2 > b0 and r2 == pytest.approx(r1, abs=1)
    px = decode(default_png)
    spine_grey = (np.ptp(px, axis=-1) <= 3) & (px.max(axis=-1) < 200)  # antialiased #666666, not the grid
    runs = vertical_runs(spine_grey, min_len=150)
    for left, top, _right, bottom in boxes:
        hits = [r for r in runs if abs(r[0] - left) <= 2 and r[1] <= top + 4 and r[2] >= bottom - 4]
        assert hits, f"no axis line at x={left:.0f} from y={top:.0f} to {bottom:.0f}: {runs}"
    clusters: list[tuple[int, int]] = []  # distinct long vertical axis lines (x, top)
    for x, start, _ in runs:
        if not any(abs(x - cx) <= 3 and abs(start - cy) <= 10 for cx, cy in clusters):
            clusters.append((x, start))
    assert len(clusters) == len(FAMILIES), clusters


def test_main_line_over_faint_raw_line_and_dots_on_sparse_lines(frame):
    fig = render_figure(frame)
    loss_ax = fig.axes[0]
    pf = frame.panels[0]
    by_label: dict[str, list] = {}
    for line in loss_ax.get_lines():
        by_label.setdefault(line.get_label(), []).append(line)
    (main,) = by_label["loss"]
    (raw,) = by_label["_raw"]  # loss only: val_loss (50 points) is sparse, drawn raw (see _core.sparse)
    assert raw.get_alpha() == 0.25 and raw.get_zorder() < main.get_zorder()
    assert main.get_color() == pf.series[0].color and main.get_marker() in ("None", None, "")
    np.testing.assert_array_equal(main.get_xdata(), pf.series[0].x)
    (val,) = by_label["val_loss"]
    assert len(val.get_xdata()) == N_STEPS // 1000 and val.get_marker() == "o"  # a dot on each measured value


def test_nonfinite_values_get_triangle_markers_at_the_top(frame):
    fig = render_figure(frame)
    ax = fig.axes[0]
    pf = frame.panels[0]
    markers = [ln for ln in ax.get_lines() if ln.get_label() == "_nonfinite"]
    assert markers and all(m.get_marker() == "v" for m in markers)
    xs = np.concatenate([m.get_xdata() for m in markers])
    assert sorted(xs.tolist()) == sorted(pf.marker_x.tolist())  # loss's and val_loss's, from the frame
    expected = sorted(set(xs.tolist()))
    assert {NAN_STEPS[0], POSINF_STEP, NEGINF_STEP} <= set(expected) <= {*NAN_STEPS, POSINF_STEP, NEGINF_STEP}
    assert {m.get_markerfacecolor() for m in markers} == set(pf.marker_colors)  # the series' colours
    on_top = {x: m.get_markerfacecolor() for m in markers for x in m.get_xdata().tolist()}  # drawn last
    assert "non-finite (NaN/Inf)" in [t.get_text() for t in ax.get_legend().get_texts()]

    # Pixels: making the markers transparent (same layout) changes the image only around
    # them, and they are drawn in the series colour.
    with_markers = decode(fig_png(fig))
    for m in markers:
        m.set_alpha(0.0)
    without = decode(fig_png(fig))
    changed = (with_markers != without).any(axis=-1)
    assert changed.any()
    height = with_markers.shape[0]
    near = np.zeros_like(changed)
    for x in expected:
        px_x, px_y = ax.get_xaxis_transform().transform((x, 0.97))
        row, col = round(height - px_y), round(px_x)
        near[max(0, row - 12) : row + 13, max(0, col - 12) : col + 13] = True
        patch = with_markers[max(0, row - 4) : row + 5, max(0, col - 4) : col + 5]
        assert colour_mask(patch, on_top[x], tol=10).sum() >= 4, f"no {on_top[x]} marker at step {x}"
    assert not (changed & ~near).any(), "hiding the markers changed pixels away from them"
    ys, _xs_px = np.nonzero(changed)
    assert ys.max() < height * 0.2  # top of the first row of panels


def test_log_scale_panels(run_plot):
    # log_y: loss panels by default (not learning rate nor accuracy); log_y_panels chooses them
    assert [pf.log_y for pf in frame_of(run_plot, log_y=True).panels] == [True, False, False]
    frame = frame_of(run_plot, log_y=True, log_y_panels=("loss", "lr", "accuracy"))
    assert all(pf.log_y for pf in frame.panels)
    fig = render_figure(frame)
    assert [ax.get_yscale() for ax in fig.axes] == ["log"] * 3
    lo, hi = fig.axes[1].get_ylim()  # lr: 5e-7 .. 1e-3, several decades
    assert 0 < lo < 1e-6 and 5e-4 < hi < 1e-2
    assert Image.open(io.BytesIO(image_bytes(frame, "png", dpi=50))).size[0] == 500


def test_log_y_without_positive_values_stays_linear_and_says_so():
    plot = small_plot({"delta": [-1.0, -0.5, -0.25, 0.0]}, log_y=True)
    try:
        frame = plot.frame()
    finally:
        plot.close()
    (pf,) = frame.panels
    assert not pf.log_y and pf.note
    (ax,) = render_figure(frame).axes
    assert ax.get_yscale() == "linear"
    assert ax.get_title() == f"delta\n{pf.note}"


def test_ignore_outliers_applies_the_frames_y_range(run_plot):
    auto = render_figure(frame_of(run_plot))
    assert auto.axes[0].get_ylim()[1] >= SPIKE  # the spike stretches the auto range
    frame = frame_of(run_plot, ignore_outliers=True)
    fig = render_figure(frame)
    for ax, pf in zip(fig.axes, frame.panels):
        assert pf.y_range is not None
        assert ax.get_ylim() == pytest.approx(pf.y_range)
    assert fig.axes[0].get_ylim()[1] < 5


def test_wall_time_gives_a_date_x_axis(run_plot):
    frame = frame_of(run_plot, x_axis="wall_time")
    assert frame.x_is_date and frame.panels[0].series[0].x.dtype == np.dtype("datetime64[ms]")
    fig = render_figure(frame)
    ax = fig.axes[-1]
    assert isinstance(ax.xaxis.get_major_formatter(), mdates.ConciseDateFormatter)
    assert ax.get_xlabel().startswith("wall time")
    wall = run_plot.history["loss"].wall_time
    lo, hi = (d.timestamp() for d in mdates.num2date(ax.get_xlim()))
    span = wall[-1] - wall[0]
    assert lo <= wall[0] + 1e-3 and hi >= wall[-1] - 1e-3 and hi - lo < span + 60
    labels = fig_png(fig)  # renders the date ticks
    assert Image.open(io.BytesIO(labels)).size == (1500, round(fig.get_size_inches()[1] * 150))


def test_empty_frame_says_nothing_was_logged():
    plot = small_plot({})
    try:
        frame = plot.frame()
    finally:
        plot.close()
    assert frame.panels == []
    fig = render_figure(frame, title="nothing yet")
    assert fig.axes == []
    assert "No values logged yet" in [t.get_text() for t in fig.texts]
    px = decode(image_bytes(frame, "png", title="nothing yet"))
    assert (px < 200).all(axis=-1).sum() > 200  # the text is drawn


def test_unsupported_format_is_a_value_error_naming_it(frame):
    with pytest.raises(ValueError, match="'gif'"):
        image_bytes(frame, "gif")
    assert IMAGE_FORMATS == ("png", "svg", "pdf")


# -- text: literal, escaped ---------------------------------------------------------------------

HOSTILE = {
    "loss_$x$": [1.0, 0.5, 0.25],
    "a_b": [3.0, 2.0, 1.0],
    r"grad_$\frac{$": [0.3, 0.2, 0.1],  # invalid mathtext: drawing would raise if it were parsed
    "<script>alert(1)</script>": [0.1, 0.2, 0.3],
    "x & y": [5.0, 4.0, 3.0],
}


@pytest.fixture(scope="module")
def hostile_frame():
    plot = small_plot(HOSTILE)
    try:
        return plot.frame()
    finally:
        plot.close()


def test_text_is_never_mathtext(hostile_frame):
    from matplotlib.text import Text

    title = r"run $\alpha$ 50% & <b> $\frac{$"
    fig = render_figure(hostile_frame, title=title)
    user = set(HOSTILE) | {title}
    texts = [t for t in fig.findobj(Text) if t.get_text() in user]
    assert {t.get_text() for t in texts} == user
    assert all(t.get_parse_math() is False and t.get_usetex() is False for t in texts)
    fig_png(fig)  # draws: "$\frac{$" would raise ValueError if parsed as mathtext


def test_svg_is_xml_with_literal_escaped_text(hostile_frame):
    svg = image_bytes(hostile_frame, "svg", title="t <b>&amp;</b>")
    assert b"<script>" not in svg and b"&lt;script&gt;alert(1)&lt;/script&gt;" in svg
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG_NS}svg"
    texts = {"".join(el.itertext()) for el in root.iter(f"{SVG_NS}text")}
    assert set(HOSTILE) <= texts  # text elements, verbatim once unescaped: searchable
    assert "t <b>&amp;</b>" in texts
    assert not list(root.iter(f"{SVG_NS}script")) and not list(root.iter(f"{SVG_NS}foreignObject"))


def test_pdf_has_one_page(frame):
    pdf = image_bytes(frame, "pdf", title="resnet18")
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    assert len(re.findall(rb"/Type\s*/Page\b(?!s)", pdf)) == 1
    assert re.search(rb"/Type\s*/Pages\b.*?/Count\s+1\b", pdf, re.S)


# -- reproducible, any thread -------------------------------------------------------------------


@pytest.mark.parametrize("fmt", IMAGE_FORMATS)
def test_identical_data_gives_identical_bytes(hostile_frame, fmt):
    rc_before = dict(mpl.rcParams)
    a = image_bytes(hostile_frame, fmt, title="same")
    b = image_bytes(hostile_frame, fmt, title="same")
    assert a == b and len(a) > 1000
    assert dict(mpl.rcParams) == rc_before  # the svg/pdf settings were only borrowed for the save
    if fmt == "png":  # render_figure's Figure, saved by hand, is the same image
        assert fig_png(render_figure(hostile_frame, title="same")) == a


def test_renders_from_background_threads(frame, default_png):
    results: dict[str, bytes] = {}
    errors: list[BaseException] = []

    def work(fmt: str) -> None:
        try:
            results[fmt] = image_bytes(frame, fmt, title="resnet18")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(fmt,)) for fmt in ("png", "svg")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and not any(t.is_alive() for t in threads)
    assert results["png"] == default_png  # same bytes as on the main thread
    ET.fromstring(results["svg"])


def test_the_last_dot_of_a_five_point_series_in_an_svg_is_its_last_measured_value():
    """Parse the SVG: the dots of a sparse ``val_acc`` sit at its measured values, not on a smoothed line."""
    plot = LossPlot()  # default smoothing 0.6
    measured = [0.71, 0.83, 0.87, 0.90, 0.914]
    try:
        for i in range(500):
            plot.log(acc=0.5 + i / 1000, step=i)
        for step, v in zip(range(99, 500, 100), measured, strict=True):
            plot.log(val_acc=v, step=step)
        frame = plot.frame()
    finally:
        plot.close()
    svg = ET.fromstring(image_bytes(frame, "svg", width=6, height=4, dpi=72))
    (group,) = [g for g in svg.iter(f"{SVG_NS}g") if g.get("id") == "series val_acc"]
    dots = [(float(u.get("x")), float(u.get("y"))) for u in group.iter(f"{SVG_NS}use")]
    assert len(dots) == 5
    ax = render_figure(frame, width=6, height=4, dpi=72).axes[0]  # the same layout: SVG units are points
    to_data = ax.transData.inverted()
    values = [to_data.transform((x, 4 * 72 - y))[1] for x, y in dots]
    span = np.subtract(*ax.get_ylim()[::-1])
    np.testing.assert_allclose(values, measured, atol=span * 1e-3)
    ema_last = float(tensorboard_ema(np.array(measured), 0.6)[-1])  # where a 0.6 EMA would put it (the lag)
    assert abs(values[-1] - ema_last) > 0.01 > abs(values[-1] - 0.914)


def test_x_log_images_have_a_log_x_axis_and_no_point_at_or_below_zero():
    plot = small_plot({"loss": [1.0 / (1 + i) for i in range(200)]}, x_log=True)
    try:
        frame = plot.frame()
    finally:
        plot.close()
    assert frame.x_log and "log x leaves out 1 point" in frame.panels[0].note
    fig = render_figure(frame)
    assert fig.axes[0].get_xscale() == "log"
    assert all((np.asarray(line.get_xdata()) > 0).all() for line in fig.axes[0].get_lines())
    svg = image_bytes(frame, "svg").decode()
    assert "nan" not in svg.lower().replace("nanosecond", "")


def test_image_y_limits_stay_near_the_data_and_above_zero_for_non_negative_data():
    plot = small_plot({"loss": [0.01 + 2.0 / (1 + i) for i in range(200)], "delta": [i / 100 - 1 for i in range(200)]},
                      smoothing=0.0)
    try:
        frame = plot.frame()
    finally:
        plot.close()
    fig = render_figure(frame)
    loss_lo, loss_hi = fig.axes[0].get_ylim()
    assert loss_lo >= 0.0 and loss_hi <= 2.01 + 0.05 * 2.0 + 1e-9  # matplotlib's margin would put it below 0
    delta_lo, _ = fig.axes[1].get_ylim()
    assert delta_lo < -1.0  # negative data keep their range
