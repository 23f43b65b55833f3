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
* **New points**: a metric read for the first time is read whole with
  ``get_metric_history`` (MLflow's REST API), paged with ``max_results`` (25,000). After
  that, only its steps from the last one shown to the run's latest are asked for, with
  ``get-history-bulk-interval`` (the endpoint MLflow's own charts use; on a SQL store its
  ``get_metric_history_bulk_interval``): an index range on the server, where
  ``get_metric_history`` would sort the run's whole history by timestamp at every request
  (measured: 1 s per request for 100k-point runs on a busy 2-core machine; see
  ``benchmarks/TRACKING.md``). Runs whose last steps are close are asked for in one request
  (up to 100). That endpoint samples a range holding more than 2,500 entries per run; an
  answer of 2,500 entries or more for a run is therefore not trusted, and that metric is
  read whole again instead (as it is where the endpoint does not exist). Of what comes
  back, new are the entries at a step beyond the last one shown, and those at that step
  not delivered yet (several values per step).
* **Order**: MLflow allows several values per step and logging steps out of order. Each
  poll's new points of a metric are sorted by step, stably, so several values at one
  step stay in the order they were logged (MLflow's order within a step: timestamp). A
  point logged at a step below the last one shown cannot be drawn on a line that only
  grows to the right, and is not read (MLflow's UI still shows it).
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

from ._tail import Batch

__all__ = ["PAGE_SIZE", "MlflowSource"]

PAGE_SIZE = 25_000  # get_metric_history page (MLflow's own client uses 25,000)
BULK_MAX = 2500  # get-history-bulk-interval: entries per run (the server's maximum; more are sampled)
BULK_RUNS = 100  # ... and runs per request (the server's maximum)
RUNS_PAGE_SIZE = 1000  # search_runs page
HEALTH_TIMEOUT_S = 5.0
_HISTORY = "/api/2.0/mlflow/metrics/get-history"  # MLflow's REST API (GetMetricHistory)
_BULK = "/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval"  # GetMetricHistoryBulkInterval
_FINISHED = frozenset({"FINISHED", "FAILED", "KILLED"})
_MAX = sys.float_info.max

Entry = tuple[int, float, float]  # one logged value: (timestamp ms, step, value)


def _identity(e: Entry) -> tuple[int, float]:
    """What tells apart entries at one step (MLflow's key: timestamp and value; NaN equal to NaN)."""
    return e[0], 0.0 if math.isnan(e[2]) else e[2]


def _entry(m: Any) -> Entry:
    """An entry from REST JSON (int64 may come as strings, non-finite doubles as "NaN"/"Infinity":
    ``float`` reads both) or from an MLflow ``Metric``."""
    if isinstance(m, dict):
        return int(m.get("timestamp", 0)), float(m.get("step", 0)), float(m.get("value", 0.0))
    return int(m.timestamp), float(m.step), float(m.value)


@dataclass
class _Series:
    """What is held of one metric of one run."""

    run_id: str
    label: str
    key: str
    latest: tuple | None = None  # the run's latest (step, timestamp, value) when last read
    last_step: float = -math.inf  # the last step delivered (-inf: nothing read yet)
    at_last: set[tuple[int, float]] = field(default_factory=set)  # _identity of the entries delivered there


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
        raise ImportError("following MLflow needs mlflow (or mlflow-skinny): "
                          "pip install 'lossviz-widget[mlflow]'") from exc
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
        self.requests = 0  # history requests made (a measure of the follow cost)
        self.notes: list[str] = []  # what happened to followed runs (deleted)
        self._experiment_id = experiment_id
        self._runs: dict[str, _RunState] = {}  # run id -> state, in the order runs were first seen
        self._labels: dict[str, str] = {}  # label -> run id
        self._bulk_missing = False  # the store or server has no get-history-bulk-interval

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
        changed: list[tuple[_Series, tuple]] = []
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
            state.params = dict(run.data.params)  # params may be logged after the run's first metrics
            for m in run.data.to_proto().metrics:
                latest = (m.step, m.timestamp, m.value)
                series = state.series.get(m.key)
                if series is None:
                    series = state.series[m.key] = _Series(run_id, state.label, m.key)
                if series.latest != latest:
                    changed.append((series, latest))
        batches = []
        for series, latest, entries in self._read(changed):  # every request succeeded: now the state moves
            series.latest = latest
            batch = self._deliver(series, entries)
            if batch is not None:
                batches.append(batch)
        return batches

    def _read(self, changed: list[tuple[_Series, tuple]]) -> list[tuple[_Series, tuple, list[Entry]]]:
        """Entries of each changed series from its last step shown on (all of them when none is)."""
        out = []
        ranges: dict[str, list[tuple[_Series, tuple]]] = {}  # metric -> series read by step range
        for series, latest in changed:
            if series.last_step == -math.inf or self._bulk_missing:
                out.append((series, latest, self._history(series.run_id, series.key)))
            else:
                ranges.setdefault(series.key, []).append((series, latest))
        for key, items in ranges.items():
            items.sort(key=lambda item: item[0].last_step)
            batch: list[tuple[_Series, tuple]] = []
            for item in items:  # runs whose ranges are close share a request
                if batch and (len(batch) == BULK_RUNS or item[1][0] - batch[0][0].last_step >= BULK_MAX):
                    out += self._read_range(key, batch)
                    batch = []
                batch.append(item)
            out += self._read_range(key, batch)
        return out

    def _read_range(self, key: str, items: list[tuple[_Series, tuple]]) -> list[tuple[_Series, tuple, list[Entry]]]:
        start = int(min(s.last_step for s, _ in items))
        end = int(max(latest[0] for _, latest in items))
        found = self._bulk([s.run_id for s, _ in items], key, start, max(start, end))
        out = []
        for series, latest in items:
            entries = None if found is None else found.get(series.run_id, [])
            if entries is None or len(entries) >= BULK_MAX:  # no such endpoint, or sampled: read it whole
                entries = self._history(series.run_id, key)
            out.append((series, latest, entries))
        return out

    def _bulk(self, run_ids: list[str], key: str, start: int, end: int) -> dict[str, list[Entry]] | None:
        """Each run's entries of ``key`` at steps ``start..end`` (sampled past ``BULK_MAX``), or None
        where the store or server has no such call."""
        from mlflow.store.tracking.rest_store import RestStore

        store = self.client._tracking_client.store
        self.requests += 1
        if isinstance(store, RestStore):
            from mlflow.utils.rest_utils import http_request, verify_rest_response

            params = {"run_ids": run_ids, "metric_key": key, "start_step": start, "end_step": end,
                      "max_results": BULK_MAX}
            response = http_request(store.get_host_creds(), _BULK, "GET", params=params)
            if response.status_code == 404:  # an MLflow server older than the endpoint
                self._bulk_missing = True
                return None
            rows = verify_rest_response(response, _BULK).json().get("metrics", ())
            pairs = [(m.get("run_id", ""), _entry(m)) for m in rows]
        elif hasattr(store, "get_metric_history_bulk_interval"):
            rows = store.get_metric_history_bulk_interval(run_ids=run_ids, metric_key=key, max_results=BULK_MAX,
                                                          start_step=start, end_step=end)
            pairs = [(m.run_id, _entry(m)) for m in rows]
        else:
            self._bulk_missing = True
            return None
        found: dict[str, list[Entry]] = {}
        for run_id, e in pairs:
            found.setdefault(run_id, []).append(e)
        return found

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

    def _history(self, run_id: str, key: str) -> list[Entry]:
        """Every entry of one metric (MLflow's order: timestamp, step, value), all pages."""
        token = None
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
            return [_entry(m) for m in body.get("metrics", ())], body.get("next_page_token") or None
        page = store.get_metric_history(run_id, key, max_results=PAGE_SIZE, page_token=token)
        return [_entry(m) for m in page], getattr(page, "token", None)

    def _deliver(self, series: _Series, entries: list[Entry]) -> Batch | None:
        """The entries not delivered yet (see the module docstring), as a batch sorted by step."""
        last, seen = series.last_step, series.at_last
        new = [e for e in entries if e[1] > last or (e[1] == last and _identity(e) not in seen)]
        if not new:
            return None
        columns = np.array(new, dtype=np.float64)  # timestamps in ms are exact in float64 until the year 287,000
        order = np.argsort(columns[:, 1], kind="stable")
        steps, values, walls = columns[order, 1], columns[order, 2], columns[order, 0] / 1000.0
        top = float(steps[-1])
        at_top = {_identity(e) for e in new if e[1] == top}
        series.at_last = seen | at_top if top == last else at_top
        series.last_step = top
        values[np.abs(values) == _MAX] *= math.inf  # MLflow's stored +-inf
        return Batch(series.label, series.key, steps, values, walls)
