"""Brute-force answers (numpy ``bitwise_count`` scan) and the checks every answer goes through.

A wrong answer raises :class:`WrongAnswer`; ``run.py`` turns it into a non-zero exit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


class WrongAnswer(AssertionError):
    """An answer differs from the brute-force answer."""


def distances(data: np.ndarray, query: int | np.uint64) -> np.ndarray:
    """Hamming distance (uint8) from ``query`` to every hash in ``data``."""
    return np.bitwise_count(np.bitwise_xor(data, np.uint64(query)))


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


def _matches_as_arrays(answer: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """imgscout ``Match`` tuples ``(title, id, distance)`` as id and distance arrays."""
    count = len(answer)
    ids = np.fromiter((m[1] for m in answer), dtype=np.int64, count=count)
    dist = np.fromiter((m[2] for m in answer), dtype=np.int64, count=count)
    return ids, dist


def check_matches(answer: Sequence[Any], expected: Expected, what: str) -> None:
    """An imgscout answer (list of ``Match``) equals the expected one, order and titles included.

    Titles in the bench are ``str(id)``, so each title is checked against its id too.
    """
    ids, dist = _matches_as_arrays(answer)
    if len(ids) != len(expected) or not (
        np.array_equal(ids, expected.ids) and np.array_equal(dist, expected.distances)
    ):
        missing = np.setdiff1d(expected.ids, ids)[:5]
        extra = np.setdiff1d(ids, expected.ids)[:5]
        raise WrongAnswer(
            f"{what}: {len(ids)} answers, expected {len(expected)}; "
            f"missing ids {missing.tolist()}, extra ids {extra.tolist()}"
            + ("" if len(missing) or len(extra) else " (same ids: order or distances differ)")
        )
    for match in answer:
        if match[0] != str(match[1]):
            raise WrongAnswer(f"{what}: id {match[1]} came back with title {match[0]!r}")


def check_id_distance_set(ids: np.ndarray, dist: np.ndarray, expected: Expected, what: str) -> None:
    """An unordered answer (a peer's) holds exactly the expected (id, distance) pairs."""
    order = np.lexsort((ids, dist))
    if not (
        np.array_equal(np.asarray(ids, np.int64)[order], expected.ids)
        and np.array_equal(np.asarray(dist, np.int64)[order], expected.distances)
    ):
        raise WrongAnswer(f"{what}: {len(ids)} answers, expected {len(expected)}")


def check_knn_distances(dist: np.ndarray, expected: Expected, what: str) -> None:
    """A kNN answer whose tie-breaking is not specified (FAISS): its distances must be right."""
    if not np.array_equal(np.sort(np.asarray(dist, np.int64)), expected.distances):
        raise WrongAnswer(f"{what}: kNN distances differ from the brute-force ones")


def reference_pairs(data: np.ndarray, ids: np.ndarray, radius: int, block: int = 64) -> np.ndarray:
    """All pairs within ``radius`` as rows (smaller id, larger id, distance), sorted; O(n^2)."""
    rows: list[np.ndarray] = []
    n = len(data)
    for start in range(0, n, block):
        stop = min(n, start + block)
        # Compare the block with itself and everything after it; keep j > i only.
        tail = data[start:]
        dist = np.bitwise_count(np.bitwise_xor(data[start:stop, None], tail[None, :]))
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
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 3)
    return pairs[np.lexsort((pairs[:, 1], pairs[:, 0], pairs[:, 2]))]


def check_pairs_exact(answer: np.ndarray, expected: np.ndarray, what: str) -> None:
    """Pairs (a, b, distance) equal the brute-force self-join (both sorted the same way)."""
    answer = sort_pairs(answer)
    if not np.array_equal(answer, expected):
        raise WrongAnswer(f"{what}: {len(answer)} pairs, expected {len(expected)}")


def check_pairs_sampled(
    answer: np.ndarray,
    data: np.ndarray,
    ids: np.ndarray,
    radius: int,
    sample: np.ndarray,
    what: str,
) -> None:
    """For self-joins too large for an O(n^2) reference: every reported pair is checked
    (a < b, ids exist, distance right and within radius, no duplicates), and for every sampled
    entry the set of its partners equals its brute-force neighbours."""
    answer = np.asarray(answer, dtype=np.int64).reshape(-1, 3)
    position_of_id = np.full(int(ids.max()) + 1, -1, dtype=np.int64)
    position_of_id[ids] = np.arange(len(ids))
    a, b, d = answer[:, 0], answer[:, 1], answer[:, 2]
    if len(answer):
        if (a >= b).any() or a.min() < 0 or b.max() >= len(position_of_id):
            raise WrongAnswer(f"{what}: a pair is not (smaller id, larger id) of known ids")
        pa, pb = position_of_id[a], position_of_id[b]
        if (pa < 0).any() or (pb < 0).any():
            raise WrongAnswer(f"{what}: a pair names an id that is not in the index")
        true_d = np.bitwise_count(np.bitwise_xor(data[pa], data[pb])).astype(np.int64)
        if not np.array_equal(true_d, d) or (d > radius).any():
            raise WrongAnswer(f"{what}: a pair has a wrong distance or is beyond the radius")
        keys = a.astype(np.uint64) * np.uint64(len(position_of_id)) + b.astype(np.uint64)
        if len(np.unique(keys)) != len(keys):
            raise WrongAnswer(f"{what}: a pair is reported twice")
    # Both directions of every pair, sorted by first id: each sample's partners are one slice.
    first = np.concatenate([a, b])
    second = np.concatenate([b, a])
    order = np.argsort(first, kind="stable")
    first, second = first[order], second[order]
    for position in sample:
        dist = distances(data, data[position])
        partners = np.flatnonzero(dist <= radius)
        partners = partners[partners != position]
        own = int(ids[position])
        expected = np.sort(ids[partners].astype(np.int64))
        lo, hi = np.searchsorted(first, own, "left"), np.searchsorted(first, own, "right")
        got = np.sort(second[lo:hi])
        if not np.array_equal(got, expected):
            raise WrongAnswer(
                f"{what}: entry {own} has {len(got)} partners, brute force finds {len(expected)}"
            )
