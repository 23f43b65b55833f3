"""Reading logs: lossviz_widget's bulk readers beside TensorBoard's own and the line-by-line ones.

Usage: ``nice -n 10 python benchmarks/readers.py [--quick | --smoke] [--out FILE.md]``
(default writes ``benchmarks/READERS.md``; ``--quick``: the smaller sizes only).

Every reader reads the same files, written by the real writers: TensorBoard event files from
``torch.utils.tensorboard.SummaryWriter`` (4 scalars per step: ``loss``, ``val_loss``, ``acc``,
``lr``) and ``log_file=`` logs from ``LossPlot`` (the same 4 metrics; a "point lines" log flushed
every 16 steps, as a loop of a few hundred steps/s writes it, and a "chunk lines" log flushed every
5,000 steps, as a fast loop writes it). Each reader runs ``--repeats`` times in one process, side
by side (A, B, C, A, B, C, ...), after one untimed warm-up read so that imports are not timed; the
table gives the median, the fastest and the slowest run, and scalars (points) per second on the
median. One core: the readers are single-threaded, and nothing else runs in the process.

TensorBoard readers:

* **lossviz (bulk)**: ``lossviz_widget.readers.read_logs`` (CRC32C of every record checked), and
  with ``check_crc=False``;
* **record by record**: TensorBoard's ``LegacyEventFileLoader`` and ``Event`` protos, one record at
  a time (what ``read_logs`` did before; its CRC checks are the pure-Python ones TensorBoard ships);
* **EventAccumulator**: ``tensorboard.backend.event_processing.event_accumulator.EventAccumulator``
  with every scalar kept (``size_guidance={"scalars": 0}``), ``Reload()`` then ``Scalars(tag)``
  for each tag: what TensorBoard itself and most scripts use.

``log_file`` readers: ``LossPlot.load``'s ``read_log`` and the follower's first poll (bulk), the
same ``read_log`` of an earlier revision (``--before``, default the last commit whose reader
scanned point lines with NumPy and parsed their numbers with orjson, before msgspec; its
``lossviz_widget`` taken with ``git archive`` and imported apart), and the line-by-line reader
they replaced (one ``parse_record`` per line). At least 7 interleaved repeats of each.

The section ends with the issue's targets and a verdict for each.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
METRICS = ("loss", "val_loss", "acc", "lr")
BEFORE = "a8360ea"  # the log reader before msgspec decoded its point lines (NumPy byte scanning + orjson)


def write_event_file(folder: Path, steps: int) -> Path:
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(folder, max_queue=100_000, flush_secs=100_000) as w:
        for i in range(steps):
            w.add_scalar("loss", 1.0 / (i + 1) + 0.01 * ((i * 7919) % 13), i)
            w.add_scalar("val_loss", 2.0 / (i + 1), i)
            w.add_scalar("acc", i / steps, i)
            w.add_scalar("lr", 0.1 * 0.5 ** (i // 10_000), i)
    (path,) = folder.glob("*tfevents*")
    return path


def write_log(path: Path, steps: int, flush_every: int) -> Path:
    from lossviz_widget import LossPlot

    plot = LossPlot(log_file=path)
    for i in range(steps):
        plot.log(loss=1.0 / (i + 1), val_loss=2.0 / (i + 1), acc=i / steps, lr=0.1, step=i)
        if (i + 1) % flush_every == 0:
            plot.flush()
    plot.close()
    return path


def lossviz_tb(path: Path, check_crc: bool = True) -> int:
    from lossviz_widget.readers.tensorboard import TensorBoardTail

    return sum(len(b) for b in TensorBoardTail(path, "run", check_crc=check_crc).poll())


def record_by_record(path: Path) -> int:
    """The reader before the bulk one: TensorBoard's loader and protos, one record at a time."""
    from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader

    columns: dict[str, tuple[list[float], list[float], list[float]]] = {}
    for event in LegacyEventFileLoader(str(path)).Load():
        if event.HasField("summary"):
            for value in event.summary.value:
                if value.WhichOneof("value") == "simple_value":
                    s, v, w = columns.setdefault(value.tag, ([], [], []))
                    s.append(float(event.step))
                    v.append(value.simple_value)
                    w.append(event.wall_time)
    return _as_arrays(columns)


def _as_arrays(columns: dict) -> int:
    """Columns of lists made float64 arrays, as a reader hands them over; the points they hold."""
    arrays = [np.array(col, dtype=np.float64) for cols in columns.values() for col in cols]
    return sum(len(a) for a in arrays[0::3])


def event_accumulator(path: Path) -> int:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(path), size_guidance={"scalars": 0})
    acc.Reload()
    return sum(len(acc.Scalars(tag)) for tag in acc.Tags()["scalars"])


def lossviz_load(path: Path) -> int:
    from lossviz_widget._io.logfile import read_log

    return sum(len(h) for metrics in read_log(path).runs.values() for h in metrics.values())


def read_log_at(rev: str, into: Path) -> Callable[[Path], int] | None:
    """``read_log`` of revision ``rev`` as a reader (None outside a git checkout, or if ``rev``
    is unknown): its ``lossviz_widget`` extracted under ``into`` and imported under the same
    name, then this checkout's modules put back (the old functions keep their own)."""
    try:
        archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "lossviz_widget"],
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None

    def ours() -> dict:
        return {k: m for k, m in sys.modules.items() if k == "lossviz_widget" or k.startswith("lossviz_widget.")}

    saved = ours()
    for k in saved:
        del sys.modules[k]
    sys.path.insert(0, str(into))
    try:
        from lossviz_widget._io.logfile import read_log
    finally:
        sys.path.remove(str(into))
        for k in ours():
            del sys.modules[k]
        sys.modules.update(saved)
    return lambda path: sum(len(h) for metrics in read_log(path).runs.values() for h in metrics.values())


def lossviz_follow(path: Path) -> int:
    from lossviz_widget.readers import LogSource

    return sum(len(b) for b in LogSource(path).poll())


def line_by_line(path: Path) -> int:
    """The log reader before the bulk one: one ``parse_record`` per line."""
    from lossviz_widget._io.logfile import parse_header, parse_record

    columns: dict[tuple[str, str], tuple[list[float], list[float], list[float]]] = {}
    with path.open(encoding="utf-8", errors="replace") as f:
        parse_header(f.readline())
        for line in f:
            rec = parse_record(line)
            if rec is not None and rec[5] is None:
                cols = columns.setdefault((rec[0], rec[1]), ([], [], []))
                for col, new in zip(cols, rec[2:5]):
                    col.extend(new.tolist() if isinstance(new, np.ndarray) else new)
    return _as_arrays(columns)


def measure(readers: dict[str, Callable[[], int]], repeats: int) -> dict[str, tuple[list[float], int, list[float]]]:
    """Each reader once untimed, then ``repeats`` rounds of all of them, interleaved: wall times,
    the points read, and CPU times of this thread (on a shared machine the wall time also counts
    the waits for a core; the CPU time does not; every reader runs on this one thread)."""
    counts = {name: read() for name, read in readers.items()}
    times: dict[str, list[float]] = {name: [] for name in readers}
    cpu: dict[str, list[float]] = {name: [] for name in readers}
    for _ in range(repeats):
        for name, read in readers.items():
            start, cpu_start = time.perf_counter(), time.thread_time()
            read()
            times[name].append(time.perf_counter() - start)
            cpu[name].append(time.thread_time() - cpu_start)
    return {name: (times[name], counts[name], cpu[name]) for name in readers}


def rows(label: str, results: dict[str, tuple[list[float], int, list[float]]], baseline: str) -> list[str]:
    base = statistics.median(results[baseline][0])
    out = []
    for name, (times, n, cpu) in results.items():
        med, cpu_med = statistics.median(times), statistics.median(cpu)
        out.append(f"| {label} | {name} | {n:,} | {med:.3f} s ({min(times):.3f}–{max(times):.3f}) | "
                   f"{n / med / 1e6:.2f} M/s | {base / med:.1f}× | {cpu_med:.3f} s: {n / cpu_med / 1e6:.2f} M/s |")
    return out


SIZES = {"smoke": (250,), "quick": (50_000,), "full": (50_000, 250_000)}  # TensorBoard: steps of 4 scalars


def targets(results: dict[str, dict[str, tuple[list[float], int, list[float]]]]) -> list[str]:
    """The issue's targets for the readers, with a verdict each (on wall time), from every file
    group's results."""
    def rate(group: dict[str, tuple[list[float], int, list[float]]], name: str) -> float:
        times, n, _ = group[name]
        return n / statistics.median(times)

    tb = {label: g for label, g in results.items() if label.startswith("TensorBoard")}
    logs = {label: g for label, g in results.items() if label.startswith("log_file")}
    rows = ["| target (issue 20) | measured | verdict |", "|---|---|---|"]
    if tb:
        rates = {label: rate(g, "**lossviz (bulk)**") for label, g in tb.items()}
        times = {label: rate(g, "**lossviz (bulk)**") / rate(g, "EventAccumulator") for label, g in tb.items()}
        rows.append("| TensorBoard event files ≥ 1,000,000 scalars/s, CRCs checked | "
                    + "; ".join(f"{label.split(' (')[0]}: {r / 1e6:.2f} M/s" for label, r in rates.items())
                    + f" | {'met' if min(rates.values()) >= 1e6 else '**missed**'} |")
        rows.append("| … ≥ 5× TensorBoard's `EventAccumulator` on the same files | "
                    + "; ".join(f"{label.split(' (')[0]}: {x:.0f}×" for label, x in times.items())
                    + f" | {'met' if min(times.values()) >= 5 else '**missed**'} |")
    if logs:
        rates = {label: rate(g, "**LossPlot.load (bulk)**") for label, g in logs.items()}
        rows.append("| `log_file` logs ≥ 2M points/s | "
                    + "; ".join(f"{label.split(' (')[0]}: {r / 1e6:.2f} M/s" for label, r in rates.items())
                    + f" | {'met' if min(rates.values()) >= 2e6 else '**missed**'} |")
    return rows


def section(mode: str, repeats: int | None = None, log: Callable[[str], None] = print, before: str = BEFORE,
            only: str = "") -> str:
    """The Markdown section (``## Reading logs``, its table and the targets) for ``mode`` (full,
    quick, smoke); ``before``: the revision whose ``read_log`` runs beside this one's; ``only``:
    ``"tensorboard"`` or ``"logs"`` for one kind of file."""
    log_steps = 1_000 if mode == "smoke" else 50_000
    repeats = repeats or (1 if mode == "smoke" else 5)
    load = os.getloadavg()
    lines = ["| file | reader | scalars | read time, median (min–max) | per second | × slowest-known | "
             "CPU time, median: per CPU second |", "|---|---|---|---|---|---|---|"]
    everything: dict[str, dict[str, tuple[list[float], int, list[float]]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        old = read_log_at(before, Path(tmp)) if before else None
        for steps in SIZES[mode] if only != "logs" else ():
            path = write_event_file(Path(tmp) / f"tb{steps}", steps)
            label = f"TensorBoard, {4 * steps:,} scalars ({path.stat().st_size / 2**20:.1f} MiB)"
            results = measure({
                "**lossviz (bulk)**": lambda p=path: lossviz_tb(p),
                "lossviz (bulk), no CRC check": lambda p=path: lossviz_tb(p, check_crc=False),
                "record by record (before)": lambda p=path: record_by_record(p),
                "EventAccumulator": lambda p=path: event_accumulator(p),
            }, repeats)
            lines += rows(label, results, "EventAccumulator")
            everything[label] = results
            log(f"  readers: {label}: done")
        for kind, every in (("point lines", 16), ("chunk lines", 5_000)) if only != "tensorboard" else ():
            steps = log_steps * (10 if kind == "chunk lines" and mode != "smoke" else 1)
            path = write_log(Path(tmp) / f"{kind.split()[0]}.jsonl", steps, every)
            label = f"log_file, {kind}, {4 * steps:,} points ({path.stat().st_size / 2**20:.1f} MiB)"
            readers = {
                "**LossPlot.load (bulk)**": lambda p=path: lossviz_load(p),
                "follow, first poll (bulk)": lambda p=path: lossviz_follow(p),
                "line by line (before)": lambda p=path: line_by_line(p),
            }
            if old is not None:
                readers[f"LossPlot.load (bulk) of `{before}`"] = lambda p=path: old(p)
            results = measure(readers, repeats if mode == "smoke" else max(repeats, 7))
            lines += rows(label, results, "line by line (before)")
            everything[label] = results
            log(f"  readers: {label}: done")
    header = [
        "## Reading logs",
        "",
        f"`benchmarks/readers.py` ({mode}), {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, "
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; load average at the "
        f"start {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (1 / 5 / 15 min: on a shared machine compare within "
        f"a row group, not across runs). {repeats} interleaved repeats per reader"
        f"{'' if mode == 'smoke' or repeats >= 7 else ' (7 for the logs)'}, one core, imports not timed. "
        "× slowest-known: times faster than TensorBoard's `EventAccumulator` (event files) or than the "
        "line-by-line reader (logs); the readers are described in the script's docstring. The last "
        "column is the CPU time of the reading thread in the same reads (what a reader costs without "
        "the waits for a core that a loaded machine adds to the wall time).",
        "",
    ]
    return "\n".join(header + lines + ["", *targets(everything)]) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="the smaller files only")
    ap.add_argument("--smoke", action="store_true", help="tiny files, one repeat: a check that it runs")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--only", choices=("tensorboard", "logs"), default="", help="one kind of file")
    ap.add_argument("--before", default=BEFORE, help="the revision whose read_log runs beside ('' for none)")
    ap.add_argument("--out", type=Path, default=BENCH / "READERS.md", help="Markdown output")
    args = ap.parse_args(argv)
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    text = section(mode, args.repeats, before=args.before, only=args.only)
    args.out.write_text("# Reading logs: lossviz_widget's readers beside TensorBoard's\n\n" + text.split("\n", 2)[2])
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
