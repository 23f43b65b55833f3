"""Polling for tests of background work (render thread, log file): no sleeps-as-assertions."""

import time


def wait_until(pred, timeout: float = 5.0, interval: float = 0.005) -> bool:
    """Poll ``pred`` until it is true or ``timeout`` seconds pass; returns its last value."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(interval)
    return bool(pred())
