"""The bulk log reader (all point lines of a read parsed at once) against the line-by-line one it
replaced: ``LossPlot.load`` and the follower read exactly what :func:`parse_record`, line by line,
gives, on logs the real writer produced and on logs damaged or edited by hand."""

from __future__ import annotations

import base64
import json
import math
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


# -- against json.loads, line by line -------------------------------------------------------


def json_reference(text: str) -> tuple[dict, int]:
    """What a log's lines mean, read the simplest way: lines as a text-mode file splits them,
    ``json.loads`` of each, then the format's rules (a point, a chunk or a purge of a series with
    non-empty names; a value is a JSON number or "NaN"/"Infinity"/"-Infinity", a step and a wall
    time whatever ``float()`` takes); a line that breaks them is skipped. Purges applied; series
    in first-seen order."""
    nonfinite = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}

    def value(x):
        if isinstance(x, str) and x in nonfinite:
            return nonfinite[x]
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            raise ValueError(x)
        return float(x)

    def floats(x):
        raw = base64.b64decode(x, validate=True)
        return np.frombuffer(raw, dtype="<f8").tolist()

    series: dict = {}
    skipped = 0
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    for line in lines[:-1] if lines[-1] == "" else lines:  # nothing after the last newline: no line
        try:
            rec = json.loads(line)
            run, name = rec.get("r", DEFAULT_RUN), rec["m"]
            if not (isinstance(run, str) and run and isinstance(name, str) and name):
                raise ValueError(name)
            if "purge" in rec:
                purge, new = value(rec["purge"]), None
            elif "s64" in rec:
                purge, new = None, (floats(rec["s64"]), floats(rec["v64"]), floats(rec["t64"]))
                if not len(new[0]) == len(new[1]) == len(new[2]):
                    raise ValueError(new)
            else:
                purge, new = None, ([float(rec["s"])], [value(rec["v"])], [float(rec["t"])])
        except (ValueError, KeyError, TypeError, AttributeError, OverflowError):
            skipped += 1
            continue
        cols = series.setdefault((run, name), ([], [], []))
        if new is not None:
            for col, more in zip(cols, new):
                col.extend(more)
        else:
            keep = int(np.searchsorted(cols[0], purge, side="left"))
            for col in cols:
                del col[keep:]
    runs: dict = {}
    for (run, name), cols in series.items():
        runs.setdefault(run, {})[name] = cols
    return {(run, name): cols for run, metrics in runs.items() for name, cols in metrics.items()}, skipped


LINE_NAMES = st.one_of(st.sampled_from(["loss", "val_loss", "", "a\u2028b", "c\x85d", "e\rf"]), st.text(max_size=6))
NUMBERS = st.one_of(st.floats(), st.integers(-10**20, 10**20), st.sampled_from([10**400, -0.0, 5e-324, 0]))


def log_line(step: int) -> st.SearchStrategy[str]:
    """One line of a log at ``step`` (steps grow line by line, as a reader requires): mostly
    point lines as json.dumps writes them in any spacing, key order and escaping, with names of
    any text (quotes, line separators, control characters) and numbers of any kind; some chunk
    and purge lines; and lines damaged as logs get damaged (cut, glued, broken in two, blank, a
    CRLF end, a field of the wrong type, an extra field)."""

    @st.composite
    def line(draw) -> str:
        run = draw(st.one_of(st.none(), LINE_NAMES))
        key = {"m": draw(LINE_NAMES)} | ({} if run is None else {"r": run})
        kind = draw(st.sampled_from(["point"] * 6 + ["chunk", "purge", "cut", "glued", "broken", "blank", "crlf",
                                                   "wrong", "extra"]))
        if kind == "chunk":
            n = draw(st.integers(0, 3))
            cols = [[float(step)] * n, draw(st.lists(st.floats(), min_size=n, max_size=n)),
                    draw(st.lists(st.floats(), min_size=n, max_size=n))]
            rec = key | {k: base64.b64encode(np.array(c, "<f8").tobytes()).decode() for k, c in
                         zip(("s64", "v64", "t64"), cols)}
        elif kind == "purge":
            rec = key | {"purge": draw(st.floats(-1, step + 1))}
        else:
            value = draw(st.one_of(NUMBERS, st.sampled_from(["NaN", "Infinity", "-Infinity"])))
            rec = key | {"s": draw(st.sampled_from([step, float(step)])), "v": value, "t": draw(NUMBERS)}
            if kind == "wrong":
                field = draw(st.sampled_from(["s", "v", "t"]))
                rec[field] = draw(st.sampled_from([None, [1]] + (["1", "nan", True] if field != "s" else [])))
            if kind == "extra":
                rec["x"] = draw(LINE_NAMES)
        items = draw(st.permutations(list(rec.items())))
        text = json.dumps(dict(items), ensure_ascii=draw(st.booleans()),
                          separators=draw(st.sampled_from([(",", ":"), (", ", ": ")])))
        if kind == "cut":
            text = text[:draw(st.integers(0, len(text) - 1))]
        elif kind == "glued":
            text += text
        elif kind == "broken":
            at = draw(st.integers(1, len(text) - 1))
            text = text[:at] + "\n" + text[at:]
        elif kind == "blank":
            text = draw(st.sampled_from(["", " ", "\t"]))
        elif kind == "crlf":
            text += "\r"
        return text

    return line()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), count=st.integers(0, 40), last_newline=st.booleans())
def test_any_lines_read_as_json_loads_reads_them(tmp_path_factory, data, count, last_newline):
    """``LossPlot.load``'s reader (msgspec's block decoding and its fallbacks) against
    :func:`json_reference`, an independent line-by-line reader, on lines of every kind, whole
    or damaged, in any order; with or without a newline after the last."""
    lines = [data.draw(log_line(i)) for i in range(count)]
    header = json.dumps({"format": "lossviz_widget.jsonl", "version": 2, "title": "", "settings": {}})
    body = "".join(line + "\n" for line in lines) if last_newline else "\n".join(lines)
    path = tmp_path_factory.mktemp("lines") / "fit.jsonl"
    path.write_bytes(f"{header}\n{body}".encode("utf-8", errors="surrogatepass"))
    assert_same(loaded(path), json_reference(body))


def test_damage_between_blocks_of_a_long_log(tmp_path):
    """A log of megabytes is decoded a block of lines at a time: damaged lines anywhere (a
    block's first or last line, or one line of the smaller blocks a failed block is split into)
    cost only their own lines, and series first seen in a late block are read, all as the
    line-by-line reader reads them."""
    header = json.dumps({"format": "lossviz_widget.jsonl", "version": 2, "title": "", "settings": {}})
    lines = [f'{{"m": "{("loss", "acc")[i % 2]}", "s": {float(i // 2)!r}, "v": {1 / (i + 1)!r}, "t": 1.5}}'
             for i in range(60_000)]
    size = np.cumsum([len(line) + 1 for line in lines])
    near_blocks = [int(np.searchsorted(size, k * 2**20)) for k in (1, 2, 3)]
    for i in near_blocks + [m + d for m in near_blocks for d in (-1, 1, 300)]:
        lines[i] = lines[i][:25]  # cut mid-write
    lines[5] = ""
    lines[7] += "\r"
    lines[40_000] = '{"r": "other", "m": "loss", "s": 1.0, "v": "NaN", "t": 1.5}'  # a run first seen in a late block
    lines[50_000] = '{"m": "late", "s": 1.0, "v": "-Infinity", "t": 1.5}'  # and a metric
    path = tmp_path / "long.jsonl"
    path.write_text("\n".join([header, *lines]) + '\n{"m": "loss", "s": 9', encoding="utf-8")
    check(path)
