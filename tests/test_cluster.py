"""imgscout on a real three-master Redis Cluster (loopback, started by a session fixture):
the module's commands through redis-py's cluster client, title hashes and slots, the sharded
client against a brute-force reference, a node restart with persistence, a slot moved to
another node (MIGRATE: DUMP/RESTORE of the module type) while queries keep answering, and the
equivalence machine run on ShardedIndex."""

from __future__ import annotations

import itertools
import json
import os
import random
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import initialize, rule, run_state_machine_as_test
from redis.cluster import RedisCluster
from redis.crc import key_slot

from imgscout import Index, Match, ShardedIndex, cli
from imgscout._cluster import ClusterTransport
from imgscout.sharded import _WRITE_ATTEMPTS, shard_key
from tests.support.cluster import LocalCluster
from tests.support.commands import raw_reply
from tests.support.hashes import clustered_hashes, unique_key
from tests.support.reference import MAX_ID, ReferenceIndex, as_reply
from tests.support.server import RedisServer
from tests.test_equivalence import SERVER_DEFAULT_THRESHOLD, IndexEquivalence

CLIENT_SETTINGS = [(2, False), (2, True), (3, False), (3, True)]


@pytest.fixture(scope="session")
def cluster(module_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """Three masters made by ``redis-cli --cluster create``; stopped after the session."""
    started = LocalCluster(module_path, lambda: tmp_path_factory.mktemp("cluster-node")).start()
    yield started
    started.stop()


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def cluster_client(cluster: LocalCluster, request: pytest.FixtureRequest) -> Iterator[RedisCluster]:
    connection = cluster.client(protocol=request.param)
    yield connection
    connection.close()


@pytest.fixture(
    params=CLIENT_SETTINGS, ids=lambda p: f"resp{p[0]}-{'decoded' if p[1] else 'bytes'}"
)
def any_cluster_client(
    cluster: LocalCluster, request: pytest.FixtureRequest
) -> Iterator[RedisCluster]:
    protocol, decoded = request.param
    connection = cluster.client(protocol=protocol, decode_responses=decoded)
    yield connection
    connection.close()


def tagged(prefix: str) -> str:
    """A fresh index key with a hash tag, as the README tells cluster users to name them."""
    return "{" + unique_key(prefix) + "}"


def node_holding(cluster: LocalCluster, key: str) -> RedisServer:
    return cluster.owner(key_slot(key.encode()))


def exists_anywhere(cluster: LocalCluster, key: str) -> list[int]:
    """Ports of the nodes that hold ``key`` (asked directly, bypassing cluster routing)."""
    # EXISTS on a node that does not own the slot answers MOVED; GETKEYSINSLOT lists what
    # the node really stores.
    slot = key_slot(key.encode())
    holders = []
    for node in cluster.nodes:
        with node.client() as connection:
            stored = connection.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 1_000_000)
            if key.encode() in stored:
                holders.append(node.port)
    return holders


def as_bytes(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    if isinstance(value, list):
        return [as_bytes(item) for item in value]
    return value


# -- the module's commands through the cluster client ----------------------------------------


def test_every_command_through_the_cluster_client(
    cluster: LocalCluster, cluster_client: RedisCluster
) -> None:
    key = tagged("photos")
    model = ReferenceIndex()  # bytes titles, as the server returns them
    rng = random.Random(7)
    hashes = clustered_hashes(rng, 60)
    c = cluster_client

    assert c.execute_command("imgscout.config", key, "SYNC_THRESHOLD", 7) in (b"OK", "OK", True)
    model.set_sync_threshold(7)
    for value in hashes[:20]:
        title = f"photo {value:x}".encode()
        assert c.execute_command("imgscout.add", key, value, title) == model.add(value, title)
    assert c.execute_command("imgscout.add", key, hashes[20], b"explicit", 500) == 500
    model.add(hashes[20], b"explicit", 500)
    flat = [part for value in hashes[21:40] for part in (value, b"m%x" % value)]
    assert c.execute_command("imgscout.madd", key, *flat) == model.add_many(
        hashes[21:40], [b"m%x" % value for value in hashes[21:40]]
    )
    assert c.execute_command("imgscout.size", key) == len(model.indexed)
    assert c.execute_command("imgscout.sync", key) in (b"OK", "OK", True)
    model.sync()
    for probe in [*hashes[40:50], 0, 2**64 - 1]:
        for radius in (0, 4, 12, 64):
            assert c.execute_command("imgscout.query", key, probe, radius) == as_reply(
                model.query(probe, radius)
            )
        assert c.execute_command("imgscout.query", key, probe, 20, "LIMIT", 2) == as_reply(
            model.query(probe, 20, 2)
        )
        assert c.execute_command("imgscout.knn", key, probe, 4) == as_reply(model.knn(probe, 4))
    assert c.execute_command("imgscout.lookup", key, 500) == b"explicit"
    assert c.execute_command("imgscout.lookup", key, 99_999) is None
    info = c.execute_command("imgscout.info", key)
    names = list(info.keys()) if isinstance(info, dict) else info[::2]
    assert [as_bytes(name) for name in names][:4] == [
        b"entries",
        b"pending",
        b"next_id",
        b"sync_threshold",
    ]
    victim = model.ids()[3]
    assert c.execute_command("imgscout.del", key, victim) in (b"OK", "OK", True)
    model.delete(victim)
    assert c.execute_command("imgscout.query", key, 0, 64) == as_reply(model.query(0, 64))
    c.execute_command("imgscout.add", key, hashes[50], b"left pending")
    model.add(hashes[50], b"left pending")
    expected_pairs = as_reply(model.pairs(6))
    assert expected_pairs and c.execute_command("imgscout.pairs", key, 6) == expected_pairs
    listed = [
        [int(entry_id), int(value), title, int(pending)]
        for entry_id, value, title, pending in c.execute_command("imgscout.entries", key)
    ]
    assert listed == [[i, h, t, int(pending)] for i, h, t, pending in model.entries()]

    # Errors come back through the cluster client with the protocol's texts.
    owner = node_holding(cluster, key)
    for command, text in [
        (("imgscout.add", key, "junk", "t"), "invalid hash value"),
        (("imgscout.query", key, 1, "-1"), "invalid radius"),
        (("imgscout.lookup", key, "x"), "invalid id"),
        (("imgscout.add", key, 1, "t", 500), "id already exists: 500"),
        (("imgscout.del", key, 424242), "no such id: 424242"),
        (("imgscout.knn", key, 1, "-2"), "invalid k"),
        (("imgscout.query", key, 1, 3, "LIMIT", "x"), "invalid limit"),
        (("imgscout.config", key, "SYNC_THRESHOLD", 0), "invalid sync threshold"),
        (("imgscout.query", key, 1, 3, "NOPE"), "syntax error"),
    ]:
        with pytest.raises(redis.ResponseError) as raised:
            c.execute_command(*command)
        assert str(raised.value) == text
        assert raw_reply(owner.host, owner.port, *command) == b"-ERR " + text.encode()
    c.set(key + ":string", "x")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        c.execute_command("imgscout.size", key + ":string")


def test_titles_hashes_and_ids_never_cause_crossslot(
    cluster: LocalCluster, cluster_client: RedisCluster
) -> None:
    """Only argument 1 is a key: arguments that name keys of other slots are just data."""
    key = tagged("crossslot")
    other_slot_names = [f"{{elsewhere{i}}}" for i in range(6)]
    assert len({key_slot(name.encode()) for name in [key, *other_slot_names]}) > 2
    for command in [
        ("imgscout.add", key, 5, other_slot_names[0]),
        ("imgscout.add", key, 6, other_slot_names[1], 77),
        ("imgscout.madd", key, 7, other_slot_names[2], 8, other_slot_names[3]),
        ("imgscout.query", key, 5, 3, "LIMIT", 2),
    ]:
        cluster_client.execute_command(*command)
        with cluster.nodes[0].client() as direct:
            assert as_bytes(direct.command_getkeys(*command)) == [key.encode()]
    assert (
        cluster_client.execute_command("imgscout.lookup", key, 77) == other_slot_names[1].encode()
    )
    # In a script every key must be declared; the titles here need not be.
    script = "return redis.call('imgscout.add', KEYS[1], ARGV[1], ARGV[2])"
    assert cluster_client.eval(script, 1, key, 9, other_slot_names[4]) == 80


def test_title_hash_is_written_in_the_index_keys_slot(cluster: LocalCluster) -> None:
    """With a hash tag, ``<key>:<id>`` shares the index key's slot, so the owning node writes
    it (and ``del`` removes it) as on a single server."""
    key = tagged("titles")
    with cluster.client() as c:
        ids = [c.execute_command("imgscout.add", key, 1000 + i, f"t{i}") for i in range(5)]
        for entry_id in ids:
            name = f"{key}:{entry_id}"
            assert key_slot(name.encode()) == key_slot(key.encode())
            assert c.hget(name, "title") == f"t{entry_id - 1}".encode()
            assert exists_anywhere(cluster, name) == [node_holding(cluster, key).port]
        c.execute_command("imgscout.del", key, ids[0])
        assert exists_anywhere(cluster, f"{key}:{ids[0]}") == []


def test_title_hash_of_an_untagged_key_is_written_only_when_it_shares_the_slot(
    cluster: LocalCluster,
) -> None:
    """Without a hash tag ``<key>:<id>`` usually hashes to another slot, maybe on another
    node: the module then skips it (a node never writes a key it does not own), and writes it
    only for the ids whose title hash happens to land in the index key's slot."""
    base = "untagged-" + unique_key("titles").replace(":", "-")
    # A name whose entry 1 does share the slot, so both cases happen.
    key = next(
        name
        for name in (f"{base}-{n}" for n in itertools.count())
        if key_slot(f"{name}:1".encode()) == key_slot(name.encode())
    )
    key_slot_value = key_slot(key.encode())
    with cluster.client() as c:
        ids = [c.execute_command("imgscout.add", key, i, f"t{i}") for i in range(40)]
        owner = node_holding(cluster, key)
        for entry_id in ids:
            name = f"{key}:{entry_id}"
            if key_slot(name.encode()) == key_slot_value:
                assert exists_anywhere(cluster, name) == [owner.port]
            else:
                assert exists_anywhere(cluster, name) == [], name
        assert exists_anywhere(cluster, f"{key}:1") == [owner.port]
        assert sum(bool(exists_anywhere(cluster, f"{key}:{i}")) for i in ids) < len(ids)
        # Every entry is still in the index, titles included.
        assert [c.execute_command("imgscout.lookup", key, i) for i in ids] == [
            f"t{i}".encode() for i in range(40)
        ]
        with owner.client() as direct:
            assert direct.dbsize() >= 1
            stray = [
                name for name in direct.keys(f"{key}:*") if key_slot(name) not in (key_slot_value,)
            ]
            assert stray == []


# -- ShardedIndex ------------------------------------------------------------------------------


def test_shard_keys_are_deterministic_and_spread_over_the_masters(cluster: LocalCluster) -> None:
    for shards in (1, 2, 3, 6, 7):
        keys = [shard_key("photos", shard, shards) for shard in range(shards)]
        assert keys == ShardedIndex(cluster.client(), "photos", shards=shards).keys
        assert len(set(keys)) == shards
        for shard, name in enumerate(keys):
            slot = key_slot(name.encode())
            assert shard * 16384 // shards <= slot < (shard + 1) * 16384 // shards
            assert key_slot(f"{name}:12345".encode()) == slot, "title hashes share the slot"
    owners = {node_holding(cluster, name).port for name in ShardedIndex(cluster.client(), "x").keys}
    assert owners == {node.port for node in cluster.nodes}


@pytest.mark.parametrize("bad", ["", "a{b", "a}b", 7, None])
def test_sharded_index_rejects_a_name_that_cannot_be_a_hash_tag(
    cluster: LocalCluster, bad: Any
) -> None:
    with pytest.raises(ValueError, match="invalid index name"):
        ShardedIndex(cluster.client(), bad)


@pytest.mark.parametrize("bad", [0, -1, 16385, 2.0, True, "3"])
def test_sharded_index_rejects_a_bad_shard_count(cluster: LocalCluster, bad: Any) -> None:
    with pytest.raises(ValueError, match="invalid shard count"):
        ShardedIndex(cluster.client(), "photos", shards=bad)


def pending_by_id(entries: list[Any]) -> list[tuple[Any, ...]]:
    """``entries()`` as ShardedIndex lists them: synced by id, then pending by id (the order
    of the pending queue across shards is not recorded)."""
    plain = [tuple(entry) for entry in entries]
    return [e for e in plain if not e[3]] + sorted(e for e in plain if e[3])


def check_against_reference(
    index: ShardedIndex, model: ReferenceIndex, probes: list[int], rng: random.Random
) -> None:
    """Every read of the sharded index equals the brute force's answer."""
    assert index.size() == len(index) == model.size()
    assert index.pending == len(model.pending)
    assert index.next_id == model.next_id
    for probe in probes:
        for radius in (0, 3, 8, 20, 64):
            assert index.query(probe, radius) == [Match(*m) for m in model.query(probe, radius)]
        limit = rng.randint(0, 5)
        assert index.query(probe, 30, limit=limit) == [
            Match(*m) for m in model.query(probe, 30, limit)
        ]
        k = rng.randint(0, 8)
        assert index.knn(probe, k) == [Match(*m) for m in model.knn(probe, k)]
    assert index.query_many(probes, 10) == [[Match(*m) for m in model.query(p, 10)] for p in probes]
    assert index.query_many(probes, 64, limit=3) == [
        [Match(*m) for m in model.query(p, 64, 3)] for p in probes
    ]
    for radius in (0, 4, 9):
        assert index.pairs(radius) == [tuple(pair) for pair in model.pairs(radius)]
    assert [tuple(entry) for entry in index] == pending_by_id(model.entries())
    known = list(model.indexed) + list(model.pending)
    for entry_id in [*rng.sample(known, min(len(known), 15)), 10**12, 0]:
        assert index.lookup(entry_id) == model.lookup(entry_id)
        assert (entry_id in index) == (model.lookup(entry_id) is not None)


def test_sharded_index_matches_the_brute_force(any_cluster_client: RedisCluster) -> None:
    rng = random.Random(11)
    index = ShardedIndex(any_cluster_client, unique_key("sharded"), shards=3, sync_threshold=9)
    model = ReferenceIndex(9)
    hashes = clustered_hashes(rng, 400)
    weird = b"caf\xc3\xa9 \xff/x".decode("utf-8", "surrogateescape")
    position = 0
    for step in range(120):
        roll = rng.random()
        if roll < 0.35:
            title = weird if step % 17 == 0 else f"p{step}"
            explicit = rng.randrange(1000, 1100) if rng.random() < 0.3 else None
            expected: Any
            try:
                expected = model.add(hashes[position], title, explicit)
            except ValueError as error:
                with pytest.raises(ValueError, match=str(error)):
                    index.add(hashes[position], title, id=explicit)
            else:
                assert index.add(hashes[position], title, id=explicit) == expected
            position += 1
        elif roll < 0.6:
            count = rng.randint(1, 12)
            batch = hashes[position : position + count]
            titles = [f"b{step}.{i}" for i in range(len(batch))]
            ids = [rng.randrange(2000, 2300) for _ in batch] if rng.random() < 0.3 else None
            try:
                expected = model.add_many(batch, titles, ids)
            except ValueError as error:
                with pytest.raises(ValueError, match=str(error)):
                    index.add_many(np.array(batch, dtype=np.uint64), titles, ids=ids)
            else:
                assert (
                    index.add_many(np.array(batch, dtype=np.uint64), titles, ids=ids).tolist()
                    == expected
                )
            position += count
        elif roll < 0.7:
            index.sync()
            model.sync()
        elif roll < 0.85:
            known = list(model.indexed) + list(model.pending)
            victim = rng.choice(known) if known and rng.random() < 0.8 else 999_999
            if model.lookup(victim) is None:
                with pytest.raises(KeyError):
                    index.delete(victim)
                with pytest.raises(KeyError):
                    model.delete(victim)
            else:
                index.delete(victim)
                model.delete(victim)
        elif roll < 0.9:
            threshold = rng.randint(1, 15)
            index.set_sync_threshold(threshold)
            model.set_sync_threshold(threshold)
            assert index.sync_threshold == threshold
        if step % 20 == 19:
            check_against_reference(index, model, [*rng.sample(hashes, 6), 0], rng)
    check_against_reference(index, model, [*rng.sample(hashes, 10), 2**64 - 1], rng)
    info = index.info()
    assert info.keys() == Index().info().keys()
    assert (info["entries"], info["pending"], info["next_id"]) == (
        len(model.indexed),
        len(model.pending),
        model.next_id,
    )
    shard_infos = index.shard_infos()
    assert sum(shard["entries"] for shard in shard_infos) == info["entries"]
    for shard, shard_info in enumerate(shard_infos):
        # Every entry lives in the shard its id names.
        ids = [i for i in [*model.indexed, *model.pending] if i % 3 == shard]
        assert shard_info["entries"] + shard_info["pending"] == len(ids)


def test_sharded_index_raises_what_index_raises(cluster_client: RedisCluster) -> None:
    index = ShardedIndex(cluster_client, unique_key("errors"), shards=4)
    embedded = Index()
    for target in (index, embedded):
        assert target.add(1, "a", id=MAX_ID) == MAX_ID
    calls = [
        lambda i: i.add(2, "b"),
        lambda i: i.add_many([2, 3], ["b", "c"]),
        lambda i: i.add(2, "b", id=MAX_ID),
        lambda i: i.add_many([2, 3], ["b", "c"], ids=[5, 5]),
        lambda i: i.add_many([2, 3], ["b", "c"], ids=[6, MAX_ID]),
        lambda i: i.add("zz", "b"),
        lambda i: i.add(2, "b", id=-1),
        lambda i: i.add_many([1, 2], ["a"]),
        lambda i: i.query(1, -1),
        lambda i: i.query(1, 3, limit=-1),
        lambda i: i.knn(1, "3"),
        lambda i: i.lookup(MAX_ID + 1),
        lambda i: i.delete(12345),
        lambda i: i.set_sync_threshold(0),
        lambda i: i.pairs(-2),
    ]
    for call in calls:
        outcomes = []
        for target in (index, embedded):
            try:
                call(target)
                outcomes.append(None)
            except (ValueError, KeyError, TypeError) as error:
                outcomes.append((type(error), str(error)))
        assert outcomes[0] is not None and outcomes[0] == outcomes[1], call
    assert index.add_many([], []).tolist() == [] and index.query_many([], 3) == []
    assert index.size() == 0 and index.pending == 1 and index.lookup(6) is None


def test_sharded_index_on_a_wrong_type_key_raises_the_redis_error(
    cluster_client: RedisCluster,
) -> None:
    index = ShardedIndex(cluster_client, unique_key("wrongtype"), shards=2)
    cluster_client.set(index.keys[1], "not an index")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        index.query(0, 3)
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        index.add(0, "t", id=1)
    assert index.lookup(2) is None, "shard 0 is unaffected"


def test_many_writers_get_unique_ids(cluster: LocalCluster) -> None:
    """Automatic ids of concurrent writers never collide: a batch that lost an id race is
    undone and retried."""
    name = unique_key("writers")
    results: list[list[int]] = []
    failures: list[BaseException] = []

    def writer(seed: int) -> None:
        try:
            with cluster.client() as client:
                index = ShardedIndex(client, name, shards=3)
                mine: list[int] = []
                for round_ in range(15):
                    mine += index.add_many([seed, seed + 1, round_], ["a", "b", "c"]).tolist()
                    mine.append(index.add(seed ^ round_, "d"))
                results.append(mine)
        except BaseException as error:  # the main thread reports it
            failures.append(error)

    threads = [threading.Thread(target=writer, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    every_id = [i for mine in results for i in mine]
    assert len(every_id) == len(set(every_id)) == 4 * 15 * 4
    index = ShardedIndex(cluster.client(), name, shards=3)
    index.sync()
    assert index.size() == len(every_id)
    assert sorted(m.id for m in index.query(0, 64)) == sorted(every_id)


class StealingTransport(ClusterTransport):
    """Another writer takes an id between the client's check and its write, ``steals``
    times (the race the write path must survive)."""

    def __init__(self, client: Any, thief: ShardedIndex, steals: int) -> None:
        super().__init__(client)
        self.thief = thief
        self.steals = steals

    def settled(self, commands: Any) -> list[Any]:
        writes = [c for c in commands if c[0] == "imgscout.madd"]
        if writes and self.steals > 0:
            self.steals -= 1
            self.thief.add(0xDEAD, "thief", id=max(int(c[-1]) for c in writes))
        return super().settled(commands)


class StealingIndex(ShardedIndex):
    def __init__(self, *args: Any, thief: ShardedIndex, steals: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.transport = StealingTransport(self.client, thief, steals)


def test_a_write_that_loses_an_automatic_id_is_undone_and_retried(
    cluster_client: RedisCluster,
) -> None:
    name = unique_key("race")
    thief = ShardedIndex(cluster_client, name, shards=3)
    index = StealingIndex(cluster_client, name, shards=3, thief=thief, steals=2)
    ids = index.add_many([1, 2, 3, 4], ["a", "b", "c", "d"]).tolist()
    # Round 1 chose 1..4 and lost 4, round 2 chose 5..8 and lost 8, round 3 wrote 9..12.
    assert ids == [9, 10, 11, 12]
    index.sync()
    assert sorted((m.id, m.title) for m in index.query(0, 64) if m.title != "thief") == [
        (9, "a"),
        (10, "b"),
        (11, "c"),
        (12, "d"),
    ]
    assert sorted(m.id for m in index.query(0, 64) if m.title == "thief") == [4, 8]
    assert all(index.lookup(i) is None for i in (1, 2, 3, 5, 6, 7)), "lost rounds were undone"


def test_a_write_that_keeps_losing_gives_up(cluster_client: RedisCluster) -> None:
    name = unique_key("race")
    thief = ShardedIndex(cluster_client, name, shards=2)
    index = StealingIndex(cluster_client, name, shards=2, thief=thief, steals=1000)
    with pytest.raises(redis.RedisError, match="gave up adding"):
        index.add(1, "a")
    assert index.size() + index.pending == _WRITE_ATTEMPTS, "only the thief's entries remain"


def test_a_write_that_loses_an_explicit_id_raises_and_is_undone(
    cluster_client: RedisCluster,
) -> None:
    name = unique_key("race")
    thief = ShardedIndex(cluster_client, name, shards=3)
    index = StealingIndex(cluster_client, name, shards=3, thief=thief, steals=1)
    with pytest.raises(ValueError, match="id already exists: 42"):
        index.add_many([1, 2, 3], ["a", "b", "c"], ids=[40, 41, 42])
    assert index.lookup(40) is None and index.lookup(41) is None
    assert index.lookup(42) == "thief"


def test_sharded_index_over_one_plain_server(redis_server: RedisServer) -> None:
    """A plain redis.Redis works too (all shards on one server), with the same answers."""
    with redis_server.client() as client:
        index = ShardedIndex(client, unique_key("single"), shards=5, sync_threshold=3)
        model = ReferenceIndex(3)
        rng = random.Random(5)
        hashes = clustered_hashes(rng, 50)
        assert index.add_many(hashes, [str(h) for h in hashes]).tolist() == model.add_many(
            hashes, [str(h) for h in hashes]
        )
        check_against_reference(index, model, hashes[:5], rng)


# -- operations: restart, resharding -----------------------------------------------------------


def populated(client: RedisCluster, shards: int = 3) -> tuple[ShardedIndex, ReferenceIndex]:
    rng = random.Random(shards)
    index = ShardedIndex(client, unique_key("ops"), shards=shards, sync_threshold=50)
    model = ReferenceIndex(50)
    hashes = clustered_hashes(rng, 320)
    titles = [f"img-{i}" for i in range(len(hashes))]
    assert index.add_many(hashes, titles).tolist() == model.add_many(hashes, titles)
    for victim in (3, 17, 200):
        index.delete(victim)
        model.delete(victim)
    # Leave a few pending: they must survive too.
    assert index.add_many([7, 8], ["late-a", "late-b"]).tolist() == model.add_many(
        [7, 8], ["late-a", "late-b"]
    )
    assert index.pending == len(model.pending) > 0
    return index, model


def test_a_restarted_node_keeps_its_shards(cluster: LocalCluster) -> None:
    rng = random.Random(3)
    with cluster.client() as client:
        index, model = populated(client)
        probes = [*rng.sample(list(h for h, _ in model.indexed.values()), 8), 0]
        check_against_reference(index, model, probes, rng)
        node = node_holding(cluster, index.keys[0])
        cluster.restart(node)
        check_against_reference(index, model, probes, rng)
        # And it takes writes again.
        assert index.add(123, "after restart") == model.add(123, "after restart")
        index.sync()
        model.sync()
        check_against_reference(index, model, probes, rng)


def test_moving_a_shards_slot_keeps_every_answer(cluster: LocalCluster) -> None:
    """Resharding by hand, one slot, as ``redis-cli --cluster reshard`` does it, with the
    index key and its title hashes moved one MIGRATE at a time and queries in between."""
    rng = random.Random(4)
    with cluster.client() as client:
        index, model = populated(client)
        probes = [*rng.sample(list(h for h, _ in model.indexed.values()), 6), 0]
        shard = 1
        slot = key_slot(index.keys[shard].encode())
        source = cluster.owner(slot)
        target = next(node for node in cluster.nodes if node is not source)
        with source.client() as direct:
            keys_in_slot = int(direct.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot))
        # The index key plus one title hash per entry of the shard.
        assert keys_in_slot == 1 + sum(
            1 for i in [*model.indexed, *model.pending] if i % 3 == shard
        )
        cluster.begin_slot_move(slot, source, target)
        check_against_reference(index, model, probes, rng)
        # The index key first: its title hashes stay behind, so for a while the slot's keys
        # are on two nodes and commands reach the index through ASK redirects.
        remaining = cluster.migrate_keys(slot, source, target, keys=[index.keys[shard]])
        assert exists_anywhere(cluster, index.keys[shard]) == [target.port]
        assert remaining == keys_in_slot - 1 > 0
        # Reads go straight to the node the slot table names; the ASK they get now sends
        # them through redis-py's cluster pipeline, which follows it.
        through_cluster_pipeline: list[str] = []
        direct = index.transport.settled

        def counted(commands: Any) -> list[Any]:
            through_cluster_pipeline.extend(command[0] for command in commands)
            return direct(commands)

        index.transport.settled = counted  # type: ignore[method-assign]
        assert index.query(probes[0], 64) == [Match(*m) for m in model.query(probes[0], 64)]
        assert "imgscout.query" in through_cluster_pipeline
        while True:
            check_against_reference(index, model, probes[:3], rng)
            value, title = rng.getrandbits(64), f"during-{remaining}"
            assert index.add(value, title) == model.add(value, title)
            if not remaining:
                break
            remaining = cluster.migrate_keys(slot, source, target, batch=40)
        cluster.finish_slot_move(slot, target)
        assert cluster.owner(slot) is target
        assert exists_anywhere(cluster, index.keys[shard]) == [target.port]
        index.sync()
        model.sync()
        check_against_reference(index, model, probes, rng)


# -- the equivalence machine on ShardedIndex -----------------------------------------------------

settings.register_profile(
    "cluster-ci",
    max_examples=int(os.environ.get("IMGSCOUT_CLUSTER_EXAMPLES", "300")),
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    print_blob=True,
)
_names = itertools.count()


class ShardedEquivalence(IndexEquivalence):
    """tests/test_equivalence.py's machine with ``ShardedIndex`` on the cluster as the
    server-side index: same rules, same comparisons against Index and the brute force."""

    @initialize(
        threshold=st.one_of(st.none(), st.integers(1, 6)),
        client=st.integers(0, 3),
        shards=st.integers(1, 5),
    )
    def start(self, threshold: int | None, client: int, shards: int) -> None:  # type: ignore[override]
        self.client = self.clients[client]
        self.embedded = Index(sync_threshold=threshold, bits=self.BITS)
        self.remote = ShardedIndex(
            self.client,
            f"{self.key}-{next(_names)}",
            shards=shards,
            sync_threshold=threshold,
            bits=self.BITS,
        )
        self.model = ReferenceIndex(threshold or SERVER_DEFAULT_THRESHOLD, bits=self.BITS)

    def teardown(self) -> None:
        if hasattr(self, "remote"):
            for key in self.remote.keys:
                self.client.delete(key)

    @rule()
    def entries(self) -> None:
        """As the base rule, with the pending tail by id (see ``ShardedIndex.entries``)."""
        self.compare(
            lambda index: pending_by_id(self.entry_rows(index)),
            lambda model: pending_by_id(model.entries()),
        )

    @rule()
    def persist_and_reload(self) -> None:
        """save/load on the embedded side, DEBUG RELOAD on every master of the cluster."""
        entries_before = self.embedded.entries()
        path = self.save_dir / f"{self.key.replace(':', '-')}.idx"
        self.embedded.save(path)
        self.embedded = Index.load(path)
        path.unlink()
        assert self.embedded.entries() == entries_before
        self.client.execute_command("DEBUG", "RELOAD", target_nodes=RedisCluster.PRIMARIES)


class WideShardedEquivalence(ShardedEquivalence):
    """The sharded machine on 256-bit codes."""

    BITS = 256


@pytest.mark.timeout(3600)
@pytest.mark.parametrize("bits", [64, 256])
def test_index_sharded_index_and_brute_force_agree(
    cluster: LocalCluster, tmp_path: Path, bits: int
) -> None:
    clients = [
        cluster.client(protocol=protocol, decode_responses=decoded)
        for protocol in (2, 3)
        for decoded in (False, True)
    ]
    machine = ShardedEquivalence if bits == 64 else WideShardedEquivalence
    profile = settings.get_profile("cluster-ci")
    if bits != 64:
        # A quarter of the 64-bit run: the rules are the same, only the width differs.
        profile = settings(profile, max_examples=max(profile.max_examples // 4, 20))
    try:
        machine.clients = clients
        machine.save_dir = tmp_path
        run_state_machine_as_test(machine, settings=profile)
    finally:
        for connection in clients:
            connection.close()


# -- the CLI on the cluster ---------------------------------------------------------------------

SAMPLE = Path(__file__).resolve().parents[1] / "examples" / "photos"


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("protocol", [2, 3])
def test_cli_on_the_cluster_answers_as_the_embedded_index(
    capsys: pytest.CaptureFixture[str],
    cluster: LocalCluster,
    tmp_path: Path,
    protocol: int,
) -> None:
    """Every CLI command with ``--redis URL --cluster`` prints what the embedded backend prints
    (tests/test_cli.py checks the embedded answers against brute force)."""
    photos = tmp_path / "photos"
    shutil.copytree(SAMPLE, photos)
    node = cluster.nodes[protocol % len(cluster.nodes)]
    key = unique_key("cli")
    on_cluster = [
        "--redis",
        f"redis://{node.host}:{node.port}?protocol={protocol}",
        "--cluster",
        "--key",
        key,
    ]
    embedded = ["--index", str(tmp_path / "test.idx")]
    probe = str(photos / "astronaut.jpg")

    def both(*argv: str) -> tuple[int, str, str]:
        here = run_cli(capsys, *argv[:1], *embedded, *argv[1:])
        there = run_cli(capsys, *argv[:1], *on_cluster, *argv[1:])
        assert here == there, argv
        return there

    code, out, _ = both("add", "--json", str(photos))
    count = json.loads(out)["added"]
    assert code == 0 and count == len(list(photos.rglob("*.jpg")))
    assert both("size")[1] == f"{count}\n"
    for entry_id in range(1, count + 1):
        assert both("lookup", str(entry_id))[0] == 0
    for radius in ("0", "8", "30"):
        assert both("query", "--json", "-r", radius, probe)[0] == 0
    assert both("query", "--limit", "2", probe)[0] == 0
    assert both("del", "3") == (0, "deleted 3\n", "")
    assert both("del", "3")[0] == 1
    # Incremental: only the deleted file is added again (the cache is checked per shard).
    assert json.loads(both("add", "--json", str(photos))[1])["added"] == 1
    assert both("sync")[0] == 0
    code, out, _ = both("dupes", "--json", "-r", "20", str(photos))
    assert code == 0 and json.loads(out)["groups"]
    leftovers = []
    for server in cluster.nodes:
        with server.client() as direct:
            leftovers += direct.keys(f"{key}:dupes:*") + direct.keys(f"{{{key}:dupes:*")
    assert leftovers == [], "dupes removes its scratch index and title hashes"
    assert ShardedIndex(cluster.client(), key, shards=3).size() == count


def test_cli_cluster_needs_redis(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "size", "--cluster")
    assert code == 2 and "--cluster only apply with --redis" in err
