"""TFRecord framing in bulk: where each complete, intact record of a buffer lies.

A TFRecord file (what TensorBoard's event files are) is a sequence of records::

    uint64 length | uint32 masked CRC32C of length | data[length] | uint32 masked CRC32C of data

TensorBoard's own reader (its ``tensorflow_stub`` record reader, used when TensorFlow is not
installed) reads each record with several small file reads and checks both CRCs in pure Python,
about 10 us per record. Here the buffer is framed in one tight loop that reads only the lengths,
and the CRCs are checked afterwards: the data CRCs with a hardware CRC32C (the ``google-crc32c``
package, about 0.2 us per record) and the length CRCs once per distinct length (records come in a
handful of lengths). Without ``google-crc32c`` the pure-Python CRC32C that TensorBoard ships is
used: correct, only slower. A record that fails either check ends the read exactly where
TensorBoard's reader stops (it raises ``DataLossError`` there, which its loader takes as the end of
the data), as does a record not completely written yet.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

import numpy as np

from .._core.bytescan import bytes_at, value_at

__all__ = ["FOOTER", "HEADER", "frame_records"]

HEADER = 12  # uint64 length + uint32 CRC of it
FOOTER = 4  # uint32 CRC of the data
_MASK_DELTA = 0xA282EAD8
_BULK_MIN = 64  # records of one length from which their CRCs are computed together
_BULK_MAX_LENGTH = 4096  # ... up to this length (two array operations per byte)
_length_at = struct.Struct("<Q").unpack_from


def _crc32c() -> Callable[[bytes], int]:
    """The fastest CRC32C at hand: ``google_crc32c`` (C, hardware) or TensorBoard's pure-Python one."""
    try:
        import google_crc32c
    except ImportError:
        from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import crc32c

        return crc32c
    value: Callable[[bytes], int] = google_crc32c.value
    return value


def _mask(crc: np.ndarray) -> np.ndarray:
    """TFRecord's CRC masking (rotate right by 15, add a constant), on uint32 arrays."""
    crc = crc.astype(np.uint64)
    return ((((crc >> np.uint64(15)) | (crc << np.uint64(17))) + np.uint64(_MASK_DELTA)) & np.uint64(0xFFFFFFFF))


def frame_records(data: bytes, check_crc: bool = True) -> tuple[np.ndarray, np.ndarray, int]:
    """``(starts, lengths, consumed)``: where each record's data starts in ``data`` and how long it
    is, for the complete (and, with ``check_crc``, intact) records at its start, in order; and how
    many bytes they take, i.e. where the next read resumes."""
    buf = np.frombuffer(data, dtype=np.uint8)
    start = _frame(data, buf)
    lengths = value_at(buf, start - HEADER, "<u8").astype(np.int64)
    if check_crc and len(start):
        crc = _crc32c()
        good = _header_crcs_ok(buf, start, lengths, crc)
        good &= _data_crcs(data, buf, start, lengths, crc) == value_at(buf, start + lengths, "<u4")
        bad = np.flatnonzero(~good)
        if len(bad):
            start, lengths = start[:bad[0]], lengths[:bad[0]]
    consumed = int(start[-1] + lengths[-1] + FOOTER) if len(start) else 0
    return start, lengths, consumed


def _frame(data: bytes, buf: np.ndarray) -> np.ndarray:
    """Where each complete record's data starts.

    Walking the records one by one in Python costs ~0.3 us each. Writers repeat a short cycle of
    record sizes (one record per metric and step, the same layout every step), so after a few
    records are walked, the cycle is found and the next records' positions are predicted from it
    in bulk, then checked: a prediction holds up to the first record whose stored length differs
    (the step's varint grew a byte, a new tag), where walking resumes. The result is exactly what
    the walk alone would give, in far fewer Python steps."""
    size = len(data)
    found: list[np.ndarray] = []
    walked: list[int] = []  # starts of the records walked since the last prediction
    sizes: list[int] = []  # and their whole sizes
    pos = 0
    block = 256
    while pos + HEADER <= size:
        cycle = _cycle(sizes)
        if cycle is None:  # walk one record
            total = _length_at(data, pos)[0] + HEADER + FOOTER
            if pos + total > size:
                break
            walked.append(pos + HEADER)
            sizes.append(total)
            pos += total
            continue
        found.append(np.array(walked, dtype=np.int64))
        walked = []
        predicted = np.tile(cycle, -(-block // len(cycle)))
        at = pos + np.concatenate(([0], np.cumsum(predicted[:-1])))
        beyond = np.flatnonzero(at + predicted > size)
        n = int(beyond[0]) if len(beyond) else len(at)
        miss = np.flatnonzero(value_at(buf, at[:n], "<u8").astype(np.int64) + HEADER + FOOTER != predicted[:n])
        n = int(miss[0]) if len(miss) else n
        found.append(at[:n] + HEADER)
        if n:
            pos = int(at[n - 1] + predicted[n - 1])
        if n == len(at):
            block *= 2
        else:  # the cycle broke (or the data ended): walk until a cycle shows again
            block, sizes = 256, []
    found.append(np.array(walked, dtype=np.int64))
    return np.concatenate(found)


def _data_crcs(data: bytes, buf: np.ndarray, start: np.ndarray, lengths: np.ndarray,
               crc: Callable[[bytes], int]) -> np.ndarray:
    """The masked CRC32C of each record's data. Records of one length that come in numbers are
    done together in NumPy (:func:`_crc_same_length`); the others one call each."""
    out = np.zeros(len(start), dtype=np.uint64)
    distinct, which, counts = np.unique(lengths, return_inverse=True, return_counts=True)
    bulk = (counts >= _BULK_MIN) & (distinct <= _BULK_MAX_LENGTH)
    for k in np.flatnonzero(bulk).tolist():
        rows = np.flatnonzero(which == k)
        out[rows] = _crc_same_length(buf, start[rows], int(distinct[k]))
    rest = np.flatnonzero(~bulk[which])
    out[rest] = [crc(data[a:a + n]) for a, n in zip(start[rest].tolist(), lengths[rest].tolist())]
    return _mask(out)


def _crc_same_length(buf: np.ndarray, start: np.ndarray, length: int) -> np.ndarray:
    """CRC32C of ``buf[a:a + length]`` for every ``a`` in ``start``, all at once.

    CRC32C is affine in its input: for a fixed length, the CRC is a constant (the initial
    register run through ``length`` bytes, final XOR applied) XORed with one table entry per byte
    position, the entry of that byte pushed through the zero bytes after it. So the CRCs of many
    records of one length cost two array operations per byte position."""
    table = _crc_table()
    position = table.copy()  # the last byte's entries; one more zero byte after it each step back
    acc = np.zeros(len(start), dtype=np.uint32)
    data = bytes_at(buf, start, length).T.copy()  # one row per byte position
    for j in range(length - 1, -1, -1):
        acc ^= position[data[j]]
        position = (position >> np.uint32(8)) ^ table[position & np.uint32(0xFF)]
    register = np.uint32(0xFFFFFFFF)
    for _ in range(length):
        register = (register >> np.uint32(8)) ^ table[register & np.uint32(0xFF)]
    return (acc ^ register ^ np.uint32(0xFFFFFFFF)).astype(np.uint64)


def _crc_table() -> np.ndarray:
    """The byte-at-a-time table of CRC32C (Castagnoli, reflected polynomial 0x82F63B78)."""
    entries = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        entries = np.where(entries & np.uint32(1), (entries >> np.uint32(1)) ^ np.uint32(0x82F63B78),
                           entries >> np.uint32(1))
    return entries.astype(np.uint32)


def _cycle(sizes: list[int]) -> np.ndarray | None:
    """The shortest cycle (up to 32 records) that the last records walked repeat at least twice
    over 8 records or more; ``None`` while there is none."""
    for period in range(1, 33):
        span = max(2 * period, 8)
        if len(sizes) < span:
            return None
        tail = sizes[-span:]
        if all(tail[i] == tail[i + period] for i in range(span - period)):
            return np.array(sizes[-period:], dtype=np.int64)
    return None


def _header_crcs_ok(buf: np.ndarray, start: np.ndarray, lengths: np.ndarray, crc: Callable[[bytes], int]
                    ) -> np.ndarray:
    """Whether each record's stored length CRC matches: computed once per distinct length."""
    distinct, which = np.unique(lengths, return_inverse=True)
    expected = _mask(np.array([crc(struct.pack("<Q", n)) for n in distinct.tolist()], dtype=np.uint64))
    return np.asarray(expected[which] == value_at(buf, start - 4, "<u4"))
