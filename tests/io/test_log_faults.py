"""``log_file=`` never lies, and ``log()`` refuses up front what would break a file later.

The failing disk is real: a subprocess lowers its own ``RLIMIT_FSIZE`` (writes past it fail with
``EFBIG``, as on a full disk), logs, then raises the limit again ("the disk was freed").
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lossviz_widget import LossPlot, Recorder

REPO = Path(__file__).resolve().parents[2]

FULL_DISK = """
import json, resource, signal, sys, warnings
import numpy as np
from lossviz_widget import LossPlot
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of killing
path = sys.argv[1]
plot = LossPlot(log_file=path)
for i in range(100):
    plot.log(loss=float(i), step=i)
plot.flush()
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (len(open(path, "rb").read()) + 2000, hard))  # the disk fills up
for i in range(100, 3200):
    plot.log(loss=float(i), step=i)  # log() goes on, fast, without an exception
plot.flush()
full = {"errors": plot.recorder.errors(), "held": len(plot.history["loss"])}
from lossviz_widget._io.logfile import read_log
from pathlib import Path
on_disk = read_log(Path(path))
full["on_disk"] = on_disk.runs["default"]["loss"].steps.tolist()
full["skipped"] = on_disk.skipped_lines
resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))  # freed
plot.log(loss=3200.0, step=3200)
plot.flush()
full["errors_after"] = plot.recorder.errors()
plot.close()
print(json.dumps(full))
"""


def test_a_failed_write_is_reported_retried_and_leaves_no_hole(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(FULL_DISK), str(path)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["held"] == 3200  # every point stays in memory
    assert len(out["errors"]) == 1 and "write failed" in out["errors"][0] and "retried every frame" in out["errors"][0]
    # cut back: no partial frame, no torn line; a first small frame may still fit under the limit
    assert out["on_disk"] == list(range(len(out["on_disk"]))) and len(out["on_disk"]) >= 100 and out["skipped"] == 0
    assert out["errors_after"] == []  # the status line clears once a write works again
    loaded = LossPlot.load(path)
    assert loaded.history["loss"].steps.tolist() == list(range(3201))  # no hole, no duplicate
    assert loaded.history["loss"].values.tolist() == [float(i) for i in range(3201)]


@pytest.mark.parametrize("name", ["run.csv", "run.json", "run", "run.npz"])
def test_log_file_suffix_is_refused_up_front(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match=r"its name must end in '\.jsonl'.*call export\(\) at the end"):
        LossPlot(log_file=tmp_path / name)
    assert not (tmp_path / name).exists()


def test_unencodable_names_are_refused_at_log_and_nothing_is_logged() -> None:
    rec = Recorder()
    rec.log(loss=1.0, step=0)
    with pytest.raises(ValueError, match=r"metric name 'acc\\udc80' cannot be encoded as UTF-8"):
        rec.log({"loss": 2.0, "acc\udc80": 1.0}, step=1)
    with pytest.raises(ValueError, match="metric name .* cannot be encoded"):
        rec.extend("x\ud800", [0], [1.0])
    with pytest.raises(ValueError, match="run name .* cannot be encoded"):
        rec.log(loss=1.0, run="r\udfff")
    assert rec.history["loss"].values.tolist() == [1.0] and rec.runs == ("default",)


@pytest.mark.parametrize("step", [2**53 + 1, np.int64(2**53 + 1), -(2**53) - 1])
def test_steps_float64_cannot_hold_are_refused(step: object) -> None:
    rec = Recorder()
    rec.log(loss=1.0, step=0)
    with pytest.raises(ValueError, match="cannot be stored exactly as a float64"):
        rec.log(loss=2.0, step=step)
    with pytest.raises(ValueError, match="metric 'loss': steps such as .* cannot be stored exactly"):
        rec.extend("loss", [1, step], [1.0, 2.0])
    rec.log(loss=3.0, step=2**60)  # large but exact: fine
    assert rec.history["loss"].steps.tolist() == [0.0, 2.0**60]


@pytest.mark.parametrize("value", [np.datetime64("2020-01-01"), np.timedelta64(5, "s")])
def test_value_errors_name_the_metric(value: object) -> None:
    with pytest.raises(TypeError, match="metric 'val_loss': cannot log"):
        Recorder().log(loss=1.0, val_loss=value)


def test_csv_through_pandas_loads(tmp_path: Path) -> None:
    plot = LossPlot()
    for i in range(5):
        plot.log(loss=1.0 / (i + 1), acc=i / 5, step=i)
    exported = plot.export(tmp_path / "run.csv")
    table = pd.read_csv(exported)[["wall_time", "value", "step", "metric", "run"]]
    table["note"] = "x"
    table.to_csv(tmp_path / "pandas.csv")  # an index column first, columns reordered, one added
    loaded = LossPlot.load(tmp_path / "pandas.csv")
    for name in ("loss", "acc"):
        np.testing.assert_array_equal(loaded.history[name].values, plot.history[name].values)
        np.testing.assert_array_equal(loaded.history[name].wall_time, plot.history[name].wall_time)
