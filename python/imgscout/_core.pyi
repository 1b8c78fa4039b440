"""Stubs of the PyO3 extension. Arguments arrive validated by the pure-Python layer; the
extension owns the error vocabulary (codes, classes, messages) and the hash text grammar,
both stated in docs/spec.md."""

from os import PathLike
from typing import Any

import numpy as np
import numpy.typing as npt

MAX_HASH: int
#: The threads "every core" means here.
ALL_CORES: int
#: The id and the distance that pad a short row of ``knn_arrays``.
NO_ID: int
NO_DISTANCE: int
MAX_ID: int
MAX_RADIUS: int
#: The widest code an index may hold (256 bits).
MAX_CODE_BITS: int
DEFAULT_SYNC_THRESHOLD: int
MAX_SYNC_THRESHOLD: int
DEFAULT_MAX_ROWS: int
DEFAULT_PAGE_ROWS: int

class ImgscoutError(Exception):
    """Base of the errors imgscout raises for a reason it names."""

    #: The stable error code, e.g. ``"invalid-hash"`` (docs/spec.md lists them).
    code: str

class InvalidArgumentError(ImgscoutError, ValueError):
    """An argument that does not parse or is out of range."""

class IdExistsError(ImgscoutError, ValueError):
    """An explicit id that an entry already has."""

class IdsExhaustedError(ImgscoutError, ValueError):
    """The automatic ids are used up; only explicit ids can still be added."""

class NoSuchIdError(ImgscoutError, KeyError):
    """No entry has the id (the exception's argument)."""

class AnswerTooLargeError(ImgscoutError, ValueError):
    """An answer would hold more rows than allowed; nothing was returned."""

class InvalidDataError(ImgscoutError, ValueError):
    """A saved index that is truncated, corrupted or not an index."""

def error(code: str, detail: Any = None) -> ImgscoutError:
    """The exception for ``code``: its message the code's stem, then ``": detail"``; for
    ``"no-such-id"`` the detail is the id, for ``"too-many-rows"`` the row cap."""

def error_for_message(message: str, entry_id: int | None = None) -> ImgscoutError | None:
    """The exception for an error message of another face (a server reply without ``ERR``),
    or None when the message has no imgscout code."""

def error_codes() -> list[tuple[str, str]]:
    """Every error code with its message stem, in docs/spec.md's order."""

def set_answer_classes(match_class: type, pair_class: type) -> None:
    """The classes ``query_fast`` and ``pairs`` build their answers with (``imgscout.Match``,
    ``imgscout.Pair``)."""

def parse_hash_text(text: str) -> int | None:
    """The hash a text names under the spec's grammar, or None."""

def parse_radius_text(text: str, bits: int = 64) -> int | None:
    """The radius (0..bits: more acts as bits) a text names under the spec's grammar, or None."""

def parse_id_text(text: str) -> int | None:
    """The id a text names under the spec's grammar, or None."""

#: One code as the extension takes it: an int for a 64-bit index, ``bits // 8`` bytes in
#: text order (byte 0 = the first two hex digits) for a wider one.
Code = int | bytes
#: Many codes: a ``uint64`` vector (64 bits) or a C-contiguous ``(n, bits // 8)`` ``uint8``
#: matrix (wider).
Codes = npt.NDArray[np.uint64] | npt.NDArray[np.uint8]

class Index:
    """The core index of one code width (64, 128 or 256 bits, fixed at creation)."""

    def __new__(cls, sync_threshold: int = ..., bits: int = 64) -> Index: ...
    @property
    def bits(self) -> int: ...
    @property
    def sync_threshold(self) -> int: ...
    def set_sync_threshold(self, threshold: int) -> None: ...
    @property
    def next_id(self) -> int: ...
    @property
    def pending(self) -> int: ...
    def add(self, hash: Code, title: bytes, id: int | None = None) -> int: ...
    def add_many(
        self,
        hashes: Codes,
        titles: list[bytes],
        ids: npt.NDArray[np.uint64] | None = None,
    ) -> npt.NDArray[np.uint64]: ...
    def sync(self) -> None: ...
    def query(
        self, hash: Code, radius: int, limit: int | None = None, max_rows: int = ...
    ) -> list[tuple[str, int, int]]: ...
    def query_fast(self, hash: object, radius: object, max_rows: int) -> list[Any] | None: ...
    def query_arrays_fast(
        self, hash: object, radius: object, max_rows: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int32]] | None: ...
    def query_many(
        self,
        hashes: Codes,
        radius: int,
        limit: int | None = None,
        max_rows: int = ...,
        threads: int = 1,
    ) -> list[list[tuple[str, int, int]]]: ...
    def query_arrays(
        self,
        hashes: Codes,
        radius: int,
        limit: int | None = None,
        max_rows: int = ...,
        threads: int = 1,
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int32]]: ...
    def knn_arrays(
        self, hashes: Codes, k: int, max_rows: int = ..., threads: int = 1
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int32]]: ...
    def titles(self, ids: npt.NDArray[np.uint64]) -> list[str | None]: ...
    def knn(self, hash: Code, k: int, max_rows: int = ...) -> list[tuple[str, int, int]]: ...
    def lookup(self, id: int) -> str | None: ...
    def contains(self, id: int) -> bool: ...
    def __len__(self) -> int: ...
    def delete(self, id: int) -> None: ...
    def info(self) -> list[tuple[str, int | str]]: ...
    def pairs(self, radius: int, max_rows: int = ..., threads: int = 1) -> list[Any]: ...
    def pairs_arrays(
        self, radius: int, max_rows: int = ..., threads: int = 1
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int32]]: ...
    def pairs_page(
        self, radius: int, cursor: str, count: int
    ) -> tuple[list[tuple[int, int, int]], str | None]: ...
    def entries(self) -> list[tuple[int, Code, str, bool]]: ...
    def save(self, path: str | bytes | PathLike[str]) -> None: ...
    @staticmethod
    def load(path: str | bytes | PathLike[str]) -> Index: ...
