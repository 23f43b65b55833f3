"""The widget-free Recorder: what a script, a DDP rank or a test uses, with no widget at all."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from lossviz_widget import Recorder, ViewSettings
from lossviz_widget._core.recorder import LIVE_DIAGNOSTICS_BUDGET
from lossviz_widget._io.logfile import LogWriter
from lossviz_widget.diagnostics import Diagnostics


def test_importing_the_recorder_loads_no_widget_library():
    code = ("import sys, lossviz_widget._core.recorder as r; r.Recorder().log(loss=1.0); "
            "print([m for m in ('ipywidgets', 'bqplot', 'traitlets', 'IPython', 'anywidget', 'matplotlib') "
            "if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_log_extend_runs_and_history_without_a_view():
    rec = Recorder()
    rec.log(loss=1.0, step=0)
    rec.log({"loss": 0.5, "acc": 0.7}, step=1)
    rec.extend("val_loss", [0, 10], [1.2, 0.9])
    rec.run("b").log(loss=2.0, step=0)
    assert rec.runs == ("default", "b")
    assert list(rec.history["loss"].values) == [1.0, 0.5]
    assert list(rec.run("b").history["loss"].values) == [2.0]
    data = rec.data()
    assert set(data) == {"default", "b"} and set(data["default"]) == {"loss", "acc", "val_loss"}
    with pytest.raises(TypeError, match="'acc'"):
        rec.log(loss=0.1, acc="high", step=2)  # a bad value: nothing of the call is kept
    assert list(rec.history["loss"].steps) == [0, 1]
    rec.close()


def test_frame_is_the_current_view_at_the_asked_resolution():
    rec = Recorder(ViewSettings(smoothing=0.0))
    steps = np.arange(100_000.0)
    rec.extend("loss", steps, np.exp(-steps / 3e4))
    frame = rec.frame(max_points=500)
    (panel,) = frame.panels
    (series,) = panel.series
    assert len(series.x) <= 500 and series.x[0] == 0 and series.x[-1] == 99_999
    assert frame.readout[0].latest == pytest.approx(np.exp(-99_999 / 3e4))
    rec.settings = ViewSettings(smoothing=0.9, log_y=True)
    assert rec.frame().panels[0].log_y


def test_a_live_view_gets_frames_in_the_background_and_a_trailing_one():
    rec = Recorder(ViewSettings(fps=50.0))
    drawn: list[float] = []
    done = threading.Event()

    def draw(frame, findings):
        drawn.append(frame.readout[0].latest)
        if frame.readout[0].latest == 99.0:
            done.set()
        return 1

    rec.attach_view(draw, live=True)
    for i in range(100):
        rec.log(loss=float(i), step=i)
    assert done.wait(10), "the trailing frame never came"
    assert rec.wait_idle(10)
    assert drawn[-1] == 99.0 and 1 <= len(drawn) < 100  # throttled, never one per log()
    rec.close()


def test_without_a_live_view_only_flush_draws():
    rec = Recorder()
    drawn = []
    rec.attach_view(lambda frame, findings: drawn.append(frame) or 0, live=False)
    rec.log(loss=1.0, step=0)
    assert not rec.background and drawn == []
    rec.flush()
    assert len(drawn) == 1
    rec.close()


def test_a_failing_view_shows_in_errors_and_recovers(caplog):
    rec = Recorder(ViewSettings(fps=50.0))
    calls, statuses = [], []

    def draw(frame, findings):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return 0

    rec.attach_view(draw, live=True, on_status=lambda: statuses.append(list(rec.errors())))
    rec.log(loss=1.0, step=0)
    assert rec.wait_idle(10)
    assert rec.errors() == ["rendering error: RuntimeError: boom"]
    assert statuses and statuses[-1] == rec.errors()
    rec.log(loss=0.5, step=1)  # the next frame renders: the error is over
    assert rec.wait_idle(10)
    assert rec.errors() == [] and len(calls) == 2
    rec.close()


def test_a_sink_gets_every_point_once_and_is_closed(tmp_path):
    rec = Recorder()
    rec.log(loss=1.0, step=0)  # held before the sink is added: written first
    path = tmp_path / "run.jsonl"
    rec.add_sink(LogWriter(path, title="t", settings={}))
    assert rec.background
    for i in range(1, 50):
        rec.log(loss=1.0 / i, step=i)
    rec.close()
    lines = path.read_text().splitlines()
    points = [json.loads(line) for line in lines[1:]]
    assert [p["s"] for p in points] == list(range(50))
    assert not rec.background


def test_diagnostics_can_be_turned_off_and_on():
    rec = Recorder()
    rec.extend("loss", np.arange(10.0), [1, 2, float("nan"), 4, 5, 6, 7, 8, 9, 10])
    assert any(f.code == "nonfinite" for f in rec.diagnose())
    rec.diagnostics = False
    assert rec.diagnose() == []
    rec.diagnostics = True
    assert any(f.code == "nonfinite" for f in rec.diagnose())
    rec.close()


def test_a_run_handle_holds_no_plot():
    rec = Recorder()
    run = rec.run("seed=1")
    run.log(loss=1.0)
    run.extend("val_loss", [0], [2.0])
    assert rec.runs == ("seed=1",) and "Recorder" not in repr(run)
    assert set(run.history) == {"loss", "val_loss"}


def recorded_reads(monkeypatch) -> tuple[list[tuple[int | None, int]], object]:
    """Every diagnostics pass's budget and what it left unread, as they happen; and the real
    ``Diagnostics.update``."""
    reads, update = [], Diagnostics.update

    def update_and_record(diag, data, budget=None):
        found = update(diag, data, budget)
        reads.append((budget, diag.pending))
        return found

    monkeypatch.setattr(Diagnostics, "update", update_and_record)
    return reads, update


def drawn_findings(rec: Recorder) -> list[list]:
    """Attach a live view to ``rec``; each frame it draws appends its findings to the list."""
    drawn: list[list] = []
    rec.attach_view(lambda frame, findings: drawn.append(list(findings)) or 0, live=True)
    return drawn


def test_live_frames_give_diagnostics_a_cpu_budget_while_points_keep_coming(monkeypatch):
    """While points keep arriving, a live frame's diagnostics read only what fits in
    ``DIAGNOSTICS_FRAME_S`` of CPU (here next to nothing: the 1024-point floor), so a tight loop's
    frames stay cheap; once logging pauses they catch up at the full budget, and the findings
    are those of one unbudgeted pass."""
    from lossviz_widget._core import recorder

    monkeypatch.setattr(recorder, "DIAGNOSTICS_FRAME_S", 1e-9)
    reads, update = recorded_reads(monkeypatch)
    rec = Recorder()
    try:
        steps = np.arange(200_000.0)
        rec.extend("loss", steps, 2 / (1 + steps / 1e4) * (1 + 0.05 * np.sin(steps)))
        drawn = drawn_findings(rec)
        for k in range(6):  # points arriving between frames
            more = len(steps) + 5000 * k + np.arange(5000, dtype=float)
            rec.extend("loss", more, 2 / (1 + more / 1e4))
            rec.request_frame()
            time.sleep(0.4)
        assert rec.wait_idle(timeout=300)
        budgets = [b for b, _ in reads]
        assert 1024 in budgets  # a frame that found new points read the floor
        assert budgets[-1] == LIVE_DIAGNOSTICS_BUDGET  # the catch-up, after logging stopped
        whole = Diagnostics()
        update(whole, rec.data())
        assert [repr(f) for f in drawn[-1]] == [repr(f) for f in whole.findings]
    finally:
        rec.close()


def test_live_frames_catch_up_on_a_backlog_within_a_budget(monkeypatch):
    """After extend() of 1e6 steps one live frame reads at most the budget per series and asks
    for the next frame; once caught up the findings are those of one unbudgeted pass."""
    budget = LIVE_DIAGNOSTICS_BUDGET
    reads, update = recorded_reads(monkeypatch)
    rec = Recorder()
    try:
        n = 1_000_000
        s = np.arange(n, dtype=float)
        rec.extend("loss", s, 2 / (1 + s / 1e5) * (1 + 0.05 * np.sin(s)))
        rec.extend("val_loss", s[::10], 2.4 / (1 + s[::10] / 1e5) + np.maximum(0, s[::10] - 6e5) / 1e6)
        drawn = drawn_findings(rec)
        rec.request_frame()
        assert rec.wait_idle(timeout=300)  # each frame behind asked for the next: all drawn now
        frames = -(-n // budget)
        # the first frame read `budget` points of loss and all 1e5 of val_loss; each next one `budget` more
        assert reads[0] == (budget, n - budget)
        assert [left for _, left in reads] == [max(0, n - k * budget) for k in range(1, frames + 1)]
        assert all(b == budget for b, _ in reads) and len(drawn) == frames
        time.sleep(0.3)
        assert len(drawn) == frames  # none once caught up
        whole = Diagnostics()
        update(whole, rec.data())
        assert [repr(f) for f in drawn[-1]] == [repr(f) for f in whole.findings]
        found = rec.diagnose()
        assert [repr(f) for f in found] == [repr(f) for f in whole.findings]
        assert {"overfitting", "converged"} <= {f.code for f in found}
    finally:
        rec.close()
