"""The control bar (smoothing, log y, outliers, x axis) and the latest/best readout.

Controls are stock ipywidgets linked to the plot's traitlets, so setting
``plot.smoothing = 0.9`` in Python moves the slider and vice versa. Everything
user-provided that ends up in HTML (metric names, titles, errors) is escaped.
"""

from __future__ import annotations

import ipywidgets as widgets
from traitlets import HasTraits, link

from .._core.smoothing import MODES

__all__ = ["control_bar"]

X_AXIS_LABELS = (("step", "step"), ("wall time", "wall_time"), ("relative time", "relative_time"))
# The slider means the EMA weight in both EMA modes, and a window of (1+s)/(1-s) points (the
# EMA's span) for the centered ones: see lossviz_widget._core.smoothing.
# Short labels and tight widths: the whole bar (with the snapshot button) fits one row of an
# 800 px wide plot; narrower, it wraps between controls (tests/browser/test_browser_hover.py).
SMOOTHING_MODE_LABELS = (("EMA", "ema"), ("time EMA", "time_ema"), ("moving avg", "moving_average"),
                         ("Gaussian", "gaussian"))


def control_bar(plot: HasTraits) -> widgets.HBox:
    """Widgets bound (both ways) to ``plot.smoothing/smoothing_mode/log_y/x_log/ignore_outliers/x_axis/
    follow_latest``."""
    smoothing = widgets.FloatSlider(
        min=0.0, max=0.999, step=0.001, readout_format=".3f", continuous_update=False,
        description="smoothing", style={"description_width": "initial"}, layout=widgets.Layout(width="195px"),
    )
    mode = widgets.Dropdown(options=[(m.label, m.name) for m in MODES.values()], layout=widgets.Layout(width="85px"),
                            tooltip="smoothing mode: EMA, time-weighted EMA (uneven steps), centered moving average "
                                    "or Gaussian; the slider is the EMA weight, or a window of (1+s)/(1-s) points")
    log_y = widgets.ToggleButton(description="log y", tooltip="logarithmic y axis on loss panels (log_y_panels)",
                                 layout=widgets.Layout(width="52px"))
    x_log = widgets.ToggleButton(description="log x", tooltip="logarithmic x axis (points at x <= 0 left out)",
                                 layout=widgets.Layout(width="52px"))
    outliers = widgets.ToggleButton(
        description="outliers", tooltip="ignore outliers: y range from the 5th to the 95th percentile",
        layout=widgets.Layout(width="70px"),
    )
    x_axis = widgets.Dropdown(options=X_AXIS_LABELS, description="x", style={"description_width": "initial"},
                              layout=widgets.Layout(width="110px"))
    follow = widgets.ToggleButton(
        description="follow latest", tooltip="x axis follows all data; drag or scroll on a plot to zoom",
        layout=widgets.Layout(width="100px"),
    )
    pairs = ((smoothing, "smoothing"), (mode, "smoothing_mode"), (log_y, "log_y"), (x_log, "x_log"),
             (outliers, "ignore_outliers"), (x_axis, "x_axis"), (follow, "follow_latest"))
    for control, name in pairs:
        link((plot, name), (control, "value"))
    bar = widgets.HBox([c for c, _ in pairs], layout=widgets.Layout(flex_flow="row wrap", align_items="center"))
    bar.add_class("lossviz-controls")
    return bar
