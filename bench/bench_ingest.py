"""Ingest and read-back speed of the embedded archive on the FCN of the ImageNet32 study.

Workload: a dense 3072-1024-1024-1024-1000 network (6.27 M weights) with random weights, and its IMP
levels at 30 % magnitude pruning per level. Reported as ratios measured in this one run:

- end-to-end ``netarchive ingest`` of the dense checkpoint file / LadybugDB's own ``COPY`` of the same
  node and edge tables into an empty database (the floor for this backend; target <= 1.5x);
- the cost of making the write durable in two phases: the explicit ``CHECKPOINT`` statements and the
  small publishing commit, as a share of the ingest;
- read-back into the model, in synapses per second (target >= 5 M/s);
- the naive approach, one Cypher ``CREATE`` per synapse, timed on a sample and extrapolated;
- peak memory of the ingest process against the size of the checkpoint file.

    python bench/bench_ingest.py [--levels 3]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

WIDTHS = (3072, 1024, 1024, 1024, 1000)


def make_run(directory: Path, levels: int) -> list[Path]:
    """The dense checkpoint and ``levels`` IMP levels (30 % of the survivors pruned per level, per layer)."""
    rng = np.random.default_rng(0)
    state = {f"fc{l}.weight": torch.from_numpy(rng.normal(size=(o, i)).astype(np.float32)) for l, (i, o) in enumerate(zip(WIDTHS, WIDTHS[1:]))}
    paths = []
    for level in range(levels + 1):
        path = directory / f"level_{level}.pt"
        torch.save(state, path)
        paths.append(path)
        for name, w in state.items():
            alive = w != 0
            threshold = w.abs()[alive].quantile(0.3) if alive.sum() < 2**24 else w.abs()[alive].float().kthvalue(int(0.3 * alive.sum())).values
            state[name] = torch.where(w.abs() > threshold, w, torch.zeros_like(w))
    return paths


def time_it(function):
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


# LadybugDB's own COPY of one checkpoint's prepared tables (argv 1, 2) into the database at argv[3], which
# may hold earlier checkpoints (bench_cnn_store.py's fair floor); argv[4]: other SYNAPSE columns.
FLOOR = """
import resource, sys, time
import ladybug, pyarrow.parquet as pq
from netarchive.store.ladybug_schema import NODE_TABLES as _NODE_TABLES, REL_TABLES as _REL_TABLES
nodes, synapses = pq.read_table(sys.argv[1]), pq.read_table(sys.argv[2])
db = ladybug.Database(sys.argv[3])
conn = ladybug.Connection(db)
conn.execute(f"CREATE NODE TABLE IF NOT EXISTS Neuron({_NODE_TABLES['Neuron']})")
conn.execute(f"CREATE REL TABLE IF NOT EXISTS SYNAPSE({sys.argv[4] if len(sys.argv) > 4 else _REL_TABLES['SYNAPSE']})")
start = time.perf_counter()
conn.execute("COPY Neuron FROM $rows", {"rows": nodes})
conn.execute("COPY SYNAPSE FROM $rows", {"rows": synapses})
print(time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def ladybug_floor(checkpoint, directory: Path) -> tuple[float, float]:
    """Seconds and peak MB of LadybugDB's own COPY of the node and synapse tables of one checkpoint into an
    empty database, in a fresh process (the tables are prepared beforehand and not timed)."""
    import pyarrow.parquet as pq

    from netarchive.store.ladybug import _neuron_table, _synapse_table

    pq.write_table(_neuron_table(checkpoint, 1), directory / "nodes.parquet")
    pq.write_table(_synapse_table(checkpoint, 1), directory / "synapses.parquet")
    args = [directory / "nodes.parquet", directory / "synapses.parquet", directory / "floor.lbdb"]
    out = subprocess.run([sys.executable, "-c", FLOOR, *map(str, args)], capture_output=True, text=True, check=True)
    seconds, peak = out.stdout.split()
    return float(seconds), float(peak)


def naive_create_rate(checkpoint, directory: Path, sample: int = 2000) -> float:
    """Synapses per second with one parameterised CREATE per synapse (the row-by-row approach)."""
    import ladybug

    db = ladybug.Database(str(directory / "naive.lbdb"))
    conn = ladybug.Connection(db)
    conn.execute("CREATE NODE TABLE Neuron(id INT64 PRIMARY KEY)")
    conn.execute("CREATE REL TABLE SYNAPSE(FROM Neuron TO Neuron, w FLOAT)")
    conn.execute("UNWIND range(0, $n - 1) AS i CREATE (:Neuron {id: i})", {"n": checkpoint.neurons})
    src, dst, w, _ = checkpoint.edge_list()
    start = time.perf_counter()
    for i in range(sample):
        conn.execute(
            "MATCH (a:Neuron {id: $a}), (b:Neuron {id: $b}) CREATE (a)-[:SYNAPSE {w: $w}]->(b)",
            {"a": int(src[i]), "b": int(dst[i]), "w": float(w[i])},
        )
    rate = sample / (time.perf_counter() - start)
    conn.close()
    db.close()
    return rate


INGEST = """
import resource, sys, time
from click.testing import CliRunner
import netarchive.store.ladybug as ladybug_store
from netarchive.cli import cli

spent = {"checkpoint": 0.0, "copy": 0.0}
def timed(name, method):
    def wrapper(*args, **kwargs):
        begin = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            spent[name] += time.perf_counter() - begin
    return wrapper
store = ladybug_store.LadybugStore
# the durable CHECKPOINT after each commit, and phase 1 (the copy and its commit, checkpoint included)
store._checkpoint = timed("checkpoint", store._checkpoint)
store._copy_in = timed("copy", store._copy_in)
write = store.write
store.write = lambda self, *a, **k: (spent.__setitem__("begin", time.perf_counter()), write(self, *a, **k),
                                     spent.__setitem__("write", time.perf_counter() - spent["begin"]))[1]
start = time.perf_counter()
r = CliRunner().invoke(cli, ["--store", sys.argv[1], "ingest", sys.argv[2], "--run", "fcn", "--level", sys.argv[3]])
assert r.exit_code == 0, r.output
print(time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
      spent["checkpoint"], spent["write"] - spent["copy"])
"""


def ingest_in_subprocess(path: Path, store: Path, level: int) -> tuple[float, float, float, float]:
    """Seconds and peak resident MB of `netarchive ingest` of one file in a fresh process, and the seconds
    it spent in the durable CHECKPOINT statements and in publishing (everything of the write after the
    copy's commit: the publishing transaction and its checkpoint)."""
    out = subprocess.run([sys.executable, "-c", INGEST, str(store), str(path), str(level)],
                         capture_output=True, text=True, check=True).stdout.split()
    return tuple(float(value) for value in out)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--levels", type=int, default=3, help="IMP levels after the dense one")
    args = parser.parse_args()
    import netarchive
    from netarchive.loaders import load

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        paths = make_run(tmp, args.levels)
        [dense] = load([paths[0]], run="fcn", level=0)
        floor, floor_peak = ladybug_floor(dense, tmp)
        size_mb = paths[0].stat().st_size / 2**20
        rows = []
        for level, path in enumerate(paths):
            rows.append((level, path, *ingest_in_subprocess(path, tmp / "archive", level)))
        with netarchive.open(tmp / "archive", read_only=True) as archive:
            read_seconds, back = time_it(lambda: archive.checkpoint("fcn", 0))
        naive = naive_create_rate(dense, tmp)

    print(f"dense checkpoint: {dense.edges:,} synapses, file {size_mb:.0f} MB")
    print(f"LadybugDB COPY floor: {floor:.2f} s ({dense.edges / floor / 1e6:.2f} M synapses/s)")
    for level, _, seconds, peak, checkpoints, publish in rows:
        print(f"  ingest level {level}: {seconds:.2f} s, peak memory {peak:.0f} MB; durable CHECKPOINT statements "
              f"{checkpoints:.2f} s, publishing {publish:.2f} s")
    print(f"end-to-end ingest / COPY floor: {rows[0][2] / floor:.2f}x (target <= 1.5x)")
    print(f"two-phase write of the dense level: the explicit CHECKPOINT statements take {rows[0][4] / rows[0][2]:.1%} "
          f"of the ingest, the publishing commit {rows[0][5] / rows[0][2]:.1%} (of all levels: "
          f"{sum(r[4] for r in rows) / sum(r[2] for r in rows):.1%} and {sum(r[5] for r in rows) / sum(r[2] for r in rows):.1%})")
    print(f"read-back into the model: {read_seconds:.2f} s = {back.edges / read_seconds / 1e6:.1f} M synapses/s (target >= 5)")
    print(f"naive CREATE per synapse: {naive:.0f} synapses/s -> {dense.edges / naive / 3600:.1f} h extrapolated, "
          f"{dense.edges / naive / rows[0][2]:.0f}x slower than ingest")
    print(f"peak memory of the dense ingest: {rows[0][3]:.0f} MB = {rows[0][3] / floor_peak:.2f}x that of LadybugDB's "
          f"own COPY ({floor_peak:.0f} MB; its buffer pool dominates), {rows[0][3] / size_mb:.0f}x the file")


if __name__ == "__main__":
    main()
