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

import argparse
import importlib.util
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
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


# -- running the tools -------------------------------------------------------------------------


@dataclass
class ToolRun:
    name: str
    command: str
    cold_s: float = 0.0
    rerun_s: float = 0.0
    pairs: set[frozenset[str]] = field(default_factory=set)
    note: str = ""
    skipped: str = ""


def _timed(argv: Sequence[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(
        list(argv), capture_output=True, text=True, env=env, check=False, timeout=3600
    )
    elapsed = time.perf_counter() - started
    if done.returncode not in (0, 1):  # 1: imgscout dupes found no group
        raise RuntimeError(
            f"{' '.join(argv[:3])}... exited {done.returncode}: {done.stderr[-2000:]}"
        )
    return elapsed, done.stdout


def _group_pairs(groups: Iterable[Iterable[str]]) -> set[frozenset[str]]:
    pairs = set()
    for group in groups:
        names = sorted({os.path.basename(p) for p in group})
        pairs.update(frozenset(p) for p in itertools.combinations(names, 2))
    return pairs


def _imgscout_command() -> list[str]:
    script = Path(sys.executable).with_name("imgscout")
    return [str(script)] if script.exists() else [sys.executable, "-m", "imgscout.cli"]


def run_imgscout(folder: Path, work: Path, algorithm: str = "phash") -> ToolRun:
    """``imgscout dupes`` with ``--hash algorithm`` at that hash's default radius; the row of
    the default hash (phash) is named ``imgscout``, the others ``imgscout --hash NAME``."""
    from imgscout.dedup import DEFAULT_RADII

    index = work / f"photos-{algorithm}.idx"
    argv = [*_imgscout_command(), "dupes", str(folder), "--index", str(index), "--json"]
    flag = "" if algorithm == "phash" else f" --hash {algorithm}"
    argv += flag.split()
    name = f"imgscout{flag}"
    command = f"imgscout dupes DIR --index IDX --json{flag} (radius {DEFAULT_RADII[algorithm]})"
    run = ToolRun(name, command)
    run.cold_s, out = _timed(argv)
    run.rerun_s, again = _timed(argv)
    groups = json.loads(out)["groups"]
    if json.loads(again)["groups"] != groups:
        raise RuntimeError("imgscout's re-run found other groups than its cold run")
    run.pairs = _group_pairs([f["path"] for f in g["files"]] for g in groups)
    return run


def find_czkawka() -> str | None:
    found = shutil.which("czkawka_cli")
    if found:
        return found
    cargo = Path.home() / ".cargo" / "bin" / "czkawka_cli"
    return str(cargo) if cargo.exists() else None


def _paths_in(value: object) -> list[list[str]]:
    """The groups of a czkawka JSON report: lists of entries that carry a "path"."""
    if isinstance(value, list):
        if value and all(isinstance(v, dict) and "path" in v for v in value):
            return [[str(v["path"]) for v in value]]
        return [g for v in value for g in _paths_in(v)]
    if isinstance(value, dict):
        return [g for v in value.values() for g in _paths_in(v)]
    return []


def run_czkawka(folder: Path, work: Path, difference: int | None = None) -> ToolRun:
    """``czkawka_cli image`` with its defaults, or with ``-s difference`` (its help
    recommends up to 20 for the default 16x16 hash)."""
    binary = find_czkawka()
    extra = [] if difference is None else ["-s", str(difference)]
    name = "czkawka" if difference is None else f"czkawka -s {difference}"
    run = ToolRun(
        name,
        f"czkawka_cli image -d DIR -C OUT.json -W -N {' '.join(extra)}".rstrip()
        + " (16x16 Gradient hash, Nearest filter, all threads; max difference "
        + (f"{difference})" if difference is not None else "5, the default)"),
    )
    if binary is None:
        run.skipped = "czkawka_cli not found (cargo install --locked czkawka_cli)"
        return run
    version = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    run.command = f"{version.stdout.split(chr(10))[0].strip() or 'czkawka'}: {run.command}"
    # A private cache and config: the cold run starts from nothing, the re-run reuses them.
    private = work / name.replace(" ", "")
    env = {
        **os.environ,
        "XDG_CACHE_HOME": str(private / "cache"),
        "XDG_CONFIG_HOME": str(private / "config"),
    }
    report = private / "found.json"
    private.mkdir(parents=True, exist_ok=True)
    # -W: exit 0 when it finds something; -N: results go to the file only.
    argv = [binary, "image", "-d", str(folder), "-C", str(report), "-W", "-N", *extra]
    run.cold_s, _ = _timed(argv, env)
    run.rerun_s, _ = _timed(argv, env)
    run.pairs = _group_pairs(_paths_in(json.loads(report.read_text() or "[]")))
    return run


_IMAGEDEDUP = """
import json, logging, sys, warnings
sys.path.insert(0, {root!r})
from bench.peers import imagededup_phash_class
logging.disable(logging.WARNING)
warnings.simplefilter("ignore")
found = imagededup_phash_class()(verbose=False).find_duplicates(
    image_dir={folder!r}, max_distance_threshold={radius}
)
print(json.dumps(found))
"""


def run_imagededup(folder: Path) -> ToolRun:
    run = ToolRun(
        "imagededup",
        f"imagededup PHash().find_duplicates(image_dir=DIR, max_distance_threshold={RADIUS})",
    )
    try:
        import imagededup  # noqa: F401
    except ImportError:
        run.skipped = "imagededup not installed (pip install --no-deps imagededup==0.3.3.post2)"
        return run
    code = _IMAGEDEDUP.format(root=str(REPO_ROOT), folder=str(folder), radius=RADIUS)
    argv = [sys.executable, "-c", code]
    run.cold_s, out = _timed(argv)
    run.rerun_s, _ = _timed(argv)
    run.note = "no cache: the re-run hashes every file again"
    found = json.loads(out.strip().splitlines()[-1])
    run.pairs = {frozenset((a, b)) for a, partners in found.items() for b in partners if a != b}
    return run


# -- the report --------------------------------------------------------------------------------


def cpu_description() -> str:
    model, flags = "unknown CPU", set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    wanted = ("sse4_2", "popcnt", "avx", "avx2", "bmi2", "avx512f", "avx512bw", "avx512_vpopcntdq")
    shown = " ".join(f for f in wanted if f in flags) or "unknown"
    return f"{model}, {os.cpu_count()} cores; flags: {shown}"


def score(run: ToolRun, truth: set[frozenset[str]]) -> tuple[float, float]:
    hits = len(run.pairs & truth)
    precision = hits / len(run.pairs) if run.pairs else 1.0
    recall = hits / len(truth) if truth else 1.0
    return precision, recall


def render(
    runs: Sequence[ToolRun],
    families: Sequence[Sequence[str]],
    folder_bytes: int,
    files: int,
) -> tuple[str, dict[str, object]]:
    truth = {
        frozenset(p)
        for family in families
        for p in itertools.combinations(sorted(os.path.basename(f) for f in family), 2)
    }
    originals = len(families)
    portraits = sum(1 for plan in plan_folder(files) if plan.kind == "portrait")
    with_copies = sum(1 for f in families if len(f) > 1)
    by_ext: dict[str, int] = {}
    for family in families:
        for path in family:
            ext = os.path.splitext(path)[1].lstrip(".")
            by_ext[ext] = by_ext.get(ext, 0) + 1
    imgscout = next(r for r in runs if r.name == "imgscout")
    results: dict[str, object] = {
        "files": files,
        "bytes": folder_bytes,
        "originals": originals,
        "known_pairs": len(truth),
        "cpu": cpu_description(),
        "tools": {},
    }
    lines = [
        "# End-to-end: a folder of phone photos",
        "",
        "Generated by `python bench/photo_folder.py` (do not edit by hand).",
        "",
        f"Folder: {files} files, {folder_bytes / 1e6:,.0f} MB "
        f"({', '.join(f'{n} {e}' for e, n in sorted(by_ext.items()))}): {originals} originals, "
        f"{with_copies} of them with 2-8 edited copies (resize 50%, recompress q60, "
        "EXIF-rotated, brightness +20%, watermark, crop 2%, PNG, WebP), the others unrelated. "
        f"Photos are 4000x3000 JPEG q90 ({portraits} of the originals portrait, stored "
        "sideways with EXIF Orientation 6); PNG and WebP images 1920x1080. Known pairs: every "
        "two files of one "
        f"original's family, {len(truth)} in all.",
        "",
        f"CPU: {cpu_description()}. Each run is a separate process, wall-clock, the folder "
        "in the page cache (a first warm-up read is not timed). Cold: no cache; re-run: the "
        "same command again over the unchanged folder.",
        "",
        "| tool | cold s | files/s | re-run s | pairs found | precision | recall |"
        " imgscout cold faster | imgscout re-run / peer's |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for run in runs:
        if run.skipped:
            lines.append(f"| {run.name} | skipped: {run.skipped} | | | | | | | |")
            results["tools"][run.name] = {"skipped": run.skipped}  # type: ignore[index]
            continue
        precision, recall = score(run, truth)
        cold_ratio = run.cold_s / imgscout.cold_s
        rerun_ratio = imgscout.rerun_s / run.rerun_s
        lines.append(
            f"| {run.name} | {run.cold_s:.2f} | {files / run.cold_s:.1f} | {run.rerun_s:.2f} | "
            f"{len(run.pairs)} | {precision:.1%} | {recall:.1%} | "
            + ("" if run is imgscout else f"{cold_ratio:.1f}x")
            + " | "
            + ("" if run is imgscout else f"{rerun_ratio:.2f}")
            + " |"
        )
        results["tools"][run.name] = {  # type: ignore[index]
            "command": run.command,
            "cold_s": run.cold_s,
            "files_per_s": files / run.cold_s,
            "rerun_s": run.rerun_s,
            "pairs": len(run.pairs),
            "precision": precision,
            "recall": recall,
            "imgscout_cold_speedup": cold_ratio,
            "imgscout_rerun_ratio": rerun_ratio,
            "note": run.note,
        }
    lines += ["", "Commands:", ""]
    lines += [
        f"* {run.name}: `{run.command}`" + (f" ({run.note})" if run.note else "") for run in runs
    ]
    czkawka = next((r for r in runs if r.name == "czkawka" and not r.skipped), None)
    verdict = ""
    if czkawka is not None:
        cold, again = czkawka.cold_s / imgscout.cold_s, imgscout.rerun_s / czkawka.rerun_s
        verdict = (
            f" Here: cold {cold:.1f}x faster ({'met' if cold >= 4 else 'not met'}), re-run "
            f"{again:.2f}x czkawka's ({'met' if again <= 2 else 'not met'})."
        )
    lines += [
        "",
        "Targets: imgscout's cold run at least 4x faster than czkawka's, its re-run at most "
        f"2x czkawka's re-run time.{verdict} czkawka uses its own hash (default: 16x16 gradient, "
        "max difference 5) and imagededup and imgscout pHash at radius "
        f"{RADIUS}, so the pair counts differ by method as well as by tool.",
        "",
    ]
    return "\n".join(lines), results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=400, help="files in the folder (400)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "bench" / "PHOTOS.md")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    parser.add_argument("--no-peers", action="store_true", help="time imgscout only")
    parser.add_argument(
        "--hashes",
        default="phash,phash256,pdq",
        help="imgscout's --hash runs, comma-separated (phash first; pdq needs pdqhash)",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="imgscout-photos-") as tmp:
        work = Path(tmp)
        folder = work / "photos"
        started = time.perf_counter()
        families = make_folder(folder, args.files, args.seed)
        files = sum(len(f) for f in families)
        folder_bytes = sum(p.stat().st_size for p in folder.iterdir())
        print(f"made {files} files in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        for path in folder.iterdir():  # into the page cache, so no tool pays the first read
            path.read_bytes()
        runs = [run_imgscout(folder, work)]
        for algorithm in args.hashes.split(","):
            if algorithm == "phash":
                continue
            if algorithm == "pdq" and importlib.util.find_spec("pdqhash") is None:
                runs.append(ToolRun(f"imgscout --hash {algorithm}", "", skipped="no pdqhash"))
                continue
            runs.append(run_imgscout(folder, work, algorithm))
        if not args.no_peers:
            runs.append(run_czkawka(folder, work))
            runs.append(run_czkawka(folder, work, difference=20))
            runs.append(run_imagededup(folder))
        text, results = render(runs, families, folder_bytes, files)
    args.output.write_text(text)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
