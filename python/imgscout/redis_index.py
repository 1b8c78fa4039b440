"""The same interface as :class:`imgscout.Index`, over a Redis server with the imgscout module."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np
import redis
from redis.client import NEVER_DECODE

from ._args import (
    DEFAULT_MAX_ROWS,
    DEFAULT_PAGE_ROWS,
    IDS_EXHAUSTED_MESSAGE,
    MAX_ID,
    HashLike,
    Title,
    decode_title,
    duplicate_id_message,
    encode_title,
    encode_titles,
    parse_count,
    parse_hash,
    parse_hashes,
    parse_id,
    parse_ids,
    parse_max_rows,
    parse_page_size,
    parse_radius,
    parse_sync_threshold,
)
from ._core import AnswerTooLargeError
from ._types import Entry, Match, Pair
from .index import _check_lengths

if TYPE_CHECKING:
    import numpy.typing as npt

# Replies are read as bytes whatever the client's decode_responses says: titles are
# binary-safe on the server and are decoded here the way the embedded index decodes them.
_RAW = {NEVER_DECODE: True}

#: Adds entries with explicit ids all or none: ``imgscout.madd`` has no ids, and a pipeline
#: of ``imgscout.add`` would stop half way at a duplicate. Checks run in entry order, as the
#: core's ``add_many`` does, so both name the same id. Ids stay strings: Lua numbers are
#: doubles and would round ids above 2**53.
_ADD_WITH_IDS = """
local key = KEYS[1]
local seen = {}
for i = 3, #ARGV, 3 do
  local id = ARGV[i]
  if seen[id] or redis.call('imgscout.lookup', key, id) then
    return {0, id}
  end
  seen[id] = true
end
for i = 1, #ARGV, 3 do
  redis.call('imgscout.add', key, ARGV[i], ARGV[i + 1], ARGV[i + 2])
end
return {1}
"""

#: Module error texts (after ``ERR``) that mean bad input: the client checks the same inputs
#: first, so these only surface if the two disagree; they still map to ValueError.
_INVALID_INPUT_ERRORS = (
    "invalid hash value",
    "invalid radius",
    "invalid id",
    "invalid k",
    "invalid limit",
    "invalid sync threshold",
)


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value


def _error_text(error: redis.ResponseError) -> str:
    text = str(error)
    # redis-py prefixes pipeline errors with "Command # n (...) of pipeline caused error: ".
    _, marker, after = text.partition(" of pipeline caused error: ")
    if marker:
        text = after
    return text[4:] if text.startswith("ERR ") else text


def _raise_translated(error: redis.ResponseError, entry_id: int | None = None) -> NoReturn:
    """Raises the exception the embedded index raises for the same input."""
    text = _error_text(error)
    if text.startswith("no such id"):
        raise KeyError(entry_id) from None
    if text.startswith("id already exists"):
        raise ValueError(duplicate_id_message(entry_id) if entry_id is not None else text) from None
    if text.startswith("automatic ids exhausted"):
        raise ValueError(IDS_EXHAUSTED_MESSAGE) from None
    if text.startswith(_INVALID_INPUT_ERRORS):
        raise ValueError(text) from None
    if text.startswith("answer has more than"):
        raise AnswerTooLargeError(text) from None
    raise error


def _matches(reply: list[list[Any]]) -> list[Match]:
    return [Match(decode_title(title), int(id), int(distance)) for title, id, distance in reply]


#: The figures of ``imgscout.info`` that are text; every other one is an unsigned integer.
#: The equivalence tests compare ``info()`` with the embedded index's, so a drift shows.
_TEXT_INFO = frozenset({"segment_sizes", "multi_index_fields", "plan", "kernel"})


def _info_value(name: str, value: Any) -> int | str:
    if name in _TEXT_INFO:
        return _text(value)
    # An integer reply, or (for values above 2**63 - 1, such as next_id once automatic ids
    # are used up) a RESP3 big number or a RESP2 bulk string of digits.
    return int(value)


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
        max_rows: int = DEFAULT_MAX_ROWS,
    ):
        """``max_rows``: as :attr:`Index.max_rows`, for the answers this client assembles
        (``pairs``, ``entries``); the server caps each of its replies by its own
        ``imgscout.max-reply-rows`` too, and a query or knn past that raises
        :class:`AnswerTooLargeError`."""
        self.client = client
        self.key = key
        self.max_rows = parse_max_rows(max_rows)
        if sync_threshold is not None:
            self.set_sync_threshold(sync_threshold)

    def _call(self, *args: Any, entry_id: int | None = None) -> Any:
        try:
            return self.client.execute_command(*args, **_RAW)
        except redis.ResponseError as error:
            _raise_translated(error, entry_id)

    # -- configuration -------------------------------------------------------------------

    @property
    def sync_threshold(self) -> int:
        return int(self.info()["sync_threshold"])

    def set_sync_threshold(self, threshold: int) -> None:
        """Sets this key's threshold (creating an empty index if the key is missing)."""
        value = parse_sync_threshold(threshold)
        self._call("imgscout.config", self.key, "SYNC_THRESHOLD", value)

    @property
    def next_id(self) -> int:
        return int(self.info()["next_id"])

    # -- writes --------------------------------------------------------------------------

    def add(self, hash: HashLike, title: Title, id: int | None = None) -> int:
        value = parse_hash(hash)
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
        """All entries or none, in one command (``imgscout.madd``, or a script with ids)."""
        values = parse_hashes(hashes)
        raw_titles = encode_titles(titles)
        id_values = None if ids is None else parse_ids(ids)
        _check_lengths(len(values), len(raw_titles), id_values)
        if len(values) == 0:
            return np.zeros(0, dtype=np.uint64)
        arguments: list[Any] = []
        if id_values is None:
            for value, title in zip(values.tolist(), raw_titles):
                arguments += (value, title)
            reply = self._call("imgscout.madd", self.key, *arguments)
            return np.array([int(i) for i in reply], dtype=np.uint64)
        for value, title, entry_id in zip(values.tolist(), raw_titles, id_values.tolist()):
            arguments += (value, title, entry_id)
        reply = self._call("EVAL", _ADD_WITH_IDS, 1, self.key, *arguments)
        if int(reply[0]) == 0:
            raise ValueError(duplicate_id_message(int(reply[1])))
        return id_values

    def sync(self) -> None:
        self._call("imgscout.sync", self.key)

    def delete(self, id: int) -> None:
        entry_id = parse_id(id)
        self._call("imgscout.del", self.key, entry_id, entry_id=entry_id)

    # -- reads ---------------------------------------------------------------------------

    def query(self, hash: HashLike, radius: float, limit: int | None = None) -> list[Match]:
        value = parse_hash(hash)
        bits = parse_radius(radius)
        return _matches(self._call("imgscout.query", self.key, value, bits, *_limit_args(limit)))

    def query_many(
        self,
        hashes: Sequence[HashLike] | npt.ArrayLike,
        radius: float,
        limit: int | None = None,
    ) -> list[list[Match]]:
        """One pipelined round trip of ``imgscout.query`` commands."""
        values = parse_hashes(hashes)
        bits = parse_radius(radius)
        tail = _limit_args(limit)
        if len(values) == 0:
            return []
        pipeline = self.client.pipeline(transaction=False)
        for value in values.tolist():
            pipeline.execute_command("imgscout.query", self.key, value, bits, *tail, **_RAW)
        try:
            replies = pipeline.execute()
        except redis.ResponseError as error:
            _raise_translated(error)
        return [_matches(reply) for reply in replies]

    def knn(self, hash: HashLike, k: int) -> list[Match]:
        value = parse_hash(hash)
        # The server reads k as a signed 64-bit integer; more than that is "all" anyway.
        count = min(parse_count(k, "k"), MAX_ID)
        return _matches(self._call("imgscout.knn", self.key, value, count))

    def lookup(self, id: int) -> str | None:
        title = self._call("imgscout.lookup", self.key, parse_id(id))
        return None if title is None else decode_title(title)

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
        reply = self._call("imgscout.info", self.key)
        if isinstance(reply, dict):
            items = list(reply.items())
        else:
            items = list(zip(reply[::2], reply[1::2]))
        return {_text(name): _info_value(_text(name), value) for name, value in items}

    def pairs(self, radius: float) -> list[Pair]:
        """Every pair of synced entries within ``radius`` bits (``imgscout.pairs``), sorted
        by distance, then ids. An answer larger than the server's reply cap is fetched page
        by page; more than :attr:`max_rows` raise :class:`AnswerTooLargeError`."""
        bits = parse_radius(radius)
        try:
            reply = self._call("imgscout.pairs", self.key, bits)
        except AnswerTooLargeError:
            pairs = []
            for pair in self.iter_pairs(bits):
                if len(pairs) == self.max_rows:
                    raise AnswerTooLargeError(
                        f"answer has more than {self.max_rows} rows; ask for fewer with a "
                        "limit or page through it with a cursor"
                    ) from None
                pairs.append(pair)
            pairs.sort(key=_pair_order)
            return pairs
        return [_pair(row) for row in reply]

    def iter_pairs(self, radius: float, page_size: int = DEFAULT_PAGE_ROWS) -> Iterator[Pair]:
        """As :meth:`Index.iter_pairs`: one ``imgscout.pairs ... CURSOR`` round trip a page."""
        bits = parse_radius(radius)
        size = parse_page_size(page_size)
        for rows in self._walk("imgscout.pairs", self.key, bits, count=size):
            yield from map(_pair, rows)

    def _walk(self, *command: Any, count: int) -> Iterator[list[Any]]:
        cursor: Any = "0"
        while True:
            next_cursor, rows = self._call(*command, "CURSOR", cursor, "COUNT", count)
            yield rows
            if _text(next_cursor) == "0":
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
                _entry(row)
                for rows in self._walk("imgscout.entries", self.key, count=DEFAULT_PAGE_ROWS)
                for row in rows
            ]
            return [e for e in every if not e.pending] + [e for e in every if e.pending]
        return [_entry(row) for row in reply]

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.client!r}, key={self.key!r})"


def _pair(row: Sequence[Any]) -> Pair:
    a, b, distance = row
    return Pair(int(a), int(b), int(distance))


def _pair_order(pair: Pair) -> tuple[int, int, int]:
    return (pair.distance, pair.a, pair.b)


def _entry(row: Sequence[Any]) -> Entry:
    entry_id, hash_value, title, pending = row
    # The hash comes as a decimal string: it may not fit a signed integer reply.
    return Entry(int(entry_id), int(hash_value), decode_title(title), bool(int(pending)))


def _limit_args(limit: int | None) -> tuple[Any, ...]:
    if limit is None:
        return ()
    # The server reads the limit as a signed 64-bit integer; more than that means "all".
    return ("LIMIT", min(parse_count(limit, "limit"), MAX_ID))
