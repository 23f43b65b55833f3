"""Whether the kernel would hear the browser now: no notebook cell is running.

Browser -> kernel widget messages wait in the kernel's queue while a cell runs (ipywidgets
#3468), so a panel the browser reported as out of view may be back in view without the kernel
knowing until the cell ends. Frames for unseen panels are therefore skipped only while no cell
runs (frames drawn by a follower or a training thread while the kernel is idle); tracked with
IPython's ``pre_run_cell``/``post_run_cell`` events.
"""

from __future__ import annotations

from typing import Any

__all__ = ["kernel_listens", "watch_cells"]

_state = {"watching": False, "running": False}


def _started(info: Any = None) -> None:
    _state["running"] = True


def _ended(result: Any = None) -> None:
    _state["running"] = False


def watch_cells() -> None:
    """Follow cell starts and ends in this IPython kernel (once per process; nothing outside IPython)."""
    if _state["watching"]:
        return
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None:
        return
    shell.events.register("pre_run_cell", _started)
    shell.events.register("post_run_cell", _ended)
    _state["watching"] = True


def kernel_listens() -> bool:
    """True when cells are followed (:func:`watch_cells`) and none is running: a message from the
    browser reaches the kernel at once."""
    return _state["watching"] and not _state["running"]
