"""``LossPlot``: the widget users display and log to, a view over a :class:`~lossviz_widget.Recorder`.

The recorder holds the data and makes the frames (no widgets there); this class is the traits
(one per view setting, derived from :class:`~lossviz_widget._core.settings.ViewSettings`), the
layout (title, control bar, runs table, panels, findings, readout, status line) and the notebook
display. ``log()`` itself never touches a widget.

Outside a Jupyter kernel (a plain script) nothing is drawn in the background: logging, history
and exports work the same, and :meth:`LossPlot.flush` renders on demand. With ``log_file=`` the
frame thread runs anyway, to stream values to disk.
"""

from __future__ import annotations

import html
import os
import threading
import time
import warnings
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import ipywidgets as widgets
from bqplot import Figure
from traitlets import Bool, Unicode, observe, validate

from .._core.frame import Frame, ReadoutRow
from .._core.headroom import SETTLE_S
from .._core.recorder import Recorder
from .._core.runs import Run
from .._core.settings import SAVED
from .._core.store import History
from .._io.export import ExportOptions, export, read_file
from .._io.logfile import LogWriter, check_log_path
from .._io.tables import readout_html
from .._model import DEFAULT_RUN
from ..diagnostics import DiagnosticsConfig, Finding, findings_html
from ..follow import Follower
from ..forecast import Prediction
from ..readers import Batch, read_logs
from .cells import kernel_listens, watch_cells
from .controls import control_bar
from .display import WIDGET_CSS, Displays, in_kernel, static_bundle
from .figures import PanelGrid
from .reruns import close_tree, replace_previous
from .runs_table import RunsTable
from .snapshot import SnapshotButton
from .status import status_html
from .traits import SETTING_NAMES, check_options, setting_traits, validate_setting, view_settings

__all__ = ["FINDINGS_SHOWN", "READOUT_OPEN_ROWS", "LossPlot"]

READOUT_OPEN_ROWS = 8  # a readout of more rows starts collapsed (it is one click away)
FINDINGS_SHOWN = 20  # rows (one per run, code and series) listed under the plot at most (diagnose() returns all)
TEXT_INTERVAL_S = 0.5  # live frames update the text under the plot at most this often (_text_later)
# constructor keywords that are not traits
_OWN_KEYWORDS = ("log_file", "num_classes", "diagnostics_config", "on_rewind")


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

    Every view setting (``smoothing``, ``smoothing_mode``, ``log_y``, ``log_y_panels``, ``x_log``,
    ``best_metrics``, ``ignore_outliers``, ``x_axis``, ``max_points``, ``panel_height``, ``fps``,
    ``x_range``, ``hidden_runs``, ``highlight_run``; see
    :class:`~lossviz_widget._core.settings.ViewSettings`) is a constructor keyword and a trait.
    ``log_file`` streams every value to a JSON-lines file as it is logged; ``num_classes``
    enables the initial cross-entropy check (``ln C``); ``diagnostics_config`` sets every
    diagnostics threshold (see :mod:`lossviz_widget.diagnostics`). ``on_rewind`` is what a
    metric logged at a step below its last one does (a run resumed from a checkpoint, a re-run
    training cell): ``"purge"`` (default) drops its points at or after that step, as TensorBoard
    does, and marks "resumed at step N, k points replaced"; ``"new_run"`` goes on as a new run
    ``"<run> (resumed 1)"``; ``"raise"`` raises ``ValueError``. A misspelled keyword raises
    ``TypeError`` naming the closest valid one.
    """

    title = Unicode("", help="Heading shown above the panels.").tag(sync=True)
    follow_latest = Bool(True, help="Auto-range x to all data as it grows; off while zoomed.").tag(sync=True)
    diagnostics = Bool(True, help="Detect overfitting, divergence, plateaus... and show the findings; "
                                  "False computes nothing.").tag(sync=True)
    vars().update(setting_traits())  # smoothing, smoothing_mode, log_y, ... (one per ViewSettings field)

    def __init__(self, title: str = "", *, log_file: str | os.PathLike[str] | None = None,
                 num_classes: int | None = None, diagnostics_config: DiagnosticsConfig | None = None,
                 on_rewind: str = "purge", **options: Any) -> None:
        check_options(type(self), options, _OWN_KEYWORDS)
        if log_file is not None:
            check_log_path(log_file)  # a wrong suffix is refused before anything starts
        # Everything the observers touch exists before the traits are set (super().__init__ sets them).
        self._recorder = Recorder(diagnostics_config=diagnostics_config, num_classes=num_classes,
                                  on_rewind=on_rewind)
        # The hot path: log() is the recorder's own bound method (no extra call per step).
        self.log = self._recorder.log  # type: ignore[method-assign]
        self._draw_lock = threading.Lock()  # widgets are written from the frame thread and followers
        watch_cells()  # panels nobody sees get no frames while the kernel would hear them seen again
        self._grid = PanelGrid(on_zoom=self._on_browser_zoom, on_width=self._on_browser_width,
                               on_seen=self._recorder.request_frame, skip_unseen=kernel_listens)
        self._header = widgets.HTML()
        self._header.add_class("lossviz-title")
        self._findings = widgets.HTML()
        self._findings.add_class("lossviz-findings")
        self._readout = widgets.HTML(readout_html([]))
        self._readout.add_class("lossviz-readout")
        # collapsible; open while short, collapsed once when it first grows past READOUT_OPEN_ROWS rows
        self._readout_box = widgets.Accordion(children=[self._readout], titles=("latest and best",),
                                              selected_index=0)
        self._readout_box.add_class("lossviz-readout-box")
        self._readout_folded = False
        self._status = widgets.HTML()
        self._status.add_class("lossviz-status")
        self._last_rows: list[ReadoutRow] = []
        self._text_at = 0.0  # when the frame text (findings, readout, status) was last updated: _text_later
        self._flushing = False  # in flush(): the frame updates the text whatever _text_later says
        self._last_notes: list[str] = []
        self._snapshot = SnapshotButton()
        self._displays = Displays(self._widget_bundle, self._static_bundle, self._display_key)
        # the display's style (see _ui.display): it applies while this widget renders
        self._style = widgets.HTML(f"<style>{WIDGET_CSS}</style>", layout=widgets.Layout(display="none"))
        self._watcher: Any = None  # the last watch()'s Watcher
        super().__init__(title=title, **options)
        self._recorder.settings = view_settings(self)
        self._grid.set_panel_height(self._recorder.settings.panel_height)
        self._grid.set_renderer(self._recorder.settings.renderer)
        self._update_header()
        bar = control_bar(self)
        bar.children += (self._snapshot,)
        self._runs_table = RunsTable(self)
        self.children = [self._header, bar, self._runs_table.box, self._grid.box, self._findings,
                         self._readout_box, self._status, self._style]
        self.add_class("lossviz")
        self._recorder.attach_view(self._draw, live=in_kernel(), on_status=self._refresh_status)
        if log_file is not None:
            self._open_log(log_file)
        replace_previous(self)  # a re-run cell's earlier plots stop (see _ui.reruns)

    # -- traits ---------------------------------------------------------------------------------

    @validate(*SETTING_NAMES)
    def _check_setting(self, proposal: dict[str, Any]) -> Any:
        return validate_setting(proposal["trait"].name, proposal["value"])

    @observe(*SETTING_NAMES)
    def _on_setting(self, change: dict[str, Any]) -> None:
        self._recorder.settings = view_settings(self)
        if change["name"] == "panel_height":
            self._grid.set_panel_height(change["new"])
        if change["name"] == "renderer":
            with self._draw_lock:
                self._grid.set_renderer(change["new"])
        if change["name"] == "x_range" and change["new"] is not None:
            self.follow_latest = False

    # The setting traits are made from ViewSettings at class creation, so mypy does not see them as
    # attributes: they are read through self._recorder.settings and written with set_trait (what
    # ``self.x_range = ...`` does: validate, notify, sync).

    @observe("follow_latest")
    def _on_follow(self, change: dict[str, Any]) -> None:
        if change["new"]:
            self.set_trait("x_range", None)

    def _on_browser_zoom(self, x_range: tuple[float, float]) -> None:
        """The user panned/zoomed: re-downsample for the visible range (full fidelity)."""
        self.set_trait("x_range", x_range)

    def _on_browser_width(self, width: int) -> None:
        """The browser measured the widest plot area: lines get at most 2 points per pixel column."""
        if width != self._recorder.settings.plot_width:
            self.set_trait("plot_width", width)

    @observe("diagnostics")
    def _on_diagnostics(self, change: dict[str, Any]) -> None:
        self._recorder.diagnostics = change["new"]

    @observe("title")
    def _on_title(self, change: dict[str, Any]) -> None:
        self._update_header()

    # -- taking in data -------------------------------------------------------------------------

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
        self._recorder.log(metrics, step=step, run=run, **values)  # instances call the recorder's directly

    def extend(self, metric: str, steps: Any, values: Any, wall_time: Any = None, *, run: str | None = None) -> None:
        """Append many points of one metric at once (reading a log, replaying a run): O(len).

        ``steps`` and ``values`` (and ``wall_time``, epoch seconds; None: now) are 1-D
        array-likes of equal length: lists, NumPy arrays or tensors. Steps must be finite,
        non-decreasing and not below the metric's last step; NaN/Inf values are kept. Bad
        input raises an error naming the metric, and then nothing is appended.
        """
        self._recorder.extend(metric, steps, values, wall_time, run=run)

    def run(self, name: str) -> Run:
        """A handle that logs to run ``name``: ``r = plot.run("lr=1e-3"); r.log(loss=0.5)``.

        Runs appear in the plot once they hold a value; each keeps one colour in every panel.
        """
        return self._recorder.run(name)

    @property
    def runs(self) -> tuple[str, ...]:
        """Names of the runs holding data, in the order their first value was logged."""
        return self._recorder.runs

    @property
    def recorder(self) -> Recorder:
        """The widget-free recorder behind this plot (data, frames, diagnostics, streaming)."""
        return self._recorder

    # -- reading --------------------------------------------------------------------------------

    @property
    def history(self) -> History:
        """Full-resolution data: ``plot.history["loss"].steps / .values / .wall_time``.

        With one run (the usual case, whatever its name) that run's data; with several,
        the default run's (what ``log()`` without ``run=`` records). Each run's own data:
        ``plot.run(name).history``.
        """
        return self._recorder.history

    def frame(self, max_points: int = 4000) -> Frame:
        """The current view as data: panels, their lines (x/y arrays as drawn), colours, y ranges
        and the readout, at ``max_points`` points per line.

        What the kernel-side images and the HTML report draw; also the way to check in a test what
        the plot shows. Built apart from the live view, so calling it never disturbs a frame.
        """
        return self._recorder.frame(max_points)

    def diagnose(self) -> list[Finding]:
        """Every finding so far (oldest first), after reading the points logged since the last frame.

        Empty when ``diagnostics`` is off. Rules and thresholds: :mod:`lossviz_widget.diagnostics`.
        """
        return self._recorder.diagnose()

    def forecast_to(self, steps: float | None = None, target: float | None = None, *,
                    metric: str | None = None) -> None:
        """Forecast to step ``steps`` and say when ``metric`` reaches ``target``.

        ``steps`` is the horizon (None: twice the last step); ``target`` a value of ``metric``
        (None: the main metric, the first of the ``loss`` family), and the readout then says
        "reaches 1.8 at step ~41,000 (in ~12 min)" or "not expected to reach 1.8 by step
        100,000". A ``metric`` that is neither a loss nor an accuracy is forecast from then on
        too. Shown while ``forecast`` is on; see :meth:`prediction` and ``docs/forecasting.md``.
        """
        self._recorder.forecast_to(steps, target, metric=metric)

    def prediction(self, metric: str, run: str | None = None) -> Prediction:
        """The forecast of ``metric`` now: ``.final`` at the horizon, ``.low``/``.high`` (80%),
        ``.eta_step``/``.eta_seconds`` to the target, ``.model``, or ``.reason`` when there is none
        (``.ok`` says which); ``.sentence()`` is what the readout shows. ``run``: None for the only
        (or default) run. Works whether ``forecast`` is on or not (needs SciPy)."""
        return self._recorder.prediction(metric, run)

    def flush(self) -> None:
        """Draw (and write to ``log_file``) everything logged so far, now, on this thread.

        Also refreshes the static image that saved notebooks show. Works without a browser.
        """
        self._flushing = True  # the text under the plot too, now (see _text_later)
        try:
            self._recorder.flush()
        finally:
            self._flushing = False
        self._displays.refresh()

    # -- files ----------------------------------------------------------------------------------

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
        options = ExportOptions(title=self.title, settings=self._recorder.settings.saved(), width=width,
                                height=height, dpi=dpi)
        return export(self._recorder, path, options)

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
        check_options(cls, options, _OWN_KEYWORDS)
        p = Path(path).expanduser()
        data = read_file(p)
        if data.skipped_lines:
            warnings.warn(f"{str(p)!r}: skipped {data.skipped_lines} incomplete or corrupt line(s)",
                          RuntimeWarning, stacklevel=2)
        kwargs: dict[str, Any] = {k: v for k, v in data.settings.items() if k in SAVED}
        kwargs["title"] = data.title
        kwargs.update(options)
        log_file = kwargs.pop("log_file", None)
        plot = cls(**kwargs)
        plot._recorder.load(data.runs)
        if log_file is not None:
            same = Path(log_file).expanduser().resolve() == p.resolve()
            plot._open_log(log_file, resume=same)
        plot._recorder.request_frame()
        return plot

    def _open_log(self, path: str | os.PathLike[str], resume: bool = False) -> None:
        """Stream values to ``path`` from now on; the history already held is written first
        (or, with ``resume``, taken to be in the file already)."""
        data = self._recorder.data()
        lengths = {(run, name): len(h) for run, metrics in data.items() for name, h in metrics.items()}
        writer = LogWriter(path, title=self.title, settings=self._recorder.settings.saved(),
                           already_written=lengths if resume else None)
        self._recorder.add_sink(writer)

    # -- inputs ---------------------------------------------------------------------------------

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
    def _from_batches(cls, batches: Sequence[Batch], options: dict[str, Any], source: Any = None) -> LossPlot:
        """A new plot (``options`` to the constructor) holding ``batches``, read from ``source``
        (a tracking server's reader: its run params serve :meth:`group_runs`)."""
        plot = cls(**options)
        if source is not None:
            plot._recorder.add_param_source(source)
        try:
            plot._recorder.extend_batches(batches)
        except ValueError:
            plot.close()
            raise
        plot._recorder.request_frame()
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
        from ..readers.mlflow import MlflowSource

        source = MlflowSource(tracking_uri, experiment, experiment_id=experiment_id, filter_string=filter_string)
        return cls._from_batches(source.poll(), options, source)

    def follow_mlflow(self, tracking_uri: str, experiment: str | None = None, *, experiment_id: str | None = None,
                      filter_string: str = "", interval: float = 5.0) -> Follower:
        """Show an MLflow experiment's runs live: new points and new runs, every ``interval`` seconds.

        Each poll asks only for what changed (see :mod:`lossviz_widget.readers.mlflow`); a
        server that is down, or an experiment not created yet, shows in the status line
        until a poll succeeds. Stop with :meth:`unfollow` or :meth:`close`.
        """
        from ..readers.mlflow import MlflowSource

        source = MlflowSource(tracking_uri, experiment, experiment_id=experiment_id, filter_string=filter_string)
        return self._follow_sources([source], interval)

    @classmethod
    def from_trackio(cls, project: str | None = None, *, db_path: str | os.PathLike[str] | None = None,
                     **options: Any) -> LossPlot:
        """A new plot holding every run of a trackio project (its local database, read-only).

        ``project`` is found where trackio keeps it (``TRACKIO_DIR``; needs ``trackio``), or give
        the database file as ``db_path``. See :mod:`lossviz_widget.readers.trackio`.
        """
        from ..readers.trackio import TrackioSource

        source = TrackioSource(project, db_path=db_path)
        if not source.path.exists():
            raise FileNotFoundError(f"no trackio database at {str(source.path)!r}")
        return cls._from_batches(source.poll(), options, source)

    def follow_trackio(self, project: str | None = None, *, db_path: str | os.PathLike[str] | None = None,
                       interval: float = 2.0) -> Follower:
        """Show a trackio project's runs live, reading only the rows written since the last poll."""
        from ..readers.trackio import TrackioSource

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
        rec = self._recorder
        follower = Follower(sources, rec.extend_batches, interval=interval,
                            on_error=lambda exc: rec.status_changed(), on_recover=rec.status_changed)
        for source in follower.sources:
            if hasattr(source, "params"):
                rec.add_param_source(source)
        rec.add_source(follower)
        follower.start()
        return follower

    def unfollow(self) -> None:
        """Stop every :meth:`follow`: the polling threads end before this returns.

        Raises ``TimeoutError`` if a thread is stuck in a poll (say, on a hung network file
        system) after asking every follower to stop."""
        self._recorder.stop_sources()

    def watch(self, model: Any, optimizer: Any = None, *, every: int = 10, activations: bool = True,
              config: Any = None, start: int | None = None) -> Any:
        """Watch a PyTorch model: per layer gradient norm, weight norm, update/weight ratio and, per
        activation module, output mean/std and dead ReLU units, as heatmaps under the panels; the
        total gradient norm as the ``watch/grad_norm`` curve; findings (exploding or vanishing
        gradients, dead ReLUs, update ratio out of 1e-4…1e-2, loss spike after a gradient spike).

        ``optimizer`` adds the update ratio; ``every``: measure one training step in ``every``
        (steps count optimizer steps, or backward passes without an optimizer, from ``start``, by
        default one past the plot's last step). Reductions stay on the device until a frame fetches them in one copy.
        ``config``: a :class:`lossviz_widget.diagnostics.watch.WatchConfig`. Returns the
        :class:`lossviz_widget.watch.Watcher`; a new ``watch()`` replaces the previous one. See
        ``docs/watch.md``.
        """
        from ..watch.view import WatchView
        from ..watch.watcher import Watcher

        self.unwatch()
        view = WatchView()
        self._watcher = Watcher(self._recorder, model, optimizer, every=every, activations=activations,
                                config=config, start=start, draw=view.draw)
        view.prepare(self._watcher.expected)
        kept = [c for c in self.children if "lossviz-watch" not in c._dom_classes]
        i = kept.index(self._grid.box) + 1
        replaced = [c for c in self.children if c not in kept]  # a previous watch's maps
        self.children = [*kept[:i], view.box, *kept[i:]]
        for old in replaced:
            old.close()
            close_tree(old)
        return self._watcher

    def unwatch(self) -> None:
        """Remove :meth:`watch`'s hooks from the model and optimizer; its maps, curve and findings stay."""
        if self._watcher is not None:
            self._watcher.close()
            self._recorder.request_frame()

    @classmethod
    def from_history(cls, history: Any, **options: Any) -> LossPlot:
        """A new plot of results that already exist, at steps = epochs.

        ``history`` is a ``keras.callbacks.History`` (what ``model.fit`` returns), its
        ``.history`` dict, or any mapping of metric name -> equal-length list of per-epoch
        values. ``options`` go to ``LossPlot``. Bad input (ragged lists, non-numeric values,
        an empty mapping) raises ``TypeError``/``ValueError`` naming the metric.
        """
        from ..integrations.history import history_rows

        rows = history_rows(history)  # everything checked before a plot exists
        plot = cls(**options)
        for step, row in rows:
            plot.log(row, step=step)
        return plot

    # -- run groups -----------------------------------------------------------------------------

    def group_runs(self, by: Any, *, stat: str = "mean", band: str = "minmax", show_members: bool = False) -> None:
        r"""Draw runs that differ only by seed (say) as one ``stat`` line with a shaded ``band``.

        ``by`` is a regex whose match in a run's name is what differs between members
        (``r"seed=\d+"``: ``"lr=0.1 seed=0"`` and ``"lr=0.1 seed=1"`` form group ``"lr=0.1"``)
        or a function ``(name, params) -> key`` (params: a tracking server's, else ``{}``;
        ``None`` leaves a run alone). ``stat``: ``"mean"`` or ``"median"``; ``band``: ``"minmax"`` or
        ``"std"`` (± one standard deviation). Members are hidden unless ``show_members``; runs that
        arrive later join their group. Also in exported images and reports. How unequal steps are
        aligned: :mod:`lossviz_widget._core.run_groups`. :meth:`ungroup_runs` undoes it.
        """
        self._recorder.group_runs(by, stat=stat, band=band, show_members=show_members)

    def ungroup_runs(self) -> None:
        """Draw every run on its own again (undoes :meth:`group_runs`)."""
        self._recorder.ungroup_runs()

    # -- browser snapshot -----------------------------------------------------------------------

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
        within ``timeout`` seconds (not displayed, browser closed), ``last_snapshot_error``
        says so. For an image *during* training, in scripts or CI, use ``export("x.png")``.
        """
        return self._snapshot.request(timeout)

    @property
    def last_snapshot_error(self) -> str | None:
        """Why the last :meth:`request_snapshot` got no image (None when it did, or none was asked)."""
        return self._snapshot.last_error

    # -- what the widget shows, read-only (for tests and tools) ---------------------------------

    @property
    def figures(self) -> dict[str, Figure]:
        """The bqplot ``Figure`` of each panel, by family in display order: what the browser draws.

        With ``renderer="svg"`` a figure's ``marks`` are the faint raw lines (one per series), the
        main lines in the same order (``labels`` is the legend label: the metric, or ``"run: metric"``
        with several runs), then two ``Scatter`` marks: non-finite values (``marker="triangle-down"``)
        and diagnostics findings (``marker="diamond"``). With ``renderer="canvas"`` (the default) the
        series' lines are not among the marks: a canvas draws them from points sent apart from
        bqplot (the run groups' bands and lines and the two ``Scatter`` marks stay). Every frame
        writes to them: read them, don't keep state in them. The same view as plain data:
        :meth:`frame`.
        """
        return {family: panel.figure for family, panel in tuple(self._grid.panels.items())}

    @property
    def shown_html(self) -> dict[str, str]:
        """The HTML the text parts show now: ``"title"``, ``"findings"`` (the diagnostics listing
        under the panels), ``"readout"`` (latest and best of each series) and ``"status"`` (the
        status line: points, series, errors on the plotting side)."""
        return {"title": self._header.value, "findings": self._findings.value, "readout": self._readout.value,
                "status": self._status.value}

    # -- lifecycle ------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop following, stop the render thread, write out ``log_file``, and close every widget.

        Displays of the plot keep its final static image and summary.
        """
        recorder = getattr(self, "_recorder", None)
        if recorder is None:  # __init__ failed before there was anything to close
            super().close()
            return
        self.unwatch()  # its maps are not redrawn while closing
        try:
            recorder.close()  # a TimeoutError (a follower stuck on a slow file system) comes after the rest
        finally:
            self._displays.close()
            self._grid.close()
            close_tree(self)  # every child, and their layouts, styles, scales... (each a comm)
            super().close()

    # -- display: the live widget plus a static image for saved notebooks -----------------------

    def _widget_bundle(self) -> dict[str, Any]:
        """The widget view's output: the view, and a one-line text where it cannot render."""
        bundle: dict[str, Any] = super()._repr_mimebundle_() if self.comm is not None else {}
        bundle["text/plain"] = f"LossPlot {self.title!r}" if self.title else "LossPlot"
        return bundle

    def _static_bundle(self) -> dict[str, Any]:
        return static_bundle(self._recorder.frame(), self.title)

    def _display_key(self) -> Hashable:
        data = self._recorder.data()
        lengths = tuple((r, n, len(h)) for r, metrics in data.items() for n, h in metrics.items())
        return lengths, self._recorder.settings, self.title

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        """The live widget, plus a static PNG and text summary for viewers without widget state
        (GitHub, nbviewer, nbconvert; ipympl's precedent), in one bundle. (Displayed in a notebook,
        :meth:`_ipython_display_` puts the static image in an output of its own: see :mod:`._ui.display`.)"""
        static = self._static_bundle()
        static.pop("text/html", None)
        return {**static, **self._widget_bundle(), "text/plain": static["text/plain"]}

    def _ipython_display_(self) -> None:
        self._displays.show()

    # -- drawing (called by the recorder, on its frame thread or in flush()) ---------------------

    def _draw(self, frame: Frame, findings: Sequence[Finding]) -> int:
        """Push one frame to the widgets; returns the number of widget messages sent."""
        with self._draw_lock:
            sent = self._grid.apply(frame)
            if self._grid.settling:  # new scales: their axes' ticks come with the next frame
                self._recorder.request_frame()
            if self._grid.growing:  # room left for a run's growth: a frame once it stopped drops it
                self._recorder.request_frame_later(SETTLE_S)
            if self._text_later():
                return sent
            sent += self._runs_table.update(frame.runs)
            hidden = self._recorder.settings.hidden_runs  # a hidden run's findings go with its lines
            listing = findings_html([f for f in findings if (f.run or DEFAULT_RUN) not in hidden],
                                    limit=FINDINGS_SHOWN)
            sent += _set(self._findings, listing)
            sent += _set(self._readout, readout_html(frame.readout))
            sent += self._fold_readout(frame.readout)
            self._last_rows, self._last_notes = frame.readout, frame.notes
            sent += _set(self._status, status_html(frame.readout, self._recorder.errors(), self._recorder.notes(),
                                                   frame.notes))
            return sent

    def _text_later(self) -> bool:
        """Whether this frame leaves the runs table, findings, readout and status text to a later one.

        Frames drawn in the background while a browser may show them update the text at most every
        TEXT_INTERVAL_S: each change re-lays out HTML tables in the browser, about a quarter of its
        main-thread time per live frame with the canvas renderer (benchmarks/BROWSER.md). A frame
        that skips them asks for another one, so the last values always arrive; ``flush()`` always
        updates them."""
        now = time.monotonic()
        if self._flushing or not self._recorder.background:
            self._text_at = now
            return False
        if now - self._text_at < TEXT_INTERVAL_S:
            self._recorder.request_frame()
            return True
        self._text_at = now
        return False

    def _fold_readout(self, rows: Sequence[ReadoutRow]) -> int:
        """Title the readout box with what it holds; collapse it once, when it first grows long."""
        runs = len({r.run for r in rows})
        title = f"latest and best: {len(rows)} series" + (f" in {runs} runs" if runs > 1 else "")
        sent = 0
        if self._readout_box.titles != (title,):
            self._readout_box.titles = (title,)
            sent += 1
        if len(rows) > READOUT_OPEN_ROWS and not self._readout_folded:
            self._readout_folded = True
            self._readout_box.selected_index = None
            sent += 1
        return sent

    def _refresh_status(self) -> None:
        """Redraw the status line now (errors change between frames)."""
        with self._draw_lock:
            self._status.value = status_html(self._last_rows, self._recorder.errors(), self._recorder.notes(),
                                             self._last_notes)

    def _update_header(self) -> None:
        text = html.escape(self.title)
        self._header.value = f'<b style="font-size:14px">{text}</b>' if text else ""


def _set(w: widgets.HTML, value: str) -> int:
    """Set an HTML widget's value if it changed; the number of messages that sent (0 or 1)."""
    if value == w.value:
        return 0
    w.value = value
    return 1
