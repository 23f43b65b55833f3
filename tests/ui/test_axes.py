"""Axes of the live view: limits, zoom, log x and per-panel log y, tick labels, scale switches.

Read through the public ``figures`` (what the browser receives; see tests/drawn.py). Where the
browser's pan/zoom is simulated, the test writes the shared x scale's bounds as bqplot's PanZoom does.
"""

import numpy as np
import pytest
from bqplot import DateScale, LinearScale, Lines, LogScale, Scatter
from drawn import labels, lines, main_line, x_axis, x_scale, y_scale
from ipywidgets import Accordion

from lossviz_widget import LossPlot
from lossviz_widget._core.limits import MIN_X_SPAN


@pytest.fixture
def plot():
    p = LossPlot()
    yield p
    p.close()


def _log_run(plot: LossPlot, n: int = 2000) -> None:
    rng = np.random.default_rng(1)
    for i in range(n):
        plot.log(loss=0.01 + 2.0 / (1 + i / 50) + 0.01 * rng.random(), acc=min(0.99, 0.3 + i / n),
                 learning_rate=1e-3 * (1 - i / n) + 1e-5, step=i)
        if i % 400 == 399:
            plot.log(val_loss=0.05 + 2.0 / (1 + i / 50), val_acc=min(0.95, 0.25 + i / n), step=i)
    plot.flush()


def _marks(plot: LossPlot, family: str) -> list:
    return [m for m in plot.figures[family].marks if isinstance(m, (Lines, Scatter))]


def _drawn(plot: LossPlot, family: str) -> list:
    """The markers and every series line drawn in a panel, whatever the renderer."""
    drawn = [m for m in plot.figures[family].marks if isinstance(m, Scatter)]
    return drawn + [line for label in labels(plot, family) for line in lines(plot, family, label)]


def test_the_last_dot_of_a_five_point_series_is_its_last_measured_value(plot):
    _log_run(plot)
    measured = plot.history["val_acc"].values
    faint, main = lines(plot, "accuracy", "val_acc")
    assert main.marker == "circle" and len(main.y) == 5 and not faint.visible
    assert float(main.y[-1]) == pytest.approx(float(measured[-1]), rel=1e-7)  # float32 on the wire
    np.testing.assert_allclose(main.y, measured, rtol=1e-7)
    dense = main_line(plot, "accuracy", "acc")
    assert dense.marker is None  # a smoothed line gets no dots: a dot is a measured value


def test_a_loss_axis_never_goes_below_zero_and_accuracy_stays_near_its_data(plot):
    _log_run(plot)
    assert y_scale(plot, "loss").min >= 0.0
    acc = np.concatenate([plot.history[m].values for m in ("acc", "val_acc")])
    span = acc.max() - acc.min()
    for outliers in (False, True):
        plot.ignore_outliers = outliers
        plot.flush()
        lo, hi = y_scale(plot, "accuracy").min, y_scale(plot, "accuracy").max
        assert acc.min() - 0.051 * span <= lo and hi <= acc.max() + 0.051 * span, (outliers, lo, hi)


def test_negative_data_keeps_its_negative_range(plot):
    for i in range(100):
        plot.log(delta=-1.0 + i / 50, step=i)
    plot.flush()
    assert y_scale(plot, "delta").min < -1.0


def test_log_y_applies_to_loss_panels_and_log_y_panels_overrides(plot):
    _log_run(plot)
    plot.log_y = True
    plot.flush()
    kinds = {fam: type(y_scale(plot, fam)) for fam in plot.figures}
    assert kinds == {"loss": LogScale, "accuracy": LinearScale, "learning_rate": LinearScale}
    plot.log_y_panels = ("learning_rate",)
    plot.flush()
    kinds = {fam: type(y_scale(plot, fam)) for fam in plot.figures}
    assert kinds == {"loss": LinearScale, "accuracy": LinearScale, "learning_rate": LogScale}


def test_a_scale_switch_never_lets_data_meet_the_other_scale():
    """Toggling log y: bqplot redraws a mark for a data change with the scales it has and for a scale
    change with the data it has, so each mark drops its data, then gets the new scales, then the new
    data: values <= 0 never meet a log scale (bqplot #1219) and no mark stays on a closed scale.
    (With the canvas renderer the series' marks hold no data and the canvas leaves out what a log
    scale cannot place.)"""
    plot = LossPlot(renderer="svg")
    for i in range(300):
        plot.log(loss=float(max(0, 100 - i)), step=i)  # zeros at the end
    plot.flush()
    sent: list[tuple[object, dict]] = []  # (mark, state of each update message it sends)
    for mark in _marks(plot, "loss"):  # observe the wire
        mark.comm.send = lambda data=None, metadata=None, buffers=None, mark=mark: sent.append((mark, data))
    plot.log_y = True
    plot.flush()
    scale = y_scale(plot, "loss")
    assert isinstance(scale, LogScale) and scale.min > 0
    for mark in _marks(plot, "loss"):
        states = [msg["state"] for m, msg in sent if m is mark and msg and msg.get("method") == "update"]
        (switch,) = [i for i, st in enumerate(states) if "scales" in st]
        assert not any("x" in st or "y" in st for st in states[switch:switch + 1])  # scales alone
        before = [st for st in states[:switch] if "y" in st]
        assert all(tuple(st["y"]["shape"]) == (0,) for st in before)  # the old data dropped first
        assert mark.scales["y"] is scale
        y = np.asarray(mark.y, dtype=float)
        assert not (y[np.isfinite(y)] <= 0).any()
    main = main_line(plot, "loss", "loss")
    assert len(main.y) == 300  # and the new data came after
    plot.close()


def test_x_log_leaves_out_x_at_or_below_zero_and_says_so(plot):
    _log_run(plot)
    plot.x_log = True
    plot.flush()
    plot.flush()  # the frame after a scale switch sets its ticks
    assert isinstance(x_scale(plot), LogScale) and x_scale(plot).min > 0
    for fam in plot.figures:
        for mark in _drawn(plot, fam):
            x = np.asarray(mark.x, dtype=float)
            assert np.isfinite(x).all() and (x > 0).all(), (fam, mark)
        assert "log x leaves out" in plot.figures[fam].title
    ticks = x_axis(plot, "loss").tick_values
    assert ticks is not None and (np.log10(ticks) % 1 == 0).any()  # powers of ten
    frame = plot.frame()
    assert frame.x_log and all((sf.x > 0).all() for pf in frame.panels for sf in pf.series)
    plot.x_axis = "wall_time"  # a date axis stays linear
    plot.flush()
    assert isinstance(x_scale(plot), DateScale) and not plot.frame().x_log


def test_zoom_stops_at_a_few_steps(plot):
    _log_run(plot)
    scale = x_scale(plot)
    scale.min, scale.max = 1000.0, 1001.5  # a wheel zoom in the browser down to 1.5 steps
    assert plot.x_range == (1000.75 - MIN_X_SPAN / 2, 1000.75 + MIN_X_SPAN / 2)
    assert (scale.min, scale.max) == plot.x_range


def test_tick_labels_follow_the_shown_range(plot):
    for i in range(0, 1_000_001, 1000):
        plot.log(loss=1.0 / (1 + i), step=i)
    plot.flush()
    assert x_axis(plot, "loss").tick_format == ".2~s"  # 0, 200k, 400k ... 1M
    plot.x_range = (499_996.0, 500_004.0)
    plot.flush()
    assert x_axis(plot, "loss").tick_format == ".6~s"  # 499.996k ... 500.004k: every tick differs
    plot.x_axis = "wall_time"
    plot.x_range = None
    plot.flush()  # a new scale: bqplot's default ticks while the browser makes its view ...
    assert x_axis(plot, "loss").tick_format is None and x_axis(plot, "loss").tick_values is None
    plot.flush()  # ... and the next frame (a live plot asks for one) gives it its own
    assert x_axis(plot, "loss").tick_format.startswith("%H:%M")


def test_panel_height_setting(plot):
    plot.log(loss=1.0, step=0)
    plot.flush()
    assert plot.figures["loss"].layout.height == "240px"
    plot.panel_height = 400
    assert plot.figures["loss"].layout.height == "400px"
    with pytest.raises(Exception, match="panel_height"):
        plot.panel_height = 10


def test_the_readout_shows_a_best_only_where_min_or_max_means_something(plot):
    _log_run(plot)
    rows = {r.name: r for r in plot.frame().readout}
    assert rows["loss"].has_best and rows["val_acc"].has_best and not rows["learning_rate"].has_best
    readout = plot.shown_html["readout"]
    lr_row = readout[readout.index('data-metric="learning_rate"'):].split("</tr>")[0]
    assert "no best" in lr_row and "&#9660;" not in lr_row and "&#9650;" not in lr_row
    plot.best_metrics = ("learning_rate",)  # configurable: exactly these metrics (or families)
    plot.flush()
    rows = {r.name: r for r in plot.frame().readout}
    assert rows["learning_rate"].has_best and not rows["loss"].has_best


def test_a_long_readout_is_grouped_by_run_and_starts_collapsed():
    plot = LossPlot()
    try:
        (box,) = (c for c in plot.children if isinstance(c, Accordion))  # the readout's box
        plot.log(loss=1.0, step=0)
        plot.flush()
        assert box.selected_index == 0 and box.titles == ("latest and best: 1 series",)  # short: open
        for run in ("a", "b", "c"):
            for name in ("loss", "val_loss", "acc", "val_acc", "learning_rate", "grad_norm"):
                plot.log({name: 0.5}, step=1, run=run)
        plot.flush()
        assert box.selected_index is None and box.titles == ("latest and best: 19 series in 4 runs",)
        readout = plot.shown_html["readout"]
        assert readout.count("<tbody") == 4 and readout.count('rowspan="6"') == 3  # one group per run
        box.selected_index = 0  # the user opens it: it stays open as frames arrive
        plot.log(loss=0.4, step=2, run="a")
        plot.flush()
        assert box.selected_index == 0
    finally:
        plot.close()
