"""Array operations over a byte buffer, for the readers that decode many records at once.

A log of millions of small records is read fastest by finding where each record's fields lie
(arrays of offsets) and then gathering and comparing all records' fields together in NumPy,
instead of one Python object per record. These are the shared pieces: fixed-width gathers at many
offsets, telling many byte strings apart, and grouping records by series in first-seen order.
"""

from __future__ import annotations

import numpy as np

__all__ = ["bytes_at", "distinct_strings", "groups_in_order", "value_at"]

_HASH = np.uint64(0x9E3779B97F4A7C15)


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


def value_at(buf: np.ndarray, at: np.ndarray, dtype: str) -> np.ndarray:
    """The little-endian ``dtype`` number stored (unaligned) at each of ``at``."""
    kind = np.dtype(dtype)
    return bytes_at(buf, at, kind.itemsize).view(kind).ravel()


def distinct_strings(buf: np.ndarray, at: np.ndarray, size: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which of the byte strings ``buf[a:a + n]`` (``a``, ``n`` from ``at``, ``size``) are equal:
    ``(first, which)``, the index of one string of each distinct value and, per string, which
    distinct value it is (``first[which[i]]`` holds the same bytes as string ``i``).

    Strings are gathered zero-padded to a common width of whole 8-byte words and told apart by a
    64-bit hash of those words and their length (sorting one number per string, not rows of
    bytes); the result is then checked exactly, with a sort of the rows themselves if two
    distinct strings ever share a hash."""
    width = -(-int(size.max()) // 8) * 8 if len(size) else 8
    cols = np.arange(width)
    words = np.where(cols < size[:, None], bytes_at(buf, at, width), 0).astype(np.uint8).view("<u8")
    digest = size.astype(np.uint64)
    for j in range(words.shape[1]):
        digest = digest * _HASH ^ words[:, j]
    _, first, which = np.unique(digest, return_index=True, return_inverse=True)
    which = which.ravel()
    if not (np.array_equal(words[first][which], words) and np.array_equal(size[first][which], size)):
        keyed = np.concatenate([words, size.astype(np.uint64)[:, None]], axis=1)
        _, first, which = np.unique(keyed, axis=0, return_index=True, return_inverse=True)
        which = which.ravel()
    return first, which


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
