// Hover readout and crosshair for the HTML report (lossviz_widget._io.report).
//
// Not loaded on its own: the report inlines js/hover.js and then this file as ONE module script,
// pinned by its sha256 in the page's Content-Security-Policy, so `readoutRows`, `fillTooltip`,
// `nearestIndex` come from hover.js (the live widget's readout, the same code). The page is
// complete without it (scripts off: the chart, tables and data are all there).
//
// Input: the JSON block #lossviz-drawn written by the report: {x_label, panels: [{box: [x0, y0,
// x1, y1] (the panel's plot area as fractions of the chart, y up), xlim: [lo, hi], series: [{key,
// label, color, dash, bucketed, x, y, raw_x, raw_y, float32}]}]}: the lines exactly as the
// chart draws them (NaN/Infinity as strings).

function reportHover() {
  const block = document.getElementById("lossviz-drawn");
  const chart = document.querySelector("svg.lossviz-chart");
  if (!block || !chart) return;
  const drawn = JSON.parse(block.textContent);
  const array = (values, float32) => (float32 ? Float32Array : Float64Array).from(values, Number);
  const lineModel = (x, y, float32) => {
    const data = { x: array(x, false), y: array(y, float32) };
    return { get: (k) => data[k] };
  };
  const panels = drawn.panels.map((p) => ({
    ...p,
    entries: p.series.map((s) => ({
      info: s,
      main: lineModel(s.x, s.y, s.float32),
      raw: s.raw_x ? lineModel(s.raw_x, s.raw_y, s.float32) : null,
    })),
    crosshair: Object.assign(document.createElement("div"), { className: "lossviz-crosshair" }),
  }));
  const tip = Object.assign(document.createElement("div"), { className: "lossviz-tooltip" });
  document.body.append(tip, ...panels.map((p) => p.crosshair));

  // A panel's plot area on screen, from its box in chart fractions (y measured upwards).
  const area = (p) => {
    const r = chart.getBoundingClientRect();
    const [x0, y0, x1, y1] = p.box;
    return { left: r.left + x0 * r.width, right: r.left + x1 * r.width,
             top: r.top + (1 - y1) * r.height, bottom: r.top + (1 - y0) * r.height };
  };
  const hide = () => {
    tip.style.display = "none";
    for (const p of panels) p.crosshair.style.display = "none";
  };

  chart.addEventListener("pointermove", (ev) => {
    const hovered = panels.find((p) => {
      const a = area(p);
      return ev.clientX >= a.left && ev.clientX <= a.right && ev.clientY >= a.top && ev.clientY <= a.bottom;
    });
    if (!hovered) return hide();
    const a = area(hovered);
    const f = (ev.clientX - a.left) / (a.right - a.left);
    const x = hovered.xlim[0] + f * (hovered.xlim[1] - hovered.xlim[0]);
    for (const p of panels) { // one shared x axis: the same x in every panel
      const b = area(p);
      const g = (x - p.xlim[0]) / (p.xlim[1] - p.xlim[0]);
      Object.assign(p.crosshair.style, { display: g >= 0 && g <= 1 ? "block" : "none", height: `${b.bottom - b.top}px`,
        transform: `translate(${Math.round(b.left + g * (b.right - b.left))}px, ${b.top}px)` });
    }
    const rows = readoutRows(hovered.entries, x);
    if (!rows.length) return hide();
    fillTooltip(tip, rows, drawn.x_label, x);
    tip.style.display = "block";
    const left = ev.clientX + 16 + tip.offsetWidth > window.innerWidth ? ev.clientX - 16 - tip.offsetWidth
      : ev.clientX + 16;
    tip.style.transform = `translate(${Math.max(0, left)}px, ${ev.clientY + 12}px)`;
  });
  chart.addEventListener("pointerleave", hide);
  window.addEventListener("scroll", hide, true);
}

reportHover();
