"""What LossPlot puts into its bqplot models and hover layers: the data the browser receives.

The ``plot`` fixture runs each test with both renderers (``canvas``, the default, and ``svg``):
``drawn.lines`` reads the points each one sends."""

import contextlib
import html
import threading
import time

import numpy as np
import pytest
from bqplot import DateScale, LinearScale, LogScale
from drawn import labels, lines, main_line, nonfinite_markers, render_threads_since, x_axis, x_scale, y_scale
from traitlets import TraitError

from lossviz_widget import LossPlot, tensorboard_ema
from lossviz_widget._core.frame import FrameBuilder
from lossviz_widget._ui.snapshot import SnapshotButton


@pytest.fixture(params=["canvas", "svg"])
def plot(request):
    p = LossPlot(title="test", renderer=request.param)
    yield p
    p.close()


def test_panels_group_by_family_and_share_x(plot):
    for i in range(100):
        plot.log(loss=1 / (i + 1), acc=i / 100, step=i)
        if i % 10 == 0:
            plot.log({"val_loss": 0.5, "val/acc": 0.4, "lr": 0.1}, step=i)
    plot.flush()
    figures = plot.figures
    assert list(figures) == ["loss", "accuracy", "lr"]
    assert labels(plot, "loss") == {"loss", "val_loss"}
    assert labels(plot, "accuracy") == {"acc", "val/acc"}
    xs = {id(m.scales["x"]) for f in figures.values() for m in f.marks}
    assert len(xs) == 1  # one shared x scale: sparse val points line up with dense train points
    assert [f.title for f in figures.values()] == ["loss", "accuracy", "lr"]
    _, val = lines(plot, "loss", "val_loss")
    assert val.x.tolist() == list(range(0, 100, 10)) and val.marker == "circle"  # sparse: dots
    _, train = lines(plot, "loss", "loss")
    assert train.marker is None and train.labels == ["loss"] and train.display_legend


def test_smoothing_draws_ema_over_faint_raw(plot):
    y = np.random.default_rng(0).random(500)
    for i, v in enumerate(y):
        plot.log(loss=v, step=i)
    plot.flush()
    faint, main = lines(plot, "loss", "loss")
    np.testing.assert_allclose(main.y, tensorboard_ema(y, 0.6), rtol=1e-6)  # float32 on the wire
    np.testing.assert_allclose(faint.y, y, rtol=1e-6)
    assert faint.visible and faint.opacities == [0.25]
    plot.smoothing = 0.0
    plot.flush()
    faint, main = lines(plot, "loss", "loss")
    np.testing.assert_allclose(main.y, y, rtol=1e-6)
    assert not faint.visible and len(faint.y) == 0
    plot.smoothing = 0.95
    plot.flush()
    np.testing.assert_allclose(lines(plot, "loss", "loss")[1].y, tensorboard_ema(y, 0.95), rtol=1e-6)


def test_bounded_view_keeps_spike_x_y_float32(plot):
    plot.max_points = 500
    n = 100_000
    y = np.full(n, 0.5)
    y[77_777] = 50.0
    for i in range(n):
        plot.log(loss=y[i], step=i)
    plot.flush()
    faint, main = lines(plot, "loss", "loss")
    for m in (faint, main):
        assert len(m.x) <= 500 and len(m.x) == len(m.y)
        assert m.y.dtype == np.float32  # half the bytes
        # steps below 2**24 are exact in float32: bqplot's Lines get float32; the canvas' buffer has float64 x
        assert m.x.dtype == (np.float32 if plot.renderer == "svg" else np.float64)
        assert m.x[0] == 0 and m.x[-1] == n - 1  # endpoints kept
    assert 50.0 in faint.y and 77_777 in faint.x  # the raw spike survives downsampling
    smooth_full = tensorboard_ema(y, 0.6)
    assert np.float32(smooth_full.max()) in main.y  # and so does the smoothed curve's peak


def test_steps_float32_cannot_hold_keep_float64_on_the_wire(plot):
    plot.smoothing = 0.0
    big = [2**24, 2**24 + 1, 2**24 + 3]  # odd steps above 2**24 would round to even ones in float32
    for i, step in enumerate(big):
        plot.log(loss=0.5 + i, step=step)
    plot.log(frac=0.5, step=1.5)  # fractional steps that float32 holds exactly
    plot.log(frac=0.6, step=2.25)
    plot.flush()
    x = main_line(plot, "loss", "loss").x
    assert x.dtype == np.float64 and x.tolist() == big
    x = main_line(plot, "frac", "frac").x
    assert x.dtype == (np.float32 if plot.renderer == "svg" else np.float64) and x.tolist() == [1.5, 2.25]


def test_tiny_or_huge_values_keep_float64_on_the_wire(plot):
    plot.smoothing = 0.0
    for i, v in enumerate([1e-40, 1e-39, 2e-39]):  # below float32's range: would become 0
        plot.log(tiny=v, big=1e35 * (i + 1), ok=0.5, step=i)
    plot.flush()
    tiny = main_line(plot, "tiny", "tiny").y
    assert tiny.dtype == np.float64 and tiny.tolist() == [1e-40, 1e-39, 2e-39]
    assert main_line(plot, "big", "big").y.dtype == np.float64
    assert main_line(plot, "ok", "ok").y.dtype == np.float32


def test_unchanged_series_are_not_resent():
    """With svg each line's data is its own message (the canvas sends a panel's lines together:
    tests/ui/test_canvas_lines.py)."""
    plot = LossPlot(renderer="svg")
    plot.log(loss=1.0, val_loss=2.0, step=0)
    plot.flush()
    _, val = lines(plot, "loss", "val_loss")
    sent = []
    val.observe(lambda c: sent.append(c["name"]), names=["x", "y"])
    for i in range(1, 50):
        plot.log(loss=1.0 / i, step=i)
        plot.flush()
    assert sent == []  # val_loss got no new points: nothing re-sent for it
    plot.log(val_loss=1.0, step=50)
    plot.flush()
    assert set(sent) == {"x", "y"}
    plot.close()


def test_log_y_masks_nonpositive_and_falls_back_when_nothing_positive(plot):
    plot.smoothing = 0.0
    for i, v in enumerate([1.0, 0.1, 0.0, -1.0, 0.01]):
        plot.log(loss=v, margin=-v - 1, step=i)
    plot.log_y = True
    plot.flush()
    assert isinstance(y_scale(plot, "loss"), LogScale)
    y = lines(plot, "loss", "loss")[1].y
    assert np.isnan(y[2]) and np.isnan(y[3]) and y[4] == 0.01  # <= 0 become gaps, never a broken axis
    assert isinstance(y_scale(plot, "margin"), LinearScale)  # all values <= 0: stays linear and says so
    assert "log scale needs positive values" in plot.figures["margin"].title
    plot.log_y = False
    plot.flush()
    assert isinstance(y_scale(plot, "loss"), LinearScale)
    assert lines(plot, "loss", "loss")[1].scales["y"] is y_scale(plot, "loss")
    assert lines(plot, "loss", "loss")[1].y[3] == -1.0


def test_ignore_outliers_uses_5_95_percentile(plot):
    rng = np.random.default_rng(1)
    y = rng.normal(1.0, 0.1, 2000)
    y[[100, 900]] = [1e4, -1e4]
    for i, v in enumerate(y):
        plot.log(loss=v, step=i)
    plot.flush()
    scale = y_scale(plot, "loss")
    assert scale.min < -1e4 and scale.max > 1e4  # auto by default: all the data, a margin around it
    plot.ignore_outliers = True
    plot.flush()
    lo, hi = np.percentile(y, [5, 95])
    assert lo - 0.2 * (hi - lo) < scale.min < lo and hi < scale.max < hi + 0.2 * (hi - lo)
    plot.ignore_outliers = False
    plot.flush()
    assert scale.min < -1e4 and scale.max > 1e4


def test_x_axis_modes(plot):
    for i in range(20):
        plot.log(loss=1.0 / (i + 1), step=i * 10)
    plot.flush()
    assert x_axis(plot, "loss").label == "step"
    plot.x_axis = "wall_time"
    plot.flush()
    main = lines(plot, "loss", "loss")[1]
    assert isinstance(main.scales["x"], DateScale) and main.x.dtype.kind == "M"
    wall = plot.history["loss"].wall_time
    assert abs(main.x[-1].astype("datetime64[ms]").astype(float) / 1000 - wall[-1]) < 0.002
    plot.x_axis = "relative_time"
    plot.flush()
    main = lines(plot, "loss", "loss")[1]
    assert isinstance(main.scales["x"], LinearScale) and x_axis(plot, "loss").label == "time since start (s)"
    assert main.x[0] == pytest.approx(0.0, abs=0.01) and main.x[-1] == pytest.approx(wall[-1] - wall[0])
    with pytest.raises(TraitError, match="epochs"):
        plot.x_axis = "epochs"


def test_nonfinite_values_show_as_gaps_with_markers(plot):
    plot.smoothing = 0.0
    for i in range(10):
        plot.log(loss=float("nan") if i in (3, 7) else 1.0 + i, step=i)
    plot.flush()
    main = lines(plot, "loss", "loss")[1]
    assert np.isnan(main.y[3]) and np.isnan(main.y[7])
    markers = nonfinite_markers(plot, "loss")
    assert markers.visible and markers.x.tolist() == [3.0, 7.0]
    assert np.all(markers.y == 10.0)  # at the top of the panel's data
    assert 'data-nonfinite="2"' in plot.shown_html["readout"]


def test_metric_names_and_title_are_escaped():
    evil = '<img src=x onerror="alert(1)">'
    p = LossPlot(title=evil)
    p.log({evil: 1.0, "<script>alert(1)</script>": 2.0}, step=0)
    p.flush()
    shown = p.shown_html
    assert set(shown) == {"title", "findings", "readout", "status"}
    for text in shown.values():
        assert "<script>" not in text and "<img" not in text
    assert html.escape(evil, quote=True) in shown["readout"] and html.escape(evil, quote=True) in shown["title"]
    # legend labels go as plain strings (the hover layer's legend and bqplot's SVG text set them as text)
    assert any(evil in labels(p, family) for family in p.figures)
    p.close()


def test_readout_latest_and_best(plot):
    for i, (loss, acc) in enumerate([(1.0, 0.1), (0.5, 0.7), (0.7, 0.6)]):
        plot.log(loss=loss, acc=acc, step=i)
    plot.flush()
    rows = plot.shown_html["readout"]
    assert 'data-metric="loss" data-step="2" data-count="3"' in rows
    assert ">0.7</td>" in rows and "0.5 &#9660;" in rows  # latest 0.7, best (min) 0.5
    assert "0.7 &#9650;" in rows  # best accuracy is the max


def test_controls_are_linked_both_ways(plot):
    bar = plot.children[1]
    slider, mode, log_y, x_log, outliers, x_axis, _follow, snapshot = bar.children
    assert isinstance(snapshot, SnapshotButton)
    plot.smoothing = 0.9
    assert slider.value == 0.9
    plot.smoothing_mode = "gaussian"
    assert mode.value == "gaussian"
    mode.value = "time_ema"
    assert plot.smoothing_mode == "time_ema"
    slider.value = 0.25
    log_y.value = True
    x_log.value = True
    outliers.value = True
    x_axis.value = "relative_time"
    assert (plot.smoothing, plot.log_y, plot.x_log, plot.ignore_outliers, plot.x_axis) == (
        0.25, True, True, True, "relative_time")
    with pytest.raises(Exception, match="smoothing must be in"):
        plot.smoothing = 1.0
    assert plot.smoothing == 0.25


def test_zoom_from_python_and_the_browser_re_downsamples_and_follow_latest_resets(plot):
    plot.smoothing = 0.0
    plot.max_points = 200
    n = 100_000
    for i in range(n):
        plot.log(loss=100.0 if i == 31_415 else 1.0, step=i)
    plot.flush()
    main = lines(plot, "loss", "loss")[1]
    scale = x_scale(plot)
    auto = (scale.min, scale.max)
    assert len(main.x) <= 200 and auto[0] == 0.0 and n - 1 < auto[1] < 1.1 * n and plot.follow_latest
    plot.x_range = (31_400.0, 31_430.0)  # zoom from Python: the raw points there
    plot.flush()
    main = lines(plot, "loss", "loss")[1]
    np.testing.assert_array_equal(main.x, np.arange(31_399, 31_432))
    assert (scale.min, scale.max) == (31_400.0, 31_430.0) and not plot.follow_latest
    scale.max, scale.min = 60_010.0, 60_000.0  # as a PanZoom in the browser writes the scale
    assert plot.x_range == (60_000.0, 60_010.0)
    plot.flush()
    np.testing.assert_array_equal(lines(plot, "loss", "loss")[1].x, np.arange(59_999, 60_012))
    plot.log(loss=1.0, step=n)  # new points do not move a zoomed view
    plot.flush()
    assert (scale.min, scale.max) == (60_000.0, 60_010.0)
    plot.follow_latest = True  # back to the whole run, auto-ranged
    plot.flush()
    assert plot.x_range is None and (scale.min, scale.max) == (0.0, pytest.approx(1.05 * n))
    assert lines(plot, "loss", "loss")[1].x[-1] == n
    with pytest.raises(Exception, match="x_range must be"):
        plot.x_range = (5.0, 1.0)


def test_zoom_on_a_wall_time_axis(plot):
    for i in range(1000):
        plot.log(loss=float(i), step=i)
    plot.x_axis = "wall_time"
    plot.flush()
    wall = plot.history["loss"].wall_time
    lo, hi = float(wall[100]), float(wall[200])
    plot.x_range = (lo, hi)
    plot.flush()
    main = lines(plot, "loss", "loss")[1]
    secs = main.x.astype("datetime64[ms]").astype(float) / 1000
    assert secs.min() >= wall[99] - 0.002 and secs.max() <= wall[201] + 0.002
    assert isinstance(x_scale(plot), DateScale) and x_scale(plot).min is not None  # a datetime


def test_invalid_settings_rejected():
    with pytest.raises(Exception, match="fps"):
        LossPlot(fps=0)
    with pytest.raises(Exception, match="max_points"):
        LossPlot(max_points=3)


def test_live_mode_renders_from_a_background_thread_with_a_trailing_frame(as_in_a_kernel, monkeypatch):
    builds, build = [], FrameBuilder.build
    monkeypatch.setattr(FrameBuilder, "build", lambda *a, **kw: builds.append(1) or build(*a, **kw))  # one per frame
    threads = set(threading.enumerate())
    p = LossPlot(smoothing=0.0, fps=20)
    done = threading.Event()

    def train():
        for i in range(300):
            p.log(loss=float(i), step=i)
            time.sleep(0.002)
        done.set()

    t = threading.Thread(target=train)
    t.start()
    seen = []
    while not done.is_set():
        with contextlib.suppress(KeyError):  # the render thread may be adding it right now
            seen.append(len(main_line(p, "loss", "loss").x))
        time.sleep(0.05)
    t.join()
    end = time.monotonic() + 3
    while time.monotonic() < end and len(main_line(p, "loss", "loss").x) < 300:
        time.sleep(0.02)
    main = main_line(p, "loss", "loss")
    assert main.x[-1] == 299 and len(main.x) == 300  # trailing frame delivered without flush()
    assert len(set(seen)) >= 3  # the plot moved while "training" ran
    assert len(builds) <= 20 * 2  # ~0.6 s of logging at <= 20 fps
    (render,) = render_threads_since(threads)
    p.close()
    assert not render.is_alive()


def test_close_stops_everything(as_in_a_kernel):
    threads = set(threading.enumerate())
    p = LossPlot()
    p.log(loss=1.0)
    time.sleep(0.2)
    (render,) = render_threads_since(threads)
    assert render.is_alive()
    widgets = [p, *p.children, *p.children[1].children, *p.figures.values()]
    p.close()
    assert not render.is_alive()
    assert all(w.comm is None for w in widgets)  # nothing left open in the kernel or the browser


def test_auto_ranged_bounds_hold_while_the_data_fills_them(plot):
    """bqplot redraws every line of a scale whenever its domain changes: bounds move rarely."""
    for i in range(1000):
        plot.log(loss=2.0 - i / 1000, step=i)
    plot.flush()
    xs, ys = x_scale(plot), y_scale(plot, "loss")
    x0, y0 = (xs.min, xs.max), (ys.min, ys.max)
    assert x0 == (0.0, pytest.approx(999 * 1.05))
    assert y0 == (pytest.approx(1.001 - 0.05 * 0.999), pytest.approx(2.0 + 0.05 * 0.999))
    for i in range(1000, 1040):  # within the margins: no new bounds
        plot.log(loss=1.0 - (i - 1000) / 1000, step=i)
        plot.flush()
        assert (xs.min, xs.max) == x0 and (ys.min, ys.max) == y0
    plot.log(loss=0.5, step=1100)  # beyond both: new bounds, with new margins
    plot.flush()
    assert xs.max == pytest.approx(1100 * 1.05) and ys.min == pytest.approx(0.5 - 0.05 * 1.5)
    plot.log_y = True  # log axis: margins in log10 units
    plot.flush()
    log_scale = y_scale(plot, "loss")
    span = np.log10(2.0 / 0.5)
    assert np.log10(log_scale.min) == pytest.approx(np.log10(0.5) - 0.05 * span)


def test_held_bounds_for_flat_and_shrinking_data():
    # private on purpose: the held-bounds rule has no public entry but a whole frame; pinned here directly
    from lossviz_widget._core.headroom import headroom_above
    from lossviz_widget._ui.figures import _held

    none = (0.0, 0.0)  # a flat series' span is 0: no margin, ``flat`` instead
    assert _held((None, None), 3.0, 3.0, none, none, flat=0.6) == (2.7, 3.3)
    assert _held((2.7, 3.3), 3.0, 3.0, none, none, flat=0.6) == (2.7, 3.3)  # stays put
    five = headroom_above(10.0)  # 5% of a span of 10, no growth: (0.5, 0.0)
    assert _held((0.0, 100.0), 40.0, 50.0, five, five, flat=1.0) == (39.5, 50.5)  # data shrank: refit
    assert _held((0.0, 100.0), 0.0, 90.0, none, headroom_above(90.0), flat=1.0) == (0.0, 100.0)  # still fills 94.5%


def test_a_rendering_error_shows_until_the_next_frame_renders(as_in_a_kernel, monkeypatch, caplog, request):
    build, failures = FrameBuilder.build, []

    def build_failing_once(*args, **kwargs):  # a frame that fails once (say, a transient bug)
        if not failures:
            failures.append(1)
            raise RuntimeError("frame <boom>")
        return build(*args, **kwargs)

    monkeypatch.setattr(FrameBuilder, "build", build_failing_once)
    plot = LossPlot(title="test")  # frames on the render thread, as in a kernel
    request.addfinalizer(plot.close)

    def status():
        return plot.shown_html["status"]

    plot.log(loss=1.0, step=0)
    deadline = time.monotonic() + 30
    while "rendering error" not in status() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert "rendering error: RuntimeError: frame &lt;boom&gt;" in status()  # shown, escaped
    plot.log(loss=0.5, step=1)  # the next frame renders: the error is over
    while "rendering error" in status() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert "rendering error" not in status() and "2 points" in status()
    assert any("rendering a frame failed" in r.getMessage() and "frame <boom>" in (r.exc_text or "")
               for r in caplog.records)  # still in the log record
