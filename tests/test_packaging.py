"""The wheel: every module, the js/ folder as lossviz_widget/js/, and the dependency pins; the public names."""

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PUBLIC = [  # `from lossviz_widget import *`: keep in step with the README
    "DiagnosticsConfig", "Finding", "Follower", "LRFindResult", "LossPlot", "MetricHistory", "Recorder", "Run",
    "SMOOTHING_MODES", "ViewSettings", "losses", "lr_find", "smooth", "tensorboard_ema",
]


def test_public_names():
    import lossviz_widget

    assert sorted(lossviz_widget.__all__) == sorted(PUBLIC)
    assert all(getattr(lossviz_widget, name, None) is not None for name in PUBLIC)
    plot = lossviz_widget.LossPlot()
    try:  # the type that follow() returns, for annotations and to stop one follower
        assert isinstance(plot.follow(ROOT / "no-such-logs", interval=60), lossviz_widget.Follower)
    finally:
        plot.close()


def test_the_lr_finder_is_one_subpackage():
    import lossviz_widget
    from lossviz_widget.lr_finder import LRFinderPlot, LRFindResult, Suggestion, lr_find
    from lossviz_widget.lr_finder.suggest import SUGGESTION_METHODS

    assert lossviz_widget.lr_find is lr_find and lossviz_widget.LRFindResult is LRFindResult
    assert LRFinderPlot.__module__ == "lossviz_widget.lr_finder.view" and Suggestion.__module__.endswith(".suggest")
    assert "valley" in SUGGESTION_METHODS
    assert not list((ROOT / "lossviz_widget").glob("lr_*.py"))  # no top-level lr_ modules left


def test_wheel_ships_package_and_js(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(tmp_path)],
        cwd=ROOT, check=True, capture_output=True,
    )
    (wheel,) = tmp_path.glob("lossviz_widget-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {f"lossviz_widget/{p.relative_to(ROOT / 'lossviz_widget').as_posix()}"
               for p in (ROOT / "lossviz_widget").rglob("*.py")}
    assert "lossviz_widget/integrations/keras.py" in modules and modules <= names
    js = ROOT / "js"
    js_files = {f"lossviz_widget/js/{p.relative_to(js).as_posix()}" for p in js.rglob("*") if p.is_file()}
    assert js_files and js_files <= names
    assert "lossviz_widget/py.typed" in names  # PEP 561: type checkers read the package's annotations
    assert not any(n.startswith(("tests/", "notebooks/", ".venv")) for n in names)
    meta = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    requires = [line for line in meta.splitlines() if line.startswith("Requires-Dist:") and "extra" not in line]
    assert any("ipykernel" in r and "!=7.0.*" in r for r in requires)
    assert any(r.startswith("Requires-Dist: bqplot>=0.13.1") for r in requires)
    assert not any("torch" in r or "pandas" in r for r in requires)  # heavy/test-only deps stay optional
