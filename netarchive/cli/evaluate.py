"""``netarchive eval``, ``query robustness`` and ``plot robustness``: function beside structure."""
from __future__ import annotations

import click
import numpy as np

from netarchive.analysis.forward import evaluate
from netarchive.analysis.percolation import ORDERS, RANDOM_ORDERS, thresholds
from netarchive.analysis.robustness import robustness
from netarchive.cli import cli
from netarchive.cli.common import checkpoint_options, each_checkpoint, open_archive
from netarchive.cli.output import emit, output_options
from netarchive.cli.percolation import KEPT_LABEL, ORDER_NAMES, THRESHOLD_MARKS, mark_threshold
from netarchive.cli.plot import COLUMN, kept_axis, new_figure, output_file_option, plot, save_figure
from netarchive.cli.query import query
from netarchive.loaders.datasets import load_dataset
from netarchive.model import ASSUMED_SEQUENTIAL

SCORES = ("accuracy", "loss", "mse")


@cli.command("eval")
@checkpoint_options
@click.option("--data", required=True, type=click.Path(), help=".npz with arrays x, y (or .pt with tensors x, y).")
@click.option("--store-metrics", is_flag=True, help="Save the scores as metrics of each checkpoint.")
@output_options
def eval_command(run, level, data, store_metrics, fmt, output):
    """Evaluate checkpoints of a run on a dataset: accuracy and loss (class labels) or MSE (float targets)."""
    x, y = load_dataset(data)
    with open_archive(read_only=not store_metrics) as archive:
        checkpoints = list(each_checkpoint(archive, run, level))
        table = evaluate(checkpoints, x, y)
        if store_metrics:
            for row in table.to_dict("records"):
                archive.set_metrics(row["run"], row["level"], {k: row[k] for k in SCORES if k in row})
    for row in table[table.biases != "stored"].itertuples():
        click.echo(f"note: level {row.level} of {row.run!r} was archived without biases; zeros were used", err=True)
    if any(checkpoint.architecture_source == ASSUMED_SEQUENTIAL for checkpoint in checkpoints):
        click.echo(f"note: the architecture of {run!r} was assumed sequential (its Linear weights in state_dict order); "
                   "ingest with --model to trace the real one", err=True)
    emit(table, fmt, output)


def _robustness_options(command):
    for decorator in reversed([
        click.option("--run", required=True, help="Name of the archived run."),
        click.option("--level", type=int, required=True, help="Level of the run."),
        click.option("--data", required=True, type=click.Path(), help=".npz with arrays x, y (or .pt with tensors x, y)."),
        click.option("--samples", type=int, default=RANDOM_ORDERS, show_default=True,
                     help="Random orderings averaged (random-order curves and the measured threshold)."),
        click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random orderings."),
    ]):
        command = decorator(command)
    return command


@query.command("robustness")
@_robustness_options
@click.option("--order", type=click.Choice(ORDERS), default="descending", show_default=True,
              help="Which synapses are kept first: strongest |w|, weakest, or random (Bernoulli).")
@click.option("--points", type=int, default=21, show_default=True, help="Evenly spaced kept fractions, 0 to 1.")
@output_options
def robustness_command(run, level, data, samples, seed, order, points, fmt, output):
    """Accuracy (or MSE) beside the giant component as synapses are removed, at the points of `percolation`."""
    x, y = load_dataset(data)
    with open_archive() as archive:
        checkpoint = archive.checkpoint(run, level)
    emit(robustness(checkpoint, x, y, order, points, samples, seed), fmt, output)


@plot.command("robustness")
@_robustness_options
@output_file_option
def plot_robustness(run, level, data, samples, seed, output):
    """Accuracy (or MSE) and giant component against the synapses kept, strongest-first and random
    removal, with the percolation thresholds of `query threshold` marked."""
    x, y = load_dataset(data)
    with open_archive() as archive:
        checkpoint = archive.checkpoint(run, level)
        marks = archive.analyze(thresholds, run, level, samples=samples, seed=seed).iloc[0]  # = query threshold
    kept = np.concatenate([[0.0], np.geomspace(1 / max(checkpoint.edges, 1), 1, 40)])
    score = "accuracy" if np.issubdtype(y.dtype, np.integer) else "mse"
    figure, (top, bottom) = new_figure(2, 1, sharex=True, figsize=(COLUMN, 4.4))
    for i, order in enumerate(("descending", "random")):
        curve = robustness(checkpoint, x, y, order, samples=samples, seed=seed, kept=kept)[1:]
        top.plot(curve.kept, curve[score], "-", color=f"C{i}", marker=".", label=ORDER_NAMES[order])
        bottom.plot(curve.kept, curve.giant_fraction, "-", color=f"C{i}")
    if score == "accuracy":
        chance = 1 / len(np.unique(y))
        top.axhline(chance, color="0.6", linewidth=0.8, linestyle=":", label=f"chance ({chance:.2g})")
    for axis in (top, bottom):
        for j, (column, (name, _)) in enumerate(THRESHOLD_MARKS.items()):
            if np.isfinite(marks[column]):
                mark_threshold(axis, j, name, marks[column], label=axis is bottom)
    top.set_ylabel("test accuracy" if score == "accuracy" else "test MSE")
    bottom.set_ylabel("giant component\n(fraction of neurons)")
    kept_axis(bottom, KEPT_LABEL)
    top.set_title(f"{run}, level {level} (sparsity {checkpoint.sparsity:.1%})")
    handles, labels = (a + b for a, b in zip(top.get_legend_handles_labels(), bottom.get_legend_handles_labels()))
    figure.legend(handles, labels, loc="outside lower center", ncol=2)
    save_figure(figure, output)
