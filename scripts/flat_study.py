"""How flat (nearly uniform) images hash, and which standard deviation marks them.

Darkens each sample photograph into 0..1, 0..3 and 0..8 grey levels (saved as JPEG) and makes
uniform images with and without 1-level noise; prints the pairs within radius 8 that join
different pictures, and for each threshold of grey-level standard deviation how many of those
pairs remain and how many darkened photos still match their original. Run from the checkout:
``python scripts/flat_study.py``.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageStat

from imgscout.hashing import hamming, phash_image

SAMPLE = Path(__file__).resolve().parents[1] / "examples" / "photos"
RADIUS = 8


def _jpeg(image: Image.Image) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=75)
    buffer.seek(0)
    return Image.open(buffer)


def _stddev(image: Image.Image) -> float:
    return float(ImageStat.Stat(image.convert("L")).stddev[0])


def main() -> None:
    photos = sorted(SAMPLE.glob("*.jpg"))
    original = {p.name: phash_image(Image.open(p)) for p in photos}
    # (picture it shows, original file or None, hash, stddev)
    rows: list[tuple[str, str | None, int, float]] = []
    for path in photos:
        pixels = np.asarray(Image.open(path).convert("RGB")).astype(float)
        picture = path.name.split("-")[0].removesuffix(".jpg")
        for level in (1, 3, 8):
            dark = _jpeg(Image.fromarray((pixels * level / 255).round().astype("uint8")))
            rows.append((picture, path.name, phash_image(dark), _stddev(dark)))
    rng = np.random.default_rng(0)
    for seed in range(6):
        for value in (0, 2, 128, 254):
            flat = np.full((256, 256, 3), value, "uint8")
            if seed:
                flat = flat + rng.integers(0, 2, flat.shape, dtype="uint8")
            image = _jpeg(Image.fromarray(flat))
            rows.append((f"uniform {value} #{seed}", None, phash_image(image), _stddev(image)))
    print(
        f"{len(rows)} images; uniform hashes: "
        + ", ".join(sorted({f"{h:016x}" for _, src, h, s in rows if src is None and s == 0}))
    )
    for threshold in (0.0, 0.5, 0.75, 1.0, 1.5, 2.0):
        kept = [r for r in rows if r[3] >= threshold]
        false_pairs = sum(
            1
            for i, a in enumerate(kept)
            for b in kept[i + 1 :]
            if a[0] != b[0] and hamming(a[2], b[2]) <= RADIUS
        )
        dark = [r for r in kept if r[1] is not None]
        found = sum(hamming(h, original[src]) <= RADIUS for _, src, h, _ in dark if src)
        print(
            f"stddev >= {threshold:4}: {len(kept):2} images kept, {false_pairs} false pairs, "
            f"{found} of {len(dark)} darkened photos match their original"
        )


if __name__ == "__main__":
    main()
