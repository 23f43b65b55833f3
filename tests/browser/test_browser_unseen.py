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

import browser_harness as bh
import pytest
from browser_harness import NotebookPage, poll

PLOT_CELL = """\
import threading, time
import numpy as np
from lossviz_widget import LossPlot
from lossviz_widget._ui.hover import HoverLayer

plot = LossPlot(title="unseen", renderer="canvas")
for i in range(100):
    plot.log(loss=1 / (i + 1), step=i)
plot.flush()

def layer():
    found, todo = [], [plot]
    while todo:
        w = todo.pop()
        found += [w] if isinstance(w, HoverLayer) else []
        todo += list(getattr(w, "children", ()))
    return found[0]

def last_sent():  # the largest step in the points the kernel sent the panel's canvas
    buf = layer().lines
    count = int(np.frombuffer(buf, "<u4", 1)[0])
    n = int(np.frombuffer(buf, "<u4", count, 8).sum())
    return int(np.frombuffer(buf, "<f8", n, -(-(8 + 4 * count) // 8) * 8).max())

def train(start, stop):
    def run():
        for i in range(start, stop):
            plot.log(loss=1 / (i + 1), step=i)
            time.sleep(0.003)
    threading.Thread(target=run).start()
plot"""
SPACER_CELL = 'from IPython.display import HTML\nHTML(\'<div style="height: 4000px">spacer</div>\')'
PROBE_CELL = 'print("PROBE", layer().seen, last_sent())'


def _probe(nb: NotebookPage) -> tuple[bool, int]:
    """Run the probe cell (the kernel is idle otherwise): the layer's ``seen`` and the last step sent."""
    before = nb.input_prompt(3)
    nb.cell(3).locator(".jp-InputArea-prompt").click()
    nb.page.keyboard.press("Control+Enter")
    poll(lambda: nb.input_prompt(3) not in (before, "[*]:"), 30, "the probe cell did not run")
    words = nb.output_text(3).split()
    i = words.index("PROBE")
    return words[i + 1] == "True", int(words[i + 2])


def _run(nb: NotebookPage, index: int) -> None:
    before = nb.input_prompt(index)
    nb.cell(index).locator(".jp-InputArea-prompt").click()
    nb.page.keyboard.press("Control+Enter")
    poll(lambda: nb.input_prompt(index) not in (before, "[*]:"), 30, f"cell {index} did not run")


def _readout_step(nb: NotebookPage) -> int:
    """Hover the right end of the loss panel's plot area: the step the readout names."""
    area = nb.cell(0).locator(".lossviz-panel rect.plotarea_events").first
    box = area.bounding_box()
    assert box is not None
    nb.page.mouse.move(box["x"] + box["width"] - 2, box["y"] + box["height"] / 2)
    tip = nb.page.locator(".lossviz-tooltip .lossviz-tip-x")
    poll(lambda: tip.count() > 0 and tip.first.is_visible(), 10, "no hover readout")
    step = int(tip.first.inner_text().replace(",", ""))
    nb.page.mouse.move(1, 999)
    return step


def _wait_seen(nb: NotebookPage, seen: bool) -> None:
    poll(lambda: _probe(nb)[0] == seen, 20, f"the kernel never heard seen={seen}", interval=0.5)


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
                nb.cell(3).scroll_into_view_if_needed()
            else:
                nb.page.evaluate("""() => { Object.defineProperty(document, 'hidden', {configurable: true,
                    get: () => true}); document.dispatchEvent(new Event('visibilitychange')); }""")
            _wait_seen(nb, False)
            nb.cell(2).locator(".cm-content").click()
            nb.page.keyboard.press("Control+A")
            nb.page.keyboard.type(f"train({start}, {start + 300})")
            nb.page.keyboard.press("Control+Enter")
            nb.page.wait_for_timeout(3000)  # the thread logs 300 steps in ~1 s; the kernel is idle meanwhile
            seen, last = _probe(nb)
            assert not seen and last == sent, f"{how}: frames went to a panel nobody sees ({last} > {sent})"
            # seen again: a full frame, the readout at the right end names the last logged step
            if how == "scroll":
                nb.cell(0).locator(".lossviz-panel").first.scroll_into_view_if_needed()
            else:
                nb.page.evaluate("""() => { Object.defineProperty(document, 'hidden', {configurable: true,
                    get: () => false}); document.dispatchEvent(new Event('visibilitychange')); }""")
            _wait_seen(nb, True)
            nb.cell(0).locator(".lossviz-panel").first.scroll_into_view_if_needed()
            sent = start + 299
            poll(lambda want=sent: _probe(nb)[1] == want, 20, f"{how}: the kernel did not send the latest points")
            poll(lambda want=sent: _readout_step(nb) == want, 20, f"{how}: the plot is not current once seen again")
        assert not errors, errors
        assert not nb.error_outputs(), nb.error_outputs()
