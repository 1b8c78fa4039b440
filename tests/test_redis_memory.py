"""Memory accounting: ``MEMORY USAGE`` of an index grows with its entries at a sane cost per
entry, and ``INFO memory``'s ``used_memory`` follows the module's allocations both ways (the
module allocates through the server's allocator, so the server sees and limits them).

The server runs with ``TITLE_HASHES no`` (no ``<key>:<id>`` hashes besides the index) and frees
deleted values at once (Valkey 8+ defaults ``lazyfree-lazy-user-del`` to ``yes``)."""

from __future__ import annotations

import random

import pytest
import redis

from tests.support.commands import info
from tests.support.server import RedisServer, ServerFactory

ENTRIES = 20_000
CHUNK = 1_000
#: Bytes an entry cannot do without: its 64-bit hash and 64-bit id (plus its title's bytes).
ENTRY_FLOOR = 16
#: Fixed overhead per entry allowed on top of twice the payload (tree nodes, id map, vectors
#: grown by doubling).
ENTRY_SLACK = 128


@pytest.fixture
def memory_server(redis_server_factory: ServerFactory) -> RedisServer:
    return redis_server_factory(
        "--lazyfree-lazy-user-del", "no", module_args=("TITLE_HASHES", "no")
    )


@pytest.fixture
def memory_client(memory_server: RedisServer) -> redis.Redis:
    return memory_server.client()


def fill(client: redis.Redis, key: str, title_length: int, rng: random.Random) -> None:
    for _ in range(0, ENTRIES, CHUNK):
        flat = [part for _ in range(CHUNK) for part in (rng.getrandbits(64), b"t" * title_length)]
        client.execute_command("imgscout.madd", key, *flat)
    client.execute_command("imgscout.sync", key)


def used_memory(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


def usage(client: redis.Redis, key: str) -> int:
    value = client.memory_usage(key, samples=0)
    assert value is not None, f"MEMORY USAGE {key}: no such key"
    return int(value)


@pytest.mark.parametrize("title_length", [20, 200])
def test_memory_usage_per_entry_is_sane(memory_client: redis.Redis, title_length: int) -> None:
    rng = random.Random(title_length)
    memory_client.execute_command("imgscout.add", "idx", 1, b"t" * title_length)
    one = usage(memory_client, "idx")
    fill(memory_client, "idx", title_length, rng)
    per_entry = (usage(memory_client, "idx") - one) / ENTRIES
    payload = ENTRY_FLOOR + title_length
    assert payload <= per_entry <= 2 * payload + ENTRY_SLACK, per_entry
    # MEMORY USAGE is the module's own figure plus the key's overhead in the keyspace.
    assert 0 <= usage(memory_client, "idx") - int(info(memory_client, "idx")["memory_bytes"]) < 512


def test_memory_usage_grows_with_entries_and_titles(memory_client: redis.Redis) -> None:
    rng = random.Random(5)
    seen = []
    for _ in range(4):
        flat = [part for _ in range(CHUNK) for part in (rng.getrandbits(64), b"title")]
        memory_client.execute_command("imgscout.madd", "idx", *flat)
        memory_client.execute_command("imgscout.sync", "idx")
        seen.append(usage(memory_client, "idx"))
    assert seen == sorted(seen) and len(set(seen)) == len(seen), seen
    steps = [later - earlier for earlier, later in zip(seen, seen[1:])]
    assert max(steps) < 3 * min(steps), f"uneven growth per {CHUNK} entries: {steps}"

    fill(memory_client, "short", 20, random.Random(1))
    fill(memory_client, "long", 200, random.Random(1))
    per_title_byte = (usage(memory_client, "long") - usage(memory_client, "short")) / (
        ENTRIES * 180
    )
    assert 0.9 <= per_title_byte <= 2.0, per_title_byte


def test_pending_entries_are_counted(memory_client: redis.Redis) -> None:
    memory_client.execute_command("imgscout.config", "idx", "SYNC_THRESHOLD", 10 * ENTRIES)
    empty = usage(memory_client, "idx")
    rng = random.Random(7)
    for _ in range(0, ENTRIES, CHUNK):
        flat = [part for _ in range(CHUNK) for part in (rng.getrandbits(64), b"p" * 40)]
        memory_client.execute_command("imgscout.madd", "idx", *flat)
    assert info(memory_client, "idx")["pending"] == ENTRIES
    per_entry = (usage(memory_client, "idx") - empty) / ENTRIES
    assert ENTRY_FLOOR + 40 <= per_entry <= 2 * (ENTRY_FLOOR + 40) + ENTRY_SLACK, per_entry


def test_used_memory_follows_the_module_allocations(memory_client: redis.Redis) -> None:
    """The index's memory shows in used_memory as it grows, and leaves it on DEL: the module
    allocates with the server's allocator (RedisModule_Alloc), not behind its back."""
    before = used_memory(memory_client)
    fill(memory_client, "idx", 64, random.Random(3))
    grown = used_memory(memory_client) - before
    accounted = usage(memory_client, "idx")
    # jemalloc's size classes round allocations up; libc's malloc_usable_size less so.
    assert 0.8 * accounted <= grown <= 1.6 * accounted, (grown, accounted)
    assert memory_client.delete("idx") == 1
    left = used_memory(memory_client) - before
    assert left < 0.1 * grown, f"{left} of {grown} bytes still used after DEL"


def test_maxmemory_sees_the_index(memory_client: redis.Redis) -> None:
    """With a memory limit just above what the server uses, adds (deny-oom) are refused once
    the index has filled the room: the limit counts the module's memory."""
    memory_client.config_set("maxmemory-policy", "noeviction")
    memory_client.config_set("maxmemory", used_memory(memory_client) + 2_000_000)
    try:
        rng = random.Random(9)
        refused = None
        for _ in range(0, 10 * ENTRIES, CHUNK):
            flat = [part for _ in range(CHUNK) for part in (rng.getrandbits(64), b"m" * 64)]
            try:
                memory_client.execute_command("imgscout.madd", "idx", *flat)
            except redis.exceptions.OutOfMemoryError as error:
                refused = error
                break
        assert refused is not None, "10x the room was added without an OOM refusal"
        assert usage(memory_client, "idx") > 1_000_000
        # Reads still answer under the limit.
        assert memory_client.execute_command("imgscout.size", "idx") >= 0
    finally:
        memory_client.config_set("maxmemory", 0)
