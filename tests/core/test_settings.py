"""View settings and smoothing modes are declared once; these tests prove the derived lists cannot drift."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from traitlets import TraitError

from lossviz_widget import SMOOTHING_MODES, LossPlot, ViewSettings, smooth
from lossviz_widget._core.settings import SAVED, setting_of
from lossviz_widget._core.smoothing import MODES

FIELDS = dataclasses.fields(ViewSettings)


@pytest.fixture
def plot():
    p = LossPlot()
    yield p
    p.close()


def _default(f: dataclasses.Field) -> object:
    return f.default if f.default is not dataclasses.MISSING else f.default_factory()


def test_every_setting_is_a_trait_with_its_default_and_help(plot):
    traits = plot.traits()
    for f in FIELDS:
        assert f.name in traits, f"view setting {f.name!r} has no trait"
        trait = traits[f.name]
        assert trait.help == setting_of(f).help
        assert trait.metadata.get("sync") is True
        value = getattr(plot, f.name)
        default = _default(f)
        assert (frozenset(value) if isinstance(default, frozenset) else value) == default


def test_the_traits_are_what_frames_are_built_from(plot):
    plot.smoothing, plot.log_y, plot.x_axis, plot.hidden_runs = 0.9, True, "wall_time", ("a",)
    s = plot.recorder.settings
    assert (s.smoothing, s.log_y, s.x_axis, s.hidden_runs) == (0.9, True, "wall_time", frozenset({"a"}))


@pytest.mark.parametrize(("name", "bad", "message"), [
    ("smoothing", 1.0, r"smoothing must be in \[0, 1\)"),
    ("fps", 0.0, r"fps must be in \(0, 60\]"),
    ("max_points", 8, r"max_points must be in \[16, 1000000\]"),
    ("x_range", (5.0, 1.0), "x_range must be"),
])
def test_a_bad_value_is_refused_with_the_settings_own_message(plot, name, bad, message):
    with pytest.raises(TraitError, match=message):
        setattr(plot, name, bad)
    with pytest.raises(ValueError, match=message):
        ViewSettings(**{name: bad})
    with pytest.raises(TraitError, match=message):
        LossPlot(**{name: bad})


def test_string_settings_accept_only_their_choices(plot):
    for f in FIELDS:
        choices = setting_of(f).choices
        if choices is None:
            continue
        for value in choices:
            setattr(plot, f.name, value)
        with pytest.raises(TraitError):
            setattr(plot, f.name, "no such choice")
        with pytest.raises(ValueError, match=f"{f.name} must be one of"):
            ViewSettings(**{f.name: "no such choice"})


def test_a_misspelled_keyword_names_the_closest_valid_one():
    with pytest.raises(TypeError, match="unexpected keyword argument 'smothing'; did you mean 'smoothing'"):
        LossPlot(smothing=0.9)
    with pytest.raises(TypeError, match="'log_fil'; did you mean 'log_file'"):
        LossPlot(log_fil="run.jsonl")
    with pytest.raises(TypeError, match="unexpected keyword argument 'zzz'$"):
        LossPlot(zzz=1)


def test_load_refuses_a_misspelled_keyword_before_reading(tmp_path):
    with pytest.raises(TypeError, match="did you mean 'smoothing'"):
        LossPlot.load(tmp_path / "missing.json", smothing=0.5)


@pytest.mark.parametrize("suffix", [".json", ".npz", ".jsonl"])
def test_saved_settings_round_trip_through_files(tmp_path, suffix):
    chosen = {"smoothing": 0.93, "smoothing_mode": "gaussian", "log_y": True, "ignore_outliers": True,
              "x_axis": "relative_time", "max_points": 512, "fps": 5.0, "log_y_panels": ("learning_rate", "loss"),
              "x_log": True, "panel_height": 320, "best_metrics": ("grad_norm", "loss"), "forecast": True,
              "renderer": "svg"}
    assert set(chosen) == set(SAVED), "a new saved setting needs a value here"
    path = tmp_path / f"run{suffix}"
    if suffix == ".jsonl":
        p = LossPlot(log_file=path, **chosen)
        p.log(loss=1.0, step=0)
        p.close()
    else:
        p = LossPlot(**chosen)
        p.log(loss=1.0, step=0)
        p.export(path)
        p.close()
    loaded = LossPlot.load(path)
    try:
        assert {name: getattr(loaded, name) for name in SAVED} == chosen
    finally:
        loaded.close()


def test_unsaved_settings_are_view_state_only():
    unsaved = {f.name for f in FIELDS} - set(SAVED)
    assert unsaved == {"x_range", "hidden_runs", "highlight_run", "plot_width"}


def test_every_smoothing_mode_is_in_the_trait_the_dropdown_and_the_factory(plot):
    assert tuple(MODES) == SMOOTHING_MODES
    assert plot.traits()["smoothing_mode"].values == SMOOTHING_MODES
    controls = plot.children[1].children
    dropdown = next(c for c in controls if getattr(c, "value", None) == "ema" and hasattr(c, "options"))
    assert [value for _, value in dropdown.options] == list(MODES)
    assert [label for label, _ in dropdown.options] == [m.label for m in MODES.values()]
    x = np.cumsum(np.random.default_rng(0).uniform(0.5, 1.5, 200))
    y = np.sin(x / 10) + np.random.default_rng(1).normal(0, 0.1, 200)
    for name, mode in MODES.items():
        whole = smooth(y, 0.8, name, x)
        assert whole.shape == y.shape and np.isfinite(whole).all()
        plot.smoothing_mode = name  # every mode draws
        plot.log(loss=1.0)
        plot.flush()
        # needs_x is honest: a mode whose result depends on x gives another result on other x
        other = smooth(y, 0.8, name, x ** 1.5)
        assert mode.needs_x == (not np.allclose(whole, other)), name
