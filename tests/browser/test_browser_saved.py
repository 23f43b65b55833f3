"""End to end: a notebook saved in JupyterLab and reopened in a fresh JupyterLab or Notebook 7
server, without running anything, shows the final curves.

JupyterLab saves no widget state by default ("Save Widget State Automatically" is off), so the
reopened widget output says "Error displaying widget: model not found"; the static image is an
output of its own (see ``lossviz_widget._ui.display``) and shows. While the plot is live, that
image is hidden by the widget's style, so the curves are not shown twice; after a kernel restart
the plot says "kernel disconnected: static view" once instead of a broken-link icon on each of its
parts. Screenshots: ``test-artifacts/browser/saved-live.png``, ``kernel-disconnected.png`` and
``saved-reopened.png`` (JupyterLab) and ``saved-reopened-notebook7.png``; the same with
``renderer="canvas"`` (``saved_canvas-*.png``, ``kernel-disconnected_canvas.png``).

Saved *with* widget state (as nbclient saves it, or JupyterLab with "Save Widget State
Automatically" on) and reopened without running anything, the canvas plot shows its curves:
drawn from the saved state by the front end, or at least as the static image
(``saved-state-reopened*.png``, and ``.json``: what showed). Seen here (JupyterLab 4, Notebook 7):
neither renders the saved widgets without a kernel; the static image shows.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Iterator
from typing import Any

import nbformat
import pytest
from browser_harness import NotebookPage, new_context, opened_notebook, painted, poll, running_jupyterlab
from notebook_harness import WIDGET_STATE_MIME, run_notebook

CELLS = [
    """\
from lossviz_widget import LossPlot
plot = LossPlot(title="saved run")
for i in range(500):
    plot.log(loss=2.0 / (1 + i / 20), step=i)
    if i % 100 == 99:
        plot.log(val_loss=2.2 / (1 + i / 20), step=i)
plot""",
]


def _saved_outputs(path) -> list[dict]:
    try:
        return json.loads(path.read_text())["cells"][0]["outputs"]
    except (OSError, ValueError, KeyError, IndexError):
        return []


@pytest.mark.browser
@pytest.mark.timeout(300)
@pytest.mark.parametrize("renderer", ["svg", "canvas"])
def test_a_saved_notebook_reopened_in_a_fresh_server_shows_the_curves(request: pytest.FixtureRequest,
                                                                       renderer: str) -> None:
    cells = [CELLS[0].replace('LossPlot(title="saved run")', f'LossPlot(title="saved run", renderer="{renderer}")')]
    name = "saved" if renderer == "svg" else f"saved_{renderer}"
    with opened_notebook(request, f"{name}.ipynb", cells) as nb:
        nb.run_all_cells()
        nb.wait_cell_done(0, timeout=120)
        out = nb.cell(0)
        poll(lambda: out.locator(".lossviz .lossviz-panel").count() == 1, 60, "the live plot never showed")
        nb.page.wait_for_timeout(1500)  # the static image's refresh at the cell's end
        live_static = out.locator(".lossviz-static img")
        assert live_static.count() == 1 and not live_static.is_visible()  # hidden while the widget lives
        nb.screenshot(f"{name}-live", out)
        nb.cell(0).locator(".jp-InputArea-prompt").click()
        nb.page.keyboard.press("Control+s")
        saved = nb.server.root_dir / f"{name}.ipynb"
        poll(lambda: len(_saved_outputs(saved)) == 2, 30, "the notebook was not saved with its two outputs")
        text = saved.read_text()
        assert "application/vnd.jupyter.widget-state+json" not in text  # JupyterLab's default: no widget state

        # A kernel restart: one "kernel disconnected: static view" line, no broken-link icon per part.
        nb.cell(0).locator(".jp-InputArea-prompt").click()
        nb.page.keyboard.press("0")
        nb.page.keyboard.press("0")
        root = out.locator(".lossviz").first
        poll(lambda: "jupyter-widgets-disconnected" in (root.get_attribute("class") or ""), 60,
             "the plot never showed the kernel as disconnected")
        marks = root.evaluate("""root => [root, ...root.querySelectorAll('.jupyter-widgets-disconnected')]
            .map(el => getComputedStyle(el, '::before').content)""")
        assert marks[0] == '"kernel disconnected: static view (run the cell again to go live)"'
        assert len(marks) > 5 and all(m in ("none", "normal") for m in marks[1:]), marks  # no icon on the parts
        nb.screenshot(f"kernel-disconnected{name[5:]}", out)

    browser = request.getfixturevalue("chromium_browser")
    _reopen(browser, saved, "jupyterlab", f"lab/tree/{name}.ipynb", f"{name}-reopened")
    _reopen(browser, saved, "notebook", f"notebooks/{name}.ipynb", f"{name}-reopened-notebook7")


@contextlib.contextmanager
def _reopened(browser, saved, app: str, path: str) -> Iterator[tuple[NotebookPage, Any]]:
    """The saved notebook opened, without running anything, in a fresh ``app`` server (``path``: its
    URL there): the page and the first cell, once shown."""
    with running_jupyterlab(app=app) as fresh:
        shutil.copy(saved, fresh.root_dir / saved.name)
        context = new_context(browser)
        try:
            page = context.new_page()
            reopened = NotebookPage(page, fresh)
            page.goto(fresh.url(path), wait_until="domcontentloaded")  # nothing is run
            out = reopened.cell(0)
            out.wait_for(state="visible", timeout=60_000)
            yield reopened, out
        finally:
            context.close()


def _reopen(browser, saved, app: str, path: str, shot: str) -> None:
    """Open the saved notebook in a fresh ``app`` server: the static image of the curves shows (the
    widget cannot, its state was not saved)."""
    with _reopened(browser, saved, app, path) as (reopened, out):
        image = out.locator(".jp-OutputArea-output img")
        poll(lambda: image.count() == 1 and image.first.is_visible(), 30,
             lambda: f"{app}: no image in the reopened output: {reopened.output_text(0)!r}")
        box = image.first.bounding_box()
        assert box["width"] > 300 and box["height"] > 100
        assert image.first.evaluate("img => img.naturalWidth") > 300  # decoded, not a broken image
        reopened.screenshot(shot, out)


#: What the reopened output shows: the curves drawn by the restored widget (its canvas painted in the
#: loss line's colour) and whether the static image is visible.
SHOWN_JS = """(out) => ({
  canvases: out.querySelectorAll('canvas.lossviz-lines').length,
  image: [...out.querySelectorAll('.jp-OutputArea-output img')].some(i => i.getBoundingClientRect().width > 300
    && i.naturalWidth > 300),
})"""


@pytest.mark.browser
@pytest.mark.timeout(300)
def test_a_notebook_saved_with_widget_state_reopened_shows_the_curves(request: pytest.FixtureRequest,
                                                                      tmp_path) -> None:
    """The default (canvas) plot, run by nbclient (which saves the widget state) and reopened without
    running anything in JupyterLab and Notebook 7: the curves show, drawn from the saved state or
    as the static image (what each front end did is in the screenshots and the assertion message)."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(CELLS[0])])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    executed = run_notebook(nb, tmp_path, cell_timeout=120).nb
    assert WIDGET_STATE_MIME in executed.metadata["widgets"]
    saved = tmp_path / "saved_state.ipynb"
    nbformat.write(executed, str(saved))
    browser = request.getfixturevalue("chromium_browser")
    _reopen_with_state(browser, saved, "jupyterlab", "lab/tree/saved_state.ipynb", "saved-state-reopened")
    _reopen_with_state(browser, saved, "notebook", "notebooks/saved_state.ipynb", "saved-state-reopened-notebook7")


def _reopen_with_state(browser, saved, app: str, path: str, shot: str) -> None:
    """Open the saved notebook in a fresh ``app`` server: the curves show."""
    with _reopened(browser, saved, app, path) as (reopened, out):
        shown: dict = {}

        def curves() -> bool:
            shown.update(out.evaluate(SHOWN_JS))
            shown["painted"] = painted(out.locator(".lossviz-panel").first, "#1f77b4") if shown["canvases"] else 0
            return shown["painted"] > 300 or shown["image"]

        poll(curves, 60, lambda: f"{app}: no curves in the reopened output: {shown}", interval=1.0)
        reopened.page.wait_for_timeout(1000)
        curves()
        reopened.screenshot(shot, out)
        (reopened.artifacts / f"{shot}.json").write_text(json.dumps(shown))
