"""The CLI's hash algorithms (``--hash phash|phash256|pdq``), ``--rotations``, PDQ quality and
the algorithm an index records, on the embedded index and on Redis.

Answers are checked against a brute force made from the hashing libraries directly (imagehash
and pdqhash), not from imgscout's hashing module.
"""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import imagehash
import numpy as np
import pdqhash
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageOps

import imgscout
from imgscout import cli, hashing
from imgscout._cli_cache import (
    RECORD_FIELD,
    FileRecord,
    LeftOutRecord,
    SqliteFileCache,
    read_recorded_hash,
    sidecar_path,
)
from imgscout.dedup import DEFAULT_RADII

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE = REPO_ROOT / "examples" / "photos"
#: Sample photographs, each turned into its 8 orientations by the fixtures below.
PHOTOS = ("coffee", "rocket", "coins")
ORIENTATION_NAMES = [name for name, _ in hashing.ORIENTATIONS]
BITS = {"phash": 64, "phash256": 256, "pdq": 256}


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self) -> dict:  # type: ignore[type-arg]
        return json.loads(self.out)  # type: ignore[no-any-return]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> Run:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return Run(code, captured.out, captured.err)


# -- the brute force -----------------------------------------------------------------------------


def _bits_to_int(vector: object) -> int:
    """ThreatExchange's conversion: the bits as a binary string, most significant first."""
    return int("".join(str(int(b)) for b in vector), 2)  # type: ignore[attr-defined]


def _turn(image: Image.Image, k: int) -> Image.Image:
    name = hashing.ORIENTATIONS[k][1]
    return image.copy() if name is None else image.transpose(Image.Transpose[name])


def reference_hashes(path: Path, algorithm: str) -> list[int]:
    """The file's hash and its orientations' hashes, from imagehash and pdqhash: each the hash
    of the image turned that way."""
    with Image.open(path) as opened:
        image = ImageOps.exif_transpose(opened)
    if algorithm == "pdq":
        rgb = image.convert("RGB")
        return [_bits_to_int(pdqhash.compute(np.asarray(_turn(rgb, k)))[0]) for k in range(8)]
    size = 8 if algorithm == "phash" else 16
    return [int(str(imagehash.phash(_turn(image, k), hash_size=size)), 16) for k in range(8)]


def hamming(a: int, b: int) -> int:
    return bin(a ^ b).count("1")


def pair_distance(a: list[int], b: list[int], rotations: bool) -> int:
    """Between two files: their hashes' distance; with rotations the smallest between either
    file's orientations and the other's hash."""
    if not rotations:
        return hamming(a[0], b[0])
    return min(min(hamming(v, b[0]) for v in a), min(hamming(v, a[0]) for v in b))


def reference_groups(
    hashes: dict[str, list[int]], radius: int, rotations: bool
) -> set[frozenset[str]]:
    """Single linkage over every pair within the radius."""
    parent = {p: p for p in hashes}

    def root(p: str) -> str:
        while parent[p] != p:
            p = parent[p]
        return p

    for a, b in itertools.combinations(sorted(hashes), 2):
        if pair_distance(hashes[a], hashes[b], rotations) <= radius:
            parent[root(a)] = root(b)
    groups: dict[str, set[str]] = {}
    for p in hashes:
        groups.setdefault(root(p), set()).add(p)
    return {frozenset(g) for g in groups.values() if len(g) > 1}


def check_dupes_json(
    data: dict,  # type: ignore[type-arg]
    hashes: dict[str, list[int]],
    radius: int,
    rotations: bool,
    bits: int,
) -> None:
    """The groups are the brute force's, every printed hash and distance is its."""
    groups = {frozenset(f["path"] for f in g["files"]) for g in data["groups"]}
    assert groups == reference_groups(hashes, radius, rotations)
    for group in data["groups"]:
        files = group["files"]
        best = hashes[files[0]["path"]]
        for f in files:
            assert f["hash"] == f"{hashes[f['path']][0]:0{bits // 4}x}"
            assert f["distance"] == pair_distance(best, hashes[f["path"]], rotations)
        assert len(group["links"]) == len(files) - 1
        for link in group["links"]:
            a, b = (hashes[files[link[k]]["path"]] for k in ("a", "b"))
            assert link["distance"] == pair_distance(a, b, rotations) <= radius


# -- fixtures -----------------------------------------------------------------------------------


def _save_turned(folder: Path, names: tuple[str, ...]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name in names:
        with Image.open(SAMPLE / f"{name}.jpg") as image:
            rgb = image.convert("RGB")
        for k, orientation in enumerate(ORIENTATION_NAMES):
            path = folder / f"{name}-{orientation}.png"
            _turn(rgb, k).save(path, compress_level=1)  # lossless: exactly the turned pixels
            written.append(path)
    return written


@pytest.fixture(scope="module")
def turned(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Each photo of PHOTOS in its 8 orientations, as PNG."""
    folder = tmp_path_factory.mktemp("turned")
    _save_turned(folder, PHOTOS)
    return folder


@pytest.fixture(scope="module")
def originals(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("originals")
    for name in PHOTOS:
        with Image.open(SAMPLE / f"{name}.jpg") as image:
            image.save(folder / f"{name}.png", compress_level=1)
    return folder


@pytest.fixture
def two(tmp_path: Path) -> Path:
    """Two photographs and a flat image."""
    folder = tmp_path / "two"
    folder.mkdir()
    for name in ("camera", "chelsea"):
        with Image.open(SAMPLE / f"{name}.jpg") as image:
            image.save(folder / f"{name}.png")
    Image.new("RGB", (80, 60), (90, 100, 110)).save(folder / "flat.png")
    return folder


def _all_hashes(folder: Path, algorithm: str) -> dict[str, list[int]]:
    return {str(p): reference_hashes(p, algorithm) for p in sorted(folder.glob("*.png"))}


# -- hash ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["phash", "phash256", "pdq"])
def test_hash_prints_each_algorithm(
    capsys: pytest.CaptureFixture[str], originals: Path, algorithm: str
) -> None:
    expected = _all_hashes(originals, algorithm)
    digits = BITS[algorithm] // 4
    text = run(capsys, "hash", "--hash", algorithm, str(originals))
    assert text.code == 0
    assert text.out.splitlines() == [f"{h[0]:0{digits}x}  {p}" for p, h in expected.items()]
    data = run(capsys, "hash", "--hash", algorithm, "--json", str(originals)).json()
    assert [(f["path"], f["hash"]) for f in data["files"]] == [
        (p, f"{h[0]:0{digits}x}") for p, h in expected.items()
    ]
    if algorithm == "pdq":
        for f in data["files"]:
            with Image.open(f["path"]) as image:
                _, quality = pdqhash.compute(np.asarray(image.convert("RGB")))
            assert f["quality"] == quality
        assert data["hash_algorithm"] == "pdq" and data["low_quality"] == []
    elif algorithm == "phash":
        # The default prints exactly what it always did.
        assert set(data) == {"files", "bad_files"}
        assert all(set(f) == {"path", "hash"} for f in data["files"])
    # Without --hash: phash.
    assert (
        run(capsys, "hash", str(originals)).out
        == run(capsys, "hash", "--hash", "phash", str(originals)).out
    )


def test_bad_hash_choice_and_radius_exit_2(capsys: pytest.CaptureFixture[str], two: Path) -> None:
    for argv in (
        ["hash", "--hash", "md5", str(two)],
        ["dupes", "--hash", "PDQ", str(two)],
        ["query", "--hash", "pdq", "--radius", "-1", str(two)],
        ["dupes", "--hash", "phash256", "--radius", "1e2", str(two)],
    ):
        result = run(capsys, *argv)
        assert result.code == 2, argv
        assert result.out == "" and len(result.err.strip().splitlines()) == 1, argv
    assert "invalid choice: 'md5'" in run(capsys, "hash", "--hash", "md5", str(two)).err


def test_pdq_without_pdqhash_is_one_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, two: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pdqhash", None)  # as if it were not installed
    index = str(tmp_path / "x.idx")
    for argv in (
        ["hash", "--hash", "pdq", str(two)],
        ["add", "--hash", "pdq", "--index", index, str(two)],
        ["query", "--hash", "pdq", "--index", index, str(two)],
        ["dupes", "--hash", "pdq", str(two)],
    ):
        result = run(capsys, *argv)
        assert result.code == 2, argv
        assert (
            result.err.strip()
            == 'imgscout: --hash pdq needs the pdqhash package: pip install "imgscout[pdq]"'
        )
    assert not Path(index).exists()
    with pytest.raises(imgscout.UsageError, match="pdqhash"):
        imgscout.find_duplicates(two, hash="pdq")


# -- radius -------------------------------------------------------------------------------------


def _parsed_radius(*argv: str) -> int:
    return cli.build_parser().parse_args(["query", *argv, "photo.png"]).radius  # type: ignore[no-any-return]


def test_default_radius_follows_the_algorithm() -> None:
    assert DEFAULT_RADII == {"phash": 8, "phash256": 78, "pdq": 78}
    assert DEFAULT_RADII["phash"] == cli.DEFAULT_RADIUS
    assert _parsed_radius() == 8
    for algorithm, radius in DEFAULT_RADII.items():
        assert _parsed_radius("--hash", algorithm) == radius
        assert _parsed_radius("--radius", "3", "--hash", algorithm) == 3
    dupes = cli.build_parser().parse_args(["dupes", "--hash", "pdq", "x"])
    assert dupes.radius == 78 and not dupes.rotations and not dupes.keep_low_quality


def test_radius_is_bounded_by_the_width_of_the_hash() -> None:
    """0..bits; above the width acts as the width (as everywhere in docs/spec.md), so a wide
    radius is not cut to 64."""
    assert _parsed_radius("--radius", "100") == 64
    assert _parsed_radius("--radius", "100", "--hash", "pdq") == 100
    assert _parsed_radius("--hash", "phash256", "--radius", "256") == 256
    assert _parsed_radius("--hash", "phash256", "--radius", "257") == 256
    assert _parsed_radius("--hash", "pdq", "-r", "99999999999999999999999") == 256
    assert _parsed_radius("--hash", "pdq", "--radius", "200.9") == 200
    assert _parsed_radius("--hash", "pdq", "--radius", ".5") == 0


def test_a_radius_of_the_full_width_joins_every_file(
    capsys: pytest.CaptureFixture[str], originals: Path
) -> None:
    data = run(capsys, "dupes", "--hash", "pdq", "--radius", "300", "--json", str(originals)).json()
    assert data["radius"] == 256
    assert [len(g["files"]) for g in data["groups"]] == [len(PHOTOS)]
    # 100 is above phash's width but not PDQ's: some pairs stay apart.
    hashes = _all_hashes(originals, "pdq")
    closest = min(hamming(a[0], b[0]) for a, b in itertools.combinations(hashes.values(), 2))
    data = run(capsys, "dupes", "--hash", "pdq", "-r", str(closest - 1), "--json", str(originals))
    assert data.code == 1 and data.json()["groups"] == []


# -- dupes and query with rotations ------------------------------------------------------------


def test_dupes_pdq_rotations_finds_the_turned_copies_plain_pdq_misses(
    capsys: pytest.CaptureFixture[str], turned: Path
) -> None:
    hashes = _all_hashes(turned, "pdq")
    radius = DEFAULT_RADII["pdq"]
    plain = run(capsys, "dupes", "--hash", "pdq", "--json", str(turned))
    assert plain.code == 1 and plain.json()["groups"] == []
    check_dupes_json(plain.json(), hashes, radius, rotations=False, bits=256)
    result = run(capsys, "dupes", "--hash", "pdq", "--rotations", "--json", str(turned))
    assert result.code == 0
    data = result.json()
    assert data["rotations"] is True and data["radius"] == radius and data["files_hashed"] == 24
    check_dupes_json(data, hashes, radius, rotations=True, bits=256)
    # Each photograph with its seven turned and mirrored copies, and nothing else.
    assert sorted(sorted(Path(f["path"]).name for f in g["files"]) for g in data["groups"]) == [
        sorted(f"{name}-{o}.png" for o in ORIENTATION_NAMES) for name in sorted(PHOTOS)
    ]
    text = run(capsys, "dupes", "--hash", "pdq", "--rotations", str(turned))
    assert f"3 groups of near-duplicates (24 of 24 files) at radius {radius}" in text.out
    # The turned copies are the hashes of the turned pixels, so they match at distance 0: even
    # radius 0 finds every group.
    exact = run(capsys, "dupes", "--hash", "pdq", "--rotations", "-r", "0", "--json", str(turned))
    assert [len(g["files"]) for g in exact.json()["groups"]] == [8] * len(PHOTOS)


@pytest.mark.parametrize("algorithm", ["phash", "phash256"])
def test_dupes_rotations_equal_the_brute_force(
    capsys: pytest.CaptureFixture[str], turned: Path, algorithm: str
) -> None:
    hashes = _all_hashes(turned, algorithm)
    for rotations in (False, True):
        argv = ["dupes", "--hash", algorithm, "--json", str(turned)]
        data = run(capsys, *argv, *(["--rotations"] if rotations else [])).json()
        check_dupes_json(data, hashes, DEFAULT_RADII[algorithm], rotations, BITS[algorithm])
        assert len(data["groups"]) == (len(PHOTOS) if rotations else 0)


def _index_entries(path: Path) -> dict[str, int]:
    return {e.title: int(e.id) for e in imgscout.Index.load(path).entries()}


@pytest.mark.parametrize("algorithm", ["phash", "phash256", "pdq"])
@pytest.mark.parametrize("limit", [None, 2])
def test_query_rotations_equal_the_brute_force(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    turned: Path,
    originals: Path,
    algorithm: str,
    limit: int | None,
) -> None:
    """Only the originals (and one photo's turned copies) are indexed; the turned copies of the
    others are found with --rotations, each match at its smallest distance over the query's
    orientations."""
    index = tmp_path / "q.idx"
    indexed = [*sorted(originals.glob("*.png")), *sorted(turned.glob(f"{PHOTOS[0]}-*.png"))]
    added = run(
        capsys, "add", "--hash", algorithm, "--index", str(index), "--json", *map(str, indexed)
    )
    assert added.code == 0 and added.json()["added"] == len(indexed)
    ids = _index_entries(index)
    stored = {str(p.resolve()): reference_hashes(p, algorithm)[0] for p in indexed}
    queries = sorted(turned.glob(f"{PHOTOS[1]}-*.png"))
    radius = DEFAULT_RADII[algorithm]
    extra = ["--limit", str(limit)] if limit is not None else []
    for rotations in (False, True):
        argv = ["query", "--hash", algorithm, "--index", str(index), "--json", *extra]
        result = run(capsys, *argv, *(["--rotations"] if rotations else []), *map(str, queries))
        answers = result.json()["queries"]
        assert [q["path"] for q in answers] == [str(q) for q in queries]
        for query, answer in zip(queries, answers):
            turns = reference_hashes(query, algorithm)
            expected = sorted(
                (
                    (
                        min(hamming(v, value) for v in (turns if rotations else turns[:1])),
                        ids[title],
                    )
                    for title, value in stored.items()
                ),
            )
            expected = [(d, i) for d, i in expected if d <= radius][:limit]
            assert [(m["distance"], m["id"]) for m in answer["matches"]] == expected
            titles = {i: t for t, i in ids.items()}
            assert [m["title"] for m in answer["matches"]] == [titles[i] for _, i in expected]
        if rotations:
            # Every query finds its photograph's original.
            original = str((originals / f"{PHOTOS[1]}.png").resolve())
            assert all(original in [m["title"] for m in a["matches"]] for a in answers)
            assert result.code == 0


# -- the algorithm an index records -------------------------------------------------------------


@pytest.mark.parametrize(("first", "second"), list(itertools.permutations(BITS, 2)))
def test_an_index_of_another_algorithm_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, two: Path, first: str, second: str
) -> None:
    index = tmp_path / "mixed.idx"
    assert run(capsys, "add", "--hash", first, "--index", str(index), str(two)).code == 0
    before = index.read_bytes(), sidecar_path(str(index))
    assert read_recorded_hash(sidecar_path(str(index))) == first
    for command in ("add", "query", "dupes"):
        result = run(capsys, command, "--hash", second, "--index", str(index), str(two))
        assert result.code == 2, command
        assert result.out == ""
        assert result.err == (
            f"imgscout: index {index} holds {first} hashes, not {second}; run with --hash {first}\n"
        )
    assert index.read_bytes() == before[0]
    assert read_recorded_hash(before[1]) == first
    # The index's own algorithm still works; commands that hash nothing take any index.
    assert run(capsys, "query", "--hash", first, "--index", str(index), str(two)).code == 0
    # The flat image has too low a PDQ quality to be indexed; the pHashes take it.
    size = 2 if first == "pdq" else 3
    assert run(capsys, "size", "--index", str(index)).out.strip() == str(size)


def test_an_index_without_a_record_holds_phash(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, two: Path
) -> None:
    """A cache from before the record (no meta table) and a 64-bit index: phash."""
    index = tmp_path / "old.idx"
    assert run(capsys, "add", "--index", str(index), str(two)).code == 0
    with sqlite3.connect(sidecar_path(str(index))) as connection:
        assert connection.execute("SELECT value FROM meta").fetchall() == [("phash",)]
        connection.execute("DROP TABLE meta")
    assert read_recorded_hash(sidecar_path(str(index))) is None
    refused = run(capsys, "add", "--hash", "pdq", "--index", str(index), str(two))
    assert refused.code == 2
    assert "holds phash hashes, not pdq; run with --hash phash" in refused.err
    again = run(capsys, "add", "--index", str(index), "--json", str(two))
    assert again.code == 0 and again.json()["unchanged"] == 3  # the flat image too
    # Without any cache the width speaks.
    Path(sidecar_path(str(index))).unlink()
    refused = run(capsys, "query", "--hash", "phash256", "--index", str(index), str(two))
    assert refused.code == 2
    assert "holds phash hashes, not phash256; run with --hash phash" in refused.err


def test_a_wide_index_without_a_cache_is_checked_by_its_width(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, originals: Path
) -> None:
    """An index made with the Python API: 256 bits, no record. Either 256-bit algorithm may
    read it (nothing says which filled it); phash may not."""
    files = sorted(originals.glob("*.png"))
    index = imgscout.Index(bits=256)
    index.add_many([reference_hashes(p, "pdq")[0] for p in files], [p.name for p in files])
    index.sync()
    path = tmp_path / "api.idx"
    index.save(path)
    refused = run(capsys, "query", "--index", str(path), str(files[0]))
    assert refused.code == 2
    assert refused.err == (
        f"imgscout: index {path} holds 256-bit hashes, not phash's 64; "
        "run with --hash phash256 or --hash pdq\n"
    )
    found = run(capsys, "query", "--hash", "pdq", "--index", str(path), "--json", str(files[0]))
    assert found.code == 0
    assert [(m["title"], m["distance"]) for m in found.json()["queries"][0]["matches"]] == [
        (files[0].name, 0)
    ]
    assert not Path(sidecar_path(str(path))).exists()  # a query writes no cache
    refused = run(capsys, "dupes", str(originals), "--against", str(path))
    assert refused.code == 2 and "reference index" in refused.err and "--hash pdq" in refused.err


def test_a_stale_cache_of_a_deleted_index_does_not_bind_the_new_one(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, two: Path
) -> None:
    index = tmp_path / "again.idx"
    assert run(capsys, "add", "--hash", "pdq", "--index", str(index), str(two)).code == 0
    index.unlink()
    assert run(capsys, "add", "--hash", "phash256", "--index", str(index), str(two)).code == 0
    assert imgscout.Index.load(index).bits == 256
    assert read_recorded_hash(sidecar_path(str(index))) == "phash256"


# -- the cache ----------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    hashes=st.lists(
        st.one_of(st.integers(0, 2**256 - 1), st.integers(0, 2**8)), min_size=1, max_size=8
    )
)
def test_the_cache_keeps_wide_hashes_as_hex_text(
    tmp_path_factory: pytest.TempPathFactory, hashes: list[int]
) -> None:
    path = tmp_path_factory.mktemp("cache") / "c.idx.files"
    cache = SqliteFileCache(str(path), bits=256)
    records = [
        FileRecord(f"/p/{k}", k, k, value, k + 1, 3, 4, False) for k, value in enumerate(hashes)
    ]
    cache.put_many(records)
    assert cache.get_many([r.path for r in records]) == {r.path: r for r in records}
    rows = cache.connection.execute("SELECT path, hash FROM files ORDER BY id").fetchall()
    assert rows == [(r.path, f"{r.hash:064x}") for r in records]
    cache.close()


def test_a_64_bit_cache_keeps_its_format(tmp_path: Path) -> None:
    cache = SqliteFileCache(str(tmp_path / "c.files"))
    cache.put_many([FileRecord("/a", 1, 2, 0xABC, 7)])
    assert cache.connection.execute("SELECT hash FROM files").fetchall() == [("0000000000000abc",)]
    assert cache.recorded_hash() is None
    cache.record_hash("phash")
    assert cache.recorded_hash() == "phash" == read_recorded_hash(str(tmp_path / "c.files"))
    cache.close()
    assert read_recorded_hash(str(tmp_path / "missing.files")) is None


def test_pdq_add_is_incremental(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    originals: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    index = tmp_path / "pdq.idx"
    first = run(capsys, "add", "--hash", "pdq", "--index", str(index), "--json", str(originals))
    assert first.code == 0 and first.json()["added"] == len(PHOTOS)
    assert first.json()["hash_algorithm"] == "pdq"
    with sqlite3.connect(sidecar_path(str(index))) as connection:
        rows = dict(connection.execute("SELECT path, hash FROM files").fetchall())
    assert rows == {
        str(p.resolve()): f"{reference_hashes(p, 'pdq')[0]:064x}" for p in originals.glob("*.png")
    }
    hashed: list[str] = []
    real = hashing.hash_files

    def recording(paths: list[str], jobs: int | None = None, **options: object) -> object:
        hashed.extend(paths)
        return real(paths, jobs=jobs, **options)

    monkeypatch.setattr(hashing, "hash_files", recording)
    before = index.read_bytes()
    again = run(capsys, "add", "--hash", "pdq", "--index", str(index), "--json", str(originals))
    assert again.json()["unchanged"] == len(PHOTOS) and hashed == []
    assert index.read_bytes() == before
    # dupes --index with rotations takes the originals from the cache and hashes the files
    # again for their orientations only: the same groups as without an index.
    found = imgscout.find_duplicates(originals, index=index, hash="pdq", rotations=True)
    assert found == imgscout.find_duplicates(originals, hash="pdq", rotations=True)
    assert index.read_bytes() == before


# -- PDQ quality ------------------------------------------------------------------------------


def test_low_quality_files_are_reported_and_left_out(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, two: Path
) -> None:
    flat = str((two / "flat.png").resolve())
    index = tmp_path / "q.idx"
    added = run(capsys, "add", "--hash", "pdq", "--index", str(index), "--json", str(two))
    data = added.json()
    assert added.code == 0 and data["added"] == 2 and data["size"] == 2
    assert data["bad_files"] == []
    assert [f["path"] for f in data["low_quality"]] == [flat]
    assert data["low_quality"][0]["quality"] < 50
    assert "left out 1 file of PDQ quality below 50" in added.err
    assert f"  {flat}: quality {data['low_quality'][0]['quality']}" in added.err
    assert flat not in _index_entries(index)
    text = run(capsys, "add", "--hash", "pdq", "--index", str(index), str(two))
    assert "bad 0;" in text.out and "quality" in text.err
    kept = run(
        capsys,
        "add",
        "--hash",
        "pdq",
        "--keep-low-quality",
        "--index",
        str(index),
        "--json",
        str(two),
    )
    assert kept.json()["added"] == 1 and kept.json()["low_quality"] == [] and kept.err == ""
    assert flat in _index_entries(index)
    # The other commands report them the same way; phash has no quality to report.
    for argv in (["hash"], ["dupes"], ["query", "--index", str(index)]):
        result = run(capsys, *argv, "--hash", "pdq", "--json", str(two))
        assert [f["path"] for f in result.json()["low_quality"]] == [str(two / "flat.png")], argv
    dupes = imgscout.find_duplicates(two, hash="pdq")
    assert [f.path for f in dupes.low_quality] == [str(two / "flat.png")] and dupes.failures == []
    assert "PDQ quality" not in run(capsys, "dupes", str(two)).err


@pytest.mark.parametrize("on_redis", [False, True], ids=["embedded", "redis"])
def test_a_rerun_reports_low_quality_files_without_decoding_them_again(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    two: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    on_redis: bool,
) -> None:
    if on_redis:
        args = list(request.getfixturevalue("redis_key")[0])
    else:
        args = ["--index", str(tmp_path / "q.idx")]
    flat = two / "flat.png"
    hashed: list[str] = []
    real = hashing.hash_files

    def recording(paths: list[str], jobs: int | None = None, **options: object) -> object:
        hashed.extend(str(Path(p).resolve()) for p in paths)
        return real(paths, jobs=jobs, **options)

    monkeypatch.setattr(hashing, "hash_files", recording)

    def add(*options: str) -> dict:  # type: ignore[type-arg]
        hashed.clear()
        result = run(capsys, "add", "--hash", "pdq", *options, *args, "--json", str(two))
        assert result.code == 0, result.err
        return result.json()

    first = add()
    assert len(hashed) == 3 and first["added"] == 2
    reported = first["low_quality"]
    assert [f["path"] for f in reported] == [str(flat.resolve())] and reported[0]["quality"] < 50
    again = add()
    assert hashed == [] and again["unchanged"] == 2 and again["low_quality"] == reported
    if not on_redis:
        # dupes --index reads the same cache: the flat file is reported, not decoded.
        found = imgscout.find_duplicates(two, index=args[1], hash="pdq")
        assert hashed == [] and [f.path for f in found.low_quality] == [str(flat.resolve())]
    # A changed file is decoded again, and its new quality is what is reported.
    status = flat.stat()
    os.utime(flat, ns=(status.st_atime_ns, status.st_mtime_ns + 10**9))
    assert add()["low_quality"] == reported and hashed == [str(flat.resolve())]
    assert add()["low_quality"] == reported and hashed == []
    # Asked to keep such files, the run hashes and adds it; from then on it is an entry.
    kept = add("--keep-low-quality")
    assert kept["added"] == 1 and kept["low_quality"] == [] and hashed == [str(flat.resolve())]
    after = add()
    assert after["unchanged"] == 3 and after["low_quality"] == [] and hashed == []


def test_a_left_out_record_holds_for_its_file_and_algorithm_only(tmp_path: Path) -> None:
    cache = SqliteFileCache(str(tmp_path / "c.files"), bits=256)
    record = LeftOutRecord("/a.png", 10, 20, "pdq", 30)
    cache.put_left_out([record, LeftOutRecord("/b.png", 1, 2, "pdq", 0)])
    cache.close()
    reopened = SqliteFileCache(str(tmp_path / "c.files"), bits=256)
    assert reopened.get_left_out(["/a.png", "/c.png"]) == {"/a.png": record}
    assert reopened.count() == 0  # not a row of an indexed file
    assert record.matches(10, 20, "pdq")
    assert not record.matches(11, 20, "pdq") and not record.matches(10, 21, "pdq")
    assert not record.matches(10, 20, "phash256") and not record.matches(10, 20, None)
    reopened.remove_left_out(["/a.png"])
    assert reopened.get_left_out(["/a.png", "/b.png"]) == {
        "/b.png": LeftOutRecord("/b.png", 1, 2, "pdq", 0)
    }
    reopened.close()


# -- the Python API ---------------------------------------------------------------------------


def test_find_duplicates_with_pdq_and_rotations(turned: Path) -> None:
    found = imgscout.find_duplicates(turned, hash="pdq", rotations=True)
    assert found.hash == "pdq" and found.rotations and found.radius == DEFAULT_RADII["pdq"]
    assert len(found) == len(PHOTOS) and all(len(g) == 8 and g.bits == 256 for g in found)
    hashes = _all_hashes(turned, "pdq")
    for group in found:
        for member in group:
            assert member.hash == hashes[member.path][0]
            assert list(member.variants) == hashes[member.path]
            assert member.distance == pair_distance(
                hashes[group.best.path], hashes[member.path], True
            )
    assert imgscout.find_duplicates(turned, hash="pdq") == []
    assert imgscout.find_duplicates(turned, 31, hash="pdq") == []
    with pytest.raises(ValueError, match="unknown hash algorithm"):
        imgscout.find_duplicates(turned, hash="md5")
    with pytest.raises(ValueError, match="rotations"):
        imgscout.find_duplicates({"a": 1, "b": 2}, rotations=True)
    # Precomputed 256-bit hashes.
    wide = {"x": 2**255 | 1, "y": 2**255, "z": 7}
    assert [g.paths for g in imgscout.find_duplicates(wide, 1, hash="pdq")] == [["x", "y"]]


def test_against_a_pdq_index_with_rotations(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, turned: Path, originals: Path
) -> None:
    reference = tmp_path / "ref.idx"
    assert run(capsys, "add", "--hash", "pdq", "--index", str(reference), str(originals)).code == 0
    new = sorted(turned.glob(f"{PHOTOS[2]}-*.png"))
    argv = ["dupes", "--hash", "pdq", "--json", "--against", str(reference), *map(str, new)]
    every = sorted([f"{PHOTOS[2]}.png", *(p.name for p in new)])
    plain = run(capsys, *argv).json()["groups"]
    assert all(len(g["files"]) < len(every) for g in plain)
    (group,) = run(capsys, *argv, "--rotations").json()["groups"]
    assert sorted(Path(f["path"]).name for f in group["files"]) == every
    assert group["reference"] == [str((originals / f"{PHOTOS[2]}.png").resolve())]
    refused = run(capsys, "dupes", "--json", "--against", str(reference), *map(str, new))
    assert refused.code == 2
    assert refused.err.strip() == (
        f"imgscout: reference index {reference} holds pdq hashes, not phash; run with --hash pdq"
    )


# -- Redis ------------------------------------------------------------------------------------


@pytest.fixture
def redis_key(redis_server: object) -> Iterator[tuple[list[str], str]]:
    key = f"cli-wide-{uuid.uuid4().hex}"
    url = f"redis://{redis_server.host}:{redis_server.port}/0"  # type: ignore[attr-defined]
    yield ["--redis", url, "--key", key], key
    with redis_server.client() as connection:  # type: ignore[attr-defined]
        connection.delete(key, *connection.keys(f"{key}:*"))


@pytest.mark.parametrize("algorithm", ["phash256", "pdq"])
def test_redis_holds_wide_hashes(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    redis_server: object,
    redis_key: tuple[list[str], str],
    turned: Path,
    originals: Path,
    algorithm: str,
) -> None:
    args, key = redis_key
    embedded = ["--index", str(tmp_path / "same.idx")]
    for backend in (args, embedded):
        added = run(capsys, "add", "--hash", algorithm, *backend, "--json", str(originals))
        assert added.code == 0 and added.json()["added"] == len(PHOTOS)
    with redis_server.client() as connection:  # type: ignore[attr-defined]
        assert connection.hget(f"{key}:files", RECORD_FIELD) == algorithm.encode()
        assert imgscout.RedisIndex(connection, key, bits=256).size() == len(PHOTOS)
    queries = [str(p) for p in sorted(turned.glob(f"{PHOTOS[0]}-*.png"))]
    answers = []
    for backend in (args, embedded):
        result = run(
            capsys, "query", "--hash", algorithm, "--rotations", *backend, "--json", *queries
        )
        assert result.code == 0
        answers.append(
            [[(m["title"], m["distance"]) for m in q["matches"]] for q in result.json()["queries"]]
        )
    assert answers[0] == answers[1] and all(answers[0])
    refused = run(capsys, "query", *args, *queries)
    assert refused.code == 2
    assert refused.err == (
        f"imgscout: Redis key {key} holds {algorithm} hashes, not phash; "
        f"run with --hash {algorithm}\n"
    )
    other = "pdq" if algorithm == "phash256" else "phash256"
    assert run(capsys, "add", "--hash", other, *args, str(originals)).code == 2
    # The commands that hash nothing take the key as it is.
    assert run(capsys, "size", *args).out.strip() == str(len(PHOTOS))
    titles = {str(p.resolve()) for p in originals.glob("*.png")}
    assert run(capsys, "lookup", *args, "1").out.strip() in titles
    # dupes on Redis (its self-join on the server) gives the embedded answer.
    groups = []
    for backend in (args[:2], []):
        result = run(
            capsys, "dupes", "--hash", algorithm, "--rotations", *backend, "--json", str(turned)
        )
        assert result.code == 0
        groups.append(result.json()["groups"])
    assert groups[0] == groups[1] and len(groups[0]) == len(PHOTOS)
    assert run(capsys, "del", *args, "1").code == 0
    assert run(capsys, "size", *args).out.strip() == str(len(PHOTOS) - 1)


def test_redis_key_without_record_holds_phash(
    capsys: pytest.CaptureFixture[str],
    redis_server: object,
    redis_key: tuple[list[str], str],
    two: Path,
) -> None:
    args, key = redis_key
    assert run(capsys, "add", *args, str(two)).code == 0
    with redis_server.client() as connection:  # type: ignore[attr-defined]
        assert connection.hdel(f"{key}:files", RECORD_FIELD) == 1
    refused = run(capsys, "add", "--hash", "pdq", *args, str(two))
    assert refused.code == 2 and "holds phash hashes, not pdq" in refused.err
    assert run(capsys, "add", *args, "--json", str(two)).json()["unchanged"] == 3
