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
  attribute of bqplot ``path.line`` elements outside legends (the drawn data lines);
* after each batch of such mutations, requests an animation frame and, from it, posts a
  ``MessageChannel`` message: that task runs right after the frame that contains the new
  paths has been rendered, and its ``performance.now()`` is the paint time.

Per update: **paint time** = paint after the update's last ``d`` mutation minus the kernel
send time of the update's first ``comm_msg`` (``header.date``, kernel clock = this
machine's clock; the page clock ``performance.timeOrigin + now()`` is calibrated against
``time.time()`` by round trips). **In-page time** = the same paint minus the arrival of
that first message in the page (no clock matching needed).
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from browser_harness import (
    NotebookPage,
    launch_chromium,
    new_context,
    poll,
    running_jupyterlab,
    write_notebook,
)

__all__ = ["INSTRUMENT_JS", "PaintResult", "measure_paint"]

BENCH_DIR = Path(__file__).resolve().parent

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
  new MutationObserver((records) => {
    let hit = 0;
    for (const r of records) {
      const el = r.target;
      // data lines only: bqplot redraws the legend's swatch paths too (in .g_legend)
      if (el.tagName === 'path' && el.classList.contains('line') && !el.closest('.g_legend')) hit++;
    }
    if (!hit) return;
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
  }).observe(document, { subtree: true, attributes: true, attributeFilter: ['d'] });
})();
"""

_TAKE_JS = """() => { const B = window.__bench; const out = {msgs: B.msgs, muts: B.muts, paints: B.paints};
  B.msgs = []; B.muts = []; B.paints = []; return out; }"""
_QUIET_JS = """(quietMs) => { const B = window.__bench; const now = performance.now();
  return B.lastMut >= 0 && now - B.lastMut > quietMs && !B.pending && B.paints.length > 0
    && B.paints[B.paints.length - 1].raf >= B.lastMut; }"""

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
        tmp = self.folder / f"cmd-{self.k}.tmp"
        tmp.write_text(json.dumps(cmd))
        tmp.rename(self.folder / f"cmd-{self.k}.json")
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
    write_notebook(root / name, [
        f"import sys\nsys.path.insert(0, {str(BENCH_DIR)!r})\nimport workloads\n"
        f"workloads.serve_commands({tool!r}, {str(folder)!r})"
    ])
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
