"""Seeded generators for the benchmark's hashes and queries.

Every generator takes its own seed so a dataset, and the queries of each radius, are the same
from run to run and from one system to the next.
"""

from __future__ import annotations

import numpy as np

UINT64_MAX = np.iinfo(np.uint64).max

#: Mean number of near-duplicates per center in the clustered dataset (photo collections hold a
#: few copies of each picture: resized, recompressed, cropped).
CLUSTER_MEAN_SIZE = 10
#: Members differ from their center in 0..CLUSTER_MAX_FLIPS bits (a recompressed copy moves a
#: pHash by a few bits).
CLUSTER_MAX_FLIPS = 6


def uniform_hashes(count: int, seed: int) -> np.ndarray:
    """``count`` independent uniformly random 64-bit hashes: the hardest case for trees."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, UINT64_MAX, size=count, dtype=np.uint64, endpoint=True)


def flip_random_bits(hashes: np.ndarray, flips: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each hash with exactly ``flips[i]`` distinct random bits flipped."""
    out = hashes.copy()
    max_flips = int(flips.max()) if len(flips) else 0
    if max_flips == 0:
        return out
    # Distinct positions per row: the first max_flips columns of a random permutation of 0..63
    # (argsort of random keys), so a flip never undoes another one.
    positions = np.argsort(rng.random((len(hashes), 64)), axis=1)[:, :max_flips]
    for column in range(max_flips):
        masks = np.left_shift(np.uint64(1), positions[:, column].astype(np.uint64))
        masks[flips <= column] = 0
        out ^= masks
    return out


def clustered_hashes(count: int, seed: int) -> np.ndarray:
    """Groups of near-duplicates: random centers, each member its center with 0..6 bits flipped.

    Group sizes are Poisson-like around CLUSTER_MEAN_SIZE (each entry picks a center at random).
    """
    rng = np.random.default_rng(seed)
    center_count = max(1, count // CLUSTER_MEAN_SIZE)
    centers = rng.integers(0, UINT64_MAX, size=center_count, dtype=np.uint64, endpoint=True)
    members = centers[rng.integers(0, center_count, size=count)]
    flips = rng.integers(0, CLUSTER_MAX_FLIPS + 1, size=count)
    out = np.empty(count, dtype=np.uint64)
    # Chunks keep the (rows x 64) permutation keys small.
    chunk = 200_000
    for start in range(0, count, chunk):
        stop = min(count, start + chunk)
        out[start:stop] = flip_random_bits(members[start:stop], flips[start:stop], rng)
    return out


def make_dataset(kind: str, count: int, seed: int) -> np.ndarray:
    if kind == "uniform":
        return uniform_hashes(count, seed)
    if kind == "clustered":
        return clustered_hashes(count, seed)
    raise ValueError(f"unknown dataset kind {kind!r}")


def make_queries(data: np.ndarray, radius: int, count: int, seed: int) -> np.ndarray:
    """Half near existing entries (an entry with 0..radius random bit flips), half random.

    Near and random queries alternate, so any prefix (a time budget may cut the list) holds both
    kinds in equal parts.
    """
    rng = np.random.default_rng([seed, radius])
    near_count = (count + 1) // 2
    sources = data[rng.integers(0, len(data), size=near_count)]
    flips = rng.integers(0, min(radius, 64) + 1, size=near_count)
    near = flip_random_bits(sources, flips, rng)
    far = rng.integers(0, UINT64_MAX, size=count - near_count, dtype=np.uint64, endpoint=True)
    out = np.empty(count, dtype=np.uint64)
    out[0::2] = near
    out[1::2] = far
    return out
