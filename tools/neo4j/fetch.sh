#!/usr/bin/env bash
# Fetch Neo4j 5.26 Community, APOC core, GDS (open edition) and Neo4j Browser from Maven Central with Maven
# (pom.xml beside this file) into tools/neo4j/target/{lib,plugins}. Idempotent: does nothing when the jars
# of the current pom.xml are there. The artifacts stay cached in ~/.m2, so a fresh clone fetches them in
# seconds after the first time. Needs Java 17 and Maven. Usage: bash tools/neo4j/fetch.sh
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
TARGET="$HERE/target"
STAMP="$TARGET/fetched"
command -v java >/dev/null || { echo "neo4j: java not found (Neo4j 5.26 needs Java 17)" >&2; exit 1; }
command -v mvn >/dev/null || { echo "neo4j: mvn not found (Maven fetches Neo4j from Maven Central)" >&2; exit 1; }
if [ -f "$STAMP" ] && [ "$STAMP" -nt "$HERE/pom.xml" ]; then
  exit 0
fi
rm -rf "$TARGET"
start=$SECONDS
if ! mvn -B -q -f "$HERE/pom.xml" package >"$HERE/fetch.log" 2>&1; then
  echo "neo4j: Maven could not fetch Neo4j from Maven Central: $(grep -m1 'ERROR' "$HERE/fetch.log" | cut -c1-300) (see $HERE/fetch.log)" >&2
  exit 1
fi
rm -f "$HERE/fetch.log"
touch "$STAMP"
echo "neo4j: fetched $(ls "$TARGET/lib" | wc -l) server and $(ls "$TARGET/plugins" | wc -l) plugin jars in $((SECONDS - start)) s" >&2
