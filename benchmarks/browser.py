"""Browser paint time per frame: real JupyterLab + headless Debian Chromium (tests/browser_harness).

One notebook per tool runs :func:`workloads.serve_commands` in a cell that keeps running
(as a training cell does) and obeys command files written by this driver: grow the run
to N logged steps (acknowledged once the plot's render thread has drawn the last of them),
then log one step and draw it, ``updates`` times, waiting in between until the page is quiet.

In the page, an init script (:data:`INSTRUMENT_JS`, installed before JupyterLab loads):

* wraps ``WebSocket`` so every incoming kernel message is timestamped with
  ``performance.now()`` on arrival, before JupyterLab handles it, and its header (type,
  kernel send ``date``) decoded from the ``v1.kernel.websocket.jupyter.org`` frame;
* watches the whole document with a ``MutationObserver`` for changes of the ``d``
  attribute of bqplot ``path.line`` elements outside legends (the drawn data lines), and
  counts each redraw of a ``renderer="canvas"`` panel (the ``lossviz-drawn`` event ``js/hover.js``
  fires when a panel's lines are drawn, in the page or in its drawing worker) the same way;
* after each batch of such mutations, requests an animation frame and, from it, posts a
  ``MessageChannel`` message: that task runs right after the frame that contains the new
  paths has been rendered, and its ``performance.now()`` is the paint time.

Per update: **paint time** = paint after the update's last ``d`` mutation (or canvas redraw) minus the kernel
send time of the update's first ``comm_msg`` (``header.date``, kernel clock = this
machine's clock; the page clock ``performance.timeOrigin + now()`` is calibrated against
``time.time()`` by round trips). **In-page time** = the same paint minus the arrival of
that first message in the page (no clock matching needed).
"""

from __future__ import annotations

import json
import math
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from browser_harness import (
    DARK_THEME,
    LAB_SETTINGS,
    NotebookPage,
    launch_chromium,
    new_context,
    poll,
    running_jupyterlab,
    write_notebook,
)

__all__ = ["INSTRUMENT_JS", "PaintResult", "measure_paint", "young_run_screenshots"]

BENCH_DIR = Path(__file__).resolve().parent
IMPORT_WORKLOADS = f"import sys\nsys.path.insert(0, {str(BENCH_DIR)!r})\nimport workloads\n"  # a notebook cell's start

INSTRUMENT_JS = r"""
(() => {
  if (window.__bench) return;
  const B = window.__bench = { msgs: [], muts: [], paints: [], lastMut: -1, lastRaf: -1, pending: false };
  const dec = new TextDecoder('utf-8');
  const part = (buf, a, b) => dec.decode(new Uint8Array(buf, a, b - a));
  function header(data) {
    try {
      if (typeof data === 'string') { const m = JSON.parse(data); return [m.channel, m.header]; }
      const dv = new DataView(data);
      const count = Number(dv.getBigUint64(0, true));
      if (count > 2 && count < 4096 && 8 * (count + 1) <= data.byteLength) {  // v1 protocol
        const off = [];
        for (let i = 0; i < 3; i++) off.push(Number(dv.getBigUint64(8 * (i + 1), true)));
        return [part(data, off[0], off[1]), JSON.parse(part(data, off[1], off[2]))];
      }
      const o0 = dv.getUint32(4), o1 = dv.getUint32(8);  // legacy binary: first part is the JSON message
      const m = JSON.parse(part(data, o0, o1));
      return [m.channel, m.header];
    } catch (e) { return [null, null]; }
  }
  const Native = window.WebSocket;
  class Instrumented extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', (ev) => {
        const t = performance.now();
        const [channel, h] = header(ev.data);
        if (channel === 'iopub' && h && h.msg_type !== 'status') {
          B.msgs.push({ t, type: h.msg_type, date: h.date, size: ev.data.byteLength || ev.data.length || 0 });
        }
      });
    }
  }
  window.WebSocket = Instrumented;
  const mc = new MessageChannel();
  mc.port1.onmessage = (ev) => { B.paints.push({ raf: ev.data, t: performance.now() }); };
  function drawn(hit) {
    const t = performance.now();
    B.muts.push({ t, n: hit });
    B.lastMut = t;
    if (!B.pending) {
      B.pending = true;
      requestAnimationFrame(() => {
        B.pending = false;
        B.lastRaf = performance.now();
        mc.port2.postMessage(B.lastRaf);  // delivered in a task after this frame is rendered
      });
    }
  }
  new MutationObserver((records) => {
    let hit = 0;
    for (const r of records) {
      const el = r.target;
      // data lines only: bqplot redraws the legend's swatch paths too (in .g_legend)
      if (el.tagName === 'path' && el.classList.contains('line') && !el.closest('.g_legend')) hit++;
    }
    if (hit) drawn(hit);
  }).observe(document, { subtree: true, attributes: true, attributeFilter: ['d'] });
  // renderer="canvas": js/hover.js fires "lossviz-drawn" on a panel's canvas once its lines are drawn
  // (on the main thread, or in the drawing worker: then when the worker says so)
  document.addEventListener('lossviz-drawn', () => drawn(1), true);
})();
"""

_TAKE_JS = """() => { const B = window.__bench; const out = {msgs: B.msgs, muts: B.muts, paints: B.paints};
  B.msgs = []; B.muts = []; B.paints = []; return out; }"""
_QUIET_JS = """(quietMs) => { const B = window.__bench; const now = performance.now();
  return B.lastMut >= 0 && now - B.lastMut > quietMs && !B.pending && B.paints.length > 0
    && B.paints[B.paints.length - 1].raf >= B.lastMut; }"""

_MSGS_QUIET_JS = """(quietMs) => { const B = window.__bench; const m = B.msgs;
  return m.length > 0 && performance.now() - m[m.length - 1].t > quietMs; }"""
SELECTORS = {"lossviz": ".lossviz", "naive": ".bqplot.figure"}


@dataclass
class PaintResult:
    """Per tool: size -> list of per-update measurements (ms), plus sizes skipped and why."""

    tool: str
    updates: dict[int, list[dict[str, float]]] = field(default_factory=dict)
    skipped: dict[int, str] = field(default_factory=dict)
    grow_s: dict[int, float] = field(default_factory=dict)

    def median(self, n: int, key: str = "paint_ms") -> float | None:
        vals = [u[key] for u in self.updates.get(n, []) if u.get(key) is not None]
        return statistics.median(vals) if vals else None


def _epoch(date: str) -> float:
    import datetime as dt

    return dt.datetime.fromisoformat(date.replace("Z", "+00:00")).timestamp()


class _Notebook(NotebookPage):
    """:class:`NotebookPage` that opens each notebook in a workspace of its own, so JupyterLab
    does not restore (and focus) the tabs of an earlier tool's notebook."""

    def open(self, name: str, timeout: float = 60.0) -> None:
        workspace = name.replace(".", "-")
        self.page.goto(self.server.url(f"lab/workspaces/{workspace}/tree/{name}"), wait_until="domcontentloaded")
        self.cell(0).wait_for(state="visible", timeout=timeout * 1000)
        self.wait_kernel_idle(timeout)


class _Driver:
    """Writes command files for :func:`workloads.serve_commands` and reads the acks."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.k = 0

    def send(self, cmd: dict[str, Any], timeout: float, nb: NotebookPage) -> dict[str, Any]:
        self.post(cmd)
        return self.wait(cmd, timeout, nb)

    def post(self, cmd: dict[str, Any]) -> None:
        """Write the next command (then :meth:`wait` for its ack)."""
        tmp = self.folder / f"cmd-{self.k}.tmp"
        tmp.write_text(json.dumps(cmd))
        tmp.rename(self.folder / f"cmd-{self.k}.json")

    def wait(self, cmd: dict[str, Any], timeout: float, nb: NotebookPage) -> dict[str, Any]:
        """The ack of the command :meth:`post` wrote last."""
        ack = self.folder / f"ack-{self.k}.json"
        checked = [time.monotonic()]

        def acknowledged() -> bool:
            if ack.exists():
                return True
            if time.monotonic() - checked[0] > 2.0:  # the serving cell failed: say why
                checked[0] = time.monotonic()
                errors = nb.error_outputs()
                if errors:
                    raise RuntimeError(f"benchmark cell failed:\n{errors[-1][-3000:]}")
            return False

        poll(acknowledged, timeout, f"kernel did not acknowledge {cmd} within {timeout:.0f}s", interval=0.005)
        time.sleep(0.002)
        self.k += 1
        return json.loads(ack.read_text())


def _clock_offset(page: Any) -> float:
    """page epoch seconds (timeOrigin + now) minus time.time(), from the tightest of 15 round trips."""
    best = (float("inf"), 0.0)
    for _ in range(15):
        t0 = time.time()
        p = page.evaluate("performance.timeOrigin + performance.now()") / 1000.0
        t1 = time.time()
        best = min(best, (t1 - t0, p - (t0 + t1) / 2))
    return best[1]


def _analyse(data: dict[str, Any], ack: dict[str, Any], offset: float, origin: float) -> dict[str, Any] | None:
    """One update: first comm_msg after the kernel's t_a, last path mutation, the paint after it."""
    msgs = [m for m in data["msgs"]
            if m["type"] == "comm_msg" and m.get("date") and _epoch(m["date"]) >= ack["t_a"] - 1e-3]
    if not msgs or not data["muts"]:
        return None
    first = min(msgs, key=lambda m: m["t"])
    sent = _epoch(first["date"])
    last_mut = max(m["t"] for m in data["muts"] if m["t"] >= first["t"]) if any(
        m["t"] >= first["t"] for m in data["muts"]) else None
    if last_mut is None:
        return None
    paints = [p for p in data["paints"] if p["raf"] >= last_mut]
    if not paints:
        return None
    paint = min(paints, key=lambda p: p["raf"])["t"]
    paint_epoch = (origin + paint) / 1000.0 - offset  # in time.time() terms
    return {
        "paint_ms": (paint_epoch - sent) * 1000.0,
        "in_page_ms": paint - first["t"],
        "transfer_ms": ((origin + first["t"]) / 1000.0 - offset - sent) * 1000.0,
        "kernel_draw_ms": (ack["t_b"] - ack["t_a"]) * 1000.0,
        "mutations": sum(m["n"] for m in data["muts"] if m["t"] >= first["t"]),
        "last_change_to_paint_ms": paint - last_mut,
        "bytes": sum(m["size"] for m in msgs),
        "messages": len(msgs),
    }


def _run_tool(nb: NotebookPage, tool: str, sizes: list[int], updates: int, limit_s: float,
              single_limit_s: float, log: Any) -> PaintResult:
    page = nb.page
    root = nb.server.root_dir
    folder = root / f"cmds-{tool}"
    name = f"paint_{tool}.ipynb"
    write_notebook(root / name, [f"{IMPORT_WORKLOADS}workloads.serve_commands({tool!r}, {str(folder)!r})"])
    nb.open(name)
    nb.run_all_cells()
    try:
        page.locator(SELECTORS[tool]).first.wait_for(state="visible", timeout=60_000)
    except Exception:
        nb.screenshot(f"paint-{tool}-failed")
        raise
    offset = _clock_offset(page)
    origin = page.evaluate("performance.timeOrigin")
    driver = _Driver(folder)
    result = PaintResult(tool)
    total = max(sizes)
    wait_s = max(60.0, single_limit_s * 4)
    previous: tuple[int, float] | None = None
    for n in sizes:
        single = False
        if previous is not None:
            pn, pms = previous
            predicted = pms / 1000.0 * n / pn
            if predicted > single_limit_s:
                result.skipped[n] = f"skipped: ~{predicted:.0f} s per frame predicted from 1e{len(str(pn)) - 1} steps"
                continue
            single = predicted > limit_s
        t = time.monotonic()
        driver.send({"op": "grow", "n": n, "total": total}, timeout=max(120.0, n * 2e-5 * 3), nb=nb)
        result.grow_s[n] = time.monotonic() - t
        _wait_quiet(page, timeout=wait_s)
        page.evaluate(_TAKE_JS)  # the frames that grew the run are not measured
        rows = []
        warmup = 1 if previous is None else 0  # one unrecorded frame at a tool's first size
        for i in range(warmup + (1 if single else updates)):  # too slow for a median: one frame
            ack = driver.send({"op": "update"}, timeout=120.0, nb=nb)
            _wait_quiet(page, timeout=wait_s)
            row = _analyse(page.evaluate(_TAKE_JS), ack, offset, origin)
            if i >= warmup and row is not None:
                rows.append(row)
        result.updates[n] = rows
        med = result.median(n)
        log(f"  paint {tool:8s} n={n:>10,}: {'—' if med is None else f'{med:.1f}'} ms per frame "
            f"(in-page {result.median(n, 'in_page_ms') or 0:.1f} ms, {len(rows)} frames)")
        if med is not None:
            previous = (n, med)
    driver.send({"op": "done"}, timeout=60.0, nb=nb)
    nb.wait_cell_done(0, timeout=wait_s)
    nb.screenshot(f"paint-{tool}")
    return result


def _wait_quiet(page: Any, timeout: float, quiet_ms: float = 400.0) -> None:
    """Until no line path changed for ``quiet_ms`` and the last change has been painted."""
    poll(lambda: page.evaluate(_QUIET_JS, quiet_ms), timeout, "page never settled after an update", interval=0.05)


def measure_paint(sizes: dict[str, list[int]], updates: int, limit_s: float, single_limit_s: float,
                  artifacts: Path, log: Any = print) -> dict[str, PaintResult]:
    """Paint times per frame for each tool in ``sizes`` (``{"lossviz": [...], "naive": [...]}``).

    The previous size's paint time, scaled linearly, predicts the next one: above ``limit_s``
    per frame only one frame is measured, above ``single_limit_s`` the size is skipped.
    """
    from playwright.sync_api import sync_playwright

    artifacts.mkdir(parents=True, exist_ok=True)
    results: dict[str, PaintResult] = {}
    with running_jupyterlab(artifacts) as server, sync_playwright() as pw:
        browser = launch_chromium(pw)
        try:
            for tool, tool_sizes in sizes.items():
                context = new_context(browser)
                context.set_default_timeout(120_000)
                context.add_init_script(INSTRUMENT_JS)
                page = context.new_page()
                try:
                    results[tool] = _run_tool(_Notebook(page, server, artifacts), tool, tool_sizes,
                                              updates, limit_s, single_limit_s, log)
                finally:
                    context.close()
        finally:
            browser.close()
    return results


# -- main-thread share during live updates ------------------------------------------------------

#: ``measure_live`` renderers: the ``LossPlot(renderer=...)`` each one shows. ``canvas-main`` is the canvas
#: renderer with its drawing worker switched off (``window.lossvizCanvasWorker = false``): the lines drawn on
#: the page's main thread, as before the worker (the A of an A/B in one run).
RENDERERS = {"svg": "svg", "canvas": "canvas", "canvas-main": "canvas"}

#: DevTools ``Performance.getMetrics`` counters summed over the live window (seconds of main-thread time).
LIVE_METRICS = ("TaskDuration", "ScriptDuration", "LayoutDuration", "RecalcStyleDuration")


@dataclass
class LiveResult:
    """One live window: main-thread share and time per frame, for one app and run length."""

    app: str
    renderer: str
    n: int
    seconds: float
    frames: int
    share: float  # TaskDuration / wall time of the window
    task_ms_per_frame: float
    script_ms_per_frame: float
    layout_style_ms_per_frame: float
    paths_per_frame: float  # `d` changes of data line paths (SVG) per frame
    bytes_per_frame: float
    paint_ms: float | None  # median paint time of single updates right after, as measure_paint
    plot_width: int | None  # the widest plot area the kernel knew of (0: none reported)
    in_page_ms: float | None = None  # the same single updates: first message's arrival in the page -> painted


TRACE_CATEGORIES = ["devtools.timeline", "disabled-by-default-devtools.timeline", "v8", "blink.user_timing"]


def trace_summary(events: list[dict[str, Any]], top: int = 14, thread: str = "CrRendererMain") -> dict[str, float]:
    """Self time (ms) of the renderer's ``thread`` (its main thread; ``"DedicatedWorker thread"``: the
    canvas drawing worker) per event name, the ``top`` largest: each complete event's duration minus
    that of the events nested in it."""
    main = {(e["pid"], e["tid"]) for e in events
            if e.get("ph") == "M" and e.get("name") == "thread_name" and e["args"].get("name") == thread}
    spans = sorted(((e["ts"], e.get("dur", 0), e["name"]) for e in events
                    if e.get("ph") == "X" and (e["pid"], e["tid"]) in main), key=lambda t: (t[0], -t[1]))
    out: dict[str, float] = {}
    stack: list[tuple[float, str]] = []  # (end, name) of the open events
    for ts, dur, name in spans:
        while stack and stack[-1][0] <= ts:
            stack.pop()
        if stack:  # nested: not the parent's own time
            out[stack[-1][1]] = out.get(stack[-1][1], 0.0) - dur / 1000.0
        out[name] = out.get(name, 0.0) + dur / 1000.0
        stack.append((ts + dur, name))
    return dict(sorted(out.items(), key=lambda kv: -kv[1])[:top])


def profile_summary(profile: dict[str, Any], top: int = 20) -> dict[str, float]:
    """Self time (ms) per JS function (``name file:line``) of a DevTools ``Profiler`` profile, ``top`` largest."""
    nodes = {node["id"]: node for node in profile["nodes"]}
    out: dict[str, float] = {}
    for sample, delta in zip(profile.get("samples", []), profile.get("timeDeltas", []), strict=False):
        f = nodes[sample]["callFrame"]
        key = f"{f['functionName'] or '(anon)'} {f['url'].rsplit('/', 1)[-1][:40]}:{f['lineNumber']}"
        out[key] = out.get(key, 0.0) + delta / 1000.0
    return dict(sorted(out.items(), key=lambda kv: -kv[1])[:top])


def _metrics(cdp: Any) -> dict[str, float]:
    return {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}


def _open_app_notebook(nb: NotebookPage, app: str, name: str) -> None:
    """Open ``name`` in JupyterLab (own workspace) or Notebook 7 and wait for an idle kernel."""
    if app == "jupyterlab":
        _Notebook.open(nb, name)  # type: ignore[arg-type]
        return
    nb.page.goto(nb.server.url(f"notebooks/{name}"), wait_until="domcontentloaded")
    nb.cell(0).wait_for(state="visible", timeout=60_000)
    def idle() -> bool:
        try:
            return any(k.get("execution_state") == "idle" for k in nb.server.api("kernels"))
        except OSError:  # the server answers 500 while a kernel is starting (no last_activity yet)
            return False

    poll(idle, 60, "Notebook 7: no idle kernel", interval=0.5)
    nb.page.wait_for_timeout(1000)


def _open_live(nb: NotebookPage, app: str, renderer: str, block: int) -> _Driver:
    """Show a LossPlot in one cell, start :func:`workloads.serve_commands` in the next (a "training" cell
    that keeps running), scroll the panels into view; the driver of that cell."""
    page = nb.page
    root = nb.server.root_dir
    folder = root / f"cmds-live-{app}-{renderer}-{block}"
    name = f"live_{app}_{renderer}_{block}.ipynb"
    # shown by a cell of its own (the view reports its width to the idle kernel), then the "training" cell
    write_notebook(root / name, [
        f"{IMPORT_WORKLOADS}from lossviz_widget import LossPlot\n"
        f"plot = LossPlot(title='bench', renderer={RENDERERS[renderer]!r})\n"
        "plot.log(workloads.values_at(0, 1e-7), step=0)\nplot",
        f"workloads.serve_commands('lossviz', {str(folder)!r}, plot=plot, start=1)",
    ])
    _open_app_notebook(nb, app, name)
    nb.cell(0).locator(".jp-InputArea-prompt").click()
    page.keyboard.press("Shift+Enter")
    page.locator(SELECTORS["lossviz"]).first.wait_for(state="visible", timeout=60_000)
    page.wait_for_timeout(2000)  # the view measures its plot area and tells the (idle) kernel
    nb.cell(1).locator(".jp-InputArea-prompt").click()
    page.keyboard.press("Shift+Enter")
    page.mouse.move(1, 999)  # not over a plot (no hover readout)
    page.wait_for_timeout(500)
    # the panels in view (running a cell scrolls to the next one): what is measured is a plot being watched
    page.locator(".lossviz .lossviz-panels").first.evaluate("el => el.scrollIntoView({block: 'start'})")
    return _Driver(folder)


def _live_app(nb: NotebookPage, app: str, sizes: list[int], seconds: float, steps_per_s: int, repeats: int,
              updates: int, log: Any, trace: bool = False, renderer: str = "svg", block: int = 0) -> list[LiveResult]:
    page = nb.page
    driver = _open_live(nb, app, renderer, block)
    cdp = page.context.new_cdp_session(page)
    cdp.send("Performance.enable", {"timeDomain": "threadTicks"})
    offset = _clock_offset(page)
    origin = page.evaluate("performance.timeOrigin")
    out: list[LiveResult] = []
    total = max(sizes) + int(steps_per_s * seconds * repeats * len(sizes)) + 10 * updates * len(sizes) + 1000
    for n in sizes:
        driver.send({"op": "grow", "n": n, "total": total}, timeout=max(120.0, n * 2e-5 * 3), nb=nb)
        poll(lambda: page.evaluate(_MSGS_QUIET_JS, 500), 120.0, "page never settled after growing", interval=0.05)
        for _ in range(repeats):
            page.evaluate(_TAKE_JS)
            if trace:
                cdp.send("Profiler.enable")
                cdp.send("Profiler.setSamplingInterval", {"interval": 200})
                cdp.send("Profiler.start")
                page.context.browser.start_tracing(page=page, categories=TRACE_CATEGORIES)
            m0, w0 = _metrics(cdp), time.monotonic()
            ack = driver.send({"op": "live", "seconds": seconds, "steps_per_s": steps_per_s}, timeout=120.0, nb=nb)
            m1, w1 = _metrics(cdp), time.monotonic()
            if trace:
                events = json.loads(page.context.browser.stop_tracing())["traceEvents"]
                profile = cdp.send("Profiler.stop")["profile"]
                log(f"  profile {app} n={n:,}: self ms per frame by function: "
                    + ", ".join(f"{k} {v / max(1, ack.get('frames') or 1):.1f}"
                                for k, v in profile_summary(profile).items()))
                log(f"  trace {app} n={n:,}: main-thread self ms per frame by event: "
                    + ", ".join(f"{k} {v / max(1, ack.get('frames') or 1):.1f}"
                                for k, v in trace_summary(events).items()))
                worker = trace_summary(events, top=6, thread="DedicatedWorker thread")
                log(f"  trace {app} n={n:,}: drawing worker self ms per frame by event: "
                    + (", ".join(f"{k} {v / max(1, ack.get('frames') or 1):.1f}" for k, v in worker.items())
                       or "none (no worker thread)"))
                trace = False  # the first window only
            data = page.evaluate(_TAKE_JS)
            d = {k: m1.get(k, 0.0) - m0.get(k, 0.0) for k in LIVE_METRICS}
            frames = max(1, int(ack.get("frames") or 0))
            width = ack.get("plot_width")
            paints = []
            in_page = []
            # single frames after the window: the paint timer of measure_paint (SVG path changes, canvas redraws)
            for _u in range(updates):
                page.wait_for_timeout(500)
                page.evaluate(_TAKE_JS)
                uack = driver.send({"op": "update"}, timeout=120.0, nb=nb)
                _wait_quiet(page, timeout=60.0)
                row = _analyse(page.evaluate(_TAKE_JS), uack, offset, origin)
                if row is not None:
                    paints.append(row["paint_ms"])
                    in_page.append(row["in_page_ms"])
            res = LiveResult(
                app=app, renderer=renderer, n=n, seconds=w1 - w0, frames=frames, share=d["TaskDuration"] / (w1 - w0),
                task_ms_per_frame=d["TaskDuration"] * 1e3 / frames,
                script_ms_per_frame=d["ScriptDuration"] * 1e3 / frames,
                layout_style_ms_per_frame=(d["LayoutDuration"] + d["RecalcStyleDuration"]) * 1e3 / frames,
                paths_per_frame=sum(m["n"] for m in data["muts"]) / frames,
                bytes_per_frame=sum(m["size"] for m in data["msgs"] if m["type"] == "comm_msg") / frames,
                paint_ms=statistics.median(paints) if paints else None, plot_width=width,
                in_page_ms=statistics.median(in_page) if in_page else None,
            )
            out.append(res)
            log(f"  live {app:10s} {renderer:6s} n={n:>9,}: share {res.share:5.1%}, "
                f"task {res.task_ms_per_frame:5.1f} ms/frame "
                f"(script {res.script_ms_per_frame:.1f}, layout+style {res.layout_style_ms_per_frame:.1f}), "
                f"{res.paths_per_frame:.1f} paths/frame, {res.bytes_per_frame / 1024:.1f} KiB/frame, "
                f"{frames} frames, paint {res.paint_ms or float('nan'):.1f} ms "
                f"(in page {res.in_page_ms or float('nan'):.1f}), plot width {width}")
    driver.send({"op": "done"}, timeout=60.0, nb=nb)
    return out


def _out(artifacts: Path | None, name: str) -> Path:
    """``artifacts``, or ``benchmarks/out/<name>``: made if missing."""
    folder = artifacts or BENCH_DIR / "out" / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _bench_context(browser: Any) -> Any:
    """A new browser context whose pages carry :data:`INSTRUMENT_JS` (long timeouts: the kernel is busy)."""
    context = new_context(browser)
    context.set_default_timeout(120_000)
    context.add_init_script(INSTRUMENT_JS)
    return context


def measure_live(sizes: list[int], apps: tuple[str, ...] = ("jupyterlab", "notebook"), seconds: float = 5.0,
                 steps_per_s: int = 500, repeats: int = 3, updates: int = 3, artifacts: Path | None = None,
                 log: Any = print, trace: bool = False, renderers: tuple[str, ...] = ("svg",)) -> list[LiveResult]:
    """Main-thread share while lossviz updates live (``steps_per_s`` steps of 4 metrics logged per
    second for ``seconds``, the plot drawing at its default 10 frames/s), per app and run length:
    ``Performance.getMetrics`` ``TaskDuration`` over the window / wall time; per frame; and the
    paint timer of :func:`measure_paint` on ``updates`` single frames after each window."""
    from playwright.sync_api import sync_playwright

    artifacts = _out(artifacts, "browser-live")
    results: list[LiveResult] = []
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        try:
            for app in apps:
                with running_jupyterlab(artifacts, app=app) as server:
                    for block, renderer in enumerate(renderers):
                        context = _bench_context(browser)
                        if renderer == "canvas-main":  # js/hover.js's switch: no drawing worker
                            context.add_init_script("window.lossvizCanvasWorker = false;")
                        page = context.new_page()
                        try:
                            nb = NotebookPage(page, server, artifacts)
                            results += _live_app(nb, app, sizes, seconds, steps_per_s, repeats, updates, log, trace,
                                                 renderer, block)
                            nb.screenshot(f"live-{app}-{renderer}-{block}")
                        finally:
                            context.close()
        finally:
            browser.close()
    return results


def young_run_screenshots(label: str, shots: int = 8, seconds: float = 4.0, steps_per_s: int = 500,
                          artifacts: Path | None = None) -> list[Path]:
    """Screenshots of a young run as a user watches it (what its x axis's room on the right looks like):
    grown to 1,000 steps, then ``steps_per_s`` steps logged a second for ``seconds``, the plot taken
    ``shots`` times evenly over that, in JupyterLab's light and dark themes; files
    ``young-<label>-<theme>-<k>.png`` (``label``: which code, e.g. before/after)."""
    from playwright.sync_api import sync_playwright

    artifacts = _out(artifacts, "young")
    paths: list[Path] = []
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        try:
            for theme in ("light", "dark"):
                settings = {**LAB_SETTINGS, DARK_THEME[0]: DARK_THEME[1]} if theme == "dark" else LAB_SETTINGS
                with running_jupyterlab(artifacts, lab_settings=settings) as server:
                    context = _bench_context(browser)
                    try:
                        nb = NotebookPage(context.new_page(), server, artifacts)
                        driver = _open_live(nb, "jupyterlab", "canvas", 0)
                        driver.send({"op": "grow", "n": 1000, "total": 10**5}, timeout=120.0, nb=nb)
                        nb.page.wait_for_timeout(1000)
                        live = {"op": "live", "seconds": seconds, "steps_per_s": steps_per_s}
                        driver.post(live)
                        for k in range(shots):
                            nb.page.wait_for_timeout(1000 * seconds / shots)
                            paths.append(nb.screenshot(f"young-{label}-{theme}-{k}",
                                                       nb.page.locator(".lossviz .lossviz-panels").first))
                        driver.wait(live, timeout=120.0, nb=nb)
                        driver.send({"op": "done"}, timeout=60.0, nb=nb)
                    finally:
                        context.close()
        finally:
            browser.close()
    return paths


def live_table(results: list[LiveResult]) -> str:
    """Markdown: medians per app and run length."""
    rows = ["| app | renderer | logged steps | main-thread share | task ms/frame | script | layout+style | "
            "line paths or canvas draws/frame | KiB/frame | paint ms (single frame) | in page ms | windows |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    keys = sorted({(r.app, r.renderer, r.n) for r in results},
                  key=lambda k: (k[0] != "jupyterlab", k[2], list(RENDERERS).index(k[1])))
    apps = {"jupyterlab": "JupyterLab", "notebook": "Notebook 7"}
    for app, renderer, n in keys:
        rs = [r for r in results if (r.app, r.renderer, r.n) == (app, renderer, n)]

        def med(f: Any, rs: list[LiveResult] = rs) -> float:
            vals = [f(r) for r in rs if f(r) is not None]
            return statistics.median(vals) if vals else math.nan

        rows.append((f"| {apps.get(app, app)} | {renderer} | {n:,} | {med(lambda r: r.share):.1%} | "
                    f"{med(lambda r: r.task_ms_per_frame):.1f} | "
                    f"{med(lambda r: r.script_ms_per_frame):.1f} | {med(lambda r: r.layout_style_ms_per_frame):.1f} | "
                    f"{med(lambda r: r.paths_per_frame):.1f} | {med(lambda r: r.bytes_per_frame) / 1024:.1f} | "
                    f"{med(lambda r: r.paint_ms):.1f} | {med(lambda r: r.in_page_ms):.1f} | "
                    f"{len(rs)} |").replace(" nan |", " — |"))
    return "\n".join(rows)


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="main-thread share of live updates (JupyterLab, Notebook 7)")
    ap.add_argument("--sizes", default="1000,100000")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--apps", default="jupyterlab,notebook")
    ap.add_argument("--updates", type=int, default=3, help="single frames timed after each window (paint timer)")
    ap.add_argument("--renderers", default="svg,canvas",
                    help=f"comma-separated, any of {', '.join(RENDERERS)}; repeat them to alternate blocks (A/B)")
    ap.add_argument("--trace", action="store_true", help="also trace the first window: main-thread time by event")
    ap.add_argument("--young-screenshots", metavar="LABEL",
                    help="only take screenshots of a young run growing live (light, dark) into out/young/")
    a = ap.parse_args()
    if a.young_screenshots:
        for shot in young_run_screenshots(a.young_screenshots):
            print(shot)
        raise SystemExit(0)
    live = measure_live([int(float(s)) for s in a.sizes.split(",")], tuple(a.apps.split(",")), a.seconds,
                        repeats=a.repeats, updates=a.updates, trace=a.trace,
                        renderers=tuple(a.renderers.split(",")))
    print(live_table(live))
