"""MLflow runs, read and followed from a real ``mlflow server`` (SQLite backend) that the tests start.

Runs are logged by MLflow's own client (``mlflow.log_metric`` in subprocesses, ``MlflowClient``
in the test): every point arrives exactly once and in order, a run added mid-way appears,
a server that goes away shows in the status line and recovery resumes where it stopped.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
import time
import uuid

import numpy as np
import pytest

pytest.importorskip("mlflow")

from mlflow.entities import Metric
from mlflow.tracking import MlflowClient
from mlflow_server import MlflowServer

from lossviz_widget import LossPlot
from lossviz_widget.readers.mlflow import PAGE_SIZE, MlflowSource

pytestmark = pytest.mark.timeout(600)

LOGGER = textwrap.dedent("""
    import sys, time
    import mlflow

    uri, experiment, name, seed, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(experiment)
    with mlflow.start_run(run_name=name):
        mlflow.log_params({"lr": "0.1", "seed": seed})
        for step in range(n):
            mlflow.log_metric("loss", 1.0 / (step + 1) + seed, step=step)
            if step % 10 == 9:
                mlflow.log_metric("val_loss", 2.0 / (step + 1) + seed, step=step)
            time.sleep(0.005)
""")
N = 120  # points per logged run


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    server = MlflowServer(tmp_path_factory.mktemp("mlflow")).start()
    yield server
    server.stop()


def new_experiment(server: MlflowServer) -> tuple[MlflowClient, str, str]:
    client = MlflowClient(server.url)
    name = f"exp-{uuid.uuid4().hex[:8]}"
    return client, name, client.create_experiment(name)


def wait_until(condition, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def points(plot: LossPlot, run: str, metric: str = "loss") -> int:
    if run not in plot.runs:
        return 0
    history = plot.run(run).history
    return len(history[metric]) if metric in history else 0


def start_logger(server: MlflowServer, experiment: str, name: str, seed: int) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", LOGGER, server.url, experiment, name, str(seed), str(N)], env=env)


def test_follow_two_logging_subprocesses_and_a_run_added_midway(mlflow_server):
    name = f"exp-{uuid.uuid4().hex[:8]}"
    plot = LossPlot()
    follower = plot.follow_mlflow(mlflow_server.url, name, interval=0.2)
    wait_until(lambda: "no MLflow experiment named" in plot.shown_html["status"])  # not created yet: said, and retried
    MlflowClient(mlflow_server.url).create_experiment(name)
    procs = [start_logger(mlflow_server, name, f"lr=0.1 seed={seed}", seed) for seed in (0, 1)]
    try:
        wait_until(lambda: points(plot, "lr=0.1 seed=0") >= 20)
        seen_while_logging = procs[0].poll() is None
        procs.append(start_logger(mlflow_server, name, "lr=0.1 seed=2", 2))  # a run added mid-way
        wait_until(lambda: points(plot, "lr=0.1 seed=2") > 0)
        for p in procs:
            assert p.wait(180) == 0
        wait_until(lambda: all(points(plot, f"lr=0.1 seed={s}") == N for s in range(3)))
        time.sleep(0.6)  # a few more polls: nothing may arrive twice
    finally:
        for p in procs:
            p.kill()
    assert seen_while_logging
    assert "following logs error" not in plot.shown_html["status"]  # the experiment exists now: recovered
    assert set(plot.runs) == {f"lr=0.1 seed={s}" for s in range(3)}
    for seed in range(3):
        h = plot.run(f"lr=0.1 seed={seed}").history
        np.testing.assert_array_equal(h["loss"].steps, np.arange(N))  # every point exactly once, in order
        np.testing.assert_allclose(h["loss"].values, 1.0 / (np.arange(N) + 1) + seed, rtol=1e-12)
        np.testing.assert_array_equal(h["val_loss"].steps, np.arange(9, N, 10))
        assert np.all(np.diff(h["loss"].wall_time) >= 0) and h["loss"].wall_time[0] > 1.6e9  # MLflow's timestamps
    source = follower.sources[0]
    assert source.params["lr=0.1 seed=1"] == {"lr": "0.1", "seed": "1"}
    requests = source.requests
    follower.poll()  # nothing changed: no history is asked for
    assert source.requests == requests
    plot.close()


def test_from_mlflow_reads_every_point_of_every_run(mlflow_server):
    client, name, exp = new_experiment(mlflow_server)
    t = int(time.time() * 1000)
    big = client.create_run(exp, run_name="big").info.run_id
    n = PAGE_SIZE + 1500  # more than one page of get_metric_history
    for start in range(0, n, 1000):
        stop = min(n, start + 1000)
        client.log_batch(big, metrics=[Metric("loss", math.sin(i) + (50.0 if i == 7777 else 0.0), t + i, i)
                                       for i in range(start, stop)])
    client.set_terminated(big)
    odd = client.create_run(exp, run_name="odd").info.run_id
    entries = [(0, 1.0), (1, 2.0), (1, 3.0), (2, float("nan")), (3, float("inf")), (4, -float("inf"))]
    client.log_batch(odd, metrics=[Metric("loss", v, t + i, s) for i, (s, v) in enumerate(entries)])
    plot = LossPlot.from_mlflow(mlflow_server.url, name)
    h = plot.run("big").history["loss"]
    np.testing.assert_array_equal(h.steps, np.arange(n))
    np.testing.assert_array_equal(h.values, np.sin(np.arange(n)) + np.where(np.arange(n) == 7777, 50.0, 0.0))
    np.testing.assert_allclose(h.wall_time, (t + np.arange(n)) / 1000.0)
    o = plot.run("odd").history["loss"]
    np.testing.assert_array_equal(o.steps, [0, 1, 1, 2, 3, 4])  # several values per step: kept, in logged order
    np.testing.assert_array_equal(o.values, [1.0, 2.0, 3.0, np.nan, np.inf, -np.inf])  # MLflow's +-max back to +-inf
    assert plot.runs == ("big", "odd")  # in start order
    plot.close()
    filtered = LossPlot.from_mlflow(mlflow_server.url, name, filter_string="attributes.run_name = 'odd'")
    assert filtered.runs == ("odd",)
    filtered.close()


def test_same_names_are_told_apart_by_params_and_deleted_runs_stop(mlflow_server):
    client, name, exp = new_experiment(mlflow_server)
    ids = []
    for lr in ("0.1", "0.2"):
        run = client.create_run(exp, run_name="resnet").info.run_id
        client.log_param(run, "lr", lr)
        client.log_param(run, "epochs", "3")
        client.log_metric(run, "loss", 1.0, step=0)
        ids.append(run)
    source = MlflowSource(mlflow_server.url, name)
    batches = source.poll()
    assert sorted(b.run for b in batches) == ["resnet", "resnet (lr=0.2)"]
    assert source.params["resnet (lr=0.2)"] == {"lr": "0.2", "epochs": "3"}
    client.delete_run(ids[1])
    client.log_metric(ids[0], "loss", 0.5, step=1)
    batches = source.poll()
    assert [(b.run, b.steps.tolist()) for b in batches] == [("resnet", [1.0])]
    assert source.notes == ["MLflow run 'resnet (lr=0.2)' was deleted: no longer followed"]
    client.restore_run(ids[1])
    client.log_metric(ids[1], "loss", 0.7, step=1)
    assert [(b.run, b.steps.tolist()) for b in source.poll()] == [("resnet (lr=0.2)", [1.0])]
    assert source.notes[-1] == "MLflow run 'resnet (lr=0.2)' was restored: followed again"


def test_incremental_reads_ask_for_new_steps_only_and_find_late_values_at_the_last_step(mlflow_server):
    """After the first read, a poll asks for the steps from the last one shown on, for every changed
    run in one request; values logged later at the last step shown still arrive, once."""
    client, name, exp = new_experiment(mlflow_server)
    t = int(time.time() * 1000)
    runs = [client.create_run(exp, run_name=f"r{i}").info.run_id for i in range(3)]
    for run in runs:
        client.log_batch(run, metrics=[Metric("loss", float(i), t + i, i) for i in range(5000)])
    source = MlflowSource(mlflow_server.url, name)
    assert [len(b) for b in source.poll()] == [5000] * 3
    requests = source.requests
    for run in runs:
        client.log_batch(run, metrics=[Metric("loss", 7.0, t + 9000, 4999), Metric("loss", 1.0, t + 9001, 5000)])
    batches = source.poll()
    assert source.requests == requests + 1  # three runs, one request
    assert [(b.steps.tolist(), b.values.tolist()) for b in batches] == [([4999.0, 5000.0], [7.0, 1.0])] * 3
    client.log_metric(runs[0], "loss", 2.0, timestamp=t + 9500, step=4000)  # below the last step shown
    client.log_metric(runs[0], "loss", 3.0, timestamp=t + 9600, step=5001)
    assert [(b.run, b.steps.tolist()) for b in source.poll()] == [("r0", [5001.0])]
    assert source.poll() == []


def test_a_run_far_ahead_is_read_whole_rather_than_sampled(mlflow_server):
    """More new entries than the range endpoint returns unsampled (2,500 per run): read whole instead."""
    client, name, exp = new_experiment(mlflow_server)
    t = int(time.time() * 1000)
    run = client.create_run(exp, run_name="fast").info.run_id
    client.log_metric(run, "loss", 0.0, timestamp=t, step=0)
    source = MlflowSource(mlflow_server.url, name)
    assert len(source.poll()[0]) == 1
    for start in range(1, 3001, 1000):
        client.log_batch(run, metrics=[Metric("loss", float(i), t + i, i) for i in range(start, start + 1000)])
    (batch,) = source.poll()
    np.testing.assert_array_equal(batch.steps, np.arange(1, 3001))


def test_server_that_goes_away_shows_in_the_status_line_and_recovers(tmp_path):
    server = MlflowServer(tmp_path / "server").start()
    try:
        client, name, exp = new_experiment(server)
        run = client.create_run(exp, run_name="r").info.run_id
        client.log_batch(run, metrics=[Metric("loss", float(i), 1_700_000_000_000 + i, i) for i in range(10)])
        plot = LossPlot()
        plot.follow_mlflow(server.url, name, interval=0.2)
        wait_until(lambda: points(plot, "r") == 10)
        server.stop()
        wait_until(lambda: "not reachable" in plot.shown_html["status"])
        server.start()
        client.log_batch(run, metrics=[Metric("loss", float(i), 1_700_000_000_000 + i, i) for i in range(10, 15)])
        wait_until(lambda: points(plot, "r") == 15)
        wait_until(lambda: "not reachable" not in plot.shown_html["status"])
        np.testing.assert_array_equal(plot.run("r").history["loss"].steps, np.arange(15))
        plot.close()
    finally:
        server.stop()


def test_bad_arguments_raise_before_any_request():
    with pytest.raises(TypeError, match="exactly one"):
        MlflowSource("http://127.0.0.1:1")
    with pytest.raises(TypeError, match="experiment must be a str"):
        MlflowSource("http://127.0.0.1:1", 3)  # type: ignore[arg-type]


def test_a_server_that_is_not_there_fails_fast():
    start = time.monotonic()
    with pytest.raises(ConnectionError, match="not reachable"):
        LossPlot.from_mlflow("http://127.0.0.1:9", "x")
    assert time.monotonic() - start < 10  # not MLflow's minutes of retries


def test_a_local_sqlite_store_without_a_server(tmp_path):
    """Any tracking URI MLflow's client takes: here its SQL store, read through the store's own paged call."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp = client.create_experiment("local")
    run = client.create_run(exp, run_name="r").info.run_id
    client.log_batch(run, metrics=[Metric("loss", 1.0 / (i + 1), 1_700_000_000_000 + i, i) for i in range(50)]
                     + [Metric("loss", float("nan"), 1_700_000_000_050, 50)])
    source = MlflowSource(uri, "local")
    (batch,) = source.poll()
    np.testing.assert_array_equal(batch.steps, np.arange(51))
    np.testing.assert_array_equal(batch.values[:50], 1.0 / (np.arange(50) + 1))
    assert np.isnan(batch.values[50])
    client.log_metric(run, "loss", 0.5, timestamp=1_700_000_000_100, step=51)
    assert [b.steps.tolist() for b in source.poll()] == [[51.0]]
