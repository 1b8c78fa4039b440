"""docs/spec.md's example tables, checked row by row on every face they name: the module's
commands, ``Index``, ``RedisIndex``, ``ShardedIndex`` and the CLI's argument parser."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

import imgscout
from imgscout import _core
from imgscout.cli import build_parser

SPEC = Path(__file__).resolve().parent.parent / "docs" / "spec.md"


def examples(title: str) -> list[list[str]]:
    """The rows of the table under ``*Examples: title*``, cells without their backquotes."""
    lines = SPEC.read_text(encoding="utf-8").splitlines()
    start = lines.index(next(line for line in lines if line.startswith(f"*Examples: {title}*")))
    rows = []
    for line in lines[start + 1 :]:
        if not line.strip():
            if rows:
                break
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if set(cells[0]) <= {"-"}:
            continue
        rows.append([re.sub(r"^`(.*)`$", r"\1", cell) for cell in cells])
    assert len(rows) > 2, f"no examples under {title!r}"
    return rows[1:]  # without the header


HASH_TEXT = examples("hash text")
RADIUS_TEXT = examples("radius text")
ID_TEXT = examples("id text")
ERRORS = examples("errors")


def expected(cell: str) -> int | str:
    return cell if cell.startswith("invalid") else int(cell)


# --- faces that take a hash as text ------------------------------------------------------------


@pytest.fixture
def redis_client(redis_server: Any) -> Iterator[redis.Redis]:
    client = redis.Redis(port=redis_server.port)
    client.flushall()
    yield client
    client.close()


def module_hash(client: redis.Redis, text: str) -> int | str:
    try:
        client.execute_command("imgscout.add", "spec", text, "t")
    except redis.ResponseError as error:
        code = _core.error_for_message(str(error).removeprefix("ERR "))
        return code.code if code is not None else str(error)
    (_, value, _, _), *_ = client.execute_command("imgscout.entries", "spec")
    client.delete("spec")
    return int(value)


def python_hash(index: Any, text: str) -> int | str:
    try:
        index.add(text, "t")
    except imgscout.ImgscoutError as error:
        return error.code  # type: ignore[attr-defined,no-any-return]
    (entry,) = index.entries()
    return entry.hash


@pytest.mark.parametrize(("text", "hash_or_code"), HASH_TEXT, ids=[row[0] for row in HASH_TEXT])
def test_hash_text_on_every_face(redis_client: redis.Redis, text: str, hash_or_code: str) -> None:
    want = expected(hash_or_code)
    assert _core.parse_hash_text(text) == (want if isinstance(want, int) else None)
    assert module_hash(redis_client, text) == want
    faces: list[Callable[[], Any]] = [
        imgscout.Index,
        lambda: imgscout.RedisIndex(redis_client, "spec-client"),
        lambda: imgscout.ShardedIndex(redis_client, "spec-sharded", shards=2),
    ]
    for make in faces:
        redis_client.flushall()
        assert python_hash(make(), text) == want, make


def test_every_hash_form_of_python_names_the_same_hash() -> None:
    hexdigest = "ffd8e0c0c0e0f0f8"
    value = int(hexdigest, 16)
    imagehash = pytest.importorskip("imagehash")
    forms = [
        value,
        str(value),
        hexdigest,
        hexdigest.upper(),
        f"0x{hexdigest}",
        imagehash.hex_to_hash(hexdigest),
    ]
    for form in forms:
        assert imgscout.parse_hash(form) == value, form
    assert imgscout.format_hash(value) == hexdigest


# --- radius and id text: the module and the CLI --------------------------------------------------


def module_radius(client: redis.Redis, text: str) -> int | str:
    """The radius the module reads from ``text``: entries at distances 0..64 from hash 0,
    so a query answers radius + 1 rows."""
    if not client.exists("radii"):
        client.execute_command(
            "imgscout.madd", "radii", *[x for d in range(65) for x in ((1 << d) - 1, f"d{d}")]
        )
        client.execute_command("imgscout.sync", "radii")
    try:
        rows = client.execute_command("imgscout.query", "radii", 0, text)
    except redis.ResponseError as error:
        return _core.error_for_message(str(error).removeprefix("ERR ")).code  # type: ignore[union-attr]
    return len(rows) - 1


def cli_argument(option: list[str]) -> Any:
    """What the CLI's parser makes of an argument, or the error code it reports."""
    try:
        return build_parser().parse_args(option)
    except SystemExit:
        return None


@pytest.mark.parametrize(("text", "radius"), RADIUS_TEXT, ids=[row[0] for row in RADIUS_TEXT])
def test_radius_text_on_the_module_and_the_cli(
    redis_client: redis.Redis, text: str, radius: str, capsys: pytest.CaptureFixture[str]
) -> None:
    want = expected(radius)
    assert module_radius(redis_client, text) == want
    parsed = cli_argument(["query", "--radius", text, "photo.jpg"])
    if isinstance(want, int):
        assert parsed.radius == want
    else:
        assert parsed is None
        assert "invalid radius" in capsys.readouterr().err


@pytest.mark.parametrize(("text", "entry_id"), ID_TEXT, ids=[row[0] for row in ID_TEXT])
def test_id_text_on_the_module_and_the_cli(
    redis_client: redis.Redis, text: str, entry_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    want = expected(entry_id)
    try:
        reply = redis_client.execute_command("imgscout.lookup", "ids", text)
        assert reply is None
        got: int | str = int(text)
    except redis.ResponseError as error:
        got = _core.error_for_message(str(error).removeprefix("ERR ")).code  # type: ignore[union-attr]
    assert got == want
    parsed = cli_argument(["lookup", text])
    if isinstance(want, int):
        assert parsed.id == want
    else:
        assert parsed is None
        assert "invalid id" in capsys.readouterr().err


# --- errors -------------------------------------------------------------------------------------


def test_the_error_table_is_the_cores() -> None:
    assert [(code, stem) for code, stem, *_ in ERRORS] == _core.error_codes()
    for code, stem, exception, *_ in ERRORS:
        class_name = exception.split()[0].strip("`")
        if code == "io":
            continue
        error = _core.error(code, 5 if code in {"no-such-id", "too-many-rows"} else None)
        assert type(error).__name__ == class_name
        assert getattr(imgscout, class_name) is type(error)
        assert isinstance(error, imgscout.ImgscoutError)
        builtin = re.search(r"\(`(\w+)`", exception)
        assert builtin is not None
        assert isinstance(error, {"ValueError": ValueError, "KeyError": KeyError}[builtin[1]])
        assert error.code == code
        if code == "no-such-id":
            assert error.args == (5,)
        else:
            assert str(error).startswith(stem)


#: For each code a face can raise from a call: the module command, and the Python call on an
#: index ``ix`` holding entry 1, that raise it.
TRIGGERS: dict[str, tuple[tuple[Any, ...], Callable[[Any], Any]]] = {
    "invalid-hash": (("imgscout.query", "k", "zz", 1), lambda ix: ix.query("zz", 1)),
    "invalid-radius": (("imgscout.query", "k", 1, "-1"), lambda ix: ix.query(1, -1)),
    "invalid-id": (("imgscout.lookup", "k", "-1"), lambda ix: ix.lookup(-1)),
    "invalid-k": (("imgscout.knn", "k", 1, "-1"), lambda ix: ix.knn(1, -1)),
    "invalid-limit": (("imgscout.query", "k", 1, 1, "LIMIT", "x"), lambda ix: ix.query(1, 1, -1)),
    "invalid-count": (
        ("imgscout.pairs", "k", 1, "CURSOR", "0", "COUNT", "0"),
        lambda ix: list(ix.iter_pairs(1, 0)),
    ),
    "invalid-sync-threshold": (
        ("imgscout.config", "k", "SYNC_THRESHOLD", "0"),
        lambda ix: ix.set_sync_threshold(0),
    ),
    "no-such-id": (("imgscout.del", "k", 99), lambda ix: ix.delete(99)),
    "id-exists": (("imgscout.add", "k", 1, "t", 1), lambda ix: ix.add(1, "t", 1)),
}


@pytest.mark.parametrize("code", sorted(TRIGGERS))
def test_each_error_is_the_same_on_every_face(redis_client: redis.Redis, code: str) -> None:
    command, call = TRIGGERS[code]
    stem = dict(_core.error_codes())[code]
    redis_client.execute_command("imgscout.add", "k", 1, "t", 1)
    with pytest.raises(redis.ResponseError, match=f"^{re.escape(stem)}"):
        redis_client.execute_command(*command)
    faces = {
        "Index": imgscout.Index(),
        "RedisIndex": imgscout.RedisIndex(redis_client, "face"),
        "ShardedIndex": imgscout.ShardedIndex(redis_client, "sharded", shards=2),
    }
    for name, index in faces.items():
        index.add(1, "t", 1)
        with pytest.raises(imgscout.ImgscoutError) as caught:
            call(index)
        assert caught.value.code == code, name  # type: ignore[attr-defined]


def test_syntax_and_cursor_errors_of_the_module(redis_client: redis.Redis) -> None:
    for command, code in [
        (("imgscout.query", "k", 1, 1, "LIMITS", 3), "syntax"),
        (("imgscout.pairs", "k", 1, "COUNT", 3), "syntax"),
        (("imgscout.pairs", "k", 1, "CURSOR", "nonsense"), "invalid-cursor"),
    ]:
        with pytest.raises(redis.ResponseError) as caught:
            redis_client.execute_command(*command)
        found = _core.error_for_message(str(caught.value).removeprefix("ERR "))
        assert found is not None and found.code == code, command
