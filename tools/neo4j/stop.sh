#!/usr/bin/env bash
# Stop the Neo4j server that tools/neo4j/start.sh started in DIR, and wait until its JVM is gone (a clean
# shutdown checkpoints the databases; after NEO4J_STOP_TIMEOUT seconds, default 120, it is killed).
#   bash tools/neo4j/stop.sh DIR
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: bash tools/neo4j/stop.sh DIR" >&2; exit 2; }
PIDFILE="$1/run/neo4j.pid"
if [ ! -f "$PIDFILE" ] || ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
  rm -f "$PIDFILE"
  echo "neo4j: no server running in $1" >&2
  exit 0
fi
PID="$(cat "$PIDFILE")"
kill -TERM "$PID"
deadline=$((SECONDS + ${NEO4J_STOP_TIMEOUT:-120}))
while kill -0 "$PID" 2>/dev/null; do
  if [ $SECONDS -ge $deadline ]; then
    echo "neo4j: the server in $1 (pid $PID) did not stop within ${NEO4J_STOP_TIMEOUT:-120} s; killing it" >&2
    kill -KILL "$PID" 2>/dev/null || true
  fi
  sleep 0.2
done
rm -f "$PIDFILE"
echo "neo4j: stopped the server in $1" >&2
