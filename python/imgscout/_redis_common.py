"""What the Redis clients (``RedisIndex``, ``ShardedIndex``) share: calling the module,
translating its errors into the core's exceptions, and decoding its replies.

Replies are read as bytes whatever the client's ``decode_responses`` says: titles are
binary-safe on the server and are decoded here the way the embedded index decodes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NoReturn

import numpy as np
import numpy.typing as npt
import redis
from redis.client import NEVER_DECODE

from . import _core
from ._args import (
    MAX_ID,
    as_batch,
    as_wide_batch,
    decode_title,
    fail,
    parse_count,
    parse_hash,
    parse_hashes,
    parse_wide_hash,
    parse_wide_hashes,
)
from ._types import Entry, Match, Pair

#: Keyword arguments of ``execute_command`` that keep the reply undecoded.
RAW = {NEVER_DECODE: True}

#: The figures of ``imgscout.info`` that are text; every other one is an unsigned integer.
#: The equivalence tests compare ``info()`` with the embedded index's, so a drift shows.
TEXT_INFO = frozenset({"segment_sizes", "multi_index_fields", "plan", "kernel"})


def text(value: bytes | str) -> str:
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value


def error_text(error: redis.ResponseError) -> str:
    """The module's message: without redis-py's pipeline prefix and the ``ERR`` code."""
    message = str(error)
    # redis-py prefixes pipeline errors with "Command # n (...) of pipeline caused error: ".
    _, marker, after = message.partition(" of pipeline caused error: ")
    if marker:
        message = after
    return message[4:] if message.startswith("ERR ") else message


def translated(error: redis.ResponseError, entry_id: int | None = None) -> BaseException:
    """The core's exception for the module's error (chosen by its code, as the embedded
    index raises it); an error without an imgscout code as it came."""
    found: BaseException | None = _core.error_for_message(error_text(error), entry_id)
    return error if found is None else found


def raise_translated(error: redis.ResponseError, entry_id: int | None = None) -> NoReturn:
    exception = translated(error, entry_id)
    if exception is error:
        raise error
    raise exception from None


def call(client: Any, *args: Any, entry_id: int | None = None) -> Any:
    """One command, its reply undecoded, its error translated."""
    try:
        return client.execute_command(*args, **RAW)
    except redis.ResponseError as error:
        raise_translated(error, entry_id)


def matches(reply: list[list[Any]]) -> list[Match]:
    return [Match(decode_title(title), int(id), int(distance)) for title, id, distance in reply]


def pair(row: Sequence[Any]) -> Pair:
    a, b, distance = row
    return Pair(int(a), int(b), int(distance))


def pair_arrays(
    rows: Sequence[Sequence[Any]],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int32]]:
    """``(a, b, distance)`` rows (replies or :class:`Pair`) as ``pairs_arrays`` returns them."""
    table = np.array(rows, dtype=np.int64).reshape(len(rows), 3)
    return (
        np.ascontiguousarray(table[:, 0]),
        np.ascontiguousarray(table[:, 1]),
        table[:, 2].astype(np.int32),
    )


def pair_order(pair: Pair) -> tuple[int, int, int]:
    return (pair.distance, pair.a, pair.b)


def entry(row: Sequence[Any], bits: int = 64) -> Entry:
    entry_id, hash_value, title, pending = row
    # A 64-bit hash comes as a decimal string (it may not fit a signed integer reply), a
    # wider one as hex text, which Entry keeps as the embedded index gives it.
    code: int | str = int(hash_value) if bits == 64 else text(hash_value)
    return Entry(int(entry_id), code, decode_title(title), bool(int(pending)))


def hash_argument(value: Any, bits: int) -> int | str:
    """One hash as the module reads it at ``bits``: the int at 64 bits, hex text when wider
    (the forms ``imgscout.entries`` and the AOF use)."""
    return parse_hash(value) if bits == 64 else parse_wide_hash(value, bits).hex()


def hash_arguments(values: Any, bits: int) -> list[Any]:
    """Many hashes as :func:`hash_argument` sends them; arrays pass without a Python loop
    until the texts are made."""
    if bits == 64:
        return parse_hashes(values).tolist()
    rows = parse_wide_hashes(values, bits)
    joined = rows.tobytes().hex()
    size = 2 * rows.shape[1]
    return [joined[start : start + size] for start in range(0, len(joined), size)]


def batch_arguments(values: Any, bits: int) -> list[Any]:
    """A batch of hashes (or one hash as a batch of one) as :func:`hash_arguments` sends it."""
    batch = as_batch(values) if bits == 64 else as_wide_batch(values, bits)
    return hash_arguments(batch, bits)


def check_width(client: Any, key: Any, bits: int) -> None:
    """Raises ``invalid-bits`` when ``key`` exists and holds codes of another width than
    ``bits`` (for a connection that may read the key but not create it)."""
    held = int(info(call(client, "imgscout.info", key))["bits"])
    if held != bits and int(call(client, "exists", key)):
        fail("invalid-bits", f"{bits} asked, but this index holds {held}-bit codes")


def width_options(bits: int) -> tuple[Any, ...]:
    """The ``imgscout.config`` option that creates a key of ``bits`` (none at 64, the width a
    key has unless told)."""
    return () if bits == 64 else ("BITS", bits)


def info(reply: Any) -> dict[str, Any]:
    """``imgscout.info``'s map (RESP3) or flat list (RESP2) as ``Index.info()``'s dict."""
    items = list(reply.items()) if isinstance(reply, dict) else list(zip(reply[::2], reply[1::2]))
    decoded: dict[str, Any] = {}
    for raw_name, value in items:
        name = text(raw_name)
        # Integers above 2**63 - 1 (next_id once automatic ids are used up) come as a RESP3
        # big number or a RESP2 bulk string of digits.
        decoded[name] = text(value) if name in TEXT_INFO else int(value)
    return decoded


def limit_args(limit: int | None) -> tuple[Any, ...]:
    if limit is None:
        return ()
    # The server reads the limit as a signed 64-bit integer; more than that means "all".
    return ("LIMIT", min(parse_count(limit, "limit"), MAX_ID))


def add_arguments(
    values: Sequence[int], titles: Sequence[bytes], ids: Sequence[int] | None
) -> list[Any]:
    """The arguments of ``imgscout.madd`` after the key: pairs, or ``IDS`` and triples."""
    arguments: list[Any] = [] if ids is None else ["IDS"]
    if ids is None:
        for value, title in zip(values, titles):
            arguments += (value, title)
    else:
        for value, title, entry_id in zip(values, titles, ids):
            arguments += (value, title, entry_id)
    return arguments


def for_each_key(client: Any, command: str, names: Sequence[Any], *args: Any) -> None:
    """One key command (``expire``, ``delete``) per name, in one pipeline; on a cluster the
    pipeline sends each node its keys."""
    pipeline = client.pipeline(transaction=False)
    for name in names:
        getattr(pipeline, command)(name, *args)
    pipeline.execute()


def merged_rows(shard_rows: Sequence[Sequence[Any]], limit: int | None) -> list[int]:
    """Several shards' flat ``[id, distance, ...]`` rows of one query (each in answer order)
    as one flat row list in answer order, cut to ``limit`` rows."""
    if len(shard_rows) == 1:
        flat = [int(value) for value in shard_rows[0]]
        return flat if limit is None else flat[: 2 * limit]
    pairs = sorted(
        (int(rows[r + 1]), int(rows[r])) for rows in shard_rows for r in range(0, len(rows), 2)
    )
    if limit is not None:
        pairs = pairs[:limit]
    return [value for distance, entry_id in pairs for value in (entry_id, distance)]


def range_arrays(
    rows: Sequence[Sequence[Any]],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int32]]:
    """``Index.query_arrays``'s CSR arrays from ``imgscout.mquery``'s flat rows per query."""
    lims = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum([len(row) // 2 for row in rows], out=lims[1:])
    flat = np.fromiter(
        (int(value) for row in rows for value in row), dtype=np.int64, count=2 * int(lims[-1])
    )
    return lims, flat[0::2].copy(), flat[1::2].astype(np.int32)


def knn_arrays(
    rows: Sequence[Sequence[Any]], k: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int32]]:
    """``Index.knn_arrays``'s padded matrices from ``imgscout.mknn``'s flat rows per query."""
    ids = np.full((len(rows), k), _core.NO_ID, dtype=np.int64)
    distances = np.full((len(rows), k), _core.NO_DISTANCE, dtype=np.int32)
    for i, row in enumerate(rows):
        found = np.array([int(value) for value in row[: 2 * k]], dtype=np.int64)
        ids[i, : len(found) // 2] = found[0::2]
        distances[i, : len(found) // 2] = found[1::2]
    return ids, distances
