"""Near-duplicate groups: building them from the self-join, and printing them (text, JSON, HTML)."""

from __future__ import annotations

import base64
import html
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from imgscout.hashing import format_hash, hamming

THUMBNAIL_PIXELS = 200
#: Beyond this many members a distance matrix stops being readable; list the linking pairs.
MATRIX_MAX_MEMBERS = 12


@dataclass
class Group:
    paths: list[str]
    hashes: list[int]
    #: Pairs within the radius (indices into ``paths``) that joined the group.
    links: list[tuple[int, int, int]] = field(default_factory=list)

    def distance(self, i: int, j: int) -> int:
        return hamming(self.hashes[i], self.hashes[j])

    def all_pairs(self) -> list[tuple[int, int, int]]:
        n = len(self.paths)
        return [(i, j, self.distance(i, j)) for i in range(n) for j in range(i + 1, n)]

    def max_distance(self) -> int:
        return max((d for _, _, d in self.all_pairs()), default=0)


def group_pairs(
    paths: Sequence[str], hashes: Sequence[int], pairs: Sequence[tuple[int, int, int]]
) -> list[Group]:
    """Connected components of the "within radius" graph, largest first, then by first path.

    ``pairs`` are ``(i, j, distance)`` over positions in ``paths``. Single linkage is what a
    person expects from "copies of copies": A~B and B~C put A, B and C together even when A and
    C are further apart than the radius; the printed distances show that.
    """
    parent = list(range(len(paths)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j, _ in pairs:
        ri, rj = root(i), root(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)

    members: dict[int, list[int]] = {}
    for i in range(len(paths)):
        members.setdefault(root(i), []).append(i)
    links_by_root: dict[int, list[tuple[int, int, int]]] = {}
    for i, j, d in pairs:
        links_by_root.setdefault(root(i), []).append((i, j, d))

    groups = []
    for group_root, positions in members.items():
        if len(positions) < 2:
            continue
        positions.sort(key=lambda p: paths[p])
        local = {p: k for k, p in enumerate(positions)}
        links = sorted(
            (min(local[i], local[j]), max(local[i], local[j]), d)
            for i, j, d in links_by_root.get(group_root, [])
        )
        groups.append(Group([paths[p] for p in positions], [hashes[p] for p in positions], links))
    groups.sort(key=lambda g: (-len(g.paths), g.paths[0]))
    return groups


def format_text(groups: Sequence[Group], radius: int, files_hashed: int) -> str:
    lines: list[str] = []
    for number, group in enumerate(groups, 1):
        lines.append(
            f"Group {number}: {len(group.paths)} files, distances "
            f"{min(d for _, _, d in group.all_pairs())}-{group.max_distance()}"
        )
        width = len(str(len(group.paths)))
        for k, (path, value) in enumerate(zip(group.paths, group.hashes), 1):
            lines.append(f"  {k:>{width}}  {format_hash(value)}  {path}")
        lines.extend(_distance_lines(group))
        lines.append("")
    in_groups = sum(len(g.paths) for g in groups)
    lines.append(
        f"{len(groups)} group{'s' if len(groups) != 1 else ''} of near-duplicates "
        f"({in_groups} of {files_hashed} files) at radius {radius}"
    )
    return "\n".join(lines)


def _distance_lines(group: Group) -> list[str]:
    n = len(group.paths)
    if n > MATRIX_MAX_MEMBERS:
        shown = ", ".join(f"{i + 1}-{j + 1}: {d}" for i, j, d in group.links)
        return [f"  linking pairs: {shown}"]
    cell = max(2, len(str(n)))
    header = "  distances " + " ".join(f"{k:>{cell}}" for k in range(1, n + 1))
    rows = [header]
    for i in range(n):
        cells = " ".join(
            f"{'-':>{cell}}" if i == j else f"{group.distance(i, j):>{cell}}" for j in range(n)
        )
        rows.append(f"  {i + 1:>9} {cells}")
    return rows


def to_json(groups: Sequence[Group]) -> list[dict[str, object]]:
    return [
        {
            "files": [
                {"path": path, "hash": format_hash(value)}
                for path, value in zip(group.paths, group.hashes)
            ],
            "pairs": [
                {"a": group.paths[i], "b": group.paths[j], "distance": d}
                for i, j, d in group.all_pairs()
            ],
            "max_distance": group.max_distance(),
        }
        for group in groups
    ]


def thumbnail_data_uri(path: str) -> tuple[str, str]:
    """A small JPEG of the image as a ``data:`` URI, and its pixel size as text."""
    from PIL import Image

    with Image.open(path) as image:
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
"""


def format_html(groups: Sequence[Group], radius: int, files_hashed: int) -> str:
    """A self-contained page: every thumbnail is inlined, nothing is fetched."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>imgscout near-duplicates</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>imgscout near-duplicates</h1>",
        f'<p id="summary" data-groups="{len(groups)}">{len(groups)} group'
        f"{'s' if len(groups) != 1 else ''} among {files_hashed} files at radius {radius}. "
        "Green distances are within the radius, red ones are not (the image joined the group "
        "through another member).</p>",
    ]
    for number, group in enumerate(groups, 1):
        parts.append(
            f'<section class="group" id="group-{number}" data-members="{len(group.paths)}">'
            f"<h2>Group {number}: {len(group.paths)} files, distances "
            f"{min(d for _, _, d in group.all_pairs())}&ndash;{group.max_distance()}</h2>"
            '<div class="members">'
        )
        for k, (path, value) in enumerate(zip(group.paths, group.hashes), 1):
            try:
                uri, size_text = thumbnail_data_uri(path)
                image_tag = f'<img class="thumb" alt="{html.escape(path)}" src="{uri}">'
            except Exception as error:  # the file changed since it was hashed
                size_text = f"unreadable now: {html.escape(str(error))}"
                image_tag = ""
            try:
                bytes_text = f", {os.path.getsize(path):,} bytes"
            except OSError:
                bytes_text = ""
            parts.append(
                f"<figure>{image_tag}<figcaption><b>{k}</b> {html.escape(path)}<br>"
                f"<code>{format_hash(value)}</code> {size_text}{bytes_text}</figcaption></figure>"
            )
        parts.append("</div>")
        parts.append(_distance_table(group, radius))
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _distance_table(group: Group, radius: int) -> str:
    n = len(group.paths)
    if n > MATRIX_MAX_MEMBERS:
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
