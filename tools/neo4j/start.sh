#!/usr/bin/env bash
# Start a Neo4j 5.26 Community server (with APOC core, GDS and Neo4j Browser) whose data, logs, pid and
# configuration live in DIR, on 127.0.0.1 only, with Bolt and HTTP on free ports and authentication on.
#
#   bash tools/neo4j/start.sh DIR [SETTING=VALUE ...]
#
# Prints, as its last two lines, NEO4J_URI=bolt://127.0.0.1:PORT and NEO4J_PASSWORD=... (also kept in
# DIR/neo4j.env, with NEO4J_HTTP and NEO4J_USERNAME). Starting DIR again (after stop.sh, or a crash) keeps
# its data, password and, when they are still free, its ports. SETTING=VALUE pairs go into this start's
# neo4j.conf (e.g. db.memory.transaction.max=16m). Memory: $NEO4J_HEAP (default 2g), $NEO4J_PAGECACHE
# (512m) and $NEO4J_TRANSACTION_MEMORY (3g, as docker/compose.yml); $NEO4J_JAVA_OPTS adds JVM options (the
# tests' fixture passes -XX:TieredStopAtLevel=1: C1 only, a start costs 40 % less CPU, the server's own code
# runs slower, which benchmarks must not have). The first start fetches Neo4j with Maven
# (fetch.sh). Stop it with: bash tools/neo4j/stop.sh DIR
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
[ $# -ge 1 ] || { echo "usage: bash tools/neo4j/start.sh DIR [SETTING=VALUE ...]" >&2; exit 2; }
mkdir -p "$1"
DIR="$(cd "$1" && pwd)"
shift
bash "$HERE/fetch.sh"
mkdir -p "$DIR"/{conf,data,logs,run,import}
PIDFILE="$DIR/run/neo4j.pid"
ENVFILE="$DIR/neo4j.env"

if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
  echo "neo4j: already running in $DIR (pid $(cat "$PIDFILE"))" >&2
  grep -E '^NEO4J_(URI|PASSWORD)=' "$ENVFILE"
  exit 0
fi

# Ports: the previous ones when still free (a restarted server keeps its address), else new free ones.
read -r BOLT HTTP < <(python3 - "$DIR/conf/ports" <<'EOF'
import socket, sys
def free(port=0):
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds (TIME_WAIT is fine)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return None
        return probe.getsockname()[1]
try:
    old = [int(p) for p in open(sys.argv[1]).read().split()]
except (OSError, ValueError):
    old = []
ports = [free(p) for p in old] if len(old) == 2 else [None, None]
if None in ports:
    ports = []
    while len(ports) < 2:
        port = free()
        if port not in ports:
            ports.append(port)
print(*ports)
EOF
)
echo "$BOLT $HTTP" >"$DIR/conf/ports"

if [ -s "$DIR/password" ]; then
  PASSWORD="$(cat "$DIR/password")"
else
  PASSWORD="${NEO4J_PASSWORD:-$(head -c 18 /dev/urandom | base64 | tr -d '/+=')}"
  (umask 077 && printf '%s\n' "$PASSWORD" >"$DIR/password")
fi

HEAP="${NEO4J_HEAP:-2g}"
CONF="$DIR/conf/neo4j.conf"
{
  echo "# Written by tools/neo4j/start.sh; rewritten on every start."
  echo "server.default_listen_address=127.0.0.1"
  echo "server.default_advertised_address=127.0.0.1"
  echo "server.bolt.listen_address=127.0.0.1:$BOLT"
  echo "server.bolt.advertised_address=127.0.0.1:$BOLT"
  echo "server.http.listen_address=127.0.0.1:$HTTP"
  echo "server.http.advertised_address=127.0.0.1:$HTTP"
  echo "server.https.enabled=false"
  echo "dbms.security.auth_enabled=true"
  echo "server.directories.data=$DIR/data"
  echo "server.directories.logs=$DIR/logs"
  echo "server.directories.run=$DIR/run"
  echo "server.directories.import=$DIR/import"
  echo "server.directories.plugins=$HERE/target/plugins"
  echo "server.memory.heap.initial_size=512m"
  echo "server.memory.heap.max_size=$HEAP"
  echo "server.memory.pagecache.size=${NEO4J_PAGECACHE:-512m}"
  echo "db.memory.transaction.total.max=${NEO4J_TRANSACTION_MEMORY:-3g}"
  echo "dbms.security.procedures.unrestricted=apoc.*,gds.*"
  echo "browser.remote_content_hostname_whitelist=localhost,127.0.0.1"
  echo "dbms.usage_report.enabled=false"
} >"$CONF"
for setting in "$@"; do
  case "$setting" in
    *=*) grep -v "^${setting%%=*}=" "$CONF" >"$CONF.new" || true; mv "$CONF.new" "$CONF"; echo "$setting" >>"$CONF" ;;
    *) echo "neo4j: expected SETTING=VALUE, got '$setting'" >&2; exit 2 ;;
  esac
done

if [ ! -f "$DIR/data/dbms/auth.ini" ] && [ ! -d "$DIR/data/databases/system" ]; then
  bash "$HERE/admin.sh" "$DIR" dbms set-initial-password "$PASSWORD" >/dev/null
fi

# The JVM options of the distribution's launcher (bin/neo4j), without pre-touching the heap; the JVM's
# temporary files (Browser's unpacked jar) in DIR, so that a killed server leaves nothing in /tmp.
mkdir -p "$DIR/tmp"
LOG="$DIR/logs/neo4j.log"
offset=$(stat -c %s "$LOG" 2>/dev/null || echo 0)
nohup java -Xms512m -Xmx"$HEAP" -XX:+UseG1GC -XX:-OmitStackTraceInFastThrow -XX:+ExitOnOutOfMemoryError \
  -XX:+UnlockExperimentalVMOptions -XX:+TrustFinalNonStaticFields -XX:+DisableExplicitGC \
  -Djdk.nio.maxCachedBufferSize=1024 -Dio.netty.tryReflectionSetAccessible=true -Dlog4j2.disable.jmx=true \
  -Djava.io.tmpdir="$DIR/tmp" \
  --add-opens=java.base/java.nio=ALL-UNNAMED --add-opens=java.base/java.io=ALL-UNNAMED \
  --add-opens=java.base/sun.nio.ch=ALL-UNNAMED --add-opens=java.base/java.lang=ALL-UNNAMED \
  --enable-native-access=ALL-UNNAMED ${NEO4J_JAVA_OPTS:-} \
  -cp "$HERE/target/plugins/*:$HERE/target/lib/*" org.neo4j.server.CommunityEntryPoint --home-dir="$DIR" --config-dir="$DIR/conf" \
  </dev/null >>"$DIR/logs/console.log" 2>&1 &
PID=$!
echo "$PID" >"$PIDFILE"

deadline=$((SECONDS + ${NEO4J_START_TIMEOUT:-300}))
until [ -f "$LOG" ] && tail -c +$((offset + 1)) "$LOG" | grep -q ' INFO  Started\.$'; do
  if ! kill -0 "$PID" 2>/dev/null; then
    rm -f "$PIDFILE"
    reason=$( { tail -c +$((offset + 1)) "$LOG" 2>/dev/null; tail -n 20 "$DIR/logs/console.log"; } | grep -m1 -E 'ERROR|Exception|Error:' | cut -c1-400 || true)
    echo "neo4j: the server in $DIR stopped while starting: ${reason:-see $DIR/logs}" >&2
    exit 1
  fi
  if [ $SECONDS -ge $deadline ]; then
    echo "neo4j: the server in $DIR did not start within ${NEO4J_START_TIMEOUT:-300} s (see $DIR/logs); stopping it" >&2
    bash "$HERE/stop.sh" "$DIR" >&2 || true
    exit 1
  fi
  sleep 0.5
done

cat >"$ENVFILE" <<EOF
NEO4J_HTTP=http://127.0.0.1:$HTTP
NEO4J_USERNAME=neo4j
NEO4J_URI=bolt://127.0.0.1:$BOLT
NEO4J_PASSWORD=$PASSWORD
EOF
chmod 600 "$ENVFILE"
echo "neo4j: Neo4j $(sed -n 's/.*======== Neo4j \(.*\) ========.*/\1/p' "$LOG" | tail -n1) running in $DIR (pid $PID), Browser on http://127.0.0.1:$HTTP/browser/" >&2
echo "NEO4J_URI=bolt://127.0.0.1:$BOLT"
echo "NEO4J_PASSWORD=$PASSWORD"
