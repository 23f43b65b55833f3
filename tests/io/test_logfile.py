"""log_file=: values streamed to disk as logged; a killed kernel loses at most the last frame."""

import contextlib
import json
import os
import signal
import textwrap
import time

import numpy as np
import pytest
from jupyter_client.manager import KernelManager
from notebook_harness import private_kernelspecs
from waiting import wait_until

from lossviz_widget import LossPlot


def lines(path):
    return path.read_text(encoding="utf-8").splitlines()


def test_streams_in_a_script_without_flush(tmp_path):
    path = tmp_path / "run.jsonl"
    plot = LossPlot(title="streamed", log_file=path)
    for i in range(200):
        plot.log(loss=1.0 / (i + 1), acc=float("nan") if i == 3 else 0.5, step=i)
    # no flush(): the frame thread writes what was logged within a frame or two
    assert wait_until(lambda: len(lines(path)) == 1 + 400)
    header = json.loads(lines(path)[0])
    assert header["format"] == "lossviz_widget.jsonl" and header["title"] == "streamed"
    plot.log(loss=0.001, step=200)
    plot.close()  # close writes the rest
    loaded = LossPlot.load(path)
    for name in ("loss", "acc"):
        for col in ("steps", "values", "wall_time"):
            np.testing.assert_array_equal(getattr(loaded.history[name], col), getattr(plot.history[name], col))
    assert loaded.title == "streamed"


def test_existing_log_is_never_overwritten_and_can_be_resumed(tmp_path):
    path = tmp_path / "run.jsonl"
    first = LossPlot(log_file=path)
    first.log(loss=1.0, step=0)
    first.close()
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match=r"already holds data; to continue that run use LossPlot\.load"):
        LossPlot(log_file=path)
    assert path.read_bytes() == before
    resumed = LossPlot.load(path, log_file=path)
    resumed.log(loss=0.5, step=1)
    resumed.close()
    again = LossPlot.load(path)
    assert again.history["loss"].steps.tolist() == [0.0, 1.0]  # no duplicates, nothing lost


def test_truncated_last_line_is_skipped_and_counted(tmp_path):
    path = tmp_path / "run.jsonl"
    plot = LossPlot(log_file=path)
    for i in range(10):
        plot.log(loss=float(i), step=i)
    plot.close()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 20])  # a write cut mid-line by a killed process
    with pytest.warns(RuntimeWarning, match="skipped 1 incomplete or corrupt line"):
        loaded = LossPlot.load(path)
    assert loaded.history["loss"].values.tolist() == [float(i) for i in range(9)]
    with pytest.warns(RuntimeWarning):
        resumed = LossPlot.load(path, log_file=path)
    resumed.log(loss=9.5, step=9)
    resumed.close()
    with pytest.warns(RuntimeWarning, match="skipped 1"):  # the cut line stays skipped; new data is intact
        assert LossPlot.load(path).history["loss"].values.tolist()[-1] == 9.5


def test_log_file_errors_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"cannot write log file '{tmp_path / 'no' / 'run.jsonl'}'"):
        LossPlot(log_file=tmp_path / "no" / "run.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"format": "other"}\n')
    with pytest.raises(ValueError, match=f"cannot load '{bad}'.*header"):
        LossPlot.load(bad)


def test_load_into_a_new_log_file_writes_the_history_first(tmp_path):
    src = LossPlot()
    for i in range(5):
        src.log(loss=float(i), step=i)
    exported = src.export(tmp_path / "run.csv")
    plot = LossPlot.load(exported, log_file=tmp_path / "continued.jsonl")
    plot.log(loss=5.0, step=5)
    plot.close()
    assert LossPlot.load(tmp_path / "continued.jsonl").history["loss"].values.tolist() == [0, 1, 2, 3, 4, 5]


TRAIN = """
import time
from lossviz_widget import LossPlot
plot = LossPlot(title="killed", log_file={path!r})
step = 0
while True:
    plot.log(loss=1.0 / (step + 1), step=step)
    if step % 50 == 0:
        print("STEP", step, flush=True)
    step += 1
    time.sleep(0.002)
"""


@pytest.mark.timeout(120)
def test_killed_kernel_loses_at_most_the_last_frame(tmp_path):
    path = tmp_path / "run.jsonl"
    km = KernelManager(kernel_name="python3", kernel_spec_manager=private_kernelspecs(tmp_path / "spec"))
    km.start_kernel(cwd=str(tmp_path))
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        kc.execute(textwrap.dedent(TRAIN.format(path=str(path))))
        last_printed = -1
        while last_printed < 500:  # training for real, in the kernel
            msg = kc.get_iopub_msg(timeout=30)
            if msg["msg_type"] == "stream":
                for line in msg["content"]["text"].splitlines():
                    if line.startswith("STEP"):
                        last_printed = int(line.split()[1])
            assert msg["msg_type"] != "error", msg["content"]
        time.sleep(0.5)  # several frames (10 fps) after that step was logged
        os.kill(km.provisioner.process.pid, signal.SIGKILL)  # no chance to flush or close
        km.provisioner.process.wait(timeout=10)
    finally:
        kc.stop_channels()
        km.cleanup_resources()
    cut = not path.read_bytes().endswith(b"\n")  # killed mid-line or between lines
    with pytest.warns(RuntimeWarning, match="skipped 1") if cut else contextlib.nullcontext():
        loaded = LossPlot.load(path)
    steps = loaded.history["loss"].steps
    assert loaded.title == "killed"
    assert steps[-1] >= last_printed  # everything logged >= 0.5 s before the kill is on disk
    np.testing.assert_array_equal(steps, np.arange(len(steps)))  # in order, no gaps, no duplicates
    np.testing.assert_array_equal(loaded.history["loss"].values, 1.0 / (steps + 1))

