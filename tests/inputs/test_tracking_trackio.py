"""trackio projects written by trackio itself (in subprocesses, into a temporary TRACKIO_DIR), read
once and followed while a run is being logged; the database is only ever opened read-only."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

pytest.importorskip("trackio")

from lossviz_widget import LossPlot

pytestmark = pytest.mark.timeout(300)

WRITER = textwrap.dedent("""
    import math, sys, time
    import trackio

    project, name, seed, n, pause = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
    trackio.init(project=project, name=name, config={"lr": 0.1, "seed": seed})
    for step in range(n):
        row = {"loss": 1.0 / (step + 1) + seed}
        if step == 5:
            row["loss"] = float("nan")
        if step % 10 == 9:
            row["val_loss"] = 2.0 / (step + 1) + seed
        trackio.log(row, step=step)
        time.sleep(pause)
    trackio.finish()
""")


def write(tmp_path, name: str, seed: int, n: int, pause: float = 0.0) -> subprocess.Popen:
    env = {**os.environ, "TRACKIO_DIR": str(tmp_path), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", WRITER, "proj", name, str(seed), str(n), str(pause)], env=env,
                            stdout=subprocess.DEVNULL)


def expected_loss(n: int, seed: int) -> np.ndarray:
    v = 1.0 / (np.arange(n) + 1) + seed
    v[5] = np.nan
    return v


def test_from_trackio_reads_every_run(tmp_path):
    for seed in (0, 1):
        assert write(tmp_path, f"seed={seed}", seed, 40).wait(120) == 0
    db = tmp_path / "proj.db"
    before = db.read_bytes()
    plot = LossPlot.from_trackio(db_path=db)
    assert plot.runs == ("seed=0", "seed=1")
    for seed in (0, 1):
        h = plot.run(f"seed={seed}").history
        np.testing.assert_array_equal(h["loss"].steps, np.arange(40))
        np.testing.assert_array_equal(h["loss"].values, expected_loss(40, seed))  # "NaN" in trackio's JSON: NaN
        np.testing.assert_array_equal(h["val_loss"].steps, np.arange(9, 40, 10))
        assert h["loss"].wall_time[0] > 1.6e9  # trackio's ISO timestamps, as epoch seconds
    assert db.read_bytes() == before  # read-only
    plot.close()
    # by project name, where trackio keeps it (trackio reads TRACKIO_DIR when imported: a fresh process)
    code = "from lossviz_widget import LossPlot; print(LossPlot.from_trackio('proj').runs)"
    env = {**os.environ, "TRACKIO_DIR": str(tmp_path), "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, "-c", code], check=False, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.strip() == "('seed=0', 'seed=1')", out.stderr

def test_follow_trackio_while_a_run_is_logged(tmp_path):
    db = tmp_path / "proj.db"
    plot = LossPlot()
    follower = plot.follow_trackio(db_path=db, interval=0.1)  # no database yet: nothing, no error
    proc = write(tmp_path, "live", 3, 150, pause=0.01)
    try:
        deadline = time.monotonic() + 120
        while not ("live" in plot.runs and len(plot.run("live").history["loss"]) >= 20):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert proc.poll() is None  # points arrived while the run was being logged
        assert proc.wait(120) == 0
        while len(plot.run("live").history["loss"]) < 150:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.3)
    finally:
        proc.kill()
    h = plot.run("live").history
    np.testing.assert_array_equal(h["loss"].steps, np.arange(150))  # each row exactly once, in order
    np.testing.assert_array_equal(h["loss"].values, expected_loss(150, 3))
    assert follower.current_error is None
    assert follower.sources[0].params["live"] == {"lr": "0.1", "seed": "3"}
    plot.close()


def test_missing_database():
    with pytest.raises(FileNotFoundError, match="no trackio database"):
        LossPlot.from_trackio(db_path="/nonexistent/x.db")
    with pytest.raises(TypeError, match="exactly one"):
        LossPlot.from_trackio()
