"""Runs every detector over a growing history, incrementally, and collects the findings.

:meth:`Diagnostics.update` takes a store snapshot (``name -> MetricHistory``) and feeds each
detector only the points appended since the previous call, so a frame costs O(new points),
about 20 ns per point on a typical loop (:attr:`Diagnostics.examined` counts the points read,
for tests). Detectors take at most ``SLICE`` points of a series at a time, which bounds their
NumPy temporaries (a few MB) whatever the backlog; with a ``budget`` a call reads at most that
many points per series and :attr:`Diagnostics.pending` says what is left, so a live view's
frames stay short while diagnostics catch up over the next frames. The findings do not depend
on how the points arrive: in one call, in many, or budgeted. Which detectors watch a
series follows from its name: loss-like (``loss``, ``mse``, ``nll``...) or not, validation
(``val``, ``eval``, ``test``...) or training, per-epoch (``..._epoch``) or per-step.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, replace

from .._core.grouping import family_of, higher_is_better
from .._model import DEFAULT_RUN, MetricHistory, as_runs
from .findings import Finding, fmt, is_loss_like, is_validation
from .generalization import Generalization
from .plateau import PlateauTracker
from .series import BlockTrends, Divergence, InitialLoss, negative_rule, nonfinite_rule

__all__ = ["SLICE", "Diagnostics", "DiagnosticsConfig"]

SLICE = 1 << 17  # points of one series fed to the detectors at once (bounds their temporaries)


@dataclass(frozen=True)
class DiagnosticsConfig:
    """Thresholds of every rule; the defaults and their sources are in the detector modules."""

    num_classes: int | None = None  # enables the initial cross-entropy check (ln C)
    initial_loss_band: tuple[float, float] = (0.5, 1.5)  # times ln C
    clear_after: int = 20  # clean points that end a non-finite / negative episode
    divergence_ratio: float = 4.0  # fastai lr_find
    divergence_beta: float = 0.98  # fastai AvgSmoothLoss
    divergence_warmup: int = 10
    plateau_threshold: float = 1e-4  # torch ReduceLROnPlateau defaults
    plateau_threshold_mode: str = "rel"
    plateau_patience: int = 10
    plateau_cooldown: int = 0
    gl_alpha: float = 5.0  # Prechelt GL, percent
    train_fall: float = 0.01  # AUTOTRAINER
    gap_ratio: float = 2.0
    persist: int = 3  # evaluations in a row for overfitting / gap
    train_window: int = 20  # training points averaged at a validation step
    block: int = 100  # points per block for noise / learning-rate / convergence rules
    noise_ratio: float = 0.5
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
        for name in ("plateau_threshold", "train_fall"):
            _check_float(name, getattr(self, name), positive=False)
        if self.divergence_ratio <= 1.0:
            raise ValueError(f"divergence_ratio must be > 1 (times the best smoothed loss), got {self.divergence_ratio!r}")
        if not 0.0 <= self.divergence_beta < 1.0:
            raise ValueError(f"divergence_beta must be in [0, 1), got {self.divergence_beta!r}")
        if self.plateau_threshold_mode not in ("rel", "abs"):
            raise ValueError(f"plateau_threshold_mode must be 'rel' or 'abs', got {self.plateau_threshold_mode!r}")
        band = self.initial_loss_band
        if not (isinstance(band, tuple) and len(band) == 2 and all(_is_real(b) and math.isfinite(b) for b in band)
                and 0 < band[0] < band[1]):
            raise ValueError(f"initial_loss_band must be (low, high) with 0 < low < high, got {band!r}")


_COUNTS = {"clear_after": 1, "divergence_warmup": 0, "plateau_patience": 0, "plateau_cooldown": 0, "persist": 1,
           "train_window": 1, "early_blocks": 1}  # int fields of DiagnosticsConfig and their least value
_POSITIVE = ("divergence_ratio", "gl_alpha", "gap_ratio", "noise_ratio", "converged_rel")


def _is_int(v: object) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_real(v: object) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _check_float(name: str, v: object, positive: bool) -> None:
    if not (_is_real(v) and math.isfinite(v) and (v > 0 if positive else v >= 0)):
        raise ValueError(f"{name} must be a finite number {'> 0' if positive else '>= 0'}, got {v!r}")


class _Series:
    """The detectors watching one metric, and how far they have read."""

    def __init__(self, name: str, cfg: DiagnosticsConfig, order: int) -> None:
        self.seen = 0
        self.order = order  # findings at one step are listed in the order the series were first seen
        loss, val = is_loss_like(name), is_validation(name)
        self.detectors: list = [nonfinite_rule(cfg.clear_after)]
        if loss:
            self.detectors.append(negative_rule(cfg.clear_after))
        if loss and not val:
            self.detectors.append(Divergence(cfg.divergence_ratio, cfg.divergence_beta, cfg.divergence_warmup))
            if cfg.num_classes is not None:
                self.detectors.append(InitialLoss(cfg.num_classes, cfg.initial_loss_band))
            self.detectors.append(BlockTrends(cfg.block, cfg.noise_ratio, cfg.early_blocks, cfg.converged_rel))
        self.plateau = None
        if val or name.lower().endswith("epoch"):
            self.plateau = PlateauTracker("max" if higher_is_better(name) else "min", cfg.plateau_threshold,
                                          cfg.plateau_threshold_mode, cfg.plateau_patience, cfg.plateau_cooldown,
                                          keep_reductions=False)
        self.pair = (Generalization(cfg.gl_alpha, cfg.train_fall, cfg.gap_ratio, cfg.persist, cfg.train_window)
                     if loss and val else None)


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
        self.pending = 0
        for run, metrics in as_runs(data).items():
            found = self._update_run(run, metrics, budget)
            new += found if run == DEFAULT_RUN else [replace(f, run=run) for f in found]
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

    def _update_run(self, run: str, data: Mapping[str, MetricHistory],
                    budget: int | None) -> list[Finding]:
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
                if st.plateau is not None:
                    self.examined += b - a
                    new += self._plateau(name, st.plateau, hist, a, b)
        for name, (start, stop) in spans.items():  # pairs last: the training partner is up to date
            st = self._series[run, name]
            partner = self._partner(name, data)
            if st.pair is None or partner is None:
                continue
            hist, before = data[name], st.pair.examined
            for a in range(start, stop, SLICE):
                b = min(a + SLICE, stop)
                val = MetricHistory(hist.steps[:b], hist.values[:b], hist.wall_time[:b])
                new += st.pair.feed(name, partner, val, data[partner], a)
            self.examined += st.pair.examined - before
        return new

    def _partner(self, name: str, data: Mapping[str, MetricHistory]) -> str | None:
        """The training series of a validation metric: same family, not validation."""
        fam = family_of(name)
        return next((m for m in data if not is_validation(m) and family_of(m) == fam), None)

    def _plateau(self, name: str, tracker: PlateauTracker, hist: MetricHistory, start: int, stop: int) -> list[Finding]:
        out = []
        thr = f"{tracker.threshold:.2%} (relative)" if tracker.threshold_mode == "rel" else fmt(tracker.threshold)
        for i, best, best_index in tracker.feed(hist.values[start:stop]):
            s = float(hist.steps[i])
            best_step = float(hist.steps[best_index]) if best_index >= 0 else float("nan")
            out.append(Finding(
                "plateau", "info", name, s,
                f"{name} has not improved on its best ({fmt(best)} at step {fmt(best_step)}) by more "
                f"than {thr} for {tracker.patience + 1} evaluations (step {fmt(s)}): a plateau.",
                "ReduceLROnPlateau would lower the learning rate now: lower it (e.g. 10x), or stop if it stays flat.",
                {"best": best, "best_step": best_step, "patience": tracker.patience},
            ))
        return out


def _label_default_run(findings: list[Finding]) -> list[Finding]:
    """``findings`` with the default run's (``run`` None) named ``DEFAULT_RUN``."""
    return [replace(f, run=DEFAULT_RUN) if f.run is None else f for f in findings]
