"""RESULTS.md: the side-by-side table, the targets, the details and the method, as Markdown."""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from typing import Any

from browser import LiveResult, PaintResult, live_table
from suite import Cell, Config, ToolRow
from workloads import TENSOR_POOL

__all__ = ["paint_cells", "render"]

NAMES = {
    "lossviz": "**lossviz_widget**",
    "livelossplot": "livelossplot",
    "naive": "naive bqplot loop",
    "bare": "bare Python loop",
}
ORDER = ("lossviz", "livelossplot", "naive", "bare")

TARGETS = {
    "log_ratio": 2.0,  # log() <= 2x the minimal logger ...
    "log_ratio_at": 10**6,  # ... at 1e6 logged steps (the statement of the target)
    "tensor_us": 10.0,  # log() of 4 CPU tensors, microseconds per call
    "msgs_per_s": 1000.0,  # jupyter_server's limit
    "paint_ms": 60.0,  # at 1e7
    "share": 0.08,  # browser main-thread share during live updates (issue 20), any run length
    "frame_paint_ms": 10.0,  # ... and main-thread time per frame
    "mem_bytes": 24.0,  # per point per metric
    "resmooth_ms": 200.0,  # at 1e7
    "bytes_growth": 1.1,  # steady frame bytes at the largest N / largest at smaller N >= 1e4
    "frame_wait_s": 0.5,  # longest wait for a frame while a tight loop logs, 1e5...1e7 steps (issue 20)
}


LIVE_METHOD = (
    "The plot is shown by one cell (its panels report their width to the idle kernel), then a second cell logs "
    "4 metrics at 500 steps/s while the plot draws at its default 10 frames/s, for a few seconds per window, "
    "the panels scrolled into view. Main-thread share = DevTools `Performance.getMetrics` `TaskDuration` "
    "(thread time) over the window ÷ its wall time; per frame = that ÷ the frames the kernel drew. svg: "
    "`renderer=\"svg\"` (bqplot `Lines`); canvas: the default renderer (lines on a canvas, drawn in a worker "
    "where the browser allows one). See `benchmarks/BROWSER.md`."
)


# -- number formatting -----------------------------------------------------------------------


def fmt_s(s: float | None) -> str:
    if s is None:
        return "—"
    if s < 1e-5:
        return f"{s * 1e6:.2f} µs"
    if s < 1e-3:
        return f"{s * 1e6:.0f} µs"
    if s < 1.0:
        return f"{s * 1e3:.1f} ms"
    return f"{s:.2f} s"


def fmt_ms(ms: float | None) -> str:
    return "—" if ms is None else fmt_s(ms / 1e3)


def fmt_bytes(b: float | None) -> str:
    if b is None:
        return "—"
    if b == 0:
        return "0"
    if b < 1024:
        return f"{b:.0f} B"
    if b < 1024**2:
        return f"{b / 1024:.1f} KiB"
    return f"{b / 1024**2:.1f} MiB"


def fmt_num(x: float | None, digits: int = 1) -> str:
    return "—" if x is None else f"{x:,.{digits}f}"


def fmt_ratio(x: float | None) -> str:
    if x is None:
        return "—"
    if x >= 1000:
        return f"{float(f'{x:.3g}'):,.0f}×"  # 3 significant digits
    if x >= 100:
        return f"{x:,.0f}×"
    return f"{x:.2f}×" if x < 10 else f"{x:.1f}×"


def fmt_n(n: int) -> str:
    return f"1e{len(str(n)) - 1}" if str(n).strip("0") == "1" else f"{n:,}"


def cell(c: Cell, fmt: Any) -> str:
    """A table cell: the value, "≈" and a dagger for derived numbers, or the reason it is missing."""
    if c.value is None:
        if not c.note:
            return "—"
        head, _, why = c.note.partition(":")
        return f"{head} ({why.strip()})" if why else head
    text = fmt(c.value)
    if c.note.startswith("extrapolated") or c.note.startswith("as at"):
        return f"≈ {text} ‡"
    if c.note.startswith("sustained"):
        return f"{text} †"
    if c.note == "single frame":
        return f"{text} §"
    return text


# -- browser ---------------------------------------------------------------------------------


def paint_cells(paint: Mapping[str, PaintResult], sizes: tuple[int, ...]) -> dict[tuple[str, int], Cell]:
    """Median paint time per (tool, N); sizes that were skipped are extrapolated linearly."""
    out: dict[tuple[str, int], Cell] = {}
    for tool, res in paint.items():
        for n in sizes:
            vals = [u["paint_ms"] for u in res.updates.get(n, [])]
            if vals:
                out[tool, n] = Cell(statistics.median(vals), "single frame" if len(vals) == 1 else "",
                                    (min(vals), max(vals)))
                continue
            measured = [m for m in res.updates if res.updates[m] and m < n]
            if n in res.skipped and measured:
                base = max(measured)
                est = statistics.median(u["paint_ms"] for u in res.updates[base]) * n / base
                out[tool, n] = Cell(est, f"extrapolated from 1e{len(str(base)) - 1} (x N)")
            elif n in res.skipped:
                out[tool, n] = Cell(None, "skipped")
    return out


# -- sections --------------------------------------------------------------------------------


def _live_median(live: list[LiveResult], n: int, renderer: str, key: str, app: str = "jupyterlab") -> float | None:
    vals = [getattr(r, key) for r in live if (r.app, r.renderer, r.n) == (app, renderer, n)]
    return statistics.median(vals) if vals else None


def _share_cell(live: list[LiveResult] | None, n: int) -> str:
    """Column 6: JupyterLab's main-thread share during live updates, SVG / canvas renderer."""
    if live is None:
        return "not run"
    svg, canvas = (_live_median(live, n, r, "share") for r in ("svg", "canvas"))
    if svg is None and canvas is None:
        return "—"
    return " / ".join("—" if v is None else f"{v:.0%}" for v in (svg, canvas))


def _main_table(rows: dict[tuple[str, int], ToolRow], sizes: tuple[int, ...], paint: dict[tuple[str, int], Cell],
                browser_note: str, live: list[LiveResult] | None = None) -> list[str]:
    out = [
        "| logged steps | tool | 1. cost per `log()` / per update | × bare loop | × lossviz | "
        "2. bytes per frame | 3. IOPub msg/s | 4. peak memory, B/point/metric | 5. browser paint per frame | "
        "6. browser main-thread share, svg / canvas |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n in sizes:
        lv = rows["lossviz", n].cost_s.value
        bare = rows["bare", n].cost_s.value
        for tool in ORDER:
            r = rows.get((tool, n))
            if r is None:
                continue
            cost = r.cost_s.value
            unit = "" if tool in ("lossviz", "bare") or cost is None else " /update"
            x_bare = fmt_ratio(cost / bare) if cost and bare else "—"
            x_lv = fmt_ratio(cost / lv) if cost and lv else "—"
            if tool in ("lossviz", "naive"):
                p = paint.get((tool, n))
                ptxt = cell(p, fmt_ms) if p is not None else browser_note
            else:
                ptxt = "—"
            rate = cell(r.msgs_per_s, lambda v: fmt_num(v, 0 if v >= 10 else 1))
            if r.dropped or (r.msgs_per_s.value or 0) > TARGETS["msgs_per_s"]:
                rate += " ⚠"
            out.append(
                f"| {fmt_n(n) if tool == 'lossviz' else ''} | {NAMES[tool]} | {cell(r.cost_s, fmt_s)}{unit} | "
                f"{x_bare} | {x_lv} | {cell(r.frame_bytes, fmt_bytes)} | {rate} | "
                f"{cell(r.mem_peak, lambda v: fmt_num(v, 1))} | {ptxt} | "
                f"{_share_cell(live, n) if tool == 'lossviz' else '—'} |"
            )
    return out


def _verdict(ok: bool | None) -> str:
    return "—" if ok is None else ("met" if ok else "**missed**")


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _live_target(live: list[LiveResult] | None) -> str:
    """The issue-20 row: main-thread share and time per frame at every measured size, per app and renderer."""
    if not live:
        return "| browser main-thread share ≤ 8% and ≤ 10 ms per frame during live updates | not measured | — |"
    parts, ok = [], {"svg": True, "canvas": True}
    for renderer in ("svg", "canvas"):
        for app in ("jupyterlab", "notebook"):
            got = []
            for n in sorted({r.n for r in live}):
                share = _live_median(live, n, renderer, "share", app)
                ms = _live_median(live, n, renderer, "task_ms_per_frame", app)
                if share is None or ms is None:
                    continue
                got.append(f"{fmt_n(n)}: {share:.0%}, {ms:.0f} ms")
                ok[renderer] &= share <= TARGETS["share"] and ms <= TARGETS["frame_paint_ms"]
            if got:
                parts.append(f"{renderer}, {'JupyterLab' if app == 'jupyterlab' else 'Notebook 7'}: " + "; ".join(got))
    verdict = ", ".join(f"{r}: {_verdict(v)}" for r, v in ok.items())
    return (f"| browser main-thread share ≤ {TARGETS['share']:.0%} and ≤ {TARGETS['frame_paint_ms']:.0f} ms per "
            f"frame during live updates (4 metrics, 10 frames/s) | {' — '.join(parts)} | {verdict} |")


def _targets(rows: dict[tuple[str, int], ToolRow], sizes: tuple[int, ...], paint: dict[tuple[str, int], Cell],
             tensors: Cell, tensor_steps: int, live: list[LiveResult] | None = None) -> list[str]:
    big = max(sizes)
    ratios = {n: r for n in sizes
              if (r := _ratio(rows["lossviz", n].cost_s.value, rows["bare", n].cost_s.value)) is not None}
    ratio_txt = ", ".join(f"{fmt_n(n)}: {fmt_ratio(r)}" for n, r in ratios.items())
    # the issue states this target at 1e6 steps; other sizes are listed, and flagged when over
    at = TARGETS["log_ratio_at"] if TARGETS["log_ratio_at"] in ratios else max(ratios, default=None)
    over = [fmt_n(n) for n, r in ratios.items() if r > TARGETS["log_ratio"] and n != at]
    log_verdict = (_verdict(None if at is None else ratios[at] <= TARGETS["log_ratio"])
                   + ("" if at is None else f" at {fmt_n(at)}")
                   + (f"; over at {', '.join(over)}" if over else ""))
    steady: dict[int, float | None] = {n: rows["lossviz", n].details.get("steady_bytes") for n in sizes}
    logging = {n: rows["lossviz", n].frame_bytes.value for n in sizes}
    capped = {n: b for n, b in steady.items() if n >= 10**4 and b}  # lines hit max_points from 1e4 steps on
    capped_n = sorted(capped)
    growth = (capped[capped_n[-1]] / max(capped[n] for n in capped_n[:-1])) if len(capped_n) > 1 else None
    bytes_txt = ("steady frame: " + ", ".join(f"{fmt_n(n)}: {fmt_bytes(steady[n])}" for n in sizes)
                 + "; while logging: " + ", ".join(f"{fmt_n(n)}: {fmt_bytes(logging[n])}" for n in sizes))
    rates = [rows["lossviz", n].msgs_per_s.value or 0 for n in sizes]
    dropped = sum(rows["lossviz", n].dropped for n in sizes)
    p = paint.get(("lossviz", big))
    paint_txt = f"{fmt_n(big)}: {fmt_ms(p.value)}" if p is not None and p.value is not None else "not measured"
    if p is None or p.value is None:
        got = [(n, paint["lossviz", n].value) for n in sizes if ("lossviz", n) in paint]
        if got:
            paint_txt += "; " + ", ".join(f"{fmt_n(n)}: {fmt_ms(v)}" for n, v in got)
    mem = rows["lossviz", big]
    res_first = mem.details.get("resmooth_first_ms")
    res_med = mem.details.get("resmooth_ms")
    at = "" if big == 10**7 else f" (at {fmt_n(big)}, the largest size of this run)"
    lines = [
        "| target | measured (lossviz_widget) | verdict |",
        "|---|---|---|",
        f"| `log()` ≤ {TARGETS['log_ratio']:.0f}× the minimal logger at {fmt_n(TARGETS['log_ratio_at'])} steps | "
        f"{ratio_txt} | {log_verdict} |",
        f"| `log()` of 4 CPU tensors ≤ {TARGETS['tensor_us']:.0f} µs | "
        + (tensors.note if tensors.value is None else
           f"{fmt_s(tensors.value)} per call, median of {fmt_s(tensors.spread[0])}–{fmt_s(tensors.spread[1])} "
           f"at {fmt_n(tensor_steps)} steps")
        + f" | {_verdict(None if tensors.value is None else tensors.value * 1e6 <= TARGETS['tensor_us'])} |",
        f"| bytes per frame independent of run length (steady frame at the largest N ≤ "
        f"{TARGETS['bytes_growth']}× the largest at any smaller N ≥ 1e4) | {bytes_txt} | "
        f"{_verdict(None if growth is None else growth <= TARGETS['bytes_growth'])}"
        f"{'' if growth is None else f' ({growth:.2f})'} |",
        f"| IOPub < {TARGETS['msgs_per_s']:.0f} msg/s | peak {max(rates):,.0f} msg/s; {dropped} messages dropped | "
        f"{_verdict(max(rates) < TARGETS['msgs_per_s'] and not dropped)} |",
        f"| browser paint ≤ {TARGETS['paint_ms']:.0f} ms at 1e7 | {paint_txt} | "
        f"{_verdict(None if p is None or p.value is None or big != 10**7 else p.value <= TARGETS['paint_ms'])} |",
        _live_target(live),
        f"| memory ≤ {TARGETS['mem_bytes']:.0f} B/point/metric at 1e7{at} | "
        f"retained {fmt_num(mem.mem_retained.value)} B, "
        f"peak {fmt_num(mem.mem_peak.value)} B | "
        f"{_verdict((mem.mem_peak.value or 0) <= TARGETS['mem_bytes'])} (peak), "
        f"{_verdict((mem.mem_retained.value or 0) <= TARGETS['mem_bytes'])} (retained) |",
        f"| re-smoothing ≤ {TARGETS['resmooth_ms']:.0f} ms at 1e7{at} | 0.6 → 0.9: {fmt_ms(res_first)}; "
        f"median of 3 changes: {fmt_ms(res_med)} | "
        f"{_verdict(None if res_first is None else max(res_first, res_med or 0) <= TARGETS['resmooth_ms'])} |",
        _frame_wait_target(rows, sizes),
    ]
    return lines


def _frame_wait_target(rows: dict[tuple[str, int], ToolRow], sizes: tuple[int, ...]) -> str:
    """The longest wait for a frame during the logging loop, 1e5 steps and up (issue 20)."""
    waits = {n: w for n in sizes if n >= 10**5 and (w := rows["lossviz", n].details.get("max_frame_gap_s")) is not None}
    got = ", ".join(f"{fmt_n(n)}: {fmt_ms(w * 1e3)}" for n, w in waits.items()) or "no run of 1e5 steps or more"
    return (f"| longest wait for a frame ≤ {TARGETS['frame_wait_s']} s while a pure-Python loop logs 4 floats per "
            f"step, 1e5…1e7 steps (medians) | {got} | "
            f"{_verdict(max(waits.values()) <= TARGETS['frame_wait_s'] if waits else None)} |")


def _frames_table(rows: dict[tuple[str, int], ToolRow], sizes: tuple[int, ...]) -> list[str]:
    out = [
        "| logged steps | steady frame: render in kernel | bytes | messages | logging loop | frames sent during it "
        "| longest wait for a frame during it | median bytes/frame during the run | re-smoothing 0.6 → 0.9 | "
        "re-smoothing, median of 3 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n in sizes:
        d = rows["lossviz", n].details
        out.append(
            f"| {fmt_n(n)} | {fmt_ms(d.get('steady_ms'))} | {fmt_bytes(d.get('steady_bytes'))} | "
            f"{fmt_num(d.get('steady_msgs'), 0)} | {fmt_s(d.get('loop_s'))} | {fmt_num(d.get('frames_in_loop'), 0)} | "
            f"{fmt_s(d.get('max_frame_gap_s'))} | "
            f"{fmt_bytes(rows['lossviz', n].frame_bytes.value)} | {fmt_ms(d.get('resmooth_first_ms'))} | "
            f"{fmt_ms(d.get('resmooth_ms'))} |"
        )
    return out


def _cost_table(rows: dict[tuple[str, int], ToolRow], sizes: tuple[int, ...]) -> list[str]:
    out = [
        "| logged steps | lossviz `log()` median (min–max) | bare loop median (min–max) | ratio | "
        "value generation, subtracted | lossviz loop wall time |",
        "|---|---|---|---|---|---|",
    ]
    for n in sizes:
        lv, bare = rows["lossviz", n], rows["bare", n]

        def rng(c: Cell) -> str:
            return f"{fmt_s(c.value)} ({fmt_s(c.spread[0])}–{fmt_s(c.spread[1])})" if c.spread else fmt_s(c.value)

        out.append(f"| {fmt_n(n)} | {rng(lv.cost_s)} | {rng(bare.cost_s)} | "
                   f"{fmt_ratio(_ratio(lv.cost_s.value, bare.cost_s.value))} | {fmt_s(lv.details.get('gen_s'))}/step | "
                   f"{fmt_s(lv.details.get('loop_s'))} |")
    return out


def _peer_table(rows: dict[tuple[str, int], ToolRow], sizes: tuple[int, ...]) -> list[str]:
    out = ["| logged steps | tool | per update, median (min–max) | messages per update | bytes per update | "
           "first full draw (naive) |", "|---|---|---|---|---|---|"]
    for n in sizes:
        for tool in ("livelossplot", "naive"):
            r = rows[tool, n]
            c = r.cost_s
            spread = f" ({fmt_s(c.spread[0])}–{fmt_s(c.spread[1])})" if c.spread else ""
            first = r.details.get("first_s")
            out.append(f"| {fmt_n(n)} | {NAMES[tool]} | {cell(c, fmt_s)}{spread} | "
                       f"{fmt_num(r.details.get('update_msgs'), 0)} | {cell(r.frame_bytes, fmt_bytes)} | "
                       f"{fmt_s(first) + ', ' + fmt_bytes(r.details.get('first_bytes')) if first else '—'} |")
    return out


def _memory_table(rows: dict[tuple[str, int], ToolRow], sizes: tuple[int, ...]) -> list[str]:
    out = ["| logged steps | " + " | ".join(f"{NAMES[t]} retained / peak" for t in ORDER) + " |",
           "|---|" + "---|" * len(ORDER)]
    for n in sizes:
        cells = []
        for t in ORDER:
            r = rows[t, n]
            cells.append(f"{cell(r.mem_retained, fmt_num)} / {cell(r.mem_peak, fmt_num)}")
        out.append(f"| {fmt_n(n)} | " + " | ".join(cells) + " |")
    return out


def _paint_table(paint: Mapping[str, PaintResult], sizes: tuple[int, ...]) -> list[str]:
    out = ["| tool | logged steps | paint per frame, median (min–max) | in-page (arrival → paint) | "
           "last path change → paint | kernel → page transfer | bytes per frame | messages per frame | "
           "line path updates per frame | frames |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for tool, res in paint.items():
        for n in sizes:
            ups = res.updates.get(n)
            if not ups:
                if n in res.skipped:
                    out.append(f"| {NAMES[tool]} | {fmt_n(n)} | {res.skipped[n]} | | | | | | | |")
                continue

            def med(key: str, ups: list[dict[str, float]] = ups) -> float:
                return statistics.median(u[key] for u in ups)

            p = [u["paint_ms"] for u in ups]
            out.append(f"| {NAMES[tool]} | {fmt_n(n)} | "
                       f"{fmt_ms(med('paint_ms'))} ({fmt_ms(min(p))}–{fmt_ms(max(p))}) | "
                       f"{fmt_ms(med('in_page_ms'))} | {fmt_ms(med('last_change_to_paint_ms'))} | "
                       f"{fmt_ms(med('transfer_ms'))} | {fmt_bytes(med('bytes'))} | "
                       f"{med('messages'):.0f} | {med('mutations'):.0f} | {len(ups)} |")
    return out


# -- the page --------------------------------------------------------------------------------


METHOD = """\
## Method

Every tool logs the same training loop: 4 metrics per step (`loss`, `val_loss`, `acc`, `lr`),
fresh Python floats computed from the step (a decaying loss plus deterministic noise, so lines
are as jagged as per-batch losses). Kernel-side numbers come from a **real ipykernel**
(this venv's, started with jupyter_client, one fresh kernel per run) with the inline
matplotlib backend, exactly as in a notebook; the kernel has no frontend, which changes
nothing for what it sends. The browser column uses a real JupyterLab and headless Debian
Chromium (`tests/browser_harness.py`). Medians are over independent runs (lossviz, bare
loop: {small_repeats} fresh kernels per size up to 1e5 steps, {repeats} above) or over
repeated updates in one kernel (peers: {updates} timed updates per size; browser:
{paint_updates} frames per size).

The tools:

- **lossviz_widget**: `plot.log(loss=…, val_loss=…, acc=…, lr=…, step=i)` on a `LossPlot()`
  (defaults: smoothing 0.6, 10 fps, `max_points` 2000), its render thread running as in any kernel.
- **livelossplot** {llp_version}: `PlotLosses()` with its defaults (MatplotlibPlot + ExtremaPrinter,
  notebook mode: `clear_output(wait=True)`, a new figure, every point re-plotted, PNG through the
  inline backend); one update = `update(...)` + `send()`.
- **naive bqplot loop**: one `Figure`, one `Lines` per metric; values appended to Python lists
  and, on every update, `line.x = steps; line.y = values` for each line (full lists, one message
  per assignment, no `hold_sync`, no downsampling).
- **bare Python loop**: `def log(step, **kw)` appending `(step, value)` to a dict of lists.

Columns:

1. **Cost per `log()` / per update.** lossviz and the bare loop: wall time of the whole loop of N
   calls divided by N, minus the time the loop spends computing the 4 values (measured on its
   own over min(N, 1e6) steps and shown in the details). For lossviz, frames rendered by the
   background thread while the loop runs are included (they take the GIL from it; the frame
   that draws the tail after the loop is not). The peers re-draw everything on each update, so
   their cost depends on N: it is the median cost of one "log a step + redraw" once N steps are
   logged (the first N−{updates} steps are appended without drawing). That is the per-step cost
   of updating on every step at that point of a run, or the cost of one epoch-end redraw.
   ‡ = extrapolated linearly in N from the largest size run (a full replot is O(N)).
   "× bare loop" and "× lossviz" divide by the bare loop's and lossviz's per-call cost at that N.
2. **Bytes per frame.** Wire size of the kernel's IOPub messages, as received by a
   jupyter_client ZMQ subscriber: the sum of `len` of every multipart frame (signature, header,
   parent header, metadata, content and binary buffers). lossviz: `comm_msg` traffic while
   logging, split into frames at gaps of ≥ 40 ms, median over frames (`comm_open`s of
   newly created widgets are one-off and not counted); the details also give the *steady* frame
   (one new step after N, drawn by `flush()`). Peers: all non-`status` IOPub messages of one
   update (livelossplot: `clear_output`, the PNG `display_data` and the ExtremaPrinter text;
   naive: its 8 `comm_msg`s).
3. **IOPub messages per second**, as jupyter_server counts them (every message but `status`,
   `comm_open`, `execute_input`, over a sliding 3 s window, reset when the kernel goes idle;
   above 1000/s it drops output): the peak of that rate, replayed from the recorded receive
   times, over the whole logging run. ⚠ = above 1000/s (jupyter_server would drop messages).
   † = peers: messages per update ÷ seconds per update, the rate a loop that updates on every
   step sustains once its run is longer than the 3 s window.
4. **Peak memory per point per metric**: (peak RSS of the kernel during the run − RSS just
   before it) / (4 N); the peak counter is reset (`/proc/self/clear_refs`) before the run. It
   includes everything the tool keeps and any transient (buffer doubling, figure drawing);
   the memory table also gives the *retained* RSS after the run. Meaningless at 1e3–1e4,
   where page granularity and widget creation dominate.
5. **Browser paint per frame** (lossviz and the naive loop): a notebook cell keeps running (as
   a training cell does), grows the run to N steps, then logs one step at a time on the
   driver's command. lossviz draws it from its render thread as during training; the naive
   loop re-assigns its arrays. In the page an init script timestamps every incoming kernel
   WebSocket message with `performance.now()` before JupyterLab handles it (decoding its
   header), a `MutationObserver` records changes of the `d` attribute of bqplot `path.line`
   elements (data lines; legend swatches excluded; the naive loop and `renderer="svg"`) and a
   listener for the `lossviz-drawn` event of each canvas redraw (lossviz's default canvas
   renderer, whose worker reports each panel drawn), and after each batch of such changes a
   `requestAnimationFrame` callback posts a `MessageChannel` message, which runs right after
   that frame has been rendered: the paint
   time. **Paint per frame = paint after the update's last path change − kernel send time of
   its first `comm_msg`** (`header.date`; the page clock is calibrated against the kernel's by
   round trips); the details also give the in-page part (arrival of the first message →
   paint) and the last step (last path change → paint). Sizes predicted (linearly from the
   previous size) to need more than {limit:.0f} s per frame get a single frame (§), more than
   {single_limit:.0f} s are skipped and extrapolated (‡). The frames that grow the run to N are not
   measured: the kernel acknowledges the grow only once lossviz's render thread has drawn its
   last step (`FrameScheduler.wait_idle`; frames are throttled to 20% of the thread's CPU, so
   after a fast loop the tail frame can come a second or more after the loop ends, and was
   earlier measured as part of the first updates), then the driver waits until no line path
   changed for 400 ms. The first size of each tool starts with one unrecorded warm-up frame.
6. **Browser main-thread share** (lossviz, JupyterLab; svg / canvas renderer): the share of wall
   time the page's main thread is busy while the plot updates live (DevTools `TaskDuration`, all
   of script, style, layout, paint and the kernel messages' handling); Notebook 7 and the time per
   frame are in "Browser main thread during live updates" below. Unlike column 5 it is measured
   while frames keep coming, as in training, and on the canvas renderer too (column 5 times SVG
   path changes only).

Extras: **`log()` with CPU tensors** is the lossviz loop with 4 0-d float32 torch tensors per
call (as `loss.detach()` gives), cycled from a pool of {tensor_pool} made before the timed loop; the loop
that only fetches them is timed on its own and subtracted, and one tensor is logged to a throwaway
plot first (one-time imports); {tensor_steps} steps, {repeats} fresh kernels,
frames included as above. The **steady frame** is `plot.log(one step); plot.flush()` after N steps, with the
render thread parked (`plot.fps = 0.001`), timed in the kernel (median of 5); **re-smoothing**
is `plot.smoothing = w; plot.flush()` in the same kernel for w = 0.9, 0.95, 0.8 in turn (each
is a new weight, so the whole history is re-smoothed); the plot is not displayed, so
`flush()` is the frame alone (no static image). **Frames sent during the logging loop** and the
**longest wait for a frame** come from the IOPub timeline of the timed loop (frames split at
40 ms gaps; the longest wait includes loop start → first frame and last frame → loop end):
how live the plot stays while a loop logs as fast as it can.
"""


def render(cfg: Config, rows: dict[tuple[str, int], ToolRow], paint: Mapping[str, PaintResult] | None,
           env: dict[str, str], runtime_s: float, versions: dict[str, str], tensors: Cell | None = None,
           live: list[LiveResult] | None = None) -> str:
    sizes = cfg.sizes
    pcells = paint_cells(paint, sizes) if paint else {}
    browser_note = "not run" if paint is None else "—"
    parts = [
        "# lossviz_widget against its peers: scale and speed",
        "",
        "> **Machines are noisy.** These are medians of a few runs on one small shared VM; expect "
        "±20% between runs and much more on a busy machine. Compare ratios within one run, not "
        "absolute numbers across machines. Regenerate with `bash benchmarks/run.sh` "
        "(`--quick` for a shorter run).",
        "",
        f"- **Run**: `{cfg.name}` mode, {env['date']}, total {runtime_s / 60:.1f} min",
        f"- **Machine**: {env['machine']}",
        f"- **Measured**: lossviz_widget at commit `{env['commit']}`"
        + (f" with uncommitted changes in `lossviz_widget/`: {env['dirty']}" if env.get("dirty") else
           " (clean `lossviz_widget/`)"),
        "- **Versions**: " + ", ".join(f"{k} {v}" for k, v in versions.items()),
        "",
        "## Side by side",
        "",
        *_main_table(rows, sizes, pcells, browser_note, live),
        "",
        "‡ extrapolated (not run at that size; see the method). † sustained rate of a loop updating on every "
        "step (messages per update ÷ seconds per update). ⚠ above jupyter_server's 1000 msg/s: output is "
        "dropped. § one frame, not a median (too slow for more). Column definitions are below; all other "
        "numbers are medians.",
        "",
        "## Targets",
        "",
        *_targets(rows, sizes, pcells, tensors or Cell(None, "not measured"), cfg.tensor_steps, live),
        "",
        "## Details",
        "",
        "### lossviz_widget frames in the kernel (is a frame O(new + max_points) or O(all)?)",
        "",
        *_frames_table(rows, sizes),
        "",
        "### Cost per call: lossviz_widget against the bare loop",
        "",
        *_cost_table(rows, sizes),
        "",
        "### Peers per update",
        "",
        *_peer_table(rows, sizes),
        "",
        "### Memory per point per metric (bytes: retained after the run / peak during it)",
        "",
        *_memory_table(rows, sizes),
        "",
    ]
    if paint:
        parts += ["### Browser paint per frame", "", *_paint_table(paint, sizes), ""]
    if live:
        parts += ["### Browser main thread during live updates", "", LIVE_METHOD, "", live_table(live), ""]
    parts.append(METHOD.format(repeats=cfg.repeats, small_repeats=cfg.repeats_for(1), updates=cfg.updates,
                               paint_updates=cfg.paint_updates, limit=cfg.paint_limit_s,
                               single_limit=cfg.paint_single_limit_s,
                               llp_version=versions.get("livelossplot", ""), tensor_steps=fmt_n(cfg.tensor_steps),
                               tensor_pool=TENSOR_POOL))
    return "\n".join(parts) + "\n"
