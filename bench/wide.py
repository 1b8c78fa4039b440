"""256-bit codes (PDQ's width): imgscout against FAISS's binary indexes, and ThreatExchange's PDQ
indexes where the package is installed, on the same data in one run.

Data: uniform random codes and clustered ones (near copies of originals, as a hash list of
known images holds); half the queries are near an entry, half anywhere. Every answer of every
timed call is checked against a numpy brute force. Figures are medians of batch calls in
microseconds per query; ratios are peer time / imgscout time (above 1: imgscout is faster).

    python bench/wide.py                 # 1M codes, the radii PDQ users query at
    python bench/wide.py --count 100000  # quicker

With the module built (``cargo build --release -p imgscout-redis``) and ``redis-server`` on the
PATH, the same 1M clustered codes are also loaded into a redis-server of our own: ``madd``
throughput, and the server's time per ``imgscout.query`` (INFO commandstats) next to the
embedded index's time for the same single queries.
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


#: Radii of the Redis section: a near copy, PDQ's threshold, and a loose match.
REDIS_RADII = (8, 31, 52)
REDIS_MADD_BATCH = 1_000
REDIS_PIPELINE = 8


def measure_redis(count: int, query_count: int, seed: int) -> dict[str, Any] | None:
    """``madd`` throughput of ``count`` clustered codes as hex text, then per radius the
    server's time per single ``imgscout.query`` (commandstats) and the embedded index's for
    the same queries; every reply checked against numpy. None without the module or a server."""
    import shutil

    from bench.redis_bench import Server, module_path

    module = module_path()
    if module is None or shutil.which("redis-server") is None:
        print("redis: no module build or no redis-server; section skipped", flush=True)
        return None
    data = clustered_codes(count, seed)
    queries = make_queries(data, query_count, seed + 9)
    reference = Reference(data, queries)
    texts = [row.tobytes().hex() for row in data]
    query_texts = [row.tobytes().hex() for row in queries]
    server = Server(module)
    try:
        client = server.client()
        client.execute_command("imgscout.config", "pdq", "BITS", BITS)
        ids: list[int] = []
        started = time.perf_counter()
        pipe = client.pipeline(transaction=False)
        for batch, start in enumerate(range(0, count, REDIS_MADD_BATCH)):
            args: list[str] = []
            for position in range(start, min(count, start + REDIS_MADD_BATCH)):
                args += (texts[position], str(position))
            pipe.execute_command("imgscout.madd", "pdq", *args)
            if batch % REDIS_PIPELINE == REDIS_PIPELINE - 1:
                ids += [int(i) for reply in pipe.execute() for i in reply]
        ids += [int(i) for reply in pipe.execute() for i in reply]
        madd_s = time.perf_counter() - started
        started = time.perf_counter()
        client.execute_command("imgscout.sync", "pdq")
        sync_s = time.perf_counter() - started
        assert ids == list(range(1, count + 1)), "madd gave other ids than 1..count"
        embedded = imgscout.Index(bits=BITS, threads=1)
        embedded.add_many(data, [str(i) for i in range(count)])
        embedded.sync()
        result: dict[str, Any] = {
            "count": count,
            "queries": query_count,
            "madd_entries_per_s": count / madd_s,
            "sync_s": sync_s,
            "radii": {},
        }
        for radius in REDIS_RADII:
            want = [sorted(zip(i.tolist(), d.tolist())) for i, d in reference.rows(radius)]
            client.config_resetstat()
            pipe = client.pipeline(transaction=False)
            for text in query_texts:
                pipe.execute_command("imgscout.query", "pdq", text, radius)
            replies = pipe.execute()
            for position, reply in enumerate(replies):
                got = sorted((int(row[1]), int(row[2])) for row in reply)
                assert got == want[position], f"redis r{radius} query {position}"
            stats = client.info("commandstats")["cmdstat_imgscout.query"]
            embedded_us = time_each(
                lambda text, radius=radius: embedded.query(text, radius),
                query_texts,
                lambda position, answer, want=want: _check_matches(answer, want[position]),
                5.0,
                50,
            ).median
            result["radii"][radius] = {
                "rows": sum(len(w) for w in want),
                "server_us_per_call": float(stats["usec_per_call"]),
                "embedded_us_per_query": embedded_us,
            }
            print(
                f"redis r{radius}: server {float(stats['usec_per_call']):.1f} µs/call, "
                f"embedded {embedded_us:.1f} µs",
                flush=True,
            )
        return result
    finally:
        server.stop()


def _check_matches(answer: Any, want: list[tuple[int, int]]) -> None:
    got = sorted((m.id, m.distance) for m in answer)
    assert got == want, "embedded query"


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
    results: list[dict[str, Any]],
    threatexchange: list[dict[str, Any]],
    redis_result: dict[str, Any] | None,
    features: str,
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
    if redis_result is not None:
        lines += [
            f"## Redis: {redis_result['count']:,} clustered codes, "
            f"{redis_result['queries']} single queries",
            "",
            f"`imgscout.madd` of hex text, {REDIS_MADD_BATCH:,} entries a command, "
            f"{REDIS_PIPELINE} commands pipelined: "
            f"{redis_result['madd_entries_per_s']:,.0f} entries/s; `imgscout.sync` "
            f"{redis_result['sync_s']:.2f} s. Server time per call from INFO commandstats "
            "(parsing, search and reply included); embedded: `Index.query` with one hex text, "
            "titles included. Every reply checked against numpy.",
            "",
            "| r | rows | server µs/call | embedded µs/query | server / embedded |",
            "|---:|---:|---:|---:|---:|",
        ]
        for radius, row in redis_result["radii"].items():
            server_us, embedded_us = row["server_us_per_call"], row["embedded_us_per_query"]
            lines.append(
                f"| {radius} | {row['rows']} | {server_us:.1f} | {embedded_us:.1f} | "
                f"{server_us / embedded_us:.2f} |"
            )
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "WIDE.md")
    parser.add_argument("--no-redis", action="store_true", help="leave the Redis section out")
    args = parser.parse_args()
    kinds = ("uniform", "clustered")
    results = [measure(kind, args.count, args.queries, args.seed) for kind in kinds]
    found = [measure_threatexchange(kind, args.seed, 100) for kind in kinds]
    threatexchange = [row for row in found if row is not None]
    redis_result = None if args.no_redis else measure_redis(args.count, 100, args.seed)
    text = report(results, threatexchange, redis_result, cpu_description())
    args.out.write_text(text + "\n", encoding="utf-8")
    everything = {"range": results, "threatexchange": threatexchange, "redis": redis_result}
    args.out.with_suffix(".json").write_text(json.dumps(everything, indent=1), encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
