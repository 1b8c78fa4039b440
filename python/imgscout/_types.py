"""Result types and the interface both backends implement."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, Union

from . import _core

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from ._args import HashLike, Title


class Match(NamedTuple):
    """One query answer. Queries return these sorted by distance, then id."""

    title: str
    id: int
    distance: int


class Pair(NamedTuple):
    """One answer of the self-join ``Index.pairs``: entries ``a < b`` within the radius."""

    a: int
    b: int
    distance: int


# The extension builds answers as these tuples itself (Index.query's fast path, pairs).
_core.set_answer_classes(Match, Pair)


class Entry(NamedTuple):
    """An entry as iterating an ``Index`` yields it."""

    id: int
    #: An int for 64-bit indexes, hex text (PDQ's form) for wider ones.
    hash: int | str
    title: str
    #: Waiting for the next sync: ``lookup`` finds it, queries do not yet.
    pending: bool


InfoValue = Union[int, str]


class SearchIndex(Protocol):
    """What ``Index``, ``RedisIndex`` and ``ShardedIndex`` all offer, for code that takes
    any of them."""

    def add(self, hash: HashLike, title: Title, id: int | None = None) -> int: ...

    def add_many(
        self,
        hashes: Sequence[HashLike] | npt.ArrayLike,
        titles: Sequence[Title],
        ids: Sequence[int] | npt.ArrayLike | None = None,
    ) -> npt.NDArray[np.uint64]: ...

    def sync(self) -> None: ...

    def query(self, hash: HashLike, radius: float, limit: int | None = None) -> list[Match]: ...

    def query_many(
        self, hashes: Sequence[HashLike] | npt.ArrayLike, radius: float
    ) -> list[list[Match]]: ...

    def query_arrays(
        self, hashes: Any, radius: float, limit: int | None = None
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int32]]: ...

    def knn(self, hash: HashLike, k: int) -> list[Match]: ...

    def knn_arrays(
        self, hashes: Any, k: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int32]]: ...

    def lookup(self, id: int) -> str | None: ...

    def titles(self, ids: Sequence[int] | npt.ArrayLike) -> list[str | None]: ...

    def size(self) -> int: ...

    def __len__(self) -> int: ...

    @property
    def pending(self) -> int: ...

    def delete(self, id: int) -> None: ...

    def info(self) -> dict[str, Any]: ...

    def pairs(self, radius: float) -> list[Pair]: ...

    def pairs_arrays(
        self, radius: float
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int32]]: ...

    def iter_pairs(self, radius: float, page_size: int = ...) -> Iterator[Pair]: ...

    def entries(self) -> list[Entry]: ...
