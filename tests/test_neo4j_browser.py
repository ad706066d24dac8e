"""Neo4j Browser, served by the test server (Browser 5.24.0 from Maven Central), in headless Chromium:
connect, `:play` the guide that `netarchive browser-guide` serves, run its first query and find the
archived run in the result pane. With NETARCHIVE_SCREENSHOTS=1 its screenshot replaces
docs/img/neo4j_browser_guide.png (the one docs/neo4j.md shows).

Drives Debian's /usr/bin/chromium with playwright-core (tools/browser-test, installed by
tools/setup-tests.sh; it downloads no browser).
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.neo4j_server import delete_test_runs, run_name
from tests.test_neo4j_store import sample

ROOT = Path(__file__).resolve().parents[1]
DRIVER = ROOT / "tools" / "browser-test"
SCREENSHOT = ROOT / "docs" / "img" / "neo4j_browser_guide.png"

pytestmark = pytest.mark.skipif(
    not Path("/usr/bin/chromium").exists() or shutil.which("node") is None
    or not (DRIVER / "node_modules" / "playwright-core").is_dir(),
    reason="needs /usr/bin/chromium, node and playwright-core (bash tools/setup-tests.sh)",
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def guide():
    """`netarchive browser-guide` serving on a free port; its URL."""
    port = _free_port()
    process = subprocess.Popen([sys.executable, "-m", "netarchive", "browser-guide", "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=os.environ.copy())
    try:
        assert ":play" in process.stdout.readline()
        yield f"http://localhost:{port}/netarchive.html"  # as the command prints it; Browser allows localhost
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_browser_plays_the_guide_and_runs_its_query(neo4j_server, guide, tmp_path):
    store = neo4j_server.store()
    run = run_name()
    store.write(sample(run, level=2))
    screenshot = tmp_path / "browser.png"
    try:
        done = subprocess.run(
            ["node", str(DRIVER / "browser_guide.mjs"), json.dumps({
                "http": neo4j_server.http, "user": neo4j_server.user, "password": neo4j_server.password,
                "guide": guide, "text": run, "screenshot": str(screenshot),
            })],
            capture_output=True, text=True, timeout=600,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert json.loads(done.stdout.strip().splitlines()[-1]) == {"ok": True}
    finally:
        delete_test_runs(store)
        store.close()
    assert screenshot.stat().st_size > 10_000
    if os.environ.get("NETARCHIVE_SCREENSHOTS") == "1":
        shutil.copy(screenshot, SCREENSHOT)
