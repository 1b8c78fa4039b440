#!/usr/bin/env python3
"""End-to-end bench of ``imgscout dupes`` on a folder of phone-size photos, against peers.

The folder (made in a temporary directory, never kept) holds 12 MP photos (4000x3000 JPEG,
quality 90, with sensor-like grain so the files weigh what a phone's do), some of them
portrait ones stored sideways with EXIF Orientation 6 as phones store them, some PNG and WebP
images (screenshots and saved web images, 1920x1080), and for a share of the originals the
copies people make: resized, recompressed, cropped 2%, brightened, watermarked, rotated into
the pixels with an EXIF tag that turns them back, re-saved as PNG or WebP. Every other
original is unrelated. The pictures are cut from scikit-image's bundled photographs and
procedural scenes (random shapes over smooth colour fields), so nothing is downloaded.

Each tool runs twice on the same folder: cold (nothing cached) and again (its cache warm,
where it has one), as a separate process, timed wall-clock:

* ``imgscout dupes DIR --index IDX --json`` (the index holds the hash cache);
* ``czkawka_cli image`` (its default hash cache in a private XDG cache folder), when
  ``czkawka_cli`` is on PATH or in ~/.cargo/bin (``cargo install --locked czkawka_cli``);
* imagededup's ``PHash().find_duplicates(image_dir=..., max_distance_threshold=RADIUS)``
  (no cache: both runs hash everything), when the package is installed.

Each tool's answer becomes pairs of files (every two members of a group); precision and
recall are counted against the known pairs (every two files of one original's family).

Usage: python bench/photo_folder.py [--files N] [--output bench/PHOTOS.md] [--keep-folder DIR]
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFont

REPO_ROOT = Path(__file__).resolve().parents[1]
PHOTO_SIZE = (4000, 3000)
SCREEN_SIZE = (1920, 1080)
JPEG_QUALITY = 90
RADIUS = 8
#: scikit-image photographs the pictures are cut from (as in scripts/radius_study.py).
PHOTOS = (
    "astronaut",
    "brick",
    "camera",
    "chelsea",
    "clock",
    "coffee",
    "coins",
    "gravel",
    "hubble_deep_field",
    "immunohistochemistry",
    "moon",
    "page",
    "retina",
    "rocket",
)
#: The copies made of an original with copies, in this order (as many as its family gets).
EDITS = (
    "resize-50",
    "recompress-q60",
    "exif-rotated",
    "bright+20",
    "watermark",
    "crop-2",
    "as-png",
    "as-webp",
)
ORIENTATION_TAG = 0x0112


# -- making the folder -------------------------------------------------------------------------


def _grain(rng: np.random.Generator) -> np.ndarray:
    """A tile of sensor-like noise, added with a random offset over the whole photo."""
    return rng.normal(0, 6.0, size=(512, 512, 3)).astype(np.int16)


def _add_grain(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    pixels = np.asarray(image.convert("RGB"), dtype=np.int16)
    tile = _grain(rng)
    h, w = pixels.shape[:2]
    reps = (h // 512 + 2, w // 512 + 2, 1)
    dy, dx = rng.integers(0, 512, size=2)
    noise = np.tile(tile, reps)[dy : dy + h, dx : dx + w]
    return Image.fromarray(np.clip(pixels + noise, 0, 255).astype(np.uint8))


def _photo_source(name: str) -> Image.Image:
    from skimage import data

    array = np.asarray(getattr(data, name)())
    if array.ndim == 3 and array.shape[2] == 4:
        array = array[:, :, :3]
    return Image.fromarray(array).convert("RGB")


def scene(number: int, size: tuple[int, int], seed: int) -> Image.Image:
    """Picture ``number``: a cut of a bundled photograph (even numbers, while there are cuts
    left) or a procedural scene, at ``size``, with grain. Distinct numbers give unrelated
    pictures."""
    rng = np.random.default_rng([seed, number])
    cuts = [(p, q) for p in PHOTOS for q in range(5)]
    if number % 2 == 0 and number // 2 < len(cuts):
        photo, quarter = cuts[number // 2]
        source = _photo_source(photo)
        if quarter:  # the four quadrants are distinct pictures (as in the radius study)
            w, h = source.width // 2, source.height // 2
            x, y = ((quarter - 1) % 2) * w, ((quarter - 1) // 2) * h
            source = source.crop((x, y, x + w, y + h))
        # Fill the frame (a centred cut to the target's aspect ratio), then scale up.
        aspect = size[0] / size[1]
        if source.width / source.height > aspect:
            cut = round(source.height * aspect)
            left = (source.width - cut) // 2
            source = source.crop((left, 0, left + cut, source.height))
        else:
            cut = round(source.width / aspect)
            top = (source.height - cut) // 2
            source = source.crop((0, top, source.width, top + cut))
        base = source.resize(size, Image.Resampling.BICUBIC)
    else:
        small = (size[0] // 4, size[1] // 4)
        field = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
        base = Image.fromarray(field).resize(small, Image.Resampling.BICUBIC)
        draw = ImageDraw.Draw(base)
        for _ in range(int(rng.integers(6, 16))):
            x0, y0 = rng.integers(0, small[0]), rng.integers(0, small[1])
            x1 = x0 + int(rng.integers(small[0] // 12, small[0] // 2))
            y1 = y0 + int(rng.integers(small[1] // 12, small[1] // 2))
            colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
            if rng.random() < 0.5:
                draw.ellipse((x0, y0, x1, y1), fill=colour)
            else:
                draw.rectangle((x0, y0, x1, y1), fill=colour)
        base = base.resize(size, Image.Resampling.BICUBIC)
    return _add_grain(base, rng)


def _jpeg(image: Image.Image, path: Path, quality: int = JPEG_QUALITY, **extra: object) -> None:
    image.convert("RGB").save(path, format="JPEG", quality=quality, **extra)


def _with_orientation(value: int) -> bytes:
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = value
    return exif.tobytes()


def _save_original(image: Image.Image, path: Path, portrait: bool) -> None:
    if portrait:
        # A phone held upright stores the sensor's landscape pixels and Orientation 6
        # ("rotate 90 degrees clockwise to display"): the stored pixels are the upright
        # picture turned 90 degrees counter-clockwise.
        _jpeg(image.transpose(Image.Transpose.ROTATE_90), path, exif=_with_orientation(6))
    else:
        _jpeg(image, path)


def _watermark(image: Image.Image) -> Image.Image:
    base = image.convert("RGBA")
    layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    size = max(10, round(base.height * 0.06))
    font = ImageFont.load_default(size=size)
    left, _top, right, _bottom = draw.textbbox((0, 0), "(c) imgscout", font=font)
    x, y = (base.width - (right - left)) // 2, round(base.height * 0.7)
    draw.text((x + 2, y + 2), "(c) imgscout", font=font, fill=(0, 0, 0, 110))
    draw.text((x, y), "(c) imgscout", font=font, fill=(255, 255, 255, 170))
    return Image.alpha_composite(base, layer).convert("RGB")


def _save_edit(image: Image.Image, edit: str, path_stem: Path) -> Path:
    """One edited copy of the upright picture ``image``; returns the file written."""
    if edit == "resize-50":
        path = path_stem.with_suffix(".jpg")
        _jpeg(image.resize((image.width // 2, image.height // 2), Image.Resampling.LANCZOS), path)
    elif edit == "recompress-q60":
        path = path_stem.with_suffix(".jpg")
        _jpeg(image, path, quality=60)
    elif edit == "exif-rotated":
        # Pixels turned the other way round, with the tag that turns them back (Orientation
        # 8, "rotate 270 clockwise"): displayed the same, stored differently.
        path = path_stem.with_suffix(".jpg")
        _jpeg(image.transpose(Image.Transpose.ROTATE_270), path, exif=_with_orientation(8))
    elif edit == "bright+20":
        path = path_stem.with_suffix(".jpg")
        _jpeg(ImageEnhance.Brightness(image).enhance(1.2), path)
    elif edit == "watermark":
        path = path_stem.with_suffix(".jpg")
        _jpeg(_watermark(image), path)
    elif edit == "crop-2":
        path = path_stem.with_suffix(".jpg")
        dx, dy = round(image.width * 0.02), round(image.height * 0.02)
        _jpeg(image.crop((dx, dy, image.width - dx, image.height - dy)), path)
    elif edit == "as-png":
        path = path_stem.with_suffix(".png")
        image.resize(SCREEN_SIZE, Image.Resampling.LANCZOS).save(path, compress_level=1)
    elif edit == "as-webp":
        path = path_stem.with_suffix(".webp")
        image.resize(SCREEN_SIZE, Image.Resampling.LANCZOS).save(path, quality=80)
    else:  # pragma: no cover - EDITS names them all
        raise ValueError(edit)
    return path


@dataclass(frozen=True)
class Plan:
    """One original and how it is stored: kind "photo" (12 MP JPEG), "portrait" (12 MP JPEG
    stored sideways with Orientation 6), "png" or "webp" (1920x1080); and its copies."""

    number: int
    kind: str
    edits: tuple[str, ...]


def plan_folder(files: int) -> list[Plan]:
    """Originals and copies adding up to ``files``: about a third of the originals have
    copies (2 to 8 of them), one in eight is portrait, one in sixteen PNG, one in sixteen WebP."""
    plans: list[Plan] = []
    total, number = 0, 0
    while total < files:
        kind = (
            "png"
            if number % 16 == 5
            else "webp"
            if number % 16 == 11
            else "portrait"
            if number % 8 == 3
            else "photo"
        )
        copies = 0 if number % 3 else 2 + (number // 3) % (len(EDITS) - 1)
        if kind in ("png", "webp"):
            copies = min(copies, 2)
        copies = min(copies, files - total - 1)
        edits = tuple(EDITS[(number + k) % len(EDITS)] for k in range(copies))
        plans.append(Plan(number, kind, edits))
        total += 1 + copies
        number += 1
    return plans


def _make_family(args: tuple[Plan, str, int]) -> list[str]:
    plan, folder, seed = args
    root = Path(folder)
    size = SCREEN_SIZE if plan.kind in ("png", "webp") else PHOTO_SIZE
    upright = scene(plan.number, size, seed)
    if plan.kind == "portrait":
        upright = upright.transpose(Image.Transpose.ROTATE_270)  # 3000x4000, displayed upright
    stem = f"IMG_{plan.number:05d}"
    if plan.kind == "png":
        original = root / f"{stem}.png"
        upright.save(original, compress_level=1)
    elif plan.kind == "webp":
        original = root / f"{stem}.webp"
        upright.save(original, quality=85)
    else:
        original = root / f"{stem}.jpg"
        _save_original(upright, original, portrait=plan.kind == "portrait")
    written = [original]
    for edit in plan.edits:
        written.append(_save_edit(upright, edit, root / f"{stem}-{edit}"))
    return [str(p) for p in written]


def make_folder(
    folder: Path, files: int, seed: int = 1, jobs: int | None = None
) -> list[list[str]]:
    """Writes the folder; returns the families (the original's path first)."""
    folder.mkdir(parents=True, exist_ok=True)
    work = [(plan, str(folder), seed) for plan in plan_folder(files)]
    jobs = jobs or os.cpu_count() or 1
    if jobs > 1 and len(work) > 1:
        with ProcessPoolExecutor(jobs) as pool:
            return list(pool.map(_make_family, work))
    return [_make_family(item) for item in work]
