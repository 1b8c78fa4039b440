"""A real Redis Cluster on loopback: three masters with the imgscout module, made by
``redis-cli --cluster create``, plus the moves a resharding makes (one slot at a time, by
``CLUSTER SETSLOT ... IMPORTING/MIGRATING``, ``MIGRATE`` and ``SETSLOT ... NODE``).

:func:`cluster_options` and :func:`create_cluster` are what a cluster of any
:class:`~tests.support.server.RedisServer` nodes needs (the benchmarks' nodes too);
:class:`LocalCluster` is the tests' cluster, with persistence and DEBUG on."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import redis
from redis.cluster import ClusterNode, RedisCluster

from tests.support.server import RedisServer, free_port

CLUSTER_READY_TIMEOUT_S = 60.0


def cluster_options(node_timeout_ms: int = 15_000) -> list[str]:
    """The options that make a server a cluster node."""
    return [
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        "nodes.conf",
        # The bus port defaults to port + 10000, which fails for the high ports the kernel
        # hands out: pick a free one of its own (kept across restarts, nodes.conf records it).
        "--cluster-port",
        str(free_port()),
        "--cluster-node-timeout",
        str(node_timeout_ms),
    ]


def node_options(extra: Sequence[str] = (), node_timeout_ms: int = 15_000) -> list[str]:
    """A test cluster node: 15 s node timeout by default (short enough that a restarted node is
    back quickly, long enough not to be failed over, there are no replicas, while a busy 2-core
    machine runs the tests), DEBUG enabled, and an AOF for the restart test (written at
    shutdown and replayed)."""
    return [
        *cluster_options(node_timeout_ms),
        "--enable-debug-command",
        "yes",
        "--appendonly",
        "yes",
        *extra,
    ]


def create_cluster(nodes: Sequence[RedisServer]) -> None:
    """``redis-cli --cluster create`` over running nodes (masters only, slots spread evenly);
    raises RuntimeError with redis-cli's output when it fails."""
    addresses = [f"{node.host}:{node.port}" for node in nodes]
    redis_cli = shutil.which("redis-cli") or "redis-cli"
    created = subprocess.run(
        [redis_cli, "--cluster", "create", *addresses, "--cluster-yes"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if created.returncode != 0:
        raise RuntimeError(f"redis-cli --cluster create failed:\n{created.stdout}{created.stderr}")


class LocalCluster:
    """Three (or ``masters``) module-loaded cluster nodes in their own directories."""

    def __init__(
        self,
        module: Path,
        new_dir: Callable[[], Path],
        masters: int = 3,
        module_args: Sequence[str] = (),
        node_timeout_ms: int = 15_000,
    ) -> None:
        self.module_line = ["--loadmodule", str(module), *module_args]
        self.new_dir = new_dir
        self.node_timeout_ms = node_timeout_ms
        self.nodes = [
            RedisServer(new_dir(), node_options(node_timeout_ms=node_timeout_ms), self.module_line)
            for _ in range(masters)
        ]

    # -- life cycle --------------------------------------------------------------------------

    def start(self) -> LocalCluster:
        for node in self.nodes:
            node.start()
        try:
            create_cluster(self.nodes)
        except RuntimeError:
            self.stop()
            raise
        self.wait_ready()
        return self

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def add_replica(self, master: RedisServer) -> RedisServer:
        """Starts one more node and makes it a replica of ``master``."""
        replica = RedisServer(
            self.new_dir(), node_options(node_timeout_ms=self.node_timeout_ms), self.module_line
        ).start()
        redis_cli = shutil.which("redis-cli") or "redis-cli"
        added = subprocess.run(
            [
                redis_cli,
                "--cluster",
                "add-node",
                f"{replica.host}:{replica.port}",
                f"{master.host}:{master.port}",
                "--cluster-slave",
                "--cluster-master-id",
                self.node_id(master),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        self.nodes.append(replica)
        if added.returncode != 0:
            raise RuntimeError(
                f"redis-cli --cluster add-node failed:\n{added.stdout}{added.stderr}"
            )
        self.wait_ready()
        return replica

    @staticmethod
    def node_flags(node: RedisServer) -> dict[str, set[str]]:
        """Each known node's flags (``master``, ``slave``, ``fail?``, ``fail``...), by port, as
        ``node`` sees them."""
        with node.client(decode_responses=True) as connection:
            text = connection.execute_command("CLUSTER", "NODES")
        if isinstance(text, dict):  # redis-py's parsed form: {"host:port@bus": {...}}
            return {
                address.split("@")[0].rsplit(":", 1)[1]: set(str(facts["flags"]).split(","))
                for address, facts in text.items()
            }
        flags = {}
        for line in str(text).splitlines():
            fields = line.split()
            if len(fields) > 2:
                flags[fields[1].split("@")[0].rsplit(":", 1)[1]] = set(fields[2].split(","))
        return flags

    def wait_ready(self, timeout: float = CLUSTER_READY_TIMEOUT_S) -> None:
        """Until every node says cluster_state:ok and agrees on who owns every slot."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            try:
                states = [self.cluster_info(node) for node in self.nodes]
                layouts = {self.slot_layout(node) for node in self.nodes}
                if (
                    all(state.get("cluster_state") == "ok" for state in states)
                    and all(
                        state.get("cluster_known_nodes") == str(len(self.nodes)) for state in states
                    )
                    and len(layouts) == 1
                ):
                    return
                last = repr(states)
            except redis.RedisError as error:
                last = repr(error)
            time.sleep(0.1)
        raise RuntimeError(f"cluster not ready within {timeout}s: {last}")

    def restart(self, node: RedisServer) -> None:
        """SIGTERM (the AOF is flushed), start again on the same port and directory: the node
        reads nodes.conf, rejoins with the same id and replays its AOF."""
        node.restart()
        self.wait_ready()

    # -- clients and facts -------------------------------------------------------------------

    def client(self, protocol: int = 2, **kwargs: object) -> RedisCluster:
        startup = [ClusterNode(node.host, node.port) for node in self.nodes]
        return RedisCluster(startup_nodes=startup, protocol=protocol, **kwargs)  # type: ignore[arg-type]

    @staticmethod
    def cluster_info(node: RedisServer) -> dict[str, str]:
        with node.client(decode_responses=True) as connection:
            text = connection.execute_command("CLUSTER", "INFO")
        if isinstance(text, dict):
            return {str(k): str(v) for k, v in text.items()}
        return dict(line.split(":", 1) for line in str(text).splitlines() if ":" in line)

    @staticmethod
    def slot_layout(node: RedisServer) -> tuple[tuple[int, int, int], ...]:
        """(first slot, last slot, owner port) ranges as this node sees them."""
        with node.client() as connection:
            reply = connection.execute_command("CLUSTER", "SLOTS")
        if isinstance(reply, dict):  # redis-py's callback shape: {(first, last): {...}}
            return tuple(
                sorted(
                    (first, last, int(owner["primary"][1]))
                    for (first, last), owner in reply.items()
                )
            )
        return tuple(sorted((int(r[0]), int(r[1]), int(r[2][1])) for r in reply))

    @staticmethod
    def node_id(node: RedisServer) -> str:
        with node.client(decode_responses=True) as connection:
            return str(connection.execute_command("CLUSTER", "MYID"))

    def owner(self, slot: int) -> RedisServer:
        for first, last, port in self.slot_layout(self.nodes[0]):
            if first <= slot <= last:
                return next(node for node in self.nodes if node.port == port)
        raise LookupError(f"slot {slot} has no owner")

    # -- resharding, step by step ---------------------------------------------------------------

    def begin_slot_move(self, slot: int, source: RedisServer, target: RedisServer) -> None:
        """The first two steps of moving a slot: the target imports, the source migrates."""
        with target.client() as connection:
            connection.execute_command(
                "CLUSTER", "SETSLOT", slot, "IMPORTING", self.node_id(source)
            )
        with source.client() as connection:
            connection.execute_command(
                "CLUSTER", "SETSLOT", slot, "MIGRATING", self.node_id(target)
            )

    def migrate_keys(
        self,
        slot: int,
        source: RedisServer,
        target: RedisServer,
        batch: int = 1,
        keys: Sequence[str] = (),
    ) -> int:
        """Moves ``keys`` (or up to ``batch`` keys of ``slot``) with MIGRATE (DUMP + RESTORE +
        DEL); returns how many keys of the slot are still on the source afterwards."""
        with source.client() as connection:
            chosen = list(keys) or connection.execute_command(
                "CLUSTER", "GETKEYSINSLOT", slot, batch
            )
            if chosen:
                connection.execute_command(
                    "MIGRATE", target.host, target.port, "", 0, 10_000, "KEYS", *chosen
                )
            return int(connection.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot))

    def finish_slot_move(self, slot: int, target: RedisServer) -> None:
        """Every node learns the slot's new owner (the target first, as redis-cli does)."""
        target_id = self.node_id(target)
        ordered = [target, *(node for node in self.nodes if node is not target)]
        for node in ordered:
            with node.client() as connection:
                connection.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
        self.wait_ready()
