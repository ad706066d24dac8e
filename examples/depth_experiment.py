"""Does the Bernoulli percolation threshold of a deep MLP depend on its depth? (seed 000, issue 9)

The seed claims it does not: for hidden layers of equal width N the threshold stays near 1/(2N − 1)
whatever the number of layers. This script builds MLPs of width N with 2 … 8 hidden layers and archives each
as run ``depth-<H>`` (H hidden layers) through the Python API:

- level 0, the structural part: every layer of width N, inputs and outputs included (N + 2 layers of
  neurons), dense, random normal weights, no biases. Its Molloy–Reed threshold has the closed form
  (D − 1)/((2D − 3)N − (D − 1)) with D = H + 2 layers of neurons (/work/shared/science.md), which tends to
  1/(2N − 1) as D grows.
- level 1, the functional part: 64-N×H-10 trained briefly on scikit-learn's 8x8 digits (the data and the
  training loop of ``examples/digits_imp.py``), then the accuracy on the test split of the network that is
  left at its own measured threshold, synapses removed in random order (Bernoulli percolation).

For each archived checkpoint it prints ``thresholds()`` (measured, Molloy–Reed, branching, the seed's) and
writes ``OUT/depth_thresholds.png``: the measured thresholds against depth beside 1/(2N − 1) and Molloy–Reed,
and the accuracy at the threshold.

    python examples/depth_experiment.py --out out/depth [--width 64] [--epochs 20]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))  # examples/digits_imp.py
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout, not an installed netarchive

import netarchive  # noqa: E402
from digits_imp import data, evaluate, train  # noqa: E402
from netarchive.analysis.percolation import thresholds  # noqa: E402
from netarchive.analysis.robustness import robustness  # noqa: E402
from netarchive.model import Checkpoint, Layer  # noqa: E402

INPUTS, CLASSES = 64, 10  # digits: 8x8 pixels, 10 classes


def molloy_reed_closed_form(layers: int, width: int) -> float:
    """Molloy–Reed threshold of a dense layered network of ``layers`` layers of neurons, all of ``width``."""
    return (layers - 1) / ((2 * layers - 3) * width - (layers - 1))


def random_network(hidden: int, width: int, seed: int) -> Checkpoint:
    """Dense, all ``hidden + 2`` layers of ``width`` neurons, normal weights / √fan-in, no biases."""
    rng = np.random.default_rng(seed)
    layers = [
        Layer.from_dense(f"fc{l}.weight", (rng.normal(size=(width, width)) / np.sqrt(width)).astype(np.float32))
        for l in range(hidden + 1)
    ]
    return Checkpoint(f"depth-{hidden}", 0, tuple(layers), meta={"part": "structural, random weights"})


def mlp(hidden: int, width: int) -> nn.Sequential:
    sizes = [INPUTS] + [width] * hidden + [CLASSES]
    modules = []
    for n_in, n_out in zip(sizes, sizes[1:]):
        modules += [nn.Linear(n_in, n_out), nn.ReLU()]
    return nn.Sequential(*modules[:-1])


def trained_network(hidden: int, width: int, epochs: int, seed: int, digits) -> Checkpoint:
    """64-width×hidden-10 trained on the digits for ``epochs`` epochs (no pruning: all masks are ones)."""
    x_train, y_train, x_test, y_test = digits
    torch.manual_seed(seed)
    model = mlp(hidden, width)
    masks = {name: torch.ones_like(p) for name, p in model.named_parameters() if name.endswith("weight")}
    train(model, masks, x_train, y_train, epochs, seed)
    accuracy, loss = evaluate(model, x_test, y_test)
    layers = [
        Layer.from_dense(f"{i}.weight", m.weight.detach().numpy(), m.bias.detach().numpy())
        for i, m in enumerate(model)
        if isinstance(m, nn.Linear)
    ]
    return Checkpoint(f"depth-{hidden}", 1, tuple(layers), input_shape=(1, 8, 8),
                      metrics={"test_accuracy": accuracy, "test_loss": loss},
                      meta={"part": f"functional, trained {epochs} epochs on digits"}, activation="relu")


def experiment(out: Path, depths, width: int, epochs: int, samples: int, seed: int) -> pd.DataFrame:
    """Archive the networks in ``out/archive`` and return one row per (depth, part)."""
    digits = data(seed)
    x_test, y_test = digits[2].numpy(), digits[3].numpy()
    rows = []
    with netarchive.open(out / "archive") as archive:
        for hidden in depths:
            archive.write(random_network(hidden, width, seed), replace=True)
            archive.write(trained_network(hidden, width, epochs, seed, digits), replace=True)
            for level, part in ((0, "random"), (1, "trained")):
                checkpoint = archive.checkpoint(f"depth-{hidden}", level)
                row = thresholds(checkpoint, samples=samples, seed=seed).iloc[0].to_dict()
                row.update(hidden_layers=hidden, part=part, neurons=checkpoint.neurons, edges=checkpoint.edges)
                if part == "random":
                    row["p_c_closed_form"] = molloy_reed_closed_form(hidden + 2, width)
                else:
                    curve = robustness(checkpoint, x_test, y_test, "random", samples=samples, seed=seed,
                                       kept=[1.0, row["p_c_measured"]])
                    row["accuracy"], row["accuracy_at_p_c"] = curve["accuracy"].tolist()
                rows.append(row)
    columns = ["run", "level", "part", "hidden_layers", "neurons", "edges", "p_c_measured", "p_c_molloy_reed",
               "p_c_closed_form", "p_c_branching", "p_c_seed", "accuracy", "accuracy_at_p_c"]
    return pd.DataFrame(rows).reindex(columns=columns)


def plot(table: pd.DataFrame, width: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    random, trained = (table[table["part"] == part] for part in ("random", "trained"))
    depth = random["hidden_layers"]
    left.plot(depth, random["p_c_measured"], "o-", label=f"measured, random {width}-wide (all layers)")
    left.plot(trained["hidden_layers"], trained["p_c_measured"], "s-", label=f"measured, trained 64-{width}×H-10")
    left.plot(depth, random["p_c_molloy_reed"], "--", label="Molloy–Reed")
    left.plot(depth, random["p_c_branching"], ":", label="branching (1/λ_max)")
    left.axhline(1 / (2 * width - 1), color="grey", lw=1, label=f"1/(2N−1) = {1 / (2 * width - 1):.4f}")
    left.set(xlabel="hidden layers H", ylabel="kept fraction at threshold", title="Bernoulli percolation threshold")
    left.legend(fontsize=8)
    right.plot(trained["hidden_layers"], trained["accuracy"], "o-", label="all synapses")
    right.plot(trained["hidden_layers"], trained["accuracy_at_p_c"], "s-", label="at the measured threshold")
    right.axhline(1 / CLASSES, color="grey", lw=1, label="chance")
    right.set(xlabel="hidden layers H", ylabel="test accuracy (digits)", ylim=(0, 1.02),
              title="Trained network, random removal")
    right.legend(fontsize=8)
    figure.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(figure)


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out/depth"), help="directory for the archive and the PNG")
    parser.add_argument("--width", type=int, default=64, help="hidden width N (default 64)")
    parser.add_argument("--depths", type=int, nargs="+", default=list(range(2, 9)), help="hidden layers (2 … 8)")
    parser.add_argument("--epochs", type=int, default=20, help="training epochs (default 20)")
    parser.add_argument("--samples", type=int, default=10, help="random orderings per threshold (default 10)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    table = experiment(args.out, args.depths, args.width, args.epochs, args.samples, args.seed)
    with pd.option_context("display.width", 200, "display.max_columns", None, "display.precision", 5):
        print(table.to_string(index=False))
    plot(table, args.width, args.out / "depth_thresholds.png")
    print(f"wrote {args.out / 'depth_thresholds.png'}")
    return table


if __name__ == "__main__":
    main()
