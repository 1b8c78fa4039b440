"""128- and 256-bit indexes in Python: every hash form, every search against a numpy brute
force, wrong widths named, files that keep their width (docs/spec.md, "Code widths")."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import imgscout
from imgscout import InvalidArgumentError, InvalidDataError

from .test_spec import examples

WIDE = [128, 256]


def clustered(bits: int, n: int, seed: int) -> npt.NDArray[np.uint8]:
    """``n`` codes near 40 originals, each with up to ``bits // 8`` bits flipped."""
    rng = np.random.default_rng(seed)
    centres = rng.integers(0, 256, size=(40, bits // 8), dtype=np.uint8)
    codes = centres[rng.integers(0, 40, size=n)].copy()
    flips = rng.integers(0, bits, size=(n, bits // 8))
    keep = rng.random((n, bits // 8)) < 0.5
    for row in range(n):
        for bit in flips[row][keep[row]]:
            codes[row, bit // 8] ^= np.uint8(1 << (bit % 8))
    return codes


def distances(codes: npt.NDArray[np.uint8], query: npt.NDArray[np.uint8]) -> npt.NDArray[np.int64]:
    return np.unpackbits(codes ^ query, axis=1).sum(axis=1).astype(np.int64)


def brute_rows(codes: npt.NDArray[np.uint8], query: npt.NDArray[np.uint8], radius: int) -> list:
    d = distances(codes, query)
    ids = np.arange(1, len(codes) + 1)
    keep = d <= radius
    order = np.lexsort((ids[keep], d[keep]))
    return list(zip(ids[keep][order].tolist(), d[keep][order].tolist()))


@pytest.fixture(params=WIDE)
def wide(request: pytest.FixtureRequest) -> tuple[imgscout.Index, npt.NDArray[np.uint8]]:
    bits = request.param
    codes = clustered(bits, 6000, seed=bits)
    index = imgscout.Index(bits=bits)
    index.add_many(codes, [f"c{i}" for i in range(len(codes))])
    index.sync()
    return index, codes


def test_every_search_agrees_with_numpy(wide: tuple[imgscout.Index, npt.NDArray[np.uint8]]) -> None:
    index, codes = wide
    bits = index.bits
    queries = codes[::500].copy()
    queries[::2, 0] ^= 0b1011
    for radius in [0, 4, bits // 16, bits // 8, 31, bits // 4, bits]:
        want = [brute_rows(codes, q, radius) for q in queries]
        for q, rows in zip(queries, want):
            got = index.query(q, radius)
            assert [(m.id, m.distance) for m in got] == rows
            assert all(m.title == f"c{m.id - 1}" for m in got)
        lims, ids, dist = index.query_arrays(queries, radius)
        for i, rows in enumerate(want):
            row = list(
                zip(ids[lims[i] : lims[i + 1]].tolist(), dist[lims[i] : lims[i + 1]].tolist())
            )
            assert row == rows
        many = index.query_many(queries, radius, limit=3)
        assert [[(m.id, m.distance) for m in one] for one in many] == [rows[:3] for rows in want]
    ids, dist = index.knn_arrays(queries, 10)
    for i, q in enumerate(queries):
        rows = brute_rows(codes, q, bits)[:10]
        assert list(zip(ids[i].tolist(), dist[i].tolist())) == rows
        assert [(m.id, m.distance) for m in index.knn(q, 10)] == rows
    radius = bits // 16
    a, b, d = index.pairs_arrays(radius)
    want_pairs = []
    for i in range(len(codes) - 1):
        d_i = distances(codes[i + 1 :], codes[i])
        (near,) = np.nonzero(d_i <= radius)
        want_pairs += [(int(d_i[k]), i + 1, i + 2 + int(k)) for k in near]
    want_pairs.sort()
    assert list(zip(d.tolist(), a.tolist(), b.tolist())) == want_pairs
    assert [(p.distance, p.a, p.b) for p in index.pairs(radius)] == want_pairs
    walked = sorted((p.distance, p.a, p.b) for p in index.iter_pairs(radius, page_size=97))
    assert walked == want_pairs


@pytest.mark.parametrize("bits", WIDE)
def test_every_hash_form_names_the_same_code(bits: int) -> None:
    rng = np.random.default_rng(7)
    row = rng.integers(0, 256, size=bits // 8, dtype=np.uint8)
    text = row.tobytes().hex()
    forms: list[object] = [
        row,
        row.tobytes(),
        bytearray(row.tobytes()),
        memoryview(row.tobytes()),
        text,
        text.upper(),
        "0x" + text,
        int(text, 16),
    ]
    imagehash = pytest.importorskip("imagehash")
    if bits == 256:
        forms.append(imagehash.hex_to_hash(text))
    index = imgscout.Index(bits=bits)
    index.add(row, "original")
    index.sync()
    for form in forms:
        assert index.query(form, 0) == [imgscout.Match("original", 1, 0)], form
    assert index.entries()[0].hash == text
    assert imgscout.Index(bits=bits).add_many(forms, ["x"] * len(forms)).tolist() == list(
        range(1, len(forms) + 1)
    )


def test_wide_hash_text_examples_of_the_spec() -> None:
    index = imgscout.Index(bits=256)
    for text, want in examples("wide hash text (256 bits)"):
        if want.startswith("invalid-hash"):
            with pytest.raises(InvalidArgumentError) as raised:
                index.add(text, "x")
            assert raised.value.code == "invalid-hash"
            if "64-bit" in want:
                assert "is a 64-bit hash; this index holds 256-bit hashes" in str(raised.value)
        else:
            entry_id = index.add(text, "x")
            raw = bytes.fromhex(index.entries()[-1].hash)
            assert [raw[0], raw[1], raw[31]] == [int(x) for x in want.split(", ")]
            index.delete(entry_id)


@pytest.mark.parametrize("bits", [64, *WIDE])
def test_a_hash_of_another_width_is_named(bits: int) -> None:
    index = imgscout.Index(bits=bits)
    for other in [64, 128, 256]:
        if other == bits:
            continue
        for form in [
            "ab" * (other // 8),
            bytes(other // 8),
            np.zeros(other // 8, dtype=np.uint8),
        ]:
            with pytest.raises(
                InvalidArgumentError, match=f"is a {other}-bit hash; this index holds {bits}-bit"
            ):
                index.query(form, 3)
        rows = np.zeros((2, other // 8), dtype=np.uint8)
        wrong_rows = f"{other}-bit hashes; this index holds {bits}-bit"
        with pytest.raises(InvalidArgumentError, match=wrong_rows):
            index.add_many(rows, ["a", "b"])
        with pytest.raises(InvalidArgumentError, match=wrong_rows):
            index.query_arrays(rows, 3)
    if bits != 64:
        with pytest.raises(InvalidArgumentError, match="invalid hash value"):
            index.add(1 << bits, "too large")
        with pytest.raises(InvalidArgumentError, match="invalid hash value"):
            index.add(-1, "negative")
        with pytest.raises(InvalidArgumentError, match="invalid hash value"):
            index.add("xyz", "not hex")


def test_a_64_bit_index_takes_bytes_in_text_order_too() -> None:
    index = imgscout.Index()
    text = "ffd8e0c0c0e0f0f8"
    index.add_many(np.frombuffer(bytes.fromhex(text), np.uint8).reshape(1, 8), ["a"])
    index.add(bytes.fromhex(text), "b")
    index.sync()
    assert [e.hash for e in index.entries()] == [int(text, 16)] * 2
    assert len(index.query(np.frombuffer(bytes.fromhex(text), np.uint8), 0)) == 2


def test_widths_other_than_64_128_256_are_refused() -> None:
    for bits in [0, 32, 100, 512, "256", 256.0, None]:
        with pytest.raises(InvalidArgumentError) as raised:
            imgscout.Index(bits=bits)  # type: ignore[arg-type]
        assert raised.value.code == "invalid-bits"


@pytest.mark.parametrize("bits", [64, *WIDE])
def test_files_keep_their_width(tmp_path: Path, bits: int) -> None:
    index = imgscout.Index(sync_threshold=7, bits=bits)
    codes = clustered(bits, 30, seed=3) if bits > 64 else np.arange(30, dtype=np.uint64)
    index.add_many(codes, [f"t{i}" for i in range(30)])
    index.delete(4)
    path = tmp_path / "wide.idx"
    index.save(path)
    back = imgscout.Index.load(path)
    assert back.bits == bits
    assert back.entries() == index.entries()
    assert back.pending == index.pending == 30 % 7
    assert back.query(index.entries()[0].hash, bits) == index.query(index.entries()[0].hash, bits)
    raw = path.read_bytes()
    path.write_bytes(raw[:-9])
    with pytest.raises(InvalidDataError):
        imgscout.Index.load(path)


def test_radius_saturates_at_the_width() -> None:
    index = imgscout.Index(bits=256)
    index.add(bytes(32), "zero")
    index.add(b"\xff" * 32, "ones")
    index.sync()
    assert [m.distance for m in index.query(bytes(32), 10**9)] == [0, 256]
    assert [m.distance for m in index.query(bytes(32), 255)] == [0]
    # The plans cover every radius up to the width: "..., scan r51-256".
    assert index.info()["plan"].endswith("-256")


@settings(max_examples=40, deadline=None)
@given(
    rows=st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=60),
    flips=st.lists(st.integers(0, 255), max_size=40),
    radius=st.integers(0, 256),
)
def test_random_256_bit_queries_agree_with_numpy(
    rows: list[bytes], flips: list[int], radius: int
) -> None:
    codes = np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(-1, 32).copy()
    index = imgscout.Index(bits=256, sync_threshold=16)
    index.add_many(codes, [""] * len(codes))
    index.sync()
    query = codes[0].copy()
    for bit in flips:
        query[bit // 8] ^= np.uint8(1 << (bit % 8))
    got = [(m.id, m.distance) for m in index.query(query, radius)]
    assert got == brute_rows(codes, query, radius)
