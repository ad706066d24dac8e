#!/usr/bin/env bash
# Install Neo4j's Cypher front end (npm @neo4j-cypher/language-support) into tools/cypher-lint/node_modules,
# for tests/test_cypher_lint.py. Idempotent: does nothing when the pinned version is already there.
# Needs node >= 18 and npm. Usage: bash tools/install-cypher-lint.sh
set -euo pipefail
VERSION="2.0.0-next.38"
HERE="$(cd "$(dirname "$0")" && pwd)/cypher-lint"
PKG="$HERE/node_modules/@neo4j-cypher/language-support/package.json"
if [ -f "$PKG" ] && grep -q "\"version\": \"$VERSION\"" "$PKG"; then
  echo "cypher lint: @neo4j-cypher/language-support $VERSION already installed in $HERE"
  exit 0
fi
command -v npm >/dev/null || { echo "cypher lint: npm not found (install node >= 18)" >&2; exit 1; }
cd "$HERE"
npm install --no-audit --no-fund --silent --no-package-lock >&2
echo "cypher lint: installed @neo4j-cypher/language-support $VERSION in $HERE"
