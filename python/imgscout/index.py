"""The embedded index: the Rust core in-process."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from . import _core
from ._args import (
    DEFAULT_MAX_ROWS,
    DEFAULT_PAGE_ROWS,
    DEFAULT_SYNC_THRESHOLD,
    MAX_HASH,
    HashesLike,
    HashLike,
    Title,
    as_batch,
    as_wide_batch,
    check_lengths,
    encode_title,
    encode_titles,
    parse_answer_ids,
    parse_bits,
    parse_count,
    parse_hash,
    parse_hashes,
    parse_id,
    parse_ids,
    parse_knn_width,
    parse_max_rows,
    parse_page_size,
    parse_radius,
    parse_sync_threshold,
    parse_threads,
    parse_wide_hash,
    parse_wide_hashes,
    with_padding,
)
from ._types import Entry, Match, Pair

if TYPE_CHECKING:
    import numpy.typing as npt

_MAX_NATIVE_COUNT = 2**64 - 1


def _matches(raw: list[tuple[str, int, int]]) -> list[Match]:
    return list(map(Match._make, raw))


class Index:
    """Exact Hamming-distance search over 64-, 128- or 256-bit hashes, in this process.

    The width is fixed at creation (``bits``, default 64: pHash; 256 for PDQ or
    ``phash(hash_size=16)``) and kept by :meth:`save`/:meth:`load`. New entries wait in a
    pending queue until :meth:`sync` (or the automatic sync once ``sync_threshold`` entries
    are pending); queries see synced entries only, ``lookup`` sees both. Safe to share
    between threads: queries run in parallel with the GIL released, writers wait for them.
    """

    __slots__ = ("_bits", "_core", "_max_rows", "_threads")

    def __init__(
        self,
        sync_threshold: int | None = None,
        *,
        bits: int = 64,
        max_rows: int = DEFAULT_MAX_ROWS,
        threads: int | None = None,
    ) -> None:
        """``sync_threshold``: pending entries that trigger an automatic sync (default 500).
        ``bits``: the code width, 64, 128 or 256 (see :attr:`bits`).
        ``max_rows``: the most rows one answer may hold (see :attr:`max_rows`).
        ``threads``: threads a batch call may use (see :attr:`threads`)."""
        threshold = DEFAULT_SYNC_THRESHOLD if sync_threshold is None else sync_threshold
        self._bits = parse_bits(bits)
        self._core = _core.Index(parse_sync_threshold(threshold), self._bits)
        self.max_rows = max_rows
        self.threads = threads

    @classmethod
    def _wrap(cls, core: _core.Index) -> Index:
        index = cls.__new__(cls)
        index._core = core
        index._bits = core.bits
        index._max_rows = DEFAULT_MAX_ROWS
        index._threads = _core.ALL_CORES
        return index

    @property
    def bits(self) -> int:
        """Bits in this index's hashes: 64, 128 or 256, fixed at creation. Hashes of another
        width are refused with an error naming both; radii above it act as it."""
        return self._bits

    def _hash(self, value: HashLike) -> Any:
        return parse_hash(value) if self._bits == 64 else parse_wide_hash(value, self._bits)

    def _hashes(self, values: Any) -> Any:
        if self._bits == 64:
            return parse_hashes(values)
        return parse_wide_hashes(values, self._bits)

    def _batch(self, values: HashesLike) -> Any:
        if self._bits == 64:
            # One plain int, the common single call, skips the general parsers (which would
            # accept it unchanged): they cost as much as a search at small radii.
            if type(values) is int and 0 <= values <= MAX_HASH:
                return np.array((values,), dtype=np.uint64)
            return parse_hashes(as_batch(values))
        return parse_wide_hashes(as_wide_batch(values, self._bits), self._bits)

    def _radius(self, radius: object) -> int:
        return parse_radius(radius, self._bits)

    @property
    def threads(self) -> int:
        """Threads a batch call (``query_many``, ``query_arrays``, ``knn_arrays``) or ``pairs``
        may use, default every core; batches too small to gain run on the calling thread. The
        GIL is released meanwhile, and answers never depend on it."""
        return self._threads

    @threads.setter
    def threads(self, value: int | None) -> None:
        self._threads = _core.ALL_CORES if value is None else parse_threads(value)

    @property
    def max_rows(self) -> int:
        """The most rows one answer (``query``, ``query_many`` together, ``knn``, ``pairs``)
        may hold, default 10,000,000: a larger one raises :class:`AnswerTooLargeError` as soon
        as the search finds one row more, before memory grows with it. Ask for fewer with
        ``limit``, or page through pairs with :meth:`iter_pairs`."""
        return self._max_rows

    @max_rows.setter
    def max_rows(self, value: int) -> None:
        self._max_rows = parse_max_rows(value)

    # -- configuration -------------------------------------------------------------------

    @property
    def sync_threshold(self) -> int:
        return self._core.sync_threshold

    def set_sync_threshold(self, threshold: int) -> None:
        """Changes the threshold; a pending queue already that long is synced now."""
        self._core.set_sync_threshold(parse_sync_threshold(threshold))

    @property
    def next_id(self) -> int:
        """The id the next ``add`` without an explicit id gets."""
        return self._core.next_id

    # -- writes --------------------------------------------------------------------------

    def add(self, hash: HashLike, title: Title, id: int | None = None) -> int:
        """Adds one entry (pending until the next sync) and returns its id."""
        value = self._hash(hash)
        raw_title = encode_title(title)
        entry_id = None if id is None else parse_id(id)
        return self._core.add(value, raw_title, entry_id)

    def add_many(
        self,
        hashes: Sequence[HashLike] | npt.ArrayLike,
        titles: Sequence[Title],
        ids: Sequence[int] | npt.ArrayLike | None = None,
    ) -> npt.NDArray[np.uint64]:
        """Adds all entries or none (every id is checked first); returns their ids."""
        values = self._hashes(hashes)
        raw_titles = encode_titles(titles)
        id_values = None if ids is None else parse_ids(ids)
        check_lengths(len(values), len(raw_titles), id_values)
        return self._core.add_many(values, raw_titles, id_values)

    def sync(self) -> None:
        """Moves pending entries into the searchable structures."""
        self._core.sync()

    def delete(self, id: int) -> None:
        """Removes an entry, pending or synced; ``KeyError`` if no entry has ``id``."""
        self._core.delete(parse_id(id))

    # -- reads ---------------------------------------------------------------------------

    def query(self, hash: HashLike, radius: float, limit: int | None = None) -> list[Match]:
        """Every synced entry within ``radius`` bits, nearest first (then by id)."""
        # The common call (plain ints, no limit) is parsed and answered by the extension in
        # one step; anything else goes through the general parsers.
        if limit is None:
            found = self._core.query_fast(hash, radius, self._max_rows)
            if found is not None:
                return found
        value = self._hash(hash)
        bits = self._radius(radius)
        count = None if limit is None else min(parse_count(limit, "limit"), _MAX_NATIVE_COUNT)
        return _matches(self._core.query(value, bits, count, self._max_rows))

    def query_many(
        self,
        hashes: Sequence[HashLike] | npt.ArrayLike,
        radius: float,
        limit: int | None = None,
    ) -> list[list[Match]]:
        """``[query(h, radius, limit) for h in hashes]`` in one call, with the GIL released."""
        values = self._hashes(hashes)
        bits = self._radius(radius)
        count = None if limit is None else min(parse_count(limit, "limit"), _MAX_NATIVE_COUNT)
        found = self._core.query_many(values, bits, count, self._max_rows, self._threads)
        return [_matches(one) for one in found]

    def query_arrays(
        self, hashes: HashesLike, radius: float, limit: int | None = None
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int32]]:
        """Range queries as arrays, FAISS ``range_search`` style: ``(lims, ids, distances)``
        where query ``i``'s rows are ``ids[lims[i]:lims[i + 1]]`` (``lims`` has
        ``len(hashes) + 1`` entries), each query's rows nearest first, then by id. A single
        hash is a batch of one. Titles are not fetched: :meth:`titles` resolves the ids
        wanted."""
        # One plain int (or a uint64 array of one) at a cheap radius is answered by the
        # extension in one step, as in :meth:`query`; anything else goes through the general
        # parsers and the batch path.
        if limit is None:
            found = self._core.query_arrays_fast(hashes, radius, self._max_rows)
            if found is not None:
                return found
        values = self._batch(hashes)
        bits = self._radius(radius)
        count = None if limit is None else min(parse_count(limit, "limit"), _MAX_NATIVE_COUNT)
        return self._core.query_arrays(values, bits, count, self._max_rows, self._threads)

    def knn_arrays(
        self, hashes: HashesLike, k: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int32]]:
        """The ``k`` nearest synced entries of each hash as two ``(len(hashes), k)`` arrays,
        ``ids`` and ``distances``, each row nearest first, then by id, FAISS ``search``
        style. Where the index holds fewer than ``k`` entries, a row ends in id ``-1`` and
        distance ``-1``. More than :attr:`max_rows` cells raise
        :class:`AnswerTooLargeError`."""
        values = self._batch(hashes)
        count = parse_knn_width(k, len(values), self._max_rows)
        return self._core.knn_arrays(values, count, self._max_rows, self._threads)

    def knn(self, hash: HashLike, k: int) -> list[Match]:
        """The ``k`` nearest synced entries, nearest first (then by id)."""
        value = self._hash(hash)
        count = min(parse_count(k, "k"), _MAX_NATIVE_COUNT)
        return _matches(self._core.knn(value, count, self._max_rows))

    def lookup(self, id: int) -> str | None:
        """The title of entry ``id`` (pending or synced), or None."""
        return self._core.lookup(parse_id(id))

    def titles(self, ids: Sequence[int] | npt.ArrayLike) -> list[str | None]:
        """``[lookup(i) for i in ids]`` in one call: the titles of the ids an array answer
        holds. A padding id (``-1`` in ``knn_arrays``) has none."""
        valid, padding = parse_answer_ids(ids)
        return with_padding(self._core.titles(valid), padding)

    def __contains__(self, id: object) -> bool:
        try:
            entry_id = parse_id(id)
        except ValueError:
            return False
        return self._core.contains(entry_id)

    def size(self) -> int:
        """Synced entries (pending ones are not counted)."""
        return len(self._core)

    def __len__(self) -> int:
        return len(self._core)

    @property
    def pending(self) -> int:
        """Entries waiting for the next sync."""
        return self._core.pending

    def info(self) -> dict[str, Any]:
        """The core's figures: entries, pending, next_id, sync_threshold, memory_bytes, ..."""
        return dict(self._core.info())

    def pairs(self, radius: float) -> list[Pair]:
        """Every pair of synced entries within ``radius`` bits: the self-join behind dupes,
        sorted by distance, then ids. More than :attr:`max_rows` pairs raise
        :class:`AnswerTooLargeError` (the join stops there); :meth:`iter_pairs` has no cap."""
        return self._core.pairs(self._radius(radius), self._max_rows, self._threads)

    def pairs_arrays(
        self, radius: float
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int32]]:
        """The pairs of :meth:`pairs` as three arrays ``(a, b, distances)``, in the same order
        and under the same cap: no Python object per pair, for self-joins of millions."""
        return self._core.pairs_arrays(self._radius(radius), self._max_rows, self._threads)

    def iter_pairs(self, radius: float, page_size: int = DEFAULT_PAGE_ROWS) -> Iterator[Pair]:
        """The pairs of :meth:`pairs`, each once, without holding them all: page by page
        (``page_size`` pairs at most), by smaller id, each id's pairs nearest first. Each page
        searches a snapshot with the GIL released; entries written while iterating may or may
        not show, entries present throughout show exactly once."""
        bits = self._radius(radius)
        size = parse_page_size(page_size)
        cursor: str | None = "0"
        while cursor is not None:
            rows, cursor = self._core.pairs_page(bits, cursor, size)
            yield from map(Pair._make, rows)

    def entries(self) -> list[Entry]:
        """A consistent snapshot: synced entries by id, then pending ones in insertion order.
        Hashes are ints for 64-bit indexes and hex text (PDQ's form) for wider ones."""
        raw = self._core.entries()
        if self._bits == 64:
            return list(map(Entry._make, raw))
        return [Entry(id, hash.hex(), title, pending) for id, hash, title, pending in raw]

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries())

    # -- files ---------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> None:
        """Writes the index to ``path`` atomically (temporary file, fsync, rename)."""
        self._core.save(os.fspath(path))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Index:
        """Reads an index ``save`` wrote; ``ValueError`` for a truncated, corrupted or
        foreign file, ``OSError`` when it cannot be read at all."""
        return cls._wrap(_core.Index.load(os.fspath(path)))

    def __repr__(self) -> str:
        width = "" if self._bits == 64 else f", bits={self._bits}"
        return (
            f"{type(self).__name__}(size={self.size()}, pending={self.pending}, "
            f"sync_threshold={self.sync_threshold}{width})"
        )
