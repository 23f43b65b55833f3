"""End to end: a plot nobody sees gets no frames, and is current again once seen (real JupyterLab + Chromium).

A ``renderer="canvas"`` plot is shown, then scrolled far out of view (a tall output below it).
Its panels tell the kernel (``seen``, see ``js/hover.js``); a training thread then logs 300 more
steps while the kernel is idle (the case where the kernel hears the browser at once), and the
kernel sends the hidden panel nothing: checked by decoding what its canvas layer holds. Scrolled
back, the panel reports itself seen, the kernel sends a full frame, and the hover readout at
the right end of the plot names the last logged step. Then the same with the tab hidden
(``document.hidden`` and a ``visibilitychange`` event, as a switch to another tab gives; headless
Chromium never hides a page itself).
"""

from __future__ import annotations

import json

import browser_harness as bh
import pytest
from browser_harness import NotebookPage, poll

PLOT_CELL = bh.CANVAS_SENT_CODE + """\
import json, threading, time
from lossviz_widget import LossPlot

plot = LossPlot(title="unseen", renderer="canvas")
for i in range(100):
    plot.log(loss=1 / (i + 1), step=i)
plot.flush()

def train(start, stop):
    # log steps [start, stop) from a thread once the cell has ended (a frame during a running cell is
    # sent, see kernel_listens) and the kernel has heard the panel is not seen, then write what
    # the kernel has sent the panel to a file: running a cell to ask would itself let frames out
    ended = threading.Event()  # the cell that started the thread has ended (registered after the plot's own hook)
    def cell_ended(result):
        ended.set()
        get_ipython().events.unregister("post_run_cell", cell_ended)
    get_ipython().events.register("post_run_cell", cell_ended)
    def run():
        ended.wait(30)
        for _ in range(100):
            if not canvas_layer(plot).seen:
                break
            time.sleep(0.1)
        unseen = not canvas_layer(plot).seen
        for i in range(start, stop):
            plot.log(loss=1 / (i + 1), step=i)
            time.sleep(0.003)
        time.sleep(1.0)  # frames for a second
        noted = [unseen, not canvas_layer(plot).seen, sent_steps(plot)[1]]
        with open(f"sent-{start}.json", "w") as f:
            json.dump(noted, f)
    threading.Thread(target=run).start()
plot"""
SPACER_CELL = 'from IPython.display import HTML\nHTML(\'<div style="height: 4000px">spacer</div>\')'
HIDE_JS = """(hidden) => { Object.defineProperty(document, 'hidden', {configurable: true, get: () => hidden});
  document.dispatchEvent(new Event('visibilitychange')); }"""
PROBE_CELL = 'print("PROBE", sent_steps(plot)[1])'


def _probe(nb: NotebookPage) -> int:
    """Run the probe cell: the last step the kernel has sent the panel now."""
    _run(nb, 3)
    words = nb.output_text(3).split()
    return int(words[words.index("PROBE") + 1])


def _run(nb: NotebookPage, index: int) -> None:
    before = nb.input_prompt(index)
    nb.cell(index).locator(".jp-InputArea-prompt").click()
    nb.page.keyboard.press("Control+Enter")
    poll(lambda: nb.input_prompt(index) not in (before, "[*]:"), 30, f"cell {index} did not run")


def _readout_step(nb: NotebookPage) -> int:
    """Hover the right end of the loss panel's plot area: the step the readout names."""
    area = nb.cell(0).locator(".lossviz-panel rect.plotarea_events").first
    nb.cell(0).locator(".lossviz-panel").first.scroll_into_view_if_needed()  # the probe cell scrolled away
    nb.page.wait_for_timeout(300)
    box = area.bounding_box()
    assert box is not None
    nb.page.mouse.move(box["x"] + box["width"] - 2, box["y"] + box["height"] / 2)
    tip = nb.page.locator(".lossviz-tooltip .lossviz-tip-x")
    poll(lambda: tip.count() > 0 and tip.first.is_visible(), 10, "no hover readout")
    step = int(tip.first.inner_text().replace(",", ""))
    nb.page.mouse.move(1, 999)
    return step


@pytest.mark.browser
@pytest.mark.timeout(300)
def test_a_plot_out_of_view_gets_no_frames_and_is_current_once_seen(request: pytest.FixtureRequest) -> None:
    cells = [PLOT_CELL, SPACER_CELL, "train(100, 400)", PROBE_CELL]
    with bh.opened_notebook(request, "unseen.ipynb", cells) as nb:
        errors: list[str] = []
        nb.page.on("pageerror", lambda e: errors.append(str(e)))
        for i in (0, 1):
            _run(nb, i)
        nb.cell(0).locator(".lossviz canvas.lossviz-lines").first.wait_for(state="attached", timeout=30_000)
        assert _readout_step(nb) == 99
        sent = 99
        for how, start in (("scroll", 100), ("tab", 400)):
            # out of view: scrolled far below, or the tab hidden
            if how == "scroll":
                nb.cell(2).scroll_into_view_if_needed()
            else:
                nb.page.evaluate(HIDE_JS, True)
            noted = nb.server.root_dir / f"sent-{start}.json"  # written by the training thread
            noted.unlink(missing_ok=True)
            nb.cell(2).locator(".cm-content").click()
            nb.page.keyboard.press("Control+A")
            nb.page.keyboard.type(f"train({start}, {start + 300})")
            nb.page.keyboard.press("Control+Enter")
            poll(noted.exists, 60, f"{how}: the training thread did not finish")
            poll(lambda noted=noted: noted.read_text().endswith("]"), 5, f"{how}: the training thread's note is cut")
            unseen_before, unseen_after, last = json.loads(noted.read_text())
            assert unseen_before and unseen_after, f"{how}: the kernel did not hear that nobody sees the panel"
            assert last == sent, f"{how}: frames went to a panel nobody sees ({last} > {sent})"
            # seen again: a full frame, and the readout at the right end names the last logged step
            nb.cell(0).locator(".lossviz-panel").first.scroll_into_view_if_needed()
            if how == "tab":
                nb.page.evaluate(HIDE_JS, False)
            sent = start + 299
            poll(lambda want=sent: _probe(nb) == want, 20, f"{how}: the kernel did not send the latest points")
            poll(lambda want=sent: _readout_step(nb) == want, 20, f"{how}: the plot is not current once seen again")
        assert not errors, errors
        assert not nb.error_outputs(), nb.error_outputs()
