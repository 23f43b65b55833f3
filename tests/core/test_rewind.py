"""Step rewinds (a run resumed from a checkpoint, a re-run training cell): ``on_rewind=``.

Every consumer of the data must agree after a purge: history, the live frame builder's
incremental caches, the diagnostics, ``log_file`` (and its reload), and handed-out views.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from lossviz_widget import LossPlot, Recorder
from lossviz_widget._core.frame import Frame, ViewSettings
from lossviz_widget.diagnostics import Finding


def _live(rec: Recorder) -> list[Frame]:
    """Frames the recorder draws with its own (incremental) frame builder, on flush()."""
    frames: list[Frame] = []

    def draw(frame: Frame, findings: list[Finding]) -> int:
        frames.append(frame)
        return 0

    rec.attach_view(draw, live=False)
    return frames


def test_resume_at_50_purges_the_later_points_and_says_so() -> None:
    """The issue's scenario: 100 steps, reload a checkpoint from step 50, keep logging."""
    plot = LossPlot()
    for i in range(100):
        plot.log(loss=1.0 / (i + 1), acc=i / 100, step=i)
    for i in range(50, 150):  # no exception inside the training loop
        plot.log(loss=0.5 / (i + 1), acc=0.5 + i / 1000, step=i)
    h = plot.history["loss"]
    assert h.steps.tolist() == list(range(150))
    assert h.values[49] == 1.0 / 50 and h.values[50] == 0.5 / 51  # old before 50, resumed from 50
    frame = plot.frame()
    assert frame.notes == ["loss: resumed at step 50, 50 points replaced",
                           "acc: resumed at step 50, 50 points replaced"]
    assert [p.rewind_steps for p in frame.panels] == [[50.0], [50.0]]
    assert all("resumed at step 50" in p.note for p in frame.panels)
    assert {r.name: r.note for r in frame.readout} == {
        "loss": "loss: resumed at step 50, 50 points replaced", "acc": "acc: resumed at step 50, 50 points replaced"}
    line = frame.panels[0].series[0]
    assert np.all(np.diff(line.x) > 0) and line.x[-1] == 149  # one line, no overlapping attempts
    plot.flush()
    assert "resumed at step 50, 50 points replaced" in plot.shown_html["status"]  # the status line says it
    plot.close()


def test_live_caches_match_a_fresh_build_after_purges() -> None:
    """Smoothing caches, pyramids and stats of the live builder are rebuilt for a rewound series."""
    settings = ViewSettings(smoothing=0.9, max_points=200)
    rec = Recorder(settings)
    frames = _live(rec)
    rng = np.random.default_rng(0)
    for i in range(5000):
        rec.log(loss=float(rng.random()) + 10.0, step=i)
    rec.flush()
    for i in range(2000, 4000):
        rec.log(loss=float(rng.random()), step=i)
    rec.flush()
    fresh = Recorder(settings)
    h = rec.history["loss"]
    fresh.extend("loss", h.steps, h.values, h.wall_time)
    want, got = fresh.frame(200), frames[-1]
    ours = got.panels[0].series[0]
    theirs = want.panels[0].series[0]
    np.testing.assert_array_equal(ours.x, theirs.x)
    np.testing.assert_array_equal(ours.y, theirs.y)
    assert got.readout[0].best == want.readout[0].best and got.readout[0].count == 4000
    assert (ours.y[ours.x >= 2100] < 2.0).all()  # the purged attempt (values > 10) left the smoothed line


def test_diagnostics_forget_the_purged_attempt() -> None:
    rec = Recorder()
    for i in range(100):
        rec.log(loss=math.nan if i >= 80 else 1.0 / (i + 1), step=i)
    assert {f.step for f in rec.diagnose() if f.code == "nonfinite"} == {80.0}
    for i in range(50, 100):
        rec.log(loss=1.0 / (i + 1), step=i)
    assert not [f for f in rec.diagnose() if f.code == "nonfinite"]


def test_views_handed_out_before_a_purge_stay_as_they_were() -> None:
    rec = Recorder()
    for i in range(300):
        rec.log(loss=float(i), acc=-float(i), step=i)
    before = rec.history["loss"]
    copy = before.values.copy()
    for i in range(10, 400):
        rec.log(loss=1000.0 + i, acc=0.0, step=i)
    np.testing.assert_array_equal(before.values, copy)
    assert rec.history["loss"].values[:10].tolist() == [float(i) for i in range(10)]
    assert rec.history["acc"].steps.tolist() == list(range(400))


def test_only_the_metrics_that_go_back_are_purged() -> None:
    rec = Recorder()
    for i in range(20):
        rec.log(loss=1.0, step=i)
        if i % 5 == 4:
            rec.log(val_loss=2.0, step=i)
    rec.log(loss=0.5, step=10)
    assert rec.history["loss"].steps.tolist() == list(range(11))
    assert rec.history["val_loss"].steps.tolist() == [4, 9, 14, 19]  # until it is logged again
    rec.log(val_loss=1.5, step=14)
    assert rec.history["val_loss"].steps.tolist() == [4, 9, 14]
    assert rec.frame().notes == ["loss: resumed at step 10, 10 points replaced",
                                 "val_loss: resumed at step 14, 2 points replaced"]


def test_extend_follows_the_same_rules() -> None:
    rec = Recorder()
    rec.extend("loss", [0, 1, 2, 3], [0.0, 1.0, 2.0, 3.0])
    rec.extend("loss", [2, 3, 4, 1, 2], [20.0, 30.0, 40.0, 10.0, 11.0])  # two restarts in one array
    h = rec.history["loss"]
    assert h.steps.tolist() == [0, 1, 2] and h.values.tolist() == [0.0, 10.0, 11.0]
    raising = Recorder(on_rewind="raise")
    raising.extend("loss", [0, 1], [0.0, 1.0])
    with pytest.raises(ValueError, match="metric 'loss': step 0 goes backwards"):
        raising.extend("loss", [0, 1], [0.0, 1.0])
    with pytest.raises(ValueError, match="metric 'loss': steps must be non-decreasing"):
        raising.extend("loss", [5, 4], [0.0, 1.0])
    assert raising.history["loss"].values.tolist() == [0.0, 1.0]


def test_new_run_keeps_both_attempts() -> None:
    plot = LossPlot(on_rewind="new_run")
    for i in range(100):
        plot.log(loss=1.0, step=i)
    handle = plot.run("default")
    for i in range(50, 80):
        plot.log(loss=0.5, step=i)
    handle.log(loss=0.4, step=80)  # a handle of the old run follows it too
    plot.log({"loss": 0.3}, step=81)
    assert plot.runs == ("default", "default (resumed 1)")
    data = plot.recorder.data()
    assert data["default"]["loss"].steps.tolist() == list(range(100))
    assert data["default (resumed 1)"]["loss"].steps.tolist() == list(range(50, 82))
    assert plot.frame().notes == ["default: resumed at step 50 as run 'default (resumed 1)'"]
    for i in range(10):  # and again: a second attempt
        plot.log(loss=0.1, step=i, run="default")
    assert plot.runs[-1] == "default (resumed 2)"
    plot.extend("loss", [0, 1], [1.0, 2.0], run="b")
    plot.extend("loss", [0, 1], [1.0, 2.0], run="b")
    assert "b (resumed 1)" in plot.runs
    plot.close()


def test_raise_keeps_the_old_behaviour_and_bad_settings_are_refused() -> None:
    plot = LossPlot(on_rewind="raise")
    plot.log(loss=1.0, step=5)
    with pytest.raises(ValueError, match=r"metric 'loss': step 4 goes backwards .*Nothing from this call"):
        plot.log(loss=2.0, acc=1.0, step=4)
    assert list(plot.history) == ["loss"]
    plot.close()
    with pytest.raises(ValueError, match="on_rewind must be one of 'purge', 'new_run', 'raise'"):
        LossPlot(on_rewind="ignore")


def test_log_file_records_the_purge_and_a_reload_reproduces_it(tmp_path) -> None:
    path = tmp_path / "run.jsonl"
    plot = LossPlot(log_file=path)
    for i in range(1235):
        plot.log(loss=1.0 / (i + 1), step=i)
    plot.close()
    resumed = LossPlot.load(path, log_file=path)  # the README's resume recipe, from an older checkpoint
    for i in range(1001, 1100):
        resumed.log(loss=2.0, step=i)
    resumed.flush()
    for i in range(1050, 1060):  # and a second rewind before the next frame
        resumed.log(loss=3.0, step=i)
    resumed.close()
    again = LossPlot.load(path)
    for col in ("steps", "values", "wall_time"):
        np.testing.assert_array_equal(getattr(again.history["loss"], col), getattr(resumed.history["loss"], col))
    assert again.history["loss"].steps.tolist() == list(range(1060))
    assert '"purge": 1001.0' in path.read_text()
