// Unit tests of js/heat_hover.js's pure functions (node --test; run by tests/test_js.py).
// Hovering a real heatmap is tested in a browser: tests/browser/test_browser_watch.py.
import assert from "node:assert/strict";
import { test } from "node:test";

import { cellAt, valueText } from "../../js/heat_hover.js";

test("cellAt maps plot-area fractions to the cell under them, rows from the top", () => {
  const steps = new Float64Array([0, 10, 20, 40]); // the scales span the cells' outer edges
  const at = (fx, fy) => cellAt(steps, 3, -5, 50, -0.5, 2.5, fx, fy);
  assert.deepEqual(at(0, 0), { row: 0, col: 0 });
  assert.deepEqual(at(1, 0.99), { row: 2, col: 3 });
  assert.deepEqual(at((16 + 5) / 55, 0.5), { row: 1, col: 2 }); // step 16: nearer 20 than 10
  assert.deepEqual(at((14 + 5) / 55, 0.5), { row: 1, col: 1 });
  assert.deepEqual(at((31 + 5) / 55, 0.2), { row: 0, col: 3 });
  assert.equal(at(-0.01, 0.5), null);
  assert.equal(at(0.5, 1.01), null);
  assert.equal(cellAt(steps, 1, -5, 50, -0.5, 1.5, 0.5, 0.9), null); // the blank row under a single layer
  assert.equal(cellAt(new Float64Array([]), 3, 0, 1, -0.5, 2.5, 0.5, 0.5), null);
});

test("valueText shows 4 significant digits, 10^colour on a log map, and says when there is none", () => {
  assert.equal(valueText(Math.fround(Math.log10(0.0589912)), true), "0.05899");
  assert.equal(valueText(-7, true), "1e-7");
  assert.equal(valueText(0.123456, false), "0.1235");
  assert.equal(valueText(NaN, false), "no value");
  assert.equal(valueText(null, true), "no value");
});
