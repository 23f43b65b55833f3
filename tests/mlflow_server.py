"""A real ``mlflow server`` (SQLite backend, local artifact root, 127.0.0.1, a free port) for the tests."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

# MLflow 3's server also starts background job consumers (huey, a few dozen threads) that reading
# and logging metrics never use: off, so the server starts faster and weighs less on 2 cores
SERVER_ENV = {"OMP_NUM_THREADS": "1", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
STARTUP_TIMEOUT_S = 120.0  # the first start creates the database (MLflow's migrations take a while on 2 cores)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _mlflow_cli() -> str:
    exe = Path(sys.executable).with_name("mlflow")
    return str(exe) if exe.exists() else shutil.which("mlflow") or "mlflow"


class MlflowServer:
    """``start()`` runs the server and waits for its ``/health`` page; ``stop()`` ends it (restartable)."""

    def __init__(self, root: Path, port: int | None = None) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> MlflowServer:
        with open(self.root / "server.log", "ab") as log:  # the server keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                [_mlflow_cli(), "server", "--backend-store-uri", f"sqlite:///{self.root / 'mlflow.db'}",
                 "--default-artifact-root", str(self.root / "artifacts"), "--host", "127.0.0.1",
                 "--port", str(self.port), "--workers", "1"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                env={**os.environ, **SERVER_ENV})
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited: {(self.root / 'server.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.25)
        self.stop()
        raise TimeoutError(f"mlflow server did not start within {STARTUP_TIMEOUT_S} s")

    def stop(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)  # the server and its uvicorn worker
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None
        deadline = time.monotonic() + 20  # until the port is free again (a restart binds it)
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) != 0:
                    return
            time.sleep(0.1)
