"""Run notebooks in a real kernel with nbclient, no browser, and record the widget traffic.

:func:`run_notebook` starts an ``ipykernel`` of *this* interpreter (a private
kernelspec whose ``argv[0]`` is ``sys.executable``, so neither ``~/.local/share/jupyter``
nor another environment's ``python3`` kernel can be picked up), executes every
cell with nbclient and returns a :class:`NotebookRun`:

* ``nb``: the executed notebook (outputs, and the widget state nbclient saves);
* ``events``: every ``comm_open`` / ``comm_msg`` / ``comm_close`` the kernel sent,
  tagged with the cell that was running and the kernel-side send time. Messages
  sent from the plot's render thread carry the running cell's parent header, so
  "did the plot update *while* this cell ran" is answerable;
* ``cell_spans``: kernel-side busy -> idle times of each executed cell;
* ``clear_outputs``: cells that received a ``clear_output`` message;
* ``shutdown_s``: how long the kernel took to shut down after the last cell. The
  kernel manager waits ``shutdown_wait_time`` (30 s here) for a graceful exit
  before killing, so a kernel kept alive by a stuck thread shows up as ~30 s.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from jupyter_client.blocking import BlockingKernelClient
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager, KernelManager
from nbclient import NotebookClient

__all__ = [
    "WIDGET_STATE_MIME",
    "WIDGET_VIEW_MIME",
    "CommEvent",
    "NotebookRun",
    "cell_text",
    "private_kernelspecs",
    "run_notebook",
    "started_kernel",
]

WIDGET_VIEW_MIME = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE_MIME = "application/vnd.jupyter.widget-state+json"
SHUTDOWN_WAIT_S = 30.0


@dataclass
class CommEvent:
    cell_index: int
    msg_type: str  # comm_open, comm_msg or comm_close
    comm_id: str
    time: float  # kernel-side send time, seconds since the epoch
    model: str = ""  # "module:ModelName" (comm_open only)
    keys: tuple[str, ...] = ()  # synced traits carried by an open or update (binary ones too)


@dataclass
class NotebookRun:
    nb: Any
    events: list[CommEvent] = field(default_factory=list)
    cell_spans: dict[int, tuple[float, float]] = field(default_factory=dict)
    clear_outputs: list[int] = field(default_factory=list)
    shutdown_s: float = float("nan")
    wall_s: float = float("nan")

    def code_cell(self, needle: str) -> int:
        """Index of the only code cell whose source contains ``needle``."""
        hits = [i for i, c in enumerate(self.nb.cells) if c.cell_type == "code" and needle in c.source]
        assert len(hits) == 1, f"expected one code cell containing {needle!r}, found cells {hits}"
        return hits[0]

    def models(self) -> dict[str, str]:
        """comm id -> "module:ModelName" for every widget the kernel opened."""
        return {e.comm_id: e.model for e in self.events if e.msg_type == "comm_open"}

    def widget_state(self) -> dict[str, Any]:
        return self.nb.metadata.get("widgets", {}).get(WIDGET_STATE_MIME, {}).get("state", {})

    def curve_messages(self, cell_index: int) -> list[CommEvent]:
        """The updates the kernel sent while cell ``cell_index`` ran that carry drawn points: a panel's
        canvas lines (``HoverLayer.lines``, renderer="canvas") or a bqplot mark's x/y (renderer="svg")."""
        bqplot = {cid for cid, model in self.models().items() if model.startswith("bqplot:")}
        return [e for e in self.events if e.cell_index == cell_index and e.msg_type == "comm_msg"
                and ("lines" in e.keys or (e.comm_id in bqplot and {"x", "y"} & set(e.keys)))]


def _msg_time(msg: dict) -> float:
    date = msg.get("header", {}).get("date")
    if isinstance(date, _dt.datetime):
        if date.tzinfo is None:
            date = date.replace(tzinfo=_dt.timezone.utc)
        return date.timestamp()
    return time.time()


class _RecordingClient(NotebookClient):
    def __init__(self, *args: Any, run: NotebookRun, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._run = run

    def process_message(self, msg: dict, cell: Any, cell_index: int) -> Any:
        msg_type = msg["msg_type"]
        content = msg.get("content", {})
        if msg_type == "status":
            busy, idle = self._run.cell_spans.get(cell_index, (float("nan"), float("nan")))
            if content.get("execution_state") == "busy":
                busy = _msg_time(msg)
            elif content.get("execution_state") == "idle":
                idle = _msg_time(msg)
            self._run.cell_spans[cell_index] = (busy, idle)
        elif msg_type.startswith("comm_"):
            data = content.get("data") or {}
            state = data.get("state") or {}
            model = ""
            if msg_type == "comm_open":
                model = f"{state.get('_model_module', '')}:{state.get('_model_name', '')}"
            keys = tuple(state) + tuple(str(p[0]) for p in data.get("buffer_paths") or () if p)  # binary ones too
            comm_id = content.get("comm_id", "")
            self._run.events.append(CommEvent(cell_index, msg_type, comm_id, _msg_time(msg), model, keys))
        elif msg_type == "clear_output":
            self._run.clear_outputs.append(cell_index)
        return super().process_message(msg, cell, cell_index)


def private_kernelspecs(spec_root: Path) -> KernelSpecManager:
    """A kernelspec manager that knows one ``python3`` kernel: this interpreter's ipykernel."""
    spec_dir = spec_root / "kernels" / "python3"
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (lossviz tests)",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    return KernelSpecManager(kernel_dirs=[str(spec_root / "kernels")])


@contextlib.contextmanager
def started_kernel(folder: Path) -> Iterator[tuple[KernelManager, BlockingKernelClient]]:
    """A real kernel of this interpreter, working in ``folder``, and a ready client; shut down after
    (a kernel the test killed is cleaned up)."""
    km = KernelManager(kernel_name="python3", kernel_spec_manager=private_kernelspecs(folder / "spec"))
    km.start_kernel(cwd=str(folder))
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        yield km, kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def _kernel_manager(spec_root: Path) -> AsyncKernelManager:
    km = AsyncKernelManager(kernel_name="python3", kernel_spec_manager=private_kernelspecs(spec_root))
    km.shutdown_wait_time = SHUTDOWN_WAIT_S
    return km


def run_notebook(
    nb_or_path: Any,
    workdir: Path,
    *,
    env: dict[str, str] | None = None,
    cell_timeout: float = 120.0,
) -> NotebookRun:
    """Execute a notebook (path or ``NotebookNode``) with cwd ``workdir/cwd``; errors raise.

    ``env`` is added to the kernel's environment (a copy of this process's).
    """
    nb = nbformat.read(nb_or_path, as_version=4) if isinstance(nb_or_path, (str, os.PathLike)) else nb_or_path
    cwd = workdir / "cwd"
    cwd.mkdir(parents=True, exist_ok=True)
    kernel_env = {**os.environ, "IPYTHONDIR": str(workdir / "ipython"), **(env or {})}
    kernel_env.pop("JPY_PARENT_PID", None)
    run = NotebookRun(nb)
    client = _RecordingClient(
        nb,
        run=run,
        km=_kernel_manager(workdir / "jupyter"),
        timeout=cell_timeout,
        startup_timeout=120,
        allow_errors=False,
        record_timing=True,
        resources={"metadata": {"path": str(cwd)}},
    )
    done: dict[str, float] = {}
    # on_notebook_complete fires only after the shutdown; time from the last executed cell instead
    client.on_cell_executed = lambda **_: done.__setitem__("t", time.perf_counter())
    start = time.perf_counter()
    client.execute(env=kernel_env, cleanup_kc=True)  # we own the kernel manager: shut the kernel down
    end = time.perf_counter()
    run.wall_s = end - start
    run.shutdown_s = end - done.get("t", end)
    return run


def cell_text(cell: Any, name: str = "stdout") -> str:
    """All text a code cell wrote to stream ``name``."""
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.output_type == "stream" and o.name == name)
