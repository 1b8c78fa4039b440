"""Smoke test of bench/photo_folder.py: a tiny folder of phone-size photos, imgscout timed
cold and re-run, the peers run when installed and named as skipped when not, and the
precision and recall counted against the known copies."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = REPO_ROOT / "bench" / "photo_folder.py"
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench import photo_folder  # noqa: E402


def test_plan_mixes_kinds_and_adds_up() -> None:
    plans = photo_folder.plan_folder(300)
    assert sum(1 + len(p.edits) for p in plans) == 300
    kinds = {p.kind for p in plans}
    assert kinds == {"photo", "portrait", "png", "webp"}
    assert {e for p in plans for e in p.edits} == set(photo_folder.EDITS)
    assert any(not p.edits for p in plans)  # unrelated originals


@pytest.mark.timeout(300)
def test_tiny_bench_runs_and_scores(tmp_path: Path) -> None:
    output, figures = tmp_path / "PHOTOS.md", tmp_path / "photos.json"
    argv = [sys.executable, str(SCRIPT), "--files", "12", "--output", str(output)]
    done = subprocess.run(
        [*argv, "--json", str(figures)],
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads(figures.read_text())
    assert results["files"] == 12 and results["known_pairs"] > 0
    tools = results["tools"]
    imgscout = tools["imgscout"]
    assert imgscout["cold_s"] > imgscout["rerun_s"] > 0
    assert imgscout["precision"] == 1.0 and imgscout["recall"] >= 0.5
    has_imagededup = importlib.util.find_spec("imagededup") is not None
    assert ("skipped" in tools["imagededup"]) != has_imagededup
    has_czkawka = photo_folder.find_czkawka() is not None
    assert ("skipped" in tools["czkawka"]) != has_czkawka
    assert ("skipped" in tools["czkawka -s 20"]) != has_czkawka
    for name, tool in tools.items():
        if "skipped" not in tool:
            assert 0 <= tool["recall"] <= 1 and tool["cold_s"] > 0, name
    text = output.read_text()
    assert "| imgscout |" in text and "CPU:" in text and "flags:" in text
