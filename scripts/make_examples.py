#!/usr/bin/env python3
"""Builds examples/photos: a few public-domain photographs and edited copies of them.

The photographs come from scikit-image's bundled data (licenses in examples/LICENSES.md). Each
gets a handful of the edits people make to a photo they pass around, so `imgscout dupes
examples/photos` has real copy groups to find, plus two unrelated photographs that must stay
alone. The same edit functions drive scripts/radius_study.py.

Usage: python scripts/make_examples.py [OUTPUT_DIR]   (default: examples/photos)
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont

Edit = Callable[[Image.Image], Image.Image]


def load_photo(name: str) -> Image.Image:
    """A scikit-image sample photograph as an RGB (or L) Pillow image."""
    from skimage import data

    array = np.asarray(getattr(data, name)())
    if array.ndim == 3 and array.shape[2] == 4:
        array = array[:, :, :3]
    return Image.fromarray(array)


def jpeg(quality: int) -> Edit:
    def edit(image: Image.Image) -> Image.Image:
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="JPEG", quality=quality)
        buffer.seek(0)
        return Image.open(buffer).copy()

    return edit


def scale(factor: float) -> Edit:
    def edit(image: Image.Image) -> Image.Image:
        size = (max(8, round(image.width * factor)), max(8, round(image.height * factor)))
        return image.resize(size, Image.Resampling.LANCZOS)

    return edit


def crop(fraction: float) -> Edit:
    """Trims ``fraction`` of the width and height off each side."""

    def edit(image: Image.Image) -> Image.Image:
        dx, dy = round(image.width * fraction), round(image.height * fraction)
        return image.crop((dx, dy, image.width - dx, image.height - dy))

    return edit


def crop_corner(fraction: float) -> Edit:
    """Trims ``fraction`` off the right and bottom only: an off-centre crop."""

    def edit(image: Image.Image) -> Image.Image:
        return image.crop(
            (0, 0, round(image.width * (1 - fraction)), round(image.height * (1 - fraction)))
        )

    return edit


def brightness(factor: float) -> Edit:
    return lambda image: ImageEnhance.Brightness(image).enhance(factor)


def contrast(factor: float) -> Edit:
    return lambda image: ImageEnhance.Contrast(image).enhance(factor)


def blur(radius: float) -> Edit:
    return lambda image: image.filter(ImageFilter.GaussianBlur(radius))


def grayscale(image: Image.Image) -> Image.Image:
    return image.convert("L")


def watermark(text: str, relative_size: float) -> Edit:
    """Semi-opaque text across the lower part of the picture, as stock-photo sites do."""

    def edit(image: Image.Image) -> Image.Image:
        base = image.convert("RGBA")
        layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
        draw = ImageDraw.Draw(layer)
        size = max(10, round(base.height * relative_size))
        font = ImageFont.load_default(size=size)
        left, _top, right, _bottom = draw.textbbox((0, 0), text, font=font)
        x = (base.width - (right - left)) // 2
        y = round(base.height * 0.7)
        draw.text((x + 2, y + 2), text, font=font, fill=(0, 0, 0, 110))
        draw.text((x, y), text, font=font, fill=(255, 255, 255, 170))
        return Image.alpha_composite(base, layer).convert("RGB")

    return edit


def chain(*edits: Edit) -> Edit:
    def edit(image: Image.Image) -> Image.Image:
        for step in edits:
            image = step(image)
        return image

    return edit


#: Every edit the radius study measures, by name. Sizes are what a re-post or re-save does,
#: not adversarial: those are out of reach of any perceptual hash and not what dupes is for.
STUDY_EDITS: dict[str, Edit] = {
    "jpeg-q90": jpeg(90),
    "jpeg-q50": jpeg(50),
    "jpeg-q25": jpeg(25),
    "jpeg-q10": jpeg(10),
    "scale-50": scale(0.5),
    "scale-25": scale(0.25),
    "scale-150": scale(1.5),
    "crop-2": crop(0.02),
    "crop-5": crop(0.05),
    "crop-corner-5": crop_corner(0.05),
    "crop-10": crop(0.10),
    "bright+20": brightness(1.2),
    "bright-20": brightness(0.8),
    "contrast+30": contrast(1.3),
    "contrast-30": contrast(0.7),
    "blur-1": blur(1),
    "blur-2": blur(2),
    "blur-4": blur(4),
    "gray": grayscale,
    "watermark-small": watermark("(c) imgscout", 0.06),
    "watermark-large": watermark("SAMPLE", 0.18),
    "scale-50+jpeg-q50": chain(scale(0.5), jpeg(50)),
    "crop-5+bright+20+jpeg-q75": chain(crop(0.05), brightness(1.2), jpeg(75)),
}

#: The shipped sample: (scikit-image name, file stem, edits applied to it).
SAMPLE: list[tuple[str, str, list[str]]] = [
    ("astronaut", "astronaut", ["jpeg-q25", "scale-25", "watermark-large", "crop-corner-5"]),
    ("coffee", "coffee", ["jpeg-q10", "bright+20", "gray", "blur-4"]),
    ("chelsea", "chelsea", ["scale-50+jpeg-q50", "contrast+30", "crop-2", "watermark-large"]),
    ("rocket", "rocket", ["contrast-30", "blur-1", "watermark-small", "jpeg-q10"]),
    # Unrelated photographs that must not join any group.
    ("camera", "camera", []),
    ("coins", "coins", []),
]


def save_jpeg(image: Image.Image, path: Path, quality: int = 85) -> None:
    image.convert("RGB" if image.mode not in ("L", "RGB") else image.mode).save(
        path, format="JPEG", quality=quality, optimize=True
    )


def make_sample(output: Path) -> list[Path]:
    output.mkdir(parents=True, exist_ok=True)
    written = []
    for photo_name, stem, edits in SAMPLE:
        original = load_photo(photo_name)
        path = output / f"{stem}.jpg"
        save_jpeg(original, path)
        written.append(path)
        for edit_name in edits:
            # Edited copies sit in a subfolder for half the photos, so the default recursive
            # walk matters on the sample too.
            folder = output / "edited" if stem in ("coffee", "rocket") else output
            folder.mkdir(exist_ok=True)
            path = folder / f"{stem}-{edit_name}.jpg"
            save_jpeg(STUDY_EDITS[edit_name](original), path)
            written.append(path)
    return written


def main(argv: list[str]) -> int:
    output = Path(argv[1]) if len(argv) > 1 else Path(__file__).parents[1] / "examples/photos"
    written = make_sample(output)
    total = sum(p.stat().st_size for p in written)
    print(f"wrote {len(written)} images, {total / 1e6:.2f} MB, to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
