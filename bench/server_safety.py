"""Server safety: what each heavy imgscout command does to the rest of a Redis server.

For each command on an index of 1M uniform 64-bit hashes: the command's own time, its reply
(rows, or the error it gave), the longest PING round trip a second client saw while it ran
(the event loop's longest stall), and the server's peak RSS against its resting RSS. Then the
self-join at radius 64 of 20,000 entries (2*10^8 pairs) under ``maxmemory``: the server must
stay up and answer with a clear error, its memory bounded.

Run: ``python -m bench.server_safety [--entries N]`` (writes bench/SAFETY.md). The servers are
our own, on free loopback ports, persistence off, stopped at the end.
"""

from __future__ import annotations

import argparse
import platform
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench import redis_bench

ROOT = Path(__file__).resolve().parent.parent
PING_EVERY_S = 0.001


def cpu_description() -> str:
    model = "unknown CPU"
    flags: set[str] = set()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name") and model == "unknown CPU":
            model = line.split(":", 1)[1].strip()
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
    shown = [f for f in ("avx2", "avx512f", "avx512_vpopcntdq") if f in flags]
    return f"{model} ({', '.join(shown) or 'no AVX2'}), {platform.machine()}"


def rss_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for pid {pid}")


def reset_peak(pid: int) -> None:
    """Resets VmHWM (the peak RSS) to the current RSS (Linux: clear_refs 5)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


class PingProbe:
    """Pings from its own connection every millisecond; keeps the slowest round trip."""

    def __init__(self, server: redis_bench.Server) -> None:
        self.client = server.client()
        self.slowest = 0.0
        self.count = 0
        self.running = True
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while self.running:
            started = time.perf_counter()
            self.client.ping()
            self.slowest = max(self.slowest, time.perf_counter() - started)
            self.count += 1
            time.sleep(PING_EVERY_S)

    def stop(self) -> tuple[float, int]:
        self.running = False
        self.thread.join()
        return self.slowest, self.count


def measure(server: redis_bench.Server, name: str, *command: Any) -> dict[str, Any]:
    client = server.client()
    pid = server.process.pid
    resting = rss_kib(pid, "VmRSS")
    reset_peak(pid)
    probe = PingProbe(server)
    time.sleep(0.05)
    started = time.perf_counter()
    try:
        reply = client.execute_command(*command)
        outcome = describe(reply)
    except Exception as error:
        outcome = f"error: {error}"
    elapsed = time.perf_counter() - started
    time.sleep(0.05)
    slowest, pings = probe.stop()
    peak = rss_kib(pid, "VmHWM")
    row = {
        "command": name,
        "seconds": elapsed,
        "outcome": outcome,
        "slowest_ping_ms": slowest * 1e3,
        "pings": pings,
        "resting_mib": resting / 1024,
        "peak_mib": peak / 1024,
    }
    print(
        f"{name:48s} {elapsed:8.3f} s  ping max {slowest * 1e3:8.1f} ms ({pings} pings)  "
        f"RSS {resting / 1024:7.0f} -> peak {peak / 1024:7.0f} MiB  {outcome}",
        flush=True,
    )
    return row


def describe(reply: Any) -> str:
    if isinstance(reply, list) and len(reply) == 2 and isinstance(reply[1], list):
        return f"page of {len(reply[1])} rows, next cursor {reply[0]!r}"
    if isinstance(reply, list):
        return f"{len(reply)} rows"
    return repr(reply)[:60]


def run(entries: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    module = redis_bench.module_path()
    if module is None:
        raise SystemExit("build the module first: cargo build --release -p imgscout-redis")
    rng = np.random.default_rng(17)
    data = rng.integers(0, 2**64, size=entries, dtype=np.uint64)
    rows: list[dict[str, Any]] = []
    server = redis_bench.Server(module, extra=("--enable-debug-command", "yes"))
    try:
        client = server.client()
        print(f"loading {entries:,} entries ...", flush=True)
        redis_bench.load(client, data)
        near = int(data[7]) ^ 0b1011
        key = redis_bench.KEY
        rows.append(measure(server, "query r=8", "imgscout.query", key, near, 8))
        rows.append(measure(server, "query r=16", "imgscout.query", key, near, 16))
        rows.append(measure(server, "query r=24", "imgscout.query", key, near, 24))
        rows.append(measure(server, "query r=32 (too many rows)", "imgscout.query", key, near, 32))
        rows.append(
            measure(server, "query r=32 LIMIT 10", "imgscout.query", key, near, 32, "LIMIT", 10)
        )
        rows.append(measure(server, "knn k=10", "imgscout.knn", key, near, 10))
        rows.append(measure(server, "knn k=100000", "imgscout.knn", key, near, 100_000))
        rows.append(
            measure(server, "knn k=1000000 (too many rows)", "imgscout.knn", key, near, 10**6)
        )
        rows.append(measure(server, "pairs r=8", "imgscout.pairs", key, 8))
        rows.append(measure(server, "pairs r=12 (too many rows)", "imgscout.pairs", key, 12))
        rows.append(measure(server, "pairs r=16 (too many rows)", "imgscout.pairs", key, 16))
        rows.append(
            measure(
                server,
                "pairs r=12 CURSOR 0 COUNT 1000",
                "imgscout.pairs",
                key,
                12,
                "CURSOR",
                0,
                "COUNT",
                1000,
            )
        )
        rows.append(
            measure(
                server,
                "entries CURSOR 0 COUNT 100000",
                "imgscout.entries",
                key,
                "CURSOR",
                0,
                "COUNT",
                100_000,
            )
        )
        rows.append(measure(server, "DEBUG DIGEST-VALUE", "DEBUG", "DIGEST-VALUE", key))
        # Writes stay on the event loop: a sync of a large queue, a madd that merges.
        client.execute_command("imgscout.config", "pending", "SYNC_THRESHOLD", 10_000_000)
        redis_bench_load_pending(client, "pending", data[: entries // 2])
        rows.append(
            measure(server, f"sync of {entries // 2:,} pending", "imgscout.sync", "pending")
        )
    finally:
        server.stop()

    capped: list[dict[str, Any]] = []
    server = redis_bench.Server(module, extra=("--maxmemory", "2gb"))
    try:
        client = server.client()
        small = rng.integers(0, 2**64, size=20_000, dtype=np.uint64)
        redis_bench.load(client, small)
        capped.append(
            measure(
                server,
                "pairs r=64 on 20,000 (maxmemory 2gb)",
                "imgscout.pairs",
                redis_bench.KEY,
                64,
            )
        )
        assert client.ping()
    finally:
        server.stop()
    return rows, capped


def redis_bench_load_pending(client: Any, key: str, data: np.ndarray) -> None:
    pipe = client.pipeline(transaction=False)
    values = data.tolist()
    for start in range(0, len(values), 1000):
        args: list[Any] = []
        for offset, value in enumerate(values[start : start + 1000]):
            args += (value, start + offset)
        pipe.execute_command("imgscout.madd", key, *args)
    pipe.execute()


def write_report(entries: int, rows: list[dict[str, Any]], capped: list[dict[str, Any]]) -> str:
    lines = [
        "# Server safety",
        "",
        f"Machine: {cpu_description()}; one redis-server, default module settings "
        "(`imgscout.max-reply-rows` 100,000, one worker thread per core).",
        f"Index: {entries:,} uniform 64-bit hashes. A second client pings every millisecond "
        "while each command runs; its slowest round trip is the longest the event loop was "
        "held. Peak RSS is the server's VmHWM, reset before each command.",
        "",
        "| command | time (s) | slowest PING (ms) | RSS resting → peak (MiB) | reply |",
        "|---|---:|---:|---:|---|",
    ]
    for row in [*rows, *capped]:
        lines.append(
            f"| `{row['command']}` | {row['seconds']:.3f} | {row['slowest_ping_ms']:.1f} | "
            f"{row['resting_mib']:.0f} → {row['peak_mib']:.0f} | {row['outcome']} |"
        )
    lines += [
        "",
        "Reads that the planner prices at 100 µs or more run on a worker thread with the "
        "client blocked, so PING keeps answering; writes (`sync`, merges) and `DEBUG "
        "DIGEST-VALUE` still run on the event loop.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "SAFETY.md")
    args = parser.parse_args()
    rows, capped = run(args.entries)
    args.out.write_text(write_report(args.entries, rows, capped))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
