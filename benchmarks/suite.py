"""The kernel-side measurements (columns 1-4 and the extras), aggregated to medians.

Every run happens in a fresh ipykernel (:class:`kernel.KernelSession`), so repeats are
independent and peak memory is the workload's own. lossviz and the bare loop run the
whole run length N several times (:meth:`Config.repeats_for`); the peers (whose cost
per update grows with N) are measured on ``updates`` updates once N steps are logged.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kernel import IopubMessage, KernelSession, frames_by_gap, in_window, server_rate, waits

__all__ = ["TOOLS", "Cell", "Config", "ToolRow", "run_kernel_suite"]

TOOLS = ("lossviz", "livelossplot", "naive", "bare")
N_METRICS = 4
_STREAM_FLUSH_S = 0.25  # ipykernel flushes stdout every 0.2 s: a send's text can trail it


@dataclass(frozen=True)
class Config:
    """What one invocation measures."""

    name: str
    sizes: tuple[int, ...]
    repeats: int  # full runs per size for lossviz and the bare loop (N > 1e5)
    updates: int  # timed updates per size for the peers
    livelossplot_max: int  # largest N livelossplot is run at; beyond: extrapolated
    naive_max: int  # largest N the naive loop is run at in the kernel
    browser: bool
    paint_sizes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    paint_updates: int = 5
    paint_limit_s: float = 20.0  # a browser size predicted to take longer per frame: one frame only
    paint_single_limit_s: float = 120.0  # ... longer than this: skipped
    small_repeats: int = 5  # runs for N <= 1e5: short loops are noisier, and cheap
    tensor_steps: int = 10**5  # steps of the CPU-tensor loop (its cost per call does not depend on N)
    live_sizes: tuple[int, ...] = ()  # browser main-thread share during live updates (JupyterLab, Notebook 7)
    live_repeats: int = 3  # windows per size, app and renderer
    live_seconds: float = 4.0  # length of a window

    def repeats_for(self, n: int) -> int:
        return self.repeats if n > 10**5 else max(self.repeats, self.small_repeats)


FULL = Config("full", (10**3, 10**4, 10**5, 10**6, 10**7), repeats=3, updates=3,
              livelossplot_max=10**6, naive_max=10**7, browser=True,
              paint_sizes={"lossviz": (10**3, 10**4, 10**5, 10**6, 10**7),
                           "naive": (10**3, 10**4, 10**5, 10**6, 10**7)},
              paint_updates=5, paint_limit_s=20.0, tensor_steps=10**6,
              live_sizes=(10**3, 10**5, 10**6, 10**7), live_repeats=3, live_seconds=4.0)
QUICK = Config("quick", (10**3, 10**4, 10**5), repeats=3, updates=3, livelossplot_max=10**5,
               naive_max=10**5, browser=True,
               paint_sizes={"lossviz": (10**3, 10**4, 10**5), "naive": (10**3, 10**4, 10**5)},
               paint_updates=3, paint_limit_s=5.0, paint_single_limit_s=5.0, small_repeats=3,
               live_sizes=(10**3, 10**5), live_repeats=1, live_seconds=3.0)
SMOKE = Config("smoke", (10**3,), repeats=1, updates=1, livelossplot_max=10**3, naive_max=10**3, browser=False,
               paint_sizes={"lossviz": (10**3,), "naive": (10**3,)}, paint_updates=1, paint_limit_s=5.0,
               paint_single_limit_s=5.0, small_repeats=1, tensor_steps=10**3)
CONFIGS = {c.name: c for c in (FULL, QUICK, SMOKE)}


@dataclass
class Cell:
    """One number of the table with how it was obtained."""

    value: float | None
    note: str = ""  # "", "extrapolated", "skipped: ...", "n/a: ..."
    spread: tuple[float, float] | None = None  # min, max over repeats


@dataclass
class ToolRow:
    """One tool at one run length: the 5 columns plus details."""

    tool: str
    n: int
    cost_s: Cell = field(default_factory=lambda: Cell(None))  # per log() (lossviz, bare) or per update
    frame_bytes: Cell = field(default_factory=lambda: Cell(None))
    msgs_per_s: Cell = field(default_factory=lambda: Cell(None))
    dropped: int = 0
    mem_peak: Cell = field(default_factory=lambda: Cell(None))  # bytes per point per metric
    mem_retained: Cell = field(default_factory=lambda: Cell(None))
    paint_ms: Cell = field(default_factory=lambda: Cell(None, "n/a"))
    details: dict[str, Any] = field(default_factory=dict)


def _median_cell(values: list[float], note: str = "") -> Cell:
    if not values:
        return Cell(None, note or "n/a")
    return Cell(statistics.median(values), note, (min(values), max(values)))


def _bytes(msgs: list[IopubMessage]) -> int:
    return sum(m.nbytes for m in msgs)


# -- per-tool aggregation -------------------------------------------------------------------


def _lossviz_run(r: dict[str, Any], msgs: list[IopubMessage]) -> dict[str, Any]:
    n = r["n"]
    window = in_window(msgs, r["t_loop0"], r["t_flush1"])
    frames = frames_by_gap([m for m in window if m.msg_type == "comm_msg"])
    in_loop = [f[0].sent for f in frames if f[0].sent <= r["t_loop1"]]
    gaps = waits(in_loop, r["t_loop0"], r["t_loop1"])
    rate = server_rate(window)
    steady = [in_window(msgs, s["t_a"], s["t_b"], ["comm_msg"]) for s in r["steady"]]
    return {
        "per_call_s": r["per_call_s"],
        "gen_s": r["gen_s"],
        "loop_s": r["loop_s"],
        "frames": len(frames),
        "frames_in_loop": len(in_loop),
        "max_frame_gap_s": max(gaps),
        "frame_bytes": statistics.median(_bytes(f) for f in frames) if frames else None,
        "frame_msgs": statistics.median(len(f) for f in frames) if frames else None,
        "rate": rate.peak_per_s,
        "dropped": rate.dropped,
        "steady_ms": statistics.median(s["dt"] for s in r["steady"]) * 1e3,
        "steady_bytes": statistics.median(_bytes(f) for f in steady),
        "steady_msgs": statistics.median(len(f) for f in steady),
        "resmooth_first_ms": r["resmooth"][0]["dt"] * 1e3,
        "resmooth_ms": statistics.median(s["dt"] for s in r["resmooth"]) * 1e3,
        "mem_retained": (r["rss"] - r["rss0"]) / (N_METRICS * n),
        "mem_peak": (r["hwm"] - r["rss0"]) / (N_METRICS * n),
    }


def _bare_run(r: dict[str, Any]) -> dict[str, Any]:
    n = r["n"]
    return {"per_call_s": r["per_call_s"], "gen_s": r["gen_s"], "loop_s": r["loop_s"],
            "mem_retained": (r["rss"] - r["rss0"]) / (N_METRICS * n),
            "mem_peak": (r["hwm"] - r["rss0"]) / (N_METRICS * n)}


def _peer_run(r: dict[str, Any], msgs: list[IopubMessage]) -> dict[str, Any]:
    """Per update: seconds, IOPub messages and bytes (status excluded; trailing stdout included)."""
    n = r["n"]
    ups = r["updates"]
    per_bytes, per_msgs = [], []
    for i, u in enumerate(ups):
        end = u["t_b"] + _STREAM_FLUSH_S
        if i + 1 < len(ups):
            end = min(end, ups[i + 1]["t_a"])
        sent = [m for m in in_window(msgs, u["t_a"], end)
                if m.msg_type != "status" and (m.sent <= u["t_b"] or m.msg_type == "stream")]
        per_bytes.append(_bytes(sent))
        per_msgs.append(len(sent))
    out: dict[str, Any] = {
        "update_s": [u["dt"] for u in ups],
        "update_bytes": per_bytes,
        "update_msgs": per_msgs,
        "mem_retained": (r.get("rss_prefill", r["rss"]) - r["rss0"]) / (N_METRICS * n),
        "mem_peak": (r["hwm"] - r["rss0"]) / (N_METRICS * n),
    }
    if "first" in r:
        f = r["first"]
        out["first_s"] = f["dt"]
        out["first_bytes"] = _bytes([m for m in in_window(msgs, f["t_a"], f["t_b"]) if m.msg_type != "status"])
    return out


# -- the suite -------------------------------------------------------------------------------


def _in_kernel(func: str, logs: Path, timeout: float = 1800.0, **kwargs: Any) -> tuple[dict[str, Any], list]:
    with KernelSession(log_path=logs / "kernels.log") as k:
        result = k.call(func, timeout=timeout, **kwargs)
        return result, k.messages


def run_kernel_suite(cfg: Config, logs: Path, log: Callable[[str], None] = print) -> dict[str, Any]:
    """All kernel runs of ``cfg``; returns ``{"rows": {(tool, n): ToolRow}, "raw": {...}}``."""
    raw: dict[str, Any] = {"lossviz": {}, "bare": {}, "naive": {}, "livelossplot": {}}
    for n in cfg.sizes:
        repeats = cfg.repeats_for(n)
        for rep in range(repeats):  # interleaved, so drift hits both alike
            r, _ = _in_kernel("run_bare", logs, n=n)
            raw["bare"].setdefault(n, []).append(_bare_run(r))
            r, msgs = _in_kernel("run_lossviz", logs, n=n)
            raw["lossviz"].setdefault(n, []).append(_lossviz_run(r, msgs))
            lv, bare = raw["lossviz"][n][-1], raw["bare"][n][-1]
            log(f"  n={n:>10,} run {rep + 1}/{repeats}: lossviz {lv['per_call_s'] * 1e6:.2f} us/log "
                f"({lv['frames']} frames, {lv['mem_peak']:.1f} B/pt peak), bare {bare['per_call_s'] * 1e6:.2f} us")
        if n <= cfg.naive_max:
            r, msgs = _in_kernel("run_naive_bqplot", logs, n=n, updates=cfg.updates)
            raw["naive"][n] = _peer_run(r, msgs)
            log(f"  n={n:>10,} naive bqplot {statistics.median(raw['naive'][n]['update_s']) * 1e3:.1f} ms/update")
        if n <= cfg.livelossplot_max:
            try:
                r, msgs = _in_kernel("run_livelossplot", logs, n=n, updates=cfg.updates)
            except Exception as exc:  # e.g. livelossplot not installed (CI without the extras)
                if "No module named 'livelossplot'" not in str(exc):
                    raise
                raw["livelossplot"][n] = {"missing": True}
                log("  livelossplot is not installed: its cells will say so (bash benchmarks/run.sh installs it)")
            else:
                raw["livelossplot"][n] = _peer_run(r, msgs)
                log(f"  n={n:>10,} livelossplot "
                    f"{statistics.median(raw['livelossplot'][n]['update_s']) * 1e3:.1f} ms/update")
    tensor_runs = _tensor_runs(cfg, logs, log)
    return {"rows": _rows(cfg, raw), "raw": raw, "tensor_runs": tensor_runs, "tensors": _tensor_cell(tensor_runs)}


def _tensor_runs(cfg: Config, logs: Path, log: Callable[[str], None]) -> list[dict[str, Any]]:
    """``log()`` with 4 CPU torch tensors per call, in fresh kernels (nothing if torch is missing)."""
    runs = []
    for rep in range(cfg.repeats):
        try:
            r, _ = _in_kernel("run_lossviz_tensors", logs, n=cfg.tensor_steps)
        except Exception as exc:  # torch is an optional extra
            if "No module named 'torch'" not in str(exc):
                raise
            log("  torch is not installed: the CPU-tensor target is not measured")
            return [{"missing": True}]
        runs.append(r)
        log(f"  n={cfg.tensor_steps:>10,} run {rep + 1}/{cfg.repeats}: lossviz with CPU tensors "
            f"{r['per_call_s'] * 1e6:.2f} us/log")
    return runs


def _tensor_cell(runs: list[dict[str, Any]]) -> Cell:
    if runs and runs[0].get("missing"):
        return Cell(None, "n/a: torch not installed")
    return _median_cell([r["per_call_s"] for r in runs])


def _rows(cfg: Config, raw: dict[str, Any]) -> dict[tuple[str, int], ToolRow]:
    rows: dict[tuple[str, int], ToolRow] = {}
    for n in cfg.sizes:
        runs = raw["lossviz"][n]
        row = ToolRow("lossviz", n)
        row.cost_s = _median_cell([x["per_call_s"] for x in runs])
        row.frame_bytes = _median_cell([x["frame_bytes"] for x in runs if x["frame_bytes"] is not None])
        row.msgs_per_s = _median_cell([x["rate"] for x in runs])
        row.dropped = max(x["dropped"] for x in runs)
        row.mem_peak = _median_cell([x["mem_peak"] for x in runs])
        row.mem_retained = _median_cell([x["mem_retained"] for x in runs])
        row.details = {k: statistics.median(x[k] for x in runs if x[k] is not None)
                       for k in ("steady_ms", "steady_bytes", "steady_msgs", "resmooth_first_ms", "resmooth_ms",
                                 "frames", "frame_msgs", "loop_s", "gen_s", "frames_in_loop", "max_frame_gap_s")
                       if any(x[k] is not None for x in runs)}
        rows["lossviz", n] = row

        bare = ToolRow("bare", n)
        bruns = raw["bare"][n]
        bare.cost_s = _median_cell([x["per_call_s"] for x in bruns])
        bare.frame_bytes = Cell(0.0)
        bare.msgs_per_s = Cell(0.0)
        bare.mem_peak = _median_cell([x["mem_peak"] for x in bruns])
        bare.mem_retained = _median_cell([x["mem_retained"] for x in bruns])
        bare.details = {"gen_s": statistics.median(x["gen_s"] for x in bruns),
                        "loop_s": statistics.median(x["loop_s"] for x in bruns)}
        rows["bare", n] = bare

        for tool, limit in (("naive", cfg.naive_max), ("livelossplot", cfg.livelossplot_max)):
            rows[tool, n] = _peer_row(tool, n, raw[tool], limit)
    return rows


def _peer_row(tool: str, n: int, data: dict[int, Any], limit: int) -> ToolRow:
    row = ToolRow(tool, n)
    if n in data and data[n].get("missing"):
        note = "n/a: livelossplot not installed"
        row.cost_s = row.frame_bytes = row.msgs_per_s = row.mem_peak = row.mem_retained = Cell(None, note)
        return row
    if n in data:
        d = data[n]
        row.cost_s = _median_cell(d["update_s"])
        row.frame_bytes = _median_cell(d["update_bytes"])
        msgs = statistics.median(d["update_msgs"])
        row.msgs_per_s = Cell(msgs / row.cost_s.value, "sustained") if row.cost_s.value else Cell(None, "n/a")
        row.mem_peak = Cell(d["mem_peak"])
        row.mem_retained = Cell(d["mem_retained"])
        row.details = {"update_msgs": msgs, **{k: d[k] for k in ("first_s", "first_bytes") if k in d}}
        return row
    measured = [m for m in data if m < n and not data[m].get("missing")]
    if not measured:
        row.cost_s = row.frame_bytes = row.msgs_per_s = row.mem_peak = row.mem_retained = Cell(None, "skipped")
        return row
    base = max(measured)
    d = data[base]
    cost = statistics.median(d["update_s"]) * n / base  # a full replot is O(N)
    msgs = statistics.median(d["update_msgs"])
    row.cost_s = Cell(cost, f"extrapolated from 1e{len(str(base)) - 1} (x N)")
    bytes_note = "extrapolated (x N)" if tool == "naive" else f"as at 1e{len(str(base)) - 1} (a PNG)"
    per = statistics.median(d["update_bytes"])
    row.frame_bytes = Cell(per * n / base if tool == "naive" else per, bytes_note)
    row.msgs_per_s = Cell(msgs / cost, "sustained, extrapolated")
    row.details = {"update_msgs": msgs}
    row.mem_peak = Cell(d["mem_peak"], f"as at 1e{len(str(base)) - 1} (not run at this size)")
    row.mem_retained = Cell(d["mem_retained"], f"as at 1e{len(str(base)) - 1} (not run at this size)")
    return row


def rows_to_json(rows: dict[tuple[str, int], ToolRow]) -> list[dict[str, Any]]:
    return [asdict(r) for r in rows.values()]
