"""The checks every benchmark answer goes through, against the brute force of
:mod:`tests.support.reference`. A wrong answer raises :class:`WrongAnswer`; ``bench/run.py``
turns it into a non-zero exit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tests.support.reference import Expected, distances, sort_pairs


class WrongAnswer(AssertionError):
    """An answer differs from the brute-force answer."""


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
