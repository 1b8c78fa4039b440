"""Bytes per entry of a built index, measured in a fresh process (run by run.py).

    python bench/memory_probe.py ENTRIES SEED

Everything the build needs (hashes, the title list) exists before the first RSS reading; the
second reading follows add_many + sync with the returned id array dropped. Titles are empty, so
the figure excludes title bytes, as the 64-bytes-per-entry budget does. Prints one JSON line.
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import sys
from pathlib import Path

for _variable in ("OMP_NUM_THREADS", "RAYON_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import hashdata, subject  # noqa: E402


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def release_free_heap() -> bool:
    """glibc keeps freed build temporaries in its arenas; malloc_trim hands them back, so the
    RSS reading shows what the index holds rather than what the build once needed."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    libc.malloc_trim(0)
    return True


def main() -> None:
    entries, seed = int(sys.argv[1]), int(sys.argv[2])
    module = subject.load_module()
    data = hashdata.uniform_hashes(entries, seed)
    titles = [""] * entries
    # A throwaway index first, so one-time allocations (module state, allocator arenas) are not
    # charged to the entries.
    warm = module.Index()
    warm.add(1, "", None)
    warm.sync()
    gc.collect()
    release_free_heap()
    before = rss_bytes()
    index = module.Index(sync_threshold=subject.BULK_SYNC_THRESHOLD)
    assigned = index.add_many(data, titles)
    index.sync()
    del assigned
    gc.collect()
    after_untrimmed = rss_bytes()
    trimmed = release_free_heap()
    after = rss_bytes()
    info = dict(index.info())
    memory_bytes = int(info["memory_bytes"])
    print(
        json.dumps(
            {
                "entries": entries,
                "rss_before": before,
                "rss_after": after,
                "rss_bytes_per_entry": (after - before) / entries,
                "rss_untrimmed_bytes_per_entry": (after_untrimmed - before) / entries,
                "malloc_trim": trimmed,
                "info_memory_bytes": memory_bytes,
                "info_bytes_per_entry": memory_bytes / entries,
            }
        )
    )


if __name__ == "__main__":
    main()
