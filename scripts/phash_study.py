#!/usr/bin/env python3
"""Checks that imgscout.hashing.phash_image (numpy DCT, no scipy) equals imagehash.phash exactly.

phash_image computes the top-left 8x8 of the 32x32 thumbnail's DCT-II as a matrix product;
imagehash calls scipy.fftpack.dct (an FFT). The two differ by rounding, which decides a bit
only where a coefficient is within rounding of the median: phash_image answers uniform
thumbnails directly and hands any other near-tie to imagehash. This script measures, on
every image below, whether the two hashes are equal, how often the near-tie path ran, and
how far apart the two DCTs' coefficients are (relative to the thumbnail's pixel sum plus
one, the scale PHASH_TIE_MARGIN is given in):

* random images: noise of random size (1 to 400 px a side) in modes L, RGB, RGBA, P, I;16
  and 1, smooth random fields, mirrored (left-right symmetric) fields, checkerboards,
  images a few grey levels deep;
* uniform images at every grey level, and uniform ones with 1-level noise;
* tiny images (1x1 to 4x4);
* the JPEGs of examples/photos, decoded in full and as hash_file decodes them;
* optionally a folder (``--folder``, e.g. one made by bench/photo_folder.py), each file
  decoded in full and as hash_file decodes it.

Usage: python scripts/phash_study.py [--random N] [--folder DIR]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import scipy.fftpack
from PIL import Image, ImageOps

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "python"))

from imgscout import hashing  # noqa: E402

MODES = ("L", "RGB", "RGBA", "P", "I;16", "1")


def _random_image(rng: np.random.Generator, number: int) -> Image.Image:
    kind = number % 6
    w, h = (int(v) for v in rng.integers(1, 401, size=2))
    if kind == 0:  # noise in a random mode
        mode = MODES[int(rng.integers(len(MODES)))]
        rgb = Image.fromarray(rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8))
        if mode == "I;16":
            grey = rng.integers(0, 65536, size=(h, w), dtype=np.uint16)
            return Image.fromarray(grey)
        return rgb.convert(mode)
    if kind == 1:  # a smooth random field
        field = rng.integers(0, 256, size=(int(rng.integers(2, 8)),) * 2 + (3,), dtype=np.uint8)
        return Image.fromarray(field).resize((w, h), Image.Resampling.BICUBIC)
    if kind == 2:  # left-right symmetric: half the coefficients are 0 in exact arithmetic
        half = rng.integers(0, 256, size=(h, max(1, w // 2)), dtype=np.uint8)
        return Image.fromarray(np.concatenate([half, half[:, ::-1]], axis=1))
    if kind == 3:  # a checkerboard of random cell size
        cell = int(rng.integers(1, 40))
        y, x = np.indices((h, w))
        board = (((y // cell) + (x // cell)) % 2 * 255).astype(np.uint8)
        return Image.fromarray(board)
    if kind == 4:  # a few grey levels deep: many equal thumbnail pixels
        base = int(rng.integers(0, 250))
        depth = int(rng.integers(1, 4))
        return Image.fromarray((base + rng.integers(0, depth + 1, size=(h, w))).astype(np.uint8))
    # noise squeezed into a narrow band, then blurred to near-uniform by the thumbnail
    return Image.fromarray(rng.normal(128, 0.6, size=(h, w)).clip(0, 255).astype(np.uint8))


def random_images(count: int, seed: int = 0) -> Iterator[tuple[str, Image.Image]]:
    rng = np.random.default_rng(seed)
    for number in range(count):
        yield f"random-{number % 6}", _random_image(rng, number)


def uniform_images() -> Iterator[tuple[str, Image.Image]]:
    rng = np.random.default_rng(1)
    for level in range(256):
        yield "uniform", Image.new("L", (int(rng.integers(1, 300)),) * 2, level)
        colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
        yield "uniform", Image.new("RGB", (64, 48), colour)
        noisy = np.full((100, 120), level, dtype=np.int16) + rng.integers(-1, 2, size=(100, 120))
        yield "uniform+1", Image.fromarray(noisy.clip(0, 255).astype(np.uint8))


def tiny_images() -> Iterator[tuple[str, Image.Image]]:
    rng = np.random.default_rng(2)
    for w in range(1, 5):
        for h in range(1, 5):
            for _ in range(8):
                yield "tiny", Image.fromarray(rng.integers(0, 256, size=(h, w), dtype=np.uint8))


def file_images(paths: list[Path], label: str) -> Iterator[tuple[str, Image.Image]]:
    for path in paths:
        with Image.open(path) as image:
            image.load()
            yield f"{label}, full decode", ImageOps.exif_transpose(image)
        grey, _, _ = hashing.open_grey_for_hash(str(path))
        yield f"{label}, as hash_file decodes", grey


def _dct_gap(image: Image.Image) -> tuple[float, int]:
    """Largest difference of the two DCTs' 8x8 coefficients over (pixel sum + 1), and the
    bits by which the matrix product's hash, taken without the near-tie rule, differs."""
    small = image.convert("L").resize((32, 32), Image.Resampling.LANCZOS)
    pixels = np.asarray(small)
    theirs = scipy.fftpack.dct(scipy.fftpack.dct(pixels, axis=0), axis=1)[:8, :8]
    rows = hashing._dct_rows()
    ours = rows @ pixels.astype(np.float64) @ rows.T  # type: ignore[operator]
    flipped = int(((ours > np.median(ours)) != (theirs > np.median(theirs))).sum())
    return float(np.abs(theirs - ours).max() / (1.0 + pixels.astype(np.float64).sum())), flipped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--random", type=int, default=6000, help="random images (6000)")
    parser.add_argument("--folder", type=Path, help="also every image file in this folder")
    args = parser.parse_args(argv)

    fallbacks = Counter()
    exact_phash = hashing.imagehash_phash
    current = [""]

    def counting(image: object) -> int:
        fallbacks[current[0]] += 1
        return exact_phash(image)

    hashing.imagehash_phash = counting  # type: ignore[assignment]
    sources = [
        random_images(args.random),
        uniform_images(),
        tiny_images(),
        file_images(sorted((REPO_ROOT / "examples" / "photos").rglob("*.jpg")), "examples"),
    ]
    if args.folder is not None:
        files = sorted(p for p in args.folder.iterdir() if p.is_file())
        sources.append(file_images(files, "folder"))
    seen, differ, worst, plain = Counter(), Counter(), Counter(), Counter()
    gap = 0.0
    for source in sources:
        for label, image in source:
            current[0] = label
            seen[label] += 1
            ours = hashing.phash_image(image)
            theirs = exact_phash(image)
            if ours != theirs:
                differ[label] += 1
                worst[label] = max(worst[label], hashing.hamming(ours, theirs))
            image_gap, flipped = _dct_gap(image)
            gap = max(gap, image_gap)
            plain[label] += flipped > 0

    # Speed on a 12 MP photo as hash_file decodes it (500x375 grey) and on 1920x1080 grey.
    rng = np.random.default_rng(3)
    timing = {}
    for size in ((500, 375), (1920, 1080)):
        image = Image.fromarray(rng.integers(0, 256, size=size[::-1], dtype=np.uint8))
        for name, function in (("phash_image", hashing.phash_image), ("imagehash", exact_phash)):
            function(image)
            start = time.perf_counter()
            for _ in range(50):
                function(image)
            timing[(size, name)] = (time.perf_counter() - start) / 50 * 1000

    print(
        "| images | count | hashes differ | most bits | near-tie path (imagehash) |"
        " plain matrix product would differ |"
    )
    print("|---|--:|--:|--:|--:|--:|")
    for label in seen:
        print(
            f"| {label} | {seen[label]} | {differ[label]} | {worst[label]} | "
            f"{fallbacks[label]} | {plain[label]} |"
        )
    total = sum(seen.values())
    print(
        f"\nAll: {total} images, {sum(differ.values())} differ, "
        f"{sum(fallbacks.values())} through imagehash, {sum(plain.values())} where the plain "
        f"matrix product's bits would differ; largest DCT difference "
        f"{gap:.2e} of (pixel sum + 1), margin {hashing.PHASH_TIE_MARGIN:.0e}."
    )
    for size in ((500, 375), (1920, 1080)):
        print(
            f"{size[0]}x{size[1]} grey: phash_image {timing[(size, 'phash_image')]:.2f} ms, "
            f"imagehash.phash {timing[(size, 'imagehash')]:.2f} ms"
        )
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
