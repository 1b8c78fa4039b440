"""A heavy read on a cluster master does not cost it its place: while a self-join page runs
for seconds on a master of a three-master cluster with a replica, the master keeps answering
cluster gossip, no node is marked failed, and the replica stays a replica. The node timeout is
short here (2 s) so that a stall of the old kind, the whole join on the event loop, would get
the master failed over within the test."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cluster import LocalCluster
from tests.test_redis_limits import as_pairs

NODE_TIMEOUT_MS = 2000
KEY = "{heavy}index"


@pytest.fixture(scope="module")
def cluster_with_replica(
    module_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LocalCluster, object]]:
    cluster = LocalCluster(
        module_path,
        lambda: tmp_path_factory.mktemp("safety-node"),
        node_timeout_ms=NODE_TIMEOUT_MS,
    ).start()
    try:
        client = cluster.client()
        rng = random.Random(5)
        values = [rng.getrandbits(64) for _ in range(200_000)]
        pipe = client.pipeline()
        for start in range(0, len(values), 1000):
            args: list[object] = []
            for offset, value in enumerate(values[start : start + 1000]):
                args += [value, f"t{start + offset}"]
            pipe.execute_command("imgscout.madd", KEY, *args)
        pipe.execute()
        client.execute_command("imgscout.sync", KEY)
        master = cluster.owner(client.keyslot(KEY))
        replica = cluster.add_replica(master)
        yield cluster, (master, replica)
    finally:
        cluster.stop()


def test_a_long_join_on_a_master_does_not_get_it_failed_over(
    cluster_with_replica: tuple[LocalCluster, object],
) -> None:
    cluster, (master, replica) = cluster_with_replica  # type: ignore[misc]
    expected = as_pairs(master.client().execute_command("imgscout.pairs", KEY, 14))
    reply: dict[str, object] = {}

    def heavy() -> None:
        with master.client(socket_timeout=300) as connection:
            reply["page"] = connection.execute_command(
                "imgscout.pairs", KEY, 14, "CURSOR", 0, "COUNT", 100_000
            )

    thread = threading.Thread(target=heavy)
    started = time.monotonic()
    thread.start()
    others = [node for node in cluster.nodes if node is not master]
    watched = 0
    # The other nodes' view, for the join's whole run and two node timeouts beyond it: asking
    # the master itself would wait whenever it stalls.
    while thread.is_alive() or time.monotonic() - started < NODE_TIMEOUT_MS / 1000 * 2:
        for node in others:
            flags = cluster.node_flags(node)
            assert not any({"fail", "fail?"} & f for f in flags.values()), flags
            assert cluster.cluster_info(node)["cluster_state"] == "ok"
            assert "slave" in flags[str(replica.port)]
        watched += 1
        time.sleep(0.1)
    thread.join()
    elapsed = time.monotonic() - started
    next_cursor, rows = reply["page"]  # type: ignore[misc]
    # The page covers the anchors (smaller ids) below the next cursor, whole.
    assert b"-" not in next_cursor
    below = int(next_cursor) or 2**63
    page = sorted(as_pairs(rows), key=lambda p: (p[2], p[0], p[1]))
    assert page == [p for p in expected if p[0] < below]
    assert watched >= 10
    assert "master" in cluster.node_flags(master)[str(master.port)]
    assert elapsed > NODE_TIMEOUT_MS / 1000, "the join must outlast a node timeout to show this"
