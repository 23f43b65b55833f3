"""Data exports (.csv/.json/.npz) round-trip exactly; errors name the path; writes are atomic."""

import csv
import json
import math
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from lossviz_widget import LossPlot

DATA_SUFFIXES = [".csv", ".json", ".npz"]
EVIL = '<script>alert(1)</script>, "quoted"\nnewline'


@pytest.fixture
def plot():
    p = LossPlot(title="round trip", smoothing=0.9, log_y=True, x_axis="relative_time", max_points=500)
    rng = np.random.default_rng(0)
    for i in range(3000):
        v = float(rng.random()) * 10 ** float(rng.integers(-300, 300))  # exercise every float magnitude
        if i in (5, 6):
            v = float("nan")
        if i == 7:
            v = float("inf")
        if i == 8:
            v = -float("inf")
        p.log(loss=v, step=i * 0.5)  # fractional steps
        if i % 100 == 0:
            p.log({"val/loss": 1.0 / (i + 1), EVIL: -0.0, "lr": 1e-3}, step=i * 0.5)
    p.log(loss=2.0, step=1499.5)  # equal steps are kept in order
    yield p
    p.close()


def assert_same_history(a, b):
    assert list(a.history) == list(b.history)
    for name in a.history:
        ha, hb = a.history[name], b.history[name]
        for col in ("steps", "values", "wall_time"):
            x, y = getattr(ha, col), getattr(hb, col)
            assert x.dtype == y.dtype == np.float64
            np.testing.assert_array_equal(x, y)  # exact, NaN positions included
            assert np.array_equal(np.signbit(x), np.signbit(y))  # -0.0 survives too


@pytest.mark.parametrize("suffix", DATA_SUFFIXES)
def test_round_trip_exact(plot, tmp_path, suffix):
    path = plot.export(tmp_path / f"run{suffix}")
    assert path == tmp_path / f"run{suffix}" and path.stat().st_size > 0
    loaded = LossPlot.load(path)
    assert_same_history(plot, loaded)
    loaded.log(loss=0.5)  # ready to keep logging
    assert loaded.history["loss"].steps[-1] == 1500.5
    loaded.close()


@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_title_and_settings_round_trip(plot, tmp_path, suffix):
    loaded = LossPlot.load(plot.export(tmp_path / f"run{suffix}"))
    assert (loaded.title, loaded.smoothing, loaded.log_y, loaded.x_axis, loaded.max_points) == (
        "round trip", 0.9, True, "relative_time", 500)
    override = LossPlot.load(tmp_path / f"run{suffix}", smoothing=0.0, title="other")
    assert (override.smoothing, override.title) == (0.0, "other")
    loaded.close()
    override.close()


def test_csv_is_long_format_and_escapes_names(plot, tmp_path):
    path = plot.export(tmp_path / "run.csv")
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["run", "metric", "step", "value", "wall_time"]
    assert {r[1] for r in rows[1:]} == {"loss", "val/loss", EVIL, "lr"}
    assert len(rows) - 1 == sum(len(h) for h in plot.history.values())
    assert rows[6][:4] == ["default", "loss", "2.5", "nan"]


def test_json_is_strict_json(plot, tmp_path):
    text = plot.export(tmp_path / "run.json").read_text(encoding="utf-8")
    doc = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    values = doc["runs"]["default"]["loss"]["values"]
    assert values[5] == "NaN" and values[7] == "Infinity" and values[8] == "-Infinity"


def test_npz_needs_no_pickle(plot, tmp_path):
    path = plot.export(tmp_path / "run.npz")
    with np.load(path, allow_pickle=False) as z:  # would raise if any object array was stored
        assert all(z[k].dtype != object for k in z.files)
    assert zipfile.is_zipfile(path)


def test_empty_plot_round_trips(tmp_path):
    p = LossPlot()
    for suffix in DATA_SUFFIXES:
        assert len(LossPlot.load(p.export(tmp_path / f"empty{suffix}")).history) == 0


def test_unknown_suffix_and_missing_folder(plot, tmp_path):
    with pytest.raises(ValueError, match=r"cannot export to '.*run\.txt': unknown suffix '\.txt'; use one of .png"):
        plot.export(tmp_path / "run.txt")
    with pytest.raises(ValueError, match="unknown suffix '\\(none\\)'"):
        plot.export(tmp_path / "run")
    missing = tmp_path / "nope" / "run.csv"
    with pytest.raises(FileNotFoundError, match=f"folder '{tmp_path / 'nope'}' does not exist"):
        plot.export(missing)
    with pytest.raises(IsADirectoryError, match="it is a folder"):
        plot.export(_mkdir(tmp_path / "dir.csv"))
    assert not missing.exists()


def _mkdir(p: Path) -> Path:
    p.mkdir()
    return p


def test_read_only_location(plot, tmp_path):
    if os.geteuid() == 0:  # root ignores permission bits; sysfs refuses new files even to root
        target = Path("/sys/lossviz-run.csv")
    else:
        ro = _mkdir(tmp_path / "ro")
        ro.chmod(0o500)
        target = ro / "run.csv"
    with pytest.raises(PermissionError, match=f"cannot write '{target}'.*not writable"):
        plot.export(target)
    assert not target.exists()


def test_failed_write_keeps_the_good_file(plot, tmp_path, monkeypatch):
    good = plot.export(tmp_path / "run.json")
    before = good.read_bytes()
    import lossviz_widget._io.data_files as formats

    def broken(f, suffix, data):
        f.write(b'{"half": ')
        raise RuntimeError("disk full")

    monkeypatch.setattr(formats, "write_data", broken)
    monkeypatch.setattr("lossviz_widget._io.export.write_data", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        plot.export(good)
    assert good.read_bytes() == before  # the good file is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]  # no temporary file left behind


def test_export_keeps_file_mode(plot, tmp_path):
    path = plot.export(tmp_path / "run.csv")
    assert path.stat().st_mode & 0o777 == 0o666 & ~_umask()
    path.chmod(0o640)
    plot.export(path)
    assert path.stat().st_mode & 0o777 == 0o640


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("bad.json", b"{not json", "not a valid lossviz .json file"),
        ("other.json", b'{"format": "something else"}', "missing \"format\""),
        ("bad.npz", b"PK\x03\x04 truncated zip", "not a valid lossviz .npz file"),
        ("bad.csv", b"a,b\n1,2\n", "header must be run,metric,step,value,wall_time"),
        ("short.csv", b"run,metric,step,value,wall_time\ndefault,loss,1.0\n", "line 2: expected 5 fields"),
        ("text.csv", b"run,metric,step,value,wall_time\ndefault,loss,one,1.0,0\n", "could not convert"),
        ("back.csv", b"run,metric,step,value,wall_time\ndefault,loss,2,1,0\ndefault,loss,1,1,0\n", "non-decreasing"),
        ("norun.csv", b"run,metric,step,value,wall_time\na,loss,1,1,0\n,loss,1,1,0\n", "run name must be a non-empty"),
        ("binary.csv", b"\xff\xfe\x00garbage", "not a valid lossviz .csv file"),
    ],
)
def test_corrupt_files_get_clear_errors(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValueError, match=f"cannot load '{path}'.*{message}"):
        LossPlot.load(path)


def test_load_errors_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"cannot load '{tmp_path / 'none.csv'}': no such file"):
        LossPlot.load(tmp_path / "none.csv")
    with pytest.raises(ValueError, match="unknown suffix '.txt'"):
        LossPlot.load(_touch(tmp_path / "a.txt"))
    with pytest.raises(IsADirectoryError):
        LossPlot.load(_mkdir(tmp_path / "d.json"))


def _touch(p: Path) -> Path:
    p.write_text("x")
    return p


def test_json_safe_floats_encodes_nonfinite_as_strings():
    from lossviz_widget._io.data_files import floats_from_json, json_safe_floats

    a = np.array([1.5, np.nan, np.inf, -np.inf, 0.1, 1e-300, -0.0])
    out = json_safe_floats(a)
    assert out == [1.5, "NaN", "Infinity", "-Infinity", 0.1, 1e-300, -0.0]
    assert all(type(v) is float for i, v in enumerate(out) if i not in (1, 2, 3))
    text = json.dumps(out, allow_nan=False)  # valid JSON
    back = floats_from_json(json.loads(text))
    assert np.array_equal(back, a, equal_nan=True) and math.copysign(1, back[-1]) == -1
    assert json_safe_floats(np.empty(0)) == []
    with pytest.raises(ValueError, match="1-D"):
        json_safe_floats(np.zeros((2, 2)))
