"""Demo: does iterative magnitude pruning make an MLP on scikit-learn's 8x8 digits local?

Trains a 64-128-128-10 MLP (full-batch SGD with momentum), prunes 25% of each layer's surviving weights
per level by magnitude
(rewinding to the initial weights, as in the lottery-ticket procedure), archives every level with
``input_shape=(1, 8, 8)``, prints the per-level locality summary of layer 1, and draws the most-pruned
level. About half a minute on one CPU core.

Run: python docs/locality_demo.py [--store DIR] [--levels 16] [-o docs/locality_digits.png]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import pandas as pd
import torch
from click.testing import CliRunner
from sklearn.datasets import load_digits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's netarchive

import netarchive  # noqa: E402
from netarchive.analysis import locality as loc  # noqa: E402
from netarchive.cli import cli  # noqa: E402
from netarchive.model import Checkpoint, Layer  # noqa: E402

WIDTHS = (64, 128, 128, 10)


def train(model, masks, x, y, steps=300):
    optimiser = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for _ in range(steps):
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimiser.step()
        with torch.no_grad():
            for linear, mask in zip(linears(model), masks):
                linear.weight.mul_(mask)
    return model


def linears(model):
    return [module for module in model if isinstance(module, torch.nn.Linear)]


def imp(levels: int, rate: float = 0.25, seed: int = 0):
    """Yield (level, checkpoint) of an IMP run with rewinding to the initial weights."""
    torch.manual_seed(seed)
    torch.set_num_threads(1)  # tiny matrices: threads only add overhead
    digits = load_digits()
    x = torch.tensor(digits.data / 16.0, dtype=torch.float32)
    y = torch.tensor(digits.target)
    train_x, test_x, train_y, test_y = x[:1400], x[1400:], y[:1400], y[1400:]
    layers = []
    for n_in, n_out in zip(WIDTHS, WIDTHS[1:]):
        layers += [torch.nn.Linear(n_in, n_out), torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers[:-1])
    initial = {key: value.clone() for key, value in model.state_dict().items()}
    masks = [torch.ones_like(linear.weight) for linear in linears(model)]
    for level in range(levels):
        model.load_state_dict(initial)
        train(model, masks, train_x, train_y)
        with torch.no_grad():
            accuracy = float((model(test_x).argmax(1) == test_y).float().mean())
        weights = [linear.weight.detach().numpy() * mask.numpy() for linear, mask in zip(linears(model), masks)]
        yield Checkpoint(
            "digits", level, tuple(Layer.from_dense(f"fc{i}.weight", w) for i, w in enumerate(weights)),
            input_shape=(1, 8, 8), metrics={"accuracy": accuracy},
        )
        for i, (linear, mask) in enumerate(zip(linears(model), masks)):
            rate_here = rate / 2 if i == len(masks) - 1 else rate  # the output layer is pruned more gently
            alive = linear.weight.detach().abs()[mask.bool()]
            threshold = torch.quantile(alive, rate_here)
            masks[i] = mask * (linear.weight.detach().abs() > threshold)


def main(store: str | None, levels: int, output: str) -> None:
    store = store or tempfile.mkdtemp(prefix="netarchive-locality-")
    rows = []
    with netarchive.open(store) as archive:
        for checkpoint in imp(levels):
            archive.write(checkpoint, replace=True)
            units = loc.unit_locality(checkpoint, [1])
            summary = loc.locality_summary(units).iloc[0]
            rows.append({"level": checkpoint.level, "sparsity": checkpoint.sparsity, "accuracy": checkpoint.metrics["accuracy"],
                         **summary[["connected", "in_degree_median", "locality_mean", "locality_top"]].to_dict()})
    pd.set_option("display.width", 120)
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    result = CliRunner().invoke(cli, ["--store", store, "plot", "locality", "--run", "digits", "--units", "16", "-o", output])
    print(result.output.strip())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", help="archive directory (default: a new temporary one)")
    parser.add_argument("--levels", type=int, default=16)
    parser.add_argument("-o", "--output", default=str(Path(__file__).with_name("locality_digits.png")))
    arguments = parser.parse_args()
    main(arguments.store, arguments.levels, arguments.output)
