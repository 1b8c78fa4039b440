"""The CLI on awkward folders and files: never a traceback, one stderr line and exit 2 for what
the user can fix, reports that stay valid and linear whatever the file names and group sizes."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import threading
from pathlib import Path

import pytest
from PIL import Image

from imgscout import cli, hashing
from imgscout._cli_cache import RECORD_FIELD, sidecar_path
from imgscout.hashing import HashedFile, hamming, hash_file

SAMPLE = Path(__file__).resolve().parents[1] / "examples" / "photos"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def looped(tmp_path: Path) -> Path:
    """A folder with two copies of one photo, another photo, and ``loop -> .``."""
    folder = tmp_path / "d"
    folder.mkdir()
    shutil.copy(SAMPLE / "coins.jpg", folder / "a.jpg")
    shutil.copy(SAMPLE / "coins.jpg", folder / "b.jpg")
    shutil.copy(SAMPLE / "camera.jpg", folder / "c.jpg")
    (folder / "loop").symlink_to(".")
    return folder


# -- symbolic links ----------------------------------------------------------------------------


@pytest.mark.parametrize("follow", [[], ["--follow-links"]])
def test_symlink_loop_in_dupes_and_hash(
    capsys: pytest.CaptureFixture[str], looped: Path, follow: list[str]
) -> None:
    code, out, err = run(capsys, "dupes", "--json", *follow, str(looped))
    assert code == 0, err
    data = json.loads(out)
    assert data["files_hashed"] == 3
    assert [[f["path"] for f in g["files"]] for g in data["groups"]] == [
        [str(looped / "a.jpg"), str(looped / "b.jpg")]
    ]
    code, out, err = run(capsys, "hash", *follow, str(looped))
    assert code == 0, err
    assert [line.split("  ")[1] for line in out.splitlines()] == [
        str(looped / name) for name in ("a.jpg", "b.jpg", "c.jpg")
    ]


def test_symlink_loop_in_add_and_query(
    capsys: pytest.CaptureFixture[str], looped: Path, tmp_path: Path
) -> None:
    index = str(tmp_path / "x.idx")
    code, out, err = run(capsys, "add", "--index", index, "--json", str(looped))
    assert code == 0, err
    assert json.loads(out)["added"] == 3
    code, out, err = run(capsys, "query", "--index", index, "--json", "-r", "0", str(looped))
    assert code == 0, err
    queries = json.loads(out)["queries"]
    assert len(queries) == 3
    assert sorted(len(q["matches"]) for q in queries) == [1, 2, 2]


def test_links_are_followed_only_when_asked(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(SAMPLE / "coins.jpg", elsewhere / "coins.jpg")
    folder = tmp_path / "d"
    folder.mkdir()
    shutil.copy(SAMPLE / "coins.jpg", folder / "mine.jpg")
    (folder / "linked.jpg").symlink_to(elsewhere / "coins.jpg")
    (folder / "sub").symlink_to(elsewhere)
    _, out, _ = run(capsys, "hash", str(folder))
    assert [line.split("  ")[1] for line in out.splitlines()] == [str(folder / "mine.jpg")]
    _, out, _ = run(capsys, "hash", "--follow-links", str(folder))
    # linked.jpg and sub/coins.jpg are one file (one inode): it is hashed once.
    assert [line.split("  ")[1] for line in out.splitlines()] == [
        str(folder / "linked.jpg"),
        str(folder / "mine.jpg"),
    ]


def test_hardlinks_to_one_file_are_one_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    shutil.copy(SAMPLE / "coins.jpg", tmp_path / "a.jpg")
    os.link(tmp_path / "a.jpg", tmp_path / "b.jpg")
    code, out, _ = run(capsys, "dupes", "--json", str(tmp_path))
    assert code == 1  # one file, no group
    assert json.loads(out)["files_hashed"] == 1


def test_min_size_and_ext_filters(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    shutil.copy(SAMPLE / "coins.jpg", tmp_path / "big.jpg")
    Image.new("RGB", (8, 8), "red").save(tmp_path / "tiny.png")
    Image.open(SAMPLE / "camera.jpg").save(tmp_path / "camera.PNG")
    (tmp_path / "notes.txt").write_text("not an image")
    code, out, _ = run(capsys, "hash", "--ext", "png", str(tmp_path))
    assert [Path(line.split("  ")[1]).name for line in out.splitlines()] == [
        "camera.PNG",
        "tiny.png",
    ]
    big = (tmp_path / "big.jpg").stat().st_size
    code, out, err = run(capsys, "hash", "--min-size", str(big), str(tmp_path))
    names = [Path(line.split("  ")[1]).name for line in out.splitlines()]
    assert "tiny.png" not in names and "big.jpg" in names
    assert "notes.txt" not in err  # smaller than the limit: never tried
    code, _, err = run(capsys, "hash", "--ext", ",", str(tmp_path))
    assert code == 2 and "invalid extension list" in err


# -- file names that are not UTF-8, or hold a newline ------------------------------------------


@pytest.fixture
def odd_names(tmp_path: Path) -> Path:
    folder = tmp_path / "odd"
    folder.mkdir()
    raw = os.fsencode(folder) + b"/caf\xe9.jpg"  # Latin-1 bytes: not UTF-8
    shutil.copy(SAMPLE / "coins.jpg", raw)
    shutil.copy(SAMPLE / "coins.jpg", folder / "two\nlines.jpg")
    return folder


def test_non_utf8_and_newline_names_in_json_and_html(
    capsys: pytest.CaptureFixture[str], odd_names: Path, tmp_path: Path
) -> None:
    report = tmp_path / "report.html"
    code, out, err = run(capsys, "dupes", "--json", "--html", str(report), str(odd_names))
    assert code == 0, err
    data = json.loads(out.encode("utf-8"))  # valid UTF-8 all through
    paths = [f["path"] for f in data["groups"][0]["files"]]
    assert paths == [f"{odd_names}/caf\\xe9.jpg", f"{odd_names}/two\nlines.jpg"]
    page = report.read_bytes().decode("utf-8")  # strict: raises if not UTF-8
    assert "caf\\xe9.jpg" in page
    assert "two\nlines.jpg" in page
    assert page.count('<img class="thumb"') == 2  # both read through their real names


def test_newline_in_a_name_does_not_split_a_text_line(
    capsys: pytest.CaptureFixture[str], odd_names: Path
) -> None:
    code, out, _ = run(capsys, "dupes", str(odd_names))
    assert code == 0
    lines = out.splitlines()
    assert f"{odd_names}/two\\nlines.jpg" in out
    assert sum("lines.jpg" in line for line in lines) == 1
    assert sum("caf\\xe9.jpg" in line for line in lines) == 1
    code, out, _ = run(capsys, "hash", str(odd_names))
    assert len(out.splitlines()) == 2


def test_add_reports_a_non_utf8_name_as_one_line(
    capsys: pytest.CaptureFixture[str], odd_names: Path, tmp_path: Path
) -> None:
    code, out, err = run(capsys, "add", "--index", str(tmp_path / "x.idx"), str(odd_names))
    assert code == 0
    assert out.startswith("added 1,")
    assert "caf\\xe9.jpg: file name is not valid UTF-8" in err
    err.encode("utf-8")


# -- the index file: missing, a FIFO, in a read-only folder ------------------------------------


def test_index_that_is_a_fifo_is_refused_without_waiting(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    fifo = tmp_path / "fifo.idx"
    os.mkfifo(fifo)
    outcome: list[tuple[int, str, str]] = []
    for argv in (["size"], ["add", str(SAMPLE / "coins.jpg")], ["query", str(SAMPLE)]):
        worker = threading.Thread(
            target=lambda a=argv: outcome.append(run(capsys, a[0], "--index", str(fifo), *a[1:])),
            daemon=True,
        )
        worker.start()
        worker.join(timeout=30)
        assert not worker.is_alive(), f"{argv[0]} waits on the FIFO"
        code, _out, err = outcome[-1]
        assert code == 2
        assert err == f"imgscout: index {fifo} is not a regular file\n"


def _readonly_sqlite(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every cache opens read-only, as in a read-only folder: a real SQLite refusal even when
    the tests run as root, who writes through permission bits."""
    connect = sqlite3.connect

    def read_only(path: str, *args: object, **kwargs: object) -> sqlite3.Connection:
        return connect(f"file:{path}?mode=ro", *args, uri=True, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(sqlite3, "connect", read_only)


def test_del_with_a_read_only_cache_exits_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = tmp_path / "x.idx"
    code, _, err = run(capsys, "add", "--index", str(index), str(SAMPLE / "coins.jpg"))
    assert code == 0, err
    _readonly_sqlite(monkeypatch)
    code, out, err = run(capsys, "del", "--index", str(index), "1")
    assert code == 2
    assert out == ""
    assert err.startswith(f"imgscout: cannot write index cache {sidecar_path(str(index))}:")
    assert "readonly database" in err
    assert len(err.splitlines()) == 1


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_del_in_a_read_only_folder_exits_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    index = folder / "x.idx"
    assert run(capsys, "add", "--index", str(index), str(SAMPLE / "coins.jpg"))[0] == 0
    folder.chmod(0o555)
    try:
        code, _, err = run(capsys, "del", "--index", str(index), "1")
    finally:
        folder.chmod(0o755)
    assert code == 2
    assert err.startswith("imgscout: cannot ")
    assert len(err.splitlines()) == 1


def test_index_under_a_file_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A parent that is a file fails for root too: the unwritable-folder path, really taken."""
    (tmp_path / "plain").write_text("")
    index = tmp_path / "plain" / "x.idx"
    for argv in (["add", str(SAMPLE / "coins.jpg")], ["del", "1"], ["size"]):
        code, _out, err = run(capsys, argv[0], "--index", str(index), *argv[1:])
        assert code == 2, argv
        assert err.startswith("imgscout: ") and len(err.splitlines()) == 1
        assert "Traceback" not in err


# -- large groups: the report grows with the files, not with their pairs -----------------------


def test_thousands_of_identical_images_give_a_linear_report(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    count = 3000
    with Image.open(SAMPLE / "coins.jpg") as photo:
        photo.resize((64, 64)).save(tmp_path / "0000.png")
    for k in range(1, count):  # copies, not hard links: those would be one file
        shutil.copyfile(tmp_path / "0000.png", tmp_path / f"{k:04d}.png")
    code, out, _ = run(capsys, "dupes", "--jobs", "2", str(tmp_path))
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"Group 1: {count} files, distances 0-0"
    assert max(map(len, lines)) < 200
    # A member line and a linking line per file, a few headers: linear.
    assert len(out) < 200 * count
    code, out, _ = run(capsys, "dupes", "--json", "--jobs", "2", str(tmp_path))
    group = json.loads(out)["groups"][0]
    assert len(group["files"]) == count
    assert len(group["links"]) == count - 1
    assert "pairs" not in group
    assert len(out) < 600 * count  # all pairs would be 4.5 million objects


# -- the index and its cache stay consistent whatever step of `add` is interrupted -------------


class _Injected(KeyboardInterrupt):
    """Stands for Ctrl-C (or a crash) at one step of a run."""


_ADD_STEPS = [
    ("imgscout.hashing.hash_files", None),
    ("imgscout.Index.delete", None),
    ("imgscout.Index.add_many", None),
    ("imgscout.Index.sync", None),
    ("imgscout.Index.save", OSError(28, "No space left on device")),
    ("imgscout._cli_cache.SqliteFileCache.remove_paths", None),
    ("imgscout._cli_cache.SqliteFileCache.remove_left_out", None),
    ("imgscout._cli_cache.SqliteFileCache.put_many", None),
]


def _check_consistent(index_path: Path, folder: Path) -> None:
    import imgscout

    files = sorted(str(p) for p in folder.iterdir())
    index = imgscout.Index.load(index_path)
    entries = index.entries()
    assert sorted(e.title for e in entries) == files  # one entry per file, no leftovers
    with sqlite3.connect(sidecar_path(str(index_path))) as db:
        rows = dict(db.execute("SELECT path, id FROM files").fetchall())
    assert sorted(rows) == files
    assert all(index.lookup(entry_id) == path for path, entry_id in rows.items())
    for entry in entries:  # each entry holds the hash of the file as it is now
        hashed = hash_file(entry.title)
        assert isinstance(hashed, HashedFile) and entry.hash == hashed.hash


@pytest.mark.parametrize(("step", "error"), _ADD_STEPS, ids=[s for s, _ in _ADD_STEPS])
def test_interrupted_add_leaves_index_and_cache_consistent(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    step: str,
    error: BaseException | None,
) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    sources = sorted(SAMPLE.glob("*.jpg"))[:6]
    for k, source in enumerate(sources):
        shutil.copy(source, folder / f"{k}.jpg")
    index = tmp_path / "x.idx"
    assert run(capsys, "add", "--index", str(index), str(folder))[0] == 0
    # Three files change (another photo under the same name): their entries must be replaced.
    for k in range(3):
        shutil.copy(sources[-1 - k], folder / f"{k}.jpg")
        os.utime(folder / f"{k}.jpg", ns=(k + 1, k + 1))

    def fail(*args: object, **kwargs: object) -> None:
        raise error if error is not None else _Injected()

    with monkeypatch.context() as patch:
        patch.setattr(step, fail)
        code, _, err = run(capsys, "add", "--index", str(index), str(folder))
    assert code in (2, 130), err
    assert len(err.splitlines()) == 1
    code, out, err = run(capsys, "add", "--index", str(index), "--json", str(folder))
    assert code == 0, err
    assert json.loads(out)["size"] == 6
    _check_consistent(index, folder)
    code, out, _ = run(capsys, "add", "--index", str(index), "--json", str(folder))
    assert json.loads(out)["unchanged"] == 6


def test_entries_the_cache_does_not_know_are_replaced(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A lost cache (deleted, or never written after the index was saved) costs a re-hash and
    never a second entry per file."""
    folder = tmp_path / "photos"
    shutil.copytree(SAMPLE, folder)
    shutil.rmtree(folder / "edited")
    index = tmp_path / "x.idx"
    assert run(capsys, "add", "--index", str(index), str(folder))[0] == 0
    Path(sidecar_path(str(index))).unlink()
    code, out, _ = run(capsys, "add", "--index", str(index), "--json", str(folder))
    assert code == 0
    stats = json.loads(out)
    files = len(list(folder.iterdir()))
    assert (stats["added"], stats["updated"], stats["size"]) == (0, files, files)
    _check_consistent(index, folder)


# -- photo formats and orientation -------------------------------------------------------------


def test_exif_orientation_is_applied_before_hashing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with Image.open(SAMPLE / "astronaut.jpg") as photo:
        upright = photo.convert("RGB").crop((0, 0, photo.width, photo.height * 2 // 3))
    upright.save(tmp_path / "upright.jpg", quality=95)
    # Stored turned a quarter left, with Orientation 6 ("turn right to view"), as phones do.
    sideways = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    sideways.save(tmp_path / "phone.jpg", quality=95, exif=exif)
    sideways.save(tmp_path / "untagged.jpg", quality=95)
    code, out, _ = run(capsys, "hash", "--json", str(tmp_path))
    assert code == 0
    hashes = {Path(f["path"]).name: int(f["hash"], 16) for f in json.loads(out)["files"]}
    assert hamming(hashes["phone.jpg"], hashes["upright.jpg"]) <= 2
    # Without the tag the same pixels are far away: the orientation is what made them match.
    assert hamming(hashes["untagged.jpg"], hashes["upright.jpg"]) > cli.DEFAULT_RADIUS


def _formats() -> list[str]:
    from PIL import features

    names = ["png", "webp", "tiff", "gif"]
    if features.check("avif"):
        names.append("avif")
    try:
        import pillow_heif  # noqa: F401
    except ImportError:
        pass
    else:
        names.append("heic")
    return names


@pytest.mark.parametrize("extension", ["png", "webp", "tiff", "gif", "avif", "heic"])
def test_photo_formats_round_trip(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, extension: str
) -> None:
    if extension not in _formats():
        pytest.skip(f"no {extension} support installed (pip install imgscout[heif])")
    shutil.copy(SAMPLE / "coins.jpg", tmp_path / "coins.jpg")
    with Image.open(SAMPLE / "coins.jpg") as photo, Image.open(SAMPLE / "camera.jpg") as other:
        first = photo.convert("RGB")
        if extension == "heic":
            from pillow_heif import from_pillow

            from_pillow(first).save(tmp_path / "coins.heic", quality=90)
        elif extension == "gif":
            # An animation: the first frame is the photo, the second another one.
            second = other.convert("RGB").resize(first.size)
            first.save(tmp_path / "coins.gif", save_all=True, append_images=[second])
        else:
            first.save(tmp_path / f"coins.{extension}")
    code, out, err = run(capsys, "dupes", "--json", str(tmp_path))
    assert code == 0, err
    data = json.loads(out)
    assert data["bad_files"] == []
    assert sorted(Path(f["path"]).name for f in data["groups"][0]["files"]) == sorted(
        ["coins.jpg", f"coins.{extension}"]
    )


def test_group_and_member_order_do_not_depend_on_the_order_files_come_in(
    capsys: pytest.CaptureFixture[str],
) -> None:
    files = sorted(str(p) for p in SAMPLE.rglob("*.jpg"))
    forward = json.loads(run(capsys, "dupes", "--json", *files)[1])["groups"]
    backward = json.loads(run(capsys, "dupes", "--json", *reversed(files))[1])["groups"]
    assert forward == backward
    assert [len(g["files"]) for g in forward] == [5, 5, 5, 5]
    # Member 1 has the most pixels of its group, and among those the most bytes.
    for group in forward:
        best = group["files"][0]
        assert all(
            (best["width"] * best["height"], best["bytes"])
            >= (f["width"] * f["height"], f["bytes"])
            for f in group["files"]
        )


# -- flat images ---------------------------------------------------------------------------------


def test_flat_images_are_kept_out_of_groups(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Uniform images hash to 0 or 0x8000...: one bit apart, they chained unrelated flat frames
    (black, grey, white) into a group and could glue photos to them."""
    for name, value in (("black", 0), ("grey", 128), ("white", 250)):
        Image.new("RGB", (300, 200), (value, value, value)).save(tmp_path / f"{name}.png")
    shutil.copy(SAMPLE / "coins.jpg", tmp_path / "coins.jpg")
    shutil.copy(SAMPLE / "coins.jpg", tmp_path / "coins-copy.jpg")
    code, out, err = run(capsys, "dupes", "--json", str(tmp_path))
    assert code == 0
    data = json.loads(out)
    assert [sorted(Path(f["path"]).name for f in g["files"]) for g in data["groups"]] == [
        ["coins-copy.jpg", "coins.jpg"]
    ]
    assert sorted(Path(p).name for p in data["low_information"]) == [
        "black.png",
        "grey.png",
        "white.png",
    ]
    assert data["files_hashed"] == 5
    assert "left 3 nearly uniform images out of the groups" in err


# -- dupes with an index -----------------------------------------------------------------------


def test_dupes_with_an_index_hashes_only_new_and_changed_files(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "photos"
    shutil.copytree(SAMPLE, folder)
    index = str(tmp_path / "photos.idx")
    hashed: list[str] = []
    real_hash_files = hashing.hash_files

    def recording(paths: list[str], jobs: int | None = None, **options: object) -> object:
        hashed.extend(paths)
        return real_hash_files(paths, jobs=jobs, **options)

    monkeypatch.setattr(hashing, "hash_files", recording)
    first = run(capsys, "dupes", "--json", "--index", index, str(folder))
    assert first[0] == 0
    assert len(hashed) == 22
    hashed.clear()
    again = run(capsys, "dupes", "--json", "--index", index, str(folder))
    assert hashed == []  # every file unchanged: stat only
    assert json.loads(again[1]) == json.loads(first[1])
    # The same answer as without the index.
    plain = json.loads(run(capsys, "dupes", "--json", str(folder))[1])
    assert json.loads(again[1])["groups"] == plain["groups"]
    hashed.clear()
    shutil.copy(SAMPLE / "camera.jpg", folder / "coins.jpg")
    changed = json.loads(run(capsys, "dupes", "--json", "--index", index, str(folder))[1])
    assert hashed == [str(folder / "coins.jpg")]
    assert changed["files_hashed"] == 22
    assert len(changed["groups"]) == 5  # camera.jpg and its new copy form a group
    import imgscout

    assert imgscout.Index.load(index).size() == 22  # one entry per file


def test_dupes_rehashes_files_cached_without_their_pixel_size(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A cache written before it kept pixel sizes: dupes hashes those files once more."""
    index = tmp_path / "x.idx"
    assert run(capsys, "add", "--index", str(index), str(SAMPLE))[0] == 0
    with sqlite3.connect(sidecar_path(str(index))) as db:
        db.execute("UPDATE files SET width = 0, height = 0, flat = NULL")
    data = json.loads(run(capsys, "dupes", "--json", "--index", str(index), str(SAMPLE))[1])
    assert all(f["width"] > 0 for g in data["groups"] for f in g["files"])
    with sqlite3.connect(sidecar_path(str(index))) as db:
        assert db.execute("SELECT COUNT(*) FROM files WHERE flat IS NULL").fetchone() == (0,)


def test_a_cache_in_the_older_layout_gains_the_new_columns(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    index = tmp_path / "x.idx"
    with sqlite3.connect(sidecar_path(str(index))) as db:
        db.execute(
            "CREATE TABLE files (path TEXT PRIMARY KEY, size INTEGER NOT NULL,"
            " mtime_ns INTEGER NOT NULL, hash TEXT NOT NULL, id INTEGER NOT NULL)"
        )
    code, out, err = run(capsys, "add", "--index", str(index), "--json", str(SAMPLE))
    assert code == 0, err
    assert json.loads(out)["added"] == 22
    with sqlite3.connect(sidecar_path(str(index))) as db:
        rows = db.execute("SELECT width, height, flat FROM files").fetchall()
    assert len(rows) == 22 and all(w > 0 and h > 0 and flat == 0 for w, h, flat in rows)


# -- reference mode ----------------------------------------------------------------------------


@pytest.mark.parametrize("as_index", [False, True], ids=["folder", "index"])
def test_against_reports_only_groups_joining_new_files_to_the_reference(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, as_index: bool
) -> None:
    ref = tmp_path / "ref"
    ref.mkdir()
    for name in ("astronaut.jpg", "camera.jpg", "coins.jpg"):
        shutil.copy(SAMPLE / name, ref / name)
    shutil.copy(SAMPLE / "camera.jpg", ref / "camera-again.jpg")  # a duplicate inside REF
    new = tmp_path / "new"
    new.mkdir()
    shutil.copy(SAMPLE / "astronaut-jpeg-q25.jpg", new / "astronaut-small.jpg")
    shutil.copy(SAMPLE / "coffee.jpg", new / "coffee.jpg")
    shutil.copy(SAMPLE / "coffee.jpg", new / "coffee-again.jpg")  # new-new, no reference
    against = str(ref)
    if as_index:
        against = str(tmp_path / "ref.idx")
        assert run(capsys, "add", "--index", against, str(ref))[0] == 0
    code, out, err = run(capsys, "dupes", "--json", str(new), "--against", against)
    assert code == 0, err
    groups = json.loads(out)["groups"]
    assert len(groups) == 1
    names = sorted(Path(f["path"]).name for f in groups[0]["files"])
    assert names == ["astronaut-small.jpg", "astronaut.jpg"]
    assert [Path(p).name for p in groups[0]["reference"]] == ["astronaut.jpg"]
    code, out, _ = run(capsys, "dupes", str(new), "--against", against)
    assert code == 0
    assert sum(" ref " in line and "astronaut.jpg" in line for line in out.splitlines()) == 1


def test_against_a_missing_reference_exits_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = run(capsys, "dupes", str(SAMPLE), "--against", str(tmp_path / "nope.idx"))
    assert code == 2 and out == ""
    assert err == f"imgscout: no such reference folder or index: {tmp_path / 'nope.idx'}\n"


# -- actions on the extra copies, and undo -----------------------------------------------------


@pytest.fixture
def copies(tmp_path: Path) -> Path:
    """coins.jpg (full size, the best copy), a half-size copy, and an unrelated photo."""
    folder = tmp_path / "pics"
    folder.mkdir()
    shutil.copy(SAMPLE / "coins.jpg", folder / "coins.jpg")
    with Image.open(SAMPLE / "coins.jpg") as photo:
        photo.resize((photo.width // 2, photo.height // 2)).save(folder / "coins-small.jpg")
    shutil.copy(SAMPLE / "camera.jpg", folder / "camera.jpg")
    return folder


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))}


@pytest.mark.parametrize(
    "how", [["--move-to", "MOVED"], ["--link"], ["--link", "symlink"], ["--delete"]]
)
def test_actions_dry_run_apply_and_undo(
    capsys: pytest.CaptureFixture[str], copies: Path, tmp_path: Path, how: list[str]
) -> None:
    how = [str(tmp_path / "moved") if a == "MOVED" else a for a in how]
    journal = str(tmp_path / "journal.jsonl")
    before = _snapshot(copies)
    kept_stat = (copies / "coins.jpg").stat()
    code, out, err = run(capsys, "dupes", str(copies), *how, "--journal", journal)
    assert code == 0, err
    assert "would " in out and "dry run: 1 to do" in out
    assert _snapshot(copies) == before and not Path(journal).exists()

    code, out, err = run(capsys, "dupes", str(copies), *how, "--journal", journal, "--apply")
    assert code == 0, err
    assert "1 of 1 done" in out
    small = copies / "coins-small.jpg"
    if how[0] == "--move-to":
        assert not small.exists()
        assert (tmp_path / "moved" / "coins-small.jpg").read_bytes() == before["coins-small.jpg"]
    elif how == ["--link"]:
        assert small.stat().st_ino == kept_stat.st_ino
    elif how[0] == "--link":
        assert small.is_symlink() and os.readlink(small) == str(copies / "coins.jpg")
    else:
        assert not small.exists()
    # The kept file is untouched: same inode, same bytes, same time.
    kept_now = (copies / "coins.jpg").stat()
    assert (kept_now.st_ino, kept_now.st_mtime_ns) == (kept_stat.st_ino, kept_stat.st_mtime_ns)
    entries = [json.loads(line) for line in Path(journal).read_text().splitlines()]
    assert [e["path"] for e in entries] == [str(small)]

    code, out, err = run(capsys, "undo", journal)
    assert code == 0, err
    assert out.startswith("restored 1, skipped 0")
    assert _snapshot(copies) == before
    assert not small.is_symlink()
    # A second undo finds nothing left to do.
    assert run(capsys, "undo", journal)[1].startswith("restored 0, skipped 1")


def test_move_across_file_systems(
    capsys: pytest.CaptureFixture[str],
    copies: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """rename() fails with EXDEV between file systems: the move copies and removes."""
    import errno

    real_rename = os.rename

    def cross_device(src: str, dst: str, *args: object, **kwargs: object) -> None:
        if "moved" in str(dst) or "moved" in str(src):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real_rename(src, dst, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "rename", cross_device)
    before = _snapshot(copies)
    journal = str(tmp_path / "j.jsonl")
    argv = ["dupes", str(copies), "--move-to", str(tmp_path / "moved"), "--journal", journal]
    code, _, err = run(capsys, *argv, "--apply")
    assert code == 0, err
    assert not (copies / "coins-small.jpg").exists()
    assert (tmp_path / "moved" / "coins-small.jpg").read_bytes() == before["coins-small.jpg"]
    assert run(capsys, "undo", journal)[0] == 0
    assert _snapshot(copies) == before


@pytest.mark.parametrize(
    ("policy", "kept"),
    [
        ("largest-resolution", "coins.jpg"),
        ("largest-file", "coins.jpg"),
        ("oldest", "coins-small.jpg"),
        ("newest", "coins.jpg"),
    ],
)
def test_keep_policies(
    capsys: pytest.CaptureFixture[str], copies: Path, policy: str, kept: str
) -> None:
    os.utime(copies / "coins-small.jpg", ns=(10**18, 10**18))
    os.utime(copies / "coins.jpg", ns=(2 * 10**18, 2 * 10**18))
    code, out, _ = run(capsys, "dupes", "--json", str(copies), "--delete", "--keep", policy)
    assert code == 0
    actions = json.loads(out)["actions"]
    assert [Path(a["kept"]).name for a in actions] == [kept]
    assert Path(actions[0]["path"]).name != kept


def test_keep_reference_needs_against(capsys: pytest.CaptureFixture[str], copies: Path) -> None:
    code, out, err = run(capsys, "dupes", str(copies), "--delete", "--keep", "reference")
    assert code == 2 and out == ""
    assert err == "imgscout: --keep reference needs --against REF\n"


def test_actions_in_reference_mode_never_touch_the_reference(
    capsys: pytest.CaptureFixture[str], copies: Path, tmp_path: Path
) -> None:
    ref = tmp_path / "ref"
    ref.mkdir()
    with Image.open(SAMPLE / "coins.jpg") as photo:  # the reference is the smallest copy
        photo.resize((photo.width // 4, photo.height // 4)).save(ref / "coins-tiny.jpg")
    code, out, _ = run(
        capsys,
        "dupes",
        "--json",
        str(copies),
        "--against",
        str(ref),
        "--delete",
        "--keep",
        "reference",
    )
    assert code == 0
    actions = json.loads(out)["actions"]
    assert sorted(Path(a["path"]).name for a in actions) == ["coins-small.jpg", "coins.jpg"]
    assert {a["kept"] for a in actions} == {str(ref / "coins-tiny.jpg")}


def test_csv_report_has_a_row_per_member_with_the_kept_one_marked(
    capsys: pytest.CaptureFixture[str], copies: Path, tmp_path: Path
) -> None:
    import csv

    (copies / "odd\nname.jpg").write_bytes((copies / "coins.jpg").read_bytes())
    for k, name in enumerate(("coins.jpg", "odd\nname.jpg", "coins-small.jpg"), 1):
        os.utime(copies / name, ns=(k * 10**18, k * 10**18))
    report = tmp_path / "groups.csv"
    code, _, err = run(capsys, "dupes", str(copies), "--csv", str(report), "--keep", "newest")
    assert code == 0, err
    with open(report, encoding="utf-8", newline="") as source:
        rows = list(csv.DictReader(source))
    assert [Path(r["path"]).name for r in rows] == ["coins.jpg", "odd\nname.jpg", "coins-small.jpg"]
    for row in rows:
        path = Path(row["path"])
        assert int(row["bytes"]) == path.stat().st_size
        with Image.open(path) as image:
            assert (int(row["width"]), int(row["height"])) == image.size
    assert rows[0]["distance_to_best"] == "0"
    assert [r["kept"] for r in rows] == ["0", "0", "1"]  # the newest: coins-small.jpg


@pytest.mark.parametrize(
    ("policy", "kept"),
    [("largest-resolution", "coins.jpg"), ("oldest", "coins-small.jpg"), ("newest", "coins.jpg")],
)
def test_text_html_and_json_reports_mark_the_file_keep_keeps(
    capsys: pytest.CaptureFixture[str], copies: Path, tmp_path: Path, policy: str, kept: str
) -> None:
    import re

    os.utime(copies / "coins-small.jpg", ns=(10**18, 10**18))
    os.utime(copies / "coins.jpg", ns=(2 * 10**18, 2 * 10**18))
    page = tmp_path / "report.html"
    code, out, err = run(capsys, "dupes", str(copies), "--keep", policy, "--html", str(page))
    assert code == 0, err
    marked = [line for line in out.splitlines() if re.match(r"\s+\d+\* [0-9a-f]{16} ", line)]
    unmarked = [line for line in out.splitlines() if re.match(r"\s+\d+  [0-9a-f]{16} ", line)]
    assert [Path(line.split()[-1]).name for line in marked] == [kept]
    assert len(unmarked) == 1 and not unmarked[0].endswith(kept)
    assert f"* kept (--keep {policy}:" in out
    # Member 1 is still the best copy (most pixels), whichever file is kept.
    assert marked[0].lstrip().startswith("1*") == (kept == "coins.jpg")
    small = (copies / "coins-small.jpg").stat().st_size
    large = (copies / "coins.jpg").stat().st_size
    assert (
        f"Beyond the kept copies: 1 file, {small if kept == 'coins.jpg' else large:,} bytes" in out
    )

    figures = re.findall(r"<figure>.*?</figure>", page.read_text(encoding="utf-8"), re.S)
    assert len(figures) == 2
    assert [kept in f for f in figures if 'class="kept"' in f] == [True]
    assert 'class="best"' in figures[0] and "coins.jpg" in figures[0]

    code, out, _ = run(capsys, "dupes", "--json", str(copies), "--keep", policy)
    group = json.loads(out)["groups"][0]
    assert Path(group["files"][group["kept"]]["path"]).name == kept
    assert group["reclaimable_bytes"] == (small if kept == "coins.jpg" else large)


@pytest.mark.parametrize(
    "step",
    [
        "imgscout._cli_cache.RedisFileCache.put_many",
        "imgscout._cli_cache.RedisFileCache.remove_paths",
        "imgscout.RedisIndex.sync",
    ],
)
def test_interrupted_add_on_redis_leaves_one_entry_per_file(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    redis_server: object,
    step: str,
) -> None:
    """On Redis each write is immediate: an interruption after the additions and before the
    cache write leaves entries the cache does not know; the next run finds them by title."""
    import uuid

    import imgscout

    folder = tmp_path / "photos"
    folder.mkdir()
    sources = sorted(SAMPLE.glob("*.jpg"))[:4]
    for k, source in enumerate(sources):
        shutil.copy(source, folder / f"{k}.jpg")
    key = f"robust-{uuid.uuid4().hex}"
    url = f"redis://{redis_server.host}:{redis_server.port}"  # type: ignore[attr-defined]
    args = ["--redis", url, "--key", key]
    assert run(capsys, "add", *args, str(folder))[0] == 0
    shutil.copy(sources[-1], folder / "0.jpg")  # changed
    os.utime(folder / "0.jpg", ns=(1, 1))
    shutil.copy(sources[0], folder / "new.jpg")  # new

    def fail(*_: object, **__: object) -> None:
        raise _Injected()

    with monkeypatch.context() as patch:
        patch.setattr(step, fail)
        assert run(capsys, "add", *args, str(folder))[0] == 130
    code, _, err = run(capsys, "add", *args, "--json", str(folder))
    assert code == 0, err
    with redis_server.client() as connection:  # type: ignore[attr-defined]
        index = imgscout.RedisIndex(connection, key)
        titles = sorted(e.title for e in index.entries())
        assert titles == sorted(str(p) for p in folder.iterdir())
        # One row per file, and the field that records the algorithm.
        assert connection.hlen(f"{key}:files") == len(titles) + 1
        assert connection.hget(f"{key}:files", RECORD_FIELD) == b"phash"
        connection.delete(key, *connection.keys(f"{key}:*"))
