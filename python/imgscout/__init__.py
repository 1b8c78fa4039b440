"""imgscout: exact near-duplicate search over 64-bit perceptual hashes.

``Index`` keeps the index in this process (and in a file with ``save``/``load``);
``RedisIndex`` talks to a Redis server running the imgscout module. Both take the same
arguments, return the same ``Match`` tuples and raise the same exceptions.
"""

from __future__ import annotations

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
from .index import Index
from .redis_index import RedisIndex
from .sharded import ShardedIndex

__all__ = [
    "MAX_HASH",
    "MAX_ID",
    "MAX_RADIUS",
    "AnswerTooLargeError",
    "Entry",
    "IdExistsError",
    "IdsExhaustedError",
    "ImgscoutError",
    "Index",
    "InvalidArgumentError",
    "InvalidDataError",
    "Match",
    "NoSuchIdError",
    "Pair",
    "RedisIndex",
    "SearchIndex",
    "ShardedIndex",
    "format_hash",
    "parse_hash",
]
