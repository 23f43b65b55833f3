"""DistributedLogger against real ``torch.distributed``: two ``gloo`` ranks on the CPU.

The job (tests/ddp_worker.py) runs once per module; each rank logs different values
and writes what it saw to JSON. Rank 0 must hold the exact reductions, rank 1 no plot
and no widget; a mismatch must raise on both ranks instead of hanging (the processes
run under a timeout).
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("torch.distributed")
import torch
import torch.distributed as dist

from lossviz_widget.distributed import DistributedLogger

WORKER = Path(__file__).with_name("ddp_worker.py")
ROOT = WORKER.parents[2]
WORLD = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    """Run the 2-rank job; returns each rank's JSON report (fails, not hangs, after 120 s)."""
    if not dist.is_available():
        pytest.skip("torch.distributed is not available in this build")
    out = tmp_path_factory.mktemp("ddp")
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    port = str(_free_port())
    procs = [subprocess.Popen([sys.executable, str(WORKER), str(r), str(WORLD), port, str(out)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for r in range(WORLD)]
    logs = []
    try:
        for p in procs:
            logs.append(p.communicate(timeout=120)[0])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for r, p in enumerate(procs):
        assert p.returncode == 0, f"rank {r} exited with {p.returncode}:\n{logs[r]}"
    return [json.loads((out / f"rank{r}.json").read_text(encoding="utf-8")) for r in range(WORLD)]


def _values(series: dict) -> np.ndarray:
    return np.array([float(v) for v in series["values"]])  # "nan"/"inf" strings back to floats


def _check(series: dict, steps, expected) -> None:
    np.testing.assert_array_equal(series["steps"], steps)
    np.testing.assert_array_equal(_values(series), np.asarray(expected, dtype=float))  # NaN == NaN here


def test_rank0_holds_the_exact_means(ranks):
    r0 = ranks[0]
    assert (r0["rank"], r0["world_size"], r0["plotting"]) == (0, WORLD, True)
    steps = [10 * s for s in range(5)]
    # what each rank logged (tests/ddp_worker.py), reduced here independently
    loss = [[(1.0 + 2 * r) * (s + 1) if not (r == 1 and s == 2) else math.nan for s in range(5)] for r in range(WORLD)]
    acc = [[math.inf if (r == 0 and s == 3) else 0.1 * r + s for s in range(5)] for r in range(WORLD)]
    _check(r0["mean"]["loss"], steps, (np.array(loss[0]) + np.array(loss[1])) / 2)
    _check(r0["mean"]["acc"], steps, (np.array(acc[0]) + np.array(acc[1])) / 2)
    assert _values(r0["mean"]["loss"])[2] != _values(r0["mean"]["loss"])[2], "a NaN on one rank must stay NaN"
    assert _values(r0["mean"]["acc"])[3] == math.inf
    assert list(r0["mean"]) == ["loss", "acc"], "rank 0's own metric order is kept"


def test_sum_max_min_keep_non_finite_values(ranks):
    r0 = ranks[0]
    nan, inf = math.nan, math.inf
    # pairs (rank 0, rank 1): (1, 5), (nan, 2), (inf, 3), (-inf, inf), (-2.5, nan)
    _check(r0["sum"]["x"], range(5), [6.0, nan, inf, nan, nan])
    _check(r0["max"]["x"], range(5), [5.0, nan, inf, inf, nan])
    _check(r0["min"]["x"], range(5), [1.0, nan, 3.0, -inf, nan])


def test_other_ranks_never_build_a_plot_or_widget(ranks):
    r1 = ranks[1]
    assert (r1["rank"], r1["plotting"]) == (1, False)
    assert r1["made"] == [], "make_plot was called on rank 1"
    assert r1["widgets"] == 0, "rank 1 created ipywidgets widgets"
    assert all(r1[k] is None for k in ("mean", "sum", "max", "min", "checked", "many"))
    assert ranks[0]["made"] == ["mean", "sum", "max", "min", "checked", "many"]  # one plot each, lazily
    assert ranks[0]["widgets"] > 0


def test_mismatched_names_raise_on_every_rank(ranks):
    for r, report in enumerate(ranks):
        err = report["errors"]["names"]
        assert err.startswith("RuntimeError: DistributedLogger.log: the ranks did not log the same metrics"), err
        assert ("['loss']" if r == 0 else "['lost']") in err


def test_a_bad_value_on_one_rank_raises_on_every_rank(ranks):
    assert ranks[1]["errors"]["value"] == ("TypeError: metric 'loss': expected a number or a scalar tensor, "
                                           "got str 'oops'")
    assert ranks[0]["errors"]["value"].startswith("RuntimeError: DistributedLogger.log:")


def test_failed_calls_log_nothing_and_the_group_stays_usable(ranks):
    _check(ranks[0]["checked"]["loss"], [1.0], [7.5])


def test_more_metrics_than_one_chunk(ranks):
    many = ranks[0]["many"]
    assert list(many) == [f"m{i:02d}" for i in range(70)]
    for i in range(70):
        _check(many[f"m{i:02d}"], [0.0], [(i + 100.0 + i) / 2])


# -- without a process group: a plain single-process logger -----------------------------------


def test_without_a_process_group_it_logs_as_given():
    assert not dist.is_initialized()
    logger = DistributedLogger(reduce="max")
    assert (logger.rank, logger.world_size, logger.plotting) == (0, 1, True)
    logger.log({"loss": torch.tensor(0.5)}, acc=float("nan"), step=3)
    logger.log(loss=0.25, acc=1.0)
    h = logger.plot.history
    np.testing.assert_array_equal(h["loss"].steps, [3.0, 4.0])
    np.testing.assert_array_equal(h["loss"].values, [0.5, 0.25])
    assert math.isnan(h["acc"].values[0])
    with pytest.raises(TypeError, match="metric 'loss': expected a number"):
        logger.log(loss="x", acc=1.0)
    with pytest.raises(ValueError, match="step must be finite"):
        logger.log(loss=1.0, acc=1.0, step=float("nan"))
    assert len(logger.plot.history["loss"]) == 2, "a rejected call logs nothing"
    logger.close()


def test_plot_is_built_lazily_by_make_plot():
    from lossviz_widget import LossPlot

    made = []
    logger = DistributedLogger(lambda: made.append(1) or LossPlot(title="t"))
    assert made == []
    assert logger.plot.title == "t" and logger.plot is logger.plot and made == [1]
    logger.close()


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"reduce": "avg"}, ValueError, "reduce must be one of 'mean', 'sum', 'max', 'min'; got 'avg'"),
    ({"make_plot": "plot"}, TypeError, "make_plot must be a callable"),
])
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        DistributedLogger(**kwargs)


@pytest.mark.parametrize(("args", "kwargs", "error", "match"), [
    ((), {}, TypeError, "needs at least one metric"),
    (([1.0],), {}, TypeError, "takes a mapping"),
    (({"loss": 1.0},), {"loss": 2.0}, ValueError, "given both"),
    (({1: 1.0},), {}, TypeError, "metric names must be str"),
])
def test_bad_log_calls(args, kwargs, error, match):
    from lossviz_widget import LossPlot

    made = []
    logger = DistributedLogger(lambda: made.append(1) or LossPlot())
    with pytest.raises(error, match=match):
        logger.log(*args, **kwargs)
    assert made == []  # no plot was made for a call that failed


def test_importing_the_module_does_not_import_torch():
    code = "import sys, lossviz_widget.distributed; print('torch' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr
