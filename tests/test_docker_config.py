"""The Docker image's configuration, tested without a Docker engine: the Dockerfile builds the
module as CI does and puts it where docker/redis.conf loads it from, and redis-server started
with the image's own command line on the shipped redis.conf (only the module path, data
directory, port and bind address substituted) loads the module, persists the indexes and
passes the image's health check."""

from __future__ import annotations

import json
import random
import re
import shlex
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.support.commands import info
from tests.support.reference import ReferenceIndex
from tests.support.server import REPO_ROOT, free_port, server_binary

DOCKERFILE = REPO_ROOT / "Dockerfile"
REDIS_CONF = REPO_ROOT / "docker" / "redis.conf"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"
CI_BUILD_SCRIPT = REPO_ROOT / "scripts" / "test.sh"
IMAGE_MODULE_PATH = "/usr/lib/redis/modules/libimgscout.so"
IMAGE_DATA_DIR = "/data"


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = DOCKERFILE.read_text()
    logical: list[str] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    assert not pending, "Dockerfile ends inside a continued line"
    instructions = []
    for line in logical:
        name, _, arguments = line.partition(" ")
        instructions.append((name.upper(), arguments.strip()))
    return instructions


def stages() -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    for instruction in dockerfile_instructions():
        if instruction[0] == "FROM":
            found.append([])
        if found:
            found[-1].append(instruction)
    return found


def only(stage: list[tuple[str, str]], name: str) -> str:
    values = [arguments for instruction, arguments in stage if instruction == name]
    assert len(values) == 1, f"expected one {name} in the stage, found {values}"
    return values[0]


def image_command() -> list[str]:
    """The final stage's CMD (exec form)."""
    return list(json.loads(only(stages()[-1], "CMD")))


def image_healthcheck() -> str:
    """The shell command of the final stage's HEALTHCHECK."""
    arguments = only(stages()[-1], "HEALTHCHECK")
    _, marker, command = arguments.partition("CMD ")
    assert marker, f"HEALTHCHECK without CMD: {arguments}"
    return command.strip()


def conf_path_in_image() -> str:
    for instruction, arguments in stages()[-1]:
        if instruction == "COPY" and arguments.split()[0] == "docker/redis.conf":
            return arguments.split()[-1]
    raise AssertionError("the final stage does not copy docker/redis.conf")


def cargo_build(command_text: str) -> list[str]:
    match = re.search(r"cargo build[^\n&;|]*", command_text)
    assert match, f"no cargo build in {command_text!r}"
    return shlex.split(match.group(0))


# -- the Dockerfile ------------------------------------------------------------------------------


def test_dockerfile_builds_the_module_with_locked_dependencies_as_ci_does() -> None:
    build, final = stages()[0], stages()[-1]
    assert len(stages()) == 2, "multi-stage: a build stage and the final image"
    assert only(build, "FROM").startswith("rust:") and only(build, "FROM").endswith(" AS build")
    runs = [arguments for instruction, arguments in build if instruction == "RUN"]
    build_command = cargo_build(next(run for run in runs if "cargo build" in run))
    assert build_command == ["cargo", "build", "--release", "--locked", "-p", "imgscout-redis"]
    # The CI script builds the module with exactly the same command.
    assert cargo_build(CI_BUILD_SCRIPT.read_text()) == build_command
    apt_run = next(arguments for instruction, arguments in build if "apt-get install" in arguments)
    assert "libclang-dev" in apt_run.split()
    assert only(final, "FROM").startswith("redis:")


def test_final_image_puts_the_module_where_redis_conf_loads_it() -> None:
    final = stages()[-1]
    copies = [arguments.split() for instruction, arguments in final if instruction == "COPY"]
    assert ["--from=build", "/src/target/release/libimgscout.so", IMAGE_MODULE_PATH] in copies
    loadmodule = [
        line.split()[1]
        for line in REDIS_CONF.read_text().splitlines()
        if line.startswith("loadmodule ")
    ]
    assert loadmodule == [IMAGE_MODULE_PATH]
    assert only(final, "VOLUME") == IMAGE_DATA_DIR
    assert only(final, "EXPOSE") == "6379"
    assert image_command() == ["redis-server", conf_path_in_image()]


def test_build_context_keeps_what_the_build_copies() -> None:
    """Every path the Dockerfile copies from the context survives .dockerignore."""
    ignored = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copied = [
        source
        for stage in stages()
        for instruction, arguments in stage
        if instruction == "COPY" and not arguments.startswith("--from")
        for source in arguments.split()[:-1]
    ]
    assert copied, "nothing copied from the context"
    for source in copied:
        assert (REPO_ROOT / source).exists(), source
        first_part = source.rstrip("/").split("/")[0]
        assert first_part not in ignored and source not in ignored, source
    assert "target" in ignored and ".git" in ignored


# -- redis-server on the shipped redis.conf ----------------------------------------------------


class ConfiguredServer:
    """redis-server run with the image's CMD, on a copy of docker/redis.conf whose module path
    and data directory point at this machine's; port and bind go on the command line."""

    def __init__(self, module: Path, directory: Path, load_module: bool = True) -> None:
        self.directory = directory
        self.port = free_port()
        text = REDIS_CONF.read_text()
        assert text.count(IMAGE_MODULE_PATH) == 1 and text.count(f"dir {IMAGE_DATA_DIR}\n") == 1
        text = text.replace(IMAGE_MODULE_PATH, str(module))
        if not load_module:
            text = text.replace(f"loadmodule {module}", "")
        text = text.replace(f"dir {IMAGE_DATA_DIR}\n", f"dir {directory}\n")
        self.conf = directory.parent / f"{directory.name}-redis.conf"
        self.conf.write_text(text)
        command = image_command()
        assert command[1] == conf_path_in_image()
        # Loopback only in tests; the image itself listens on every interface.
        self.command = [
            # The image runs redis-server; the tests run the server they were asked to test.
            server_binary(),
            str(self.conf),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
        ]
        self.log_path = directory.parent / f"{directory.name}-redis.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ConfiguredServer:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited:\n{self.log_path.read_text()}")
            try:
                with self.client() as probe:
                    probe.ping()
                    return self
            except (redis.ConnectionError, redis.BusyLoadingError):
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start:\n{self.log_path.read_text()}")

    def client(self, **kwargs: object) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, **kwargs)  # type: ignore[arg-type]

    def stop(self, kill: bool = False) -> None:
        if self.process is not None and self.process.poll() is None:
            if kill:
                self.process.kill()
            else:
                self.process.terminate()
            self.process.wait(timeout=30)
        self.process = None

    def healthcheck(self) -> int:
        """The image's HEALTHCHECK command's exit status against this server."""
        command = image_healthcheck().replace("redis-cli", f"redis-cli -p {self.port}")
        return subprocess.run(["sh", "-c", command], timeout=30, check=False).returncode


@pytest.fixture
def configured_server(module_path: Path, tmp_path: Path) -> Iterator[ConfiguredServer]:
    data = tmp_path / "data"
    data.mkdir()
    server = ConfiguredServer(module_path, data).start()
    yield server
    server.stop()


def test_shipped_config_loads_the_module_and_persists_to_the_data_dir(
    configured_server: ConfiguredServer,
) -> None:
    with configured_server.client(decode_responses=True) as client:
        modules = client.execute_command("MODULE", "LIST")
        names = [module["name"] if isinstance(module, dict) else module[1] for module in modules]
        assert "imgscout" in names
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        assert client.config_get("appendfsync") == {"appendfsync": "everysec"}
        assert client.config_get("dir") == {"dir": str(configured_server.directory)}
        assert client.config_get("save")["save"] == "3600 1 300 100 60 10000"
    assert configured_server.healthcheck() == 0


def fill(client: redis.Redis, model: ReferenceIndex, rng: random.Random) -> list[int]:
    hashes = [rng.getrandbits(64) for _ in range(300)]
    flat = [part for h in hashes for part in (h, f"photo-{h:x}")]
    assert client.execute_command("imgscout.madd", "{photos}", *flat) == model.add_many(
        hashes, [f"photo-{h:x}" for h in hashes]
    )
    client.execute_command("imgscout.sync", "{photos}")
    model.sync()
    # A few more left pending: the queue must survive a restart too.
    for h in hashes[:3]:
        assert client.execute_command("imgscout.add", "{photos}", h ^ 1, "late") == model.add(
            h ^ 1, "late"
        )
    return hashes


def assert_same_answers(client: redis.Redis, model: ReferenceIndex, probes: list[int]) -> None:
    assert client.execute_command("imgscout.size", "{photos}") == model.size()
    for probe in probes:
        for radius in (0, 6, 20):
            got = client.execute_command("imgscout.query", "{photos}", probe, radius)
            assert [(t.decode(), i, d) for t, i, d in got] == model.query(probe, radius)
    for entry_id in [*model.pending, 1, 150]:
        title = client.execute_command("imgscout.lookup", "{photos}", entry_id)
        assert title.decode() == model.lookup(entry_id)


@pytest.mark.parametrize("stop", ["shutdown", "crash"])
def test_indexes_survive_a_restart_on_the_shipped_config(
    configured_server: ConfiguredServer, stop: str
) -> None:
    """A clean stop (SIGTERM) and a crash (SIGKILL right after the writes: the AOF was
    written before each reply) both come back with the same index, pending queue included."""
    rng = random.Random(stop)
    model = ReferenceIndex()
    with configured_server.client() as client:
        hashes = fill(client, model, rng)
        assert_same_answers(client, model, hashes[:5])
    configured_server.stop(kill=stop == "crash")
    assert list(configured_server.directory.glob("appendonlydir/*.aof")), "the AOF is in /data"
    configured_server.start()
    with configured_server.client() as client:
        assert_same_answers(client, model, hashes[:5])
        assert info(client, "{photos}")["pending"] == len(model.pending) > 0
    assert configured_server.healthcheck() == 0


@pytest.mark.server
def test_healthcheck_fails_without_the_module(module_path: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    server = ConfiguredServer(module_path, data, load_module=False).start()
    try:
        assert server.healthcheck() != 0
    finally:
        server.stop()
    assert server.healthcheck() != 0, "and without a server"
