"""The legend/hover layer above each panel (``js/hover.js``): what the kernel tells the browser.

The browser computes the readout from the bqplot models it already has; the kernel only syncs,
per panel, which ``Lines`` models are which series (model ids, labels, colours, dashes) and how
many points were logged in view. Read from the plot's public widget tree; the browser side is
tested in ``tests/browser/test_browser_hover.py`` and ``tests/js``.
"""

from __future__ import annotations

import math

import pytest
from drawn import layers, lines

from lossviz_widget import LossPlot


@pytest.fixture
def plot():
    p = LossPlot(smoothing=0.6, max_points=100)
    yield p
    p.close()


def test_each_panel_names_its_lines_for_the_browser(plot):
    for i in range(500):
        plot.log(loss=math.exp(-i / 100), acc=1 - math.exp(-i / 80), step=i)
        if i % 50 == 0:
            plot.log(val_loss=math.exp(-i / 120) + 0.1, step=i)
    plot.flush()
    found = layers(plot)
    assert set(found) == set(plot.figures) == {"loss", "accuracy"}
    entries = {e["label"]: e for e in found["loss"].series}
    assert list(entries) == ["loss", "val_loss"]
    for label, e in entries.items():
        main = lines(plot, "loss", label)[1]
        assert e["main"] == f"IPY_MODEL_{main.model_id}"
        assert e["color"] == main.colors[0] and e["dash"] == main.line_style
    # the smoothed loss has its raw line behind it; the sparse val_loss is drawn raw (no second line)
    assert entries["loss"]["raw"] == f"IPY_MODEL_{lines(plot, 'loss', 'loss')[0].model_id}"
    assert entries["val_loss"]["raw"] is None
    # 500 logged points, 100 drawn: the browser is told each drawn point stands for a bucket
    assert entries["loss"]["bucketed"] and len(lines(plot, "loss", "loss")[1].x) <= 100
    assert not entries["val_loss"]["bucketed"] and len(lines(plot, "loss", "val_loss")[1].x) == 10
    assert plot.frame(max_points=100).panels[0].series[0].in_view == 500
    assert found["loss"].x_label == "step"


def test_no_raw_line_without_smoothing_and_hidden_runs_leave_the_legend(plot):
    plot.smoothing = 0.0
    for run in ("a", "b"):
        for i in range(20):
            plot.log(loss=1.0 / (i + 1), step=i, run=run)
    plot.flush()
    layer = layers(plot)["loss"]
    assert [(e["label"], e["raw"]) for e in layer.series] == [("a: loss", None), ("b: loss", None)]
    assert [e["key"] for e in layer.series] == ["a\x1floss", "b\x1floss"]
    plot.hidden_runs = ("b",)
    plot.flush()
    assert [e["label"] for e in layer.series] == ["a: loss"]


def test_an_unchanged_frame_sends_nothing_to_the_layer(plot):
    for i in range(50):
        plot.log(loss=1.0 / (i + 1), step=i)
    plot.flush()
    layer = layers(plot)["loss"]
    sent: list[object] = []
    layer.observe(sent.append, names=["series", "x_label"])
    plot.log(loss=0.01, step=50)  # new data, same series: the layer's entries are unchanged
    plot.flush()
    assert sent == []
    plot.x_axis = "wall_time"
    plot.flush()
    assert [c["name"] for c in sent] == ["x_label"] and layer.x_label != "step"
