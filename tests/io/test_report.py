"""The HTML report (``lossviz_widget._io.report``), opened in headless Chromium with the network off.

Every request other than the page itself is aborted and recorded (there must be
none), the page's Content-Security-Policy is bypassed (so the escaping alone must
keep hostile metric names inert), and what a reader sees and gets is checked: the
inline SVG chart with its curves, the latest/best table, the settings, the
embedded JSON (parsed by the page, equal to the logged data, NaN/Inf included)
and the CSV download. A screenshot goes to ``test-artifacts/report/``.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from export_data import METRICS, N_STEPS, make_run_plot, small_plot
from PIL import Image

from lossviz_widget._io.data_files import CSV_HEADER, floats_from_json
from lossviz_widget._io.report import (
    DATA_ELEMENT_ID,
    DRAWN_ELEMENT_ID,
    render_report,
)

pytestmark = pytest.mark.browser  # needs /usr/bin/chromium (no JupyterLab)

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "report"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
]
TITLE = 'resnet18 <img src=x onerror=alert("title")> & co'
HOSTILE = ["<script>alert(1)</script>", "</script><script>alert(2)</script>", "<img src=x onerror=alert(3)>"]
SETTINGS = {"smoothing": 0.6, "log y": False, "ignore outliers": False, "x axis": "step", "note": "<b>x</b>"}


# -- pure Python --------------------------------------------------------------------------------


def test_empty_report_says_nothing_was_logged():
    plot = small_plot({})
    try:
        page = render_report(plot.frame(), plot.history)
    finally:
        plot.close()
    assert "No values logged yet" in page and "<svg" in page
    data = re.search(r'<script type="application/json" id="lossviz-data">(.*?)</script>', page, re.S).group(1)
    assert json.loads(data)["metrics"] == []


# -- the report in a browser --------------------------------------------------------------------


@pytest.fixture(scope="module")
def run():
    """The 50k-step run plus metrics with hostile names; closed at the end of the module."""
    plot = make_run_plot()
    for i, name in enumerate(HOSTILE):
        plot.log({name: float(i + 1)}, step=N_STEPS + i)
    yield plot
    plot.close()


@pytest.fixture(scope="module")
def report(run, tmp_path_factory):
    frame = run.frame()
    page = render_report(frame, run.history, title=TITLE, settings=SETTINGS)
    path = tmp_path_factory.mktemp("report") / "report.html"
    path.write_text(page, encoding="utf-8")
    return {"path": path, "html": page, "frame": frame, "data": {k: run.history[k] for k in run.history}}


@pytest.fixture(scope="module")
def browser(request):
    """Headless Chromium, launched once for this module.

    When the suite registers the session's shared browser (``chromium_browser`` in
    tests/conftest.py, same executable and arguments) it is used instead: a second
    Playwright sync instance cannot start while that one runs.
    """
    try:
        shared = request.getfixturevalue("chromium_browser")
    except pytest.FixtureLookupError:
        shared = None
    if shared is not None:
        yield shared
        return
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium)", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def open_offline(browser, url: str, **context_options):
    """A page on ``url`` with the network off: every other request is aborted and recorded."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True, **context_options)
    context.set_offline(True)
    page = context.new_page()
    seen = {"requests": [], "dialogs": [], "errors": []}

    def route(r, request):
        if request.url == url:
            r.continue_()
        else:
            seen["requests"].append(request.url)
            r.abort()

    page.route("**/*", route)
    page.on("dialog", lambda d: (seen["dialogs"].append(d.message), d.dismiss()))
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))
    page.goto(url)
    return context, page, seen


@pytest.fixture(scope="module")
def loaded(browser, report):
    """The report as a reader opens it, without its CSP safety net (escaping must suffice)."""
    context, page, seen = open_offline(browser, report["path"].as_uri(), bypass_csp=True)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
    yield page, seen
    context.close()


def test_opens_offline_without_any_request(loaded, report):
    page, seen = loaded
    page.wait_for_load_state("load")
    assert seen["requests"] == []
    assert seen["errors"] == []
    html = report["html"]
    assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", html, re.I)  # no URL of any kind
    assert page.evaluate("document.querySelectorAll('[src], link, iframe, object, embed, image, img').length") == 0
    assert "Content-Security-Policy" in html and "default-src 'none'" in html


def test_svg_chart_shows_the_curves(loaded, report):
    page, _ = loaded
    frame = report["frame"]
    chart = page.locator("#lossviz-curves svg.lossviz-chart")
    assert chart.count() == 1 and chart.is_visible()
    box = chart.bounding_box()
    assert box["width"] > 900 and box["height"] > 500
    texts = page.evaluate("Array.from(document.querySelectorAll('svg.lossviz-chart text'), t => t.textContent)")
    assert set(METRICS + HOSTILE) <= set(texts)  # text, not paths: searchable
    # Each metric's main line is a path in its colour across its panel (all of them span the run).
    strokes = page.evaluate("""() => Array.from(document.querySelectorAll('svg.lossviz-chart path'), p =>
        [(p.getAttribute('style') || '').match(/stroke: (#[0-9a-f]{6})/)?.[1] || '', p.getBBox().width])""")
    widest: dict[str, float] = {}
    for colour, width in strokes:
        widest[colour] = max(widest.get(colour, 0.0), width)
    view_width = float(page.get_attribute("svg.lossviz-chart", "viewBox").split()[2])
    for sf in (s for pf in frame.panels for s in pf.series if s.name in METRICS):
        assert widest.get(sf.color, 0.0) > 0.35 * view_width, (sf.name, sf.color, widest)
    # And the browser paints them.
    px = np.asarray(Image.open(io.BytesIO(chart.screenshot())).convert("RGB")).astype(np.int32)
    for sf in (s for pf in frame.panels for s in pf.series if s.name in METRICS):
        rgb = np.array([int(sf.color[i : i + 2], 16) for i in (1, 3, 5)])
        assert (np.abs(px - rgb) <= 8).all(axis=-1).sum() > 50, f"{sf.name} ({sf.color}) not painted"


def test_table_lists_every_metric(loaded, report):
    page, _ = loaded
    rows = page.evaluate("""Array.from(document.querySelectorAll('#lossviz-readout tr[data-metric]'),
        r => [r.getAttribute('data-metric'), Number(r.getAttribute('data-count')), r.cells[1].textContent])""")
    data = report["data"]
    assert [r[0] for r in rows] == list(data) == METRICS + HOSTILE
    assert all(count == len(data[name]) and text == name for name, count, text in rows)
    settings = page.evaluate("""Array.from(document.querySelectorAll('#lossviz-settings tr'),
        r => [r.cells[0].textContent, r.cells[1].textContent])""")
    assert settings == [[k, str(v)] for k, v in SETTINGS.items()]


def test_embedded_json_equals_the_data(loaded, report):
    page, _ = loaded
    doc = page.evaluate(f"JSON.parse(document.getElementById('{DATA_ELEMENT_ID}').textContent)")
    data = report["data"]
    assert [m["name"] for m in doc["metrics"]] == list(data)
    assert doc["title"] == TITLE and doc["settings"]["note"] == "<b>x</b>"
    for m in doc["metrics"]:
        hist = data[m["name"]]
        for key, column in (("steps", hist.steps), ("values", hist.values), ("wall_time", hist.wall_time)):
            assert np.array_equal(floats_from_json(m[key]), column, equal_nan=True), (m["name"], key)
    loss = next(m for m in doc["metrics"] if m["name"] == "loss")["values"]
    assert {"NaN", "Infinity", "-Infinity"} <= {v for v in loss if isinstance(v, str)}
    # Strict JSON for Python too (no bare NaN), and no "<" that could close the block.
    block = re.search(r'id="lossviz-data">(.*?)</script>', report["html"], re.S).group(1)
    assert "<" not in block
    json.loads(block, parse_constant=lambda c: pytest.fail(f"bare {c} in JSON"))


def test_csv_download_has_every_point(loaded, report):
    page, seen = loaded
    with page.expect_download() as info:
        page.click("#lossviz-csv")
    download = info.value
    assert download.failure() is None and download.suggested_filename.endswith(".csv")
    rows = list(csv.reader(io.StringIO(Path(download.path()).read_text(encoding="utf-8"))))
    data = report["data"]
    assert rows[0] == CSV_HEADER  # the same file as export("run.csv")
    assert len(rows) - 1 == sum(len(h) for h in data.values())
    loss = [r for r in rows[1:] if r[1] == "loss"]
    values = np.array([float(r[3]) for r in loss])
    assert np.array_equal(values, data["loss"].values, equal_nan=True)  # repr(float): exact
    assert [r[1] for r in rows[-3:]] == HOSTILE
    assert seen["requests"] == []


def test_hostile_names_stay_text(loaded, report):
    page, seen = loaded
    assert seen["dialogs"] == []
    assert page.title() == TITLE
    assert page.inner_text("h1") == TITLE
    # The two JSON blocks and the hover module are the only scripts; nothing injected.
    assert page.evaluate("Array.from(document.scripts, s => s.id + ':' + s.type)") == [
        f"{DATA_ELEMENT_ID}:application/json", f"{DRAWN_ELEMENT_ID}:application/json", ":module"
    ]
    assert page.evaluate("document.querySelectorAll('img, [onerror], [onload], [onclick]').length") == 0
    cells = page.evaluate("Array.from(document.querySelectorAll('#lossviz-readout td'), td => td.textContent)")
    assert set(HOSTILE) <= set(cells)
    for name in HOSTILE:
        assert page.get_by_text(name, exact=True).first.is_visible()


def test_content_visible_without_javascript(browser, report):
    """No script is needed to read the report (and its own CSP stays on here)."""
    context, page, seen = open_offline(browser, report["path"].as_uri(), java_script_enabled=False)
    try:
        assert page.locator("svg.lossviz-chart").is_visible()
        assert page.locator("#lossviz-readout tr[data-metric]").count() == len(METRICS + HOSTILE)
        assert page.locator("#lossviz-csv").get_attribute("href").startswith("data:text/csv;")
        assert seen["requests"] == [] and seen["dialogs"] == []
    finally:
        context.close()


def test_hover_readout_over_the_chart_with_the_csp_on(browser, report):
    """The page's own CSP lets exactly its hover script run: hovering the first panel shows, per
    series, the step and value of the nearest drawn point, exactly as in the frame, and a
    crosshair in every panel."""
    context, page, seen = open_offline(browser, report["path"].as_uri())
    try:
        frame = report["frame"]
        drawn = page.evaluate(f"JSON.parse(document.getElementById('{DRAWN_ELEMENT_ID}').textContent)")
        first = drawn["panels"][0]
        chart = page.locator("svg.lossviz-chart").bounding_box()
        x0, y0, x1, y1 = first["box"]
        fraction = 0.4
        page.mouse.move(chart["x"] + (x0 + fraction * (x1 - x0)) * chart["width"],
                        chart["y"] + (1 - (y0 + y1) / 2) * chart["height"])
        page.wait_for_selector(".lossviz-tooltip tr[data-key]", state="visible", timeout=5000)
        rows = page.evaluate("""() => Array.from(document.querySelectorAll('.lossviz-tooltip tr[data-key]'),
            tr => [tr.querySelector('.lossviz-tip-label').textContent, tr.querySelector('.lossviz-tip-x').textContent,
                   tr.querySelector('.lossviz-tip-value').textContent
                   || tr.querySelector('.lossviz-tip-raw').textContent])""")  # a line drawn raw: raw column
        pf = frame.panels[0]
        assert {r[0] for r in rows} == {sf.label or sf.name for sf in pf.series}
        x = first["xlim"][0] + fraction * (first["xlim"][1] - first["xlim"][0])
        for label, step, value in rows:
            sf = next(s for s in pf.series if (s.label or s.name) == label)
            i = int(np.argmin(np.abs(sf.x - x)))
            assert float(step.replace(",", "")) == sf.x[i]
            assert np.float32(float(value)) == np.float32(sf.y[i]), (label, value, sf.y[i])
        crosshairs = page.evaluate("() => [...document.querySelectorAll('.lossviz-crosshair')]"
                                   ".filter(c => c.style.display === 'block').length")
        assert crosshairs == len(drawn["panels"])
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "report-hover.png"))
        assert seen["errors"] == [] and seen["requests"] == []
    finally:
        context.close()
