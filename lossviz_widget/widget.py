"""``LossPlot``: the widget users display and log to.

Data path: ``log()`` -> :mod:`store` (validated, buffered) -> :mod:`scheduler`
(frames at most ``fps`` per second, on a background thread) -> :mod:`view`
(smoothing, downsampling, readout) -> :mod:`figures` (bqplot). ``log()`` itself
never touches a widget.

Outside a Jupyter kernel (a plain script) nothing is drawn in the background:
logging, history and exports work the same, and :meth:`LossPlot.flush` renders
on demand. With ``log_file=`` the frame thread runs anyway, to stream values to
disk.
"""

from __future__ import annotations

import dataclasses
import html
import logging
import math
import os
import threading
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import ipywidgets as widgets
from traitlets import Bool, Enum, Float, Int, TraitError, Tuple, Unicode, observe, validate

from ._values import merge_metrics
from .controls import control_bar, format_number, readout_html
from .diagnostics import Diagnostics, DiagnosticsConfig, Finding, findings_html
from .figures import PanelGrid
from .files import atomic_write, check_suffix
from .follow import Follower
from .formats import DEFAULT_RUN, RunData, read_data, write_data
from .logfile import LogWriter
from .readers import Batch, read_logs
from .runs import Run, RunStores, check_run
from .run_groups import GroupBuilder, GroupSpec
from .runs_table import RunsTable
from .scheduler import FrameScheduler
from .smoothing import SMOOTHING_MODES
from .snapshot import SnapshotButton
from .store import History, MetricStore
from .view import X_AXIS_MODES, Frame, FrameBuilder, ReadoutRow, ViewSettings

__all__ = ["LossPlot"]

_VIEW_TRAITS = ("smoothing", "smoothing_mode", "log_y", "ignore_outliers", "x_axis", "max_points", "x_range", "hidden_runs",
                "highlight_run")
_SETTINGS = ("smoothing", "smoothing_mode", "log_y", "ignore_outliers", "x_axis", "max_points", "fps")  # kept in data files
IMAGE_SUFFIXES = (".png", ".svg", ".pdf")
EXPORT_SUFFIXES = (*IMAGE_SUFFIXES, ".html", ".csv", ".json", ".npz")
_WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
FINDINGS_SHOWN = 20  # latest findings listed under the plot (diagnose() returns all)
# points per series the diagnostics read in one live frame (~10 ms for 4 series); a backlog
# (extend(), a fast loop) is caught up over the next frames while the curves keep updating
LIVE_DIAGNOSTICS_BUDGET = 1 << 17
log = logging.getLogger("lossviz_widget")


def _in_kernel() -> bool:
    """True inside a running IPython kernel (a browser may be attached)."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - ipykernel depends on IPython
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


class LossPlot(widgets.VBox):
    """Live loss curves for a training loop.

    >>> plot = LossPlot(title="resnet18")      # display it: `plot` as the cell's last line
    >>> plot.log(loss=0.93, step=0)             # any number of metrics per call
    >>> plot.log({"val/loss": 1.02}, step=0)    # or a mapping

    Metrics group into one panel per family (``loss``/``val_loss``/``train/loss``
    share a panel). The browser receives at most ``max_points`` points per
    line per frame, chosen per x-bucket min/max so spikes survive; smoothing is
    TensorBoard's debiased EMA (or ``smoothing_mode``) on the full-resolution data.
    Diagnostics (overfitting, divergence, plateaus, ...) show under the panels as they are
    found, with a marker on the curve; :meth:`diagnose` returns them.
    """

    title = Unicode("", help="Heading shown above the panels.").tag(sync=True)
    smoothing = Float(0.6, help="TensorBoard EMA weight in [0, 1); 0 draws the raw data only.").tag(sync=True)
    smoothing_mode = Enum(SMOOTHING_MODES, "ema", help=(
        "ema (TensorBoard), time_ema (decay follows the x spacing), moving_average or gaussian "
        "(centered windows of (1+s)/(1-s) points for slider value s).")).tag(sync=True)
    log_y = Bool(False, help="Logarithmic y axes; values <= 0 are drawn as gaps.").tag(sync=True)
    ignore_outliers = Bool(False, help="Fit y axes to the 5th-95th percentile of the data.").tag(sync=True)
    x_axis = Enum(X_AXIS_MODES, "step", help="x axis: step, wall_time or relative_time.").tag(sync=True)
    fps = Float(10.0, help="Maximum frames per second sent to the browser.").tag(sync=True)
    max_points = Int(2000, help="Maximum points per line per frame.").tag(sync=True)
    x_range = Tuple(Float(), Float(), default_value=None, allow_none=True,
                    help="Visible x range (zoom) in x axis units: steps, epoch seconds for wall time, "
                         "the shown unit for relative time. None: everything.").tag(sync=True)
    follow_latest = Bool(True, help="Auto-range x to all data as it grows; off while zoomed.").tag(sync=True)
    diagnostics = Bool(True, help="Detect overfitting, divergence, plateaus... and show the findings; "
                                  "False computes nothing.").tag(sync=True)
    hidden_runs = Tuple(help="Names of runs not drawn (the runs table's checkboxes).")
    highlight_run = Unicode(None, allow_none=True,
                            help="The run drawn opaque while the others fade; None: no highlight.")

    def __init__(
        self,
        title: str = "",
        *,
        smoothing: float = 0.6,
        smoothing_mode: str = "ema",
        log_y: bool = False,
        ignore_outliers: bool = False,
        x_axis: str = "step",
        fps: float = 10.0,
        max_points: int = 2000,
        log_file: str | os.PathLike[str] | None = None,
        num_classes: int | None = None,
        diagnostics_config: DiagnosticsConfig | None = None,
        **kwargs: Any,
    ) -> None:
        """``num_classes`` enables the initial cross-entropy check (``ln C``);
        ``diagnostics_config`` sets every diagnostics threshold (see :mod:`lossviz_widget.diagnostics`)."""
        if diagnostics_config is not None and not isinstance(diagnostics_config, DiagnosticsConfig):
            raise TypeError(f"diagnostics_config must be a DiagnosticsConfig, got {type(diagnostics_config).__name__}")
        config = diagnostics_config or DiagnosticsConfig()
        if num_classes is not None:
            config = dataclasses.replace(config, num_classes=num_classes)
        self._diag_config = config
        self._diag = Diagnostics(config)
        super().__init__(
            title=title, smoothing=smoothing, smoothing_mode=smoothing_mode, log_y=log_y, ignore_outliers=ignore_outliers,
            x_axis=x_axis, fps=fps, max_points=max_points, **kwargs,
        )
        self._runs = RunStores()
        self._store = self._runs.default  # the default run: log() without run=
        self._builder = FrameBuilder()
        self._grid = PanelGrid(on_zoom=self._on_browser_zoom)
        self._render_lock = threading.Lock()
        self._header = widgets.HTML()
        self._header.add_class("lossviz-title")
        self._findings = widgets.HTML()
        self._findings.add_class("lossviz-findings")
        self._readout = widgets.HTML(readout_html([]))
        self._readout.add_class("lossviz-readout")
        self._status = widgets.HTML()
        self._status.add_class("lossviz-status")
        self._render_error = ""  # the last frame's error, in the status line until a frame renders again
        self._followers: list[Follower] = []
        self._param_sources: list[Any] = []  # tracking-server sources read: their ``params`` (run -> params)
        self._groups: GroupBuilder | None = None  # run groups (group_runs), drawn as a line with a band
        self._last_rows: list[ReadoutRow] = []
        self._update_header()
        self._snapshot = SnapshotButton()
        bar = control_bar(self)
        bar.children += (self._snapshot,)
        self._runs_table = RunsTable(self)
        self.children = [self._header, bar, self._runs_table.box, self._grid.box, self._findings, self._readout, self._status]
        self.add_class("lossviz")
        self._live = _in_kernel()
        self._scheduler = FrameScheduler(self._frame_from_thread, fps=fps, on_error=self._report_error)
        self._log_writer: LogWriter | None = None
        self._displays: list[Any] = []  # IPython DisplayHandles showing this plot
        self._static_key: tuple | None = None  # what the static image in those displays shows
        if log_file is not None:
            self._open_log(log_file)

    # -- validation -----------------------------------------------------------------------------

    @validate("smoothing")
    def _check_smoothing(self, proposal: dict) -> float:
        v = proposal["value"]
        if not 0.0 <= v < 1.0:
            raise TraitError(f"smoothing must be in [0, 1), got {v!r}")
        return v

    @validate("fps")
    def _check_fps(self, proposal: dict) -> float:
        v = proposal["value"]
        if not 0.0 < v <= 60.0:
            raise TraitError(f"fps must be in (0, 60], got {v!r}")
        return v

    @validate("max_points")
    def _check_max_points(self, proposal: dict) -> int:
        v = proposal["value"]
        if not 16 <= v <= 1_000_000:
            raise TraitError(f"max_points must be in [16, 1000000], got {v!r}")
        return v

    @validate("x_range")
    def _check_x_range(self, proposal: dict) -> tuple[float, float] | None:
        v = proposal["value"]
        if v is not None and not (math.isfinite(v[0]) and math.isfinite(v[1]) and v[0] < v[1]):
            raise TraitError(f"x_range must be (low, high) with finite low < high, or None; got {v!r}")
        return v

    @validate("hidden_runs")
    def _check_hidden_runs(self, proposal: dict) -> tuple[str, ...]:
        return tuple(check_run(name) for name in proposal["value"])

    @observe(*_VIEW_TRAITS)
    def _on_view_change(self, change: dict) -> None:
        self._request_frame()

    @observe("x_range")
    def _on_x_range(self, change: dict) -> None:
        if change["new"] is not None:
            self.follow_latest = False

    @observe("follow_latest")
    def _on_follow(self, change: dict) -> None:
        if change["new"]:
            self.x_range = None

    def _on_browser_zoom(self, x_range: tuple[float, float]) -> None:
        """The user panned/zoomed: re-downsample for the visible range (full fidelity)."""
        self.x_range = x_range

    @observe("diagnostics")
    def _on_diagnostics(self, change: dict) -> None:
        if not hasattr(self, "_render_lock"):
            return
        if not change["new"]:
            with self._render_lock:
                self._diag = Diagnostics(self._diag_config)  # drop all state; nothing runs while off
        self._request_frame()

    @observe("fps")
    def _on_fps(self, change: dict) -> None:
        if hasattr(self, "_scheduler"):
            self._scheduler.fps = change["new"]

    @observe("title")
    def _on_title(self, change: dict) -> None:
        if hasattr(self, "_header"):
            self._update_header()

    # -- public API ---------------------------------------------------------------------------

    def log(self, metrics: Mapping[str, Any] | None = None, /, *, step: float | None = None,
            run: str | None = None, **values: Any) -> None:
        """Record one value per metric at ``step``; returns immediately (drawing happens later).

        ``step`` defaults to one more than the largest step logged so far in that run (so it
        counts calls when never given). Values may be Python or NumPy numbers, 0-d/size-1
        arrays or tensors; GPU tensors are fetched in batches at frame time. ``run`` names
        the run the values belong to (None: the default run, ``"default"``); see
        :meth:`run`. Raises ``TypeError``/``ValueError`` naming the metric for bad input,
        in which case nothing from this call is recorded.
        """
        store = self._store if run is None else self._runs.get(run)
        if metrics is None and values:  # keywords only: the common case, and the hot path
            # ``values`` is this call's own dict (str keys). False: a frame is already due.
            if store.log_kwargs(values, step) and self._background:
                self._scheduler.request()
            return
        self._log_into(store, metrics, step, values)

    def _log_into(self, store: MetricStore, metrics: Mapping[str, Any] | None, step: Any,
                  values: dict[str, Any]) -> None:
        """:meth:`log` into one run's store (also what :meth:`Run.log` calls)."""
        merged = merge_metrics(metrics, values)
        if store.log(merged, step) and self._background:
            self._scheduler.request()

    def extend(self, metric: str, steps: Any, values: Any, wall_time: Any = None, *, run: str | None = None) -> None:
        """Append many points of one metric at once (reading a log, replaying a run): O(len).

        ``steps`` and ``values`` (and ``wall_time``, epoch seconds; None: now) are 1-D
        array-likes of equal length: lists, NumPy arrays or tensors. Steps must be finite,
        non-decreasing and not below the metric's last step; NaN/Inf values are kept. Bad
        input raises an error naming the metric, and then nothing is appended.
        """
        self._extend_into(self._store if run is None else self._runs.get(run), metric, steps, values, wall_time)

    def _extend_into(self, store: MetricStore, metric: str, steps: Any, values: Any, wall_time: Any) -> None:
        store.extend(metric, steps, values, wall_time)
        if self._background:
            self._scheduler.request()

    def run(self, name: str) -> Run:
        """A handle that logs to run ``name``: ``r = plot.run("lr=1e-3"); r.log(loss=0.5)``.

        Runs appear in the plot once they hold a value; each keeps one colour in every panel.
        """
        return Run(self, check_run(name), self._runs.get(name))

    @property
    def runs(self) -> tuple[str, ...]:
        """Names of the runs holding data, in the order their first value was logged."""
        return self._runs.names()

    def flush(self) -> None:
        """Draw (and write to ``log_file``) everything logged so far, now, on this thread.

        Also refreshes the static image that saved notebooks show. Works without a browser.
        """
        self._render()
        self._refresh_displays()

    def export(self, path: str | os.PathLike[str], *, width: float = 10.0, height: float | None = None,
               dpi: float = 150) -> Path:
        """Write a snapshot of the run; the format follows the suffix. Returns the path.

        * ``.png``/``.svg``/``.pdf``: an image of the current view (panels, colours, smoothing,
          log scale, outlier range, x axis, title) rendered in the kernel, so it works
          mid-training, in scripts and in CI. ``width``/``height`` in inches, ``dpi`` for PNG.
        * ``.html``: a self-contained report page (curves, latest/best values, all data) that
          opens offline.
        * ``.csv``/``.json``/``.npz``: every logged value at full resolution; read them back with
          :meth:`LossPlot.load`.

        The file is written to a temporary name and renamed into place, so a failure never
        leaves a half-written file where a good one was.
        """
        p, suffix = check_suffix(path, EXPORT_SUFFIXES, "export to")
        if suffix in IMAGE_SUFFIXES:
            from .images import image_bytes

            payload = image_bytes(self._export_frame(), suffix[1:], title=self.title, width=width,
                                  height=height, dpi=dpi)
            return atomic_write(p, lambda f: f.write(payload))
        if suffix == ".html":
            from .report import render_report

            page = render_report(self._export_frame(), self._runs.snapshot(), title=self.title,
                                 settings=self._settings_dict(), findings=self.diagnose())
            return atomic_write(p, lambda f: f.write(page.encode("utf-8")))
        data = RunData(self._runs.snapshot(), self.title, self._settings_dict())
        return atomic_write(p, lambda f: write_data(f, suffix, data))

    @classmethod
    def load(cls, path: str | os.PathLike[str], **options: Any) -> LossPlot:
        """A new plot holding the data (every run, in order) of a ``.csv``/``.json``/``.npz`` export or a
        ``log_file``.

        Title and view settings come from the file (``.json``, ``.npz``, ``.jsonl``) unless
        given in ``options``. The plot is ready to keep logging; pass
        ``log_file=path`` with the log file itself to keep appending to it. A log whose last
        line was cut mid-write (a killed kernel) loads with a ``RuntimeWarning`` saying how
        many lines were skipped.
        """
        p = Path(path).expanduser()
        data = read_data(p)
        if data.skipped_lines:
            warnings.warn(f"{str(p)!r}: skipped {data.skipped_lines} incomplete or corrupt line(s)",
                          RuntimeWarning, stacklevel=2)
        kwargs: dict[str, Any] = {k: v for k, v in data.settings.items() if k in _SETTINGS}
        kwargs["title"] = data.title
        kwargs.update(options)
        log_file = kwargs.pop("log_file", None)
        plot = cls(**kwargs)
        plot._runs.load(data.runs)
        if log_file is not None:
            same = Path(log_file).expanduser().resolve() == p.resolve()
            plot._open_log(log_file, resume=same)
        plot._request_frame()
        return plot

    @classmethod
    def from_logdir(cls, path: str | os.PathLike[str], **options: Any) -> LossPlot:
        """A new plot holding every run of the logs at ``path``: a folder of runs or one log file.

        Reads TensorBoard event files, Keras and Lightning ``CSVLogger`` files and this
        package's ``log_file`` logs; runs are named after their subfolders (see
        :mod:`lossviz_widget.readers`). ``options`` go to the constructor. Raises
        ``FileNotFoundError`` for a missing path and ``ValueError`` if it holds no log.
        To keep reading as the logs grow, use :meth:`follow`.
        """
        batches, _ = read_logs(path)
        return cls._from_batches(batches, options)

    @classmethod
    def _from_batches(cls, batches: list[Batch], options: dict[str, Any], source: Any = None) -> LossPlot:
        """A new plot (``options`` to the constructor) holding ``batches``, read from ``source``."""
        plot = cls(**options)
        if source is not None:
            plot._param_sources.append(source)
        try:
            plot._extend_batches(batches)
        except ValueError:
            plot.close()
            raise
        plot._request_frame()
        return plot

    @classmethod
    def from_mlflow(cls, tracking_uri: str, experiment: str | None = None, *, experiment_id: str | None = None,
                    filter_string: str = "", **options: Any) -> LossPlot:
        """A new plot holding every point of every run of an MLflow experiment (name or ``experiment_id``).

        ``tracking_uri`` is a tracking server (``"http://host:5000"``) or any URI MLflow's client
        takes (``"sqlite:///mlflow.db"``); ``filter_string`` is MLflow's run search syntax
        (``"params.lr = '0.1'"``). Runs are labelled by their names; their params are kept for
        :meth:`group_runs`. Needs ``mlflow`` or ``mlflow-skinny``. Details (several values per
        step, deleted runs): :mod:`lossviz_widget.readers.mlflow`. To keep reading, :meth:`follow_mlflow`.
        """
        from .readers.mlflow import MlflowSource

        source = MlflowSource(tracking_uri, experiment, experiment_id=experiment_id, filter_string=filter_string)
        return cls._from_batches(source.poll(), options, source)

    def follow_mlflow(self, tracking_uri: str, experiment: str | None = None, *, experiment_id: str | None = None,
                      filter_string: str = "", interval: float = 5.0) -> Follower:
        """Show an MLflow experiment's runs live: new points and new runs, every ``interval`` seconds.

        Each poll asks only for what changed (see :mod:`lossviz_widget.readers.mlflow`); a
        server that is down, or an experiment not created yet, shows in the status line
        until a poll succeeds. Stop with :meth:`unfollow` or :meth:`close`.
        """
        from .readers.mlflow import MlflowSource

        source = MlflowSource(tracking_uri, experiment, experiment_id=experiment_id, filter_string=filter_string)
        return self._follow_sources([source], interval)

    @classmethod
    def from_trackio(cls, project: str | None = None, *, db_path: str | os.PathLike[str] | None = None,
                     **options: Any) -> LossPlot:
        """A new plot holding every run of a trackio project (its local database, read-only).

        ``project`` is found where trackio keeps it (``TRACKIO_DIR``; needs ``trackio``), or give
        the database file as ``db_path``. See :mod:`lossviz_widget.readers.trackio`.
        """
        from .readers.trackio import TrackioSource

        source = TrackioSource(project, db_path=db_path)
        if not source.path.exists():
            raise FileNotFoundError(f"no trackio database at {str(source.path)!r}")
        return cls._from_batches(source.poll(), options, source)

    def follow_trackio(self, project: str | None = None, *, db_path: str | os.PathLike[str] | None = None,
                       interval: float = 2.0) -> Follower:
        """Show a trackio project's runs live, reading only the rows written since the last poll."""
        from .readers.trackio import TrackioSource

        return self._follow_sources([TrackioSource(project, db_path=db_path)], interval)

    def follow(self, *paths: str | os.PathLike[str], interval: float = 1.0) -> Follower:
        """Show the points other processes append to the logs at ``paths``, as they arrive.

        Each path is a log file or a folder of runs (formats as for :meth:`from_logdir`); it
        need not exist yet, and runs that appear in a folder later are picked up. A
        background thread polls every ``interval`` seconds and reads only what was appended;
        records still being written wait for the next poll, and rewritten or replaced files
        are read again without repeating points. Errors are logged (``lossviz_widget``
        logger) and show in the status line while they are current, that is until the source
        is read cleanly again (``follower.current_error``; ``follower.last_error`` keeps the
        last one). Stop with :meth:`unfollow` or :meth:`close`.
        """
        return self._follow_sources(paths, interval)

    def _follow_sources(self, sources: Sequence[Any], interval: float) -> Follower:
        follower = Follower(sources, self._extend_batches, interval=interval,
                            on_error=lambda exc: self._refresh_status(), on_recover=self._refresh_status)
        self._param_sources.extend(s for s in follower.sources if hasattr(s, "params"))
        self._followers.append(follower)
        follower.start()
        return follower

    def unfollow(self) -> None:
        """Stop every :meth:`follow`: the polling threads end before this returns.

        Raises ``TimeoutError`` if a thread is stuck in a poll (say, on a hung network file
        system) after asking every follower to stop."""
        stuck: TimeoutError | None = None
        while self._followers:
            try:
                self._followers.pop().stop()
            except TimeoutError as exc:
                stuck = stuck or exc
        self._refresh_status()  # their errors are no longer current
        if stuck is not None:
            raise stuck

    def _extend_batches(self, batches: list[Batch]) -> None:
        """Append read log points; a batch that is rejected (say, steps going back) does not stop the others."""
        errors = []
        for b in batches:
            try:
                self.extend(b.metric, b.steps, b.values, b.wall_times, run=b.run)
            except (TypeError, ValueError) as exc:
                errors.append(f"run {b.run!r}: {exc}")
        if errors:
            raise ValueError("; ".join(errors))

    @classmethod
    def from_history(cls, history: Any, **options: Any) -> LossPlot:
        """A new plot of results that already exist, at steps = epochs.

        ``history`` is a ``keras.callbacks.History`` (what ``model.fit`` returns), its
        ``.history`` dict, or any mapping of metric name -> equal-length list of per-epoch
        values. ``options`` go to ``LossPlot``. Bad input (ragged lists, non-numeric values,
        an empty mapping) raises ``TypeError``/``ValueError`` naming the metric.
        """
        from .integrations.history import history_rows

        rows = history_rows(history)  # everything checked before a plot exists
        plot = cls(**options)
        for step, row in rows:
            plot.log(row, step=step)
        return plot

    def group_runs(self, by: Any, *, stat: str = "mean", band: str = "minmax", show_members: bool = False) -> None:
        r"""Draw runs that differ only by seed (say) as one ``stat`` line with a shaded ``band``.

        ``by`` is a regex whose match in a run's name is what differs between members
        (``r"seed=\d+"``: ``"lr=0.1 seed=0"`` and ``"lr=0.1 seed=1"`` form group ``"lr=0.1"``)
        or a function ``(name, params) -> key`` (params: a tracking server's, else ``{}``;
        ``None`` leaves a run alone). ``stat``: ``"mean"`` or ``"median"``; ``band``: ``"minmax"`` or
        ``"std"`` (± one standard deviation). Members are hidden unless ``show_members``; runs that
        arrive later join their group. Also in exported images and reports. How unequal steps are
        aligned: :mod:`lossviz_widget.run_groups`. :meth:`ungroup_runs` undoes it.
        """
        spec = GroupSpec.make(by, stat, band, show_members)
        with self._render_lock:
            self._groups = GroupBuilder(spec)
        self._request_frame()

    def ungroup_runs(self) -> None:
        """Draw every run on its own again (undoes :meth:`group_runs`)."""
        with self._render_lock:
            self._groups = None
        self._request_frame()

    def _run_params(self) -> dict[str, dict[str, str]]:
        """Run -> params, from the tracking servers read (for :meth:`group_runs` with a function)."""
        params: dict[str, dict[str, str]] = {}
        for source in self._param_sources:
            params.update(source.params)
        return params

    def _build_frame(self, builder: FrameBuilder, data: dict, settings: ViewSettings, findings: list[Finding],
                     groups: GroupBuilder | None) -> Frame:
        """A frame of ``data``; with run groups, their bands added and their members' lines left out
        (unless shown; their readout rows stay)."""
        frame = builder.build(data, self._runs.t0, settings, findings)
        if groups is not None:
            groups.add_to(frame, data, settings, self._run_params())
        return frame

    @property
    def last_snapshot(self) -> bytes | None:
        """PNG bytes of the widget exactly as the browser last showed it.

        Set by the control bar's snapshot button (which also downloads the PNG) or by
        :meth:`request_snapshot`. Browser replies are handled when the kernel is idle, so this
        fills in after the current cell, never during it.
        """
        return self._snapshot.last_snapshot

    def request_snapshot(self, timeout: float = 10.0) -> str:
        """Ask the browser for a PNG of the widget as shown; returns at once (a request id).

        :attr:`last_snapshot` holds the image once the kernel is idle; if no view answers
        within ``timeout`` seconds (not displayed, browser closed), ``self._snapshot.last_error``
        says so. For an image *during* training, in scripts or CI, use ``export("x.png")``.
        """
        return self._snapshot.request(timeout)

    def diagnose(self) -> list[Finding]:
        """Every finding so far (oldest first), after reading the points logged since the last frame.

        Empty when ``diagnostics`` is off. Rules and thresholds: :mod:`lossviz_widget.diagnostics`.
        """
        with self._render_lock:
            return self._current_findings(self._runs.snapshot())

    def _current_findings(self, data: dict, budget: int | None = None) -> list[Finding]:
        """Bring the detectors up to date with ``data`` (render lock held), reading at most
        ``budget`` points per series; all findings so far, or none when off."""
        if not self.diagnostics:
            return []
        self._diag.update(data, budget)
        return list(self._diag.findings)

    @property
    def history(self) -> History:
        """Full-resolution data: ``plot.history["loss"].steps / .values / .wall_time``.

        With one run (the usual case, whatever its name) that run's data; with several,
        the default run's (what ``log()`` without ``run=`` records). Each run's own data:
        ``plot.run(name).history``.
        """
        run, store = self._runs.primary()
        return History(store, run, self.runs)

    def close(self) -> None:
        """Stop the render thread, write out ``log_file``, and close every widget.

        Displays of the plot keep its final static image and summary.
        """
        unfollow_error: TimeoutError | None = None
        if getattr(self, "_followers", None):
            try:
                self.unfollow()
            except TimeoutError as exc:  # a poll stuck on a slow file system: close the rest anyway
                unfollow_error = exc
        scheduler = getattr(self, "_scheduler", None)
        if scheduler is not None:
            scheduler.stop()
        if getattr(self, "_store", None) is not None:
            self._render(draw=False)  # the last points reach the log file
            self._refresh_displays(live=False)
            self._unhook_cell_end()
        if getattr(self, "_log_writer", None) is not None:
            self._log_writer.close()
        grid = getattr(self, "_grid", None)
        if grid is not None:
            grid.close()
        pending = list(self.children)
        while pending:  # the control bar's slider, toggles and dropdown too
            child = pending.pop()
            pending.extend(getattr(child, "children", ()))
            child.close()
        super().close()
        if unfollow_error is not None:
            raise unfollow_error

    # -- rendering ----------------------------------------------------------------------------

    def _settings(self) -> ViewSettings:
        return ViewSettings(self.smoothing, self.log_y, self.ignore_outliers, self.x_axis, self.max_points,
                            self.x_range, frozenset(self.hidden_runs), self.highlight_run, self.smoothing_mode)

    def _export_frame(self, max_points: int = 4000) -> Frame:
        """The current view (panels, colours, smoothing, scales) at export resolution.

        Built by a fresh FrameBuilder, so the live view's incremental state is untouched.
        """
        settings = dataclasses.replace(self._settings(), max_points=max_points)
        with self._render_lock:
            data = self._runs.snapshot()
            findings = self._current_findings(data)
            groups = None if self._groups is None else GroupBuilder(self._groups.spec)
        return self._build_frame(FrameBuilder(), data, settings, findings, groups)

    def _request_frame(self) -> None:
        if getattr(self, "_live", False):
            self._scheduler.request()

    def _settings_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _SETTINGS}

    def _open_log(self, path: str | os.PathLike[str], resume: bool = False) -> None:
        """Stream values to ``path`` from now on; the history already held is written first
        (or, with ``resume``, taken to be in the file already)."""
        lengths = {(run, name): len(h) for run, metrics in self._runs.snapshot().items() for name, h in metrics.items()}
        self._log_writer = LogWriter(path, title=self.title, settings=self._settings_dict(),
                                     already_written=lengths if resume else None)
        self._render(draw=False)
        self._scheduler.request()

    # -- display: the live widget plus a static image for saved notebooks ---------------------

    def _summary_text(self, rows: list[ReadoutRow]) -> str:
        head = f"LossPlot {self.title!r}" if self.title else "LossPlot"
        if not rows:
            return f"{head}: no values logged yet"
        lines = [f"{head}: {len(rows)} metrics"]
        several = len({r.run for r in rows}) > 1
        for r in rows:
            name = f"{r.run}: {r.name}" if several else r.name
            lines.append(f"  {name}: {r.count:,} points, step {format_number(r.step)}, latest "
                         f"{format_number(r.latest)}, best {format_number(r.best)} (step {format_number(r.best_step)})")
        return "\n".join(lines)

    def _static_bundle(self) -> dict[str, Any]:
        """``text/plain`` summary and, once there is data, a PNG of the current view.

        Both come from one export frame (its own FrameBuilder), so this never touches the
        live view's state, which the render thread owns.
        """
        frame = self._export_frame()
        bundle: dict[str, Any] = {"text/plain": self._summary_text(frame.readout)}
        if frame.readout:
            try:
                from .images import image_bytes

                bundle["image/png"] = image_bytes(frame, "png", title=self.title, dpi=80)
            except Exception:  # a static fallback must never break the live display
                log.exception("lossviz_widget: could not render the static image")
        return bundle

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        """The live widget, plus a static PNG and text summary for viewers without widget state
        (GitHub, nbviewer, nbconvert; ipympl's precedent)."""
        bundle = super()._repr_mimebundle_(**kwargs)
        bundle.update(self._static_bundle())
        return bundle

    def _ipython_display_(self) -> None:
        from IPython.display import display

        handle = display(self._repr_mimebundle_(), raw=True, display_id=True)
        if handle is not None:
            self._displays.append(handle)
            self._static_key = self._data_key()
            self._hook_cell_end()

    def _data_key(self) -> tuple:
        lengths = tuple((r, n, len(h)) for r, metrics in self._runs.snapshot().items() for n, h in metrics.items())
        return lengths, self._settings(), self.title

    def _refresh_displays(self, live: bool = True) -> None:
        """Re-send the displays' data with a fresh static image, if the data changed since."""
        if not self._displays:
            return
        key = self._data_key()
        if live and key == self._static_key:
            return
        self._static_key = key
        bundle = self._repr_mimebundle_() if live and self.comm is not None else self._static_bundle()
        for handle in self._displays:
            handle.update(bundle, raw=True)

    def _on_cell_end(self, result: Any = None) -> None:
        try:
            self._refresh_displays()
        except Exception:
            log.exception("lossviz_widget: could not refresh the static image")

    def _hook_cell_end(self) -> None:
        from IPython import get_ipython

        shell = get_ipython()
        if shell is not None and self._on_cell_end not in shell.events.callbacks["post_run_cell"]:
            shell.events.register("post_run_cell", self._on_cell_end)

    def _unhook_cell_end(self) -> None:
        if not self._displays:  # only displayed plots hook the cell end (and close() runs from __del__)
            return
        from IPython import get_ipython

        shell = get_ipython()
        if shell is not None and self._on_cell_end in shell.events.callbacks["post_run_cell"]:
            shell.events.unregister("post_run_cell", self._on_cell_end)

    @property
    def _background(self) -> bool:
        """Whether frames run on the background thread: to draw (in a kernel) or to log to disk."""
        return self._live or self._log_writer is not None

    def _frame_from_thread(self) -> int:
        return self._render(draw=self._live, budget=LIVE_DIAGNOSTICS_BUDGET)

    def _render(self, draw: bool = True, budget: int | None = None) -> int:
        """Build and push one frame; returns the number of widget messages sent. With ``budget``
        (live frames) the diagnostics read at most that many new points per series, and while
        they are behind the next frame is requested."""
        with self._render_lock:
            data = self._runs.snapshot()
            if self._log_writer is not None:
                self._log_writer.write_new(data)
            if not draw:
                return 0
            findings = self._current_findings(data, budget)
            if self._diag.pending:
                self._scheduler.request()
            frame = self._build_frame(self._builder, data, self._settings(), findings, self._groups)
            sent = self._grid.apply(frame)
            sent += self._runs_table.update(frame.runs)
            hidden = frozenset(self.hidden_runs)  # a hidden run's findings go with its lines
            listing = findings_html([f for f in findings if (f.run or DEFAULT_RUN) not in hidden], limit=FINDINGS_SHOWN)
            if listing != self._findings.value:
                self._findings.value = listing
                sent += 1
            readout = readout_html(frame.readout)
            if readout != self._readout.value:
                self._readout.value = readout
                sent += 1
            self._last_rows = frame.readout
            self._render_error = ""  # this frame rendered: an earlier rendering error is over (it stays logged)
            status = self._status_html(frame.readout)
            if status != self._status.value:
                self._status.value = status
                sent += 1
            return sent

    def _status_html(self, rows: list[ReadoutRow]) -> str:
        points = sum(r.count for r in rows)
        nonfinite = sum(r.nonfinite for r in rows)
        last = max((r.step for r in rows), default=None)
        parts = [] if last is None else [f"step {format_number(last)}"]
        runs = len({r.run for r in rows})
        what = f"{runs} runs, {len(rows)} series" if runs > 1 else f"{len(rows)} metrics"
        parts.append(f"{what}, {points:,} points")
        if nonfinite:
            parts.append(f'<span style="color:#d62728">&#9660; {nonfinite:,} non-finite (NaN/Inf) values</span>')
        errors = [self._render_error] if self._render_error else []
        errors += [f"following logs error: {type(e).__name__}: {e}"
                   for e in (f.current_error for f in list(self._followers)) if e is not None]
        parts += [f'<span style="color:#d62728">{html.escape(e)}</span>' for e in errors]
        parts += [html.escape(note) for f in list(self._followers) for note in f.notes]
        return '<span style="font-size:11px;color:#555">' + " &middot; ".join(parts) + "</span>"

    def _report_error(self, exc: BaseException) -> None:
        """A frame failed (the scheduler logged it): show it until a frame renders again."""
        self._render_error = f"rendering error: {type(exc).__name__}: {exc}"
        self._refresh_status()

    def _refresh_status(self) -> None:
        """Redraw the status line now (errors change between frames)."""
        with self._render_lock:
            self._status.value = self._status_html(self._last_rows)

    def _update_header(self) -> None:
        text = html.escape(self.title)
        self._header.value = f'<b style="font-size:14px">{text}</b>' if text else ""
