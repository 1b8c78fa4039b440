"""The Python API contract, on the embedded Index and (same tests) on RedisIndex, plus what
only the embedded index has: pairs, iteration, save/load and concurrent use from threads."""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import imagehash
import numpy as np
import pytest

import imgscout
from imgscout import Index, Match, Pair, RedisIndex, format_hash, parse_hash
from tests.support.hashes import flip_bits, unique_key
from tests.support.reference import MAX_ID, ReferenceIndex, hamming

IndexFactory = Callable[..., Any]

BACKENDS = [
    "embedded",
    pytest.param("redis-resp2", marks=pytest.mark.server),
    pytest.param("redis-resp3-decoded", marks=pytest.mark.server),
]


@pytest.fixture(params=BACKENDS)
def make_index(request: pytest.FixtureRequest) -> Iterator[IndexFactory]:
    """Builds an empty index of the backend under test: ``make_index(sync_threshold=...)``."""
    if request.param == "embedded":
        yield lambda sync_threshold=500: Index(sync_threshold=sync_threshold)
        return
    server = request.getfixturevalue("redis_server")
    protocol = 3 if "resp3" in request.param else 2
    client = server.client(protocol=protocol, decode_responses="decoded" in request.param)
    keys: list[str] = []

    def factory(sync_threshold: int = 500) -> RedisIndex:
        keys.append(unique_key())
        return RedisIndex(client, keys[-1], sync_threshold=sync_threshold)

    yield factory
    if keys:
        client.delete(*keys)
    client.close()


def filled(
    make_index: IndexFactory, count: int, seed: int, sync: bool = True
) -> tuple[Any, ReferenceIndex]:
    """An index and its reference with ``count`` entries in clusters of near hashes."""
    rng = random.Random(seed)
    index, reference = make_index(sync_threshold=10_000), ReferenceIndex(10_000)
    centers = [rng.getrandbits(64) for _ in range(max(1, count // 8))]
    hashes = [flip_bits(rng.choice(centers), rng.randrange(12), rng) for _ in range(count)]
    titles = [f"image-{n}.jpg" for n in range(count)]
    ids = index.add_many(hashes, titles)
    assert ids.tolist() == reference.add_many(hashes, titles)
    if sync:
        index.sync()
        reference.sync()
    return index, reference


# -- hashes ------------------------------------------------------------------------------


def test_parse_hash_accepts_int_hex_and_imagehash() -> None:
    assert parse_hash(0) == 0
    assert parse_hash(2**64 - 1) == 2**64 - 1
    assert parse_hash(np.uint64(7)) == 7
    assert parse_hash("00000000000000ff") == 255
    assert parse_hash("FFFFFFFFFFFFFFFF") == 2**64 - 1
    assert parse_hash("0x1") == 1
    rng = np.random.default_rng(3)
    for _ in range(20):
        image_hash = imagehash.ImageHash(rng.integers(0, 2, size=(8, 8)).astype(bool))
        assert parse_hash(image_hash) == int(str(image_hash), 16)
        assert format_hash(image_hash) == str(image_hash)


@pytest.mark.parametrize(
    "bad",
    [
        -1,
        2**64,
        True,
        1.0,
        "",
        "ff",  # bare hex must be the full 16 digits, as imagehash prints
        "0x",
        "0x00000000000000000",
        "00000000000000fg",
        " 00000000000000ff",
        "0000_0000_0000_00ff",
        b"00000000000000ff",
        None,
        imagehash.ImageHash(np.zeros((16, 16), dtype=bool)),
    ],
)
def test_bad_hashes_raise_value_error_naming_the_value(
    make_index: IndexFactory, bad: object
) -> None:
    index = make_index()
    for call in (
        lambda: index.add(bad, "t"),
        lambda: index.query(bad, 3),
        lambda: index.knn(bad, 3),
        lambda: index.add_many([0, bad], ["a", "b"]),
        lambda: index.query_many([bad], 3),
    ):
        with pytest.raises(ValueError, match="invalid hash value") as raised:
            call()
        assert repr(bad)[:20] in str(raised.value)
    assert index.lookup(1) is None, "a rejected add_many must add nothing"


# -- add / lookup / ids -------------------------------------------------------------------


def test_add_assigns_increasing_ids_and_respects_explicit_ones(make_index: IndexFactory) -> None:
    index = make_index()
    assert index.add(1, "a") == 1
    assert index.add(2, "b") == 2
    assert index.add(3, "c", id=10) == 10
    assert index.add(4, "d") == 11
    assert index.add(5, "e", id=5) == 5
    assert index.add(6, "f") == 12
    assert index.next_id == 13
    assert [index.lookup(i) for i in (1, 2, 10, 11, 5, 12, 3)] == [
        "a",
        "b",
        "c",
        "d",
        "e",
        "f",
        None,
    ]
    assert index.add(0, "zero", id=0) == 0
    assert index.add(9, "max", id=MAX_ID) == MAX_ID
    assert index.lookup(MAX_ID) == "max"


def test_add_errors(make_index: IndexFactory) -> None:
    index = make_index()
    index.add(1, "a", id=7)
    with pytest.raises(ValueError, match=r"^id already exists: 7$"):
        index.add(2, "b", id=7)
    for bad_id in (-1, MAX_ID + 1, "7", 7.0, True):
        with pytest.raises(ValueError, match="invalid id"):
            index.add(2, "b", id=bad_id)
    with pytest.raises(TypeError):
        index.add(2, 42)
    with pytest.raises(ValueError, match="invalid title"):
        index.add(2, "\ud800")  # a lone surrogate that no bytes decode to
    assert index.lookup(8) is None
    assert index.pending == 1


def test_ids_exhausted(make_index: IndexFactory) -> None:
    index = make_index()
    index.add(1, "last", id=MAX_ID)
    with pytest.raises(ValueError, match=r"^automatic ids exhausted"):
        index.add(2, "auto")
    with pytest.raises(ValueError, match=r"^automatic ids exhausted"):
        index.add_many([2, 3], ["x", "y"])
    assert index.add(2, "explicit", id=4) == 4


def test_titles_round_trip(make_index: IndexFactory) -> None:
    index = make_index()
    titles = [
        "",
        "plain.jpg",
        "naïve café/日本語/🙂.png",
        "tab\tnew\nline\x00nul",
        b"\xff\xfe not utf-8".decode("utf-8", "surrogateescape"),
        "x" * 10_000,
    ]
    ids = [index.add(n, title) for n, title in enumerate(titles)]
    assert [index.lookup(i) for i in ids] == titles
    index.sync()
    assert sorted(m.title for m in index.query(0, 64)) == sorted(titles)
    assert index.add(99, b"raw \xff bytes") == len(titles) + 1
    assert index.lookup(len(titles) + 1) == "raw \udcff bytes"


def test_lookup_errors(make_index: IndexFactory) -> None:
    index = make_index()
    assert index.lookup(0) is None
    assert index.lookup(MAX_ID) is None
    for bad_id in (-1, MAX_ID + 1, "1", None):
        with pytest.raises(ValueError, match="invalid id"):
            index.lookup(bad_id)
    index.add(1, "one")
    assert 1 in index
    assert 2 not in index
    assert "junk" not in index


# -- pending, sync, thresholds --------------------------------------------------------------


def test_pending_entries_are_invisible_until_sync(make_index: IndexFactory) -> None:
    index = make_index()
    index.add(0xFF, "a")
    index.add(0xFE, "b")
    assert (index.size(), len(index), index.pending) == (0, 0, 2)
    assert index.query(0xFF, 64) == []
    assert index.knn(0xFF, 5) == []
    assert index.lookup(2) == "b"
    index.sync()
    assert (index.size(), len(index), index.pending) == (2, 2, 0)
    assert index.query(0xFF, 1) == [Match("a", 1, 0), Match("b", 2, 1)]
    index.sync()  # nothing pending: a no-op
    assert index.size() == 2


def test_threshold_syncs_automatically(make_index: IndexFactory) -> None:
    index = make_index(sync_threshold=3)
    assert index.sync_threshold == 3
    index.add(1, "a")
    index.add(2, "b")
    assert index.pending == 2
    index.add(3, "c")
    assert (index.size(), index.pending) == (3, 0)
    index.add_many([4, 5, 6, 7], list("defg"))
    assert (index.size(), index.pending) == (6, 1)
    index.add(8, "h")
    index.set_sync_threshold(2)  # the queue is already that long: synced now
    assert (index.size(), index.pending, index.sync_threshold) == (8, 0, 2)


@pytest.mark.parametrize("bad", [0, -1, 10_000_001, 2.5, "3", None, True])
def test_bad_sync_threshold(make_index: IndexFactory, bad: object) -> None:
    if bad is not None:  # None means "the default" to the constructors
        with pytest.raises(ValueError, match="invalid sync threshold"):
            make_index(sync_threshold=bad)
    index = make_index()
    with pytest.raises(ValueError, match="invalid sync threshold"):
        index.set_sync_threshold(bad)
    assert index.sync_threshold == 500


# -- delete -------------------------------------------------------------------------------


def test_delete_synced_and_pending_entries(make_index: IndexFactory) -> None:
    index = make_index()
    index.add_many([1, 2, 3], ["a", "b", "c"])
    index.sync()
    index.add(4, "d")
    index.delete(2)
    index.delete(4)
    assert index.lookup(2) is None and index.lookup(4) is None
    assert (index.size(), index.pending) == (2, 0)
    index.sync()
    assert [m.id for m in index.query(0, 64)] == [1, 3]
    with pytest.raises(KeyError) as raised:
        index.delete(2)
    assert raised.value.args == (2,)
    with pytest.raises(KeyError):
        index.delete(12345)
    for bad_id in (-1, MAX_ID + 1, "1"):
        with pytest.raises(ValueError, match="invalid id"):
            index.delete(bad_id)
    assert index.add(9, "again", id=2) == 2, "a deleted id may be reused explicitly"
    assert index.add(10, "auto") == 5, "automatic ids never reuse deleted ones"


# -- queries ------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2])
def test_query_matches_brute_force(make_index: IndexFactory, seed: int) -> None:
    index, reference = filled(make_index, 300, seed)
    rng = random.Random(seed + 100)
    stored = reference.hashes()
    for _ in range(40):
        probe = (
            flip_bits(rng.choice(stored), rng.randrange(10), rng)
            if rng.random() < 0.8
            else rng.getrandbits(64)
        )
        radius = rng.randrange(0, 70)
        expected = [Match(*m) for m in reference.query(probe, radius)]
        assert index.query(probe, radius) == expected
        limit = rng.randrange(0, 6)
        assert index.query(probe, radius, limit=limit) == expected[:limit]
        k = rng.randrange(0, 12)
        assert index.knn(probe, k) == [Match(*m) for m in reference.knn(probe, k)]
        assert all(
            m.distance == hamming(probe, stored_hash)
            for m in expected
            for stored_hash in [reference.indexed[m.id][0]]
        )


def test_query_many_matches_single_queries(make_index: IndexFactory) -> None:
    index, reference = filled(make_index, 200, 5)
    rng = random.Random(6)
    probes = [flip_bits(h, rng.randrange(6), rng) for h in rng.sample(reference.hashes(), 30)]
    as_array = np.array(probes, dtype=np.uint64)
    expected = [[Match(*m) for m in reference.query(p, 7)] for p in probes]
    assert index.query_many(as_array, 7) == expected
    assert index.query_many([format_hash(p) for p in probes], 7.9) == expected
    assert index.query_many(probes, 7, limit=1) == [found[:1] for found in expected]
    assert index.query_many([], 3) == []


@pytest.mark.parametrize(
    ("radius", "acts_as"),
    [(0, 0), (3, 3), (3.99, 3), (64, 64), (65, 64), (10**30, 64), (np.int64(2), 2)],
)
def test_radius_forms(make_index: IndexFactory, radius: object, acts_as: int) -> None:
    index = make_index()
    index.add_many([0, 1, 3, 7, 2**64 - 1], list("abcde"))
    index.sync()
    assert index.query(0, radius) == [m for m in index.query(0, 64) if m.distance <= acts_as]


@pytest.mark.parametrize("bad", [-1, -0.5, float("nan"), float("inf"), "3", None, True, 1j])
def test_bad_radius(make_index: IndexFactory, bad: object) -> None:
    index = make_index()
    with pytest.raises(ValueError, match="invalid radius"):
        index.query(0, bad)
    with pytest.raises(ValueError, match="invalid radius"):
        index.query_many([0], bad)


@pytest.mark.parametrize("bad", [-1, 1.5, "2", True])
def test_bad_k_and_limit(make_index: IndexFactory, bad: object) -> None:
    index = make_index()
    with pytest.raises(ValueError, match="invalid k"):
        index.knn(0, bad)
    with pytest.raises(ValueError, match="invalid limit"):
        index.query(0, 3, limit=bad)
    with pytest.raises(ValueError, match="invalid limit"):
        index.query_many([0], 3, limit=bad)


def test_huge_k_and_limit_mean_all(make_index: IndexFactory) -> None:
    index = make_index()
    index.add_many([0, 1, 3], list("abc"))
    index.sync()
    everything = index.query(0, 64)
    assert len(everything) == 3
    assert index.knn(0, 2**70) == everything
    assert index.query(0, 64, limit=2**70) == everything


# -- add_many -----------------------------------------------------------------------------


def test_add_many_forms_and_all_or_nothing(make_index: IndexFactory) -> None:
    index = make_index()
    ids = index.add_many(np.array([1, 2], dtype=np.uint64), ["a", "b"])
    assert ids.dtype == np.uint64 and ids.tolist() == [1, 2]
    assert index.add_many(np.array([3], dtype=np.int64), ["c"]).tolist() == [3]
    assert index.add_many(["0000000000000004"], ["d"], ids=np.array([40])).tolist() == [40]
    assert index.add_many([5, 6], ["e", "f"], ids=[50, 51]).tolist() == [50, 51]
    assert index.add_many([], []).tolist() == []
    with pytest.raises(ValueError, match=r"^id already exists: 50$"):
        index.add_many([7, 8], ["g", "h"], ids=[60, 50])
    with pytest.raises(ValueError, match=r"^id already exists: 61$"):
        index.add_many([7, 8], ["g", "h"], ids=[61, 61])
    with pytest.raises(ValueError, match="invalid id"):
        index.add_many([7, 8], ["g", "h"], ids=[62, -1])
    with pytest.raises(ValueError, match="invalid id"):
        index.add_many([7], ["g"], ids=np.array([-3]))
    with pytest.raises(ValueError, match="invalid hash value"):
        index.add_many(np.array([-1, 3]), ["g", "h"])
    with pytest.raises(ValueError, match="same length"):
        index.add_many([7, 8], ["g"])
    with pytest.raises(ValueError, match="same length"):
        index.add_many([7, 8], ["g", "h"], ids=[70])
    with pytest.raises(TypeError):
        index.add_many([7], "g")
    assert [index.lookup(i) for i in (60, 61, 62, 52)] == [None] * 4
    assert index.pending == 6
    assert index.next_id == 52


# -- info ---------------------------------------------------------------------------------


def test_info_reports_the_core_figures(make_index: IndexFactory) -> None:
    index = make_index(sync_threshold=7)
    index.add_many([1, 2, 3], list("abc"))
    index.sync()
    index.add(4, "d", id=20)
    info = index.info()
    assert info["entries"] == 3
    assert info["pending"] == 1
    assert info["next_id"] == 21
    assert info["sync_threshold"] == 7
    assert isinstance(info["memory_bytes"], int) and info["memory_bytes"] > 0
    assert all(isinstance(name, str) and isinstance(v, (int, str)) for name, v in info.items())
    assert list(info)[:6] == [
        "entries",
        "pending",
        "next_id",
        "sync_threshold",
        "bits",
        "memory_bytes",
    ]
    assert info["bits"] == 64
    # The scan kernel this process runs (IMGSCOUT_KERNEL may force a slower one).
    assert info["kernel"] in {"portable", "avx2", "avx512"}


# -- self-join and iteration ----------------------------------------------------------------


def test_pairs_match_brute_force(make_index: IndexFactory) -> None:
    index, reference = filled(make_index, 250, 9)
    for radius in (0, 3, 8, 70):
        assert index.pairs(radius) == [Pair(*p) for p in reference.pairs(min(radius, 64))]
    with pytest.raises(ValueError, match="invalid radius"):
        index.pairs(-1)
    index.add(0, "pending")
    assert index.pairs(64) == [Pair(*p) for p in reference.pairs(64)], (
        "pending entries take no part"
    )


def test_iteration_lists_synced_then_pending_entries(make_index: IndexFactory) -> None:
    index = make_index()
    index.add(5, "five", id=5)
    index.add(1, "one", id=1)
    index.sync()
    index.add(9, "nine", id=9)
    index.add(3, "three", id=3)
    assert [tuple(e) for e in index] == [
        (1, 1, "one", False),
        (5, 5, "five", False),
        (9, 9, "nine", True),
        (3, 3, "three", True),
    ]
    assert index.entries()[0].title == "one"


# -- embedded only: files ------------------------------------------------------------------


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    index, reference = filled(lambda sync_threshold: Index(sync_threshold), 400, 11)
    index.set_sync_threshold(50)
    index.add(123, "pending title \udcff", id=10**12)
    index.delete(3)
    path = tmp_path / "saved.idx"
    index.save(path)
    loaded = Index.load(path)
    assert loaded.entries() == index.entries()
    assert loaded.info()["next_id"] == index.next_id == 10**12 + 1
    assert loaded.sync_threshold == 50
    assert loaded.pending == 1
    for probe in reference.hashes()[:30]:
        assert loaded.query(probe, 10) == index.query(probe, 10)
    assert loaded.add(1, "next") == 10**12 + 1
    assert [p.name for p in tmp_path.iterdir()] == ["saved.idx"], "no temporary file left"
    index.save(str(path))  # overwriting an existing file works, str paths too
    assert Index.load(str(path)).entries() == index.entries()


def test_load_rejects_truncated_corrupted_and_foreign_files(tmp_path: Path) -> None:
    index, _ = filled(lambda sync_threshold: Index(sync_threshold), 50, 12)
    path = tmp_path / "good.idx"
    index.save(path)
    data = path.read_bytes()
    cases = {
        "empty": b"",
        "truncated-header": data[:3],
        "truncated-half": data[: len(data) // 2],
        "truncated-last-byte": data[:-1],
        "trailing-junk": data + b"junk",
        "foreign": b"\x89PNG\r\n\x1a\n" + bytes(200),
        "text": b"hello world, this is not an index\n" * 10,
    }
    for position in (len(data) // 3, len(data) // 2, len(data) - 2):
        flipped = bytearray(data)
        flipped[position] ^= 0x40
        cases[f"flipped-{position}"] = bytes(flipped)
    for name, content in cases.items():
        bad = tmp_path / f"{name}.idx"
        bad.write_bytes(content)
        with pytest.raises(ValueError, match=str(bad).replace(".", r"\.")):
            Index.load(bad)
    with pytest.raises(FileNotFoundError):
        Index.load(tmp_path / "missing.idx")
    with pytest.raises(IsADirectoryError):
        Index.load(tmp_path)


def test_save_failure_keeps_the_old_file(tmp_path: Path) -> None:
    index = Index()
    index.add(1, "a")
    path = tmp_path / "kept.idx"
    index.save(path)
    before = path.read_bytes()
    with pytest.raises(FileNotFoundError):
        index.save(tmp_path / "no-such-folder" / "x.idx")
    with pytest.raises(IsADirectoryError):
        index.save(tmp_path)  # a directory is in the way: rename fails, nothing is torn
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.idx"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_save_into_read_only_folder(tmp_path: Path) -> None:
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(PermissionError):
            Index().save(tmp_path / "x.idx")
    finally:
        tmp_path.chmod(0o700)


def test_package_surface() -> None:
    assert set(imgscout.__all__) >= {"Index", "RedisIndex", "Match", "parse_hash"}
    assert Match("t", 1, 2) == ("t", 1, 2) and Match._fields == ("title", "id", "distance")
    assert repr(Index()).startswith("Index(size=0")
    assert (Path(imgscout.__file__).parent / "py.typed").exists()


# -- threads ------------------------------------------------------------------------------


def test_concurrent_queries_see_consistent_snapshots() -> None:
    """Readers query while a writer adds batches and syncs: every answer must equal the brute
    force over exactly the first n synced batches, with n never going back."""
    rng = random.Random(21)
    batches = 40
    batch_size = 200
    probe = rng.getrandbits(64)
    radius = 20
    batch_hashes = [
        [flip_bits(probe, rng.randrange(30), rng) for _ in range(batch_size)]
        for _ in range(batches)
    ]
    expected_after: list[list[Match]] = []
    reference = ReferenceIndex(10**6)
    expected_after.append([])
    for number, hashes in enumerate(batch_hashes):
        reference.add_many(hashes, [f"b{number}-{i}" for i in range(batch_size)])
        reference.sync()
        expected_after.append([Match(*m) for m in reference.query(probe, radius)])
    answer_to_batches = {tuple(answer): n for n, answer in enumerate(expected_after)}
    assert len(answer_to_batches) == batches + 1

    index = Index(sync_threshold=10**6)
    stop = threading.Event()
    failures: list[str] = []
    seen_counts: list[int] = []
    newest_seen = [0]
    progress = threading.Condition()

    def reader() -> None:
        last = 0
        while not stop.is_set():
            answer = tuple(index.query(probe, radius))
            many = index.query_many([probe, probe], radius)
            batches_seen = answer_to_batches.get(answer)
            if batches_seen is None or batches_seen < last:
                failures.append(f"inconsistent answer after {last} batches")
                return
            if any(answer_to_batches.get(tuple(m), -1) < batches_seen for m in many):
                failures.append("query_many went back in time")
                return
            last = batches_seen
            seen_counts.append(batches_seen)
            with progress:
                newest_seen[0] = max(newest_seen[0], batches_seen)
                progress.notify_all()

    readers = [threading.Thread(target=reader) for _ in range(4)]
    for thread in readers:
        thread.start()
    for number, hashes in enumerate(batch_hashes):
        index.add_many(hashes, [f"b{number}-{i}" for i in range(batch_size)])
        assert index.lookup(index.next_id - 1) is not None
        index.sync()
        # Let a reader see this state before the next write, so that every state is observed
        # while other writes run (without this, the GIL's switch interval may starve readers).
        with progress:
            assert progress.wait_for(lambda n=number: newest_seen[0] > n or failures, timeout=30)
    stop.set()
    for thread in readers:
        thread.join(timeout=60)
    assert not failures, failures
    assert index.query(probe, radius) == expected_after[-1]
    assert set(range(1, batches + 1)) <= set(seen_counts), "readers saw every state"


def test_long_calls_release_the_gil(tmp_path: Path) -> None:
    """A Python thread keeps running while query_many, pairs, sync, add_many and save work:
    with the GIL held it could not run a single bytecode until they return."""
    rng = np.random.default_rng(5)
    count = 300_000
    hashes = rng.integers(0, 2**64, size=count, dtype=np.uint64)
    titles = [b"t"] * count
    index = Index(sync_threshold=10**7)
    ticks = [0]
    stop = threading.Event()

    def ticker() -> None:
        while not stop.is_set():
            ticks[0] += 1

    def ticks_during(call: Callable[[], object]) -> int:
        before = ticks[0]
        call()
        return ticks[0] - before

    thread = threading.Thread(target=ticker)
    thread.start()
    try:
        during = {
            "add_many": ticks_during(lambda: index.add_many(hashes, titles)),
            "sync": ticks_during(index.sync),
            "query_many": ticks_during(lambda: index.query_many(hashes[:5_000], 8)),
            "pairs": ticks_during(lambda: index.pairs(2)),
            "save": ticks_during(lambda: index.save(tmp_path / "big.idx")),
            "load": ticks_during(lambda: Index.load(tmp_path / "big.idx")),
        }
    finally:
        stop.set()
        thread.join()
    assert all(n > 0 for n in during.values()), during
