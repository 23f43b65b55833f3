"""Longer real training runs for the forecast evaluation: ``python benchmarks/forecast/make_long.py``.

The diagnostics corpus (``benchmarks/diagnostics/corpus``) holds runs of 1,000-6,000 steps, most
of them built to go wrong in some way. Forecasts matter most on long healthy runs, so this adds
eight runs of 12,000-20,000 steps trained by the corpus's own code (``make_corpus.train``: NumPy
and PyTorch MLPs and softmax regression on scikit-learn's digits and ``make_classification``,
mini-batch SGD with momentum), with constant, step and cosine schedules, each build trained with
two seeds (16 runs: one seed gave 8 forecasts at the 10% cut, too few to tell 80% coverage from
100%). They were made after the forecasting code was written. Since the forecasts' calibration
was found too wide on them (nothing in the diagnostics corpus's development seeds is long and
smooth), each build's first seed is in the calibration's learning set (``calibrate.py``) and
its second seed (:data:`SECOND_SUFFIX`) is held out: ``evaluate.py`` reports both apart.
Writes ``long/corpus.npz`` (compressed arrays, no pickle) and ``long/labels.json`` (each run's
build), ~5-8 minutes on one core.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "diagnostics"))
import make_corpus as mc  # noqa: E402  (the diagnostics corpus's models, datasets and training loop)

#: Seed offset of each build's second run (its id gets :data:`SECOND_SUFFIX`): the first seeds are
#: 20-27. The first seeds are in the calibration's learning set, the second ones are held out.
SECOND_SEED = 10
SECOND_SUFFIX = "-b"


def specs() -> list[mc.Spec]:
    """The long runs: healthy, several schedules, frameworks and datasets, two seeds each."""
    first = [
        mc.Spec("long-np-mlp-constant", "healthy", "numpy", "mlp", seed=20, steps=20_000, lr=0.02, val_every=200),
        mc.Spec("long-np-mlp-step", "healthy", "numpy", "mlp", seed=21, steps=20_000, lr=0.05, schedule="step",
                val_every=200),
        mc.Spec("long-np-mlp-cosine", "healthy", "numpy", "mlp", seed=22, steps=20_000, lr=0.05, schedule="cosine",
                val_every=200),
        mc.Spec("long-np-softmax-constant", "healthy", "numpy", "softmax", seed=23, steps=20_000, lr=0.01,
                val_every=200),
        mc.Spec("long-np-mlp-blobs", "healthy", "numpy", "mlp", data="blobs", seed=24, steps=20_000, lr=0.01,
                val_every=200),
        mc.Spec("long-torch-mlp-constant", "healthy", "torch", "mlp", seed=25, steps=12_000, lr=0.01, val_every=200),
        mc.Spec("long-torch-mlp-cosine", "healthy", "torch", "mlp", seed=26, steps=12_000, lr=0.05,
                schedule="cosine", val_every=200),
        mc.Spec("long-np-mlp-lowlr", "lr_too_low", "numpy", "mlp", seed=27, steps=20_000, lr=0.002, val_every=200),
    ]
    return first + [replace(s, id=f"{s.id}{SECOND_SUFFIX}", seed=s.seed + SECOND_SEED) for s in first]


def main() -> None:
    import torch

    torch.set_num_threads(1)
    out = HERE / "long"
    out.mkdir(exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    runs = []
    for spec in specs():
        started = time.perf_counter()
        series = mc.train(spec)
        for name, (steps, values) in series.items():
            arrays[f"{spec.id}__{name}__steps"] = steps
            arrays[f"{spec.id}__{name}__values"] = values
        runs.append({"id": spec.id, "series": sorted(series), "build": asdict(spec)})
        print(f"{spec.id}: {time.perf_counter() - started:.1f} s", flush=True)
    np.savez_compressed(out / "corpus.npz", **arrays)
    (out / "labels.json").write_text(json.dumps({"runs": runs}, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
