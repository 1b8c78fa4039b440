"""The same interface as :class:`imgscout.Index`, over a Redis server with the imgscout module."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import redis

from . import _redis_common as wire
from ._args import (
    DEFAULT_MAX_ROWS,
    DEFAULT_PAGE_ROWS,
    MAX_ID,
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
    parse_page_size,
    parse_radius,
    parse_sync_threshold,
    with_padding,
)
from ._core import AnswerTooLargeError
from ._types import Entry, Match, Pair

if TYPE_CHECKING:
    import numpy.typing as npt


class RedisIndex:
    """An index stored under ``key`` on a Redis server with the imgscout module loaded.

    Same methods, results and exceptions as :class:`imgscout.Index`. Every call is one round
    trip; ``client`` is a ``redis.Redis`` (either ``decode_responses`` setting, RESP2 or 3) or
    anything with the same ``execute_command`` and ``pipeline``.
    """

    def __init__(
        self,
        client: redis.Redis,
        key: str | bytes,
        sync_threshold: int | None = None,
        *,
        bits: int = 64,
        max_rows: int = DEFAULT_MAX_ROWS,
    ):
        """``bits``: the code width, 64, 128 or 256 (see :attr:`bits`). A wider client
        creates its key at that width now (``imgscout.config key BITS n``), so that the key is
        never made at another; a key that already holds another width is an
        ``InvalidArgumentError`` here.

        ``max_rows``: as :attr:`Index.max_rows`, for the answers this client assembles
        (``pairs``, ``entries``); the server caps each of its replies by its own
        ``imgscout.max-reply-rows`` too, and a query or knn past that raises
        :class:`AnswerTooLargeError`."""
        self.client = client
        self.key = key
        self._bits = parse_bits(bits)
        self.max_rows = parse_max_rows(max_rows)
        if sync_threshold is not None:
            self.set_sync_threshold(sync_threshold)
        elif self._bits != 64:
            self._claim_width()

    def _claim_width(self) -> None:
        """Creates the key at this client's width, or checks the width it has where this
        connection may not write (a read-only user or replica)."""
        try:
            self._call("imgscout.config", self.key, *wire.width_options(self._bits))
        except (redis.exceptions.NoPermissionError, redis.exceptions.ReadOnlyError):
            wire.check_width(self.client, self.key, self._bits)

    @property
    def bits(self) -> int:
        """The width of the codes this client reads and sends: 64 (pHash), 128 or 256 (PDQ)."""
        return self._bits

    def _call(self, *args: Any, entry_id: int | None = None) -> Any:
        return wire.call(self.client, *args, entry_id=entry_id)

    # -- configuration -------------------------------------------------------------------

    @property
    def sync_threshold(self) -> int:
        return int(self.info()["sync_threshold"])

    def set_sync_threshold(self, threshold: int) -> None:
        """Sets this key's threshold (creating an empty index if the key is missing)."""
        value = parse_sync_threshold(threshold)
        width = wire.width_options(self._bits)
        self._call("imgscout.config", self.key, *width, "SYNC_THRESHOLD", value)

    @property
    def next_id(self) -> int:
        return int(self.info()["next_id"])

    # -- writes --------------------------------------------------------------------------

    def add(self, hash: HashLike, title: Title, id: int | None = None) -> int:
        value = wire.hash_argument(hash, self._bits)
        raw_title = encode_title(title)
        if id is None:
            return int(self._call("imgscout.add", self.key, value, raw_title))
        entry_id = parse_id(id)
        return int(
            self._call("imgscout.add", self.key, value, raw_title, entry_id, entry_id=entry_id)
        )

    def add_many(
        self,
        hashes: Sequence[HashLike] | npt.ArrayLike,
        titles: Sequence[Title],
        ids: Sequence[int] | npt.ArrayLike | None = None,
    ) -> npt.NDArray[np.uint64]:
        """All entries or none, in one command (``imgscout.madd``; ``... IDS`` with ids)."""
        values = wire.hash_arguments(hashes, self._bits)
        raw_titles = encode_titles(titles)
        id_values = None if ids is None else parse_ids(ids)
        check_lengths(len(values), len(raw_titles), id_values)
        if len(values) == 0:
            return np.zeros(0, dtype=np.uint64)
        arguments = wire.add_arguments(
            values, raw_titles, None if id_values is None else id_values.tolist()
        )
        reply = self._call("imgscout.madd", self.key, *arguments)
        return np.array([int(i) for i in reply], dtype=np.uint64)

    def sync(self) -> None:
        self._call("imgscout.sync", self.key)

    def delete(self, id: int) -> None:
        entry_id = parse_id(id)
        self._call("imgscout.del", self.key, entry_id, entry_id=entry_id)

    # -- reads ---------------------------------------------------------------------------

    def query(self, hash: HashLike, radius: float, limit: int | None = None) -> list[Match]:
        value = wire.hash_argument(hash, self._bits)
        bits = parse_radius(radius, self._bits)
        return wire.matches(
            self._call("imgscout.query", self.key, value, bits, *wire.limit_args(limit))
        )

    def query_many(
        self,
        hashes: Sequence[HashLike] | npt.ArrayLike,
        radius: float,
        limit: int | None = None,
    ) -> list[list[Match]]:
        """One pipelined round trip of ``imgscout.query`` commands."""
        values = wire.hash_arguments(hashes, self._bits)
        bits = parse_radius(radius, self._bits)
        tail = wire.limit_args(limit)
        if len(values) == 0:
            return []
        pipeline = self.client.pipeline(transaction=False)
        for value in values:
            pipeline.execute_command("imgscout.query", self.key, value, bits, *tail, **wire.RAW)
        try:
            replies = pipeline.execute()
        except redis.ResponseError as error:
            wire.raise_translated(error)
        return [wire.matches(reply) for reply in replies]

    def query_arrays(
        self, hashes: HashesLike, radius: float, limit: int | None = None
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int32]]:
        """As :meth:`Index.query_arrays`, in one command (``imgscout.mquery``)."""
        values = wire.batch_arguments(hashes, self._bits)
        bits = parse_radius(radius, self._bits)
        tail = wire.limit_args(limit)
        if not values:
            return wire.range_arrays([])
        return wire.range_arrays(self._call("imgscout.mquery", self.key, bits, *tail, *values))

    def knn_arrays(
        self, hashes: HashesLike, k: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int32]]:
        """As :meth:`Index.knn_arrays`, in one command (``imgscout.mknn``)."""
        values = wire.batch_arguments(hashes, self._bits)
        count = parse_knn_width(k, len(values), self.max_rows)
        if not values:
            return wire.knn_arrays([], count)
        return wire.knn_arrays(self._call("imgscout.mknn", self.key, count, *values), count)

    def knn(self, hash: HashLike, k: int) -> list[Match]:
        value = wire.hash_argument(hash, self._bits)
        # The server reads k as a signed 64-bit integer; more than that is "all" anyway.
        count = min(parse_count(k, "k"), MAX_ID)
        return wire.matches(self._call("imgscout.knn", self.key, value, count))

    def lookup(self, id: int) -> str | None:
        title = self._call("imgscout.lookup", self.key, parse_id(id))
        return None if title is None else decode_title(title)

    def titles(self, ids: Sequence[int] | npt.ArrayLike) -> list[str | None]:
        """As :meth:`Index.titles`, in one command (``imgscout.mlookup``)."""
        valid, padding = parse_answer_ids(ids)
        entry_ids = valid.tolist()
        found = self._call("imgscout.mlookup", self.key, *entry_ids) if entry_ids else []
        titles = [None if title is None else decode_title(title) for title in found]
        return with_padding(titles, padding)

    def __contains__(self, id: object) -> bool:
        try:
            return self.lookup(id) is not None  # type: ignore[arg-type]
        except ValueError:
            return False

    def size(self) -> int:
        return int(self._call("imgscout.size", self.key))

    def __len__(self) -> int:
        return self.size()

    @property
    def pending(self) -> int:
        return int(self.info()["pending"])

    def info(self) -> dict[str, Any]:
        return wire.info(self._call("imgscout.info", self.key))

    def pairs(self, radius: float) -> list[Pair]:
        """Every pair of synced entries within ``radius`` bits (``imgscout.pairs``), sorted
        by distance, then ids. An answer larger than the server's reply cap is fetched page
        by page; more than :attr:`max_rows` raise :class:`AnswerTooLargeError`."""
        bits = parse_radius(radius, self._bits)
        try:
            reply = self._call("imgscout.pairs", self.key, bits)
        except AnswerTooLargeError:
            pairs = []
            for pair in self.iter_pairs(bits):
                if len(pairs) == self.max_rows:
                    fail("too-many-rows", self.max_rows)
                pairs.append(pair)
            pairs.sort(key=wire.pair_order)
            return pairs
        return [wire.pair(row) for row in reply]

    def pairs_arrays(
        self, radius: float
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int32]]:
        """The pairs of :meth:`pairs` as ``(a, b, distances)`` arrays, as
        :meth:`Index.pairs_arrays`; the same round trips as :meth:`pairs`."""
        return wire.pair_arrays(self.pairs(radius))

    def iter_pairs(self, radius: float, page_size: int = DEFAULT_PAGE_ROWS) -> Iterator[Pair]:
        """As :meth:`Index.iter_pairs`: one ``imgscout.pairs ... CURSOR`` round trip a page."""
        bits = parse_radius(radius, self._bits)
        size = parse_page_size(page_size)
        for rows in self._walk("imgscout.pairs", self.key, bits, count=size):
            yield from map(wire.pair, rows)

    def _walk(self, *command: Any, count: int) -> Iterator[list[Any]]:
        cursor: Any = "0"
        while True:
            next_cursor, rows = self._call(*command, "CURSOR", cursor, "COUNT", count)
            yield rows
            if wire.text(next_cursor) == "0":
                return
            cursor = next_cursor

    def entries(self) -> list[Entry]:
        """Synced entries by id, then pending ones in insertion order (``imgscout.entries``).

        A key with more entries than the server's reply cap is read page by page; its
        pending entries then come by id (the pages do not record the queue's order)."""
        try:
            reply = self._call("imgscout.entries", self.key)
        except AnswerTooLargeError:
            every = [
                wire.entry(row, self._bits)
                for rows in self._walk("imgscout.entries", self.key, count=DEFAULT_PAGE_ROWS)
                for row in rows
            ]
            return [e for e in every if not e.pending] + [e for e in every if e.pending]
        return [wire.entry(row, self._bits) for row in reply]

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries())

    # -- the key's lifetime --------------------------------------------------------------

    def key_names(self) -> list[bytes]:
        """The key and the ``<key>:<id>`` title hashes the module keeps beside it (one per
        entry, where title hashes are on): every Redis key this index occupies."""
        key = self.key.encode("utf-8", "surrogateescape") if isinstance(self.key, str) else self.key
        return [key, *(key + b":%d" % entry.id for entry in self.entries())]

    def expire(self, seconds: int) -> None:
        """Gives the index and its title hashes a time to live (a scratch index left behind
        by a killed process goes away by itself)."""
        wire.for_each_key(self.client, "expire", self.key_names(), int(seconds))

    def drop(self) -> None:
        """Deletes the index and its title hashes."""
        wire.for_each_key(self.client, "delete", self.key_names())

    def __repr__(self) -> str:
        width = "" if self._bits == 64 else f", bits={self._bits}"
        return f"{type(self).__name__}({self.client!r}, key={self.key!r}{width})"
