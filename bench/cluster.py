"""Query throughput at radius 4 (and 12): one index sharded over a 3-master Redis Cluster
(``ShardedIndex``, 3 shards) against the same entries in one key on one server (``RedisIndex``).

    python bench/cluster.py                      # 3M entries (the default)
    python bench/cluster.py --entries 300000     # quicker

Every server is our own (loopback, free ports, persistence off, stopped at the end), loaded
with ``TITLE_HASHES no`` on both sides so that memory and load time measure the index. Both
indexes get the same hashes in the same order, so the same ids and titles (title = id).
Before timing, a sample of queries is answered by both and checked against a numpy brute
force; any difference exits with status 1.

Throughput is ``query_many`` batches (one pipelined round trip per node per batch) from
``--clients`` client processes for ``--seconds``. The server time per query comes from
``INFO commandstats`` (``imgscout.query``, µs per call, summed over the shards), which shows
how the work divides when each node has a core of its own. Writes ``bench/CLUSTER.md``.
"""

from __future__ import annotations

import os

# One thread per process: the servers and the client processes share the machine's cores.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "RAYON_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402
import multiprocessing  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.support import checks, reference  # noqa: E402
from tests.support.cluster import cluster_options, create_cluster  # noqa: E402

from bench import hashdata  # noqa: E402
from bench.redis_bench import Server, module_path  # noqa: E402

RADII = (4, 12)
SHARDS = 3
MASTERS = 3
LOAD_BATCH = 20_000
QUERY_BATCH = 500
CHECKED_QUERIES = 200
INDEX_NAME = "bench"


class Node(Server):
    """One benchmark server without title hashes; a cluster node when ``cluster`` is set."""

    def __init__(self, module: Path, cluster: bool) -> None:
        extra = cluster_options(node_timeout_ms=60_000) if cluster else []
        super().__init__(module, module_args=("TITLE_HASHES", "no"), extra=extra)

    def query_usec(self) -> tuple[int, float]:
        """(calls, total µs) of imgscout.query since the last CONFIG RESETSTAT."""
        stats = self.client().info("commandstats")
        entry = stats.get("cmdstat_imgscout.query", {"calls": 0, "usec": 0})
        return int(entry["calls"]), float(entry["usec"])

    def rss(self) -> int:
        return int(self.client().info("memory")["used_memory_rss"])


def make_cluster(module: Path) -> list[Node]:
    nodes = [Node(module, cluster=True) for _ in range(MASTERS)]
    create_cluster(nodes)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        infos = [node.client().execute_command("CLUSTER", "INFO") for node in nodes]
        texts = [info.decode() if isinstance(info, bytes) else str(info) for info in infos]
        if all("cluster_state:ok" in text for text in texts):
            return nodes
        time.sleep(0.1)
    raise RuntimeError("cluster did not reach cluster_state:ok")


@dataclass
class Target:
    """How a client process reaches an index: ``kind`` is "single" or "sharded"."""

    kind: str
    ports: list[int]

    def open(self) -> Any:
        import redis
        from redis.cluster import ClusterNode, RedisCluster

        import imgscout

        if self.kind == "single":
            client = redis.Redis(host="127.0.0.1", port=self.ports[0], socket_timeout=600)
            return imgscout.RedisIndex(client, INDEX_NAME)
        nodes = [ClusterNode("127.0.0.1", port) for port in self.ports]
        return imgscout.ShardedIndex(RedisCluster(startup_nodes=nodes), INDEX_NAME, shards=SHARDS)


def load(index: Any, data: np.ndarray) -> float:
    titles = [str(i) for i in range(1, len(data) + 1)]
    started = time.perf_counter()
    for start in range(0, len(data), LOAD_BATCH):
        stop = min(len(data), start + LOAD_BATCH)
        ids = index.add_many(data[start:stop], titles[start:stop])
        if int(ids[0]) != start + 1 or int(ids[-1]) != stop:
            raise RuntimeError(
                f"unexpected ids {ids[0]}..{ids[-1]} for entries {start + 1}..{stop}"
            )
    index.sync()
    return time.perf_counter() - started


def check(indexes: dict[str, Any], data: np.ndarray, queries: np.ndarray, radius: int) -> None:
    ids = np.arange(1, len(data) + 1, dtype=np.int64)
    answers = {name: index.query_many(queries, radius) for name, index in indexes.items()}
    found = 0
    for position, query in enumerate(queries.tolist()):
        expected = reference.expected_range(reference.distances(data, query), ids, radius)
        found += len(expected)
        for name, answer in answers.items():
            checks.check_matches(answer[position], expected, f"{name} r={radius} {query:016x}")
    print(f"  r={radius}: {len(queries)} queries match the brute force on both ({found} matches)")


def _client_loop(
    target: Target, queries: np.ndarray, radius: int, seconds: float, start_at: float, out: Any
) -> None:
    index = target.open()
    while time.time() < start_at:
        time.sleep(0.001)
    done = 0
    began = time.perf_counter()
    position = 0
    while time.perf_counter() - began < seconds:
        batch = queries[position : position + QUERY_BATCH]
        if len(batch) < QUERY_BATCH:
            position = 0
            continue
        index.query_many(batch, radius)
        position += QUERY_BATCH
        done += len(batch)
    out.put((done, time.perf_counter() - began))


def throughput(
    target: Target, queries: np.ndarray, radius: int, clients: int, seconds: float
) -> float:
    """Queries per second from ``clients`` processes, each with its own slice of queries."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    start_at = time.time() + 3.0
    slices = np.array_split(queries, clients)
    processes = [
        context.Process(
            target=_client_loop, args=(target, part, radius, seconds, start_at, results)
        )
        for part in slices
    ]
    for process in processes:
        process.start()
    totals = [results.get(timeout=seconds + 120) for _ in processes]
    for process in processes:
        process.join()
    return sum(done for done, _ in totals) / max(elapsed for _, elapsed in totals)


def server_usec(node: Node, key: str, queries: np.ndarray, radius: int) -> float:
    """imgscout.query server time per query on one key of one node, that node alone busy
    (commandstats time is wall-clock: nodes sharing cores would count each other's turns)."""
    import imgscout

    node.client().config_resetstat()
    imgscout.RedisIndex(node.client(), key).query_many(queries, radius)
    calls, usec = node.query_usec()
    assert calls == len(queries)
    return usec / calls


@dataclass
class Figures:
    radius: int
    #: clients -> (one node q/s, cluster q/s)
    rates: dict[int, tuple[float, float]]
    single_us: float
    shard_us: list[float]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entries", type=int, default=3_000_000)
    parser.add_argument("--queries", type=int, default=20_000, help="distinct query hashes")
    parser.add_argument("--seconds", type=float, default=20.0, help="per throughput measurement")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--radii", type=int, nargs="+", default=list(RADII))
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "bench" / "CLUSTER.md")
    args = parser.parse_args()

    module = module_path()
    if module is None:
        print("no libimgscout.so: cargo build --release -p imgscout-redis", file=sys.stderr)
        return 2
    print(f"{args.entries:,} uniform hashes, radii {args.radii}, module {module}")
    data = hashdata.make_dataset("uniform", args.entries, args.seed)

    single = Node(module, cluster=False)
    cluster_nodes: list[Node] = []
    figures: list[Figures] = []
    try:
        cluster_nodes = make_cluster(module)
        single_target = Target("single", [single.port])
        sharded_target = Target("sharded", [node.port for node in cluster_nodes])
        single_index, sharded_index = single_target.open(), sharded_target.open()
        load_single = load(single_index, data)
        print(f"  loaded one node in {load_single:.1f} s")
        load_sharded = load(sharded_index, data)
        print(f"  loaded the cluster in {load_sharded:.1f} s")
        from redis.crc import key_slot

        owners = [
            next(
                node
                for node in cluster_nodes
                if node.client().execute_command(
                    "CLUSTER", "COUNTKEYSINSLOT", key_slot(key.encode())
                )
            )
            for key in sharded_index.keys
        ]
        for radius in args.radii:
            queries = hashdata.make_queries(data, radius, args.queries, args.seed)
            indexes = {"single": single_index, "sharded": sharded_index}
            check(indexes, data, queries[:CHECKED_QUERIES], radius)
            sample = queries[:2_000]
            single_us = server_usec(single, INDEX_NAME, sample, radius)
            shard_us = [
                server_usec(node, key, sample, radius)
                for node, key in zip(owners, sharded_index.keys)
            ]
            rates: dict[int, tuple[float, float]] = {}
            for clients in args.clients:
                one = throughput(single_target, queries, radius, clients, args.seconds)
                many = throughput(sharded_target, queries, radius, clients, args.seconds)
                rates[clients] = (one, many)
                print(
                    f"  r={radius}, {clients} client(s): one node {one:,.0f} q/s, "
                    f"cluster {many:,.0f} q/s, ratio {many / one:.2f}"
                )
            figures.append(Figures(radius, rates, single_us, shard_us))
        memory = (single.rss(), [node.rss() for node in cluster_nodes])
    finally:
        single.stop()
        for node in cluster_nodes:
            node.stop()

    write_report(args, load_single, load_sharded, figures, memory)
    print(f"wrote {args.output}")
    return 0


def write_report(
    args: argparse.Namespace,
    load_single: float,
    load_sharded: float,
    figures: list[Figures],
    memory: tuple[int, list[int]],
) -> None:
    cpu = platform.processor() or platform.machine()
    lines = [
        "# Sharded index on Redis Cluster vs one node",
        "",
        f"Written by `python bench/cluster.py --entries {args.entries}` "
        f"(seed {args.seed}, {args.queries:,} query hashes per radius, {args.seconds:g} s per "
        f"measurement) on {os.cpu_count()} cores ({cpu}), Redis {redis_version()}. The servers "
        "and the client processes all share these cores.",
        "",
        f"- Data: {args.entries:,} uniform random 64-bit hashes; at each radius r, half the "
        "queries are a stored hash with 0..r bits flipped, half are random.",
        f"- One node: one `RedisIndex` key. Cluster: `ShardedIndex` with {SHARDS} shards over "
        f"{MASTERS} masters (one shard per master, `redis-cli --cluster create` layout).",
        "- Both loaded with `TITLE_HASHES no`; for every radius, the answers to "
        f"{CHECKED_QUERIES} queries matched a numpy brute force on both before timing.",
        f"- Throughput: `query_many` batches of {QUERY_BATCH} from N client processes (the "
        "sharded client sends each node its share as one pipeline and reads the replies after "
        "all are sent).",
        "",
        "## Query throughput",
        "",
        "| radius | client processes | one node (q/s) | cluster, 3 nodes (q/s) "
        "| ratio cluster / one node |",
        "|---:|---:|---:|---:|---:|",
    ]
    for figure in figures:
        for clients, (one, many) in figure.rates.items():
            lines.append(
                f"| {figure.radius} | {clients} | {one:,.0f} | {many:,.0f} | **{many / one:.2f}** |"
            )
    lines += [
        "",
        "## Server time per query",
        "",
        "`imgscout.query` time from `INFO commandstats`, measured on one node at a time.",
        "",
        f"| radius | one node, all {args.entries:,} entries (µs) | each shard (µs) "
        "| busiest shard / one node |",
        "|---:|---:|---:|---:|",
    ]
    for figure in figures:
        shards = ", ".join(f"{us:.1f}" for us in figure.shard_us)
        lines.append(
            f"| {figure.radius} | {figure.single_us:.1f} | {shards} "
            f"| {max(figure.shard_us) / figure.single_us:.2f} |"
        )
    lines += [
        "",
        "## Load and memory",
        "",
        f"- Load ({LOAD_BATCH:,}-entry `add_many` batches, then sync): one node "
        f"{load_single:.1f} s, cluster {load_sharded:.1f} s.",
        f"- RSS: one node {memory[0] / 2**20:,.0f} MiB; cluster nodes "
        + ", ".join(f"{rss / 2**20:,.0f}" for rss in memory[1])
        + " MiB.",
        "",
    ]
    args.output.write_text("\n".join(lines))


def redis_version() -> str:
    try:
        out = subprocess.run(
            ["redis-server", "--version"], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.split()[2].removeprefix("v=")


if __name__ == "__main__":
    sys.exit(main())
