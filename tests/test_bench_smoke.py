"""Smoke tests of the benchmark suite (bench/run.py): the tiny mode runs every section on 20k
entries, checks every imgscout answer against the numpy brute force and writes its reports; a
wrong answer makes it exit non-zero. The checks themselves are tested on hand-made answers."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.support import checks, reference  # noqa: E402
from tests.support.checks import WrongAnswer  # noqa: E402

RUN = REPO_ROOT / "bench" / "run.py"
RADII = ("0", "2", "4", "6", "8", "10", "12", "16", "20", "24", "32")
#: Peers the bench skips (and names in results["checks"]["skipped"]) when their package is missing.
OPTIONAL_PEERS = {"FAISS": "faiss", "pybktree": "pybktree", "imagededup": "imagededup"}


def bench_env(module_path: Path) -> dict[str, str]:
    return {**os.environ, "IMGSCOUT_MODULE": str(module_path)}


@pytest.mark.timeout(120)
def test_tiny_run_checks_every_answer_and_writes_reports(tmp_path: Path, module_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(RUN), "--tiny", "--output-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        env=bench_env(module_path),
        timeout=110,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    results = json.loads((tmp_path / "results.json").read_text())
    checks = results["checks"]
    assert results["status"] == "ok"
    assert checks["errors"] == []
    assert checks["inexact_peers"] == []
    missing = {
        name
        for name, package in OPTIONAL_PEERS.items()
        if importlib.util.find_spec(package) is None
    }
    assert set(checks["skipped"]) == missing

    datasets = results["datasets"]
    assert sorted(datasets) == ["clustered 20,000", "uniform 20,000"]
    checked_queries = 0
    for section in datasets.values():
        assert list(section["range"]) == list(RADII)
        for row in section["range"].values():
            systems = row["systems"]
            names = ["imgscout query", "imgscout query_many", "numpy scan"]
            if "FAISS" not in missing:
                names += ["FAISS flat", "FAISS flat batch", "FAISS MultiHash 4x16"]
            for name in names:
                assert systems[name]["median_us"] > 0, name
            assert all(s.get("exact", True) for s in systems.values())
            checked_queries += systems["imgscout query"]["calls"]
        assert list(section["knn"]) == ["1", "10", "100"]
    # Each timed imgscout query was checked (batches and the other sections add more).
    assert checks["imgscout_answers_checked"] > checked_queries > 0
    assert results["build"]["bulk_median_s"] > 0
    assert results["memory"]["info_bytes_per_entry"] > 0
    assert [run["entries"] for run in results["pairs"]["runs"]] == [5_000, 20_000]
    redis = results["redis"]
    assert redis["madd_entries_per_s"] > 0
    assert set(redis["commandstats"]) == {"4", "8", "12", "16"}

    markdown = (tmp_path / "RESULTS.md").read_text()
    assert markdown.startswith("# imgscout benchmark results")
    assert "## Targets: best peer / imgscout per radius" in markdown
    assert "**Status: ok.**" in markdown
    assert (tmp_path / "results.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


@pytest.mark.timeout(60)
def test_a_wrong_imgscout_answer_fails_the_run(tmp_path: Path) -> None:
    """An index whose single queries drop an answer (or invent one): exit status 1."""
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(REPO_ROOT)!r})
        from bench import run, subject
        import imgscout

        class Faulty:
            def __init__(self, index):
                self.index = index
            def query(self, hash, radius):
                real = self.index.query(hash, radius)
                return real[1:] if real else [imgscout.Match("0", 0, 64)]
            def __getattr__(self, name):
                return getattr(self.index, name)

        real_build = subject.build
        def faulty_build(*args, **kwargs):
            index, add_s, sync_s = real_build(*args, **kwargs)
            return Faulty(index), add_s, sync_s
        subject.build = faulty_build
        sys.exit(run.main(["--tiny", "--sections", "range", "--output-dir", {str(tmp_path)!r}]))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=55, check=False
    )
    assert done.returncode == 1, done.stdout[-4000:] + done.stderr[-4000:]
    assert "WRONG ANSWER" in done.stdout
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["status"] == "failed"
    assert any("imgscout query" in error for error in results["checks"]["errors"])
    assert "ERROR" in (tmp_path / "RESULTS.md").read_text()


# -- the checks on hand-made answers -----------------------------------------------------------

DATA = np.array([0b0000, 0b0001, 0b0011, 0b0111, 0b1111, 0xFF00], dtype=np.uint64)
IDS = np.arange(len(DATA), dtype=np.int64)


def matches(rows: list[tuple[int, int]]) -> list[tuple[str, int, int]]:
    return [(str(i), i, d) for i, d in rows]


def test_check_matches_accepts_the_brute_force_answer() -> None:
    expected = reference.expected_range(reference.distances(DATA, 0), IDS, 2)
    checks.check_matches(matches([(0, 0), (1, 1), (2, 2)]), expected, "ok")


@pytest.mark.parametrize(
    "answer",
    [
        matches([(0, 0), (1, 1)]),  # a miss
        matches([(0, 0), (1, 1), (2, 2), (3, 3)]),  # an extra beyond the radius
        matches([(1, 1), (0, 0), (2, 2)]),  # wrong order
        matches([(0, 0), (1, 2), (2, 2)]),  # wrong distance
        [("0", 0, 0), ("2", 1, 1), ("2", 2, 2)],  # wrong title
    ],
    ids=["miss", "extra", "order", "distance", "title"],
)
def test_check_matches_rejects_wrong_answers(answer: list[tuple[str, int, int]]) -> None:
    expected = reference.expected_range(reference.distances(DATA, 0), IDS, 2)
    with pytest.raises(WrongAnswer):
        checks.check_matches(answer, expected, "wrong")


def test_expected_knn_breaks_ties_by_smaller_id() -> None:
    data = np.array([3, 1, 2, 1], dtype=np.uint64)  # distances to 0: 2, 1, 1, 1
    nearest = reference.expected_knn(reference.distances(data, 0), np.arange(4), 2)
    assert nearest.ids.tolist() == [1, 2]
    assert nearest.distances.tolist() == [1, 1]


def test_peer_checks_reject_a_wrong_set_and_wrong_knn_distances() -> None:
    expected = reference.expected_range(reference.distances(DATA, 0), IDS, 1)
    checks.check_id_distance_set(np.array([1, 0]), np.array([1, 0]), expected, "ok")
    with pytest.raises(WrongAnswer):
        checks.check_id_distance_set(np.array([0]), np.array([0]), expected, "miss")
    with pytest.raises(WrongAnswer):
        checks.check_knn_distances(np.array([0, 2]), expected, "knn")


def test_reference_pairs_and_their_checks() -> None:
    pairs = reference.reference_pairs(DATA, IDS, 1)
    assert pairs.tolist() == [[0, 1, 1], [1, 2, 1], [2, 3, 1], [3, 4, 1]]
    checks.check_pairs_exact(pairs[::-1], pairs, "ok")
    with pytest.raises(WrongAnswer):
        checks.check_pairs_exact(pairs[1:], pairs, "miss")
    everyone = np.arange(len(DATA))
    checks.check_pairs_sampled(pairs, DATA, IDS, 1, everyone, "ok")
    with pytest.raises(WrongAnswer, match="partners"):
        checks.check_pairs_sampled(pairs[1:], DATA, IDS, 1, everyone, "miss")
    with pytest.raises(WrongAnswer, match="distance"):
        checks.check_pairs_sampled(np.array([[0, 2, 1]]), DATA, IDS, 1, np.array([5]), "bad")
    with pytest.raises(WrongAnswer, match="twice"):
        checks.check_pairs_sampled(
            np.concatenate([pairs, pairs[:1]]), DATA, IDS, 1, np.array([5]), "twice"
        )
    with pytest.raises(WrongAnswer, match="smaller id"):
        checks.check_pairs_sampled(np.array([[1, 0, 1]]), DATA, IDS, 1, np.array([5]), "order")
