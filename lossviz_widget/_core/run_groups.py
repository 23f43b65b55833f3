"""Run groups: runs that differ only by seed (say) drawn as one line with a shaded band.

No widgets here (NumPy only): this computes, per group and metric, the statistic line and
the band, downsampled for a frame, and puts them in the frame's panels as
:class:`BandFrame` s; :mod:`lossviz_widget.figures` (bqplot) and
:mod:`lossviz_widget.images` (matplotlib) draw them.

**Which runs form a group** (:func:`group_members`): with a regular expression, the part of a
run's name it matches is what differs between the members, and runs whose names are equal
once that part is removed form one group: ``r"seed=\\d+"`` puts ``"lr=0.1 seed=0"`` and
``"lr=0.1 seed=1"`` in group ``"lr=0.1"``. Runs it does not match stay on their own. With a
function ``(name, params) -> key`` (``params``: the run's tracking-server params, ``{}``
for runs logged here), runs with equal keys form a group; ``None`` leaves a run alone.

**Aggregation** (:func:`aggregate`), on the step axis:

* the grid is the union of the members' steps;
* a member counts at the steps within its own range (first to last step) only: outside
  it, it is left out (so a seed that is still running, or stopped early, neither drags the
  line at the end nor is extrapolated); :attr:`Aggregate.count` says how many members
  each step has;
* inside its range a member's value at a step it logged is that value (its last one when
  it logged several at that step), and at a step it did not log, linear interpolation
  between its neighbouring points;
* ``stat`` ``"mean"`` or ``"median"``; ``band`` ``"minmax"`` (the members' smallest and
  largest value) or ``"std"`` (the statistic ± the sample standard deviation, ``ddof=1``;
  zero width with one member);
* a step where a member's value is NaN or ±inf is NaN in the line and the band (a gap):
  a diverged seed is shown, not averaged away.

**Drawing**: the statistic line and both band edges are smoothed like other lines (the
plot's smoothing on the aggregated arrays) and downsampled with the same per-bucket
min/max rule (:func:`~lossviz_widget.downsample.minmax_indices`): the band keeps the
buckets' lowest low and highest high, so a spike in one seed stays visible. Groups are
drawn on the ``step`` x axis only; with a time axis the panels say so and show the
member runs.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from .._model import MetricHistory
from .downsample import minmax_indices
from .frame import Frame, PanelFrame, palette_color
from .grouping import family_of
from .settings import ViewSettings
from .smoothing import smooth

__all__ = ["BANDS", "STATS", "Aggregate", "BandFrame", "GroupBuilder", "GroupSpec", "aggregate", "group_members"]

STATS = ("mean", "median")
BANDS = ("minmax", "std")
KeyFunction = Callable[[str, Mapping[str, str]], object]
BAND_OPACITY = 0.2
_STRIP = " \t_-/,;:|"


@dataclass(frozen=True)
class GroupSpec:
    """How runs are grouped and summarised (see :meth:`LossPlot.group_runs`)."""

    by: re.Pattern[str] | KeyFunction
    stat: str = "mean"
    band: str = "minmax"
    show_members: bool = False

    @classmethod
    def make(cls, by: object, stat: str = "mean", band: str = "minmax", show_members: bool = False) -> GroupSpec:
        """A checked spec: ``by`` a regex (str or compiled) or a callable; raises for anything else."""
        if isinstance(by, str):
            try:
                by = re.compile(by)
            except re.error as exc:
                raise ValueError(f"group_runs: not a regular expression: {by!r} ({exc})") from None
        if not (isinstance(by, re.Pattern) or callable(by)):
            raise TypeError(f"group_runs needs a regex or a function (name, params) -> key, got {type(by).__name__}")
        if stat not in STATS:
            raise ValueError(f"stat must be one of {STATS}, got {stat!r}")
        if band not in BANDS:
            raise ValueError(f"band must be one of {BANDS}, got {band!r}")
        if not isinstance(show_members, bool):
            raise TypeError(f"show_members must be True or False, got {show_members!r}")
        return cls(by, stat, band, show_members)


def _key(spec: GroupSpec, name: str, params: Mapping[str, str]) -> str | None:
    if isinstance(spec.by, re.Pattern):
        m = spec.by.search(name)
        if m is None:
            return None
        rest = (name[: m.start()].rstrip(_STRIP) + " " + name[m.end():].lstrip(_STRIP)).strip()
        return rest or spec.by.pattern
    key = spec.by(name, params)
    return None if key is None else str(key)


def group_members(runs: Sequence[str], spec: GroupSpec,
                  params: Mapping[str, Mapping[str, str]] | None = None) -> dict[str, list[str]]:
    """Group name -> member runs (in ``runs`` order), groups in order of their first member."""
    groups: dict[str, list[str]] = {}
    for run in runs:
        key = _key(spec, run, (params or {}).get(run, {}))
        if key is not None:
            groups.setdefault(key, []).append(run)
    return groups


@dataclass
class Aggregate:
    """One group's metric on the union of its members' steps."""

    steps: np.ndarray
    center: np.ndarray  # the mean or median
    lo: np.ndarray  # band, lower edge
    hi: np.ndarray  # band, upper edge
    count: np.ndarray  # members whose range covers each step


def _last_per_step(steps: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A member's points with one value per step: the last one logged there (steps are non-decreasing)."""
    if len(steps) < 2:
        return steps, values
    last = np.empty(len(steps), dtype=bool)
    np.not_equal(steps[1:], steps[:-1], out=last[:-1])
    last[-1] = True
    return steps[last], values[last]


def _on_grid(grid: np.ndarray, steps: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A member's values on ``grid`` and where its range covers it (see the module docstring)."""
    covered = (grid >= steps[0]) & (grid <= steps[-1])
    idx = np.minimum(np.searchsorted(steps, grid), len(steps) - 1)
    exact = steps[idx] == grid
    out = np.interp(grid, steps, values)
    out[exact] = values[idx[exact]]  # np.interp would give NaN beside a NaN neighbour
    return out, covered


def aggregate(members: Sequence[tuple[np.ndarray, np.ndarray]], stat: str = "mean", band: str = "minmax") -> Aggregate:
    """The group line and band of members given as ``(steps, values)`` (steps non-decreasing, non-empty)."""
    if stat not in STATS or band not in BANDS:
        raise ValueError(f"stat must be one of {STATS} and band one of {BANDS}, got {stat!r}, {band!r}")
    pairs = [_last_per_step(np.asarray(s, dtype=np.float64), np.asarray(v, dtype=np.float64)) for s, v in members]
    pairs = [(s, v) for s, v in pairs if len(s)]
    if not pairs:
        empty = np.empty(0)
        return Aggregate(empty, empty, empty, empty, np.empty(0, dtype=np.int64))
    grid = pairs[0][0] if len(pairs) == 1 else np.unique(np.concatenate([s for s, _ in pairs]))
    on_grid = [_on_grid(grid, s, v) for s, v in pairs]
    values = np.stack([v for v, _ in on_grid])
    covered = np.stack([c for _, c in on_grid])
    count = covered.sum(axis=0)
    bad = (covered & ~np.isfinite(values)).any(axis=0)
    inside = np.where(covered & ~bad, values, np.nan)  # (bad steps are NaN in the end anyway)
    with warnings.catch_warnings():  # all-NaN steps (a gap) are expected: NaN is the answer there
        warnings.simplefilter("ignore", RuntimeWarning)
        center = np.nanmean(inside, axis=0) if stat == "mean" else np.nanmedian(inside, axis=0)
        if band == "minmax":
            lo, hi = np.nanmin(inside, axis=0), np.nanmax(inside, axis=0)
        else:
            dev = np.sqrt(np.nansum((inside - np.nanmean(inside, axis=0)) ** 2, axis=0) / np.maximum(count - 1, 1))
            lo, hi = center - dev, center + dev
    for a in (center, lo, hi):
        a[bad] = np.nan
    return Aggregate(grid, center, lo, hi, count)


@dataclass
class BandFrame:
    """One group's metric in a frame: the statistic line and the band around it.

    Forecasts (:mod:`lossviz_widget.forecast`) are drawn the same way: the median forecast as a
    dashed line (``dash``) in the series' colour, and the 80% interval as the band.
    """

    name: str  # the metric
    group: str
    label: str  # legend text: "group: metric (mean of 3, min-max)"
    color: str
    x: np.ndarray
    y: np.ndarray  # the statistic
    band_x: np.ndarray
    band_lo: np.ndarray
    band_hi: np.ndarray
    members: tuple[str, ...] = ()
    changed: bool = True
    dash: str = "solid"  # the line's style (bqplot line_style names)

    @property
    def key(self) -> tuple[str, str]:
        return ("group", self.group + "\x00" + self.name)


@dataclass
class _Cached:
    key: tuple[object, ...]
    band: BandFrame


@dataclass
class GroupBuilder:
    """Adds the groups of a :class:`GroupSpec` to frames, recomputing a group's metric only when a
    member received points or the view settings changed."""

    spec: GroupSpec
    _cache: dict[tuple[str, str], _Cached] = field(default_factory=dict)
    _left_out: frozenset[str] = frozenset()  # the member runs whose lines the last frame left out

    def add_to(self, frame: Frame, data: Mapping[str, Mapping[str, MetricHistory]], settings: ViewSettings,
               params: Mapping[str, Mapping[str, str]]) -> None:
        """Put each group's :class:`BandFrame` s in ``frame``'s panels (panels are added for new families)
        and, unless ``show_members``, take the members' own lines out of them."""
        runs = list(data)
        groups = group_members(runs, self.spec, params)
        panels = {pf.family: pf for pf in frame.panels}
        left_out = frozenset() if self.spec.show_members else frozenset(r for g in groups.values() for r in g)
        for panel in frame.panels:  # the members' lines give way to their group's (their readout rows stay)
            panel.series = [sf for sf in panel.series if sf.run not in left_out]
            panel.changed = panel.changed or left_out != self._left_out
        self._left_out = left_out
        for group, members in groups.items():
            shown = [m for m in members if m not in settings.hidden_runs]  # a run hidden by the user leaves its group
            if not shown:
                continue
            color = palette_color(runs.index(members[0]))
            metrics = list(dict.fromkeys(name for m in shown for name in data[m]))
            for name in metrics:
                family = family_of(name)
                pf = panels.get(family)
                if pf is None:
                    pf = panels[family] = PanelFrame(family, [], settings.log_y_for(family), None)
                    frame.panels.append(pf)
                if settings.x_axis != "step":
                    pf.note = "run groups are drawn on the step axis only"
                    continue
                hists = [data[m][name] for m in shown if name in data[m] and len(data[m][name])]
                band = self._band(group, name, hists, shown, color, settings)
                if band is not None:
                    pf.bands.append(band)
                    pf.changed = pf.changed or band.changed

    def _band(self, group: str, name: str, hists: list[MetricHistory], members: list[str], color: str,
              s: ViewSettings) -> BandFrame | None:
        if not hists:
            return None
        key = (tuple(len(h) for h in hists), tuple(members), s.smoothing, s.smoothing_mode,
               s.log_y_for(family_of(name)), s.max_points, s.x_range, s.x_is_log, color)
        cached = self._cache.get((group, name))
        if cached is not None and cached.key == key:
            cached.band.changed = False
            return cached.band
        agg = aggregate([(h.steps, h.values) for h in hists], self.spec.stat, self.spec.band)
        band = _band_frame(agg, group, name, color, tuple(members), self.spec, s)
        self._cache[group, name] = _Cached(key, band)
        return band


def _visible(steps: np.ndarray, x_range: tuple[float, float] | None) -> slice:
    if x_range is None:
        return slice(0, len(steps))
    i0 = max(0, int(np.searchsorted(steps, x_range[0], side="left")) - 1)
    i1 = min(len(steps), int(np.searchsorted(steps, x_range[1], side="right")) + 1)
    return slice(i0, i1)


def _band_frame(agg: Aggregate, group: str, name: str, color: str, members: tuple[str, ...], spec: GroupSpec,
                s: ViewSettings) -> BandFrame:
    """Smoothed, masked for a log axis, and downsampled (min/max per bucket) for one frame."""
    center, lo, hi = agg.center, agg.lo, agg.hi
    if s.smoothing > 0:
        center, lo, hi = (smooth(a, s.smoothing, s.smoothing_mode, agg.steps) for a in (center, lo, hi))
    if s.log_y_for(family_of(name)):
        center, lo, hi = (np.where(a > 0, a, np.nan) for a in (center, lo, hi))
    view = _visible(agg.steps, s.x_range)
    if s.x_is_log:  # a log x axis has no place for step <= 0
        start = max(view.start, int(np.searchsorted(agg.steps, 0.0, side="right")))
        view = slice(start, max(start, view.stop))
    x, center, lo, hi = agg.steps[view], center[view], lo[view], hi[view]
    idx = minmax_indices(x, center, s.max_points) if len(x) else np.empty(0, dtype=np.int64)
    half = max(4, s.max_points // 2)
    band_idx = (np.union1d(minmax_indices(x, lo, half), minmax_indices(x, hi, half)) if len(x)
                else np.empty(0, dtype=np.int64))
    what = f"{spec.stat} of {len(members)}, {'min-max' if spec.band == 'minmax' else '±1 std'}"
    return BandFrame(name, group, f"{group}: {name} ({what})", color, x[idx], center[idx], x[band_idx], lo[band_idx],
                     hi[band_idx], members)
