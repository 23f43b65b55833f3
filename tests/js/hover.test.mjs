// Unit tests of js/hover.js's pure functions (node --test; run by tests/test_js.py).
// The DOM parts (legend, tooltip, crosshair) are tested in a real browser:
// tests/browser/test_browser_hover.py.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  MAX_ROWS, WORKER_SOURCE, boundValue, drawScene, exactText, lineStyle, nearestIndex, readoutRows, reportedWidth,
  unpackLines, xText,
} from "../../js/hover.js";

test("nearestIndex finds the closest x, the left one on a tie, -1 when empty", () => {
  const xs = new Float64Array([0, 10, 20, 40]);
  assert.equal(nearestIndex(xs, -5), 0);
  assert.equal(nearestIndex(xs, 4), 0);
  assert.equal(nearestIndex(xs, 5), 0);
  assert.equal(nearestIndex(xs, 6), 1);
  assert.equal(nearestIndex(xs, 31), 3);
  assert.equal(nearestIndex(xs, 1e9), 3);
  assert.equal(nearestIndex(new Float64Array([]), 3), -1);
  const many = Float64Array.from({ length: 2000 }, (_, i) => i * 2);
  for (const x of [0, 1.1, 777.2, 3997, 5000]) {
    let best = 0;
    for (let i = 1; i < many.length; i++) if (Math.abs(many[i] - x) < Math.abs(many[best] - x)) best = i;
    assert.equal(nearestIndex(many, x), best, `x=${x}`);
  }
});

test("exactText: the shortest text that reads back as the very value sent", () => {
  const f32 = Float32Array.from([0.914, 1.1239848, 1e-7, 123456.78]);
  for (const v of f32) {
    const text = exactText(v, true);
    assert.equal(Math.fround(Number(text)), v, text);
  }
  assert.equal(exactText(f32[0], true), "0.914");
  assert.equal(exactText(0.1 + 0.2, false), "0.30000000000000004"); // float64: every digit kept
  assert.equal(exactText(NaN, true), "NaN");
  assert.equal(exactText(-Infinity, false), "-Infinity");
});

test("xText: steps with separators, dates in UTC, relative time with its unit", () => {
  assert.equal(xText(1234567, false, "step"), "1,234,567");
  assert.equal(xText(0, true, "wall time"), "1970-01-01 00:00:00.000 UTC");
  assert.equal(xText(1.5, false, "relative time (min)"), "1.5 min");
});

function model(data) {
  return { get: (k) => data[k] };
}

function entry(key, xs, ys, raw = null) {
  return {
    info: { key, label: key, color: "#000", dash: "solid", bucketed: false },
    main: model({ x: Float64Array.from(xs), y: Float32Array.from(ys) }),
    raw: raw && model({ x: Float64Array.from(raw[0]), y: Float32Array.from(raw[1]) }),
  };
}

test("readoutRows: nearest point per series, raw value at the same step, sorted by value", () => {
  const rows = readoutRows([
    entry("loss", [0, 1, 2, 3], [4, 3, 2, 1], [[0, 1, 2, 3], [4.5, 2.5, 2.25, 0.5]]),
    entry("val_loss", [0, 2], [5, 3]),
    entry("empty", [], []),
  ], 1.8);
  assert.deepEqual(rows.map((r) => r.info.key), ["val_loss", "loss"]);
  const loss = rows[1];
  assert.equal(loss.x, 2);
  assert.equal(loss.value, 2);
  assert.equal(loss.raw, 2.25);
  assert.equal(loss.rawX, 2);
  assert.equal(loss.float32, true);
  assert.equal(rows[0].raw, null); // no raw line (smoothing off for it)
});

test("readoutRows puts non-finite values last and keeps every series (the tooltip caps at MAX_ROWS)", () => {
  const many = Array.from({ length: MAX_ROWS + 3 }, (_, i) => entry(`s${i}`, [0], [i]));
  many.push(entry("nan", [0], [NaN]));
  const rows = readoutRows(many, 0);
  assert.equal(rows.length, MAX_ROWS + 4);
  assert.equal(rows[0].info.key, `s${MAX_ROWS + 2}`);
  assert.equal(rows.at(-1).info.key, "nan");
});

test("boundValue: numbers, Dates and a DateScale's ISO strings (UTC) as numbers", () => {
  assert.equal(boundValue(12.5), 12.5);
  assert.equal(boundValue(new Date(86400000)), 86400000);
  assert.equal(boundValue("1970-01-02T00:00:00"), 86400000);
  assert.equal(boundValue("1970-01-02T00:00:00Z"), 86400000);
  assert.ok(Number.isNaN(boundValue(null)));
});

test("reportedWidth rounds a plot width up to 32 px, 0 before layout", () => {
  assert.equal(reportedWidth(0), 0);
  assert.equal(reportedWidth(0.4), 0);
  assert.equal(reportedWidth(1), 32);
  assert.equal(reportedWidth(320), 320);
  assert.equal(reportedWidth(320.5), 352);
  assert.equal(reportedWidth(895.2), 896);
});

/** A buffer as Python's pack_lines writes it (the layout its docstring gives). */
function pack(lines, date = false, wide = false) {
  const head = 8 + 4 * lines.length;
  const start = Math.ceil(head / 8) * 8;
  const total = lines.reduce((a, l) => a + (l ? l[0].length : 0), 0);
  const buf = new ArrayBuffer(start + (wide ? 16 : 12) * total);
  const flags = (date ? 1 : 0) | (wide ? 2 : 0);
  new Uint32Array(buf, 0, 2 + lines.length).set([lines.length, flags, ...lines.map((l) => (l ? l[0].length : 0))]);
  const xs = new Float64Array(buf, start, total);
  const ys = new (wide ? Float64Array : Float32Array)(buf, start + 8 * total, total);
  let i = 0;
  for (const l of lines) {
    if (!l) continue;
    xs.set(l[0], i);
    ys.set(l[1], i);
    i += l[0].length;
  }
  return buf;
}

test("unpackLines: one [x, y] view per line, empty for a missing raw line, dates flagged", () => {
  const lines = unpackLines(new DataView(pack([[[0, 1, 2 ** 40 + 1], [3, 2, 0.1]], null, [[5], [NaN]]])));
  assert.equal(lines.length, 3);
  assert.deepEqual(Array.from(lines[0][0]), [0, 1, 2 ** 40 + 1]); // float64 x: exact past 2**24
  assert.ok(lines[0][1] instanceof Float32Array);
  assert.equal(lines[0][1][2], Math.fround(0.1));
  assert.equal(lines[1][0].length, 0);
  assert.ok(Number.isNaN(lines[2][1][0]));
  assert.equal(lines[0][0].type, undefined);
  assert.equal(unpackLines(pack([[[1.7e12], [1]]], true))[0][0].type, "date");
  assert.deepEqual(unpackLines(null), []);
  assert.deepEqual(unpackLines(new DataView(new ArrayBuffer(0))), []);
});

test("unpackLines: y as float64 (flags bit 1) keeps values float32 would turn to 0 or Infinity", () => {
  const lines = unpackLines(pack([[[0, 1], [1e-40, 1e39]], [[2], [0.5]]], false, true));
  assert.ok(lines[0][1] instanceof Float64Array);
  assert.deepEqual(Array.from(lines[0][1]), [1e-40, 1e39]);
  assert.deepEqual(Array.from(lines[1][0]), [2]);
  assert.deepEqual(Array.from(lines[1][1]), [0.5]);
});

test("unpackLines reads a view that does not start on an 8-byte boundary (copied once)", () => {
  const packed = new Uint8Array(pack([[[1, 2], [3, 4]]]));
  const shifted = new Uint8Array(packed.length + 4);
  shifted.set(packed, 4);
  const lines = unpackLines(new DataView(shifted.buffer, 4, packed.length));
  assert.deepEqual(Array.from(lines[0][0]), [1, 2]);
  assert.deepEqual(Array.from(lines[0][1]), [3, 4]);
});

test("readoutRows reads the lines from the given points (the canvas' packed lines)", () => {
  const e = { info: { key: "loss" }, main: model({}), raw: model({}) };
  const packed = unpackLines(pack([[[0, 10], [1, 0.5]], [[0, 9, 10], [1.2, 0.4, 0.45]]]));
  const rows = readoutRows([e], 9, (en, pass) => packed[pass === "raw" ? 1 : 0]);
  assert.equal(rows[0].x, 10);
  assert.equal(rows[0].value, 0.5);
  assert.equal(rows[0].raw, Math.fround(0.45));
  assert.equal(rows[0].float32, true);
});

/** A 2d context that records what is drawn: per stroke/fill, its style and the pen's path. */
function recorder() {
  const log = [];
  let path = [];
  return {
    log,
    globalAlpha: 1, strokeStyle: "", fillStyle: "", lineWidth: 1, lineJoin: "",
    setTransform: (...a) => log.push(["transform", ...a]),
    clearRect: (...a) => log.push(["clear", ...a]),
    setLineDash(d) { this.dash = d; },
    beginPath: () => { path = []; },
    moveTo: (x, y) => path.push(["M", x, y]),
    lineTo: (x, y) => path.push(["L", x, y]),
    arc: (x, y, r) => path.push(["A", x, y, r]),
    stroke() { log.push(["stroke", this.strokeStyle, this.globalAlpha, this.lineWidth, this.dash, path]); },
    fill() { log.push(["fill", this.fillStyle, path]); },
  };
}

const scale = (min, max, log = false) => model({ min, max, _model_name: log ? "LogScaleModel" : "LinearScaleModel" });

/** A panel's scene and packed lines: a main line with a NaN gap and a faint raw line on a log y scale, dots on
 * a sparse line. */
function panel() {
  const x = scale(0, 10);
  const y = scale(0.1, 10, true);
  const style = (extra) => lineStyle(model({ scales: { x, y }, colors: ["#1f77b4"], opacities: [1], stroke_width: 2,
    ...extra }));
  const data = pack([[[0, 2, 4, 6], [1, NaN, 2, 3]], [[0, 1, 2, 3], [0.5, -1, 1.5, 2]], [[5, 10], [1, 10]]]);
  const scene = { w: 200, h: 100, ratio: 2, items: [
    { slot: 1, style: style({ opacities: [0.25], stroke_width: 1 }) },
    { slot: 0, style: style({ line_style: "dashed" }) },
    { slot: 2, style: style({ marker: "circle", marker_size: 24, colors: ["#ff7f0e"] }) },
  ] };
  return { data, scene };
}

test("drawScene: raw lines first, NaN and non-positive values on a log scale are gaps, dots on sparse lines", () => {
  const { data, scene } = panel();
  const ctx = recorder();
  drawScene(ctx, scene, unpackLines(data));
  assert.deepEqual(ctx.log[0], ["transform", 2, 0, 0, 2, 0, 0]);
  assert.deepEqual(ctx.log[1], ["clear", 0, 0, 200, 100]);
  const [, rawColor, rawAlpha, rawWidth, , rawPath] = ctx.log[2];
  assert.deepEqual([rawColor, rawAlpha, rawWidth], ["#1f77b4", 0.25, 1]);
  assert.deepEqual(rawPath.map((p) => p[0]), ["M", "M", "L"]); // y = -1 cannot be placed on a log scale
  const mainPath = ctx.log[3][5];
  assert.deepEqual(ctx.log[3][4], [6, 4]);
  assert.deepEqual(mainPath.map((p) => p[0]), ["M", "M", "L"]); // the NaN at x = 2 is a gap
  assert.equal(mainPath[0][1], 0);
  assert.ok(Math.abs(mainPath[0][2] - 50) < 1e-9); // y = 1 is the middle of a 0.1..10 log scale
  assert.equal(ctx.log[5][0], "fill"); // the dots of the sparse line
  assert.deepEqual(ctx.log[5][2].map((p) => p[0]), ["M", "A", "M", "A"]);
  assert.equal(ctx.log.length, 6);
});

/** WORKER_SOURCE evaluated as the worker would run it: returns its onmessage, posting into `out`. */
function startWorker(out) {
  const fake = { OffscreenCanvas: function OffscreenCanvas() { return { getContext: () => recorder() }; } };
  const run = new Function("postMessage", "OffscreenCanvas", "createImageBitmap", "onmessage",
    `${WORKER_SOURCE}\nreturn onmessage;`);
  return run((m) => out.push(m), fake.OffscreenCanvas, async (c) => ({ bitmapOf: c }), undefined);
}

test("the drawing worker draws exactly what the main thread draws, and keeps the points for style-only redraws",
  async () => {
    const out = [];
    const onmessage = startWorker(out);
    assert.deepEqual(out.map((m) => m.op), ["ready"]);
    const ctx = recorder();
    const canvas = { width: 300, height: 150, getContext: () => ctx };
    const { data, scene } = panel();
    await onmessage({ data: { op: "canvas", id: 7, canvas } });
    await onmessage({ data: { op: "draw", id: 7, scene, data: data.slice(0) } });
    assert.deepEqual([canvas.width, canvas.height], [400, 200]); // w, h x devicePixelRatio
    const here = recorder();
    drawScene(here, scene, unpackLines(data));
    assert.deepEqual(ctx.log, here.log);
    ctx.log.length = 0;
    await onmessage({ data: { op: "draw", id: 7, scene } }); // no data: the points it has
    assert.deepEqual(ctx.log, here.log);
    assert.deepEqual(out.map((m) => m.op), ["ready", "drawn", "drawn"]);
    await onmessage({ data: { op: "image", id: 7, req: 3 } });
    assert.deepEqual(out[3], { op: "image", req: 3, bitmap: { bitmapOf: canvas } });
    await onmessage({ data: { op: "draw", id: 7, scene: null } }); // a broken message: reported, not thrown
    assert.equal(out[4].op, "failed");
  });
