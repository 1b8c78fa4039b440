"""ACL users that may only read: the read commands answer, the write commands get NOPERM and
change nothing.

Two ways to make such a user: read-only key permissions (``%R~*``), which rest on the key specs
of the command table (argument 1 is the only key, RO for reads, RW for writes), and command
categories (``+@read``, ``-@write``), which rest on the ACL categories of the commands.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
import redis

from tests.support.server import ON_VALKEY, RedisServer, server_version

#: Servers whose module API can put module commands in ACL categories (Redis 7.2+, Valkey).
CATEGORIES_SUPPORTED = ON_VALKEY or tuple(
    int(part)
    for part in re.search(r"v=(\d+)\.(\d+)", server_version()).groups()  # type: ignore[union-attr]
) >= (7, 2)

READS = {
    "imgscout.query": ("1", "64"),
    "imgscout.knn": ("1", "5"),
    "imgscout.lookup": ("1",),
    "imgscout.mlookup": ("1", "2"),
    "imgscout.mquery": ("8", "1", "2"),
    "imgscout.mknn": ("2", "1"),
    "imgscout.size": (),
    "imgscout.info": (),
    "imgscout.pairs": ("64",),
    "imgscout.entries": (),
}
WRITES = {
    "imgscout.add": ("7", "written"),
    "imgscout.madd": ("7", "written", "8", "written"),
    "imgscout.del": ("1",),
    "imgscout.sync": (),
    "imgscout.config": ("SYNC_THRESHOLD", "3"),
}


@pytest.fixture
def owner(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """The default user's connection, on a flushed server holding one small index ``idx``."""
    connection = redis_server.client()
    connection.flushall()
    connection.execute_command("imgscout.madd", "idx", 1, "a", 3, "b", 0xFF, "c")
    connection.execute_command("imgscout.sync", "idx")
    connection.execute_command("imgscout.add", "idx", 2, "pending")
    yield connection
    connection.close()


@pytest.fixture
def make_user(redis_server: RedisServer, owner: redis.Redis) -> Iterator[object]:
    """``make_user(*rules)`` creates a user with those ACL rules and returns its connection
    (RESP2 and RESP3 alternate); every user is deleted at teardown."""
    names: list[str] = []
    connections: list[redis.Redis] = []

    def make(*rules: str) -> redis.Redis:
        name = f"reader-{uuid.uuid4().hex[:8]}"
        owner.execute_command("ACL", "SETUSER", name, "reset", "on", "nopass", *rules)
        names.append(name)
        protocol = 2 + len(connections) % 2
        connection = redis_server.client(protocol=protocol, username=name, password="unused")
        connections.append(connection)
        return connection

    yield make
    for connection in connections:
        connection.close()
    for name in names:
        owner.acl_deluser(name)


def snapshot(owner: redis.Redis) -> tuple[object, ...]:
    return (
        owner.execute_command("imgscout.entries", "idx"),
        owner.execute_command("imgscout.info", "idx"),
        sorted(owner.keys("*")),
    )


def assert_reads_only(owner: redis.Redis, user: redis.Redis) -> None:
    before = snapshot(owner)
    for name, args in READS.items():
        assert user.execute_command(name, "idx", *args) == owner.execute_command(
            name, "idx", *args
        ), name
    for name, args in WRITES.items():
        with pytest.raises(redis.exceptions.NoPermissionError):
            user.execute_command(name, "idx", *args)
    assert snapshot(owner) == before, "a refused write changed the index"


@pytest.mark.parametrize(
    "rules",
    [("%R~*", "+@all"), ("%R~idx*", "+@all"), ("%R~*", "%RW~other*", "+@all")],
    ids=["read-all-keys", "read-idx-keys", "write-only-elsewhere"],
)
def test_read_only_key_permissions_allow_reads_and_refuse_writes(
    owner: redis.Redis, make_user: object, rules: tuple[str, ...]
) -> None:
    assert_reads_only(owner, make_user(*rules))  # type: ignore[operator]


def test_commands_excluded_by_name_are_refused(owner: redis.Redis, make_user: object) -> None:
    user = make_user("~*", "+@all", *(f"-{name}" for name in WRITES))  # type: ignore[operator]
    assert_reads_only(owner, user)


def test_the_owner_may_still_write(owner: redis.Redis, make_user: object) -> None:
    """The refusals above come from the rules, not from the commands or the index."""
    user = make_user("~*", "+@all")  # type: ignore[operator]
    new_id = user.execute_command("imgscout.add", "idx", 9, "by user")
    assert owner.execute_command("imgscout.lookup", "idx", new_id) == b"by user"
    assert user.execute_command("imgscout.del", "idx", 1) == b"OK"
    assert owner.execute_command("imgscout.lookup", "idx", 1) is None


def category_members(owner: redis.Redis, category: str) -> set[str]:
    return {
        (name.decode() if isinstance(name, bytes) else name)
        for name in owner.execute_command("ACL", "CAT", category)
    }


@pytest.mark.xfail(
    not CATEGORIES_SUPPORTED,
    strict=True,
    reason="Redis before 7.2 has no RedisModule_SetCommandACLCategories: module commands "
    "belong to no ACL category there (grant read access by key permission, %R~*)",
)
@pytest.mark.parametrize(
    "rules",
    [("~*", "+@read"), ("~*", "+@all", "-@write"), ("~*", "+@read", "+@connection", "-@write")],
    ids=["plus-read", "all-minus-write", "read-connection-minus-write"],
)
def test_read_category_users_may_read_but_not_write(
    owner: redis.Redis, make_user: object, rules: tuple[str, ...]
) -> None:
    assert category_members(owner, "read") >= set(READS)
    assert category_members(owner, "write") >= set(WRITES)
    assert_reads_only(owner, make_user(*rules))  # type: ignore[operator]
