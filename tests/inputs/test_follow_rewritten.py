"""``follow()`` notices a rewritten file by content, not by count: a new run written over the old one
(``CSVLogger(append=False)``) replaces it in the plot instead of being spliced onto it."""

from __future__ import annotations

from pathlib import Path

from waiting import wait_until

from lossviz_widget import LossPlot


def _loss(plot: LossPlot) -> list[float]:
    """The followed run's loss values so far (the run is named after the file)."""
    history = plot.run("fit").history
    return history["loss"].values.tolist() if "loss" in history else []


def _rows(losses: list[float]) -> str:
    return "epoch,loss\n" + "".join(f"{i},{v}\n" for i, v in enumerate(losses))


def test_a_new_run_written_over_the_file_replaces_the_old_one(tmp_path: Path) -> None:
    log = tmp_path / "fit.csv"
    log.write_text(_rows([1.0, 0.9, 0.8, 0.7, 0.6]))
    plot = LossPlot()
    plot.follow(log, interval=0.05)
    wait_until(lambda: len(_loss(plot)) == 5)
    log.write_text(_rows([2.0, 1.5, 1.2]))  # the training cell was run again: a new run, same file
    wait_until(lambda: _loss(plot) == [2.0, 1.5, 1.2])
    log.write_text(_rows([2.0, 1.5, 1.2, 1.1]))  # rewritten with the same start plus one: nothing repeats
    wait_until(lambda: len(_loss(plot)) == 4)
    assert _loss(plot) == [2.0, 1.5, 1.2, 1.1]
    assert plot.run("fit").history["loss"].steps.tolist() == [0, 1, 2, 3]
    assert plot.recorder.errors() == []
    plot.close()


def test_a_vanished_file_is_not_an_error_and_is_picked_up_again(tmp_path: Path) -> None:
    log = tmp_path / "fit.csv"
    log.write_text(_rows([1.0, 0.9]))
    plot = LossPlot()
    follower = plot.follow(log, interval=0.05)
    wait_until(lambda: len(_loss(plot)) == 2)
    log.unlink()  # gone for a while (a cleanup, a sync): not an error, the loop goes on
    plot.log(loss=0.5, step=10, run="other")
    log.write_text(_rows([1.0, 0.9, 0.8]))  # back, with one more point
    wait_until(lambda: len(_loss(plot)) == 3)
    assert _loss(plot) == [1.0, 0.9, 0.8]
    assert follower.current_error is None and plot.recorder.errors() == []
    plot.close()


def test_following_a_rewound_log_file_shows_the_same_history(tmp_path: Path) -> None:
    """A ``log_file`` holding chunk lines and a purge (a resumed run) reads as the writer's history."""
    path = tmp_path / "run.jsonl"
    writer = LossPlot(log_file=path)
    for i in range(5000):
        writer.log(loss=1.0 / (i + 1), step=i)
    writer.flush()
    for i in range(500, 600):
        writer.log(loss=3.0, step=i)
    writer.close()
    plot = LossPlot()
    plot.follow(path, interval=0.05)
    wait_until(lambda: "loss" in plot.run("run").history and len(plot.run("run").history["loss"]) == 600)
    assert plot.run("run").history["loss"].values.tolist() == writer.history["loss"].values.tolist()
    assert plot.recorder.errors() == []
    plot.close()
