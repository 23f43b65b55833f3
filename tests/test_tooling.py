"""The checks CI runs through the README's test command, besides the tests themselves.

ruff (zero findings), mypy (zero errors: strict on ``_core`` and ``_model``, standard elsewhere),
import-linter (the layer contracts), no import cycle between the package's modules, and the
version written once. Every tool runs with the project's configuration (``pyproject.toml``) as a
subprocess of this interpreter's environment, and a failure shows the tool's own output.
``.pre-commit-config.yaml`` runs the same tools on each commit.
"""

from __future__ import annotations

import importlib.metadata
import itertools
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the environment's console scripts (lint-imports)

RUFF_PATHS = ("lossviz_widget", "benchmarks", "notebooks", "scripts", "tests")


def _pyproject() -> dict[str, Any]:
    tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11+ (tomllib)")
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _run(*args: str | Path, timeout: float = 280) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def _output(proc: subprocess.CompletedProcess[str]) -> str:
    """What a tool said, for the assertion message."""
    return f"`{' '.join(proc.args)}` exited with {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"


@pytest.mark.parametrize("path", RUFF_PATHS)
def test_ruff_finds_nothing(path):
    proc = _run(sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format=concise", path)
    assert proc.returncode == 0, _output(proc)


@pytest.mark.timeout(600)
def test_mypy_finds_nothing():
    # files, strictness and the untyped third-party modules: [tool.mypy] in pyproject.toml.
    # ~40 s with its cache (.mypy_cache), ~2 min without on two busy cores
    proc = _run(sys.executable, "-m", "mypy", timeout=580)
    assert proc.returncode == 0 and proc.stdout.startswith("Success:"), _output(proc)


def test_mypy_strict_section_is_mypys_strict():
    """The core's override spells out the strict flags (a per-module ``strict = true`` would make
    every module strict); they must be the ones ``mypy --strict`` sets, in this mypy version."""
    from mypy.main import define_options

    _, _, strict_assignments = define_options()
    config = _pyproject()["tool"]["mypy"]
    core = next(o for o in config["overrides"] if "lossviz_widget._core.*" in o["module"])
    assert {"lossviz_widget._core", "lossviz_widget._model"} <= set(core["module"])
    effective = {**config, **core}  # global-only flags (warn_redundant_casts) sit in [tool.mypy]
    for key, value in list(effective.items()):
        if key.startswith("no_") and isinstance(value, bool):
            effective[key[3:]] = not value
    missing = [(flag, value) for flag, value in strict_assignments if effective.get(flag) != value]
    assert not missing, f"strict flags not set for lossviz_widget._core/_model: {missing}"


def test_import_contracts_hold():
    proc = _run(BIN / "lint-imports", "--no-cache")
    assert proc.returncode == 0, _output(proc)


def _cycles(graph) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            module, targets = work[-1]
            target = next(targets, None)
            if target is not None:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(graph.find_modules_directly_imported_by(target)))))
                elif target in on_stack:
                    low[module] = min(low[module], index[target])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[module])
            if low[module] == index[module]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == module:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _describe(graph, component: list[str]) -> str:
    """One import cycle through ``component``, each edge with the line that makes it."""
    first = component[0]
    second = next(m for m in sorted(graph.find_modules_directly_imported_by(first)) if m in component)
    chain = [first, *graph.find_shortest_chain(importer=second, imported=first)]
    edges = []
    for importer, imported in itertools.pairwise(chain):
        lines = [f"{d['line_number']}: {d['line_contents']}" for d in
                 graph.get_import_details(importer=importer, imported=imported)]
        edges.append(f"  {importer} -> {imported}  ({'; '.join(lines)})")
    return f"cycle among {len(component)} modules {component}:\n" + "\n".join(edges)


def test_no_import_cycles():
    """No module imports itself through others, function-level imports included (an import under
    ``TYPE_CHECKING`` runs never, so it makes no cycle)."""
    import grimp

    graph = grimp.build_graph("lossviz_widget", exclude_type_checking_imports=True, cache_dir=None)
    assert "lossviz_widget._core.recorder" in graph.modules  # the graph is this package's
    cycles = _cycles(graph)
    assert not cycles, "\n".join(_describe(graph, c) for c in cycles)


def test_cycle_finder_finds_a_cycle():
    """The check above can fail: a made-up graph with a three-module cycle and a tail."""
    import grimp

    graph = grimp.ImportGraph()
    for importer, imported in (("p.a", "p.b"), ("p.b", "p.c"), ("p.c", "p.a"), ("p.c", "p.d")):
        graph.add_import(importer=importer, imported=imported, line_number=1, line_contents=f"import {imported}")
    (cycle,) = _cycles(graph)
    assert cycle == ["p.a", "p.b", "p.c"]
    assert "p.a -> p.b" in _describe(graph, cycle) and "p.c -> p.a" in _describe(graph, cycle)


def test_version_is_written_once():
    import lossviz_widget

    assert importlib.metadata.version("lossviz-widget") == lossviz_widget.__version__
    pyproject = _pyproject()
    project = pyproject["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert pyproject["tool"]["hatch"]["version"]["path"] == "lossviz_widget/__init__.py"
    assert not re.search(r"(?m)^\s*version\s*=", (ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    written = [p for p in (ROOT / "lossviz_widget").rglob("*.py")
               if re.search(r"(?m)^__version__\s*=", p.read_text(encoding="utf-8"))]
    assert written == [ROOT / "lossviz_widget" / "__init__.py"]
