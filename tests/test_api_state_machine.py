"""A model-based test of the whole public API (Hypothesis ``RuleBasedStateMachine``).

Random interleavings of ``log`` (implicit and explicit steps, several runs, steps going back:
rewinds), ``extend`` (with restarts inside the array), settings changes (smoothing and its mode,
log axis, x axis, zoom, hidden runs, max points), ``flush``, ``export``/``load`` round trips and
``log_file`` reloads, checked against a plain-Python model of what each history must be (the
default ``on_rewind="purge"``), plus invariants on every frame:

* the data is the model's, exactly, and every data file and the log reload to it;
* a line never holds more than ``max_points`` points; the largest and smallest finite value of a
  series are on its raw line (spikes survive downsampling); no NaN where the data is finite;
* the live view's incremental frames (a second, mirrored recorder drawing on ``flush``) show the
  same raw lines and readout as a frame built from scratch.

CI runs a small fixed budget (a few seconds); ``LOSSVIZ_STATEFUL_EXAMPLES=200`` (and
``LOSSVIZ_STATEFUL_STEPS``) runs a longer one.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from lossviz_widget import LossPlot, Recorder
from lossviz_widget._core.frame import Frame
from lossviz_widget.diagnostics import Finding

EXAMPLES = int(os.environ.get("LOSSVIZ_STATEFUL_EXAMPLES", "12"))
STEPS = int(os.environ.get("LOSSVIZ_STATEFUL_STEPS", "25"))
RUNS = ("default", "b")
METRICS = ("loss", "val_loss", "acc")
values = st.one_of(st.floats(-1e6, 1e6, allow_nan=False, width=64), st.sampled_from([math.nan, math.inf, -math.inf]),
                   st.floats(1e-3, 10))


class ApiMachine(RuleBasedStateMachine):
    """The plot, a mirrored widget-free recorder drawing live frames, and the model."""

    @initialize()
    def start(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="lossviz-stateful-"))
        self.log_path = self.folder / "run.jsonl"
        self.plot = LossPlot(log_file=self.log_path, diagnostics=False)
        self.mirror = Recorder(diagnostics=False)
        self.drawn: list[Frame] = []

        def draw(frame: Frame, findings: list[Finding]) -> int:
            self.drawn.append(frame)
            return 0

        self.mirror.attach_view(draw, live=False)
        self.model: dict[str, dict[str, list[tuple[float, float]]]] = {}
        self.files = 0

    def teardown(self) -> None:
        if hasattr(self, "plot"):
            self.plot.close()

    # -- the model -----------------------------------------------------------------------------

    def _last(self, run: str) -> float:
        """The run's implicit-step counter: the largest last step of its metrics (-1: none)."""
        return max((pts[-1][0] for pts in self.model.get(run, {}).values() if pts), default=-1.0)

    def _append(self, run: str, metric: str, step: float, value: float) -> None:
        pts = self.model.setdefault(run, {}).setdefault(metric, [])
        if pts and step < pts[-1][0]:  # a rewind: purge the points at or after the step
            pts[:] = [p for p in pts if p[0] < step]
        pts.append((step, value))

    # -- rules ---------------------------------------------------------------------------------

    @rule(run=st.sampled_from(RUNS), names=st.lists(st.sampled_from(METRICS), min_size=1, max_size=3, unique=True),
          vals=st.lists(values, min_size=3, max_size=3), how=st.sampled_from(["implicit", "next", "same", "back"]),
          back=st.integers(1, 30))
    def log(self, run: str, names: list[str], vals: list[float], how: str, back: int) -> None:
        last = self._last(run)
        step = {"implicit": None, "next": last + 1, "same": max(last, 0.0), "back": max(0.0, last - back)}[how]
        metrics = dict(zip(names, vals))
        self.plot.log(metrics, step=step, run=run)
        self.mirror.log(metrics, step=step, run=run)
        s = last + 1.0 if step is None else float(step)
        for name, v in metrics.items():
            self._append(run, name, s, v)

    @rule(run=st.sampled_from(RUNS), metric=st.sampled_from(METRICS), start=st.integers(0, 200),
          gaps=st.lists(st.integers(-40, 5), min_size=1, max_size=300), data=st.data())
    def extend(self, run: str, metric: str, start: int, gaps: list[int], data: st.DataObject) -> None:
        steps = np.cumsum([start, *gaps]).astype(float)  # negative gaps: restarts inside the array
        steps = np.maximum(steps, 0.0)
        vals = np.array(data.draw(st.lists(values, min_size=len(steps), max_size=len(steps))))
        self.plot.extend(metric, steps, vals, run=run)
        self.mirror.extend(metric, steps, vals, run=run)
        for s, v in zip(steps.tolist(), vals.tolist()):
            self._append(run, metric, s, v)

    @rule(smoothing=st.sampled_from([0.0, 0.6, 0.95]),
          mode=st.sampled_from(["ema", "time_ema", "moving_average", "gaussian"]), log_y=st.booleans(),
          x_axis=st.sampled_from(["step", "wall_time", "relative_time"]), max_points=st.sampled_from([16, 100, 2000]),
          hide=st.sampled_from([frozenset(), frozenset({"b"})]))
    def change_settings(self, smoothing: float, mode: str, log_y: bool, x_axis: str, max_points: int,
                        hide: frozenset[str]) -> None:
        self.plot.x_range = None
        changes = dict(smoothing=smoothing, smoothing_mode=mode, log_y=log_y, x_axis=x_axis, max_points=max_points)
        for name, value in changes.items():
            setattr(self.plot, name, value)
        self.plot.hidden_runs = tuple(hide)
        self.mirror.settings = dataclasses.replace(self.mirror.settings, x_range=None, hidden_runs=hide, **changes)

    @precondition(lambda self: self.plot.x_axis == "step")
    @rule(lo=st.integers(0, 300), width=st.integers(1, 300))
    def zoom(self, lo: int, width: int) -> None:
        self.plot.x_range = (float(lo), float(lo + width))
        self.mirror.settings = dataclasses.replace(self.mirror.settings, x_range=(float(lo), float(lo + width)))

    @rule()
    def flush(self) -> None:
        self.plot.flush()
        self.mirror.flush()
        self._check_live_frame()

    @rule(suffix=st.sampled_from([".csv", ".json", ".npz"]))
    def export_and_load(self, suffix: str) -> None:
        self.files += 1
        path = self.plot.export(self.folder / f"data{self.files}{suffix}")
        self._check_data(LossPlot.load(path).recorder.data(), exact_wall=True)

    @rule()
    def reload_the_log(self) -> None:
        self.plot.flush()  # writes every point (and purge) to the log
        loaded = LossPlot.load(self.log_path)
        self._check_data(loaded.recorder.data(), exact_wall=True)
        loaded.close()

    # -- invariants ----------------------------------------------------------------------------

    def _check_data(self, data: dict, exact_wall: bool = False) -> None:
        want = {run: {m: pts for m, pts in metrics.items() if pts} for run, metrics in self.model.items()}
        want = {run: metrics for run, metrics in want.items() if metrics}
        assert set(data) == set(want), (set(data), set(want))
        for run, metrics in want.items():
            assert set(data[run]) == set(metrics), (run, set(data[run]), set(metrics))
            for name, pts in metrics.items():
                h = data[run][name]
                np.testing.assert_array_equal(h.steps, [p[0] for p in pts], err_msg=f"{run}/{name} steps")
                np.testing.assert_array_equal(h.values, [p[1] for p in pts], err_msg=f"{run}/{name} values")
                if exact_wall:
                    np.testing.assert_array_equal(h.wall_time, self.plot.recorder.data()[run][name].wall_time)

    @invariant()
    def data_is_the_models(self) -> None:
        if hasattr(self, "plot"):
            self._check_data(self.plot.recorder.data())
            self._check_data(self.mirror.data())

    @invariant()
    def frame_invariants(self) -> None:
        if not hasattr(self, "plot"):
            return
        s = self.plot.recorder.settings
        frame = self.plot.frame(s.max_points)
        data = self.plot.recorder.data()
        for panel in frame.panels:
            for sf in panel.series:
                assert len(sf.x) == len(sf.y) <= s.max_points
                raw_y = sf.raw_y if sf.raw_y is not None else sf.y
                assert raw_y is not None and len(raw_y) <= s.max_points
                values_ = data[sf.run][sf.name].values
                finite = values_[np.isfinite(values_)]
                if s.x_range is None and not s.log_y and len(finite):
                    shown = raw_y[np.isfinite(raw_y)].astype(np.float64)
                    for extreme in (finite.max(), finite.min()):  # spikes survive downsampling
                        assert np.isclose(shown, extreme, rtol=1e-6, atol=0).any() or np.isclose(
                            shown, np.float32(extreme), rtol=1e-6, atol=0).any(), (sf.name, extreme)
                if len(finite) == len(values_) and not s.log_y:
                    assert not np.isnan(sf.y.astype(np.float64)).any(), sf.name  # no NaN where data is finite

    def _check_live_frame(self) -> None:
        """The mirror's incremental frame equals one built from scratch (raw lines and readout)."""
        live = self.drawn[-1]
        fresh = self.mirror.frame(self.mirror.settings.max_points)
        assert [(r.run, r.name, r.count, r.step) for r in live.readout] == [
            (r.run, r.name, r.count, r.step) for r in fresh.readout]
        for r, f in zip(live.readout, fresh.readout):
            assert (math.isnan(r.best) and math.isnan(f.best)) or r.best == f.best, (r, f)
        for lp, fp in zip(live.panels, fresh.panels):
            assert [sf.key for sf in lp.series] == [sf.key for sf in fp.series]
            for ls, fs in zip(lp.series, fp.series):
                raw_l = (ls.raw_x, ls.raw_y) if ls.raw_y is not None else (ls.x, ls.y)
                raw_f = (fs.raw_x, fs.raw_y) if fs.raw_y is not None else (fs.x, fs.y)
                np.testing.assert_array_equal(raw_l[0], raw_f[0])
                np.testing.assert_array_equal(raw_l[1], raw_f[1])


ApiMachine.TestCase.settings = settings(max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None,
                                        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
TestApi = ApiMachine.TestCase
