"""What ``imgscout add`` remembers about files it already added, so re-runs skip them.

For each added file the cache keeps its absolute path, size, modification time (ns), hash and
the id it got in the index. A file whose path, size and mtime are unchanged, and whose id still
names that path in the index, is not hashed again. The cache lives with the index it describes:

* embedded index ``PATH``: a SQLite file ``PATH.files`` next to it (stdlib, scales to millions of
  rows, and a re-run only reads the rows it needs);
* Redis ``--key KEY``: a Redis hash ``KEY:files`` on the same server, so every machine adding to
  that index shares what has been added.

The cache also records which hashing algorithm (``imgscout --hash``) filled the index: a
``meta`` table in the SQLite file, the field :data:`RECORD_FIELD` of the Redis hash. A cache
without the record is from before there was a choice: ``phash``. Hashes are kept as hex text,
16 digits for 64-bit ones as always, 64 for 256-bit ones (SQLite integers are signed 64-bit).

The cache also remembers the files ``add`` hashed and left out for their PDQ quality (too
little detail to match on): path, size, mtime, algorithm and quality, in a ``left_out`` table
of the SQLite file or the Redis hash ``KEY:left-out``. A re-run reports an unchanged one again
without decoding it; ``--keep-low-quality`` hashes and adds it.

The cache is only a hint: each hit is confirmed against the index (``lookup(id) == path``)
before a file is skipped, so a stale cache (index deleted or replaced, an id removed by another
client) costs a re-hash, never a miss. ``add`` saves an embedded index before it writes the
cache; when cache and index disagree (an unconfirmed id, or row and entry counts that differ)
it finds the entries of the files it re-hashes by title and replaces them all: an
interruption at any step leaves at most a re-hash for the next run, never a second entry for
one file.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class FileRecord:
    path: str
    size: int
    mtime_ns: int
    hash: int
    id: int
    #: What ``dupes`` needs besides the hash (pixels as displayed, flat or not); ``flat`` is
    #: None in rows written before these were kept: ``dupes`` hashes those files again.
    width: int = 0
    height: int = 0
    flat: bool | None = None

    def matches(self, size: int, mtime_ns: int) -> bool:
        return self.size == size and self.mtime_ns == mtime_ns


@dataclass(frozen=True)
class LeftOutRecord:
    """A file hashed and left out of the index for its PDQ quality, under ``algorithm``."""

    path: str
    size: int
    mtime_ns: int
    algorithm: str
    quality: int

    def matches(self, size: int, mtime_ns: int, algorithm: str | None) -> bool:
        return self.size == size and self.mtime_ns == mtime_ns and self.algorithm == algorithm


def hash_text(value: int, bits: int) -> str:
    """A hash as the cache stores it: ``bits / 4`` hex digits."""
    return f"{value:0{bits // 4}x}"


class FileCache(Protocol):
    #: The width of the hashes it stores (their hex digits).
    bits: int

    def recorded_hash(self) -> str | None: ...

    def record_hash(self, algorithm: str) -> None: ...

    def get_many(self, paths: Iterable[str]) -> dict[str, FileRecord]: ...

    def put_many(self, records: Iterable[FileRecord]) -> None: ...

    def remove_paths(self, paths: Iterable[str]) -> None: ...

    def remove_ids(self, ids: Iterable[int]) -> None: ...

    def get_left_out(self, paths: Iterable[str]) -> dict[str, LeftOutRecord]: ...

    def put_left_out(self, records: Iterable[LeftOutRecord]) -> None: ...

    def remove_left_out(self, paths: Iterable[str]) -> None: ...

    def count(self) -> int: ...

    def close(self) -> None: ...


class CacheError(Exception):
    """The cache file cannot be read or written (read-only folder, disk full, not SQLite)."""


def sidecar_path(index_path: str) -> str:
    return index_path + ".files"


class SqliteFileCache:
    """The embedded index's cache: one table in ``<index>.files``."""

    def __init__(self, path: str, bits: int = 64) -> None:
        self.path = path
        self.bits = bits
        with self._errors("open"):
            self.connection = sqlite3.connect(path)
            self.connection.execute(
                "CREATE TABLE IF NOT EXISTS files ("
                " path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,"
                " hash TEXT NOT NULL, id INTEGER NOT NULL)"
            )
            self.connection.execute("CREATE INDEX IF NOT EXISTS files_id ON files(id)")
            # What the index holds (one row, name "hash"); older caches have no such table.
            self.connection.execute(
                "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)"
            )
            self.connection.execute(
                "CREATE TABLE IF NOT EXISTS left_out ("
                " path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,"
                " algorithm TEXT NOT NULL, quality INTEGER NOT NULL)"
            )
            columns = {row[1] for row in self.connection.execute("PRAGMA table_info(files)")}
            for name, kind in (
                ("width", "INTEGER NOT NULL DEFAULT 0"),
                ("height", "INTEGER NOT NULL DEFAULT 0"),
                ("flat", "INTEGER"),
            ):
                if name not in columns:  # a cache from before the column existed
                    self.connection.execute(f"ALTER TABLE files ADD COLUMN {name} {kind}")
            self.connection.commit()

    @contextlib.contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as error:
            if getattr(self, "connection", None) is not None:
                with contextlib.suppress(sqlite3.Error):
                    self.connection.rollback()
            raise CacheError(f"cannot {doing} index cache {self.path}: {error}") from error

    def recorded_hash(self) -> str | None:
        with self._errors("read"):
            row = self.connection.execute("SELECT value FROM meta WHERE name = 'hash'").fetchone()
        return None if row is None else str(row[0])

    def record_hash(self, algorithm: str) -> None:
        with self._errors("write"):
            self.connection.execute(
                "INSERT OR REPLACE INTO meta (name, value) VALUES ('hash', ?)", (algorithm,)
            )
            self.connection.commit()

    def _rows_of(self, query: str, paths: Iterable[str]) -> list[tuple[Any, ...]]:
        """The rows ``query`` (a SELECT ending in ``WHERE path IN``) gives for ``paths``."""
        wanted = list(paths)
        rows: list[tuple[Any, ...]] = []
        # SQLite limits bound parameters per statement; 500 stays far below every build's limit.
        with self._errors("read"):
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows.extend(self.connection.execute(f"{query} ({marks})", chunk))
        return rows

    def get_many(self, paths: Iterable[str]) -> dict[str, FileRecord]:
        rows = self._rows_of(
            "SELECT path, size, mtime_ns, hash, id, width, height, flat FROM files WHERE path IN",
            paths,
        )
        return {
            path: FileRecord(
                path,
                size,
                mtime_ns,
                int(hash_hex, 16),
                entry_id,
                width,
                height,
                None if flat is None else bool(flat),
            )
            for path, size, mtime_ns, hash_hex, entry_id, width, height, flat in rows
        }

    def put_many(self, records: Iterable[FileRecord]) -> None:
        # The hash is stored as hex text: SQLite integers are signed 64-bit.
        rows = [
            (
                r.path,
                r.size,
                r.mtime_ns,
                hash_text(r.hash, self.bits),
                r.id,
                r.width,
                r.height,
                None if r.flat is None else int(r.flat),
            )
            for r in records
        ]
        with self._errors("write"):
            self.connection.executemany(
                "INSERT OR REPLACE INTO files"
                " (path, size, mtime_ns, hash, id, width, height, flat)"
                " VALUES (?,?,?,?,?,?,?,?)",
                rows,
            )
            self.connection.commit()

    def remove_paths(self, paths: Iterable[str]) -> None:
        rows = [(p,) for p in paths]
        with self._errors("write"):
            self.connection.executemany("DELETE FROM files WHERE path = ?", rows)
            self.connection.commit()

    def remove_ids(self, ids: Iterable[int]) -> None:
        rows = [(i,) for i in ids]
        with self._errors("write"):
            self.connection.executemany("DELETE FROM files WHERE id = ?", rows)
            self.connection.commit()

    def get_left_out(self, paths: Iterable[str]) -> dict[str, LeftOutRecord]:
        rows = self._rows_of(
            "SELECT path, size, mtime_ns, algorithm, quality FROM left_out WHERE path IN", paths
        )
        return {row[0]: LeftOutRecord(*row) for row in rows}

    def put_left_out(self, records: Iterable[LeftOutRecord]) -> None:
        rows = [(r.path, r.size, r.mtime_ns, r.algorithm, r.quality) for r in records]
        with self._errors("write"):
            self.connection.executemany(
                "INSERT OR REPLACE INTO left_out (path, size, mtime_ns, algorithm, quality)"
                " VALUES (?,?,?,?,?)",
                rows,
            )
            self.connection.commit()

    def remove_left_out(self, paths: Iterable[str]) -> None:
        rows = [(p,) for p in paths]
        with self._errors("write"):
            self.connection.executemany("DELETE FROM left_out WHERE path = ?", rows)
            self.connection.commit()

    def count(self) -> int:
        with self._errors("read"):
            return int(self.connection.execute("SELECT COUNT(*) FROM files").fetchone()[0])

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.connection.close()


def read_recorded_hash(path: str) -> str | None:
    """The algorithm the SQLite cache at ``path`` records, read without writing anything; None
    when there is no such file, no record, or it cannot be read."""
    if not os.path.isfile(path):
        return None
    try:
        connection = sqlite3.connect(f"file:{os.path.abspath(path)}?mode=ro", uri=True)
    except sqlite3.Error:
        return None
    try:
        row = connection.execute("SELECT value FROM meta WHERE name = 'hash'").fetchone()
    except sqlite3.Error:  # a cache from before the record, or not SQLite
        return None
    finally:
        connection.close()
    return None if row is None else str(row[0])


#: The field of ``<key>:files`` that records the algorithm: no file path (every path the cache
#: holds is absolute) can be this text.
RECORD_FIELD = "imgscout:hash"


class RedisFileCache:
    """The Redis index's cache: hash ``<key>:files``, field = path, value =
    "size mtime hash id width height flat" (the last three absent in older values); and the
    field :data:`RECORD_FIELD`, the algorithm."""

    def __init__(self, client: Any, key: str, bits: int = 64) -> None:
        self.client = client
        self.key = f"{key}:files"
        #: Field = path, value = "size mtime algorithm quality".
        self.left_out_key = f"{key}:left-out"
        self.bits = bits

    def recorded_hash(self) -> str | None:
        value = self.client.hget(self.key, RECORD_FIELD)
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)

    def record_hash(self, algorithm: str) -> None:
        self.client.hset(self.key, RECORD_FIELD, algorithm)

    def get_many(self, paths: Iterable[str]) -> dict[str, FileRecord]:
        wanted = list(paths)
        found: dict[str, FileRecord] = {}
        for start in range(0, len(wanted), 1000):
            chunk = wanted[start : start + 1000]
            values = self.client.hmget(self.key, chunk)
            for path, value in zip(chunk, values):
                if value is None:
                    continue
                record = _parse_redis_value(path, value)
                if record is not None:
                    found[path] = record
        return found

    def put_many(self, records: Iterable[FileRecord]) -> None:
        mapping: Mapping[str, str] = {
            r.path: f"{r.size} {r.mtime_ns} {hash_text(r.hash, self.bits)} {r.id} "
            f"{r.width} {r.height} " + ("-" if r.flat is None else str(int(r.flat)))
            for r in records
        }
        if mapping:
            self.client.hset(self.key, mapping=mapping)

    def remove_paths(self, paths: Iterable[str]) -> None:
        doomed = list(paths)
        if doomed:
            self.client.hdel(self.key, *doomed)

    def remove_ids(self, ids: Iterable[int]) -> None:
        doomed_ids = set(ids)
        if not doomed_ids:
            return
        doomed_paths = []
        for field, value in self.client.hscan_iter(self.key, count=1000):
            path = os.fsdecode(field) if isinstance(field, bytes) else field
            record = _parse_redis_value(path, value)
            if record is not None and record.id in doomed_ids:
                doomed_paths.append(path)
        self.remove_paths(doomed_paths)

    def get_left_out(self, paths: Iterable[str]) -> dict[str, LeftOutRecord]:
        wanted = list(paths)
        found: dict[str, LeftOutRecord] = {}
        for start in range(0, len(wanted), 1000):
            chunk = wanted[start : start + 1000]
            for path, value in zip(chunk, self.client.hmget(self.left_out_key, chunk)):
                if value is None:
                    continue
                text = value.decode() if isinstance(value, bytes) else value
                try:
                    size, mtime_ns, algorithm, quality = text.split()
                    found[path] = LeftOutRecord(
                        path, int(size), int(mtime_ns), algorithm, int(quality)
                    )
                except ValueError:  # written by something else: the file is hashed again
                    continue
        return found

    def put_left_out(self, records: Iterable[LeftOutRecord]) -> None:
        mapping = {r.path: f"{r.size} {r.mtime_ns} {r.algorithm} {r.quality}" for r in records}
        if mapping:
            self.client.hset(self.left_out_key, mapping=mapping)

    def remove_left_out(self, paths: Iterable[str]) -> None:
        doomed = list(paths)
        if doomed:
            self.client.hdel(self.left_out_key, *doomed)

    def count(self) -> int:
        """Rows of files (the record is not one)."""
        pipeline = self.client.pipeline(transaction=False)
        pipeline.hlen(self.key)
        pipeline.hexists(self.key, RECORD_FIELD)
        rows, recorded = pipeline.execute()
        return int(rows) - int(bool(recorded))

    def close(self) -> None:
        pass


def _parse_redis_value(path: str, value: bytes | str) -> FileRecord | None:
    text = value.decode() if isinstance(value, bytes) else value
    try:
        fields = text.split()
        size, mtime_ns, hash_hex, entry_id = fields[:4]
        record = FileRecord(path, int(size), int(mtime_ns), int(hash_hex, 16), int(entry_id))
        if len(fields) == 7:  # with the facts dupes uses
            width, height, flat = fields[4:]
            record = FileRecord(
                *(record.path, record.size, record.mtime_ns, record.hash, record.id),
                int(width),
                int(height),
                None if flat == "-" else flat == "1",
            )
        return record
    except ValueError:
        # Written by something else: treat as absent, the file is simply hashed again.
        return None
