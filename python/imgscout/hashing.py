"""Perceptual hashing of image files for the command-line tool.

Three algorithms (:data:`ALGORITHMS`), each hash held here as a Python ``int`` whose big-endian
bits are the hash's bits row by row, most significant first, and printed as hex (``bits / 4``
digits, byte 0 first: the text of docs/spec.md), so hashes made by this module, by the
libraries directly, or typed by a person all agree:

* ``phash`` (the default): imagehash's ``phash`` with its 8x8 DCT, 64 bits, printed as the 16
  hex digits ``str(imagehash.phash(img))`` gives;
* ``phash256``: ``imagehash.phash(img, hash_size=16)``, 256 bits;
* ``pdq``: Meta's PDQ (the ``pdqhash`` package, ``pip install "imgscout[pdq]"``), 256 bits, the
  64 hex digits ThreatExchange's ``PdqSignal`` gives, with a quality of 0..100: below
  :data:`PDQ_MIN_QUALITY` a file is reported (:class:`LowQuality`), not hashed.

Every image is turned upright by its EXIF orientation first. With ``rotations`` each file also
gets the hashes of its eight orientations (:data:`ORIENTATIONS`), for matching rotated and
mirrored copies.

Hashing decodes every image and is by far the slowest step of a run, so :func:`hash_files` spreads
the work over a process pool and reports progress (tqdm, on a terminal only); one file that
cannot be decoded never stops the run: it comes back as a :class:`HashFailure` for the caller to
report.
"""

from __future__ import annotations

import contextlib
import functools
import os
import stat
import sys
import warnings
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from PIL import Image

HASH_BITS = 64
HASH_HEX_DIGITS = HASH_BITS // 4

#: The hashing algorithms and the bits of their hashes.
ALGORITHMS: dict[str, int] = {"phash": 64, "phash256": 256, "pdq": 256}
DEFAULT_ALGORITHM = "phash"

#: PDQ qualities (0..100) below this are too unreliable to match on: the minimum Meta's PDQ
#: documentation recommends, ThreatExchange's ``PdqSignal.QUALITY_THRESHOLD``.
PDQ_MIN_QUALITY = 50
#: phash256's DCT side: ``imagehash.phash(image, hash_size=16)``, 16 x 16 = 256 bits.
PHASH256_SIZE = 16

#: The eight orientations of the dihedral group, in the order ``pdqhash.compute_dihedral``
#: returns its hashes, each with the ``PIL.Image.Transpose`` that turns an image that way
#: (None: as it is). Hash k of a file's variants is the hash of its image turned as
#: orientation k.
ORIENTATIONS: tuple[tuple[str, str | None], ...] = (
    ("original", None),
    ("rotate-90", "ROTATE_90"),
    ("rotate-180", "ROTATE_180"),
    ("rotate-270", "ROTATE_270"),
    ("flip-top-bottom", "FLIP_TOP_BOTTOM"),
    ("flip-left-right", "FLIP_LEFT_RIGHT"),
    ("transpose", "TRANSPOSE"),
    ("transverse", "TRANSVERSE"),
)

#: Grey levels (0-255) of standard deviation below which an image counts as flat. Measured by
#: scripts/flat_study.py: the 14 sample photographs squeezed into 0..1, 0..3 and 0..8 grey
#: levels (JPEG, 42 images) and 24 uniform images with and without 1-level noise. Uniform
#: images hash to 0 or 0x8000000000000000, noisy ones to noise: 6 pairs within radius 8 join
#: different pictures. Leaving out images below 0.5 or 0.75 removes all 6; 0.75 keeps a margin
#: over the 1-level noise images, which measure 0.50, and still lets 17 of the 21 darkened
#: photos it keeps match their original. Real photographs measure 30 and more.
FLAT_STDDEV = 0.75

#: The smallest side a JPEG may be shrunk to while it is decoded for hashing: eight times
#: the 32x32 that phash resizes every image to. 12 MP photos decode at 1/8 scale (500x375),
#: JPEGs under 512 px on their short side in full. scripts/draft_study.py measured 128, 256
#: and 512 (docs/radius.md): 256 is as fast as 128 on 12 MP photos and moves fewer hashes
#: of mid-size ones; at most 2 bits moved on any file, and no copy pair was lost.
DRAFT_MIN_SIDE = 256
#: The mode the JPEG decoder outputs when it shrinks: grey, from the file's luma channel.
DRAFT_MODE = "L"

#: Below this many files a process pool costs more to start than it saves.
PARALLEL_MIN_FILES = 16


@dataclass(frozen=True)
class HashedFile:
    path: str
    hash: int
    #: Pixel size as displayed (after the EXIF orientation); 0 when not known.
    width: int = 0
    height: int = 0
    #: Nearly uniform (grey-level standard deviation below :data:`FLAT_STDDEV`): its hash is
    #: noise or a constant, close to the hashes of unrelated flat images.
    flat: bool = False
    #: PDQ's quality, 0..100; None for the other algorithms.
    quality: int | None = None
    #: With ``rotations``: the hashes of the image in each of :data:`ORIENTATIONS` (the first
    #: is :attr:`hash`); empty otherwise.
    variants: tuple[int, ...] = ()


@dataclass(frozen=True)
class HashFailure:
    path: str
    reason: str


@dataclass(frozen=True)
class LowQuality(HashFailure):
    """A file whose PDQ quality is below :data:`PDQ_MIN_QUALITY`: too little detail for its
    hash to mean anything, so it is left out unless asked for."""

    quality: int = 0


def format_hash(value: int, bits: int = HASH_BITS) -> str:
    """``bits / 4`` lowercase hex digits, zero-padded: 16 for a pHash (the form imagehash
    prints), 64 for a 256-bit hash (PDQ's text form)."""
    return f"{value:0{bits // 4}x}"


def hash_bits(algorithm: str) -> int:
    """The bits of ``algorithm``'s hashes; ValueError names the algorithms there are."""
    try:
        return ALGORITHMS[algorithm]
    except KeyError:
        raise ValueError(
            f"unknown hash algorithm {algorithm!r} (expected one of {', '.join(ALGORITHMS)})"
        ) from None


def require_algorithm(algorithm: str) -> None:
    """Raises ValueError for an unknown algorithm and ImportError, with what to install, when
    the package it needs is missing: checked before any file is hashed, so that a missing
    package is one error rather than one failure per file."""
    hash_bits(algorithm)
    if algorithm == "pdq":
        _pdqhash()


def _pdqhash() -> Any:
    try:
        import pdqhash
    except ImportError as error:
        raise ImportError(
            '--hash pdq needs the pdqhash package: pip install "imgscout[pdq]"'
        ) from error
    return pdqhash


def bits_to_int(bits: Any) -> int:
    """A vector of 0/1 (most significant first) as an int: what pdqhash returns, as the hex
    digits ThreatExchange prints for it."""
    import numpy as np

    packed = np.packbits(np.asarray(bits).astype(bool).ravel())
    return int.from_bytes(packed.tobytes(), "big")


def hamming(a: int, b: int) -> int:
    # bin().count rather than int.bit_count: the package supports Python 3.9.
    return bin(a ^ b).count("1")


#: phash's sizes: the image is shrunk to PHASH_SIDE x PHASH_SIDE, and the top-left
#: PHASH_LOW x PHASH_LOW of its 2-D DCT gives the 64 bits.
PHASH_SIDE = 32
PHASH_LOW = 8
#: How close (relative to the thumbnail's pixel sum, plus one) a DCT coefficient may come
#: to the median before :func:`phash_image` asks imagehash itself: near a tie, the rounding
#: of scipy's FFT-based DCT decides the bit. scripts/phash_study.py measures the two DCTs
#: apart by at most 1.3e-15 of that sum: this margin is 75,000 times the difference seen.
PHASH_TIE_MARGIN = 1e-10

_dct_rows_cache: list[object] = []


def _dct_rows() -> object:
    """The first PHASH_LOW rows of the unnormalised DCT-II matrix of size PHASH_SIDE:
    ``C[k, n] = 2 cos(pi k (2n + 1) / 2N)``, what ``scipy.fftpack.dct`` (type 2, no
    normalisation) multiplies a vector by."""
    if not _dct_rows_cache:
        import numpy as np

        n = np.arange(PHASH_SIDE, dtype=np.float64)
        k = np.arange(PHASH_LOW, dtype=np.float64)[:, None]
        _dct_rows_cache.append(2.0 * np.cos(np.pi * k * (2.0 * n + 1.0) / (2.0 * PHASH_SIDE)))
    return _dct_rows_cache[0]


def phash_image(image: object) -> int:
    """The 64-bit phash of an already opened ``PIL.Image`` as an int: the bits of
    ``imagehash.phash(image)`` (hash size 8, high-frequency factor 4).

    The same steps, without scipy (whose import costs each hashing process a third of a
    second): grey, a 32x32 Lanczos thumbnail by the same Pillow call, then the top-left 8x8
    of its DCT-II as ``C @ X @ C.T`` in float64, each bit set where the coefficient exceeds
    their median. The two DCTs differ by rounding only, which can decide a bit only where a
    coefficient is within rounding of the median: a uniform thumbnail (every AC coefficient
    is 0, which scipy computes exactly) is answered directly, any other near-tie by
    imagehash itself, so every bit is imagehash's.
    """
    import numpy as np
    from PIL import Image

    grey = image if image.mode == "L" else image.convert("L")  # type: ignore[attr-defined]
    small = grey.resize((PHASH_SIDE, PHASH_SIDE), Image.Resampling.LANCZOS)
    pixels = np.asarray(small, dtype=np.float64)
    rows = _dct_rows()
    low = rows @ pixels @ rows.T  # type: ignore[operator]
    median = np.median(low)
    if np.abs(low - median).min() <= PHASH_TIE_MARGIN * (1.0 + pixels.sum()):
        if pixels.min() == pixels.max():
            # scipy's AC coefficients are exactly 0: the median is 0 and only the DC bit,
            # 4096 times the grey level, can exceed it.
            return 1 << (HASH_BITS - 1) if pixels[0, 0] > 0 else 0
        return imagehash_phash(image)
    return int.from_bytes(np.packbits(low > median).tobytes(), "big")


def imagehash_phash(image: object) -> int:
    """``imagehash.phash(image)`` as an int (what :func:`phash_image` equals)."""
    import imagehash

    return int(str(imagehash.phash(image)), 16)  # type: ignore[arg-type]


def phash256_image(image: object) -> int:
    """``imagehash.phash(image, hash_size=16)`` as an int: 256 bits, row by row, most
    significant first (the bits its text prints)."""
    import imagehash

    return int(str(imagehash.phash(image, hash_size=PHASH256_SIZE)), 16)  # type: ignore[arg-type]


def pdq_pixels(image: Image.Image) -> Any:
    """The ``(height, width, 3)`` uint8 RGB array ``pdqhash.compute`` takes. RGB, grey and
    RGBA images give the array ThreatExchange's ``pdq_from_file`` hashes (grey replicated,
    alpha dropped); palette and CMYK images are converted to their RGB colours first."""
    import numpy as np

    rgb = image if image.mode == "RGB" else image.convert("RGB")
    return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))


def pdq_image(image: Image.Image, rotations: bool = False) -> tuple[list[int], int]:
    """PDQ of an opened image: its hash (with ``rotations``: the hashes of its eight
    :data:`ORIENTATIONS`, each ``pdqhash.compute`` of the image turned that way, as phash's
    are) and its quality (the image's as it is).

    Not ``pdqhash.compute_dihedral``: it derives the turned hashes from the DCT of the one
    64 x 64 downsample of the image as it is, which is not the downsample of the turned image,
    so its hashes differ from PDQ of the turned images by tens of bits (docs/radius.md) and a
    turned copy would not be found at distance 0."""
    pdqhash = _pdqhash()
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    vector, quality = pdqhash.compute(pdq_pixels(rgb))
    vectors = [vector]
    if rotations:
        vectors += [
            pdqhash.compute(pdq_pixels(turned(rgb, k)))[0] for k in range(1, len(ORIENTATIONS))
        ]
    return [bits_to_int(v) for v in vectors], int(quality)


def _transposes() -> list[Image.Transpose | None]:
    from PIL import Image

    return [None if name is None else Image.Transpose[name] for _, name in ORIENTATIONS]


def turned(image: Image.Image, orientation: int) -> Image.Image:
    """``image`` turned as :data:`ORIENTATIONS` ``[orientation]`` says (a copy)."""
    turn = _transposes()[orientation]
    return image.copy() if turn is None else image.transpose(turn)


_optional_formats_registered = False


def register_optional_formats() -> None:
    """Lets PIL open HEIC/HEIF (``pillow-heif``) and, on a Pillow without AVIF of its own,
    AVIF (``pillow-avif-plugin``) when those are installed: ``pip install imgscout[heif]``."""
    global _optional_formats_registered
    if _optional_formats_registered:
        return
    _optional_formats_registered = True
    try:
        from pillow_heif import register_heif_opener
    except ImportError:
        pass
    else:
        register_heif_opener()
    from PIL import features

    if not features.check("avif"):
        with contextlib.suppress(ImportError):
            import pillow_avif  # noqa: F401  - registers itself on import


def open_upright(path: str) -> Image.Image:
    """The image at ``path``, decoded (first frame of an animation), turned as its EXIF
    Orientation says: a phone photo stored sideways hashes like its upright copy."""
    from PIL import Image, ImageOps

    register_optional_formats()
    with Image.open(path) as image:
        image.load()
        upright = ImageOps.exif_transpose(image)
        return upright if upright is not image else image.copy()


def _grey_stddev(image: Image.Image) -> float:
    from PIL import ImageStat

    return float(ImageStat.Stat(image.convert("L")).stddev[0])


def open_grey_for_hash(path: str, fast_jpeg: bool = True) -> tuple[Image.Image, int, int]:
    """The upright grey (mode "L") image that :func:`hash_file` hashes, and the pixel size
    the file displays at.

    A JPEG is decoded shrunk in the DCT domain (``Image.draft``: 1/2, 1/4 or 1/8 scale,
    keeping at least :data:`DRAFT_MIN_SIDE` pixels per side) and straight to grey: a 12 MP
    photo decodes to 500x375 in a fraction of the time of the full decode, and phash
    shrinks every image to 32x32 anyway. Its hash can differ from the full decode's by a
    few bits (docs/radius.md measures how many); ``fast_jpeg=False`` decodes in full. Other
    formats are decoded in full as before, so their hashes are those of ``imagehash.phash``
    on the upright image, bit for bit.
    """
    from PIL import Image

    register_optional_formats()
    with Image.open(path) as image:
        width, height = image.size
        if fast_jpeg and image.format == "JPEG" and min(width, height) >= 2 * DRAFT_MIN_SIDE:
            # Only where it shrinks: a small JPEG decodes fast anyway, and in full it keeps
            # the hash of imagehash.phash bit for bit.
            image.draft(DRAFT_MODE, (DRAFT_MIN_SIDE, DRAFT_MIN_SIDE))
        image.load()
        # Grey first, then turned: the same pixels as ImageOps.exif_transpose then
        # convert("L") (conversion is pixel by pixel, turning moves pixels), without copying
        # the colour image or re-writing its EXIF. The orientation is read from the decoded
        # image, as exif_transpose reads it: the grey copy does not carry it.
        turn = _exif_turn(image)
        grey = image.convert("L")
    if turn is not None:
        grey = grey.transpose(turn)
        if grey.size != (width, height):  # turned a quarter: the displayed size swaps too
            width, height = height, width
    return grey, width, height


_ORIENTATION_TAG = 0x0112


def _exif_turn(image: Image.Image) -> Image.Transpose | None:
    """The transposition that displays ``image`` upright, as ImageOps.exif_transpose picks
    it from the EXIF Orientation tag; None when it is upright already."""
    from PIL import Image

    turns = {
        2: Image.Transpose.FLIP_LEFT_RIGHT,
        3: Image.Transpose.ROTATE_180,
        4: Image.Transpose.FLIP_TOP_BOTTOM,
        5: Image.Transpose.TRANSPOSE,
        6: Image.Transpose.ROTATE_270,
        7: Image.Transpose.TRANSVERSE,
        8: Image.Transpose.ROTATE_90,
    }
    return turns.get(image.getexif().get(_ORIENTATION_TAG, 1))


def hash_file(
    path: str,
    fast_jpeg: bool = True,
    algorithm: str = DEFAULT_ALGORITHM,
    rotations: bool = False,
) -> HashedFile | HashFailure:
    """Hashes one file; any decoding problem becomes a :class:`HashFailure`, never an exception.

    ``fast_jpeg`` applies to ``phash`` only: the wide hashes are taken from the full decode,
    so that they are imagehash's and PDQ's hashes of the file bit for bit. ``rotations``: also
    the hashes of the eight orientations (:attr:`HashedFile.variants`)."""
    hash_bits(algorithm)
    try:
        with warnings.catch_warnings():
            # A decompression-bomb warning would otherwise print once per worker; an image
            # PIL refuses outright raises instead and is reported like any bad file.
            warnings.simplefilter("ignore")
            if algorithm == "pdq":
                return _hash_pdq(path, rotations)
            grey, width, height = open_grey_for_hash(path, fast_jpeg and algorithm == "phash")
            with grey:
                flat = _grey_stddev(grey) < FLAT_STDDEV
                hasher = phash_image if algorithm == "phash" else phash256_image
                value = hasher(grey)
                variants: tuple[int, ...] = ()
                if rotations:
                    turns = _transposes()[1:]
                    variants = (value, *(hasher(grey.transpose(t)) for t in turns))  # type: ignore[arg-type]
                return HashedFile(path, value, width, height, flat, None, variants)
    except Exception as error:  # every decoder failure means "not an image"
        reason = str(error) or type(error).__name__
        return HashFailure(path, reason.splitlines()[0])


def _hash_pdq(path: str, rotations: bool) -> HashedFile:
    with open_upright(path) as image:
        flat = _grey_stddev(image) < FLAT_STDDEV
        hashes, quality = pdq_image(image, rotations)
        width, height = image.size
    return HashedFile(
        path, hashes[0], width, height, flat, quality, tuple(hashes) if rotations else ()
    )


def low_quality(item: HashedFile) -> LowQuality | None:
    """``item`` as a :class:`LowQuality` report if its PDQ quality is below the minimum."""
    if item.quality is None or item.quality >= PDQ_MIN_QUALITY:
        return None
    return low_quality_report(item.path, item.quality)


def low_quality_report(path: str, quality: int) -> LowQuality:
    """The report of a file left out for its PDQ ``quality``."""
    return LowQuality(path, f"PDQ quality {quality} is below {PDQ_MIN_QUALITY}", quality)


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


def iter_image_candidates(
    roots: Iterable[str],
    recursive: bool = True,
    follow_links: bool = False,
    min_size: int = 0,
    extensions: Collection[str] | None = None,
) -> Iterator[str]:
    """Every file to try, in a stable order: named files as given, folders walked sorted.

    Hidden files and folders (``.git``, ``.DS_Store``, ...) are not candidates: they are never
    photos and would only fill the bad-file report. Symbolic links met inside a folder are
    skipped unless ``follow_links``; followed or not, a folder is entered once, so a link loop
    (``ln -s . loop``) ends. Hard links to one file (same device and inode) give one candidate,
    the first path met. ``min_size`` (bytes) and ``extensions`` (lower case, no dot) filter
    every candidate, named or walked. A missing root raises FileNotFoundError, a root that
    cannot be examined OSError, so the caller can stop before any work with a clear message.
    """
    wanted = None if extensions is None else {e.lower().lstrip(".") for e in extensions}
    seen_files: set[tuple[int, int]] = set()
    seen_dirs: set[tuple[int, int]] = set()

    def keep(path: str, status: os.stat_result) -> bool:
        key = (status.st_dev, status.st_ino)
        if key in seen_files or status.st_size < min_size:
            return False
        if wanted is not None and os.path.splitext(path)[1].lower().lstrip(".") not in wanted:
            return False
        seen_files.add(key)
        return True

    for root in roots:
        try:
            status = os.stat(root)
        except FileNotFoundError:
            raise FileNotFoundError(f"no such file or folder: {root}") from None
        except OSError as error:
            raise OSError(f"cannot read {root}: {error.strerror or error}") from None
        if stat.S_ISDIR(status.st_mode):
            seen_dirs.add((status.st_dev, status.st_ino))
            yield from _walk(root, recursive, follow_links, seen_dirs, keep)
        elif stat.S_ISREG(status.st_mode):
            if keep(root, status):
                yield root
        else:
            raise OSError(f"not a regular file or folder: {root}")


def _walk(
    folder: str,
    recursive: bool,
    follow_links: bool,
    seen_dirs: set[tuple[int, int]],
    keep: Callable[[str, os.stat_result], bool],
) -> Iterator[str]:
    try:
        entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
    except OSError:
        return
    subfolders = []
    for entry in entries:
        if _is_hidden(entry.name):
            continue
        try:
            if entry.is_symlink() and not follow_links:
                continue
            status = entry.stat()  # follows a link: only reached with follow_links
        except OSError:  # a dangling link, a loop of links, a file gone meanwhile
            continue
        if stat.S_ISREG(status.st_mode):
            if keep(entry.path, status):
                yield entry.path
        elif stat.S_ISDIR(status.st_mode) and recursive:
            key = (status.st_dev, status.st_ino)
            if key not in seen_dirs:
                seen_dirs.add(key)
                subfolders.append(entry.path)
    for subfolder in subfolders:
        yield from _walk(subfolder, recursive, follow_links, seen_dirs, keep)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


def hash_files(
    paths: Sequence[str],
    jobs: int | None = None,
    progress_stream: TextIO | None = None,
    *,
    algorithm: str = DEFAULT_ALGORITHM,
    rotations: bool = False,
    keep_low_quality: bool = False,
) -> tuple[list[HashedFile], list[HashFailure]]:
    """Hashes ``paths`` (in parallel when worth it); results keep the order of ``paths``.

    Files whose PDQ quality is below the minimum come back among the failures, as
    :class:`LowQuality`, unless ``keep_low_quality``. ImportError (with what to install) when
    ``algorithm`` needs a package that is missing."""
    if not paths:
        return [], []
    require_algorithm(algorithm)
    jobs = default_jobs() if jobs is None else jobs
    stream = progress_stream if progress_stream is not None else sys.stderr
    hashed: list[HashedFile] = []
    failed: list[HashFailure] = []
    results: Iterable[HashedFile | HashFailure]
    one: Callable[[str], HashedFile | HashFailure] = hash_file
    if algorithm != DEFAULT_ALGORITHM or rotations:
        one = functools.partial(hash_file, algorithm=algorithm, rotations=rotations)
    with contextlib.ExitStack() as stack:
        if jobs <= 1 or len(paths) < PARALLEL_MIN_FILES:
            results = map(one, paths)
        else:
            pool = stack.enter_context(_worker_pool(jobs, algorithm))
            # Chunks amortise the pickling round trip without starving workers at the end.
            chunksize = max(1, min(4, len(paths) // (jobs * 8)))
            # map submits every chunk now: the workers are started before the progress bar
            # (and its monitoring thread) exists.
            results = pool.map(one, paths, chunksize=chunksize)
        # Drawn only on a terminal: a redirected stderr gets the report's lines and nothing
        # else.
        progress = stack.enter_context(_progress_bar(len(paths), stream))
        for result in results:
            _collect(result, hashed, failed, keep_low_quality)
            progress.update()
    return hashed, failed


class _NoProgress:
    def update(self, n: int = 1) -> None:
        pass


def _progress_bar(total: int, stream: TextIO) -> contextlib.AbstractContextManager[Any]:
    """tqdm's bar on a terminal, without its monitoring thread (which outlives the bar, even
    a disabled one, and would keep the next :func:`hash_files` from forking its workers):
    the bar is updated after every file, so nothing needs watching."""
    if not _is_terminal(stream):
        return contextlib.nullcontext(_NoProgress())
    from tqdm import tqdm

    class Bar(tqdm):  # type: ignore[type-arg,misc]
        monitor_interval = 0

    return Bar(  # type: ignore[no-any-return]
        total=total, desc="hashing", unit="file", file=stream, leave=False, mininterval=0.1
    )


def _worker_pool(jobs: int, algorithm: str = DEFAULT_ALGORITHM) -> Any:
    """A process pool of ``jobs`` workers.

    On Linux, when this process runs no other Python thread, the workers are forked from
    it after it has imported what hashing needs (numpy, Pillow and its plugins): each
    worker starts with them instead of importing them itself. With other threads running
    (a program that calls :func:`hash_files` from a thread pool, say), forking could copy a
    lock some thread holds, so the workers are started fresh ("forkserver") instead;
    elsewhere the platform's default is kept (macOS starts workers fresh too).
    """
    import multiprocessing
    import threading
    from concurrent.futures import ProcessPoolExecutor

    context = None
    if sys.platform.startswith("linux"):
        if threading.active_count() == 1:
            context = multiprocessing.get_context("fork")
            _import_for_workers(algorithm)
        else:
            context = multiprocessing.get_context("forkserver")
    return ProcessPoolExecutor(max_workers=jobs, mp_context=context)


def _import_for_workers(algorithm: str = DEFAULT_ALGORITHM) -> None:
    """Everything :func:`hash_file` imports and builds once (forked workers inherit it)."""
    import numpy  # noqa: F401
    from PIL import Image, ImageOps, ImageStat  # noqa: F401

    Image.init()  # every format plugin: a WebP file would load them all in each worker
    register_optional_formats()
    _dct_rows()
    if algorithm == "phash256":
        import imagehash  # noqa: F401
        import scipy.fftpack  # noqa: F401  - imagehash.phash's DCT
    elif algorithm == "pdq":
        _pdqhash()


def _collect(
    result: HashedFile | HashFailure,
    hashed: list[HashedFile],
    failed: list[HashFailure],
    keep_low_quality: bool = False,
) -> None:
    if isinstance(result, HashedFile):
        poor = None if keep_low_quality else low_quality(result)
        if poor is None:
            hashed.append(result)
        else:
            failed.append(poor)
    else:
        failed.append(result)
