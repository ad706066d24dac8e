"""Speed of the functional robustness curve (issue 9).

Workload: the dense 3072-1024-1024-1024-1000 network (6.27 M weights, random normal weights / √fan-in,
random normal biases, ReLU, seed 0) on 1000 random inputs with random labels. Reported as a ratio measured
in this one run:

- ``robustness(order="descending", points=21)`` (giant component, inputs connected and accuracy at each of
  the 21 kept fractions) / 21 forward passes of the same dense network as a torch ``nn.Sequential`` on the
  same inputs (target <= 3x).

    python bench/bench_robustness.py [--repeat 3] [--profile]
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout, not an installed netarchive

from bench_percolation import interleaved  # noqa: E402  (bench/, the script's directory)
from netarchive.analysis.robustness import robustness  # noqa: E402
from netarchive.model import Checkpoint, Layer  # noqa: E402

WIDTHS = (3072, 1024, 1024, 1024, 1000)
SAMPLES = 1000
POINTS = 21


def workload():
    rng = np.random.default_rng(0)
    layers, modules = [], []
    for l, (n_in, n_out) in enumerate(zip(WIDTHS, WIDTHS[1:])):
        weight = (rng.normal(size=(n_out, n_in)) / np.sqrt(n_in)).astype(np.float32)
        bias = rng.normal(size=n_out).astype(np.float32) * 0.1
        layers.append(Layer.from_dense(f"fc{l}.weight", weight, bias))
        linear = nn.Linear(n_in, n_out)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(weight))
            linear.bias.copy_(torch.from_numpy(bias))
        modules += [linear, nn.ReLU()]
    model = nn.Sequential(*modules[:-1]).eval()
    x = rng.normal(size=(SAMPLES, WIDTHS[0])).astype(np.float32)
    y = rng.integers(0, WIDTHS[-1], size=SAMPLES)
    return Checkpoint("bench", 0, tuple(layers)), model, x, y


def torch_passes(model, x) -> None:
    inputs = torch.from_numpy(x)
    with torch.no_grad():
        for _ in range(POINTS):
            model(inputs).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="print a cProfile of one robustness curve")
    args = parser.parse_args()
    checkpoint, model, x, y = workload()
    print(f"threads {torch.get_num_threads()}, {checkpoint.edges} edges, {SAMPLES} inputs, {POINTS} points")
    if args.profile:
        profile = cProfile.Profile()
        profile.runcall(robustness, checkpoint, x, y, "descending", POINTS)
        pstats.Stats(profile).sort_stats("cumulative").print_stats(25)
    jobs = {
        "torch": lambda: torch_passes(model, x),
        "robustness": lambda: robustness(checkpoint, x, y, "descending", POINTS),
    }
    times = interleaved(jobs, args.repeat)
    print(f"21 torch nn.Sequential passes: {times['torch']:.3f} s")
    print(f"robustness, descending, 21 points: {times['robustness']:.3f} s "
          f"({times['robustness'] / times['torch']:.2f}x, target <= 3x)")


if __name__ == "__main__":
    main()
