"""Keys of 128- and 256-bit codes on the module: how a key gets its width, how a hash of
another width is refused, answers against brute force, and the width surviving RDB, AOF,
replication, COPY and DUMP/RESTORE (docs/spec.md, "Code widths")."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import redis

import imgscout
from tests.support.commands import aof_commands, digest, info
from tests.support.reference import ReferenceIndex, as_reply
from tests.support.server import RedisServer, ServerFactory
from tests.test_redis_persistence import (
    DEBUG,
    ModuleDump,
    aof_rewrite_done,
    corruptions,
    wait_for,
)
from tests.test_redis_replication import start_replica, wait_until_in_sync

PDQ_TEXT = "ffd8e0c0c0e0f0f800000000000000000000000000000000000000000000000a"


def text_of(value: int, bits: int) -> str:
    return f"{value:0{bits // 4}x}"


def wide_workload(client: redis.Redis, key: str, bits: int, seed: int) -> ReferenceIndex:
    """Codes in clusters (so radii below the width find something), added one by one and in
    batches, some deleted, a pending queue left: the module and the brute-force model side
    by side."""
    rng = random.Random(seed)
    model = ReferenceIndex(7, bits=bits)
    client.execute_command("imgscout.config", key, "BITS", bits, "SYNC_THRESHOLD", 7)
    centers = [rng.getrandbits(bits) for _ in range(5)]

    def near() -> int:
        value = rng.choice(centers)
        for _ in range(rng.randrange(0, bits // 4)):
            value ^= 1 << rng.randrange(bits)
        return value

    for step in range(60):
        choice = rng.random()
        if choice < 0.5:
            value = near()
            title = f"t{step}".encode()
            got = client.execute_command("imgscout.add", key, text_of(value, bits), title)
            assert got == model.add(value, title)
        elif choice < 0.8:
            values = [near() for _ in range(rng.randrange(1, 5))]
            titles = [f"m{step}-{i}".encode() for i in range(len(values))]
            arguments = [a for v, t in zip(values, titles) for a in (text_of(v, bits), t)]
            got = client.execute_command("imgscout.madd", key, *arguments)
            assert list(got) == model.add_many(values, titles)
        elif model.ids():
            victim = rng.choice(model.ids())
            client.execute_command("imgscout.del", key, victim)
            model.delete(victim)
    while not model.pending:
        last = near()
        got = client.execute_command("imgscout.add", key, text_of(last, bits), b"pending")
        assert got == model.add(last, b"pending")
    assert model.pending and model.indexed
    return model


def assert_same_wide_state(
    client: redis.Redis, key: str, model: ReferenceIndex, probes: list[int]
) -> None:
    figures = info(client, key)
    assert figures["bits"] == model.bits
    assert (figures["entries"], figures["pending"]) == (len(model.indexed), len(model.pending))
    assert figures["next_id"] == model.next_id
    entries = [
        (int(row[0]), int(row[1], 16), row[2], bool(row[3]))
        for row in client.execute_command("imgscout.entries", key)
    ]
    assert entries == model.entries()
    for probe in probes:
        text = text_of(probe, model.bits)
        for radius in (0, 8, 31, model.bits // 4, model.bits // 2, model.bits, 1000):
            reply = client.execute_command("imgscout.query", key, text, radius)
            assert reply == as_reply(model.query(probe, radius)), radius
        assert client.execute_command("imgscout.knn", key, text, 4) == as_reply(model.knn(probe, 4))
        rows = client.execute_command("imgscout.mquery", key, 40, text, text)
        expected = [value for _, i, d in model.query(probe, 40) for value in (i, d)]
        assert rows == [expected, expected]
    pairs = client.execute_command("imgscout.pairs", key, model.bits // 4)
    assert pairs == as_reply(model.pairs(model.bits // 4))


def probes_of(model: ReferenceIndex) -> list[int]:
    return [*model.hashes()[:6], 0, 2**model.bits - 1]


@pytest.mark.parametrize("bits", [128, 256])
def test_a_wide_key_answers_as_brute_force(client: redis.Redis, bits: int) -> None:
    model = wide_workload(client, "wide", bits, seed=bits)
    assert_same_wide_state(client, "wide", model, probes_of(model))


def test_the_first_write_gives_a_missing_key_its_width(client: redis.Redis) -> None:
    assert client.execute_command("imgscout.add", "pdq", PDQ_TEXT, "a") == 1
    assert info(client, "pdq")["bits"] == 256
    assert client.execute_command("imgscout.madd", "half", PDQ_TEXT[:32], "a") == [1]
    assert info(client, "half")["bits"] == 128
    # Hex text without a letter is still PDQ text when it has 64 digits.
    assert client.execute_command("imgscout.add", "digits", "0" * 63 + "7", "a") == 1
    assert info(client, "digits")["bits"] == 256
    client.execute_command("imgscout.add", "phash", "ffd8e0c0c0e0f0f8", "a")
    assert info(client, "phash")["bits"] == 64


def test_config_bits_creates_a_key_and_is_fixed_after(client: redis.Redis) -> None:
    client.execute_command("imgscout.config", "k", "BITS", "256")
    assert client.exists("k") == 1
    assert info(client, "k")["bits"] == 256
    # Naming the width the key has is fine (an AOF replays it), another is refused.
    client.execute_command("imgscout.config", "k", "BITS", 256, "SYNC_THRESHOLD", 3)
    with pytest.raises(redis.ResponseError) as refused:
        client.execute_command("imgscout.config", "k", "BITS", 64)
    assert str(refused.value) == (
        "invalid code width: 64 asked, but this index holds 256-bit codes (a width is fixed "
        "when the index is created)"
    )
    assert info(client, "k")["sync_threshold"] == 3
    for bad in ("32", "0", "-256", "256.0", "abc", ""):
        with pytest.raises(redis.ResponseError, match=r"^invalid code width$"):
            client.execute_command("imgscout.config", "new", "BITS", bad)
    assert client.exists("new") == 0


def test_a_hash_of_another_width_is_refused_naming_both(client: redis.Redis) -> None:
    client.execute_command("imgscout.config", "wide", "BITS", 256)
    client.execute_command("imgscout.add", "narrow", 5, "a")
    refused_on_wide = (
        "invalid hash value: '12345' is a 64-bit hash; this index holds 256-bit hashes"
    )
    for command in (
        ("imgscout.add", "wide", "12345", "t"),
        ("imgscout.madd", "wide", PDQ_TEXT, "a", "12345", "b"),
        ("imgscout.query", "wide", "12345", 3),
        ("imgscout.knn", "wide", "12345", 3),
        ("imgscout.mquery", "wide", 3, PDQ_TEXT, "12345"),
        ("imgscout.mknn", "wide", 3, PDQ_TEXT, "12345"),
    ):
        with pytest.raises(redis.ResponseError) as refused:
            client.execute_command(*command)
        assert str(refused.value) == refused_on_wide, command
    # madd is all or none: the valid first entry was not added either.
    assert info(client, "wide")["pending"] == 0
    for command in (
        ("imgscout.add", "narrow", PDQ_TEXT, "t"),
        ("imgscout.query", "narrow", PDQ_TEXT, 3),
    ):
        with pytest.raises(redis.ResponseError, match="is a 256-bit hash; this index holds 64-bit"):
            client.execute_command(*command)
    # Text of no width at all: the plain message.
    for junk in ("f" * 63, "0x", "g" * 64):
        with pytest.raises(redis.ResponseError, match=r"^invalid hash value$"):
            client.execute_command("imgscout.query", "wide", junk, 3)


def test_a_mixed_batch_on_a_missing_key_creates_nothing(client: redis.Redis) -> None:
    with pytest.raises(redis.ResponseError, match="is a 64-bit hash; this index holds 256-bit"):
        client.execute_command("imgscout.madd", "new", PDQ_TEXT, "a", "12", "b")
    assert client.exists("new") == 0
    with pytest.raises(redis.ResponseError, match=r"^invalid hash value$"):
        client.execute_command("imgscout.add", "new", "f" * 48, "a")
    assert client.exists("new") == 0


def test_reads_on_a_missing_key_take_a_hash_of_any_width(client: redis.Redis) -> None:
    for text in (PDQ_TEXT, PDQ_TEXT[:32], "42"):
        assert client.execute_command("imgscout.query", "missing", text, 31) == []
        assert client.execute_command("imgscout.knn", "missing", text, 3) == []
        assert client.execute_command("imgscout.mquery", "missing", 31, text, text) == [[], []]
    with pytest.raises(redis.ResponseError, match=r"^invalid hash value$"):
        client.execute_command("imgscout.mknn", "missing", 3, PDQ_TEXT, "f" * 40)
    assert client.exists("missing") == 0


def test_a_radius_above_64_counts_on_a_wide_key(client: redis.Redis) -> None:
    far = "f" * 64
    client.execute_command("imgscout.madd", "wide", "0" * 64, "zero", "0" * 32 + "f" * 32, "half")
    client.execute_command("imgscout.add", "wide", far, "ones")
    client.execute_command("imgscout.sync", "wide")
    assert client.execute_command("imgscout.query", "wide", "0" * 64, 127) == [[b"zero", 1, 0]]
    assert client.execute_command("imgscout.query", "wide", "0" * 64, 128) == [
        [b"zero", 1, 0],
        [b"half", 2, 128],
    ]
    assert len(client.execute_command("imgscout.query", "wide", "0" * 64, 10**6)) == 3
    assert client.execute_command("imgscout.knn", "wide", far, 1) == [[b"ones", 3, 0]]


# -- persistence and copies ---------------------------------------------------------------------


def test_debug_reload_and_a_restart_keep_the_width(redis_server_factory: ServerFactory) -> None:
    server = redis_server_factory(*DEBUG)
    client = server.client()
    model = wide_workload(client, "wide", 256, seed=3)
    before = digest(client, "wide")
    client.execute_command("DEBUG", "RELOAD")
    assert digest(client, "wide") == before
    client.save()
    server.restart()
    client = server.client()
    assert_same_wide_state(client, "wide", model, probes_of(model))
    assert digest(client, "wide") == before


def test_aof_rewrite_replays_the_width(redis_server_factory: ServerFactory) -> None:
    server = redis_server_factory(*DEBUG, "--appendonly", "yes", "--aof-use-rdb-preamble", "no")
    client = server.client()
    model = wide_workload(client, "wide", 256, seed=4)
    client.execute_command("imgscout.add", "narrow", 7, "a")
    before = digest(client, "wide")
    client.bgrewriteaof()
    wait_for(lambda: aof_rewrite_done(client))
    base = b"".join(
        p.read_bytes() for p in Path(server.directory, "appendonlydir").glob("*.base.aof")
    )
    by_key: dict[bytes, list[list[bytes]]] = {}
    for command in aof_commands(base):
        if command[0].lower().startswith(b"imgscout."):
            by_key.setdefault(command[1], []).append(command)
    assert by_key[b"wide"][0][:4] == [b"imgscout.config", b"wide", b"BITS", b"256"]
    # A 64-bit key rewrites as before wider codes: no BITS, hashes in decimal.
    narrow = by_key[b"narrow"]
    assert not any(b"BITS" in command for command in narrow)
    assert [command[2] for command in narrow if command[0] == b"imgscout.add"] == [b"7"]
    server.restart()
    client = server.client()
    assert_same_wide_state(client, "wide", model, probes_of(model))
    assert digest(client, "wide") == before
    assert info(client, "narrow")["bits"] == 64


def test_plain_aof_replay_after_kill_keeps_the_width(redis_server_factory: ServerFactory) -> None:
    server = redis_server_factory(*DEBUG, "--appendonly", "yes", "--appendfsync", "always")
    client = server.client()
    # Created by its first add, with the module's default threshold...
    client.execute_command("imgscout.add", "auto", PDQ_TEXT, "first")
    model = wide_workload(client, "wide", 256, seed=5)
    before = digest(client, "wide")
    server.kill()
    # ... and replayed on a server whose default differs.
    server.module_options += ["SYNC_THRESHOLD", "2"]
    server.start()
    client = server.client()
    assert_same_wide_state(client, "wide", model, probes_of(model))
    assert digest(client, "wide") == before
    figures = info(client, "auto")
    assert (figures["bits"], figures["pending"], figures["sync_threshold"]) == (256, 1, 500)


def test_copy_and_dump_restore_keep_the_width(client: redis.Redis) -> None:
    model = wide_workload(client, "wide", 128, seed=6)
    assert client.copy("wide", "copied")
    assert client.restore("restored", 0, client.dump("wide"))
    for key in ("copied", "restored"):
        assert_same_wide_state(client, key, model, probes_of(model)[:2])


def test_migrate_moves_a_wide_key_whole(redis_server_factory: ServerFactory) -> None:
    source = redis_server_factory(*DEBUG)
    target = redis_server_factory(*DEBUG)
    source_client = source.client()
    model = wide_workload(source_client, "wide", 256, seed=9)
    before = digest(source_client, "wide")
    source_client.migrate(target.host, target.port, "wide", 0, 5000)
    assert source_client.exists("wide") == 0
    target_client = target.client()
    assert_same_wide_state(target_client, "wide", model, probes_of(model)[:3])
    assert digest(target_client, "wide") == before


@pytest.fixture
def sanitizing_server(redis_server_factory: ServerFactory) -> RedisServer:
    return redis_server_factory(*DEBUG, "--sanitize-dump-payload", "yes", "--rdbcompression", "no")


def test_a_64_bit_payload_is_written_as_before_wider_codes(
    sanitizing_server: RedisServer,
) -> None:
    client = sanitizing_server.client()
    client.execute_command("imgscout.add", "narrow", 7, "a")
    client.execute_command("imgscout.add", "wide", PDQ_TEXT, "a")
    narrow = ModuleDump(client.dump("narrow")).index_bytes
    wide = ModuleDump(client.dump("wide")).index_bytes
    assert narrow[:10] == b"IMGSCOUT\x01\x00"
    assert wide[:10] == b"IMGSCOUT\x02\x00"


@pytest.mark.parametrize("kind", sorted(corruptions(b"0123456789")))
def test_restore_rejects_a_corrupted_wide_payload(
    sanitizing_server: RedisServer, kind: str
) -> None:
    client = sanitizing_server.client()
    model = wide_workload(client, "wide", 256, seed=7)
    dump = ModuleDump(client.dump("wide"))
    with pytest.raises(redis.ResponseError, match="Bad data format"):
        client.restore("bad", 0, dump.seal(corruptions(dump.index_bytes)[kind]))
    assert client.exists("bad") == 0
    assert client.ping()
    assert_same_wide_state(client, "wide", model, probes_of(model)[:2])


def test_a_replica_gets_the_width(redis_server_factory: ServerFactory) -> None:
    replication = (*DEBUG, "--repl-diskless-sync-delay", "0")
    master = redis_server_factory(*replication)
    replica = start_replica(redis_server_factory, master)
    master_client = master.client()
    model = wide_workload(master_client, "wide", 256, seed=8)
    master_client.execute_command("imgscout.add", "auto", PDQ_TEXT[:32], "a")
    wait_until_in_sync(master, replica)
    replica_client = replica.client()
    assert_same_wide_state(replica_client, "wide", model, probes_of(model)[:3])
    assert digest(replica_client, "wide") == digest(master_client, "wide")
    assert info(replica_client, "auto")["bits"] == 128
    late = start_replica(redis_server_factory, master)
    assert digest(late.client(), "wide") == digest(master_client, "wide")


# -- the Python clients -------------------------------------------------------------------------


def test_a_wide_client_creates_its_key_at_its_width(client: redis.Redis) -> None:
    index = imgscout.RedisIndex(client, "pdq", bits=256)
    assert index.bits == 256
    assert client.exists("pdq") == 1
    assert index.info()["bits"] == 256
    sharded = imgscout.ShardedIndex(client, "spdq", shards=3, bits=256)
    assert sharded.bits == 256
    assert all(info(client, key)["bits"] == 256 for key in sharded.keys)
    # A client of the same width on the key is fine; of another, refused up front.
    imgscout.RedisIndex(client, "pdq", bits=256)
    with pytest.raises(imgscout.InvalidArgumentError, match="128 asked, but this index holds 256"):
        imgscout.RedisIndex(client, "pdq", bits=128)
    with pytest.raises(imgscout.InvalidArgumentError, match="invalid code width"):
        imgscout.RedisIndex(client, "x", bits=32)
    # A 64-bit client on a wide key learns it from the server's error.
    with pytest.raises(imgscout.InvalidArgumentError, match="is a 64-bit hash"):
        imgscout.RedisIndex(client, "pdq").query(5, 3)


def test_a_read_only_connection_checks_the_width_it_cannot_create(
    redis_server: RedisServer,
) -> None:
    admin = redis_server.client()
    admin.flushall()
    admin.execute_command("imgscout.config", "pdq", "BITS", 256)
    admin.execute_command("imgscout.add", "narrow", 1, "a")
    rules = ("reset", "on", "nopass", "~*", "+@all", "-imgscout.config")
    admin.execute_command("ACL", "SETUSER", "wide-reader", *rules)
    reader = redis_server.client(username="wide-reader", password="unused")
    try:
        with pytest.raises(redis.exceptions.NoPermissionError):
            reader.execute_command("imgscout.config", "pdq", "BITS", 256)
        assert imgscout.RedisIndex(reader, "pdq", bits=256).query(PDQ_TEXT, 8) == []
        refused = "256 asked, but this index holds 64"
        with pytest.raises(imgscout.InvalidArgumentError, match=refused):
            imgscout.RedisIndex(reader, "narrow", bits=256)
        # A missing key is left missing: nothing to check, nothing created.
        imgscout.RedisIndex(reader, "missing", bits=256)
        assert admin.exists("missing") == 0
    finally:
        reader.close()
        admin.acl_deluser("wide-reader")


def test_clients_agree_with_numpy_at_256_bits(client: redis.Redis) -> None:
    rng = np.random.default_rng(12)
    codes = rng.integers(0, 256, size=(400, 32), dtype=np.uint8)
    codes[200:] = codes[:200] ^ (rng.random((200, 32)) < 0.05).astype(np.uint8)
    queries = codes[rng.choice(400, 20)] ^ (rng.random((20, 32)) < 0.03).astype(np.uint8)
    bits = np.unpackbits(codes, axis=1).astype(np.int32)
    query_bits = np.unpackbits(queries, axis=1).astype(np.int32)
    distances = (query_bits[:, None, :] != bits[None, :, :]).sum(axis=2)
    for index in (
        imgscout.RedisIndex(client, "r", bits=256),
        imgscout.ShardedIndex(client, "s", shards=3, bits=256),
    ):
        ids = index.add_many(codes, [f"t{i}" for i in range(400)])
        index.sync()
        lims, found, found_distances = index.query_arrays(queries, 31)
        for q in range(len(queries)):
            rows = slice(lims[q], lims[q + 1])
            want = {(int(ids[j]), int(distances[q, j])) for j in np.flatnonzero(distances[q] <= 31)}
            assert set(zip(found[rows].tolist(), found_distances[rows].tolist())) == want
        knn_ids, knn_distances = index.knn_arrays(queries, 3)
        assert (knn_distances == np.sort(distances, axis=1)[:, :3]).all()
        assert (
            np.take_along_axis(distances, np.searchsorted(ids, knn_ids), 1) == knn_distances
        ).all()
        entry = index.entries()[0]
        assert entry.hash == codes[0].tobytes().hex()
