"""imgscout as the bench drives it: the embedded ``imgscout.Index`` of the Python package.

Titles are ``str(id)`` and ids are given explicitly (the positions 0..n-1), so an answer can be
checked title by title against the brute-force answer.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

#: The core's largest sync threshold: add_many + one sync builds the index in one batch.
BULK_SYNC_THRESHOLD = 10_000_000


def load_module() -> Any:
    import imgscout

    return imgscout


def titles_for(ids: np.ndarray) -> list[str]:
    return [str(i) for i in ids.tolist()]


def build(
    module: Any,
    data: np.ndarray,
    ids: np.ndarray,
    titles: list[str],
    sync_threshold: int = BULK_SYNC_THRESHOLD,
) -> tuple[Any, float, float]:
    """A synced index of ``data``; returns (index, add_many seconds, sync seconds). It uses
    one thread, as every peer here does; the all-threads rows set ``index.threads``."""
    index = module.Index(sync_threshold=sync_threshold, threads=1)
    started = time.perf_counter()
    assigned = index.add_many(data, titles, ids)
    added = time.perf_counter()
    index.sync()
    synced = time.perf_counter()
    if not np.array_equal(np.asarray(assigned, dtype=np.int64), ids.astype(np.int64)):
        raise AssertionError("add_many did not return the ids it was given")
    return index, added - started, synced - added


def pairs_as_rows(pairs: Any) -> np.ndarray:
    """``Index.pairs`` output as (a, b, distance) int64 rows, whatever sequence shape it has."""
    if isinstance(pairs, np.ndarray):
        if pairs.dtype.names:
            return np.stack(
                [pairs[name].astype(np.int64) for name in pairs.dtype.names[:3]], axis=1
            )
        return pairs.astype(np.int64).reshape(-1, 3)
    count = len(pairs)
    flat = np.fromiter(
        (value for pair in pairs for value in tuple(pair)[:3]), dtype=np.int64, count=3 * count
    )
    return flat.reshape(count, 3)
