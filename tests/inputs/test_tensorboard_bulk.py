"""The bulk TensorBoard reader against TensorBoard's own record loader, on files written by the
real writers (torch's and tensorboardX's SummaryWriter): the same points, bit for bit, in the same
order; the same place to stop at a record cut short or corrupted; the same result however the file
is split across polls."""

from __future__ import annotations

import math
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from lossviz_widget.readers import LogSource, read_logs

SCALARS_PLUGIN = "scalars"


def reference(path: Path) -> dict[str, tuple[list[float], list[float], list[float]]]:
    """Every scalar of an event file as TensorBoard's ``LegacyEventFileLoader`` and protos give it
    (the reader this package used before the bulk one): ``{tag: (steps, values, wall_times)}``."""
    from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader
    from tensorboard.util.tensor_util import make_ndarray

    out: dict[str, tuple[list[float], list[float], list[float]]] = {}
    scalar_tags: set[str] = set()
    for event in LegacyEventFileLoader(str(path)).Load():
        if not event.HasField("summary"):
            continue
        for value in event.summary.value:
            kind = value.WhichOneof("value")
            if value.metadata.plugin_data.plugin_name == SCALARS_PLUGIN:
                scalar_tags.add(value.tag)
            if kind == "simple_value":
                number = value.simple_value
            elif kind == "tensor" and value.tag in scalar_tags and make_ndarray(value.tensor).size == 1:
                number = float(make_ndarray(value.tensor).reshape(()))
            else:
                continue
            s, v, w = out.setdefault(value.tag, ([], [], []))
            s.append(float(event.step))
            v.append(number)
            w.append(event.wall_time)
    return out


def bulk(batches) -> dict[str, tuple[list[float], list[float], list[float]]]:
    out: dict[str, tuple[list[float], list[float], list[float]]] = {}
    for b in batches:
        s, v, w = out.setdefault(b.metric, ([], [], []))
        s += b.steps.tolist()
        v += b.values.tolist()
        w += b.wall_times.tolist()
    return out


def assert_same(got: dict, expected: dict) -> None:
    assert list(got) == list(expected)  # the same metrics, in first-seen order
    for tag, (s, v, w) in expected.items():
        gs, gv, gw = got[tag]
        assert gs == s and gw == w, tag
        np.testing.assert_array_equal(gv, v, err_msg=tag)  # NaN equals NaN here


@pytest.fixture(scope="module")
def torch_file(tmp_path_factory) -> Path:
    """Everything torch's writer puts in a long run's event file: thousands of simple_value
    records (steps past the 1-, 2- and 3-byte varints), step 0 and negative steps, NaN/inf,
    TF2-style tensors, histograms and text, unicode and long tags, more than 16 tags."""
    from torch.utils.tensorboard import SummaryWriter

    folder = tmp_path_factory.mktemp("torch_bulk")
    rng = np.random.default_rng(0)
    with SummaryWriter(folder, max_queue=100_000, flush_secs=10_000) as w:
        for step in range(0, 20_000, 7):
            w.add_scalar("loss", float(rng.normal()), step)
            w.add_scalar("val_loss", 1.0 / (step + 1), step)
            if step % 70 == 0:
                w.add_scalar("lr", 0.1, step, new_style=True)
                w.add_histogram("weights", rng.normal(size=20), step)
                w.add_text("note", f"step {step}", step)
        for k in range(20):
            w.add_scalar(f"layer{k}/grad_norm", k + 0.5, 3)
        w.add_scalar("époque/λ", 2.5, 5)
        w.add_scalar("t" * 300, 1.0, 6)
        w.add_scalar("edge", math.nan, 0)
        w.add_scalar("edge", math.inf, -5)
        w.add_scalar("edge", -math.inf, 2**40)
        w.add_scalar("edge", 3.0e38, 2**62)
    (path,) = folder.glob("*tfevents*")
    return path


@pytest.fixture(scope="module")
def tensorboardx_file(tmp_path_factory) -> Path:
    import tensorboardX

    folder = tmp_path_factory.mktemp("tbx_bulk")
    w = tensorboardX.SummaryWriter(str(folder))
    for step in range(3000):
        w.add_scalar("loss", 10.0 / (step + 1), step)
        w.add_scalar("acc", step / 3000, step)
    w.add_scalars("pair", {"a": 1.0, "b": 2.0}, 5)  # written to sub-folders: not this file
    w.close()
    (path,) = folder.glob("*tfevents*")
    return path


@pytest.fixture(params=["torch_file", "tensorboardx_file"])
def event_file(request) -> Path:
    return request.getfixturevalue(request.param)


@pytest.fixture(params=[None, 1000], ids=["4MiB-blocks", "1000-byte-blocks"])
def blocks(request, monkeypatch):
    """The reader decodes a file in blocks (4 MiB); small ones put block edges everywhere, and
    make some records (histograms, text) larger than a block."""
    if request.param is not None:
        monkeypatch.setattr("lossviz_widget.readers.tensorboard._BLOCK", request.param)


def test_same_points_as_tensorboard(event_file, blocks):
    expected = reference(event_file)
    assert sum(len(s) for s, _, _ in expected.values()) > 5000  # long enough for the bulk path
    assert_same(bulk(read_logs(event_file)[0]), expected)


def test_same_points_without_crc_checks(event_file):
    from lossviz_widget.readers.tensorboard import TensorBoardTail

    assert_same(bulk(TensorBoardTail(event_file, "run", check_crc=False).poll()), reference(event_file))


def test_file_read_in_pieces_gives_the_same(event_file, tmp_path):
    """A file followed while it is written, cut anywhere (mid-record, mid-header): each point once."""
    whole = event_file.read_bytes()
    copy = tmp_path / event_file.name
    copy.write_bytes(b"")
    source = LogSource(copy)
    got: list = []
    rng = np.random.default_rng(1)
    cuts = sorted(set(rng.integers(1, len(whole), 40).tolist()) | {5, 13, len(whole) - 1, len(whole)})
    done = 0
    for cut in cuts:
        with copy.open("ab") as f:
            f.write(whole[done:cut])
        done = cut
        got += source.poll()
    assert_same(bulk(got), reference(event_file))


@pytest.mark.parametrize("where", [0.0, 0.001, 0.3, 0.5, 0.77, 0.999])
@pytest.mark.parametrize("what", ["data", "length"])
def test_corrupt_record_stops_where_tensorboard_stops(torch_file, tmp_path, where, what, blocks):
    whole = bytearray(torch_file.read_bytes())
    at = int(where * (len(whole) - 20))
    if what == "length":  # move to the next record's length field: walk the records
        pos = 0
        while pos < at:
            pos += int.from_bytes(whole[pos:pos + 8], "little") + 16
        at = pos + 1
    else:
        at += 12
    whole[at] ^= 0x5A
    bad = tmp_path / torch_file.name
    bad.write_bytes(bytes(whole))
    expected = reference(bad)
    assert sum(len(s) for s, _, _ in expected.values()) < sum(len(s) for s, _, _ in reference(torch_file).values())
    assert_same(bulk(LogSource(bad).poll()), expected)


def test_tensorboard_tail_resumes_after_a_replaced_file(torch_file, tensorboardx_file, tmp_path):
    """A file replaced by another (a run started over) is read again from its start."""
    path = tmp_path / torch_file.name
    shutil.copy(tensorboardx_file, path)
    source = LogSource(path)
    first = bulk(source.poll())
    assert_same(first, reference(tensorboardx_file))
    path.unlink()
    shutil.copy(torch_file, path)
    assert set(bulk(source.poll())) == set(reference(torch_file))


def test_without_google_crc32c_the_same(torch_file, tmp_path, monkeypatch):
    """Without the optional ``google-crc32c``, the records not checked in bulk (histograms, text,
    the odd length) are checked by TensorBoard's pure-Python CRC32C: the same result, corrupt
    records included."""
    monkeypatch.setitem(sys.modules, "google_crc32c", None)  # as if not installed: importing it fails
    assert_same(bulk(read_logs(torch_file)[0]), reference(torch_file))
    whole = bytearray(torch_file.read_bytes())
    whole[len(whole) // 3] ^= 0x01
    bad = tmp_path / torch_file.name
    bad.write_bytes(bytes(whole))
    assert_same(bulk(LogSource(bad).poll()), reference(bad))
