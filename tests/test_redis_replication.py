"""Replication of the imgscout type: replicas attached before and after the writes give the
same answers and digests, and refuse writes."""

from __future__ import annotations

import random
import time

import pytest
import redis

from tests.support.commands import assert_same_state, digest, run_random_workload
from tests.support.reference import ReferenceIndex
from tests.support.server import RedisServer, ServerFactory

# Without the 5 s default delay before a diskless full sync, replicas attach at once.
DEBUG = ("--enable-debug-command", "yes", "--repl-diskless-sync-delay", "0")


def start_replica(
    factory: ServerFactory, master: RedisServer, module_args: tuple[str, ...] = ()
) -> RedisServer:
    replica = factory(*DEBUG, "--replicaof", master.host, str(master.port), module_args=module_args)
    wait_until_in_sync(master, replica)
    return replica


def wait_until_in_sync(master: RedisServer, replica: RedisServer, timeout: float = 30.0) -> None:
    master_client = master.client()
    replica_client = replica.client()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = replica_client.info("replication")
        if (
            status.get("master_link_status") == "up"
            and status.get("master_sync_in_progress") == 0
            and status.get("slave_repl_offset")
            == master_client.info("replication")["master_repl_offset"]
        ):
            return
        time.sleep(0.05)
    raise AssertionError(f"replica never caught up\n{replica.log()[-2000:]}")


def workload(master: redis.Redis, seed: int) -> ReferenceIndex:
    model = ReferenceIndex()
    master.execute_command("imgscout.config", "idx", "SYNC_THRESHOLD", 11)
    model.set_sync_threshold(11)
    run_random_workload(master, "idx", model, random.Random(seed), 300)
    # A key created by add alone, with the master's default threshold.
    master.execute_command("imgscout.madd", "auto", 1, "a", 2, "b", 3, "c")
    return model


def assert_replica_matches(
    master: RedisServer, replica: RedisServer, model: ReferenceIndex
) -> None:
    master_client = master.client()
    replica_client = replica.client()
    assert_same_state(master_client, "idx", model)
    assert_same_state(replica_client, "idx", model)
    for key in ("idx", "auto"):
        assert digest(replica_client, key) == digest(master_client, key)
    for entry_id in model.ids():
        assert replica_client.hget(f"idx:{entry_id}", "title") == model.lookup(entry_id)
    assert replica_client.execute_command("imgscout.lookup", "auto", 3) == b"c"


def test_replica_attached_before_the_writes(redis_server_factory: ServerFactory) -> None:
    master = redis_server_factory(*DEBUG)
    # The replica's own default threshold differs: replication must carry the master's.
    replica = start_replica(redis_server_factory, master, module_args=("SYNC_THRESHOLD", "2"))
    model = workload(master.client(), seed=21)
    assert master.client().wait(1, 10_000) == 1
    wait_until_in_sync(master, replica)
    assert_replica_matches(master, replica, model)


def test_replica_attached_after_the_writes(redis_server_factory: ServerFactory) -> None:
    master = redis_server_factory(*DEBUG)
    model = workload(master.client(), seed=22)
    replica = start_replica(redis_server_factory, master)
    assert_replica_matches(master, replica, model)
    # ... and keeps following later writes, deletes and syncs.
    client = master.client()
    entry_id = client.execute_command("imgscout.add", "idx", 42, "later")
    assert entry_id == model.add(42, b"later")
    victim = model.ids()[0]
    client.execute_command("imgscout.del", "idx", victim)
    model.delete(victim)
    client.execute_command("imgscout.sync", "idx")
    model.sync()
    wait_until_in_sync(master, replica)
    assert_replica_matches(master, replica, model)
    assert replica.client().exists(f"idx:{victim}") == 0


@pytest.mark.parametrize(
    "args",
    [
        ("imgscout.add", "idx", 1, "t"),
        ("imgscout.madd", "idx", 1, "t"),
        ("imgscout.sync", "idx"),
        ("imgscout.del", "idx", 1),
        ("imgscout.config", "idx", "SYNC_THRESHOLD", 3),
    ],
)
def test_writes_on_a_replica_are_refused(
    redis_server_factory: ServerFactory, args: tuple[object, ...]
) -> None:
    master = redis_server_factory(*DEBUG)
    master.client().execute_command("imgscout.add", "idx", 1, "t")
    replica = start_replica(redis_server_factory, master)
    replica_client = replica.client()
    before = digest(replica_client, "idx")
    with pytest.raises(redis.ReadOnlyError):
        replica_client.execute_command(*args)
    assert digest(replica_client, "idx") == before
    # Reads are fine on a replica.
    assert replica_client.execute_command("imgscout.lookup", "idx", 1) == b"t"
    assert replica_client.execute_command("imgscout.knn", "idx", 1, 1) == []
