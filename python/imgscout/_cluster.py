"""Sending batches of imgscout commands to a Redis Cluster (or one server) fast and safely:
the transport under :class:`imgscout.ShardedIndex`, which owns the index semantics."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis

from . import _redis_common as wire

#: Commands that only read, so a batch of them can be sent again after a redirect.
READ_COMMANDS = frozenset(
    {
        "imgscout.query",
        "imgscout.knn",
        "imgscout.info",
        "imgscout.size",
        "imgscout.lookup",
        "imgscout.mlookup",
        "imgscout.mquery",
        "imgscout.mknn",
        "imgscout.entries",
    }
)
_REDIRECTS = (
    redis.exceptions.MovedError,
    redis.exceptions.AskError,
    redis.exceptions.TryAgainError,
    redis.exceptions.ClusterDownError,
)


class ClusterTransport:
    """Runs commands on ``client`` (a ``redis.RedisCluster`` or a ``redis.Redis``), replies
    undecoded, errors translated into the core's exceptions."""

    def __init__(self, client: redis.Redis | redis.RedisCluster) -> None:
        self.client = client

    def call(self, *args: Any, entry_id: int | None = None) -> Any:
        return wire.call(self.client, *args, entry_id=entry_id)

    def run(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """Runs the commands in order, reads through :meth:`read` when they all only read."""
        if all(command[0] in READ_COMMANDS for command in commands):
            return self.read(commands)
        return self.pipelined(commands)

    def pipelined(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """Runs the commands in one pipeline (redis-py's cluster pipeline sends each node its
        share on its own connection, all written before any reply is read); raises the
        first error."""
        replies = self.settled(commands)
        for reply in replies:
            if isinstance(reply, BaseException):
                raise reply
        return replies

    def settled(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """As :meth:`pipelined`, but every command's error is returned in its reply's place
        (translated into the core's exception), so the caller sees which ones ran."""
        if not commands:
            return []
        pipeline = self.client.pipeline(transaction=False)
        for command in commands:
            pipeline.execute_command(*command, **wire.RAW)
        replies = pipeline.execute(raise_on_error=False)
        return [
            wire.translated(reply) if isinstance(reply, redis.ResponseError) else reply
            for reply in replies
        ]

    def read(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """Runs read-only commands: on a cluster, each node's share goes out as one plain
        pipeline, every node's written before any reply is read, so the nodes search in
        parallel. This skips redis-py's per-command routing in its cluster pipeline, which
        costs more client time than a small query costs the server. On a redirect (a slot
        moving, a failover) or a connection error the whole batch is re-run through the
        cluster pipeline, which follows redirects and refreshes the slot table: reads can
        be repeated safely."""
        if not isinstance(self.client, redis.RedisCluster) or not commands:
            return self.pipelined(commands)
        try:
            replies = self._read_by_node(commands)
        except (redis.ConnectionError, redis.TimeoutError, redis.exceptions.SlotNotCoveredError):
            return self.pipelined(commands)
        if any(isinstance(reply, _REDIRECTS) for reply in replies):
            return self.pipelined(commands)
        for reply in replies:
            if isinstance(reply, redis.ResponseError):
                wire.raise_translated(reply)
        return replies

    def _read_by_node(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        cluster = self.client
        assert isinstance(cluster, redis.RedisCluster)
        by_node: dict[str, tuple[Any, list[int]]] = {}
        for position, command in enumerate(commands):
            node = cluster.get_node_from_key(command[1])
            by_node.setdefault(node.name, (node, []))[1].append(position)
        replies: list[Any] = [None] * len(commands)
        sent: list[tuple[Any, Any, list[int]]] = []
        unread = set()
        try:
            for node, positions in by_node.values():
                node_client = cluster.get_redis_connection(node)
                connection = node_client.connection_pool.get_connection()
                sent.append((node_client, connection, positions))
                unread.add(id(connection))
                connection.send_packed_command(
                    connection.pack_commands([commands[p] for p in positions])
                )
            for node_client, connection, positions in sent:
                for position in positions:
                    try:
                        replies[position] = node_client.parse_response(
                            connection, commands[position][0], **wire.RAW
                        )
                    except redis.ResponseError as error:
                        replies[position] = error
                unread.discard(id(connection))
        finally:
            for node_client, connection, _ in sent:
                # A connection with replies still in flight would hand them to its next user.
                if id(connection) in unread:
                    connection.disconnect()
                node_client.connection_pool.release(connection)
        return replies
