"""MLflow at scale: RUNS runs x POINTS points of one metric, read through a real ``mlflow server``.

Usage: ``nice -n 10 python benchmarks/tracking.py [--runs 50] [--points 100000]``
(writes ``benchmarks/tracking.json``; ``benchmarks/TRACKING.md`` discusses the numbers).

The fixture is written straight into the server's SQLite database (MLflow's own schema,
``metrics`` and ``latest_metrics`` tables, with ``executemany``) after the experiment and
runs are created by ``MlflowClient``: logging 5M points through the REST API
(``log_batch``, 1000 per call) takes far longer than the measurements themselves. Then:

* **load**: ``LossPlot.follow_mlflow``'s first poll, which reads every point of every run
  (what ``LossPlot.from_mlflow`` does), until the plot holds them all; and, for comparison,
  the server's own time for one run's history (a bare HTTP GET, no client);
* **memory**: bytes the plot holds per point (its history arrays) and the process' peak
  RSS growth during the load, per point;
* **follow, nothing changed**: one poll of that follower (median of 20):
  one ``search_runs`` request, no ``get_metric_history``;
* **follow, one new point per run**: 50 points logged (one per run), then one poll.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # tests/mlflow_server.py

from mlflow.tracking import MlflowClient
from mlflow_server import MlflowServer

from lossviz_widget import LossPlot
from lossviz_widget.readers.mlflow import PAGE_SIZE

ROOT = Path(__file__).resolve().parents[1]

T0_MS = 1_700_000_000_000


def write_fixture(db: Path, runs: int, points: int) -> tuple[str, list[str]]:
    """Experiment "scale" with ``runs`` runs named run-000..., each ``points`` points of "loss"."""
    client = MlflowClient(f"sqlite:///{db}")
    exp = client.create_experiment("scale")
    ids = []
    for r in range(runs):
        run = client.create_run(exp, run_name=f"run-{r:03d} seed={r % 5}", start_time=T0_MS + r)
        client.log_param(run.info.run_id, "seed", str(r % 5))
        ids.append(run.info.run_id)
    rng = np.random.default_rng(0)
    steps = np.arange(points)
    conn = sqlite3.connect(db)
    for run_id in ids:
        values = np.exp(-steps / (points / 5)) + rng.normal(0, 0.02, points)
        rows = zip(["loss"] * points, values.tolist(), (T0_MS + 10 * steps).tolist(), [run_id] * points,
                   steps.tolist(), [0] * points)
        conn.executemany("INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES (?,?,?,?,?,?)",
                         rows)
        conn.execute("INSERT OR REPLACE INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) "
                     "VALUES (?,?,?,?,?,?)", ("loss", float(values[-1]), T0_MS + 10 * (points - 1), points - 1, 0,
                                              run_id))
        conn.commit()
    conn.close()
    return exp, ids


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--points", type=int, default=100_000)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "tracking.json"))
    args = ap.parse_args()
    result: dict = {"runs": args.runs, "points_per_run": args.points, "load_average_before": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        _, ids = write_fixture(Path(tmp) / "mlflow.db", args.runs, args.points)
        result["fixture_s"] = round(time.perf_counter() - t, 1)
        server = MlflowServer(Path(tmp), port=None)
        # the server uses the fixture's database: MlflowServer puts it at root/mlflow.db
        server.start()
        try:
            rss0 = peak_rss_bytes()
            plot = LossPlot()
            t = time.perf_counter()
            follower = plot.follow_mlflow(server.url, "scale", interval=3600.0)  # its first poll reads everything
            total = args.runs * args.points
            while sum(len(plot.run(r).history["loss"]) for r in plot.runs) < total:
                assert follower.current_error is None, follower.current_error
                time.sleep(0.05)
            load_s = time.perf_counter() - t
            held = sum(h.steps.nbytes + h.values.nbytes + h.wall_time.nbytes
                       for h in (plot.run(r).history["loss"] for r in plot.runs))
            result.update(load_s=round(load_s, 1), load_points=total, load_us_per_point=round(load_s / total * 1e6, 1),
                          held_bytes_per_point=round(held / total, 2),
                          peak_rss_growth_bytes_per_point=round((peak_rss_bytes() - rss0) / total, 1))
            source = follower.sources[0]
            t = time.perf_counter()
            with urllib.request.urlopen(f"{server.url}/api/2.0/mlflow/metrics/get-history?run_id={ids[0]}"
                                        f"&metric_key=loss&max_results={PAGE_SIZE}") as response:
                response.read()
            result["server_only_us_per_point"] = round((time.perf_counter() - t) / min(PAGE_SIZE, args.points) * 1e6, 1)
            times = []
            for _ in range(20):
                requests = source.requests
                t = time.perf_counter()
                assert follower.poll() == 0
                times.append(time.perf_counter() - t)
                assert source.requests == requests  # no get_metric_history when nothing changed
            result["idle_poll_ms_median"] = round(statistics.median(times) * 1e3, 1)
            result["idle_poll_ms_max"] = round(max(times) * 1e3, 1)
            client = MlflowClient(server.url)
            for run_id in ids:
                client.log_metric(run_id, "loss", 0.0, timestamp=T0_MS + 10 * args.points, step=args.points)
            requests = source.requests
            t = time.perf_counter()
            new = follower.poll()
            result["one_new_point_per_run_poll_ms"] = round((time.perf_counter() - t) * 1e3, 1)
            result["one_new_point_per_run_requests"] = source.requests - requests
            assert new == args.runs
            plot.close()
        finally:
            server.stop()
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
