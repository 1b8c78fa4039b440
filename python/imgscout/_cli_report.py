"""Near-duplicate groups: building them from the self-join, and printing them (text, JSON, HTML)."""

from __future__ import annotations

import base64
import csv
import datetime
import html
import io
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from imgscout.hashing import format_hash, hamming, open_upright

THUMBNAIL_PIXELS = 200
#: Beyond this many members a distance matrix stops being readable; list the linking pairs.
MATRIX_MAX_MEMBERS = 12


#: Characters that would break a line of the text report or a terminal: control characters and
#: the separators ``str.splitlines`` honours, printed as escapes.
_LINE_BREAKERS = {
    **{code: f"\\x{code:02x}" for code in (*range(0x20), 0x7F, 0x85)},
    ord("\n"): "\\n",
    ord("\r"): "\\r",
    ord("\t"): "\\t",
    0x2028: "\\u2028",
    0x2029: "\\u2029",
}


def display_path(path: str) -> str:
    """A path as valid Unicode: bytes that are not UTF-8 (kept by ``surrogateescape``) become
    ``\\xNN``. For JSON and HTML, which escape the rest themselves."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def text_path(path: str) -> str:
    """A path for one line of text: :func:`display_path` with line breaks and control
    characters escaped, so a file name never splits or garbles a report line."""
    return display_path(path).translate(_LINE_BREAKERS)


@dataclass(frozen=True)
class FileFacts:
    """What decides which copy is best, and what the report shows about each file."""

    width: int = 0
    height: int = 0
    size: int = 0
    mtime_ns: int = 0

    @property
    def pixels(self) -> int:
        return self.width * self.height


def file_facts(path: str, width: int = 0, height: int = 0) -> FileFacts:
    try:
        status = os.stat(path)
    except OSError:
        return FileFacts(width, height)
    return FileFacts(width, height, status.st_size, status.st_mtime_ns)


def best_first(path: str, facts: FileFacts) -> tuple[int, int, str]:
    """The order of a group's members: largest resolution, then largest file, then path."""
    return (-facts.pixels, -facts.size, path)


@dataclass
class Group:
    #: Best copy first (:func:`best_first`).
    paths: list[str]
    hashes: list[int]
    #: The pairs that joined the group, a spanning tree (indices into ``paths``): one fewer
    #: than the members, however many pairs are within the radius.
    links: list[tuple[int, int, int]] = field(default_factory=list)
    facts: list[FileFacts] = field(default_factory=list)
    #: With ``dupes --against``: which members are reference files.
    reference: list[bool] = field(default_factory=list)
    #: The width of the hashes (how many hex digits print them).
    bits: int = 64
    #: With ``--rotations``: each member's orientation hashes (empty for a member without).
    variants: list[list[int]] = field(default_factory=list)

    def distance(self, i: int, j: int) -> int:
        """Hamming distance; with rotations the smallest between one member's orientations
        and the other's hash, either way round (what the self-join found)."""
        best = hamming(self.hashes[i], self.hashes[j])
        if self.variants:
            for a, b in ((i, j), (j, i)):
                for value in self.variants[a]:
                    best = min(best, hamming(value, self.hashes[b]))
        return best

    def all_pairs(self) -> list[tuple[int, int, int]]:
        """Every pair: quadratic, so only for groups small enough to print as a matrix."""
        n = len(self.paths)
        return [(i, j, self.distance(i, j)) for i in range(n) for j in range(i + 1, n)]

    def has_matrix(self) -> bool:
        return len(self.paths) <= MATRIX_MAX_MEMBERS

    def distances_to_first(self) -> list[int]:
        return [self.distance(0, k) for k in range(len(self.hashes))]

    def distance_range(self) -> tuple[int, int]:
        """Smallest and largest distance over all pairs of a matrix-sized group; over the
        linking pairs of a larger one (all pairs would grow with the square of the group)."""
        pairs = self.all_pairs() if self.has_matrix() else self.links
        distances = [d for _, _, d in pairs] or [0]
        return min(distances), max(distances)

    def max_distance(self) -> int:
        return self.distance_range()[1]


def group_pairs(
    paths: Sequence[str],
    hashes: Sequence[int],
    pairs: Iterable[tuple[int, int, int]],
    facts: Sequence[FileFacts] | None = None,
    bits: int = 64,
    variants: Sequence[Sequence[int]] | None = None,
) -> list[Group]:
    """Connected components of the "within radius" graph, largest first, then by smallest path;
    members best copy first (:func:`best_first` on ``facts``, by path when not given). Both
    orders depend only on the files, never on the order pairs arrive in: every run agrees.

    ``pairs`` are ``(i, j, distance)`` over positions in ``paths``. Single linkage is what a
    person expects from "copies of copies": A~B and B~C put A, B and C together even when A and
    C are further apart than the radius; the printed distances show that. Only the pairs that
    join two components are kept (a spanning tree), so the groups take memory linear in the
    files however many pairs there are. ``bits`` and ``variants`` (each file's orientation
    hashes, with rotations) go to the groups.
    """
    parent = list(range(len(paths)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    joining: list[tuple[int, int, int]] = []
    for i, j, d in pairs:
        ri, rj = root(i), root(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
            joining.append((i, j, d))

    members: dict[int, list[int]] = {}
    for i in range(len(paths)):
        members.setdefault(root(i), []).append(i)
    links_by_root: dict[int, list[tuple[int, int, int]]] = {}
    for i, j, d in joining:
        links_by_root.setdefault(root(i), []).append((i, j, d))

    groups = []
    for group_root, positions in members.items():
        if len(positions) < 2:
            continue
        member_facts = [facts[p] if facts is not None else FileFacts() for p in positions]
        order = sorted(
            range(len(positions)), key=lambda k: best_first(paths[positions[k]], member_facts[k])
        )
        positions = [positions[k] for k in order]
        member_facts = [member_facts[k] for k in order]
        local = {p: k for k, p in enumerate(positions)}
        links = sorted(
            (min(local[i], local[j]), max(local[i], local[j]), d)
            for i, j, d in links_by_root.get(group_root, [])
        )
        groups.append(
            Group(
                [paths[p] for p in positions],
                [hashes[p] for p in positions],
                links,
                member_facts,
                bits=bits,
                variants=[list(variants[p]) for p in positions] if variants is not None else [],
            )
        )
    groups.sort(key=lambda g: (-len(g.paths), min(g.paths)))
    return groups


#: What each ``--keep`` policy keeps, for the reports' legends.
KEEP_LEGEND = {
    "largest-resolution": "most pixels, then largest file",
    "largest-file": "largest file, then most pixels",
    "oldest": "oldest modification time",
    "newest": "newest modification time",
    "reference": "the best reference copy",
}


def _kept_or_best(groups: Sequence[Group], kept: Sequence[int] | None) -> list[int]:
    return list(kept) if kept is not None else [0] * len(groups)


def format_text(
    groups: Sequence[Group],
    radius: int,
    files_hashed: int,
    kept: Sequence[int] | None = None,
    keep_policy: str = "largest-resolution",
) -> str:
    """One block per group: each member with its hash, pixels, bytes, date and distance to the
    group's best copy (member 1), then the distances; a summary at the end. ``kept[n]`` is the
    member of group ``n`` that ``--keep keep_policy`` keeps, marked ``*`` (default: the best
    copy, which is what ``largest-resolution`` keeps)."""
    keeps = _kept_or_best(groups, kept)
    lines: list[str] = []
    for number, (group, kept_member) in enumerate(zip(groups, keeps), 1):
        low, high = group.distance_range()
        lines.append(f"Group {number}: {len(group.paths)} files, distances {low}-{high}")
        width = len(str(len(group.paths)))
        facts = group.facts or [FileFacts()] * len(group.paths)
        to_best = group.distances_to_first()
        for k, (path, value) in enumerate(zip(group.paths, group.hashes), 1):
            fact = facts[k - 1]
            mark = "*" if k - 1 == kept_member else " "
            ref = "ref " if group.reference and group.reference[k - 1] else ""
            lines.append(
                f"  {k:>{width}}{mark} {format_hash(value, group.bits)}  {_pixels(fact):>11}  "
                f"{fact.size:>13,} B  {_date(fact)}  d{to_best[k - 1]:<2}  {ref}{text_path(path)}"
            )
        lines.extend(_distance_lines(group))
        lines.append("")
    if groups:
        extra_files = sum(len(_extra_members(g, k)) for g, k in zip(groups, keeps))
        lines.append(
            f"* kept (--keep {keep_policy}: {KEEP_LEGEND.get(keep_policy, keep_policy)}); "
            "d: distance to member 1, the best copy (most pixels, then largest file)"
        )
        lines.append(
            f"Beyond the kept copies: {extra_files} file{'s' if extra_files != 1 else ''}, "
            f"{reclaimable_bytes(groups, keeps):,} bytes"
        )
    in_groups = sum(len(g.paths) for g in groups)
    lines.append(
        f"{len(groups)} group{'s' if len(groups) != 1 else ''} of near-duplicates "
        f"({in_groups} of {files_hashed} files) at radius {radius}"
    )
    return "\n".join(lines)


def _extra_members(group: Group, kept: int) -> list[int]:
    """The members an action would touch: all but the kept one and the reference files."""
    return [
        k
        for k in range(len(group.paths))
        if k != kept and not (group.reference and group.reference[k])
    ]


def reclaimable_bytes(groups: Sequence[Group], kept: Sequence[int] | None = None) -> int:
    """The bytes of every member but the kept one (default: the best copy) of each group,
    reference files left out: what the actions on the extra copies would free."""
    total = 0
    for group, kept_member in zip(groups, _kept_or_best(groups, kept)):
        facts = group.facts or [FileFacts()] * len(group.paths)
        total += sum(facts[k].size for k in _extra_members(group, kept_member))
    return total


def _pixels(fact: FileFacts) -> str:
    return f"{fact.width}x{fact.height}" if fact.pixels else "?"


def _date(fact: FileFacts) -> str:
    if not fact.mtime_ns:
        return "?" * 16
    stamp = datetime.datetime.fromtimestamp(fact.mtime_ns / 1e9)
    return stamp.strftime("%Y-%m-%d %H:%M")


def _distance_lines(group: Group) -> list[str]:
    n = len(group.paths)
    if not group.has_matrix():
        # One line per member, not one per pair: a group of thousands stays readable.
        width = len(str(n))
        rows = ["  linked by (member-member: distance):"]
        rows.extend(f"    {i + 1:>{width}}-{j + 1:<{width}}: {d}" for i, j, d in group.links)
        return rows
    cell = max(2, len(str(n)))
    header = "  distances " + " ".join(f"{k:>{cell}}" for k in range(1, n + 1))
    rows = [header]
    for i in range(n):
        cells = " ".join(
            f"{'-':>{cell}}" if i == j else f"{group.distance(i, j):>{cell}}" for j in range(n)
        )
        rows.append(f"  {i + 1:>9} {cells}")
    return rows


def to_json(groups: Sequence[Group], kept: Sequence[int] | None = None) -> list[dict[str, object]]:
    """``kept[n]``: the position in ``files`` of the member group ``n`` keeps (``--keep``)."""
    return [
        {
            "files": [
                {
                    "path": display_path(path),
                    "hash": format_hash(value, group.bits),
                    "distance": distance,
                    "width": fact.width,
                    "height": fact.height,
                    "bytes": fact.size,
                    "mtime_ns": fact.mtime_ns,
                }
                for path, value, distance, fact in zip(
                    group.paths,
                    group.hashes,
                    group.distances_to_first(),
                    group.facts or [FileFacts()] * len(group.paths),
                )
            ],
            **(
                {"reference": [display_path(p) for p, r in zip(group.paths, group.reference) if r]}
                if group.reference
                else {}
            ),
            # The first file is the best copy; "kept" is the one --keep keeps, and these are
            # the bytes of the others (reference files left out).
            "kept": kept_member,
            "reclaimable_bytes": reclaimable_bytes([group], [kept_member]),
            # Positions in "files": the spanning tree of pairs that joined the group.
            "links": [{"a": i, "b": j, "distance": d} for i, j, d in group.links],
            # Every pair only for matrix-sized groups; a large one would grow with its square.
            **(
                {
                    "pairs": [
                        {
                            "a": display_path(group.paths[i]),
                            "b": display_path(group.paths[j]),
                            "distance": d,
                        }
                        for i, j, d in group.all_pairs()
                    ]
                }
                if group.has_matrix()
                else {}
            ),
            "max_distance": group.max_distance(),
        }
        for group, kept_member in zip(groups, _kept_or_best(groups, kept))
    ]


CSV_COLUMNS = (
    "group",
    "member",
    "path",
    "hash",
    "width",
    "height",
    "bytes",
    "modified",
    "distance_to_best",
    "kept",
    "reference",
)


def write_csv(out: io.TextIOBase, groups: Sequence[Group], kept: Sequence[int]) -> None:
    """One row per member; ``kept[n]`` is the member group ``n`` keeps (``--keep``)."""
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for number, (group, kept_member) in enumerate(zip(groups, kept), 1):
        facts = group.facts or [FileFacts()] * len(group.paths)
        for k, (path, value, distance) in enumerate(
            zip(group.paths, group.hashes, group.distances_to_first())
        ):
            fact = facts[k]
            modified = (
                datetime.datetime.fromtimestamp(fact.mtime_ns / 1e9).isoformat(timespec="seconds")
                if fact.mtime_ns
                else ""
            )
            writer.writerow(
                [
                    number,
                    k + 1,
                    display_path(path),
                    format_hash(value, group.bits),
                    fact.width,
                    fact.height,
                    fact.size,
                    modified,
                    distance,
                    int(k == kept_member),
                    int(bool(group.reference) and group.reference[k]),
                ]
            )


def thumbnail_data_uri(path: str) -> tuple[str, str]:
    """A small JPEG of the image as a ``data:`` URI, and its pixel size as text."""
    with open_upright(path) as image:
        size_text = f"{image.width}\u00d7{image.height}"
        image.thumbnail((THUMBNAIL_PIXELS, THUMBNAIL_PIXELS))
        rgb = image.convert("RGB")
    buffer = io.BytesIO()
    rgb.save(buffer, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode(), size_text


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; background: #f6f6f6; color: #222; }
h1 { font-size: 1.4em; }
section.group { background: #fff; border: 1px solid #ccc; border-radius: 6px;
  padding: 0.8em 1em; margin: 0 0 1.2em 0; }
section.group h2 { font-size: 1.1em; margin: 0 0 0.6em 0; }
.members { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start; }
figure { margin: 0; width: 210px; }
figure img { max-width: 200px; max-height: 200px; display: block; border: 1px solid #999;
  background: repeating-conic-gradient(#ddd 0 25%, #fff 0 50%) 0 0 / 16px 16px; }
figcaption { font-size: 0.8em; overflow-wrap: anywhere; margin-top: 4px; }
figcaption code { color: #555; }
table.distances { border-collapse: collapse; margin-top: 0.8em; font-size: 0.85em; }
table.distances td, table.distances th { border: 1px solid #ccc; padding: 2px 6px;
  text-align: right; }
td.near { background: #d8f0d8; }
td.far { background: #f6dede; }
.best { font-weight: bold; color: #1a6b1a; }
.kept { font-weight: bold; color: #fff; background: #1a6b1a; border-radius: 3px;
  padding: 0 4px; }
.ref { color: #555; font-style: italic; }
"""


def format_html(
    groups: Sequence[Group],
    radius: int,
    files_hashed: int,
    kept: Sequence[int] | None = None,
    keep_policy: str = "largest-resolution",
) -> str:
    """A self-contained page: every thumbnail is inlined, nothing is fetched. Member 1 of each
    group is marked as the best copy and ``kept[n]`` (default: the best copy) as the file
    ``--keep keep_policy`` keeps."""
    keeps = _kept_or_best(groups, kept)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>imgscout near-duplicates</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>imgscout near-duplicates</h1>",
        f'<p id="summary" data-groups="{len(groups)}">{len(groups)} group'
        f"{'s' if len(groups) != 1 else ''} among {files_hashed} files at radius {radius}. "
        "Green distances are within the radius, red ones are not (the image joined the group "
        "through another member). "
        f'<span class="kept">Kept</span> marks the file <code>--keep {html.escape(keep_policy)}'
        f"</code> keeps ({html.escape(KEEP_LEGEND.get(keep_policy, keep_policy))}).</p>",
    ]
    for number, (group, kept_member) in enumerate(zip(groups, keeps), 1):
        parts.append(
            f'<section class="group" id="group-{number}" data-members="{len(group.paths)}">'
            f"<h2>Group {number}: {len(group.paths)} files, distances "
            f"{group.distance_range()[0]}&ndash;{group.distance_range()[1]}</h2>"
            '<div class="members">'
        )
        to_best = group.distances_to_first()
        for k, (path, value) in enumerate(zip(group.paths, group.hashes), 1):
            shown = html.escape(display_path(path))
            role = (
                '<span class="best">best copy</span>'
                if k == 1
                else f'<span class="to-best">distance {to_best[k - 1]} to 1</span>'
            )
            if k - 1 == kept_member:
                role += ' <span class="kept">kept</span>'
            if group.reference and group.reference[k - 1]:
                role += ' <span class="ref">reference</span>'

            try:
                uri, size_text = thumbnail_data_uri(path)
                image_tag = f'<img class="thumb" alt="{shown}" src="{uri}">'
            except Exception as error:  # the file changed since it was hashed
                size_text = f"unreadable now: {html.escape(display_path(str(error)))}"
                image_tag = ""
            try:
                bytes_text = f", {os.path.getsize(path):,} bytes"
            except OSError:
                bytes_text = ""
            parts.append(
                f"<figure>{image_tag}<figcaption><b>{k}</b> {shown}<br>"
                f"<code>{format_hash(value, group.bits)}</code> {size_text}{bytes_text}<br>{role}"
                "</figcaption></figure>"
            )
        parts.append("</div>")
        parts.append(_distance_table(group, radius))
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _distance_table(group: Group, radius: int) -> str:
    n = len(group.paths)
    if not group.has_matrix():
        items = ", ".join(f"{i + 1}&ndash;{j + 1}: {d}" for i, j, d in group.links)
        return f"<p>Linking pairs: {items}</p>"
    rows = ["<table class='distances'><tr><th></th>"]
    rows.extend(f"<th>{k}</th>" for k in range(1, n + 1))
    rows.append("</tr>")
    for i in range(n):
        rows.append(f"<tr><th>{i + 1}</th>")
        for j in range(n):
            if i == j:
                rows.append("<td></td>")
            else:
                d = group.distance(i, j)
                rows.append(f"<td class='{'near' if d <= radius else 'far'}'>{d}</td>")
        rows.append("</tr>")
    rows.append("</table>")
    return "".join(rows)
