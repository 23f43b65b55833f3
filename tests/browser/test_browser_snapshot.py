"""End to end: the snapshot button in real JupyterLab + headless Chromium.

A LossPlot with two panels (loss + val_loss, accuracy; smoothing on, so faint raw
lines are drawn too) is shown twice (two views of the same widgets), with its
snapshot button in the control bar. The test clicks the button, catches the
download and decodes it with Pillow: the PNG has the widget's on-screen size, each
panel's line colours sit inside that panel, axis text is dark on white, and the panels
match a Playwright screenshot of the same region. A later cell checks the kernel holds
the same bytes. Then ``request()`` from Python: both views answer, the kernel keeps the
first reply (the other counts as a duplicate), at 2x scale.

Artifacts (``test-artifacts/browser/``): ``snapshot-download.png`` (what the button
saved), ``snapshot-request-2x.png`` (what ``request()`` got), ``snapshot-widget.png``
(Playwright's screenshot of the widget, for comparison), ``snapshot-page.png``.
"""

from __future__ import annotations

import hashlib
import io
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from lossviz_widget._core.frame import PALETTE

if TYPE_CHECKING:
    from PIL.Image import Image

# The fixtures (notebook_page, ...) come from conftest.py: one server and one Chromium per session.
from browser_harness import VIEWPORT, NotebookPage, poll, require_chromium, write_notebook

LOSS, VAL_LOSS, ACC = PALETTE[0], PALETTE[1], PALETTE[2]  # colours in order of first log
NOTEBOOK = "snapshot.ipynb"
WORKSPACE = "lossviz-snapshot-test"

SETUP_CELL = """\
import hashlib, math, random
from lossviz_widget import LossPlot

plot = LossPlot(title="snapshot test", smoothing=0.6)
rng = random.Random(0)
for i in range(300):
    plot.log(loss=math.exp(-i / 100) + 0.15 * rng.random(), val_loss=math.exp(-i / 120) + 0.2,
             acc=0.95 - 0.9 * math.exp(-i / 80) - 0.08 * rng.random(), step=i)
plot.flush()
btn = plot.children[1].children[-1]  # the control bar's last widget: the snapshot button
replies = []  # every snapshot reply that reaches the kernel, from any view
btn.on_msg(lambda _w, msg, _b: replies.append(msg.get("request_id")) if isinstance(msg, dict) else None)
plot"""

SECOND_VIEW_CELL = "from IPython.display import display\ndisplay(plot)"

CHECK_CLICK_CELL = """\
s = plot.last_snapshot
print("SNAP", len(s), s[:8].hex(), hashlib.sha256(s).hexdigest(), btn.last_error)"""

REQUEST_CELL = """\
btn.scale = 2
rid = plot.request_snapshot(timeout=5)
print("REQUESTED", rid)"""

CHECK_REQUEST_CELL = """\
import struct
s = btn.last_snapshot
open({path!r}, "wb").write(s)
print("REQ", len(s), s[:8].hex(), *struct.unpack(">II", s[16:24]), btn.last_error, replies.count(rid))"""


def _rgb(hex_color: str) -> tuple[int, int, int]:
    return tuple(int(hex_color[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


def _count_near(img: Image, box: tuple[float, float, float, float], color: tuple[int, int, int], tol: int = 30) -> int:
    """Pixels in ``box`` (left, top, right, bottom) within ``tol`` of ``color`` on every channel."""
    region = np.asarray(img.crop(tuple(round(v) for v in box)).convert("RGB"), dtype=np.int16)
    return int(np.all(np.abs(region - np.array(color, dtype=np.int16)) <= tol, axis=-1).sum())


def _faint(color: tuple[int, int, int], alpha: float = 0.25) -> tuple[int, int, int]:
    """``color`` at ``alpha`` over white: the raw lines behind the smoothed ones."""
    return tuple(round(alpha * c + (1 - alpha) * 255) for c in color)  # type: ignore[return-value]


def _run_cell(nb: NotebookPage, index: int) -> None:
    """Select cell ``index`` (command mode) and run it in place (Ctrl+Enter)."""
    nb.cell(index).locator(".jp-InputArea-prompt").click()
    nb.page.keyboard.press("Control+Enter")
    nb.page.mouse.move(1, VIEWPORT["height"] - 1)  # no hover toolbar over a figure


def _geometry(nb: NotebookPage) -> dict:
    """On-screen boxes of the first view, relative to its `.lossviz` root (CSS px)."""
    return nb.cell(0).locator(".lossviz").first.evaluate(
        """root => {
          const o = root.getBoundingClientRect();
          const rel = (e) => { const r = e.getBoundingClientRect();
                               return [r.left - o.left, r.top - o.top, r.right - o.left, r.bottom - o.top]; };
          return {
            width: o.width, height: o.height, dpr: window.devicePixelRatio,
            panels: Array.from(root.querySelectorAll('.lossviz-panel')).map(p => ({
              title: p.querySelector('text.mainheading').textContent.trim(),
              box: rel(p),
              plotarea: rel(p.querySelector('svg.svg-background rect.plotarea_background')),
            })),
            controls: rel(root.querySelector('.lossviz-controls')),
            readout: rel(root.querySelector('.lossviz-readout')),
          };
        }"""
    )


def _mean_abs_diff(a: Image, b: Image, box: tuple[float, float, float, float]) -> float:
    from PIL import ImageChops, ImageStat

    box_i = tuple(round(v) for v in box)
    diff = ImageChops.difference(a.crop(box_i).convert("RGB"), b.crop(box_i).convert("RGB"))
    return sum(ImageStat.Stat(diff).mean) / 3


@pytest.mark.browser
@pytest.mark.timeout(120)
def test_snapshot_button_and_request(request: pytest.FixtureRequest) -> None:
    require_chromium()
    nb: NotebookPage = request.getfixturevalue("notebook_page")
    out = nb.artifacts
    request_png = out / "snapshot-request-2x.png"
    request_png.unlink(missing_ok=True)
    write_notebook(
        nb.server.root_dir / NOTEBOOK,
        [SETUP_CELL, SECOND_VIEW_CELL, CHECK_CLICK_CELL, REQUEST_CELL,
         CHECK_REQUEST_CELL.format(path=str(request_png))],
    )
    t0 = time.monotonic()
    nb.open(NOTEBOOK, workspace=WORKSPACE)
    try:
        _check_snapshots(nb, request_png)
    finally:
        nb.shut_down_kernels(NOTEBOOK)
    assert time.monotonic() - t0 < 60, f"took {time.monotonic() - t0:.0f} s"


def _check_snapshots(nb: NotebookPage, request_png: Path) -> None:
    from PIL import Image as PILImage

    out = nb.artifacts
    _run_cell(nb, 0)
    nb.wait_cell_done(0)
    _run_cell(nb, 1)
    nb.wait_cell_done(1)
    views = nb.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .lossviz")
    poll(lambda: views.count() == 2 and nb.page.locator(".lossviz .lossviz-panel text.mainheading").count() == 4,
         30, "two views with two panels each never rendered")
    widget = views.first
    button = widget.locator(".lossviz-snapshot button")
    assert button.inner_text().strip() == "\u2913 snapshot"
    assert "jupyter-button" in (button.get_attribute("class") or "")
    # Every line drawn (300 points) before capturing.
    poll(lambda: widget.locator(".lossviz-readout tr[data-metric]").count() == 3, 15, "readout incomplete")
    geo = _geometry(nb)
    assert [p["title"] for p in geo["panels"]] == ["loss", "accuracy"], geo
    widget.scroll_into_view_if_needed()
    nb.screenshot("snapshot-page")
    shot_path = nb.screenshot("snapshot-widget", widget)

    # -- click: a download, and the same bytes in the kernel ----------------------------------
    with nb.page.expect_download(timeout=15_000) as dl_info:
        button.click()
    download = dl_info.value
    assert download.suggested_filename == "lossviz-snapshot.png"
    png_path = out / "snapshot-download.png"
    download.save_as(png_path)
    data = png_path.read_bytes()
    nb.page.mouse.move(1, VIEWPORT["height"] - 1)
    state = widget.locator(".lossviz-snapshot")
    assert state.get_attribute("data-state") == "done", button.get_attribute("title")
    assert "last: " in (button.get_attribute("title") or "")

    img = PILImage.open(io.BytesIO(data))
    img.load()
    img = img.convert("RGB")
    k = geo["dpr"]  # scale 1
    assert abs(img.width - geo["width"] * k) <= 1 and abs(img.height - geo["height"] * k) <= 1, (img.size, geo)
    assert img.getpixel((img.width - 1, img.height - 1)) == (255, 255, 255)  # white background
    gray = img.convert("L")
    hist = gray.histogram()
    dark = sum(hist[:60]) / (img.width * img.height)
    assert 0.001 < dark < 0.05, f"dark pixel fraction {dark:.4f}: blank, or black backgrounds"
    assert len(img.getcolors(1 << 20) or []) > 100, "too few colours: the snapshot looks blank"

    def scaled(box: list[float]) -> tuple[float, float, float, float]:
        return tuple(v * k for v in box)  # type: ignore[return-value]

    loss_panel, acc_panel = geo["panels"]
    for panel, present, absent in ((loss_panel, (LOSS, VAL_LOSS), (ACC,)), (acc_panel, (ACC,), (LOSS, VAL_LOSS))):
        box = scaled(panel["plotarea"])
        for color in present:
            n = _count_near(img, box, _rgb(color))
            assert n > 150, f"{panel['title']}: only {n} pixels of {color}"
        for color in absent:
            n = _count_near(img, box, _rgb(color), tol=20)
            assert n < 30, f"{panel['title']}: {n} pixels of {color}, which belongs to the other panel"
    # The faint raw lines (opacity 0.25) behind the smoothed ones.
    for panel, color in ((loss_panel, LOSS), (acc_panel, ACC)):
        n = _count_near(img, scaled(panel["plotarea"]), _faint(_rgb(color)), tol=12)
        assert n > 50, f"{panel['title']}: faint raw line of {color} missing ({n} px)"
    # Axis tick labels: dark text left of and below each plot area.
    for panel in geo["panels"]:
        left, top, right, bottom = panel["plotarea"]
        y_labels = (panel["box"][0], top, left - 4, bottom)
        x_labels = (left, bottom + 4, right, panel["box"][3])
        for name, box in (("y tick labels", y_labels), ("x tick labels and label", x_labels)):
            region = gray.crop(tuple(round(v) for v in scaled(box)))
            n_dark = sum(region.histogram()[:140])
            assert n_dark > 40, f"{panel['title']}: {name} missing or not dark ({n_dark} px)"
    # Same pixels as the browser's own screenshot where both draw the same thing: the panels
    # and the readout (the control bar differs: the button leaves itself out of the picture).
    screen = PILImage.open(shot_path).convert("RGB")
    assert abs(screen.width - img.width) <= 1 and abs(screen.height - img.height) <= 1
    for name, box in [(p["title"], p["box"]) for p in geo["panels"]] + [("readout", geo["readout"])]:
        diff = _mean_abs_diff(img, screen, scaled(box))
        assert diff < 2.0, f"{name}: snapshot differs from the screenshot (mean abs diff {diff:.2f})"

    _run_cell(nb, 2)
    text = nb.wait_output_text(2, "SNAP", timeout=20)
    m = re.search(r"SNAP (\d+) (\w+) (\w+) (\S+)", text)
    assert m, text
    assert int(m[1]) == len(data) and m[2] == "89504e470d0a1a0a", text
    assert m[3] == hashlib.sha256(data).hexdigest(), "kernel bytes differ from the downloaded file"
    assert m[4] == "None", text

    # -- request() from Python: both views answer, the first reply wins -----------------------
    _run_cell(nb, 3)
    rid = re.search(r"REQUESTED (\w+)", nb.wait_output_text(3, "REQUESTED", timeout=20))[1]
    nb.wait_cell_done(3)
    poll(lambda: [v.locator(".lossviz-snapshot").get_attribute("data-last-request-id")
                  for v in views.all()] == [rid, rid],
         15, "both views did not answer the request")
    _run_cell(nb, 4)
    text = nb.wait_output_text(4, "REQ", timeout=20)
    m = re.search(r"REQ (\d+) (\w+) (\d+) (\d+) (\S+) (\d+)", text)
    assert m, text
    assert m[2] == "89504e470d0a1a0a" and m[5] == "None", text
    w2, h2 = int(m[3]), int(m[4])
    assert abs(w2 - 2 * geo["width"] * k) <= 2 and abs(h2 - 2 * geo["height"] * k) <= 2, (w2, h2, geo)
    # both views' replies reached the kernel; the first was kept (m[2..5]), the other dropped as a duplicate
    assert m[6] == "2", f"expected one reply from each of the two views, got {m[6]}"
    big = PILImage.open(request_png)
    assert big.size == (w2, h2)
    assert not nb.error_outputs(), nb.error_outputs()
