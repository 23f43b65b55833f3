"""End to end: a Keras 3 ``model.fit`` with ``LossPlotCallback`` draws live in real JupyterLab.

The integration notebook tests run the notebooks headless; this one is what a person sees:
in JupyterLab + headless Chromium, the per-batch loss line grows while the ``fit`` cell is
still running ([*]) (read with the hover readout at the right edge of the plot: the last step
drawn, whichever renderer), and at the end the panel holds every batch and every validation point
(the kernel says what it drew: ``CANVAS_SENT_CODE``). A callback sleeps a little per batch so the
training lasts a few seconds.
"""

from __future__ import annotations

import itertools
import json
import re

import pytest
from browser_harness import CANVAS_SENT_CODE, NotebookPage, last_drawn_step, opened_notebook, poll

EPOCHS, BATCHES = 6, 20

SETUP_CELL = f"""\
import os
os.environ.setdefault("KERAS_BACKEND", "torch")
import time
import keras, numpy as np
from lossviz_widget import LossPlot
from lossviz_widget.integrations.keras import LossPlotCallback

rng = np.random.default_rng(0)
x = rng.normal(size=({BATCHES * 50 * 5 // 4}, 4)).astype("float32")
y = (x @ np.array([1.0, -2.0, 0.5, 0.0], dtype="float32") > 0).astype("float32")
keras.utils.set_random_seed(0)
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                          keras.layers.Dense(1, activation="sigmoid")])
model.compile(optimizer="adam", loss="binary_crossentropy")
callback = LossPlotCallback(LossPlot(title="keras live", smoothing=0.0))
callback.plot"""

FIT_CELL = f"""\
slow = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: time.sleep(0.04))
history = model.fit(x, y, batch_size=50, epochs={EPOCHS}, validation_split=0.2,
                    callbacks=[callback, slow], verbose=0)
print("FIT DONE", len(history.history["val_loss"]))"""

DRAWN_CELL = CANVAS_SENT_CODE + """\
import json
callback.plot.flush()
print("DRAWN", json.dumps(drawn_points(callback.plot, "loss")))"""


@pytest.mark.browser
@pytest.mark.timeout(240)
def test_keras_fit_draws_live(request: pytest.FixtureRequest) -> None:
    with opened_notebook(request, "keras_live.ipynb", [SETUP_CELL, FIT_CELL, DRAWN_CELL]) as nb:
        _check(nb)


def _check(nb: NotebookPage) -> None:
    nb.run_all_cells()
    widget = nb.cell(0).locator(".lossviz")
    widget.wait_for(state="visible", timeout=90_000)  # importing keras + torch takes a while
    poll(lambda: nb.is_executing(1), 90, "fit cell never started executing ([*])", interval=0.05)
    panel = widget.locator(".lossviz-panel").first

    samples: list[int] = []
    while nb.is_executing(1) and "FIT DONE" not in nb.output_text(1):
        n = (last_drawn_step(nb.page, panel, "loss") or 0) if panel.count() else 0
        if n and nb.is_executing(1):
            samples.append(n)
        nb.page.wait_for_timeout(200)
    grew = sum(b > a for a, b in itertools.pairwise(samples))
    assert grew >= 2 and samples[0] < EPOCHS * BATCHES, f"loss line did not grow while fit ran: {samples}"
    nb.screenshot("keras-live-widget", widget)

    nb.wait_cell_done(1, timeout=120)
    assert f"FIT DONE {EPOCHS}" in nb.output_text(1), nb.output_text(1)
    nb.wait_cell_done(2, timeout=60)
    said = re.search(r"DRAWN (\{.*\})", nb.output_text(2))
    drawn = json.loads(said.group(1)) if said else {}
    assert (drawn.get("loss"), drawn.get("val_loss")) == (EPOCHS * BATCHES, EPOCHS), nb.output_text(2)
    last = last_drawn_step(nb.page, panel, "loss")
    assert last is not None and last >= samples[-1], (last, samples)  # the browser drew the end of the run
    assert not nb.error_outputs(), nb.error_outputs()
    nb.screenshot("keras-final-widget", widget)
