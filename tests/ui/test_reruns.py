"""Re-running cells in one kernel leaks no threads, comms or open files (50 re-runs).

A real kernel (ipykernel via jupyter_client) runs the same cells again and again: the cell that
makes a plot (with a log file, so it has a frame thread and an open file), and a training cell
that logs into it and restarts its steps at 0 each time (a rewind, never an exception).
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from notebook_harness import started_kernel

MAKE = """
from lossviz_widget import LossPlot
plot = LossPlot(title="re-run", log_file=f"{folder}/run{{len(__import__('os').listdir('{folder}'))}}.jsonl")
plot
"""
TRAIN = """
for step in range(200):
    plot.log(loss=1.0 / (step + 1), step=step)
plot.flush()
"""
PROBE = """
import json, os, threading, ipywidgets
def _open_files():  # an fd closed by another thread between listing and reading it is skipped
    for fd in os.listdir("/proc/self/fd"):
        try:
            yield os.readlink(f"/proc/self/fd/{{fd}}")
        except FileNotFoundError:
            pass
print("PROBE", json.dumps({{"threads": threading.active_count(), "widgets": len(ipywidgets.Widget.widgets),
       "fds": sorted(_open_files()),
       "points": len(plot.history["loss"]), "errors": plot.recorder.errors()}}))
"""


def _run(kc, code: str) -> str:
    msg_id = kc.execute(textwrap.dedent(code))
    out = []
    while True:
        msg = kc.get_iopub_msg(timeout=60)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        assert msg["msg_type"] != "error", msg["content"]
        if msg["msg_type"] == "stream" and msg["content"]["name"] == "stdout":
            out.append(msg["content"]["text"])
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return "".join(out)


def _probe(kc, folder: Path) -> dict:
    text = _run(kc, PROBE.format(folder=folder))
    return json.loads(text.split("PROBE", 1)[1].splitlines()[0])


@pytest.mark.timeout(300)
def test_fifty_reruns_leak_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "logs"
    folder.mkdir()
    counts = []
    with started_kernel(tmp_path) as (_, kc):
        for i in range(50):
            _run(kc, MAKE.format(folder=folder))
            _run(kc, TRAIN)
            _run(kc, TRAIN)  # the training cell again: steps restart at 0 (a purge, no exception)
            if i in (4, 49):
                counts.append(_probe(kc, folder))
    after5, after50 = counts
    assert after50["points"] == 200 and after50["errors"] == []
    assert after50["threads"] <= after5["threads"]  # one plot's threads, however many re-runs
    assert after50["widgets"] <= after5["widgets"]  # the earlier plots' widgets (comms) were closed
    logs = [f for f in after50["fds"] if f.endswith(".jsonl")]
    assert len(logs) == 1, logs  # the earlier plots' log files were closed
