"""Near-duplicate groups of image files, as a library call: what ``imgscout dupes`` prints.

>>> from imgscout import find_duplicates
>>> for group in find_duplicates("~/Pictures", radius=8):        # doctest: +SKIP
...     print(group.best.path, [(m.path, m.distance) for m in group.members[1:]])

Each image is hashed (imagehash's 64-bit pHash, after its EXIF orientation), every pair of
hashes within ``radius`` bits is found by the exact self-join of the Rust index, and the
pairs are grouped by single linkage (A~B and B~C put A, B and C in one group). Nearly uniform
images are left out (their hash does not describe them), and files that cannot be decoded
are reported, not raised.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Union

from imgscout import hashing
from imgscout._cli_backend import (
    BackendOptions,
    EmbeddedIndex,
    UsageError,
    check_regular,
    index_files,
    open_backend,
    split_unencodable,
)
from imgscout._cli_report import FileFacts, Group, file_facts, group_pairs
from imgscout.hashing import HashedFile, HashFailure, iter_image_candidates

__all__ = [
    "DEFAULT_RADIUS",
    "DuplicateGroup",
    "Duplicates",
    "Member",
    "PairFinder",
    "UsageError",
    "find_duplicates",
]

#: Chosen from docs/radius.md: the radius that keeps every measured false pair out while
#: finding the most edited copies. tests/test_cli_radius.py checks it on examples/photos.
DEFAULT_RADIUS = 8

StrPath = Union[str, "os.PathLike[str]"]
#: ``(hashes, radius) -> [(i, j, distance), ...]``: every pair of positions ``i < j`` in
#: ``hashes`` within ``radius`` bits, each once. The hashes are distinct.
PairFinder = Callable[[Sequence[int], int], Iterable[tuple[int, int, int]]]


@dataclass(frozen=True)
class Member:
    """One file of a group."""

    path: str
    #: The 64-bit pHash as an int (``imgscout.hashing.format_hash`` prints it).
    hash: int
    #: Hamming distance to the group's best copy (``members[0]``; 0 for itself).
    distance: int
    #: Pixel size as displayed (after the EXIF orientation); 0 when not known.
    width: int = 0
    height: int = 0
    #: File size in bytes and modification time; 0 when the file could not be examined.
    size: int = 0
    mtime_ns: int = 0
    #: With ``against``: the file is one of the reference files.
    reference: bool = False


@dataclass(frozen=True)
class DuplicateGroup:
    """Files joined by pairs within the radius, best copy first (most pixels, then largest
    file, then path)."""

    members: tuple[Member, ...]
    #: The pairs that joined the group, as positions in ``members`` with their distance: a
    #: spanning tree, one fewer than the members.
    links: tuple[tuple[int, int, int], ...] = ()

    @property
    def best(self) -> Member:
        return self.members[0]

    @property
    def paths(self) -> list[str]:
        return [m.path for m in self.members]

    def __len__(self) -> int:
        return len(self.members)

    def __iter__(self) -> Iterator[Member]:
        return iter(self.members)


class Duplicates(list[DuplicateGroup]):
    """The groups, largest first (then by smallest path), with what else the search found."""

    def __init__(
        self,
        groups: Iterable[DuplicateGroup] = (),
        radius: int = DEFAULT_RADIUS,
        files_hashed: int = 0,
        low_information: Sequence[str] = (),
        failures: Sequence[HashFailure] = (),
    ) -> None:
        super().__init__(groups)
        self.radius = radius
        #: Images hashed (or taken from the index's cache), reference files not counted.
        self.files_hashed = files_hashed
        #: Nearly uniform images left out of the groups (their hash says nothing of them).
        self.low_information = list(low_information)
        #: Files that could not be read as images (path and reason).
        self.failures = list(failures)


@dataclass
class _Found:
    """What :func:`find_duplicates` builds, in the report's form (the CLI prints it)."""

    groups: list[Group]
    files_hashed: int
    low_information: list[HashedFile] = field(default_factory=list)
    failures: list[HashFailure] = field(default_factory=list)


def find_duplicates(
    source: StrPath | Iterable[StrPath] | Mapping[str, int],
    radius: int = DEFAULT_RADIUS,
    *,
    index: StrPath | None = None,
    against: StrPath | None = None,
    recursive: bool = True,
    follow_links: bool = False,
    min_size: int = 0,
    extensions: Collection[str] | None = None,
    jobs: int | None = None,
    pair_finder: PairFinder | None = None,
) -> Duplicates:
    """Groups of near-duplicate images.

    ``source``: a folder or image file, several of them, or a mapping of path to 64-bit hash
    (as ``int``) already computed (no file is decoded then; like imagededup's
    ``encoding_map``). Folders are walked sorted (``recursive``, ``follow_links``, skipping
    hidden files); ``min_size`` (bytes) and ``extensions`` (e.g. ``{"jpg", "png"}``) filter
    the files. ``radius``: the largest Hamming distance counted as a copy (0..64; the default
    8 comes from docs/radius.md).

    ``index``: an embedded index file. The files are added to it (absolute paths) and the
    hashes of unchanged files (same size and modification time) come from its cache, so a
    second call over an unchanged folder decodes nothing. ``against``: reference mode; a
    folder or an index file whose files are compared with the new ones (never with each
    other): only groups joining new files to reference files are returned, and reference
    members are marked. ``jobs``: hashing processes (default one per core).
    ``pair_finder``: runs the self-join (default: the embedded Rust index).

    Returns a :class:`Duplicates`: a list of :class:`DuplicateGroup` (each a tuple of
    :class:`Member` with path, hash, distance to the group's best copy, pixels, bytes and
    date) that also carries ``files_hashed``, ``low_information`` and ``failures``. Raises
    :class:`UsageError` for a missing folder or an unreadable index, ValueError for a bad
    argument.
    """
    found = _find(
        source,
        radius,
        index=index,
        against=against,
        recursive=recursive,
        follow_links=follow_links,
        min_size=min_size,
        extensions=extensions,
        jobs=jobs,
        pair_finder=pair_finder,
    )
    return Duplicates(
        (_public_group(g) for g in found.groups),
        radius=radius,
        files_hashed=found.files_hashed,
        low_information=[h.path for h in found.low_information],
        failures=found.failures,
    )


def _find(
    source: StrPath | Iterable[StrPath] | Mapping[str, int],
    radius: int,
    *,
    index: StrPath | None = None,
    against: StrPath | None = None,
    recursive: bool = True,
    follow_links: bool = False,
    min_size: int = 0,
    extensions: Collection[str] | None = None,
    jobs: int | None = None,
    pair_finder: PairFinder | None = None,
) -> _Found:
    if isinstance(radius, bool) or not isinstance(radius, int) or radius < 0:
        raise ValueError(f"invalid radius {radius!r}: a whole number of differing bits, 0..64")
    find_pairs = pair_finder or embedded_pairs
    walk = {
        "recursive": recursive,
        "follow_links": follow_links,
        "min_size": min_size,
        "extensions": extensions,
    }
    failed: list[HashFailure] = []
    if isinstance(source, Mapping):
        if index is not None:
            raise ValueError("index= needs files to hash, not a mapping of hashes")
        hashed = [HashedFile(str(path), int(value)) for path, value in source.items()]
    elif index is not None:
        # The folder is added to the index as `imgscout add` does, so a re-run over unchanged
        # files takes their hashes from the cache and only stats them.
        paths, failed = split_unencodable(_candidates(source, walk, absolute=True))
        options = BackendOptions(index=os.path.expanduser(os.fspath(index)))
        with open_backend(options, True, True) as backend:
            _, more_failed, hashed = index_files(backend, paths, jobs, sync=True, need_facts=True)
        failed.extend(more_failed)
    else:
        hashed, failed = hashing.hash_files(_candidates(source, walk), jobs=jobs)
    # By path, so that the self-join, the pairs that link each group and every order in the
    # report depend on which files there are, not on the order they were named in.
    hashed.sort(key=lambda h: h.path)
    files_hashed = len(hashed)
    # A flat image's hash says nothing about the picture: single linkage through such hashes
    # glued unrelated photos together, so flat images are kept out of the groups.
    flat = [h for h in hashed if h.flat]
    hashed = [h for h in hashed if not h.flat]
    pairs = _self_join(hashed, radius, find_pairs)
    reference: set[str] = set()
    if against is not None:
        hashed, pairs, reference, ref_failed = _join_reference(
            os.path.expanduser(os.fspath(against)), hashed, pairs, radius, walk, jobs
        )
        failed.extend(ref_failed)
    groups = group_pairs(
        [h.path for h in hashed],
        [h.hash for h in hashed],
        pairs,
        _facts(hashed, pairs),
    )
    if against is not None:
        # Only groups that hold a reference file and a new one.
        groups = [
            g
            for g in groups
            if any(p in reference for p in g.paths) and not all(p in reference for p in g.paths)
        ]
        for group in groups:
            group.reference = [p in reference for p in group.paths]
    return _Found(groups, files_hashed, flat, failed)


def _candidates(
    source: StrPath | Iterable[StrPath], walk: dict[str, object], absolute: bool = False
) -> list[str]:
    roots = [os.fspath(source)] if isinstance(source, (str, os.PathLike)) else source
    try:
        paths = list(
            iter_image_candidates(
                [os.path.expanduser(os.fspath(r)) for r in roots],
                **walk,  # type: ignore[arg-type]
            )
        )
    except OSError as error:
        raise UsageError(str(error)) from error
    if absolute:
        paths = [os.path.abspath(p) for p in paths]
    return paths


def _public_group(group: Group) -> DuplicateGroup:
    facts = group.facts or [FileFacts()] * len(group.paths)
    reference = group.reference or [False] * len(group.paths)
    return DuplicateGroup(
        tuple(
            Member(path, value, distance, f.width, f.height, f.size, f.mtime_ns, ref)
            for path, value, distance, f, ref in zip(
                group.paths, group.hashes, group.distances_to_first(), facts, reference
            )
        ),
        tuple(group.links),
    )


def embedded_pairs(hashes: Sequence[int], radius: int) -> list[tuple[int, int, int]]:
    """Every pair of ``hashes`` within ``radius``, from the Rust index in this process."""
    from imgscout import _core

    if len(hashes) < 2:
        return []
    # Titles are not needed (answers come back as ids). The core is used as it is: the
    # hashes are ints from the hashing, so the Python layer's checks (and numpy) add nothing.
    core = _core.Index()
    position = {core.add(value, b""): k for k, value in enumerate(hashes)}
    core.sync()
    return [
        (position[a], position[b], d)
        for a, b, d in core.pairs(min(radius, hashing.HASH_BITS), _core.DEFAULT_MAX_ROWS)
    ]


def _self_join(
    hashed: Sequence[HashedFile], radius: int, find_pairs: PairFinder
) -> list[tuple[int, int, int]]:
    """Pairs within the radius as positions in ``hashed``.

    Files with the same hash are joined to the first of them directly and only one of them
    goes into the self-join: 3,000 identical images cost 2,999 pairs, not 4.5 million.
    """
    first_with: dict[int, int] = {}
    pairs: list[tuple[int, int, int]] = []
    for position, item in enumerate(hashed):
        first = first_with.setdefault(item.hash, position)
        if first != position:
            pairs.append((first, position, 0))
    distinct = list(first_with.values())
    joined = find_pairs([hashed[p].hash for p in distinct], radius) if len(distinct) > 1 else []
    pairs.extend((distinct[a], distinct[b], int(d)) for a, b, d in joined)
    return pairs


def _join_reference(
    against: str,
    hashed: Sequence[HashedFile],
    pairs: Sequence[tuple[int, int, int]],
    radius: int,
    walk: dict[str, object],
    jobs: int | None,
) -> tuple[list[HashedFile], list[tuple[int, int, int]], set[str], list[HashFailure]]:
    """Adds the reference files after ``hashed``, with the pairs joining new files to them:
    each new file is queried against an index of the reference, never the reference against
    itself. REF is a folder (hashed now) or an embedded index file (its entries are used)."""
    ref_failed: list[HashFailure] = []
    if not os.path.exists(against):
        raise UsageError(f"no such reference folder or index: {against}")
    if os.path.isdir(against):
        ref_hashed, ref_failed = hashing.hash_files(_candidates(against, walk), jobs=jobs)
        ref = sorted((h for h in ref_hashed if not h.flat), key=lambda h: h.path)
    else:
        check_regular(against, "reference index", must_exist=True)
        try:
            stored = EmbeddedIndex(against, exists=True)
        except (OSError, ValueError) as error:
            raise UsageError(f"cannot read reference index {against}: {error}") from error
        ref = sorted(
            (HashedFile(e.title, int(e.hash)) for e in stored.entries()), key=lambda h: h.path
        )
    new_paths = {h.path for h in hashed}
    ref = [h for h in ref if h.path not in new_paths]  # a file named on both sides is new
    combined = [*hashed, *ref]
    joined = list(pairs)
    if ref and hashed:
        import imgscout

        lookup = imgscout.Index()
        ids = lookup.add_many([h.hash for h in ref], [str(k) for k in range(len(ref))])
        lookup.sync()
        position = {int(entry_id): len(hashed) + k for k, entry_id in enumerate(ids)}
        answers = lookup.query_many([h.hash for h in hashed], radius)
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


def to_report_group(group: DuplicateGroup) -> Group:
    """The form the CLI's reports and actions take."""
    return Group(
        [m.path for m in group.members],
        [m.hash for m in group.members],
        list(group.links),
        [FileFacts(m.width, m.height, m.size, m.mtime_ns) for m in group.members],
        [m.reference for m in group.members] if any(m.reference for m in group.members) else [],
    )
