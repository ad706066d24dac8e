"""Neo4j store benchmark: the client side of an ingest without a server, and the server when configured.

    python bench/bench_neo4j.py                 # client side vs LadybugDB ingest (no server needed)
    NETARCHIVE_NEO4J_URI=neo4j://localhost:7687 NEO4J_PASSWORD=... python bench/bench_neo4j.py
                                                # both, then the server; --server for the server alone

Client side: the time to build every UNWIND batch of the dense 3072-1024-1024-1024-1000 checkpoint
(6.27 M synapses: Python lists of parallel arrays) and to encode them as Bolt PackStream (the driver's
Rust extension, and its pure-Python packer for comparison), against the time LadybugDB takes to ingest the
same checkpoint in the same run. The target: client < 20 % of the LadybugDB ingest, so the client is never
what limits a server ingest. Server (``--server``): ingest rows/s for a sweep of batch sizes (run
``bench-…``, deleted afterwards) and read rows/s. Results: bench/neo4j.md.
"""
from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from netarchive.model import Checkpoint, Layer  # noqa: E402
from netarchive.store import neo4j as neo4j_store  # noqa: E402

WIDTHS = (3072, 1024, 1024, 1024, 1000)


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


def server_side(batches: list[int], widths) -> None:
    from netarchive.store.neo4j import Neo4jStore

    uri = os.environ.get("NETARCHIVE_NEO4J_URI")
    if not uri:
        sys.exit("--server needs NETARCHIVE_NEO4J_URI (and NEO4J_USERNAME/NEO4J_PASSWORD)")
    store = Neo4jStore(uri)
    print(f"server {uri}: Neo4j {store.server_version}")
    for batch in batches:
        store.batch = batch
        checkpoint = dense_checkpoint(widths, run=f"bench-{batch}")
        elapsed, _ = timed(lambda: store.write(checkpoint, replace=True))
        print(f"  ingest batch {batch:>7,}: {elapsed:7.2f} s  {checkpoint.edges / elapsed:10,.0f} rows/s")
        elapsed, back = timed(lambda: store.read(checkpoint.run, 0))
        assert back.edges == checkpoint.edges
        print(f"  read                 : {elapsed:7.2f} s  {checkpoint.edges / elapsed:10,.0f} rows/s")
        store.delete(checkpoint.run)
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=neo4j_store.SYNAPSE_BATCH)
    parser.add_argument("--python-packer", action="store_true", help="also time the driver's pure-Python packer (slow)")
    parser.add_argument("--server", action="store_true", help="only the server at NETARCHIVE_NEO4J_URI (run anyway when it is set)")
    parser.add_argument("--sweep", default="5000,20000,50000", help="batch sizes for --server")
    parser.add_argument("--widths", default=",".join(map(str, WIDTHS)), help="layer widths for --server")
    args = parser.parse_args()
    if not args.server:
        client_side(args.batch, args.python_packer)
    if args.server or os.environ.get("NETARCHIVE_NEO4J_URI"):
        server_side([int(b) for b in args.sweep.split(",")], tuple(int(w) for w in args.widths.split(",")))


if __name__ == "__main__":
    main()
