"""``imgscout``: hash images, keep them in an index, and find near-duplicates.

Exit codes: 0 success; 1 the command found nothing (a query without matches, an unknown id,
no duplicate groups, no file hashed), like grep; 2 usage or environment errors (bad arguments,
missing folder, unreadable index, unreachable Redis), always as one line on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import uuid
from collections.abc import Sequence
from typing import NoReturn

from imgscout import hashing
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
from imgscout._cli_backend import (
    DEFAULT_INDEX,
    Backend,
    BackendOptions,
    UsageError,
    index_files,
    open_backend,
    pending,
    redis_client,
    redis_index,
    split_unencodable,
)
from imgscout._cli_cache import CacheError
from imgscout._cli_report import (
    display_path,
    format_html,
    format_text,
    group_pairs,
    text_path,
    to_json,
    write_csv,
)
from imgscout._types import Match
from imgscout.dedup import (
    DEFAULT_RADII,
    DEFAULT_RADIUS,
    PairFinder,
    find_duplicates,
    rotation_pairs,
    to_report_group,
)
from imgscout.hashing import (
    ALGORITHMS,
    DEFAULT_ALGORITHM,
    HashedFile,
    HashFailure,
    LowQuality,
    format_hash,
    iter_image_candidates,
)

__all__ = ["DEFAULT_INDEX", "DEFAULT_RADIUS", "CliError", "build_parser", "group_pairs", "main"]

#: How many bad files are named at the end of a run; the count is always given.
BAD_FILES_SHOWN = 5

EXIT_OK = 0
EXIT_NOTHING_FOUND = 1
EXIT_USAGE = 2

#: A problem the user can fix: printed as one line, exit status 2.
CliError = UsageError


# ---------------------------------------------------------------------------------------------
# Argument parsing


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One clear line instead of argparse's usage block: the usage is one --help away.
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        _settle_radius(parsed)
        return parsed, extras


def _settle_radius(args: argparse.Namespace) -> None:
    """The radius once ``--hash`` is known: its default when not given, and at most the
    hash's bits (a larger radius acts as the width, as everywhere)."""
    if not hasattr(args, "radius"):
        return
    algorithm = getattr(args, "hash", DEFAULT_ALGORITHM)
    if args.radius is None:
        args.radius = DEFAULT_RADII[algorithm]
    else:
        args.radius = min(args.radius, ALGORITHMS[algorithm])


def _radius(text: str) -> int:
    """A radius by the spec's grammar (``_core``), not yet bounded by the hash's width: the
    core bounds radius text by 64, the width of phash."""
    from imgscout import _core

    if _core.parse_radius_text(text) is None:
        raise argparse.ArgumentTypeError(
            f"invalid radius {text!r}: a number of differing bits, 0..64 (0..256 for "
            "--hash phash256 and pdq)"
        )
    whole = text.partition(".")[0]
    return int(whole) if whole else 0


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
    files.add_argument(
        "--hash",
        choices=tuple(ALGORITHMS),
        default=DEFAULT_ALGORITHM,
        help="the hash: phash (64-bit pHash, the default), phash256 (256-bit pHash) or pdq "
        "(Meta's PDQ, 256 bits; pip install 'imgscout[pdq]'); an index holds one kind",
    )
    files.add_argument(
        "--keep-low-quality",
        action="store_true",
        help="with --hash pdq: also use files whose PDQ quality is below 50 (reported and "
        "left out by default: too little detail to match on)",
    )

    radius = argparse.ArgumentParser(add_help=False)
    radius.add_argument(
        "--radius",
        "-r",
        type=_radius,
        default=None,
        help="largest Hamming distance counted as a copy (default: "
        + ", ".join(f"{r} for {name}" for name, r in DEFAULT_RADII.items())
        + ")",
    )
    radius.add_argument(
        "--rotations",
        action="store_true",
        help="also match rotated and mirrored copies (the 8 orientations of each file hashed "
        "here; the index keeps the original's hash)",
    )

    parser = _Parser(
        prog="imgscout",
        description="Find near-duplicate images with perceptual hashes (pHash, PDQ).",
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


def _backend(args: argparse.Namespace, writing: bool) -> contextlib.AbstractContextManager[Backend]:
    # Only `add` and `dupes` create an index; every other command needs one to be there.
    # The commands that hash name their algorithm: the index must hold its hashes.
    options = BackendOptions(
        args.index, args.redis, args.key, args.cluster, args.shards, getattr(args, "hash", None)
    )
    return open_backend(options, writing, creating=args.command in ("add", "dupes"))


def _bits(args: argparse.Namespace) -> int:
    return ALGORITHMS[args.hash]


def _require_hash(args: argparse.Namespace) -> None:
    """A missing hashing package is one usage error, before any file is read."""
    try:
        hashing.require_algorithm(args.hash)
    except ImportError as error:
        raise CliError(str(error)) from error


def _hash_files(
    args: argparse.Namespace, paths: Sequence[str], rotations: bool = False
) -> tuple[list[HashedFile], list[HashFailure]]:
    _require_hash(args)
    return hashing.hash_files(
        paths,
        jobs=args.jobs,
        algorithm=args.hash,
        rotations=rotations,
        keep_low_quality=args.keep_low_quality,
    )


def _redis_errors() -> tuple[type[BaseException], ...]:
    # Only a run that imported redis can meet its errors: the others never import it.
    redis = sys.modules.get("redis")
    return (redis.RedisError,) if redis is not None else ()


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


def _report_list(heading: str, lines: Sequence[str]) -> None:
    """``heading`` and the first :data:`BAD_FILES_SHOWN` of ``lines`` on stderr, nothing when
    ``lines`` is empty."""
    if not lines:
        return
    print(f"imgscout: {heading}:", file=sys.stderr)
    for line in lines[:BAD_FILES_SHOWN]:
        print(f"  {line}", file=sys.stderr)
    if len(lines) > BAD_FILES_SHOWN:
        print(f"  ... and {len(lines) - BAD_FILES_SHOWN} more", file=sys.stderr)


def _files(count: int, noun: str = "file") -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _report_bad_files(failures: Sequence[HashFailure]) -> None:
    poor = [f for f in failures if isinstance(f, LowQuality)]
    _report_list(
        f"left out {_files(len(poor))} of PDQ quality below {hashing.PDQ_MIN_QUALITY} (too "
        "little detail to match on; --keep-low-quality uses them)",
        [f"{text_path(item.path)}: quality {item.quality}" for item in poor],
    )
    unreadable = [f for f in failures if not isinstance(f, LowQuality)]
    _report_list(
        f"skipped {_files(len(unreadable))} that could not be read as images",
        [f"{text_path(f.path)}: {text_path(f.reason)}" for f in unreadable],
    )


def _report_flat_files(flat: Sequence[str]) -> None:
    _report_list(
        f"left {len(flat)} nearly uniform {'image' if len(flat) == 1 else 'images'} out of the "
        "groups (the hash of a flat image does not describe it)",
        [text_path(path) for path in flat],
    )


def _bad_json(failures: Sequence[HashFailure]) -> list[dict[str, str]]:
    return [
        {"path": display_path(f.path), "error": display_path(f.reason)}
        for f in failures
        if not isinstance(f, LowQuality)
    ]


def _hash_json(args: argparse.Namespace, failures: Sequence[HashFailure]) -> dict[str, object]:
    """What a run with another hash than phash adds to its JSON: the algorithm and, for pdq,
    the files left out for their quality (phash runs print exactly what they always did)."""
    if args.hash == DEFAULT_ALGORITHM:
        return {}
    extra: dict[str, object] = {"hash_algorithm": args.hash}
    if args.hash == "pdq":
        extra["low_quality"] = [
            {"path": display_path(f.path), "quality": f.quality}
            for f in failures
            if isinstance(f, LowQuality)
        ]
    return extra


def _item_json(args: argparse.Namespace, item: HashedFile) -> dict[str, object]:
    shown: dict[str, object] = {
        "path": display_path(item.path),
        "hash": format_hash(item.hash, _bits(args)),
    }
    if item.quality is not None:
        shown["quality"] = item.quality
    return shown


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


# ---------------------------------------------------------------------------------------------
# Commands


def cmd_hash(args: argparse.Namespace) -> int:
    hashed, failed = _hash_files(args, _candidates(args))
    if args.json:
        _emit_json(
            {
                "files": [_item_json(args, h) for h in hashed],
                "bad_files": _bad_json(failed),
                **_hash_json(args, failed),
            }
        )
    else:
        for item in hashed:
            print(f"{format_hash(item.hash, _bits(args))}  {text_path(item.path)}")
    _report_bad_files(failed)
    return EXIT_OK if hashed else EXIT_NOTHING_FOUND


def cmd_add(args: argparse.Namespace) -> int:
    _require_hash(args)
    paths, failed = split_unencodable(_candidates(args, absolute=True))
    with _backend(args, writing=True) as backend:
        stats, more_failed, _ = index_files(
            backend, paths, args.jobs, args.sync, keep_low_quality=args.keep_low_quality
        )
        failed.extend(more_failed)
    if args.json:
        _emit_json({**stats, "bad_files": _bad_json(failed), **_hash_json(args, failed)})
    else:
        print(
            f"added {stats['added']}, updated {stats['updated']}, "
            f"unchanged {stats['unchanged']}, bad {len(_bad_json(failed))}; "
            f"index has {stats['size']} entries"
            + (f" and {stats['pending']} pending" if stats["pending"] else "")
        )
    _report_bad_files(failed)
    return EXIT_OK


def cmd_query(args: argparse.Namespace) -> int:
    _require_hash(args)
    paths = _candidates(args)
    with _backend(args, writing=False) as backend:
        hashed, failed = _hash_files(args, paths, rotations=args.rotations)
        answers = _query(backend.index, hashed, args.radius, args.limit, args.rotations)
    found = any(answers)
    if args.json:
        _emit_json(
            {
                "radius": args.radius,
                **({"rotations": True} if args.rotations else {}),
                "queries": [
                    {
                        **_item_json(args, item),
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
                **_hash_json(args, failed),
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


def _query(
    index: object, hashed: Sequence[HashedFile], radius: int, limit: int | None, rotations: bool
) -> list[list[Match]]:
    """Each file's matches. With rotations every orientation of the file is a query, and an
    entry's distance is the smallest over them; the order is the one queries have (distance,
    then id), so the first ``limit`` of the merged answer are those of the full one: an entry
    among them is among the first ``limit`` of the orientation that gives its distance."""
    if not hashed:
        return []
    if not rotations:
        return index.query_many([h.hash for h in hashed], radius, limit=limit)  # type: ignore[attr-defined,no-any-return]
    turned = [h.variants or (h.hash,) for h in hashed]
    flat = [value for values in turned for value in values]
    raw = index.query_many(flat, radius, limit=limit)  # type: ignore[attr-defined]
    answers: list[list[Match]] = []
    start = 0
    for values in turned:
        best: dict[int, Match] = {}
        for matches in raw[start : start + len(values)]:
            for match in matches:
                known = best.get(int(match.id))
                if known is None or int(match.distance) < int(known.distance):
                    best[int(match.id)] = match
        start += len(values)
        merged = sorted(best.values(), key=lambda m: (int(m.distance), int(m.id)))
        answers.append(merged if limit is None else merged[:limit])
    return answers


def cmd_sync(args: argparse.Namespace) -> int:
    with _backend(args, writing=True) as backend:
        backend.index.sync()
        backend.save()
        size = backend.index.size()
    if args.json:
        _emit_json({"size": size})
    else:
        print(f"synced; index has {size} entries")
    return EXIT_OK


def cmd_lookup(args: argparse.Namespace) -> int:
    with _backend(args, writing=False) as backend:
        title = backend.index.lookup(args.id)
    if args.json:
        _emit_json({"id": args.id, "title": None if title is None else display_path(title)})
    elif title is not None:
        print(text_path(title))
    else:
        print(f"imgscout: no entry with id {args.id}", file=sys.stderr)
    return EXIT_OK if title is not None else EXIT_NOTHING_FOUND


def cmd_size(args: argparse.Namespace) -> int:
    with _backend(args, writing=False) as backend:
        size = backend.index.size()
        waiting = pending(backend.index)
    if args.json:
        _emit_json({"size": size, "pending": waiting})
    else:
        print(size)
    return EXIT_OK


def cmd_del(args: argparse.Namespace) -> int:
    with _backend(args, writing=True) as backend:
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
    if args.redis and not args.key:
        args.key = "imgscout"
    _require_hash(args)
    found = find_duplicates(
        args.paths,
        args.radius,
        # With an embedded index the files are added to it, so a re-run over unchanged files
        # takes their hashes from the cache and only stats them; with --redis the self-join
        # runs on the server instead.
        index=args.index if not args.redis else None,
        against=args.against,
        recursive=args.recursive,
        follow_links=args.follow_links,
        min_size=args.min_size,
        extensions=args.ext,
        jobs=args.jobs,
        pair_finder=_redis_pair_finder(args) if args.redis else None,
        hash=args.hash,
        rotations=args.rotations,
        keep_low_quality=args.keep_low_quality,
    )
    groups = [to_report_group(g) for g in found]
    kind = "move" if args.move_to else "link" if args.link else "delete" if args.delete else None
    planned = (
        plan_actions(groups, args.keep, kind, move_to=args.move_to, link=args.link or "hard")
        if kind is not None
        else []
    )
    # The reports mark the file each group keeps: --keep's choice (without --against,
    # "reference" has no file to name and the reports fall back to the default).
    policy = args.keep if args.keep != "reference" or args.against else "largest-resolution"
    kept = [kept_member(g, policy) for g in groups]
    done, problems = 0, []
    if planned and args.apply:
        try:
            done, problems = apply_actions(planned, args.journal)
        except OSError as error:
            raise CliError(f"cannot write journal {args.journal}: {error}") from error
    if args.csv:
        try:
            with open(args.csv, "w", encoding="utf-8", newline="") as out:
                write_csv(out, groups, kept)
        except OSError as error:
            raise CliError(f"cannot write {args.csv}: {error}") from error
    if args.html:
        try:
            with open(args.html, "w", encoding="utf-8") as out:
                out.write(format_html(groups, args.radius, found.files_hashed, kept, policy))
        except OSError as error:
            raise CliError(f"cannot write {args.html}: {error}") from error
    if args.json:
        _emit_json(
            {
                "radius": args.radius,
                "files_hashed": found.files_hashed,
                "groups": to_json(groups, kept),
                **({"rotations": True} if args.rotations else {}),
                "low_information": [display_path(p) for p in found.low_information],
                "bad_files": _bad_json(found.failures),
                **_hash_json(args, found.low_quality),
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
        print(format_text(groups, args.radius, found.files_hashed, kept, policy))
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
    _report_flat_files(found.low_information)
    _report_bad_files([*found.low_quality, *found.failures])
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


def _redis_pair_finder(args: argparse.Namespace) -> PairFinder:
    """The self-join of ``dupes --redis``, on the server. It never changes a stored index:
    the hashes go to a temporary key (deleted afterwards, with an expiry in case the run is
    killed)."""

    def find_pairs(
        values: Sequence[int], radius: int, variants: Sequence[Sequence[int]] | None = None
    ) -> list[tuple[int, int, int]]:
        if len(values) < 2:
            return []
        # Titles are not needed (answers come back as ids) and a file name need not be UTF-8.
        titles = [str(k) for k in range(len(values))]
        client = redis_client(args.redis, args.cluster)
        scratch_key = f"{args.key}:dupes:{uuid.uuid4().hex}"
        index = redis_index(client, scratch_key, _bits(args), args.cluster, args.shards)
        try:
            if variants is not None:
                # The expiry is set once the key exists: rotation_pairs adds, then queries.
                return rotation_pairs(_Expiring(index), values, variants, radius)
            ids = index.add_many(list(values), titles)
            index.expire(3600)
            index.sync()
            raw_pairs = index.pairs(radius)
        finally:
            index.drop()
        position = {int(entry_id): k for k, entry_id in enumerate(ids)}
        return [(position[int(a)], position[int(b)], int(d)) for a, b, d in raw_pairs]

    return find_pairs


class _Expiring:
    """A scratch Redis index that gets its expiry as soon as entries are added (so that a
    killed run leaves nothing for long)."""

    def __init__(self, index: object) -> None:
        self._index = index

    def add_many(self, hashes: Sequence[int], titles: Sequence[str]) -> object:
        ids = self._index.add_many(hashes, titles)  # type: ignore[attr-defined]
        self._index.expire(3600)  # type: ignore[attr-defined]
        return ids

    def sync(self) -> None:
        self._index.sync()  # type: ignore[attr-defined]

    def query_many(self, hashes: Sequence[int], radius: int) -> list[list[Match]]:
        return self._index.query_many(hashes, radius)  # type: ignore[attr-defined,no-any-return]


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
