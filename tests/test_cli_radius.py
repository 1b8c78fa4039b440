"""The default radius against its measurements (docs/radius.md) and the shipped sample folder."""

from __future__ import annotations

import importlib.util
import itertools
import re
import sys
from pathlib import Path
from types import ModuleType

import imagehash
import pytest
from PIL import Image

from imgscout import cli
from imgscout.dedup import DEFAULT_RADII
from imgscout.hashing import hamming

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE = REPO_ROOT / "examples" / "photos"
RADIUS_DOC = REPO_ROOT / "docs" / "radius.md"


def _script(name: str) -> ModuleType:
    scripts = REPO_ROOT / "scripts"
    if str(scripts) not in sys.path:
        sys.path.insert(0, str(scripts))
    spec = importlib.util.spec_from_file_location(name, scripts / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _photo_of(path: Path) -> str:
    """Sample files are named <photo>.jpg or <photo>-<edit>.jpg."""
    return path.stem.split("-")[0]


def _sample_hashes() -> dict[Path, int]:
    hashes = {}
    for path in sorted(SAMPLE.rglob("*.jpg")):
        with Image.open(path) as image:
            hashes[path] = int(str(imagehash.phash(image)), 16)
    return hashes


def _doc_rows(algorithm: str = "phash") -> list[dict[str, object]]:
    """The radius table of one algorithm's section of docs/radius.md (``## phash (64 bits)``)."""
    section = RADIUS_DOC.read_text().split(f"\n## {algorithm} (", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        match = re.match(r"^\| (\d+)( \*\*\(default\)\*\*)? \|(.*)\|$", line)
        if match:
            cells = [c.strip() for c in match.group(3).split("|")]
            rows.append(
                {
                    "radius": int(match.group(1)),
                    "default": bool(match.group(2)),
                    "false_pairs": int(cells[-2]),
                    "dihedral_false_pairs": int(cells[-4]),
                }
            )
    return rows


def test_default_radius_is_the_one_the_study_chose() -> None:
    rows = _doc_rows()
    assert [r["radius"] for r in rows] == list(range(21))
    (marked,) = [r for r in rows if r["default"]]
    assert marked["radius"] == cli.DEFAULT_RADIUS
    assert marked["false_pairs"] == 0
    # The rule that picked it, applied to the published table, gives the same radius.
    rule = _script("radius_study").choose_default
    assert rule(rows, key="dihedral_false_pairs") == cli.DEFAULT_RADIUS


@pytest.mark.parametrize("algorithm", list(DEFAULT_RADII))
def test_each_hash_default_is_the_one_its_table_marks(algorithm: str) -> None:
    rows = _doc_rows(algorithm)
    (marked,) = [r for r in rows if r["default"]]
    assert marked["radius"] == DEFAULT_RADII[algorithm]
    assert marked["false_pairs"] == 0 and marked["dihedral_false_pairs"] == 0
    # The table shows the first radius with a false pair (with dihedral matching), so the rule
    # applied to the shown rows alone finds the same radius.
    rule = _script("radius_study").choose_default
    assert rule(rows, key="dihedral_false_pairs") == DEFAULT_RADII[algorithm]


def test_default_radius_finds_every_sample_group_and_no_false_pair() -> None:
    hashes = _sample_hashes()
    by_photo: dict[str, list[Path]] = {}
    for path in hashes:
        by_photo.setdefault(_photo_of(path), []).append(path)
    radius = cli.DEFAULT_RADIUS

    # No pair across different photographs is within the radius.
    for a, b in itertools.combinations(hashes, 2):
        if _photo_of(a) != _photo_of(b):
            assert hamming(hashes[a], hashes[b]) > radius, (a.name, b.name)

    # The tool's own grouping equals the photographs, every copy in its original's group.
    groups = cli.group_pairs(
        [str(p) for p in hashes],
        list(hashes.values()),
        [
            (i, j, hamming(hashes[a], hashes[b]))
            for (i, a), (j, b) in itertools.combinations(enumerate(hashes), 2)
            if hamming(hashes[a], hashes[b]) <= radius
        ],
    )
    expected = sorted(
        (sorted(str(p) for p in paths) for paths in by_photo.values() if len(paths) > 1),
        key=lambda g: (-len(g), g[0]),
    )
    assert [g.paths for g in groups] == expected
    assert len(groups) == 4


def test_sample_needs_its_radius() -> None:
    """The sample is not trivially easy: at radius 0 some copies fall out of their groups."""
    hashes = _sample_hashes()
    by_photo: dict[str, set[int]] = {}
    for path, value in hashes.items():
        by_photo.setdefault(_photo_of(path), set()).add(value)
    assert any(len(values) > 1 for values in by_photo.values())


def test_recomputed_study_chooses_the_same_default() -> None:
    pytest.importorskip("skimage")
    study = _script("radius_study")
    result = study.study()
    assert study.choose_default(result["rows"], key="dihedral_false_pairs") == cli.DEFAULT_RADIUS


def test_make_examples_rebuilds_the_same_groups(tmp_path: Path) -> None:
    pytest.importorskip("skimage")
    written = _script("make_examples").make_sample(tmp_path)
    shipped = sorted(p.relative_to(SAMPLE) for p in SAMPLE.rglob("*.jpg"))
    assert sorted(p.relative_to(tmp_path) for p in written) == shipped
    assert sum(p.stat().st_size for p in written) < 2_000_000
