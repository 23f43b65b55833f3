"""``SnapshotButton``: a PNG of the live widget exactly as the browser shows it.

The picture is made in the browser by ``js/snapshot.js`` (all panels, title, readout,
drawn onto one canvas at ``devicePixelRatio * scale``), downloaded there on a click,
and sent back to the kernel, where it lands in :attr:`SnapshotButton.last_snapshot`.

Why a separate anywidget and not bqplot's ``Figure.get_png_data``: that needs one
rendered view per figure, only completes after the cell, and breaks with two views.
Our capture reads the DOM of whichever view is asked, and the kernel keeps only the
first valid reply per request.

Replies from the browser are comm messages: the kernel handles them only when idle.
So :meth:`SnapshotButton.request` never waits; ask in one cell, read
``last_snapshot`` in a later one (or pass a callback to :meth:`on_snapshot`).
"""

from __future__ import annotations

import collections
import math
import struct
import threading
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import anywidget
from ipywidgets import CallbackDispatcher
from traitlets import Bytes, Float, TraitError, Unicode, validate

from .._io.assets import js_file

__all__ = ["ESM_PATH", "PNG_SIGNATURE", "SnapshotButton"]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_REMEMBERED_IDS = 256  # answered request ids kept to drop duplicate replies (two views)


#: The front-end module loaded by anywidget.
ESM_PATH = js_file("snapshot.js")


def png_problem(data: bytes, width: Any = None, height: Any = None) -> str | None:
    """Why ``data`` is not a complete PNG of ``width`` x ``height`` (when given); None if it is."""
    if not data:
        return "no PNG bytes received"
    if not data.startswith(PNG_SIGNATURE):
        return f"not a PNG (starts with {bytes(data[:8])!r})"
    if len(data) < 8 + 25 + 12 or data[12:16] != b"IHDR":
        return f"truncated PNG ({len(data)} bytes, no IHDR chunk)"
    w, h = struct.unpack(">II", data[16:24])
    if w == 0 or h == 0:
        return f"empty PNG ({w}x{h})"
    if data[-12:-4] != b"\x00\x00\x00\x00IEND":
        return f"truncated PNG ({len(data)} bytes, no IEND chunk)"
    if width is not None and height is not None and (w, h) != (width, height):
        return f"PNG is {w}x{h} but the browser reported {width}x{height}"
    return None


class SnapshotButton(anywidget.AnyWidget):
    """A control-bar button that saves a PNG of the enclosing ``LossPlot`` as shown.

    Click it: the browser downloads ``filename`` and the bytes arrive in
    :attr:`last_snapshot` once the kernel is idle. From Python: :meth:`request`.
    The button must be inside the LossPlot (its control bar) to find what to capture.
    """

    _esm = ESM_PATH

    filename = Unicode("lossviz-snapshot.png", help="Name of the downloaded file.").tag(sync=True)
    scale = Float(1.0, help="Resolution factor on top of the screen's devicePixelRatio, in (0, 8].").tag(sync=True)

    #: The latest accepted PNG (kernel side only, never synced to the browser).
    last_snapshot = Bytes(None, allow_none=True, help="Latest PNG received from the browser.")
    #: Why the latest request or reply failed; None after a success.
    last_error = Unicode(None, allow_none=True, help="Latest snapshot error, or None.")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._lock = threading.RLock()
        self._pending: dict[str, threading.Timer] = {}  # request id -> its timeout
        self._answered: collections.deque[str] = collections.deque(maxlen=_REMEMBERED_IDS)
        self._duplicates = 0  # replies dropped because their request was already answered
        self._snapshot_callbacks = CallbackDispatcher()
        self.on_msg(self._on_reply)

    @validate("scale")
    def _check_scale(self, proposal: dict) -> float:
        v = proposal["value"]
        if not (math.isfinite(v) and 0.0 < v <= 8.0):
            raise TraitError(f"scale must be in (0, 8], got {v!r}")
        return v

    @validate("filename")
    def _check_filename(self, proposal: dict) -> str:
        v = proposal["value"].strip()
        if not v or "/" in v or "\\" in v:
            raise TraitError(f"filename must be a plain, non-empty file name, got {proposal['value']!r}")
        return v

    # -- public API -------------------------------------------------------------------------

    def request(self, timeout: float = 10.0, *, download: bool = False) -> str:
        """Ask every displayed view for a snapshot; returns the request id at once.

        The first valid reply sets :attr:`last_snapshot` (and calls the
        :meth:`on_snapshot` callbacks). Replies are only handled while the kernel is
        idle, so read the result in a later cell. If no view answers within
        ``timeout`` seconds, :attr:`last_error` says so (a late reply still counts).
        ``download=True`` also downloads the file in the browser.
        """
        if not (isinstance(timeout, (int, float)) and math.isfinite(timeout) and timeout > 0):
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        request_id = uuid.uuid4().hex
        if self.comm is None:  # closed
            self.last_error = "snapshot widget is closed"
            return request_id
        timer = threading.Timer(timeout, self._expire, args=(request_id, timeout))
        timer.daemon = True
        with self._lock:
            self._pending[request_id] = timer
        self.send({"type": "request_snapshot", "request_id": request_id, "download": bool(download)})
        timer.start()
        return request_id

    def on_snapshot(self, callback: Callable[[bytes], Any], remove: bool = False) -> None:
        """Call ``callback(png_bytes)`` for every accepted snapshot (``remove=True`` unregisters)."""
        self._snapshot_callbacks.register_callback(callback, remove=remove)

    def close(self) -> None:
        """Cancel pending request timeouts and close the widget."""
        lock = getattr(self, "_lock", None)
        if lock is not None:
            with lock:
                for timer in self._pending.values():
                    timer.cancel()
                self._pending.clear()
        super().close()

    # -- replies ----------------------------------------------------------------------------

    def _expire(self, request_id: str, timeout: float) -> None:
        """Timer thread: no reply (success or failure) arrived in time."""
        with self._lock:
            if self._pending.pop(request_id, None) is None:
                return
            self.last_error = (
                f"no snapshot reply within {timeout:g} s (request {request_id}): the plot must be "
                "displayed in a browser, and replies only arrive while the kernel is idle "
                "(call request() at the end of a cell, read last_snapshot in a later one)"
            )

    def _on_reply(self, _widget: Any, content: Any, buffers: Sequence[Any] | None) -> None:
        if not isinstance(content, dict) or content.get("type") != "snapshot":
            return
        request_id = str(content.get("request_id") or "")
        with self._lock:
            if request_id in self._answered:  # another view already answered this request
                self._duplicates += 1
                return
            timer = self._pending.pop(request_id, None)
            if timer is not None:
                timer.cancel()
            if not content.get("ok"):
                # Not marked answered: another view may still succeed.
                self.last_error = f"snapshot failed in the browser: {content.get('error') or 'unknown error'}"
                return
            if not buffers or len(buffers) != 1:
                self.last_error = f"rejected snapshot reply {request_id}: expected 1 buffer, got {len(buffers or [])}"
                return
            data = bytes(buffers[0])
            problem = png_problem(data, content.get("width"), content.get("height"))
            if problem is not None:
                self.last_error = f"rejected snapshot reply {request_id}: {problem}"
                return
            self._answered.append(request_id)
            self.last_snapshot = data
            self.last_error = None
        self._snapshot_callbacks(data)
