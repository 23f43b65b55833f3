"""Longer real training runs for the forecast evaluation: ``python benchmarks/forecast/make_long.py``.

The diagnostics corpus (``benchmarks/diagnostics/corpus``) holds runs of 1,000-6,000 steps, most
of them built to go wrong in some way. Forecasts matter most on long healthy runs, so this adds
eight runs of 12,000-20,000 steps trained by the corpus's own code (``make_corpus.train``: NumPy
and PyTorch MLPs and softmax regression on scikit-learn's digits and ``make_classification``,
mini-batch SGD with momentum), with constant, step and cosine schedules, each build trained with
six seeds (48 runs). They were made after the forecasting code was written.

Which seeds the calibration (``calibrate.py``) learns on grew as each held-out set was looked at:
the first seeds joined it once the calibration learnt on the corpus alone was too wide on the
first two (nothing in the diagnostics corpus's development seeds is long and smooth); the second,
third and fourth seeds (``-b``, ``-c``, ``-d``) were held out until their results were read (too
wide from half a run), and then joined it too. The fifth and sixth seeds (:data:`HELD_OUT`:
``-e``, ``-f``) were trained after that and are held out: ``evaluate.py`` scores them apart, and
nothing was chosen on them.

Writes ``long/corpus.npz`` (compressed arrays, no pickle) and ``long/labels.json`` (each run's
build). A run already there with the same build is kept as it is (so the learning set and the
runs scored before stay byte-identical while seeds are added); ``--retrain`` trains every run
again. Each run takes 5-60 s on one core (16 new runs: ~2-3 min).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "diagnostics"))
import make_corpus as mc  # noqa: E402  (the diagnostics corpus's models, datasets and training loop)

#: Each build's later seeds: id suffix -> seed offset from its first seed (seeds 20-27, no suffix).
#: "-b", "-c", "-d" (seeds 30-57) are in the calibration's learning set with the first seeds;
#: "-e" and "-f" (60-77, never used before) are :data:`HELD_OUT`.
SEEDS = {"-b": 10, "-c": 20, "-d": 30, "-e": 40, "-f": 50}
HELD_OUT = ("-e", "-f")  # the seeds held out of the calibration's learning set, trained after it was learnt


def held_out(run_id: str) -> bool:
    """Whether long run ``run_id`` is held out (not in the calibration's learning set)."""
    return run_id.endswith(HELD_OUT)


def build_of(run_id: str) -> str:
    """The build a long run is a seed of (its id without the seed's suffix)."""
    return next((run_id[: -len(s)] for s in SEEDS if run_id.endswith(s)), run_id)


def specs() -> list[mc.Spec]:
    """The long runs: healthy, several schedules, frameworks and datasets, six seeds each."""
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
    return first + [replace(s, id=f"{s.id}{suffix}", seed=s.seed + offset)
                    for suffix, offset in SEEDS.items() for s in first]


def main() -> None:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--retrain", action="store_true", help="train every run again, even those already in long/")
    args = ap.parse_args()
    torch.set_num_threads(1)
    out = HERE / "long"
    out.mkdir(exist_ok=True)
    kept: dict[str, dict] = {}
    old: dict[str, np.ndarray] = {}
    if not args.retrain and (out / "labels.json").exists():
        kept = {r["id"]: r for r in json.loads((out / "labels.json").read_text())["runs"]}
        with np.load(out / "corpus.npz", allow_pickle=False) as z:
            old = {k: z[k] for k in z.files}
    arrays: dict[str, np.ndarray] = {}
    runs = []
    for spec in specs():
        build = json.loads(json.dumps(asdict(spec), default=str))
        if spec.id in kept and kept[spec.id]["build"] == build:
            runs.append(kept[spec.id])
            for name in kept[spec.id]["series"]:
                for part in ("steps", "values"):
                    arrays[f"{spec.id}__{name}__{part}"] = old[f"{spec.id}__{name}__{part}"]
            continue
        started = time.perf_counter()
        series = mc.train(spec)
        for name, (steps, values) in series.items():
            arrays[f"{spec.id}__{name}__steps"] = steps
            arrays[f"{spec.id}__{name}__values"] = values
        runs.append({"id": spec.id, "series": sorted(series), "build": build})
        print(f"{spec.id}: {time.perf_counter() - started:.1f} s", flush=True)
        save(out, arrays, runs)  # after each run: an interrupted pass keeps what it trained
    save(out, arrays, runs)


def save(out: Path, arrays: dict[str, np.ndarray], runs: list[dict]) -> None:
    """Write ``long/corpus.npz`` and ``long/labels.json`` (the runs so far, in :func:`specs`' order)."""
    with open(out / "corpus.npz.part", "wb") as f:  # replaced whole: never a half-written corpus
        np.savez_compressed(f, **arrays)
    (out / "corpus.npz.part").replace(out / "corpus.npz")
    (out / "labels.json").write_text(json.dumps({"runs": runs}, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
