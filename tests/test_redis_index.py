"""RedisIndex beyond the shared contract (tests/test_index.py runs that on both backends):
client settings, missing keys, wrong types, error translation and round trips."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis

import imgscout
from imgscout import Index, Match, RedisIndex
from imgscout._redis_common import raise_translated
from tests.support.reference import MAX_ID, ReferenceIndex

CLIENT_SETTINGS = [(2, False), (2, True), (3, False), (3, True)]


@pytest.fixture(
    params=CLIENT_SETTINGS, ids=lambda p: f"resp{p[0]}-{'decoded' if p[1] else 'bytes'}"
)
def any_client(redis_server: Any, request: pytest.FixtureRequest) -> Iterator[redis.Redis]:
    protocol, decoded = request.param
    connection = redis_server.client(protocol=protocol, decode_responses=decoded)
    connection.flushall()
    yield connection
    connection.close()


def test_every_client_setting_gives_the_same_answers(any_client: redis.Redis) -> None:
    index = RedisIndex(any_client, "photos", sync_threshold=4)
    weird = b"caf\xc3\xa9 \xff.jpg".decode("utf-8", "surrogateescape")
    assert index.add(0xF0, weird) == 1
    assert index.add_many([0xF1, 0xF3, 0xF7], ["b", "c", "d"]).tolist() == [2, 3, 4]
    assert index.add_many([0xFF], ["e"], ids=[9]).tolist() == [9]
    assert (index.size(), index.pending) == (4, 1)
    assert index.query(0xF0, 2) == [Match(weird, 1, 0), Match("b", 2, 1), Match("c", 3, 2)]
    assert index.query(0xF0, 2, limit=1) == [Match(weird, 1, 0)]
    assert index.knn(0xF7, 2) == [Match("d", 4, 0), Match("c", 3, 1)]
    assert index.query_many([0xF0, 0x0F], 1) == [[Match(weird, 1, 0), Match("b", 2, 1)], []]
    assert index.lookup(1) == weird
    assert index.lookup(9) == "e"
    info = index.info()
    assert (info["entries"], info["pending"], info["next_id"], info["sync_threshold"]) == (
        4,
        1,
        10,
        4,
    )
    index.delete(9)
    with pytest.raises(KeyError):
        index.delete(9)
    assert index.next_id == 10


def test_missing_key_reads_as_an_empty_index(client: redis.Redis) -> None:
    index = RedisIndex(client, "nothing-here")
    assert index.size() == 0 and len(index) == 0 and index.pending == 0
    assert (
        index.query(0, 64) == []
        and index.knn(0, 3) == []
        and index.query_many([1, 2], 5) == [[], []]
    )
    assert index.lookup(1) is None
    assert index.pairs(64) == []
    assert list(index) == []
    assert index.info() == {**Index().info(), "memory_bytes": index.info()["memory_bytes"]}
    index.sync()
    with pytest.raises(KeyError):
        index.delete(1)
    assert client.exists("nothing-here") == 0, "reads and sync do not create the key"
    RedisIndex(client, "configured", sync_threshold=3)
    assert client.exists("configured") == 1


def test_wrong_type_key_raises_the_redis_error(client: redis.Redis) -> None:
    client.set("plain-string", "x")
    index = RedisIndex(client, "plain-string")
    calls = [
        lambda: index.add(1, "a"),
        lambda: index.add_many([1], ["a"]),
        lambda: index.add_many([1], ["a"], ids=[5]),
        lambda: index.query(1, 3),
        lambda: index.query_many([1], 3),
        lambda: index.knn(1, 3),
        lambda: index.lookup(1),
        lambda: index.size(),
        lambda: index.delete(1),
        lambda: index.info(),
        lambda: index.sync(),
        lambda: index.pairs(3),
        lambda: index.entries(),
    ]
    for call in calls:
        with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
            call()


def test_server_side_errors_become_the_embedded_exceptions(client: redis.Redis) -> None:
    index = RedisIndex(client, "errors")
    index.add(1, "a", id=5)
    with pytest.raises(ValueError, match=r"^id already exists: 5$"):
        index.add(2, "b", id=5)
    with pytest.raises(ValueError, match=r"^id already exists: 5$"):
        index.add_many([2, 3], ["b", "c"], ids=[6, 5])
    with pytest.raises(KeyError) as missing:
        index.delete(6)
    assert missing.value.args == (6,)
    index.add(3, "last", id=MAX_ID)
    with pytest.raises(ValueError, match=r"^automatic ids exhausted"):
        index.add(4, "auto")
    with pytest.raises(ValueError, match=r"^automatic ids exhausted"):
        index.add_many([4], ["auto"])
    assert index.lookup(6) is None


@pytest.mark.parametrize(
    ("message", "raised", "code"),
    [
        ("invalid hash value", imgscout.InvalidArgumentError, "invalid-hash"),
        ("ERR invalid radius", imgscout.InvalidArgumentError, "invalid-radius"),
        ("invalid id", imgscout.InvalidArgumentError, "invalid-id"),
        ("invalid k", imgscout.InvalidArgumentError, "invalid-k"),
        ("invalid limit", imgscout.InvalidArgumentError, "invalid-limit"),
        ("invalid sync threshold", imgscout.InvalidArgumentError, "invalid-sync-threshold"),
        ("syntax error", imgscout.InvalidArgumentError, "syntax"),
        ("id already exists: 8", imgscout.IdExistsError, "id-exists"),
        (
            "automatic ids exhausted; pass an explicit id",
            imgscout.IdsExhaustedError,
            "ids-exhausted",
        ),
        (
            "answer has more than 5 rows (imgscout.max-reply-rows)",
            imgscout.AnswerTooLargeError,
            "too-many-rows",
        ),
        (
            "Command # 1 (imgscout.query k 1 2) of pipeline caused error: invalid radius",
            imgscout.InvalidArgumentError,
            "invalid-radius",
        ),
    ],
)
def test_error_translation_is_by_code(message: str, raised: type[Exception], code: str) -> None:
    with pytest.raises(raised) as caught:
        raise_translated(redis.ResponseError(message), 8)
    assert caught.value.code == code  # type: ignore[attr-defined]
    assert str(caught.value) == message.removeprefix("ERR ").rpartition("caused error: ")[2]


def test_unknown_errors_pass_through() -> None:
    error = redis.ResponseError("WRONGTYPE Operation against a key holding the wrong kind")
    with pytest.raises(redis.ResponseError) as caught:
        raise_translated(error, None)
    assert caught.value is error
    with pytest.raises(imgscout.NoSuchIdError) as missing:
        raise_translated(redis.ResponseError("no such id: 3"), 3)
    assert missing.value.args == (3,)
    assert isinstance(missing.value, KeyError)


class CountingClient:
    """A redis-py-compatible stand-in that counts round trips."""

    def __init__(self, inner: redis.Redis) -> None:
        self.inner = inner
        self.round_trips = 0

    def execute_command(self, *args: Any, **options: Any) -> Any:
        self.round_trips += 1
        return self.inner.execute_command(*args, **options)

    def pipeline(self, transaction: bool = True) -> Any:
        pipeline = self.inner.pipeline(transaction=transaction)
        execute = pipeline.execute

        def counted_execute(*args: Any, **kwargs: Any) -> Any:
            self.round_trips += 1
            return execute(*args, **kwargs)

        pipeline.execute = counted_execute  # type: ignore[method-assign]
        return pipeline


def test_every_call_is_one_round_trip(client: redis.Redis) -> None:
    counting = CountingClient(client)
    index = RedisIndex(counting, "trips")  # type: ignore[arg-type]
    reference = ReferenceIndex()
    hashes = list(range(0, 3000, 3))
    titles = [f"t{h}" for h in hashes]
    calls = [
        lambda: index.add_many(hashes, titles),
        lambda: index.add_many([1, 2], ["x", "y"], ids=[50_000, 50_001]),
        lambda: index.sync(),
        lambda: index.query_many(hashes[:500], 2),
        lambda: index.query(5, 3),
        lambda: index.knn(5, 3),
        lambda: index.lookup(3),
        lambda: index.size(),
        lambda: index.info(),
        lambda: index.delete(50_000),
    ]
    for call in calls:
        before = counting.round_trips
        call()
        assert counting.round_trips == before + 1
    reference.add_many(hashes, titles)
    reference.add_many([1, 2], ["x", "y"], [50_000, 50_001])
    reference.sync()
    reference.delete(50_000)
    assert index.query_many(hashes[:50], 2) == [
        [Match(*m) for m in reference.query(h, 2)] for h in hashes[:50]
    ]


def test_state_survives_debug_reload(client: redis.Redis) -> None:
    index = RedisIndex(client, "reloaded", sync_threshold=5)
    index.add_many(list(range(8)), [f"t{n}" for n in range(8)])
    index.add(99, "pending", id=1000)
    before = (index.info(), index.query(0, 64), index.lookup(1000))
    client.execute_command("DEBUG", "RELOAD")
    after = (index.info(), index.query(0, 64), index.lookup(1000))
    assert {k: v for k, v in before[0].items() if k != "memory_bytes"} == {
        k: v for k, v in after[0].items() if k != "memory_bytes"
    }
    assert before[1:] == after[1:]
    assert index.add(1, "next") == 1001


def test_repr_names_the_key(client: redis.Redis) -> None:
    assert "key='k'" in repr(RedisIndex(client, "k"))


@pytest.mark.parametrize("sharded", [False, True], ids=["key", "sharded"])
def test_expire_and_drop_cover_the_key_and_its_title_hashes(
    any_client: redis.Redis, sharded: bool
) -> None:
    index: RedisIndex | imgscout.ShardedIndex = (
        imgscout.ShardedIndex(any_client, "scratch", shards=3)
        if sharded
        else RedisIndex(any_client, "scratch")
    )
    ids = index.add_many([1, 2, 3, 4], ["a", "b", "c", "d"]).tolist()
    index.sync()
    any_client.set("bystander", "x")
    names = index.key_names()
    assert len(names) == (3 if sharded else 1) + len(ids)
    assert all(any_client.exists(name) for name in names), "title hashes are on by default"
    index.expire(100)
    assert all(0 < any_client.ttl(name) <= 100 for name in names)
    assert any_client.ttl("bystander") == -1
    index.drop()
    assert not any(any_client.exists(name) for name in names)
    assert index.size() == 0 and any_client.get("bystander") in (b"x", "x")
