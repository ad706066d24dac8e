"""Neo4j store benchmark: the client side of an ingest, then a real Neo4j 5.26 server, against LadybugDB.

    python bench/bench_neo4j.py                  # starts its own server (tools/neo4j/start.sh), stops it after
    python bench/bench_neo4j.py --client         # the client side only (no server)
    NETARCHIVE_NEO4J_URI=bolt://... NEO4J_PASSWORD=... python bench/bench_neo4j.py --no-import

All on the dense 3072-1024-1024-1024-1000 checkpoint (6.27 M synapses), each ratio against LadybugDB's
ingest of the same checkpoint in the same run. Client side: building every UNWIND batch and encoding it as
Bolt PackStream. Server: the Bolt ingest (synapses/s, the largest transaction memory seen by SHOW
TRANSACTIONS, the server's CPU time per synapse), the read-back into the model with the previous read
statement against the current one, GDS against netarchive's analyses (projection time apart), the
batched ingest of the sweep checkpoint (1024-976) with one session against the store's sessions (after
a first write of it that warms the server's JIT), one transaction of it (just under
SINGLE_TRANSACTION) and a sweep of the UNWIND batch size on it, the server's peak heap (JMX), and `export --neo4j-import` + `neo4j-admin database import full` by the
server's own import tool. Results: bench/neo4j.md.
"""
from __future__ import annotations

import argparse
import io
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ROOT / "tools" / "neo4j"
sys.path.insert(0, str(ROOT))

from netarchive.model import Checkpoint, Layer  # noqa: E402
from netarchive.errors import StoreError  # noqa: E402
from netarchive.store import neo4j as neo4j_store  # noqa: E402

WIDTHS = (3072, 1024, 1024, 1024, 1000)
PREVIOUS_READ_CYPHER = (  # the read before 2026-12-01 16:00: every layer filtered on, kernel offsets read always
    "MATCH (a:Neuron {run: $run, level: $level, `group`: $source})-[s:SYNAPSE {layer: $layer}]->(b:Neuron) "
    "RETURN a.`index` AS src, collect(b.`index`) AS dst, collect(s.w) AS w, collect(s.ky) AS ky, collect(s.kx) AS kx"
)


def dense_checkpoint(widths=WIDTHS, run="bench", level=0) -> Checkpoint:
    rng = np.random.default_rng(0)
    layers = []
    for l, (n_in, n_out) in enumerate(zip(widths, widths[1:])):
        dst, src = np.divmod(np.arange(n_in * n_out, dtype=np.int64), n_in)
        layers.append(Layer(f"fc{l}.weight", n_in, n_out, src, dst, rng.normal(size=n_in * n_out).astype(np.float32)))
    return Checkpoint(run, level, tuple(layers), (3, 32, 32) if widths[0] == 3072 else None)


def timed(function, repeat=1):
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


def build_batches(checkpoint, batch):
    rows = 0
    for batches in neo4j_store.synapse_batches_by_layer(checkpoint, batch):
        for rows_of_batch in batches:
            rows += len(rows_of_batch["src"])
    return rows


def build_and_pack(checkpoint, batch, python_packer=False):
    from neo4j._codec.packstream.v1 import Packer

    buffer = io.BytesIO()
    packer = Packer(buffer)
    pack = packer._py_pack if python_packer else packer.pack
    hooks = Packer._inject_hooks()
    size = 0
    for layer, batches in enumerate(neo4j_store.synapse_batches_by_layer(checkpoint, batch)):
        for rows in batches:
            buffer.seek(0)
            buffer.truncate()
            params = {"run": checkpoint.run, "level": checkpoint.level, "layer": layer, **rows}
            pack(params, hooks) if python_packer else pack(params)
            size += buffer.tell()
    return size


def ladybug_ingest(checkpoint):
    from netarchive.store.ladybug import LadybugStore

    with tempfile.TemporaryDirectory() as directory:
        store = LadybugStore(Path(directory) / "archive")
        start = time.perf_counter()
        store.write(checkpoint)
        elapsed = time.perf_counter() - start
        store.close()
    return elapsed


def client_side(widths, batch: int, python_packer: bool) -> None:
    checkpoint = dense_checkpoint(widths)
    print(f"dense {'-'.join(map(str, widths))}: {checkpoint.edges:,} synapses, batch {batch:,}")
    baseline = ladybug_ingest(checkpoint)
    print(f"  LadybugDB ingest (baseline)            {baseline:7.2f} s   {checkpoint.edges / baseline / 1e6:5.2f} M rows/s")
    build, rows = timed(lambda: build_batches(checkpoint, batch), repeat=2)
    assert rows == checkpoint.edges
    print(f"  build batches (lists)                  {build:7.2f} s   {build / baseline:6.1%} of baseline")
    packed, size = timed(lambda: build_and_pack(checkpoint, batch), repeat=2)
    print(f"  build + PackStream (Rust extension)    {packed:7.2f} s   {packed / baseline:6.1%} of baseline   {size / 2**20:.0f} MiB")
    if python_packer:
        slow, _ = timed(lambda: build_and_pack(checkpoint, batch, python_packer=True))
        print(f"  build + PackStream (pure Python)       {slow:7.2f} s   {slow / baseline:6.1%} of baseline   Rust {slow / packed:.1f}x faster")


class Server:
    """The benchmark's own Neo4j (tools/neo4j/start.sh in a temporary directory), or $NETARCHIVE_NEO4J_URI."""

    def __init__(self):
        import subprocess

        self.external = os.environ.get("NETARCHIVE_NEO4J_URI")
        self.directory = None
        if self.external:
            self.uri, self.password = self.external, os.environ.get("NEO4J_PASSWORD")
            return
        self.directory = Path(tempfile.mkdtemp(prefix="bench-neo4j-"))
        self._subprocess = subprocess
        self.start()

    def start(self):
        done = self._subprocess.run(["bash", str(TOOLS / "start.sh"), str(self.directory)], capture_output=True, text=True)
        if done.returncode:
            sys.exit(done.stderr.strip().splitlines()[-1])
        values = dict(line.split("=", 1) for line in done.stdout.strip().splitlines()[-2:])
        self.uri, self.password = values["NEO4J_URI"], values["NEO4J_PASSWORD"]

    def stop(self):
        self._subprocess.run(["bash", str(TOOLS / "stop.sh"), str(self.directory)], check=True, capture_output=True)

    def admin(self, *args):
        return self._subprocess.run(["bash", str(TOOLS / "admin.sh"), str(self.directory), *args], check=True,
                                    capture_output=True, text=True)

    def cpu_seconds(self) -> float:
        """CPU time the server's JVM has used (user + system; NaN for an external server)."""
        if self.directory is None:
            return float("nan")
        pid = (self.directory / "run" / "neo4j.pid").read_text().strip()
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def store(self, **options):
        from netarchive.store.neo4j import Neo4jStore

        return Neo4jStore(self.uri, user="neo4j", password=self.password, **options)


def peak_heap(store) -> int:
    """Peak bytes used by the server's heap pools since it started (JMX MemoryPool PeakUsage)."""
    rows = store.cypher("CALL dbms.queryJmx('java.lang:type=MemoryPool,name=*') YIELD attributes "
                        "WHERE attributes.Type.value = 'HEAP' RETURN attributes.PeakUsage.value.properties.used AS used")
    return int(rows["used"].sum())


class TransactionMemory:
    """Samples the largest estimatedUsedHeapMemory of a running transaction (SHOW TRANSACTIONS) meanwhile."""

    def __init__(self, store):
        import threading

        self.store, self.peak, self._stop = store, 0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
        while not self._stop.wait(0.5):
            try:
                rows = self.store.cypher("SHOW TRANSACTIONS YIELD estimatedUsedHeapMemory AS used RETURN max(used) AS used")
                self.peak = max(self.peak, int(rows["used"].iloc[0] or 0))
            except Exception:  # noqa: BLE001 - a sample lost while the server is busy
                pass

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def server_side(widths, batches: list[int], sweep_widths, skip_import: bool, skip_gds: bool, skip_single: bool) -> None:
    checkpoint = dense_checkpoint(widths)
    server = Server()
    store = server.store()
    sampler = server.store()
    print(f"server {server.uri}: Neo4j {store.server_version}; dense {'-'.join(map(str, widths))}: {checkpoint.edges:,} synapses")
    baseline = ladybug_ingest(checkpoint)
    print(f"  LadybugDB ingest (baseline)          {baseline:7.2f} s  {checkpoint.edges / baseline:12,.0f} synapses/s")
    store.init()
    part = dense_checkpoint(sweep_widths, run="bench-sweep")
    elapsed, _ = timed(lambda: store.write(part))  # the server's JIT compiles the write path meanwhile
    print(f"  first write after start {part.edges:,} {elapsed:7.2f} s  {part.edges / elapsed:12,.0f} synapses/s   (cold JIT)")
    store.delete(part.run)

    with TransactionMemory(sampler) as memory:
        cpu = server.cpu_seconds()
        elapsed, _ = timed(lambda: store.write(checkpoint))
        cpu = server.cpu_seconds() - cpu
    print(f"  Bolt ingest, batch {store.batch:,}, {store.sessions} sessions {elapsed:7.2f} s  {checkpoint.edges / elapsed:12,.0f} synapses/s  "
          f"{elapsed / baseline:5.1f}x LadybugDB   peak transaction {memory.peak / 2**20:,.0f} MiB")
    print(f"    server CPU {cpu:7.1f} s = {cpu / checkpoint.edges * 1e6:5.1f} us per synapse ({checkpoint.edges / cpu:,.0f} synapses per CPU-second)")
    reads(server, store, checkpoint)
    if not skip_gds:
        gds_side(store, checkpoint)

    sessions(store, part)
    if skip_single:
        sweep(store, part, batches)
        finish(server, store, sampler, checkpoint, baseline, skip_import)
        return
    whole = server.store(single_transaction=part.edges)
    with TransactionMemory(sampler) as memory:
        try:
            elapsed, _ = timed(lambda: whole.write(part))
        except StoreError as error:  # the server's transaction memory limit
            sys.exit(f"  one transaction of {part.edges:,}: {error}")
    print(f"  one transaction of {part.edges:,} ({'-'.join(map(str, sweep_widths))})  {elapsed:7.2f} s  "
          f"{part.edges / elapsed:12,.0f} synapses/s   peak transaction {memory.peak / 2**20:,.0f} MiB")
    whole.delete(part.run)
    sweep(store, part, batches)
    finish(server, store, sampler, checkpoint, baseline, skip_import)


def reads(server, store, checkpoint) -> None:
    """The read-back with the previous read statement (baseline) and the current ones, alternating."""
    current = dict(neo4j_store.READ_LAYER_CYPHER)
    times = {}
    for name, statements in (("previous", dict.fromkeys(current, PREVIOUS_READ_CYPHER)), ("current", current)) * 2:
        neo4j_store.READ_LAYER_CYPHER = statements
        try:
            cpu = server.cpu_seconds()
            elapsed, back = timed(lambda: store.read(checkpoint.run, 0))
            cpu = server.cpu_seconds() - cpu
        finally:
            neo4j_store.READ_LAYER_CYPHER = current
        assert back.edges == checkpoint.edges
        times[name] = min(times.get(name, elapsed), elapsed)
        print(f"  read back into the model ({name:8s}) {elapsed:7.2f} s  {checkpoint.edges / elapsed:12,.0f} synapses/s  "
              f"server CPU {cpu:5.1f} s ({checkpoint.edges / cpu:,.0f} synapses per CPU-second)")
    print(f"  speed-up of the current read         {times['previous'] / times['current']:7.2f}x (best of two each)")


def sessions(store, part) -> None:
    """The batched ingest of ``part`` with one session (baseline) and with the store's sessions, alternating."""
    batched, sessions = store.single_transaction, store.sessions
    times = {}
    store.single_transaction = 0
    try:
        for count in (1, sessions) * 2:
            store.sessions = count
            elapsed, _ = timed(lambda: store.write(part))
            store.delete(part.run)
            times[count] = min(times.get(count, elapsed), elapsed)
            print(f"  batched, {count} session{'s' if count > 1 else ' '} {part.edges:,}  {elapsed:7.2f} s  {part.edges / elapsed:12,.0f} synapses/s")
    finally:
        store.single_transaction, store.sessions = batched, sessions
    print(f"  speed-up of {sessions} sessions                {times[1] / times[sessions]:7.2f}x (best of two each)")


def sweep(store, part, batches) -> None:
    for batch in batches:
        store.batch = batch
        elapsed, _ = timed(lambda: store.write(part))
        print(f"  sweep: batch {batch:>7,} (batched)       {elapsed:7.2f} s  {part.edges / elapsed:12,.0f} synapses/s")
        elapsed, _ = timed(lambda: store.delete(part.run))
        print(f"         rm                            {elapsed:7.2f} s  {part.edges / elapsed:12,.0f} synapses/s")


def finish(server, store, sampler, checkpoint, baseline, skip_import) -> None:
    print(f"  peak heap of the server              {peak_heap(store) / 2**20:7,.0f} MiB")
    store.close()
    sampler.close()
    if not skip_import and server.directory is not None:
        bulk_import(server, checkpoint, baseline)
    if server.directory is not None:
        server.stop()


def bulk_import(server, checkpoint, baseline) -> None:
    """`export --neo4j-import` of the same checkpoint and `neo4j-admin database import full` of the files."""
    import netarchive
    from netarchive.neo4j_import import export_neo4j_import, import_command

    with tempfile.TemporaryDirectory() as directory:
        with netarchive.open(Path(directory) / "archive") as archive:
            archive.write(checkpoint)
            files = server.directory / "import" / "bench"
            exported, _ = timed(lambda: export_neo4j_import(archive, files))
        print(f"  export --neo4j-import                {exported:7.2f} s  {checkpoint.edges / exported:12,.0f} synapses/s")
        server.stop()
        args = shlex.split(import_command(files))[1:]  # what `neo4j-admin` would run, by the server's own tool
        imported, _ = timed(lambda: server.admin(*args))
        server.start()
        store = server.store()
        store.init()
        count = store.cypher("MATCH ()-[s:SYNAPSE]->() RETURN count(s) AS n")["n"].iloc[0]
        assert count == checkpoint.edges, count
        print(f"  neo4j-admin database import full     {imported:7.2f} s  {checkpoint.edges / imported:12,.0f} synapses/s  "
              f"{imported / baseline:5.1f}x LadybugDB")
        store.close()


def gds_side(store, checkpoint) -> None:
    """netarchive's components and spanning forests against GDS's WCC and spanning trees, same checkpoint."""
    from netarchive.analysis.components import components
    from netarchive.analysis.spanning import spanning_forests
    from netarchive.cli.query import browser_params

    def run(name, **params):
        text, defaults = browser_params((ROOT / "cypher" / f"{name}.cypher").read_text())
        return store.cypher(text, {**defaults, **params})

    ours, table = timed(lambda: components(checkpoint))
    projected, _ = timed(lambda: run("gds_project", run=checkpoint.run, level=0, graph="bench"))
    wcc, found = timed(lambda: run("gds_wcc", graph="bench"))
    assert found["components"].iloc[0] == table["components"].iloc[0]
    forests, masks = timed(lambda: spanning_forests(checkpoint))
    trees, weights = timed(lambda: [run("gds_spanning_tree", graph="bench", layer=l)["weight"].iloc[0]
                                    for l in range(len(checkpoint.layers))])
    expected = [float(np.abs(layer.w[mask].astype(np.float64)).sum()) for layer, mask in zip(checkpoint.layers, masks)]
    assert np.allclose(weights, expected, rtol=1e-9), (weights, expected)
    louvain, _ = timed(lambda: run("gds_louvain", graph="bench"))
    run("gds_drop", graph="bench")
    print(f"  GDS projection (Cypher aggregation)  {projected:7.2f} s")
    print(f"  components: netarchive {ours:6.2f} s   GDS WCC {wcc:6.2f} s   GDS / netarchive {wcc / ours:6.1f}x")
    print(f"  spanning forests: netarchive {forests:6.2f} s   GDS spanning trees {trees:6.2f} s   {trees / forests:6.1f}x")
    print(f"  GDS Louvain (no netarchive counterpart) {louvain:6.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", default=",".join(map(str, WIDTHS)), help="layer widths of the dense checkpoint")
    parser.add_argument("--batch", type=int, default=neo4j_store.SYNAPSE_BATCH)
    parser.add_argument("--python-packer", action="store_true", help="also time the driver's pure-Python packer (slow)")
    parser.add_argument("--client", action="store_true", help="only the client side (no server)")
    parser.add_argument("--sweep", default="10000,20000,50000", help="UNWIND batch sizes to sweep")
    parser.add_argument("--sweep-widths", default="1024,976", help="layer widths of the sweep's checkpoint")
    parser.add_argument("--no-import", action="store_true", help="skip neo4j-admin database import")
    parser.add_argument("--no-gds", action="store_true", help="skip the GDS comparison")
    parser.add_argument("--no-single", action="store_true", help="skip the one-transaction write of the sweep checkpoint")
    args = parser.parse_args()
    widths = tuple(int(w) for w in args.widths.split(","))
    client_side(widths, args.batch, args.python_packer)
    if not args.client:
        server_side(widths, [int(b) for b in args.sweep.split(",")], tuple(int(w) for w in args.sweep_widths.split(",")),
                    args.no_import, args.no_gds, args.no_single)


if __name__ == "__main__":
    main()
