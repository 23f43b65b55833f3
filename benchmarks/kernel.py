"""A real ipykernel driven through jupyter_client, with every IOPub message recorded.

:class:`KernelSession` starts this interpreter's ipykernel (a private kernelspec, as in
``tests/notebook_harness.py``), runs code on the shell channel and, on its own thread,
subscribes to IOPub with a raw ZMQ socket. For each message it keeps the *wire size*
(the sum of ``len`` of all serialized multipart frames: routing prefix, signature,
header, parent header, metadata, content and every binary buffer), the message type,
the kernel-side send time (``header.date``) and the client-side receive time.

:func:`server_rate` replays those messages through jupyter_server's IOPub rate limiter
(``services/kernels/connection/channels.py``: messages other than ``status``,
``comm_open`` and ``execute_input`` counted over a sliding ``rate_limit_window`` of 3 s,
reset when the kernel goes idle, output dropped above ``iopub_msg_rate_limit`` = 1000/s,
resumed below 80% of it).
"""

from __future__ import annotations

import collections
import datetime as dt
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq
from jupyter_client.manager import KernelManager

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from notebook_harness import private_kernelspecs

__all__ = ["IopubMessage", "KernelError", "KernelSession", "frames_by_gap", "in_window", "server_rate", "waits"]

BENCH_DIR = Path(__file__).resolve().parent
#: jupyter_server defaults (ServerApp.iopub_msg_rate_limit, rate_limit_window)
RATE_LIMIT = 1000.0
RATE_WINDOW_S = 3.0
_UNCOUNTED = frozenset({"status", "comm_open", "execute_input"})


class KernelError(RuntimeError):
    """Code run in the kernel raised; carries the kernel's traceback."""


@dataclass(frozen=True)
class IopubMessage:
    msg_type: str
    nbytes: int  #: all multipart frames as received, binary buffers included
    sent: float  #: kernel send time (``header.date``), epoch seconds
    received: float  #: client receive time, epoch seconds
    parent_id: str
    state: str = ""  #: ``execution_state`` of ``status`` messages


def _epoch(date: str) -> float:
    return dt.datetime.fromisoformat(date.replace("Z", "+00:00")).timestamp()


class _Recorder(threading.Thread):
    """Receives IOPub on a SUB socket of its own (ZMQ sockets stay on one thread)."""

    def __init__(self, km: KernelManager) -> None:
        super().__init__(name="iopub-recorder", daemon=True)
        self._km = km
        self._stop_event = threading.Event()
        self._ready = threading.Event()
        self.lock = threading.Lock()
        self.messages: list[IopubMessage] = []

    def run(self) -> None:
        sock = self._km.connect_iopub()
        sock.setsockopt(zmq.RCVHWM, 0)  # never drop: the kernel's own HWM still applies
        session = self._km.session
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        self._ready.set()
        try:
            while not self._stop_event.is_set():
                if not poller.poll(50):
                    continue
                while True:
                    try:
                        frames = sock.recv_multipart(zmq.NOBLOCK, copy=False)
                    except zmq.Again:
                        break
                    self._record(session, frames)
        finally:
            sock.close(linger=0)

    def _record(self, session: Any, frames: list[zmq.Frame]) -> None:
        received = time.time()
        nbytes = sum(len(f.buffer) for f in frames)
        _, parts = session.feed_identities(frames, copy=False)
        header = json.loads(parts[1].bytes)
        parent = json.loads(parts[2].bytes) if len(parts[2].buffer) > 2 else {}
        state = ""
        if header["msg_type"] == "status":
            state = json.loads(parts[4].bytes).get("execution_state", "")
        msg = IopubMessage(header["msg_type"], nbytes, _epoch(header["date"]), received,
                           parent.get("msg_id", ""), state)
        with self.lock:
            self.messages.append(msg)

    def wait_ready(self, timeout: float = 10.0) -> None:
        if not self._ready.wait(timeout):
            raise RuntimeError("IOPub recorder did not start")

    def stop(self) -> None:
        self._stop_event.set()
        self.join(5)


class KernelSession:
    """One fresh ipykernel of this interpreter; ``benchmarks/`` and this checkout's ``lossviz_widget``
    are importable in it.

    Use as a context manager; :meth:`call` runs ``workloads.<func>(**kwargs)`` and returns
    its dict, :attr:`messages` holds the IOPub traffic so far.
    """

    def __init__(self, log_path: Path | None = None, startup_timeout: float = 60.0) -> None:
        """``log_path``: where the kernel's own stdout/stderr go (default: discarded)."""
        self._tmp = Path(tempfile.mkdtemp(prefix="lossviz-bench-kernel-"))
        self._log = None
        if log_path is not None:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(log_path, "ab")  # noqa: SIM115 - open for the kernel's lifetime, closed in close()
        (self._tmp / "cwd").mkdir()
        env = {**os.environ, "IPYTHONDIR": str(self._tmp / "ipython"),
               # this checkout's lossviz_widget, not whichever one the environment installed (an editable
               # install of another worktree); a PYTHONPATH given still goes first (frame_waits.py's "before")
               "PYTHONPATH": os.pathsep.join(filter(None, [str(BENCH_DIR), os.environ.get("PYTHONPATH"),
                                                           str(BENCH_DIR.parent)]))}
        env.pop("JPY_PARENT_PID", None)
        env.pop("MPLBACKEND", None)  # ipykernel picks the inline backend, as in a notebook
        self.km = KernelManager(kernel_name="python3", kernel_spec_manager=private_kernelspecs(self._tmp / "jupyter"))
        sink = self._log if self._log is not None else subprocess.DEVNULL
        self.km.start_kernel(cwd=str(self._tmp / "cwd"), env=env, stdout=sink, stderr=sink)
        self.recorder = _Recorder(self.km)
        self.recorder.start()
        self.recorder.wait_ready()
        self.kc = self.km.client()
        self.kc.start_channels(shell=True, iopub=False, stdin=False, hb=False, control=False)
        self._wait_ready(startup_timeout)

    def _wait_ready(self, timeout: float) -> None:
        """Kernel answers on shell, and our IOPub subscription already receives (SUB joins late)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.execute("pass", timeout=5.0)
                return
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise

    @property
    def messages(self) -> list[IopubMessage]:
        with self.recorder.lock:
            return list(self.recorder.messages)

    def execute(self, code: str, timeout: float = 600.0) -> str:
        """Run ``code``; wait for its reply and its IOPub ``idle``; raise :class:`KernelError` on error.

        Returns the request's msg_id.
        """
        msg_id = self.kc.execute(code, silent=False, store_history=False)
        deadline = time.monotonic() + timeout
        while True:
            try:
                reply = self.kc.get_shell_msg(timeout=max(0.1, deadline - time.monotonic()))
            except Exception as exc:  # queue.Empty
                raise TimeoutError(f"no reply to {code[:80]!r} within {timeout}s") from exc
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        content = reply["content"]
        if content["status"] != "ok":
            tb = "\n".join(content.get("traceback", []))
            raise KernelError(f"{content.get('ename')}: {content.get('evalue')}\n{tb}")
        while not any(m.parent_id == msg_id and m.state == "idle" for m in self.messages):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no IOPub idle for {code[:80]!r}")
            time.sleep(0.01)
        return msg_id

    def call(self, func: str, timeout: float = 600.0, **kwargs: Any) -> dict[str, Any]:
        """``workloads.<func>(**kwargs)`` in the kernel; its result comes back through a file."""
        out = self._tmp / f"result-{uuid.uuid4().hex}.json"
        code = (f"import json as _json, workloads as _w\n"
                f"_r = _w.{func}(**{kwargs!r})\n"
                f"open({str(out)!r}, 'w').write(_json.dumps(_r))\n"
                f"del _r")
        self.execute(code, timeout)
        return json.loads(out.read_text())

    def close(self) -> None:
        self.recorder.stop()  # first: shutting the kernel down closes the ZMQ context
        try:
            self.kc.stop_channels()
            self.km.shutdown_kernel(now=False)
        finally:
            if self._log is not None:
                self._log.close()
            shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> KernelSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- analysis --------------------------------------------------------------------------------


def in_window(messages: Iterable[IopubMessage], t0: float, t1: float,
              types: Iterable[str] | None = None) -> list[IopubMessage]:
    """Messages the kernel sent within ``[t0, t1]`` (kernel clock), optionally of ``types``."""
    wanted = None if types is None else set(types)
    return [m for m in messages if t0 <= m.sent <= t1 and (wanted is None or m.msg_type in wanted)]


def frames_by_gap(messages: list[IopubMessage], gap_s: float = 0.04) -> list[list[IopubMessage]]:
    """Group messages into frames: a new frame starts after ``gap_s`` without a message.

    lossviz sends each frame's messages back to back and frames are >= 1/fps (0.1 s) apart.
    """
    frames: list[list[IopubMessage]] = []
    last = None
    for m in sorted(messages, key=lambda m: m.sent):
        if last is None or m.sent - last > gap_s:
            frames.append([])
        frames[-1].append(m)
        last = m.sent
    return frames


def waits(starts: list[float], t0: float, t1: float) -> list[float]:
    """The waits for a frame over ``[t0, t1]``: from ``t0`` to the first frame's start, between
    each frame's start and the next's, and from the last to ``t1`` (``starts``: within it, in order)."""
    edges = [t0, *starts, t1]
    return [b - a for a, b in itertools.pairwise(edges)]


@dataclass(frozen=True)
class RateReport:
    peak_per_s: float  #: max over time of (counted messages in the trailing 3 s) / 3
    dropped: int  #: messages jupyter_server would have dropped
    counted: int


def server_rate(messages: Iterable[IopubMessage], limit: float = RATE_LIMIT,
                window_s: float = RATE_WINDOW_S) -> RateReport:
    """Replay ``messages`` (by receive time) through jupyter_server's IOPub message-rate limiter."""
    queue: collections.deque[float] = collections.deque()
    peak = 0.0
    dropped = counted = 0
    exceeded = False
    for m in sorted(messages, key=lambda m: m.received):
        if m.msg_type == "status" and m.state == "idle":
            queue.clear()
            exceeded = False
        if m.msg_type in _UNCOUNTED:
            continue
        counted += 1
        while queue and m.received >= queue[0]:
            queue.popleft()
        queue.append(m.received + window_s)
        rate = len(queue) / window_s
        peak = max(peak, rate)
        if rate > limit:
            exceeded = True
        elif exceeded and rate < 0.8 * limit:
            exceeded = False
        if exceeded:
            dropped += 1
            queue.pop()  # the server removes a dropped message from its count
    return RateReport(peak, dropped, counted)
