"""TensorBoard event files, read in bulk, with TensorBoard's own protos for the rare records.

Each poll reads what was appended since the last one and frames its records in bulk
(:mod:`._tfrecord`: complete records only, CRCs checked; a record not completely written yet, or
one that fails its CRC, ends the read where TensorBoard's loader would stop, and the next poll
resumes at that record). Scalars come in two forms, both read here, one metric per tag:

* TF1-style ``simple_value``, what ``torch.utils.tensorboard`` and ``tensorboardX`` write by
  default: nearly every record of a long run. These records all have one layout (wall time, step,
  one summary value of a tag and a float), so they are recognised and decoded for all records at
  once with NumPy (:func:`_simple_values`) instead of one protobuf parse each, which is what made
  TensorBoard's ``EventAccumulator`` (and this reader before) read only ~100k scalars/s.
* anything else goes through TensorBoard's ``Event`` proto, record by record: the TF2 form, a
  rank-0 ``tensor`` whose metadata names the ``scalars`` plugin (``new_style=True``, TF2 writers;
  the metadata may come with a tag's first value only), summaries of several values, events with
  no summary (the file version), a step of 0 or a wall time of 0 (protobuf leaves them out).
  Histograms, images, text and other plugins' data are passed over.

Both paths give exactly what TensorBoard's protos hold (``tests/inputs/test_tensorboard_bulk.py``
compares them on files from the real writers). ``tensorboard`` is imported when a record needs
its protos, not before.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .._core.bytescan import distinct_strings, groups_in_order, value_at
from ._tail import Points, Tail
from ._tfrecord import frame_records

__all__ = ["TensorBoardTail", "is_event_file"]

SCALARS_PLUGIN = "scalars"
_BLOCK = 4 << 20  # bytes decoded at a time
_MAX_TAG = 256  # longer tags (rare) take the proto path: the bulk path gathers tags in a fixed width


def is_event_file(name: str) -> bool:
    """TensorBoard's own test: event files have ``tfevents`` in their name."""
    return "tfevents" in name


class TensorBoardTail(Tail):
    format = "TensorBoard"

    def __init__(self, path: str | os.PathLike[str], run: str, *, check_crc: bool = True) -> None:
        super().__init__(path, run)
        self.check_crc = check_crc
        self._offset = 0
        self._scalar_tags: set[str] = set()  # TF2 writers put the plugin metadata on a tag's first value only

    def _restart(self) -> None:
        self._offset = 0

    def _read(self) -> Points:
        points = Points(with_wall_times=True)
        try:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:  # removed since the stat: a later poll sees the new file
            return points
        pos = 0
        while pos < len(data):  # in blocks that stay in the CPU's caches (2-3x faster on large files)
            block = data[pos:pos + _BLOCK]
            starts, lengths, consumed = frame_records(block, self.check_crc)
            if not consumed and len(block) < len(data) - pos:  # a record larger than a block
                block = data[pos:]
                starts, lengths, consumed = frame_records(block, self.check_crc)
            if not consumed:  # incomplete, or failed its CRC: the next poll starts here
                break
            self._decode(block, starts, lengths, points)
            pos += consumed
        self._offset += pos
        return points

    def _decode(self, data: bytes, starts: np.ndarray, lengths: np.ndarray, points: Points) -> None:
        """The scalars of the records at ``starts``, into ``points`` in file order."""
        bulk = _simple_values(np.frombuffer(data, dtype=np.uint8), starts, lengths)
        records = np.arange(len(starts))
        tags, steps, values, walls = [], [], [], []
        for i in records[~bulk.ok].tolist():  # the rare records, one by one
            a = int(starts[i])
            for tag, step, value, wall in self._proto_scalars(data[a:a + int(lengths[i])]):
                tags.append((i, tag))
                steps.append(step)
                values.append(value)
                walls.append(wall)
        index: dict[str, int] = {}  # tag -> series id (the bulk path may name a tag twice: invalid UTF-8)
        canonical = np.array([index.setdefault(name, len(index)) for name in bulk.names], dtype=np.int64)
        ids = canonical[bulk.tag_ids] if len(bulk.tag_ids) else bulk.tag_ids
        rec = records[bulk.ok]
        s, v, w = bulk.steps, bulk.values, bulk.walls
        if tags:  # merge the proto path's points into file order (a record gives one point per value)
            more = np.array([index.setdefault(tag, len(index)) for _, tag in tags], dtype=np.int64)
            order = np.argsort(np.concatenate([rec, [i for i, _ in tags]]), kind="stable")
            ids = np.concatenate([ids, more])[order]
            s, v, w = (np.concatenate([a, b])[order] for a, b in ((s, steps), (v, values), (w, walls)))
        names = list(index)
        for tag_id, where in groups_in_order(ids):
            points.add_arrays(names[tag_id], s[where], v[where], w[where])

    def _proto_scalars(self, record: bytes) -> list[tuple[str, float, float, float]]:
        """``(tag, step, value, wall_time)`` of each scalar in one record, through TensorBoard's ``Event``."""
        from tensorboard.compat.proto import event_pb2
        from tensorboard.util.tensor_util import make_ndarray

        event: Any = event_pb2.Event.FromString(record)
        out: list[tuple[str, float, float, float]] = []
        if not event.HasField("summary"):
            return out
        for value in event.summary.value:
            kind = value.WhichOneof("value")
            if kind == "simple_value":
                out.append((value.tag, float(event.step), value.simple_value, event.wall_time))
                continue
            if value.metadata.plugin_data.plugin_name == SCALARS_PLUGIN:
                self._scalar_tags.add(value.tag)
            if kind != "tensor" or value.tag not in self._scalar_tags:
                continue
            array = make_ndarray(value.tensor)
            if array.size != 1:
                self.skipped += 1
                continue
            out.append((value.tag, float(event.step), float(array.reshape(())), event.wall_time))
        return out


class _Bulk:
    """What :func:`_simple_values` found: which records it decoded, and their points."""

    def __init__(self, n: int) -> None:
        self.ok = np.zeros(n, dtype=bool)
        self.names: list[str] = []  # the tags, by id
        self.tag_ids = np.zeros(0, dtype=np.int64)
        self.steps = self.values = self.walls = np.zeros(0)


def _varint(buf: np.ndarray, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Protobuf varints at ``at`` in ``buf``: ``(value as uint64, bytes taken)``; 11 bytes taken
    marks one that does not end within the 10 bytes a varint may have."""
    value = np.zeros(len(at), dtype=np.uint64)
    taken = np.zeros(len(at), dtype=np.int64)
    going = np.ones(len(at), dtype=bool)
    last = len(buf) - 1
    for k in range(10):
        byte = buf[np.minimum(at + k, last)].astype(np.uint64)
        value |= np.where(going, (byte & np.uint64(0x7F)) << np.uint64(7 * k), np.uint64(0))
        taken += going
        going &= byte >= 0x80
        if not going.any():
            break
    taken[going] = 11
    return value, taken


def _simple_values(buf: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> _Bulk:
    """Decode, all at once, the records laid out as a ``simple_value`` scalar event is::

        09 <wall_time f64> [10 <step varint>] 2a <len> 0a <len> 0a <len> <tag> 15 <value f32>

    (``Event{wall_time, step, summary: Summary{value: [Value{tag, simple_value}]}}``, fields in
    number order as every protobuf writer emits them). Records laid out otherwise are left to the
    proto path (``ok`` False)."""
    out = _Bulk(len(starts))
    if not len(starts) or len(buf) < 16:
        return out
    last = len(buf) - 1
    end = starts + lengths

    def byte_is(at: np.ndarray, value: int) -> np.ndarray:
        return (at < end) & (buf[np.minimum(at, last)] == value)

    def length_field(at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A length-delimited field's length and where its content starts; ``ok`` if it ends the record."""
        size, taken = _varint(buf, at + 1)
        size = np.minimum(size, np.uint64(1 << 40)).astype(np.int64)
        content = at + 1 + taken
        return size, content

    ok = byte_is(starts, 0x09) & (lengths > 9)
    walls = value_at(buf, starts + 1, "<f8")
    at = starts + 9
    has_step = byte_is(at, 0x10)
    raw_step, taken = _varint(buf, at + 1)
    ok &= ~has_step | (taken <= 10)
    steps = np.where(has_step, raw_step.view(np.int64), 0)
    at = np.where(has_step, at + 1 + taken, at)
    ok &= byte_is(at, 0x2A)  # summary
    size, at = length_field(at)
    ok &= at + size == end
    ok &= byte_is(at, 0x0A)  # its one value
    size, at = length_field(at)
    ok &= at + size == end
    ok &= byte_is(at, 0x0A)  # the value's tag
    tag_len, tag_at = length_field(at)
    ok &= (tag_len > 0) & (tag_len <= _MAX_TAG)
    at = tag_at + tag_len
    ok &= byte_is(at, 0x15) & (at + 5 == end)  # simple_value, the last field
    values = value_at(buf, at + 1, "<f4")
    if not ok.any():
        return out
    keep = np.flatnonzero(ok)
    tag_at, tag_len = tag_at[keep], tag_len[keep]
    names, tag_ids, valid = _tags(buf, tag_at, tag_len)
    keep = keep[valid]
    out.ok[keep] = True
    out.names = names
    out.tag_ids = tag_ids[valid]
    out.steps = steps[keep].astype(np.float64)
    out.values = values[keep].astype(np.float64)
    out.walls = walls[keep]
    return out


def _tags(buf: np.ndarray, at: np.ndarray, size: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Tag names, an id per record into them, and which records' tags are valid UTF-8 (protobuf
    refuses the others: they go to the proto path, which reports them as it does)."""
    first, which = distinct_strings(buf, at, size)
    names: list[str] = []
    valid = np.ones(len(first), dtype=bool)
    for k, (a, n) in enumerate(zip(at[first].tolist(), size[first].tolist())):
        try:
            names.append(bytes(buf[a:a + n]).decode("utf-8"))
        except UnicodeDecodeError:
            names.append("")
            valid[k] = False
    return names, which, valid[which]
