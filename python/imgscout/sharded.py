"""One logical index spread over several imgscout keys, for Redis Cluster.

A single imgscout key lives in one hash slot, so on one cluster node. ``ShardedIndex`` splits
an index into ``shards`` keys whose hash tags put them in different parts of the slot space
(so, on a cluster made by ``redis-cli --cluster create``, on different nodes). Entry ``id``
always lives in shard ``id % shards``: writes, ``lookup`` and ``delete`` go to that one key;
queries go to every shard at once (one pipeline per node) and the sorted answers are merged.

The answers, ids, pending counts and exceptions are those of :class:`imgscout.Index` given the
same calls, because the client reproduces the index's two global rules itself:

* automatic ids continue after the largest id of the whole index: the client reads every
  shard's counter (``next_id``) and sends the ids it chose as explicit ids;
* the pending queue is global: when the entries pending on all shards reach the threshold,
  every shard is synced at the point where an ``Index`` would have synced.

Each shard's part of a write is ``imgscout.madd ... IDS`` (all or none on that shard, the ids
checked by the module), with an ``imgscout.sync`` where the global queue reaches the
threshold. Across shards Redis Cluster has no transactions, so with several writers at once
the guarantees weaken: ids stay unique (a shard refuses a taken id; a batch that lost a race
is undone on the other shards and retried with fresh automatic ids), but a sync can happen a
little earlier or later than a single ``Index`` would have done it.
"""

from __future__ import annotations

import heapq
import random
import time
from collections.abc import Iterator, Sequence
from itertools import islice
from typing import TYPE_CHECKING, Any

import numpy as np
import redis
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

from . import _redis_common as wire
from ._args import (
    DEFAULT_MAX_ROWS,
    DEFAULT_PAGE_ROWS,
    MAX_ID,
    MAX_SYNC_THRESHOLD,
    HashesLike,
    HashLike,
    Title,
    check_lengths,
    decode_title,
    encode_title,
    encode_titles,
    fail,
    parse_answer_ids,
    parse_bits,
    parse_count,
    parse_id,
    parse_ids,
    parse_knn_width,
    parse_max_rows,
    parse_radius,
    parse_sync_threshold,
    with_padding,
)
from ._cluster import ClusterTransport
from ._core import AnswerTooLargeError, IdExistsError
from ._types import Entry, Match, Pair
from .index import Index
from .redis_index import RedisIndex

if TYPE_CHECKING:
    import numpy.typing as npt

#: Figures of ``Index.info()`` and how the shards' values combine into the whole index's.
_SUMMED = ("entries", "pending", "memory_bytes", "segments", "deleted_slots", "builds_pending")
_LARGEST = ("next_id",)

#: Rounds of a write that lost an id race to another writer before giving up.
_WRITE_ATTEMPTS = 20

MAX_SHARDS = REDIS_CLUSTER_HASH_SLOTS


def shard_key(name: str, shard: int, shards: int) -> str:
    """The key of shard ``shard`` of ``shards``: ``{name:shard/shards:salt}``.

    The whole name is the hash tag, so each shard's title hashes (``<key>:<id>``) share its
    slot. ``salt`` is the smallest integer that puts the slot in the shard's own
    ``1/shards`` of the slot space: ``redis-cli --cluster create`` gives each master one
    contiguous range, so shards spread evenly over the masters. The names depend only on
    ``name`` and ``shards``, never on the cluster's current layout, so every client (and the
    same client after a resharding) finds the same keys.
    """
    low = shard * REDIS_CLUSTER_HASH_SLOTS // shards
    high = (shard + 1) * REDIS_CLUSTER_HASH_SLOTS // shards
    salt = 0
    while True:
        key = f"{{{name}:{shard}/{shards}:{salt}}}"
        if low <= key_slot(key.encode("utf-8", "surrogateescape")) < high:
            return key
        salt += 1


def _combined_info(shard_infos: list[dict[str, Any]]) -> dict[str, Any]:
    """The shards' figures as one index's, with the names and order of ``Index.info()``."""
    combined: dict[str, Any] = {}
    largest_shard = max(shard_infos, key=lambda info: int(info["entries"]))
    for name in shard_infos[0]:
        values = [info[name] for info in shard_infos]
        if name in _SUMMED:
            combined[name] = sum(int(value) for value in values)
        elif name in _LARGEST:
            combined[name] = max(int(value) for value in values)
        elif name == "sync_threshold":
            combined[name] = int(values[0])
        elif name == "segment_sizes":
            combined[name] = ",".join(str(value) for value in values if value != "")
        else:
            # Descriptions of one segment's layout (multi-index fields, plans) and the scan kernel:
            # the largest shard's, as the index answers with the largest segment's.
            combined[name] = largest_shard[name]
    return combined


class ShardedIndex:
    """An index spread over ``shards`` keys of a Redis Cluster (or of one server).

    ``client`` is a ``redis.cluster.RedisCluster`` (or a ``redis.Redis``: the shards then share
    one server, which only helps to test). Every client of one index must use the same
    ``name`` and ``shards``: another shard count names other keys (see :func:`shard_key`).
    Same methods, results and exceptions as :class:`imgscout.Index` and
    :class:`imgscout.RedisIndex`; see the module documentation for concurrent writers.
    """

    def __init__(
        self,
        client: redis.Redis | redis.RedisCluster,
        name: str,
        shards: int = 3,
        sync_threshold: int | None = None,
        *,
        bits: int = 64,
        max_rows: int = DEFAULT_MAX_ROWS,
    ) -> None:
        """``bits``: the code width, as :class:`RedisIndex` takes it; a wider index creates
        its shard keys at that width now."""
        if not isinstance(name, str) or not name or "{" in name or "}" in name:
            raise ValueError(
                f"invalid index name: {name!r} (a non-empty str without braces: the shard keys "
                "put it in a hash tag)"
            )
        if isinstance(shards, bool) or not isinstance(shards, int):
            raise ValueError(f"invalid shard count: {shards!r} (expected 1..{MAX_SHARDS})")
        if not 1 <= shards <= MAX_SHARDS:
            raise ValueError(f"invalid shard count: {shards!r} (expected 1..{MAX_SHARDS})")
        self.client = client
        self.transport = ClusterTransport(client)
        self.name = name
        self.shards = shards
        self.keys: list[str] = [shard_key(name, shard, shards) for shard in range(shards)]
        self._bits = parse_bits(bits)
        self.max_rows = parse_max_rows(max_rows)
        if sync_threshold is not None:
            self.set_sync_threshold(sync_threshold)
        elif self._bits != 64:
            self._claim_width()

    def _claim_width(self) -> None:
        """Creates every shard at this index's width, or checks the widths they have where
        this connection may not write."""
        try:
            self._on_every_shard("imgscout.config", *wire.width_options(self._bits))
        except (redis.exceptions.NoPermissionError, redis.exceptions.ReadOnlyError):
            for key in self.keys:
                wire.check_width(self.client, key, self._bits)

    @property
    def bits(self) -> int:
        """The width of the codes: 64 (pHash), 128 or 256 (PDQ)."""
        return self._bits

    def shard_of(self, id: int) -> int:
        """The shard that holds (or would hold) entry ``id``."""
        return parse_id(id) % self.shards

    # -- plumbing ------------------------------------------------------------------------

    def _on_every_shard(self, *command: Any) -> list[Any]:
        name, *rest = command
        return self.transport.run([(name, key, *rest) for key in self.keys])

    def shard_infos(self) -> list[dict[str, Any]]:
        """``imgscout.info`` of each shard, in shard order."""
        return [wire.info(reply) for reply in self._on_every_shard("imgscout.info")]

    # -- configuration -------------------------------------------------------------------

    @property
    def sync_threshold(self) -> int:
        return int(self.shard_infos()[0]["sync_threshold"])

    def set_sync_threshold(self, threshold: int) -> None:
        """Sets every shard's threshold (creating empty shards where missing); a global
        pending queue already that long is synced now, as ``Index`` does."""
        value = parse_sync_threshold(threshold)
        width = wire.width_options(self._bits)
        # Each shard's queue is counted before its config: a shard whose own queue reaches
        # the new threshold syncs itself, and the others must follow when the sum does.
        replies = self.transport.pipelined(
            [
                command
                for key in self.keys
                for command in (
                    ("imgscout.info", key),
                    ("imgscout.config", key, *width, "SYNC_THRESHOLD", value),
                )
            ]
        )
        if sum(int(wire.info(info)["pending"]) for info in replies[::2]) >= value:
            self.sync()

    @property
    def next_id(self) -> int:
        return max(int(info["next_id"]) for info in self.shard_infos())

    # -- writes --------------------------------------------------------------------------

    def add(self, hash: HashLike, title: Title, id: int | None = None) -> int:
        value = wire.hash_argument(hash, self._bits)
        raw_title = encode_title(title)
        entry_id = None if id is None else parse_id(id)
        ids = self._add_entries([value], [raw_title], None if entry_id is None else [entry_id])
        return ids[0]

    def add_many(
        self,
        hashes: Sequence[HashLike] | npt.ArrayLike,
        titles: Sequence[Title],
        ids: Sequence[int] | npt.ArrayLike | None = None,
    ) -> npt.NDArray[np.uint64]:
        """All entries or none (every id is checked first); returns their ids."""
        values = wire.hash_arguments(hashes, self._bits)
        raw_titles = encode_titles(titles)
        id_values = None if ids is None else parse_ids(ids)
        check_lengths(len(values), len(raw_titles), id_values)
        if len(values) == 0:
            return np.zeros(0, dtype=np.uint64)
        chosen = self._add_entries(
            values, raw_titles, None if id_values is None else id_values.tolist()
        )
        return np.array(chosen, dtype=np.uint64)

    def _add_entries(
        self, values: list[Any], titles: list[bytes], explicit: list[int] | None
    ) -> list[int]:
        for attempt in range(_WRITE_ATTEMPTS):
            written = self._try_add(values, titles, explicit)
            if written is not None:
                return written
            # Writers that collided would collide again if they retried in step: back off a
            # random, growing while.
            time.sleep(random.uniform(0, 0.001 * 2 ** min(attempt, 8)))
        raise redis.RedisError(
            f"gave up adding after {_WRITE_ATTEMPTS} rounds lost to concurrent writers"
        )

    def _try_add(
        self, values: list[Any], titles: list[bytes], explicit: list[int] | None
    ) -> list[int] | None:
        """One round: read the shards' counters and queues, choose ids as ``Index.add_many``
        does, write. None when another writer took one of the automatic ids meanwhile."""
        probes = [("imgscout.info", key) for key in self.keys]
        infos = [wire.info(reply) for reply in self.transport.read(probes)]
        taken = set()
        if explicit is not None:
            taken = {i for i, title in self._titles_by_id(explicit).items() if title is not None}
        counter = max(int(info["next_id"]) for info in infos)
        pending = sum(int(info["pending"]) for info in infos)
        threshold = int(infos[0]["sync_threshold"])

        ids: list[int] = []
        seen: set[int] = set()
        for position in range(len(values)):
            if explicit is not None:
                entry_id = explicit[position]
            elif counter > MAX_ID:
                fail("ids-exhausted")
            else:
                entry_id = counter
            if entry_id in taken or entry_id in seen:
                fail("id-exists", entry_id)
            seen.add(entry_id)
            counter = max(counter, entry_id + 1)
            ids.append(entry_id)

        # Index.add_many syncs whenever the queue reaches the threshold, so the first
        # `synced_count` new entries end up synced with everything pending before them.
        total = pending + len(ids)
        must_sync = total >= threshold
        # max(): another client may have left a queue already past the threshold.
        synced_count = max(0, len(ids) - total % threshold) if must_sync else 0
        before: list[list[int]] = [[] for _ in range(self.shards)]
        after: list[list[int]] = [[] for _ in range(self.shards)]
        for position, entry_id in enumerate(ids):
            side = before if position < synced_count else after
            side[entry_id % self.shards].append(position)
        # Each shard gets its entries that an Index would sync, the sync, then the rest, in
        # order on one connection; each madd checks its ids and adds all or none.
        commands: list[tuple[Any, ...]] = []
        writes: list[tuple[int, list[int]]] = []
        for shard, key in enumerate(self.keys):
            for part, sync_after in ((before[shard], must_sync), (after[shard], False)):
                if part:
                    arguments = wire.add_arguments(
                        [values[p] for p in part], [titles[p] for p in part], [ids[p] for p in part]
                    )
                    writes.append((len(commands), [ids[p] for p in part]))
                    commands.append(("imgscout.madd", key, *arguments))
                if sync_after:
                    commands.append(("imgscout.sync", key))
        replies = self.transport.settled(commands)
        failed = [reply for reply in replies if isinstance(reply, BaseException)]
        if not failed:
            return ids
        # Another writer took an id between our check and our write (or a write failed):
        # undo the parts that were written, so the batch stays all or none.
        undo = [
            ("imgscout.del", self.keys[entry_id % self.shards], entry_id)
            for position, part_ids in writes
            if not isinstance(replies[position], BaseException)
            for entry_id in part_ids
        ]
        self.transport.pipelined(undo)
        if isinstance(failed[0], IdExistsError) and explicit is None:
            return None
        raise failed[0]

    def sync(self) -> None:
        self._on_every_shard("imgscout.sync")

    def delete(self, id: int) -> None:
        entry_id = parse_id(id)
        self.transport.call(
            "imgscout.del", self.keys[entry_id % self.shards], entry_id, entry_id=entry_id
        )

    # -- reads ---------------------------------------------------------------------------

    def query(self, hash: HashLike, radius: float, limit: int | None = None) -> list[Match]:
        value = wire.hash_argument(hash, self._bits)
        bits = parse_radius(radius, self._bits)
        tail = wire.limit_args(limit)
        replies = self._on_every_shard("imgscout.query", value, bits, *tail)
        return _merge(replies, _count(limit))

    def query_many(
        self,
        hashes: Sequence[HashLike] | npt.ArrayLike,
        radius: float,
        limit: int | None = None,
    ) -> list[list[Match]]:
        """Every query on every shard in one pipelined round trip per node."""
        values = wire.hash_arguments(hashes, self._bits)
        bits = parse_radius(radius, self._bits)
        tail = wire.limit_args(limit)
        commands = [
            ("imgscout.query", key, value, bits, *tail) for value in values for key in self.keys
        ]
        replies = self.transport.read(commands)
        return [
            _merge(replies[start : start + self.shards], _count(limit))
            for start in range(0, len(replies), self.shards)
        ]

    def query_arrays(
        self, hashes: HashesLike, radius: float, limit: int | None = None
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int32]]:
        """As :meth:`Index.query_arrays`: one ``imgscout.mquery`` per shard, one pipelined
        round trip per node, the shards' rows merged per query."""
        values = wire.batch_arguments(hashes, self._bits)
        bits = parse_radius(radius, self._bits)
        if not values:
            return wire.range_arrays([])
        tail = wire.limit_args(limit)
        replies = self._on_every_shard("imgscout.mquery", bits, *tail, *values)
        cut = _count(limit)
        return wire.range_arrays(
            [wire.merged_rows([reply[q] for reply in replies], cut) for q in range(len(values))]
        )

    def knn_arrays(
        self, hashes: HashesLike, k: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int32]]:
        """As :meth:`Index.knn_arrays`: the ``k`` nearest of each shard, merged."""
        values = wire.batch_arguments(hashes, self._bits)
        count = parse_knn_width(k, len(values), self.max_rows)
        if not values:
            return wire.knn_arrays([], count)
        replies = self._on_every_shard("imgscout.mknn", min(count, MAX_ID), *values)
        rows = [
            wire.merged_rows([reply[q] for reply in replies], count) for q in range(len(values))
        ]
        return wire.knn_arrays(rows, count)

    def knn(self, hash: HashLike, k: int) -> list[Match]:
        value = wire.hash_argument(hash, self._bits)
        count = min(parse_count(k, "k"), MAX_ID)
        # The k nearest of the whole index are among the k nearest of each shard.
        return _merge(self._on_every_shard("imgscout.knn", value, count), count)

    def lookup(self, id: int) -> str | None:
        entry_id = parse_id(id)
        title = self.transport.call("imgscout.lookup", self.keys[entry_id % self.shards], entry_id)
        return None if title is None else decode_title(title)

    def titles(self, ids: Sequence[int] | npt.ArrayLike) -> list[str | None]:
        """As :meth:`Index.titles`: one ``imgscout.mlookup`` per shard, one pipelined round
        trip per node."""
        valid, padding = parse_answer_ids(ids)
        entry_ids = valid.tolist()
        found = self._titles_by_id(entry_ids)
        titles = [None if found[i] is None else decode_title(found[i]) for i in entry_ids]
        return with_padding(titles, padding)

    def _titles_by_id(self, entry_ids: Sequence[int]) -> dict[int, bytes | None]:
        """Each id's raw title (None where there is none), one ``imgscout.mlookup`` a shard."""
        by_shard: dict[int, list[int]] = {}
        for entry_id in dict.fromkeys(entry_ids):
            by_shard.setdefault(entry_id % self.shards, []).append(entry_id)
        commands = [("imgscout.mlookup", self.keys[shard], *ids) for shard, ids in by_shard.items()]
        found: dict[int, bytes | None] = {}
        for ids, titles in zip(by_shard.values(), self.transport.read(commands)):
            found.update(zip(ids, titles))
        return found

    def title_hash_keys(self, ids: Sequence[int] | npt.ArrayLike) -> list[str]:
        """The names of the ``<key>:<id>`` hashes the module writes for these entries (each
        in its shard key's slot, thanks to the hash tag)."""
        return [f"{self.keys[i % self.shards]}:{i}" for i in parse_ids(ids).tolist()]

    def __contains__(self, id: object) -> bool:
        try:
            return self.lookup(id) is not None  # type: ignore[arg-type]
        except ValueError:
            return False

    def size(self) -> int:
        return sum(int(size) for size in self._on_every_shard("imgscout.size"))

    def __len__(self) -> int:
        return self.size()

    @property
    def pending(self) -> int:
        return sum(int(info["pending"]) for info in self.shard_infos())

    def info(self) -> dict[str, Any]:
        """The figures of ``Index.info()`` for the whole index (sums, or the largest value
        where a sum means nothing); ``shard_infos()`` has each shard's own."""
        return _combined_info(self.shard_infos())

    def pairs(self, radius: float) -> list[Pair]:
        """Every pair of synced entries within ``radius`` bits, as ``Index.pairs`` gives them.

        Pairs may straddle shards, so this copies every synced entry's id and hash (not the
        titles) to this process and joins them with the embedded core: O(entries) transfer
        and memory, like ``entries()``.
        """
        return self._joined().pairs(parse_radius(radius, self._bits))

    def pairs_arrays(
        self, radius: float
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int32]]:
        """The pairs of :meth:`pairs` as ``(a, b, distances)`` arrays, over the same local
        copy."""
        return self._joined().pairs_arrays(parse_radius(radius, self._bits))

    def iter_pairs(self, radius: float, page_size: int = DEFAULT_PAGE_ROWS) -> Iterator[Pair]:
        """As :meth:`Index.iter_pairs`, over the same local copy as :meth:`pairs`."""
        return self._joined().iter_pairs(parse_radius(radius, self._bits), page_size)

    def _joined(self) -> Index:
        """Every synced entry's id and hash, in an embedded index."""
        synced = [entry for entry in self.entries() if not entry.pending]
        joined = Index(sync_threshold=MAX_SYNC_THRESHOLD, bits=self._bits, max_rows=self.max_rows)
        hashes = [entry.hash for entry in synced]
        joined.add_many(
            np.array(hashes, dtype=np.uint64) if self._bits == 64 else hashes,
            [b""] * len(synced),
            np.array([entry.id for entry in synced], dtype=np.uint64),
        )
        joined.sync()
        return joined

    def entries(self) -> list[Entry]:
        """Synced entries by id, then pending ones.

        Unlike ``Index``, pending entries come by id, not in insertion order: each shard
        keeps its own queue's order, but the order across shards is not recorded anywhere.
        Each shard is read at once; with concurrent writers the shards may be read at
        slightly different moments.
        """
        try:
            replies = self._on_every_shard("imgscout.entries")
        except AnswerTooLargeError:
            # A shard larger than the server's reply cap: every shard page by page.
            replies = [
                [
                    row
                    for rows in RedisIndex(self.client, key, bits=64)._walk(
                        "imgscout.entries", key, count=DEFAULT_PAGE_ROWS
                    )
                    for row in rows
                ]
                for key in self.keys
            ]
        every = [wire.entry(row, self._bits) for reply in replies for row in reply]
        synced = sorted((entry for entry in every if not entry.pending), key=_entry_id)
        pending = sorted((entry for entry in every if entry.pending), key=_entry_id)
        return synced + pending

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries())

    # -- the keys' lifetime --------------------------------------------------------------

    def key_names(self) -> list[str]:
        """The shard keys and the title hashes beside them: every Redis key this index
        occupies."""
        return [*self.keys, *self.title_hash_keys([entry.id for entry in self.entries()])]

    def expire(self, seconds: int) -> None:
        """Gives every shard and its title hashes a time to live."""
        wire.for_each_key(self.client, "expire", self.key_names(), int(seconds))

    def drop(self) -> None:
        """Deletes every shard and its title hashes."""
        wire.for_each_key(self.client, "delete", self.key_names())

    def __repr__(self) -> str:
        width = "" if self._bits == 64 else f", bits={self._bits}"
        return (
            f"{type(self).__name__}({self.client!r}, name={self.name!r}, shards={self.shards}"
            f"{width})"
        )


def _merge(replies: Sequence[list[list[Any]]], limit: int | None) -> list[Match]:
    """The shards' answers (each sorted by distance, then id) as one sorted answer."""
    merged = heapq.merge(*(wire.matches(reply) for reply in replies), key=_rank)
    return list(merged if limit is None else islice(merged, limit))


def _count(limit: int | None) -> int | None:
    """A validated limit, capped where it means "all" anyway (islice takes no more)."""
    return None if limit is None else min(parse_count(limit, "limit"), MAX_ID)


def _entry_id(entry: Entry) -> int:
    return entry.id


def _rank(match: Match) -> tuple[int, int]:
    return (match.distance, match.id)
