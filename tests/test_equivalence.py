"""The embedded Index, RedisIndex on a real redis-server with the module, and a brute-force
model, driven through the same random operation sequences: every reply and every exception
must be the same on the three.

Profiles (``HYPOTHESIS_PROFILE``): ``ci`` (default; a few hundred sequences, a few minutes on
two cores), ``quick`` (a quarter of that, for the second pass on another server) and ``long``
(thousands of longer sequences for a local soak).
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import imagehash
import numpy as np
import pytest
import redis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from imgscout import Index, Match, RedisIndex, _core
from imgscout import _redis_common as wire
from tests.support.hashes import unique_key
from tests.support.reference import MAX_ID, ReferenceIndex

settings.register_profile(
    "ci",
    max_examples=800,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    print_blob=True,
)
settings.register_profile(
    "quick",
    max_examples=200,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    print_blob=True,
)
settings.register_profile(
    "long",
    max_examples=5000,
    stateful_step_count=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    print_blob=True,
)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")

#: Module default threshold (the test server loads the module without SYNC_THRESHOLD).
SERVER_DEFAULT_THRESHOLD = 500

Outcome = tuple[Any, ...]


def error_kind(error: Exception) -> str:
    """The error's code (docs/spec.md), read from the brute-force model's plain exceptions
    by their message; built-in names for errors without one."""
    code = getattr(error, "code", None)
    if code is not None:
        return str(code)
    if isinstance(error, KeyError):
        return "no-such-id"
    found = _core.error_for_message(str(error)) if isinstance(error, ValueError) else None
    return type(error).__name__ if found is None else str(found.code)


def outcome(call: Callable[[], Any]) -> Outcome:
    """A call's result or exception, in a comparable form."""
    try:
        result = call()
    except (ValueError, KeyError, TypeError) as error:
        detail = error.args if isinstance(error, KeyError) else str(error)
        return ("raised", error_kind(error), detail)
    return ("returned", plain(result))


def plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return [int(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def semantic_info(info: dict[str, Any]) -> dict[str, Any]:
    """The figures whose values are defined by the operations alone (not by memory or shape)."""
    names = ("entries", "pending", "next_id", "sync_threshold", "bits")
    return {name: info[name] for name in names}


titles = st.one_of(
    st.text(max_size=12),
    # Titles from bytes that are not UTF-8 (another client's titles, odd file names).
    st.binary(max_size=12).map(lambda raw: raw.decode("utf-8", "surrogateescape")),
)
near_max_ids = st.integers(MAX_ID - 3, MAX_ID)
fresh_ids = st.one_of(st.integers(0, 60), near_max_ids, st.integers(0, MAX_ID))
radii = st.one_of(
    st.integers(0, 64),
    # Past 64 acts as 64 on a 64-bit index; on a 256-bit one these are the radii PDQ uses.
    st.integers(65, 260),
    st.integers(261, 2**70),
    st.floats(0, 270, allow_nan=False, allow_infinity=False),
)
limits = st.one_of(st.none(), st.integers(0, 6), st.just(2**66))

BAD_HASHES = [
    -1,
    2**64,
    "",
    "fff",
    "0x",
    "0xg",
    "00000000000000fg",
    " 12",
    "12 ",
    "+12",
    "0x1_0",
    "18446744073709551616",
    1.5,
    None,
    True,
]


def hash_texts(value: int) -> st.SearchStrategy[str]:
    """Every text form docs/spec.md accepts for ``value``; leading zeros included."""
    hex_digits = f"{value:x}"
    return st.one_of(
        st.integers(0, 3).map(lambda zeros: "0" * zeros + str(value)),
        st.sampled_from([f"0x{hex_digits}", f"0X{hex_digits.upper()}", f"0x{value:016x}"]),
        st.sampled_from([f"{value:016x}", f"{value:016X}"]),
    )


def wide_hash_texts(value: int, bits: int) -> st.SearchStrategy[str]:
    """Every text form docs/spec.md accepts for a code of ``bits``: ``bits / 4`` hex digits."""
    digits = f"{value:0{bits // 4}x}"
    return st.sampled_from([digits, digits.upper(), f"0x{digits}", f"0X{digits.upper()}"])


def spec_wide_hash_value(text: str) -> int:
    """The code a wide hash text names, written out independently of the core."""
    return int(text[2:] if text[:2] in ("0x", "0X") else text, 16)


#: Hashes a 256-bit index refuses: other widths, wrong lengths, junk.
BAD_WIDE_HASHES = [
    -1,
    2**256,
    "",
    "0x",
    "ffd8e0c0c0e0f0f8",
    "12345",
    "f" * 63,
    "f" * 65,
    "0x" + "g" * 64,
    b"\x00" * 8,
    b"\x00" * 33,
    np.zeros(16, dtype=np.uint8),
    1.5,
    None,
    True,
]


def spec_hash_value(text: str) -> int:
    """The hash docs/spec.md says a text names, written out independently of the core:
    digits only are decimal; else 0x-prefixed or 16-digit hex."""
    if text.isdigit():
        return int(text)
    if text[:2] in ("0x", "0X"):
        return int(text[2:], 16)
    assert len(text) == 16
    return int(text, 16)


BAD_RADII = [-1, -0.5, float("nan"), float("inf"), "2", None, False]
BAD_IDS = [-1, MAX_ID + 1, "3", 2.0, True]
BAD_COUNTS = [-1, 1.5, "2", True]


class IndexEquivalence(RuleBasedStateMachine):
    """Same operations on three indexes; see the module docstring. ``BITS`` is the code
    width every index of a run holds."""

    BITS: ClassVar[int] = 64

    clients: ClassVar[list[redis.Redis]] = []
    save_dir: ClassVar[Path]
    #: What the run exercised, printed at the end: sequences, outcomes per operation, ...
    tally: ClassVar[Counter[str]] = Counter()

    def __init__(self) -> None:
        super().__init__()
        self.tally["sequences"] += 1
        self.key = unique_key("equivalence")
        self.used_ids: list[int] = []
        self.used_hashes: list[int] = []

    # -- setup ------------------------------------------------------------------------------

    @initialize(threshold=st.one_of(st.none(), st.integers(1, 6)), client=st.integers(0, 3))
    def start(self, threshold: int | None, client: int) -> None:
        self.client = self.clients[client]
        self.embedded = Index(sync_threshold=threshold, bits=self.BITS)
        self.remote = RedisIndex(self.client, self.key, sync_threshold=threshold, bits=self.BITS)
        self.model = ReferenceIndex(threshold or SERVER_DEFAULT_THRESHOLD, bits=self.BITS)

    def teardown(self) -> None:
        if hasattr(self, "client"):
            self.client.delete(self.key)

    # -- drawing helpers --------------------------------------------------------------------

    def draw_hash_value(self, data: st.DataObject) -> int:
        if self.used_hashes and data.draw(st.booleans(), label="near a stored hash"):
            base = data.draw(st.sampled_from(self.used_hashes))
            flips = st.sets(st.integers(0, self.BITS - 1), max_size=12 * self.BITS // 64)
            for bit in data.draw(flips, label="flipped bits"):
                base ^= 1 << bit
            return base
        return data.draw(st.integers(0, 2**self.BITS - 1), label="random hash")

    def draw_hash(self, data: st.DataObject) -> tuple[int, Any]:
        """A hash and the form the caller passes it in: int, numpy, ImageHash, or text in
        each form docs/spec.md accepts (the value is what the spec says the text names)."""
        value = self.draw_hash_value(data)
        form = data.draw(st.sampled_from(["int", "numpy", "imagehash", "text", "bytes"]))
        if self.BITS != 64:
            return value, self.wide_form(data, value, form)
        if form == "bytes":
            return value, value.to_bytes(8, "big")
        if form == "numpy":
            return value, np.uint64(value)
        if form == "imagehash":
            return value, imagehash.hex_to_hash(f"{value:016x}")
        if form == "text":
            text = data.draw(hash_texts(value), label="hash text")
            return spec_hash_value(text), text
        return value, value

    def wide_form(self, data: st.DataObject, value: int, form: str) -> Any:
        """``value`` as a wide code in ``form``: bytes and numpy bytes in text order, an
        ImageHash of ``BITS`` bits, or hex text."""
        raw = value.to_bytes(self.BITS // 8, "big")
        if form == "numpy":
            return np.frombuffer(raw, dtype=np.uint8).copy()
        if form == "imagehash":
            return imagehash.hex_to_hash(raw.hex())
        if form == "text":
            text = data.draw(wide_hash_texts(value, self.BITS), label="hash text")
            assert spec_wide_hash_value(text) == value
            return text
        if form == "bytes":
            return raw
        return value

    def hash_texts(self, value: int) -> st.SearchStrategy[str]:
        return hash_texts(value) if self.BITS == 64 else wide_hash_texts(value, self.BITS)

    def spec_hash_value(self, text: str) -> int:
        return spec_hash_value(text) if self.BITS == 64 else spec_wide_hash_value(text)

    def as_array(self, values: list[int]) -> Any:
        """Many hashes as one array: uint64 at 64 bits, ``(n, BITS / 8)`` uint8 rows wider."""
        if self.BITS == 64:
            return np.array(values, dtype=np.uint64)
        raw = b"".join(value.to_bytes(self.BITS // 8, "big") for value in values)
        return np.frombuffer(raw, dtype=np.uint8).reshape(len(values), self.BITS // 8).copy()

    def draw_id(self, data: st.DataObject) -> int:
        if self.used_ids and data.draw(st.booleans(), label="a used id"):
            return data.draw(st.sampled_from(self.used_ids))
        return data.draw(fresh_ids, label="fresh id")

    # -- comparison -------------------------------------------------------------------------

    def compare(
        self,
        operation: Callable[[Any], Any],
        model_operation: Callable[[ReferenceIndex], Any] | None = None,
    ) -> Outcome:
        embedded = outcome(lambda: operation(self.embedded))
        remote = outcome(lambda: operation(self.remote))
        assert embedded == remote, f"embedded {embedded} != redis {remote}"
        if model_operation is not None:
            synced_before = len(self.model.indexed)
            expected = outcome(lambda: model_operation(self.model))
            assert embedded == expected, f"index {embedded} != brute force {expected}"
            if len(self.model.indexed) > synced_before:
                self.tally["entries moved by a sync"] += len(self.model.indexed) - synced_before
        self.tally["steps compared"] += 1
        if embedded[0] == "raised":
            self.tally[f"raised {embedded[1]}"] += 1
        elif isinstance(embedded[1], list) and embedded[1] and isinstance(embedded[1][0], list):
            self.tally["non-empty query answers"] += 1
        return embedded

    def remember(self, ids: list[int], hashes: list[int]) -> None:
        self.used_ids.extend(ids)
        self.used_hashes.extend(hashes)

    # -- writes -----------------------------------------------------------------------------

    @rule(data=st.data(), title=titles, explicit=st.booleans())
    def add(self, data: st.DataObject, title: str, explicit: bool) -> None:
        value, given = self.draw_hash(data)
        entry_id = self.draw_id(data) if explicit else None
        result = self.compare(
            lambda index: index.add(given, title, id=entry_id),
            lambda model: model.add(value, title, entry_id),
        )
        if result[0] == "returned":
            self.remember([result[1]], [value])

    @rule(data=st.data(), count=st.integers(0, 6), explicit=st.booleans(), as_array=st.booleans())
    def add_many(self, data: st.DataObject, count: int, explicit: bool, as_array: bool) -> None:
        drawn = [self.draw_hash(data) for _ in range(count)]
        values = [value for value, _ in drawn]
        given: Any = self.as_array(values) if as_array else [g for _, g in drawn]
        names = [data.draw(titles) for _ in range(count)]
        ids = [self.draw_id(data) for _ in range(count)] if explicit else None
        result = self.compare(
            lambda index: index.add_many(given, names, ids=ids),
            lambda model: model.add_many(values, names, ids),
        )
        if result[0] == "returned":
            self.remember(result[1], values)

    @rule()
    def sync(self) -> None:
        self.compare(lambda index: index.sync(), lambda model: model.sync())

    @rule(threshold=st.integers(1, 8))
    def set_sync_threshold(self, threshold: int) -> None:
        self.compare(
            lambda index: index.set_sync_threshold(threshold),
            lambda model: model.set_sync_threshold(threshold),
        )

    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        entry_id = self.draw_id(data)
        self.compare(lambda index: index.delete(entry_id), lambda model: model.delete(entry_id))

    # -- reads ------------------------------------------------------------------------------

    @rule(data=st.data(), radius=radii, limit=limits)
    def query(self, data: st.DataObject, radius: float, limit: int | None) -> None:
        value, given = self.draw_hash(data)
        self.compare(
            lambda index: index.query(given, radius, limit=limit),
            lambda model: model.query(value, int(radius), limit),
        )

    @rule(data=st.data(), count=st.integers(0, 4), radius=radii, limit=limits)
    def query_many(self, data: st.DataObject, count: int, radius: float, limit: int | None) -> None:
        drawn = [self.draw_hash(data) for _ in range(count)]
        self.compare(
            lambda index: index.query_many([g for _, g in drawn], radius, limit=limit),
            lambda model: [model.query(v, int(radius), limit) for v, _ in drawn],
        )

    @rule(data=st.data(), k=st.one_of(st.integers(0, 10), st.just(2**64)))
    def knn(self, data: st.DataObject, k: int) -> None:
        value, given = self.draw_hash(data)
        self.compare(lambda index: index.knn(given, k), lambda model: model.knn(value, k))

    @rule()
    def everything(self) -> None:
        """The whole synced content, as one query of radius ``BITS`` sees it."""
        self.compare(
            lambda index: index.query(0, self.BITS), lambda model: model.query(0, self.BITS)
        )

    @rule(radius=radii)
    def pairs(self, radius: float) -> None:
        self.compare(
            lambda index: index.pairs(radius),
            lambda model: model.pairs(min(int(radius), self.BITS)),
        )

    @rule(radius=radii, page_size=st.integers(1, 5))
    def iter_pairs(self, radius: float, page_size: int) -> None:
        """Paged pairs, reassembled in the plain order, equal the plain answer."""

        def walked(index: Any) -> list[Any]:
            pairs = list(index.iter_pairs(radius, page_size=page_size))
            return sorted(pairs, key=lambda p: (p[2], p[0], p[1]))

        self.compare(walked, lambda model: model.pairs(min(int(radius), self.BITS)))

    @rule()
    def entries(self) -> None:
        self.compare(lambda index: self.entry_rows(index), lambda model: model.entries())

    def entry_rows(self, index: Any) -> list[Any]:
        """An index's entries with each hash as an int: wide codes come as hex text."""
        return [
            (e.id, e.hash if isinstance(e.hash, int) else int(e.hash, 16), e.title, e.pending)
            for e in index
        ]

    @rule(data=st.data())
    def lookup(self, data: st.DataObject) -> None:
        entry_id = self.draw_id(data)
        self.compare(lambda index: index.lookup(entry_id), lambda model: model.lookup(entry_id))

    @rule()
    def info(self) -> None:
        self.compare(
            lambda index: semantic_info(index.info()),
            lambda model: {
                "entries": len(model.indexed),
                "pending": len(model.pending),
                "next_id": model.next_id,
                "sync_threshold": model.sync_threshold,
                "bits": model.bits,
            },
        )
        assert self.embedded.info().keys() == self.remote.info().keys()

    # -- bad input: both backends refuse it the same way, and nothing changes ------------------

    @rule(
        method=st.sampled_from(["add", "add_many", "query", "query_many", "knn"]),
        data=st.data(),
    )
    def bad_hash(self, method: str, data: st.DataObject) -> None:
        bad = data.draw(
            st.sampled_from(BAD_HASHES if self.BITS == 64 else BAD_WIDE_HASHES), label="bad hash"
        )
        calls = {
            "add": lambda index: index.add(bad, "t"),
            "add_many": lambda index: index.add_many([1, bad], ["a", "b"]),
            "query": lambda index: index.query(bad, 3),
            "query_many": lambda index: index.query_many([1, bad], 3),
            "knn": lambda index: index.knn(bad, 3),
        }
        result = self.compare(calls[method])
        assert result[:2] == ("raised", "invalid-hash")

    @rule(bad=st.sampled_from(BAD_RADII), many=st.booleans())
    def bad_radius(self, bad: Any, many: bool) -> None:
        result = self.compare(
            (lambda index: index.query_many([1], bad))
            if many
            else (lambda index: index.query(1, bad))
        )
        assert result[:2] == ("raised", "invalid-radius")

    @rule(
        method=st.sampled_from(["add", "lookup", "delete", "add_many"]),
        bad=st.sampled_from(BAD_IDS),
    )
    def bad_id(self, method: str, bad: Any) -> None:
        calls = {
            "add": lambda index: index.add(1, "t", id=bad),
            "lookup": lambda index: index.lookup(bad),
            "delete": lambda index: index.delete(bad),
            "add_many": lambda index: index.add_many([1, 2], ["a", "b"], ids=[100, bad]),
        }
        result = self.compare(calls[method])
        assert result[:2] == ("raised", "invalid-id")

    @rule(bad=st.sampled_from(BAD_COUNTS), what=st.sampled_from(["k", "limit", "threshold"]))
    def bad_count(self, bad: Any, what: str) -> None:
        calls = {
            "k": lambda index: index.knn(1, bad),
            "limit": lambda index: index.query(1, 3, limit=bad),
            "threshold": lambda index: index.set_sync_threshold(bad),
        }
        result = self.compare(calls[what])
        codes = {"k": "invalid-k", "limit": "invalid-limit", "threshold": "invalid-sync-threshold"}
        assert result[:2] == ("raised", codes[what])

    # -- hash text straight to the module: its parser against the embedded index's ---------

    @rule(data=st.data(), title=titles)
    def add_as_text(self, data: st.DataObject, title: str) -> None:
        """``imgscout.add key <text>`` on the server (a ``ShardedIndex`` parses the text
        itself), ``Index.add(<text>)`` here."""
        text = data.draw(self.hash_texts(self.draw_hash_value(data)), label="hash text")
        value = self.spec_hash_value(text)
        raw_title = title.encode("utf-8", "surrogateescape")

        def send(index: Any) -> int:
            if index is self.remote and isinstance(index, RedisIndex):
                return int(wire.call(self.client, "imgscout.add", index.key, text, raw_title))
            return int(index.add(text, title))

        result = self.compare(send, lambda model: model.add(value, title, None))
        if result[0] == "returned":
            self.remember([result[1]], [value])

    @rule(data=st.data(), radius=st.integers(0, 260))
    def query_as_text(self, data: st.DataObject, radius: int) -> None:
        """``imgscout.query key <text> <radius>`` on the server, ``Index.query(<text>)`` here."""
        text = data.draw(self.hash_texts(self.draw_hash_value(data)), label="hash text")
        value = self.spec_hash_value(text)

        def send(index: Any) -> list[Match]:
            if index is self.remote and isinstance(index, RedisIndex):
                reply = wire.call(self.client, "imgscout.query", index.key, text, str(radius))
                return wire.matches(reply)
            return list(index.query(text, radius))

        self.compare(send, lambda model: model.query(value, radius, None))

    # -- persistence --------------------------------------------------------------------------

    @rule()
    def persist_and_reload(self) -> None:
        """save/load on the embedded side, DEBUG RELOAD (RDB save + load) on the server."""
        entries_before = self.embedded.entries()
        path = self.save_dir / f"{self.key.replace(':', '-')}.idx"
        self.embedded.save(path)
        self.embedded = Index.load(path)
        self.tally["save/load + DEBUG RELOAD"] += 1
        path.unlink()
        assert self.embedded.entries() == entries_before
        self.client.execute_command("DEBUG", "RELOAD")

    # -- after every step -------------------------------------------------------------------

    @invariant()
    def sizes_agree(self) -> None:
        if hasattr(self, "embedded"):
            self.compare(
                lambda index: (index.size(), len(index), index.pending),
                lambda model: (len(model.indexed), len(model.indexed), len(model.pending)),
            )


@pytest.fixture
def equivalence_clients(redis_server: Any) -> Iterator[list[redis.Redis]]:
    clients = [
        redis_server.client(protocol=protocol, decode_responses=decoded)
        for protocol in (2, 3)
        for decoded in (False, True)
    ]
    yield clients
    for connection in clients:
        connection.close()


@pytest.mark.timeout(3600)
def test_index_redis_and_brute_force_agree(
    equivalence_clients: list[redis.Redis], capsys: pytest.CaptureFixture[str]
) -> None:
    IndexEquivalence.clients = equivalence_clients
    with tempfile.TemporaryDirectory(prefix="imgscout-equivalence-") as folder:
        IndexEquivalence.save_dir = Path(folder)
        IndexEquivalence.tally.clear()
        run_state_machine_as_test(IndexEquivalence, settings=settings.get_profile(PROFILE))
    tally = IndexEquivalence.tally
    with capsys.disabled():
        print(f"\nequivalence ({PROFILE} profile):")
        for name, count in sorted(tally.items()):
            print(f"  {count:8d}  {name}")
    minimum = settings.get_profile(PROFILE).max_examples // 2
    assert tally["sequences"] >= minimum, "hypothesis ran far fewer sequences than asked"


class WideEquivalence(IndexEquivalence):
    """The same machine on 256-bit codes (PDQ's width): every hash form, every rule."""

    BITS = 256


@pytest.mark.timeout(3600)
def test_index_redis_and_brute_force_agree_at_256_bits(
    equivalence_clients: list[redis.Redis], capsys: pytest.CaptureFixture[str]
) -> None:
    WideEquivalence.clients = equivalence_clients
    profile = settings.get_profile(PROFILE)
    # A quarter of the 64-bit run: the rules are the same, only the width differs.
    wide_settings = settings(profile, max_examples=max(profile.max_examples // 4, 20))
    with tempfile.TemporaryDirectory(prefix="imgscout-equivalence-") as folder:
        WideEquivalence.save_dir = Path(folder)
        WideEquivalence.tally.clear()
        run_state_machine_as_test(WideEquivalence, settings=wide_settings)
    tally = WideEquivalence.tally
    with capsys.disabled():
        print(f"\nequivalence at 256 bits ({PROFILE} profile, a quarter of its sequences):")
        for name, count in sorted(tally.items()):
            print(f"  {count:8d}  {name}")
    assert tally["sequences"] >= wide_settings.max_examples // 2
    assert tally["non-empty query answers"] > 0, "no query found anything: the run tested little"
