"""Array operations over a byte buffer, for the readers that decode many records at once.

A file of millions of small binary records (TensorBoard's event files) is read fastest by finding
where each record's fields lie (arrays of offsets) and then gathering and comparing all records'
fields together in NumPy, instead of one Python object per record. These are the shared pieces:
fixed-width gathers at many offsets, telling many byte strings apart, and grouping records by
series in first-seen order (also used for the point lines of ``log_file`` logs, which msgspec
decodes).
"""

from __future__ import annotations

import numpy as np

__all__ = ["LOW_BYTES", "bytes_at", "distinct_strings", "groups_in_order", "value_at", "words", "words_at"]

_HASH = np.uint64(0x9E3779B97F4A7C15)
LOW_BYTES = np.array([(1 << (8 * n)) - 1 for n in range(9)], dtype=np.uint64)  # the n low bytes of a word


def bytes_at(buf: np.ndarray, at: np.ndarray, width: int) -> np.ndarray:
    """The ``width`` bytes at each of ``at`` in the byte array ``buf``, one row each; bytes past
    the end read as zeros (callers check bounds themselves). One gather of rows from a
    sliding-window view, not of ``width`` separate bytes per row."""
    if not len(at):
        return np.zeros((0, width), dtype=np.uint8)
    last = len(buf) - width  # the last offset with a whole window
    if last < 0 or int(at.max()) > last:  # near the end: a zero-padded copy of the tail
        base = max(0, last)
        tail = np.concatenate([buf[base:], np.zeros(width, dtype=np.uint8)])
        rows = np.lib.stride_tricks.sliding_window_view(tail, width)
        out = rows[np.clip(at - base, 0, len(rows) - 1)]
        inside = at < base
        if inside.any():
            out[inside] = bytes_at(buf, at[inside], width)
        return np.asarray(out)
    return np.asarray(np.lib.stride_tricks.sliding_window_view(buf, width)[np.maximum(at, 0)])


def words(buf: np.ndarray) -> np.ndarray:
    """The little-endian 8-byte word starting at each byte of ``buf`` (the last 7 offsets have
    none): a view, no copy. Gathering ``words(buf)[at]`` reads 8 bytes per offset in one unaligned
    load, where :func:`bytes_at` copies rows of a byte window; comparing a word against a pattern
    under a mask tests up to 8 bytes at once."""
    view: np.ndarray = np.ndarray(shape=(max(len(buf) - 7, 0),), dtype="<u8", buffer=buf, strides=(1,))
    return view


def words_at(buf: np.ndarray, at: np.ndarray, count: int, size: np.ndarray | None = None) -> np.ndarray:
    """The ``8 * count`` bytes at each of ``at`` as ``count`` little-endian words per row (one
    gather of :func:`words`); bytes past the end of ``buf``, and past ``size[i]`` bytes of row
    ``i`` if given, read as zeros."""
    out = np.zeros((len(at), count), dtype=np.uint64)
    inside = at <= len(buf) - 8 * count
    offsets = 8 * np.arange(count)
    if inside.all():
        out[:] = words(buf)[at[:, None] + offsets]
    elif len(at):
        out[inside] = words(buf)[at[inside][:, None] + offsets]
        out[~inside] = np.ascontiguousarray(bytes_at(buf, at[~inside], 8 * count)).view("<u8")
    if size is not None:
        out &= LOW_BYTES[np.clip(size[:, None] - offsets, 0, 8)]
    return out


def value_at(buf: np.ndarray, at: np.ndarray, dtype: str) -> np.ndarray:
    """The little-endian ``dtype`` number stored (unaligned) at each of ``at``."""
    kind = np.dtype(dtype)
    return bytes_at(buf, at, kind.itemsize).view(kind).ravel()


def distinct_strings(buf: np.ndarray, at: np.ndarray, size: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which of the byte strings ``buf[a:a + n]`` (``a``, ``n`` from ``at``, ``size``) are equal:
    ``(first, which)``, the index of one string of each distinct value and, per string, which
    distinct value it is (``first[which[i]]`` holds the same bytes as string ``i``).

    Strings are gathered zero-padded to a common width of whole 8-byte words (:func:`words_at`)
    and told apart by a 64-bit hash of those words and their length (sorting one number per
    string, not rows of bytes); the result is then checked exactly, with a sort of the rows themselves if two
    distinct strings ever share a hash."""
    rows = words_at(buf, at, max(-(-int(size.max()) // 8), 1) if len(size) else 1, size)
    digest = size.astype(np.uint64)
    for j in range(rows.shape[1]):
        digest = digest * _HASH ^ rows[:, j]
    first, which = _distinct(digest)
    if not (np.array_equal(rows[first][which], rows) and np.array_equal(size[first][which], size)):
        keyed = np.concatenate([rows, size.astype(np.uint64)[:, None]], axis=1)
        _, first, which = np.unique(keyed, axis=0, return_index=True, return_inverse=True)
        which = which.ravel()
    return first, which


def _distinct(keys: np.ndarray, most: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """``(first, which)`` as :func:`distinct_strings` gives them, for the numbers ``keys``: one
    comparison pass per distinct value while there are at most ``most`` (a log's few series), a
    sort of them all beyond that."""
    which = np.empty(len(keys), dtype=np.int64)
    first: list[int] = []
    rest = np.arange(len(keys))
    while len(rest) and len(first) < most:
        hit = keys[rest] == keys[rest[0]]
        which[rest[hit]] = len(first)
        first.append(int(rest[0]))
        rest = rest[~hit]
    if not len(rest):
        return np.array(first, dtype=np.int64), which
    _, at, inverse = np.unique(keys, return_index=True, return_inverse=True)
    return at, inverse.ravel()


def groups_in_order(ids: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """``(id, positions)`` for each id present in ``ids`` (small non-negative ints: series ids), in
    order of first appearance; positions ascending. No sort of the ids for a few series (one
    comparison pass each), one stable sort for many."""
    if not len(ids):
        return []
    count = int(ids.max()) + 1
    if count <= 16:
        groups = [(d, np.flatnonzero(ids == d)) for d in range(count)]
    else:
        by_id = np.argsort(ids, kind="stable")
        bounds = np.searchsorted(ids[by_id], np.arange(count + 1))
        groups = [(d, by_id[bounds[d]:bounds[d + 1]]) for d in range(count)]
    present = [g for g in groups if len(g[1])]
    present.sort(key=lambda g: int(g[1][0]))
    return present
