"""The front-end unit tests (``tests/js/*.test.mjs``, Node's built-in test runner), run when
``node`` (18 or later) is installed; skipped, saying so, when it is not. The DOM parts of
``js/`` are tested in a real browser (``tests/browser``)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

JS_TESTS = sorted((Path(__file__).parent / "js").glob("*.test.mjs"))
NODE = shutil.which("node")


@pytest.mark.skipif(NODE is None, reason="node is not installed: the JS unit tests in tests/js need it")
def test_js_unit_tests_pass() -> None:
    assert JS_TESTS, "no tests/js/*.test.mjs found"
    done = subprocess.run([NODE, "--test", *map(str, JS_TESTS)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "# fail 0" in done.stdout and "# pass 0" not in done.stdout, done.stdout[-2000:]
