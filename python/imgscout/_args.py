"""Argument checks shared by the embedded and the Redis clients.

Python objects (ints, numpy integers, ``imagehash.ImageHash``, str) are turned into the
values the core takes here; text is read by the core's own grammar
(``_core.parse_hash_text``), limits come from ``_core``, and every error is the core's
(``_core.error`` by code), so each face raises the same exception with the same code for the
same input. The rules are in docs/spec.md.
"""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Iterable, Sequence
from typing import Any, NoReturn, Union

import numpy as np
import numpy.typing as npt

from . import _core

MAX_HASH: int = _core.MAX_HASH
#: Ids must fit a signed 64-bit Redis integer.
MAX_ID: int = _core.MAX_ID
#: Hashes have 64 bits, so larger radii act as this one.
MAX_RADIUS: int = _core.MAX_RADIUS
DEFAULT_SYNC_THRESHOLD: int = _core.DEFAULT_SYNC_THRESHOLD
MAX_SYNC_THRESHOLD: int = _core.MAX_SYNC_THRESHOLD
#: Rows one in-process answer may hold unless told otherwise, and rows per page of a walk.
DEFAULT_MAX_ROWS: int = _core.DEFAULT_MAX_ROWS
DEFAULT_PAGE_ROWS: int = _core.DEFAULT_PAGE_ROWS
#: The largest page a cursor walk asks for at once.
MAX_PAGE_ROWS = 2**32

#: What the public API accepts as a hash (``imagehash.ImageHash`` is matched by shape).
HashLike = Union[int, str, Any]
#: Many hashes (a sequence or a numpy integer array), or one hash as a batch of one.
HashesLike = Union["npt.ArrayLike", Sequence[HashLike], HashLike]
#: The id that pads a short row of an array answer (``knn_arrays``); no entry has it.
NO_ID: int = _core.NO_ID
Title = Union[str, bytes]

_HASH_FORMS = (
    "an int 0..2**64-1, decimal text, 0x-prefixed hex, 16 hex digits with a letter among "
    "them (as str(imagehash.phash(image)) prints) or a 64-bit imagehash.ImageHash"
)


def fail(code: str, detail: object = None) -> NoReturn:
    """Raises the core's exception for ``code`` (see docs/spec.md), with ``detail``."""
    raise _core.error(code, detail)


def _as_integer(value: object) -> int | None:
    """``value`` as an int if it is an integer (Python or numpy) but not a bool, else None."""
    if isinstance(value, (bool, np.bool_)):
        return None
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        return None


def parse_hash(value: HashLike) -> int:
    """A 64-bit hash as an int, from any form the API accepts; ValueError names bad input."""
    number = _as_integer(value)
    if number is not None:
        if 0 <= number <= MAX_HASH:
            return number
    elif isinstance(value, str):
        parsed = _core.parse_hash_text(value)
        if parsed is not None:
            return parsed
    else:
        bits = getattr(value, "hash", None)
        if isinstance(bits, np.ndarray) and bits.size == 64:
            # imagehash prints its bits row by row, most significant first: do the same.
            return int.from_bytes(np.packbits(bits.astype(bool).ravel()).tobytes(), "big")
    if isinstance(value, (bytes, bytearray, memoryview)) and len(bytes(value)) == 8:
        return int.from_bytes(bytes(value), "big")
    if isinstance(value, np.ndarray) and value.dtype == np.uint8 and value.shape == (8,):
        return int.from_bytes(value.tobytes(), "big")
    given = _width_of(value)
    if given is not None and given != 64:
        _wrong_width(value, given, 64)
    fail("invalid-hash", f"{value!r} (expected {_HASH_FORMS})")


def _width_of(value: object) -> int | None:
    """The width of a hash of a wider form (hex text, bytes, uint8 bytes, ImageHash), if any."""
    if isinstance(value, str):
        return _width_of_text(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        size = len(bytes(value)) * 8
    elif isinstance(value, np.ndarray) and value.dtype == np.uint8 and value.ndim == 1:
        size = value.size * 8
    else:
        image_bits = getattr(value, "hash", None)
        size = image_bits.size if isinstance(image_bits, np.ndarray) else 0
    return size if size in WIDTHS else None


def format_hash(value: HashLike) -> str:
    """The 16-hex-digit form of a hash, as ``str(imagehash.phash(image))`` prints it."""
    return f"{parse_hash(value):016x}"


def parse_hashes(values: npt.ArrayLike | Iterable[HashLike]) -> npt.NDArray[np.uint64]:
    """Many hashes as a uint64 array; integer arrays are range-checked without a Python loop."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "ui" and values.ndim == 1:
        if values.dtype != np.uint64 and values.size and (values.min() < 0):
            bad = values[values < 0][0]
            fail("invalid-hash", f"{bad!r} (expected {_HASH_FORMS})")
        return np.ascontiguousarray(values, dtype=np.uint64)
    if isinstance(values, np.ndarray) and values.dtype == np.uint8 and values.ndim == 2:
        if values.shape[1] == 8:
            # Rows of bytes in text order, as wider codes are given: big-endian words.
            return np.ascontiguousarray(values).view(">u8").ravel().astype(np.uint64)
        _wrong_row_width(values.shape[1], 64)
    if isinstance(values, (str, bytes)):
        raise ValueError(f"expected a sequence of hashes, got {values!r}")
    parsed = [parse_hash(value) for value in values]  # type: ignore[union-attr]
    return np.array(parsed, dtype=np.uint64)


#: Code widths an index may have.
WIDTHS = (64, 128, 256)


def parse_bits(value: object) -> int:
    """A code width: 64, 128 or 256."""
    number = _as_integer(value)
    if number not in WIDTHS:
        fail("invalid-bits", f"{value!r} (expected 64, 128 or 256)")
    return number  # type: ignore[return-value]


def _wide_forms(bits: int) -> str:
    return (
        f"{bits // 4} hex digits (PDQ's text form, 0x prefix allowed), {bits // 8} bytes, an int "
        f"0..2**{bits}-1, a uint8 array of {bits // 8} bytes or a {bits}-bit imagehash.ImageHash"
    )


def _width_of_text(text: str) -> int | None:
    """The width a text of hex digits would have, if it is one."""
    digits = text[2:] if text[:2] in ("0x", "0X") else text
    # isascii and isalnum first: bytes.fromhex alone would accept spaces between bytes.
    if len(digits) * 4 not in WIDTHS or not (digits.isascii() and digits.isalnum()):
        return None
    try:
        bytes.fromhex(digits)
    except ValueError:
        return None
    return len(digits) * 4


def _wrong_width(value: object, given: int, bits: int) -> NoReturn:
    fail("invalid-hash", f"{value!r} is a {given}-bit hash; this index holds {bits}-bit hashes")


def parse_wide_hash(value: HashLike, bits: int) -> bytes:
    """A hash of ``bits`` (128 or 256) as its bytes in text order (byte 0 is the first two hex
    digits: FAISS's and ThreatExchange's layout). A hash of another width is an error that
    names both."""
    size = bits // 8
    number = _as_integer(value)
    if number is not None:
        if 0 <= number < 1 << bits:
            return number.to_bytes(size, "big")
    elif isinstance(value, str):
        given = _width_of_text(value)
        if given == bits:
            return bytes.fromhex(value[2:] if value[:2] in ("0x", "0X") else value)
        if given is None and _core.parse_hash_text(value) is not None:
            _wrong_width(value, 64, bits)
    elif isinstance(value, (bytes, bytearray, memoryview)):
        if len(bytes(value)) == size:
            return bytes(value)
    elif isinstance(value, np.ndarray):
        if value.dtype == np.uint8 and value.shape == (size,):
            return value.tobytes()
    else:
        image_bits = getattr(value, "hash", None)
        if isinstance(image_bits, np.ndarray) and image_bits.size == bits:
            # imagehash prints its bits row by row, most significant first: the same order.
            return np.packbits(image_bits.astype(bool).ravel()).tobytes()
    given = _width_of(value)
    if given is not None and given != bits:
        _wrong_width(value, given, bits)
    fail("invalid-hash", f"{value!r} (expected {_wide_forms(bits)})")


def _wrong_row_width(columns: int, bits: int) -> NoReturn:
    """Rows of ``columns`` bytes given to an index of ``bits``."""
    if columns * 8 in WIDTHS:
        fail(
            "invalid-hash",
            f"rows of {columns} bytes are {columns * 8}-bit hashes; "
            f"this index holds {bits}-bit hashes",
        )
    fail("invalid-hash", f"rows of {columns} bytes (expected {bits // 8})")


def parse_wide_hashes(values: Any, bits: int) -> npt.NDArray[np.uint8]:
    """Many hashes of ``bits`` as a ``(n, bits // 8)`` uint8 array in text order; such an
    array (FAISS's binary layout) passes without a Python loop."""
    size = bits // 8
    if isinstance(values, np.ndarray) and values.dtype == np.uint8 and values.ndim == 2:
        if values.shape[1] != size:
            _wrong_row_width(values.shape[1], bits)
        return np.ascontiguousarray(values)
    if isinstance(values, (str, bytes)):
        raise ValueError(f"expected a sequence of hashes, got {values!r}")
    rows = [parse_wide_hash(value, bits) for value in values]
    return np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(len(rows), size).copy()


def as_wide_batch(hashes: Any, bits: int) -> Any:
    """A single hash of ``bits`` as a batch of one; many hashes as they are."""
    if isinstance(hashes, (int, str, bytes, bytearray, memoryview, np.integer)) or hasattr(
        hashes, "hash"
    ):
        return [hashes]
    if isinstance(hashes, np.ndarray) and hashes.dtype == np.uint8 and hashes.ndim == 1:
        return [hashes] if hashes.size == bits // 8 else hashes.reshape(1, -1)
    return hashes


def parse_id(value: object) -> int:
    number = _as_integer(value)
    if number is None or not 0 <= number <= MAX_ID:
        fail("invalid-id", f"{value!r} (ids are integers 0..{MAX_ID})")
    return number


def parse_ids(values: npt.ArrayLike | Iterable[object]) -> npt.NDArray[np.uint64]:
    if isinstance(values, np.ndarray) and values.dtype.kind in "ui" and values.ndim == 1:
        if values.size and (values.min() < 0 or values.max() > MAX_ID):
            bad = values[(values < 0) | (values > MAX_ID)][0]
            fail("invalid-id", f"{bad!r} (ids are integers 0..{MAX_ID})")
        return np.ascontiguousarray(values, dtype=np.uint64)
    if isinstance(values, (str, bytes)):
        raise ValueError(f"expected a sequence of ids, got {values!r}")
    return np.array([parse_id(value) for value in values], dtype=np.uint64)  # type: ignore[union-attr]


def parse_radius(value: object, bits: int = MAX_RADIUS) -> int:
    """A radius as an int 0..bits: decimals lose their fraction and larger radii act as the
    code width (64 unless told)."""
    if type(value) is int and value >= 0:  # the common case, without the general checks
        return min(value, bits)
    number = _as_integer(value)
    if number is None and isinstance(value, numbers.Real) and not isinstance(value, bool):
        real = float(value)
        if math.isfinite(real) and real >= 0:
            number = int(real)
    if number is None or number < 0:
        fail("invalid-radius", f"{value!r} (expected a non-negative number)")
    return min(number, bits)


def parse_count(value: object, what: str) -> int:
    """A non-negative integer: ``what`` is ``"k"`` or ``"limit"``."""
    number = _as_integer(value)
    if number is None or number < 0:
        fail(f"invalid-{what}", f"{value!r} (expected a non-negative integer)")
    return number


def parse_knn_width(value: object, queries: int, max_rows: int) -> int:
    """``k`` of a ``knn_arrays`` batch of ``queries`` hashes. Refused with ``too-many-rows``
    when the answer would hold more than ``max_rows`` cells, and when one row of ``k`` cells
    would: the arrays are ``k`` wide even for an empty batch."""
    count = parse_count(value, "k")
    if count > max_rows or count * queries > max_rows:
        fail("too-many-rows", max_rows)
    return count


def parse_max_rows(value: object) -> int:
    number = _as_integer(value)
    if number is None or number < 1:
        fail("invalid-max-rows", f"{value!r} (expected a positive integer)")
    return number


def parse_page_size(value: object) -> int:
    number = _as_integer(value)
    if number is None or not 1 <= number <= MAX_PAGE_ROWS:
        fail("invalid-count", f"{value!r} (a page size must be an integer 1..2**32)")
    return number


def parse_sync_threshold(value: object) -> int:
    number = _as_integer(value)
    if number is None or not 1 <= number <= MAX_SYNC_THRESHOLD:
        fail("invalid-sync-threshold", f"{value!r} (expected an integer 1..{MAX_SYNC_THRESHOLD})")
    return number


def encode_title(title: Title) -> bytes:
    """Titles are stored as UTF-8. Strings that came from undecodable bytes (file names read
    with ``surrogateescape``, titles another client wrote) encode back to those bytes."""
    if isinstance(title, str):
        try:
            return title.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError as error:
            raise _core.error("invalid-title", f"{title!r} is not encodable as UTF-8") from error
    if isinstance(title, (bytes, bytearray, memoryview)):
        return bytes(title)
    raise TypeError(f"a title must be str or bytes, not {type(title).__name__}")


def decode_title(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def encode_titles(titles: Sequence[Title] | Iterable[Title]) -> list[bytes]:
    if isinstance(titles, (str, bytes)):
        raise TypeError("titles must be a sequence of titles, not a single title")
    return [encode_title(title) for title in titles]


def check_lengths(hashes: int, titles: int, ids: Sequence[int] | None) -> None:
    if titles != hashes or (ids is not None and len(ids) != hashes):
        counts = f"{hashes} hashes, {titles} titles"
        if ids is not None:
            counts += f", {len(ids)} ids"
        raise ValueError(f"hashes, titles and ids must have the same length ({counts})")


def as_batch(hashes: Any) -> Any:
    """A single hash (int, numpy integer, text, ``ImageHash``) as a batch of one; many
    hashes as they are."""
    if isinstance(hashes, (int, str, np.integer)) or hasattr(hashes, "hash"):
        return [hashes]
    if isinstance(hashes, np.ndarray) and hashes.ndim == 0:
        return hashes.reshape(1)
    return hashes


def parse_threads(value: object) -> int:
    number = _as_integer(value)
    if number is None or number < 1:
        fail("invalid-threads", f"{value!r} (expected a positive integer)")
    return number


def parse_answer_ids(values: Any) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.bool_]]:
    """Ids as an array answer holds them: the ids, and where the padding id (-1) was."""
    if isinstance(values, np.ndarray) and values.dtype.kind == "i" and values.ndim == 1:
        padding = values == NO_ID
        return parse_ids(values[~padding]), padding
    listed = list(values)
    padding = np.array([_as_integer(v) == NO_ID for v in listed], dtype=bool)
    return parse_ids([v for v, pad in zip(listed, padding) if not pad]), padding


def with_padding(found: list[Any], padding: npt.NDArray[np.bool_]) -> list[Any]:
    """``found`` (one value per id that is not padding) with None at the padding places."""
    if not padding.any():
        return found
    values = iter(found)
    return [None if pad else next(values) for pad in padding.tolist()]
