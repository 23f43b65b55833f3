"""SnapshotButton's kernel side, without a browser: the JS module it loads, and how it
handles replies (validation, duplicates from two views, errors) and timeouts.

Replies are fed through ``Widget._handle_msg`` exactly as a comm message from the
front end arrives (:func:`deliver`). The wheel shipping ``lossviz_widget/js/snapshot.js`` is checked by
``test_packaging.py`` (every file of ``js/`` must be in the wheel).
"""

from __future__ import annotations

import struct
import threading
import time
import zlib
from pathlib import Path

import pytest
from traitlets import TraitError

from lossviz_widget._io import assets
from lossviz_widget._ui import snapshot as snapshot_module
from lossviz_widget._ui.snapshot import ESM_PATH, PNG_SIGNATURE, SnapshotButton, png_problem


def make_png(width: int = 3, height: int = 2) -> bytes:
    """A valid RGB PNG (white), built by hand so the test needs no imaging library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + b"\xff" * (3 * width) for _ in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return PNG_SIGNATURE + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def reply(btn: SnapshotButton, request_id: str, data: bytes | None = None, *, ok: bool = True,
          error: str | None = None, width: int | None = 3, height: int | None = 2) -> None:
    """Deliver a ``snapshot`` reply the way the comm does (see :func:`deliver`)."""
    content: dict = {"type": "snapshot", "ok": ok, "request_id": request_id}
    if ok:
        content.update(width=width, height=height)
    else:
        content["error"] = error
    deliver(btn, content, [] if data is None else [memoryview(data)])


def deliver(btn: SnapshotButton, content: object, buffers: list) -> None:
    """A custom message from the front end, as the comm delivers it. Private on purpose:
    ``_handle_msg`` is where ipywidgets hands a widget its comm messages, and with no browser
    here nothing else can play the front end's part."""
    btn._handle_msg({"content": {"data": {"method": "custom", "content": content}}, "buffers": buffers})


@pytest.fixture
def btn():
    b = SnapshotButton()
    sent: list[dict] = []
    b.send = lambda content, buffers=None: sent.append(content)  # what request() sends to the browser
    b.sent = sent
    yield b
    b.close()


def timers_running(before: set[threading.Thread] = frozenset()) -> list[threading.Timer]:
    """Request timeouts (``threading.Timer``) still waiting, other than those in ``before``."""
    return [t for t in threading.enumerate() if isinstance(t, threading.Timer) and t.is_alive() and t not in before]


def wait_for(fn, timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if fn():
            return True
        time.sleep(0.01)
    return bool(fn())


def test_esm_is_the_js_module():
    assert ESM_PATH.name == "snapshot.js" and ESM_PATH.is_file()
    source = ESM_PATH.read_text()
    assert "export default" in source and "render" in source
    widget = SnapshotButton()
    try:
        assert widget._esm == source  # anywidget's (documented) name for the module it syncs to the browser
    finally:
        widget.close()


def test_esm_prefers_the_installed_package(tmp_path, monkeypatch):
    (tmp_path / "js").mkdir()
    (tmp_path / "js" / "snapshot.js").write_text("export default {};")
    # ESM_PATH is resolved once, at import, by js_file (also used for hover.js, lossviz.css, the report)
    monkeypatch.setattr(assets.importlib.resources, "files", lambda _pkg: tmp_path)
    assert assets.js_file("snapshot.js") == tmp_path / "js" / "snapshot.js"
    monkeypatch.setattr(assets.importlib.resources, "files", lambda _pkg: tmp_path / "missing")
    assert assets.js_file("snapshot.js") == Path(snapshot_module.__file__).resolve().parents[2] / "js" / "snapshot.js"


def test_valid_reply_is_accepted_and_calls_back(btn):
    got: list[bytes] = []
    btn.on_snapshot(got.append)
    rid = btn.request(timeout=0.2)
    assert btn.sent == [{"type": "request_snapshot", "request_id": rid, "download": False}]
    png = make_png()
    reply(btn, rid, png)
    assert btn.last_snapshot == png and btn.last_error is None
    assert got == [png]
    time.sleep(0.3)  # past the timeout: it was cancelled by the reply
    assert btn.last_error is None


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "no PNG bytes"),
        (b"GIF89a" + b"\x00" * 40, "not a PNG"),
        (PNG_SIGNATURE + b"\x00" * 4, "truncated PNG"),
        (make_png()[:-12], "no IEND"),
        (make_png(4, 2), "PNG is 4x2 but the browser reported 3x2"),
    ],
)
def test_bad_bytes_are_rejected(btn, data, reason):
    rid = btn.request(timeout=5)
    reply(btn, rid, data)
    assert btn.last_snapshot is None
    assert btn.last_error is not None and btn.last_error.startswith(f"rejected snapshot reply {rid}:")
    assert reason in btn.last_error


def test_reply_without_buffer_is_rejected(btn):
    rid = btn.request(timeout=5)
    reply(btn, rid, None)
    assert btn.last_snapshot is None and "expected 1 buffer, got 0" in btn.last_error


def test_request_without_a_view_times_out_cleanly(btn):
    before = set(threading.enumerate())
    t0 = time.monotonic()
    rid = btn.request(timeout=0.2)
    assert time.monotonic() - t0 < 0.1  # returns at once, never waits for the browser
    assert btn.last_error is None and btn.last_snapshot is None
    assert wait_for(lambda: btn.last_error is not None)
    assert btn.last_error.startswith(f"no snapshot reply within 0.2 s (request {rid})")
    assert "displayed in a browser" in btn.last_error
    assert wait_for(lambda: not timers_running(before))  # the expired request left nothing behind
    # A late reply (the kernel was busy) still counts and clears the error.
    png = make_png()
    reply(btn, rid, png)
    assert btn.last_snapshot == png and btn.last_error is None


def test_duplicate_replies_for_one_request_are_ignored(btn):
    got: list[bytes] = []
    btn.on_snapshot(got.append)
    rid = btn.request(timeout=0.2)
    first, second = make_png(3, 2), make_png(5, 4)
    reply(btn, rid, first)
    reply(btn, rid, second, width=5, height=4)  # the second view of the same widget
    assert btn.last_snapshot == first and got == [first]  # the duplicate is dropped, not an error
    time.sleep(0.3)  # past the timeout: it was cancelled by the first reply
    assert btn.last_error is None


def test_a_failing_view_does_not_block_a_working_one(btn):
    rid = btn.request(timeout=0.2)
    reply(btn, rid, ok=False, error="the plot is not visible in this view (zero size or detached)")
    assert btn.last_error == ("snapshot failed in the browser: "
                              "the plot is not visible in this view (zero size or detached)")
    time.sleep(0.3)  # the timeout must not overwrite the browser's error
    assert btn.last_error.startswith("snapshot failed in the browser")
    png = make_png()
    reply(btn, rid, png)
    assert btn.last_snapshot == png and btn.last_error is None


def test_clicks_in_the_browser_are_accepted(btn):
    png = make_png()
    reply(btn, "click-1234", png)  # a click: no request from Python
    assert btn.last_snapshot == png


def test_on_snapshot_remove_and_callback_errors(btn):
    got: list[bytes] = []
    btn.on_snapshot(got.append)
    btn.on_snapshot(got.append, remove=True)
    btn.on_snapshot(lambda data: 1 / 0)  # a broken callback must not lose the snapshot
    png = make_png()
    reply(btn, "click-1", png)
    assert got == [] and btn.last_snapshot == png


def test_other_messages_are_ignored(btn):
    deliver(btn, {"type": "other"}, [])
    deliver(btn, ["not", "a", "dict"], [])
    assert btn.last_snapshot is None and btn.last_error is None


def test_close_cancels_pending_requests():
    before = set(threading.enumerate())
    b = SnapshotButton()
    b.request(timeout=0.1)
    (timer,) = timers_running(before)  # the request's timeout
    b.close()
    assert timer.finished.is_set()  # cancelled
    timer.join(1)
    assert not timers_running(before)
    time.sleep(0.2)
    assert b.last_error is None
    b.request(timeout=0.1)  # closed: says so at once, no timer
    assert b.last_error == "snapshot widget is closed"


def test_request_validates_timeout(btn):
    for bad in (0, -1, float("nan"), float("inf"), "5"):
        with pytest.raises(ValueError, match="timeout"):
            btn.request(timeout=bad)
    assert not btn.sent


def test_traits_are_validated():
    b = SnapshotButton(filename="run1.png", scale=2)
    try:
        assert (b.filename, b.scale) == ("run1.png", 2.0)
        for bad in (0, -1, 9, float("nan")):
            with pytest.raises(TraitError, match="scale"):
                b.scale = bad
        for bad in ("", "  ", "dir/x.png", "..\\x.png"):
            with pytest.raises(TraitError, match="filename"):
                b.filename = bad
    finally:
        b.close()


def test_png_problem_accepts_a_real_png_without_size():
    assert png_problem(make_png(7, 9)) is None
    assert png_problem(make_png(7, 9), 7, 9) is None
    assert "empty PNG" in png_problem(make_png(0, 1))
