"""The Neo4j 5 server of a test session: the pytest fixture ``neo4j_server`` (loaded by tests/conftest.py).

When a collected test needs it, one server for the whole session starts with ``bash tools/neo4j/start.sh``
at collection, in the background while the tests before the first Neo4j test run
(Neo4j 5.26 Community with APOC core and GDS, fetched from Maven Central by Maven; 127.0.0.1 only,
authentication on; JVM options :data:`JAVA_OPTS`) in a temporary directory, and the session kills it at the end. It yields a
:class:`Neo4jServer`: ``uri``, ``user``, ``password``, ``database``, ``http``, ``store(**options)`` and
``cli_args`` for the CLI's global options (and the fixture ``neo4j_store``: a store on it), and ``kill()``, ``stop()``, ``start(*settings)`` for tests of
crashes and restarts (the address stays the same; mark such tests ``@pytest.mark.neo4j_restart``: they run
last). Tests only touch runs named ``test-…`` (see
:func:`run_name`) and delete them afterwards.

When the server cannot be fetched or started (no Java, no Maven Central) every test using it skips with
the reason; with ``NETARCHIVE_REQUIRE_NEO4J=1`` (set by .ci/run when Maven could fetch Neo4j) that is a
failure instead. ``NETARCHIVE_NEO4J_URI`` (with ``NEO4J_USERNAME``/``NEO4J_PASSWORD``/``NEO4J_DATABASE``)
runs the same tests against another server, e.g. the one of docker/compose.yml; the tests that kill or
restart the server then skip.
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
START = ROOT / "tools" / "neo4j" / "start.sh"
STOP = ROOT / "tools" / "neo4j" / "stop.sh"
REQUIRE = "NETARCHIVE_REQUIRE_NEO4J"
RESTARTS = "neo4j_restart"


def run_name() -> str:
    """A fresh run name that the tests' clean-up recognises."""
    return f"test-{uuid.uuid4().hex[:8]}"


@dataclass
class Neo4jServer:
    uri: str
    user: str
    password: str
    database: str = "neo4j"
    http: str | None = None
    directory: Path | None = None
    """The server's DIR of tools/neo4j/start.sh; None for a server the tests did not start."""
    settings: tuple[str, ...] = field(default=())

    @property
    def cli_args(self) -> list[str]:
        return ["--store", self.uri, "--user", self.user, "--password", self.password, "--database", self.database]

    def store(self, **options):
        from netarchive.store.neo4j import Neo4jStore

        return Neo4jStore(self.uri, user=self.user, password=self.password, database=self.database, **options)

    @property
    def pid(self) -> int:
        self._managed()
        return int((self.directory / "run" / "neo4j.pid").read_text())

    @property
    def running(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except (OSError, ValueError):
            return False
        return True

    def kill(self) -> None:
        """``kill -9`` of the server's JVM; returns once it is gone."""
        pid = self.pid
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        raise RuntimeError(f"the Neo4j JVM {pid} survived SIGKILL")

    def stop(self) -> None:
        self._managed()
        subprocess.run(["bash", str(STOP), str(self.directory)], check=True, capture_output=True, timeout=180)

    def start(self, *settings: str) -> None:
        """Start the server again (same data, password and address), with extra neo4j.conf ``settings``."""
        self._managed()
        uri, password = _start(self.directory, settings)
        if uri != self.uri or password != self.password:
            raise RuntimeError(f"the restarted server moved from {self.uri} to {uri}")
        self.settings = tuple(settings)

    def _managed(self) -> None:
        if self.directory is None:
            pytest.skip("kills or restarts the server: needs the one tools/neo4j/start.sh runs, not NETARCHIVE_NEO4J_URI")


class ServerUnavailable(RuntimeError):
    pass


JAVA_OPTS = "-XX:TieredStopAtLevel=1"
"""JVM options of the tests' server (``$NEO4J_JAVA_OPTS`` of start.sh, unless set): C1 only, so that a start
costs about 40 % less CPU (21 instead of 34 CPU seconds here); the tests' data is too small for C2's code to
pay for its compilation."""


def _start(directory: Path, settings=()) -> tuple[str, str]:
    return _started(_begin_start(directory, settings))


def _begin_start(directory: Path, settings=()) -> subprocess.Popen | ServerUnavailable:
    """tools/neo4j/start.sh under way (or why it could not be run)."""
    try:
        return subprocess.Popen(
            ["bash", str(START), str(directory), *settings], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, stdin=subprocess.DEVNULL, env={"NEO4J_JAVA_OPTS": JAVA_OPTS, **os.environ},
        )
    except OSError as error:
        return ServerUnavailable(f"tools/neo4j/start.sh did not run: {error}")


def _started(process: subprocess.Popen | ServerUnavailable) -> tuple[str, str]:
    """The (uri, password) that start.sh printed once it is done."""
    if isinstance(process, ServerUnavailable):
        raise process
    try:
        stdout, stderr = process.communicate(timeout=900)
    except subprocess.TimeoutExpired as error:
        process.kill()
        process.communicate()
        raise ServerUnavailable(f"tools/neo4j/start.sh did not finish: {error}") from None
    lines = stdout.strip().splitlines()
    if process.returncode != 0 or len(lines) < 2:
        reason = (stderr.strip().splitlines() or ["no output"])[-1]
        raise ServerUnavailable(reason)
    values = dict(line.split("=", 1) for line in lines[-2:])
    return values["NEO4J_URI"], values["NEO4J_PASSWORD"]


def unavailable(reason: str):
    """Skip (or, with NETARCHIVE_REQUIRE_NEO4J=1, fail) a test that needs the Neo4j server."""
    message = f"no Neo4j server: {reason}"
    if os.environ.get(REQUIRE) == "1":
        pytest.fail(f"{message} ({REQUIRE}=1: the server must be available)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def _neo4j_session(tmp_path_factory):
    """(server, None) or (None, reason): started once, even when it cannot start."""
    uri = os.environ.get("NETARCHIVE_NEO4J_URI")
    if uri:
        yield Neo4jServer(uri, os.environ.get("NEO4J_USERNAME", "neo4j"), os.environ.get("NEO4J_PASSWORD", ""),
                          os.environ.get("NEO4J_DATABASE", "neo4j")), None
        return
    directory, starting = _early_start.pop("start", None) or _begin_session_start(tmp_path_factory)
    try:
        uri, password = _started(starting)
    except ServerUnavailable as error:
        yield None, str(error)
        return
    env = dict(line.split("=", 1) for line in (directory / "neo4j.env").read_text().split())
    server = Neo4jServer(uri, "neo4j", password, http=env.get("NEO4J_HTTP"), directory=directory)
    try:
        yield server, None
    finally:
        if server.running:
            server.kill()  # its data is thrown away: a clean shutdown (stop.sh) would only cost ~10 s


def pytest_configure(config):
    config.addinivalue_line("markers", f"{RESTARTS}: kills or restarts the session's Neo4j server (run last)")


_early_start: dict = {}
"""The session server's directory and start.sh under way, begun at collection (see below)."""


def _begin_session_start(tmp_path_factory) -> tuple[Path, subprocess.Popen | ServerUnavailable]:
    directory = tmp_path_factory.mktemp("neo4j")
    return directory, _begin_start(directory)


@pytest.hookimpl(trylast=True)  # after -k/-m deselected theirs
def pytest_collection_modifyitems(config, items):
    """Tests that kill or restart the server run after all others (in their order), so that the slow
    restarts happen once each and a test that reconfigured the server needs no restart after it. When a
    collected test needs the session's server, it starts now, in the background, while the tests before
    the first that needs it run (a start takes 20-60 s)."""
    items[:] = sorted(items, key=lambda item: item.get_closest_marker(RESTARTS) is not None)
    wanted = any("_neo4j_session" in item.fixturenames for item in items)
    if wanted and not config.option.collectonly and not os.environ.get("NETARCHIVE_NEO4J_URI"):
        _early_start["start"] = _begin_session_start(config._tmp_path_factory)


def pytest_sessionfinish(session):
    """A server started at collection that no test asked for (all deselected, or ``-x`` stopped first)."""
    early = _early_start.pop("start", None)
    if early is not None and not isinstance(early[1], ServerUnavailable):
        early[1].communicate()
        pid = early[0] / "run" / "neo4j.pid"
        if pid.exists():
            with contextlib.suppress(OSError, ValueError):
                os.kill(int(pid.read_text()), signal.SIGKILL)


@pytest.fixture
def neo4j_server(_neo4j_session):
    """The session's Neo4j server (see the module docstring); skips or fails when there is none. A server
    that an earlier test left killed or with extra settings is restarted as configured first."""
    server, reason = _neo4j_session
    if server is None:
        unavailable(reason)
    if server.directory is not None and (server.settings or not server.running):
        server.stop()
        server.start()
    return server


@pytest.fixture
def neo4j_store(neo4j_server):
    """A Neo4jStore on the session's server; the ``test-…`` runs are deleted afterwards."""
    opened = neo4j_server.store()
    yield opened
    delete_test_runs(opened)
    opened.close()


def delete_test_runs(store) -> None:
    """Remove every ``test-…`` run, incomplete checkpoints included."""
    for row in store.cypher("MATCH (c:Checkpoint) WHERE c.run STARTS WITH 'test-' RETURN DISTINCT c.run AS run").itertuples():
        levels = store.cypher("MATCH (c:Checkpoint {run: $run}) RETURN c.level AS level", {"run": row.run})["level"]
        store._delete_batched(row.run, [int(level) for level in levels], lambda _: None)
