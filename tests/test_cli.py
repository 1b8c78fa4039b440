"""The ``imgscout`` command line, on the embedded index and on Redis with the module.

Every command runs on both backends and must give the same answers; query answers are checked
against a brute-force scan of the hashes that went in.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import imagehash
import pytest
from PIL import Image

from imgscout import cli, hashing
from imgscout.hashing import format_hash, hamming

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE = REPO_ROOT / "examples" / "photos"


def _sample_hash(path: Path) -> int:
    with Image.open(path) as image:
        return int(str(imagehash.phash(image)), 16)


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self) -> object:
        return json.loads(self.out)


@dataclass
class Backend:
    name: str
    args: list[str]


@pytest.fixture(
    params=[
        "embedded",
        pytest.param("redis-resp2", marks=pytest.mark.server),
        pytest.param("redis-resp3", marks=pytest.mark.server),
    ]
)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "embedded":
        yield Backend("embedded", ["--index", str(tmp_path / "test.idx")])
    else:
        server = request.getfixturevalue("redis_server")
        key = f"cli-test-{uuid.uuid4().hex}"
        protocol = request.param[-1]
        url = f"redis://{server.host}:{server.port}/0?protocol={protocol}"
        yield Backend(request.param, ["--redis", url, "--key", key])
        with server.client() as connection:
            connection.delete(key, *connection.keys(f"{key}:*"))


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """A private copy of the sample folder (tests touch and edit files in it)."""
    target = tmp_path / "photos"
    shutil.copytree(SAMPLE, target)
    return target


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> Run:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return Run(code, captured.out, captured.err)


def sample_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.jpg"))


# -- hash -------------------------------------------------------------------------------------


def test_hash_prints_phash_and_path(capsys: pytest.CaptureFixture[str], photos: Path) -> None:
    result = run(capsys, "hash", str(photos))
    assert result.code == 0
    lines = result.out.splitlines()
    files = sample_files(photos)
    assert len(lines) == len(files)
    printed = dict(reversed(line.split("  ", 1)) for line in lines)
    for path in files:
        assert printed[str(path)] == format_hash(_sample_hash(path))


def test_hash_json_and_bad_files(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    shutil.copy(SAMPLE / "coins.jpg", tmp_path / "coins.jpg")
    (tmp_path / "notes.txt").write_text("not an image")
    result = run(capsys, "hash", "--json", str(tmp_path))
    assert result.code == 0
    data = result.json()
    assert data["files"] == [
        {
            "path": str(tmp_path / "coins.jpg"),
            "hash": format_hash(_sample_hash(SAMPLE / "coins.jpg")),
        }
    ]
    assert [bad["path"] for bad in data["bad_files"]] == [str(tmp_path / "notes.txt")]
    assert "skipped 1 file" in result.err
    assert "notes.txt" in result.err


def test_hash_with_nothing_readable_exits_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "a.jpg").write_bytes(b"garbage")
    result = run(capsys, "hash", str(tmp_path))
    assert result.code == 1
    assert result.out == ""


# -- add / size / lookup / query / del / sync, on both backends -----------------------------


def test_add_then_size_lookup_query_del(
    capsys: pytest.CaptureFixture[str], backend: Backend, photos: Path
) -> None:
    files = sample_files(photos)
    added = run(capsys, "add", *backend.args, "--json", str(photos))
    assert added.code == 0, added.err
    report = added.json()
    assert report["added"] == len(files)
    assert report["size"] == len(files)
    assert report["unchanged"] == 0
    assert report["bad_files"] == []

    size = run(capsys, "size", *backend.args)
    assert (size.code, size.out) == (0, f"{len(files)}\n")

    titles = {}
    for entry_id in range(1, len(files) + 1):
        looked = run(capsys, "lookup", *backend.args, str(entry_id))
        assert looked.code == 0
        titles[entry_id] = looked.out.rstrip("\n")
    # Titles are the absolute paths of the files.
    assert sorted(titles.values()) == sorted(str(p.resolve()) for p in files)

    hashes = {str(p.resolve()): _sample_hash(p) for p in files}
    query_file = photos / "astronaut.jpg"
    for radius in (0, 4, 8, 30, 64):
        answer = run(capsys, "query", *backend.args, "--json", "-r", str(radius), str(query_file))
        assert answer.code == 0
        (only,) = answer.json()["queries"]
        got = [(m["distance"], m["id"], m["title"]) for m in only["matches"]]
        query_hash = _sample_hash(query_file)
        expected = sorted(
            (hamming(query_hash, h), entry_id, titles[entry_id])
            for entry_id, h in ((i, hashes[t]) for i, t in titles.items())
            if hamming(query_hash, h) <= radius
        )
        assert got == expected

    limited = run(capsys, "query", *backend.args, "--json", "--limit", "2", str(query_file))
    assert len(limited.json()["queries"][0]["matches"]) == 2

    astronaut_id = next(i for i, t in titles.items() if t == str(query_file.resolve()))
    deleted = run(capsys, "del", *backend.args, str(astronaut_id))
    assert (deleted.code, deleted.out) == (0, f"deleted {astronaut_id}\n")
    assert run(capsys, "lookup", *backend.args, str(astronaut_id)).code == 1
    assert run(capsys, "size", *backend.args).out == f"{len(files) - 1}\n"
    again = run(capsys, "del", *backend.args, str(astronaut_id))
    assert again.code == 1
    assert f"no entry with id {astronaut_id}" in again.err

    # The deleted file is no longer "unchanged": the next add puts it back.
    readd = run(capsys, "add", *backend.args, "--json", str(photos)).json()
    assert (readd["added"], readd["unchanged"]) == (1, len(files) - 1)


def test_query_text_output_and_nothing_found(
    capsys: pytest.CaptureFixture[str], backend: Backend, photos: Path
) -> None:
    run(capsys, "add", *backend.args, str(photos / "coffee.jpg"))
    found = run(capsys, "query", *backend.args, str(photos / "edited" / "coffee-gray.jpg"))
    assert found.code == 0
    assert found.out.splitlines() == [
        f"{photos / 'edited' / 'coffee-gray.jpg'}: 1 match",
        f"   0  id 1  {(photos / 'coffee.jpg').resolve()}",
    ]
    missing = run(capsys, "query", *backend.args, str(photos / "camera.jpg"))
    assert missing.code == 1
    assert missing.out == f"{photos / 'camera.jpg'}: 0 matches\n"


def test_add_no_sync_keeps_entries_pending_until_sync(
    capsys: pytest.CaptureFixture[str], backend: Backend, photos: Path
) -> None:
    added = run(capsys, "add", *backend.args, "--no-sync", "--json", str(photos / "edited"))
    assert added.json()["pending"] == 8
    assert added.json()["size"] == 0
    size = run(capsys, "size", *backend.args, "--json").json()
    assert size == {"size": 0, "pending": 8}
    assert run(capsys, "query", *backend.args, str(photos / "rocket.jpg")).code == 1
    synced = run(capsys, "sync", *backend.args)
    assert synced.code == 0
    assert "8 entries" in synced.out
    assert run(capsys, "query", *backend.args, str(photos / "rocket.jpg")).code == 0
    assert run(capsys, "size", *backend.args, "--json").json() == {"size": 8, "pending": 0}


def test_lookup_json(capsys: pytest.CaptureFixture[str], backend: Backend, photos: Path) -> None:
    run(capsys, "add", *backend.args, str(photos / "coins.jpg"))
    assert run(capsys, "lookup", *backend.args, "--json", "1").json() == {
        "id": 1,
        "title": str((photos / "coins.jpg").resolve()),
    }
    missing = run(capsys, "lookup", *backend.args, "--json", "2")
    assert missing.code == 1
    assert missing.json() == {"id": 2, "title": None}


# -- incremental add ---------------------------------------------------------------------------


def test_incremental_add_skips_unchanged_and_replaces_changed(
    capsys: pytest.CaptureFixture[str],
    backend: Backend,
    photos: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hashed_paths: list[str] = []
    real_hash_files = hashing.hash_files

    def recording_hash_files(paths, jobs=None, progress_stream=None, **options):  # type: ignore[no-untyped-def]
        hashed_paths.extend(paths)
        return real_hash_files(paths, jobs=jobs, progress_stream=progress_stream, **options)

    monkeypatch.setattr(hashing, "hash_files", recording_hash_files)
    files = sample_files(photos)
    first = run(capsys, "add", *backend.args, "--json", str(photos)).json()
    assert first["added"] == len(files)
    assert len(hashed_paths) == len(files)

    hashed_paths.clear()
    second = run(capsys, "add", *backend.args, str(photos))
    assert second.code == 0
    assert (
        second.out
        == f"added 0, updated 0, unchanged {len(files)}, bad 0; index has {len(files)} entries\n"
    )
    assert hashed_paths == []

    # Replace one file's content with another photo: only that file is hashed again, its old
    # entry goes and the new one answers queries.
    target = photos / "chelsea-crop-2.jpg"
    shutil.copy(photos / "coins.jpg", target)
    os.utime(target, ns=(1, 1_000_000_000))
    third = run(capsys, "add", *backend.args, "--json", str(photos)).json()
    assert hashed_paths == [str(target.resolve())]
    assert (third["added"], third["updated"], third["unchanged"]) == (0, 1, len(files) - 1)
    assert third["size"] == len(files)
    coins = run(capsys, "query", *backend.args, "--json", "-r", "0", str(photos / "coins.jpg"))
    titles = sorted(m["title"] for m in coins.json()["queries"][0]["matches"])
    assert titles == sorted([str(target.resolve()), str((photos / "coins.jpg").resolve())])

    # A touched but identical file (same size, new mtime) is hashed again too: mtime is part
    # of the key, because size alone misses in-place edits.
    hashed_paths.clear()
    os.utime(photos / "coins.jpg", ns=(2, 2_000_000_000))
    run(capsys, "add", *backend.args, str(photos))
    assert hashed_paths == [str((photos / "coins.jpg").resolve())]


def test_incremental_cache_is_checked_against_the_index(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, photos: Path
) -> None:
    index = tmp_path / "lost.idx"
    run(capsys, "add", "--index", str(index), str(photos))
    assert Path(str(index) + ".files").exists()
    index.unlink()  # the index is gone, its sidecar cache stays behind
    again = run(capsys, "add", "--index", str(index), "--json", str(photos)).json()
    assert again["added"] == len(sample_files(photos))
    assert again["unchanged"] == 0


def test_add_reports_bad_files_and_keeps_going(
    capsys: pytest.CaptureFixture[str], backend: Backend, tmp_path: Path
) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(SAMPLE / "coins.jpg", folder / "coins.jpg")
    shutil.copy(SAMPLE / "camera.jpg", folder / "camera.jpg")
    for k in range(7):
        (folder / f"bad{k}.jpg").write_bytes(b"nope" * k)
    result = run(capsys, "add", *backend.args, str(folder))
    assert result.code == 0
    assert "added 2, updated 0, unchanged 0, bad 7" in result.out
    assert "skipped 7 files that could not be read as images:" in result.err
    assert result.err.count("bad") >= 5
    assert "... and 2 more" in result.err


# -- dupes -------------------------------------------------------------------------------------


def _expected_sample_groups(folder: Path) -> list[list[str]]:
    by_photo: dict[str, list[str]] = {}
    for path in sample_files(folder):
        by_photo.setdefault(path.name.split("-")[0].removesuffix(".jpg"), []).append(str(path))
    groups = [sorted(paths) for paths in by_photo.values() if len(paths) > 1]
    return sorted(groups, key=lambda g: (-len(g), g[0]))


def test_dupes_json_finds_the_sample_groups(
    capsys: pytest.CaptureFixture[str], backend: Backend
) -> None:
    result = run(capsys, "dupes", *backend.args, "--json", str(SAMPLE))
    assert result.code == 0, result.err
    data = result.json()
    assert data["radius"] == cli.DEFAULT_RADIUS
    assert data["files_hashed"] == len(sample_files(SAMPLE))
    groups = [sorted(f["path"] for f in group["files"]) for group in data["groups"]]
    assert groups == _expected_sample_groups(SAMPLE)
    for group in data["groups"]:  # best copy first: most pixels, then largest file, then path
        ranks = [(-f["width"] * f["height"], -f["bytes"], f["path"]) for f in group["files"]]
        assert ranks == sorted(ranks)
        assert [f["bytes"] for f in group["files"]] == [
            os.path.getsize(f["path"]) for f in group["files"]
        ]
        assert group["reclaimable_bytes"] == sum(f["bytes"] for f in group["files"][1:])
    for group in data["groups"]:
        hashes = {f["path"]: int(f["hash"], 16) for f in group["files"]}
        n = len(hashes)
        assert len(group["pairs"]) == n * (n - 1) // 2
        for pair in group["pairs"]:
            assert pair["distance"] == hamming(hashes[pair["a"]], hashes[pair["b"]])
        assert group["max_distance"] == max(p["distance"] for p in group["pairs"])


def test_dupes_same_answer_on_both_backends(
    capsys: pytest.CaptureFixture[str], redis_server: object, tmp_path: Path
) -> None:
    url = f"redis://{redis_server.host}:{redis_server.port}"  # type: ignore[attr-defined]
    embedded = run(capsys, "dupes", "--json", "-r", "20", str(SAMPLE))
    for protocol in (2, 3):
        redis_url = f"{url}?protocol={protocol}"
        on_redis = run(capsys, "dupes", "--json", "-r", "20", "--redis", redis_url, str(SAMPLE))
        assert embedded.code == on_redis.code == 0
        assert embedded.json() == on_redis.json()
    # The scratch key is gone afterwards.
    with redis_server.client() as connection:  # type: ignore[attr-defined]
        assert connection.keys("imgscout:dupes:*") == []


def test_dupes_text_report(capsys: pytest.CaptureFixture[str]) -> None:
    result = run(capsys, "dupes", str(SAMPLE))
    assert result.code == 0
    lines = result.out.splitlines()
    assert (
        lines[-1] == f"4 groups of near-duplicates (20 of 22 files) at radius {cli.DEFAULT_RADIUS}"
    )
    assert sum(line.startswith("Group ") for line in lines) == 4
    assert lines[0].startswith("Group 1: 5 files, distances 0-")
    assert "camera.jpg" not in result.out
    assert "coins.jpg" not in result.out


def test_dupes_no_recursive_skips_subfolders(capsys: pytest.CaptureFixture[str]) -> None:
    data = run(capsys, "dupes", "--json", "--no-recursive", str(SAMPLE)).json()
    assert data["files_hashed"] == len(list(SAMPLE.glob("*.jpg")))
    assert all("edited" not in f["path"] for g in data["groups"] for f in g["files"])
    # coffee and rocket have their copies under edited/: without recursion they stand alone.
    assert len(data["groups"]) == 2


def test_dupes_without_duplicates_exits_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for name in ("camera.jpg", "coins.jpg", "rocket.jpg"):
        shutil.copy(SAMPLE / name, tmp_path / name)
    result = run(capsys, "dupes", str(tmp_path))
    assert result.code == 1
    assert result.out.strip() == "0 groups of near-duplicates (0 of 3 files) at radius 8"


def test_dupes_radius_zero_keeps_only_identical_hashes(capsys: pytest.CaptureFixture[str]) -> None:
    data = run(capsys, "dupes", "--json", "-r", "0", str(SAMPLE)).json()
    for group in data["groups"]:
        assert {f["hash"] for f in group["files"]} == {group["files"][0]["hash"]}


def test_dupes_on_parallel_path(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Enough files for the process pool, answers identical to the serial run."""
    for k, path in enumerate(sample_files(SAMPLE)):
        shutil.copy(path, tmp_path / f"{k:02d}-{path.name}")
    parallel = run(capsys, "dupes", "--json", "--jobs", "2", str(tmp_path))
    serial = run(capsys, "dupes", "--json", "--jobs", "1", str(tmp_path))
    assert parallel.json() == serial.json()


# -- usage and environment errors: one line, exit 2, no traceback ------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["dupes", "/no/such/folder"], "imgscout: no such file or folder: /no/such/folder"),
        (["dupes", "--radius", "-1", str(SAMPLE)], "invalid radius '-1'"),
        (["dupes", "--radius", "abc", str(SAMPLE)], "invalid radius 'abc'"),
        (["query", "--radius", "1e2", str(SAMPLE)], "invalid radius '1e2'"),
        (["lookup", "abc"], "invalid id 'abc'"),
        (["del", "-5"], "invalid id '-5'"),
        (["lookup", str(2**63)], "invalid id"),
        (["dupes", "--jobs", "0", str(SAMPLE)], "invalid count '0'"),
        (["size", "--redis", "redis://127.0.0.1:9"], "--redis needs --key KEY"),
        (["size", "--key", "k"], "--key and --cluster only apply with --redis URL"),
        (["size", "--cluster"], "--key and --cluster only apply with --redis URL"),
        (["frobnicate"], "invalid choice"),
        ([], "required"),
        (["size", "--redis", "redis://127.0.0.1:9", "--key", "k"], "cannot reach Redis at"),
        (["size", "--redis", "nonsense://x", "--key", "k"], "invalid Redis URL"),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    argv: list[str],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)  # a default index would land here, never in the checkout
    result = run(capsys, *argv)
    assert result.code == 2
    assert result.out == ""
    assert message in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert "Traceback" not in result.err


def test_corrupted_index_file_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    broken = tmp_path / "broken.idx"
    broken.write_bytes(b"this is not an imgscout index")
    result = run(capsys, "size", "--index", str(broken))
    assert result.code == 2
    assert result.err.startswith(f"imgscout: cannot read index {broken}:")
    assert len(result.err.strip().splitlines()) == 1


def test_redis_without_the_module_exits_2(
    capsys: pytest.CaptureFixture[str], redis_server_factory: object
) -> None:
    plain = redis_server_factory(load_module=False)  # type: ignore[operator]
    url = f"redis://{plain.host}:{plain.port}"
    result = run(capsys, "size", "--redis", url, "--key", "k")
    assert result.code == 2
    assert result.err.startswith("imgscout: Redis error:")
    assert "unknown command" in result.err.lower()
    assert len(result.err.strip().splitlines()) == 1


def test_redis_wrong_type_key_exits_2(
    capsys: pytest.CaptureFixture[str], redis_server: object
) -> None:
    key = f"string-{uuid.uuid4().hex}"
    with redis_server.client() as connection:  # type: ignore[attr-defined]
        connection.set(key, "not an index")
    url = f"redis://{redis_server.host}:{redis_server.port}"  # type: ignore[attr-defined]
    result = run(capsys, "size", "--redis", url, "--key", key)
    assert result.code == 2
    assert "WRONGTYPE" in result.err
    assert len(result.err.strip().splitlines()) == 1


def test_installed_console_script_exit_codes(tmp_path: Path) -> None:
    """The real entry point, in a subprocess: exit statuses and no traceback."""
    script = shutil.which("imgscout")
    command = [script] if script else [sys.executable, "-m", "imgscout.cli"]
    missing = subprocess.run(
        [*command, "dupes", str(tmp_path / "absent")], capture_output=True, text=True, cwd=tmp_path
    )
    assert missing.returncode == 2
    assert missing.stderr.strip() == f"imgscout: no such file or folder: {tmp_path / 'absent'}"
    found = subprocess.run(
        [*command, "dupes", str(SAMPLE)], capture_output=True, text=True, cwd=tmp_path
    )
    assert found.returncode == 0
    assert "4 groups of near-duplicates" in found.stdout
    # Not a terminal: no progress bar in the captured stderr.
    assert found.stderr == ""
    assert not (tmp_path / "imgscout.idx").exists()  # dupes never writes an index


@pytest.mark.parametrize(
    "argv",
    [["size"], ["lookup", "1"], ["query", str(SAMPLE / "coins.jpg")], ["del", "1"], ["sync"]],
)
def test_commands_on_a_missing_index_say_so_and_write_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str]
) -> None:
    index = tmp_path / "none.idx"
    result = run(capsys, *argv[:1], "--index", str(index), *argv[1:])
    assert result.code == 2
    assert result.out == ""
    assert result.err == f"imgscout: index {index} does not exist (imgscout add creates it)\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_unwritable_outputs_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing_dir = tmp_path / "no" / "such" / "dir"
    added = run(capsys, "add", "--index", str(missing_dir / "x.idx"), str(SAMPLE / "coins.jpg"))
    assert added.code == 2
    assert added.err.startswith("imgscout: cannot write next to index")
    report = run(capsys, "dupes", "--html", str(missing_dir / "r.html"), str(SAMPLE))
    assert report.code == 2
    assert report.err.startswith(f"imgscout: cannot write {missing_dir / 'r.html'}:")
    assert len(report.err.strip().splitlines()) == 1


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    result = run(capsys, "--help")
    assert result.code == 0
    for command in ("hash", "add", "query", "sync", "lookup", "size", "del", "dupes"):
        assert command in result.out
