"""No command can exhaust the server's memory or hold its event loop: replies are capped by
``imgscout.max-reply-rows``, large answers are paged with cursors, and heavy reads run on
worker threads with the client blocked. Every paged answer is checked against the plain one
and against the embedded index."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator

import pytest
import redis

from imgscout import Index
from tests.support.server import RedisServer, ServerFactory, ServerPool

TOO_MANY = (
    "answer has more than {} rows (imgscout.max-reply-rows); "
    "ask for fewer with LIMIT or page through it with CURSOR"
)


def error_of(client: redis.Redis, *args: object) -> str:
    with pytest.raises(redis.ResponseError) as caught:
        client.execute_command(*args)
    return str(caught.value)


def load(client: redis.Redis, key: str, hashes: list[int], batch: int = 1000) -> None:
    pipe = client.pipeline(transaction=False)
    for start in range(0, len(hashes), batch):
        args: list[object] = []
        for offset, value in enumerate(hashes[start : start + batch]):
            args += [value, f"t{start + offset}"]
        pipe.execute_command("imgscout.madd", key, *args)
    pipe.execute()
    client.execute_command("imgscout.sync", key)


def clustered(count: int, seed: int, spread: int = 6) -> list[int]:
    """Hashes around a few centres, so small radii have many pairs."""
    rng = random.Random(seed)
    centres = [rng.getrandbits(64) for _ in range(max(1, count // 40))]
    out = []
    for _ in range(count):
        value = rng.choice(centres)
        for bit in rng.sample(range(64), rng.randrange(spread + 1)):
            value ^= 1 << bit
        out.append(value)
    return out


def walk(client: redis.Redis, *command: object, count: int) -> Iterator[list[object]]:
    cursor: object = b"0"
    pages = 0
    while True:
        next_cursor, rows = client.execute_command(*command, "CURSOR", cursor, "COUNT", count)
        assert len(rows) <= count
        yield rows
        pages += 1
        assert pages < 100_000, "the walk must end"
        if next_cursor in (b"0", "0"):
            return
        cursor = next_cursor


def as_pairs(rows: list[list[int]]) -> list[tuple[int, int, int]]:
    return [(int(a), int(b), int(d)) for a, b, d in rows]


@pytest.fixture
def capped(redis_server_factory: ServerFactory) -> RedisServer:
    return redis_server_factory(module_args=("MAX_REPLY_ROWS", "50"))


def test_oversized_answers_are_refused_with_the_way_out(capped: RedisServer) -> None:
    client = capped.client()
    hashes = [0xF0F0 ^ (1 << (i % 64)) for i in range(120)]
    load(client, "k", hashes)
    message = TOO_MANY.format(50)
    assert error_of(client, "imgscout.query", "k", 0xF0F0, 64) == message
    assert len(client.execute_command("imgscout.query", "k", 0xF0F0, 64, "LIMIT", 50)) == 50
    # A limit above the cap is fine while the answer itself fits.
    assert len(client.execute_command("imgscout.query", "k", 0xF0F0, 0, "LIMIT", 1000)) == 0
    assert error_of(client, "imgscout.query", "k", 0xF0F0, 64, "LIMIT", 51) == message
    assert error_of(client, "imgscout.knn", "k", 0, 51) == message
    assert len(client.execute_command("imgscout.knn", "k", 0, 50)) == 50
    assert error_of(client, "imgscout.pairs", "k", 64) == message
    assert error_of(client, "imgscout.entries", "k") == message
    # The server is unharmed and the paged forms still deliver everything.
    assert client.ping()
    entries = [row for page in walk(client, "imgscout.entries", "k", count=50) for row in page]
    assert [int(row[0]) for row in entries] == list(range(1, 121))
    pairs = [p for page in walk(client, "imgscout.pairs", "k", 64, count=50) for p in page]
    assert len(pairs) == 120 * 119 // 2


def test_max_reply_rows_changes_at_run_time(capped: RedisServer) -> None:
    client = capped.client()
    load(client, "k", [7] * 30)
    assert client.config_get("imgscout.max-reply-rows") == {"imgscout.max-reply-rows": "50"}
    assert len(client.execute_command("imgscout.query", "k", 7, 0)) == 30
    client.config_set("imgscout.max-reply-rows", 29)
    assert error_of(client, "imgscout.query", "k", 7, 0) == TOO_MANY.format(29)
    # A page never holds more than a reply may, whatever COUNT asks.
    _, rows = client.execute_command("imgscout.pairs", "k", 0, "CURSOR", 0, "COUNT", 1000)
    assert len(rows) == 29
    for bad in (0, -1, 100_000_001, "many"):
        with pytest.raises(redis.ResponseError):
            client.config_set("imgscout.max-reply-rows", bad)
    client.config_set("imgscout.max-reply-rows", 100_000)
    assert len(client.execute_command("imgscout.pairs", "k", 0)) == 30 * 29 // 2


def test_default_cap_and_config_file_value(redis_server_factory: ServerFactory) -> None:
    default = redis_server_factory().client()
    assert default.config_get("imgscout.max-reply-rows") == {"imgscout.max-reply-rows": "100000"}
    configured = redis_server_factory("--imgscout.max-reply-rows", "7").client()
    assert configured.config_get("imgscout.max-reply-rows") == {"imgscout.max-reply-rows": "7"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("imgscout.pairs", "k", 3, "COUNT", 5), "syntax error"),
        (("imgscout.pairs", "k", 3, "CURSOR"), "syntax error"),
        (("imgscout.pairs", "k", 3, "CURSOR", 0, "SIZE", 5), "syntax error"),
        (("imgscout.pairs", "k", 3, "CURSOR", "abc"), "invalid cursor"),
        (("imgscout.pairs", "k", 3, "CURSOR", "1-2"), "invalid cursor"),
        (("imgscout.pairs", "k", 3, "CURSOR", "1-257-2"), "invalid cursor"),
        (("imgscout.pairs", "k", 3, "CURSOR", "-1"), "invalid cursor"),
        (("imgscout.pairs", "k", 3, "CURSOR", 0, "COUNT", 0), "invalid count"),
        (("imgscout.pairs", "k", 3, "CURSOR", 0, "COUNT", "x"), "invalid count"),
        (("imgscout.pairs", "k", "x", "CURSOR", 0), "invalid radius"),
        (("imgscout.entries", "k", "COUNT", 5), "syntax error"),
        (("imgscout.entries", "k", "CURSOR", "1-2-3"), "invalid cursor"),
        (("imgscout.entries", "k", "CURSOR", 0, "COUNT", -3), "invalid count"),
        (("imgscout.entries", "k", "extra"), "syntax error"),
    ],
)
def test_cursor_argument_errors(
    client: redis.Redis, args: tuple[object, ...], message: str
) -> None:
    client.execute_command("imgscout.add", "k", 1, "a")
    assert error_of(client, *args) == message


def test_missing_key_pages_are_empty_and_done(client: redis.Redis) -> None:
    assert client.execute_command("imgscout.pairs", "nope", 5, "CURSOR", 0) == [b"0", []]
    assert client.execute_command("imgscout.entries", "nope", "CURSOR", 0) == [b"0", []]


@pytest.mark.parametrize("count", [1, 7, 1000])
def test_pair_pages_reassemble_to_the_plain_answer(client: redis.Redis, count: int) -> None:
    hashes = clustered(900, seed=count)
    load(client, "k", hashes)
    reference = Index()
    reference.add_many(hashes, [f"t{i}" for i in range(len(hashes))])
    # Holes and an explicit id far above the rest, so anchors are not a dense range.
    for entry_id in range(3, 900, 11):
        client.execute_command("imgscout.del", "k", entry_id)
        reference.delete(entry_id)
    client.execute_command("imgscout.add", "k", hashes[0], "far", 2**62)
    client.execute_command("imgscout.sync", "k")
    reference.add(hashes[0], "far", 2**62)
    reference.sync()
    for radius in (0, 3, 9):
        plain = as_pairs(client.execute_command("imgscout.pairs", "k", radius))
        assert plain == [tuple(p) for p in reference.pairs(radius)]
        paged = [
            p for page in walk(client, "imgscout.pairs", "k", radius, count=count) for p in page
        ]
        assert sorted(as_pairs(paged), key=lambda p: (p[2], p[0], p[1])) == plain
        # Pages go anchor by anchor, each anchor's pairs nearest first.
        anchors = [p[0] for p in as_pairs(paged)]
        assert anchors == sorted(anchors)


@pytest.mark.parametrize("count", [1, 5, 1000])
def test_entry_pages_reassemble_to_the_plain_answer(client: redis.Redis, count: int) -> None:
    client.execute_command("imgscout.config", "k", "SYNC_THRESHOLD", 40)
    for i, value in enumerate(clustered(150, seed=5)):
        client.execute_command("imgscout.add", "k", value, f"t{i}", (i * 7919) % 1000)
    client.execute_command("imgscout.del", "k", 0)
    plain = client.execute_command("imgscout.entries", "k")
    assert any(row[3] == 1 for row in plain), "some entries still pending"
    paged = [row for page in walk(client, "imgscout.entries", "k", count=count) for row in page]
    assert [row[0] for row in paged] == sorted(row[0] for row in plain)
    assert sorted(paged) == sorted(plain)


def blocked_clients(client: redis.Redis) -> int:
    return int(client.info("clients")["blocked_clients"])


def wait_blocked(client: redis.Redis, count: int = 1) -> None:
    for _ in range(2000):
        if blocked_clients(client) >= count:
            return
        time.sleep(0.005)
    pytest.fail("the heavy command never blocked its client")


class Background:
    """Runs one command on its own connection in a thread; keeps its reply or error."""

    def __init__(self, server: RedisServer, *command: object) -> None:
        # redis-py 8 times a reply out after 5 s by default and sends the command again.
        self.connection = server.client(socket_timeout=300)
        self.client_id = self.connection.client_id()
        self.reply: object = None
        self.error: Exception | None = None
        self.thread = threading.Thread(target=self._run, args=command)
        self.thread.start()

    def _run(self, *command: object) -> None:
        try:
            self.reply = self.connection.execute_command(*command)
        except redis.RedisError as error:
            self.error = error

    def join(self) -> object:
        self.thread.join(timeout=300)
        assert not self.thread.is_alive()
        return self.reply


@pytest.fixture(scope="module")
def big_server(
    module_path: object, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RedisServer]:
    """A server holding 100,000 uniform hashes in key ``big``: a page of 100,000 anchors at
    radius 14 runs for a second or more."""
    pool = ServerPool(module_path, lambda: tmp_path_factory.mktemp("redis"))  # type: ignore[arg-type]
    server = pool()
    rng = random.Random(11)
    load(server.client(), "big", [rng.getrandbits(64) for _ in range(100_000)])
    yield server
    pool.stop_all()


HEAVY = ("imgscout.pairs", "big", 14, "CURSOR", 0, "COUNT", 100_000)


def test_heavy_reads_leave_the_event_loop_serving_others(big_server: RedisServer) -> None:
    other = big_server.client()
    plain = as_pairs(other.execute_command("imgscout.pairs", "big", 14))
    heavy = Background(big_server, *HEAVY)
    wait_blocked(other)
    # While the page is computed, other clients are served: reads, writes, INFO.
    assert other.ping()
    assert other.execute_command("imgscout.size", "big") == 100_000
    other.execute_command("imgscout.add", "other", 1, "x")
    assert blocked_clients(other) == 1
    next_cursor, rows = heavy.join()
    assert heavy.error is None
    assert next_cursor == b"0"
    assert sorted(as_pairs(rows), key=lambda p: (p[2], p[0], p[1])) == plain


def test_a_key_deleted_under_a_worker_changes_nothing_for_it(big_server: RedisServer) -> None:
    other = big_server.client()
    other.execute_command("COPY", "big", "doomed")
    expected = as_pairs(other.execute_command("imgscout.pairs", "doomed", 14))
    heavy = Background(big_server, "imgscout.pairs", "doomed", 14, "CURSOR", 0, "COUNT", 100_000)
    wait_blocked(other)
    other.delete("doomed")
    other.execute_command("imgscout.add", "doomed", 1, "new")
    _, rows = heavy.join()
    assert heavy.error is None
    assert sorted(as_pairs(rows), key=lambda p: (p[2], p[0], p[1])) == expected
    assert other.execute_command("imgscout.size", "doomed") == 0
    assert other.ping()


def test_client_unblock_ends_the_wait_cleanly(big_server: RedisServer) -> None:
    other = big_server.client()
    heavy = Background(big_server, *HEAVY)
    wait_blocked(other)
    assert other.client_unblock(heavy.client_id, error=True)
    heavy.join()
    assert heavy.error is not None
    assert other.ping()
    # The worker finishes in the background; the next command on that connection is fine.
    assert heavy.connection.execute_command("imgscout.size", "big") == 100_000


def test_transactions_and_scripts_run_heavy_reads_inline(big_server: RedisServer) -> None:
    client = big_server.client()
    expected = client.execute_command("imgscout.query", "big", 0, 24, "LIMIT", 5)
    pipe = client.pipeline(transaction=True)
    pipe.execute_command("imgscout.query", "big", 0, 24, "LIMIT", 5)
    pipe.execute_command(*HEAVY[:3])
    in_multi, pairs_in_multi = pipe.execute()
    assert in_multi == expected
    assert pairs_in_multi == client.execute_command(*HEAVY[:3])
    scripted = client.eval(
        "return redis.call('imgscout.query', KEYS[1], ARGV[1], ARGV[2], 'LIMIT', 5)",
        1,
        "big",
        0,
        24,
    )
    assert scripted == expected


def test_without_workers_everything_runs_inline(redis_server_factory: ServerFactory) -> None:
    client = redis_server_factory(module_args=("WORKER_THREADS", "0")).client()
    hashes = clustered(5000, seed=3)
    load(client, "k", hashes)
    reference = Index()
    reference.add_many(hashes, [f"t{i}" for i in range(len(hashes))])
    reference.sync()
    assert as_pairs(client.execute_command("imgscout.pairs", "k", 4)) == [
        tuple(p) for p in reference.pairs(4)
    ]
    got = client.execute_command("imgscout.query", "k", hashes[9], 30, "LIMIT", 20)
    want = reference.query(hashes[9], 30, limit=20)
    assert [(int(i), int(d)) for _, i, d in got] == [(m.id, m.distance) for m in want]


def segments_built(client: redis.Redis, key: str) -> bool:
    """Whether every segment has its structures (no build is pending)."""
    raw = client.execute_command("imgscout.info", key)
    info = dict(zip(raw[::2], raw[1::2])) if isinstance(raw, list) else raw
    return int(info[b"builds_pending"]) == 0


def test_large_rebuilds_build_their_structures_on_workers(
    redis_server_factory: ServerFactory,
) -> None:
    client = redis_server_factory(module_args=("BACKGROUND_BUILD_MIN", "1000")).client()
    hashes = clustered(20_000, seed=21)
    reference = Index()
    reference.add_many(hashes, [f"t{i}" for i in range(len(hashes))])
    reference.sync()

    def same_answers() -> None:
        for q in hashes[::1999]:
            got = client.execute_command("imgscout.query", "k", q, 6)
            assert [(int(i), int(d)) for _, i, d in got] == [
                (m.id, m.distance) for m in reference.query(q, 6)
            ]
            got = client.execute_command("imgscout.knn", "k", q ^ 0xFF, 5)
            assert [(int(i), int(d)) for _, i, d in got] == [
                (m.id, m.distance) for m in reference.knn(q ^ 0xFF, 5)
            ]

    load(client, "k", hashes)
    # Right after the merges: segments still waiting for their builds answer by scanning.
    same_answers()
    client.execute_command("imgscout.del", "k", 5)
    reference.delete(5)
    for _ in range(2000):
        if segments_built(client, "k"):
            break
        time.sleep(0.01)
    else:
        pytest.fail("the background builds were never put in place")
    same_answers()
    assert as_pairs(client.execute_command("imgscout.pairs", "k", 3)) == [
        tuple(p) for p in reference.pairs(3)
    ]
    assert client.execute_command("imgscout.size", "k") == len(hashes) - 1
