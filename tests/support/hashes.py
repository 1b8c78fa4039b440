"""Test data: hashes at known distances, clustered hashes, binary-safe titles, key names."""

from __future__ import annotations

import random
import uuid


def flip_bits(value: int, count: int, rng: random.Random) -> int:
    """``value`` with ``count`` distinct random bits flipped (distance exactly ``count``)."""
    for bit in rng.sample(range(64), count):
        value ^= 1 << bit
    return value


def clustered_hashes(rng: random.Random, count: int, centers: int = 8) -> list[int]:
    """Hashes in a few tight clusters, so small-radius queries find something."""
    bases = [rng.getrandbits(64) for _ in range(centers)]
    hashes = []
    for _ in range(count):
        value = rng.choice(bases)
        for _ in range(rng.randint(0, 6)):
            value ^= 1 << rng.randrange(64)
        hashes.append(value)
    return hashes


def random_title(rng: random.Random) -> bytes:
    """Titles with spaces, non-ASCII, NUL and CR/LF bytes: they must be binary-safe."""
    alphabet = b"abc XYZ\x00\r\n\xff\xe9/:"
    return bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))


def unique_key(prefix: str = "imgscout-test") -> str:
    return f"{prefix}:{uuid.uuid4().hex}"
