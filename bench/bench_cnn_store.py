"""Ingest and read-back speed of convolutional networks in the embedded archive (issue 14).

Workload: OpenLTH's ``cifar_vgg_16`` (14.7 M kernel weights) at its IMP levels (bench/cnn_levels.py, 20 %
per level), traced once (tracing is reported separately). Ratios measured in this one run:

- ingest of each level (``Archive.write`` into the archive holding the earlier levels: two-phase durable
  write, neurons with batch-norm statistics, synapses with layer and kernel offset, connections) /
  LadybugDB's own ``COPY`` of the same neuron and synapse tables into an empty database in a fresh
  process (bench_ingest.ladybug_floor; target <= 1.5x);
- read-back of each level into the model (``Archive.checkpoint``: architecture, synapses, neuron values,
  verified counts) in synapses per second (target >= 5 M/s).

    python bench/bench_cnn_store.py [--levels 0 1 3]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

def main() -> None:
    import netarchive
    from bench_ingest import ladybug_floor
    from cnn_levels import LEVELS, vgg16_levels

    parser = argparse.ArgumentParser()
    parser.add_argument("--levels", type=int, nargs="+", default=list(LEVELS))
    args = parser.parse_args()
    traced, checkpoints = vgg16_levels(tuple(args.levels))
    print(f"tracing cifar_vgg_16: {traced:.2f} s")
    print("level  synapses  floor_s  ingest_s  ingest/floor  read_s  read_M_synapses/s")
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        with netarchive.open(work / "archive") as archive:
            for checkpoint in checkpoints:
                (work / f"floor{checkpoint.level}").mkdir()
                floor, _ = ladybug_floor(checkpoint, work / f"floor{checkpoint.level}")
                start = time.perf_counter()
                archive.write(checkpoint)
                ingest = time.perf_counter() - start
                start = time.perf_counter()
                back = archive.checkpoint(checkpoint.run, checkpoint.level)
                read = time.perf_counter() - start
                assert back.edges == checkpoint.edges
                print(f"{checkpoint.level:5d} {checkpoint.edges:9d} {floor:8.2f} {ingest:9.2f} {ingest / floor:12.2f}x "
                      f"{read:7.2f} {checkpoint.edges / read / 1e6:10.2f}")


if __name__ == "__main__":
    main()
