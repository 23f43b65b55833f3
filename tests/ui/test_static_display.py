"""Saved notebooks keep the curves: the display carries a static PNG + text summary,
refreshed when training ends, so nbconvert/nbviewer/GitHub show the final curves."""

import base64
import io
import re

import nbformat
import pytest
from nbconvert import HTMLExporter
from notebook_harness import WIDGET_VIEW_MIME, run_notebook
from PIL import Image

from lossviz_widget import LossPlot

CELLS = [
    'from lossviz_widget import LossPlot\nplot = LossPlot(title="saved <b>run</b>")\nplot',
    "for i in range(300):\n    plot.log(loss=1.0 / (i + 1), val_loss=0.5 + 0.1 * (i % 7), step=i)",
    'closed = LossPlot(title="closed")\ndisplay(closed)\nclosed.log(acc=0.9, step=7)\nclosed.close()',
    "print('unrelated cell')",
]


def png_of(output) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(output["data"]["image/png"])))


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return run_notebook(nb, tmp_path_factory.mktemp("static"), cell_timeout=120).nb


def test_display_is_refreshed_with_the_final_curves_when_the_cell_ends(executed):
    (out,) = executed.cells[0].outputs
    assert set(out["data"]) >= {WIDGET_VIEW_MIME, "image/png", "text/plain"}  # live widget + fallbacks
    text = out["data"]["text/plain"]
    assert "LossPlot 'saved <b>run</b>': 2 metrics" in text
    assert "loss: 300 points, step 299" in text  # the summary of the *final* data, not the empty plot
    img = png_of(out)
    assert img.width >= 600 and len(img.convert("RGB").getcolors(1 << 24)) > 50  # a real picture, not blank


def test_a_closed_plot_leaves_its_static_image(executed):
    (out,) = executed.cells[2].outputs
    assert WIDGET_VIEW_MIME not in out["data"]  # the widget is gone: nothing says "model not found"
    assert "acc: 1 points, step 7" in out["data"]["text/plain"]
    png_of(out).verify()


def test_nbconvert_html_shows_the_static_image(executed):
    nb = nbformat.from_dict(executed)
    nb.metadata.pop("widgets", None)  # as JupyterLab saves by default: no widget state
    body, _ = HTMLExporter().from_notebook_node(nb)
    images = re.findall(r'<img [^>]*src="data:image/png;base64,([^"]+)"', body)
    assert len(images) == 2
    first = Image.open(io.BytesIO(base64.b64decode(images[0])))
    assert first.size == png_of(executed.cells[0].outputs[0]).size
    assert "saved <b>run</b>" not in body  # the title never reaches the page as markup


def test_repr_in_a_script_has_no_image_until_data_exists():
    plot = LossPlot()
    bundle = plot._repr_mimebundle_()  # IPython's display protocol: what a front end asks a kernel for
    assert bundle["text/plain"] == "LossPlot: no values logged yet" and "image/png" not in bundle
    plot.log(loss=1.0)
    assert bundle != (bundle := plot._repr_mimebundle_()) and bundle["image/png"].startswith(b"\x89PNG")
    plot.close()
