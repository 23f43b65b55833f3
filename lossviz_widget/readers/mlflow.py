"""Runs of an MLflow experiment, read through MLflow's own client and followed as they grow.

:class:`MlflowSource` is a source like :class:`~lossviz_widget.readers.LogSource`: each
:meth:`~MlflowSource.poll` returns :class:`~lossviz_widget.readers.Batch` es of the points
logged since the previous poll, every point at full resolution (no sampling: MLflow's
own comparison charts load 320 points per metric, mlflow/mlflow#17645).

What one poll does:

* **Runs**: ``MlflowClient.search_runs`` over the experiment (``filter_string`` as in
  MLflow's search syntax), all pages, deleted runs included so a deletion is noticed.
  A run that appears later is picked up at the next poll.
* **Which metrics changed**: each run in that answer carries its metrics' latest
  ``(step, timestamp, value)``; a metric whose latest entry is the one already read is
  not asked for, so a poll where nothing changed costs the ``search_runs`` request(s)
  alone. Finished runs (``FINISHED``, ``FAILED``, ``KILLED``) stop changing, so they cost
  nothing after their last points are read.
* **New points**: ``get_metric_history`` paged with ``max_results`` from the number of
  points already held, minus one: the first point returned must be the last one held,
  which proves the server's offset still lines up. MLflow orders a metric's history by
  ``(timestamp, step, value)``; a point inserted before the held ones (a late write with
  an older timestamp) breaks that check, and then the whole history is read again; new
  are the entries after the last held one in that order, and those at a step beyond the
  last one shown. The page tokens are
  made by MLflow's own ``SearchUtils.create_page_token`` (its REST server and SQL store
  both page by offset); should a server not honour them, the check above fails and the
  history is read whole, which is slower but still exact.
* **Order**: MLflow allows several values per step and logging steps out of order. Each
  poll's new points of a metric are sorted by step, stably, so several values at one
  step stay in the order they were logged (by timestamp); a point whose step is below the
  last step already shown cannot be drawn on a line that only grows to the right, and is
  counted in :attr:`MlflowSource.skipped` instead.
* **Values**: NaN stays NaN; MLflow stores ``±inf`` as ``±1.7976931348623157e308`` (the
  largest double), which is turned back into ``±inf``. Timestamps (ms) become wall times
  (epoch seconds).
* **Deleted runs** (``lifecycle_stage == "deleted"``) are no longer followed; their points
  stay in the plot and :attr:`MlflowSource.notes` says so.
* **Server gone**: an ``http(s)`` server is first asked for its ``/health`` page (a 5 s
  timeout), so a server that is down fails the poll at once (MLflow's client would retry
  for minutes); the error shows in the plot's status line and the next poll that reaches
  the server resumes where the last one stopped.

Run labels are run names (``run.info.run_name``). A run whose name is already taken gets
the params that differ from the run(s) holding it, ``"name (lr=0.1)"``, else its run id's
first 8 characters; labels never change once given. :attr:`MlflowSource.params` maps each
label to the run's params (for :meth:`LossPlot.group_runs` with a function).

``mlflow`` (``mlflow-skinny`` is enough) is imported when a source is created, not before.
"""

from __future__ import annotations

import math
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._tail import Batch, forward_mask

__all__ = ["PAGE_SIZE", "MlflowSource"]

PAGE_SIZE = 25_000  # get_metric_history page (MLflow's own client uses 25,000)
RUNS_PAGE_SIZE = 1000  # search_runs page
HEALTH_TIMEOUT_S = 5.0
_HISTORY = "/api/2.0/mlflow/metrics/get-history"  # MLflow's REST API (GetMetricHistory)
_FINISHED = frozenset({"FINISHED", "FAILED", "KILLED"})
_MAX = sys.float_info.max

Entry = tuple[int, float, float]  # one logged value: (timestamp ms, step, value)
Key = tuple[int, float, float]  # (timestamp ms, step, value with NaN as 0): MLflow's order of a history


def _order_key(e: Entry) -> Key:
    """Where MLflow's SQL store puts an entry: by timestamp, step, value (NaN stored as 0)."""
    return e[0], e[1], 0.0 if math.isnan(e[2]) else e[2]


@dataclass
class _Series:
    """What is held of one metric of one run."""

    count: int = 0  # entries read, in MLflow's order
    last: Key | None = None  # the last of them
    latest: tuple | None = None  # the run's latest (step, timestamp, value) when last read
    last_step: float = -math.inf  # the last step delivered


@dataclass
class _RunState:
    label: str
    params: dict[str, str]
    series: dict[str, _Series] = field(default_factory=dict)
    deleted: bool = False


def _import_mlflow() -> Any:
    try:
        import mlflow  # noqa: F401
        from mlflow.tracking import MlflowClient
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("following MLflow needs mlflow (or mlflow-skinny): pip install 'lossviz-widget[mlflow]'") from exc
    return MlflowClient


class MlflowSource:
    """The runs of one MLflow experiment (see the module docstring).

    ``experiment`` is an experiment name, or an id given as ``experiment_id``. An
    experiment that does not exist (yet) makes :meth:`poll` raise ``ValueError``; a
    follower shows that and keeps polling, so it is picked up once created.
    """

    def __init__(self, tracking_uri: str, experiment: str | None = None, *, experiment_id: str | None = None,
                 filter_string: str = "") -> None:
        if (experiment is None) == (experiment_id is None):
            raise TypeError("give exactly one of experiment (a name) and experiment_id")
        for what, v in (("tracking_uri", tracking_uri), ("experiment", experiment), ("experiment_id", experiment_id),
                        ("filter_string", filter_string)):
            if v is not None and not isinstance(v, str):
                raise TypeError(f"{what} must be a str, got {type(v).__name__}")
        client_class = _import_mlflow()
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.filter_string = filter_string
        self.client = client_class(tracking_uri=tracking_uri)
        self.skipped = 0  # points passed over: a step below the last one shown (see the module docstring)
        self.requests = 0  # get_metric_history requests made (a measure of the follow cost)
        self.notes: list[str] = []  # what happened to followed runs (deleted)
        self._experiment_id = experiment_id
        self._runs: dict[str, _RunState] = {}  # run id -> state, in the order runs were first seen
        self._labels: dict[str, str] = {}  # label -> run id

    @property
    def params(self) -> dict[str, dict[str, str]]:
        """Run label -> that run's MLflow params."""
        return {state.label: dict(state.params) for state in list(self._runs.values())}  # (polled on another thread)

    @property
    def labels(self) -> dict[str, str]:
        """Run label -> MLflow run id."""
        return dict(list(self._labels.items()))

    def poll(self) -> list[Batch]:
        """The points logged since the last poll, for every run of the experiment."""
        self._check_server()
        batches: list[Batch] = []
        for run in self._search_runs():
            run_id = run.info.run_id
            state = self._runs.get(run_id)
            if run.info.lifecycle_stage == "deleted":
                if state is not None and not state.deleted:
                    state.deleted = True
                    self.notes.append(f"MLflow run {state.label!r} was deleted: no longer followed")
                continue
            if state is None:
                state = self._runs[run_id] = _RunState(self._label_for(run), dict(run.data.params))
                self._labels[state.label] = run_id
            elif state.deleted:  # restored
                state.deleted = False
                self.notes.append(f"MLflow run {state.label!r} was restored: followed again")
            for m in run.data.to_proto().metrics:
                latest = (m.step, m.timestamp, m.value)
                series = state.series.setdefault(m.key, _Series())
                if series.latest == latest:
                    continue
                batch = self._read_new(run_id, state.label, m.key, series)
                series.latest = latest
                if batch is not None:
                    batches.append(batch)
        return batches

    def _check_server(self) -> None:
        """Fail fast when an http(s) tracking server does not answer (MLflow's client retries for minutes)."""
        if not self.tracking_uri.startswith(("http://", "https://")):
            return
        url = self.tracking_uri.rstrip("/") + "/health"
        try:
            with urllib.request.urlopen(url, timeout=HEALTH_TIMEOUT_S) as response:
                response.read()
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ConnectionError(f"MLflow server {self.tracking_uri} not reachable: {reason}") from None

    def _experiment(self) -> str:
        if self._experiment_id is None:
            found = self.client.get_experiment_by_name(self.experiment)
            if found is None:
                raise ValueError(f"no MLflow experiment named {self.experiment!r} at {self.tracking_uri}")
            self._experiment_id = found.experiment_id
        return self._experiment_id

    def _search_runs(self) -> list[Any]:
        from mlflow.entities import ViewType

        runs: list[Any] = []
        token = None
        while True:
            page = self.client.search_runs([self._experiment()], self.filter_string, run_view_type=ViewType.ALL,
                                           max_results=RUNS_PAGE_SIZE, order_by=["attributes.start_time ASC"],
                                           page_token=token)
            runs.extend(page)
            token = page.token
            if not token:
                return runs

    def _label_for(self, run: Any) -> str:
        name = run.info.run_name or run.info.run_id
        if name not in self._labels:
            return name
        params = dict(run.data.params)
        others = [s.params for s in self._runs.values() if s.label == name or s.label.startswith(name + " (")]
        differing = sorted(k for k, v in params.items() if any(o.get(k) != v for o in others))
        label = f"{name} ({', '.join(f'{k}={params[k]}' for k in differing)})" if differing else ""
        return label if label and label not in self._labels else f"{name} ({run.info.run_id[:8]})"

    def _history(self, run_id: str, key: str, start: int) -> list[Entry]:
        """The entries of one metric from position ``start`` on (MLflow's order), all pages."""
        from mlflow.utils.search_utils import SearchUtils

        token = SearchUtils.create_page_token(start).decode("ascii") if start else None
        out: list[Entry] = []
        while True:
            entries, token = self._page(run_id, key, token)
            self.requests += 1
            out.extend(entries)
            if not token:
                return out

    def _page(self, run_id: str, key: str, token: str | None) -> tuple[list[Entry], str | None]:
        """One page of ``get_metric_history`` and the next page's token.

        From a tracking server, the REST endpoint's JSON is read directly (through MLflow's own
        ``http_request``, so its authentication and TLS settings apply): building MLflow's
        protobuf and ``Metric`` objects for each point took most of the client's time (about
        50 us per point). Other stores (``sqlite:///...``) through the store's own call.
        """
        from mlflow.store.tracking.rest_store import RestStore

        store = self.client._tracking_client.store  # the paged call; MlflowClient's own reads every page
        if isinstance(store, RestStore):
            from mlflow.utils.rest_utils import http_request, verify_rest_response

            params: dict[str, Any] = {"run_id": run_id, "metric_key": key, "max_results": PAGE_SIZE}
            if token:
                params["page_token"] = token
            response = verify_rest_response(http_request(store.get_host_creds(), _HISTORY, "GET", params=params),
                                            _HISTORY)
            body = response.json()
            # proto JSON: int64 may come as strings, non-finite doubles as "NaN"/"Infinity"; float() reads both
            entries = [(int(m.get("timestamp", 0)), float(m.get("step", 0)), float(m.get("value", 0.0)))
                       for m in body.get("metrics", ())]
            return entries, body.get("next_page_token") or None
        page = store.get_metric_history(run_id, key, max_results=PAGE_SIZE, page_token=token)
        return [(int(m.timestamp), float(m.step), float(m.value)) for m in page], getattr(page, "token", None)

    def _read_new(self, run_id: str, label: str, key: str, series: _Series) -> Batch | None:
        """Entries of one metric after the held ones, as a batch sorted by step (None: nothing new to draw)."""
        start = max(series.count - 1, 0)
        entries = self._history(run_id, key, start)
        new = entries
        if series.last is not None:
            if entries and _order_key(entries[0]) == series.last:
                new = entries[1:]
            else:  # something was inserted before the held entries: read it all, keep what is after
                start, entries = 0, self._history(run_id, key, 0)
                last, last_step = series.last, series.last_step  # no entry beyond either was delivered
                new = [e for e in entries if _order_key(e) > last or e[1] > last_step]
        series.count = start + len(entries)
        if entries:
            series.last = _order_key(entries[-1])  # the entry at position count - 1
        if not new:
            return None
        columns = np.array(new, dtype=np.float64)  # timestamps in ms are exact in float64 until the year 287,000
        steps, values, walls = columns[:, 1], columns[:, 2], columns[:, 0] / 1000.0
        order = np.argsort(steps, kind="stable")
        steps, values, walls = steps[order], values[order], walls[order]
        keep = forward_mask(steps, series.last_step)
        if not keep.all():
            self.skipped += int(len(keep) - np.count_nonzero(keep))
            steps, values, walls = steps[keep], values[keep], walls[keep]
        if not len(steps):
            return None
        series.last_step = float(steps[-1])
        values[np.abs(values) == _MAX] *= math.inf  # MLflow's stored +-inf
        return Batch(label, key, steps, values, walls)
