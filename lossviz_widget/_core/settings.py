"""View settings, declared once.

:class:`ViewSettings` is the single place a view setting is defined: its type, default, help
text, whether data files keep it, and its check. Everything else is derived from it:

* the widget's traits (``LossPlot.smoothing`` ...) and constructor keywords (:mod:`lossviz_widget._ui.traits`),
* the settings kept in data files and log headers, and restored by ``LossPlot.load`` (:data:`SAVED`),
* what the frame builder reads (:class:`~lossviz_widget._core.frame.FrameBuilder` takes the dataclass).

Adding a view setting is one field here plus its test; ``tests/core/test_settings.py`` checks that
every field has a trait, and that saved settings round-trip through every data file format.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import Field, dataclass, field, fields, replace
from typing import Any

from .grouping import best_fits, family_of, log_y_fits
from .smoothing import SMOOTHING_MODES
from .values import check_encodable

__all__ = ["SAVED", "X_AXIS_MODES", "Setting", "ViewSettings", "check_run"]

#: What the x axis shows: steps, wall-clock time (a date axis), or time since the first value.
X_AXIS_MODES = ("step", "wall_time", "relative_time")


@dataclass(frozen=True)
class Setting:
    """How a :class:`ViewSettings` field is exposed (kept in the field's metadata)."""

    help: str
    saved: bool = False  # kept in data files and log headers (run-independent look of the plot)
    choices: tuple[str, ...] | None = None  # the allowed values of a string setting
    check: Callable[[Any], Any] | None = None  # returns the normalized value or raises ValueError


#: Values of ``ViewSettings.renderer``.
RENDERERS = ("svg", "canvas")


def _setting(default: Any, help: str, **kwargs: Any) -> Any:
    if isinstance(default, (frozenset, tuple)):
        return field(default_factory=lambda: default, metadata={"setting": Setting(help, **kwargs)})
    return field(default=default, metadata={"setting": Setting(help, **kwargs)})


def check_run(name: Any) -> str:
    """Run names are non-empty strings (anything else is escaped where shown)."""
    if not isinstance(name, str):
        raise TypeError(f"run names must be str, got {type(name).__name__} {name!r}")
    if not name:
        raise ValueError("run name must not be empty")
    return check_encodable("run", str(name))


def _smoothing(v: float) -> float:
    if not 0.0 <= v < 1.0:
        raise ValueError(f"smoothing must be in [0, 1), got {v!r}")
    return v


def _fps(v: float) -> float:
    if not 0.0 < v <= 60.0:
        raise ValueError(f"fps must be in (0, 60], got {v!r}")
    return v


def _max_points(v: int) -> int:
    if not 16 <= v <= 1_000_000:
        raise ValueError(f"max_points must be in [16, 1000000], got {v!r}")
    return v


def _plot_width(v: int) -> int:
    if not (v == 0 or 8 <= v <= 100_000):
        raise ValueError(f"plot_width must be 0 (not known) or in [8, 100000] pixels, got {v!r}")
    return v


def _x_range(v: tuple[float, float] | None) -> tuple[float, float] | None:
    if v is not None and not (math.isfinite(v[0]) and math.isfinite(v[1]) and v[0] < v[1]):
        raise ValueError(f"x_range must be (low, high) with finite low < high, or None; got {v!r}")
    return None if v is None else (float(v[0]), float(v[1]))


def _runs(v: Any) -> frozenset[str]:
    return frozenset(check_run(name) for name in v)


def _names(what: str) -> Callable[[Any], frozenset[str]]:
    def check(v: Any) -> frozenset[str]:
        if isinstance(v, str) or not all(isinstance(name, str) and name for name in v):
            raise ValueError(f"{what} must be a collection of names, not one string; got {v!r}")
        return frozenset(v)

    return check


def _panel_height(v: int) -> int:
    if not 120 <= v <= 2000:
        raise ValueError(f"panel_height must be in [120, 2000] pixels, got {v!r}")
    return v


@dataclass(frozen=True)
class ViewSettings:
    """How the curves are drawn: everything a frame depends on besides the data."""

    smoothing: float = _setting(0.6, "TensorBoard EMA weight in [0, 1); 0 draws the raw data only.",
                                saved=True, check=_smoothing)
    smoothing_mode: str = _setting("ema", "ema (TensorBoard), time_ema (decay follows the x spacing), "
                                   "moving_average or gaussian (centered windows of (1+s)/(1-s) points).",
                                   saved=True, choices=SMOOTHING_MODES)
    log_y: bool = _setting(False, "Logarithmic y axes on the panels of log_y_panels (by default every panel but "
                                  "accuracy-like and learning-rate ones); values <= 0 are drawn as gaps.", saved=True)
    log_y_panels: frozenset[str] = _setting(
        frozenset(), "Panels (metric families, e.g. 'loss', 'learning_rate') that log_y makes logarithmic; empty: "
                     "every panel but accuracy-like (higher is better) and learning-rate ones.", saved=True,
        check=_names("log_y_panels"))
    best_metrics: frozenset[str] = _setting(
        frozenset(), "Metrics (names or families) whose readout shows a best value; empty: losses, errors and "
                     "accuracy-like metrics (not learning rates, norms...).", saved=True, check=_names("best_metrics"))
    x_log: bool = _setting(False, "Logarithmic x axis (step and relative time; wall time stays linear). Points at "
                                  "x <= 0, such as step 0, are left out and the panel title says how many.", saved=True)
    ignore_outliers: bool = _setting(False, "Fit y axes to the 5th-95th percentile of the data.", saved=True)
    x_axis: str = _setting("step", "x axis: step, wall_time or relative_time.", saved=True, choices=X_AXIS_MODES)
    max_points: int = _setting(2000, "Maximum points per line per frame.", saved=True, check=_max_points)
    plot_width: int = _setting(0, "Width in pixels of the widest panel's plot area, as the browser reports it "
                               "(when the kernel is idle); lines then get at most 2 points per pixel column, "
                               "never more than max_points. 0: not known, max_points.", check=_plot_width)
    renderer: str = _setting("canvas", "How the curves are drawn in the browser: canvas (one canvas per panel, drawn "
                             "by the panel's hover layer from one binary message per frame, in a worker where the "
                             "browser allows one: about a third of svg's browser main-thread work per frame) or "
                             "svg (bqplot's Lines, one SVG path each: the series' lines are among "
                             "LossPlot.figures' marks, with their data). Axes, zoom, legend, hover readout and "
                             "exports are the same with both.", saved=True, choices=RENDERERS)
    panel_height: int = _setting(240, "Height of each panel in pixels (the width follows the output area).",
                                 saved=True, check=_panel_height)
    fps: float = _setting(10.0, "Maximum frames per second sent to the browser.", saved=True, check=_fps)
    x_range: tuple[float, float] | None = _setting(
        None, "Visible x range (zoom) in x axis units: steps, epoch seconds for wall time, the shown unit "
              "for relative time. None: everything.", check=_x_range)
    hidden_runs: frozenset[str] = _setting(frozenset(), "Names of runs not drawn (nor sent).", check=_runs)
    highlight_run: str | None = _setting(None, "The run drawn opaque while the others fade; None: no highlight.")
    forecast: bool = _setting(False, "Forecast losses and accuracies (lossviz_widget.forecast): a band to the horizon, "
                              "the final value, its 80% interval and the ETA to a target in the readout.", saved=True)

    def __post_init__(self) -> None:
        for f in fields(self):
            spec = setting_of(f)
            value = getattr(self, f.name)
            if spec.choices is not None and value not in spec.choices:
                raise ValueError(f"{f.name} must be one of {spec.choices}, got {value!r}")
            if spec.check is not None:
                object.__setattr__(self, f.name, spec.check(value))

    def data_part(self) -> ViewSettings:
        """These settings less the ones that never recompute a line (they only choose, restyle or pace,
        or add forecasts beside the lines)."""
        default = ViewSettings()
        if (self.hidden_runs or self.highlight_run is not None or self.fps != default.fps
                or self.panel_height != default.panel_height or self.forecast or self.renderer != default.renderer):
            return replace(self, hidden_runs=frozenset(), highlight_run=None, fps=default.fps,
                           panel_height=default.panel_height, forecast=False, renderer=default.renderer)
        return self

    def log_y_for(self, family: str) -> bool:
        """Whether the panel of ``family`` asks for a log y axis: ``log_y`` is on and the family is one
        of ``log_y_panels`` (empty: one whose values span orders of magnitude, see
        :func:`~lossviz_widget._core.grouping.log_y_fits`)."""
        if not self.log_y:
            return False
        return family in self.log_y_panels if self.log_y_panels else log_y_fits(family)

    def best_for(self, metric: str) -> bool:
        """Whether the readout shows a best value for ``metric``: it (or its family) is one of
        ``best_metrics``, or with none given one where min/max means something
        (:func:`~lossviz_widget._core.grouping.best_fits`)."""
        if self.best_metrics:
            return metric in self.best_metrics or family_of(metric) in self.best_metrics
        return best_fits(metric)

    @property
    def points_per_line(self) -> int:
        """Points to draw per line: ``max_points``, or 2 per pixel column of a known ``plot_width`` if fewer
        (a min/max bucket per column keeps every spike; more points would land on the same pixels)."""
        return min(self.max_points, max(16, 2 * self.plot_width)) if self.plot_width else self.max_points

    @property
    def x_is_log(self) -> bool:
        """Whether the x axis is logarithmic: ``x_log`` on a step or relative-time axis."""
        return self.x_log and self.x_axis != "wall_time"

    def saved(self) -> dict[str, Any]:
        """The settings that data files keep (:data:`SAVED`), as plain values (a set of names as a sorted list)."""
        return {name: sorted(v) if isinstance(v := getattr(self, name), frozenset) else v for name in SAVED}


def setting_of(f: Field[Any]) -> Setting:
    """The :class:`Setting` of a :class:`ViewSettings` field."""
    spec: Setting = f.metadata["setting"]
    return spec


#: Names of the settings data files keep, in declaration order.
SAVED: tuple[str, ...] = tuple(f.name for f in fields(ViewSettings) if setting_of(f).saved)
