"""Near-duplicate groups of image files, as a library call: what ``imgscout dupes`` prints.

>>> from imgscout import find_duplicates
>>> for group in find_duplicates("~/Pictures", radius=8):        # doctest: +SKIP
...     print(group.best.path, [(m.path, m.distance) for m in group.members[1:]])

Each image is hashed (imagehash's 64-bit pHash by default; ``hash="phash256"`` or ``"pdq"``
for 256-bit hashes; after its EXIF orientation), every pair of hashes within ``radius`` bits is
found by the exact self-join of the Rust index, and the pairs are grouped by single linkage
(A~B and B~C put A, B and C in one group). Nearly uniform images are left out (their hash does
not describe them), and files that cannot be decoded are reported, not raised; so are files
whose PDQ quality is too low to match on. With ``rotations=True`` a file also matches the
rotated and mirrored copies of another: the distance of a pair is the smallest over the eight
orientations of either file.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Union

from imgscout import hashing
from imgscout._cli_backend import (
    BackendOptions,
    UsageError,
    index_files,
    open_backend,
    open_reference,
    split_unencodable,
)
from imgscout._cli_report import FileFacts, Group, file_facts, group_pairs
from imgscout.hashing import HashedFile, HashFailure, LowQuality, iter_image_candidates

__all__ = [
    "DEFAULT_RADII",
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

#: The default radius of each hashing algorithm (``--hash``), all chosen by one rule in
#: docs/radius.md (scripts/radius_study.py): the largest even radius below the first false
#: pair between different photographs, counted with dihedral matching so that the default is
#: safe with ``rotations`` too. phash's is :data:`DEFAULT_RADIUS`. pdq's is wider than PDQ's
#: published match threshold (31, ThreatExchange's ``PDQ_CONFIDENT_MATCH_THRESHOLD``), which
#: finds fewer copies on that data; pass ``radius=31`` to match as ThreatExchange does.
DEFAULT_RADII: dict[str, int] = {"phash": DEFAULT_RADIUS, "phash256": 78, "pdq": 78}

StrPath = Union[str, "os.PathLike[str]"]
#: ``(hashes, radius) -> [(i, j, distance), ...]``: every pair of positions ``i < j`` in
#: ``hashes`` within ``radius`` bits, each once. The hashes are distinct. With
#: ``rotations=True`` it is called with a third argument, each hash's eight orientation
#: hashes (:data:`imgscout.hashing.ORIENTATIONS`), and a pair's distance is the smallest
#: between one's orientations and the other's hash (:func:`rotation_pairs`).
PairFinder = Callable[..., Iterable[tuple[int, int, int]]]


@dataclass(frozen=True)
class Member:
    """One file of a group."""

    path: str
    #: The hash as an int: a 64-bit pHash by default (``imgscout.hashing.format_hash`` prints
    #: it; ``format_hash(hash, 256)`` for the 256-bit ones).
    hash: int
    #: Hamming distance to the group's best copy (``members[0]``; 0 for itself); with
    #: rotations the smallest over the orientations.
    distance: int
    #: Pixel size as displayed (after the EXIF orientation); 0 when not known.
    width: int = 0
    height: int = 0
    #: File size in bytes and modification time; 0 when the file could not be examined.
    size: int = 0
    mtime_ns: int = 0
    #: With ``against``: the file is one of the reference files.
    reference: bool = False
    #: With ``rotations``: the hashes of its eight orientations, the first its hash; empty for
    #: a reference file read from an index.
    variants: tuple[int, ...] = ()


@dataclass(frozen=True)
class DuplicateGroup:
    """Files joined by pairs within the radius, best copy first (most pixels, then largest
    file, then path)."""

    members: tuple[Member, ...]
    #: The pairs that joined the group, as positions in ``members`` with their distance: a
    #: spanning tree, one fewer than the members.
    links: tuple[tuple[int, int, int], ...] = ()
    #: The width of the hashes: 64 (phash) or 256 (phash256, pdq).
    bits: int = 64

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
        hash: str = "phash",
        rotations: bool = False,
        low_quality: Sequence[LowQuality] = (),
    ) -> None:
        super().__init__(groups)
        self.radius = radius
        #: Images hashed (or taken from the index's cache), reference files not counted.
        self.files_hashed = files_hashed
        #: Nearly uniform images left out of the groups (their hash says nothing of them).
        self.low_information = list(low_information)
        #: Files that could not be read as images (path and reason).
        self.failures = list(failures)
        #: The hashing algorithm, and whether orientations were matched.
        self.hash = hash
        self.rotations = rotations
        #: Files left out because their PDQ quality is too low (path, reason and quality).
        self.low_quality = list(low_quality)


@dataclass
class _Found:
    """What :func:`find_duplicates` builds, in the report's form (the CLI prints it)."""

    groups: list[Group]
    files_hashed: int
    low_information: list[HashedFile] = field(default_factory=list)
    failures: list[HashFailure] = field(default_factory=list)
    low_quality: list[LowQuality] = field(default_factory=list)


def find_duplicates(
    source: StrPath | Iterable[StrPath] | Mapping[str, int],
    radius: int | None = None,
    *,
    index: StrPath | None = None,
    against: StrPath | None = None,
    recursive: bool = True,
    follow_links: bool = False,
    min_size: int = 0,
    extensions: Collection[str] | None = None,
    jobs: int | None = None,
    pair_finder: PairFinder | None = None,
    hash: str = "phash",
    rotations: bool = False,
    keep_low_quality: bool = False,
) -> Duplicates:
    """Groups of near-duplicate images.

    ``source``: a folder or image file, several of them, or a mapping of path to hash (as
    ``int``) already computed (no file is decoded then; like imagededup's
    ``encoding_map``). Folders are walked sorted (``recursive``, ``follow_links``, skipping
    hidden files); ``min_size`` (bytes) and ``extensions`` (e.g. ``{"jpg", "png"}``) filter
    the files. ``radius``: the largest Hamming distance counted as a copy (0 up to the hash's
    bits; default :data:`DEFAULT_RADII` of ``hash``: 8 for phash, 78 for phash256 and pdq, from
    docs/radius.md).

    ``hash``: ``"phash"`` (64 bits, the default), ``"phash256"`` (``imagehash.phash(image,
    hash_size=16)``) or ``"pdq"`` (Meta's PDQ, needs ``pip install "imgscout[pdq]"``); files
    whose PDQ quality is below 50 are left out (``low_quality``) unless ``keep_low_quality``.
    ``rotations``: also match rotated and mirrored copies (each file's eight orientations are
    hashed; a pair's distance is the smallest over them).

    ``index``: an embedded index file. The files are added to it (absolute paths) and the
    hashes of unchanged files (same size and modification time) come from its cache, so a
    second call over an unchanged folder decodes nothing. ``against``: reference mode; a
    folder or an index file whose files are compared with the new ones (never with each
    other): only groups joining new files to reference files are returned, and reference
    members are marked. ``jobs``: hashing processes (default one per core).
    ``pair_finder``: runs the self-join (default: the embedded Rust index).

    Returns a :class:`Duplicates`: a list of :class:`DuplicateGroup` (each a tuple of
    :class:`Member` with path, hash, distance to the group's best copy, pixels, bytes and
    date) that also carries ``files_hashed``, ``low_information``, ``failures`` and
    ``low_quality``. Raises :class:`UsageError` for a missing folder, an unreadable index, an
    index of another algorithm or a missing hashing package, ValueError for a bad argument.
    """
    bits = _hash_bits(hash)
    if radius is None:
        radius = DEFAULT_RADII[hash]
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
        hash=hash,
        rotations=rotations,
        keep_low_quality=keep_low_quality,
    )
    return Duplicates(
        (_public_group(g, bits) for g in found.groups),
        radius=radius,
        files_hashed=found.files_hashed,
        low_information=[h.path for h in found.low_information],
        failures=found.failures,
        hash=hash,
        rotations=rotations,
        low_quality=found.low_quality,
    )


def _hash_bits(algorithm: str) -> int:
    """The bits of ``algorithm``; UsageError when the package it needs is missing."""
    bits = hashing.hash_bits(algorithm)
    try:
        hashing.require_algorithm(algorithm)
    except ImportError as error:
        raise UsageError(str(error)) from error
    return bits


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
    hash: str = "phash",
    rotations: bool = False,
    keep_low_quality: bool = False,
) -> _Found:
    bits = hashing.hash_bits(hash)
    if isinstance(radius, bool) or not isinstance(radius, int) or radius < 0:
        raise ValueError(f"invalid radius {radius!r}: a whole number of differing bits, 0..{bits}")
    find_pairs = pair_finder or functools.partial(embedded_pairs, bits=bits)
    options: dict[str, Any] = {
        "algorithm": hash,
        "rotations": rotations,
        "keep_low_quality": keep_low_quality,
    }
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
        if rotations:
            raise ValueError("rotations= needs files to turn, not a mapping of hashes")
        hashed = [HashedFile(str(path), int(value)) for path, value in source.items()]
    elif index is not None:
        # The folder is added to the index as `imgscout add` does, so a re-run over unchanged
        # files takes their hashes from the cache and only stats them.
        paths, failed = split_unencodable(_candidates(source, walk, absolute=True))
        backend_options = BackendOptions(index=os.path.expanduser(os.fspath(index)), hash=hash)
        with open_backend(backend_options, True, True) as backend:
            _, more_failed, hashed = index_files(
                backend,
                paths,
                jobs,
                sync=True,
                need_facts=True,
                keep_low_quality=keep_low_quality,
                rotations=rotations,
            )
        failed.extend(more_failed)
        if rotations:
            hashed = _with_variants(hashed, jobs, hash)
    else:
        hashed, failed = hashing.hash_files(_candidates(source, walk), jobs=jobs, **options)
    # By path, so that the self-join, the pairs that link each group and every order in the
    # report depend on which files there are, not on the order they were named in.
    hashed.sort(key=lambda h: h.path)
    files_hashed = len(hashed)
    # A flat image's hash says nothing about the picture: single linkage through such hashes
    # glued unrelated photos together, so flat images are kept out of the groups.
    flat = [h for h in hashed if h.flat]
    hashed = [h for h in hashed if not h.flat]
    pairs = _self_join(hashed, radius, find_pairs, rotations)
    reference: set[str] = set()
    if against is not None:
        hashed, pairs, reference, ref_failed = _join_reference(
            os.path.expanduser(os.fspath(against)),
            hashed,
            pairs,
            radius,
            walk,
            jobs,
            hash,
            rotations,
            keep_low_quality,
        )
        failed.extend(ref_failed)
    groups = group_pairs(
        [h.path for h in hashed],
        [h.hash for h in hashed],
        pairs,
        _facts(hashed, pairs),
        bits=bits,
        variants=[list(h.variants) for h in hashed] if rotations else None,
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
    poor = [f for f in failed if isinstance(f, LowQuality)]
    failed = [f for f in failed if not isinstance(f, LowQuality)]
    return _Found(groups, files_hashed, flat, failed, poor)


def _with_variants(
    hashed: Sequence[HashedFile], jobs: int | None, algorithm: str
) -> list[HashedFile]:
    """``hashed`` with every file's orientation hashes: the files taken from the cache have
    none (the cache keeps the original's hash only), so they are hashed again for them. A
    file that cannot be read now keeps its hash alone."""
    missing = [h.path for h in hashed if not h.variants]
    if not missing:
        return list(hashed)
    again, _ = hashing.hash_files(
        missing, jobs=jobs, algorithm=algorithm, rotations=True, keep_low_quality=True
    )
    variants = {h.path: h.variants for h in again}
    return [
        h if h.variants else dataclasses.replace(h, variants=variants.get(h.path, (h.hash,)))
        for h in hashed
    ]


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


def _public_group(group: Group, bits: int) -> DuplicateGroup:
    facts = group.facts or [FileFacts()] * len(group.paths)
    reference = group.reference or [False] * len(group.paths)
    variants = group.variants or [[]] * len(group.paths)
    return DuplicateGroup(
        tuple(
            Member(path, value, distance, f.width, f.height, f.size, f.mtime_ns, ref, tuple(v))
            for path, value, distance, f, ref, v in zip(
                group.paths, group.hashes, group.distances_to_first(), facts, reference, variants
            )
        ),
        tuple(group.links),
        bits,
    )


def embedded_pairs(
    hashes: Sequence[int],
    radius: int,
    variants: Sequence[Sequence[int]] | None = None,
    *,
    bits: int = hashing.HASH_BITS,
) -> list[tuple[int, int, int]]:
    """Every pair of ``hashes`` (of ``bits`` bits) within ``radius``, from the Rust index in
    this process; with ``variants``, as :func:`rotation_pairs` finds them."""
    from imgscout import _core

    if len(hashes) < 2:
        return []
    if variants is not None:
        from imgscout.index import Index

        return rotation_pairs(Index(bits=bits), hashes, variants, radius)
    # Titles are not needed (answers come back as ids). The core is used as it is: the
    # hashes are ints from the hashing, so the Python layer's checks (and numpy) add nothing.
    if bits == hashing.HASH_BITS:
        core = _core.Index()
        position = {core.add(value, b""): k for k, value in enumerate(hashes)}
    else:
        core = _core.Index(_core.DEFAULT_SYNC_THRESHOLD, bits)
        size = bits // 8
        position = {core.add(value.to_bytes(size, "big"), b""): k for k, value in enumerate(hashes)}
    core.sync()
    return [
        (position[a], position[b], d)
        for a, b, d in core.pairs(min(radius, bits), _core.DEFAULT_MAX_ROWS)
    ]


def rotation_pairs(
    index: Any,
    hashes: Sequence[int],
    variants: Sequence[Sequence[int]],
    radius: int,
) -> list[tuple[int, int, int]]:
    """Every pair of positions ``i < j`` for which some orientation of one file is within
    ``radius`` of the other's hash, with the smallest such distance, sorted by distance, then
    ``i``, then ``j``. ``index`` is an empty index (an :class:`imgscout.Index`, or a scratch
    ``RedisIndex``) of the hashes' width: it is given the hashes and queried with every
    orientation, so only the originals are ever stored."""
    if len(hashes) < 2:
        return []
    ids = index.add_many(list(hashes), [str(k) for k in range(len(hashes))])
    index.sync()
    position = {int(entry_id): k for k, entry_id in enumerate(ids)}
    owners = [k for k, turned in enumerate(variants) for _ in turned]
    queries = [value for turned in variants for value in turned]
    best: dict[tuple[int, int], int] = {}
    answers = index.query_many(queries, radius) if queries else []
    for owner, matches in zip(owners, answers):
        for match in matches:
            other = position[int(match.id)]
            if other == owner:
                continue
            pair = (min(owner, other), max(owner, other))
            distance = int(match.distance)
            if distance < best.get(pair, distance + 1):
                best[pair] = distance
    return sorted(((i, j, d) for (i, j), d in best.items()), key=lambda p: (p[2], p[0], p[1]))


def _self_join(
    hashed: Sequence[HashedFile], radius: int, find_pairs: PairFinder, rotations: bool = False
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
    joined: Iterable[tuple[int, int, int]] = []
    if len(distinct) > 1:
        values = [hashed[p].hash for p in distinct]
        if rotations:
            turned = [hashed[p].variants or (hashed[p].hash,) for p in distinct]
            joined = find_pairs(values, radius, turned)
        else:
            joined = find_pairs(values, radius)
    pairs.extend((distinct[a], distinct[b], int(d)) for a, b, d in joined)
    return pairs


def _join_reference(
    against: str,
    hashed: Sequence[HashedFile],
    pairs: Sequence[tuple[int, int, int]],
    radius: int,
    walk: dict[str, object],
    jobs: int | None,
    algorithm: str = "phash",
    rotations: bool = False,
    keep_low_quality: bool = False,
) -> tuple[list[HashedFile], list[tuple[int, int, int]], set[str], list[HashFailure]]:
    """Adds the reference files after ``hashed``, with the pairs joining new files to them:
    each new file (with ``rotations``: each of its orientations) is queried against an index
    of the reference, never the reference against itself. REF is a folder (hashed now, its
    originals only) or an embedded index file of the same algorithm (its entries are used)."""
    ref_failed: list[HashFailure] = []
    if not os.path.exists(against):
        raise UsageError(f"no such reference folder or index: {against}")
    if os.path.isdir(against):
        ref_hashed, ref_failed = hashing.hash_files(
            _candidates(against, walk),
            jobs=jobs,
            algorithm=algorithm,
            keep_low_quality=keep_low_quality,
        )
        ref = sorted((h for h in ref_hashed if not h.flat), key=lambda h: h.path)
    else:
        stored = open_reference(against, algorithm)
        ref = sorted(
            (HashedFile(e.title, _hash_int(e.hash)) for e in stored.entries()),
            key=lambda h: h.path,
        )
    new_paths = {h.path for h in hashed}
    ref = [h for h in ref if h.path not in new_paths]  # a file named on both sides is new
    combined = [*hashed, *ref]
    joined = list(pairs)
    if ref and hashed:
        import imgscout

        lookup = imgscout.Index(bits=hashing.hash_bits(algorithm))
        ids = lookup.add_many([h.hash for h in ref], [str(k) for k in range(len(ref))])
        lookup.sync()
        position = {int(entry_id): len(hashed) + k for k, entry_id in enumerate(ids)}
        turned = [list(h.variants or (h.hash,)) if rotations else [h.hash] for h in hashed]
        owners = [k for k, values in enumerate(turned) for _ in values]
        answers = lookup.query_many([v for values in turned for v in values], radius)
        best: dict[tuple[int, int], int] = {}
        for k, matches in zip(owners, answers):
            for m in matches:
                pair = (k, position[int(m.id)])
                best[pair] = min(best.get(pair, int(m.distance)), int(m.distance))
        joined.extend(
            sorted(((k, r, d) for (k, r), d in best.items()), key=lambda p: (p[0], p[2], p[1]))
        )
    return combined, joined, {h.path for h in ref}, ref_failed


def _hash_int(value: object) -> int:
    """An entry's hash as an int: 64-bit entries are ints, wider ones hex text or bytes."""
    if isinstance(value, str):
        return int(value, 16)
    if isinstance(value, (bytes, bytearray)):
        return int.from_bytes(value, "big")
    return int(value)  # type: ignore[call-overload]


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
        bits=group.bits,
        variants=(
            [list(m.variants) for m in group.members]
            if any(m.variants for m in group.members)
            else []
        ),
    )
