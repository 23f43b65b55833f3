"""The bulk log reader (all point lines of a read parsed at once) against the line-by-line one it
replaced: ``LossPlot.load`` and the follower read exactly what :func:`parse_record`, line by line,
gives, on logs the real writer produced and on logs damaged or edited by hand."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from lossviz_widget import LossPlot
from lossviz_widget._io.logfile import parse_header, parse_record, read_log
from lossviz_widget._model import DEFAULT_RUN
from lossviz_widget.readers import LogSource


def parse_each(lines) -> tuple[list, int]:
    """:func:`parse_record` of each line: the records, and how many lines were none."""
    records = [parse_record(line) for line in lines]
    return [r for r in records if r is not None], sum(r is None for r in records)


def reference_load(path: Path) -> tuple[dict, int]:
    """What ``read_log`` read before the bulk parser: ``{(run, metric): (steps, values, walls)}``
    with purges applied, and the lines skipped. Text mode, one :func:`parse_record` per line."""
    series: dict = {}
    with path.open(encoding="utf-8", errors="replace") as f:
        parse_header(f.readline())
        records, skipped = parse_each(f)
        for run, name, s, v, t, purge in records:
            cols = series.setdefault((run, name), ([], [], []))
            if purge is None:
                for col, new in zip(cols, (s, v, t)):
                    col.extend(np.asarray(new, dtype=float).tolist())
            else:
                keep = int(np.searchsorted(cols[0], purge, side="left"))
                for col in cols:
                    del col[keep:]
    runs: dict = {}  # a RunData holds runs in first-seen order, each with its metrics in first-seen order
    for (run, name), cols in series.items():
        runs.setdefault(run, {})[name] = cols
    return {(run, name): cols for run, metrics in runs.items() for name, cols in metrics.items()}, skipped


def reference_follow(path: Path) -> tuple[dict, int]:
    """What the follower read before: complete lines, ``str.splitlines``, blank lines passed over."""
    data = path.read_bytes()
    text = data[:data.rfind(b"\n") + 1].decode("utf-8", errors="replace")
    lines = [line for line in text.splitlines() if line.strip()]
    parse_header(lines[0])
    series: dict = {}
    records, skipped = parse_each(lines[1:])
    for run, name, s, v, t, _ in records:
        cols = series.setdefault((run, name), ([], [], []))
        for col, new in zip(cols, (s, v, t)):
            col.extend(np.asarray(new, dtype=float).tolist())
    return {k: v for k, v in series.items() if v[0]}, skipped


def loaded(path: Path) -> tuple[dict, int]:
    data = read_log(path)
    return {(run, name): (h.steps.tolist(), h.values.tolist(), h.wall_time.tolist())
            for run, metrics in data.runs.items() for name, h in metrics.items()}, data.skipped_lines


def followed(path: Path) -> tuple[dict, int]:
    source = LogSource(path)
    series: dict = {}
    for b in source.poll():
        run = DEFAULT_RUN if b.run == path.stem else b.run.removeprefix(path.stem + "/")
        cols = series.setdefault((run, b.metric), ([], [], []))
        for col, new in zip(cols, (b.steps, b.values, b.wall_times)):
            col.extend(new.tolist())
    return series, source.skipped


def assert_same(got: tuple[dict, int], expected: tuple[dict, int]) -> None:
    assert list(got[0]) == list(expected[0])  # the same series, in first-seen order
    for key, cols in expected[0].items():
        for a, b in zip(got[0][key], cols):
            np.testing.assert_array_equal(a, b, err_msg=str(key))
    assert got[1] == expected[1]  # the same lines skipped


def check(path: Path) -> None:
    assert_same(loaded(path), reference_load(path))
    assert_same(followed(path), reference_follow(path))


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> Path:
    """A log from the real writer: point lines (frames of a few steps) and chunk lines (a burst),
    two runs (one with a name JSON must escape), NaN and infinities, a step rewind (purge line)."""
    path = tmp_path_factory.mktemp("log") / "fit.jsonl"
    plot = LossPlot(log_file=path)
    rng = np.random.default_rng(0)
    for i in range(3000):
        plot.log(loss=float(rng.normal()) * 10.0 ** int(rng.integers(-300, 300)), acc=i / 3000,
                 lr=math.nan if i % 97 == 0 else math.inf if i % 89 == 0 else -math.inf if i % 83 == 0 else 0.1,
                 step=i)
        if i % 7 == 0:
            plot.flush()  # a frame: point lines
    for i in range(3000, 3500):
        plot.log(loss=1.0 / i, step=i)
    plot.flush()  # one frame of 500 points: chunk lines
    named = plot.run('lr="1e-3" ✓')
    for i in range(50):
        named.log(loss=2.0 / (i + 1), step=i)
    plot.flush()
    plot.close()
    resumed = LossPlot.load(path, log_file=path)
    for i in range(3400, 3450):  # a rewind: a purge line, then the new points
        resumed.log(loss=5.0, step=i)
    resumed.flush()
    resumed.close()
    text = path.read_text()
    assert '"purge"' in text and '"s64"' in text and '"v": "NaN"' in text
    return path


def test_real_writer_log(written):
    check(written)


def test_cut_corrupt_and_hand_edited_lines(written, tmp_path):
    lines = written.read_text(encoding="utf-8").split("\n")
    header, body = lines[0], lines[1:-1]
    odd = [
        '{"m": "loss", "s": 1, "v": 2, "t": 3}',  # integers
        '{"m": "loss", "v": 2.0, "s": 4.0, "t": 3.0}',  # fields in another order
        '{"m":"loss","s":5.0,"v":2.0,"t":3.0}',  # no spaces
        '{"m": "loss", "s": "6", "v": 2.0, "t": 3.0}',  # a step as a string: float() takes it
        '{"m": "loss", "s": 7.0, "v": true, "t": 3.0}',  # not a number: skipped
        '{"m": "loss", "s": 8.0, "v": null, "t": 3.0}',
        '{"m": "loss", "s": 9.0, "v": "nan", "t": 3.0}',
        '{"m": "loss", "s": 10.0, "v": [1], "t": 3.0}',
        '{"m": "loss", "s": 11.0, "v": 1e400, "t": 3.0}',  # JSON's infinity
        '{"m": "loss", "s": 12.0, "v": 1.5, "t": 3.0, "x": 1}',  # an extra field
        '{"m": "", "s": 13.0, "v": 1.5, "t": 3.0}',  # an empty name
        '{"m": "loss", "r": "other", "s": 14.0, "v": 1.5, "t": 3.0}',
        '{"m": 5, "s": 15.0, "v": 1.5, "t": 3.0}',
        '{"m": "a\u2028b", "s": 16.0, "v": 1.5, "t": 3.0}',  # a line separator str.splitlines splits at
        '{"m": "loss", "s": 17.0, "v": 1.5, "t": 3.0}\r',  # a CRLF line
        "   ",
        "",
        '{"m": "loss", "s": 18.0, "v": 1.5',  # cut mid-write
        '{"m": "loss", "s": 0.1000000000000000055511151231257827, "v": 4.9e-324, "t": -0.0}',
        '[1, 2, 3]',
        '{"m": "loss", "s": 19.0, "v": 1.5, "t": 3.0}{"m": "loss", "s": 20.0, "v": 1.5, "t": 3.0}',
    ]
    rng = np.random.default_rng(2)
    for k, line in enumerate(odd):
        line = line.replace('"loss"', f'"odd{k}"')  # a series of its own: steps stay in order
        body.insert(int(rng.integers(0, len(body))), line)
        path = tmp_path / f"odd{k}.jsonl"
        path.write_text("\n".join([header, *body, ""]), encoding="utf-8")
        check(path)
    cut = tmp_path / "cut.jsonl"
    cut.write_text("\n".join([header, *body]) + '\n{"m": "loss", "s": 9', encoding="utf-8")  # no last newline
    check(cut)
    invalid = tmp_path / "bytes.jsonl"
    invalid.write_bytes(header.encode() + b'\n{"m": "lo\xffss", "s": 1.0, "v": 2.0, "t": 3.0}\n')
    check(invalid)


def test_numbers_read_exactly(tmp_path):
    """Every float64 the writer can produce reads back bit for bit (subnormals, extremes, -0.0)."""
    rng = np.random.default_rng(3)
    values = np.concatenate([rng.standard_normal(5000) * 10.0 ** rng.integers(-320, 308, 5000),
                             rng.integers(0, 2**63, 2000, dtype=np.uint64).view(np.float64),
                             [5e-324, -5e-324, 1.7976931348623157e308, -0.0, 0.0, 2**53 + 1.0]])
    values = values[np.isfinite(values)]
    header = json.dumps({"format": "lossviz_widget.jsonl", "version": 2, "title": "", "settings": {}})
    lines = [f'{{"m": "x", "s": {float(i)!r}, "v": {v!r}, "t": {v!r}}}' for i, v in enumerate(values.tolist())]
    path = tmp_path / "numbers.jsonl"
    path.write_text("\n".join([header, *lines, ""]))
    h = read_log(path).runs[DEFAULT_RUN]["x"]
    assert h.values.view(np.uint64).tolist() == values.view(np.uint64).tolist()
    assert h.wall_time.view(np.uint64).tolist() == values.view(np.uint64).tolist()
    check(path)


def test_without_orjson_the_same(written, monkeypatch):
    """orjson is optional: the standard library's parser gives the same."""
    monkeypatch.setitem(sys.modules, "orjson", None)
    check(written)


# -- any log the writer can produce ---------------------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from lossviz_widget._io.logfile import LogWriter  # noqa: E402
from lossviz_widget._model import MetricHistory  # noqa: E402

NAMES = st.sampled_from(["loss", "val_loss", 'a "quoted", "s": name', "ünï\u2028cödé", "x\\y:z}{"])
RUNS = st.sampled_from([DEFAULT_RUN, DEFAULT_RUN, 'lr="1e-3" ✓'])
VALUES = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-3, 3).map(float),
                   st.sampled_from([math.nan, math.inf, -math.inf, 5e-324, -0.0, 1.7976931348623157e308]))
# a frame: for each of a few series, how many new points (up to 64 become point lines, more one chunk line)
FRAMES = st.lists(st.lists(st.tuples(RUNS, NAMES, st.one_of(st.integers(0, 5), st.integers(60, 80))),
                           min_size=1, max_size=4), min_size=1, max_size=6)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frames=FRAMES, values=st.lists(VALUES, min_size=1, max_size=50), cut=st.floats(0.5, 1.0),
       resumed=st.booleans(), data=st.data())
def test_any_written_log_reads_as_line_by_line(tmp_path_factory, frames, values, cut, resumed, data):
    """Logs as :class:`LogWriter` writes them, frame by frame (point lines and chunk lines of
    several series and runs, names JSON must escape or that hold the writer's own field markers,
    NaN, infinities, extremes), cut anywhere (a killed process) and possibly resumed after the
    cut (the writer starts a new line): the bulk readers read exactly what the line-by-line
    reference reads."""
    path = tmp_path_factory.mktemp("any") / "fit.jsonl"
    series: dict[tuple[str, str], tuple[list[float], list[float], list[float]]] = {}
    writer = LogWriter(path, title="t", settings={})
    k = 0
    for frame in frames:
        for run, name, count in frame:
            cols = series.setdefault((run, name), ([], [], []))
            for _ in range(count):
                cols[0].append(float(len(cols[0])))
                cols[1].append(values[k % len(values)])
                cols[2].append(1.7e9 + 0.1 * k)
                k += 1
        runs: dict = {}
        for (run, name), (s, v, t) in series.items():
            runs.setdefault(run, {})[name] = MetricHistory(np.array(s), np.array(v), np.array(t))
        writer.write_new(runs)
    writer.close()
    raw = path.read_bytes()
    head = raw.index(b"\n") + 1
    raw = raw[:head + int((len(raw) - head) * cut)]
    if resumed:  # what a resumed log appends after a cut line: a newline, then whole lines
        raw += b"\n" + data.draw(st.sampled_from([b'{"m": "loss", "s": 1e6, "v": 1.0, "t": 2.0}\n', b""]))
    path.write_bytes(raw)
    check(path)
