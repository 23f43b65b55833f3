"""A self-contained HTML report of a run: one file that opens offline, anywhere.

:func:`render_report` returns one HTML page with, in order: the title, the
curves as inline SVG (text stays text, so the page is searchable), the
latest/best table (the live widget's own :func:`~lossviz_widget._io.tables.readout_html`),
the view settings, and the full-resolution data of every metric, both as an
embedded JSON block (``<script type="application/json" id="lossviz-data">``)
and as a "Download CSV" link made from a ``data:`` URI.

Why it is built this way:

* **Offline and inert.** No CDN, no external URL: everything is visible with scripts
  disabled, and a Content-Security-Policy ``<meta>`` forbids network fetches and every
  script but one, pinned by its sha256: the hover readout and crosshair over the chart
  (``js/hover.js``, the live widget's own readout code, then ``js/report_hover.js``), which
  reads the lines exactly as drawn from a second JSON block (``#lossviz-drawn``).
* **Escaped.** Every user string (title, metric names, settings) goes through
  :func:`html.escape`; the JSON block escapes ``<``, ``>`` and ``&`` as
  ``\\u003c``/``\\u003e``/``\\u0026`` (so ``</script>`` or ``<!--`` in a metric
  name cannot end the block); the SVG writer escapes its text.
* **Exact data.** JSON numbers and CSV values use ``repr(float)``, which
  round-trips exactly. JSON has no NaN/Infinity, so :func:`json_safe_floats`
  writes them as the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``
  (:func:`floats_from_json` reverses it).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from collections.abc import Mapping, Sequence

import numpy as np

from .._core.formatting import format_number
from .._core.frame import Frame
from .._model import MetricHistory, RunData, as_runs
from ..diagnostics import Finding, findings_html
from .assets import js_file
from .data_files import CSV_HEADER, csv_bytes, json_safe_floats
from .images import image_bytes, render_figure
from .tables import readout_html, run_label_html

__all__ = ["DATA_ELEMENT_ID", "DRAWN_ELEMENT_ID", "render_report"]

#: ``id`` of the embedded JSON data block.
DATA_ELEMENT_ID = "lossviz-data"
#: ``id`` of the JSON block of the lines as the chart draws them (read by the hover readout).
DRAWN_ELEMENT_ID = "lossviz-drawn"
# Fetches are forbidden; only inline styles (and data: images) and the one hover script are allowed.
_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; "
        "script-src '{script_hash}'")


def _hover_script() -> str:
    """The report's one script: the live widget's readout module followed by the report's glue."""
    text = js_file("hover.js").read_text(encoding="utf-8") + "\n" + js_file("report_hover.js").read_text(
        encoding="utf-8")
    if "</script" in text.lower() or "<!--" in text:  # would end the inline <script> early
        raise RuntimeError("js/hover.js or js/report_hover.js contains '</script' or '<!--'")
    return text


def _drawn_panels(frame: Frame) -> dict[str, object]:
    """Each panel's plot area (fractions of the chart, y up) and x limits, from the same matplotlib
    layout as the chart, and its lines exactly as drawn (the hover readout's input)."""
    fig = render_figure(frame)
    panels = []
    for ax, pf in zip(fig.axes, frame.panels, strict=False):
        box = ax.get_position()
        panels.append({
            "family": pf.family, "box": [box.x0, box.y0, box.x1, box.y1], "xlim": [float(v) for v in ax.get_xlim()],
            "series": [{"key": str(sf.key), "label": sf.label or sf.name, "color": sf.color, "dash": sf.dash,
                        "bucketed": sf.in_view > len(sf.x), "float32": sf.y.dtype == np.float32,
                        "x": json_safe_floats(sf.x), "y": json_safe_floats(sf.y),
                        "raw_x": None if sf.raw_x is None else json_safe_floats(sf.raw_x),
                        "raw_y": None if sf.raw_y is None else json_safe_floats(sf.raw_y)}
                       for sf in pf.series],
        })
    return {"x_label": frame.x_label, "panels": panels}


_STYLE = """
:root { color-scheme: light; }
body { margin: 0; background: #fff; color: #222;
       font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", Arial, sans-serif; }
main { max-width: 1100px; margin: 0 auto; padding: 24px 28px 40px; }
h1 { font-size: 22px; margin: 0 0 2px; overflow-wrap: anywhere; }
h2 { font-size: 15px; margin: 28px 0 10px; padding-bottom: 4px; border-bottom: 1px solid #e5e5e5; color: #333; }
.lossviz-summary { margin: 0 0 14px; color: #666; }
figure { margin: 0; }
svg.lossviz-chart { display: block; width: 100%; height: auto; }
table { border-collapse: collapse; }
th, td { padding: 4px 14px 4px 0; border-bottom: 1px solid #eee; text-align: left; vertical-align: top; }
th { font-weight: 600; color: #444; }
.lossviz-readout table { font-size: 13px !important; }
.lossviz-readout td:nth-child(n+3), .lossviz-readout th:nth-child(n+3) { text-align: right; }
.lossviz-readout td:nth-child(2) { overflow-wrap: anywhere; }
.lossviz-settings th { font-weight: normal; color: #666; }
a.lossviz-download { display: inline-block; padding: 5px 12px; border: 1px solid #1f77b4; border-radius: 4px;
                     color: #1f77b4; text-decoration: none; font-weight: 600; }
a.lossviz-download:hover { background: #1f77b4; color: #fff; }
code { font-size: 12px; background: #f5f5f5; padding: 1px 4px; border-radius: 3px; }
.lossviz-note { color: #666; font-size: 13px; }
footer { margin-top: 36px; color: #999; font-size: 12px; }
@media print { a.lossviz-download { display: none; } main { max-width: none; padding: 0; } }
"""


def _jsonable(value: object) -> object:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return json_safe_floats([value])[0]
    return str(value)


def _script_json(obj: object) -> str:
    """JSON that is safe inside ``<script type="application/json">``: no ``<``, ``>`` or ``&`` at all.

    Those characters only occur inside JSON strings, where ``\\u003c`` etc. mean the
    same thing to ``JSON.parse``; without them ``</script>`` and ``<!--`` cannot
    end or confuse the block.
    """
    text = json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def _inline_svg(svg: bytes, label: str) -> str:
    """matplotlib's SVG file as an element for an HTML page.

    Drops what only a standalone file needs (XML declaration, DOCTYPE with its
    DTD URL, the RDF metadata and the namespace declarations, all external URLs
    that are never fetched, but still URLs) and lets CSS scale the chart.
    """
    text = svg.decode("utf-8")
    text = text[text.index("<svg"):]
    head_end = text.index(">") + 1
    head, body = text[:head_end], text[head_end:]
    attrs = {k: v for k, v in re.findall(r'\s(width|height|viewBox)="([^"]*)"', head)}
    body = re.sub(r"\s*<metadata>.*?</metadata>", "", body, count=1, flags=re.S)
    size = "".join(f' {k}="{html.escape(v, quote=True)}"' for k, v in attrs.items())
    return f'<svg class="lossviz-chart"{size} role="img" aria-label="{html.escape(label, quote=True)}">{body}'


def _download_name(title: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", title).strip("._-")[:80]
    return f"{slug or 'lossviz'}.csv"


def _size_text(n: int) -> str:
    for unit, scale in (("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def _findings_section(findings: Sequence[Finding]) -> str:
    if not findings:
        return ""
    return (f'<section id="lossviz-diagnostics" class="lossviz-diagnostics">\n<h2>Diagnostics</h2>\n'
            f"{findings_html(findings)}\n</section>\n")


def render_report(
    frame: Frame,
    data: Mapping[str, Mapping[str, MetricHistory]] | Mapping[str, MetricHistory],
    *,
    title: str = "",
    settings: Mapping[str, object] | None = None,
    findings: Sequence[Finding] = (),
) -> str:
    """A standalone HTML page of a run: curves, latest/best table, settings and all the data.

    ``frame`` is what to draw (e.g. ``plot.frame()``), ``data`` the
    full-resolution history to embed: ``run -> metric -> history``, or one run's
    ``metric -> history`` (e.g. ``plot.history``); ``settings`` the
    view settings to list (e.g. smoothing, log y). The page needs no network, and no
    JavaScript to be read (one script, pinned in the CSP, adds the hover readout over the
    chart on a step or relative-time axis): the chart is inline SVG, the data an embedded JSON block
    (``#lossviz-data``: ``{"metrics": [{"run", "name", "steps", "values", "wall_time"}], ...}``
    with NaN/±Inf as strings, see :func:`json_safe_floats`) plus a CSV ``data:``
    link. ``findings`` (diagnostics) are listed under the table. Every user string is escaped.
    Returns the page as a ``str`` (write it
    with ``encoding="utf-8"``).
    """
    esc = html.escape
    runs = as_runs(data)
    series = [(run, name, h) for run, metrics in runs.items() for name, h in metrics.items()]
    histories = [h for _, _, h in series]
    names = list(dict.fromkeys(name for _, name, _ in series))
    shown_settings = dict(settings) if settings is not None else {"x axis": frame.x_label}

    label = "Curves of " + (", ".join(names) if names else "no metric")
    if len(runs) > 1:
        label += " for runs " + ", ".join(runs)
    chart = _inline_svg(image_bytes(frame, "svg"), label)

    points = sum(len(h) for h in histories)
    nonfinite = sum(int(np.count_nonzero(~np.isfinite(h.values))) for h in histories)
    last = max((float(h.steps[-1]) for h in histories if len(h)), default=None)
    summary = [f"{len(names)} metric{'s' if len(names) != 1 else ''}", f"{points:,} points"]
    if len(runs) > 1:
        summary.insert(0, f"{len(runs)} runs")
    if last is not None:
        summary.insert(0, f"last step {format_number(last)}")
    if nonfinite:
        summary.append(f'<span style="color:#d62728">&#9660; {nonfinite:,} non-finite (NaN/Inf) values</span>')

    settings_rows = "".join(
        f"<tr><th>{esc(str(k))}</th><td>{esc(str(v))}</td></tr>" for k, v in shown_settings.items()
    )
    document = {
        "format": "lossviz-data",
        "version": 1,
        "title": title,
        "settings": {str(k): _jsonable(v) for k, v in shown_settings.items()},
        "metrics": [
            {"run": run, "name": name, "steps": json_safe_floats(h.steps), "values": json_safe_floats(h.values),
             "wall_time": json_safe_floats(h.wall_time)}
            for run, name, h in series
        ],
    }
    # The hover readout reads step x values; on a time axis the chart's x units are matplotlib's own.
    drawn = _drawn_panels(frame) if not frame.x_is_date and frame.panels else {"x_label": "", "panels": []}
    script = _hover_script()
    csp = _CSP.format(script_hash="sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode())
    csv_data = csv_bytes(RunData(runs, title))
    csv_uri = "data:text/csv;charset=utf-8;base64," + base64.b64encode(csv_data).decode("ascii")
    heading = title or "Loss curves"
    runs_section = ""
    if frame.several_runs:  # each run's colour, name and best value of the main metric
        items = "".join(f"<li>{run_label_html(row)}{' (hidden)' if row.hidden else ''}</li>" for row in frame.runs)
        runs_section = (f'<section id="lossviz-runs">\n<h2>Runs</h2>\n'
                        f'<ul style="list-style:none;padding:0">{items}</ul>\n</section>\n')

    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="lossviz_widget">
<title>{esc(heading)}</title>
<style>{_STYLE}{js_file("lossviz.css").read_text(encoding="utf-8")}</style>
</head>
<body>
<main class="lossviz-report">
<h1 class="lossviz-title">{esc(heading)}</h1>
<p class="lossviz-summary">{" &middot; ".join(summary)}</p>
<section id="lossviz-curves">
<figure>{chart}</figure>
</section>
{runs_section}<section id="lossviz-readout" class="lossviz-readout">
<h2>Latest and best</h2>
{readout_html(frame.readout)}
</section>
{_findings_section(findings)}<section id="lossviz-settings" class="lossviz-settings">
<h2>View settings</h2>
<table>{settings_rows}</table>
</section>
<section id="lossviz-data-section">
<h2>Data</h2>
<p><a class="lossviz-download" id="lossviz-csv" href="{csv_uri}" download="{esc(_download_name(title))}"
 type="text/csv">Download CSV</a>
<span class="lossviz-note">{points:,} rows, {_size_text(len(csv_data))}: columns
<code>{",".join(CSV_HEADER)}</code>, every logged point at full resolution.</span></p>
<p class="lossviz-note">The same data is embedded in this page as JSON:
<code>JSON.parse(document.getElementById("{DATA_ELEMENT_ID}").textContent)</code>
(NaN and infinities as the strings <code>"NaN"</code>, <code>"Infinity"</code>, <code>"-Infinity"</code>).</p>
</section>
<footer>Made with lossviz_widget.</footer>
</main>
<script type="application/json" id="{DATA_ELEMENT_ID}">{_script_json(document)}</script>
<script type="application/json" id="{DRAWN_ELEMENT_ID}">{_script_json(drawn)}</script>
<script type="module">{script}</script>
</body>
</html>
"""
