"""Helpers for the Redis module tests: a brute-force reference index, state comparison,
random workloads and a raw RESP client for exact error texts."""

from __future__ import annotations

import random
import socket
from dataclasses import dataclass, field

import redis

MAX_ID = 2**63 - 1
DEFAULT_SYNC_THRESHOLD = 500


def distance(a: int, b: int) -> int:
    return bin(a ^ b).count("1")


@dataclass
class ReferenceIndex:
    """What an imgscout index must answer, computed the slow obvious way."""

    sync_threshold: int = DEFAULT_SYNC_THRESHOLD
    next_id: int = 1
    indexed: dict[int, tuple[int, bytes]] = field(default_factory=dict)
    pending: dict[int, tuple[int, bytes]] = field(default_factory=dict)  # insertion order

    def add(self, hash_value: int, title: bytes, entry_id: int | None = None) -> int:
        if entry_id is None:
            entry_id = self.next_id
        assert not self.contains(entry_id)
        self.pending[entry_id] = (hash_value, title)
        self.next_id = max(self.next_id, entry_id + 1)
        if len(self.pending) >= self.sync_threshold:
            self.sync()
        return entry_id

    def add_many(self, pairs: list[tuple[int, bytes]]) -> list[int]:
        return [self.add(h, t) for h, t in pairs]

    def sync(self) -> None:
        self.indexed.update(self.pending)
        self.pending.clear()

    def delete(self, entry_id: int) -> None:
        if entry_id in self.pending:
            del self.pending[entry_id]
        else:
            del self.indexed[entry_id]

    def set_sync_threshold(self, threshold: int) -> None:
        self.sync_threshold = threshold
        if len(self.pending) >= threshold:
            self.sync()

    def contains(self, entry_id: int) -> bool:
        return entry_id in self.indexed or entry_id in self.pending

    def lookup(self, entry_id: int) -> bytes | None:
        found = self.indexed.get(entry_id) or self.pending.get(entry_id)
        return None if found is None else found[1]

    def _ranked(self, query: int) -> list[list[object]]:
        ranked = sorted(
            (distance(h, query), entry_id, title) for entry_id, (h, title) in self.indexed.items()
        )
        return [[title, entry_id, d] for d, entry_id, title in ranked]

    def query(self, query: int, radius: int, limit: int | None = None) -> list[list[object]]:
        radius = min(radius, 64)
        found = [m for m in self._ranked(query) if m[2] <= radius]  # type: ignore[operator]
        return found if limit is None else found[:limit]

    def knn(self, query: int, k: int) -> list[list[object]]:
        return self._ranked(query)[:k]

    def ids(self) -> list[int]:
        return [*self.indexed, *self.pending]


def info(client: redis.Redis, key: str) -> dict[str, object]:
    """imgscout.info as a dict whatever the protocol (RESP3 map or RESP2 flat array)."""
    reply = client.execute_command("imgscout.info", key)
    if isinstance(reply, list):
        reply = dict(zip(reply[::2], reply[1::2]))
    return {
        (name.decode() if isinstance(name, bytes) else name): value for name, value in reply.items()
    }


def clustered_hashes(rng: random.Random, count: int, centers: int = 8) -> list[int]:
    """Hashes in a few tight clusters, so small-radius queries find something."""
    bases = [rng.getrandbits(64) for _ in range(centers)]
    hashes = []
    for _ in range(count):
        value = rng.choice(bases)
        for _ in range(rng.randint(0, 6)):
            value ^= 1 << rng.randrange(64)
        hashes.append(value)
    return hashes


def random_title(rng: random.Random) -> bytes:
    """Titles with spaces, non-ASCII, NUL and CR/LF bytes: they must be binary-safe."""
    alphabet = b"abc XYZ\x00\r\n\xff\xe9/:"
    return bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))


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
        elif roll < 0.65:
            pairs = [(hashes[(step * 7 + i) % len(hashes)], random_title(rng)) for i in range(5)]
            flat = [part for hash_value, title in pairs for part in (hash_value, title)]
            got = client.execute_command("imgscout.madd", key, *flat)
            assert got == model.add_many(pairs)
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
            assert client.execute_command("imgscout.query", key, probe, radius) == model.query(
                probe, radius
            ), (probe, radius)
        assert client.execute_command("imgscout.query", key, probe, 12, "LIMIT", 3) == model.query(
            probe, 12, 3
        )
        assert client.execute_command("imgscout.knn", key, probe, 5) == model.knn(probe, 5)


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
