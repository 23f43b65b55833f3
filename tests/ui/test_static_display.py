"""Saved notebooks keep the curves: the display is the widget's output, then an output of its own
with a static PNG (also as an <img> in text/html) + text summary, refreshed when training ends, so
JupyterLab without widget state, nbconvert, nbviewer and GitHub show the final curves."""

import base64
import io
import re

import nbformat
import pytest
from drawn import decode_lines
from nbconvert import HTMLExporter
from notebook_harness import WIDGET_VIEW_MIME, run_notebook
from PIL import Image

from lossviz_widget import LossPlot

CELLS = [
    'from lossviz_widget import LossPlot\nplot = LossPlot(title="saved <b>run</b>")\nplot',
    "for i in range(300):\n    plot.log(loss=1.0 / (i + 1), val_loss=0.5 + 0.1 * (i % 7), step=i)",
    'closed = LossPlot(title="closed")\ndisplay(closed)\nclosed.log(acc=0.9, step=7)\nclosed.close()',
    "print('unrelated cell')",
    'empty = LossPlot(title="empty")\nempty',
]


def png_of(output) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(output["data"]["image/png"])))


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return run_notebook(nb, tmp_path_factory.mktemp("static"), cell_timeout=120).nb


def test_display_is_refreshed_with_the_final_curves_when_the_cell_ends(executed):
    widget, still = executed.cells[0].outputs
    assert set(widget["data"]) == {WIDGET_VIEW_MIME, "text/plain"}  # the live view alone: JupyterLab picks it
    assert widget["data"]["text/plain"] == "LossPlot 'saved <b>run</b>'"
    assert set(still["data"]) == {"text/html", "image/png", "text/plain"}  # always shown where the view is not
    text = still["data"]["text/plain"]
    assert "LossPlot 'saved <b>run</b>': 2 metrics" in text
    assert "loss: 300 points, step 299" in text  # the summary of the *final* data, not the empty plot
    img = png_of(still)
    assert img.width >= 600 and len(img.convert("RGB").getcolors(1 << 24)) > 50  # a real picture, not blank
    page = still["data"]["text/html"]
    assert page.startswith('<div class="lossviz-static"><img alt="LossPlot saved &lt;b&gt;run&lt;/b&gt;"')
    assert still["data"]["image/png"] in page  # the same PNG (base64)


def test_a_closed_plot_leaves_its_static_image(executed):
    widget, still = executed.cells[2].outputs
    assert widget["data"] == {"text/plain": ""}  # the widget is gone: nothing says "model not found"
    assert "acc: 1 points, step 7" in still["data"]["text/plain"]
    png_of(still).verify()


def test_an_empty_plot_s_fallback_text_is_hidden_under_the_live_view(executed):
    _, still = executed.cells[4].outputs
    # in the box the live widget's style hides: no "no values logged yet" under a live plot that has data
    assert still["data"]["text/html"] == ('<div class="lossviz-static"><pre>'
                                          "LossPlot &#x27;empty&#x27;: no values logged yet</pre></div>")
    assert still["data"]["text/plain"] == "LossPlot 'empty': no values logged yet"


def test_nbconvert_html_shows_the_static_image(executed):
    nb = nbformat.from_dict(executed)
    nb.metadata.pop("widgets", None)  # as JupyterLab saves by default: no widget state
    body, _ = HTMLExporter().from_notebook_node(nb)
    images = re.findall(r'<img [^>]*src="data:image/png;base64,([^"]+)"', body)
    assert len(images) == 2
    first = Image.open(io.BytesIO(base64.b64decode(images[0])))
    assert first.size == png_of(executed.cells[0].outputs[1]).size
    assert "saved <b>run</b>" not in body  # the title never reaches the page as markup


def test_a_notebook_saved_with_widget_state_keeps_the_canvas_points_and_the_image(executed):
    """Saved with widget state (nbclient's default; JupyterLab's "Save Widget State Automatically"):
    each panel's hover layer is kept with its canvas on and the final points in its ``lines``
    buffer, so a front end that renders the saved widgets draws the curves; and nbconvert's page
    still has the static image for readers that cannot load the widgets."""
    state = executed.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    layers = [m for m in state.values() if "series" in m["state"]]  # the hover layers (lines: a binary buffer)
    assert layers and all(m["state"]["canvas"] for m in layers)
    points = {}
    for m in layers:
        (buf,) = [b for b in m.get("buffers", []) if b["path"] == ["lines"]]
        packed, _ = decode_lines(base64.b64decode(buf["data"]))
        for e in m["state"]["series"]:
            if e["slot"] is not None:
                points[e["label"]] = packed[e["slot"]][0]
    assert points["loss"][-1] == 299 and len(points["loss"]) == 300  # the final frame: every step
    body, _ = HTMLExporter().from_notebook_node(nbformat.from_dict(executed))
    assert "application/vnd.jupyter.widget-state+json" in body
    assert len(re.findall(r'<img [^>]*src="data:image/png;base64,', body)) == 2


def test_repr_in_a_script_has_no_image_until_data_exists():
    plot = LossPlot()
    bundle = plot._repr_mimebundle_()  # IPython's display protocol: what a front end asks a kernel for
    assert bundle["text/plain"] == "LossPlot: no values logged yet" and "image/png" not in bundle
    plot.log(loss=1.0)
    assert bundle != (bundle := plot._repr_mimebundle_()) and bundle["image/png"].startswith(b"\x89PNG")
    plot.close()
