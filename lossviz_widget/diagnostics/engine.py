"""Runs every detector over a growing history, incrementally, and collects the findings.

:meth:`Diagnostics.update` takes a store snapshot (``name -> MetricHistory``) and feeds each
detector only the points appended since the previous call, so a frame costs O(new points),
~80 ns per point of CPU time on a long noisy run (``benchmarks/DIAGNOSTICS.md``;
:attr:`Diagnostics.examined` counts the points read, for tests). Detectors take at most ``SLICE``
points of a series at a time, which bounds their
NumPy temporaries (a few MB) whatever the backlog; with a ``budget`` a call reads at most that
many points per series and :attr:`Diagnostics.pending` says what is left, so a live view's
frames stay short while diagnostics catch up over the next frames. The findings do not depend
on how the points arrive: in one call, in many, or budgeted. Which detectors watch a
series follows from its name: loss-like (``loss``, ``mse``, ``nll``...) or not, validation
(``val``, ``eval``, ``test``...) or training, per-epoch (``..._epoch``) or per-step. Validation
and per-epoch series are judged on *evaluations* (:mod:`.evaluations`).
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import SupportsFloat

import numpy as np

from .._core.grouping import family_of, higher_is_better
from .._model import DEFAULT_RUN, MetricHistory, as_runs
from .evaluations import Evaluations
from .findings import Closing, Ended, Finding, fmt, is_loss_like, is_validation
from .generalization import Generalization
from .plateau import PlateauTracker
from .series import BlockTrends, Divergence, InitialLoss, LossSpike, negative_rule, nonfinite_rule, with_grad_norm

__all__ = ["SLICE", "Diagnostics", "DiagnosticsConfig"]

SLICE = 1 << 17  # points of one series fed to the detectors at once (bounds their temporaries)


@dataclass(frozen=True)
class DiagnosticsConfig:
    """Thresholds of every rule; the defaults and their sources are in the detector modules."""

    num_classes: int | None = None  # enables the initial cross-entropy check (ln C)
    initial_loss_band: tuple[float, float] = (0.5, 1.5)  # times ln C
    clear_after: int = 20  # clean points that end a non-finite episode
    divergence_ratio: float = 4.0  # fastai lr_find
    divergence_warmup: int = 10
    spike_ratio: float = 4.0  # times the last ~100 points' spread (largest - median) above their median
    spike_recover: int = 300  # points a spike has to come back before it is reported as not recovered
    val_block: int = 20  # values per evaluation of a validation loss logged at every step
    plateau_threshold: float = 1e-4  # torch ReduceLROnPlateau defaults
    plateau_threshold_mode: str = "rel"
    plateau_patience: int = 10
    plateau_cooldown: int = 0
    gl_alpha: float = 5.0  # Prechelt GL, percent
    gl_noise_z: float = 1.0  # GL compares value - z noise with minimum + z noise (both are noisy)
    train_fall: float = 0.01  # AUTOTRAINER
    gap_ratio: float = 2.0
    persist: int = 3  # evaluations in a row for overfitting / gap
    train_window: int = 20  # training points averaged at a validation step
    block: int = 100  # points per block for noise / learning-rate / convergence rules
    noise_ratio: float = 0.8
    early_blocks: int = 20
    converged_rel: float = 0.005

    def __post_init__(self) -> None:
        # checked here, so a bad value fails where it is given, not on every frame of the render thread
        if self.num_classes is not None and (not _is_int(self.num_classes) or self.num_classes < 2):
            raise ValueError(f"num_classes must be an int >= 2 or None, got {self.num_classes!r}")
        if not _is_int(self.block) or self.block < 10:
            raise ValueError(f"block must be an int >= 10 points, got {self.block!r}")
        for name, least in _COUNTS.items():
            v = getattr(self, name)
            if not _is_int(v) or v < least:
                raise ValueError(f"{name} must be an int >= {least}, got {v!r}")
        for name in _POSITIVE:
            _check_float(name, getattr(self, name), positive=True)
        for name in ("plateau_threshold", "train_fall", "gl_noise_z"):
            _check_float(name, getattr(self, name), positive=False)
        if self.divergence_ratio <= 1.0:
            raise ValueError("divergence_ratio must be > 1 (times the best smoothed loss), "
                             f"got {self.divergence_ratio!r}")
        if self.plateau_threshold_mode not in ("rel", "abs"):
            raise ValueError(f"plateau_threshold_mode must be 'rel' or 'abs', got {self.plateau_threshold_mode!r}")
        band = self.initial_loss_band
        if not (isinstance(band, tuple) and len(band) == 2 and all(_is_real(b) and math.isfinite(b) for b in band)
                and 0 < band[0] < band[1]):
            raise ValueError(f"initial_loss_band must be (low, high) with 0 < low < high, got {band!r}")


_COUNTS = {"clear_after": 1, "divergence_warmup": 0, "plateau_patience": 0, "plateau_cooldown": 0, "persist": 1,
           "train_window": 1, "early_blocks": 1, "spike_recover": 5, "val_block": 1}  # int fields, least value
_POSITIVE = ("divergence_ratio", "gl_alpha", "gap_ratio", "noise_ratio", "converged_rel", "spike_ratio")


def _is_int(v: object) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_real(v: object) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _check_float(name: str, v: object, positive: bool) -> None:
    f = float(v) if isinstance(v, SupportsFloat) and _is_real(v) else math.nan
    if not (math.isfinite(f) and (f > 0 if positive else f >= 0)):
        raise ValueError(f"{name} must be a finite number {'> 0' if positive else '>= 0'}, got {v!r}")


class _Series:
    """The detectors watching one metric, and how far they have read."""

    def __init__(self, name: str, cfg: DiagnosticsConfig, order: int) -> None:
        self.seen = 0
        self.order = order  # findings at one step are listed in the order the series were first seen
        loss, val = is_loss_like(name), is_validation(name)
        self.detectors: list = [nonfinite_rule(cfg.clear_after)]
        if loss:
            self.detectors.append(negative_rule())
        if loss and not val:
            self.detectors.append(Divergence(cfg.divergence_ratio, cfg.divergence_warmup))
            self.detectors.append(LossSpike(cfg.spike_ratio, recover_within=cfg.spike_recover))
            if cfg.num_classes is not None:
                self.detectors.append(InitialLoss(cfg.num_classes, cfg.initial_loss_band))
            self.detectors.append(BlockTrends(cfg.block, cfg.noise_ratio, cfg.early_blocks, cfg.converged_rel,
                                              None if cfg.num_classes is None else math.log(cfg.num_classes)))
        self.plateau = self.evals = None
        if val or name.lower().endswith("epoch"):
            self.plateau = PlateauTracker("max" if higher_is_better(name) else "min", cfg.plateau_threshold,
                                          cfg.plateau_threshold_mode, cfg.plateau_patience, cfg.plateau_cooldown,
                                          keep_reductions=False)
            self.evals = Evaluations(cfg.val_block, each=not val)
        self.best_step = (-1, math.nan)  # the plateau tracker's best evaluation: (index, step)
        self.pair = (Generalization(cfg.gl_alpha, cfg.train_fall, cfg.gap_ratio, cfg.persist, cfg.train_window,
                                    cfg.gl_noise_z) if loss and val else None)


class Diagnostics:
    """Incremental diagnosis of one plot's metrics. Not thread-safe: one caller at a time."""

    def __init__(self, config: DiagnosticsConfig | None = None) -> None:
        self.config = config or DiagnosticsConfig()
        self.findings: list[Finding] = []  # by step; at one step, by series
        self.examined = 0  # points read by all detectors, cumulative
        self.pending = 0  # points the last update left unread (its budget ran out)
        self._series: dict[tuple[str, str], _Series] = {}  # (run, metric) -> its detectors
        self._orders: dict[tuple[str, str], int] = {}  # (run, metric) -> its listing order (kept by forget_run)
        self._several_runs = False  # more than one run has data: default-run findings name their run

    def update(self, data: Mapping[str, Mapping[str, MetricHistory]] | Mapping[str, MetricHistory],
               budget: int | None = None) -> list[Finding]:
        """Read the points appended since the last call; returns the new findings (also kept).

        A finding whose condition stopped holding in these points (the loss started learning,
        a converged loss fell again...) is marked ended, in :attr:`findings` and in what is
        returned (:attr:`Finding.ended`).

        ``data`` is ``run -> metric -> history`` (series are kept apart per run) or one run's
        ``metric -> history``. Findings of runs other than the default one carry ``run``; once
        more than one run has data, the default run's findings carry ``run="default"`` too
        (those found earlier are relabelled), so a listing of several runs names every run.
        ``budget`` (points, >= 1) caps what is read of each series in this call; the rest waits
        for the next calls (:attr:`pending` counts it). Once everything is read the findings are
        the same as without a budget.
        """
        if budget is not None and (not _is_int(budget) or budget < 1):
            raise ValueError(f"budget must be an int >= 1 (points per series) or None, got {budget!r}")
        new: list[Finding] = []
        closed: list[tuple[str, str, Ended]] = []
        self.pending = 0
        for run, metrics in as_runs(data).items():
            found = self._update_run(run, metrics, budget, closed)
            new += found if run == DEFAULT_RUN else [replace(f, run=run) for f in found]
        for run, metric, ended in sorted(closed, key=lambda c: c[2][1]):
            new = _close(new, run, metric, ended) or new
            self.findings = _close(self.findings, run, metric, ended) or self.findings
        if not self._several_runs and len({run for run, _ in self._series}) > 1:
            self._several_runs = True
            self.findings = _label_default_run(self.findings)
        if not new:
            return []
        if self._several_runs:
            new = _label_default_run(new)
        new.sort(key=self._order)  # stable: the order does not depend on how the data arrived
        self.findings = sorted(self.findings + new, key=self._order)
        return new

    def forget_run(self, run: str) -> None:
        """Drop every series of ``run`` and its findings: its points changed other than by
        appending (a step rewind purged some), so the next :meth:`update` reads it from the start.

        The series keep their listing order."""
        for key in [k for k in self._series if k[0] == run]:
            old = self._series.pop(key)
            self._orders[key] = old.order
        self.findings = [f for f in self.findings if (f.run or DEFAULT_RUN) != run]

    def _order(self, f: Finding) -> tuple[float, int]:
        """Where ``f`` is listed: by step; at one step, by when its series was first seen."""
        return f.step, self._series[f.run or DEFAULT_RUN, f.metric].order

    def _update_run(self, run: str, data: Mapping[str, MetricHistory], budget: int | None,
                    closed: list[tuple[str, str, Ended]]) -> list[Finding]:
        """The new findings of one run's new points; the episodes they close go to ``closed``."""
        new: list[Finding] = []
        spans: dict[str, tuple[int, int]] = {}
        for name, hist in data.items():
            st = self._series.get((run, name))
            if st is None:
                order = self._orders.setdefault((run, name), len(self._orders))
                st = self._series[run, name] = _Series(name, self.config, order)
            start, n = st.seen, len(hist)
            if n <= start:
                continue
            stop = n if budget is None else min(n, start + budget)
            self.pending += n - stop
            spans[name] = (start, stop)
            st.seen = stop
            for a in range(start, stop, SLICE):
                b = min(a + SLICE, stop)
                steps, values = hist.steps[:b], hist.values[:b]
                for det in st.detectors:
                    self.examined += b - a
                    new += det.feed(name, steps, values, a)
                    if isinstance(det, Closing):
                        closed += [(run, name, e) for e in det.take_ended()]
        grad = _grad_norm(data)
        if grad is not None:
            new = [with_grad_norm(f, grad, data[grad]) if f.code == "loss_spike" else f for f in new]
        for name, (start, stop) in spans.items():  # evaluations last: the training partner is up to date
            st = self._series[run, name]
            if st.evals is None:
                continue
            partner = self._partner(name, data)
            hist = data[name]
            for a in range(start, stop, SLICE):
                b = min(a + SLICE, stop)
                steps, values, se = st.evals.take(hist, b, None if partner is None else data[partner])
                if not len(steps):
                    continue
                self.examined += b - a
                if st.plateau is not None:
                    per = ("evaluations" if st.evals.mode == "each"
                           else f"evaluations (means of {st.evals.block} values)")
                    new += self._plateau(name, st, st.plateau, per, steps, values)
                if st.pair is not None and partner is not None:
                    before = st.pair.examined
                    new += st.pair.feed(name, partner, MetricHistory(steps, values, steps), data[partner], 0, se)
                    closed += [(run, name, e) for e in st.pair.take_ended()]
                    self.examined += st.pair.examined - before
        return new

    def _partner(self, name: str, data: Mapping[str, MetricHistory]) -> str | None:
        """The training series of a validation metric: same family, not validation."""
        fam = family_of(name)
        return next((m for m in data if not is_validation(m) and family_of(m) == fam), None)

    def _plateau(self, name: str, st: _Series, tracker: PlateauTracker, per: str, steps: np.ndarray,
                 values: np.ndarray) -> list[Finding]:
        """ReduceLROnPlateau over new evaluations (``per`` says what they are); a finding where an
        episode opens."""
        base = tracker.count
        out = []
        thr = f"{tracker.threshold:.2%} (relative)" if tracker.threshold_mode == "rel" else fmt(tracker.threshold)
        for i, best, best_index in tracker.feed(values):
            s = float(steps[i - base])
            best_step = float(steps[best_index - base]) if best_index >= base else st.best_step[1]
            out.append(Finding(
                "plateau", "info", name, s,
                f"{name} has not improved on its best ({fmt(best)} at step {fmt(best_step)}) by more "
                f"than {thr} for {tracker.patience + 1} {per} (step {fmt(s)}): a plateau.",
                "ReduceLROnPlateau would lower the learning rate now: lower it (e.g. 10x), or stop if it stays flat.",
                {"best": best, "best_step": best_step, "patience": tracker.patience},
            ))
        if tracker.best_index >= base:
            st.best_step = (tracker.best_index, float(steps[tracker.best_index - base]))
        return out


def _grad_norm(data: Mapping[str, MetricHistory]) -> str | None:
    """A gradient-norm series of the run (``grad_norm``, ``train/grad_norm``, ``gradient_norm``,
    ``update_norm``...), if one is logged."""
    for name in data:
        tokens = set(re.split(r"[/_\-.:\s]+", name.lower()))
        if "norm" in tokens and tokens & {"grad", "gradient", "grads", "update"}:
            return name
    return None


def _close(findings: list[Finding], run: str, metric: str, ended: Ended) -> list[Finding] | None:
    """``findings`` with the open findings that ``ended`` closes marked ended (those of its run,
    series and code found at or before the step where it ended), or None if none is among them."""
    code, step, why = ended
    hit = [i for i, f in enumerate(findings) if f.code == code and f.metric == metric and f.ended is None
           and f.step <= step and (f.run or DEFAULT_RUN) == run]
    if not hit:
        return None
    out = list(findings)
    for i in hit:
        out[i] = replace(out[i], ended=step, ended_because=why)
    return out


def _label_default_run(findings: list[Finding]) -> list[Finding]:
    """``findings`` with the default run's (``run`` None) named ``DEFAULT_RUN``."""
    return [replace(f, run=DEFAULT_RUN) if f.run is None else f for f in findings]
