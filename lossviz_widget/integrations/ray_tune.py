"""Watch a Ray Tune sweep live: every trial is one run of one :class:`LossPlot`.

>>> cb = LossPlotCallback(title="lr sweep"); cb.plot   # display it, then in the next cell:
>>> tune.Tuner(train, param_space=..., run_config=tune.RunConfig(callbacks=[cb])).fit()

:class:`LossPlotCallback` is a ``ray.tune.Callback``: Ray calls it in the driver process
(the notebook's kernel), so the plot fills in while the trials run on their workers.
Each result logs every numeric metric (nested dicts flattened with ``/``:
``{"val": {"loss": 1}}`` -> ``val/loss``) at ``step=result["training_iteration"]``
into the run named after the trial. Ray's bookkeeping keys (:data:`SKIPPED_KEYS`) and
non-numeric values are left out; ``metrics=`` picks the metrics instead. A result the
plot rejects (a restored trial repeating its steps) is skipped with a
``RuntimeWarning``: plotting never stops the sweep.

Trial states (running, finished, failed) are kept in :attr:`LossPlotCallback.status` and
summed up in the plot's title (``lr sweep - 3 trials: 1 running, 1 finished, 1 failed``)
so the sweep's progress shows beside its curves.

Ray pickles a Tuner's callbacks so that ``Tuner.restore`` can resume the sweep; the
pickled callback leaves its plot behind (widgets cannot be pickled) and, once restored,
draws into a new plot with the same title.

Ray is imported lazily (the ``ray`` extra): importing this module without Ray
raises an ``ImportError`` saying what to install.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any

try:
    from ray.tune import Callback
except ImportError as exc:  # pragma: no cover - exercised only without Ray
    raise ImportError("lossviz_widget.integrations.ray_tune needs Ray Tune: pip install 'lossviz-widget[ray]'") from exc

from .._ui import LossPlot
from ._common import numeric, resolve_plot

__all__ = ["SKIPPED_KEYS", "LossPlotCallback", "numeric_metrics"]

# Filled in by Ray for every result: time, host and bookkeeping, not metrics of the model.
# ``training_iteration`` is the step; ``config`` holds the hyperparameters (the run's name).
SKIPPED_KEYS = frozenset({
    "training_iteration", "time_this_iter_s", "time_total_s", "time_since_restore",
    "timesteps_since_restore", "iterations_since_restore", "timestamp", "date", "pid", "hostname",
    "node_ip", "trial_id", "experiment_id", "experiment_tag", "done", "should_checkpoint",
    "checkpoint_dir_name", "config",
})
_STATES = {"RUNNING": "running", "TERMINATED": "finished", "ERROR": "failed"}


class LossPlotCallback(Callback):
    """Stream every trial's results into one :class:`LossPlot`, one run per trial.

    ``plot``: the plot to fill (default: a new ``LossPlot(title=title)``), shown in the
    current cell only with ``display=True``.
    ``metrics``: the (flattened) metric names to log, Ray's own included (e.g.
    ``"time_total_s"``); None: every numeric one outside :data:`SKIPPED_KEYS`.
    ``run_name``: the run of a trial; default its ``experiment_tag`` (Ray's short config string,
    e.g. ``"1_lr=0.0100"``), or the trial's name when that is empty.
    """

    def __init__(
        self,
        plot: LossPlot | None = None,
        *,
        metrics: Iterable[str] | None = None,
        run_name: Callable[[Any], str] | None = None,
        display: bool = False,
        title: str = "Ray Tune",
    ) -> None:
        if metrics is not None:
            if isinstance(metrics, str) or not isinstance(metrics, Iterable):
                raise TypeError(f"metrics must be an iterable of metric names (non-empty str), got {metrics!r}")
            metrics = tuple(metrics)
            if not all(isinstance(m, str) and m for m in metrics):
                raise TypeError(f"metrics must be an iterable of metric names (non-empty str), got {metrics!r}")
        if run_name is not None and not callable(run_name):
            raise TypeError(f"run_name must be a callable taking a Trial and returning a str, got {run_name!r}")
        self.plot = resolve_plot(plot, display=display, title=title)
        self.metrics: tuple[str, ...] | None = metrics
        self._run_name = run_name
        self._title = self.plot.title
        self._runs: dict[str, str] = {}  # trial id -> run name (fixed at the trial's first result)
        self.status: dict[str, str] = {}  # run name -> "running" / "finished" / "failed"

    def __getstate__(self) -> dict[str, Any]:
        """Ray pickles the Tuner's callbacks (for ``Tuner.restore``): a plot's widgets and
        threads cannot be pickled, so a copy carries everything but the plot."""
        return {k: v for k, v in self.__dict__.items() if k != "plot"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        """A restored callback draws into a new plot with the original title."""
        self.__dict__.update(state)
        self.plot = LossPlot(title=self._title)

    def run_of(self, trial: Any) -> str:
        """The run that ``trial`` logs to."""
        run = self._runs.get(trial.trial_id)
        if run is None:
            run = self._run_name(trial) if self._run_name else (trial.experiment_tag or str(trial))
            self._runs[trial.trial_id] = run
        return run

    # -- ray.tune.Callback --------------------------------------------------------------------

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._set_status(trial, "RUNNING")

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        values = numeric_metrics(result, self.metrics)
        if not values:
            return
        run = self.run_of(trial)
        try:
            self.plot.log(values, step=result.get("training_iteration"), run=run)
        except (TypeError, ValueError) as exc:  # e.g. a restored trial repeating steps: never stop the sweep
            warnings.warn(f"lossviz_widget: result of trial {run!r} not plotted: {exc}", RuntimeWarning,
                          stacklevel=2)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._set_status(trial, "TERMINATED")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._set_status(trial, "ERROR")

    def _set_status(self, trial: Any, state: str) -> None:
        self.status[self.run_of(trial)] = _STATES[state]
        counts = {label: sum(s == label for s in self.status.values()) for label in _STATES.values()}
        summary = ", ".join(f"{n} {label}" for label, n in counts.items() if n)
        trials = f"{len(self.status)} trial{'s' if len(self.status) != 1 else ''}: {summary}"
        self.plot.title = f"{self._title} - {trials}" if self._title else trials


def numeric_metrics(result: Mapping[str, Any], metrics: tuple[str, ...] | None) -> dict[str, float]:
    """The metrics of one Tune result: flattened with ``/``, numeric, bookkeeping left out."""
    flat: dict[str, Any] = {}

    def walk(prefix: str, mapping: Mapping[str, Any]) -> None:
        for key, value in mapping.items():
            name = f"{prefix}{key}"
            if isinstance(value, Mapping):
                walk(f"{name}/", value)
            else:
                flat[name] = value

    skipped = SKIPPED_KEYS if metrics is None else frozenset({"config"})  # chosen metrics may be Ray's own
    walk("", {k: v for k, v in result.items() if k not in skipped and not str(k).startswith("__")})
    values = numeric(flat)
    if metrics is None:
        return values
    return {name: values[name] for name in metrics if name in values}
