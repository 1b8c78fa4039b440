"""``imgscout.find_duplicates``: the groups ``imgscout dupes`` prints, as a library call; and
the module layout behind it (no import cycles, no heavy import on a cached re-run)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import imgscout
from imgscout import cli, hashing
from imgscout.hashing import hamming, hash_file

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE = REPO_ROOT / "examples" / "photos"
PACKAGE = REPO_ROOT / "python" / "imgscout"


def test_find_duplicates_gives_the_groups_dupes_prints(
    capsys: pytest.CaptureFixture[str],
) -> None:
    found = imgscout.find_duplicates(SAMPLE)
    assert cli.main(["dupes", "--json", str(SAMPLE)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert found.files_hashed == printed["files_hashed"] == 22
    assert [[(m.path, f"{m.hash:016x}", m.distance) for m in g] for g in found] == [
        [(f["path"], f["hash"], f["distance"]) for f in g["files"]] for g in printed["groups"]
    ]
    assert len(found) == 4 and found.failures == [] and found.low_information == []
    for group in found:
        best = group.best
        assert best is group.members[0] and best.distance == 0
        for member in group:
            hashed = hash_file(member.path)
            assert isinstance(hashed, hashing.HashedFile) and hashed.hash == member.hash
            assert member.distance == hamming(member.hash, best.hash)
            assert (member.width, member.height) == (hashed.width, hashed.height)
            assert member.size == Path(member.path).stat().st_size > 0
            assert not member.reference
        assert best.width * best.height == max(m.width * m.height for m in group)
        assert len(group.links) == len(group) - 1
        assert all(d <= 8 for _, _, d in group.links)


def test_find_duplicates_radius_and_inputs(tmp_path: Path) -> None:
    folder = tmp_path / "pics"
    folder.mkdir()
    shutil.copy(SAMPLE / "coins.jpg", folder / "a.jpg")
    shutil.copy(SAMPLE / "coins.jpg", folder / "b.jpg")
    shutil.copy(SAMPLE / "camera.jpg", folder / "c.jpg")
    (folder / "notes.txt").write_text("not an image")
    found = imgscout.find_duplicates(str(folder), radius=0)
    assert [g.paths for g in found] == [[str(folder / "a.jpg"), str(folder / "b.jpg")]]
    assert [f.path for f in found.failures] == [str(folder / "notes.txt")]
    # Several paths, and a mapping of precomputed hashes (nothing decoded).
    both = imgscout.find_duplicates([folder / "a.jpg", folder / "c.jpg"], radius=64)
    assert len(both) == 1 and len(both[0]) == 2
    hashes = {"x": 0b1111, "y": 0b1100, "z": 2**64 - 1}
    assert [g.paths for g in imgscout.find_duplicates(hashes, radius=2)] == [["x", "y"]]
    assert [g.paths for g in imgscout.find_duplicates(hashes, radius=1)] == []
    with pytest.raises(ValueError, match="radius"):
        imgscout.find_duplicates(folder, radius=-1)
    with pytest.raises(imgscout.UsageError, match="no such file or folder"):
        imgscout.find_duplicates(tmp_path / "missing")


def test_find_duplicates_with_an_index_decodes_nothing_the_second_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "photos"
    shutil.copytree(SAMPLE, folder)
    hashed: list[str] = []
    real_hash_files = hashing.hash_files

    def recording(paths: list[str], jobs: int | None = None, **options: object) -> object:
        hashed.extend(paths)
        return real_hash_files(paths, jobs=jobs, **options)

    monkeypatch.setattr(hashing, "hash_files", recording)
    index = tmp_path / "photos.idx"
    first = imgscout.find_duplicates(folder, index=index)
    assert len(hashed) == 22
    hashed.clear()
    index_bytes = index.read_bytes()
    again = imgscout.find_duplicates(folder, index=index)
    assert hashed == [] and again == first
    assert index.read_bytes() == index_bytes  # nothing changed, nothing written


def test_find_duplicates_against_a_reference(tmp_path: Path) -> None:
    new, ref = tmp_path / "new", tmp_path / "ref"
    new.mkdir()
    ref.mkdir()
    shutil.copy(SAMPLE / "coins.jpg", new / "coins.jpg")
    shutil.copy(SAMPLE / "coins.jpg", new / "coins-again.jpg")  # a copy among the new only
    shutil.copy(SAMPLE / "camera.jpg", new / "camera.jpg")
    shutil.copy(SAMPLE / "camera.jpg", ref / "camera.jpg")
    found = imgscout.find_duplicates(new, against=ref)
    assert [[(Path(m.path).parent.name, m.reference) for m in g] for g in found] == [
        [("new", False), ("ref", True)]
    ]


# -- the module layout -------------------------------------------------------------------------


def test_the_cli_keeps_its_backend_wiring_apart() -> None:
    """Import cycles are checked for the whole package in tests/test_layout.py."""
    # The backend wiring is out of the commands' module.
    source = (PACKAGE / "cli.py").read_text(encoding="utf-8")
    for name in ("class Backend", "def open_backend", "def _open_embedded", "def _redis_client"):
        assert name not in source


_HEAVY = ("numpy", "PIL", "imagehash", "tqdm", "redis", "scipy")


def _loaded_after(code: str, cwd: Path) -> list[str]:
    probe = f"import sys\n{code}\nprint(sorted(m for m in {_HEAVY!r} if m in sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=cwd, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1].replace("'", '"'))


def test_a_cached_rerun_imports_no_heavy_module(tmp_path: Path) -> None:
    assert _loaded_after("import imgscout, imgscout.cli", tmp_path) == []
    folder = tmp_path / "photos"
    shutil.copytree(SAMPLE, folder)
    index = tmp_path / "photos.idx"
    run = (
        "import contextlib, io\n"
        "from imgscout import cli\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    assert cli.main(['dupes', {str(folder)!r}, '--index', {str(index)!r}]) == 0\n"
    )
    # The first run hashes (Pillow, and numpy to add the hashes to the index; tqdm only on a
    # terminal, which this is not); the second one finds every file in the cache and needs
    # none of them.
    first = set(_loaded_after(run, tmp_path))
    assert {"numpy", "PIL"} <= first and "tqdm" not in first
    assert _loaded_after(run, tmp_path) == []
    # The lazy names still resolve, to the same objects as their modules'.
    from imgscout.index import Index

    assert imgscout.Index is Index
    assert "find_duplicates" in dir(imgscout)
    with pytest.raises(AttributeError):
        _ = imgscout.no_such_name  # type: ignore[attr-defined]
