"""Learn the forecasts' calibration on the development seeds: ``lossviz_widget/forecast/calibration.py``.

``python benchmarks/forecast/calibrate.py`` forecasts every loss series of the diagnostics
corpus's development seeds (0-3; never the held-out seeds or the long runs, which
``evaluate.py`` then scores) from the first 10%, 25% and 50% of its steps *uncalibrated*, and per
cut learns ``SCALE``, split-conformal style: each forecast's *score* is the least factor on every
family's spread that puts the truth inside its 80% interval (on the scale the forecast fits: the
logarithm of a positive loss); ``SCALE`` is the ⌈0.8 (n + 1)⌉-th smallest score, so that 80% of
the development curves (and, exchangeably, of new ones) end inside.

The median is not moved: a shift by the forecasts' median bias on the development seeds
(they ended lower than forecast, by a third of the interval's half-width at 25% and 50%;
compared by hand while choosing, with the learning-rate windows of the time)
made their median errors worse at every cut (27% -> 36%, 18% -> 21%, 9% -> 13%), though
it helped the long runs.

Rows of runs with an event injected after the cut (``evaluate.changes_after``) are left out: no
interval of a curve's past covers a learning rate raised a thousandfold later, and widening every
interval for them would make the interval useless for every other run (``FORECAST.md`` reports
them apart). Takes ~1 min on 2 shared cores; then run ``evaluate.py``.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import evaluate  # noqa: E402  (the corpus, its cuts and its scoring)

from lossviz_widget.forecast.ensemble import UNCALIBRATED, mixture_quantiles  # noqa: E402

OUT = evaluate.REPO / "lossviz_widget" / "forecast" / "calibration.py"
FACTORS = np.geomspace(0.05, 50.0, 600)  # the scale factors tried for each score


def _u(row: dict[str, Any]) -> float:
    """The truth on the scale the forecast fitted."""
    if row["log_scale"]:
        return math.log(row["truth"]) if row["truth"] > 0 else -math.inf
    return -row["truth"] if row["maximize"] else row["truth"]


def learn(rows: list[dict[str, Any]]) -> float:
    """``SCALE`` of one cut from its uncalibrated forecasts (see the module docstring)."""
    scores = []
    for r in rows:
        w, mu, sd = (np.array([m[i] for m in r["mixture"]]) for i in range(3))
        lo, hi = mixture_quantiles(w, np.repeat(mu[:, None], len(FACTORS), axis=1), sd[:, None] * FACTORS[None, :],
                                   (0.1, 0.9))
        inside = np.nonzero((lo <= _u(r)) & (_u(r) <= hi))[0]
        scores.append(float(FACTORS[inside[0]]) if len(inside) else math.inf)
    scores.sort()
    return scores[min(math.ceil(0.8 * (len(scores) + 1)), len(scores)) - 1]


def main() -> None:
    series = [s for s in evaluate.load() if s["split"] == "dev"]
    rows = [r for r in evaluate.score(series, calibration=UNCALIBRATED)
            if r["ok"] and math.isfinite(r["truth"]) and not r["changes"]]
    scales, counts = [], []
    for cut in evaluate.CUTS:
        at = [r for r in rows if r["cut"] == cut]
        scales.append(round(learn(at), 3))
        counts.append(len(at))
        print(f"cut {cut:.0%}: {len(at)} forecasts, scale x{scales[-1]:.3f}")
    text = OUT.read_text()
    head = text[: text.index("SHARES: ")]
    OUT.write_text(head + f"SHARES: tuple[float, ...] = {tuple(evaluate.CUTS)!r}\n"
                   f"SCALE: tuple[float, ...] = {tuple(scales)!r}\n"
                   f"DEV_ROWS: tuple[int, ...] = {tuple(counts)!r}  # development forecasts each share's numbers "
                   "were learnt on\n")
    print(OUT.read_text())


if __name__ == "__main__":
    main()
