#!/usr/bin/env bash
# neo4j-admin of the server in DIR (tools/neo4j/start.sh), e.g. an offline bulk import into its stopped
# database of the files `netarchive export --neo4j-import` wrote:
#   bash tools/neo4j/stop.sh DIR
#   bash tools/neo4j/admin.sh DIR database import full neo4j --overwrite-destination --array-delimiter=';' ...
#   bash tools/neo4j/start.sh DIR && netarchive --store "$NEO4J_URI" init
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
[ $# -ge 2 ] || { echo "usage: bash tools/neo4j/admin.sh DIR COMMAND..." >&2; exit 2; }
DIR="$(cd "$1" && pwd)"
shift
bash "$HERE/fetch.sh"
NEO4J_HOME="$DIR" NEO4J_CONF="$DIR/conf" exec java -Xmx"${NEO4J_ADMIN_HEAP:-1g}" \
  -cp "$HERE/target/plugins/*:$HERE/target/lib/*" org.neo4j.cli.AdminTool "$@"
