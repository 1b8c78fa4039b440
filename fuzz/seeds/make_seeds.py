#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into this directory.

read_from/: small valid serialized indexes in the layout of crates/mvptree/src/format.rs
(written here independently of the Rust writer; crates/mvptree/tests/fuzz_regressions.rs
checks that the Rust reader accepts every one). cursors/: cursor texts, behind the mode byte
of the cursors target. Run it again after a format change: python3 fuzz/seeds/make_seeds.py
"""

import struct
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
MAX_ID = 2**63 - 1
CENTERS = [0, 2**64 - 1, 0x0123_4567_89AB_CDEF, 0xF0F0_F0F0_0F0F_0F0F]


def index(threshold, next_id, indexed, pending):
    """indexed, pending: lists of (id, hash, title bytes)."""
    body = b"IMGSCOUT" + struct.pack(
        "<IIQQQQ", 1, 0, threshold, next_id, len(indexed), len(pending)
    )
    for entry_id, h, title in indexed + pending:
        body += struct.pack("<QQI", entry_id, h, len(title)) + title
    return body + struct.pack("<I", zlib.crc32(body))


def near(center, *bits):
    h = CENTERS[center]
    for b in bits:
        h ^= 1 << b
    return h


def main():
    clustered = [(i, near(i % 4, i % 64, (7 * i) % 64), f"p{i}.jpg".encode()) for i in range(1, 25)]
    seeds = {
        "empty.idx": index(500, 1, [], []),
        "small.idx": index(
            4,
            11,
            [(1, near(0), b"a.jpg"), (2, near(0, 3), b"b.jpg"), (5, near(1, 0, 9), b"")],
            [(9, near(2), b"pending"), (10, near(0, 3), b"twin of 2")],
        ),
        "clustered.idx": index(30, 25, clustered[:20], clustered[20:]),
        "sparse_ids.idx": index(
            2,
            MAX_ID + 1,
            [(0, near(3), b"zero"), (1 << 40, near(3, 63), b"big"), (MAX_ID, near(1), b"max")],
            [],
        ),
        "unsorted.idx": index(
            8, 8, [(7, near(2, 1), b"z"), (3, near(2), b"y"), (5, near(2, 2, 4), b"x")], []
        ),
        "pending_only.idx": index(1, 4, [], [(3, near(0, 5), b"q")]),
    }
    out = HERE / "read_from"
    out.mkdir(exist_ok=True)
    for name, data in seeds.items():
        (out / name).write_bytes(data)

    out = HERE / "cursors"
    out.mkdir(exist_ok=True)
    texts = ["0", "17", "5-3-9", "0-0-1", f"{MAX_ID}-64-{2**64 - 1}", "1-257-3", "007", "1--3"]
    for k, text in enumerate(texts):
        (out / f"text{k}").write_bytes(b"\x00" + text.encode())
    (out / "built").write_bytes(b"\x01" + bytes(range(1, 21)))


if __name__ == "__main__":
    main()
