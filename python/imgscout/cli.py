"""``imgscout``: hash images, keep them in an index, and find near-duplicates.

Exit codes: 0 success; 1 the command found nothing (a query without matches, an unknown id,
no duplicate groups, no file hashed), like grep; 2 usage or environment errors (bad arguments,
missing folder, unreadable index, unreachable Redis), always as one line on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import stat
import sys
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from imgscout._cli_actions import (
    KEEP_POLICIES,
    Action,
    ActionError,
    apply_actions,
    describe,
    kept_member,
    plan_actions,
    undo,
)
from imgscout._cli_cache import (
    CacheError,
    FileCache,
    FileRecord,
    RedisFileCache,
    SqliteFileCache,
    sidecar_path,
)
from imgscout._cli_report import (
    FileFacts,
    display_path,
    file_facts,
    format_html,
    format_text,
    group_pairs,
    text_path,
    to_json,
    write_csv,
)
from imgscout.hashing import (
    HashedFile,
    HashFailure,
    format_hash,
    hash_files,
    iter_image_candidates,
)

#: Chosen from docs/radius.md: the radius that keeps every measured false pair out while
#: finding the most edited copies. tests/test_cli_radius.py checks it on examples/photos.
DEFAULT_RADIUS = 8
DEFAULT_INDEX = "imgscout.idx"
#: How many bad files are named at the end of a run; the count is always given.
BAD_FILES_SHOWN = 5

EXIT_OK = 0
EXIT_NOTHING_FOUND = 1
EXIT_USAGE = 2


class CliError(Exception):
    """A problem the user can fix: printed as one line, exit status 2."""


# ---------------------------------------------------------------------------------------------
# Argument parsing


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One clear line instead of argparse's usage block: the usage is one --help away.
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _radius(text: str) -> int:
    from imgscout import _core

    value = _core.parse_radius_text(text)
    if value is None:
        raise argparse.ArgumentTypeError(
            f"invalid radius {text!r}: a number of differing bits, 0..64"
        )
    return value


def _entry_id(text: str) -> int:
    from imgscout import _core

    value = _core.parse_id_text(text)
    if value is None:
        raise argparse.ArgumentTypeError(f"invalid id {text!r}: a whole number 0..2^63-1")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"invalid count {text!r}: a whole number >= 1")
    return value


def _size(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"invalid size {text!r}: a whole number of bytes")
    return value


def _extensions(text: str) -> frozenset[str]:
    names = frozenset(e.strip().lower().lstrip(".") for e in text.split(",")) - {""}
    if not names:
        raise argparse.ArgumentTypeError(f"invalid extension list {text!r}: e.g. jpg,png")
    return names


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    backend = common.add_argument_group("index")
    backend.add_argument(
        "--index",
        metavar="PATH",
        default=None,
        help=f"embedded index file (default: {DEFAULT_INDEX} in the working folder; dupes "
        "uses none unless given one)",
    )
    backend.add_argument(
        "--redis",
        metavar="URL",
        help="use a Redis server with the imgscout module instead",
    )
    backend.add_argument("--key", help="the Redis key holding the index (with --redis)")
    backend.add_argument(
        "--cluster",
        action="store_true",
        help="--redis names a Redis Cluster node: the index is a ShardedIndex named --key",
    )
    backend.add_argument(
        "--shards",
        type=_positive,
        default=3,
        help="with --cluster: the index's shard count; every run must use the same (default 3)",
    )
    output = common.add_argument_group("output")
    output.add_argument("--json", action="store_true", help="machine-readable output")

    files = argparse.ArgumentParser(add_help=False)
    files.add_argument("paths", nargs="+", metavar="DIR|FILE")
    files.add_argument(
        "--no-recursive",
        dest="recursive",
        action="store_false",
        help="do not enter subfolders",
    )
    files.add_argument(
        "--jobs",
        type=_positive,
        default=None,
        help="hashing processes (default: one per core)",
    )
    files.add_argument(
        "--follow-links",
        action="store_true",
        help="follow symbolic links inside folders (each folder is still entered once)",
    )
    files.add_argument(
        "--min-size",
        type=_size,
        default=0,
        metavar="BYTES",
        help="skip files smaller than this",
    )
    files.add_argument(
        "--ext",
        type=_extensions,
        metavar="EXT[,EXT...]",
        help="only files with these extensions, e.g. jpg,png (default: try every file)",
    )

    radius = argparse.ArgumentParser(add_help=False)
    radius.add_argument(
        "--radius",
        "-r",
        type=_radius,
        default=DEFAULT_RADIUS,
        help=f"largest Hamming distance counted as a copy (default {DEFAULT_RADIUS})",
    )

    parser = _Parser(
        prog="imgscout",
        description="Find near-duplicate images with 64-bit perceptual hashes.",
        epilog="Exit status: 0 ok, 1 nothing found, 2 usage or connection error.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    commands.add_parser(
        "hash", parents=[common, files], help="print the perceptual hash of each file"
    )
    add = commands.add_parser(
        "add",
        parents=[common, files],
        help="add images to the index (title = absolute path); unchanged files are skipped",
    )
    add.add_argument(
        "--no-sync", dest="sync", action="store_false", help="leave new entries pending"
    )
    query = commands.add_parser(
        "query",
        parents=[common, files, radius],
        help="find indexed images near each file",
    )
    query.add_argument("--limit", type=_positive, help="at most this many matches per file")
    commands.add_parser("sync", parents=[common], help="make pending entries searchable")
    undo = commands.add_parser("undo", help="reverse the actions of dupes --apply from its journal")
    undo.add_argument("journal", metavar="JOURNAL")
    undo.add_argument("--json", action="store_true", help="machine-readable output")
    lookup = commands.add_parser("lookup", parents=[common], help="print the title of an id")
    lookup.add_argument("id", type=_entry_id)
    commands.add_parser("size", parents=[common], help="print the number of indexed entries")
    delete = commands.add_parser("del", parents=[common], help="delete an entry by id")
    delete.add_argument("id", type=_entry_id)
    dupes = commands.add_parser(
        "dupes",
        parents=[common, files, radius],
        help="group near-duplicate images under the folders (with --index PATH: adding them "
        "to that index first, and reusing its hashes of unchanged files)",
    )
    dupes.add_argument("--html", metavar="FILE", help="also write a report with thumbnails")
    dupes.add_argument(
        "--csv", metavar="FILE", help="also write one row per file of each group (spreadsheets)"
    )
    actions = dupes.add_argument_group(
        "actions on the extra copies (a dry run unless --apply; undo with imgscout undo JOURNAL)"
    )
    what = actions.add_mutually_exclusive_group()
    what.add_argument("--move-to", metavar="DIR", help="move the extra copies into DIR")
    what.add_argument(
        "--link",
        nargs="?",
        const="hard",
        choices=("hard", "symlink"),
        help="replace each extra copy by a link to the kept file (hard by default)",
    )
    what.add_argument(
        "--delete",
        action="store_true",
        help="delete the extra copies (into JOURNAL.trash, which undo restores from)",
    )
    actions.add_argument(
        "--keep",
        choices=KEEP_POLICIES,
        default="largest-resolution",
        help="the file each group keeps untouched (default largest-resolution; reference "
        "needs --against, whose files are never touched)",
    )
    actions.add_argument("--apply", action="store_true", help="do it (default: print the plan)")
    actions.add_argument(
        "--journal",
        metavar="FILE",
        default="imgscout-journal.jsonl",
        help="where --apply records each action, appended (default imgscout-journal.jsonl)",
    )
    dupes.add_argument(
        "--against",
        metavar="REF",
        help="reference mode: only groups joining the files named to REF, a folder or an "
        "index file (REF is not compared with itself)",
    )
    return parser


# ---------------------------------------------------------------------------------------------
# Backends


@dataclass
class Backend:
    index: Any
    cache: FileCache
    index_path: str | None = None
    lock_file: Any = None
    #: With --redis: the client and key, for pipelined checks the index API has no batch for.
    redis_client: Any = None
    redis_key: str | None = None

    def save(self) -> None:
        if self.index_path is not None:
            try:
                self.index.save(self.index_path)
            except (OSError, ValueError) as error:
                raise CliError(f"cannot save index {self.index_path}: {error}") from error

    def close(self) -> None:
        self.cache.close()
        if self.lock_file is not None:
            self.lock_file.close()


def _redis_client(url: str, cluster: bool = False) -> Any:
    import redis
    import redis.cluster

    try:
        # A cluster client discovers every node from the one the URL names.
        kind = redis.cluster.RedisCluster if cluster else redis.Redis
        client = kind.from_url(url, socket_connect_timeout=5, socket_timeout=60)
        client.ping()
    except ValueError as error:
        raise CliError(f"invalid Redis URL {url!r}: {error}") from error
    except redis.RedisError as error:
        raise CliError(f"cannot reach Redis at {url}: {error}") from error
    return client


@contextlib.contextmanager
def open_backend(args: argparse.Namespace, writing: bool) -> Iterator[Backend]:
    import imgscout

    if args.redis:
        if not args.key:
            raise CliError("--redis needs --key KEY (the key that holds the index)")
        client = _redis_client(args.redis, args.cluster)
        index = (
            imgscout.ShardedIndex(client, args.key, shards=args.shards)
            if args.cluster
            else imgscout.RedisIndex(client, args.key)
        )
        backend = Backend(
            index,
            RedisFileCache(client, args.key),
            redis_client=client,
            redis_key=args.key,
        )
    else:
        if args.key or args.cluster:
            raise CliError("--key and --cluster only apply with --redis URL")
        # Only `add` creates an index; every other command needs one to be there.
        creating = args.command in ("add", "dupes")
        backend = _open_embedded(
            args.index or DEFAULT_INDEX, writing, create_cache=creating, must_exist=not creating
        )
    try:
        yield backend
    finally:
        backend.close()


def _check_regular(path: str, what: str, must_exist: bool) -> bool:
    """Whether ``path`` exists; a FIFO, device or folder there is refused (reading a FIFO
    would wait forever for a writer)."""
    try:
        status = os.stat(path)
    except FileNotFoundError:
        if must_exist:
            raise CliError(f"{what} {path} does not exist (imgscout add creates it)") from None
        return False
    except OSError as error:
        raise CliError(f"cannot read {what} {path}: {error.strerror or error}") from error
    if not stat.S_ISREG(status.st_mode):
        raise CliError(f"{what} {path} is not a regular file")
    return True


def _open_embedded(path: str, writing: bool, create_cache: bool, must_exist: bool) -> Backend:
    import imgscout

    exists = _check_regular(path, "index", must_exist)
    cache_exists = _check_regular(sidecar_path(path), "index cache", must_exist=False)
    lock_file = None
    if writing:
        # Two concurrent `imgscout add` runs would each save their own copy and lose the
        # other's entries: serialise writers on a lock file next to the index.
        try:
            lock_file = open(path + ".lock", "a")  # noqa: SIM115 - held until close()
        except OSError as error:
            raise CliError(f"cannot write next to index {path}: {error}") from error
        fcntl.flock(lock_file, fcntl.LOCK_EX)
    if exists:
        try:
            index = imgscout.Index.load(path)
        except (OSError, ValueError) as error:
            if lock_file is not None:
                lock_file.close()
            raise CliError(f"cannot read index {path}: {error}") from error
    else:
        index = imgscout.Index()
    cache: FileCache
    # Only `add` starts a cache; other commands keep an existing one in step (del) or read it.
    if create_cache or cache_exists:
        try:
            cache = SqliteFileCache(sidecar_path(path))
        except CacheError as error:
            if lock_file is not None:
                lock_file.close()
            raise CliError(str(error)) from error
    else:
        cache = _NoCache()
    return Backend(index, cache, index_path=path, lock_file=lock_file)


class _NoCache:
    def get_many(self, paths: Any) -> dict[str, FileRecord]:
        return {}

    def put_many(self, records: Any) -> None:
        pass

    def remove_paths(self, paths: Any) -> None:
        pass

    def remove_ids(self, ids: Any) -> None:
        pass

    def count(self) -> int:
        return 0

    def close(self) -> None:
        pass


def _pending(index: Any) -> int:
    pending = index.pending
    return int(pending() if callable(pending) else pending)


def _redis_errors() -> tuple[type[BaseException], ...]:
    try:
        import redis
    except ImportError:  # pragma: no cover - redis is a dependency
        return ()
    return (redis.RedisError,)


# ---------------------------------------------------------------------------------------------
# Output helpers


def _emit_json(value: object) -> None:
    # Paths went through display_path, so this is valid UTF-8; the ASCII escapes are a last
    # guard should any other text carry a lone surrogate.
    text = json.dumps(value, ensure_ascii=False, indent=2)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(value, ensure_ascii=True, indent=2)
    sys.stdout.write(text)
    sys.stdout.write("\n")


def _report_bad_files(failures: Sequence[HashFailure]) -> None:
    if not failures:
        return
    noun = "file" if len(failures) == 1 else "files"
    print(
        f"imgscout: skipped {len(failures)} {noun} that could not be read as images:",
        file=sys.stderr,
    )
    for failure in failures[:BAD_FILES_SHOWN]:
        print(f"  {text_path(failure.path)}: {text_path(failure.reason)}", file=sys.stderr)
    if len(failures) > BAD_FILES_SHOWN:
        print(f"  ... and {len(failures) - BAD_FILES_SHOWN} more", file=sys.stderr)


def _report_flat_files(flat: Sequence[HashedFile]) -> None:
    if not flat:
        return
    noun = "image" if len(flat) == 1 else "images"
    print(
        f"imgscout: left {len(flat)} nearly uniform {noun} out of the groups "
        "(the hash of a flat image does not describe it):",
        file=sys.stderr,
    )
    for item in flat[:BAD_FILES_SHOWN]:
        print(f"  {text_path(item.path)}", file=sys.stderr)
    if len(flat) > BAD_FILES_SHOWN:
        print(f"  ... and {len(flat) - BAD_FILES_SHOWN} more", file=sys.stderr)


def _bad_json(failures: Sequence[HashFailure]) -> list[dict[str, str]]:
    return [{"path": display_path(f.path), "error": display_path(f.reason)} for f in failures]


def _candidates(args: argparse.Namespace, absolute: bool = False) -> list[str]:
    try:
        paths = list(
            iter_image_candidates(
                args.paths,
                recursive=args.recursive,
                follow_links=args.follow_links,
                min_size=args.min_size,
                extensions=args.ext,
            )
        )
    except OSError as error:
        raise CliError(str(error)) from error
    if absolute:
        paths = [os.path.abspath(p) for p in paths]
    return paths


def _split_unencodable(paths: Sequence[str]) -> tuple[list[str], list[HashFailure]]:
    """Titles are UTF-8 text: a file name that is not valid UTF-8 cannot be one."""
    good, bad = [], []
    for path in paths:
        try:
            path.encode("utf-8")
            good.append(path)
        except UnicodeEncodeError:
            bad.append(HashFailure(path, "file name is not valid UTF-8"))
    return good, bad


# ---------------------------------------------------------------------------------------------
# Commands


def cmd_hash(args: argparse.Namespace) -> int:
    hashed, failed = hash_files(_candidates(args), jobs=args.jobs)
    if args.json:
        _emit_json(
            {
                "files": [
                    {"path": display_path(h.path), "hash": format_hash(h.hash)} for h in hashed
                ],
                "bad_files": _bad_json(failed),
            }
        )
    else:
        for item in hashed:
            print(f"{format_hash(item.hash)}  {text_path(item.path)}")
    _report_bad_files(failed)
    return EXIT_OK if hashed else EXIT_NOTHING_FOUND


def cmd_add(args: argparse.Namespace) -> int:
    paths, failed = _split_unencodable(_candidates(args, absolute=True))
    with open_backend(args, writing=True) as backend:
        stats, more_failed, _ = _index_files(backend, paths, args.jobs, args.sync)
        failed.extend(more_failed)
    if args.json:
        _emit_json({**stats, "bad_files": _bad_json(failed)})
    else:
        print(
            f"added {stats['added']}, updated {stats['updated']}, "
            f"unchanged {stats['unchanged']}, bad {len(failed)}; "
            f"index has {stats['size']} entries"
            + (f" and {stats['pending']} pending" if stats["pending"] else "")
        )
    _report_bad_files(failed)
    return EXIT_OK


def _index_files(
    backend: Backend,
    paths: Sequence[str],
    jobs: int | None,
    sync: bool,
    need_facts: bool = False,
) -> tuple[dict[str, int], list[HashFailure], list[HashedFile]]:
    """``add``: hashes the new and changed files among ``paths`` into the index, saves it, then
    updates the cache. Returns the counts, the failures and every file's hash (from the cache
    for unchanged files: ``need_facts`` also re-hashes files cached without their pixel size)."""
    plan = _plan_add(backend, paths, need_facts)
    failed = list(plan.failures)
    hashed, hash_failures = hash_files([p for p, _, _ in plan.to_hash], jobs=jobs)
    failed.extend(hash_failures)
    stat_of = {p: (size, mtime) for p, size, mtime in plan.to_hash}

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
    backend.cache.put_many(
        FileRecord(h.path, *stat_of[h.path], h.hash, entry_id, h.width, h.height, h.flat)
        for h, entry_id in zip(hashed, ids)
    )
    stats: dict[str, int] = {"unchanged": len(plan.unchanged)}
    replaced = sum(1 for h in hashed if h.path in plan.had_entry)
    stats["added"] = len(hashed) - replaced
    stats["updated"] = replaced
    stats["size"] = backend.index.size()
    stats["pending"] = _pending(backend.index)
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


def _plan_add(backend: Backend, paths: Sequence[str], need_facts: bool = False) -> _AddPlan:
    """Which files need hashing, which index entries they replace, how many are unchanged."""
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
        backend.index.size() + _pending(backend.index)
    ):
        by_title = _ids_by_title(backend, stats)
    plan = _AddPlan([], [], set(), [], failures)
    for path, (size, mtime_ns) in stats.items():
        record = confirmed.get(path)
        existing = set(by_title.get(path, ()))
        if record is not None:
            existing.add(record.id)
        if (
            record is not None
            and record.matches(size, mtime_ns)
            and not (need_facts and record.flat is None)
        ):
            plan.unchanged.append(record)
            existing.discard(record.id)
        else:
            plan.to_hash.append((path, size, mtime_ns))
            if existing:
                plan.had_entry.add(path)
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
    if hasattr(backend.index, "lookup_many"):  # ShardedIndex: lookups across shards
        titles: list[Any] = backend.index.lookup_many([record.id for record in records])
    elif backend.redis_client is not None:
        # One round trip for all lookups instead of one per file.
        pipe = backend.redis_client.pipeline(transaction=False)
        for record in records:
            pipe.execute_command("imgscout.lookup", backend.redis_key, record.id)
        titles = pipe.execute()
    else:
        titles = [backend.index.lookup(record.id) for record in records]
    confirmed = {}
    for record, title in zip(records, titles):
        if isinstance(title, bytes):
            title = title.decode("utf-8", "replace")
        if title == record.path:
            confirmed[record.path] = record
    return confirmed


def cmd_query(args: argparse.Namespace) -> int:
    hashed, failed = hash_files(_candidates(args), jobs=args.jobs)
    with open_backend(args, writing=False) as backend:
        answers = (
            backend.index.query_many([h.hash for h in hashed], args.radius, limit=args.limit)
            if hashed
            else []
        )
    found = any(answers)
    if args.json:
        _emit_json(
            {
                "radius": args.radius,
                "queries": [
                    {
                        "path": display_path(item.path),
                        "hash": format_hash(item.hash),
                        "matches": [
                            {
                                "title": display_path(m.title),
                                "id": int(m.id),
                                "distance": int(m.distance),
                            }
                            for m in matches
                        ],
                    }
                    for item, matches in zip(hashed, answers)
                ],
                "bad_files": _bad_json(failed),
            }
        )
    else:
        for item, matches in zip(hashed, answers):
            count = len(matches)
            print(f"{text_path(item.path)}: {count} match{'es' if count != 1 else ''}")
            for match in matches:
                print(f"  {int(match.distance):>2}  id {int(match.id)}  {text_path(match.title)}")
    _report_bad_files(failed)
    return EXIT_OK if found else EXIT_NOTHING_FOUND


def cmd_sync(args: argparse.Namespace) -> int:
    with open_backend(args, writing=True) as backend:
        backend.index.sync()
        backend.save()
        size = backend.index.size()
    if args.json:
        _emit_json({"size": size})
    else:
        print(f"synced; index has {size} entries")
    return EXIT_OK


def cmd_lookup(args: argparse.Namespace) -> int:
    with open_backend(args, writing=False) as backend:
        title = backend.index.lookup(args.id)
    if args.json:
        _emit_json({"id": args.id, "title": None if title is None else display_path(title)})
    elif title is not None:
        print(text_path(title))
    else:
        print(f"imgscout: no entry with id {args.id}", file=sys.stderr)
    return EXIT_OK if title is not None else EXIT_NOTHING_FOUND


def cmd_size(args: argparse.Namespace) -> int:
    with open_backend(args, writing=False) as backend:
        size = backend.index.size()
        pending = _pending(backend.index)
    if args.json:
        _emit_json({"size": size, "pending": pending})
    else:
        print(size)
    return EXIT_OK


def cmd_del(args: argparse.Namespace) -> int:
    with open_backend(args, writing=True) as backend:
        try:
            backend.index.delete(args.id)
        except KeyError:
            deleted = False
        else:
            deleted = True
            # Index first: cache rows for an id the index lacks are harmless (re-hashed).
            backend.save()
            backend.cache.remove_ids([args.id])
    if args.json:
        _emit_json({"id": args.id, "deleted": deleted})
    elif deleted:
        print(f"deleted {args.id}")
    else:
        print(f"imgscout: no entry with id {args.id}", file=sys.stderr)
    return EXIT_OK if deleted else EXIT_NOTHING_FOUND


def cmd_dupes(args: argparse.Namespace) -> int:
    if args.index is not None and not args.redis:
        # With an index: the folder is added to it as `add` does, so a re-run over unchanged
        # files takes their hashes from the cache and only stats them.
        paths, failed = _split_unencodable(_candidates(args, absolute=True))
        with open_backend(args, writing=True) as backend:
            _, more_failed, hashed = _index_files(
                backend, paths, args.jobs, sync=True, need_facts=True
            )
        failed.extend(more_failed)
    else:
        if args.redis and not args.key:
            args.key = "imgscout"
        hashed, failed = hash_files(_candidates(args), jobs=args.jobs)
    # By path, so that the self-join, the pairs that link each group and every order in the
    # report depend on which files there are, not on the order they were named in.
    hashed.sort(key=lambda h: h.path)
    files_hashed = len(hashed)
    # A flat image's hash says nothing about the picture: single linkage through such hashes
    # glued unrelated photos together, so flat images are kept out of the groups.
    flat = [h for h in hashed if h.flat]
    hashed = [h for h in hashed if not h.flat]
    pairs = _self_join(args, hashed)
    reference: set[str] = set()
    if args.against is not None:
        hashed, pairs, reference, ref_failed = _join_reference(args, hashed, pairs)
        failed.extend(ref_failed)
    groups = group_pairs(
        [h.path for h in hashed],
        [h.hash for h in hashed],
        pairs,
        _facts(hashed, pairs),
    )
    if args.against is not None:
        # Only groups that hold a reference file and a new one.
        groups = [
            g
            for g in groups
            if any(p in reference for p in g.paths) and not all(p in reference for p in g.paths)
        ]
        for group in groups:
            group.reference = [p in reference for p in group.paths]
    kind = "move" if args.move_to else "link" if args.link else "delete" if args.delete else None
    planned = (
        plan_actions(groups, args.keep, kind, move_to=args.move_to, link=args.link or "hard")
        if kind is not None
        else []
    )
    done, problems = 0, []
    if planned and args.apply:
        try:
            done, problems = apply_actions(planned, args.journal)
        except OSError as error:
            raise CliError(f"cannot write journal {args.journal}: {error}") from error
    if args.csv:
        policy = args.keep if args.keep != "reference" or args.against else "largest-resolution"
        try:
            with open(args.csv, "w", encoding="utf-8", newline="") as out:
                write_csv(out, groups, [kept_member(g, policy) for g in groups])
        except OSError as error:
            raise CliError(f"cannot write {args.csv}: {error}") from error
    if args.html:
        try:
            with open(args.html, "w", encoding="utf-8") as out:
                out.write(format_html(groups, args.radius, files_hashed))
        except OSError as error:
            raise CliError(f"cannot write {args.html}: {error}") from error
    if args.json:
        _emit_json(
            {
                "radius": args.radius,
                "files_hashed": files_hashed,
                "groups": to_json(groups),
                "low_information": [display_path(h.path) for h in flat],
                "bad_files": _bad_json(failed),
                **(
                    {
                        "actions": [_action_json(a) for a in planned],
                        "applied": bool(args.apply),
                        "done": done,
                        "failed_actions": problems,
                    }
                    if kind is not None
                    else {}
                ),
            }
        )
    else:
        print(format_text(groups, args.radius, files_hashed))
        if args.html:
            print(f"report written to {text_path(args.html)}")
        if kind is not None:
            for action in planned:
                print(describe(action, done=bool(args.apply)))
            if args.apply:
                print(f"{done} of {len(planned)} done; journal {text_path(args.journal)}")
            else:
                print(f"dry run: {len(planned)} to do; --apply does them")
    for problem in problems:
        print(f"imgscout: not done: {problem}", file=sys.stderr)
    _report_flat_files(flat)
    _report_bad_files(failed)
    if problems:
        return EXIT_USAGE
    return EXIT_OK if groups else EXIT_NOTHING_FOUND


def _action_json(action: Action) -> dict[str, str | None]:
    return {
        "action": action.kind,
        "path": display_path(action.path),
        "kept": display_path(action.kept),
        "to": None if action.target is None else display_path(action.target),
        "link": action.link,
    }


def cmd_undo(args: argparse.Namespace) -> int:
    restored, skipped, problems = undo(args.journal)
    if args.json:
        _emit_json({"restored": restored, "skipped": skipped, "failed": problems})
    else:
        print(f"restored {restored}, skipped {skipped} (not done or already undone)")
    for problem in problems:
        print(f"imgscout: not restored: {problem}", file=sys.stderr)
    return EXIT_USAGE if problems else EXIT_OK


def _join_reference(
    args: argparse.Namespace,
    hashed: Sequence[HashedFile],
    pairs: Sequence[tuple[int, int, int]],
) -> tuple[list[HashedFile], list[tuple[int, int, int]], set[str], list[HashFailure]]:
    """Adds the reference files after ``hashed``, with the pairs joining new files to them:
    each new file is queried against an index of the reference, never the reference against
    itself. REF is a folder (hashed now) or an embedded index file (its entries are used)."""
    import imgscout

    ref_failed: list[HashFailure] = []
    if not os.path.exists(args.against):
        raise CliError(f"no such reference folder or index: {args.against}")
    if os.path.isdir(args.against):
        ref_hashed, ref_failed = hash_files(
            list(
                iter_image_candidates(
                    [args.against],
                    recursive=args.recursive,
                    follow_links=args.follow_links,
                    min_size=args.min_size,
                    extensions=args.ext,
                )
            ),
            jobs=args.jobs,
        )
        ref = sorted((h for h in ref_hashed if not h.flat), key=lambda h: h.path)
    else:
        _check_regular(args.against, "reference index", must_exist=True)
        try:
            stored = imgscout.Index.load(args.against)
        except (OSError, ValueError) as error:
            raise CliError(f"cannot read reference index {args.against}: {error}") from error
        ref = sorted(
            (HashedFile(e.title, int(e.hash)) for e in stored.entries()), key=lambda h: h.path
        )
    new_paths = {h.path for h in hashed}
    ref = [h for h in ref if h.path not in new_paths]  # a file named on both sides is new
    combined = [*hashed, *ref]
    joined = list(pairs)
    if ref and hashed:
        index = imgscout.Index()
        ids = index.add_many([h.hash for h in ref], [str(k) for k in range(len(ref))])
        index.sync()
        position = {int(entry_id): len(hashed) + k for k, entry_id in enumerate(ids)}
        answers = index.query_many([h.hash for h in hashed], args.radius)
        for k, matches in enumerate(answers):
            joined.extend((k, position[int(m.id)], int(m.distance)) for m in matches)
    return combined, joined, {h.path for h in ref}, ref_failed


def _facts(hashed: Sequence[HashedFile], pairs: Sequence[tuple[int, int, int]]) -> list[FileFacts]:
    """Size and date of the files in some pair (the others are in no group): one stat each."""
    grouped = {p for i, j, _ in pairs for p in (i, j)}
    return [
        file_facts(h.path, h.width, h.height) if k in grouped else FileFacts(h.width, h.height)
        for k, h in enumerate(hashed)
    ]


def _self_join(
    args: argparse.Namespace, hashed: Sequence[HashedFile]
) -> list[tuple[int, int, int]]:
    """Pairs within the radius as positions in ``hashed``, from the backend's own self-join.

    Files with the same hash are joined to the first of them directly and only one of them
    goes into the self-join: 3,000 identical images cost 2,999 pairs, not 4.5 million.

    ``dupes`` never changes a stored index: the embedded run uses a fresh in-memory index, the
    Redis run a temporary key (deleted afterwards, with an expiry in case the run is killed).
    """
    first_with: dict[int, int] = {}
    pairs: list[tuple[int, int, int]] = []
    for position, item in enumerate(hashed):
        first = first_with.setdefault(item.hash, position)
        if first != position:
            pairs.append((first, position, 0))
    distinct = list(first_with.values())
    joined = _distinct_self_join(args, [hashed[p] for p in distinct])
    pairs.extend((distinct[a], distinct[b], d) for a, b, d in joined)
    return pairs


def _distinct_self_join(
    args: argparse.Namespace, hashed: Sequence[HashedFile]
) -> list[tuple[int, int, int]]:
    import imgscout

    if len(hashed) < 2:
        return []
    # Titles are not needed (answers come back as ids) and a file name need not be UTF-8.
    titles = [str(k) for k in range(len(hashed))]
    values = [h.hash for h in hashed]
    index: imgscout.SearchIndex
    if args.redis:
        client = _redis_client(args.redis, args.cluster)
        scratch_key = f"{args.key}:dupes:{uuid.uuid4().hex}"
        # The module mirrors each title into a hash "<key>:<id>": those go with the key.
        if args.cluster:
            index = imgscout.ShardedIndex(client, scratch_key, shards=args.shards)
            ids_ahead = range(1, len(hashed) + 1)
            scratch_names = [*index.keys, *index.title_hash_keys(ids_ahead)]
        else:
            index = imgscout.RedisIndex(client, scratch_key)
            scratch_names = [
                scratch_key,
                *(f"{scratch_key}:{n}" for n in range(1, len(hashed) + 1)),
            ]
        try:
            ids = index.add_many(values, titles)
            _for_each_key(client, "expire", scratch_names, 3600)
            index.sync()
            raw_pairs = index.pairs(args.radius)
        finally:
            _for_each_key(client, "delete", scratch_names)
    else:
        index = imgscout.Index()
        ids = index.add_many(values, titles)
        index.sync()
        raw_pairs = index.pairs(args.radius)
    position = {int(entry_id): k for k, entry_id in enumerate(ids)}
    return [(position[int(a)], position[int(b)], int(d)) for a, b, d in raw_pairs]


def _for_each_key(client: Any, command: str, names: Sequence[str], *args: Any) -> None:
    pipe = client.pipeline(transaction=False)
    for name in names:
        getattr(pipe, command)(name, *args)
    pipe.execute()


COMMANDS = {
    "hash": cmd_hash,
    "add": cmd_add,
    "query": cmd_query,
    "sync": cmd_sync,
    "lookup": cmd_lookup,
    "size": cmd_size,
    "del": cmd_del,
    "dupes": cmd_dupes,
    "undo": cmd_undo,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:
        # --help and usage errors: return the status so callers (and tests) get an int.
        return stop.code if isinstance(stop.code, int) else EXIT_USAGE
    try:
        return COMMANDS[args.command](args)
    except CliError as error:
        print(f"imgscout: {text_path(str(error))}", file=sys.stderr)
        return EXIT_USAGE
    except _redis_errors() as error:
        print(f"imgscout: Redis error: {_first_line(error)}", file=sys.stderr)
        return EXIT_USAGE
    except (CacheError, ActionError) as error:
        print(f"imgscout: {text_path(str(error))}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("imgscout: interrupted", file=sys.stderr)
        return 130
    except OSError as error:
        # Whatever the commands did not foresee (a disk full, a file gone mid-run): one line.
        print(f"imgscout: {text_path(_first_line(error))}", file=sys.stderr)
        return EXIT_USAGE


def _first_line(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return text.splitlines()[0]


if __name__ == "__main__":
    sys.exit(main())
