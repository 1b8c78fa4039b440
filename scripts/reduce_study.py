#!/usr/bin/env python3
"""Measures what shrinking full-decoded images by Image.reduce before phash costs in bits.

PNG, WebP and the other formats libjpeg does not decode are decoded in full; phash then
resizes the whole image to 32x32 with a Lanczos filter whose support grows with the shrink
(a 1920x1080 image: 8 ms of a 40-70 ms hash). ``Image.reduce(k)`` first (each pixel the mean
of a k x k box, k the largest whole factor keeping a given smallest side) leaves the resize
a small image, as the shrunk JPEG decode does for JPEGs. The images:

* the PNG and WebP files of a folder made by bench/photo_folder.py (1920x1080 originals and
  the PNG and WebP copies of 12 MP photos), or of an existing folder (``--folder``);
* the 14 scikit-image photographs the bench cuts its pictures from, scaled to 1600, 2400 and
  4000 px wide, saved as PNG and as WebP q80: the sizes where other factors apply.

For each smallest side it reports how many bits each file's hash moves against
``imagehash.phash`` of the full image, the hashing speed of those files in one process, and
on the generated folder the copy pairs and false pairs at the default radius (JPEGs hashed
as imgscout hashes them, PNG and WebP with each setting). Writes its section of
docs/radius.md (between the markers).

Usage: python scripts/reduce_study.py [--files N] [--folder DIR] [--output docs/radius.md]
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "scripts"))

from bench.photo_folder import PHOTOS, make_folder  # noqa: E402
from PIL import Image  # noqa: E402

from imgscout import hashing  # noqa: E402
from imgscout.dedup import DEFAULT_RADIUS  # noqa: E402

BEGIN = "<!-- begin: reduced full decode (scripts/reduce_study.py) -->"
END = "<!-- end: reduced full decode -->"
SIDES = (128, 256, 384, 512)

FULL_DECODED = (".png", ".webp")
#: The most bits the shrunk JPEG decode moved a hash (scripts/draft_study.py).
JPEG_DRAFT_MAX_BITS = 2


def _reduced(grey: Image.Image, side: int) -> Image.Image:
    """``grey`` shrunk by the largest whole factor that keeps ``side`` pixels on its short
    side (``Image.reduce``: each pixel the mean of a factor x factor box)."""
    factor = min(grey.size) // side
    return grey.reduce(factor) if factor > 1 else grey


def _hashes(paths: list[str], side: int | None) -> tuple[dict[str, int], float]:
    """Each file's hash as hash_file makes it, but reduced first to keep ``side`` pixels
    per side (None: not reduced), and the CPU seconds taken."""
    out = {}
    start = time.process_time()
    for path in paths:
        grey, _, _ = hashing.open_grey_for_hash(path)
        with grey:
            out[path] = hashing.phash_image(grey if side is None else _reduced(grey, side))
    return out, time.process_time() - start


def _mid_size(folder: Path) -> list[str]:
    from make_examples import load_photo

    written = []
    for name in PHOTOS:
        photo = load_photo(name).convert("RGB")
        for width in (1600, 2400, 4000):
            size = (width, round(photo.height * width / photo.width))
            scaled = photo.resize(size, Image.Resampling.BICUBIC)
            png, webp = folder / f"{name}-{width}.png", folder / f"{name}-{width}.webp"
            scaled.save(png, compress_level=1)
            scaled.save(webp, quality=80)
            written += [str(png), str(webp)]
    return written


def _families(folder: Path) -> list[list[str]]:
    """Families of a bench folder by name: IMG_00012.jpg and its IMG_00012-<edit>.* copies."""
    by_stem: dict[str, list[str]] = {}
    for path in sorted(folder.iterdir()):
        by_stem.setdefault(path.name.split("-", 1)[0].split(".", 1)[0], []).append(str(path))
    return list(by_stem.values())


def _size(path: str) -> str:
    with Image.open(path) as image:
        return f"{image.width}x{image.height}"


def study(files: int, folder: Path | None) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        if folder is None:
            folder = Path(tmp) / "photos"
            families = make_folder(folder, files)
        else:
            families = _families(folder)
        generated = [p for family in families for p in family]
        full_decoded = [p for p in generated if p.endswith(FULL_DECODED)]
        jpegs = [p for p in generated if not p.endswith(FULL_DECODED)]
        mid = _mid_size(Path(tmp))
        every = full_decoded + mid
        exact, exact_seconds = _hashes(every, None)
        jpeg_hashes, _ = _hashes(jpegs, None)  # shrunk JPEG decode, as imgscout hashes them
        rows = []
        for side in SIDES:
            reduced, seconds = _hashes(every, side)
            moved = {p: hashing.hamming(exact[p], reduced[p]) for p in every}
            rows.append(
                {
                    "side": side,
                    "moved": {
                        "folder": Counter(moved[p] for p in full_decoded),
                        "mid": Counter(moved[p] for p in mid),
                    },
                    "files_per_s": len(every) / seconds,
                    "hashes": reduced,
                }
            )
        truth = {frozenset(p) for family in families for p in itertools.combinations(family, 2)}
        touched = {pair for pair in truth if any(p.endswith(FULL_DECODED) for p in pair)}

        def found(hashes: dict[str, int]) -> tuple[int, int, int]:
            every_hash = {**jpeg_hashes, **{p: hashes[p] for p in full_decoded}}
            near = {
                frozenset((a, b))
                for a, b in itertools.combinations(generated, 2)
                if hashing.hamming(every_hash[a], every_hash[b]) <= DEFAULT_RADIUS
            }
            return len(near & truth), len(near & touched), len(near - truth)

        recall = {"full image": found(exact)}
        for row in rows:
            recall[f"reduced, {row['side']} px"] = found(row["hashes"])  # type: ignore[arg-type]
    sizes = Counter(_size(p) for p in full_decoded)
    return {
        "files": len(generated),
        "full_decoded": len(full_decoded),
        "sizes": sizes,
        "mid": len(mid),
        "exact_files_per_s": len(every) / exact_seconds,
        "rows": rows,
        "truth_pairs": len(truth),
        "touched_pairs": len(touched),
        "recall": recall,
    }


def _distribution(counter: Counter[int]) -> str:
    total = sum(counter.values())
    parts = [f"{bits}: {count}" for bits, count in sorted(counter.items())]
    return f"{', '.join(parts)} (of {total}; max {max(counter)})"


def render(result: dict[str, object]) -> str:
    rows = result["rows"]
    assert isinstance(rows, list)
    sizes = result["sizes"]
    assert isinstance(sizes, Counter)
    lines = [
        BEGIN,
        "## Reduced full decode (PNG, WebP and other formats)",
        "",
        "Generated by `python scripts/reduce_study.py` (this section only).",
        "",
        "Formats other than JPEG are decoded in full and hash exactly as `imagehash.phash`; "
        "phash's 32x32 Lanczos resize then costs more the larger the image (8 ms of a 40-70 "
        "ms hash at 1920x1080). Measured here: shrinking the grey image first by "
        "`Image.reduce(k)` (each pixel the mean of a k x k box; k the largest whole factor "
        "keeping a given smallest side), as the shrunk JPEG decode does for JPEGs. Images: "
        f"the {result['full_decoded']} PNG and WebP files of a generated folder of "
        f"{result['files']} files (bench/photo_folder.py; "
        + ", ".join(f"{n} at {s}" for s, n in sorted(sizes.items()))
        + f"), and {result['mid']} files of the 14 scikit-image photographs the bench cuts "
        "its pictures from, scaled to 1600, 2400 and 4000 px wide and saved as PNG and as "
        "WebP q80. Bits moved: Hamming distance between the hash of the reduced image and "
        "`imagehash.phash` of the full one, as `bits: files`.",
        "",
        f"Not reduced: {result['exact_files_per_s']:.1f} files/s over all of these (one "
        "process, CPU time; the decode itself, 30-60 ms a file, is the same in every row).",
        "",
        "| smallest side | files/s | bits moved, generated folder | 1600-4000 px |",
        "|---|--:|---|---|",
    ]
    for row in rows:
        moved = row["moved"]
        lines.append(
            f"| {row['side']} px | {row['files_per_s']:.1f} | {_distribution(moved['folder'])} | "
            f"{_distribution(moved['mid'])} |"
        )
    recall = result["recall"]
    assert isinstance(recall, dict)
    truth, touched = result["truth_pairs"], result["touched_pairs"]
    lines += [
        "",
        f"Pairs at the default radius ({DEFAULT_RADIUS}) in the generated folder: {truth} known "
        f"copy pairs, {touched} of them with a PNG or WebP file; JPEGs hashed as imgscout "
        "hashes them (shrunk decode).",
        "",
        "| PNG and WebP hashed from | copy pairs found | with a PNG or WebP | false pairs |",
        "|---|--:|--:|--:|",
    ]
    for name, (hits, hits_touched, false) in recall.items():
        lines.append(
            f"| {name} | {hits} of {truth} ({hits / truth:.1%}) | {hits_touched} of {touched} | "
            f"{false} |"
        )
    exact_hits = recall["full image"][0]
    accepted = [
        row["side"]
        for row in rows
        if max(row["moved"]["folder"] + row["moved"]["mid"]) <= JPEG_DRAFT_MAX_BITS
        and recall[f"reduced, {row['side']} px"][0] >= exact_hits
    ]
    lines += [
        "",
        "Rule: a setting would be taken if no hash moved more than the shrunk JPEG decode "
        f"moves one ({JPEG_DRAFT_MAX_BITS} bits, the section above) and it found every copy "
        "pair the full image finds. "
        + (
            f"Passed here: {', '.join(f'{side} px' for side in accepted)}."
            if accepted
            else "No setting passed."
        )
        + " The bits moved are spread over settings at random (a texture such as brick "
        "keeps coefficients close to the median, where any resampling flips a pair of "
        "bits), so one setting passing this sample says little, and the gain is small: "
        "the decode, not the resize, is most of a PNG's or WebP's time. imgscout keeps "
        "hashing these formats from the full image, exactly as `imagehash.phash`.",
        END,
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=400, help="files to generate (400)")
    parser.add_argument("--folder", type=Path, help="a folder made by bench/photo_folder.py")
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "docs" / "radius.md")
    args = parser.parse_args()
    section = render(study(args.files, args.folder))
    text = args.output.read_text() if args.output.exists() else ""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + section + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    args.output.write_text(text)
    print(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
