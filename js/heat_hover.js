// Hover readout of one watch heatmap (layers x steps): the layer, step and value of the cell
// under the cursor.
//
// Loaded by anywidget (`lossviz_widget.watch.view.HeatHover._esm`); plain ES module, no imports,
// no build step. A bqplot HeatMap is drawn as one image, so bqplot's own Tooltip cannot tell
// which cell is hovered; this layer sits beside the heatmap's Figure (in the same
// `.lossviz-watch-map` box) and reads the cell from the HeatMap model already in the browser
// (`widget_manager.get_model`: its synced x (steps) and color (rows of float32) arrays, and the
// x/y scales' min/max, which the kernel sets to the cells' edges). Nothing goes to the kernel,
// so it works while the training cell runs.
//
// Synced from Python: `heat` (the HeatMap's model id), `rows` (the row labels: layer names, or
// "a … b" for merged layers), `log` (the colour is log10 of the value), `merged` (a column merges
// several sampled steps; its step is the first of them).

/** Index of the value of the sorted array `xs` nearest to `x` (-1 when empty). */
function nearest(xs, x) {
  let best = -1;
  for (let i = 0; i < xs.length; i++) if (best < 0 || Math.abs(xs[i] - x) < Math.abs(xs[best] - x)) best = i;
  return best;
}

/** The cell at fractions (fx, fy) of the plot area: {row, col} or null outside the cells. */
export function cellAt(xs, nRows, xMin, xMax, yMin, yMax, fx, fy) {
  if (!(fx >= 0 && fx <= 1 && fy >= 0 && fy <= 1)) return null;
  const col = nearest(xs, xMin + fx * (xMax - xMin));
  const row = Math.floor(yMin + fy * (yMax - yMin) + 0.5); // reversed y scale: its min is at the top
  if (col < 0 || row < 0 || row >= nRows) return null;
  return { row, col };
}

/** A cell's value as shown: 4 significant digits; `log`: the colour is log10 of the value. */
export function valueText(color, log) {
  if (color === null || color === undefined || !Number.isFinite(color)) return "no value";
  const v = log ? 10 ** color : color;
  return String(Number(v.toPrecision(4)));
}

function line(label, text, cls) {
  const div = document.createElement("div");
  div.className = cls;
  const b = document.createElement("b");
  b.textContent = `${label}: `;
  div.append(b, document.createTextNode(text)); // text only: layer names are never parsed as HTML
  return div;
}

function render({ model, el }) {
  const tip = document.createElement("div");
  tip.className = "lossviz-tooltip lossviz-heat-tip";
  document.body.append(tip);
  let heat = null;
  let pending = null;
  let frameRequest = 0;
  let shown = ""; // the cell the readout is for ("" when hidden): rebuilt only when it changes

  async function resolve() {
    const ref = model.get("heat");
    heat = ref ? await model.widget_manager.get_model(String(ref).replace(/^IPY_MODEL_/, "")) : null;
  }

  function hide() {
    tip.style.display = "none";
    shown = "";
  }

  // The readout sits right of the hovered cell (left of it near the window's edge), level with
  // its row: it stays put while the pointer moves within the cell.
  function show(area, cell, xs, nRows) {
    const scales = heat.get("scales");
    const [x0, x1] = [scales.x.get("min"), scales.x.get("max")];
    const right = cell.col + 1 < xs.length ? (xs[cell.col] + xs[cell.col + 1]) / 2 : x1;
    const left = cell.col > 0 ? (xs[cell.col - 1] + xs[cell.col]) / 2 : x0;
    const r = area.getBoundingClientRect();
    const cellLeft = r.left + ((left - x0) / (x1 - x0)) * r.width;
    const cellRight = r.left + ((right - x0) / (x1 - x0)) * r.width;
    const rowMiddle = r.top + ((cell.row + 0.5) / nRows) * r.height;
    tip.style.display = "block";
    const w = tip.offsetWidth;
    const h = tip.offsetHeight;
    const x = cellRight + 8 + w <= window.innerWidth ? cellRight + 8 : Math.max(0, cellLeft - 8 - w);
    tip.style.transform = `translate(${x}px, ${Math.max(0, rowMiddle - h / 2)}px)`;
  }

  function update() {
    frameRequest = 0;
    const ev = pending;
    const box = el.closest(".lossviz-watch-map");
    const area = box ? box.querySelector("rect.plotarea_events") : null;
    if (!ev || !area || !heat || !box.contains(ev.target)) return hide();
    const scales = heat.get("scales");
    const xs = heat.get("x");
    const rows = model.get("rows");
    const nRows = heat.get("color").length;
    const r = area.getBoundingClientRect();
    const cell = cellAt(xs, rows.length, scales.x.get("min"), scales.x.get("max"), scales.y.get("min"),
      scales.y.get("max"), (ev.clientX - r.left) / r.width, (ev.clientY - r.top) / r.height);
    if (!cell) return hide();
    const value = heat.get("color")[cell.row][cell.col];
    const key = `${cell.row},${cell.col},${xs[cell.col]},${value},${rows[cell.row]}`;
    if (key !== shown) {
      tip.replaceChildren(
        line("layer", rows[cell.row], "lossviz-heat-layer"),
        line(model.get("merged") ? "from step" : "step", String(xs[cell.col]), "lossviz-heat-step"),
        line(model.get("title"), valueText(value, model.get("log")), "lossviz-heat-value"),
      );
      show(area, cell, xs, nRows);
      shown = key;
    }
  }

  // One listener on the document (the map's box is not in it yet when this view renders): a
  // pointer outside this map hides the readout.
  const onMove = (ev) => {
    pending = ev;
    if (!frameRequest) frameRequest = requestAnimationFrame(update);
  };
  document.addEventListener("pointermove", onMove);
  window.addEventListener("scroll", hide, true);
  model.on("change:heat", resolve);
  resolve();
  return () => {
    cancelAnimationFrame(frameRequest);
    document.removeEventListener("pointermove", onMove);
    window.removeEventListener("scroll", hide, true);
    tip.remove();
  };
}

export default { render };
