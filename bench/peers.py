"""The systems imgscout is compared with, behind one small interface.

Each peer answers a range query with (ids, distances) arrays in any order; the bench checks them
against the brute-force answer too (a peer that is not exact is reported, not silently used).
"""

from __future__ import annotations

import importlib.util
import sys
import time
import types
from pathlib import Path
from typing import Any

import numpy as np
from tests.support.reference import distances

RangeAnswer = tuple[np.ndarray, np.ndarray]


def package_available(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def as_bytes(hashes: np.ndarray) -> np.ndarray:
    """uint64 hashes as the (n, 8) uint8 rows FAISS binary indexes take (byte order is the same
    for data and queries, so Hamming distances are unchanged)."""
    return np.ascontiguousarray(hashes, dtype=np.uint64).view(np.uint8).reshape(-1, 8)


class NumpyScan:
    """A numpy ``bitwise_count`` scan over the contiguous uint64 array."""

    name = "numpy scan"

    def __init__(self, data: np.ndarray, ids: np.ndarray) -> None:
        self.data = data
        self.ids = ids

    def range(self, query: np.uint64, radius: int) -> RangeAnswer:
        dist = distances(self.data, query)
        where = np.flatnonzero(dist <= radius)
        return self.ids[where], dist[where]


def _split_lims(
    lims: np.ndarray, dist: np.ndarray, labels: np.ndarray, ids: np.ndarray
) -> list[RangeAnswer]:
    return [
        (ids[labels[lims[i] : lims[i + 1]]], dist[lims[i] : lims[i + 1]].astype(np.int64))
        for i in range(len(lims) - 1)
    ]


class FaissRange:
    """FAISS binary index ``range_search``. FAISS keeps distances strictly below the radius it is
    given, so an inclusive radius r is passed as r + 1."""

    def __init__(self, index: Any, name: str, ids: np.ndarray) -> None:
        self.index = index
        self.name = name
        self.ids = ids

    def prepare(self, radius: int) -> None:
        """Hook for per-radius settings (MultiHash's nflip)."""

    def range(self, query: np.uint64, radius: int) -> RangeAnswer:
        _, dist, labels = self.index.range_search(
            as_bytes(np.array([query], np.uint64)), radius + 1
        )
        return self.ids[labels], dist.astype(np.int64)

    def range_batch(self, queries: np.ndarray, radius: int) -> list[RangeAnswer]:
        lims, dist, labels = self.index.range_search(as_bytes(queries), radius + 1)
        return _split_lims(lims, dist, labels, self.ids)

    def knn(self, query: np.uint64, k: int) -> RangeAnswer:
        dist, labels = self.index.search(as_bytes(np.array([query], np.uint64)), k)
        return self.ids[labels[0]], dist[0].astype(np.int64)

    def knn_batch(self, queries: np.ndarray, k: int) -> list[RangeAnswer]:
        dist, labels = self.index.search(as_bytes(queries), k)
        return [(self.ids[labels[i]], dist[i].astype(np.int64)) for i in range(len(queries))]


def faiss_module() -> Any:
    import faiss

    # Single thread: the comparison is one core against one core (the all-threads rows set
    # it for their own calls).
    faiss.omp_set_num_threads(1)
    return faiss


def faiss_flat(data: np.ndarray, ids: np.ndarray) -> tuple[FaissRange, float]:
    faiss = faiss_module()
    started = time.perf_counter()
    index = faiss.IndexBinaryFlat(64)
    index.add(as_bytes(data))
    return FaissRange(index, "FAISS flat", ids), time.perf_counter() - started


class FaissMultiHash(FaissRange):
    """``IndexBinaryMultiHash`` with ``nhash`` tables of ``bits`` bits. Exact when ``nflip`` is at
    least floor(r / nhash): if two hashes differ in at most r bits, one of the nhash substrings
    differs in at most floor(r / nhash) of them (pigeonhole), so probing every bucket within that
    many flips finds every answer. The bench verifies this against the brute force anyway."""

    def __init__(self, index: Any, nhash: int, bits: int, ids: np.ndarray) -> None:
        super().__init__(index, f"FAISS MultiHash {nhash}x{bits}", ids)
        self.nhash = nhash

    def prepare(self, radius: int) -> None:
        self.index.nflip = radius // self.nhash


def faiss_multihash(
    data: np.ndarray, ids: np.ndarray, nhash: int, bits: int
) -> tuple[FaissMultiHash, float]:
    faiss = faiss_module()
    started = time.perf_counter()
    index = faiss.IndexBinaryMultiHash(64, nhash, bits)
    index.add(as_bytes(data))
    return FaissMultiHash(index, nhash, bits, ids), time.perf_counter() - started


class BkTree:
    """pybktree over (hash, id) tuples; the distance is Python's ``int.bit_count`` of the XOR (the
    fastest pure-Python popcount, faster than pybktree's own ``hamming_distance``)."""

    name = "pybktree"

    def __init__(self, data: np.ndarray, ids: np.ndarray) -> None:
        import pybktree

        items = list(zip(data.tolist(), ids.tolist(), strict=True))
        self.tree = pybktree.BKTree(_item_distance, items)

    def range(self, query: np.uint64, radius: int) -> RangeAnswer:
        found = self.tree.find((int(query), -1), radius)
        ids = np.fromiter((item[1] for _, item in found), dtype=np.int64, count=len(found))
        dist = np.fromiter((d for d, _ in found), dtype=np.int64, count=len(found))
        return ids, dist


def _item_distance(a: tuple[int, int], b: tuple[int, int]) -> int:
    return (a[0] ^ b[0]).bit_count()


def imagededup_phash_class() -> type:
    """imagededup's ``PHash`` (whose ``find_duplicates`` runs the self-join).

    ``imagededup.methods`` and ``imagededup.utils`` import their CNN code, which needs torch (a
    multi-gigabyte dependency the hashing path never uses). Without torch, those two package
    ``__init__`` files are bypassed with empty package modules pointing at the real folders, so
    ``imagededup/methods/hashing.py`` and the search code it calls load unchanged.
    """
    import imagededup

    if not package_available("torch"):
        root = Path(imagededup.__file__).parent
        for sub in ("methods", "utils"):
            name = f"imagededup.{sub}"
            if name not in sys.modules:
                package = types.ModuleType(name)
                package.__path__ = [str(root / sub)]
                sys.modules[name] = package
    from imagededup.methods.hashing import PHash

    return PHash


def imagededup_self_join(
    data: np.ndarray, ids: np.ndarray, radius: int
) -> tuple[np.ndarray, float]:
    """``find_duplicates(encoding_map=..., search_method='brute_force_cython')`` with one distance
    worker; returns its pairs as (smaller id, larger id, distance) rows and the seconds it took
    (the call only: building the encoding map is not counted)."""
    import logging
    import warnings

    phash_class = imagededup_phash_class()
    logging.getLogger("imagededup").setLevel(logging.WARNING)
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("imagededup"):
            logging.getLogger(name).setLevel(logging.WARNING)
    encoding_map = {
        str(i): format(int(h), "016x") for i, h in zip(ids.tolist(), data.tolist(), strict=True)
    }
    hasher = phash_class(verbose=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        started = time.perf_counter()
        found = hasher.find_duplicates(
            encoding_map=encoding_map,
            max_distance_threshold=radius,
            scores=True,
            search_method="brute_force_cython",
            num_dist_workers=1,
        )
        elapsed = time.perf_counter() - started
    rows = [
        (int(key), int(other), int(dist))
        for key, partners in found.items()
        for other, dist in partners
        if int(key) < int(other)
    ]
    return np.array(rows, dtype=np.int64).reshape(-1, 3), elapsed
