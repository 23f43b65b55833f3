"""The benchmark suite still runs: ``benchmarks/run.py --smoke`` and the table it writes.

Cheap on purpose (about 15 s): 1e3 logged steps per tool, one repeat, no browser, output in
a temporary folder (never ``benchmarks/RESULTS.md``). The real benchmark, ``bash
benchmarks/run.sh``, takes minutes and is not part of the test suite. Without livelossplot
(a benchmark-only extra that ``benchmarks/run.sh`` installs) its cells say "n/a".
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.timeout(150)


def test_benchmark_smoke_writes_the_table(tmp_path: Path) -> None:
    out, md = tmp_path / "out", tmp_path / "RESULTS.md"
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "run.py"), "--smoke", "--out", str(out), "--results", str(md)],
        cwd=REPO, capture_output=True, text=True, timeout=140,
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"
    text = md.read_text()
    table = [line for line in text.splitlines() if line.startswith("| ") and line.count("|") > 9]
    rows = {line.split("|")[2].strip(): line for line in table}
    for tool in ("**lossviz_widget**", "livelossplot", "naive bqplot loop", "bare Python loop"):
        assert tool in rows, f"no {tool} row in the side-by-side table:\n{text[:3000]}"
    assert rows["**lossviz_widget**"].startswith("| 1e3 |")
    assert "µs" in rows["**lossviz_widget**"] and "µs" in rows["bare Python loop"]
    assert "/update" in rows["naive bqplot loop"]
    assert "/update" in rows["livelossplot"] or "not installed" in rows["livelossplot"]
    tensors = next(line for line in text.splitlines() if line.startswith("| `log()` of 4 CPU tensors"))
    assert "µs per call" in tensors or "torch not installed" in tensors, tensors
    for section in ("## Targets", "## Method", "Machines are noisy", "## Reading logs"):
        assert section in text
    raw = json.loads((out / "results-smoke.json").read_text())
    lossviz = next(r for r in raw["rows"] if r["tool"] == "lossviz")
    assert lossviz["cost_s"]["value"] > 0 and lossviz["frame_bytes"]["value"] > 0


def test_readers_benchmark_smoke(tmp_path: Path) -> None:
    """``benchmarks/readers.py --smoke``: every reader reads the same files and gets the same count."""
    md = tmp_path / "READERS.md"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "readers.py"), "--smoke", "--out", str(md)],
                          cwd=REPO, capture_output=True, text=True, timeout=140)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"
    table = [line.split("|") for line in md.read_text().splitlines() if line.startswith("| TensorBoard")
             or line.startswith("| log_file")]
    readers = {cells[2].strip() for cells in table}
    assert {"**lossviz (bulk)**", "EventAccumulator", "**LossPlot.load (bulk)**", "line by line (before)"} <= readers
    for label in {cells[1] for cells in table}:  # within a file, every reader read every point
        assert len({cells[3] for cells in table if cells[1] == label}) == 1, label


def test_resmooth_benchmark_smoke() -> None:
    """``benchmarks/resmooth.py`` at a tiny size: it runs, and times every weight change."""
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "resmooth.py"), "--steps", "2000",
                           "--rounds", "1", "--before", ""], cwd=REPO, capture_output=True, text=True, timeout=140)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"
    (row,) = [line.split("|") for line in proc.stdout.splitlines() if line.startswith("| this checkout")]
    assert len(row[4].split(",")) == 3  # 0.6 -> 0.9 -> 0.95 -> 0.8: three changes timed


def test_xaxis_moves_benchmark_smoke() -> None:
    """``benchmarks/xaxis_moves.py`` for a second at 1e3 steps: it runs and writes one row per size."""
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "xaxis_moves.py"), "--sizes", "1000",
                           "--seconds", "1", "--repeats", "1"], cwd=REPO, capture_output=True, text=True, timeout=140)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"
    (row,) = [line.split("|") for line in proc.stdout.splitlines() if line.startswith("| 1,000 |")]
    assert int(row[6]) >= 5  # frames drawn (0.1 s apart)


def test_frame_probe_smoke() -> None:
    """``benchmarks/frame_probe.py`` on a short loop in a real kernel, sampling every frame past
    1 ms: it runs, reports the frames by thread and the longest, and samples the long ones."""
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "frame_probe.py"), "--runs", "1",
                           "--steps", "3e5", "--over", "0.001"], cwd=REPO, capture_output=True, text=True, timeout=140)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"
    assert "frames by thread {" in proc.stdout and "longest frame" in proc.stdout, proc.stdout
    assert "long frame at" in proc.stdout, proc.stdout


def test_memory_lock_benchmark_smoke() -> None:
    """``benchmarks/memory_lock.py`` with 16 MB: every mode runs in its own process and gets its row
    (the madvise ones measured on Linux, skipped and said so elsewhere)."""
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "memory_lock.py"), "--mb", "16", "--rounds", "1"],
                          cwd=REPO, capture_output=True, text=True, timeout=140)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"
    rows = {line.split("|")[1].strip(): line.split("|")[2:-1] for line in proc.stdout.splitlines()
            if line.startswith("| madvise") or line.startswith("| write")}
    assert set(rows) == {"madvise 2 MB", "madvise 256 KB", "write"}, proc.stdout
    assert float(rows["write"][0]) > 0 and int(rows["write"][1].replace(",", "")) >= 1  # helper rate, iterations
    if sys.platform.startswith("linux"):
        assert not any("skipped" in cell for row in rows.values() for cell in row), proc.stdout
