"""Benchmark lossviz_widget against livelossplot, a naive bqplot loop and a bare Python loop.

    .venv/bin/python benchmarks/run.py            # full run (~10-15 min): writes benchmarks/RESULTS.md
    .venv/bin/python benchmarks/run.py --quick    # 1e3..1e5 steps (< 3 min): benchmarks/out/RESULTS-quick.md
    .venv/bin/python benchmarks/run.py --smoke    # 1e3 steps, one repeat, no browser: a check that it runs

``bash benchmarks/run.sh`` installs the benchmark-only extra (livelossplot) first. Raw
numbers go to ``<out>/results-<mode>.json``; the Markdown table to ``--results``.
See RESULTS.md's "Method" section (written by :mod:`report`) for what each column means.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling modules, wherever this runs from
import readers
import report
import suite

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent

DISTRIBUTIONS = ("lossviz-widget", "livelossplot", "bqplot", "ipywidgets", "ipykernel", "jupyter_client",
                 "jupyter_server", "jupyterlab", "matplotlib", "numpy", "playwright")


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, check=True,
                              timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def environment() -> dict[str, str]:
    """Date, machine, and the lossviz_widget commit (with uncommitted changes listed)."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem = int(Path("/proc/meminfo").read_text().split()[1]) / 1024**2
        mem_txt = f"{mem:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        mem_txt = "unknown RAM"
    dirty = _git("status", "--short", "--", "lossviz_widget")
    return {
        "date": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "machine": f"{cpu or platform.processor() or 'unknown CPU'}, {os.cpu_count()} cores, {mem_txt}, "
                   f"{platform.system()} {platform.release()}, Python {platform.python_version()}",
        "commit": _git("rev-parse", "--short", "HEAD") or "unknown",
        "dirty": ", ".join(f"`{line.strip()}`" for line in dirty.splitlines()),
    }


def versions() -> dict[str, str]:
    out = {}
    for dist in DISTRIBUTIONS:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    try:
        chromium = subprocess.run(["/usr/bin/chromium", "--version"], capture_output=True, text=True, timeout=30)
        found = re.search(r"Chromium ([\d.]+)", chromium.stdout)
        out["chromium"] = found.group(1) if found else "unavailable"
    except (OSError, subprocess.SubprocessError):
        out["chromium"] = "unavailable"
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="1e3..1e5 steps, < 3 minutes")
    mode.add_argument("--smoke", action="store_true", help="1e3 steps, one repeat, no browser (seconds)")
    ap.add_argument("--no-browser", action="store_true", help="skip columns 5 and 6 (JupyterLab + Chromium)")
    ap.add_argument("--out", type=Path, default=BENCH_DIR / "out", help="raw results and logs (default benchmarks/out)")
    ap.add_argument("--results", type=Path, default=None,
                    help="Markdown output (default: benchmarks/RESULTS.md for a full run, "
                         "<out>/RESULTS-<mode>.md otherwise)")
    args = ap.parse_args(argv)

    cfg = suite.SMOKE if args.smoke else suite.QUICK if args.quick else suite.FULL
    default_md = BENCH_DIR / "RESULTS.md" if cfg is suite.FULL else args.out / f"RESULTS-{cfg.name}.md"
    results_md = args.results or default_md
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()

    def log(msg: str) -> None:
        print(f"[{time.monotonic() - start:6.1f}s] {msg}", flush=True)

    env = environment()
    log(f"{cfg.name} run of lossviz_widget at {env['commit']}{' (uncommitted changes)' if env['dirty'] else ''}")
    log("kernel measurements (columns 1-4) ...")
    kernel = suite.run_kernel_suite(cfg, args.out, log)
    paint = None
    live = None
    if cfg.browser and not args.no_browser:
        from browser import measure_paint

        log("browser paint (column 5) ...")
        paint = measure_paint({k: list(v) for k, v in cfg.paint_sizes.items()}, cfg.paint_updates,
                              cfg.paint_limit_s, cfg.paint_single_limit_s, args.out / "browser", log)
        if cfg.live_sizes:
            from browser import measure_live

            log("browser main-thread share during live updates (column 6) ...")
            live = measure_live(list(cfg.live_sizes), seconds=cfg.live_seconds, repeats=cfg.live_repeats, updates=0,
                                artifacts=args.out / "browser-live", log=log, renderers=("svg", "canvas"))
    log("log readers ...")
    readers_md = readers.section(cfg.name, log=log)
    runtime = time.monotonic() - start
    vers = versions()
    text = report.render(cfg, kernel["rows"], paint, env, runtime, vers, kernel["tensors"], live) + "\n" + readers_md
    results_md.parent.mkdir(parents=True, exist_ok=True)
    results_md.write_text(text)
    raw: dict[str, Any] = {
        "config": asdict(cfg), "env": env, "versions": vers, "runtime_s": runtime,
        "rows": suite.rows_to_json(kernel["rows"]),
        "tensors": {**asdict(kernel["tensors"]), "runs": kernel["tensor_runs"]},
        "kernel_raw": {tool: {str(n): v for n, v in by_n.items()} for tool, by_n in kernel["raw"].items()},
        "paint": None if paint is None else {t: asdict(r) for t, r in paint.items()},
        "live": None if live is None else [asdict(r) for r in live],
    }
    (args.out / f"results-{cfg.name}.json").write_text(json.dumps(raw, indent=1, default=str))
    log(f"wrote {results_md} ({runtime / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
