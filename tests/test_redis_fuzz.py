"""A seeded command fuzzer against a real server: random ``imgscout.*`` commands with hostile
arguments (junk and huge numbers, negative numbers, empty strings, NUL bytes, long binary
titles, wrong arity, keys of other types), mixed with the core commands that move, copy,
dump or replace an index.

After every batch the server must still answer PING on the same connection, and every reply
must be a well-formed answer of the command or an error reply (never a dropped connection, a
timeout or a module panic). At the end each index must agree with itself (``entries``,
``info``, ``size``, ``lookup``, ``query``, ``pairs``), and with its copies: after DEBUG RELOAD,
after replaying the AOF (DEBUG LOADAOF) and on a replica that received every write.

``$IMGSCOUT_FUZZ_SEED``, ``$IMGSCOUT_FUZZ_SECONDS`` and ``$IMGSCOUT_FUZZ_COMMANDS`` change the
seed, the time budget and the command budget (all in the failure message) for a longer local
run.
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import redis

from tests.support.server import RedisServer, ServerFactory

FUZZ_SECONDS = float(os.environ.get("IMGSCOUT_FUZZ_SECONDS", "6"))
MAX_COMMANDS = int(os.environ.get("IMGSCOUT_FUZZ_COMMANDS", "4000"))
BATCH = 40
#: An index above this many entries is deleted: no command on it may take long.
MAX_ENTRIES = 250
MAX_TITLE = 64 * 1024

INDEX_KEYS = [b"fz:a", b"fz:b", b"fz\x00bin\xff\r\n"]
#: Keys of every other type, and a string where the module would write a title hash.
OTHER_KEYS = {
    b"fz:str": ("SET", b"fz:str", b"value"),
    b"fz:list": ("RPUSH", b"fz:list", b"x"),
    b"fz:hash": ("HSET", b"fz:hash", b"title", b"x"),
    b"fz:zset": ("ZADD", b"fz:zset", 1, b"x"),
    b"fz:stream": ("XADD", b"fz:stream", b"*", b"f", b"v"),
    b"fz:a:3": ("SET", b"fz:a:3", b"not a title hash"),
}
ALL_KEYS = [*INDEX_KEYS, *OTHER_KEYS, b"", b"fz:missing"]


# --- hostile arguments ---------------------------------------------------------------------


def random_bytes(rng: random.Random, size: int) -> bytes:
    return bytes(rng.getrandbits(8) for _ in range(size))


def number(rng: random.Random) -> bytes:
    """Mostly valid numbers of every size, often junk."""
    roll = rng.random()
    if roll < 0.25:
        return str(rng.getrandbits(64)).encode()
    if roll < 0.45:
        return str(rng.randrange(0, 70)).encode()
    if roll < 0.52:
        return str(-rng.randrange(1, 2**63)).encode()
    if roll < 0.58:
        return str(rng.choice([2**63 - 1, 2**63, 2**63 + 1, 2**64 - 1, 2**64, 2**64 + 1])).encode()
    if roll < 0.63:
        return str(10 ** rng.randrange(20, 400) + rng.randrange(10)).encode()
    if roll < 0.70:
        digits = rng.choice(
            ["", "g", "1" * 17, f"{rng.getrandbits(64):x}", f"{rng.getrandbits(8):X}"]
        )
        return f"0x{digits}".encode()
    if roll < 0.90:
        return rng.choice(
            [
                *(b"", b" ", b"-0", b"+5", b"5 ", b" 5", b"1e5", b"3.5", b"5.000000", b"."),
                *(b"5.", b".5", b"nan", b"inf", b"-inf", b"0" * 50 + b"7", b"9" * 30),
                *(b"12\x0034", b"\x00", b"-"),
            ]
        )
    return random_bytes(rng, rng.randrange(0, 12))


def title(rng: random.Random) -> bytes:
    roll = rng.random()
    if roll < 0.6:
        return random_bytes(rng, rng.randrange(0, 24))
    if roll < 0.95:
        return random_bytes(rng, rng.randrange(24, 2048))
    return rng.choice([b"\x00", b"t"]) * rng.randrange(2048, MAX_TITLE)


def hash_value(rng: random.Random, recent: list[bytes]) -> bytes:
    """Often a hash seen before or one bit away from it, so queries find something."""
    if recent and rng.random() < 0.4:
        seen = int(rng.choice(recent))
        return str(seen ^ (1 << rng.randrange(64)) if rng.random() < 0.5 else seen).encode()
    value = str(rng.getrandbits(64)).encode() if rng.random() < 0.5 else number(rng)
    if value.isdigit() and int(value) < 2**64:
        recent.append(value)
        del recent[:-50]
    return value


def index_key(rng: random.Random) -> bytes:
    return rng.choice(INDEX_KEYS) if rng.random() < 0.85 else rng.choice(ALL_KEYS)


# --- one random command --------------------------------------------------------------------


def random_command(rng: random.Random, recent: list[bytes]) -> list[object]:
    key = index_key(rng)
    name = rng.choices(
        [
            "add",
            "madd",
            "sync",
            "query",
            "knn",
            "pairs",
            "entries",
            "lookup",
            "size",
            "del",
            "info",
            "config",
            "core",
        ],
        weights=[14, 8, 5, 10, 6, 3, 3, 6, 3, 6, 3, 4, 2],
    )[0]
    if name == "add":
        args: list[object] = [key, hash_value(rng, recent), title(rng)]
        if rng.random() < 0.3:
            args.append(number(rng))
    elif name == "madd":
        args = [key]
        for _ in range(rng.randrange(0, 10)):
            args += [hash_value(rng, recent), title(rng)]
        if rng.random() < 0.1:
            args.append(hash_value(rng, recent))  # an odd count
    elif name in ("query", "knn"):
        args = [key, hash_value(rng, recent), number(rng)]
        if name == "query" and rng.random() < 0.3:
            args += [rng.choice([b"LIMIT", b"limit", b"LIMITS", b""]), number(rng)]
    elif name == "pairs":
        args = [key, number(rng)]
    elif name in ("lookup", "del"):
        args = [key, number(rng) if rng.random() < 0.5 else str(rng.randrange(0, 60)).encode()]
    elif name == "config":
        args = [key]
        for _ in range(rng.randrange(0, 3)):
            option = rng.choice([b"SYNC_THRESHOLD", b"sync_threshold", b"NEXT_ID", b"BOGUS", b""])
            args += [option, number(rng)]
    elif name == "core":
        return core_command(rng, key)
    else:  # sync, entries, size, info
        args = [key]
    if rng.random() < 0.08:  # wrong arity: arguments missing or extra
        if rng.random() < 0.5:
            args = args[: rng.randrange(0, len(args) + 1)]
        else:
            args += [number(rng) for _ in range(rng.randrange(1, 4))]
    if rng.random() < 0.01:
        name = rng.choice(["nosuchcommand", "ADD ", ""])
    return [f"imgscout.{name}", *args]


def core_command(rng: random.Random, key: bytes) -> list[object]:
    """Core commands on index keys: the type's copy, free, rename and dump callbacks."""
    other = rng.choice(INDEX_KEYS)
    return rng.choice(
        [
            ["COPY", key, other, "REPLACE"],
            ["RENAME", key, other],
            ["DEL", key],
            ["UNLINK", key],
            ["TYPE", key],
            ["MEMORY", "USAGE", key],
            ["DEBUG", "DIGEST-VALUE", key],
            ["SET", other, b"replaced by a string"],
            ["OBJECT", "ENCODING", key],
        ]
    )


# --- what a well-formed reply looks like ---------------------------------------------------


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_ok(value: object) -> bool:
    return value in (b"OK", "OK", True)


def is_match_list(value: object) -> bool:
    return isinstance(value, list) and all(
        isinstance(m, list)
        and len(m) == 3
        and isinstance(m[0], bytes)
        and is_int(m[1])
        and is_int(m[2])
        and 0 <= m[2] <= 64
        for m in value
    )


def is_sorted_by_distance(value: list[list[object]]) -> bool:
    order = [(m[2], m[1]) for m in value]
    return order == sorted(order)  # type: ignore[type-var]


REPLY_SHAPES: dict[str, Callable[[object], bool]] = {
    "imgscout.add": is_int,
    "imgscout.madd": lambda r: isinstance(r, list) and all(map(is_int, r)),
    "imgscout.sync": is_ok,
    "imgscout.del": is_ok,
    "imgscout.config": is_ok,
    "imgscout.query": lambda r: is_match_list(r) and is_sorted_by_distance(r),  # type: ignore[arg-type]
    "imgscout.knn": lambda r: is_match_list(r) and is_sorted_by_distance(r),  # type: ignore[arg-type]
    "imgscout.pairs": lambda r: (
        isinstance(r, list)
        and all(isinstance(p, list) and len(p) == 3 and all(map(is_int, p)) for p in r)
    ),
    "imgscout.entries": lambda r: (
        isinstance(r, list)
        and all(
            isinstance(e, list)
            and len(e) == 4
            and is_int(e[0])
            and e[1].isdigit()
            and e[3] in (0, 1)
            for e in r
        )
    ),
    "imgscout.lookup": lambda r: r is None or isinstance(r, bytes),
    "imgscout.size": lambda r: is_int(r) and r >= 0,  # type: ignore[operator]
    "imgscout.info": lambda r: isinstance(r, dict) or (isinstance(r, list) and len(r) % 2 == 0),
}


# --- the run -------------------------------------------------------------------------------


@dataclass
class Servers:
    master: RedisServer
    replica: RedisServer


@pytest.fixture
def servers(redis_server_factory: ServerFactory) -> Servers:
    """A master with AOF and a small sync threshold (pending and indexed entries mix), and its
    replica."""
    master = redis_server_factory(
        "--enable-debug-command",
        "yes",
        "--appendonly",
        "yes",
        module_args=("SYNC_THRESHOLD", "5"),
    )
    replica = redis_server_factory(
        "--enable-debug-command",
        "yes",
        "--replicaof",
        master.host,
        str(master.port),
        module_args=("SYNC_THRESHOLD", "5"),
    )
    return Servers(master, replica)


def reset_other_keys(client: redis.Redis) -> None:
    """Puts the keys of other types back, and frees the index names a SET took over."""
    pipe = client.pipeline(transaction=False)
    pipe.delete(*OTHER_KEYS, *(key for key in INDEX_KEYS if client.type(key) == b"string"))
    for setup in OTHER_KEYS.values():
        pipe.execute_command(*setup)
    pipe.execute()


def is_index(client: redis.Redis, key: bytes) -> bool:
    return client.type(key) in (b"imgscoutx", "imgscoutx")


def info_dict(client: redis.Redis, key: bytes) -> dict[bytes, object]:
    reply = client.execute_command("imgscout.info", key)
    if isinstance(reply, list):
        reply = dict(zip(reply[::2], reply[1::2]))
    return dict(reply)


def keep_indexes_small(client: redis.Redis) -> None:
    for key in INDEX_KEYS:
        if is_index(client, key):
            figures = info_dict(client, key)
            if int(figures[b"entries"]) + int(figures[b"pending"]) > MAX_ENTRIES:  # type: ignore[call-overload]
                client.delete(key)


def run_batch(
    client: redis.Redis, commands: list[list[object]], tally: Counter[str], context: str
) -> None:
    pipe = client.pipeline(transaction=False)
    for command in commands:
        pipe.execute_command(*command)
    try:
        replies = pipe.execute(raise_on_error=False)
    except (redis.ConnectionError, redis.TimeoutError) as error:
        pytest.fail(f"{context}: the connection broke during a batch ({error!r}): {commands!r}")
    assert len(replies) == len(commands), context
    for command, reply in zip(commands, replies):
        name = str(command[0]).lower()
        if isinstance(reply, redis.ResponseError):
            message = str(reply)
            assert message, f"{context}: empty error for {command!r}"
            assert "internal error" not in message, f"{context}: module panic on {command!r}"
            tally["errors"] += 1
            tally[f"error: {message[:40]}"] += 1
            continue
        assert not isinstance(reply, Exception), f"{context}: {reply!r} for {command!r}"
        shape = REPLY_SHAPES.get(name)
        if shape is not None:
            assert shape(reply), f"{context}: malformed reply {reply!r} to {command!r}"
        tally["answers"] += 1
    assert client.ping(), context


def assert_consistent(client: redis.Redis, key: bytes, context: str) -> list[list[object]]:
    """One index agrees with itself; returns its entries."""
    entries = client.execute_command("imgscout.entries", key)
    figures = info_dict(client, key)
    indexed = [e for e in entries if e[3] == 0]
    pending = [e for e in entries if e[3] == 1]
    ids = [e[0] for e in entries]
    assert len(set(ids)) == len(ids), f"{context}: duplicate ids in {key!r}"
    assert figures[b"entries"] == len(indexed), context
    assert figures[b"pending"] == len(pending), context
    assert client.execute_command("imgscout.size", key) == len(indexed), context
    assert all(int(figures[b"next_id"]) > i for i in ids), f"{context}: next_id not past every id"  # type: ignore[call-overload]
    pipe = client.pipeline(transaction=False)
    for entry_id, _, _, _ in entries:
        pipe.execute_command("imgscout.lookup", key, entry_id)
    assert pipe.execute() == [e[2] for e in entries], f"{context}: lookup disagrees with entries"
    for entry_id, hash_text, entry_title, _ in indexed[:60]:
        found = client.execute_command("imgscout.query", key, hash_text, 0)
        assert [entry_title, entry_id, 0] in found, f"{context}: indexed {entry_id} not found"
    for entry_id, hash_text, _, _ in pending[:20]:
        found = client.execute_command("imgscout.query", key, hash_text, 0)
        assert all(m[1] != entry_id for m in found), f"{context}: pending {entry_id} searchable"
    same_hash = Counter(e[1] for e in indexed)
    pairs = client.execute_command("imgscout.pairs", key, 0)
    assert len(pairs) == sum(n * (n - 1) // 2 for n in same_hash.values()), context
    return entries


#: The figures of imgscout.info that are content; the others (segments, builds, memory)
#: describe the layout, which depends on how the index was built (a replica or a reload
#: builds it in one go).
LOGICAL_FIGURES = (b"entries", b"pending", b"next_id", b"sync_threshold")


def snapshot(client: redis.Redis) -> dict[bytes, tuple[object, object, object]]:
    """Every index: its entries, logical figures and digest."""
    found = {}
    for key in client.keys(b"*"):
        if is_index(client, key):
            digest = client.execute_command("DEBUG", "DIGEST-VALUE", key)
            found[key] = (
                client.execute_command("imgscout.entries", key),
                {
                    name: value
                    for name, value in info_dict(client, key).items()
                    if name in LOGICAL_FIGURES
                },
                digest,
            )
    return found


def differences(
    got: dict[bytes, tuple[object, object, object]],
    want: dict[bytes, tuple[object, object, object]],
) -> list[str]:
    """Readable list of what differs between two snapshots."""
    found = [f"key {key!r} only on one side" for key in set(got) ^ set(want)]
    for key in set(got) & set(want):
        for part, mine, theirs in zip(("entries", "info", "digest"), got[key], want[key]):
            if mine != theirs:
                if part == "info":
                    mine = {k: v for k, v in mine.items() if theirs.get(k) != v}  # type: ignore[attr-defined]
                    theirs = {k: theirs[k] for k in mine}  # type: ignore[index]
                found.append(f"{key!r} {part}: {str(mine)[:300]} != {str(theirs)[:300]}")
    return found


def wait_for_replica(master: redis.Redis, replica: redis.Redis, context: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        offset = master.info("replication")["master_repl_offset"]
        state = replica.info("replication")
        if state.get("master_link_status") == "up" and state.get("slave_repl_offset") == offset:
            return
        time.sleep(0.05)
    pytest.fail(f"{context}: the replica did not catch up")


@pytest.mark.parametrize("protocol", [2, 3], ids=["resp2", "resp3"])
def test_random_hostile_commands_never_break_the_server(servers: Servers, protocol: int) -> None:
    seed = f"{os.environ.get('IMGSCOUT_FUZZ_SEED', 'fuzz')}-{protocol}"
    rng = random.Random(seed)
    master = servers.master.client(protocol=protocol, socket_timeout=30)
    replica = servers.replica.client(protocol=protocol, socket_timeout=30)
    recent: list[bytes] = []
    tally: Counter[str] = Counter()
    started = time.monotonic()
    sent = 0
    while sent < MAX_COMMANDS and time.monotonic() - started < FUZZ_SECONDS:
        reset_other_keys(master)
        keep_indexes_small(master)
        commands = [random_command(rng, recent) for _ in range(BATCH)]
        run_batch(master, commands, tally, f"seed {seed!r}, after {sent} commands")
        sent += len(commands)
    context = f"seed {seed!r}, {sent} commands, {FUZZ_SECONDS}s budget"
    assert sent >= 10 * BATCH, f"{context}: too few commands ran to mean anything"
    assert tally["answers"] > sent // 4 and tally["errors"] > sent // 20, (context, tally)

    for key in INDEX_KEYS:
        if is_index(master, key):
            tally["indexes at the end"] += 1
            tally["entries at the end"] += len(assert_consistent(master, key, context))
    assert tally["indexes at the end"] > 0, f"{context}: no index left to check"
    before = snapshot(master)

    wait_for_replica(master, replica, context)
    on_replica = snapshot(replica)
    assert not differences(on_replica, before), (
        f"{context}: replica: {differences(on_replica, before)}"
    )
    assert master.execute_command("DEBUG", "RELOAD") in (b"OK", "OK", True)
    reloaded = snapshot(master)
    assert not differences(reloaded, before), (
        f"{context}: DEBUG RELOAD: {differences(reloaded, before)}"
    )
    assert master.execute_command("DEBUG", "LOADAOF") in (b"OK", "OK", True)
    replayed = snapshot(master)
    assert not differences(replayed, before), (
        f"{context}: AOF replay: {differences(replayed, before)}"
    )
    for key in before:
        assert_consistent(master, key, f"{context}, after reload")
    assert master.ping() and replica.ping()
    assert "panicked" not in servers.master.log() + servers.replica.log()
    print(f"\nfuzz {context}: {dict(tally.most_common(12))}")
    master.close()
    replica.close()
