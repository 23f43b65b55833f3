"""End to end: ``renderer="canvas"`` draws the same lines as the SVG renderer (real JupyterLab and
Notebook 7 + Chromium).

Two plots of the same data side by side in one notebook, one per renderer (smoothing on: faint raw
lines behind the smoothed ones; a sparse val_loss with dots; a log-y panel). For every data line
the SVG renderer draws (``path.line``: its vertices are plot-area pixels), the canvas of the same
panel in the other plot must be painted at each vertex (within 1 px); the main lines' vertices
mostly in the line's own colour (another line may cross); the canvas plot's points come in one
binary message per panel (``HoverLayer.lines``), not through its ``Lines`` models; they are drawn in the
page's drawing worker (``OffscreenCanvas``), or on the main thread with the worker switched off (same
pixels). Then the hover
readout (it reads the same points) and the snapshot button (it copies the canvas) on the canvas
plot, and screenshots of both plots in the light and the dark theme (JupyterLab and Notebook 7),
compared pixel by pixel. First of all, the views' measured
plot width reaches the kernel (``plot_width``; the raw lines are then sent with fewer points). Last
(light theme), switching ``renderer`` back and forth on the shown plot.

Artifacts (``test-artifacts/browser/``; ``<theme>``: light, dark, notebook7-light, notebook7-dark):
``canvas-<theme>-svg.png`` and ``canvas-<theme>-canvas.png``
(the two plots' panels), ``canvas-<theme>-snapshot.png`` (what the snapshot button saved); the same
as ``canvas-paths-<switch|blocked|hidpi>-*`` for the main-thread fallback and a devicePixelRatio of 2.
"""

from __future__ import annotations

from typing import Any

import browser_harness as bh
import numpy as np
import pytest
from browser_harness import NotebookPage, poll

SETUP_CELL = """\
import math, random
from lossviz_widget import LossPlot

def fill(plot):
    rng = random.Random(0)
    for i in range(400):
        v = {"loss": math.exp(-i / 120) + 0.2 * rng.random(),
             "acc": 0.95 - 0.9 * math.exp(-i / 90) - 0.08 * rng.random(), "lr": 1e-3 * 0.99 ** i}
        if i % 25 == 0:
            v["val_loss"] = math.exp(-i / 140) + 0.25
        plot.log(v, step=i)
    plot.flush()

svg = LossPlot(title="svg", smoothing=0.6, log_y=True, log_y_panels=("lr",), renderer="svg")
canvas = LossPlot(title="canvas", smoothing=0.6, log_y=True, log_y_panels=("lr",), renderer="canvas")
fill(svg)
fill(canvas)
from ipywidgets import HBox, Layout
for p in (svg, canvas):
    p.layout = Layout(width="50%")
HBox([svg, canvas])"""

#: JS ``([svgRoot, canvasRoot]) => per panel {lines: [{vertices, painted, own, color, main}], canvases, drawnBy}``.
#: The canvas' pixels are read as the snapshot button reads them (``lossvizImage()``: an ImageBitmap, from the
#: drawing worker when the canvas is drawn there: a transferred canvas has no 2d context in the page).
COMPARE_JS = r"""
async ([svgRoot, canvasRoot]) => {
  const NUM = /[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?/g;
  const rgb = (c) => {
    const m = /rgba?\(([^)]+)\)/.exec(c);
    return m ? m[1].split(',').slice(0, 3).map(Number) : null;
  };
  const svgPanels = svgRoot.querySelectorAll('.lossviz-panel');
  const canvasPanels = canvasRoot.querySelectorAll('.lossviz-panel');
  const out = [];
  for (let p = 0; p < svgPanels.length; p++) {
    const cv = canvasPanels[p] && canvasPanels[p].querySelector('canvas.lossviz-lines');
    const svgPaths = [...canvasPanels[p].querySelectorAll('path.line')].filter((e) => !e.closest('.g_legend'));
    const panel = { lines: [], canvases: canvasPanels[p].querySelectorAll('canvas.lossviz-lines').length,
                    canvasPaths: svgPaths.filter((e) => (e.getAttribute('d') || '').length > 0).length,
                    drawnBy: cv ? cv.dataset.drawnBy : null };
    out.push(panel);
    const bitmap = cv ? await cv.lossvizImage() : null;
    if (!bitmap) continue;
    const copy = document.createElement('canvas');
    copy.width = bitmap.width;
    copy.height = bitmap.height;
    const ctx = copy.getContext('2d');
    ctx.drawImage(bitmap, 0, 0);
    const ratio = copy.width / cv.getBoundingClientRect().width;
    const img = ctx.getImageData(0, 0, copy.width, copy.height).data;
    const at = (x, y) => {  // the most opaque pixel within 1 px: [r, g, b, a]
      let best = [0, 0, 0, 0];
      for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) {
        const px = Math.round(x * ratio) + dx, py = Math.round(y * ratio) + dy;
        if (px < 0 || py < 0 || px >= copy.width || py >= copy.height) continue;
        const i = 4 * (py * copy.width + px);
        if (img[i + 3] > best[3]) best = [img[i], img[i + 1], img[i + 2], img[i + 3]];
      }
      return best;
    };
    for (const path of svgPanels[p].querySelectorAll('path.line')) {
      if (path.closest('.g_legend')) continue;
      const nums = ((path.getAttribute('d') || '').match(NUM) || []).map(Number);
      if (!nums.length) continue;
      const cs = getComputedStyle(path);
      const color = rgb(cs.stroke);
      const main = parseFloat(cs.strokeWidth) >= 2;
      let painted = 0, own = 0;
      for (let i = 0; i + 1 < nums.length; i += 2) {
        const px = at(nums[i], nums[i + 1]);
        if (px[3] > 0) painted++;
        if (color && px[3] > 200 && px.slice(0, 3).every((v, k) => Math.abs(v - color[k]) < 40)) own++;
      }
      panel.lines.push({ vertices: nums.length / 2, painted, own, color, main });
    }
  }
  return out;
}
"""


def _check_same_lines(nb: NotebookPage, drawn_by: str) -> None:
    roots = nb.page.locator(".jp-Cell .lossviz")
    poll(lambda: roots.count() == 2 and roots.nth(1).locator("canvas.lossviz-lines").count() == 3, 60,
         "the canvas plot never drew its three panels")
    last: list[Any] = []

    panels = roots.nth(1).locator(".lossviz-panel")

    def same() -> bool:
        """Both plots have drawn their last frame (the width reports re-send the lines) and agree."""
        for i in range(panels.count()):  # a canvas panel out of view draws once it is seen again
            panels.nth(i).scroll_into_view_if_needed()
            nb.page.wait_for_timeout(100)
        last[:] = nb.page.evaluate(COMPARE_JS, [roots.nth(0).element_handle(), roots.nth(1).element_handle()])
        return len(last) == 3 and all(
            p["canvases"] == 1 and p["canvasPaths"] == 0 and p["lines"]  # no SVG data line on the canvas plot
            and p["drawnBy"] == drawn_by  # in the drawing worker, or on the page's main thread (switched off)
            and all(line["vertices"] > 1 and line["painted"] == line["vertices"]  # every SVG vertex painted
                    and (not line["main"] or line["own"] >= 0.5 * line["vertices"])  # in its colour unless crossed
                    for line in p["lines"])
            for p in last)

    poll(same, 20, lambda: f"the canvas does not draw what the SVG renderer draws: {last}", interval=0.5)


def _check_hover_and_snapshot(nb: NotebookPage, name: str) -> None:
    root = nb.page.locator(".jp-Cell .lossviz").nth(1)
    box = root.locator(".lossviz-panel").first.bounding_box()
    assert box is not None
    nb.page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    tip = nb.page.locator(".lossviz-tooltip").filter(has_text="loss")
    poll(lambda: tip.count() > 0 and tip.first.is_visible(), 10, "no hover readout over the canvas plot")
    assert "step" in tip.first.inner_text()
    nb.page.mouse.move(1, 999)
    with nb.page.expect_download() as download:
        root.locator(".lossviz-snapshot button").first.click()
    path = nb.artifacts / f"{name}-snapshot.png"
    download.value.save_as(path)
    from PIL import Image

    img = np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)
    blue = np.array([0x1F, 0x77, 0xB4])  # the loss line's colour (first metric logged)
    assert (np.abs(img - blue).max(axis=2) < 40).sum() > 1000, "the snapshot lost the canvas' lines"  # swatches: ~150


def _screenshots(nb: NotebookPage, name: str) -> float:
    """Save both plots' panels; return the share of pixels that differ by more than 60 on a channel from
    every pixel within 1 CSS px in the other plot (devicePixelRatio screenshot pixels)."""
    from PIL import Image

    shots = []
    for i, kind in enumerate(("svg", "canvas")):
        panels = nb.page.locator(".jp-Cell .lossviz").nth(i).locator(".lossviz-panels")
        path = nb.screenshot(f"{name}-{kind}", panels)
        shots.append(np.asarray(Image.open(path).convert("RGB"), dtype=np.int16))
    r = round(nb.page.evaluate("() => window.devicePixelRatio"))
    h = min(s.shape[0] for s in shots) - 2 * r
    w = min(s.shape[1] for s in shots) - 2 * r
    a = shots[0][r : h + r, r : w + r]
    # the two plots sit at different sub-pixel offsets: a pixel differs when none within 1 px of it matches
    close = [np.abs(a - shots[1][dy : dy + h, dx : dx + w]).max(axis=2) <= 60
             for dy in range(2 * r + 1) for dx in range(2 * r + 1)]
    return float((~np.logical_or.reduce(close)).mean())


WIDTH_CELL = 'print("WIDTH", svg.plot_width, canvas.plot_width)'


def _check_width_reported(nb: NotebookPage) -> None:
    """Each view measures its panels and tells the idle kernel: ``plot_width`` is the widest plot area,
    rounded up to 32 px (the kernel then sends at most 2 points per pixel column)."""
    area = nb.page.locator(".jp-Cell .lossviz").nth(0).locator(".lossviz-panel rect.plotarea_events")
    widest = max(area.nth(i).bounding_box()["width"] for i in range(area.count()))  # type: ignore[index]

    def reported() -> list[int] | None:
        nb.cell(1).locator(".jp-InputArea-prompt").click()
        nb.page.keyboard.press("Control+Enter")  # run this cell again
        nb.page.wait_for_timeout(500)
        words = nb.output_text(1).split()
        got = [int(w) for w in words[words.index("WIDTH") + 1 :]] if "WIDTH" in words else []
        return got if len(got) == 2 and all(got) else None

    widths = poll(reported, 30, "the views never reported their plot width to the kernel", interval=0.5)
    for w in widths:
        assert w % 32 == 0 and widest <= w < widest + 32, (widths, widest)


def _check_all(nb: NotebookPage, name: str, drawn_by: str = "worker") -> None:
    errors: list[str] = []
    nb.page.on("pageerror", lambda e: errors.append(str(e)))
    nb.run_all_cells()
    nb.wait_cell_done(0, timeout=120)
    _check_width_reported(nb)  # first: the lines are sent again for the new width
    _check_same_lines(nb, drawn_by)
    differ = _screenshots(nb, name)
    assert differ < 0.01, f"{differ:.2%} of the panels' pixels differ between the SVG and the canvas plot"
    _check_hover_and_snapshot(nb, name)
    assert not errors, errors
    assert not nb.error_outputs(), nb.error_outputs()


def _run_code(nb: NotebookPage, index: int, code: str) -> None:
    """Replace cell ``index``'s code with ``code`` and run it (the kernel is idle)."""
    nb.cell(index).locator(".cm-content").click()
    nb.page.keyboard.press("Control+A")
    nb.page.keyboard.type(code)
    nb.page.keyboard.press("Control+Enter")


def _check_switching(nb: NotebookPage) -> None:
    """``renderer`` switches at any time: SVG lines back and the canvas gone, then the other way."""
    root = nb.page.locator(".jp-Cell .lossviz").nth(1)
    data_paths = "el => [...el.querySelectorAll('.lossviz-panel path.line')].filter(" \
                 "p => !p.closest('.g_legend') && (p.getAttribute('d') || '').length > 0).length"
    drawn_by_svg = nb.page.locator(".jp-Cell .lossviz").nth(0).evaluate(data_paths)  # the other plot's lines
    _run_code(nb, 1, 'canvas.renderer = "svg"')
    poll(lambda: root.locator("canvas.lossviz-lines").count() == 0 and root.evaluate(data_paths) == drawn_by_svg, 20,
         lambda: f"switched to svg: {root.locator('canvas.lossviz-lines').count()} canvases, "
                 f"{root.evaluate(data_paths)} SVG lines; cell: {nb.cell(1).inner_text()[:300]!r}")
    _run_code(nb, 1, 'canvas.renderer = "canvas"')
    panels = root.locator(".lossviz-panel")
    for i in range(panels.count()):  # a panel out of view draws once it is seen (IntersectionObserver)
        panels.nth(i).scroll_into_view_if_needed()
        nb.page.wait_for_timeout(200)
    poll(lambda: root.locator("canvas.lossviz-lines").count() == 3 and root.evaluate(data_paths) == 0, 20,
         lambda: f"switched back to canvas: {root.locator('canvas.lossviz-lines').count()} canvases, "
                 f"{root.evaluate(data_paths)} SVG lines; cell: {nb.cell(1).inner_text()[:300]!r}")


@pytest.mark.browser
@pytest.mark.timeout(300)
def test_canvas_renderer_draws_what_svg_draws_light_theme(request: pytest.FixtureRequest) -> None:
    with bh.opened_notebook(request, "canvas.ipynb", [SETUP_CELL, WIDTH_CELL]) as nb:
        _check_all(nb, "canvas-light")
        _check_switching(nb)


#: Init scripts for the pages of test_the_drawing_paths_draw_the_same_lines: (script, device pixel ratio, the path
#: that must draw). "switch": the worker switched off; "blocked": ``new Worker`` throws, as under a
#: Content-Security-Policy without blob: workers; "hidpi": the worker at devicePixelRatio 2.
PATHS = {
    "switch": ("window.lossvizCanvasWorker = false;", 1, "main"),
    "blocked": ("window.Worker = class { constructor() { throw new DOMException('blob: workers blocked', "
                "'SecurityError'); } };", 1, "main"),
    "hidpi": ("", 2, "worker"),
}


@pytest.mark.browser
@pytest.mark.timeout(300)
@pytest.mark.parametrize("case", list(PATHS))
def test_the_drawing_paths_draw_the_same_lines(request: pytest.FixtureRequest, case: str) -> None:
    """Where a page cannot run the drawing worker (no OffscreenCanvas, a Content-Security-Policy without
    blob: workers, a worker that fails), the canvas is drawn on the main thread: the same pixels, the
    same hover readout and snapshot; and the worker at a devicePixelRatio of 2 (canvas bitmap twice
    the CSS size, set in the worker)."""
    bh.require_chromium()
    script, ratio, drawn_by = PATHS[case]
    browser: Any = request.getfixturevalue("chromium_browser")
    server: Any = request.getfixturevalue("jupyterlab_server")
    context = browser.new_context(viewport=bh.VIEWPORT, device_scale_factor=ratio)
    context.set_default_timeout(30_000)
    if script:
        context.add_init_script(script)
    nb = NotebookPage(context.new_page(), server)
    name = f"canvas-paths-{case}"
    try:
        bh.write_notebook(server.root_dir / f"{name}.ipynb", [SETUP_CELL, WIDTH_CELL])
        nb.open(f"{name}.ipynb", workspace=f"lossviz-{name}")
        _check_all(nb, name, drawn_by=drawn_by)
        assert nb.page.evaluate("() => window.devicePixelRatio") == ratio
    finally:
        nb.shut_down_kernels(f"{name}.ipynb")
        context.close()


#: Fault injection: a message the drawing worker cannot handle (a canvas that is not one), as a worker that
#: breaks after it started would (the page's drawing state is on ``globalThis``, see js/hover.js).
BREAK_WORKER_JS = """() => { for (const d of window.__lossvizDrawing.values())
  if (d.worker && d.worker.postMessage) d.worker.postMessage({ op: "canvas", id: -1, canvas: null }); }"""


@pytest.mark.browser
@pytest.mark.timeout(300)
def test_a_worker_that_fails_later_hands_the_drawing_back_to_the_page(request: pytest.FixtureRequest) -> None:
    """The worker draws, then fails: every canvas it drew is replaced by one drawn on the main thread,
    the same lines, and the snapshot still has them."""
    with bh.opened_notebook(request, "canvas_lost.ipynb", [SETUP_CELL, WIDTH_CELL]) as nb:
        nb.run_all_cells()
        nb.wait_cell_done(0, timeout=120)
        _check_width_reported(nb)  # as _check_all: the lines are sent again for the new width first
        _check_same_lines(nb, "worker")
        nb.page.evaluate(BREAK_WORKER_JS)
        _check_same_lines(nb, "main")
        _check_hover_and_snapshot(nb, "canvas-lost")


@pytest.mark.browser
@pytest.mark.timeout(300)
@pytest.mark.parametrize(("app", "dark"), [("jupyterlab", True), ("notebook", False), ("notebook", True)],
                         ids=["jupyterlab-dark", "notebook7-light", "notebook7-dark"])
def test_canvas_renderer_draws_what_svg_draws(request: pytest.FixtureRequest, app: str, dark: bool) -> None:
    bh.require_chromium()
    browser: Any = request.getfixturevalue("chromium_browser")
    settings = {**bh.LAB_SETTINGS, bh.DARK_THEME[0]: bh.DARK_THEME[1]} if dark else bh.LAB_SETTINGS
    name = f"canvas-{'notebook7-' if app == 'notebook' else ''}{'dark' if dark else 'light'}"
    with bh.running_jupyterlab(app=app, lab_settings=settings) as server:
        nb = bh.own_server_page(browser, server)
        try:
            bh.write_notebook(server.root_dir / f"{name}.ipynb", [SETUP_CELL, WIDTH_CELL])
            if app == "notebook":
                bh.open_in_notebook7(nb, f"{name}.ipynb")
            else:
                nb.open(f"{name}.ipynb")
            assert nb.page.evaluate("() => document.body.dataset.jpThemeLight") == ("false" if dark else "true")
            _check_all(nb, name)
        finally:
            nb.page.context.close()
