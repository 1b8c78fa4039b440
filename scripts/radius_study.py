#!/usr/bin/env python3
"""Measures how the search radius trades found copies against false pairs; writes docs/radius.md.

Images: every real photograph bundled with scikit-image (no download), plus, for the larger ones,
their four non-overlapping quadrants as further distinct pictures (more unrelated pairs, and
hard ones: same camera, light and texture). Each picture gets every edit of
make_examples.STUDY_EDITS, and the turned (rotated, mirrored) copies of TURN_EDITS and
SMALL_ROTATION. Every image is hashed with each of ALGORITHMS (64-bit phash, 256-bit phash,
PDQ), as it is and turned by each of the 8 orientations of the dihedral group (each the hash of
the turned image, as imgscout's --rotations hashes them; for PDQ also
``pdqhash.compute_dihedral``'s 8 hashes, to measure how far they are from those). Then, per
algorithm and radius:

* copy recall: of the (picture, edited copy) pairs, the fraction within the radius;
* turned recall: the same for the turned copies, plain (the copy's hash against the
  original's) and with dihedral matching (the smallest distance from any of the copy's 8
  turned hashes to the original's);
* group recall: the fraction of pictures whose variants all land in one connected group
  (what `imgscout dupes` shows);
* false pairs: pairs of variants of pictures cut from *different* photographs within the radius,
  as a count and as a rate among all such pairs, plain and with dihedral matching. Pairs across
  a photograph and its own quadrants are neither copies nor unrelated and are left out of both
  figures. The turned copies are queries only: the false pairs are counted among the original
  pictures and their STUDY_EDITS copies.

The default radius of each hash is the largest even radius below the first false pair with
dihedral matching (choose_default), so that it is safe with --rotations too.

Usage: python scripts/radius_study.py [--output docs/radius.md]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from make_examples import STUDY_EDITS, Edit, chain, jpeg, load_photo, scale

#: scikit-image's bundled real photographs (synthetic images, drawings and logos left out).
PHOTOS = [
    "astronaut",
    "brick",
    "camera",
    "cell",
    "chelsea",
    "clock",
    "coffee",
    "coins",
    "grass",
    "gravel",
    "hubble_deep_field",
    "immunohistochemistry",
    "microaneurysms",
    "moon",
    "page",
    "retina",
    "rocket",
    "text",
]
QUADRANT_MIN_SIDE = 400
#: Edits that change what is in the frame (crops) or paint over much of it: phash is a global
#: frequency signature, so these move it far; they are reported apart from the re-save kind.
FRAMING_EDITS = {
    "crop-2",
    "crop-5",
    "crop-corner-5",
    "crop-10",
    "watermark-large",
    "crop-5+bright+20+jpeg-q75",
}
#: The hashes measured and their widths in bits.
ALGORITHMS: dict[str, int] = {"phash": 64, "phash256": 256, "pdq": 256}
ALGORITHM_TITLES = {
    "phash": "`imagehash.phash(img)`, 64 bits",
    "phash256": "`imagehash.phash(img, hash_size=16)`, 256 bits",
    "pdq": '`pdqhash.compute(np.asarray(img.convert("RGB")))`, 256 bits',
}
#: Radii shown per width. The 64-bit table shows every radius up to 20; 256-bit tables every
#: 4th up to 96 plus PDQ's published threshold, the chosen default and the first radius with a
#: false pair. Defaults are chosen from every radius, shown or not.
SHOWN_RADII: dict[int, list[int]] = {64: list(range(0, 21)), 256: list(range(0, 97, 4))}
#: PDQ's published match threshold: ThreatExchange's PDQ_CONFIDENT_MATCH_THRESHOLD.
PDQ_PUBLISHED_RADIUS = 31
#: PDQ qualities below this are too unreliable to match on: Meta's PDQ documentation, and
#: ThreatExchange's PdqSignal.QUALITY_THRESHOLD (which refuses to hash such images).
PDQ_MIN_QUALITY = 50

#: The 8 orientations of the dihedral group, in the order pdqhash.compute_dihedral returns its
#: hashes (original, rotate 90, 180, 270, flip X, flip Y, flip +1, flip -1) and
#: imgscout.hashing.ORIENTATIONS lists them, as the PIL transposes that turn an image that way.
#: PIL's ROTATE_90 turns counter-clockwise.
ORIENTATIONS: list[Image.Transpose | None] = [
    None,
    Image.Transpose.ROTATE_90,
    Image.Transpose.ROTATE_180,
    Image.Transpose.ROTATE_270,
    Image.Transpose.FLIP_TOP_BOTTOM,
    Image.Transpose.FLIP_LEFT_RIGHT,
    Image.Transpose.TRANSPOSE,
    Image.Transpose.TRANSVERSE,
]
ORIENTATION_NAMES = ["original"] + [
    t.name.lower().replace("_", "-") for t in ORIENTATIONS if t is not None
]


def transposed(method: Image.Transpose) -> Edit:
    return lambda image: image.transpose(method)


def rotated_cropped(degrees: float) -> Edit:
    """Rotates by ``degrees`` (counter-clockwise) and keeps the largest centred rectangle of the
    original's shape that holds no corner filled in by the rotation: a straightened photo."""

    def edit(image: Image.Image) -> Image.Image:
        w, h = image.size
        theta = np.radians(abs(degrees))
        cos, sin = float(np.cos(theta)), float(np.sin(theta))
        keep = min(w / (w * cos + h * sin), h / (w * sin + h * cos))
        turned = image.rotate(degrees, resample=Image.Resampling.BICUBIC)
        cw, ch = int(w * keep), int(h * keep)
        left, top = (w - cw) // 2, (h - ch) // 2
        return turned.crop((left, top, left + cw, top + ch))

    return edit


#: Turned copies: the 7 non-trivial orientations of the dihedral group, which dihedral matching
#: undoes, and two of them re-saved as a re-post would be.
TURN_EDITS: dict[str, Edit] = {
    "rotate-90": transposed(Image.Transpose.ROTATE_90),
    "rotate-180": transposed(Image.Transpose.ROTATE_180),
    "rotate-270": transposed(Image.Transpose.ROTATE_270),
    "flip-horizontal": transposed(Image.Transpose.FLIP_LEFT_RIGHT),
    "flip-vertical": transposed(Image.Transpose.FLIP_TOP_BOTTOM),
    "transpose": transposed(Image.Transpose.TRANSPOSE),
    "transverse": transposed(Image.Transpose.TRANSVERSE),
    "flip-horizontal+jpeg-q50": chain(transposed(Image.Transpose.FLIP_LEFT_RIGHT), jpeg(50)),
    "rotate-90+scale-50": chain(transposed(Image.Transpose.ROTATE_90), scale(0.5)),
}
#: A small rotation, cropped: no orientation of the dihedral group undoes it.
SMALL_ROTATION: dict[str, Edit] = {"rotate-5": rotated_cropped(5)}


def _bytes_of_int(value: int, bits: int) -> np.ndarray:
    return np.frombuffer(value.to_bytes(bits // 8, "big"), dtype=np.uint8)


def hash_turns(
    image: Image.Image, algorithms: tuple[str, ...]
) -> tuple[dict[str, np.ndarray], int]:
    """Per algorithm, the hashes of ``image`` turned by each of ORIENTATIONS, as an
    ``(8, bits / 8)`` uint8 array (row 0: the image as it is); and the image's PDQ quality
    (0 without pdq). With pdq, also ``"pdq-dihedral"``: ``pdqhash.compute_dihedral``'s 8.

    phash converts to grey before anything else, so the grey image is turned and hashed: the
    same hashes as turning the image and calling phash on it. pdq hashes the turned RGB image
    with ``pdqhash.compute``, as imgscout does; compute_dihedral's first hash and quality are
    checked equal to compute's, image by image."""
    import imagehash

    hashes: dict[str, np.ndarray] = {}
    quality = 0
    grey = image.convert("L")
    turns = [grey if t is None else grey.transpose(t) for t in ORIENTATIONS]
    for algorithm, size in (("phash", 8), ("phash256", 16)):
        if algorithm in algorithms:
            hashes[algorithm] = np.stack(
                [
                    _bytes_of_int(int(str(imagehash.phash(t, hash_size=size)), 16), size * size)
                    for t in turns
                ]
            )
    if "pdq" in algorithms:
        import pdqhash

        def packed(vectors: list[np.ndarray]) -> np.ndarray:
            return np.stack([np.packbits(np.asarray(v, dtype=np.uint8)) for v in vectors])

        rgb = image.convert("RGB")
        pixels = np.asarray(rgb)
        vector, quality = pdqhash.compute(pixels)
        hashes["pdq"] = packed(
            [vector]
            + [
                pdqhash.compute(np.asarray(rgb.transpose(t)))[0]
                for t in ORIENTATIONS
                if t is not None
            ]
        )
        vectors, dihedral_quality = pdqhash.compute_dihedral(pixels)
        hashes["pdq-dihedral"] = packed(vectors)
        if not (
            np.array_equal(hashes["pdq"][0], hashes["pdq-dihedral"][0])
            and dihedral_quality == quality
        ):
            raise AssertionError("compute_dihedral's first hash is not compute's")
    return hashes, int(quality)


@dataclass(frozen=True)
class Variant:
    photo: str  # the photograph it was cut from
    picture: str  # the picture it is a copy of (photo or photo/quadrant)
    edit: str  # "original" or an edit name
    kind: str  # "original", "re-save", "framing", "turned" or "small-rotation"


def kind_of(edit: str) -> str:
    if edit == "original":
        return "original"
    if edit in TURN_EDITS:
        return "turned"
    if edit in SMALL_ROTATION:
        return "small-rotation"
    return "framing" if edit in FRAMING_EDITS else "re-save"


def pictures_of(photo: str) -> list[tuple[str, Image.Image]]:
    image = load_photo(photo)
    pictures: list[tuple[str, Image.Image]] = [(photo, image)]
    if min(image.size) >= QUADRANT_MIN_SIDE:
        w, h = image.width // 2, image.height // 2
        for name, box in {
            "top-left": (0, 0, w, h),
            "top-right": (w, 0, 2 * w, h),
            "bottom-left": (0, h, w, 2 * h),
            "bottom-right": (w, h, 2 * w, 2 * h),
        }.items():
            pictures.append((f"{photo}/{name}", image.crop(box)))
    return pictures


@dataclass
class Collection:
    variants: list[Variant]
    hashes: dict[str, np.ndarray]  # algorithm -> (variants, 8, bytes) uint8
    quality: np.ndarray  # PDQ quality per variant
    plain_pdq_checked: int  # images whose pdqhash.compute equals compute_dihedral's first
    pdq_dihedral: np.ndarray | None  # (variants, 8, 32): pdqhash.compute_dihedral's hashes


def collect(algorithms: tuple[str, ...] = tuple(ALGORITHMS)) -> Collection:
    edits: dict[str, Edit] = {**STUDY_EDITS, **TURN_EDITS, **SMALL_ROTATION}
    variants: list[Variant] = []
    per_image: list[dict[str, np.ndarray]] = []
    quality: list[int] = []
    for photo in PHOTOS:
        for picture, image in pictures_of(photo):
            items: list[tuple[str, Callable[[Image.Image], Image.Image] | None]] = [
                ("original", None),
                *edits.items(),
            ]
            for edit_name, edit in items:
                edited = image if edit is None else edit(image)
                hashes, q = hash_turns(edited, algorithms)
                variants.append(Variant(photo, picture, edit_name, kind_of(edit_name)))
                per_image.append(hashes)
                quality.append(q)
    return Collection(
        variants,
        {a: np.stack([h[a] for h in per_image]) for a in algorithms},
        np.array(quality),
        len(variants) if "pdq" in algorithms else 0,
        np.stack([h["pdq-dihedral"] for h in per_image]) if "pdq" in algorithms else None,
    )


def distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamming distances between every row of ``a`` and every row of ``b`` (uint8 bytes)."""
    out = np.empty((len(a), len(b)), dtype=np.int16)
    step = max(1, 2_000_000 // (len(b) * a.shape[1]))
    for start in range(0, len(a), step):
        xor = a[start : start + step, None, :] ^ b[None, :, :]
        out[start : start + step] = np.bitwise_count(xor).sum(axis=-1, dtype=np.int16)
    return out


def dihedral_distances(query: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The smallest distance from any of a query's 8 turned hashes to a target's hash."""
    best = distances(query[:, 0], target[:, 0])
    for t in range(1, len(ORIENTATIONS)):
        np.minimum(best, distances(query[:, t], target[:, 0]), out=best)
    return best


def group_bottleneck(members: list[int], d: np.ndarray) -> int:
    """The smallest radius at which ``members`` form one connected group: the longest edge of
    their minimum spanning tree (Prim)."""
    sub = d[np.ix_(members, members)].astype(np.int32)
    reach = sub[0].copy()
    inside = np.zeros(len(members), dtype=bool)
    inside[0] = True
    longest = 0
    for _ in range(len(members) - 1):
        candidates = np.where(inside, np.iinfo(np.int32).max, reach)
        k = int(candidates.argmin())
        longest = max(longest, int(candidates[k]))
        inside[k] = True
        np.minimum(reach, sub[k], out=reach)
    return longest


def summary(d: np.ndarray) -> dict[str, float]:
    return {
        "median": float(np.median(d)),
        "p90": float(np.percentile(d, 90)),
        "max": int(d.max()),
    }


def study_algorithm(collection: Collection, algorithm: str) -> dict[str, object]:
    bits = ALGORITHMS[algorithm]
    variants = collection.variants
    all_hashes = collection.hashes[algorithm]
    kind = np.array([v.kind for v in variants])
    pool = np.flatnonzero(np.isin(kind, ["original", "re-save", "framing"]))
    hashes = all_hashes[pool]
    pool_variants = [variants[k] for k in pool]
    plain = distances(hashes[:, 0], hashes[:, 0])
    query = dihedral_distances(hashes, hashes)
    dihedral = np.minimum(query, query.T)  # a self-join finds the pair from either side

    n = len(pool_variants)
    upper = np.triu(np.ones((n, n), dtype=bool), k=1)
    photo = np.array([v.photo for v in pool_variants])
    picture = np.array([v.picture for v in pool_variants])
    is_original = np.array([v.edit == "original" for v in pool_variants])
    is_framing = np.array([v.kind == "framing" for v in pool_variants])
    unrelated = upper & (photo[:, None] != photo[None, :])
    original_copy = (
        upper
        & (picture[:, None] == picture[None, :])
        & (is_original[:, None] | is_original[None, :])
    )
    framing_pair = is_framing[:, None] | is_framing[None, :]
    unrelated_d = plain[unrelated]
    unrelated_dihedral_d = dihedral[unrelated]
    copy_d = plain[original_copy]
    mild_d = plain[original_copy & ~framing_pair]
    framing_d = plain[original_copy & framing_pair]

    original_of = {v.picture: k for k, v in enumerate(variants) if v.edit == "original"}

    def turned_distances(edit_kind: str) -> tuple[np.ndarray, np.ndarray]:
        queries = [k for k, v in enumerate(variants) if v.kind == edit_kind]
        targets = [original_of[variants[k].picture] for k in queries]
        q, t = all_hashes[queries], all_hashes[targets]
        xor = q ^ t[:, :1, :]  # each query's 8 turned hashes against its original's hash
        per_turn = np.bitwise_count(xor).sum(axis=-1, dtype=np.int16)
        return per_turn[:, 0], per_turn.min(axis=1)

    turned_plain, turned_dihedral = turned_distances("turned")
    small_plain, small_dihedral = turned_distances("small-rotation")

    by_picture: dict[str, list[int]] = {}
    mild_by_picture: dict[str, list[int]] = {}
    for k, v in enumerate(pool_variants):
        by_picture.setdefault(v.picture, []).append(k)
        if v.kind != "framing":
            mild_by_picture.setdefault(v.picture, []).append(k)
    group_need = np.array([group_bottleneck(m, plain) for m in by_picture.values()])
    mild_group_need = np.array([group_bottleneck(m, plain) for m in mild_by_picture.values()])

    false_counts = np.cumsum(np.bincount(unrelated_d, minlength=bits + 1))
    dihedral_false_counts = np.cumsum(np.bincount(unrelated_dihedral_d, minlength=bits + 1))
    rows = []
    for radius in range(bits + 1):
        rows.append(
            {
                "radius": radius,
                "copy_recall": float((copy_d <= radius).mean()),
                "mild_recall": float((mild_d <= radius).mean()),
                "framing_recall": float((framing_d <= radius).mean()),
                "turned_recall": float((turned_plain <= radius).mean()),
                "turned_dihedral_recall": float((turned_dihedral <= radius).mean()),
                "small_rotation_recall": float((small_plain <= radius).mean()),
                "mild_group_recall": float((mild_group_need <= radius).mean()),
                "group_recall": float((group_need <= radius).mean()),
                "false_pairs": int(false_counts[radius]),
                "false_rate": float(false_counts[radius] / unrelated_d.size),
                "dihedral_false_pairs": int(dihedral_false_counts[radius]),
                "dihedral_false_rate": float(dihedral_false_counts[radius] / unrelated_d.size),
            }
        )

    per_edit = []
    pool_edit = np.array([v.edit for v in pool_variants])
    for edit_name in STUDY_EDITS:
        members = pool[pool_edit == edit_name]
        targets = [original_of[variants[k].picture] for k in members]
        xor = all_hashes[members] ^ all_hashes[targets][:, :1, :]
        per_turn = np.bitwise_count(xor).sum(axis=-1)
        per_edit.append({"edit": edit_name, "plain": summary(per_turn[:, 0]), "dihedral": None})
    for edits, (d_plain, d_dihedral) in (
        (TURN_EDITS, (turned_plain, turned_dihedral)),
        (SMALL_ROTATION, (small_plain, small_dihedral)),
    ):
        names = [v.edit for v in variants if v.edit in edits]
        for edit_name in edits:
            mask = np.array([name == edit_name for name in names])
            per_edit.append(
                {
                    "edit": edit_name,
                    "plain": summary(d_plain[mask]),
                    "dihedral": summary(d_dihedral[mask]),
                }
            )
    has_odd = bool((plain % 2).any() or (query % 2).any() or (turned_dihedral % 2).any())
    return {
        "algorithm": algorithm,
        "bits": bits,
        "pictures": len(by_picture),
        "variants": n,
        "copy_pairs": int(copy_d.size),
        "turned_pairs": int(turned_plain.size),
        "small_rotation_pairs": int(small_plain.size),
        "unrelated_pairs": int(unrelated_d.size),
        "min_unrelated": int(unrelated_d.min()),
        "min_unrelated_dihedral": int(unrelated_dihedral_d.min()),
        "has_odd": has_odd,
        "rows": rows,
        "per_edit": per_edit,
        "unrelated_d": unrelated_d,
        "unrelated_mask": unrelated,
        "pool": pool,
    }


def dihedral_gap(collection: Collection) -> dict[str, object]:
    """How far ``pdqhash.compute_dihedral``'s hashes are from PDQ of the turned images: per
    orientation over every study image, and what dihedral matching of the turned copies would
    find with them (the smallest distance from any of the copy's 8 compute_dihedral hashes to
    its original's hash)."""
    assert collection.pdq_dihedral is not None
    ours, theirs = collection.hashes["pdq"], collection.pdq_dihedral
    gap = np.bitwise_count(ours ^ theirs).sum(axis=-1, dtype=np.int16)  # (variants, 8)
    variants = collection.variants
    original_of = {v.picture: k for k, v in enumerate(variants) if v.edit == "original"}
    queries = [k for k, v in enumerate(variants) if v.kind == "turned"]
    targets = [original_of[variants[k].picture] for k in queries]
    xor = theirs[queries] ^ ours[targets][:, :1, :]
    matched = np.bitwise_count(xor).sum(axis=-1, dtype=np.int16).min(axis=1)
    edits = np.array([variants[k].edit for k in queries])
    return {
        "images": len(variants),
        "per_orientation": [
            {
                "orientation": ORIENTATION_NAMES[k],
                "equal": float((gap[:, k] == 0).mean()),
                **summary(gap[:, k]),
            }
            for k in range(1, len(ORIENTATIONS))
        ],
        "turned": summary(gap[:, 1:]),
        "first_equal": bool((gap[:, 0] == 0).all()),
        "matched": matched,
        "matched_by_edit": {e: summary(matched[edits == e]) for e in TURN_EDITS},
    }


def study(algorithm: str = "phash") -> dict[str, object]:
    """One algorithm's measurements (its "rows": one per radius 0..bits)."""
    return study_algorithm(collect((algorithm,)), algorithm)


def choose_default(
    rows: list[dict[str, float]], even: bool = True, key: str = "false_pairs"
) -> int:
    """The largest radius below the first radius that lets any false pair in; with ``even``,
    the largest even one.

    Even, because phash sets each bit by comparing a coefficient with the median of all 64, so
    every hash has (nearly always exactly) 32 one-bits and two hashes differ in an even number
    of bits: an odd radius finds what the even one below it finds.
    """
    first_false = next((int(r["radius"]) for r in rows if r[key] > 0), None)
    last_clean = int(rows[-1]["radius"]) if first_false is None else first_false - 1
    return max(0, last_clean - last_clean % 2) if even else max(0, last_clean)


def pct(x: float) -> str:
    return f"{x:.1%}"


def render_table(result: dict[str, object], default: int) -> list[str]:
    rows = result["rows"]
    assert isinstance(rows, list)
    bits = int(result["bits"])  # type: ignore[call-overload]
    # The first radius with a false pair (with dihedral matching) is shown too: the row the
    # default is chosen below.
    first_false = next((r["radius"] for r in rows if r["dihedral_false_pairs"] > 0), default)
    shown = set(SHOWN_RADII[bits]) | {default, first_false}
    if bits == 256:
        shown.add(PDQ_PUBLISHED_RADIUS)
    lines = [
        "| radius | copy recall | re-saves | framing edits | turned, plain | turned, dihedral"
        " | rotate-5 | group recall, re-saves | group recall, all | false pairs, dihedral"
        " | false-pair rate, dihedral | false pairs | false-pair rate |",
        "|-------:|------------:|---------:|--------------:|--------------:|-----------------:"
        "|---------:|-----------------------:|------------------:|----------------------:"
        "|--------------------------:|------------:|----------------:|",
    ]
    for row in rows:
        if row["radius"] not in shown:
            continue
        marker = " **(default)**" if row["radius"] == default else ""
        lines.append(
            f"| {row['radius']}{marker} | {pct(row['copy_recall'])} | {pct(row['mild_recall'])} |"
            f" {pct(row['framing_recall'])} | {pct(row['turned_recall'])} |"
            f" {pct(row['turned_dihedral_recall'])} | {pct(row['small_rotation_recall'])} |"
            f" {pct(row['mild_group_recall'])} | {pct(row['group_recall'])} |"
            f" {row['dihedral_false_pairs']} | {row['dihedral_false_rate']:.2e} |"
            f" {row['false_pairs']} | {row['false_rate']:.2e} |"
        )
    return lines


def render_per_edit(result: dict[str, object]) -> list[str]:
    per_edit = result["per_edit"]
    assert isinstance(per_edit, list)
    lines = [
        "| edit | median | 90th percentile | max | dihedral median | dihedral 90th"
        " | dihedral max |",
        "|------|-------:|----------------:|----:|----------------:|--------------:"
        "|-------------:|",
    ]
    for item in per_edit:
        p, d = item["plain"], item["dihedral"]
        tail = " - | - | - |" if d is None else f" {d['median']:g} | {d['p90']:g} | {d['max']} |"
        lines.append(f"| {item['edit']} | {p['median']:g} | {p['p90']:g} | {p['max']} |" + tail)
    return lines


def quality_lines(collection: Collection) -> list[str]:
    quality = collection.quality
    variants = collection.variants
    is_original = np.array([v.edit == "original" for v in variants])
    low = quality < PDQ_MIN_QUALITY
    q = np.percentile(quality, [0, 10, 25, 50])
    low_pictures = sorted({v.picture for v, bad in zip(variants, low, strict=True) if bad})
    low_originals = sorted(
        v.picture for v, bad in zip(variants, low & is_original, strict=True) if bad
    )
    by_edit: dict[str, int] = {}
    for v, bad in zip(variants, low, strict=True):
        if bad:
            by_edit[v.edit] = by_edit.get(v.edit, 0) + 1
    worst = sorted(by_edit.items(), key=lambda item: (-item[1], item[0]))[:5]
    return [
        f"PDQ quality (0-100) of all {len(quality)} study images, turned copies included:"
        f" minimum {q[0]:g}, 10th percentile {q[1]:g}, 25th percentile {q[2]:g}, median {q[3]:g};"
        f" {int((quality == 100).sum())} at 100. Below the recommended minimum of"
        f" {PDQ_MIN_QUALITY} (Meta's PDQ documentation; ThreatExchange's"
        f" `PdqSignal.QUALITY_THRESHOLD = {PDQ_MIN_QUALITY}` refuses to hash them):"
        f" {int(low.sum())} images ({low.mean():.1%}), {int((low & is_original).sum())} of them"
        f" originals ({', '.join(low_originals) or 'none'}), from {len(low_pictures)} pictures"
        f" ({', '.join(low_pictures) or 'none'}). Edits with most such images: "
        + (", ".join(f"{e} {c}" for e, c in worst) or "none")
        + ".",
    ]


def quality_filtered(result: dict[str, object], collection: Collection) -> tuple[int, int, int]:
    """Unrelated pairs with both images at or above PDQ_MIN_QUALITY: (pairs, within
    PDQ_PUBLISHED_RADIUS, closest distance)."""
    pool = result["pool"]
    mask = result["unrelated_mask"]
    assert isinstance(pool, np.ndarray) and isinstance(mask, np.ndarray)
    good = collection.quality[pool] >= PDQ_MIN_QUALITY
    hashes = collection.hashes["pdq"][pool][:, 0]
    d = distances(hashes, hashes)
    kept = mask & good[:, None] & good[None, :]
    within = d[kept]
    return int(within.size), int((within <= PDQ_PUBLISHED_RADIUS).sum()), int(within.min())


def gap_lines(gap: dict[str, object], result: dict[str, object], default: int) -> list[str]:
    """The pdq section's account of ``pdqhash.compute_dihedral``: why it is not used."""
    turned, matched = gap["turned"], gap["matched"]
    by_edit, per = gap["matched_by_edit"], gap["per_orientation"]
    assert isinstance(turned, dict) and isinstance(matched, np.ndarray)
    assert isinstance(by_edit, dict) and isinstance(per, list)
    found = float((matched <= default).mean())
    images = int(gap["images"])  # type: ignore[call-overload]
    lines = [
        "pdq's turned hashes are `pdqhash.compute` of the PIL-transposed image, as imgscout's"
        " `--rotations` computes them, not `pdqhash.compute_dihedral`'s: its first hash and"
        " quality are `pdqhash.compute`'s"
        + (f" (checked on all {images} images)" if gap["first_equal"] else " (NOT on every image)")
        + ", but its 7 turned hashes are derived from the DCT of the image as it is, and over"
        f" the {images} study images they are a median {turned['median']:g} bits"
        f" (90th percentile {turned['p90']:g}, max {turned['max']}) from PDQ of the image turned"
        " that way:",
        "",
        "| orientation | median | 90th percentile | max | equal |",
        "|-------------|-------:|----------------:|----:|------:|",
        *(
            f"| {o['orientation']} | {o['median']:g} | {o['p90']:g} | {o['max']} |"
            f" {pct(o['equal'])} |"
            for o in per
        ),
        "",
        "Matched with `compute_dihedral`'s hashes, a turned copy would still be a median"
        f" {summary(matched)['median']:g} bits (max {summary(matched)['max']}) from its original"
        f" after dihedral matching (rotate-180: median {by_edit['rotate-180']['median']:g}, max"
        f" {by_edit['rotate-180']['max']}), and {pct(found)} of turned copies would be found at"
        f" the default {default}, against {pct(row_at(result, default)['turned_dihedral_recall'])}"
        " with the hashes of the turned images.",
    ]
    return lines


def row_at(result: dict[str, object], radius: int) -> dict[str, float]:
    rows = result["rows"]
    assert isinstance(rows, list)
    return rows[radius]


def render(
    results: dict[str, dict[str, object]],
    defaults: dict[str, int],
    collection: Collection,
) -> str:
    first = results["phash"]
    lines = [
        "# Choosing the default radius",
        "",
        "Generated by `python scripts/radius_study.py` (do not edit by hand).",
        "",
        f"{len(PHOTOS)} real photographs bundled with scikit-image, and the four quadrants of"
        f" each one at least {QUADRANT_MIN_SIDE} px on its short side: {first['pictures']}"
        f" distinct pictures. Each picture and {len(STUDY_EDITS)} edited copies of it"
        f" ({', '.join(STUDY_EDITS)}): {first['variants']} images. Each picture also gets"
        f" {len(TURN_EDITS)} turned copies ({', '.join(TURN_EDITS)}; rotations counter-clockwise,"
        " flip-horizontal mirrors left and right) and one small rotation"
        f" ({', '.join(SMALL_ROTATION)}: turned 5 degrees and cropped to the largest centred"
        " rectangle of its shape without filled-in corners). Every image is hashed with three"
        " algorithms:",
        "",
    ]
    lines += [f"* {a}: {ALGORITHM_TITLES[a]};" for a in ALGORITHMS]
    lines[-1] = lines[-1][:-1] + "."
    lines += [
        "",
        "Measured per algorithm and radius:",
        "",
        f"* copy recall: share of the {first['copy_pairs']} (picture, edited copy) pairs"
        " within the radius, over all edits, then split into re-saves (JPEG, scaling,"
        " brightness, contrast, blur, gray, small watermark) and framing edits"
        f" ({', '.join(sorted(FRAMING_EDITS))});",
        f"* turned: share of the {first['turned_pairs']} (picture, turned copy) pairs within the"
        " radius, plain (the copy's hash against the original's) and with dihedral matching (the"
        " smallest distance from the hashes of the copy turned by each of the 8 orientations of"
        " the dihedral group to the original's hash; each of the 8 the hash of the"
        " PIL-transposed image, as `--rotations` hashes them, pdq's included);"
        f" rotate-5: the same for the {first['small_rotation_pairs']} small rotations (plain);",
        "* group recall: share of pictures whose original and all copies form one connected"
        " group at that radius (what `imgscout dupes` reports as one group), for the re-saves"
        " only and for all edits (turned copies not included);",
        f"* false pairs: of the {first['unrelated_pairs']:,} pairs of images cut from"
        " different photographs (originals and their edited copies; turned copies are only"
        " queries), how many fall within the radius (count and rate), plain and with dihedral"
        " matching (a pair counts if either image's 8 turned hashes come within the radius of the"
        " other's hash, as a self-join with dihedral matching finds it: up to 16 chances per pair"
        " instead of 1).",
        "",
        "Each hash's default is chosen by one rule (`choose_default`): the largest radius below"
        " the first one that lets a false pair between different photographs in, counting the"
        " false pairs with dihedral matching so that the default is safe with `--rotations` too,"
        " taken even when the algorithm's distances are all even. The 256-bit tables show every"
        f" 4th radius, PDQ's published threshold ({PDQ_PUBLISHED_RADIUS}), the chosen default"
        " and the first radius with a false pair.",
        "",
    ]
    for algorithm, result in results.items():
        default = defaults[algorithm]
        lines += [f"## {algorithm} ({result['bits']} bits)", ""]
        lines += render_table(result, default)
        lines += [
            "",
            f"Closest pair of unrelated images: distance {result['min_unrelated']} plain,"
            f" {result['min_unrelated_dihedral']} with dihedral matching."
            + (
                " Every distance in this study is even."
                if not result["has_odd"]
                else " Odd distances occur: the rule takes odd radii too."
            ),
        ]
        if algorithm == "pdq":
            pairs, within, closest = quality_filtered(result, collection)
            lines += ["", *gap_lines(dihedral_gap(collection), result, default), ""]
            lines += quality_lines(collection)
            lines += [
                "",
                f"With the images below quality {PDQ_MIN_QUALITY} left out, {pairs:,} unrelated"
                f" pairs remain: {within} within {PDQ_PUBLISHED_RADIUS}, the closest at"
                f" distance {closest}.",
            ]
        lines += ["", f"### {algorithm}: distance from the original, per edit", ""]
        lines += render_per_edit(result)
        lines.append("")

    lines += [
        "## Comparison at each default",
        "",
        "| algorithm | radius | re-saves | framing edits | turned, plain | turned, dihedral"
        " | rotate-5 | group recall, re-saves | false pairs | false pairs, dihedral"
        " | closest unrelated pair |",
        "|-----------|-------:|---------:|--------------:|--------------:|-----------------:"
        "|---------:|-----------------------:|------------:|----------------------:"
        "|-----------------------:|",
    ]
    entries = [(a, defaults[a], "") for a in ALGORITHMS]
    entries.append(("pdq", PDQ_PUBLISHED_RADIUS, " (published)"))
    for algorithm, radius, note in entries:
        result = results[algorithm]
        row = row_at(result, radius)
        lines.append(
            f"| {algorithm} | {radius}{note} | {pct(row['mild_recall'])} |"
            f" {pct(row['framing_recall'])} | {pct(row['turned_recall'])} |"
            f" {pct(row['turned_dihedral_recall'])} | {pct(row['small_rotation_recall'])} |"
            f" {pct(row['mild_group_recall'])} | {row['false_pairs']} |"
            f" {row['dihedral_false_pairs']} | {result['min_unrelated']} |"
        )
    lines += [
        "",
        "Recall at a false-pair budget: per algorithm, the largest radius with at most that many"
        f" plain false pairs among the {first['unrelated_pairs']:,} unrelated pairs.",
        "",
        "| false pairs at most | algorithm | radius | false pairs | re-saves | framing edits"
        " | group recall, re-saves | group recall, all |",
        "|--------------------:|-----------|-------:|------------:|---------:|--------------:"
        "|-----------------------:|------------------:|",
    ]
    for budget in BUDGETS:
        for algorithm in ALGORITHMS:
            row = budget_row(results[algorithm], budget)
            lines.append(
                f"| {budget} | {algorithm} | {row['radius']} | {row['false_pairs']} |"
                f" {pct(row['mild_recall'])} | {pct(row['framing_recall'])} |"
                f" {pct(row['mild_group_recall'])} | {pct(row['group_recall'])} |"
            )
    lines += ["", *choice_lines(results, defaults), ""]
    return "\n".join(lines)


#: False-pair budgets of the comparison table: the largest radius with at most that many.
BUDGETS = [0, 10, 100, 1000]


def budget_row(result: dict[str, object], budget: int) -> dict[str, float]:
    """The row of the largest radius with at most ``budget`` plain false pairs (even, when the
    algorithm's distances are all even: the odd one finds the same)."""
    rows = result["rows"]
    assert isinstance(rows, list)
    radius = int([r for r in rows if r["false_pairs"] <= budget][-1]["radius"])
    return rows[radius if result["has_odd"] else radius - radius % 2]


def first_radius(result: dict[str, object], key: str) -> int | None:
    """The smallest radius at which ``key`` reaches 100%, if any."""
    rows = result["rows"]
    assert isinstance(rows, list)
    return next((int(r["radius"]) for r in rows if r[key] >= 1.0), None)


def edit_median(result: dict[str, object], edit: str, dihedral: bool = False) -> float:
    per_edit = result["per_edit"]
    assert isinstance(per_edit, list)
    item = next(i for i in per_edit if i["edit"] == edit)
    return float(item["dihedral" if dihedral else "plain"]["median"])


def rule_defaults(
    results: dict[str, dict[str, object]], key: str = "dihedral_false_pairs"
) -> dict[str, int]:
    """Per algorithm, the rule applied to the false pairs ``key`` counts: with dihedral
    matching (the defaults) or plain."""
    return {
        a: choose_default(
            r["rows"],  # type: ignore[arg-type]
            even=not r["has_odd"],
            key=key,
        )
        for a, r in results.items()
    }


def random_within(bits: int, radius: int) -> float:
    """The chance that two independent uniform random ``bits``-bit codes are at most ``radius``
    apart: the binomial tail P(X <= radius), X ~ Binomial(bits, 1/2), exactly."""
    return sum(math.comb(bits, k) for k in range(radius + 1)) / 2**bits


def choice_lines(results: dict[str, dict[str, object]], defaults: dict[str, int]) -> list[str]:
    phash, wide, pdq = results["phash"], results["phash256"], results["pdq"]
    d64, d256, dpdq = defaults["phash"], defaults["phash256"], defaults["pdq"]
    r64, r256, rpdq = row_at(phash, d64), row_at(wide, d256), row_at(pdq, dpdq)
    r31 = row_at(pdq, PDQ_PUBLISHED_RADIUS)
    plain = rule_defaults(results, key="false_pairs")
    counts = {
        "re-saves": "mild_recall",
        "framing edits": "framing_recall",
        "whole re-save groups": "mild_group_recall",
        "turned copies with dihedral matching": "turned_dihedral_recall",
    }
    behind_31 = [name for name, key in counts.items() if r31[key] < r64[key]]
    pure_turns = [e for e in TURN_EDITS if "+" not in e]

    def exact_turns(result: dict[str, object]) -> bool:
        per_edit = result["per_edit"]
        assert isinstance(per_edit, list)
        return all(i["dihedral"]["max"] == 0 for i in per_edit if i["edit"] in pure_turns)

    if r31["false_pairs"] == 0 and r31["dihedral_false_pairs"] == 0:
        verdict_31 = (
            f"PDQ's published {PDQ_PUBLISHED_RADIUS} checked on the same data: no false pair at"
            " it, plain or with dihedral matching, the closest unrelated pair"
            f" {pdq['min_unrelated'] - PDQ_PUBLISHED_RADIUS} bits further out"
            f" ({pdq['min_unrelated_dihedral'] - PDQ_PUBLISHED_RADIUS} with dihedral matching);"
            f" but at {PDQ_PUBLISHED_RADIUS} pdq finds {pct(r31['mild_recall'])} of re-saves"
            f" ({pct(rpdq['mild_recall'])} at {dpdq}), {pct(r31['framing_recall'])} of framing"
            f" edits ({pct(rpdq['framing_recall'])}), keeps {pct(r31['mild_group_recall'])} of"
            f" re-save groups whole ({pct(rpdq['mild_group_recall'])}) and finds"
            f" {pct(r31['turned_dihedral_recall'])} of turned copies with dihedral matching"
            f" ({pct(rpdq['turned_dihedral_recall'])})"
            + (
                f"; against phash at {d64} it finds less on "
                + (", ".join(behind_31[:-1]) + " and " + behind_31[-1])
                if len(behind_31) > 1
                else f"; against phash at {d64} it finds less on {behind_31[0]}"
                if behind_31
                else ""
            )
            + "."
        )
    else:
        verdict_31 = (
            f"PDQ's published {PDQ_PUBLISHED_RADIUS} checked on the same data:"
            f" {r31['false_pairs']} false pairs at it ({r31['false_rate']:.2e} of unrelated"
            f" pairs; {r31['dihedral_false_pairs']} with dihedral matching), the first at"
            f" distance {pdq['min_unrelated']}."
        )
    verdict_31 += (
        " Users matching against ThreatExchange-style lists of PDQ hashes, who want PDQ's"
        f" published threshold, should pass `--radius {PDQ_PUBLISHED_RADIUS}`."
    )
    saturation = "; ".join(
        f"{name}: every re-save from radius {first_radius(r, 'mild_recall')}, every re-save group"
        f" whole from {first_radius(r, 'mild_group_recall')}"
        for name, r in (("phash", phash), ("phash256", wide), ("pdq", pdq))
    )
    odd = (
        " (no odd distance occurs in this study)"
        if not phash["has_odd"]
        else " (a few odd distances occur in this study)"
    )
    p64, p256 = random_within(64, d64), random_within(256, d256)
    scaling = (
        "Why the radius scales with the width: two unrelated codes of uniform random bits fall"
        f" within r bits with the binomial tail P(X <= r), X ~ Binomial(bits, 1/2), which is"
        f" {p64:.2e} at {d64} of 64 bits and {p256:.2e} at {d256} of 256"
        + (f" ({random_within(256, dpdq):.2e} at pdq's {dpdq})" if dpdq != d256 else "")
        + f" (PDQ's {PDQ_PUBLISHED_RADIUS}: {random_within(256, PDQ_PUBLISHED_RADIUS):.1e}):"
        " about the same strictness, though real hashes are not uniform, which is why the"
        " radii are measured."
    )
    plain_note = (
        "Counting plain false pairs only, the rule would give the same radii."
        if plain == defaults
        else "Counting plain false pairs only, the rule would give "
        + ", ".join(f"{plain[a]} for {a}" for a in ALGORITHMS)
        + ": a self-join with dihedral matching gives each pair of images up to 16 chances"
        " instead of 1, so its first false pair can come sooner."
    )

    def at(name: str, row: dict[str, float]) -> str:
        return (
            f"{name} at {row['radius']} finds {pct(row['mild_recall'])} of re-saves,"
            f" {pct(row['framing_recall'])} of framing edits and keeps"
            f" {pct(row['mild_group_recall'])} of re-save groups whole"
        )

    wider_better = (
        r256["false_pairs"] == 0
        and r256["mild_recall"] >= r64["mild_recall"]
        and r256["mild_group_recall"] >= r64["mild_group_recall"]
        and r256["framing_recall"] >= r64["framing_recall"]
    )
    pdq_behind = [
        f"{name} {pct(rpdq[key])} against {pct(r256[key])}"
        for name, key in (
            ("framing edits", "framing_recall"),
            ("turned copies with dihedral matching", "turned_dihedral_recall"),
            ("rotate-5", "small_rotation_recall"),
        )
        if rpdq[key] < r256[key]
    ]
    verdict_wide = (
        (
            "On this data a wider hash finds more at no cost in false pairs: "
            if wider_better
            else "On this data a wider hash does not find more at the same false pairs: "
        )
        + "; ".join(at(name, row) for name, row in (("phash", r64), ("phash256", r256)))
        + ", with 0 false pairs each."
        + (
            " The gain is in where the first false pair falls, not in what a hash finds short"
            " of it:"
            if budget_row(phash, BUDGETS[1])["framing_recall"]
            >= budget_row(wide, BUDGETS[1])["framing_recall"] - 0.02
            else " The lead holds with a few false pairs allowed:"
        )
        + " allowing a few plain false pairs, at most"
        f" {BUDGETS[1]} ({BUDGETS[1] / int(phash['unrelated_pairs']):.1e} of unrelated pairs), "
        + "; ".join(
            f"{name} at {row['radius']} finds {pct(row['mild_recall'])} of re-saves and"
            f" {pct(row['framing_recall'])} of framing edits and keeps"
            f" {pct(row['group_recall'])} of all groups whole"
            for name, row in (
                ("phash", budget_row(phash, BUDGETS[1])),
                ("phash256", budget_row(wide, BUDGETS[1])),
                ("pdq", budget_row(pdq, BUDGETS[1])),
            )
        )
        + " (table above)."
        + (
            " pdq is behind phash256 at each one's default (" + ", ".join(pdq_behind) + "), and"
            f" further from its originals after a rescale (median scale-50 distance"
            f" {edit_median(pdq, 'scale-50'):g} bits against {edit_median(wide, 'scale-50'):g})"
            f" or a blur (blur-2: {edit_median(pdq, 'blur-2'):g} against"
            f" {edit_median(wide, 'blur-2'):g})."
            if pdq_behind
            else ""
        )
        + " What this study does not measure is the price: a 256-bit hash takes 4 times the"
        f" memory, and a search at a radius of {d256} bits out of 256 is a wider search than"
        f" {d64} out of 64."
    )
    exact = [name for name, r in results.items() if exact_turns(r)]
    turned_line = (
        "Turned copies are out of reach of every hash without dihedral matching (plain recall"
        f" at the defaults {pct(r64['turned_recall'])}, {pct(r256['turned_recall'])} and"
        f" {pct(rpdq['turned_recall'])}). With it, "
        + (
            "every hash finds"
            if len(exact) == len(results)
            else (", ".join(exact) or "no hash") + " find"
        )
        + f" each of the {len(pure_turns)} exact turns ({', '.join(pure_turns)}) at distance 0,"
        " as the turned hashes of a turned copy include the hash of the original's own pixels;"
        " counting the re-saved turns too, turned copies are found"
        f" {pct(r64['turned_dihedral_recall'])}, {pct(r256['turned_dihedral_recall'])} and"
        f" {pct(rpdq['turned_dihedral_recall'])} of the time at the defaults. A 5-degree"
        f" rotation is found {pct(r64['small_rotation_recall'])},"
        f" {pct(r256['small_rotation_recall'])} and {pct(rpdq['small_rotation_recall'])} of the"
        " time."
    )
    return [
        "## Choice",
        "",
        f"Default radius for phash (64 bits): **{d64}**, for both `imgscout dupes` and"
        " `imgscout query`. The rule (in `choose_default`): the largest even radius below the"
        " first one that lets a false pair between different photographs in, counting false"
        " pairs with dihedral matching, so that the default is safe with `--rotations` too."
        " Even, because phash sets each bit against the median of the 64 coefficients, so"
        " hashes carry 32 one-bits and distances are even: an odd radius finds exactly what the"
        f" even one below it finds{odd}.",
        "",
        f"The same rule gives **{d256}** for phash256 and **{dpdq}** for pdq ("
        + (
            f"{d256 / 256:.0%} of their 256 bits"
            if d256 == dpdq
            else f"{d256 / 256:.0%} and {dpdq / 256:.0%} of their 256 bits"
        )
        + f", against {d64 / 64:.0%} for phash); both set"
        " their bits against the median of 256 coefficients"
        + (
            ", and their distances are even too."
            if not (wide["has_odd"] or pdq["has_odd"])
            else ", though odd distances occur."
        )
        + f" {plain_note} {scaling}",
        "",
        verdict_31,
        "",
        f"Where recall stops growing on the re-saves: {saturation}. Beyond that, a larger"
        " radius buys framing edits (crops, large watermarks) only.",
        "",
        "What it means: every re-saved copy (recompressed, rescaled, brightened, blurred,"
        " grayed, lightly watermarked) of almost every picture is found, and no pair of these"
        " unrelated pictures is. Zero false pairs in this many unrelated pairs bounds the"
        " false-pair rate at about 3 / (number of pairs) with 95% confidence (rule of three); a"
        " collection of n images has n(n-1)/2 pairs, so on large collections expect a few"
        " strangers in the groups, which the printed distances and the HTML report make easy to"
        " spot. Crops move phash far (it is a global frequency signature): to catch them, pass a"
        " larger `--radius` (the table gives the price in false pairs) and check the report.",
        "",
        verdict_wide,
        "",
        turned_line,
        "",
        "`tests/test_cli_radius.py` checks that each table's marked default is the tool's"
        " (`DEFAULT_RADII`) with no false pair at it, plain or with dihedral matching, and"
        " recomputes the sample folder's groups with the phash default: every copy group is"
        " found whole and no unrelated photograph joins one.",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--output", type=Path, default=Path(__file__).resolve().parents[1] / "docs/radius.md"
    )
    args = parser.parse_args()
    start = time.perf_counter()
    collection = collect()
    print(f"hashed {len(collection.variants)} images in {time.perf_counter() - start:.0f} s")
    results = {a: study_algorithm(collection, a) for a in ALGORITHMS}
    defaults = rule_defaults(results)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    text = render(results, defaults, collection)
    # scripts/draft_study.py writes its own section after this study's: keep it.
    marker = "<!-- begin: shrunk JPEG decode"
    if args.output.exists() and marker in args.output.read_text():
        text = text.rstrip("\n") + "\n\n" + marker + args.output.read_text().split(marker, 1)[1]
    args.output.write_text(text)
    print(
        "default radius "
        + ", ".join(f"{a} {d}" for a, d in defaults.items())
        + f"; written to {args.output} in {time.perf_counter() - start:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
