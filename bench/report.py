"""RESULTS.md and results.png from the results dictionary run.py collects (or results.json)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

IMGSCOUT_SINGLE = "imgscout query_arrays one hash"
#: The single-query figure of results recorded before the one-hash `query_arrays` row.
IMGSCOUT_SINGLE_OLD = "imgscout query"
IMGSCOUT_BATCH_ALL_THREADS = "imgscout query_arrays all threads"
IMGSCOUT_BATCH = "imgscout query_arrays"
#: Ratio imgscout must reach against the best peer at each radius, one query at a time and in
#: batches (the performance targets). Radii the targets do not name take the target of the
#: next larger named radius (2 -> 4's, 6 -> 8's, 10 -> 12's).
SINGLE_TARGETS = {
    0: 10.0,
    2: 10.0,
    4: 10.0,
    6: 10.0,
    8: 10.0,
    10: 3.0,
    12: 3.0,
    16: 2.0,
    20: 1.0,
    24: 1.0,
    32: 1.0,
}
BATCH_TARGETS = {
    0: 50.0,
    2: 50.0,
    4: 50.0,
    6: 20.0,
    8: 20.0,
    10: 4.0,
    12: 4.0,
    16: 2.0,
    20: 1.2,
    24: 1.2,
    32: 1.2,
}
#: kNN: imgscout's knn_arrays batch against FAISS flat's batch search.
KNN_TARGET = 5.0
BUILD_TARGET_S = 1.5
BYTES_TARGET = 64.0
PAIRS_TARGET = 1000.0
PAIRS_SECONDS_TARGET = 2.0
REDIS_THROUGHPUT_TARGET = 0.5
OLD_MODULE_TARGET = 300.0


#: Figures measured on every core: compared only with each other, never with one thread.
ALL_THREADS_SUFFIX = " all threads"


def is_imgscout(name: str) -> bool:
    return name.startswith("imgscout")


def best_peer(systems: dict[str, Any], batch: bool) -> tuple[str, float] | None:
    """The fastest exact peer on one thread, as imgscout's figures here are. Single: peers'
    one-query calls. Batch: any one-thread peer figure (a batch call, or one-query calls in a
    loop, which a user could batch just as well)."""
    candidates = [
        (name, s["median_us"])
        for name, s in systems.items()
        if not is_imgscout(name)
        and s.get("exact", True)
        and not name.endswith(ALL_THREADS_SUFFIX)
        and (batch or not name.endswith(" batch"))
    ]
    return min(candidates, key=lambda c: c[1]) if candidates else None


def fmt_us(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def fmt_ratio(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}x" if value >= 100 else f"{value:.1f}x" if value >= 10 else f"{value:.2f}x"


def verdict(ratio: float | None, target: float) -> str:
    if ratio is None:
        return "not measured"
    return f"{fmt_ratio(ratio)} {'met' if ratio >= target else 'NOT met'}"


def single_figure(row: dict[str, Any]) -> dict[str, Any] | None:
    systems = row["systems"]
    return systems.get(IMGSCOUT_SINGLE) or systems.get(IMGSCOUT_SINGLE_OLD)


def own_figure(row: dict[str, Any], peer: str) -> dict[str, Any] | None:
    """imgscout's figure to set against `peer`'s: batch against batch, all threads against all
    threads, one query against one query."""
    if peer.endswith(" batch" + ALL_THREADS_SUFFIX):
        return row["systems"].get(IMGSCOUT_BATCH_ALL_THREADS)
    if peer.endswith(" batch"):
        return row["systems"].get(IMGSCOUT_BATCH)
    return single_figure(row)


def range_ratio(row: dict[str, Any], batch: bool) -> tuple[float | None, str]:
    mine = row["systems"].get(IMGSCOUT_BATCH) if batch else single_figure(row)
    peer = best_peer(row["systems"], batch)
    if mine is None or peer is None:
        return None, "-"
    return peer[1] / mine["median_us"], peer[0]


def write(results: dict[str, Any], out_dir: Path) -> None:
    (out_dir / "RESULTS.md").write_text(markdown(results))
    plot(results, out_dir / "results.png")


def markdown(results: dict[str, Any]) -> str:
    env = results.get("environment", {})
    checks = results.get("checks", {})
    lines: list[str] = []
    add = lines.append
    add("# imgscout benchmark results")
    add("")
    add(
        f"`python bench/run.py{'' if env.get('mode') == 'full' else ' --' + str(env.get('mode'))}"
        f"{' --kernel ' + env['kernel_forced'] if env.get('kernel_forced') else ''}` "
        f"({env.get('mode')} mode), commit `{env.get('commit')}`{wall_time(env.get('wall_s'))}. "
        f"CPU: {env.get('cpu')}, {env.get('cores')} cores"
        f" ({', '.join(env.get('cpu_features', [])) or 'features not recorded'}),"
        f" imgscout scan kernel {env.get('kernel', 'not recorded')}, one thread per system"
        " except the all-threads rows. "
        + ", ".join(f"{k} {v}" for k, v in env.get("versions", {}).items())
        + "."
    )
    add("")
    add(
        "All figures are medians of per-query wall times (batch figures: median over repeats of batch time ÷ batch size). "
        "The machine is shared and noisy; ratios come from the same run."
    )
    if env.get("uncommitted_code"):
        add("")
        add(
            "**Note:** the measured build included uncommitted changes to: "
            + ", ".join(f"`{line[3:]}`" for line in env["uncommitted_code"])
            + "."
        )
    if env.get("compilers_at_start") or env.get("compilers_at_end"):
        add("")
        add(
            "**Note:** compilers (cargo/rustc) were running on this 2-core machine during the run: absolute figures are inflated."
        )
    add("")
    status = results.get("status", "?")
    add(
        f"**Status: {status}.** {checks.get('imgscout_answers_checked', 0):,} imgscout answers and "
        f"{checks.get('peer_answers_checked', 0):,} peer answers were checked against the numpy brute force."
    )
    for error in checks.get("errors", []):
        add(f"- ERROR: `{error.strip().splitlines()[-1]}`")
    for note in checks.get("inexact_peers", []):
        add(f"- peer not exact (left out of the best-peer ratios where it failed): {note}")
    for name, why in checks.get("skipped", {}).items():
        add(f"- skipped {name}: {why}")
    add("")
    lines += targets_section(results)
    findings = Path(__file__).with_name("FINDINGS.md")
    if findings.exists():
        lines += [findings.read_text().rstrip(), ""]
    lines += range_sections(results)
    lines += knn_sections(results)
    lines += python_layer_section(results)
    lines += bktree_sections(results)
    lines += pairs_section(results)
    lines += build_memory_section(results)
    lines += redis_section(results)
    add("![latency against radius](results.png)")
    add("")
    return "\n".join(lines)


def wall_time(seconds: float | None) -> str:
    """ ", 8 min 23 s of wall time" (nothing when the run did not record it)."""
    if seconds is None:
        return ""
    minutes, rest = divmod(round(seconds), 60)
    return f", {minutes} min {rest} s of wall time" if minutes else f", {rest} s of wall time"


def targets_section(results: dict[str, Any]) -> list[str]:
    lines = ["## Targets: best peer / imgscout per radius", ""]
    datasets = {k: v for k, v in results.get("datasets", {}).items() if "10,000,000" not in k}
    if datasets:
        header = (
            "| radius | target | "
            + " | ".join(f"{label} single | {label} batch" for label in datasets)
            + " |"
        )
        lines += [
            "Ratio = best exact peer's median ÷ imgscout's median at that radius (single: `query_arrays` of one hash vs one-query peer calls; "
            "batch: `query_arrays` on one thread vs any peer figure, batch calls included; targets single / batch).",
            "",
            header,
            "|" + "---|" * (2 + 2 * len(datasets)),
        ]
        for radius, single_target in SINGLE_TARGETS.items():
            batch_target = BATCH_TARGETS[radius]
            cells = []
            for section in datasets.values():
                row = section["range"].get(str(radius))
                for batch, target in ((False, single_target), (True, batch_target)):
                    ratio = range_ratio(row, batch)[0] if row else None
                    cells.append(verdict(ratio, target))
            lines.append(
                f"| {radius} | ≥ {single_target:g}x / ≥ {batch_target:g}x | "
                + " | ".join(cells)
                + " |"
            )
        lines.append("")
    other = ["| target | measured | verdict |", "|---|---|---|"]
    for label, section in datasets.items():
        for k in ("1", "10"):
            systems = section.get("knn", {}).get(k, {}).get("systems", {})
            if "imgscout knn_arrays" in systems and "FAISS flat search batch" in systems:
                mine = systems["imgscout knn_arrays"]["median_us"]
                faiss = systems["FAISS flat search batch"]["median_us"]
                other.append(
                    f"| kNN k={k} ≥ {KNN_TARGET:g}x FAISS flat batch `search` ({label}) | imgscout "
                    f"`knn_arrays` {fmt_us(mine)} µs, FAISS {fmt_us(faiss)} µs per query | "
                    f"{verdict(faiss / mine, KNN_TARGET)} |"
                )
    build = results.get("build")
    if build:
        value = build["bulk_median_s"]
        other.append(
            f"| build of {build['entries']:,} (add_many + sync) ≤ {BUILD_TARGET_S} s | {value:.3f} s | {'met' if value <= BUILD_TARGET_S else 'NOT met'} |"
        )
    memory = results.get("memory")
    if memory:
        worst = max(memory["rss_bytes_per_entry"], memory["info_bytes_per_entry"])
        other.append(
            f"| ≤ {BYTES_TARGET:g} bytes per entry without titles ({memory['entries']:,}) | RSS {memory['rss_bytes_per_entry']:.1f}, "
            f"info() {memory['info_bytes_per_entry']:.1f} | {'met' if worst <= BYTES_TARGET else 'NOT met'} |"
        )
    pairs = results.get("pairs", {})
    dedup = pairs.get("imagededup", {})
    small = next(
        (r for r in pairs.get("runs", []) if r["entries"] == dedup.get("extrapolated_entries")),
        None,
    )
    if dedup and small:
        ratio = dedup["extrapolated_s"] / small["median_s"]
        other.append(
            f"| `pairs` on {small['entries']:,} at r=8 ≥ {PAIRS_TARGET:g}x imagededup | imgscout {small['median_s'] * 1e3:.1f} ms, "
            f"imagededup {dedup['extrapolated_s']:,.0f} s (extrapolated ~n² from {dedup['runs'][-1]['entries']:,}) | {verdict(ratio, PAIRS_TARGET)} |"
        )
    elif dedup:
        run = dedup["runs"][-1]
        other.append(
            f"| `pairs` at r=8 ≥ {PAIRS_TARGET:g}x imagededup (same {run['entries']:,} entries) | imgscout {run['imgscout_s'] * 1e3:.2f} ms, "
            f"imagededup {run['imagededup_s']:.2f} s | {verdict(run['ratio'], PAIRS_TARGET)} |"
        )
    largest = max(pairs.get("runs", []), key=lambda r: r["entries"], default=None)
    if largest and "arrays_all_threads_s" in largest:
        value = largest["arrays_all_threads_s"]
        other.append(
            f"| `pairs_arrays(8)` on {largest['label']} ≤ {PAIRS_SECONDS_TARGET:g} s on "
            f"{largest['all_threads']} threads | {value:.2f} s (one thread {largest['arrays_one_thread_s']:.2f} s, "
            f"`pairs` objects {largest['median_s']:.2f} s) | {'met' if value <= PAIRS_SECONDS_TARGET else 'NOT met'} |"
        )
    redis = results.get("redis", {})
    for name, key in (
        ("redis-benchmark, random hashes", "ratio_random"),
        ("redis-benchmark, one existing hash", "ratio_fixed"),
    ):
        value = redis.get("redis_benchmark", {}).get(key)
        if value is not None:
            other.append(
                f"| Redis `imgscout.query` r=4 ≥ 50% of PING throughput ({name}, pipeline {redis['pipeline_depth']}) | "
                f"{value * 100:.0f}% | {'met' if value >= REDIS_THROUGHPUT_TARGET else 'NOT met'} |"
            )
    if redis.get("python_pipelined"):
        value = redis["python_pipelined"]["ratio"]
        other.append(
            f"| same, Python pipelined client, varied hashes | {value * 100:.0f}% | {'met' if value >= REDIS_THROUGHPUT_TARGET else 'NOT met'} |"
        )
    for radius, row in redis.get("commandstats", {}).items():
        other.append(
            f"| server time per call r={radius} ≥ {OLD_MODULE_TARGET:g}x faster than the old module ({row['old_module_us'] / 1000:g} ms"
            f"{'' if row['old_module_note'] == 'measured' else ', r=12 figure as lower bound'}) | {row['usec_per_call']:.1f} µs | "
            f"{verdict(row['speedup_vs_old'], OLD_MODULE_TARGET)} |"
        )
    if len(other) > 2:
        lines += [*other, ""]
    return lines


def range_sections(results: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for label, section in results.get("datasets", {}).items():
        rows = section["range"]
        systems = list(next(iter(rows.values()))["systems"]) if rows else []
        lines += [f"## Range queries, {label} (median µs per query)", ""]
        lines.append(
            "| r | mean answers | "
            + " | ".join(systems)
            + " | best peer (single) | ratio | best peer (batch) | ratio |"
        )
        lines.append("|" + "---|" * (len(systems) + 6))
        for radius, row in rows.items():
            cells = []
            for name in systems:
                s = row["systems"].get(name)
                text = fmt_us(s["median_us"]) if s else "-"
                if s and not s.get("exact", True):
                    text += " (inexact)"
                cells.append(text)
            single, single_peer = range_ratio(row, False)
            batch, batch_peer = range_ratio(row, True)
            lines.append(
                f"| {radius} | {row['mean_results']:,.1f} | "
                + " | ".join(cells)
                + f" | {single_peer} | {fmt_ratio(single)} | {batch_peer} | {fmt_ratio(batch)} |"
            )
        lines.append("")
        lines += [
            f"Ratio of each peer's median to imgscout's (`query_arrays` of one hash for one-query peers, `query_arrays` on one thread for batch calls, on every core for every-core batch calls), {label}:",
            "",
        ]
        peers_only = [n for n in systems if not is_imgscout(n)]
        lines.append("| r | " + " | ".join(peers_only) + " |")
        lines.append("|" + "---|" * (len(peers_only) + 1))
        for radius, row in rows.items():
            cells = []
            for name in peers_only:
                s = row["systems"].get(name)
                mine = own_figure(row, name)
                cells.append(fmt_ratio(s["median_us"] / mine["median_us"]) if s and mine else "-")
            lines.append(f"| {radius} | " + " | ".join(cells) + " |")
        lines.append("")
        calls = {
            name: min(r["systems"][name]["calls"] for r in rows.values() if name in r["systems"])
            for name in systems
        }
        lines.append(
            "Calls per figure (fewest over radii; a time budget cuts slow systems short): "
            + ", ".join(f"{name} {count}" for name, count in calls.items())
            + ". Build seconds: "
            + ", ".join(f"{k} {v:.2f}" for k, v in section.get("build_s", {}).items())
            + "."
        )
        info = section.get("info")
        if info:
            lines += [
                "",
                "imgscout `info()` after the build: "
                + ", ".join(f"{k} = `{v}`" for k, v in info.items())
                + ".",
            ]
        lines.append("")
    return lines


def knn_sections(results: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for label, section in results.get("datasets", {}).items():
        knn = section.get("knn", {})
        if not knn:
            continue
        systems = list(next(iter(knn.values()))["systems"])
        lines += [
            f"## kNN, {label} (median µs per query)",
            "",
            "| k | " + " | ".join(systems) + " | FAISS flat batch ÷ imgscout knn_arrays |",
            "|" + "---|" * (len(systems) + 2),
        ]
        for k, row in knn.items():
            s = row["systems"]
            faiss = s.get("FAISS flat search batch")
            mine = s.get("imgscout knn_arrays", s["imgscout knn"])
            ratio = faiss["median_us"] / mine["median_us"] if faiss else None
            lines.append(
                f"| {k} | "
                + " | ".join(fmt_us(s[n]["median_us"]) for n in systems)
                + f" | {fmt_ratio(ratio)} |"
            )
        lines.append("")
    return lines


def python_layer_section(results: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for label, section in results.get("datasets", {}).items():
        costs = section.get("python_layer")
        if not costs:
            continue
        names = list(next(iter(costs.values())))
        lines += [
            f"## Where wide queries spend their time, {label} (median µs, a few queries)",
            "",
            "`Index.query` builds `Match` named tuples from the extension's plain tuples; `_core.query` with "
            "limit 1 stops at the nearest match (a k-nearest search bounded by the radius) and builds one answer object. Diagnostic only (`_core` is private).",
            "",
            "| r | " + " | ".join(f"`{n}`" for n in names) + " |",
            "|" + "---|" * (len(names) + 1),
        ]
        for radius, row in costs.items():
            lines.append(f"| {radius} | " + " | ".join(fmt_us(row[n]) for n in names) + " |")
        lines.append("")
    return lines


def bktree_sections(results: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for label, section in results.get("bktree", {}).items():
        if not section:
            continue
        rows = section["range"]
        systems = list(next(iter(rows.values()))["systems"])
        lines += [
            f"## pybktree comparison, {label} (median µs per query; pybktree build {section['pybktree_build_s']:.2f} s)",
            "",
            "| r | mean answers | " + " | ".join(systems) + " | pybktree ÷ imgscout |",
            "|" + "---|" * (len(systems) + 3),
        ]
        for radius, row in rows.items():
            s = row["systems"]
            ratio = s["pybktree"]["median_us"] / s["imgscout query"]["median_us"]
            lines.append(
                f"| {radius} | {row['mean_results']:,.1f} | "
                + " | ".join(fmt_us(s[n]["median_us"]) for n in systems)
                + f" | {fmt_ratio(ratio)} |"
            )
        lines.append("")
    return lines


def pairs_section(results: dict[str, Any]) -> list[str]:
    pairs = results.get("pairs")
    if not pairs:
        return []
    lines = [
        f"## Self-join `pairs` at r={pairs['radius']}",
        "",
        "`pairs` returns one `Pair` object per pair (on every core); `pairs_arrays` returns the"
        " same rows as three numpy arrays (checked equal), timed on one thread and on every core.",
        "",
        "| data | pairs | imgscout `pairs` | `pairs_arrays` one thread | `pairs_arrays` all threads | answer check |",
        "|---|---|---|---|---|---|",
    ]
    for run in pairs["runs"]:
        arrays = [
            f"{run[key] * 1e3:,.1f} ms" if key in run else "n/a"
            for key in ("arrays_one_thread_s", "arrays_all_threads_s")
        ]
        lines.append(
            f"| {run['label']} | {run['pairs']:,} | {run['median_s'] * 1e3:,.1f} ms | {arrays[0]} | {arrays[1]} | {run['check']} |"
        )
    lines.append("")
    dedup = pairs.get("imagededup")
    if dedup:
        lines += [
            "imagededup `PHash().find_duplicates(encoding_map=..., search_method='brute_force_cython', num_dist_workers=1)` on the first n entries of the same data:",
            "",
            "| n | imagededup | imgscout `pairs` | ratio | imagededup exact |",
            "|---|---|---|---|---|",
        ]
        for run in dedup["runs"]:
            lines.append(
                f"| {run['entries']:,} | {run['imagededup_s']:.2f} s | {run['imgscout_s'] * 1e3:.3f} ms | {fmt_ratio(run['ratio'])} | {run['exact']} |"
            )
        exponent = dedup.get("exponent_fit")
        lines += [
            "",
            f"imagededup at {dedup['extrapolated_entries']:,}: {dedup['extrapolated_s']:,.0f} s extrapolated as n² from the largest run"
            + (f" (fitted exponent over the runs: {exponent:.2f})" if exponent else "")
            + "; running it would take that long.",
            "",
        ]
    return lines


def build_memory_section(results: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    build = results.get("build")
    if build:
        lines += [f"## Build and memory ({build['entries']:,} uniform entries)", ""]
        runs = ", ".join(f"{r['total_s']:.3f}" for r in build["bulk_runs"])
        lines.append(
            f"- `add_many` + `sync` (one bulk sync): median {build['bulk_median_s']:.3f} s (runs: {runs} s; "
            f"add_many {build['bulk_runs'][0]['add_many_s']:.3f} s + sync {build['bulk_runs'][0]['sync_s']:.3f} s in the first)."
        )
        default = build["default_threshold"]
        lines.append(
            f"- with the default sync threshold 500 (automatic syncs during add_many): {default['total_s']:.3f} s."
        )
    memory = results.get("memory")
    if memory:
        if not build:
            lines += ["## Memory", ""]
        lines.append(
            f"- memory, fresh process, empty titles, {memory['entries']:,} entries: RSS grew {memory['rss_bytes_per_entry']:.1f} bytes per entry "
            f"after `malloc_trim(0)` ({memory.get('rss_untrimmed_bytes_per_entry', float('nan')):.1f} before it: freed build temporaries glibc had kept); "
            f"`info()['memory_bytes']` says {memory['info_bytes_per_entry']:.1f}."
        )
    return lines + ([""] if lines else [])


def redis_section(results: dict[str, Any]) -> list[str]:
    redis = results.get("redis")
    if not redis:
        return []
    lines = [
        f"## Through Redis ({redis['entries']:,} uniform entries, own redis-server with the module)",
        "",
        f"- `imgscout.madd` ({redis['entries']:,} entries, 1,000 per command, pipelined): {redis['madd_entries_per_s']:,.0f} entries/s; "
        f"`imgscout.sync` {redis['sync_s']:.2f} s; with sync {redis['madd_and_sync_entries_per_s']:,.0f} entries/s; "
        f"used_memory grew {redis['used_memory_bytes_per_entry']:.0f} bytes per entry (titles included; {redis.get('keys_after_load', '?'):,} keys in the database afterwards).",
    ]
    bench = redis.get("redis_benchmark")
    if bench:
        lines.append(
            f"- redis-benchmark, {redis['benchmark_clients']} clients, pipeline {redis['pipeline_depth']}, {bench['requests']:,} queries / {bench.get('ping_requests', bench['requests']):,} PINGs per run, median of 3 runs: "
            f"`imgscout.query key <existing hash> 4` {bench['query_fixed_hash_per_s']:,.0f}/s, `imgscout.query key __rand_int__ 4` "
            f"{bench['query_random_hash_per_s']:,.0f}/s, `PING` {bench['ping_per_s']:,.0f}/s."
        )
    python = redis.get("python_pipelined")
    if python:
        lines.append(
            f"- redis-py, one connection, pipeline {redis['pipeline_depth']}, {python['queries']:,} varied hashes (half near entries): "
            f"query {python['query_per_s']:,.0f}/s, PING {python['ping_per_s']:,.0f}/s ({python['ratio'] * 100:.0f}%); every reply checked."
        )
    lines += [
        "",
        "| r | usec_per_call (INFO commandstats) | pipelined round trip µs/query | old module µs | faster than old |",
        "|---|---|---|---|---|",
    ]
    for radius, row in redis.get("commandstats", {}).items():
        note = "" if row["old_module_note"] == "measured" else " (r=12 figure)"
        lines.append(
            f"| {radius} | {row['usec_per_call']:.2f} | {row['round_trip_us_pipelined']:.1f} | {row['old_module_us']:,.0f}{note} | {fmt_ratio(row['speedup_vs_old'])} |"
        )
    return [*lines, ""]


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = list(results.get("datasets", {}).items()) + [
        (f"{label} (pybktree)", section)
        for label, section in results.get("bktree", {}).items()
        if section
    ]
    if not panels:
        fig, ax = plt.subplots(figsize=(6, 3))
        ax.text(0.5, 0.5, "no range results", ha="center")
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return
    columns = 2
    rows = (len(panels) + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(7 * columns, 4.5 * rows), squeeze=False)
    for ax, (label, section) in zip(axes.flat, panels, strict=False):
        radii = [int(r) for r in section["range"]]
        names = list(next(iter(section["range"].values()))["systems"])
        for name in names:
            values = [
                section["range"][str(r)]["systems"].get(name, {}).get("median_us") for r in radii
            ]
            style = "-" if is_imgscout(name) else "--"
            width = 2.5 if is_imgscout(name) else 1.2
            marker = "o" if not name.endswith("batch") and not name.endswith("query_many") else "s"
            ax.plot(radii, values, style, marker=marker, markersize=3, linewidth=width, label=name)
        ax.set_yscale("log")
        ax.set_xlabel("radius (bits)")
        ax.set_ylabel("median µs per query")
        ax.set_title(label)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.suptitle("Exact Hamming range search, one thread (lower is better)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
