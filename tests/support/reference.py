"""The brute-force model of an imgscout index: what every face of the product must answer,
computed the slow obvious way from the documented semantics alone (no imgscout code), so that
comparing against it checks the implementations rather than repeating them.

Two forms of one model, with one ordering rule: answers are sorted by distance, then by id.

* :class:`ReferenceIndex` -- the stateful model in plain Python: pending queue, automatic syncs
  at the threshold, ids, titles (``str`` for the Python API, ``bytes`` for raw module replies:
  the model stores whatever it is given), range query, kNN, pairs, entries. Answers are tuples
  ``(title, id, distance)`` / ``(a, b, distance)``; :func:`as_reply` gives the module's RESP
  shape (lists).
* The array form for large data (the benchmark's millions of entries): :func:`distances`,
  :func:`expected_range`, :func:`expected_knn` and :func:`reference_pairs` over numpy arrays of
  hashes and ids.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

MAX_HASH = 2**64 - 1
MAX_ID = 2**63 - 1
MAX_RADIUS = 64
#: The module's and the Python classes' default sync threshold.
DEFAULT_SYNC_THRESHOLD = 500


def hamming(a: int, b: int) -> int:
    return bin(a ^ b).count("1")


def pairs_within(hashes: Mapping[int, int], radius: int) -> list[tuple[int, int, int]]:
    """Every pair of ``{id: hash}`` within ``radius`` as ``(smaller id, larger id, distance)``,
    sorted by distance, then ids; O(n^2)."""
    items = sorted(hashes.items())
    found = []
    for position, (a, hash_a) in enumerate(items):
        for b, hash_b in items[position + 1 :]:
            distance = hamming(hash_a, hash_b)
            if distance <= radius:
                found.append((distance, a, b))
    return [(a, b, distance) for distance, a, b in sorted(found)]


def as_reply(rows: Iterable[Sequence[Any]]) -> list[list[Any]]:
    """Answers (matches, pairs or entries) in the module's reply shape: a list of lists."""
    return [list(row) for row in rows]


class ReferenceIndex:
    """The index semantics, by brute force, in plain Python.

    Entries are pending until ``sync`` (or until the pending count reaches the threshold);
    queries see synced entries only; automatic ids continue after the largest id ever used;
    ``add_many`` adds all entries or none.
    """

    def __init__(self, sync_threshold: int = DEFAULT_SYNC_THRESHOLD, bits: int = 64) -> None:
        self.sync_threshold = sync_threshold
        #: The code width: hashes are ints below 2**bits, and no two differ in more bits.
        self.bits = bits
        self.next_id = 1
        self.pending: dict[int, tuple[int, Any]] = {}  # insertion-ordered
        self.indexed: dict[int, tuple[int, Any]] = {}  # in the order the entries were synced

    def contains(self, entry_id: int) -> bool:
        return entry_id in self.pending or entry_id in self.indexed

    def _push(self, entry_id: int, hash_value: int, title: Any) -> None:
        self.next_id = max(self.next_id, entry_id + 1)
        self.pending[entry_id] = (hash_value, title)
        if len(self.pending) >= self.sync_threshold:
            self.sync()

    def add(self, hash_value: int, title: Any, entry_id: int | None = None) -> int:
        if entry_id is None:
            if self.next_id > MAX_ID:
                raise ValueError("automatic ids exhausted; pass an explicit id")
            entry_id = self.next_id
        elif self.contains(entry_id):
            raise ValueError(f"id already exists: {entry_id}")
        self._push(entry_id, hash_value, title)
        return entry_id

    def add_many(
        self, hashes: Sequence[int], titles: Sequence[Any], ids: Sequence[int] | None = None
    ) -> list[int]:
        counter = self.next_id
        chosen: list[int] = []
        for position in range(len(hashes)):
            if ids is None:
                if counter > MAX_ID:
                    raise ValueError("automatic ids exhausted; pass an explicit id")
                entry_id = counter
            else:
                entry_id = ids[position]
            if self.contains(entry_id) or entry_id in chosen:
                raise ValueError(f"id already exists: {entry_id}")
            counter = max(counter, entry_id + 1)
            chosen.append(entry_id)
        for hash_value, title, entry_id in zip(hashes, titles, chosen):
            self._push(entry_id, hash_value, title)
        return chosen

    def set_sync_threshold(self, threshold: int) -> None:
        self.sync_threshold = threshold
        if len(self.pending) >= threshold:
            self.sync()

    def sync(self) -> None:
        self.indexed.update(self.pending)
        self.pending.clear()

    def delete(self, entry_id: int) -> None:
        if entry_id in self.pending:
            del self.pending[entry_id]
        elif entry_id in self.indexed:
            del self.indexed[entry_id]
        else:
            raise KeyError(entry_id)

    def query(
        self, hash_value: int, radius: int, limit: int | None = None
    ) -> list[tuple[Any, int, int]]:
        radius = min(radius, self.bits)
        found = sorted(
            (hamming(hash_value, stored), entry_id, title)
            for entry_id, (stored, title) in self.indexed.items()
            if hamming(hash_value, stored) <= radius
        )
        if limit is not None:
            found = found[:limit]
        return [(title, entry_id, distance) for distance, entry_id, title in found]

    def knn(self, hash_value: int, k: int) -> list[tuple[Any, int, int]]:
        return self.query(hash_value, self.bits, k)

    def lookup(self, entry_id: int) -> Any | None:
        entry = self.pending.get(entry_id) or self.indexed.get(entry_id)
        return None if entry is None else entry[1]

    def size(self) -> int:
        return len(self.indexed)

    def pairs(self, radius: int) -> list[tuple[int, int, int]]:
        return pairs_within({i: h for i, (h, _) in self.indexed.items()}, radius)

    def entries(self) -> list[tuple[int, int, Any, bool]]:
        """Synced entries by id, then pending ones in the order they were queued."""
        synced = [(i, h, t, False) for i, (h, t) in sorted(self.indexed.items())]
        return synced + [(i, h, t, True) for i, (h, t) in self.pending.items()]

    def ids(self) -> list[int]:
        """Every live id: synced ones in the order they were synced, then pending ones."""
        return [*self.indexed, *self.pending]

    def hashes(self) -> list[int]:
        return [hash_value for hash_value, _ in (*self.pending.values(), *self.indexed.values())]


# -- the array form ----------------------------------------------------------------------------


def _bit_count(values: np.ndarray) -> np.ndarray:
    """Per-element bit count of a uint64 array (numpy < 2 has no ``bitwise_count``)."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(values)
    as_bytes = np.ascontiguousarray(values, dtype=np.uint64).view(np.uint8).reshape(-1, 8)
    return np.unpackbits(as_bytes, axis=1).sum(axis=1, dtype=np.uint8).reshape(np.shape(values))


def distances(data: np.ndarray, query: int | np.uint64) -> np.ndarray:
    """Hamming distance (uint8) from ``query`` to every hash in ``data``."""
    return _bit_count(np.bitwise_xor(data, np.uint64(query)))


@dataclass(frozen=True)
class Expected:
    """Sorted by (distance, id), as imgscout orders answers."""

    ids: np.ndarray  # int64
    distances: np.ndarray  # int64

    def __len__(self) -> int:
        return len(self.ids)


def expected_range(dist: np.ndarray, ids: np.ndarray, radius: int) -> Expected:
    """Every entry within ``radius`` (inclusive)."""
    where = np.flatnonzero(dist <= radius)
    found_ids = ids[where].astype(np.int64)
    found_d = dist[where].astype(np.int64)
    order = np.lexsort((found_ids, found_d))
    return Expected(found_ids[order], found_d[order])


def expected_knn(dist: np.ndarray, ids: np.ndarray, k: int) -> Expected:
    """The k nearest, ties at the k-th distance broken by smaller id (imgscout's order)."""
    k = min(k, len(dist))
    if k == 0:
        return Expected(np.empty(0, np.int64), np.empty(0, np.int64))
    kth = int(np.partition(dist, k - 1)[k - 1])
    full = expected_range(dist, ids, kth)
    return Expected(full.ids[:k], full.distances[:k])


def reference_pairs(data: np.ndarray, ids: np.ndarray, radius: int, block: int = 64) -> np.ndarray:
    """All pairs within ``radius`` as rows (smaller id, larger id, distance), sorted; O(n^2)."""
    rows: list[np.ndarray] = []
    n = len(data)
    for start in range(0, n, block):
        stop = min(n, start + block)
        # Compare the block with itself and everything after it; keep j > i only.
        tail = data[start:]
        dist = _bit_count(np.bitwise_xor(data[start:stop, None], tail[None, :]))
        i_local, j_local = np.nonzero(dist <= radius)
        keep = j_local > i_local
        i_idx = i_local[keep] + start
        j_idx = j_local[keep] + start
        a = ids[i_idx].astype(np.int64)
        b = ids[j_idx].astype(np.int64)
        rows.append(
            np.stack(
                [np.minimum(a, b), np.maximum(a, b), dist[i_local[keep], j_local[keep]]], axis=1
            )
        )
    return sort_pairs(np.concatenate(rows) if rows else np.empty((0, 3), np.int64))


def sort_pairs(pairs: np.ndarray) -> np.ndarray:
    """Pair rows (a, b, distance) in imgscout's order: by distance, then a, then b."""
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 3)
    return pairs[np.lexsort((pairs[:, 1], pairs[:, 0], pairs[:, 2]))]
