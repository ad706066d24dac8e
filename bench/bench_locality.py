"""Locality analyses on an ImageNet32-sized first layer: vectorised (FFT) against a Python loop.

Workload: a 3072-1024 first layer (3x32x32 input) at 90% sparsity, random masks (~307 inputs per unit,
~47 k pixel pairs per unit). The baseline is the direct computation, a Python loop over units and over
the pairs of each unit's pixels (centroid, spread, mean pair distance, same- and cross-channel
displacement histograms), timed on a sample of units and extrapolated to all of them.

Run: python bench/bench_locality.py [--sample 6]
"""
from __future__ import annotations

import argparse
import itertools
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's netarchive, not the installed one

from netarchive.analysis import locality as loc
from netarchive.model import Checkpoint, Layer

SHAPE = (3, 32, 32)
UNITS = 1024
SPARSITY = 0.9


def workload(seed=0, units=UNITS) -> Checkpoint:
    rng = np.random.default_rng(seed)
    inputs = int(np.prod(SHAPE))
    keep = rng.random((units, inputs)) >= SPARSITY
    dst, src = np.nonzero(keep)
    layer = Layer("fc1.weight", inputs, units, src, dst, rng.normal(size=len(src)))
    return Checkpoint("bench", 0, (layer,), input_shape=SHAPE)


def loop_unit(points, same, cross):
    """Everything for one unit by plain Python loops over its pixels and pixel pairs."""
    k = len(points)
    cy = sum(p[1] for p in points) / k
    cx = sum(p[2] for p in points) / k
    spread = math.sqrt(sum((p[1] - cy) ** 2 + (p[2] - cx) ** 2 for p in points) / k)
    total = 0.0
    for (c1, y1, x1), (c2, y2, x2) in itertools.combinations(points, 2):
        total += math.hypot(x2 - x1, y2 - y1)
        histogram = same if c1 == c2 else cross
        histogram[(y2 - y1, x2 - x1)] = histogram.get((y2 - y1, x2 - x1), 0) + 1
        histogram[(y1 - y2, x1 - x2)] = histogram.get((y1 - y2, x1 - x2), 0) + 1
    return cx, cy, spread, total / (k * (k - 1) / 2)


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def main(sample: int) -> None:
    checkpoint = workload()
    layer = checkpoint.layers[0]
    print(f"workload: {layer.inputs}-{layer.outputs} first layer, input {'x'.join(map(str, SHAPE))}, "
          f"{layer.edges:,} synapses ({checkpoint.sparsity:.1%} sparse), {layer.edges / UNITS:.0f} inputs per unit")

    units, t_units = timed(loc.unit_locality, checkpoint)
    hist, t_hist = timed(loc.displacements, checkpoint)
    _, t_pixels = timed(loc.pixel_out_degree, checkpoint)
    _, t_groups = timed(loc.translation_groups, checkpoint)
    _, t_similar = timed(loc.translation_groups, workload(units=256), threshold=0.5)  # quadratic: on 256 units
    vectorised = t_units + t_hist

    coordinates = np.stack(checkpoint.input_coordinates(), axis=1).tolist()
    field = loc.receptive_fields(checkpoint, 1)
    same, cross = {}, {}
    start = time.perf_counter()
    for unit in range(sample):
        points = [coordinates[i] for i in field.indices[field.indptr[unit]: field.indptr[unit + 1]]]
        cx, cy, spread, mean_pair = loop_unit(points, same, cross)
        row = units.iloc[unit]
        assert np.allclose([cx, cy, spread, mean_pair], [row.centroid_x, row.centroid_y, row.spread, row.mean_pair_distance])
    per_unit = (time.perf_counter() - start) / sample
    baseline = per_unit * UNITS

    print(f"vectorised: per-unit statistics {t_units:.2f} s + both histograms {t_hist:.2f} s = {vectorised:.2f} s")
    print(f"            pixel out-degree {t_pixels:.3f} s, translation groups {t_groups:.3f} s exact, "
          f"{t_similar:.1f} s with --threshold 0.5 on 256 units (every pair: ~{t_similar * (UNITS / 256) ** 2:.0f} s for {UNITS})")
    print(f"baseline:   Python loop {per_unit * 1e3:.0f} ms/unit on {sample} units -> {baseline:.0f} s for {UNITS} units (extrapolated)")
    print(f"ratio:      {baseline / vectorised:.0f}x faster")
    print(f"check:      mean locality {units.locality.mean():.4f} (random masks: 1), "
          f"histogram total {hist['count'].sum():,} = expected {hist.expected.sum():,.0f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=6, help="units timed in the Python loop")
    main(parser.parse_args().sample)
