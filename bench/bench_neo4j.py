"""Neo4j store benchmark: the client side of an ingest, then a real Neo4j 5.26 server, against LadybugDB.

    python bench/bench_neo4j.py                  # starts its own server (tools/neo4j/start.sh), stops it after
    python bench/bench_neo4j.py --client         # the client side only (no server)
    NETARCHIVE_NEO4J_URI=bolt://... NEO4J_PASSWORD=... python bench/bench_neo4j.py --no-import

All on the dense 3072-1024-1024-1024-1000 checkpoint (6.27 M synapses), each ratio against LadybugDB's
ingest of the same checkpoint in the same run. Client side: building every UNWIND batch and encoding it as
Bolt PackStream. Server: the Bolt ingest (synapses/s, the largest transaction memory seen by SHOW
TRANSACTIONS), the read-back into the model, GDS against netarchive's analyses (projection time apart),
the batched ingest of the sweep checkpoint (1024-976) with the previous synapse statement (two
composite-index seeks per row) against the current one, one transaction of it (just under
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
COMPOSITE_SEEKS_CYPHER = (  # the synapse statement before 2026-12-01 13:15: two composite-index seeks per row
    "UNWIND range(0, size($targets) - 1) AS j "
    "MATCH (b:Neuron {run: $run, level: $level, layer: $layer + 1, `index`: $targets[j]}) "
    "UNWIND range($bounds[j], $bounds[j + 1] - 1) AS i "
    "MATCH (a:Neuron {run: $run, level: $level, layer: $layer, `index`: $src[i]}) "
    "CREATE (a)-[:SYNAPSE {w: $w[i]}]->(b)"
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


def client_side(batch: int, python_packer: bool) -> None:
    checkpoint = dense_checkpoint()
    print(f"dense {'-'.join(map(str, WIDTHS))}: {checkpoint.edges:,} synapses, batch {batch:,}")
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


def server_side(batches: list[int], sweep_widths, skip_import: bool, skip_gds: bool, skip_single: bool) -> None:
    checkpoint = dense_checkpoint()
    server = Server()
    store = server.store()
    sampler = server.store()
    print(f"server {server.uri}: Neo4j {store.server_version}; dense {'-'.join(map(str, WIDTHS))}: {checkpoint.edges:,} synapses")
    baseline = ladybug_ingest(checkpoint)
    print(f"  LadybugDB ingest (baseline)          {baseline:7.2f} s  {checkpoint.edges / baseline:12,.0f} synapses/s")
    store.init()

    with TransactionMemory(sampler) as memory:
        elapsed, _ = timed(lambda: store.write(checkpoint))
    print(f"  Bolt ingest, batch {store.batch:,}        {elapsed:7.2f} s  {checkpoint.edges / elapsed:12,.0f} synapses/s  "
          f"{elapsed / baseline:5.1f}x LadybugDB   peak transaction {memory.peak / 2**20:,.0f} MiB")
    elapsed, back = timed(lambda: store.read(checkpoint.run, 0))
    assert back.edges == checkpoint.edges
    print(f"  read back into the model             {elapsed:7.2f} s  {checkpoint.edges / elapsed:12,.0f} synapses/s")
    if not skip_gds:
        gds_side(store, checkpoint)

    part = dense_checkpoint(sweep_widths, run="bench-sweep")
    statements(store, part)
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


def statements(store, part) -> None:
    """The batched ingest of ``part`` with the previous synapse statement (baseline) and the current one."""
    current = neo4j_store.CREATE_SYNAPSES_CYPHER
    times = {}
    for name, text in (("composite seeks (previous)", COMPOSITE_SEEKS_CYPHER), ("layers collected (current)", current)):
        neo4j_store.CREATE_SYNAPSES_CYPHER = text
        batched = store.single_transaction
        store.single_transaction = 0
        try:
            times[name], _ = timed(lambda: store.write(part))
        finally:
            neo4j_store.CREATE_SYNAPSES_CYPHER, store.single_transaction = current, batched
        store.delete(part.run)
        print(f"  {name:26s} {part.edges:,}  {times[name]:7.2f} s  {part.edges / times[name]:12,.0f} synapses/s")
    first, second = times.values()
    print(f"  speed-up of the current statement    {first / second:7.2f}x")


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
    parser.add_argument("--batch", type=int, default=neo4j_store.SYNAPSE_BATCH)
    parser.add_argument("--python-packer", action="store_true", help="also time the driver's pure-Python packer (slow)")
    parser.add_argument("--client", action="store_true", help="only the client side (no server)")
    parser.add_argument("--sweep", default="10000,20000,50000", help="UNWIND batch sizes to sweep")
    parser.add_argument("--sweep-widths", default="1024,976", help="layer widths of the sweep's checkpoint")
    parser.add_argument("--no-import", action="store_true", help="skip neo4j-admin database import")
    parser.add_argument("--no-gds", action="store_true", help="skip the GDS comparison")
    parser.add_argument("--no-single", action="store_true", help="skip the one-transaction write of the sweep checkpoint")
    args = parser.parse_args()
    client_side(args.batch, args.python_packer)
    if not args.client:
        server_side([int(b) for b in args.sweep.split(",")], tuple(int(w) for w in args.sweep_widths.split(",")),
                    args.no_import, args.no_gds, args.no_single)


if __name__ == "__main__":
    main()
