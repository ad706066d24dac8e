"""Lint every Cypher statement the Neo4j store sends, and every file in cypher/, with Neo4j's own front end.

No Neo4j server is needed: ``@neo4j-cypher/language-support`` (npm, installed into tools/cypher-lint by
``bash tools/install-cypher-lint.sh``) parses and checks them as Cypher 5, so a typo or a syntax that
Neo4j 5 removed or deprecated fails here. Every diagnostic but "parameter not defined" fails a test.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from netarchive.store import neo4j as neo4j_store

ROOT = Path(__file__).resolve().parents[1]
LINT_DIR = ROOT / "tools" / "cypher-lint"
CYPHER_FILES = sorted((ROOT / "cypher").glob("*.cypher"))

pytestmark = pytest.mark.skipif(
    not (LINT_DIR / "node_modules" / "@neo4j-cypher" / "language-support").is_dir() or shutil.which("node") is None,
    reason="Cypher linter not installed: run `bash tools/install-cypher-lint.sh` (needs node and npm)",
)


def lint(queries: dict[str, str]) -> dict[str, list[dict]]:
    """Diagnostics of each query, by name."""
    payload = json.dumps([{"name": name, "text": text} for name, text in queries.items()])
    done = subprocess.run(
        ["node", str(LINT_DIR / "lint.mjs")], input=payload, capture_output=True, text=True, timeout=120, check=True
    )
    return {entry["name"]: entry["diagnostics"] for entry in json.loads(done.stdout)}


def as_cypher5(text: str) -> str:
    """Pin the Cypher 5 dialect: ``CYPHER 5`` before each statement (after comments and :commands)."""
    lines, pinned = text.splitlines(), False
    for i, line in enumerate(lines):
        stripped = line.strip()
        if not pinned and stripped and not stripped.startswith(("//", ":")):
            lines[i], pinned = "CYPHER 5 " + line, True
        if stripped.endswith(";"):
            pinned = False
    return "\n".join(lines)


def failures(report: dict[str, list[dict]]) -> list[str]:
    return [f"{name}:{d['line']}: {d['severity']}: {d['message']}" for name, ds in report.items() for d in ds]


def browser_scripts() -> dict[str, str]:
    """What --browser-link puts into Browser's editor (:param lines, escaped strings, the statement)."""
    from urllib.parse import parse_qs, urlparse

    from netarchive.cli.query import browser_link_for, browser_params

    scripts = {}
    for path in CYPHER_FILES:
        if path.name != "schema.cypher":
            text, params = browser_params(path.read_text())
            link = browser_link_for(text, {**params, "run": "it's a \\ run"}, "http://localhost:7474/browser/")
            scripts[f"link:{path.name}"] = parse_qs(urlparse(link).query)["arg"][0]
    return scripts


@pytest.fixture(scope="module")
def report():
    """One run of the linter over everything (node starts once)."""
    queries = {f"store:{name}": as_cypher5(text) for name, text in neo4j_store.statements().items()}
    queries.update({f"file:{path.name}": as_cypher5(path.read_text()) for path in CYPHER_FILES})
    queries.update(browser_scripts())
    return lint(queries)


def _part(report, prefix):
    return {name: found for name, found in report.items() if name.startswith(prefix)}


def test_store_statements_are_valid_neo4j_5_cypher(report):
    statements = _part(report, "store:")
    assert len(statements) > 20
    assert failures(statements) == []


@pytest.mark.skipif(not CYPHER_FILES, reason="no cypher/*.cypher files")
def test_cypher_files_are_valid_neo4j_5_cypher(report):
    assert len(_part(report, "file:")) == len(CYPHER_FILES)
    assert failures(_part(report, "file:")) == []


def test_browser_link_scripts_are_valid(report):
    assert failures(_part(report, "link:")) == []


def test_the_linter_catches_errors_and_deprecations():
    report = lint({
        "typo": "MATCH (n:Neuron) RETRUN n",
        "undefined": "MATCH (n:Neuron) RETURN m",
        "deprecated": "CYPHER 5 MATCH (n:Neuron) RETURN id(n)",
        "parameter": "CYPHER 5 MATCH (n:Neuron {run: $run}) RETURN n.`index`",
    })
    assert report["typo"] and report["undefined"]
    assert any("deprecated" in d["message"] for d in report["deprecated"])
    assert report["parameter"] == []


def test_every_statement_is_a_module_constant():
    """The store sends no Cypher that the lint above does not see: no inline literals in the code."""
    source = Path(neo4j_store.__file__).read_text()
    body = source[source.index("class Neo4jStore"):]
    inline = re.findall(r'"(?:MATCH|CREATE|MERGE|UNWIND|CALL|RETURN)\b', body)
    assert inline == []

