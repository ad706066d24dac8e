"""`query summary` of a study: serial against parallel (`jobs=2`), and a second, cached summary (one table for
the set of checkpoints, against one cached file per checkpoint).

Workload: ``--runs`` synthetic IMP runs (default 20) of 10 levels of a 784-300-100 network (20 % of each
layer's weights pruned by magnitude per level, 28×28 pixel inputs, so every column of the summary is
computed), and, when given ``--digits ARCHIVE``, the digits demo archive. Ratios are measured in one run.

    python bench/bench_summary.py [--runs 20] [--digits out/archive]
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

import netarchive
from netarchive.cache import SETS
from netarchive.model import Checkpoint, Layer

WIDTHS = (784, 300, 100)


def imp_run(archive, run: int, levels: int = 10) -> None:
    rng = np.random.default_rng(run)
    weights = [rng.normal(size=(o, i)).astype(np.float32) for i, o in zip(WIDTHS, WIDTHS[1:])]
    for level in range(levels):
        layers = tuple(Layer.from_dense(f"fc{l}.weight", w) for l, w in enumerate(weights))
        archive.write(Checkpoint(f"synthetic{run}", level, layers, input_shape=(1, 28, 28)))
        weights = [np.where(np.abs(w) > np.quantile(np.abs(w[w != 0]), 0.2), w, 0) for w in weights]


def timed(archive, runs, jobs):
    start = time.perf_counter()
    table = archive.summary(runs, jobs=jobs)
    return time.perf_counter() - start, table


def measure(archive, runs, label):
    serial, first = timed(archive, runs, 1)
    cached, again = timed(archive, runs, 1)
    assert first.equals(again)
    shutil.rmtree(archive.store.cache_dir / SETS)  # the rows again from one cached file per checkpoint
    from_files, third = timed(archive, runs, 1)
    assert first.equals(third)
    shutil.rmtree(archive.store.cache_dir)
    parallel, other = timed(archive, runs, 2)
    assert np.allclose(first.select_dtypes("number"), other.select_dtypes("number"), equal_nan=True)
    print(f"{label}: {len(first)} checkpoints; jobs=1 {serial:.1f} s, jobs=2 {parallel:.1f} s "
          f"(speed-up {serial / parallel:.2f}x); cached {cached:.3f} s ({serial / cached:.0f}x faster than the first; "
          f"from one cached file per checkpoint instead of the set's one table {from_files:.3f} s = {from_files / cached:.0f}x)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--digits", type=Path, help="an archive with the digits demo run (examples/demo.sh)")
    args = parser.parse_args()
    if args.digits:
        with netarchive.open(args.digits) as archive:
            shutil.rmtree(archive.store.cache_dir, ignore_errors=True)
            measure(archive, ["digits"], "digits demo")
    with tempfile.TemporaryDirectory() as tmp, netarchive.open(Path(tmp) / "archive") as archive:
        for run in range(args.runs):
            imp_run(archive, run)
        measure(archive, [f"synthetic{run}" for run in range(args.runs)], f"{args.runs} runs of 784-300-100")


if __name__ == "__main__":
    main()
