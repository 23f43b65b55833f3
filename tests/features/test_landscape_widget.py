"""The landscape widget: coarse-to-fine fill seen in the bqplot marks, cancel, log colour,
and the exports (PNG, SVG, NPZ, JSON)."""

from __future__ import annotations

import json
import threading
import time
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from bqplot import LogScale
from drawn import landscape_parts

from lossviz_widget import landscape as ls
from lossviz_widget.landscape.picture import nearest_fill

A = np.diag([1.0, 4.0])


def bowl(t):
    return float(0.5 * t @ A @ t) + 0.1


def test_grid_fills_coarse_to_fine_in_the_marks():
    """Snapshots of the HeatMap's colours taken as points land: the stride-4 lattice first
    (the rest filled from its nearest neighbours), then stride 2, then every cell."""
    view = ls.plane(np.zeros(2), bowl, directions=[np.eye(2)[0], np.eye(2)[1]], steps=9, span=(-2, 2),
                    compute=False, display=False)
    view.min_interval = 0.0  # redraw after every point
    land = view.landscape
    seen = []
    view.runner.listeners.append(lambda land: seen.append((int(land.computed.sum()), np.array(view.heat.color),
                                                           land.computed.copy(), len(view.contours.x))))
    assert np.isnan(np.asarray(view.heat.color, dtype=float)).all()  # nothing yet
    view.run()
    truth = np.array([[bowl(np.array([x, y])) for x in land.x] for y in land.y])
    np.testing.assert_array_equal(land.values, truth)
    by_count = {n: (color, computed, nc) for n, color, computed, nc in seen}
    rows, cols = np.indices((9, 9))
    coarse = (rows % 4 == 0) & (cols % 4 == 0)
    medium = (rows % 2 == 0) & (cols % 2 == 0)
    color, computed, n_contour = by_count[9]  # after the centre and the stride-4 lattice
    np.testing.assert_array_equal(computed, coarse)
    assert not np.isnan(color).any()  # the whole picture is there already
    np.testing.assert_array_equal(color[coarse], truth[coarse])
    np.testing.assert_array_equal(color, nearest_fill(np.where(coarse, truth, np.nan), coarse))
    assert n_contour > 0
    color, computed, _ = by_count[25]
    np.testing.assert_array_equal(computed, medium)
    np.testing.assert_array_equal(color[medium], truth[medium])
    color, computed, _ = by_count[81]
    np.testing.assert_array_equal(color, truth)
    parts = landscape_parts(view)
    assert parts.progress.value == 81 and "81/81 points, done" in parts.status.value
    assert parts.cancel.disabled


def test_log_colour_and_nonfinite_gaps():
    def loss(t):
        return np.nan if t[0] > 0.9 else 10.0 ** (3 * t[0])

    view = ls.plane(np.zeros(2), loss, directions=[np.eye(2)[0], np.eye(2)[1]], steps=5, display=False)
    land = view.landscape
    color = np.asarray(view.heat.color, dtype=float)
    assert land.computed.all() and np.isnan(land.values[:, -1]).all()
    assert np.isnan(color[:, -1]).all() and not np.isnan(color[:, :-1]).any()  # NaN losses are gaps
    view.log_color = True
    assert landscape_parts(view).log.value is True
    np.testing.assert_allclose(np.asarray(view.heat.color, dtype=float)[:, :-1], 3 * land.x[:-1][None, :].repeat(5, 0))
    assert landscape_parts(view).color_axis.label == "log10 loss"


def test_cancel_button_stops_a_background_run():
    started = threading.Event()

    def slow(t):
        started.set()
        time.sleep(0.01)
        return bowl(t)

    view = ls.plane(np.ones(2), slow, seed=0, steps=15, compute=False, display=False)
    cancel = landscape_parts(view).cancel
    assert not cancel.disabled
    view.start()
    assert started.wait(10)
    time.sleep(0.1)
    cancel.click()
    land = view.wait(10)
    done = int(land.computed.sum())
    assert land.status == "cancelled" and 0 < done < 225
    time.sleep(0.1)
    assert int(land.computed.sum()) == done == view.runner.done  # nothing more after cancelling
    assert cancel.disabled and "cancelled" in landscape_parts(view).status.value
    with pytest.raises(RuntimeError, match="already computed"):
        view.start()
    heat = view.heat
    view.close()
    assert heat.comm is None and view.figure.comm is None and view.comm is None


def test_keyboard_interrupt_keeps_points_and_reraises():
    calls = []

    def loss(t):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return bowl(t)

    view = ls.line(np.ones(2), loss, seed=0, steps=9, compute=False, display=False)
    with pytest.raises(KeyboardInterrupt):
        view.run()
    land = view.landscape
    assert land.status == "interrupted" and land.computed.sum() == 3
    # the curve joins the computed points: the centre, then both ends (the coarse pass)
    np.testing.assert_array_equal(view.curve.x, land.x[[0, 4, 8]])
    np.testing.assert_array_equal(view.curve.y, land.values[[0, 4, 8]])
    view.log_color = True  # 1-D: a log y axis
    parts = landscape_parts(view)
    assert isinstance(view.curve.scales["y"], LogScale) and parts.y_axis.scale is view.curve.scales["y"]
    assert "interrupted" in parts.status.value


def _trajectory_view():
    rec = ls.TrajectoryRecorder()
    theta = np.array([1.5, 1.0])
    for _ in range(10):
        rec.record(theta)
        theta = theta - 0.2 * (A @ theta)
    return ls.trajectory(rec, theta, bowl, steps=7, title="run <b>&amp;", metric="val<loss> & \"co\"",
                         display=False)


def test_exports_are_valid_and_escaped(tmp_path):
    view = _trajectory_view()
    land = view.landscape
    png = view.export(tmp_path / "l.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = view.export(tmp_path / "l.svg").read_text(encoding="utf-8")
    root = ET.fromstring(svg)  # parses: every name was escaped
    texts = "".join(root.itertext())
    assert 'val<loss> & "co"' in texts and "run <b>&amp;" in texts and "PC1 (" in texts
    for suffix in (".npz", ".json"):
        back = ls.load(view.export(tmp_path / f"l{suffix}"))
        for name in ("kind", "x_label", "y_label", "metric", "title", "status"):
            assert getattr(back, name) == getattr(land, name), (suffix, name)
        np.testing.assert_array_equal(back.x, land.x)
        np.testing.assert_array_equal(back.y, land.y)
        np.testing.assert_array_equal(back.values, land.values)
        np.testing.assert_array_equal(back.computed, land.computed)
        np.testing.assert_array_equal(back.path.coords, land.path.coords)
        np.testing.assert_array_equal(back.path.losses, land.path.losses)
        np.testing.assert_array_equal(back.path.steps, land.path.steps)
        assert back.info["explained_variance_ratio"] == land.info["explained_variance_ratio"]
    with np.load(tmp_path / "l.npz", allow_pickle=False) as z:
        assert z["values"].dtype == np.float64


def test_json_is_strict_and_keeps_nonfinite(tmp_path):
    def loss(t):
        return {0: np.nan, 1: np.inf}.get(round(t[0]), 1.0)

    view = ls.line(np.zeros(1), loss, direction=np.ones(1), span=(-1, 1), steps=3, display=False)
    text = view.export(tmp_path / "nan.json").read_text()
    doc = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    assert doc["values"] == [1.0, "NaN", "Infinity"]
    back = ls.load(tmp_path / "nan.json")
    assert np.isnan(back.values[1]) and np.isposinf(back.values[2]) and back.y is None
    partial = ls.line(np.zeros(1), loss, direction=np.ones(1), steps=5, compute=False, display=False)
    back = ls.load(partial.export(tmp_path / "partial.npz"))
    assert not back.computed.any() and back.status == "pending"


def test_export_errors(tmp_path):
    view = ls.line(np.ones(2), bowl, seed=0, steps=3, display=False)
    with pytest.raises(ValueError, match="unknown suffix '.pdf'"):
        view.export(tmp_path / "x.pdf")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        view.export(tmp_path / "missing" / "x.npz")
    with pytest.raises(TypeError, match="only for image files"):
        view.export(tmp_path / "x.json", dpi=10)
    (tmp_path / "bad.json").write_text('{"format": "other"}')
    with pytest.raises(ValueError, match="not a lossviz_widget landscape file"):
        ls.load(tmp_path / "bad.json")
    with pytest.raises(TypeError, match="needs a Landscape"):
        ls.save("not a landscape", tmp_path / "x.npz")


@pytest.mark.parametrize("steps", [(5,), (5, 5, 5), [], "55"])
def test_plane_steps_pair_must_be_two_counts(steps):
    with pytest.raises((TypeError, ValueError), match="steps"):
        ls.plane(np.ones(3), lambda w: float(np.sum(w**2)), steps=steps, seed=0, compute=False, display=False)
