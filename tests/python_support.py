"""Test helpers for the Python package: a brute-force reference index and hash utilities.

``ReferenceIndex`` is written from the documented semantics alone (no imgscout code), so that
comparing against it checks the implementations rather than repeating them.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence

MAX_HASH = 2**64 - 1
MAX_ID = 2**63 - 1
MAX_RADIUS = 64


def hamming(a: int, b: int) -> int:
    return bin(a ^ b).count("1")


def flip_bits(value: int, count: int, rng: random.Random) -> int:
    """``value`` with ``count`` distinct random bits flipped (distance exactly ``count``)."""
    for bit in rng.sample(range(64), count):
        value ^= 1 << bit
    return value


def unique_key(prefix: str = "imgscout-test") -> str:
    return f"{prefix}:{uuid.uuid4().hex}"


class ReferenceIndex:
    """The index semantics, by brute force, in plain Python.

    Entries are pending until ``sync`` (or until the pending count reaches the threshold);
    queries see synced entries only; automatic ids continue after the largest id ever used.
    """

    def __init__(self, sync_threshold: int = 500) -> None:
        self.sync_threshold = sync_threshold
        self.next_id = 1
        self.pending: dict[int, tuple[int, str]] = {}  # insertion-ordered
        self.indexed: dict[int, tuple[int, str]] = {}

    def _exists(self, entry_id: int) -> bool:
        return entry_id in self.pending or entry_id in self.indexed

    def _push(self, entry_id: int, hash_value: int, title: str) -> None:
        self.next_id = max(self.next_id, entry_id + 1)
        self.pending[entry_id] = (hash_value, title)
        if len(self.pending) >= self.sync_threshold:
            self.sync()

    def add(self, hash_value: int, title: str, entry_id: int | None = None) -> int:
        if entry_id is None:
            if self.next_id > MAX_ID:
                raise ValueError("automatic ids exhausted; pass an explicit id")
            entry_id = self.next_id
        elif self._exists(entry_id):
            raise ValueError(f"id already exists: {entry_id}")
        self._push(entry_id, hash_value, title)
        return entry_id

    def add_many(
        self, hashes: Sequence[int], titles: Sequence[str], ids: Sequence[int] | None = None
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
            if self._exists(entry_id) or entry_id in chosen:
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
    ) -> list[tuple[str, int, int]]:
        radius = min(radius, MAX_RADIUS)
        found = sorted(
            (hamming(hash_value, stored), entry_id, title)
            for entry_id, (stored, title) in self.indexed.items()
            if hamming(hash_value, stored) <= radius
        )
        if limit is not None:
            found = found[:limit]
        return [(title, entry_id, distance) for distance, entry_id, title in found]

    def knn(self, hash_value: int, k: int) -> list[tuple[str, int, int]]:
        return self.query(hash_value, MAX_RADIUS, k)

    def lookup(self, entry_id: int) -> str | None:
        entry = self.pending.get(entry_id) or self.indexed.get(entry_id)
        return None if entry is None else entry[1]

    def size(self) -> int:
        return len(self.indexed)

    def pairs(self, radius: int) -> list[tuple[int, int, int]]:
        items = sorted(self.indexed.items())
        found = []
        for position, (a, (hash_a, _)) in enumerate(items):
            for b, (hash_b, _) in items[position + 1 :]:
                distance = hamming(hash_a, hash_b)
                if distance <= radius:
                    found.append((distance, a, b))
        return [(a, b, distance) for distance, a, b in sorted(found)]

    def entries(self) -> list[tuple[int, int, str, bool]]:
        synced = [(i, h, t, False) for i, (h, t) in sorted(self.indexed.items())]
        return synced + [(i, h, t, True) for i, (h, t) in self.pending.items()]

    def hashes(self) -> list[int]:
        return [hash_value for hash_value, _ in (*self.pending.values(), *self.indexed.values())]
