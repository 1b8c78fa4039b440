"""Answer caps and paged pairs on every Python face: the embedded ``Index``, ``RedisIndex``
and ``ShardedIndex`` raise ``AnswerTooLargeError`` instead of exhausting memory, and
``iter_pairs`` walks any self-join page by page, checked against the plain answer."""

from __future__ import annotations

import random

import pytest
import redis

from imgscout import AnswerTooLargeError, Index, Pair, RedisIndex, ShardedIndex
from tests.support.reference import pairs_within
from tests.support.server import ServerFactory


def clustered(count: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    centres = [rng.getrandbits(64) for _ in range(max(1, count // 30))]
    out = []
    for _ in range(count):
        value = rng.choice(centres)
        for bit in rng.sample(range(64), rng.randrange(7)):
            value ^= 1 << bit
        out.append(value)
    return out


def test_the_self_join_of_20000_entries_at_radius_64_raises_instead_of_aborting() -> None:
    rng = random.Random(1)
    index = Index(max_rows=1_000_000)
    index.add_many([rng.getrandbits(64) for _ in range(20_000)], [""] * 20_000)
    index.sync()
    with pytest.raises(AnswerTooLargeError, match="more than 1000000 rows"):
        index.pairs(64)
    # The default cap (10M) stops it too, and the error is a ValueError for old callers.
    index.max_rows = Index().max_rows
    with pytest.raises(ValueError, match="more than 10000000 rows"):
        index.pairs(64)


def test_every_answer_of_the_embedded_index_is_capped() -> None:
    index = Index(max_rows=10)
    index.add_many([5] * 11, [f"t{i}" for i in range(11)])
    index.sync()
    for call in (
        lambda: index.query(5, 0),
        lambda: index.query(5, 0, limit=11),
        lambda: index.query_many([5], 0),
        lambda: index.query_many([5, 5], 0, limit=6),
        lambda: index.knn(5, 11),
        lambda: index.pairs(0),
    ):
        with pytest.raises(AnswerTooLargeError):
            call()
    assert len(index.query(5, 0, limit=10)) == 10
    assert len(index.knn(5, 10)) == 10
    assert sum(map(len, index.query_many([5, 5], 0, limit=5))) == 10
    assert len(list(index.iter_pairs(0))) == 55
    for bad in (0, -1, 1.5, "10", None):
        with pytest.raises(ValueError, match="invalid max_rows"):
            index.max_rows = bad  # type: ignore[assignment]
    with pytest.raises(ValueError, match="invalid max_rows"):
        Index(max_rows=0)
    with pytest.raises(ValueError, match="invalid count"):
        list(index.iter_pairs(0, page_size=0))


@pytest.mark.parametrize("page_size", [1, 4, 1000])
def test_iter_pairs_walks_exactly_the_plain_answer(page_size: int) -> None:
    hashes = clustered(700, seed=page_size)
    index = Index()
    ids = [int(i) for i in index.add_many(hashes, [""] * len(hashes))]
    for entry_id in ids[::9]:
        index.delete(entry_id)
    index.add(hashes[0], "far", id=2**62)
    index.sync()
    live = {e.id: e.hash for e in index.entries()}
    for radius in (0, 4, 10):
        want = [Pair(*pair) for pair in pairs_within(live, radius)]
        assert index.pairs(radius) == want
        walked = list(index.iter_pairs(radius, page_size=page_size))
        assert sorted(walked, key=lambda p: (p.distance, p.a, p.b)) == want


def test_iter_pairs_survives_writes_between_pages() -> None:
    hashes = clustered(400, seed=9)
    index = Index()
    index.add_many(hashes, [""] * len(hashes))
    index.sync()
    before = set(index.pairs(6))
    walked = []
    pages = index.iter_pairs(6, page_size=3)
    for step, pair in enumerate(pages):
        walked.append(pair)
        if step % 50 == 0:
            index.add(hashes[step % len(hashes)], "new")
            index.sync()
    # Entries present throughout come exactly once; new ones may or may not show.
    assert len(walked) == len(set(walked))
    assert before <= set(walked)


@pytest.fixture
def small_cap_client(redis_server_factory: ServerFactory) -> redis.Redis:
    return redis_server_factory(module_args=("MAX_REPLY_ROWS", "25")).client()


def test_redis_index_fetches_answers_past_the_server_cap_page_by_page(
    small_cap_client: redis.Redis,
) -> None:
    hashes = clustered(300, seed=4)
    remote = RedisIndex(small_cap_client, "k", sync_threshold=40)
    local = Index(sync_threshold=40)
    remote.add_many(hashes, [f"t{i}" for i in range(len(hashes))])
    local.add_many(hashes, [f"t{i}" for i in range(len(hashes))])
    assert remote.pending > 0
    assert remote.pairs(5) == local.pairs(5)
    assert len(remote.pairs(5)) > 25
    assert sorted(remote.iter_pairs(5, page_size=7)) == sorted(local.pairs(5))
    by_id = sorted(local.entries(), key=lambda e: (e.pending, e.id))
    assert remote.entries() == by_id
    # A query's reply past the server's cap is refused like any oversized answer.
    with pytest.raises(AnswerTooLargeError, match=r"imgscout\.max-reply-rows"):
        remote.query(hashes[0], 64)
    assert len(remote.query(hashes[0], 64, limit=25)) == 25
    # And the client's own cap holds for what it assembles.
    capped = RedisIndex(small_cap_client, "k", max_rows=30)
    with pytest.raises(AnswerTooLargeError, match="more than 30 rows"):
        capped.pairs(5)


def test_sharded_index_entries_and_pairs_past_the_server_cap(
    small_cap_client: redis.Redis,
) -> None:
    hashes = clustered(200, seed=6)
    sharded = ShardedIndex(small_cap_client, "s", shards=2)
    local = Index()
    sharded.add_many(hashes, [""] * len(hashes))
    local.add_many(hashes, [""] * len(hashes))
    sharded.sync()
    local.sync()
    assert sharded.entries() == local.entries()
    assert sharded.pairs(6) == local.pairs(6)
    assert sorted(sharded.iter_pairs(6, page_size=5)) == sorted(local.pairs(6))
    assert len(list(ShardedIndex(small_cap_client, "s", shards=2, max_rows=3).iter_pairs(6))) > 3
    with pytest.raises(AnswerTooLargeError):
        ShardedIndex(small_cap_client, "s", shards=2, max_rows=3).pairs(6)
