"""Array answers (``query_arrays``, ``knn_arrays``, ``titles``) on every face, checked against
a numpy brute force in the same test, and ``threads`` changing the work but never the rows."""

from __future__ import annotations

import gc
import os
import random
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
import redis

import imgscout
from tests.support.hashes import clustered_hashes
from tests.support.reference import distances, expected_knn, expected_range

ENTRIES = 3000


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    return np.array(clustered_hashes(random.Random(7), ENTRIES, centers=40), dtype=np.uint64)


@pytest.fixture(scope="module")
def queries(data: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(3)
    exact = data[rng.integers(0, len(data), 75)]
    near = data[rng.integers(0, len(data), 75)] ^ np.uint64(0b1011)
    far = rng.integers(0, 2**63, 50, dtype=np.uint64)
    return np.concatenate([exact, near, far])


def filled(index: Any, data: np.ndarray) -> Any:
    index.add_many(data, [f"t{i}" for i in range(len(data))])
    index.sync()
    return index


@pytest.fixture(params=["Index", "Index-1-thread", "RedisIndex", "ShardedIndex"])
def face(request: pytest.FixtureRequest, redis_server: Any, data: np.ndarray) -> Iterator[Any]:
    name = request.param
    if name.startswith("Index"):
        yield filled(imgscout.Index(threads=1 if name == "Index-1-thread" else None), data)
        return
    client = redis.Redis(port=redis_server.port)
    client.flushall()
    make: dict[str, Callable[[], Any]] = {
        "RedisIndex": lambda: imgscout.RedisIndex(client, "arrays"),
        "ShardedIndex": lambda: imgscout.ShardedIndex(client, "arrays", shards=3),
    }
    yield filled(make[name](), data)
    client.close()


@pytest.mark.parametrize("radius", [0, 4, 10, 20])
@pytest.mark.parametrize("limit", [None, 3])
def test_query_arrays_equal_the_brute_force(
    face: Any, data: np.ndarray, queries: np.ndarray, radius: int, limit: int | None
) -> None:
    lims, ids, found = face.query_arrays(queries, radius, limit=limit)
    assert lims.dtype == np.int64 and ids.dtype == np.int64 and found.dtype == np.int32
    assert len(lims) == len(queries) + 1 and lims[0] == 0 and lims[-1] == len(ids) == len(found)
    all_ids = np.arange(1, len(data) + 1)
    rows = 0
    for i, query in enumerate(queries):
        want = expected_range(distances(data, query), all_ids, radius)
        want_ids, want_d = want.ids[:limit], want.distances[:limit]
        assert ids[lims[i] : lims[i + 1]].tolist() == want_ids.tolist(), i
        assert found[lims[i] : lims[i + 1]].tolist() == want_d.tolist(), i
        rows += len(want_ids)
    assert rows >= 75, "the data gives answers with rows"


@pytest.mark.parametrize("k", [1, 10])
def test_knn_arrays_equal_the_brute_force(
    face: Any, data: np.ndarray, queries: np.ndarray, k: int
) -> None:
    ids, found = face.knn_arrays(queries, k)
    assert ids.shape == found.shape == (len(queries), k)
    all_ids = np.arange(1, len(data) + 1)
    for i, query in enumerate(queries):
        want = expected_knn(distances(data, query), all_ids, k)
        assert ids[i].tolist() == want.ids.tolist()
        assert found[i].tolist() == want.distances.tolist()


def test_a_single_hash_is_a_batch_of_one_and_titles_resolve_ids(
    face: Any, data: np.ndarray
) -> None:
    lims, ids, found = face.query_arrays(int(data[5]), 0)
    assert len(lims) == 2 and 6 in ids.tolist() and found.tolist() == [0] * len(ids)
    assert face.query_arrays(f"0x{int(data[5]):x}", 0)[1].tolist() == ids.tolist()
    assert face.titles(ids).count("t5") == 1
    assert face.titles([6, 999_999]) == ["t5", None]
    empty = face.query_arrays(np.zeros(0, dtype=np.uint64), 4)
    assert [part.tolist() for part in empty] == [[0], [], []]


def test_one_int_hash_answers_and_fails_as_a_batch_of_one(face: Any, data: np.ndarray) -> None:
    # A plain int or a uint64 array of one, with an int radius, take the embedded index's
    # short path; every other spelling the general one. All give the same rows and errors.
    # An entry's near neighbour below 2**63, so that an int64 array can hold it too.
    query = next(int(h) for h in data if int(h) < 2**63) ^ 0b101
    strided = np.array([query, 0], dtype=np.uint64)[::2]
    spellings = {
        "int": query,
        "uint64 array of one": np.array([query], dtype=np.uint64),
        "strided uint64 view of one": strided,
        "int64 array of one": np.array([query], dtype=np.int64),
        "list of one": [query],
    }
    for radius in (0, 3, 12, 64, 65, 12.7):
        answers = {
            name: [part.tolist() for part in face.query_arrays(hashes, radius)]
            for name, hashes in spellings.items()
        }
        assert all(answer == answers["list of one"] for answer in answers.values()), radius
    want = expected_range(distances(data, np.uint64(query)), np.arange(1, ENTRIES + 1), 12)
    for name, hashes in spellings.items():
        assert face.query_arrays(hashes, 12)[1].tolist() == want.ids.tolist(), name
    for bad_hash in (-1, 2**64, True, np.array([-1], dtype=np.int64)):
        with pytest.raises(imgscout.InvalidArgumentError, match="invalid hash"):
            face.query_arrays(bad_hash, 4)
    for hashes in (query, np.array([query], dtype=np.uint64)):
        with pytest.raises(imgscout.InvalidArgumentError, match="invalid radius"):
            face.query_arrays(hashes, -1)


def test_knn_arrays_pad_rows_and_titles_skip_the_padding(face: Any) -> None:
    ids, found = face.knn_arrays([0], ENTRIES + 2)
    assert ids.shape == (1, ENTRIES + 2)
    assert ids[0, -2:].tolist() == [-1, -1] and found[0, -2:].tolist() == [-1, -1]
    assert (ids[0, :-2] > 0).all()
    titles = face.titles(ids[0, -3:])
    assert titles[1:] == [None, None] and titles[0] is not None


def test_array_answers_keep_the_row_cap(face: Any, queries: np.ndarray) -> None:
    one = int(queries[0])
    assert len(face.query_arrays(one, 20)[1]) > 50
    face.max_rows = 50
    with pytest.raises(imgscout.AnswerTooLargeError):
        face.knn_arrays(queries, 1)  # 200 cells
    if isinstance(face, imgscout.Index):
        with pytest.raises(imgscout.AnswerTooLargeError):
            face.query_arrays(queries, 20)
        # One plain int: the embedded index's short path keeps the cap too.
        with pytest.raises(imgscout.AnswerTooLargeError):
            face.query_arrays(one, 20)


def test_threads_never_change_an_answer(data: np.ndarray, queries: np.ndarray) -> None:
    many = np.concatenate([queries] * 20)
    answers = []
    for threads in (1, 2, 7):
        index = filled(imgscout.Index(threads=threads), data)
        assert index.threads == threads
        answers.append(
            (
                [part.tolist() for part in index.query_arrays(many, 12)],
                [part.tolist() for part in index.knn_arrays(many, 5)],
                index.query_many(many[:300], 8),
                index.pairs(6),
            )
        )
    assert answers[0] == answers[1] == answers[2]
    with pytest.raises(imgscout.InvalidArgumentError, match="invalid threads"):
        imgscout.Index(threads=0)
    assert imgscout.Index().threads >= 1


@pytest.mark.parametrize("radius", [0, 6, 12])
def test_pairs_arrays_equal_the_brute_force_and_pairs(
    face: Any, data: np.ndarray, radius: int
) -> None:
    a, b, found = face.pairs_arrays(radius)
    assert a.dtype == np.int64 and b.dtype == np.int64 and found.dtype == np.int32
    ids = np.arange(1, len(data) + 1)
    want = []
    for i in range(len(data)):
        near = distances(data[i + 1 :], data[i])
        for j in np.flatnonzero(near <= radius):
            want.append((int(near[j]), int(ids[i]), int(ids[i + 1 + j])))
    want.sort()
    assert list(zip(found.tolist(), a.tolist(), b.tolist())) == want
    assert len(want) >= 100, "the data gives pairs"
    assert [tuple(p) for p in face.pairs(radius)] == list(
        zip(a.tolist(), b.tolist(), found.tolist())
    )


def test_pairs_arrays_over_the_row_cap_are_refused(face: Any) -> None:
    face.max_rows = 10
    if not isinstance(face, imgscout.RedisIndex):
        with pytest.raises(imgscout.AnswerTooLargeError, match="more than 10 rows"):
            face.pairs_arrays(12)
        return
    # A server's answer comes under the server's cap; past it, RedisIndex pages the pairs
    # together itself, and then its own cap holds.
    client = face.client
    saved = client.config_get("imgscout.max-reply-rows")["imgscout.max-reply-rows"]
    client.config_set("imgscout.max-reply-rows", 10)
    try:
        with pytest.raises(imgscout.AnswerTooLargeError, match="more than 10 rows"):
            face.pairs_arrays(12)
    finally:
        client.config_set("imgscout.max-reply-rows", saved)


def test_the_kernel_forced_by_the_environment_is_the_one_running(face: Any) -> None:
    """``IMGSCOUT_KERNEL`` reaches both faces (a test server inherits it), so a run with it
    set checks that kernel's answers; without it the fastest supported one runs."""
    running = face.info()["kernel"]
    forced = os.environ.get("IMGSCOUT_KERNEL")
    if forced:
        assert running == forced
    else:
        assert running == imgscout.Index().info()["kernel"]
    assert running in {"portable", "avx2", "avx512"}


def test_large_answer_lists_leave_the_garbage_collector_as_they_found_it() -> None:
    """The extension pauses the cyclic collector while it builds a large answer list; it must
    come back on afterwards, and stay off when the caller had turned it off."""
    index = imgscout.Index()
    index.add_many(np.full(300, 0xABCD, dtype=np.uint64), [""] * 300)
    index.sync()
    assert gc.isenabled()
    assert len(index.pairs(0)) == 300 * 299 // 2
    assert gc.isenabled()
    gc.disable()
    try:
        assert len(index.query(0xABCD, 0)) == 300
        assert len(index.pairs(0)) == 300 * 299 // 2
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_knn_arrays_wider_than_the_row_cap_are_refused_even_for_an_empty_batch(face: Any) -> None:
    ids, found = face.knn_arrays(np.array([], dtype=np.uint64), 5)
    assert ids.shape == found.shape == (0, 5)
    for k in (face.max_rows + 1, 2**64):
        with pytest.raises(imgscout.AnswerTooLargeError):
            face.knn_arrays(np.array([], dtype=np.uint64), k)
