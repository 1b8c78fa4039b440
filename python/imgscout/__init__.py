"""imgscout: exact near-duplicate search over 64-bit perceptual hashes.

``Index`` keeps the index in this process (and in a file with ``save``/``load``);
``RedisIndex`` talks to a Redis server running the imgscout module. Both take the same
arguments, return the same ``Match`` tuples and raise the same exceptions.
``find_duplicates`` groups the near-duplicate images of folders, as ``imgscout dupes`` does.

The names are imported on first use: ``import imgscout`` alone loads neither numpy nor redis,
so the command-line tool starts fast when it needs neither (a re-run over cached hashes).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._args import MAX_HASH, MAX_ID, MAX_RADIUS, format_hash, parse_hash
    from ._core import (
        AnswerTooLargeError,
        IdExistsError,
        IdsExhaustedError,
        ImgscoutError,
        InvalidArgumentError,
        InvalidDataError,
        NoSuchIdError,
    )
    from ._types import Entry, Match, Pair, SearchIndex
    from .dedup import DuplicateGroup, Duplicates, Member, UsageError, find_duplicates
    from .index import Index
    from .redis_index import RedisIndex
    from .sharded import ShardedIndex

#: Where each public name lives.
_HOMES = {
    "MAX_HASH": "._args",
    "MAX_ID": "._args",
    "MAX_RADIUS": "._args",
    "format_hash": "._args",
    "parse_hash": "._args",
    "AnswerTooLargeError": "._core",
    "IdExistsError": "._core",
    "IdsExhaustedError": "._core",
    "ImgscoutError": "._core",
    "InvalidArgumentError": "._core",
    "InvalidDataError": "._core",
    "NoSuchIdError": "._core",
    "Entry": "._types",
    "Match": "._types",
    "Pair": "._types",
    "SearchIndex": "._types",
    "DuplicateGroup": ".dedup",
    "Duplicates": ".dedup",
    "Member": ".dedup",
    "UsageError": ".dedup",
    "find_duplicates": ".dedup",
    "Index": ".index",
    "RedisIndex": ".redis_index",
    "ShardedIndex": ".sharded",
}

__all__ = [
    "MAX_HASH",
    "MAX_ID",
    "MAX_RADIUS",
    "AnswerTooLargeError",
    "DuplicateGroup",
    "Duplicates",
    "Entry",
    "IdExistsError",
    "IdsExhaustedError",
    "ImgscoutError",
    "Index",
    "InvalidArgumentError",
    "InvalidDataError",
    "Match",
    "Member",
    "NoSuchIdError",
    "Pair",
    "RedisIndex",
    "SearchIndex",
    "ShardedIndex",
    "UsageError",
    "find_duplicates",
    "format_hash",
    "parse_hash",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home, __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
