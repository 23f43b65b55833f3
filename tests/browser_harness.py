"""Harness for browser tests: a real JupyterLab server driven by headless Chromium.

Nothing here is mocked. :func:`start_jupyterlab` runs ``python -m jupyterlab`` with
this interpreter (so kernels are this environment's ``python3`` ipykernel and can
import ``lossviz_widget``), :func:`launch_chromium` starts Debian's
``/usr/bin/chromium`` through Playwright's sync API (``playwright install`` is never
needed), and :class:`NotebookPage` drives the JupyterLab UI the way a person would
(open the notebook, Run -> Run All Cells) and reads what is on screen from the DOM.

Use from a test module (the fixtures are registered once, in ``tests/conftest.py``, so every
browser module shares one JupyterLab server and one Chromium)::

    from browser_harness import require_chromium, write_notebook

    @pytest.mark.browser
    def test_it(request):
        require_chromium()  # in the body: a missing browser is a FAILED test, not a setup ERROR
        nb = request.getfixturevalue("notebook_page")
        write_notebook(nb.server.root_dir / "t.ipynb", ["1 + 1"])
        nb.open("t.ipynb")
        nb.run_all_cells()
        nb.wait_output_text(0, "2")

Isolation
    Each server gets a fresh temporary directory holding the notebook root and its own
    ``JUPYTER_CONFIG_DIR`` / ``JUPYTER_DATA_DIR`` / ``JUPYTER_RUNTIME_DIR`` /
    ``JUPYTERLAB_SETTINGS_DIR`` / ``JUPYTERLAB_WORKSPACES_DIR`` / ``IPYTHONDIR``.
    ``sys.prefix/share/jupyter`` (kernelspec, lab extensions) and
    ``sys.prefix/etc/jupyter`` (server extensions) stay on Jupyter's search path, so
    the environment's kernel and front-end extensions (ipywidgets, bqplot) are used
    while ``~/.jupyter`` and ``~/.local/share/jupyter`` are not. The venv's
    ``python3`` kernelspec has ``argv[0] == "python"``, which jupyter_client replaces
    by the server's ``sys.executable`` (this venv); :func:`check_kernelspec` checks it.
    :data:`LAB_SETTINGS` switches off everything that pops up or goes to the network
    (news/update toast, extension manager) and notebook windowing (so every cell stays
    in the DOM). The server log goes to ``test-artifacts/browser/jupyterlab-server.log``.

How bqplot 0.13.1 draws a ``Figure`` with ``Lines`` marks (inspected in the live DOM)
    ::

        div.bqplot.figure.<widget classes, e.g. lossviz-panel>
          svg.svg-background        axes, grid lines (g.axis, g.tick)
          canvas                    only used by the WebGL marks (not by Lines)
          svg.svg-figure
            g[transform]
              rect.plotarea_events
              g                                 marks container, Figure.marks order
                g[clip-path] (style="display: none" while visible=False)   one per mark
                  g.curve[display=inline]       one per line of the mark
                    path.line#curveN  d="M1,253.2L5.25,20.48L9.5,48.25..."
                    path.area
                    text.curve_label            the line's label (display none)
                g.g_legend > g.legend<uuid> > path.line + text.legendtext
              text.mainheading                  Figure.title

    ``d`` comes from ``d3.line()``: ``M x,y`` then ``L x,y`` per vertex, no spaces;
    NaN gaps start a new ``M``; a mark without data has no ``g.curve`` at all. Each
    ``g.curve`` carries its d3 datum ``{name, values, color, index}`` where ``name``
    is the label. Hidden marks stay in the DOM (their path keeps its ``d``) with
    ``display: none`` on the mark group.

Vertex counting (:data:`LINE_VERTICES_JS`, :meth:`NotebookPage.line_vertices`)
    For a figure element and a label, every ``g.curve`` whose ``text.curve_label``
    (falling back to the datum's ``name``) equals the label is reported with
    ``vertices`` = (count of numbers in ``path.line@d``) / 2 -- i.e. coordinate pairs,
    independent of whether d3 separates them with commas or spaces or repeats the
    command letters -- and ``hidden`` = any ancestor up to the figure has computed
    ``display: none``, ``visibility: hidden`` or ``opacity: 0``. This only holds for
    linear interpolation (curves add control points), which is what the widget uses.
    :meth:`NotebookPage.visible_line_vertices` requires exactly one visible curve.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import nbformat
import pytest

if TYPE_CHECKING:  # playwright is imported lazily so a missing package fails at the test, not at import
    from playwright.sync_api import Browser, BrowserContext, Locator, Page, Playwright

__all__ = [
    "ARTIFACTS_DIR",
    "CANVAS_SENT_CODE",
    "CHROMIUM_ARGS",
    "DARK_THEME",
    "LAB_SETTINGS",
    "LINE_VERTICES_JS",
    "TOOLTIP_JS",
    "HarnessError",
    "JupyterLabServer",
    "NotebookPage",
    "artifacts_dir",
    "check_kernel_process",
    "check_kernelspec",
    "chromium_browser",
    "free_port",
    "jupyterlab_server",
    "last_drawn_step",
    "launch_chromium",
    "new_context",
    "notebook_page",
    "page",
    "painted",
    "poll",
    "require_chromium",
    "running_jupyterlab",
    "start_jupyterlab",
    "write_lab_settings",
    "write_notebook",
]  # fmt: skip

REPO_ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS_DIR = REPO_ROOT / "test-artifacts" / "browser"

#: Debian's Chromium; ``LOSSVIZ_CHROMIUM`` overrides it (e.g. another distro's path).
CHROMIUM_PATH = Path(os.environ.get("LOSSVIZ_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
VIEWPORT = {"width": 1400, "height": 1000}

#: JupyterLab user settings written into ``JUPYTERLAB_SETTINGS_DIR`` as
#: ``<plugin id with ":" -> "/">.jupyterlab-settings``.
LAB_SETTINGS: dict[str, dict[str, Any]] = {
    # "Would you like to receive official Jupyter news?" toast and update checks.
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    # The extension manager queries PyPI (unreachable here) and shows a disclaimer.
    "@jupyterlab/extensionmanager-extension/plugin": {"enabled": False},
    # Keep every cell attached to the DOM (the default skips/detaches off-screen cells).
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    # No background saves during the test (and no "file changed on disk" dialog).
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
    # Never ask before restarting a kernel.
    "@jupyterlab/apputils-extension/sessionDialogs": {"skipKernelRestartDialog": True},
}

#: The user setting that selects JupyterLab's dark theme: ``(plugin, values)`` for ``lab_settings``.
DARK_THEME: tuple[str, dict[str, Any]] = ("@jupyterlab/apputils-extension/themes", {"theme": "JupyterLab Dark"})

T = TypeVar("T")


class HarnessError(AssertionError):
    """The server or the page did not reach an expected state in time."""


def poll(fn: Callable[[], T], timeout: float, message: str | Callable[[], str], interval: float = 0.1) -> T:
    """Call ``fn`` until it returns something truthy and return that; raise :class:`HarnessError`
    with ``message`` after ``timeout`` seconds. (Waiting, never asserting, by sleeping.)"""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise HarnessError(message() if callable(message) else message)
        time.sleep(interval)


def artifacts_dir() -> Path:
    """``test-artifacts/browser/`` at the repository root (created on demand)."""
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS_DIR


def require_chromium() -> str:
    """Path of the Chromium executable; fails (never skips) the test when it is missing."""
    if not (CHROMIUM_PATH.is_file() and os.access(CHROMIUM_PATH, os.X_OK)):
        pytest.fail(
            f"{CHROMIUM_PATH} not found: the browser tests drive Debian's Chromium "
            "(Playwright's browser download is not used). Install it with: apt-get install -y chromium",
            pytrace=False,
        )
    return str(CHROMIUM_PATH)


# --------------------------------------------------------------------------------------------
# JupyterLab server
# --------------------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_lab_settings(settings_dir: Path, settings: dict[str, dict[str, Any]] = LAB_SETTINGS) -> None:
    """Write one ``<settings_dir>/<package>/<plugin>.jupyterlab-settings`` file per entry."""
    for plugin, values in settings.items():
        path = settings_dir / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values, indent=2))


def _proc_stat(pid: int) -> tuple[int, int] | None:
    """``(ppid, start time)`` of a live process from ``/proc/<pid>/stat``; None if gone."""
    try:
        # "pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
        #  utime stime cutime cstime priority nice num_threads itrealvalue starttime ..."
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[1]), int(fields[19])
    except (OSError, ValueError, IndexError):
        return None


def _descendants(root_pid: int) -> dict[int, int]:
    """``{pid: start time}`` of all live descendants of ``root_pid`` (Linux; empty elsewhere).

    Kernels are not in the server's process group (jupyter_client starts them in a new
    session), so they are found through parent links.
    """
    parents: dict[int, tuple[int, int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        stat = _proc_stat(int(entry.name))
        if stat is not None:
            parents[int(entry.name)] = stat
    found: dict[int, int] = {}
    frontier = [root_pid]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, start) in parents.items():
            if ppid == parent and pid not in found:
                found[pid] = start
                frontier.append(pid)
    return found


@dataclass
class JupyterLabServer:
    """A running ``jupyter lab`` (see :func:`start_jupyterlab`)."""

    base_url: str  #: ``http://127.0.0.1:PORT/``
    token: str
    root_dir: Path  #: ``ServerApp.root_dir``: write notebooks here
    log_path: Path
    process: subprocess.Popen[bytes]
    runtime_dir: Path  #: ``JUPYTER_RUNTIME_DIR``: kernels' connection files live here

    def url(self, path: str) -> str:
        """Absolute URL of ``path`` (relative to the server root) with ``token=`` appended."""
        sep = "&" if "?" in path else "?"
        return f"{self.base_url}{path.lstrip('/')}{sep}token={self.token}"

    def api(self, path: str, timeout: float = 5.0) -> Any:
        """``GET /api/<path>`` as JSON."""
        req = urllib.request.Request(
            f"{self.base_url}api/{path.lstrip('/')}", headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.load(resp)

    def kernel_pids(self) -> dict[int, int]:
        """``{pid: start time}`` of this server's live kernels: its descendants plus any
        process whose command line names a connection file in :attr:`runtime_dir` (also
        finds kernels orphaned by a crashed server). Linux ``/proc`` only."""
        found = _descendants(self.process.pid)
        marker = str(self.runtime_dir)
        for entry in Path("/proc").glob("[0-9]*"):
            with contextlib.suppress(OSError):
                if marker in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    stat = _proc_stat(int(entry.name))
                    if stat is not None:
                        found[int(entry.name)] = stat[1]
        return found

    def kernel_argvs(self) -> list[list[str]]:
        """Command lines of this server's running ipykernel processes."""
        argvs = []
        for pid in self.kernel_pids():
            with contextlib.suppress(OSError):
                argv = [a for a in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0") if a]
                if any("ipykernel" in a for a in argv):
                    argvs.append(argv)
        return argvs

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "<no server log>"

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM (the server then shuts its kernels down), SIGKILL if it hangs; then SIGKILL,
        by PID, any process it had started (kernels) that outlived it."""
        proc = self.process
        children = self.kernel_pids()
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        children.update(self.kernel_pids())  # e.g. orphans of a server that crashed earlier
        for pid, start in children.items():
            stat = _proc_stat(pid)
            if stat is not None and stat[1] == start:  # same process, not a reused PID
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)


def start_jupyterlab(workdir: Path, log_path: Path, timeout: float = 90.0, *, app: str = "jupyterlab",
                     lab_settings: dict[str, dict[str, Any]] = LAB_SETTINGS) -> JupyterLabServer:
    """Start ``python -m jupyterlab`` isolated under ``workdir``; return once ``/api/status`` answers.

    ``workdir/root`` is the notebook root, the Jupyter config/data/runtime and lab
    settings/workspaces dirs are siblings of it. The server gets its own session (Ctrl+C in
    the terminal running pytest does not hit it) and logs to ``log_path``. ``app="notebook"``
    starts Jupyter Notebook 7 instead (same server options, notebooks at ``/notebooks/NAME``);
    ``lab_settings`` are the user settings written first (add a theme to test one:
    ``{**LAB_SETTINGS, DARK_THEME[0]: DARK_THEME[1]}``).
    """
    root = workdir / "root"
    dirs = {
        "JUPYTER_CONFIG_DIR": workdir / "config",
        "JUPYTER_DATA_DIR": workdir / "data",
        "JUPYTER_RUNTIME_DIR": workdir / "runtime",
        "JUPYTERLAB_SETTINGS_DIR": workdir / "lab-settings",
        "JUPYTERLAB_WORKSPACES_DIR": workdir / "lab-workspaces",
        "IPYTHONDIR": workdir / "ipython",
    }
    for d in (root, *dirs.values()):
        d.mkdir(parents=True, exist_ok=True)
    write_lab_settings(dirs["JUPYTERLAB_SETTINGS_DIR"], lab_settings)
    env = {k: v for k, v in os.environ.items() if k not in ("JUPYTER_PATH", "JUPYTER_PLATFORM_DIRS")}
    env.update({k: str(v) for k, v in dirs.items()})
    env["PYTHONUNBUFFERED"] = "1"

    token = secrets.token_hex(24)
    port = free_port()
    cmd = [
        sys.executable, "-m", app,
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={root}",
        f"--IdentityProvider.token={token}",
        "--allow-root",  # harmless for other users; containers often run as root
        "--ServerApp.terminals_enabled=False",
    ]  # fmt: skip
    if app == "jupyterlab":
        cmd += [
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly",  # never query PyPI
        ]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log_file:  # the server writes to its own copy of the descriptor
        log_file.write(f"$ {' '.join(cmd)}\n".replace(token, "<token>").encode())
        log_file.flush()
        proc = subprocess.Popen(
            cmd, cwd=root, env=env, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = JupyterLabServer(f"http://127.0.0.1:{port}/", token, root, log_path, proc, dirs["JUPYTER_RUNTIME_DIR"])

    def ready() -> bool:
        if proc.poll() is not None:
            raise HarnessError(f"jupyter lab exited with {proc.returncode}:\n{server.log_tail()}")
        try:
            return "started" in server.api("status", timeout=2)
        except (urllib.error.URLError, OSError, ValueError):
            return False

    try:
        poll(ready, timeout, lambda: f"jupyter lab not up after {timeout}s:\n{server.log_tail()}", interval=0.25)
    except BaseException:
        server.stop()
        raise
    return server


def check_kernelspec(server: JupyterLabServer, name: str = "python3") -> dict[str, Any]:
    """The server's kernelspec ``name``; asserts it is an ipykernel started with this
    environment's interpreter (``argv[0]`` ``python`` becomes the server's ``sys.executable``)."""
    specs = server.api("kernelspecs")["kernelspecs"]
    assert name in specs, f"no {name!r} kernelspec on the server: {sorted(specs)}"
    argv = specs[name]["spec"]["argv"]
    assert argv[0] in ("python", "python3", sys.executable), f"{name} kernel would not use this venv: {argv}"
    assert "ipykernel_launcher" in argv or "ipykernel" in argv, f"{name} is not an ipykernel: {argv}"
    return specs[name]


def check_kernel_process(server: JupyterLabServer) -> list[str]:
    """Argv of the server's running kernel; asserts it is this interpreter running ipykernel
    (paths compared without resolving symlinks: a venv's python links to the base one)."""
    argvs = server.kernel_argvs()
    assert argvs, "the server has no running ipykernel process"
    mine = [a for a in argvs if os.path.normpath(a[0]) == os.path.normpath(sys.executable)]
    assert mine, f"kernel not started with {sys.executable}: {argvs}"
    return mine[0]


@contextlib.contextmanager
def running_jupyterlab(artifacts: Path | None = None, *, app: str = "jupyterlab",
                       lab_settings: dict[str, dict[str, Any]] = LAB_SETTINGS) -> Iterator[JupyterLabServer]:
    """A temporary isolated JupyterLab (or, ``app="notebook"``, Notebook 7) server; its log is kept
    as ``<artifacts>/jupyterlab-server.log`` (``<app>-server.log`` for another app or settings)."""
    artifacts = artifacts or artifacts_dir()
    workdir = Path(tempfile.mkdtemp(prefix="lossviz-lab-"))
    own = app == "jupyterlab" and lab_settings is LAB_SETTINGS
    log_name = "jupyterlab-server.log" if own else f"{app}-{secrets.token_hex(3)}-server.log"
    try:
        server = start_jupyterlab(workdir, artifacts / log_name, app=app, lab_settings=lab_settings)
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# Notebooks
# --------------------------------------------------------------------------------------------


def write_notebook(path: Path, cells: Sequence[str]) -> Path:
    """Write an nbformat v4 notebook of code ``cells`` with the ``python3`` kernelspec."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells = [nbformat.v4.new_code_cell(src) for src in cells]
    nbformat.validate(nb)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


# --------------------------------------------------------------------------------------------
# Browser
# --------------------------------------------------------------------------------------------


def launch_chromium(playwright: Playwright, headless: bool = True) -> Browser:
    """Debian's Chromium through Playwright, with :data:`CHROMIUM_ARGS`."""
    return playwright.chromium.launch(executable_path=require_chromium(), headless=headless, args=CHROMIUM_ARGS)


def new_context(browser: Browser) -> BrowserContext:
    """A fresh context (own cookies/storage) with a 1400x1000 viewport."""
    return browser.new_context(viewport=VIEWPORT, device_scale_factor=1)


#: JS ``(figureElement, label) => [{vertices, moves, hidden, d_prefix, mark_index}]``: one
#: entry per bqplot ``Lines`` curve labelled ``label`` (see the module docstring).
LINE_VERTICES_JS = r"""
(figure, label) => {
  const NUM = /[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?/g;
  const svg = figure.querySelector('svg.svg-figure') || figure;
  const isHidden = (el) => {
    for (let e = el; e && e !== figure.parentElement; e = e.parentElement) {
      const cs = getComputedStyle(e);
      if (cs.display === 'none' || cs.visibility === 'hidden' || cs.opacity === '0') return true;
    }
    return false;
  };
  const out = [];
  for (const curve of svg.querySelectorAll('g.curve')) {
    if (curve.closest('.g_legend')) continue;  // legend swatches are not data
    const labelEl = curve.querySelector('text.curve_label');
    const datum = curve.__data__;
    const name = labelEl ? labelEl.textContent : (datum ? datum.name : undefined);
    if (name === undefined || String(name).trim() !== label) continue;
    const path = curve.querySelector('path.line');
    const d = (path && path.getAttribute('d')) || '';
    const mark = curve.parentElement;  // one <g clip-path> per mark, in Figure.marks order
    out.push({
      vertices: Math.floor((d.match(NUM) || []).length / 2),
      moves: (d.match(/M/gi) || []).length,
      hidden: !path || isHidden(path),
      d_prefix: d.slice(0, 80),
      mark_index: mark.parentElement ? Array.prototype.indexOf.call(mark.parentElement.children, mark) : -1,
    });
  }
  return out;
}
"""


class NotebookPage:
    """A JupyterLab notebook opened in a Playwright ``page``, with DOM queries on it.

    Cells are addressed by 0-based index in notebook order.
    """

    def __init__(self, page: Page, server: JupyterLabServer, artifacts: Path | None = None) -> None:
        self.page = page
        self.server = server
        self.artifacts = artifacts or artifacts_dir()

    # -- navigation -------------------------------------------------------------------------

    def open(self, name: str, timeout: float = 60.0, workspace: str | None = None) -> None:
        """Open ``<root_dir>/<name>`` in the lab UI, accept a kernel dialog if any, wait for an idle kernel.

        With ``workspace``, in a JupyterLab workspace of its own: tests sharing the server then
        do not find this notebook restored as an extra tab (the default workspace remembers tabs).
        """
        path = f"lab/workspaces/{workspace}/tree/{name}" if workspace else f"lab/tree/{name}"
        self.page.goto(self.server.url(path), wait_until="domcontentloaded")
        self.cell(0).wait_for(state="visible", timeout=timeout * 1000)
        self.wait_kernel_idle(timeout)

    def shut_down_kernels(self, name: str) -> None:
        """Stop the kernel of notebook ``name`` (the server is shared with later tests)."""
        for session in self.server.api("sessions"):
            if session.get("path", "").endswith(name):
                req = urllib.request.Request(
                    f"{self.server.base_url}api/sessions/{session['id']}", method="DELETE",
                    headers={"Authorization": f"token {self.server.token}"},
                )
                with contextlib.suppress(OSError), urllib.request.urlopen(req, timeout=10):
                    pass

    def accept_dialog(self) -> bool:
        """Click the accept button of an open JupyterLab dialog (e.g. "Select Kernel"); True if clicked."""
        button = self.page.locator(".jp-Dialog .jp-Dialog-footer .jp-mod-accept")
        if button.count() and button.first.is_visible():
            button.first.click()
            return True
        return False

    def kernel_status(self) -> str | None:
        """Kernel state shown in the status bar (``Python 3 (ipykernel) | Idle`` -> ``"idle"``).

        Not the toolbar's ``.jp-Notebook-ExecutionIndicator[data-status]``: that reads
        ``idle`` before the kernel is even connected.
        """
        text = " ".join(self.page.locator("#jp-main-statusbar").all_inner_texts())
        m = re.search(r"\|\s*([A-Z][a-z]+)\b", text)
        return m.group(1).lower() if m else None

    def wait_kernel_idle(self, timeout: float = 60.0) -> None:
        """Wait until the notebook's kernel is connected and idle, accepting kernel dialogs."""

        def idle() -> bool:
            self.accept_dialog()
            return self.kernel_status() == "idle"

        poll(idle, timeout, lambda: f"kernel not idle after {timeout}s (status {self.kernel_status()!r})", 0.2)

    def run_all_cells(self) -> None:
        """Menu bar: Run -> Run All Cells (the notebook is focused first so the command targets it)."""
        self.cell(0).locator(".jp-InputArea-prompt").click()
        self.page.locator(".lm-MenuBar-item", has_text=re.compile(r"^\s*Run\s*$")).click()
        self.page.locator(".lm-Menu-item", has_text=re.compile(r"^\s*Run All Cells")).first.click()
        # Park the mouse in a corner: hovering a bqplot figure shows its toolbar over the legend.
        self.page.mouse.move(1, VIEWPORT["height"] - 1)

    # -- cells --------------------------------------------------------------------------------

    def cell(self, index: int) -> Locator:
        """The ``index``-th cell of the notebook in the current tab."""
        return self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell").nth(index)

    def input_prompt(self, index: int) -> str:
        """The cell's input prompt text: ``[ ]:``, ``[*]:`` (executing/queued) or ``[3]:``."""
        return self.cell(index).locator(".jp-InputArea-prompt").first.inner_text().strip()

    def is_executing(self, index: int) -> bool:
        """True while the cell's input prompt reads ``[*]``."""
        return "[*]" in self.input_prompt(index)

    def output_text(self, index: int) -> str:
        """Visible text of the cell's outputs (streams, rich text, widget text)."""
        area = self.cell(index).locator(".jp-OutputArea")
        return area.first.inner_text() if area.count() else ""

    def wait_output_text(self, index: int, text: str, timeout: float = 60.0) -> str:
        """Wait until ``text`` is in the cell's output; return the whole output text."""

        def found() -> str | None:
            out = self.output_text(index)
            return out if text in out else None

        return poll(found, timeout,
                    lambda: f"{text!r} not in cell {index} output after {timeout}s:\n{self.output_text(index)[-2000:]}")

    def wait_cell_done(self, index: int, timeout: float = 60.0) -> str:
        """Wait until the cell shows an execution count (``[n]:``); return the prompt."""

        def done() -> str | None:
            prompt = self.input_prompt(index)
            return prompt if re.search(r"\[\d+\]", prompt) else None

        return poll(done, timeout,
                    lambda: f"cell {index} not finished after {timeout}s (prompt {self.input_prompt(index)!r})")

    def start_training(self, plot_cell: int = 0, training_cell: int = 1) -> Locator:
        """Run all cells, wait for the plot shown by ``plot_cell`` and for ``training_cell`` to be
        running ([*]); return the plot (``.lossviz``), to be read while the training goes on."""
        self.run_all_cells()
        widget = self.cell(plot_cell).locator(".lossviz")
        widget.wait_for(state="visible", timeout=30_000)
        poll(lambda: self.is_executing(training_cell), 30, "training cell never started executing ([*])",
             interval=0.05)
        return widget

    def error_outputs(self) -> list[str]:
        """Texts of all error (traceback) outputs in the notebook."""
        return self.page.locator(
            ".jp-NotebookPanel:not(.lm-mod-hidden) [data-mime-type='application/vnd.jupyter.error']"
        ).all_inner_texts()

    # -- bqplot -------------------------------------------------------------------------------

    @staticmethod
    def line_vertices(figure: Locator, label: str) -> list[dict[str, Any]]:
        """Every ``Lines`` curve labelled ``label`` in ``figure`` (a locator of one
        ``div.bqplot.figure``): ``{vertices, moves, hidden, d_prefix, mark_index}``."""
        return list(figure.evaluate(LINE_VERTICES_JS, label))

    @classmethod
    def visible_line_vertices(cls, figure: Locator, label: str) -> int:
        """Vertices of the one visible curve labelled ``label`` in ``figure``."""
        curves = cls.line_vertices(figure, label)
        visible = [c for c in curves if not c["hidden"]]
        if len(visible) != 1:
            raise HarnessError(f"expected exactly one visible line {label!r}, found {curves}")
        return int(visible[0]["vertices"])

    # -- artifacts ----------------------------------------------------------------------------

    def screenshot(self, name: str, locator: Locator | None = None) -> Path:
        """Save ``<artifacts>/<name>.png`` of the page, or of ``locator`` only."""
        path = self.artifacts / f"{name}.png"
        (locator if locator is not None else self.page).screenshot(path=str(path))
        return path


# --------------------------------------------------------------------------------------------
# pytest fixtures (import them into the test module)
# --------------------------------------------------------------------------------------------


# Every visible text node of the plot (HTML and SVG) and of the tooltip: its colour and the
# colour behind it, composited; the WCAG contrast ratio of each.
CONTRAST_JS = """(roots) => {
  const parse = (c) => { const m = c.match(/rgba?\\(([^)]+)\\)/); if (!m) return null;
    const v = m[1].split(/[ ,/]+/).filter(Boolean).map(Number); return [v[0], v[1], v[2], v.length > 3 ? v[3] : 1]; };
  const over = (top, bottom) => [0, 1, 2].map(i => top[i] * top[3] + bottom[i] * (1 - top[3])).concat([1]);
  const lum = (c) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]); };
  const background = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const b = parse(getComputedStyle(e).backgroundColor || ''); if (b && b[3] > 0) layers.push(b);
      if (b && b[3] === 1) break;
    }
    let bg = [255, 255, 255, 1];
    for (const l of layers.reverse()) bg = over(l, bg);
    return bg;
  };
  const out = [];
  for (const root of roots) {
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      const el = n.parentElement; const text = n.textContent.trim();
      if (!el || !text) continue;
      const r = el.getBoundingClientRect(); if (r.width === 0 || r.height === 0) continue;
      const cs = getComputedStyle(el);
      if (cs.visibility === 'hidden' || cs.display === 'none' || el.closest('[style*="display: none"]')) continue;
      if (el.closest('.g_legend')) continue;
      let op = 1; for (let e = el; e; e = e.parentElement) op *= Number(getComputedStyle(e).opacity);
      if (op < 0.99) continue;  // deliberately faded (a legend entry switched off): not body text
      const isSvg = el instanceof SVGElement;
      let fg = parse(isSvg ? cs.fill : cs.color); if (!fg) continue;
      const bg = background(el);
      fg = over(fg, bg);
      const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
      out.push({text: text.slice(0, 40), ratio: (a + 0.05) / (b + 0.05), fg: cs.color, fill: cs.fill,
                cls: (el.getAttribute('class') || el.tagName)});
    }
  }
  return out;
}"""


def low_contrast(nb: NotebookPage, roots_js: str) -> tuple[list[dict[str, Any]], int]:
    """The visible text nodes under the elements ``roots_js`` (a JS array expression) whose WCAG
    contrast ratio is below 4.5 (normal text, level AA), and how many text nodes were checked."""
    texts = nb.page.evaluate(f"() => ({CONTRAST_JS})({roots_js})")
    return [t for t in texts if t["ratio"] < 4.5], len(texts)


def own_server_page(browser: Browser, server: JupyterLabServer) -> NotebookPage:
    """A page in a fresh browser context on ``server`` (one started by the test itself, e.g. with
    another theme or ``app="notebook"``); close it with ``nb.page.context.close()``."""
    context = new_context(browser)
    context.set_default_timeout(30_000)
    return NotebookPage(context.new_page(), server)


#: Kernel-side code for tests that read what a plot drew (run it in the notebook before use). It
#: imports ``tests/drawn.py``, the tests' one reader of what each renderer sends (and one decoder of
#: the canvas' ``HoverLayer.lines``): ``drawn_points(plot, family)`` gives ``{label: points}`` of
#: the main lines a panel draws, whatever the renderer (``drawn_lines(plot, family, label)``: the
#: (raw, main) lines, see ``drawn.lines``); ``canvas_layer(plot)`` the first panel's
#: hover layer; ``sent_steps(plot)`` the first and last step of the points the kernel last sent the
#: first panel's canvas.
CANVAS_SENT_CODE = f"""\
import sys
if {str(REPO_ROOT / "tests")!r} not in sys.path:
    sys.path.insert(0, {str(REPO_ROOT / "tests")!r})
import numpy as np
from drawn import decode_lines, labels as drawn_labels, layers as drawn_layers, lines as drawn_lines

def canvas_layer(plot):
    return next(iter(drawn_layers(plot).values()))

def sent_steps(plot):
    x = np.concatenate([x for x, _ in decode_lines(canvas_layer(plot).lines)[0]])
    return int(x.min()), int(x.max())

def drawn_points(plot, family):
    return {{label: len(drawn_lines(plot, family, label)[1].x) for label in sorted(drawn_labels(plot, family))}}
"""

#: JS ``() => {head, more, rows: [{key, label, x, value, raw}]}`` of the one hover tooltip shown, or null.
TOOLTIP_JS = """() => {
  const tips = [...document.querySelectorAll('.lossviz-tooltip')].filter(t => t.style.display === 'block');
  if (tips.length !== 1) return null;
  const cells = (tr, cls) => { const c = tr.querySelector(cls); return c ? c.textContent : null; };
  return {
    head: tips[0].querySelector('.lossviz-tip-head').textContent,
    more: (tips[0].querySelector('.lossviz-tip-more') || {}).textContent || null,
    rows: [...tips[0].querySelectorAll('tr[data-key]')].map(tr => ({
      key: tr.dataset.key, label: cells(tr, '.lossviz-tip-label'), x: cells(tr, '.lossviz-tip-x'),
      value: cells(tr, '.lossviz-tip-value'), raw: cells(tr, '.lossviz-tip-raw')})),
  };
}"""


def last_drawn_step(page: Page, figure: Locator, label: str) -> int | None:
    """The step of the last point of the line labelled ``label`` that ``figure`` (a panel's
    ``div.bqplot.figure``) draws, as a person reads it: the hover readout with the cursor at the
    right edge of the plot area (it reads the points the panel draws, with either renderer: the
    canvas' binary lines or the SVG marks' data). None when no readout row shows that line. The
    cursor is moved away afterwards. Works while a training cell runs (the readout is computed in
    the browser)."""
    box = figure.locator("rect.plotarea_events").first.bounding_box()
    if box is None:
        return None
    # half a pixel in: the x axis may end right after the last point (its held bounds kept while
    # the data still fills them), where a cursor 2 px in read a point 2 px before the last
    x, y = box["x"] + box["width"] - 0.5, box["y"] + box["height"] / 2
    page.mouse.move(x - 3, y)
    page.mouse.move(x, y)
    try:
        for _ in range(20):
            page.wait_for_timeout(50)
            tip = page.evaluate(TOOLTIP_JS)
            rows = [r for r in (tip or {}).get("rows", []) if r["label"] == label]
            if rows:
                return int(float(rows[0]["x"].replace(",", "")))
        return None
    finally:
        page.mouse.move(1, 1)


def painted(locator: Locator, color: str, tolerance: int = 40) -> int:
    """How many pixels of ``locator``'s screenshot are within ``tolerance`` of ``color`` (``#rrggbb``)
    on every channel: how much of a line in that colour a person sees, whichever renderer drew it
    (take a panel's ``div.bqplot.figure``: its legend is outside it)."""
    import io

    import numpy as np
    from PIL import Image

    img = np.asarray(Image.open(io.BytesIO(locator.screenshot())).convert("RGB"), dtype=np.int16)
    rgb = np.array([int(color[i : i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(img - rgb).max(axis=2) < tolerance).sum())


def open_in_notebook7(nb: NotebookPage, name: str) -> None:
    """Open notebook ``name`` in Jupyter Notebook 7 (``/notebooks/NAME`` on an ``app="notebook"``
    server) and wait until its first cell shows and its kernel is idle."""
    nb.page.goto(nb.server.url(f"notebooks/{name}"), wait_until="domcontentloaded")
    nb.cell(0).wait_for(state="visible", timeout=60_000)
    poll(lambda: any(k.get("execution_state") == "idle" for k in nb.server.api("kernels")), 60,
         "Notebook 7: no idle kernel")
    nb.page.wait_for_timeout(1000)



def _safe_name(nodeid: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid.split("::")[-1])[:100]


@pytest.fixture(scope="session")
def chromium_browser() -> Iterator[Browser]:
    """One headless Debian Chromium for the session (fails with an install hint if missing)."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    try:
        browser = launch_chromium(pw)
        try:
            yield browser
        finally:
            browser.close()
    finally:
        pw.stop()


@pytest.fixture(scope="session")
def jupyterlab_server() -> Iterator[JupyterLabServer]:
    """One isolated JupyterLab server for the session, using this venv's ``python3`` kernel."""
    with running_jupyterlab() as server:
        check_kernelspec(server)
        yield server


@pytest.fixture
def page(chromium_browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh browser context + page. Console messages and page errors are saved to
    ``<artifacts>/<test>-console.log``, and a last screenshot ``<test>-teardown.png``."""
    context = new_context(chromium_browser)
    context.set_default_timeout(30_000)
    pg = context.new_page()
    messages: list[str] = []
    pg.on("console", lambda m: messages.append(f"[{m.type}] {m.text}"))
    pg.on("pageerror", lambda e: messages.append(f"[pageerror] {e}"))
    name = _safe_name(request.node.nodeid)
    try:
        yield pg
    finally:
        out = artifacts_dir()
        with contextlib.suppress(Exception):
            pg.screenshot(path=str(out / f"{name}-teardown.png"))
        (out / f"{name}-console.log").write_text("\n".join(messages) + "\n")
        context.close()


@pytest.fixture
def notebook_page(page: Page, jupyterlab_server: JupyterLabServer) -> NotebookPage:
    """:class:`NotebookPage` on the session's server (call ``.open(name)`` after writing a notebook)."""
    return NotebookPage(page, jupyterlab_server)


@contextlib.contextmanager
def opened_notebook(request: pytest.FixtureRequest, name: str, cells: Sequence[str]) -> Iterator[NotebookPage]:
    """Write notebook ``name`` with ``cells``, open it in a JupyterLab workspace of its own, and
    shut its kernel down afterwards (the server is shared with later tests).

    Checks for Chromium first, in the test body, so a missing browser is a failed test with the
    install hint, never a skip or a setup error."""
    require_chromium()
    nb: NotebookPage = request.getfixturevalue("notebook_page")
    write_notebook(nb.server.root_dir / name, cells)
    nb.open(name, workspace=f"lossviz-{Path(name).stem}")
    try:
        yield nb
    finally:
        nb.shut_down_kernels(name)
