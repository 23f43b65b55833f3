// Legend, crosshair and hover readout of one LossPlot panel, computed in the browser.
//
// Loaded by anywidget (`lossviz_widget._ui.hover.HoverLayer._esm`); plain ES module, no
// imports, no build step. One HoverLayer sits above each bqplot Figure, in the same box
// (`.lossviz-panel-box`), and draws:
//   * the legend: one entry per series (colour, dash, label), outside the plot area, so it
//     never covers data. A click hides/shows that series in this browser tab: its bqplot Lines
//     models get `visible` set here, in the browser, without `save_changes()` (nothing goes to
//     the kernel, which keeps drawing frames as before);
//   * on pointer move over the plot area: a vertical line at the cursor's x in every panel of
//     the same LossPlot (they share one x scale; a "lossviz-crosshair" event on the plot's root
//     carries the data x), and a tooltip listing, for each shown series of the hovered panel,
//     the point nearest that x (binary search in the Lines' synced x array): x (step or time),
//     the value drawn (smoothed when smoothing is on) and the raw value at the same x, sorted by
//     value, at most MAX_ROWS rows then "N more";
//   * with `canvas` on, the series' lines (raw ones behind, then the main ones) on a canvas over the
//     plot area: the points of every line of the panel come in one binary trait (`lines`, see
//     unpackLines: one message per frame, read as typed-array views), the style from the series'
//     Lines models (which then have no bqplot view and no data); redrawn once per animation frame
//     whatever changed, and not at all while the tab is hidden or the panel is scrolled out of
//     view (drawn once when it is seen again). The drawing itself happens in a worker of the page
//     (OffscreenCanvas, see "the drawing worker" below) where the browser allows it, else here.
//     Whether any view of the panel is seen goes to the kernel (`seen`), which then may stop
//     sending its frames;
//   * nothing, but measures the plot area's width (`width`, synced to the kernel, which then sends
//     at most 2 points per pixel column), again after each resize.
// Everything is read from the bqplot models already in the browser (`widget_manager.get_model`:
// the marks' synced x/y typed arrays, the x scale's min/max), so hovering sends nothing over
// the wire and works while the kernel is busy running the training cell.
//
// `series` (synced from Python): [{key, label, color, dash, main, raw, bucketed, slot}], `main`/`raw`
// are model ids of the drawn line and the faint raw line (raw: null when smoothing is off);
// `bucketed`: fewer points drawn than logged in view, each drawn point is the smallest or
// largest value of a bucket of logged points; `slot`: with `canvas` on, the index of the main
// line's points in `lines` (the raw line's: slot + 1), else null (the points are on the models).

export const MAX_ROWS = 8;
const WIDTH_STEP = 32;
const WIDTH_DEBOUNCE_MS = 250;

/** A plot area width (CSS px) as reported to the kernel: rounded up to WIDTH_STEP (0 when not laid out). */
export function reportedWidth(px) {
  return px >= 1 ? Math.ceil(px / WIDTH_STEP) * WIDTH_STEP : 0;
}
const EVENT = "lossviz-crosshair";
const UNSEEN_DELAY_MS = 1000; // out of view this long before the kernel is told (not while scrolling past)

// model -> Map(view id -> seen) of this page's views of a HoverLayer: the kernel is told `seen`
// when any of them is on screen (a plot shown in two outputs, one scrolled away, stays current)
const viewsSeen = new WeakMap();
let viewIds = 0;

/** Index of the value of the sorted array `xs` nearest to `x` (-1 when empty). */
export function nearestIndex(xs, x) {
  const n = xs.length;
  if (n === 0) return -1;
  let lo = 0;
  let hi = n - 1;
  while (lo < hi) { // first index with xs[i] >= x
    const mid = (lo + hi) >> 1;
    if (xs[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  if (lo > 0 && Math.abs(xs[lo - 1] - x) <= Math.abs(xs[lo] - x)) return lo - 1;
  return lo;
}

/** The shortest text that reads back as exactly `v` (a float32 from a Float32Array stays short). */
export function exactText(v, float32) {
  if (!Number.isFinite(v)) return String(v);
  if (!float32) return String(v);
  for (let p = 1; p <= 9; p++) {
    const s = Number(v.toPrecision(p));
    if (Math.fround(s) === v) return String(s);
  }
  return String(v);
}

/** An x value as the axis means it: a step, a date (x in epoch ms), or relative time. */
export function xText(v, isDate, label) {
  if (isDate) return new Date(v).toISOString().replace("T", " ").replace("Z", " UTC");
  if (/^step/.test(label)) return Number.isInteger(v) ? v.toLocaleString("en-US") : String(v);
  const unit = /\(([^)]+)\)/.exec(label);
  return `${Number(v.toPrecision(6))}${unit ? " " + unit[1] : ""}`;
}

/** A line's points from its bqplot Lines model: [x, y] (null without a model). */
export function modelPoints(m) {
  return m ? [m.get("x"), m.get("y")] : null;
}

/** The lines packed by Python's `pack_lines` (a DataView, ArrayBuffer or typed array): one
 * [x Float64Array, y Float32Array (Float64Array with flags bit 1)] per line (x.type "date" when x
 * is epoch ms, as bqplot's date arrays), views into one buffer (copied once if it is not 8-byte
 * aligned); [] when empty. */
export function unpackLines(data) {
  if (!data || data.byteLength < 8) return [];
  let buf = data.buffer || data;
  let at = data.byteOffset || 0;
  if (at % 8) {
    buf = buf.slice(at, at + data.byteLength);
    at = 0;
  }
  const head = new Uint32Array(buf, at, 2);
  const count = head[0];
  const date = (head[1] & 1) === 1;
  const wide = (head[1] & 2) === 2; // y as float64: values float32 would turn to 0 or Infinity
  const counts = new Uint32Array(buf, at + 8, count);
  let xAt = at + Math.ceil((8 + 4 * count) / 8) * 8;
  let yAt = xAt + 8 * counts.reduce((a, n) => a + n, 0);
  const lines = [];
  for (const n of counts) {
    const xs = new Float64Array(buf, xAt, n);
    if (date) xs.type = "date";
    lines.push([xs, wide ? new Float64Array(buf, yAt, n) : new Float32Array(buf, yAt, n)]);
    xAt += 8 * n;
    yAt += (wide ? 8 : 4) * n;
  }
  return lines;
}

/** Rows of the tooltip: one per series with a point, sorted by value (largest first). `points(e,
 * "main" | "raw")` gives an entry's line as [x, y] or null (default: from its Lines models). */
export function readoutRows(entries, x, points = (e, pass) => modelPoints(e[pass])) {
  const rows = [];
  for (const e of entries) {
    const [xs, ys] = points(e, "main") || [];
    if (!xs || !ys || ys.length === undefined || ys.length !== xs.length) continue;
    const i = nearestIndex(xs, x);
    if (i < 0) continue;
    const row = {
      info: e.info, x: xs[i], xIsDate: xs.type === "date", value: ys[i],
      float32: ys instanceof Float32Array, raw: null, rawX: null,
    };
    if (e.raw) {
      const [rx, ry] = points(e, "raw") || [];
      const j = rx ? nearestIndex(rx, xs[i]) : -1;
      if (j >= 0 && ry && j < ry.length) {
        row.raw = ry[j];
        row.rawX = rx[j];
        row.rawFloat32 = ry instanceof Float32Array;
      }
    }
    rows.push(row);
  }
  const key = (r) => (Number.isFinite(r.value) ? r.value : -Infinity);
  rows.sort((a, b) => key(b) - key(a));
  return rows;
}

/** A scale bound as a number: dates (a DateScale's bounds, a Date or an ISO string) in epoch ms. */
export function boundValue(v) {
  if (v === null || v === undefined) return NaN;
  if (v instanceof Date) return v.getTime();
  if (typeof v === "string") return Date.parse(v.endsWith("Z") || /[+-]\d\d:?\d\d$/.test(v) ? v : `${v}Z`);
  return Number(v);
}

function scaleFraction(scale, v) {
  const lo = boundValue(scale.get("min"));
  const hi = boundValue(scale.get("max"));
  if (!Number.isFinite(lo) || !Number.isFinite(hi) || hi === lo) return null;
  if (scale.get("_model_name") === "LogScaleModel") {
    if (v <= 0 || lo <= 0 || hi <= 0) return null;
    return (Math.log(v) - Math.log(lo)) / (Math.log(hi) - Math.log(lo));
  }
  return (v - lo) / (hi - lo);
}

function scaleValue(scale, f) {
  const lo = boundValue(scale.get("min"));
  const hi = boundValue(scale.get("max"));
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return null;
  if (scale.get("_model_name") === "LogScaleModel") {
    if (lo <= 0 || hi <= 0) return null;
    return Math.exp(Math.log(lo) + f * (Math.log(hi) - Math.log(lo)));
  }
  return lo + f * (hi - lo);
}

const DASHES = { dashed: [6, 4], dotted: [1.5, 3], dash_dotted: [6, 3, 1.5, 3] };

/** A bqplot scale model as drawing needs it: {lo, hi, log} (bounds as numbers, dates in epoch ms). */
export function scaleSpec(scale) {
  return { lo: boundValue(scale.get("min")), hi: boundValue(scale.get("max")),
           log: scale.get("_model_name") === "LogScaleModel" };
}

/** A scale's pixel mapping over `size` px (`spec` from scaleSpec): v -> px (NaN where the scale
 * cannot place v), or null. */
export function scaleMapper(spec, size, flip) {
  const { lo, hi, log } = spec;
  if (!Number.isFinite(lo) || !Number.isFinite(hi) || hi === lo) return null;
  if (log && (lo <= 0 || hi <= 0)) return null;
  const a = log ? Math.log(lo) : lo;
  const k = size / ((log ? Math.log(hi) : hi) - a);
  if (flip) return log ? (v) => size - (Math.log(v) - a) * k : (v) => size - (v - a) * k;
  return log ? (v) => (Math.log(v) - a) * k : (v) => (v - a) * k;
}

/** What the canvas needs of a bqplot Lines model `m` to stroke it as bqplot's SVG path would: colour,
 * opacity, width, dash, dots (radius, 0: none) and its scales (scaleSpec); null without x/y scales. A plain
 * object: it goes to the drawing worker as it is. */
export function lineStyle(m) {
  const scales = m.get("scales") || {};
  if (!scales.x || !scales.y) return null;
  return {
    color: (m.get("colors") || ["#1f77b4"])[0], opacity: Number((m.get("opacities") || [1])[0] ?? 1),
    width: Number(m.get("stroke_width") || 1), dash: DASHES[m.get("line_style")] || [],
    dots: m.get("marker") ? Math.sqrt(Number(m.get("marker_size") || 24) / Math.PI) : 0,
    x: scaleSpec(scales.x), y: scaleSpec(scales.y),
  };
}

/** Stroke the line `xs`, `ys` (and its dots) in `style` (lineStyle) on `ctx`, `w` x `h` px: NaN and
 * values a log scale cannot place are gaps. Returns the points drawn. Self-contained (it runs in the
 * drawing worker too: see WORKER_SOURCE). */
export function strokeLines(ctx, style, xs, ys, w, h) {
  if (!style || !xs || !ys || ys.length !== xs.length || ys.length === 0) return 0;
  const fx = scaleMapper(style.x, w, false);
  const fy = scaleMapper(style.y, h, true);
  if (!fx || !fy) return 0;
  ctx.globalAlpha = style.opacity;
  ctx.strokeStyle = style.color;
  ctx.lineWidth = style.width;
  ctx.setLineDash(style.dash);
  ctx.beginPath();
  let pen = false;
  let drawn = 0;
  for (let i = 0; i < xs.length; i++) {
    const px = fx(xs[i]);
    const py = fy(ys[i]);
    if (!Number.isFinite(px) || !Number.isFinite(py)) {
      pen = false;
      continue;
    }
    if (pen) ctx.lineTo(px, py);
    else ctx.moveTo(px, py);
    pen = true;
    drawn += 1;
  }
  ctx.stroke();
  if (style.dots) { // dots on measured values (sparse series)
    const r = style.dots;
    ctx.fillStyle = ctx.strokeStyle;
    ctx.setLineDash([]);
    ctx.beginPath();
    for (let i = 0; i < xs.length; i++) {
      const px = fx(xs[i]);
      const py = fy(ys[i]);
      if (!Number.isFinite(px) || !Number.isFinite(py)) continue;
      ctx.moveTo(px + r, py);
      ctx.arc(px, py, r, 0, 2 * Math.PI);
    }
    ctx.fill();
  }
  return drawn;
}

/** Draw a panel's `scene` on `ctx` (a 2d context of a `w`*ratio x `h`*ratio canvas): clear it, then stroke
 * each of `scene.items` ({slot, style}, in order: raw lines first) from `lines` (unpackLines). */
export function drawScene(ctx, scene, lines) {
  const { w, h, ratio } = scene;
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, w, h);
  ctx.lineJoin = "miter"; // as bqplot's SVG paths
  for (const { slot, style } of scene.items) {
    const xy = lines[slot];
    if (xy) strokeLines(ctx, style, xy[0], xy[1], w, h);
  }
  ctx.globalAlpha = 1;
}

// -- the drawing worker -------------------------------------------------------------------------
// With OffscreenCanvas, each panel's canvas is handed to one Worker of the page
// (`transferControlToOffscreen`): rasterizing the lines and handing the bitmap to the compositor happen
// there, off the main thread, which only builds the scene (styles, size) and posts it with a copy of
// the panel's packed points (a memcpy; the hover readout keeps reading the main thread's own views).
// The worker runs the very functions above (their source text, from a Blob URL: anywidget modules have
// no files of their own). Where the page cannot (no OffscreenCanvas or Worker, a Content-Security-Policy
// without blob: workers, a worker that fails to start or later fails) every canvas is drawn on the main
// thread as before, never left blank. `window.lossvizCanvasWorker = false` before the first plot draws
// turns the worker off (tests compare both paths).

const WORKER_START_MS = 3000; // no "ready" from the worker by then: draw on the main thread

/** The worker's code: the drawing functions above plus its message loop. Messages in: {op: "canvas",
 * id, canvas} (an OffscreenCanvas), {op: "draw", id, scene, data?} (data: packed lines, when they
 * changed), {op: "image", id, req}, {op: "drop", id}; out: {op: "ready"}, {op: "drawn", id},
 * {op: "image", req, bitmap}, {op: "failed", error}. */
export const WORKER_SOURCE = `"use strict";
const DASHES = ${JSON.stringify(DASHES)};
${unpackLines}
${scaleMapper}
${strokeLines}
${drawScene}
const panels = new Map(); // id -> {canvas, ctx, lines}
onmessage = async (ev) => {
  const m = ev.data;
  try {
    if (m.op === "canvas") {
      panels.set(m.id, { canvas: m.canvas, ctx: m.canvas.getContext("2d"), lines: [] });
    } else if (m.op === "draw") {
      const p = panels.get(m.id);
      if (!p) return;
      if (m.data) p.lines = unpackLines(m.data);
      const s = m.scene;
      const cw = Math.round(s.w * s.ratio), ch = Math.round(s.h * s.ratio);
      if (p.canvas.width !== cw || p.canvas.height !== ch) { p.canvas.width = cw; p.canvas.height = ch; }
      drawScene(p.ctx, s, p.lines);
      postMessage({ op: "drawn", id: m.id });
    } else if (m.op === "image") {
      const p = panels.get(m.id);
      const bitmap = p ? await createImageBitmap(p.canvas) : null;
      postMessage({ op: "image", req: m.req, bitmap }, bitmap ? [bitmap] : []);
    } else if (m.op === "drop") {
      panels.delete(m.id);
    }
  } catch (err) {
    postMessage({ op: "failed", error: String(err && err.message || err) });
  }
};
const probe = new OffscreenCanvas(1, 1).getContext("2d");
postMessage({ op: probe ? "ready" : "failed", error: "no 2d context on an OffscreenCanvas" });
`;

// The page's drawing state, shared by every panel: anywidget imports this module once per widget model
// (from a Blob URL of its own), so it lives on `globalThis`, keyed by the worker's source (a page with
// two versions of this module keeps one worker each). `worker`: undefined until asked for, then a
// Promise while it starts, then the Worker or null (none: draw on the main thread); `views`: canvas id
// -> {drawn(), lost()} of the views whose canvas is in the worker; `images`: request -> resolve.
function drawing() {
  const all = globalThis.__lossvizDrawing || (globalThis.__lossvizDrawing = new Map());
  if (!all.has(WORKER_SOURCE)) all.set(WORKER_SOURCE, { worker: undefined, views: new Map(), images: new Map(), ids: 0 });
  return all.get(WORKER_SOURCE);
}

function workerLost(d, error) {
  if (d.worker && typeof d.worker.terminate === "function") d.worker.terminate();
  d.worker = null;
  console.warn(`lossviz: the canvas drawing worker failed (${error}); drawing on the main thread`);
  for (const [req, resolve] of d.images) {
    d.images.delete(req);
    resolve(null);
  }
  const views = [...d.views.values()];
  d.views.clear();
  for (const view of views) view.lost();
}

/** The page's drawing worker: a Worker, null (none: draw on the main thread), or a Promise of either
 * while it starts (started by the first call). */
function drawingWorker() {
  const d = drawing();
  if (d.worker !== undefined) return d.worker;
  const usable = globalThis.lossvizCanvasWorker !== false && typeof Worker === "function"
    && typeof OffscreenCanvas === "function" && typeof Blob === "function"
    && typeof HTMLCanvasElement === "function" && "transferControlToOffscreen" in HTMLCanvasElement.prototype;
  if (!usable) {
    d.worker = null;
    return null;
  }
  const starting = new Promise((resolve) => {
    let w;
    let timer = 0;
    const settle = (ok) => {
      clearTimeout(timer);
      if (!ok && w) w.terminate();
      d.worker = ok ? w : null;
      resolve(d.worker);
    };
    try {
      const url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "text/javascript" }));
      w = new Worker(url);
      URL.revokeObjectURL(url);
    } catch (_) { // e.g. a Content-Security-Policy without blob: workers
      settle(false);
      return;
    }
    timer = setTimeout(() => settle(false), WORKER_START_MS);
    w.onmessage = (ev) => {
      const m = ev.data;
      if (d.worker !== w) { // starting
        settle(m.op === "ready");
        return;
      }
      if (m.op === "drawn") {
        const view = d.views.get(m.id);
        if (view) view.drawn();
      } else if (m.op === "image") {
        const done = d.images.get(m.req);
        d.images.delete(m.req);
        if (done) done(m.bitmap);
      } else if (m.op === "failed") {
        workerLost(d, m.error);
      }
    };
    w.onerror = (ev) => {
      ev.preventDefault();
      if (d.worker === w) workerLost(d, ev.message || "error");
      else settle(false);
    };
  });
  if (d.worker === undefined) d.worker = starting; // else it failed at once (settled: null)
  return d.worker;
}

/** A short line in the series' colour and dash (a CSS border: no SVG, no namespace). */
function swatch(color, dash) {
  const line = document.createElement("span");
  line.className = "lossviz-swatch";
  const style = { dashed: "dashed", dotted: "dotted", dash_dotted: "dashed" }[dash] || "solid";
  line.style.borderTop = `2.5px ${style} ${color}`;
  return line;
}

function cell(tag, text, cls) {
  const c = document.createElement(tag);
  c.textContent = text;
  if (cls) c.className = cls;
  return c;
}

/** Fill the tooltip element with `rows` (text only: labels are never parsed as HTML). */
export function fillTooltip(tip, rows, xLabel, cursorX) {
  tip.replaceChildren();
  const isDate = rows.length > 0 && rows[0].xIsDate;
  const at = /^step/.test(xLabel) ? Math.round(cursorX) : cursorX;
  tip.appendChild(cell("div", `${xLabel || "x"}: ${xText(at, isDate, xLabel)}`, "lossviz-tip-head"));
  const table = document.createElement("table");
  const smoothed = rows.some((r) => r.raw !== null);
  const hr = document.createElement("tr");
  for (const h of ["", "series", xLabel || "x", smoothed ? "smoothed" : "value", ...(smoothed ? ["raw"] : [])]) {
    hr.appendChild(cell("th", h));
  }
  table.appendChild(hr);
  let bucketed = 0;
  for (const r of rows.slice(0, MAX_ROWS)) {
    const tr = document.createElement("tr");
    tr.dataset.key = r.info.key;
    const sw = document.createElement("td");
    sw.appendChild(swatch(r.info.color, r.info.dash));
    tr.appendChild(sw);
    tr.appendChild(cell("td", r.info.label, "lossviz-tip-label"));
    tr.appendChild(cell("td", xText(r.x, r.xIsDate, xLabel), "lossviz-tip-x"));
    if (!smoothed) {
      tr.appendChild(cell("td", exactText(r.value, r.float32), "lossviz-tip-value"));
    } else if (r.raw === null) { // this series is drawn raw (a sparse one): its value is a raw value
      tr.appendChild(cell("td", "", "lossviz-tip-value"));
      tr.appendChild(cell("td", exactText(r.value, r.float32), "lossviz-tip-raw"));
    } else {
      tr.appendChild(cell("td", exactText(r.value, r.float32), "lossviz-tip-value"));
      const off = r.rawX !== r.x ? ` (at ${xText(r.rawX, r.xIsDate, xLabel)})` : "";
      tr.appendChild(cell("td", exactText(r.raw, r.rawFloat32) + off, "lossviz-tip-raw"));
    }
    if (r.info.bucketed) {
      bucketed += 1;
      tr.classList.add("lossviz-tip-bucket");
    }
    table.appendChild(tr);
  }
  tip.appendChild(table);
  if (rows.length > MAX_ROWS) tip.appendChild(cell("div", `${rows.length - MAX_ROWS} more`, "lossviz-tip-more"));
  if (bucketed) {
    tip.appendChild(cell("div", "* each drawn point is the min or max of a bucket of logged points "
      + "(zoom in for every point)", "lossviz-tip-note"));
  }
}

function render({ model, el }) {
  el.classList.add("lossviz-legend");
  const manager = model.widget_manager;
  const hidden = new Set(); // keys of the series hidden by a legend click in this view (its entries drawn struck out)
  let entries = []; // [{info, main, raw}] with resolved models
  let generation = 0;
  const crosshair = document.createElement("div");
  crosshair.className = "lossviz-crosshair";
  const tip = document.createElement("div");
  tip.className = "lossviz-tooltip";
  document.body.append(crosshair, tip);
  let pending = null;
  let frameRequest = 0;
  let shownSignature = "";

  const box = () => el.closest(".lossviz-panel-box");
  const root = () => el.closest(".lossviz") || box();
  const plotArea = () => {
    const b = box();
    return b ? b.querySelector(".lossviz-panel rect.plotarea_events") : null;
  };
  const xScale = () => (entries.length ? entries[0].main.get("scales").x : null);

  // -- lines on a canvas (model.get("canvas")): the series' Lines have no bqplot view then --
  function makeCanvas() {
    const c = document.createElement("canvas");
    c.className = "lossviz-lines";
    c.lossvizImage = image; // what it shows, as an ImageBitmap (js/snapshot.js reads it so)
    return c;
  }
  let canvas = makeCanvas();
  const canvasId = ++drawing().ids;
  let inWorker = false; // this canvas was handed to the drawing worker (it has no 2d context here then)
  let sentVersion = -1; // the version of `packed` the worker has
  let drawRequest = 0;
  let dirty = true; // data changed while nothing was drawn (hidden tab, scrolled out of view)
  let onScreen = true;
  let bound = []; // [[model, events, fn]] listeners to drop when the series change
  const LINE_EVENTS = "change:visible change:colors change:opacities change:stroke_width "
    + "change:line_style change:marker change:scales";
  let packed = []; // the series' points with canvas on (see `slot`), unpacked from `lines`
  let packedVersion = 0;
  const unpack = () => {
    packed = unpackLines(model.get("lines"));
    packedVersion += 1;
  };
  unpack();
  // an entry's line as [x, y]: from `lines` when it has a slot, else from its Lines model
  const points = (e, pass) => {
    const slot = e.info.slot;
    if (slot === null || slot === undefined) return modelPoints(e[pass]);
    return packed[slot + (pass === "raw" ? 1 : 0)] || null;
  };

  function requestDraw() {
    dirty = true;
    if (!model.get("canvas")) return; // SVG marks draw the lines: nothing to do here
    if (!drawRequest && onScreen && !document.hidden) drawRequest = requestAnimationFrame(drawLines);
  }

  // The worker drew this canvas (or the main thread did): tell whoever waits (tests, benchmarks/browser.py).
  const drawn = () => canvas.dispatchEvent(new CustomEvent("lossviz-drawn", { bubbles: true }));
  // The worker is gone: a fresh canvas in place of the transferred one, drawn here from now on.
  function lost() {
    const fresh = makeCanvas();
    if (canvas.parentElement) canvas.replaceWith(fresh);
    canvas = fresh;
    inWorker = false;
    requestDraw();
  }
  // What the canvas shows, as an ImageBitmap (the snapshot button, tests): the worker's copy when the canvas
  // is drawn there; null when there is nothing to read.
  function image() {
    if (!inWorker) return canvas.width && canvas.height ? createImageBitmap(canvas) : Promise.resolve(null);
    const w = drawingWorker();
    if (!w || w instanceof Promise) return Promise.resolve(null);
    const d = drawing();
    const req = ++d.ids;
    return new Promise((resolve) => {
      d.images.set(req, resolve);
      w.postMessage({ op: "image", id: canvasId, req });
    });
  }

  function drawLines() {
    drawRequest = 0;
    const on = model.get("canvas");
    const b = box();
    const figure = b ? b.querySelector(".lossviz-panel") : null;
    const area = plotArea();
    if (!on || !figure || !area) {
      canvas.remove();
      return;
    }
    const w = drawingWorker();
    if (w instanceof Promise) { // starting: draw once it has started (or failed to)
      w.then(requestDraw);
      return;
    }
    // between bqplot's two SVGs: above the background one (grid, axes), under the marks' one (markers, run
    // groups' bands, the zoom/pan events)
    const marks = figure.querySelector(":scope > svg.svg-figure");
    if (canvas.parentElement !== figure || canvas.nextSibling !== marks) figure.insertBefore(canvas, marks);
    const fr = figure.getBoundingClientRect();
    const ar = area.getBoundingClientRect();
    const scene = {
      w: Math.max(1, Math.round(ar.width)), h: Math.max(1, Math.round(ar.height)),
      ratio: window.devicePixelRatio || 1, items: [],
    };
    const css = [`${scene.w}px`, `${scene.h}px`, `${Math.round(ar.left - fr.left)}px`,
      `${Math.round(ar.top - fr.top)}px`];
    const style = canvas.style;
    if (style.width !== css[0]) style.width = css[0];
    if (style.height !== css[1]) style.height = css[1];
    if (style.left !== css[2]) style.left = css[2];
    if (style.top !== css[3]) style.top = css[3];
    for (const pass of ["raw", "main"]) { // the faint raw lines behind every main line, as the SVG marks
      for (const e of entries) {
        const m = e[pass];
        const slot = e.info.slot;
        if (!m || slot === null || slot === undefined || m.get("visible") === false) continue; // series only
        scene.items.push({ slot: slot + (pass === "raw" ? 1 : 0), style: lineStyle(m) });
      }
    }
    dirty = false;
    if (w && !inWorker) {
      try {
        const offscreen = canvas.transferControlToOffscreen();
        w.postMessage({ op: "canvas", id: canvasId, canvas: offscreen }, [offscreen]);
        inWorker = true;
        sentVersion = -1;
        drawing().views.set(canvasId, { drawn, lost });
        canvas.dataset.drawnBy = "worker";
      } catch (_) { // e.g. a canvas that already has a context: this one stays on the main thread
        canvas.dataset.drawnBy = "main";
      }
    }
    if (inWorker) {
      if (sentVersion !== packedVersion) { // a copy: the hover readout keeps reading `packed`
        const d = model.get("lines");
        const data = d && d.byteLength ? (d.buffer || d).slice(d.byteOffset || 0, (d.byteOffset || 0) + d.byteLength)
          : new ArrayBuffer(0);
        w.postMessage({ op: "draw", id: canvasId, scene, data }, [data]);
        sentVersion = packedVersion;
      } else {
        w.postMessage({ op: "draw", id: canvasId, scene });
      }
      return;
    }
    if (canvas.dataset.drawnBy !== "main") canvas.dataset.drawnBy = "main";
    const cw = Math.round(scene.w * scene.ratio);
    const ch = Math.round(scene.h * scene.ratio);
    if (canvas.width !== cw || canvas.height !== ch) {
      canvas.width = cw;
      canvas.height = ch;
    }
    drawScene(canvas.getContext("2d"), scene, packed);
    drawn();
  }

  function bindLines() {
    for (const [m, ev, fn] of bound) m.off(ev, fn);
    bound = [];
    const scales = new Set();
    for (const e of entries) {
      for (const m of [e.main, e.raw]) {
        if (!m) continue;
        m.on(LINE_EVENTS, requestDraw);
        bound.push([m, LINE_EVENTS, requestDraw]);
        const sc = m.get("scales") || {};
        for (const s of [sc.x, sc.y]) if (s) scales.add(s);
      }
    }
    for (const s of scales) {
      s.on("change:min change:max", requestDraw);
      bound.push([s, "change:min change:max", requestDraw]);
    }
    requestDraw();
  }
  const onCanvasChange = () => {
    if (model.get("canvas")) {
      requestDraw();
      return;
    }
    cancelAnimationFrame(drawRequest);
    drawRequest = 0;
    canvas.remove();
  };
  const onLines = () => {
    if (settled !== generation) return; // resolve() reads them with the series they belong to
    unpack();
    requestDraw();
  };

  // Is this view seen? Reported (any view of the model seen) at once when it becomes so, after
  // UNSEEN_DELAY_MS when it stops being so.
  const viewId = ++viewIds;
  if (!viewsSeen.has(model)) viewsSeen.set(model, new Map());
  let unseenTimer = 0;
  function reportSeen() {
    const views = viewsSeen.get(model);
    views.set(viewId, onScreen && !document.hidden);
    const any = [...views.values()].some(Boolean);
    clearTimeout(unseenTimer);
    const tell = () => {
      if (model.get("seen") !== any) {
        model.set("seen", any);
        model.save_changes();
      }
    };
    if (any) tell();
    else unseenTimer = setTimeout(tell, UNSEEN_DELAY_MS);
  }
  const onVisibility = () => {
    if (!document.hidden && dirty) requestDraw();
    reportSeen();
  };
  document.addEventListener("visibilitychange", onVisibility);
  const seen = new IntersectionObserver((records) => {
    onScreen = records[records.length - 1].isIntersecting;
    if (onScreen && dirty) requestDraw();
    reportSeen();
  });

  function setVisible(entry, visible) {
    for (const m of [entry.main, entry.raw]) if (m && m.get("visible") !== visible) m.set("visible", visible);
  }

  function drawLegend() {
    el.replaceChildren();
    for (const e of entries) {
      const item = document.createElement("span");
      item.className = "lossviz-legend-item" + (hidden.has(e.info.key) ? " lossviz-legend-off" : "");
      item.dataset.key = e.info.key;
      item.title = "click to hide/show this series (in this browser tab only)";
      item.append(swatch(e.info.color, e.info.dash), cell("span", e.info.label));
      item.addEventListener("click", () => {
        if (hidden.has(e.info.key)) hidden.delete(e.info.key);
        else hidden.add(e.info.key);
        setVisible(e, !hidden.has(e.info.key));
        drawLegend();
      });
      el.appendChild(item);
    }
  }

  let settled = 0; // the generation whose series were last resolved
  async function resolve() {
    const mine = ++generation;
    const infos = model.get("series") || [];
    const id = (ref) => String(ref).replace(/^IPY_MODEL_/, "");
    const resolved = await Promise.all(infos.map(async (info) => ({
      info,
      main: await manager.get_model(id(info.main)),
      raw: info.raw ? await manager.get_model(id(info.raw)) : null,
    })));
    if (mine !== generation) return; // a newer series list arrived meanwhile
    entries = resolved;
    settled = mine;
    unpack(); // the points that came with this series list
    const keys = new Set(entries.map((e) => e.info.key));
    for (const k of [...hidden]) if (!keys.has(k)) hidden.delete(k);
    for (const e of entries) if (hidden.has(e.info.key)) setVisible(e, false);
    drawLegend();
    bindLines();
  }

  function hide() {
    crosshair.style.display = "none";
    tip.style.display = "none";
  }

  // Every panel of the plot draws the crosshair at the data x the event carries.
  function onCrosshair(ev) {
    const area = plotArea();
    const scale = xScale();
    const f = ev.detail && ev.detail.x !== null && scale ? scaleFraction(scale, ev.detail.x) : null;
    if (!area || f === null || f < 0 || f > 1) {
      crosshair.style.display = "none";
      return;
    }
    const r = area.getBoundingClientRect();
    // moved by a transform: the line has its own compositing layer, the plot under it is not repainted
    crosshair.style.transform = `translate(${Math.round(r.left + f * r.width)}px, ${r.top}px)`;
    crosshair.style.height = `${r.height}px`;
    crosshair.style.display = "block";
  }

  function update() {
    frameRequest = 0;
    const ev = pending;
    pending = null;
    const area = plotArea();
    const scale = xScale();
    const rt = root();
    if (!ev || !area || !scale || !rt) return;
    const r = area.getBoundingClientRect();
    const f = (ev.clientX - r.left) / r.width;
    const inside = f >= 0 && f <= 1 && ev.clientY >= r.top && ev.clientY <= r.bottom;
    const x = inside ? scaleValue(scale, f) : null;
    rt.dispatchEvent(new CustomEvent(EVENT, { detail: { x } }));
    if (x === null) {
      tip.style.display = "none";
      return;
    }
    const rows = readoutRows(entries.filter((e) => !hidden.has(e.info.key)), x, points);
    if (!rows.length) {
      tip.style.display = "none";
      return;
    }
    // rebuilt only when another point (or cursor step) is under the cursor
    const xLabel = model.get("x_label");
    const signature = JSON.stringify([xLabel, /^step/.test(xLabel) ? Math.round(x) : x,
      rows.map((r) => [r.info.key, r.x, r.value, r.raw])]);
    if (signature !== shownSignature) {
      fillTooltip(tip, rows, xLabel, x);
      shownSignature = signature;
    }
    tip.style.display = "block";
    // beside the cursor, flipped to its left near the right edge of the window
    const w = tip.offsetWidth;
    const h = tip.offsetHeight;
    const left = ev.clientX + 16 + w > window.innerWidth ? ev.clientX - 16 - w : ev.clientX + 16;
    const top = Math.max(0, Math.min(ev.clientY + 12, window.innerHeight - h));
    tip.style.transform = `translate(${Math.max(0, left)}px, ${top}px)`;
  }

  const onMove = (ev) => {
    pending = ev;
    if (!frameRequest) frameRequest = requestAnimationFrame(update);
  };
  const onLeave = () => {
    pending = null;
    const rt = root();
    if (rt) rt.dispatchEvent(new CustomEvent(EVENT, { detail: { x: null } }));
    hide();
  };

  // The box and the plot's root exist once this view is in the document: attach then.
  let attached = null;
  let attachRequest = requestAnimationFrame(function attach() {
    const b = box();
    const rt = root();
    if (!b || !rt) {
      attachRequest = requestAnimationFrame(attach);
      return;
    }
    b.addEventListener("pointermove", onMove);
    b.addEventListener("pointerleave", onLeave);
    rt.addEventListener(EVENT, onCrosshair);
    const figure = b.querySelector(".lossviz-panel");
    const resize = figure ? new ResizeObserver(() => { measureSoon(); requestDraw(); }) : null;
    if (resize) resize.observe(figure);
    seen.observe(b);
    attached = { b, rt, resize };
    measureSoon();
  });

  // The plot area's width, rounded up to WIDTH_STEP px, goes to the kernel (`width`): it sends lines
  // with at most 2 points per pixel column. Debounced: a resize drag sends one message at its end.
  let measureTimer = 0;
  function measureSoon() {
    clearTimeout(measureTimer);
    measureTimer = setTimeout(() => {
      const area = plotArea();
      const w = area ? reportedWidth(area.getBoundingClientRect().width) : 0;
      if (!w) {
        measureSoon(); // not drawn yet
        return;
      }
      if (w !== model.get("width")) {
        model.set("width", w);
        model.save_changes();
      }
    }, WIDTH_DEBOUNCE_MS);
  }
  const onScroll = () => hide();
  window.addEventListener("scroll", onScroll, true);

  model.on("change:series", resolve);
  model.on("change:canvas", onCanvasChange);
  model.on("change:lines", onLines);
  resolve();
  return () => {
    cancelAnimationFrame(attachRequest);
    clearTimeout(measureTimer);
    cancelAnimationFrame(frameRequest);
    cancelAnimationFrame(drawRequest);
    for (const [m, ev, fn] of bound) m.off(ev, fn);
    model.off("change:canvas", onCanvasChange);
    model.off("change:lines", onLines);
    clearTimeout(unseenTimer);
    viewsSeen.get(model).delete(viewId);
    document.removeEventListener("visibilitychange", onVisibility);
    seen.disconnect();
    canvas.remove();
    if (inWorker && drawing().views.delete(canvasId)) drawingWorker().postMessage({ op: "drop", id: canvasId });
    window.removeEventListener("scroll", onScroll, true);
    if (attached) {
      attached.b.removeEventListener("pointermove", onMove);
      attached.b.removeEventListener("pointerleave", onLeave);
      attached.rt.removeEventListener(EVENT, onCrosshair);
      if (attached.resize) attached.resize.disconnect();
    }
    crosshair.remove();
    tip.remove();
  };
}

export default { render };
