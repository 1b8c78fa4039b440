"""Where the command-line tool and :func:`imgscout.find_duplicates` keep their index: an
embedded index file with its re-add cache, or a Redis server with the module; and the
incremental add that hashes only new and changed files.

Nothing here imports numpy, redis or PIL at module level: a re-run over unchanged files
(every hash in the cache) reads the index through the Rust core and never needs them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from imgscout import hashing
from imgscout._cli_cache import (
    CacheError,
    FileCache,
    FileRecord,
    LeftOutRecord,
    RedisFileCache,
    SqliteFileCache,
    read_recorded_hash,
    sidecar_path,
)
from imgscout._types import Entry
from imgscout.hashing import HashedFile, HashFailure, LowQuality

if TYPE_CHECKING:
    from imgscout.index import Index

DEFAULT_INDEX = "imgscout.idx"


class UsageError(Exception):
    """A problem the user can fix (a missing folder, an unreadable index, an unreachable
    server): the CLI prints it as one line and exits with status 2."""


@dataclass(frozen=True)
class BackendOptions:
    """Which index a run uses: the CLI's ``--index``, ``--redis``, ``--key``, ``--cluster``
    and ``--shards``; and ``hash``, the algorithm of a run that hashes (``--hash``): the index
    must hold that algorithm's hashes, and a new one is made for them. None for the commands
    that hash nothing (sync, lookup, size, del): they take the index as it is."""

    index: str | None = None
    redis: str | None = None
    key: str | None = None
    cluster: bool = False
    shards: int = 3
    hash: str | None = None


@dataclass
class Backend:
    index: Any
    cache: FileCache
    index_path: str | None = None
    lock_file: Any = None
    #: With --redis: the client and key, for pipelined checks the index API has no batch for.
    redis_client: Any = None
    redis_key: str | None = None
    #: The algorithm of the run's hashes (None for a run that hashes nothing) and the width
    #: of the index's.
    algorithm: str | None = None
    bits: int = 64

    def save(self) -> None:
        if self.index_path is not None:
            try:
                self.index.save(self.index_path)
            except (OSError, ValueError) as error:
                raise UsageError(f"cannot save index {self.index_path}: {error}") from error

    def close(self) -> None:
        self.cache.close()
        if self.lock_file is not None:
            self.lock_file.close()


def redis_client(url: str, cluster: bool = False) -> Any:
    import redis
    import redis.cluster

    try:
        # A cluster client discovers every node from the one the URL names.
        kind = redis.cluster.RedisCluster if cluster else redis.Redis
        client = kind.from_url(url, socket_connect_timeout=5, socket_timeout=60)
        client.ping()
    except ValueError as error:
        raise UsageError(f"invalid Redis URL {url!r}: {error}") from error
    except redis.RedisError as error:
        raise UsageError(f"cannot reach Redis at {url}: {error}") from error
    return client


def redis_index(client: Any, key: str, bits: int, cluster: bool = False, shards: int = 3) -> Any:
    """A ``RedisIndex`` (``ShardedIndex`` with ``cluster``) of ``bits``-bit hashes. A wide one
    creates its key at its width; a key of another width is a :class:`UsageError`."""
    import imgscout

    try:
        if cluster:
            return imgscout.ShardedIndex(client, key, shards=shards, bits=bits)
        return imgscout.RedisIndex(client, key, bits=bits)
    except imgscout.InvalidArgumentError as error:
        raise UsageError(f"Redis key {key}: {error}") from error


def check_algorithm(where: str, recorded: str | None, stored_bits: int | None, wanted: str) -> None:
    """Refuses a run whose ``--hash wanted`` is not what the index holds: ``recorded`` is the
    algorithm its cache records (None: no record), ``stored_bits`` the width of the index
    there is (None: no index yet, or an empty one). A 64-bit index without a record holds
    phash hashes, the only kind there was."""
    if recorded is None and stored_bits == hashing.HASH_BITS:
        recorded = hashing.DEFAULT_ALGORITHM
    if recorded is not None and recorded != wanted:
        raise UsageError(
            f"{where} holds {recorded} hashes, not {wanted}; run with --hash {recorded}"
        )
    if stored_bits is not None and stored_bits != hashing.hash_bits(wanted):
        fitting = [a for a, b in hashing.ALGORITHMS.items() if b == stored_bits]
        raise UsageError(
            f"{where} holds {stored_bits}-bit hashes, not {wanted}'s "
            f"{hashing.hash_bits(wanted)}; run with " + " or ".join(f"--hash {a}" for a in fitting)
        )


@contextlib.contextmanager
def open_backend(options: BackendOptions, writing: bool, creating: bool) -> Iterator[Backend]:
    """The index ``options`` name, open for the run. ``creating``: an embedded index (and its
    cache) is made when missing, as ``add`` and ``dupes`` do; other commands need one. With
    ``options.hash``, an index of another algorithm is a :class:`UsageError` naming both, and
    a writing run records the algorithm in the cache."""
    if options.hash is not None:
        hashing.hash_bits(options.hash)
    if options.redis:
        backend = _open_redis(options, writing)
    else:
        if options.key or options.cluster:
            raise UsageError("--key and --cluster only apply with --redis URL")
        backend = open_embedded(
            options.index or DEFAULT_INDEX,
            writing,
            create_cache=creating,
            must_exist=not creating,
            algorithm=options.hash,
        )
    try:
        yield backend
    finally:
        backend.close()


def _open_redis(options: BackendOptions, writing: bool) -> Backend:
    if not options.key:
        raise UsageError("--redis needs --key KEY (the key that holds the index)")
    client = redis_client(options.redis or "", options.cluster)
    cache = RedisFileCache(client, options.key)
    # A 64-bit client creates nothing and sends no hash here: it reads what the key holds.
    probe = redis_index(client, options.key, 64, options.cluster, options.shards)
    held = int(probe.info().get("bits", 64))
    algorithm = options.hash
    recorded = None
    if algorithm is None:  # a run that hashes nothing: the index as it is
        bits = held
    else:
        bits = hashing.hash_bits(algorithm)
        if probe.size() + pending(probe) > 0:
            recorded = cache.recorded_hash()
            check_algorithm(f"Redis key {options.key}", recorded, held, algorithm)
        # else: an empty or missing key holds nothing yet, whatever its cache recorded.
    index = (
        probe
        if bits == 64
        else redis_index(client, options.key, bits, options.cluster, options.shards)
    )
    cache.bits = bits
    if writing and algorithm is not None and recorded != algorithm:
        cache.record_hash(algorithm)
    return Backend(
        index,
        cache,
        redis_client=client,
        redis_key=options.key,
        algorithm=algorithm,
        bits=bits,
    )


def check_regular(path: str, what: str, must_exist: bool) -> bool:
    """Whether ``path`` exists; a FIFO, device or folder there is refused (reading a FIFO
    would wait forever for a writer)."""
    try:
        status = os.stat(path)
    except FileNotFoundError:
        if must_exist:
            raise UsageError(f"{what} {path} does not exist (imgscout add creates it)") from None
        return False
    except OSError as error:
        raise UsageError(f"cannot read {what} {path}: {error.strerror or error}") from error
    if not stat.S_ISREG(status.st_mode):
        raise UsageError(f"{what} {path} is not a regular file")
    return True


class EmbeddedIndex:
    """An index file as a run uses it. It is read by the Rust core directly: the lookups,
    counts and entries a re-run over unchanged files needs cost no import of the Python
    layer (numpy). Anything else (adding, deleting, syncing, saving) goes to an
    :class:`imgscout.Index` of the same entries, made on first need; every call from then
    on goes to it."""

    def __init__(self, path: str, exists: bool, bits: int = 64) -> None:
        """``bits``: the width of a new index (one that loads keeps its own)."""
        from imgscout import _core

        self._path = path
        self._exists = exists
        self._full: Index | None = None
        if exists:
            self._core = _core.Index.load(path)
        elif bits == hashing.HASH_BITS:
            self._core = _core.Index()
        else:
            self._core = _core.Index(_core.DEFAULT_SYNC_THRESHOLD, bits)

    @property
    def bits(self) -> int:
        return int(self._core.bits)

    def full(self) -> Index:
        if self._full is None:
            from imgscout.index import Index

            wrap = getattr(Index, "_wrap", None)
            if wrap is not None:
                self._full = wrap(self._core)
            else:  # pragma: no cover - the Python layer no longer wraps a core
                self._full = Index.load(self._path) if self._exists else Index(bits=self.bits)
        return self._full

    def lookup(self, entry_id: int) -> str | None:
        if self._full is not None:
            return self._full.lookup(entry_id)
        return self._core.lookup(int(entry_id))

    def size(self) -> int:
        return self._full.size() if self._full is not None else len(self._core)

    @property
    def pending(self) -> int:
        return int(self._full.pending if self._full is not None else self._core.pending)

    def entries(self) -> list[Entry]:
        if self._full is not None:
            return self._full.entries()
        return [Entry._make(row) for row in self._core.entries()]

    def add_many(self, hashes: Sequence[int], titles: Sequence[str]) -> Any:
        return self.full().add_many(hashes, titles)

    def delete(self, entry_id: int) -> None:
        self.full().delete(entry_id)

    def sync(self) -> None:
        self.full().sync()

    def save(self, path: str) -> None:
        self.full().save(path)

    def query_many(self, hashes: Sequence[int], radius: int, limit: int | None = None) -> Any:
        return self.full().query_many(hashes, radius, limit=limit)


def open_embedded(
    path: str,
    writing: bool,
    create_cache: bool,
    must_exist: bool,
    algorithm: str | None = None,
) -> Backend:
    """``algorithm``: the run's ``--hash`` (a new index gets its width; an existing one must
    hold it); None for a run that hashes nothing."""
    exists = check_regular(path, "index", must_exist)
    cache_exists = check_regular(sidecar_path(path), "index cache", must_exist=False)
    lock_file = None
    if writing:
        # Two concurrent `imgscout add` runs would each save their own copy and lose the
        # other's entries: serialise writers on a lock file next to the index.
        try:
            lock_file = open(path + ".lock", "a")  # noqa: SIM115 - held until close()
        except OSError as error:
            raise UsageError(f"cannot write next to index {path}: {error}") from error
        fcntl.flock(lock_file, fcntl.LOCK_EX)
    bits = hashing.HASH_BITS if algorithm is None else hashing.hash_bits(algorithm)
    try:
        index = EmbeddedIndex(path, exists, bits)
    except (OSError, ValueError) as error:
        if lock_file is not None:
            lock_file.close()
        raise UsageError(f"cannot read index {path}: {error}") from error
    cache: FileCache = _NoCache()
    # Only `add` starts a cache; other commands keep an existing one in step (del) or read it.
    try:
        if create_cache or cache_exists:
            cache = SqliteFileCache(sidecar_path(path), index.bits)
        if algorithm is not None:
            # A cache left by an index that is gone says nothing of the new one.
            recorded = cache.recorded_hash() if exists else None
            check_algorithm(f"index {path}", recorded, index.bits if exists else None, algorithm)
            if writing and recorded != algorithm:
                cache.record_hash(algorithm)
    except (CacheError, UsageError) as error:
        cache.close()
        if lock_file is not None:
            lock_file.close()
        raise UsageError(str(error)) from error
    return Backend(
        index, cache, index_path=path, lock_file=lock_file, algorithm=algorithm, bits=index.bits
    )


def open_reference(path: str, algorithm: str) -> EmbeddedIndex:
    """The embedded index ``dupes --against PATH`` reads, checked to hold ``algorithm``'s
    hashes (by its cache's record, read without writing, and its width)."""
    check_regular(path, "reference index", must_exist=True)
    try:
        stored = EmbeddedIndex(path, exists=True)
    except (OSError, ValueError) as error:
        raise UsageError(f"cannot read reference index {path}: {error}") from error
    recorded = read_recorded_hash(sidecar_path(path))
    check_algorithm(f"reference index {path}", recorded, stored.bits, algorithm)
    return stored


class _NoCache:
    bits = 64

    def recorded_hash(self) -> str | None:
        return None

    def record_hash(self, algorithm: str) -> None:
        pass

    def get_many(self, paths: Any) -> dict[str, FileRecord]:
        return {}

    def put_many(self, records: Any) -> None:
        pass

    def remove_paths(self, paths: Any) -> None:
        pass

    def remove_ids(self, ids: Any) -> None:
        pass

    def get_left_out(self, paths: Any) -> dict[str, LeftOutRecord]:
        return {}

    def put_left_out(self, records: Any) -> None:
        pass

    def remove_left_out(self, paths: Any) -> None:
        pass

    def count(self) -> int:
        return 0

    def close(self) -> None:
        pass


def pending(index: Any) -> int:
    value = index.pending
    return int(value() if callable(value) else value)


def split_unencodable(paths: Sequence[str]) -> tuple[list[str], list[HashFailure]]:
    """Titles are UTF-8 text: a file name that is not valid UTF-8 cannot be one."""
    good, bad = [], []
    for path in paths:
        try:
            path.encode("utf-8")
            good.append(path)
        except UnicodeEncodeError:
            bad.append(HashFailure(path, "file name is not valid UTF-8"))
    return good, bad


def index_files(
    backend: Backend,
    paths: Sequence[str],
    jobs: int | None,
    sync: bool,
    need_facts: bool = False,
    keep_low_quality: bool = False,
    rotations: bool = False,
) -> tuple[dict[str, int], list[HashFailure], list[HashedFile]]:
    """``add``: hashes the new and changed files among ``paths`` into the index, saves it, then
    updates the cache. Returns the counts, the failures and every file's hash (from the cache
    for unchanged files: ``need_facts`` also re-hashes files cached without their pixel size).
    When nothing changed (every file cached, nothing stale or pending) nothing is written.

    Files are hashed with the backend's algorithm; files of too low a PDQ quality are among
    the failures (and not added) unless ``keep_low_quality``. ``rotations``: the files hashed
    now also get their orientations' hashes (the index stores the original only)."""
    plan = _plan_add(backend, paths, need_facts, keep_low_quality)
    failed = [*plan.failures, *plan.left_out]
    hashed: list[HashedFile] = []
    hash_failures: list[HashFailure] = []
    if plan.to_hash:
        hashed, hash_failures = hashing.hash_files(
            [p for p, _, _ in plan.to_hash],
            jobs=jobs,
            algorithm=backend.algorithm or hashing.DEFAULT_ALGORITHM,
            rotations=rotations,
            keep_low_quality=keep_low_quality,
        )
    failed.extend(hash_failures)
    stat_of = {p: (size, mtime) for p, size, mtime in plan.to_hash}
    unsaved = backend.index_path is not None and not os.path.exists(backend.index_path)
    if plan.to_hash or plan.stale_ids or unsaved or (sync and pending(backend.index)):
        # A changed file's old entry goes, and so does the entry of a file that is no longer
        # an image: every path keeps at most one entry.
        for entry_id in plan.stale_ids:
            with contextlib.suppress(KeyError):
                backend.index.delete(entry_id)
        ids: list[int] = []
        if hashed:
            ids = [
                int(i)
                for i in backend.index.add_many([h.hash for h in hashed], [h.path for h in hashed])
            ]
        if sync:
            backend.index.sync()
        # The index is saved before the cache is written: an interruption before the save
        # leaves both as they were; one after it leaves cache rows the index does not confirm,
        # and the next run re-hashes those files and replaces their entries (_plan_add finds
        # them by title), so no run leaves a second entry for one file.
        backend.save()
        backend.cache.remove_paths(f.path for f in hash_failures)
        # What a file's last hashing said about its quality is what the next run reports.
        backend.cache.remove_left_out(plan.was_left_out)
        if backend.algorithm is not None:  # only PDQ rates quality, and only when named
            backend.cache.put_left_out(
                LeftOutRecord(f.path, *stat_of[f.path], backend.algorithm, f.quality)
                for f in hash_failures
                if isinstance(f, LowQuality)
            )
        backend.cache.put_many(
            FileRecord(h.path, *stat_of[h.path], h.hash, entry_id, h.width, h.height, h.flat)
            for h, entry_id in zip(hashed, ids)
        )
    stats: dict[str, int] = {"unchanged": len(plan.unchanged)}
    replaced = sum(1 for h in hashed if h.path in plan.had_entry)
    stats["added"] = len(hashed) - replaced
    stats["updated"] = replaced
    stats["size"] = backend.index.size()
    stats["pending"] = pending(backend.index)
    every = [
        *(HashedFile(r.path, r.hash, r.width, r.height, bool(r.flat)) for r in plan.unchanged),
        *hashed,
    ]
    return stats, failed, every


@dataclass
class _AddPlan:
    #: (path, size, mtime_ns) of the files to hash.
    to_hash: list[tuple[str, int, int]]
    #: Index entries to delete: old entries of the files to hash, and extra entries of a path.
    stale_ids: list[int]
    #: Paths to hash that have an entry now (their new entry is an update, not an addition).
    had_entry: set[str]
    #: The cache records of the files that need no hashing.
    unchanged: list[FileRecord]
    failures: list[HashFailure]
    #: Unchanged files the last run left out for their PDQ quality: reported, not hashed.
    left_out: list[LowQuality]
    #: Files to hash that the cache remembers as left out: their records go.
    was_left_out: list[str]


def _plan_add(
    backend: Backend,
    paths: Sequence[str],
    need_facts: bool = False,
    keep_low_quality: bool = False,
) -> _AddPlan:
    """Which files need hashing, which index entries they replace, how many are unchanged,
    and which the last run left out for their quality (hashed again if ``keep_low_quality``)."""
    stats: dict[str, tuple[int, int]] = {}
    failures = []
    for path in dict.fromkeys(paths):  # the same file named twice is added once
        try:
            status = os.stat(path)
        except OSError as error:
            failures.append(HashFailure(path, error.strerror or str(error)))
            continue
        stats[path] = (status.st_size, status.st_mtime_ns)
    cached = backend.cache.get_many(stats)
    confirmed = _confirmed_records(backend, list(cached.values()))
    # Trust, but verify: when a cache row names an id the index lacks, or the index holds a
    # different number of entries than the cache has rows, some entry may be unknown to the
    # cache (an interruption between adding and writing the cache): find entries by title.
    by_title: dict[str, list[int]] = {}
    if len(confirmed) != len(cached) or backend.cache.count() != (
        backend.index.size() + pending(backend.index)
    ):
        by_title = _ids_by_title(backend, stats)
    plan = _AddPlan([], [], set(), [], failures, [], [])

    def unchanged(path: str, size: int, mtime_ns: int) -> FileRecord | None:
        record = confirmed.get(path)
        if record is None or not record.matches(size, mtime_ns):
            return None
        return None if need_facts and record.flat is None else record

    # Only files not in the index can have been left out: a re-run over an unchanged folder
    # reads only their rows.
    left_out = backend.cache.get_left_out(
        path for path, (size, mtime_ns) in stats.items() if unchanged(path, size, mtime_ns) is None
    )
    for path, (size, mtime_ns) in stats.items():
        record = confirmed.get(path)
        existing = set(by_title.get(path, ()))
        if record is not None:
            existing.add(record.id)
        kept = unchanged(path, size, mtime_ns)
        poor = left_out.get(path)
        if kept is not None:
            plan.unchanged.append(kept)
            existing.discard(kept.id)
        elif (
            poor is not None
            and not keep_low_quality
            and poor.matches(size, mtime_ns, backend.algorithm)
            and poor.quality < hashing.PDQ_MIN_QUALITY
        ):
            # Its entries go, as they would if it were hashed again and left out again.
            plan.left_out.append(hashing.low_quality_report(path, poor.quality))
        else:
            plan.to_hash.append((path, size, mtime_ns))
            if existing:
                plan.had_entry.add(path)
            if poor is not None:
                plan.was_left_out.append(path)
        plan.stale_ids.extend(sorted(existing))
    return plan


def _ids_by_title(backend: Backend, paths: Iterable[str]) -> dict[str, list[int]]:
    """The index's entries titled with one of ``paths``: one pass over all entries (in memory
    for an embedded index, one command on Redis), run only when the cache and the index
    disagree. It finds entries the cache does not know: an interruption between adding them
    and writing the cache, entries added through the Python API."""
    entries = getattr(backend.index, "entries", None)
    if entries is None:
        return {}
    wanted = set(paths)
    found: dict[str, list[int]] = {}
    for entry in entries():
        if entry.title in wanted:
            found.setdefault(entry.title, []).append(int(entry.id))
    return found


def _confirmed_records(backend: Backend, records: Sequence[FileRecord]) -> dict[str, FileRecord]:
    """The cache records whose id still names the same path in the index."""
    if not records:
        return {}
    ids = [record.id for record in records]
    if hasattr(backend.index, "titles"):  # one call (one round trip on the Redis backends)
        titles: list[Any] = backend.index.titles(ids)
    else:
        titles = [backend.index.lookup(entry_id) for entry_id in ids]
    confirmed = {}
    for record, title in zip(records, titles):
        if isinstance(title, bytes):
            title = title.decode("utf-8", "replace")
        if title == record.path:
            confirmed[record.path] = record
    return confirmed
