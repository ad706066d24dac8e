"""Study-scale ingest and listing: the baseline that issue 15's targets are measured against.

Workload: the motif study's network 10-400-400-400-16-7 (330,512 weights) pruned by global magnitude, 20 %
of the survivors per level, 20 levels (1.63 M synapses in all; level 19 keeps 4,765), one run per seed.
Reported as ratios measured in this one run:

- ingest of one run of 20 levels (``Archive.ingest`` of its 20 files) / one LadybugDB ``COPY`` of all its
  neurons and synapses into an empty database (target <= 1.3x);
- the fixed cost of one checkpoint (level 19, 4,765 synapses, ingested as a run of its own) into the
  archive holding every run / into an empty one (target: <= 0.5 s; the median of three, each removed after),
  and the same as one ``netarchive ingest`` command (process start and the close's checkpoint included);
- the time per run from the 1st to the last of ``--runs`` runs (target: flat within 1.2x; the first run
  copies into empty tables, which LadybugDB does faster, so the later runs are also compared with the 2nd);
- ``ls`` and ``query summary --runs all`` over every checkpoint: uncached (and what dominates a row) and
  cached, in the process and as a command (process start included).

    python bench/bench_study.py [--runs 10] [--summary-runs N] [--stride K]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from bench_ingest import FLOOR  # LadybugDB's own COPY of prepared tables, in a fresh process

WIDTHS = (10, 400, 400, 400, 16, 7)
LEVELS = 20
FRACTION = 0.2


def make_run(directory: Path, seed: int) -> Path:
    """``directory/level_<L>.pt`` for L = 0..19: the dense network, then 20 % of the survivors pruned per level."""
    rng = np.random.default_rng(seed)
    state = {f"fc{l}.weight": rng.normal(size=(o, i)).astype(np.float32) for l, (i, o) in enumerate(zip(WIDTHS, WIDTHS[1:]))}
    directory.mkdir(parents=True)
    for level in range(LEVELS):
        torch.save({name: torch.from_numpy(w) for name, w in state.items()}, directory / f"level_{level}.pt")
        alive = np.concatenate([np.abs(w[w != 0]) for w in state.values()])
        threshold = np.sort(alive)[int(np.ceil(FRACTION * len(alive)))]
        state = {name: np.where(np.abs(w) > threshold, w, 0).astype(np.float32) for name, w in state.items()}
    return directory


def copy_floor(checkpoints, directory: Path) -> float:
    """Seconds of one LadybugDB COPY of the neurons and synapses of all ``checkpoints`` into an empty
    database, in a fresh process (the tables are prepared beforehand and not timed)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from netarchive.store.ladybug import _neuron_table, _synapse_table

    nodes = pa.concat_tables([_neuron_table(c, k + 1) for k, c in enumerate(checkpoints)])
    synapses = pa.concat_tables([_synapse_table(c, k + 1) for k, c in enumerate(checkpoints)])
    pq.write_table(nodes, directory / "nodes.parquet")
    pq.write_table(synapses, directory / "synapses.parquet")
    args = [directory / "nodes.parquet", directory / "synapses.parquet", directory / "floor.lbdb"]
    out = subprocess.run([sys.executable, "-c", FLOOR, *map(str, args)], capture_output=True, text=True, check=True)
    return float(out.stdout.split()[0])


def fixed_cost(archive, small: Path) -> float:
    """Median seconds of ingesting ``small`` as a run of its own into ``archive``, three times (each removed)."""
    seconds = []
    for k in range(3):
        seconds.append(timed(lambda: archive.ingest([small], run=f"single{k}", level=LEVELS - 1))[0])
        archive.rm(f"single{k}")
    return float(np.median(seconds))


def timed(function):
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def summary_parts(checkpoint) -> dict[str, float]:
    """Seconds of each analysis a summary row computes, on one checkpoint."""
    from netarchive.analysis.components import components
    from netarchive.analysis.motifs import motifs
    from netarchive.analysis.percolation import thresholds
    from netarchive.analysis.persistence import neural_persistence
    from netarchive.analysis.spanning import tccr
    from netarchive.analysis.summary import ORDER_2_MOTIFS

    parts = {
        "components": lambda: components(checkpoint),
        "thresholds (10 random orders)": lambda: thresholds(checkpoint, samples=10),
        "neural persistence": lambda: neural_persistence(checkpoint),
        "tccr": lambda: tccr(checkpoint),
        "motifs (fixed null)": lambda: motifs(checkpoint, null="fixed", motifs=ORDER_2_MOTIFS),
    }
    return {name: timed(part)[0] for name, part in parts.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10, help="runs of 20 levels to ingest (the issue's target: 100)")
    parser.add_argument("--summary-runs", type=int, default=None, help="runs whose summary is computed (default: all)")
    parser.add_argument("--stride", type=int, default=1, help="print every K-th run's time (all are kept)")
    args = parser.parse_args()
    import netarchive
    from netarchive.loaders import load

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        first = make_run(tmp / "files" / "run000", 0)
        checkpoints = load([first], run="run000")
        synapses = sum(c.edges for c in checkpoints)
        floor = copy_floor(checkpoints, tmp)
        small = first / f"level_{LEVELS - 1}.pt"
        with netarchive.open(tmp / "empty") as archive:
            fixed_empty = fixed_cost(archive, small)
        per_run = []
        with netarchive.open(tmp / "archive") as archive:
            for k in range(args.runs):
                files = first if k == 0 else make_run(tmp / "files" / f"run{k:03d}", k)
                seconds, _ = timed(lambda: archive.ingest([files], run=f"run{k:03d}"))
                per_run.append(seconds)
                if k % args.stride == 0 or k == args.runs - 1:
                    print(f"  run {k + 1:3d}: {seconds:.2f} s   load {os.getloadavg()[0]:.1f}", flush=True)
            fixed_full = fixed_cost(archive, small)
        size_mb = sum(f.stat().st_size for f in (tmp / "archive").rglob("*") if f.is_file()) / 2**20
        cli = [sys.executable, "-m", "netarchive", "--store", str(tmp / "archive")]
        single_cli, _ = timed(lambda: subprocess.run([*cli, "ingest", str(small), "--run", "single-cli", "--level", str(LEVELS - 1)],
                                                     capture_output=True, check=True))
        subprocess.run([*cli, "rm", "--run", "single-cli", "--yes"], capture_output=True, check=True)
        ls_seconds, _ = timed(lambda: subprocess.run([*cli, "ls", "--format", "csv"], capture_output=True, check=True))
        ls_meta, _ = timed(lambda: subprocess.run([*cli, "ls", "--meta", "--format", "csv"], capture_output=True, check=True))
        start_only, _ = timed(lambda: subprocess.run([sys.executable, "-m", "netarchive", "--help"], capture_output=True, check=True))
        with netarchive.open(tmp / "archive", read_only=True) as archive:
            listing_seconds, _ = timed(archive.checkpoints)
            chosen = [f"run{k:03d}" for k in range(min(args.summary_runs or args.runs, args.runs))]
            uncached, _ = timed(lambda: archive.summary(chosen))
            cached, _ = timed(lambda: archive.summary(chosen))
            parts_dense = summary_parts(archive.checkpoint("run000", 0))
            parts_sparse = summary_parts(archive.checkpoint("run000", LEVELS - 1))
        selection = ",".join(chosen) if len(chosen) < args.runs else "all"
        command, _ = timed(lambda: subprocess.run([*cli, "query", "summary", "--runs", selection, "--format", "csv"],
                                                  capture_output=True, check=True))

    total = args.runs * LEVELS
    print(f"one run: {LEVELS} levels of {'-'.join(map(str, WIDTHS))}, {synapses:,} synapses")
    print(f"LadybugDB COPY of all of them into an empty database: {floor:.2f} s")
    print(f"ingest of the first run into an empty archive: {per_run[0]:.2f} s = {per_run[0] / floor:.2f}x the COPY (target <= 1.3x)")
    print(f"one checkpoint of {checkpoints[-1].edges:,} synapses (median of 3): {fixed_empty:.2f} s into an empty archive, "
          f"{fixed_full:.2f} s into the archive of {args.runs} runs ({size_mb:.0f} MB) = {fixed_full / fixed_empty:.2f}x (target <= 0.5 s)")
    print(f"  as a command (`netarchive ingest` of that one file, process start and the close's checkpoint included): "
          f"{single_cli:.2f} s, `netarchive --help` alone {start_only:.2f} s")
    later = per_run[1:] or per_run
    print(f"time per run: first {per_run[0]:.2f} s, second {later[0]:.2f} s, last {per_run[-1]:.2f} s = "
          f"{per_run[-1] / per_run[0]:.2f}x the first, {per_run[-1] / later[0]:.2f}x the second; mean of the last five "
          f"{np.mean(per_run[-5:]) / per_run[0]:.2f}x the first, {np.mean(per_run[-5:]) / np.mean(later[:5]):.2f}x the mean of runs 2-6 "
          f"(target <= 1.2x)")
    if len(per_run) >= 20:
        tenths = np.array_split(np.array(per_run), 10)
        print("  mean time per run, by tenths of the runs: " + " ".join(f"{np.mean(t):.1f}" for t in tenths) + " s")
    print(f"`ls` over {total} checkpoints: {ls_seconds:.2f} s (with --meta {ls_meta:.2f} s), process start included "
          f"(`netarchive --help` alone {start_only:.2f} s); the listing itself (Archive.checkpoints) {listing_seconds:.3f} s")
    print(f"summary of {len(chosen)} run(s) ({len(chosen) * LEVELS} checkpoints): {uncached:.1f} s uncached "
          f"({uncached / (len(chosen) * LEVELS):.2f} s a checkpoint), {cached:.2f} s cached = {uncached / cached:.0f}x; "
          f"`query summary --runs {selection if selection == 'all' else '...'}` cached {command:.2f} s, process start included")
    for name, dense, sparse in zip(parts_dense, parts_dense.values(), parts_sparse.values()):
        print(f"  {name:32s} dense {dense:6.2f} s   level {LEVELS - 1} {sparse:6.3f} s")


if __name__ == "__main__":
    main()
