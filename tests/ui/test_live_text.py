"""Live frames update the text under the plot (runs table, findings, "latest and best", status) at most
twice a second, and the last values always arrive (``LossPlot`` ``_text_later``).

In a real kernel (nbclient, no browser): a training cell logs for ~2 s while the plot's render
thread draws at its default 10 frames/s; the kernel's messages to the plot's HTML widgets are
counted from the recorded widget traffic. After the cell, without any further log() or flush(),
the readout the kernel shows must already be what ``flush()`` computes from all the data.
"""

from __future__ import annotations

import nbformat
from notebook_harness import cell_text, run_notebook

CELLS = [
    "from lossviz_widget import LossPlot\nplot = LossPlot()\nplot",
    "import time\nfor i in range(40):\n    plot.log(loss=1.0 / (i + 1), acc=i / 40, step=i)\n    time.sleep(0.05)",
    "time.sleep(1.5)  # the trailing frame\nshown = plot.shown_html['readout']\nplot.flush()\n"
    "print('SAME', shown == plot.shown_html['readout'], 'i=39' if '0.025' in shown else shown)",
]


def test_live_text_at_most_twice_a_second_and_the_last_values_arrive(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    run = run_notebook(nb, tmp_path, cell_timeout=120)
    html = {cid for cid, model in run.models().items() if model.endswith(":HTMLModel")}
    start, end = run.cell_spans[1]
    during = [e for e in run.events if e.msg_type == "comm_msg" and start <= e.time <= end]
    text = [e for e in during if e.comm_id in html and "value" in e.keys]
    curves = [e for e in run.curve_messages(1) if start <= e.time <= end]
    seconds = end - start
    # the curves at the frame rate, the text parts (runs table, findings, readout, status) at <= 2 Hz each
    assert len(curves) > len(text) / 2, (len(curves), len(text), seconds)
    assert 1 <= len(text) <= 4 * (2 * seconds + 1), (len(text), seconds)
    assert cell_text(run.nb.cells[2]).split()[:2] == ["SAME", "True"], cell_text(run.nb.cells[2])
