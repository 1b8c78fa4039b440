"""The imgscout Redis module's commands against a real redis-server, under RESP2 and RESP3."""

from __future__ import annotations

import random
import shutil
import subprocess
import time
from typing import Any

import pytest
import redis

from tests.support.commands import assert_same_state, info, raw_reply, run_random_workload
from tests.support.reference import MAX_ID, ReferenceIndex, as_reply, pairs_within
from tests.support.server import RedisServer, RedisStartError, ServerFactory, free_port

PROTOCOLS = pytest.mark.parametrize("protocol", [2, 3], ids=["resp2", "resp3"])


def command(client: redis.Redis, *args: object) -> object:
    return client.execute_command(*args)


def as_dict(reply: object) -> object:
    """Nested RESP3 maps or their RESP2 flat-array form, as dicts."""
    if isinstance(reply, dict):
        return {name: as_dict(value) for name, value in reply.items()}
    if (
        isinstance(reply, list)
        and len(reply) % 2 == 0
        and all(isinstance(name, bytes) for name in reply[::2])
    ):
        return {name: as_dict(value) for name, value in zip(reply[::2], reply[1::2])}
    return reply


def error_of(client: redis.Redis, *args: object) -> str:
    with pytest.raises(redis.ResponseError) as caught:
        client.execute_command(*args)
    return str(caught.value)


# --- happy paths ---------------------------------------------------------------------------


def test_add_assigns_increasing_ids_and_creates_the_key(client: redis.Redis) -> None:
    assert command(client, "imgscout.add", "idx", 123, "first") == 1
    assert command(client, "imgscout.add", "idx", "0xff", "second") == 2
    assert client.type("idx") == b"imgscoutx"
    assert info(client, "idx")["pending"] == 2


def test_add_with_explicit_id_moves_the_counter_past_it(client: redis.Redis) -> None:
    assert command(client, "imgscout.add", "idx", 1, "a", 41) == 41
    assert command(client, "imgscout.add", "idx", 2, "b") == 42
    assert command(client, "imgscout.add", "idx", 3, "c", 0) == 0
    assert command(client, "imgscout.add", "idx", 4, "d", MAX_ID) == MAX_ID
    assert (
        error_of(client, "imgscout.add", "idx", 5, "e")
        == "automatic ids exhausted; pass an explicit id"
    )
    assert command(client, "imgscout.add", "idx", 5, "e", 7) == 7


def test_hash_values_decimal_and_hex_are_the_same_hash(client: redis.Redis) -> None:
    command(client, "imgscout.add", "idx", str(2**64 - 1), "max")
    command(client, "imgscout.add", "idx", "0xFFFFFFFFFFFFFFFF", "max-hex")
    command(client, "imgscout.add", "idx", "0x0", "zero")
    command(client, "imgscout.add", "idx", "00017", "seventeen")
    command(client, "imgscout.sync", "idx")
    assert command(client, "imgscout.query", "idx", "0xffffffffffffffff", 0) == [
        [b"max", 1, 0],
        [b"max-hex", 2, 0],
    ]
    assert command(client, "imgscout.query", "idx", 17, 0) == [[b"seventeen", 4, 0]]
    assert command(client, "imgscout.query", "idx", "0x11", 0) == [[b"seventeen", 4, 0]]


def test_titles_are_binary_safe(client: redis.Redis) -> None:
    title = b"caf\xc3\xa9 \x00\r\n\xff end"
    entry_id = command(client, "imgscout.add", "idx", 9, title)
    assert command(client, "imgscout.lookup", "idx", entry_id) == title
    command(client, "imgscout.sync", "idx")
    assert command(client, "imgscout.query", "idx", 9, 0) == [[title, entry_id, 0]]
    assert client.hget(f"idx:{entry_id}", "title") == title


def test_add_writes_the_title_hash_and_del_removes_it(client: redis.Redis) -> None:
    entry_id = command(client, "imgscout.add", "idx", 5, "sunset.jpg")
    assert client.hgetall(f"idx:{entry_id}") == {b"title": b"sunset.jpg"}
    assert command(client, "imgscout.del", "idx", entry_id) == b"OK"
    assert client.exists(f"idx:{entry_id}") == 0


def test_title_hash_never_clobbers_a_value_of_another_type(client: redis.Redis) -> None:
    client.set("idx:1", "user data")
    assert command(client, "imgscout.add", "idx", 5, "t") == 1
    command(client, "imgscout.del", "idx", 1)
    assert client.get("idx:1") == b"user data"


def test_madd_returns_ids_in_order(client: redis.Redis) -> None:
    command(client, "imgscout.add", "idx", 1, "one")
    assert command(client, "imgscout.madd", "idx", 2, "two", "0x3", "three", 4, "four") == [
        2,
        3,
        4,
    ]
    assert [command(client, "imgscout.lookup", "idx", i) for i in (2, 3, 4)] == [
        b"two",
        b"three",
        b"four",
    ]
    assert client.hget("idx:3", "title") == b"three"


def test_madd_is_all_or_none(client: redis.Redis) -> None:
    command(client, "imgscout.add", "idx", 1, "one")
    assert error_of(client, "imgscout.madd", "idx", 2, "two", "junk", "x") == "invalid hash value"
    assert info(client, "idx")["pending"] == 1
    assert command(client, "imgscout.lookup", "idx", 2) is None
    assert client.exists("idx:2") == 0
    # A failed madd on a missing key leaves no key behind.
    assert error_of(client, "imgscout.madd", "fresh", 1, "a", -1, "b") == "invalid hash value"
    assert client.exists("fresh") == 0


def test_sync_moves_pending_into_the_index(client: redis.Redis) -> None:
    command(client, "imgscout.madd", "idx", 1, "a", 3, "b")
    assert command(client, "imgscout.size", "idx") == 0
    assert command(client, "imgscout.query", "idx", 1, 64) == []
    assert command(client, "imgscout.sync", "idx") == b"OK"
    assert command(client, "imgscout.size", "idx") == 2
    assert command(client, "imgscout.query", "idx", 1, 64) == [[b"a", 1, 0], [b"b", 2, 1]]
    assert command(client, "imgscout.sync", "missing") == b"OK"
    assert client.exists("missing") == 0


def test_query_orders_by_distance_then_id_and_limits(client: redis.Redis) -> None:
    command(client, "imgscout.madd", "idx", 0b111, "d3", 0b1, "d1a", 0b10, "d1b", 0, "d0")
    command(client, "imgscout.sync", "idx")
    assert command(client, "imgscout.query", "idx", 0, 2) == [
        [b"d0", 4, 0],
        [b"d1a", 2, 1],
        [b"d1b", 3, 1],
    ]
    assert command(client, "imgscout.query", "idx", 0, 64, "LIMIT", 2) == [
        [b"d0", 4, 0],
        [b"d1a", 2, 1],
    ]
    assert command(client, "imgscout.query", "idx", 0, 64, "limit", 0) == []
    assert len(command(client, "imgscout.query", "idx", 0, 64, "LIMIT", 10**30)) == 4


@pytest.mark.parametrize(
    ("radius", "expected"),
    [("1", 2), ("1.9", 2), ("5.000000", 3), ("2.", 3), (".5", 1), ("0", 1), ("65", 4)],
)
def test_radius_accepts_decimals_and_drops_the_fraction(
    client: redis.Redis, radius: str, expected: int
) -> None:
    command(client, "imgscout.madd", "idx", 0, "a", 1, "b", 3, "c", 2**64 - 1, "d")
    command(client, "imgscout.sync", "idx")
    assert len(command(client, "imgscout.query", "idx", 0, radius)) == expected


def test_radius_above_64_acts_as_64(client: redis.Redis) -> None:
    command(client, "imgscout.madd", "idx", 0, "a", 2**64 - 1, "b")
    command(client, "imgscout.sync", "idx")
    for radius in (64, 65, 1000, "99999999999999999999999"):
        assert command(client, "imgscout.query", "idx", 0, radius) == [[b"a", 1, 0], [b"b", 2, 64]]


def test_knn_returns_the_k_nearest(client: redis.Redis) -> None:
    command(client, "imgscout.madd", "idx", 0b1111, "far", 0b1, "near", 0b11, "mid")
    command(client, "imgscout.sync", "idx")
    assert command(client, "imgscout.knn", "idx", 0, 2) == [[b"near", 2, 1], [b"mid", 3, 2]]
    assert command(client, "imgscout.knn", "idx", 0, 0) == []
    assert len(command(client, "imgscout.knn", "idx", 0, 100)) == 3
    assert command(client, "imgscout.knn", "missing", 0, 3) == []


def test_pairs_is_the_exact_self_join(client: redis.Redis) -> None:
    rng = random.Random(11)
    hashes = [rng.getrandbits(64) for _ in range(40)]
    hashes += [h ^ (1 << rng.randrange(64)) ^ (1 << rng.randrange(64)) for h in hashes[:25]]
    for h in hashes:
        command(client, "imgscout.add", "idx", h, "t")
    assert command(client, "imgscout.pairs", "idx", 64) == [], "pending entries are not joined"
    command(client, "imgscout.sync", "idx")
    # A pending copy of the first hash stays out of the join until the next sync.
    command(client, "imgscout.add", "idx", hashes[0], "pending copy")
    indexed = dict(enumerate(hashes, start=1))
    for radius in (0, 2, 5, 30, 64):
        got = command(client, "imgscout.pairs", "idx", radius)
        assert got == as_reply(pairs_within(indexed, radius)), radius
    assert len(command(client, "imgscout.pairs", "idx", 64)) == 65 * 64 // 2
    assert command(client, "imgscout.pairs", "missing", 3) == []


def test_entries_lists_indexed_by_id_then_pending(client: redis.Redis) -> None:
    command(client, "imgscout.add", "idx", 2**64 - 1, "big", 5)
    command(client, "imgscout.add", "idx", 7, "seven", 3)
    command(client, "imgscout.sync", "idx")
    command(client, "imgscout.add", "idx", "0x10", "pending\x00title")
    assert command(client, "imgscout.entries", "idx") == [
        [3, b"7", b"seven", 0],
        [5, b"18446744073709551615", b"big", 0],
        [6, b"16", b"pending\x00title", 1],
    ]
    assert command(client, "imgscout.entries", "missing") == []


def test_lookup_finds_pending_and_indexed_and_nil_otherwise(client: redis.Redis) -> None:
    command(client, "imgscout.add", "idx", 1, "indexed")
    command(client, "imgscout.sync", "idx")
    command(client, "imgscout.add", "idx", 2, "pending")
    assert command(client, "imgscout.lookup", "idx", 1) == b"indexed"
    assert command(client, "imgscout.lookup", "idx", 2) == b"pending"
    assert command(client, "imgscout.lookup", "idx", 3) is None
    assert command(client, "imgscout.lookup", "idx", MAX_ID) is None
    assert command(client, "imgscout.lookup", "missing", 1) is None


def test_size_counts_indexed_only(client: redis.Redis) -> None:
    assert command(client, "imgscout.size", "missing") == 0
    command(client, "imgscout.madd", "idx", 1, "a", 2, "b")
    assert command(client, "imgscout.size", "idx") == 0
    command(client, "imgscout.sync", "idx")
    command(client, "imgscout.add", "idx", 3, "c")
    assert command(client, "imgscout.size", "idx") == 2


def test_del_works_on_indexed_and_pending_entries(client: redis.Redis) -> None:
    command(client, "imgscout.madd", "idx", 1, "a", 2, "b")
    command(client, "imgscout.sync", "idx")
    command(client, "imgscout.add", "idx", 3, "c")
    assert command(client, "imgscout.del", "idx", 1) == b"OK"
    assert command(client, "imgscout.del", "idx", 3) == b"OK"
    # The old module let deleted pending entries come back at the next sync.
    command(client, "imgscout.sync", "idx")
    assert command(client, "imgscout.query", "idx", 0, 64) == [[b"b", 2, 1]]
    assert command(client, "imgscout.lookup", "idx", 3) is None
    assert error_of(client, "imgscout.del", "idx", 3) == "no such id: 3"
    assert error_of(client, "imgscout.del", "missing", 1) == "no such id: 1"


def test_info_reports_the_cores_figures_in_order(client: redis.Redis) -> None:
    command(client, "imgscout.madd", "idx", 1, "a", 2, "b")
    command(client, "imgscout.sync", "idx")
    command(client, "imgscout.add", "idx", 3, "c")
    figures = info(client, "idx")
    assert list(figures)[:6] == [
        "entries",
        "pending",
        "next_id",
        "sync_threshold",
        "bits",
        "memory_bytes",
    ]
    assert figures["bits"] == 64
    assert figures["entries"] == 2
    assert figures["pending"] == 1
    assert figures["next_id"] == 4
    assert figures["sync_threshold"] == 500
    assert isinstance(figures["memory_bytes"], int)
    assert figures["memory_bytes"] > 0


def test_info_of_a_missing_key_is_an_empty_index(client: redis.Redis) -> None:
    figures = info(client, "missing")
    assert (figures["entries"], figures["pending"], figures["next_id"]) == (0, 0, 1)
    assert client.exists("missing") == 0


def test_info_reply_shape_per_protocol(redis_server: RedisServer) -> None:
    resp2 = redis_server.client(protocol=2)
    resp3 = redis_server.client(protocol=3)
    resp2.flushall()
    resp2.execute_command("imgscout.add", "idx", 1, "a")
    assert isinstance(resp2.execute_command("imgscout.info", "idx"), list)
    pairs = len(resp3.execute_command("imgscout.info", "idx"))
    assert pairs >= 5
    assert raw_reply(redis_server.host, redis_server.port, "imgscout.info", "idx") == b"*%d" % (
        2 * pairs
    )
    assert (
        raw_reply(redis_server.host, redis_server.port, "imgscout.info", "idx", protocol=3)
        == b"%%%d" % pairs
    )
    assert raw_reply(redis_server.host, redis_server.port, "imgscout.lookup", "idx", 9) == b"$-1"
    assert (
        raw_reply(redis_server.host, redis_server.port, "imgscout.lookup", "idx", 9, protocol=3)
        == b"_"
    )


def test_config_sets_threshold_and_counter_and_creates_the_key(client: redis.Redis) -> None:
    assert command(client, "imgscout.config", "idx") == b"OK"
    assert client.type("idx") == b"imgscoutx"
    assert command(client, "imgscout.config", "idx", "SYNC_THRESHOLD", 3, "next_id", 100) == b"OK"
    figures = info(client, "idx")
    assert (figures["sync_threshold"], figures["next_id"]) == (3, 100)
    assert command(client, "imgscout.madd", "idx", 1, "a", 2, "b") == [100, 101]
    assert command(client, "imgscout.size", "idx") == 0
    command(client, "imgscout.add", "idx", 3, "c")
    assert command(client, "imgscout.size", "idx") == 3  # the threshold synced automatically
    command(client, "imgscout.config", "idx", "NEXT_ID", 5)
    assert info(client, "idx")["next_id"] == 103  # never moves back
    command(client, "imgscout.add", "idx", 4, "d")
    command(client, "imgscout.add", "idx", 5, "e")
    command(client, "imgscout.config", "idx", "SYNC_THRESHOLD", 2)
    assert info(client, "idx")["pending"] == 0  # lowering it below the queue syncs now
    command(client, "imgscout.config", "idx", "NEXT_ID", MAX_ID + 1)
    assert (
        error_of(client, "imgscout.add", "idx", 1, "x")
        == "automatic ids exhausted; pass an explicit id"
    )
    assert (
        error_of(client, "imgscout.madd", "idx", 1, "x")
        == "automatic ids exhausted; pass an explicit id"
    )


def test_random_workload_matches_the_reference(client: redis.Redis) -> None:
    rng = random.Random(3)
    model = ReferenceIndex()
    client.execute_command("imgscout.config", "idx", "SYNC_THRESHOLD", 7)
    model.set_sync_threshold(7)
    run_random_workload(client, "idx", model, rng, 400)
    assert_same_state(client, "idx", model)
    command(client, "imgscout.sync", "idx")
    model.sync()
    assert_same_state(client, "idx", model)


# --- errors --------------------------------------------------------------------------------

BAD_HASHES = ["", "-1", "abc", "18446744073709551616", "0x", "0x1g", "0x11111111111111111", " 1"]


@pytest.mark.parametrize("bad", BAD_HASHES)
def test_invalid_hash_value_everywhere(client: redis.Redis, bad: str) -> None:
    command(client, "imgscout.add", "idx", 1, "ok")
    for args in (
        ("imgscout.add", "idx", bad, "t"),
        ("imgscout.madd", "idx", 1, "t", bad, "u"),
        ("imgscout.query", "idx", bad, 3),
        ("imgscout.knn", "idx", bad, 3),
    ):
        assert error_of(client, *args) == "invalid hash value", args


@pytest.mark.parametrize("bad", ["-1", "abc", "", "1e3", "1.2.3", ".", "-0.5", "inf", " 3"])
def test_invalid_radius(client: redis.Redis, bad: str) -> None:
    assert error_of(client, "imgscout.query", "idx", 1, bad) == "invalid radius"


@pytest.mark.parametrize("bad", ["-1", "abc", "", "9223372036854775808", "1.5", "+3", "0x10"])
def test_invalid_id(client: redis.Redis, bad: str) -> None:
    command(client, "imgscout.add", "idx", 1, "t")
    assert error_of(client, "imgscout.add", "idx", 1, "t", bad) == "invalid id"
    assert error_of(client, "imgscout.lookup", "idx", bad) == "invalid id"
    assert error_of(client, "imgscout.del", "idx", bad) == "invalid id"
    # NEXT_ID may be one past the largest id (the counter is then used up).
    bad_next_id = "9223372036854775809" if bad == "9223372036854775808" else bad
    assert error_of(client, "imgscout.config", "idx", "NEXT_ID", bad_next_id) == "invalid id"


def test_duplicate_id(client: redis.Redis) -> None:
    command(client, "imgscout.add", "idx", 1, "t", 5)
    assert error_of(client, "imgscout.add", "idx", 2, "u", 5) == "id already exists: 5"
    command(client, "imgscout.sync", "idx")
    assert error_of(client, "imgscout.add", "idx", 2, "u", 5) == "id already exists: 5"
    assert command(client, "imgscout.lookup", "idx", 5) == b"t"


@pytest.mark.parametrize("bad", ["-1", "x", "", "1.5"])
def test_invalid_k(client: redis.Redis, bad: str) -> None:
    assert error_of(client, "imgscout.knn", "idx", 1, bad) == "invalid k"


@pytest.mark.parametrize("bad", ["-1", "x", "", "2.5"])
def test_invalid_limit(client: redis.Redis, bad: str) -> None:
    assert error_of(client, "imgscout.query", "idx", 1, 3, "LIMIT", bad) == "invalid limit"


@pytest.mark.parametrize("bad", ["0", "-1", "x", "10000001", "1.5"])
def test_invalid_sync_threshold(client: redis.Redis, bad: str) -> None:
    assert error_of(client, "imgscout.config", "idx", "SYNC_THRESHOLD", bad) == (
        "invalid sync threshold"
    )
    assert client.exists("idx") == 0


def test_config_applies_nothing_when_an_option_is_bad(client: redis.Redis) -> None:
    command(client, "imgscout.add", "idx", 1, "t")
    error_of(client, "imgscout.config", "idx", "SYNC_THRESHOLD", 9, "NEXT_ID", "x")
    assert info(client, "idx")["sync_threshold"] == 500


@pytest.mark.parametrize(
    "args",
    [
        ("imgscout.query", "idx", 1, 3, "LIMIT"),
        ("imgscout.query", "idx", 1, 3, "NOPE", 1),
        ("imgscout.query", "idx", 1, 3, "extra"),
        ("imgscout.config", "idx", "SYNC_THRESHOLD"),
        ("imgscout.config", "idx", "BOGUS", 1),
    ],
)
def test_syntax_errors(client: redis.Redis, args: tuple[object, ...]) -> None:
    assert error_of(client, *args) == "syntax error"


@pytest.mark.parametrize(
    "args",
    [
        ("imgscout.add", "idx", 1),
        ("imgscout.add", "idx", 1, "t", 2, "extra"),
        ("imgscout.madd", "idx", 1),
        ("imgscout.madd", "idx", 1, "t", 2),
        ("imgscout.sync",),
        ("imgscout.sync", "idx", "extra"),
        ("imgscout.query", "idx", 1),
        ("imgscout.knn", "idx", 1),
        ("imgscout.knn", "idx", 1, 2, 3),
        ("imgscout.lookup", "idx"),
        ("imgscout.lookup", "idx", 1, 2),
        ("imgscout.size",),
        ("imgscout.size", "idx", "extra"),
        ("imgscout.del", "idx"),
        ("imgscout.del", "idx", 1, 2),
        ("imgscout.info",),
        ("imgscout.info", "idx", "extra"),
        ("imgscout.config",),
        ("imgscout.pairs", "idx"),
        ("imgscout.entries",),
    ],
)
def test_arity_errors(client: redis.Redis, args: tuple[object, ...]) -> None:
    name = str(args[0])
    assert error_of(client, *args) == f"wrong number of arguments for '{name}' command"


@pytest.mark.parametrize(
    "args",
    [
        ("imgscout.add", "s", 1, "t"),
        ("imgscout.madd", "s", 1, "t"),
        ("imgscout.sync", "s"),
        ("imgscout.query", "s", 1, 3),
        ("imgscout.knn", "s", 1, 3),
        ("imgscout.lookup", "s", 1),
        ("imgscout.size", "s"),
        ("imgscout.del", "s", 1),
        ("imgscout.info", "s"),
        ("imgscout.config", "s", "SYNC_THRESHOLD", 3),
        ("imgscout.pairs", "s", 3),
        ("imgscout.entries", "s"),
    ],
)
def test_wrongtype(client: redis.Redis, args: tuple[object, ...]) -> None:
    client.set("s", "a string")
    assert error_of(client, *args).startswith("WRONGTYPE ")
    assert client.get("s") == b"a string"


def test_commands_on_another_type_in_the_title_hash_namespace(client: redis.Redis) -> None:
    client.hset("idx", "f", "v")
    assert error_of(client, "imgscout.add", "idx", 1, "t").startswith("WRONGTYPE ")


@PROTOCOLS
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("imgscout.add", "idx", "junk", "t"), b"-ERR invalid hash value"),
        (("imgscout.query", "idx", 1, "-2"), b"-ERR invalid radius"),
        (("imgscout.pairs", "idx", "x"), b"-ERR invalid radius"),
        (("imgscout.lookup", "idx", "-1"), b"-ERR invalid id"),
        (("imgscout.add", "idx", 1, "t", 1), b"-ERR id already exists: 1"),
        (("imgscout.del", "idx", 99), b"-ERR no such id: 99"),
        (("imgscout.knn", "idx", 1, "k"), b"-ERR invalid k"),
        (("imgscout.query", "idx", 1, 2, "LIMIT", "x"), b"-ERR invalid limit"),
        (("imgscout.config", "idx", "SYNC_THRESHOLD", 0), b"-ERR invalid sync threshold"),
        (("imgscout.config", "idx", "WHAT", 0), b"-ERR syntax error"),
        (
            ("imgscout.size",),
            b"-ERR wrong number of arguments for 'imgscout.size' command",
        ),
    ],
)
def test_exact_error_texts(
    redis_server: RedisServer, protocol: int, args: tuple[object, ...], expected: bytes
) -> None:
    setup = redis_server.client()
    setup.flushall()
    setup.execute_command("imgscout.add", "idx", 1, "t", 1)
    assert raw_reply(redis_server.host, redis_server.port, *args, protocol=protocol) == expected  # type: ignore[arg-type]


def test_exhausted_ids_exact_text(redis_server: RedisServer) -> None:
    setup = redis_server.client()
    setup.flushall()
    setup.execute_command("imgscout.config", "idx", "NEXT_ID", MAX_ID + 1)
    reply = raw_reply(redis_server.host, redis_server.port, "imgscout.add", "idx", 1, "t")
    assert reply == b"-ERR automatic ids exhausted; pass an explicit id"


@PROTOCOLS
def test_used_up_id_counter_is_reported_unsigned(redis_server: RedisServer, protocol: int) -> None:
    """next_id = 2**63 does not fit a Redis integer: a RESP3 big number, a RESP2 bulk string."""
    client = redis_server.client(protocol=protocol)
    client.flushall()
    client.execute_command("imgscout.config", "idx", "NEXT_ID", MAX_ID + 1)
    assert int(info(client, "idx")["next_id"]) == MAX_ID + 1  # type: ignore[call-overload]
    assert int(info(client, "idx")["entries"]) == 0  # type: ignore[call-overload]


# --- command table -------------------------------------------------------------------------

COMMAND_FLAGS = {
    "imgscout.add": ({"write", "denyoom"}, -4),
    "imgscout.madd": ({"write", "denyoom"}, -4),
    "imgscout.sync": ({"write", "denyoom"}, 2),
    "imgscout.config": ({"write", "denyoom"}, -2),
    "imgscout.del": ({"write"}, 3),
    "imgscout.query": ({"readonly"}, -4),
    "imgscout.knn": ({"readonly"}, 4),
    "imgscout.info": ({"readonly"}, 2),
    "imgscout.lookup": ({"readonly", "fast"}, 3),
    "imgscout.size": ({"readonly", "fast"}, 2),
    "imgscout.pairs": ({"readonly"}, -3),
    "imgscout.entries": ({"readonly"}, -2),
}


@pytest.mark.parametrize("name", sorted(COMMAND_FLAGS))
def test_command_table_flags_arity_and_single_key(redis_server: RedisServer, name: str) -> None:
    client = redis_server.client(protocol=2)
    entry = client.execute_command("COMMAND", "INFO", name)[name]
    expected_flags, expected_arity = COMMAND_FLAGS[name]
    assert entry["arity"] == expected_arity
    assert set(entry["flags"]) - {"module"} == expected_flags
    assert (entry["first_key_pos"], entry["last_key_pos"], entry["step_count"]) == (1, 1, 1)
    (key_spec,) = [as_dict(spec) for spec in entry["key_specifications"]]
    assert key_spec[b"begin_search"] == {b"type": b"index", b"spec": {b"index": 1}}
    assert key_spec[b"find_keys"][b"spec"] == {b"lastkey": 0, b"keystep": 1, b"limit": 0}
    access = {b"RO", b"RW"} & set(key_spec[b"flags"])
    assert access == ({b"RW"} if b"write" in str(expected_flags).encode() else {b"RO"})


@pytest.mark.parametrize(
    "args",
    [
        ("imgscout.add", "{tag}idx", "123", "some title", "7"),
        ("imgscout.madd", "{tag}idx", "1", "a", "2", "b", "3", "c"),
        ("imgscout.query", "{tag}idx", "1", "3", "LIMIT", "2"),
        ("imgscout.config", "{tag}idx", "SYNC_THRESHOLD", "3", "NEXT_ID", "9"),
    ],
)
def test_only_argument_one_is_a_key(redis_server: RedisServer, args: tuple[str, ...]) -> None:
    """The old module declared every argument a key: CROSSSLOT on any cluster."""
    client = redis_server.client(protocol=2)
    assert client.command_getkeys(*args) == ["{tag}idx"]


# --- the old module's README example, through redis-cli and redis-py -----------------------


def test_old_readme_example_with_redis_cli(redis_server: RedisServer) -> None:
    # Debian's redis-server package brings redis-cli; the cluster fixtures need it too.
    cli = shutil.which("redis-cli")
    assert cli is not None, "redis-cli is not installed"
    redis_server.client().flushall()

    def run(*args: str) -> str:
        done = subprocess.run(
            [cli, "-h", redis_server.host, "-p", str(redis_server.port), *args],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        )
        return done.stdout.strip()

    assert run("imgscout.add", "mykey", "12345678901234567890", "cat.jpg") == "1"
    assert run("imgscout.add", "mykey", "12345678901234567891", "cat-copy.jpg") == "2"
    assert run("imgscout.add", "mykey", "42", "other.png") == "3"
    assert run("imgscout.sync", "mykey") == "OK"
    assert run("imgscout.query", "mykey", "12345678901234567890", "5.000000").splitlines() == [
        "cat.jpg",
        "1",
        "0",
        "cat-copy.jpg",
        "2",
        "1",
    ]
    assert run("imgscout.lookup", "mykey", "3") == "other.png"
    assert run("imgscout.lookup", "mykey", "77") == ""
    assert run("imgscout.size", "mykey") == "3"
    assert run("imgscout.del", "mykey", "2") == "OK"
    assert run("imgscout.size", "mykey") == "2"
    assert run("hget", "mykey:1", "title") == "cat.jpg"
    assert run("imgscout.add", "mykey", "nonsense", "x") == "ERR invalid hash value"
    assert run("-3", "imgscout.info", "mykey").splitlines()[:2] == ["entries 2", "pending 0"]


@PROTOCOLS
def test_old_readme_example_with_redis_py(redis_server: RedisServer, protocol: int) -> None:
    client = redis_server.client(protocol=protocol, decode_responses=True)
    client.flushall()
    assert client.execute_command("imgscout.add", "mykey", 12345678901234567890, "cat.jpg") == 1
    assert client.execute_command("imgscout.add", "mykey", 12345678901234567891, "copy.jpg") == 2
    assert client.execute_command("imgscout.sync", "mykey") == "OK"
    assert client.execute_command("imgscout.query", "mykey", 12345678901234567890, 5.0) == [
        ["cat.jpg", 1, 0],
        ["copy.jpg", 2, 1],
    ]
    assert client.execute_command("imgscout.lookup", "mykey", 2) == "copy.jpg"
    assert client.execute_command("imgscout.size", "mykey") == 2
    assert client.execute_command("imgscout.del", "mykey", 1) == "OK"
    assert client.execute_command("imgscout.size", "mykey") == 1


# --- module arguments ----------------------------------------------------------------------


def test_module_argument_sync_threshold(redis_server_factory: ServerFactory) -> None:
    server = redis_server_factory(module_args=("SYNC_THRESHOLD", "2"))
    client = server.client()
    client.execute_command("imgscout.add", "idx", 1, "a")
    assert client.execute_command("imgscout.size", "idx") == 0
    client.execute_command("imgscout.add", "idx", 2, "b")
    assert client.execute_command("imgscout.size", "idx") == 2
    assert info(client, "idx")["sync_threshold"] == 2


def test_module_argument_title_hashes_no(redis_server_factory: ServerFactory) -> None:
    server = redis_server_factory(module_args=("TITLE_HASHES", "no"))
    client = server.client()
    client.execute_command("imgscout.add", "idx", 1, "a")
    assert client.exists("idx:1") == 0
    assert client.execute_command("imgscout.lookup", "idx", 1) == b"a"


@pytest.mark.parametrize(
    ("module_args", "logged"),
    [
        (("SYNC_THRESHOLD", "0"), "SYNC_THRESHOLD must be an integer"),
        (("SYNC_THRESHOLD", "lots"), "SYNC_THRESHOLD must be an integer"),
        (("SYNC_THRESHOLD",), "module argument SYNC_THRESHOLD needs a value"),
        (("TITLE_HASHES", "maybe"), "TITLE_HASHES must be yes or no"),
        (("COLOUR", "blue"), "unknown module argument 'COLOUR'"),
        (("MAX_REPLY_ROWS", "0"), "MAX_REPLY_ROWS must be an integer in 1..=100000000"),
        (("MAX_REPLY_ROWS", "-5"), "MAX_REPLY_ROWS must be an integer"),
        (("MAX_REPLY_ROWS", "100000001"), "MAX_REPLY_ROWS must be an integer"),
        (("WORKER_THREADS", "65"), "WORKER_THREADS must be an integer in 0..=64"),
        (("WORKER_THREADS", "two"), "WORKER_THREADS must be an integer"),
    ],
)
def test_bad_module_arguments_fail_the_load_with_a_log_line(
    redis_server_factory: ServerFactory, module_args: tuple[str, ...], logged: str
) -> None:
    server = redis_server_factory(module_args=module_args, start=False)
    with pytest.raises(RedisStartError):
        server.start()
    assert "imgscout: cannot load: " + logged in server.log()


def test_module_load_and_unload_at_runtime(
    redis_server_factory: ServerFactory, module_path: object
) -> None:
    server = redis_server_factory("--enable-module-command", "yes", load_module=False)
    client = server.client()
    assert client.execute_command("MODULE", "LOAD", str(module_path), "SYNC_THRESHOLD", "9") in (
        b"OK",
        True,
    )
    names = [entry[1] for entry in client.execute_command("MODULE", "LIST")]
    assert b"imgscout" in names
    client.execute_command("imgscout.add", "idx", 1, "a")
    assert info(client, "idx")["sync_threshold"] == 9


def test_cluster_node_writes_title_hashes_only_in_the_index_keys_slot(
    redis_server_factory: ServerFactory,
) -> None:
    """A node never writes a key of another slot: with a hash tag the title hash shares the
    index key's slot and is written; without one it would land elsewhere and is skipped."""
    # The bus port defaults to port + 10000, past 65535 for the high ports the kernel hands out.
    server = redis_server_factory("--cluster-enabled", "yes", "--cluster-port", str(free_port()))
    client = server.client()
    client.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
    deadline = time.monotonic() + 20
    while client.cluster("INFO")["cluster_state"] != "ok":
        assert time.monotonic() < deadline, "single-node cluster never became ok"
        time.sleep(0.05)
    assert client.cluster("KEYSLOT", "plain") != client.cluster("KEYSLOT", "plain:1")
    assert client.execute_command("imgscout.add", "plain", 1, "untagged") == 1
    assert client.execute_command("imgscout.add", "{photos}", 2, "tagged") == 1
    assert client.exists("plain:1") == 0
    assert client.hget("{photos}:1", "title") == b"tagged"
    assert client.execute_command("imgscout.lookup", "plain", 1) == b"untagged"
    assert client.execute_command("imgscout.del", "{photos}", 1) == b"OK"
    assert client.exists("{photos}:1") == 0


def test_writes_fire_module_keyspace_events(redis_server: RedisServer) -> None:
    client = redis_server.client()
    client.flushall()
    client.config_set("notify-keyspace-events", "Kd")
    try:
        pubsub = client.pubsub()
        pubsub.psubscribe("__keyspace@0__:idx")
        assert pubsub.get_message(timeout=5)["type"] == "psubscribe"
        client.execute_command("imgscout.add", "idx", 1, "a")
        client.execute_command("imgscout.madd", "idx", 2, "b")
        client.execute_command("imgscout.sync", "idx")
        client.execute_command("imgscout.del", "idx", 1)
        client.execute_command("imgscout.config", "idx", "SYNC_THRESHOLD", 9)
        events = []
        while (message := pubsub.get_message(timeout=2)) is not None:
            events.append(message["data"])
        assert events == [
            b"imgscout.add",
            b"imgscout.madd",
            b"imgscout.sync",
            b"imgscout.del",
            b"imgscout.config",
        ]
        pubsub.close()
    finally:
        client.config_set("notify-keyspace-events", "")


def test_commands_inside_multi_exec(client: redis.Redis) -> None:
    pipe = client.pipeline(transaction=True)
    pipe.execute_command("imgscout.add", "idx", 1, "a")
    pipe.execute_command("imgscout.madd", "idx", 2, "b", 3, "c")
    pipe.execute_command("imgscout.sync", "idx")
    pipe.execute_command("imgscout.query", "idx", 1, 1)
    assert pipe.execute() == [1, [2, 3], b"OK", [[b"a", 1, 0], [b"c", 3, 1]]]


# --- batch commands: madd IDS, mlookup, mquery, mknn --------------------------------------------


def test_madd_with_ids_is_all_or_nothing(client: redis.Redis) -> None:
    assert command(client, "imgscout.madd", "idx", "IDS", 1, "a", 10, 2, "b", 20) == [10, 20]
    assert error_of(client, "imgscout.madd", "idx", "ids", 3, "c", 30, 4, "d", 10) == (
        "id already exists: 10"
    )
    assert error_of(client, "imgscout.madd", "idx", "IDS", 3, "c", 31, 4, "d", 31) == (
        "id already exists: 31"
    )
    assert command(client, "imgscout.mlookup", "idx", 30, 31) == [None, None]
    assert error_of(client, "imgscout.madd", "idx", "IDS", 3, "c", "x") == "invalid id"
    assert error_of(client, "imgscout.madd", "idx", "IDS", "zz", "c", 5) == "invalid hash value"
    for arity in (("imgscout.madd", "idx", "IDS"), ("imgscout.madd", "idx", "IDS", 1, "a")):
        assert "wrong number of arguments" in error_of(client, *arity)
    assert command(client, "imgscout.sync", "idx") in (b"OK", "OK", True)
    assert command(client, "imgscout.mlookup", "idx", 20, 99, 10) == [b"b", None, b"a"]
    assert command(client, "imgscout.mlookup", "missing", 1) == [None]
    assert error_of(client, "imgscout.mlookup", "idx", 1, "-2") == "invalid id"


def test_mquery_and_mknn_answer_like_query_and_knn(client: redis.Redis) -> None:
    command(client, "imgscout.madd", "idx", 0b0000, "a", 0b0001, "b", 0b0111, "c", 0xFF00, "d")
    command(client, "imgscout.sync", "idx")
    queries = [0, 0b0011, 0xFF00]
    rows = command(client, "imgscout.mquery", "idx", 2, *queries)
    assert rows == [
        [
            x
            for _, entry_id, d in command(client, "imgscout.query", "idx", q, 2)
            for x in (entry_id, d)
        ]
        for q in queries
    ]
    assert rows[0] == [1, 0, 2, 1]
    assert command(client, "imgscout.mquery", "idx", 64, "LIMIT", 1, 0, 0xFF00) == [[1, 0], [4, 0]]
    assert command(client, "imgscout.mknn", "idx", 2, 0b0111, 0xFF01) == [
        [3, 0, 2, 2],
        [4, 1, 2, 8],
    ]
    assert command(client, "imgscout.mknn", "idx", 9, 0)[0][::2] == [1, 2, 3, 4]
    assert command(client, "imgscout.mquery", "missing", 3, 1, 2) == [[], []]
    assert command(client, "imgscout.mknn", "missing", 3, 1) == [[]]
    assert error_of(client, "imgscout.mquery", "idx", "-1", 1) == "invalid radius"
    assert error_of(client, "imgscout.mquery", "idx", 2, 1, "zz") == "invalid hash value"
    assert error_of(client, "imgscout.mquery", "idx", 2, "LIMIT", "x", 1) == "invalid limit"
    assert "wrong number of arguments" in error_of(client, "imgscout.mquery", "idx", 2, "LIMIT", 1)
    assert error_of(client, "imgscout.mknn", "idx", "-1", 1) == "invalid k"


def test_batch_commands_keep_the_reply_cap(redis_server_factory: Any) -> None:
    server = redis_server_factory(module_args=("MAX_REPLY_ROWS", "3"))
    client = server.client()
    command(client, "imgscout.madd", "idx", *[x for i in range(4) for x in (i, f"t{i}")])
    command(client, "imgscout.sync", "idx")
    assert command(client, "imgscout.mquery", "idx", 64, "LIMIT", 1, 0, 1, 2) != []
    for args in (
        ("imgscout.mquery", "idx", 64, 0),
        ("imgscout.mquery", "idx", 1, 0, 1),
        ("imgscout.mknn", "idx", 2, 0, 1),
        ("imgscout.mlookup", "idx", 1, 2, 3, 4),
    ):
        assert error_of(client, *args).startswith("answer has more than 3 rows"), args
