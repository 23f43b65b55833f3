"""Mapping the memory of long columns' next rows ahead of the writes (``prefault_ahead``) never
changes a byte: not what was written before, nor what another thread writes meanwhile."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import lossviz_widget
from lossviz_widget import Recorder
from lossviz_widget._core import buffers
from lossviz_widget._core.buffers import prefault_ahead


def test_mapping_ahead_keeps_what_is_written_before_and_meanwhile():
    a = np.empty(1 << 21)
    n = 1 << 17
    a[:n] = np.arange(n) * 0.5  # written before
    done = prefault_ahead([a], n)
    a[n : 2 * n] = -np.arange(n)  # written while the helper maps the same memory
    if done is not None:  # None: nothing to map on this platform (not Linux): the writes fault as before
        assert done.wait(10)
    a[2 * n : 3 * n] = 7.0  # written into memory mapped ahead
    np.testing.assert_array_equal(a[:n], np.arange(n) * 0.5)
    np.testing.assert_array_equal(a[n : 2 * n], -np.arange(n))
    np.testing.assert_array_equal(a[2 * n : 3 * n], 7.0)

def test_a_short_column_is_not_mapped_ahead():
    assert prefault_ahead([np.empty(buffers.PREFAULT_FROM - 1)], 0) is None

@pytest.mark.parametrize("live", [False, True])
def test_a_long_run_logged_while_its_columns_are_mapped_ahead_holds_exactly_what_was_logged(monkeypatch, live):
    """Columns from 64 rows on are mapped ahead at every bulk move and frame (many small jobs
    racing the writes): the history is still exactly what was logged."""
    monkeypatch.setattr(buffers, "PREFAULT_FROM", 64)
    rec = Recorder()
    if live:
        rec.attach_view(lambda frame, findings: 1, live=True)
    n = 300_000
    values = np.sin(np.arange(n) * 0.001)
    for i in range(n):
        v = float(values[i])
        rec.log(loss=v, acc=v * 0.5, step=i)
    rec.flush()
    h = rec.history
    np.testing.assert_array_equal(h["loss"].values, values)
    np.testing.assert_array_equal(h["acc"].values, values * 0.5)
    np.testing.assert_array_equal(h["acc"].steps, np.arange(n))
    rec.close()


def test_a_long_run_left_open_at_interpreter_exit_closes_quietly(tmp_path):
    """A plot closed by its finalizer while the interpreter shuts down still snapshots its columns
    (and asks to map them ahead): that must neither import (``ndarray.ctypes`` did) nor fail."""
    script = tmp_path / "train.py"
    script.write_text(
        "from lossviz_widget import LossPlot\n"
        "plot = LossPlot()\n"
        "for i in range(300_000):\n"
        "    plot.log(loss=1.0 / (i + 1), acc=0.5, step=i)\n"
        "plot.flush()\n"
        "for i in range(300_000, 400_000):\n"
        "    plot.log(loss=1.0 / (i + 1), acc=0.5, step=i)\n"
    )
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(Path(lossviz_widget.__file__).parents[1])})
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
