#!/usr/bin/env bash
# Everything the tests need on a fresh machine: the CPU build of torch first (an unpinned torch would pull a
# multi-GB CUDA build), the project with its test extras (networkx, scikit-learn), Neo4j's Cypher linter and
# Playwright's driver from npm, the Neo4j 5 server of the tests (tools/neo4j/fetch.sh: Maven fetches it from
# Maven Central once; without Java or Maven the Neo4j tests skip with that reason), and headless Chromium
# for the report and Browser tests (Debian package; skipped when apt-get is unavailable, and the tests then
# skip with their reason).
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet --disable-pip-version-check torch==2.13.0
python -m pip install --quiet --disable-pip-version-check -e ".[test]"
bash tools/install-cypher-lint.sh
(cd tools/browser-test && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-audit --no-fund --silent --no-package-lock) \
  || echo "setup: could not install playwright-core; the Browser test will skip" >&2
bash tools/neo4j/fetch.sh || echo "setup: could not fetch Neo4j (above); the Neo4j tests will skip" >&2
if ! command -v chromium >/dev/null && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium) >/dev/null \
    || echo "setup: could not install chromium; the report test will skip" >&2
fi
