"""The documentation site: `mkdocs build --strict` succeeds offline and documents the real API.

The test extra installs mkdocs-material and mkdocstrings, so a missing mkdocs is a
broken environment, reported as a failure (never a skip).
"""

from __future__ import annotations

import html
import importlib.util
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import lossviz_widget

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "lossviz_widget"
PAGES = ["index", "tour", "architecture", "performance", "benchmarks", "diagnostics",
         "api/lossplot", "api/integrations"]


def _plain(markup: str) -> str:
    """HTML as plain text: tags dropped, entities decoded, whitespace collapsed."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", "", markup)))


def _compact(s: str) -> str:
    """``s`` without whitespace or a formatter's trailing commas, to compare signatures."""
    return re.sub(r"\s+", "", s).replace(",)", ")")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    assert importlib.util.find_spec("mkdocs") is not None, "mkdocs is missing: install the test extra (.[test])"
    out = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(ROOT / "mkdocs.yml"),
         "--site-dir", str(out)],
        cwd=tmp_path_factory.mktemp("elsewhere"),  # no path in mkdocs.yml may depend on the working folder
        capture_output=True, text=True, timeout=240,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},  # mkdocs-material's notice about MkDocs 2
    )
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stdout}\n{result.stderr}"
    return out


def test_every_page_is_built_and_loads_nothing_from_the_network(site: Path) -> None:
    for page in PAGES:
        built = site / page / "index.html" if page != "index" else site / "index.html"
        assert built.is_file(), f"{page} was not built"
        assert "fonts.googleapis.com" not in built.read_text(encoding="utf-8"), f"{page} loads web fonts"
    # The benchmark page is benchmarks/RESULTS.md itself, included at build time.
    first_heading = (ROOT / "benchmarks" / "RESULTS.md").read_text(encoding="utf-8").splitlines()[0].lstrip("# ")
    assert first_heading in _plain((site / "benchmarks" / "index.html").read_text(encoding="utf-8"))


def test_each_api_object_is_documented_once_per_page(site: Path) -> None:
    for page in (site / "api").glob("*/index.html"):
        ids = re.findall(r'id="(lossviz_widget[^"]*)"', page.read_text(encoding="utf-8"))
        assert len(ids) == len(set(ids)), f"{page.parent.name}: {sorted({i for i in ids if ids.count(i) > 1})}"


def test_the_api_page_documents_log_with_its_real_signature(site: Path) -> None:
    page = (site / "api" / "lossplot" / "index.html").read_text(encoding="utf-8")
    assert 'id="lossviz_widget.LossPlot.log"' in page
    section = page[page.index('id="lossviz_widget.LossPlot.log"'):]
    text = _plain(section)
    # The signature as Python has it, written as in the source: annotations are strings
    # (``from __future__ import annotations``), shown without their quotes; no ``self``.
    expected = "log" + re.sub(r"'([^']*)'", r"\1", str(inspect.signature(lossviz_widget.LossPlot.log)))
    expected = expected.replace("(self, ", "(")
    assert _compact(expected) in _compact(text), f"signature {expected!r} not on the API page"
    first_line = (inspect.getdoc(lossviz_widget.LossPlot.log) or "").splitlines()[0]
    assert first_line.replace("``", "") in text
    # Sphinx roles and doctests were turned into Markdown (docs/_ext/rst_docstrings.py).
    assert ":meth:" not in page and ":class:" not in page
    assert '<span class="gp">&gt;&gt;&gt; </span>' in page


def test_the_recorder_is_documented(site: Path) -> None:
    page = (site / "api" / "recorder" / "index.html").read_text(encoding="utf-8")
    assert "widget-free" in _plain(page)
    assert 'id="lossviz_widget.Recorder"' in page, "docs/api/recorder.md must document lossviz_widget.Recorder"


def test_module_paths_named_in_the_docs_exist() -> None:
    """Every ``_core/…``, ``_ui/…``, ``_io/…`` or ``_model.py`` path a page names is a real file."""
    named = {m for page in (ROOT / "docs").glob("*.md")
             for m in re.findall(r"`((?:_core|_ui|_io)/\w+\.py|_model\.py)`", page.read_text(encoding="utf-8"))}
    assert named, "the docs name no module path: the pattern is out of date"
    missing = sorted(m for m in named if not (PKG / m).is_file())
    assert not missing, f"docs name modules that do not exist: {missing}"
