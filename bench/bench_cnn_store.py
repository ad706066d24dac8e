"""Ingest and read-back speed of convolutional networks in the embedded archive (issue 14).

Workload: OpenLTH's ``cifar_vgg_16`` (14.7 M kernel weights) at its IMP levels (bench/cnn_levels.py, 20 %
per level), traced once (tracing is reported separately). Ratios measured in this one run:

- ingest of each level (``Archive.write`` into the archive holding the earlier levels: two-phase durable
  write, neurons with batch-norm statistics, synapses with layer, kernel offset and packed column,
  connections) / LadybugDB's own ``COPY`` of the same neuron and synapse tables (target <= 1.5x), against
  two floors, each in a fresh process: into an empty database (bench_ingest.ladybug_floor), and the fair
  one, into a database that already holds the same earlier levels (a ``COPY`` into a non-empty
  relationship table rewrites it, so later levels cost more than their size: both pay that);
- ``--unpacked``: also the empty-database floor without the ``packed`` column, what that column costs;
- read-back of each level into the model (``Archive.checkpoint``: architecture, synapses, neuron values,
  verified counts; the fastest of ``--reads``) in synapses per second (target >= 5 M/s), and, in the same run, the read from the
  synapses' six property columns that archives before ``packed`` take (``--no-unpacked-read`` skips it).

    python bench/bench_cnn_store.py [--levels 0 1 3] [--unpacked]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

def floor_copy(checkpoint, checkpoint_id: int, database: Path, work: Path, packed: bool = True) -> float:
    """Seconds of LadybugDB's COPY of the checkpoint's neuron and synapse tables (as netarchive builds them,
    without ``packed`` if not ``packed``) into ``database`` (created if missing), in a fresh process."""
    import pyarrow.parquet as pq

    from bench_ingest import FLOOR

    from netarchive.store.ladybug import _neuron_table, _synapse_table
    from netarchive.store.ladybug_schema import REL_TABLES

    synapses, schema = _synapse_table(checkpoint, checkpoint_id), REL_TABLES["SYNAPSE"]
    if not packed:
        synapses, schema = synapses.drop_columns(["packed"]), schema.replace(", packed INT64", "")
    pq.write_table(_neuron_table(checkpoint, checkpoint_id), work / "nodes.parquet")
    pq.write_table(synapses, work / "synapses.parquet")
    args = [work / "nodes.parquet", work / "synapses.parquet", database, schema]
    out = subprocess.run([sys.executable, "-c", FLOOR, *map(str, args)], capture_output=True, text=True, check=True)
    return float(out.stdout.split()[0])


def best_read(archive, checkpoint, reads: int) -> float:
    """Seconds of the fastest of ``reads`` read-backs of the checkpoint."""
    times = []
    for _ in range(reads):
        start = time.perf_counter()
        back = archive.checkpoint(checkpoint.run, checkpoint.level)
        times.append(time.perf_counter() - start)
        assert back.edges == checkpoint.edges
    return min(times)


def unpacked_read(archive, checkpoint, reads: int) -> float:
    """The same from the six property columns (as of an archive written before ``packed``)."""
    from netarchive.store import ladybug

    packed = ladybug.LadybugStore._packed_values
    ladybug.LadybugStore._packed_values = lambda *args: None
    try:
        return best_read(archive, checkpoint, reads)
    finally:
        ladybug.LadybugStore._packed_values = packed


def main() -> None:
    import netarchive
    from cnn_levels import LEVELS, vgg16_levels

    parser = argparse.ArgumentParser()
    parser.add_argument("--levels", type=int, nargs="+", default=list(LEVELS))
    parser.add_argument("--unpacked", action="store_true", help="also the empty-database floor without `packed`")
    parser.add_argument("--no-unpacked-read", action="store_true")
    parser.add_argument("--reads", type=int, default=3, help="read-backs of each level (the fastest counts)")
    args = parser.parse_args()
    traced, checkpoints = vgg16_levels(tuple(args.levels))
    print(f"tracing cifar_vgg_16: {traced:.2f} s")
    print("level  synapses  floor_s  fair_floor_s  ingest_s  ingest/floor  ingest/fair  read_s  read_M/s  "
          "unpacked_read_s  read_speedup" + ("  floor_unpacked_s  packed_cost" if args.unpacked else ""))
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        with netarchive.open(work / "archive") as archive:
            for number, checkpoint in enumerate(checkpoints, 1):
                (work / f"floor{number}").mkdir()
                floor = floor_copy(checkpoint, 1, work / f"floor{number}" / "floor.lbdb", work / f"floor{number}")
                fair = floor if number == 1 else floor_copy(checkpoint, number, work / "floor1" / "floor.lbdb", work)
                start = time.perf_counter()
                archive.write(checkpoint)
                ingest = time.perf_counter() - start
                read = best_read(archive, checkpoint, args.reads)
                slow = float("nan") if args.no_unpacked_read else unpacked_read(archive, checkpoint, args.reads)
                row = (f"{checkpoint.level:5d} {checkpoint.edges:9d} {floor:8.2f} {fair:13.2f} {ingest:9.2f} "
                       f"{ingest / floor:12.2f}x {ingest / fair:11.2f}x {read:7.2f} {checkpoint.edges / read / 1e6:9.2f} "
                       f"{slow:16.2f} {slow / read:12.2f}x")
                if args.unpacked:
                    (work / f"unpacked{number}").mkdir()
                    bare = floor_copy(checkpoint, 1, work / f"unpacked{number}" / "floor.lbdb", work / f"unpacked{number}", packed=False)
                    row += f" {bare:17.2f} {floor / bare:11.2f}x"
                print(row, flush=True)


if __name__ == "__main__":
    main()
