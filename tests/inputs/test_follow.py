"""Following logs while another process writes them: every point arrives once, in order;
runs that appear later are found; rewritten files do not repeat points; stopping ends the thread."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
from drawn import render_threads_since

from lossviz_widget import LossPlot
from lossviz_widget.follow import Follower

WRITER = textwrap.dedent("""
    import pathlib, sys, time
    from torch.utils.tensorboard import SummaryWriter

    root, ack = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])

    def wait_for_ack(chunk):  # the test says it has seen this chunk before the next is written
        deadline = time.time() + 60
        while not (ack.exists() and ack.read_text() == str(chunk)):
            if time.time() > deadline:
                sys.exit(f"no ack for chunk {chunk}")
            time.sleep(0.01)

    a, b = SummaryWriter(root / "a"), None
    for chunk in range(4):
        if chunk == 2:
            b = SummaryWriter(root / "b")  # a run that appears while following
        for step in range(25 * chunk, 25 * chunk + 25):
            a.add_scalar("loss", 1.0 / (step + 1), step)
            a.add_scalar("acc", step / 100, step)
            if b is not None:
                b.add_scalar("loss", 2.0 / (step + 1), step)
        a.flush()
        if b is not None:
            b.flush()
        wait_for_ack(chunk)
    a.close()
    b.close()
""")


def count(plot: LossPlot, run: str, metric: str) -> int:
    history = plot.run(run).history
    return len(history[metric]) if metric in history else 0


def wait_until(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def follow_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "lossviz-follow"]


def test_follow_a_training_subprocess(tmp_path):
    root, ack = tmp_path / "logs", tmp_path / "ack"
    plot = LossPlot()
    plot.follow(root, interval=0.05)  # the folder does not exist yet
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(root), str(ack)], env=env)
    try:
        for chunk in range(4):
            n = 25 * (chunk + 1)
            wait_until(lambda n=n: count(plot, "a", "acc") >= n and count(plot, "b", "loss") >= n - 50)
            assert proc.poll() is None  # the points arrived while the writer was still running
            time.sleep(0.15)  # a few more polls: nothing beyond what was written may show up
            assert count(plot, "a", "loss") == count(plot, "a", "acc") == n
            assert count(plot, "b", "loss") == max(0, n - 50)
            tmp = ack.with_suffix(".tmp")
            tmp.write_text(str(chunk))
            tmp.replace(ack)
        assert proc.wait(60) == 0
    finally:
        proc.kill()
    plot.unfollow()
    assert plot.runs == ("a", "b")
    a, b = plot.run("a").history, plot.run("b").history
    np.testing.assert_array_equal(a["loss"].steps, np.arange(100))  # all points, in order, exactly once
    np.testing.assert_allclose(a["loss"].values, 1.0 / (np.arange(100) + 1), rtol=1e-6)
    np.testing.assert_allclose(a["acc"].values, np.arange(100) / 100, rtol=1e-6)
    np.testing.assert_array_equal(b["loss"].steps, np.arange(50, 100))
    assert np.all(np.diff(a["loss"].wall_time) >= 0)  # the writer's wall times
    assert not follow_threads()
    plot.close()


def _keras_rows(epochs: range) -> str:
    return "".join(f"{e},{1.0 / (e + 1)!r}\n" for e in epochs)


def test_rewritten_and_replaced_files_repeat_no_point(tmp_path):
    got: list = []
    follower = Follower([tmp_path], got.extend)
    log = tmp_path / "fit.csv"
    log.write_text("epoch,loss\n" + _keras_rows(range(3)))
    follower.poll()
    log.write_text("epoch,loss\n" + _keras_rows(range(5)))  # rewritten in place from scratch, longer
    follower.poll()
    replacement = tmp_path / "fit.tmp"
    replacement.write_text("epoch,loss\n" + _keras_rows(range(7)))
    replacement.replace(log)  # replaced by a new file (new inode), as rsync does
    follower.poll()
    # Lightning rewrites metrics.csv with a wider header when a metric appears
    lightning = tmp_path / "version_0" / "metrics.csv"
    lightning.parent.mkdir()
    lightning.write_text("epoch,step,train_loss\n0,0,0.5\n0,1,0.4\n")
    follower.poll()
    lightning.write_text("epoch,step,train_loss,val_loss\n0,0,0.5,\n0,1,0.4,\n0,1,,0.45\n1,2,0.3,\n")
    follower.poll()
    with lightning.open("a") as f:
        f.write("1,3,0.2,\n1,3,,0.25\n")
    follower.poll()
    points = [(b.run, b.metric, s, v) for b in got for s, v in zip(b.steps.tolist(), b.values.tolist())]
    assert [p for p in points if p[0] == "fit"] == [("fit", "loss", float(e), 1.0 / (e + 1)) for e in range(7)]
    lightning_points = sorted(p for p in points if p[0] == "version_0")
    assert lightning_points == sorted([
        ("version_0", "train_loss", 0.0, 0.5), ("version_0", "train_loss", 1.0, 0.4),
        ("version_0", "train_loss", 2.0, 0.3), ("version_0", "train_loss", 3.0, 0.2),
        ("version_0", "val_loss", 1.0, 0.45), ("version_0", "val_loss", 3.0, 0.25)])


def test_replaced_event_file_repeats_no_point(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(tmp_path / "src") as w:
        for step in range(10):
            w.add_scalar("loss", float(step), step)
    (source,) = (tmp_path / "src").glob("*tfevents*")
    whole = source.read_bytes()
    target = tmp_path / "logs" / "run" / source.name
    target.parent.mkdir(parents=True)
    target.write_bytes(whole[: len(whole) // 2])  # a copy still arriving
    got: list = []
    follower = Follower([tmp_path / "logs"], got.extend)
    follower.poll()
    first = sum(len(b) for b in got)
    assert 0 < first < 10
    staged = target.with_name("incoming")
    staged.write_bytes(whole)
    staged.replace(target)  # the copy tool replaces the file with the complete one
    follower.poll()
    steps = [s for b in got for s in b.steps.tolist()]
    assert steps == list(range(10)) and {b.run for b in got} == {"run"}


def test_unfollow_and_close_stop_the_thread(tmp_path):
    plot = LossPlot()
    follower = plot.follow(tmp_path / "a", tmp_path / "b", interval=0.05)
    assert follower.running and len(follow_threads()) == 1 and follow_threads()[0].daemon
    plot.unfollow()
    assert not follower.running and not follow_threads()
    plot.follow(tmp_path, interval=0.05)
    plot.follow(tmp_path / "x", interval=0.05)
    assert len(follow_threads()) == 2
    plot.close()
    assert not follow_threads()


def test_interval_is_honoured(tmp_path):
    follower = Follower([tmp_path], lambda batches: None, interval=0.25)
    follower.start()
    time.sleep(1.1)
    follower.stop()
    assert 3 <= follower.polls <= 6, follower.polls  # polls at 0, 0.25, 0.5, 0.75, 1.0 s
    assert not follow_threads()


def test_errors_are_reported_once_and_following_goes_on(tmp_path):
    (tmp_path / "table.csv").write_text("a,b\n1,2\n")
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "fit.csv").write_text("epoch,loss\n0,0.5\n")
    errors: list[BaseException] = []
    got: list = []
    follower = Follower([tmp_path / "table.csv", tmp_path / "runs"], got.extend, on_error=errors.append)
    follower.poll()
    follower.poll()
    assert len(errors) == 1 and "table.csv" in str(errors[0]) and "not a known log format" in str(errors[0])
    assert [(b.run, b.metric) for b in got] == [("fit", "loss")]  # the good source was read anyway

    plot = LossPlot()
    plot.log(loss=0.1, step=100, run="fit")
    follower = plot.follow(tmp_path / "runs", interval=0.05)  # its steps go back: rejected, reported
    wait_until(lambda: follower.last_error is not None)
    plot.unfollow()
    assert "run 'fit'" in str(follower.last_error) and "goes backwards" in str(follower.last_error)
    assert "following logs error" not in plot.shown_html["status"]  # unfollowed: no longer current
    plot.close()


def test_a_follow_error_shows_while_current_and_clears_when_the_source_reads_again(tmp_path, caplog):
    log_file = tmp_path / "fit.csv"
    log_file.write_text("a,b\n1,2\n")  # not a known log format (yet)
    plot = LossPlot()
    follower = plot.follow(log_file, interval=0.05)
    wait_until(lambda: "following logs error" in plot.shown_html["status"])
    assert "not a known log format" in plot.shown_html["status"] and follower.current_error is not None
    log_file.write_text("epoch,loss\n" + _keras_rows(range(3)))  # fixed: read on the next poll
    wait_until(lambda: follower.current_error is None)
    wait_until(lambda: "following logs error" not in plot.shown_html["status"])
    assert "not a known log format" in str(follower.last_error)  # kept, and in the log record:
    assert [r.getMessage() for r in caplog.records if "not a known log format" in r.getMessage()]
    wait_until(lambda: len(plot.history["loss"]) == 3)
    with log_file.open("a") as f:
        f.write(_keras_rows(range(1, 2)))  # a step going back: rejected by the plot
    wait_until(lambda: "goes backwards" in plot.shown_html["status"])
    follower.stop()  # a stopped follower's error is no longer current
    assert follower.current_error is None and "following logs error" not in plot.shown_html["status"]
    plot.close()


@pytest.mark.parametrize("interval", [0, -1, float("nan"), "1", True])
def test_bad_interval(tmp_path, interval):
    plot = LossPlot()
    with pytest.raises(ValueError, match="interval must be a positive number of seconds"):
        plot.follow(tmp_path, interval=interval)
    assert not follow_threads()
    plot.close()


def test_bad_paths(tmp_path):
    plot = LossPlot()
    with pytest.raises(TypeError, match="at least one path"):
        plot.follow()
    with pytest.raises(TypeError, match="str or os.PathLike, got int"):
        plot.follow(3)
    assert not follow_threads()
    plot.close()


def test_polls_from_two_threads_hand_points_over_in_order(tmp_path):
    """``poll()`` is public and ``follow()``'s thread polls too: a second poll must wait for the
    first one's sink, or later points reach the plot first and the earlier ones are rejected."""
    log = tmp_path / "fit.csv"
    log.write_text("epoch,loss\n" + _keras_rows(range(3)))
    got: list[float] = []
    calls: list[int] = []
    second_done = threading.Event()

    def sink(batches):
        calls.append(len(calls))
        first = len(calls) == 1
        if first:
            second_done.wait(0.5)  # without a poll lock, the second poll delivers meanwhile
        got.extend(s for b in batches for s in b.steps.tolist())
        if not first:
            second_done.set()

    follower = Follower([tmp_path], sink)
    worker = threading.Thread(target=follower.poll)
    worker.start()
    time.sleep(0.1)  # the worker has read epochs 0-2 and sits in the sink
    with log.open("a") as f:
        f.write(_keras_rows(range(3, 6)))
    follower.poll()
    worker.join()
    assert got == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]


def test_close_finishes_even_when_a_follow_thread_is_stuck(tmp_path, monkeypatch):
    """A follower that does not stop in time (a poll hung on a network file system) must not
    leave the plot half closed: every widget is closed, then the TimeoutError is raised."""
    from lossviz_widget import LossPlot
    from lossviz_widget.follow import Follower

    threads = set(threading.enumerate())
    plot = LossPlot()
    follower = plot.follow(tmp_path / "not-yet", interval=0.05)
    real_stop = Follower.stop

    def stuck(self, timeout=10.0):
        real_stop(self)  # the thread really ends (no thread left behind by the test) ...
        raise TimeoutError("the follow thread did not stop within 10.0 s")  # ... but report it stuck

    monkeypatch.setattr(Follower, "stop", stuck)
    with pytest.raises(TimeoutError):
        plot.close()
    assert plot.comm is None and not follower.running and not any(t.is_alive() for t in render_threads_since(threads))
    assert all(f.comm is None for f in plot.figures.values())
