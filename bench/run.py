"""imgscout benchmark suite: imgscout against its exact peers, checked and timed. One command:

    python bench/run.py            # full run: 1M uniform + 1M clustered, ~30 minutes
    python bench/run.py --quick    # same sections at 200k entries, a few minutes
    python bench/run.py --tiny     # 20k entries, seconds (the smoke test runs this)

Writes ``RESULTS.md``, ``results.png`` and ``results.json`` to ``--output-dir`` (default: this
folder). Every imgscout answer is compared with the numpy brute-force answer; any difference
exits with status 1. See bench/README.md.
"""

from __future__ import annotations

import os

# One thread everywhere: set before numpy, FAISS or imgscout start their thread pools.
for _variable in (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "RAYON_NUM_THREADS",
):
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import asdict, dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402
from tests.support import checks, reference  # noqa: E402
from tests.support.checks import WrongAnswer  # noqa: E402

from bench import hashdata, peers, report, subject  # noqa: E402
from bench.timing import Timed, time_batch, time_each  # noqa: E402

RADII = (0, 2, 4, 6, 8, 10, 12, 16, 20, 24, 32)
KNN_KS = (1, 10, 100)
SELF_JOIN_RADIUS = 8
SEED_UNIFORM = 11
SEED_CLUSTERED = 12
SEED_QUERIES = 13
SEED_PAIRS = 14
SEED_SAMPLE = 15
SEED_TEN_MILLION = 16
#: FAISS MultiHash layouts tried: 4x16, the layout the targets were set against, and 3x21, the
#: log2(N) substring length that multi-index hashing recommends for 1M entries.
MULTIHASH_LAYOUTS = ((4, 16), (3, 21))
#: Radii at which the cost of building Python answer objects is split out (wide answers).
PYTHON_LAYER_RADII = (8, 16, 24, 32)


#: Threads of the all-threads rows: every core of the machine measuring.
ALL_THREADS = os.cpu_count() or 1


@dataclass(frozen=True)
class Mode:
    name: str
    entries: int
    queries: int
    budget_s: float
    min_calls: int
    batch_result_cap: int
    batch_repeats: int
    bktree_entries: int
    bktree_queries: int
    pairs_entries: int
    pairs_sample: int
    imagededup_sizes: tuple[int, ...]
    redis_entries: int
    redis_queries: int
    build_repeats: int
    #: A batch is repeated until its timed total reaches this (fast batches are noise-prone).
    batch_min_total_s: float
    ten_million_queries: int = 40


MODES = {
    "tiny": Mode(
        name="tiny",
        entries=20_000,
        queries=6,
        budget_s=0.2,
        min_calls=3,
        batch_result_cap=200_000,
        batch_repeats=1,
        bktree_entries=5_000,
        bktree_queries=4,
        pairs_entries=5_000,
        pairs_sample=200,
        imagededup_sizes=(500, 1_000),
        redis_entries=20_000,
        redis_queries=64,
        build_repeats=1,
        batch_min_total_s=0.0,
    ),
    "quick": Mode(
        name="quick",
        entries=200_000,
        queries=40,
        budget_s=1.5,
        min_calls=5,
        batch_result_cap=1_000_000,
        batch_repeats=2,
        bktree_entries=20_000,
        bktree_queries=20,
        pairs_entries=20_000,
        pairs_sample=500,
        imagededup_sizes=(2_000, 4_000),
        redis_entries=200_000,
        redis_queries=400,
        build_repeats=2,
        batch_min_total_s=0.1,
    ),
    "full": Mode(
        name="full",
        entries=1_000_000,
        queries=200,
        budget_s=4.0,
        min_calls=10,
        batch_result_cap=1_000_000,
        batch_repeats=3,
        bktree_entries=100_000,
        bktree_queries=100,
        pairs_entries=100_000,
        pairs_sample=2_000,
        imagededup_sizes=(5_000, 10_000, 20_000),
        redis_entries=1_000_000,
        redis_queries=2_000,
        build_repeats=3,
        batch_min_total_s=0.25,
    ),
}
#: imagededup's self-join is quadratic; its time at this size is extrapolated from the sizes run.
IMAGEDEDUP_TARGET_ENTRIES = 100_000


@dataclass
class Counters:
    imgscout_answers_checked: int = 0
    peer_answers_checked: int = 0
    inexact_peers: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


COMPILER_NAMES = ("cargo", "rustc", "cargo-clippy", "clippy-driver")


def compilers_running() -> list[str]:
    """Names of compiler processes (cargo, rustc, clippy) running now: other engineers' builds
    share the 2 cores, and the report says so. Reads process names only, never command lines."""
    names: set[str] = set()
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            name = comm.read_text().strip()
        except OSError:
            continue  # the process ended meanwhile
        if name in COMPILER_NAMES:
            names.add(name)
    return sorted(names)


def environment(mode: Mode) -> dict[str, Any]:
    cpu = platform.processor()
    # Family and model name the microarchitecture where the model name does not ("AMD
    # EPYC" in a VM is Zen 4 at family 25, Zen 5 at 26).
    family_model: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key in ("cpu family", "model") and key not in family_model:
                family_model[key] = value.strip()
            if key == "model name":
                cpu = value.strip()
                break
    except OSError:
        pass
    if family_model:
        family = family_model.get("cpu family", "?")
        cpu += f" (family {family} model {family_model.get('model', '?')})"
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    # Uncommitted changes in the code under test mean the commit hash alone does not name it.
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "crates", "python", "Cargo.lock"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.splitlines()
    versions = {
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    for name in ("imgscout", "faiss-cpu", "pybktree", "imagededup", "redis", "matplotlib"):
        try:
            from importlib.metadata import version

            versions[name] = version(name)
        except Exception:
            versions[name] = "not installed"
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    from imgscout import _core

    probe = _core.Index()
    return {
        "mode": mode.name,
        "cpu": cpu,
        "cpu_features": sorted(flags & {"popcnt", "avx2", "avx512f", "avx512_vpopcntdq"}),
        "kernel": dict(probe.info())["kernel"],
        "kernel_forced": os.environ.get("IMGSCOUT_KERNEL"),
        "cores": os.cpu_count(),
        "commit": commit,
        "uncommitted_code": dirty,
        "versions": versions,
        "compilers_at_start": compilers_running(),
    }


class Bench:
    def __init__(self, mode: Mode, args: argparse.Namespace) -> None:
        self.mode = mode
        self.args = args
        self.counters = Counters()
        self.results: dict[str, Any] = {"environment": environment(mode), "config": asdict(mode)}
        self.imgscout = subject.load_module()

    def faiss_available(self) -> bool:
        if peers.package_available("faiss"):
            return True
        self.counters.skipped["FAISS"] = "package faiss-cpu is not installed"
        return False

    # -- checks ---------------------------------------------------------------------------------

    def check_imgscout(self, answer: Any, expected: reference.Expected, what: str) -> None:
        checks.check_matches(answer, expected, what)
        self.counters.imgscout_answers_checked += 1

    def check_peer(
        self, name: str, ids: np.ndarray, dist: np.ndarray, expected: reference.Expected, what: str
    ) -> bool:
        try:
            checks.check_id_distance_set(ids, dist, expected, what)
        except WrongAnswer as wrong:
            note = f"{name}: {wrong}"
            if note not in self.counters.inexact_peers:
                self.counters.inexact_peers.append(note)
            log(f"PEER NOT EXACT: {note}")
            return False
        self.counters.peer_answers_checked += 1
        return True

    def check_peer_knn(
        self, name: str, dist: np.ndarray, expected: reference.Expected, what: str
    ) -> None:
        try:
            checks.check_knn_distances(dist, expected, what)
        except WrongAnswer as wrong:
            note = f"{name}: {wrong}"
            if note not in self.counters.inexact_peers:
                self.counters.inexact_peers.append(note)
            log(f"PEER NOT EXACT: {note}")
            return
        self.counters.peer_answers_checked += 1

    # -- range queries and kNN on one dataset ---------------------------------------------------

    def range_section(
        self,
        label: str,
        data: np.ndarray,
        queries_per_radius: int | None = None,
        with_multihash: bool = True,
    ) -> dict[str, Any]:
        queries_per_radius = queries_per_radius or self.mode.queries
        ids = np.arange(len(data), dtype=np.int64)
        titles = subject.titles_for(ids)
        log(f"{label}: building imgscout on {len(data):,} entries")
        index, add_s, sync_s = subject.build(self.imgscout, data, ids, titles)
        del titles
        section: dict[str, Any] = {
            "entries": len(data),
            "build_s": {"imgscout (add_many + sync)": add_s + sync_s},
            "range": {},
            "knn": {},
        }
        range_peers: list[Any] = [peers.NumpyScan(data, ids)]
        flat = None
        if self.faiss_available():
            flat, flat_s = peers.faiss_flat(data, ids)
            section["build_s"]["FAISS flat"] = flat_s
            range_peers.append(flat)
        if with_multihash and flat is not None:
            for nhash, bits in MULTIHASH_LAYOUTS:
                multihash, multihash_s = peers.faiss_multihash(data, ids, nhash, bits)
                section["build_s"][multihash.name] = multihash_s
                range_peers.append(multihash)
        section["info"] = {str(k): v for k, v in dict(index.info()).items()}
        for radius in RADII:
            section["range"][str(radius)] = self.one_radius(
                label, index, data, ids, range_peers, radius, queries_per_radius
            )
        section["knn"] = self.knn_section(label, index, data, ids, flat, queries_per_radius)
        section["python_layer"] = self.python_layer_costs(index, data)
        return section

    def python_layer_costs(self, index: Any, data: np.ndarray) -> dict[str, Any]:
        """Where a wide query's time goes: the public ``Index.query`` (Match tuples), the
        extension's ``_core.query`` (plain tuples) and ``_core.query`` with limit 1 (the search
        and its collection in Rust, one answer object). Diagnostic only: ``_core`` is private."""
        core = getattr(index, "_core", None)
        if core is None or not hasattr(core, "query"):
            return {}
        out: dict[str, Any] = {}
        for radius in PYTHON_LAYER_RADII:
            queries = [int(q) for q in hashdata.make_queries(data, radius, 6, SEED_QUERIES)]
            calls = {
                "Index.query": lambda q, r=radius: index.query(q, r),
                "_core.query": lambda q, r=radius: core.query(q, r, None),
                "_core.query limit 1": lambda q, r=radius: core.query(q, r, 1),
            }
            out[str(radius)] = {
                name: time_each(call, queries, lambda _i, _a: None, self.mode.budget_s, 3).median
                for name, call in calls.items()
            }
        return out

    def one_radius(
        self,
        label: str,
        index: Any,
        data: np.ndarray,
        ids: np.ndarray,
        range_peers: list[Any],
        radius: int,
        count: int,
    ) -> dict[str, Any]:
        mode = self.mode
        queries = hashdata.make_queries(data, radius, count, SEED_QUERIES)
        query_ints = [int(q) for q in queries.tolist()]
        dist_cache = [reference.distances(data, q) for q in queries]
        expected = [reference.expected_range(d, ids, radius) for d in dist_cache]
        del dist_cache
        sizes = np.array([len(e) for e in expected])
        row: dict[str, Any] = {"mean_results": float(sizes.mean()), "systems": {}}
        where = f"{label} r={radius}"

        single = time_each(
            lambda q: index.query(q, radius),
            query_ints,
            lambda i, answer: self.check_imgscout(
                answer, expected[i], f"imgscout query {where} q#{i}"
            ),
            mode.budget_s,
            mode.min_calls,
        )
        row["systems"]["imgscout query"] = summary(single)

        def check_one(i: int, answer: Any) -> None:
            lims, found_ids, found_distances = answer
            if not (
                len(lims) == 2
                and np.array_equal(found_ids, expected[i].ids)
                and np.array_equal(found_distances, expected[i].distances)
            ):
                raise WrongAnswer(f"imgscout query_arrays one hash {where} q#{i}")

        index.threads = 1
        one = time_each(
            lambda q: index.query_arrays(q, radius),
            query_ints,
            check_one,
            mode.budget_s,
            mode.min_calls,
        )
        row["systems"]["imgscout query_arrays one hash"] = summary(one)
        # A batch holds the longest prefix of the queries whose answers stay under the cap (a wide
        # radius on 1M uniform returns half the index per query).
        cumulative = np.cumsum(sizes)
        batch_size = max(1, int(np.searchsorted(cumulative, mode.batch_result_cap, side="right")))
        batch_size = min(batch_size, len(queries), self.batch_limit(single))
        batch = queries[:batch_size]

        def check_batch(answers: Any) -> None:
            if len(answers) != batch_size:
                raise WrongAnswer(
                    f"imgscout query_many {where}: {len(answers)} answers for {batch_size} queries"
                )
            for i, answer in enumerate(answers):
                self.check_imgscout(answer, expected[i], f"imgscout query_many {where} q#{i}")

        many = time_batch(
            lambda: index.query_many(batch, radius),
            batch_size,
            check_batch,
            mode.batch_repeats,
            min_total_s=mode.batch_min_total_s,
        )
        row["systems"]["imgscout query_many"] = summary(many, batch_size)

        def check_arrays(answer: Any) -> None:
            lims, found_ids, found_distances = answer
            if len(lims) != batch_size + 1:
                raise WrongAnswer(f"imgscout query_arrays {where}: {len(lims)} lims")
            for i in range(batch_size):
                rows = slice(int(lims[i]), int(lims[i + 1]))
                if not (
                    np.array_equal(found_ids[rows], expected[i].ids)
                    and np.array_equal(found_distances[rows], expected[i].distances)
                ):
                    raise WrongAnswer(f"imgscout query_arrays {where} q#{i}")

        for threads, name in (
            (1, "imgscout query_arrays"),
            (ALL_THREADS, "imgscout query_arrays all threads"),
        ):
            index.threads = threads
            arrays = time_batch(
                lambda: index.query_arrays(batch, radius),
                batch_size,
                check_arrays,
                mode.batch_repeats,
                min_total_s=mode.batch_min_total_s,
            )
            row["systems"][name] = summary(arrays, batch_size)
        index.threads = 1

        for peer in range_peers:
            if hasattr(peer, "prepare"):
                peer.prepare(radius)
            exact = [True]

            def check_single(
                i: int, answer: peers.RangeAnswer, peer: Any = peer, exact: list[bool] = exact
            ) -> None:
                exact[0] &= self.check_peer(
                    peer.name, answer[0], answer[1], expected[i], f"{peer.name} {where} q#{i}"
                )

            timed = time_each(
                lambda q, peer=peer: peer.range(q, radius),
                list(queries),
                check_single,
                mode.budget_s,
                mode.min_calls,
            )
            row["systems"][peer.name] = summary(timed) | {"exact": exact[0]}
            if hasattr(peer, "range_batch"):
                peer_batch = min(batch_size, self.batch_limit(timed))

                def check_peer_batch(
                    answers: list[peers.RangeAnswer], peer: Any = peer, exact: list[bool] = exact
                ) -> None:
                    for i, answer in enumerate(answers):
                        exact[0] &= self.check_peer(
                            peer.name,
                            answer[0],
                            answer[1],
                            expected[i],
                            f"{peer.name} batch {where} q#{i}",
                        )

                timed_batch = time_batch(
                    lambda peer=peer, n=peer_batch: peer.range_batch(queries[:n], radius),
                    peer_batch,
                    check_peer_batch,
                    mode.batch_repeats,
                    min_total_s=mode.batch_min_total_s,
                )
                row["systems"][f"{peer.name} batch"] = summary(timed_batch, peer_batch) | {
                    "exact": exact[0]
                }
                if peer.name == "FAISS flat" and ALL_THREADS > 1:
                    # FAISS on every core too, for the all-threads rows to face.
                    faiss = peers.faiss_module()
                    faiss.omp_set_num_threads(ALL_THREADS)
                    try:
                        timed_all = time_batch(
                            lambda peer=peer, n=peer_batch: peer.range_batch(queries[:n], radius),
                            peer_batch,
                            check_peer_batch,
                            mode.batch_repeats,
                            min_total_s=mode.batch_min_total_s,
                        )
                    finally:
                        faiss.omp_set_num_threads(1)
                    row["systems"][f"{peer.name} batch all threads"] = summary(
                        timed_all, peer_batch
                    ) | {"exact": exact[0]}
                row["systems"][peer.name]["exact"] = exact[0]
        log(
            f"{where}: "
            + ", ".join(f"{name} {s['median_us']:.1f}" for name, s in row["systems"].items())
            + f" µs (mean results {row['mean_results']:.1f})"
        )
        return row

    def batch_limit(self, single: Timed) -> int:
        """Queries a batch may hold so one repeat stays near the time budget."""
        return max(1, int(self.mode.budget_s * 1e6 / max(single.median, 1e-3)))

    def knn_section(
        self,
        label: str,
        index: Any,
        data: np.ndarray,
        ids: np.ndarray,
        flat: peers.FaissRange | None,
        count: int,
    ) -> dict[str, Any]:
        mode = self.mode
        queries = hashdata.make_queries(data, SELF_JOIN_RADIUS, count, SEED_QUERIES + 1)
        query_ints = [int(q) for q in queries.tolist()]
        dists = [reference.distances(data, q) for q in queries]
        out: dict[str, Any] = {}
        for k in KNN_KS:
            expected = [reference.expected_knn(d, ids, k) for d in dists]
            where = f"{label} k={k}"
            systems: dict[str, Any] = {}
            timed = time_each(
                lambda q, k=k: index.knn(q, k),
                query_ints,
                lambda i, answer, expected=expected, where=where: self.check_imgscout(
                    answer, expected[i], f"imgscout knn {where} q#{i}"
                ),
                mode.budget_s,
                mode.min_calls,
            )
            systems["imgscout knn"] = summary(timed)

            def check_knn_arrays(
                answer: Any, expected: list[reference.Expected] = expected, where: str = where
            ) -> None:
                found_ids, found_distances = answer
                for i, want in enumerate(expected):
                    if not (
                        np.array_equal(found_ids[i], want.ids)
                        and np.array_equal(found_distances[i], want.distances)
                    ):
                        raise WrongAnswer(f"imgscout knn_arrays {where} q#{i}")
                self.counters.imgscout_answers_checked += len(expected)

            for threads, name in (
                (1, "imgscout knn_arrays"),
                (ALL_THREADS, "imgscout knn_arrays all threads"),
            ):
                index.threads = threads
                timed = time_batch(
                    lambda k=k: index.knn_arrays(queries, k),
                    len(queries),
                    check_knn_arrays,
                    mode.batch_repeats,
                    min_total_s=mode.batch_min_total_s,
                )
                systems[name] = summary(timed, len(queries))
            index.threads = 1

            def check_distances(
                i: int,
                answer: peers.RangeAnswer,
                name: str = "FAISS flat search",
                expected: list[reference.Expected] = expected,
                where: str = where,
            ) -> None:
                self.check_peer_knn(name, answer[1], expected[i], f"{name} {where} q#{i}")

            def check_numpy(i: int, answer: peers.RangeAnswer) -> None:
                check_distances(i, answer, "numpy argpartition")

            if flat is not None:
                timed = time_each(
                    lambda q, k=k, flat=flat: flat.knn(q, k),
                    list(queries),
                    check_distances,
                    mode.budget_s,
                    mode.min_calls,
                )
                systems["FAISS flat search"] = summary(timed)
                timed = time_batch(
                    lambda k=k, flat=flat: flat.knn_batch(queries, k),
                    len(queries),
                    lambda answers: [check_distances(i, a) for i, a in enumerate(answers)] and None,
                    mode.batch_repeats,
                    min_total_s=mode.batch_min_total_s,
                )
                systems["FAISS flat search batch"] = summary(timed, len(queries))

            def numpy_knn(q: np.uint64, k: int = k) -> peers.RangeAnswer:
                dist = reference.distances(data, q)
                nearest = np.argpartition(dist, k - 1)[:k]
                return ids[nearest], dist[nearest]

            timed = time_each(numpy_knn, list(queries), check_numpy, mode.budget_s, mode.min_calls)
            systems["numpy argpartition"] = summary(timed)
            out[str(k)] = {"systems": systems}
            log(
                f"knn {where}: "
                + ", ".join(f"{name} {s['median_us']:.1f}" for name, s in systems.items())
                + " µs"
            )
        return out

    # -- pybktree at a size it can handle --------------------------------------------------------

    def bktree_section(self, label: str, data: np.ndarray) -> dict[str, Any]:
        mode = self.mode
        if not peers.package_available("pybktree"):
            self.counters.skipped["pybktree"] = "package pybktree is not installed"
            return {}
        ids = np.arange(len(data), dtype=np.int64)
        index, _, _ = subject.build(self.imgscout, data, ids, subject.titles_for(ids))
        started = time.perf_counter()
        tree = peers.BkTree(data, ids)
        build_s = time.perf_counter() - started
        systems = [tree, peers.NumpyScan(data, ids)]
        if self.faiss_available():
            systems.append(peers.faiss_flat(data, ids)[0])
        out: dict[str, Any] = {"entries": len(data), "pybktree_build_s": build_s, "range": {}}
        for radius in RADII:
            queries = hashdata.make_queries(data, radius, mode.bktree_queries, SEED_QUERIES)
            expected = [
                reference.expected_range(reference.distances(data, q), ids, radius) for q in queries
            ]
            where = f"{label} r={radius}"
            row: dict[str, Any] = {
                "mean_results": float(np.mean([len(e) for e in expected])),
                "systems": {},
            }
            timed = time_each(
                lambda q, radius=radius: index.query(q, radius),
                [int(q) for q in queries.tolist()],
                lambda i, answer, expected=expected, where=where: self.check_imgscout(
                    answer, expected[i], f"imgscout query {where} q#{i}"
                ),
                mode.budget_s,
                mode.min_calls,
            )
            row["systems"]["imgscout query"] = summary(timed)
            for peer in systems:
                exact = [True]

                def check(
                    i: int,
                    answer: peers.RangeAnswer,
                    peer: Any = peer,
                    expected: list[reference.Expected] = expected,
                    where: str = where,
                    exact: list[bool] = exact,
                ) -> None:
                    exact[0] &= self.check_peer(
                        peer.name, answer[0], answer[1], expected[i], f"{peer.name} {where} q#{i}"
                    )

                timed = time_each(
                    lambda q, peer=peer, radius=radius: peer.range(q, radius),
                    list(queries),
                    check,
                    mode.budget_s,
                    min(mode.min_calls, 3),
                )
                row["systems"][peer.name] = summary(timed) | {"exact": exact[0]}
            out["range"][str(radius)] = row
            log(
                f"{where}: "
                + ", ".join(f"{name} {s['median_us']:.1f}" for name, s in row["systems"].items())
                + " µs"
            )
        return out

    # -- self-join -------------------------------------------------------------------------------

    def pairs_section(self, clustered_main: np.ndarray) -> dict[str, Any]:
        mode = self.mode
        out: dict[str, Any] = {"radius": SELF_JOIN_RADIUS, "runs": [], "imagededup": {}}
        small = hashdata.clustered_hashes(mode.pairs_entries, SEED_PAIRS)
        for label, data, exact_check in (
            (f"clustered {len(small):,}", small, True),
            (f"clustered {len(clustered_main):,}", clustered_main, False),
        ):
            ids = np.arange(len(data), dtype=np.int64)
            index, _, _ = subject.build(self.imgscout, data, ids, subject.titles_for(ids))
            timings: list[float] = []
            rows = None
            # Repeats only while they are cheap: a slow self-join is timed once.
            while len(timings) < self.mode.batch_repeats and sum(timings) < self.mode.budget_s:
                started = time.perf_counter()
                answer = index.pairs(SELF_JOIN_RADIUS)
                timings.append(time.perf_counter() - started)
                rows = subject.pairs_as_rows(answer)
                del answer
            assert rows is not None
            what = f"imgscout pairs {label} r={SELF_JOIN_RADIUS}"
            if exact_check:
                log(f"{what}: brute-force reference self-join")
                checks.check_pairs_exact(
                    rows, reference.reference_pairs(data, ids, SELF_JOIN_RADIUS), what
                )
                check_kind = "exact (full O(n^2) reference)"
            else:
                sample = np.random.default_rng(SEED_SAMPLE).choice(
                    len(data), size=min(mode.pairs_sample, len(data)), replace=False
                )
                checks.check_pairs_sampled(rows, data, ids, SELF_JOIN_RADIUS, sample, what)
                check_kind = (
                    "every pair's distance, plus complete partner lists"
                    f" of {len(sample):,} random entries"
                )
            self.counters.imgscout_answers_checked += 1
            run: dict[str, Any] = {
                "label": label,
                "entries": len(data),
                "pairs": len(rows),
                "median_s": float(np.median(timings)),
                "check": check_kind,
            }
            log(f"{what}: {len(rows):,} pairs in {np.median(timings):.3f} s")
            # The same join as three arrays, on one thread and on every core: no Python object
            # per pair, so the join's own time shows. Its rows must be the ones checked above.
            for threads, key in ((1, "arrays_one_thread_s"), (ALL_THREADS, "arrays_all_threads_s")):
                index.threads = threads
                array_timings: list[float] = []
                while (
                    len(array_timings) < self.mode.batch_repeats
                    and sum(array_timings) < self.mode.budget_s
                ):
                    started = time.perf_counter()
                    a, b, distances = index.pairs_arrays(SELF_JOIN_RADIUS)
                    array_timings.append(time.perf_counter() - started)
                    arrays = np.stack(
                        [a.astype(np.int64), b.astype(np.int64), distances.astype(np.int64)],
                        axis=1,
                    )
                    if not np.array_equal(arrays, rows):
                        raise WrongAnswer(
                            f"imgscout pairs_arrays {label} on {threads} threads differs from pairs"
                        )
                    del a, b, distances, arrays
                self.counters.imgscout_answers_checked += 1
                run[key] = float(np.median(array_timings))
                log(f"imgscout pairs_arrays {label}, threads={threads}: {run[key]:.3f} s")
            run["all_threads"] = ALL_THREADS
            out["runs"].append(run)
        out["imagededup"] = self.imagededup_section(small)
        return out

    def imagededup_section(self, data_pool: np.ndarray) -> dict[str, Any]:
        if not (
            peers.package_available("imagededup")
            and peers.package_available("brute_force_cython_ext")
        ):
            self.counters.skipped["imagededup"] = (
                "package imagededup (with its brute_force_cython_ext) is not installed"
            )
            return {}
        missing = [
            name
            for name in ("sklearn", "tqdm", "pywt", "scipy", "PIL")
            if not peers.package_available(name)
        ]
        if missing:
            self.counters.skipped["imagededup"] = (
                f"imagededup's hashing path needs {', '.join(missing)} (not installed)"
            )
            return {}
        runs = []
        for size in self.mode.imagededup_sizes:
            data = data_pool[:size]
            ids = np.arange(size, dtype=np.int64)
            rows, elapsed = peers.imagededup_self_join(data, ids, SELF_JOIN_RADIUS)
            expected = reference.reference_pairs(data, ids, SELF_JOIN_RADIUS)
            exact = True
            try:
                checks.check_pairs_exact(rows, expected, f"imagededup {size}")
                self.counters.peer_answers_checked += 1
            except WrongAnswer as wrong:
                exact = False
                self.counters.inexact_peers.append(f"imagededup: {wrong}")
            index, _, _ = subject.build(self.imgscout, data, ids, subject.titles_for(ids))
            timings = []
            for _ in range(max(3, self.mode.batch_repeats)):
                started = time.perf_counter()
                answer = index.pairs(SELF_JOIN_RADIUS)
                timings.append(time.perf_counter() - started)
            checks.check_pairs_exact(
                subject.pairs_as_rows(answer), expected, f"imgscout pairs {size}"
            )
            self.counters.imgscout_answers_checked += 1
            imgscout_s = float(np.median(timings))
            runs.append(
                {
                    "entries": size,
                    "imagededup_s": elapsed,
                    "imgscout_s": imgscout_s,
                    "ratio": elapsed / imgscout_s,
                    "exact": exact,
                    "pairs": len(expected),
                }
            )
            log(
                f"imagededup self-join {size:,}: {elapsed:.2f} s,"
                f" imgscout {imgscout_s * 1e3:.3f} ms"
            )
        largest = runs[-1]
        # Quadratic: every query scans every entry in a Python-level loop over the whole dict.
        scale = (IMAGEDEDUP_TARGET_ENTRIES / largest["entries"]) ** 2
        return {
            "runs": runs,
            "extrapolated_entries": IMAGEDEDUP_TARGET_ENTRIES,
            "extrapolated_s": largest["imagededup_s"] * scale,
            "exponent_fit": fit_exponent(runs),
        }

    # -- build time and memory -------------------------------------------------------------------

    def build_section(self, data: np.ndarray) -> dict[str, Any]:
        ids = np.arange(len(data), dtype=np.int64)
        titles = subject.titles_for(ids)
        bulk = []
        for _ in range(self.mode.build_repeats):
            index, add_s, sync_s = subject.build(self.imgscout, data, ids, titles)
            bulk.append({"add_many_s": add_s, "sync_s": sync_s, "total_s": add_s + sync_s})
            del index
        index, add_s, sync_s = subject.build(self.imgscout, data, ids, titles, sync_threshold=500)
        default = {"add_many_s": add_s, "sync_s": sync_s, "total_s": add_s + sync_s}
        del index
        out = {
            "entries": len(data),
            "bulk_runs": bulk,
            "bulk_median_s": float(np.median([b["total_s"] for b in bulk])),
            "default_threshold": default,
        }
        log(
            f"build {len(data):,}: median {out['bulk_median_s']:.3f} s"
            f" (threshold 500: {default['total_s']:.3f} s)"
        )
        return out

    def memory_section(self, entries: int) -> dict[str, Any]:
        probe = Path(__file__).with_name("memory_probe.py")
        out = subprocess.run(
            [sys.executable, str(probe), str(entries), str(SEED_UNIFORM)],
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode != 0:
            raise RuntimeError(f"memory probe failed: {out.stderr[-2000:]}")
        figures = json.loads(out.stdout.strip().splitlines()[-1])
        log(
            f"memory {entries:,}: {figures['rss_bytes_per_entry']:.1f} B/entry RSS,"
            f" {figures['info_bytes_per_entry']:.1f} B/entry info()"
        )
        return figures

    # -- the whole run ---------------------------------------------------------------------------

    def section(self, name: str, body: Callable[[], Any]) -> Any:
        """Runs one section and returns what it measured; a wrong answer or a crash is recorded
        (the exit status is then non-zero) and the run goes on with the next section."""
        try:
            return body()
        except WrongAnswer as wrong:
            self.counters.errors.append(f"WRONG ANSWER in {name}: {wrong}")
            log(f"WRONG ANSWER in {name}: {wrong}")
        except Exception:
            self.counters.errors.append(f"{name}: {traceback.format_exc()}")
            log(f"{name} failed:\n{traceback.format_exc()}")
        return None

    def run(self) -> None:
        mode = self.mode
        sections = set(self.args.sections.split(",")) if self.args.sections else None

        def wanted(name: str) -> bool:
            return sections is None or name in sections

        def record(name: str, body: Callable[[], Any]) -> None:
            value = self.section(name, body)
            if value is not None:
                self.results[name] = value

        n = mode.entries
        uniform = hashdata.uniform_hashes(n, SEED_UNIFORM)
        clustered = hashdata.clustered_hashes(n, SEED_CLUSTERED)
        if wanted("build"):
            record("build", lambda: self.build_section(uniform))
        if wanted("memory"):
            record("memory", lambda: self.memory_section(n))
        datasets: dict[str, Any] = {}
        self.results["datasets"] = datasets
        if wanted("range"):
            for label, data in ((f"uniform {n:,}", uniform), (f"clustered {n:,}", clustered)):
                value = self.section(
                    label, lambda label=label, data=data: self.range_section(label, data)
                )
                if value is not None:
                    datasets[label] = value
        if wanted("bktree"):
            size = mode.bktree_entries
            tree_sets = {
                f"uniform {size:,}": uniform[:size],
                f"clustered {size:,}": clustered[:size],
            }
            record(
                "bktree",
                lambda: {label: self.bktree_section(label, d) for label, d in tree_sets.items()},
            )
        if wanted("pairs"):
            record("pairs", lambda: self.pairs_section(clustered))
        if wanted("redis") and not self.args.skip_redis:
            record("redis", self.redis_section)
        if self.args.ten_million:
            big = hashdata.uniform_hashes(10_000_000, SEED_TEN_MILLION)
            label = "uniform 10,000,000"
            value = self.section(
                label,
                lambda: self.range_section(
                    label, big, mode.ten_million_queries, with_multihash=False
                ),
            )
            if value is not None:
                datasets[label] = value

    def redis_section(self) -> dict[str, Any]:
        from bench import redis_bench

        module = redis_bench.module_path()
        if module is None:
            self.counters.skipped["redis"] = (
                "target/release/libimgscout.so not built (cargo build --release -p imgscout-redis)"
            )
            return {}
        if redis_bench.which("redis-server") is None:
            self.counters.skipped["redis"] = "redis-server not installed"
            return {}
        data = hashdata.uniform_hashes(self.mode.redis_entries, SEED_UNIFORM)
        return redis_bench.run(module, data, self.mode.redis_queries, self, log)


def summary(timed: Timed, batch_size: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"median_us": timed.median, "calls": timed.count}
    if batch_size is not None:
        out["batch_size"] = batch_size
    return out


def fit_exponent(runs: list[dict[str, Any]]) -> float | None:
    if len(runs) < 2:
        return None
    sizes = np.log([r["entries"] for r in runs])
    times = np.log([r["imagededup_s"] for r in runs])
    return float(np.polyfit(sizes, times, 1)[0])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument(
        "--quick",
        action="store_const",
        const="quick",
        dest="mode",
        help="200k entries, a few minutes",
    )
    size.add_argument(
        "--tiny",
        action="store_const",
        const="tiny",
        dest="mode",
        help="20k entries, seconds (smoke test)",
    )
    parser.add_argument(
        "--ten-million", action="store_true", help="also 10M uniform (about 1 GB of RAM more)"
    )
    parser.add_argument(
        "--skip-redis", action="store_true", help="leave out the Redis module section"
    )
    parser.add_argument(
        "--sections", help="comma-separated subset: build,memory,range,bktree,pairs,redis"
    )
    parser.add_argument(
        "--kernel",
        choices=("portable", "avx2", "avx512"),
        help="force imgscout's scan kernel (IMGSCOUT_KERNEL), to measure the one a CPU "
        "without the faster ones gets",
    )
    parser.add_argument("--output-dir", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument(
        "--report-only", type=Path, help="rewrite RESULTS.md and the plot from a results.json"
    )
    parser.set_defaults(mode="full")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.kernel:
        # Read by the core at its first search: set before anything searches.
        os.environ["IMGSCOUT_KERNEL"] = args.kernel
    args.output_dir.mkdir(parents=True, exist_ok=True)
    if args.report_only:
        results = json.loads(args.report_only.read_text())
        report.write(results, args.output_dir)
        return 0
    mode = MODES[args.mode]
    started = time.monotonic()
    bench = Bench(mode, args)
    bench.run()
    status = 1 if bench.counters.errors else 0
    bench.results["checks"] = asdict(bench.counters)
    bench.results["environment"]["compilers_at_end"] = compilers_running()
    bench.results["environment"]["wall_s"] = round(time.monotonic() - started)
    bench.results["status"] = "ok" if status == 0 else "failed"
    (args.output_dir / "results.json").write_text(
        json.dumps(bench.results, indent=1, default=float)
    )
    report.write(bench.results, args.output_dir)
    log(
        f"{bench.counters.imgscout_answers_checked:,} imgscout answers checked,"
        f" {bench.counters.peer_answers_checked:,} peer answers; results in {args.output_dir}"
    )
    return status


if __name__ == "__main__":
    sys.exit(main())
