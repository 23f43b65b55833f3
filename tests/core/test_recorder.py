"""The widget-free ``Recorder``: live frames sent to an attached view, as a kernel's render thread draws them."""

import time

import numpy as np

from lossviz_widget import Recorder
from lossviz_widget._core.recorder import LIVE_DIAGNOSTICS_BUDGET
from lossviz_widget.diagnostics import Diagnostics


def test_live_frames_catch_up_on_a_backlog_within_a_budget(monkeypatch):
    """After extend() of 1e6 steps one live frame reads at most the budget per series and asks
    for the next frame; once caught up the findings are those of one unbudgeted pass."""
    budget = LIVE_DIAGNOSTICS_BUDGET
    reads, update = [], Diagnostics.update

    def update_and_record(diag, data, budget=None):  # what each diagnostics pass read and left
        found = update(diag, data, budget)
        reads.append((budget, diag.pending))
        return found

    monkeypatch.setattr(Diagnostics, "update", update_and_record)
    rec = Recorder()
    try:
        n = 1_000_000
        s = np.arange(n, dtype=float)
        rec.extend("loss", s, 2 / (1 + s / 1e5) * (1 + 0.05 * np.sin(s)))
        rec.extend("val_loss", s[::10], 2.4 / (1 + s[::10] / 1e5) + np.maximum(0, s[::10] - 6e5) / 1e6)
        drawn = []
        rec.attach_view(lambda frame, findings: drawn.append(list(findings)) or 0, live=True)
        rec.request_frame()
        assert rec.wait_idle(timeout=300)  # each frame behind asked for the next: all drawn now
        frames = -(-n // budget)
        # the first frame read `budget` points of loss and all 1e5 of val_loss; each next one `budget` more
        assert reads[0] == (budget, n - budget)
        assert [left for _, left in reads] == [max(0, n - k * budget) for k in range(1, frames + 1)]
        assert all(b == budget for b, _ in reads) and len(drawn) == frames
        time.sleep(0.3)
        assert len(drawn) == frames  # none once caught up
        whole = Diagnostics()
        update(whole, rec.data())
        assert [repr(f) for f in drawn[-1]] == [repr(f) for f in whole.findings]
        found = rec.diagnose()
        assert [repr(f) for f in found] == [repr(f) for f in whole.findings]
        assert {"overfitting", "converged"} <= {f.code for f in found}
    finally:
        rec.close()
