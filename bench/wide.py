"""256-bit codes (PDQ's width): imgscout against FAISS's binary indexes, and ThreatExchange's PDQ
indexes where the package is installed, on the same data in one run.

Data: uniform random codes and clustered ones (near copies of originals, as a hash list of
known images holds); half the queries are near an entry, half anywhere. Every answer of every
timed call is checked against a numpy brute force. Figures are medians of batch calls in
microseconds per query; ratios are peer time / imgscout time (above 1: imgscout is faster).

    python bench/wide.py                 # 1M codes, the issue's radii
    python bench/wide.py --count 100000  # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import imgscout
from bench.photo_folder import cpu_description
from bench.timing import time_batch, time_each

RADII = [0, 8, 16, 24, 31, 40, 52]
BITS = 256
BYTES = BITS // 8


def uniform_codes(count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(count, BYTES), dtype=np.uint8)


def flip(codes: np.ndarray, flips: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``codes`` with ``flips[i]`` distinct random bits of row ``i`` flipped."""
    out = codes.copy()
    bits = np.unpackbits(out, axis=1)
    for row, count in enumerate(flips):
        where = rng.choice(BITS, size=int(count), replace=False)
        bits[row, where] ^= 1
    return np.packbits(bits, axis=1)


def clustered_codes(count: int, seed: int) -> np.ndarray:
    """Near copies: originals with a few bits (PDQ copies differ in 0 to about 30) flipped."""
    rng = np.random.default_rng(seed)
    originals = uniform_codes(max(count // 10, 1), seed + 1)
    picked = originals[rng.integers(0, len(originals), size=count)]
    return flip(picked, rng.binomial(40, 0.25, size=count), rng)


def make_queries(data: np.ndarray, count: int, seed: int) -> np.ndarray:
    """Half near an entry (up to 24 bits away), half uniform."""
    rng = np.random.default_rng(seed)
    near = data[rng.integers(0, len(data), size=count // 2)]
    near = flip(near, rng.integers(0, 25, size=len(near)), rng)
    return np.concatenate([near, uniform_codes(count - len(near), seed + 7)])


def distances(data_words: np.ndarray, query: np.ndarray) -> np.ndarray:
    words = np.ascontiguousarray(query).view(np.uint64)
    return np.bitwise_count(data_words ^ words).sum(axis=1, dtype=np.int64)


class Reference:
    """The brute force: distances of every query to every code, computed once per query."""

    def __init__(self, data: np.ndarray, queries: np.ndarray) -> None:
        words = np.ascontiguousarray(data).view(np.uint64)
        self.dist = [distances(words, q) for q in queries]

    def rows(self, radius: int) -> list[tuple[np.ndarray, np.ndarray]]:
        out = []
        for d in self.dist:
            where = np.flatnonzero(d <= radius)
            order = np.lexsort((where, d[where]))
            out.append((where[order] + 1, d[where][order]))
        return out


def check_csr(want: list[tuple[np.ndarray, np.ndarray]], lims: Any, ids: Any, dist: Any) -> None:
    for i, (want_ids, want_dist) in enumerate(want):
        got_ids = np.asarray(ids[lims[i] : lims[i + 1]])
        got_dist = np.asarray(dist[lims[i] : lims[i + 1]])
        order = np.lexsort((got_ids, got_dist))
        assert np.array_equal(got_ids[order], want_ids), f"query {i}: ids differ"
        assert np.array_equal(got_dist[order], want_dist), f"query {i}: distances differ"


def faiss_module() -> Any:
    try:
        import faiss
    except ImportError:
        return None
    faiss.omp_set_num_threads(1)
    return faiss


def measure(kind: str, count: int, query_count: int, seed: int) -> dict[str, Any]:
    data = uniform_codes(count, seed) if kind == "uniform" else clustered_codes(count, seed)
    queries = make_queries(data, query_count, seed + 3)
    reference = Reference(data, queries)
    result: dict[str, Any] = {"kind": kind, "count": count, "queries": query_count, "radii": {}}

    started = time.perf_counter()
    index = imgscout.Index(bits=BITS, threads=1)
    index.add_many(data, [""] * count)
    index.sync()
    result["imgscout_build_s"] = time.perf_counter() - started
    info = index.info()
    result["imgscout_bytes_per_entry"] = info["memory_bytes"] / count
    result["imgscout_plan"] = info["plan"]
    result["imgscout_fields"] = info["multi_index_fields"]

    faiss = faiss_module()
    peers: dict[str, Any] = {}
    if faiss is not None:
        started = time.perf_counter()
        flat = faiss.IndexBinaryFlat(BITS)
        flat.add(data)
        result["faiss_flat_build_s"] = time.perf_counter() - started
        started = time.perf_counter()
        multihash = faiss.IndexBinaryMultiHash(BITS, 16, 16)
        multihash.add(data)
        result["faiss_multihash_build_s"] = time.perf_counter() - started
        peers = {"FAISS flat": flat, "FAISS MultiHash 16x16": multihash}

    for radius in RADII:
        want = reference.rows(radius)
        rows = sum(len(w[0]) for w in want)
        figures: dict[str, float] = {}

        def imgscout_batch(threads: int, radius: int = radius) -> Any:
            index.threads = threads
            return index.query_arrays(queries, radius)

        def checked(answer: Any, want: list = want) -> None:
            check_csr(want, *answer)

        def checked_faiss(answer: Any, want: list = want) -> None:
            # FAISS answers (lims, distances, labels), labels from 0, ids from 1; it keeps
            # distances strictly below the radius it is given, hence radius + 1 below.
            check_csr(want, answer[0], answer[2] + 1, answer[1])

        for threads, name in [(1, "imgscout"), (os.cpu_count() or 1, "imgscout all threads")]:
            timed = time_batch(
                lambda threads=threads: imgscout_batch(threads),
                len(queries),
                checked,
                repeats=3,
            )
            figures[name] = timed.median
        for name, peer in peers.items():
            if name.startswith("FAISS MultiHash"):
                peer.nflip = radius // 16
            timed = time_batch(
                lambda peer=peer, radius=radius: peer.range_search(queries, radius + 1),
                len(queries),
                checked_faiss,
                repeats=3,
                max_repeats=5,
            )
            figures[name] = timed.median
        result["radii"][radius] = {"rows": rows, "us_per_query": figures}
        print(
            f"{kind} r{radius}: {rows} rows, "
            + ", ".join(f"{k} {v:.1f}" for k, v in figures.items()),
            flush=True,
        )
    return result


#: ThreatExchange's indexes are measured at this size, at PDQ's match threshold.
THREATEXCHANGE_COUNT = 100_000
PDQ_THRESHOLD = 31


def measure_threatexchange(kind: str, seed: int, query_count: int) -> dict[str, Any] | None:
    """Single queries at PDQ's threshold against ``PDQIndex`` (FAISS MultiHash underneath) and
    ``PDQIndex2`` (FAISS ``IndexFlatL2`` over 256 floats), as their users call them: one hex
    text per query, entries back."""
    try:
        from threatexchange.signal_type.pdq.pdq_index import PDQIndex
        from threatexchange.signal_type.pdq.pdq_index2 import PDQIndex2
    except ImportError:
        return None
    count = THREATEXCHANGE_COUNT
    data = uniform_codes(count, seed) if kind == "uniform" else clustered_codes(count, seed)
    queries = make_queries(data, query_count, seed + 5)
    texts = [row.tobytes().hex() for row in data]
    query_texts = [row.tobytes().hex() for row in queries]
    want = Reference(data, queries).rows(PDQ_THRESHOLD)
    want_sets = [sorted(zip((ids - 1).tolist(), dist.tolist())) for ids, dist in want]
    result: dict[str, Any] = {"kind": kind, "count": count, "queries": query_count}
    builds: dict[str, float] = {}
    started = time.perf_counter()
    index = imgscout.Index(bits=BITS)
    index.add_many(texts, [str(i) for i in range(count)])
    index.sync()
    builds["imgscout"] = time.perf_counter() - started
    started = time.perf_counter()
    pdq_index = PDQIndex(entries=zip(texts, range(count)))
    builds["PDQIndex"] = time.perf_counter() - started
    started = time.perf_counter()
    pdq_index2 = PDQIndex2(entries=zip(texts, range(count)))
    builds["PDQIndex2"] = time.perf_counter() - started

    def check_imgscout(position: int, answer: Any) -> None:
        got = sorted((int(m.title), m.distance) for m in answer)
        assert got == want_sets[position], f"imgscout query {position}"

    def check_threatexchange(position: int, answer: Any) -> None:
        got = sorted((m.metadata, int(m.similarity_info.distance)) for m in answer)
        assert got == want_sets[position], f"threatexchange query {position}"

    figures = {
        "imgscout query": time_each(
            lambda q: index.query(q, PDQ_THRESHOLD), query_texts, check_imgscout, 5.0, 50
        ).median,
        "PDQIndex": time_each(pdq_index.query, query_texts, check_threatexchange, 20.0, 20).median,
        "PDQIndex2": time_each(
            pdq_index2.query, query_texts, check_threatexchange, 20.0, 20
        ).median,
    }
    result["build_s"] = builds
    result["us_per_query"] = figures
    print(
        f"threatexchange {kind}: " + ", ".join(f"{k} {v:.1f}" for k, v in figures.items()),
        flush=True,
    )
    return result


def report(
    results: list[dict[str, Any]], threatexchange: list[dict[str, Any]], features: str
) -> str:
    lines = [
        "# 256-bit codes: imgscout against FAISS",
        "",
        f"CPU: {features}; kernel {imgscout.Index(bits=BITS).info()['kernel']}. "
        "Medians of batch calls, µs per query, one thread unless named; every answer checked "
        "against numpy. Ratio: best one-thread peer / imgscout.",
        "",
    ]
    for result in results:
        lines += [
            f"## {result['count']:,} {result['kind']} codes, {result['queries']} queries",
            "",
            f"Build: imgscout {result['imgscout_build_s']:.2f} s"
            + (
                f", FAISS flat {result['faiss_flat_build_s']:.2f} s, "
                f"FAISS MultiHash 16x16 {result['faiss_multihash_build_s']:.2f} s"
                if "faiss_flat_build_s" in result
                else ""
            )
            + f". imgscout memory: {result['imgscout_bytes_per_entry']:.0f} B/entry "
            f"({result['imgscout_bytes_per_entry'] - BYTES:.0f} beyond the code, titles empty); "
            f"fields {result['imgscout_fields']}; plan {result['imgscout_plan']}.",
            "",
        ]
        names = list(next(iter(result["radii"].values()))["us_per_query"])
        lines.append("| r | rows | " + " | ".join(names) + " | best peer / imgscout |")
        lines.append("|---:|---:|" + "---:|" * len(names) + "---:|")
        for radius, row in result["radii"].items():
            us = row["us_per_query"]
            peers = [v for k, v in us.items() if not k.startswith("imgscout")]
            ratio = f"{min(peers) / us['imgscout']:.1f}×" if peers else "—"
            cells = " | ".join(f"{us[n]:.1f}" for n in names)
            lines.append(f"| {radius} | {row['rows']} | {cells} | {ratio} |")
        lines.append("")
    if threatexchange:
        lines += [
            f"## ThreatExchange's PDQ indexes: {THREATEXCHANGE_COUNT:,} codes, single queries at "
            f"r{PDQ_THRESHOLD}",
            "",
            "Each call as its users make it: one hex text in, entries out (imgscout: "
            "`Index.query`, titles included). Medians, µs per query.",
            "",
            "| data | imgscout query | PDQIndex | PDQIndex2 | PDQIndex / imgscout | "
            "PDQIndex2 / imgscout | builds (s): imgscout, PDQIndex, PDQIndex2 |",
            "|---|---:|---:|---:|---:|---:|---|",
        ]
        for row in threatexchange:
            us, build = row["us_per_query"], row["build_s"]
            mine = us["imgscout query"]
            lines.append(
                f"| {row['kind']} | {mine:.1f} | {us['PDQIndex']:.1f} | {us['PDQIndex2']:.1f} | "
                f"{us['PDQIndex'] / mine:.0f}× | {us['PDQIndex2'] / mine:.0f}× | "
                f"{build['imgscout']:.2f}, {build['PDQIndex']:.2f}, {build['PDQIndex2']:.2f} |"
            )
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "WIDE.md")
    args = parser.parse_args()
    kinds = ("uniform", "clustered")
    results = [measure(kind, args.count, args.queries, args.seed) for kind in kinds]
    found = [measure_threatexchange(kind, args.seed, 100) for kind in kinds]
    threatexchange = [row for row in found if row is not None]
    text = report(results, threatexchange, cpu_description())
    args.out.write_text(text + "\n", encoding="utf-8")
    everything = {"range": results, "threatexchange": threatexchange}
    args.out.with_suffix(".json").write_text(json.dumps(everything, indent=1), encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
