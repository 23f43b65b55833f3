// Snapshot button for LossPlot: captures the widget as the browser shows it, as a PNG.
//
// Loaded by anywidget (`lossviz_widget.snapshot.SnapshotButton._esm`); plain ES module,
// no imports, no build step.
//
// How the picture is made (everything is drawn on one <canvas>, nothing taints it):
//   * The enclosing LossPlot root (`el.closest(".lossviz")`) is walked in DOM order and
//     turned into a display list, in CSS pixels relative to the root:
//       - HTML boxes: background colour, borders, border radius (buttons, slider track,
//         readout swatches, ...);
//       - HTML text: one fillText per word, placed with Range.getClientRects(), in the
//         element's computed font and colour (title, controls, readout table, status);
//       - <select>/<input>: their displayed value as text;
//       - bqplot figures (`.lossviz-panel`): each <svg> (svg-background: axes and grid;
//         svg-figure: marks, legend, title) is cloned with its computed styles inlined
//         (bqplot styles come from stylesheets and --jp-* CSS variables, which a
//         serialized SVG would lose: getComputedStyle returns them resolved), serialized,
//         and loaded as an <img> from a Blob URL at the canvas resolution.
//   * The canvas is (root size) x devicePixelRatio x scale on the background the plot is seen on
//     (the theme's: dark in JupyterLab Dark), white when no element sets one.
// Then the PNG bytes go to the kernel with model.send(...) and, for a click, a download
// starts. Every wait is bounded (TIMEOUT_MS); a failure is sent as {ok: false, error} and
// shown in the button's tooltip.

const TIMEOUT_MS = 10000;
const MAX_SEND_BYTES = 9 * 1024 * 1024; // jupyter_server's websocket frames stop at 10 MiB
const MAX_SIDE = 16384; // canvas limits (Chrome: 32767 per side, ~268 Mpx in all)
const MAX_PIXELS = 64 * 1024 * 1024;
const TOOLTIP = "Save a PNG of the plot as shown (also kept in Python as .last_snapshot)";
const LABEL = "\u2913 snapshot";

// SVG presentation properties copied from the computed style onto each cloned element.
const SVG_PROPS = [
  "fill", "fill-opacity", "fill-rule", "stroke", "stroke-width", "stroke-opacity",
  "stroke-dasharray", "stroke-dashoffset", "stroke-linecap", "stroke-linejoin",
  "stroke-miterlimit", "opacity", "visibility", "color", "font-family", "font-size",
  "font-weight", "font-style", "font-variant", "letter-spacing", "word-spacing",
  "text-anchor", "dominant-baseline", "alignment-baseline", "baseline-shift",
  "text-decoration", "shape-rendering", "text-rendering", "paint-order", "vector-effect",
  "marker-start", "marker-mid", "marker-end", "mix-blend-mode",
];

function newId(prefix) {
  const rnd = globalThis.crypto && crypto.randomUUID
    ? crypto.randomUUID()
    : `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
  return `${prefix}-${rnd}`;
}

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// The colour the plot is seen on: the first opaque background of the root or its ancestors
// (the notebook's, so a dark theme gives a dark PNG); white when there is none.
function themeBackground(el) {
  for (let e = el; e; e = e.parentElement) {
    const bg = getComputedStyle(e).backgroundColor;
    if (!isTransparent(bg)) return bg;
  }
  return "#ffffff";
}

function isTransparent(color) {
  return !color || color === "transparent" || /^rgba\(.*,\s*0\)$/.test(color);
}

// ---------------------------------------------------------------------------------------
// SVG: clone with computed styles inlined, load as an image
// ---------------------------------------------------------------------------------------

function inlineStyles(src, dst) {
  const cs = getComputedStyle(src);
  if (cs.display === "none") return false;
  // Inline style that still refers to a CSS variable: take the resolved value.
  for (let i = dst.style.length - 1; i >= 0; i--) {
    const name = dst.style[i];
    if (dst.style.getPropertyValue(name).includes("var(")) {
      dst.style.setProperty(name, cs.getPropertyValue(name));
    }
  }
  for (const name of SVG_PROPS) {
    const value = cs.getPropertyValue(name);
    if (value !== "") dst.style.setProperty(name, value);
  }
  // Children: same structure in source and clone; drop what is not displayed.
  const srcKids = src.children;
  const dstKids = Array.from(dst.children);
  for (let i = 0; i < dstKids.length; i++) {
    const s = srcKids[i];
    const d = dstKids[i];
    if (!s || !(s instanceof SVGElement) || s.tagName.toLowerCase() === "foreignobject") {
      d.remove();
      continue;
    }
    const tag = s.tagName.toLowerCase();
    if (["defs", "clippath", "mask", "lineargradient", "radialgradient", "pattern", "marker",
         "symbol", "style", "title", "desc", "filter"].includes(tag)) {
      continue; // definitions: keep as they are (not rendered in place, computed display none)
    }
    if (!inlineStyles(s, d)) d.remove();
  }
  return true;
}

function svgSource(svg, width, height, k) {
  const clone = svg.cloneNode(true);
  inlineStyles(svg, clone);
  clone.setAttribute("xmlns", "http://www.w3.org/2000/svg");
  clone.setAttribute("width", String(Math.max(1, Math.round(width * k))));
  clone.setAttribute("height", String(Math.max(1, Math.round(height * k))));
  clone.setAttribute("viewBox", `0 0 ${width} ${height}`);
  clone.setAttribute("preserveAspectRatio", "none");
  for (const prop of ["position", "left", "top", "right", "bottom", "margin", "transform",
                      "background", "width", "height"]) {
    clone.style.removeProperty(prop);
  }
  return new XMLSerializer().serializeToString(clone);
}

function loadSvgImage(source, what) {
  const url = URL.createObjectURL(new Blob([source], { type: "image/svg+xml;charset=utf-8" }));
  const img = new Image();
  const loaded = new Promise((resolve, reject) => {
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error(`${what}: the browser could not load the serialized SVG`));
  });
  img.src = url;
  return withTimeout(loaded, TIMEOUT_MS, `loading ${what}`).finally(() => URL.revokeObjectURL(url));
}

// ---------------------------------------------------------------------------------------
// HTML: boxes and text as canvas operations
// ---------------------------------------------------------------------------------------

function fontOf(cs) {
  return `${cs.fontStyle} ${cs.fontWeight} ${cs.fontSize} ${cs.fontFamily}`;
}

function radiusOf(value, rect) {
  const v = parseFloat(value) || 0;
  return value.trim().endsWith("%") ? (v / 100) * Math.min(rect.width, rect.height) : v;
}

function boxOps(el, cs, rect, origin, alpha, ops) {
  const x = rect.left - origin.left;
  const y = rect.top - origin.top;
  const { width: w, height: h } = rect;
  if (w <= 0 || h <= 0) return;
  const r = Math.min(radiusOf(cs.borderTopLeftRadius, rect), w / 2, h / 2);
  const bg = cs.backgroundColor;
  if (!isTransparent(bg)) {
    ops.push((ctx) => {
      ctx.globalAlpha = alpha;
      ctx.fillStyle = bg;
      ctx.beginPath();
      if (r > 0 && ctx.roundRect) ctx.roundRect(x, y, w, h, r);
      else ctx.rect(x, y, w, h);
      ctx.fill();
    });
  }
  const sides = ["Top", "Right", "Bottom", "Left"].map((s) => ({
    width: parseFloat(cs[`border${s}Width`]) || 0,
    style: cs[`border${s}Style`],
    color: cs[`border${s}Color`],
  }));
  const drawn = sides.map((s) => s.width > 0 && s.style !== "none" && s.style !== "hidden" && !isTransparent(s.color));
  if (!drawn.some(Boolean)) return;
  const uniform = drawn.every(Boolean) && sides.every((s) => s.width === sides[0].width && s.color === sides[0].color);
  if (uniform) {
    const bw = sides[0].width;
    ops.push((ctx) => {
      ctx.globalAlpha = alpha;
      ctx.strokeStyle = sides[0].color;
      ctx.lineWidth = bw;
      ctx.beginPath();
      const rr = Math.max(0, r - bw / 2);
      if (rr > 0 && ctx.roundRect) ctx.roundRect(x + bw / 2, y + bw / 2, w - bw, h - bw, rr);
      else ctx.rect(x + bw / 2, y + bw / 2, w - bw, h - bw);
      ctx.stroke();
    });
    return;
  }
  const [t, rt, b, l] = sides;
  const rects = [
    [drawn[0], t.color, x, y, w, t.width],
    [drawn[1], rt.color, x + w - rt.width, y, rt.width, h],
    [drawn[2], b.color, x, y + h - b.width, w, b.width],
    [drawn[3], l.color, x, y, l.width, h],
  ];
  ops.push((ctx) => {
    ctx.globalAlpha = alpha;
    for (const [on, color, rx, ry, rw, rh] of rects) {
      if (!on) continue;
      ctx.fillStyle = color;
      ctx.fillRect(rx, ry, rw, rh);
    }
  });
}

function textOp(text, rect, cs, origin, alpha, ops, align = "left") {
  if (!text || rect.width <= 0 || rect.height <= 0) return;
  const font = fontOf(cs);
  const color = cs.color;
  const x = rect.left - origin.left;
  const top = rect.top - origin.top;
  const { width: w, height: h } = rect;
  ops.push((ctx) => {
    ctx.globalAlpha = alpha;
    ctx.font = font;
    ctx.fillStyle = color;
    ctx.textAlign = align;
    ctx.textBaseline = "alphabetic";
    const m = ctx.measureText(text);
    const asc = m.fontBoundingBoxAscent ?? m.actualBoundingBoxAscent ?? h * 0.8;
    const desc = m.fontBoundingBoxDescent ?? m.actualBoundingBoxDescent ?? h * 0.2;
    const baseline = top + (h - (asc + desc)) / 2 + asc;
    const tx = align === "center" ? x + w / 2 : align === "right" ? x + w : x;
    ctx.fillText(text, tx, baseline);
  });
}

function textNodeOps(node, cs, origin, alpha, ops) {
  const text = node.nodeValue;
  if (!text || !text.trim()) return;
  const transform = cs.textTransform;
  const words = /\S+/g;
  const range = document.createRange();
  let m;
  while ((m = words.exec(text)) !== null) {
    range.setStart(node, m.index);
    range.setEnd(node, m.index + m[0].length);
    const rects = range.getClientRects();
    if (!rects.length) continue;
    let word = m[0];
    if (transform === "uppercase") word = word.toUpperCase();
    else if (transform === "lowercase") word = word.toLowerCase();
    textOp(word, rects[0], cs, origin, alpha, ops);
  }
  range.detach();
}

function controlValueOps(el, cs, rect, origin, alpha, ops) {
  const tag = el.tagName.toLowerCase();
  let text = "";
  if (tag === "select") {
    const opt = el.selectedOptions && el.selectedOptions[0];
    text = opt ? opt.text : "";
  } else if (tag === "input" && !["checkbox", "radio", "range", "color", "file", "hidden"].includes(el.type)) {
    text = el.value || el.placeholder || "";
  } else if (tag === "textarea") {
    text = el.value;
  }
  const padL = parseFloat(cs.paddingLeft) + parseFloat(cs.borderLeftWidth);
  const padR = parseFloat(cs.paddingRight) + parseFloat(cs.borderRightWidth);
  const inner = { left: rect.left + padL, top: rect.top, width: Math.max(0, rect.width - padL - padR), height: rect.height };
  if (text) textOp(text, inner, cs, origin, alpha, ops);
  if (tag === "select") {
    // The native caret is a background image; draw a small chevron instead.
    const cx = rect.right - origin.left - Math.max(12, padR / 2);
    const cy = rect.top - origin.top + rect.height / 2;
    const color = cs.color;
    ops.push((ctx) => {
      ctx.globalAlpha = alpha;
      ctx.strokeStyle = color;
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      ctx.moveTo(cx - 4, cy - 2);
      ctx.lineTo(cx, cy + 2);
      ctx.lineTo(cx + 4, cy - 2);
      ctx.stroke();
    });
  }
}

// ---------------------------------------------------------------------------------------
// The walk: a display list of canvas operations and images to load
// ---------------------------------------------------------------------------------------

function figureOps(fig, origin, alpha, k, ops, loads) {
  for (const child of fig.children) {
    const cs = getComputedStyle(child);
    if (cs.display === "none" || cs.visibility === "hidden" || cs.opacity === "0") continue;
    const rect = child.getBoundingClientRect();
    if (rect.width <= 0 || rect.height <= 0) continue;
    const x = rect.left - origin.left;
    const y = rect.top - origin.top;
    const a = alpha * (parseFloat(cs.opacity) || 1);
    const tag = child.tagName.toLowerCase();
    if (tag === "svg") {
      const what = `${fig.querySelector("text.mainheading")?.textContent || "figure"} ${child.getAttribute("class") || "svg"}`;
      const slot = { img: null };
      loads.push(loadSvgImage(svgSource(child, rect.width, rect.height, k), what).then((img) => { slot.img = img; }));
      ops.push((ctx) => {
        ctx.globalAlpha = a;
        ctx.drawImage(slot.img, x, y, rect.width, rect.height);
      });
    } else if (tag === "canvas" && typeof child.lossvizImage === "function") {
      // the lines of renderer="canvas" (js/hover.js): drawn in a worker, the canvas has no pixels here,
      // so its layer hands over an ImageBitmap of what it shows
      const slot = { img: null };
      loads.push(withTimeout(child.lossvizImage(), TIMEOUT_MS, "the canvas' lines").then((img) => { slot.img = img; }));
      ops.push((ctx) => {
        ctx.globalAlpha = a;
        if (slot.img) ctx.drawImage(slot.img, x, y, rect.width, rect.height);
      });
    } else if (tag === "canvas" && child.width > 0 && child.height > 0) {
      // WebGL marks (none in LossPlot); a cleared WebGL buffer draws nothing.
      ops.push((ctx) => {
        ctx.globalAlpha = a;
        try { ctx.drawImage(child, x, y, rect.width, rect.height); } catch (_) { /* unreadable */ }
      });
    }
    // divs (toolbar, tooltip) are interaction chrome: not part of the picture
  }
}

function walk(el, origin, alpha, k, ops, loads, skip) {
  if (skip(el)) return;
  const cs = getComputedStyle(el);
  if (cs.display === "none" || cs.visibility === "hidden") return;
  const a = alpha * parseFloat(cs.opacity || "1");
  if (a <= 0) return;
  const rect = el.getBoundingClientRect();
  boxOps(el, cs, rect, origin, a, ops);
  if (el.classList.contains("bqplot") && el.classList.contains("figure")) {
    figureOps(el, origin, a, k, ops, loads);
    return;
  }
  const tag = el.tagName.toLowerCase();
  if (tag === "select" || tag === "input" || tag === "textarea") {
    controlValueOps(el, cs, rect, origin, a, ops);
    return;
  }
  if (tag === "svg") { // an icon outside the panels
    if (rect.width > 0 && rect.height > 0) {
      const slot = { img: null };
      loads.push(loadSvgImage(svgSource(el, rect.width, rect.height, k), "icon").then((img) => { slot.img = img; }));
      const x = rect.left - origin.left;
      const y = rect.top - origin.top;
      ops.push((ctx) => { ctx.globalAlpha = a; ctx.drawImage(slot.img, x, y, rect.width, rect.height); });
    }
    return;
  }
  if (["img", "video", "iframe", "canvas", "script", "style", "template"].includes(tag)) return;
  for (const node of el.childNodes) {
    if (node.nodeType === Node.TEXT_NODE) textNodeOps(node, cs, origin, a, ops);
    else if (node.nodeType === Node.ELEMENT_NODE) walk(node, origin, a, k, ops, loads, skip);
  }
}

/** Draw `root` onto a canvas; resolves to {blob, width, height} (PNG). */
async function capture(root, scale) {
  const origin = root.getBoundingClientRect();
  if (!root.isConnected || origin.width < 1 || origin.height < 1) {
    throw new Error("the plot is not visible in this view (zero size or detached)");
  }
  const dpr = window.devicePixelRatio || 1;
  let k = dpr * (scale > 0 ? scale : 1);
  k = Math.min(k, MAX_SIDE / origin.width, MAX_SIDE / origin.height,
               Math.sqrt(MAX_PIXELS / (origin.width * origin.height)));
  const width = Math.max(1, Math.round(origin.width * k));
  const height = Math.max(1, Math.round(origin.height * k));

  const ops = [];
  const loads = [];
  const skip = (el) => el.classList && el.classList.contains("lossviz-snapshot");
  walk(root, origin, 1, k, ops, loads, skip);
  await Promise.all(loads);

  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = themeBackground(root);
  ctx.fillRect(0, 0, width, height);
  ctx.setTransform(width / origin.width, 0, 0, height / origin.height, 0, 0);
  for (const op of ops) {
    ctx.save();
    op(ctx);
    ctx.restore();
  }
  const blob = await withTimeout(
    new Promise((resolve, reject) => canvas.toBlob(
      (b) => (b ? resolve(b) : reject(new Error("canvas.toBlob returned nothing"))), "image/png")),
    TIMEOUT_MS, "PNG encoding");
  return { blob, width, height };
}

function download(blob, filename) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = filename || "lossviz-snapshot.png";
  a.style.display = "none";
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

// ---------------------------------------------------------------------------------------
// The widget view
// ---------------------------------------------------------------------------------------

function render({ model, el }) {
  el.classList.add("lossviz-snapshot");
  const button = document.createElement("button");
  button.type = "button";
  button.className = "jupyter-widgets jupyter-button widget-button";
  button.style.width = "105px"; // stock buttons are 148 px: keep the control bar on one row
  button.textContent = LABEL;
  button.title = TOOLTIP;
  el.appendChild(button);
  el.dataset.state = "idle";

  let queue = Promise.resolve(); // one capture at a time per view

  // Sends a message to the kernel; returns an error message instead of throwing.
  const trySend = (content, buffers) => {
    try {
      model.send(content, undefined, buffers || []);
      return null;
    } catch (err) {
      return `could not send to the kernel: ${err && err.message ? err.message : err}`;
    }
  };

  async function run(requestId, wantDownload) {
    button.disabled = true;
    el.dataset.state = "capturing";
    let error = null;
    let replied = false; // the PNG reached model.send
    let summary = "";
    try {
      const root = el.closest(".lossviz");
      if (!root) throw new Error("the snapshot button is not inside a LossPlot (.lossviz)");
      const shot = await withTimeout(capture(root, Number(model.get("scale")) || 1), TIMEOUT_MS + 2000, "snapshot");
      const bytes = await shot.blob.arrayBuffer();
      summary = `${shot.width}\u00d7${shot.height} px, ${bytes.byteLength.toLocaleString()} bytes`;
      if (bytes.byteLength > MAX_SEND_BYTES) {
        error = `PNG is ${(bytes.byteLength / 2 ** 20).toFixed(1)} MiB, too large to send to the kernel (lower scale)`;
      } else {
        // Sent before the download starts, so the kernel has it queued by then.
        error = trySend({ type: "snapshot", ok: true, request_id: requestId, width: shot.width,
                          height: shot.height, nbytes: bytes.byteLength }, [bytes]);
        replied = error === null;
      }
      if (wantDownload) download(shot.blob, model.get("filename"));
    } catch (err) {
      error = err && err.message ? err.message : String(err);
    }
    if (error !== null && !replied) {
      trySend({ type: "snapshot", ok: false, error, request_id: requestId });
    }
    el.dataset.lastRequestId = requestId;
    el.dataset.state = error === null ? "done" : "error";
    button.classList.toggle("mod-danger", error !== null);
    button.title = error === null ? `${TOOLTIP}\nlast: ${summary}` : `snapshot failed: ${error}`;
    if (error !== null) console.warn("[lossviz snapshot]", error);
    button.disabled = false;
  }

  const enqueue = (requestId, wantDownload) => {
    queue = queue.then(() => run(requestId, wantDownload));
  };

  button.addEventListener("click", () => enqueue(newId("click"), true));
  const onMsg = (msg) => {
    if (msg && msg.type === "request_snapshot" && msg.request_id) {
      enqueue(String(msg.request_id), Boolean(msg.download));
    }
  };
  model.on("msg:custom", onMsg);
  return () => model.off("msg:custom", onMsg);
}

export default { render };
