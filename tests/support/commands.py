"""Talking to the module's commands in the tests: ``imgscout.info`` as a dict, the value
digest, raw replies for exact error texts, and a random workload checked step by step against
the brute-force model (:class:`~tests.support.reference.ReferenceIndex`, given ``bytes`` titles
as the server returns them)."""

from __future__ import annotations

import random
import socket

import pytest
import redis

from tests.support.hashes import clustered_hashes, random_title
from tests.support.reference import ReferenceIndex, as_reply


def info(client: redis.Redis, key: str) -> dict[str, object]:
    """imgscout.info as a dict whatever the protocol (RESP3 map or RESP2 flat array)."""
    reply = client.execute_command("imgscout.info", key)
    if isinstance(reply, list):
        reply = dict(zip(reply[::2], reply[1::2]))
    return {
        (name.decode() if isinstance(name, bytes) else name): value for name, value in reply.items()
    }


def run_random_workload(
    client: redis.Redis,
    key: str,
    model: ReferenceIndex,
    rng: random.Random,
    operations: int,
) -> None:
    """Random adds (auto and explicit ids), madds, syncs, deletes and threshold changes,
    applied to the server and the model alike; every reply is checked on the way."""
    hashes = clustered_hashes(rng, operations * 3)
    for step in range(operations):
        roll = rng.random()
        if roll < 0.45:
            hash_value, title = hashes[step], random_title(rng)
            if rng.random() < 0.2:
                explicit = rng.randrange(10_000, 20_000)
                if model.contains(explicit):
                    continue
                got = client.execute_command("imgscout.add", key, hash_value, title, explicit)
                assert got == model.add(hash_value, title, explicit)
            else:
                got = client.execute_command("imgscout.add", key, hash_value, title)
                assert got == model.add(hash_value, title)
        elif roll < 0.55:
            pairs = [(hashes[(step * 7 + i) % len(hashes)], random_title(rng)) for i in range(5)]
            flat = [part for hash_value, title in pairs for part in (hash_value, title)]
            got = client.execute_command("imgscout.madd", key, *flat)
            assert got == model.add_many([h for h, _ in pairs], [t for _, t in pairs])
        elif roll < 0.65:
            # Explicit ids, sometimes one already taken: all or nothing on both sides.
            entries = [
                (
                    hashes[(step * 5 + i) % len(hashes)],
                    random_title(rng),
                    rng.randrange(20_000, 20_400),
                )
                for i in range(4)
            ]
            flat = [part for entry in entries for part in entry]
            ids = [entry_id for _, _, entry_id in entries]
            if len(set(ids)) < len(ids) or any(model.contains(i) for i in ids):
                with pytest.raises(redis.ResponseError, match=r"^id already exists: "):
                    client.execute_command("imgscout.madd", key, "IDS", *flat)
            else:
                got = client.execute_command("imgscout.madd", key, "IDS", *flat)
                assert got == model.add_many(
                    [h for h, _, _ in entries], [t for _, t, _ in entries], ids
                )
            titles = client.execute_command("imgscout.mlookup", key, *ids)
            assert titles == [model.lookup(i) for i in ids]
        elif roll < 0.75:
            assert client.execute_command("imgscout.sync", key) in (b"OK", "OK", True)
            model.sync()
        elif roll < 0.92 and model.ids():
            victim = rng.choice(model.ids())
            assert client.execute_command("imgscout.del", key, victim) in (b"OK", "OK", True)
            model.delete(victim)
        elif roll < 0.95:
            threshold = rng.randint(2, 40)
            client.execute_command("imgscout.config", key, "SYNC_THRESHOLD", threshold)
            model.set_sync_threshold(threshold)


def assert_same_state(
    client: redis.Redis, key: str, model: ReferenceIndex, probes: list[int] | None = None
) -> None:
    """Every observable answer of the server's index equals the reference's."""
    figures = info(client, key)
    assert figures["entries"] == len(model.indexed)
    assert figures["pending"] == len(model.pending)
    assert figures["next_id"] == model.next_id
    assert figures["sync_threshold"] == model.sync_threshold
    assert client.execute_command("imgscout.size", key) == len(model.indexed)
    pipe = client.pipeline(transaction=False)
    ids = model.ids()
    for entry_id in ids:
        pipe.execute_command("imgscout.lookup", key, entry_id)
    assert pipe.execute() == [model.lookup(i) for i in ids]
    if probes is None:
        stored = [h for h, _ in [*model.indexed.values(), *model.pending.values()]]
        probes = [*stored[:10], 0, 2**64 - 1, 0x0123456789ABCDEF]
    for probe in probes:
        for radius in (0, 3, 10, 64):
            assert client.execute_command("imgscout.query", key, probe, radius) == as_reply(
                model.query(probe, radius)
            ), (probe, radius)
        assert client.execute_command("imgscout.query", key, probe, 12, "LIMIT", 3) == as_reply(
            model.query(probe, 12, 3)
        )
        assert client.execute_command("imgscout.knn", key, probe, 5) == as_reply(
            model.knn(probe, 5)
        )


def digest(client: redis.Redis, key: str) -> bytes:
    value = client.execute_command("DEBUG", "DIGEST-VALUE", key)
    return value[0] if isinstance(value, list) else value


def raw_reply(host: str, port: int, *args: bytes | str | int, protocol: int = 2) -> bytes:
    """The first line of the server's raw reply, e.g. b"-ERR invalid hash value": redis-py
    strips the ERR prefix, and the protocol fixes the exact text."""

    def encode(parts: tuple[bytes | str | int, ...]) -> bytes:
        out = [f"*{len(parts)}\r\n".encode()]
        for part in parts:
            data = part if isinstance(part, bytes) else str(part).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(data), data))
        return b"".join(out)

    with socket.create_connection((host, port), timeout=10) as sock:
        stream = sock.makefile("rb")
        if protocol == 3:
            sock.sendall(encode(("HELLO", "3")))
            _skip_reply(stream)
        sock.sendall(encode(args))
        return stream.readline().rstrip(b"\r\n")


def _skip_reply(stream: object) -> None:
    """Reads one complete RESP2/RESP3 reply (enough of the grammar for HELLO's map)."""
    line: bytes = stream.readline()  # type: ignore[attr-defined]
    kind, rest = line[:1], line[1:].strip()
    if kind in (b"$", b"="):
        if int(rest) >= 0:
            stream.read(int(rest) + 2)  # type: ignore[attr-defined]
    elif kind in (b"*", b"~", b">"):
        for _ in range(max(int(rest), 0)):
            _skip_reply(stream)
    elif kind == b"%":
        for _ in range(2 * int(rest)):
            _skip_reply(stream)


def aof_commands(data: bytes) -> list[list[bytes]]:
    """The commands of an append-only file, each as its arguments, in file order.

    Reads the RESP arrays of bulk strings that Redis writes (``*<n>`` then ``$<len>`` and the
    bytes); anything else is a malformed file and fails the test."""
    commands: list[list[bytes]] = []
    at = 0

    def line() -> bytes:
        nonlocal at
        end = data.index(b"\r\n", at)
        text, at = data[at:end], end + 2
        return text

    while at < len(data):
        header = line()
        assert header.startswith(b"*"), f"not a command at byte {at}: {header[:20]!r}"
        arguments = []
        for _ in range(int(header[1:])):
            length = line()
            assert length.startswith(b"$"), f"not a bulk string at byte {at}: {length[:20]!r}"
            size = int(length[1:])
            arguments.append(data[at : at + size])
            assert data[at + size : at + size + 2] == b"\r\n"
            at += size + 2
        commands.append(arguments)
    return commands
