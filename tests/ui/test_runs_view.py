"""Several runs on screen and in files: colours, show/hide, highlight, exports, escaping."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from drawn import labels, lines, main_line

from lossviz_widget import LossPlot
from lossviz_widget._core.frame import FADED, PALETTE, FrameBuilder

HTML_NAME = "<b>x</b>&\"'"
RUNS = ("lr=1e-3", "lr=1e-2", HTML_NAME)


def three_runs(**view: object) -> LossPlot:
    plot = LossPlot(**view)
    for k, run in enumerate(RUNS):
        r = plot.run(run)
        for i in range(200):
            r.log(loss=(k + 1) / (i + 1), acc=i / (200 + k), step=i)
            if i % 50 == 0:
                r.log(val_loss=(k + 1.5) / (i + 1), step=i)
    plot.run(RUNS[1]).log(loss=float("nan"), step=200)
    return plot


@pytest.fixture(params=["canvas", "svg"])
def plot(request):
    p = three_runs(renderer=request.param)
    p.flush()
    yield p
    p.close()


def run_line(plot, family, run, metric):
    return main_line(plot, family, f"{run}: {metric}")


def table_rows(plot):
    """The runs table's rows, by run: (show checkbox, highlight toggle, label), as the plot lays them out
    (title, control bar, runs table, ...) in the order of the frame's runs."""
    box = plot.children[2]
    return {run.name: row.children for run, row in zip(plot.frame().runs, box.children, strict=True)}


def test_one_colour_per_run_in_every_panel_and_frame(plot):
    colours = {}
    for k, run in enumerate(RUNS):
        seen = {tuple(run_line(plot, fam, run, m).colors) for fam, m in
                (("loss", "loss"), ("loss", "val_loss"), ("accuracy", "acc"))}
        assert seen == {(PALETTE[k],)}  # the same hue in both panels
        colours[run] = PALETTE[k]
        assert run_line(plot, "loss", run, "loss").line_style == "solid"
        assert run_line(plot, "loss", run, "val_loss").line_style == "dashed"  # val within the run's hue
    assert len(set(colours.values())) == 3
    assert labels(plot, "loss") == {f"{run}: {m}" for run in RUNS for m in ("loss", "val_loss")}
    for i in range(200, 260):  # more frames: colours stay
        plot.run(RUNS[2]).log(loss=0.1, step=i)
        plot.flush()
    for k, run in enumerate(RUNS):
        assert run_line(plot, "accuracy", run, "acc").colors == [PALETTE[k]]
    rows = {(r.run, r.name): r.color for r in plot.frame().readout}
    assert rows[RUNS[1], "val_loss"] == PALETTE[1]


def test_thirty_runs_get_thirty_distinct_colours_everywhere(tmp_path):
    from lossviz_widget._io.images import render_figure

    p = LossPlot(smoothing=0.0)
    try:
        runs = [f"seed {k}" for k in range(30)]
        for k, run in enumerate(runs):
            p.run(run).log(loss=1.0 + k, acc=0.5, step=0)
            p.run(run).log(loss=0.5 + k, acc=0.6, step=1)
        p.flush()
        colours = [run_line(p, "loss", run, "loss").colors[0] for run in runs]
        assert len(set(colours)) == 30 and colours[:20] == list(PALETTE)  # tab10, then tab20's light partners
        rgb = np.array([[int(c[i:i + 2], 16) for i in (1, 3, 5)] for c in colours], dtype=float)
        gaps = np.linalg.norm(rgb[:, None] - rgb[None], axis=-1)[np.triu_indices(30, 1)]
        assert gaps.min() > 20  # no two runs nearly alike (tab20's closest pair is ~25 apart)
        assert [run_line(p, "accuracy", run, "acc").colors[0] for run in runs] == colours  # every panel
        fig = render_figure(p.frame(), title="")  # a 30-entry legend fits (small type, columns)
        drawn = {line.get_label(): line.get_color() for line in fig.axes[0].get_lines()}
        assert [drawn[f"{run}: loss"] for run in runs] == colours  # the image
        page = p.export(tmp_path / "r.html").read_text(encoding="utf-8")
        runs_list = page.split('id="lossviz-runs"')[1].split("</section>")[0]
        assert all(f"background:{c}" in runs_list for c in colours)  # the report
    finally:
        p.close()
    again = LossPlot()  # deterministic: the same run order gives the same colours
    try:
        for run in runs:
            again.run(run).log(loss=1.0, step=0)
        again.flush()
        assert [run_line(again, "loss", run, "loss").colors[0] for run in runs] == colours
    finally:
        again.close()


def test_single_run_colours_by_metric_until_a_second_run_appears():
    p = LossPlot()
    try:
        p.log(loss=1.0, val_loss=2.0, step=0)
        p.flush()
        loss, val = (main_line(p, "loss", m) for m in ("loss", "val_loss"))
        assert loss.colors != val.colors and loss.line_style == val.line_style == "solid"
        assert loss.labels == ["loss"]
        p.log(loss=1.5, val_loss=2.5, step=0, run="other")
        p.flush()
        assert loss.colors == val.colors == [PALETTE[0]]  # now by run
        assert val.line_style == "dashed" and loss.labels == ["default: loss"]
        assert run_line(p, "loss", "other", "loss").colors == [PALETTE[1]]
    finally:
        p.close()


def test_hidden_runs_are_not_drawn_and_not_sent(plot):
    hidden = RUNS[0]
    line = run_line(plot, "loss", hidden, "loss")
    sent_x = line.x
    plot.hidden_runs = (hidden,)
    plot.run(hidden).log(loss=0.01, step=500)
    plot.flush()
    assert not line.visible and not line.display_legend
    # nothing new sent for it: with svg its marks keep what they had, the canvas gets none of its points
    assert line.x is sent_x if plot.renderer == "svg" else len(line.x) == 0
    assert run_line(plot, "loss", RUNS[1], "loss").visible
    assert hidden not in plot.shown_html["readout"]
    assert "2 runs, 6 series" in plot.shown_html["status"]  # the status line counts visible runs
    show = {run: row[0] for run, row in table_rows(plot).items()}
    assert show[hidden].value is False and show[RUNS[1]].value is True
    show[hidden].value = True  # the checkbox shows it again
    assert plot.hidden_runs == ()
    plot.flush()
    assert line.visible and line.x[-1] == 500  # the points logged meanwhile arrive
    show[RUNS[2]].value = False
    assert plot.hidden_runs == (RUNS[2],)


def test_highlight_fades_the_other_runs(plot):
    plot.highlight_run = RUNS[1]
    plot.flush()
    for fam, m in (("loss", "loss"), ("accuracy", "acc")):
        assert run_line(plot, fam, RUNS[1], m).opacities == [1.0]
        assert run_line(plot, fam, RUNS[0], m).opacities == [FADED]
        faint = lines(plot, fam, f"{RUNS[0]}: {m}")[0]
        assert faint.opacities[0] < 0.25
    highlight = {run: row[1] for run, row in table_rows(plot).items()}
    assert highlight[RUNS[1]].value is True
    highlight[RUNS[0]].value = True  # the toggle moves the highlight
    assert plot.highlight_run == RUNS[0]
    highlight[RUNS[0]].value = False
    assert plot.highlight_run is None
    plot.flush()
    assert run_line(plot, "loss", RUNS[1], "loss").opacities == [1.0]
    assert all(toggle.value is False for toggle in highlight.values())


def test_runs_table_shows_best_of_main_metric(plot):
    rows = {r.name: r for r in plot.frame().runs}
    assert list(rows) == list(RUNS)
    assert rows[RUNS[0]].metric == "loss" and rows[RUNS[0]].best == pytest.approx(1 / 200)
    assert rows[RUNS[1]].best == pytest.approx(2 / 200)  # NaN is not a best value
    assert plot.children[2].layout.display == "flex"  # the runs table, under the control bar
    label = table_rows(plot)[RUNS[0]][2].value
    assert "lr=1e-3" in label and "0.005" in label


def test_runs_table_hidden_with_one_run():
    p = LossPlot()
    try:
        p.log(loss=1.0, run="solo")
        p.flush()
        assert p.children[2].layout.display == "none"  # the runs table, under the control bar
    finally:
        p.close()


def test_bad_hidden_runs_rejected(plot):
    with pytest.raises(TypeError, match="run names must be str"):
        plot.hidden_runs = (3,)
    assert plot.hidden_runs == ()


def test_run_names_are_escaped_everywhere(plot, tmp_path):
    escaped = "&lt;b&gt;x&lt;/b&gt;&amp;&quot;&#x27;"
    readout = plot.shown_html["readout"]
    assert "<b>x</b>" not in readout and escaped in readout and "<th>run</th>" in readout
    label = table_rows(plot)[HTML_NAME][2].value
    assert "<b>x</b>" not in label and escaped in label
    page = plot.export(tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<b>x</b>" not in page and escaped in page
    svg = plot.export(tmp_path / "r.svg").read_text(encoding="utf-8")
    assert "<b>x</b>" not in svg and "&lt;b&gt;x&lt;/b&gt;" in svg  # the legend label, as SVG text
    assert "3 runs" in page
    assert '<section id="lossviz-runs">' in page and page.count('<li><span data-run=') == 3


@pytest.mark.parametrize("suffix", [".csv", ".json", ".npz"])
def test_three_runs_round_trip_exactly(plot, tmp_path, suffix):
    loaded = LossPlot.load(plot.export(tmp_path / f"runs{suffix}"))
    try:
        assert loaded.runs == plot.runs == RUNS
        for run in RUNS:
            a, b = plot.run(run).history, loaded.run(run).history
            assert list(a) == list(b)
            for m in a:
                for col in ("steps", "values", "wall_time"):
                    np.testing.assert_array_equal(getattr(a[m], col), getattr(b[m], col))
        loaded.run(RUNS[0]).log(loss=0.5)  # ready to go on, per run
        assert loaded.run(RUNS[0]).history["loss"].steps[-1] == 200
    finally:
        loaded.close()


def test_csv_and_json_layout(plot, tmp_path):
    with plot.export(tmp_path / "r.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert list(dict.fromkeys(row[0] for row in rows[1:])) == list(RUNS)  # run column, runs in order
    doc = json.loads(plot.export(tmp_path / "r.json").read_text(encoding="utf-8"))
    assert list(doc["runs"]) == list(RUNS)
    assert list(doc["runs"][RUNS[0]]) == ["loss", "acc", "val_loss"]


def test_log_file_carries_runs(tmp_path):
    path = tmp_path / "runs.jsonl"
    p = LossPlot(log_file=path)
    try:
        p.log(loss=1.0, step=0)
        p.run("b").log(loss=2.0, step=0)
        p.extend("loss", [1, 2], [0.5, np.inf], run=HTML_NAME)
        p.flush()
        p.log(loss=0.9, step=1, run="b")
    finally:
        p.close()
    lines = path.read_text(encoding="utf-8").splitlines()
    assert '"r"' not in lines[1]  # default-run lines stay as before
    loaded = LossPlot.load(path, log_file=path)  # resume appends per run
    try:
        assert loaded.runs == ("default", "b", HTML_NAME)
        assert loaded.run("b").history["loss"].values.tolist() == [2.0, 0.9]
        assert loaded.run(HTML_NAME).history["loss"].values.tolist() == [0.5, np.inf]
        loaded.run("b").log(loss=0.8, step=2)
        loaded.flush()
    finally:
        loaded.close()
    again = LossPlot.load(path)
    try:
        assert again.run("b").history["loss"].values.tolist() == [2.0, 0.9, 0.8]
        assert again.history["loss"].values.tolist() == [1.0]
    finally:
        again.close()


def test_images_draw_each_run(tmp_path):
    from lossviz_widget._io.images import render_figure

    p = three_runs(smoothing=0.0)
    try:
        p.highlight_run = RUNS[0]
        fig = render_figure(p.frame(), title="")
        ax = fig.axes[0]  # the loss panel
        drawn = {line.get_label(): line for line in ax.get_lines() if not line.get_label().startswith("_")}
        assert {f"{r}: loss" for r in RUNS} <= set(drawn)
        assert drawn[f"{RUNS[1]}: loss"].get_color() == PALETTE[1]
        assert drawn[f"{RUNS[0]}: val_loss"].get_linestyle() == "--"
        assert drawn[f"{RUNS[2]}: loss"].get_alpha() == FADED and drawn[f"{RUNS[0]}: loss"].get_alpha() == 1.0
        assert p.export(tmp_path / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        p.close()


def test_a_frame_built_before_a_click_does_not_undo_it(plot, monkeypatch):
    """The render thread builds a frame, then the user clicks, then the table is updated from that
    (stale) frame: the click must stand (the table follows the plot's traits, not the frame)."""
    table, build = table_rows(plot), FrameBuilder.build

    def build_then_click(*args, **kwargs):
        frame = build(*args, **kwargs)
        table[RUNS[0]][0].value = False  # the click, after the frame was built
        table[RUNS[1]][1].value = True
        return frame

    monkeypatch.setattr(FrameBuilder, "build", build_then_click)
    plot.run(RUNS[0]).log(loss=0.5, step=300)
    plot.flush()  # draws the frame built before the click
    monkeypatch.undo()
    assert plot.hidden_runs == (RUNS[0],)
    assert plot.highlight_run == RUNS[1]
    assert table[RUNS[0]][0].value is False and table[RUNS[1]][1].value is True


def test_a_hidden_runs_findings_leave_the_findings_list():
    """Hiding a run hides its findings too (its lines, markers and readout rows already go)."""
    from lossviz_widget import LossPlot

    plot = LossPlot()
    try:
        for run in ("a", "b"):
            for i in range(40):
                plot.log(loss=float("nan") if i == 30 else 1.0 / (i + 1), step=i, run=run)
        plot.flush()
        assert 'data-run="a"' in plot.shown_html["findings"] and 'data-run="b"' in plot.shown_html["findings"]
        plot.hidden_runs = ("b",)
        plot.flush()
        assert 'data-run="a"' in plot.shown_html["findings"] and 'data-run="b"' not in plot.shown_html["findings"]
        assert {f.run for f in plot.diagnose()} >= {"a", "b"}  # diagnose() still reports every run
    finally:
        plot.close()
