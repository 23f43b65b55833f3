"""No frontend required: LossPlot works in a plain script and in a kernel with no browser.

* Plain ``python`` (no kernel, no browser): logging, ``flush()`` and ``history`` work,
  no render thread is started, and the process exits promptly whether or not the
  plot was closed.
* A real kernel driven by nbclient (no browser attached): logging and ``flush()``
  work, a frame still goes out after logging stops, ``close()`` stops the render
  thread, and the kernel shuts down promptly even with a plot left open.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import nbformat
import pytest
from notebook_harness import cell_text, run_notebook

EXIT_TIMEOUT_S = 60  # generous for a loaded CI box; a healthy run takes ~2 s

SCRIPT = textwrap.dedent(
    """
    import json, threading, time
    import numpy as np
    from lossviz_widget import LossPlot

    t0 = time.perf_counter()
    plot = LossPlot(title="script mode", smoothing=0.6)
    n = 3000
    rng = np.random.default_rng(0)
    loss = np.exp(-np.arange(n) / 500.0) + 0.05 * rng.random(n)
    loss[::250] = np.nan          # 12 NaNs, the first at step 0
    loss[7] = np.inf
    for i in range(n):
        plot.log(loss=loss[i], step=i)                       # NumPy scalars
        if i % 100 == 0:
            plot.log({"val/loss": float(loss[i]) * 1.1}, step=i)
    plot.log(lr=1e-3)                                        # implicit step: largest + 1
    plot.flush()
    plot.flush()                                             # idempotent
    h = plot.history
    main = threading.main_thread()
    out = {
        "names": list(h),
        "n_loss": len(h["loss"]),
        "n_val": len(h["val/loss"]),
        "nan": int(np.isnan(h["loss"].values).sum()),
        "inf": int(np.isinf(h["loss"].values).sum()),
        "exact": bool(np.array_equal(h["loss"].values, loss, equal_nan=True)),
        "steps": bool(np.array_equal(h["loss"].steps, np.arange(n))),
        "wall_sorted": bool(np.all(np.diff(h["loss"].wall_time) >= 0)),
        "lr_step": float(h["lr"].steps[-1]),
        "threads": sorted(t.name for t in threading.enumerate()),
        "non_daemon": sorted(t.name for t in threading.enumerate() if t is not main and not t.daemon),
        "elapsed": time.perf_counter() - t0,
    }
    print("RESULT " + json.dumps(out), flush=True)
    """
)


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JPY_", "JUPYTER_", "IPY"))}
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.mark.parametrize("ending", ["", "plot.close()"], ids=["left-open", "closed"])
@pytest.mark.parametrize("how", ["-c", "file"])
def test_plain_script_logs_flushes_and_exits(tmp_path, how, ending):
    source = SCRIPT + ending + "\n"
    if how == "file":
        script = tmp_path / "train.py"
        script.write_text(source)
        argv = [sys.executable, str(script)]
    else:
        argv = [sys.executable, "-c", source]
    started = time.perf_counter()
    try:
        proc = subprocess.run(
            argv, cwd=tmp_path, env=_clean_env(), stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=EXIT_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"script did not exit within {EXIT_TIMEOUT_S} s (hang?); stderr:\n{exc.stderr}")
    took = time.perf_counter() - started
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    assert line is not None, proc.stdout + proc.stderr
    out = json.loads(line[len("RESULT "):])

    assert out["names"] == ["loss", "val/loss", "lr"]
    assert out["n_loss"] == 3000 and out["n_val"] == 30
    assert out["nan"] == 12 and out["inf"] == 1
    assert out["exact"] and out["steps"] and out["wall_sorted"]
    assert out["lr_step"] == 3000.0
    assert "lossviz-render" not in out["threads"], f"a render thread was started outside a kernel: {out['threads']}"
    assert out["non_daemon"] == [], f"non-daemon threads would delay exit: {out['non_daemon']}"
    # Exiting after the work is done is immediate: no waiting on threads or frames.
    assert took - out["elapsed"] < EXIT_TIMEOUT_S / 2, f"process took {took:.1f} s, its work {out['elapsed']:.1f} s"
    assert "Traceback" not in proc.stderr, proc.stderr


KERNEL_CELLS = [
    # 0: display
    """
    import threading, time
    import numpy as np
    from lossviz_widget import LossPlot

    plot = LossPlot(title="kernel, no browser", fps=20)
    plot
    """,
    # 1: log a few thousand values (with NaN) while nobody is watching, then flush
    """
    n = 3000
    values = np.linspace(2.0, 0.1, n)
    values[::500] = np.nan
    t0 = time.perf_counter()
    for i, v in enumerate(values):
        plot.log(loss=v, acc=1.0 - v / 2.0, step=i)
    log_s = time.perf_counter() - t0
    plot.flush()
    h = plot.history["loss"]
    assert len(h) == n and int(np.isnan(h.values).sum()) == 6, (len(h), np.isnan(h.values).sum())
    assert np.array_equal(h.values, values, equal_nan=True)
    print("LOG_S", log_s)
    print("RENDER_THREADS", sum(t.name == "lossviz-render" for t in threading.enumerate()))
    """,
    # 2: one more value and no flush: the render thread still sends a (trailing) frame
    """
    plot.log(loss=0.05, step=n)
    time.sleep(1.0)
    print("LEN", len(plot.history["loss"]))
    """,
    # 3: close() stops the render thread
    """
    plot.close()
    print("AFTER_CLOSE", sorted(t.name for t in threading.enumerate()))
    """,
    # 4: a second plot left open (with a live render thread) when the kernel shuts down
    """
    other = LossPlot(title="left open")
    for i in range(500):
        other.log(loss=1.0 / (i + 1), step=i)
    print("OPEN_THREADS", sum(t.name == "lossviz-render" for t in threading.enumerate()))
    other
    """,
]


def test_kernel_without_browser(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(textwrap.dedent(c).strip()) for c in KERNEL_CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    run = run_notebook(nb, tmp_path, cell_timeout=60)

    for i, cell in enumerate(run.nb.cells):
        assert not [o for o in cell.outputs if o.output_type == "error"], f"cell {i} failed"
        busy, idle = run.cell_spans[i]
        assert idle - busy < 30, f"cell {i} took {idle - busy:.1f} s"

    out1 = cell_text(run.nb.cells[1])
    fields = dict(line.split(" ", 1) for line in out1.splitlines())
    assert float(fields["LOG_S"]) < 5.0, f"logging 6,000 values took {fields['LOG_S']} s"
    assert fields["RENDER_THREADS"] == "1", out1  # in a kernel the plot renders in the background

    # The trailing frame: the plot's lines got an update during cell 2 without flush().
    assert run.curve_messages(2), "no frame was sent after logging stopped"
    assert "LEN 3001" in cell_text(run.nb.cells[2])

    assert "lossviz-render" not in cell_text(run.nb.cells[3]), cell_text(run.nb.cells[3])
    assert "OPEN_THREADS 1" in cell_text(run.nb.cells[4])
    # A plot left open must not keep the kernel alive (the manager would wait 30 s, then kill).
    assert run.shutdown_s < 10.0, f"kernel took {run.shutdown_s:.1f} s to shut down"
