#!/usr/bin/env bash
# Everything the tests need on a fresh machine: the CPU build of torch first (an unpinned torch would pull a
# multi-GB CUDA build), the project with its test extras (networkx, scikit-learn, ArcadeDB's Bolt server),
# Neo4j's Cypher linter from npm, and headless Chromium for the report test (Debian package; skipped when
# apt-get is unavailable, and the test then skips with its reason).
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet --disable-pip-version-check torch==2.13.0
python -m pip install --quiet --disable-pip-version-check -e ".[test]"
bash tools/install-cypher-lint.sh
if ! command -v chromium >/dev/null && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium) >/dev/null \
    || echo "setup: could not install chromium; the report test will skip" >&2
fi
