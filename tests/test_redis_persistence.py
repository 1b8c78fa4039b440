"""Persistence of the imgscout type: RDB (SAVE, DEBUG RELOAD), AOF (rewrite without RDB
preamble, plain replay), COPY/RENAME/DUMP/RESTORE, corrupted payloads, MEMORY USAGE."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest
import redis

from tests.support.commands import assert_same_state, digest, info, run_random_workload
from tests.support.reference import ReferenceIndex
from tests.support.server import RedisServer, ServerFactory

DEBUG = ("--enable-debug-command", "yes")


def populated(client: redis.Redis, key: str = "idx", seed: int = 11) -> ReferenceIndex:
    """An index with indexed entries, a pending queue, explicit ids, deletions and a
    per-key threshold; the highest id is deleted so next_id is only in the counter."""
    model = ReferenceIndex()
    client.execute_command("imgscout.config", key, "SYNC_THRESHOLD", 9)
    model.set_sync_threshold(9)
    run_random_workload(client, key, model, random.Random(seed), 300)
    top = max(model.ids())
    client.execute_command("imgscout.del", key, top)
    model.delete(top)
    pending_title = b"pending \x00 entry"
    entry_id = client.execute_command("imgscout.add", key, 0xABCDEF, pending_title)
    assert entry_id == model.add(0xABCDEF, pending_title)
    assert model.pending, "the scenario needs a pending queue to persist"
    assert model.indexed, "the scenario needs indexed entries to persist"
    return model


def assert_title_hashes(client: redis.Redis, key: str, model: ReferenceIndex) -> None:
    for entry_id in model.ids():
        assert client.hget(f"{key}:{entry_id}", "title") == model.lookup(entry_id)


def wait_for(condition: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def aof_rewrite_done(client: redis.Redis) -> bool:
    persistence = client.info("persistence")
    return (
        persistence["aof_rewrite_in_progress"] == 0
        and persistence["aof_rewrite_scheduled"] == 0
        and persistence.get("aof_last_bgrewrite_status", "ok") == "ok"
    )


@pytest.mark.parametrize("protocol", [2, 3], ids=["resp2", "resp3"])
def test_save_and_restart_keep_everything(
    redis_server_factory: ServerFactory, protocol: int
) -> None:
    server = redis_server_factory(*DEBUG)
    client = server.client(protocol=protocol)
    model = populated(client)
    before = digest(client, "idx")
    assert client.save()
    server.restart()
    client = server.client(protocol=protocol)
    assert_same_state(client, "idx", model)
    assert_title_hashes(client, "idx", model)
    assert digest(client, "idx") == before
    # The restored counter and queue keep working as before.
    assert client.execute_command("imgscout.add", "idx", 1, "after") == model.add(1, b"after")
    client.execute_command("imgscout.sync", "idx")
    model.sync()
    assert_same_state(client, "idx", model)


def test_debug_reload_keeps_everything(redis_server_factory: ServerFactory) -> None:
    server = redis_server_factory(*DEBUG)
    client = server.client()
    model = populated(client)
    before = digest(client, "idx")
    assert client.execute_command("DEBUG", "RELOAD") in (b"OK", True)
    assert_same_state(client, "idx", model)
    assert digest(client, "idx") == before


def test_aof_rewrite_without_rdb_preamble_rebuilds_the_same_state(
    redis_server_factory: ServerFactory,
) -> None:
    server = redis_server_factory(*DEBUG, "--appendonly", "yes", "--aof-use-rdb-preamble", "no")
    client = server.client()
    model = populated(client)
    # Make the counter run ahead of every id so only NEXT_ID can restore it.
    ahead = model.next_id + 1000
    client.execute_command("imgscout.config", "idx", "NEXT_ID", ahead)
    model.next_id = ahead
    before = digest(client, "idx")
    client.bgrewriteaof()
    wait_for(lambda: aof_rewrite_done(client))
    base_files = list(Path(server.directory, "appendonlydir").glob("*.base.aof"))
    assert base_files, "the rewrite produced no base file"
    base = b"".join(path.read_bytes() for path in base_files)
    assert b"imgscout.config" in base
    assert b"imgscout.add" in base
    # Writes after the rewrite land in the incremental file.
    assert client.execute_command("imgscout.add", "idx", 77, "late") == model.add(77, b"late")
    server.restart()
    client = server.client()
    assert_same_state(client, "idx", model)
    assert_title_hashes(client, "idx", model)
    assert digest(client, "idx") != before  # the late add, replayed from the incremental file


def test_aof_rewrite_restores_the_digest_exactly(redis_server_factory: ServerFactory) -> None:
    server = redis_server_factory(*DEBUG, "--appendonly", "yes", "--aof-use-rdb-preamble", "no")
    client = server.client()
    model = populated(client, seed=5)
    before = digest(client, "idx")
    client.bgrewriteaof()
    wait_for(lambda: aof_rewrite_done(client))
    server.restart()
    client = server.client()
    assert_same_state(client, "idx", model)
    assert digest(client, "idx") == before


def test_plain_aof_replay_rebuilds_the_same_state(redis_server_factory: ServerFactory) -> None:
    server = redis_server_factory(*DEBUG, "--appendonly", "yes", "--appendfsync", "always")
    client = server.client()
    # No explicit threshold: the key is created with the module default (500) ...
    model = ReferenceIndex()
    run_random_workload(client, "idx", model, random.Random(8), 200)
    entry_id = client.execute_command("imgscout.add", "idx", 5, "tail")
    assert entry_id == model.add(5, b"tail")
    before = digest(client, "idx")
    # ... and replay on a server whose default differs must still give the same queue.
    server.module_options += ["SYNC_THRESHOLD", "2"]
    server.restart()
    client = server.client()
    assert_same_state(client, "idx", model)
    assert digest(client, "idx") == before
    assert info(client, "idx")["pending"] == len(model.pending) > 0


def test_copy_rename_and_dump_restore_keep_the_index_whole(client: redis.Redis) -> None:
    model = populated(client)
    before = digest(client, "idx")
    assert client.copy("idx", "copy")
    assert_same_state(client, "copy", model)
    assert digest(client, "copy") == before
    # The copy is independent of the original.
    client.execute_command("imgscout.add", "copy", 1, "only in copy")
    client.execute_command("imgscout.sync", "copy")
    assert digest(client, "idx") == before
    assert_same_state(client, "idx", model)

    payload = client.dump("idx")
    assert client.restore("restored", 0, payload)
    assert_same_state(client, "restored", model)
    assert digest(client, "restored") == before

    assert client.rename("idx", "renamed")
    assert client.exists("idx") == 0
    assert_same_state(client, "renamed", model)


def test_memory_usage_grows_with_entries(client: redis.Redis) -> None:
    client.execute_command("imgscout.add", "idx", 1, "x")
    small = client.memory_usage("idx")
    pairs = [part for i in range(2000) for part in (i * 7919, f"title-{i}")]
    client.execute_command("imgscout.madd", "idx", *pairs)
    client.execute_command("imgscout.sync", "idx")
    large = client.memory_usage("idx")
    assert small is not None
    assert large is not None
    assert large > small + 2000 * 8  # at least the hashes themselves


def test_large_index_is_freed_lazily_and_server_survives(
    redis_server_factory: ServerFactory,
) -> None:
    """free_effort grows with the entries: Redis frees a large index in the background
    (above its effort cutoff of 64) and a tiny one at once."""
    server = redis_server_factory("--lazyfree-lazy-user-del", "yes")
    client = server.client()

    def lazyfreed() -> int:
        return int(client.info("memory")["lazyfreed_objects"])

    client.execute_command("imgscout.add", "tiny", 1, b"t")
    assert client.delete("tiny") == 1
    assert lazyfreed() == 0
    pairs = [part for i in range(5000) for part in (i, b"t")]
    client.execute_command("imgscout.madd", "idx", *pairs)
    client.execute_command("imgscout.sync", "idx")
    assert client.delete("idx") == 1
    client.execute_command("imgscout.madd", "other", *pairs)
    assert client.unlink("other") == 1
    wait_for(lambda: lazyfreed() == 2)
    assert client.ping()
    assert client.info("memory")["lazyfree_pending_objects"] == 0


# --- corrupted payloads --------------------------------------------------------------------


def crc64(data: bytes) -> int:
    """Redis's CRC-64 (Jones polynomial, reflected), which DUMP payloads end with."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x95AC9329AC4BC9B5 if crc & 1 else 0)
    return crc


def encode_length(length: int) -> bytes:
    if length < 1 << 6:
        return bytes([length])
    if length < 1 << 14:
        return bytes([0x40 | (length >> 8), length & 0xFF])
    if length < 1 << 32:
        return b"\x80" + length.to_bytes(4, "big")
    return b"\x81" + length.to_bytes(8, "big")


def decode_length(data: bytes, at: int) -> tuple[int, int]:
    """(length, position after it) of an uncompressed RDB length."""
    kind = data[at] >> 6
    if kind == 0:
        return data[at] & 0x3F, at + 1
    if kind == 1:
        return ((data[at] & 0x3F) << 8) | data[at + 1], at + 2
    if data[at] == 0x80:
        return int.from_bytes(data[at + 1 : at + 5], "big"), at + 5
    if data[at] == 0x81:
        return int.from_bytes(data[at + 1 : at + 9], "big"), at + 9
    raise AssertionError(f"unexpected encoding byte {data[at]:#x} (compressed?)")


class ModuleDump:
    """A DUMP payload of the module type, split so a test can alter it and re-seal it:
    type byte, 64-bit module id (name + encoding version), string opcode, the index bytes,
    EOF opcode, RDB version and CRC-64."""

    def __init__(self, payload: bytes) -> None:
        assert crc64(payload[:-8]).to_bytes(8, "little") == payload[-8:]
        body, self.rdb_version = payload[:-10], payload[-10:-8]
        assert body[0] == 7, "RDB_TYPE_MODULE_2"
        assert body[1] == 0x81
        self.module_id = int.from_bytes(body[2:10], "big")
        assert body[10] == 5, "RDB_MODULE_OPCODE_STRING"
        length, start = decode_length(body, 11)
        self.index_bytes = body[start : start + length]
        self.trailer = body[start + length :]
        assert self.trailer == b"\x00", "RDB_MODULE_OPCODE_EOF"

    def seal(self, index_bytes: bytes | None = None, encoding_version: int | None = None) -> bytes:
        data = self.index_bytes if index_bytes is None else index_bytes
        module_id = self.module_id
        if encoding_version is not None:
            module_id = (module_id & ~1023) | encoding_version
        body = (
            b"\x07\x81"
            + module_id.to_bytes(8, "big")
            + b"\x05"
            + encode_length(len(data))
            + data
            + self.trailer
            + self.rdb_version
        )
        return body + crc64(body).to_bytes(8, "little")


@pytest.fixture
def sanitizing_server(redis_server_factory: ServerFactory) -> RedisServer:
    return redis_server_factory(*DEBUG, "--sanitize-dump-payload", "yes", "--rdbcompression", "no")


def test_resealed_dump_restores(sanitizing_server: RedisServer) -> None:
    """The re-sealing helper itself is right: an unaltered payload restores."""
    client = sanitizing_server.client()
    model = populated(client)
    dump = ModuleDump(client.dump("idx"))
    assert dump.seal() == client.dump("idx")
    assert client.restore("copy", 0, dump.seal())
    assert_same_state(client, "copy", model)


def corruptions(index_bytes: bytes) -> dict[str, bytes]:
    middle = len(index_bytes) // 2
    flipped = bytearray(index_bytes)
    flipped[middle] ^= 0x5A
    flipped_last = bytearray(index_bytes)
    flipped_last[-1] ^= 0x01
    return {
        "flipped-byte": bytes(flipped),
        "flipped-last-byte": bytes(flipped_last),
        "truncated-index": index_bytes[:middle],
        "empty": b"",
        "foreign": b"this is not an imgscout index at all",
        "doubled": index_bytes + index_bytes,
    }


@pytest.mark.parametrize(
    "kind",
    [
        "flipped-byte",
        "flipped-last-byte",
        "truncated-index",
        "empty",
        "foreign",
        "doubled",
    ],
)
def test_restore_rejects_corrupted_index_bytes(sanitizing_server: RedisServer, kind: str) -> None:
    client = sanitizing_server.client()
    model = populated(client)
    dump = ModuleDump(client.dump("idx"))
    payload = dump.seal(corruptions(dump.index_bytes)[kind])
    with pytest.raises(redis.ResponseError, match="Bad data format"):
        client.restore("bad", 0, payload)
    assert client.exists("bad") == 0
    assert client.ping()
    assert_same_state(client, "idx", model)
    assert "imgscout: rejecting stored index" in sanitizing_server.log()


def test_restore_rejects_a_payload_cut_short(sanitizing_server: RedisServer) -> None:
    """The string length promises more bytes than the payload has: the module's read fails
    with an I/O error, which must fail RESTORE and not abort the server."""
    client = sanitizing_server.client()
    populated(client)
    payload = client.dump("idx")
    body = payload[:-10][: len(payload) // 2]
    rdb_version = payload[-10:-8]
    cut = body + rdb_version
    cut += crc64(cut).to_bytes(8, "little")
    with pytest.raises(redis.ResponseError, match="Bad data format"):
        client.restore("bad", 0, cut)
    assert client.ping()
    assert client.execute_command("imgscout.size", "idx") > 0
    assert "imgscout: short read loading an index" in sanitizing_server.log()


def test_restore_rejects_an_unknown_encoding_version(sanitizing_server: RedisServer) -> None:
    client = sanitizing_server.client()
    populated(client)
    dump = ModuleDump(client.dump("idx"))
    with pytest.raises(redis.ResponseError, match="Bad data format"):
        client.restore("bad", 0, dump.seal(encoding_version=2))
    assert client.ping()
    assert "cannot load encoding version 2" in sanitizing_server.log()


def test_restore_with_a_wrong_checksum_is_rejected_by_redis(client: redis.Redis) -> None:
    client.execute_command("imgscout.add", "idx", 1, "a")
    payload = bytearray(client.dump("idx"))
    payload[12] ^= 0xFF
    with pytest.raises(redis.ResponseError, match="checksum"):
        client.restore("bad", 0, bytes(payload))
    assert client.ping()
