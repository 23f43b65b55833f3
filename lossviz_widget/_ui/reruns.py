"""Re-running a notebook cell replaces the plots it made before.

Jupyter clears a cell's output when it runs again, so a plot the previous run created is no
longer shown anywhere, but ipywidgets keeps every widget (its comm, and here its frame thread,
its follower threads, its log file) alive until it is closed: re-running the cell that makes a
plot, or the training cell that makes a callback's plot, 50 times would leave 50 plots
rendering in the background. So when a new plot is created in a cell, the plots the same cell
created in an *earlier* run are closed (several plots made by one run all stay). A cell is
known by the ``cellId`` JupyterLab and Notebook 7 send with each execution, else by its code.

Outside a kernel (scripts, tests) nothing is tracked.
"""

from __future__ import annotations

import hashlib
import sys
import weakref
from typing import Any, Protocol

from ipywidgets import Widget

__all__ = ["close_tree", "replace_previous"]


class Closable(Protocol):
    def close(self) -> None: ...


_made: dict[str, tuple[str, list[weakref.ref[Any]]]] = {}  # cell -> (execution msg_id, its plots)


def _current_cell() -> tuple[str, str] | None:
    """``(cell key, execution msg_id)`` of the cell running now, or None outside a kernel request."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    kernel = getattr(shell, "kernel", None)
    get_parent = getattr(kernel, "get_parent", None)
    if get_parent is None:
        return None
    try:
        parent = get_parent("shell")
    except TypeError:  # ipykernel < 6.?: no channel argument
        parent = get_parent()
    header, content = parent.get("header") or {}, parent.get("content") or {}
    if header.get("msg_type") != "execute_request":
        return None
    cell = (parent.get("metadata") or {}).get("cellId")
    if not cell:
        cell = "code:" + hashlib.sha1(str(content.get("code", "")).encode("utf-8", "replace")).hexdigest()
    return str(cell), str(header.get("msg_id", ""))


def replace_previous(plot: Closable) -> None:
    """Close the plots that an earlier run of the current cell made, and remember ``plot``."""
    where = _current_cell()
    if where is None:
        return
    cell, execution = where
    previous, plots = _made.get(cell, ("", []))
    if previous != execution:
        for ref in plots:
            old = ref()
            if old is not None and old is not plot:
                old.close()
        plots = []
    plots.append(weakref.ref(plot))
    _made[cell] = (execution, plots)


def close_tree(root: Any) -> None:
    """Close every widget reachable from ``root`` through its traits (not ``root`` itself): children,
    and also each one's ``layout`` and ``style`` and a figure's marks, scales and axes, which
    ``Widget.close`` leaves open (each is a comm, kept in the widget registry forever)."""
    seen: dict[int, Any] = {}
    pending = [root]
    while pending:
        w = pending.pop()
        if id(w) in seen:
            continue
        seen[id(w)] = w
        for name in w.keys:
            value = getattr(w, name, None)
            items = value if isinstance(value, (list, tuple)) else (value.values() if isinstance(value, dict)
                                                                    else (value,))
            pending += [v for v in items if isinstance(v, Widget) and id(v) not in seen]
    for w in seen.values():
        if w is not root:
            w.close()
