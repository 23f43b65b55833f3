"""Score the diagnostics on the corpus of real training curves: one command, one table.

``python benchmarks/diagnostics/evaluate.py`` feeds every corpus run (``corpus/corpus.npz`` and
``corpus/labels.json``, made by ``make_corpus.py``) through the public API, as a user replaying
a log would (``LossPlot(num_classes=...)``, ``plot.extend(...)`` per series, ``plot.diagnose()``),
matches the findings against the labels and writes ``benchmarks/DIAGNOSTICS.md`` (and the raw
numbers as JSON with ``--json``). ``--subset`` takes the first run of each condition (what the
test suite runs, in seconds).

Scoring:

* a label is *detected* when a finding with one of its codes is on its series at or after the
  step where the condition begins; its *delay* is the step where the finding was reported
  (``evidence["reported_at"]`` where a detector reports after the fact, as ``loss_spike`` does
  once it knows whether the loss recovered; else the finding's step) minus that step;
* a finding is *true* when a label of its run names its code (as the condition's code, or as a
  code that the condition also makes true: a network killed by a too-high learning rate is also
  not learning) at or after the label's step; a ``plateau`` finding is true where PyTorch's
  ``ReduceLROnPlateau`` would cut the learning rate at that very step of that series (the
  corpus lists those steps for every run); ``converged`` and ``generalization_gap`` are
  descriptive (no run is built to have or lack them) and are counted, not scored;
* recall per condition counts a run as found when any of its codes is; recall per code counts
  the conditions whose first code it is;
* a finding that later data ended (``Finding.ended``: the loss started learning, a converged
  loss fell again) still counts where it was made; the "Findings that ended" table says how
  many ended and how many are still current at the end of each run, here and on the long
  healthy runs of ``benchmarks/forecast/long`` (12,000-20,000 steps), where findings made in
  the early window are the ones later data contradicts.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import subprocess
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
LONG = REPO / "benchmarks" / "forecast" / "long"  # long healthy runs, same format (make_long.py)
UNSCORED = ("converged", "generalization_gap")  # descriptive: no run is built to have or lack them


def load(corpus: Path) -> tuple[dict[str, Any], Any]:
    meta = json.loads((corpus / "labels.json").read_text())
    return meta, np.load(corpus / "corpus.npz")


def series_of(arrays: Any, run: dict[str, Any]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {
        name: (arrays[f"{run['id']}__{name}__steps"], arrays[f"{run['id']}__{name}__values"]) for name in run["series"]
    }


def diagnose(
    run: dict[str, Any], series: dict[str, tuple[np.ndarray, np.ndarray]], overrides: dict[str, Any] | None = None
) -> list[Any]:
    """The findings of one run through the public API, as a user replaying its log gets them
    (``overrides``: other ``DiagnosticsConfig`` thresholds than the defaults)."""
    from lossviz_widget import DiagnosticsConfig, LossPlot

    plot = LossPlot(diagnostics_config=DiagnosticsConfig(num_classes=run.get("num_classes"), **(overrides or {})))
    try:
        for name, (steps, values) in series.items():
            plot.extend(name, steps, values)
        return plot.diagnose()
    finally:
        plot.close()


def reported_at(f: Any) -> float:
    return float(f.evidence.get("reported_at", f.step))


def score_run(
    run: dict[str, Any], findings: list[Any], series: dict[str, tuple[np.ndarray, np.ndarray]], dense_block: int
) -> dict[str, Any]:
    """Per label: detected, delay, duplicates; per finding: true or not."""
    labels = run["labels"]
    plateau_steps = {(lab["series"], lab["step"]) for lab in labels if "plateau" in lab["codes"]}
    verdicts: list[bool | None] = []
    for f in findings:
        if f.code in UNSCORED:
            verdicts.append(None)
        elif f.code == "plateau":
            verdicts.append((f.metric, float(f.step)) in plateau_steps)
        else:
            verdicts.append(
                any(
                    ((f.code in lab["codes"] and f.metric == lab["series"]) or f.code in lab.get("also", ()))
                    and lab["step"] is not None
                    and reported_at(f) >= lab["step"]
                    for lab in labels
                    if lab["condition"] != "plateau:rule"
                )
            )
    out_labels = []
    for lab in labels:
        if not lab.get("scored", True) or lab["condition"] == "plateau:rule":
            continue
        hits = [
            f
            for f in findings
            if f.code in lab["codes"]
            and f.metric == lab["series"]
            and lab["step"] is not None
            and reported_at(f) >= lab["step"]
        ]
        first = min(hits, key=reported_at) if hits else None
        entry: dict[str, Any] = {
            "condition": lab["condition"],
            "codes": lab["codes"],
            "step": lab["step"],
            "detected": first is not None,
            "by": first.code if first else None,
            "delay": reported_at(first) - lab["step"] if first else None,
            "count": _episode_count(lab, hits, first),
        }
        if first is not None and lab["condition"] == "overfitting":
            steps = series[lab["series"]][0]
            if lab.get("evaluations", "each value") != "each value":
                steps = steps[dense_block - 1 :: dense_block]
            entry["delay_evals"] = int(((steps > lab["step"]) & (steps <= reported_at(first))).sum())
        if first is None:
            entry["found"] = sorted({(f.code, f.metric) for f in findings})
        out_labels.append(entry)
    return {"labels": out_labels, "verdicts": verdicts}


def _episode_count(lab: dict[str, Any], hits: list[Any], first: Any) -> int:
    """Findings of the detecting code in the labelled episode: at the very step for a plateau
    (each ReduceLROnPlateau cut is its own episode), within 300 steps for a spike (each
    injected spike is one), after the onset otherwise (one condition per run)."""
    if first is None:
        return 0
    same = [f for f in hits if f.code == first.code]
    if first.code == "plateau":
        return sum(1 for f in same if f.step == lab["step"])
    if first.code == "loss_spike":
        return sum(1 for f in same if f.step <= lab["step"] + 300)
    return len(same)


def cost(
    items: list[tuple[dict[str, Any], dict[str, tuple[np.ndarray, np.ndarray]]]], frame: int = 200
) -> dict[str, float]:
    """ns per point of ``Diagnostics.update``: the whole corpus in one call per run, and in live
    frames of ``frame`` new points per series (min of 3 repeats each; CPU time of this process,
    so other work on a shared machine does not count)."""
    from lossviz_widget import MetricHistory
    from lossviz_widget.diagnostics import Diagnostics, DiagnosticsConfig

    def hist(steps: np.ndarray, values: np.ndarray, n: int) -> MetricHistory:
        return MetricHistory(steps[:n].astype(np.float64), values[:n], np.zeros(n))

    points = sum(len(v) for _, s in items for _, v in s.values())
    out = {"points": float(points)}
    for mode in ("one call", f"frames of {frame}"):
        best = math.inf
        for _ in range(3):
            t = time.process_time()
            for run, series in items:
                d = Diagnostics(DiagnosticsConfig(num_classes=run["num_classes"]))
                longest = max(len(v) for _, v in series.values())
                cuts = [longest] if mode == "one call" else list(range(frame, longest + frame, frame))
                for cut in cuts:  # a frame: every series up to the same fraction of the run
                    frac = min(cut / longest, 1.0)
                    d.update({n: hist(s, v, round(len(v) * frac)) for n, (s, v) in series.items()})
            best = min(best, time.process_time() - t)
        out[mode] = best / points * 1e9
    out.update(stream_cost())
    return out


def stream_cost(n: int = 1_000_000, frame: int = 20_000) -> dict[str, float]:
    """ns per point and ms per frame on a long live run: a noisy falling training loss and a
    gradient norm every step, a validation loss every 10 steps, ``frame`` new steps per
    ``Diagnostics.update`` (min of 3 repeats)."""
    from lossviz_widget import MetricHistory
    from lossviz_widget.diagnostics import Diagnostics, DiagnosticsConfig

    rng = np.random.default_rng(0)
    s = np.arange(n, dtype=float)
    data = {
        "loss": (s, np.abs((2 * np.exp(-s / 3000) + 0.1) * (1 + 0.3 * rng.standard_normal(n)))),
        "val_loss": (s[::10], 2 * np.exp(-s[::10] / 3000) + 0.15 + 0.01 * rng.standard_normal(n // 10)),
        "grad_norm": (s, np.abs(1 + 0.2 * rng.standard_normal(n))),
    }
    points = sum(len(v) for _, v in data.values())
    best = math.inf
    for _ in range(3):
        d = Diagnostics(DiagnosticsConfig(num_classes=10))
        t = time.process_time()
        for end in range(frame, n + frame, frame):
            cut = {k: int(np.searchsorted(st, end)) for k, (st, _) in data.items()}
            d.update({k: MetricHistory(st[: cut[k]], v[: cut[k]], st[: cut[k]]) for k, (st, v) in data.items()})
        best = min(best, time.process_time() - t)
    return {
        f"1M-step stream, frames of {frame:,} steps": best / points * 1e9,
        "ms per frame (stream)": best / (n // frame) * 1e3,
    }


def evaluate(
    corpus: Path, subset: bool = False, timing: bool = True, overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    meta, arrays = load(corpus)
    runs = meta["runs"]
    if subset:
        seen: set[str] = set()
        picked = []
        for run in runs:
            key = run["build"]["condition"] + ":" + run["build"]["framework"]
            if key not in seen:
                seen.add(key)
                picked.append(run)
        runs = picked
    per_run, items = [], []
    codes_true: Counter[str] = Counter()
    codes_all: Counter[str] = Counter()
    codes_ended: Counter[str] = Counter()
    healthy_bad, healthy_info = [], []
    steps_total = 0.0
    for run in runs:
        series = series_of(arrays, run)
        items.append((run, series))
        findings = diagnose(run, series, overrides)
        scored = score_run(run, findings, series, meta["dense_block"])
        for f, ok in zip(findings, scored["verdicts"]):
            codes_all[f.code] += 1
            codes_true[f.code] += bool(ok)
            codes_ended[f.code] += f.ended is not None
        if run["build"]["condition"] == "healthy":
            healthy_bad += [(run["id"], f.code, f.metric, f.step, f.ended) for f in findings if f.severity != "info"]
            healthy_info.append(len(findings))
        steps_total += max(float(s[-1]) for s, _ in series.values()) + 1
        per_run.append(
            {
                "id": run["id"],
                "condition": run["build"]["condition"],
                "build": run["build"],
                "labels": scored["labels"],
                "findings": [(f.code, f.severity, f.metric, f.step, reported_at(f)) for f in findings],
                "false": [(f.code, f.metric, f.step) for f, ok in zip(findings, scored["verdicts"]) if ok is False],
            }
        )
    by_condition: dict[str, list[dict[str, Any]]] = defaultdict(list)
    by_code: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in per_run:
        for lab in r["labels"]:
            by_condition[lab["condition"]].append(lab | {"run": r["id"]})
            by_code[lab["codes"][0]].append(lab | {"run": r["id"]})
    result: dict[str, Any] = {
        "runs": len(runs),
        "steps": steps_total,
        "per_run": per_run,
        "healthy_runs": sum(1 for r in runs if r["build"]["condition"] == "healthy"),
        "healthy_warnings": healthy_bad,
        "healthy_findings": healthy_info,
        "codes": {},
        "conditions": {},
    }
    for code in sorted(set(codes_all) | set(by_code)):
        labs = by_code.get(code, [])
        hit = [lab for lab in labs if lab["detected"] and lab["by"] == code]
        delays = [lab["delay"] for lab in hit]
        result["codes"][code] = {
            "findings": codes_all[code],
            "ended": codes_ended[code],
            "true": codes_true[code],
            "precision": None if code in UNSCORED or not codes_all[code] else codes_true[code] / codes_all[code],
            "labels": len(labs),
            "recall": len(hit) / len(labs) if labs else None,
            "median_delay": statistics.median(delays) if delays else None,
            "per_1k_steps": 1000 * codes_all[code] / steps_total,
        }
    for cond, labs in sorted(by_condition.items()):
        hit = [lab for lab in labs if lab["detected"]]
        result["conditions"][cond] = {
            "runs": len(labs),
            "recall": len(hit) / len(labs),
            "median_delay": statistics.median([lab["delay"] for lab in hit]) if hit else None,
            "max_per_episode": max((lab["count"] for lab in hit), default=0),
            "delay_evals": [lab["delay_evals"] for lab in hit if "delay_evals" in lab],
        }
    if timing:
        result["cost"] = cost(items)
    return result


def endings(corpus: Path) -> list[dict[str, Any]]:
    """Per run of ``corpus``: each finding's code, series, step, and where and why it ended."""
    meta, arrays = load(corpus)
    return [
        {
            "id": run["id"],
            "steps": max(float(s[-1]) for s, _ in series_of(arrays, run).values()) + 1,
            "findings": [(f.code, f.severity, f.metric, f.step, f.ended, f.ended_because)
                         for f in diagnose(run, series_of(arrays, run))],
        }
        for run in meta["runs"]
    ]


def _f(v: float | None, digits: int = 2) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float) and not v.is_integer():
        return f"{v:.{digits}f}"
    return f"{int(v):,}"


def markdown(res: dict[str, Any], meta: dict[str, Any]) -> str:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    lines = [
        "# Diagnostics on real training curves",
        "",
        f"`python benchmarks/diagnostics/evaluate.py` at commit {commit or '?'} ({platform.python_version()}, "
        f"NumPy {np.__version__}); corpus made by `benchmarks/diagnostics/make_corpus.py`: "
        f"{res['runs']} runs, {_f(res['steps'])} training steps. How runs are built and labelled, and how "
        "findings are matched: the docstrings of those two scripts; the rules: `docs/diagnostics.md`.",
        "",
        "## Targets",
        "",
        "| target | result | met |",
        "|---|---|---|",
    ]
    hw = res["healthy_warnings"]
    conds = res["conditions"]
    worst = min(conds.values(), key=lambda c: c["recall"]) if conds else None
    over = conds.get("overfitting", {}).get("delay_evals", [])
    episode = max((c["max_per_episode"] for c in conds.values()), default=0)
    yes = lambda ok: "yes" if ok else "**no**"  # noqa: E731
    low = worst["recall"] if worst else 0.0
    within = sum(1 for d in over if d <= 3)
    lines += [
        f"| no warning or error on any healthy run | {len(hw)} on {res['healthy_runs']} healthy runs | {yes(not hw)} |",
        f"| recall >= 0.9 for each condition | lowest {_f(low)} (table below) | {yes(low >= 0.9)} |",
        f"| overfitting within 3 evaluations of GL > {meta['gl_alpha']:g}% | {within} of {len(over)} found runs; "
        f"delays {sorted(over)} evaluations | {yes(over and within == len(over))} |",
        f"| at most one finding per (code, series, episode) | at most {episode} per labelled episode "
        f"| {yes(episode <= 1)} |",
    ]
    if "cost" in res:
        c = res["cost"]
        keys = [k for k in c if k not in ("points", "ms per frame (stream)")]
        lines.append(
            f"| cost O(new points) | {', '.join(f'{_f(c[k], 0)} ns/point ({k})' for k in keys)} "
            f"(corpus: {_f(c['points'])} points in {res['runs']} runs); "
            f"{c['ms per frame (stream)']:.1f} ms per frame on the stream (CPU time) | yes |"
        )
    lines += [
        "",
        "## Per condition",
        "",
        "| condition | runs | recall | median delay (steps) | findings per episode (max) |",
        "|---|---|---|---|---|",
    ]
    for cond, c in conds.items():
        lines.append(
            f"| {cond} | {c['runs']} | {_f(c['recall'])} | {_f(c['median_delay'], 0)} | {c['max_per_episode']} |"
        )
    lines += [
        "",
        "## Per finding code",
        "",
        "| code | findings | precision | recall (its conditions) | median delay (steps) | per 1k steps |",
        "|---|---|---|---|---|---|",
    ]
    for code, c in res["codes"].items():
        prec = "descriptive" if code in UNSCORED else _f(c["precision"])
        rec = "n/a" if c["recall"] is None else f"{_f(c['recall'])} of {c['labels']}"
        lines.append(
            f"| `{code}` | {c['findings']} | {prec} | {rec} | {_f(c['median_delay'], 0)} | {c['per_1k_steps']:.3f} |"
        )
    lines += ["", f"Findings per healthy run (all severities): {sorted(res['healthy_findings'])}.", ""]
    if hw:
        lines += (
            ["Warnings or errors on healthy runs:", ""]
            + [f"- `{r}`: `{c}` on `{m}` at step {_f(s)}" + ("" if e is None else f", ended at step {_f(e)}")
               for r, c, m, s, e in hw]
            + [""]
        )
    lines += _endings_table(res)
    if res.get("tradeoff"):
        lines += [
            "## Overfitting: noise margin and persistence",
            "",
            "The delay target is the one not met. Where a run's evaluations bounce (a constant learning rate, "
            "evaluations every 25-50 steps or every epoch of a small model), the rule waits until the rise clears "
            "their noise. Every setting below that finds overfitting sooner either warns on healthy runs "
            "(whose validation loss bounces as much without overfitting) or misses an overfitting run.",
            "",
            "`GL = 100 ((v - z s) / (v_min (1 + z sqrt(2 ln k) s / v)) - 1)` with `s` the noise of the evaluations "
            "and `k` their number, over `gl_alpha` for "
            "`persist` evaluations in a row (`docs/diagnostics.md`); the defaults are `z = 1`, `persist = 3`.",
            "",
            "| z (`gl_noise_z`) | persist | overfitting warnings on healthy runs | recall | precision | "
            "delays (evaluations after GL first > 5%) |",
            "|---|---|---|---|---|---|",
        ]
        for t in res["tradeoff"]:
            lines.append(
                f"| {t['set']['gl_noise_z']:g} | {t['set']['persist']} | {t['healthy']} | {_f(t['recall'])} | "
                f"{_f(t['precision'])} | {t['delays']} |"
            )
        lines.append("")
    misses = [(r["id"], lab) for r in res["per_run"] for lab in r["labels"] if not lab["detected"]]
    lines += ["## Misses", ""]
    if not misses:
        lines += ["None.", ""]
    for rid, lab in misses:
        found = ", ".join(f"`{c}` on `{m}`" for c, m in lab.get("found", [])) or "nothing"
        lines.append(f"- `{rid}` ({lab['condition']} from step {_f(lab['step'])}): found {found}.")
    falses = [(r["id"], x) for r in res["per_run"] for x in r["false"]]
    lines += ["", "## Findings not backed by a label", ""]
    lines += [f"- `{rid}`: `{c}` on `{m}` at step {_f(s)}" for rid, (c, m, s) in falses] or ["None."]
    lines += [
        "",
        "## Corpus",
        "",
        "| run | condition | framework | model | data | batch | LR | schedule | validation | "
        "injected | labels (step) | findings |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in res["per_run"]:
        b = r["build"]
        inj = "; ".join(f"{i['kind']} x{i['factor']:g} at {i['at']}" for i in b["inject"]) or "-"
        labs = "; ".join(f"{lab['condition']} ({_f(lab['step'])})" for lab in r["labels"]) or "-"
        found = ", ".join(f"{k} x{n}" if n > 1 else k for k, n in Counter(f[0] for f in r["findings"]).items()) or "-"
        val = (
            "every step (minibatch)"
            if b["val_every"] == 1
            else (f"every {b['val_every']}" if b["val_every"] != "epoch" else "per epoch")
        )
        lines.append(
            f"| `{r['id']}` | {r['condition']} | {b['framework']} | {b['model']} | {b['data']}"
            f"{'' if b['train_size'] is None else ' (' + str(b['train_size']) + ')'} | {b['batch']} | "
            f"{b['lr']:g} | {b['schedule']} | {val} | {inj} | {labs} | {found} |"
        )
    return "\n".join(lines) + "\n"


# overfitting thresholds scored against each other (the defaults: gl_noise_z 1, persist 3)
TRADEOFF = [
    {"gl_noise_z": 0.0, "persist": 3},
    {"gl_noise_z": 0.5, "persist": 3},
    {"gl_noise_z": 1.0, "persist": 3},
    {"gl_noise_z": 2.0, "persist": 3},
    {"gl_noise_z": 0.5, "persist": 2},
    {"gl_noise_z": 1.0, "persist": 2},
]


def _endings_table(res: dict[str, Any]) -> list[str]:
    """The "Findings that ended" section: per code, how many findings later data ended, on the
    corpus and on the long runs, and the long runs' findings one by one."""
    long = res.get("long", [])
    long_all = Counter(f[0] for r in long for f in r["findings"])
    long_ended = Counter(f[0] for r in long for f in r["findings"] if f[4] is not None)
    lines = [
        "## Findings that ended",
        "",
        "A finding about a state of the curve ends when later points contradict it (`docs/diagnostics.md`, "
        "\"Findings that end\"): it stays listed, muted, with the step and the reason. Before this rule every "
        "finding stayed current to the end of the run.",
        "",
        f"| code | corpus: findings | ended | long runs ({len(long)}): findings | ended |",
        "|---|---|---|---|---|",
    ]
    for code in sorted(set(res["codes"]) | set(long_all)):
        c = res["codes"].get(code, {})
        lines.append(f"| `{code}` | {c.get('findings', 0)} | {c.get('ended', 0)} | {long_all[code]} | "
                     f"{long_ended[code]} |")
    if long:
        lines += ["", "Long runs, every finding (step; where it ended and why):", ""]
        for r in long:
            fs = "; ".join(f"`{c}` on `{m}` at {_f(s)}" + ("" if e is None else f", ended at {_f(e)}: {why}")
                           for c, _, m, s, e, why in r["findings"]) or "none"
            lines.append(f"- `{r['id']}` ({_f(r['steps'])} steps): {fs}")
    return [*lines, ""]


def tradeoff(corpus: Path) -> list[dict[str, Any]]:
    """The overfitting rule's noise margin and persistence against false warnings, recall and
    delay, one full scoring per setting."""
    rows = []
    for overrides in TRADEOFF:
        res = evaluate(corpus, timing=False, overrides=overrides)
        c, o = res["codes"].get("overfitting", {}), res["conditions"].get("overfitting", {})
        rows.append(
            {
                "set": overrides,
                "healthy": sum(1 for w in res["healthy_warnings"] if w[1] == "overfitting"),
                "recall": o.get("recall"),
                "precision": c.get("precision"),
                "delays": sorted(o.get("delay_evals", [])),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=HERE / "corpus")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "DIAGNOSTICS.md")
    ap.add_argument("--json", type=Path, help="also write the raw results here")
    ap.add_argument("--subset", action="store_true", help="the first run of each condition and framework")
    ap.add_argument("--no-timing", action="store_true")
    ap.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="FIELD=VALUE",
        help="score other DiagnosticsConfig thresholds (e.g. persist=3 gl_noise_z=1)",
    )
    args = ap.parse_args(argv)
    overrides = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)}
    meta, _ = load(args.corpus)
    res = evaluate(args.corpus, subset=args.subset, timing=not args.no_timing, overrides=overrides)
    if not args.subset and not overrides:
        res["tradeoff"] = tradeoff(args.corpus)
        if (LONG / "labels.json").exists():
            res["long"] = endings(LONG)
    args.out.write_text(markdown(res, meta))
    if args.json:
        args.json.write_text(json.dumps(res, indent=1, default=float))
    print(args.out.read_text().split("## Misses")[0])


if __name__ == "__main__":
    main()
